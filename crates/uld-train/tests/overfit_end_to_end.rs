//! A tiny detector overfits a handful of key slices, real and synthetic,
//! through the whole pipeline (PNG series -> crop and resampling -> views
//! -> targets -> training -> detection -> boxes mapped back to the original
//! pixels) until it finds their lesions where the CSV puts them. Any wrong
//! coordinate transform on the way would keep recall low.

use std::path::Path;
use std::sync::Mutex;

use tch::Device;
use uld_core::testdata::shared_data;
use uld_data::deeplesion::{LesionRecord, read_dl_info};
use uld_data::loader::{KeyImage, NoisyPolicy, ViewMode};
use uld_data::synth::{Preset, generate};
use uld_model::FcosDetector;
use uld_train::detect::DetectSettings;
use uld_train::run::{detect_settings, training_dataset};
use uld_train::{Decay, Silent, Student, Supervised, TrainConfig, train};

fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fraction of lesions matched (IoU >= 0.5, original pixels) by one of
/// their image's top `n + 2` detections, n being its lesion count.
fn recall(
    settings: &DetectSettings,
    detector: &dyn uld_model::Detector,
    images: &[KeyImage],
) -> f64 {
    let dets = settings.detect(detector, images.to_vec()).unwrap();
    let (mut found, mut total) = (0, 0);
    for d in &dets {
        let truth = &images[d.index].boxes;
        let top = &d.boxes[..d.boxes.len().min(truth.len() + 2)];
        total += truth.len();
        found += truth
            .iter()
            .filter(|t| top.iter().any(|b| b.iou(t) >= 0.5))
            .count();
    }
    found as f64 / total as f64
}

/// Trains in rounds of 50 steps (each round resumes the run) until recall
/// reaches 0.9 or `max_steps` pass; returns the recall and steps taken.
fn overfit(images: Vec<KeyImage>, max_side: usize, max_steps: u64) -> (f64, u64) {
    let mut config = TrainConfig::tiny();
    config.sample.max_side = Some(max_side);
    config.loader.batch_size = images.len();
    config.loader.workers = 0;
    config.schedule.warmup_steps = 5;
    config.schedule.decay = Decay::Constant;
    config.schedule.base_lr = 3e-3;
    config.optimizer = uld_train::OptimizerConfig::AdamW {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    config.cache_bytes = 256 << 20;
    let data = training_dataset::<FcosDetector>(images.clone(), &config, ViewMode::Weak).unwrap();
    let settings = detect_settings::<FcosDetector>(&config, Device::Cpu);
    let run = tempfile::tempdir().unwrap();
    let mut student = Student::<FcosDetector>::new(&config).unwrap();
    let untrained = recall(&settings, &student.detector, &images);
    assert!(
        untrained < 0.5,
        "an untrained detector should not already find them (recall {untrained})"
    );
    let mut r = 0.0;
    for steps in (50..=max_steps).step_by(50) {
        config.steps = steps;
        train(
            run.path(),
            &config,
            &mut student,
            data.clone(),
            &mut Supervised,
            None,
            &mut Silent,
        )
        .unwrap();
        r = recall(&settings, &student.detector, &images);
        if r >= 0.9 {
            return (r, steps);
        }
    }
    (r, max_steps)
}

fn key_images(root: &Path, records: &[LesionRecord], count: usize) -> Vec<KeyImage> {
    let present: Vec<LesionRecord> = records
        .iter()
        .filter(|r| root.join(r.key_slice_path()).exists())
        .cloned()
        .collect();
    let mut images = KeyImage::from_records(root, &present, NoisyPolicy::Drop);
    images.retain(|i| !i.boxes.is_empty());
    images.truncate(count);
    assert_eq!(images.len(), count);
    images
}

#[test]
fn a_tiny_detector_finds_the_lesions_of_real_key_slices_after_overfitting() {
    let _serial = serial();
    let root = shared_data("deeplesion");
    let mut records = read_dl_info(root.join("DL_info_val.csv")).unwrap();
    records.extend(read_dl_info(root.join("DL_info_test.csv")).unwrap());
    // 512 px slices downscaled to 128 px: the boxes go through crop and scale
    let images = key_images(&root, &records, 6);
    let (r, steps) = overfit(images, 128, 600);
    assert!(r >= 0.9, "recall {r} after {steps} steps");
}

#[test]
fn a_tiny_detector_finds_the_lesions_of_synthetic_key_slices_after_overfitting() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    generate(&Preset::Tiny.config(), dir.path(), &|| {}).unwrap();
    let records = read_dl_info(dir.path().join("DL_info.csv")).unwrap();
    let images = key_images(dir.path(), &records, 6);
    let (r, steps) = overfit(images, 128, 600);
    assert!(r >= 0.9, "recall {r} after {steps} steps");
}
