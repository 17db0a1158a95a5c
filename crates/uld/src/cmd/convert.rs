//! `uld convert VOLUME [--labels MASK] --out ROOT`: a NIfTI or DICOM volume
//! (and its label map, whose connected components become lesions) written
//! into the DeepLesion layout, so users can train on their own scans. The
//! choices (orientation, key slice, boxes, RECIST) are documented in
//! [`uld_data::deeplesion::convert`].

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use uld_data::deeplesion::convert::{ConvertOptions, LabelMap, convert_to_deeplesion};
use uld_data::deeplesion::{LesionType, Split};
use uld_data::nifti::read_nifti_labels;
use uld_data::scan::{ScanOptions, open_scan};

use super::detect::parse_split;

#[derive(Args)]
pub struct ConvertArgs {
    /// The CT: a NIfTI file, a DICOM series folder (or DeepLesion series folder).
    pub volume: PathBuf,
    /// A NIfTI label map on the same voxel grid; each connected component
    /// (6-connected, one label value) becomes one DL_info.csv row.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// DeepLesion root to write into (created); an existing DL_info.csv is appended to.
    #[arg(long)]
    pub out: PathBuf,
    /// Patient index (default: one more than the largest in DL_info.csv, or 1).
    #[arg(long)]
    pub patient: Option<u32>,
    #[arg(long, default_value_t = 1)]
    pub study: u32,
    #[arg(long, default_value_t = 1)]
    pub series: u32,
    /// Train_Val_Test of the rows: train, val or test.
    #[arg(long, default_value = "train", value_parser = parse_split)]
    pub split: Split,
    /// Coarse_lesion_type code of the rows (1-8, -1 unknown).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub lesion_type: i32,
    /// Which series of a DICOM folder holding several.
    #[arg(long = "series-uid")]
    pub series_uid: Option<String>,
}

pub fn run(args: &ConvertArgs) -> anyhow::Result<()> {
    let lesion_type = LesionType::from_code(args.lesion_type).ok_or_else(|| {
        anyhow::anyhow!(
            "--lesion-type {} is not a DeepLesion type (1-8, or -1 for unknown)",
            args.lesion_type
        )
    })?;
    let scan = open_scan(
        &args.volume,
        &ScanOptions {
            series_uid: args.series_uid.clone(),
            ..ScanOptions::default()
        },
    )?;
    let labels = args.labels.as_ref().map(read_nifti_labels).transpose()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let options = ConvertOptions {
        patient: args.patient,
        study: args.study,
        series: args.series,
        split: args.split,
        lesion_type,
    };
    let label_map = args
        .labels
        .as_deref()
        .zip(labels.as_ref())
        .map(|(path, volume)| LabelMap { path, volume });
    let done = convert_to_deeplesion(&args.out, &scan.volume, &args.volume, label_map, &options)?;
    println!(
        "{} -> {} ({} slices, {} lesions{})",
        args.volume.display(),
        done.series_dir.display(),
        done.slices,
        done.records.len(),
        if done.axis_map.is_identity() {
            String::new()
        } else {
            format!(
                "; re-indexed to LPS: axes {:?}, flipped {:?}",
                done.axis_map.source, done.axis_map.flip
            )
        }
    );
    for (r, (lo, hi)) in done.records.iter().zip(&done.lesion_boxes) {
        println!(
            "  {}: box x {}-{}, y {}-{}, z {}-{} (voxels, inclusive); RECIST {:.1} x {:.1} mm",
            r.file_name,
            lo[0],
            hi[0],
            lo[1],
            hi[1],
            lo[2],
            hi[2],
            r.long_diameter_mm(),
            r.short_diameter_mm()
        );
    }
    Ok(())
}
