//! The feature pyramid: lateral 1x1 convolutions on the backbone stages, a
//! top-down path with nearest upsampling, 3x3 output convolutions, and extra
//! stride-2 levels past the deepest stage (FCOS's P6, P7).

use tch::{Tensor, nn};

use crate::macs::{Conv, conv2d};

fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64) -> Conv {
    let cfg = nn::ConvConfig {
        stride,
        padding: k / 2,
        ws_init: nn::Init::Kaiming {
            dist: nn::init::NormalOrUniform::Uniform,
            fan: nn::init::FanInOut::FanIn,
            non_linearity: nn::init::NonLinearity::ExplicitGain(1.0),
        },
        ..Default::default()
    };
    conv2d(p, c_in, c_out, k, cfg)
}

#[derive(Debug)]
pub struct Fpn {
    /// Index of the first backbone stage the pyramid uses.
    first_stage: usize,
    lateral: Vec<Conv>,
    output: Vec<Conv>,
    extra: Vec<Conv>,
}

/// log2(stride / 4): the backbone stage with this stride.
pub fn stage_of_stride(stride: i64) -> usize {
    (stride / 4).trailing_zeros() as usize
}

impl Fpn {
    /// `stage_channels`: output channels of every backbone stage; `strides`:
    /// the levels to produce (validated: doubling, the finest one from the
    /// backbone).
    pub fn new(p: &nn::Path, stage_channels: &[i64], channels: i64, strides: &[i64]) -> Self {
        let first_stage = stage_of_stride(strides[0]);
        let n_stages = stage_channels.len();
        assert!(
            first_stage < n_stages,
            "the finest level must come from the backbone"
        );
        let used = &stage_channels[first_stage..];
        let lateral = used
            .iter()
            .enumerate()
            .map(|(i, &c)| conv(p / "lateral" / i, c, channels, 1, 1))
            .collect();
        let from_backbone = strides.len().min(used.len());
        let output = (0..from_backbone)
            .map(|i| conv(p / "output" / i, channels, channels, 3, 1))
            .collect();
        let extra = (0..strides.len() - from_backbone)
            .map(|i| conv(p / "extra" / i, channels, channels, 3, 2))
            .collect();
        Self {
            first_stage,
            lateral,
            output,
            extra,
        }
    }

    /// The pyramid levels, finest first.
    pub fn forward(&self, stages: &[Tensor]) -> Vec<Tensor> {
        let used = &stages[self.first_stage..];
        let n = used.len();
        let mut inner: Vec<Tensor> = Vec::with_capacity(n);
        let mut top = used[n - 1].apply(&self.lateral[n - 1]);
        inner.push(top.shallow_clone());
        for i in (0..n - 1).rev() {
            let lat = used[i].apply(&self.lateral[i]);
            let size = lat.size();
            top = lat + top.upsample_nearest2d([size[2], size[3]], None, None);
            inner.push(top.shallow_clone());
        }
        inner.reverse();
        let mut levels: Vec<Tensor> = inner
            .iter()
            .zip(&self.output)
            .map(|(x, c)| x.apply(c))
            .collect();
        // Extra levels exist only when every stage is a level; the deepest
        // one feeds them.
        let mut last = levels.last().expect("at least one level").shallow_clone();
        for (i, c) in self.extra.iter().enumerate() {
            let x = if i == 0 { last } else { last.relu() };
            last = x.apply(c);
            levels.push(last.shallow_clone());
        }
        levels
    }
}
