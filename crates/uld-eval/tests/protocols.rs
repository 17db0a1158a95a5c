//! Hand-computed cases for every rule of the three protocols, end to end
//! through `evaluate`.

use uld_core::{Box2, Box3};
use uld_eval::{
    BootstrapConfig, Detection, DetectionSet, EvalConfig, GroundTruth, GtLesion, GtUnit,
    KeySliceRow, KeySliceVariant, LesionAttrs, Protocol, compare, evaluate, keyslice_ground_truth,
};

const THIRD: f64 = 1.0 / 3.0;

fn lesion(b: [f32; 4], z1: f32, z2: f32) -> GtLesion {
    GtLesion {
        bbox: Box3::new(Box2::from(b), z1, z2),
        attrs: LesionAttrs::default(),
    }
}

fn unit(key: &str, lesions: Vec<GtLesion>) -> GtUnit {
    GtUnit {
        key: key.into(),
        lesions,
    }
}

fn det2(set: &mut DetectionSet, key: &str, b: [f32; 4], score: f32) {
    set.push(
        key,
        Detection {
            slices: None,
            bbox: Box2::from(b),
            score,
            track: None,
        },
    );
}

fn det3(
    set: &mut DetectionSet,
    key: &str,
    z: (i32, i32),
    b: [f32; 4],
    score: f32,
    track: Option<u32>,
) {
    set.push(
        key,
        Detection {
            slices: Some(z),
            bbox: Box2::from(b),
            score,
            track,
        },
    );
}

