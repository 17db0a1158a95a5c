//! 2.5D samples: geometry on hand-computed cases and on real key slices.

mod common;
use common::close;
use std::collections::HashMap;

use uld_core::testdata::shared_data;
use uld_core::{Box2, Volume};
use uld_data::deeplesion::{LesionRecord, SeriesFolder, read_dl_info};
use uld_data::sample::{
    CropConfig, Normalization, SampleConfig, SampleGeometry, Scaling, SeriesSource, VolumeSource,
    body_bounds, build_sample,
};

#[test]
fn crop_then_resample_moves_boxes_by_hand_computed_amounts() {
    // 320x400 crop at (100, 50) of 0.6 mm pixels, to 0.8 mm: scale 0.75 -> 240x300.
    let g = SampleGeometry::plan(
        [512, 512],
        [100, 50, 420, 450],
        [0.6, 0.6],
        Some(0.8),
        Some(512),
    );
    assert_eq!(g.output_size, [240, 300]);
    assert_eq!(g.scale, [0.75, 0.75]);
    let b = Box2::new(120.0, 70.0, 160.0, 110.0);
    assert_eq!(g.to_sample(&b), Box2::new(15.0, 15.0, 45.0, 45.0));
    assert_eq!(g.to_original(&g.to_sample(&b)), b);
}

#[test]
fn longer_side_is_capped_and_scale_is_the_exact_size_ratio() {
    // 1.6 mm pixels to 0.8 mm would double 512 to 1024: capped at 512, scale 1.
    let g = SampleGeometry::plan(
        [512, 512],
        [0, 0, 512, 512],
        [1.6, 1.6],
        Some(0.8),
        Some(512),
    );
    assert_eq!((g.output_size, g.scale), ([512, 512], [1.0, 1.0]));
    // 333 x 101 px * 0.7 / 0.8 = 291.4 x 88.4 -> 291 x 88 px; scale 291 / 333, 88 / 101.
    let g = SampleGeometry::plan([512, 512], [0, 0, 333, 101], [0.7, 0.7], Some(0.8), None);
    assert_eq!(g.output_size, [291, 88]);
    assert_eq!(g.scale, [291.0 / 333.0, 88.0 / 101.0]);
}

#[test]
fn slice_taps_interpolate_at_the_target_interval() {
    let config = SampleConfig {
        groups: 1,
        ..SampleConfig::default()
    };
    // 5 mm slices, 2 mm channels: positions -0.4, 0, 0.4 slices.
    let taps = config.slice_taps(5.0);
    assert_eq!(taps.len(), 3);
    assert_eq!(taps[1], [(0, 1.0), (0, 0.0)]);
    assert_eq!(taps[0][0].0, -1);
    assert!((taps[0][0].1 - 0.4).abs() < 1e-6 && (taps[0][1].1 - 0.6).abs() < 1e-6);
    assert_eq!(taps[2][0].0, 0);
    assert!((taps[2][0].1 - 0.6).abs() < 1e-6 && (taps[2][1].1 - 0.4).abs() < 1e-6);
    // 1 mm slices: every other slice, no interpolation; 9 channels, key in channel 4.
    let nine = SampleConfig::default();
    assert_eq!(nine.key_channel(), 4);
    let offsets: Vec<i64> = nine.slice_taps(1.0).iter().map(|t| t[0].0).collect();
    assert_eq!(offsets, [-8, -6, -4, -2, 0, 2, 4, 6, 8]);
    assert!(nine.slice_taps(1.0).iter().all(|t| t[0].1 == 1.0));
}

/// A 64x48 volume of 5 slices: air (-1000 HU) around a 40x30 body at
/// (10, 8) whose HU on slice z is 100 z.
fn layered_volume() -> Volume<i16> {
    let (w, h, d) = (64, 48, 5);
    let mut data = vec![-1000i16; w * h * d];
    for z in 0..d {
        for y in 8..38 {
            for x in 10..50 {
                data[(z * h + y) * w + x] = 100 * z as i16;
            }
        }
    }
    Volume::new([w, h, d], [0.8, 0.8, 5.0], data).unwrap()
}

