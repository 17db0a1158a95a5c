//! The steps `uld demo` and `uld bench mining` chain: a synthetic dataset,
//! training runs on it, and the runs' detections and scores on its test
//! split. Every step reuses what an interrupted earlier call left: the
//! dataset once its manifest is written, and runs through their resume.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, ensure};
use indicatif::ProgressBar;
use uld_data::deeplesion::{LesionRecord, Split, read_dl_info};
use uld_data::synth::{DL_INFO_FILE, MANIFEST_FILE, Manifest, SynthConfig};
use uld_eval::BootstrapConfig;
use uld_train::validate::SplitScores;
use uld_train::{Mode, Outcome, TrainConfig, Weights, load_trained_weights};

use super::synth::write_synthetic;
use super::train::{Labels, split_validator, train_on};

/// The synthetic dataset of `config` at `root`, written unless a finished
/// one (its manifest is written last) with the same settings is there.
pub fn synthetic_dataset(
    root: &Path,
    config: &SynthConfig,
    progress: bool,
) -> anyhow::Result<Vec<LesionRecord>> {
    let manifest_path = root.join(MANIFEST_FILE);
    if manifest_path.exists() {
        let manifest = Manifest::read(&manifest_path)?;
        let patients: BTreeSet<u32> = manifest.series.iter().map(|s| s.patient).collect();
        ensure!(
            manifest.seed == config.seed
                && manifest.missing_fraction == config.missing_fraction
                && patients.len() == config.patients,
            "{} holds another synthetic dataset (seed {}, {} patients, missing fraction {}); \
             remove it or choose another output folder",
            root.display(),
            manifest.seed,
            patients.len(),
            manifest.missing_fraction
        );
        println!("reusing the synthetic dataset in {}", root.display());
    } else {
        write_synthetic(config, root, progress)?;
    }
    Ok(read_dl_info(root.join(DL_INFO_FILE))?)
}

/// One training run of an experiment.
#[derive(Debug, Clone, Copy)]
pub struct Arm {
    /// Folder name of the run.
    pub name: &'static str,
    pub title: &'static str,
    pub mode: Mode,
    pub labels: Labels,
}

impl Arm {
    /// The line announcing the run in `dir`.
    pub fn header(&self, dir: &Path) -> String {
        format!("== {} ({}) in {}", self.title, self.name, dir.display())
    }
}

/// Trains `arm` in `dir` from `base` (resuming an interrupted run there),
/// showing its progress on `bar`.
pub fn train_arm(
    data: &Path,
    records: &[LesionRecord],
    dir: &Path,
    base: &TrainConfig,
    arm: &Arm,
    bar: ProgressBar,
) -> anyhow::Result<Outcome> {
    let config = TrainConfig {
        mode: arm.mode,
        ..base.clone()
    };
    train_on(data, records, dir, &config, arm.labels, bar)
}

/// Detects with the run's `weights` on the test split and scores the
/// detections (keyslice on the partial labels, harvester on the complete
/// annotations where they exist), with bootstrap intervals. The detection
/// files go to `run/test_<weights>/`.
pub fn score_on_test(
    data: &Path,
    records: &[LesionRecord],
    run: &Path,
    weights: Weights,
    device: tch::Device,
    bootstrap: BootstrapConfig,
) -> anyhow::Result<SplitScores> {
    let trained = load_trained_weights(run, device, weights)?;
    let validator = split_validator(data, records, Split::Test, &trained.config, device)?
        .with_context(|| format!("{} has no test rows", data.display()))?;
    let scores = validator.score(&trained.detector, Some(bootstrap))?;
    let out = run.join(format!("test_{}", weights_name(weights)));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    scores
        .keyslice
        .detections
        .write(out.join("keyslice_detections.csv"))?;
    if let Some(h) = &scores.harvester {
        h.detections.write(out.join("subvolume_detections.csv"))?;
    }
    Ok(scores)
}

fn weights_name(weights: Weights) -> &'static str {
    match weights {
        Weights::Best => "best",
        Weights::Teacher => "teacher",
        Weights::Student => "student",
    }
}
