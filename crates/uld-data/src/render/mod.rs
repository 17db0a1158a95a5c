//! Pictures of the data: windowed CT slices with coloured box outlines,
//! written as RGB PNGs that state what they show (a `Description` text
//! chunk). Contact sheets of key slices ([`Sheet`], [`write_contact_sheet`])
//! and the raster helpers behind them and behind detection overlays.

pub mod contact_sheet;
pub mod raster;
pub mod sheet;

pub use contact_sheet::{ContactSheet, ContactSheetOptions, write_contact_sheet};
pub use raster::{draw_rect, gray, write_rgb};
pub use sheet::{BLUE, DEFAULT_WINDOW, GREEN, RED, Sheet, YELLOW, key_slice_lesions};
