//! The PyTorch reference of the model-step benchmark builds the same
//! network: same trainable parameter count and same locations, for plain,
//! bottleneck/frozen-BatchNorm and 3DCE-fused configs.

use std::path::Path;
use std::process::Command;

use tch::{Device, nn};
use uld_model::bench::{BenchOptions, Reference, reference_step, write_bench_targets};
use uld_model::{FcosDetector, ModelConfig};

fn reference_describe(cfg: &ModelConfig, batch: i64) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("model.toml");
    let targets = dir.path().join("targets.safetensors");
    std::fs::write(&config, cfg.to_toml_string()).unwrap();
    let opts = BenchOptions {
        batch,
        threads: 1,
        ..Default::default()
    };
    write_bench_targets(cfg, &opts, &targets).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/reference_model.py");
    let python = std::env::var("ULD_PYTHON").unwrap_or_else(|_| "python".into());
    let out = Command::new(&python)
        .arg(&script)
        .arg("--config")
        .arg(&config)
        .arg("--targets")
        .arg(&targets)
        .args([
            "--batch",
            &batch.to_string(),
            "--threads",
            "1",
            "--describe",
        ])
        .output()
        .unwrap_or_else(|e| panic!("running {python} (source scripts/torch-env.sh): {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn check(cfg: &ModelConfig) {
    let vs = nn::VarStore::new(Device::Cpu);
    let _m = FcosDetector::new(&vs.root(), cfg).unwrap();
    let params: i64 = vs
        .trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum();
    let s = cfg.input.size;
    let locations: i64 = cfg
        .fpn
        .strides
        .iter()
        .map(|st| ((s + st - 1) / st).pow(2))
        .sum();
    let want = format!("{{\"params\": {params}, \"locations\": {locations}}}");
    assert_eq!(reference_describe(cfg, 2), want);
}

#[test]
fn reference_step_runs_and_reports_its_times() {
    let cfg = ModelConfig::tiny();
    let opts = BenchOptions {
        batch: 2,
        threads: 1,
        warmup: 1,
        steps: 2,
        ..Default::default()
    };
    let t = reference_step(&Reference::default(), &cfg, &opts).unwrap();
    assert_eq!(t.seconds.len(), 2);
    let broken = Reference {
        script: "/nonexistent/reference.py".into(),
        ..Reference::default()
    };
    let err = reference_step(&broken, &cfg, &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/reference.py"), "{err}");
}

#[test]
fn reference_matches_the_tiny_model() {
    check(&ModelConfig::tiny());
}

#[test]
fn reference_matches_bottleneck_frozen_bn_and_fusion_with_extra_levels() {
    let mut cfg = ModelConfig::tiny();
    cfg.set_all([
        "input.slices=9",
        "input.fuse_groups=true",
        "input.size=72",
        "backbone.block=\"bottleneck\"",
        "backbone.stage_blocks=[1,2]",
        "backbone.stage_widths=[8,16]",
        "backbone.norm={kind=\"frozen_batch_norm\"}",
        "head.quality=\"iou\"",
        "fpn.strides=[8,16,32]",
    ])
    .unwrap();
    check(&cfg);
}
