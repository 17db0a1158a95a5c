//! `uld bench model` as a user runs it: the PyTorch reference script is
//! built into the binary, so a binary carried away from its source tree (to
//! a GPU machine) still finds it.

mod common;

use common::{synth_tiny, uld};

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

#[test]
fn bench_train_times_mining_with_its_teacher_in_the_bare_step() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synth_tiny(&data);
    let data = data.to_str().unwrap();
    let (ok, stdout, err) = uld(&[
        "bench",
        "train",
        "--data",
        data,
        "--preset",
        "tiny",
        "--mode",
        "mining",
        "--steps",
        "2",
        "--warmup",
        "0",
        "--set",
        "threads=1",
    ]);
    assert!(ok, "{err}");
    for part in [
        "teacher pass",
        "student step",
        "teacher update",
        "target assignment",
    ] {
        assert!(stdout.contains(part), "no {part}: {stdout}");
    }
    let ratio: f64 = stdout
        .split("ratio whole / bare ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no ratio in {stdout}"));
    assert!(ratio.is_finite() && ratio > 0.0, "{stdout}");
}
