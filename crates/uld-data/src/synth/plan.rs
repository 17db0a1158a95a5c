//! The dataset before any pixel is rendered: patients, series, lesions, key
//! images, shipped slice ranges and the `DL_info.csv` rows.
//!
//! Each series is planned as DeepLesion was made: a radiologist measured
//! some lesions (labelled, each on the slice of its largest cross-section,
//! the key slice) and left others unmeasured; the unmeasured ones sit in the
//! shipped slices around the key slices, where a detector sees them.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use uld_core::Box2;

use super::SynthConfig;
use super::lesion::LesionShape;
use super::noise::mix;
use super::phantom::{Anatomy, Region, Site, SliceGeometry};
use super::stats::{FittedStats, SPLIT_FRACTIONS};
use crate::deeplesion::{Gender, LesionRecord, LesionType, Split, series_id};
use crate::recist::Recist;

/// Torso length (mm) the z of `Normalized_lesion_location` is relative to.
pub const TORSO_LENGTH_MM: f64 = 660.0;

#[derive(Debug, Clone)]
pub struct PlannedSeries {
    pub patient: u32,
    pub study: u32,
    pub series: u32,
    pub split: Split,
    pub region: Region,
    pub anatomy: Anatomy,
    pub geometry: SliceGeometry,
    pub slice_interval_mm: f64,
    /// z (mm) of PNG slice 1.
    pub z_first_mm: f64,
    /// PNG numbers run 1..=slices.
    pub slices: u32,
    /// Shipped PNG ranges (inclusive), ascending and disjoint.
    pub blocks: Vec<[u32; 2]>,
    /// Key PNG numbers with the ids of the lesions labelled on them.
    pub key_images: Vec<(u32, Vec<usize>)>,
    pub noise_sigma_hu: f32,
    pub gender: Gender,
    pub age: Option<f32>,
    /// Seed of this series' pixel noise.
    pub seed: u64,
}

impl PlannedSeries {
    pub fn id(&self) -> String {
        series_id(self.patient, self.study, self.series)
    }

    pub fn z_mm(&self, png: u32) -> f64 {
        self.z_first_mm + f64::from(png - 1) * self.slice_interval_mm
    }

    /// The nearest PNG number to `z`, clamped to the series.
    pub fn png_at(&self, z: f64) -> u32 {
        (((z - self.z_first_mm) / self.slice_interval_mm).round() as i64 + 1)
            .clamp(1, i64::from(self.slices)) as u32
    }

    pub fn block_of(&self, png: u32) -> Option<[u32; 2]> {
        self.blocks
            .iter()
            .copied()
            .find(|b| (b[0]..=b[1]).contains(&png))
    }

    /// Every shipped PNG number, ascending.
    pub fn shipped(&self) -> impl Iterator<Item = u32> + '_ {
        self.blocks.iter().flat_map(|b| b[0]..=b[1])
    }
}

/// A lesion's cross-section on one shipped slice.
#[derive(Debug, Clone)]
pub struct PlannedSection {
    pub png: u32,
    pub recist: Recist,
    /// Pixel extent, continuous (pixel `i` spans `[i, i+1)`).
    pub extent: Box2,
}

#[derive(Debug, Clone)]
pub struct PlannedLesion {
    pub id: usize,
    /// Index into [`Plan::series`].
    pub series: usize,
    pub labelled: bool,
    pub lesion_type: LesionType,
    pub site: Site,
    pub lesion_hu: f32,
    /// Nominal HU of the tissue the lesion sits in.
    pub background_hu: f32,
    pub shape: LesionShape,
    /// The slice of the largest cross-section (nearest to the centre).
    pub key_png: u32,
    /// First and last slice of the series whose plane cuts the lesion.
    pub png_range: [u32; 2],
    /// Cross-sections on the shipped slices, ascending by PNG number.
    pub sections: Vec<PlannedSection>,
}

impl PlannedLesion {
    pub fn contrast_hu(&self) -> f32 {
        self.lesion_hu - self.background_hu
    }

