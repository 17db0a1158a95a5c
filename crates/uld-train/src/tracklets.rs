//! Linking per-slice 2D detections into 3D lesions (tracklets), as the
//! `harvester` and `lens` protocols expect.
//!
//! Slices are visited in order. Each detection on slice `z`, best score
//! first, joins the open tracklet whose box on slice `z - 1` overlaps it
//! most, if that IoU is at least `min_iou` and no better detection on `z`
//! took that tracklet already; otherwise it starts a tracklet. A tracklet
//! with no box on the previous slice is closed. A tracklet's score is its
//! best box's score, and its best slice is where that box lies.

use uld_core::{Box2, Box3};

/// One detection on one slice (0-based slice index).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SliceDetection {
    pub slice: u32,
    pub bbox: Box2,
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tracklet {
    /// Per-slice boxes, one per slice, in slice order.
    pub boxes: Vec<SliceDetection>,
}

impl Tracklet {
    pub fn score(&self) -> f32 {
        self.best().score
    }

    /// The box with the highest score (the first of equals).
    pub fn best(&self) -> &SliceDetection {
        self.boxes
            .iter()
            .reduce(|a, b| if b.score > a.score { b } else { a })
            .expect("a tracklet has at least one box")
    }

    /// The enclosing 3D box.
    pub fn extent(&self) -> Box3 {
        let xy = Box2::enclosing(
            self.boxes
                .iter()
                .flat_map(|d| [(d.bbox.x1, d.bbox.y1), (d.bbox.x2, d.bbox.y2)]),
        )
        .expect("a tracklet has at least one box");
        let first = self.boxes[0].slice as f32;
        let last = self.boxes[self.boxes.len() - 1].slice as f32;
        Box3::new(xy, first, last)
    }
}

/// Links `detections` (any order) into tracklets, best score first.
pub fn link_tracklets(detections: &[SliceDetection], min_iou: f32) -> Vec<Tracklet> {
    let mut sorted: Vec<&SliceDetection> =
        detections.iter().filter(|d| d.bbox.is_valid()).collect();
    sorted.sort_by(|a, b| a.slice.cmp(&b.slice).then(b.score.total_cmp(&a.score)));
    let mut tracklets: Vec<Tracklet> = Vec::new();
    // Indices of tracklets whose last box is on the slice before the current one.
    let mut open: Vec<usize> = Vec::new();
    let mut extended: Vec<usize> = Vec::new();
    let mut current = None;
    for d in sorted {
        if current != Some(d.slice) {
            open = if current.is_some_and(|c| c + 1 == d.slice) {
                std::mem::take(&mut extended)
            } else {
                Vec::new()
            };
            extended.clear();
            current = Some(d.slice);
        }
        let best = open
            .iter()
            .enumerate()
            .map(|(k, &t)| {
                (
                    k,
                    tracklets[t]
                        .boxes
                        .last()
                        .expect("non-empty")
                        .bbox
                        .iou(&d.bbox),
                )
            })
            .filter(|(_, iou)| *iou >= min_iou)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((k, _)) => {
                let t = open.swap_remove(k);
                tracklets[t].boxes.push(*d);
                extended.push(t);
            }
            None => {
                tracklets.push(Tracklet { boxes: vec![*d] });
                extended.push(tracklets.len() - 1);
            }
        }
    }
    tracklets.sort_by(|a, b| b.score().total_cmp(&a.score()));
    tracklets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(slice: u32, x: f32, score: f32) -> SliceDetection {
        SliceDetection {
            slice,
            bbox: Box2::new(x, 10.0, x + 20.0, 30.0),
            score,
        }
    }

    #[test]
    fn overlapping_boxes_on_consecutive_slices_form_one_lesion() {
        let dets = [
            det(3, 100.0, 0.5),
            det(4, 102.0, 0.9),
            det(5, 104.0, 0.6),
            det(4, 300.0, 0.4),
        ];
        let t = link_tracklets(&dets, 0.5);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].boxes.len(), 3);
        assert_eq!(t[0].score(), 0.9);
        assert_eq!(t[0].best().slice, 4);
        let e = t[0].extent();
        assert_eq!((e.z1, e.z2, e.xy.x1, e.xy.x2), (3.0, 5.0, 100.0, 124.0));
        assert_eq!(t[1].boxes.len(), 1);
    }

    #[test]
    fn a_gap_of_one_slice_or_a_poor_overlap_starts_a_new_lesion() {
        let gap = [det(1, 100.0, 0.5), det(3, 100.0, 0.5)];
        assert_eq!(link_tracklets(&gap, 0.5).len(), 2);
        let shifted = [det(1, 100.0, 0.5), det(2, 115.0, 0.5)];
        assert_eq!(link_tracklets(&shifted, 0.5).len(), 2);
    }

    #[test]
    fn two_detections_cannot_extend_the_same_tracklet() {
        let dets = [det(1, 100.0, 0.9), det(2, 101.0, 0.8), det(2, 99.0, 0.7)];
        let t = link_tracklets(&dets, 0.5);
        assert_eq!(
            t.len(),
            2,
            "the better detection extends it, the other starts anew"
        );
        assert_eq!(
            t[0].boxes.iter().map(|d| d.score).collect::<Vec<_>>(),
            vec![0.9, 0.8]
        );
    }
}
