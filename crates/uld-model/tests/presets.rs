//! Every preset builds, runs forward at a reduced size, gives one output per
//! location of its levels and a finite loss.

use tch::{Device, Kind, Tensor, nn};
use uld_core::Box2;
use uld_model::{Detector, FcosDetector, ImageTargets, ModelConfig};

fn check(cfg: &ModelConfig, size: i64) {
    tch::set_num_threads(2);
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = FcosDetector::new(&vs.root(), cfg).unwrap();
    let images = Tensor::randn(
        [1, cfg.input.slices, size, size],
        (Kind::Float, Device::Cpu),
    );
    let out = tch::no_grad(|| model.forward(&images));
    let strides: Vec<i64> = out.levels.iter().map(|l| l.stride).collect();
    assert_eq!(strides, cfg.fpn.strides);
    let locations: i64 = cfg
        .fpn
        .strides
        .iter()
        .map(|s| ((size + s - 1) / s).pow(2))
        .sum();
    assert_eq!(out.cls_logits.size(), [1, locations]);
    assert_eq!(out.ltrb.size(), [1, locations, 4]);
    let targets = [ImageTargets::from_boxes(vec![Box2::new(
        20.0, 30.0, 44.0, 50.0,
    )])];
    let loss = tch::no_grad(|| model.loss(&images, &targets, false));
    assert!(
        loss.part("box").unwrap().double_value(&[]) > 0.0,
        "the box is assigned to locations"
    );
    assert!(
        loss.values().iter().all(|v| v.is_finite()),
        "{:?}",
        loss.values()
    );
}

#[test]
fn small_preset_runs() {
    check(&ModelConfig::small(), 96);
}

#[test]
fn deeplesion_preset_runs_with_3dce_fusion() {
    let cfg = ModelConfig::deeplesion();
    assert!(cfg.input.fuse_groups && cfg.input.slices == 9);
    check(&cfg, 64);
}

#[test]
fn level_grids_are_known_before_the_forward_for_odd_sizes() {
    let mut cfg = ModelConfig::tiny();
    cfg.set_all([
        "fpn.strides=[8,16,32,64]",
        "assign.size_ranges=[[0,8],[8,16],[16,32],[32,inf]]",
    ])
    .unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let model = FcosDetector::new(&vs.root(), &cfg).unwrap();
    for (h, w) in [(75, 61), (33, 130), (64, 64)] {
        let images = Tensor::zeros([1, 3, h, w], (Kind::Float, Device::Cpu));
        let out = tch::no_grad(|| model.forward(&images));
        assert_eq!(out.levels, model.level_shapes(h, w), "{h}x{w}");
    }
}
