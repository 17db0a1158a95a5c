//! NIfTI-1 volumes (`.nii`, `.nii.gz`): CT in HU and label maps.
//!
//! The voxels keep the file's array order (x = i, y = j, z = k), so indices
//! a user reads here are the indices other NIfTI tools show. Spacing comes
//! from `pixdim`, the world transform from the sform (else the qform) in
//! `Frame::Ras`, both converted to millimetres from the file's spatial unit.
//!
//! The header is parsed by the `nifti` crate; reading the voxel data is done
//! here so that a header cannot make the reader allocate more than the file
//! holds, a short file is an error naming the byte counts, and a gzip stream
//! is read to its end (its checksum is verified).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;
use nifti::{NiftiHeader, NiftiType};
use uld_core::{Error, Frame, Location, Result, Volume, WorldTransform};

/// Size of a NIfTI-1 header in bytes (`sizeof_hdr`).
const NIFTI1_HEADER_SIZE: usize = 348;
/// `sizeof_hdr` of a NIfTI-2 header, recognised only to say it is unsupported.
const NIFTI2_HEADER_SIZE: i32 = 540;
/// `intent_code` NIFTI_INTENT_LABEL: voxel values are labels.
const INTENT_LABEL: i16 = 1002;
/// More distinct values than this and an integer volume is not a label map.
const MAX_GUESSED_LABELS: usize = 256;

/// Reads a CT volume. Stored values are scaled by `scl_slope`/`scl_inter`
/// (a slope of 0 means unscaled, as the standard says) and rounded to i16 HU;
/// a value that does not fit is an error naming the voxel.
pub fn read_nifti(path: impl AsRef<Path>) -> Result<Volume<i16>> {
    read_ct_from(RawNifti::read(path.as_ref())?)
}

/// Reads a label map: after scaling, every voxel must be an integer in
/// `0..=65535`.
pub fn read_nifti_labels(path: impl AsRef<Path>) -> Result<Volume<u16>> {
    labels_from(RawNifti::read(path.as_ref())?)
}

/// A NIfTI file read as what it holds.
#[derive(Debug, Clone, PartialEq)]
pub enum NiftiContent {
    Ct(Volume<i16>),
    Labels(Volume<u16>),
}

/// Reads a NIfTI file as a label map when the header says so
/// (`intent_code` = NIFTI_INTENT_LABEL) or when it stores integers, unscaled,
/// that are all labels (non-negative, at most 256 distinct values: a CT has
/// thousands); as CT otherwise.
pub fn read_nifti_auto(path: impl AsRef<Path>) -> Result<NiftiContent> {
    let raw = RawNifti::read(path.as_ref())?;
    if raw.is_label_map() {
        labels_from(raw).map(NiftiContent::Labels)
    } else {
        read_ct_from(raw).map(NiftiContent::Ct)
    }
}

fn read_ct_from(raw: RawNifti) -> Result<Volume<i16>> {
    raw.convert("HU as i16", |v| {
        let r = v.round();
        (r >= f64::from(i16::MIN) && r <= f64::from(i16::MAX)).then_some(r as i16)
    })
}

fn labels_from(raw: RawNifti) -> Result<Volume<u16>> {
    raw.convert("a label (integer 0..=65535)", |v| {
        (v.fract() == 0.0 && (0.0..=f64::from(u16::MAX)).contains(&v)).then_some(v as u16)
    })
}

/// A NIfTI file with its header checked and its voxel bytes read.
struct RawNifti {
    path: PathBuf,
    dims: [usize; 3],
    spacing: [f64; 3],
    world: Option<WorldTransform>,
    datatype: NiftiType,
    big_endian: bool,
    /// `(slope, intercept)`, `None` when the values are stored unscaled.
    scaling: Option<(f64, f64)>,
    intent_code: i16,
    bytes: Vec<u8>,
}

