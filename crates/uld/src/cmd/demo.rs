//! `uld demo`: the whole system on built-in data. Synthesises a
//! DeepLesion-format dataset with half its lesions unlabelled, trains a
//! detector with teacher-student mining, scores its teacher on the test
//! split, and writes a report with tables, FROC plots and a contact sheet
//! of detections.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use uld_core::Box2;
use uld_data::deeplesion::{LesionRecord, Split, read_png_hu};
use uld_data::synth::{MANIFEST_FILE, Manifest};
use uld_eval::report::write_report;
use uld_eval::{BootstrapConfig, DetectionSet};
use uld_train::mined::REVIEW_TAU;
use uld_train::{Mode, Weights};

use super::bench_mining::machine;
use super::eval::headline;
use super::experiment::{Arm, score_on_test, synthetic_dataset, train_arm};
use super::mined::{describe_score, mine_run};
use super::sheet::{BLUE, DEFAULT_WINDOW, GREEN, RED, Sheet, YELLOW, key_slice_lesions};
use super::synth::preset_config;
use super::train::{ConfigArgs, Labels, progress_bar};

#[derive(Args)]
pub struct DemoArgs {
    /// Folder for the dataset, the run and the report; an interrupted demo
    /// resumes from what it finds there.
    #[arg(long, default_value = "uld-demo")]
    pub out: PathBuf,
    /// Patients of the synthetic dataset (default: the `small` preset's).
    #[arg(long)]
    pub patients: Option<usize>,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// Key images on the contact sheet.
const SHEET_IMAGES: usize = 12;
/// Detections shown per key image, on average over the test split.
const SHOWN_PER_IMAGE: usize = 2;

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

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let synth = preset_config("small", 0, 0.5, args.patients)?;
    synth.validate()?;
    let mut config = args.config.resolve()?;
    if args.config.mode.is_none() {
        config.mode = Mode::Mining;
    }
    let device = uld_train::device::open_device(&config.device)?;
    let data = args.out.join("data");
    let records = synthetic_dataset(&data, &synth, !args.quiet)?;
    let arm = Arm {
        name: "run",
        title: match config.mode {
            Mode::Mining => "teacher-student mining on the partial labels",
            Mode::Supervised => "supervised training on the partial labels",
        },
        mode: config.mode,
        labels: Labels::Partial,
    };
    let run_dir = args.out.join(arm.name);
    println!("{}", arm.header(&run_dir));
    train_arm(
        &data,
        &records,
        &run_dir,
        &config,
        &arm,
        progress_bar(!args.quiet),
    )?;
    println!("scoring on the test split");
    let scores = score_on_test(
        &data,
        &records,
        &run_dir,
        Weights::Best,
        device,
        BootstrapConfig::default(),
    )?;
    let title = "uld demo, test split";
    write_report(
        &args.out.join("eval_keyslice"),
        &scores.keyslice.evaluation,
        title,
        true,
    )?;
    if let Some(h) = &scores.harvester {
        write_report(&args.out.join("eval_harvester"), &h.evaluation, title, true)?;
    }
    // A run that learns only its teacher's surest boxes (tau_high above
    // REVIEW_TAU) still shows what its teacher would mine at REVIEW_TAU.
    let review_tau = config.mining.tau_high.min(REVIEW_TAU);
    let mined = match config.mode {
        Mode::Mining => mine_run(
            &data,
            &records,
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
        &records,
        &scores.keyslice.detections,
        threshold,
        &args.out.join("detections.png"),
    )?;
    let mut report = String::new();
    let _ = writeln!(report, "# uld demo\n");
    let _ = writeln!(
        report,
        "Synthetic DeepLesion-format data ({} patients, {:.0}% of lesions unlabelled) in `{}`; \
         {} (`{}` preset, {} steps) in `{}`. Machine: {}; {:.1} min in all.\n",
        synth.patients,
        100.0 * synth.missing_fraction,
        data.display(),
        arm.title,
        args.config.preset,
        config.steps,
        run_dir.display(),
        machine(),
        start.elapsed().as_secs_f64() / 60.0
    );
    let _ = writeln!(report, "## Test split\n");
    if let Some(h) = &scores.harvester {
        let _ = writeln!(
            report,
            "- `harvester` (every lesion, per sub-volume): {}. [report](eval_harvester/report.md)",
            headline(&h.evaluation)
        );
    }
    let _ = writeln!(
        report,
        "- `keyslice` (the partial labels, per key image): {}. [report](eval_keyslice/report.md)\n",
        headline(&scores.keyslice.evaluation)
    );
    if scores.harvester.is_some() {
        let _ = writeln!(report, "![FROC, harvester](eval_harvester/froc.png)\n");
    }
    if let Some(score) = &mined {
        let _ = writeln!(
            report,
            "## Mined lesions\n\nAfter a supervised burn-in of {:.0}% of the steps, the \
             student {}. At score {review_tau} its \
             final teacher mines on the training key images: {}. Export them for review with \
             `uld mined --model {} --data {} --tau-high {review_tau}`.\n",
            100.0 * config.mining.burn_in_fraction,
            config.mining.rule(),
            describe_score(score),
            run_dir.display(),
            data.display()
        );
    }
    let _ = writeln!(
        report,
        "## Detections\n\n{legend}\n\n![detections](detections.png)"
    );
    let path = args.out.join("report.md");
    uld_core::write_atomically(&path, |w| std::io::Write::write_all(w, report.as_bytes()))?;
    if let Some(h) = &scores.harvester {
        println!("harvester: {}", headline(&h.evaluation));
    }
    println!("keyslice: {}", headline(&scores.keyslice.evaluation));
    if let Some(score) = &mined {
        println!("mined: {}", describe_score(score));
    }
    println!("report: {}", path.display());
    Ok(())
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
) -> anyhow::Result<String> {
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
