//! Loader batches as tensors and detector targets.
//!
//! Training batches reach the training thread as [`ReadyBatch`]es: the
//! loader's worker has already made each view's images one tensor (in
//! pinned memory when the run trains on a GPU), so the training thread only
//! starts a non-blocking copy to the device.

use std::sync::Arc;

use tch::{Device, Kind, Tensor};
use uld_core::{Error, Result};
use uld_data::loader::{Dataset, SampleRng, Target, TrainBatch};
use uld_model::ImageTargets;

/// The annotated boxes (weight 1) and ignore regions of each image.
pub fn annotated_targets(targets: &[Target]) -> Vec<ImageTargets> {
    targets
        .iter()
        .map(|t| ImageTargets {
            boxes: t.boxes.clone(),
            box_weights: vec![1.0; t.boxes.len()],
            ignore: t.ignore.clone(),
        })
        .collect()
}

/// `data` as a float tensor of `shape` in host memory, copied on the calling
/// thread alone. `Tensor::from_slice` first zero-fills with libtorch's
/// thread team, and on a loader worker that is a second team competing with
/// the training thread's for the cores (measured: every CPU step 30%
/// slower on 2 cores).
fn host_tensor(data: &[f32], shape: [i64; 4]) -> Tensor {
    let tensor = Tensor::empty(shape, (Kind::Float, Device::Cpu));
    assert_eq!(
        tensor.numel(),
        data.len(),
        "an image batch's shape matches its pixels"
    );
    // SAFETY: `tensor` is a new contiguous float tensor of `data.len()`
    // elements that nothing else refers to, and `data` does not overlap it.
    unsafe {
        std::ptr::copy_nonoverlapping(data.as_ptr(), tensor.data_ptr().cast::<f32>(), data.len());
    }
    tensor
}

/// One view of a [`ReadyBatch`].
pub struct ReadyView {
    /// `[B, C, H, W]` in host memory, pinned when the batch is for a GPU.
    pub images: Tensor,
    /// Each image's boxes and geometry.
    pub targets: Vec<Target>,
}

impl ReadyView {
    /// The images on `device`: from pinned memory the copy does not block
    /// the host; on the CPU they are the same tensor.
    pub fn images_on(&self, device: Device) -> Tensor {
        self.images
            .to_device_(device, self.images.kind(), true, false)
    }
}

/// A training batch whose images are tensors, made on a loader worker.
pub struct ReadyBatch {
    /// Dataset item of each image.
    pub indices: Vec<usize>,
    pub views: Vec<ReadyView>,
}

impl ReadyBatch {
    /// Moves `batch`'s pixels into tensors, pinned for `device` when it is
    /// a GPU.
    pub fn new(batch: TrainBatch, device: Device) -> Result<Self> {
        let views = batch
            .views
            .into_iter()
            .map(|view| {
                let images = host_tensor(&view.data, view.shape.map(|d| d as i64));
                let images = match device {
                    Device::Cpu => images,
                    // `_pin_memory`: `pin_memory(device)` warns that its
                    // argument is deprecated, on every call.
                    _ => images.f_internal_pin_memory(device).map_err(|e| {
                        Error::invalid("batch", format!("pinning its images in memory: {e}"))
                    })?,
                };
                Ok(ReadyView {
                    images,
                    targets: view.targets,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            indices: batch.indices,
            views,
        })
    }

    /// View `k`, or an error naming what the objective needs.
    pub fn view(&self, k: usize) -> Result<&ReadyView> {
        self.views.get(k).ok_or_else(|| {
            Error::invalid(
                "batch",
                format!(
                    "has {} views, the objective needs view {k}",
                    self.views.len()
                ),
            )
        })
    }
}

/// A dataset of training batches whose collation, on the loader's worker,
/// also makes the [`ReadyBatch`] for `device`.
pub struct ReadyImages<S> {
    inner: Arc<S>,
    device: Device,
}

impl<S> ReadyImages<S> {
    pub fn new(inner: Arc<S>, device: Device) -> Arc<Self> {
        Arc::new(Self { inner, device })
    }
}

impl<S: Dataset<Batch = TrainBatch>> Dataset for ReadyImages<S> {
    type Item = S::Item;
    type Batch = ReadyBatch;

    fn len(&self) -> usize {
        self.inner.len()
    }

    fn get(&self, index: usize, rng: &mut SampleRng) -> Result<S::Item> {
        self.inner.get(index, rng)
    }

    fn collate(&self, items: Vec<S::Item>) -> Result<ReadyBatch> {
        ReadyBatch::new(self.inner.collate(items)?, self.device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uld_data::augment::Affine2;
    use uld_data::loader::ImageBatch;

    #[test]
    fn a_ready_batch_holds_the_batch_images_and_targets() {
        let target = Target {
            boxes: vec![uld_core::Box2::new(1.0, 1.0, 3.0, 3.0)],
            box_ids: vec![0],
            ignore: Vec::new(),
            to_view: Affine2::IDENTITY,
            size: [4, 2],
        };
        let view = ImageBatch {
            shape: [1, 1, 2, 4],
            data: (0..8).map(|v| v as f32).collect(),
            targets: vec![target.clone()],
        };
        let expected = Tensor::from_slice(&view.data).view([1, 1, 2, 4]);
        let ready = ReadyBatch::new(
            TrainBatch {
                indices: vec![7],
                views: vec![view],
            },
            Device::Cpu,
        )
        .unwrap();
        assert_eq!(ready.indices, vec![7]);
        let images = ready.view(0).unwrap().images_on(Device::Cpu);
        assert_eq!(images.size(), vec![1, 1, 2, 4]);
        assert!(images.equal(&expected));
        assert_eq!(ready.view(0).unwrap().targets, vec![target]);
        assert!(ready.view(1).is_err());
    }
}
