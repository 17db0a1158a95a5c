//! One call from ground truth and detections to every number a report shows.

use serde::Serialize;
use uld_core::{Error, Result};

use crate::bootstrap::{
    BootstrapConfig, Comparison, MetricIntervals, MetricSpec, bootstrap, paired_bootstrap,
};
use crate::detections::DetectionSet;
use crate::gt::{GroundTruth, LesionAttrs};
use crate::interp::Interpolation;
use crate::metrics::{Curve, Metrics, ThresholdPoint};
use crate::protocol::{KeySliceVariant, Protocol};
use crate::score::{Candidates, Outcomes, match_detections};

/// What to compute.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalConfig {
    pub protocol: Protocol,
    /// Keyslice only: which reference's interpolation is the headline.
    pub variant: KeySliceVariant,
    /// Average false positives per unit to report sensitivity at.
    pub fp_points: Vec<f64>,
    /// How many of `fp_points` the summary averages.
    pub summary_count: usize,
    /// Also report the operating point of this score threshold.
    pub score_threshold: Option<f32>,
    /// Bootstrap intervals (`None`: none).
    pub bootstrap: Option<BootstrapConfig>,
    /// Breakdowns by size, type and slice interval where the ground truth
    /// has those attributes.
    pub breakdowns: bool,
    /// Long-diameter bin edges in mm (3DCE's paper: < 10, 10-30, > 30).
    pub size_edges_mm: Vec<f64>,
    /// Slice-interval bin edges in mm (DeepLesion is mostly 1 and 5 mm).
    pub interval_edges_mm: Vec<f64>,
}

impl EvalConfig {
    pub fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            variant: KeySliceVariant::default(),
            fp_points: protocol.fp_points(),
            summary_count: protocol.summary_count(),
            score_threshold: None,
            bootstrap: Some(BootstrapConfig::default()),
            breakdowns: true,
            size_edges_mm: SIZE_EDGES_MM.to_vec(),
            interval_edges_mm: vec![2.5],
        }
    }

    /// The headline interpolation rule.
    pub fn interpolation(&self) -> Interpolation {
        self.protocol.reference_interpolation(self.variant)
    }

    fn spec(&self) -> MetricSpec<'_> {
        MetricSpec {
            fp_points: &self.fp_points,
            summary_count: self.summary_count,
            rule: self.interpolation(),
        }
    }
}

/// Sensitivities of one breakdown group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakdownGroup {
    /// `size`, `type` or `slice interval`.
    pub by: String,
    pub group: String,
    pub lesions: u64,
    pub metrics: Metrics,
}

/// Everything one evaluation found.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub protocol: Protocol,
    /// Keyslice only.
    pub variant: Option<KeySliceVariant>,
    pub interpolation: Interpolation,
    pub hit_threshold: f64,
    pub ground_truth: String,
    pub units: usize,
    pub lesions: u64,
    /// Detection rows read and rows on keys outside the ground truth.
    pub detection_rows: usize,
    pub ignored_rows: usize,
    pub ignored_keys: Vec<String>,
    /// Detections as the protocol counts them (tracklets for harvester/lens).
    pub detections: usize,
    pub fp_points: Vec<f64>,
    pub summary_count: usize,
    pub metrics: Metrics,
    pub intervals: Option<MetricIntervals>,
    pub bootstrap: Option<BootstrapConfig>,
    pub threshold: Option<ThresholdPoint>,
    pub breakdowns: Vec<BreakdownGroup>,
    pub notes: Vec<String>,
    #[serde(skip)]
    pub curve: Curve,
    #[serde(skip)]
    pub outcomes: Outcomes,
}

impl Evaluation {
    /// One line: protocol, units, lesions, detections, the mean sensitivity
    /// over the summary's FP points and AP, with intervals when computed.
    pub fn headline(&self) -> String {
        let k = self.summary_count.min(self.fp_points.len());
        let mut s = format!(
            "{} ({} {}s, {} lesions, {} detections): mean sensitivity at {}-{} FP {:.4}",
            self.protocol.name(),
            self.units,
            self.protocol.unit(),
            self.lesions,
            self.detections,
            self.fp_points[0],
            self.fp_points[k - 1],
            self.metrics.summary,
        );
        if let Some(iv) = &self.intervals {
            s += &format!(" [{:.4}, {:.4}]", iv.summary.low, iv.summary.high);
        }
        if self.metrics.summary != self.metrics.summary_clamped {
            s += &format!(" (clamped {:.4})", self.metrics.summary_clamped);
        }
        s += &format!(", AP {:.4}", self.metrics.ap);
        if let Some(iv) = &self.intervals {
            s += &format!(" [{:.4}, {:.4}]", iv.ap.low, iv.ap.high);
        }
        s
    }
}

