//! DeepLesion key images as a training [`Dataset`]: one item per key image
//! with all its lesion boxes, as samples and augmented views.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use uld_core::{Box2, Error, Result};

use super::{Dataset, SampleRng};
use crate::affine::Affine2;
use crate::augment::{StrongConfig, View, WeakConfig, strong_view, weak_view};
use crate::deeplesion::{LesionRecord, SeriesFolder};
use crate::sample::{SampleConfig, SeriesSource, SliceCache, build_sample};

/// What to do with rows marked `Possibly_noisy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoisyPolicy {
    /// A lesion like any other (3DCE).
    Keep,
    /// Left out (MULAN, Lesion-Harvester); the image stays if it has others.
    Drop,
    /// An ignore region: neither lesion nor background.
    Ignore,
}

/// Which views each item carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewMode {
    /// The sample only (evaluation).
    Plain,
    /// One weak view (supervised training).
    Weak,
    /// One strong view.
    Strong,
    /// A weak view (teacher) and a strong view (student) of the same sample.
    WeakStrong,
}

/// One key image: where its slices are and its annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyImage {
    /// `Images_png/PPPPPP_SS_RR` under the dataset root.
    pub series_dir: PathBuf,
    pub key_png: u32,
    /// `File_name` of the key image.
    pub file_name: String,
    pub spacing: [f64; 3],
    pub boxes: Vec<Box2>,
    pub ignore: Vec<Box2>,
}

impl KeyImage {
    /// Groups `DL_info.csv` rows by key image (in first-appearance order).
    pub fn from_records(root: &Path, records: &[LesionRecord], noisy: NoisyPolicy) -> Vec<Self> {
        let mut images: Vec<Self> = Vec::new();
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        for r in records {
            let i = *by_name.entry(&r.file_name).or_insert_with(|| {
                images.push(Self {
                    series_dir: root.join("Images_png").join(r.series_id()),
                    key_png: r.key_slice_png,
                    file_name: r.file_name.clone(),
                    spacing: r.spacing,
                    boxes: Vec::new(),
                    ignore: Vec::new(),
                });
                images.len() - 1
            });
            match (r.possibly_noisy, noisy) {
                (true, NoisyPolicy::Drop) => {}
                (true, NoisyPolicy::Ignore) => images[i].ignore.push(r.bbox),
                _ => images[i].boxes.push(r.bbox),
            }
        }
        images
    }
}

/// Key images read from their series folders into samples and views.
pub struct DeepLesionDataset {
    images: Vec<KeyImage>,
    pub sample: SampleConfig,
    pub views: ViewMode,
    pub weak: WeakConfig,
    pub strong: StrongConfig,
    /// Batches are padded at the bottom and right to a multiple of this.
    pub size_divisor: usize,
    cache: Option<Arc<SliceCache>>,
    folders: Mutex<BTreeMap<PathBuf, Arc<SeriesFolder>>>,
}

