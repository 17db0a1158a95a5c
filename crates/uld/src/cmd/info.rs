//! `uld info PATH`: what a user wants to know first about a dataset or scan.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use uld_data::deeplesion::{BadRows, DatasetStats, SeriesFolder, read_dl_info_with};

use super::info_volume;

#[derive(Args)]
pub struct InfoArgs {
    /// A DeepLesion root (holding DL_info*.csv and/or Images_png/), a DL_info
    /// csv, a NIfTI file (.nii, .nii.gz), a DICOM file or a DICOM series folder.
    path: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Skip table rows that do not parse (they are counted) instead of stopping.
    #[arg(long)]
    skip_bad_rows: bool,
    /// In a DICOM folder holding several series, the SeriesInstanceUID to read.
    #[arg(long, value_name = "UID")]
    series: Option<String>,
}

pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let bad_rows = if args.skip_bad_rows {
        BadRows::Skip
    } else {
        BadRows::Stop
    };
    if is_deeplesion(&args.path) {
        let summary = DeepLesionSummary::of(&args.path, bad_rows)?;
        print(&summary, args.json)
    } else {
        let summary = info_volume::summarize(&args.path, args.series.as_deref())?;
        print(&summary, args.json)
    }
}

fn print(summary: &(impl Serialize + fmt::Display), json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(summary)?);
    } else {
        println!("{summary}");
    }
    Ok(())
}

fn is_deeplesion(path: &Path) -> bool {
    if path.is_file() {
        return path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    }
    path.join("Images_png").is_dir() || !dl_info_tables(path).unwrap_or_default().is_empty()
}

/// `DL_info*.csv` files directly inside a folder, sorted.
fn dl_info_tables(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
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

#[derive(Serialize)]
struct DeepLesionSummary {
    path: PathBuf,
    tables: Vec<TableSummary>,
    images: Option<ImagesSummary>,
}

#[derive(Serialize)]
struct TableSummary {
    file: PathBuf,
    skipped_rows: Vec<String>,
    stats: Option<DatasetStats>,
}

#[derive(Serialize)]
struct ImagesSummary {
    series: usize,
    slices: usize,
    /// Key images named by the tables whose PNG exists / is missing.
    key_images_present: usize,
    key_images_missing: usize,
}

impl DeepLesionSummary {
    fn of(path: &Path, bad_rows: BadRows) -> anyhow::Result<Self> {
        let (root, table_paths) = if path.is_file() {
            let root = path.parent().unwrap_or(Path::new(".")).to_path_buf();
            (root, vec![path.to_path_buf()])
        } else {
            let tables =
                dl_info_tables(path).with_context(|| format!("cannot list {}", path.display()))?;
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
    fn of(root: &Path, images_dir: &Path, key_images: &BTreeSet<PathBuf>) -> anyhow::Result<Self> {
        let mut series = 0;
        let mut slices = 0;
        for entry in std::fs::read_dir(images_dir)
            .with_context(|| format!("cannot list {}", images_dir.display()))?
        {
            let dir = entry?.path();
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
