//! Timing of the model step (forward, loss, backward, SGD step) and of
//! inference, for `uld bench model`. The PyTorch reference
//! `bench/reference_model.py` builds the same network from the same config
//! and trains it on the same dense targets, which [`write_bench_targets`]
//! exports, so the two times compare like for like.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tch::{Device, Kind, Tensor, nn, nn::OptimizerConfig};
use uld_core::{Box2, Error, Result};

use crate::ModelConfig;
use crate::detector::{Detector, FcosDetector, batch_targets, build_detector};
use crate::macs::count_macs;
use crate::targets::ImageTargets;

/// What to time.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub batch: i64,
    /// Input side in pixels (the config's `input.size` if `None`).
    pub size: Option<i64>,
    /// Intra-op CPU threads (`torch.set_num_threads`).
    pub threads: i32,
    pub warmup: usize,
    pub steps: usize,
    pub device: Device,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            batch: 2,
            size: None,
            threads: 2,
            warmup: 2,
            steps: 5,
            device: Device::Cpu,
        }
    }
}

/// Seconds of each timed repetition.
#[derive(Debug, Clone, PartialEq)]
pub struct Timings {
    pub seconds: Vec<f64>,
}

impl Timings {
    pub fn median(&self) -> f64 {
        let mut s = self.seconds.clone();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        if n == 0 {
            return f64::NAN;
        }
        if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        }
    }
}

/// Optimiser settings both sides use: SGD, momentum 0.9, weight decay 1e-4.
pub const BENCH_LR: f64 = 0.01;
pub const BENCH_MOMENTUM: f64 = 0.9;
pub const BENCH_WEIGHT_DECAY: f64 = 1e-4;

/// Fixed lesion-like boxes for image `i` of a `size` px input: three boxes
/// of 4, 12 and 30 % of the side, placed differently per image.
pub fn bench_targets(batch: i64, size: i64) -> Vec<ImageTargets> {
    let s = size as f32;
    (0..batch)
        .map(|i| {
            let shift = 0.1 * (i % 4) as f32 * s;
            let boxes = [(0.25, 0.3, 0.04), (0.6, 0.4, 0.12), (0.4, 0.65, 0.3)]
                .iter()
                .map(|&(cx, cy, side)| {
                    Box2::from_center((cx * s + shift).min(0.8 * s), cy * s, side * s, side * s)
                })
                .collect();
            ImageTargets::from_boxes(boxes)
        })
        .collect()
}

fn setup(
    cfg: &ModelConfig,
    opts: &BenchOptions,
) -> Result<(nn::VarStore, FcosDetector, Tensor, Vec<ImageTargets>)> {
    if opts.batch < 1 || opts.steps < 1 || opts.threads < 1 {
        return Err(Error::invalid(
            "bench options",
            "batch, steps and threads must be >= 1",
        ));
    }
    tch::set_num_threads(opts.threads);
    let size = opts.size.unwrap_or(cfg.input.size);
    let vs = nn::VarStore::new(opts.device);
    let model: FcosDetector = build_detector(&vs, cfg, Some(0))?;
    let images = Tensor::randn(
        [opts.batch, cfg.input.slices, size, size],
        (Kind::Float, opts.device),
    );
    Ok((vs, model, images, bench_targets(opts.batch, size)))
}

/// Multiply-adds of one image's forward pass through the network at `size`
/// pixels (its convolutions, [`crate::macs`]); a training step costs about
/// three forward passes (the backward pass twice one), two FLOPs a MAC.
pub fn forward_macs(cfg: &ModelConfig, size: i64) -> Result<u64> {
    let vs = nn::VarStore::new(Device::Cpu);
    let model: FcosDetector = build_detector(&vs, cfg, Some(0))?;
    let image = Tensor::zeros(
        [1, cfg.input.slices, size, size],
        (Kind::Float, Device::Cpu),
    );
    Ok(count_macs(|| {
        let _ = tch::no_grad(|| model.forward(&image));
    }))
}

/// FLOPs of a training step of `batch` images from the forward MACs of one.
pub fn train_step_flops(forward_macs: u64, batch: i64) -> f64 {
    3.0 * 2.0 * forward_macs as f64 * batch as f64
}

