//! The geometry sidecar `uld_geometry.json` that `uld convert` writes into a
//! DeepLesion series folder. DeepLesion itself ships no positions; with the
//! sidecar a converted series keeps its spacing and voxel-to-world
//! transform, so detections on it can be given in world millimetres.
//!
//! The matrix maps `(column, row, PNG number - 1, 1)` to world mm in
//! `frame`: columns are PNG x (0-based), rows PNG y (0-based), and the third
//! index is the 0-based slice whose file is `KKK.png` with `KKK` = index + 1.

use std::path::Path;

use serde::{Deserialize, Serialize};
use uld_core::{Error, Frame, Location, Result, WorldTransform, write_atomically};

/// File name of the sidecar inside a series folder.
pub const GEOMETRY_FILE: &str = "uld_geometry.json";

const FORMAT: &str = "uld-series-geometry";

/// A series folder's spacing and, when the source had one, world transform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesGeometry {
    pub format: String,
    pub version: u32,
    pub convention: String,
    /// Pixel spacing x, y and the slice interval, mm.
    pub spacing_mm: [f64; 3],
    /// `"RAS"` or `"LPS"`, absent without a transform.
    pub frame: Option<Frame>,
    /// 3 rows of 4: `(column, row, PNG number - 1, 1)` to world mm.
    pub matrix: Option<[[f64; 4]; 3]>,
    /// Where the voxels came from.
    pub source: String,
}

impl SeriesGeometry {
    pub fn new(spacing_mm: [f64; 3], world: Option<&WorldTransform>, source: &Path) -> Self {
        Self {
            format: FORMAT.into(),
            version: 1,
            convention: "matrix maps (column, row, PNG number - 1, 1) to world mm in `frame`; \
                         columns and rows are 0-based PNG pixels, x right, y down"
                .into(),
            spacing_mm,
            frame: world.map(|w| w.frame),
            matrix: world.map(|w| w.matrix),
            source: source.display().to_string(),
        }
    }

    /// The voxel-to-world transform of a volume whose slice 0 is PNG
    /// `first_png`.
    pub fn world(&self, first_png: u32) -> Option<WorldTransform> {
        let (frame, mut matrix) = (self.frame?, self.matrix?);
        let shift = f64::from(first_png.saturating_sub(1));
        for row in &mut matrix {
            row[3] += row[2] * shift;
        }
        Some(WorldTransform { matrix, frame })
    }

    /// Reads `dir/uld_geometry.json`; `None` when the folder has none.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(GEOMETRY_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let geometry: Self = serde_json::from_str(&text)
            .map_err(|e| Error::data(Location::file(&path), format!("not a {FORMAT} file: {e}")))?;
        if geometry.format != FORMAT {
            return Err(Error::data(
                Location::file(&path).field("format"),
                format!("`{}`, expected `{FORMAT}`", geometry.format),
            ));
        }
        Ok(Some(geometry))
    }

    /// Writes `dir/uld_geometry.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_atomically(&dir.join(GEOMETRY_FILE), |w| {
            serde_json::to_writer_pretty(&mut *w, self).map_err(std::io::Error::other)?;
            std::io::Write::write_all(w, b"\n")
        })
    }
}
