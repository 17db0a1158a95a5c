//! `DL_info.csv` reading, checked against facts of the real val/test files.

use std::collections::BTreeMap;
use std::path::Path;

use uld_core::testdata::shared_data;
use uld_data::deeplesion::{
    BadRows, DatasetStats, Gender, LesionType, Split, parse_dl_info, read_dl_info,
    read_dl_info_with, write_dl_info,
};

fn table(name: &str) -> Vec<uld_data::deeplesion::LesionRecord> {
    read_dl_info(shared_data(&format!("deeplesion/{name}"))).unwrap()
}

#[test]
fn every_val_and_test_row_parses_with_the_published_counts() {
    let val = table("DL_info_val.csv");
    let test = table("DL_info_test.csv");
    assert_eq!(val.len(), 4889);
    assert_eq!(test.len(), 4927);
    assert!(val.iter().all(|r| r.split == Split::Val));
    assert!(test.iter().all(|r| r.split == Split::Test));

    let stats = DatasetStats::of(&test).unwrap();
    assert_eq!(stats.key_images, 4831);
    assert_eq!(stats.noisy_lesions, 15);
    let clean: Vec<_> = test.into_iter().filter(|r| !r.possibly_noisy).collect();
    let clean_stats = DatasetStats::of(&clean).unwrap();
    assert_eq!(clean_stats.lesions, 4912);
    assert_eq!(clean_stats.key_images, 4817);

    assert_eq!(DatasetStats::of(&val).unwrap().key_images, 4793);
}

#[test]
fn coarse_lesion_types_of_the_test_split() {
    let mut counts: BTreeMap<LesionType, usize> = BTreeMap::new();
    for r in table("DL_info_test.csv") {
        *counts.entry(r.lesion_type).or_default() += 1;
    }
    use LesionType::*;
    let expected = [
        (Bone, 108),
        (Abdomen, 1173),
        (Mediastinum, 864),
        (Liver, 700),
        (Lung, 1100),
        (Kidney, 234),
        (SoftTissue, 339),
        (Pelvis, 409),
    ];
    assert_eq!(counts, expected.into_iter().collect());
}

#[test]
fn first_test_row_is_typed_and_zero_based() {
    let r = &table("DL_info_test.csv")[0];
    assert_eq!(r.file_name, "000001_01_01_109.png");
    assert_eq!(
        (r.patient, r.study, r.series, r.key_slice_png),
        (1, 1, 1, 109)
    );
    assert_eq!(r.series_id(), "000001_01_01");
    assert_eq!(
        r.key_slice_path(),
        Path::new("Images_png/000001_01_01/109.png")
    );
    // the file says "226.169, 90.0204, 241.252, 111.977", 1-based
    let b = r.bbox.to_array();
    for (got, want) in b.iter().zip([225.169, 89.0204, 240.252, 110.977]) {
        assert!((got - want).abs() < 1e-3, "{b:?}");
    }
    assert!((r.recist[0] - 232.537).abs() < 1e-3);
    assert_eq!(r.slice_range, [103, 115]);
    assert_eq!(r.spacing, [0.488281, 0.488281, 5.0]);
    assert_eq!(r.image_size, [512, 512]);
    assert_eq!(r.dicom_windows, vec![[-175.0, 275.0]]);
    assert_eq!(r.lesion_type, LesionType::Mediastinum);
    assert_eq!(r.gender, Gender::Female);
    assert_eq!(r.age, Some(62.0));
    assert!((r.long_diameter_mm() - 11.9677 * 0.488281).abs() < 1e-4);
    // the published boxes are the RECIST extent padded by 5 px
    let recist_x_min = r.recist.iter().step_by(2).copied().fold(f32::MAX, f32::min);
    assert!((recist_x_min - 5.0 - r.bbox.x1).abs() < 1e-3);
}

#[test]
fn ages_may_be_nan_or_float() {
    let val = table("DL_info_val.csv");
    assert_eq!(
        val.iter().filter(|r| r.age.is_none()).count(),
        1,
        "one NaN age in val"
    );
    let kaggle = table("DL_info_partial_kaggle.csv");
    assert_eq!(kaggle.len(), 1349, "extra trailing columns are accepted");
    assert!(kaggle.iter().all(|r| r.age.is_some_and(|a| a > 0.0)));
    let splits: BTreeMap<Split, usize> = kaggle.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.split).or_default() += 1;
        m
    });
    assert_eq!(
        splits,
        [(Split::Train, 936), (Split::Val, 187), (Split::Test, 226)].into()
    );
    assert_eq!(
        kaggle
            .iter()
            .filter(|r| r.lesion_type == LesionType::Unknown)
            .count(),
        936,
        "every training row has type -1"
    );
}

