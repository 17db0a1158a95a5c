//! NIfTI reader: the real lung CT and its tumour mask, hand-built headers
//! for scaling, byte order and qform, and bad files.

mod common;
use common::assert_close;
use std::io::Write;
use std::path::{Path, PathBuf};

use uld_core::testdata::shared_data;
use uld_core::{Frame, Volume};
use uld_data::nifti::{NiftiContent, read_nifti, read_nifti_auto, read_nifti_labels};

fn image_path() -> PathBuf {
    shared_data("ct/lung1_image.nii.gz")
}

fn label_path() -> PathBuf {
    shared_data("ct/lung1_label.nii.gz")
}

#[test]
fn lung_ct_shape_spacing_and_hu_range() {
    let ct = read_nifti(image_path()).unwrap();
    assert_eq!(ct.dims(), [512, 512, 48]);
    assert_close(ct.spacing(), [0.5703, 0.5703, 5.0], 1e-3);
    assert_eq!(ct.value_range(), (-1024, 3071));
    assert_eq!(ct.world().unwrap().frame, Frame::Ras);
}

#[test]
fn tumour_mask_box_in_voxel_indices() {
    let mask = read_nifti_labels(label_path()).unwrap();
    assert_eq!(mask.dims(), [512, 512, 48]);
    assert_eq!(mask.value_range(), (0, 1));
    let (lo, hi, count) = mask.bounds_where(|v| v > 0).unwrap();
    assert_eq!((lo, hi, count), ([206, 347, 32], [229, 372, 34], 837));
}

/// The mask box's world corners follow from the file's sform. Checked two
/// ways: against the srow numbers read by the `nifti` crate's own header
/// parser, and against values computed with nibabel 5.4.2
/// (`apply_affine(img.affine, [206, 347, 32])` and `[229, 372, 34]`).
#[test]
fn tumour_mask_world_corners_follow_the_affine() {
    let mask = read_nifti_labels(label_path()).unwrap();
    let (lo, hi, _) = mask.bounds_where(|v| v > 0).unwrap();
    let header = nifti::NiftiHeader::from_file(label_path()).unwrap();
    assert_eq!(header.sform_code, 2, "the file's transform is its sform");
    let rows = [header.srow_x, header.srow_y, header.srow_z];
    for corner in [lo, hi, [lo[0], hi[1], lo[2]], [hi[0], lo[1], hi[2]]] {
        let v = corner.map(|c| c as f64);
        let expected: [f64; 3] = std::array::from_fn(|r| {
            let m = rows[r].map(f64::from);
            m[0] * v[0] + m[1] * v[1] + m[2] * v[2] + m[3]
        });
        assert_close(mask.voxel_to_world(v).unwrap(), expected, 1e-9);
    }
    assert_close(
        mask.voxel_to_world([206.0, 347.0, 32.0]).unwrap(),
        [28.515625, 127.1015625, -617.5],
        1e-6,
    );
    assert_close(
        mask.voxel_to_world([229.0, 372.0, 34.0]).unwrap(),
        [15.3984375, 112.84375, -607.5],
        1e-6,
    );
}

#[test]
fn image_and_mask_share_their_geometry() {
    let ct = read_nifti(image_path()).unwrap();
    let mask = read_nifti_labels(label_path()).unwrap();
    assert_eq!(ct.world(), mask.world());
    assert_eq!(ct.spacing(), mask.spacing());
}

#[test]
fn auto_detection_tells_ct_from_labels() {
    assert!(matches!(
        read_nifti_auto(label_path()).unwrap(),
        NiftiContent::Labels(_)
    ));
    assert!(matches!(
        read_nifti_auto(image_path()).unwrap(),
        NiftiContent::Ct(_)
    ));
}

