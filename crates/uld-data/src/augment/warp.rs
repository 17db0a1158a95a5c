//! Resampling an image through an affine map (bilinear, constant fill).

use crate::affine::Affine2;
use crate::image::ImageChw;

/// The image of `src` under `map` (source pixels -> output pixels) on a
/// `width x height` canvas. Output pixel centres are pulled back through the
/// inverse map and sampled bilinearly; neighbours outside the source count
/// as `fill`. Maps that only flip and shift by whole pixels copy pixels
/// exactly. `None` when `map` is not invertible.
pub fn warp_affine(
    src: &ImageChw,
    map: &Affine2,
    width: usize,
    height: usize,
    fill: f32,
) -> Option<ImageChw> {
    let inv = map.inverse()?;
    let mut out = ImageChw::filled(src.channels, height, width, fill);
    if let Some(()) = copy_if_pixel_exact(src, &inv, &mut out) {
        return Some(out);
    }
    let (sw, sh) = (src.width as i64, src.height as i64);
    // Per output row, the source position moves linearly with x; the taps of
    // the row are computed once and reused for every channel.
    let mut idx = vec![0usize; width];
    let mut wts = vec![[0f32; 4]; width];
    let mut mask = vec![0u8; width];
    let [[a, b, c], [d, e, f]] = inv.m;
    for y in 0..height {
        let yc = y as f64 + 0.5;
        for x in 0..width {
            let xc = x as f64 + 0.5;
            let sx = (a * xc + b * yc + c - 0.5).clamp(-FAR, FAR);
            let sy = (d * xc + e * yc + f - 0.5).clamp(-FAR, FAR);
            let (x0, y0) = (floor(sx), floor(sy));
            let (tx, ty) = ((sx - x0 as f64) as f32, (sy - y0 as f64) as f32);
            wts[x] = [
                (1.0 - tx) * (1.0 - ty),
                tx * (1.0 - ty),
                (1.0 - tx) * ty,
                tx * ty,
            ];
            // bit k set: tap k (x0,y0), (x0+1,y0), (x0,y0+1), (x0+1,y0+1) inside
            let inx = [x0 >= 0 && x0 < sw, x0 + 1 >= 0 && x0 + 1 < sw];
            let iny = [y0 >= 0 && y0 < sh, y0 + 1 >= 0 && y0 + 1 < sh];
            mask[x] = (inx[0] && iny[0]) as u8
                | ((inx[1] && iny[0]) as u8) << 1
                | ((inx[0] && iny[1]) as u8) << 2
                | ((inx[1] && iny[1]) as u8) << 3;
            idx[x] = if mask[x] == 0b1111 {
                (y0 * sw + x0) as usize
            } else {
                0
            };
        }
        // Pixels whose four taps are all inside form one run per row (the
        // source rectangle is convex): that run takes the branch-free loop.
        let run_start = mask.iter().position(|&m| m == 0b1111).unwrap_or(width);
        let run_end = run_start
            + mask[run_start..]
                .iter()
                .take_while(|&&m| m == 0b1111)
                .count();
        let w = src.width;
        for ch in 0..src.channels {
            let plane = src.channel(ch);
            let out_row = &mut out.channel_mut(ch)[y * width..(y + 1) * width];
            let run = out_row[run_start..run_end]
                .iter_mut()
                .zip(&idx[run_start..run_end])
                .zip(&wts[run_start..run_end]);
            for ((o, &i), &[w00, w10, w01, w11]) in run {
                let (top, bottom) = (&plane[i..i + 2], &plane[i + w..i + w + 2]);
                *o = top[0] * w00 + top[1] * w10 + bottom[0] * w01 + bottom[1] * w11;
            }
            for x in (0..run_start).chain(run_end..width) {
                let m = mask[x];
                if m != 0 {
                    out_row[x] = border_sample(plane, w, x, y, &inv, fill, wts[x], m);
                }
            }
        }
    }
    Some(out)
}

/// Source positions are clamped to `±FAR` pixels (all far outside any image)
/// so that [`floor`] can work by truncation.
const FAR: f64 = 1.0e6;

/// `v.floor()` for `|v| <= FAR` without a libm call (the x86-64 baseline has
/// no rounding instruction): truncation of a shifted, positive value.
fn floor(v: f64) -> i64 {
    (v + 2.0 * FAR) as i64 - 2 * FAR as i64
}

/// A bilinear sample whose taps are partly outside the source.
#[allow(clippy::too_many_arguments)]
fn border_sample(
    plane: &[f32],
    w: usize,
    x: usize,
    y: usize,
    inv: &Affine2,
    fill: f32,
    wts: [f32; 4],
    mask: u8,
) -> f32 {
    let (sx, sy) = inv.apply(x as f64 + 0.5, y as f64 + 0.5);
    let (x0, y0) = (
        floor((sx - 0.5).clamp(-FAR, FAR)),
        floor((sy - 0.5).clamp(-FAR, FAR)),
    );
    let taps = [(x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)];
    let mut v = 0.0;
    for (k, (tx, ty)) in taps.into_iter().enumerate() {
        let value = if mask & (1 << k) != 0 {
            plane[ty as usize * w + tx as usize]
        } else {
            fill
        };
        v += value * wts[k];
    }
    v
}

/// Copies pixels when `inv` (output -> source) maps pixel centres onto pixel
/// centres: a diagonal part of ±1 and whole-pixel offsets (flips, shifts).
fn copy_if_pixel_exact(src: &ImageChw, inv: &Affine2, out: &mut ImageChw) -> Option<()> {
    let [[a, b, c], [d, e, f]] = inv.m;
    let whole = |v: f64| (v - v.round()).abs() < 1e-9;
    if b != 0.0 || d != 0.0 || a.abs() != 1.0 || e.abs() != 1.0 || !whole(c) || !whole(f) {
        return None;
    }
    // Pixel x (centre x + 0.5) comes from source centre a (x + 0.5) + c,
    // i.e. index a x + (a - 1) / 2 + c.
    let ox = ((a - 1.0) / 2.0 + c).round() as i64;
    let oy = ((e - 1.0) / 2.0 + f).round() as i64;
    let (a, e) = (a as i64, e as i64);
    let (sw, sh) = (src.width as i64, src.height as i64);
    let width = out.width;
    for ch in 0..src.channels {
        let plane = src.channel(ch);
        let dst = out.channel_mut(ch);
        for (y, row) in dst.chunks_exact_mut(width).enumerate() {
            let sy = e * y as i64 + oy;
            if sy < 0 || sy >= sh {
                continue;
            }
            let src_row = &plane[sy as usize * src.width..(sy as usize + 1) * src.width];
            for (x, o) in row.iter_mut().enumerate() {
                let sx = a * x as i64 + ox;
                if sx >= 0 && sx < sw {
                    *o = src_row[sx as usize];
                }
            }
        }
    }
    Some(())
}
