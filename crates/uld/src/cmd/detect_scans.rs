//! `uld detect SCAN... --model M --out DIR`: lesion detection on users' own
//! CT scans (NIfTI files, DICOM series folders, DeepLesion series folders),
//! one scan in memory at a time.
//!
//! Out layout: `detections.csv` (every scan, the detection CSV `uld eval`
//! reads; key = scan name, z = 0-based slice of the scan), `<scan>.json`
//! (lesions in voxel indices and world mm), with `--label-map`
//! `<scan>_boxes.nii.gz`, with `--overlays` `<scan>/lesion_NN_slice_KKK.png`.
//! A scan that cannot be read or run is reported and skipped; the others
//! are still processed, and the command fails at the end if any did.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use uld_data::scan::{Scan, ScanOptions, open_scan};
use uld_eval::DetectionSet;
use uld_train::TrainedDetector;
use uld_train::scan::detect_scan;
use uld_train::validate::{DetectSettings, push_tracklets};

use super::scan_outputs::{write_label_map, write_overlays};
use super::scan_report::{Lesion, ScanReport};

/// The options of scan mode (ignored with `--data`).
#[derive(Args, Debug, Clone)]
pub struct ScanArgs {
    /// Only these slices (0-based, inclusive ranges), e.g. `10-40` or `0-5,20`.
    #[arg(long, value_parser = parse_slices)]
    pub slices: Option<SliceList>,
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
    /// Lesions at least this confident go into the label map and overlays
    /// (the CSV and JSON keep every detection).
    #[arg(long, default_value_t = 0.5)]
    pub view_score: f32,
    /// At most this many overlays per scan (best lesions first).
    #[arg(long, default_value_t = 20)]
    pub max_overlays: usize,
}

/// 0-based slice indices, ascending, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceList(pub Vec<usize>);

/// Parses `10-40,50` into the slice list `10..=40, 50` (sorted, deduplicated).
pub fn parse_slices(s: &str) -> Result<SliceList, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let number = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{t}` in `{s}` is not a slice number (0-based)"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if b < a {
                    return Err(format!("`{part}`: the range ends before it starts"));
                }
                out.extend(a..=b);
            }
            None => out.push(number(part)?),
        }
    }
    if out.is_empty() {
        return Err("no slices given".into());
    }
    out.sort_unstable();
    out.dedup();
    Ok(SliceList(out))
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

/// What one scan produced.
struct ScanResult {
    lesions: usize,
    slices: usize,
    files: Vec<PathBuf>,
}

/// Runs every scan, writes the outputs, and fails if any scan failed.
pub fn run(
    scans: &[PathBuf],
    args: &ScanArgs,
    trained: &TrainedDetector,
    settings: &DetectSettings,
    out: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let options = ScanOptions {
        series_uid: args.series.clone(),
        max_voxels: Some(args.max_volume_mb.saturating_mul(1 << 20) / 2),
        spacing: args.spacing,
        allow_single_slice: false,
    };
    let mut set = DetectionSet::new();
    let mut names = HashSet::new();
    let mut failed = Vec::new();
    for (k, path) in scans.iter().enumerate() {
        eprintln!("[{}/{}] {}", k + 1, scans.len(), path.display());
        let result = open_scan(path, &options)
            .map_err(anyhow::Error::from)
            .and_then(|mut scan| {
                scan.name = unique_name(&scan.name, &mut names);
                run_scan(&scan, args, trained, settings, out, &mut set)
                    .with_context(|| format!("{}", path.display()))
            });
        match result {
            Ok(r) => println!(
                "{}: {} lesions on {} slices -> {}",
                path.display(),
                r.lesions,
                r.slices,
                r.files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => {
                eprintln!("error: {e:#}");
                failed.push(path.display().to_string());
            }
        }
    }
    let csv = out.join("detections.csv");
    set.write(&csv)?;
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

/// `name`, or `name_2`, `name_3`, ... when an earlier scan took it.
fn unique_name(name: &str, taken: &mut HashSet<String>) -> String {
    let mut candidate = name.to_string();
    let mut n = 1;
    while !taken.insert(candidate.clone()) {
        n += 1;
        candidate = format!("{name}_{n}");
    }
    candidate
}

fn run_scan(
    scan: &Scan,
    args: &ScanArgs,
    trained: &TrainedDetector,
    settings: &DetectSettings,
    out: &Path,
    set: &mut DetectionSet,
) -> anyhow::Result<ScanResult> {
    let depth = scan.volume.depth();
    let slices: Vec<usize> = match &args.slices {
        Some(SliceList(s)) => {
            if let Some(bad) = s.iter().find(|&&z| z >= depth) {
                anyhow::bail!(
                    "--slices names slice {bad}, but the scan has slices 0-{}",
                    depth - 1
                );
            }
            s.clone()
        }
        None => (0..depth).collect(),
    };
    let bar = ProgressBar::new(slices.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} slices ({per_sec}, eta {eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(scan.name.clone());
    let (tracklets, orientation) = detect_scan(
        &trained.detector,
        scan.volume.clone(),
        &slices,
        settings,
        &mut |done| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    let report = ScanReport::new(scan, slices.clone(), &tracklets, orientation);
    let mut files = Vec::new();
    let json = out.join(format!("{}.json", scan.name));
    report.write(&json)?;
    files.push(json);
    let shown: Vec<&Lesion> = report
        .lesions
        .iter()
        .filter(|l| l.score >= args.view_score)
        .collect();
    if args.label_map {
        let path = out.join(format!("{}_boxes.nii.gz", scan.name));
        write_label_map(&path, &scan.volume, &shown)?;
        files.push(path);
    }
    if args.overlays {
        let best = &shown[..shown.len().min(args.max_overlays)];
        let dir = out.join(&scan.name);
        let written = write_overlays(&dir, &scan.volume, orientation, best)?;
        if !written.is_empty() {
            files.push(dir);
        }
    }
    // Only a scan whose files were all written joins the CSV.
    push_tracklets(set, &scan.name, &tracklets);
    Ok(ScanResult {
        lesions: report.lesions.len(),
        slices: slices.len(),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_lists_parse_ranges_and_reject_nonsense() {
        assert_eq!(parse_slices("3-5,1,4").unwrap().0, vec![1, 3, 4, 5]);
        assert!(parse_slices("5-3").unwrap_err().contains("ends before"));
        assert!(
            parse_slices("a")
                .unwrap_err()
                .contains("not a slice number")
        );
        assert!(parse_slices("").is_err());
        assert_eq!(parse_spacing("0.7,0.7,5").unwrap(), [0.7, 0.7, 5.0]);
        assert!(parse_spacing("0.7,0,5").is_err());
    }

    #[test]
    fn repeated_scan_names_get_a_number() {
        let mut taken = HashSet::new();
        assert_eq!(unique_name("ct", &mut taken), "ct");
        assert_eq!(unique_name("ct", &mut taken), "ct_2");
        assert_eq!(unique_name("ct", &mut taken), "ct_3");
    }
}
