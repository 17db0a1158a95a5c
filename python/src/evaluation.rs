//! `evaluate` and `compare`: the numbers of `uld eval`, as the text of its
//! `report.json` / `comparison.json` plus the whole curves.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use uld_eval::report::{comparison_json, report_json};
use uld_eval::{BootstrapConfig, EvalConfig, Evaluation, compare, evaluate};

use crate::errors::to_py;
use crate::options;
use crate::tables::{PyDetections, PyGroundTruth};

/// The options of `uld eval`, as the Python layer passes them (a dict).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct EvalOptions {
    protocol: String,
    variant: String,
    bootstrap: usize,
    seed: u64,
    level: f64,
    threshold: Option<f32>,
    breakdowns: bool,
}

impl EvalOptions {
    /// The evaluation configuration, checked.
    fn config(&self) -> PyResult<EvalConfig> {
        let mut cfg = EvalConfig::new(options::protocol(&self.protocol)?);
        cfg.variant = options::variant(&self.variant)?;
        cfg.score_threshold = self.threshold;
        cfg.breakdowns = self.breakdowns;
        cfg.bootstrap = if self.bootstrap > 0 {
            Some(BootstrapConfig::checked(self.bootstrap, self.seed, self.level).map_err(to_py)?)
        } else {
            None
        };
        Ok(cfg)
    }
}

/// The curve of `e`, one point per detection in score order.
fn curve<'py>(py: Python<'py>, e: &Evaluation) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("score", &e.curve.score)?;
    d.set_item("fp_per_unit", &e.curve.fp_per_unit)?;
    d.set_item("sensitivity", &e.curve.sens)?;
    d.set_item("precision", &e.curve.precision)?;
    d.set_item("hits", &e.curve.hits)?;
    d.set_item("false_positives", &e.curve.false_positives)?;
    Ok(d)
}

/// Scores `detections` against `ground_truth`: `(report.json text, curve)`.
#[pyfunction]
pub fn evaluate_tables<'py>(
    py: Python<'py>,
    ground_truth: &PyGroundTruth,
    detections: &PyDetections,
    options: EvalOptions,
) -> PyResult<(String, Bound<'py, PyDict>)> {
    let cfg = options.config()?;
    let (gt, dets) = (&ground_truth.0, &detections.0);
    let e = py.detach(|| evaluate(gt, dets, &cfg)).map_err(to_py)?;
    Ok((report_json(&e).map_err(to_py)?, curve(py, &e)?))
}

/// The paired bootstrap of two detection sets: `(comparison.json text, curve
/// of a, curve of b)`.
#[pyfunction]
pub fn compare_tables<'py>(
    py: Python<'py>,
    ground_truth: &PyGroundTruth,
    a: &PyDetections,
    b: &PyDetections,
    options: EvalOptions,
) -> PyResult<(String, Bound<'py, PyDict>, Bound<'py, PyDict>)> {
    if options.bootstrap == 0 {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "compare needs bootstrap replicates (bootstrap > 0)",
        ));
    }
    let cfg = options.config()?;
    let gt = &ground_truth.0;
    let (ea, eb, cmp) = py.detach(|| compare(gt, &a.0, &b.0, &cfg)).map_err(to_py)?;
    Ok((
        comparison_json(&ea, &eb, &cmp).map_err(to_py)?,
        curve(py, &ea)?,
        curve(py, &eb)?,
    ))
}
