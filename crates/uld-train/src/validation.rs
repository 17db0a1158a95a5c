//! What a trainer asks of validation: a score for the detector being
//! trained, and the numbers to log beside it.

use serde::{Deserialize, Serialize};
use uld_core::Result;
use uld_model::Detector;

/// Scores a detector during training; higher `score` is better.
pub trait Validator {
    fn validate(&mut self, detector: &dyn Detector, step: u64) -> Result<Validation>;
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Validation {
    pub score: f64,
    pub metrics: serde_json::Value,
}
