//! `uld contact-sheet ROOT`: key slices of a DeepLesion-layout dataset in a
//! grid, labelled lesions green, unlabelled (from a synth manifest) red
//! ([`uld_data::render::write_contact_sheet`] draws it).

use std::path::PathBuf;

use clap::Args;
use uld_data::render::{ContactSheetOptions, write_contact_sheet};

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
    let options = ContactSheetOptions {
        count: args.count,
        columns: args.columns,
        tile: args.tile,
        window: args.window.as_ref().map(|w| [w[0], w[1]]),
    };
    let sheet = write_contact_sheet(&args.root, &args.out, &options)?;
    println!(
        "{}: {} key images, {} labelled boxes (green), {} other lesions (red{})",
        args.out.display(),
        sheet.key_images,
        sheet.labelled,
        sheet.unlabelled,
        if sheet.manifest {
            ""
        } else {
            ": no synth manifest, so none"
        }
    );
    Ok(())
}
