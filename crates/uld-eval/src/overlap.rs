//! The overlap rules of the reference evaluation code.
//!
//! All three references (CADLab 3DCE `rcnn/utils/evaluation.py` `IOU`,
//! MULAN `detection_eval.py` `IOU`, Lesion-Harvester `evaluation.py` `IoU`,
//! LENS `general_detection_evaluation.py` `IOX`) measure boxes with
//! **inclusive pixel extents**: a box `[x1, y1, x2, y2]` is
//! `(x2 - x1 + 1) x (y2 - y1 + 1)` pixels, and the intersection width is
//! `max(min(x2) - max(x1) + 1, 0)`. Two boxes that share only their edge
//! therefore overlap by one pixel row, unlike uld-core's continuous
//! [`Box2::iou`]. The rules are applied to the numbers as given: the
//! readers put ground truth in uld's 0-based frame (a translation, which no
//! overlap below depends on), so detections in that frame score exactly as
//! the reference scores its own.

use uld_core::{Box2, Box3};

/// Inclusive width and height of a box.
fn extent(b: &Box2) -> (f64, f64) {
    (
        b.x2 as f64 - b.x1 as f64 + 1.0,
        b.y2 as f64 - b.y1 as f64 + 1.0,
    )
}

/// Inclusive intersection area (`+1` extents, clamped at 0).
pub fn inclusive_intersection(a: &Box2, b: &Box2) -> f64 {
    let w = (a.x2.min(b.x2) as f64 - a.x1.max(b.x1) as f64 + 1.0).max(0.0);
    let h = (a.y2.min(b.y2) as f64 - a.y1.max(b.y1) as f64 + 1.0).max(0.0);
    w * h
}

/// 2D IoU with inclusive extents, as 3DCE and MULAN compute it
/// (`inters / uni`, no guard: a zero union gives NaN, as numpy does).
pub fn iou_inclusive(det: &Box2, gt: &Box2) -> f64 {
    let inter = inclusive_intersection(det, gt);
    let (dw, dh) = extent(det);
    let (gw, gh) = extent(gt);
    inter / (dw * dh + gw * gh - inter)
}

/// 2D IoU as Lesion-Harvester's `IoU`: inclusive extents and the union
/// floored at `1e-6` (`inters / np.maximum(1e-6, uni)`).
pub fn iou_harvester(det: &Box2, gt: &Box2) -> f64 {
    let inter = inclusive_intersection(det, gt);
    let (dw, dh) = extent(det);
    let (gw, gh) = extent(gt);
    inter / (dw * dh + gw * gh - inter).max(1e-6)
}

/// 3D intersection over the *detected* box (IoBB) with inclusive extents in
/// x, y and z, as LENS `IOX(dim='3D', metric='IOBB')`. A detected box of
/// zero inclusive volume gives NaN (0/0), which the LENS FROC counts as a
/// false positive.
pub fn iobb3_inclusive(det: &Box3, gt: &Box3) -> f64 {
    let d = (det.z2.min(gt.z2) as f64 - det.z1.max(gt.z1) as f64 + 1.0).max(0.0);
    let inter = inclusive_intersection(&det.xy, &gt.xy) * d;
    let (w, h) = extent(&det.xy);
    let depth = det.z2 as f64 - det.z1 as f64 + 1.0;
    inter / (w * h * depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inclusive_extents_count_edge_pixels() {
        // [0,0,9,9] is 10x10 = 100 pixels; [5,0,14,9] shares columns 5..=9:
        // 5x10 = 50; union 150.
        let a = Box2::new(0.0, 0.0, 9.0, 9.0);
        let b = Box2::new(5.0, 0.0, 14.0, 9.0);
        assert!((iou_inclusive(&a, &b) - 50.0 / 150.0).abs() < 1e-12);
        // Touching at x = 9: one shared column of 10 pixels: 10 / 190.
        let c = Box2::new(9.0, 0.0, 18.0, 9.0);
        assert!((iou_inclusive(&a, &c) - 10.0 / 190.0).abs() < 1e-12);
        // One pixel apart: no overlap.
        let d = Box2::new(10.0, 0.0, 19.0, 9.0);
        assert_eq!(iou_inclusive(&a, &d), 0.0);
        // A single-pixel box [3,3,3,3] has area 1, not 0.
        let p = Box2::new(3.0, 3.0, 3.0, 3.0);
        assert!((iou_inclusive(&p, &p) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn harvester_iou_floors_the_union() {
        // Inverted boxes with a zero inclusive union: numpy-style NaN for
        // 3DCE/MULAN, 0 for Lesion-Harvester.
        let a = Box2::new(0.0, 0.0, -1.0, -1.0);
        assert!(iou_inclusive(&a, &a).is_nan());
        assert_eq!(iou_harvester(&a, &a), 0.0);
        let b = Box2::new(0.0, 0.0, 9.0, 9.0);
        assert_eq!(iou_harvester(&b, &b), 1.0);
    }

    #[test]
    fn iobb_is_over_the_detected_box_with_inclusive_slices() {
        // gt 10x10 px on slices 4..=5; det 20x10 on slices 4..=7 contains it:
        // inter = 10*10*2 = 200, det volume 20*10*4 = 800 -> 0.25.
        let gt = Box3::from_xyzxyz([0.0, 0.0, 4.0, 9.0, 9.0, 5.0]);
        let det = Box3::from_xyzxyz([0.0, 0.0, 4.0, 19.0, 9.0, 7.0]);
        assert!((iobb3_inclusive(&det, &gt) - 0.25).abs() < 1e-12);
        // A detection inside the gt has IoBB 1 however small it is.
        let small = Box3::from_xyzxyz([2.0, 2.0, 4.0, 3.0, 3.0, 4.0]);
        assert_eq!(iobb3_inclusive(&small, &gt), 1.0);
        // Adjacent slice ranges (5 and 6) do not overlap.
        let next = Box3::from_xyzxyz([0.0, 0.0, 6.0, 9.0, 9.0, 6.0]);
        assert_eq!(iobb3_inclusive(&next, &gt), 0.0);
        // Zero inclusive volume: NaN.
        let flat = Box3::from_xyzxyz([0.0, 0.0, 4.0, -1.0, 9.0, 4.0]);
        assert!(iobb3_inclusive(&flat, &gt).is_nan());
    }
}
