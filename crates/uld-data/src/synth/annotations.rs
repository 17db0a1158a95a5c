//! The complete annotations: the Lesion-Harvester JSON layout per split and
//! a manifest of every lesion's 3D extent and whether it is labelled.
//!
//! Lesion-Harvester layout (as in `Revised-Test1071.json`): keys are
//! sub-volumes `PPPPPP_SS_RR_FFF-LLL.annot` (`FFF-LLL` is the shipped
//! `Slice_range`), values map a slice index inside the sub-volume (PNG number
//! minus `FFF`, as a string) to boxes `[x1, y1, x2, y2, z, z]`. Each lesion
//! has one box, on its largest cross-section (for a lesion whose largest
//! cross-section lies outside the sub-volume: on the sub-volume slice nearest
//! to it), and box numbers follow the file convention of `DL_info.csv`
//! (1-based, RECIST extent padded by 5 px), so a labelled lesion's box equals
//! its row's `Bounding_boxes`. The partial (`RECIST-Box-*`) layout is the same
//! without the `.annot` suffix and with the labelled lesions only.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uld_core::{Box2, Error, Location, Result};

use super::phantom::{Region, Site};
use super::plan::{Plan, PlannedLesion, PlannedSeries};
use crate::deeplesion::Split;

/// The manifest's file name inside a synthetic dataset.
pub const MANIFEST_FILE: &str = "synth_manifest.json";

