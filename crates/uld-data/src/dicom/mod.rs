//! DICOM CT: single files and series folders, in HU.
//!
//! Part-10 files (the `DICM` marker after the 128-byte preamble) in the
//! transfer syntaxes dicom-rs decodes without C code: uncompressed, RLE,
//! lossless JPEG and JPEG 2000. Stored values become HU through each file's
//! `RescaleSlope`/`RescaleIntercept`, rounded to i16.
//!
//! Geometry is in DICOM patient coordinates (`Frame::Lps`): x runs along a
//! row (`ImageOrientationPatient[0..3]`), y down the columns
//! (`ImageOrientationPatient[3..6]`), z along the slice normal, in the order
//! of increasing position along it.

mod header;
mod lengths;
mod pixels;
mod series;

use std::path::Path;

use uld_core::{Error, Frame, Location, Result, Volume, WorldTransform};

pub use series::{
    DicomSeries, SeriesListing, SeriesOptions, SliceOrder, list_dicom_series, load_dicom_series,
};

use header::SliceHeader;

/// Reads one DICOM file as a one-slice volume `[columns, rows, 1]`. Spacing
/// is `PixelSpacing` (x = column spacing, y = row spacing) and, along z,
/// `SliceThickness` (else `SpacingBetweenSlices`).
pub fn read_dicom_file(path: impl AsRef<Path>) -> Result<Volume<i16>> {
    let path = path.as_ref();
    let object = header::open(path, header::Read::Everything)?;
    let header = SliceHeader::from_object(path, &object)?;
    let hu = pixels::decode_hu(&object, &header)?;
    let z_spacing = header.nominal_z_spacing().ok_or_else(|| {
        Error::data(
            Location::file(path).field("SliceThickness"),
            "missing: neither SliceThickness nor SpacingBetweenSlices gives the slice's depth",
        )
    })?;
    let [sx, sy] = header.xy_spacing()?;
    let volume = Volume::new([header.cols, header.rows, 1], [sx, sy, z_spacing], hu)
        .map_err(|e| Error::data(Location::file(path), e.to_string()))?;
    Ok(match header.world_axes() {
        Some((origin, [row, col, normal])) => volume.with_world(transform(
            origin,
            [row, col],
            [sx, sy],
            normal.map(|v| v * z_spacing),
        )),
        None => volume,
    })
}

/// Reads every DICOM file of one series in `dir` as a volume, slices sorted
/// along the slice normal. Fails when the folder mixes series: use
/// [`load_dicom_series`] with [`SeriesOptions::series_uid`] to pick one.
pub fn read_dicom_series(dir: impl AsRef<Path>) -> Result<Volume<i16>> {
    load_dicom_series(dir, &SeriesOptions::default()).map(|s| s.volume)
}

/// The voxel-to-LPS transform: columns are the row and column direction
/// cosines scaled by the pixel spacing, and the step from one slice to the next.
fn transform(
    origin: [f64; 3],
    [row, col]: [[f64; 3]; 2],
    [sx, sy]: [f64; 2],
    slice_step: [f64; 3],
) -> WorldTransform {
    let matrix = std::array::from_fn(|r| [row[r] * sx, col[r] * sy, slice_step[r], origin[r]]);
    WorldTransform {
        matrix,
        frame: Frame::Lps,
    }
}
