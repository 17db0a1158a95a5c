//! The statistics of the real DeepLesion metadata that the generator draws
//! from, fitted to the official val/test tables and kept in the repo as the
//! small table `fitted_stats.csv` beside this file.
//!
//! Regenerate the table with
//! `cargo run -p uld -- synth --fit-stats ../shared/data/deeplesion/DL_info_val.csv ../shared/data/deeplesion/DL_info_test.csv --stats-out crates/uld-data/src/synth/fitted_stats.csv`;
//! a test checks that the committed table equals a fresh fit.
//!
//! Continuous quantities are stored as quantiles at [`QUANTILE_LEVELS`]
//! (denser in the tails, where lesion sizes are long-tailed) and sampled by
//! their piecewise-linear inverse distribution; counts are stored as
//! histograms.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rand::Rng;
use uld_core::{Error, Location, Result};

use crate::deeplesion::{Gender, LesionRecord};

/// The committed table (see the module docs for the command that writes it).
pub const FITTED_CSV: &str = include_str!("fitted_stats.csv");

/// Cumulative probabilities at which continuous quantities are tabulated.
pub const QUANTILE_LEVELS: [f64; 25] = [
    0.0, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7,
    0.75, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99, 1.0,
];

/// Share of patients in train / val / test in the full DeepLesion release
/// (22,919 / 4,889 / 4,927 lesions, split by patient); the val/test tables
/// alone cannot tell it, so it is the published figure.
pub const SPLIT_FRACTIONS: [f64; 3] = [0.70, 0.15, 0.15];

/// A continuous distribution given by its quantiles at [`QUANTILE_LEVELS`].
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileTable(pub Vec<f64>);

impl QuantileTable {
    /// Quantiles of `values` (linear interpolation between order statistics).
    pub fn fit(mut values: Vec<f64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let pos = q * (values.len() - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(values.len() - 1);
            values[lo] + (values[hi] - values[lo]) * (pos - lo as f64)
        };
        Some(Self(
            QUANTILE_LEVELS.iter().map(|&q| round4(at(q))).collect(),
        ))
    }

    /// The value at cumulative probability `u` in [0, 1].
    pub fn quantile(&self, u: f64) -> f64 {
        let u = u.clamp(0.0, 1.0);
        let i = QUANTILE_LEVELS
            .windows(2)
            .position(|w| u <= w[1])
            .unwrap_or(QUANTILE_LEVELS.len() - 2);
        let (q0, q1) = (QUANTILE_LEVELS[i], QUANTILE_LEVELS[i + 1]);
        let t = (u - q0) / (q1 - q0);
        self.0[i] + (self.0[i + 1] - self.0[i]) * t
    }

    pub fn sample(&self, rng: &mut impl Rng) -> f64 {
        self.quantile(rng.random())
    }
}

/// A histogram of whole-number (or categorical) outcomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram<K: Ord>(pub BTreeMap<K, u64>);

impl<K: Ord + Copy> Histogram<K> {
    pub fn fit(keys: impl IntoIterator<Item = K>) -> Self {
        let mut counts = BTreeMap::new();
        for k in keys {
            *counts.entry(k).or_insert(0) += 1;
        }
        Self(counts)
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// The share of `key` among all counts.
    pub fn fraction(&self, key: K) -> f64 {
        self.0.get(&key).copied().unwrap_or(0) as f64 / self.total().max(1) as f64
    }

    /// Draws a key with probability proportional to its count, among the keys
    /// `allowed` accepts; `None` when it accepts none.
    pub fn sample_where(&self, rng: &mut impl Rng, allowed: impl Fn(K) -> bool) -> Option<K> {
        let total: u64 = self
            .0
            .iter()
            .filter(|(k, _)| allowed(**k))
            .map(|(_, n)| n)
            .sum();
        if total == 0 {
            return None;
        }
        let mut pick = rng.random_range(0..total);
        for (k, n) in &self.0 {
            if !allowed(*k) {
                continue;
            }
            if pick < *n {
                return Some(*k);
            }
            pick -= n;
        }
        None
    }

    pub fn sample(&self, rng: &mut impl Rng) -> Option<K> {
        self.sample_where(rng, |_| true)
    }
}

/// Everything the generator draws from the real metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedStats {
    /// Rows the table was fitted on.
    pub rows: u64,
    /// Long RECIST diameter in mm.
    pub long_diameter_mm: QuantileTable,
    /// Short / long RECIST diameter.
    pub short_long_ratio: QuantileTable,
    /// In-plane pixel spacing (mm) of the 512x512 images.
    pub pixel_spacing_mm: QuantileTable,
    pub age_years: QuantileTable,
    /// Key images holding n lesions.
    pub lesions_per_image: Histogram<u32>,
    /// Series holding n key images.
    pub key_images_per_series: Histogram<u32>,
    /// Patients with n series.
    pub series_per_patient: Histogram<u32>,
    /// Lesions per slice interval, keyed by the interval in micrometres.
    pub slice_interval_um: Histogram<u32>,
    /// Lesions per `Coarse_lesion_type` code (1..=8).
    pub lesion_types: Histogram<i32>,
    /// The most common `DICOM_windows` of each lesion type.
    pub windows: BTreeMap<i32, Vec<[f32; 2]>>,
    /// Share of male patients.
    pub male_fraction: f64,
}

