//! The `uld` command line as a user runs it.

mod common;

use common::{synth_tiny, uld};

use uld_core::testdata::shared_data;

fn json(args: &[&str]) -> serde_json::Value {
    let (ok, stdout, stderr) = uld(args);
    assert!(ok, "uld {args:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn info_summarises_the_real_deeplesion_folder() {
    let root = shared_data("deeplesion");
    let v = json(&["info", root.to_str().unwrap(), "--json"]);
    let test = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["file"].as_str().unwrap().ends_with("DL_info_test.csv"))
        .unwrap();
    assert_eq!(test["stats"]["lesions"], 4927);
    assert_eq!(test["stats"]["key_images"], 4831);
    assert_eq!(test["stats"]["noisy_lesions"], 15);
    assert_eq!(v["images"]["slices"], 47);
    assert_eq!(v["images"]["key_images_present"], 47);
}

#[test]
fn info_gives_the_tumour_box_of_a_nifti_label_map() {
    let (ok, text, err) = uld(&[
        "info",
        shared_data("ct/lung1_label.nii.gz").to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(text.contains("i 206-229, j 347-372, k 32-34"), "{text}");
    assert!(text.contains("837 voxels"), "{text}");
}

#[test]
fn info_on_a_mixed_dicom_folder_names_the_series_and_the_way_out() {
    let (ok, _, err) = uld(&["info", shared_data("dicom").to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("mixes 3 series") && err.contains("--series"),
        "{err}"
    );
}

#[test]
fn synth_output_reads_back_through_info() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("synth");
    synth_tiny(&out);
    let v = json(&["info", out.to_str().unwrap(), "--json"]);
    let stats = &v["tables"][0]["stats"];
    assert!(stats["lesions"].as_u64().unwrap() > 0);
    assert_eq!(
        v["images"]["key_images_missing"], 0,
        "every key image was written"
    );
}

#[test]
fn a_missing_path_is_a_clear_error_not_a_panic() {
    let (ok, _, err) = uld(&["info", "/no/such/scan.nii.gz"]);
    assert!(!ok);
    assert!(
        err.starts_with("error: ") && err.contains("/no/such/scan.nii.gz"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
