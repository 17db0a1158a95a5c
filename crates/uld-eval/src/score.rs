//! Matching detections to ground truth: one pass in score order that marks
//! every detection a hit, a false positive or a duplicate.
//!
//! Rules shared by every reference (3DCE/MULAN `FROC`, Lesion-Harvester
//! part 3, LENS `FROC`):
//!
//! * Detections of all units are sorted by score, highest first. uld sorts
//!   **stably**: equal scores keep the order of the detection file (first
//!   row first). The references use `np.argsort(scores)[::-1]`, whose tie
//!   order depends on numpy's sort kind and version, so with ties no single
//!   reference order exists; without ties every order agrees.
//! * A detection whose best overlap with the unit's lesions is below the
//!   threshold (or whose unit has no lesion) is a **false positive**.
//! * Otherwise it marks **every** lesion it overlaps at or above the
//!   threshold that is not yet found; one detection can find several
//!   lesions. If all of them were found already it is a **duplicate**:
//!   neither a hit nor a false positive for FROC.
//! * For AP (Lesion-Harvester, following Pascal VOC) a duplicate is a false
//!   positive, counted once **per already-found lesion it overlaps** (the
//!   reference adds 1 to `nMissAP` inside its loop over lesions), so a
//!   detection can add a hit and an AP false positive at once.
//! * NaN overlaps (only from boxes of zero inclusive area): 3DCE/MULAN take
//!   `overlaps.max()` which is NaN, so the detection is never a false
//!   positive; LENS tests `np.isnan` and makes it one. Both are followed.
//!
//! Breakdowns keep every detection and drop lesions outside the group
//! (`include` mask), as MULAN's per-tag FROC does: a detection on an
//! excluded lesion becomes a false positive.

use std::collections::HashMap;

use uld_core::{Box2, Box3, Error, Result};

use crate::detections::DetectionSet;
use crate::gt::{GroundTruth, normalize_key};
use crate::overlap::{iobb3_inclusive, iou_harvester, iou_inclusive};
use crate::protocol::Protocol;

/// Detections grouped into the protocol's detection units, tied to ground
/// truth units.
#[derive(Debug, Clone)]
pub struct Candidates {
    pub protocol: Protocol,
    /// Unit index (into `GroundTruth::units`) of each candidate.
    pub unit: Vec<u32>,
    pub score: Vec<f32>,
    /// Enclosing 3D box (keyslice: the 2D box on slice 0).
    pub bbox: Vec<Box3>,
    /// Harvester: the candidate's per-slice boxes, `parts[part_range[c]]`.
    parts: Vec<(i32, i32, Box2)>,
    part_range: Vec<(u32, u32)>,
    /// Candidate indices, highest score first, ties in file order.
    pub order: Vec<u32>,
    /// Detection rows whose key is not a ground-truth unit (ignored).
    pub ignored_rows: usize,
    /// A few of those keys, for messages.
    pub ignored_keys: Vec<String>,
}

