//! Loader batches as tensors and detector targets.

use tch::{Device, Tensor};
use uld_data::loader::ImageBatch;
use uld_model::ImageTargets;

/// The batch's images as one `[B, C, H, W]` float tensor on `device`.
pub fn images_tensor(batch: &ImageBatch, device: Device) -> Tensor {
    let shape = batch.shape.map(|d| d as i64);
    Tensor::from_slice(&batch.data)
        .view(shape)
        .to_device(device)
}

/// The annotated boxes (weight 1) and ignore regions of each image.
pub fn annotated_targets(batch: &ImageBatch) -> Vec<ImageTargets> {
    batch
        .targets
        .iter()
        .map(|t| ImageTargets {
            boxes: t.boxes.clone(),
            box_weights: vec![1.0; t.boxes.len()],
            ignore: t.ignore.clone(),
        })
        .collect()
}
