//! HU windowing and scaling to the network's value range.

use serde::{Deserialize, Serialize};

/// How windowed HU are scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// The window to `[0, 255]`, minus a mean of 50 (3DCE, MULAN).
    Mean50,
    /// The window to `[-1, 1]`.
    Symmetric,
}

/// Clip HU to `[low, high]` and scale linearly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Normalization {
    /// `[low, high]` HU; DeepLesion's defaults span the whole 12-bit CT range.
    pub window: [f32; 2],
    pub scaling: Scaling,
}

impl Default for Normalization {
    fn default() -> Self {
        Self {
            window: [-1024.0, 3071.0],
            scaling: Scaling::Mean50,
        }
    }
}

impl Normalization {
    /// `(gain, offset)` so that `value = clamp(hu) * gain + offset`.
    fn coefficients(&self) -> (f32, f32) {
        let [lo, hi] = self.window;
        let (min, max) = self.range();
        let gain = (max - min) / (hi - lo);
        (gain, min - lo * gain)
    }

    /// The values the window's ends map to.
    pub fn range(&self) -> (f32, f32) {
        match self.scaling {
            Scaling::Mean50 => (-50.0, 205.0),
            Scaling::Symmetric => (-1.0, 1.0),
        }
    }

    /// The value of anything at or below the window's low end (air): what
    /// borders, padding and cut-out holes are filled with.
    pub fn fill_value(&self) -> f32 {
        self.range().0
    }

    pub fn check(&self) -> uld_core::Result<()> {
        let [lo, hi] = self.window;
        if !(lo.is_finite() && hi.is_finite() && hi > lo) {
            return Err(uld_core::Error::invalid(
                "HU window",
                format!("need finite low < high, got [{lo}, {hi}]"),
            ));
        }
        Ok(())
    }

    pub fn apply(&self, hu: f32) -> f32 {
        let (gain, offset) = self.coefficients();
        hu.clamp(self.window[0], self.window[1]) * gain + offset
    }

    /// Writes the normalised values of `hu` (one row) into `out`.
    pub fn apply_row(&self, hu: &[i16], out: &mut [f32]) {
        let (gain, offset) = self.coefficients();
        let [lo, hi] = self.window;
        for (o, &v) in out.iter_mut().zip(hu) {
            *o = f32::from(v).clamp(lo, hi) * gain + offset;
        }
    }

    /// Like [`Self::apply_row`] for `a * (1 - t) + b * t`, the linear
    /// interpolation of two slices' rows.
    pub fn apply_row_lerp(&self, a: &[i16], b: &[i16], t: f32, out: &mut [f32]) {
        let (gain, offset) = self.coefficients();
        let [lo, hi] = self.window;
        for ((o, &va), &vb) in out.iter_mut().zip(a).zip(b) {
            let (va, vb) = (f32::from(va), f32::from(vb));
            *o = (va + (vb - va) * t).clamp(lo, hi) * gain + offset;
        }
    }
}
