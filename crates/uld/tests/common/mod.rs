//! Running the `uld` binary from the command-line tests.

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
