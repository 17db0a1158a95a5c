//! `uld demo`, `uld bench mining` and `uld mined` as a user runs them, on
//! tiny settings so that each takes seconds.

mod common;

use common::uld;
use std::path::Path;

/// A few patients and training steps of the `tiny` preset, quietly.
const TINY_RUN: [&str; 7] = [
    "--patients",
    "6",
    "--preset",
    "tiny",
    "--set",
    "steps=20",
    "--quiet",
];

fn ok(args: &[&str]) -> String {
    let (ok, stdout, stderr) = uld(args);
    assert!(ok, "uld {args:?} failed: {stderr}\n{stdout}");
    stdout
}

fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    ));
    let info = decoder.read_info().unwrap();
    (info.info().width, info.info().height)
}

#[test]
fn the_mining_benchmark_trains_three_runs_reports_the_gap_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let mut args = vec![
        "bench",
        "mining",
        "--out",
        out.to_str().unwrap(),
        "--data-preset",
        "tiny",
        "--bootstrap",
        "20",
    ];
    args.extend(TINY_RUN);
    let stdout = ok(&args);
    for row in [
        "| (a) supervised, partial labels |",
        "| (b) mining, partial labels |",
        "| (c) supervised, complete labels |",
        "| (b) mining, its student |",
        "share of the (c) - (a) gap that (b) closes",
        "keyslice mean sensitivity",
    ] {
        assert!(stdout.contains(row), "missing `{row}` in:\n{stdout}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("Machine:") && report.contains("Total wall time"));
    assert!(png_size(&out.join("froc_harvester.png")).0 > 0);
    let mining_config = std::fs::read_to_string(out.join("b_mining_partial/config.toml")).unwrap();
    assert!(
        mining_config.contains("mode = \"mining\""),
        "{mining_config}"
    );

    let again = ok(&args);
    assert!(again.contains("reusing the synthetic dataset"), "{again}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("trained earlier"), "{report}");

    // The runs train at once, on one thread each: the same benchmark from
    // scratch elsewhere gives the same numbers.
    let elsewhere = dir.path().join("bench_again");
    args[3] = elsewhere.to_str().unwrap();
    let results = |stdout: &str| -> Vec<String> {
        stdout
            .lines()
            .filter(|l| l.starts_with("| (") || l.starts_with("- "))
            .map(String::from)
            .collect()
    };
    let repeated = ok(&args);
    assert_eq!(results(&repeated), results(&stdout));
    assert_eq!(results(&stdout).len(), 7, "{stdout}");
}

#[test]
fn the_demo_writes_its_report_and_the_run_exports_its_mined_lesions() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let mut args = vec!["demo", "--out", out.to_str().unwrap()];
    args.extend(TINY_RUN);
    let stdout = ok(&args);
    assert!(stdout.contains("report: "), "{stdout}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for part in [
        "`harvester`",
        "`keyslice`",
        "## Mined lesions",
        "detections.png",
    ] {
        assert!(report.contains(part), "missing {part} in {report}");
    }
    let (w, h) = png_size(&out.join("detections.png"));
    assert!(w >= 320 && h >= 320, "{w}x{h}");
    assert!(out.join("eval_harvester/froc.png").exists());
    assert!(out.join("eval_keyslice/report.md").exists());

    let csv = dir.path().join("mined.csv");
    let stdout = ok(&[
        "mined",
        "--model",
        out.join("run").to_str().unwrap(),
        "--data",
        out.join("data").to_str().unwrap(),
        "--out",
        csv.to_str().unwrap(),
        "--tau-high",
        "0",
    ]);
    let count: usize = stdout.split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        count > 0,
        "every prediction is mined at --tau-high 0: {stdout}"
    );
    assert!(stdout.contains("unlabelled lesions"), "{stdout}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with("Train_Val_Test,Mined_score,Unlabelled_lesion")
    );
    let records = uld_data::deeplesion::read_dl_info(&csv).unwrap();
    assert_eq!(records.len(), count);
    assert!(
        records
            .iter()
            .all(|r| r.split == uld_data::deeplesion::Split::Train)
    );
}

#[test]
fn complete_labels_need_the_synthetic_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&["synth", "--preset", "tiny", "--out", data.to_str().unwrap()]);
    std::fs::remove_file(data.join("synth_manifest.json")).unwrap();
    let (ok, _, stderr) = uld(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        dir.path().join("run").to_str().unwrap(),
        "--preset",
        "tiny",
        "--labels",
        "complete",
        "--quiet",
    ]);
    assert!(!ok);
    assert!(
        stderr.contains("--labels complete needs") && stderr.contains("synth_manifest.json"),
        "{stderr}"
    );
}
