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
pub mod info;
pub mod mined;
pub mod review;
pub mod synth;
pub mod train;
