//! Decoding one image's head outputs into scored boxes: score
//! `sqrt(sigmoid(cls) * sigmoid(quality))`, a score threshold, the top-k
//! candidates per level, greedy NMS and a cap on detections. Boxes are in
//! the network-input pixel frame, clipped to the image.

use uld_core::{Box2, nms_limited};

use crate::config::DecodeConfig;
use crate::head::{LevelShape, RawImageOutput};

/// A scored box in network-input pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub bbox: Box2,
    pub score: f32,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Detections of one image of `width` x `height` pixels, best first.
pub fn decode(
    cfg: &DecodeConfig,
    levels: &[LevelShape],
    out: &RawImageOutput,
    width: f32,
    height: f32,
) -> Vec<Detection> {
    let total: usize = levels.iter().map(LevelShape::len).sum();
    assert_eq!(out.cls_logits.len(), total, "one logit per location");
    assert_eq!(out.quality_logits.len(), total);
    assert_eq!(out.ltrb.len(), total);
    let threshold = cfg.score_threshold as f32;
    let mut boxes = Vec::new();
    let mut scores = Vec::new();
    let mut offset = 0;
    for level in levels {
        let mut cand: Vec<(usize, f32)> = (0..level.len())
            .filter_map(|i| {
                let k = offset + i;
                let s = (sigmoid(out.cls_logits[k]) * sigmoid(out.quality_logits[k])).sqrt();
                (s > threshold).then_some((i, s))
            })
            .collect();
        let top_k = cfg.top_k as usize;
        if cand.len() > top_k {
            cand.select_nth_unstable_by(top_k, |a, b| b.1.total_cmp(&a.1));
            cand.truncate(top_k);
        }
        for (i, s) in cand {
            let (x, y) = level.location(i);
            let [l, t, r, b] = out.ltrb[offset + i];
            let bbox = Box2::new(x - l, y - t, x + r, y + b).clip(width, height);
            if bbox.is_valid() {
                boxes.push(bbox);
                scores.push(s);
            }
        }
        offset += level.len();
    }
    nms_limited(
        &boxes,
        &scores,
        cfg.nms_iou as f32,
        cfg.max_detections as usize,
    )
    .into_iter()
    .map(|i| Detection {
        bbox: boxes[i],
        score: scores[i],
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logit whose sigmoid is `p`.
    fn logit(p: f32) -> f32 {
        (p / (1.0 - p)).ln()
    }

    fn setup() -> (Vec<LevelShape>, RawImageOutput) {
        // 16x16 input: stride 4 (4x4 locations) and stride 8 (2x2)
        let levels = vec![
            LevelShape {
                stride: 4,
                rows: 4,
                cols: 4,
            },
            LevelShape {
                stride: 8,
                rows: 2,
                cols: 2,
            },
        ];
        let out = RawImageOutput {
            cls_logits: vec![-20.0; 20],
            quality_logits: vec![0.0; 20],
            ltrb: vec![[1.0; 4]; 20],
        };
        (levels, out)
    }

    #[test]
    fn scores_threshold_nms_and_boxes_in_input_pixels() {
        let (levels, mut out) = setup();
        // stride-4 location (row 1, col 2) at (10, 6): cls 0.64, quality 0.25 -> 0.4
        out.cls_logits[6] = logit(0.64);
        out.quality_logits[6] = logit(0.25);
        out.ltrb[6] = [3.0, 2.0, 1.0, 4.0];
        // its neighbour (10 -> 14, 6) predicts almost the same box, lower score 0.3
        out.cls_logits[7] = logit(0.36);
        out.quality_logits[7] = logit(0.25);
        out.ltrb[7] = [7.0, 2.0, -3.0, 4.0];
        // stride-8 location (row 1, col 1) at (12, 12), box past the image
        out.cls_logits[16 + 3] = logit(0.81);
        out.quality_logits[16 + 3] = logit(0.81);
        out.ltrb[16 + 3] = [2.0, 2.0, 10.0, 1.0];
        // below the 0.05 threshold: sqrt(0.05 * 0.04) < 0.05
        out.cls_logits[0] = logit(0.05);
        out.quality_logits[0] = logit(0.04);
        let cfg = DecodeConfig::default();
        let dets = decode(&cfg, &levels, &out, 16.0, 16.0);
        assert_eq!(dets.len(), 2, "{dets:?}");
        assert!((dets[0].score - 0.81).abs() < 1e-5);
        assert_eq!(
            dets[0].bbox,
            Box2::new(10.0, 10.0, 16.0, 13.0),
            "clipped at x = 16"
        );
        assert!((dets[1].score - 0.4).abs() < 1e-5);
        assert_eq!(dets[1].bbox, Box2::new(7.0, 4.0, 11.0, 10.0));
        // without NMS the duplicate survives
        let loose = DecodeConfig {
            nms_iou: 1.0,
            ..cfg.clone()
        };
        assert_eq!(decode(&loose, &levels, &out, 16.0, 16.0).len(), 3);
        let one = DecodeConfig {
            max_detections: 1,
            ..cfg.clone()
        };
        assert_eq!(decode(&one, &levels, &out, 16.0, 16.0).len(), 1);
    }

    #[test]
    fn top_k_applies_per_level() {
        let (levels, mut out) = setup();
        // every location scores; boxes far apart enough not to suppress (1 px boxes)
        for k in 0..20 {
            out.cls_logits[k] = logit(0.5 + 0.02 * k as f32);
            out.quality_logits[k] = logit(0.9);
            out.ltrb[k] = [0.5; 4];
        }
        let cfg = DecodeConfig {
            top_k: 2,
            ..DecodeConfig::default()
        };
        let dets = decode(&cfg, &levels, &out, 16.0, 16.0);
        assert_eq!(dets.len(), 4, "2 per level");
        // the best two of each level: stride-8 locations 3, 2 and stride-4 locations 15, 14
        let centers: Vec<(f32, f32)> = dets.iter().map(|d| d.bbox.center()).collect();
        assert_eq!(
            centers,
            vec![(12.0, 12.0), (4.0, 12.0), (14.0, 14.0), (10.0, 14.0)]
        );
    }
}
