//! Renders a [`Plan`] to disk in the DeepLesion layout: the slices in
//! parallel (each from its own seeded noise stream, so the files do not
//! depend on the thread count), then the tables and annotations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use uld_core::{Error, Result, write_atomically};

use super::SynthConfig;
use super::annotations::{MANIFEST_FILE, Manifest, harvester_json};
use super::noise::mix;
use super::plan::{Plan, PlannedSeries, patient_splits};
use crate::deeplesion::{HuSlice, Split, png_name, write_dl_info};

/// What a written dataset holds and where.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteSummary {
    pub root: PathBuf,
    pub series: usize,
    pub slices: usize,
    pub lesions: usize,
    pub labelled: usize,
    pub key_images: usize,
}

/// The files besides `Images_png/`, relative to the root.
pub const DL_INFO_FILE: &str = "DL_info.csv";
pub fn complete_annotations_file(split: Split) -> String {
    format!("lesion_harvester/complete_{}.json", split.name())
}
pub fn partial_annotations_file(split: Split) -> String {
    format!("lesion_harvester/recist_{}.json", split.name())
}

/// Writes the dataset under `root`; `progress` is called once per slice written.
pub fn write_dataset(
    plan: &Plan,
    root: &Path,
    progress: &(dyn Fn() + Sync),
) -> Result<WriteSummary> {
    let mut lesions_of: Vec<Vec<usize>> = vec![Vec::new(); plan.series.len()];
    for l in &plan.lesions {
        lesions_of[l.series].push(l.id);
    }
    let jobs: Vec<(usize, u32)> = plan
        .series
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.shipped().map(move |png| (i, png)))
        .collect();
    for s in &plan.series {
        let dir = root.join("Images_png").join(s.id());
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    jobs.par_iter().try_for_each(|&(i, png)| {
        let s = &plan.series[i];
        let slice = render_slice(plan, s, &lesions_of[i], png);
        let path = root.join("Images_png").join(s.id()).join(png_name(png));
        crate::deeplesion::write_png_hu(&path, &slice)?;
        progress();
        Ok::<(), Error>(())
    })?;
    write_dl_info(root.join(DL_INFO_FILE), &plan.records)?;
    let annotations = root.join("lesion_harvester");
    std::fs::create_dir_all(&annotations).map_err(|e| Error::io(&annotations, e))?;
    for split in Split::ALL {
        write_json(
            &root.join(complete_annotations_file(split)),
            &harvester_json(plan, split, true),
        )?;
        write_json(
            &root.join(partial_annotations_file(split)),
            &harvester_json(plan, split, false),
        )?;
    }
    write_json(&root.join(MANIFEST_FILE), &Manifest::of(plan))?;
    let key_images = plan.series.iter().map(|s| s.key_images.len()).sum();
    Ok(WriteSummary {
        root: root.to_path_buf(),
        series: plan.series.len(),
        slices: jobs.len(),
        lesions: plan.lesions.len(),
        labelled: plan.records.len(),
        key_images,
    })
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    write_atomically(path, |out| {
        serde_json::to_writer(out, value).map_err(std::io::Error::other)
    })
}

/// One slice in HU: anatomy, lesions, then CT-like noise (Gaussian, spatially
/// correlated by the same [1 2 1] kernel that softens the edges).
pub fn render_slice(plan: &Plan, s: &PlannedSeries, lesion_ids: &[usize], png: u32) -> HuSlice {
    let g = &s.geometry;
    let n = g.size;
    let z = s.z_mm(png);
    let mut hu = vec![0f32; n * n];
    s.anatomy.render(z, g, &mut hu);
    for &id in lesion_ids {
        let l = &plan.lesions[id];
        l.shape.paint(z, g, l.lesion_hu, &mut hu);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(mix(s.seed ^ u64::from(png)));
    // the [1 2 1] / 4 kernel in x and y scales white noise's sigma by 3/8
    let sigma = s.noise_sigma_hu / 0.375;
    let padding = -2048.0;
    let mut noisy: Vec<f32> = hu
        .iter()
        .map(|&v| {
            if v == padding {
                v
            } else {
                v + sigma * gaussian(&mut rng)
            }
        })
        .collect();
    smooth(&mut noisy, n, &hu, padding);
    HuSlice {
        width: n,
        height: n,
        hu: noisy
            .iter()
            .map(|v| v.round().clamp(-2048.0, 4000.0) as i16)
            .collect(),
    }
}

/// Separable [1 2 1] / 4 smoothing, leaving padding pixels (where `mask`
/// holds `padding`) untouched.
fn smooth(data: &mut [f32], n: usize, mask: &[f32], padding: f32) {
    let mut tmp = data.to_vec();
    for j in 0..n {
        for i in 0..n {
            let at = |k: usize| data[j * n + k];
            let (l, r) = (at(i.saturating_sub(1)), at((i + 1).min(n - 1)));
            tmp[j * n + i] = (l + 2.0 * at(i) + r) / 4.0;
        }
    }
    for j in 0..n {
        for i in 0..n {
            if mask[j * n + i] == padding {
                data[j * n + i] = padding;
                continue;
            }
            let at = |k: usize| tmp[k * n + i];
            let (u, d) = (at(j.saturating_sub(1)), at((j + 1).min(n - 1)));
            data[j * n + i] = (u + 2.0 * at(j) + d) / 4.0;
        }
    }
}

/// A standard normal draw (Box-Muller).
fn gaussian(rng: &mut impl Rng) -> f32 {
    let u1: f32 = rng.random_range(f32::EPSILON..1.0);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// Whether `root` holds a finished synthetic dataset (its manifest is
/// written last) of `config`'s settings (seed, share of unlabelled lesions,
/// the patients of each split); an error when it holds another.
pub fn synthetic_dataset_is_written(root: &Path, config: &SynthConfig) -> Result<bool> {
    let manifest_path = root.join(MANIFEST_FILE);
    if !manifest_path.exists() {
        return Ok(false);
    }
    let manifest = Manifest::read(&manifest_path)?;
    let splits: BTreeMap<u32, &str> = manifest
        .series
        .iter()
        .map(|s| (s.patient, s.split.as_str()))
        .collect();
    let planned: BTreeMap<u32, &str> = patient_splits(config)
        .into_iter()
        .enumerate()
        .map(|(i, split)| (i as u32 + 1, split.name()))
        .collect();
    if manifest.seed == config.seed
        && manifest.missing_fraction == config.missing_fraction
        && splits == planned
    {
        return Ok(true);
    }
    let patients = splits.len();
    Err(Error::invalid(
        "dataset folder",
        format!(
            "{} holds another synthetic dataset (seed {}, {} patients, missing fraction {}); \
             remove it or choose another output folder",
            root.display(),
            manifest.seed,
            patients,
            manifest.missing_fraction
        ),
    ))
}
