//! DICOM reader: the NEMA WG04 CT image in five transfer syntaxes,
//! pydicom's CT_small, and series folders built from CT_small with edited
//! geometry (real pixels, positions chosen by the test).

mod common;
use common::assert_close;
use std::path::{Path, PathBuf};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use uld_core::testdata::shared_data;
use uld_core::{Frame, Volume};
use uld_data::dicom::{
    SeriesOptions, SliceOrder, list_dicom_series, load_dicom_series, read_dicom_file,
    read_dicom_series,
};

fn wg04(syntax: &str) -> Volume<i16> {
    read_dicom_file(shared_data(&format!("dicom/WG04_CT1_{syntax}"))).unwrap()
}

fn ct_small() -> PathBuf {
    shared_data("dicom/CT_small.dcm")
}

fn sum(v: &Volume<i16>) -> i64 {
    v.data().iter().map(|&x| i64::from(x)).sum()
}

/// Reference figures computed with pydicom 3 from the uncompressed file:
/// min -3024, max 1254, sum of HU -228,407,043.
#[test]
fn wg04_lossless_syntaxes_decode_to_identical_hu() {
    let reference = wg04("UNC");
    assert_eq!(reference.dims(), [512, 512, 1]);
    assert_eq!(reference.value_range(), (-3024, 1254));
    assert_eq!(sum(&reference), -228_407_043);
    for syntax in ["RLE", "JPLL", "J2KR"] {
        let v = wg04(syntax);
        assert_eq!(v.dims(), reference.dims(), "{syntax}");
        assert_eq!(v.spacing(), reference.spacing(), "{syntax}");
        assert_eq!(v.world(), reference.world(), "{syntax}");
        let differing = v
            .data()
            .iter()
            .zip(reference.data())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differing, 0, "{syntax}: {differing} pixels differ from UNC");
    }
}

/// Lossy JPEG 2000 (about 37:1): against UNC, a mean absolute difference of
/// 25.92 HU and a largest one of 352 HU over the 262,144 pixels; the C
/// OpenJPEG decoder (pydicom + pylibjpeg-openjpeg) gives the same figures.
#[test]
fn wg04_lossy_jpeg2000_is_close_to_lossless() {
    let reference = wg04("UNC");
    let lossy = wg04("J2KI");
    assert_eq!(lossy.dims(), reference.dims());
    let diffs: Vec<i32> = lossy
        .data()
        .iter()
        .zip(reference.data())
        .map(|(&a, &b)| (i32::from(a) - i32::from(b)).abs())
        .collect();
    let mean = diffs.iter().map(|&d| f64::from(d)).sum::<f64>() / diffs.len() as f64;
    let max = diffs.iter().copied().max().unwrap();
    eprintln!("J2KI vs UNC: mean |diff| {mean:.3} HU, max {max} HU");
    assert!((mean - 25.9214).abs() < 1e-3, "mean |diff| {mean} HU");
    assert_eq!(max, 352);
    assert_eq!(lossy.value_range(), (-3339, 1385));
}

/// pydicom: HU range -896..1167, sum -1,950,906, HU 38 at row 100, column 120.
#[test]
fn ct_small_hu_spacing_and_position() {
    let v = read_dicom_file(ct_small()).unwrap();
    assert_eq!(v.dims(), [128, 128, 1]);
    assert_eq!(v.value_range(), (-896, 1167));
    assert_eq!(sum(&v), -1_950_906);
    assert_eq!(v.get(120, 100, 0), 38);
    assert_close(v.spacing(), [0.661468, 0.661468, 5.0], 1e-9);
    let world = v.world().unwrap();
    assert_eq!(world.frame, Frame::Lps);
    let origin = [-158.135803, -179.035797, -75.699997];
    assert_close(world.apply([0.0, 0.0, 0.0]), origin, 1e-9);
    // x runs along a row (+L), y down the columns (+P).
    assert_close(
        world.apply([10.0, 20.0, 0.0]),
        [origin[0] + 6.61468, origin[1] + 13.22936, origin[2]],
        1e-9,
    );
}

