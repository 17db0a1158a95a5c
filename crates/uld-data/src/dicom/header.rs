//! Opening a DICOM file and reading the attributes a CT volume needs.

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use dicom_core::header::HasLength;
use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use uld_core::{Error, Location, Result};

use super::lengths;

/// Offset of the `DICM` marker in a Part-10 file (after the preamble).
const MAGIC_OFFSET: usize = 128;

/// How much of a file to parse.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// Attributes only: stop before the pixel data.
    Header,
    Everything,
}

/// Whether the file starts like a DICOM Part-10 file. `Ok(false)` for a file
/// that is readable but is not DICOM.
pub(crate) fn is_dicom(path: &Path) -> Result<bool> {
    let mut start = [0u8; MAGIC_OFFSET + 4];
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut filled = 0;
    let mut reader = file.take(start.len() as u64);
    loop {
        match reader.read(&mut start[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(has_marker(&start[..filled]))
}

pub(crate) fn open(path: &Path, read: Read) -> Result<DefaultDicomObject> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if !has_marker(&bytes) {
        return Err(Error::data(
            Location::file(path),
            "not a DICOM file: no `DICM` marker after the 128-byte preamble",
        ));
    }
    lengths::check_declared_lengths(path, &bytes)?;
    let options = OpenFileOptions::new().read_preamble(ReadPreamble::Always);
    let options = match read {
        Read::Header => options.read_until(tags::PIXEL_DATA),
        Read::Everything => options,
    };
    options
        .from_reader(bytes.as_slice())
        .map_err(|e| Error::data(Location::file(path), format!("unreadable DICOM file: {e}")))
}

fn has_marker(start: &[u8]) -> bool {
    start.get(MAGIC_OFFSET..MAGIC_OFFSET + 4) == Some(b"DICM")
}

/// The attributes of one CT slice.
#[derive(Debug, Clone)]
pub(crate) struct SliceHeader {
    pub path: PathBuf,
    pub series_uid: String,
    pub rows: usize,
    pub cols: usize,
    /// `PixelSpacing` as stored: `[between rows (y), between columns (x)]`.
    pub pixel_spacing: Option<[f64; 2]>,
    pub thickness: Option<f64>,
    pub spacing_between_slices: Option<f64>,
    pub position: Option<[f64; 3]>,
    /// `[row direction, column direction]`, unit vectors.
    pub orientation: Option<[[f64; 3]; 2]>,
    pub instance_number: Option<i64>,
}

impl SliceHeader {
    pub fn from_object(path: &Path, object: &DefaultDicomObject) -> Result<Self> {
        let attrs = Attributes { path, object };
        let rows = attrs.required_int("Rows", tags::ROWS)?;
        let cols = attrs.required_int("Columns", tags::COLUMNS)?;
        if rows == 0 || cols == 0 {
            return Err(Error::data(
                Location::file(path).field("Rows"),
                format!("empty image: {rows} rows x {cols} columns"),
            ));
        }
        let frames = attrs
            .optional_int("NumberOfFrames", tags::NUMBER_OF_FRAMES)?
            .unwrap_or(1);
        if frames != 1 {
            return Err(Error::data(
                Location::file(path).field("NumberOfFrames"),
                format!("{frames} frames: multi-frame images are not supported"),
            ));
        }
        let pixel_spacing = attrs
            .optional_floats::<2>("PixelSpacing", tags::PIXEL_SPACING)?
            .map(|s| attrs.positive("PixelSpacing", s))
            .transpose()?;
        let thickness = attrs.optional_positive("SliceThickness", tags::SLICE_THICKNESS)?;
        let spacing_between_slices =
            attrs.optional_positive("SpacingBetweenSlices", tags::SPACING_BETWEEN_SLICES)?;
        let position =
            attrs.optional_floats::<3>("ImagePositionPatient", tags::IMAGE_POSITION_PATIENT)?;
        let orientation = attrs
            .optional_floats::<6>("ImageOrientationPatient", tags::IMAGE_ORIENTATION_PATIENT)?
            .map(|o| unit_axes(path, o))
            .transpose()?;
        let instance_number = attrs.optional_int("InstanceNumber", tags::INSTANCE_NUMBER)?;
        let series_uid = attrs
            .optional_text(tags::SERIES_INSTANCE_UID)
            .unwrap_or_default();
        Ok(Self {
            path: path.to_path_buf(),
            series_uid,
            rows: rows as usize,
            cols: cols as usize,
            pixel_spacing,
            thickness,
            spacing_between_slices,
            position,
            orientation,
            instance_number,
        })
    }

    /// `[x, y]` spacing in mm: `PixelSpacing` is stored row spacing first.
    pub fn xy_spacing(&self) -> Result<[f64; 2]> {
        self.pixel_spacing
            .map(|[row, col]| [col, row])
            .ok_or_else(|| {
                Error::data(
                    Location::file(&self.path).field("PixelSpacing"),
                    "missing: the in-plane voxel size is unknown",
                )
            })
    }

    /// The slice depth the file states, when there is no neighbour to measure
    /// the interval from.
    pub fn nominal_z_spacing(&self) -> Option<f64> {
        self.spacing_between_slices.or(self.thickness)
    }

    /// `(position, [row, column, normal])` when the file has both position and
    /// orientation.
    pub fn world_axes(&self) -> Option<([f64; 3], [[f64; 3]; 3])> {
        let [row, col] = self.orientation?;
        Some((self.position?, [row, col, cross(row, col)]))
    }

    pub fn file_name(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }
}

pub(crate) fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub(crate) fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// The two direction cosines of `ImageOrientationPatient`, checked to be
/// unit length and perpendicular (to 1e-3, what 6-digit DS values allow)
/// and normalised.
fn unit_axes(path: &Path, o: [f64; 6]) -> Result<[[f64; 3]; 2]> {
    let row = [o[0], o[1], o[2]];
    let col = [o[3], o[4], o[5]];
    let (lr, lc) = (dot(row, row).sqrt(), dot(col, col).sqrt());
    if (lr - 1.0).abs() > 1e-3 || (lc - 1.0).abs() > 1e-3 || dot(row, col).abs() > 1e-3 {
        return Err(Error::data(
            Location::file(path).field("ImageOrientationPatient"),
            format!("{o:?} are not two perpendicular unit vectors"),
        ));
    }
    Ok([row.map(|v| v / lr), col.map(|v| v / lc)])
}

/// Typed access to a file's attributes with errors naming the field.
struct Attributes<'a> {
    path: &'a Path,
    object: &'a DefaultDicomObject,
}

impl Attributes<'_> {
    fn at(&self, name: &str) -> Location {
        Location::file(self.path).field(name)
    }

    fn get(&self, tag: dicom_core::Tag) -> Option<&dicom_object::mem::InMemElement> {
        self.object.get(tag).filter(|e| !e.is_empty())
    }

    fn required_int(&self, name: &str, tag: dicom_core::Tag) -> Result<i64> {
        self.optional_int(name, tag)?
            .ok_or_else(|| Error::data(self.at(name), "missing"))
    }

    fn optional_int(&self, name: &str, tag: dicom_core::Tag) -> Result<Option<i64>> {
        self.get(tag)
            .map(|e| {
                e.to_int::<i64>()
                    .map_err(|err| Error::data(self.at(name), format!("not an integer: {err}")))
            })
            .transpose()
    }

    fn optional_floats<const N: usize>(
        &self,
        name: &str,
        tag: dicom_core::Tag,
    ) -> Result<Option<[f64; N]>> {
        let Some(element) = self.get(tag) else {
            return Ok(None);
        };
        let values = element
            .to_multi_float64()
            .map_err(|err| Error::data(self.at(name), format!("not numbers: {err}")))?;
        let array: [f64; N] = values.as_slice().try_into().map_err(|_| {
            Error::data(
                self.at(name),
                format!("expected {N} numbers, found {}", values.len()),
            )
        })?;
        if array.iter().any(|v| !v.is_finite()) {
            return Err(Error::data(
                self.at(name),
                format!("non-finite value in {array:?}"),
            ));
        }
        Ok(Some(array))
    }

    fn optional_positive(&self, name: &str, tag: dicom_core::Tag) -> Result<Option<f64>> {
        self.optional_floats::<1>(name, tag)?
            .map(|v| self.positive(name, v).map(|[v]| v))
            .transpose()
    }

    fn positive<const N: usize>(&self, name: &str, values: [f64; N]) -> Result<[f64; N]> {
        if values.iter().all(|&v| v > 0.0) {
            Ok(values)
        } else {
            Err(Error::data(
                self.at(name),
                format!("must be positive, got {values:?}"),
            ))
        }
    }

    fn optional_text(&self, tag: dicom_core::Tag) -> Option<String> {
        self.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
    }

    /// `(slope, intercept)`: 1 and 0 when absent.
    pub fn rescale(&self) -> Result<(f64, f64)> {
        let slope = self
            .optional_floats::<1>("RescaleSlope", tags::RESCALE_SLOPE)?
            .map_or(1.0, |[v]| v);
        let intercept = self
            .optional_floats::<1>("RescaleIntercept", tags::RESCALE_INTERCEPT)?
            .map_or(0.0, |[v]| v);
        if slope == 0.0 {
            return Err(Error::data(self.at("RescaleSlope"), "is 0"));
        }
        Ok((slope, intercept))
    }
}

/// `(RescaleSlope, RescaleIntercept)` of a file (1 and 0 when absent).
pub(crate) fn rescale(path: &Path, object: &DefaultDicomObject) -> Result<(f64, f64)> {
    Attributes { path, object }.rescale()
}