/// A NIfTI-1 header built field by field at the offsets of the standard.
#[derive(Clone)]
struct Header {
    big_endian: bool,
    sizeof_hdr: i32,
    dim: [i16; 8],
    intent_code: i16,
    datatype: i16,
    bitpix: i16,
    pixdim: [f32; 8],
    vox_offset: f32,
    scl: (f32, f32),
    xyzt_units: u8,
    qform_code: i16,
    sform_code: i16,
    quatern: [f32; 6],
    srow: [[f32; 4]; 3],
    magic: [u8; 4],
}

impl Header {
    /// A 3x2x2 int16 volume of 2 x 3 x 4 mm, no transform.
    fn small() -> Self {
        Self {
            big_endian: false,
            sizeof_hdr: 348,
            dim: [3, 3, 2, 2, 1, 1, 1, 1],
            intent_code: 0,
            datatype: 4,
            bitpix: 16,
            pixdim: [1.0, 2.0, 3.0, 4.0, 1.0, 1.0, 1.0, 1.0],
            vox_offset: 352.0,
            scl: (1.0, 0.0),
            xyzt_units: 2,
            qform_code: 0,
            sform_code: 0,
            quatern: [0.0; 6],
            srow: [[0.0; 4]; 3],
            magic: *b"n+1\0",
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut h = vec![0u8; 352];
        let be = self.big_endian;
        let mut put = |at: usize, b: &[u8]| h[at..at + b.len()].copy_from_slice(b);
        macro_rules! num {
            ($v:expr) => {
                &if be {
                    $v.to_be_bytes()
                } else {
                    $v.to_le_bytes()
                }
            };
        }
        put(0, num!(self.sizeof_hdr));
        for (i, d) in self.dim.iter().enumerate() {
            put(40 + 2 * i, num!(*d));
        }
        put(68, num!(self.intent_code));
        put(70, num!(self.datatype));
        put(72, num!(self.bitpix));
        for (i, p) in self.pixdim.iter().enumerate() {
            put(76 + 4 * i, num!(*p));
        }
        put(108, num!(self.vox_offset));
        put(112, num!(self.scl.0));
        put(116, num!(self.scl.1));
        put(123, &[self.xyzt_units]);
        put(252, num!(self.qform_code));
        put(254, num!(self.sform_code));
        for (i, q) in self.quatern.iter().enumerate() {
            put(256 + 4 * i, num!(*q));
        }
        for (r, row) in self.srow.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                put(280 + 16 * r + 4 * c, num!(*v));
            }
        }
        put(344, &self.magic);
        h
    }

    fn file_with_i16(&self, values: &[i16]) -> Vec<u8> {
        let mut out = self.bytes();
        for v in values {
            out.extend_from_slice(&if self.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            });
        }
        out
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

const TWELVE: [i16; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

#[test]
fn small_volume_keeps_array_order_and_spacing() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "small.nii",
        &Header::small().file_with_i16(&TWELVE),
    );
    let v = read_nifti(&path).unwrap();
    assert_eq!(v.dims(), [3, 2, 2]);
    assert_eq!(v.spacing(), [2.0, 3.0, 4.0]);
    // i fastest, then j, then k: voxel (i 2, j 1, k 1) is stored at 1*6 + 1*3 + 2.
    assert_eq!(v.get(2, 1, 1), 11);
    assert_eq!(v.get(1, 0, 1), 7);
    assert!(v.world().is_none());
}

#[test]
fn big_endian_gzipped_and_scaled_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Header::small();
    h.big_endian = true;
    h.scl = (2.0, -1000.0);
    let path = write(
        dir.path(),
        "scaled.nii.gz",
        &gzip(&h.file_with_i16(&TWELVE)),
    );
    let v = read_nifti(&path).unwrap();
    assert_eq!(v.get(0, 0, 0), -1000);
    assert_eq!(v.get(2, 1, 1), 11 * 2 - 1000);
    // A slope of 0 means "not scaled".
    h.scl = (0.0, 5.0);
    let path = write(dir.path(), "unscaled.nii", &h.file_with_i16(&TWELVE));
    assert_eq!(read_nifti(&path).unwrap().get(2, 1, 1), 11);
}

