//! Running a detector over the images of a dataset (DeepLesion key images,
//! or the slices of a whole volume), with every box mapped back to the
//! original slice's pixels.

use std::sync::Arc;

use tch::Device;
use uld_core::{Box2, Result};
use uld_data::loader::{Dataset, DeepLesionDataset, Loader, LoaderConfig, TrainBatch};
use uld_model::Detector;

use crate::batch::ReadyImages;

/// The detections of one key image, best first, in original pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyImageDetections {
    /// Index of the image in the dataset.
    pub index: usize,
    /// `File_name` of the key image.
    pub file_name: String,
    pub boxes: Vec<Box2>,
    pub scores: Vec<f32>,
}

/// The detections of one dataset item, best first, in original pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemDetections {
    /// Index of the item in the dataset.
    pub index: usize,
    pub boxes: Vec<Box2>,
    pub scores: Vec<f32>,
}

/// Detects on every image of `dataset` (whose views must be `Plain`).
pub fn detect_dataset(
    detector: &dyn Detector,
    dataset: Arc<DeepLesionDataset>,
    batch_size: usize,
    workers: usize,
    device: Device,
) -> Result<Vec<KeyImageDetections>> {
    let items = detect_items(
        detector,
        dataset.clone(),
        batch_size,
        workers,
        device,
        &mut |_| {},
    )?;
    Ok(items
        .into_iter()
        .map(|d| KeyImageDetections {
            index: d.index,
            file_name: dataset.images()[d.index].file_name.clone(),
            boxes: d.boxes,
            scores: d.scores,
        })
        .collect())
}

/// Detects on every item of any dataset of plain views, in batches built on
/// `workers` threads; `progress` is told the number of items done after
/// each batch.
pub fn detect_items<D: Dataset<Batch = TrainBatch>>(
    detector: &dyn Detector,
    dataset: Arc<D>,
    batch_size: usize,
    workers: usize,
    device: Device,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<ItemDetections>> {
    let config = LoaderConfig {
        batch_size,
        workers,
        prefetch: 2,
        seed: 0,
        shuffle: false,
        drop_last: false,
    };
    let loader = Loader::new(ReadyImages::new(dataset.clone(), device), config)?;
    let mut out = Vec::with_capacity(dataset.len());
    for batch in loader.epoch(0) {
        let batch = batch?;
        let view = batch.view(0)?;
        let predictions = detector.predict(&view.images_on(device));
        for ((&index, target), dets) in batch.indices.iter().zip(&view.targets).zip(predictions) {
            let back = target.to_view.inverse();
            let [w, h] = target.size;
            let mut boxes = Vec::with_capacity(dets.len());
            let mut scores = Vec::with_capacity(dets.len());
            for d in dets {
                let inside = d.bbox.clip(w as f32, h as f32);
                let original = back.as_ref().map_or(inside, |m| m.map_box(&inside));
                if original.is_valid() {
                    boxes.push(original);
                    scores.push(d.score);
                }
            }
            out.push(ItemDetections {
                index,
                boxes,
                scores,
            });
        }
        progress(out.len());
    }
    Ok(out)
}
