//! A folder of DICOM files as one volume: finding the series, ordering its
//! slices and checking that they form a regular grid.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use uld_core::{Error, Location, Result, Volume};

use super::header::{self, Read, SliceHeader, dot};
use super::{pixels, transform};

/// How to read a series folder.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesOptions {
    /// Read only the files of this `SeriesInstanceUID`; needed when the
    /// folder holds several series.
    pub series_uid: Option<String>,
    /// How far one slice interval may differ from the series' median
    /// interval, as a fraction of it (at least 0.001 mm). Default 0.01.
    pub interval_tolerance: f64,
    /// Refuse a series of more voxels than this, before decoding any pixels.
    pub max_voxels: Option<u64>,
}

impl Default for SeriesOptions {
    fn default() -> Self {
        Self {
            series_uid: None,
            interval_tolerance: 0.01,
            max_voxels: None,
        }
    }
}

/// How the slices of a series were put in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SliceOrder {
    /// A single slice.
    Single,
    /// By `ImagePositionPatient` projected on the slice normal, ascending.
    Position,
    /// By `InstanceNumber` (the files lack positions); no world transform.
    InstanceNumber,
}

/// A series read from a folder.
#[derive(Debug, Clone)]
pub struct DicomSeries {
    pub volume: Volume<i16>,
    pub series_uid: String,
    /// The slice files in volume order: slice `z` came from `files[z]`.
    pub files: Vec<PathBuf>,
    /// Files in the folder that are not DICOM and were skipped.
    pub skipped: Vec<PathBuf>,
    pub order: SliceOrder,
}

/// One series found in a folder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SeriesListing {
    pub series_uid: String,
    pub files: usize,
}

/// The series in a folder with their file counts, sorted by UID.
pub fn list_dicom_series(dir: impl AsRef<Path>) -> Result<Vec<SeriesListing>> {
    let (slices, _) = scan(dir.as_ref())?;
    Ok(group(slices)
        .into_iter()
        .map(|(series_uid, files)| SeriesListing {
            series_uid,
            files: files.len(),
        })
        .collect())
}

/// Reads one series of the DICOM files directly inside `dir`. Files that are
/// not DICOM are skipped (and listed) when at least one DICOM file is there.
pub fn load_dicom_series(dir: impl AsRef<Path>, options: &SeriesOptions) -> Result<DicomSeries> {
    let dir = dir.as_ref();
    let (slices, skipped) = scan(dir)?;
    let (series_uid, slices) = select(dir, group(slices), options.series_uid.as_deref())?;
    check_same_grid(&slices)?;
    let layout = arrange(dir, slices, options.interval_tolerance)?;
    let first = &layout.slices[0];
    let [sx, sy] = first.xy_spacing()?;
    let dims = [first.cols, first.rows, layout.slices.len()];
    crate::voxel_limit::check_size(dir, dims, options.max_voxels)?;

    let decoded: Vec<Vec<i16>> = layout
        .slices
        .par_iter()
        .map(|slice| {
            let object = header::open(&slice.path, Read::Everything)?;
            pixels::decode_hu(&object, slice)
        })
        .collect::<Result<_>>()?;
    let volume = Volume::new(dims, [sx, sy, layout.z_spacing], decoded.concat())
        .map_err(|e| Error::data(Location::file(dir), e.to_string()))?;
    let volume = match layout.world {
        Some(p) => volume.with_world(transform(p.origin, p.axes, [sx, sy], p.step)),
        None => volume,
    };
    Ok(DicomSeries {
        volume,
        series_uid,
        files: layout.slices.into_iter().map(|s| s.path).collect(),
        skipped,
        order: layout.order,
    })
}

/// Headers of the DICOM files directly in `dir` (sorted by name) and the
/// files that are not DICOM.
fn scan(dir: &Path) -> Result<(Vec<SliceHeader>, Vec<PathBuf>)> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(Error::data(
            Location::file(dir),
            "no files: expected DICOM slices",
        ));
    }
    let mut slices = Vec::new();
    let mut skipped = Vec::new();
    for path in files {
        if header::is_dicom(&path)? {
            let object = header::open(&path, Read::Header)?;
            slices.push(SliceHeader::from_object(&path, &object)?);
        } else {
            skipped.push(path);
        }
    }
    if slices.is_empty() {
        let names: Vec<String> = skipped.iter().take(5).map(|p| file_name(p)).collect();
        return Err(Error::data(
            Location::file(dir),
            format!(
                "no DICOM files among its {} files ({}{}): none has the `DICM` marker",
                skipped.len(),
                names.join(", "),
                if skipped.len() > names.len() {
                    ", ..."
                } else {
                    ""
                }
            ),
        ));
    }
    Ok((slices, skipped))
}

