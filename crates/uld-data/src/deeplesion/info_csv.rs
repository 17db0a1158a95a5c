//! `DL_info.csv`, the DeepLesion metadata table: one row per annotated lesion.
//!
//! Columns are found by header name, so extra trailing columns (the Kaggle
//! copy adds `kaggle_path,Radius,bbox`) are accepted. Pixel coordinates in the
//! file are 1-based (3DCE and MULAN subtract 1); [`LesionRecord`] holds them
//! 0-based, and the writer adds the 1 back, so a read-write round trip gives
//! the file's numbers.

use std::fs::File;
use std::path::Path;

use serde::Serialize;
use uld_core::{Box2, Error, Location, Result, write_atomically};

/// The 18 columns of `DL_info.csv`, in the published order.
pub const COLUMNS: [&str; 18] = [
    "File_name",
    "Patient_index",
    "Study_index",
    "Series_ID",
    "Key_slice_index",
    "Measurement_coordinates",
    "Bounding_boxes",
    "Lesion_diameters_Pixel_",
    "Normalized_lesion_location",
    "Coarse_lesion_type",
    "Possibly_noisy",
    "Slice_range",
    "Spacing_mm_px_",
    "Image_size",
    "DICOM_windows",
    "Patient_gender",
    "Patient_age",
    "Train_Val_Test",
];

/// DeepLesion's coarse lesion types (`Coarse_lesion_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum LesionType {
    Bone,
    Abdomen,
    Mediastinum,
    Liver,
    Lung,
    Kidney,
    SoftTissue,
    Pelvis,
    /// `-1`: not labelled (every training row).
    Unknown,
}

impl LesionType {
    pub const ALL: [Self; 9] = [
        Self::Bone,
        Self::Abdomen,
        Self::Mediastinum,
        Self::Liver,
        Self::Lung,
        Self::Kidney,
        Self::SoftTissue,
        Self::Pelvis,
        Self::Unknown,
    ];

    pub fn from_code(code: i32) -> Option<Self> {
        match code {
            -1 => Some(Self::Unknown),
            1..=8 => Some(Self::ALL[code as usize - 1]),
            _ => None,
        }
    }

    pub fn code(self) -> i32 {
        match self {
            Self::Unknown => -1,
            other => Self::ALL.iter().position(|t| *t == other).unwrap_or(0) as i32 + 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Bone => "bone",
            Self::Abdomen => "abdomen",
            Self::Mediastinum => "mediastinum",
            Self::Liver => "liver",
            Self::Lung => "lung",
            Self::Kidney => "kidney",
            Self::SoftTissue => "soft tissue",
            Self::Pelvis => "pelvis",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Self; 3] = [Self::Train, Self::Val, Self::Test];

    pub fn from_code(code: i32) -> Option<Self> {
        match code {
            1 => Some(Self::Train),
            2 => Some(Self::Val),
            3 => Some(Self::Test),
            _ => None,
        }
    }

    pub fn code(self) -> i32 {
        self as i32 + 1
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Val => "val",
            Self::Test => "test",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Gender {
    Female,
    Male,
    Unknown,
}

/// One row of `DL_info.csv`, typed. Pixel coordinates are 0-based.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LesionRecord {
    /// `PPPPPP_SS_RR_KKK.png`: the key image this lesion is on.
    pub file_name: String,
    pub patient: u32,
    pub study: u32,
    pub series: u32,
    /// The key slice's PNG number, as in its file name (1-based).
    pub key_slice_png: u32,
    /// RECIST long axis (x, y, x, y) then short axis, 0-based pixels.
    pub recist: [f32; 8],
    /// The RECIST extent padded by 5 px, 0-based pixels.
    pub bbox: Box2,
    /// Long and short RECIST diameters in pixels.
    pub diameters_px: [f32; 2],
    pub normalized_location: [f32; 3],
    pub lesion_type: LesionType,
    pub possibly_noisy: bool,
    /// First and last PNG number shipped with the key slice.
    pub slice_range: [u32; 2],
    /// Pixel spacing x, y and the slice interval, in mm.
    pub spacing: [f64; 3],
    pub image_size: [u32; 2],
    /// Window (low, high) HU pairs the radiologist used.
    pub dicom_windows: Vec<[f32; 2]>,
    pub gender: Gender,
    pub age: Option<f32>,
    pub split: Split,
}

impl LesionRecord {
    /// `PPPPPP_SS_RR`: the folder of this lesion's series under `Images_png/`.
    pub fn series_id(&self) -> String {
        series_id(self.patient, self.study, self.series)
    }

    /// `Images_png/PPPPPP_SS_RR/KKK.png` relative to the dataset root.
    pub fn key_slice_path(&self) -> std::path::PathBuf {
        Path::new("Images_png")
            .join(self.series_id())
            .join(png_name(self.key_slice_png))
    }

    pub fn long_diameter_mm(&self) -> f64 {
        self.diameters_px[0] as f64 * self.spacing[0]
    }

    pub fn short_diameter_mm(&self) -> f64 {
        self.diameters_px[1] as f64 * self.spacing[0]
    }

    pub fn slice_interval_mm(&self) -> f64 {
        self.spacing[2]
    }
}

/// `PPPPPP_SS_RR`, as DeepLesion names series folders.
pub fn series_id(patient: u32, study: u32, series: u32) -> String {
    format!("{patient:06}_{study:02}_{series:02}")
}

/// `KKK.png`, as DeepLesion names slice files.
pub fn png_name(number: u32) -> String {
    format!("{number:03}.png")
}

/// What to do with a row that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BadRows {
    /// Stop at the first bad row with its error.
    #[default]
    Stop,
    /// Skip bad rows; their errors are returned beside the good rows.
    Skip,
}

/// The rows of one `DL_info.csv` and the rows that were skipped.
#[derive(Debug, Default)]
pub struct DlInfo {
    pub records: Vec<LesionRecord>,
    pub skipped: Vec<Error>,
}

/// Reads every row, stopping at the first bad one.
pub fn read_dl_info(path: impl AsRef<Path>) -> Result<Vec<LesionRecord>> {
    Ok(read_dl_info_with(path, BadRows::Stop)?.records)
}

pub fn read_dl_info_with(path: impl AsRef<Path>, bad_rows: BadRows) -> Result<DlInfo> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    parse_dl_info(file, path, bad_rows)
}

