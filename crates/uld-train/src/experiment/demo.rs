//! `uld demo`, the whole system on built-in data: a synthetic
//! DeepLesion-format dataset with half its lesions unlabelled, one run
//! (teacher-student mining by default), its scores on the test split, what
//! its teacher mines, a contact sheet of detections and `report.md`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tch::Device;
use uld_core::{Box2, Result, write_atomically};
use uld_data::deeplesion::{LesionRecord, Split, read_png_hu};
use uld_data::render::{BLUE, DEFAULT_WINDOW, GREEN, RED, Sheet, YELLOW, key_slice_lesions};
use uld_data::synth::{MANIFEST_FILE, Manifest};
use uld_eval::report::{breakdown_table, write_report};
use uld_eval::{BootstrapConfig, DetectionSet};
use uld_model::BuildDetector;

use super::{Arm, machine, score_on_test, train_arm};
use crate::config::{Mode, TrainConfig};
use crate::mined::{MinedScore, REVIEW_TAU};
use crate::mined_export::mine_run;
use crate::run::Labels;
use crate::trained::Weights;
use crate::trainer::Observer;
use crate::validate::SplitScores;

/// Key images on the contact sheet.
const SHEET_IMAGES: usize = 12;
/// Detections shown per key image, on average over the test split.
const SHOWN_PER_IMAGE: usize = 2;

/// What the demo runs.
pub struct DemoSetup {
    /// Folder of the dataset (`data/`), the run (`run/`) and the report.
    pub out: PathBuf,
    /// Patients of the synthetic dataset, for the report.
    pub patients: usize,
    pub missing_fraction: f64,
    /// Name of the training preset, for the report.
    pub preset: String,
    pub config: TrainConfig,
}

impl DemoSetup {
    pub fn data(&self) -> PathBuf {
        self.out.join("data")
    }

    /// The run the demo trains.
    pub fn arm(&self) -> Arm {
        Arm {
            name: "run",
            title: match self.config.mode {
                Mode::Mining => "teacher-student mining on the partial labels",
                Mode::Supervised => "supervised training on the partial labels",
            },
            mode: self.config.mode,
            labels: Labels::Partial,
        }
    }

    pub fn run_dir(&self) -> PathBuf {
        self.out.join(self.arm().name)
    }
}

/// What the demo measured.
pub struct DemoResults {
    pub scores: SplitScores,
    /// What the final teacher mines at [`DemoResults::review_tau`] on the
    /// training key images (mining runs on synthetic data).
    pub mined: Option<MinedScore>,
    pub review_tau: f32,
    pub report: PathBuf,
}

/// Trains the demo's run (a `D`, reporting to `observer`) on the dataset
/// in `setup.data()` and writes its reports; `seconds` says how long the
/// demo has taken so far when the report is written.
pub fn run_demo<D: BuildDetector>(
    setup: &DemoSetup,
    records: &[LesionRecord],
    device: Device,
    observer: &mut dyn Observer,
    seconds: &dyn Fn() -> f64,
) -> Result<DemoResults> {
    let (data, run_dir, arm, config) = (setup.data(), setup.run_dir(), setup.arm(), &setup.config);
    train_arm::<D>(&data, records, &run_dir, config, &arm, observer)?;
    let scores = score_on_test::<D>(
        &data,
        records,
        &run_dir,
        Weights::Best,
        device,
        BootstrapConfig::default(),
    )?;
    let title = "uld demo, test split";
    write_report(
        &setup.out.join("eval_keyslice"),
        &scores.keyslice.evaluation,
        title,
        true,
    )?;
    if let Some(h) = &scores.harvester {
        write_report(
            &setup.out.join("eval_harvester"),
            &h.evaluation,
            title,
            true,
        )?;
    }
    // A run that learns only its teacher's surest boxes (tau_high above
    // REVIEW_TAU) still shows what its teacher would mine at REVIEW_TAU.
    let review_tau = config.mining.tau_high.min(REVIEW_TAU);
    let mined = match config.mode {
        Mode::Mining => mine_run::<D>(
            &data,
            records,
            &run_dir,
            Weights::Teacher,
            device,
            Some(review_tau),
        )?
        .truth
        .map(|(score, _)| score),
        Mode::Supervised => None,
    };
    let threshold = score_for_average_count(&scores.keyslice.detections, SHOWN_PER_IMAGE);
    let legend = contact_sheet(
        &data,
        records,
        &scores.keyslice.detections,
        threshold,
        &setup.out.join("detections.png"),
    )?;
    let results = DemoResults {
        scores,
        mined,
        review_tau,
        report: setup.out.join("report.md"),
    };
    let text = report(setup, &results, &legend, seconds());
    write_atomically(&results.report, |w| {
        std::io::Write::write_all(w, text.as_bytes())
    })?;
    Ok(results)
}

