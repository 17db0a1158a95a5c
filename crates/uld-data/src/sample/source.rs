//! Where a sample's slices come from: an in-memory volume or a DeepLesion
//! series folder read slice by slice (never the whole series).

use std::ops::Deref;
use std::sync::Arc;

use uld_core::{Error, Location, Result, Volume};

use super::cache::SliceCache;
use crate::deeplesion::{HuSlice, SeriesFolder};
use crate::reorient::AxisMap;

/// One slice of HU, borrowed from a volume or shared from a cache.
pub enum SliceRef<'a> {
    Borrowed(&'a [i16]),
    Shared(Arc<HuSlice>),
}

impl Deref for SliceRef<'_> {
    type Target = [i16];
    fn deref(&self) -> &[i16] {
        match self {
            Self::Borrowed(s) => s,
            Self::Shared(s) => &s.hu,
        }
    }
}

/// The slices around one key slice.
pub trait SliceSource {
    /// In-plane `(width, height)` of every slice.
    fn size(&self) -> (usize, usize);
    /// Pixel spacing x, y and the slice interval, in mm.
    fn spacing(&self) -> [f64; 3];
    /// The slice `offset` slices from the key (negative: lower numbers); a
    /// slice beyond the data is replaced by the nearest existing one.
    fn slice(&self, offset: i64) -> Result<SliceRef<'_>>;
}

/// Slice `key` of a volume and its neighbours; offsets past either end take
/// the first or last slice. An oriented source ([`VolumeSource::oriented`])
/// shows the volume re-indexed by an [`AxisMap`], one slice at a time, so
/// the volume is never copied whole.
pub struct VolumeSource<'a> {
    pub volume: &'a Volume<i16>,
    /// The key slice, in the (re-indexed) slices this source shows.
    pub key: usize,
    map: AxisMap,
}

impl<'a> VolumeSource<'a> {
    pub fn new(volume: &'a Volume<i16>, key: usize) -> Result<Self> {
        Self::oriented(volume, key, AxisMap::IDENTITY)
    }

    /// Slice `key` of `volume` re-indexed by `map` (a map that keeps slices
    /// or not), and its neighbours there.
    pub fn oriented(volume: &'a Volume<i16>, key: usize, map: AxisMap) -> Result<Self> {
        let depth = map.target_dims(volume.dims())[2];
        if key >= depth {
            return Err(Error::invalid(
                "key slice",
                format!("{key} is outside a volume of {depth} slices"),
            ));
        }
        Ok(Self { volume, key, map })
    }
}

impl SliceSource for VolumeSource<'_> {
    fn size(&self) -> (usize, usize) {
        let [nx, ny, _] = self.map.target_dims(self.volume.dims());
        (nx, ny)
    }

    fn spacing(&self) -> [f64; 3] {
        let spacing = self.volume.spacing();
        std::array::from_fn(|a| spacing[self.map.source[a]])
    }

    fn slice(&self, offset: i64) -> Result<SliceRef<'_>> {
        let [width, height, depth] = self.map.target_dims(self.volume.dims());
        let z = (self.key as i64 + offset).clamp(0, depth as i64 - 1) as usize;
        if self.map.is_identity() {
            return Ok(SliceRef::Borrowed(self.volume.slice(z)));
        }
        Ok(SliceRef::Shared(Arc::new(HuSlice {
            width,
            height,
            hu: self.map.target_slice(self.volume, z),
        })))
    }
}

/// A DeepLesion series folder around key slice `key_png`, read one PNG at a
/// time through an optional [`SliceCache`]. Missing neighbours fall back as
/// [`SeriesFolder::neighbour`] does (towards the key slice).
pub struct SeriesSource<'a> {
    folder: &'a SeriesFolder,
    key_png: u32,
    spacing: [f64; 3],
    cache: Option<&'a SliceCache>,
    key: Arc<HuSlice>,
}

impl<'a> SeriesSource<'a> {
    /// Reads the key slice; `spacing` is the series' (from `DL_info.csv`).
    pub fn new(
        folder: &'a SeriesFolder,
        key_png: u32,
        spacing: [f64; 3],
        cache: Option<&'a SliceCache>,
    ) -> Result<Self> {
        let mut source = Self {
            folder,
            key_png,
            spacing,
            cache,
            key: Arc::new(HuSlice {
                width: 0,
                height: 0,
                hu: Vec::new(),
            }),
        };
        source.key = source.read(source.folder.neighbour(key_png, 0)?)?;
        Ok(source)
    }

    fn read(&self, number: u32) -> Result<Arc<HuSlice>> {
        let path = self.folder.dir().join(crate::deeplesion::png_name(number));
        let slice = match self.cache {
            Some(cache) => cache.get_or_load(&path, || self.folder.read(number))?,
            None => Arc::new(self.folder.read(number)?),
        };
        if number != self.key_png
            && (slice.width, slice.height) != (self.key.width, self.key.height)
        {
            return Err(Error::data(
                Location::file(path),
                format!(
                    "slice is {}x{} but key slice {} is {}x{}",
                    slice.width, slice.height, self.key_png, self.key.width, self.key.height
                ),
            ));
        }
        Ok(slice)
    }
}

impl SliceSource for SeriesSource<'_> {
    fn size(&self) -> (usize, usize) {
        (self.key.width, self.key.height)
    }

    fn spacing(&self) -> [f64; 3] {
        self.spacing
    }

    fn slice(&self, offset: i64) -> Result<SliceRef<'_>> {
        let number = self.folder.neighbour(self.key_png, offset)?;
        if number == self.key_png {
            return Ok(SliceRef::Shared(self.key.clone()));
        }
        Ok(SliceRef::Shared(self.read(number)?))
    }
}
