//! The synthetic DeepLesion-format dataset: determinism, labelled fraction,
//! statistics against the fitted table, read-back through the real reader,
//! lesions visible in the pixels, and the Lesion-Harvester layout.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use uld_core::testdata::shared_data;
use uld_data::deeplesion::{
    DatasetStats, LesionType, SeriesFolder, Split, read_dl_info, read_png_hu, write_dl_info,
};
use uld_data::synth::{
    FITTED_CSV, FittedStats, MANIFEST_FILE, Manifest, Plan, Preset, SynthConfig,
    complete_annotations_file, generate, partial_annotations_file, read_harvester_json,
};

fn tiny(seed: u64) -> SynthConfig {
    SynthConfig {
        seed,
        ..Preset::Tiny.config()
    }
}

fn write_tiny(seed: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    generate(&tiny(seed), dir.path(), &|| {}).unwrap();
    dir
}

fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(
                    path.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn fitted_table_is_a_fresh_fit_of_the_real_tables() {
    let fresh = FittedStats::fit_files(&[
        shared_data("deeplesion/DL_info_val.csv"),
        shared_data("deeplesion/DL_info_test.csv"),
    ])
    .unwrap();
    assert_eq!(fresh.rows, 9816);
    let fresh_csv = fresh.to_csv();
    if std::env::var_os("ULD_BLESS").is_some() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/synth/fitted_stats.csv");
        std::fs::write(path, &fresh_csv).unwrap();
    }
    assert_eq!(
        FITTED_CSV, fresh_csv,
        "the committed table is stale: regenerate it with `uld synth --fit-stats` (see stats.rs)"
    );
    // spot checks against the figures computed by hand from the tables
    assert_eq!(
        fresh.lesions_per_image.0,
        BTreeMap::from([(1, 9435), (2, 186), (3, 3)])
    );
    assert_eq!(fresh.lesion_types.0[&5], 2394);
    assert_eq!(fresh.slice_interval_um.0[&1000], 4814);
    assert_eq!(fresh.windows[&5], vec![[-1500.0, 500.0]]);
}

#[test]
fn same_seed_gives_identical_files_whatever_the_thread_count() {
    let a = write_tiny(11);
    let b = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| write_tiny(11));
    let (fa, fb) = (files(a.path()), files(b.path()));
    assert!(fa.keys().any(|p| p.starts_with("Images_png")));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (path, bytes) in &fa {
        assert!(
            fb[path] == *bytes,
            "{} differs between runs",
            path.display()
        );
    }
    let c = write_tiny(12);
    assert_ne!(
        files(c.path())[Path::new("DL_info.csv")],
        fa[Path::new("DL_info.csv")]
    );
}

#[test]
fn the_labelled_fraction_follows_the_setting() {
    for missing in [0.5, 0.2] {
        let config = SynthConfig {
            patients: 150,
            missing_fraction: missing,
            seed: 3,
            ..SynthConfig::default()
        };
        let plan = Plan::new(&config, &FittedStats::builtin());
        let labelled = plan.lesions.iter().filter(|l| l.labelled).count();
        assert_eq!(labelled, plan.records.len());
        let fraction = labelled as f64 / plan.lesions.len() as f64;
        assert!(
            (fraction - (1.0 - missing)).abs() < 0.04,
            "missing {missing}: labelled {fraction:.3}"
        );
    }
}

/// Share of `key` in a count map.
fn share<K: Ord>(counts: &BTreeMap<K, usize>, key: &K) -> f64 {
    counts.get(key).copied().unwrap_or(0) as f64 / counts.values().sum::<usize>() as f64
}