/// Waits for `device`'s queued work (CUDA runs asynchronously), so a time
/// taken next is the work's own.
pub fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Seconds per training step: forward, target assignment, loss, backward
/// and an SGD step, on random images of the options' shape.
pub fn bench_step(cfg: &ModelConfig, opts: &BenchOptions) -> Result<Timings> {
    let (vs, model, images, targets) = setup(cfg, opts)?;
    let sgd = nn::Sgd {
        momentum: BENCH_MOMENTUM,
        wd: BENCH_WEIGHT_DECAY,
        ..Default::default()
    };
    let mut opt = sgd
        .build(&vs, BENCH_LR)
        .map_err(|e| Error::invalid("bench optimiser", e.to_string()))?;
    let mut seconds = Vec::new();
    for i in 0..opts.warmup + opts.steps {
        sync(opts.device);
        let t0 = Instant::now();
        let loss = model.loss(&images, &targets, true);
        opt.backward_step(&loss.total);
        sync(opts.device);
        if i >= opts.warmup {
            seconds.push(t0.elapsed().as_secs_f64());
        }
    }
    Ok(Timings { seconds })
}

/// Median seconds of target assignment for `targets` on a batch of
/// `height` x `width` images: [`batch_targets`], the dense targets the loss
/// takes, on `device`, over `repeats` runs.
pub fn time_target_assignment(
    cfg: &ModelConfig,
    targets: &[ImageTargets],
    height: i64,
    width: i64,
    device: Device,
    repeats: usize,
) -> f64 {
    let seconds = (0..repeats.max(1))
        .map(|_| {
            sync(device);
            let t0 = Instant::now();
            let dense = batch_targets(cfg, targets, height, width, device);
            sync(device);
            drop(dense);
            t0.elapsed().as_secs_f64()
        })
        .collect();
    Timings { seconds }.median()
}

/// Seconds per `predict` call (forward without gradients and decoding).
pub fn bench_predict(cfg: &ModelConfig, opts: &BenchOptions) -> Result<Timings> {
    let (_vs, model, images, _) = setup(cfg, opts)?;
    let mut seconds = Vec::new();
    for i in 0..opts.warmup + opts.steps {
        sync(opts.device);
        let t0 = Instant::now();
        let dets = model.predict(&images);
        sync(opts.device);
        assert_eq!(dets.len() as i64, opts.batch);
        if i >= opts.warmup {
            seconds.push(t0.elapsed().as_secs_f64());
        }
    }
    Ok(Timings { seconds })
}

/// Writes the dense targets of [`bench_targets`] for the options' input
/// shape as safetensors (`labels`, `cls_weight` `[N, L]`; `positive` `[P]`
/// flat indices; `ltrb` `[P, 4]`; `centerness`, `weight` `[P]`), for the
/// PyTorch reference to train on.
pub fn write_bench_targets(cfg: &ModelConfig, opts: &BenchOptions, path: &Path) -> Result<()> {
    let (_vs, model, images, targets) = setup(
        cfg,
        &BenchOptions {
            device: Device::Cpu,
            ..opts.clone()
        },
    )?;
    let (_, _, h, w) = images.size4().expect("4D images");
    let t = model.batch_targets(&targets, h, w, Device::Cpu);
    let named = [
        ("labels", &t.labels),
        ("cls_weight", &t.cls_weight),
        ("positive", &t.positive),
        ("ltrb", &t.ltrb),
        ("centerness", &t.centerness),
        ("weight", &t.weight),
    ];
    Tensor::write_safetensors(&named, path)
        .map_err(|e| Error::invalid("bench targets", format!("{}: {e}", path.display())))
}

/// The PyTorch reference script in the source tree this crate was built from.
pub const REFERENCE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/reference_model.py");

/// How to run the PyTorch reference.
#[derive(Debug, Clone)]
pub struct Reference {
    /// A Python with torch (the project's environment).
    pub python: PathBuf,
    pub script: PathBuf,
    /// More arguments for the script (e.g. `--sgd for-loop`).
    pub extra_args: Vec<String>,
}

impl Default for Reference {
    fn default() -> Self {
        Self {
            python: "python".into(),
            script: REFERENCE_SCRIPT.into(),
            extra_args: Vec::new(),
        }
    }
}

fn device_name(d: Device) -> String {
    match d {
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Mps => "mps".into(),
        Device::Vulkan => "vulkan".into(),
        Device::Cpu => "cpu".into(),
    }
}

