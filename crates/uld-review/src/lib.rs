//! `uld review`: a local web page on which a radiologist accepts, rejects
//! or adjusts the lesions a teacher mined, one decision at a time, each
//! saved at once to `reviewed.csv` (`DL_info.csv` rows that `uld train
//! --extra-labels` learns from).
//!
//! [`candidates`] reads what to review, [`decisions`] keeps and saves what
//! was decided, [`image`] renders windowed slices, [`server`] answers the
//! page (`page.html`, plain HTML and JavaScript, embedded in the binary).

pub mod candidates;
pub mod decisions;
pub mod image;
pub mod server;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use uld_core::{Error, Result};

pub use candidates::{Candidate, read_mined};
pub use decisions::{Decision, Review};
pub use server::{ReviewData, ReviewState, router};
pub use uld_data::deeplesion::Verdict;

/// Serves `state` on `host:port` (port 0: any free one) until Ctrl-C;
/// `ready` gets the address to open, token included.
pub fn serve(
    state: Arc<ReviewState>,
    host: IpAddr,
    port: u16,
    ready: impl FnOnce(&str),
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::invalid("review server", e.to_string()))?;
    runtime.block_on(async move {
        let addr = SocketAddr::new(host, port);
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            Error::invalid("review address", format!("cannot listen on {addr}: {e}"))
        })?;
        let bound = listener
            .local_addr()
            .map_err(|e| Error::invalid("review address", e.to_string()))?;
        ready(&format!("http://{bound}/?token={}", state.token()));
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| Error::invalid("review server", e.to_string()))
    })
}
