//! The training loop, shared by supervised and mining runs.
//!
//! A run directory holds `config.toml` (the resolved configuration),
//! `metrics.jsonl`, `checkpoints/` (see [`crate::checkpoint`]) and, when a
//! validator is given, `best.safetensors` + `best.json`. Starting a run in a
//! directory with checkpoints resumes the newest: model, optimiser, teacher
//! and step are restored, and the data order follows from (seed, epoch), so
//! the resumed run continues as if never interrupted.
//!
//! A student with ranks ([`Student::with_ranks`]) trains data-parallel: each
//! rank takes its slice of every batch, the ranks start from rank 0's
//! weights and average their gradients, so their students (and mining's EMA
//! teachers) stay identical. Rank 0 alone validates and writes the run
//! directory; the others only read its checkpoints to resume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use uld_core::{Error, Result, write_atomically};
use uld_data::loader::{Dataset, Loader, TrainBatch};
use uld_distributed::ProcessGroup;
use uld_model::{BuildDetector, Detector, LossValues, build_detector};

use crate::batch::ReadyImages;
use crate::checkpoint::{load_latest, save_checkpoint, write_tensors};
use crate::config::TrainConfig;
use crate::config_changes::{SettingChange, setting_changes};
use crate::device::{open_device, use_threads};
use crate::metrics::MetricsLog;
use crate::nan_guard::{NanGuard, Verdict};
use crate::objective::Objective;
use crate::optim::Optimizer;
use crate::step::{LossScaler, optimisation_step};
use crate::validation::{Validation, Validator};

/// One logged step.
#[derive(Debug, Clone, Serialize)]
pub struct StepLog {
    pub step: u64,
    pub lr: f64,
    pub loss: f64,
    /// The detector's loss parts, as `loss_<name>`.
    #[serde(flatten)]
    pub loss_parts: BTreeMap<String, f64>,
    pub grad_norm: f64,
    pub seconds_per_step: f64,
    pub samples_per_second: f64,
    pub skipped_nonfinite: u64,
    #[serde(flatten)]
    pub objective: BTreeMap<String, f64>,
}

impl StepLog {
    /// The named loss parts as log fields.
    fn parts(values: &LossValues) -> BTreeMap<String, f64> {
        values
            .parts
            .iter()
            .map(|(name, v)| (format!("loss_{name}"), *v))
            .collect()
    }
}

/// Hears about the run as it goes (a progress bar, a test).
pub trait Observer {
    fn started(&mut self, _first_step: u64, _total: u64) {}
    fn step(&mut self, _log: &StepLog) {}
    fn validated(&mut self, _step: u64, _v: &Validation) {}
    /// The run resumed at `step` with settings changed since it started.
    fn resumed_with_changes(&mut self, _step: u64, _changes: &[SettingChange]) {}
    /// The run reached its last step.
    fn finished(&mut self) {}
}

/// An observer that hears nothing.
pub struct Silent;
impl Observer for Silent {}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointMeta {
    step: u64,
    epoch: u64,
    skipped_nonfinite: u64,
    best: Option<Validation>,
    /// The objective's state besides weights (a mining prediction bank).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    objective: Option<serde_json::Value>,
}

/// The `metrics.jsonl` line of a run resumed with other settings.
#[derive(Serialize)]
struct ResumedWithChanges<'a> {
    step: u64,
    resumed_with_changes: &'a [SettingChange],
}

/// What a finished run leaves.
#[derive(Debug)]
pub struct Outcome {
    pub dir: PathBuf,
    pub steps: u64,
    pub resumed_from: Option<u64>,
    pub best: Option<Validation>,
    pub last: Option<Validation>,
    /// Reviewed lesions trained on: (accepted, rejected).
    pub reviewed: Option<(usize, usize)>,
}

/// The model a run trains, with its weights, and the ranks that train it
/// together (none: this process alone).
pub struct Student<D> {
    pub store: VarStore,
    pub detector: D,
    pub ranks: Option<ProcessGroup>,
}

