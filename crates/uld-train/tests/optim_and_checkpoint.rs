//! The optimisers follow libtorch's own update rules, and checkpoints
//! restore a run exactly.

use tch::nn::{self, Module, OptimizerConfig as _, VarStore};
use tch::{Device, Kind, Tensor};
use uld_train::checkpoint::checkpoint_steps;
use uld_train::{Optimizer, OptimizerConfig, latest_step, load_latest, save_checkpoint};

/// Tests seed libtorch's global generator, so they must not interleave when
/// the harness runs them on several threads.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn model(seed: i64) -> (VarStore, nn::Sequential) {
    tch::manual_seed(seed);
    let vs = VarStore::new(Device::Cpu);
    let net = nn::seq()
        .add(nn::linear(vs.root() / "a", 6, 8, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(vs.root() / "b", 8, 2, Default::default()));
    (vs, net)
}

fn batch(step: i64) -> (Tensor, Tensor) {
    tch::manual_seed(1000 + step);
    (
        Tensor::randn([16, 6], (Kind::Float, Device::Cpu)),
        Tensor::randn([16, 2], (Kind::Float, Device::Cpu)),
    )
}

fn loss(net: &nn::Sequential, step: i64) -> Tensor {
    let (x, y) = batch(step);
    (net.forward(&x) - y).square().mean(Kind::Float)
}

fn max_difference(a: &VarStore, b: &VarStore) -> f64 {
    let bv = b.variables();
    a.variables()
        .iter()
        .map(|(name, t)| (t - &bv[name]).abs().max().double_value(&[]))
        .fold(0.0, f64::max)
}

fn run_ours(config: OptimizerConfig, steps: i64, lr: f64) -> VarStore {
    let (vs, net) = model(3);
    let mut opt = Optimizer::new(config, &vs);
    for step in 0..steps {
        opt.zero_grad();
        loss(&net, step).backward();
        opt.step(lr);
    }
    vs
}

#[test]
fn sgd_with_momentum_matches_libtorch() {
    let _serial = serial();
    let ours = run_ours(
        OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 1e-3,
        },
        5,
        0.05,
    );
    let (vs, net) = model(3);
    let mut theirs = nn::Sgd {
        momentum: 0.9,
        dampening: 0.0,
        wd: 1e-3,
        nesterov: false,
    }
    .build(&vs, 0.05)
    .unwrap();
    for step in 0..5 {
        theirs.backward_step(&loss(&net, step));
    }
    let diff = max_difference(&ours, &vs);
    assert!(diff < 1e-6, "max parameter difference {diff}");
    assert!(
        max_difference(&ours, &model(3).0) > 1e-3,
        "the parameters moved"
    );
}

#[test]
fn adamw_matches_libtorch() {
    let _serial = serial();
    let config = OptimizerConfig::AdamW {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.05,
    };
    let ours = run_ours(config, 5, 0.01);
    let (vs, net) = model(3);
    let mut theirs = nn::AdamW {
        beta1: 0.9,
        beta2: 0.999,
        wd: 0.05,
        eps: 1e-8,
        amsgrad: false,
    }
    .build(&vs, 0.01)
    .unwrap();
    for step in 0..5 {
        theirs.backward_step(&loss(&net, step));
    }
    let diff = max_difference(&ours, &vs);
    assert!(diff < 1e-6, "max parameter difference {diff}");
}

#[test]
fn clipping_bounds_the_gradient_norm() {
    let _serial = serial();
    let (vs, net) = model(3);
    let mut opt = Optimizer::new(
        OptimizerConfig::Sgd {
            momentum: 0.0,
            weight_decay: 0.0,
        },
        &vs,
    );
    (loss(&net, 0) * 1000.0).backward();
    let before = opt.clip_grad_norm(1.0);
    assert!(before > 1.0);
    let after = opt.clip_grad_norm(f64::INFINITY);
    assert!((after - 1.0).abs() < 1e-4, "norm after clipping {after}");
}

