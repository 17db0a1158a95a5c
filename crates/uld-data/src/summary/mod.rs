//! What a user wants to know first about a dataset or a scan (`uld info`):
//! a DeepLesion root or table ([`DeepLesionSummary`]: counts per split,
//! lesions per image, sizes, slice intervals, noisy and skipped rows,
//! which key images exist) or one volume ([`VolumeSummary`]: a NIfTI CT or
//! label map, a DICOM file or series, a DeepLesion series folder). Each
//! summary prints as text ([`std::fmt::Display`]) and serialises as JSON.

pub mod deeplesion;
pub mod volume;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use deeplesion::{DeepLesionSummary, ImagesSummary, TableSummary, dl_info_tables};
pub use volume::{Corner, LabelSummary, SeriesSummary, VolumeSummary, WorldSummary};

use crate::deeplesion::BadRows;

/// Why a summary could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// Reading the data failed (the error names the file).
    #[error(transparent)]
    Read(#[from] uld_core::Error),
    /// A file that is neither NIfTI by its name nor a DICOM file.
    #[error("{} is not a .nii/.nii.gz file, so it was read as DICOM", path.display())]
    NotDicom {
        path: PathBuf,
        #[source]
        source: Box<uld_core::Error>,
    },
}

/// The choices of a summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SummaryOptions {
    /// Table rows that do not parse: stop at the first, or skip and count them.
    pub bad_rows: BadRows,
    /// In a DICOM folder holding several series, the one to read.
    pub series_uid: Option<String>,
}

/// A summary of whatever `path` is. Serialises as the summary it holds.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Summary {
    DeepLesion(DeepLesionSummary),
    Volume(Box<VolumeSummary>),
}

impl Summary {
    /// Summarises `path`: DeepLesion data when [`is_deeplesion`] says so,
    /// else one volume ([`VolumeSummary::of`]).
    pub fn of(path: &Path, options: &SummaryOptions) -> Result<Self, SummaryError> {
        Ok(if is_deeplesion(path) {
            Self::DeepLesion(DeepLesionSummary::of(path, options.bad_rows)?)
        } else {
            Self::Volume(Box::new(VolumeSummary::of(
                path,
                options.series_uid.as_deref(),
            )?))
        })
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DeepLesion(s) => s.fmt(f),
            Self::Volume(s) => s.fmt(f),
        }
    }
}

/// Whether `path` is DeepLesion data: a `.csv` file, or a folder holding
/// `Images_png/` or a `DL_info*.csv`.
pub fn is_deeplesion(path: &Path) -> bool {
    if path.is_file() {
        return path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    }
    path.join("Images_png").is_dir() || !dl_info_tables(path).unwrap_or_default().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uld_core::testdata::shared_data;

    #[test]
    fn a_path_is_summarised_as_what_it_is() {
        let options = SummaryOptions::default();
        let root = shared_data("deeplesion");
        assert!(is_deeplesion(&root));
        assert!(is_deeplesion(&root.join("DL_info_test.csv")));
        assert!(!is_deeplesion(&shared_data("ct/lung1_image.nii.gz")));
        assert!(!is_deeplesion(&shared_data("dicom")));
        let s = Summary::of(&shared_data("ct/lung1_label.nii.gz"), &options).unwrap();
        let Summary::Volume(v) = &s else {
            panic!("a NIfTI file is a volume")
        };
        // The JSON and text of the enum are the inner summary's.
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            serde_json::to_value(v).unwrap()
        );
        assert_eq!(s.to_string(), v.to_string());
        let s = Summary::of(&root.join("DL_info_val.csv"), &options).unwrap();
        assert!(matches!(s, Summary::DeepLesion(_)));
    }
}
