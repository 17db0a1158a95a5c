//! Ground truth from the files the protocols are defined on.
//!
//! * Lesion-Harvester JSON ([`read_harvester`]): `{"PPPPPP_SS_RR_FFF-LLL[.annot]":
//!   {"<slice in sub-volume>": [[x1, y1, x2, y2, z, z], ...]}}`, slices
//!   0-based inside the sub-volume (PNG `FFF + slice`). The boxes are
//!   `DL_info.csv`'s 1-based boxes copied verbatim (a `Revised-Test1071`
//!   box equals its DL_info row's), so the reader subtracts 1 in-plane, as
//!   the key-slice reader does; overlaps are translation-invariant, so the
//!   protocol's numbers are unchanged. `3D-Box.json` (`key: [[x1, y1, x2,
//!   y2, z1, z2], ...]`, z continuous: a box on slice 0 alone is
//!   `-0.5..=0.5`) is read by the same function, z kept as written. `uld synth` writes
//!   this layout too.
//! * LENS JSON ([`read_lens`]): `{"val": {key: [[x1, y1, z1, x2, y2, z2]]},
//!   "test": {...}}` with z the **whole-volume** PNG slice number (LENS
//!   `evaluation_sample.py`; in the file every z lies in `FFF..=LLL`); the
//!   reader converts z to the sub-volume's 0-based slice `z - FFF`. In-plane
//!   numbers are kept: LENS's boxes were drawn anew, not copied from
//!   DL_info, and its sample evaluation compares them to detections as they
//!   are.
//! * Key slices ([`keyslice_ground_truth`]) from plain rows: `DL_info.csv`
//!   rows through [`crate::sources`], or rows a caller made.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use uld_core::{Box2, Box3, Error, Location, Result};

use crate::gt::{
    GroundTruth, GroundTruthBuilder, GtLesion, GtUnit, LesionAttrs, normalize_key, subvolume_range,
};

fn read_json(path: &Path) -> Result<Value> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|e| Error::data(Location::file(path).line(e.line() as u64), e.to_string()))
}

/// Six finite numbers from a JSON array.
fn six(v: &Value, loc: impl Fn() -> Location) -> Result<[f32; 6]> {
    let arr = v
        .as_array()
        .filter(|a| a.len() == 6)
        .ok_or_else(|| Error::data(loc(), format!("expected a list of 6 numbers, found {v}")))?;
    let mut out = [0f32; 6];
    for (o, x) in out.iter_mut().zip(arr) {
        *o = x
            .as_f64()
            .filter(|f| f.is_finite())
            .ok_or_else(|| Error::data(loc(), format!("`{x}` is not a finite number")))?
            as f32;
    }
    Ok(out)
}

fn check_box(b: &Box3, loc: impl Fn() -> Location) -> Result<()> {
    if b.xy.x2 < b.xy.x1 || b.xy.y2 < b.xy.y1 || b.z2 < b.z1 {
        return Err(Error::data(loc(), format!("inverted box {b:?}")));
    }
    Ok(())
}

/// Reads a Lesion-Harvester ground-truth file (any of the six layouts in
/// `fully_annotated/lesion_harvester/`). Units are sorted by key;
/// sub-volumes without boxes stay (they count in the false positives per
/// volume, as `volume_recs` keeps them).
pub fn read_harvester(path: impl AsRef<Path>) -> Result<GroundTruth> {
    let path = path.as_ref();
    let root = read_json(path)?;
    let obj = root.as_object().ok_or_else(|| {
        Error::data(
            Location::file(path),
            "expected a JSON object of sub-volumes",
        )
    })?;
    let mut gt = GroundTruth::new(path.display().to_string());
    let mut seen: HashMap<String, ()> = HashMap::new();
    for (raw_key, value) in obj {
        let key = normalize_key(raw_key).to_string();
        if seen.insert(key.clone(), ()).is_some() {
            return Err(Error::data(
                Location::file(path).field(raw_key.as_str()),
                "sub-volume listed twice",
            ));
        }
        let depth = subvolume_range(&key).map(|(f, l)| (l - f) as f32);
        let mut lesions = Vec::new();
        // `slack`: 3D-Box.json gives continuous slice coordinates (a box on
        // slice 0 alone is `-0.5..=0.5`), so its z may pass the first and
        // last slice index by half a slice; they are kept as written.
        let mut push = |b: [f32; 6], field: String, slack: f32| -> Result<()> {
            let loc = || Location::file(path).field(field.clone());
            let b = Box3::new(
                Box2::new(b[0] - 1.0, b[1] - 1.0, b[2] - 1.0, b[3] - 1.0),
                b[4],
                b[5],
            );
            check_box(&b, loc)?;
            if b.z1 < -slack || depth.is_some_and(|d| b.z2 > d + slack) {
                return Err(Error::data(
                    loc(),
                    format!("slices {}..={} lie outside the sub-volume", b.z1, b.z2),
                ));
            }
            lesions.push(GtLesion {
                bbox: b,
                attrs: LesionAttrs::default(),
            });
            Ok(())
        };
        match value {
            Value::Object(slices) => {
                let mut sorted: Vec<(u32, &Value)> = Vec::with_capacity(slices.len());
                for (z, boxes) in slices {
                    let zi: u32 = z.trim().parse().map_err(|_| {
                        Error::data(
                            Location::file(path).field(format!("{raw_key}/{z}")),
                            "slice key is not a non-negative integer",
                        )
                    })?;
                    sorted.push((zi, boxes));
                }
                sorted.sort_by_key(|(z, _)| *z);
                for (z, boxes) in sorted {
                    let list = boxes.as_array().ok_or_else(|| {
                        Error::data(
                            Location::file(path).field(format!("{raw_key}/{z}")),
                            "expected a list of boxes",
                        )
                    })?;
                    for (i, b) in list.iter().enumerate() {
                        let field = format!("{raw_key}/{z}[{i}]");
                        let mut v = six(b, || Location::file(path).field(field.clone()))?;
                        if v[4] != z as f32 || v[5] != z as f32 {
                            return Err(Error::data(
                                Location::file(path).field(field),
                                format!(
                                    "box slices {}, {} differ from its slice key {z}",
                                    v[4], v[5]
                                ),
                            ));
                        }
                        v[4] = z as f32;
                        v[5] = z as f32;
                        push(v, field, 0.0)?;
                    }
                }
            }
            Value::Array(list) => {
                for (i, b) in list.iter().enumerate() {
                    let field = format!("{raw_key}[{i}]");
                    let v = six(b, || Location::file(path).field(field.clone()))?;
                    push(v, field, 0.5)?;
                }
            }
            other => {
                return Err(Error::data(
                    Location::file(path).field(raw_key.as_str()),
                    format!("expected slices or a list of boxes, found {other}"),
                ));
            }
        }
        gt.units.push(GtUnit { key, lesions });
    }
    gt.units.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(gt)
}

