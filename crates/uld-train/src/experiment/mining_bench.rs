//! The missing-annotation benchmark (`uld bench mining`). On one synthetic
//! DeepLesion-format dataset with lesions left unlabelled, with the same
//! schedule for every run and each arm trained with every training seed:
//! (a) supervised on the partial labels, (b) teacher-student mining on the
//! same labels, (c) supervised on complete labels of the same training
//! images (the upper bound) and (d) multi-stage mining as Lesion-Harvester
//! does it: (a)'s final weights mine the training images offline with
//! uld's merge rule, and a fresh model trains on the partial labels plus the
//! mined lesions. All are scored on the test split (`harvester` against its
//! complete annotations, `keyslice` against its partial labels, with
//! bootstrap intervals); every comparison is a paired bootstrap on the same
//! test units, made per seed and then averaged.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;
use tch::Device;
use uld_core::{Error, Result, write_atomically};
use uld_data::deeplesion::LesionRecord;
use uld_eval::bootstrap::{Difference, Interval, MetricIntervals};
use uld_eval::report::plot_frocs;
use uld_eval::{BootstrapConfig, Evaluation, compare_evaluations};
use uld_model::BuildDetector;

use super::{Arm, machine, score_on_test, train_arm};
use crate::config::{Mode, TrainConfig};
use crate::mined::{MinedScore, REVIEW_TAU};
use crate::mined_export::{MinedRows, mine_run};
use crate::run::{Labels, TrainingSet, complete_annotations, train_images_on};
use crate::run_summary::{RunSummary, RunTime};
use crate::trained::Weights;
use crate::trainer::Observer;
use crate::validate::{SplitScores, eval_config};

/// Steps of each run with the `small` preset, unless the user says.
pub const SMALL_STEPS: u64 = 3000;

/// One arm of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchArm {
    pub arm: Arm,
    /// The arm whose final weights mine this arm's extra labels (a
    /// multi-stage pipeline), if any.
    pub mined_by: Option<usize>,
}

impl BenchArm {
    /// Training steps the arm costs, counting the runs it builds on.
    pub fn cost_steps(&self, steps: u64) -> u64 {
        steps * if self.mined_by.is_some() { 2 } else { 1 }
    }
}

pub const ARMS: [BenchArm; 4] = [
    BenchArm {
        arm: Arm {
            name: "a_supervised_partial",
            title: "(a) supervised, partial labels",
            mode: Mode::Supervised,
            labels: Labels::Partial,
        },
        mined_by: None,
    },
    BenchArm {
        arm: Arm {
            name: "b_mining_partial",
            title: "(b) mining, partial labels",
            mode: Mode::Mining,
            labels: Labels::Partial,
        },
        mined_by: None,
    },
    BenchArm {
        arm: Arm {
            name: "c_supervised_complete",
            title: "(c) supervised, complete labels",
            mode: Mode::Supervised,
            labels: Labels::Complete,
        },
        mined_by: None,
    },
    BenchArm {
        arm: Arm {
            name: "d_multistage",
            title: "(d) multi-stage: (a) mines, a fresh model retrains",
            mode: Mode::Supervised,
            labels: Labels::Partial,
        },
        mined_by: Some(0),
    },
];

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const D: usize = 3;

/// What the benchmark was asked to do, as its report states it.
#[derive(Debug, Clone)]
pub struct BenchSetup {
    /// Folder of the dataset (`data/`), the runs and the report.
    pub out: PathBuf,
    /// The command line, for the report.
    pub command: String,
    pub data_preset: String,
    /// Patients of the synthetic dataset, all splits.
    pub patients: usize,
    pub data_seed: u64,
    pub missing_fraction: f64,
    /// Name of the training preset.
    pub preset: String,
    /// The configuration every arm trains with (its mode set per arm, its
    /// seeds offset by the seed number).
    pub config: TrainConfig,
    /// Training seeds per arm.
    pub seeds: usize,
    /// Whether arm (d) runs.
    pub multistage: bool,
    /// Runs trained at once; above 1, each on one CPU thread (scoring
    /// keeps the configuration's threads).
    pub jobs: usize,
    pub bootstrap: BootstrapConfig,
}

/// One training run: an arm with a seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunId {
    pub arm: usize,
    pub seed: usize,
}

impl RunId {
    pub fn arm(&self) -> &'static BenchArm {
        &ARMS[self.arm]
    }

    /// `(a)` or `(a) seed 1`, for a progress bar.
    pub fn tag(&self, seeds: usize) -> String {
        match seeds {
            1 => self.arm().arm.tag().to_string(),
            _ => format!("{} seed {}", self.arm().arm.tag(), self.seed),
        }
    }
}

impl BenchSetup {
    pub fn data(&self) -> PathBuf {
        self.out.join("data")
    }

