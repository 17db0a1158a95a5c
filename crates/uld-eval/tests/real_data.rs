//! The readers and protocols on the real, completely annotated sets in
//! `../shared/data/`: their published facts, and ground truth scored as
//! detections.

use uld_core::testdata::shared_data;
use uld_eval::gt::subvolume_range;
use uld_eval::{
    Detection, DetectionSet, EvalConfig, GroundTruth, KeySliceRow, KeySliceVariant, LensSplit,
    Protocol, evaluate, keyslice_ground_truth, read_harvester, read_lens,
};

fn harvester(name: &str) -> GroundTruth {
    read_harvester(shared_data(&format!(
        "fully_annotated/lesion_harvester/{name}"
    )))
    .unwrap()
}

fn lens(split: LensSplit) -> GroundTruth {
    read_lens(
        shared_data("fully_annotated/lens/DeepLesion_manual_1K_test_release.json"),
        split,
    )
    .unwrap()
}

fn keyslice(file: &str, drop_noisy: bool) -> GroundTruth {
    let path = shared_data(&format!("deeplesion/{file}"));
    let rows = uld_data::deeplesion::read_dl_info(&path).unwrap();
    keyslice_ground_truth(
        rows.into_iter().map(|r| KeySliceRow {
            long_diameter_mm: r.long_diameter_mm(),
            slice_interval_mm: r.slice_interval_mm(),
            lesion_type: r.lesion_type.name().to_string(),
            image: r.file_name,
            bbox: r.bbox,
            possibly_noisy: r.possibly_noisy,
        }),
        drop_noisy,
        path.display().to_string(),
    )
}

/// Every lesion as a detection on its own slices; `keep(unit, lesion)`
/// chooses which. Scores fall with file order, so nothing ties.
fn as_detections(
    gt: &GroundTruth,
    keep: impl Fn(usize, usize) -> bool,
    slices: bool,
) -> DetectionSet {
    let mut d = DetectionSet::new();
    let mut n = 0u32;
    for (u, unit) in gt.units.iter().enumerate() {
        for (l, lesion) in unit.lesions.iter().enumerate() {
            if !keep(u, l) {
                continue;
            }
            n += 1;
            d.push(
                &unit.key,
                Detection {
                    slices: slices.then_some((lesion.bbox.z1 as i32, lesion.bbox.z2 as i32)),
                    bbox: lesion.bbox.xy,
                    score: 1.0 - n as f32 * 1e-5,
                    track: None,
                },
            );
        }
    }
    d
}

fn quiet(protocol: Protocol) -> EvalConfig {
    let mut c = EvalConfig::new(protocol);
    c.bootstrap = None;
    c
}

#[test]
fn harvester_files_hold_their_published_counts() {
    for (name, units, boxes) in [
        ("Revised-Test1071.json", 1071, 3665),
        ("Revised-Train744.json", 744, 3033),
        ("Revised-Train100.json", 100, 420),
        ("RECIST-Box-Test.json", 3005, 4912),
        ("RECIST-Box-Valid.json", 3001, 4885),
        ("3D-Box.json", 272, 874),
    ] {
        let gt = harvester(name);
        assert_eq!(
            (gt.units.len(), gt.lesion_count()),
            (units, boxes),
            "{name}"
        );
    }
    let gt = harvester("Revised-Test1071.json");
    // Keys lose `.annot`; one sub-volume has no lesion and still counts.
    assert!(gt.units.iter().all(|u| !u.key.ends_with(".annot")));
    assert_eq!(gt.units.iter().filter(|u| u.lesions.is_empty()).count(), 1);
    // 001344_01_01_012-024.annot slice 6: DL_info's 1-based box
    // 215.383, 176.983, 267.122, 220.374 becomes 0-based.
    let u = gt
        .units
        .iter()
        .find(|u| u.key == "001344_01_01_012-024")
        .unwrap();
    let b = u.lesions[0].bbox;
    assert_eq!((b.z1, b.z2), (6.0, 6.0));
    assert!((b.xy.x1 - 214.383).abs() < 1e-3 && (b.xy.y2 - 219.374).abs() < 1e-3);
}

