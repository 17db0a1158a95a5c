//! Bootstrap confidence intervals over evaluation units and the paired
//! bootstrap comparison of two detection sets.
//!
//! A replicate draws as many units as the set has, uniformly with
//! replacement, from a ChaCha8 generator seeded by the user; a unit drawn
//! `k` times counts `k` times in lesions, units and detections (its matching
//! does not change: hits are decided inside a unit). Intervals are the
//! percentile intervals of the replicates' finite values (a replicate where
//! the extrapolating rule gives inf/NaN has no number to rank; the clamped
//! reading always has one); with no finite replicate the interval is NaN. A paired comparison scores
//! both sets on the same draws; its p-value is the two-sided bootstrap
//! p-value `min(1, 2 * min(P(d <= 0), P(d >= 0)))` of the difference `d`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::interp::Interpolation;
use crate::metrics::{Curve, Metrics};
use crate::score::Outcomes;

/// A two-sided percentile interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// Bootstrap settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootstrapConfig {
    pub replicates: usize,
    pub seed: u64,
    /// Coverage, e.g. 0.95.
    pub level: f64,
}

impl BootstrapConfig {
    /// Settings checked: at least one replicate, a level strictly between 0
    /// and 1.
    pub fn checked(replicates: usize, seed: u64, level: f64) -> uld_core::Result<Self> {
        if replicates == 0 {
            return Err(uld_core::Error::invalid(
                "bootstrap",
                "needs at least one replicate",
            ));
        }
        if !(level > 0.0 && level < 1.0) {
            return Err(uld_core::Error::invalid(
                "level",
                format!("must lie between 0 and 1, got {level}"),
            ));
        }
        Ok(Self {
            replicates,
            seed,
            level,
        })
    }
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self {
            replicates: 1000,
            seed: 0,
            level: 0.95,
        }
    }
}

/// Per-unit draw counts of each replicate, reproducible from the seed.
pub fn draw_weights(units: usize, cfg: &BootstrapConfig) -> impl Iterator<Item = Vec<u32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    (0..cfg.replicates).map(move |_| {
        let mut w = vec![0u32; units];
        for _ in 0..units {
            w[rng.random_range(0..units)] += 1;
        }
        w
    })
}

/// The `(1 - level) / 2` and `(1 + level) / 2` quantiles (linear between
/// order statistics, numpy's default).
pub fn percentile_interval(values: &mut Vec<f64>, level: f64) -> Interval {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return Interval {
            low: f64::NAN,
            high: f64::NAN,
        };
    }
    values.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let pos = p * (values.len() - 1) as f64;
        let lo = pos.floor() as usize;
        let hi = pos.ceil() as usize;
        let t = pos - lo as f64;
        if t == 0.0 {
            values[lo]
        } else {
            values[lo] + (values[hi] - values[lo]) * t
        }
    };
    Interval {
        low: q((1.0 - level) / 2.0),
        high: q((1.0 + level) / 2.0),
    }
}

/// Intervals for every number of [`Metrics`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricIntervals {
    pub sens: Vec<Interval>,
    pub sens_clamped: Vec<Interval>,
    pub summary: Interval,
    pub summary_clamped: Interval,
    pub ap: Interval,
}

/// What a set of outcomes is evaluated with.
#[derive(Debug, Clone, Copy)]
pub struct MetricSpec<'a> {
    pub fp_points: &'a [f64],
    pub summary_count: usize,
    pub rule: Interpolation,
}

impl MetricSpec<'_> {
    pub fn metrics(&self, out: &Outcomes, weight: Option<&[u32]>) -> Metrics {
        let curve = Curve::build(out, weight);
        Metrics::of(&curve, self.fp_points, self.summary_count, self.rule)
    }
}

