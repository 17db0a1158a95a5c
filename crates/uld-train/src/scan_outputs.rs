//! What `uld detect SCAN...` writes for one scan, built from the lesions
//! detection found ([`crate::scan::detect_scan`]): the per-scan JSON
//! ([`uld_eval::scan_detections`], from a [`Scan`], its [`Tracklet`]s and
//! their [`Orientation`]), a NIfTI label map of the lesions' per-slice boxes
//! for viewers such as 3D Slicer, and overlay PNGs of each lesion's best
//! slice.

use std::path::{Path, PathBuf};

use uld_core::{Box2, Error, Result, Volume};
use uld_data::nifti_writer::write_nifti_labels;
use uld_data::render::{draw_rect, gray, write_rgb};
use uld_data::scan::Scan;
use uld_eval::scan_detections::{DetectionInfo, Lesion, ScanInfo, ScanReport, SliceBox};

use crate::scan::Orientation;
use crate::tracklets::Tracklet;

/// The display window of overlays, HU (soft tissue).
pub const OVERLAY_WINDOW: [f32; 2] = [-160.0, 240.0];
const RED: [u8; 3] = [255, 40, 40];

/// How detection saw the slices, in the report's words.
pub fn detection_info(orientation: Orientation) -> DetectionInfo {
    match orientation {
        Orientation::Lps(map) => DetectionInfo::reindexed_lps(map.source, map.flip),
        Orientation::Source => DetectionInfo::source_order(),
    }
}

/// A tracklet of `volume` as lesion `id` of the report.
pub fn lesion_of(id: usize, t: &Tracklet, volume: &Volume<i16>) -> Lesion {
    let slices = t
        .boxes
        .iter()
        .map(|d| SliceBox {
            z: d.slice,
            bbox: d.bbox,
            score: d.score,
        })
        .collect();
    Lesion::new(id, slices, volume.spacing(), volume.world())
        .expect("a tracklet has at least one box")
}

