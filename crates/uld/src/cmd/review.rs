//! `uld review`: accept, reject or adjust mined lesions in the browser
//! (the server and page are `uld_review`'s); the decisions go to
//! `reviewed.csv`, which `uld train --extra-labels` learns from.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use uld_data::deeplesion::read_dl_info;
use uld_data::synth::{MANIFEST_FILE, Manifest};
use uld_review::candidates::rank;
use uld_review::{ReviewData, ReviewState, read_mined, serve};
use uld_train::mined_export::MinedRows;

use crate::cmd::mined::MinerArgs;

#[derive(Args)]
pub struct ReviewArgs {
    /// The dataset root (DL_info.csv and Images_png/).
    #[arg(long)]
    pub data: PathBuf,
    /// Mine the candidates with this run of `uld train` (its teacher).
    #[arg(long, conflicts_with = "mined", required_unless_present = "mined")]
    pub model: Option<PathBuf>,
    /// Review the rows of a file `uld mined` wrote.
    #[arg(long)]
    pub mined: Option<PathBuf>,
    /// Where decisions are saved, one at a time; an existing file is resumed.
    #[arg(long, default_value = "reviewed.csv")]
    pub out: PathBuf,
    /// Address to listen on; only this machine can connect by default.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Port (0: any free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Reviewer name written with each decision (default: $USER).
    #[arg(long)]
    pub reviewer: Option<String>,
    /// With --model: how the run mines.
    #[command(flatten)]
    pub miner: MinerArgs,
}

pub fn run(args: &ReviewArgs) -> anyhow::Result<()> {
    let candidates = match (&args.mined, &args.model) {
        (Some(mined), _) => read_mined(mined)?,
        (None, Some(model)) => {
            let records = read_dl_info(args.data.join("DL_info.csv"))?;
            let mined = args.miner.mine(&args.data, &records, model)?;
            let rows = MinedRows::new(&mined, &records)?;
            rank(
                rows.records
                    .into_iter()
                    .zip(rows.scores)
                    .zip(rows.real)
                    .map(|((r, s), t)| (r, s, t))
                    .collect(),
            )
        }
        (None, None) => bail!("give --model RUN or --mined mined.csv"),
    };
    let manifest = args.data.join(MANIFEST_FILE);
    let truth = if manifest.exists() {
        Some(Manifest::read(&manifest)?)
    } else {
        None
    };
    let reviewer = args
        .reviewer
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "reviewer".into());
    let count = candidates.len();
    let state = ReviewState::open(
        ReviewData {
            root: args.data.clone(),
            candidates,
            truth,
            reviewer,
        },
        &args.out,
    )
    .with_context(|| format!("opening the review {}", args.out.display()))?;
    let decided = state.decided();
    serve(state, args.host, args.port, |url| {
        println!(
            "{count} candidates, {decided} decided (saved to {}); open\n  {url}\nCtrl-C stops (every decision is already saved)",
            args.out.display()
        );
    })?;
    Ok(())
}
