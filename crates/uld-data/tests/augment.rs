//! Views and their recorded maps: boxes move between views exactly.

mod common;
use common::close;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use uld_core::{Box2, Volume};
use uld_data::augment::{
    Affine2, ClipRule, StrongConfig, WeakConfig, add_noise, strong_affine, strong_view,
    warp_affine, weak_view,
};
use uld_data::sample::{CropConfig, ImageChw, SampleConfig, VolumeSource, build_sample};

#[test]
fn flip_and_composition_by_hand() {
    let flip = Affine2::flip_x(100.0);
    assert_eq!(
        flip.map_box(&Box2::new(10.0, 20.0, 30.0, 40.0)),
        Box2::new(70.0, 20.0, 90.0, 40.0)
    );
    assert_eq!(flip.then(&flip), Affine2::IDENTITY);
    // Scale by 2 about (50, 50): (60, 50) -> (70, 50).
    let s = Affine2::scaling(2.0, 2.0).about(50.0, 50.0);
    assert_eq!(s.apply(60.0, 50.0), (70.0, 50.0));
    // A quarter turn maps +x to +y.
    let (x, y) = Affine2::rotation(std::f64::consts::FRAC_PI_2).apply(1.0, 0.0);
    assert!(x.abs() < 1e-12 && (y - 1.0).abs() < 1e-12);
    assert!(Affine2::scaling(0.0, 1.0).inverse().is_none());
}

fn arb_box() -> impl Strategy<Value = Box2> {
    (0f32..480.0, 0f32..480.0, 2f32..150.0, 2f32..150.0)
        .prop_map(|(x, y, w, h)| Box2::new(x, y, x + w, y + h))
}

fn config(rotation: f64) -> StrongConfig {
    StrongConfig {
        max_rotation_deg: rotation,
        scale: [0.7, 1.3],
        max_translation: 0.1,
        ..StrongConfig::default()
    }
}

proptest! {
    /// Without rotation boxes go there and back exactly (up to f32 rounding).
    #[test]
    fn boxes_go_there_and_back_exactly_without_rotation(b in arb_box(), seed in any::<u64>()) {
        let map = strong_affine(512, 512, &config(0.0), &mut ChaCha8Rng::seed_from_u64(seed));
        prop_assert!(map.is_axis_aligned());
        let back = map.inverse().unwrap().map_box(&map.map_box(&b));
        prop_assert!(close(back, b, 1e-3), "{back:?} vs {b:?}");
    }

    /// Through a rotation by θ (with any scale, shift and flip), the box that
    /// comes back keeps its centre and grows to `w + h |sin 2θ|` by
    /// `h + w |sin 2θ|`: the enclosing-box rule applied twice.
    #[test]
    fn rotated_round_trip_grows_by_the_stated_bound(b in arb_box(), seed in any::<u64>()) {
        let map = strong_affine(512, 512, &config(15.0), &mut ChaCha8Rng::seed_from_u64(seed));
        let back = map.inverse().unwrap().map_box(&map.map_box(&b));
        let m = map.m;
        let sin2 = (2.0 * (m[0][0] * m[1][0]).abs() / map.determinant().abs()) as f32;
        prop_assert!(sin2 <= (30f32).to_radians().sin() + 1e-6);
        let (cx, cy) = b.center();
        let expected = Box2::from_center(cx, cy, b.width() + b.height() * sin2, b.height() + b.width() * sin2);
        prop_assert!(close(back, expected, 2e-3), "{back:?} vs {expected:?}");
    }

    /// Kept boxes lie in the image with at least the stated fraction visible;
    /// dropped ones had less, and only their visible parts are returned.
    #[test]
    fn clip_rule_keeps_exactly_the_boxes_visible_enough(
        boxes in prop::collection::vec(arb_box(), 1..8),
        seed in any::<u64>(),
        fraction in 0.05f32..0.95,
    ) {
        let mut cfg = config(15.0);
        cfg.max_translation = 0.4;
        let map = strong_affine(256, 300, &cfg, &mut ChaCha8Rng::seed_from_u64(seed));
        let rule = ClipRule { min_visible_fraction: fraction };
        let out = rule.apply(&boxes, &map, 256.0, 300.0);
        prop_assert_eq!(out.boxes.len(), out.source_index.len());
        for (k, i) in out.source_index.iter().enumerate() {
            let mapped = map.map_box(&boxes[*i]);
            let kept = out.boxes[k];
            prop_assert!(kept.x1 >= 0.0 && kept.y1 >= 0.0 && kept.x2 <= 256.0 && kept.y2 <= 300.0);
            prop_assert!(kept.area() >= fraction * mapped.area() * (1.0 - 1e-5));
        }
        let dropped: Vec<usize> = (0..boxes.len()).filter(|i| !out.source_index.contains(i)).collect();
        let visible: Vec<f32> = dropped.iter().map(|&i| map.map_box(&boxes[i]).clip(256.0, 300.0).area()).collect();
        for (&i, &v) in dropped.iter().zip(&visible) {
            prop_assert!(v < fraction * map.map_box(&boxes[i]).area() * (1.0 + 1e-5));
        }
        prop_assert_eq!(out.dropped_visible.len(), visible.iter().filter(|v| **v > 0.0).count());
    }
}

