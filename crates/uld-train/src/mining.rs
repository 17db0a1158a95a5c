//! Teacher-student lesion mining: the settings, and the rule that merges the
//! teacher's predictions with the partial ground truth of one image.
//!
//! The merge rule, applied per image in one view's pixels:
//! 1. predictions are visited by descending score (ties keep their order);
//! 2. a prediction that overlaps an annotated box (their intersection
//!    covers at least `same_lesion_overlap` of the smaller box) is that
//!    lesion, or a part of it, and is dropped;
//! 3. a prediction with score >= `tau_high` becomes a pseudo lesion, unless
//!    it overlaps an earlier pseudo lesion in that same way (a duplicate or
//!    a part) or the image already has `max_pseudo_per_image` of them;
//! 4. with the ignore band on, predictions in [`tau_low`, `tau_high`), and
//!    confident ones beyond the cap, become ignore regions: no background
//!    loss is taken there.
//!
//! Pseudo lesions weigh 1, or their score with `soft_weights`.
//!
//! With `burn_in_ignore`, the burn-in takes the teacher's predictions too:
//! every one scoring at least `tau_low` that is not an annotated lesion is an
//! ignore region, so the detector is not taught to call the unlabelled
//! lesions background before it is asked to mine them (SparseDet's
//! pseudo-positive mining).
//!
//! With `teacher_flip`, the teacher also predicts on the mirror image, and
//! the rule takes the two views' agreement (`crate::mirror`): a lesion
//! both views find keeps the mean of their scores, one only a single view
//! finds half its score, so a view-specific false positive must score twice
//! as high to be mined.
//!
//! With a prediction bank (`bank_visits` > 0), a confident prediction is
//! learned only once it recurs: found on at least `bank_hits` of its image's
//! last `bank_visits` visits (`crate::bank`); until then it is neither
//! learned nor ignored.

