//! `uld mined`: the lesions a trained run's teacher mines on its training
//! key images (its confident predictions that are not annotated lesions,
//! by the run's own merge rule), exported as `DL_info.csv` rows for review.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use uld_data::deeplesion::{LesionRecord, read_dl_info};
use uld_model::FcosDetector;
use uld_train::Weights;
use uld_train::device::open_device;
use uld_train::mined_export::{MinedRows, MinedRun, mine_trained};
use uld_train::trained::load_trained_weights;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WeightsArg {
    /// The newest checkpoint's teacher (what mined during training).
    Teacher,
    /// The newest checkpoint's student.
    Student,
    /// best.safetensors (the best validated weights).
    Best,
}

impl From<WeightsArg> for Weights {
    fn from(w: WeightsArg) -> Self {
        match w {
            WeightsArg::Teacher => Weights::Teacher,
            WeightsArg::Student => Weights::Student,
            WeightsArg::Best => Weights::Best,
        }
    }
}

#[derive(Args)]
pub struct MinedArgs {
    /// A run directory of `uld train`.
    #[arg(long)]
    pub model: PathBuf,
    /// The dataset root the run trained on.
    #[arg(long)]
    pub data: PathBuf,
    /// Output CSV: DL_info.csv columns, then Mined_score and, where the
    /// dataset's complete annotations are known, Unlabelled_lesion (1/0).
    #[arg(long, default_value = "mined.csv")]
    pub out: PathBuf,
    #[command(flatten)]
    pub miner: MinerArgs,
}

/// How a trained run mines its training images (`uld mined`, `uld review --model`).
#[derive(Args)]
pub struct MinerArgs {
    /// Which of the run's weights mine.
    #[arg(long, value_enum, default_value = "teacher")]
    pub weights: WeightsArg,
    /// Score from which a prediction is a mined lesion (default: the run's `mining.tau_high`).
    #[arg(long)]
    pub tau_high: Option<f32>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl MinerArgs {
    /// Mines the training key images of `data` with the run in `model`,
    /// warning first when the run's precision is slow on this CPU.
    pub fn mine(
        &self,
        data: &Path,
        records: &[LesionRecord],
        model: &Path,
    ) -> anyhow::Result<MinedRun> {
        let device = open_device(&self.device)?;
        let trained = load_trained_weights::<FcosDetector>(model, device, self.weights.into())?;
        super::train::warn_if_slow(trained.config.precision, device);
        Ok(mine_trained(
            data,
            records,
            &trained,
            device,
            self.tau_high,
        )?)
    }
}

pub fn run(args: &MinedArgs) -> anyhow::Result<()> {
    let records = read_dl_info(args.data.join("DL_info.csv"))?;
    let mined = args.miner.mine(&args.data, &records, &args.model)?;
    let rows = MinedRows::new(&mined, &records)?;
    rows.write(&args.out)?;
    println!(
        "{} mined lesions on {} training key images -> {}",
        rows.records.len(),
        mined.images.len(),
        args.out.display()
    );
    if let Some((score, _)) = &mined.truth {
        println!("{}", score.describe());
    }
    Ok(())
}
