//! The picture outputs of `uld detect SCAN...`: a NIfTI label map of the
//! lesions' per-slice boxes for viewers such as 3D Slicer, and overlay PNGs
//! of each lesion's best slice.

use std::path::{Path, PathBuf};

use uld_core::{Box2, Volume};
use uld_data::nifti_writer::write_nifti_labels;
use uld_train::scan::Orientation;

use super::raster::{draw_rect, write_rgb};
use super::scan_report::Lesion;

/// The display window of overlays, HU (soft tissue).
pub const OVERLAY_WINDOW: [f32; 2] = [-160.0, 240.0];
const RED: [u8; 3] = [255, 40, 40];

/// The voxels whose centres lie inside a box `[x1, x2] x [y1, y2]`, clipped
/// to a `width x height` slice: inclusive index ranges, `None` when empty.
fn covered(b: &Box2, width: usize, height: usize) -> Option<[usize; 4]> {
    let lo = |v: f32| v.ceil().max(0.0) as usize;
    let hi = |v: f32, n: usize| (v.floor().max(-1.0) as i64).min(n as i64 - 1);
    let (x2, y2) = (hi(b.x2, width), hi(b.y2, height));
    let (x1, y1) = (lo(b.x1), lo(b.y1));
    (x2 >= x1 as i64 && y2 >= y1 as i64).then_some([x1, y1, x2 as usize, y2 as usize])
}

/// A label map on the scan's grid (same dims and world transform): voxels
/// inside lesion `id`'s box on each of its slices hold `id`; where boxes
/// overlap the better lesion (lower id) keeps its label.
pub fn label_map(volume: &Volume<i16>, lesions: &[&Lesion]) -> Volume<u16> {
    let [nx, ny, nz] = volume.dims();
    let mut data = vec![0u16; nx * ny * nz];
    for lesion in lesions {
        let id = u16::try_from(lesion.id).unwrap_or(u16::MAX);
        for s in &lesion.slices {
            let Some([x1, y1, x2, y2]) = covered(&s.bbox, nx, ny) else {
                continue;
            };
            let z = s.z as usize;
            for y in y1..=y2 {
                for v in &mut data[(z * ny + y) * nx + x1..=(z * ny + y) * nx + x2] {
                    if *v == 0 {
                        *v = id;
                    }
                }
            }
        }
    }
    let labels = Volume::new(volume.dims(), volume.spacing(), data)
        .expect("same dims and spacing as a valid volume");
    match volume.world() {
        Some(w) => labels.with_world(*w),
        None => labels,
    }
}

/// Writes [`label_map`] to `path` (`.nii.gz`).
pub fn write_label_map(
    path: &Path,
    volume: &Volume<i16>,
    lesions: &[&Lesion],
) -> anyhow::Result<()> {
    let labels = label_map(volume, lesions);
    write_nifti_labels(
        path,
        &labels,
        "uld detect: voxel value = lesion id of the scan's JSON, 0 = none",
    )?;
    Ok(())
}

/// Writes `dir/lesion_NN_slice_KKK.png` for each lesion: its best slice in
/// the soft-tissue window with its box in red (`KKK` = 0-based slice of the
/// scan), shown as detection saw it (re-indexed to LPS when `orientation`
/// says so: anterior at the top, the patient's right on the left).
/// Returns the files written.
pub fn write_overlays(
    dir: &Path,
    volume: &Volume<i16>,
    orientation: Orientation,
    lesions: &[&Lesion],
) -> anyhow::Result<Vec<PathBuf>> {
    if lesions.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let dims = volume.dims();
    let map = orientation.map();
    let [nx, ny, _] = map.target_dims(dims);
    let [lo, hi] = OVERLAY_WINDOW;
    let mut written = Vec::new();
    for lesion in lesions {
        let z = map.other_slice(lesion.best_slice as usize, dims);
        let slice = map.target_slice(volume, z);
        let mut rgb: Vec<u8> = slice
            .iter()
            .flat_map(|&hu| {
                let g = ((f32::from(hu) - lo) / (hi - lo) * 255.0).clamp(0.0, 255.0) as u8;
                [g, g, g]
            })
            .collect();
        if let Some([x1, y1, x2, y2]) = covered(&map.box_to_target(lesion.best_box, dims), nx, ny) {
            let b = Box2::new(x1 as f32, y1 as f32, x2 as f32, y2 as f32);
            draw_rect(&mut rgb, nx, (0, 0), b, RED);
        }
        let path = dir.join(format!(
            "lesion_{:02}_slice_{:03}.png",
            lesion.id, lesion.best_slice
        ));
        let description = format!(
            "uld detect overlay: lesion {} (score {:.3}) of the scan's JSON on its best slice {} \
             (0-based slice of the scan); window {lo}..{hi} HU; box in red; {}",
            lesion.id,
            lesion.score,
            lesion.best_slice,
            if map.is_identity() {
                "pixels in the file's own array order"
            } else {
                "re-indexed as DeepLesion shows slices (anterior at the top, the patient's right on the left)"
            }
        );
        write_rgb(&path, nx, ny, &rgb, &description)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::scan_report::{SliceBox, VoxelBox};

    fn lesion(id: usize, z: u32, b: Box2) -> Lesion {
        Lesion {
            id,
            score: 0.5,
            best_slice: z,
            best_box: b,
            box_voxels: VoxelBox {
                x1: b.x1,
                y1: b.y1,
                z1: z,
                x2: b.x2,
                y2: b.y2,
                z2: z,
            },
            box_world_mm: None,
            best_box_world_mm: None,
            long_diameter_mm: 0.0,
            short_diameter_mm: 0.0,
            slices: vec![SliceBox {
                z,
                bbox: b,
                score: 0.5,
            }],
        }
    }

    #[test]
    fn label_map_fills_voxel_centres_inside_boxes_and_keeps_the_better_lesion() {
        let v = Volume::new([6, 5, 3], [1.0; 3], vec![0i16; 90]).unwrap();
        let a = lesion(1, 1, Box2::new(0.5, 1.0, 2.0, 2.9));
        let b = lesion(2, 1, Box2::new(2.0, 1.0, 9.0, 1.0));
        let m = label_map(&v, &[&a, &b]);
        let labelled: Vec<(usize, usize, usize, u16)> = (0..90)
            .filter(|&i| m.data()[i] > 0)
            .map(|i| (i % 6, (i / 6) % 5, i / 30, m.data()[i]))
            .collect();
        assert_eq!(
            labelled,
            vec![
                (1, 1, 1, 1),
                (2, 1, 1, 1),
                (3, 1, 1, 2),
                (4, 1, 1, 2),
                (5, 1, 1, 2),
                (1, 2, 1, 1),
                (2, 2, 1, 1),
            ]
        );
    }
}