#[test]
fn lens_file_holds_its_published_counts_in_subvolume_slices() {
    let all = lens(LensSplit::Both);
    assert_eq!((all.units.len(), all.lesion_count()), (1000, 5447));
    let val = lens(LensSplit::Val);
    let test = lens(LensSplit::Test);
    assert_eq!((val.units.len(), test.units.len()), (200, 800));
    assert_eq!(val.lesion_count() + test.lesion_count(), 5447);
    // z is converted from whole-volume PNG numbers to 0-based slices of the
    // sub-volume: 000283_13_02_076-136 box [136, 332, 98, 154, 349, 108].
    let u = val
        .units
        .iter()
        .find(|u| u.key == "000283_13_02_076-136")
        .unwrap();
    let b = u.lesions[0].bbox;
    assert_eq!((b.z1, b.z2), (22.0, 32.0));
    assert_eq!(b.xy.to_array(), [136.0, 332.0, 154.0, 349.0]);
    for u in &all.units {
        let (first, last) = subvolume_range(&u.key).unwrap();
        for l in &u.lesions {
            assert!(
                l.bbox.z1 >= 0.0 && l.bbox.z2 <= (last - first) as f32,
                "{}",
                u.key
            );
        }
    }
}

#[test]
fn harvester_ground_truth_as_detections_scores_perfectly() {
    let gt = harvester("Revised-Test1071.json");
    let d = as_detections(&gt, |_, _| true, true);
    let e = evaluate(&gt, &d, &quiet(Protocol::Harvester)).unwrap();
    assert_eq!((e.units, e.lesions, e.detections), (1071, 3665, 3665));
    assert_eq!(e.metrics.ap, 1.0);
    assert!(e.metrics.sens_clamped.iter().all(|&s| s == 1.0));
    // No false positive at all: the harvester's extrapolation meets a
    // vertical last segment and, like the reference, returns inf.
    assert!(e.metrics.sens.iter().all(|&s| s == f64::INFINITY));
    assert_eq!(e.metrics.summary_clamped, 1.0);
}

#[test]
fn harvester_dropping_a_quarter_of_lesions_gives_three_quarters() {
    let gt = harvester("Revised-Test1071.json");
    // No two lesions of a slice overlap with IoU >= 0.5 in this file, so a
    // kept detection finds exactly its own lesion.
    let mut index = 0usize;
    let keep: Vec<Vec<bool>> = gt
        .units
        .iter()
        .map(|u| {
            u.lesions
                .iter()
                .map(|_| {
                    index += 1;
                    index % 4 != 0
                })
                .collect()
        })
        .collect();
    let kept = keep.iter().flatten().filter(|&&k| k).count();
    let d = as_detections(&gt, |u, l| keep[u][l], true);
    let e = evaluate(&gt, &d, &quiet(Protocol::Harvester)).unwrap();
    let want = kept as f64 / 3665.0;
    assert!(
        e.metrics.sens_clamped.iter().all(|&s| s == want),
        "{:?} vs {want}",
        e.metrics.sens_clamped
    );
    // All detections are hits, so precision is 1 up to recall `want`.
    assert!((e.metrics.ap - want).abs() < 1e-12);
}

#[test]
fn lens_ground_truth_as_detections_and_dropped_volumes() {
    let gt = lens(LensSplit::Test);
    let d = as_detections(&gt, |_, _| true, true);
    let e = evaluate(&gt, &d, &quiet(Protocol::Lens)).unwrap();
    assert!(e.metrics.sens.iter().all(|&s| s == 1.0));
    assert_eq!(e.metrics.summary, 1.0);
    // Nested lesions: a box can cover another with IoBB >= 0.3, so some
    // ground-truth boxes find two lesions and their partners become
    // duplicates, which AP counts as false positives.
    assert!(
        e.metrics.ap > 0.9 && e.metrics.ap <= 1.0,
        "{}",
        e.metrics.ap
    );
    // Dropping the detections of every 4th sub-volume loses exactly those
    // sub-volumes' lesions (hits never cross sub-volumes).
    let d = as_detections(&gt, |u, _| u % 4 != 0, true);
    let lost: usize = gt.units.iter().step_by(4).map(|u| u.lesions.len()).sum();
    let e = evaluate(&gt, &d, &quiet(Protocol::Lens)).unwrap();
    let want = (gt.lesion_count() - lost) as f64 / gt.lesion_count() as f64;
    assert!(e.metrics.sens.iter().all(|&s| s == want));
}

