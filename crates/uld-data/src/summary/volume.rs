//! The volume half of `uld info`: what a user wants to know first about a
//! NIfTI file, a DICOM file or series folder, or a DeepLesion series folder.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use uld_core::{Error, Volume, WorldTransform};

use super::SummaryError;
use crate::dicom::{SeriesOptions, SliceOrder, load_dicom_series, read_dicom_file};
use crate::nifti::{NiftiContent, read_nifti_auto};
use crate::scan::{ScanKind, ScanOptions, open_scan};

/// A summary of one volume. Voxel indices are the source's array order
/// `(i, j, k)`, 0-based; world positions are mm in `frame`.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeSummary {
    pub path: PathBuf,
    pub format: String,
    /// `"ct"` (values in HU) or `"labels"` (a label map).
    pub content: &'static str,
    pub dims: [usize; 3],
    pub spacing_mm: [f64; 3],
    /// `dims x spacing`: the size the volume covers.
    pub extent_mm: [f64; 3],
    /// Smallest and largest HU (CT only).
    pub hu_range: Option<[i16; 2]>,
    /// Labelled voxels (label maps only).
    pub labels: Option<LabelSummary>,
    /// Where the volume sits in the world, when the source says.
    pub world: Option<WorldSummary>,
    /// Series details (DICOM folders only).
    pub series: Option<SeriesSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LabelSummary {
    /// Voxels with a label above 0.
    pub voxels: usize,
    pub volume_mm3: f64,
    /// Voxel count of each label above 0.
    pub per_label: BTreeMap<u16, usize>,
    /// Inclusive voxel-index box of the labelled voxels, `None` when there are none.
    pub box_voxels: Option<[[usize; 3]; 2]>,
    /// World positions of the box's first and last voxel centres.
    pub box_world_mm: Option<[[f64; 3]; 2]>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorldSummary {
    /// `"RAS"` or `"LPS"`: the meaning of +x, +y, +z.
    pub frame: &'static str,
    /// For each voxel axis (i, j, k), the anatomical direction it runs
    /// towards most: e.g. `"LPS"` = i to the left, j posterior, k superior.
    pub axis_directions: String,
    /// The voxel-to-world matrix, 3 rows of 4.
    pub matrix: [[f64; 4]; 3],
    /// The 8 corner voxel centres and their world positions.
    pub corners: Vec<Corner>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Corner {
    pub voxel: [usize; 3],
    pub world_mm: [f64; 3],
}

#[derive(Debug, Clone, Serialize)]
pub struct SeriesSummary {
    pub series_uid: String,
    pub slice_files: usize,
    /// How the slices were ordered.
    pub order: SliceOrder,
    /// Files in the folder that are not DICOM.
    pub skipped_files: Vec<PathBuf>,
}

fn is_gzip(path: &Path) -> uld_core::Result<bool> {
    use std::io::Read;
    let mut start = [0u8; 2];
    let n = std::fs::File::open(path)
        .and_then(|mut file| file.read(&mut start))
        .map_err(|e| Error::io(path, e))?;
    Ok(n == 2 && start == [0x1f, 0x8b])
}

impl VolumeSummary {
    /// Reads `path` (a `.nii`/`.nii.gz` file, a DICOM file, a folder holding
    /// DICOM series or a DeepLesion series folder, told apart by
    /// [`ScanKind::of`]) and summarises it; `series_uid` picks one series of a
    /// DICOM folder that holds several (the error for such a folder lists them).
    pub fn of(path: &Path, series_uid: Option<&str>) -> Result<Self, SummaryError> {
        match ScanKind::of(path)? {
            ScanKind::DicomSeries => {
                let options = SeriesOptions {
                    series_uid: series_uid.map(str::to_string),
                    ..SeriesOptions::default()
                };
                let series = load_dicom_series(path, &options)?;
                let mut summary = Self::ct(path, "DICOM series", &series.volume);
                summary.series = Some(SeriesSummary {
                    series_uid: series.series_uid,
                    slice_files: series.files.len(),
                    order: series.order,
                    skipped_files: series.skipped,
                });
                Ok(summary)
            }
            ScanKind::Nifti => {
                let format = if is_gzip(path)? {
                    "NIfTI-1 (gzip)"
                } else {
                    "NIfTI-1"
                };
                Ok(match read_nifti_auto(path)? {
                    NiftiContent::Ct(volume) => Self::ct(path, format, &volume),
                    NiftiContent::Labels(volume) => Self::labels(path, format, &volume),
                })
            }
            ScanKind::DeepLesionSeries => {
                let options = ScanOptions {
                    allow_single_slice: true,
                    ..ScanOptions::default()
                };
                let scan = open_scan(path, &options)?;
                Ok(Self::ct(path, "DeepLesion series", &scan.volume))
            }
            ScanKind::DicomFile => {
                let volume = read_dicom_file(path).map_err(|source| SummaryError::NotDicom {
                    path: path.to_path_buf(),
                    source: Box::new(source),
                })?;
                Ok(Self::ct(path, "DICOM file", &volume))
            }
        }
    }

    fn base<T: Copy>(path: &Path, format: &str, content: &'static str, v: &Volume<T>) -> Self {
        let dims = v.dims();
        let spacing = v.spacing();
        Self {
            path: path.to_path_buf(),
            format: format.to_string(),
            content,
            dims,
            spacing_mm: spacing,
            extent_mm: std::array::from_fn(|a| dims[a] as f64 * spacing[a]),
            hu_range: None,
            labels: None,
            world: v.world().map(|w| WorldSummary::of(w, dims)),
            series: None,
        }
    }

    fn ct(path: &Path, format: &str, v: &Volume<i16>) -> Self {
        let (lo, hi) = v.value_range();
        Self {
            hu_range: Some([lo, hi]),
            ..Self::base(path, format, "ct", v)
        }
    }

    fn labels(path: &Path, format: &str, v: &Volume<u16>) -> Self {
        let mut per_label = BTreeMap::new();
        for &label in v.data().iter().filter(|&&l| l > 0) {
            *per_label.entry(label).or_insert(0) += 1;
        }
        let voxels = per_label.values().sum();
        let voxel_mm3 = v.spacing().iter().product::<f64>();
        let bounds = v.bounds_where(|l| l > 0).map(|(lo, hi, _)| [lo, hi]);
        let box_world_mm = bounds.and_then(|[lo, hi]| {
            let w = v.world()?;
            Some([lo, hi].map(|p| w.apply(p.map(|c| c as f64))))
        });
        Self {
            labels: Some(LabelSummary {
                voxels,
                volume_mm3: voxels as f64 * voxel_mm3,
                per_label,
                box_voxels: bounds,
                box_world_mm,
            }),
            ..Self::base(path, format, "labels", v)
        }
    }
}

impl WorldSummary {
    fn of(w: &WorldTransform, dims: [usize; 3]) -> Self {
        let corners = (0..8)
            .map(|bits: usize| {
                let voxel: [usize; 3] =
                    std::array::from_fn(|a| if bits >> a & 1 == 1 { dims[a] - 1 } else { 0 });
                Corner {
                    voxel,
                    world_mm: w.apply(voxel.map(|c| c as f64)),
                }
            })
            .collect();
        Self {
            frame: w.frame.name(),
            axis_directions: w.axis_codes(),
            matrix: w.matrix,
            corners,
        }
    }
}

fn triple<T: fmt::Display>(v: [T; 3], sep: &str) -> String {
    format!("{}{sep}{}{sep}{}", v[0], v[1], v[2])
}

fn mm(v: [f64; 3]) -> String {
    format!("({:.2}, {:.2}, {:.2})", v[0], v[1], v[2])
}

impl fmt::Display for VolumeSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {}", self.format, self.path.display())?;
        let content = if self.content == "ct" {
            "CT (HU)"
        } else {
            "label map"
        };
        writeln!(f, "  content     {content}")?;
        writeln!(
            f,
            "  dims        {} voxels (i x j x k)",
            triple(self.dims, " x ")
        )?;
        let spacing = self.spacing_mm.map(|s| format!("{s:.4}"));
        writeln!(f, "  spacing     {} mm", triple(spacing, " x "))?;
        let extent = self.extent_mm.map(|s| format!("{s:.1}"));
        writeln!(f, "  extent      {} mm", triple(extent, " x "))?;
        if let Some([lo, hi]) = self.hu_range {
            writeln!(f, "  HU range    {lo} .. {hi}")?;
        }
        if let Some(labels) = &self.labels {
            let per_label: Vec<String> = labels
                .per_label
                .iter()
                .map(|(l, n)| format!("{l}: {n}"))
                .collect();
            writeln!(
                f,
                "  labelled    {} voxels, {:.1} mm^3 (per label {{{}}})",
                labels.voxels,
                labels.volume_mm3,
                per_label.join(", ")
            )?;
            if let Some([lo, hi]) = labels.box_voxels {
                writeln!(
                    f,
                    "  label box   i {}-{}, j {}-{}, k {}-{} (voxel indices, inclusive)",
                    lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]
                )?;
            }
            if let (Some([a, b]), Some(world)) = (labels.box_world_mm, &self.world) {
                writeln!(f, "  label box   {} to {} mm {}", mm(a), mm(b), world.frame)?;
            }
        }
        match &self.world {
            Some(world) => {
                writeln!(
                    f,
                    "  frame       {}; voxel axes i, j, k run towards {}",
                    world.frame,
                    world
                        .axis_directions
                        .chars()
                        .map(String::from)
                        .collect::<Vec<_>>()
                        .join(", ")
                )?;
                // First and last corner: opposite ends of the volume (all 8 in --json).
                for corner in [world.corners.first(), world.corners.last()]
                    .into_iter()
                    .flatten()
                {
                    writeln!(
                        f,
                        "  corner      voxel {} at {} mm",
                        triple(corner.voxel, ", "),
                        mm(corner.world_mm)
                    )?;
                }
            }
            None => writeln!(f, "  frame       none: the source gives no position")?,
        }
        if let Some(series) = &self.series {
            writeln!(f, "  series      {}", series.series_uid)?;
            writeln!(
                f,
                "  slices      {} files, ordered by {:?}",
                series.slice_files, series.order
            )?;
            if !series.skipped_files.is_empty() {
                let names: Vec<String> = series
                    .skipped_files
                    .iter()
                    .map(|p| {
                        p.file_name().map_or_else(
                            || p.display().to_string(),
                            |n| n.to_string_lossy().into_owned(),
                        )
                    })
                    .collect();
                writeln!(
                    f,
                    "  skipped     {} non-DICOM files: {}",
                    names.len(),
                    names.join(", ")
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uld_core::testdata::shared_data;

    #[test]
    fn lung_mask_summary() {
        let s = VolumeSummary::of(&shared_data("ct/lung1_label.nii.gz"), None).unwrap();
        assert_eq!(s.format, "NIfTI-1 (gzip)");
        assert_eq!(s.content, "labels");
        assert_eq!(s.dims, [512, 512, 48]);
        let labels = s.labels.as_ref().unwrap();
        assert_eq!(labels.voxels, 837);
        assert_eq!(labels.per_label, BTreeMap::from([(1, 837)]));
        assert_eq!(labels.box_voxels, Some([[206, 347, 32], [229, 372, 34]]));
        // 837 voxels of 0.5703125 x 0.5703125 x 5 mm.
        assert!((labels.volume_mm3 - 837.0 * 0.5703125 * 0.5703125 * 5.0).abs() < 1e-6);
        let world = s.world.as_ref().unwrap();
        // nibabel: aff2axcodes = ('L', 'P', 'S'); last corner (-145.43, 33.57, -542.5).
        assert_eq!(
            (world.frame, world.axis_directions.as_str()),
            ("RAS", "LPS")
        );
        assert_eq!(world.corners.len(), 8);
        let last = world.corners.last().unwrap();
        assert_eq!(last.voxel, [511, 511, 47]);
        for (a, e) in last.world_mm.iter().zip([-145.4296875, 33.5703125, -542.5]) {
            assert!((a - e).abs() < 1e-6, "{:?}", last.world_mm);
        }
        let text = s.to_string();
        assert!(
            text.contains("label box   i 206-229, j 347-372, k 32-34"),
            "{text}"
        );
        assert!(text.contains("837 voxels"), "{text}");
        assert!(serde_json::to_value(&s).unwrap()["labels"]["voxels"] == 837);
    }

    #[test]
    fn lung_ct_summary() {
        let s = VolumeSummary::of(&shared_data("ct/lung1_image.nii.gz"), None).unwrap();
        assert_eq!(s.content, "ct");
        assert_eq!(s.hu_range, Some([-1024, 3071]));
        assert!(s.to_string().contains("HU range    -1024 .. 3071"));
    }

    #[test]
    fn dicom_file_and_folder_summaries() {
        let s = VolumeSummary::of(&shared_data("dicom/CT_small.dcm"), None).unwrap();
        assert_eq!(s.format, "DICOM file");
        assert_eq!(s.hu_range, Some([-896, 1167]));
        assert_eq!(s.world.as_ref().unwrap().axis_directions, "LPS");

        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        std::fs::copy(shared_data("dicom/WG04_CT1_RLE"), dir.join("slice.dcm")).unwrap();
        std::fs::write(dir.join("notes.txt"), "x").unwrap();
        let s = VolumeSummary::of(&dir, None).unwrap();
        assert_eq!(s.format, "DICOM series");
        assert_eq!(s.dims, [512, 512, 1]);
        assert_eq!(s.hu_range, Some([-3024, 1254]));
        let series = s.series.as_ref().unwrap();
        assert_eq!(series.slice_files, 1);
        assert_eq!(series.skipped_files, [dir.join("notes.txt")]);
        assert!(
            s.to_string()
                .contains("skipped     1 non-DICOM files: notes.txt")
        );

        // The shared folder mixes three series; one can be picked.
        let err = VolumeSummary::of(&shared_data("dicom"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mixes 3 series"), "{err}");
        let uid = "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322";
        let s = VolumeSummary::of(&shared_data("dicom"), Some(uid)).unwrap();
        assert_eq!(s.dims, [128, 128, 1]);
    }

    #[test]
    fn other_files_are_errors_naming_them() {
        let err = VolumeSummary::of(&shared_data("deeplesion/DL_info_test.csv"), None).unwrap_err();
        assert!(matches!(err, SummaryError::NotDicom { .. }), "{err:?}");
        // As the CLI prints it: the error, then its source.
        let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(
            text.contains("DL_info_test.csv") && text.contains("not a DICOM file"),
            "{text}"
        );
        let err = VolumeSummary::of(Path::new("/nonexistent/x.nii"), None).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/x.nii"));
    }
}
