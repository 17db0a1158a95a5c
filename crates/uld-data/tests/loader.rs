//! The batch loader: order, determinism across thread counts, errors.

use std::path::Path;
use std::sync::Arc;

use uld_core::testdata::shared_data;
use uld_core::{Box2, Result};
use uld_data::deeplesion::{HuSlice, read_dl_info, write_png_hu};
use uld_data::loader::{
    Dataset, DeepLesionDataset, KeyImage, Loader, LoaderConfig, NoisyPolicy, SampleRng, TrainBatch,
    ViewMode, epoch_order,
};
use uld_data::sample::SampleConfig;

/// A series folder of slices 1..=n: a body whose HU depends on the slice and
/// the key image number (so every item differs), with a small bright lesion.
fn write_series(dir: &Path, n: u32, id: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let (w, h) = (80usize, 64usize);
    for k in 1..=n {
        let mut hu = vec![-1000i16; w * h];
        for y in 6..58 {
            for x in 8..72 {
                let v = 10 * k as i32 + id as i32 + ((x * 7 + y * 13) % 17) as i32;
                hu[y * w + x] = if (30..42).contains(&x) && (20..30).contains(&y) {
                    300
                } else {
                    v as i16
                };
            }
        }
        write_png_hu(
            dir.join(format!("{k:03}.png")),
            &HuSlice {
                width: w,
                height: h,
                hu,
            },
        )
        .unwrap();
    }
}

fn dataset(root: &Path, images: usize, views: ViewMode, cache: usize) -> DeepLesionDataset {
    let keys = (0..images)
        .map(|i| {
            let dir = root.join(format!("Images_png/{:06}_01_01", i / 3));
            if !dir.exists() {
                write_series(&dir, 9, i as u32);
            }
            KeyImage {
                series_dir: dir,
                key_png: 3 + (i % 3) as u32 * 2,
                file_name: format!("{:06}_01_01_{:03}.png", i / 3, 3 + (i % 3) * 2),
                spacing: [0.7, 0.7, 2.5],
                boxes: vec![Box2::new(29.0, 19.0, 43.0, 31.0)],
                ignore: vec![Box2::new(10.0, 40.0, 20.0, 50.0)],
            }
        })
        .collect();
    DeepLesionDataset::new(keys, SampleConfig::default(), views, cache).unwrap()
}

fn run_epoch(loader: &Loader<DeepLesionDataset>, epoch: u64) -> Vec<TrainBatch> {
    loader.epoch(epoch).collect::<Result<Vec<_>>>().unwrap()
}

#[test]
fn batches_are_the_same_whatever_the_number_of_workers() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Arc::new(dataset(tmp.path(), 11, ViewMode::WeakStrong, 0));
    let config = |workers| LoaderConfig {
        batch_size: 3,
        workers,
        prefetch: 2,
        seed: 42,
        ..LoaderConfig::default()
    };
    let inline = run_epoch(&Loader::new(ds.clone(), config(0)).unwrap(), 1);
    let one = run_epoch(&Loader::new(ds.clone(), config(1)).unwrap(), 1);
    let two = run_epoch(&Loader::new(ds.clone(), config(2)).unwrap(), 1);
    assert_eq!(inline.len(), 4, "11 items in batches of 3");
    assert!(one == inline, "1 worker differs from inline");
    assert!(two == inline, "2 workers differ from inline");
    // Every item once, in the seeded order; the last batch is short.
    let seen: Vec<usize> = inline.iter().flat_map(|b| b.indices.clone()).collect();
    assert_eq!(seen, epoch_order(11, 42, 1, true));
    assert_eq!(inline[3].indices.len(), 2);
    // Two views, each a padded [B, 9, H, W] tensor with per-image targets.
    let b = &inline[0];
    assert_eq!(b.views.len(), 2);
    let [n, c, h, w] = b.views[1].shape;
    assert_eq!((n, c, h % 32, w % 32), (3, 9, 0, 0));
    assert_eq!(b.views[1].data.len(), n * c * h * w);
    assert_eq!(b.views[0].targets[0].boxes.len(), 1);
    // A different epoch: another order and other augmentations.
    let other = run_epoch(&Loader::new(ds, config(2)).unwrap(), 2);
    assert_ne!(other[0].indices, inline[0].indices);
}

