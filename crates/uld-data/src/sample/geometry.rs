//! The in-plane geometry of a sample: black-border crop, then resampling.
//!
//! Original pixel `p` lands at `(p - crop_origin) * scale` in the sample
//! (continuous coordinates), so the whole step is one axis-aligned affine map
//! and boxes follow it exactly.

use serde::{Deserialize, Serialize};
use uld_core::Box2;

use crate::affine::Affine2;

/// How one original slice maps onto the sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleGeometry {
    /// `[width, height]` of the original slice.
    pub source_size: [usize; 2],
    /// The crop in original pixels: `[x0, y0, x1, y1]`, `x1`/`y1` exclusive.
    pub crop: [usize; 4],
    /// Sample pixels per original pixel, `[x, y]`: exactly `output / crop` size.
    pub scale: [f64; 2],
    /// `[width, height]` of the sample.
    pub output_size: [usize; 2],
}

impl SampleGeometry {
    /// The crop of `crop` (original pixels) resampled so that a pixel is
    /// `target_spacing` mm (or kept, for `None`), then shrunk if needed so the
    /// longer side is at most `max_side`. Output sizes are rounded to whole
    /// pixels and the recorded scale is the exact ratio of the sizes.
    pub fn plan(
        source_size: [usize; 2],
        crop: [usize; 4],
        pixel_spacing: [f64; 2],
        target_spacing: Option<f64>,
        max_side: Option<usize>,
    ) -> Self {
        let cw = (crop[2] - crop[0]) as f64;
        let ch = (crop[3] - crop[1]) as f64;
        let (mut sx, mut sy) = match target_spacing {
            Some(t) => (pixel_spacing[0] / t, pixel_spacing[1] / t),
            None => (1.0, 1.0),
        };
        if let Some(max) = max_side {
            let longer = (cw * sx).max(ch * sy);
            if longer > max as f64 {
                let shrink = max as f64 / longer;
                sx *= shrink;
                sy *= shrink;
            }
        }
        let ow = ((cw * sx).round() as usize).max(1);
        let oh = ((ch * sy).round() as usize).max(1);
        Self {
            source_size,
            crop,
            scale: [ow as f64 / cw, oh as f64 / ch],
            output_size: [ow, oh],
        }
    }

    /// Original pixels -> sample pixels.
    pub fn affine(&self) -> Affine2 {
        Affine2::translation(-(self.crop[0] as f64), -(self.crop[1] as f64))
            .then(&Affine2::scaling(self.scale[0], self.scale[1]))
    }

    /// A box in original pixels, in sample pixels (not clipped).
    pub fn to_sample(&self, b: &Box2) -> Box2 {
        self.affine().map_box(b)
    }

    /// A box in sample pixels (a prediction), in original pixels.
    pub fn to_original(&self, b: &Box2) -> Box2 {
        Affine2::scaling(1.0 / self.scale[0], 1.0 / self.scale[1])
            .then(&Affine2::translation(
                self.crop[0] as f64,
                self.crop[1] as f64,
            ))
            .map_box(b)
    }
}

/// The body's bounding box on a slice, `[x0, y0, x1, y1]` (exclusive ends):
/// the bounds of the pixels above `threshold_hu` after a morphological
/// opening with a `opening x opening` square (which removes the table and
/// thin lines, as 3DCE does), grown by `margin` and clipped to the image.
/// `None` when nothing survives the opening (the caller keeps the whole slice).
pub fn body_bounds(
    hu: &[i16],
    width: usize,
    height: usize,
    threshold_hu: i16,
    opening: usize,
    margin: usize,
) -> Option<[usize; 4]> {
    let k = opening.max(1) | 1; // odd, so the square has a centre
    let r = k / 2;
    if width < k || height < k {
        return None;
    }
    // The opening's bounds are the erosion's bounds grown by r (clipped), so
    // only the erosion is computed: first along rows, then along columns.
    let mut row_ok = vec![false; width * height];
    for y in 0..height {
        let row = &hu[y * width..(y + 1) * width];
        let mut run = 0;
        for (x, &v) in row.iter().enumerate() {
            run = if v > threshold_hu { run + 1 } else { 0 };
            if run >= k {
                row_ok[y * width + x - r] = true;
            }
        }
    }
    let mut col_run = vec![0usize; width];
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..height {
        let row = &row_ok[y * width..(y + 1) * width];
        for (x, (&ok, run)) in row.iter().zip(col_run.iter_mut()).enumerate() {
            *run = if ok { *run + 1 } else { 0 };
            if *run >= k {
                let cy = y - r;
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(cy);
                y1 = y1.max(cy);
            }
        }
    }
    if x0 == usize::MAX {
        return None;
    }
    let grow = r + margin;
    Some([
        x0.saturating_sub(grow),
        y0.saturating_sub(grow),
        (x1 + grow + 1).min(width),
        (y1 + grow + 1).min(height),
    ])
}
