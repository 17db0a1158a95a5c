//! `uld bench train`: what data loading adds to a training step, what the
//! step's parts and its target assignment cost, measured in one run.

use std::path::PathBuf;

use clap::Args;
use uld_data::deeplesion::read_dl_info;
use uld_data::loader::Loader;
use uld_data::synth::{Preset, generate};
use uld_model::FcosDetector;
use uld_model::bench::time_target_assignment;
use uld_train::Mode;
use uld_train::batch::ReadyImages;
use uld_train::bench::{StepParts, time_training_steps};
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
        data.clone(),
        objective.as_mut(),
        args.warmup,
        args.steps,
    )?;
    // What target assignment costs, on a batch the objective prepared (with
    // mining's pseudo lesions): it runs inside the student step.
    let batch = Loader::new(ReadyImages::new(data, device), config.loader.clone())?
        .epoch(0)
        .next()
        .ok_or_else(|| anyhow::anyhow!("the benchmark data gave no batch"))??;
    let prepared = objective.prepare(config.steps.saturating_sub(1), &batch, device)?;
    let (_, _, h, w) = prepared.images.size4()?;
    let assignment_s =
        time_target_assignment(&config.model, &prepared.targets, h, w, device, args.steps);
    let (prepare, update) = match config.mode {
        Mode::Mining => ("teacher pass", " + teacher update"),
        Mode::Supervised => ("batch to the device", ""),
    };
    let parts = |p: &StepParts| {
        let update = if update.is_empty() {
            String::new()
        } else {
            format!("{update} {:.3}", p.update_s)
        };
        format!(
            "{:.3} s = loader {:.3} + {prepare} {:.3} + student step {:.3}{update}",
            p.total_s, p.load_s, p.prepare_s, p.model_step_s
        )
    };
    println!(
        "training step, {} preset, {:?}, {:?}, batch {} on {}, medians of {} steps:\n  \
         bare  {} (target assignment, inside the student step: {:.2} ms)\n  \
         whole {}\n  ratio whole / bare {:.3}, {:.1} samples/s",
        args.config.preset,
        config.mode,
        config.precision,
        t.batch_size,
        config.device,
        t.steps,
        parts(&t.bare),
        1e3 * assignment_s,
        parts(&t.whole),
        t.ratio(),
        t.samples_per_second(),
    );
    Ok(())
}