#[test]
fn a_resumed_epoch_gives_the_remaining_batches_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Arc::new(dataset(tmp.path(), 11, ViewMode::WeakStrong, 0));
    let loader = Loader::new(
        ds,
        LoaderConfig {
            batch_size: 3,
            workers: 2,
            seed: 7,
            ..LoaderConfig::default()
        },
    )
    .unwrap();
    let whole = run_epoch(&loader, 3);
    let rest: Vec<TrainBatch> = loader.epoch_from(3, 2).collect::<Result<Vec<_>>>().unwrap();
    assert!(rest == whole[2..], "batches 2.. of the epoch, built alone");
    assert_eq!(loader.epoch_from(3, 9).count(), 0, "past the end: nothing");
}

#[test]
fn cache_serves_repeated_slices_without_changing_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = Arc::new(dataset(tmp.path(), 6, ViewMode::Strong, 0));
    let cached = Arc::new(dataset(tmp.path(), 6, ViewMode::Strong, 64 << 20));
    let config = LoaderConfig {
        batch_size: 2,
        workers: 2,
        seed: 3,
        ..LoaderConfig::default()
    };
    let a = run_epoch(&Loader::new(plain, config.clone()).unwrap(), 0);
    let loader = Loader::new(cached.clone(), config).unwrap();
    let b = run_epoch(&loader, 0);
    assert!(a == b);
    let cache = cached.cache().unwrap();
    let (hits, misses) = cache.stats();
    // 2 series of 9 slices are held once each; other reads are hits (two
    // workers missing the same slice at once may both decode it).
    assert_eq!(cache.bytes(), 18 * 80 * 64 * 2);
    assert!(misses >= 18 && hits > 0, "{hits} hits, {misses} misses");
    run_epoch(&loader, 1);
    assert_eq!(cache.stats().1, misses, "the second epoch decodes nothing");
}

#[test]
fn boxes_in_batches_map_back_to_original_pixels() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = Arc::new(dataset(tmp.path(), 3, ViewMode::Weak, 0));
    let loader = Loader::new(
        ds,
        LoaderConfig {
            batch_size: 3,
            workers: 1,
            ..LoaderConfig::default()
        },
    )
    .unwrap();
    for batch in run_epoch(&loader, 0) {
        for t in &batch.views[0].targets {
            let back = t.to_view.inverse().unwrap().map_box(&t.boxes[0]);
            let orig = Box2::new(29.0, 19.0, 43.0, 31.0);
            let err = back
                .to_array()
                .iter()
                .zip(orig.to_array())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < 1e-3, "{back:?}");
        }
    }
}

#[test]
fn a_missing_series_is_an_error_naming_it_not_a_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ds = dataset(tmp.path(), 3, ViewMode::Plain, 0);
    let mut keys = ds.images().to_vec();
    keys[1].series_dir = tmp.path().join("Images_png/999999_01_01");
    ds = DeepLesionDataset::new(keys, SampleConfig::default(), ViewMode::Plain, 0).unwrap();
    let loader = Loader::new(
        Arc::new(ds),
        LoaderConfig {
            batch_size: 1,
            workers: 2,
            shuffle: false,
            ..LoaderConfig::default()
        },
    )
    .unwrap();
    let results: Vec<_> = loader.epoch(0).collect();
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[2].is_ok());
    let err = results[1].as_ref().err().unwrap().to_string();
    assert!(err.contains("999999_01_01"), "{err}");
}

/// A dataset that panics on one item.
struct Panicky;

impl Dataset for Panicky {
    type Item = usize;
    type Batch = Vec<usize>;
    fn len(&self) -> usize {
        4
    }
    fn get(&self, index: usize, _rng: &mut SampleRng) -> Result<usize> {
        assert_ne!(index, 2, "item 2 is broken");
        Ok(index)
    }
    fn collate(&self, items: Vec<usize>) -> Result<Vec<usize>> {
        Ok(items)
    }
}

