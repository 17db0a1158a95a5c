//! The per-scan JSON of `uld detect SCAN...`: lesions as 3D boxes in voxel
//! indices and world millimetres, with the conventions stated in the file.

use std::path::Path;

use serde::Serialize;
use uld_core::{Box2, Frame, Volume, WorldTransform, write_atomically};
use uld_data::scan::Scan;
use uld_train::scan::Orientation;
use uld_train::tracklets::Tracklet;

/// Format name and version written into every file.
pub const FORMAT: &str = "uld-scan-detections";
pub const VERSION: u32 = 1;

const VOXEL_CONVENTION: &str = "voxel indices are 0-based in the source's array order: \
x = i (column of a slice), y = j (row), z = k (slice); box x1, y1, x2, y2 are continuous \
voxel coordinates in which integer values are voxel centres (as the affine maps them), \
x to increasing i, y to increasing j; z1, z2 are the first and last slice, both inclusive; \
slice z of a DeepLesion series is the file KKK.png with KKK = scan.first_png + z";
const DIAMETER_CONVENTION: &str = "long_diameter_mm and short_diameter_mm are the larger and \
smaller side of the lesion's box on its best slice, in mm (width x spacing x, height x spacing y): \
a box-based estimate, not a RECIST measurement";
const SCORE_CONVENTION: &str = "score: the detector's confidence of the lesion's best box \
(higher is more certain); lesions are listed best first and numbered from 1, the numbers \
the label map uses";

/// Everything the JSON file holds.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    pub format: &'static str,
    pub version: u32,
    pub conventions: Conventions,
    pub scan: ScanInfo,
    /// The voxel-to-world transform; `null` when the source has none (a
    /// DeepLesion folder without `uld_geometry.json`).
    pub world: Option<WorldInfo>,
    /// How the slices were shown to the detector.
    pub detection: DetectionInfo,
    pub lesions: Vec<Lesion>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DetectionInfo {
    /// `"LPS"`: re-indexed as DeepLesion shows slices before detection;
    /// `"source"`: in the file's own array order.
    pub oriented_as: &'static str,
    pub note: String,
}

