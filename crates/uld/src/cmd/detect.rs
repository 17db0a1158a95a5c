//! `uld detect`: run a trained detector over a DeepLesion-format split and
//! write detection files in the format `uld eval` reads, or, given scans,
//! over users' own CT ([`super::detect_scans`]).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use uld_data::deeplesion::{LesionRecord, Split, read_dl_info};
use uld_data::loader::{KeyImage, NoisyPolicy};
use uld_model::FcosDetector;
use uld_train::device::open_device;
use uld_train::run::detect_settings;
use uld_train::validate::{detect_split, keyslice_detection_set, subvolumes_of_records};
use uld_train::{Weights, load_trained_with};

use super::detect_scans::{self, ScanArgs};

#[derive(Args)]
pub struct DetectArgs {
    /// Scans to detect on: NIfTI files (.nii, .nii.gz), DICOM series
    /// folders, DeepLesion series folders of KKK.png slices.
    #[arg(value_name = "SCAN", conflicts_with_all = ["data", "key_images_only"])]
    pub scans: Vec<PathBuf>,
    /// A run directory of `uld train`, or a weights file with config.toml beside it.
    #[arg(long, alias = "checkpoint")]
    pub model: PathBuf,
    /// Dataset root holding DL_info.csv and Images_png/.
    #[arg(long, required_unless_present = "scans")]
    pub data: Option<PathBuf>,
    /// Which split of DL_info.csv: train, val, test.
    #[arg(long, default_value = "test", value_parser = parse_split)]
    pub split: Split,
    /// Output folder: keyslice_detections.csv and subvolume_detections.csv
    /// for --data; detections.csv and one <scan>.json per scan for scans.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Only the key images (skip the sub-volumes' slices).
    #[arg(long)]
    pub key_images_only: bool,
    /// Override a setting of the run's config.toml, e.g.
    /// `--set model.decode.score_threshold=0.1` or `--set loader.batch_size=8` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    #[command(flatten)]
    pub scan: ScanArgs,
}

pub fn parse_split(s: &str) -> Result<Split, String> {
    Split::ALL
        .into_iter()
        .find(|split| split.name() == s)
        .ok_or_else(|| format!("`{s}` is not train, val or test"))
}

pub fn run(args: &DetectArgs) -> anyhow::Result<()> {
    let device = open_device(&args.device)?;
    let trained =
        load_trained_with::<FcosDetector>(&args.model, device, Weights::Best, &args.overrides)?;
    let settings = detect_settings::<FcosDetector>(&trained.config, device);
    super::train::warn_if_slow(settings.precision, device);
    let Some(data) = &args.data else {
        return detect_scans::run(&args.scans, &args.scan, &trained, &settings, &args.out);
    };
    let records = read_dl_info(data.join("DL_info.csv"))?;
    let rows: Vec<LesionRecord> = records
        .into_iter()
        .filter(|r| r.split == args.split)
        .collect();
    anyhow::ensure!(
        !rows.is_empty(),
        "{} has no {} rows",
        data.display(),
        args.split.name()
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let key_images = KeyImage::from_records(data, &rows, NoisyPolicy::Keep);
    let subvolumes = (!args.key_images_only).then(|| subvolumes_of_records(data, &rows));
    let (dets, subvolume_set) = detect_split(
        &trained.detector,
        &key_images,
        subvolumes.as_deref(),
        &settings,
    )?;
    let keyslice = args.out.join("keyslice_detections.csv");
    keyslice_detection_set(&dets).write(&keyslice)?;
    println!("{} key images -> {}", dets.len(), keyslice.display());
    if let (Some(subvolumes), Some(set)) = (subvolumes, subvolume_set) {
        let path = args.out.join("subvolume_detections.csv");
        set.write(&path)?;
        println!("{} sub-volumes -> {}", subvolumes.len(), path.display());
    }
    Ok(())
}
