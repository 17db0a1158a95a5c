//! The normalisation layers the backbone can use: GroupNorm, or BatchNorm
//! with frozen statistics and affine parameters.
//!
//! Both store their parameters under torchvision's BatchNorm names
//! (`weight`, `bias`, and for frozen BatchNorm `running_mean`,
//! `running_var`), so ImageNet weights map onto either by name.

use tch::{Tensor, nn};

use crate::config::NormConfig;

/// BatchNorm whose four tensors are constants: `y = (x - mean) / sqrt(var +
/// eps) * weight + bias`. From scratch (ones, zeros) it is the identity.
#[derive(Debug)]
pub struct FrozenBatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
}

/// torchvision's BatchNorm epsilon.
const BN_EPS: f64 = 1e-5;

impl FrozenBatchNorm {
    pub fn new(p: nn::Path, channels: i64) -> Self {
        Self {
            weight: p.ones_no_train("weight", &[channels]),
            bias: p.zeros_no_train("bias", &[channels]),
            running_mean: p.zeros_no_train("running_mean", &[channels]),
            running_var: p.ones_no_train("running_var", &[channels]),
        }
    }
}

impl nn::Module for FrozenBatchNorm {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let scale = &self.weight * (&self.running_var + BN_EPS).rsqrt();
        let shift = &self.bias - &self.running_mean * &scale;
        xs * scale.view([1, -1, 1, 1]) + shift.view([1, -1, 1, 1])
    }
}

#[derive(Debug)]
pub enum Norm {
    Group(nn::GroupNorm),
    FrozenBatch(FrozenBatchNorm),
}

impl Norm {
    pub fn new(p: nn::Path, channels: i64, cfg: NormConfig) -> Self {
        match cfg {
            NormConfig::GroupNorm { groups } => {
                Self::Group(nn::group_norm(p, groups, channels, Default::default()))
            }
            NormConfig::FrozenBatchNorm => Self::FrozenBatch(FrozenBatchNorm::new(p, channels)),
        }
    }
}

impl nn::Module for Norm {
    fn forward(&self, xs: &Tensor) -> Tensor {
        match self {
            Self::Group(n) => xs.apply(n),
            Self::FrozenBatch(n) => xs.apply(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, nn::Module};

    #[test]
    fn frozen_batch_norm_applies_its_statistics() {
        let vs = nn::VarStore::new(Device::Cpu);
        let mut bn = FrozenBatchNorm::new(vs.root() / "bn", 2);
        let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([1, 2, 2, 1]);
        assert!(
            bn.forward(&x).allclose(&x, 1e-5, 1e-5, false),
            "identity from scratch"
        );
        tch::no_grad(|| {
            bn.weight.copy_(&Tensor::from_slice(&[2.0f32, 1.0]));
            bn.bias.copy_(&Tensor::from_slice(&[0.5f32, 0.0]));
            bn.running_mean.copy_(&Tensor::from_slice(&[1.0f32, 3.0]));
            bn.running_var.copy_(&Tensor::from_slice(&[4.0f32, 1.0]));
        });
        // channel 0: (x - 1) / 2 * 2 + 0.5; channel 1: (x - 3) / 1
        let want = Tensor::from_slice(&[0.5f32, 1.5, 0.0, 1.0]).view([1, 2, 2, 1]);
        let got = bn.forward(&x).to_kind(Kind::Float);
        assert!(got.allclose(&want, 1e-4, 1e-4, false), "{got}");
        assert!(
            vs.trainable_variables().is_empty(),
            "frozen: nothing to train"
        );
    }
}