#[test]
fn statistics_read_back_match_the_fitted_ones() {
    // Metadata only (rendering 1,000 patients' slices would take minutes);
    // the table goes through the same writer and reader as a full run.
    let config = SynthConfig {
        patients: 1000,
        image_size: 512,
        seed: 5,
        ..SynthConfig::default()
    };
    let fitted = FittedStats::builtin();
    let plan = Plan::new(&config, &fitted);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("DL_info.csv");
    write_dl_info(&path, &plan.records).unwrap();
    let records = read_dl_info(&path).unwrap();
    assert_eq!(
        records, plan.records,
        "the table round-trips through the real reader"
    );
    let stats = DatasetStats::of(&records).unwrap();
    println!("{stats}");
    // sizes: quantiles within 12 % (measured on the rendered cross-section)
    let q = |u: f64| fitted.long_diameter_mm.quantile(u);
    for (name, got, want) in [
        ("p10", stats.long_diameter_mm.p10, q(0.1)),
        ("median", stats.long_diameter_mm.median, q(0.5)),
        ("p90", stats.long_diameter_mm.p90, q(0.9)),
    ] {
        assert!(
            (got / want - 1.0).abs() < 0.12,
            "long diameter {name}: {got:.1} mm vs fitted {want:.1} mm"
        );
    }
    // lesions per key image: the share of single-lesion images within 0.02
    let per_image: BTreeMap<u32, usize> = stats
        .lesions_per_image
        .iter()
        .map(|(n, c)| (*n as u32, *c))
        .collect();
    let fitted_single = fitted.lesions_per_image.fraction(1);
    assert!(
        (share(&per_image, &1) - fitted_single).abs() < 0.02,
        "{per_image:?}"
    );
    // slice intervals: the two common ones within 0.04
    for (mm, um) in [("1", 1000u32), ("5", 5000)] {
        let got = share(&stats.slice_intervals_mm, &mm.to_string());
        let want = fitted.slice_interval_um.fraction(um);
        assert!(
            (got - want).abs() < 0.04,
            "slice interval {mm} mm: {got:.3} vs {want:.3}"
        );
    }
    // pixel spacing at 512 px: median within 4 %
    let want = fitted.pixel_spacing_mm.quantile(0.5);
    assert!(
        (stats.pixel_spacing_mm.median / want - 1.0).abs() < 0.04,
        "{:?}",
        stats.pixel_spacing_mm
    );
    // type mix on val + test rows (train rows carry -1, as the real table)
    assert!(
        records
            .iter()
            .filter(|r| r.split == Split::Train)
            .all(|r| r.lesion_type == LesionType::Unknown)
    );
    let typed: Vec<_> = records
        .iter()
        .filter(|r| r.split != Split::Train)
        .cloned()
        .collect();
    let typed_stats = DatasetStats::of(&typed).unwrap();
    for code in fitted.lesion_types.0.keys() {
        let t = LesionType::from_code(*code).unwrap();
        let got = share(&typed_stats.lesion_types, &t.name().to_string());
        let want = fitted.lesion_types.fraction(*code);
        assert!(
            (got - want).abs() < 0.04,
            "{}: {got:.3} vs fitted {want:.3}",
            t.name()
        );
    }
    // splits by patient, in the published proportions
    let patients_of = |s: Split| {
        records
            .iter()
            .filter(|r| r.split == s)
            .map(|r| r.patient)
            .collect::<BTreeSet<_>>()
    };
    let (train, val, test) = (
        patients_of(Split::Train),
        patients_of(Split::Val),
        patients_of(Split::Test),
    );
    assert!(train.is_disjoint(&val) && train.is_disjoint(&test) && val.is_disjoint(&test));
    assert!(
        (val.len() as f64 / 1000.0 - 0.15).abs() < 0.03,
        "{} val patients",
        val.len()
    );
}

#[test]
fn a_tiny_dataset_reads_back_through_the_deeplesion_reader() {
    let dir = write_tiny(21);
    let root = dir.path();
    let records = read_dl_info(root.join("DL_info.csv")).unwrap();
    assert!(!records.is_empty());
    let splits: BTreeSet<Split> = records.iter().map(|r| r.split).collect();
    assert_eq!(splits.len(), 3, "tiny has a patient in every split");
    let stats = DatasetStats::of(&records).unwrap();
    assert_eq!(stats.lesions, records.len());
    for r in &records {
        let series = SeriesFolder::open(root.join("Images_png").join(r.series_id())).unwrap();
        for png in r.slice_range[0]..=r.slice_range[1] {
            assert!(
                series.contains(png),
                "{} misses slice {png} of its range",
                r.file_name
            );
        }
        // a 9-slice stack at 2 mm: +-8 mm of shipped neighbours
        let reach = (8.0 / r.spacing[2]).ceil() as u32;
        assert!(
            r.key_slice_png - r.slice_range[0] >= reach.min(r.key_slice_png - 1),
            "{r:?}"
        );
        let key = read_png_hu(root.join(r.key_slice_path())).unwrap();
        assert_eq!([key.width as u32, key.height as u32], r.image_size);
        assert!(r.bbox.x1 >= -5.0 && r.bbox.x2 <= 256.0 + 5.0, "{r:?}");
        // RECIST long axis in px matches the points
        let p = r.recist;
        let long = (p[0] - p[2]).hypot(p[1] - p[3]);
        assert!((long - r.diameters_px[0]).abs() < 1e-3);
        assert_eq!(r.bbox.x1, p[0].min(p[2]).min(p[4]).min(p[6]) - 5.0);
    }
}

