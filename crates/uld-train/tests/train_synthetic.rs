//! Whole training runs on a tiny synthetic DeepLesion-format set: the loss
//! falls, an interrupted run resumes exactly (and names what its second
//! start changed), and mining runs end to end.

mod common;

use std::path::Path;

use common::{Recorder, dataset, dataset_root, serial, train_images, weights};
use uld_data::loader::ViewMode;
use uld_data::synth::{MANIFEST_FILE, Manifest};
use uld_model::FcosDetector;
use uld_train::run::{relabelled, training_dataset};
use uld_train::{
    Mining, Mode, Silent, StepLog, Student, Supervised, TrainConfig, complete_from_manifest, train,
};

fn config(steps: u64) -> TrainConfig {
    let mut c = TrainConfig::tiny();
    c.steps = steps;
    c.log_every = 5;
    c.checkpoint_every = 10;
    c
}

fn run(dir: &Path, config: &TrainConfig) -> (Vec<StepLog>, Student<FcosDetector>) {
    let mut student = Student::new(config).unwrap();
    let mut recorder = Recorder::default();
    train(
        dir,
        config,
        &mut student,
        dataset::<FcosDetector>(config, ViewMode::Weak),
        &mut Supervised,
        None,
        &mut recorder,
    )
    .unwrap();
    (recorder.0, student)
}

#[test]
fn supervised_training_lowers_the_loss() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (logs, _) = run(dir.path(), &config(60));
    let first = logs.first().unwrap().loss;
    let last: f64 = logs.iter().rev().take(3).map(|l| l.loss).sum::<f64>() / 3.0;
    assert!(last < 0.8 * first, "loss went from {first} to {last}");
    for name in ["config.toml", "metrics.jsonl", "checkpoints/latest.json"] {
        assert!(dir.path().join(name).exists(), "{name} is written");
    }
}

#[test]
fn an_interrupted_run_resumes_exactly() {
    let _serial = serial();
    let whole = tempfile::tempdir().unwrap();
    let (whole_logs, whole_student) = run(whole.path(), &config(30));

    let split = tempfile::tempdir().unwrap();
    // the first "process" stops after 20 steps (its checkpoint is at 20) ...
    let (first_logs, _) = run(split.path(), &config(20));
    // ... and a second one, asked for the whole run, resumes there
    let (rest_logs, resumed) = run(split.path(), &config(30));
    assert_eq!(first_logs.len() + rest_logs.len(), whole_logs.len());
    let losses = |logs: &[StepLog]| logs.iter().map(|l| (l.step, l.loss)).collect::<Vec<_>>();
    let joined: Vec<_> = losses(&first_logs)
        .into_iter()
        .chain(losses(&rest_logs))
        .collect();
    assert_eq!(joined, losses(&whole_logs), "the same loss curve");
    assert!(
        weights(&resumed.store) == weights(&whole_student.store),
        "the same final weights"
    );
    // metrics.jsonl reads as one run, plus the line that says the second
    // process asked for more steps than the first.
    let lines = std::fs::read_to_string(split.path().join("metrics.jsonl")).unwrap();
    let (steps, notes): (Vec<&str>, Vec<&str>) =
        lines.lines().partition(|l| l.contains("\"loss\""));
    assert_eq!(steps.len(), whole_logs.len());
    assert_eq!(
        notes,
        [r#"{"step":20,"resumed_with_changes":[{"key":"steps","before":"20","after":"30"}]}"#]
    );
}

#[test]
fn mining_runs_end_to_end_and_scores_its_mined_lesions() {
    let _serial = serial();
    let manifest = Manifest::read(&dataset_root().join(MANIFEST_FILE)).unwrap();
    let images = train_images(&config(1));
    let complete = complete_from_manifest(&manifest, &images);
    assert!(
        complete.iter().map(Vec::len).sum::<usize>()
            > images.iter().map(|i| i.boxes.len()).sum::<usize>()
    );
    // A teacher worth listening to: the student first learns every lesion
    // of the training images (as a later mining run's burn-in would, given
    // time), then mines from its first step on the partial labels.
    let warm = tempfile::tempdir().unwrap();
    let mut learn = config(80);
    learn.checkpoint_every = 80;
    let mut learned = Student::<FcosDetector>::new(&learn).unwrap();
    let complete_images = relabelled(&images, &complete);
    train(
        warm.path(),
        &learn,
        &mut learned,
        training_dataset::<FcosDetector>(complete_images, &learn, ViewMode::Weak).unwrap(),
        &mut Supervised,
        None,
        &mut Silent,
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut config = config(30);
    config.mode = Mode::Mining;
    config.mining.burn_in_fraction = 0.0;
    config.mining.tau_high = 0.3;
    config.mining.tau_low = 0.2;
    // every step's mining telemetry reaches the log
    config.log_every = 1;
    let mut student = Student::<FcosDetector>::new(&config).unwrap();
    student.store.copy(&learned.store).unwrap();
    let device = student.store.device();
    let mut mining = Mining::<FcosDetector>::new(
        config.mining.clone(),
        &config.model,
        config.steps,
        device,
        Some(complete),
    )
    .unwrap();
    let mut recorder = Recorder::default();
    let data = dataset::<FcosDetector>(&config, ViewMode::WeakStrong);
    train(
        dir.path(),
        &config,
        &mut student,
        data,
        &mut mining,
        None,
        &mut recorder,
    )
    .unwrap();
    let mining_logs: Vec<&StepLog> = recorder.0.iter().collect();
    assert!(!mining_logs.is_empty());
    let total = |key: &str| -> f64 {
        mining_logs
            .iter()
            .filter_map(|l| l.objective.get(key))
            .sum()
    };
    eprintln!(
        "pseudo per image {:.2} a step, {} mined real, {} not",
        total("pseudo_per_image") / mining_logs.len() as f64,
        total("mined_true"),
        total("mined_false")
    );
    assert!(
        total("pseudo_per_image") > 0.0,
        "the student learned pseudo lesions"
    );
    assert!(
        total("mined_true") > 0.0,
        "some mined lesions are real unlabelled ones"
    );
    for log in &mining_logs {
        for key in [
            "pseudo_per_image",
            "mined_true",
            "mined_false",
            "unlabelled",
            "unlabelled_found",
        ] {
            assert!(
                log.objective.contains_key(key),
                "step {} logs {key}",
                log.step
            );
        }
    }
    let text = std::fs::read_to_string(dir.path().join("checkpoints/latest.json")).unwrap();
    let latest: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tensors = uld_train::checkpoint::tensor_names(
        &dir.path()
            .join("checkpoints")
            .join(latest["tensors"].as_str().unwrap()),
    )
    .unwrap();
    assert!(
        tensors.iter().any(|n| n.starts_with("teacher.")),
        "the teacher is checkpointed"
    );
}