#[test]
fn sample_interpolates_neighbours_crops_the_border_and_falls_back_at_the_edge() {
    let vol = layered_volume();
    let config = SampleConfig {
        groups: 1,
        normalization: Normalization {
            window: [-1000.0, 1000.0],
            scaling: Scaling::Symmetric,
        },
        ..SampleConfig::default()
    };
    let lesion = Box2::new(20.0, 10.0, 30.0, 20.0);
    let source = VolumeSource::new(&vol, 2).unwrap();
    let s = build_sample(&source, &[lesion], &[], &config).unwrap();
    // Body bounds: the crop; 0.8 mm pixels stay 0.8 mm.
    assert_eq!(s.geometry.crop, [10, 8, 50, 38]);
    assert_eq!([s.image.width, s.image.height], [40, 30]);
    assert_eq!(s.boxes, vec![Box2::new(10.0, 2.0, 20.0, 12.0)]);
    // Channels at -2, 0, +2 mm = slices 1.6, 2, 2.4: 160, 200, 240 HU -> /1000.
    for (c, hu) in [(0, 160.0), (1, 200.0), (2, 240.0)] {
        assert!(
            (s.image.get(c, 15, 20) - hu / 1000.0).abs() < 1e-5,
            "channel {c}"
        );
    }
    // Key slice 0: the channel below falls back to slice 0 itself.
    let s0 = build_sample(&VolumeSource::new(&vol, 0).unwrap(), &[], &[], &config).unwrap();
    assert!((s0.image.get(0, 15, 20) - 0.0).abs() < 1e-6);
    assert!((s0.image.get(2, 15, 20) - 0.04).abs() < 1e-5);
}

#[test]
fn windowing_and_mean50_scaling() {
    let n = Normalization::default();
    assert_eq!(n.apply(-1024.0), -50.0);
    assert_eq!(n.apply(-3000.0), -50.0);
    assert_eq!(n.apply(3071.0), 205.0);
    assert!((n.apply(0.0) - (1024.0 / 4095.0 * 255.0 - 50.0)).abs() < 1e-4);
    assert_eq!(n.fill_value(), -50.0);
}

#[test]
fn body_bounds_leave_out_the_table() {
    let (w, h) = (60, 60);
    let mut hu = vec![-1000i16; w * h];
    let mut set = |x0: usize, y0: usize, x1: usize, y1: usize| {
        for y in y0..y1 {
            for x in x0..x1 {
                hu[y * w + x] = 40;
            }
        }
    };
    set(15, 10, 45, 40); // body
    set(2, 50, 58, 53); // a 3-pixel table: removed by the 7x7 opening
    assert_eq!(body_bounds(&hu, w, h, -768, 7, 0), Some([15, 10, 45, 40]));
    assert_eq!(body_bounds(&hu, w, h, -768, 7, 2), Some([13, 8, 47, 42]));
    assert_eq!(body_bounds(&hu, w, h, -768, 1, 0), Some([2, 10, 58, 53]));
    assert_eq!(body_bounds(&vec![-1000; w * h], w, h, -768, 7, 0), None);
}

#[test]
fn boxes_cut_by_the_crop_follow_the_clip_rule() {
    let vol = layered_volume();
    let config = SampleConfig {
        groups: 1,
        target_spacing_mm: None,
        ..SampleConfig::default()
    };
    // Half outside the body crop (x from 0 to 20 -> 10 of 20 px visible): kept.
    // Mostly outside (x 0..14: 4 of 14 visible): dropped, its visible part ignored.
    let boxes = [
        Box2::new(0.0, 10.0, 20.0, 20.0),
        Box2::new(0.0, 10.0, 14.0, 20.0),
    ];
    let s = build_sample(&VolumeSource::new(&vol, 2).unwrap(), &boxes, &[], &config).unwrap();
    assert_eq!(s.boxes, vec![Box2::new(0.0, 2.0, 10.0, 12.0)]);
    assert_eq!(s.box_ids, vec![0]);
    assert_eq!(s.ignore, vec![Box2::new(0.0, 2.0, 4.0, 12.0)]);
}