#[test]
fn keyslice_ground_truth_from_dl_info() {
    let all = keyslice("DL_info_test.csv", false);
    assert_eq!((all.units.len(), all.lesion_count()), (4831, 4927));
    // Both references drop the 15 noisy lesions, and with them 14 key
    // images whose every lesion is noisy (3DCE's log: "images: 4831 ->
    // 4817, bboxes: 4927 -> 4912").
    assert!(KeySliceVariant::ThreeDce.drops_noisy() && KeySliceVariant::Mulan.drops_noisy());
    let gtm = keyslice("DL_info_test.csv", true);
    assert_eq!((gtm.units.len(), gtm.lesion_count()), (4817, 4912));
    let d = as_detections(&gtm, |_, _| true, false);
    let e = evaluate(&gtm, &d, &quiet(Protocol::KeySlice)).unwrap();
    assert!(e.metrics.sens.iter().all(|&s| s == 1.0));
    // One image holds two lesions whose boxes overlap with IoU >= 0.5: the
    // first box finds both, the second is a duplicate (an AP false
    // positive), so AP is just below 1.
    assert!(e.metrics.ap > 0.999, "{}", e.metrics.ap);
    // Breakdowns come from DL_info's attributes.
    assert!(
        e.breakdowns
            .iter()
            .any(|g| g.by == "type" && g.group == "liver")
    );
    assert!(
        e.breakdowns
            .iter()
            .any(|g| g.by == "size" && g.group == "10-30 mm")
    );
    // Dropping every 4th image's detections.
    let d = as_detections(&gtm, |u, _| u % 4 != 0, false);
    let lost: usize = gtm.units.iter().step_by(4).map(|u| u.lesions.len()).sum();
    let e = evaluate(&gtm, &d, &quiet(Protocol::KeySlice)).unwrap();
    let want = (4912 - lost) as f64 / 4912.0;
    assert!(e.metrics.sens.iter().all(|&s| s == want));
}

