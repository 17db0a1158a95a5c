//! Loader throughput: samples/s building 2.5D samples from 16-bit PNG series.
//!
//! `cargo bench -p uld-data --bench loader [-- --workers N --samples N]`
//!
//! Writes a temporary DeepLesion-layout folder of 512x512 phantom series
//! (CT-like noise, so the PNGs compress like real ones: the real key slices
//! in `../shared/data/deeplesion/` are decoded too for comparison), then
//! times the loader on it: cold (every slice decoded) and with the decoded
//! slice cache warm, for plain samples and for weak+strong view pairs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use uld_core::{Box2, Result};
use uld_data::augment::{StrongConfig, WeakConfig, strong_view, weak_view};
use uld_data::deeplesion::{HuSlice, SeriesFolder, read_png_hu, write_png_hu};
use uld_data::loader::{DeepLesionDataset, KeyImage, Loader, LoaderConfig, ViewMode};
use uld_data::sample::{CropConfig, SampleConfig, SeriesSource, SliceCache, build_sample};

const SIZE: usize = 512;

/// A hash of three integers to a uniform in [0, 1).
fn hash(a: u64, b: u64, c: u64) -> f32 {
    let mut z = a.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ b.wrapping_mul(0xBF58_476D_1CE4_E5B9)
        ^ c.wrapping_mul(0x94D0_49BB_1331_11EB);
    z = (z ^ (z >> 31)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    z ^= z >> 32;
    (z >> 40) as f32 / (1u64 << 24) as f32
}

/// An abdominal phantom slice: a field-of-view circle (outside -2048 HU, the
/// DeepLesion padding), air, a table, a body ellipse with fat, muscle, liver,
/// kidneys, spine and a lesion whose size changes with `z`, plus CT noise.
fn phantom(series: u64, z: u64) -> HuSlice {
    let mut hu = vec![0i16; SIZE * SIZE];
    let c = SIZE as f32 / 2.0;
    let zf = z as f32;
    let inside = |x: f32, y: f32, cx: f32, cy: f32, rx: f32, ry: f32| {
        ((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2) < 1.0
    };
    let lesion_r = (14.0 - (zf - 20.0).abs() * 0.8).max(0.0);
    for y in 0..SIZE {
        for x in 0..SIZE {
            let (xf, yf) = (x as f32, y as f32);
            let noise = (hash(series, z, (y * SIZE + x) as u64)
                + hash(series + 7, z, (y * SIZE + x) as u64)
                - 1.0)
                * 40.0;
            let v = if (xf - c).powi(2) + (yf - c).powi(2) > (c - 2.0).powi(2) {
                -2048.0
            } else if (430.0..440.0).contains(&yf) && (60.0..452.0).contains(&xf) {
                200.0 + noise
            } else if !inside(xf, yf, c, c - 20.0, 210.0, 150.0 + (zf * 0.1).sin() * 5.0) {
                -1000.0 + noise * 0.5
            } else if !inside(xf, yf, c, c - 20.0, 195.0, 137.0) {
                -100.0 + noise
            } else if inside(xf, yf, c - 70.0, c - 40.0, 80.0, 60.0 + zf * 0.3) {
                if lesion_r > 0.0 && inside(xf, yf, c - 80.0, c - 50.0, lesion_r, lesion_r * 0.8) {
                    10.0 + noise
                } else {
                    60.0 + noise
                }
            } else if inside(xf, yf, c, c + 60.0, 28.0, 28.0) {
                450.0 + noise * 2.0
            } else if inside(xf, yf, c - 70.0, c + 40.0, 25.0, 35.0)
                || inside(xf, yf, c + 70.0, c + 40.0, 25.0, 35.0)
            {
                150.0 + noise
            } else {
                40.0 + noise
            };
            hu[y * SIZE + x] = v as i16;
        }
    }
    HuSlice {
        width: SIZE,
        height: SIZE,
        hu,
    }
}

struct Args {
    workers: usize,
    samples: usize,
}

fn args() -> Args {
    let mut a = Args {
        workers: 2,
        samples: 96,
    };
    let argv: Vec<String> = std::env::args().collect();
    for w in argv.windows(2) {
        match w[0].as_str() {
            "--workers" => a.workers = w[1].parse().expect("--workers N"),
            "--samples" => a.samples = w[1].parse().expect("--samples N"),
            _ => {}
        }
    }
    a
}

/// Series of 41 slices (+-20 around the key slices) with intervals as in
/// DeepLesion (1 to 5 mm); four key images per series.
fn write_dataset(root: &Path, series: usize) -> Vec<KeyImage> {
    let intervals = [1.0, 2.5, 5.0, 1.25, 2.0, 0.625];
    let mut keys = Vec::new();
    for s in 0..series {
        let dir = root.join(format!("Images_png/{:06}_01_01", s + 1));
        std::fs::create_dir_all(&dir).unwrap();
        for z in 1..=41u32 {
            write_png_hu(
                dir.join(format!("{z:03}.png")),
                &phantom(s as u64, u64::from(z)),
            )
            .unwrap();
        }
        for k in [18u32, 20, 21, 24] {
            keys.push(KeyImage {
                series_dir: dir.clone(),
                key_png: k,
                file_name: format!("{:06}_01_01_{k:03}.png", s + 1),
                spacing: [0.7, 0.7, intervals[s % intervals.len()]],
                boxes: vec![Box2::new(150.0, 170.0, 200.0, 210.0)],
                ignore: Vec::new(),
            });
        }
    }
    keys
}

/// Series of 41 slices assembled from the real DeepLesion key-slice files
/// (byte-identical copies, so decoding costs what real data costs; the
/// anatomy does not follow from slice to slice, which timing does not see).
fn copy_real_dataset(root: &Path, real: &[PathBuf], series: usize) -> Vec<KeyImage> {
    let intervals = [1.0, 2.5, 5.0, 1.25, 2.0, 0.625];
    let mut keys = Vec::new();
    for s in 0..series {
        let dir = root.join(format!("Images_png/{:06}_02_01", s + 1));
        std::fs::create_dir_all(&dir).unwrap();
        for z in 1..=41usize {
            std::fs::copy(
                &real[(s * 41 + z) % real.len()],
                dir.join(format!("{z:03}.png")),
            )
            .unwrap();
        }
        for k in [18u32, 20, 21, 24] {
            keys.push(KeyImage {
                series_dir: dir.clone(),
                key_png: k,
                file_name: format!("{:06}_02_01_{k:03}.png", s + 1),
                spacing: [0.7, 0.7, intervals[s % intervals.len()]],
                boxes: vec![Box2::new(150.0, 170.0, 200.0, 210.0)],
                ignore: Vec::new(),
            });
        }
    }
    keys
}

/// Milliseconds per call of each step for one key image, on this thread.
fn time_steps(key: &KeyImage, config: &SampleConfig) -> Result<()> {
    let folder = SeriesFolder::open(&key.series_dir)?;
    let cache = SliceCache::new(1 << 30);
    let source = SeriesSource::new(&folder, key.key_png, key.spacing, Some(&cache))?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let reps = 20;
    // CPU time of this thread where Linux reports it (robust to other
    // programs sharing the cores), else wall time.
    let thread_ns = || -> Option<f64> {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let ms = |f: &mut dyn FnMut()| {
        f();
        let (start, cpu) = (Instant::now(), thread_ns());
        for _ in 0..reps {
            f();
        }
        match (cpu, thread_ns()) {
            (Some(a), Some(b)) => (b - a) / 1e6 / reps as f64,
            _ => start.elapsed().as_secs_f64() * 1e3 / reps as f64,
        }
    };
    let sample = build_sample(&source, &key.boxes, &key.ignore, config)?;
    let t_sample = ms(&mut || {
        std::hint::black_box(build_sample(&source, &key.boxes, &key.ignore, config).unwrap());
    });
    let t_weak = ms(&mut || {
        std::hint::black_box(weak_view(
            sample.clone(),
            &WeakConfig { flip_prob: 1.0 },
            &mut rng,
        ));
    });
    let t_strong = ms(&mut || {
        std::hint::black_box(strong_view(&sample, &StrongConfig::default(), &mut rng));
    });
    let geometric = StrongConfig {
        contrast: [1.0, 1.0],
        max_brightness: 0.0,
        noise_std: 0.0,
        cutout_prob: 0.0,
        ..StrongConfig::default()
    };
    let t_warp = ms(&mut || {
        std::hint::black_box(strong_view(&sample, &geometric, &mut rng));
    });
    println!(
        "CPU per step, one thread, {}x{}x{} sample from cached slices: sample {t_sample:.2} ms, weak view {t_weak:.2} ms, strong view {t_strong:.2} ms (of which warp {t_warp:.2} ms)",
        sample.image.channels, sample.image.height, sample.image.width
    );
    Ok(())
}

/// CPU seconds used by this process so far (all threads), from
/// `/proc/self/stat`; `None` where that does not exist. Other programs on a
/// shared machine slow the wall clock but not this figure.
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

/// Milliseconds per decoded slice with the PNG checksums (CRC, Adler-32) skipped.
fn time_decode_unchecked(paths: &[PathBuf]) -> f64 {
    let start = Instant::now();
    for p in paths {
        let mut decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(p).unwrap()));
        decoder.ignore_checksums(true);
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0u8; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        std::hint::black_box(buf);
    }
    start.elapsed().as_secs_f64() * 1e3 / paths.len() as f64
}

fn time_decode(paths: &[PathBuf]) -> f64 {
    let start = Instant::now();
    for p in paths {
        std::hint::black_box(read_png_hu(p).unwrap());
    }
    start.elapsed().as_secs_f64() * 1e3 / paths.len() as f64
}

fn run(label: &str, ds: Arc<DeepLesionDataset>, workers: usize, epochs: u64) -> Result<()> {
    let config = LoaderConfig {
        batch_size: 4,
        workers,
        prefetch: 4,
        seed: 1,
        shuffle: true,
        drop_last: false,
    };
    let loader = Loader::new(ds.clone(), config)?;
    for epoch in 0..epochs {
        let start = Instant::now();
        let cpu_start = cpu_secs();
        let (mut n, mut shape) = (0, [0; 4]);
        for batch in loader.epoch(epoch) {
            let batch = batch?;
            n += batch.indices.len();
            shape = batch.views[0].shape;
        }
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_secs().zip(cpu_start).map_or(String::new(), |(b, a)| {
            format!(", {:.1} ms CPU/sample", (b - a) * 1e3 / n as f64)
        });
        let cache = ds.cache().map_or("no cache".to_string(), |c| {
            let (h, m) = c.stats();
            format!("cache {h} hits / {m} decodes so far")
        });
        println!(
            "{label:<34} epoch {epoch}: {n} samples in {secs:.2} s = {:>6.1} samples/s{cpu}  (batch {shape:?}, {cache})",
            n as f64 / secs
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = args();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average at start: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let tmp = std::env::temp_dir().join(format!("uld-bench-loader-{}", std::process::id()));
    let series = args.samples.div_ceil(4).max(1);
    print!("writing {series} phantom series of 41 512x512 slices ... ");
    let start = Instant::now();
    let keys = write_dataset(&tmp, series);
    println!("{:.1} s", start.elapsed().as_secs_f64());

    let synthetic: Vec<PathBuf> = SeriesFolder::open(keys[0].series_dir.clone())?
        .numbers()
        .map(|n| keys[0].series_dir.join(format!("{n:03}.png")))
        .collect();
    let real_root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/deeplesion/Images_png");
    let real: Vec<PathBuf> = std::fs::read_dir(&real_root)
        .into_iter()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .collect();
    let size = |ps: &[PathBuf]| {
        ps.iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum::<u64>() as f64
            / ps.len() as f64
            / 1024.0
    };
    println!(
        "PNG decode, phantom: {:.2} ms/slice ({:.0} KiB/file)",
        time_decode(&synthetic),
        size(&synthetic)
    );
    if !real.is_empty() {
        println!(
            "PNG decode, real DeepLesion key slices: {:.2} ms/slice ({:.0} KiB/file)",
            time_decode(&real),
            size(&real)
        );
        println!(
            "PNG decode, real, checksums skipped: {:.2} ms/slice",
            time_decode_unchecked(&real)
        );
    }
    let nine = SampleConfig::default();
    let full = SampleConfig {
        target_spacing_mm: None,
        crop: CropConfig {
            enabled: false,
            ..CropConfig::default()
        },
        ..SampleConfig::default()
    };
    time_steps(&keys[0], &full)?;
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let make = |keys: &[KeyImage], config: &SampleConfig, views, cache| {
        Arc::new(DeepLesionDataset::new(keys.to_vec(), config.clone(), views, cache).unwrap())
    };
    let mut sets = vec![("phantom", keys)];
    if !real.is_empty() {
        sets.push(("real-PNG", copy_real_dataset(&tmp, &real, series)));
    }
    for (name, keys) in &sets {
        println!(
            "loader on {name} series: {} key images, {} workers, batch 4, {cpus} CPUs",
            keys.len(),
            args.workers
        );
        run(
            "512x512 9-slice, no cache",
            make(keys, &full, ViewMode::Plain, 0),
            args.workers,
            1,
        )?;
        run(
            "512x512 9-slice, cache",
            make(keys, &full, ViewMode::Plain, 2 << 30),
            args.workers,
            2,
        )?;
        run(
            "defaults (0.8 mm, crop), cache",
            make(keys, &nine, ViewMode::Plain, 2 << 30),
            args.workers,
            2,
        )?;
        run(
            "512x512 weak+strong views, cache",
            make(keys, &full, ViewMode::WeakStrong, 2 << 30),
            args.workers,
            2,
        )?;
    }
    std::fs::remove_dir_all(&tmp).ok();
    Ok(())
}
