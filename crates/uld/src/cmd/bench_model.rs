//! `uld bench model`: the model step (forward, loss, backward, SGD step) of
//! uld against the same network in PyTorch, on the same input, threads and
//! device, and the inference time per sample.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use uld_model::ModelConfig;
use uld_model::bench::{
    BenchOptions, Reference, bench_predict, bench_step, forward_macs, reference_step,
    train_step_flops,
};

/// The PyTorch reference script (`crates/uld-model/bench/reference_model.py`),
/// built into the binary so that a binary carried to another machine (a GPU
/// host) runs it without the source tree it was built in.
pub const BUILT_IN_REFERENCE: &str = include_str!("../../../uld-model/bench/reference_model.py");

#[derive(Args)]
pub struct ModelBenchArgs {
    /// Model preset: tiny, small or deeplesion.
    #[arg(long, default_value = "small")]
    preset: String,
    /// A model config TOML (instead of the preset).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Config overrides KEY=VALUE (TOML values, e.g. fpn.channels=64).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Images per step.
    #[arg(long, default_value_t = 2)]
    batch: i64,
    /// Input side in pixels (default: the config's input.size).
    #[arg(long)]
    size: Option<i64>,
    /// CPU threads for both uld and PyTorch.
    #[arg(long, default_value_t = 2)]
    threads: i32,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed steps per round (the median is taken).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Rounds, uld and PyTorch alternating; the best round's median of each
    /// is reported, so a noisy neighbour on a shared machine hurts both alike.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Python with torch for the reference.
    #[arg(long, default_value = "python")]
    python: PathBuf,
    /// The PyTorch reference script (default: the copy of
    /// crates/uld-model/bench/reference_model.py built into this binary).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Skip the PyTorch reference (uld's times only).
    #[arg(long)]
    no_reference: bool,
    /// The reference's torch.optim.SGD implementation: default (PyTorch's
    /// choice: foreach on CUDA), foreach or for-loop (one parameter at a
    /// time, as libtorch's C++ SGD that uld uses).
    #[arg(long, default_value = "default")]
    reference_sgd: String,
    /// The device's peak in TFLOP/s, to print the step's share of it
    /// (default on CUDA: 495, the H100/H200 dense TF32 peak, as the step runs
    /// in fp32 with TF32; their dense bf16 peak is about 990).
    #[arg(long)]
    peak_tflops: Option<f64>,
}

pub fn run(args: &ModelBenchArgs) -> anyhow::Result<()> {
    let mut cfg = match &args.config {
        Some(path) => ModelConfig::load(path)?,
        None => ModelConfig::preset(&args.preset)?,
    };
    cfg.set_all(args.overrides.iter().map(String::as_str))?;
    let device = uld_train::device::open_device(&args.device)?;
    let opts = BenchOptions {
        batch: args.batch,
        size: args.size,
        threads: args.threads,
        warmup: args.warmup,
        steps: args.steps,
        device,
    };
    let size = args.size.unwrap_or(cfg.input.size);
    let name = args
        .config
        .as_ref()
        .map_or(args.preset.clone(), |p| p.display().to_string());
    println!(
        "model {name}: batch {} x {} slices x {size}x{size}, {} threads, {}, best of {} rounds of {} steps after {} warm-up",
        args.batch,
        cfg.input.slices,
        args.threads,
        args.device,
        args.rounds,
        args.steps,
        args.warmup
    );
    // Holds the built-in script's folder until the benchmark is done.
    let mut built_in = None;
    let reference = if args.no_reference {
        None
    } else {
        let script = match &args.reference {
            Some(path) => path.clone(),
            None => built_in.insert(write_built_in_reference()?).1.clone(),
        };
        Some(Reference {
            python: args.python.clone(),
            script,
            extra_args: vec!["--sgd".into(), args.reference_sgd.clone()],
        })
    };
    let (mut ours, mut theirs) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..args.rounds.max(1) {
        ours = ours.min(bench_step(&cfg, &opts)?.median());
        if let Some(reference) = &reference {
            let t = reference_step(reference, &cfg, &opts)
                .context("the PyTorch reference (source scripts/torch-env.sh, or pass --python)")?;
            theirs = theirs.min(t.median());
        }
    }
    println!("uld     train step {ours:.4} s");
    let macs = forward_macs(&cfg, size)?;
    let flops = train_step_flops(macs, args.batch);
    let achieved = flops / ours;
    println!(
        "network {:.2} GMAC per image forward (convolutions); train step about {:.1} GFLOP (3 forward passes, 2 FLOP per MAC): uld achieves {:.1} GFLOP/s",
        macs as f64 / 1e9,
        flops / 1e9,
        achieved / 1e9
    );
    let peak = args
        .peak_tflops
        .or(matches!(device, tch::Device::Cuda(_)).then_some(495.0));
    if let Some(peak) = peak {
        println!(
            "        {:.2}% of a {peak} TFLOP/s peak",
            100.0 * achieved / (peak * 1e12)
        );
    }
    if reference.is_some() {
        println!(
            "pytorch train step {theirs:.4} s (SGD {})",
            args.reference_sgd
        );
        println!("ratio uld / pytorch {:.3}", ours / theirs);
    }
    let predict = bench_predict(&cfg, &opts)?.median();
    println!(
        "uld     inference  {:.1} ms per sample ({:.4} s per batch of {})",
        1000.0 * predict / args.batch as f64,
        predict,
        args.batch
    );
    Ok(())
}

/// Writes [`BUILT_IN_REFERENCE`] into a fresh temporary folder: the folder
/// (removed when dropped) and the script's path in it.
fn write_built_in_reference() -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::Builder::new()
        .prefix("uld-bench-reference-")
        .tempdir()
        .context("cannot create a temporary folder for the PyTorch reference")?;
    let script = dir.path().join("reference_model.py");
    std::fs::write(&script, BUILT_IN_REFERENCE)
        .with_context(|| format!("cannot write {}", script.display()))?;
    Ok((dir, script))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_reference_is_written_for_the_bench_to_run() {
        let (dir, script) = write_built_in_reference().unwrap();
        assert!(script.starts_with(dir.path()));
        assert_eq!(
            std::fs::read_to_string(&script).unwrap(),
            BUILT_IN_REFERENCE
        );
        drop(dir);
        assert!(!script.exists(), "the folder goes with the benchmark");
    }
}
