//! The options of `uld eval`, spelled as Python strings.

use pyo3::PyResult;
use uld_data::deeplesion::Split;
use uld_eval::{GroundTruthOptions, KeySliceVariant, LensSplit, Protocol};

use crate::errors::bad_choice;

pub fn protocol(name: &str) -> PyResult<Protocol> {
    Protocol::parse(name)
        .ok_or_else(|| bad_choice("protocol", &["keyslice", "harvester", "lens"], name))
}

pub fn variant(name: &str) -> PyResult<KeySliceVariant> {
    match name {
        "mulan" => Ok(KeySliceVariant::Mulan),
        "3dce" => Ok(KeySliceVariant::ThreeDce),
        _ => Err(bad_choice("variant", &["mulan", "3dce"], name)),
    }
}

/// `split`: a `DL_info.csv` split, or every row.
pub fn split(name: &str) -> PyResult<Option<Split>> {
    match name {
        "all" => Ok(None),
        _ => Split::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .map(Some)
            .ok_or_else(|| bad_choice("split", &["train", "val", "test", "all"], name)),
    }
}

/// The ground-truth options of `uld eval --variant --noisy --split --lens-split`.
pub fn ground_truth(
    variant_name: &str,
    noisy: Option<&str>,
    split_name: &str,
    lens_split: &str,
) -> PyResult<GroundTruthOptions> {
    let mut options = GroundTruthOptions::new(variant(variant_name)?);
    match noisy {
        None => {}
        Some("drop") => options.drop_noisy = true,
        Some("keep") => options.drop_noisy = false,
        Some(other) => return Err(bad_choice("noisy", &["keep", "drop"], other)),
    }
    options.split = split(split_name)?;
    options.lens_split = match lens_split {
        "val" => LensSplit::Val,
        "test" => LensSplit::Test,
        "both" => LensSplit::Both,
        other => return Err(bad_choice("lens_split", &["val", "test", "both"], other)),
    };
    Ok(options)
}