#[test]
fn non_dicom_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "not an image").unwrap();
    let err = read_dicom_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("notes.txt") && err.contains("not a DICOM file"),
        "{err}"
    );
    // A real NIfTI file is not DICOM either.
    let err = read_dicom_file(shared_data("ct/lung1_label.nii.gz"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("lung1_label.nii.gz") && err.contains("not a DICOM file"),
        "{err}"
    );
}

#[test]
fn truncated_dicom_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(ct_small()).unwrap();
    let path = dir.path().join("cut.dcm");
    std::fs::write(&path, &bytes[..bytes.len() - 1000]).unwrap();
    let err = read_dicom_file(&path).unwrap_err().to_string();
    assert!(err.contains("cut.dcm"), "{err}");
}

/// A slice of a test series: CT_small with its geometry replaced.
struct Slice {
    name: &'static str,
    position: Option<[f64; 3]>,
    instance: i32,
    /// Added to RescaleIntercept, so each slice's HU tell which file it was.
    hu_offset: i32,
    series: &'static str,
}

fn slice(name: &'static str, z: f64, instance: i32, hu_offset: i32) -> Slice {
    Slice {
        name,
        position: Some([-158.135803, -179.035797, z]),
        instance,
        hu_offset,
        series: "1.2.3.4",
    }
}

fn ds(values: &[f64]) -> PrimitiveValue {
    let text: Vec<String> = values.iter().map(|v| format!("{v}")).collect();
    PrimitiveValue::from(text.join("\\"))
}

fn write_slice(dir: &Path, s: &Slice, edit: impl Fn(&mut dicom_object::DefaultDicomObject)) {
    let mut obj = dicom_object::open_file(ct_small()).unwrap();
    match s.position {
        Some(p) => {
            obj.put(DataElement::new(
                tags::IMAGE_POSITION_PATIENT,
                VR::DS,
                ds(&p),
            ));
        }
        None => {
            obj.remove_element(tags::IMAGE_POSITION_PATIENT);
        }
    }
    obj.put(DataElement::new(
        tags::INSTANCE_NUMBER,
        VR::IS,
        PrimitiveValue::from(s.instance.to_string()),
    ));
    obj.put(DataElement::new(
        tags::RESCALE_INTERCEPT,
        VR::DS,
        ds(&[f64::from(-1024 + s.hu_offset)]),
    ));
    obj.put(DataElement::new(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(s.series),
    ));
    edit(&mut obj);
    obj.write_to_file(dir.join(s.name)).unwrap();
}

fn write_series(dir: &Path, slices: &[Slice]) {
    for s in slices {
        write_slice(dir, s, |_| {});
    }
}

/// File names, instance numbers and positions all disagree on the order:
/// the position along the normal wins.
fn shuffled_series() -> [Slice; 4] {
    [
        slice("a.dcm", -70.0, 1, 300),
        slice("b.dcm", -75.0, 4, 200),
        slice("c.dcm", -65.0, 2, 400),
        slice("d.dcm", -80.0, 3, 100),
    ]
}

#[test]
fn series_is_sorted_by_position_with_interval_from_positions() {
    let dir = tempfile::tempdir().unwrap();
    write_series(dir.path(), &shuffled_series());
    std::fs::write(dir.path().join("README.txt"), "scan notes").unwrap();
    let single = read_dicom_file(ct_small()).unwrap();

    let series = load_dicom_series(dir.path(), &SeriesOptions::default()).unwrap();
    let v = &series.volume;
    assert_eq!(v.dims(), [128, 128, 4]);
    assert_close(v.spacing(), [0.661468, 0.661468, 5.0], 1e-9);
    assert_eq!(series.order, SliceOrder::Position);
    let names: Vec<_> = series
        .files
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["d.dcm", "b.dcm", "a.dcm", "c.dcm"]);
    assert_eq!(series.skipped, [dir.path().join("README.txt")]);
    for (z, offset) in [100, 200, 300, 400].into_iter().enumerate() {
        assert_eq!(
            v.get(120, 100, z),
            single.get(120, 100, 0) + offset,
            "slice {z}"
        );
    }
    let world = v.world().unwrap();
    assert_eq!(world.frame, Frame::Lps);
    for (z, expected_z) in [-80.0, -75.0, -70.0, -65.0].into_iter().enumerate() {
        assert_close(
            world.apply([0.0, 0.0, z as f64]),
            [-158.135803, -179.035797, expected_z],
            1e-9,
        );
    }
    assert_eq!(read_dicom_series(dir.path()).unwrap(), series.volume);
}

