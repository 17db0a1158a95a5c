//! What the student trains on at each step: the annotated boxes alone
//! (supervised), or those plus the teacher's mined lesions (mining). The
//! trainer drives either through [`Objective`], so the teacher-student
//! scheme wraps the detector instead of changing it.

use std::collections::BTreeMap;

use tch::nn::VarStore;
use tch::{Device, Tensor};
use uld_core::{Box2, Error, Result};
use uld_data::augment::Affine2;
use uld_data::loader::ViewMode;
use uld_model::{BuildDetector, Detector, ImageTargets, ModelConfig, build_detector};

use crate::bank::PredictionBank;
use crate::batch::{ReadyBatch, ReadyView, annotated_targets};
use crate::ema::ema_update;
use crate::mined::MinedScore;
use crate::mining::{MiningConfig, burn_in_ignore_regions, merge_pseudo_labels, outside_negatives};
use crate::mirror::MirrorConsistent;

/// The student's input and targets for one step, and numbers to log.
pub struct Prepared {
    pub images: Tensor,
    pub targets: Vec<ImageTargets>,
    pub stats: BTreeMap<String, f64>,
}

pub trait Objective {
    /// The views each training item must carry.
    fn views(&self) -> ViewMode;
    fn prepare(&mut self, step: u64, batch: &ReadyBatch, device: Device) -> Result<Prepared>;
    /// Called once when a run starts afresh (not when it resumes), with
    /// the student's initial weights.
    fn begin(&mut self, _student: &VarStore) -> Result<()> {
        Ok(())
    }
    /// Called after each optimiser step of the student.
    fn after_step(&mut self, step: u64, student: &VarStore) -> Result<()>;
    /// The teacher's weights, saved in checkpoints and used for detection.
    fn teacher(&self) -> Option<&VarStore> {
        None
    }
    fn teacher_mut(&mut self) -> Option<&mut VarStore> {
        None
    }
    /// The teacher as a detector (what validation and `uld detect` use).
    fn teacher_detector(&self) -> Option<&dyn Detector> {
        None
    }
    /// State besides weights that an exact resume needs, saved in each
    /// checkpoint's metadata; `None` when there is none.
    fn state(&self) -> Result<Option<serde_json::Value>> {
        Ok(None)
    }
    /// Restores what [`Objective::state`] saved.
    fn restore_state(&mut self, _state: serde_json::Value) -> Result<()> {
        Ok(())
    }
}

/// Annotated boxes only.
pub struct Supervised;

impl Objective for Supervised {
    fn views(&self) -> ViewMode {
        ViewMode::Weak
    }

    fn prepare(&mut self, _step: u64, batch: &ReadyBatch, device: Device) -> Result<Prepared> {
        let view = batch.view(0)?;
        Ok(Prepared {
            images: view.images_on(device),
            targets: annotated_targets(&view.targets),
            stats: BTreeMap::new(),
        })
    }

    fn after_step(&mut self, _step: u64, _student: &VarStore) -> Result<()> {
        Ok(())
    }
}

/// The complete annotations of the training images, where they are known
/// (synthetic data, fully annotated sets): for dataset item `i`, every
/// lesion on its key slice in original pixels. Used only to score mining.
pub type CompleteAnnotations = Vec<Vec<Box2>>;

/// Teacher-student lesion mining (DESIGN.md section 5), around any
/// detector `D`: the teacher is a second `D` whose weights follow the
/// student's.
pub struct Mining<D> {
    config: MiningConfig,
    burn_in: u64,
    teacher_store: VarStore,
    teacher: D,
    complete: Option<CompleteAnnotations>,
    /// Per dataset item, regions a reviewer rejected (original pixels):
    /// the teacher's predictions on them are not mined.
    negatives: Vec<Vec<Box2>>,
    /// Used with `bank_visits` > 0.
    bank: PredictionBank,
}

impl<D: BuildDetector> Mining<D> {
    pub fn new(
        config: MiningConfig,
        model: &ModelConfig,
        steps: u64,
        device: Device,
        complete: Option<CompleteAnnotations>,
    ) -> Result<Self> {
        let teacher_store = VarStore::new(device);
        let teacher = build_detector(&teacher_store, model, None)?;
        Ok(Self {
            burn_in: config.burn_in_steps(steps),
            config,
            teacher_store,
            teacher,
            complete,
            negatives: Vec::new(),
            bank: PredictionBank::default(),
        })
    }

