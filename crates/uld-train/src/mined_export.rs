//! A run's mined lesions on its training key images, scored against the
//! complete annotations where they are known, and as `DL_info.csv` rows
//! for review (`uld mined`).

use std::collections::HashMap;
use std::path::Path;

use tch::Device;
use uld_core::{Error, Result};
use uld_data::deeplesion::{
    LesionRecord, MINED_SCORE, UNLABELLED_LESION, record_for_box, write_dl_info_with,
};
use uld_data::loader::KeyImage;
use uld_model::{BuildDetector, Detector};

use crate::mined::{MinedImage, MinedScore, mine_key_images};
use crate::mining::MiningConfig;
use crate::mirror::MirrorConsistent;
use crate::run::{complete_annotations, detect_settings, training_images};
use crate::trained::{TrainedDetector, Weights, load_trained_weights};

/// The mined lesions of a run on its training images.
pub struct MinedRun {
    pub images: Vec<KeyImage>,
    pub mined: Vec<MinedImage>,
    /// Against the complete annotations, where known: the score, and per
    /// image and mined box whether it is an unlabelled lesion.
    pub truth: Option<(MinedScore, Vec<Vec<bool>>)>,
}

impl MinedRun {
    /// The training images with their mined lesions added to their labels,
    /// as a multi-stage pipeline retrains on them.
    pub fn labelled_images(&self) -> Vec<KeyImage> {
        let mut images = self.images.clone();
        for m in &self.mined {
            images[m.index].boxes.extend(&m.boxes);
        }
        images
    }
}

/// Mines the training key images of `data` with the `weights` of the run
/// in `run` (a `D`), by the run's merge rule at `tau_high` if given (with
/// `teacher_flip`, on each image and its mirror image, as in training).
pub fn mine_run<D: BuildDetector>(
    data: &Path,
    records: &[LesionRecord],
    run: &Path,
    weights: Weights,
    device: Device,
    tau_high: Option<f32>,
) -> Result<MinedRun> {
    let trained = load_trained_weights::<D>(run, device, weights)?;
    mine_trained(data, records, &trained, device, tau_high)
}

/// [`mine_run`] with weights already loaded.
pub fn mine_trained<D: BuildDetector>(
    data: &Path,
    records: &[LesionRecord],
    trained: &TrainedDetector<D>,
    device: Device,
    tau_high: Option<f32>,
) -> Result<MinedRun> {
    let mut mining: MiningConfig = trained.config.mining.clone();
    if let Some(t) = tau_high {
        mining.tau_high = t;
        mining.tau_low = mining.tau_low.min(t);
    }
    mining.validate()?;
    let images = training_images(data, records, &trained.config)?;
    let settings = detect_settings::<D>(&trained.config, device);
    let mirrored = MirrorConsistent(&trained.detector);
    let teacher: &dyn Detector = if mining.teacher_flip {
        &mirrored
    } else {
        &trained.detector
    };
    let mined = mine_key_images(teacher, &settings, images.clone(), &mining)?;
    let truth = complete_annotations(data, &images)?.map(|complete| {
        let mut score = MinedScore::default();
        let flags = mined
            .iter()
            .map(|m| {
                let image = &images[m.index];
                let pixel_mm = [image.spacing[0], image.spacing[1]];
                score.add(&m.boxes, &image.boxes, &complete[m.index], Some(pixel_mm))
            })
            .collect();
        (score, flags)
    });
    Ok(MinedRun {
        images,
        mined,
        truth,
    })
}

/// Mined lesions as `DL_info.csv` rows, with each row's score and, where
/// the complete annotations are known, whether it is a real unlabelled
/// lesion.
pub struct MinedRows {
    pub records: Vec<LesionRecord>,
    pub scores: Vec<f32>,
    pub real: Vec<Option<bool>>,
    /// Whether the complete annotations are known (`real` is then all `Some`).
    pub truth_known: bool,
}

impl MinedRows {
    /// The rows of `mined`, each from the `DL_info.csv` row of its key
    /// image in `records`: `Mined_score` and, where the complete
    /// annotations are known, `Unlabelled_lesion` (1 for a real one).
    pub fn new(mined: &MinedRun, records: &[LesionRecord]) -> Result<Self> {
        let by_image: HashMap<&str, &LesionRecord> =
            records.iter().map(|r| (r.file_name.as_str(), r)).collect();
        let mut rows = Self {
            records: Vec::new(),
            scores: Vec::new(),
            real: Vec::new(),
            truth_known: mined.truth.is_some(),
        };
        for m in &mined.mined {
            let image = &mined.images[m.index];
            let row = by_image.get(image.file_name.as_str()).ok_or_else(|| {
                Error::invalid(
                    "mined lesions",
                    format!("no DL_info row for {}", image.file_name),
                )
            })?;
            for (k, (b, score)) in m.boxes.iter().zip(&m.scores).enumerate() {
                rows.records.push(record_for_box(row, b));
                rows.scores.push(*score);
                rows.real
                    .push(mined.truth.as_ref().map(|(_, flags)| flags[m.index][k]));
            }
        }
        Ok(rows)
    }

    /// Writes the rows as a `DL_info.csv` with `Mined_score` and, where
    /// the truth is known, `Unlabelled_lesion` (1/0).
    pub fn write(&self, path: &Path) -> Result<()> {
        let columns: &[&str] = if self.truth_known {
            &[MINED_SCORE, UNLABELLED_LESION]
        } else {
            &[MINED_SCORE]
        };
        let values: Vec<Vec<String>> = self
            .scores
            .iter()
            .zip(&self.real)
            .map(|(score, real)| {
                let mut row = vec![format!("{score:.4}")];
                row.extend(real.map(|r| u8::from(r).to_string()));
                row
            })
            .collect();
        write_dl_info_with(path, &self.records, columns, &values)
    }
}
