//! A contact sheet: windowed CT slices in a grid of tiles, with coloured
//! box outlines, written as an RGB PNG.

use std::path::Path;

use uld_core::Box2;
use uld_data::deeplesion::{HuSlice, LesionRecord};
use uld_data::synth::Manifest;

use super::raster::{draw_rect, write_rgb};

pub const GREEN: [u8; 3] = [40, 230, 60];
pub const RED: [u8; 3] = [240, 40, 40];
pub const YELLOW: [u8; 3] = [250, 220, 30];
pub const BLUE: [u8; 3] = [60, 140, 255];

/// A soft-tissue window, for slices that name none.
pub const DEFAULT_WINDOW: [f32; 2] = [-175.0, 275.0];

const GAP: usize = 4;

/// The lesions on one key image, given its `DL_info.csv` rows: each
/// labelled box (`true`), then, where a synth manifest is given, every other
/// lesion its slice cuts (`false`).
pub fn key_slice_lesions(rows: &[&LesionRecord], manifest: Option<&Manifest>) -> Vec<(Box2, bool)> {
    let mut lesions: Vec<(Box2, bool)> = rows.iter().map(|r| (r.bbox, true)).collect();
    let (Some(first), Some(manifest)) = (rows.first(), manifest) else {
        return lesions;
    };
    let series = first.series_id();
    for l in manifest.lesions.iter().filter(|l| l.series_id == series) {
        if let Some(b) = l.box_on(first.key_slice_png)
            && !rows.iter().any(|r| r.bbox == b)
        {
            lesions.push((b, false));
        }
    }
    lesions
}

pub struct Sheet {
    columns: usize,
    tile: usize,
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Sheet {
    /// A dark sheet for `count` tiles of `tile` pixels in `columns` columns.
    pub fn new(count: usize, columns: usize, tile: usize) -> Self {
        let count = count.max(1);
        let columns = columns.clamp(1, count);
        let rows = count.div_ceil(columns);
        let tile = tile.max(32);
        let (width, height) = (columns * (tile + GAP) + GAP, rows * (tile + GAP) + GAP);
        Self {
            columns,
            tile,
            width,
            height,
            rgb: vec![24u8; width * height * 3],
        }
    }

    /// Draws `slice` in `window` (HU low, high) into tile `n`, resampled to
    /// the tile, with `boxes` (slice pixels) outlined in their colours.
    pub fn draw(&mut self, n: usize, slice: &HuSlice, window: [f32; 2], boxes: &[(Box2, [u8; 3])]) {
        let tile = self.tile;
        let origin = (
            GAP + (n % self.columns) * (tile + GAP),
            GAP + (n / self.columns) * (tile + GAP),
        );
        let (sx, sy) = (
            slice.width as f32 / tile as f32,
            slice.height as f32 / tile as f32,
        );
        let [lo, hi] = window;
        for j in 0..tile {
            for i in 0..tile {
                let si = (((i as f32 + 0.5) * sx) as usize).min(slice.width - 1);
                let sj = (((j as f32 + 0.5) * sy) as usize).min(slice.height - 1);
                let hu = f32::from(slice.hu[sj * slice.width + si]);
                let v = ((hu - lo) / (hi - lo) * 255.0).clamp(0.0, 255.0) as u8;
                self.put(origin.0 + i, origin.1 + j, [v, v, v]);
            }
        }
        for (b, colour) in boxes {
            let b = Box2::new(b.x1 / sx, b.y1 / sy, b.x2 / sx, b.y2 / sy)
                .clip(tile as f32 - 1.0, tile as f32 - 1.0);
            draw_rect(&mut self.rgb, self.width, origin, b, *colour);
        }
    }

    fn put(&mut self, x: usize, y: usize, colour: [u8; 3]) {
        let at = (y * self.width + x) * 3;
        if let Some(px) = self.rgb.get_mut(at..at + 3) {
            px.copy_from_slice(&colour);
        }
    }

    /// Writes the sheet with `description` (what it shows) in the PNG.
    pub fn write(&self, path: &Path, description: &str) -> anyhow::Result<()> {
        write_rgb(path, self.width, self.height, &self.rgb, description)
    }
}
