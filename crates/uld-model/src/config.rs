//! The detector's configuration: every size and knob of the network, its
//! target assignment, losses and decoding, loadable from TOML and validated
//! with errors that name the bad field and value.
//!
//! Three presets: [`ModelConfig::tiny`] (unit tests, 64 px inputs),
//! [`ModelConfig::small`] (the CPU demo, 288 px, 3 slices) and
//! [`ModelConfig::deeplesion`] (the real-data recipe: 512 px, 9 slices as
//! three 3DCE groups, ResNet-50, strides 4-32).

use std::path::Path;

use serde::{Deserialize, Serialize};
use uld_core::{Error, Location, Result};

/// Everything that sizes and tunes the detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub input: InputConfig,
    pub backbone: BackboneConfig,
    pub fpn: FpnConfig,
    pub head: HeadConfig,
    pub assign: AssignConfig,
    pub loss: LossConfig,
    pub decode: DecodeConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// Slices per sample: `3 * G` with `G` groups of 3 (1 to 9 groups).
    pub slices: i64,
    /// Side in pixels the data pipeline gives the network (square inputs);
    /// the network itself takes any size.
    pub size: i64,
    /// 3DCE-style fusion: run the backbone on each group of 3 slices with
    /// shared weights and fuse the groups' FPN features by concatenation and
    /// a 1x1 convolution per level. Without it the first convolution takes
    /// all `3 * G` slices as channels.
    pub fuse_groups: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// Two 3x3 convolutions (ResNet-18/34).
    Basic,
    /// 1x1, 3x3, 1x1 with 4x expansion (ResNet-50 and deeper).
    Bottleneck,
}

impl BlockKind {
    /// Output channels of a block whose inner width is `width`.
    pub fn expansion(self) -> i64 {
        match self {
            Self::Basic => 1,
            Self::Bottleneck => 4,
        }
    }
}

