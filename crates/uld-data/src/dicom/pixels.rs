//! Decoding a slice's pixel data to HU.

use dicom_object::DefaultDicomObject;
use dicom_pixeldata::{ConvertOptions, ModalityLutOption, PixelDecoder, Rescale};
use uld_core::{Error, Location, Result};

use super::header::{self, SliceHeader};

/// The slice's pixels as HU (stored value x RescaleSlope + RescaleIntercept,
/// rounded), row after row.
pub(crate) fn decode_hu(object: &DefaultDicomObject, slice: &SliceHeader) -> Result<Vec<i16>> {
    let at = || Location::file(&slice.path);
    let (slope, intercept) = header::rescale(&slice.path, object)?;
    let decoded = decode(object).map_err(|e| {
        Error::data(
            at().field("PixelData"),
            format!(
                "cannot decode the pixel data ({}): {e}",
                transfer_syntax(object)
            ),
        )
    })?;
    if decoded.samples_per_pixel() != 1 || !decoded.photometric_interpretation().is_monochrome() {
        return Err(Error::data(
            at().field("PhotometricInterpretation"),
            format!(
                "{} with {} samples per pixel: a CT slice is monochrome",
                decoded.photometric_interpretation(),
                decoded.samples_per_pixel()
            ),
        ));
    }
    if (decoded.rows() as usize, decoded.columns() as usize) != (slice.rows, slice.cols) {
        return Err(Error::data(
            at().field("PixelData"),
            format!(
                "decoded {}x{} pixels, the header says {}x{}",
                decoded.rows(),
                decoded.columns(),
                slice.rows,
                slice.cols
            ),
        ));
    }
    // The decoder masks to BitsStored and sign-extends; rescaling with the
    // values read above keeps the field names in errors ours.
    let options = ConvertOptions::new()
        .with_modality_lut(ModalityLutOption::Override(Rescale::new(slope, intercept)));
    let values: Vec<f64> = decoded
        .to_vec_frame_with_options(0, &options)
        .map_err(|e| {
            Error::data(
                at().field("PixelData"),
                format!("cannot convert the pixels: {e}"),
            )
        })?;
    if values.len() != slice.rows * slice.cols {
        return Err(Error::data(
            at().field("PixelData"),
            format!(
                "{} pixel values for a {}x{} image",
                values.len(),
                slice.rows,
                slice.cols
            ),
        ));
    }
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let r = v.round();
            if r.is_finite() && r >= f64::from(i16::MIN) && r <= f64::from(i16::MAX) {
                Ok(r as i16)
            } else {
                Err(Error::data(
                    at().field("PixelData"),
                    format!(
                        "pixel (row {}, column {}) is {v} HU, outside i16",
                        i / slice.cols,
                        i % slice.cols
                    ),
                ))
            }
        })
        .collect()
}

/// Decodes the pixel data. dicom-rs's codecs may panic on malformed input;
/// user data must never crash the program, so a panic becomes an error.
fn decode(
    object: &DefaultDicomObject,
) -> std::result::Result<dicom_pixeldata::DecodedPixelData<'_>, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| object.decode_pixel_data()))
        .map_err(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            format!("the decoder failed on malformed data {what}")
        })?
        .map_err(|e| e.to_string())
}

fn transfer_syntax(object: &DefaultDicomObject) -> String {
    let uid = object.meta().transfer_syntax();
    format!("transfer syntax {}", uid.trim_end_matches(['\0', ' ']))
}