/// Sagittal slices: the normal of rows along +y and columns along -z is -x,
/// so the order is by decreasing x.
#[test]
fn series_order_follows_the_slice_normal_not_z() {
    let dir = tempfile::tempdir().unwrap();
    let sagittal = |obj: &mut dicom_object::DefaultDicomObject| {
        obj.put(DataElement::new(
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            ds(&[0.0, 1.0, 0.0, 0.0, 0.0, -1.0]),
        ));
    };
    for (name, x, offset) in [("p.dcm", 4.0, 30), ("q.dcm", 10.0, 10), ("r.dcm", 7.0, 20)] {
        let mut s = slice(name, 0.0, 1, offset);
        s.position = Some([x, 0.0, 0.0]);
        write_slice(dir.path(), &s, sagittal);
    }
    let series = load_dicom_series(dir.path(), &SeriesOptions::default()).unwrap();
    let names: Vec<_> = series
        .files
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["q.dcm", "r.dcm", "p.dcm"]);
    assert_close(series.volume.spacing(), [0.661468, 0.661468, 3.0], 1e-9);
    let world = series.volume.world().unwrap();
    assert_close(world.apply([0.0, 0.0, 2.0]), [4.0, 0.0, 0.0], 1e-9);
    // One column step moves 0.661468 mm towards the feet (-z).
    assert_close(world.apply([0.0, 1.0, 0.0]), [10.0, 0.0, -0.661468], 1e-9);
}

#[test]
fn mixed_series_are_listed_and_one_can_be_picked() {
    let dir = tempfile::tempdir().unwrap();
    let mut slices = shuffled_series();
    slices[2].series = "1.2.3.99";
    write_series(dir.path(), &slices);
    let err = read_dicom_series(dir.path()).unwrap_err().to_string();
    assert!(err.contains("mixes 2 series"), "{err}");
    assert!(
        err.contains("1.2.3.4 (3 files)") && err.contains("1.2.3.99 (1 files)"),
        "{err}"
    );
    let listing = list_dicom_series(dir.path()).unwrap();
    assert_eq!(listing.len(), 2);
    assert_eq!(
        (listing[0].series_uid.as_str(), listing[0].files),
        ("1.2.3.4", 3)
    );

    let options = SeriesOptions {
        series_uid: Some("1.2.3.4".into()),
        ..SeriesOptions::default()
    };
    let picked = load_dicom_series(dir.path(), &options).unwrap();
    assert_eq!(picked.volume.depth(), 3);
    assert_eq!(picked.series_uid, "1.2.3.4");
    let options = SeriesOptions {
        series_uid: Some("7.7.7".into()),
        ..SeriesOptions::default()
    };
    let err = load_dicom_series(dir.path(), &options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no series 7.7.7"), "{err}");
}

#[test]
fn uneven_spacing_names_the_slices() {
    let dir = tempfile::tempdir().unwrap();
    write_series(
        dir.path(),
        &[
            slice("s0.dcm", 0.0, 1, 0),
            slice("s1.dcm", 5.0, 2, 0),
            slice("s2.dcm", 10.0, 3, 0),
            slice("s3.dcm", 20.0, 4, 0),
        ],
    );
    let err = read_dicom_series(dir.path()).unwrap_err().to_string();
    assert!(err.contains("uneven slice spacing"), "{err}");
    assert!(
        err.contains("s2.dcm and s3.dcm") && err.contains("10.0000 mm apart"),
        "{err}"
    );
    assert!(err.contains("median interval is 5.0000 mm"), "{err}");
    // Within the tolerance (1% of the mean interval) it reads.
    let dir = tempfile::tempdir().unwrap();
    write_series(
        dir.path(),
        &[
            slice("s0.dcm", 0.0, 1, 0),
            slice("s1.dcm", 5.02, 2, 0),
            slice("s2.dcm", 10.0, 3, 0),
        ],
    );
    assert_close(
        read_dicom_series(dir.path()).unwrap().spacing(),
        [0.661468, 0.661468, 5.0],
        1e-9,
    );
}

#[test]
fn duplicate_positions_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_series(
        dir.path(),
        &[slice("x.dcm", 0.0, 1, 0), slice("y.dcm", 0.0, 2, 0)],
    );
    let err = read_dicom_series(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("x.dcm and y.dcm") && err.contains("same position"),
        "{err}"
    );
}