fn check_ground_truth(protocol: Protocol, gt: &GroundTruth) -> Result<()> {
    if protocol == Protocol::Harvester
        && let Some((u, l)) = gt.units.iter().find_map(|u| {
            u.lesions
                .iter()
                .find(|l| l.bbox.z1 != l.bbox.z2)
                .map(|l| (u, l))
        })
    {
        return Err(Error::invalid(
            "ground truth",
            format!(
                "the harvester protocol scores 2D annotations, but {} has a box on slices {}..={}; \
                 use the lens protocol for 3D boxes",
                u.key, l.bbox.z1, l.bbox.z2
            ),
        ));
    }
    Ok(())
}

/// Matches `dets` against `gt` under `cfg` and computes every number.
pub fn evaluate(gt: &GroundTruth, dets: &DetectionSet, cfg: &EvalConfig) -> Result<Evaluation> {
    check_ground_truth(cfg.protocol, gt)?;
    let cands = Candidates::build(cfg.protocol, gt, dets)?;
    let outcomes = match_detections(gt, &cands, None);
    let curve = Curve::build(&outcomes, None);
    let spec = cfg.spec();
    let metrics = Metrics::of(&curve, &cfg.fp_points, cfg.summary_count, spec.rule);
    let intervals = cfg
        .bootstrap
        .as_ref()
        .map(|b| bootstrap(&outcomes, spec, b));
    let threshold = cfg.score_threshold.map(|t| curve.at_threshold(t));
    let mut notes = Vec::new();
    let breakdowns = if cfg.breakdowns {
        breakdowns(gt, &cands, cfg, &mut notes)
    } else {
        Vec::new()
    };
    if cands.ignored_rows > 0 {
        notes.push(format!(
            "{} detection rows name keys that are not in the ground truth and were ignored (e.g. {})",
            cands.ignored_rows,
            cands.ignored_keys.join(", ")
        ));
    }
    if cfg.protocol == Protocol::KeySlice {
        notes.push(
            "keyslice: every detection row is one detection on its key image; slices and tracks are ignored"
                .into(),
        );
    }
    if metrics.sens.iter().any(|s| !s.is_finite()) {
        notes.push(format!(
            "the reference rule ({}) gives non-finite sensitivity past the curve's end (the last \
             detection is a hit or a duplicate, so the last segment is vertical); the clamped \
             reading is given beside it",
            spec.rule.name()
        ));
    }
    Ok(Evaluation {
        protocol: cfg.protocol,
        variant: (cfg.protocol == Protocol::KeySlice).then_some(cfg.variant),
        interpolation: spec.rule,
        hit_threshold: cfg.protocol.hit_threshold(),
        ground_truth: gt.source.clone(),
        units: gt.units.len(),
        lesions: outcomes.lesions(),
        detection_rows: dets.len(),
        ignored_rows: cands.ignored_rows,
        ignored_keys: cands.ignored_keys.clone(),
        detections: cands.len(),
        fp_points: cfg.fp_points.clone(),
        summary_count: cfg.summary_count,
        metrics,
        intervals,
        bootstrap: cfg.bootstrap,
        threshold,
        breakdowns,
        notes,
        curve,
        outcomes,
    })
}

/// Evaluates `a` and `b` and compares them with a paired bootstrap
/// (`cfg.bootstrap`, or the default when `None`).
pub fn compare(
    gt: &GroundTruth,
    a: &DetectionSet,
    b: &DetectionSet,
    cfg: &EvalConfig,
) -> Result<(Evaluation, Evaluation, Comparison)> {
    let ea = evaluate(gt, a, cfg)?;
    let eb = evaluate(gt, b, cfg)?;
    let cmp = compare_evaluations(&ea, &eb, cfg);
    Ok((ea, eb, cmp))
}

/// The paired bootstrap of two evaluations made under `cfg` on the same
/// ground truth (`cfg.bootstrap`, or the default when `None`).
pub fn compare_evaluations(a: &Evaluation, b: &Evaluation, cfg: &EvalConfig) -> Comparison {
    let boot = cfg.bootstrap.unwrap_or_default();
    paired_bootstrap(&a.outcomes, &b.outcomes, cfg.spec(), &boot)
}

/// The size bins' edges in mm of long diameter (3DCE's paper: < 10,
/// 10-30, >= 30 mm).
pub const SIZE_EDGES_MM: [f64; 2] = [10.0, 30.0];

