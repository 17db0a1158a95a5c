//! `uld contact-sheet ROOT`: key slices of a DeepLesion-layout dataset in a
//! grid, windowed, with the labelled lesions (rows of `DL_info.csv`) in green
//! and, where a synth manifest is present, every other lesion on the slice in
//! red, so a person can see what the data and its missing labels look like.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use uld_core::Box2;
use uld_data::deeplesion::{LesionRecord, read_dl_info, read_png_hu};
use uld_data::synth::{MANIFEST_FILE, Manifest};

use super::raster::{draw_rect, write_rgb};

#[derive(Args)]
pub struct ContactSheetArgs {
    /// Dataset root holding DL_info.csv (or a DL_info csv beside Images_png/).
    root: PathBuf,
    /// Output PNG (RGB).
    #[arg(long, default_value = "contact_sheet.png")]
    out: PathBuf,
    /// Key images to show.
    #[arg(long, default_value_t = 12)]
    count: usize,
    #[arg(long, default_value_t = 4)]
    columns: usize,
    /// Tile size in pixels (slices are resampled to it).
    #[arg(long, default_value_t = 320)]
    tile: usize,
    /// HU window low,high (default: each image's first DICOM window).
    #[arg(long, value_delimiter = ',', num_args = 2, allow_hyphen_values = true)]
    window: Option<Vec<f32>>,
}

const GREEN: [u8; 3] = [40, 230, 60];
const RED: [u8; 3] = [240, 40, 40];

pub fn run(args: &ContactSheetArgs) -> anyhow::Result<()> {
    let (root, table) = if args.root.is_file() {
        (
            args.root.parent().unwrap_or(Path::new(".")).to_path_buf(),
            args.root.clone(),
        )
    } else {
        (args.root.clone(), args.root.join("DL_info.csv"))
    };
    let records = read_dl_info(&table)?;
    let manifest_path = root.join(MANIFEST_FILE);
    let manifest = manifest_path
        .is_file()
        .then(|| Manifest::read(&manifest_path))
        .transpose()?;
    let mut images: BTreeMap<&str, Vec<&LesionRecord>> = BTreeMap::new();
    for r in &records {
        images.entry(&r.file_name).or_default().push(r);
    }
    let shown: Vec<Vec<&LesionRecord>> = images
        .into_values()
        .filter(|rows| root.join(rows[0].key_slice_path()).is_file())
        .take(args.count)
        .collect();
    anyhow::ensure!(
        !shown.is_empty(),
        "no key image of {} exists under {}",
        table.display(),
        root.display()
    );
    let columns = args.columns.clamp(1, shown.len());
    let rows = shown.len().div_ceil(columns);
    let (tile, gap) = (args.tile.max(32), 4);
    let (width, height) = (columns * (tile + gap) + gap, rows * (tile + gap) + gap);
    let mut canvas = vec![24u8; width * height * 3];
    let (mut labelled, mut unlabelled) = (0, 0);
    for (n, rows_of_image) in shown.iter().enumerate() {
        let first = rows_of_image[0];
        let slice = read_png_hu(root.join(first.key_slice_path()))?;
        let [lo, hi] = match &args.window {
            Some(w) => [w[0], w[1]],
            None => first
                .dicom_windows
                .first()
                .copied()
                .unwrap_or([-175.0, 275.0]),
        };
        let (ox, oy) = (
            gap + (n % columns) * (tile + gap),
            gap + (n / columns) * (tile + gap),
        );
        let (sx, sy) = (
            slice.width as f32 / tile as f32,
            slice.height as f32 / tile as f32,
        );
        for j in 0..tile {
            for i in 0..tile {
                let (si, sj) = (
                    ((i as f32 + 0.5) * sx) as usize,
                    ((j as f32 + 0.5) * sy) as usize,
                );
                let hu = f32::from(
                    slice.hu[sj.min(slice.height - 1) * slice.width + si.min(slice.width - 1)],
                );
                let v = ((hu - lo) / (hi - lo) * 255.0).clamp(0.0, 255.0) as u8;
                let at = ((oy + j) * width + ox + i) * 3;
                canvas[at..at + 3].copy_from_slice(&[v, v, v]);
            }
        }
        let mut draw = |b: Box2, colour: [u8; 3]| {
            let b = Box2::new(b.x1 / sx, b.y1 / sy, b.x2 / sx, b.y2 / sy)
                .clip(tile as f32 - 1.0, tile as f32 - 1.0);
            draw_rect(&mut canvas, width, (ox, oy), b, colour);
        };
        for r in rows_of_image {
            draw(r.bbox, GREEN);
            labelled += 1;
        }
        if let Some(m) = &manifest {
            let series = first.series_id();
            for l in m.lesions.iter().filter(|l| l.series_id == series) {
                let Some(b) = l.box_on(first.key_slice_png) else {
                    continue;
                };
                if rows_of_image.iter().any(|r| r.bbox == b) {
                    continue;
                }
                draw(b, RED);
                unlabelled += 1;
            }
        }
    }
    write_rgb(
        &args.out,
        width,
        height,
        &canvas,
        "uld contact sheet: key slices, labelled lesions green, unlabelled red",
    )?;
    println!(
        "{}: {} key images, {labelled} labelled boxes (green), {unlabelled} other lesions (red{})",
        args.out.display(),
        shown.len(),
        if manifest.is_some() {
            ""
        } else {
            ": no synth manifest, so none"
        }
    );
    Ok(())
}
