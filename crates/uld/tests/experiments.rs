//! `uld demo`, `uld bench mining` and `uld mined` as a user runs them, on
//! tiny settings so that each takes seconds.

mod common;

use common::{synth_tiny, uld};
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
    // Where the time went: every run validates at least at its last step.
    assert!(
        report.contains("8 of the 8 runs logged where their time went"),
        "{report}"
    );
    assert!(report.contains("min validating ("), "{report}");
    assert!(
        report.contains("Scoring every run on the test split: "),
        "{report}"
    );
    assert!(png_size(&out.join("froc_harvester.png")).0 > 0);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["seeds"], 2);
    assert!(
        json["run_time"]["time"]["validations"].as_u64().unwrap() >= 8,
        "{json}"
    );
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
        assert!(
            mining_config.contains("\nthreads = 1\n"),
            "runs trained at once take one thread each: {mining_config}"
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
        "### By lesion size (`keyslice`, long diameter)",
        "| size | < 10 mm |",
        "detections.png",
    ] {
        assert!(report.contains(part), "missing {part} in {report}");
    }
    let (w, h) = png_size(&out.join("detections.png"));
    assert!(w >= 320 && h >= 320, "{w}x{h}");
    assert!(out.join("eval_harvester/froc.png").exists());
    assert!(out.join("eval_keyslice/report.md").exists());

    // The run's folder tells its validation curve and what its teacher mined.
    let info = ok(&["info", out.join("run").to_str().unwrap()]);
    assert!(
        info.contains(": mining, 20 steps, logged to step 20"),
        "{info}"
    );
    assert!(
        info.contains("| step | harvester.mean_sens | harvester.ap | keyslice.mean_sens |"),
        "{info}"
    );
    assert!(
        info.contains("(best) |") && info.contains("lesions learned"),
        "{info}"
    );

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
    assert!(
        stdout.contains("by size (the extent's longer side): < 10 mm: ")
            && stdout.contains(", 10-30 mm: ")
            && stdout.contains(", >= 30 mm: "),
        "the recall by lesion size: {stdout}"
    );
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

    // Review: `uld review` serves the mined rows (its page and API answer
    // with the printed token) ...
    let reviewed = dir.path().join("reviewed.csv");
    let data = out.join("data");
    let review = served_review(&[
        "review",
        "--mined",
        csv.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        reviewed.to_str().unwrap(),
    ]);
    assert_eq!(review_total(&review), count, "{review}");
    // `uld review --model` mines the same lesions itself.
    let mined_by_review = served_review(&[
        "review",
        "--model",
        out.join("run").to_str().unwrap(),
        "--tau-high",
        "0",
        "--data",
        data.to_str().unwrap(),
        "--out",
        dir.path().join("reviewed_from_model.csv").to_str().unwrap(),
    ]);
    assert_eq!(review_total(&mined_by_review), count, "{mined_by_review}");
    // ... a reviewer accepts some and rejects others (here through the
    // library the page's requests call) ...
    let candidates = uld_review::read_mined(&csv).unwrap();
    let mut decisions = uld_review::Review::open(&reviewed, &candidates).unwrap();
    for c in candidates.iter().take(10) {
        let verdict = if c.id % 2 == 0 {
            uld_review::Verdict::Accepted
        } else {
            uld_review::Verdict::Rejected
        };
        let d = uld_review::Decision::now(verdict, c.record.bbox, c.record.lesion_type, "test");
        decisions
            .decide(&candidates, c.id, 0, Some(d))
            .unwrap()
            .unwrap();
    }
    let decided = candidates.len().min(10);
    let (accepted, rejected) = (decided.div_ceil(2), decided / 2);
    // ... and training learns from the decisions.
    let retrained = dir.path().join("retrained");
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        retrained.to_str().unwrap(),
        "--mode",
        "mining",
        "--extra-labels",
        reviewed.to_str().unwrap(),
    ];
    args.extend(&TINY_RUN[2..]);
    let stdout = ok(&args);
    assert!(
        stdout.contains(&format!(
            "reviewed labels: {accepted} accepted lesions, {rejected} rejected as known negatives"
        )),
        "{stdout}"
    );
}

/// The number of candidates a review API body says it serves.
fn review_total(body: &str) -> usize {
    let review: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    review["total"].as_u64().expect("a total") as usize
}

/// Starts `uld ARGS` (a review server), asks its API for the review with
/// the token it printed, stops it, and returns the answer's body.
fn served_review(args: &[&str]) -> String {
    use std::io::{BufRead, Read, Write};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_uld"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines
        .by_ref()
        .map(Result::unwrap)
        .find_map(|l| l.trim().strip_prefix("http://").map(str::to_string))
        .expect("uld review prints the address to open");
    let (host, query) = url.split_once("/?").unwrap();
    assert!(
        host.starts_with("127.0.0.1:"),
        "binds to this machine only: {host}"
    );
    let get = |path: &str| {
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let refused = get("/api/review");
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    let answer = get(&format!("/api/review?{query}"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (_, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    body.to_string()
}

#[test]
fn complete_labels_need_the_synthetic_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synth_tiny(&data);
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
