//! The teacher-student scheme wraps any detector: a CenterNet-style
//! heatmap detector (tests/common/heatmap.rs), which shares nothing with
//! the FCOS detector but the `Detector` traits, trains through the same
//! `Mining` objective (with a prediction bank), checkpoints, resumes exactly and loads back as a
//! trained run, with no change to uld-train.

mod common;

use std::path::Path;

use common::heatmap::HeatmapDetector;
use common::{Recorder, dataset, serial, weights};
use uld_model::Detector;
use uld_train::{
    Mining, Mode, Objective, StepLog, Student, TrainConfig, load_trained_weights, train,
};

fn config(steps: u64) -> TrainConfig {
    let mut c = TrainConfig::tiny();
    c.mode = Mode::Mining;
    c.log_every = 5;
    c.checkpoint_every = 10;
    c.mining.burn_in_fraction = 0.5;
    // A heatmap this young scores every peak low: learn its best peaks
    // (up to the per-image cap) whatever their score, to exercise the path.
    c.mining.tau_high = 0.0;
    c.mining.tau_low = 0.0;
    // ... once a peak recurs: the prediction bank is state a resumed run
    // must get back from the checkpoint.
    c.mining.bank_visits = 3;
    c.mining.bank_hits = 2;
    c.schedule.base_lr = 2e-3;
    // the schedule is that of a 40-step run however many steps this process
    // is asked for, as when a run is stopped and started again
    c.steps = steps;
    c
}

struct Run {
    logs: Vec<StepLog>,
    student: Student<HeatmapDetector>,
    teacher: Vec<(String, Vec<f32>)>,
}

fn run(dir: &Path, config: &TrainConfig) -> Run {
    let mut student = Student::<HeatmapDetector>::new(config).unwrap();
    let mut mining = Mining::<HeatmapDetector>::new(
        config.mining.clone(),
        &config.model,
        40,
        student.store.device(),
        None,
    )
    .unwrap();
    let mut recorder = Recorder::default();
    train(
        dir,
        config,
        &mut student,
        dataset::<HeatmapDetector>(config, mining.views()),
        &mut mining,
        None,
        &mut recorder,
    )
    .unwrap();
    Run {
        logs: recorder.0,
        student,
        teacher: weights(mining.teacher().unwrap()),
    }
}

#[test]
fn a_heatmap_detector_trains_with_mining_and_resumes_exactly() {
    let _serial = serial();
    let whole_dir = tempfile::tempdir().unwrap();
    let whole = run(whole_dir.path(), &config(40));
    let first = whole.logs.first().unwrap();
    let last = whole.logs.last().unwrap();
    assert!(
        first.loss_parts.contains_key("loss_heatmap") && first.loss_parts.contains_key("loss_size"),
        "the detector's own loss parts are logged: {:?}",
        first.loss_parts
    );
    assert!(
        last.loss_parts["loss_heatmap"] < 0.7 * first.loss_parts["loss_heatmap"],
        "the heatmap loss falls: {first:?} -> {last:?}"
    );
    let mined: f64 = whole
        .logs
        .iter()
        .filter(|l| l.step > 20)
        .filter_map(|l| l.objective.get("pseudo_per_image"))
        .sum();
    eprintln!("pseudo lesions per image, summed over the logged mining steps: {mined}");
    assert!(
        mined > 0.0,
        "the teacher mines pseudo lesions after the burn-in"
    );
    let held: f64 = whole
        .logs
        .iter()
        .filter_map(|l| l.objective.get("held_per_image"))
        .sum();
    assert!(held > 0.0, "the bank holds back peaks that do not recur");
    assert_ne!(
        weights(&whole.student.store),
        whole.teacher,
        "the teacher is an average, not a copy, of the student"
    );

    let split_dir = tempfile::tempdir().unwrap();
    // stopped mid-mining, with a bank to carry over
    let stopped = run(split_dir.path(), &config(30));
    let resumed = run(split_dir.path(), &config(40));
    let curve = |logs: &[StepLog]| logs.iter().map(|l| (l.step, l.loss)).collect::<Vec<_>>();
    let joined: Vec<_> = curve(&stopped.logs)
        .into_iter()
        .chain(curve(&resumed.logs))
        .collect();
    assert_eq!(joined, curve(&whole.logs), "the same loss curve");
    assert!(
        weights(&resumed.student.store) == weights(&whole.student.store),
        "the same student"
    );
    assert!(resumed.teacher == whole.teacher, "the same teacher");

    let trained = load_trained_weights::<HeatmapDetector>(
        whole_dir.path(),
        tch::Device::Cpu,
        uld_train::Weights::Teacher,
    )
    .unwrap();
    assert!(
        weights(&trained.store) == whole.teacher,
        "the teacher loads back"
    );
    let images = tch::Tensor::zeros(
        [1, trained.config.model.input.slices, 64, 64],
        (tch::Kind::Float, tch::Device::Cpu),
    );
    for d in &trained.detector.predict(&images)[0] {
        assert!(d.bbox.is_valid() && d.bbox.x2 <= 64.0 && d.bbox.y2 <= 64.0);
    }
}