/// The index of the bin `edges` puts `v` in (0: below the first edge).
pub fn bin_index(edges: &[f64], v: f64) -> usize {
    edges.partition_point(|&e| e <= v)
}

/// The label of the bin `edges` puts `v` in, e.g. `< 10 mm`, `10-30 mm`.
pub fn bin_label(edges: &[f64], v: f64) -> String {
    let i = bin_index(edges, v);
    let fmt = |x: f64| format!("{x}");
    match (i.checked_sub(1).map(|j| edges[j]), edges.get(i)) {
        (None, Some(&hi)) => format!("< {} mm", fmt(hi)),
        (Some(lo), Some(&hi)) => format!("{}-{} mm", fmt(lo), fmt(hi)),
        (Some(lo), None) => format!(">= {} mm", fmt(lo)),
        (None, None) => "all".into(),
    }
}

/// Bins in edge order, so tables read small to large.
pub fn bin_order(edges: &[f64]) -> Vec<String> {
    let mut probes: Vec<f64> = vec![f64::NEG_INFINITY];
    probes.extend(edges.iter().copied());
    probes.iter().map(|&p| bin_label(edges, p)).collect()
}

type Grouper<'a> = (
    &'static str,
    Box<dyn Fn(&LesionAttrs) -> Option<String> + 'a>,
    Vec<String>,
);

/// Ground truth filtered per group, every detection kept (MULAN's per-tag
/// FROC): a detection on a lesion of another group is a false positive, and
/// false positives are still per unit of the whole set.
fn breakdowns(
    gt: &GroundTruth,
    cands: &Candidates,
    cfg: &EvalConfig,
    notes: &mut Vec<String>,
) -> Vec<BreakdownGroup> {
    let mut types: Vec<String> = gt
        .units
        .iter()
        .flat_map(|u| u.lesions.iter().filter_map(|l| l.attrs.lesion_type.clone()))
        .collect();
    types.sort();
    types.dedup();
    let groupers: Vec<Grouper<'_>> = vec![
        (
            "size",
            Box::new(|a: &LesionAttrs| {
                a.long_diameter_mm.map(|d| bin_label(&cfg.size_edges_mm, d))
            }),
            bin_order(&cfg.size_edges_mm),
        ),
        (
            "type",
            Box::new(|a: &LesionAttrs| a.lesion_type.clone()),
            types,
        ),
        (
            "slice interval",
            Box::new(|a: &LesionAttrs| {
                a.slice_interval_mm
                    .map(|d| bin_label(&cfg.interval_edges_mm, d))
            }),
            bin_order(&cfg.interval_edges_mm),
        ),
    ];
    let spec = cfg.spec();
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for (by, group_of, order) in &groupers {
        let labels: Vec<Vec<Option<String>>> = gt
            .units
            .iter()
            .map(|u| u.lesions.iter().map(|l| group_of(&l.attrs)).collect())
            .collect();
        if labels.iter().flatten().all(Option::is_none) {
            missing.push(*by);
            continue;
        }
        for group in order {
            let mask: Vec<Vec<bool>> = labels
                .iter()
                .map(|ls| {
                    ls.iter()
                        .map(|l| l.as_deref() == Some(group.as_str()))
                        .collect()
                })
                .collect();
            let lesions: u64 = mask.iter().flatten().filter(|&&m| m).count() as u64;
            if lesions == 0 {
                continue;
            }
            let outcomes = match_detections(gt, cands, Some(&mask));
            out.push(BreakdownGroup {
                by: (*by).into(),
                group: group.clone(),
                lesions,
                metrics: spec.metrics(&outcomes, None),
            });
        }
    }
    if !out.is_empty() {
        notes.push(
            "breakdowns filter the ground truth to the group and keep all detections (as MULAN's \
             per-tag FROC): a detection on a lesion outside the group counts as a false positive; \
             false positives are per unit of the whole set"
                .into(),
        );
    }
    if !missing.is_empty() {
        notes.push(format!(
            "no breakdown by {}: the ground truth does not record it",
            missing.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_labelled_in_order() {
        let e = [10.0, 30.0];
        assert_eq!(bin_label(&e, 3.0), "< 10 mm");
        assert_eq!(bin_label(&e, 10.0), "10-30 mm");
        assert_eq!(bin_label(&e, 29.9), "10-30 mm");
        assert_eq!(bin_label(&e, 30.0), ">= 30 mm");
        assert_eq!(bin_order(&e), vec!["< 10 mm", "10-30 mm", ">= 30 mm"]);
        assert_eq!(bin_order(&[2.5]), vec!["< 2.5 mm", ">= 2.5 mm"]);
    }
}
