//! Target assignment (FCOS with center sampling) for one image.
//!
//! A location is a positive of a box when it lies inside the box, within
//! `center_radius` strides of the box centre, and the largest of its four
//! distances to the box sides lies in its level's size range; among several
//! such boxes the smallest wins. A box that gets no location that way (a
//! lesion smaller than the stride) takes the location nearest its centre on
//! the level whose range holds its half-size, unless a smaller box holds it.
//!
//! Every other location is a negative, except that a location inside an
//! ignore box gets zero classification weight: ignore regions take part in
//! no background loss. Positives carry their box's weight, so pseudo lesions
//! can be soft-weighted.

use uld_core::Box2;

use crate::config::AssignConfig;
use crate::head::LevelShape;

/// The boxes of one image, in network-input pixels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageTargets {
    pub boxes: Vec<Box2>,
    /// One weight per box (1 for annotated lesions; pseudo lesions may use less).
    pub box_weights: Vec<f32>,
    /// Regions that must not count as background.
    pub ignore: Vec<Box2>,
}

impl ImageTargets {
    /// Boxes with weight 1 and no ignore regions.
    pub fn from_boxes(boxes: Vec<Box2>) -> Self {
        let box_weights = vec![1.0; boxes.len()];
        Self {
            boxes,
            box_weights,
            ignore: Vec::new(),
        }
    }
}

/// Dense per-location targets of one image, in the head's location order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssignedTargets {
    /// Index of the assigned box, `None` for background.
    pub box_index: Vec<Option<usize>>,
    /// Classification loss weight: 1 for negatives, the box weight for
    /// positives, 0 for negatives inside an ignore box.
    pub cls_weight: Vec<f32>,
    /// Distances (left, top, right, bottom) from the location to its box;
    /// zero for background.
    pub ltrb: Vec<[f32; 4]>,
    /// Centerness target of positives (1 for a fallback location of a box
    /// smaller than the stride); zero for background.
    pub centerness: Vec<f32>,
}

impl AssignedTargets {
    pub fn num_positives(&self) -> usize {
        self.box_index.iter().filter(|b| b.is_some()).count()
    }
}

/// FCOS centerness of a location with distances `d` to the box sides.
pub fn centerness(d: [f32; 4]) -> f32 {
    let [l, t, r, b] = d.map(|v| v.max(0.0));
    let lr = l.min(r) / l.max(r).max(f32::MIN_POSITIVE);
    let tb = t.min(b) / t.max(b).max(f32::MIN_POSITIVE);
    (lr * tb).sqrt()
}

fn distances(b: &Box2, x: f32, y: f32) -> [f32; 4] {
    [x - b.x1, y - b.y1, b.x2 - x, b.y2 - y]
}

/// Assigns every location of `levels` (in order) for one image.
///
/// Boxes that are not valid (no area, non-finite) are skipped; the caller
/// validates user data before.
pub fn assign(
    cfg: &AssignConfig,
    levels: &[LevelShape],
    targets: &ImageTargets,
) -> AssignedTargets {
    assert_eq!(
        levels.len(),
        cfg.size_ranges.len(),
        "one size range per level"
    );
    assert_eq!(
        targets.boxes.len(),
        targets.box_weights.len(),
        "one weight per box"
    );
    let total: usize = levels.iter().map(LevelShape::len).sum();
    let mut out = AssignedTargets {
        box_index: vec![None; total],
        cls_weight: vec![1.0; total],
        ltrb: vec![[0.0; 4]; total],
        centerness: vec![0.0; total],
    };
    let valid: Vec<usize> = (0..targets.boxes.len())
        .filter(|&i| targets.boxes[i].is_valid())
        .collect();
    let mut offset = 0;
    for (level, range) in levels.iter().zip(&cfg.size_ranges) {
        let s = level.stride as f32;
        let radius = cfg.center_radius as f32 * s;
        let (lo, hi) = (range[0] as f32, range[1] as f32);
        for &bi in &valid {
            let b = &targets.boxes[bi];
            let (cx, cy) = b.center();
            // Centre-sampling region clipped to the box.
            let region = Box2::new(
                (cx - radius).max(b.x1),
                (cy - radius).max(b.y1),
                (cx + radius).min(b.x2),
                (cy + radius).min(b.y2),
            );
            for (r, c) in grid_cells_inside(level, &region) {
                let k = offset + (r * level.cols + c) as usize;
                let (x, y) = level.location((r * level.cols + c) as usize);
                let d = distances(b, x, y);
                let reach = d.iter().copied().fold(f32::MIN, f32::max);
                if reach < lo || reach >= hi {
                    continue;
                }
                if let Some(prev) = out.box_index[k]
                    && targets.boxes[prev].area() <= b.area()
                {
                    continue;
                }
                set_positive(&mut out, k, bi, d, targets.box_weights[bi], centerness(d));
            }
        }
        offset += level.len();
    }
    assign_fallbacks(cfg, levels, targets, &valid, &mut out);
    for ig in &targets.ignore {
        let mut offset = 0;
        for level in levels {
            for (r, c) in grid_cells_inside(level, ig) {
                let k = offset + (r * level.cols + c) as usize;
                if out.box_index[k].is_none() {
                    out.cls_weight[k] = 0.0;
                }
            }
            offset += level.len();
        }
    }
    out
}

