//! Reading sensitivity at a given average false-positive count off a FROC
//! curve, in the two ways the reference code does it.
//!
//! The curve is one point per detection in score order:
//! `fp[i]` (average false positives per image after detection `i`,
//! non-decreasing) and `sens[i]`. Many consecutive points share one `fp`
//! value (hits and duplicates do not add false positives), so *which* of
//! them a query at exactly that `fp` lands on is a rule of its own:
//!
//! * [`Interpolation::Extrapolate`], 3DCE `sens_at_FP` and Lesion-Harvester:
//!   `scipy.interpolate.interp1d(fp, sens, fill_value='extrapolate')`, whose
//!   linear kernel takes `hi = searchsorted(fp, q)` (the **first** point with
//!   `fp >= q`) clipped to `1..=n-1`, `lo = hi - 1`, and returns
//!   `slope * (q - fp[lo]) + sens[lo]`. At an exact count `q = k` this is the
//!   sensitivity when the k-th false positive arrives (hits ranked after it
//!   but before the next false positive are not counted). Past the curve's
//!   end it extends the last segment: when the last detection is a hit or a
//!   duplicate that segment is vertical and the reference returns `+inf`
//!   (hit) or `NaN` (duplicate, 0/0); uld returns the same value and the
//!   report prints the clamped reading beside it.
//! * [`Interpolation::Clamp`], MULAN `sens_at_FP` and LENS `sens_at_FP`:
//!   `interp1d` without extrapolation, which scipy delegates to `numpy.interp`;
//!   numpy takes the **last** point with `fp <= q`, so an exact count `k`
//!   reads the sensitivity just before the (k+1)-th false positive. Queries
//!   past the end get `sens[-1]`; queries before the first point get 0
//!   (LENS; MULAN's `interp1d` raises there, which on DeepLesion never
//!   happens because the first point is at most `1 / n_images`).
//!
//! Degenerate curves the references reject (no detection at all: `np.vstack`
//! of nothing; a single point: `interp1d` needs two) read as the clamped
//! rule: 0 for no detections, the single point's sensitivity from its `fp` on.

use serde::{Deserialize, Serialize};

/// How a sensitivity is read at a false-positive count; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// scipy `interp1d(..., fill_value='extrapolate')`: 3DCE, Lesion-Harvester.
    Extrapolate,
    /// `numpy.interp` inside the curve, clamped outside: MULAN, LENS.
    Clamp,
}

impl Interpolation {
    pub fn name(self) -> &'static str {
        match self {
            Self::Extrapolate => "extrapolate (3DCE, Lesion-Harvester)",
            Self::Clamp => "clamp (MULAN, LENS)",
        }
    }
}

