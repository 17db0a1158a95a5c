//! Lesion shapes: ellipsoids with an irregular (lobulated) boundary and
//! their cross-sections on a slice (measured by [`crate::recist`]).
//!
//! The boundary's irregularity depends only on the in-plane angle, so every
//! cross-section is a scaled copy of the central one: the slice through the
//! centre is exactly the lesion's largest cross-section, which is where
//! DeepLesion's radiologists measured (the key slice).

use std::f64::consts::{PI, TAU};

use rand::Rng;
use serde::Serialize;

use super::phantom::SliceGeometry;
use crate::recist::SectionMask;

#[derive(Debug, Clone, Serialize)]
pub struct LesionShape {
    pub center_mm: [f64; 3],
    /// Semi-axes (mm): in-plane long, in-plane short, craniocaudal.
    pub semi_axes_mm: [f64; 3],
    /// In-plane rotation of the long axis (radians).
    pub angle: f64,
    /// Relative boundary harmonics k = 2..=5 as (cos, sin) amplitudes.
    pub harmonics: [[f64; 2]; 4],
}

impl LesionShape {
    /// A shape whose largest in-plane diameter is `long_mm`, whose short
    /// axis is about `ratio` of it and whose craniocaudal semi-axis is
    /// `depth_ratio` times the in-plane long semi-axis.
    pub fn draw(
        rng: &mut impl Rng,
        center_mm: [f64; 3],
        long_mm: f64,
        ratio: f64,
        depth_ratio: f64,
        irregularity: f64,
    ) -> Self {
        let mut harmonics = [[0.0; 2]; 4];
        for (k, h) in harmonics.iter_mut().enumerate() {
            let amplitude = irregularity / (k as f64 + 1.0);
            *h = [
                rng.random_range(-amplitude..amplitude),
                rng.random_range(-amplitude..amplitude),
            ];
        }
        let mut shape = Self {
            center_mm,
            semi_axes_mm: [1.0, ratio.clamp(0.15, 1.0), 1.0],
            angle: rng.random_range(0.0..PI),
            harmonics,
        };
        // scale so that the widest chord of the boundary is `long_mm`
        let points: Vec<(f64, f64)> = (0..96)
            .map(|n| shape.boundary_point(TAU * n as f64 / 96.0))
            .collect();
        let widest = points
            .iter()
            .flat_map(|p| points.iter().map(move |q| (p.0 - q.0).hypot(p.1 - q.1)))
            .fold(0.0, f64::max);
        let a = long_mm / widest.max(1e-9);
        shape.semi_axes_mm = [a, a * shape.semi_axes_mm[1], (a * depth_ratio).max(0.5)];
        shape
    }

    /// Relative radius of the boundary at in-plane angle `phi` (ellipse frame).
    fn boundary(&self, phi: f64) -> f64 {
        let mut r = 1.0;
        for (k, [c, s]) in self.harmonics.iter().enumerate() {
            let m = (k + 2) as f64;
            r += c * (m * phi).cos() + s * (m * phi).sin();
        }
        r
    }

    fn boundary_point(&self, phi: f64) -> (f64, f64) {
        let r = self.boundary(phi);
        (
            self.semi_axes_mm[0] * r * phi.cos(),
            self.semi_axes_mm[1] * r * phi.sin(),
        )
    }

    /// The largest relative boundary radius (bounds the shape).
    fn max_boundary(&self) -> f64 {
        1.0 + self
            .harmonics
            .iter()
            .map(|[c, s]| c.abs() + s.abs())
            .sum::<f64>()
    }

    /// How far the in-plane shape reaches from the centre (mm), an upper bound.
    pub fn reach_mm(&self) -> f64 {
        self.semi_axes_mm[0] * self.max_boundary()
    }

    /// The cross-section's size relative to the central one; `None` off the lesion.
    pub fn section_scale(&self, z: f64) -> Option<f64> {
        let w = (z - self.center_mm[2]) / self.semi_axes_mm[2];
        let k = 1.0 - w * w;
        (k > 0.0).then(|| k.sqrt())
    }

    /// Signed distance-like margin at `(x, y)` for a cross-section of scale
    /// `k`, in mm along the ray from the centre: > 0 inside.
    #[inline]
    pub fn margin_mm(&self, x: f64, y: f64, k: f64) -> f64 {
        let (dx, dy) = (x - self.center_mm[0], y - self.center_mm[1]);
        let (c, s) = (self.angle.cos(), self.angle.sin());
        let u = (dx * c + dy * s) / self.semi_axes_mm[0];
        let v = (-dx * s + dy * c) / self.semi_axes_mm[1];
        let rho = u.hypot(v);
        let limit = self.boundary(v.atan2(u)) * k;
        // scale the normalised gap back to mm along this direction
        let mm_per_unit = if rho > 1e-9 {
            dx.hypot(dy) / rho
        } else {
            self.semi_axes_mm[1]
        };
        (limit - rho) * mm_per_unit
    }

    /// The pixel window (inclusive) the cross-section at scale `k` may cover.
    fn window(&self, k: f64, geometry: &SliceGeometry) -> Option<[usize; 4]> {
        let reach = self.reach_mm() * k + geometry.spacing;
        let last = geometry.size as f64 - 1.0;
        let (c0, c1) = (
            geometry.col(self.center_mm[0] - reach).floor(),
            geometry.col(self.center_mm[0] + reach).ceil(),
        );
        let (r0, r1) = (
            geometry.row(self.center_mm[1] - reach).floor(),
            geometry.row(self.center_mm[1] + reach).ceil(),
        );
        if c1 < 0.0 || r1 < 0.0 || c0 > last || r0 > last {
            return None;
        }
        Some([
            c0.max(0.0) as usize,
            r0.max(0.0) as usize,
            c1.min(last) as usize,
            r1.min(last) as usize,
        ])
    }

