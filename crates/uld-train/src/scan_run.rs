//! Detection on users' own CT scans (`uld detect SCAN... --out DIR`), one
//! scan in memory at a time: each scan is opened, detected
//! ([`detect_scan`]) and its files written into the out folder
//! ([`crate::scan_outputs`]); [`ScanRun::finish`] writes the detection CSV
//! of every scan that succeeded.
//!
//! Out layout: `detections.csv` (every scan, the detection CSV `uld eval`
//! reads; key = scan name, z = 0-based slice of the scan), `<scan>.json`
//! (lesions in voxel indices and world mm), with a label map
//! `<scan>_boxes.nii.gz`, with overlays `<scan>/lesion_NN_slice_KKK.png`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use uld_core::{Error, Result};
use uld_data::scan::{Scan, ScanOptions, open_scan};
use uld_eval::DetectionSet;
use uld_eval::scan_detections::{Lesion, ScanReport};
use uld_model::Detector;

use crate::detect::DetectSettings;
use crate::scan::{SliceRanges, detect_scan};
use crate::scan_outputs::{scan_report, write_label_map, write_overlays};
use crate::validate::push_tracklets;

/// Which files a scan gets beside its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanOutputOptions {
    /// `<scan>_boxes.nii.gz`, a label map of the lesions' boxes.
    pub label_map: bool,
    /// Overlay PNGs of each lesion's best slice.
    pub overlays: bool,
    /// Lesions at least this confident go into the label map and overlays
    /// (the CSV and JSON keep every detection).
    pub view_score: f32,
    /// At most this many overlays per scan (best lesions first).
    pub max_overlays: usize,
}

impl Default for ScanOutputOptions {
    fn default() -> Self {
        Self {
            label_map: false,
            overlays: false,
            view_score: 0.5,
            max_overlays: 20,
        }
    }
}

/// What one scan produced.
#[derive(Debug, Clone)]
pub struct ScanDetections {
    /// Everything the scan's JSON holds.
    pub report: ScanReport,
    /// The files written: the JSON, then the label map and the overlay
    /// folder where asked for (and, for overlays, where any was written).
    pub files: Vec<PathBuf>,
}

impl ScanDetections {
    /// The lesions reaching the view score, best first.
    pub fn confident(&self, view_score: f32) -> Vec<&Lesion> {
        self.report.confident(view_score).collect()
    }
}

/// The slices of `scan` that `ranges` names (all without ranges).
pub fn chosen_slices(scan: &Scan, ranges: Option<&SliceRanges>) -> Result<Vec<usize>> {
    let depth = scan.volume.depth();
    match ranges {
        Some(r) => r.resolve(depth),
        None => Ok((0..depth).collect()),
    }
}

/// `name`, or `name_2`, `name_3`, ... when an earlier scan took it.
pub fn unique_name(name: &str, taken: &mut HashSet<String>) -> String {
    let mut candidate = name.to_string();
    let mut n = 1;
    while !taken.insert(candidate.clone()) {
        n += 1;
        candidate = format!("{name}_{n}");
    }
    candidate
}

/// Scans detected into one out folder.
pub struct ScanRun {
    out: PathBuf,
    names: HashSet<String>,
    set: DetectionSet,
}

impl ScanRun {
    /// A run writing into `out` (created when missing).
    pub fn new(out: &Path) -> Result<Self> {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        Ok(Self {
            out: out.to_path_buf(),
            names: HashSet::new(),
            set: DetectionSet::new(),
        })
    }

    /// Opens the scan at `path`, named so that no earlier scan of this run
    /// has its name (its files are named after it).
    pub fn open(&mut self, path: &Path, options: &ScanOptions) -> Result<Scan> {
        let mut scan = open_scan(path, options)?;
        scan.name = unique_name(&scan.name, &mut self.names);
        Ok(scan)
    }

    /// Detects on `slices` of `scan` (0-based, ascending; see
    /// [`chosen_slices`]) and writes its files; only a scan whose files were
    /// all written joins the CSV. `progress` is told how many slices are done.
    pub fn detect(
        &mut self,
        scan: &Scan,
        slices: Vec<usize>,
        detector: &dyn Detector,
        settings: &DetectSettings,
        outputs: &ScanOutputOptions,
        progress: &mut dyn FnMut(usize),
    ) -> Result<ScanDetections> {
        let (tracklets, orientation) =
            detect_scan(detector, scan.volume.clone(), &slices, settings, progress)?;
        let report = scan_report(scan, slices, &tracklets, orientation);
        let mut files = Vec::new();
        let json = self.out.join(format!("{}.json", scan.name));
        report.write(&json)?;
        files.push(json);
        let shown: Vec<&Lesion> = report.confident(outputs.view_score).collect();
        if outputs.label_map {
            let path = self.out.join(format!("{}_boxes.nii.gz", scan.name));
            write_label_map(&path, &scan.volume, &shown)?;
            files.push(path);
        }
        if outputs.overlays {
            let best = &shown[..shown.len().min(outputs.max_overlays)];
            let dir = self.out.join(&scan.name);
            let written = write_overlays(&dir, &scan.volume, orientation, best)?;
            if !written.is_empty() {
                files.push(dir);
            }
        }
        push_tracklets(&mut self.set, &scan.name, &tracklets);
        Ok(ScanDetections { report, files })
    }

    /// Writes `detections.csv` with the boxes of every scan detected, and
    /// returns its path.
    pub fn finish(self) -> Result<PathBuf> {
        let csv = self.out.join("detections.csv");
        self.set.write(&csv)?;
        Ok(csv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_scan_names_get_a_number() {
        let mut taken = HashSet::new();
        assert_eq!(unique_name("ct", &mut taken), "ct");
        assert_eq!(unique_name("ct", &mut taken), "ct_2");
        assert_eq!(unique_name("ct", &mut taken), "ct_3");
        assert_eq!(unique_name("ct_2", &mut taken), "ct_2_2");
    }

    #[test]
    fn chosen_slices_are_all_or_the_ranges_within_the_scan() {
        let path = uld_core::testdata::shared_data("ct/lung1_image.nii.gz");
        let tmp = tempfile::tempdir().unwrap();
        let mut run = ScanRun::new(&tmp.path().join("out")).unwrap();
        assert!(tmp.path().join("out").is_dir());
        let scan = run.open(&path, &ScanOptions::default()).unwrap();
        assert_eq!(scan.name, "lung1_image");
        assert_eq!(
            chosen_slices(&scan, None).unwrap(),
            (0..48).collect::<Vec<_>>()
        );
        let r = SliceRanges::parse("40-47,3").unwrap();
        assert_eq!(
            chosen_slices(&scan, Some(&r)).unwrap(),
            [3, 40, 41, 42, 43, 44, 45, 46, 47]
        );
        let r = SliceRanges::parse("0-99999999999").unwrap();
        let err = chosen_slices(&scan, Some(&r)).unwrap_err().to_string();
        assert!(err.contains("it has 48 slices (0-47)"), "{err}");
        // The same file again gets a name of its own.
        assert_eq!(
            run.open(&path, &ScanOptions::default()).unwrap().name,
            "lung1_image_2"
        );
    }
}
