//! Ground truth and detections as Python objects: read from the files
//! `uld eval` reads, built from columns, and given back as columns.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use uld_eval::{DetectionSet, GroundTruth, read_ground_truth};

use crate::columns::{self, Columns};
use crate::errors::to_py;
use crate::options;

/// Evaluation units (key images or sub-volumes) and their lesions.
#[pyclass(name = "GroundTruth", module = "uld._uld", frozen)]
pub struct PyGroundTruth(pub GroundTruth);

#[pymethods]
impl PyGroundTruth {
    /// The unit keys in evaluation order, lesions or not.
    #[getter]
    fn units(&self) -> Vec<String> {
        self.0.units.iter().map(|u| u.key.clone()).collect()
    }

    #[getter]
    fn lesion_count(&self) -> usize {
        self.0.lesion_count()
    }

    /// Where the set came from.
    #[getter]
    fn source(&self) -> &str {
        &self.0.source
    }

    /// One entry per lesion: `key, z1, z2, x1, y1, x2, y2` and the
    /// attributes (NaN / None where the source has none).
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let lesions = || {
            self.0
                .units
                .iter()
                .flat_map(|u| u.lesions.iter().map(move |l| (u, l)))
        };
        let d = PyDict::new(py);
        d.set_item(
            "key",
            lesions().map(|(u, _)| u.key.as_str()).collect::<Vec<_>>(),
        )?;
        let coord = |f: fn(&uld_core::Box3) -> f32| {
            lesions().map(|(_, l)| f(&l.bbox)).collect::<Vec<f32>>()
        };
        d.set_item("z1", coord(|b| b.z1))?;
        d.set_item("z2", coord(|b| b.z2))?;
        d.set_item("x1", coord(|b| b.xy.x1))?;
        d.set_item("y1", coord(|b| b.xy.y1))?;
        d.set_item("x2", coord(|b| b.xy.x2))?;
        d.set_item("y2", coord(|b| b.xy.y2))?;
        let attr = |f: fn(&uld_eval::LesionAttrs) -> Option<f64>| {
            lesions()
                .map(|(_, l)| f(&l.attrs).unwrap_or(f64::NAN))
                .collect::<Vec<f64>>()
        };
        d.set_item("long_diameter_mm", attr(|a| a.long_diameter_mm))?;
        d.set_item(
            "lesion_type",
            lesions()
                .map(|(_, l)| l.attrs.lesion_type.clone())
                .collect::<Vec<_>>(),
        )?;
        d.set_item("slice_interval_mm", attr(|a| a.slice_interval_mm))?;
        Ok(d)
    }

    fn __len__(&self) -> usize {
        self.0.units.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "GroundTruth({} units, {} lesions, from {})",
            self.0.units.len(),
            self.0.lesion_count(),
            self.0.source
        )
    }
}

/// Detected boxes of many images or sub-volumes.
#[pyclass(name = "Detections", module = "uld._uld", frozen)]
pub struct PyDetections(pub DetectionSet);

#[pymethods]
impl PyDetections {
    /// The detection file's columns `key, z1, z2, x1, y1, x2, y2, score,
    /// track`; empty cells are None.
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let rows = || self.0.iter();
        let d = PyDict::new(py);
        d.set_item("key", rows().map(|(k, _)| k).collect::<Vec<_>>())?;
        d.set_item(
            "z1",
            rows()
                .map(|(_, r)| r.slices.map(|s| s.0))
                .collect::<Vec<_>>(),
        )?;
        d.set_item(
            "z2",
            rows()
                .map(|(_, r)| r.slices.map(|s| s.1))
                .collect::<Vec<_>>(),
        )?;
        let coord =
            |f: fn(&uld_core::Box2) -> f32| rows().map(|(_, r)| f(&r.bbox)).collect::<Vec<f32>>();
        d.set_item("x1", coord(|b| b.x1))?;
        d.set_item("y1", coord(|b| b.y1))?;
        d.set_item("x2", coord(|b| b.x2))?;
        d.set_item("y2", coord(|b| b.y2))?;
        d.set_item("score", rows().map(|(_, r)| r.score).collect::<Vec<_>>())?;
        d.set_item("track", rows().map(|(_, r)| r.track).collect::<Vec<_>>())?;
        Ok(d)
    }

    /// Writes the detection file: CSV, or JSON when `path` ends in `.json`;
    /// atomically.
    fn write(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.0.write(&path)).map_err(to_py)
    }

    fn __len__(&self) -> usize {
        self.0.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "Detections({} rows on {} keys)",
            self.0.len(),
            self.0.keys().len()
        )
    }
}

/// Reads ground truth as `uld eval --gt PATH` does.
#[pyfunction]
#[pyo3(signature = (protocol, path, variant, noisy, split, lens_split))]
pub fn read_ground_truth_file(
    py: Python<'_>,
    protocol: &str,
    path: PathBuf,
    variant: &str,
    noisy: Option<&str>,
    split: &str,
    lens_split: &str,
) -> PyResult<PyGroundTruth> {
    let protocol = options::protocol(protocol)?;
    let options = options::ground_truth(variant, noisy, split, lens_split)?;
    py.detach(|| read_ground_truth(protocol, &path, &options))
        .map(PyGroundTruth)
        .map_err(to_py)
}

/// Ground truth from columns (see `columns::ground_truth`).
#[pyfunction]
#[pyo3(signature = (protocol, columns, units, variant, noisy, split))]
pub fn ground_truth_from_columns(
    protocol: &str,
    columns: Bound<'_, PyDict>,
    units: Vec<String>,
    variant: &str,
    noisy: Option<&str>,
    split: &str,
) -> PyResult<PyGroundTruth> {
    let protocol = options::protocol(protocol)?;
    let options = options::ground_truth(variant, noisy, split, "test")?;
    let cols = Columns::new(columns, "ground_truth")?;
    columns::ground_truth(protocol, &cols, units, &options).map(PyGroundTruth)
}

/// Reads a detection file (CSV, or JSON when it ends in `.json`).
#[pyfunction]
pub fn read_detections_file(py: Python<'_>, path: PathBuf) -> PyResult<PyDetections> {
    py.detach(|| DetectionSet::read(&path))
        .map(PyDetections)
        .map_err(to_py)
}

/// Detections from the detection file's columns.
#[pyfunction]
pub fn detections_from_columns(columns: Bound<'_, PyDict>) -> PyResult<PyDetections> {
    let cols = Columns::new(columns, "detections")?;
    columns::detections(&cols).map(PyDetections)
}
