//! `uld bench model` as a user runs it: the PyTorch reference script is
//! built into the binary, so a binary carried away from its source tree (to
//! a GPU machine) still finds it.

mod common;

use common::uld;

#[test]
fn bench_model_runs_the_built_in_pytorch_reference() {
    let python = std::env::var("ULD_PYTHON").unwrap_or_else(|_| "python".into());
    let (ok, stdout, err) = uld(&[
        "bench",
        "model",
        "--preset",
        "tiny",
        "--batch",
        "1",
        "--threads",
        "1",
        "--warmup",
        "0",
        "--steps",
        "1",
        "--rounds",
        "1",
        "--python",
        &python,
    ]);
    assert!(
        ok,
        "{err}\n(the reference needs a Python with torch: source scripts/env.sh or set ULD_PYTHON)"
    );
    assert!(stdout.contains("pytorch train step"), "{stdout}");
    assert!(stdout.contains("ratio uld / pytorch"), "{stdout}");
    // A script given on the command line is used instead.
    let (ok, _, err) = uld(&[
        "bench",
        "model",
        "--preset",
        "tiny",
        "--rounds",
        "1",
        "--python",
        &python,
        "--reference",
        "/no/such/reference_model.py",
    ]);
    assert!(!ok && err.contains("the PyTorch reference"), "{err}");
}
