//! The [`Detector`] trait a trainer drives, [`BuildDetector`] and
//! [`build_detector`] that make one from a configuration, and the
//! FCOS-style 2.5D detector that implements them.

use tch::nn::VarStore;
use tch::{Device, Tensor, nn};
use uld_core::{Error, Result};

use crate::backbone::Backbone;
use crate::config::ModelConfig;
use crate::decode::{Detection, decode};
use crate::fpn::Fpn;
use crate::head::{Head, HeadOutput, LevelShape};
use crate::loss::{BatchTargets, FcosLoss, LossTerms, detection_loss};
use crate::macs::{Conv, conv2d};
use crate::targets::{ImageTargets, assign};

/// What a trainer needs from a detector, so a teacher-student trainer can
/// wrap any of them.
pub trait Detector {
    /// The loss of a batch `[N, S, H, W]` (S slices as channels, pixels as
    /// the data pipeline normalised them) against one target set per image,
    /// in network-input pixels. `train` selects training behaviour of layers.
    fn loss(&self, images: &Tensor, targets: &[ImageTargets], train: bool) -> LossTerms;

    /// Detections per image, best first, in network-input pixels.
    fn predict(&self, images: &Tensor) -> Vec<Vec<Detection>>;
}

/// A detector a trainer can make without knowing its type: its variables
/// are created under an `nn::Path` of a variable store, from the run's
/// model configuration (a detector reads the parts it uses; every one takes
/// `input.slices` slices per image).
pub trait BuildDetector: Detector + Sized + 'static {
    fn build(p: &nn::Path, config: &ModelConfig) -> Result<Self>;

    /// The multiple the height and width of its input must be of (data
    /// pipelines pad images to it), e.g. the coarsest stride.
    fn size_divisor(config: &ModelConfig) -> usize;
}

/// Builds a `D` with its variables at the root of `store`, from `seed` if
/// given.
///
/// libtorch has one random generator per process and building draws from
/// it, so every build in uld goes through here: a seeded build then gets
/// the same weights while other threads build models too.
pub fn build_detector<D: BuildDetector>(
    store: &VarStore,
    config: &ModelConfig,
    seed: Option<u64>,
) -> Result<D> {
    static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _drawing = TORCH_RNG.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(seed) = seed {
        tch::manual_seed(seed as i64);
    }
    D::build(&store.root(), config)
}

/// Backbone, FPN, optional 3DCE fusion and the anchor-free head.
#[derive(Debug)]
pub struct FcosDetector {
    config: ModelConfig,
    backbone: Backbone,
    fpn: Fpn,
    /// One 1x1 convolution per level fusing the `G` groups' features.
    fusion: Vec<Conv>,
    head: Head,
}

