//! Writing a CT volume (and optionally its label map) into the DeepLesion
//! layout, so users can train on their own annotated scans.
//!
//! Choices, each as DeepLesion does where it has a convention:
//! - orientation: the volume is re-indexed (flips and axis swaps, no
//!   resampling, see [`AxisMap::to_lps`]) so PNG columns run towards the
//!   patient's left, rows towards posterior (anterior at the top) and PNG
//!   numbers towards superior; a volume without a world transform keeps
//!   its array order;
//! - slices: every slice is written as `KKK.png` (16-bit, HU + 32768), `KKK`
//!   = 0-based slice index + 1; spacing and the world transform of the
//!   re-indexed volume go to `uld_geometry.json` beside them;
//! - lesions: each connected component of the label map (6-connected, one
//!   label value) is one `DL_info.csv` row. Its key slice is the slice where
//!   it has most pixels (the lowest of equals); `Measurement_coordinates`
//!   are RECIST axes measured on that slice's pixels (the synthetic
//!   generator's [`SectionMask::recist`]: longest boundary-to-boundary
//!   diameter, then the longest chord perpendicular to it);
//!   `Bounding_boxes` is the component's pixel extent on the key slice
//!   (pixel centres) padded by 5 px, clipped to the image;
//!   `Lesion_diameters_Pixel_` the RECIST lengths in pixels;
//!   `Normalized_lesion_location` is the box centre over the image size and
//!   the key slice over the slice count (not DeepLesion's body-part
//!   regression); `Slice_range` is the key slice +-30 mm, clipped to the
//!   volume (what DeepLesion ships around a key slice);
//!   `Coarse_lesion_type` -1 (unknown) unless given, `Possibly_noisy` 0,
//!   `DICOM_windows` -160, 240 (soft tissue), gender and age empty.
//! - `DL_info.csv` is appended to when it exists (rows of other series are
//!   kept); a series that is already there is an error.

use std::path::{Path, PathBuf};

use uld_core::{Box2, Error, Location, Result, Volume};

use super::{
    Gender, HuSlice, LesionRecord, LesionType, SeriesGeometry, Split, png_name, read_dl_info,
    series_id, write_dl_info, write_png_hu,
};
use crate::components::{Component, components};
use crate::recist::{SectionMask, padded_within};
use crate::reorient::AxisMap;

/// DeepLesion ships about this many mm of neighbours on each side of a key slice.
const SHIPPED_MM: f64 = 30.0;
const SOFT_TISSUE_WINDOW: [f32; 2] = [-160.0, 240.0];

/// Where the series goes in the dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertOptions {
    /// `None`: one more than the largest patient index in `DL_info.csv`.
    pub patient: Option<u32>,
    pub study: u32,
    pub series: u32,
    pub split: Split,
    pub lesion_type: LesionType,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        Self {
            patient: None,
            study: 1,
            series: 1,
            split: Split::Train,
            lesion_type: LesionType::Unknown,
        }
    }
}

/// What a conversion wrote.
#[derive(Debug, Clone)]
pub struct Converted {
    pub series_id: String,
    pub series_dir: PathBuf,
    pub slices: usize,
    /// How the source's voxel axes were re-indexed.
    pub axis_map: AxisMap,
    /// The rows added to `DL_info.csv`, one per lesion.
    pub records: Vec<LesionRecord>,
    /// Each lesion's inclusive voxel box `([x0, y0, z0], [x1, y1, z1])` in the
    /// written series (z = PNG number - 1).
    pub lesion_boxes: Vec<([usize; 3], [usize; 3])>,
}

/// A label map with the path it came from (for errors).
pub struct LabelMap<'a> {
    pub path: &'a Path,
    pub volume: &'a Volume<u16>,
}

