//! A CT slice as the page shows it: HU mapped through a window to an 8-bit
//! grayscale PNG.

use uld_core::{Error, Result};
use uld_data::deeplesion::HuSlice;

/// The window presets the page offers besides the row's DICOM windows:
/// (name, lowest HU, highest HU).
pub const PRESETS: [(&str, f32, f32); 3] = [
    ("soft tissue", -160.0, 240.0),
    ("lung", -1350.0, 150.0),
    ("bone", -450.0, 1050.0),
];

/// `slice` windowed to `[low, high]` HU (black below, white above) as PNG.
pub fn windowed_png(slice: &HuSlice, low: f32, high: f32) -> Result<Vec<u8>> {
    if !(low.is_finite() && high.is_finite() && high > low) {
        return Err(Error::invalid(
            "window",
            format!("needs two finite HU values, low < high; got {low}, {high}"),
        ));
    }
    let scale = 255.0 / (high - low);
    let pixels: Vec<u8> = slice
        .hu
        .iter()
        .map(|&h| ((f32::from(h) - low) * scale).round().clamp(0.0, 255.0) as u8)
        .collect();
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, slice.width as u32, slice.height as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder
            .write_header()
            .map_err(|e| Error::invalid("slice image", e.to_string()))?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| Error::invalid("slice image", e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_maps_its_ends_to_black_and_white() {
        let slice = HuSlice {
            width: 4,
            height: 1,
            hu: vec![-1000, -160, 40, 1000],
        };
        let png = windowed_png(&slice, -160.0, 240.0).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        assert_eq!(&buf[..4], &[0, 0, 128, 255]);
        assert!(windowed_png(&slice, 10.0, 10.0).is_err());
    }
}
