//! Detection files and protocol scores for a dataset split: key images for
//! the `keyslice` protocol, and every slice of each sub-volume, linked into
//! tracklets, for the `harvester` protocol.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use uld_core::Result;
use uld_data::deeplesion::{LesionRecord, SeriesFolder};
use uld_data::loader::KeyImage;
use uld_eval::gt::subvolume_range;
use uld_eval::sources::keyslice_row;
use uld_eval::{
    BootstrapConfig, Detection, DetectionSet, EvalConfig, Evaluation, GroundTruth, Protocol,
    evaluate, keyslice_ground_truth,
};
use uld_model::Detector;

use crate::detect::{DetectSettings, KeyImageDetections};
use crate::tracklets::{SliceDetection, Tracklet, link_tracklets};
use crate::validation::{Validation, Validator};

/// IoU at which boxes on neighbouring slices are one lesion.
pub const LINK_IOU: f32 = 0.5;

/// Key-image detections as a detection set (keys are `File_name`s).
pub fn keyslice_detection_set(dets: &[KeyImageDetections]) -> DetectionSet {
    let mut set = DetectionSet::new();
    for image in dets {
        for (b, s) in image.boxes.iter().zip(&image.scores) {
            set.push(
                &image.file_name,
                Detection {
                    slices: None,
                    bbox: *b,
                    score: *s,
                    track: None,
                },
            );
        }
    }
    set
}

/// Key-slice ground truth from `DL_info.csv` rows (noisy rows dropped).
pub fn keyslice_truth(records: &[LesionRecord], source: &str) -> GroundTruth {
    keyslice_ground_truth(records.iter().map(keyslice_row), true, source)
}

/// A sub-volume `PPPPPP_SS_RR_FFF-LLL` to detect on.
#[derive(Debug, Clone, PartialEq)]
pub struct SubVolume {
    pub key: String,
    /// `PPPPPP_SS_RR`.
    pub series_id: String,
    pub series_dir: PathBuf,
    pub first_png: u32,
    pub last_png: u32,
    pub spacing: [f64; 3],
}

/// The sub-volumes of `truth` whose series `records` name (for spacing).
pub fn subvolumes(truth: &GroundTruth, root: &Path, records: &[LesionRecord]) -> Vec<SubVolume> {
    let spacing: HashMap<String, [f64; 3]> =
        records.iter().map(|r| (r.series_id(), r.spacing)).collect();
    truth
        .units
        .iter()
        .filter_map(|u| {
            let (first_png, last_png) = subvolume_range(&u.key)?;
            let series = u.key.get(..12)?;
            Some(SubVolume {
                key: u.key.clone(),
                series_id: series.to_string(),
                series_dir: root.join("Images_png").join(series),
                first_png,
                last_png,
                spacing: *spacing.get(series)?,
            })
        })
        .collect()
}

/// The sub-volumes the rows' `Slice_range`s name, once each, in row order.
pub fn subvolumes_of_records(root: &Path, records: &[LesionRecord]) -> Vec<SubVolume> {
    let mut seen = std::collections::HashSet::new();
    records
        .iter()
        .filter_map(|r| {
            let [first_png, last_png] = r.slice_range;
            let key = format!("{}_{first_png:03}-{last_png:03}", r.series_id());
            seen.insert(key.clone()).then(|| SubVolume {
                key,
                series_id: r.series_id(),
                series_dir: root.join("Images_png").join(r.series_id()),
                first_png,
                last_png,
                spacing: r.spacing,
            })
        })
        .collect()
}

/// The detections on one slice of a sub-volume.
struct SliceDetections {
    /// Index of the sub-volume.
    subvolume: usize,
    /// 0-based inside the sub-volume.
    slice: u32,
    /// Keyed by the slice's `File_name`.
    detections: KeyImageDetections,
}

