//! A CT scan as a user gives it: a NIfTI file, a DICOM file or series
//! folder, or a DeepLesion series folder of 16-bit PNGs. One place decides
//! which it is and reads it as a [`Volume`] of HU, refusing 2D images and
//! scans larger than the caller allows before reading their voxels.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use uld_core::{Error, Location, Result, Volume};

use crate::deeplesion::{SeriesFolder, SeriesGeometry, read_dl_info};
use crate::dicom::{SeriesOptions, load_dicom_series, read_dicom_file};
use crate::nifti::{NiftiContent, read_nifti_auto, read_nifti_dims};
// The check lives in a leaf module that the DICOM series reader uses too.
pub use crate::voxel_limit::check_size;

/// What kind of input a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ScanKind {
    /// A `.nii` or `.nii.gz` file.
    Nifti,
    /// A single DICOM file.
    DicomFile,
    /// A folder of DICOM files.
    DicomSeries,
    /// A folder of DeepLesion `KKK.png` slices (`Images_png/PPPPPP_SS_RR`).
    DeepLesionSeries,
}

impl ScanKind {
    /// Decides from the path: a folder holding `KKK.png` files is a
    /// DeepLesion series, any other folder a DICOM series; a file named
    /// `.nii`/`.nii.gz` is NIfTI, an image file (PNG, JPEG, ...) is an error
    /// (a 2D image), any other file is read as DICOM.
    pub fn of(path: &Path) -> Result<Self> {
        if path.is_dir() {
            return Ok(if SeriesFolder::open(path).is_ok() {
                Self::DeepLesionSeries
            } else {
                Self::DicomSeries
            });
        }
        if !path.exists() {
            return Err(Error::data(Location::file(path), "no such file or folder"));
        }
        let name = file_name(path).to_ascii_lowercase();
        if name.ends_with(".nii") || name.ends_with(".nii.gz") {
            return Ok(Self::Nifti);
        }
        let image = [".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif"];
        if image.iter().any(|ext| name.ends_with(ext)) {
            return Err(Error::data(
                Location::file(path),
                "a 2D image file, not a CT volume: give a NIfTI file, a DICOM series folder \
                 or a DeepLesion series folder (the folder holding its KKK.png slices)",
            ));
        }
        Ok(Self::DicomFile)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Nifti => "NIfTI",
            Self::DicomFile => "DICOM file",
            Self::DicomSeries => "DICOM series",
            Self::DeepLesionSeries => "DeepLesion series",
        }
    }
}

/// How to read scans.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanOptions {
    /// Which series of a DICOM folder holding several.
    pub series_uid: Option<String>,
    /// Refuse a scan of more voxels than this, before reading its voxels.
    pub max_voxels: Option<u64>,
    /// Spacing (x, y, slice interval; mm) of a DeepLesion series folder,
    /// overriding its `uld_geometry.json` and `DL_info.csv`.
    pub spacing: Option<[f64; 3]>,
    /// Accept a single slice (by default a 2D image is an error).
    pub allow_single_slice: bool,
}

/// A scan read as a volume.
#[derive(Debug, Clone)]
pub struct Scan {
    pub path: PathBuf,
    pub kind: ScanKind,
    /// The file or folder name without `.nii`/`.nii.gz`/`.dcm`.
    pub name: String,
    /// Shared so that detection workers can read it without a copy.
    pub volume: Arc<Volume<i16>>,
    /// The DICOM series read, for DICOM inputs.
    pub series_uid: Option<String>,
    /// PNG number of slice 0, for DeepLesion series.
    pub first_png: Option<u32>,
}

/// Reads the scan at `path` (see [`ScanKind::of`]).
pub fn open_scan(path: &Path, options: &ScanOptions) -> Result<Scan> {
    let kind = ScanKind::of(path)?;
    let mut series_uid = None;
    let mut first_png = None;
    let volume = match kind {
        ScanKind::Nifti => {
            let dims = read_nifti_dims(path)?;
            check_2d(path, dims, options)?;
            check_size(path, dims, options.max_voxels)?;
            match read_nifti_auto(path)? {
                NiftiContent::Ct(volume) => volume,
                NiftiContent::Labels(_) => {
                    return Err(Error::data(
                        Location::file(path),
                        "a label map (its header says so, or it holds a few non-negative integer \
                         values only), not a CT in HU",
                    ));
                }
            }
        }
        ScanKind::DicomFile => read_dicom_file(path)?,
        ScanKind::DicomSeries => {
            let series = load_dicom_series(
                path,
                &SeriesOptions {
                    series_uid: options.series_uid.clone(),
                    max_voxels: options.max_voxels,
                    ..SeriesOptions::default()
                },
            )?;
            series_uid = Some(series.series_uid);
            series.volume
        }
        ScanKind::DeepLesionSeries => {
            let (volume, first) = read_deeplesion_series(path, options)?;
            first_png = Some(first);
            volume
        }
    };
    check_2d(path, volume.dims(), options)?;
    Ok(Scan {
        path: path.to_path_buf(),
        kind,
        name: scan_name(path),
        volume: Arc::new(volume),
        series_uid,
        first_png,
    })
}

