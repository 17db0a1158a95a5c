//! The evaluation protocols of uld: the three ways the DeepLesion
//! literature scores lesion detectors, reproduced rule for rule from the
//! reference code, plus what a reader needs to trust a number (intervals,
//! breakdowns, curves, paired comparisons).
//!
//! | protocol | unit | hit | reference |
//! |---|---|---|---|
//! | [`Protocol::KeySlice`] | key image | 2D IoU >= 0.5 | CADLab 3DCE `rcnn/utils/evaluation.py`, MULAN `detection_eval.py` |
//! | [`Protocol::Harvester`] | sub-volume | tracklet box on the lesion's slice, IoU >= 0.5 | JimmyCai91/LesionHarvester `evaluation.py` |
//! | [`Protocol::Lens`] | sub-volume | 3D IoBB >= 0.3 | viggin/DeepLesion_manual_test_set `general_detection_evaluation.py` |
//!
//! The rules, each documented where it is implemented:
//! overlaps with inclusive `+1` extents ([`overlap`]); matching, duplicates,
//! NaN overlaps and tie order ([`score`]); interpolation at exact FP counts
//! and past the curve's end ([`interp`]); AP ([`metrics::Curve::average_precision`]);
//! the ground-truth conventions ([`readers`]); the detection file ([`detections`]);
//! the per-scan lesion JSON of `uld detect SCAN` ([`scan_detections`]).
//!
//! Typical use: read ground truth ([`read_ground_truth`], or the readers
//! [`read_harvester`], [`read_lens`], [`keyslice_ground_truth`]) and detections ([`DetectionSet::read`]), call
//! [`evaluate()`] (or [`compare()`]), then [`report::write_report`].

pub mod bench;
pub mod bootstrap;
pub mod detections;
pub mod evaluate;
pub mod gt;
pub mod interp;
pub mod metrics;
pub mod overlap;
pub mod plot;
pub mod protocol;
pub mod readers;
pub mod report;
pub mod scan_detections;
pub mod score;
pub mod sources;

pub use bootstrap::{BootstrapConfig, Comparison};
pub use detections::{Detection, DetectionSet};
pub use evaluate::{EvalConfig, Evaluation, compare, compare_evaluations, evaluate};
pub use gt::{GroundTruth, GroundTruthBuilder, GtLesion, GtUnit, LesionAttrs};
pub use interp::Interpolation;
pub use metrics::{Curve, Metrics};
pub use protocol::{KeySliceVariant, Protocol};
pub use readers::{KeySliceRow, LensSplit, keyslice_ground_truth, read_harvester, read_lens};
pub use sources::{GroundTruthOptions, read_ground_truth};
