//! 2.5D samples: the network input the DeepLesion literature uses (3DCE,
//! MULAN), built from a key slice and its neighbours.
//!
//! Steps, each configurable in [`SampleConfig`]:
//! 1. neighbouring slices at a fixed interval (default 2 mm) around the key
//!    slice, linearly interpolated between the two nearest real slices; a
//!    slice beyond the data is replaced by the nearest existing one;
//! 2. HU window and scaling ([`Normalization`]);
//! 3. black-border crop: the body's bounds on the key slice;
//! 4. in-plane resampling to a target pixel spacing, longer side capped;
//! 5. `3 * groups` channels with the key slice in the middle.
//!
//! The geometry of steps 3-4 is one axis-aligned map recorded in
//! [`SampleGeometry`]; boxes follow it exactly and predictions map back.

mod cache;
mod geometry;
mod resample;
mod source;
mod window;
pub mod word_option;

pub use cache::SliceCache;
pub use geometry::{SampleGeometry, body_bounds};
// The image buffer lives in a leaf module that augmentation uses too.
pub use crate::image::ImageChw;
pub use resample::Resizer;
pub use source::{SeriesSource, SliceRef, SliceSource, VolumeSource};
pub use window::{Normalization, Scaling};

use serde::{Deserialize, Serialize};
use uld_core::{Box2, Error, Result};

use crate::affine::{Affine2, ClipRule};

/// Every knob of sample building; the defaults follow 3DCE/MULAN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SampleConfig {
    pub normalization: Normalization,
    /// Pixel spacing of the sample in mm; `None` keeps the original pixels,
    /// written `target_spacing_mm = "native"` in TOML (and
    /// `--set sample.target_spacing_mm=native`). An absent key is the
    /// default, 0.8 mm.
    #[serde(with = "word_option::native")]
    pub target_spacing_mm: Option<f64>,
    /// Upper bound on the sample's longer side, in pixels; `None`, written
    /// `max_side = "none"`, sets no bound. An absent key is the default, 512.
    #[serde(with = "word_option::none")]
    pub max_side: Option<usize>,
    pub crop: CropConfig,
    /// Distance between neighbouring channels in mm; `None` uses the
    /// series' own slices (no interpolation), written
    /// `slice_interval_mm = "native"`. An absent key is the default, 2 mm.
    #[serde(with = "word_option::native")]
    pub slice_interval_mm: Option<f64>,
    /// Groups of 3 slices, 1 to 9 (3 to 27 channels).
    pub groups: usize,
    /// What happens to boxes the crop cuts.
    pub clip: ClipRule,
}

impl Default for SampleConfig {
    fn default() -> Self {
        Self {
            normalization: Normalization::default(),
            target_spacing_mm: Some(0.8),
            max_side: Some(512),
            crop: CropConfig::default(),
            slice_interval_mm: Some(2.0),
            groups: 3,
            clip: ClipRule::default(),
        }
    }
}

/// The black-border crop ([`body_bounds`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CropConfig {
    pub enabled: bool,
    /// Pixels above this HU are body (3DCE: PNG value 32000, i.e. -768 HU).
    pub threshold_hu: i16,
    /// Side of the square opening that removes the table (3DCE: 7).
    pub opening_px: usize,
    /// Pixels kept around the body's bounds.
    pub margin_px: usize,
}

impl Default for CropConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold_hu: -768,
            opening_px: 7,
            margin_px: 0,
        }
    }
}

impl SampleConfig {
    pub fn channels(&self) -> usize {
        3 * self.groups
    }

    /// The channel holding the key slice: the middle one (`3G / 2`; for even
    /// `3G` the upper of the two middle channels).
    pub fn key_channel(&self) -> usize {
        self.channels() / 2
    }

    pub fn check(&self) -> Result<()> {
        self.normalization.check()?;
        if !(1..=9).contains(&self.groups) {
            return Err(Error::invalid(
                "groups",
                format!("need 1 to 9 groups of 3 slices, got {}", self.groups),
            ));
        }
        let positive = |v: Option<f64>| v.is_none_or(|v| v.is_finite() && v > 0.0);
        if !positive(self.target_spacing_mm) || !positive(self.slice_interval_mm) {
            return Err(Error::invalid(
                "sample spacing",
                "target pixel spacing and slice interval must be positive",
            ));
        }
        if self.max_side == Some(0) {
            return Err(Error::invalid("max_side", "must be at least 1 pixel"));
        }
        Ok(())
    }