impl FcosDetector {
    /// Builds the network under `p` (parameters `backbone.*`, `fpn.*`,
    /// `fusion.*`, `head.*`).
    pub fn new(p: &nn::Path, config: &ModelConfig) -> Result<Self> {
        config
            .validate()
            .map_err(|e| Error::invalid(format!("model config `{}`", e.field), e.message))?;
        let groups = config.groups();
        let in_channels = if config.input.fuse_groups {
            3
        } else {
            config.input.slices
        };
        let backbone = Backbone::new(&(p / "backbone"), &config.backbone, in_channels);
        let c = config.fpn.channels;
        let fpn = Fpn::new(
            &(p / "fpn"),
            &config.stage_channels(),
            c,
            &config.fpn.strides,
        );
        let fusion = if config.input.fuse_groups && groups > 1 {
            (0..config.fpn.strides.len())
                .map(|i| conv2d(p / "fusion" / i, groups * c, c, 1, Default::default()))
                .collect()
        } else {
            Vec::new()
        };
        let head = Head::new(&(p / "head"), c, config.fpn.strides.len(), &config.head);
        Ok(Self {
            config: config.clone(),
            backbone,
            fpn,
            fusion,
            head,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The pyramid features, one tensor per level `[N, C, H_k, W_k]`.
    pub fn features(&self, images: &Tensor) -> Vec<Tensor> {
        let (n, s, h, w) = images.size4().expect("images are [N, slices, H, W]");
        assert_eq!(
            s, self.config.input.slices,
            "the model takes {} slices per image",
            self.config.input.slices
        );
        if !self.config.input.fuse_groups {
            return self.fpn.forward(&self.backbone.forward(images));
        }
        // 3DCE: the groups of 3 slices become batch entries of the shared
        // backbone, then each level's features are concatenated per image.
        let g = s / 3;
        let levels = self
            .fpn
            .forward(&self.backbone.forward(&images.reshape([n * g, 3, h, w])));
        if self.fusion.is_empty() {
            return levels;
        }
        levels
            .iter()
            .zip(&self.fusion)
            .map(|(x, conv)| {
                let (_, c, hk, wk) = x.size4().expect("a 4D feature map");
                x.reshape([n, g * c, hk, wk]).apply(conv)
            })
            .collect()
    }

    /// The head's raw outputs.
    pub fn forward(&self, images: &Tensor) -> HeadOutput {
        self.head
            .forward(&self.features(images), &self.config.fpn.strides)
    }

    /// The pyramid levels' grids for a `height` x `width` input
    /// ([`level_shapes`]).
    pub fn level_shapes(&self, height: i64, width: i64) -> Vec<LevelShape> {
        level_shapes(&self.config, height, width)
    }

    /// Dense targets of a batch ([`batch_targets`]).
    pub fn batch_targets(
        &self,
        targets: &[ImageTargets],
        height: i64,
        width: i64,
        device: Device,
    ) -> BatchTargets {
        batch_targets(&self.config, targets, height, width, device)
    }

    /// The loss of a batch against targets from [`Self::batch_targets`].
    pub fn loss_with_targets(&self, images: &Tensor, targets: &BatchTargets) -> FcosLoss {
        let out = self.forward(images);
        let (_, _, h, w) = images.size4().expect("images are [N, slices, H, W]");
        assert_eq!(
            out.levels,
            self.level_shapes(h, w),
            "level grids as computed"
        );
        assert_eq!(
            out.cls_logits.size(),
            targets.labels.size(),
            "targets for this batch and input size"
        );
        detection_loss(&out, targets, &self.config.loss, self.config.head.quality)
    }

    /// Decodes head outputs of a batch of `width` x `height` images.
    pub fn decode(&self, out: &HeadOutput, width: f32, height: f32) -> Vec<Vec<Detection>> {
        let n = out.cls_logits.size()[0];
        (0..n)
            .map(|i| {
                decode(
                    &self.config.decode,
                    &out.levels,
                    &out.image(i),
                    width,
                    height,
                )
            })
            .collect()
    }
}

impl BuildDetector for FcosDetector {
    fn build(p: &nn::Path, config: &ModelConfig) -> Result<Self> {
        Self::new(p, config)
    }

    /// The coarsest pyramid stride.
    fn size_divisor(config: &ModelConfig) -> usize {
        config.fpn.strides.iter().copied().max().unwrap_or(32) as usize
    }
}

impl Detector for FcosDetector {
    fn loss(&self, images: &Tensor, targets: &[ImageTargets], _train: bool) -> LossTerms {
        // No layer here behaves differently in training (GroupNorm and frozen
        // BatchNorm both do the same thing either way).
        let (n, _, h, w) = images.size4().expect("images are [N, slices, H, W]");
        assert_eq!(n, targets.len() as i64, "one target set per image");
        let t = self.batch_targets(targets, h, w, images.device());
        self.loss_with_targets(images, &t).into()
    }

    fn predict(&self, images: &Tensor) -> Vec<Vec<Detection>> {
        let (_, _, h, w) = images.size4().expect("images are [N, slices, H, W]");
        let out = tch::no_grad(|| self.forward(images));
        self.decode(&out, w as f32, h as f32)
    }
}

/// The pyramid levels' grids for a `height` x `width` input: every
/// stride-2 layer (stem convolution, max-pool, stage and extra-level
/// convolutions; kernel 3 or 7, padding half the kernel) maps `n` to
/// `ceil(n / 2)`, so the level of stride `s` has `ceil(n / s)` cells.
pub fn level_shapes(cfg: &ModelConfig, height: i64, width: i64) -> Vec<LevelShape> {
    cfg.fpn
        .strides
        .iter()
        .map(|&stride| LevelShape {
            stride,
            rows: (height + stride - 1) / stride,
            cols: (width + stride - 1) / stride,
        })
        .collect()
}

/// Dense targets of a batch of `height` x `width` images on `device`. They
/// need the configuration only, no weights and no forward pass, so a data
/// loader may make them ahead.
pub fn batch_targets(
    cfg: &ModelConfig,
    targets: &[ImageTargets],
    height: i64,
    width: i64,
    device: Device,
) -> BatchTargets {
    let levels = level_shapes(cfg, height, width);
    let assigned: Vec<_> = targets
        .iter()
        .map(|t| assign(&cfg.assign, &levels, t))
        .collect();
    BatchTargets::new(&assigned, device)
}
