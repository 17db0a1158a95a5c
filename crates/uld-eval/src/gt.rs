//! Ground truth: evaluation units (key images or sub-volumes) and their
//! lesions, in uld's conventions (0-based pixels, 0-based slices inside the
//! unit).

use std::collections::HashMap;

use serde::Serialize;
use uld_core::Box3;

/// One annotated lesion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GtLesion {
    /// In-plane box (0-based pixels) and the inclusive slice range inside the
    /// unit. A 2D annotation on slice `z` has `z1 == z2 == z`; key-slice
    /// ground truth uses slice 0.
    pub bbox: Box3,
    /// Attributes for breakdowns, where the source has them.
    pub attrs: LesionAttrs,
}

/// What breakdowns group lesions by. `None` where the source does not say.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LesionAttrs {
    /// RECIST long diameter in mm.
    pub long_diameter_mm: Option<f64>,
    /// Coarse lesion type name (DeepLesion's `Coarse_lesion_type`).
    pub lesion_type: Option<String>,
    /// Slice interval of the series in mm.
    pub slice_interval_mm: Option<f64>,
}

/// One evaluation unit: a key image (keyslice) or a sub-volume.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GtUnit {
    /// Normalised key (see [`normalize_key`]).
    pub key: String,
    /// Lesions; may be empty (an image or volume without lesions still
    /// counts in the false positives per image).
    pub lesions: Vec<GtLesion>,
}

/// A complete ground-truth set: the units evaluated, in a fixed order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GroundTruth {
    pub units: Vec<GtUnit>,
    /// Where the set came from, for reports.
    pub source: String,
}

impl GroundTruth {
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            units: Vec::new(),
            source: source.into(),
        }
    }

    pub fn lesion_count(&self) -> usize {
        self.units.iter().map(|u| u.lesions.len()).sum()
    }

    /// Key -> unit index.
    pub fn index(&self) -> HashMap<&str, usize> {
        self.units
            .iter()
            .enumerate()
            .map(|(i, u)| (u.key.as_str(), i))
            .collect()
    }
}

/// Builds ground truth unit by unit, units in first-appearance order.
#[derive(Debug, Default)]
pub struct GroundTruthBuilder {
    gt: GroundTruth,
    index: HashMap<String, usize>,
}

impl GroundTruthBuilder {
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            gt: GroundTruth::new(source),
            index: HashMap::new(),
        }
    }

    /// The unit of `key` (normalised), added without lesions when new: a
    /// unit without lesions still counts in the false positives per unit.
    pub fn unit(&mut self, key: &str) -> &mut GtUnit {
        let key = normalize_key(key);
        let units = &mut self.gt.units;
        let u = *self.index.entry(key.to_string()).or_insert_with(|| {
            units.push(GtUnit {
                key: key.to_string(),
                lesions: Vec::new(),
            });
            units.len() - 1
        });
        &mut units[u]
    }

    pub fn push(&mut self, key: &str, lesion: GtLesion) {
        self.unit(key).lesions.push(lesion);
    }

    pub fn build(self) -> GroundTruth {
        self.gt
    }
}

/// Keys are compared without the `.annot` suffix of the Lesion-Harvester
/// `Revised-*` files and without a `.png` suffix, so
/// `001344_01_01_012-024.annot` and `001344_01_01_012-024` name one
/// sub-volume and `000089_01_01_037.png` and `000089_01_01_037` one key image.
pub fn normalize_key(key: &str) -> &str {
    let key = key.trim();
    key.strip_suffix(".annot")
        .or_else(|| key.strip_suffix(".png"))
        .unwrap_or(key)
}

/// The first and last PNG slice number of a sub-volume key
/// `PPPPPP_SS_RR_FFF-LLL`; `None` when the key has no such range.
pub fn subvolume_range(key: &str) -> Option<(u32, u32)> {
    let key = normalize_key(key);
    let (_, range) = key.rsplit_once('_')?;
    let (first, last) = range.split_once('-')?;
    let first: u32 = first.parse().ok()?;
    let last: u32 = last.parse().ok()?;
    (first <= last).then_some((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_normalised() {
        assert_eq!(
            normalize_key("001344_01_01_012-024.annot"),
            "001344_01_01_012-024"
        );
        assert_eq!(normalize_key("000089_01_01_037.png"), "000089_01_01_037");
        assert_eq!(normalize_key(" x "), "x");
        assert_eq!(subvolume_range("000283_13_02_076-136"), Some((76, 136)));
        assert_eq!(
            subvolume_range("000283_13_02_076-136.annot"),
            Some((76, 136))
        );
        assert_eq!(subvolume_range("000089_01_01_037.png"), None);
        assert_eq!(subvolume_range("a_9-3"), None);
    }
}
