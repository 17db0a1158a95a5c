//! `uld detect SCAN... --model M --out DIR`: lesion detection on users' own
//! CT scans (NIfTI files, DICOM series folders, DeepLesion series folders),
//! one scan in memory at a time ([`uld_train::scan_run`]: the pipeline and
//! the out layout). A scan that cannot be read or run is reported and
//! skipped; the others are still processed, and the command fails at the
//! end if any did.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use uld_data::scan::ScanOptions;
use uld_model::Detector;
use uld_train::TrainedDetector;
use uld_train::detect::DetectSettings;
use uld_train::scan::SliceRanges;
use uld_train::scan_run::{ScanDetections, ScanOutputOptions, ScanRun, chosen_slices};
use uld_train::shard::Shard;

/// Lesions named with slice and score in a scan's line.
const TOP_LESIONS: usize = 3;

/// The options of scan mode (ignored with `--data`).
#[derive(Args, Debug, Clone)]
pub struct ScanArgs {
    /// Only these slices (0-based, inclusive ranges), e.g. `10-40` or `0-5,20`.
    #[arg(long, value_parser = parse_slices)]
    pub slices: Option<SliceRanges>,
    /// Which series of a DICOM folder holding several.
    #[arg(long)]
    pub series: Option<String>,
    /// Refuse scans whose voxels take more than this many MiB as 16-bit HU.
    #[arg(long, default_value_t = 4096)]
    pub max_volume_mb: u64,
    /// Spacing `X,Y,Z` in mm of DeepLesion series folders that have neither
    /// a uld_geometry.json nor a row in a DL_info*.csv two folders up.
    #[arg(long, value_parser = parse_spacing)]
    pub spacing: Option<[f64; 3]>,
    /// Also write `<scan>_boxes.nii.gz`, a label map of the lesions' boxes.
    #[arg(long)]
    pub label_map: bool,
    /// Also write overlay PNGs of each lesion's best slice.
    #[arg(long)]
    pub overlays: bool,
    /// Lesions at least this confident are counted as lesions in the
    /// summary and go into the label map and overlays (the CSV and JSON
    /// keep every detection).
    #[arg(long, default_value_t = 0.5)]
    pub view_score: f32,
    /// At most this many overlays per scan (best lesions first).
    #[arg(long, default_value_t = 20)]
    pub max_overlays: usize,
    /// Only the K-th of N interleaved parts of the scan list (scans K,
    /// K + N, ...; 1-based), for job arrays: each job writes its own --out,
    /// and the parts' detections.csv files merge by concatenation.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    Shard::parse(s).map_err(|e| match e {
        uld_core::Error::Invalid { message, .. } => message,
        other => other.to_string(),
    })
}

/// `--slices`: the message of [`SliceRanges::parse`]'s error.
fn parse_slices(s: &str) -> Result<SliceRanges, String> {
    SliceRanges::parse(s).map_err(|e| match e {
        uld_core::Error::Invalid { message, .. } => message,
        other => other.to_string(),
    })
}

fn parse_spacing(s: &str) -> Result<[f64; 3], String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("`{s}` is not three numbers X,Y,Z"))?;
    match v.as_slice() {
        [x, y, z] if v.iter().all(|a| a.is_finite() && *a > 0.0) => Ok([*x, *y, *z]),
        _ => Err(format!("`{s}` is not three positive numbers X,Y,Z (mm)")),
    }
}