impl RawNifti {
    fn read(path: &Path) -> Result<Self> {
        let at = || Location::file(path);
        let (mut reader, gzipped) = open_stream(path)?;
        let stream_error = |e: io::Error| stream_error(path, gzipped, e);
        let header = read_header(path, &mut reader, gzipped)?;
        let layout = Layout::of(path, &header)?;

        // Extensions lie between the header and `vox_offset`: skip them.
        let gap = layout.data_offset - NIFTI1_HEADER_SIZE as u64;
        let skipped =
            io::copy(&mut (&mut reader).take(gap), &mut io::sink()).map_err(stream_error)?;
        if skipped < gap {
            return Err(Error::data(
                at().field("vox_offset"),
                format!(
                    "truncated: the voxel data starts at byte {} (vox_offset) but the file ends at byte {}",
                    layout.data_offset,
                    NIFTI1_HEADER_SIZE as u64 + skipped
                ),
            ));
        }
        // Read at most what the header promises; the Vec grows only as bytes
        // arrive, so a lying header cannot force a huge allocation.
        let mut bytes = Vec::new();
        (&mut reader)
            .take(layout.data_bytes)
            .read_to_end(&mut bytes)
            .map_err(stream_error)?;
        if (bytes.len() as u64) < layout.data_bytes {
            return Err(Error::data(
                at(),
                format!(
                    "truncated: the header promises {} bytes of voxel data ({} voxels of {:?}), the file holds {}",
                    layout.data_bytes,
                    layout.dims.iter().product::<usize>(),
                    layout.datatype,
                    bytes.len()
                ),
            ));
        }
        // Read a compressed stream to its end so that gzip's checksum is checked.
        if gzipped {
            io::copy(&mut reader, &mut io::sink()).map_err(stream_error)?;
        }

        let scaling = scaling(path, &header)?;
        let (spacing, world) = geometry(path, &header)?;
        Ok(Self {
            path: path.to_path_buf(),
            dims: layout.dims,
            spacing,
            world,
            datatype: layout.datatype,
            big_endian: header.endianness == nifti::Endianness::Big,
            scaling,
            intent_code: header.intent_code,
            bytes,
        })
    }

    fn is_integer_type(&self) -> bool {
        use NiftiType::*;
        matches!(
            self.datatype,
            Uint8 | Int8 | Int16 | Uint16 | Int32 | Uint32 | Int64 | Uint64
        )
    }

