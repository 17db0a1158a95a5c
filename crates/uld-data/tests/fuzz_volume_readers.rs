//! Property-based fuzzing of the NIfTI and DICOM entry points: random bytes,
//! truncations and bit flips of the real files must come back as `Ok` or as
//! an error naming the file, never as a panic. Random bytes and truncations
//! that lose data must be errors.
//!
//! Run longer with `PROPTEST_CASES=2000 cargo test -p uld-data --test fuzz_volume_readers`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use uld_core::testdata::shared_data;
use uld_data::dicom::{read_dicom_file, read_dicom_series};
use uld_data::nifti::{read_nifti, read_nifti_auto, read_nifti_labels};

const DICOM_FILES: [&str; 4] = [
    "CT_small.dcm",
    "WG04_CT1_RLE",
    "WG04_CT1_JPLL",
    "WG04_CT1_J2KR",
];

fn real(relative: &str) -> Vec<u8> {
    std::fs::read(shared_data(relative)).unwrap()
}

/// The real label map, decompressed: an uncompressed `.nii` of real content.
fn label_nii() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(real("ct/lung1_label.nii.gz").as_slice())
            .read_to_end(&mut out)
            .unwrap();
        out
    })
}

/// The real label map's header and its slices 32 and 33 (where the tumour
/// is), with `dim[3]` set to 2: a small real file for header bit flips.
fn label_slab_nii() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let full = label_nii();
        let slice = 512 * 512 * 2;
        let mut out = full[..352].to_vec();
        out[46..48].copy_from_slice(&2i16.to_le_bytes());
        out.extend_from_slice(&full[352 + 32 * slice..352 + 34 * slice]);
        out
    })
}

/// Writes `bytes` to a fresh file named `name` and returns its path (the
/// folder lives as long as the returned guard).
fn file_with(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// Runs every reader on the file: each may succeed or fail, but a failure
/// must name the file. Returns whether all failed.
fn all_readers(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    let outcomes: [(&str, Result<(), String>); 5] = [
        (
            "read_nifti",
            read_nifti(path).map(drop).map_err(|e| e.to_string()),
        ),
        (
            "read_nifti_labels",
            read_nifti_labels(path).map(drop).map_err(|e| e.to_string()),
        ),
        (
            "read_nifti_auto",
            read_nifti_auto(path).map(drop).map_err(|e| e.to_string()),
        ),
        (
            "read_dicom_file",
            read_dicom_file(path).map(drop).map_err(|e| e.to_string()),
        ),
        (
            "read_dicom_series",
            read_dicom_series(path.parent().unwrap())
                .map(drop)
                .map_err(|e| e.to_string()),
        ),
    ];
    for (reader, outcome) in &outcomes {
        if let Err(message) = outcome {
            let names_it = message.contains(&name) || *reader == "read_dicom_series";
            assert!(names_it, "{reader}: error does not name {name}: {message}");
        }
    }
    outcomes.iter().all(|(_, o)| o.is_err())
}

fn flip_bits(mut bytes: Vec<u8>, flips: &[(usize, u8)], within: usize) -> Vec<u8> {
    let len = bytes.len().min(within);
    for &(at, bit) in flips {
        bytes[at % len] ^= 1 << (bit % 8);
    }
    bytes
}

/// The sequence delimitation item (FFFE,E0DD) with its zero length.
const SEQUENCE_DELIMITER: [u8; 8] = [0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0];

/// How many bytes at the end of `bytes` close its encapsulated pixel data
/// and hold none of it: 8 when the file ends with the sequence delimiter.
fn closing_delimiter(bytes: &[u8]) -> usize {
    if bytes.ends_with(&SEQUENCE_DELIMITER) {
        SEQUENCE_DELIMITER.len()
    } else {
        0
    }
}

/// A compressed file cut inside its closing delimiter has lost no pixel
/// data: it reads as the whole file does (dicom-rs ends the fragments at
/// the end of the file). A cut into the last fragment is an error.
#[test]
fn a_cut_inside_the_closing_delimiter_reads_as_the_whole_file() {
    let bytes = real("dicom/WG04_CT1_JPLL");
    assert_eq!(closing_delimiter(&bytes), 8);
    let (_dir, path) = file_with("whole.dcm", &bytes);
    let whole = read_dicom_file(&path).unwrap();
    for cut in 1..=8 {
        let (_dir, path) = file_with("cut.dcm", &bytes[..bytes.len() - cut]);
        assert_eq!(read_dicom_file(&path).unwrap(), whole, "cut by {cut} bytes");
    }
    let (_dir, path) = file_with("cut.dcm", &bytes[..bytes.len() - 9]);
    let err = read_dicom_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("cut.dcm") && err.contains("truncated"),
        "{err}"
    );
}

