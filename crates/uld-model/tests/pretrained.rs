//! ImageNet-style weights with torchvision ResNet key names, written by the
//! project's torch (`python` on PATH, as scripts/torch-env.sh sets it), load
//! into the backbone exactly.

use std::path::{Path, PathBuf};
use std::process::Command;

use tch::{Device, Tensor, nn};
use uld_model::pretrained::load_torchvision_resnet;
use uld_model::{FcosDetector, ModelConfig, pretrained::read_state_dict};

/// Writes `<dir>/<stem>.pth` and `.safetensors` with the helper script.
fn make_state_dict(
    dir: &Path,
    stem: &str,
    block: &str,
    stem_width: i64,
    blocks: &str,
    widths: &str,
) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/make_resnet_state_dict.py");
    let python = std::env::var("ULD_PYTHON").unwrap_or_else(|_| "python".into());
    let out = dir.join(stem);
    let status = Command::new(&python)
        .arg(&script)
        .arg(&out)
        .args([block, &stem_width.to_string(), blocks, widths])
        .status()
        .unwrap_or_else(|e| panic!("running {python} (source scripts/torch-env.sh): {e}"));
    assert!(status.success(), "{script:?} failed");
    out
}

fn config(
    block: &str,
    stem: i64,
    blocks: &[i64],
    widths: &[i64],
    slices: i64,
    norm: &str,
) -> ModelConfig {
    let mut cfg = ModelConfig::tiny();
    cfg.set_all([
        format!("backbone.block=\"{block}\"").as_str(),
        &format!("backbone.stem_width={stem}"),
        &format!("backbone.stage_blocks={blocks:?}"),
        &format!("backbone.stage_widths={widths:?}"),
        &format!("backbone.norm={norm}"),
        &format!("input.slices={slices}"),
        "fpn.strides=[8,16,32]",
    ])
    .unwrap();
    cfg
}

fn assert_equal(a: &Tensor, b: &Tensor, what: &str) {
    assert_eq!(a.size(), b.size(), "{what}");
    let d = (a - b).abs().max().double_value(&[]);
    assert!(d < 1e-6, "{what} differs by {d}");
}

#[test]
fn resnet18_names_load_from_pth_and_safetensors_with_the_stem_adapted() {
    let dir = tempfile::tempdir().unwrap();
    let out = make_state_dict(dir.path(), "r18", "basic", 8, "2,2,2,2", "8,16,32,64");
    // 9 slices (G = 3), frozen BatchNorm: every tensor has a home.
    let cfg = config(
        "basic",
        8,
        &[2, 2, 2, 2],
        &[8, 16, 32, 64],
        9,
        "{kind=\"frozen_batch_norm\"}",
    );
    for ext in ["pth", "safetensors"] {
        let path = out.with_extension(ext);
        let file = read_state_dict(&path).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let _model = FcosDetector::new(&vs.root(), &cfg).unwrap();
        let report = load_torchvision_resnet(&vs, "backbone", &path).unwrap();
        let vars = vs.variables();
        assert_eq!(
            report.loaded.len(),
            vars.keys().filter(|k| k.starts_with("backbone.")).count()
        );
        for key in [
            "layer1.0.conv1.weight",
            "layer2.0.downsample.0.weight",
            "layer4.1.bn2.running_var",
            "bn1.bias",
        ] {
            assert_equal(&vars[&format!("backbone.{key}")], &file[key], key);
        }
        // stem: [8, 3, 7, 7] repeated over 3 groups and divided by 3
        let stem = &vars["backbone.conv1.weight"];
        assert_eq!(stem.size(), [8, 9, 7, 7]);
        for g in 0..3 {
            assert_equal(
                &(stem.narrow(1, 3 * g, 3) * 3.0),
                &file["conv1.weight"],
                "stem group",
            );
        }
        let mut unused = report.unused.clone();
        unused.retain(|k| !k.ends_with("num_batches_tracked"));
        assert_eq!(unused, ["fc.bias", "fc.weight"], "{ext}");
    }
}

#[test]
fn resnet50_names_load_into_a_bottleneck_backbone_with_group_norm() {
    let dir = tempfile::tempdir().unwrap();
    let out = make_state_dict(dir.path(), "r50", "bottleneck", 8, "1,1,1", "8,8,16");
    // 3 slices with fusion off: the stem takes the RGB kernel as it is.
    let cfg = config(
        "bottleneck",
        8,
        &[1, 1, 1],
        &[8, 8, 16],
        3,
        "{kind=\"group_norm\",groups=4}",
    );
    let path = out.with_extension("pth");
    let file = read_state_dict(&path).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let _model = FcosDetector::new(&vs.root(), &cfg).unwrap();
    let report = load_torchvision_resnet(&vs, "backbone", &path).unwrap();
    let vars = vs.variables();
    for key in [
        "conv1.weight",
        "layer1.0.conv3.weight",
        "layer3.0.bn3.weight",
        "layer1.0.downsample.1.bias",
    ] {
        assert_equal(&vars[&format!("backbone.{key}")], &file[key], key);
    }
    assert!(
        report
            .unused
            .contains(&"layer1.0.bn1.running_mean".to_string()),
        "GroupNorm has no statistics"
    );
}

#[test]
fn a_wrong_width_or_missing_key_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = make_state_dict(dir.path(), "r", "basic", 8, "1,1", "8,16");
    let path = out.with_extension("safetensors");
    let wide = config(
        "basic",
        8,
        &[1, 1],
        &[8, 32],
        3,
        "{kind=\"frozen_batch_norm\"}",
    );
    let vs = nn::VarStore::new(Device::Cpu);
    let _m = FcosDetector::new(&vs.root(), &wide).unwrap();
    let err = load_torchvision_resnet(&vs, "backbone", &path).unwrap_err();
    let loc = err.location().unwrap();
    assert_eq!(loc.field.as_deref(), Some("layer2.0.bn1.bias"), "{err}");
    assert!(
        err.to_string().contains("[16]") && err.to_string().contains("[32]"),
        "{err}"
    );
    let deep = config(
        "basic",
        8,
        &[1, 2],
        &[8, 16],
        3,
        "{kind=\"frozen_batch_norm\"}",
    );
    let vs = nn::VarStore::new(Device::Cpu);
    let _m = FcosDetector::new(&vs.root(), &deep).unwrap();
    let err = load_torchvision_resnet(&vs, "backbone", &path).unwrap_err();
    assert!(
        err.to_string().contains("layer2.1.bn1.bias") && err.to_string().contains("missing"),
        "{err}"
    );
    let err = load_torchvision_resnet(&vs, "backbone", &dir.path().join("none.pth")).unwrap_err();
    assert!(err.to_string().contains("none.pth"), "{err}");
}