/// Detects on every present slice of each sub-volume.
fn detect_slices(
    detector: &dyn Detector,
    subvolumes: &[SubVolume],
    settings: &DetectSettings,
) -> Result<Vec<SliceDetections>> {
    let mut images = Vec::new();
    let mut owner = Vec::new();
    for (v, sub) in subvolumes.iter().enumerate() {
        let folder = SeriesFolder::open(&sub.series_dir)?;
        for png in (sub.first_png..=sub.last_png).filter(|&p| folder.contains(p)) {
            images.push(KeyImage {
                series_dir: sub.series_dir.clone(),
                key_png: png,
                file_name: format!("{}_{png:03}.png", sub.series_id),
                spacing: sub.spacing,
                boxes: Vec::new(),
                ignore: Vec::new(),
            });
            owner.push((v, png - sub.first_png));
        }
    }
    Ok(settings
        .detect(detector, images)?
        .into_iter()
        .map(|detections| {
            let (subvolume, slice) = owner[detections.index];
            SliceDetections {
                subvolume,
                slice,
                detections,
            }
        })
        .collect())
}

/// The slices' boxes linked into tracklets: rows keyed by sub-volume,
/// slices 0-based inside it.
fn link_subvolumes(subvolumes: &[SubVolume], slices: &[SliceDetections]) -> DetectionSet {
    let mut per_volume: Vec<Vec<SliceDetection>> = vec![Vec::new(); subvolumes.len()];
    for s in slices {
        let image = &s.detections;
        for (b, score) in image.boxes.iter().zip(&image.scores) {
            per_volume[s.subvolume].push(SliceDetection {
                slice: s.slice,
                bbox: *b,
                score: *score,
            });
        }
    }
    let mut set = DetectionSet::new();
    for (sub, dets) in subvolumes.iter().zip(per_volume) {
        push_tracklets(&mut set, &sub.key, &link_tracklets(&dets, LINK_IOU));
    }
    set
}

/// Adds one row per box of each tracklet under `key`, the tracklet's index
/// as its track (the layout the `harvester` and `lens` readers expect).
pub fn push_tracklets(set: &mut DetectionSet, key: &str, tracklets: &[Tracklet]) {
    for (track, t) in tracklets.iter().enumerate() {
        for d in &t.boxes {
            // Slice indices are bounded by the voxel limit, far below i32::MAX.
            let z = d.slice as i32;
            set.push(
                key,
                Detection {
                    slices: Some((z, z)),
                    bbox: d.bbox,
                    score: d.score,
                    track: Some(track as u32),
                },
            );
        }
    }
}

/// Scores the detector on a validation split during training: `keyslice`
/// on the split's (partial) key-image labels and, where complete
/// annotations exist, `harvester` on them. The score that picks the best
/// checkpoint is the harvester mean sensitivity when available, else the
/// keyslice one.
pub struct SplitValidator {
    pub settings: DetectSettings,
    pub key_images: Vec<KeyImage>,
    pub keyslice: GroundTruth,
    pub harvester: Option<(Vec<SubVolume>, GroundTruth)>,
}

/// One protocol's detections on a split and their evaluation.
pub struct Scored {
    pub detections: DetectionSet,
    pub evaluation: Evaluation,
}

/// A detector's detections and scores on a split.
pub struct SplitScores {
    pub keyslice: Scored,
    pub harvester: Option<Scored>,
}

impl SplitScores {
    /// The harvester mean sensitivity when complete annotations exist, else
    /// the keyslice one (clamped readings).
    pub fn score(&self) -> f64 {
        self.harvester
            .as_ref()
            .unwrap_or(&self.keyslice)
            .evaluation
            .metrics
            .summary_clamped
    }
}

/// The protocol's settings without the report-only extras (bootstrap,
/// breakdowns), as validation scores, or with both: `bootstrap` intervals
/// and the breakdowns by size, type and slice interval.
pub fn eval_config(protocol: Protocol, bootstrap: Option<BootstrapConfig>) -> EvalConfig {
    EvalConfig {
        bootstrap,
        breakdowns: bootstrap.is_some(),
        ..EvalConfig::new(protocol)
    }
}

