//! `uld bench mining`: the missing-annotation benchmark. On one synthetic
//! DeepLesion-format dataset with lesions left unlabelled, three runs with
//! the same schedule and seed: (a) supervised on the partial labels, (b)
//! teacher-student mining on the same labels, (c) supervised on complete
//! labels of the same training images (the upper bound). All are scored
//! on the test split: `harvester` against its complete annotations and
//! `keyslice` against its partial labels, with bootstrap intervals, and
//! (b) is compared with (a) by a paired bootstrap.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, ensure};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};
use uld_data::deeplesion::LesionRecord;
use uld_eval::bootstrap::{Difference, Interval};
use uld_eval::report::plot_frocs;
use uld_eval::{BootstrapConfig, Evaluation, Protocol, compare_evaluations};
use uld_train::mined::{MinedScore, REVIEW_TAU};
use uld_train::validate::{SplitScores, eval_config};
use uld_train::{Mode, TrainConfig, Weights};

use super::experiment::{Arm, score_on_test, synthetic_dataset, train_arm};
use super::mined::{describe_score, mine_run};
use super::synth::preset_config;
use super::train::{ConfigArgs, Labels};

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

/// Steps of each run with the `small` preset, unless `--steps` says.
pub const SMALL_STEPS: u64 = 3000;

pub const ARMS: [Arm; 3] = [
    Arm {
        name: "a_supervised_partial",
        title: "(a) supervised, partial labels",
        mode: Mode::Supervised,
        labels: Labels::Partial,
    },
    Arm {
        name: "b_mining_partial",
        title: "(b) mining, partial labels",
        mode: Mode::Mining,
        labels: Labels::Partial,
    },
    Arm {
        name: "c_supervised_complete",
        title: "(c) supervised, complete labels",
        mode: Mode::Supervised,
        labels: Labels::Complete,
    },
];

/// One scored row of the table.
struct Row {
    title: String,
    scores: SplitScores,
    seconds: Option<f64>,
}