#[test]
fn scaled_values_are_rounded_and_must_fit_i16() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Header::small();
    h.scl = (0.4, 0.0);
    let path = write(dir.path(), "round.nii", &h.file_with_i16(&TWELVE));
    let v = read_nifti(&path).unwrap();
    assert_eq!(v.get(1, 0, 0), 0); // 0.4
    assert_eq!(v.get(2, 0, 0), 1); // 0.8
    assert_eq!(v.get(2, 1, 1), 4); // 4.4
    // 8 * 4000 = 32000 fits; 9 * 4000 (stored at 9: i 0, j 1, k 1) does not.
    h.scl = (4000.0, 0.0);
    let path = write(dir.path(), "overflow.nii", &h.file_with_i16(&TWELVE));
    let err = read_nifti(&path).unwrap_err().to_string();
    assert!(err.contains("overflow.nii"), "{err}");
    assert!(err.contains("voxel (i 0, j 1, k 1) holds 36000"), "{err}");
}

#[test]
fn labels_must_be_non_negative_integers() {
    let dir = tempfile::tempdir().unwrap();
    let mut values = TWELVE;
    values[5] = -3;
    let path = write(
        dir.path(),
        "neg.nii",
        &Header::small().file_with_i16(&values),
    );
    let err = read_nifti_labels(&path).unwrap_err().to_string();
    assert!(err.contains("neg.nii") && err.contains("holds -3"), "{err}");
    let mut h = Header::small();
    h.scl = (0.5, 0.0);
    let path = write(dir.path(), "half.nii", &h.file_with_i16(&TWELVE));
    let err = read_nifti_labels(&path).unwrap_err().to_string();
    assert!(err.contains("holds 0.5"), "{err}");
}

#[test]
fn sform_wins_over_qform_and_qform_is_used_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Header::small();
    // qform: 180 degrees about z (b = c = 0, d = 1) -> diag(-1, -1, 1), offset (10, 20, 30).
    h.qform_code = 1;
    h.quatern = [0.0, 0.0, 1.0, 10.0, 20.0, 30.0];
    let path = write(dir.path(), "q.nii", &h.file_with_i16(&TWELVE));
    let w = *read_nifti(&path).unwrap().world().unwrap();
    assert_eq!(w.frame, Frame::Ras);
    // (i, j, k) = (1, 1, 1): (10 - 2, 20 - 3, 30 + 4)
    assert_close(w.apply([1.0, 1.0, 1.0]), [8.0, 17.0, 34.0], 1e-9);
    // qfac = -1 (pixdim[0]) flips the k axis.
    h.pixdim[0] = -1.0;
    let path = write(dir.path(), "qfac.nii", &h.file_with_i16(&TWELVE));
    let w = *read_nifti(&path).unwrap().world().unwrap();
    assert_close(w.apply([1.0, 1.0, 1.0]), [8.0, 17.0, 26.0], 1e-9);
    // An sform present takes precedence.
    h.sform_code = 1;
    h.srow = [
        [0.0, 3.0, 0.0, 1.0],
        [2.0, 0.0, 0.0, 2.0],
        [0.0, 0.0, 4.0, 3.0],
    ];
    let path = write(dir.path(), "s.nii", &h.file_with_i16(&TWELVE));
    let w = *read_nifti(&path).unwrap().world().unwrap();
    assert_close(w.apply([1.0, 2.0, 1.0]), [7.0, 4.0, 7.0], 1e-9);
}

#[test]
fn metre_units_become_millimetres() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Header::small();
    h.xyzt_units = 1;
    h.pixdim = [1.0, 0.002, 0.003, 0.004, 1.0, 1.0, 1.0, 1.0];
    let path = write(dir.path(), "m.nii", &h.file_with_i16(&TWELVE));
    assert_close(read_nifti(&path).unwrap().spacing(), [2.0, 3.0, 4.0], 1e-6);
}

