//! The DeepLesion half of `uld info`: per table its statistics and skipped
//! rows, and what `Images_png/` holds.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use uld_core::{Error, Result};

use crate::deeplesion::{BadRows, DatasetStats, SeriesFolder, read_dl_info_with};

/// A DeepLesion root (every `DL_info*.csv` in it) or one table, and the
/// root's `Images_png/` when there is one.
#[derive(Debug, Clone, Serialize)]
pub struct DeepLesionSummary {
    pub path: PathBuf,
    pub tables: Vec<TableSummary>,
    pub images: Option<ImagesSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableSummary {
    pub file: PathBuf,
    /// The rows skipped (with `BadRows::Skip`), each naming its line and field.
    pub skipped_rows: Vec<String>,
    /// `None` when the table has no rows.
    pub stats: Option<DatasetStats>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImagesSummary {
    /// Series folders in `Images_png/`.
    pub series: usize,
    /// PNG slices in them.
    pub slices: usize,
    /// Key images named by the tables whose PNG exists / is missing.
    pub key_images_present: usize,
    pub key_images_missing: usize,
}

/// `DL_info*.csv` files directly inside a folder, sorted.
pub fn dl_info_tables(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut tables: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("DL_info") && n.ends_with(".csv"))
        })
        .collect();
    tables.sort();
    Ok(tables)
}

impl DeepLesionSummary {
    /// Summarises a table file, or a root folder's tables and images.
    pub fn of(path: &Path, bad_rows: BadRows) -> Result<Self> {
        let (root, table_paths) = if path.is_file() {
            let root = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            (root, vec![path.to_path_buf()])
        } else {
            let tables = dl_info_tables(path).map_err(|e| Error::io(path, e))?;
            (path.to_path_buf(), tables)
        };
        let mut tables = Vec::new();
        let mut key_images = BTreeSet::new();
        for file in table_paths {
            let info = read_dl_info_with(&file, bad_rows)?;
            key_images.extend(info.records.iter().map(|r| r.key_slice_path()));
            tables.push(TableSummary {
                file,
                skipped_rows: info.skipped.iter().map(ToString::to_string).collect(),
                stats: DatasetStats::of(&info.records),
            });
        }
        let images_dir = root.join("Images_png");
        let images = images_dir
            .is_dir()
            .then(|| ImagesSummary::of(&root, &images_dir, &key_images))
            .transpose()?;
        Ok(Self {
            path: path.to_path_buf(),
            tables,
            images,
        })
    }
}

impl ImagesSummary {
    /// Counts the series and slices of `images_dir` and which of
    /// `key_images` (paths relative to `root`) exist.
    pub fn of(root: &Path, images_dir: &Path, key_images: &BTreeSet<PathBuf>) -> Result<Self> {
        let mut series = 0;
        let mut slices = 0;
        for entry in std::fs::read_dir(images_dir).map_err(|e| Error::io(images_dir, e))? {
            let dir = entry.map_err(|e| Error::io(images_dir, e))?.path();
            if dir.is_dir() {
                series += 1;
                slices += SeriesFolder::open(&dir).map_or(0, |s| s.numbers().count());
            }
        }
        let present = key_images.iter().filter(|p| root.join(p).is_file()).count();
        Ok(Self {
            series,
            slices,
            key_images_present: present,
            key_images_missing: key_images.len() - present,
        })
    }
}

impl fmt::Display for DeepLesionSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "DeepLesion data at {}", self.path.display())?;
        for table in &self.tables {
            writeln!(f, "\n== {}", table.file.display())?;
            match &table.stats {
                Some(stats) => writeln!(f, "{stats}")?,
                None => writeln!(f, "no rows")?,
            }
            if !table.skipped_rows.is_empty() {
                writeln!(
                    f,
                    "{} rows skipped, the first: {}",
                    table.skipped_rows.len(),
                    table.skipped_rows[0]
                )?;
            }
        }
        if let Some(images) = &self.images {
            writeln!(
                f,
                "\n== Images_png: {} series, {} slices; key images of the tables: {} present, {} missing",
                images.series, images.slices, images.key_images_present, images.key_images_missing
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uld_core::testdata::shared_data;

    #[test]
    fn the_real_deeplesion_folder() {
        let s = DeepLesionSummary::of(&shared_data("deeplesion"), BadRows::Stop).unwrap();
        let names: Vec<String> = s
            .tables
            .iter()
            .map(|t| t.file.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "DL_info_partial_kaggle.csv",
                "DL_info_test.csv",
                "DL_info_val.csv"
            ]
        );
        let test = &s.tables[1];
        let stats = test.stats.as_ref().unwrap();
        assert_eq!(
            (stats.lesions, stats.key_images, stats.noisy_lesions),
            (4927, 4831, 15)
        );
        assert!(test.skipped_rows.is_empty());
        let images = s.images.as_ref().unwrap();
        assert_eq!((images.slices, images.key_images_present), (47, 47));
        let text = s.to_string();
        assert!(text.starts_with("DeepLesion data at "), "{text}");
        assert!(text.contains("\n== Images_png: "), "{text}");
        assert!(
            text.contains("47 slices; key images of the tables: 47 present"),
            "{text}"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["tables"][1]["stats"]["lesions"], 4927);
        assert_eq!(json["images"]["key_images_present"], 47);
    }

    #[test]
    fn a_table_alone_has_no_images_summary_unless_beside_them() {
        let tmp = tempfile::tempdir().unwrap();
        let table = tmp.path().join("DL_info.csv");
        std::fs::copy(shared_data("deeplesion/DL_info_val.csv"), &table).unwrap();
        let s = DeepLesionSummary::of(&table, BadRows::Stop).unwrap();
        assert_eq!(s.tables.len(), 1);
        assert!(s.images.is_none());
        assert!(!s.to_string().contains("Images_png"));
    }
}
