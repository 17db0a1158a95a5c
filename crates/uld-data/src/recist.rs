//! DeepLesion's lesion measurements: a lesion's pixels on one slice
//! ([`SectionMask`]), their RECIST marks ([`Recist`]: the longest diameter,
//! then the longest chord perpendicular to it) and the boxes DeepLesion
//! derives from them, padded by [`BOX_PADDING_PX`].
//!
//! A leaf module: the synthetic generator measures its rendered lesions with
//! it and the DeepLesion converter measures label maps with it, so the two
//! give the same marks and boxes for the same pixels. Public as
//! `uld_data::synth::{BOX_PADDING_PX, Recist, SectionMask}`.

use uld_core::Box2;

/// DeepLesion boxes are the RECIST extent padded by this many pixels.
pub const BOX_PADDING_PX: f32 = 5.0;

/// A pixel extent (pixel centres, as `Bounding_boxes` gives them) padded by
/// [`BOX_PADDING_PX`] and clipped to the centres of a `width x height` image.
pub fn padded_within(extent: &Box2, width: usize, height: usize) -> Box2 {
    Box2::new(
        (extent.x1 - BOX_PADDING_PX).max(0.0),
        (extent.y1 - BOX_PADDING_PX).max(0.0),
        (extent.x2 + BOX_PADDING_PX).min(width as f32 - 1.0),
        (extent.y2 + BOX_PADDING_PX).min(height as f32 - 1.0),
    )
}

/// A lesion's pixels on one slice, in a window of the image.
#[derive(Debug, Clone)]
pub struct SectionMask {
    pub x0: usize,
    pub y0: usize,
    pub width: usize,
    pub height: usize,
    pub inside: Vec<bool>,
}

/// RECIST marks: the long axis and the longest chord perpendicular to it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recist {
    /// Long axis x, y, x, y then short axis, 0-based pixel indices (as the
    /// DeepLesion reader gives them).
    pub points: [f32; 8],
    pub long_px: f32,
    pub short_px: f32,
}

impl Recist {
    /// DeepLesion's box: the RECIST extent padded by [`BOX_PADDING_PX`].
    pub fn padded_box(&self) -> Box2 {
        let p = &self.points;
        Box2::enclosing((0..4).map(|n| (p[2 * n], p[2 * n + 1])))
            .expect("four points")
            .pad(BOX_PADDING_PX)
    }
}

impl SectionMask {
    /// The mask of the given pixels `(i, j)` (a label map's cross-section);
    /// `None` for no pixels.
    pub fn from_pixels(pixels: &[(usize, usize)]) -> Option<Self> {
        let extent = |f: fn(&(usize, usize)) -> usize| {
            let values = pixels.iter().map(f);
            Some((values.clone().min()?, values.max()?))
        };
        let (x0, x1) = extent(|p| p.0)?;
        let (y0, y1) = extent(|p| p.1)?;
        let (width, height) = (x1 - x0 + 1, y1 - y0 + 1);
        let mut inside = vec![false; width * height];
        for &(i, j) in pixels {
            inside[(j - y0) * width + i - x0] = true;
        }
        Some(Self {
            x0,
            y0,
            width,
            height,
            inside,
        })
    }

    /// Pixel indices `(i, j)` inside.
    pub fn pixels(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.inside
            .iter()
            .enumerate()
            .filter(|(_, inside)| **inside)
            .map(|(n, _)| (self.x0 + n % self.width, self.y0 + n / self.width))
    }

    pub fn area_px(&self) -> usize {
        self.inside.iter().filter(|v| **v).count()
    }

    fn is_inside(&self, i: i64, j: i64) -> bool {
        let (li, lj) = (i - self.x0 as i64, j - self.y0 as i64);
        li >= 0
            && lj >= 0
            && (li as usize) < self.width
            && (lj as usize) < self.height
            && self.inside[lj as usize * self.width + li as usize]
    }

