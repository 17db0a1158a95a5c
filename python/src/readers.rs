//! The data readers: `DL_info.csv` as columns, and a CT scan as HU voxels
//! with its geometry.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use uld_data::deeplesion::{Gender, LesionRecord, read_dl_info};
use uld_data::scan::{ScanOptions, open_scan};

use crate::errors::to_py;

/// `DL_info.csv` as one list per column; boxes and RECIST points in uld's
/// 0-based pixels (the file's numbers minus 1), as detection files have them.
#[pyfunction]
pub fn read_dl_info_columns<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let records = py.detach(|| read_dl_info(&path)).map_err(to_py)?;
    let d = PyDict::new(py);
    let col = |f: fn(&LesionRecord) -> f64| records.iter().map(f).collect::<Vec<f64>>();
    let ints = |f: fn(&LesionRecord) -> u32| records.iter().map(f).collect::<Vec<u32>>();
    d.set_item(
        "file_name",
        records
            .iter()
            .map(|r| r.file_name.as_str())
            .collect::<Vec<_>>(),
    )?;
    d.set_item("patient", ints(|r| r.patient))?;
    d.set_item("study", ints(|r| r.study))?;
    d.set_item("series", ints(|r| r.series))?;
    d.set_item("key_slice_png", ints(|r| r.key_slice_png))?;
    d.set_item("x1", col(|r| r.bbox.x1.into()))?;
    d.set_item("y1", col(|r| r.bbox.y1.into()))?;
    d.set_item("x2", col(|r| r.bbox.x2.into()))?;
    d.set_item("y2", col(|r| r.bbox.y2.into()))?;
    d.set_item(
        "recist",
        records
            .iter()
            .map(|r| r.recist.to_vec())
            .collect::<Vec<_>>(),
    )?;
    d.set_item("long_diameter_px", col(|r| r.diameters_px[0].into()))?;
    d.set_item("short_diameter_px", col(|r| r.diameters_px[1].into()))?;
    d.set_item("long_diameter_mm", col(LesionRecord::long_diameter_mm))?;
    d.set_item("short_diameter_mm", col(LesionRecord::short_diameter_mm))?;
    d.set_item(
        "normalized_location",
        records
            .iter()
            .map(|r| r.normalized_location.to_vec())
            .collect::<Vec<_>>(),
    )?;
    d.set_item(
        "lesion_type",
        records
            .iter()
            .map(|r| r.lesion_type.name())
            .collect::<Vec<_>>(),
    )?;
    d.set_item(
        "lesion_type_code",
        records
            .iter()
            .map(|r| r.lesion_type.code())
            .collect::<Vec<_>>(),
    )?;
    d.set_item(
        "possibly_noisy",
        records.iter().map(|r| r.possibly_noisy).collect::<Vec<_>>(),
    )?;
    d.set_item("slice_first", ints(|r| r.slice_range[0]))?;
    d.set_item("slice_last", ints(|r| r.slice_range[1]))?;
    d.set_item("spacing_x_mm", col(|r| r.spacing[0]))?;
    d.set_item("spacing_y_mm", col(|r| r.spacing[1]))?;
    d.set_item("slice_interval_mm", col(LesionRecord::slice_interval_mm))?;
    d.set_item("image_width", ints(|r| r.image_size[0]))?;
    d.set_item("image_height", ints(|r| r.image_size[1]))?;
    d.set_item(
        "dicom_windows",
        records
            .iter()
            .map(|r| {
                r.dicom_windows
                    .iter()
                    .map(|w| w.to_vec())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>(),
    )?;
    d.set_item(
        "gender",
        records
            .iter()
            .map(|r| match r.gender {
                Gender::Female => Some("F"),
                Gender::Male => Some("M"),
                Gender::Unknown => None,
            })
            .collect::<Vec<_>>(),
    )?;
    d.set_item(
        "age",
        records
            .iter()
            .map(|r| r.age.map_or(f64::NAN, f64::from))
            .collect::<Vec<_>>(),
    )?;
    d.set_item(
        "split",
        records.iter().map(|r| r.split.name()).collect::<Vec<_>>(),
    )?;
    Ok(d)
}

/// A CT scan: `hu` (little-endian int16 bytes, x fastest), `dims` (x, y, z),
/// `spacing` (mm), `matrix` (3 x 4 voxel-to-world rows or None), `frame`,
/// and what was read.
#[pyfunction]
#[pyo3(signature = (path, series_uid=None))]
pub fn read_scan<'py>(
    py: Python<'py>,
    path: PathBuf,
    series_uid: Option<String>,
) -> PyResult<Bound<'py, PyDict>> {
    // A reader gives what is there: a single slice is a volume of depth 1.
    let options = ScanOptions {
        series_uid,
        allow_single_slice: true,
        ..ScanOptions::default()
    };
    let scan = py.detach(|| open_scan(&path, &options)).map_err(to_py)?;
    let v = &scan.volume;
    let bytes: Vec<u8> = v.data().iter().flat_map(|h| h.to_le_bytes()).collect();
    let d = PyDict::new(py);
    d.set_item("hu", PyBytes::new(py, &bytes))?;
    d.set_item("dims", v.dims().to_vec())?;
    d.set_item("spacing", v.spacing().to_vec())?;
    d.set_item(
        "matrix",
        v.world()
            .map(|w| w.matrix.iter().map(|r| r.to_vec()).collect::<Vec<_>>()),
    )?;
    d.set_item("frame", v.world().map(|w| w.frame.name()))?;
    d.set_item("kind", scan.kind.name())?;
    d.set_item("name", &scan.name)?;
    d.set_item("series_uid", &scan.series_uid)?;
    d.set_item("first_png", scan.first_png)?;
    Ok(d)
}
