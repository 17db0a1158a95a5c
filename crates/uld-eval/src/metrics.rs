//! From matched detections to numbers: the FROC curve, sensitivity at
//! operating points, VOC AP and the score-threshold operating point.

use serde::Serialize;

use crate::interp::{Interpolation, sens_at_fp};
use crate::score::Outcomes;

/// The FROC and precision-recall curve: one point per detection in score
/// order, as the references build them (`tps.append(nHits)`,
/// `fps.append(nMiss)` after every detection).
#[derive(Debug, Clone, Default)]
pub struct Curve {
    /// Average false positives per unit after each detection.
    pub fp_per_unit: Vec<f64>,
    /// Sensitivity (hits / lesions) after each detection.
    pub sens: Vec<f64>,
    /// Precision with duplicates as false positives (AP rule).
    pub precision: Vec<f64>,
    /// Score of each detection.
    pub score: Vec<f32>,
    /// Cumulative hits and FROC false positives (counts).
    pub hits: Vec<u32>,
    pub false_positives: Vec<u32>,
    pub lesions: u64,
    pub units: u64,
}

impl Curve {
    /// The curve of `out`, each unit counted `weight[u]` times (a bootstrap
    /// resample; `None`: once). A unit drawn `k` times contributes `k`
    /// adjacent copies of each of its detections.
    pub fn build(out: &Outcomes, weight: Option<&[u32]>) -> Self {
        let w = |u: u32| weight.map_or(1, |w| w[u as usize]) as u64;
        let units: u64 = (0..out.units() as u32).map(w).sum();
        let lesions: u64 = out
            .unit_lesions
            .iter()
            .enumerate()
            .map(|(u, &n)| n as u64 * w(u as u32))
            .sum();
        let mut c = Self {
            lesions,
            units,
            ..Self::default()
        };
        let n = out.len();
        c.fp_per_unit.reserve(n);
        c.sens.reserve(n);
        c.precision.reserve(n);
        c.score.reserve(n);
        c.hits.reserve(n);
        c.false_positives.reserve(n);
        let (mut tp, mut fp, mut fp_ap) = (0u64, 0u64, 0u64);
        let nl = lesions as f64;
        let nu = units as f64;
        for d in &out.detections {
            for _ in 0..w(d.unit) {
                tp += d.new_hits as u64;
                fp += d.false_positive as u64;
                fp_ap += d.ap_false_positives as u64;
                c.hits.push(tp as u32);
                c.false_positives.push(fp as u32);
                c.fp_per_unit.push(fp as f64 / nu);
                c.sens.push(tp as f64 / nl);
                c.precision
                    .push(tp as f64 / ((tp + fp_ap) as f64).max(f64::EPSILON));
                c.score.push(d.score);
            }
        }
        c
    }

    pub fn sens_at(&self, fp: f64, rule: Interpolation) -> f64 {
        sens_at_fp(&self.fp_per_unit, &self.sens, fp, rule)
    }

    /// Pascal VOC AP (the non-2007 all-point rule of `voc_ap`, as
    /// Lesion-Harvester calls it): recall `hits / lesions`, precision with
    /// duplicates as false positives, sentinels `(0, 0)` and `(1, 0)`, the
    /// precision envelope from the right, and the sum of recall steps times
    /// envelope. NaN without lesions (recall undefined).
    pub fn average_precision(&self) -> f64 {
        if self.lesions == 0 {
            return f64::NAN;
        }
        // With mrec = [0, sens.., 1] and mpre = [0, precision.., 0], walk
        // from the right keeping the envelope max(mpre[j..]) and collect each
        // recall step (mrec[j] - mrec[j-1]) * envelope[j]; then sum the steps
        // left to right as numpy's `np.sum` does, so AP equals voc_ap's to
        // the last bit.
        let n = self.sens.len();
        let mrec = |j: usize| match j {
            0 => 0.0,
            j if j == n + 1 => 1.0,
            j => self.sens[j - 1],
        };
        let mut envelope = 0.0f64;
        let mut terms = Vec::new();
        for j in (1..=n + 1).rev() {
            if j <= n {
                envelope = envelope.max(self.precision[j - 1]);
            }
            let step = mrec(j) - mrec(j - 1);
            if step != 0.0 {
                terms.push(step * envelope);
            }
        }
        terms.reverse();
        numpy_sum(&terms)
    }

