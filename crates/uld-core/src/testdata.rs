//! Where the project's tests find the real data in `../shared/data/`.
//!
//! Tests that need it fail with a message saying what is missing, never pass
//! silently. `ULD_SHARED_DATA` overrides the location.

use std::path::PathBuf;

/// The path of `relative` inside the shared real-data folder; panics (in a
/// test, a failure) with a clear message when it does not exist.
pub fn shared_data(relative: &str) -> PathBuf {
    let root = std::env::var_os("ULD_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let path = root.join(relative);
    assert!(
        path.exists(),
        "real test data {} is missing: the tests need the project's shared data \
         folder beside the checkout (../shared/data) or ULD_SHARED_DATA pointing at it",
        path.display()
    );
    path
}