/// A 96x80 volume of 3 slices with a bright 20x10 block at (30, 40).
fn block_sample() -> uld_data::sample::Sample {
    let (w, h, d) = (96, 80, 3);
    let mut data = vec![0i16; w * h * d];
    for z in 0..d {
        for y in 40..50 {
            for x in 30..50 {
                data[(z * h + y) * w + x] = 1000;
            }
        }
    }
    let vol = Volume::new([w, h, d], [0.8, 0.8, 2.0], data).unwrap();
    let crop = CropConfig {
        enabled: false,
        ..CropConfig::default()
    };
    let config = SampleConfig {
        groups: 1,
        crop,
        ..SampleConfig::default()
    };
    let lesion = Box2::new(30.0, 40.0, 50.0, 50.0);
    build_sample(
        &VolumeSource::new(&vol, 1).unwrap(),
        &[lesion],
        &[],
        &config,
    )
    .unwrap()
}

#[test]
fn weak_flip_mirrors_pixels_and_boxes_exactly() {
    let s = block_sample();
    let always = WeakConfig { flip_prob: 1.0 };
    let v = weak_view(s.clone(), &always, &mut ChaCha8Rng::seed_from_u64(1));
    assert_eq!(v.boxes, vec![Box2::new(46.0, 40.0, 66.0, 50.0)]);
    for c in 0..3 {
        for y in 0..80 {
            for x in 0..96 {
                assert_eq!(v.image.get(c, y, x), s.image.get(c, y, 95 - x));
            }
        }
    }
    let never = WeakConfig { flip_prob: 0.0 };
    let v = weak_view(s.clone(), &never, &mut ChaCha8Rng::seed_from_u64(1));
    assert_eq!(
        (v.image.data == s.image.data, v.boxes.clone()),
        (true, s.boxes.clone())
    );
}

#[test]
fn warped_block_lies_inside_its_mapped_box() {
    let s = block_sample();
    let map = Affine2::scaling(1.5, 1.5)
        .then(&Affine2::rotation(0.2))
        .about(48.0, 40.0)
        .then(&Affine2::translation(3.0, -2.0));
    let v = uld_data::augment::View::warped(&s, map, &ClipRule::default());
    let b = v.boxes[0];
    let (mut inside, mut outside) = (0, 0);
    let fill = s.normalization.fill_value();
    let bright = s.normalization.apply(1000.0);
    for y in 0..80 {
        for x in 0..96 {
            let value = v.image.get(1, y, x);
            if value > (fill + bright) / 2.0 + 50.0 {
                if b.contains(x as f32 + 0.5, y as f32 + 0.5) {
                    inside += 1
                } else {
                    outside += 1
                }
            }
        }
    }
    // 200 px of block at scale 1.5 = 450 px.
    assert!(
        (400..=500).contains(&inside),
        "{inside} bright pixels inside the box"
    );
    assert_eq!(outside, 0);
}

#[test]
fn bilinear_warp_of_half_a_pixel_averages_neighbours() {
    let src = ImageChw {
        channels: 1,
        height: 1,
        width: 4,
        data: vec![0.0, 10.0, 20.0, 30.0],
    };
    let out = warp_affine(&src, &Affine2::translation(-0.5, 0.0), 4, 1, -1.0).unwrap();
    assert_eq!(out.data, vec![5.0, 15.0, 25.0, 14.5]); // last: half of 30, half fill
}

#[test]
fn teacher_boxes_move_from_the_weak_to_the_strong_view() {
    let s = block_sample();
    for seed in 0..20 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let weak = weak_view(s.clone(), &WeakConfig::default(), &mut rng);
        let strong = strong_view(
            &s,
            &StrongConfig {
                clip: ClipRule {
                    min_visible_fraction: 0.0,
                },
                ..StrongConfig::default()
            },
            &mut rng,
        );
        let to_strong = Affine2::view_to_view(&weak.to_view, &strong.to_view).unwrap();
        let moved = to_strong.map_box(&weak.boxes[0]).clip(96.0, 80.0);
        assert!(
            close(moved, strong.boxes[0], 1e-3),
            "seed {seed}: {moved:?} vs {:?}",
            strong.boxes[0]
        );
    }
}

#[test]
fn views_are_determined_by_the_generator() {
    let s = block_sample();
    let a = strong_view(
        &s,
        &StrongConfig::default(),
        &mut ChaCha8Rng::seed_from_u64(9),
    );
    let b = strong_view(
        &s,
        &StrongConfig::default(),
        &mut ChaCha8Rng::seed_from_u64(9),
    );
    let c = strong_view(
        &s,
        &StrongConfig::default(),
        &mut ChaCha8Rng::seed_from_u64(10),
    );
    assert!(a.image.data == b.image.data && a.to_view == b.to_view);
    assert!(a.image.data != c.image.data);
}

#[test]
fn noise_has_the_requested_spread() {
    let mut img = ImageChw::filled(2, 256, 256, 3.0);
    add_noise(&mut img, 2.0, &mut ChaCha8Rng::seed_from_u64(4));
    let n = img.data.len() as f64;
    let mean = img.data.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = img
        .data
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    assert!((mean - 3.0).abs() < 0.02, "mean {mean}");
    assert!((var.sqrt() - 2.0).abs() < 0.02, "std {}", var.sqrt());
    assert!(
        img.channel(0) != img.channel(1),
        "channels get independent noise"
    );
}
