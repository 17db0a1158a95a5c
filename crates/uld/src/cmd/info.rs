//! `uld info PATH`: what a user wants to know first about a dataset or scan
//! ([`uld_data::summary`] computes it and its text and JSON).

use std::path::PathBuf;

use clap::Args;
use uld_data::deeplesion::BadRows;
use uld_data::summary::{Summary, SummaryOptions};
use uld_train::run_summary::RunSummary;

#[derive(Args)]
pub struct InfoArgs {
    /// A DeepLesion root (holding DL_info*.csv and/or Images_png/), a DL_info
    /// csv, a NIfTI file (.nii, .nii.gz), a DICOM file or a DICOM series
    /// folder; or a training run's folder (its validation curve and mined
    /// lesions).
    path: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Skip table rows that do not parse (they are counted) instead of stopping.
    #[arg(long)]
    skip_bad_rows: bool,
    /// In a DICOM folder holding several series, the SeriesInstanceUID to read.
    #[arg(long, value_name = "UID")]
    series: Option<String>,
}

pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    if RunSummary::is_run_dir(&args.path) {
        let summary = RunSummary::read(&args.path)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            print!("{summary}");
        }
        return Ok(());
    }
    let options = SummaryOptions {
        bad_rows: if args.skip_bad_rows {
            BadRows::Skip
        } else {
            BadRows::Stop
        },
        series_uid: args.series.clone(),
    };
    let summary = Summary::of(&args.path, &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{summary}");
    }
    Ok(())
}