impl DetectionInfo {
    fn of(orientation: Orientation) -> Self {
        match orientation {
            Orientation::Lps(map) => Self {
                oriented_as: "LPS",
                note: format!(
                    "slices were re-indexed for detection as DeepLesion shows them (columns towards \
                     the patient's left, rows posterior, anterior at the top): target axes x, y, z \
                     are source axes {:?}, reversed {:?}; every box here is mapped back to the \
                     source's voxel indices",
                    map.source, map.flip
                ),
            },
            Orientation::Source => Self {
                oriented_as: "source",
                note: "slices were detected in the file's own array order (it is LPS-ordered \
                       already, has no world transform, or its slices are not axial)"
                    .into(),
            },
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Conventions {
    pub voxel: &'static str,
    pub world: String,
    pub diameters: &'static str,
    pub score: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScanInfo {
    pub path: String,
    pub kind: &'static str,
    pub name: String,
    /// `[nx, ny, nz]` voxels.
    pub dims: [usize; 3],
    /// Voxel size x, y and the slice interval, mm.
    pub spacing_mm: [f64; 3],
    pub series_uid: Option<String>,
    /// For DeepLesion series: the PNG number of slice 0 (slice z is PNG `first_png + z`).
    pub first_png: Option<u32>,
    /// The slices detection ran on (0-based, ascending).
    pub slices_detected: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorldInfo {
    /// `"RAS"` (NIfTI) or `"LPS"` (DICOM).
    pub frame: &'static str,
    /// The anatomical direction each voxel axis i, j, k runs towards most.
    pub axis_codes: String,
    /// 3 rows of 4: world = matrix x [x, y, z, 1].
    pub matrix: [[f64; 4]; 3],
}

#[derive(Debug, Clone, Serialize)]
pub struct Lesion {
    /// 1-based, best score first.
    pub id: usize,
    pub score: f32,
    pub best_slice: u32,
    /// The box on the best slice `[x1, y1, x2, y2]`.
    pub best_box: Box2,
    pub box_voxels: VoxelBox,
    /// The 3D box's corners `(x1, y1, z1)` and `(x2, y2, z2)` and its centre.
    pub box_world_mm: Option<WorldBox>,
    /// The best-slice box's corners `(x1, y1, best_slice)`, `(x2, y2, best_slice)` and centre.
    pub best_box_world_mm: Option<WorldBox>,
    pub long_diameter_mm: f64,
    pub short_diameter_mm: f64,
    /// One box per slice, in slice order.
    pub slices: Vec<SliceBox>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct VoxelBox {
    pub x1: f32,
    pub y1: f32,
    pub z1: u32,
    pub x2: f32,
    pub y2: f32,
    pub z2: u32,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct WorldBox {
    pub corner1: [f64; 3],
    pub corner2: [f64; 3],
    pub center: [f64; 3],
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct SliceBox {
    pub z: u32,
    #[serde(rename = "box")]
    pub bbox: Box2,
    pub score: f32,
}

/// The world frame named in words.
fn frame_words(frame: Frame) -> &'static str {
    match frame {
        Frame::Ras => {
            "RAS: +x towards the patient's right, +y anterior, +z superior (NIfTI's frame, from the sform, else the qform)"
        }
        Frame::Lps => {
            "LPS: +x towards the patient's left, +y posterior, +z superior (DICOM patient coordinates, from ImagePositionPatient and ImageOrientationPatient)"
        }
    }
}

impl WorldBox {
    /// The world positions of two corners `(x1, y1, z1)`, `(x2, y2, z2)`.
    pub fn of(w: &WorldTransform, a: [f64; 3], b: [f64; 3]) -> Self {
        let center = std::array::from_fn(|k| (a[k] + b[k]) / 2.0);
        Self {
            corner1: w.apply(a),
            corner2: w.apply(b),
            center: w.apply(center),
        }
    }
}

impl Lesion {
    /// A tracklet of `volume` as a lesion numbered `id`.
    pub fn of(id: usize, t: &Tracklet, volume: &Volume<i16>) -> Self {
        let best = t.best();
        let extent = t.extent();
        let spacing = volume.spacing();
        let sides = [
            f64::from(best.bbox.width()) * spacing[0],
            f64::from(best.bbox.height()) * spacing[1],
        ];
        let world = volume.world();
        let z = f64::from(best.slice);
        let b = best.bbox;
        let e = extent.xy;
        Self {
            id,
            score: t.score(),
            best_slice: best.slice,
            best_box: best.bbox,
            box_voxels: VoxelBox {
                x1: e.x1,
                y1: e.y1,
                z1: extent.z1 as u32,
                x2: e.x2,
                y2: e.y2,
                z2: extent.z2 as u32,
            },
            box_world_mm: world.map(|w| {
                WorldBox::of(
                    w,
                    [e.x1.into(), e.y1.into(), extent.z1.into()],
                    [e.x2.into(), e.y2.into(), extent.z2.into()],
                )
            }),
            best_box_world_mm: world.map(|w| {
                WorldBox::of(
                    w,
                    [b.x1.into(), b.y1.into(), z],
                    [b.x2.into(), b.y2.into(), z],
                )
            }),
            long_diameter_mm: sides[0].max(sides[1]),
            short_diameter_mm: sides[0].min(sides[1]),
            slices: t
                .boxes
                .iter()
                .map(|d| SliceBox {
                    z: d.slice,
                    bbox: d.bbox,
                    score: d.score,
                })
                .collect(),
        }
    }
}

impl ScanReport {
    /// The report of `scan` with its lesions (best first).
    pub fn new(
        scan: &Scan,
        slices_detected: Vec<usize>,
        tracklets: &[Tracklet],
        orientation: Orientation,
    ) -> Self {
        let volume = &scan.volume;
        let world = volume.world().map(|w| WorldInfo {
            frame: w.frame.name(),
            axis_codes: w.axis_codes(),
            matrix: w.matrix,
        });
        let world_words = match volume.world() {
            Some(w) => format!(
                "millimetres in {}; box_world_mm corners are the voxel box's corners mapped through `world.matrix`",
                frame_words(w.frame)
            ),
            None => {
                "none: the source gives no position, so only voxel indices and spacing are known"
                    .into()
            }
        };
        Self {
            format: FORMAT,
            version: VERSION,
            conventions: Conventions {
                voxel: VOXEL_CONVENTION,
                world: world_words,
                diameters: DIAMETER_CONVENTION,
                score: SCORE_CONVENTION,
            },
            scan: ScanInfo {
                path: scan.path.display().to_string(),
                kind: scan.kind.name(),
                name: scan.name.clone(),
                dims: volume.dims(),
                spacing_mm: volume.spacing(),
                series_uid: scan.series_uid.clone(),
                first_png: scan.first_png,
                slices_detected,
            },
            world,
            detection: DetectionInfo::of(orientation),
            lesions: tracklets
                .iter()
                .enumerate()
                .map(|(k, t)| Lesion::of(k + 1, t, volume))
                .collect(),
        }
    }

    /// Writes the report as pretty JSON, atomically.
    pub fn write(&self, path: &Path) -> uld_core::Result<()> {
        write_atomically(path, |w| {
            serde_json::to_writer_pretty(&mut *w, self).map_err(std::io::Error::other)?;
            std::io::Write::write_all(w, b"\n")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uld_core::testdata::shared_data;
    use uld_data::scan::{ScanOptions, open_scan};
    use uld_train::tracklets::SliceDetection;

    /// A known lesion on the real lung CT: its world corners are the NIfTI
    /// affine (srow_x/y/z as nibabel reads them) applied to the voxel box.
    #[test]
    fn world_corners_are_the_nifti_affine_of_the_voxel_box() {
        let scan = open_scan(
            &shared_data("ct/lung1_image.nii.gz"),
            &ScanOptions::default(),
        )
        .unwrap();
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
        let report = ScanReport::new(&scan, (0..48).collect(), &[t], Orientation::Source);
        let l = &report.lesions[0];
        assert_eq!((l.id, l.best_slice, l.score), (1, 33, 0.9));
        let v = l.box_voxels;
        assert_eq!(
            (v.x1, v.y1, v.z1, v.x2, v.y2, v.z2),
            (206.0, 347.0, 32, 229.0, 372.0, 34)
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
        let text = serde_json::to_string(&report).unwrap();
        assert!(text.contains("\"format\":\"uld-scan-detections\""));
    }
}
