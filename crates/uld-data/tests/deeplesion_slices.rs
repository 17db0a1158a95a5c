//! DeepLesion 16-bit PNG slices and series folders, on the real key slices.

use std::collections::HashMap;

use uld_core::testdata::shared_data;
use uld_data::deeplesion::{HuSlice, SeriesFolder, read_dl_info, read_png_hu, write_png_hu};

#[test]
fn real_key_slices_decode_to_plausible_hu_with_lesions_in_soft_tissue() {
    let root = shared_data("deeplesion");
    let mut rows = read_dl_info(root.join("DL_info_val.csv")).unwrap();
    rows.extend(read_dl_info(root.join("DL_info_test.csv")).unwrap());
    let by_name: HashMap<_, Vec<_>> = rows.iter().fold(HashMap::new(), |mut m, r| {
        m.entry(r.key_slice_path()).or_insert_with(Vec::new).push(r);
        m
    });
    let mut images = 0;
    for series in std::fs::read_dir(root.join("Images_png")).unwrap() {
        let folder = SeriesFolder::open(series.unwrap().path()).unwrap();
        for number in folder.numbers() {
            let slice = folder.read(number).unwrap();
            assert_eq!((slice.width, slice.height), (512, 512));
            let (lo, hi) = slice
                .hu
                .iter()
                .fold((i16::MAX, i16::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            assert!(
                (-2048..=-900).contains(&lo),
                "air or padding outside the body, got {lo}"
            );
            assert!(hi > 100 && hi <= 4000, "contrast/bone inside, got {hi}");
            let rel = std::path::Path::new("Images_png")
                .join(folder.dir().file_name().unwrap())
                .join(format!("{number:03}.png"));
            let lesions = by_name
                .get(&rel)
                .unwrap_or_else(|| panic!("{} has no csv row", rel.display()));
            for r in lesions {
                let mean = mean_hu_in(&slice, r.bbox);
                assert!(
                    (-150.0..250.0).contains(&mean),
                    "{}: mean HU {mean} in the lesion box",
                    r.file_name
                );
            }
            images += 1;
        }
    }
    assert_eq!(images, 47);
}

fn mean_hu_in(slice: &HuSlice, b: uld_core::Box2) -> f64 {
    let (x0, y0, x1, y1) = (
        b.x1.ceil() as usize,
        b.y1.ceil() as usize,
        b.x2 as usize,
        b.y2 as usize,
    );
    let mut sum = 0.0;
    let mut n = 0.0;
    for y in y0..=y1 {
        for x in x0..=x1 {
            sum += f64::from(slice.hu[y * slice.width + x]);
            n += 1.0;
        }
    }
    sum / n
}

#[test]
fn png_round_trip_keeps_every_hu_value() {
    let dir = tempfile::tempdir().unwrap();
    let hu: Vec<i16> = (0..64 * 48)
        .map(|i| ((i * 37) % 6000 - 3000) as i16)
        .collect();
    let slice = HuSlice {
        width: 64,
        height: 48,
        hu,
    };
    let path = dir.path().join("001.png");
    write_png_hu(&path, &slice).unwrap();
    assert_eq!(read_png_hu(&path).unwrap(), slice);
}

#[test]
fn truncated_and_eight_bit_pngs_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::read(shared_data("deeplesion/Images_png/000016_02_01/253.png")).unwrap();
    let truncated = dir.path().join("truncated.png");
    std::fs::write(&truncated, &real[..real.len() / 2]).unwrap();
    let err = read_png_hu(&truncated).unwrap_err().to_string();
    assert!(
        err.contains("truncated.png") && err.contains("PNG"),
        "{err}"
    );

    let eight_bit = dir.path().join("eight.png");
    let file = std::fs::File::create(&eight_bit).unwrap();
    let mut enc = png::Encoder::new(file, 4, 4);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .unwrap()
        .write_image_data(&[0u8; 16])
        .unwrap();
    let err = read_png_hu(&eight_bit).unwrap_err().to_string();
    assert!(err.contains("eight.png") && err.contains("16-bit"), "{err}");

    let not_png = dir.path().join("text.png");
    std::fs::write(&not_png, "hello").unwrap();
    assert!(
        read_png_hu(&not_png)
            .unwrap_err()
            .to_string()
            .contains("text.png")
    );
}

fn series_with(numbers: &[u32]) -> (tempfile::TempDir, SeriesFolder) {
    let dir = tempfile::tempdir().unwrap();
    for &n in numbers {
        let slice = HuSlice {
            width: 3,
            height: 2,
            hu: vec![n as i16; 6],
        };
        write_png_hu(dir.path().join(format!("{n:03}.png")), &slice).unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), "not a slice").unwrap();
    let folder = SeriesFolder::open(dir.path()).unwrap();
    (dir, folder)
}

#[test]
fn missing_neighbours_fall_back_towards_the_key_slice() {
    let (_dir, folder) = series_with(&[10, 11, 12, 14, 20]);
    let stack = folder.read_stack(12, &[-3, -1, 0, 1, 2, 3]).unwrap();
    let sources: Vec<i16> = stack.iter().map(|s| s.hu[0]).collect();
    // 9 is absent -> 10; 13 absent -> 12; 14 present; 15 absent -> 14
    assert_eq!(sources, vec![10, 11, 12, 12, 14, 14]);
    let err = folder.read_stack(13, &[0]).unwrap_err().to_string();
    assert!(
        err.contains("013.png") && err.contains("key slice"),
        "{err}"
    );
}

#[test]
fn a_series_volume_fills_gaps_with_the_nearest_slice() {
    let (_dir, folder) = series_with(&[10, 11, 14]);
    let sv = folder.read_volume([0.7, 0.7, 2.5]).unwrap();
    assert_eq!(sv.first_png, 10);
    assert_eq!(sv.volume.dims(), [3, 2, 5]);
    assert_eq!(sv.filled, vec![12, 13]);
    let firsts: Vec<i16> = (0..5).map(|z| sv.volume.get(0, 0, z)).collect();
    assert_eq!(firsts, vec![10, 11, 11, 14, 14]);
    assert_eq!(sv.volume.spacing(), [0.7, 0.7, 2.5]);
}

#[test]
fn an_empty_folder_and_a_bad_slice_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = SeriesFolder::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("no slice files"), "{err}");
    let (dir, _) = series_with(&[1, 2]);
    std::fs::write(dir.path().join("002.png"), b"\x89PNG\r\n\x1a\n broken").unwrap();
    let folder = SeriesFolder::open(dir.path()).unwrap();
    let err = folder.read_volume([1.0; 3]).unwrap_err().to_string();
    assert!(err.contains("002.png"), "{err}");
}
