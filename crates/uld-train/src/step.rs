//! One optimisation step of the student, in full precision or with mixed
//! precision.
//!
//! Mixed precision runs the forward pass under libtorch's autocast
//! ([`uld_model::autocast`]). bf16 keeps fp32's exponent range and needs
//! nothing more. fp16 scales the loss so that small gradients do not flush
//! to zero: the scale halves whenever a gradient overflows (that step is
//! skipped) and doubles after `GROWTH_INTERVAL` good steps, as PyTorch's
//! `GradScaler` does.
//!
//! Across data-parallel ranks each rank's loss is weighed by its share of
//! the summed normaliser and the gradients are averaged, so N ranks of B
//! images take the step one process would take on the N x B images.

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};
use uld_core::Result;
use uld_distributed::ProcessGroup;
use uld_model::autocast::{AutocastKind, with_autocast};
use uld_model::{Detector, ImageTargets, LossTerms, LossValues};

use crate::optim::Optimizer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// fp32 everywhere.
    #[default]
    Fp32,
    /// fp16 autocast with dynamic loss scaling (CUDA only).
    Fp16,
    /// bf16 autocast (CUDA; on CPU where it has bf16 kernels).
    Bf16,
}

impl Precision {
    /// The autocast dtype, `None` for fp32.
    pub fn autocast(self) -> Option<AutocastKind> {
        match self {
            Self::Fp32 => None,
            Self::Fp16 => Some(AutocastKind::Fp16),
            Self::Bf16 => Some(AutocastKind::Bf16),
        }
    }

    /// The precision to detect at on `device`: fp16 needs CUDA (as in
    /// training), so an fp16 run detects in fp32 elsewhere.
    pub fn for_device(self, device: Device) -> Self {
        match self {
            Self::Fp16 if !device.is_cuda() => Self::Fp32,
            other => other,
        }
    }

    /// Runs `f`, whose forward passes run on `device`, at this precision:
    /// under autocast for fp16 and bf16. Training, the teacher's
    /// predictions and detection all go through here, so a run detects at
    /// the precision it trained at.
    pub fn run<T>(self, device: Device, f: impl FnOnce() -> T) -> T {
        match self.autocast() {
            Some(kind) => with_autocast(device, kind, f),
            None => f(),
        }
    }
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
            Precision::Fp32 | Precision::Bf16 => 1.0,
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
        if self.precision != Precision::Fp16 {
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
#[derive(Debug, Clone)]
pub struct StepOutcome {
    /// The loss and its parts.
    pub losses: LossValues,
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
    precision.run(images.device(), || detector.loss(images, targets, true))
}

/// Loss, backward, gradient averaging over `ranks` (when several train
/// together), clipping and the optimiser update. A non-finite loss, on any
/// rank, is reported without a backward pass; every rank then skips.
#[allow(clippy::too_many_arguments)]
pub fn optimisation_step(
    detector: &dyn Detector,
    optimizer: &mut Optimizer,
    scaler: &mut LossScaler,
    images: &Tensor,
    targets: &[ImageTargets],
    lr: f64,
    clip: Option<f64>,
    ranks: Option<&ProcessGroup>,
) -> Result<StepOutcome> {
    let terms = forward_loss(detector, images, targets, scaler.precision);
    let (losses, weight) = match ranks {
        Some(group) => group_losses(&terms, group)?,
        None => (terms.values(), 1.0),
    };
    if !losses.total.is_finite() {
        return Ok(StepOutcome {
            losses,
            grad_norm: f64::NAN,
            applied: false,
            nonfinite: true,
        });
    }
    optimizer.zero_grad();
    (terms.total * (scaler.scale * weight)).backward();
    if let Some(group) = ranks {
        group.average_gradients(&optimizer.parameters())?;
    }
    if scaler.scale != 1.0 {
        optimizer.scale_grads(1.0 / scaler.scale);
    }
    let grad_norm = optimizer.clip_grad_norm(clip.unwrap_or(f64::INFINITY));
    let applied = scaler.update(grad_norm.is_finite());
    if applied {
        optimizer.step(lr);
    }
    let nonfinite = !applied && scaler.precision != Precision::Fp16;
    Ok(StepOutcome {
        losses,
        grad_norm,
        applied,
        nonfinite,
    })
}

/// The loss of the ranks' whole batch, and the weight of this rank's loss
/// whose gradient, averaged over the ranks, is that loss's gradient: a
/// rank's sums were divided by `max(n_r, 1)`, the whole batch's by
/// `max(sum n, 1)`.
fn group_losses(terms: &LossTerms, group: &ProcessGroup) -> Result<(LossValues, f64)> {
    let local = terms.values();
    let divided_by = terms.normaliser.max(1.0);
    let mut sums: Vec<f64> = std::iter::once(terms.normaliser)
        .chain(local.iter().map(|v| v * divided_by))
        .collect();
    group.sum_values(&mut sums)?;
    let whole = sums[0].max(1.0);
    let mut values = sums[1..].iter().map(|s| s / whole);
    let losses = LossValues {
        total: values.next().unwrap_or(f64::NAN),
        parts: local
            .parts
            .iter()
            .map(|(name, _)| *name)
            .zip(values)
            .collect(),
    };
    Ok((losses, divided_by * group.world() as f64 / whole))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_fp16_run_detects_in_fp32_off_cuda() {
        assert_eq!(Precision::Fp16.for_device(Device::Cpu), Precision::Fp32);
        assert_eq!(Precision::Fp16.for_device(Device::Cuda(0)), Precision::Fp16);
        assert_eq!(Precision::Bf16.for_device(Device::Cpu), Precision::Bf16);
    }

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

    #[test]
    fn bf16_mixed_precision_trains_and_keeps_fp32_weights() {
        use tch::nn::VarStore;
        use tch::{Device, Kind};
        use uld_core::Box2;
        use uld_model::{FcosDetector, ModelConfig};

        tch::manual_seed(0);
        let config = ModelConfig::tiny();
        let vs = VarStore::new(Device::Cpu);
        let detector = FcosDetector::new(&vs.root(), &config).unwrap();
        let mut optimizer = Optimizer::new(
            crate::OptimizerConfig::AdamW {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
            },
            &vs,
        );
        let images = Tensor::zeros([1, config.input.slices, 64, 64], (Kind::Float, Device::Cpu));
        let _ = images.narrow(2, 20, 16).narrow(3, 24, 16).fill_(1.0);
        let targets = [ImageTargets {
            boxes: vec![Box2::new(24.0, 20.0, 40.0, 36.0)],
            box_weights: vec![1.0],
            ignore: vec![],
        }];
        let mut scaler = LossScaler::new(Precision::Bf16);
        let mut losses = Vec::new();
        for _ in 0..40 {
            let out = optimisation_step(
                &detector,
                &mut optimizer,
                &mut scaler,
                &images,
                &targets,
                1e-2,
                Some(10.0),
                None,
            )
            .unwrap();
            assert!(out.applied && !out.nonfinite);
            losses.push(out.losses.total);
        }
        assert!(
            losses[39] < 0.5 * losses[0],
            "bf16 steps lower the loss: {losses:?}"
        );
        assert_eq!(scaler.scale, 1.0, "bf16 needs no loss scale");
        for (name, t) in vs.variables() {
            assert_eq!(t.kind(), Kind::Float, "{name} stays fp32");
        }
    }
}