fn group(slices: Vec<SliceHeader>) -> BTreeMap<String, Vec<SliceHeader>> {
    let mut groups: BTreeMap<String, Vec<SliceHeader>> = BTreeMap::new();
    for slice in slices {
        groups
            .entry(slice.series_uid.clone())
            .or_default()
            .push(slice);
    }
    groups
}

fn select(
    dir: &Path,
    mut groups: BTreeMap<String, Vec<SliceHeader>>,
    wanted: Option<&str>,
) -> Result<(String, Vec<SliceHeader>)> {
    let listing = groups
        .iter()
        .map(|(uid, files)| format!("{uid} ({} files)", files.len()))
        .collect::<Vec<_>>()
        .join(", ");
    match wanted {
        Some(uid) => match groups.remove(uid) {
            Some(slices) => Ok((uid.to_string(), slices)),
            None => Err(Error::data(
                Location::file(dir).field("SeriesInstanceUID"),
                format!("no series {uid} here; the folder holds {}", listing),
            )),
        },
        None if groups.len() == 1 => groups.pop_first().ok_or_else(|| unreachable_empty(dir)),
        None => Err(Error::data(
            Location::file(dir).field("SeriesInstanceUID"),
            format!(
                "the folder mixes {} series: {}; choose one by its UID (`--series UID` on the command line)",
                groups.len(),
                listing
            ),
        )),
    }
}

fn unreachable_empty(dir: &Path) -> Error {
    Error::data(Location::file(dir), "no DICOM series")
}

/// Every slice must have the first one's size, pixel spacing and orientation.
fn check_same_grid(slices: &[SliceHeader]) -> Result<()> {
    let first = &slices[0];
    for slice in &slices[1..] {
        let differs = |field: &str, theirs: String, ours: String| {
            Err(Error::data(
                Location::file(&slice.path).field(field),
                format!(
                    "{theirs}, but {} in the same series has {ours}",
                    first.file_name()
                ),
            ))
        };
        if (slice.rows, slice.cols) != (first.rows, first.cols) {
            return differs(
                "Rows",
                format!("{}x{} pixels", slice.rows, slice.cols),
                format!("{}x{}", first.rows, first.cols),
            );
        }
        if !close(
            slice.pixel_spacing.map(Vec::from),
            first.pixel_spacing.map(Vec::from),
            1e-4,
        ) {
            return differs(
                "PixelSpacing",
                format!("{:?}", slice.pixel_spacing),
                format!("{:?}", first.pixel_spacing),
            );
        }
        let flat = |o: Option<[[f64; 3]; 2]>| o.map(|o| o.concat());
        if !close(flat(slice.orientation), flat(first.orientation), 1e-3) {
            return differs(
                "ImageOrientationPatient",
                format!("{:?}", slice.orientation),
                format!("{:?}", first.orientation),
            );
        }
    }
    Ok(())
}

fn close(a: Option<Vec<f64>>, b: Option<Vec<f64>>, tol: f64) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= tol),
        (None, None) => true,
        _ => false,
    }
}

/// Where slice 0 sits and how the grid runs, in LPS mm.
struct Placement {
    origin: [f64; 3],
    /// Unit directions of a row (x) and of a column (y).
    axes: [[f64; 3]; 2],
    /// From one slice's origin to the next one's.
    step: [f64; 3],
}

/// The slices in volume order with the slice interval and, when positions
/// are known, their placement.
struct Layout {
    slices: Vec<SliceHeader>,
    z_spacing: f64,
    world: Option<Placement>,
    order: SliceOrder,
}

