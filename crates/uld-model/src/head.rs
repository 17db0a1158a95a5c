//! The dense anchor-free head (FCOS): shared over pyramid levels, a
//! classification tower ending in one foreground logit per location, and a
//! box tower ending in four distances (left, top, right, bottom, in pixels)
//! and one localisation-quality logit.

use tch::{Kind, Tensor, nn};

use crate::config::HeadConfig;
use crate::macs::{Conv, conv2d};

fn conv(p: nn::Path, c_in: i64, c_out: i64, bias: f64) -> Conv {
    let cfg = nn::ConvConfig {
        padding: 1,
        ws_init: nn::Init::Randn {
            mean: 0.0,
            stdev: 0.01,
        },
        bs_init: nn::Init::Const(bias),
        ..Default::default()
    };
    conv2d(p, c_in, c_out, 3, cfg)
}

#[derive(Debug)]
struct Tower {
    layers: Vec<(Conv, nn::GroupNorm)>,
}

impl Tower {
    fn new(p: nn::Path, channels: i64, cfg: &HeadConfig) -> Self {
        let layers = (0..cfg.convs)
            .map(|i| {
                (
                    conv(&p / "conv" / i, channels, channels, 0.0),
                    nn::group_norm(
                        &p / "norm" / i,
                        cfg.norm_groups,
                        channels,
                        Default::default(),
                    ),
                )
            })
            .collect();
        Self { layers }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let mut x = xs.shallow_clone();
        for (c, n) in &self.layers {
            x = x.apply(c).apply(n).relu();
        }
        x
    }
}

/// The head's raw outputs for a batch, every level's locations concatenated
/// (level-major, then row-major within a level).
#[derive(Debug)]
pub struct HeadOutput {
    /// `[N, L]` foreground logits.
    pub cls_logits: Tensor,
    /// `[N, L, 4]` distances left, top, right, bottom in input pixels (> 0).
    pub ltrb: Tensor,
    /// `[N, L]` localisation-quality logits.
    pub quality_logits: Tensor,
    /// Stride, rows and columns of each level.
    pub levels: Vec<LevelShape>,
}

/// One pyramid level's grid: location `(row, col)` sits at input pixel
/// `(col * stride + stride / 2, row * stride + stride / 2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelShape {
    pub stride: i64,
    pub rows: i64,
    pub cols: i64,
}

impl LevelShape {
    pub fn len(&self) -> usize {
        (self.rows * self.cols) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The input-pixel position of location `index` (row-major).
    pub fn location(&self, index: usize) -> (f32, f32) {
        let (r, c) = (index as i64 / self.cols, index as i64 % self.cols);
        let s = self.stride as f32;
        (c as f32 * s + s / 2.0, r as f32 * s + s / 2.0)
    }
}

/// Largest value of a regression logit before `exp` (boxes of e^10 strides
/// are far beyond any image), so early training cannot overflow.
const MAX_LOG_DISTANCE: f64 = 10.0;

#[derive(Debug)]
pub struct Head {
    cls_tower: Tower,
    box_tower: Tower,
    cls_logits: Conv,
    bbox_pred: Conv,
    quality: Conv,
    /// A learnt scale per level on the regression logits (FCOS).
    scales: Vec<Tensor>,
}

impl Head {
    pub fn new(p: &nn::Path, channels: i64, levels: usize, cfg: &HeadConfig) -> Self {
        let prior_bias = -((1.0 - cfg.prior_prob) / cfg.prior_prob).ln();
        Self {
            cls_tower: Tower::new(p / "cls_tower", channels, cfg),
            box_tower: Tower::new(p / "box_tower", channels, cfg),
            cls_logits: conv(p / "cls_logits", channels, 1, prior_bias),
            bbox_pred: conv(p / "bbox_pred", channels, 4, 0.0),
            quality: conv(p / "quality", channels, 1, 0.0),
            scales: (0..levels)
                .map(|i| p.var(&format!("scale{i}"), &[1], nn::Init::Const(1.0)))
                .collect(),
        }
    }

    /// Runs on every level (`[N, C, H_k, W_k]`, strides given) and flattens.
    pub fn forward(&self, features: &[Tensor], strides: &[i64]) -> HeadOutput {
        let mut cls = Vec::new();
        let mut ltrb = Vec::new();
        let mut quality = Vec::new();
        let mut levels = Vec::new();
        for ((x, &stride), scale) in features.iter().zip(strides).zip(&self.scales) {
            let (n, _, rows, cols) = x.size4().expect("a 4D feature map");
            levels.push(LevelShape { stride, rows, cols });
            let c = self.cls_tower.forward(x);
            let b = self.box_tower.forward(x);
            cls.push(c.apply(&self.cls_logits).view([n, -1]));
            quality.push(b.apply(&self.quality).view([n, -1]));
            let d = (b.apply(&self.bbox_pred) * scale)
                .clamp_max(MAX_LOG_DISTANCE)
                .exp()
                * stride as f64;
            ltrb.push(d.permute([0, 2, 3, 1]).reshape([n, -1, 4]));
        }
        HeadOutput {
            cls_logits: Tensor::cat(&cls, 1),
            ltrb: Tensor::cat(&ltrb, 1),
            quality_logits: Tensor::cat(&quality, 1),
            levels,
        }
    }
}

impl HeadOutput {
    /// Copies image `i`'s outputs to the CPU as plain vectors for decoding.
    pub fn image(&self, i: i64) -> RawImageOutput {
        let flat = |t: &Tensor| -> Vec<f32> {
            Vec::<f32>::try_from(
                t.get(i)
                    .to_kind(Kind::Float)
                    .to_device(tch::Device::Cpu)
                    .flatten(0, -1),
            )
            .expect("a float tensor")
        };
        let ltrb = flat(&self.ltrb);
        RawImageOutput {
            cls_logits: flat(&self.cls_logits),
            quality_logits: flat(&self.quality_logits),
            ltrb: ltrb
                .chunks_exact(4)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect(),
        }
    }
}

/// One image's head outputs as plain vectors (the decoder's input).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawImageOutput {
    pub cls_logits: Vec<f32>,
    pub quality_logits: Vec<f32>,
    pub ltrb: Vec<[f32; 4]>,
}
