//! The reviewer's decisions and `reviewed.csv`, rewritten atomically after
//! each one: `DL_info.csv` rows (the accepted box and lesion type) with
//! `Review_decision` (`accepted` / `rejected`), `Reviewer`, `Review_time`,
//! `Review_candidate` (the candidate's key) and `Mined_score`. Started
//! again, a review reads the file back and resumes; rows of candidates that
//! are no longer listed are kept as they were.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use uld_core::{Box2, Location, Result};
use uld_data::deeplesion::{
    LesionRecord, LesionType, MINED_SCORE, REVIEW_DECISION, Verdict, read_dl_info_extras,
    record_for_box, write_dl_info_with,
};

use crate::candidates::Candidate;

/// The columns `reviewed.csv` adds to `DL_info.csv`'s.
pub const COLUMNS: [&str; 5] = [
    REVIEW_DECISION,
    "Reviewer",
    "Review_time",
    "Review_candidate",
    MINED_SCORE,
];

/// One decision on a candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The box as the reviewer left it (0-based pixels).
    pub bbox: Box2,
    pub lesion_type: LesionType,
    pub reviewer: String,
    /// RFC 3339, UTC, seconds.
    pub time: String,
}

impl Decision {
    pub fn now(verdict: Verdict, bbox: Box2, lesion_type: LesionType, reviewer: &str) -> Self {
        Self {
            verdict,
            bbox,
            lesion_type,
            reviewer: reviewer.to_string(),
            time: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        }
    }
}

/// A second tab changed the candidate since this one loaded it.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub current_version: u64,
}

/// Every decision of one review, by candidate id, and its file.
#[derive(Debug)]
pub struct Review {
    path: PathBuf,
    decisions: Vec<Option<Decision>>,
    /// Bumped by every change, so that a stale tab cannot overwrite a
    /// newer decision.
    versions: Vec<u64>,
    /// Rows of `reviewed.csv` whose candidate is not in this review.
    kept: Vec<(LesionRecord, Vec<String>)>,
}

impl Review {
    /// The review of `candidates` saved at `path`, resumed when the file
    /// exists.
    pub fn open(path: &Path, candidates: &[Candidate]) -> Result<Self> {
        let mut review = Self {
            path: path.to_path_buf(),
            decisions: vec![None; candidates.len()],
            versions: vec![0; candidates.len()],
            kept: Vec::new(),
        };
        if path.exists() {
            review.resume(candidates)?;
        }
        Ok(review)
    }

    fn resume(&mut self, candidates: &[Candidate]) -> Result<()> {
        let path = self.path.clone();
        let rows = read_dl_info_extras(&path, &COLUMNS, &[])?;
        let by_key: std::collections::HashMap<String, usize> =
            candidates.iter().map(|c| (c.key(), c.id)).collect();
        for row in rows {
            let values: Vec<String> = row
                .extras
                .into_iter()
                .map(Option::unwrap_or_default)
                .collect();
            let verdict = Verdict::of_cell(&values[0], Location::file(&path).line(row.line))?;
            match by_key.get(&values[3]) {
                Some(&id) => {
                    self.decisions[id] = Some(Decision {
                        verdict,
                        bbox: row.record.bbox,
                        lesion_type: row.record.lesion_type,
                        reviewer: values[1].clone(),
                        time: values[2].clone(),
                    });
                    self.versions[id] = 1;
                }
                None => self.kept.push((row.record, values)),
            }
        }
        Ok(())
    }

    pub fn decision(&self, id: usize) -> Option<&Decision> {
        self.decisions.get(id).and_then(Option::as_ref)
    }

    pub fn version(&self, id: usize) -> u64 {
        self.versions.get(id).copied().unwrap_or(0)
    }

    /// How many candidates have a decision.
    pub fn decided(&self) -> usize {
        self.decisions.iter().flatten().count()
    }

    /// Sets (or with `None` clears) the decision on candidate `id`, if the
    /// caller saw version `seen`, and saves the file; the new version.
    pub fn decide(
        &mut self,
        candidates: &[Candidate],
        id: usize,
        seen: u64,
        decision: Option<Decision>,
    ) -> Result<std::result::Result<u64, Conflict>> {
        if self.versions[id] != seen {
            return Ok(Err(Conflict {
                current_version: self.versions[id],
            }));
        }
        let before = std::mem::replace(&mut self.decisions[id], decision);
        if let Err(e) = self.save(candidates) {
            // Nothing is decided that is not on disk.
            self.decisions[id] = before;
            return Err(e);
        }
        self.versions[id] += 1;
        Ok(Ok(self.versions[id]))
    }

    /// Writes `reviewed.csv` atomically: the decided candidates in review
    /// order, then the kept rows.
    fn save(&self, candidates: &[Candidate]) -> Result<()> {
        let mut records = Vec::new();
        let mut values = Vec::new();
        for (c, d) in candidates.iter().zip(&self.decisions) {
            let Some(d) = d else { continue };
            let mut record = if d.bbox == c.record.bbox {
                c.record.clone()
            } else {
                record_for_box(&c.record, &d.bbox)
            };
            record.lesion_type = d.lesion_type;
            records.push(record);
            values.push(vec![
                d.verdict.name().to_string(),
                d.reviewer.clone(),
                d.time.clone(),
                c.key(),
                format!("{:.4}", c.score),
            ]);
        }
        for (record, v) in &self.kept {
            records.push(record.clone());
            values.push(v.clone());
        }
        write_dl_info_with(&self.path, &records, &COLUMNS, &values)
    }
}
