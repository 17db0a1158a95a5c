//! Mining's reason to exist, on a small fixed case. A tiny detector first
//! learns every lesion of a few synthetic key images; then, from the same
//! weights and seed, it trains on the partial labels of the same images,
//! supervised or with mining. Supervised training calls the unlabelled
//! lesions background and forgets them; the mining teacher keeps finding
//! them, so they stay lesions. A third run has the same EMA teacher as
//! mining but learns no pseudo lesions, so the margin is mining's, not the
//! slower teacher's. A burn-in that ignores its own predictions away from
//! the labels (and learns none of them) keeps them too, and so does mining
//! whose teacher scores a box by its agreement with the mirror image.

use std::path::Path;

use tch::nn::VarStore;
use uld_core::Box2;
use uld_data::deeplesion::{Split, read_dl_info};
use uld_data::loader::{KeyImage, NoisyPolicy};
use uld_data::synth::{MANIFEST_FILE, Manifest, Preset, generate};
use uld_model::{Detector, FcosDetector};
use uld_train::mined::MinedScore;
use uld_train::run::{detect_settings, relabelled, training_dataset};
use uld_train::{
    Decay, Mining, Mode, Objective, OptimizerConfig, Silent, Student, Supervised, TrainConfig,
    complete_from_manifest, train,
};

/// Images trained on: each has an unlabelled lesion.
const IMAGES: usize = 6;
/// Detections per image, besides those on labelled lesions, that count.
const BUDGET: usize = 3;

/// Training key images with at least one unlabelled lesion, and every
/// lesion on each.
fn images_with_unlabelled_lesions(root: &Path) -> (Vec<KeyImage>, Vec<Vec<Box2>>) {
    let records = read_dl_info(root.join("DL_info.csv")).unwrap();
    let train: Vec<_> = records
        .into_iter()
        .filter(|r| r.split == Split::Train)
        .collect();
    let images = KeyImage::from_records(root, &train, NoisyPolicy::Drop);
    let manifest = Manifest::read(&root.join(MANIFEST_FILE)).unwrap();
    let complete = complete_from_manifest(&manifest, &images);
    let (images, complete): (Vec<_>, Vec<_>) = images
        .into_iter()
        .zip(complete)
        .filter(|(i, c)| c.len() > i.boxes.len())
        .take(IMAGES)
        .unzip();
    assert_eq!(images.len(), IMAGES, "the tiny set has enough such images");
    (images, complete)
}

