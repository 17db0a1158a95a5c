//! The missing-annotation benchmark (`uld bench mining`). On one synthetic
//! DeepLesion-format dataset with lesions left unlabelled, three runs with
//! the same schedule and seed: (a) supervised on the partial labels, (b)
//! teacher-student mining on the same labels, (c) supervised on complete
//! labels of the same training images (the upper bound). All are scored on
//! the test split: `harvester` against its complete annotations and
//! `keyslice` against its partial labels, with bootstrap intervals, and (b)
//! is compared with (a) by a paired bootstrap.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tch::Device;
use uld_core::{Error, Result};
use uld_data::deeplesion::LesionRecord;
use uld_eval::bootstrap::{Difference, Interval};
use uld_eval::report::plot_frocs;
use uld_eval::{BootstrapConfig, Evaluation, Protocol, compare_evaluations};
use uld_model::BuildDetector;

use super::{Arm, machine, score_on_test, train_arm};
use crate::config::{Mode, TrainConfig};
use crate::mined::{MinedScore, REVIEW_TAU};
use crate::mined_export::mine_run;
use crate::run::Labels;
use crate::trained::Weights;
use crate::trainer::Observer;
use crate::validate::{SplitScores, eval_config};

/// Steps of each run with the `small` preset, unless the user says.
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

/// What the benchmark was asked to do, as its report states it.
#[derive(Debug, Clone)]
pub struct BenchSetup {
    /// Folder of the dataset (`data/`), the runs and the report.
    pub out: PathBuf,
    /// The command line, for the report.
    pub command: String,
    pub data_preset: String,
    pub patients: usize,
    pub data_seed: u64,
    pub missing_fraction: f64,
    /// Name of the training preset.
    pub preset: String,
    /// The configuration every arm trains with (its mode set per arm).
    pub config: TrainConfig,
    /// Runs trained at once; above 1, each on one CPU thread.
    pub jobs: usize,
    pub bootstrap: BootstrapConfig,
}

impl BenchSetup {
    pub fn data(&self) -> PathBuf {
        self.out.join("data")
    }

    pub fn run_dir(&self, arm: &Arm) -> PathBuf {
        self.out.join(arm.name)
    }
}

/// Trains the arms (each a `D`), `setup.jobs` at a time, each reporting to
/// the observer `observer(arm)` makes (called in arm order before the arm
/// starts), and returns each one's training seconds in this call (`None`
/// for a run finished earlier).
pub fn train_arms<D: BuildDetector>(
    setup: &BenchSetup,
    records: &[LesionRecord],
    observer: &dyn Fn(&Arm) -> Box<dyn Observer + Send>,
) -> Result<Vec<Option<f64>>> {
    if setup.jobs == 0 {
        return Err(Error::invalid("jobs", "must be at least 1"));
    }
    let config = if setup.jobs > 1 {
        TrainConfig {
            threads: 1,
            ..setup.config.clone()
        }
    } else {
        setup.config.clone()
    };
    let data = setup.data();
    let mut seconds = Vec::new();
    for arms in ARMS.chunks(setup.jobs) {
        let observers: Vec<Box<dyn Observer + Send>> = arms.iter().map(observer).collect();
        let results: Vec<Result<Option<f64>>> = std::thread::scope(|scope| {
            let runs: Vec<_> = arms
                .iter()
                .zip(observers)
                .map(|(arm, mut observer)| {
                    let (dir, config, data) = (setup.run_dir(arm), &config, &data);
                    scope.spawn(move || {
                        let started = Instant::now();
                        let outcome =
                            train_arm::<D>(data, records, &dir, config, arm, observer.as_mut())?;
                        Ok((outcome.resumed_from != Some(outcome.steps))
                            .then(|| started.elapsed().as_secs_f64()))
                    })
                })
                .collect();
            runs.into_iter()
                .map(|run| {
                    run.join().unwrap_or_else(|_| {
                        Err(Error::invalid("training", "a training thread panicked"))
                    })
                })
                .collect()
        });
        for result in results {
            seconds.push(result?);
        }
    }
    Ok(seconds)
}

/// One scored row of the table.
pub struct Row {
    pub title: String,
    pub scores: SplitScores,
    pub seconds: Option<f64>,
}

/// The benchmark's scores: one row per arm, (b)'s student, and what (b)'s
/// final teacher mines on its training images.
pub struct BenchResults {
    pub rows: Vec<Row>,
    pub student: Row,
    /// The score from which the teacher's candidates count, and their score.
    pub mined: Option<(f32, MinedScore)>,
}