fn expect_error(path: &Path, read: impl Fn(&Path) -> uld_core::Result<Volume<i16>>, says: &str) {
    let err = read(path).expect_err("bad file must not read").to_string();
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name), "error must name the file: {err}");
    assert!(err.contains(says), "error must say `{says}`: {err}");
}

fn read(path: &Path) -> uld_core::Result<Volume<i16>> {
    read_nifti(path)
}

#[test]
fn wrong_header_size_and_magic_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Header::small();
    h.sizeof_hdr = 350;
    let p = write(dir.path(), "size.nii", &h.file_with_i16(&TWELVE));
    expect_error(&p, read, "sizeof_hdr is 350");
    let mut h = Header::small();
    h.sizeof_hdr = 540;
    let p = write(dir.path(), "v2.nii", &h.file_with_i16(&TWELVE));
    expect_error(&p, read, "NIfTI-2");
    let mut h = Header::small();
    h.magic = *b"abc\0";
    let p = write(dir.path(), "magic.nii", &h.file_with_i16(&TWELVE));
    expect_error(&p, read, "field `magic`");
    let mut h = Header::small();
    h.magic = *b"ni1\0";
    let p = write(dir.path(), "pair.nii", &h.file_with_i16(&TWELVE));
    expect_error(&p, read, "separate .img");
    let p = write(dir.path(), "text.nii", b"hello, this is not a volume");
    expect_error(&p, read, "not a NIfTI file");
}

#[test]
fn unsupported_layouts_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Header::small();
    h.dim = [4, 3, 2, 1, 2, 1, 1, 1];
    let p = write(dir.path(), "4d.nii", &h.file_with_i16(&TWELVE));
    expect_error(&p, read, "only 3D volumes");
    let mut h = Header::small();
    h.datatype = 32; // complex64
    let p = write(dir.path(), "complex.nii", &h.file_with_i16(&TWELVE));
    expect_error(&p, read, "not supported");
    let mut h = Header::small();
    h.dim[2] = -2;
    let p = write(dir.path(), "negdim.nii", &h.file_with_i16(&TWELVE));
    expect_error(&p, read, "dimensions must be positive");
    let mut h = Header::small();
    h.pixdim[2] = 0.0;
    let p = write(dir.path(), "pixdim.nii", &h.file_with_i16(&TWELVE));
    expect_error(&p, read, "field `pixdim`");
    let mut h = Header::small();
    h.vox_offset = 100.0;
    let p = write(dir.path(), "offset.nii", &h.file_with_i16(&TWELVE));
    expect_error(&p, read, "field `vox_offset`");
}

#[test]
fn truncated_data_is_an_error_plain_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let full = Header::small().file_with_i16(&TWELVE);
    let short = &full[..full.len() - 3];
    let p = write(dir.path(), "short.nii", short);
    expect_error(&p, read, "promises 24 bytes of voxel data");
    let p = write(dir.path(), "short.nii.gz", &gzip(short));
    expect_error(&p, read, "promises 24 bytes");
    // A gzip stream cut short is an error too, and so is a wrong checksum.
    let packed = gzip(&full);
    let p = write(dir.path(), "cut.nii.gz", &packed[..packed.len() - 6]);
    expect_error(&p, read, "corrupt gzip stream");
    let mut bad_crc = packed.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xff;
    let p = write(dir.path(), "crc.nii.gz", &bad_crc);
    expect_error(&p, read, "corrupt gzip stream");
}

#[test]
fn truncated_real_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::read(label_path()).unwrap();
    let p = write(
        dir.path(),
        "lung1_label_cut.nii.gz",
        &real[..real.len() / 2],
    );
    expect_error(&p, read, "lung1_label_cut.nii.gz");
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let err = read_nifti("/nonexistent/nowhere.nii")
        .unwrap_err()
        .to_string();
    assert!(err.contains("nowhere.nii"), "{err}");
}
