//! `uld detect`: run a trained detector over a DeepLesion-format split and
//! write detection files in the format `uld eval` reads.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use uld_data::deeplesion::{LesionRecord, Split, read_dl_info};
use uld_data::loader::{KeyImage, NoisyPolicy};
use uld_train::device::open_device;
use uld_train::load_trained;
use uld_train::validate::{detect_subvolumes, keyslice_detection_set, subvolumes_of_records};

use super::train::detect_settings;

#[derive(Args)]
pub struct DetectArgs {
    /// A run directory of `uld train`, or a weights file with config.toml beside it.
    #[arg(long)]
    pub model: PathBuf,
    /// Dataset root holding DL_info.csv and Images_png/.
    #[arg(long)]
    pub data: PathBuf,
    /// Which split of DL_info.csv: train, val, test.
    #[arg(long, default_value = "test", value_parser = parse_split)]
    pub split: Split,
    /// Output folder for keyslice_detections.csv and subvolume_detections.csv.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Only the key images (skip the sub-volumes' slices).
    #[arg(long)]
    pub key_images_only: bool,
}

pub fn parse_split(s: &str) -> Result<Split, String> {
    Split::ALL
        .into_iter()
        .find(|split| split.name() == s)
        .ok_or_else(|| format!("`{s}` is not train, val or test"))
}

pub fn run(args: &DetectArgs) -> anyhow::Result<()> {
    let device = open_device(&args.device)?;
    let trained = load_trained(&args.model, device)?;
    let records = read_dl_info(args.data.join("DL_info.csv"))?;
    let rows: Vec<LesionRecord> = records
        .into_iter()
        .filter(|r| r.split == args.split)
        .collect();
    anyhow::ensure!(
        !rows.is_empty(),
        "{} has no {} rows",
        args.data.display(),
        args.split.name()
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let settings = detect_settings(&trained.config, device);
    let key_images = KeyImage::from_records(&args.data, &rows, NoisyPolicy::Keep);
    let dets = settings.detect(&trained.detector, key_images)?;
    let keyslice = args.out.join("keyslice_detections.csv");
    keyslice_detection_set(&dets).write(&keyslice)?;
    println!("{} key images -> {}", dets.len(), keyslice.display());
    if !args.key_images_only {
        let subvolumes = subvolumes_of_records(&args.data, &rows);
        let set = detect_subvolumes(&trained.detector, &subvolumes, &settings)?;
        let path = args.out.join("subvolume_detections.csv");
        set.write(&path)?;
        println!("{} sub-volumes -> {}", subvolumes.len(), path.display());
    }
    Ok(())
}
