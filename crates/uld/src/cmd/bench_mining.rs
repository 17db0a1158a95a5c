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
    BenchSetup, SMALL_STEPS, Summary, plot_all, score_runs, train_runs,
};
use uld_train::{Observer, TrainConfig};

use super::synth::{preset_config, synthetic_dataset};
use super::train::{ConfigArgs, ProgressObserver};

#[derive(Args)]
pub struct MiningBenchArgs {
    /// Folder for the dataset (`data/`), the runs (`seed_K/<arm>/`),
    /// `report.md` and `report.json`; an interrupted benchmark resumes from
    /// what it finds there.
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
    /// Seed of the synthetic dataset (the runs' seeds are the config's
    /// `seed` and `loader.seed` plus 0, 1, ...).
    #[arg(long, default_value_t = 0)]
    pub data_seed: u64,
    /// Patients added to the val split after the preset's patients, whose
    /// training split stays as it is. Default: 18 with the `small` data
    /// preset (twice its val split), else 0.
    #[arg(long)]
    pub extra_val_patients: Option<usize>,
    /// Patients added to the test split the same way. Default: 54 with the
    /// `small` data preset (four times its test split), else 0.
    #[arg(long)]
    pub extra_test_patients: Option<usize>,
    /// Training seeds of every arm; each comparison is made per seed and
    /// then averaged.
    #[arg(long, default_value_t = 3)]
    pub seeds: usize,
    /// Leave out arm (d), multi-stage mining.
    #[arg(long)]
    pub no_multistage: bool,
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

/// Extra val and test patients of the `small` data preset.
const SMALL_EXTRA_VAL: usize = 18;
const SMALL_EXTRA_TEST: usize = 54;

pub fn run(args: &MiningBenchArgs) -> anyhow::Result<()> {
    if args.config.mode.is_some() {
        bail!("uld bench mining trains every mode itself; leave out --mode");
    }
    ensure!(args.bootstrap > 0, "--bootstrap must be at least 1");
    ensure!(args.jobs > 0, "--jobs must be at least 1");
    ensure!(args.seeds > 0, "--seeds must be at least 1");
    let start = Instant::now();
    let mut synth = preset_config(
        &args.data_preset,
        args.data_seed,
        args.missing_fraction,
        args.patients,
    )?;
    let small = args.data_preset == "small";
    synth.extra_val_patients =
        args.extra_val_patients
            .unwrap_or(if small { SMALL_EXTRA_VAL } else { 0 });
    synth.extra_test_patients =
        args.extra_test_patients
            .unwrap_or(if small { SMALL_EXTRA_TEST } else { 0 });
    synth.validate()?;
    let setup = BenchSetup {
        out: args.out.clone(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        data_preset: args.data_preset.clone(),
        patients: synth.patients + synth.extra_val_patients + synth.extra_test_patients,
        data_seed: args.data_seed,
        missing_fraction: args.missing_fraction,
        preset: args.config.preset.clone(),
        config: run_config(args)?,
        seeds: args.seeds,
        multistage: !args.no_multistage,
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
    let trained = train_runs::<FcosDetector>(&setup, &records, device, &|run| {
        println!(
            "== {} ({}), seed {} in {}",
            run.arm().arm.title,
            run.arm().arm.name,
            run.seed,
            setup.run_dir(run).display()
        );
        let bar = bars.add(ProgressBar::new(0));
        bar.set_prefix(run.tag(setup.seeds));
        Box::new(ProgressObserver::new(bar)) as Box<dyn Observer + Send>
    })?;
    let results = score_runs::<FcosDetector>(&setup, &records, &trained, device)?;
    let summary = Summary::new(&setup, &results, start.elapsed().as_secs_f64());
    print!("{}", summary.table());
    summary.write(&args.out)?;
    plot_all(&args.out, &results)?;
    println!(
        "report: {} and report.json",
        args.out.join("report.md").display()
    );
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
