//! FROC and precision-recall plots, as SVG and PNG.
//!
//! Drawn with `plotters` (SVG backend and an in-memory RGB bitmap that the
//! `png` crate encodes). Text needs a TrueType font, loaded once at run
//! time from the first of [`FONT_PATHS`] (or `ULD_FONT`) that exists; no
//! font ships with uld. Without one the curves, axes and markers are still
//! drawn and [`PlotOutput::text`] says that the text was left out.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use uld_core::{Error, Result, write_atomically};

/// Where a font is looked for, in order (after `$ULD_FONT`).
pub const FONT_PATHS: [&str; 5] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Registers the first font found as plotters' `sans-serif`; the path used,
/// or `None` when there is none. Runs once per process.
pub fn load_font() -> Option<&'static Path> {
    static FONT: OnceLock<Option<PathBuf>> = OnceLock::new();
    FONT.get_or_init(|| {
        let env = std::env::var_os("ULD_FONT").map(PathBuf::from);
        let candidates = env.into_iter().chain(FONT_PATHS.iter().map(PathBuf::from));
        for path in candidates {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return Some(path);
            }
        }
        None
    })
    .as_deref()
}

/// One curve to draw.
pub struct Series<'a> {
    pub label: &'a str,
    pub points: Vec<(f64, f64)>,
    /// Marked points (operating points).
    pub marks: Vec<(f64, f64)>,
}

/// What a plot call wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotOutput {
    pub svg: PathBuf,
    pub png: PathBuf,
    /// Whether text (title, axis labels, legend) was drawn.
    pub text: bool,
}

struct Axes<'a> {
    title: &'a str,
    x_desc: &'a str,
    y_desc: &'a str,
    x: (f64, f64),
    log_x: bool,
}

const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];
const SIZE: (u32, u32) = (800, 560);

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    axes: &Axes<'_>,
    series: &[Series<'_>],
    text: bool,
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(16);
    if text {
        builder
            .caption(axes.title, ("sans-serif", 22))
            .x_label_area_size(44)
            .y_label_area_size(56);
    } else {
        builder.x_label_area_size(4).y_label_area_size(4);
    }
    let (x0, x1) = axes.x;
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            let mut mesh = chart.configure_mesh();
            if text {
                mesh.x_desc(axes.x_desc).y_desc(axes.y_desc);
            } else {
                mesh.x_labels(0).y_labels(0);
            }
            mesh.draw().map_err(e)?;
            for (i, s) in series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                let pts: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .map(|&(x, y)| (x.clamp(x0, x1), y))
                    .collect();
                let drawn = chart
                    .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                    .map_err(e)?;
                if text {
                    drawn.label(s.label).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                }
                chart
                    .draw_series(
                        s.marks
                            .iter()
                            .filter(|(x, y)| *x >= x0 && *x <= x1 && y.is_finite())
                            .map(|&(x, y)| Circle::new((x, y), 4, color.filled())),
                    )
                    .map_err(e)?;
            }
            if text {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::LowerRight)
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .label_font(("sans-serif", 15))
                    .draw()
                    .map_err(e)?;
            }
        }};
    }
    if axes.log_x {
        body!(
            builder
                .build_cartesian_2d((x0..x1).log_scale(), 0f64..1.0)
                .map_err(e)?
        );
    } else {
        body!(builder.build_cartesian_2d(x0..x1, 0f64..1.0).map_err(e)?);
    }
    root.present().map_err(e)?;
    Ok(())
}

fn render(stem: &Path, axes: &Axes<'_>, series: &[Series<'_>]) -> Result<PlotOutput> {
    let text = load_font().is_some();
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    let plot_err =
        |what: &Path, m: String| Error::invalid("plot", format!("{}: {m}", what.display()));
    let mut svg_text = String::new();
    draw(
        SVGBackend::with_string(&mut svg_text, SIZE).into_drawing_area(),
        axes,
        series,
        text,
    )
    .map_err(|m| plot_err(&svg, m))?;
    write_atomically(&svg, |w| w.write_all(svg_text.as_bytes()))?;
    let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    draw(
        BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area(),
        axes,
        series,
        text,
    )
    .map_err(|m| plot_err(&png, m))?;
    write_atomically(&png, |w| {
        let mut enc = png::Encoder::new(w, SIZE.0, SIZE.1);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(std::io::Error::other)?;
        writer
            .write_image_data(&rgb)
            .map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    })?;
    Ok(PlotOutput { svg, png, text })
}

/// The FROC plot (log-scale false positives per unit) at `stem`.svg/.png.
pub fn plot_froc(
    stem: &Path,
    unit: &str,
    fp_range: (f64, f64),
    series: &[Series<'_>],
) -> Result<PlotOutput> {
    let x_desc = format!("average false positives per {unit}");
    render(
        stem,
        &Axes {
            title: "FROC",
            x_desc: &x_desc,
            y_desc: "sensitivity",
            x: fp_range,
            log_x: true,
        },
        series,
    )
}

/// The precision-recall plot at `stem`.svg/.png.
pub fn plot_pr(stem: &Path, series: &[Series<'_>]) -> Result<PlotOutput> {
    render(
        stem,
        &Axes {
            title: "Precision-recall (duplicates as false positives)",
            x_desc: "recall",
            y_desc: "precision",
            x: (0.0, 1.0),
            log_x: false,
        },
        series,
    )
}