    pub fn section(&self, png: u32) -> Option<&PlannedSection> {
        self.sections.iter().find(|s| s.png == png)
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub config: SynthConfig,
    pub series: Vec<PlannedSeries>,
    pub lesions: Vec<PlannedLesion>,
    /// The `DL_info.csv` rows: the labelled lesions.
    pub records: Vec<LesionRecord>,
}

impl Plan {
    /// Plans a dataset; deterministic for `config.seed`, whatever the
    /// number of threads (each patient draws from its own stream).
    pub fn new(config: &SynthConfig, stats: &FittedStats) -> Self {
        let splits = patient_splits(config);
        let patients: Vec<(Vec<PlannedSeries>, Vec<PlannedLesion>)> = (0..splits.len())
            .into_par_iter()
            .map(|p| plan_patient(config, stats, p as u32 + 1, splits[p]))
            .collect();
        let mut series = Vec::new();
        let mut lesions = Vec::new();
        for (patient_series, patient_lesions) in patients {
            let series_base = series.len();
            let lesion_base = lesions.len();
            for mut s in patient_series {
                for (_, ids) in &mut s.key_images {
                    ids.iter_mut().for_each(|id| *id += lesion_base);
                }
                series.push(s);
            }
            for mut l in patient_lesions {
                l.id += lesion_base;
                l.series += series_base;
                lesions.push(l);
            }
        }
        let records = series
            .iter()
            .flat_map(|s| {
                s.key_images
                    .iter()
                    .flat_map(move |(_, ids)| ids.iter().map(move |id| (s, *id)))
            })
            .map(|(s, id)| record(config, stats, s, &lesions[id]))
            .collect();
        Self {
            config: config.clone(),
            series,
            lesions,
            records,
        }
    }

    /// Slices to render.
    pub fn slice_count(&self) -> usize {
        self.series.iter().map(|s| s.shipped().count()).sum()
    }
}

/// The split of each patient (patient `i + 1` at index `i`): the
/// `config.patients` by the published shares, then the extra val and test
/// patients.
pub fn patient_splits(config: &SynthConfig) -> Vec<Split> {
    let mut splits = shared_patient_splits(config.patients, config.seed);
    splits.extend(std::iter::repeat_n(Split::Val, config.extra_val_patients));
    splits.extend(std::iter::repeat_n(Split::Test, config.extra_test_patients));
    splits
}

/// Patients per split: the published shares, at least one patient in val
/// and test when there are three or more, assigned in a seeded shuffle.
fn shared_patient_splits(patients: usize, seed: u64) -> Vec<Split> {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed ^ 0x5EED_5EED));
    let share = |f: f64| {
        let n = (patients as f64 * f).round() as usize;
        if patients >= 3 { n.max(1) } else { n }
    };
    let (val, test) = (share(SPLIT_FRACTIONS[1]), share(SPLIT_FRACTIONS[2]));
    let mut splits: Vec<Split> = (0..patients)
        .map(|i| match i {
            i if i < val => Split::Val,
            i if i < val + test => Split::Test,
            _ => Split::Train,
        })
        .collect();
    for i in (1..splits.len()).rev() {
        splits.swap(i, rng.random_range(0..=i));
    }
    splits
}

/// Where lesions of a coarse type are put.
fn sites_of(t: LesionType) -> &'static [Site] {
    match t {
        LesionType::Bone => &[Site::Spine],
        LesionType::Abdomen => &[Site::Abdomen, Site::Abdomen, Site::Abdomen, Site::Spleen],
        LesionType::Mediastinum => &[Site::Mediastinum],
        LesionType::Liver => &[Site::Liver],
        LesionType::Lung => &[Site::LungRight, Site::LungLeft],
        LesionType::Kidney => &[Site::KidneyRight, Site::KidneyLeft],
        LesionType::SoftTissue => &[Site::Subcutaneous],
        LesionType::Pelvis => &[Site::Pelvis],
        LesionType::Unknown => &[Site::Abdomen],
    }
}