    /// The arms this benchmark trains.
    pub fn arms(&self) -> &'static [BenchArm] {
        if self.multistage { &ARMS } else { &ARMS[..D] }
    }

    /// `out/seed_K/<arm>`.
    pub fn run_dir(&self, run: RunId) -> PathBuf {
        self.out
            .join(format!("seed_{}", run.seed))
            .join(run.arm().arm.name)
    }

    /// The configuration of training seed `seed`.
    pub fn seed_config(&self, seed: usize) -> TrainConfig {
        self.config.reseeded(seed as u64)
    }

    /// Every run, in the order they train: the arms trained from scratch
    /// for every seed, then the multi-stage ones, which need their miner.
    pub fn runs(&self) -> Vec<RunId> {
        let arms = self.arms().len();
        let first: Vec<RunId> = (0..self.seeds)
            .flat_map(|seed| (0..arms).map(move |arm| RunId { arm, seed }))
            .filter(|r| r.arm().mined_by.is_none())
            .collect();
        let later = (0..self.seeds)
            .flat_map(|seed| (0..arms).map(move |arm| RunId { arm, seed }))
            .filter(|r| r.arm().mined_by.is_some());
        first.into_iter().chain(later).collect()
    }
}

/// A run trained (or found trained) by [`train_runs`].
#[derive(Debug, Clone, Copy)]
pub struct TrainedRun {
    pub run: RunId,
    /// Training seconds in this call; `None` for a run finished earlier.
    pub seconds: Option<f64>,
    /// For a multi-stage run, how real the lesions its miner added are.
    pub mined: Option<MinedScore>,
}

/// Trains every run (each a `D`) on `setup.jobs` workers, each run
/// reporting to the observer `observer(run)` makes as the run starts. A
/// free worker takes the first run, in the order of [`BenchSetup::runs`],
/// whose miner has finished, so no worker waits for a round's slowest run.
/// The trained runs come back in that order.
pub fn train_runs<D: BuildDetector>(
    setup: &BenchSetup,
    records: &[LesionRecord],
    device: Device,
    observer: &(dyn Fn(RunId) -> Box<dyn Observer + Send> + Sync),
) -> Result<Vec<TrainedRun>> {
    if setup.jobs == 0 || setup.seeds == 0 {
        return Err(Error::invalid(
            "benchmark",
            "jobs and seeds must be at least 1",
        ));
    }
    let runs = setup.runs();
    let queue = RunQueue::new(runs.clone());
    std::thread::scope(|scope| {
        for _ in 0..setup.jobs.min(runs.len()) {
            scope.spawn(|| {
                while let Some(run) = queue.next() {
                    // A panic must still finish the run, or a run waiting
                    // for it as its miner would wait forever.
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let mut run_observer = observer(run);
                        train_run::<D>(setup, records, run, device, run_observer.as_mut())
                    }))
                    .unwrap_or_else(|_| {
                        Err(Error::invalid("training", "a training thread panicked"))
                    });
                    queue.finish(result);
                }
            });
        }
    });
    let mut trained = queue.into_result()?;
    trained.sort_by_key(|t| runs.iter().position(|&r| r == t.run));
    Ok(trained)
}

/// The runs still to train, shared by the benchmark's workers.
struct RunQueue {
    state: Mutex<QueueState>,
    changed: Condvar,
}

struct QueueState {
    pending: Vec<RunId>,
    running: usize,
    trained: Vec<TrainedRun>,
    failed: Option<Error>,
}

impl QueueState {
    fn can_start(&self, run: &RunId) -> bool {
        run.arm().mined_by.is_none_or(|miner| {
            self.trained
                .iter()
                .any(|t| t.run.arm == miner && t.run.seed == run.seed)
        })
    }
}

