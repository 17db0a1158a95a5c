//! What a run folder says about its run (`uld info RUN`): its mode and
//! steps from `config.toml`, and from `metrics.jsonl` the validation curve,
//! the pace, the ignore regions of a mining burn-in and, for a mining run
//! on synthetic data, how real the mined lesions were. The val figures of a
//! tuning study are read with it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use uld_core::{Error, Location, Result};

use uld_model::bench::Timings;

use crate::config::{Mode, TrainConfig};
use crate::mined::MinedScore;

/// The headline metrics of a validation, per protocol.
const HEADLINES: [(&str, &str); 3] = [
    ("harvester", "mean_sens"),
    ("harvester", "ap"),
    ("keyslice", "mean_sens"),
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationPoint {
    pub step: u64,
    /// The score the run keeps its best weights by.
    pub score: Option<f64>,
    /// `(protocol.metric, value)` for each headline the validation has.
    pub headlines: Vec<(String, f64)>,
}

/// Mined-lesion telemetry summed over the logged steps of the mining
/// phase (one step in every `log_every`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MinedTelemetry {
    pub logged_steps: usize,
    pub score: MinedScore,
}

/// Where a run's wall time went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunTime {
    /// The logged steps' pace times the steps each logged window covers.
    pub step_seconds: f64,
    pub validations: usize,
    pub validation_seconds: f64,
}

impl RunTime {
    /// The time of two runs together.
    pub fn plus(&self, other: &Self) -> Self {
        Self {
            step_seconds: self.step_seconds + other.step_seconds,
            validations: self.validations + other.validations,
            validation_seconds: self.validation_seconds + other.validation_seconds,
        }
    }

    /// Validation's share of the run's wall time.
    pub fn validation_share(&self) -> f64 {
        self.validation_seconds / (self.step_seconds + self.validation_seconds).max(f64::EPSILON)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    pub dir: PathBuf,
    pub mode: Mode,
    pub steps: u64,
    /// The last step `metrics.jsonl` logged.
    pub last_step: Option<u64>,
    pub validations: Vec<ValidationPoint>,
    /// Median of the logged `seconds_per_step`.
    pub median_seconds_per_step: Option<f64>,
    /// Wall time of the training steps and of the validations, for runs
    /// whose validations logged their `seconds`.
    pub time: Option<RunTime>,
    /// Mean ignore regions per image over the logged steps of a mining
    /// run's burn-in (`mining.burn_in_ignore`).
    pub burn_in_ignore_per_image: Option<f64>,
    /// Mean confident predictions per image the prediction bank held back
    /// (not yet recurring) over the logged mining steps (`mining.bank_visits`).
    pub bank_held_per_image: Option<f64>,
    /// Absent for supervised runs and runs without complete annotations.
    pub mined: Option<MinedTelemetry>,
}

impl RunSummary {
    /// Whether `dir` looks like a run folder.
    pub fn is_run_dir(dir: &Path) -> bool {
        dir.join("config.toml").is_file() && dir.join("metrics.jsonl").is_file()
    }

    pub fn read(dir: &Path) -> Result<Self> {
        let config = TrainConfig::load(&dir.join("config.toml"))?;
        let path = dir.join("metrics.jsonl");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut summary = Self {
            dir: dir.to_path_buf(),
            mode: config.mode,
            steps: config.steps,
            last_step: None,
            validations: Vec::new(),
            median_seconds_per_step: None,
            time: None,
            burn_in_ignore_per_image: None,
            bank_held_per_image: None,
            mined: None,
        };
        // The last step of a mining run's burn-in (steps are logged from 1).
        let burn_in =
            (config.mode == Mode::Mining).then(|| config.mining.burn_in_steps(config.steps));
        let mut seconds_per_step = Vec::new();
        let (mut step_seconds, mut last_timed_step) = (0.0, 0);
        let mut validation_seconds = Vec::new();
        let mut burn_in_ignore = Vec::new();
        let mut bank_held = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let row = match serde_json::from_str::<serde_json::Value>(line) {
                Ok(row) => row,
                // A run being written may have a torn last line.
                Err(_) if i + 1 == lines.len() => break,
                Err(e) => {
                    return Err(Error::data(
                        Location::file(&path).line(i as u64 + 1),
                        format!("not a JSON object: {e}"),
                    ));
                }
            };
            let step = row.get("step").and_then(|s| s.as_u64()).ok_or_else(|| {
                Error::data(
                    Location::file(&path).line(i as u64 + 1).field("step"),
                    "missing or not a whole number",
                )
            })?;
            summary.last_step = Some(summary.last_step.map_or(step, |s| s.max(step)));
            let value = |key: &str| row.get(key).and_then(|v| v.as_f64());
            if let Some(seconds) = value("seconds_per_step") {
                seconds_per_step.push(seconds);
                step_seconds += seconds * step.saturating_sub(last_timed_step) as f64;
                last_timed_step = step;
            }
            if let Some(validation) = row.get("validation") {
                summary.validations.push(validation_point(step, validation));
                validation_seconds.extend(value("seconds"));
            } else if burn_in.is_some_and(|last| step <= last) {
                burn_in_ignore.extend(value("ignore_per_image"));
            } else if let Some(score) = MinedScore::from_stats(&numbers(&row)) {
                bank_held.extend(value("held_per_image"));
                let mined = summary.mined.get_or_insert_with(MinedTelemetry::default);
                mined.logged_steps += 1;
                mined.score.merge(&score);
            }
        }
        summary.median_seconds_per_step = median(seconds_per_step);
        summary.time = (!validation_seconds.is_empty()).then(|| RunTime {
            step_seconds,
            validations: validation_seconds.len(),
            validation_seconds: validation_seconds.iter().sum(),
        });
        summary.burn_in_ignore_per_image = mean(&burn_in_ignore);
        summary.bank_held_per_image = mean(&bank_held);
        Ok(summary)
    }

