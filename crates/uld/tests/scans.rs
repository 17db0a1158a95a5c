//! `uld detect SCAN...` and `uld convert` on real scans: the lung CT and its
//! tumour mask (NIfTI), a DICOM series built from the real NEMA WG04 slice,
//! and the error cases a user meets.
mod common;

use common::{synth_tiny, uld};

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use serde_json::Value;
use uld_core::testdata::shared_data;
use uld_core::{Frame, Volume};
use uld_data::deeplesion::read_dl_info;
use uld_data::nifti::{read_nifti, read_nifti_labels};
use uld_data::scan::{ScanKind, ScanOptions, open_scan};
use uld_eval::DetectionSet;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A run folder holding the `tiny` preset's config and freshly initialised
/// weights (seeded), shared by a test binary's tests: detection must give
/// well-formed outputs whatever the weights, and this takes a second where
/// training, even briefly, takes tens (nextest runs each test in its own
/// process).
fn model() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        let config = uld_train::TrainConfig::tiny();
        std::fs::write(run.join("config.toml"), config.to_toml_string()).unwrap();
        tch::manual_seed(7);
        let store = tch::nn::VarStore::new(tch::Device::Cpu);
        uld_model::FcosDetector::new(&store.root(), &config.model).unwrap();
        store.save(run.join("best.safetensors")).unwrap();
        dir
    })
    .path()
    .join("run")
}