impl FittedStats {
    /// The committed table.
    pub fn builtin() -> Self {
        Self::from_csv(FITTED_CSV, Path::new("fitted_stats.csv"))
            .expect("the committed fitted_stats.csv parses (checked by a unit test)")
    }

    /// Fits the statistics to labelled DeepLesion rows (the val/test tables).
    pub fn fit(records: &[LesionRecord]) -> Result<Self> {
        let no_rows = || Error::invalid("records", "cannot fit statistics to an empty table");
        let typed: Vec<&LesionRecord> = records
            .iter()
            .filter(|r| r.lesion_type.code() > 0)
            .collect();
        let quantiles = |values: Vec<f64>| QuantileTable::fit(values).ok_or_else(no_rows);
        let mut per_image: BTreeMap<&str, u32> = BTreeMap::new();
        let mut images_per_series: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        let mut series_per_patient: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
        let mut gender_per_patient: BTreeMap<u32, Gender> = BTreeMap::new();
        for r in records {
            *per_image.entry(&r.file_name).or_default() += 1;
            images_per_series
                .entry(r.series_id())
                .or_default()
                .insert(&r.file_name);
            series_per_patient
                .entry(r.patient)
                .or_default()
                .insert(r.series_id());
            gender_per_patient.insert(r.patient, r.gender);
        }
        type Counted = (u64, Vec<[f32; 2]>);
        let mut window_counts: BTreeMap<(i32, String), Counted> = BTreeMap::new();
        for r in &typed {
            let key = (r.lesion_type.code(), format!("{:?}", r.dicom_windows));
            window_counts
                .entry(key)
                .or_insert((0, r.dicom_windows.clone()))
                .0 += 1;
        }
        let mut windows: BTreeMap<i32, (u64, Vec<[f32; 2]>)> = BTreeMap::new();
        for ((code, _), (n, w)) in window_counts {
            let best = windows.entry(code).or_insert((0, Vec::new()));
            if n > best.0 {
                *best = (n, w);
            }
        }
        let males = gender_per_patient
            .values()
            .filter(|g| **g == Gender::Male)
            .count();
        Ok(Self {
            rows: records.len() as u64,
            long_diameter_mm: quantiles(
                records.iter().map(LesionRecord::long_diameter_mm).collect(),
            )?,
            short_long_ratio: quantiles(
                records
                    .iter()
                    .filter(|r| r.diameters_px[0] > 0.0)
                    .map(|r| f64::from(r.diameters_px[1] / r.diameters_px[0]))
                    .collect(),
            )?,
            pixel_spacing_mm: quantiles(records.iter().map(|r| r.spacing[0]).collect())?,
            age_years: quantiles(
                records
                    .iter()
                    .filter_map(|r| r.age.map(f64::from))
                    .collect(),
            )?,
            lesions_per_image: Histogram::fit(per_image.values().copied()),
            key_images_per_series: Histogram::fit(
                images_per_series.values().map(|s| s.len() as u32),
            ),
            series_per_patient: Histogram::fit(series_per_patient.values().map(|s| s.len() as u32)),
            slice_interval_um: Histogram::fit(records.iter().map(|r| interval_um(r.spacing[2]))),
            lesion_types: Histogram::fit(typed.iter().map(|r| r.lesion_type.code())),
            windows: windows
                .into_iter()
                .map(|(code, (_, w))| (code, w))
                .collect(),
            male_fraction: round4(males as f64 / gender_per_patient.len().max(1) as f64),
        })
    }

