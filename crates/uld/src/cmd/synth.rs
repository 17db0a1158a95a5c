//! `uld synth`: writes a synthetic DeepLesion-format dataset with complete
//! annotations, or (`--fit-stats`) refits the statistics table it draws from.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use uld_data::deeplesion::{DatasetStats, LesionRecord, read_dl_info};
use uld_data::synth::synthetic_dataset_is_written;
use uld_data::synth::{
    DL_INFO_FILE, FittedStats, Plan, Preset, SynthConfig, WriteSummary, write_dataset,
};

#[derive(Args)]
pub struct SynthArgs {
    /// Output folder (created): Images_png/, DL_info.csv, lesion_harvester/, synth_manifest.json.
    #[arg(long, required_unless_present = "fit_stats")]
    out: Option<PathBuf>,
    /// Size preset: tiny (tests), small (the CPU demo), full (DeepLesion's proportions).
    #[arg(long, default_value = "small")]
    preset: String,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Patients (overrides the preset).
    #[arg(long)]
    patients: Option<usize>,
    /// Image width and height in pixels (overrides the preset).
    #[arg(long)]
    image_size: Option<usize>,
    /// Share of lesions left out of DL_info.csv.
    #[arg(long, default_value_t = 0.5)]
    missing_fraction: f64,
    /// Patients added to the val split after the preset's (whose training split stays as it is).
    #[arg(long, default_value_t = 0)]
    extra_val_patients: usize,
    /// Patients added to the test split the same way.
    #[arg(long, default_value_t = 0)]
    extra_test_patients: usize,
    /// Neighbouring slices shipped each side of a key slice, in mm (overrides the preset).
    #[arg(long)]
    context_mm: Option<f64>,
    /// Write the true lesion type on training rows (the real table has -1 there).
    #[arg(long)]
    train_lesion_types: bool,
    /// Refit the statistics table from these DL_info csv files instead of generating.
    #[arg(long, num_args = 1.., value_name = "CSV")]
    fit_stats: Option<Vec<PathBuf>>,
    /// Where --fit-stats writes the table (default: print it).
    #[arg(long, requires = "fit_stats")]
    stats_out: Option<PathBuf>,
}

pub fn run(args: &SynthArgs) -> anyhow::Result<()> {
    if let Some(tables) = &args.fit_stats {
        let stats = FittedStats::fit_files(tables)?;
        let csv = stats.to_csv();
        match &args.stats_out {
            Some(path) => {
                uld_core::write_atomically(path, |w| std::io::Write::write_all(w, csv.as_bytes()))?;
                eprintln!("fitted {} rows -> {}", stats.rows, path.display());
            }
            None => print!("{csv}"),
        }
        return Ok(());
    }
    let mut config = preset_config(
        &args.preset,
        args.seed,
        args.missing_fraction,
        args.patients,
    )?;
    config.train_lesion_types = args.train_lesion_types;
    config.extra_val_patients = args.extra_val_patients;
    config.extra_test_patients = args.extra_test_patients;
    if let Some(s) = args.image_size {
        config.image_size = s;
    }
    if let Some(c) = args.context_mm {
        config.context_mm = c;
    }
    config.validate()?;
    let out = args.out.as_ref().context("--out is required")?;
    write_synthetic(&config, out, true)?;
    let records = read_dl_info(out.join(DL_INFO_FILE))?;
    if let Some(stats) = DatasetStats::of(&records) {
        println!("{stats}");
    }
    Ok(())
}

/// The settings of preset `name` (tiny, small, full) with this seed, share
/// of unlabelled lesions and, if given, patient count.
pub fn preset_config(
    name: &str,
    seed: u64,
    missing_fraction: f64,
    patients: Option<usize>,
) -> anyhow::Result<SynthConfig> {
    let Some(preset) = Preset::from_name(name) else {
        bail!("unknown synthetic data preset `{name}` (tiny, small or full)");
    };
    let mut config = preset.config();
    config.seed = seed;
    config.missing_fraction = missing_fraction;
    if let Some(p) = patients {
        config.patients = p;
    }
    Ok(config)
}

/// Writes the synthetic dataset of `config` to `out` with a progress bar
/// (hidden unless `progress`) and prints what it wrote.
pub fn write_synthetic(
    config: &SynthConfig,
    out: &Path,
    progress: bool,
) -> anyhow::Result<WriteSummary> {
    let start = Instant::now();
    let plan = Plan::new(config, &FittedStats::builtin());
    let bar = if progress {
        ProgressBar::new(plan.slice_count() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} slices ({per_sec}, eta {eta})")
            .context("progress bar template")?
            .progress_chars("=> "),
    );
    bar.set_message("rendering");
    let summary = write_dataset(&plan, out, &|| bar.inc(1))?;
    bar.finish_and_clear();
    println!(
        "wrote {} in {:.1} s: {} series, {} slices, {} lesions ({} labelled on {} key images)",
        out.display(),
        start.elapsed().as_secs_f64(),
        summary.series,
        summary.slices,
        summary.lesions,
        summary.labelled,
        summary.key_images
    );
    Ok(summary)
}

/// The synthetic dataset of `config` at `root`, written unless a finished
/// one with the same settings is there.
pub fn synthetic_dataset(
    root: &Path,
    config: &SynthConfig,
    progress: bool,
) -> anyhow::Result<Vec<LesionRecord>> {
    if synthetic_dataset_is_written(root, config)? {
        println!("reusing the synthetic dataset in {}", root.display());
    } else {
        write_synthetic(config, root, progress)?;
    }
    Ok(read_dl_info(root.join(DL_INFO_FILE))?)
}
