//! `uld train`: supervised or teacher-student training on a DeepLesion-format
//! dataset (the real one, or `uld synth` output).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use uld_data::deeplesion::{LesionRecord, Split, read_dl_info};
use uld_data::loader::{DeepLesionDataset, KeyImage, NoisyPolicy, ViewMode};
use uld_data::synth::{MANIFEST_FILE, Manifest, complete_annotations_file};
use uld_eval::read_harvester;
use uld_train::mined::MinedScore;
use uld_train::validate::{DetectSettings, SplitValidator, keyslice_truth, subvolumes};
use uld_train::{
    Mining, Mode, Objective, Observer, StepLog, Student, Supervised, TrainConfig, Validation,
    complete_from_manifest, train,
};

/// Which training configuration to use: a preset or a file, and overrides.
#[derive(Args)]
pub struct ConfigArgs {
    /// `supervised` or `mining`.
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<Mode>,
    /// Settings to start from: tiny, small or deeplesion.
    #[arg(long, default_value = "small")]
    pub preset: String,
    /// A TOML file with the whole configuration (instead of --preset).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override one setting, e.g. `--set schedule.base_lr=0.002` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long)]
    pub device: Option<String>,
}

impl ConfigArgs {
    /// The configuration the arguments ask for, validated.
    pub fn resolve(&self) -> anyhow::Result<TrainConfig> {
        let mut config = match &self.config {
            Some(path) => TrainConfig::load(path)?,
            None => TrainConfig::preset(&self.preset)?,
        };
        if let Some(mode) = self.mode {
            config.mode = mode;
        }
        if let Some(device) = &self.device {
            config.device = device.clone();
        }
        for assignment in &self.overrides {
            config.set(assignment)?;
        }
        config.validate()?;
        Ok(config)
    }
}

#[derive(Args)]
pub struct TrainArgs {
    /// Dataset root holding DL_info.csv and Images_png/.
    #[arg(long)]
    pub data: PathBuf,
    /// Run directory (created; an existing run there is resumed).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Which boxes the training images carry.
    #[arg(long, value_enum, default_value = "partial")]
    pub labels: Labels,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// The boxes training images carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Labels {
    /// The rows of DL_info.csv: partial, as published.
    Partial,
    /// Every lesion on each training key image, from the dataset's
    /// `synth_manifest.json` (the upper bound mining is measured against).
    Complete,
}

pub fn parse_mode(s: &str) -> Result<Mode, String> {
    match s {
        "supervised" => Ok(Mode::Supervised),
        "mining" => Ok(Mode::Mining),
        other => Err(format!("`{other}` is not supervised or mining")),
    }
}

/// The objective `config.mode` names (mining scored against `complete`
/// annotations where they are known).
pub fn objective(
    config: &TrainConfig,
    device: tch::Device,
    complete: Option<uld_train::CompleteAnnotations>,
) -> anyhow::Result<Box<dyn Objective>> {
    Ok(match config.mode {
        Mode::Supervised => Box::new(Supervised),
        Mode::Mining => Box::new(Mining::new(
            config.mining.clone(),
            &config.model,
            config.steps,
            device,
            complete,
        )?),
    })
}

/// The key images of the training split.
pub fn training_images(
    root: &Path,
    records: &[LesionRecord],
    config: &TrainConfig,
) -> anyhow::Result<Vec<KeyImage>> {
    let rows: Vec<LesionRecord> = records
        .iter()
        .filter(|r| r.split == Split::Train)
        .cloned()
        .collect();
    anyhow::ensure!(
        !rows.is_empty(),
        "{} has no training rows (Train_Val_Test = 1)",
        root.display()
    );
    Ok(KeyImage::from_records(root, &rows, config.noisy))
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let config = args.config.resolve()?;
    let records = read_dl_info(args.data.join("DL_info.csv"))?;
    let outcome = train_on(
        &args.data,
        &records,
        &args.out,
        &config,
        args.labels,
        progress_bar(!args.quiet),
    )?;
    println!(
        "trained {} steps{} in {}",
        outcome.steps,
        outcome
            .resumed_from
            .map_or(String::new(), |s| format!(" (resumed at step {s})")),
        outcome.dir.display()
    );
    Ok(())
}

/// A bar drawn on the terminal, or a hidden one.
pub fn progress_bar(visible: bool) -> ProgressBar {
    if visible {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    }
}