impl Candidates {
    /// Groups `dets` for `protocol` and ties them to `gt`'s units.
    ///
    /// Keyslice: every row is a candidate. Harvester and LENS: rows with
    /// the same key and `track` form one candidate (a tracklet), a row
    /// without a track is one by itself; the score is the highest row score
    /// (Lesion-Harvester: `np.array(confs).max()`); LENS uses the box
    /// enclosing all rows. Rows on keys the ground truth does not have are
    /// ignored and counted (LENS evaluates only its own sub-volumes;
    /// Lesion-Harvester would raise a `KeyError`).
    pub fn build(protocol: Protocol, gt: &GroundTruth, dets: &DetectionSet) -> Result<Self> {
        let index = gt.index();
        let key_unit: Vec<Option<u32>> = dets
            .keys()
            .iter()
            .map(|k| index.get(normalize_key(k)).map(|&u| u as u32))
            .collect();
        let n = dets.len();
        let mut c = Self {
            protocol,
            unit: Vec::with_capacity(n),
            score: Vec::with_capacity(n),
            bbox: Vec::with_capacity(n),
            parts: Vec::new(),
            part_range: Vec::new(),
            order: Vec::new(),
            ignored_rows: 0,
            ignored_keys: Vec::new(),
        };
        let mut tracks: HashMap<(u32, u32), u32> = HashMap::new();
        // Per-candidate part lists before flattening (harvester/lens).
        let mut cand_parts: Vec<Vec<(i32, i32, Box2)>> = Vec::new();
        for (row_index, row) in dets.rows.iter().enumerate() {
            let Some(unit) = key_unit[row.key as usize] else {
                c.ignored_rows += 1;
                if c.ignored_keys.len() < 5 {
                    let k = dets.key(row.key).to_string();
                    if !c.ignored_keys.contains(&k) {
                        c.ignored_keys.push(k);
                    }
                }
                continue;
            };
            let d = &row.det;
            if protocol == Protocol::KeySlice {
                c.unit.push(unit);
                c.score.push(d.score);
                c.bbox.push(Box3::new(d.bbox, 0.0, 0.0));
                continue;
            }
            let (z1, z2) = d.slices.ok_or_else(|| {
                Error::invalid(
                    "detections",
                    format!(
                        "row {} (key {}) has no slice: the {} protocol needs z1,z2",
                        row_index + 1,
                        dets.key(row.key),
                        protocol.name()
                    ),
                )
            })?;
            let existing = d.track.and_then(|t| tracks.get(&(unit, t)).copied());
            match existing {
                Some(ci) => {
                    let ci = ci as usize;
                    c.score[ci] = c.score[ci].max(d.score);
                    let b = &mut c.bbox[ci];
                    *b = Box3::new(
                        Box2::new(
                            b.xy.x1.min(d.bbox.x1),
                            b.xy.y1.min(d.bbox.y1),
                            b.xy.x2.max(d.bbox.x2),
                            b.xy.y2.max(d.bbox.y2),
                        ),
                        b.z1.min(z1 as f32),
                        b.z2.max(z2 as f32),
                    );
                    cand_parts[ci].push((z1, z2, d.bbox));
                }
                None => {
                    let ci = c.unit.len() as u32;
                    if let Some(t) = d.track {
                        tracks.insert((unit, t), ci);
                    }
                    c.unit.push(unit);
                    c.score.push(d.score);
                    c.bbox.push(Box3::new(d.bbox, z1 as f32, z2 as f32));
                    cand_parts.push(vec![(z1, z2, d.bbox)]);
                }
            }
        }
        if protocol == Protocol::Harvester {
            for parts in cand_parts {
                let start = c.parts.len() as u32;
                c.parts.extend(parts);
                c.part_range.push((start, c.parts.len() as u32));
            }
        }
        c.order = score_order(&c.score);
        Ok(c)
    }

    pub fn len(&self) -> usize {
        self.unit.len()
    }

    pub fn is_empty(&self) -> bool {
        self.unit.is_empty()
    }

    /// The harvester candidate's first box on slice `z`.
    fn box_on_slice(&self, cand: usize, z: i32) -> Option<&Box2> {
        let (a, b) = self.part_range[cand];
        self.parts[a as usize..b as usize]
            .iter()
            .find(|(z1, z2, _)| *z1 <= z && z <= *z2)
            .map(|(_, _, b)| b)
    }

    /// Overlap of candidate `cand` with lesion box `gt` under the protocol.
    fn overlap(&self, cand: usize, gt: &Box3) -> f64 {
        match self.protocol {
            Protocol::KeySlice => iou_inclusive(&self.bbox[cand].xy, &gt.xy),
            Protocol::Harvester => {
                // The 2D annotation sits on slice gt.z1 == gt.z2 (checked by
                // `evaluate`); ground-truth slices are never negative.
                let z = gt.z1 as i32;
                match self.box_on_slice(cand, z) {
                    Some(b) => iou_harvester(b, &gt.xy),
                    None => 0.0,
                }
            }
            Protocol::Lens => iobb3_inclusive(&self.bbox[cand], gt),
        }
    }
}

/// Indices sorted by score, highest first, equal scores in index order.
/// One `u64` key per candidate (order-preserving score bits, then index)
/// keeps the sort unstable-fast and the result identical to a stable sort.
pub fn score_order(scores: &[f32]) -> Vec<u32> {
    let mut keys: Vec<u64> = scores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            // -0.0 and 0.0 are one score (numpy compares them equal).
            let bits = (s + 0.0).to_bits();
            // Map f32 to u32 preserving order, then invert for descending.
            let ordered = if bits >> 31 == 1 {
                !bits
            } else {
                bits | 0x8000_0000
            };
            (((!ordered) as u64) << 32) | i as u64
        })
        .collect();
    keys.sort_unstable();
    keys.into_iter().map(|k| k as u32).collect()
}