/// Which part of the LENS file to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LensSplit {
    Val,
    Test,
    Both,
}

impl LensSplit {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "val" => Some(Self::Val),
            "test" => Some(Self::Test),
            "both" | "all" => Some(Self::Both),
            _ => None,
        }
    }
}

/// Reads the LENS manual test set (`DeepLesion_manual_1K_test_release.json`).
pub fn read_lens(path: impl AsRef<Path>, split: LensSplit) -> Result<GroundTruth> {
    let path = path.as_ref();
    let root = read_json(path)?;
    let names: &[&str] = match split {
        LensSplit::Val => &["val"],
        LensSplit::Test => &["test"],
        LensSplit::Both => &["val", "test"],
    };
    let mut gt = GroundTruth::new(format!("{} ({})", path.display(), names.join("+")));
    for name in names {
        let part = root.get(name).and_then(Value::as_object).ok_or_else(|| {
            Error::data(
                Location::file(path).field(*name),
                format!("expected an object `{name}` of sub-volumes"),
            )
        })?;
        for (raw_key, boxes) in part {
            let key = normalize_key(raw_key).to_string();
            let (first, last) = subvolume_range(&key).ok_or_else(|| {
                Error::data(
                    Location::file(path).field(format!("{name}/{raw_key}")),
                    "key is not a sub-volume PPPPPP_SS_RR_FFF-LLL",
                )
            })?;
            let list = boxes.as_array().ok_or_else(|| {
                Error::data(
                    Location::file(path).field(format!("{name}/{raw_key}")),
                    "expected a list of boxes",
                )
            })?;
            let mut lesions = Vec::with_capacity(list.len());
            for (i, b) in list.iter().enumerate() {
                let field = format!("{name}/{raw_key}[{i}]");
                let loc = || Location::file(path).field(field.clone());
                let v = six(b, loc)?;
                let (z1, z2) = (v[2], v[5]);
                if z1 < first as f32 || z2 > last as f32 {
                    return Err(Error::data(
                        loc(),
                        format!("slices {z1}..={z2} lie outside {first}..={last}"),
                    ));
                }
                let b = Box3::new(
                    Box2::new(v[0], v[1], v[3], v[4]),
                    z1 - first as f32,
                    z2 - first as f32,
                );
                check_box(&b, loc)?;
                lesions.push(GtLesion {
                    bbox: b,
                    attrs: LesionAttrs::default(),
                });
            }
            if gt.units.iter().any(|u| u.key == key) {
                return Err(Error::data(
                    Location::file(path).field(format!("{name}/{raw_key}")),
                    "sub-volume listed twice",
                ));
            }
            gt.units.push(GtUnit { key, lesions });
        }
    }
    gt.units.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(gt)
}

/// One key-slice lesion, as the binary extracts it from a `DL_info.csv` row.
#[derive(Debug, Clone, PartialEq)]
pub struct KeySliceRow {
    /// Key image (`File_name`, e.g. `000089_01_01_037.png`).
    pub image: String,
    /// Box in uld's 0-based frame (DL_info's box minus 1, as 3DCE/MULAN).
    pub bbox: Box2,
    pub long_diameter_mm: f64,
    /// Coarse lesion type name.
    pub lesion_type: String,
    pub slice_interval_mm: f64,
    pub possibly_noisy: bool,
}

/// Key-slice ground truth: one unit per key image, in first-appearance
/// order. With `drop_noisy` (MULAN's and 3DCE's test loaders,
/// Lesion-Harvester) `Possibly_noisy` lesions are removed first, so an image
/// whose lesions are all noisy is not evaluated at all (it is not in their
/// test sets).
pub fn keyslice_ground_truth(
    rows: impl IntoIterator<Item = KeySliceRow>,
    drop_noisy: bool,
    source: impl Into<String>,
) -> GroundTruth {
    let mut gt = GroundTruthBuilder::new(source);
    for row in rows {
        if drop_noisy && row.possibly_noisy {
            continue;
        }
        gt.push(
            &row.image,
            GtLesion {
                bbox: Box3::new(row.bbox, 0.0, 0.0),
                attrs: LesionAttrs {
                    long_diameter_mm: Some(row.long_diameter_mm),
                    lesion_type: Some(row.lesion_type),
                    slice_interval_mm: Some(row.slice_interval_mm),
                },
            },
        );
    }
    gt.build()
}
