//! The lesions to review: `DL_info.csv` rows (as `uld mined` writes them,
//! with `Mined_score` and, on synthetic data, `Unlabelled_lesion`), best
//! score first.

use std::path::Path;

use uld_core::{Box2, Error, Location, Result};
use uld_data::deeplesion::{LesionRecord, MINED_SCORE, UNLABELLED_LESION, read_dl_info_extras};

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
    let rows = read_dl_info_extras(path, &[MINED_SCORE], &[UNLABELLED_LESION])?;
    let mut ranked = Vec::with_capacity(rows.len());
    for row in rows {
        let at = |field: &str| Location::file(path).line(row.line).field(field);
        let score_text = row.extras[0].as_deref().unwrap_or("");
        let score: f32 = score_text
            .parse()
            .ok()
            .filter(|s: &f32| s.is_finite())
            .ok_or_else(|| {
                Error::data(at(MINED_SCORE), format!("`{score_text}` is not a number"))
            })?;
        let real = match row.extras[1].as_deref() {
            None | Some("") => None,
            Some("1") => Some(true),
            Some("0") => Some(false),
            Some(other) => {
                return Err(Error::data(
                    at(UNLABELLED_LESION),
                    format!("`{other}` is not 0 or 1"),
                ));
            }
        };
        ranked.push((row.record, score, real));
    }
    Ok(rank(ranked))
}