/// Parses `DL_info.csv` content; `path` names it in errors.
pub fn parse_dl_info(reader: impl std::io::Read, path: &Path, bad_rows: BadRows) -> Result<DlInfo> {
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let header_error = |message: String| Error::data(Location::file(path).line(1), message);
    let headers = csv
        .headers()
        .map_err(|e| header_error(format!("cannot read the header: {e}")))?
        .clone();
    let mut index = [0usize; 18];
    for (slot, name) in index.iter_mut().zip(COLUMNS) {
        *slot = headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| header_error(format!("missing column `{name}`")))?;
    }
    let mut info = DlInfo::default();
    for row in csv.records() {
        let parsed = row
            .map_err(|e| {
                let line = e.position().map_or(0, |p| p.line());
                Error::data(
                    Location::file(path).line(line),
                    format!("unreadable row: {e}"),
                )
            })
            .and_then(|record| {
                let line = record.position().map_or(0, |p| p.line());
                RowParser {
                    path,
                    line,
                    record: &record,
                    index: &index,
                }
                .parse()
            });
        match (parsed, bad_rows) {
            (Ok(r), _) => info.records.push(r),
            (Err(e), BadRows::Skip) => info.skipped.push(e),
            (Err(e), BadRows::Stop) => return Err(e),
        }
    }
    Ok(info)
}

struct RowParser<'a> {
    path: &'a Path,
    line: u64,
    record: &'a csv::StringRecord,
    index: &'a [usize; 18],
}

