//! A contact sheet: windowed CT slices in a grid of tiles, with coloured
//! box outlines, written as an RGB PNG.

use std::path::Path;

use uld_core::{Box2, Result};

use super::raster::{draw_rect, gray, write_rgb};
use crate::deeplesion::{HuSlice, LesionRecord};
use crate::synth::Manifest;

pub const GREEN: [u8; 3] = [40, 230, 60];
pub const RED: [u8; 3] = [240, 40, 40];
pub const YELLOW: [u8; 3] = [250, 220, 30];
pub const BLUE: [u8; 3] = [60, 140, 255];

/// A soft-tissue window, for slices that name none.
pub const DEFAULT_WINDOW: [f32; 2] = [-175.0, 275.0];

/// Pixels between tiles and around them.
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

/// Tiles in a grid on a dark background (grey 24), left to right, then
/// top to bottom, `GAP` pixels apart.
pub struct Sheet {
    columns: usize,
    tile: usize,
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Sheet {
    /// A dark sheet for `count` tiles of `tile` pixels (at least 32) in
    /// `columns` columns (at most `count`).
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

    /// The sheet's size in pixels, width and height.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// The RGB pixels, row by row.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }

    /// Draws `slice` in `window` (HU low, high) into tile `n`, resampled to
    /// the tile (nearest pixel), with `boxes` (slice pixels) outlined in
    /// their colours.
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
        for j in 0..tile {
            for i in 0..tile {
                let si = (((i as f32 + 0.5) * sx) as usize).min(slice.width - 1);
                let sj = (((j as f32 + 0.5) * sy) as usize).min(slice.height - 1);
                let v = gray(f32::from(slice.hu[sj * slice.width + si]), window);
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
    pub fn write(&self, path: &Path, description: &str) -> Result<()> {
        write_rgb(path, self.width, self.height, &self.rgb, description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_sit_in_a_grid_and_show_the_windowed_slice_with_its_boxes() {
        let mut sheet = Sheet::new(3, 2, 32);
        // 2 columns, 2 rows of 32-px tiles, 4 px apart.
        assert_eq!(sheet.size(), (2 * 36 + 4, 2 * 36 + 4));
        // A 64 x 64 slice: left half -1000 HU, right half +1000 HU.
        let hu = (0..64 * 64)
            .map(|k| if k % 64 < 32 { -1000 } else { 1000 })
            .collect();
        let slice = HuSlice {
            width: 64,
            height: 64,
            hu,
        };
        sheet.draw(
            1,
            &slice,
            DEFAULT_WINDOW,
            &[(Box2::new(8.0, 8.0, 40.0, 40.0), RED)],
        );
        let (w, _) = sheet.size();
        let px = |x: usize, y: usize| {
            let at = (y * w + x) * 3;
            [sheet.rgb()[at], sheet.rgb()[at + 1], sheet.rgb()[at + 2]]
        };
        // Tile 1 starts at x = 4 + 36 = 40, y = 4; the box is halved to 4..20.
        assert_eq!(
            px(40 + 10, 4 + 30),
            [0, 0, 0],
            "left half: below the window"
        );
        assert_eq!(px(40 + 30, 4 + 30), [255, 255, 255], "right half: above it");
        assert_eq!(px(40 + 4, 4 + 10), RED);
        assert_eq!(px(40 + 20, 4 + 20), RED);
        assert_eq!(px(40 + 12, 4 + 12), [0, 0, 0], "inside the outline");
        assert_eq!(px(0, 0), [24, 24, 24], "the background");
        assert_eq!(px(4 + 10, 4 + 10), [24, 24, 24], "tile 0 is not drawn");
    }
}
