//! Labels from `uld review` (`reviewed.csv`) added to the training images:
//! accepted lesions become annotated boxes; rejected ones become known
//! negatives (background, which mining may not turn into a lesion) or
//! ignore regions.

use std::collections::HashMap;
use std::path::PathBuf;

use uld_core::{Box2, Error, Location, Result};
use uld_data::deeplesion::{REVIEW_DECISION, Verdict, read_dl_info_extras};
use uld_data::loader::KeyImage;

/// What a rejected lesion becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectedAs {
    /// Background that the teacher may not mine.
    Negative,
    /// An ignore region: neither lesion nor background.
    Ignore,
}

/// A `reviewed.csv` to train with, and what its rejections mean.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraLabels {
    pub path: PathBuf,
    pub rejected: RejectedAs,
}

/// What the reviewed labels added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reviewed {
    pub accepted: usize,
    pub rejected: usize,
    /// Known negatives of each training image (original pixels), for mining.
    pub negatives: Vec<Vec<Box2>>,
}

/// Adds the decisions of `extra` to `images` (the training key images).
pub fn add_reviewed(images: &mut [KeyImage], extra: &ExtraLabels) -> Result<Reviewed> {
    let path = &extra.path;
    let rows = read_dl_info_extras(path, &[REVIEW_DECISION], &[])?;
    let index: HashMap<&str, usize> = images
        .iter()
        .enumerate()
        .map(|(i, image)| (image.file_name.as_str(), i))
        .collect();
    let mut found: Vec<(usize, bool, Box2)> = Vec::with_capacity(rows.len());
    for row in &rows {
        let at = |field: &str| Location::file(path).line(row.line).field(field);
        let name = row.record.file_name.as_str();
        let image = *index.get(name).ok_or_else(|| {
            Error::data(
                at("File_name"),
                format!("{name} is not a training key image of this dataset"),
            )
        })?;
        let cell = row.extras[0].as_deref().unwrap_or("");
        let verdict = Verdict::of_cell(cell, Location::file(path).line(row.line))?;
        found.push((image, verdict == Verdict::Accepted, row.record.bbox));
    }
    // Every row is checked before any image changes.
    let mut reviewed = Reviewed {
        negatives: vec![Vec::new(); images.len()],
        ..Reviewed::default()
    };
    for (i, accepted, b) in found {
        if accepted {
            images[i].boxes.push(b);
            reviewed.accepted += 1;
        } else {
            match extra.rejected {
                RejectedAs::Negative => reviewed.negatives[i].push(b),
                RejectedAs::Ignore => images[i].ignore.push(b),
            }
            reviewed.rejected += 1;
        }
    }
    Ok(reviewed)
}

#[cfg(test)]
mod tests {
    use uld_data::deeplesion::{LesionRecord, read_dl_info, write_dl_info_with};
    use uld_data::loader::NoisyPolicy;

    use super::*;

    fn reviewed_file(dir: &std::path::Path, rows: &[LesionRecord], verdicts: &[&str]) -> PathBuf {
        let path = dir.join("reviewed.csv");
        let values: Vec<Vec<String>> = verdicts.iter().map(|v| vec![v.to_string()]).collect();
        write_dl_info_with(&path, rows, &[REVIEW_DECISION], &values).unwrap();
        path
    }

    #[test]
    fn accepted_lesions_become_boxes_and_rejected_ones_negatives_or_ignored() {
        let records = read_dl_info(uld_core::testdata::shared_data(
            "deeplesion/DL_info_val.csv",
        ))
        .unwrap();
        let root = std::path::Path::new("/data");
        let fresh = || KeyImage::from_records(root, &records[..3], NoisyPolicy::Keep);
        let dir = tempfile::tempdir().unwrap();
        let mut moved = records[0].clone();
        moved.bbox = Box2::new(1.0, 2.0, 30.0, 40.0);
        let mut rejected = records[1].clone();
        rejected.bbox = Box2::new(5.0, 5.0, 25.0, 25.0);
        let path = reviewed_file(dir.path(), &[moved, rejected], &["accepted", "rejected"]);

        let mut images = fresh();
        let before: Vec<usize> = images.iter().map(|i| i.boxes.len()).collect();
        let extra = ExtraLabels {
            path: path.clone(),
            rejected: RejectedAs::Negative,
        };
        let r = add_reviewed(&mut images, &extra).unwrap();
        assert_eq!((r.accepted, r.rejected), (1, 1));
        let first = images
            .iter()
            .position(|i| i.file_name == records[0].file_name)
            .unwrap();
        let second = images
            .iter()
            .position(|i| i.file_name == records[1].file_name)
            .unwrap();
        assert_eq!(images[first].boxes.len(), before[first] + 1);
        assert_eq!(
            images[first].boxes.last(),
            Some(&Box2::new(1.0, 2.0, 30.0, 40.0))
        );
        assert_eq!(r.negatives[second], vec![Box2::new(5.0, 5.0, 25.0, 25.0)]);
        assert!(images[second].ignore.is_empty());

        let mut images = fresh();
        let extra = ExtraLabels {
            path: path.clone(),
            rejected: RejectedAs::Ignore,
        };
        let r = add_reviewed(&mut images, &extra).unwrap();
        assert!(r.negatives.iter().all(Vec::is_empty));
        assert_eq!(images[second].ignore, vec![Box2::new(5.0, 5.0, 25.0, 25.0)]);

        // A row on an image that is not being trained on, and a bad verdict.
        let mut images = KeyImage::from_records(root, &records[1..3], NoisyPolicy::Keep);
        let err = add_reviewed(
            &mut images,
            &ExtraLabels {
                path,
                rejected: RejectedAs::Ignore,
            },
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("line 2, field `File_name`"),
            "{err}"
        );
        let path = reviewed_file(dir.path(), &records[..1], &["maybe"]);
        let err = add_reviewed(
            &mut fresh(),
            &ExtraLabels {
                path,
                rejected: RejectedAs::Ignore,
            },
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("`maybe` is neither accepted nor rejected"),
            "{err}"
        );
    }
}
