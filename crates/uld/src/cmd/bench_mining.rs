//! `uld bench mining`: the missing-annotation benchmark
//! (`uld_train::experiment::mining_bench`), with progress bars.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, ensure};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};
use uld_eval::BootstrapConfig;
use uld_model::FcosDetector;
use uld_train::experiment::mining_bench::{
    BenchSetup, Report, SMALL_STEPS, plot_all, score_arms, train_arms,
};
use uld_train::{Observer, TrainConfig};

use super::synth::{preset_config, synthetic_dataset};
use super::train::{ConfigArgs, ProgressObserver};

#[derive(Args)]
pub struct MiningBenchArgs {
    /// Folder for the dataset (`data/`), the three runs and `report.md`; an
    /// interrupted benchmark resumes from what it finds there.
    #[arg(long, default_value = "uld-bench-mining")]
    pub out: PathBuf,
    /// Synthetic dataset size: tiny, small (CPU) or full (GPU).
    #[arg(long, default_value = "small")]
    pub data_preset: String,
    /// Patients of the synthetic dataset (overrides its preset).
    #[arg(long)]
    pub patients: Option<usize>,
    /// Share of lesions left out of DL_info.csv.
    #[arg(long, default_value_t = 0.5)]
    pub missing_fraction: f64,
    /// Seed of the synthetic dataset (the runs' seed is the config's `seed`).
    #[arg(long, default_value_t = 0)]
    pub data_seed: u64,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Training steps of each run, the learning-rate decay stretched to
    /// match. Default: 3000 with the `small` preset (twice `uld demo`'s
    /// schedule: mining needs a teacher that has learned the lesions
    /// first), else the configuration's own steps.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Runs trained at once. Above 1, each trains on one CPU thread, which
    /// on CPU makes a run bit-reproducible: the same command gives the
    /// same table. 1 trains them one after another with the
    /// configuration's threads.
    #[arg(long, default_value_t = 3)]
    pub jobs: usize,
    /// Bootstrap replicates of the confidence intervals.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: &MiningBenchArgs) -> anyhow::Result<()> {
    if args.config.mode.is_some() {
        bail!("uld bench mining trains every mode itself; leave out --mode");
    }
    ensure!(args.bootstrap > 0, "--bootstrap must be at least 1");
    ensure!(args.jobs > 0, "--jobs must be at least 1");
    let start = Instant::now();
    let synth = preset_config(
        &args.data_preset,
        args.data_seed,
        args.missing_fraction,
        args.patients,
    )?;
    synth.validate()?;
    let setup = BenchSetup {
        out: args.out.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        data_preset: args.data_preset.clone(),
        patients: synth.patients,
        data_seed: args.data_seed,
        missing_fraction: args.missing_fraction,
        preset: args.config.preset.clone(),
        config: run_config(args)?,
        jobs: args.jobs,
        bootstrap: BootstrapConfig {
            replicates: args.bootstrap,
            ..BootstrapConfig::default()
        },
    };
    let device = uld_train::device::open_device(&setup.config.device)?;
    let records = synthetic_dataset(&setup.data(), &synth, !args.quiet)?;
    let bars = MultiProgress::new();
    if args.quiet {
        bars.set_draw_target(ProgressDrawTarget::hidden());
    }
    let seconds = train_arms::<FcosDetector>(&setup, &records, &|arm| {
        println!("{}", arm.header(&setup.run_dir(arm)));
        let bar = bars.add(ProgressBar::new(0));
        bar.set_prefix(arm.tag());
        Box::new(ProgressObserver::new(bar)) as Box<dyn Observer + Send>
    })?;
    if setup.config.threads > 0 {
        tch::set_num_threads(setup.config.threads);
    }
    let results = score_arms::<FcosDetector>(&setup, &records, seconds, device)?;
    let report = Report {
        setup: &setup,
        results: &results,
        total_seconds: start.elapsed().as_secs_f64(),
    };
    let text = report.markdown();
    print!("{}", report.table());
    let path = args.out.join("report.md");
    uld_core::write_atomically(&path, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    plot_all(&args.out, &results.rows)?;
    println!("report: {}", path.display());
    Ok(())
}

/// The configuration of every run: the arguments' one, over `--steps`
/// steps or [`SMALL_STEPS`] for the `small` preset.
fn run_config(args: &MiningBenchArgs) -> anyhow::Result<TrainConfig> {
    let config = args.config.resolve()?;
    let steps_set = args
        .config
        .overrides
        .iter()
        .any(|o| o.split('=').next().map(str::trim) == Some("steps"));
    let small = args.config.config.is_none() && args.config.preset == "small";
    let steps = args
        .steps
        .or_else(|| (small && !steps_set).then_some(SMALL_STEPS));
    let config = match steps {
        Some(steps) => config.with_steps(steps),
        None => config,
    };
    config.validate()?;
    Ok(config)
}
