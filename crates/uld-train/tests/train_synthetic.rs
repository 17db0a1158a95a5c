//! Whole training runs on a tiny synthetic DeepLesion-format set: the loss
//! falls, an interrupted run resumes exactly, and mining runs end to end.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use uld_data::deeplesion::{Split, read_dl_info};
use uld_data::loader::{DeepLesionDataset, KeyImage, ViewMode};
use uld_data::synth::{MANIFEST_FILE, Manifest, Preset, generate};
use uld_train::{
    Mining, Mode, Observer, StepLog, Student, Supervised, TrainConfig, complete_from_manifest,
    train,
};

/// One tiny synthetic dataset shared by the tests of this file.
fn dataset_root() -> &'static Path {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let config = Preset::Tiny.config();
        generate(&config, dir.path(), &|| {}).unwrap();
        dir
    })
    .path()
}

/// Runs share libtorch's global seed and thread pool: one at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn train_images() -> Vec<KeyImage> {
    let root = dataset_root();
    let records = read_dl_info(root.join("DL_info.csv")).unwrap();
    let train: Vec<_> = records
        .into_iter()
        .filter(|r| r.split == Split::Train)
        .collect();
    KeyImage::from_records(root, &train, uld_data::loader::NoisyPolicy::Drop)
}

fn dataset(config: &TrainConfig, views: ViewMode) -> Arc<DeepLesionDataset> {
    let mut d =
        DeepLesionDataset::new(train_images(), config.sample.clone(), views, 64 << 20).unwrap();
    d.size_divisor = 16;
    Arc::new(d)
}

#[derive(Default)]
struct Recorder(Vec<StepLog>);

impl Observer for Recorder {
    fn step(&mut self, log: &StepLog) {
        self.0.push(log.clone());
    }
}

fn config(steps: u64) -> TrainConfig {
    let mut c = TrainConfig::tiny();
    c.steps = steps;
    c.log_every = 5;
    c.checkpoint_every = 10;
    c
}

fn run(dir: &Path, config: &TrainConfig) -> (Vec<StepLog>, Student) {
    let mut student = Student::new(config).unwrap();
    let mut recorder = Recorder::default();
    train(
        dir,
        config,
        &mut student,
        dataset(config, ViewMode::Weak),
        &mut Supervised,
        None,
        &mut recorder,
    )
    .unwrap();
    (recorder.0, student)
}

fn weights(student: &Student) -> Vec<(String, Vec<f32>)> {
    let mut named: Vec<(String, Vec<f32>)> = student
        .store
        .variables()
        .into_iter()
        .map(|(n, t)| (n, Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
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
        weights(&resumed) == weights(&whole_student),
        "the same final weights"
    );
    let lines = std::fs::read_to_string(split.path().join("metrics.jsonl")).unwrap();
    assert_eq!(
        lines.lines().count(),
        whole_logs.len(),
        "metrics.jsonl reads as one run"
    );
}

#[test]
fn mining_runs_end_to_end_and_scores_its_mined_lesions() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(30);
    config.mode = Mode::Mining;
    config.mining.burn_in_fraction = 0.5;
    config.mining.tau_high = 0.05;
    config.mining.tau_low = 0.02;
    let manifest = Manifest::read(&dataset_root().join(MANIFEST_FILE)).unwrap();
    let complete = complete_from_manifest(&manifest, &train_images());
    assert!(
        complete.iter().map(Vec::len).sum::<usize>()
            > train_images().iter().map(|i| i.boxes.len()).sum::<usize>()
    );
    let mut student = Student::new(&config).unwrap();
    let device = student.store.device();
    let mut mining = Mining::new(
        config.mining.clone(),
        &config.model,
        config.steps,
        device,
        Some(complete),
    )
    .unwrap();
    let mut recorder = Recorder::default();
    let data = dataset(&config, ViewMode::WeakStrong);
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
    let mining_logs: Vec<&StepLog> = recorder.0.iter().filter(|l| l.step > 15).collect();
    assert!(!mining_logs.is_empty());
    for log in mining_logs {
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
