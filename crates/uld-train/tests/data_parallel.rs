//! Data-parallel training: two ranks (threads of this test, each with its
//! own Gloo group over 127.0.0.1) against one process with their combined
//! batch.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Recorder, dataset, serial, weights};
use uld_distributed::{ProcessGroup, Rendezvous};
use uld_model::FcosDetector;
use uld_train::{
    Mining, Mode, Objective, OptimizerConfig, StepLog, Student, Supervised, TrainConfig, train,
};

fn config(batch_size: usize) -> TrainConfig {
    let mut c = TrainConfig::tiny();
    c.steps = 8;
    c.log_every = 1;
    c.checkpoint_every = 4;
    c.threads = 1;
    c.loader.batch_size = batch_size;
    // As the ranks do: a short last batch would be one step more.
    c.loader.drop_last = true;
    // Images of one size: a batch pads its images to its largest, and
    // normalisation layers see the padding, so two images of different
    // sizes batched together are not the two of them one by one.
    c.sample.crop.enabled = false;
    // SGD, whose step is linear in the gradient: AdamW's first steps move
    // every weight by about the learning rate times the sign of its
    // gradient, so a gradient that is zero up to rounding (and rounds
    // differently summed over two ranks than over one batch) would move
    // its weight a whole step either way, and the curves part for that
    // reason alone.
    c.optimizer = OptimizerConfig::Sgd {
        momentum: 0.9,
        weight_decay: 1e-4,
    };
    // Steps large enough that summed rather than averaged gradients, or a
    // rank's batch missing, would show in the loss.
    c.schedule.base_lr = 0.01;
    c.schedule.warmup_steps = 0;
    c
}

fn objective(config: &TrainConfig) -> Box<dyn Objective> {
    match config.mode {
        Mode::Supervised => Box::new(Supervised),
        Mode::Mining => Box::new(
            Mining::<FcosDetector>::new(
                config.mining.clone(),
                &config.model,
                config.steps,
                tch::Device::Cpu,
                None,
            )
            .unwrap(),
        ),
    }
}

/// A finished run: its logged steps, student and (mining) teacher weights.
struct Run {
    logs: Vec<StepLog>,
    student: Vec<(String, Vec<f32>)>,
    teacher: Option<Vec<(String, Vec<f32>)>>,
}

fn run(dir: &Path, config: &TrainConfig, ranks: Option<ProcessGroup>) -> Run {
    let mut student = Student::<FcosDetector>::new(config).unwrap();
    if let Some(group) = ranks {
        student = student.with_ranks(group);
    }
    let mut objective = objective(config);
    let mut recorder = Recorder::default();
    train(
        dir,
        config,
        &mut student,
        dataset::<FcosDetector>(config, objective.views()),
        objective.as_mut(),
        None,
        &mut recorder,
    )
    .unwrap();
    Run {
        logs: recorder.0,
        student: weights(&student.store),
        teacher: objective.teacher().map(weights),
    }
}

/// Two ranks of batch `batch_size` training in `dir`.
fn two_ranks(dir: &Path, config: &TrainConfig) -> Vec<Run> {
    let port = uld_distributed::launch::free_port().unwrap();
    std::thread::scope(|s| {
        let ranks: Vec<_> = (0..2)
            .map(|rank| {
                s.spawn(move || {
                    let r = Rendezvous {
                        rank,
                        world: 2,
                        local_rank: rank,
                        master_addr: "127.0.0.1".into(),
                        master_port: port,
                    };
                    let group = ProcessGroup::join(&r, Duration::from_secs(60)).unwrap();
                    run(dir, config, Some(group))
                })
            })
            .collect();
        ranks.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn max_relative_difference(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|((_, x), (_, y))| x.iter().zip(y))
        .map(|(x, y)| f64::from((x - y).abs()) / f64::from(x.abs().max(y.abs())).max(1e-3))
        .fold(0.0, f64::max)
}

#[test]
fn two_ranks_of_batch_b_train_as_one_process_of_batch_2b() {
    let _serial = serial();
    let parallel = tempfile::tempdir().unwrap();
    let ranks = two_ranks(parallel.path(), &config(1));
    let single = tempfile::tempdir().unwrap();
    let one = run(single.path(), &config(2), None);

    assert!(
        ranks[0].student == ranks[1].student,
        "both ranks hold bit-identical weights"
    );
    assert_eq!(ranks[0].logs.len(), 8, "rank 0 logs every step");
    assert!(ranks[1].logs.is_empty(), "only rank 0 reports");
    for (p, s) in ranks[0].logs.iter().zip(&one.logs) {
        assert_eq!(p.step, s.step);
        let tolerance = 1e-4 * s.loss.abs().max(1.0);
        assert!(
            (p.loss - s.loss).abs() < tolerance,
            "step {}: 2 ranks x 1 image lose {}, 1 x 2 images {}",
            s.step,
            p.loss,
            s.loss
        );
        assert!(p.samples_per_second.is_finite());
    }
    let drift = max_relative_difference(&ranks[0].student, &one.student);
    assert!(drift < 1e-3, "weights drift apart by {drift}");
    for name in ["config.toml", "metrics.jsonl", "checkpoints/latest.json"] {
        assert!(parallel.path().join(name).exists(), "rank 0 writes {name}");
    }
    let lines = std::fs::read_to_string(parallel.path().join("metrics.jsonl")).unwrap();
    assert_eq!(
        lines.lines().count(),
        8,
        "one metrics line per step, not per rank"
    );
}

#[test]
fn mining_ranks_keep_identical_teachers_and_resume_together() {
    let _serial = serial();
    let mut config = config(1);
    config.mode = Mode::Mining;
    config.mining.burn_in_fraction = 0.25;
    config.mining.tau_high = 0.05;
    config.mining.tau_low = 0.02;
    let dir = tempfile::tempdir().unwrap();
    let mut first = config.clone();
    first.steps = 4;
    two_ranks(dir.path(), &first);
    // Both ranks resume from rank 0's checkpoint at step 4.
    let ranks = two_ranks(dir.path(), &config);
    assert_eq!(ranks[0].logs.first().map(|l| l.step), Some(5));
    assert!(ranks[0].student == ranks[1].student, "identical students");
    let teachers: Vec<_> = ranks.iter().map(|r| r.teacher.clone().unwrap()).collect();
    assert!(teachers[0] == teachers[1], "identical EMA teachers");
}
