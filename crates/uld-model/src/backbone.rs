//! A ResNet backbone with configurable depth and width.
//!
//! Layout and parameter names follow torchvision's ResNet (`conv1`, `bn1`,
//! `layer1.0.conv1`, ..., `layerK.0.downsample.{0,1}`), with the stride on
//! the 3x3 convolution of a bottleneck (ResNet v1.5), so ImageNet weights load
//! by name. The stem (7x7 stride-2 convolution and 3x3 stride-2 max-pool)
//! brings stride 4; stage `i` has stride `4 * 2^i`.

use tch::{Tensor, nn};

use crate::config::{BackboneConfig, BlockKind, NormConfig};
use crate::macs::{Conv, conv2d};
use crate::norm::Norm;

fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64) -> Conv {
    let cfg = nn::ConvConfig {
        stride,
        padding: k / 2,
        bias: false,
        ws_init: nn::Init::Kaiming {
            dist: nn::init::NormalOrUniform::Normal,
            fan: nn::init::FanInOut::FanOut,
            non_linearity: nn::init::NonLinearity::ReLU,
        },
        ..Default::default()
    };
    conv2d(p, c_in, c_out, k, cfg)
}

/// One residual block: its convolution/norm pairs in order and the optional
/// projection of the shortcut.
#[derive(Debug)]
struct Block {
    layers: Vec<(Conv, Norm)>,
    downsample: Option<(Conv, Norm)>,
}

impl Block {
    fn new(
        p: nn::Path,
        kind: BlockKind,
        c_in: i64,
        width: i64,
        stride: i64,
        norm: NormConfig,
    ) -> Self {
        let c_out = width * kind.expansion();
        // (kernel, in, out, stride) of each convolution
        let shapes: Vec<(i64, i64, i64, i64)> = match kind {
            BlockKind::Basic => vec![(3, c_in, width, stride), (3, width, width, 1)],
            BlockKind::Bottleneck => vec![
                (1, c_in, width, 1),
                (3, width, width, stride),
                (1, width, c_out, 1),
            ],
        };
        let layers = shapes
            .iter()
            .enumerate()
            .map(|(i, &(k, ci, co, s))| {
                let n = i + 1;
                (
                    conv(&p / format!("conv{n}"), ci, co, k, s),
                    Norm::new(&p / format!("bn{n}"), co, norm),
                )
            })
            .collect();
        let downsample = (stride != 1 || c_in != c_out).then(|| {
            let d = &p / "downsample";
            (
                conv(&d / "0", c_in, c_out, 1, stride),
                Norm::new(&d / "1", c_out, norm),
            )
        });
        Self { layers, downsample }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let last = self.layers.len() - 1;
        let mut ys = xs.shallow_clone();
        for (i, (c, n)) in self.layers.iter().enumerate() {
            ys = ys.apply(c).apply(n);
            if i < last {
                ys = ys.relu();
            }
        }
        let shortcut = match &self.downsample {
            Some((c, n)) => xs.apply(c).apply(n),
            None => xs.shallow_clone(),
        };
        (ys + shortcut).relu()
    }
}

/// The ResNet body; [`Backbone::forward`] returns every stage's output.
#[derive(Debug)]
pub struct Backbone {
    conv1: Conv,
    bn1: Norm,
    stages: Vec<Vec<Block>>,
}

impl Backbone {
    /// `in_channels` is 3 with 3DCE fusion (the backbone sees one group at a
    /// time), else `3 * G`.
    pub fn new(p: &nn::Path, cfg: &BackboneConfig, in_channels: i64) -> Self {
        let conv1 = conv(p / "conv1", in_channels, cfg.stem_width, 7, 2);
        let bn1 = Norm::new(p / "bn1", cfg.stem_width, cfg.norm);
        let mut c_in = cfg.stem_width;
        let mut stages = Vec::new();
        for (i, (&blocks, &width)) in cfg.stage_blocks.iter().zip(&cfg.stage_widths).enumerate() {
            let lp = p / format!("layer{}", i + 1);
            let stride = if i == 0 { 1 } else { 2 };
            let mut stage = Vec::new();
            for b in 0..blocks {
                let s = if b == 0 { stride } else { 1 };
                stage.push(Block::new(&lp / b, cfg.block, c_in, width, s, cfg.norm));
                c_in = width * cfg.block.expansion();
            }
            stages.push(stage);
        }
        Self { conv1, bn1, stages }
    }

    /// Outputs of each stage, finest first (strides 4, 8, 16, 32).
    pub fn forward(&self, xs: &Tensor) -> Vec<Tensor> {
        let mut x = xs.apply(&self.conv1).apply(&self.bn1).relu().max_pool2d(
            [3, 3],
            [2, 2],
            [1, 1],
            [1, 1],
            false,
        );
        let mut outs = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            for block in stage {
                x = block.forward(&x);
            }
            outs.push(x.shallow_clone());
        }
        outs
    }
}
