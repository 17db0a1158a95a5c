//! Speed figures of the protocols on synthetic data of a chosen scale
//! (`uld bench eval` prints them).

use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uld_core::{Box2, Box3};

use crate::detections::{Detection, DetectionSet};
use crate::evaluate::{EvalConfig, evaluate};
use crate::gt::{GroundTruth, GtLesion, GtUnit, LesionAttrs};
use crate::protocol::Protocol;

/// A synthetic evaluation: `units` images or sub-volumes of 64 slices with
/// 1-5 lesions each and `per_unit` detection rows each (harvester/lens rows
/// form tracklets of 5 slices), about a third of them near a lesion.
pub fn synthetic(
    protocol: Protocol,
    units: usize,
    per_unit: usize,
    seed: u64,
) -> (GroundTruth, DetectionSet) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut gt = GroundTruth::new("synthetic");
    let mut dets = DetectionSet::new();
    let depth = if protocol == Protocol::KeySlice {
        1
    } else {
        64
    };
    for u in 0..units {
        let key = format!("{:06}_01_01_001-{:03}", u, depth);
        let mut lesions = Vec::new();
        for _ in 0..rng.random_range(1..=5) {
            let size = rng.random_range(8.0..80.0f32);
            let xy = Box2::from_center(
                rng.random_range(60.0..450.0),
                rng.random_range(60.0..450.0),
                size,
                size,
            );
            let z = rng.random_range(0..depth) as f32;
            let z2 = if protocol == Protocol::Lens {
                (z + 4.0).min(depth as f32 - 1.0)
            } else {
                z
            };
            lesions.push(GtLesion {
                bbox: Box3::new(xy, z, z2),
                attrs: LesionAttrs::default(),
            });
        }
        for i in 0..per_unit {
            let (xy, z) = if i % 3 == 0 {
                let l = &lesions[rng.random_range(0..lesions.len())].bbox;
                let j = l.xy.width() * 0.15;
                (
                    l.xy.translate(rng.random_range(-j..=j), rng.random_range(-j..=j)),
                    l.z1 as i64,
                )
            } else {
                let size = rng.random_range(8.0..80.0f32);
                let xy = Box2::from_center(
                    rng.random_range(0.0..512.0),
                    rng.random_range(0.0..512.0),
                    size,
                    size,
                );
                (xy, rng.random_range(0..depth) as i64)
            };
            let slice = if protocol == Protocol::KeySlice {
                None
            } else {
                let s = (z + (i % 5) as i64 - 2).clamp(0, depth as i64 - 1) as i32;
                Some((s, s))
            };
            dets.push(
                &key,
                Detection {
                    slices: slice,
                    bbox: xy,
                    score: rng.random(),
                    track: (protocol != Protocol::KeySlice).then_some((i / 5) as u32),
                },
            );
        }
        gt.units.push(GtUnit { key, lesions });
    }
    (gt, dets)
}

/// One timing.
#[derive(Debug, Clone)]
pub struct Timing {
    pub protocol: Protocol,
    pub units: usize,
    pub rows: usize,
    pub detections: usize,
    /// Median of `repeats` full evaluations (grouping, matching, curve,
    /// operating points, AP; no bootstrap, no breakdowns).
    pub evaluate: Duration,
    /// Median time of one bootstrap replicate.
    pub per_replicate: Duration,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Times each protocol at the given scale.
pub fn time_protocols(units: usize, per_unit: usize, repeats: usize) -> Vec<Timing> {
    [Protocol::KeySlice, Protocol::Harvester, Protocol::Lens]
        .into_iter()
        .map(|protocol| {
            let (gt, dets) = synthetic(protocol, units, per_unit, 7);
            let mut cfg = EvalConfig::new(protocol);
            cfg.bootstrap = None;
            cfg.breakdowns = false;
            let mut detections = 0;
            let mut times = Vec::new();
            for _ in 0..repeats.max(1) + 1 {
                let t = Instant::now();
                let e = evaluate(&gt, &dets, &cfg).expect("synthetic data is valid");
                times.push(t.elapsed());
                detections = e.detections;
            }
            times.remove(0);
            let reps = 5;
            cfg.bootstrap = Some(crate::BootstrapConfig {
                replicates: reps,
                ..Default::default()
            });
            let t = Instant::now();
            let _ = evaluate(&gt, &dets, &cfg).expect("synthetic data is valid");
            let with_boot = t.elapsed();
            let per_replicate = with_boot.saturating_sub(median(times.clone())) / reps as u32;
            Timing {
                protocol,
                units,
                rows: dets.len(),
                detections,
                evaluate: median(times),
                per_replicate,
            }
        })
        .collect()
}
