//! Axis-aligned boxes in the one convention of uld.
//!
//! A [`Box2`] is `[x1, y1, x2, y2]` in f32 pixels of the original image,
//! 0-based, x to the right, y down, continuous extents (`width = x2 - x1`).
//! A [`Box3`] adds `z1, z2`: the first and last 0-based slice index the box
//! covers, both inclusive, so a box on a single slice has `z1 == z2` and a
//! depth of one slice.
//!
//! The evaluation protocols' inclusive-pixel (`+1`) overlap rules are not here:
//! they live beside the protocol that needs them in `uld-eval`.

use serde::{Deserialize, Serialize};

/// A 2D box `[x1, y1, x2, y2]` in pixels, continuous extents.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(from = "[f32; 4]", into = "[f32; 4]")]
pub struct Box2 {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl From<[f32; 4]> for Box2 {
    fn from([x1, y1, x2, y2]: [f32; 4]) -> Self {
        Self { x1, y1, x2, y2 }
    }
}

impl From<Box2> for [f32; 4] {
    fn from(b: Box2) -> Self {
        b.to_array()
    }
}

impl Box2 {
    pub const fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        Self { x1, y1, x2, y2 }
    }

    /// The box centred at `(cx, cy)` with the given size.
    pub fn from_center(cx: f32, cy: f32, width: f32, height: f32) -> Self {
        Self::new(
            cx - width / 2.0,
            cy - height / 2.0,
            cx + width / 2.0,
            cy + height / 2.0,
        )
    }

    /// The smallest box holding every point; `None` for no points.
    pub fn enclosing(points: impl IntoIterator<Item = (f32, f32)>) -> Option<Self> {
        points.into_iter().fold(None, |acc, (x, y)| {
            Some(match acc {
                None => Self::new(x, y, x, y),
                Some(b) => Self::new(b.x1.min(x), b.y1.min(y), b.x2.max(x), b.y2.max(y)),
            })
        })
    }

    pub const fn to_array(self) -> [f32; 4] {
        [self.x1, self.y1, self.x2, self.y2]
    }

    pub fn width(&self) -> f32 {
        self.x2 - self.x1
    }

    pub fn height(&self) -> f32 {
        self.y2 - self.y1
    }

    /// Area, zero for an empty or inverted box.
    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    pub fn center(&self) -> (f32, f32) {
        ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)
    }

    /// True when every coordinate is finite and the box has positive area.
    pub fn is_valid(&self) -> bool {
        self.to_array().iter().all(|v| v.is_finite()) && self.x2 > self.x1 && self.y2 > self.y1
    }

    /// The overlap of two boxes; `None` when they do not overlap with positive area.
    pub fn intersection(&self, other: &Self) -> Option<Self> {
        let b = Self::new(
            self.x1.max(other.x1),
            self.y1.max(other.y1),
            self.x2.min(other.x2),
            self.y2.min(other.y2),
        );
        (b.x2 > b.x1 && b.y2 > b.y1).then_some(b)
    }

    fn intersection_area(&self, other: &Self) -> f32 {
        let w = self.x2.min(other.x2) - self.x1.max(other.x1);
        let h = self.y2.min(other.y2) - self.y1.max(other.y1);
        if w > 0.0 && h > 0.0 { w * h } else { 0.0 }
    }

    /// Intersection over union; 0 when either box is empty.
    pub fn iou(&self, other: &Self) -> f32 {
        let inter = self.intersection_area(other);
        if inter <= 0.0 {
            return 0.0;
        }
        inter / (self.area() + other.area() - inter)
    }

    /// Intersection over the area of `self` (IoBB when `self` is the detected box).
    pub fn iobb(&self, other: &Self) -> f32 {
        let area = self.area();
        if area <= 0.0 {
            return 0.0;
        }
        self.intersection_area(other) / area
    }

    /// Intersection over the area of the smaller box: 1 when one box lies
    /// inside the other, so a part of a lesion overlaps the whole fully.
    pub fn overlap_of_smaller(&self, other: &Self) -> f32 {
        let smaller = self.area().min(other.area());
        if smaller <= 0.0 {
            return 0.0;
        }
        self.intersection_area(other) / smaller
    }

    /// The box clipped to an image of `width` x `height` pixels.
    pub fn clip(&self, width: f32, height: f32) -> Self {
        Self::new(
            self.x1.clamp(0.0, width),
            self.y1.clamp(0.0, height),
            self.x2.clamp(0.0, width),
            self.y2.clamp(0.0, height),
        )
    }

    pub fn translate(&self, dx: f32, dy: f32) -> Self {
        Self::new(self.x1 + dx, self.y1 + dy, self.x2 + dx, self.y2 + dy)
    }

    /// Scales every coordinate (a resampling of the image by `sx`, `sy`).
    pub fn scale(&self, sx: f32, sy: f32) -> Self {
        Self::new(self.x1 * sx, self.y1 * sy, self.x2 * sx, self.y2 * sy)
    }

    /// Grows (or, for negative `margin`, shrinks) every side by `margin`.
    pub fn pad(&self, margin: f32) -> Self {
        Self::new(
            self.x1 - margin,
            self.y1 - margin,
            self.x2 + margin,
            self.y2 + margin,
        )
    }

    /// Whether the point lies inside the box (left/top edges inclusive).
    pub fn contains(&self, x: f32, y: f32) -> bool {
        x >= self.x1 && x < self.x2 && y >= self.y1 && y < self.y2
    }
}