/// Normalisation of the backbone (batches are small, so no trained BatchNorm).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NormConfig {
    /// GroupNorm with this many groups (each normalised width must divide).
    GroupNorm { groups: i64 },
    /// BatchNorm with frozen statistics and affine parameters (the usual
    /// choice with ImageNet weights); from scratch it is the identity.
    FrozenBatchNorm,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackboneConfig {
    pub block: BlockKind,
    /// Channels of the 7x7 stride-2 stem convolution (64 in torchvision).
    pub stem_width: i64,
    /// Blocks per stage; stage `i` has stride `4 * 2^i` (4, 8, 16, 32).
    pub stage_blocks: Vec<i64>,
    /// Inner width per stage (a bottleneck stage outputs 4x this).
    pub stage_widths: Vec<i64>,
    pub norm: NormConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FpnConfig {
    pub channels: i64,
    /// Strides of the pyramid levels the head runs on: doubling powers of
    /// two from 4 or 8; levels past the backbone's deepest stage are made by
    /// stride-2 convolutions (P6, P7 of FCOS).
    pub strides: Vec<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityKind {
    /// FCOS centerness of the location inside its box.
    Centerness,
    /// IoU of the predicted box with its target box (detached).
    Iou,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadConfig {
    /// 3x3 conv + GroupNorm + ReLU layers in each of the two towers.
    pub convs: i64,
    /// GroupNorm groups in the head towers (must divide `fpn.channels`).
    pub norm_groups: i64,
    /// Initial foreground probability of the classifier (focal-loss prior).
    pub prior_prob: f64,
    pub quality: QualityKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignConfig {
    /// A location is a positive candidate of a box only within this many
    /// strides of the box centre (FCOS center sampling).
    pub center_radius: f64,
    /// Per level `[lo, hi)`: a location is assigned to a box only when the
    /// largest of its four distances to the box sides lies in this range.
    pub size_ranges: Vec<[f64; 2]>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    pub focal_alpha: f64,
    pub focal_gamma: f64,
    pub cls_weight: f64,
    pub box_weight: f64,
    pub quality_weight: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeConfig {
    pub score_threshold: f64,
    /// Candidates kept per level before NMS.
    pub top_k: i64,
    pub nms_iou: f64,
    pub max_detections: i64,
}

/// A failed check: the dotted field name and why.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        message: message.into(),
    }
}

impl ModelConfig {
    pub fn preset(name: &str) -> Result<Self> {
        uld_core::overrides::preset(
            "model preset",
            name,
            &[
                ("tiny", Self::tiny),
                ("small", Self::small),
                ("deeplesion", Self::deeplesion),
            ],
        )
    }

    /// For tests: 64 px, 3 slices, three narrow basic stages, strides 4-16.
    pub fn tiny() -> Self {
        Self {
            input: InputConfig {
                slices: 3,
                size: 64,
                fuse_groups: false,
            },
            backbone: BackboneConfig {
                block: BlockKind::Basic,
                stem_width: 16,
                stage_blocks: vec![1, 1, 1],
                stage_widths: vec![16, 32, 64],
                norm: NormConfig::GroupNorm { groups: 8 },
            },
            fpn: FpnConfig {
                channels: 32,
                strides: vec![4, 8, 16],
            },
            head: HeadConfig {
                convs: 1,
                norm_groups: 8,
                prior_prob: 0.01,
                quality: QualityKind::Centerness,
            },
            assign: AssignConfig {
                center_radius: 1.5,
                size_ranges: vec![[0.0, 8.0], [8.0, 16.0], [16.0, f64::INFINITY]],
            },
            loss: LossConfig::default(),
            decode: DecodeConfig::default(),
        }
    }

    /// The CPU demo: 288 px, 3 slices, a ResNet-18-shaped backbone at half
    /// width, strides 8-32.
    pub fn small() -> Self {
        Self {
            input: InputConfig {
                slices: 3,
                size: 288,
                fuse_groups: false,
            },
            backbone: BackboneConfig {
                block: BlockKind::Basic,
                stem_width: 32,
                stage_blocks: vec![2, 2, 2, 2],
                stage_widths: vec![32, 64, 128, 256],
                norm: NormConfig::GroupNorm { groups: 16 },
            },
            fpn: FpnConfig {
                channels: 96,
                strides: vec![8, 16, 32],
            },
            head: HeadConfig {
                convs: 2,
                norm_groups: 16,
                prior_prob: 0.01,
                quality: QualityKind::Centerness,
            },
            assign: AssignConfig {
                center_radius: 1.5,
                size_ranges: vec![[0.0, 32.0], [32.0, 64.0], [64.0, f64::INFINITY]],
            },
            loss: LossConfig::default(),
            decode: DecodeConfig::default(),
        }
    }

    /// The DeepLesion recipe: 512 px at 0.8 mm, 9 slices fused as three
    /// 3DCE groups, ResNet-50 with frozen BatchNorm (for ImageNet weights),
    /// strides 4-32 so 4 mm lesions (5 px) still get a location.
    pub fn deeplesion() -> Self {
        Self {
            input: InputConfig {
                slices: 9,
                size: 512,
                fuse_groups: true,
            },
            backbone: BackboneConfig {
                block: BlockKind::Bottleneck,
                stem_width: 64,
                stage_blocks: vec![3, 4, 6, 3],
                stage_widths: vec![64, 128, 256, 512],
                norm: NormConfig::FrozenBatchNorm,
            },
            fpn: FpnConfig {
                channels: 256,
                strides: vec![4, 8, 16, 32],
            },
            head: HeadConfig {
                convs: 4,
                norm_groups: 32,
                prior_prob: 0.01,
                quality: QualityKind::Centerness,
            },
            assign: AssignConfig {
                center_radius: 1.5,
                size_ranges: vec![
                    [0.0, 16.0],
                    [16.0, 32.0],
                    [32.0, 64.0],
                    [64.0, f64::INFINITY],
                ],
            },
            loss: LossConfig::default(),
            decode: DecodeConfig::default(),
        }
    }

    /// Slice groups `G` (the input has `3 * G` slices).
    pub fn groups(&self) -> i64 {
        self.input.slices / 3
    }

    /// Output channels of each backbone stage.
    pub fn stage_channels(&self) -> Vec<i64> {
        let e = self.backbone.block.expansion();
        self.backbone.stage_widths.iter().map(|w| w * e).collect()
    }

    /// Reads a TOML file and validates it; errors name the file, and the
    /// line or field.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml_str(&text).map_err(|e| e.at(path))
    }

    /// Parses and validates TOML text.
    pub fn from_toml_str(text: &str) -> std::result::Result<Self, ConfigError> {
        let cfg: Self = toml::from_str(text).map_err(|e| ConfigError::parse(text, &e))?;
        cfg.validate().map_err(ConfigError::Field)?;
        Ok(cfg)
    }

    pub fn to_toml_string(&self) -> String {
        toml::to_string(self).expect("a model config always serialises")
    }

    /// Applies one command-line override `dotted.key=value` (the value in
    /// TOML syntax, e.g. `fpn.channels=64` or `fpn.strides=[8,16]`) and
    /// validates; on error the config is left as it was.
    pub fn set(&mut self, assignment: &str) -> Result<()> {
        self.set_all([assignment])
    }

    /// Applies several overrides, then validates once (so coupled fields,
    /// like `fpn.strides` and `assign.size_ranges`, change together).
    pub fn set_all<'a>(&mut self, assignments: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let cfg = uld_core::overrides::with_overrides(self, assignments)?;
        cfg.validate()
            .map_err(|e| Error::invalid(format!("model config `{}`", e.field), e.message))?;
        *self = cfg;
        Ok(())
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> std::result::Result<(), FieldError> {
        let i = &self.input;
        if i.slices < 3 || i.slices > 27 || i.slices % 3 != 0 {
            return Err(bad(
                "input.slices",
                format!("{} is not 3*G slices with G in 1..=9", i.slices),
            ));
        }
        if i.size < 16 {
            return Err(bad("input.size", format!("{} px is below 16", i.size)));
        }
        let b = &self.backbone;
        if b.stem_width < 1 {
            return Err(bad("backbone.stem_width", format!("{} < 1", b.stem_width)));
        }
        if b.stage_blocks.is_empty() || b.stage_blocks.len() > 4 {
            return Err(bad(
                "backbone.stage_blocks",
                format!("{} stages; 1 to 4 are supported", b.stage_blocks.len()),
            ));
        }
        if let Some(n) = b.stage_blocks.iter().find(|&&n| n < 1) {
            return Err(bad(
                "backbone.stage_blocks",
                format!("a stage with {n} blocks"),
            ));
        }
        if b.stage_widths.len() != b.stage_blocks.len() {
            return Err(bad(
                "backbone.stage_widths",
                format!(
                    "{} widths for {} stages",
                    b.stage_widths.len(),
                    b.stage_blocks.len()
                ),
            ));
        }
        if let Some(w) = b.stage_widths.iter().find(|&&w| w < 1) {
            return Err(bad("backbone.stage_widths", format!("width {w} < 1")));
        }
        if let NormConfig::GroupNorm { groups } = b.norm {
            if groups < 1 {
                return Err(bad("backbone.norm.groups", format!("{groups} < 1")));
            }
            let mut widths = vec![b.stem_width];
            widths.extend(&b.stage_widths);
            widths.extend(self.stage_channels());
            if let Some(w) = widths.iter().find(|&&w| w % groups != 0) {
                return Err(bad(
                    "backbone.norm.groups",
                    format!("{groups} groups do not divide a layer width of {w}"),
                ));
            }
        }
        let f = &self.fpn;
        if f.channels < 1 {
            return Err(bad("fpn.channels", format!("{} < 1", f.channels)));
        }
        if f.strides.is_empty() {
            return Err(bad("fpn.strides", "no levels"));
        }
        if f.strides[0] != 4 && f.strides[0] != 8 {
            return Err(bad(
                "fpn.strides",
                format!(
                    "the finest level has stride {}; it must be 4 or 8 (lesions of 4 mm exist)",
                    f.strides[0]
                ),
            ));
        }
        if f.strides.windows(2).any(|w| w[1] != 2 * w[0]) || *f.strides.last().unwrap() > 128 {
            return Err(bad(
                "fpn.strides",
                format!("{:?} must double from level to level, up to 128", f.strides),
            ));
        }
        let deepest = 4 << (b.stage_blocks.len() - 1);
        if f.strides[0] > deepest {
            return Err(bad(
                "fpn.strides",
                format!(
                    "the finest level's stride {} is past the deepest backbone stage's ({deepest})",
                    f.strides[0]
                ),
            ));
        }
        let h = &self.head;
        if h.convs < 0 {
            return Err(bad("head.convs", format!("{} < 0", h.convs)));
        }
        if h.norm_groups < 1 || f.channels % h.norm_groups != 0 {
            return Err(bad(
                "head.norm_groups",
                format!(
                    "{} groups do not divide fpn.channels = {}",
                    h.norm_groups, f.channels
                ),
            ));
        }
        if !(h.prior_prob > 0.0 && h.prior_prob < 1.0) {
            return Err(bad(
                "head.prior_prob",
                format!("{} is not in (0, 1)", h.prior_prob),
            ));
        }
        let a = &self.assign;
        if a.center_radius.is_nan() || a.center_radius <= 0.0 {
            return Err(bad(
                "assign.center_radius",
                format!("{} is not > 0", a.center_radius),
            ));
        }
        if a.size_ranges.len() != f.strides.len() {
            return Err(bad(
                "assign.size_ranges",
                format!(
                    "{} ranges for {} pyramid levels",
                    a.size_ranges.len(),
                    f.strides.len()
                ),
            ));
        }
        for (k, r) in a.size_ranges.iter().enumerate() {
            if !(r[0] >= 0.0 && r[1] > r[0]) || r[0].is_infinite() {
                return Err(bad(
                    "assign.size_ranges",
                    format!("level {k}: [{}, {}] is not 0 <= lo < hi", r[0], r[1]),
                ));
            }
            if k > 0 && r[0] < a.size_ranges[k - 1][0] {
                return Err(bad(
                    "assign.size_ranges",
                    format!("level {k}: lower bound {} below the previous level's", r[0]),
                ));
            }
        }
        let l = &self.loss;
        if !(0.0..=1.0).contains(&l.focal_alpha) {
            return Err(bad(
                "loss.focal_alpha",
                format!("{} is not in [0, 1]", l.focal_alpha),
            ));
        }
        if !l.focal_gamma.is_finite() || l.focal_gamma < 0.0 {
            return Err(bad("loss.focal_gamma", format!("{} < 0", l.focal_gamma)));
        }
        for (name, w) in [
            ("loss.cls_weight", l.cls_weight),
            ("loss.box_weight", l.box_weight),
            ("loss.quality_weight", l.quality_weight),
        ] {
            if !(w >= 0.0 && w.is_finite()) {
                return Err(bad(name, format!("{w} is not a finite weight >= 0")));
            }
        }
        let d = &self.decode;
        if !(0.0..1.0).contains(&d.score_threshold) {
            return Err(bad(
                "decode.score_threshold",
                format!("{} is not in [0, 1)", d.score_threshold),
            ));
        }
        if d.top_k < 1 {
            return Err(bad("decode.top_k", format!("{} < 1", d.top_k)));
        }
        if !(d.nms_iou > 0.0 && d.nms_iou <= 1.0) {
            return Err(bad(
                "decode.nms_iou",
                format!("{} is not in (0, 1]", d.nms_iou),
            ));
        }
        if d.max_detections < 1 {
            return Err(bad(
                "decode.max_detections",
                format!("{} < 1", d.max_detections),
            ));
        }
        Ok(())
    }
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            focal_alpha: 0.25,
            focal_gamma: 2.0,
            cls_weight: 1.0,
            box_weight: 1.0,
            quality_weight: 1.0,
        }
    }
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self {
            score_threshold: 0.05,
            top_k: 1000,
            nms_iou: 0.5,
            max_detections: 100,
        }
    }
}

