//! Small raster helpers for the PNG pictures the CLI writes (contact
//! sheets, detection overlays).

use std::path::Path;

use anyhow::Context;
use uld_core::Box2;

/// A 2-pixel rectangle outline of box `b` (tile pixels) at tile origin `o`.
pub fn draw_rect(canvas: &mut [u8], width: usize, o: (usize, usize), b: Box2, colour: [u8; 3]) {
    let (x1, y1, x2, y2) = (
        b.x1.round() as usize,
        b.y1.round() as usize,
        b.x2.round() as usize,
        b.y2.round() as usize,
    );
    let mut put = |x: usize, y: usize| {
        let at = ((o.1 + y) * width + o.0 + x) * 3;
        if at + 3 <= canvas.len() {
            canvas[at..at + 3].copy_from_slice(&colour);
        }
    };
    for t in 0..2 {
        for x in x1..=x2 {
            put(x, y1 + t.min(y2 - y1));
            put(x, y2 - t.min(y2 - y1));
        }
        for y in y1..=y2 {
            put(x1 + t.min(x2 - x1), y);
            put(x2 - t.min(x2 - x1), y);
        }
    }
}

/// Writes an 8-bit RGB PNG atomically, with `description` (what the
/// picture shows and its conventions) as its `Description` text chunk.
pub fn write_rgb(
    path: &Path,
    width: usize,
    height: usize,
    rgb: &[u8],
    description: &str,
) -> anyhow::Result<()> {
    uld_core::write_atomically(path, |out| {
        let mut encoder = png::Encoder::new(out, width as u32, height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        if !description.is_empty() {
            encoder
                .add_text_chunk("Description".into(), description.into())
                .map_err(std::io::Error::other)?;
        }
        let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
        writer
            .write_image_data(rgb)
            .map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    })
    .with_context(|| format!("cannot write {}", path.display()))
}