/// The report of `scan` detected on `slices_detected` (0-based, ascending)
/// with its `tracklets` (best first; numbered from 1 in that order).
pub fn scan_report(
    scan: &Scan,
    slices_detected: Vec<usize>,
    tracklets: &[Tracklet],
    orientation: Orientation,
) -> ScanReport {
    let volume = &scan.volume;
    let info = ScanInfo {
        path: scan.path.display().to_string(),
        kind: scan.kind.name().to_string(),
        name: scan.name.clone(),
        dims: volume.dims(),
        spacing_mm: volume.spacing(),
        series_uid: scan.series_uid.clone(),
        first_png: scan.first_png,
        slices_detected,
    };
    let lesions = tracklets
        .iter()
        .enumerate()
        .map(|(k, t)| lesion_of(k + 1, t, volume))
        .collect();
    ScanReport::new(info, volume.world(), detection_info(orientation), lesions)
}

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
/// whose centres lie inside lesion `id`'s box on each of its slices hold
/// `id`; where boxes overlap the better lesion (lower id) keeps its label.
/// Slices outside the volume are left out.
pub fn label_map(volume: &Volume<i16>, lesions: &[&Lesion]) -> Volume<u16> {
    let [nx, ny, nz] = volume.dims();
    let mut data = vec![0u16; nx * ny * nz];
    for lesion in lesions {
        let id = u16::try_from(lesion.id).unwrap_or(u16::MAX);
        for s in &lesion.slices {
            let z = s.z as usize;
            let Some([x1, y1, x2, y2]) = covered(&s.bbox, nx, ny).filter(|_| z < nz) else {
                continue;
            };
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
pub fn write_label_map(path: &Path, volume: &Volume<i16>, lesions: &[&Lesion]) -> Result<()> {
    write_nifti_labels(
        path,
        &label_map(volume, lesions),
        "uld detect: voxel value = lesion id of the scan's JSON, 0 = none",
    )
}

/// Writes `dir/lesion_NN_slice_KKK.png` for each lesion: its best slice in
/// the soft-tissue window with its box in red (`KKK` = 0-based slice of the
/// scan), shown as detection saw it (re-indexed to LPS when `orientation`
/// says so: anterior at the top, the patient's right on the left).
/// Returns the files written (none, and no folder, without lesions).
pub fn write_overlays(
    dir: &Path,
    volume: &Volume<i16>,
    orientation: Orientation,
    lesions: &[&Lesion],
) -> Result<Vec<PathBuf>> {
    if lesions.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
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
                let g = gray(f32::from(hu), OVERLAY_WINDOW);
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
    use std::sync::Arc;
    use uld_core::testdata::shared_data;
    use uld_core::{Frame, WorldTransform};
    use uld_data::reorient::AxisMap;
    use uld_data::scan::{ScanKind, ScanOptions, open_scan};
    use uld_eval::scan_detections::VoxelBox;

    use crate::tracklets::SliceDetection;

    fn lesion(id: usize, z: u32, b: Box2) -> Lesion {
        Lesion::new(
            id,
            vec![SliceBox {
                z,
                bbox: b,
                score: 0.5,
            }],
            [1.0; 3],
            None,
        )
        .unwrap()
    }

    #[test]
    fn label_map_fills_voxel_centres_inside_boxes_and_keeps_the_better_lesion() {
        let v = Volume::new([6, 5, 3], [1.0; 3], vec![0i16; 90]).unwrap();
        let a = lesion(1, 1, Box2::new(0.5, 1.0, 2.0, 2.9));
        let b = lesion(2, 1, Box2::new(2.0, 1.0, 9.0, 1.0));
        // Outside the slice and past the last slice: nothing.
        let c = lesion(3, 1, Box2::new(-5.0, -5.0, -1.0, -1.0));
        let d = lesion(4, 7, Box2::new(0.0, 0.0, 3.0, 3.0));
        let m = label_map(&v, &[&a, &b, &c, &d]);
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
        assert!(m.world().is_none());
    }

    #[test]
    fn label_maps_lie_on_the_scan_grid_and_read_back_as_labels() {
        let world = WorldTransform {
            matrix: [
                [-0.5, 0.0, 0.0, 10.0],
                [0.0, -0.5, 0.0, 20.0],
                [0.0, 0.0, 2.0, -30.0],
            ],
            frame: Frame::Ras,
        };
        let v = Volume::new([8, 6, 4], [0.5, 0.5, 2.0], vec![0i16; 192])
            .unwrap()
            .with_world(world);
        let a = lesion(1, 2, Box2::new(1.0, 1.0, 3.0, 2.0));
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("boxes.nii.gz");
        write_label_map(&path, &v, &[&a]).unwrap();
        let back = uld_data::nifti::read_nifti_labels(&path).unwrap();
        assert_eq!(back.dims(), [8, 6, 4]);
        assert_eq!(back.world().unwrap().frame, Frame::Ras);
        assert_eq!(back.data().iter().filter(|&&l| l == 1).count(), 3 * 2);
        assert_eq!(
            (back.get(1, 1, 2), back.get(3, 2, 2), back.get(1, 1, 1)),
            (1, 1, 0)
        );
    }

    /// The real lung CT: a lesion's JSON entry has the voxel box of its
    /// tracklet and world corners through the NIfTI affine (srow_x/y/z as
    /// nibabel reads them).
    #[test]
    fn a_report_of_the_lung_ct_gives_world_corners_through_its_affine() {
        let scan = open_scan(
            &shared_data("ct/lung1_image.nii.gz"),
            &ScanOptions::default(),
        )
        .unwrap();
        assert_eq!(scan.kind, ScanKind::Nifti);
        let det = |slice: u32, x1: f32, score: f32| SliceDetection {
            slice,
            bbox: Box2::new(x1, 347.0, 229.0, 372.0),
            score,
        };
        let t = Tracklet {
            boxes: vec![
                det(32, 210.0, 0.4),
                det(33, 206.0, 0.9),
                det(34, 208.0, 0.5),
            ],
        };
        let weak = Tracklet {
            boxes: vec![det(10, 100.0, 0.2)],
        };
        let report = scan_report(&scan, (0..48).collect(), &[t, weak], Orientation::Source);
        assert_eq!(report.scan.kind, "NIfTI");
        assert_eq!(report.scan.name, "lung1_image");
        assert_eq!(report.scan.dims, [512, 512, 48]);
        assert_eq!(report.detection.oriented_as, "source");
        let l = &report.lesions[0];
        assert_eq!((l.id, l.best_slice, l.score), (1, 33, 0.9));
        assert_eq!(
            l.box_voxels,
            VoxelBox {
                x1: 206.0,
                y1: 347.0,
                z1: 32,
                x2: 229.0,
                y2: 372.0,
                z2: 34
            }
        );
        // lung1's affine (nibabel): diag(-0.5703125, -0.5703125, 5) with
        // origin (146, 325, -777.5), so the last voxel (511, 511, 47) lies
        // at (-145.4296875, 33.5703125, -542.5).
        let affine = |p: [f64; 3]| {
            [
                146.0 - 0.5703125 * p[0],
                325.0 - 0.5703125 * p[1],
                -777.5 + 5.0 * p[2],
            ]
        };
        let got = l.box_world_mm.unwrap();
        let expected = [
            affine([206.0, 347.0, 32.0]),
            affine([229.0, 372.0, 34.0]),
            affine([217.5, 359.5, 33.0]),
        ];
        for (g, e) in [got.corner1, got.corner2, got.center].iter().zip(expected) {
            for k in 0..3 {
                assert!((g[k] - e[k]).abs() < 1e-4, "{g:?} vs {e:?}");
            }
        }
        let best = l.best_box_world_mm.unwrap();
        assert!((best.corner1[2] - affine([0.0, 0.0, 33.0])[2]).abs() < 1e-9);
        assert_eq!(report.world.as_ref().unwrap().frame, "RAS");
        assert_eq!(report.world.as_ref().unwrap().axis_codes, "LPS");
        assert!((l.long_diameter_mm - 25.0 * 0.5703125).abs() < 1e-6);
        assert!((l.short_diameter_mm - 23.0 * 0.5703125).abs() < 1e-6);
        assert_eq!(report.lesions[1].id, 2);
        assert_eq!(report.confident(0.5).count(), 1);
        assert!(
            report
                .to_json()
                .contains("\"format\": \"uld-scan-detections\"")
        );
    }

    #[test]
    fn a_reindexed_scan_says_how_in_its_report() {
        let map = AxisMap {
            source: [0, 1, 2],
            flip: [true, true, false],
        };
        let info = detection_info(Orientation::Lps(map));
        assert_eq!(info.oriented_as, "LPS");
        assert!(
            info.note
                .contains("source axes [0, 1, 2], reversed [true, true, false]")
        );
        assert_eq!(detection_info(Orientation::Source).oriented_as, "source");
    }

    /// Overlays show the best slice in the soft-tissue window with the box
    /// in red, as detection saw it: a RAS-ordered volume is flipped to LPS.
    #[test]
    fn overlays_show_the_best_slice_windowed_with_its_box_as_detection_saw_it() {
        let (nx, ny) = (20, 10);
        // Slice 1: HU rises along x, so a flip shows in the pixels.
        let data = (0..2 * nx * ny)
            .map(|k| {
                if k / (nx * ny) == 1 {
                    (k % nx) as i16 * 20 - 160
                } else {
                    0
                }
            })
            .collect();
        let volume = Arc::new(Volume::new([nx, ny, 2], [1.0; 3], data).unwrap());
        let l = lesion(3, 1, Box2::new(2.0, 1.0, 10.0, 8.0));
        let tmp = tempfile::tempdir().unwrap();
        let read = |path: &Path| {
            let mut r =
                png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()))
                    .read_info()
                    .unwrap();
            let text = r.info().uncompressed_latin1_text[0].text.clone();
            let mut buf = vec![0; r.output_buffer_size().unwrap()];
            r.next_frame(&mut buf).unwrap();
            (buf, text)
        };
        let px = |buf: &[u8], x: usize, y: usize| {
            let at = (y * nx + x) * 3;
            [buf[at], buf[at + 1], buf[at + 2]]
        };

        let files = write_overlays(tmp.path(), &volume, Orientation::Source, &[&l]).unwrap();
        assert_eq!(files, [tmp.path().join("lesion_03_slice_001.png")]);
        let (buf, text) = read(&files[0]);
        assert!(text.contains("lesion 3 (score 0.500)") && text.contains("own array order"));
        assert_eq!(px(&buf, 2, 1), RED);
        assert_eq!(px(&buf, 10, 8), RED);
        assert_eq!(px(&buf, 5, 4)[0], px(&buf, 5, 4)[1], "grey inside");
        assert_ne!(px(&buf, 5, 4), RED);
        assert_eq!(px(&buf, 0, 0), [0, 0, 0], "-160 HU: the window's low end");
        assert_eq!(
            px(&buf, 19, 0)[0],
            gray(19.0 * 20.0 - 160.0, OVERLAY_WINDOW)
        );

        let flipped = Orientation::Lps(AxisMap {
            source: [0, 1, 2],
            flip: [true, true, false],
        });
        let dir = tmp.path().join("lps");
        let files = write_overlays(&dir, &volume, flipped, &[&l]).unwrap();
        let (buf, text) = read(&files[0]);
        assert!(
            text.contains("re-indexed as DeepLesion shows slices"),
            "{text}"
        );
        // Flipped in x and y: the box [2, 10] x [1, 8] is at [9, 17] x [1, 8].
        assert_eq!(px(&buf, 9, 1), RED);
        assert_eq!(px(&buf, 17, 8), RED);
        assert_ne!(px(&buf, 2, 1), RED, "nor where the source has it");
        assert_eq!(
            px(&buf, 19, 0),
            [0, 0, 0],
            "source column 0 is on the right"
        );

        assert!(
            write_overlays(&tmp.path().join("none"), &volume, flipped, &[])
                .unwrap()
                .is_empty()
        );
        assert!(!tmp.path().join("none").exists());
    }
}
