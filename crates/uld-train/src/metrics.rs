//! `metrics.jsonl`: one JSON object per logged step, appended as training goes.
//!
//! On resume, lines logged after the checkpoint being resumed are dropped,
//! so the file reads as one uninterrupted run.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use uld_core::{Error, Result, write_atomically};

pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Opens `path` for appending, first dropping lines whose `step` is
    /// greater than `resume_step` (all lines when starting afresh).
    pub fn open(path: impl AsRef<Path>, resume_step: Option<u64>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let kept = match (resume_step, path.exists()) {
            (Some(step), true) => lines_up_to(&path, step)?,
            _ => Vec::new(),
        };
        write_atomically(&path, |w| {
            kept.iter().try_for_each(|line| writeln!(w, "{line}"))
        })?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(Self { path, file })
    }

    /// Appends one record; it must serialise to a JSON object with a `step` field.
    pub fn log(&mut self, record: &impl Serialize) -> Result<()> {
        let line = uld_core::json::to_string(record)
            .map_err(|e| Error::io(&self.path, std::io::Error::other(e)))?;
        writeln!(self.file, "{line}")
            .and_then(|()| self.file.flush())
            .map_err(|e| Error::io(&self.path, e))
    }
}

fn lines_up_to(path: &Path, step: u64) -> Result<Vec<String>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut kept = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| Error::io(path, e))?;
        let line_step = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v.get("step")?.as_u64());
        // A torn last line (the run was killed mid-write) has no step: drop it.
        if line_step.is_some_and(|s| s <= step) {
            kept.push(line);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resume_drops_lines_after_the_checkpoint_and_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut log = MetricsLog::open(&path, None).unwrap();
        for step in [10, 20, 30] {
            log.log(&json!({"step": step, "loss": 1.0})).unwrap();
        }
        drop(log);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"step\": 4")
            .unwrap();
        let mut log = MetricsLog::open(&path, Some(20)).unwrap();
        log.log(&json!({"step": 25})).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let steps: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(steps, vec![10, 20, 25]);
    }

    #[test]
    fn a_fresh_run_starts_an_empty_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        std::fs::write(&path, "{\"step\": 1}\n").unwrap();
        MetricsLog::open(&path, None).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }
}