fn report(setup: &DemoSetup, results: &DemoResults, legend: &str, seconds: f64) -> String {
    let (config, scores, review_tau) = (&setup.config, &results.scores, results.review_tau);
    let mut report = String::new();
    let _ = writeln!(report, "# uld demo\n");
    let _ = writeln!(
        report,
        "Synthetic DeepLesion-format data ({} patients, {:.0}% of lesions unlabelled) in `{}`; \
         {} (`{}` preset, {} steps) in `{}`. Machine: {}; {:.1} min in all.\n",
        setup.patients,
        100.0 * setup.missing_fraction,
        setup.data().display(),
        setup.arm().title,
        setup.preset,
        config.steps,
        setup.run_dir().display(),
        machine(),
        seconds / 60.0
    );
    let _ = writeln!(report, "## Test split\n");
    if let Some(h) = &scores.harvester {
        let _ = writeln!(
            report,
            "- `harvester` (every lesion, per sub-volume): {}. [report](eval_harvester/report.md)",
            h.evaluation.headline()
        );
    }
    let _ = writeln!(
        report,
        "- `keyslice` (the partial labels, per key image): {}. [report](eval_keyslice/report.md)\n",
        scores.keyslice.evaluation.headline()
    );
    if scores.harvester.is_some() {
        let _ = writeln!(report, "![FROC, harvester](eval_harvester/froc.png)\n");
    }
    let keyslice = &scores.keyslice.evaluation;
    if keyslice.breakdowns.iter().any(|g| g.by == "size") {
        let _ = writeln!(
            report,
            "### By lesion size (`keyslice`, long diameter)\n\n{}",
            breakdown_table(keyslice, Some("size"))
        );
    }
    if let Some(score) = &results.mined {
        let _ = writeln!(
            report,
            "## Mined lesions\n\nAfter a supervised burn-in of {:.0}% of the steps, the \
             student {}. At score {review_tau} its \
             final teacher mines on the training key images: {}. Export them for review with \
             `uld mined --model {} --data {} --tau-high {review_tau}`.\n",
            100.0 * config.mining.burn_in_fraction,
            config.mining.rule(),
            score.describe(),
            setup.run_dir().display(),
            setup.data().display()
        );
    }
    let _ = writeln!(
        report,
        "## Detections\n\n{legend}\n\n![detections](detections.png)"
    );
    report
}

/// The score above which the detections number `per_image` per key image
/// on average (all of them when there are fewer).
fn score_for_average_count(detections: &DetectionSet, per_image: usize) -> f32 {
    let images: std::collections::HashSet<&str> = detections.iter().map(|(k, _)| k).collect();
    let mut scores: Vec<f32> = detections.iter().map(|(_, d)| d.score).collect();
    scores.sort_by(|a, b| b.total_cmp(a));
    let wanted = images.len() * per_image;
    match scores.get(wanted.saturating_sub(1)) {
        Some(&s) if wanted > 0 => s,
        _ => 0.0,
    }
}

/// A key image's name, its first row, and every lesion on it with
/// whether it is labelled.
type KeySliceLesions<'a> = (&'a str, &'a LesionRecord, Vec<(Box2, bool)>);

/// Draws test key images (those with unlabelled lesions first) with every
/// lesion and the detections scoring at least `threshold`; returns the
/// legend.
fn contact_sheet(
    data: &Path,
    records: &[LesionRecord],
    detections: &DetectionSet,
    threshold: f32,
    out: &Path,
) -> Result<String> {
    let manifest = Manifest::read(&data.join(MANIFEST_FILE))?;
    let mut labelled: BTreeMap<&str, Vec<&LesionRecord>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.split == Split::Test) {
        labelled.entry(&r.file_name).or_default().push(r);
    }
    let mut found: HashMap<&str, Vec<Box2>> = HashMap::new();
    for (key, d) in detections.iter() {
        if d.score >= threshold {
            found.entry(key).or_default().push(d.bbox);
        }
    }
    // every lesion on each key slice, and whether it is labelled
    let mut images: Vec<KeySliceLesions> = labelled
        .iter()
        .map(|(name, rows)| (*name, rows[0], key_slice_lesions(rows, Some(&manifest))))
        .collect();
    images.sort_by_key(|(_, _, lesions)| lesions.iter().all(|(_, l)| *l));
    images.truncate(SHEET_IMAGES);
    let mut sheet = Sheet::new(images.len(), 4, 320);
    for (n, (name, first, lesions)) in images.iter().enumerate() {
        let slice = read_png_hu(data.join(first.key_slice_path()))?;
        let dets = found.get(name).map_or(&[][..], Vec::as_slice);
        let hit = |a: &Box2, b: &Box2| a.iou(b) >= 0.5;
        let mut boxes: Vec<(Box2, [u8; 3])> = Vec::new();
        for (b, is_labelled) in lesions {
            let colour = match (dets.iter().any(|d| hit(d, b)), is_labelled) {
                (true, true) => GREEN,
                (true, false) => YELLOW,
                (false, _) => RED,
            };
            boxes.push((*b, colour));
        }
        for d in dets
            .iter()
            .filter(|d| !lesions.iter().any(|(b, _)| hit(d, b)))
        {
            boxes.push((*d, BLUE));
        }
        let window = first
            .dicom_windows
            .first()
            .copied()
            .unwrap_or(DEFAULT_WINDOW);
        sheet.draw(n, &slice, window, &boxes);
    }
    let legend = format!(
        "{} test key images; detections scoring at least {threshold:.3} ({SHOWN_PER_IMAGE} per \
         image on average over the test split): green, a labelled lesion \
         found; yellow, an unlabelled lesion found (the labels do not have it); red, a lesion \
         missed; blue, a detection that is no lesion.",
        images.len()
    );
    sheet.write(out, &format!("uld demo: {legend}"))?;
    Ok(legend)
}
