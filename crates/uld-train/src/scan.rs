//! Detection over whole volumes (a user's NIfTI, DICOM or DeepLesion scan):
//! every chosen slice becomes a 2.5D sample exactly as in training (the
//! run's [`SampleConfig`]: window, spacing, slice interval), seen in
//! DeepLesion's orientation, batches are built on worker threads, and the
//! per-slice boxes are linked into 3D lesions (tracklets) as for the
//! `harvester` and `lens` protocols. Memory: the volume (shared, never
//! copied) plus the batches in flight.

use std::path::Path;
use std::sync::Arc;

use uld_core::{Error, Result, Volume};
use uld_data::augment::View;
use uld_data::loader::{Dataset, ImageBatch, SampleRng, TrainBatch, TrainItem};
use uld_data::reorient::AxisMap;
use uld_data::sample::{SampleConfig, VolumeSource, build_sample};
use uld_model::Detector;

use crate::detect::detect_items;
use crate::tracklets::{SliceDetection, Tracklet, link_tracklets};
use crate::validate::{DetectSettings, LINK_IOU};

/// The chosen slices of one volume, re-indexed by an [`AxisMap`] slice by
/// slice (the volume is shared, never copied), as a dataset of plain views.
pub struct VolumeDataset {
    volume: Arc<Volume<i16>>,
    map: AxisMap,
    slices: Vec<usize>,
    sample: SampleConfig,
    size_divisor: usize,
}

impl VolumeDataset {
    /// `slices` are 0-based indices into the volume as `map` re-indexes it.
    pub fn new(
        volume: Arc<Volume<i16>>,
        map: AxisMap,
        slices: Vec<usize>,
        sample: SampleConfig,
        size_divisor: usize,
    ) -> Result<Self> {
        sample.check()?;
        let depth = map.target_dims(volume.dims())[2];
        if let Some(&z) = slices.iter().find(|&&z| z >= depth) {
            return Err(Error::invalid(
                "slice",
                format!("{z} is outside a volume of {depth} slices"),
            ));
        }
        Ok(Self {
            volume,
            map,
            slices,
            sample,
            size_divisor,
        })
    }

    /// The (re-indexed) slice of item `index`.
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
        let source = VolumeSource::oriented(&self.volume, z, self.map)?;
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

/// How a scan was oriented for detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orientation {
    /// Re-indexed as DeepLesion's PNGs show slices (columns towards the
    /// patient's left, rows posterior, slices superior: `map`), boxes mapped
    /// back to the source's voxel indices.
    Lps(AxisMap),
    /// In the source's own array order: it has no world transform, is
    /// already LPS-ordered, or its slices are not axial (re-indexing would
    /// not keep slices as slices).
    Source,
}

impl Orientation {
    /// The orientation detection uses for `volume`.
    pub fn of(volume: &Volume<i16>) -> Self {
        match AxisMap::to_lps(volume.world(), Path::new("")) {
            Ok(map) if map.keeps_slices() && !map.is_identity() => Self::Lps(map),
            _ => Self::Source,
        }
    }

    /// The re-indexing detection applies.
    pub fn map(self) -> AxisMap {
        match self {
            Self::Lps(map) => map,
            Self::Source => AxisMap::IDENTITY,
        }
    }
}

