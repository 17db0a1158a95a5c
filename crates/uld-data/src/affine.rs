//! 2x3 affine maps of image pixels, and the rule that moves boxes through them.
//!
//! Coordinates are continuous pixel positions (pixel `i` covers `[i, i + 1)`),
//! the convention of [`Box2`]. Maps are kept in f64 so that composing a
//! sample's geometry with a view's augmentation and inverting it loses
//! nothing visible in f32 box coordinates.
//!
//! A leaf module: samples record their crop and resampling as these maps and
//! augmentation records its views with them, so both use it and neither
//! imports the other for it. Public as `uld_data::augment::{Affine2,
//! ClipRule, MappedBoxes}`.

use serde::{Deserialize, Serialize};
use uld_core::Box2;

/// `x' = m[0][0] x + m[0][1] y + m[0][2]`, `y' = m[1][0] x + m[1][1] y + m[1][2]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Affine2 {
    pub m: [[f64; 3]; 2],
}

impl Default for Affine2 {
    fn default() -> Self {
        Self::IDENTITY
    }
}

impl Affine2 {
    pub const IDENTITY: Self = Self {
        m: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
    };

    pub const fn new(m: [[f64; 3]; 2]) -> Self {
        Self { m }
    }

    pub const fn translation(dx: f64, dy: f64) -> Self {
        Self::new([[1.0, 0.0, dx], [0.0, 1.0, dy]])
    }

    pub const fn scaling(sx: f64, sy: f64) -> Self {
        Self::new([[sx, 0.0, 0.0], [0.0, sy, 0.0]])
    }

    /// Rotation by `radians` about the origin; positive turns +x towards +y
    /// (clockwise on screen, since y points down).
    pub fn rotation(radians: f64) -> Self {
        let (s, c) = radians.sin_cos();
        Self::new([[c, -s, 0.0], [s, c, 0.0]])
    }

    /// The left-right mirror of an image `width` pixels wide: `x' = width - x`.
    pub const fn flip_x(width: f64) -> Self {
        Self::new([[-1.0, 0.0, width], [0.0, 1.0, 0.0]])
    }

    /// `self` applied first, then `next`: `(next ∘ self)(p) = next(self(p))`.
    pub fn then(&self, next: &Self) -> Self {
        let (a, b) = (&next.m, &self.m);
        let mut m = [[0.0; 3]; 2];
        for r in 0..2 {
            m[r][0] = a[r][0] * b[0][0] + a[r][1] * b[1][0];
            m[r][1] = a[r][0] * b[0][1] + a[r][1] * b[1][1];
            m[r][2] = a[r][0] * b[0][2] + a[r][1] * b[1][2] + a[r][2];
        }
        Self::new(m)
    }

    /// `self` expressed about the point `(cx, cy)` instead of the origin.
    pub fn about(&self, cx: f64, cy: f64) -> Self {
        Self::translation(-cx, -cy)
            .then(self)
            .then(&Self::translation(cx, cy))
    }

    pub fn determinant(&self) -> f64 {
        self.m[0][0] * self.m[1][1] - self.m[0][1] * self.m[1][0]
    }

    /// The inverse map; `None` when the linear part is singular.
    pub fn inverse(&self) -> Option<Self> {
        let det = self.determinant();
        if !det.is_finite() || det.abs() < 1e-12 {
            return None;
        }
        let [[a, b, tx], [c, d, ty]] = self.m;
        let (ia, ib, ic, id) = (d / det, -b / det, -c / det, a / det);
        Some(Self::new([
            [ia, ib, -(ia * tx + ib * ty)],
            [ic, id, -(ic * tx + id * ty)],
        ]))
    }

    /// The map from view `from` to view `to` when both are maps out of the
    /// same space (`from`, `to`: original -> view): `to ∘ from⁻¹`.
    pub fn view_to_view(from: &Self, to: &Self) -> Option<Self> {
        Some(from.inverse()?.then(to))
    }

    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        let m = &self.m;
        (
            m[0][0] * x + m[0][1] * y + m[0][2],
            m[1][0] * x + m[1][1] * y + m[1][2],
        )
    }

    /// Whether the map keeps the axes (no rotation or shear), so that boxes
    /// map to boxes exactly.
    pub fn is_axis_aligned(&self) -> bool {
        (self.m[0][1] == 0.0 && self.m[1][0] == 0.0) || (self.m[0][0] == 0.0 && self.m[1][1] == 0.0)
    }

    /// The image of a box: the enclosing box of its four transformed corners.
    /// Exact for axis-aligned maps; through a rotation by `θ` a `w x h` box
    /// becomes `w|cos θ| + h|sin θ|` by `w|sin θ| + h|cos θ|` (times the scale).
    pub fn map_box(&self, b: &Box2) -> Box2 {
        let corners = [(b.x1, b.y1), (b.x2, b.y1), (b.x1, b.y2), (b.x2, b.y2)];
        let mut lo = (f64::INFINITY, f64::INFINITY);
        let mut hi = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        for (x, y) in corners {
            let (u, v) = self.apply(f64::from(x), f64::from(y));
            lo = (lo.0.min(u), lo.1.min(v));
            hi = (hi.0.max(u), hi.1.max(v));
        }
        Box2::new(lo.0 as f32, lo.1 as f32, hi.0 as f32, hi.1 as f32)
    }
}

/// What happens to a box that a map moves partly or wholly out of the image.
///
/// The box is first mapped ([`Affine2::map_box`]), then clipped to the image
/// `[0, width] x [0, height]`. It stays a box when its clipped area is at least
/// `min_visible_fraction` of its mapped (unclipped) area and positive;
/// otherwise it is dropped, and its visible part, if any, is returned
/// separately so that callers can make it an ignore region (a lesion cut off
/// at the border is neither a clean positive nor background).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClipRule {
    pub min_visible_fraction: f32,
}

impl Default for ClipRule {
    fn default() -> Self {
        Self {
            min_visible_fraction: 0.5,
        }
    }
}

/// Boxes after a map and the [`ClipRule`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MappedBoxes {
    /// The boxes kept, clipped to the image.
    pub boxes: Vec<Box2>,
    /// For each kept box, its index in the input.
    pub source_index: Vec<usize>,
    /// The visible parts of the boxes that were dropped.
    pub dropped_visible: Vec<Box2>,
}

impl ClipRule {
    /// Moves `boxes` through `map` into an image of `width x height` pixels.
    pub fn apply(&self, boxes: &[Box2], map: &Affine2, width: f32, height: f32) -> MappedBoxes {
        let mut out = MappedBoxes::default();
        for (i, b) in boxes.iter().enumerate() {
            let mapped = map.map_box(b);
            let clipped = mapped.clip(width, height);
            let area = mapped.area();
            let visible = clipped.area();
            if area > 0.0 && visible > 0.0 && visible >= self.min_visible_fraction * area {
                out.boxes.push(clipped);
                out.source_index.push(i);
            } else if visible > 0.0 {
                out.dropped_visible.push(clipped);
            }
        }
        out
    }

    /// Ignore regions keep every visible part, whatever the fraction.
    pub fn apply_ignore(boxes: &[Box2], map: &Affine2, width: f32, height: f32) -> Vec<Box2> {
        boxes
            .iter()
            .map(|b| map.map_box(b).clip(width, height))
            .filter(|b| b.area() > 0.0)
            .collect()
    }
}
