//! What the training tests share: one tiny synthetic dataset, its training
//! images and dataset as a run builds them, and a log recorder.

#![allow(dead_code)]

pub mod heatmap;

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use uld_data::deeplesion::read_dl_info;
use uld_data::loader::{DeepLesionDataset, KeyImage, ViewMode};
use uld_data::synth::{Preset, generate};
use uld_model::BuildDetector;
use uld_train::run::{training_dataset, training_images};
use uld_train::{Observer, StepLog, TrainConfig};

/// One tiny synthetic dataset shared by the tests of a file.
pub fn dataset_root() -> &'static Path {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        generate(&Preset::Tiny.config(), dir.path(), &|| {}).unwrap();
        dir
    })
    .path()
}

/// Runs share libtorch's global seed and thread pool: one at a time.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn train_images(config: &TrainConfig) -> Vec<KeyImage> {
    let root = dataset_root();
    let records = read_dl_info(root.join("DL_info.csv")).unwrap();
    training_images(root, &records, config).unwrap()
}

/// The training dataset a `D` trains on.
pub fn dataset<D: BuildDetector>(config: &TrainConfig, views: ViewMode) -> Arc<DeepLesionDataset> {
    training_dataset::<D>(train_images(config), config, views).unwrap()
}

#[derive(Default)]
pub struct Recorder(pub Vec<StepLog>);

impl Observer for Recorder {
    fn step(&mut self, log: &StepLog) {
        self.0.push(log.clone());
    }
}

/// A store's variables by name, as numbers.
pub fn weights(store: &tch::nn::VarStore) -> Vec<(String, Vec<f32>)> {
    let mut named: Vec<(String, Vec<f32>)> = store
        .variables()
        .into_iter()
        .map(|(n, t)| (n, Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}
