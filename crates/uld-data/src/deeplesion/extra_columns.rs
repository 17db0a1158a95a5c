//! `DL_info.csv` files with columns of their own after DeepLesion's (the
//! mined lesions of `uld mined`, the decisions of `uld review`): the rows,
//! and the named extra columns' cells beside them.

use std::path::Path;

use uld_core::{Error, Location, Result};

use crate::deeplesion::{LesionRecord, read_dl_info};

/// `uld mined`'s column: the teacher's score of the mined lesion.
pub const MINED_SCORE: &str = "Mined_score";
/// `uld mined`'s column on synthetic data: 1 for a real unlabelled lesion.
pub const UNLABELLED_LESION: &str = "Unlabelled_lesion";
/// The column of `uld review`'s decision ([`Verdict`]) in `reviewed.csv`.
pub const REVIEW_DECISION: &str = "Review_decision";

/// A reviewer's decision on a lesion, as `reviewed.csv` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Accepted,
    Rejected,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
        }
    }

    /// The verdict of a `Review_decision` cell at `at`.
    pub fn of_cell(cell: &str, at: Location) -> Result<Self> {
        match cell {
            "accepted" => Ok(Self::Accepted),
            "rejected" => Ok(Self::Rejected),
            other => Err(Error::data(
                at.field(REVIEW_DECISION),
                format!("`{other}` is neither accepted nor rejected"),
            )),
        }
    }
}

/// A row with its extra cells (in the order asked for; `None` for an
/// optional column the file lacks) and its line in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct RowWithExtras {
    pub record: LesionRecord,
    pub extras: Vec<Option<String>>,
    pub line: u64,
}

/// Reads `path` as `DL_info.csv` rows plus the cells of `required` and then
/// `optional` columns (trimmed), stopping at the first bad row.
pub fn read_dl_info_extras(
    path: &Path,
    required: &[&str],
    optional: &[&str],
) -> Result<Vec<RowWithExtras>> {
    let records = read_dl_info(path)?;
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    let headers = csv
        .headers()
        .map_err(|e| Error::data(Location::file(path).line(1), e.to_string()))?
        .clone();
    let position = |name: &str| headers.iter().position(|h| h.trim() == name);
    let mut at: Vec<Option<usize>> = Vec::new();
    for name in required {
        let i = position(name).ok_or_else(|| {
            Error::data(
                Location::file(path).line(1).field(*name),
                format!("missing column `{name}`"),
            )
        })?;
        at.push(Some(i));
    }
    at.extend(optional.iter().map(|name| position(name)));
    records
        .into_iter()
        .zip(csv.records())
        .map(|(record, row)| {
            let row = row.map_err(|e| Error::data(Location::file(path), e.to_string()))?;
            let extras = at
                .iter()
                .map(|i| i.map(|i| row.get(i).unwrap_or("").trim().to_string()))
                .collect();
            Ok(RowWithExtras {
                record,
                extras,
                line: row.position().map_or(0, |p| p.line()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deeplesion::write_dl_info_with;

    #[test]
    fn extra_columns_come_back_beside_their_rows() {
        let rows = read_dl_info(uld_core::testdata::shared_data(
            "deeplesion/DL_info_val.csv",
        ))
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mined.csv");
        let values = vec![vec!["0.9".to_string()], vec!["0.4".to_string()]];
        write_dl_info_with(&path, &rows[..2], &["Mined_score"], &values).unwrap();
        let back = read_dl_info_extras(&path, &["Mined_score"], &["Unlabelled_lesion"]).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].record, rows[1]);
        assert_eq!(back[1].extras, vec![Some("0.4".to_string()), None]);
        assert_eq!(back[1].line, 3);
        let err = read_dl_info_extras(&path, &["Review_decision"], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}, line 1, field `Review_decision`: missing column `Review_decision`",
                path.display()
            )
        );
    }
}
