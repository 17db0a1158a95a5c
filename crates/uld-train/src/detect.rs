//! Running a detector over the images of a dataset (DeepLesion key images,
//! or the slices of a whole volume), with every box mapped back to the
//! original slice's pixels.

use std::sync::Arc;

use tch::Device;
use uld_core::{Box2, Result};
use uld_data::loader::{
    Dataset, DeepLesionDataset, KeyImage, Loader, LoaderConfig, TrainBatch, ViewMode,
};
use uld_data::sample::SampleConfig;
use uld_model::Detector;

use crate::batch::ReadyImages;
use crate::device::use_threads;
use crate::step::Precision;

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

/// How detection runs: sample building, batch size, loader and libtorch
/// threads, device and the precision of the forward passes.
#[derive(Debug, Clone)]
pub struct DetectSettings {
    pub sample: SampleConfig,
    pub batch_size: usize,
    pub workers: usize,
    pub device: Device,
    pub size_divisor: usize,
    pub precision: Precision,
    /// libtorch's intra-op CPU threads (the run's `threads`,
    /// [`use_threads`]); its default, one per core, spins more than it
    /// computes on a busy machine.
    pub threads: i32,
}

impl DetectSettings {
    fn dataset(&self, images: Vec<KeyImage>) -> Result<Arc<DeepLesionDataset>> {
        let mut d = DeepLesionDataset::new(images, self.sample.clone(), ViewMode::Plain, 0)?;
        d.size_divisor = self.size_divisor;
        Ok(Arc::new(d))
    }

    /// Detects on every key image.
    pub fn detect(
        &self,
        detector: &dyn Detector,
        images: Vec<KeyImage>,
    ) -> Result<Vec<KeyImageDetections>> {
        let dataset = self.dataset(images)?;
        let items = detect_items(detector, dataset.clone(), self, &mut |_| {})?;
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
}

/// Detects on every item of any dataset of plain views, in batches built on
/// `workers` threads; `progress` is told the number of items done after
/// each batch.
pub fn detect_items<D: Dataset<Batch = TrainBatch>>(
    detector: &dyn Detector,
    dataset: Arc<D>,
    settings: &DetectSettings,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<ItemDetections>> {
    let device = settings.device;
    use_threads(settings.threads);
    let config = LoaderConfig {
        batch_size: settings.batch_size,
        workers: settings.workers,
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
        let images = view.images_on(device);
        let predictions = settings.precision.run(device, || detector.predict(&images));
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
