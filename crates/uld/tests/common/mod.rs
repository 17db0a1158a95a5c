//! Running the `uld` binary from the command-line tests.

use std::path::Path;
use std::process::Command;

/// Runs `uld args...`: (success, stdout, stderr).
pub fn uld(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_uld"))
        .args(args)
        .env("TORCH_CPP_LOG_LEVEL", "ERROR")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes `uld synth --preset tiny` into `out`.
pub fn synth_tiny(out: &Path) {
    let (ok, _, err) = uld(&["synth", "--preset", "tiny", "--out", out.to_str().unwrap()]);
    assert!(ok, "uld synth failed: {err}");
}
