//! The per-scan JSON of `uld detect SCAN...` (`uld-scan-detections`,
//! version 1): lesions as 3D boxes in voxel indices and world millimetres,
//! with the conventions stated in the file. Beside the CSV/JSON detection
//! files of [`crate::detections`], which hold the same boxes for `uld eval`.
//!
//! Everything is built from plain values (the scan's facts, its
//! voxel-to-world transform, each lesion's per-slice boxes), so any
//! detector's output can be written in this format:
//!
//! ```text
//! {
//!   "format": "uld-scan-detections", "version": 1,
//!   "conventions": {"voxel": "...", "world": "...", "diameters": "...", "score": "..."},
//!   "scan": {"path", "kind", "name", "dims", "spacing_mm", "series_uid", "first_png", "slices_detected"},
//!   "world": {"frame": "RAS", "axis_codes": "LPS", "matrix": [[...], [...], [...]]} | null,
//!   "detection": {"oriented_as": "LPS" | "source", "note": "..."},
//!   "lesions": [{"id", "score", "best_slice", "best_box", "box_voxels",
//!                "box_world_mm", "best_box_world_mm", "long_diameter_mm",
//!                "short_diameter_mm", "slices": [{"z", "box", "score"}]}]
//! }
//! ```

use std::path::Path;

use serde::Serialize;
use uld_core::{Box2, Frame, Result, WorldTransform, write_atomically};

/// Format name and version written into every file.
pub const FORMAT: &str = "uld-scan-detections";
pub const VERSION: u32 = 1;