fn region_of(t: LesionType, rng: &mut impl Rng) -> Region {
    match t {
        LesionType::Lung | LesionType::Mediastinum => Region::Chest,
        LesionType::Liver | LesionType::Kidney | LesionType::Abdomen => Region::Abdomen,
        LesionType::Pelvis => Region::Pelvis,
        _ => Region::ALL[rng.random_range(0..3)],
    }
}

struct PatientPlanner<'a> {
    config: &'a SynthConfig,
    stats: &'a FittedStats,
    rng: ChaCha8Rng,
    anatomy: Anatomy,
    lesions: Vec<PlannedLesion>,
}

fn plan_patient(
    config: &SynthConfig,
    stats: &FittedStats,
    patient: u32,
    split: Split,
) -> (Vec<PlannedSeries>, Vec<PlannedLesion>) {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(u64::from(patient));
    let spacing = stats.pixel_spacing_mm.sample(&mut rng) * 512.0 / config.image_size as f64;
    let fov = spacing * config.image_size as f64;
    let half_width = fov / 2.0 * rng.random_range(0.7..0.88);
    let anatomy = Anatomy::draw(&mut rng, half_width);
    let gender = if rng.random_bool(stats.male_fraction.clamp(0.0, 1.0)) {
        Gender::Male
    } else {
        Gender::Female
    };
    let age = Some(stats.age_years.sample(&mut rng).round() as f32);
    let n_series = stats.series_per_patient.sample(&mut rng).unwrap_or(1);
    let mut planner = PatientPlanner {
        config,
        stats,
        rng,
        anatomy,
        lesions: Vec::new(),
    };
    let mut series = Vec::new();
    for s in 0..n_series {
        let index = series.len();
        let planned = planner.series(patient, s + 1, split, spacing, gender, age, index);
        series.push(planned);
    }
    (series, planner.lesions)
}