    fn is_label_map(&self) -> bool {
        if self.intent_code == INTENT_LABEL {
            return true;
        }
        if !self.is_integer_type() || self.scaling.is_some() {
            return false;
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut all_labels = true;
        self.for_each_stored(|v| {
            if v < 0.0 {
                all_labels = false;
                return false;
            }
            seen.insert(v.to_bits());
            seen.len() <= MAX_GUESSED_LABELS
        });
        all_labels && seen.len() <= MAX_GUESSED_LABELS
    }

    /// Calls `keep_going` with each stored value in file order until it
    /// returns false.
    fn for_each_stored(&self, mut keep_going: impl FnMut(f64) -> bool) {
        macro_rules! each {
            ($t:ty) => {{
                const N: usize = std::mem::size_of::<$t>();
                for chunk in self.bytes.chunks_exact(N) {
                    let mut a = [0u8; N];
                    a.copy_from_slice(chunk);
                    let v = if self.big_endian {
                        <$t>::from_be_bytes(a)
                    } else {
                        <$t>::from_le_bytes(a)
                    };
                    if !keep_going(v as f64) {
                        return;
                    }
                }
            }};
        }
        match self.datatype {
            NiftiType::Uint8 => each!(u8),
            NiftiType::Int8 => each!(i8),
            NiftiType::Int16 => each!(i16),
            NiftiType::Uint16 => each!(u16),
            NiftiType::Int32 => each!(i32),
            NiftiType::Uint32 => each!(u32),
            NiftiType::Int64 => each!(i64),
            NiftiType::Uint64 => each!(u64),
            NiftiType::Float32 => each!(f32),
            NiftiType::Float64 => each!(f64),
            // `Layout::of` admits only the types above.
            _ => {}
        }
    }

    /// Scales every stored value and converts it with `to`; the first value
    /// `to` rejects is an error naming its voxel.
    fn convert<D: Copy>(self, what: &str, to: impl Fn(f64) -> Option<D>) -> Result<Volume<D>> {
        let n = self.dims.iter().product::<usize>();
        let mut out = Vec::with_capacity(n);
        let mut bad = None;
        let (slope, inter) = self.scaling.unwrap_or((1.0, 0.0));
        self.for_each_stored(|stored| {
            let v = stored * slope + inter;
            match to(v).filter(|_| v.is_finite()) {
                Some(d) => {
                    out.push(d);
                    true
                }
                None => {
                    bad = Some((out.len(), v));
                    false
                }
            }
        });
        if let Some((index, value)) = bad {
            let [nx, ny, _] = self.dims;
            let (x, y, z) = (index % nx, (index / nx) % ny, index / (nx * ny));
            return Err(Error::data(
                Location::file(&self.path).slice(z),
                format!("voxel (i {x}, j {y}, k {z}) holds {value}, which is not {what}"),
            ));
        }
        let volume = Volume::new(self.dims, self.spacing, out)
            .map_err(|e| Error::data(Location::file(&self.path), e.to_string()))?;
        Ok(match self.world {
            Some(world) => volume.with_world(world),
            None => volume,
        })
    }
}

/// The voxel dimensions `[nx, ny, nz]` a NIfTI file's header gives, read
/// without its voxel data (to check a scan's size before loading it).
pub fn read_nifti_dims(path: impl AsRef<Path>) -> Result<[usize; 3]> {
    let path = path.as_ref();
    let (mut reader, gzipped) = open_stream(path)?;
    let header = read_header(path, &mut reader, gzipped)?;
    Ok(Layout::of(path, &header)?.dims)
}

/// The file's bytes, decompressed when it is gzipped, and whether it is.
fn open_stream(path: &Path) -> Result<(Box<dyn Read>, bool)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buffered = BufReader::new(file);
    let gzipped = buffered
        .fill_buf()
        .map_err(|e| Error::io(path, e))?
        .starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read> = if gzipped {
        Box::new(MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    Ok((reader, gzipped))
}

fn stream_error(path: &Path, gzipped: bool, e: io::Error) -> Error {
    if gzipped {
        Error::data(Location::file(path), format!("corrupt gzip stream: {e}"))
    } else {
        Error::io(path, e)
    }
}

fn read_header(path: &Path, reader: &mut dyn Read, gzipped: bool) -> Result<NiftiHeader> {
    let mut header_bytes = Vec::with_capacity(NIFTI1_HEADER_SIZE);
    reader
        .take(NIFTI1_HEADER_SIZE as u64)
        .read_to_end(&mut header_bytes)
        .map_err(|e| stream_error(path, gzipped, e))?;
    parse_header(path, &header_bytes)
}

/// Checks `sizeof_hdr` and the magic before handing the bytes to the parser,
/// so that the error says what is wrong.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<NiftiHeader> {
    let at = || Location::file(path);
    if bytes.len() < NIFTI1_HEADER_SIZE {
        return Err(Error::data(
            at(),
            format!(
                "not a NIfTI file: {} bytes, a NIfTI-1 header alone needs {NIFTI1_HEADER_SIZE}",
                bytes.len()
            ),
        ));
    }
    let sizeof_le = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let sizeof_be = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if sizeof_le == NIFTI2_HEADER_SIZE || sizeof_be == NIFTI2_HEADER_SIZE {
        return Err(Error::data(
            at().field("sizeof_hdr"),
            "NIfTI-2 files are not supported (only NIfTI-1)",
        ));
    }
    if sizeof_le != NIFTI1_HEADER_SIZE as i32 && sizeof_be != NIFTI1_HEADER_SIZE as i32 {
        return Err(Error::data(
            at().field("sizeof_hdr"),
            format!("not a NIfTI-1 file: sizeof_hdr is {sizeof_le}, expected {NIFTI1_HEADER_SIZE}"),
        ));
    }
    let magic = &bytes[344..348];
    if magic == nifti::header::MAGIC_CODE_NI1 {
        return Err(Error::data(
            at().field("magic"),
            "a header-only file (magic `ni1`): its voxels are in a separate .img file, which is not supported",
        ));
    }
    if magic != nifti::header::MAGIC_CODE_NIP1 {
        return Err(Error::data(
            at().field("magic"),
            format!("not a NIfTI-1 file: magic is {magic:?}, expected `n+1\\0`"),
        ));
    }
    let header = NiftiHeader::from_reader(bytes)
        .map_err(|e| Error::data(at(), format!("bad NIfTI header: {e}")))?;
    // The parser picks the byte order from `dim[0]`; `sizeof_hdr` must agree.
    if header.sizeof_hdr != NIFTI1_HEADER_SIZE as i32 {
        return Err(Error::data(
            at().field("dim"),
            format!(
                "dim[0] = {} does not match the byte order of sizeof_hdr",
                header.dim[0]
            ),
        ));
    }
    Ok(header)
}

/// Where the voxels are and how many bytes they take.
struct Layout {
    dims: [usize; 3],
    datatype: NiftiType,
    data_offset: u64,
    data_bytes: u64,
}

impl Layout {
    fn of(path: &Path, header: &NiftiHeader) -> Result<Self> {
        let at = |field: &str| Location::file(path).field(field);
        let rank = usize::from(header.dim[0]);
        if !(1..=7).contains(&rank) {
            return Err(Error::data(
                at("dim"),
                format!("dim[0] must be 1 to 7, got {}", header.dim[0]),
            ));
        }
        let sizes: Vec<i16> = header.dim[1..=rank].iter().map(|&d| d as i16).collect();
        if let Some(bad) = sizes.iter().find(|&&d| d < 1) {
            return Err(Error::data(
                at("dim"),
                format!("dimensions must be positive, got {bad} in {sizes:?}"),
            ));
        }
        if let Some(extra) = sizes.iter().skip(3).find(|&&d| d != 1) {
            return Err(Error::data(
                at("dim"),
                format!(
                    "only 3D volumes are supported; dimensions {sizes:?} have {extra} along a 4th or higher axis"
                ),
            ));
        }
        let dims: [usize; 3] = std::array::from_fn(|a| sizes.get(a).map_or(1, |&d| d as usize));

        let datatype = header.data_type().map_err(|_| {
            Error::data(
                at("datatype"),
                format!("unknown datatype code {}", header.datatype),
            )
        })?;
        let element = element_size(datatype).ok_or_else(|| {
            Error::data(
                at("datatype"),
                format!("{datatype:?} voxels are not supported (only real scalars)"),
            )
        })?;
        let offset = header.vox_offset;
        if !(offset.is_finite()
            && offset >= NIFTI1_HEADER_SIZE as f32 + 4.0
            && offset.fract() == 0.0)
        {
            return Err(Error::data(
                at("vox_offset"),
                format!("must be a whole number of bytes >= 352 in a .nii file, got {offset}"),
            ));
        }
        let voxels = dims.iter().map(|&d| d as u64).product::<u64>();
        Ok(Self {
            dims,
            datatype,
            data_offset: offset as u64,
            data_bytes: voxels * element,
        })
    }
}

fn element_size(datatype: NiftiType) -> Option<u64> {
    use NiftiType::*;
    Some(match datatype {
        Uint8 | Int8 => 1,
        Int16 | Uint16 => 2,
        Int32 | Uint32 | Float32 => 4,
        Int64 | Uint64 | Float64 => 8,
        _ => return None,
    })
}

/// `(slope, intercept)` when the header scales the stored values.
fn scaling(path: &Path, header: &NiftiHeader) -> Result<Option<(f64, f64)>> {
    let (slope, inter) = (f64::from(header.scl_slope), f64::from(header.scl_inter));
    // The standard: a slope of 0 means the values are not scaled.
    if slope == 0.0 || (slope == 1.0 && inter == 0.0) {
        return Ok(None);
    }
    if !slope.is_finite() || !inter.is_finite() {
        return Err(Error::data(
            Location::file(path).field("scl_slope"),
            format!("scaling must be finite, got slope {slope}, intercept {inter}"),
        ));
    }
    Ok(Some((slope, inter)))
}

/// Millimetres per unit of the file's `xyzt_units` (unknown means mm).
fn millimetres_per_unit(path: &Path, header: &NiftiHeader) -> Result<f64> {
    match header.xyzt_units & 0o7 {
        0 | 2 => Ok(1.0),
        1 => Ok(1000.0),
        3 => Ok(0.001),
        code => Err(Error::data(
            Location::file(path).field("xyzt_units"),
            format!("unknown spatial unit code {code}"),
        )),
    }
}

fn geometry(path: &Path, header: &NiftiHeader) -> Result<([f64; 3], Option<WorldTransform>)> {
    let mm = millimetres_per_unit(path, header)?;
    let rank = usize::from(header.dim[0]);
    let mut spacing = [1.0; 3];
    for (axis, s) in spacing.iter_mut().enumerate().take(rank.min(3)) {
        let v = f64::from(header.pixdim[axis + 1]).abs() * mm;
        if !(v.is_finite() && v > 0.0) {
            return Err(Error::data(
                Location::file(path).field("pixdim"),
                format!(
                    "voxel size along axis {axis} must be positive, got {}",
                    header.pixdim[axis + 1]
                ),
            ));
        }
        *s = v;
    }
    let matrix = if header.sform_code > 0 {
        let rows = [header.srow_x, header.srow_y, header.srow_z];
        Some(rows.map(|r| r.map(|v| f64::from(v) * mm)))
    } else if header.qform_code > 0 {
        Some(qform_matrix(header, mm))
    } else {
        None
    };
    let world = match matrix {
        Some(m) if m.iter().flatten().all(|v| v.is_finite()) => Some(WorldTransform {
            matrix: m,
            frame: Frame::Ras,
        }),
        Some(_) => {
            let field = if header.sform_code > 0 {
                "srow"
            } else {
                "quatern"
            };
            return Err(Error::data(
                Location::file(path).field(field),
                "the voxel-to-world transform holds non-finite numbers",
            ));
        }
        None => None,
    };
    Ok((spacing, world))
}

/// The qform as a 3x4 matrix (NIfTI-1 standard, method 2): a rotation from
/// the quaternion `(a, b, c, d)` with `a = sqrt(1 - b^2 - c^2 - d^2)`, columns
/// scaled by the voxel size (the third by `qfac` = sign of `pixdim[0]`), then
/// the offset.
fn qform_matrix(header: &NiftiHeader, mm: f64) -> [[f64; 4]; 3] {
    let [b, c, d] = [header.quatern_b, header.quatern_c, header.quatern_d].map(f64::from);
    let a2 = 1.0 - (b * b + c * c + d * d);
    let (a, b, c, d) = if a2 < 1e-7 {
        // A 180-degree rotation: a = 0, normalise (b, c, d).
        let n = (b * b + c * c + d * d).sqrt();
        (0.0, b / n, c / n, d / n)
    } else {
        (a2.sqrt(), b, c, d)
    };
    let r = [
        [
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
        ],
        [
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
        ],
        [
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - c * c - b * b,
        ],
    ];
    let qfac = if header.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
    let size = [
        f64::from(header.pixdim[1]).abs(),
        f64::from(header.pixdim[2]).abs(),
        f64::from(header.pixdim[3]).abs() * qfac,
    ];
    let offset = [header.quatern_x, header.quatern_y, header.quatern_z].map(f64::from);
    std::array::from_fn(|row| {
        let mut m = [0.0; 4];
        for col in 0..3 {
            m[col] = r[row][col] * size[col] * mm;
        }
        m[3] = offset[row] * mm;
        m
    })
}
