//! One module per subcommand.

pub mod bench;
pub mod bench_mining;
pub mod bench_model;
pub mod bench_train;
pub mod contact_sheet;
pub mod convert;
pub mod demo;
pub mod detect;
pub mod detect_scans;
pub mod eval;
pub mod experiment;
pub mod info;
pub mod info_volume;
pub mod mined;
pub mod raster;
pub mod scan_outputs;
pub mod scan_report;
pub mod sheet;
pub mod synth;
pub mod train;
