//! Reports: markdown for people, JSON for programs, `froc.csv` for tables,
//! and the FROC and precision-recall plots.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use uld_core::{Error, Result, write_atomically};

use crate::bootstrap::{Comparison, Difference, Interval};
use crate::evaluate::Evaluation;
use crate::interp::Interpolation;
use crate::plot::{PlotOutput, Series, plot_froc, plot_pr};

fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v:.4}")
    }
}

fn ci(i: Option<&Interval>) -> String {
    i.map_or("-".into(), |i| format!("[{}, {}]", num(i.low), num(i.high)))
}

fn fp_label(v: f64) -> String {
    format!("{v}")
}

/// The markdown report of one evaluation (`title` names the detections).
pub fn markdown(eval: &Evaluation, title: &str) -> String {
    let mut s = String::new();
    let variant = eval
        .variant
        .map(|v| format!(" ({})", v.name()))
        .unwrap_or_default();
    let _ = writeln!(s, "# Evaluation: {title}\n");
    let _ = writeln!(s, "- protocol: `{}`{variant}", eval.protocol.name());
    let rule = match eval.protocol {
        crate::Protocol::KeySlice => "2D IoU",
        crate::Protocol::Harvester => "tracklet box on the lesion's slice with 2D IoU",
        crate::Protocol::Lens => "3D intersection over the detected box (IoBB)",
    };
    let _ = writeln!(
        s,
        "- hit: {rule} >= {} (inclusive `+1` pixel extents, as the reference code)",
        eval.hit_threshold
    );
    let _ = writeln!(s, "- ground truth: {}", eval.ground_truth);
    let _ = writeln!(
        s,
        "- {} {}s, {} lesions; {} detections ({} rows, {} ignored)",
        eval.units,
        eval.protocol.unit(),
        eval.lesions,
        eval.detections,
        eval.detection_rows,
        eval.ignored_rows
    );
    let _ = writeln!(s, "- headline interpolation: {}", eval.interpolation.name());
    if let Some(b) = &eval.bootstrap {
        let _ = writeln!(
            s,
            "- {:.0}% bootstrap intervals over {}s: {} replicates, seed {}",
            b.level * 100.0,
            eval.protocol.unit(),
            b.replicates,
            b.seed
        );
    }
    let m = &eval.metrics;
    let k = eval.summary_count.min(eval.fp_points.len());
    let range = format!(
        "{}-{}",
        fp_label(eval.fp_points[0]),
        fp_label(eval.fp_points[k.saturating_sub(1)])
    );
    let _ = writeln!(s, "\n## Summary\n");
    let _ = writeln!(
        s,
        "**Mean sensitivity at {range} FP per {}: {}** {} (clamped reading {} {})\n",
        eval.protocol.unit(),
        num(m.summary),
        ci(eval.intervals.as_ref().map(|i| &i.summary)),
        num(m.summary_clamped),
        ci(eval.intervals.as_ref().map(|i| &i.summary_clamped)),
    );
    let _ = writeln!(
        s,
        "**AP** (Pascal VOC all-point, duplicates as false positives): **{}** {}\n",
        num(m.ap),
        ci(eval.intervals.as_ref().map(|i| &i.ap))
    );
    let _ = writeln!(
        s,
        "## Sensitivity at average false positives per {}\n",
        eval.protocol.unit()
    );
    let _ = writeln!(
        s,
        "| FP per {} | sensitivity (headline) | interval | extrapolate (3DCE, Lesion-Harvester) | clamp (MULAN, LENS) |",
        eval.protocol.unit()
    );
    let _ = writeln!(s, "|---:|---:|---|---:|---:|");
    for (i, &q) in eval.fp_points.iter().enumerate() {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            fp_label(q),
            num(m.sens[i]),
            ci(eval.intervals.as_ref().map(|iv| &iv.sens[i])),
            num(eval.curve.sens_at(q, Interpolation::Extrapolate)),
            num(m.sens_clamped[i]),
        );
    }
    if let Some(t) = &eval.threshold {
        let _ = writeln!(s, "\n## At score threshold {}\n", t.threshold);
        let _ = writeln!(
            s,
            "{} detections kept: sensitivity {}, {} false positives per {}, precision {}",
            t.detections,
            num(t.sensitivity),
            num(t.fp_per_unit),
            eval.protocol.unit(),
            num(t.precision)
        );
    }
    if !eval.breakdowns.is_empty() {
        let _ = writeln!(s, "\n## Breakdowns (headline rule)\n");
        s.push_str(&breakdown_table(eval, None));
    }
    if !eval.notes.is_empty() {
        let _ = writeln!(s, "\n## Notes\n");
        for n in &eval.notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    s
}

