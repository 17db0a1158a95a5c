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

use crate::detect::{DetectSettings, detect_items};
use crate::tracklets::{SliceDetection, Tracklet, link_tracklets};
use crate::validate::LINK_IOU;

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

/// Slices to detect on, as a user writes them: 0-based inclusive ranges
/// and single slices, `10-40,52`. Kept as ranges until a scan's slice
/// count is known ([`SliceRanges::resolve`]), so a range past the end is an
/// error naming the count, never a list of a billion slices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceRanges {
    /// Inclusive `(first, last)` ranges in the order given; `first <= last`.
    ranges: Vec<(usize, usize)>,
}

impl SliceRanges {
    /// Parses `10-40,50` (spaces allowed, empty parts ignored): each part a
    /// 0-based slice number or an inclusive range `a-b` with `a <= b`.
    pub fn parse(s: &str) -> Result<Self> {
        let invalid = |message: String| Error::invalid("slices", message);
        let mut ranges = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let number = |t: &str| {
                t.trim()
                    .parse::<usize>()
                    .map_err(|_| invalid(format!("`{t}` in `{s}` is not a slice number (0-based)")))
            };
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (number(a)?, number(b)?);
                    if b < a {
                        return Err(invalid(format!(
                            "`{part}`: the range ends before it starts"
                        )));
                    }
                    ranges.push((a, b));
                }
                None => {
                    let z = number(part)?;
                    ranges.push((z, z));
                }
            }
        }
        if ranges.is_empty() {
            return Err(invalid("no slices given".into()));
        }
        Ok(Self { ranges })
    }

    /// The inclusive ranges, in the order given.
    pub fn ranges(&self) -> &[(usize, usize)] {
        &self.ranges
    }

    /// The slices of a scan of `depth` slices these ranges name, ascending,
    /// each once; an error naming the scan's slice count when one lies
    /// past its end.
    pub fn resolve(&self, depth: usize) -> Result<Vec<usize>> {
        if let Some(&(a, b)) = self.ranges.iter().find(|&&(_, b)| b >= depth) {
            let part = if a == b {
                format!("slice {b}")
            } else {
                format!("{a}-{b}")
            };
            let has = match depth {
                0 => "no slices".to_string(),
                1 => "1 slice (0)".to_string(),
                n => format!("{n} slices (0-{})", n - 1),
            };
            return Err(Error::invalid(
                "slices",
                format!("{part} lies past the scan's end: it has {has}"),
            ));
        }
        let mut slices: Vec<usize> = self.ranges.iter().flat_map(|&(a, b)| a..=b).collect();
        slices.sort_unstable();
        slices.dedup();
        Ok(slices)
    }
}

impl std::str::FromStr for SliceRanges {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
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
    let items = detect_items(detector, dataset.clone(), settings, progress)?;
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

    /// Detection on the CPU in batches of 2, on the calling thread.
    fn settings(precision: crate::Precision) -> DetectSettings {
        DetectSettings {
            sample: config(),
            batch_size: 2,
            workers: 0,
            device: tch::Device::Cpu,
            size_divisor: 8,
            precision,
            threads: 0,
        }
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
        let settings = settings(crate::Precision::Fp32);
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

    /// One box per image, scored 1 when its convolution ran in bf16 (as
    /// autocast runs it) and 0 in fp32.
    struct PrecisionProbe;

    impl Detector for PrecisionProbe {
        fn loss(
            &self,
            _: &tch::Tensor,
            _: &[uld_model::ImageTargets],
            _: bool,
        ) -> uld_model::LossTerms {
            unreachable!("detection only")
        }

        fn predict(&self, images: &tch::Tensor) -> Vec<Vec<uld_model::Detection>> {
            let (n, c, _, _) = images.size4().unwrap();
            let kernel = tch::Tensor::ones([1, c, 1, 1], (tch::Kind::Float, images.device()));
            let out = images.conv2d(&kernel, None::<tch::Tensor>, 1, 0, 1, 1);
            let score = if out.kind() == tch::Kind::BFloat16 {
                1.0
            } else {
                0.0
            };
            let one = uld_model::Detection {
                bbox: uld_core::Box2::new(1.0, 1.0, 5.0, 5.0),
                score,
            };
            vec![vec![one]; n as usize]
        }
    }

    #[test]
    fn detection_runs_at_the_settings_precision_and_fp32_again_after() {
        let scores = |precision| {
            let (tracklets, _) = detect_scan(
                &PrecisionProbe,
                volume(),
                &[],
                &settings(precision),
                &mut |_| {},
            )
            .unwrap();
            let mut scores: Vec<f32> = tracklets
                .iter()
                .flat_map(|t| t.boxes.iter().map(|d| d.score))
                .collect();
            scores.dedup();
            scores
        };
        assert_eq!(
            scores(crate::Precision::Bf16),
            [1.0],
            "a bf16 run detects in bf16"
        );
        assert_eq!(
            scores(crate::Precision::Fp32),
            [0.0],
            "autocast is off again"
        );
    }

    #[test]
    fn slice_lists_parse_ranges_and_reject_nonsense() {
        let r = SliceRanges::parse("3-5, 1,4,").unwrap();
        assert_eq!(r.ranges(), [(3, 5), (1, 1), (4, 4)]);
        assert_eq!(r.resolve(6).unwrap(), [1, 3, 4, 5]);
        let err = |s: &str| SliceRanges::parse(s).unwrap_err().to_string();
        assert!(err("5-3").contains("`5-3`: the range ends before it starts"));
        assert!(err("a").contains("`a` in `a` is not a slice number"));
        assert!(err("1-x").contains("`x` in `1-x` is not a slice number"));
        assert!(err("").contains("no slices given"));
        assert!(err(" , ").contains("no slices given"));
        assert!(err("99999999999999999999999").contains("not a slice number"));
    }

    /// A range far past the scan is refused with the scan's slice count,
    /// without listing its slices (this used to allocate 800 GB).
    #[test]
    fn a_range_past_the_scan_names_its_slice_count() {
        let r: SliceRanges = "0-99999999999".parse().unwrap();
        let err = r.resolve(48).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid slices: 0-99999999999 lies past the scan's end: it has 48 slices (0-47)"
        );
        let err = SliceRanges::parse("2,48").unwrap().resolve(48).unwrap_err();
        assert!(err.to_string().contains("slice 48 lies past"), "{err}");
        let err = SliceRanges::parse("1").unwrap().resolve(1).unwrap_err();
        assert!(err.to_string().ends_with("it has 1 slice (0)"), "{err}");
        assert_eq!(
            SliceRanges::parse("47,0-1").unwrap().resolve(48).unwrap(),
            [0, 1, 47]
        );
        let all = SliceRanges::parse(&format!("0-{}", usize::MAX)).unwrap();
        assert!(all.resolve(48).is_err());
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