#[test]
fn inconsistent_image_size_names_the_slice() {
    let dir = tempfile::tempdir().unwrap();
    write_slice(dir.path(), &slice("big.dcm", 0.0, 1, 0), |_| {});
    write_slice(dir.path(), &slice("small.dcm", 5.0, 2, 0), |obj| {
        obj.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(64u16),
        ));
    });
    let err = read_dicom_series(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("small.dcm") && err.contains("64x128 pixels"),
        "{err}"
    );
    assert!(
        err.contains("big.dcm in the same series has 128x128"),
        "{err}"
    );
}

#[test]
fn without_positions_instance_numbers_order_the_slices() {
    let dir = tempfile::tempdir().unwrap();
    let mut slices = shuffled_series();
    for s in &mut slices {
        s.position = None;
    }
    write_series(dir.path(), &slices);
    let series = load_dicom_series(dir.path(), &SeriesOptions::default()).unwrap();
    assert_eq!(series.order, SliceOrder::InstanceNumber);
    let names: Vec<_> = series
        .files
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["a.dcm", "c.dcm", "d.dcm", "b.dcm"]);
    // No positions: the interval is the stated SliceThickness, no world transform.
    assert_close(series.volume.spacing(), [0.661468, 0.661468, 5.0], 1e-9);
    assert!(series.volume.world().is_none());
}

#[test]
fn folder_without_dicom_is_an_error_naming_its_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "x").unwrap();
    std::fs::copy(
        shared_data("ct/lung1_label.nii.gz"),
        dir.path().join("b.nii.gz"),
    )
    .unwrap();
    let err = read_dicom_series(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("no DICOM files among its 2 files (a.txt, b.nii.gz)"),
        "{err}"
    );
    let empty = tempfile::tempdir().unwrap();
    let err = read_dicom_series(empty.path()).unwrap_err().to_string();
    assert!(err.contains("no files"), "{err}");
}

#[test]
fn a_corrupt_dicom_in_a_series_is_an_error_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    write_series(
        dir.path(),
        &[slice("ok.dcm", 0.0, 1, 0), slice("bad.dcm", 5.0, 2, 0)],
    );
    let bad = dir.path().join("bad.dcm");
    let bytes = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let err = read_dicom_series(dir.path()).unwrap_err().to_string();
    assert!(err.contains("bad.dcm"), "{err}");
}

#[test]
fn series_of_one_real_file_matches_the_file_reader() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        shared_data("dicom/WG04_CT1_JPLL"),
        dir.path().join("WG04_CT1_JPLL"),
    )
    .unwrap();
    let series = load_dicom_series(dir.path(), &SeriesOptions::default()).unwrap();
    assert_eq!(series.order, SliceOrder::Single);
    assert_eq!(series.volume, wg04("UNC"));
}