fn arrange(dir: &Path, mut slices: Vec<SliceHeader>, tolerance: f64) -> Result<Layout> {
    if slices.len() == 1 {
        let slice = &slices[0];
        let z_spacing = slice.nominal_z_spacing().ok_or_else(|| {
            Error::data(
                Location::file(&slice.path).field("SliceThickness"),
                "missing: a single slice needs SliceThickness or SpacingBetweenSlices",
            )
        })?;
        let world = slice
            .world_axes()
            .map(|(origin, [row, col, normal])| Placement {
                origin,
                axes: [row, col],
                step: normal.map(|v| v * z_spacing),
            });
        return Ok(Layout {
            slices,
            z_spacing,
            world,
            order: SliceOrder::Single,
        });
    }
    let all_placed = slices.iter().all(|s| s.world_axes().is_some());
    if let Some((_, axes)) = slices[0].world_axes().filter(|_| all_placed) {
        return by_position(dir, slices, axes, tolerance);
    }
    if let Some(slice) = slices.iter().find(|s| s.instance_number.is_none()) {
        return Err(Error::data(
            Location::file(&slice.path).field("ImagePositionPatient"),
            "cannot order the slices: this file has neither a position (ImagePositionPatient and \
             ImageOrientationPatient) nor an InstanceNumber",
        ));
    }
    slices.sort_by_key(|s| s.instance_number);
    for pair in slices.windows(2) {
        if pair[0].instance_number == pair[1].instance_number {
            return Err(Error::data(
                Location::file(dir).field("InstanceNumber"),
                format!(
                    "{} and {} share InstanceNumber {:?} and have no positions to order them by",
                    pair[0].file_name(),
                    pair[1].file_name(),
                    pair[0].instance_number.unwrap_or_default()
                ),
            ));
        }
    }
    let z_spacing = slices[0].nominal_z_spacing().ok_or_else(|| {
        Error::data(
            Location::file(&slices[0].path).field("SpacingBetweenSlices"),
            "missing: without positions the slice interval must come from SpacingBetweenSlices or SliceThickness",
        )
    })?;
    Ok(Layout {
        slices,
        z_spacing,
        world: None,
        order: SliceOrder::InstanceNumber,
    })
}

/// Sorts by position along the slice normal and checks the intervals are even.
fn by_position(
    dir: &Path,
    slices: Vec<SliceHeader>,
    [row, col, normal]: [[f64; 3]; 3],
    tolerance: f64,
) -> Result<Layout> {
    let mut keyed: Vec<(f64, SliceHeader)> = slices
        .into_iter()
        .map(|s| (s.position.map_or(0.0, |p| dot(p, normal)), s))
        .collect();
    keyed.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then(a.1.instance_number.cmp(&b.1.instance_number))
    });
    let n = keyed.len();
    let gaps: Vec<f64> = keyed.windows(2).map(|p| p[1].0 - p[0].0).collect();
    // Each gap is compared with the median one, so the odd gap is the one named.
    let mut sorted_gaps = gaps.clone();
    sorted_gaps.sort_by(f64::total_cmp);
    let typical = sorted_gaps[sorted_gaps.len() / 2];
    let allowed = (tolerance * typical).max(1e-3);
    for (z, (pair, &gap)) in keyed.windows(2).zip(&gaps).enumerate() {
        let names = format!("{} and {}", pair[0].1.file_name(), pair[1].1.file_name());
        if gap < 1e-3 {
            return Err(Error::data(
                Location::file(dir).slice(z),
                format!(
                    "slices {z} and {} ({names}) are at the same position along the slice normal",
                    z + 1
                ),
            ));
        }
        if (gap - typical).abs() > allowed {
            return Err(Error::data(
                Location::file(dir).slice(z),
                format!(
                    "uneven slice spacing: slices {z} and {} ({names}) are {gap:.4} mm apart, the \
                     series' median interval is {typical:.4} mm (tolerance {allowed:.4} mm); is a slice missing?",
                    z + 1
                ),
            ));
        }
    }
    let mean = (keyed[n - 1].0 - keyed[0].0) / (n - 1) as f64;
    let first = keyed[0].1.position.unwrap_or_default();
    let last = keyed[n - 1].1.position.unwrap_or_default();
    // The actual step between slice origins: equal to `normal * mean` unless
    // the gantry was tilted, where it keeps world positions exact.
    let step = std::array::from_fn(|a| (last[a] - first[a]) / (n - 1) as f64);
    Ok(Layout {
        slices: keyed.into_iter().map(|(_, s)| s).collect(),
        z_spacing: mean,
        world: Some(Placement {
            origin: first,
            axes: [row, col],
            step,
        }),
        order: SliceOrder::Position,
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