    /// For each channel, the slices it blends: `(offset from key, weight)`
    /// pairs whose weights sum to 1. Channel `c` sits `c - key_channel()`
    /// intervals from the key slice, i.e. at `(c - key) * interval /
    /// slice_interval` slices; between two slices it is interpolated linearly
    /// (as 3DCE does, from the floor and ceil neighbours).
    pub fn slice_taps(&self, series_slice_interval_mm: f64) -> Vec<[(i64, f32); 2]> {
        let ratio = match self.slice_interval_mm {
            Some(t) if series_slice_interval_mm.is_finite() && series_slice_interval_mm > 0.0 => {
                t / series_slice_interval_mm
            }
            _ => 1.0,
        };
        let key = self.key_channel() as f64;
        (0..self.channels())
            .map(|c| {
                let pos = (c as f64 - key) * ratio;
                let near = pos.round();
                if (pos - near).abs() < 1e-6 {
                    return [(near as i64, 1.0), (near as i64, 0.0)];
                }
                let lo = pos.floor();
                let t = (pos - lo) as f32;
                [(lo as i64, 1.0 - t), (lo as i64 + 1, t)]
            })
            .collect()
    }
}

/// A 2.5D sample ready for the network.
#[derive(Debug, Clone)]
pub struct Sample {
    /// `3 * groups` channels, the key slice in [`SampleConfig::key_channel`].
    pub image: ImageChw,
    /// Lesion boxes in sample pixels (those the crop kept, clipped).
    pub boxes: Vec<Box2>,
    /// For each box, its index in the boxes given to [`build_sample`].
    pub box_ids: Vec<usize>,
    /// Ignore regions in sample pixels, plus the visible parts of boxes the
    /// crop cut below the [`ClipRule`]'s fraction.
    pub ignore: Vec<Box2>,
    pub geometry: SampleGeometry,
    pub normalization: Normalization,
}

impl Sample {
    /// Original pixels -> sample pixels.
    pub fn affine(&self) -> Affine2 {
        self.geometry.affine()
    }
}

/// Builds the sample around `source`'s key slice. `boxes` and `ignore` are in
/// original pixels of the key slice.
pub fn build_sample(
    source: &dyn SliceSource,
    boxes: &[Box2],
    ignore: &[Box2],
    config: &SampleConfig,
) -> Result<Sample> {
    config.check()?;
    let (width, height) = source.size();
    let spacing = source.spacing();
    let key = source.slice(0)?;
    let crop = if config.crop.enabled {
        body_bounds(
            &key,
            width,
            height,
            config.crop.threshold_hu,
            config.crop.opening_px,
            config.crop.margin_px,
        )
    } else {
        None
    }
    .unwrap_or([0, 0, width, height]);
    drop(key);
    let geometry = SampleGeometry::plan(
        [width, height],
        crop,
        [spacing[0], spacing[1]],
        config.target_spacing_mm,
        config.max_side,
    );
    let [ow, oh] = geometry.output_size;
    let (cw, ch) = (crop[2] - crop[0], crop[3] - crop[1]);
    let norm = config.normalization;
    let resizer = Resizer::new(cw, ch, ow, oh);
    let mut image = ImageChw::filled(config.channels(), oh, ow, 0.0);
    let mut cropped = vec![0f32; cw * ch];
    let mut row = Vec::new();
    let taps = config.slice_taps(spacing[2]);
    // Each slice is fetched once, however many channels blend it.
    let mut slices = std::collections::BTreeMap::new();
    for &(offset, weight) in taps.iter().flatten() {
        if weight > 0.0 && !slices.contains_key(&offset) {
            slices.insert(offset, source.slice(offset)?);
        }
    }
    for (c, [(o0, _), (o1, w1)]) in taps.into_iter().enumerate() {
        let a = &slices[&o0];
        let b = (w1 > 0.0).then(|| &slices[&o1]);
        for (y, out) in cropped.chunks_exact_mut(cw).enumerate() {
            let start = (crop[1] + y) * width + crop[0];
            let ra = &a[start..start + cw];
            match b {
                Some(b) => norm.apply_row_lerp(ra, &b[start..start + cw], w1, out),
                None => norm.apply_row(ra, out),
            }
        }
        resizer.resize(&cropped, image.channel_mut(c), &mut row);
    }
    let affine = geometry.affine();
    let mapped = config.clip.apply(boxes, &affine, ow as f32, oh as f32);
    let mut ignore_out = ClipRule::apply_ignore(ignore, &affine, ow as f32, oh as f32);
    ignore_out.extend(mapped.dropped_visible);
    Ok(Sample {
        image,
        boxes: mapped.boxes,
        box_ids: mapped.source_index,
        ignore: ignore_out,
        geometry,
        normalization: norm,
    })
}