/// Trains on the `train` split of `records`, validating on the `val` split
/// (and on its complete annotations, where `uld synth` wrote them). Shows
/// its progress on `bar`, prefixed by `bar`'s prefix or `train`.
pub fn train_on(
    root: &Path,
    records: &[LesionRecord],
    out: &Path,
    config: &TrainConfig,
    labels: Labels,
    bar: ProgressBar,
) -> anyhow::Result<uld_train::Outcome> {
    let mut images = training_images(root, records, config)?;
    let mut student = Student::new(config)?;
    let device = student.store.device();
    let complete = complete_annotations(root, &images)?;
    if labels == Labels::Complete {
        let complete = complete.as_ref().with_context(|| {
            format!(
                "--labels complete needs {}, which `uld synth` writes",
                root.join(MANIFEST_FILE).display()
            )
        })?;
        for (image, boxes) in images.iter_mut().zip(complete) {
            image.boxes.clone_from(boxes);
        }
    }
    let mut objective = objective(config, device, complete)?;
    let dataset = dataset(images, config, objective.views())?;
    let mut validator = split_validator(root, records, Split::Val, config, device)?;
    let mut bar = ProgressObserver::new(bar);
    let outcome = train(
        out,
        config,
        &mut student,
        dataset,
        objective.as_mut(),
        validator
            .as_mut()
            .map(|v| v as &mut dyn uld_train::Validator),
        &mut bar,
    )
    .with_context(|| format!("training in {}", out.display()))?;
    bar.finish();
    Ok(outcome)
}

/// Every lesion on each of `images`' key slices, where the dataset's
/// synth manifest knows them.
pub fn complete_annotations(
    root: &Path,
    images: &[KeyImage],
) -> anyhow::Result<Option<uld_train::CompleteAnnotations>> {
    let path = root.join(MANIFEST_FILE);
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(complete_from_manifest(
        &Manifest::read(&path)?,
        images,
    )))
}

/// How detection runs for a configuration on a device.
pub fn detect_settings(config: &TrainConfig, device: tch::Device) -> DetectSettings {
    DetectSettings {
        sample: config.sample.clone(),
        batch_size: config.loader.batch_size.max(1),
        workers: config.loader.workers,
        device,
        size_divisor: size_divisor(config),
    }
}

fn size_divisor(config: &TrainConfig) -> usize {
    config.model.fpn.strides.iter().copied().max().unwrap_or(32) as usize
}

/// A validator for `split` of the dataset at `root`; `None` when it has no rows.
pub fn split_validator(
    root: &Path,
    records: &[LesionRecord],
    split: Split,
    config: &TrainConfig,
    device: tch::Device,
) -> anyhow::Result<Option<SplitValidator>> {
    let rows: Vec<LesionRecord> = records
        .iter()
        .filter(|r| r.split == split)
        .cloned()
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let harvester_file = root.join(complete_annotations_file(split));
    let harvester = if harvester_file.exists() {
        let truth = read_harvester(&harvester_file)?;
        Some((subvolumes(&truth, root, records), truth))
    } else {
        None
    };
    Ok(Some(SplitValidator {
        settings: detect_settings(config, device),
        key_images: KeyImage::from_records(root, &rows, NoisyPolicy::Drop),
        keyslice: keyslice_truth(&rows, &format!("{} {} split", root.display(), split.name())),
        harvester,
    }))
}

pub fn dataset(
    images: Vec<KeyImage>,
    config: &TrainConfig,
    views: ViewMode,
) -> anyhow::Result<Arc<DeepLesionDataset>> {
    let mut dataset =
        DeepLesionDataset::new(images, config.sample.clone(), views, config.cache_bytes)?;
    dataset.size_divisor = size_divisor(config);
    Ok(Arc::new(dataset))
}

/// A progress bar with loss, learning rate and speed.
struct ProgressObserver {
    bar: ProgressBar,
    /// Mined lesions scored at the logged steps so far.
    mined: MinedScore,
}

impl ProgressObserver {
    fn new(bar: ProgressBar) -> Self {
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} steps {msg} ({eta} left)",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        if bar.prefix().is_empty() {
            bar.set_prefix("train");
        }
        Self {
            bar,
            mined: MinedScore::default(),
        }
    }

    fn finish(&self) {
        self.bar.finish();
    }
}

impl Observer for ProgressObserver {
    fn started(&mut self, first_step: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(first_step);
    }

    fn step(&mut self, log: &StepLog) {
        self.bar.set_position(log.step);
        let mut msg = format!(
            "loss {:.3} lr {:.1e} {:.1} img/s",
            log.loss, log.lr, log.samples_per_second
        );
        if let Some(p) = log.objective.get("pseudo_per_image") {
            msg.push_str(&format!(" mined {p:.2}/img"));
        }
        if let Some(score) = MinedScore::from_stats(&log.objective) {
            self.mined.merge(&score);
            if let Some(precision) = self.mined.precision() {
                msg.push_str(&format!(" ({:.0}% real)", 100.0 * precision));
            }
        }
        self.bar.set_message(msg);
    }

    fn validated(&mut self, step: u64, v: &Validation) {
        self.bar
            .println(format!("step {step}: validation {}", v.metrics));
    }
}
