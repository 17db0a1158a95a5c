//! Greedy non-maximum suppression.
//!
//! Boxes are visited by descending score (ties keep input order, so results
//! are deterministic); a box is kept unless its IoU with an already kept box
//! exceeds the threshold. Kept boxes are indexed in a uniform grid so each
//! candidate is compared only with kept boxes near it: 10,000 boxes take a
//! few milliseconds instead of the tens that the all-pairs loop needs.

use crate::Box2;

/// Indices of the kept boxes, highest score first.
///
/// Boxes that are not valid (non-finite or without area) and scores that are
/// NaN are dropped.
pub fn nms(boxes: &[Box2], scores: &[f32], iou_threshold: f32) -> Vec<usize> {
    nms_limited(boxes, scores, iou_threshold, usize::MAX)
}

/// [`nms`] that stops once `max_kept` boxes are kept: the same first
/// `max_kept` indices, without visiting the candidates after them.
pub fn nms_limited(
    boxes: &[Box2],
    scores: &[f32],
    iou_threshold: f32,
    max_kept: usize,
) -> Vec<usize> {
    assert_eq!(boxes.len(), scores.len(), "one score per box");
    let mut order: Vec<usize> = (0..boxes.len())
        .filter(|&i| boxes[i].is_valid() && !scores[i].is_nan())
        .collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    if order.is_empty() {
        return order;
    }
    let mut grid = Grid::covering(order.iter().map(|&i| &boxes[i]));
    let mut kept: Vec<usize> = Vec::new();
    for i in order {
        if kept.len() >= max_kept {
            break;
        }
        let b = &boxes[i];
        let suppressed = grid
            .neighbours(b)
            .any(|k| boxes[kept[k as usize]].iou(b) > iou_threshold);
        if !suppressed {
            grid.insert(b, kept.len());
            kept.push(i);
        }
    }
    kept
}

/// A uniform grid over the boxes' extent; each cell lists the kept boxes
/// (by their position in the kept list) that touch it.
struct Grid {
    x0: f32,
    y0: f32,
    cell: f32,
    cols: usize,
    rows: usize,
    cells: Vec<Vec<u32>>,
}

impl Grid {
    fn covering<'a>(boxes: impl Iterator<Item = &'a Box2> + Clone) -> Self {
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        let mut sizes = Vec::new();
        for b in boxes {
            x0 = x0.min(b.x1);
            y0 = y0.min(b.y1);
            x1 = x1.max(b.x2);
            y1 = y1.max(b.y2);
            sizes.push(b.width().max(b.height()));
        }
        // Cells about the size of a typical box keep both the cells a box
        // touches and the boxes a cell holds few; the cap bounds memory.
        let mid = sizes.len() / 2;
        let typical = *sizes.select_nth_unstable_by(mid, f32::total_cmp).1;
        let extent = (x1 - x0).max(y1 - y0);
        let cell = typical.max(extent / 256.0).max(f32::MIN_POSITIVE);
        let cols = ((x1 - x0) / cell).ceil().max(1.0) as usize;
        let rows = ((y1 - y0) / cell).ceil().max(1.0) as usize;
        Self {
            x0,
            y0,
            cell,
            cols,
            rows,
            cells: vec![Vec::new(); cols * rows],
        }
    }

    fn span(&self, b: &Box2) -> (usize, usize, usize, usize) {
        let col = |x: f32| (((x - self.x0) / self.cell) as usize).min(self.cols - 1);
        let row = |y: f32| (((y - self.y0) / self.cell) as usize).min(self.rows - 1);
        (col(b.x1), row(b.y1), col(b.x2), row(b.y2))
    }

    fn insert(&mut self, b: &Box2, slot: usize) {
        let (c0, r0, c1, r1) = self.span(b);
        for r in r0..=r1 {
            for c in c0..=c1 {
                self.cells[r * self.cols + c].push(slot as u32);
            }
        }
    }

    /// Kept boxes sharing a cell with `b` (a box may be listed more than once).
    fn neighbours(&self, b: &Box2) -> impl Iterator<Item = u32> + '_ {
        let (c0, r0, c1, r1) = self.span(b);
        (r0..=r1).flat_map(move |r| {
            (c0..=c1).flat_map(move |c| self.cells[r * self.cols + c].iter().copied())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The textbook all-pairs greedy NMS, as the reference for the grid version.
    fn nms_all_pairs(boxes: &[Box2], scores: &[f32], thr: f32) -> Vec<usize> {
        let mut order: Vec<usize> = (0..boxes.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let mut kept: Vec<usize> = Vec::new();
        for i in order {
            if kept.iter().all(|&k| boxes[k].iou(&boxes[i]) <= thr) {
                kept.push(i);
            }
        }
        kept
    }

    #[test]
    fn suppresses_overlapping_lower_scores() {
        let boxes = [
            Box2::new(0.0, 0.0, 10.0, 10.0),
            Box2::new(1.0, 1.0, 11.0, 11.0), // IoU 0.68 with the first
            Box2::new(20.0, 20.0, 30.0, 30.0),
            Box2::new(5.0, 0.0, 15.0, 10.0), // IoU 1/3 with the first
        ];
        let scores = [0.9, 0.95, 0.5, 0.4];
        assert_eq!(nms(&boxes, &scores, 0.5), vec![1, 2, 3]);
        assert_eq!(nms(&boxes, &scores, 0.3), vec![1, 2]);
    }

    #[test]
    fn ties_keep_input_order_and_invalid_boxes_drop() {
        let same = Box2::new(0.0, 0.0, 10.0, 10.0);
        let boxes = [same, same, Box2::new(5.0, 5.0, 5.0, 9.0)];
        assert_eq!(nms(&boxes, &[0.5, 0.5, 0.9], 0.5), vec![0]);
        assert!(nms(&[], &[], 0.5).is_empty());
        assert_eq!(nms(&[same], &[f32::NAN], 0.5), Vec::<usize>::new());
    }

    #[test]
    fn a_limit_keeps_the_first_of_the_full_result() {
        let boxes: Vec<Box2> = (0..50)
            .map(|i| Box2::new(i as f32 * 7.0, 0.0, i as f32 * 7.0 + 10.0, 10.0))
            .collect();
        let scores: Vec<f32> = (0..50).map(|i| ((i * 37) % 50) as f32).collect();
        let full = nms(&boxes, &scores, 0.3);
        assert_eq!(nms_limited(&boxes, &scores, 0.3, 5), full[..5].to_vec());
        assert!(nms_limited(&boxes, &scores, 0.3, 0).is_empty());
    }

    proptest! {
        #[test]
        fn grid_nms_equals_all_pairs_nms(
            raw in prop::collection::vec((0f32..400.0, 0f32..400.0, 1f32..120.0, 1f32..120.0, 0f32..1.0), 0..200),
            thr in 0.1f32..0.9,
        ) {
            let boxes: Vec<Box2> = raw.iter().map(|&(x, y, w, h, _)| Box2::new(x, y, x + w, y + h)).collect();
            let scores: Vec<f32> = raw.iter().map(|r| r.4).collect();
            prop_assert_eq!(nms(&boxes, &scores, thr), nms_all_pairs(&boxes, &scores, thr));
        }
    }
}
