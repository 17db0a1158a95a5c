//! Small raster helpers for RGB pictures (contact sheets, detection
//! overlays): HU to grey, box outlines, PNG writing.

use std::path::Path;

use uld_core::{Box2, Result};

/// The grey level of `hu` in `window` (HU low, high): 0 at or below the
/// low end, 255 at or above the high end, linear between (truncated).
pub fn gray(hu: f32, window: [f32; 2]) -> u8 {
    let [lo, hi] = window;
    ((hu - lo) / (hi - lo) * 255.0).clamp(0.0, 255.0) as u8
}

/// A 2-pixel rectangle outline of box `b` (tile pixels, rounded) at tile
/// origin `o` of an RGB `canvas` `width` pixels wide; pixels past the
/// canvas's end are left out.
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
) -> Result<()> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_map_hu_to_grey_and_clamp() {
        let w = [-160.0, 240.0];
        assert_eq!(gray(-1000.0, w), 0);
        assert_eq!(gray(-160.0, w), 0);
        assert_eq!(gray(40.0, w), 127);
        assert_eq!(gray(240.0, w), 255);
        assert_eq!(gray(3000.0, w), 255);
    }

    #[test]
    fn outlines_are_two_pixels_wide_and_stay_on_the_canvas() {
        let (w, h) = (8, 6);
        let mut rgb = vec![0u8; w * h * 3];
        draw_rect(
            &mut rgb,
            w,
            (1, 1),
            Box2::new(0.0, 0.0, 5.0, 3.6),
            [9, 8, 7],
        );
        let on = |x: usize, y: usize| rgb[(y * w + x) * 3] == 9;
        // Box x 1..=6, y 1..=5 on the canvas (origin 1, 1; y2 rounds to 4).
        assert!(on(1, 1) && on(6, 1) && on(1, 5) && on(6, 5));
        assert!(on(2, 2) && on(5, 4), "the second ring");
        assert!(!on(3, 3), "inside the two rings");
        assert!(!on(0, 0) && !on(7, 5));
        // A box past the canvas's end is cut there, not a panic.
        draw_rect(
            &mut rgb,
            w,
            (0, 0),
            Box2::new(4.0, 4.0, 20.0, 20.0),
            [1, 1, 1],
        );
        assert_eq!(rgb.len(), w * h * 3);
    }

    #[test]
    fn pngs_are_rgb_and_carry_their_description() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.png");
        let rgb: Vec<u8> = (0..2 * 3 * 3).map(|v| v as u8).collect();
        write_rgb(&path, 3, 2, &rgb, "three by two").unwrap();
        let mut reader =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()))
                .read_info()
                .unwrap();
        let info = reader.info();
        assert_eq!((info.width, info.height), (3, 2));
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.uncompressed_latin1_text[0].text, "three by two");
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut buf).unwrap();
        assert_eq!(&buf[..frame.buffer_size()], &rgb[..]);
    }
}
