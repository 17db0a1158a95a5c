//! The lesions a detector mines on annotated key images: its predictions
//! that the merge rule of mining turns into pseudo lesions (confident, not
//! an annotated lesion), and, where complete annotations are known, how
//! many of them are real unlabelled lesions.

use std::collections::BTreeMap;

use serde::Serialize;
use uld_core::{Box2, Result};
use uld_data::loader::KeyImage;
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
}

impl MinedScore {
    /// Adds one image: its `mined` and `labelled` boxes and `complete`
    /// annotations, all in the same pixels. Returns, per mined box, whether
    /// it is an unlabelled lesion.
    pub fn add(&mut self, mined: &[Box2], labelled: &[Box2], complete: &[Box2]) -> Vec<bool> {
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
        self.unlabelled_found += unlabelled.iter().filter(|u| hit(u, mined)).count();
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
        })
    }

    pub fn merge(&mut self, other: &Self) {
        self.true_mined += other.true_mined;
        self.false_mined += other.false_mined;
        self.unlabelled += other.unlabelled;
        self.unlabelled_found += other.unlabelled_found;
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
    /// find K of U unlabelled lesions on these images (recall R)".
    pub fn describe(&self) -> String {
        let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1}%", 100.0 * v));
        format!(
            "{} of {} mined lesions are unlabelled lesions (precision {}); they find {} of {} unlabelled lesions on these images (recall {})",
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
        );
        assert_eq!(truth, vec![true, false, false]);
        assert_eq!(
            score,
            MinedScore {
                true_mined: 1,
                false_mined: 2,
                unlabelled: 2,
                unlabelled_found: 1
            }
        );
        assert_eq!(score.precision(), Some(1.0 / 3.0));
        assert_eq!(score.recall(), Some(0.5));
        assert_eq!(MinedScore::default().precision(), None);
    }
}
