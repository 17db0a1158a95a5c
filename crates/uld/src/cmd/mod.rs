//! One module per subcommand.

pub mod bench;
pub mod bench_model;
pub mod bench_train;
pub mod contact_sheet;
pub mod detect;
pub mod eval;
pub mod info;
pub mod info_volume;
pub mod synth;
pub mod train;
