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

use super::sheet::{DEFAULT_WINDOW, GREEN, RED, Sheet, key_slice_lesions};

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
    let mut sheet = Sheet::new(shown.len(), args.columns, args.tile);
    let (mut labelled, mut unlabelled) = (0, 0);
    for (n, rows_of_image) in shown.iter().enumerate() {
        let first = rows_of_image[0];
        let slice = read_png_hu(root.join(first.key_slice_path()))?;
        let window = match &args.window {
            Some(w) => [w[0], w[1]],
            None => first
                .dicom_windows
                .first()
                .copied()
                .unwrap_or(DEFAULT_WINDOW),
        };
        let lesions = key_slice_lesions(rows_of_image, manifest.as_ref());
        let boxes: Vec<(Box2, [u8; 3])> = lesions
            .iter()
            .map(|&(b, is_labelled)| (b, if is_labelled { GREEN } else { RED }))
            .collect();
        labelled += lesions.iter().filter(|(_, l)| *l).count();
        unlabelled += lesions.iter().filter(|(_, l)| !*l).count();
        sheet.draw(n, &slice, window, &boxes);
    }
    sheet.write(
        &args.out,
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