/// The breakdown groups of `eval` (only those `by` this, if given) as a
/// markdown table: lesions, sensitivity at each FP rate, the headline mean
/// and AP, under the headline rule.
pub fn breakdown_table(eval: &Evaluation, by: Option<&str>) -> String {
    let mut s = String::new();
    let k = eval.summary_count.min(eval.fp_points.len()).max(1);
    let range = format!(
        "{}-{}",
        fp_label(eval.fp_points[0]),
        fp_label(eval.fp_points[k - 1])
    );
    let _ = write!(s, "| by | group | lesions |");
    for q in &eval.fp_points {
        let _ = write!(s, " @{} |", fp_label(*q));
    }
    let _ = writeln!(s, " mean {range} | AP |");
    let _ = write!(s, "|---|---|---:|");
    for _ in &eval.fp_points {
        let _ = write!(s, "---:|");
    }
    let _ = writeln!(s, "---:|---:|");
    for g in eval
        .breakdowns
        .iter()
        .filter(|g| by.is_none_or(|b| g.by == b))
    {
        let _ = write!(s, "| {} | {} | {} |", g.by, g.group, g.lesions);
        for v in &g.metrics.sens {
            let _ = write!(s, " {} |", num(*v));
        }
        let _ = writeln!(s, " {} | {} |", num(g.metrics.summary), num(g.metrics.ap));
    }
    s
}

fn diff_row(name: &str, d: &Difference) -> String {
    format!(
        "| {name} | {} | {} | {} | {} | {:.4} |",
        num(d.a),
        num(d.b),
        num(d.difference),
        ci(Some(&d.interval)),
        d.p_value
    )
}

/// The markdown of a paired comparison of `a` and `b`.
pub fn comparison_markdown(
    a: &Evaluation,
    b: &Evaluation,
    cmp: &Comparison,
    names: (&str, &str),
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Comparison: {} (A) vs {} (B)\n", names.0, names.1);
    let _ = writeln!(
        s,
        "Paired bootstrap over {}s: {} replicates, seed {}, {:.0}% intervals of B - A; \
         two-sided p-value `2 min(P(d <= 0), P(d >= 0))`.\n",
        a.protocol.unit(),
        cmp.replicates,
        cmp.seed,
        cmp.level * 100.0
    );
    let _ = writeln!(s, "| metric | A | B | B - A | interval | p |");
    let _ = writeln!(s, "|---|---:|---:|---:|---|---:|");
    let _ = writeln!(
        s,
        "{}",
        diff_row("mean sensitivity (headline)", &cmp.summary)
    );
    let _ = writeln!(
        s,
        "{}",
        diff_row("mean sensitivity (clamped)", &cmp.summary_clamped)
    );
    let _ = writeln!(s, "{}", diff_row("AP", &cmp.ap));
    for (q, d) in a.fp_points.iter().zip(&cmp.sens_clamped) {
        let _ = writeln!(
            s,
            "{}",
            diff_row(&format!("sensitivity @{} (clamped)", fp_label(*q)), d)
        );
    }
    let _ = writeln!(s, "\n---\n");
    s.push_str(&markdown(a, &format!("{} (A)", names.0)));
    let _ = writeln!(s, "\n---\n");
    s.push_str(&markdown(b, &format!("{} (B)", names.1)));
    s
}

/// `froc.csv`: one row per operating point.
pub fn froc_csv(eval: &Evaluation) -> String {
    let mut s = String::from("fp_per_unit,sensitivity,extrapolate,clamp,ci_low,ci_high\n");
    for (i, &q) in eval.fp_points.iter().enumerate() {
        let iv = eval.intervals.as_ref().map(|iv| iv.sens[i]);
        let _ = writeln!(
            s,
            "{q},{},{},{},{},{}",
            eval.metrics.sens[i],
            eval.curve.sens_at(q, Interpolation::Extrapolate),
            eval.metrics.sens_clamped[i],
            iv.map_or(String::new(), |i| i.low.to_string()),
            iv.map_or(String::new(), |i| i.high.to_string()),
        );
    }
    s
}

/// The files a report wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ReportFiles {
    pub files: Vec<PathBuf>,
    /// False when no font was found and the plots carry no text.
    pub plot_text: bool,
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomically(path, |w| w.write_all(text.as_bytes()))
}

