//! `uld bench ...`: speed figures of uld's building blocks, printed.

use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use rand::{Rng, SeedableRng, rngs::StdRng};
use uld_core::{Box2, nms};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Greedy NMS on random lesion-sized boxes.
    Nms(NmsBenchArgs),
    /// uld's model step against the same network in PyTorch, and inference time.
    Model(super::bench_model::ModelBenchArgs),
    /// The evaluation protocols on synthetic detections.
    Eval(super::eval::EvalBenchArgs),
    /// A whole training step (loader, targets, model) against the bare model step.
    Train(super::bench_train::TrainBenchArgs),
    /// The missing-annotation benchmark: supervised vs mining vs complete labels.
    Mining(super::bench_mining::MiningBenchArgs),
}

pub fn run(command: &BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Nms(args) => bench_nms(args),
        BenchCommand::Model(args) => super::bench_model::run(args),
        BenchCommand::Train(args) => super::bench_train::run(args),
        BenchCommand::Eval(args) => super::eval::bench(args),
        BenchCommand::Mining(args) => super::bench_mining::run(args),
    }
}

#[derive(Args)]
pub struct NmsBenchArgs {
    /// Boxes per call.
    #[arg(long, default_value_t = 10_000)]
    boxes: usize,
    /// IoU threshold.
    #[arg(long, default_value_t = 0.5)]
    iou: f32,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 21)]
    repeats: usize,
}

/// Median wall time of `repeats` runs of `f` after one warm-up run.
pub fn median_time(repeats: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..repeats.max(1))
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn bench_nms(args: &NmsBenchArgs) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(7);
    // Detector-like output on a 512x512 image: boxes of 8-96 px, many of them
    // clustered around a few hundred lesion candidates.
    let centres: Vec<(f32, f32, f32)> = (0..300)
        .map(|_| {
            (
                rng.random_range(0.0..512.0),
                rng.random_range(0.0..512.0),
                rng.random_range(8.0..96.0),
            )
        })
        .collect();
    let boxes: Vec<Box2> = (0..args.boxes)
        .map(|_| {
            let (cx, cy, size) = centres[rng.random_range(0..centres.len())];
            let jitter = size * 0.3;
            Box2::from_center(
                cx + rng.random_range(-jitter..=jitter),
                cy + rng.random_range(-jitter..=jitter),
                size * rng.random_range(0.7..1.3),
                size * rng.random_range(0.7..1.3),
            )
        })
        .collect();
    let scores: Vec<f32> = (0..args.boxes).map(|_| rng.random()).collect();
    let uniform: Vec<Box2> = (0..args.boxes)
        .map(|_| {
            let size = rng.random_range(8.0..96.0);
            Box2::from_center(
                rng.random_range(0.0..512.0),
                rng.random_range(0.0..512.0),
                size,
                size,
            )
        })
        .collect();
    for (name, boxes) in [("clustered", &boxes), ("uniform", &uniform)] {
        let mut kept = 0;
        let t = median_time(args.repeats, || kept = nms(boxes, &scores, args.iou).len());
        println!(
            "nms {name:<9} {} boxes, IoU {}: {:.3} ms (median of {}), {kept} kept",
            args.boxes,
            args.iou,
            t.as_secs_f64() * 1e3,
            args.repeats
        );
    }
    Ok(())
}