    /// Known negatives per dataset item, in original pixels.
    pub fn with_negatives(mut self, negatives: Vec<Vec<Box2>>) -> Self {
        self.negatives = negatives;
        self
    }
}

impl<D> Mining<D> {
    fn mining_started(&self, step: u64) -> bool {
        step >= self.burn_in
    }

    /// The views of the batch: (teacher's, student's).
    fn view_pair<'b>(&self, batch: &'b ReadyBatch) -> Result<(&'b ReadyView, &'b ReadyView)> {
        let teacher = batch.view(0)?;
        let student = if self.config.weak_strong_views {
            batch.view(1)?
        } else {
            teacher
        };
        Ok((teacher, student))
    }
}

impl<D: Detector> Mining<D> {
    /// The teacher's `(box, score)` predictions per image, in the pixels of
    /// `images`; with `teacher_flip`, those of the images and their mirror
    /// images together ([`MirrorConsistent`]).
    fn teacher_predictions(&self, images: &Tensor) -> Vec<Vec<(Box2, f32)>> {
        let detections = if self.config.teacher_flip {
            MirrorConsistent(&self.teacher).predict(images)
        } else {
            self.teacher.predict(images)
        };
        detections
            .into_iter()
            .map(|ds| ds.into_iter().map(|d| (d.bbox, d.score)).collect())
            .collect()
    }
}

/// A teacher prediction moved into the student's view, clipped to it.
fn to_student_view(b: &Box2, map: &Affine2, size: [usize; 2]) -> Option<Box2> {
    let moved = map.map_box(b).clip(size[0] as f32, size[1] as f32);
    moved.is_valid().then_some(moved)
}

impl<D: Detector> Objective for Mining<D> {
    fn views(&self) -> ViewMode {
        if self.config.weak_strong_views {
            ViewMode::WeakStrong
        } else {
            ViewMode::Weak
        }
    }

    fn prepare(&mut self, step: u64, batch: &ReadyBatch, device: Device) -> Result<Prepared> {
        let (teacher_view, student_view) = self.view_pair(batch)?;
        let images = student_view.images_on(device);
        let mut targets = annotated_targets(&student_view.targets);
        let mut stats = BTreeMap::new();
        let burning_in = !self.mining_started(step);
        if burning_in && !self.config.burn_in_ignore {
            return Ok(Prepared {
                images,
                targets,
                stats,
            });
        }
        // With one view for both, the teacher reads the student's images.
        let predictions = if std::ptr::eq(teacher_view, student_view) {
            self.teacher_predictions(&images)
        } else {
            self.teacher_predictions(&teacher_view.images_on(device))
        };
        let mut score = MinedScore::default();
        let (mut pseudo_count, mut ignored_count, mut held_count) = (0, 0, 0);
        for (i, (target, preds)) in targets.iter_mut().zip(predictions).enumerate() {
            let from = &teacher_view.targets[i];
            let to = &student_view.targets[i];
            let map = Affine2::view_to_view(&from.to_view, &to.to_view)
                .ok_or_else(|| Error::invalid("view", "a teacher view cannot be inverted"))?;
            let moved: Vec<(Box2, f32)> = preds
                .iter()
                .filter_map(|(b, score)| {
                    let b = b.clip(from.size[0] as f32, from.size[1] as f32);
                    Some((to_student_view(&b, &map, to.size)?, *score))
                })
                .collect();
            let negatives: Vec<Box2> = self
                .negatives
                .get(batch.indices[i])
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .filter_map(|n| to_student_view(n, &to.to_view, to.size))
                .collect();
            let mut moved = outside_negatives(moved, &negatives, &self.config);
            // The student view's pixels -> the image's original pixels.
            let to_original = to.to_view.inverse();
            if self.config.banked() {
                let to_original = to_original
                    .as_ref()
                    .ok_or_else(|| Error::invalid("view", "a student view cannot be inverted"))?;
                let recurring =
                    self.bank
                        .keep_recurring(batch.indices[i], &moved, to_original, &self.config);
                // The burn-in only fills the bank.
                if !burning_in {
                    held_count += moved.len() - recurring.len();
                    moved = recurring;
                }
            }
            if burning_in {
                let ignore = burn_in_ignore_regions(&target.boxes, &moved, &self.config);
                ignored_count += ignore.len();
                target.ignore.extend(ignore);
                continue;
            }
            let pseudo = merge_pseudo_labels(&target.boxes, &moved, &self.config);
            if let (Some(complete), Some(back)) = (&self.complete, &to_original) {
                let item = batch.indices[i];
                let mined: Vec<Box2> = pseudo.boxes.iter().map(|b| back.map_box(b)).collect();
                let labelled: Vec<Box2> = to.boxes.iter().map(|b| back.map_box(b)).collect();
                score.add(
                    &mined,
                    &labelled,
                    complete.get(item).map_or(&[][..], Vec::as_slice),
                    // The step's log keeps the totals only.
                    None,
                );
            }
            pseudo_count += pseudo.boxes.len();
            ignored_count += pseudo.ignore.len();
            target.boxes.extend(pseudo.boxes);
            target.box_weights.extend(pseudo.weights);
            target.ignore.extend(pseudo.ignore);
        }
        let n = targets.len().max(1) as f64;
        stats.insert("pseudo_per_image".into(), pseudo_count as f64 / n);
        stats.insert("ignore_per_image".into(), ignored_count as f64 / n);
        if self.config.banked() && !burning_in {
            stats.insert("held_per_image".into(), held_count as f64 / n);
        }
        if self.complete.is_some() && !burning_in {
            stats.insert("mined_true".into(), score.true_mined as f64);
            stats.insert("mined_false".into(), score.false_mined as f64);
            stats.insert("unlabelled".into(), score.unlabelled as f64);
            stats.insert("unlabelled_found".into(), score.unlabelled_found as f64);
        }
        Ok(Prepared {
            images,
            targets,
            stats,
        })
    }