/// Detects on `slices` of a scan (0-based source indices; all when empty),
/// shown as training data are ([`Orientation::of`]), and links the boxes
/// into lesions, best first. Boxes and slices in the result are the
/// source's voxel indices. `progress` is told how many slices are done.
pub fn detect_scan(
    detector: &dyn Detector,
    volume: Arc<Volume<i16>>,
    slices: &[usize],
    settings: &DetectSettings,
    progress: &mut dyn FnMut(usize),
) -> Result<(Vec<Tracklet>, Orientation)> {
    let orientation = Orientation::of(&volume);
    let map = orientation.map();
    let dims = volume.dims();
    let slices: Vec<usize> = if slices.is_empty() {
        (0..volume.depth()).collect()
    } else {
        slices.to_vec()
    };
    let shown = slices.iter().map(|&z| map.other_slice(z, dims)).collect();
    let dataset = Arc::new(VolumeDataset::new(
        volume,
        map,
        shown,
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
        let slice = map.other_slice(dataset.slice_of(item.index), dims) as u32;
        for (bbox, score) in item.boxes.into_iter().zip(item.scores) {
            let bbox = map.box_to_source(bbox, dims);
            detections.push(SliceDetection { slice, bbox, score });
        }
    }
    Ok((link_tracklets(&detections, LINK_IOU), orientation))
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
        let d = VolumeDataset::new(volume(), AxisMap::IDENTITY, vec![0, 3], config(), 16).unwrap();
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

    /// Reports one box around the first pixel (row-major) of the key
    /// channel above `threshold`: which of two spots it finds depends on
    /// the orientation of the image it is shown.
    struct FirstSpot {
        threshold: f64,
    }

    impl Detector for FirstSpot {
        fn loss(
            &self,
            _: &tch::Tensor,
            _: &[uld_model::ImageTargets],
            _: bool,
        ) -> uld_model::LossTerms {
            unreachable!("detection only")
        }

        fn predict(&self, images: &tch::Tensor) -> Vec<Vec<uld_model::Detection>> {
            let (n, c, _, w) = images.size4().unwrap();
            (0..n)
                .map(|i| {
                    let key = images.get(i).get(c / 2);
                    let hits = key.gt(self.threshold).nonzero();
                    if hits.size()[0] == 0 {
                        return Vec::new();
                    }
                    let (y, x) = (hits.int64_value(&[0, 0]), hits.int64_value(&[0, 1]));
                    assert!(x < w);
                    vec![uld_model::Detection {
                        bbox: uld_core::Box2::new(
                            x as f32,
                            y as f32,
                            x as f32 + 2.0,
                            y as f32 + 2.0,
                        ),
                        score: 0.9,
                    }]
                })
                .collect()
        }
    }

    #[test]
    fn a_ras_ordered_scan_is_shown_to_the_detector_as_lps_and_boxes_come_back_in_its_indices() {
        let (nx, ny, nz) = (40, 30, 4);
        let mut data = vec![0i16; nx * ny * nz];
        // Two spots on slices 1-2: at source (5, 4) and (30, 20).
        for z in 1..=2 {
            for (x, y) in [(5, 4), (30, 20)] {
                data[(z * ny + y) * nx + x] = 1000;
            }
        }
        // i towards R, j towards A: LPS order reverses both.
        let world = uld_core::WorldTransform {
            matrix: [
                [1.0, 0.0, 0.0, 0.0],
                [0.0, 1.0, 0.0, 0.0],
                [0.0, 0.0, 2.0, 0.0],
            ],
            frame: uld_core::Frame::Ras,
        };
        let volume = Volume::new([nx, ny, nz], [1.0, 1.0, 2.0], data)
            .unwrap()
            .with_world(world);
        let settings = DetectSettings {
            sample: config(),
            batch_size: 2,
            workers: 0,
            device: tch::Device::Cpu,
            size_divisor: 8,
        };
        let detector = FirstSpot {
            threshold: f64::from(config().normalization.apply(500.0)),
        };
        let mut done = 0;
        let (tracklets, orientation) =
            detect_scan(&detector, Arc::new(volume), &[], &settings, &mut |n| {
                done = n
            })
            .unwrap();
        assert_eq!(done, 4);
        let Orientation::Lps(map) = orientation else {
            panic!("a RAS-ordered scan is re-indexed");
        };
        assert_eq!(map.flip, [true, true, false]);
        assert_eq!(tracklets.len(), 1);
        let t = &tracklets[0];
        assert_eq!(
            t.boxes.iter().map(|d| d.slice).collect::<Vec<_>>(),
            vec![1, 2]
        );
        // Shown LPS-ordered, the first spot is the one at source (30, 20);
        // its box [x, x + 2] comes back as [x - 2, x] in source indices.
        assert_eq!(t.boxes[0].bbox, uld_core::Box2::new(28.0, 18.0, 30.0, 20.0));
    }

    #[test]
    fn slices_outside_the_volume_are_refused() {
        let err = VolumeDataset::new(volume(), AxisMap::IDENTITY, vec![1, 5], config(), 16)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("5 is outside a volume of 5 slices"), "{err}");
    }
}
