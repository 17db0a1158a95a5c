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
fn the_mining_benchmark_trains_every_arm_per_seed_compares_them_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let mut args = vec![
        "bench",
        "mining",
        "--out",
        out.to_str().unwrap(),
        "--data-preset",
        "tiny",
        "--extra-test-patients",
        "1",
        "--seeds",
        "2",
        "--bootstrap",
        "20",
    ];
    args.extend(TINY_RUN);
    let stdout = ok(&args);
    for row in [
        "| (a) supervised, partial labels | 20 |",
        "| (b) mining, partial labels | 20 |",
        "| (c) supervised, complete labels | 20 |",
        "| (d) multi-stage: (a) mines, a fresh model retrains | 40 |",
        "| (b) mining, its student |",
        "- (b) - (a) harvester sensitivity: mean",
        "- (b) - (d) harvester ap: mean",
        "share of the (c) - (a) gap that (b) closes",
        "Mined by (a)'s final weights for (d), offline",
    ] {
        assert!(stdout.contains(row), "missing `{row}` in:\n{stdout}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("Machine:") && report.contains("Total wall time"));
    assert!(png_size(&out.join("froc_harvester.png")).0 > 0);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["seeds"], 2);
    let arms = json["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 4);
    for arm in arms {
        assert_eq!(arm["per_seed"].as_array().unwrap().len(), 2, "{arm}");
        assert!(
            arm["mean"]["harvester_sensitivity"]["value"].is_f64(),
            "{arm}"
        );
    }
    let b_minus_a = json["comparisons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "(b) - (a)" && c["metric"] == "harvester_sensitivity")
        .unwrap();
    let per_seed: Vec<f64> = b_minus_a["per_seed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["difference"].as_f64().unwrap())
        .collect();
    assert_eq!(per_seed.len(), 2);
    let mean = b_minus_a["mean"].as_f64().unwrap();
    assert!((mean - (per_seed[0] + per_seed[1]) / 2.0).abs() < 1e-12);
    assert_eq!(
        b_minus_a["holds_on_every_seed"],
        mean > 0.0 && per_seed.iter().all(|d| *d > 0.0)
    );
    for seed in 0..2 {
        let run = out.join(format!("seed_{seed}"));
        let mining_config =
            std::fs::read_to_string(run.join("b_mining_partial/config.toml")).unwrap();
        assert!(
            mining_config.contains("mode = \"mining\""),
            "{mining_config}"
        );
        assert!(
            mining_config.contains(&format!("\nseed = {seed}\n")),
            "seed {seed} trains with its own seed: {mining_config}"
        );
        let mined = uld_data::deeplesion::read_dl_info(run.join("d_multistage/mined.csv")).unwrap();
        assert!(
            mined
                .iter()
                .all(|r| r.split == uld_data::deeplesion::Split::Train)
        );
    }

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
    assert_eq!(results(&stdout).len(), 5 + 9 + 2, "{stdout}");
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