impl DeepLesionDataset {
    /// `cache_bytes` of decoded slices are kept (0: no cache).
    pub fn new(
        images: Vec<KeyImage>,
        sample: SampleConfig,
        views: ViewMode,
        cache_bytes: usize,
    ) -> Result<Self> {
        sample.check()?;
        Ok(Self {
            images,
            sample,
            views,
            weak: WeakConfig::default(),
            strong: StrongConfig::default(),
            size_divisor: 32,
            cache: (cache_bytes > 0).then(|| Arc::new(SliceCache::new(cache_bytes))),
            folders: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn images(&self) -> &[KeyImage] {
        &self.images
    }

    pub fn cache(&self) -> Option<&SliceCache> {
        self.cache.as_deref()
    }

    /// The series folder's listing, read once per folder.
    fn folder(&self, dir: &Path) -> Result<Arc<SeriesFolder>> {
        if let Some(f) = self
            .folders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(dir)
        {
            return Ok(f.clone());
        }
        let folder = Arc::new(SeriesFolder::open(dir)?);
        self.folders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(dir.to_path_buf(), folder.clone());
        Ok(folder)
    }
}

/// One item: its views, in [`ViewMode`] order (weak before strong).
#[derive(Debug, Clone)]
pub struct TrainItem {
    pub index: usize,
    pub views: Vec<View>,
}

impl Dataset for DeepLesionDataset {
    type Item = TrainItem;
    type Batch = TrainBatch;

    fn len(&self) -> usize {
        self.images.len()
    }

    fn get(&self, index: usize, rng: &mut SampleRng) -> Result<TrainItem> {
        let image = self
            .images
            .get(index)
            .ok_or_else(|| Error::invalid("item", format!("{index} of {}", self.images.len())))?;
        let folder = self.folder(&image.series_dir)?;
        let source =
            SeriesSource::new(&folder, image.key_png, image.spacing, self.cache.as_deref())?;
        let sample = build_sample(&source, &image.boxes, &image.ignore, &self.sample)?;
        let views = match self.views {
            ViewMode::Plain => vec![View::identity(sample)],
            ViewMode::Weak => vec![weak_view(sample, &self.weak, rng)],
            ViewMode::Strong => vec![strong_view(&sample, &self.strong, rng)],
            ViewMode::WeakStrong => {
                // The weak draw comes first; the sample is flipped in place last.
                let flip = self.weak.draw(rng);
                let strong = strong_view(&sample, &self.strong, rng);
                let weak = if flip {
                    View::flipped(sample)
                } else {
                    View::identity(sample)
                };
                vec![weak, strong]
            }
        };
        Ok(TrainItem { index, views })
    }

    fn collate(&self, items: Vec<TrainItem>) -> Result<TrainBatch> {
        let n_views = items.first().map_or(0, |i| i.views.len());
        let indices = items.iter().map(|i| i.index).collect();
        let fill = self.sample.normalization.fill_value();
        let mut per_view: Vec<Vec<View>> = (0..n_views).map(|_| Vec::new()).collect();
        for item in items {
            for (k, v) in item.views.into_iter().enumerate() {
                per_view[k].push(v);
            }
        }
        let views = per_view
            .iter()
            .map(|views| ImageBatch::collate(views, self.size_divisor, fill))
            .collect();
        Ok(TrainBatch { indices, views })
    }
}

/// The targets of one image in a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub boxes: Vec<Box2>,
    pub box_ids: Vec<usize>,
    pub ignore: Vec<Box2>,
    /// Original slice pixels -> this image's pixels.
    pub to_view: Affine2,
    /// `[width, height]` of the image before padding.
    pub size: [usize; 2],
}

/// Images of equal channel count padded to one `[B, C, H, W]` tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageBatch {
    pub shape: [usize; 4],
    pub data: Vec<f32>,
    pub targets: Vec<Target>,
}

impl ImageBatch {
    /// Pads each view at the bottom and right (boxes do not move) to the
    /// batch's largest size rounded up to a multiple of `size_divisor`.
    pub fn collate(views: &[View], size_divisor: usize, fill: f32) -> Self {
        let d = size_divisor.max(1);
        let up = |v: usize| v.div_ceil(d) * d;
        let c = views.first().map_or(0, |v| v.image.channels);
        let h = up(views.iter().map(|v| v.image.height).max().unwrap_or(0));
        let w = up(views.iter().map(|v| v.image.width).max().unwrap_or(0));
        // Written once, in order: each row then its padding.
        let mut data = Vec::with_capacity(views.len() * c * h * w);
        for v in views {
            let img = &v.image;
            for ch in 0..c {
                if ch >= img.channels {
                    data.resize(data.len() + h * w, fill);
                    continue;
                }
                for row in img.channel(ch).chunks_exact(img.width) {
                    data.extend_from_slice(row);
                    data.resize(data.len() + w - img.width, fill);
                }
                data.resize(data.len() + (h - img.height) * w, fill);
            }
        }
        let targets = views
            .iter()
            .map(|v| Target {
                boxes: v.boxes.clone(),
                box_ids: v.box_ids.clone(),
                ignore: v.ignore.clone(),
                to_view: v.to_view,
                size: [v.image.width, v.image.height],
            })
            .collect();
        Self {
            shape: [views.len(), c, h, w],
            data,
            targets,
        }
    }
}

/// A batch: the item indices and one [`ImageBatch`] per view.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainBatch {
    pub indices: Vec<usize>,
    pub views: Vec<ImageBatch>,
}