/// A 3D box: a [`Box2`] extent in-plane and an inclusive slice range.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Box3 {
    pub xy: Box2,
    /// First slice (0-based, inclusive).
    pub z1: f32,
    /// Last slice (0-based, inclusive).
    pub z2: f32,
}

impl Box3 {
    pub const fn new(xy: Box2, z1: f32, z2: f32) -> Self {
        Self { xy, z1, z2 }
    }

    /// From `[x1, y1, z1, x2, y2, z2]`, the LENS layout.
    pub const fn from_xyzxyz([x1, y1, z1, x2, y2, z2]: [f32; 6]) -> Self {
        Self::new(Box2::new(x1, y1, x2, y2), z1, z2)
    }

    /// From `[x1, y1, x2, y2, z1, z2]`, the Lesion-Harvester layout.
    pub const fn from_xyxyzz([x1, y1, x2, y2, z1, z2]: [f32; 6]) -> Self {
        Self::new(Box2::new(x1, y1, x2, y2), z1, z2)
    }

    /// Depth in slices: `z2 - z1 + 1` (both ends inclusive).
    pub fn depth(&self) -> f32 {
        self.z2 - self.z1 + 1.0
    }

    pub fn volume(&self) -> f32 {
        self.xy.area() * self.depth().max(0.0)
    }

    pub fn is_valid(&self) -> bool {
        self.xy.is_valid() && self.z1.is_finite() && self.z2.is_finite() && self.z2 >= self.z1
    }

    fn intersection_volume(&self, other: &Self) -> f32 {
        let d = self.z2.min(other.z2) - self.z1.max(other.z1) + 1.0;
        if d <= 0.0 {
            return 0.0;
        }
        self.xy.intersection_area(&other.xy) * d
    }

    pub fn iou(&self, other: &Self) -> f32 {
        let inter = self.intersection_volume(other);
        if inter <= 0.0 {
            return 0.0;
        }
        inter / (self.volume() + other.volume() - inter)
    }

    /// Intersection over the volume of `self`.
    pub fn iobb(&self, other: &Self) -> f32 {
        let v = self.volume();
        if v <= 0.0 {
            return 0.0;
        }
        self.intersection_volume(other) / v
    }