fn intervals(reps: &[Metrics], level: f64) -> MetricIntervals {
    let col = |f: &dyn Fn(&Metrics) -> f64| {
        let mut v: Vec<f64> = reps.iter().map(f).collect();
        percentile_interval(&mut v, level)
    };
    let k = reps.first().map_or(0, |m| m.sens.len());
    MetricIntervals {
        sens: (0..k).map(|i| col(&|m| m.sens[i])).collect(),
        sens_clamped: (0..k).map(|i| col(&|m| m.sens_clamped[i])).collect(),
        summary: col(&|m| m.summary),
        summary_clamped: col(&|m| m.summary_clamped),
        ap: col(&|m| m.ap),
    }
}

/// Bootstrap intervals of one evaluation.
pub fn bootstrap(out: &Outcomes, spec: MetricSpec<'_>, cfg: &BootstrapConfig) -> MetricIntervals {
    let reps: Vec<Metrics> = draw_weights(out.units(), cfg)
        .map(|w| spec.metrics(out, Some(&w)))
        .collect();
    intervals(&reps, cfg.level)
}

/// A paired difference `b - a` with its interval and p-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Difference {
    pub a: f64,
    pub b: f64,
    pub difference: f64,
    pub interval: Interval,
    pub p_value: f64,
}

/// The paired comparison of two detection sets on one ground truth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub replicates: usize,
    pub seed: u64,
    pub level: f64,
    /// Summary sensitivity under the reference rule.
    pub summary: Difference,
    /// Summary sensitivity under the clamping rule.
    pub summary_clamped: Difference,
    pub ap: Difference,
    /// Per operating point, clamped readings.
    pub sens_clamped: Vec<Difference>,
}

/// Scores `a` and `b` (matched against the same ground truth) on the same
/// bootstrap draws.
pub fn paired_bootstrap(
    a: &Outcomes,
    b: &Outcomes,
    spec: MetricSpec<'_>,
    cfg: &BootstrapConfig,
) -> Comparison {
    assert_eq!(
        a.units(),
        b.units(),
        "paired outcomes must share their units"
    );
    let ma = spec.metrics(a, None);
    let mb = spec.metrics(b, None);
    let mut reps: Vec<(Metrics, Metrics)> = Vec::with_capacity(cfg.replicates);
    for w in draw_weights(a.units(), cfg) {
        reps.push((spec.metrics(a, Some(&w)), spec.metrics(b, Some(&w))));
    }
    let diff = |f: &dyn Fn(&Metrics) -> f64| {
        let mut d: Vec<f64> = reps.iter().map(|(x, y)| f(y) - f(x)).collect();
        let n = d.len().max(1) as f64;
        let le = d.iter().filter(|&&v| v <= 0.0).count() as f64 / n;
        let ge = d.iter().filter(|&&v| v >= 0.0).count() as f64 / n;
        Difference {
            a: f(&ma),
            b: f(&mb),
            difference: f(&mb) - f(&ma),
            interval: percentile_interval(&mut d, cfg.level),
            p_value: (2.0 * le.min(ge)).min(1.0),
        }
    };
    Comparison {
        replicates: cfg.replicates,
        seed: cfg.seed,
        level: cfg.level,
        summary: diff(&|m| m.summary),
        summary_clamped: diff(&|m| m.summary_clamped),
        ap: diff(&|m| m.ap),
        sens_clamped: (0..ma.sens.len())
            .map(|i| diff(&|m| m.sens_clamped[i]))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0, 5.0];
        // numpy.percentile([1..5], [2.5, 97.5]) = [1.1, 4.9]
        let i = percentile_interval(&mut v, 0.95);
        assert!(
            (i.low - 1.1).abs() < 1e-12 && (i.high - 4.9).abs() < 1e-12,
            "{i:?}"
        );
    }

    #[test]
    fn draws_are_seeded_and_sum_to_the_unit_count() {
        let cfg = BootstrapConfig {
            replicates: 3,
            seed: 42,
            level: 0.95,
        };
        let a: Vec<Vec<u32>> = draw_weights(10, &cfg).collect();
        let b: Vec<Vec<u32>> = draw_weights(10, &cfg).collect();
        assert_eq!(a, b);
        assert!(a.iter().all(|w| w.iter().sum::<u32>() == 10));
        assert_ne!(a[0], a[1]);
    }
}