fn set_positive(
    out: &mut AssignedTargets,
    k: usize,
    box_index: usize,
    d: [f32; 4],
    weight: f32,
    quality: f32,
) {
    out.box_index[k] = Some(box_index);
    out.ltrb[k] = d;
    out.cls_weight[k] = weight;
    out.centerness[k] = quality;
}

/// Boxes without a positive location take the location nearest their
/// centre, on the level whose size range holds half their longer side.
fn assign_fallbacks(
    cfg: &AssignConfig,
    levels: &[LevelShape],
    targets: &ImageTargets,
    valid: &[usize],
    out: &mut AssignedTargets,
) {
    let mut has_positive = vec![false; targets.boxes.len()];
    for bi in out.box_index.iter().flatten() {
        has_positive[*bi] = true;
    }
    for &bi in valid {
        if has_positive[bi] {
            continue;
        }
        let b = &targets.boxes[bi];
        let half = b.width().max(b.height()) / 2.0;
        let li = cfg
            .size_ranges
            .iter()
            .position(|r| half < r[1] as f32)
            .unwrap_or(levels.len() - 1);
        let level = &levels[li];
        if level.is_empty() {
            continue;
        }
        let offset: usize = levels[..li].iter().map(LevelShape::len).sum();
        let s = level.stride as f32;
        let (cx, cy) = b.center();
        let c = ((cx / s).floor() as i64).clamp(0, level.cols - 1);
        let r = ((cy / s).floor() as i64).clamp(0, level.rows - 1);
        let k = offset + (r * level.cols + c) as usize;
        if let Some(prev) = out.box_index[k]
            && targets.boxes[prev].area() <= b.area()
        {
            continue;
        }
        let (x, y) = level.location((r * level.cols + c) as usize);
        set_positive(out, k, bi, distances(b, x, y), targets.box_weights[bi], 1.0);
    }
}