/// Every lesion of a synthetic dataset, labelled or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// What the coordinates mean.
    pub conventions: String,
    pub seed: u64,
    pub missing_fraction: f64,
    pub series: Vec<ManifestSeries>,
    pub lesions: Vec<ManifestLesion>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestSeries {
    pub series_id: String,
    pub patient: u32,
    pub split: String,
    pub region: String,
    pub image_size: usize,
    pub pixel_spacing_mm: f64,
    pub slice_interval_mm: f64,
    /// PNG numbers of the series run 1..=slices; only `shipped` ones exist.
    pub slices: u32,
    pub shipped: Vec<[u32; 2]>,
    pub noise_sigma_hu: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestLesion {
    pub id: usize,
    pub series_id: String,
    pub split: String,
    /// Whether the lesion has a row in `DL_info.csv`.
    pub labelled: bool,
    pub lesion_type: String,
    pub type_code: i32,
    pub site: String,
    pub lesion_hu: f32,
    /// Nominal HU of the surrounding tissue; `contrast_hu = lesion_hu - background_hu`.
    pub background_hu: f32,
    pub contrast_hu: f32,
    pub center_mm: [f64; 3],
    pub semi_axes_mm: [f64; 3],
    /// The slice of the largest cross-section (the key slice if labelled).
    pub key_slice_png: u32,
    /// First and last PNG number whose plane cuts the lesion.
    pub png_range: [u32; 2],
    /// RECIST on the key slice (0-based pixels) and its long/short axes in mm.
    pub recist: [f32; 8],
    pub long_diameter_mm: f64,
    pub short_diameter_mm: f64,
    /// The padded RECIST box on the key slice (0-based, as `DL_info.csv` rows read).
    pub key_box: [f32; 4],
    /// Union of the pixel extents over the shipped slices, `[x1, y1, x2, y2]`
    /// continuous (pixel `i` spans `[i, i+1)`), with the shipped PNG range.
    pub extent_box: [f32; 4],
    pub extent_png: [u32; 2],
    /// Per shipped slice: the padded RECIST box (0-based) and pixel extent.
    pub slices: Vec<ManifestSlice>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestSlice {
    pub png: u32,
    #[serde(rename = "box")]
    pub box_: [f32; 4],
    pub extent: [f32; 4],
}

impl ManifestLesion {
    /// The lesion's padded box on slice `png`, if it shows there.
    pub fn box_on(&self, png: u32) -> Option<Box2> {
        self.slices
            .iter()
            .find(|s| s.png == png)
            .map(|s| Box2::from(s.box_))
    }
}

fn site_name(site: Site) -> String {
    serde_json::to_value(site)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn region_name(region: Region) -> String {
    serde_json::to_value(region)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl Manifest {
    pub fn of(plan: &Plan) -> Self {
        let series = plan
            .series
            .iter()
            .map(|s| ManifestSeries {
                series_id: s.id(),
                patient: s.patient,
                split: s.split.name().to_string(),
                region: region_name(s.region),
                image_size: s.geometry.size,
                pixel_spacing_mm: s.geometry.spacing,
                slice_interval_mm: s.slice_interval_mm,
                slices: s.slices,
                shipped: s.blocks.clone(),
                noise_sigma_hu: s.noise_sigma_hu,
            })
            .collect();
        let lesions = plan
            .lesions
            .iter()
            .map(|l| manifest_lesion(&plan.series[l.series], l))
            .collect();
        Self {
            conventions:
                "pixels are 0-based with pixel centres at whole indices (DL_info.csv rows as \
                          the reader returns them); boxes [x1, y1, x2, y2]; slices are PNG numbers \
                          (1-based); mm in the phantom frame: x right, y posterior, z craniocaudal"
                    .to_string(),
            seed: plan.config.seed,
            missing_fraction: plan.config.missing_fraction,
            series,
            lesions,
        }
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::data(
                Location::file(path).line(e.line() as u64),
                format!("not a synth manifest: {e}"),
            )
        })
    }
}

fn manifest_lesion(s: &PlannedSeries, l: &PlannedLesion) -> ManifestLesion {
    let key = l.section(l.key_png).or(l.sections.first());
    let recist = key.map(|k| k.recist);
    let mut extent = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
    for sec in &l.sections {
        let e = sec.extent;
        extent = [
            extent[0].min(e.x1),
            extent[1].min(e.y1),
            extent[2].max(e.x2),
            extent[3].max(e.y2),
        ];
    }
    let spacing = s.geometry.spacing;
    ManifestLesion {
        id: l.id,
        series_id: s.id(),
        split: s.split.name().to_string(),
        labelled: l.labelled,
        lesion_type: l.lesion_type.name().to_string(),
        type_code: l.lesion_type.code(),
        site: site_name(l.site),
        lesion_hu: l.lesion_hu,
        background_hu: l.background_hu,
        contrast_hu: l.contrast_hu(),
        center_mm: l.shape.center_mm,
        semi_axes_mm: l.shape.semi_axes_mm,
        key_slice_png: l.key_png,
        png_range: l.png_range,
        recist: recist.map_or([0.0; 8], |r| r.points),
        long_diameter_mm: recist.map_or(0.0, |r| f64::from(r.long_px) * spacing),
        short_diameter_mm: recist.map_or(0.0, |r| f64::from(r.short_px) * spacing),
        key_box: recist.map_or([0.0; 4], |r| r.padded_box().to_array()),
        extent_box: if l.sections.is_empty() {
            [0.0; 4]
        } else {
            extent
        },
        extent_png: match (l.sections.first(), l.sections.last()) {
            (Some(a), Some(b)) => [a.png, b.png],
            _ => [0, 0],
        },
        slices: l
            .sections
            .iter()
            .map(|sec| ManifestSlice {
                png: sec.png,
                box_: sec.recist.padded_box().to_array(),
                extent: sec.extent.to_array(),
            })
            .collect(),
    }
}

/// A sub-volume key, `PPPPPP_SS_RR_FFF-LLL`.
pub fn subvolume_key(series_id: &str, range: [u32; 2]) -> String {
    format!("{series_id}_{:03}-{:03}", range[0], range[1])
}

/// One box in the file convention: 1-based numbers, 3 decimals, `[.., z, z]`.
fn harvester_box(b: Box2, z: u32) -> Value {
    let r = |v: f32| ((f64::from(v) + 1.0) * 1000.0).round() / 1000.0;
    let z = f64::from(z);
    Value::from(vec![r(b.x1), r(b.y1), r(b.x2), r(b.y2), z, z])
}

/// The Lesion-Harvester JSON of one split: `complete` gives every lesion in
/// every shipped sub-volume (keys with `.annot`, as the revised files);
/// otherwise the labelled lesions on their key slices (as `RECIST-Box-*`).
pub fn harvester_json(plan: &Plan, split: Split, complete: bool) -> Value {
    let mut root = Map::new();
    for (index, s) in plan
        .series
        .iter()
        .enumerate()
        .filter(|(_, s)| s.split == split)
    {
        let lesions: Vec<&PlannedLesion> =
            plan.lesions.iter().filter(|l| l.series == index).collect();
        for &block in &s.blocks {
            let mut slices: BTreeMap<u32, Vec<Value>> = BTreeMap::new();
            for l in &lesions {
                if !complete && !l.labelled {
                    continue;
                }
                let in_block = l
                    .sections
                    .iter()
                    .filter(|sec| (block[0]..=block[1]).contains(&sec.png));
                let chosen = in_block.min_by_key(|sec| sec.png.abs_diff(l.key_png));
                let Some(sec) = chosen else { continue };
                if !complete && sec.png != l.key_png {
                    continue;
                }
                let z = sec.png - block[0];
                slices
                    .entry(z)
                    .or_default()
                    .push(harvester_box(sec.recist.padded_box(), z));
            }
            if slices.is_empty() {
                continue;
            }
            let mut key = subvolume_key(&s.id(), block);
            if complete {
                key.push_str(".annot");
            }
            let value: Map<String, Value> = slices
                .into_iter()
                .map(|(z, boxes)| (z.to_string(), Value::from(boxes)))
                .collect();
            root.insert(key, Value::Object(value));
        }
    }
    Value::Object(root)
}

/// Sub-volume key -> (slice index, box `[x1, y1, x2, y2, z, z]` in the file's numbers).
pub type HarvesterBoxes = BTreeMap<String, Vec<(u32, [f64; 6])>>;

/// Reads a Lesion-Harvester JSON into `sub-volume key -> [(slice index, box in
/// the file's numbers)]`, checking its layout.
pub fn read_harvester_json(path: &Path) -> Result<HarvesterBoxes> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let bad =
        |field: &str, message: String| Error::data(Location::file(path).field(field), message);
    let root: BTreeMap<String, BTreeMap<String, Vec<[f64; 6]>>> = serde_json::from_str(&text)
        .map_err(|e| bad("", format!("not the Lesion-Harvester layout: {e}")))?;
    let mut out = BTreeMap::new();
    for (key, slices) in root {
        let mut boxes = Vec::new();
        for (slice, list) in slices {
            let z: u32 = slice
                .parse()
                .map_err(|_| bad(&key, format!("slice key `{slice}` is not a number")))?;
            for b in list {
                if b[4] != f64::from(z) || b[5] != f64::from(z) {
                    return Err(bad(
                        &key,
                        format!("box {b:?} on slice {z} has other z values"),
                    ));
                }
                boxes.push((z, b));
            }
        }
        out.insert(key, boxes);
    }
    Ok(out)
}