    /// Fits the statistics to the rows of several `DL_info` tables.
    pub fn fit_files(paths: &[impl AsRef<Path>]) -> Result<Self> {
        let mut records = Vec::new();
        for path in paths {
            records.extend(crate::deeplesion::read_dl_info(path)?);
        }
        Self::fit(&records)
    }

    /// The table as CSV: `statistic,key,value` rows under a comment header.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        out.push_str("# DeepLesion metadata statistics the synthetic generator draws from.\n");
        out.push_str("# Fitted to DL_info_val.csv + DL_info_test.csv by:\n");
        out.push_str(
            "#   cargo run -p uld -- synth --fit-stats ../shared/data/deeplesion/DL_info_val.csv \
             ../shared/data/deeplesion/DL_info_test.csv --stats-out crates/uld-data/src/synth/fitted_stats.csv\n",
        );
        out.push_str("statistic,key,value\n");
        let mut row = |stat: &str, key: String, value: String| {
            out.push_str(&format!("{stat},{key},{value}\n"));
        };
        row("rows", "all".into(), self.rows.to_string());
        row(
            "male_fraction",
            "patients".into(),
            self.male_fraction.to_string(),
        );
        for (name, table) in [
            ("long_diameter_mm", &self.long_diameter_mm),
            ("short_long_ratio", &self.short_long_ratio),
            ("pixel_spacing_mm", &self.pixel_spacing_mm),
            ("age_years", &self.age_years),
        ] {
            for (q, v) in QUANTILE_LEVELS.iter().zip(&table.0) {
                row(name, format!("q{q}"), v.to_string());
            }
        }
        for (name, hist) in [
            ("lesions_per_image", &self.lesions_per_image),
            ("key_images_per_series", &self.key_images_per_series),
            ("series_per_patient", &self.series_per_patient),
            ("slice_interval_um", &self.slice_interval_um),
        ] {
            for (k, n) in &hist.0 {
                row(name, k.to_string(), n.to_string());
            }
        }
        for (k, n) in &self.lesion_types.0 {
            row("lesion_type", k.to_string(), n.to_string());
        }
        for (k, w) in &self.windows {
            let text: Vec<String> = w.iter().map(|[lo, hi]| format!("{lo} {hi}")).collect();
            row("window", k.to_string(), text.join(" "));
        }
        out
    }

    /// Parses [`to_csv`](Self::to_csv)'s layout; `path` names it in errors.
    pub fn from_csv(text: &str, path: &Path) -> Result<Self> {
        let mut csv = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .from_reader(text.as_bytes());
        let mut quantiles: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut hists: BTreeMap<String, BTreeMap<u32, u64>> = BTreeMap::new();
        let mut types = BTreeMap::new();
        let mut windows = BTreeMap::new();
        let mut rows = None;
        let mut male_fraction = None;
        for record in csv.records() {
            let record = record
                .map_err(|e| Error::data(Location::file(path), format!("unreadable row: {e}")))?;
            let line = record.position().map_or(0, |p| p.line());
            let bad = |field: &str, message: String| {
                Error::data(Location::file(path).line(line).field(field), message)
            };
            let (stat, key, value) = (&record[0], &record[1], &record[2]);
            let number = |text: &str| -> Result<f64> {
                text.trim()
                    .parse()
                    .map_err(|_| bad("value", format!("`{text}` is not a number")))
            };
            let whole = |text: &str, field: &str| -> Result<u64> {
                text.trim()
                    .parse()
                    .map_err(|_| bad(field, format!("`{text}` is not a count")))
            };
            match stat {
                "rows" => rows = Some(whole(value, "value")?),
                "male_fraction" => male_fraction = Some(number(value)?),
                "long_diameter_mm" | "short_long_ratio" | "pixel_spacing_mm" | "age_years" => {
                    quantiles
                        .entry(stat.to_string())
                        .or_default()
                        .push(number(value)?);
                }
                "lesions_per_image"
                | "key_images_per_series"
                | "series_per_patient"
                | "slice_interval_um" => {
                    hists
                        .entry(stat.to_string())
                        .or_default()
                        .insert(whole(key, "key")? as u32, whole(value, "value")?);
                }
                "lesion_type" => {
                    types.insert(whole(key, "key")? as i32, whole(value, "value")?);
                }
                "window" => {
                    let v: Vec<f32> = value
                        .split_whitespace()
                        .map(|t| number(t).map(|x| x as f32))
                        .collect::<Result<_>>()?;
                    if v.len() % 2 != 0 {
                        return Err(bad("value", "windows come in pairs".into()));
                    }
                    windows.insert(
                        whole(key, "key")? as i32,
                        v.chunks(2).map(|c| [c[0], c[1]]).collect(),
                    );
                }
                other => return Err(bad("statistic", format!("unknown statistic `{other}`"))),
            }
        }
        let missing = |what: &str| {
            Error::data(
                Location::file(path),
                format!("the table has no `{what}` rows"),
            )
        };
        let mut quantile = |name: &str| -> Result<QuantileTable> {
            let v = quantiles.remove(name).ok_or_else(|| missing(name))?;
            if v.len() != QUANTILE_LEVELS.len() {
                return Err(Error::data(
                    Location::file(path).field(name),
                    format!(
                        "expected {} quantiles, found {}",
                        QUANTILE_LEVELS.len(),
                        v.len()
                    ),
                ));
            }
            Ok(QuantileTable(v))
        };
        let long_diameter_mm = quantile("long_diameter_mm")?;
        let short_long_ratio = quantile("short_long_ratio")?;
        let pixel_spacing_mm = quantile("pixel_spacing_mm")?;
        let age_years = quantile("age_years")?;
        let mut hist = |name: &str| -> Result<Histogram<u32>> {
            hists
                .remove(name)
                .map(Histogram)
                .ok_or_else(|| missing(name))
        };
        let stats = Self {
            rows: rows.ok_or_else(|| missing("rows"))?,
            long_diameter_mm,
            short_long_ratio,
            pixel_spacing_mm,
            age_years,
            lesions_per_image: hist("lesions_per_image")?,
            key_images_per_series: hist("key_images_per_series")?,
            series_per_patient: hist("series_per_patient")?,
            slice_interval_um: hist("slice_interval_um")?,
            lesion_types: Histogram(types),
            windows,
            male_fraction: male_fraction.ok_or_else(|| missing("male_fraction"))?,
        };
        if stats.lesion_types.total() == 0 {
            return Err(missing("lesion_type"));
        }
        Ok(stats)
    }
}

