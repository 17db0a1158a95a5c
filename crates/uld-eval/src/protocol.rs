//! The three DeepLesion evaluation protocols and their constants.

use serde::{Deserialize, Serialize};

use crate::interp::Interpolation;

/// Which protocol scores the detections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Official DeepLesion key-slice FROC (3DCE, MULAN): unit = key image,
    /// hit = 2D IoU >= 0.5 with inclusive extents; every detection row is
    /// one detection (`track` and slices are ignored).
    KeySlice,
    /// Lesion-Harvester (Cai et al., TMI 2021): unit = sub-volume, detection
    /// = tracklet of per-slice boxes scored by its highest box; it hits a 2D
    /// ground-truth box when it has a box on that slice with IoU >= 0.5
    /// (pseudo-3D IoU; the tracklet's first box on the slice is used, as
    /// `zs.index(z)` does).
    Harvester,
    /// LENS (Yan et al., TMI 2020): unit = sub-volume, detection = 3D box
    /// (a tracklet's enclosing box), hit = 3D IoBB >= 0.3 with inclusive
    /// extents.
    Lens,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Self::KeySlice => "keyslice",
            Self::Harvester => "harvester",
            Self::Lens => "lens",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "keyslice" | "key-slice" => Some(Self::KeySlice),
            "harvester" | "lesion-harvester" => Some(Self::Harvester),
            "lens" => Some(Self::Lens),
            _ => None,
        }
    }

    /// Overlap a detection needs to hit a lesion.
    pub fn hit_threshold(self) -> f64 {
        match self {
            Self::KeySlice | Self::Harvester => 0.5,
            Self::Lens => 0.3,
        }
    }

    /// The average false positives per unit at which sensitivity is reported:
    /// MULAN's `VAL_FROC_FP` / 3DCE's list; Lesion-Harvester's
    /// `[0.125, ..., 16]`; LENS's `2 ** p for p in range(-3, 11)`.
    pub fn fp_points(self) -> Vec<f64> {
        match self {
            Self::KeySlice => vec![0.5, 1.0, 2.0, 4.0, 8.0, 16.0],
            Self::Harvester => (-3..=4).map(|p| 2f64.powi(p)).collect(),
            Self::Lens => (-3..=10).map(|p| 2f64.powi(p)).collect(),
        }
    }

    /// How many of [`Self::fp_points`] the summary averages: 0.5-4 for
    /// keyslice (`np.mean(det_res[:4])`), 0.125-8 for the others
    /// (`det_res[:7].mean()` in LENS).
    pub fn summary_count(self) -> usize {
        match self {
            Self::KeySlice => 4,
            Self::Harvester | Self::Lens => 7,
        }
    }

    /// The interpolation of the protocol's reference code (for keyslice,
    /// 3DCE extrapolates and MULAN clamps: [`KeySliceVariant`]).
    pub fn reference_interpolation(self, variant: KeySliceVariant) -> Interpolation {
        match self {
            Self::KeySlice => variant.interpolation(),
            Self::Harvester => Interpolation::Extrapolate,
            Self::Lens => Interpolation::Clamp,
        }
    }

    /// Unit name in reports.
    pub fn unit(self) -> &'static str {
        match self {
            Self::KeySlice => "image",
            Self::Harvester | Self::Lens => "sub-volume",
        }
    }
}

/// The two reference implementations of the key-slice protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KeySliceVariant {
    /// CADLab `lesion_detector_3DCE/rcnn/utils/evaluation.py`: extrapolates
    /// past the curve's end. Its evaluation function scores whatever its
    /// test loader gives it, and that loader drops possibly-noisy lesions
    /// (its log: "images: 4831 -> 4817, bboxes: 4927 -> 4912"), so this
    /// variant drops them too.
    #[serde(rename = "3dce")]
    ThreeDce,
    /// CADLab `MULAN_universal_lesion_analysis/.../detection_eval.py`: drops
    /// possibly-noisy lesions, clamps past the curve's end.
    #[default]
    Mulan,
}

impl KeySliceVariant {
    pub fn interpolation(self) -> Interpolation {
        match self {
            Self::ThreeDce => Interpolation::Extrapolate,
            Self::Mulan => Interpolation::Clamp,
        }
    }

    /// Whether this variant's reference drops `Possibly_noisy` lesions (and
    /// the images left without a lesion) from the ground truth: both do.
    pub fn drops_noisy(self) -> bool {
        match self {
            Self::ThreeDce | Self::Mulan => true,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::ThreeDce => "3dce",
            Self::Mulan => "mulan",
        }
    }
}