use serde::{Deserialize, Serialize};
use uld_core::{Box2, Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MiningConfig {
    /// Teacher scores at or above this become pseudo lesions.
    pub tau_high: f32,
    /// Scores in [tau_low, tau_high) become ignore regions.
    pub tau_low: f32,
    /// Teacher update `t = m t + (1 - m) s`.
    pub ema_momentum: f64,
    /// Share of the run trained supervised before mining starts.
    pub burn_in_fraction: f64,
    /// Share of the smaller box two boxes' intersection covers at which
    /// they are one lesion (a prediction and an annotated box, or two
    /// predictions): parts of a lesion count as the lesion.
    pub same_lesion_overlap: f32,
    pub max_pseudo_per_image: usize,
    /// Ablation switches.
    pub ignore_band: bool,
    /// false: the teacher is a plain copy of the student at each step.
    pub ema_teacher: bool,
    /// false: teacher and student see the same (weak) view.
    pub weak_strong_views: bool,
    pub soft_weights: bool,
    /// During burn-in, ignore the teacher's predictions scoring at least
    /// `tau_low` away from annotated lesions.
    pub burn_in_ignore: bool,
    /// The teacher's score of a box is its mean over the image and its
    /// mirror image (a view that misses the box scores it 0).
    pub teacher_flip: bool,
    /// The visits of an image the prediction bank remembers; 0: no bank,
    /// every confident prediction is learned at once.
    pub bank_visits: usize,
    /// Of those visits (this one included), on how many a confident
    /// prediction must be found before it is learned.
    pub bank_hits: usize,
}

impl Default for MiningConfig {
    fn default() -> Self {
        Self {
            tau_high: 0.5,
            tau_low: 0.3,
            ema_momentum: 0.999,
            burn_in_fraction: 0.15,
            same_lesion_overlap: 0.3,
            max_pseudo_per_image: 8,
            ignore_band: true,
            ema_teacher: true,
            weak_strong_views: true,
            soft_weights: false,
            burn_in_ignore: false,
            teacher_flip: false,
            bank_visits: 0,
            bank_hits: 2,
        }
    }
}

impl MiningConfig {
    pub fn validate(&self) -> Result<()> {
        let invalid =
            |field: &str, m: String| Err(Error::invalid(format!("config `mining.{field}`"), m));
        if !(0.0..=1.0).contains(&self.tau_high) || !(0.0..=1.0).contains(&self.tau_low) {
            return invalid(
                "tau_high",
                format!(
                    "thresholds must be in [0, 1], got {} and {}",
                    self.tau_high, self.tau_low
                ),
            );
        }
        if self.tau_low > self.tau_high {
            return invalid(
                "tau_low",
                format!("{} is above tau_high {}", self.tau_low, self.tau_high),
            );
        }
        if !(0.0..1.0).contains(&self.ema_momentum) {
            return invalid(
                "ema_momentum",
                format!("must be in [0, 1), got {}", self.ema_momentum),
            );
        }
        if !(0.0..=1.0).contains(&self.burn_in_fraction) {
            return invalid(
                "burn_in_fraction",
                format!("must be in [0, 1], got {}", self.burn_in_fraction),
            );
        }
        if !(0.0..=1.0).contains(&self.same_lesion_overlap) {
            return invalid(
                "same_lesion_overlap",
                format!("must be in [0, 1], got {}", self.same_lesion_overlap),
            );
        }
        if self.bank_visits > 0 && !(1..=self.bank_visits).contains(&self.bank_hits) {
            return invalid(
                "bank_hits",
                format!(
                    "must be in [1, bank_visits = {}], got {}",
                    self.bank_visits, self.bank_hits
                ),
            );
        }
        Ok(())
    }

    /// Whether confident predictions wait in the prediction bank until they recur.
    pub fn banked(&self) -> bool {
        self.bank_visits > 0
    }

    /// What the student learns from the teacher, as a phrase: "learned
    /// ... as lesions ...".
    pub fn rule(&self) -> String {
        let weights = if self.soft_weights {
            ", weighted by their score"
        } else {
            ""
        };
        let teacher = if self.teacher_flip {
            "teacher's predictions, averaged over the image and its mirror image,"
        } else {
            "teacher's predictions"
        };
        let recurring = if self.banked() {
            format!(
                ", once found on {} of their image's last {} visits",
                self.bank_hits, self.bank_visits
            )
        } else {
            String::new()
        };
        let mut rule = format!(
            "learned the {teacher} scoring at least {}{recurring} as lesions (at most {} per \
             image{weights})",
            self.tau_high, self.max_pseudo_per_image
        );
        if self.ignore_band {
            rule.push_str(&format!(
                " and ignored those in [{}, {})",
                self.tau_low, self.tau_high
            ));
        }
        if self.burn_in_ignore {
            rule.push_str(&format!(
                ", after a burn-in that ignored those scoring at least {}",
                self.tau_low
            ));
        }
        rule
    }

    /// The step at which mining starts in a run of `steps`.
    pub fn burn_in_steps(&self, steps: u64) -> u64 {
        (steps as f64 * self.burn_in_fraction).round() as u64
    }
}

/// What the student trains on for one image, besides its annotated boxes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PseudoLabels {
    pub boxes: Vec<Box2>,
    pub scores: Vec<f32>,
    pub weights: Vec<f32>,
    pub ignore: Vec<Box2>,
}

/// The predictions that do not fall on a known negative (a region a
/// reviewer rejected): those are background, never mined nor ignored.
pub fn outside_negatives(
    predictions: Vec<(Box2, f32)>,
    negatives: &[Box2],
    config: &MiningConfig,
) -> Vec<(Box2, f32)> {
    if negatives.is_empty() {
        return predictions;
    }
    predictions
        .into_iter()
        .filter(|(b, _)| {
            !negatives
                .iter()
                .any(|n| n.overlap_of_smaller(b) >= config.same_lesion_overlap)
        })
        .collect()
}