impl PatientPlanner<'_> {
    #[allow(clippy::too_many_arguments)]
    fn series(
        &mut self,
        patient: u32,
        study: u32,
        split: Split,
        spacing: f64,
        gender: Gender,
        age: Option<f32>,
        index: usize,
    ) -> PlannedSeries {
        let rng = &mut self.rng;
        let interval = f64::from(self.stats.slice_interval_um.sample(rng).unwrap_or(1000)) / 1000.0;
        let first_type = self.draw_type(|_| true);
        let rng = &mut self.rng;
        let region = region_of(first_type, rng);
        let (z0, z1) = region.z_range();
        let z_first = z0 + rng.random_range(-15.0..15.0);
        let slices = ((z1 - z0) / interval).floor() as u32 + 1;
        let size = self.config.image_size;
        let geometry = SliceGeometry {
            size,
            spacing,
            center_mm: [
                rng.random_range(-8.0..8.0) * self.anatomy.scale,
                rng.random_range(5.0..25.0) * self.anatomy.scale,
            ],
            padded_fov: rng.random_bool(0.3),
        };
        let mut s = PlannedSeries {
            patient,
            study,
            series: 1 + u32::from(rng.random_bool(0.3)),
            split,
            region,
            anatomy: self.anatomy.clone(),
            geometry,
            slice_interval_mm: interval,
            z_first_mm: z_first,
            slices,
            blocks: Vec::new(),
            key_images: Vec::new(),
            noise_sigma_hu: rng.random_range(8.0..22.0),
            gender,
            age,
            seed: mix(self.config.seed ^ mix(u64::from(patient) << 16 | u64::from(study))),
        };
        let first_lesion = self.lesions.len();
        let n_keys = self
            .stats
            .key_images_per_series
            .sample(&mut self.rng)
            .unwrap_or(1);
        let z_lo = s.z_mm(1);
        let z_hi = s.z_mm(s.slices);
        for k in 0..n_keys {
            let t = if k == 0 {
                first_type
            } else {
                self.draw_type_reaching(z_lo, z_hi)
            };
            let Some(key) = self.place_key_lesion(&s, index, t) else {
                continue;
            };
            let n = self
                .stats
                .lesions_per_image
                .sample(&mut self.rng)
                .unwrap_or(1);
            let mut ids = vec![key];
            let key_png = self.lesions[key].key_png;
            let z = s.z_mm(key_png);
            for _ in 1..n {
                let t = self.draw_type_reaching(z, z);
                if let Some(id) = self.place_lesion(&s, index, t, z, true) {
                    ids.push(id);
                }
            }
            s.key_images.push((key_png, ids));
        }
        s.key_images.sort_by_key(|(png, _)| *png);
        s.blocks = merge_blocks(&s, self.config.context_mm);
        // unmeasured lesions in the shipped slices
        let labelled = self.lesions.len() - first_lesion;
        let f = self.config.missing_fraction.clamp(0.0, 0.95);
        let expected = labelled as f64 * f / (1.0 - f);
        let unlabelled =
            expected.floor() as usize + usize::from(self.rng.random::<f64>() < expected.fract());
        let shipped: Vec<u32> = s.shipped().collect();
        for _ in 0..unlabelled {
            for _attempt in 0..20 {
                let png = shipped[self.rng.random_range(0..shipped.len())];
                let z = s.z_mm(png) + self.rng.random_range(-0.5..0.5) * interval;
                let t = self.draw_type_reaching(z, z);
                if self.place_lesion(&s, index, t, z, false).is_some() {
                    break;
                }
            }
        }
        for l in &mut self.lesions[first_lesion..] {
            fill_sections(l, &s);
        }
        s
    }

    /// A lesion type from the fitted mix among those `allowed` accepts.
    fn draw_type(&mut self, allowed: impl Fn(LesionType) -> bool) -> LesionType {
        let code = self
            .stats
            .lesion_types
            .sample_where(&mut self.rng, |c| {
                LesionType::from_code(c).is_some_and(&allowed)
            })
            .unwrap_or(LesionType::SoftTissue.code());
        LesionType::from_code(code).unwrap_or(LesionType::SoftTissue)
    }

    /// A lesion type from the fitted mix among those whose sites reach into [lo, hi].
    fn draw_type_reaching(&mut self, lo: f64, hi: f64) -> LesionType {
        let reaching: Vec<LesionType> = LesionType::ALL
            .into_iter()
            .filter(|t| self.type_reaches(*t, lo, hi))
            .collect();
        self.draw_type(|t| reaching.contains(&t))
    }

    /// Whether a site of type `t` reaches into z range [lo, hi].
    fn type_reaches(&self, t: LesionType, lo: f64, hi: f64) -> bool {
        sites_of(t)
            .iter()
            .any(|site| match self.anatomy.site_shape(*site) {
                Some(shape) => {
                    let (a, b) = shape.z_span();
                    // keep a margin so the section is not a sliver
                    a + 5.0 <= hi && b - 5.0 >= lo
                }
                None => true,
            })
    }

    /// The first labelled lesion of a key image: anywhere in its site within
    /// the series, centred on a slice.
    fn place_key_lesion(
        &mut self,
        s: &PlannedSeries,
        series_index: usize,
        t: LesionType,
    ) -> Option<usize> {
        for _ in 0..30 {
            let site = self.pick_site(t);
            let (lo, hi) = match self.anatomy.site_shape(site) {
                Some(shape) => shape.z_span(),
                None => (f64::NEG_INFINITY, f64::INFINITY),
            };
            let (lo, hi) = ((lo + 5.0).max(s.z_mm(1)), (hi - 5.0).min(s.z_mm(s.slices)));
            if lo >= hi {
                continue;
            }
            let png = s.png_at(self.rng.random_range(lo..hi));
            if s.key_images.iter().any(|(k, _)| *k == png) {
                continue;
            }
            if let Some(id) = self.place_at(s, series_index, t, site, s.z_mm(png), true) {
                return Some(id);
            }
        }
        None
    }

    fn pick_site(&mut self, t: LesionType) -> Site {
        let sites = sites_of(t);
        sites[self.rng.random_range(0..sites.len())]
    }

    fn place_lesion(
        &mut self,
        s: &PlannedSeries,
        series_index: usize,
        t: LesionType,
        z: f64,
        labelled: bool,
    ) -> Option<usize> {
        (0..10).find_map(|_| {
            let site = self.pick_site(t);
            self.place_at(s, series_index, t, site, z, labelled)
        })
    }

    /// Places a lesion centred at `z` in `site`; `None` when the site misses
    /// `z` or the lesion would overlap another.
    fn place_at(
        &mut self,
        s: &PlannedSeries,
        series_index: usize,
        t: LesionType,
        site: Site,
        z: f64,
        labelled: bool,
    ) -> Option<usize> {
        let rng = &mut self.rng;
        let long = self
            .stats
            .long_diameter_mm
            .sample(rng)
            .max(2.0 * s.geometry.spacing);
        let ratio = self.stats.short_long_ratio.sample(rng);
        let depth_ratio = rng.random_range(0.6..1.1);
        let irregularity = rng.random_range(0.02..0.14);
        let (x, y) = match self.anatomy.site_shape(site) {
            Some(shape) => {
                let section = shape.section(z)?;
                // keep the centre well inside the organ when the organ allows
                let margin = (long / 2.0 / section.ra.min(section.rb)).min(0.6);
                section.sample(rng, 1.0 - margin)
            }
            None => {
                let (w, d) = self.anatomy.body_radii(z);
                let depth = rng.random_range(0.3..1.0) * (self.anatomy.wall_mm() - 2.0) + 2.0;
                let theta = rng.random_range(0.0..std::f64::consts::TAU);
                let rho = 1.0 - depth / w.min(d);
                (rho * w * theta.cos(), rho * d * theta.sin())
            }
        };
        let shape = LesionShape::draw(rng, [x, y, z], long, ratio, depth_ratio, irregularity);
        // visible on its own central slice (a lesion thinner than a pixel is not)
        shape.mask(s.z_mm(s.png_at(z)), &s.geometry)?;
        let reach = shape.reach_mm().max(shape.semi_axes_mm[2]);
        let series_lesions = self.lesions.iter().filter(|l| l.series == series_index);
        for other in series_lesions {
            let o = &other.shape;
            let d = (0..3)
                .map(|k| (o.center_mm[k] - shape.center_mm[k]).powi(2))
                .sum::<f64>()
                .sqrt();
            if d < reach + o.reach_mm().max(o.semi_axes_mm[2]) + 2.0 {
                return None;
            }
        }
        let background_hu = self.anatomy.site_hu(site);
        let lesion_hu = lesion_hu(rng, site, &self.anatomy);
        let id = self.lesions.len();
        self.lesions.push(PlannedLesion {
            id,
            series: series_index,
            labelled,
            lesion_type: t,
            site,
            lesion_hu,
            background_hu,
            key_png: s.png_at(z),
            png_range: [
                s.png_at(z - shape.semi_axes_mm[2]),
                s.png_at(z + shape.semi_axes_mm[2]),
            ],
            shape,
            sections: Vec::new(),
        });
        Some(id)
    }
}

