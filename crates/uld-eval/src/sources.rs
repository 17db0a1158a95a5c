//! Ground truth from a file, the way `uld eval` and the Python package both
//! read it: which reader a protocol and file call for, and the key-slice
//! options (split, possibly-noisy lesions) applied to `DL_info.csv` rows.

use std::io::Read;
use std::path::Path;

use uld_core::{Error, Location, Result};
use uld_data::deeplesion::{LesionRecord, Split, read_dl_info};

use crate::gt::GroundTruth;
use crate::protocol::{KeySliceVariant, Protocol};
use crate::readers::{KeySliceRow, LensSplit, keyslice_ground_truth, read_harvester, read_lens};

/// How to read a ground-truth file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroundTruthOptions {
    /// keyslice: drop `Possibly_noisy` lesions (and the images left empty).
    pub drop_noisy: bool,
    /// keyslice: the `DL_info.csv` split; `None` reads every row.
    pub split: Option<Split>,
    /// lens: which part of the LENS file (a Lesion-Harvester file is read
    /// whole).
    pub lens_split: LensSplit,
}

impl GroundTruthOptions {
    /// The reference's choices: the test split, noisy lesions as `variant`
    /// treats them.
    pub fn new(variant: KeySliceVariant) -> Self {
        Self {
            drop_noisy: variant.drops_noisy(),
            split: Some(Split::Test),
            lens_split: LensSplit::Test,
        }
    }
}

/// Reads the ground truth of `protocol` from `path`: `DL_info.csv`
/// (keyslice), a Lesion-Harvester JSON (harvester; lens with `3D-Box.json`)
/// or the LENS JSON (lens).
pub fn read_ground_truth(
    protocol: Protocol,
    path: &Path,
    options: &GroundTruthOptions,
) -> Result<GroundTruth> {
    match protocol {
        Protocol::KeySlice => {
            let records = read_dl_info(path)?;
            let rows = keyslice_rows(&records, options.split);
            if rows.is_empty() {
                return Err(no_rows_in_split(
                    Location::file(path),
                    records.len(),
                    options.split,
                ));
            }
            Ok(keyslice_ground_truth(
                rows,
                options.drop_noisy,
                path.display().to_string(),
            ))
        }
        Protocol::Harvester => read_harvester(path),
        Protocol::Lens if is_lens_file(path)? => read_lens(path, options.lens_split),
        Protocol::Lens => read_harvester(path),
    }
}

/// The error of a table with `rows` rows, none in `split`.
pub fn no_rows_in_split(at: Location, rows: usize, split: Option<Split>) -> Error {
    Error::data(
        at,
        format!(
            "{rows} rows, none of them in the {} split: choose another split",
            split.map_or("chosen", Split::name)
        ),
    )
}

/// Whether `path` is the LENS file, whose top level is `{"val": .., "test": ..}`:
/// its first bytes tell.
pub fn is_lens_file(path: &Path) -> Result<bool> {
    let mut head = [0u8; 64];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| Error::io(path, e))?;
    let head: String = String::from_utf8_lossy(&head[..n])
        .split_whitespace()
        .collect();
    Ok(head.starts_with("{\"val\"") || head.starts_with("{\"test\""))
}

/// The key-slice rows of `records` in `split` (`None`: all of them).
pub fn keyslice_rows(records: &[LesionRecord], split: Option<Split>) -> Vec<KeySliceRow> {
    records
        .iter()
        .filter(|r| split.is_none_or(|s| r.split == s))
        .map(keyslice_row)
        .collect()
}

/// A `DL_info.csv` row as the `keyslice` protocol reads it.
pub fn keyslice_row(r: &LesionRecord) -> KeySliceRow {
    KeySliceRow {
        image: r.file_name.clone(),
        bbox: r.bbox,
        long_diameter_mm: r.long_diameter_mm(),
        lesion_type: r.lesion_type.name().to_string(),
        slice_interval_mm: r.slice_interval_mm(),
        possibly_noisy: r.possibly_noisy,
    }
}

#[cfg(test)]
mod tests {
    use uld_core::testdata::shared_data;

    use super::*;

    #[test]
    fn an_empty_split_is_an_error_naming_the_file() {
        // DL_info_val.csv holds the val split only.
        let path = shared_data("deeplesion/DL_info_val.csv");
        let options = GroundTruthOptions::new(KeySliceVariant::Mulan);
        let err = read_ground_truth(Protocol::KeySlice, &path, &options).unwrap_err();
        let rows = read_dl_info(&path).unwrap().len();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: {rows} rows, none of them in the test split: choose another split",
                path.display()
            )
        );
        let val = GroundTruthOptions {
            split: Some(Split::Val),
            ..options
        };
        let all = GroundTruthOptions {
            split: None,
            ..options
        };
        let a = read_ground_truth(Protocol::KeySlice, &path, &val).unwrap();
        let b = read_ground_truth(Protocol::KeySlice, &path, &all).unwrap();
        assert_eq!(a, b);
        assert!(!is_lens_file(&path).unwrap());
        let lens = shared_data("fully_annotated/lens/DeepLesion_manual_1K_test_release.json");
        assert!(is_lens_file(&lens).unwrap());
    }
}