/// Mean HU over the pixels of `b` (clipped to the image).
fn mean_in(
    slice: &uld_data::deeplesion::HuSlice,
    x1: f32,
    y1: f32,
    x2: f32,
    y2: f32,
    exclude: Option<[f32; 4]>,
) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for j in y1.max(0.0).ceil() as usize..(y2.min(slice.height as f32).ceil() as usize) {
        for i in x1.max(0.0).ceil() as usize..(x2.min(slice.width as f32).ceil() as usize) {
            if let Some(e) = exclude
                && (i as f32) >= e[0]
                && (i as f32) < e[2]
                && (j as f32) >= e[1]
                && (j as f32) < e[3]
            {
                continue;
            }
            sum += f64::from(slice.hu[j * slice.width + i]);
            n += 1;
        }
    }
    (n > 0).then(|| sum / n as f64)
}

#[test]
fn lesion_boxes_sit_on_pixels_of_the_lesion_contrast() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    generate(
        &SynthConfig {
            patients: 6,
            ..tiny(31)
        },
        root,
        &|| {},
    )
    .unwrap();
    let manifest = Manifest::read(&root.join(MANIFEST_FILE)).unwrap();
    let (mut core_checked, mut ring_checked) = (0, 0);
    for l in &manifest.lesions {
        let Some(section) = l.slices.iter().find(|s| s.png == l.key_slice_png) else {
            continue;
        };
        let e = section.extent;
        let (w, h) = (e[2] - e[0], e[3] - e[1]);
        if w < 8.0 || h < 8.0 {
            continue;
        }
        let slice = read_png_hu(
            root.join("Images_png")
                .join(&l.series_id)
                .join(format!("{:03}.png", l.key_slice_png)),
        )
        .unwrap();
        // the central 20 % of the extent lies inside any lobulated ellipse
        let (cx, cy) = ((e[0] + e[2]) / 2.0, (e[1] + e[3]) / 2.0);
        let core = mean_in(
            &slice,
            cx - 0.15 * w,
            cy - 0.15 * h,
            cx + 0.15 * w,
            cy + 0.15 * h,
            None,
        )
        .unwrap();
        assert!(
            (core - f64::from(l.lesion_hu)).abs() < 20.0,
            "lesion {} ({}): core {core:.0} HU, painted {} HU",
            l.id,
            l.site,
            l.lesion_hu
        );
        core_checked += 1;
        // against the surrounding organ tissue: a ring just outside the extent
        // (kidneys are left out: their sinus fat and the fat around them make
        // a ring darker than any kidney lesion)
        let organ = ["liver", "spleen", "lung_right", "lung_left"].contains(&l.site.as_str());
        if organ && l.contrast_hu.abs() >= 30.0 && w < 40.0 {
            let ring = mean_in(
                &slice,
                e[0] - 4.0,
                e[1] - 4.0,
                e[2] + 4.0,
                e[3] + 4.0,
                Some([e[0] - 1.0, e[1] - 1.0, e[2] + 1.0, e[3] + 1.0]),
            )
            .unwrap();
            assert_eq!(
                (core - ring).signum(),
                f64::from(l.contrast_hu).signum(),
                "lesion {} in {}: core {core:.0}, ring {ring:.0}, contrast {}",
                l.id,
                l.site,
                l.contrast_hu
            );
            ring_checked += 1;
        }
    }
    assert!(
        core_checked >= 8 && ring_checked >= 3,
        "checked {core_checked} cores, {ring_checked} rings"
    );
}