fn check_2d(path: &Path, dims: [usize; 3], options: &ScanOptions) -> Result<()> {
    if dims[2] < 2 && !options.allow_single_slice {
        return Err(Error::data(
            Location::file(path),
            format!(
                "a 2D image ({} x {} pixels, 1 slice), not a volume: lesion detection needs the \
                 whole series (for DICOM, the folder holding all its slice files)",
                dims[0], dims[1]
            ),
        ));
    }
    Ok(())
}

/// The name outputs use for a scan: its file or folder name without the
/// extensions `.nii`, `.nii.gz` and `.dcm`.
pub fn scan_name(path: &Path) -> String {
    let name = file_name(path);
    let lower = name.to_ascii_lowercase();
    for ext in [".nii.gz", ".nii", ".dcm"] {
        if lower.ends_with(ext) && name.len() > ext.len() {
            return name[..name.len() - ext.len()].to_string();
        }
    }
    name
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// A DeepLesion series folder as a volume: every PNG number from the first
/// to the last must be present (a gap is an error naming the missing
/// files). Spacing comes from `options.spacing`, else the folder's
/// `uld_geometry.json` (which also gives the world transform), else the
/// series' row in a `DL_info*.csv` two folders up
/// (`ROOT/Images_png/PPPPPP_SS_RR`).
fn read_deeplesion_series(dir: &Path, options: &ScanOptions) -> Result<(Volume<i16>, u32)> {
    let folder = SeriesFolder::open(dir)?;
    let numbers: Vec<u32> = folder.numbers().collect();
    let (first, last) = (numbers[0], numbers[numbers.len() - 1]);
    let missing: Vec<u32> = (first..=last).filter(|n| !folder.contains(*n)).collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing
            .iter()
            .take(8)
            .map(|n| format!("{n:03}.png"))
            .collect();
        return Err(Error::data(
            Location::file(dir),
            format!(
                "missing slices: {} of the PNG numbers {first:03}-{last:03} are absent ({}{}); \
                 a volume needs every slice between its first and last",
                missing.len(),
                shown.join(", "),
                if missing.len() > shown.len() {
                    ", ..."
                } else {
                    ""
                }
            ),
        ));
    }
    let geometry = SeriesGeometry::read(dir)?;
    let spacing = match (options.spacing, &geometry) {
        (Some(s), _) => s,
        (None, Some(g)) => g.spacing_mm,
        (None, None) => spacing_from_dl_info(dir)?,
    };
    let size = folder.read(first)?;
    check_size(
        dir,
        [size.width, size.height, numbers.len()],
        options.max_voxels,
    )?;
    let read = folder.read_volume(spacing)?;
    let world = geometry.and_then(|g| g.world(first));
    let volume = match world {
        Some(w) => read.volume.with_world(w),
        None => read.volume,
    };
    Ok((volume, first))
}