/// The sensitivity at average false-positive count `q`; `fp` must be
/// non-decreasing and as long as `sens`.
pub fn sens_at_fp(fp: &[f64], sens: &[f64], q: f64, rule: Interpolation) -> f64 {
    debug_assert_eq!(fp.len(), sens.len());
    let n = fp.len();
    if n == 0 {
        return 0.0;
    }
    if n == 1 {
        return if q >= fp[0] { sens[0] } else { 0.0 };
    }
    match rule {
        Interpolation::Extrapolate => {
            let hi = fp.partition_point(|&x| x < q).clamp(1, n - 1);
            let lo = hi - 1;
            let slope = (sens[hi] - sens[lo]) / (fp[hi] - fp[lo]);
            slope * (q - fp[lo]) + sens[lo]
        }
        Interpolation::Clamp => {
            if q < fp[0] {
                return 0.0;
            }
            if q > fp[n - 1] {
                return sens[n - 1];
            }
            // The last index with fp[j] <= q.
            let j = fp.partition_point(|&x| x <= q) - 1;
            if j == n - 1 || fp[j] == q {
                return sens[j];
            }
            let slope = (sens[j + 1] - sens[j]) / (fp[j + 1] - fp[j]);
            slope * (q - fp[j]) + sens[j]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Detections in score order on 2 images with 4 lesions:
    //   hit, FP, hit, hit, FP, dup, FP
    // fp/img: 0, .5, .5, .5, 1, 1, 1.5 ; sens: .25 .25 .5 .75 .75 .75 .75
    const FP: [f64; 7] = [0.0, 0.5, 0.5, 0.5, 1.0, 1.0, 1.5];
    const SENS: [f64; 7] = [0.25, 0.25, 0.5, 0.75, 0.75, 0.75, 0.75];

    #[test]
    fn exact_counts_take_first_point_when_extrapolating_and_last_when_clamping() {
        // At 0.5 FP/img: scipy's searchsorted lands on the arrival of the
        // first FP (sens .25); numpy.interp on the last point at 0.5 (.75).
        assert_eq!(
            sens_at_fp(&FP, &SENS, 0.5, Interpolation::Extrapolate),
            0.25
        );
        assert_eq!(sens_at_fp(&FP, &SENS, 0.5, Interpolation::Clamp), 0.75);
        // Between points both interpolate linearly: at 0.25, from (0, .25)
        // to (.5, .25) for scipy; numpy also uses j = 0 -> (0,.25)-(.5,.25).
        assert_eq!(
            sens_at_fp(&FP, &SENS, 0.25, Interpolation::Extrapolate),
            0.25
        );
        assert_eq!(sens_at_fp(&FP, &SENS, 0.25, Interpolation::Clamp), 0.25);
        // At 0.75: scipy hi = first fp >= .75 = index 4, lo = 3: (.5,.75)-(1,.75).
        assert_eq!(
            sens_at_fp(&FP, &SENS, 0.75, Interpolation::Extrapolate),
            0.75
        );
    }

    #[test]
    fn past_the_end_extrapolation_follows_the_last_segment() {
        // The curve ends with an FP: the last segment is flat, so both agree.
        assert_eq!(
            sens_at_fp(&FP, &SENS, 4.0, Interpolation::Extrapolate),
            0.75
        );
        assert_eq!(sens_at_fp(&FP, &SENS, 4.0, Interpolation::Clamp), 0.75);
        // Ending with a hit: vertical last segment -> +inf, as scipy returns.
        let fp = [0.0, 0.5, 0.5];
        let sens = [0.5, 0.5, 1.0];
        assert_eq!(
            sens_at_fp(&fp, &sens, 1.0, Interpolation::Extrapolate),
            f64::INFINITY
        );
        assert_eq!(sens_at_fp(&fp, &sens, 1.0, Interpolation::Clamp), 1.0);
        // Ending with a duplicate: 0/0 -> NaN.
        let sens = [0.5, 1.0, 1.0];
        assert!(sens_at_fp(&fp, &sens, 1.0, Interpolation::Extrapolate).is_nan());
        // A sloped last segment keeps rising: (0,.5)-(.5,.75) at 1.0 -> 1.0.
        let fp = [0.0, 0.5];
        let sens = [0.5, 0.75];
        assert_eq!(sens_at_fp(&fp, &sens, 1.0, Interpolation::Extrapolate), 1.0);
    }

    #[test]
    fn before_the_first_point() {
        // First detection an FP on 1 image: the curve starts at fp = 1.
        let fp = [1.0, 1.0, 2.0];
        let sens = [0.0, 0.5, 0.5];
        assert_eq!(sens_at_fp(&fp, &sens, 0.5, Interpolation::Clamp), 0.0);
        // scipy clips hi to 1: segment (1,0)-(1,.5) is vertical: -inf * -.5.
        assert_eq!(
            sens_at_fp(&fp, &sens, 0.5, Interpolation::Extrapolate),
            f64::NEG_INFINITY
        );
    }

    #[test]
    fn degenerate_curves() {
        assert_eq!(sens_at_fp(&[], &[], 1.0, Interpolation::Extrapolate), 0.0);
        assert_eq!(
            sens_at_fp(&[0.0], &[0.5], 1.0, Interpolation::Extrapolate),
            0.5
        );
        assert_eq!(sens_at_fp(&[1.0], &[0.5], 0.5, Interpolation::Clamp), 0.0);
    }
}
