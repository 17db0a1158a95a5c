//! What a user wants to know first about a DeepLesion table: counts per
//! split, lesions per image, lesion sizes in mm, slice intervals, types.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use super::{LesionRecord, LesionType, Split};

/// Upper edges (mm) of the long-diameter bins; the last bin is open.
pub const SIZE_BINS_MM: [f64; 5] = [10.0, 20.0, 30.0, 50.0, 100.0];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetStats {
    pub lesions: usize,
    pub key_images: usize,
    pub patients: usize,
    pub noisy_lesions: usize,
    pub per_split: BTreeMap<String, SplitCounts>,
    /// Key images holding exactly n lesions, n = 1, 2, ...
    pub lesions_per_image: BTreeMap<usize, usize>,
    /// Long RECIST diameter in mm: quantiles and a histogram over [`SIZE_BINS_MM`].
    pub long_diameter_mm: Quantiles,
    pub size_histogram: Vec<(String, usize)>,
    /// Lesions per slice interval (mm, as written in the table).
    pub slice_intervals_mm: BTreeMap<String, usize>,
    pub pixel_spacing_mm: Quantiles,
    pub lesion_types: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitCounts {
    pub lesions: usize,
    pub key_images: usize,
    pub patients: usize,
    pub noisy_lesions: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quantiles {
    pub min: f64,
    pub p10: f64,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
    pub mean: f64,
}

impl Quantiles {
    /// Nearest-rank quantiles; `None` for no values.
    pub fn of(mut values: Vec<f64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Some(Self {
            min: values[0],
            p10: at(0.1),
            median: at(0.5),
            p90: at(0.9),
            max: values[values.len() - 1],
            mean: values.iter().sum::<f64>() / values.len() as f64,
        })
    }
}

impl DatasetStats {
    /// Statistics of a non-empty table; `None` when it has no rows.
    pub fn of(records: &[LesionRecord]) -> Option<Self> {
        let long = Quantiles::of(records.iter().map(LesionRecord::long_diameter_mm).collect())?;
        let spacing = Quantiles::of(records.iter().map(|r| r.spacing[0]).collect())?;
        let per_image = count_by(records.iter().map(|r| r.file_name.as_str()));
        let mut lesions_per_image = BTreeMap::new();
        for n in per_image.values() {
            *lesions_per_image.entry(*n).or_default() += 1;
        }
        let per_split = Split::ALL
            .iter()
            .filter_map(|&split| {
                let rows: Vec<&LesionRecord> =
                    records.iter().filter(|r| r.split == split).collect();
                (!rows.is_empty()).then(|| (split.name().to_string(), SplitCounts::of(&rows)))
            })
            .collect();
        let mut size_histogram: Vec<(String, usize)> = Vec::new();
        let mut lower = 0.0;
        for upper in SIZE_BINS_MM.iter().copied().chain([f64::INFINITY]) {
            let n = records
                .iter()
                .filter(|r| (lower..upper).contains(&r.long_diameter_mm()))
                .count();
            let label = if upper.is_finite() {
                format!("{lower}-{upper} mm")
            } else {
                format!(">= {lower} mm")
            };
            size_histogram.push((label, n));
            lower = upper;
        }
        let mut lesion_types = BTreeMap::new();
        for t in LesionType::ALL {
            let n = records.iter().filter(|r| r.lesion_type == t).count();
            if n > 0 {
                lesion_types.insert(t.name().to_string(), n);
            }
        }
        let all: Vec<&LesionRecord> = records.iter().collect();
        let totals = SplitCounts::of(&all);
        Some(Self {
            lesions: totals.lesions,
            key_images: totals.key_images,
            patients: totals.patients,
            noisy_lesions: totals.noisy_lesions,
            per_split,
            lesions_per_image,
            long_diameter_mm: long,
            size_histogram,
            slice_intervals_mm: count_by(records.iter().map(|r| format!("{}", r.spacing[2])))
                .into_iter()
                .collect(),
            pixel_spacing_mm: spacing,
            lesion_types,
        })
    }
}

impl SplitCounts {
    fn of(rows: &[&LesionRecord]) -> Self {
        Self {
            lesions: rows.len(),
            key_images: rows
                .iter()
                .map(|r| &r.file_name)
                .collect::<BTreeSet<_>>()
                .len(),
            patients: rows
                .iter()
                .map(|r| r.patient)
                .collect::<BTreeSet<_>>()
                .len(),
            noisy_lesions: rows.iter().filter(|r| r.possibly_noisy).count(),
        }
    }
}

fn count_by<K: Ord>(keys: impl Iterator<Item = K>) -> BTreeMap<K, usize> {
    let mut counts = BTreeMap::new();
    for k in keys {
        *counts.entry(k).or_default() += 1;
    }
    counts
}

impl fmt::Display for DatasetStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} lesions on {} key images of {} patients ({} possibly noisy)",
            self.lesions, self.key_images, self.patients, self.noisy_lesions
        )?;
        for (split, c) in &self.per_split {
            writeln!(
                f,
                "  {split:<5} {:>6} lesions  {:>6} key images  {:>5} patients  {:>3} noisy",
                c.lesions, c.key_images, c.patients, c.noisy_lesions
            )?;
        }
        let per_image: Vec<String> = self
            .lesions_per_image
            .iter()
            .map(|(n, images)| format!("{n}: {images}"))
            .collect();
        writeln!(
            f,
            "lesions per key image (n: images): {}",
            per_image.join(", ")
        )?;
        let q = &self.long_diameter_mm;
        writeln!(
            f,
            "long diameter mm: min {:.1}, p10 {:.1}, median {:.1}, p90 {:.1}, max {:.1}, mean {:.1}",
            q.min, q.p10, q.median, q.p90, q.max, q.mean
        )?;
        for (label, n) in &self.size_histogram {
            writeln!(f, "  {label:<14} {n:>6}")?;
        }
        let intervals: Vec<String> = self
            .slice_intervals_mm
            .iter()
            .map(|(mm, n)| format!("{mm} mm: {n}"))
            .collect();
        writeln!(f, "slice interval (lesions): {}", intervals.join(", "))?;
        let s = &self.pixel_spacing_mm;
        writeln!(
            f,
            "pixel spacing mm: min {:.3}, median {:.3}, max {:.3}",
            s.min, s.median, s.max
        )?;
        let types: Vec<String> = self
            .lesion_types
            .iter()
            .map(|(t, n)| format!("{t}: {n}"))
            .collect();
        write!(f, "lesion types: {}", types.join(", "))
    }
}