/// A lesion's HU: hypo- or hyper-dense against its tissue, some of them
/// low-contrast, as the tissue's lesions typically look in portal-venous CT.
fn lesion_hu(rng: &mut impl Rng, site: Site, anatomy: &Anatomy) -> f32 {
    let t = &anatomy.tissues;
    let bg = anatomy.site_hu(site);
    let low_contrast = |rng: &mut dyn rand::RngCore| {
        let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
        bg + sign * rng.random_range(10.0..20.0)
    };
    let u: f64 = rng.random();
    match site {
        Site::Liver | Site::Spleen => {
            if u < 0.6 {
                bg - rng.random_range(25.0..80.0)
            } else if u < 0.8 {
                bg + rng.random_range(25.0..60.0)
            } else {
                low_contrast(rng)
            }
        }
        Site::KidneyLeft | Site::KidneyRight => {
            if u < 0.5 {
                t.water + rng.random_range(0.0..15.0)
            } else if u < 0.85 {
                bg - rng.random_range(30.0..80.0)
            } else {
                low_contrast(rng)
            }
        }
        Site::LungLeft | Site::LungRight => {
            if u < 0.8 {
                rng.random_range(-10.0..50.0)
            } else {
                rng.random_range(-650.0..-400.0)
            }
        }
        Site::Spine => {
            if u < 0.6 {
                rng.random_range(20.0..90.0)
            } else {
                rng.random_range(550.0..850.0)
            }
        }
        Site::Mediastinum | Site::Abdomen | Site::Pelvis | Site::Subcutaneous => {
            if u < 0.85 {
                rng.random_range(25.0..60.0)
            } else {
                rng.random_range(5.0..20.0)
            }
        }
    }
}