impl SplitValidator {
    /// Detects on the split's key images (and sub-volumes, with complete
    /// annotations) and scores them, with `bootstrap` intervals if given.
    pub fn score(
        &self,
        detector: &dyn Detector,
        bootstrap: Option<BootstrapConfig>,
    ) -> Result<SplitScores> {
        let subvolumes = self.harvester.as_ref().map(|(s, _)| s.as_slice());
        let (dets, subvolume_detections) =
            detect_split(detector, &self.key_images, subvolumes, &self.settings)?;
        let detections = keyslice_detection_set(&dets);
        let evaluation = evaluate(
            &self.keyslice,
            &detections,
            &eval_config(Protocol::KeySlice, bootstrap),
        )?;
        let keyslice = Scored {
            detections,
            evaluation,
        };
        let harvester = match (&self.harvester, subvolume_detections) {
            (Some((_, truth)), Some(detections)) => {
                let evaluation = evaluate(
                    truth,
                    &detections,
                    &eval_config(Protocol::Harvester, bootstrap),
                )?;
                Some(Scored {
                    detections,
                    evaluation,
                })
            }
            _ => None,
        };
        Ok(SplitScores {
            keyslice,
            harvester,
        })
    }
}

/// Detects on a split's key images and, if given, every slice of its
/// sub-volumes (linked into tracklets). A key image is a slice of its
/// lesion's sub-volume: detected there once, it serves both protocols.
pub fn detect_split(
    detector: &dyn Detector,
    key_images: &[KeyImage],
    subvolumes: Option<&[SubVolume]>,
    settings: &DetectSettings,
) -> Result<(Vec<KeyImageDetections>, Option<DetectionSet>)> {
    let Some(subvolumes) = subvolumes else {
        return Ok((settings.detect(detector, key_images.to_vec())?, None));
    };
    let slices = detect_slices(detector, subvolumes, settings)?;
    let keys = key_image_detections(detector, key_images, &slices, settings)?;
    Ok((keys, Some(link_subvolumes(subvolumes, &slices))))
}

/// The key images' detections, taken from the sub-volume slices that are
/// the same images, and detected apart for any that none is.
fn key_image_detections(
    detector: &dyn Detector,
    key_images: &[KeyImage],
    slices: &[SliceDetections],
    settings: &DetectSettings,
) -> Result<Vec<KeyImageDetections>> {
    let by_name: HashMap<&str, &KeyImageDetections> = slices
        .iter()
        .map(|s| (s.detections.file_name.as_str(), &s.detections))
        .collect();
    let mut found = Vec::with_capacity(key_images.len());
    let mut missing = Vec::new();
    for (index, image) in key_images.iter().enumerate() {
        match by_name.get(image.file_name.as_str()) {
            Some(d) => found.push(KeyImageDetections {
                index,
                file_name: image.file_name.clone(),
                boxes: d.boxes.clone(),
                scores: d.scores.clone(),
            }),
            None => missing.push(index),
        }
    }
    if !missing.is_empty() {
        let images = missing.iter().map(|&i| key_images[i].clone()).collect();
        for d in settings.detect(detector, images)? {
            found.push(KeyImageDetections {
                index: missing[d.index],
                ..d
            });
        }
        found.sort_by_key(|d| d.index);
    }
    Ok(found)
}

impl Validator for SplitValidator {
    fn validate(&mut self, detector: &dyn Detector, _step: u64) -> Result<Validation> {
        let scores = self.score(detector, None)?;
        let k = &scores.keyslice.evaluation.metrics;
        let mut metrics =
            json!({"keyslice": {"sens": k.sens_clamped, "mean_sens": k.summary_clamped}});
        if let Some(h) = &scores.harvester {
            let h = &h.evaluation.metrics;
            metrics["harvester"] =
                json!({"sens": h.sens_clamped, "mean_sens": h.summary_clamped, "ap": h.ap});
        }
        Ok(Validation {
            score: scores.score(),
            metrics,
        })
    }
}
