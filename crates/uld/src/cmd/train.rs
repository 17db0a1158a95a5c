//! `uld train`: supervised or teacher-student training on a DeepLesion-format
//! dataset (the real one, or `uld synth` output).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use uld_data::deeplesion::read_dl_info;
use uld_distributed::{Rendezvous, launch};
use uld_model::FcosDetector;
use uld_train::config_changes::SettingChange;
use uld_train::device::{cpu_has_bf16, parse_device, slow_precision_warning};
use uld_train::mined::MinedScore;
use uld_train::reviewed::{ExtraLabels, RejectedAs};
use uld_train::run::{Labels, train_on};
use uld_train::{Mode, Observer, Precision, StepLog, TrainConfig, Validation};

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
        // Validates the result, overrides or none.
        config.set_all(self.overrides.iter().map(String::as_str))?;
        if let Ok(device) = parse_device(&config.device) {
            warn_if_slow(config.precision, device);
        }
        Ok(config)
    }
}

/// Tells the user, on stderr, when a run's precision is emulated on this
/// CPU and so much slower than fp32.
pub fn warn_if_slow(precision: Precision, device: tch::Device) {
    if let Some(warning) = slow_precision_warning(precision, device, cpu_has_bf16()) {
        eprintln!("warning: {warning}");
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
    pub labels: LabelsArg,
    /// Also learn from a reviewer's decisions (`uld review`'s reviewed.csv):
    /// accepted lesions as lesions.
    #[arg(long, value_name = "REVIEWED_CSV")]
    pub extra_labels: Option<PathBuf>,
    /// With --extra-labels: rejected lesions as known negatives (background
    /// that mining may not turn into a lesion) or as ignore regions.
    #[arg(
        long,
        value_enum,
        default_value = "negative",
        requires = "extra_labels"
    )]
    pub rejected: RejectedArg,
    /// Train data-parallel on N local processes (ranks), each taking an
    /// equal slice of every batch: `loader.batch_size` is per rank, so N
    /// ranks train with N times the batch. Rank 0 writes the run directory.
    /// Under an outside launcher that sets `RANK`, `WORLD_SIZE`,
    /// `MASTER_ADDR` and `MASTER_PORT` (e.g. `torchrun`), leave it out.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub nproc: u16,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RejectedArg {
    Negative,
    Ignore,
}

/// The boxes training images carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LabelsArg {
    /// The rows of DL_info.csv: partial, as published.
    Partial,
    /// Every lesion on each training key image, from the dataset's
    /// `synth_manifest.json` (the upper bound mining is measured against).
    Complete,
}

impl From<LabelsArg> for Labels {
    fn from(l: LabelsArg) -> Self {
        match l {
            LabelsArg::Partial => Labels::Partial,
            LabelsArg::Complete => Labels::Complete,
        }
    }
}

pub fn parse_mode(s: &str) -> Result<Mode, String> {
    match s {
        "supervised" => Ok(Mode::Supervised),
        "mining" => Ok(Mode::Mining),
        other => Err(format!("`{other}` is not supervised or mining")),
    }
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let config = args.config.resolve()?;
    let rendezvous = Rendezvous::from_env()?;
    if args.nproc > 1 && rendezvous.is_none() {
        // Each rank runs this same command line, finds its rank in the
        // environment and trains; this process only waits for them.
        let exe = std::env::current_exe().context("finding the uld executable")?;
        let rest: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        launch::run_local(&exe, &rest, args.nproc.into())
            .with_context(|| format!("training in {}", args.out.display()))?;
        return Ok(());
    }
    let leader = rendezvous.as_ref().is_none_or(|r| r.rank == 0);
    let records = read_dl_info(args.data.join("DL_info.csv"))?;
    let mut bar = ProgressObserver::new(progress_bar(!args.quiet && leader));
    let extra = args.extra_labels.as_ref().map(|path| ExtraLabels {
        path: path.clone(),
        rejected: match args.rejected {
            RejectedArg::Negative => RejectedAs::Negative,
            RejectedArg::Ignore => RejectedAs::Ignore,
        },
    });
    let outcome = train_on::<FcosDetector>(
        &args.data,
        &records,
        &args.out,
        &config,
        args.labels.into(),
        extra.as_ref(),
        &mut bar,
    )
    .with_context(|| format!("training in {}", args.out.display()))?;
    if !leader {
        return Ok(());
    }
    if let Some((accepted, rejected)) = outcome.reviewed {
        let as_what = match args.rejected {
            RejectedArg::Negative => "known negatives",
            RejectedArg::Ignore => "ignore regions",
        };
        println!("reviewed labels: {accepted} accepted lesions, {rejected} rejected as {as_what}");
    }
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

/// A progress bar with loss, learning rate and speed.
pub struct ProgressObserver {
    bar: ProgressBar,
    /// Mined lesions scored at the logged steps so far.
    mined: MinedScore,
}

impl ProgressObserver {
    pub fn new(bar: ProgressBar) -> Self {
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

    fn resumed_with_changes(&mut self, step: u64, changes: &[SettingChange]) {
        let changes: Vec<String> = changes.iter().map(ToString::to_string).collect();
        self.bar.println(format!(
            "resumed at step {step} with settings changed since the run started: {}",
            changes.join("; ")
        ));
    }

    fn finished(&mut self) {
        self.bar.finish();
    }
}
