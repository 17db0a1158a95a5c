//! What data loading and target assignment add to a training step: the same
//! student, optimiser and batches, timed as a bare model step on a batch
//! prepared in advance, and as a whole step fed by the loader.

use std::sync::Arc;
use std::time::Instant;

use uld_core::{Error, Result};
use uld_data::loader::{Dataset, Loader, TrainBatch};
use uld_model::BuildDetector;

use crate::config::TrainConfig;
use crate::objective::Objective;
use crate::optim::Optimizer;
use crate::step::{LossScaler, optimisation_step};
use crate::trainer::Student;

#[derive(Debug, Clone, serde::Serialize)]
pub struct StepTimings {
    pub steps: usize,
    pub batch_size: usize,
    /// Median seconds of loss + backward + optimiser step on a ready batch.
    pub bare_step_s: f64,
    /// Median seconds of a whole step: next batch from the loader, targets,
    /// loss, backward, optimiser step.
    pub full_step_s: f64,
}

impl StepTimings {
    /// How much longer a whole step takes than the bare model step.
    pub fn overhead(&self) -> f64 {
        self.full_step_s / self.bare_step_s - 1.0
    }

    pub fn samples_per_second(&self) -> f64 {
        self.batch_size as f64 / self.full_step_s
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `steps` steps of a `D` each way after `warmup` untimed ones.
pub fn time_training_steps<D: BuildDetector, S: Dataset<Batch = TrainBatch>>(
    config: &TrainConfig,
    dataset: Arc<S>,
    objective: &mut dyn Objective,
    warmup: usize,
    steps: usize,
) -> Result<StepTimings> {
    if config.threads > 0 {
        tch::set_num_threads(config.threads);
    }
    let student = Student::<D>::new(config)?;
    let device = student.store.device();
    let mut optimizer = Optimizer::new(config.optimizer.clone(), &student.store);
    let mut scaler = LossScaler::new(config.precision);
    let loader = Loader::new(dataset, config.loader.clone())?;
    let mut train_step = |images: &tch::Tensor, targets: &[uld_model::ImageTargets]| {
        optimisation_step(
            &student.detector,
            &mut optimizer,
            &mut scaler,
            images,
            targets,
            1e-4,
            None,
            None,
        )?;
        if device.is_cuda() {
            // CUDA runs asynchronously: wait, so the time is the step's.
            tch::Cuda::synchronize(match device {
                tch::Device::Cuda(i) => i as i64,
                _ => 0,
            });
        }
        Ok::<(), Error>(())
    };

    let first = loader
        .epoch(0)
        .next()
        .ok_or_else(|| Error::invalid("benchmark data", "no batch"))??;
    let ready = objective.prepare(0, &first, device)?;
    let mut bare = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        let start = Instant::now();
        train_step(&ready.images, &ready.targets)?;
        if i >= warmup {
            bare.push(start.elapsed().as_secs_f64());
        }
    }

    let mut full = Vec::with_capacity(steps);
    let mut epoch = 0;
    let mut step = 0u64;
    while full.len() < steps {
        let mut batches = loader.epoch(epoch);
        loop {
            let start = Instant::now();
            let Some(batch) = batches.next() else { break };
            let prepared = objective.prepare(step, &batch?, device)?;
            train_step(&prepared.images, &prepared.targets)?;
            step += 1;
            if step as usize > warmup {
                full.push(start.elapsed().as_secs_f64());
            }
            if full.len() >= steps {
                break;
            }
        }
        epoch += 1;
    }
    Ok(StepTimings {
        steps,
        batch_size: config.loader.batch_size,
        bare_step_s: median(bare),
        full_step_s: median(full),
    })
}
