//! What data loading adds to a training step: the same student, objective,
//! optimiser and batches, timed as bare steps on batches loaded in advance
//! (the objective's preparation, which for mining is the teacher's forward
//! pass, the student's step, the teacher's update) and as whole steps on
//! the same batches fed by the loader as training runs it.

use std::sync::Arc;
use std::time::Instant;

use uld_core::{Error, Result};
use uld_data::loader::{Dataset, Loader, TrainBatch};
use uld_model::BuildDetector;
use uld_model::bench::sync;

use crate::batch::{ReadyBatch, ReadyImages};
use crate::config::TrainConfig;
use crate::device::use_threads;
use crate::objective::Objective;
use crate::optim::Optimizer;
use crate::step::{LossScaler, optimisation_step};
use crate::trainer::Student;

/// Median seconds of each part of a training step.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct StepParts {
    /// Waiting for the loader's next batch (none in a bare step).
    pub load_s: f64,
    /// The objective's preparation of the batch: its images to the device
    /// and, in mining, the teacher's forward pass and the merge of its
    /// predictions.
    pub prepare_s: f64,
    /// The student's loss (target assignment included), backward pass and
    /// optimiser step.
    pub model_step_s: f64,
    /// The objective's update after the step (mining's EMA teacher).
    pub update_s: f64,
    /// The whole step (the median of the steps' sums).
    pub total_s: f64,
}

impl StepParts {
    /// Medians of `steps`, each `[load, prepare, model step, update]`.
    fn medians(steps: &[[f64; 4]]) -> Self {
        let part = |k: usize| median(steps.iter().map(|p| p[k]).collect());
        Self {
            load_s: part(0),
            prepare_s: part(1),
            model_step_s: part(2),
            update_s: part(3),
            total_s: median(steps.iter().map(|p| p.iter().sum()).collect()),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StepTimings {
    pub steps: usize,
    pub batch_size: usize,
    /// Steps on a batch loaded in advance: everything a step does but
    /// wait for the loader.
    pub bare: StepParts,
    /// Whole steps: the next batch from the loader, then the bare step's
    /// work.
    pub whole: StepParts,
}

impl StepTimings {
    /// How many times a bare step a whole step takes.
    pub fn ratio(&self) -> f64 {
        self.whole.total_s / self.bare.total_s
    }

    pub fn samples_per_second(&self) -> f64 {
        self.batch_size as f64 / self.whole.total_s
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `steps` steps of a `D` each way after `warmup` untimed ones.
///
/// Every step is timed as the run's last one, past any burn-in, so a mining
/// objective's teacher predicts and follows the student as it does for
/// most of a run.
pub fn time_training_steps<D: BuildDetector, S: Dataset<Batch = TrainBatch>>(
    config: &TrainConfig,
    dataset: Arc<S>,
    objective: &mut dyn Objective,
    warmup: usize,
    steps: usize,
) -> Result<StepTimings> {
    use_threads(config.threads);
    let student = Student::<D>::new(config)?;
    objective.begin(&student.store)?;
    let device = student.store.device();
    let mut optimizer = Optimizer::new(config.optimizer.clone(), &student.store);
    let mut scaler = LossScaler::new(config.precision);
    let loader = Loader::new(ReadyImages::new(dataset, device), config.loader.clone())?;
    let step = config.steps.saturating_sub(1);
    // A step's parts once its batch is at hand, in seconds.
    let mut step_on = |batch: &ReadyBatch| -> Result<[f64; 3]> {
        let start = Instant::now();
        let prepared = config
            .precision
            .run(device, || objective.prepare(step, batch, device))?;
        sync(device);
        let prepared_at = Instant::now();
        optimisation_step(
            &student.detector,
            &mut optimizer,
            &mut scaler,
            &prepared.images,
            &prepared.targets,
            1e-4,
            None,
            None,
        )?;
        sync(device);
        let stepped_at = Instant::now();
        objective.after_step(step, &student.store)?;
        sync(device);
        Ok([
            (prepared_at - start).as_secs_f64(),
            (stepped_at - prepared_at).as_secs_f64(),
            stepped_at.elapsed().as_secs_f64(),
        ])
    };

    // The bare steps take the batches the whole steps will, made in advance
    // (the loader is deterministic), so both do the same work on the same
    // images and differ only by the loader running beside them.
    if loader.batches(0).is_empty() {
        return Err(Error::invalid("benchmark data", "no batch"));
    }
    let batches = || {
        (0..)
            .flat_map(|epoch| loader.epoch(epoch))
            .take(warmup + steps)
    };
    let ahead: Vec<ReadyBatch> = batches().collect::<Result<_>>()?;
    let mut bare = Vec::with_capacity(steps);
    for (i, batch) in ahead.iter().enumerate() {
        let [prepare, model, update] = step_on(batch)?;
        if i >= warmup {
            bare.push([0.0, prepare, model, update]);
        }
    }
    drop(ahead);

    let mut whole = Vec::with_capacity(steps);
    for (i, batch) in batches().enumerate() {
        let start = Instant::now();
        let batch = batch?;
        let load = start.elapsed().as_secs_f64();
        let [prepare, model, update] = step_on(&batch)?;
        if i >= warmup {
            whole.push([load, prepare, model, update]);
        }
    }
    Ok(StepTimings {
        steps,
        batch_size: config.loader.batch_size,
        bare: StepParts::medians(&bare),
        whole: StepParts::medians(&whole),
    })
}