#[test]
fn bad_configs_are_rejected() {
    let vol = layered_volume();
    let source = VolumeSource::new(&vol, 2).unwrap();
    for config in [
        SampleConfig {
            groups: 0,
            ..SampleConfig::default()
        },
        SampleConfig {
            groups: 10,
            ..SampleConfig::default()
        },
        SampleConfig {
            slice_interval_mm: Some(-1.0),
            ..SampleConfig::default()
        },
    ] {
        assert!(build_sample(&source, &[], &[], &config).is_err());
    }
    assert!(VolumeSource::new(&vol, 5).is_err());
    let parsed: SampleConfig =
        serde_json::from_str(r#"{"groups": 1, "crop": {"margin_px": 4}}"#).unwrap();
    assert_eq!(parsed.groups, 1);
    assert_eq!(
        parsed.crop,
        CropConfig {
            margin_px: 4,
            ..CropConfig::default()
        }
    );
    assert_eq!(parsed.target_spacing_mm, Some(0.8));
}

/// The real lesions whose key slice is in the shared folder.
fn real_lesions() -> Vec<LesionRecord> {
    let root = shared_data("deeplesion");
    let mut rows = read_dl_info(root.join("DL_info_val.csv")).unwrap();
    rows.extend(read_dl_info(root.join("DL_info_test.csv")).unwrap());
    rows.retain(|r| root.join(r.key_slice_path()).exists());
    rows
}

#[test]
fn real_boxes_land_on_the_same_anatomy_after_crop_and_resampling() {
    let root = shared_data("deeplesion");
    let lesions = real_lesions();
    assert!(
        lesions.len() >= 47,
        "found {} lesions with key slices",
        lesions.len()
    );
    let config = SampleConfig::default();
    let mut folders: HashMap<String, SeriesFolder> = HashMap::new();
    let mut single = 0;
    for r in &lesions {
        let folder = folders.entry(r.series_id()).or_insert_with(|| {
            SeriesFolder::open(root.join("Images_png").join(r.series_id())).unwrap()
        });
        let key = folder.read(r.key_slice_png).unwrap();
        let source = SeriesSource::new(folder, r.key_slice_png, r.spacing, None).unwrap();
        let s = build_sample(&source, &[r.bbox], &[], &config).unwrap();
        let g = s.geometry;
        let name = &r.file_name;
        // Spacing 0.8 mm: the scale is spacing / 0.8 up to whole-pixel rounding.
        let nominal = r.spacing[0] / 0.8;
        let nominal =
            nominal.min(512.0 / (g.crop[2] - g.crop[0]).max(g.crop[3] - g.crop[1]) as f64);
        assert!(
            (g.scale[0] - nominal).abs() < 0.01,
            "{name}: scale {:?} vs {nominal}",
            g.scale
        );
        assert_eq!(s.boxes.len(), 1, "{name}: the crop must keep the lesion");
        let sb = s.boxes[0];
        // The box against the same transform of the RECIST points: the CSV box
        // is their extent padded by 5 px, so 5 * scale in the sample.
        let affine = s.affine();
        let points = r.recist.chunks_exact(2).map(|p| {
            let (x, y) = affine.apply(f64::from(p[0]), f64::from(p[1]));
            (x as f32, y as f32)
        });
        let recist_box = Box2::enclosing(points).unwrap();
        let pad = 5.0 * g.scale[0] as f32;
        let expected = Box2::new(
            recist_box.x1 - pad,
            recist_box.y1 - pad,
            recist_box.x2 + pad,
            recist_box.y2 + pad,
        );
        assert!(
            close(sb, expected, 1.0 * g.scale[0] as f32 + 0.01),
            "{name}: {sb:?} vs RECIST {expected:?}"
        );
        // Back to original pixels: the CSV box.
        assert!(
            close(g.to_original(&sb), r.bbox, 1e-3),
            "{name}: {:?} vs {:?}",
            g.to_original(&sb),
            r.bbox
        );
        // Same anatomy: the mean windowed value inside the box agrees between
        // the sample's key channel and the original slice.
        let kc = config.key_channel();
        let mean_in = |b: Box2, w: usize, value: &dyn Fn(usize, usize) -> f32| {
            let (mut sum, mut n) = (0.0f64, 0usize);
            for y in b.y1.ceil() as usize..b.y2.floor() as usize {
                for x in b.x1.ceil() as usize..b.x2.floor() as usize {
                    if x < w {
                        sum += f64::from(value(x, y));
                        n += 1;
                    }
                }
            }
            sum / n as f64
        };
        let sample_mean = mean_in(sb, s.image.width, &|x, y| s.image.get(kc, y, x));
        let original_mean = mean_in(r.bbox, key.width, &|x, y| {
            config
                .normalization
                .apply(f32::from(key.hu[y * key.width + x]))
        });
        assert!(
            (sample_mean - original_mean).abs() < 2.0,
            "{name}: mean {sample_mean:.2} in the sample vs {original_mean:.2} in the original"
        );
        // A folder holding only the key slice: every channel falls back to it.
        if folder.numbers().count() == 1 {
            single += 1;
            for c in [0, 8] {
                assert!(
                    s.image.channel(c) == s.image.channel(kc),
                    "{name}: channel {c} is not the key slice"
                );
            }
        }
    }
    assert!(single > 10, "only {single} single-slice folders");
}