    /// The validation with the highest score (the first of equals).
    pub fn best(&self) -> Option<&ValidationPoint> {
        self.validations
            .iter()
            .filter(|v| v.score.is_some())
            .reduce(|best, v| if v.score > best.score { v } else { best })
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn median(seconds: Vec<f64>) -> Option<f64> {
    (!seconds.is_empty()).then(|| Timings { seconds }.median())
}

/// A logged row's numeric fields, as a step's statistics.
fn numbers(row: &serde_json::Value) -> BTreeMap<String, f64> {
    row.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(key, v)| Some((key.clone(), v.as_f64()?)))
        .collect()
}

fn validation_point(step: u64, validation: &serde_json::Value) -> ValidationPoint {
    let headlines = HEADLINES
        .iter()
        .filter_map(|(protocol, metric)| {
            let value = validation.get("metrics")?.get(protocol)?.get(metric)?;
            Some((format!("{protocol}.{metric}"), value.as_f64()?))
        })
        .collect();
    ValidationPoint {
        step,
        score: validation.get("score").and_then(|s| s.as_f64()),
        headlines,
    }
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            Mode::Supervised => "supervised",
            Mode::Mining => "mining",
        };
        let trained = self
            .last_step
            .map_or("nothing logged yet".to_string(), |s| {
                format!("logged to step {s}")
            });
        writeln!(
            f,
            "run {}: {mode}, {} steps, {trained}",
            self.dir.display(),
            self.steps
        )?;
        let names: Vec<&String> = self
            .validations
            .first()
            .map(|v| v.headlines.iter().map(|(n, _)| n).collect())
            .unwrap_or_default();
        if self.validations.is_empty() {
            writeln!(f, "no validation logged")?;
        } else {
            let header: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
            writeln!(f, "| step | {} |", header.join(" | "))?;
            writeln!(f, "|---|{}", "---|".repeat(names.len()))?;
            let best = self.best().map(|b| b.step);
            for v in &self.validations {
                let cells: Vec<String> = names
                    .iter()
                    .map(|n| {
                        v.headlines
                            .iter()
                            .find(|(name, _)| name == *n)
                            .map_or("-".into(), |(_, value)| format!("{value:.3}"))
                    })
                    .collect();
                let mark = if Some(v.step) == best { " (best)" } else { "" };
                writeln!(f, "| {}{mark} | {} |", v.step, cells.join(" | "))?;
            }
        }
        if let Some(seconds) = self.median_seconds_per_step {
            writeln!(
                f,
                "pace: {seconds:.3} s per step (median of the logged steps)"
            )?;
        }
        if let Some(time) = &self.time {
            writeln!(
                f,
                "time: {:.1} min of training steps, {:.1} min validating ({} {}, {:.0}% of \
                 the run)",
                time.step_seconds / 60.0,
                time.validation_seconds / 60.0,
                time.validations,
                if time.validations == 1 {
                    "pass"
                } else {
                    "passes"
                },
                100.0 * time.validation_share(),
            )?;
        }
        if let Some(ignored) = self.burn_in_ignore_per_image {
            writeln!(
                f,
                "burn-in: {ignored:.3} ignore regions per image (mean of the logged steps)"
            )?;
        }
        if let Some(held) = self.bank_held_per_image {
            writeln!(
                f,
                "prediction bank: {held:.3} confident boxes per image held back until they \
                 recur (mean of the logged mining steps)"
            )?;
        }
        if let Some(MinedTelemetry {
            logged_steps,
            score: m,
        }) = &self.mined
        {
            let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.0}%", 100.0 * v));
            writeln!(
                f,
                "mined, over {} logged steps: {:.0} lesions learned, {} real; {:.0} of {:.0} \
                 unlabelled lesions in those batches found ({})",
                logged_steps,
                m.true_mined + m.false_mined,
                pct(m.precision()),
                m.unlabelled_found,
                m.unlabelled,
                pct(m.recall()),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_dir(metrics: &str, mode: Mode) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let config = TrainConfig {
            mode,
            ..TrainConfig::tiny()
        };
        std::fs::write(dir.path().join("config.toml"), config.to_toml_string()).unwrap();
        std::fs::write(dir.path().join("metrics.jsonl"), metrics).unwrap();
        dir
    }