/// Shipped ranges: `context_mm` each side of every key slice, merged where
/// they overlap or touch (as DeepLesion's `Slice_range` does).
fn merge_blocks(s: &PlannedSeries, context_mm: f64) -> Vec<[u32; 2]> {
    let half = (context_mm / s.slice_interval_mm).ceil() as u32;
    let mut blocks: Vec<[u32; 2]> = Vec::new();
    for (key, _) in &s.key_images {
        let b = [key.saturating_sub(half).max(1), (key + half).min(s.slices)];
        match blocks.last_mut() {
            Some(last) if b[0] <= last[1] + 1 => last[1] = last[1].max(b[1]),
            _ => blocks.push(b),
        }
    }
    blocks
}

fn fill_sections(lesion: &mut PlannedLesion, s: &PlannedSeries) {
    let [lo, hi] = lesion.png_range;
    lesion.sections = s
        .shipped()
        .filter(|png| (lo..=hi).contains(png))
        .filter_map(|png| {
            let mask = lesion.shape.mask(s.z_mm(png), &s.geometry)?;
            Some(PlannedSection {
                png,
                recist: mask.recist(),
                extent: mask.extent(),
            })
        })
        .collect();
}

fn record(
    config: &SynthConfig,
    stats: &FittedStats,
    s: &PlannedSeries,
    l: &PlannedLesion,
) -> LesionRecord {
    let section = l
        .section(l.key_png)
        .expect("a labelled lesion is centred on a shipped key slice, so its mask exists");
    let r = section.recist;
    let (w, d) = s.anatomy.body_radii(l.shape.center_mm[2]);
    let [cx, cy, cz] = l.shape.center_mm;
    let block = s.block_of(l.key_png).expect("key slices are shipped");
    let lesion_type = if s.split == Split::Train && !config.train_lesion_types {
        LesionType::Unknown
    } else {
        l.lesion_type
    };
    LesionRecord {
        file_name: format!("{}_{:03}.png", s.id(), l.key_png),
        patient: s.patient,
        study: s.study,
        series: s.series,
        key_slice_png: l.key_png,
        recist: r.points,
        bbox: r.padded_box(),
        diameters_px: [r.long_px, r.short_px],
        normalized_location: [
            ((cx + w) / (2.0 * w)).clamp(0.0, 1.0) as f32,
            ((cy + d) / (2.0 * d)).clamp(0.0, 1.0) as f32,
            (cz / TORSO_LENGTH_MM).clamp(0.0, 1.0) as f32,
        ],
        lesion_type,
        possibly_noisy: false,
        slice_range: block,
        spacing: [s.geometry.spacing, s.geometry.spacing, s.slice_interval_mm],
        image_size: [s.geometry.size as u32, s.geometry.size as u32],
        dicom_windows: stats
            .windows
            .get(&l.lesion_type.code())
            .cloned()
            .unwrap_or_else(|| vec![[-175.0, 275.0]]),
        gender: s.gender,
        age: s.age,
        split: s.split,
    }
}
