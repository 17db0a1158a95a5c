//! A run's mined lesions on its training key images, scored against the
//! complete annotations where they are known, and as `DL_info.csv` rows
//! for review (`uld mined`).

use std::collections::HashMap;
use std::path::Path;

use tch::Device;
use uld_core::{Box2, Error, Result};
use uld_data::deeplesion::{LesionRecord, LesionType, write_dl_info_with};
use uld_data::loader::KeyImage;
use uld_data::synth::BOX_PADDING_PX;
use uld_model::BuildDetector;

use crate::mined::{MinedImage, MinedScore, mine_key_images};
use crate::mining::MiningConfig;
use crate::run::{complete_annotations, detect_settings, training_images};
use crate::trained::{Weights, load_trained_weights};

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
/// in `run` (a `D`), by the run's merge rule at `tau_high` if given.
pub fn mine_run<D: BuildDetector>(
    data: &Path,
    records: &[LesionRecord],
    run: &Path,
    weights: Weights,
    device: Device,
    tau_high: Option<f32>,
) -> Result<MinedRun> {
    let trained = load_trained_weights::<D>(run, device, weights)?;
    let mut mining: MiningConfig = trained.config.mining.clone();
    if let Some(t) = tau_high {
        mining.tau_high = t;
        mining.tau_low = mining.tau_low.min(t);
    }
    mining.validate()?;
    let images = training_images(data, records, &trained.config)?;
    let settings = detect_settings::<D>(&trained.config, device);
    let mined = mine_key_images(&trained.detector, &settings, images.clone(), &mining)?;
    let truth = complete_annotations(data, &images)?.map(|complete| {
        let mut score = MinedScore::default();
        let flags = mined
            .iter()
            .map(|m| score.add(&m.boxes, &images[m.index].boxes, &complete[m.index]))
            .collect();
        (score, flags)
    });
    Ok(MinedRun {
        images,
        mined,
        truth,
    })
}

/// Mined lesions as `DL_info.csv` rows with extra columns.
pub struct MinedRows {
    pub records: Vec<LesionRecord>,
    pub columns: Vec<&'static str>,
    pub values: Vec<Vec<String>>,
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
            columns: vec!["Mined_score"],
            values: Vec::new(),
        };
        if mined.truth.is_some() {
            rows.columns.push("Unlabelled_lesion");
        }
        for m in &mined.mined {
            let image = &mined.images[m.index];
            let row = by_image.get(image.file_name.as_str()).ok_or_else(|| {
                Error::invalid(
                    "mined lesions",
                    format!("no DL_info row for {}", image.file_name),
                )
            })?;
            for (k, (b, score)) in m.boxes.iter().zip(&m.scores).enumerate() {
                rows.records.push(mined_record(row, b));
                let mut values = vec![format!("{score:.4}")];
                if let Some((_, flags)) = &mined.truth {
                    values.push(u8::from(flags[m.index][k]).to_string());
                }
                rows.values.push(values);
            }
        }
        Ok(rows)
    }

    /// Writes the rows as a `DL_info.csv` with the extra columns.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_dl_info_with(path, &self.records, &self.columns, &self.values)
    }
}

/// A `DL_info.csv` row for a mined box on the key image of `row`: the box
/// as `Bounding_boxes`, and as "RECIST" the box's axes unpadded by 5 px
/// (long axis along the longer side). The lesion type is unknown (-1); the
/// normalised location is the box centre over the image size for x and y,
/// and the annotated lesion's z.
fn mined_record(row: &LesionRecord, b: &Box2) -> LesionRecord {
    let shrink = BOX_PADDING_PX.min((b.width().min(b.height()) / 2.0 - 0.5).max(0.0));
    let inner = b.pad(-shrink);
    let (cx, cy) = ((inner.x1 + inner.x2) / 2.0, (inner.y1 + inner.y2) / 2.0);
    let horizontal = [inner.x1, cy, inner.x2, cy];
    let vertical = [cx, inner.y1, cx, inner.y2];
    let (long, short) = if inner.width() >= inner.height() {
        (horizontal, vertical)
    } else {
        (vertical, horizontal)
    };
    let mut recist = [0.0; 8];
    recist[..4].copy_from_slice(&long);
    recist[4..].copy_from_slice(&short);
    let [w, h] = row.image_size;
    LesionRecord {
        recist,
        bbox: *b,
        diameters_px: [
            inner.width().max(inner.height()),
            inner.width().min(inner.height()),
        ],
        normalized_location: [
            cx / w.max(1) as f32,
            cy / h.max(1) as f32,
            row.normalized_location[2],
        ],
        lesion_type: LesionType::Unknown,
        possibly_noisy: false,
        ..row.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use uld_data::deeplesion::{Gender, Split};

    #[test]
    fn a_mined_box_becomes_a_row_with_its_axes_inside_the_box() {
        let row = LesionRecord {
            file_name: "000001_01_01_012.png".into(),
            patient: 1,
            study: 1,
            series: 1,
            key_slice_png: 12,
            recist: [10.0, 10.0, 30.0, 10.0, 20.0, 5.0, 20.0, 15.0],
            bbox: Box2::new(5.0, 0.0, 35.0, 20.0),
            diameters_px: [20.0, 10.0],
            normalized_location: [0.1, 0.2, 0.7],
            lesion_type: LesionType::Liver,
            possibly_noisy: true,
            slice_range: [1, 24],
            spacing: [0.8, 0.8, 2.0],
            image_size: [512, 400],
            dicom_windows: vec![[-160.0, 240.0]],
            gender: Gender::Female,
            age: Some(60.0),
            split: Split::Train,
        };
        let b = Box2::new(100.0, 200.0, 140.0, 220.0);
        let r = mined_record(&row, &b);
        assert_eq!(r.bbox, b);
        assert_eq!(r.diameters_px, [30.0, 10.0], "unpadded by 5 px each side");
        assert_eq!(
            &r.recist[..4],
            &[105.0, 210.0, 135.0, 210.0],
            "long axis along x"
        );
        assert_eq!(&r.recist[4..], &[120.0, 205.0, 120.0, 215.0]);
        assert_eq!(r.normalized_location, [120.0 / 512.0, 0.525, 0.7]);
        assert_eq!(r.lesion_type, LesionType::Unknown);
        assert!(!r.possibly_noisy);
        assert_eq!(r.file_name, row.file_name, "on the same key image");
    }
}