#[test]
fn complete_annotations_have_the_lesion_harvester_layout_and_every_lesion() {
    // the reader accepts the real files, so the layouts agree
    let real = read_harvester_json(&shared_data(
        "fully_annotated/lesion_harvester/Revised-Test1071.json",
    ))
    .unwrap();
    assert_eq!(real.len(), 1071);
    let dir = write_tiny(41);
    let root = dir.path();
    let records = read_dl_info(root.join("DL_info.csv")).unwrap();
    let manifest = Manifest::read(&root.join(MANIFEST_FILE)).unwrap();
    for split in Split::ALL {
        let complete = read_harvester_json(&root.join(complete_annotations_file(split))).unwrap();
        let partial = read_harvester_json(&root.join(partial_annotations_file(split))).unwrap();
        for key in complete.keys() {
            let k = key
                .strip_suffix(".annot")
                .expect("complete keys end in .annot, as the revised files");
            let (series, range) = k.split_at(12);
            assert!(
                series
                    .split('_')
                    .all(|p| p.chars().all(|c| c.is_ascii_digit())),
                "{key}"
            );
            let (first, last) = range[1..].split_once('-').unwrap();
            assert!(
                first.len() >= 3 && first.parse::<u32>().unwrap() <= last.parse::<u32>().unwrap(),
                "{key}"
            );
        }
        // every labelled row is there with the file's box on its key slice
        let rows: Vec<_> = records.iter().filter(|r| r.split == split).collect();
        let partial_boxes: usize = partial.values().map(Vec::len).sum();
        assert_eq!(partial_boxes, rows.len());
        for r in &rows {
            let key = format!(
                "{}_{:03}-{:03}",
                r.series_id(),
                r.slice_range[0],
                r.slice_range[1]
            );
            let z = r.key_slice_png - r.slice_range[0];
            let file_box = r.bbox.to_array().map(|v| f64::from(v) + 1.0);
            for (layout, boxes) in [
                (&partial, &partial[&key]),
                (&complete, &complete[&format!("{key}.annot")]),
            ] {
                let found = boxes
                    .iter()
                    .any(|(bz, b)| *bz == z && (0..4).all(|k| (b[k] - file_box[k]).abs() < 1e-3));
                assert!(
                    found,
                    "{} missing from a layout with {} keys",
                    r.file_name,
                    layout.len()
                );
            }
        }
        // every lesion showing in a shipped sub-volume has exactly one box there
        let series: BTreeMap<&str, &uld_data::synth::ManifestSeries> = manifest
            .series
            .iter()
            .map(|s| (s.series_id.as_str(), s))
            .collect();
        let mut expected = 0;
        for l in manifest.lesions.iter().filter(|l| l.split == split.name()) {
            for block in &series[l.series_id.as_str()].shipped {
                expected += usize::from(
                    l.slices
                        .iter()
                        .any(|s| (block[0]..=block[1]).contains(&s.png)),
                );
            }
        }
        let boxes: usize = complete.values().map(Vec::len).sum();
        assert_eq!(boxes, expected, "{split:?}");
        assert!(
            boxes > partial_boxes || rows.is_empty(),
            "unlabelled lesions are in the complete set"
        );
    }
}

#[test]
fn key_slices_are_the_largest_cross_section_and_unlabelled_lesions_stay_unlabelled() {
    let plan = Plan::new(
        &SynthConfig {
            patients: 40,
            seed: 8,
            ..SynthConfig::default()
        },
        &FittedStats::builtin(),
    );
    let mut unlabelled_on_key_slices = 0;
    for (index, s) in plan.series.iter().enumerate() {
        for (key, ids) in &s.key_images {
            for &id in ids {
                let l = &plan.lesions[id];
                assert!(l.labelled && l.key_png == *key);
                let area = |e: uld_core::Box2| e.area();
                let key_area = area(l.section(*key).unwrap().extent);
                assert!(
                    l.sections.iter().all(|sec| area(sec.extent) <= key_area),
                    "lesion {id}"
                );
            }
            // lesions on the key slice that nobody measured are not in the table
            for l in plan
                .lesions
                .iter()
                .filter(|l| l.series == index && !l.labelled && l.section(*key).is_some())
            {
                let file = format!("{}_{key:03}.png", s.id());
                let b = l.section(*key).unwrap().recist.padded_box();
                assert!(
                    !plan
                        .records
                        .iter()
                        .any(|r| r.file_name == file && r.bbox == b)
                );
                unlabelled_on_key_slices += 1;
            }
        }
    }
    assert!(
        unlabelled_on_key_slices > 0,
        "some unlabelled lesions share a key slice"
    );
}

#[test]
fn extra_val_and_test_patients_leave_the_training_split_as_it_was() {
    let stats = FittedStats::builtin();
    let base = SynthConfig {
        patients: 20,
        ..tiny(3)
    };
    let larger = SynthConfig {
        extra_val_patients: 4,
        extra_test_patients: 6,
        ..base.clone()
    };
    let (a, b) = (Plan::new(&base, &stats), Plan::new(&larger, &stats));
    let rows = |plan: &Plan, split: Split| -> Vec<String> {
        plan.records
            .iter()
            .filter(|r| r.split == split)
            .map(|r| format!("{r:?}"))
            .collect()
    };
    assert_eq!(rows(&a, Split::Train), rows(&b, Split::Train));
    let patients = |plan: &Plan, split: Split| -> BTreeSet<u32> {
        plan.series
            .iter()
            .filter(|s| s.split == split)
            .map(|s| s.patient)
            .collect()
    };
    assert_eq!(
        patients(&b, Split::Val).len(),
        patients(&a, Split::Val).len() + 4
    );
    assert_eq!(
        patients(&b, Split::Test).len(),
        patients(&a, Split::Test).len() + 6
    );
    assert!(
        patients(&b, Split::Test).contains(&30),
        "the extra patients come last"
    );
    let splits = uld_data::synth::patient_splits(&larger);
    assert_eq!(splits.len(), 30);
    assert_eq!(&splits[..20], &uld_data::synth::patient_splits(&base)[..]);
}