/// The IoU at which two predictions of one image from two views (the
/// mirror image's, mirrored back) or two visits are the same box: a lesion
/// gives nearly the same box each time.
pub const SAME_BOX_IOU: f32 = 0.5;

/// Merges the teacher's `(box, score)` predictions with an image's annotated boxes.
pub fn merge_pseudo_labels(
    annotated: &[Box2],
    predictions: &[(Box2, f32)],
    config: &MiningConfig,
) -> PseudoLabels {
    let mut order: Vec<usize> = (0..predictions.len()).collect();
    order.sort_by(|&a, &b| predictions[b].1.total_cmp(&predictions[a].1));
    let mut out = PseudoLabels::default();
    let overlaps = |b: &Box2, others: &[Box2]| {
        others
            .iter()
            .any(|o| o.overlap_of_smaller(b) >= config.same_lesion_overlap)
    };
    for i in order {
        let (b, score) = predictions[i];
        if !b.is_valid() || score < config.tau_low || overlaps(&b, annotated) {
            continue;
        }
        let confident = score >= config.tau_high;
        if confident && out.boxes.len() < config.max_pseudo_per_image {
            if !overlaps(&b, &out.boxes) {
                out.boxes.push(b);
                out.scores.push(score);
                out.weights
                    .push(if config.soft_weights { score } else { 1.0 });
            }
        } else if config.ignore_band {
            out.ignore.push(b);
        }
    }
    out
}