/// A slice interval in whole micrometres (the tables' intervals are exact
/// to 0.01 mm), so it can key a histogram.
pub fn interval_um(mm: f64) -> u32 {
    (mm * 1000.0).round() as u32
}

fn round4(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn committed_table_parses_and_round_trips() {
        let stats = FittedStats::builtin();
        let again = FittedStats::from_csv(&stats.to_csv(), Path::new("x")).unwrap();
        assert_eq!(stats, again);
        assert_eq!(stats.to_csv(), FITTED_CSV);
    }

    #[test]
    fn quantile_table_inverts_linearly() {
        let t = QuantileTable::fit((0..=100).map(f64::from).collect()).unwrap();
        assert_eq!(t.quantile(0.0), 0.0);
        assert_eq!(t.quantile(1.0), 100.0);
        assert!((t.quantile(0.5) - 50.0).abs() < 1e-9);
        assert!((t.quantile(0.12) - 12.0).abs() < 1e-9);
    }

    #[test]
    fn histogram_sampling_respects_the_filter_and_the_weights() {
        let h = Histogram::fit([1u32, 1, 1, 2, 3]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        assert_eq!(h.sample_where(&mut rng, |k| k == 3), Some(3));
        assert_eq!(h.sample_where(&mut rng, |k| k > 5), None);
        let ones = (0..5000).filter(|_| h.sample(&mut rng) == Some(1)).count();
        assert!((ones as f64 / 5000.0 - 0.6).abs() < 0.03, "{ones}");
    }

    #[test]
    fn malformed_tables_name_the_line_and_field() {
        let err = FittedStats::from_csv("statistic,key,value\nrows,all,many\n", Path::new("t.csv"))
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("t.csv") && text.contains("value") && text.contains("many"),
            "{text}"
        );
        let err = FittedStats::from_csv("statistic,key,value\nrows,all,3\n", Path::new("t.csv"))
            .unwrap_err();
        assert!(err.to_string().contains("long_diameter_mm"), "{err}");
    }
}
