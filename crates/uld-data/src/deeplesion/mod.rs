//! The DeepLesion dataset as published: `DL_info.csv` and
//! `Images_png/PPPPPP_SS_RR/KKK.png` 16-bit slices.

mod box_record;
pub mod convert;
mod extra_columns;
mod geometry;
mod info_csv;
mod png_slice;
mod series;
mod stats;

pub use box_record::record_for_box;
pub use extra_columns::{
    MINED_SCORE, REVIEW_DECISION, RowWithExtras, UNLABELLED_LESION, Verdict, read_dl_info_extras,
};
pub use geometry::{GEOMETRY_FILE, SeriesGeometry};
pub use info_csv::{
    BadRows, COLUMNS, DlInfo, Gender, LesionRecord, LesionType, Split, parse_dl_info, png_name,
    read_dl_info, read_dl_info_with, series_id, write_dl_info, write_dl_info_with,
};
pub use png_slice::{HU_OFFSET, HuSlice, read_png_hu, write_png_hu};
pub use series::{SeriesFolder, SeriesVolume};
pub use stats::{DatasetStats, Quantiles, SIZE_BINS_MM, SplitCounts};