/// The burn-in's ignore regions (with `burn_in_ignore`): every prediction
/// scoring at least `tau_low` that is not an annotated lesion, nothing learned.
pub fn burn_in_ignore_regions(
    annotated: &[Box2],
    predictions: &[(Box2, f32)],
    config: &MiningConfig,
) -> Vec<Box2> {
    let nothing_confident = MiningConfig {
        tau_high: f32::INFINITY,
        ignore_band: true,
        ..config.clone()
    };
    merge_pseudo_labels(annotated, predictions, &nothing_confident).ignore
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32, y: f32, s: f32) -> Box2 {
        Box2::new(x, y, x + s, y + s)
    }

    #[test]
    fn confident_new_lesions_become_pseudo_boxes_and_the_band_is_ignored() {
        let gt = [b(10.0, 10.0, 20.0)];
        let preds = [
            (b(11.0, 11.0, 20.0), 0.95),  // the annotated lesion again: dropped
            (b(100.0, 100.0, 16.0), 0.8), // a new lesion
            (b(200.0, 50.0, 12.0), 0.4),  // uncertain: ignore region
            (b(300.0, 300.0, 10.0), 0.1), // background
        ];
        let out = merge_pseudo_labels(&gt, &preds, &MiningConfig::default());
        assert_eq!(out.boxes, vec![b(100.0, 100.0, 16.0)]);
        assert_eq!(out.weights, vec![1.0]);
        assert_eq!(out.ignore, vec![b(200.0, 50.0, 12.0)]);
    }

    #[test]
    fn switches_change_the_rule() {
        let preds = [(b(100.0, 100.0, 16.0), 0.8), (b(200.0, 50.0, 12.0), 0.4)];
        let config = MiningConfig {
            ignore_band: false,
            soft_weights: true,
            ..MiningConfig::default()
        };
        let out = merge_pseudo_labels(&[], &preds, &config);
        assert_eq!(out.weights, vec![0.8]);
        assert!(out.ignore.is_empty());
    }

    #[test]
    fn known_negatives_veto_predictions_on_them() {
        let config = MiningConfig::default();
        let predictions = vec![(b(10.0, 10.0, 20.0), 0.9), (b(100.0, 100.0, 20.0), 0.9)];
        let kept = outside_negatives(predictions.clone(), &[b(12.0, 12.0, 20.0)], &config);
        assert_eq!(kept, vec![predictions[1]]);
        assert_eq!(
            outside_negatives(predictions.clone(), &[], &config),
            predictions
        );
        let merged = merge_pseudo_labels(&[], &kept, &config);
        assert_eq!(merged.boxes, vec![b(100.0, 100.0, 20.0)]);
    }

    #[test]
    fn the_cap_keeps_the_best_and_ignores_the_rest() {
        let preds: Vec<(Box2, f32)> = (0..5)
            .map(|i| (b(40.0 * i as f32, 0.0, 20.0), 0.6 + 0.05 * i as f32))
            .collect();
        let config = MiningConfig {
            max_pseudo_per_image: 2,
            ..MiningConfig::default()
        };
        let out = merge_pseudo_labels(&[], &preds, &config);
        assert_eq!(out.scores, vec![0.8, 0.75]);
        assert_eq!(out.ignore.len(), 3);
    }

    #[test]
    fn duplicate_confident_predictions_give_one_pseudo_lesion() {
        let preds = [(b(100.0, 100.0, 16.0), 0.9), (b(101.0, 101.0, 16.0), 0.85)];
        let out = merge_pseudo_labels(&[], &preds, &MiningConfig::default());
        assert_eq!(out.boxes.len(), 1);
        assert_eq!(out.scores, vec![0.9]);
    }

    #[test]
    fn parts_of_a_lesion_are_that_lesion() {
        let gt = [b(10.0, 10.0, 40.0)];
        let preds = [
            (b(14.0, 14.0, 10.0), 0.9),   // a part of the annotated lesion (IoU 0.06)
            (b(100.0, 100.0, 40.0), 0.8), // a new lesion
            (b(110.0, 110.0, 12.0), 0.7), // a part of that new lesion
        ];
        let out = merge_pseudo_labels(&gt, &preds, &MiningConfig::default());
        assert_eq!(out.boxes, vec![b(100.0, 100.0, 40.0)]);
        assert!(out.ignore.is_empty(), "{:?}", out.ignore);
    }

    #[test]
    fn the_burn_in_ignores_what_it_would_later_mine_and_learns_nothing() {
        let gt = [b(10.0, 10.0, 20.0)];
        let preds = [
            (b(11.0, 11.0, 20.0), 0.95),  // the annotated lesion: dropped
            (b(100.0, 100.0, 16.0), 0.8), // confident, unlabelled: ignored
            (b(200.0, 50.0, 12.0), 0.35), // in the band: ignored
            (b(300.0, 300.0, 10.0), 0.1), // background stays background
        ];
        let config = MiningConfig {
            ignore_band: false,
            burn_in_ignore: true,
            ..MiningConfig::default()
        };
        assert_eq!(
            burn_in_ignore_regions(&gt, &preds, &config),
            vec![b(100.0, 100.0, 16.0), b(200.0, 50.0, 12.0)]
        );
    }

    #[test]
    fn bad_thresholds_are_named() {
        let c = MiningConfig {
            tau_low: 0.8,
            ..MiningConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("mining.tau_low")
        );
        assert_eq!(MiningConfig::default().burn_in_steps(1000), 150);
        let too_many_hits = MiningConfig {
            bank_visits: 3,
            bank_hits: 4,
            ..MiningConfig::default()
        };
        assert!(
            too_many_hits
                .validate()
                .unwrap_err()
                .to_string()
                .contains("mining.bank_hits")
        );
    }

    #[test]
    fn the_rule_names_the_switches_that_are_on() {
        let banded = MiningConfig::default().rule();
        assert!(banded.contains("at least 0.5") && banded.contains("ignored those in [0.3, 0.5)"));
        let soft = MiningConfig {
            ignore_band: false,
            soft_weights: true,
            ..MiningConfig::default()
        }
        .rule();
        assert!(soft.contains("weighted by their score") && !soft.contains("ignored"));
        let banked = MiningConfig {
            bank_visits: 3,
            ..MiningConfig::default()
        }
        .rule();
        assert!(banked.contains("once found on 2 of their image's last 3 visits"));
    }
}