#[test]
fn resuming_from_a_checkpoint_continues_the_same_run() {
    let _serial = serial();
    let config = OptimizerConfig::AdamW {
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-8,
        weight_decay: 0.01,
    };
    let uninterrupted = run_ours(config.clone(), 6, 0.01);

    let dir = tempfile::tempdir().unwrap();
    {
        let (vs, net) = model(3);
        let mut opt = Optimizer::new(config.clone(), &vs);
        for step in 0..3 {
            opt.zero_grad();
            loss(&net, step).backward();
            opt.step(0.01);
        }
        save_checkpoint(
            dir.path(),
            3,
            3,
            &vs,
            None,
            &opt,
            &serde_json::json!({"epoch": 0}),
        )
        .unwrap();
    }
    assert_eq!(latest_step(dir.path()).unwrap(), Some(3));
    // a different initialisation, overwritten by the checkpoint
    let (mut vs, net) = model(99);
    let mut opt = Optimizer::new(config, &vs);
    let restored = load_latest::<serde_json::Value>(dir.path(), &mut vs, None, Some(&mut opt))
        .unwrap()
        .unwrap();
    assert_eq!(restored.step, 3);
    assert_eq!(restored.meta["epoch"], 0);
    assert_eq!(opt.steps(), 3);
    for step in 3..6 {
        opt.zero_grad();
        loss(&net, step).backward();
        opt.step(0.01);
    }
    assert_eq!(
        max_difference(&uninterrupted, &vs),
        0.0,
        "bit-identical after resume"
    );
}

#[test]
fn a_corrupt_checkpoint_is_an_error_naming_the_file() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (vs, _) = model(3);
    let opt = Optimizer::new(
        OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
        },
        &vs,
    );
    let path = save_checkpoint(dir.path(), 3, 7, &vs, None, &opt, &()).unwrap();
    std::fs::write(&path, b"garbage").unwrap();
    let (mut vs, _) = model(3);
    let err = load_latest::<()>(dir.path(), &mut vs, None, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ckpt-00000007.safetensors"), "{err}");
}

#[test]
fn a_run_keeps_only_its_newest_checkpoints() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (vs, net) = model(3);
    let mut opt = Optimizer::new(
        OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
        },
        &vs,
    );
    for step in 1..=5u64 {
        opt.zero_grad();
        loss(&net, step as i64).backward();
        opt.step(0.01);
        save_checkpoint(dir.path(), 2, step, &vs, None, &opt, &step).unwrap();
    }
    assert_eq!(checkpoint_steps(dir.path()).unwrap(), vec![4, 5]);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ckpt-00000004.json",
            "ckpt-00000004.safetensors",
            "ckpt-00000005.json",
            "ckpt-00000005.safetensors",
            "latest.json"
        ],
        "no older checkpoint and no temporary file is left"
    );
    let (mut restored, _) = model(99);
    let back = load_latest::<u64>(dir.path(), &mut restored, None, None)
        .unwrap()
        .unwrap();
    assert_eq!((back.step, back.meta), (5, 5));
    assert_eq!(max_difference(&vs, &restored), 0.0);
}

#[test]
fn a_restarted_run_keeps_its_own_checkpoints_whatever_an_earlier_run_left() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (vs, _) = model(3);
    let opt = Optimizer::new(
        OptimizerConfig::Sgd {
            momentum: 0.0,
            weight_decay: 0.0,
        },
        &vs,
    );
    for step in [10, 20, 30] {
        save_checkpoint(dir.path(), 3, step, &vs, None, &opt, &step).unwrap();
    }
    // a write of step 25 interrupted before its rename, and the index
    // removed to start over
    std::fs::write(
        dir.path().join(".ckpt-00000025.safetensors.tmp999"),
        b"half",
    )
    .unwrap();
    std::fs::remove_file(dir.path().join("latest.json")).unwrap();
    for step in [5u64, 27] {
        save_checkpoint(dir.path(), 1, step, &vs, None, &opt, &step).unwrap();
        let (mut back, _) = model(99);
        let restored = load_latest::<u64>(dir.path(), &mut back, None, None)
            .unwrap()
            .unwrap();
        assert_eq!((restored.step, restored.meta), (step, step));
    }
    assert_eq!(
        checkpoint_steps(dir.path()).unwrap(),
        vec![27, 30],
        "the newest of this run stays; the earlier run's later step is left alone"
    );
    assert!(
        !dir.path()
            .join(".ckpt-00000025.safetensors.tmp999")
            .exists(),
        "the interrupted write before this step is cleaned up"
    );
}