/// `uld detect` with a score threshold of 0, so that every scan has lesions.
fn detect(scans: &[&Path], out: &Path, extra: &[&str]) -> (bool, String, String) {
    let model = model();
    let mut args = vec!["detect"];
    args.extend(scans.iter().map(|p| s(p)));
    args.extend([
        "--model",
        s(&model),
        "--out",
        s(out),
        "--set",
        "model.decode.score_threshold=0.0",
    ]);
    args.extend(extra);
    uld(&args)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn triple(v: &Value) -> [f64; 3] {
    std::array::from_fn(|k| v[k].as_f64().unwrap())
}

fn close(a: [f64; 3], b: [f64; 3], tol: f64) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

/// lung1's affine as nibabel reads it (srow_x, srow_y, srow_z).
fn lung1_affine(p: [f64; 3]) -> [f64; 3] {
    [
        146.0 - 0.5703125 * p[0],
        325.0 - 0.5703125 * p[1],
        -777.5 + 5.0 * p[2],
    ]
}

/// Checks a scan's JSON against the conventions and its world transform.
fn check_report(json: &Value, affine: impl Fn([f64; 3]) -> [f64; 3], frame: &str) {
    assert_eq!(json["format"], "uld-scan-detections");
    assert_eq!(json["world"]["frame"], frame);
    let conventions = json["conventions"].to_string();
    assert!(conventions.contains("0-based") && conventions.contains("inclusive"));
    assert!(conventions.contains(frame) && conventions.contains("mm"));
    let lesions = json["lesions"].as_array().unwrap();
    assert!(!lesions.is_empty(), "a threshold of 0 leaves lesions");
    let slices: Vec<u64> = json["scan"]["slices_detected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let mut last_score = f64::INFINITY;
    for (k, l) in lesions.iter().enumerate() {
        assert_eq!(l["id"], k as u64 + 1);
        let score = l["score"].as_f64().unwrap();
        assert!(score <= last_score, "best first");
        last_score = score;
        let v = &l["box_voxels"];
        let f = |key: &str| v[key].as_f64().unwrap();
        assert!(f("x2") > f("x1") && f("y2") > f("y1") && f("z2") >= f("z1"));
        assert!(slices.contains(&(f("z1") as u64)) && slices.contains(&(f("z2") as u64)));
        let best = l["best_slice"].as_f64().unwrap();
        assert!(best >= f("z1") && best <= f("z2"));
        let world = &l["box_world_mm"];
        assert!(close(
            triple(&world["corner1"]),
            affine([f("x1"), f("y1"), f("z1")]),
            1e-3
        ));
        assert!(close(
            triple(&world["corner2"]),
            affine([f("x2"), f("y2"), f("z2")]),
            1e-3
        ));
        let long = l["long_diameter_mm"].as_f64().unwrap();
        let short = l["short_diameter_mm"].as_f64().unwrap();
        assert!(long >= short && short > 0.0);
        assert_eq!(
            l["slices"].as_array().unwrap().len() as f64,
            f("z2") - f("z1") + 1.0
        );
    }
}

/// The scan's line on stdout, as a person reads it: how many lesions reach
/// `--view-score` and the best three with slice and score, then how many
/// candidates the JSON and CSV keep.
fn check_scan_line(stdout: &str, scan: &Path, json: &Value, view_score: f64) {
    let lesions = json["lesions"].as_array().unwrap();
    let slices = json["scan"]["slices_detected"].as_array().unwrap().len();
    let confident: Vec<&Value> = lesions
        .iter()
        .filter(|l| l["score"].as_f64().unwrap() >= view_score)
        .collect();
    // Scores are f32 in the file (written shortest, so they read back exactly).
    let describe = |l: &Value| {
        (
            l["best_slice"].as_u64().unwrap(),
            l["score"].as_f64().unwrap() as f32,
        )
    };
    let head = match confident.len() {
        0 => {
            let (z, score) = describe(lesions.first().unwrap());
            format!(
                "no lesion with score >= {view_score} on {slices} slices (best candidate: slice {z}, score {score:.3})"
            )
        }
        n => {
            let top: Vec<String> = confident
                .iter()
                .take(3)
                .map(|l| {
                    let (z, score) = describe(l);
                    format!("slice {z} ({score:.3})")
                })
                .collect();
            format!(
                "{n} lesion{} with score >= {view_score} on {slices} slices, best: {}{}",
                if n == 1 { "" } else { "s" },
                top.join(", "),
                if n > 3 { ", ..." } else { "" }
            )
        }
    };
    let expected = format!(
        "{}: {head}; {} candidates in all, every one kept in the JSON and CSV for evaluation -> ",
        scan.display(),
        lesions.len()
    );
    assert!(
        stdout.lines().any(|l| l.starts_with(&expected)),
        "no line starting `{expected}` in\n{stdout}"
    );
}

#[test]
fn detection_on_the_lung_ct_writes_well_formed_outputs_in_world_mm() {
    let out = tempfile::tempdir().unwrap();
    let image = shared_data("ct/lung1_image.nii.gz");
    let (ok, stdout, err) = detect(
        &[&image],
        out.path(),
        &[
            "--slices",
            "30-35",
            "--label-map",
            "--overlays",
            "--view-score",
            "0",
            "--max-overlays",
            "2",
        ],
    );
    assert!(ok, "{err}");
    let json = read_json(&out.path().join("lung1_image.json"));
    check_scan_line(&stdout, &image, &json, 0.0);
    assert_eq!(json["scan"]["kind"], "NIfTI");
    assert_eq!(json["scan"]["dims"], serde_json::json!([512, 512, 48]));
    assert_eq!(json["world"]["axis_codes"], "LPS");
    check_report(&json, lung1_affine, "RAS");

    // The CSV holds the same lesions as tracklets keyed by the scan's name.
    let set = DetectionSet::read(out.path().join("detections.csv")).unwrap();
    let tracks: std::collections::BTreeSet<u32> = set
        .iter()
        .map(|(k, d)| {
            assert_eq!(k, "lung1_image");
            let (z1, z2) = d.slices.unwrap();
            assert!(z1 == z2 && (30..=35).contains(&z1));
            d.track.unwrap()
        })
        .collect();
    assert_eq!(tracks.len(), json["lesions"].as_array().unwrap().len());

    // The label map lies on the scan's grid; lesion 1 fills its best box.
    let labels = read_nifti_labels(out.path().join("lung1_image_boxes.nii.gz")).unwrap();
    let ct = read_nifti(&image).unwrap();
    assert_eq!(labels.dims(), ct.dims());
    assert_eq!(labels.world().unwrap().frame, Frame::Ras);
    for (a, b) in labels
        .world()
        .unwrap()
        .matrix
        .iter()
        .flatten()
        .zip(ct.world().unwrap().matrix.iter().flatten())
    {
        assert!((a - b).abs() < 1e-4);
    }
    let first = &json["lesions"][0];
    let b = &first["best_box"];
    let z = first["best_slice"].as_u64().unwrap() as usize;
    let (cx, cy) = (
        ((b[0].as_f64().unwrap() + b[2].as_f64().unwrap()) / 2.0) as usize,
        ((b[1].as_f64().unwrap() + b[3].as_f64().unwrap()) / 2.0) as usize,
    );
    assert_eq!(labels.get(cx, cy, z), 1);
    assert_eq!(labels.get(0, 0, z), 0);

    let overlays: Vec<PathBuf> = std::fs::read_dir(out.path().join("lung1_image"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(overlays.len(), 2);
    let expected = format!("lesion_01_slice_{z:03}.png");
    assert!(
        overlays.iter().any(|p| p.ends_with(&expected)),
        "{overlays:?}"
    );
    // Each overlay is the scan's size and states what it shows.
    let png = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(out.path().join("lung1_image").join(&expected)).unwrap(),
    ))
    .read_info()
    .unwrap();
    let info = png.info();
    assert_eq!((info.width, info.height), (512, 512));
    let text = &info.uncompressed_latin1_text[0];
    assert_eq!(text.keyword, "Description");
    assert!(
        text.text.contains("lesion 1") && text.text.contains("window -160..240 HU"),
        "{}",
        text.text
    );
}

#[test]
fn convert_then_read_back_gives_the_same_hu_and_the_tumour_box() {
    let root = tempfile::tempdir().unwrap();
    let image = shared_data("ct/lung1_image.nii.gz");
    let mask = shared_data("ct/lung1_label.nii.gz");
    let (ok, stdout, err) = uld(&[
        "convert",
        s(&image),
        "--labels",
        s(&mask),
        "--out",
        s(root.path()),
        "--patient",
        "7",
        "--split",
        "test",
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("48 slices, 1 lesions"), "{stdout}");
    // The 3D box `uld info` gives for the mask.
    assert!(
        stdout.contains("box x 206-229, y 347-372, z 32-34"),
        "{stdout}"
    );

    // Same HU and the same voxel-to-world transform (lung1 is already LPS-ordered).
    let series = root.path().join("Images_png/000007_01_01");
    let back = open_scan(&series, &ScanOptions::default()).unwrap();
    assert_eq!(back.kind, ScanKind::DeepLesionSeries);
    let ct = read_nifti(&image).unwrap();
    assert_eq!(back.volume.dims(), ct.dims());
    assert_eq!(back.volume.spacing(), ct.spacing());
    assert!(back.volume.data() == ct.data(), "HU differ");
    let w = back.volume.world().unwrap();
    assert_eq!(w.frame, Frame::Ras);
    assert_eq!(w.matrix, ct.world().unwrap().matrix);

    // The row: key slice = the mask's largest cross-section, box = its extent
    // there padded by 5 px; in mm through the affine.
    let labels = read_nifti_labels(&mask).unwrap();
    let (key, lo, hi) = largest_section(&labels);
    let rows = read_dl_info(root.path().join("DL_info.csv")).unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.file_name, format!("000007_01_01_{:03}.png", key + 1));
    assert_eq!(r.key_slice_png as usize, key + 1);
    assert_eq!(r.split, uld_data::deeplesion::Split::Test);
    assert_eq!(r.spacing, ct.spacing());
    let unpadded = r.bbox.pad(-5.0).to_array();
    assert_eq!(
        unpadded,
        [lo.0 as f32, lo.1 as f32, hi.0 as f32, hi.1 as f32]
    );
    let mm = |x: f32, y: f32| w.apply([x.into(), y.into(), key as f64]);
    assert!(close(
        mm(unpadded[0], unpadded[1]),
        lung1_affine([lo.0 as f64, lo.1 as f64, key as f64]),
        1e-9
    ));
    assert!(close(
        mm(unpadded[2], unpadded[3]),
        lung1_affine([hi.0 as f64, hi.1 as f64, key as f64]),
        1e-9
    ));
    assert!(r.long_diameter_mm() > r.short_diameter_mm() && r.short_diameter_mm() > 5.0);
    assert!(
        r.long_diameter_mm()
            <= ((hi.0 - lo.0) as f64).hypot((hi.1 - lo.1) as f64) * 0.5703125 + 1e-6
    );

    // A second scan appends; the same series again is refused.
    let (ok, _, err) = uld(&["convert", s(&image), "--out", s(root.path())]);
    assert!(ok, "{err}");
    let rows2 = read_dl_info(root.path().join("DL_info.csv")).unwrap();
    assert_eq!(rows2.len(), 1, "no labels, no rows");
    assert_eq!(rows2[0], *r);
    assert!(
        root.path().join("Images_png/000008_01_01/048.png").exists(),
        "next patient number"
    );
    let (ok, _, err) = uld(&[
        "convert",
        s(&image),
        "--out",
        s(root.path()),
        "--patient",
        "7",
    ]);
    assert!(!ok && err.contains("000007_01_01"), "{err}");

    // Detection on the converted folder gives world mm through the sidecar.
    let out = tempfile::tempdir().unwrap();
    let (ok, _, err) = detect(&[&series], out.path(), &["--slices", "32-34"]);
    assert!(ok, "{err}");
    let json = read_json(&out.path().join("000007_01_01.json"));
    assert_eq!(json["scan"]["kind"], "DeepLesion series");
    assert_eq!(json["scan"]["first_png"], 1);
    check_report(&json, lung1_affine, "RAS");
}

/// The slice where the mask has most voxels and the mask's pixel extent
/// there: `(z, (x0, y0), (x1, y1))`, inclusive.
fn largest_section(labels: &Volume<u16>) -> (usize, (usize, usize), (usize, usize)) {
    let [nx, ny, nz] = labels.dims();
    let count = |z: usize| labels.slice(z).iter().filter(|&&v| v > 0).count();
    let key = (0..nz)
        .max_by_key(|&z| (count(z), std::cmp::Reverse(z)))
        .unwrap();
    let mut lo = (usize::MAX, usize::MAX);
    let mut hi = (0, 0);
    for y in 0..ny {
        for x in 0..nx {
            if labels.get(x, y, key) > 0 {
                lo = (lo.0.min(x), lo.1.min(y));
                hi = (hi.0.max(x), hi.1.max(y));
            }
        }
    }
    (key, lo, hi)
}

/// Writes the real WG04 slice at each z position (mm along the normal) as
/// one series, `name_K.dcm`.
fn dicom_series(dir: &Path, positions: &[f64], series_uid: &str) {
    std::fs::create_dir_all(dir).unwrap();
    for (k, z) in positions.iter().enumerate() {
        let mut obj = dicom_object::open_file(shared_data("dicom/WG04_CT1_UNC")).unwrap();
        obj.put(DataElement::new(
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            PrimitiveValue::from(format!("-158.135803\\-179.035797\\{z}")),
        ));
        obj.put(DataElement::new(
            tags::INSTANCE_NUMBER,
            VR::IS,
            PrimitiveValue::from((k + 1).to_string()),
        ));
        obj.put(DataElement::new(
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(series_uid),
        ));
        obj.write_to_file(dir.join(format!("slice_{k}.dcm")))
            .unwrap();
    }
}

#[test]
fn a_dicom_series_is_read_and_run_in_lps() {
    let tmp = tempfile::tempdir().unwrap();
    let series = tmp.path().join("wg04");
    dicom_series(
        &series,
        &[-80.0, -75.0, -70.0],
        "1.2.826.0.1.3680043.2.1125.7",
    );
    let out = tmp.path().join("out");
    let (ok, stdout, err) = detect(&[&series], &out, &[]);
    assert!(ok, "{err}");
    let json = read_json(&out.join("wg04.json"));
    // The default --view-score 0.5: untrained weights score below it, so
    // the line says no lesion reached it and names the best candidate.
    check_scan_line(&stdout, &series, &json, 0.5);
    assert_eq!(json["scan"]["kind"], "DICOM series");
    assert_eq!(json["scan"]["series_uid"], "1.2.826.0.1.3680043.2.1125.7");
    assert_eq!(json["scan"]["dims"], serde_json::json!([512, 512, 3]));
    let s = 0.661468;
    let lps = |p: [f64; 3]| {
        [
            -158.135803 + s * p[0],
            -179.035797 + s * p[1],
            -80.0 + 5.0 * p[2],
        ]
    };
    let m = &json["world"]["matrix"];
    assert!((m[0][0].as_f64().unwrap() - s).abs() < 1e-5, "{m}");
    check_report(
        &json,
        |p| {
            let w = |r: usize| {
                (0..3)
                    .map(|c| m[r][c].as_f64().unwrap() * p[c])
                    .sum::<f64>()
                    + m[r][3].as_f64().unwrap()
            };
            let got = [w(0), w(1), w(2)];
            assert!(close(got, lps(p), 1e-3), "{got:?} vs {:?}", lps(p));
            got
        },
        "LPS",
    );
}

#[test]
fn scans_a_user_gets_wrong_are_named_and_the_others_still_run() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    dicom_series(&good, &[0.0, 5.0, 10.0], "1.2.3.1");
    let uneven = tmp.path().join("uneven");
    dicom_series(&uneven, &[0.0, 5.0, 15.0], "1.2.3.2");
    // A DeepLesion folder with a slice missing (and its spacing in DL_info.csv
    // two folders up, as in the real layout).
    let root = tmp.path().join("dl");
    let (ok, _, err) = uld(&["convert", s(&good), "--out", s(&root), "--patient", "3"]);
    assert!(ok, "{err}");
    let gap = root.join("Images_png/000003_01_01");
    std::fs::remove_file(gap.join("002.png")).unwrap();
    let png = gap.join("001.png");
    let image_2d = shared_data("dicom/CT_small.dcm");
    let mixed = shared_data("dicom");
    let big = shared_data("ct/lung1_image.nii.gz");
    let missing = tmp.path().join("nothing.nii.gz");
    let out = tmp.path().join("out");
    let scans = [
        &mixed, &gap, &uneven, &image_2d, &big, &png, &missing, &good,
    ];
    let (ok, stdout, err) = detect(
        &scans.map(PathBuf::as_path),
        &out,
        &["--max-volume-mb", "10"],
    );
    assert!(!ok, "failed scans make the command fail");
    let expect = [
        ("mixes 3 series", "dicom"),
        (
            "missing slices: 1 of the PNG numbers 001-003 are absent (002.png)",
            "000003_01_01",
        ),
        ("uneven slice spacing", "uneven"),
        ("a 2D image (128 x 128 pixels, 1 slice)", "CT_small.dcm"),
        ("too large: 512 x 512 x 48", "lung1_image.nii.gz"),
        ("a 2D image file, not a CT volume", "001.png"),
        ("no such file or folder", "nothing.nii.gz"),
    ];
    for (message, name) in expect {
        let line = err
            .lines()
            .find(|l| l.starts_with("error:") && l.contains(message))
            .unwrap_or_else(|| panic!("no `{message}` in {err}"));
        assert!(line.contains(name), "{line}");
    }
    assert!(err.contains("7 of 8 scans failed"), "{err}");
    assert!(stdout.contains("1 of 8 scans done, 7 failed"), "{stdout}");
    let json = read_json(&out.join("good.json"));
    assert_eq!(json["scan"]["dims"], serde_json::json!([512, 512, 3]));
    let set = DetectionSet::read(out.join("detections.csv")).unwrap();
    assert!(set.iter().all(|(k, _)| k == "good") && !set.is_empty());
}

/// `--slices` past the scan's end is refused with its slice count, at
/// once (a range of 10^11 slices used to be listed, 800 GB, before the scan
/// was even read); the other scans still run.
#[test]
fn a_slice_range_past_the_scan_names_its_slice_count() {
    let tmp = tempfile::tempdir().unwrap();
    let image = shared_data("ct/lung1_image.nii.gz");
    let out = tmp.path().join("out");
    let start = std::time::Instant::now();
    let (ok, stdout, err) = detect(&[&image], &out, &["--slices", "0-99999999999"]);
    assert!(!ok, "{stdout}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:") && l.contains("lung1_image.nii.gz"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.ends_with(
            "invalid slices: 0-99999999999 lies past the scan's end: it has 48 slices (0-47)"
        ),
        "{line}"
    );
    assert!(stdout.contains("0 of 1 scans done, 1 failed"), "{stdout}");
    assert!(start.elapsed().as_secs() < 60, "no slice list was built");
    assert!(!out.join("lung1_image.json").exists());
    let (ok, _, err) = uld(&[
        "detect",
        s(&image),
        "--model",
        "m",
        "--out",
        "o",
        "--slices",
        "4-2",
    ]);
    assert!(
        !ok && err.contains("`4-2`: the range ends before it starts"),
        "{err}"
    );
}

/// The lung CT stored in RAS order (columns towards the patient's right,
/// rows anterior) is shown to the detector as DeepLesion shows slices, so
/// it finds the same lesions at the same world positions as in the
/// original (LPS-ordered) file, with boxes in the flipped file's indices.
#[test]
fn a_ras_ordered_copy_of_the_ct_gives_the_same_lesions_in_world_mm() {
    let tmp = tempfile::tempdir().unwrap();
    let image = shared_data("ct/lung1_image.nii.gz");
    let ct = read_nifti(&image).unwrap();
    let to_ras = uld_data::reorient::AxisMap {
        source: [0, 1, 2],
        flip: [true, true, false],
    };
    let flipped = tmp.path().join("flipped.nii.gz");
    uld_data::nifti_writer::write_nifti_ct(&flipped, &to_ras.apply(&ct), "lung1 in RAS order")
        .unwrap();
    let out = tmp.path().join("out");
    let (ok, _, err) = detect(&[&image, &flipped], &out, &["--slices", "31-33"]);
    assert!(ok, "{err}");
    let original = read_json(&out.join("lung1_image.json"));
    let ras = read_json(&out.join("flipped.json"));
    assert_eq!(original["detection"]["oriented_as"], "source");
    assert_eq!(ras["detection"]["oriented_as"], "LPS");
    assert_eq!(ras["world"]["axis_codes"], "RAS");
    check_report(
        &ras,
        |p| lung1_affine([511.0 - p[0], 511.0 - p[1], p[2]]),
        "RAS",
    );
    let (a, b) = (
        original["lesions"].as_array().unwrap(),
        ras["lesions"].as_array().unwrap(),
    );
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x["score"].as_f64().unwrap() - y["score"].as_f64().unwrap()).abs() < 1e-5);
        assert_eq!(x["best_slice"], y["best_slice"]);
        let (wx, wy) = (&x["box_world_mm"], &y["box_world_mm"]);
        assert!(
            close(triple(&wx["center"]), triple(&wy["center"]), 1e-3),
            "{wx} vs {wy}"
        );
        // The flipped file's first corner is the original's second in-plane.
        assert!(
            close(
                triple(&wx["corner1"]),
                [
                    triple(&wy["corner2"])[0],
                    triple(&wy["corner2"])[1],
                    triple(&wy["corner1"])[2]
                ],
                1e-3
            ),
            "{wx} vs {wy}"
        );
    }
}