/// `(row, col)` of the level's locations strictly inside `region`.
fn grid_cells_inside(level: &LevelShape, region: &Box2) -> impl Iterator<Item = (i64, i64)> {
    let s = level.stride as f32;
    // location x = c * s + s / 2 lies strictly inside (x1, x2) for c in
    // (x1 / s - 1/2, x2 / s - 1/2)
    let first = |v1: f32| ((v1 / s - 0.5).floor() as i64 + 1).max(0);
    let last = |v2: f32, n: i64| ((v2 / s - 0.5).ceil() as i64 - 1).min(n - 1);
    let (c0, c1) = (first(region.x1), last(region.x2, level.cols));
    let (r0, r1) = (first(region.y1), last(region.y2, level.rows));
    (r0..=r1).flat_map(move |r| (c0..=c1).map(move |c| (r, c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AssignConfig {
        AssignConfig {
            center_radius: 1.5,
            size_ranges: vec![[0.0, 8.0], [8.0, 16.0], [16.0, f64::INFINITY]],
        }
    }

    /// A 32x32 input: strides 4, 8, 16 give 8x8, 4x4, 2x2 locations.
    fn levels() -> Vec<LevelShape> {
        [4, 8, 16]
            .iter()
            .map(|&s| LevelShape {
                stride: s,
                rows: 32 / s,
                cols: 32 / s,
            })
            .collect()
    }

    fn positives(a: &AssignedTargets) -> Vec<(usize, usize)> {
        a.box_index
            .iter()
            .enumerate()
            .filter_map(|(k, b)| b.map(|b| (k, b)))
            .collect()
    }

    #[test]
    fn grid_cells_are_the_locations_strictly_inside() {
        let l = LevelShape {
            stride: 4,
            rows: 8,
            cols: 8,
        };
        // locations at 2, 6, 10, 14, ...; (2, 10) holds 6 only, [6, 14) strictly 10
        let cells: Vec<_> = grid_cells_inside(&l, &Box2::new(2.0, 6.0, 10.0, 14.0)).collect();
        assert_eq!(cells, vec![(2, 1)]);
        let all: Vec<_> = grid_cells_inside(&l, &Box2::new(-5.0, -5.0, 40.0, 40.0)).collect();
        assert_eq!(all.len(), 64);
        assert_eq!(
            grid_cells_inside(&l, &Box2::new(3.0, 3.0, 5.0, 5.0)).count(),
            0
        );
    }

    #[test]
    fn a_box_is_assigned_at_the_level_of_its_size_with_center_sampling() {
        // 12x12 box centred at (16, 16): reach from the central stride-8
        // locations (12 or 20) is 10, in [8, 16); stride-4 locations reach
        // at least 8 (outside [0, 8)); stride-16 location (8 or 24) lies
        // outside the box.
        let t = ImageTargets::from_boxes(vec![Box2::new(10.0, 10.0, 22.0, 22.0)]);
        let a = assign(&cfg(), &levels(), &t);
        let pos = positives(&a);
        // stride-8 level starts at 64; locations (row, col) in {1, 2}^2
        let want: Vec<(usize, usize)> = [(1, 1), (1, 2), (2, 1), (2, 2)]
            .iter()
            .map(|&(r, c)| (64 + r * 4 + c, 0))
            .collect();
        assert_eq!(pos, want);
        // location (1, 1) of stride 8 sits at (12, 12): l=2, t=2, r=10, b=10
        assert_eq!(a.ltrb[64 + 5], [2.0, 2.0, 10.0, 10.0]);
        assert!((a.centerness[64 + 5] - 0.2).abs() < 1e-6);
        assert_eq!(
            a.cls_weight.iter().filter(|&&w| w == 1.0).count(),
            a.cls_weight.len()
        );
        assert_eq!(a.num_positives(), 4);
    }

    #[test]
    fn center_sampling_limits_positives_of_a_large_box() {
        // A 30x30 box: the four stride-16 locations (8 | 24) reach 23, in
        // [16, inf), and lie within 1.5 * 16 = 24 px of the centre (16, 16);
        // finer locations reach too far for their ranges. With a radius of
        // 0.25 strides no location is close enough, and the fallback takes
        // the location nearest the centre on the level of the half-size 15,
        // [8, 16): stride 8, cell (2, 2) at (20, 20).
        let t = ImageTargets::from_boxes(vec![Box2::new(1.0, 1.0, 31.0, 31.0)]);
        let a = assign(&cfg(), &levels(), &t);
        assert_eq!(positives(&a).len(), 4);
        assert!(positives(&a).iter().all(|&(k, _)| k >= 80));
        let narrow = AssignConfig {
            center_radius: 0.25,
            ..cfg()
        };
        let a = assign(&narrow, &levels(), &t);
        assert_eq!(positives(&a), vec![(64 + 2 * 4 + 2, 0)]);
        assert_eq!(a.ltrb[74], [19.0, 19.0, 11.0, 11.0]);
        assert_eq!(a.centerness[74], 1.0);
    }

    #[test]
    fn a_box_smaller_than_the_stride_falls_back_to_its_nearest_location() {
        // 3x3 box between stride-4 locations 2 and 6: no location strictly
        // inside; it takes cell floor(4.5 / 4) = 1 in both axes.
        let t = ImageTargets::from_boxes(vec![Box2::new(3.0, 3.0, 6.0, 6.0)]);
        let a = assign(&cfg(), &levels(), &t);
        assert_eq!(positives(&a), vec![(9, 0)]);
        // location (6, 6): l = 3, t = 3, r = 0, b = 0
        assert_eq!(a.ltrb[9], [3.0, 3.0, 0.0, 0.0]);
    }

    #[test]
    fn overlapping_boxes_go_to_the_smaller_and_weights_follow_boxes() {
        let t = ImageTargets {
            boxes: vec![
                Box2::new(8.0, 8.0, 24.0, 24.0),
                Box2::new(10.0, 10.0, 22.0, 22.0),
            ],
            box_weights: vec![1.0, 0.5],
            ignore: vec![],
        };
        let a = assign(&cfg(), &levels(), &t);
        // both boxes reach 10-12 from the central stride-8 locations; the
        // smaller (index 1) wins them.
        for k in [69, 70, 73, 74] {
            assert_eq!(a.box_index[k], Some(1), "location {k}");
            assert_eq!(a.cls_weight[k], 0.5);
        }
    }

    #[test]
    fn ignore_boxes_zero_the_background_weight_but_keep_positives() {
        let t = ImageTargets {
            boxes: vec![Box2::new(10.0, 10.0, 22.0, 22.0)],
            box_weights: vec![1.0],
            ignore: vec![Box2::new(0.0, 0.0, 32.0, 16.0)],
        };
        let a = assign(&cfg(), &levels(), &t);
        let mut offset = 0;
        for level in levels() {
            for i in 0..level.len() {
                let k = offset + i;
                let (_, y) = level.location(i);
                let want = if a.box_index[k].is_some() {
                    1.0
                } else if y < 16.0 {
                    0.0
                } else {
                    1.0
                };
                assert_eq!(
                    a.cls_weight[k], want,
                    "stride {} location {i}",
                    level.stride
                );
            }
            offset += level.len();
        }
        assert_eq!(a.num_positives(), 4);
        // the positive at (12, 12) is inside the ignore box and keeps weight 1
        assert_eq!((a.box_index[69], a.cls_weight[69]), (Some(0), 1.0));
    }

    #[test]
    fn centerness_is_one_at_the_centre_and_falls_off() {
        assert_eq!(centerness([5.0, 5.0, 5.0, 5.0]), 1.0);
        assert!((centerness([2.0, 5.0, 8.0, 5.0]) - 0.5).abs() < 1e-6);
        assert_eq!(centerness([0.0, 1.0, 4.0, 1.0]), 0.0);
    }
}