/// The unflipped slab reads: flips start from a valid file.
#[test]
fn the_slab_is_a_valid_label_map() {
    let (_dir, path) = file_with("slab.nii", label_slab_nii());
    let slab = read_nifti_labels(&path).unwrap();
    assert_eq!(slab.dims(), [512, 512, 2]);
    let (lo, hi, _) = slab.bounds_where(|v| v > 0).unwrap();
    assert_eq!((lo[2], hi[2]), (0, 1));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48)
    ))]

    #[test]
    fn random_bytes_are_errors(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let (_dir, path) = file_with("random.bin", &bytes);
        prop_assert!(all_readers(&path));
    }

    /// Random bytes behind a valid-looking start: a NIfTI header, or a DICOM
    /// preamble with its marker.
    #[test]
    fn random_tails_behind_real_starts_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..2048),
        cut in 0usize..600,
    ) {
        let mut nii = label_slab_nii()[..cut.min(352)].to_vec();
        nii.extend_from_slice(&tail);
        let (_dir, path) = file_with("tail.nii", &nii);
        all_readers(&path);
        let mut dcm = real("dicom/CT_small.dcm")[..132 + cut].to_vec();
        dcm.extend_from_slice(&tail);
        let (_dir, path) = file_with("tail.dcm", &dcm);
        all_readers(&path);
    }

    #[test]
    fn truncated_nifti_is_an_error(fraction in 0.0f64..1.0) {
        let gz = real("ct/lung1_label.nii.gz");
        for (name, bytes) in [("cut.nii.gz", gz.as_slice()), ("cut.nii", label_nii())] {
            let len = (bytes.len() as f64 * fraction) as usize;
            let (_dir, path) = file_with(name, &bytes[..len]);
            prop_assert!(all_readers(&path), "{name} cut to {len} bytes read");
        }
    }

    /// A cut that loses pixel data (anywhere before an encapsulated
    /// file's closing delimiter) is an error.
    #[test]
    fn truncated_dicom_is_an_error(which in 0..DICOM_FILES.len(), fraction in 0.0f64..1.0) {
        let bytes = real(&format!("dicom/{}", DICOM_FILES[which]));
        let len = ((bytes.len() - closing_delimiter(&bytes)) as f64 * fraction) as usize;
        let (_dir, path) = file_with("cut.dcm", &bytes[..len]);
        prop_assert!(all_readers(&path), "{} cut to {len} bytes read", DICOM_FILES[which]);
    }

    /// Flips in the NIfTI header (where they change meaning) and anywhere in
    /// the gzipped file (where gzip's checksum catches them).
    #[test]
    fn bit_flipped_nifti_never_panics(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let header_flipped = flip_bits(label_slab_nii().to_vec(), &flips, 352);
        let (_dir, path) = file_with("flipped.nii", &header_flipped);
        all_readers(&path);
        let gz = real("ct/lung1_label.nii.gz");
        let len = gz.len();
        let gz_flipped = flip_bits(gz, &flips, len);
        // The whole 25 MB volume is inflated on each read: one reader suffices.
        let (_dir, path) = file_with("flipped.nii.gz", &gz_flipped);
        if let Err(e) = read_nifti_auto(&path) {
            prop_assert!(e.to_string().contains("flipped.nii.gz"), "{e}");
        }
    }

    #[test]
    fn bit_flipped_dicom_never_panics(
        which in 0..DICOM_FILES.len(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        header_only in any::<bool>(),
    ) {
        let bytes = real(&format!("dicom/{}", DICOM_FILES[which]));
        // Header flips hit the attributes; anywhere else mostly the pixels.
        let within = if header_only { 2048 } else { bytes.len() };
        let (_dir, path) = file_with("flipped.dcm", &flip_bits(bytes, &flips, within));
        all_readers(&path);
    }
}