/// Converting the RAS-ordered copy of the CT and its mask writes the same
/// DeepLesion slices and row as converting the (LPS-ordered) original.
#[test]
fn convert_reorients_a_ras_ordered_volume_to_deeplesion_orientation() {
    let tmp = tempfile::tempdir().unwrap();
    let ct = read_nifti(shared_data("ct/lung1_image.nii.gz")).unwrap();
    let mask = read_nifti_labels(shared_data("ct/lung1_label.nii.gz")).unwrap();
    let to_ras = uld_data::reorient::AxisMap {
        source: [0, 1, 2],
        flip: [true, true, false],
    };
    let (ct_path, mask_path) = (tmp.path().join("ct.nii"), tmp.path().join("mask.nii.gz"));
    uld_data::nifti_writer::write_nifti_ct(&ct_path, &to_ras.apply(&ct), "").unwrap();
    uld_data::nifti_writer::write_nifti_labels(&mask_path, &to_ras.apply(&mask), "").unwrap();
    let root = tmp.path().join("dl");
    let (ok, stdout, err) = uld(&[
        "convert",
        s(&ct_path),
        "--labels",
        s(&mask_path),
        "--out",
        s(&root),
    ]);
    assert!(ok, "{err}");
    assert!(stdout.contains("re-indexed to LPS"), "{stdout}");
    assert!(
        stdout.contains("box x 206-229, y 347-372, z 32-34"),
        "{stdout}"
    );
    let back = open_scan(
        &root.join("Images_png/000001_01_01"),
        &ScanOptions::default(),
    )
    .unwrap();
    assert!(
        back.volume.data() == ct.data(),
        "the PNGs hold the original's LPS-ordered slices"
    );
    let (m, n) = (
        back.volume.world().unwrap().matrix,
        ct.world().unwrap().matrix,
    );
    assert!(
        m.iter()
            .flatten()
            .zip(n.iter().flatten())
            .all(|(a, b)| (a - b).abs() < 1e-4)
    );
    let row = &read_dl_info(root.join("DL_info.csv")).unwrap()[0];
    let (key, lo, hi) = largest_section(&mask);
    assert_eq!(row.key_slice_png as usize, key + 1);
    assert_eq!(
        row.bbox.pad(-5.0).to_array(),
        [lo.0 as f32, lo.1 as f32, hi.0 as f32, hi.1 as f32]
    );
}