fn cfg(protocol: Protocol) -> EvalConfig {
    let mut c = EvalConfig::new(protocol);
    c.bootstrap = None;
    c
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// Image A: lesions L1 [0,0,9,9], L2 [20,20,29,29]; image B: L3 [0,0,9,9].
/// In score order: d1 .9 on L1 (hit), d5 .85 far in B (FP), d2 .8 on L1
/// again (duplicate), d3 .7 far in A (FP), d4 .6 on L2 (hit), d6 .5 on L3
/// (hit). fp/img 0 .5 .5 1 1 1; sens 1/3 1/3 1/3 1/3 2/3 1.
fn keyslice_case() -> (GroundTruth, DetectionSet) {
    let mut gt = GroundTruth::new("hand");
    gt.units.push(unit(
        "A",
        vec![
            lesion([0., 0., 9., 9.], 0., 0.),
            lesion([20., 20., 29., 29.], 0., 0.),
        ],
    ));
    gt.units
        .push(unit("B", vec![lesion([0., 0., 9., 9.], 0., 0.)]));
    let mut d = DetectionSet::new();
    det2(&mut d, "A", [0., 0., 9., 9.], 0.9);
    det2(&mut d, "A", [1., 0., 10., 9.], 0.8);
    det2(&mut d, "A", [100., 100., 120., 120.], 0.7);
    det2(&mut d, "A", [20., 20., 29., 29.], 0.6);
    det2(&mut d, "B", [200., 200., 220., 220.], 0.85);
    det2(&mut d, "B.png", [0., 0., 9., 9.], 0.5);
    (gt, d)
}

#[test]
fn keyslice_mulan_and_3dce_read_the_curve_their_own_way() {
    let (gt, d) = keyslice_case();
    let mut c = cfg(Protocol::KeySlice);
    c.variant = KeySliceVariant::Mulan;
    let e = evaluate(&gt, &d, &c).unwrap();
    assert_eq!((e.units, e.lesions, e.detections), (2, 3, 6));
    // Duplicates add no false positive: 2 FPs among 6 detections.
    assert_eq!(e.curve.false_positives.last(), Some(&2));
    assert_eq!(e.curve.fp_per_unit, vec![0.0, 0.5, 0.5, 1.0, 1.0, 1.0]);
    // MULAN: numpy.interp takes the last point at 0.5 FP (1/3) and at 1 FP
    // the curve's last point (1); past the end it clamps to 1.
    let want = [THIRD, 1.0, 1.0, 1.0, 1.0, 1.0];
    for (got, want) in e.metrics.sens.iter().zip(want) {
        assert!(close(*got, want), "{:?}", e.metrics.sens);
    }
    assert!(close(e.metrics.summary, (THIRD + 3.0) / 4.0));

    c.variant = KeySliceVariant::ThreeDce;
    let e = evaluate(&gt, &d, &c).unwrap();
    // 3DCE: scipy takes the first point at each count: 1/3 at 0.5 and at 1;
    // past the end the last segment (1, 2/3)-(1, 1) is vertical: +inf.
    assert!(close(e.metrics.sens[0], THIRD) && close(e.metrics.sens[1], THIRD));
    assert!(
        e.metrics.sens[2..].iter().all(|s| *s == f64::INFINITY),
        "{:?}",
        e.metrics.sens
    );
    assert_eq!(e.metrics.summary, f64::INFINITY);
    // The clamped reading is offered beside it, and the report says so.
    assert!(close(e.metrics.summary_clamped, (THIRD + 3.0) / 4.0));
    assert!(e.notes.iter().any(|n| n.contains("non-finite")));
}

#[test]
fn ap_counts_duplicates_as_false_positives() {
    let (gt, d) = keyslice_case();
    let e = evaluate(&gt, &d, &cfg(Protocol::KeySlice)).unwrap();
    // precision 1, 1/2, 1/3, 1/4, 2/5, 1/2 at recall 1/3 x4, 2/3, 1:
    // AP = 1/3 * 1 + 1/3 * 1/2 + 1/3 * 1/2 = 2/3.
    assert!(close(e.metrics.ap, 2.0 / 3.0), "{}", e.metrics.ap);
}

#[test]
fn score_threshold_operating_point() {
    let (gt, d) = keyslice_case();
    let mut c = cfg(Protocol::KeySlice);
    c.score_threshold = Some(0.8);
    let t = evaluate(&gt, &d, &c).unwrap().threshold.unwrap();
    // Kept: .9 hit, .85 FP, .8 duplicate.
    assert_eq!(t.detections, 3);
    assert!(close(t.sensitivity, THIRD));
    assert!(close(t.fp_per_unit, 0.5));
    assert!(close(t.precision, THIRD));
    c.score_threshold = Some(2.0);
    let t = evaluate(&gt, &d, &c).unwrap().threshold.unwrap();
    assert_eq!((t.detections, t.sensitivity, t.fp_per_unit), (0, 0.0, 0.0));
}

#[test]
fn inclusive_extents_decide_a_borderline_hit() {
    // Continuous IoU of [0,0,2,2] and [1,0,3,2] is 2/6; with +1 extents it
    // is 6/12 = 0.5, a hit.
    let mut gt = GroundTruth::new("hand");
    gt.units
        .push(unit("A", vec![lesion([1., 0., 3., 2.], 0., 0.)]));
    let mut d = DetectionSet::new();
    det2(&mut d, "A", [0., 0., 2., 2.], 0.5);
    let e = evaluate(&gt, &d, &cfg(Protocol::KeySlice)).unwrap();
    assert_eq!(e.curve.hits, vec![1]);
}

#[test]
fn one_detection_can_find_two_lesions() {
    let mut gt = GroundTruth::new("hand");
    gt.units.push(unit(
        "A",
        vec![
            lesion([0., 0., 9., 9.], 0., 0.),
            lesion([0., 0., 9., 10.], 0., 0.),
        ],
    ));
    let mut d = DetectionSet::new();
    det2(&mut d, "A", [0., 0., 9., 9.], 0.5);
    let e = evaluate(&gt, &d, &cfg(Protocol::KeySlice)).unwrap();
    assert_eq!(e.curve.hits, vec![2]);
    assert_eq!(e.metrics.sens_clamped[0], 1.0);
}

#[test]
fn empty_images_count_and_outside_boxes_are_false_positives() {
    let mut gt = GroundTruth::new("hand");
    gt.units
        .push(unit("A", vec![lesion([0., 0., 9., 9.], 0., 0.)]));
    gt.units.push(unit("empty", vec![]));
    let mut d = DetectionSet::new();
    // Partly outside the image, still a hit (no clipping): 100/121.
    det2(&mut d, "A", [-1., -1., 9., 9.], 0.9);
    // Wholly outside: a false positive, no error.
    det2(&mut d, "A", [-60., -60., -20., -20.], 0.8);
    // Any detection on an image without lesions is a false positive.
    det2(&mut d, "empty", [0., 0., 9., 9.], 0.7);
    // Keys the ground truth lacks are ignored and reported.
    det2(&mut d, "unknown", [0., 0., 9., 9.], 0.95);
    let e = evaluate(&gt, &d, &cfg(Protocol::KeySlice)).unwrap();
    assert_eq!(e.units, 2);
    assert_eq!(e.curve.hits, vec![1, 1, 1]);
    assert_eq!(e.curve.fp_per_unit, vec![0.0, 0.5, 1.0]);
    assert_eq!(e.ignored_rows, 1);
    assert!(e.notes.iter().any(|n| n.contains("unknown")));
}

#[test]
fn equal_scores_keep_file_order() {
    // One image, one lesion, two detections at the same score.
    let mut gt = GroundTruth::new("hand");
    gt.units
        .push(unit("A", vec![lesion([0., 0., 9., 9.], 0., 0.)]));
    let hit = [0., 0., 9., 9.];
    let miss = [50., 50., 60., 60.];
    let run = |first: [f32; 4], second: [f32; 4]| {
        let mut d = DetectionSet::new();
        det2(&mut d, "A", first, 0.5);
        det2(&mut d, "A", second, 0.5);
        let mut c = cfg(Protocol::KeySlice);
        c.variant = KeySliceVariant::ThreeDce;
        evaluate(&gt, &d, &c).unwrap()
    };
    let hit_first = run(hit, miss);
    assert_eq!(hit_first.curve.hits, vec![1, 1]);
    assert_eq!(
        hit_first.metrics.sens[1], 1.0,
        "at 1 FP: scipy lands on (1, 1)"
    );
    let miss_first = run(miss, hit);
    assert_eq!(miss_first.curve.hits, vec![0, 1]);
    // (1, 0)-(1, 1) is vertical and 1 FP is exactly on it: inf * 0 = NaN,
    // what scipy's extrapolating interp1d returns for this order.
    assert!(miss_first.metrics.sens[1].is_nan());
    assert_eq!(miss_first.metrics.sens_clamped[1], 1.0);
}

#[test]
fn harvester_tracklets() {
    let mut gt = GroundTruth::new("hand");
    let b = [10., 10., 29., 29.];
    gt.units
        .push(unit("000001_01_01_001-010", vec![lesion(b, 3., 3.)]));
    gt.units
        .push(unit("000002_01_01_001-010", vec![lesion(b, 3., 3.)]));
    gt.units.push(unit("000003_01_01_001-010", vec![]));
    let mut d = DetectionSet::new();
    // Tracklet 0 in volume 1: boxes on slices 2..=4; the right box on slice
    // 3 has score .3, the tracklet's score is its best box, .9: a hit.
    det3(&mut d, "000001_01_01_001-010", (2, 2), b, 0.9, Some(0));
    det3(&mut d, "000001_01_01_001-010", (3, 3), b, 0.3, Some(0));
    det3(&mut d, "000001_01_01_001-010", (4, 4), b, 0.2, Some(0));
    // Tracklet 1: the right box but not on slice 3: a false positive.
    det3(&mut d, "000001_01_01_001-010", (4, 5), b, 0.8, Some(1));
    // A lone row covering slices 1..=3 finds the lesion again: duplicate.
    det3(&mut d, "000001_01_01_001-010", (1, 3), b, 0.7, None);
    // Volume 2: the first box on slice 3 is far away, so the tracklet misses
    // even though a later box on slice 3 would hit (`zs.index(z)`).
    det3(
        &mut d,
        "000002_01_01_001-010.annot",
        (3, 3),
        [100., 100., 120., 120.],
        0.6,
        Some(0),
    );
    det3(&mut d, "000002_01_01_001-010", (3, 3), b, 0.6, Some(0));
    // The same track id in another volume is another tracklet.
    det3(&mut d, "000003_01_01_001-010", (3, 3), b, 0.5, Some(0));
    let e = evaluate(&gt, &d, &cfg(Protocol::Harvester)).unwrap();
    assert_eq!(e.detections, 5);
    // Order: t0 .9 hit, t1 .8 FP, lone .7 dup, v2 .6 FP, v3 .5 FP.
    assert_eq!(e.curve.hits, vec![1, 1, 1, 1, 1]);
    assert_eq!(e.curve.false_positives, vec![0, 1, 1, 2, 3]);
    // AP: precision 1, 1/2, 1/3, 1/4, 1/5; recall stays 1/2 -> AP 1/2.
    assert!(close(e.metrics.ap, 0.5));
    // Extrapolating (the harvester's rule) at 0.125 FP/volume: between
    // (0, .5) and (1/3, .5): 0.5.
    assert!(close(e.metrics.sens[0], 0.5));
}

#[test]
fn negative_slices_are_scored_and_never_hit_by_themselves() {
    let mut gt = GroundTruth::new("hand");
    let b = [10., 10., 29., 29.];
    gt.units.push(unit("v_1-9", vec![lesion(b, 0., 0.)]));
    for protocol in [Protocol::Harvester, Protocol::Lens] {
        let mut d = DetectionSet::new();
        // Wholly before the sub-volume: a false positive.
        det3(&mut d, "v_1-9", (-3, -1), b, 0.9, None);
        // Beginning before it and reaching the lesion's slice: a hit.
        det3(&mut d, "v_1-9", (-2, 0), b, 0.8, None);
        let e = evaluate(&gt, &d, &cfg(protocol)).unwrap();
        assert_eq!(e.curve.hits, vec![0, 1], "{protocol:?}");
        assert_eq!(e.curve.false_positives, vec![1, 1], "{protocol:?}");
    }
}

#[test]
fn harvester_rejects_3d_ground_truth() {
    let mut gt = GroundTruth::new("hand");
    gt.units
        .push(unit("v_1-9", vec![lesion([0., 0., 9., 9.], 2., 4.)]));
    let err = evaluate(&gt, &DetectionSet::new(), &cfg(Protocol::Harvester)).unwrap_err();
    assert!(err.to_string().contains("lens protocol"), "{err}");
}

#[test]
fn harvester_detections_need_slices() {
    let mut gt = GroundTruth::new("hand");
    gt.units
        .push(unit("v_1-9", vec![lesion([0., 0., 9., 9.], 2., 2.)]));
    let mut d = DetectionSet::new();
    det2(&mut d, "v_1-9", [0., 0., 9., 9.], 0.5);
    let err = evaluate(&gt, &d, &cfg(Protocol::Harvester)).unwrap_err();
    assert!(err.to_string().contains("needs z1,z2"), "{err}");
}

#[test]
fn lens_iobb_and_enclosing_tracklets() {
    // Lesion 20x20 px on slices 4..=7.
    let mut gt = GroundTruth::new("hand");
    gt.units
        .push(unit("v_001-020", vec![lesion([0., 0., 19., 19.], 4., 7.)]));
    let mut d = DetectionSet::new();
    // A small box inside the lesion: IoBB 1, a hit however small.
    det3(&mut d, "v_001-020", (5, 5), [5., 5., 9., 9.], 0.9, None);
    // Tracklet of two rows: enclosing box [0,0,39,39] x slices 4..=7,
    // IoBB = 400*4 / (1600*4) = 0.25 < 0.3: a false positive.
    det3(
        &mut d,
        "v_001-020",
        (4, 5),
        [0., 0., 19., 19.],
        0.8,
        Some(1),
    );
    det3(
        &mut d,
        "v_001-020",
        (6, 7),
        [20., 20., 39., 39.],
        0.1,
        Some(1),
    );
    // [0,0,19,29] on slices 4..=7: IoBB 20*20/(20*30) = 2/3: a duplicate.
    det3(&mut d, "v_001-020", (4, 7), [0., 0., 19., 29.], 0.7, None);
    let e = evaluate(&gt, &d, &cfg(Protocol::Lens)).unwrap();
    assert_eq!(e.detections, 3);
    assert_eq!(e.curve.hits, vec![1, 1, 1]);
    assert_eq!(e.curve.false_positives, vec![0, 1, 1]);
    // LENS clamps: sensitivity 1 from 0 FP on, at all 14 points.
    assert_eq!(e.metrics.sens.len(), 14);
    assert!(e.metrics.sens.iter().all(|&s| s == 1.0));
}

#[test]
fn noisy_lesions_and_their_images_drop_on_request() {
    let row = |image: &str, noisy: bool| KeySliceRow {
        image: image.into(),
        bbox: Box2::new(0., 0., 9., 9.),
        long_diameter_mm: 5.0,
        lesion_type: "liver".into(),
        slice_interval_mm: 5.0,
        possibly_noisy: noisy,
    };
    let rows = vec![row("a.png", false), row("a.png", true), row("b.png", true)];
    let keep = keyslice_ground_truth(rows.clone(), false, "t");
    assert_eq!((keep.units.len(), keep.lesion_count()), (2, 3));
    let drop = keyslice_ground_truth(rows, true, "t");
    assert_eq!((drop.units.len(), drop.lesion_count()), (1, 1));
    assert_eq!(drop.units[0].key, "a");
}

#[test]
fn breakdowns_filter_ground_truth_and_keep_detections() {
    let row = |image: &str, b: [f32; 4], mm: f64, t: &str| KeySliceRow {
        image: image.into(),
        bbox: Box2::from(b),
        long_diameter_mm: mm,
        lesion_type: t.into(),
        slice_interval_mm: 1.0,
        possibly_noisy: false,
    };
    let gt = keyslice_ground_truth(
        vec![
            row("a.png", [0., 0., 9., 9.], 5.0, "lung"),
            row("a.png", [50., 50., 79., 79.], 20.0, "liver"),
        ],
        true,
        "t",
    );
    let mut d = DetectionSet::new();
    det2(&mut d, "a.png", [50., 50., 79., 79.], 0.9);
    let e = evaluate(&gt, &d, &cfg(Protocol::KeySlice)).unwrap();
    let group = |by: &str, g: &str| {
        e.breakdowns
            .iter()
            .find(|x| x.by == by && x.group == g)
            .unwrap_or_else(|| panic!("no group {by} {g}"))
    };
    // The small lesion is missed and the detection on the large one is a
    // false positive for the "< 10 mm" group: fp/img 1, sens 0.
    let small = group("size", "< 10 mm");
    assert_eq!(small.lesions, 1);
    assert!(small.metrics.sens_clamped.iter().all(|&s| s == 0.0));
    let mid = group("size", "10-30 mm");
    assert!(mid.metrics.sens_clamped.iter().all(|&s| s == 1.0));
    assert_eq!(group("type", "liver").metrics.sens_clamped[0], 1.0);
    assert_eq!(group("slice interval", "< 2.5 mm").lesions, 2);
    assert!(
        !e.breakdowns.iter().any(|g| g.group == ">= 30 mm"),
        "empty groups are left out"
    );
}

#[test]
fn bootstrap_is_seeded_and_paired_comparison_sees_a_worse_detector() {
    let mut gt = GroundTruth::new("hand");
    let mut good = DetectionSet::new();
    let mut bad = DetectionSet::new();
    for i in 0..40 {
        let key = format!("img{i}");
        gt.units
            .push(unit(&key, vec![lesion([0., 0., 9., 9.], 0., 0.)]));
        det2(&mut good, &key, [0., 0., 9., 9.], 0.9);
        det2(&mut good, &key, [50., 50., 60., 60.], 0.1);
        // The worse detector misses every other lesion.
        let b = if i % 2 == 0 {
            [0., 0., 9., 9.]
        } else {
            [70., 70., 80., 80.]
        };
        det2(&mut bad, &key, b, 0.9);
    }
    let mut c = EvalConfig::new(Protocol::KeySlice);
    c.bootstrap = Some(BootstrapConfig {
        replicates: 200,
        seed: 5,
        level: 0.95,
    });
    let e1 = evaluate(&gt, &good, &c).unwrap();
    let e2 = evaluate(&gt, &good, &c).unwrap();
    assert_eq!(e1.intervals, e2.intervals, "same seed, same intervals");
    let iv = e1.intervals.as_ref().unwrap();
    assert_eq!((iv.summary.low, iv.summary.high), (1.0, 1.0));
    let (a, b, cmp) = compare(&gt, &good, &bad, &c).unwrap();
    assert_eq!(a.metrics.summary, 1.0);
    assert!(close(b.metrics.summary, 0.5));
    assert!(close(cmp.summary.difference, -0.5));
    assert!(cmp.summary.interval.high < 0.0);
    assert!(cmp.summary.p_value < 0.01);
}

#[test]
fn report_json_tells_infinite_and_undefined_numbers_apart() {
    // A perfect detector without false positives: 3DCE extrapolates the
    // curve's vertical end, MULAN clamps it.
    let mut gt = GroundTruth::new("hand");
    gt.units
        .push(unit("a", vec![lesion([0., 0., 9., 9.], 0., 0.)]));
    gt.units
        .push(unit("b", vec![lesion([0., 0., 9., 9.], 0., 0.)]));
    let mut d = DetectionSet::new();
    det2(&mut d, "a", [0., 0., 9., 9.], 0.9);
    det2(&mut d, "b", [0., 0., 9., 9.], 0.8);
    let mut c = cfg(Protocol::KeySlice);
    c.variant = KeySliceVariant::ThreeDce;
    let e = evaluate(&gt, &d, &c).unwrap();
    assert!(
        e.metrics.sens.iter().any(|s| !s.is_finite()),
        "{:?}",
        e.metrics.sens
    );
    let dir = tempfile::tempdir().unwrap();
    uld_eval::report::write_report(dir.path(), &e, "perfect", false).unwrap();
    let text = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(json["conventions"].as_str().unwrap().contains("\"inf\""));
    let written = json["metrics"]["sens"].as_array().unwrap();
    for (w, s) in written.iter().zip(&e.metrics.sens) {
        let back = match w {
            serde_json::Value::String(t) => t.parse::<f64>().unwrap(),
            n => n.as_f64().unwrap(),
        };
        assert!(back == *s || (back.is_nan() && s.is_nan()), "{w} for {s}");
        assert!(!w.is_null());
    }
    assert_eq!(json["metrics"]["sens_clamped"][0], 1.0);
}