/// Times the PyTorch reference's step on the same config, input shape,
/// threads, device and dense targets as [`bench_step`].
pub fn reference_step(
    reference: &Reference,
    cfg: &ModelConfig,
    opts: &BenchOptions,
) -> Result<Timings> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("uld-bench-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let result = (|| {
        let config = dir.join("model.toml");
        std::fs::write(&config, cfg.to_toml_string()).map_err(|e| Error::io(&config, e))?;
        let targets = dir.join("targets.safetensors");
        write_bench_targets(cfg, opts, &targets)?;
        let size = opts.size.unwrap_or(cfg.input.size);
        let out = Command::new(&reference.python)
            .arg(&reference.script)
            .arg("--config")
            .arg(&config)
            .arg("--targets")
            .arg(&targets)
            .args(["--batch", &opts.batch.to_string()])
            .args(["--size", &size.to_string()])
            .args(["--threads", &opts.threads.to_string()])
            .args(["--warmup", &opts.warmup.to_string()])
            .args(["--steps", &opts.steps.to_string()])
            .args(["--device", &device_name(opts.device)])
            .args(&reference.extra_args)
            .output()
            .map_err(|e| Error::io(&reference.python, e))?;
        let what = || {
            format!(
                "{} {}",
                reference.python.display(),
                reference.script.display()
            )
        };
        if !out.status.success() {
            return Err(Error::invalid(
                "PyTorch reference run",
                format!(
                    "{} failed: {}",
                    what(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        parse_step_seconds(&text).ok_or_else(|| {
            Error::invalid(
                "PyTorch reference output",
                format!("{}: no step_s list in {text:?}", what()),
            )
        })
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|seconds| Timings { seconds })
}

/// The `"step_s": [..]` list of the reference's JSON line.
fn parse_step_seconds(text: &str) -> Option<Vec<f64>> {
    let start = text.find("\"step_s\"")?;
    let rest = &text[start..];
    let open = rest.find('[')?;
    let close = rest.find(']')?;
    rest[open + 1..close]
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forward_pass_counts_the_stem_and_grows_with_the_image() {
        let cfg = ModelConfig::preset("tiny").unwrap();
        let small = forward_macs(&cfg, 64).unwrap();
        let large = forward_macs(&cfg, 128).unwrap();
        // Twice the side: 4x the output positions (the coarsest levels,
        // rounded up, a little less).
        let ratio = large as f64 / small as f64;
        assert!((3.9..=4.0).contains(&ratio), "{ratio}");
        // At least the stem: a 7x7 stride-2 convolution from the slices.
        let stem = 32 * 32 * cfg.input.slices as u64 * 49 * cfg.backbone.stem_width as u64;
        assert!(small > stem, "{small} MACs, stem alone {stem}");
        assert_eq!(train_step_flops(small, 2), 12.0 * small as f64);
    }

    #[test]
    fn reference_output_parses() {
        let line = "{\"step_s\": [0.5, 0.25], \"median_s\": 0.375, \"loss\": 1.0}\n";
        assert_eq!(parse_step_seconds(line), Some(vec![0.5, 0.25]));
        assert_eq!(parse_step_seconds("{}"), None);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(
            Timings {
                seconds: vec![3.0, 1.0, 2.0]
            }
            .median(),
            2.0
        );
        assert_eq!(
            Timings {
                seconds: vec![4.0, 1.0, 2.0, 3.0]
            }
            .median(),
            2.5
        );
    }

    #[test]
    fn bench_targets_are_valid_boxes_inside_the_image() {
        for t in bench_targets(5, 64) {
            assert_eq!(t.boxes.len(), 3);
            for b in &t.boxes {
                assert!(b.is_valid() && b.x1 >= 0.0 && b.x2 <= 64.0, "{b:?}");
            }
        }
    }

    #[test]
    fn a_tiny_step_runs_and_targets_export() {
        let cfg = ModelConfig::tiny();
        let opts = BenchOptions {
            batch: 2,
            warmup: 1,
            steps: 2,
            threads: 1,
            ..Default::default()
        };
        let t = bench_step(&cfg, &opts).unwrap();
        assert_eq!(t.seconds.len(), 2);
        assert_eq!(bench_predict(&cfg, &opts).unwrap().seconds.len(), 2);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        write_bench_targets(&cfg, &opts, &path).unwrap();
        let read: std::collections::HashMap<_, _> = Tensor::read_safetensors(&path)
            .unwrap()
            .into_iter()
            .collect();
        // 64 px at strides 4, 8, 16: 256 + 64 + 16 locations
        assert_eq!(read["labels"].size(), [2, 336]);
        let p = read["positive"].size()[0];
        assert!(p >= 6, "every box has a positive: {p}");
        assert_eq!(read["ltrb"].size(), [p, 4]);
        let err = bench_step(&cfg, &BenchOptions { steps: 0, ..opts }).unwrap_err();
        assert!(err.to_string().contains("steps"), "{err}");
    }
}
