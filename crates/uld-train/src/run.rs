//! The pieces a training run is made of, for any detector: the objective
//! a mode names, the training images with partial or complete labels, the
//! training dataset, split validators and detection settings, and
//! [`train_on`], which puts them together for a DeepLesion-format dataset.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tch::Device;
use uld_core::{Box2, Error, Result};
use uld_data::deeplesion::{LesionRecord, Split};
use uld_data::loader::{DeepLesionDataset, KeyImage, NoisyPolicy, ViewMode};
use uld_data::synth::{MANIFEST_FILE, Manifest, complete_annotations_file};
use uld_distributed::{ProcessGroup, Rendezvous};
use uld_eval::read_harvester;
use uld_model::BuildDetector;

use crate::config::{Mode, TrainConfig};
use crate::detect::DetectSettings;
use crate::objective::{
    CompleteAnnotations, Mining, Objective, Supervised, complete_from_manifest,
};
use crate::reviewed::{ExtraLabels, add_reviewed};
use crate::trainer::{Observer, Outcome, Student, train};
use crate::validate::{SplitValidator, keyslice_truth, subvolumes};
use crate::validation::Validator;

/// The boxes training images carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    /// The rows of DL_info.csv: partial, as published.
    Partial,
    /// Every lesion on each training key image, from the dataset's
    /// `synth_manifest.json` (the upper bound mining is measured against).
    Complete,
}

/// The objective `config.mode` names, around detector `D` (mining scored
/// against `complete` annotations where they are known).
/// `negatives`: per training image, regions a reviewer rejected, which the
/// teacher may not mine.
pub fn objective<D: BuildDetector>(
    config: &TrainConfig,
    device: Device,
    complete: Option<CompleteAnnotations>,
    negatives: Vec<Vec<Box2>>,
) -> Result<Box<dyn Objective>> {
    Ok(match config.mode {
        Mode::Supervised => Box::new(Supervised),
        Mode::Mining => Box::new(
            Mining::<D>::new(
                config.mining.clone(),
                &config.model,
                config.steps,
                device,
                complete,
            )?
            .with_negatives(negatives),
        ),
    })
}

/// The key images of the training split of `records`.
pub fn training_images(
    root: &Path,
    records: &[LesionRecord],
    config: &TrainConfig,
) -> Result<Vec<KeyImage>> {
    let rows: Vec<LesionRecord> = split_rows(records, Split::Train);
    if rows.is_empty() {
        return Err(Error::invalid(
            "training data",
            format!(
                "{} has no training rows (Train_Val_Test = 1)",
                root.display()
            ),
        ));
    }
    Ok(KeyImage::from_records(root, &rows, config.noisy))
}

fn split_rows(records: &[LesionRecord], split: Split) -> Vec<LesionRecord> {
    records
        .iter()
        .filter(|r| r.split == split)
        .cloned()
        .collect()
}

/// Every lesion on each of `images`' key slices, where the dataset's
/// synth manifest knows them.
pub fn complete_annotations(
    root: &Path,
    images: &[KeyImage],
) -> Result<Option<CompleteAnnotations>> {
    let path = root.join(MANIFEST_FILE);
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(complete_from_manifest(
        &Manifest::read(&path)?,
        images,
    )))
}

/// `images` with the boxes of `labels` (one list per image) instead of
/// their own.
pub fn relabelled(images: &[KeyImage], labels: &[Vec<Box2>]) -> Vec<KeyImage> {
    images
        .iter()
        .zip(labels)
        .map(|(image, boxes)| KeyImage {
            boxes: boxes.clone(),
            ..image.clone()
        })
        .collect()
}

/// `images` with their `complete` annotations, which the dataset at `root`
/// must have.
pub fn with_complete_labels(
    root: &Path,
    images: &[KeyImage],
    complete: Option<&CompleteAnnotations>,
) -> Result<Vec<KeyImage>> {
    let complete = complete.ok_or_else(|| {
        Error::invalid(
            "labels",
            format!(
                "--labels complete needs {}, which `uld synth` writes",
                root.join(MANIFEST_FILE).display()
            ),
        )
    })?;
    Ok(relabelled(images, complete))
}

/// How detection with a `D` runs for a configuration on a device.
pub fn detect_settings<D: BuildDetector>(config: &TrainConfig, device: Device) -> DetectSettings {
    DetectSettings {
        sample: config.sample.clone(),
        batch_size: config.loader.batch_size.max(1),
        workers: config.loader.workers,
        device,
        size_divisor: D::size_divisor(&config.model),
        precision: config.precision.for_device(device),
        threads: config.threads,
    }
}

