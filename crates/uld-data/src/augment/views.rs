//! The two views of a sample that teacher-student training compares: a weak
//! view (flip) for the teacher and a strong view for the student.

use rand::Rng;
use serde::{Deserialize, Serialize};
use uld_core::Box2;

use super::intensity::{add_noise, cut_out, jitter};
use super::warp::warp_affine;
use crate::affine::{Affine2, ClipRule};
use crate::image::ImageChw;
use crate::sample::Sample;

/// Weak view: a left-right flip with probability `flip_prob`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeakConfig {
    pub flip_prob: f64,
}

impl Default for WeakConfig {
    fn default() -> Self {
        Self { flip_prob: 0.5 }
    }
}

/// Strong view: flip, then scale, rotation and translation about the image
/// centre (one affine on the same canvas), then contrast/brightness jitter,
/// noise and cut-out. Intensities are in normalised units; brightness and
/// noise are given as fractions of the normalisation's range (255 or 2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StrongConfig {
    pub flip_prob: f64,
    /// Isotropic scale factor drawn uniformly from `[lo, hi]`.
    pub scale: [f64; 2],
    /// Rotation drawn uniformly from `±max_rotation_deg`.
    pub max_rotation_deg: f64,
    /// Shift drawn uniformly from `±max_translation` of the image size.
    pub max_translation: f64,
    /// Contrast factor drawn from `[lo, hi]`.
    pub contrast: [f32; 2],
    /// Brightness shift drawn from `±max_brightness` of the value range.
    pub max_brightness: f32,
    /// Noise standard deviation as a fraction of the value range.
    pub noise_std: f32,
    /// Probability of each of `cutout_count` holes.
    pub cutout_prob: f64,
    pub cutout_count: usize,
    /// Hole sides drawn from `[lo, hi]` of the image size.
    pub cutout_size: [f64; 2],
    pub clip: ClipRule,
}

impl Default for StrongConfig {
    fn default() -> Self {
        Self {
            flip_prob: 0.5,
            scale: [0.8, 1.2],
            max_rotation_deg: 10.0,
            max_translation: 0.05,
            contrast: [0.9, 1.1],
            max_brightness: 0.02,
            noise_std: 0.005,
            cutout_prob: 0.5,
            cutout_count: 2,
            cutout_size: [0.05, 0.15],
            clip: ClipRule::default(),
        }
    }
}

/// An augmented view of a sample with its targets and its map.
#[derive(Debug, Clone)]
pub struct View {
    pub image: ImageChw,
    pub boxes: Vec<Box2>,
    /// For each box, the id the sample gave it ([`Sample::box_ids`]).
    pub box_ids: Vec<usize>,
    pub ignore: Vec<Box2>,
    /// Sample pixels -> view pixels.
    pub from_sample: Affine2,
    /// Original slice pixels -> view pixels (the sample geometry, then
    /// `from_sample`); [`Affine2::view_to_view`] of two views' `to_view`
    /// moves boxes between them.
    pub to_view: Affine2,
}

impl View {
    /// The sample as a view, unchanged.
    pub fn identity(sample: Sample) -> Self {
        let to_view = sample.affine();
        Self {
            image: sample.image,
            boxes: sample.boxes,
            box_ids: sample.box_ids,
            ignore: sample.ignore,
            from_sample: Affine2::IDENTITY,
            to_view,
        }
    }

    /// The sample mirrored left-right, in place (rows reversed; boxes
    /// through [`Affine2::flip_x`], which keeps every box inside the image).
    pub fn flipped(mut sample: Sample) -> Self {
        let width = sample.image.width;
        for row in sample.image.data.chunks_exact_mut(width) {
            row.reverse();
        }
        let flip = Affine2::flip_x(width as f64);
        let to_view = sample.affine().then(&flip);
        Self {
            image: sample.image,
            boxes: sample.boxes.iter().map(|b| flip.map_box(b)).collect(),
            box_ids: sample.box_ids,
            ignore: sample.ignore.iter().map(|b| flip.map_box(b)).collect(),
            from_sample: flip,
            to_view,
        }
    }