/// Runs every scan, writes the outputs, and fails if any scan failed.
pub fn run<D: Detector>(
    scans: &[PathBuf],
    args: &ScanArgs,
    trained: &TrainedDetector<D>,
    settings: &DetectSettings,
    out: &Path,
) -> anyhow::Result<()> {
    let mut run = ScanRun::new(out)?;
    let options = ScanOptions {
        series_uid: args.series.clone(),
        max_voxels: Some(args.max_volume_mb.saturating_mul(1 << 20) / 2),
        spacing: args.spacing,
        allow_single_slice: false,
    };
    let outputs = ScanOutputOptions {
        label_map: args.label_map,
        overlays: args.overlays,
        view_score: args.view_score,
        max_overlays: args.max_overlays,
    };
    let scans = match args.shard {
        Some(shard) => {
            let part = shard.take(scans);
            println!(
                "shard {}/{}: {} of {} scans",
                shard.index,
                shard.count,
                part.len(),
                scans.len()
            );
            part
        }
        None => scans.to_vec(),
    };
    let mut failed = Vec::new();
    for (k, path) in scans.iter().enumerate() {
        eprintln!("[{}/{}] {}", k + 1, scans.len(), path.display());
        let result = run
            .open(path, &options)
            .map_err(anyhow::Error::from)
            .and_then(|scan| {
                // errors of opening name the file themselves
                let detected = (|| {
                    let slices = chosen_slices(&scan, args.slices.as_ref())?;
                    let bar = slice_bar(slices.len(), &scan.name);
                    let done = run.detect(
                        &scan,
                        slices,
                        &trained.detector,
                        settings,
                        &outputs,
                        &mut |n| bar.set_position(n as u64),
                    );
                    bar.finish_and_clear();
                    Ok::<_, anyhow::Error>(done?)
                })();
                detected.with_context(|| format!("{}", path.display()))
            });
        match result {
            Ok(r) => println!("{}", scan_line(path, &r, args.view_score)),
            Err(e) => {
                eprintln!("error: {e:#}");
                failed.push(path.display().to_string());
            }
        }
    }
    let csv = run.finish()?;
    println!(
        "{} of {} scans done, {} failed; detections of all scans in {}",
        scans.len() - failed.len(),
        scans.len(),
        failed.len(),
        csv.display()
    );
    anyhow::ensure!(
        failed.is_empty(),
        "{} of {} scans failed: {}",
        failed.len(),
        scans.len(),
        failed.join(", ")
    );
    Ok(())
}

fn slice_bar(len: usize, name: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} slices ({per_sec}, eta {eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(name.to_string());
    bar
}

/// A scan's line: how many lesions reach the view score and the best few,
/// then how many candidates the files keep, and the files.
fn scan_line(path: &Path, r: &ScanDetections, view_score: f32) -> String {
    let report = &r.report;
    let confident = r.confident(view_score);
    let slices = report.scan.slices_detected.len();
    let head = match confident.len() {
        0 => format!("no lesion with score >= {view_score} on {slices} slices"),
        1 => format!("1 lesion with score >= {view_score} on {slices} slices"),
        n => format!("{n} lesions with score >= {view_score} on {slices} slices"),
    };
    let best = if confident.is_empty() {
        report
            .lesions
            .first()
            .map(|l| {
                format!(
                    " (best candidate: slice {}, score {:.3})",
                    l.best_slice, l.score
                )
            })
            .unwrap_or_default()
    } else {
        let top: Vec<String> = confident
            .iter()
            .take(TOP_LESIONS)
            .map(|l| format!("slice {} ({:.3})", l.best_slice, l.score))
            .collect();
        format!(
            ", best: {}{}",
            top.join(", "),
            if confident.len() > TOP_LESIONS {
                ", ..."
            } else {
                ""
            }
        )
    };
    format!(
        "{}: {head}{best}; {} candidates in all, every one kept in the JSON and CSV for evaluation -> {}",
        path.display(),
        report.lesions.len(),
        r.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_and_spacing_options_parse_or_say_why_not() {
        assert_eq!(
            parse_slices("3-5,1,4").unwrap().resolve(6).unwrap(),
            vec![1, 3, 4, 5]
        );
        assert!(
            parse_slices("5-3")
                .unwrap_err()
                .starts_with("`5-3`: the range ends before")
        );
        assert!(parse_slices("").is_err());
        assert_eq!(parse_spacing("0.7,0.7,5").unwrap(), [0.7, 0.7, 5.0]);
        assert!(parse_spacing("0.7,0,5").is_err());
    }
}