    /// The teacher starts as a copy of the student.
    fn begin(&mut self, student: &VarStore) -> Result<()> {
        self.teacher_store
            .copy(student)
            .map_err(|e| Error::invalid("teacher", e.to_string()))
    }

    fn after_step(&mut self, step: u64, student: &VarStore) -> Result<()> {
        let copy = step < self.burn_in || !self.config.ema_teacher;
        let result = if copy {
            self.teacher_store.copy(student).map_err(|e| e.to_string())
        } else {
            ema_update(&self.teacher_store, student, self.config.ema_momentum)
        };
        result.map_err(|m| Error::invalid("teacher update", m))
    }

    fn teacher(&self) -> Option<&VarStore> {
        Some(&self.teacher_store)
    }

    fn teacher_mut(&mut self) -> Option<&mut VarStore> {
        Some(&mut self.teacher_store)
    }

    fn teacher_detector(&self) -> Option<&dyn Detector> {
        Some(&self.teacher)
    }

    fn state(&self) -> Result<Option<serde_json::Value>> {
        if !self.config.banked() {
            return Ok(None);
        }
        serde_json::to_value(&self.bank)
            .map(Some)
            .map_err(|e| Error::invalid("prediction bank", e.to_string()))
    }

    fn restore_state(&mut self, state: serde_json::Value) -> Result<()> {
        if self.config.banked() {
            self.bank = serde_json::from_value(state)
                .map_err(|e| Error::invalid("prediction bank", e.to_string()))?;
        }
        Ok(())
    }
}

/// Every lesion on each image's key slice, from a `uld synth` manifest.
pub fn complete_from_manifest(
    manifest: &uld_data::synth::Manifest,
    images: &[uld_data::loader::KeyImage],
) -> CompleteAnnotations {
    let mut by_series: std::collections::HashMap<&str, Vec<&uld_data::synth::ManifestLesion>> =
        std::collections::HashMap::new();
    for lesion in &manifest.lesions {
        by_series
            .entry(lesion.series_id.as_str())
            .or_default()
            .push(lesion);
    }
    images
        .iter()
        .map(|image| {
            let series = image
                .series_dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            by_series
                .get(series)
                .map(|lesions| {
                    lesions
                        .iter()
                        .filter_map(|l| l.box_on(image.key_png))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}