/// Why a TOML text is not a valid model config.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// Not TOML, an unknown field or a value of the wrong type.
    Parse { line: Option<u64>, message: String },
    /// A value out of range.
    Field(FieldError),
}

impl ConfigError {
    fn parse(text: &str, e: &toml::de::Error) -> Self {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() as u64 + 1);
        Self::Parse {
            line,
            message: e.message().to_string(),
        }
    }

    /// The error as a [`uld_core::Error`] naming the file.
    pub fn at(self, path: &Path) -> Error {
        match self {
            Self::Parse { line, message } => {
                let mut loc = Location::file(path);
                if let Some(l) = line {
                    loc = loc.line(l);
                }
                Error::data(loc, message)
            }
            Self::Field(f) => Error::data(Location::file(path).field(f.field), f.message),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Parse {
                line: Some(l),
                message,
            } => write!(f, "line {l}: {message}"),
            Self::Parse {
                line: None,
                message,
            } => write!(f, "{message}"),
            Self::Field(e) => write!(f, "field `{}`: {}", e.field, e.message),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_round_trip_through_toml() {
        for name in ["tiny", "small", "deeplesion"] {
            let cfg = ModelConfig::preset(name).unwrap();
            cfg.validate().unwrap();
            let text = cfg.to_toml_string();
            assert_eq!(ModelConfig::from_toml_str(&text).unwrap(), cfg, "{name}");
        }
        assert_eq!(ModelConfig::deeplesion().groups(), 3);
        assert_eq!(
            ModelConfig::deeplesion().stage_channels(),
            [256, 512, 1024, 2048]
        );
        assert!(
            ModelConfig::preset("huge")
                .unwrap_err()
                .to_string()
                .contains("huge")
        );
    }

    #[test]
    fn bad_values_name_field_and_value() {
        let base = ModelConfig::tiny().to_toml_string();
        let cases = [
            ("slices = 3", "slices = 4", "input.slices", "4"),
            (
                "strides = [4, 8, 16]",
                "strides = [16, 32, 64]",
                "fpn.strides",
                "16",
            ),
            (
                "strides = [4, 8, 16]",
                "strides = [4, 16, 32]",
                "fpn.strides",
                "[4, 16, 32]",
            ),
            (
                "norm_groups = 8",
                "norm_groups = 5",
                "head.norm_groups",
                "5",
            ),
            ("nms_iou = 0.5", "nms_iou = 1.5", "decode.nms_iou", "1.5"),
            (
                "focal_alpha = 0.25",
                "focal_alpha = -0.1",
                "loss.focal_alpha",
                "-0.1",
            ),
            (
                "stage_widths = [16, 32, 64]",
                "stage_widths = [16, 32]",
                "backbone.stage_widths",
                "2 widths",
            ),
        ];
        for (from, to, field, value) in cases {
            assert!(base.contains(from), "{from} not in\n{base}");
            let text = base.replace(from, to);
            let err = ModelConfig::from_toml_str(&text).unwrap_err();
            let ConfigError::Field(f) = &err else {
                panic!("{to}: expected a field error, got {err}")
            };
            assert_eq!(f.field, field, "{to}");
            assert!(f.message.contains(value), "{to}: {}", f.message);
        }
        let err = ModelConfig::from_toml_str(&base.replace("groups = 8", "groups = 3"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("backbone.norm.groups") && err.contains("3 groups"),
            "{err}"
        );
    }

    #[test]
    fn unknown_fields_and_wrong_types_give_the_line() {
        let base = ModelConfig::tiny().to_toml_string();
        let text = base.replace("channels = 32", "chanels = 32");
        let err = ModelConfig::from_toml_str(&text).unwrap_err();
        let line = text.lines().position(|l| l.contains("chanels")).unwrap() as u64 + 1;
        match &err {
            ConfigError::Parse {
                line: Some(l),
                message,
            } => {
                assert_eq!(*l, line);
                assert!(message.contains("chanels"), "{message}");
            }
            other => panic!("{other}"),
        }
        let path = Path::new("model.toml");
        let full = err.at(path).to_string();
        assert!(
            full.contains("model.toml") && full.contains(&format!("line {line}")),
            "{full}"
        );
        let err = ModelConfig::from_toml_str(&base.replace("top_k = 1000", "top_k = \"many\""));
        assert!(matches!(err, Err(ConfigError::Parse { line: Some(_), .. })));
    }

    #[test]
    fn loading_a_file_names_the_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        let text = ModelConfig::small()
            .to_toml_string()
            .replace("center_radius = 1.5", "center_radius = 0.0");
        std::fs::write(&path, text).unwrap();
        let err = ModelConfig::load(&path).unwrap_err();
        let loc = err.location().expect("a data error");
        assert_eq!(loc.path, path);
        assert_eq!(loc.field.as_deref(), Some("assign.center_radius"));
    }

    #[test]
    fn overrides_set_dotted_fields_and_are_validated() {
        let mut cfg = ModelConfig::small();
        cfg.set("fpn.channels=64").unwrap();
        cfg.set("head.norm_groups = 8").unwrap();
        cfg.set("backbone.norm={kind=\"frozen_batch_norm\"}")
            .unwrap();
        cfg.set("head.quality=iou").unwrap();
        assert_eq!(cfg.fpn.channels, 64);
        assert_eq!(cfg.head.norm_groups, 8);
        assert_eq!(cfg.backbone.norm, NormConfig::FrozenBatchNorm);
        assert_eq!(cfg.head.quality, QualityKind::Iou);
        let err = cfg.set("fpn.chanels=3").unwrap_err().to_string();
        assert!(err.contains("chanels"), "{err}");
        let err = cfg.set("decode.top_k=0").unwrap_err().to_string();
        assert!(
            err.contains("decode.top_k") && err.contains("0 < 1"),
            "{err}"
        );
        assert_eq!(
            cfg.decode.top_k, 1000,
            "a rejected override leaves the config as it was"
        );
    }
}
