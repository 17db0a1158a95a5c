//! `uld`: universal lesion detection in CT with missing annotations.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "uld",
    version,
    about = "Universal lesion detection in CT, trained with missing annotations"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole system on built-in synthetic data: synthesise, train with mining, evaluate, report.
    Demo(cmd::demo::DemoArgs),
    /// Summarise a DeepLesion root or DL_info.csv, a NIfTI file, a DICOM series or a training run.
    Info(cmd::info::InfoArgs),
    /// Write a synthetic DeepLesion-format dataset with complete annotations (or refit its statistics).
    Synth(cmd::synth::SynthArgs),
    /// Render key slices with labelled (green) and unlabelled (red) lesions into one PNG.
    ContactSheet(cmd::contact_sheet::ContactSheetArgs),
    /// Detect lesions with a trained model on CT scans (NIfTI, DICOM, DeepLesion folders) or a dataset split.
    Detect(cmd::detect::DetectArgs),
    /// Write a NIfTI or DICOM volume (and its label map's lesions) into the DeepLesion layout.
    Convert(cmd::convert::ConvertArgs),
    /// Score detections with a DeepLesion protocol (keyslice, harvester, lens); write report and plots.
    Eval(cmd::eval::EvalArgs),
    /// Train a detector, supervised or with teacher-student lesion mining.
    Train(cmd::train::TrainArgs),
    /// Export the lesions a run's teacher mines on its training images as DL_info.csv rows.
    Mined(cmd::mined::MinedArgs),
    /// Accept, reject or adjust mined lesions in the browser; decisions saved to reviewed.csv.
    Review(cmd::review::ReviewArgs),
    /// Print speed figures of uld's building blocks.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::Info(args) => cmd::info::run(args),
        Command::Synth(args) => cmd::synth::run(args),
        Command::ContactSheet(args) => cmd::contact_sheet::run(args),
        Command::Detect(args) => cmd::detect::run(args),
        Command::Convert(args) => cmd::convert::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Mined(args) => cmd::mined::run(args),
        Command::Review(args) => cmd::review::run(args),
        Command::Bench(command) => cmd::bench::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", message(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once: uld's errors already name
/// their source (`file: no such file`), which the chain would repeat.
fn message(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
