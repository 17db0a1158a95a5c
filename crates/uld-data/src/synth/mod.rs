//! `uld synth`: a synthetic dataset in the DeepLesion layout with complete
//! annotations, so that training with missing annotations can be scored.
//!
//! Output under the root:
//! - `Images_png/PPPPPP_SS_RR/KKK.png`: 16-bit slices (HU + 32768), the key
//!   slices and `context_mm` of neighbours each side, as DeepLesion ships them;
//! - `DL_info.csv`: the labelled lesions, all 18 columns in the published
//!   conventions (training rows have type -1, as in the real table);
//! - `lesion_harvester/complete_{split}.json`: every lesion, in the layout of
//!   Lesion-Harvester's revised, completely annotated sets, and
//!   `lesion_harvester/recist_{split}.json`: the labelled ones only;
//! - `synth_manifest.json`: every lesion's 3D extent, per-slice boxes,
//!   contrast and whether it is labelled ([`Manifest`]).
//!
//! Sizes, lesions per image, types, pixel spacing and slice intervals are
//! drawn from [`FittedStats`], fitted to the real val/test tables.

mod annotations;
mod lesion;
mod noise;
mod phantom;
mod plan;
mod stats;
mod write;

pub use annotations::{
    HarvesterBoxes, MANIFEST_FILE, Manifest, ManifestLesion, ManifestSeries, ManifestSlice,
    harvester_json, read_harvester_json, subvolume_key,
};
pub use lesion::LesionShape;
pub use phantom::{Anatomy, Region, Site, SliceGeometry, Tissues};
pub use plan::{
    Plan, PlannedLesion, PlannedSection, PlannedSeries, TORSO_LENGTH_MM, patient_splits,
};
pub use stats::{
    FITTED_CSV, FittedStats, Histogram, QUANTILE_LEVELS, QuantileTable, SPLIT_FRACTIONS,
    interval_um,
};
// The measurements live in a leaf module that the DeepLesion converter uses too.
pub use crate::recist::{BOX_PADDING_PX, Recist, SectionMask};
pub use write::{
    DL_INFO_FILE, WriteSummary, complete_annotations_file, partial_annotations_file, render_slice,
    synthetic_dataset_is_written, write_dataset,
};

use std::path::Path;

use uld_core::{Error, Result};

/// Size presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// For tests: 3 patients, 256x256, seconds.
    Tiny,
    /// The CPU demo and mining benchmark: 120 patients, 320x320.
    Small,
    /// The real dataset's proportions: 4,427 patients, 512x512, +-30 mm.
    Full,
}

impl Preset {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "tiny" => Some(Self::Tiny),
            "small" => Some(Self::Small),
            "full" => Some(Self::Full),
            _ => None,
        }
    }

    pub fn config(self) -> SynthConfig {
        let base = SynthConfig::default();
        match self {
            Self::Tiny => SynthConfig {
                patients: 3,
                image_size: 256,
                context_mm: 8.0,
                ..base
            },
            Self::Small => SynthConfig {
                patients: 120,
                image_size: 320,
                context_mm: 10.0,
                ..base
            },
            // DeepLesion: 4,427 patients, 512x512, about +-30 mm around key slices
            Self::Full => SynthConfig {
                patients: 4427,
                image_size: 512,
                context_mm: 30.0,
                ..base
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    pub seed: u64,
    pub patients: usize,
    /// Width and height of every slice; the pixel spacing scales with it
    /// (fitted at 512 px), so lesions keep their sizes in mm.
    pub image_size: usize,
    /// Share of lesions left out of `DL_info.csv` (0 to 0.95).
    pub missing_fraction: f64,
    /// Neighbouring slices shipped each side of a key slice, in mm (8 mm
    /// gives a 9-slice stack at 2 mm).
    pub context_mm: f64,
    /// Write the true type on training rows too (the real table has -1 there).
    pub train_lesion_types: bool,
    /// Patients added to the val split after the `patients` are split by
    /// the published shares: a larger tuning split, with the first
    /// `patients` (and so the training split) the same as without them.
    pub extra_val_patients: usize,
    /// Patients added to the test split the same way: a test split large
    /// enough to resolve small differences between methods.
    pub extra_test_patients: usize,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            patients: 24,
            image_size: 320,
            missing_fraction: 0.5,
            context_mm: 10.0,
            train_lesion_types: false,
            extra_val_patients: 0,
            extra_test_patients: 0,
        }
    }
}

impl SynthConfig {
    pub fn validate(&self) -> Result<()> {
        if self.patients == 0 {
            return Err(Error::invalid("patients", "at least one patient"));
        }
        if !(64..=2048).contains(&self.image_size) {
            return Err(Error::invalid(
                "image size",
                format!("{} is outside 64..=2048", self.image_size),
            ));
        }
        if !(0.0..=0.95).contains(&self.missing_fraction) {
            return Err(Error::invalid(
                "missing fraction",
                format!("{} is outside 0..=0.95", self.missing_fraction),
            ));
        }
        if !(0.0..=200.0).contains(&self.context_mm) {
            return Err(Error::invalid(
                "context",
                format!("{} mm is outside 0..=200", self.context_mm),
            ));
        }
        Ok(())
    }
}

/// Plans and writes a dataset with the committed statistics.
pub fn generate(
    config: &SynthConfig,
    root: &Path,
    progress: &(dyn Fn() + Sync),
) -> Result<WriteSummary> {
    config.validate()?;
    let plan = Plan::new(config, &FittedStats::builtin());
    write_dataset(&plan, root, progress)
}