/// The dataset a `D` trains on: `images` with the views an objective needs.
pub fn training_dataset<D: BuildDetector>(
    images: Vec<KeyImage>,
    config: &TrainConfig,
    views: ViewMode,
) -> Result<Arc<DeepLesionDataset>> {
    let mut dataset =
        DeepLesionDataset::new(images, config.sample.clone(), views, config.cache_bytes)?;
    dataset.size_divisor = D::size_divisor(&config.model);
    Ok(Arc::new(dataset))
}

/// A validator of a `D` for `split` of the dataset at `root`; `None` when
/// it has no rows. It scores `harvester` too where `uld synth` wrote the
/// split's complete annotations.
pub fn split_validator<D: BuildDetector>(
    root: &Path,
    records: &[LesionRecord],
    split: Split,
    config: &TrainConfig,
    device: Device,
) -> Result<Option<SplitValidator>> {
    let rows = split_rows(records, split);
    if rows.is_empty() {
        return Ok(None);
    }
    let harvester_file = root.join(complete_annotations_file(split));
    let harvester = if harvester_file.exists() {
        let truth = read_harvester(&harvester_file)?;
        Some((subvolumes(&truth, root, records), truth))
    } else {
        None
    };
    Ok(Some(SplitValidator {
        settings: detect_settings::<D>(config, device),
        key_images: KeyImage::from_records(root, &rows, NoisyPolicy::Drop),
        keyslice: keyslice_truth(&rows, &format!("{} {} split", root.display(), split.name())),
        harvester,
    }))
}

/// Trains a `D` on the `train` split of `records` (with `labels`, plus a
/// reviewer's `extra` labels), validating on the `val` split, in the run
/// directory `out`; resumes a run found there.
pub fn train_on<D: BuildDetector>(
    root: &Path,
    records: &[LesionRecord],
    out: &Path,
    config: &TrainConfig,
    labels: Labels,
    extra: Option<&ExtraLabels>,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    let mut images = training_images(root, records, config)?;
    let complete = complete_annotations(root, &images)?;
    if labels == Labels::Complete {
        images = with_complete_labels(root, &images, complete.as_ref())?;
    }
    let reviewed = extra
        .map(|extra| add_reviewed(&mut images, extra))
        .transpose()?;
    let negatives = reviewed
        .as_ref()
        .map_or_else(Vec::new, |r| r.negatives.clone());
    let set = TrainingSet {
        images,
        complete,
        negatives,
    };
    let mut outcome = train_images_on::<D>(root, records, out, config, set, observer)?;
    outcome.reviewed = reviewed.map(|r| (r.accepted, r.rejected));
    Ok(outcome)
}

/// The images a run trains on (the boxes they carry are the labels) and
/// what else is known about them.
pub struct TrainingSet {
    pub images: Vec<KeyImage>,
    /// Every lesion of each image, where known: scores what mining finds.
    pub complete: Option<CompleteAnnotations>,
    /// Per image, regions a reviewer rejected, which mining may not mine.
    pub negatives: Vec<Vec<Box2>>,
}

/// How long a rank waits in one collective for the others: long enough for
/// rank 0 to validate while the others wait at the next step.
const RANK_TIMEOUT: Duration = Duration::from_secs(3600);

/// [`train_on`] with the training images given (the boxes they carry are
/// the labels), and their `complete` annotations where known, for scoring
/// what mining finds.
///
/// Started as one rank of several (`uld train --nproc N`, or an outside
/// launcher such as `torchrun` that sets `RANK`, `WORLD_SIZE`,
/// `MASTER_ADDR` and `MASTER_PORT`), the process joins the others and they
/// train data-parallel; on CUDA each rank takes the GPU of its `LOCAL_RANK`.
pub fn train_images_on<D: BuildDetector>(
    root: &Path,
    records: &[LesionRecord],
    out: &Path,
    config: &TrainConfig,
    set: TrainingSet,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    let rendezvous = Rendezvous::from_env()?;
    let mut config = config.clone();
    if let Some(r) = &rendezvous
        && config.device == "cuda"
    {
        config.device = format!("cuda:{}", r.local_rank);
    }
    let config = &config;
    let mut student = Student::<D>::new(config)?;
    if let Some(r) = &rendezvous {
        student = student.with_ranks(ProcessGroup::join(r, RANK_TIMEOUT)?);
    }
    let device = student.store.device();
    let mut objective = objective::<D>(config, device, set.complete, set.negatives)?;
    let dataset = training_dataset::<D>(set.images, config, objective.views())?;
    let mut validator = split_validator::<D>(root, records, Split::Val, config, device)?;
    train(
        out,
        config,
        &mut student,
        dataset,
        objective.as_mut(),
        validator.as_mut().map(|v| v as &mut dyn Validator),
        observer,
    )
}
