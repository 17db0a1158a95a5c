//! Detection over whole volumes (a user's NIfTI, DICOM or DeepLesion scan):
//! every chosen slice becomes a 2.5D sample exactly as in training (the
//! run's [`SampleConfig`]: window, spacing, slice interval), batches are
//! built on worker threads, and the per-slice boxes are linked into 3D
//! lesions (tracklets) as for the `harvester` and `lens` protocols.

use std::sync::Arc;

use uld_core::{Error, Result, Volume};
use uld_data::augment::View;
use uld_data::loader::{Dataset, ImageBatch, SampleRng, TrainBatch, TrainItem};
use uld_data::sample::{SampleConfig, VolumeSource, build_sample};
use uld_model::Detector;

use crate::detect::detect_items;
use crate::tracklets::{SliceDetection, Tracklet, link_tracklets};
use crate::validate::{DetectSettings, LINK_IOU};

/// The chosen slices of one volume as a dataset of plain views.
pub struct VolumeDataset {
    volume: Arc<Volume<i16>>,
    slices: Vec<usize>,
    sample: SampleConfig,
    size_divisor: usize,
}

impl VolumeDataset {
    /// `slices` are 0-based indices into `volume`.
    pub fn new(
        volume: Arc<Volume<i16>>,
        slices: Vec<usize>,
        sample: SampleConfig,
        size_divisor: usize,
    ) -> Result<Self> {
        sample.check()?;
        if let Some(&z) = slices.iter().find(|&&z| z >= volume.depth()) {
            return Err(Error::invalid(
                "slice",
                format!("{z} is outside a volume of {} slices", volume.depth()),
            ));
        }
        Ok(Self {
            volume,
            slices,
            sample,
            size_divisor,
        })
    }

    /// The volume slice of item `index`.
    pub fn slice_of(&self, index: usize) -> usize {
        self.slices[index]
    }
}

impl Dataset for VolumeDataset {
    type Item = TrainItem;
    type Batch = TrainBatch;

    fn len(&self) -> usize {
        self.slices.len()
    }

    fn get(&self, index: usize, _rng: &mut SampleRng) -> Result<TrainItem> {
        let z = *self
            .slices
            .get(index)
            .ok_or_else(|| Error::invalid("item", format!("{index} of {}", self.slices.len())))?;
        let source = VolumeSource::new(&self.volume, z)?;
        let sample = build_sample(&source, &[], &[], &self.sample)?;
        Ok(TrainItem {
            index,
            views: vec![View::identity(sample)],
        })
    }

    fn collate(&self, items: Vec<TrainItem>) -> Result<TrainBatch> {
        let indices = items.iter().map(|i| i.index).collect();
        let views: Vec<View> = items
            .into_iter()
            .filter_map(|i| i.views.into_iter().next())
            .collect();
        let fill = self.sample.normalization.fill_value();
        Ok(TrainBatch {
            indices,
            views: vec![ImageBatch::collate(&views, self.size_divisor, fill)],
        })
    }
}

/// Detects on `slices` of `volume` (0-based; all of them when empty) and
/// links the boxes into lesions, best score first; slice numbers in the
/// result are the volume's. `progress` is told how many slices are done.
pub fn detect_volume(
    detector: &dyn Detector,
    volume: Arc<Volume<i16>>,
    slices: &[usize],
    settings: &DetectSettings,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Tracklet>> {
    let slices = if slices.is_empty() {
        (0..volume.depth()).collect()
    } else {
        slices.to_vec()
    };
    let dataset = Arc::new(VolumeDataset::new(
        volume,
        slices,
        settings.sample.clone(),
        settings.size_divisor,
    )?);
    let items = detect_items(
        detector,
        dataset.clone(),
        settings.batch_size,
        settings.workers,
        settings.device,
        progress,
    )?;
    let mut detections = Vec::new();
    for item in items {
        let slice = dataset.slice_of(item.index) as u32;
        for (bbox, score) in item.boxes.into_iter().zip(item.scores) {
            detections.push(SliceDetection { slice, bbox, score });
        }
    }
    Ok(link_tracklets(&detections, LINK_IOU))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uld_data::loader::sample_rng;

    fn volume() -> Arc<Volume<i16>> {
        // Slice z holds HU 100 * z, so a sample's channels tell which slice they came from.
        let data = (0..5).flat_map(|z| vec![100 * z as i16; 40 * 30]).collect();
        Arc::new(Volume::new([40, 30, 5], [1.0, 1.0, 2.0], data).unwrap())
    }

    fn config() -> SampleConfig {
        SampleConfig {
            target_spacing_mm: None,
            max_side: None,
            slice_interval_mm: None,
            groups: 1,
            crop: uld_data::sample::CropConfig {
                enabled: false,
                ..Default::default()
            },
            ..SampleConfig::default()
        }
    }

    #[test]
    fn items_are_the_chosen_slices_with_their_neighbours_as_in_training() {
        let d = VolumeDataset::new(volume(), vec![0, 3], config(), 16).unwrap();
        assert_eq!((d.len(), d.slice_of(1)), (2, 3));
        let item = d.get(1, &mut sample_rng(0, 0, 1)).unwrap();
        let image = &item.views[0].image;
        assert_eq!((image.channels, image.width, image.height), (3, 40, 30));
        let norm = config().normalization;
        // Channels: slices 2, 3, 4 around key slice 3.
        for (c, z) in [(0, 2), (1, 3), (2, 4)] {
            assert_eq!(image.get(c, 5, 5), norm.apply(100.0 * z as f32));
        }
        // At the volume's edge the missing neighbour repeats the first slice.
        let edge = d.get(0, &mut sample_rng(0, 0, 0)).unwrap();
        assert_eq!(edge.views[0].image.get(0, 0, 0), norm.apply(0.0));
        let batch = d.collate(vec![edge, item]).unwrap();
        assert_eq!(batch.indices, vec![0, 1]);
        assert_eq!(
            batch.views[0].shape,
            [2, 3, 32, 48],
            "padded to the divisor"
        );
    }

    #[test]
    fn slices_outside_the_volume_are_refused() {
        let err = VolumeDataset::new(volume(), vec![1, 5], config(), 16)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("5 is outside a volume of 5 slices"), "{err}");
    }
}