impl<D: BuildDetector> Student<D> {
    /// Seeded from `config.seed`: the same seed gives the same weights,
    /// also while other runs start in the same process.
    pub fn new(config: &TrainConfig) -> Result<Self> {
        let device = open_device(&config.device)?;
        let store = VarStore::new(device);
        let detector = build_detector(&store, &config.model, Some(config.seed))?;
        Ok(Self {
            store,
            detector,
            ranks: None,
        })
    }
}

impl<D> Student<D> {
    /// Trained data-parallel by `group`'s ranks, each holding this student.
    pub fn with_ranks(mut self, group: ProcessGroup) -> Self {
        self.ranks = Some(group);
        self
    }
}

/// Trains `student` on `dataset` (any dataset of training batches) for
/// `config.steps` steps in `dir`, resuming there if checkpoints exist.
pub fn train<D: Detector, S: Dataset<Batch = TrainBatch>>(
    dir: &Path,
    config: &TrainConfig,
    student: &mut Student<D>,
    dataset: Arc<S>,
    objective: &mut dyn Objective,
    mut validator: Option<&mut dyn Validator>,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    config.validate()?;
    if dataset.is_empty() {
        return Err(Error::invalid("training data", "no training images"));
    }
    use_threads(config.threads);
    let Student {
        store,
        detector,
        ranks,
    } = student;
    let ranks = ranks.as_ref();
    let leader = ranks.is_none_or(ProcessGroup::is_leader);
    let device = store.device();
    let checkpoints = dir.join("checkpoints");
    // The configuration the run had, to name what a resumed run changed (a
    // file this version cannot read names nothing).
    let earlier = leader
        .then(|| TrainConfig::load(&dir.join("config.toml")).ok())
        .flatten();
    if leader {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        write_atomically(&dir.join("config.toml"), |w| {
            use std::io::Write;
            w.write_all(config.to_toml_string().as_bytes())
        })?;
    }
    let mut optimizer = Optimizer::new(config.optimizer.clone(), store);
    let restored = load_latest::<CheckpointMeta>(
        &checkpoints,
        store,
        objective.teacher_mut(),
        Some(&mut optimizer),
    )?;
    let resumed_from = restored.as_ref().map(|r| r.step);
    if ranks.is_some_and(|g| g.world() > 1) && objective.state()?.is_some() {
        return Err(Error::invalid(
            "training",
            "the mining prediction bank (`mining.bank_visits`) runs in one process only",
        ));
    }
    if let Some(state) = restored.as_ref().and_then(|r| r.meta.objective.clone()) {
        objective.restore_state(state).map_err(|e| {
            Error::invalid(
                format!("checkpoint in {}", checkpoints.display()),
                e.to_string(),
            )
        })?;
    }
    if let Some(group) = ranks {
        group.broadcast_variables(store)?;
    }
    if restored.is_none() {
        objective.begin(store)?;
    }
    let mut best = restored.as_ref().and_then(|r| r.meta.best.clone());
    let mut guard = NanGuard::new(config.max_consecutive_nan);
    let mut scaler = LossScaler::new(config.precision);
    guard.skipped = restored.as_ref().map_or(0, |r| r.meta.skipped_nonfinite);
    let mut metrics = leader
        .then(|| MetricsLog::open(dir.join("metrics.jsonl"), resumed_from))
        .transpose()?;
    if let (Some(step), Some(earlier), Some(metrics)) = (resumed_from, &earlier, metrics.as_mut()) {
        let changes = setting_changes(earlier, config);
        if !changes.is_empty() {
            metrics.log(&ResumedWithChanges {
                step,
                resumed_with_changes: &changes,
            })?;
            observer.resumed_with_changes(step, &changes);
        }
    }

    let mut loader = Loader::new(ReadyImages::new(dataset, device), config.loader.clone())?;
    if let Some(group) = ranks {
        loader = loader.with_shard(group.rank(), group.world())?;
    }
    let world = ranks.map_or(1, ProcessGroup::world);
    let per_epoch = loader.batches(0).len() as u64;
    if per_epoch == 0 {
        return Err(Error::invalid(
            "training data",
            "fewer images than one batch (of all ranks together; drop_last)",
        ));
    }
    let mut step = resumed_from.unwrap_or(0);
    let mut last = None;
    if leader {
        observer.started(step, config.steps);
    }
    let mut window_start = Instant::now();
    let mut window_samples = 0usize;
    let mut window_steps = 0u64;
    while step < config.steps {
        let epoch = step / per_epoch;
        let skip = (step % per_epoch) as usize;
        for batch in loader.epoch_from(epoch, skip) {
            if step >= config.steps {
                break;
            }
            let batch = batch?;
            // The teacher predicts at the run's precision, as the student trains.
            let prepared = config
                .precision
                .run(device, || objective.prepare(step, &batch, device))?;
            let lr = config.schedule.lr_at(step);
            let outcome = optimisation_step(
                detector,
                &mut optimizer,
                &mut scaler,
                &prepared.images,
                &prepared.targets,
                lr,
                config.clip_grad_norm,
                ranks,
            )?;
            let grad_norm = outcome.grad_norm;
            let health = if outcome.nonfinite { f64::NAN } else { 1.0 };
            if guard.check(health) == Verdict::Stop {
                return Err(Error::invalid(
                    "training",
                    format!(
                        "{} non-finite losses or gradients in a row at step {step}; the last good checkpoint is kept in {}",
                        config.max_consecutive_nan,
                        checkpoints.display()
                    ),
                ));
            }
            objective.after_step(step, store)?;
            step += 1;
            window_samples += batch.indices.len() * world;
            window_steps += 1;
            if let (true, Some(metrics)) = (
                step % config.log_every == 0 || step == config.steps,
                metrics.as_mut(),
            ) {
                let seconds = window_start.elapsed().as_secs_f64();
                let log = StepLog {
                    step,
                    lr,
                    loss: outcome.losses.total,
                    loss_parts: StepLog::parts(&outcome.losses),
                    grad_norm,
                    seconds_per_step: seconds / window_steps as f64,
                    samples_per_second: window_samples as f64 / seconds,
                    skipped_nonfinite: guard.skipped,
                    objective: prepared.stats,
                };
                metrics.log(&log)?;
                observer.step(&log);
                (window_start, window_samples, window_steps) = (Instant::now(), 0, 0);
            }
            let validate_now = config.validates_at(step);
            if let (true, Some(v), Some(metrics)) =
                (validate_now, validator.as_deref_mut(), metrics.as_mut())
            {
                let detector = objective.teacher_detector().unwrap_or(detector);
                let started = Instant::now();
                let result = v.validate(detector, step)?;
                let seconds = started.elapsed().as_secs_f64();
                metrics.log(&serde_json::json!({
                    "step": step,
                    "validation": result,
                    "seconds": seconds,
                }))?;
                // The next window's pace counts training steps only.
                window_start += started.elapsed();
                observer.validated(step, &result);
                if best.as_ref().is_none_or(|b| result.score > b.score) {
                    save_best(dir, store, objective.teacher(), &result)?;
                    best = Some(result.clone());
                }
                last = Some(result);
            }
            if leader && (step % config.checkpoint_every == 0 || step == config.steps) {
                let meta = CheckpointMeta {
                    step,
                    epoch,
                    skipped_nonfinite: guard.skipped,
                    best: best.clone(),
                    objective: objective.state()?,
                };
                save_checkpoint(
                    &checkpoints,
                    config.checkpoint_keep,
                    step,
                    store,
                    objective.teacher(),
                    &optimizer,
                    &meta,
                )?;
            }
        }
    }
    if let Some(group) = ranks {
        // Every rank's run ends when rank 0 has written the last checkpoint.
        group.barrier()?;
    }
    if leader {
        observer.finished();
    }
    Ok(Outcome {
        dir: dir.to_path_buf(),
        steps: step,
        resumed_from,
        best,
        last,
        reviewed: None,
    })
}

/// The weights `uld detect` uses: the teacher's when there is one.
fn save_best(
    dir: &Path,
    student: &VarStore,
    teacher: Option<&VarStore>,
    v: &Validation,
) -> Result<()> {
    let weights = teacher.unwrap_or(student);
    let mut named: Vec<(String, tch::Tensor)> = weights.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    write_tensors(&dir.join("best.safetensors"), &named)?;
    write_atomically(&dir.join("best.json"), |w| {
        uld_core::json::to_writer_pretty(w, v).map_err(std::io::Error::other)
    })
}