/// Scores every arm (a `D`) trained in `setup.out` on the test split, given
/// the training `seconds` of each.
pub fn score_arms<D: BuildDetector>(
    setup: &BenchSetup,
    records: &[LesionRecord],
    seconds: Vec<Option<f64>>,
    device: Device,
) -> Result<BenchResults> {
    let data = setup.data();
    let boot = setup.bootstrap;
    let mut rows = Vec::new();
    for (arm, seconds) in ARMS.iter().zip(seconds) {
        let scores = score_on_test::<D>(
            &data,
            records,
            &setup.run_dir(arm),
            Weights::Best,
            device,
            boot,
        )?;
        rows.push(Row {
            title: arm.title.to_string(),
            scores,
            seconds,
        });
    }
    let mining_dir = setup.run_dir(&ARMS[1]);
    let student = Row {
        title: "(b) mining, its student".into(),
        scores: score_on_test::<D>(&data, records, &mining_dir, Weights::Student, device, boot)?,
        seconds: None,
    };
    let review_tau = setup.config.mining.tau_high.min(REVIEW_TAU);
    let mined = mine_run::<D>(
        &data,
        records,
        &mining_dir,
        Weights::Teacher,
        device,
        Some(review_tau),
    )?;
    Ok(BenchResults {
        rows,
        student,
        mined: mined.truth.as_ref().map(|(s, _)| (review_tau, *s)),
    })
}

/// FROC plots of every arm: `froc_keyslice.*` and `froc_harvester.*` in `out`.
pub fn plot_all(out: &Path, rows: &[Row]) -> Result<()> {
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

/// The benchmark's report: the table as printed, and `report.md`.
pub struct Report<'a> {
    pub setup: &'a BenchSetup,
    pub results: &'a BenchResults,
    pub total_seconds: f64,
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
    pub fn table(&self) -> String {
        let boot = self.setup.bootstrap;
        let rows = &self.results.rows;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| run | harvester mean sensitivity, 0.125-8 FP/volume | harvester AP | keyslice mean sensitivity, 0.5-4 FP/image |"
        );
        let _ = writeln!(s, "|---|---|---|---|");
        for row in rows.iter().chain([&self.results.student]) {
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
            100.0 * boot.level,
            boot.replicates
        );
        let (a, b, c) = (&rows[0].scores, &rows[1].scores, &rows[2].scores);
        let _ = writeln!(s, "(b) - (a), paired bootstrap:");
        if let (Some(ha), Some(hb), Some(hc)) = (&a.harvester, &b.harvester, &c.harvester) {
            let cmp = compare_evaluations(
                &ha.evaluation,
                &hb.evaluation,
                &eval_config(Protocol::Harvester, Some(boot)),
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
            &eval_config(Protocol::KeySlice, Some(boot)),
        );
        let _ = writeln!(
            s,
            "- keyslice mean sensitivity {}",
            difference(&cmp.summary)
        );
        if let Some((tau, score)) = &self.results.mined {
            let _ = writeln!(
                s,
                "\nMined by (b)'s final teacher on its training key images at score {tau}: {}.",
                score.describe()
            );
        }
        s
    }

    pub fn markdown(&self) -> String {
        let setup = self.setup;
        let mut s = String::new();
        let _ = writeln!(s, "# Missing-annotation benchmark\n");
        let _ = writeln!(s, "Command: `{}`\n", setup.command);
        let _ = writeln!(s, "Machine: {}\n", machine());
        let _ = writeln!(
            s,
            "Data: synthetic `{}` preset, {} patients, seed {}, {:.0}% of lesions unlabelled \
             (`{}`). Each run: training preset `{}`, {} steps, the same seed, {}; (c) trains on \
             every lesion of the same training key images. Test split: `harvester` against \
             its complete annotations, `keyslice` against its partial `DL_info.csv` labels; \
             each run is scored with its best validated weights (the teacher for (b)).\n",
            setup.data_preset,
            setup.patients,
            setup.data_seed,
            100.0 * setup.missing_fraction,
            setup.data().display(),
            setup.preset,
            setup.config.steps,
            if setup.jobs > 1 {
                format!(
                    "{} runs at a time on one CPU thread each",
                    setup.jobs.min(ARMS.len())
                )
            } else {
                "one run at a time".to_string()
            },
        );
        s.push_str(&self.table());
        let _ = writeln!(s, "\nTraining time (this invocation):\n");
        for row in &self.results.rows {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_closed_is_a_share_of_the_upper_bound() {
        assert_eq!(gap_closed(0.30, 0.35, 0.40), "50%");
        assert_eq!(gap_closed(0.30, 0.28, 0.40), "-20%");
        assert_eq!(gap_closed(0.40, 0.45, 0.40), "n/a: (c) is not above (a)");
    }
}
