//! The prediction bank (`mining.bank_visits`): each training image's
//! confident teacher boxes on its last visits, so that a box is learned only
//! once it recurs. A real lesion the teacher has learned to see persists
//! from one visit to the next (new augmentation, a teacher a few hundred
//! steps older); a false positive of one view or one moment often does not
//! (the "prediction bank" of Bai et al., arXiv 2309.13306, applied at each
//! step instead of before a retraining).
//!
//! Boxes are kept in the image's original pixels, so visits under different
//! augmentations compare. The bank is part of a run's state: checkpoints
//! save it, and a resumed run continues with it.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use uld_core::Box2;
use uld_data::augment::Affine2;

use crate::mining::{MiningConfig, SAME_BOX_IOU};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PredictionBank {
    /// Per dataset item, the confident boxes of its last visits, oldest
    /// first; a visit without any is an empty list.
    visits: BTreeMap<usize, VecDeque<Vec<Box2>>>,
}

impl PredictionBank {
    /// Records a visit of `item` with its `confident` boxes and says, for
    /// each, whether it recurs: whether it is found (IoU >=
    /// [`SAME_BOX_IOU`]) on at least `hits` of the image's last `window`
    /// visits, this one included. Older visits are forgotten.
    pub fn visit(
        &mut self,
        item: usize,
        confident: &[Box2],
        window: usize,
        hits: usize,
    ) -> Vec<bool> {
        let window = window.max(1);
        let earlier = self.visits.entry(item).or_default();
        while earlier.len() >= window {
            earlier.pop_front();
        }
        let recurs = confident
            .iter()
            .map(|b| {
                let found_before = earlier
                    .iter()
                    .filter(|visit| visit.iter().any(|v| v.iou(b) >= SAME_BOX_IOU))
                    .count();
                found_before + 1 >= hits
            })
            .collect();
        earlier.push_back(confident.to_vec());
        recurs
    }

    /// Records a visit of `item` with the teacher's `(box, score)`
    /// `predictions` in a view's pixels (`to_original` maps them to the
    /// image's), remembering the confident ones (at least `tau_high`).
    /// Returns the predictions less the confident ones that do not recur
    /// yet.
    pub fn keep_recurring(
        &mut self,
        item: usize,
        predictions: &[(Box2, f32)],
        to_original: &Affine2,
        config: &MiningConfig,
    ) -> Vec<(Box2, f32)> {
        let confident = |score: f32| score >= config.tau_high;
        let original: Vec<Box2> = predictions
            .iter()
            .filter(|(_, score)| confident(*score))
            .map(|(b, _)| to_original.map_box(b))
            .collect();
        let mut recurs = self
            .visit(item, &original, config.bank_visits, config.bank_hits)
            .into_iter();
        predictions
            .iter()
            .filter(|(_, score)| !confident(*score) || recurs.next().unwrap_or(false))
            .copied()
            .collect()
    }

    /// How many images have been visited.
    pub fn images(&self) -> usize {
        self.visits.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32, y: f32, s: f32) -> Box2 {
        Box2::new(x, y, x + s, y + s)
    }

    #[test]
    fn a_box_is_trusted_once_it_recurs_within_the_window() {
        let mut bank = PredictionBank::default();
        let lesion = b(100.0, 100.0, 20.0);
        let moved = b(102.0, 101.0, 20.0); // the same lesion, another augmentation
        let flicker = b(10.0, 10.0, 12.0);
        assert_eq!(bank.visit(7, &[lesion, flicker], 3, 2), vec![false, false]);
        assert_eq!(bank.visit(7, &[moved], 3, 2), vec![true]);
        // Another image keeps its own record.
        assert_eq!(bank.visit(8, &[lesion], 3, 2), vec![false]);
        // Two empty visits push the first two out of a window of three.
        bank.visit(7, &[], 3, 2);
        bank.visit(7, &[], 3, 2);
        assert_eq!(bank.visit(7, &[flicker], 3, 2), vec![false]);
        assert_eq!(bank.images(), 2);
    }

    #[test]
    fn one_hit_trusts_every_box_and_the_bank_survives_a_checkpoint() {
        let mut bank = PredictionBank::default();
        assert_eq!(bank.visit(0, &[b(0.0, 0.0, 8.0)], 2, 1), vec![true]);
        let saved = serde_json::to_value(&bank).unwrap();
        let mut restored: PredictionBank = serde_json::from_value(saved).unwrap();
        assert_eq!(restored, bank);
        assert_eq!(
            restored.visit(0, &[b(0.0, 0.0, 8.0)], 2, 2),
            bank.visit(0, &[b(0.0, 0.0, 8.0)], 2, 2)
        );
    }

    #[test]
    fn a_confident_prediction_waits_for_its_second_visit_in_original_pixels() {
        let config = MiningConfig {
            bank_visits: 3,
            ..MiningConfig::default()
        };
        let mut bank = PredictionBank::default();
        // The first visit sees the image at twice its size, the second as is.
        let zoomed = [(b(200.0, 200.0, 40.0), 0.9), (b(0.0, 0.0, 20.0), 0.2)];
        let kept = bank.keep_recurring(3, &zoomed, &Affine2::scaling(0.5, 0.5), &config);
        assert_eq!(
            kept,
            vec![zoomed[1]],
            "the unsure box passes, the new one waits"
        );
        let plain = [(b(101.0, 100.0, 20.0), 0.8)];
        let kept = bank.keep_recurring(3, &plain, &Affine2::IDENTITY, &config);
        assert_eq!(kept, plain.to_vec(), "the same lesion again: learned");
    }
}
