//! A tiny synthetic dataset and a mined-lesion file to review: the
//! unlabelled lesions on training key slices (real ones) and a misplaced
//! box per image (false ones), as `uld mined` writes them.

use std::path::{Path, PathBuf};

use uld_core::Box2;
use uld_data::deeplesion::{Split, read_dl_info, record_for_box, write_dl_info_with};
use uld_data::synth::{MANIFEST_FILE, Manifest, Preset, generate};
use uld_review::{ReviewData, ReviewState, read_mined};

/// Writes the dataset under `dir/data` and `dir/mined.csv`; returns both.
pub fn tiny_review(dir: &Path) -> (PathBuf, PathBuf) {
    let root = dir.join("data");
    generate(&Preset::Tiny.config(), &root, &|| {}).unwrap();
    let records = read_dl_info(root.join("DL_info.csv")).unwrap();
    let manifest = Manifest::read(&root.join(MANIFEST_FILE)).unwrap();
    let mut rows = Vec::new();
    let mut values = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, r) in records.iter().enumerate() {
        if r.split != Split::Train || !seen.insert(r.file_name.clone()) || rows.len() >= 8 {
            continue;
        }
        for l in manifest
            .lesions
            .iter()
            .filter(|l| !l.labelled && l.series_id == r.series_id())
        {
            if let Some(b) = l.box_on(r.key_slice_png) {
                rows.push(record_for_box(r, &b));
                values.push(vec![format!("{:.4}", 0.9 - 0.01 * i as f32), "1".into()]);
            }
        }
        let [w, h] = r.image_size;
        let b = Box2::new(10.0, 10.0, 40.0, 36.0);
        assert!(b.x2 < w as f32 && b.y2 < h as f32);
        rows.push(record_for_box(r, &b));
        values.push(vec![format!("{:.4}", 0.5 - 0.01 * i as f32), "0".into()]);
    }
    assert!(
        rows.len() >= 4,
        "the tiny dataset gives {} candidates",
        rows.len()
    );
    let mined = dir.join("mined.csv");
    write_dl_info_with(
        &mined,
        &rows,
        &["Mined_score", "Unlabelled_lesion"],
        &values,
    )
    .unwrap();
    (root, mined)
}

/// The review state of `tiny_review`'s files, saving to `out`.
pub fn open_review(root: &Path, mined: &Path, out: &Path) -> std::sync::Arc<ReviewState> {
    ReviewState::open(
        ReviewData {
            root: root.to_path_buf(),
            candidates: read_mined(mined).unwrap(),
            truth: Some(Manifest::read(&root.join(MANIFEST_FILE)).unwrap()),
            reviewer: "dr test".into(),
        },
        out,
    )
    .unwrap()
}