#[test]
fn a_panicking_item_becomes_an_error_and_others_still_arrive() {
    let config = LoaderConfig {
        batch_size: 1,
        workers: 2,
        shuffle: false,
        ..LoaderConfig::default()
    };
    let loader = Loader::new(Arc::new(Panicky), config).unwrap();
    let results: Vec<_> = loader.epoch(0).collect();
    assert_eq!(results.len(), 4);
    assert!(results[2].is_err());
    assert_eq!(results[3].as_ref().unwrap(), &vec![3]);
    let dropped = LoaderConfig {
        batch_size: 3,
        drop_last: true,
        workers: 0,
        shuffle: false,
        ..LoaderConfig::default()
    };
    let batches: Vec<_> = Loader::new(Arc::new(Panicky), dropped)
        .unwrap()
        .epoch(0)
        .collect();
    assert_eq!(batches.len(), 1, "the short last batch is left out");
}

#[test]
fn real_rows_group_into_key_images_with_the_noisy_policy() {
    let root = shared_data("deeplesion");
    let rows = read_dl_info(root.join("DL_info_val.csv")).unwrap();
    let names: std::collections::HashSet<&str> =
        rows.iter().map(|r| r.file_name.as_str()).collect();
    let noisy = rows.iter().filter(|r| r.possibly_noisy).count();
    assert!(noisy > 0, "the val split has noisy rows");
    let keep = KeyImage::from_records(&root, &rows, NoisyPolicy::Keep);
    assert_eq!(keep.len(), names.len());
    assert_eq!(
        keep.iter().map(|k| k.boxes.len()).sum::<usize>(),
        rows.len()
    );
    let ignore = KeyImage::from_records(&root, &rows, NoisyPolicy::Ignore);
    assert_eq!(ignore.iter().map(|k| k.ignore.len()).sum::<usize>(), noisy);
    assert_eq!(
        ignore.iter().map(|k| k.boxes.len()).sum::<usize>(),
        rows.len() - noisy
    );
    let drop = KeyImage::from_records(&root, &rows, NoisyPolicy::Drop);
    assert_eq!(
        drop.iter()
            .map(|k| k.boxes.len() + k.ignore.len())
            .sum::<usize>(),
        rows.len() - noisy
    );
    let first = &keep[0];
    assert!(
        first
            .series_dir
            .ends_with(format!("Images_png/{}", rows[0].series_id()))
    );
    assert_eq!(
        (first.key_png, first.spacing),
        (rows[0].key_slice_png, rows[0].spacing)
    );
}

/// Items 0..n, as they are.
struct Numbers(usize);

impl Dataset for Numbers {
    type Item = usize;
    type Batch = Vec<usize>;
    fn len(&self) -> usize {
        self.0
    }
    fn get(&self, index: usize, _rng: &mut SampleRng) -> Result<usize> {
        Ok(index)
    }
    fn collate(&self, items: Vec<usize>) -> Result<Vec<usize>> {
        Ok(items)
    }
}

#[test]
fn ranks_split_every_batch_of_one_loader_with_their_combined_batch_size() {
    let config = |batch_size| LoaderConfig {
        batch_size,
        workers: 1,
        seed: 7,
        ..LoaderConfig::default()
    };
    let data = Arc::new(Numbers(23));
    let whole: Vec<Vec<usize>> = Loader::new(data.clone(), config(6))
        .unwrap()
        .epoch(3)
        .collect::<Result<_>>()
        .unwrap();
    let ranks: Vec<Vec<Vec<usize>>> = (0..3)
        .map(|rank| {
            Loader::new(data.clone(), config(2))
                .unwrap()
                .with_shard(rank, 3)
                .unwrap()
                .epoch(3)
                .collect::<Result<_>>()
                .unwrap()
        })
        .collect();
    // 23 items: three whole global batches of 6; the last 5 are left out.
    for batches in &ranks {
        assert_eq!(batches.len(), 3, "every rank takes the same steps");
    }
    for (step, global) in whole.iter().take(3).enumerate() {
        let joined: Vec<usize> = ranks.iter().flat_map(|b| b[step].clone()).collect();
        assert_eq!(&joined, global, "step {step}: the ranks hold the big batch");
    }
    assert!(
        Loader::new(data, config(2))
            .unwrap()
            .with_shard(3, 3)
            .is_err(),
        "a rank past the number of ranks is refused"
    );
}