fn config(mode: Mode, steps: u64, lr: f64) -> TrainConfig {
    let mut c = TrainConfig::tiny();
    c.mode = mode;
    c.steps = steps;
    c.log_every = steps;
    c.checkpoint_every = steps;
    c.sample.max_side = Some(128);
    c.loader.batch_size = IMAGES;
    c.loader.workers = 0;
    c.schedule.warmup_steps = 5;
    c.schedule.decay = Decay::Constant;
    c.schedule.base_lr = lr;
    c.optimizer = OptimizerConfig::AdamW {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    // Mining from the first step, a slow teacher (its confirmation bias is
    // what breaks mining) and one view, as the `small` preset.
    c.mining.burn_in_fraction = 0.0;
    c.mining.tau_high = 0.3;
    c.mining.tau_low = 0.2;
    c.mining.ema_momentum = 0.99;
    c.mining.weak_strong_views = false;
    c
}

/// Trains from `start` (if given) on `images`; returns the detector the run
/// detects with: the teacher of a mining run, else the student.
fn trained(
    images: Vec<KeyImage>,
    config: &TrainConfig,
    start: Option<&VarStore>,
) -> (Student<FcosDetector>, Option<Mining<FcosDetector>>) {
    let mut student = Student::<FcosDetector>::new(config).unwrap();
    if let Some(weights) = start {
        student.store.copy(weights).unwrap();
    }
    let device = student.store.device();
    let mut mining = (config.mode == Mode::Mining).then(|| {
        Mining::new(
            config.mining.clone(),
            &config.model,
            config.steps,
            device,
            None,
        )
        .unwrap()
    });
    let objective: &mut dyn Objective = match mining.as_mut() {
        Some(m) => m,
        None => &mut Supervised,
    };
    let data = training_dataset::<FcosDetector>(images, config, objective.views()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    train(
        dir.path(),
        config,
        &mut student,
        data,
        objective,
        None,
        &mut Silent,
    )
    .unwrap();
    (student, mining)
}

/// Unlabelled lesions found among each image's [`BUDGET`] best detections
/// that are not labelled lesions.
fn unlabelled_recall(
    detector: &dyn Detector,
    config: &TrainConfig,
    images: &[KeyImage],
    complete: &[Vec<Box2>],
) -> MinedScore {
    let settings = detect_settings::<FcosDetector>(config, tch::Device::Cpu);
    let mut score = MinedScore::default();
    for d in settings.detect(detector, images.to_vec()).unwrap() {
        let labelled = &images[d.index].boxes;
        let others: Vec<Box2> = d
            .boxes
            .iter()
            .filter(|b| labelled.iter().all(|l| l.iou(b) < 0.5))
            .take(BUDGET)
            .copied()
            .collect();
        score.add(&others, labelled, &complete[d.index], None);
    }
    score
}

#[test]
fn mining_keeps_finding_unlabelled_training_lesions_that_supervised_training_forgets() {
    let root = tempfile::tempdir().unwrap();
    let synth = uld_data::synth::SynthConfig {
        patients: 12,
        ..Preset::Tiny.config()
    };
    generate(&synth, root.path(), &|| {}).unwrap();
    let (partial, complete) = images_with_unlabelled_lesions(root.path());
    let fully_labelled = relabelled(&partial, &complete);

    let learn = config(Mode::Supervised, 400, 3e-3);
    let (learned, _) = trained(fully_labelled, &learn, None);
    let before = unlabelled_recall(&learned.detector, &learn, &partial, &complete);
    assert!(
        before.recall().unwrap() >= 0.6,
        "the starting detector finds the unlabelled lesions: {before:?}"
    );

    let supervised = config(Mode::Supervised, 150, 1e-3);
    let (student, _) = trained(partial.clone(), &supervised, Some(&learned.store));
    let forgot = unlabelled_recall(&student.detector, &supervised, &partial, &complete);

    let teacher_recall = |config: &TrainConfig| {
        let (_, mining) = trained(partial.clone(), config, Some(&learned.store));
        let mining = mining.unwrap();
        unlabelled_recall(
            mining.teacher_detector().unwrap(),
            config,
            &partial,
            &complete,
        )
    };
    let mining = config(Mode::Mining, 150, 1e-3);
    let kept = teacher_recall(&mining);
    // the same EMA teacher, learning none of its predictions
    let mut ema_only = mining.clone();
    ema_only.mining.tau_high = 1.0;
    ema_only.mining.tau_low = 1.0;
    ema_only.mining.ignore_band = false;
    let lagged = teacher_recall(&ema_only);
    // a burn-in that ignores the teacher's (the student's own) predictions
    // away from the labels, learning none of them
    let mut guarded_burn_in = mining.clone();
    guarded_burn_in.mining.burn_in_fraction = 1.0;
    guarded_burn_in.mining.burn_in_ignore = true;
    let guarded = teacher_recall(&guarded_burn_in);
    // a teacher whose score is its agreement with its mirror image
    let mut mirrored = mining.clone();
    mirrored.mining.teacher_flip = true;
    let agreed = teacher_recall(&mirrored).recall().unwrap();

    let (f, e, k, g) = (
        forgot.recall().unwrap(),
        lagged.recall().unwrap(),
        kept.recall().unwrap(),
        guarded.recall().unwrap(),
    );
    eprintln!(
        "unlabelled-lesion recall: start {:.3}, supervised {f:.3}, its EMA teacher {e:.3}, \
         mining {k:.3}, ignoring burn-in {g:.3}, mirror-agreeing teacher {agreed:.3}",
        before.recall().unwrap()
    );
    assert!(
        agreed >= f + 0.2,
        "mining with a mirror-agreeing teacher keeps {agreed:.3}, supervised {f:.3}"
    );
    assert!(
        g >= f + 0.2,
        "a burn-in that ignores its own predictions keeps {g:.3}, supervised {f:.3} \
         ({guarded:?} vs {forgot:?})"
    );
    assert!(
        k >= f + 0.2,
        "mining recall {k:.3} should beat supervised {f:.3} by 0.2 ({kept:?} vs {forgot:?})"
    );
    assert!(
        k >= e + 0.2,
        "mining recall {k:.3} should beat the same EMA teacher without pseudo lesions \
         {e:.3} by 0.2 ({kept:?} vs {lagged:?})"
    );
}