/// The dataset mode of `uld detect` (beside the scan mode) still writes its
/// key-image and sub-volume detection files.
#[test]
fn the_dataset_split_mode_still_writes_its_detection_files() {
    let model = model();
    let out = tempfile::tempdir().unwrap();
    let data = out.path().join("synth");
    synth_tiny(&data);
    let (ok, stdout, err) = uld(&[
        "detect",
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--split",
        "test",
        "--out",
        s(&out.path().join("dets")),
        "--set",
        "model.decode.score_threshold=0.0",
    ]);
    assert!(ok, "{err}");
    assert!(
        stdout.contains("key images ->") && stdout.contains("sub-volumes ->"),
        "{stdout}"
    );
    let sub = DetectionSet::read(out.path().join("dets/subvolume_detections.csv")).unwrap();
    assert!(!sub.is_empty());
    assert!(
        sub.iter()
            .all(|(_, d)| d.track.is_some() && d.slices.is_some())
    );
    let key = DetectionSet::read(out.path().join("dets/keyslice_detections.csv")).unwrap();
    assert!(
        key.iter()
            .all(|(k, d)| k.ends_with(".png") && d.slices.is_none())
    );
}

/// `--shard K/N` takes scans K, K + N, ...; the parts' detections.csv
/// files, concatenated, read as the whole run's.
#[test]
fn shards_split_the_scan_list_and_their_outputs_concatenate() {
    let tmp = tempfile::tempdir().unwrap();
    let names = ["a", "b", "c"];
    let scans: Vec<PathBuf> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let dir = tmp.path().join(name);
            dicom_series(&dir, &[0.0, 5.0, 10.0], &format!("1.2.3.{i}"));
            dir
        })
        .collect();
    let paths: Vec<&Path> = scans.iter().map(PathBuf::as_path).collect();
    let whole = tmp.path().join("whole");
    let (ok, _, err) = detect(&paths, &whole, &[]);
    assert!(ok, "{err}");
    let mut concatenated = String::new();
    for (k, want) in [(1, vec!["a", "c"]), (2, vec!["b"])] {
        let out = tmp.path().join(format!("part{k}"));
        let shard = format!("{k}/2");
        let (ok, stdout, err) = detect(&paths, &out, &["--shard", &shard]);
        assert!(ok, "{err}");
        assert!(
            stdout.contains(&format!("shard {k}/2: {} of 3 scans", want.len())),
            "{stdout}"
        );
        let set = DetectionSet::read(out.join("detections.csv")).unwrap();
        let keys: std::collections::BTreeSet<&str> = set.iter().map(|(k, _)| k).collect();
        assert_eq!(keys.into_iter().collect::<Vec<_>>(), want);
        concatenated.push_str(&std::fs::read_to_string(out.join("detections.csv")).unwrap());
    }
    let all = tmp.path().join("all.csv");
    std::fs::write(&all, concatenated).unwrap();
    let rows = |path: &Path| {
        let mut rows: Vec<String> = DetectionSet::read(path)
            .unwrap()
            .iter()
            .map(|(k, d)| format!("{k} {d:?}"))
            .collect();
        rows.sort();
        rows
    };
    assert_eq!(rows(&all), rows(&whole.join("detections.csv")));
    let (ok, _, err) = detect(&paths, &tmp.path().join("bad"), &["--shard", "3/2"]);
    assert!(!ok && err.contains("K must lie in 1..=N"), "{err}");
}