    const VALIDATION: &str = r#"{"step":20,"validation":{"score":0.3,"metrics":{"harvester":{"ap":0.2,"mean_sens":0.3},"keyslice":{"mean_sens":0.4}}}}"#;

    #[test]
    fn the_validation_curve_the_best_step_and_the_mined_share_that_is_real() {
        let metrics = [
            r#"{"step":5,"loss":1.2,"seconds_per_step":0.5,"ignore_per_image":0.25}"#,
            r#"{"step":10,"loss":1.0,"seconds_per_step":0.7,"ignore_per_image":2.0,"held_per_image":0.5,"mined_true":1.0,"mined_false":1.0,"unlabelled":4.0,"unlabelled_found":1.0}"#,
            VALIDATION,
            r#"{"step":30,"loss":0.9,"seconds_per_step":0.9,"held_per_image":1.5,"mined_true":2.0,"mined_false":0.0,"unlabelled":4.0,"unlabelled_found":2.0}"#,
            r#"{"step":40,"validation":{"score":0.25,"metrics":{"harvester":{"ap":0.1,"mean_sens":0.25}}},"seconds":39.0}"#,
            r#"{"step":50,"lo"#,
        ]
        .join("\n");
        let dir = run_dir(&metrics, Mode::Mining);
        let summary = RunSummary::read(dir.path()).unwrap();
        assert_eq!(summary.last_step, Some(40));
        assert_eq!(summary.validations.len(), 2);
        assert_eq!(summary.best().unwrap().step, 20);
        let mined = summary.mined.clone().unwrap().score;
        assert_eq!(mined.precision(), Some(0.75));
        assert_eq!(mined.recall(), Some(3.0 / 8.0));
        let text = summary.to_string();
        assert!(
            text.contains("| 20 (best) | 0.300 | 0.200 | 0.400 |"),
            "{text}"
        );
        assert!(text.contains("| 40 | 0.250 | 0.100 | - |"), "{text}");
        assert!(text.contains("4 lesions learned, 75% real"), "{text}");
        assert_eq!(summary.median_seconds_per_step, Some(0.7));
        assert_eq!(summary.burn_in_ignore_per_image, Some(0.25));
        assert!(text.contains("pace: 0.700 s per step"), "{text}");
        // 5 x 0.5 + 5 x 0.7 + 20 x 0.9 = 24 s of steps; one validation logged its time.
        let time = summary.time.clone().unwrap();
        assert!((time.step_seconds - 24.0).abs() < 1e-9, "{time:?}");
        assert_eq!((time.validations, time.validation_seconds), (1, 39.0));
        assert!(
            text.contains(
                "time: 0.4 min of training steps, 0.7 min validating (1 pass, 62% of the run)"
            ),
            "{text}"
        );
        assert!(
            text.contains("burn-in: 0.250 ignore regions per image"),
            "{text}"
        );
        assert!(
            text.contains("prediction bank: 1.000 confident boxes per image held back"),
            "{text}"
        );
    }

    #[test]
    fn a_broken_line_before_the_last_names_the_file_and_line() {
        let dir = run_dir(
            &format!("{VALIDATION}\nnot json\n{VALIDATION}"),
            Mode::Supervised,
        );
        let err = RunSummary::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("metrics.jsonl, line 2"), "{err}");
        let dir = run_dir(r#"{"loss":1.0}"#, Mode::Supervised);
        let err = RunSummary::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("line 1, field `step`"), "{err}");
    }
}
