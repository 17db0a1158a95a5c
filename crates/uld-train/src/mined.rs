//! The lesions a detector mines on annotated key images: its predictions
//! that the merge rule of mining turns into pseudo lesions (confident, not
//! an annotated lesion), and, where complete annotations are known, how
//! many of them are real unlabelled lesions.

use std::collections::BTreeMap;

use serde::Serialize;
use uld_core::{Box2, Result};
use uld_data::loader::KeyImage;
use uld_data::synth::BOX_PADDING_PX;
use uld_eval::evaluate::{SIZE_EDGES_MM, bin_index, bin_order};
use uld_model::Detector;

use crate::detect::DetectSettings;
use crate::mining::{MiningConfig, merge_pseudo_labels};

/// The score from which reports count a teacher's candidates as mined when
/// its run learns none (`tau_high` 1) or a higher threshold.
pub const REVIEW_TAU: f32 = 0.5;

/// IoU at which a mined box is a lesion of the complete annotations.
pub const MATCH_IOU: f32 = 0.5;

/// The pseudo lesions of one key image, best first, in original pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct MinedImage {
    /// Index of the image in the list mined.
    pub index: usize,
    pub boxes: Vec<Box2>,
    pub scores: Vec<f32>,
}

/// Runs `detector` over `images` and applies the merge rule of `config`
/// against each image's annotated boxes.
pub fn mine_key_images(
    detector: &dyn Detector,
    settings: &DetectSettings,
    images: Vec<KeyImage>,
    config: &MiningConfig,
) -> Result<Vec<MinedImage>> {
    let annotated: Vec<Vec<Box2>> = images.iter().map(|i| i.boxes.clone()).collect();
    let detections = settings.detect(detector, images)?;
    Ok(detections
        .into_iter()
        .map(|d| {
            let predictions: Vec<(Box2, f32)> = d
                .boxes
                .iter()
                .copied()
                .zip(d.scores.iter().copied())
                .collect();
            let pseudo = merge_pseudo_labels(&annotated[d.index], &predictions, config);
            MinedImage {
                index: d.index,
                boxes: pseudo.boxes,
                scores: pseudo.scores,
            }
        })
        .collect())
}

/// Mined lesions scored against complete annotations (IoU >= [`MATCH_IOU`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MinedScore {
    /// Mined boxes that are unlabelled lesions.
    pub true_mined: usize,
    /// Mined boxes that are not.
    pub false_mined: usize,
    /// Unlabelled lesions on the images.
    pub unlabelled: usize,
    /// Unlabelled lesions some mined box found.
    pub unlabelled_found: usize,
    /// The same two counts by lesion size, where the pixel size was given.
    pub by_size: FoundBySize,
}

/// Unlabelled lesions, and those some mined box found, per size bin of the
/// evaluation ([`SIZE_EDGES_MM`]), by the longer side of the lesion's
/// extent: its box less DeepLesion's padding ([`BOX_PADDING_PX`] a side),
/// which for an oblique lesion is up to 1.4 times shorter than its long
/// diameter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct FoundBySize {
    pub unlabelled: [usize; SIZE_EDGES_MM.len() + 1],
    pub found: [usize; SIZE_EDGES_MM.len() + 1],
}

impl FoundBySize {
    fn add(&mut self, lesion: &Box2, found: bool, pixel_mm: [f64; 2]) {
        let side = |px: f32, mm: f64| (px - 2.0 * BOX_PADDING_PX).max(0.0) as f64 * mm;
        let size = side(lesion.width(), pixel_mm[0]).max(side(lesion.height(), pixel_mm[1]));
        let bin = bin_index(&SIZE_EDGES_MM, size);
        self.unlabelled[bin] += 1;
        self.found[bin] += usize::from(found);
    }

    fn merge(&mut self, other: &Self) {
        for bin in 0..self.unlabelled.len() {
            self.unlabelled[bin] += other.unlabelled[bin];
            self.found[bin] += other.found[bin];
        }
    }

    /// "< 10 mm: K of U (R%), 10-30 mm: ..."; `None` when nothing was counted.
    pub fn describe(&self) -> Option<String> {
        if self.unlabelled.iter().all(|&n| n == 0) {
            return None;
        }
        let bins: Vec<String> = bin_order(&SIZE_EDGES_MM)
            .iter()
            .zip(self.unlabelled.iter().zip(&self.found))
            .map(|(label, (&n, &found))| match n {
                0 => format!("{label}: none"),
                n => format!(
                    "{label}: {found} of {n} ({:.1}%)",
                    100.0 * found as f64 / n as f64
                ),
            })
            .collect();
        Some(bins.join(", "))
    }
}