fn series<'a>(eval: &Evaluation, label: &'a str) -> (Series<'a>, Series<'a>) {
    let marks: Vec<(f64, f64)> = eval
        .fp_points
        .iter()
        .zip(&eval.metrics.sens_clamped)
        .map(|(&x, &y)| (x, y))
        .collect();
    (
        Series {
            label,
            points: eval.curve.froc_corners(),
            marks,
        },
        Series {
            label,
            points: eval.curve.pr_points(),
            marks: vec![],
        },
    )
}

fn fp_range(eval: &Evaluation) -> (f64, f64) {
    let lo = eval.fp_points.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = eval.fp_points.iter().copied().fold(0.0, f64::max);
    (lo / 2.0, hi * 2.0)
}

/// The FROC plot of several evaluations of one protocol at `stem`.svg/.png,
/// one curve per `(evaluation, label)`.
pub fn plot_frocs(stem: &Path, evals: &[(&Evaluation, &str)]) -> Result<PlotOutput> {
    let Some((first, _)) = evals.first() else {
        return Err(Error::invalid("FROC plot", "no evaluation to plot"));
    };
    let curves: Vec<Series<'_>> = evals.iter().map(|(e, label)| series(e, label).0).collect();
    plot_froc(stem, first.protocol.unit(), fp_range(first), &curves)
}

/// Writes `report.md`, `report.json`, `froc.csv`, `froc.svg/.png` and
/// `pr.svg/.png` into `dir` (created if missing).
pub fn write_report(
    dir: &Path,
    eval: &Evaluation,
    title: &str,
    plots: bool,
) -> Result<ReportFiles> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    let md = dir.join("report.md");
    write_text(&md, &markdown(eval, title))?;
    files.push(md);
    let json = dir.join("report.json");
    write_text(&json, &report_json(eval)?)?;
    files.push(json);
    let csv = dir.join("froc.csv");
    write_text(&csv, &froc_csv(eval))?;
    files.push(csv);
    let mut plot_text = true;
    if plots {
        let (froc, pr) = series(eval, title);
        let f = plot_froc(
            &dir.join("froc"),
            eval.protocol.unit(),
            fp_range(eval),
            &[froc],
        )?;
        let p = plot_pr(&dir.join("pr"), &[pr])?;
        plot_text = f.text && p.text;
        files.extend([f.svg, f.png, p.svg, p.png]);
    }
    Ok(ReportFiles { files, plot_text })
}

/// The JSON of an evaluation: its conventions, then its fields.
#[derive(Serialize)]
struct ReportJson<'a> {
    conventions: &'static str,
    #[serde(flatten)]
    evaluation: &'a Evaluation,
}

/// The text of `report.json`: the conventions, then every field of `eval`,
/// non-finite numbers as strings ([`uld_core::json`]).
pub fn report_json(eval: &Evaluation) -> Result<String> {
    uld_core::json::to_string_pretty(&ReportJson {
        conventions: uld_core::json::NON_FINITE,
        evaluation: eval,
    })
    .map_err(|e| Error::invalid("report", e.to_string()))
}

/// The text of `comparison.json`.
pub fn comparison_json(a: &Evaluation, b: &Evaluation, cmp: &Comparison) -> Result<String> {
    uld_core::json::to_string_pretty(&ComparisonJson {
        conventions: uld_core::json::NON_FINITE,
        a,
        b,
        comparison: cmp,
    })
    .map_err(|e| Error::invalid("report", e.to_string()))
}

/// The JSON of a comparison.
#[derive(Serialize)]
struct ComparisonJson<'a> {
    conventions: &'static str,
    a: &'a Evaluation,
    b: &'a Evaluation,
    comparison: &'a Comparison,
}

/// Writes `comparison.md`, `comparison.json` and FROC/PR plots with both
/// curves into `dir`.
pub fn write_comparison(
    dir: &Path,
    a: &Evaluation,
    b: &Evaluation,
    cmp: &Comparison,
    names: (&str, &str),
    plots: bool,
) -> Result<ReportFiles> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    let md = dir.join("comparison.md");
    write_text(&md, &comparison_markdown(a, b, cmp, names))?;
    files.push(md);
    let json = dir.join("comparison.json");
    write_text(&json, &comparison_json(a, b, cmp)?)?;
    files.push(json);
    let mut plot_text = true;
    if plots {
        let (fa, pa) = series(a, names.0);
        let (fb, pb) = series(b, names.1);
        let f = plot_froc(&dir.join("froc"), a.protocol.unit(), fp_range(a), &[fa, fb])?;
        let p = plot_pr(&dir.join("pr"), &[pa, pb])?;
        plot_text = f.text && p.text;
        files.extend([f.svg, f.png, p.svg, p.png]);
    }
    Ok(ReportFiles { files, plot_text })
}