    /// Blends the lesion into a rendered slice at `z`: pixels inside take
    /// `hu`, with a one-pixel soft edge (coverage > 1/2 exactly where
    /// [`mask`](Self::mask) counts the pixel in).
    pub fn paint(&self, z: f64, geometry: &SliceGeometry, hu: f32, out: &mut [f32]) {
        let Some(k) = self.section_scale(z) else {
            return;
        };
        let Some([c0, r0, c1, r1]) = self.window(k, geometry) else {
            return;
        };
        for j in r0..=r1 {
            let y = geometry.y_mm(j);
            for i in c0..=c1 {
                let m = self.margin_mm(geometry.x_mm(i), y, k);
                let t = (m / geometry.spacing + 0.5).clamp(0.0, 1.0) as f32;
                if t > 0.0 {
                    let px = &mut out[j * geometry.size + i];
                    *px += (hu - *px) * t;
                }
            }
        }
    }

    /// The pixels of the cross-section at `z`; `None` when the slice misses
    /// the lesion or no pixel centre falls inside it.
    pub fn mask(&self, z: f64, geometry: &SliceGeometry) -> Option<SectionMask> {
        let k = self.section_scale(z)?;
        let [c0, r0, c1, r1] = self.window(k, geometry)?;
        let (w, h) = (c1 - c0 + 1, r1 - r0 + 1);
        let mut inside = vec![false; w * h];
        let mut any = false;
        for j in 0..h {
            let y = geometry.y_mm(r0 + j);
            for i in 0..w {
                let hit = self.margin_mm(geometry.x_mm(c0 + i), y, k) > 0.0;
                inside[j * w + i] = hit;
                any |= hit;
            }
        }
        any.then_some(SectionMask {
            x0: c0,
            y0: r0,
            width: w,
            height: h,
            inside,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn geometry() -> SliceGeometry {
        SliceGeometry {
            size: 129,
            spacing: 1.0,
            center_mm: [0.0, 0.0],
            padded_fov: false,
        }
    }

    fn ellipse(long: f64, ratio: f64, angle: f64) -> LesionShape {
        LesionShape {
            center_mm: [0.0, 0.0, 0.0],
            semi_axes_mm: [long / 2.0, long / 2.0 * ratio, 10.0],
            angle,
            harmonics: [[0.0; 2]; 4],
        }
    }

    #[test]
    fn recist_of_an_ellipse_measures_its_axes() {
        // a 41 x 21 mm ellipse at 1 mm/px, axis-aligned: pixel centres from
        // -20 to 20 along x and -10 to 10 along y (the pixelated boundary
        // allows a chord slightly off-axis, within half a pixel)
        let m = ellipse(41.0, 21.0 / 41.0, 0.0)
            .mask(0.0, &geometry())
            .unwrap();
        let r = m.recist();
        assert!((r.long_px - 40.0).abs() <= 0.5, "{r:?}");
        assert!((r.short_px - 20.0).abs() <= 0.5, "{r:?}");
        // the long axis runs along x through the centre (pixel 64 +- 20)
        let p = r.points;
        assert_eq!((p[0].min(p[2]), p[0].max(p[2])), (44.0, 84.0));
        assert_eq!(r.padded_box().width(), 50.0);
        // rotated 30 degrees: same lengths within a pixel
        let r = ellipse(41.0, 0.5, std::f64::consts::FRAC_PI_6)
            .mask(0.0, &geometry())
            .unwrap()
            .recist();
        assert!(
            (r.long_px - 40.0).abs() < 1.5 && (r.short_px - 20.5).abs() < 1.5,
            "{r:?}"
        );
    }

    #[test]
    fn drawn_shapes_have_the_requested_diameter_and_shrink_off_centre() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        for long in [8.0, 20.0, 60.0] {
            let s = LesionShape::draw(&mut rng, [0.0, 0.0, 0.0], long, 0.7, 0.8, 0.15);
            let m = s.mask(0.0, &geometry()).unwrap();
            let r = m.recist();
            assert!(
                (f64::from(r.long_px) - long).abs() <= 2.0,
                "asked {long}, measured {r:?}"
            );
            let off = s.mask(s.semi_axes_mm[2] * 0.6, &geometry()).unwrap();
            assert!(off.area_px() < m.area_px());
            assert!(s.mask(s.semi_axes_mm[2] * 1.01, &geometry()).is_none());
        }
    }

    #[test]
    fn painting_covers_exactly_the_mask() {
        let s = ellipse(15.0, 0.6, 0.3);
        let g = geometry();
        let mut out = vec![0.0f32; 129 * 129];
        s.paint(0.0, &g, 100.0, &mut out);
        let m = s.mask(0.0, &g).unwrap();
        let inside: std::collections::HashSet<_> = m.pixels().collect();
        for j in 0..129 {
            for i in 0..129 {
                assert_eq!(
                    out[j * 129 + i] > 50.0,
                    inside.contains(&(i, j)),
                    "pixel {i},{j}"
                );
            }
        }
    }
}