/// Writes `volume` (read from `source`) and the lesions of `labels` under
/// the DeepLesion root `root`.
pub fn convert_to_deeplesion(
    root: &Path,
    volume: &Volume<i16>,
    source: &Path,
    labels: Option<LabelMap<'_>>,
    options: &ConvertOptions,
) -> Result<Converted> {
    if let Some(l) = &labels {
        check_same_grid(volume, source, l)?;
    }
    let info_path = root.join("DL_info.csv");
    let mut records = if info_path.exists() {
        read_dl_info(&info_path)?
    } else {
        Vec::new()
    };
    let patient = options
        .patient
        .unwrap_or_else(|| records.iter().map(|r| r.patient).max().map_or(1, |p| p + 1));
    let id = series_id(patient, options.study, options.series);
    let series_dir = root.join("Images_png").join(&id);
    if records.iter().any(|r| r.series_id() == id) {
        return Err(Error::data(
            Location::file(&info_path),
            format!(
                "already has rows of series {id}; choose other --patient/--study/--series numbers"
            ),
        ));
    }
    if series_dir.exists() {
        return Err(Error::data(
            Location::file(&series_dir),
            "exists already; choose other --patient/--study/--series numbers",
        ));
    }

    let axis_map = AxisMap::to_lps(volume.world(), source)?;
    let volume = axis_map.apply(volume);
    if let Err(e) = write_series(&series_dir, &volume, source) {
        // Leave no half-written series behind: a rerun would refuse the folder.
        let _ = std::fs::remove_dir_all(&series_dir);
        return Err(e);
    }
    let depth = volume.depth();

    let mut added = Vec::new();
    let mut lesion_boxes = Vec::new();
    if let Some(l) = labels {
        let labels = axis_map.apply(l.volume);
        for component in components(&labels) {
            let record = lesion_record(&component, &volume, patient, &id, options);
            lesion_boxes.push(component.bounds());
            added.push(record);
        }
    }
    records.extend(added.iter().cloned());
    write_dl_info(&info_path, &records)?;
    Ok(Converted {
        series_id: id,
        series_dir,
        slices: depth,
        axis_map,
        records: added,
        lesion_boxes,
    })
}

/// The slices as `KKK.png` and the geometry sidecar.
fn write_series(dir: &Path, volume: &Volume<i16>, source: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let [width, height, depth] = volume.dims();
    for z in 0..depth {
        let slice = HuSlice {
            width,
            height,
            hu: volume.slice(z).to_vec(),
        };
        write_png_hu(dir.join(png_name(z as u32 + 1)), &slice)?;
    }
    SeriesGeometry::new(volume.spacing(), volume.world(), source).write(dir)
}

fn check_same_grid(volume: &Volume<i16>, source: &Path, labels: &LabelMap<'_>) -> Result<()> {
    let at = || Location::file(labels.path);
    if labels.volume.dims() != volume.dims() {
        return Err(Error::data(
            at(),
            format!(
                "the label map is {:?} voxels but the volume {} is {:?}",
                labels.volume.dims(),
                source.display(),
                volume.dims()
            ),
        ));
    }
    if let (Some(a), Some(b)) = (labels.volume.world(), volume.world()) {
        let b = b.in_frame(a.frame);
        let far = a
            .matrix
            .iter()
            .flatten()
            .zip(b.matrix.iter().flatten())
            .any(|(x, y)| (x - y).abs() > 1e-3 * (1.0 + y.abs()));
        if far {
            return Err(Error::data(
                at(),
                format!(
                    "the label map's voxel-to-world transform differs from that of {}: they do not cover the same voxels",
                    source.display()
                ),
            ));
        }
    }
    Ok(())
}

fn lesion_record(
    component: &Component,
    volume: &Volume<i16>,
    patient: u32,
    id: &str,
    options: &ConvertOptions,
) -> LesionRecord {
    let [width, height, depth] = volume.dims();
    let spacing = volume.spacing();
    let (z, pixels) = component.largest_slice();
    let recist = SectionMask::from_pixels(&pixels)
        .expect("a component has a pixel on its largest slice")
        .recist();
    let extent = Box2::enclosing(pixels.iter().map(|&(x, y)| (x as f32, y as f32)))
        .expect("a component has a pixel on its largest slice");
    let bbox = padded_within(&extent, width, height);
    let key_png = z as u32 + 1;
    let reach = (SHIPPED_MM / spacing[2]).round() as u32;
    let slice_range = [
        key_png.saturating_sub(reach).max(1),
        (key_png + reach).min(depth as u32),
    ];
    let (cx, cy) = extent.center();
    LesionRecord {
        file_name: format!("{id}_{}", png_name(key_png)),
        patient,
        study: options.study,
        series: options.series,
        key_slice_png: key_png,
        recist: recist.points,
        bbox,
        diameters_px: [recist.long_px, recist.short_px],
        normalized_location: [
            cx / width as f32,
            cy / height as f32,
            z as f32 / (depth.max(2) - 1) as f32,
        ],
        lesion_type: options.lesion_type,
        possibly_noisy: false,
        slice_range,
        spacing,
        image_size: [width as u32, height as u32],
        dicom_windows: vec![SOFT_TISSUE_WINDOW],
        gender: Gender::Unknown,
        age: None,
        split: options.split,
    }
}