impl RowParser<'_> {
    fn error(&self, column: usize, message: String) -> Error {
        Error::data(
            Location::file(self.path)
                .line(self.line)
                .field(COLUMNS[column]),
            message,
        )
    }

    fn text(&self, column: usize) -> Result<&str> {
        self.record
            .get(self.index[column])
            .map(str::trim)
            .ok_or_else(|| self.error(column, "missing field".into()))
    }

    fn number<T: std::str::FromStr>(&self, column: usize) -> Result<T> {
        let text = self.text(column)?;
        text.parse()
            .map_err(|_| self.error(column, format!("`{text}` is not a valid number")))
    }

    /// A quoted comma list of exactly `N` numbers.
    fn list<const N: usize>(&self, column: usize) -> Result<[f64; N]> {
        let values = self.numbers(column)?;
        values.try_into().map_err(|v: Vec<f64>| {
            self.error(column, format!("expected {N} numbers, found {}", v.len()))
        })
    }

    fn numbers(&self, column: usize) -> Result<Vec<f64>> {
        let text = self.text(column)?;
        text.split(',')
            .map(|part| {
                let part = part.trim();
                part.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| self.error(column, format!("`{part}` is not a valid number")))
            })
            .collect()
    }

    fn parse(&self) -> Result<LesionRecord> {
        let file_name = self.text(0)?.to_string();
        if file_name.is_empty() {
            return Err(self.error(0, "empty file name".into()));
        }
        let px = |v: f64| (v - 1.0) as f32;
        let recist = self.list::<8>(5)?.map(px);
        let [x1, y1, x2, y2] = self.list::<4>(6)?.map(px);
        let bbox = Box2::new(x1, y1, x2, y2);
        if !bbox.is_valid() {
            return Err(self.error(6, format!("box {:?} has no area", [x1, y1, x2, y2])));
        }
        let diameters_px = self.list::<2>(7)?.map(|v| v as f32);
        let normalized_location = self.list::<3>(8)?.map(|v| v as f32);
        let type_code: i32 = self.number(9)?;
        let lesion_type = LesionType::from_code(type_code)
            .ok_or_else(|| self.error(9, format!("unknown lesion type {type_code}")))?;
        let possibly_noisy = match self.text(10)? {
            "0" => false,
            "1" => true,
            other => return Err(self.error(10, format!("expected 0 or 1, found `{other}`"))),
        };
        let [first, last] = self.list::<2>(11)?;
        let slice_range = [self.slice_number(11, first)?, self.slice_number(11, last)?];
        let spacing = self.list::<3>(12)?;
        if spacing.iter().any(|s| *s <= 0.0) {
            return Err(self.error(12, format!("spacing must be positive, found {spacing:?}")));
        }
        let [w, h] = self.list::<2>(13)?;
        let image_size = [self.slice_number(13, w)?, self.slice_number(13, h)?];
        let windows = self.numbers(14)?;
        if windows.len() % 2 != 0 {
            return Err(self.error(
                14,
                format!("expected pairs, found {} numbers", windows.len()),
            ));
        }
        let dicom_windows = windows
            .chunks(2)
            .map(|w| [w[0] as f32, w[1] as f32])
            .collect();
        let gender = match self.text(15)? {
            "F" => Gender::Female,
            "M" => Gender::Male,
            _ => Gender::Unknown,
        };
        let age = match self.text(16)? {
            "" | "NaN" | "nan" => None,
            text => Some(
                text.parse::<f32>()
                    .ok()
                    .filter(|a| a.is_finite())
                    .ok_or_else(|| self.error(16, format!("`{text}` is not an age")))?,
            ),
        };
        let split_code: i32 = self.number(17)?;
        let split = Split::from_code(split_code)
            .ok_or_else(|| self.error(17, format!("unknown split {split_code} (1, 2 or 3)")))?;
        let record = LesionRecord {
            file_name,
            patient: self.number(1)?,
            study: self.number(2)?,
            series: self.number(3)?,
            key_slice_png: self.number(4)?,
            recist,
            bbox,
            diameters_px,
            normalized_location,
            lesion_type,
            possibly_noisy,
            slice_range,
            spacing,
            image_size,
            dicom_windows,
            gender,
            age,
            split,
        };
        let expected_name = format!("{}_{:03}.png", record.series_id(), record.key_slice_png);
        if record.file_name != expected_name {
            return Err(self.error(
                0,
                format!(
                    "`{}` does not match its row (expected `{expected_name}`)",
                    record.file_name
                ),
            ));
        }
        Ok(record)
    }

    fn slice_number(&self, column: usize, v: f64) -> Result<u32> {
        if v >= 0.0 && v.fract() == 0.0 && v <= u32::MAX as f64 {
            Ok(v as u32)
        } else {
            Err(self.error(column, format!("`{v}` is not a whole number")))
        }
    }
}

/// Writes records as `DL_info.csv` (1-based pixels, the published layout),
/// atomically: the file appears complete or not at all.
pub fn write_dl_info(path: impl AsRef<Path>, records: &[LesionRecord]) -> Result<()> {
    write_dl_info_with(path, records, &[], &[])
}

/// Writes records as `DL_info.csv` followed by `extra_columns`, whose
/// values for record `i` are `extra_values[i]` (readers of `DL_info.csv`,
/// uld's included, skip trailing columns).
pub fn write_dl_info_with(
    path: impl AsRef<Path>,
    records: &[LesionRecord],
    extra_columns: &[&str],
    extra_values: &[Vec<String>],
) -> Result<()> {
    write_atomically(path.as_ref(), |out| {
        let mut csv = csv::Writer::from_writer(out);
        csv.write_record(COLUMNS.iter().chain(extra_columns))?;
        for (i, r) in records.iter().enumerate() {
            let extra = extra_values.get(i).map_or(&[][..], Vec::as_slice);
            csv.write_record(record_fields(r).iter().chain(extra))?;
        }
        csv.flush()
    })
}

fn record_fields(r: &LesionRecord) -> [String; 18] {
    fn list<T: std::fmt::Display>(values: impl IntoIterator<Item = T>) -> String {
        values
            .into_iter()
            .map(|v| format!("{v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
    // f32 values print in their shortest exact form (172.13, not 172.1300048828125)
    let px = |values: &[f32]| list(values.iter().map(|v| v + 1.0));
    let f = |values: &[f32]| list(values.iter());
    let windows: Vec<f32> = r.dicom_windows.iter().flatten().copied().collect();
    [
        r.file_name.clone(),
        r.patient.to_string(),
        r.study.to_string(),
        r.series.to_string(),
        r.key_slice_png.to_string(),
        px(&r.recist),
        px(&r.bbox.to_array()),
        f(&r.diameters_px),
        f(&r.normalized_location),
        r.lesion_type.code().to_string(),
        u8::from(r.possibly_noisy).to_string(),
        format!("{}, {}", r.slice_range[0], r.slice_range[1]),
        list(r.spacing),
        format!("{}, {}", r.image_size[0], r.image_size[1]),
        f(&windows),
        match r.gender {
            Gender::Female => "F",
            Gender::Male => "M",
            Gender::Unknown => "",
        }
        .to_string(),
        r.age.map(|a| a.to_string()).unwrap_or_default(),
        r.split.code().to_string(),
    ]
}
