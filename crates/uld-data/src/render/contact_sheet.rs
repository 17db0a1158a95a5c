//! The contact sheet of a DeepLesion-layout dataset (`uld contact-sheet`):
//! key slices in a grid, windowed, with the labelled lesions (rows of
//! `DL_info.csv`) in green and, where a synth manifest is present, every
//! other lesion on the slice in red, so a person can see what the data and
//! its missing labels look like.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use uld_core::{Box2, Error, Location, Result};

use super::sheet::{DEFAULT_WINDOW, GREEN, RED, Sheet, key_slice_lesions};
use crate::deeplesion::{LesionRecord, read_dl_info, read_png_hu};
use crate::synth::{MANIFEST_FILE, Manifest};

/// What goes on the sheet.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactSheetOptions {
    /// Key images shown (the first ones by file name whose PNG exists).
    pub count: usize,
    pub columns: usize,
    /// Tile size in pixels (slices are resampled to it).
    pub tile: usize,
    /// HU window low, high; `None`: each image's first DICOM window from
    /// its row, else [`DEFAULT_WINDOW`].
    pub window: Option<[f32; 2]>,
}

impl Default for ContactSheetOptions {
    fn default() -> Self {
        Self {
            count: 12,
            columns: 4,
            tile: 320,
            window: None,
        }
    }
}

/// What a written sheet shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactSheet {
    /// The table the rows came from.
    pub table: PathBuf,
    pub key_images: usize,
    /// Boxes of `DL_info.csv` rows (green).
    pub labelled: usize,
    /// Other lesions of the synth manifest on the key slices (red).
    pub unlabelled: usize,
    /// Whether a synth manifest was found (without one there are no red boxes).
    pub manifest: bool,
}

/// The dataset root and table of `path`: a root holding `DL_info.csv`, or
/// a `DL_info*.csv` file beside `Images_png/`.
fn root_and_table(path: &Path) -> (PathBuf, PathBuf) {
    if path.is_file() {
        (
            path.parent().unwrap_or(Path::new(".")).to_path_buf(),
            path.to_path_buf(),
        )
    } else {
        (path.to_path_buf(), path.join("DL_info.csv"))
    }
}

/// Draws the contact sheet of the dataset at `path` (see
/// [`root_and_table`]) into the PNG `out`, with a description of what it
/// shows in the file.
pub fn write_contact_sheet(
    path: &Path,
    out: &Path,
    options: &ContactSheetOptions,
) -> Result<ContactSheet> {
    let (root, table) = root_and_table(path);
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
        .take(options.count)
        .collect();
    if shown.is_empty() {
        return Err(Error::data(
            Location::file(&table),
            format!("no key image of its rows exists under {}", root.display()),
        ));
    }
    let mut sheet = Sheet::new(shown.len(), options.columns, options.tile);
    let (mut labelled, mut unlabelled) = (0, 0);
    for (n, rows_of_image) in shown.iter().enumerate() {
        let first = rows_of_image[0];
        let slice = read_png_hu(root.join(first.key_slice_path()))?;
        let window = options.window.unwrap_or_else(|| {
            first
                .dicom_windows
                .first()
                .copied()
                .unwrap_or(DEFAULT_WINDOW)
        });
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
        out,
        "uld contact sheet: key slices, labelled lesions green, unlabelled red",
    )?;
    Ok(ContactSheet {
        table,
        key_images: shown.len(),
        labelled,
        unlabelled,
        manifest: manifest.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use uld_core::testdata::shared_data;

    /// The real DeepLesion test table beside its 47 real key slices: the
    /// sheet shows the first key images that exist, labelled boxes only.
    #[test]
    fn the_real_key_slices_with_their_labelled_boxes() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("sheet.png");
        let options = ContactSheetOptions {
            count: 3,
            columns: 2,
            tile: 64,
            window: Some([-160.0, 240.0]),
        };
        let table = shared_data("deeplesion/DL_info_test.csv");
        let sheet = write_contact_sheet(&table, &out, &options).unwrap();
        assert_eq!(sheet.table, table);
        assert_eq!(
            (sheet.key_images, sheet.unlabelled, sheet.manifest),
            (3, 0, false)
        );
        assert!(sheet.labelled >= 3, "{sheet:?}");
        let png = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&out).unwrap()))
            .read_info()
            .unwrap();
        let info = png.info();
        assert_eq!((info.width, info.height), (2 * 68 + 4, 2 * 68 + 4));
        assert!(
            info.uncompressed_latin1_text[0]
                .text
                .contains("labelled lesions green")
        );
    }

    #[test]
    fn a_table_without_its_images_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let table = dir.join("DL_info.csv");
        std::fs::copy(shared_data("deeplesion/DL_info_test.csv"), &table).unwrap();
        let err = write_contact_sheet(dir, &dir.join("s.png"), &ContactSheetOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("DL_info.csv") && err.contains("no key image"),
            "{err}"
        );
        assert!(!dir.join("s.png").exists());
    }
}