#[test]
fn reports_and_plots_are_written() {
    let gt = harvester("Revised-Test1071.json");
    let d = as_detections(&gt, |u, _| u % 3 != 0, true);
    let mut c = EvalConfig::new(Protocol::Harvester);
    c.bootstrap = Some(uld_eval::BootstrapConfig {
        replicates: 50,
        seed: 1,
        level: 0.95,
    });
    c.score_threshold = Some(0.5);
    let e = evaluate(&gt, &d, &c).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = uld_eval::report::write_report(dir.path(), &e, "gt minus a third", true).unwrap();
    for f in &files.files {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len > 100, "{} is {len} bytes", f.display());
    }
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        md.contains("Mean sensitivity at 0.125-8 FP per sub-volume"),
        "{md}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(json["lesions"], 3665);
    let png = std::fs::read(dir.path().join("froc.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let svg = std::fs::read_to_string(dir.path().join("froc.svg")).unwrap();
    assert!(svg.starts_with("<svg"));
    // With the system font found (this machine and CI have DejaVu), the
    // plots carry their text.
    if uld_eval::plot::load_font().is_some() {
        assert!(files.plot_text && svg.contains("FROC"));
    }
}

/// A deterministic detection set over a real ground truth, built from
/// integers only so that another implementation can rebuild it exactly:
/// lesion `i` (counted over all units in order) is found unless `i % 5 ==
/// 0`, by its own box moved by a few pixels, with score
/// `(2 ((i K1) mod 2^21) + 2) / 2^22`; unit `u` gets `u % 4` false
/// positives `j` (counted over all units) with odd numerators, so no two
/// scores tie. `reference/pinned_reference.py` rebuilds the same set
/// (change the two together).
fn pinned_detections(gt: &GroundTruth, slices: bool) -> DetectionSet {
    const K1: u64 = 2_654_435_761;
    const K2: u64 = 40_503;
    let scale = (1u64 << 22) as f32;
    let mut d = DetectionSet::new();
    let (mut i, mut j) = (0u64, 0u64);
    for (u, unit) in gt.units.iter().enumerate() {
        let depth = subvolume_range(&unit.key).map_or(0, |(f, l)| (l - f) as i32);
        for lesion in &unit.lesions {
            let keep = i % 5 != 0;
            let off = |m: u64, r: u64| ((i * m) % (2 * r + 1)) as f32 - r as f32;
            let b = lesion.bbox.xy;
            let (mut x1, mut x2) = (b.x1 + off(7, 2), b.x2 + off(3, 2));
            let (mut y1, mut y2) = (b.y1 + off(5, 2), b.y2 + off(11, 2));
            if x2 < x1 {
                std::mem::swap(&mut x1, &mut x2);
            }
            if y2 < y1 {
                std::mem::swap(&mut y1, &mut y2);
            }
            let score = (2 * ((i * K1) % (1 << 21)) + 2) as f32 / scale;
            i += 1;
            if keep {
                d.push(
                    &unit.key,
                    Detection {
                        slices: slices.then_some((lesion.bbox.z1 as i32, lesion.bbox.z2 as i32)),
                        bbox: uld_core::Box2::new(x1, y1, x2, y2),
                        score,
                        track: None,
                    },
                );
            }
        }
        for _ in 0..u % 4 {
            let x = ((u as u64 * 37 + j * 53) % 400) as f32;
            let y = ((u as u64 * 91 + j * 29) % 400) as f32;
            let size = (12 + (j * 13) % 40) as f32;
            let z1 = ((j * 3) % (depth as u64 + 1)) as i32;
            let z2 = (z1 + (j % 4) as i32).min(depth);
            d.push(
                &unit.key,
                Detection {
                    slices: slices.then_some((z1, z2)),
                    bbox: uld_core::Box2::new(x, y, x + size, y + size),
                    score: (2 * ((j * K2) % (1 << 21)) + 1) as f32 / scale,
                    track: None,
                },
            );
            j += 1;
        }
    }
    d
}

/// The numbers the reference code gives for [`pinned_detections`]: the
/// reference algorithms (3DCE/MULAN `FROC` + `sens_at_FP`, Lesion-Harvester
/// part 3 + `voc_ap`, LENS `FROC` + `sens_at_FP`) run with numpy 2.4.6 and
/// scipy 1.17.1 on the same ground truth and detections, printed with
/// `repr`. uld must equal them to the last bit.
///
/// `reference/pinned_reference.py` beside this file regenerates every one of
/// them from the shared data and checks them against this test; the command
/// is in `reference/README.md`.
#[test]
fn pinned_detections_score_exactly_as_the_reference_code() {
    let check = |name: &str, e: &uld_eval::Evaluation, sens: &[f64], ap: f64| {
        assert_eq!(e.metrics.sens, sens, "{name} sensitivities");
        assert_eq!(e.metrics.ap, ap, "{name} AP");
    };
    // The 3DCE case keeps the noisy lesions (`--noisy keep`), as the
    // reference script does, so each variant is checked on its own ground truth.
    for (variant, drop_noisy, sens, ap) in [
        (
            KeySliceVariant::ThreeDce,
            false,
            [
                0.26791150801704894,
                0.5362289425613964,
                0.8000811853054597,
                0.8000811853054597,
                0.8000811853054597,
                0.8000811853054597,
            ],
            0.2860526295077587,
        ),
        (
            KeySliceVariant::Mulan,
            true,
            [
                0.2697475570032573,
                0.5360342019543974,
                0.800285016286645,
                0.800285016286645,
                0.800285016286645,
                0.800285016286645,
            ],
            0.28612621166905283,
        ),
    ] {
        let gt = keyslice("DL_info_test.csv", drop_noisy);
        let mut c = quiet(Protocol::KeySlice);
        c.variant = variant;
        let e = evaluate(&gt, &pinned_detections(&gt, false), &c).unwrap();
        check(variant.name(), &e, &sens, ap);
    }
    let gt = harvester("Revised-Test1071.json");
    let e = evaluate(
        &gt,
        &pinned_detections(&gt, true),
        &quiet(Protocol::Harvester),
    )
    .unwrap();
    check(
        "harvester",
        &e,
        &[
            0.06739427012278308,
            0.13424283765347886,
            0.26821282401091406,
            0.5342428376534789,
            0.8,
            0.8,
            0.8,
            0.8,
        ],
        0.5211364543863765,
    );
    let gt = lens(LensSplit::Test);
    let e = evaluate(&gt, &pinned_detections(&gt, true), &quiet(Protocol::Lens)).unwrap();
    let mut sens = vec![
        0.07509025270758123,
        0.14825511432009628,
        0.28904933814681105,
        0.5670276774969916,
    ];
    sens.extend([0.8115523465703971; 10]);
    check("lens", &e, &sens, 0.5993563884773542);
}