/// What one detection did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Outcome {
    pub score: f32,
    /// Unit index.
    pub unit: u32,
    /// Lesions first found by this detection.
    pub new_hits: u16,
    /// False positives this detection adds to the AP count.
    pub ap_false_positives: u16,
    /// Counted as a FROC false positive.
    pub false_positive: bool,
}

/// What each detection did, in score order (position `i` is candidate
/// `order[i]`).
#[derive(Debug, Clone, Default)]
pub struct Outcomes {
    pub detections: Vec<Outcome>,
    /// Lesions per unit (included ones only).
    pub unit_lesions: Vec<u32>,
}

impl Outcomes {
    pub fn len(&self) -> usize {
        self.detections.len()
    }

    pub fn is_empty(&self) -> bool {
        self.detections.is_empty()
    }

    pub fn units(&self) -> usize {
        self.unit_lesions.len()
    }

    pub fn lesions(&self) -> u64 {
        self.unit_lesions.iter().map(|&n| n as u64).sum()
    }
}

/// Runs the matching; `include[u][l]` says whether lesion `l` of unit `u`
/// counts (`None`: all do).
///
/// Whether a detection hits depends only on the detections of its own unit
/// ranked above it, so units are processed one at a time (each unit's
/// detections in score order, cache-friendly), and the results are laid out
/// in the global score order afterwards; this equals one pass in global order.
pub fn match_detections(
    gt: &GroundTruth,
    cands: &Candidates,
    include: Option<&[Vec<bool>]>,
) -> Outcomes {
    let protocol = cands.protocol;
    let th = protocol.hit_threshold();
    let lens = protocol == Protocol::Lens;
    let included = |u: usize, l: usize| include.is_none_or(|m| m[u][l]);
    let units = gt.units.len();
    // Counting sort of the global order by unit: per-unit lists, score order.
    let mut start = vec![0u32; units + 1];
    for &u in &cands.unit {
        start[u as usize + 1] += 1;
    }
    for u in 0..units {
        start[u + 1] += start[u];
    }
    let mut fill = start.clone();
    let mut by_unit = vec![0u32; cands.len()];
    for &c in &cands.order {
        let u = cands.unit[c as usize] as usize;
        by_unit[fill[u] as usize] = c;
        fill[u] += 1;
    }
    let mut per_cand = vec![Outcome::default(); cands.len()];
    let mut hit: Vec<bool> = Vec::new();
    for (u, unit) in gt.units.iter().enumerate() {
        let lesions = &unit.lesions;
        hit.clear();
        hit.resize(lesions.len(), false);
        for &c in &by_unit[start[u] as usize..start[u + 1] as usize] {
            let c = c as usize;
            let mut best = f64::NEG_INFINITY;
            let mut any = false;
            let mut any_nan = false;
            let mut new = 0u16;
            let mut dup = 0u16;
            for (l, lesion) in lesions.iter().enumerate() {
                if !included(u, l) {
                    continue;
                }
                any = true;
                let ov = cands.overlap(c, &lesion.bbox);
                if ov.is_nan() {
                    any_nan = true;
                    continue;
                }
                best = best.max(ov);
                if ov >= th {
                    if hit[l] {
                        dup = dup.saturating_add(1);
                    } else {
                        hit[l] = true;
                        new = new.saturating_add(1);
                    }
                }
            }
            let fp = if lens {
                !any || any_nan || best < th
            } else {
                !any || (!any_nan && best < th)
            };
            per_cand[c] = Outcome {
                score: cands.score[c],
                unit: u as u32,
                new_hits: new,
                ap_false_positives: if fp { 1 } else { dup },
                false_positive: fp,
            };
        }
    }
    Outcomes {
        detections: cands.order.iter().map(|&c| per_cand[c as usize]).collect(),
        unit_lesions: gt
            .units
            .iter()
            .enumerate()
            .map(|(u, unit)| (0..unit.lesions.len()).filter(|&l| included(u, l)).count() as u32)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_order_is_descending_and_stable() {
        let s = [0.5, 0.9, 0.5, -1.0, 0.9, f32::INFINITY, -0.0, 0.0];
        let o = score_order(&s);
        assert_eq!(o, vec![5, 1, 4, 0, 2, 6, 7, 3]);
    }
}