fn spacing_from_dl_info(dir: &Path) -> Result<[f64; 3]> {
    let series = file_name(dir);
    let no_spacing = |why: String| {
        Error::data(
            Location::file(dir),
            format!(
                "no spacing for this DeepLesion series: {why}; give it with --spacing X,Y,Z (mm)"
            ),
        )
    };
    let root = dir.parent().and_then(Path::parent).unwrap_or(dir);
    let mut tables: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = file_name(p);
                    name.starts_with("DL_info") && name.ends_with(".csv") && p.is_file()
                })
                .collect()
        })
        .unwrap_or_default();
    tables.sort();
    if tables.is_empty() {
        return Err(no_spacing(format!(
            "no uld_geometry.json here and no DL_info*.csv in {}",
            root.display()
        )));
    }
    for table in &tables {
        if let Some(r) = read_dl_info(table)?
            .into_iter()
            .find(|r| r.series_id() == series)
        {
            return Ok(r.spacing);
        }
    }
    Err(no_spacing(format!(
        "no row of series {series} in {}",
        tables
            .iter()
            .map(|t| t.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deeplesion::{HuSlice, write_png_hu};

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("uld-scan-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn names_drop_volume_extensions_only() {
        assert_eq!(scan_name(Path::new("/a/lung.nii.gz")), "lung");
        assert_eq!(scan_name(Path::new("/a/lung.NII")), "lung");
        assert_eq!(scan_name(Path::new("/a/000001_01_01")), "000001_01_01");
        assert_eq!(scan_name(Path::new("/a/slice.dcm")), "slice");
        assert_eq!(scan_name(Path::new("/a/.nii")), ".nii");
    }

    #[test]
    fn a_deeplesion_folder_needs_spacing_and_reads_with_its_first_png() {
        let dir = temp_dir("dl").join("000001_01_01");
        std::fs::create_dir_all(&dir).unwrap();
        for (n, hu) in [(4u32, -100i16), (5, 0), (6, 100)] {
            let slice = HuSlice {
                width: 3,
                height: 2,
                hu: vec![hu; 6],
            };
            write_png_hu(dir.join(format!("{n:03}.png")), &slice).unwrap();
        }
        assert_eq!(ScanKind::of(&dir).unwrap(), ScanKind::DeepLesionSeries);
        let err = open_scan(&dir, &ScanOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--spacing"), "{err}");
        let options = ScanOptions {
            spacing: Some([0.7, 0.7, 2.5]),
            ..ScanOptions::default()
        };
        let scan = open_scan(&dir, &options).unwrap();
        assert_eq!(scan.first_png, Some(4));
        assert_eq!(scan.volume.dims(), [3, 2, 3]);
        assert_eq!(scan.volume.get(0, 0, 2), 100);
        assert!(scan.volume.world().is_none());
        // With a geometry sidecar the world transform follows PNG numbers.
        let world = uld_core::WorldTransform {
            matrix: [
                [0.7, 0.0, 0.0, 1.0],
                [0.0, 0.7, 0.0, 2.0],
                [0.0, 0.0, 2.5, 3.0],
            ],
            frame: uld_core::Frame::Lps,
        };
        SeriesGeometry::new([0.7, 0.7, 2.5], Some(&world), Path::new("src.dcm"))
            .write(&dir)
            .unwrap();
        let scan = open_scan(&dir, &ScanOptions::default()).unwrap();
        let w = scan.volume.world().unwrap();
        // Slice 0 is PNG 4, i.e. index 3 of the sidecar's matrix.
        assert_eq!(w.apply([0.0, 0.0, 0.0]), [1.0, 2.0, 3.0 + 3.0 * 2.5]);
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_real_deeplesion_folder_takes_its_spacing_from_the_dl_info_tables_beside_it() {
        let dir = uld_core::testdata::shared_data("deeplesion/Images_png/000016_02_01");
        let row = ["DL_info_val.csv", "DL_info_test.csv"]
            .iter()
            .flat_map(|t| {
                read_dl_info(uld_core::testdata::shared_data(&format!("deeplesion/{t}"))).unwrap()
            })
            .find(|r| r.series_id() == "000016_02_01")
            .unwrap();
        let options = ScanOptions {
            allow_single_slice: true,
            ..ScanOptions::default()
        };
        let scan = open_scan(&dir, &options).unwrap();
        assert_eq!(scan.volume.spacing(), row.spacing);
        assert_eq!(scan.first_png, Some(row.key_slice_png));
        // One key slice alone is a 2D image for detection.
        let err = open_scan(&dir, &ScanOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a 2D image (512 x 512 pixels, 1 slice)"),
            "{err}"
        );
    }

    #[test]
    fn image_files_and_missing_paths_are_errors_naming_them() {
        let dir = temp_dir("kinds");
        let png = dir.join("shot.PNG");
        std::fs::write(&png, b"x").unwrap();
        let err = ScanKind::of(&png).unwrap_err().to_string();
        assert!(
            err.contains("shot.PNG") && err.contains("2D image"),
            "{err}"
        );
        let err = ScanKind::of(&dir.join("none.nii")).unwrap_err().to_string();
        assert!(err.contains("none.nii: no such file"), "{err}");
        assert_eq!(ScanKind::of(&dir).unwrap(), ScanKind::DicomSeries);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
