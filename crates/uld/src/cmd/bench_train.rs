//! `uld bench train`: what data loading and target assignment add to a
//! training step, measured in one run.

use std::path::PathBuf;

use clap::Args;
use uld_data::deeplesion::read_dl_info;
use uld_data::synth::{Preset, generate};
use uld_model::FcosDetector;
use uld_train::bench::time_training_steps;
use uld_train::run::{objective, training_dataset, training_images};

use super::train::ConfigArgs;

#[derive(Args)]
pub struct TrainBenchArgs {
    /// A DeepLesion-format root; by default the `small` synthetic set is
    /// written to a temporary folder first.
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    config: ConfigArgs,
    /// Timed steps each way (medians are reported).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    #[arg(long, default_value_t = 3)]
    warmup: usize,
}

pub fn run(args: &TrainBenchArgs) -> anyhow::Result<()> {
    let temp;
    let root = match &args.data {
        Some(root) => root.clone(),
        None => {
            temp = tempfile::tempdir()?;
            eprintln!(
                "writing the `small` synthetic set to {}",
                temp.path().display()
            );
            generate(&Preset::Small.config(), temp.path(), &|| {})?;
            temp.path().to_path_buf()
        }
    };
    let config = args.config.resolve()?;
    let records = read_dl_info(root.join("DL_info.csv"))?;
    let images = training_images(&root, &records, &config)?;
    let device = uld_train::device::open_device(&config.device)?;
    let mut objective = objective::<FcosDetector>(&config, device, None, Vec::new())?;
    let data = training_dataset::<FcosDetector>(images, &config, objective.views())?;
    let t = time_training_steps::<FcosDetector, _>(
        &config,
        data,
        objective.as_mut(),
        args.warmup,
        args.steps,
    )?;
    println!(
        "training step, {} preset, {:?}, {:?}, batch {} on {}: bare model step {:.3} s, whole step {:.3} s \
         (data + targets add {:+.1}%), {:.1} samples/s (median of {} steps)",
        args.config.preset,
        config.mode,
        config.precision,
        t.batch_size,
        config.device,
        t.bare_step_s,
        t.full_step_s,
        100.0 * t.overhead(),
        t.samples_per_second(),
        t.steps
    );
    Ok(())
}
