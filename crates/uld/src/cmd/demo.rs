//! `uld demo`: the whole system on built-in data
//! (`uld_train::experiment::demo`), with progress bars and a summary.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use uld_model::FcosDetector;
use uld_train::Mode;
use uld_train::experiment::demo::{DemoSetup, run_demo};

use super::synth::{preset_config, synthetic_dataset};
use super::train::{ConfigArgs, ProgressObserver, progress_bar};

#[derive(Args)]
pub struct DemoArgs {
    /// Folder for the dataset, the run and the report; an interrupted demo
    /// resumes from what it finds there.
    #[arg(long, default_value = "uld-demo")]
    pub out: PathBuf,
    /// Patients of the synthetic dataset (default: the `small` preset's).
    #[arg(long)]
    pub patients: Option<usize>,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let synth = preset_config("small", 0, 0.5, args.patients)?;
    synth.validate()?;
    let mut config = args.config.resolve()?;
    if args.config.mode.is_none() {
        config.mode = Mode::Mining;
    }
    let device = uld_train::device::open_device(&config.device)?;
    let setup = DemoSetup {
        out: args.out.clone(),
        patients: synth.patients,
        missing_fraction: synth.missing_fraction,
        preset: args.config.preset.clone(),
        config,
    };
    let records = synthetic_dataset(&setup.data(), &synth, !args.quiet)?;
    println!("{}", setup.arm().header(&setup.run_dir()));
    let mut bar = ProgressObserver::new(progress_bar(!args.quiet));
    let results = run_demo::<FcosDetector>(&setup, &records, device, &mut bar, &|| {
        start.elapsed().as_secs_f64()
    })?;
    if let Some(h) = &results.scores.harvester {
        println!("harvester: {}", h.evaluation.headline());
    }
    println!(
        "keyslice: {}",
        results.scores.keyslice.evaluation.headline()
    );
    if let Some(score) = &results.mined {
        println!("mined: {}", score.describe());
    }
    println!("report: {}", results.report.display());
    Ok(())
}