#[test]
fn write_then_read_gives_the_same_records() {
    let test = table("DL_info_test.csv");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("DL_info.csv");
    write_dl_info(&path, &test).unwrap();
    let back = read_dl_info(&path).unwrap();
    assert_eq!(back.len(), test.len());
    for (a, b) in test.iter().zip(&back) {
        assert_eq!(a.file_name, b.file_name);
        assert_eq!(a.lesion_type, b.lesion_type);
        assert_eq!(a.age, b.age);
        for (x, y) in a.bbox.to_array().iter().zip(b.bbox.to_array()) {
            assert!((x - y).abs() < 1e-3);
        }
    }
}

const HEADER: &str = "File_name,Patient_index,Study_index,Series_ID,Key_slice_index,Measurement_coordinates,Bounding_boxes,Lesion_diameters_Pixel_,Normalized_lesion_location,Coarse_lesion_type,Possibly_noisy,Slice_range,Spacing_mm_px_,Image_size,DICOM_windows,Patient_gender,Patient_age,Train_Val_Test";
const GOOD_ROW: &str = r#"000001_01_01_109.png,1,1,1,109,"233.537, 95.0204, 234.057, 106.977, 231.169, 101.605, 236.252, 101.143","226.169, 90.0204, 241.252, 111.977","11.9677, 5.10387","0.44666, 0.283794, 0.434454",3,0,"103, 115","0.488281, 0.488281, 5","512, 512","-175, 275",F,62,3"#;

fn parse(rows: &[&str], bad: BadRows) -> uld_core::Result<uld_data::deeplesion::DlInfo> {
    let text = std::iter::once(HEADER)
        .chain(rows.iter().copied())
        .collect::<Vec<_>>()
        .join("\n");
    parse_dl_info(text.as_bytes(), Path::new("my/DL_info.csv"), bad)
}

#[test]
fn a_non_number_names_file_line_and_field() {
    let bad = GOOD_ROW.replace("\"0.488281, 0.488281, 5\"", "\"0.488281, abc, 5\"");
    let err = parse(&[GOOD_ROW, &bad], BadRows::Stop).unwrap_err();
    assert_eq!(
        err.to_string(),
        "my/DL_info.csv, line 3, field `Spacing_mm_px_`: `abc` is not a valid number"
    );
}

#[test]
fn a_missing_field_names_its_column() {
    let short: String = GOOD_ROW.rsplit_once(',').unwrap().0.to_string();
    let err = parse(&[&short], BadRows::Stop).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("line 2") && msg.contains("`Train_Val_Test`") && msg.contains("missing"),
        "{msg}"
    );
}

#[test]
fn wrong_list_length_and_unknown_codes_are_errors() {
    let cases = [
        (
            GOOD_ROW.replace("\"11.9677, 5.10387\"", "\"11.9677\""),
            "Lesion_diameters_Pixel_",
        ),
        (GOOD_ROW.replace(",3,0,", ",12,0,"), "Coarse_lesion_type"),
        (GOOD_ROW.replace(",62,3", ",62,7"), "Train_Val_Test"),
        (GOOD_ROW.replace(",62,", ",sixty,"), "Patient_age"),
        (
            GOOD_ROW.replace("000001_01_01_109.png", "000001_01_01_110.png"),
            "File_name",
        ),
    ];
    for (row, field) in cases {
        let err = parse(&[&row], BadRows::Stop).unwrap_err();
        assert_eq!(
            err.location().and_then(|l| l.field.as_deref()),
            Some(field),
            "{err}"
        );
    }
}

#[test]
fn skipping_bad_rows_keeps_the_good_ones_and_counts_the_bad() {
    let bad = GOOD_ROW.replace(",3,0,", ",3,maybe,");
    let info = parse(&[GOOD_ROW, &bad, GOOD_ROW], BadRows::Skip).unwrap();
    assert_eq!(info.records.len(), 2);
    assert_eq!(info.skipped.len(), 1);
    assert!(info.skipped[0].to_string().contains("line 3"));
}

#[test]
fn a_missing_column_and_a_missing_file_are_clear() {
    let err = parse_dl_info(
        "File_name,Patient_index\n".as_bytes(),
        Path::new("x.csv"),
        BadRows::Stop,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "x.csv, line 1: missing column `Study_index`"
    );
    let err = read_dl_info_with("/nonexistent/DL_info.csv", BadRows::Stop).unwrap_err();
    assert!(
        err.to_string().starts_with("/nonexistent/DL_info.csv: "),
        "{err}"
    );
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Arbitrary edits of a valid row give rows or errors, never a panic.
        #[test]
        fn mutated_rows_never_panic(pos in 0usize..GOOD_ROW.len(), cut in 0usize..40, insert in "[0-9a-z,\" .-]{0,8}") {
            let mut row = GOOD_ROW.to_string();
            let pos = (0..=pos).rev().find(|p| row.is_char_boundary(*p)).unwrap_or(0);
            let end = (pos + cut).min(row.len());
            row.replace_range(pos..end, &insert);
            let _ = parse(&[&row], BadRows::Stop);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_dl_info(&bytes[..], Path::new("fuzz.csv"), BadRows::Skip);
        }
    }
}
