//! The voxel limit a reader checks before it reads a scan's voxels, so an
//! oversized scan is refused with its dimensions instead of exhausting
//! memory.
//!
//! A leaf module: [`crate::scan`] checks NIfTI files and DeepLesion folders
//! with it, and the DICOM series reader checks a series once its slices are
//! known. Public as `uld_data::scan::check_size`.

use std::path::Path;

use uld_core::{Error, Location, Result};

/// An error when `dims` hold more than `max_voxels` voxels.
pub fn check_size(path: &Path, dims: [usize; 3], max_voxels: Option<u64>) -> Result<()> {
    let voxels = dims.iter().map(|&d| d as u64).product::<u64>();
    match max_voxels {
        Some(max) if voxels > max => Err(Error::data(
            Location::file(path),
            format!(
                "too large: {} x {} x {} = {voxels} voxels ({} MiB as 16-bit HU), more than the {max} voxels ({} MiB) allowed",
                dims[0],
                dims[1],
                dims[2],
                (voxels * 2) >> 20,
                (max * 2) >> 20
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_limit_names_the_dimensions_and_the_limit() {
        assert!(check_size(Path::new("ct"), [512, 512, 100], None).is_ok());
        assert!(check_size(Path::new("ct"), [512, 512, 4], Some(512 * 512 * 4)).is_ok());
        let err = check_size(Path::new("ct"), [512, 512, 100], Some(1 << 20))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("ct: too large: 512 x 512 x 100"), "{err}");
        assert!(err.contains("50 MiB") && err.contains("2 MiB"), "{err}");
    }
}
