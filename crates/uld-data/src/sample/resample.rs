//! Bilinear resizing with the pixel-centre convention: output pixel `i`
//! samples the input at `(i + 0.5) / scale - 0.5`, so continuous coordinates
//! (and boxes) scale by exactly `scale` (as OpenCV's `INTER_LINEAR` resize).

/// Source indices and weight for each output position along one axis.
struct AxisTaps {
    lo: Vec<usize>,
    hi: Vec<usize>,
    t: Vec<f32>,
}

impl AxisTaps {
    fn new(src: usize, dst: usize) -> Self {
        let scale = dst as f64 / src as f64;
        let mut taps = Self {
            lo: Vec::with_capacity(dst),
            hi: Vec::with_capacity(dst),
            t: Vec::with_capacity(dst),
        };
        for i in 0..dst {
            let p = ((i as f64 + 0.5) / scale - 0.5).clamp(0.0, (src - 1) as f64);
            let lo = p.floor() as usize;
            taps.lo.push(lo);
            taps.hi.push((lo + 1).min(src - 1));
            taps.t.push((p - lo as f64) as f32);
        }
        taps
    }
}

/// A reusable plan for resizing `src_w x src_h` planes to `dst_w x dst_h`.
pub struct Resizer {
    src: [usize; 2],
    dst: [usize; 2],
    x: AxisTaps,
    y: AxisTaps,
}

impl Resizer {
    pub fn new(src_w: usize, src_h: usize, dst_w: usize, dst_h: usize) -> Self {
        Self {
            src: [src_w, src_h],
            dst: [dst_w, dst_h],
            x: AxisTaps::new(src_w, dst_w),
            y: AxisTaps::new(src_h, dst_h),
        }
    }

    /// Resizes one plane; `row` is scratch space reused between calls.
    pub fn resize(&self, src: &[f32], dst: &mut [f32], row: &mut Vec<f32>) {
        let [sw, sh] = self.src;
        let [dw, dh] = self.dst;
        debug_assert_eq!(src.len(), sw * sh);
        debug_assert_eq!(dst.len(), dw * dh);
        if [sw, sh] == [dw, dh] {
            dst.copy_from_slice(src);
            return;
        }
        row.resize(sw, 0.0);
        for (oy, out) in dst.chunks_exact_mut(dw).enumerate() {
            let (y0, y1, ty) = (self.y.lo[oy], self.y.hi[oy], self.y.t[oy]);
            let r0 = &src[y0 * sw..(y0 + 1) * sw];
            let r1 = &src[y1 * sw..(y1 + 1) * sw];
            // Vertical blend first (contiguous, vectorises), then gather along x.
            for ((v, &a), &b) in row.iter_mut().zip(r0).zip(r1) {
                *v = a + (b - a) * ty;
            }
            for (((o, &lo), &hi), &t) in out
                .iter_mut()
                .zip(&self.x.lo)
                .zip(&self.x.hi)
                .zip(&self.x.t)
            {
                let a = row[lo];
                *o = a + (row[hi] - a) * t;
            }
        }
    }
}
