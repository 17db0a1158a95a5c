//! Experiments over training runs: the synthetic dataset they share, the
//! runs ("arms") trained on it, and the runs' detections and scores on its
//! test split. Every step reuses what an interrupted earlier call left:
//! the dataset once its manifest is written
//! (`uld_data::synth::synthetic_dataset_is_written`), and runs through
//! their resume.
//! [`mining_bench`] is the missing-annotation benchmark built from them.

pub mod demo;
pub mod mining_bench;

use std::path::Path;

use tch::Device;
use uld_core::{Error, Result};
use uld_data::deeplesion::{LesionRecord, Split};
use uld_eval::BootstrapConfig;
use uld_model::BuildDetector;

use crate::config::{Mode, TrainConfig};
use crate::run::{Labels, split_validator, train_on};
use crate::trained::{Weights, load_trained_weights};
use crate::trainer::{Observer, Outcome};
use crate::validate::SplitScores;

/// One training run of an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    /// The first word of the title, e.g. `(a)`, for a progress bar.
    pub fn tag(&self) -> &'static str {
        self.title.split(' ').next().unwrap_or(self.name)
    }
}

/// Trains `arm` (a `D`) in `dir` from `base`, resuming an interrupted run
/// there.
pub fn train_arm<D: BuildDetector>(
    data: &Path,
    records: &[LesionRecord],
    dir: &Path,
    base: &TrainConfig,
    arm: &Arm,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    let config = TrainConfig {
        mode: arm.mode,
        ..base.clone()
    };
    train_on::<D>(data, records, dir, &config, arm.labels, None, observer)
}

/// Detects with the run's `weights` on the test split and scores the
/// detections (keyslice on the partial labels, harvester on the complete
/// annotations where they exist), with bootstrap intervals. The detection
/// files go to `run/test_<weights>/`.
pub fn score_on_test<D: BuildDetector>(
    data: &Path,
    records: &[LesionRecord],
    run: &Path,
    weights: Weights,
    device: Device,
    bootstrap: BootstrapConfig,
) -> Result<SplitScores> {
    let trained = load_trained_weights::<D>(run, device, weights)?;
    let validator = split_validator::<D>(data, records, Split::Test, &trained.config, device)?
        .ok_or_else(|| Error::invalid("dataset", format!("{} has no test rows", data.display())))?;
    let scores = validator.score(&trained.detector, Some(bootstrap))?;
    let out = run.join(format!("test_{}", weights.name()));
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    scores
        .keyslice
        .detections
        .write(out.join("keyslice_detections.csv"))?;
    if let Some(h) = &scores.harvester {
        h.detections.write(out.join("subvolume_detections.csv"))?;
    }
    Ok(scores)
}

/// Cores and CPU model, where the system says.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {model}")
}
