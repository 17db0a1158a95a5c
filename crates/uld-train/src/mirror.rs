//! The `teacher_flip` teacher: a detector's predictions on an image and on
//! its mirror image, as one set in which a box's score is the two views'
//! agreement. A lesion looks like a lesion in both views; a false positive
//! of one view is often absent from the other, and keeps half its score.
//! Training's teacher and offline mining (`uld mined`, a benchmark's
//! final-teacher score) predict through it alike.

use tch::Tensor;
use uld_core::Box2;
use uld_data::augment::Affine2;
use uld_model::{Detection, Detector, ImageTargets, LossTerms};

use crate::mining::SAME_BOX_IOU;

/// Any detector, predicting on each image and its mirror image
/// ([`flip_consistent`]); its loss is the detector's own.
pub struct MirrorConsistent<'a>(pub &'a dyn Detector);

impl Detector for MirrorConsistent<'_> {
    fn loss(&self, images: &Tensor, targets: &[ImageTargets], train: bool) -> LossTerms {
        self.0.loss(images, targets, train)
    }

    fn predict(&self, images: &Tensor) -> Vec<Vec<Detection>> {
        let width = images.size().last().copied().unwrap_or_default();
        let back = Affine2::flip_x(width as f64);
        let direct = self.0.predict(images);
        let mirrored = self.0.predict(&images.flip([-1]));
        let pairs = |detections: &[Detection], map: Option<&Affine2>| -> Vec<(Box2, f32)> {
            detections
                .iter()
                .map(|d| (map.map_or(d.bbox, |m| m.map_box(&d.bbox)), d.score))
                .collect()
        };
        direct
            .iter()
            .zip(&mirrored)
            .map(|(direct, mirrored)| {
                let mut fused: Vec<Detection> =
                    flip_consistent(&pairs(direct, None), &pairs(mirrored, Some(&back)))
                        .into_iter()
                        .map(|(bbox, score)| Detection { bbox, score })
                        .collect();
                fused.sort_by(|a, b| b.score.total_cmp(&a.score));
                fused
            })
            .collect()
    }
}

/// One image's predictions from two views, `direct` and `mirrored` (the
/// mirror image's, already mirrored back), as one set. Matched greedily by
/// descending score at IoU >= [`SAME_BOX_IOU`], a pair becomes its mean box
/// with the mean score; a prediction one view alone makes keeps its box
/// with half its score.
pub fn flip_consistent(direct: &[(Box2, f32)], mirrored: &[(Box2, f32)]) -> Vec<(Box2, f32)> {
    let mut order: Vec<usize> = (0..direct.len()).collect();
    order.sort_by(|&a, &b| direct[b].1.total_cmp(&direct[a].1));
    let mut taken = vec![false; mirrored.len()];
    let mut out = Vec::with_capacity(direct.len() + mirrored.len());
    for i in order {
        let (b, score) = direct[i];
        let partner = mirrored
            .iter()
            .enumerate()
            .filter(|(j, (m, _))| !taken[*j] && m.iou(&b) >= SAME_BOX_IOU)
            .max_by(|x, y| x.1.1.total_cmp(&y.1.1));
        match partner {
            Some((j, &(m, other))) => {
                taken[j] = true;
                let mean = Box2::new(
                    (b.x1 + m.x1) / 2.0,
                    (b.y1 + m.y1) / 2.0,
                    (b.x2 + m.x2) / 2.0,
                    (b.y2 + m.y2) / 2.0,
                );
                out.push((mean, (score + other) / 2.0));
            }
            None => out.push((b, score / 2.0)),
        }
    }
    out.extend(
        mirrored
            .iter()
            .zip(&taken)
            .filter(|(_, taken)| !**taken)
            .map(|(&(m, score), _)| (m, score / 2.0)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mining::{MiningConfig, merge_pseudo_labels};

    fn b(x: f32, y: f32, s: f32) -> Box2 {
        Box2::new(x, y, x + s, y + s)
    }

    #[test]
    fn a_lesion_both_views_find_keeps_its_score_and_a_one_view_box_loses_half() {
        let direct = [(b(100.0, 100.0, 20.0), 0.75), (b(10.0, 10.0, 12.0), 0.625)];
        let mirrored = [
            (b(300.0, 40.0, 16.0), 0.875), // only the mirror image sees it
            (b(102.0, 100.0, 20.0), 0.5),  // the first lesion again
        ];
        let fused = flip_consistent(&direct, &mirrored);
        assert_eq!(
            fused,
            vec![
                (b(101.0, 100.0, 20.0), 0.625),
                (b(10.0, 10.0, 12.0), 0.3125),
                (b(300.0, 40.0, 16.0), 0.4375),
            ]
        );
        let mined = merge_pseudo_labels(&[], &fused, &MiningConfig::default());
        assert_eq!(mined.boxes, vec![b(101.0, 100.0, 20.0)]);
        assert!(flip_consistent(&[], &[]).is_empty());
    }

    /// Finds the brightest pixel of each image as a 10-pixel lesion
    /// (content: seen in both views), and a box fixed at the left edge
    /// (a view-specific false positive).
    struct BrightSpot;

    impl Detector for BrightSpot {
        fn loss(&self, _: &Tensor, _: &[ImageTargets], _: bool) -> LossTerms {
            unreachable!("never trained")
        }

        fn predict(&self, images: &Tensor) -> Vec<Vec<Detection>> {
            let (height, width) = (images.size()[2], images.size()[3]);
            (0..images.size()[0])
                .map(|i| {
                    let at = images
                        .get(i)
                        .flatten(0, -1)
                        .argmax(0, false)
                        .int64_value(&[]);
                    let (y, x) = (((at / width) % height) as f32, (at % width) as f32);
                    vec![
                        Detection {
                            bbox: Box2::new(x - 5.0, y - 5.0, x + 5.0, y + 5.0),
                            score: 0.8,
                        },
                        Detection {
                            bbox: b(0.0, 0.0, 8.0),
                            score: 0.6,
                        },
                    ]
                })
                .collect()
        }
    }

    #[test]
    fn the_mirror_teacher_keeps_what_both_views_see() {
        let images = Tensor::zeros([1, 3, 32, 64], (tch::Kind::Float, tch::Device::Cpu));
        let _ = images.get(0).get(1).get(20).get(40).fill_(1.0);
        let fused = MirrorConsistent(&BrightSpot).predict(&images);
        let found: Vec<(Box2, f32)> = fused[0].iter().map(|d| (d.bbox, d.score)).collect();
        assert_eq!(
            found,
            vec![
                (Box2::new(35.5, 15.0, 45.5, 25.0), 0.8),
                (b(0.0, 0.0, 8.0), 0.3),
                (b(56.0, 0.0, 8.0), 0.3),
            ]
        );
    }
}