    /// Measures the cross-section as a radiologist's RECIST marks would:
    /// the longest diameter between boundary pixels, then the longest chord
    /// perpendicular to it.
    pub fn recist(&self) -> Recist {
        let boundary: Vec<(f64, f64)> = self
            .pixels()
            .filter(|&(i, j)| {
                let (i, j) = (i as i64, j as i64);
                !(self.is_inside(i - 1, j)
                    && self.is_inside(i + 1, j)
                    && self.is_inside(i, j - 1)
                    && self.is_inside(i, j + 1))
            })
            .map(|(i, j)| (i as f64, j as f64))
            .collect();
        let mut long = (boundary[0], boundary[0], 0.0);
        for (n, p) in boundary.iter().enumerate() {
            for q in &boundary[n + 1..] {
                let d = (p.0 - q.0).hypot(p.1 - q.1);
                if d > long.2 {
                    long = (*p, *q, d);
                }
            }
        }
        let (p1, p2, long_len) = long;
        let (ex, ey) = if long_len > 0.0 {
            ((p2.0 - p1.0) / long_len, (p2.1 - p1.1) / long_len)
        } else {
            (1.0, 0.0)
        };
        // bin pixels by their position along the long axis; the widest bin
        // across it is the short axis
        // per bin: (point with the lowest v, that v, point with the highest v, that v)
        type Chord = ((f64, f64), f64, (f64, f64), f64);
        let mut bins: std::collections::BTreeMap<i64, Chord> = Default::default();
        for (i, j) in self.pixels() {
            let (x, y) = (i as f64, j as f64);
            let u = ((x - p1.0) * ex + (y - p1.1) * ey).round() as i64;
            let v = -(x - p1.0) * ey + (y - p1.1) * ex;
            let e = bins.entry(u).or_insert(((x, y), v, (x, y), v));
            if v < e.1 {
                e.0 = (x, y);
                e.1 = v;
            }
            if v > e.3 {
                e.2 = (x, y);
                e.3 = v;
            }
        }
        let (q1, q2) = bins
            .values()
            .max_by(|a, b| (a.3 - a.1).total_cmp(&(b.3 - b.1)))
            .map(|e| (e.0, e.2))
            .unwrap_or((p1, p1));
        let short_len = (q1.0 - q2.0).hypot(q1.1 - q2.1);
        Recist {
            points: [p1.0, p1.1, p2.0, p2.1, q1.0, q1.1, q2.0, q2.1].map(|v| v as f32),
            long_px: long_len as f32,
            short_px: short_len as f32,
        }
    }

    /// The pixels' extent as a continuous box (pixel `i` spans `[i, i+1)`).
    pub fn extent(&self) -> Box2 {
        let mut b = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
        for (i, j) in self.pixels() {
            let (x, y) = (i as f32, j as f32);
            b = [
                b[0].min(x),
                b[1].min(y),
                b[2].max(x + 1.0),
                b[3].max(y + 1.0),
            ];
        }
        Box2::from(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_square_measures_its_diagonal_and_pads_within_the_image() {
        let pixels: Vec<(usize, usize)> =
            (2..5).flat_map(|j| (0..3).map(move |i| (i, j))).collect();
        let mask = SectionMask::from_pixels(&pixels).unwrap();
        assert_eq!((mask.x0, mask.y0, mask.width, mask.height), (0, 2, 3, 3));
        assert_eq!(mask.area_px(), 9);
        assert_eq!(mask.extent(), Box2::new(0.0, 2.0, 3.0, 5.0));
        let r = mask.recist();
        assert!((r.long_px - 8f32.sqrt()).abs() < 1e-6, "{r:?}");
        assert!((r.short_px - 8f32.sqrt()).abs() < 1e-6, "{r:?}");
        assert_eq!(r.padded_box(), Box2::new(-5.0, -3.0, 7.0, 9.0));
        let extent = Box2::new(0.0, 2.0, 2.0, 4.0);
        assert_eq!(padded_within(&extent, 10, 8), Box2::new(0.0, 0.0, 7.0, 7.0));
        assert!(SectionMask::from_pixels(&[]).is_none());
    }
}