/// How voxel indices and boxes are given (`conventions.voxel`).
pub const VOXEL_CONVENTION: &str = "voxel indices are 0-based in the source's array order: \
x = i (column of a slice), y = j (row), z = k (slice); box x1, y1, x2, y2 are continuous \
voxel coordinates in which integer values are voxel centres (as the affine maps them), \
x to increasing i, y to increasing j; z1, z2 are the first and last slice, both inclusive; \
slice z of a DeepLesion series is the file KKK.png with KKK = scan.first_png + z";
/// How the diameters are measured (`conventions.diameters`).
pub const DIAMETER_CONVENTION: &str = "long_diameter_mm and short_diameter_mm are the larger and \
smaller side of the lesion's box on its best slice, in mm (width x spacing x, height x spacing y): \
a box-based estimate, not a RECIST measurement";
/// What the scores mean and how lesions are ordered (`conventions.score`).
pub const SCORE_CONVENTION: &str = "score: the detector's confidence of the lesion's best box \
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
    /// Slices were re-indexed as DeepLesion shows them before detection:
    /// target axis `a` is source axis `source[a]`, reversed when `flip[a]`.
    pub fn reindexed_lps(source: [usize; 3], flip: [bool; 3]) -> Self {
        Self {
            oriented_as: "LPS",
            note: format!(
                "slices were re-indexed for detection as DeepLesion shows them (columns towards \
                 the patient's left, rows posterior, anterior at the top): target axes x, y, z \
                 are source axes {source:?}, reversed {flip:?}; every box here is mapped back to the \
                 source's voxel indices"
            ),
        }
    }

    /// Slices were detected in the file's own array order.
    pub fn source_order() -> Self {
        Self {
            oriented_as: "source",
            note: "slices were detected in the file's own array order (it is LPS-ordered \
                   already, has no world transform, or its slices are not axial)"
                .into(),
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

impl Conventions {
    /// The conventions of a file whose scan has `world` (or none).
    pub fn of(world: Option<&WorldTransform>) -> Self {
        let world = match world {
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
            voxel: VOXEL_CONVENTION,
            world,
            diameters: DIAMETER_CONVENTION,
            score: SCORE_CONVENTION,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ScanInfo {
    pub path: String,
    /// What the source is: `"NIfTI"`, `"DICOM series"`, `"DeepLesion series"`, ...
    pub kind: String,
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

impl WorldInfo {
    pub fn of(w: &WorldTransform) -> Self {
        Self {
            frame: w.frame.name(),
            axis_codes: w.axis_codes(),
            matrix: w.matrix,
        }
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct VoxelBox {
    pub x1: f32,
    pub y1: f32,
    pub z1: u32,
    pub x2: f32,
    pub y2: f32,
    pub z2: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WorldBox {
    pub corner1: [f64; 3],
    pub corner2: [f64; 3],
    pub center: [f64; 3],
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
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
    /// Lesion `id` made of its per-slice boxes (one per slice, sorted here
    /// by slice), on a scan of voxel size `spacing` (mm) placed by `world`:
    /// its best box is the highest-scoring one (the first of equals), its
    /// score that box's, its voxel box the boxes' enclosing box from the
    /// first slice to the last. `None` when `slices` is empty.
    pub fn new(
        id: usize,
        mut slices: Vec<SliceBox>,
        spacing: [f64; 3],
        world: Option<&WorldTransform>,
    ) -> Option<Self> {
        slices.sort_by_key(|s| s.z);
        let best = *slices
            .iter()
            .reduce(|a, b| if b.score > a.score { b } else { a })?;
        let e = Box2::enclosing(
            slices
                .iter()
                .flat_map(|s| [(s.bbox.x1, s.bbox.y1), (s.bbox.x2, s.bbox.y2)]),
        )?;
        let (z1, z2) = (slices[0].z, slices[slices.len() - 1].z);
        let b = best.bbox;
        let sides = [
            f64::from(b.width()) * spacing[0],
            f64::from(b.height()) * spacing[1],
        ];
        let z = f64::from(best.z);
        Some(Self {
            id,
            score: best.score,
            best_slice: best.z,
            best_box: b,
            box_voxels: VoxelBox {
                x1: e.x1,
                y1: e.y1,
                z1,
                x2: e.x2,
                y2: e.y2,
                z2,
            },
            box_world_mm: world.map(|w| {
                WorldBox::of(
                    w,
                    [e.x1.into(), e.y1.into(), z1.into()],
                    [e.x2.into(), e.y2.into(), z2.into()],
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
            slices,
        })
    }
}

impl ScanReport {
    /// The report of a scan described by `scan`, placed by `world` (or
    /// not), detected as `detection` says, with its `lesions` (best first,
    /// numbered from 1).
    pub fn new(
        scan: ScanInfo,
        world: Option<&WorldTransform>,
        detection: DetectionInfo,
        lesions: Vec<Lesion>,
    ) -> Self {
        Self {
            format: FORMAT,
            version: VERSION,
            conventions: Conventions::of(world),
            scan,
            world: world.map(WorldInfo::of),
            detection,
            lesions,
        }
    }

    /// The lesions scoring at least `min_score`, best first.
    pub fn confident(&self, min_score: f32) -> impl Iterator<Item = &Lesion> {
        self.lesions.iter().filter(move |l| l.score >= min_score)
    }

    /// The report as pretty JSON, with a final newline (the file's bytes).
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a report serialises");
        text.push('\n');
        text
    }

    /// Writes the report as pretty JSON, atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomically(path, |w| {
            serde_json::to_writer_pretty(&mut *w, self).map_err(std::io::Error::other)?;
            std::io::Write::write_all(w, b"\n")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn slice(z: u32, x1: f32, score: f32) -> SliceBox {
        SliceBox {
            z,
            bbox: Box2::new(x1, 347.0, 229.0, 372.0),
            score,
        }
    }

    /// lung1's affine as nibabel reads it: diag(-0.5703125, -0.5703125, 5)
    /// with origin (146, 325, -777.5).
    fn lung1() -> WorldTransform {
        WorldTransform {
            matrix: [
                [-0.5703125, 0.0, 0.0, 146.0],
                [0.0, -0.5703125, 0.0, 325.0],
                [0.0, 0.0, 5.0, -777.5],
            ],
            frame: Frame::Ras,
        }
    }

    fn info() -> ScanInfo {
        ScanInfo {
            path: "ct.nii.gz".into(),
            kind: "NIfTI".into(),
            name: "ct".into(),
            dims: [512, 512, 48],
            spacing_mm: [0.5703125, 0.5703125, 5.0],
            series_uid: None,
            first_png: None,
            slices_detected: vec![32, 33, 34],
        }
    }

    #[test]
    fn a_lesion_is_its_best_box_and_the_enclosing_box_of_its_slices() {
        // Given out of slice order: the lesion sorts them.
        let boxes = vec![
            slice(34, 208.0, 0.5),
            slice(32, 210.0, 0.4),
            slice(33, 206.0, 0.9),
        ];
        let l = Lesion::new(1, boxes, [0.5703125, 0.5703125, 5.0], Some(&lung1())).unwrap();
        assert_eq!((l.id, l.best_slice, l.score), (1, 33, 0.9));
        assert_eq!(l.best_box, Box2::new(206.0, 347.0, 229.0, 372.0));
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
        assert_eq!(
            l.slices.iter().map(|s| s.z).collect::<Vec<_>>(),
            [32, 33, 34]
        );
        let w = l.box_world_mm.unwrap();
        let affine = |p: [f64; 3]| lung1().apply(p);
        assert_eq!(w.corner1, affine([206.0, 347.0, 32.0]));
        assert_eq!(w.corner2, affine([229.0, 372.0, 34.0]));
        assert_eq!(w.center, affine([217.5, 359.5, 33.0]));
        let best = l.best_box_world_mm.unwrap();
        assert_eq!(best.corner1, affine([206.0, 347.0, 33.0]));
        // Sides 23 x 25 px of 0.5703125 mm.
        assert_eq!(l.long_diameter_mm, 25.0 * 0.5703125);
        assert_eq!(l.short_diameter_mm, 23.0 * 0.5703125);
        // Equal scores: the first slice's box is the best.
        let tie = Lesion::new(
            2,
            vec![slice(5, 1.0, 0.7), slice(4, 2.0, 0.7)],
            [1.0; 3],
            None,
        );
        assert_eq!(tie.unwrap().best_slice, 4);
        assert!(Lesion::new(3, Vec::new(), [1.0; 3], None).is_none());
    }

    #[test]
    fn the_json_states_its_conventions_and_gives_boxes_in_voxels_and_mm() {
        let world = lung1();
        let lesions = vec![
            Lesion::new(1, vec![slice(33, 206.0, 0.9)], [0.5703125; 3], Some(&world)).unwrap(),
            Lesion::new(2, vec![slice(32, 100.0, 0.3)], [0.5703125; 3], Some(&world)).unwrap(),
        ];
        let report = ScanReport::new(
            info(),
            Some(&world),
            DetectionInfo::reindexed_lps([0, 1, 2], [true, true, false]),
            lesions,
        );
        let text = report.to_json();
        assert!(text.ends_with("}\n"));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["format"], "uld-scan-detections");
        assert_eq!(v["version"], 1);
        let c = &v["conventions"];
        assert_eq!(c["voxel"], VOXEL_CONVENTION);
        assert!(c["voxel"].as_str().unwrap().contains("0-based"));
        assert!(c["voxel"].as_str().unwrap().contains("both inclusive"));
        assert!(
            c["world"]
                .as_str()
                .unwrap()
                .starts_with("millimetres in RAS: ")
        );
        assert!(c["diameters"].as_str().unwrap().contains("not a RECIST"));
        assert!(c["score"].as_str().unwrap().contains("best first"));
        assert_eq!(v["scan"]["kind"], "NIfTI");
        assert_eq!(v["scan"]["series_uid"], Value::Null);
        assert_eq!(v["scan"]["slices_detected"], json!([32, 33, 34]));
        assert_eq!(v["world"]["frame"], "RAS");
        assert_eq!(v["world"]["axis_codes"], "LPS");
        assert_eq!(v["world"]["matrix"][2], json!([0.0, 0.0, 5.0, -777.5]));
        assert_eq!(v["detection"]["oriented_as"], "LPS");
        let note = v["detection"]["note"].as_str().unwrap();
        assert!(
            note.contains("source axes [0, 1, 2], reversed [true, true, false]"),
            "{note}"
        );
        let l = &v["lesions"][0];
        assert_eq!(l["best_box"], json!([206.0, 347.0, 229.0, 372.0]));
        assert_eq!(
            l["box_voxels"],
            json!({"x1": 206.0, "y1": 347.0, "z1": 33, "x2": 229.0, "y2": 372.0, "z2": 33})
        );
        assert_eq!(
            l["slices"],
            json!([{"z": 33, "box": [206.0, 347.0, 229.0, 372.0], "score": 0.9}])
        );
        assert_eq!(
            l["box_world_mm"]["corner1"],
            json!(world.apply([206.0, 347.0, 33.0]))
        );
        // The file's top-level keys in the struct's order.
        let at: Vec<usize> = [
            "format",
            "version",
            "conventions",
            "scan",
            "world",
            "detection",
            "lesions",
        ]
        .iter()
        .map(|k| text.find(&format!("\n  \"{k}\": ")).unwrap())
        .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}");
        assert_eq!(report.confident(0.5).map(|l| l.id).collect::<Vec<_>>(), [1]);

        let path =
            std::env::temp_dir().join(format!("uld-scan-report-{}.json", std::process::id()));
        report.write(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_scan_without_a_world_frame_says_so() {
        let report = ScanReport::new(
            info(),
            None,
            DetectionInfo::source_order(),
            vec![Lesion::new(1, vec![slice(3, 1.0, 0.5)], [1.0; 3], None).unwrap()],
        );
        let v: Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(v["world"], Value::Null);
        assert!(
            v["conventions"]["world"]
                .as_str()
                .unwrap()
                .starts_with("none: ")
        );
        assert_eq!(v["detection"]["oriented_as"], "source");
        assert_eq!(v["lesions"][0]["box_world_mm"], Value::Null);
        assert_eq!(v["lesions"][0]["best_box_world_mm"], Value::Null);
    }
}