    /// Whether slice `z` lies in the box's slice range.
    pub fn covers_slice(&self, z: f32) -> bool {
        z >= self.z1 && z <= self.z2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn overlap_of_smaller_counts_a_part_inside_a_whole_fully() {
        let whole = Box2::new(0.0, 0.0, 20.0, 20.0);
        let part = Box2::new(5.0, 5.0, 10.0, 10.0);
        assert_eq!(part.overlap_of_smaller(&whole), 1.0);
        assert_eq!(whole.overlap_of_smaller(&part), 1.0);
        let beside = Box2::new(15.0, 0.0, 35.0, 20.0);
        assert_eq!(whole.overlap_of_smaller(&beside), 0.25);
        assert_eq!(
            whole.overlap_of_smaller(&Box2::new(30.0, 30.0, 40.0, 40.0)),
            0.0
        );
    }

    #[test]
    fn iou_of_hand_computed_pairs() {
        let a = Box2::new(0.0, 0.0, 10.0, 10.0);
        let b = Box2::new(5.0, 0.0, 15.0, 10.0);
        // overlap 5x10 = 50, union 150
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(
            a.iou(&Box2::new(10.0, 0.0, 20.0, 10.0)),
            0.0,
            "touching edges"
        );
        let inner = Box2::new(2.0, 2.0, 4.0, 4.0);
        assert_eq!(inner.iobb(&a), 1.0);
        assert!((a.iobb(&inner) - 0.04).abs() < 1e-6);
    }

    #[test]
    fn degenerate_boxes_have_zero_overlap() {
        let empty = Box2::new(3.0, 3.0, 3.0, 8.0);
        let a = Box2::new(0.0, 0.0, 10.0, 10.0);
        assert!(!empty.is_valid());
        assert_eq!(empty.iou(&a), 0.0);
        assert_eq!(empty.iobb(&a), 0.0);
        assert!(!Box2::new(f32::NAN, 0.0, 1.0, 1.0).is_valid());
    }

    #[test]
    fn clip_keeps_box_inside_image() {
        let b = Box2::new(-5.0, 10.0, 520.0, 600.0).clip(512.0, 512.0);
        assert_eq!(b, Box2::new(0.0, 10.0, 512.0, 512.0));
    }

    #[test]
    fn enclosing_box_of_recist_points() {
        let b = Box2::enclosing([(3.0, 7.0), (1.0, 9.0), (4.0, 2.0)]).unwrap();
        assert_eq!(b, Box2::new(1.0, 2.0, 4.0, 9.0));
        assert!(Box2::enclosing(std::iter::empty()).is_none());
    }

    #[test]
    fn box3_counts_slices_inclusively() {
        let a = Box3::from_xyxyzz([0.0, 0.0, 10.0, 10.0, 4.0, 4.0]);
        assert_eq!(a.depth(), 1.0);
        assert_eq!(a.volume(), 100.0);
        let b = Box3::from_xyzxyz([0.0, 0.0, 4.0, 10.0, 10.0, 7.0]);
        assert_eq!(b.depth(), 4.0);
        // a lies wholly inside b: IoBB of a is 1, IoU is 1/4
        assert_eq!(a.iobb(&b), 1.0);
        assert!((a.iou(&b) - 0.25).abs() < 1e-6);
        let c = Box3::from_xyxyzz([0.0, 0.0, 10.0, 10.0, 5.0, 9.0]);
        assert_eq!(a.iou(&c), 0.0, "disjoint slice ranges");
    }

    fn arb_box() -> impl Strategy<Value = Box2> {
        (0f32..500.0, 0f32..500.0, 0.5f32..200.0, 0.5f32..200.0)
            .prop_map(|(x, y, w, h)| Box2::new(x, y, x + w, y + h))
    }

    proptest! {
        #[test]
        fn iou_is_symmetric_and_bounded(a in arb_box(), b in arb_box()) {
            let ab = a.iou(&b);
            prop_assert!((ab - b.iou(&a)).abs() < 1e-6);
            prop_assert!((0.0..=1.0 + 1e-6).contains(&ab));
            prop_assert!(a.iobb(&b) >= ab - 1e-6, "IoBB is never below IoU");
        }

        #[test]
        fn translation_preserves_iou(a in arb_box(), b in arb_box(), dx in -100f32..100.0, dy in -100f32..100.0) {
            let moved = a.translate(dx, dy).iou(&b.translate(dx, dy));
            prop_assert!((moved - a.iou(&b)).abs() < 1e-3);
        }
    }
}