pub fn run(args: &MiningBenchArgs) -> anyhow::Result<()> {
    if args.config.mode.is_some() {
        bail!("uld bench mining trains every mode itself; leave out --mode");
    }
    ensure!(args.bootstrap > 0, "--bootstrap must be at least 1");
    let start = Instant::now();
    let synth = preset_config(
        &args.data_preset,
        args.data_seed,
        args.missing_fraction,
        args.patients,
    )?;
    synth.validate()?;
    let config = run_config(args)?;
    let device = uld_train::device::open_device(&config.device)?;
    let data = args.out.join("data");
    let records = synthetic_dataset(&data, &synth, !args.quiet)?;
    let boot = BootstrapConfig {
        replicates: args.bootstrap,
        ..BootstrapConfig::default()
    };
    let seconds = train_arms(args, &data, &records, &config)?;
    if config.threads > 0 {
        tch::set_num_threads(config.threads);
    }
    let mut rows = Vec::new();
    for (arm, seconds) in ARMS.iter().zip(seconds) {
        let dir = args.out.join(arm.name);
        let scores = score_on_test(&data, &records, &dir, Weights::Best, device, boot)?;
        rows.push(Row {
            title: arm.title.to_string(),
            scores,
            seconds,
        });
    }
    let mining_dir = args.out.join(ARMS[1].name);
    let student = Row {
        title: "(b) mining, its student".into(),
        scores: score_on_test(&data, &records, &mining_dir, Weights::Student, device, boot)?,
        seconds: None,
    };
    let review_tau = config.mining.tau_high.min(REVIEW_TAU);
    let mined = mine_run(
        &data,
        &records,
        &mining_dir,
        Weights::Teacher,
        device,
        Some(review_tau),
    )?;
    let report = Report {
        args,
        synth_patients: synth.patients,
        steps: config.steps,
        rows: &rows,
        student: &student,
        mined: mined.truth.as_ref().map(|(s, _)| (review_tau, *s)),
        boot,
        total_seconds: start.elapsed().as_secs_f64(),
    };
    let text = report.markdown();
    print!("{}", report.table());
    let path = args.out.join("report.md");
    uld_core::write_atomically(&path, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    plot_all(&args.out, &rows)?;
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

/// Trains the arms, `args.jobs` at a time, and returns each one's training
/// seconds in this call (`None` for a run finished earlier).
fn train_arms(
    args: &MiningBenchArgs,
    data: &Path,
    records: &[LesionRecord],
    config: &TrainConfig,
) -> anyhow::Result<Vec<Option<f64>>> {
    ensure!(args.jobs > 0, "--jobs must be at least 1");
    let config = if args.jobs > 1 {
        TrainConfig {
            threads: 1,
            ..config.clone()
        }
    } else {
        config.clone()
    };
    let bars = MultiProgress::new();
    if args.quiet {
        bars.set_draw_target(ProgressDrawTarget::hidden());
    }
    let mut seconds = Vec::new();
    for arms in ARMS.chunks(args.jobs) {
        for arm in arms {
            println!("{}", arm.header(&args.out.join(arm.name)));
        }
        let results: Vec<anyhow::Result<Option<f64>>> = std::thread::scope(|scope| {
            let runs: Vec<_> = arms
                .iter()
                .map(|arm| {
                    let bar = bars.add(ProgressBar::new(0));
                    bar.set_prefix(arm.title.split(' ').next().unwrap_or(arm.name));
                    let (dir, config) = (args.out.join(arm.name), &config);
                    scope.spawn(move || {
                        let started = Instant::now();
                        let outcome = train_arm(data, records, &dir, config, arm, bar)?;
                        Ok((outcome.resumed_from != Some(outcome.steps))
                            .then(|| started.elapsed().as_secs_f64()))
                    })
                })
                .collect();
            runs.into_iter()
                .map(|run| {
                    run.join()
                        .unwrap_or_else(|_| Err(anyhow!("a training thread panicked")))
                })
                .collect()
        });
        for result in results {
            seconds.push(result?);
        }
    }
    Ok(seconds)
}

fn plot_all(out: &Path, rows: &[Row]) -> anyhow::Result<()> {
    let keyslice: Vec<(&Evaluation, &str)> = rows
        .iter()
        .map(|r| (&r.scores.keyslice.evaluation, r.title.as_str()))
        .collect();
    plot_frocs(&out.join("froc_keyslice"), &keyslice)?;
    let harvester: Vec<(&Evaluation, &str)> = rows
        .iter()
        .filter_map(|r| Some((&r.scores.harvester.as_ref()?.evaluation, r.title.as_str())))
        .collect();
    if !harvester.is_empty() {
        plot_frocs(&out.join("froc_harvester"), &harvester)?;
    }
    Ok(())
}

struct Report<'a> {
    args: &'a MiningBenchArgs,
    synth_patients: usize,
    steps: u64,
    rows: &'a [Row],
    student: &'a Row,
    /// The score from which the teacher's candidates count, and their score.
    mined: Option<(f32, MinedScore)>,
    boot: BootstrapConfig,
    total_seconds: f64,
}

fn pct(v: f64) -> String {
    format!("{:.1}", 100.0 * v)
}

fn with_interval(v: f64, i: Option<&Interval>) -> String {
    match i {
        Some(i) => format!("{} [{}, {}]", pct(v), pct(i.low), pct(i.high)),
        None => pct(v),
    }
}

/// Mean sensitivity and AP of an evaluation, in points, with intervals.
fn cells(e: &Evaluation) -> (String, String) {
    let iv = e.intervals.as_ref();
    (
        with_interval(e.metrics.summary, iv.map(|i| &i.summary)),
        with_interval(e.metrics.ap, iv.map(|i| &i.ap)),
    )
}

fn difference(d: &Difference) -> String {
    format!(
        "{:+.1} [{:+.1}, {:+.1}], p = {:.3}",
        100.0 * d.difference,
        100.0 * d.interval.low,
        100.0 * d.interval.high,
        d.p_value
    )
}

/// `(b - a) / (c - a)`, when (c) is above (a).
fn gap_closed(a: f64, b: f64, c: f64) -> String {
    if c - a > 1e-9 {
        format!("{:.0}%", 100.0 * (b - a) / (c - a))
    } else {
        "n/a: (c) is not above (a)".into()
    }
}

impl Report<'_> {
    /// The results table and the (b) - (a) comparison, as printed.
    fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| run | harvester mean sensitivity, 0.125-8 FP/volume | harvester AP | keyslice mean sensitivity, 0.5-4 FP/image |"
        );
        let _ = writeln!(s, "|---|---|---|---|");
        for row in self.rows.iter().chain([self.student]) {
            let (ks, _) = cells(&row.scores.keyslice.evaluation);
            let (hs, hap) = row
                .scores
                .harvester
                .as_ref()
                .map_or(("-".into(), "-".into()), |h| cells(&h.evaluation));
            let _ = writeln!(s, "| {} | {hs} | {hap} | {ks} |", row.title);
        }
        let _ = writeln!(
            s,
            "\nValues in points (%), {:.0}% bootstrap intervals over {} replicates.\n",
            100.0 * self.boot.level,
            self.boot.replicates
        );
        let (a, b, c) = (
            &self.rows[0].scores,
            &self.rows[1].scores,
            &self.rows[2].scores,
        );
        let _ = writeln!(s, "(b) - (a), paired bootstrap:");
        if let (Some(ha), Some(hb), Some(hc)) = (&a.harvester, &b.harvester, &c.harvester) {
            let cmp = compare_evaluations(
                &ha.evaluation,
                &hb.evaluation,
                &eval_config(Protocol::Harvester, Some(self.boot)),
            );
            let _ = writeln!(
                s,
                "- harvester mean sensitivity {}; AP {}",
                difference(&cmp.summary),
                difference(&cmp.ap)
            );
            let m = |e: &Evaluation| e.metrics.summary;
            let ap = |e: &Evaluation| e.metrics.ap;
            let _ = writeln!(
                s,
                "- share of the (c) - (a) gap that (b) closes: mean sensitivity {}, AP {}",
                gap_closed(m(&ha.evaluation), m(&hb.evaluation), m(&hc.evaluation)),
                gap_closed(ap(&ha.evaluation), ap(&hb.evaluation), ap(&hc.evaluation)),
            );
        }
        let cmp = compare_evaluations(
            &a.keyslice.evaluation,
            &b.keyslice.evaluation,
            &eval_config(Protocol::KeySlice, Some(self.boot)),
        );
        let _ = writeln!(
            s,
            "- keyslice mean sensitivity {}",
            difference(&cmp.summary)
        );
        if let Some((tau, score)) = &self.mined {
            let _ = writeln!(
                s,
                "\nMined by (b)'s final teacher on its training key images at score {tau}: {}.",
                describe_score(score)
            );
        }
        s
    }

    fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Missing-annotation benchmark\n");
        let _ = writeln!(
            s,
            "Command: `{}`\n",
            std::env::args().collect::<Vec<_>>().join(" ")
        );
        let _ = writeln!(s, "Machine: {}\n", machine());
        let _ = writeln!(
            s,
            "Data: synthetic `{}` preset, {} patients, seed {}, {:.0}% of lesions unlabelled \
             (`{}`). Each run: training preset `{}`, {} steps, the same seed, {}; (c) trains on \
             every lesion of the same training key images. Test split: `harvester` against \
             its complete annotations, `keyslice` against its partial `DL_info.csv` labels; \
             each run is scored with its best validated weights (the teacher for (b)).\n",
            self.args.data_preset,
            self.synth_patients,
            self.args.data_seed,
            100.0 * self.args.missing_fraction,
            self.args.out.join("data").display(),
            self.args.config.preset,
            self.steps,
            if self.args.jobs > 1 {
                format!(
                    "{} runs at a time on one CPU thread each",
                    self.args.jobs.min(ARMS.len())
                )
            } else {
                "one run at a time".to_string()
            },
        );
        s.push_str(&self.table());
        let _ = writeln!(s, "\nTraining time (this invocation):\n");
        for row in self.rows {
            let t = row
                .seconds
                .map_or("trained earlier".into(), |t| format!("{:.0} s", t));
            let _ = writeln!(s, "- {}: {t}", row.title);
        }
        let _ = writeln!(
            s,
            "\nTotal wall time: {:.1} min. Plots: `froc_harvester.png`, `froc_keyslice.png`.",
            self.total_seconds / 60.0
        );
        s
    }
}

/// Cores and CPU model, where the system says.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {model}")
}