    /// Keeping the detections scored at or above `threshold`.
    pub fn at_threshold(&self, threshold: f32) -> ThresholdPoint {
        let k = self.score.partition_point(|&s| s >= threshold);
        let (hits, fps, prec) = if k == 0 {
            (0, 0, f64::NAN)
        } else {
            (
                self.hits[k - 1],
                self.false_positives[k - 1],
                self.precision[k - 1],
            )
        };
        ThresholdPoint {
            threshold,
            detections: k as u64,
            sensitivity: hits as f64 / self.lesions as f64,
            fp_per_unit: fps as f64 / self.units as f64,
            precision: prec,
        }
    }

    /// The curve's corners for plotting: the last point at each distinct
    /// false-positive count (where the staircase turns), plus the first point.
    pub fn froc_corners(&self) -> Vec<(f64, f64)> {
        let mut pts: Vec<(f64, f64)> = Vec::new();
        for (i, (&x, &y)) in self.fp_per_unit.iter().zip(&self.sens).enumerate() {
            let last_at_x = self.fp_per_unit.get(i + 1).is_none_or(|&nx| nx != x);
            if i == 0 || last_at_x {
                pts.push((x, y));
            }
        }
        pts
    }

    /// Precision-recall points where recall changes, plus the last point.
    pub fn pr_points(&self) -> Vec<(f64, f64)> {
        let mut pts: Vec<(f64, f64)> = Vec::new();
        let n = self.sens.len();
        for i in 0..n {
            if i + 1 == n || self.sens[i + 1] != self.sens[i] {
                pts.push((self.sens[i], self.precision[i]));
            }
        }
        pts
    }
}

/// `np.sum` of a contiguous float64 array: numpy's pairwise summation (8
/// running sums in blocks of up to 128, halves split at multiples of 8
/// above that), so sums equal numpy's to the last bit.
pub fn numpy_sum(a: &[f64]) -> f64 {
    fn pairwise(a: &[f64]) -> f64 {
        let n = a.len();
        if n < 8 {
            a.iter().fold(0.0, |s, &x| s + x)
        } else if n <= 128 {
            let mut r = [0f64; 8];
            r.copy_from_slice(&a[..8]);
            let mut i = 8;
            while i < n - n % 8 {
                for j in 0..8 {
                    r[j] += a[i + j];
                }
                i += 8;
            }
            let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            for &x in &a[i..] {
                res += x;
            }
            res
        } else {
            let mut n2 = n / 2;
            n2 -= n2 % 8;
            pairwise(&a[..n2]) + pairwise(&a[n2..])
        }
    }
    pairwise(a)
}

/// Sensitivity and false positives when keeping detections with score >=
/// `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ThresholdPoint {
    pub threshold: f32,
    pub detections: u64,
    pub sensitivity: f64,
    pub fp_per_unit: f64,
    /// Precision with duplicates as false positives; NaN with no detection.
    pub precision: f64,
}

/// The numbers one evaluation reports (and a bootstrap replicate recomputes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Sensitivity at each operating point under the reference rule
    /// (may be inf/NaN where the reference extrapolates a vertical segment).
    pub sens: Vec<f64>,
    /// The same under the clamping rule (always finite).
    pub sens_clamped: Vec<f64>,
    /// Mean of the first `summary_count` entries of `sens`.
    pub summary: f64,
    pub summary_clamped: f64,
    pub ap: f64,
}

impl Metrics {
    pub fn of(curve: &Curve, fp_points: &[f64], summary_count: usize, rule: Interpolation) -> Self {
        let sens: Vec<f64> = fp_points.iter().map(|&q| curve.sens_at(q, rule)).collect();
        let sens_clamped: Vec<f64> = fp_points
            .iter()
            .map(|&q| curve.sens_at(q, Interpolation::Clamp))
            .collect();
        let k = summary_count.min(fp_points.len()).max(1);
        let mean = |v: &[f64]| v[..k].iter().sum::<f64>() / k as f64;
        Self {
            summary: mean(&sens),
            summary_clamped: mean(&sens_clamped),
            sens,
            sens_clamped,
            ap: curve.average_precision(),
        }
    }
}
