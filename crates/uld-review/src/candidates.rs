//! The lesions to review: `DL_info.csv` rows (as `uld mined` writes them,
//! with `Mined_score` and, on synthetic data, `Unlabelled_lesion`), best
//! score first.

use std::path::Path;

use uld_core::{Box2, Error, Location, Result};
use uld_data::deeplesion::{LesionRecord, read_dl_info};

/// One lesion a reviewer decides on.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Position in the review, best score first; what the page and the
    /// image requests name it by.
    pub id: usize,
    /// The row as mined: key image, box, DICOM windows, spacing.
    pub record: LesionRecord,
    pub score: f32,
    /// Whether it is a real unlabelled lesion, where the dataset knows.
    pub real: Option<bool>,
}

impl Candidate {
    /// Names the candidate across restarts and re-mined lists: its key image
    /// and mined box, `PPPPPP_SS_RR_KKK.png@x1,y1,x2,y2` (0-based pixels,
    /// one decimal).
    pub fn key(&self) -> String {
        candidate_key(&self.record.file_name, &self.record.bbox)
    }
}

pub fn candidate_key(file_name: &str, b: &Box2) -> String {
    format!(
        "{file_name}@{:.1},{:.1},{:.1},{:.1}",
        b.x1, b.y1, b.x2, b.y2
    )
}

/// Orders `rows` with their scores and truth flags into candidates, best
/// score first (ties keep file order).
pub fn rank(rows: Vec<(LesionRecord, f32, Option<bool>)>) -> Vec<Candidate> {
    let mut rows = rows;
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    rows.into_iter()
        .enumerate()
        .map(|(id, (record, score, real))| Candidate {
            id,
            record,
            score,
            real,
        })
        .collect()
}

/// Reads a mined-lesion file: `DL_info.csv` columns plus `Mined_score`
/// (required) and `Unlabelled_lesion` (optional, 1/0).
pub fn read_mined(path: &Path) -> Result<Vec<Candidate>> {
    let records = read_dl_info(path)?;
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| Error::data(Location::file(path), e.to_string()))?;
    let headers = csv
        .headers()
        .map_err(|e| Error::data(Location::file(path).line(1), e.to_string()))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let score_at = column("Mined_score").ok_or_else(|| {
        Error::data(
            Location::file(path).line(1).field("Mined_score"),
            "missing column `Mined_score`: give the file `uld mined` writes",
        )
    })?;
    let real_at = column("Unlabelled_lesion");
    let mut rows = Vec::with_capacity(records.len());
    for (record, row) in records.into_iter().zip(csv.records()) {
        let row = row.map_err(|e| Error::data(Location::file(path), e.to_string()))?;
        let line = row.position().map_or(0, |p| p.line());
        let cell = |i: usize| row.get(i).unwrap_or("").trim();
        let at = |field: &str| Location::file(path).line(line).field(field);
        let score: f32 = cell(score_at)
            .parse()
            .ok()
            .filter(|s: &f32| s.is_finite())
            .ok_or_else(|| {
                Error::data(
                    at("Mined_score"),
                    format!("`{}` is not a number", cell(score_at)),
                )
            })?;
        let real = match real_at.map(cell) {
            None | Some("") => None,
            Some("1") => Some(true),
            Some("0") => Some(false),
            Some(other) => {
                return Err(Error::data(
                    at("Unlabelled_lesion"),
                    format!("`{other}` is not 0 or 1"),
                ));
            }
        };
        rows.push((record, score, real));
    }
    Ok(rank(rows))
}
