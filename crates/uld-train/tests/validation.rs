//! Validation detects a split's key images once: as slices of the
//! sub-volumes the `harvester` protocol scores.

mod common;

use common::{dataset_root, serial};
use tch::Device;
use tch::nn::VarStore;
use uld_data::deeplesion::{Split, read_dl_info};
use uld_model::{FcosDetector, build_detector};
use uld_train::TrainConfig;
use uld_train::run::split_validator;
use uld_train::validate::keyslice_detection_set;

#[test]
fn key_images_score_as_if_detected_alone() {
    let _serial = serial();
    let root = dataset_root();
    let records = read_dl_info(root.join("DL_info.csv")).unwrap();
    let mut config = TrainConfig::tiny();
    // One image a batch: no padding, so an image's detections do not depend
    // on the images it is batched with.
    config.loader.batch_size = 1;
    // An untrained detector scores about its prior; keep every box.
    config.model.decode.score_threshold = 0.0;
    let store = VarStore::new(Device::Cpu);
    let detector = build_detector::<FcosDetector>(&store, &config.model, Some(0)).unwrap();
    let validator =
        split_validator::<FcosDetector>(root, &records, Split::Test, &config, Device::Cpu)
            .unwrap()
            .unwrap();
    assert!(validator.harvester.is_some(), "the split has sub-volumes");

    let scores = validator.score(&detector, None).unwrap();
    let alone = validator
        .settings
        .detect(&detector, validator.key_images.clone())
        .unwrap();
    assert!(alone.iter().all(|d| !d.boxes.is_empty()));
    assert_eq!(scores.keyslice.detections, keyslice_detection_set(&alone));
}