    /// The sample moved through `map` onto a canvas of the same size.
    pub fn warped(sample: &Sample, map: Affine2, clip: &ClipRule) -> Self {
        let image = &sample.image;
        let (w, h) = (image.width as f32, image.height as f32);
        let fill = sample.normalization.fill_value();
        let warped = warp_affine(image, &map, image.width, image.height, fill)
            .unwrap_or_else(|| ImageChw::filled(image.channels, image.height, image.width, fill));
        let mapped = clip.apply(&sample.boxes, &map, w, h);
        let mut ignore = ClipRule::apply_ignore(&sample.ignore, &map, w, h);
        ignore.extend(mapped.dropped_visible);
        Self {
            image: warped,
            box_ids: mapped
                .source_index
                .iter()
                .map(|&i| sample.box_ids[i])
                .collect(),
            boxes: mapped.boxes,
            ignore,
            from_sample: map,
            to_view: sample.affine().then(&map),
        }
    }
}

impl WeakConfig {
    /// Whether to flip: the weak view's one random draw.
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> bool {
        rng.random_bool(self.flip_prob.clamp(0.0, 1.0))
    }
}

/// The weak view: flipped or not, built in place from the sample.
pub fn weak_view<R: Rng + ?Sized>(sample: Sample, config: &WeakConfig, rng: &mut R) -> View {
    if config.draw(rng) {
        View::flipped(sample)
    } else {
        View::identity(sample)
    }
}

/// The geometric part of a strong view, drawn from `rng`: sample pixels ->
/// view pixels on the same canvas.
pub fn strong_affine<R: Rng + ?Sized>(
    width: usize,
    height: usize,
    config: &StrongConfig,
    rng: &mut R,
) -> Affine2 {
    let (w, h) = (width as f64, height as f64);
    let flip = rng.random_bool(config.flip_prob.clamp(0.0, 1.0));
    // A zero or negative scale would make the map singular.
    let scale = uniform(rng, config.scale[0], config.scale[1]).max(1e-3);
    let angle = uniform(rng, -config.max_rotation_deg, config.max_rotation_deg).to_radians();
    let t = config.max_translation;
    let (dx, dy) = (uniform(rng, -t, t) * w, uniform(rng, -t, t) * h);
    let mut map = if flip {
        Affine2::flip_x(w)
    } else {
        Affine2::IDENTITY
    };
    let similarity = Affine2::scaling(scale, scale).then(&Affine2::rotation(angle));
    map = map.then(&similarity.about(w / 2.0, h / 2.0));
    map.then(&Affine2::translation(dx, dy))
}

/// The strong view.
pub fn strong_view<R: Rng + ?Sized>(sample: &Sample, config: &StrongConfig, rng: &mut R) -> View {
    let (w, h) = (sample.image.width, sample.image.height);
    let map = strong_affine(w, h, config, rng);
    let mut view = View::warped(sample, map, &config.clip);
    let (lo, hi) = sample.normalization.range();
    let range = hi - lo;
    let contrast = uniform(
        rng,
        f64::from(config.contrast[0]),
        f64::from(config.contrast[1]),
    ) as f32;
    let b = f64::from(config.max_brightness);
    let brightness = uniform(rng, -b, b) as f32 * range;
    jitter(&mut view.image, contrast, brightness);
    add_noise(&mut view.image, config.noise_std * range, rng);
    let fill = sample.normalization.fill_value();
    for _ in 0..config.cutout_count {
        if !rng.random_bool(config.cutout_prob.clamp(0.0, 1.0)) {
            continue;
        }
        let cw = (uniform(rng, config.cutout_size[0], config.cutout_size[1]) * w as f64) as usize;
        let ch = (uniform(rng, config.cutout_size[0], config.cutout_size[1]) * h as f64) as usize;
        let x0 = rng.random_range(0..=w.saturating_sub(cw));
        let y0 = rng.random_range(0..=h.saturating_sub(ch));
        cut_out(&mut view.image, [x0, y0, x0 + cw, y0 + ch], fill);
    }
    view
}

/// Uniform on `[lo, hi]`; `lo` when the range is empty.
fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        rng.random_range(lo..=hi)
    } else {
        lo
    }
}
