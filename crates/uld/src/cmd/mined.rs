//! `uld mined`: the lesions a trained run's teacher mines on its training
//! key images (its confident predictions that are not annotated lesions,
//! by the run's own merge rule), exported as `DL_info.csv` rows for review.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use uld_core::Box2;
use uld_data::deeplesion::{LesionRecord, LesionType, read_dl_info, write_dl_info_with};
use uld_data::loader::KeyImage;
use uld_data::synth::BOX_PADDING_PX;
use uld_train::device::open_device;
use uld_train::mined::{MinedImage, MinedScore, mine_key_images};
use uld_train::{MiningConfig, Weights, load_trained_weights};

use super::train::{complete_annotations, detect_settings, training_images};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WeightsArg {
    /// The newest checkpoint's teacher (what mined during training).
    Teacher,
    /// The newest checkpoint's student.
    Student,
    /// best.safetensors (the best validated weights).
    Best,
}

impl From<WeightsArg> for Weights {
    fn from(w: WeightsArg) -> Self {
        match w {
            WeightsArg::Teacher => Weights::Teacher,
            WeightsArg::Student => Weights::Student,
            WeightsArg::Best => Weights::Best,
        }
    }
}

#[derive(Args)]
pub struct MinedArgs {
    /// A run directory of `uld train`.
    #[arg(long)]
    pub model: PathBuf,
    /// The dataset root the run trained on.
    #[arg(long)]
    pub data: PathBuf,
    /// Output CSV: DL_info.csv columns, then Mined_score and, where the
    /// dataset's complete annotations are known, Unlabelled_lesion (1/0).
    #[arg(long, default_value = "mined.csv")]
    pub out: PathBuf,
    /// Which of the run's weights mine.
    #[arg(long, value_enum, default_value = "teacher")]
    pub weights: WeightsArg,
    /// Score from which a prediction is a mined lesion (default: the run's `mining.tau_high`).
    #[arg(long)]
    pub tau_high: Option<f32>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// The mined lesions of a run on its training images.
pub struct MinedRun {
    pub images: Vec<KeyImage>,
    pub mined: Vec<MinedImage>,
    /// Against the complete annotations, where known: the score, and per
    /// image and mined box whether it is an unlabelled lesion.
    pub truth: Option<(MinedScore, Vec<Vec<bool>>)>,
}

/// Mines the training key images of `data` with the run's `weights`.
pub fn mine_run(
    data: &Path,
    records: &[LesionRecord],
    run: &Path,
    weights: Weights,
    device: tch::Device,
    tau_high: Option<f32>,
) -> anyhow::Result<MinedRun> {
    let trained = load_trained_weights(run, device, weights)?;
    let mut mining: MiningConfig = trained.config.mining.clone();
    if let Some(t) = tau_high {
        mining.tau_high = t;
        mining.tau_low = mining.tau_low.min(t);
    }
    mining.validate()?;
    let images = training_images(data, records, &trained.config)?;
    let settings = detect_settings(&trained.config, device);
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

pub fn run(args: &MinedArgs) -> anyhow::Result<()> {
    let device = open_device(&args.device)?;
    let records = read_dl_info(args.data.join("DL_info.csv"))?;
    let mined = mine_run(
        &args.data,
        &records,
        &args.model,
        args.weights.into(),
        device,
        args.tau_high,
    )?;
    let rows = mined_rows(&mined, &records)?;
    let count = rows.records.len();
    write_dl_info_with(&args.out, &rows.records, &rows.columns, &rows.values)?;
    println!(
        "{count} mined lesions on {} training key images -> {}",
        mined.images.len(),
        args.out.display()
    );
    if let Some((score, _)) = &mined.truth {
        println!("{}", describe_score(score));
    }
    Ok(())
}

/// "N of M mined lesions are unlabelled lesions (precision P); they find
/// K of U unlabelled lesions (recall R)".
pub fn describe_score(score: &MinedScore) -> String {
    let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1}%", 100.0 * v));
    format!(
        "{} of {} mined lesions are unlabelled lesions (precision {}); they find {} of {} unlabelled lesions on these images (recall {})",
        score.true_mined,
        score.true_mined + score.false_mined,
        pct(score.precision()),
        score.unlabelled_found,
        score.unlabelled,
        pct(score.recall())
    )
}

/// Mined lesions as rows with extra columns.
struct MinedRows {
    records: Vec<LesionRecord>,
    columns: Vec<&'static str>,
    values: Vec<Vec<String>>,
}

fn mined_rows(mined: &MinedRun, records: &[LesionRecord]) -> anyhow::Result<MinedRows> {
    let by_image: HashMap<&str, &LesionRecord> =
        records.iter().map(|r| (r.file_name.as_str(), r)).collect();
    let mut rows = MinedRows {
        records: Vec::new(),
        columns: vec!["Mined_score"],
        values: Vec::new(),
    };
    if mined.truth.is_some() {
        rows.columns.push("Unlabelled_lesion");
    }
    for m in &mined.mined {
        let image = &mined.images[m.index];
        let row = by_image
            .get(image.file_name.as_str())
            .with_context(|| format!("no DL_info row for {}", image.file_name))?;
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