impl MinedScore {
    /// Adds one image: its `mined` and `labelled` boxes and `complete`
    /// annotations, all in the same pixels, and, to count the unlabelled
    /// lesions by size, the image's pixel size in mm (x, y). Returns, per
    /// mined box, whether it is an unlabelled lesion.
    pub fn add(
        &mut self,
        mined: &[Box2],
        labelled: &[Box2],
        complete: &[Box2],
        pixel_mm: Option<[f64; 2]>,
    ) -> Vec<bool> {
        let hit = |a: &Box2, set: &[Box2]| set.iter().any(|b| a.iou(b) >= MATCH_IOU);
        let unlabelled: Vec<Box2> = complete
            .iter()
            .filter(|c| !hit(c, labelled))
            .copied()
            .collect();
        let truth: Vec<bool> = mined.iter().map(|m| hit(m, &unlabelled)).collect();
        let true_mined = truth.iter().filter(|&&t| t).count();
        self.true_mined += true_mined;
        self.false_mined += truth.len() - true_mined;
        self.unlabelled += unlabelled.len();
        for u in &unlabelled {
            let found = hit(u, mined);
            self.unlabelled_found += usize::from(found);
            if let Some(pixel_mm) = pixel_mm {
                self.by_size.add(u, found, pixel_mm);
            }
        }
        truth
    }

    /// The counts a mining step logs (`mined_true`, `mined_false`,
    /// `unlabelled`, `unlabelled_found`), when it logged them.
    pub fn from_stats(stats: &BTreeMap<String, f64>) -> Option<Self> {
        let get = |k: &str| stats.get(k).map(|&v| v as usize);
        Some(Self {
            true_mined: get("mined_true")?,
            false_mined: get("mined_false")?,
            unlabelled: get("unlabelled")?,
            unlabelled_found: get("unlabelled_found")?,
            by_size: FoundBySize::default(),
        })
    }

    pub fn merge(&mut self, other: &Self) {
        self.true_mined += other.true_mined;
        self.false_mined += other.false_mined;
        self.unlabelled += other.unlabelled;
        self.unlabelled_found += other.unlabelled_found;
        self.by_size.merge(&other.by_size);
    }

    /// Share of mined boxes that are unlabelled lesions.
    pub fn precision(&self) -> Option<f64> {
        let mined = self.true_mined + self.false_mined;
        (mined > 0).then(|| self.true_mined as f64 / mined as f64)
    }

    /// Share of unlabelled lesions found.
    pub fn recall(&self) -> Option<f64> {
        (self.unlabelled > 0).then(|| self.unlabelled_found as f64 / self.unlabelled as f64)
    }

    /// "N of M mined lesions are unlabelled lesions (precision P); they
    /// find K of U unlabelled lesions on these images (recall R)", and
    /// where counted, "; by size (the extent's longer side): < 10 mm: ...".
    pub fn describe(&self) -> String {
        let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1}%", 100.0 * v));
        let by_size = self.by_size.describe().map_or(String::new(), |s| {
            format!("; by size (the extent's longer side): {s}")
        });
        format!(
            "{} of {} mined lesions are unlabelled lesions (precision {}); they find {} of {} unlabelled lesions on these images (recall {}){by_size}",
            self.true_mined,
            self.true_mined + self.false_mined,
            pct(self.precision()),
            self.unlabelled_found,
            self.unlabelled,
            pct(self.recall())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32, y: f32) -> Box2 {
        Box2::new(x, y, x + 10.0, y + 10.0)
    }

    #[test]
    fn scores_mined_boxes_against_the_unlabelled_lesions_only() {
        let mut score = MinedScore::default();
        let labelled = [b(0.0, 0.0)];
        let complete = [b(0.0, 0.0), b(50.0, 50.0), b(100.0, 100.0)];
        // one real unlabelled lesion, one re-found labelled one, one false box
        let truth = score.add(
            &[b(50.0, 51.0), b(0.0, 0.0), b(200.0, 200.0)],
            &labelled,
            &complete,
            None,
        );
        assert_eq!(truth, vec![true, false, false]);
        assert_eq!(
            score,
            MinedScore {
                true_mined: 1,
                false_mined: 2,
                unlabelled: 2,
                unlabelled_found: 1,
                by_size: FoundBySize::default(),
            }
        );
        assert_eq!(score.precision(), Some(1.0 / 3.0));
        assert_eq!(score.recall(), Some(0.5));
        assert_eq!(MinedScore::default().precision(), None);
        assert!(!score.describe().contains("by size"));
    }

    #[test]
    fn counts_unlabelled_lesions_by_the_longer_side_of_their_extent_in_mm() {
        let mut score = MinedScore::default();
        let sized = |x: f32, w: f32, h: f32| Box2::new(x, 0.0, x + w, h);
        // boxes padded by 5 px a side around extents that at 0.8 x 1.5 mm
        // pixels measure 8 x 4.5 mm, 12 x 30 mm and 40 x 3 mm
        let complete = [
            sized(0.0, 20.0, 13.0),
            sized(100.0, 25.0, 30.0),
            sized(200.0, 60.0, 12.0),
        ];
        score.add(
            &[complete[1], complete[2]],
            &[],
            &complete,
            Some([0.8, 1.5]),
        );
        assert_eq!(score.by_size.unlabelled, [1, 0, 2]);
        assert_eq!(score.by_size.found, [0, 0, 2]);
        assert!(
            score.describe().ends_with(
                "; by size (the extent's longer side): < 10 mm: 0 of 1 (0.0%), 10-30 mm: none, >= 30 mm: 2 of 2 (100.0%)"
            ),
            "{}",
            score.describe()
        );
    }
}
