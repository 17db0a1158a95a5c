//! `uld eval`: score a detection file with a DeepLesion protocol and write
//! the report; `uld bench eval`: the protocols' speed.

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::{Args, ValueEnum};
use uld_data::deeplesion::Split;
use uld_eval::bench::time_protocols;
use uld_eval::report::{write_comparison, write_report};
use uld_eval::{
    BootstrapConfig, DetectionSet, EvalConfig, GroundTruth, GroundTruthOptions, KeySliceVariant,
    LensSplit, Protocol, compare, evaluate, read_ground_truth,
};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// Key-slice FROC of 3DCE/MULAN (ground truth: DL_info.csv).
    Keyslice,
    /// Lesion-Harvester per-volume FROC and AP (ground truth: Lesion-Harvester JSON or `uld synth` annotations).
    Harvester,
    /// LENS 3D IoBB FROC (ground truth: DeepLesion_manual_1K_test_release.json).
    Lens,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VariantArg {
    /// MULAN: clamps past the curve's end.
    Mulan,
    /// 3DCE: extrapolates past the curve's end.
    #[value(name = "3dce")]
    ThreeDce,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NoisyArg {
    Keep,
    Drop,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    Train,
    Val,
    Test,
    /// Every row of the file.
    All,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LensSplitArg {
    Val,
    Test,
    Both,
}

#[derive(Args)]
pub struct EvalArgs {
    /// Evaluation protocol.
    #[arg(long, value_enum)]
    protocol: ProtocolArg,
    /// Ground truth: DL_info.csv (keyslice), a Lesion-Harvester JSON
    /// (harvester; lens with 3D-Box.json), or the LENS JSON (lens).
    #[arg(long)]
    gt: PathBuf,
    /// Detection file (uld CSV, or JSON when it ends in .json).
    #[arg(long)]
    detections: PathBuf,
    /// A second detection file: compare it with the first (paired bootstrap).
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Folder for report.md, report.json, froc.csv and the plots.
    #[arg(long, default_value = "eval")]
    out: PathBuf,
    /// keyslice: which reference to follow.
    #[arg(long, value_enum, default_value = "mulan")]
    variant: VariantArg,
    /// keyslice: keep or drop possibly-noisy lesions (default: drop, as both
    /// references' test loaders do).
    #[arg(long, value_enum)]
    noisy: Option<NoisyArg>,
    /// keyslice: the DL_info split to evaluate.
    #[arg(long, value_enum, default_value = "test")]
    split: SplitArg,
    /// lens: which part of the LENS file to evaluate (a Lesion-Harvester
    /// file, e.g. 3D-Box.json, is read whole).
    #[arg(long, value_enum, default_value = "test")]
    lens_split: LensSplitArg,
    /// Also report sensitivity and false positives at this score threshold.
    #[arg(long)]
    threshold: Option<f32>,
    /// Bootstrap replicates for confidence intervals (0: none).
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Seed of the bootstrap draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Confidence level of the intervals.
    #[arg(long, default_value_t = 0.95)]
    level: f64,
    /// Skip the breakdowns by size, type and slice interval.
    #[arg(long)]
    no_breakdowns: bool,
    /// Skip the FROC and precision-recall plots.
    #[arg(long)]
    no_plots: bool,
}

fn protocol(p: ProtocolArg) -> Protocol {
    match p {
        ProtocolArg::Keyslice => Protocol::KeySlice,
        ProtocolArg::Harvester => Protocol::Harvester,
        ProtocolArg::Lens => Protocol::Lens,
    }
}

fn ground_truth(args: &EvalArgs, variant: KeySliceVariant) -> uld_core::Result<GroundTruth> {
    let mut options = GroundTruthOptions::new(variant);
    if let Some(noisy) = args.noisy {
        options.drop_noisy = noisy == NoisyArg::Drop;
    }
    options.split = match args.split {
        SplitArg::Train => Some(Split::Train),
        SplitArg::Val => Some(Split::Val),
        SplitArg::Test => Some(Split::Test),
        SplitArg::All => None,
    };
    options.lens_split = match args.lens_split {
        LensSplitArg::Val => LensSplit::Val,
        LensSplitArg::Test => LensSplit::Test,
        LensSplitArg::Both => LensSplit::Both,
    };
    read_ground_truth(protocol(args.protocol), &args.gt, &options)
}

fn stem(path: &Path) -> String {
    path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    )
}

pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let variant = match args.variant {
        VariantArg::Mulan => KeySliceVariant::Mulan,
        VariantArg::ThreeDce => KeySliceVariant::ThreeDce,
    };
    let gt = ground_truth(args, variant)?;
    let mut cfg = EvalConfig::new(protocol(args.protocol));
    cfg.variant = variant;
    cfg.score_threshold = args.threshold;
    cfg.breakdowns = !args.no_breakdowns;
    cfg.bootstrap = if args.bootstrap > 0 {
        Some(BootstrapConfig::checked(
            args.bootstrap,
            args.seed,
            args.level,
        )?)
    } else {
        None
    };
    let dets = DetectionSet::read(&args.detections)?;
    let plots = !args.no_plots;
    let written = if let Some(other) = &args.compare {
        let other_dets = DetectionSet::read(other)?;
        if cfg.bootstrap.is_none() {
            bail!("--compare needs bootstrap replicates (--bootstrap > 0)");
        }
        let (a, b, cmp) = compare(&gt, &dets, &other_dets, &cfg)?;
        let names = (stem(&args.detections), stem(other));
        for (name, e) in [(&names.0, &a), (&names.1, &b)] {
            println!("{name}: {}", e.headline());
        }
        let d = &cmp.summary;
        println!(
            "difference (B - A) of the mean sensitivity: {:+.4} [{:.4}, {:.4}], p = {:.4}",
            d.difference, d.interval.low, d.interval.high, d.p_value
        );
        write_comparison(&args.out, &a, &b, &cmp, (&names.0, &names.1), plots)?
    } else {
        let e = evaluate(&gt, &dets, &cfg)?;
        println!("{}", e.headline());
        for n in &e.notes {
            println!("note: {n}");
        }
        write_report(&args.out, &e, &stem(&args.detections), plots)?
    };
    if plots && !written.plot_text {
        println!(
            "note: no TrueType font found (set ULD_FONT or install DejaVu); the plots were drawn without text"
        );
    }
    for f in &written.files {
        println!("wrote {}", f.display());
    }
    Ok(())
}

#[derive(Args)]
pub struct EvalBenchArgs {
    /// Images (keyslice) or sub-volumes (harvester, lens).
    #[arg(long, default_value_t = 5000)]
    units: usize,
    /// Detection rows per unit (harvester/lens: tracklets of 5 rows).
    #[arg(long, default_value_t = 100)]
    per_unit: usize,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
}

/// `uld bench eval`: times each protocol on synthetic detections.
pub fn bench(args: &EvalBenchArgs) -> anyhow::Result<()> {
    for t in time_protocols(args.units, args.per_unit, args.repeats) {
        println!(
            "eval {:<9} {} units, {} rows ({} detections): {:.1} ms (median of {}), {:.1} ms per bootstrap replicate",
            t.protocol.name(),
            t.units,
            t.rows,
            t.detections,
            t.evaluate.as_secs_f64() * 1e3,
            args.repeats,
            t.per_replicate.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
