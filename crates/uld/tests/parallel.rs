//! `uld train --nproc 2` as a user runs it: two local ranks over Gloo, one
//! run directory, and a rank killed mid-run.

mod common;

use common::{synth_tiny, uld};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `uld train --nproc 2` on `data` into `run` for `steps` steps.
fn train_args(data: &Path, run: &Path, steps: u64) -> Vec<String> {
    [
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--preset",
        "tiny",
        "--mode",
        "mining",
        "--nproc",
        "2",
        "--set",
        &format!("steps={steps}"),
        "--set",
        "checkpoint_every=5",
        "--set",
        "threads=1",
        // Two ranks' batches together must fit in the tiny set.
        "--set",
        "loader.batch_size=1",
        "--set",
        "log_every=1",
        "--quiet",
    ]
    .map(String::from)
    .to_vec()
}

/// The steps of the training lines of `metrics.jsonl` (validation lines
/// left out).
fn metrics_steps(run: &Path) -> Vec<u64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|line| line.get("loss").is_some())
        .map(|line| line["step"].as_u64().unwrap())
        .collect()
}

#[test]
fn two_ranks_train_one_run_that_rank_zero_alone_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = (dir.path().join("data"), dir.path().join("run"));
    synth_tiny(&data);
    let args = train_args(&data, &run, 12);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = uld(&args);
    assert!(ok, "{stderr}\n{stdout}");
    // The launcher prints nothing of its own and rank 1 stays quiet: one
    // summary line, from rank 0.
    assert_eq!(stdout.matches("trained 12 steps").count(), 1, "{stdout}");
    assert_eq!(metrics_steps(&run), (1..=12).collect::<Vec<_>>());
    for file in ["config.toml", "best.json", "checkpoints/latest.json"] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
}

/// The processes whose parent is `parent`, with the `RANK` in their
/// environment.
#[cfg(target_os = "linux")]
fn ranks_of(parent: u32) -> Vec<(u32, String)> {
    let mut ranks = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if let Some(rank) = environ
            .split(|&b| b == 0)
            .filter_map(|v| std::str::from_utf8(v).ok())
            .find_map(|v| v.strip_prefix("RANK="))
        {
            ranks.push((pid, rank.to_string()));
        }
    }
    ranks
}

#[cfg(target_os = "linux")]
#[test]
fn a_killed_rank_stops_the_run_with_a_clear_error_and_the_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = (dir.path().join("data"), dir.path().join("run"));
    synth_tiny(&data);
    let launcher = Command::new(env!("CARGO_BIN_EXE_uld"))
        .args(train_args(&data, &run, 100_000))
        .env("TORCH_CPP_LOG_LEVEL", "ERROR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let latest = run.join("checkpoints/latest.json");
    let started = Instant::now();
    while !latest.is_file() {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint after 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ranks = ranks_of(launcher.id());
    let (victim, _) = ranks
        .iter()
        .find(|(_, rank)| rank == "1")
        .unwrap_or_else(|| panic!("no rank 1 among the launcher's children: {ranks:?}"));
    let killed = Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = launcher.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("rank 1 of 2 was killed by signal 9"),
        "{stderr}"
    );

    // The last checkpoint stays usable: the same command resumes from it.
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&latest).unwrap()).unwrap();
    let saved = meta["step"].as_u64().unwrap();
    let args = train_args(&data, &run, saved + 3);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, stdout, stderr) = uld(&args);
    assert!(ok, "{stderr}\n{stdout}");
    assert!(
        stdout.contains(&format!(
            "trained {} steps (resumed at step {saved})",
            saved + 3
        )),
        "{stdout}"
    );
    let steps = metrics_steps(&run);
    assert_eq!(steps.last(), Some(&(saved + 3)));
    assert_eq!(
        steps.iter().filter(|&&s| s == saved + 1).count(),
        1,
        "the log holds each step once"
    );
}
