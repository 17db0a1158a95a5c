//! A DeepLesion series folder, `Images_png/PPPPPP_SS_RR/`, holding `KKK.png`
//! slices numbered from 1. Only the slices near each key slice are shipped,
//! so a folder may have gaps; neighbours that are missing fall back to the
//! nearest existing slice towards the key slice, as 3DCE does at volume edges.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use uld_core::{Error, Location, Result, Volume};

use super::png_slice::{HuSlice, read_png_hu};

#[derive(Debug, Clone)]
pub struct SeriesFolder {
    dir: PathBuf,
    slices: BTreeMap<u32, PathBuf>,
}

/// A series read as a volume: `z = 0` is PNG number `first_png`.
#[derive(Debug, Clone)]
pub struct SeriesVolume {
    pub volume: Volume<i16>,
    pub first_png: u32,
    /// PNG numbers absent from the folder whose place the nearest slice took.
    pub filled: Vec<u32>,
}

impl SeriesFolder {
    /// Lists the `NNN.png` files of a series folder (other files are ignored).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut slices = BTreeMap::new();
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&dir, e))?.path();
            let number = path
                .extension()
                .filter(|ext| ext.eq_ignore_ascii_case("png"))
                .and_then(|_| path.file_stem()?.to_str()?.parse::<u32>().ok());
            if let Some(number) = number {
                slices.insert(number, path);
            }
        }
        if slices.is_empty() {
            return Err(Error::data(
                Location::file(&dir),
                "no slice files named like `123.png` in this series folder",
            ));
        }
        Ok(Self { dir, slices })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The PNG numbers present, ascending.
    pub fn numbers(&self) -> impl Iterator<Item = u32> + '_ {
        self.slices.keys().copied()
    }

    pub fn contains(&self, number: u32) -> bool {
        self.slices.contains_key(&number)
    }

    /// The existing slice standing in for `key + offset`: that slice if
    /// present, else the first present one stepping back towards `key`.
    pub fn neighbour(&self, key: u32, offset: i64) -> Result<u32> {
        let key_path = || self.dir.join(super::png_name(key));
        if !self.contains(key) {
            return Err(Error::data(
                Location::file(key_path()),
                "key slice file is missing",
            ));
        }
        let step = -offset.signum();
        let mut delta = offset;
        loop {
            let number = i64::from(key) + delta;
            if number >= 0 && self.contains(number as u32) {
                return Ok(number as u32);
            }
            delta += step;
        }
    }

    /// Reads one slice by its PNG number.
    pub fn read(&self, number: u32) -> Result<HuSlice> {
        let path = self
            .slices
            .get(&number)
            .cloned()
            .unwrap_or_else(|| self.dir.join(super::png_name(number)));
        read_png_hu(path)
    }

    /// Reads `key + offset` for each offset, with the nearest-slice fallback.
    pub fn read_stack(&self, key: u32, offsets: &[i64]) -> Result<Vec<HuSlice>> {
        offsets
            .iter()
            .map(|&d| self.read(self.neighbour(key, d)?))
            .collect()
    }

    /// Reads the slices from the first to the last present one as a volume;
    /// gaps are filled with the nearest present slice (the lower one on ties).
    pub fn read_volume(&self, spacing: [f64; 3]) -> Result<SeriesVolume> {
        let first = *self.slices.keys().next().expect("open() ensures one slice");
        let last = *self
            .slices
            .keys()
            .next_back()
            .expect("open() ensures one slice");
        let mut data = Vec::new();
        let mut filled = Vec::new();
        let mut size = None;
        for number in first..=last {
            let source = if self.contains(number) {
                number
            } else {
                filled.push(number);
                self.nearest(number)
            };
            let slice = self.read(source)?;
            match size {
                None => size = Some((slice.width, slice.height)),
                Some(s) if s != (slice.width, slice.height) => {
                    return Err(Error::data(
                        Location::file(&self.slices[&source]),
                        format!(
                            "slice is {}x{} but the series' first slice is {}x{}",
                            slice.width, slice.height, s.0, s.1
                        ),
                    ));
                }
                Some(_) => {}
            }
            data.extend_from_slice(&slice.hu);
        }
        let (width, height) = size.expect("at least one slice was read");
        let depth = (last - first + 1) as usize;
        let volume = Volume::new([width, height, depth], spacing, data)
            .map_err(|e| Error::data(Location::file(&self.dir), e.to_string()))?;
        Ok(SeriesVolume {
            volume,
            first_png: first,
            filled,
        })
    }

    fn nearest(&self, number: u32) -> u32 {
        let below = self.slices.range(..number).next_back().map(|(n, _)| *n);
        let above = self.slices.range(number..).next().map(|(n, _)| *n);
        match (below, above) {
            (Some(b), Some(a)) if a - number < number - b => a,
            (Some(b), _) => b,
            (None, Some(a)) => a,
            (None, None) => unreachable!("open() ensures one slice"),
        }
    }
}
