//! One optimisation step of the student, in full precision or with fp16
//! mixed precision on CUDA.
//!
//! Mixed precision runs the forward pass under libtorch's autocast (fp16 on
//! CUDA: tch 0.24 exposes autocast on/off but not its dtype, so bf16
//! autocast is not reachable from it) and scales the loss so that small
//! fp16 gradients do not flush to zero. The scale halves whenever a
//! gradient overflows (that step is skipped) and doubles after
//! `GROWTH_INTERVAL` good steps, as PyTorch's `GradScaler` does.

use serde::{Deserialize, Serialize};
use tch::Tensor;
use uld_model::{Detector, ImageTargets};

use crate::optim::Optimizer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// fp32 everywhere.
    #[default]
    Fp32,
    /// fp16 autocast with dynamic loss scaling (CUDA only).
    Fp16,
}

const INITIAL_SCALE: f64 = 65536.0;
const GROWTH_INTERVAL: u32 = 2000;

/// The dynamic loss scale of fp16 training (1 and inert for fp32).
#[derive(Debug, Clone, PartialEq)]
pub struct LossScaler {
    precision: Precision,
    pub scale: f64,
    good_steps: u32,
}

impl LossScaler {
    pub fn new(precision: Precision) -> Self {
        let scale = match precision {
            Precision::Fp32 => 1.0,
            Precision::Fp16 => INITIAL_SCALE,
        };
        Self {
            precision,
            scale,
            good_steps: 0,
        }
    }

    /// Records whether the step's gradients were finite; returns whether
    /// the step may be applied.
    fn update(&mut self, finite: bool) -> bool {
        if self.precision == Precision::Fp32 {
            return finite;
        }
        if finite {
            self.good_steps += 1;
            if self.good_steps >= GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.good_steps = 0;
            }
        } else {
            self.scale = (self.scale / 2.0).max(1.0);
            self.good_steps = 0;
        }
        finite
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy)]
pub struct StepOutcome {
    /// `(total, cls, box, quality)` losses.
    pub losses: [f64; 4],
    /// Gradient norm before clipping (NaN when no backward pass ran).
    pub grad_norm: f64,
    /// Whether the optimiser updated the weights.
    pub applied: bool,
    /// The loss, or in fp32 a gradient, was not finite (an fp16 overflow,
    /// which the loss scale absorbs, is not counted here).
    pub nonfinite: bool,
}

/// The loss of a batch under the scaler's precision.
pub fn forward_loss(
    detector: &dyn Detector,
    images: &Tensor,
    targets: &[ImageTargets],
    precision: Precision,
) -> uld_model::LossTerms {
    tch::autocast(precision == Precision::Fp16, || {
        detector.loss(images, targets, true)
    })
}

/// Loss, backward, gradient clipping and the optimiser update; a
/// non-finite loss is reported without a backward pass.
pub fn optimisation_step(
    detector: &dyn Detector,
    optimizer: &mut Optimizer,
    scaler: &mut LossScaler,
    images: &Tensor,
    targets: &[ImageTargets],
    lr: f64,
    clip: Option<f64>,
) -> StepOutcome {
    let terms = forward_loss(detector, images, targets, scaler.precision);
    let losses = terms.values();
    if !losses[0].is_finite() {
        return StepOutcome {
            losses,
            grad_norm: f64::NAN,
            applied: false,
            nonfinite: true,
        };
    }
    optimizer.zero_grad();
    (terms.total * scaler.scale).backward();
    if scaler.scale != 1.0 {
        optimizer.scale_grads(1.0 / scaler.scale);
    }
    let grad_norm = optimizer.clip_grad_norm(clip.unwrap_or(f64::INFINITY));
    let applied = scaler.update(grad_norm.is_finite());
    if applied {
        optimizer.step(lr);
    }
    let nonfinite = !applied && scaler.precision == Precision::Fp32;
    StepOutcome {
        losses,
        grad_norm,
        applied,
        nonfinite,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_backs_off_on_overflow_and_grows_after_good_steps() {
        let mut s = LossScaler::new(Precision::Fp16);
        assert!(!s.update(false));
        assert_eq!(s.scale, INITIAL_SCALE / 2.0);
        for _ in 0..GROWTH_INTERVAL {
            assert!(s.update(true));
        }
        assert_eq!(s.scale, INITIAL_SCALE);
        let mut fp32 = LossScaler::new(Precision::Fp32);
        assert!(
            !fp32.update(false),
            "non-finite fp32 gradients are not applied"
        );
        assert!(fp32.update(true));
        assert_eq!(fp32.scale, 1.0);
    }
}
