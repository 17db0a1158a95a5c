//! Intensity augmentations on normalised values: contrast/brightness jitter,
//! Gaussian noise and cut-out. None of them moves boxes.

use rand::Rng;

use crate::image::ImageChw;

/// `v -> v * contrast + brightness` on every value.
pub fn jitter(image: &mut ImageChw, contrast: f32, brightness: f32) {
    for v in &mut image.data {
        *v = *v * contrast + brightness;
    }
}

/// Adds zero-mean noise of standard deviation `std` to every value.
///
/// Drawing 2.4 M exact normal variates per 9-channel 512x512 sample would
/// cost more than building the sample, so each value gets the Irwin-Hall
/// sum of the four bytes of one 32-bit xorshift draw, rescaled to unit
/// variance: a close approximation of a normal variate (bounded at about
/// ±3.46 σ). Eight independent xorshift streams run side by side so the loop
/// vectorises. The streams are seeded from `rng`, so the noise depends only
/// on `rng`'s state.
pub fn add_noise<R: Rng + ?Sized>(image: &mut ImageChw, std: f32, rng: &mut R) {
    const LANES: usize = 8;
    if std <= 0.0 {
        return;
    }
    // Sum of 4 uniforms on {0..255}: mean 4 * 127.5, variance 4 * (256² - 1) / 12.
    let sd = (4.0 * (256.0f64 * 256.0 - 1.0) / 12.0).sqrt();
    let gain = (f64::from(std) / sd) as f32;
    let offset = (4.0 * 127.5 * f64::from(std) / sd) as f32;
    let mut state = [0u32; LANES];
    for s in &mut state {
        *s = rng.next_u32() | 1;
    }
    let step = |s: &mut u32, v: &mut f32| {
        *s ^= *s << 13;
        *s ^= *s >> 17;
        *s ^= *s << 5;
        let r = *s;
        let sum = (r & 255) + ((r >> 8) & 255) + ((r >> 16) & 255) + (r >> 24);
        *v += sum as f32 * gain - offset;
    };
    let mut chunks = image.data.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (s, v) in state.iter_mut().zip(chunk.iter_mut()) {
            step(s, v);
        }
    }
    for (s, v) in state.iter_mut().zip(chunks.into_remainder()) {
        step(s, v);
    }
}

/// Fills the rectangle `[x0, x1) x [y0, y1)` of every channel with `fill`.
pub fn cut_out(image: &mut ImageChw, rect: [usize; 4], fill: f32) {
    let [x0, y0, x1, y1] = rect;
    let (x1, y1) = (x1.min(image.width), y1.min(image.height));
    if x0 >= x1 || y0 >= y1 {
        return;
    }
    let w = image.width;
    for c in 0..image.channels {
        let plane = image.channel_mut(c);
        for y in y0..y1 {
            plane[y * w + x0..y * w + x1].fill(fill);
        }
    }
}
