//! `uld._uld`, the compiled half of the `uld` Python package: the
//! DeepLesion evaluation protocols of `uld-eval` and the readers of
//! `uld-data`, without libtorch. The Python half (`python/uld/__init__.py`)
//! turns DataFrames and arrays into the columns these functions take and
//! their results into numpy arrays and dataclasses.

use pyo3::prelude::*;

mod columns;
mod errors;
mod evaluation;
mod options;
mod readers;
mod tables;

#[pymodule]
fn _uld(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("DataError", m.py().get_type::<errors::DataError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<tables::PyGroundTruth>()?;
    m.add_class::<tables::PyDetections>()?;
    m.add_function(wrap_pyfunction!(tables::read_ground_truth_file, m)?)?;
    m.add_function(wrap_pyfunction!(tables::ground_truth_from_columns, m)?)?;
    m.add_function(wrap_pyfunction!(tables::read_detections_file, m)?)?;
    m.add_function(wrap_pyfunction!(tables::detections_from_columns, m)?)?;
    m.add_function(wrap_pyfunction!(evaluation::evaluate_tables, m)?)?;
    m.add_function(wrap_pyfunction!(evaluation::compare_tables, m)?)?;
    m.add_function(wrap_pyfunction!(readers::read_dl_info_columns, m)?)?;
    m.add_function(wrap_pyfunction!(readers::read_scan, m)?)?;
    Ok(())
}
