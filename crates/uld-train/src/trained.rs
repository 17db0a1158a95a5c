//! Loading a trained detector from a run directory or a weights file.
//!
//! From a run directory the weights are, in order of preference,
//! `best.safetensors` (the best validated teacher, or student in a
//! supervised run), then the newest checkpoint's teacher, then its student.
//! A `.safetensors` file is read with the `config.toml` beside it.

use std::path::{Path, PathBuf};

use tch::nn::VarStore;
use tch::{Device, Tensor};
use uld_core::{Error, Location, Result};
use uld_model::{BuildDetector, build_detector};

use crate::checkpoint::restore;
use crate::config::TrainConfig;

/// A trained `D` with the configuration of its run.
pub struct TrainedDetector<D> {
    pub config: TrainConfig,
    pub store: VarStore,
    pub detector: D,
    /// The file the weights came from.
    pub weights: PathBuf,
}

/// Which of a run's weights to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// `best.safetensors` when the run validated, else the newest
    /// checkpoint's teacher, then its student.
    Best,
    /// The newest checkpoint's teacher (mining runs).
    Teacher,
    /// The newest checkpoint's student.
    Student,
}

impl Weights {
    /// `best`, `teacher` or `student`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Best => "best",
            Self::Teacher => "teacher",
            Self::Student => "student",
        }
    }
}

/// Loads the detector a run (or a weights file) holds onto `device`.
pub fn load_trained<D: BuildDetector>(path: &Path, device: Device) -> Result<TrainedDetector<D>> {
    load_trained_with(path, device, Weights::Best, &[])
}

/// Loads the chosen `weights` of a run directory (a weights file is loaded
/// whatever `weights` says).
pub fn load_trained_weights<D: BuildDetector>(
    path: &Path,
    device: Device,
    weights: Weights,
) -> Result<TrainedDetector<D>> {
    load_trained_with(path, device, weights, &[])
}

/// [`load_trained_weights`] with `overrides` (`KEY=VALUE`, as `--set` takes
/// them) applied to the run's configuration before the detector is built,
/// e.g. `model.decode.score_threshold=0.01` or `loader.batch_size=8`.
pub fn load_trained_with<D: BuildDetector>(
    path: &Path,
    device: Device,
    weights: Weights,
    overrides: &[String],
) -> Result<TrainedDetector<D>> {
    if !path.exists() {
        return Err(Error::data(
            Location::file(path),
            "no such run directory or weights file",
        ));
    }
    let (dir, weights, prefixes): (PathBuf, PathBuf, Vec<&str>) = if path.is_dir() {
        let best = path.join("best.safetensors");
        if weights == Weights::Best && best.exists() {
            (path.to_path_buf(), best, vec![""])
        } else {
            let latest =
                crate::checkpoint::latest_tensors(&path.join("checkpoints"))?.ok_or_else(|| {
                    Error::data(
                        Location::file(path),
                        "no best.safetensors and no checkpoint: is this a uld run directory?",
                    )
                })?;
            let prefixes = match weights {
                Weights::Best => vec!["teacher", "model"],
                Weights::Teacher => vec!["teacher"],
                Weights::Student => vec!["model"],
            };
            (path.to_path_buf(), latest, prefixes)
        }
    } else {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        (dir, path.to_path_buf(), vec!["", "teacher", "model"])
    };
    let mut config = TrainConfig::load(&dir.join("config.toml"))?;
    config.set_all(overrides.iter().map(String::as_str))?;
    let mut store = VarStore::new(device);
    let detector = build_detector(&store, &config.model, None)?;
    let bad = |m: String| Error::data(Location::file(&weights), m);
    let named =
        Tensor::read_safetensors(&weights).map_err(|e| bad(format!("cannot read weights: {e}")))?;
    let mut last_error = String::new();
    for prefix in prefixes {
        let attempt = restore(&mut store, prefix, &named);
        match attempt {
            Ok(()) => {
                return Ok(TrainedDetector {
                    config,
                    store,
                    detector,
                    weights,
                });
            }
            Err(e) => last_error = e,
        }
    }
    Err(bad(format!(
        "the weights do not fit the model of config.toml: {last_error}"
    )))
}