impl RunQueue {
    fn new(pending: Vec<RunId>) -> Self {
        Self {
            state: Mutex::new(QueueState {
                pending,
                running: 0,
                trained: Vec::new(),
                failed: None,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next run to train, waiting while the ready ones are taken and
    /// the rest wait for their miner; `None` when none is left or a run
    /// failed.
    fn next(&self) -> Option<RunId> {
        let mut state = self.lock();
        loop {
            if state.failed.is_some() || state.pending.is_empty() {
                return None;
            }
            if let Some(i) = state.pending.iter().position(|r| state.can_start(r)) {
                state.running += 1;
                return Some(state.pending.remove(i));
            }
            if state.running == 0 {
                state.failed = Some(Error::invalid(
                    "benchmark",
                    "a multi-stage arm's miner is not among the runs",
                ));
                self.changed.notify_all();
                return None;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn finish(&self, result: Result<TrainedRun>) {
        let mut state = self.lock();
        state.running -= 1;
        match result {
            Ok(run) => state.trained.push(run),
            Err(e) => {
                state.failed.get_or_insert(e);
            }
        }
        self.changed.notify_all();
    }

    fn into_result(self) -> Result<Vec<TrainedRun>> {
        let state = self
            .state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        match state.failed {
            Some(e) => Err(e),
            None => Ok(state.trained),
        }
    }
}

/// The training images of a multi-stage run: the partial labels plus what
/// its miner's final weights mine at `tau_high` (written to `mined.csv` in
/// the run's folder), and how real the mined lesions are.
fn multistage_images<D: BuildDetector>(
    setup: &BenchSetup,
    records: &[LesionRecord],
    run: RunId,
    miner: usize,
    device: Device,
) -> Result<(Vec<uld_data::loader::KeyImage>, Option<MinedScore>)> {
    let miner_dir = setup.run_dir(RunId {
        arm: miner,
        seed: run.seed,
    });
    let mined = mine_run::<D>(
        &setup.data(),
        records,
        &miner_dir,
        Weights::Student,
        device,
        Some(setup.config.mining.tau_high),
    )?;
    let dir = setup.run_dir(run);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    MinedRows::new(&mined, records)?.write(&dir.join("mined.csv"))?;
    Ok((mined.labelled_images(), mined.truth.map(|(s, _)| s)))
}

fn train_run<D: BuildDetector>(
    setup: &BenchSetup,
    records: &[LesionRecord],
    run: RunId,
    device: Device,
    observer: &mut dyn Observer,
) -> Result<TrainedRun> {
    let started = Instant::now();
    let seeded = setup.seed_config(run.seed);
    let config = TrainConfig {
        mode: run.arm().arm.mode,
        // Runs trained at once take one thread each: on CPU that makes
        // them bit-reproducible, and they do not fight over the cores.
        threads: if setup.jobs > 1 { 1 } else { seeded.threads },
        ..seeded
    };
    let (data, dir) = (setup.data(), setup.run_dir(run));
    let (outcome, mined) = match run.arm().mined_by {
        None => {
            let outcome = train_arm::<D>(&data, records, &dir, &config, &run.arm().arm, observer)?;
            (outcome, None)
        }
        Some(miner) => {
            let (images, mined) = multistage_images::<D>(setup, records, run, miner, device)?;
            let complete = complete_annotations(&data, &images)?;
            let set = TrainingSet {
                images,
                complete,
                negatives: Vec::new(),
            };
            let outcome = train_images_on::<D>(&data, records, &dir, &config, set, observer)?;
            (outcome, mined)
        }
    };
    Ok(TrainedRun {
        run,
        seconds: (outcome.resumed_from != Some(outcome.steps))
            .then(|| started.elapsed().as_secs_f64()),
        mined,
    })
}

/// One run's scores on the test split.
pub struct RunScores {
    pub run: RunId,
    pub scores: SplitScores,
    pub seconds: Option<f64>,
}

/// The benchmark's scores.
pub struct BenchResults {
    /// One entry per run, in the order of [`BenchSetup::runs`].
    pub runs: Vec<RunScores>,
    /// (b)'s student, per seed.
    pub students: Vec<SplitScores>,
    /// What (b)'s final teacher mines on its training images, per seed,
    /// at [`BenchResults::review_tau`].
    pub teacher_mined: Vec<Option<MinedScore>>,
    /// What (a)'s final weights mine for (d), per seed.
    pub offline_mined: Vec<Option<MinedScore>>,
    pub review_tau: f32,
    pub run_time: Option<TimedRuns>,
    /// Scoring every run on the test split, in this invocation.
    pub scoring_seconds: f64,
}

/// The runs' training steps and validations, summed over the runs whose
/// validations logged their time (runs trained before they did are left out).
#[derive(Debug, Clone, Serialize)]
pub struct TimedRuns {
    pub runs: usize,
    pub time: RunTime,
}

/// What the trained runs' `metrics.jsonl` say of their time; `None` when no
/// run logged it.
fn timed_runs(setup: &BenchSetup, trained: &[TrainedRun]) -> Result<Option<TimedRuns>> {
    let mut total: Option<TimedRuns> = None;
    for t in trained {
        if let Some(time) = RunSummary::read(&setup.run_dir(t.run))?.time {
            total = Some(match total {
                None => TimedRuns { runs: 1, time },
                Some(sum) => TimedRuns {
                    runs: sum.runs + 1,
                    time: sum.time.plus(&time),
                },
            });
        }
    }
    Ok(total)
}

impl BenchResults {
    /// The scores of `arm` with `seed`.
    pub fn scores(&self, arm: usize, seed: usize) -> Option<&SplitScores> {
        self.runs
            .iter()
            .find(|r| r.run.arm == arm && r.run.seed == seed)
            .map(|r| &r.scores)
    }
}

/// Scores every run (each a `D`) trained in `setup.out` on the test split,
/// on `setup.jobs` workers.
pub fn score_runs<D: BuildDetector>(
    setup: &BenchSetup,
    records: &[LesionRecord],
    trained: &[TrainedRun],
    device: Device,
) -> Result<BenchResults> {
    let started = Instant::now();
    let data = setup.data();
    let boot = setup.bootstrap;
    let review_tau = setup.config.mining.tau_high.min(REVIEW_TAU);
    let score_each_run = || {
        trained
            .par_iter()
            .map(|&TrainedRun { run, seconds, .. }| {
                let dir = setup.run_dir(run);
                let scores = score_on_test::<D>(&data, records, &dir, Weights::Best, device, boot)?;
                Ok(RunScores {
                    run,
                    scores,
                    seconds,
                })
            })
            .collect::<Result<Vec<_>>>()
    };
    // (b)'s student on the test split, and what (b)'s final teacher mines
    // on its training images.
    let score_mining = || {
        (0..setup.seeds)
            .into_par_iter()
            .map(|seed| {
                let dir = setup.run_dir(RunId { arm: B, seed });
                let student =
                    score_on_test::<D>(&data, records, &dir, Weights::Student, device, boot)?;
                let mined = mine_run::<D>(
                    &data,
                    records,
                    &dir,
                    Weights::Teacher,
                    device,
                    Some(review_tau),
                )?;
                Ok((student, mined.truth.map(|(s, _)| s)))
            })
            .collect::<Result<Vec<_>>>()
    };
    // Each detection runs on the run's threads (one, with several jobs), so
    // scoring on the jobs' workers gives the numbers scoring one run after
    // another gives, in a fraction of the time.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(setup.jobs.max(1))
        .build()
        .map_err(|e| Error::invalid("benchmark", format!("cannot start scoring workers: {e}")))?;
    let (runs, mining) = pool.install(|| rayon::join(score_each_run, score_mining));
    let (students, teacher_mined) = mining?.into_iter().unzip();
    let runs = runs?;
    let offline_mined = if setup.multistage {
        (0..setup.seeds)
            .map(|seed| {
                let run = RunId { arm: D, seed };
                trained.iter().find(|t| t.run == run).and_then(|t| t.mined)
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(BenchResults {
        runs,
        students,
        teacher_mined,
        offline_mined,
        review_tau,
        scoring_seconds: started.elapsed().as_secs_f64(),
        run_time: timed_runs(setup, trained)?,
    })
}

/// FROC plots of every arm's first seed: `froc_keyslice.*` and
/// `froc_harvester.*` in `out`.
pub fn plot_all(out: &Path, results: &BenchResults) -> Result<()> {
    let first: Vec<(&SplitScores, &str)> = results
        .runs
        .iter()
        .filter(|r| r.run.seed == 0)
        .map(|r| (&r.scores, r.run.arm().arm.title))
        .collect();
    let keyslice: Vec<(&Evaluation, &str)> = first
        .iter()
        .map(|(s, t)| (&s.keyslice.evaluation, *t))
        .collect();
    plot_frocs(&out.join("froc_keyslice"), &keyslice)?;
    let harvester: Vec<(&Evaluation, &str)> = first
        .iter()
        .filter_map(|(s, t)| Some((&s.harvester.as_ref()?.evaluation, *t)))
        .collect();
    if !harvester.is_empty() {
        plot_frocs(&out.join("froc_harvester"), &harvester)?;
    }
    Ok(())
}

/// A number with its bootstrap interval.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

/// A run's headline numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Headline {
    /// Harvester mean sensitivity at 0.125-8 FP per sub-volume.
    pub harvester_sensitivity: Option<Estimate>,
    pub harvester_ap: Option<Estimate>,
    /// Keyslice mean sensitivity at 0.5-4 FP per image.
    pub keyslice_sensitivity: Option<Estimate>,
}

impl Headline {
    fn of(s: &SplitScores) -> Self {
        let est = |e: &Evaluation, value: f64, pick: fn(&MetricIntervals) -> Interval| {
            let interval = e.intervals.as_ref().map(pick);
            Estimate {
                value,
                low: interval.map(|i| i.low),
                high: interval.map(|i| i.high),
            }
        };
        let harvester = s.harvester.as_ref().map(|h| &h.evaluation);
        let k = &s.keyslice.evaluation;
        Self {
            harvester_sensitivity: harvester.map(|e| est(e, e.metrics.summary, |i| i.summary)),
            harvester_ap: harvester.map(|e| est(e, e.metrics.ap, |i| i.ap)),
            keyslice_sensitivity: Some(est(k, k.metrics.summary, |i| i.summary)),
        }
    }

    /// Each number reduced over `headlines` by `reduce` (no intervals),
    /// where every headline has it.
    fn reduce(headlines: &[Headline], reduce: fn(&[f64]) -> f64) -> Self {
        let field = |pick: fn(&Headline) -> Option<Estimate>| {
            let values: Option<Vec<f64>> =
                headlines.iter().map(|h| pick(h).map(|e| e.value)).collect();
            values.filter(|v| !v.is_empty()).map(|v| Estimate {
                value: reduce(&v),
                low: None,
                high: None,
            })
        };
        Self {
            harvester_sensitivity: field(|h| h.harvester_sensitivity),
            harvester_ap: field(|h| h.harvester_ap),
            keyslice_sensitivity: field(|h| h.keyslice_sensitivity),
        }
    }
}

/// A paired comparison of two arms on one seed.
#[derive(Debug, Clone, Serialize)]
pub struct Paired {
    pub seed: usize,
    pub difference: f64,
    pub low: f64,
    pub high: f64,
    pub p_value: f64,
}

/// `better - worse` on one metric, per seed and on average.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// e.g. `(b) - (a)`.
    pub name: String,
    /// `harvester_sensitivity`, `harvester_ap` or `keyslice_sensitivity`.
    pub metric: &'static str,
    pub per_seed: Vec<Paired>,
    pub mean: f64,
    /// The mean is positive and so is every seed's difference.
    pub holds_on_every_seed: bool,
}

/// The share of the (c) - (a) gap that (b) closes, per seed and on average.
#[derive(Debug, Clone, Serialize)]
pub struct GapClosed {
    pub metric: &'static str,
    /// `None` where (c) is not above (a).
    pub per_seed: Vec<Option<f64>>,
    /// `(mean b - mean a) / (mean c - mean a)`.
    pub of_means: Option<f64>,
}

/// An arm's headline numbers per seed, with their mean and spread.
#[derive(Debug, Clone, Serialize)]
pub struct ArmSummary {
    pub name: &'static str,
    pub title: &'static str,
    pub cost_steps: u64,
    pub per_seed: Vec<Headline>,
    /// Mean and sample standard deviation over seeds, of the values.
    pub mean: Headline,
    pub sd: Headline,
    /// Training seconds of each seed in this invocation (`None`: earlier).
    pub seconds: Vec<Option<f64>>,
}

/// Mined lesions per seed.
#[derive(Debug, Clone, Serialize)]
pub struct MinedSummary {
    pub what: &'static str,
    pub tau: f32,
    pub per_seed: Vec<Option<MinedScore>>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

/// Everything `report.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// How the file writes numbers ([`uld_core::json::NON_FINITE`]).
    pub conventions: &'static str,
    pub command: String,
    pub machine: String,
    pub data_preset: String,
    pub patients: usize,
    pub data_seed: u64,
    pub missing_fraction: f64,
    pub preset: String,
    pub steps: u64,
    pub seeds: usize,
    pub bootstrap_replicates: usize,
    pub bootstrap_level: f64,
    pub arms: Vec<ArmSummary>,
    /// (b)'s student.
    pub student: ArmSummary,
    pub comparisons: Vec<Comparison>,
    pub gap_closed: Vec<GapClosed>,
    pub mined: Vec<MinedSummary>,
    pub run_time: Option<TimedRuns>,
    pub scoring_seconds: f64,
    pub total_seconds: f64,
}

type Metric = (
    &'static str,
    fn(&SplitScores) -> Option<&Evaluation>,
    fn(&Evaluation) -> f64,
);

fn harvester(s: &SplitScores) -> Option<&Evaluation> {
    s.harvester.as_ref().map(|h| &h.evaluation)
}

fn keyslice(s: &SplitScores) -> Option<&Evaluation> {
    Some(&s.keyslice.evaluation)
}

const METRICS: [Metric; 3] = [
    ("harvester_sensitivity", harvester, |e| e.metrics.summary),
    ("harvester_ap", harvester, |e| e.metrics.ap),
    ("keyslice_sensitivity", keyslice, |e| e.metrics.summary),
];

fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

fn arm_summary(
    arm: &BenchArm,
    steps: u64,
    scores: &[&SplitScores],
    seconds: Vec<Option<f64>>,
) -> ArmSummary {
    let per_seed: Vec<Headline> = scores.iter().map(|s| Headline::of(s)).collect();
    ArmSummary {
        name: arm.arm.name,
        title: arm.arm.title,
        cost_steps: arm.cost_steps(steps),
        mean: Headline::reduce(&per_seed, |v| mean_sd(v).0),
        sd: Headline::reduce(&per_seed, |v| mean_sd(v).1),
        per_seed,
        seconds,
    }
}

fn compare(
    name: &str,
    better: &[&SplitScores],
    worse: &[&SplitScores],
    metric: &Metric,
    boot: BootstrapConfig,
) -> Option<Comparison> {
    let (metric_name, eval_of, _) = metric;
    let mut per_seed = Vec::new();
    for (seed, (b, w)) in better.iter().zip(worse).enumerate() {
        let (eb, ew) = (eval_of(b)?, eval_of(w)?);
        let cmp = compare_evaluations(ew, eb, &eval_config(eb.protocol, Some(boot)));
        let d: &Difference = if *metric_name == "harvester_ap" {
            &cmp.ap
        } else {
            &cmp.summary
        };
        per_seed.push(Paired {
            seed,
            difference: d.difference,
            low: d.interval.low,
            high: d.interval.high,
            p_value: d.p_value,
        });
    }
    let mean = per_seed.iter().map(|p| p.difference).sum::<f64>() / per_seed.len().max(1) as f64;
    Some(Comparison {
        name: name.to_string(),
        metric: metric_name,
        holds_on_every_seed: mean > 0.0 && per_seed.iter().all(|p| p.difference > 0.0),
        per_seed,
        mean,
    })
}

fn gap_closed(a: f64, b: f64, c: f64) -> Option<f64> {
    (c - a > 1e-9).then(|| (b - a) / (c - a))
}

fn mined_summary(what: &'static str, tau: f32, per_seed: Vec<Option<MinedScore>>) -> MinedSummary {
    let mut all = MinedScore::default();
    for s in per_seed.iter().flatten() {
        all.merge(s);
    }
    MinedSummary {
        what,
        tau,
        precision: all.precision(),
        recall: all.recall(),
        per_seed,
    }
}

impl Summary {
    /// The summary of `results`, `total_seconds` after the benchmark began.
    pub fn new(setup: &BenchSetup, results: &BenchResults, total_seconds: f64) -> Self {
        let steps = setup.config.steps;
        let of_arm = |arm: usize| -> Vec<&SplitScores> {
            (0..setup.seeds)
                .filter_map(|seed| results.scores(arm, seed))
                .collect()
        };
        let seconds_of = |arm: usize| -> Vec<Option<f64>> {
            (0..setup.seeds)
                .map(|seed| {
                    results
                        .runs
                        .iter()
                        .find(|r| r.run.arm == arm && r.run.seed == seed)
                        .and_then(|r| r.seconds)
                })
                .collect()
        };
        let arms: Vec<ArmSummary> = setup
            .arms()
            .iter()
            .enumerate()
            .map(|(i, arm)| arm_summary(arm, steps, &of_arm(i), seconds_of(i)))
            .collect();
        let students: Vec<&SplitScores> = results.students.iter().collect();
        let student_arm = BenchArm {
            arm: Arm {
                title: "(b) mining, its student",
                ..ARMS[B].arm
            },
            mined_by: None,
        };
        let student = arm_summary(&student_arm, steps, &students, vec![None; setup.seeds]);
        let mut pairs = vec![("(b) - (a)", B, A)];
        if setup.multistage {
            pairs.push(("(b) - (d)", B, D));
            pairs.push(("(d) - (a)", D, A));
        }
        let comparisons = pairs
            .iter()
            .flat_map(|&(name, b, w)| {
                METRICS
                    .iter()
                    .filter_map(move |m| compare(name, &of_arm(b), &of_arm(w), m, setup.bootstrap))
            })
            .collect();
        let gap = |metric: &Metric| {
            let (name, eval_of, value) = metric;
            let v = |arm: usize| -> Option<Vec<f64>> {
                of_arm(arm).iter().map(|s| eval_of(s).map(value)).collect()
            };
            let (a, b, c) = (v(A)?, v(B)?, v(C)?);
            let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len().max(1) as f64;
            Some(GapClosed {
                metric: name,
                per_seed: (0..a.len()).map(|k| gap_closed(a[k], b[k], c[k])).collect(),
                of_means: gap_closed(mean(&a), mean(&b), mean(&c)),
            })
        };
        let mut mined = vec![mined_summary(
            "(b)'s final teacher on its training key images",
            results.review_tau,
            results.teacher_mined.clone(),
        )];
        if setup.multistage {
            mined.push(mined_summary(
                "(a)'s final weights for (d), offline",
                setup.config.mining.tau_high,
                results.offline_mined.clone(),
            ));
        }
        Self {
            command: setup.command.clone(),
            machine: machine(),
            data_preset: setup.data_preset.clone(),
            patients: setup.patients,
            data_seed: setup.data_seed,
            missing_fraction: setup.missing_fraction,
            conventions: uld_core::json::NON_FINITE,
            preset: setup.preset.clone(),
            steps,
            seeds: setup.seeds,
            bootstrap_replicates: setup.bootstrap.replicates,
            bootstrap_level: setup.bootstrap.level,
            arms,
            student,
            comparisons,
            gap_closed: METRICS[..2].iter().filter_map(gap).collect(),
            mined,
            run_time: results.run_time.clone(),
            scoring_seconds: results.scoring_seconds,
            total_seconds,
        }
    }

    /// Writes `report.json` and `report.md` into `out`.
    pub fn write(&self, out: &Path) -> Result<()> {
        write_atomically(&out.join("report.json"), |w| {
            uld_core::json::to_writer_pretty(w, self).map_err(std::io::Error::other)
        })?;
        let text = self.markdown();
        write_atomically(&out.join("report.md"), |w| {
            std::io::Write::write_all(w, text.as_bytes())
        })
    }

    /// The results table and the comparisons, as printed.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| run | training steps | harvester mean sensitivity, 0.125-8 FP/volume | harvester AP | keyslice mean sensitivity, 0.5-4 FP/image |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|");
        let costs = self.arms.iter().map(|a| a.cost_steps.to_string());
        let rows = self.arms.iter().zip(costs);
        for (arm, cost) in rows.chain([(&self.student, "(b)'s".to_string())]) {
            let cell = |pick: fn(&Headline) -> Option<Estimate>| cell(self.seeds, arm, pick);
            let _ = writeln!(
                s,
                "| {} | {cost} | {} | {} | {} |",
                arm.title,
                cell(|h| h.harvester_sensitivity),
                cell(|h| h.harvester_ap),
                cell(|h| h.keyslice_sensitivity),
            );
        }
        let _ = writeln!(
            s,
            "\nValues in points (%); {}, {:.0}% bootstrap intervals over {} replicates.\n",
            if self.seeds == 1 {
                "one training seed".to_string()
            } else {
                format!(
                    "mean +- standard deviation over {} training seeds (intervals per seed in report.json)",
                    self.seeds
                )
            },
            100.0 * self.bootstrap_level,
            self.bootstrap_replicates
        );
        let _ = writeln!(
            s,
            "Paired bootstrap on the same test units, per seed, then averaged:"
        );
        for c in &self.comparisons {
            let _ = writeln!(s, "- {}", comparison_line(c, self.seeds));
        }
        for g in &self.gap_closed {
            let _ = writeln!(
                s,
                "- share of the (c) - (a) gap that (b) closes, {}: {}",
                g.metric.replace('_', " "),
                gap_line(g)
            );
        }
        for m in &self.mined {
            let mut all = MinedScore::default();
            for score in m.per_seed.iter().flatten() {
                all.merge(score);
            }
            let _ = writeln!(
                s,
                "\nMined by {} at score {}, all seeds: {}.",
                m.what,
                m.tau,
                all.describe()
            );
        }
        s
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Missing-annotation benchmark\n");
        let _ = writeln!(s, "Command: `{}`\n", self.command);
        let _ = writeln!(s, "Machine: {}\n", self.machine);
        let _ = writeln!(
            s,
            "Data: synthetic `{}` preset, {} patients, seed {}, {:.0}% of lesions unlabelled. \
             Each run: training preset `{}`, {} steps, training seeds 0 to {}; (c) trains on \
             every lesion of the same training key images; (d) retrains on the partial labels \
             plus what (a)'s final weights mine offline (`mined.csv` in its folder). Test split: \
             `harvester` against its complete annotations, `keyslice` against its partial \
             `DL_info.csv` labels; each run is scored with its best validated weights (the \
             teacher for (b)).\n",
            self.data_preset,
            self.patients,
            self.data_seed,
            100.0 * self.missing_fraction,
            self.preset,
            self.steps,
            self.seeds - 1,
        );
        s.push_str(&self.table());
        let _ = writeln!(s, "\nTraining time in this invocation, per seed:\n");
        for arm in &self.arms {
            let times: Vec<String> = arm
                .seconds
                .iter()
                .map(|t| t.map_or("trained earlier".into(), |t| format!("{t:.0} s")))
                .collect();
            let _ = writeln!(s, "- {}: {}", arm.title, times.join(", "));
        }
        if let Some(TimedRuns { runs, time }) = &self.run_time {
            let _ = writeln!(
                s,
                "\n{} of the {} runs logged where their time went (`uld info RUN`); together: \
                 {:.1} min of training steps, {:.1} min validating ({} passes, {:.0}% of their \
                 time).",
                runs,
                self.arms.len() * self.seeds,
                time.step_seconds / 60.0,
                time.validation_seconds / 60.0,
                time.validations,
                100.0 * time.validation_share(),
            );
        }
        let _ = writeln!(
            s,
            "\nScoring every run on the test split: {:.1} min.",
            self.scoring_seconds / 60.0
        );
        let _ = writeln!(
            s,
            "\nTotal wall time: {:.1} min. Plots (seed 0): `froc_harvester.png`, \
             `froc_keyslice.png`. Every number: `report.json`.",
            self.total_seconds / 60.0
        );
        s
    }
}

fn pct(v: f64) -> String {
    format!("{:.1}", 100.0 * v)
}

/// A table cell: the value with its interval for one seed, else mean +- sd.
fn cell(seeds: usize, arm: &ArmSummary, pick: fn(&Headline) -> Option<Estimate>) -> String {
    match (seeds, pick(&arm.mean), pick(&arm.sd)) {
        (1, _, _) => match arm.per_seed.first().and_then(pick) {
            Some(Estimate {
                value,
                low: Some(l),
                high: Some(h),
            }) => format!("{} [{}, {}]", pct(value), pct(l), pct(h)),
            Some(e) => pct(e.value),
            None => "-".into(),
        },
        (_, Some(m), Some(sd)) => format!("{} +- {}", pct(m.value), pct(sd.value)),
        _ => "-".into(),
    }
}

fn comparison_line(c: &Comparison, seeds: usize) -> String {
    let one = |p: &Paired| {
        format!(
            "{:+.1} [{:+.1}, {:+.1}], p = {:.3}",
            100.0 * p.difference,
            100.0 * p.low,
            100.0 * p.high,
            p.p_value
        )
    };
    let metric = c.metric.replace('_', " ");
    if seeds == 1 {
        return format!("{} {metric}: {}", c.name, one(&c.per_seed[0]));
    }
    let each: Vec<String> = c.per_seed.iter().map(one).collect();
    format!(
        "{} {metric}: mean {:+.1}{}; per seed {}",
        c.name,
        100.0 * c.mean,
        if c.holds_on_every_seed {
            ", positive on every seed"
        } else {
            ", not positive on every seed"
        },
        each.join("; ")
    )
}

fn gap_line(g: &GapClosed) -> String {
    let share = |v: Option<f64>| {
        v.map_or("n/a: (c) is not above (a)".into(), |v| {
            format!("{:.0}%", 100.0 * v)
        })
    };
    if g.per_seed.len() == 1 {
        return share(g.per_seed[0]);
    }
    let each: Vec<String> = g.per_seed.iter().map(|v| share(*v)).collect();
    format!(
        "{} of the means; per seed {}",
        share(g.of_means),
        each.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_closed_is_a_share_of_the_upper_bound() {
        assert!((gap_closed(0.30, 0.35, 0.40).unwrap() - 0.5).abs() < 1e-12);
        assert!((gap_closed(0.30, 0.28, 0.40).unwrap() + 0.2).abs() < 1e-12);
        assert_eq!(gap_closed(0.40, 0.45, 0.40), None);
    }

    fn tiny_setup(seeds: usize) -> BenchSetup {
        BenchSetup {
            out: "bench".into(),
            command: String::new(),
            data_preset: "tiny".into(),
            patients: 3,
            data_seed: 0,
            missing_fraction: 0.5,
            preset: "tiny".into(),
            config: TrainConfig::tiny(),
            seeds,
            multistage: true,
            jobs: 3,
            bootstrap: BootstrapConfig::default(),
        }
    }

    #[test]
    fn multistage_runs_train_after_their_miner_and_cost_twice() {
        let setup = tiny_setup(2);
        let runs = setup.runs();
        assert_eq!(runs.len(), 8);
        let position = |arm, seed| runs.iter().position(|r| *r == RunId { arm, seed }).unwrap();
        for seed in 0..2 {
            assert!(position(D, seed) > position(A, seed));
        }
        assert_eq!(ARMS[D].cost_steps(100), 200);
        assert_eq!(ARMS[A].cost_steps(100), 100);
        assert_eq!(
            setup.run_dir(RunId { arm: B, seed: 1 }),
            Path::new("bench/seed_1/b_mining_partial")
        );
        assert_eq!(setup.seed_config(1).seed, setup.config.seed + 1);
        assert_eq!(
            setup.seed_config(1).loader.seed,
            setup.config.loader.seed + 1
        );
        let three = BenchSetup {
            multistage: false,
            ..setup
        };
        assert_eq!(three.runs().len(), 6);
    }

    #[test]
    fn a_free_worker_takes_the_next_ready_run_and_a_failure_stops_the_queue() {
        let queue = RunQueue::new(tiny_setup(1).runs());
        let done = |run| {
            Ok(TrainedRun {
                run,
                seconds: None,
                mined: None,
            })
        };
        let taken: Vec<RunId> = (0..3).map(|_| queue.next().unwrap()).collect();
        assert_eq!(taken.iter().map(|r| r.arm).collect::<Vec<_>>(), [A, B, C]);
        std::thread::scope(|scope| {
            let multistage = scope.spawn(|| queue.next());
            queue.finish(done(taken[1]));
            std::thread::sleep(std::time::Duration::from_millis(100));
            assert!(!multistage.is_finished(), "(d) started before (a) finished");
            queue.finish(done(taken[0]));
            assert_eq!(multistage.join().unwrap(), Some(RunId { arm: D, seed: 0 }));
        });
        queue.finish(Err(Error::invalid("training", "diverged")));
        assert_eq!(queue.next(), None);
        assert!(
            queue
                .into_result()
                .unwrap_err()
                .to_string()
                .contains("diverged")
        );
    }

    #[test]
    fn the_mean_and_spread_are_over_seeds() {
        let (m, sd) = mean_sd(&[0.3, 0.5]);
        assert!((m - 0.4).abs() < 1e-12 && (sd - 0.02f64.sqrt()).abs() < 1e-12);
        assert_eq!(mean_sd(&[0.3]), (0.3, 0.0));
    }
}
