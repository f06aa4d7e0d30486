//! Line charts of time series.
//!
//! One chart: white background, left and bottom axes with outward ticks and numbers, a
//! light grid at the labelled ticks (and at 2…9 × 10ᵏ on a log axis), axis titles with
//! units, an optional title, and the legend to the right of the axes (it never covers
//! data). Series `i` is drawn in [`super::OKABE_ITO`] colour `i % 8`, dashed from the 9th
//! on. A log axis (y, or x for doses) plots only positive values and labels decades
//! (`10⁻⁶`); a non-finite or (on a log axis) non-positive value breaks the line. Sparse
//! data may mark every point (an open diamond).
//!
//! Who draws what: `plotters` lays out the chart (label areas, the data → pixel mapping
//! of a [`TickAxis`]) and draws the axes, tick marks and grid. Text and data lines are
//! drawn afterwards by this crate: plotters 0.3.7's `ab_glyph` text ignores glyph side
//! bearings (uneven letter spacing, e.g. `tum our`) and its bitmap backend draws thick
//! lines without anti-aliasing (stair steps at 150 dpi), neither of which belongs in a
//! paper. Text uses the bundled DejaVu Sans through [`TextRenderer`] (kerning, sub-pixel
//! placement, anti-aliasing), lines [`super::raster::polyline`]. No system font is read:
//! plotters is built without its `ttf`/font-kit feature.

use std::sync::Once;

use image::RgbImage;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::canvas::{svg_colour, xml_escape};
use super::raster;
use super::text::{TextRenderer, FONT_BYTES};
use super::ticks::{format_log_tick, format_log_tick_plain, format_tick, log_ticks, nice_ticks};
use super::{pt_to_px, PlotError, Theme, DEFAULT_DPI, OKABE_ITO};

/// Font sizes in points.
const TITLE_PT: f64 = 9.0;
const LABEL_PT: f64 = 8.0;
const TICK_PT: f64 = 7.0;
const LEGEND_PT: f64 = 7.0;
/// Line widths and lengths in points.
const LINE_PT: f64 = 1.25;
const AXIS_PT: f64 = 0.6;
const TICK_LEN_PT: f64 = 3.0;
const LEGEND_SAMPLE_PT: f64 = 16.0;
/// Half the diagonal of a data-point marker.
const MARKER_PT: f64 = 2.5;
const PAD_PT: f64 = 4.0;

/// A plotters colour.
fn rgb_colour([r, g, b]: [u8; 3]) -> RGBColor {
    RGBColor(r, g, b)
}

/// A linear axis over [lo, hi] (plot coordinates: log10 of the value on a log axis) whose
/// ticks are given: `bold` labelled ticks with grid lines, `light` minor grid lines.
struct TickAxis {
    lo: f64,
    hi: f64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

impl Ranged for TickAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let frac = ((v - self.lo) / (self.hi - self.lo)).clamp(-10.0, 10.0);
        limit.0 + ((limit.1 - limit.0) as f64 * frac).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// One line of a chart: `points` are (x, y) in the units of the chart's axis labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend entry, e.g. a probe name (`tumour centre`).
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Labels, scale and size of one chart.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartSpec {
    /// Drawn above the axes; empty for none.
    pub title: String,
    /// x axis title with its unit, e.g. `time [s]`.
    pub x_label: String,
    /// y axis title with its unit, e.g. `O2 [mM]`.
    pub y_label: String,
    /// Logarithmic y axis (base 10), for quantities spanning decades such as OH·.
    pub log_y: bool,
    /// Logarithmic x axis (base 10), for doses spanning decades.
    pub log_x: bool,
    /// A marker (an open diamond) at every data point, for sparse data such as the runs
    /// of a sweep.
    pub markers: bool,
    /// Fixed linear y range (low, high), e.g. (0, 1) for a fraction, so that a small change
    /// is not stretched over the whole axis; `None`: the data's range with a margin.
    pub y_range: Option<(f64, f64)>,
    /// Draw every second series (the 2nd, 4th, …) dashed, so that a series lying exactly on
    /// the one before it (e.g. a tissue's alive fraction and its mean viab, both 1) still
    /// shows: the earlier line shows through the gaps of the dashes.
    pub alternate_dashes: bool,
    /// Size of the whole chart (axes, labels and legend), pixels.
    pub width_px: u32,
    pub height_px: u32,
    /// Resolution, dots per inch: fonts and lines are sized in points for it.
    pub dpi: u32,
    /// Background, text, axes and grid colours (light by default).
    pub theme: Theme,
}

impl ChartSpec {
    /// A chart of 3.5 × 2.4 inches (a single journal column) at [`DEFAULT_DPI`].
    pub fn new(title: &str, x_label: &str, y_label: &str) -> ChartSpec {
        ChartSpec {
            title: title.to_string(),
            x_label: x_label.to_string(),
            y_label: y_label.to_string(),
            log_y: false,
            log_x: false,
            markers: false,
            y_range: None,
            alternate_dashes: false,
            width_px: (3.5 * DEFAULT_DPI as f64) as u32,
            height_px: (2.4 * DEFAULT_DPI as f64) as u32,
            dpi: DEFAULT_DPI,
            theme: Theme::LIGHT,
        }
    }

    /// The same chart in `theme`.
    pub fn with_theme(mut self, theme: Theme) -> ChartSpec {
        self.theme = theme;
        self
    }

    /// The same chart at `width_in × height_in` inches and `dpi` dots per inch.
    pub fn with_size_in(mut self, width_in: f64, height_in: f64, dpi: u32) -> ChartSpec {
        self.width_px = (width_in * dpi as f64).round().max(1.0) as u32;
        self.height_px = (height_in * dpi as f64).round().max(1.0) as u32;
        self.dpi = dpi.max(1);
        self
    }

    /// The same chart with its linear y axis fixed to `low..high` (see [`ChartSpec::y_range`]).
    pub fn with_y_range(mut self, low: f64, high: f64) -> ChartSpec {
        self.y_range = Some((low, high));
        self
    }

    /// The same chart with every second series dashed (see [`ChartSpec::alternate_dashes`]).
    pub fn with_alternate_dashes(mut self) -> ChartSpec {
        self.alternate_dashes = true;
        self
    }

    /// The same chart with a logarithmic (`true`) or linear y axis.
    pub fn with_log_y(mut self, log_y: bool) -> ChartSpec {
        self.log_y = log_y;
        self
    }

    /// The same chart with a logarithmic (`true`) or linear x axis.
    pub fn with_log_x(mut self, log_x: bool) -> ChartSpec {
        self.log_x = log_x;
        self
    }

    /// The same chart with a marker at every data point (see [`ChartSpec::markers`]).
    pub fn with_markers(mut self) -> ChartSpec {
        self.markers = true;
        self
    }
}

/// One panel of a [`chart_page`].
#[derive(Clone, Debug, PartialEq)]
pub struct ChartPanel {
    pub spec: ChartSpec,
    pub series: Vec<Series>,
}

/// plotters measures (empty) tick-label strings with a font even though it draws no text
/// here; it gets the bundled one under its default family name, never a system font.
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled font parses (text.rs tests); if it did not, plotters would report
        // FontUnavailable, surfacing as a PlotError::Draw.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT_BYTES);
    });
}

fn draw_err(e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

fn px(pt: f64, dpi: u32) -> f64 {
    pt_to_px(pt, dpi)
}

fn px_u(pt: f64, dpi: u32) -> u32 {
    px(pt, dpi).round().max(1.0) as u32
}

/// Style of series `i`: (colour, dashed); with `alternate_dashes`, odd `i` are dashed too.
fn series_style(i: usize, alternate_dashes: bool) -> ([u8; 3], bool) {
    (
        OKABE_ITO[i % OKABE_ITO.len()],
        i >= OKABE_ITO.len() || (alternate_dashes && i % 2 == 1),
    )
}

/// Data range of one axis in plot coordinates (log10 of the value for a log axis).
fn axis_range(values: impl Iterator<Item = f64>, log: bool, pad_frac: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        let v = if log {
            if v > 0.0 {
                v.log10()
            } else {
                continue;
            }
        } else {
            v
        };
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if lo > hi {
        return if log { (-1.0, 1.0) } else { (0.0, 1.0) };
    }
    if hi - lo <= 1e-12 * hi.abs().max(lo.abs()).max(1e-300) {
        let half = if log {
            0.5
        } else if lo == 0.0 {
            1.0
        } else {
            0.1 * lo.abs()
        };
        return (lo - half, hi + half);
    }
    let pad = pad_frac * (hi - lo);
    let lo_p = if !log && lo >= 0.0 && (lo - pad < 0.0 || lo <= 0.1 * hi) {
        0.0 // a non-negative quantity near 0: the axis starts at 0
    } else {
        lo - pad
    };
    (lo_p, hi + pad)
}

/// Width of the widest string at `pt` points, pixels.
fn max_width(text: &TextRenderer, labels: &[String], pt: f64, dpi: u32) -> f64 {
    labels
        .iter()
        .map(|l| text.width(l, px(pt, dpi) as f32) as f64)
        .fold(0.0, f64::max)
}

/// A line of text: top-left corner, or the centre when `vertical` (rotated 90° CCW).
struct Label {
    text: String,
    px: f32,
    at: (f64, f64),
    vertical: bool,
}

/// A data line or legend sample, in image pixels, clipped to `clip` (x0, y0, x1, y1).
struct Line {
    pts: Vec<(f64, f64)>,
    width: f64,
    rgb: [u8; 3],
    dashed: bool,
    clip: (f64, f64, f64, f64),
}

/// What is drawn over plotters' axes once its backend has released the pixels.
#[derive(Default)]
struct Overlay {
    lines: Vec<Line>,
    labels: Vec<Label>,
    /// Colour of the text (the theme's ink).
    ink: [u8; 3],
}

impl Overlay {
    fn apply(&self, img: &mut RgbImage, text: &TextRenderer, dpi: u32) {
        let (on, off) = (px(3.5, dpi), px(2.0, dpi));
        for l in &self.lines {
            if l.dashed {
                for dash in raster::dashes(&l.pts, on, off) {
                    raster::polyline(img, &dash, l.width, l.rgb, l.clip);
                }
            } else {
                raster::polyline(img, &l.pts, l.width, l.rgb, l.clip);
            }
        }
        for l in &self.labels {
            if l.vertical {
                raster::text_vertical(img, text, &l.text, l.px, l.at, self.ink);
            } else {
                text.draw(img, l.at.0 as f32, l.at.1 as f32, l.px, &l.text, self.ink);
            }
        }
    }

    /// The overlay as SVG elements (after plotters' axes): the lines as polylines, clipped
    /// to their plotting areas, then the text in DejaVu Sans.
    fn svg(&self, text: &TextRenderer, dpi: u32) -> String {
        let (on, off) = (px(3.5, dpi), px(2.0, dpi));
        let mut clips: Vec<(f64, f64, f64, f64)> = Vec::new();
        let mut body = String::new();
        for l in &self.lines {
            // Legend samples are "clipped" to the whole page (f64::MAX): no clip path.
            let clip = if l.clip.2 < 1e9 && l.clip.3 < 1e9 {
                let k = clips.iter().position(|c| *c == l.clip).unwrap_or_else(|| {
                    clips.push(l.clip);
                    clips.len() - 1
                });
                format!(r#" clip-path="url(#ionfield-clip-{k})""#)
            } else {
                String::new()
            };
            let dash = if l.dashed {
                format!(r#" stroke-dasharray="{on:.2} {off:.2}""#)
            } else {
                String::new()
            };
            let points: Vec<String> = l
                .pts
                .iter()
                .map(|(x, y)| format!("{x:.2},{y:.2}"))
                .collect();
            body.push_str(&format!(
                r#"<polyline fill="none" stroke="{}" stroke-width="{:.2}" stroke-linecap="round" stroke-linejoin="round"{dash}{clip} points="{}"/>"#,
                svg_colour(l.rgb),
                l.width,
                points.join(" ")
            ));
            body.push('\n');
        }
        for l in &self.labels {
            let (x, y) = l.at;
            let attrs = if l.vertical {
                format!(
                    r#"x="{x:.2}" y="{y:.2}" text-anchor="middle" dominant-baseline="central" transform="rotate(-90 {x:.2} {y:.2})""#
                )
            } else {
                // `at` is the top-left of the line box; SVG places the baseline.
                let baseline = y + text.ascent(l.px) as f64;
                format!(r#"x="{x:.2}" y="{baseline:.2}""#)
            };
            body.push_str(&format!(
                r#"<text {attrs} font-family="DejaVu Sans" font-size="{:.2}" fill="{}">{}</text>"#,
                text.em_px(l.px),
                svg_colour(self.ink),
                xml_escape(&l.text)
            ));
            body.push('\n');
        }
        let defs: String = clips
            .iter()
            .enumerate()
            .map(|(k, (x0, y0, x1, y1))| {
                format!(
                    r#"<clipPath id="ionfield-clip-{k}"><rect x="{x0:.2}" y="{y0:.2}" width="{:.2}" height="{:.2}"/></clipPath>"#,
                    x1 - x0,
                    y1 - y0
                )
            })
            .collect();
        format!("<defs>{defs}</defs>\n{body}")
    }

    /// `s` with its left edge at `x` (or right edge, `right_align`) and its line box
    /// centred on `cy`.
    fn text_mid(
        &mut self,
        text: &TextRenderer,
        s: &str,
        px: f32,
        x: f64,
        cy: f64,
        right_align: bool,
    ) {
        let w = text.width(s, px) as f64;
        let h = text.line_height(px) as f64;
        let left = if right_align { x - w } else { x };
        self.labels.push(Label {
            text: s.to_string(),
            px,
            at: (left, cy - h / 2.0),
            vertical: false,
        });
    }
}

/// Legend box width for these labels, pixels.
fn legend_width(text: &TextRenderer, labels: &[String], dpi: u32) -> u32 {
    if labels.is_empty() {
        return 0;
    }
    let w = px(PAD_PT, dpi)
        + px(LEGEND_SAMPLE_PT, dpi)
        + px(PAD_PT, dpi)
        + max_width(text, labels, LEGEND_PT, dpi)
        + px(PAD_PT, dpi);
    w.ceil() as u32
}

/// Adds the legend (line sample + label per series) with its top-left at (x, y), image
/// pixels.
fn legend(
    overlay: &mut Overlay,
    text: &TextRenderer,
    labels: &[String],
    (x, y): (f64, f64),
    alternate_dashes: bool,
    dpi: u32,
    theme: Theme,
) {
    let lpx = px(LEGEND_PT, dpi) as f32;
    let row_h = text.line_height(lpx) as f64 * 1.35;
    let sample = px(LEGEND_SAMPLE_PT, dpi);
    let x0 = x + px(PAD_PT, dpi);
    for (i, label) in labels.iter().enumerate() {
        let yc = y + row_h * (i as f64 + 0.5);
        let (rgb, dashed) = series_style(i, alternate_dashes);
        let rgb = theme.data_colour(rgb);
        overlay.lines.push(Line {
            pts: vec![(x0, yc), (x0 + sample, yc)],
            width: px(LINE_PT, dpi),
            rgb,
            dashed,
            clip: (0.0, 0.0, f64::MAX, f64::MAX),
        });
        overlay.text_mid(text, label, lpx, x0 + sample + px(PAD_PT, dpi), yc, false);
    }
}

/// Lays out one chart in `area` (plotters draws axes, ticks and grid) and adds its lines
/// and text to `overlay`; with `with_legend`, the legend takes a column at the right.
/// Returns the top of the plotting area, image pixels.
fn draw_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    spec: &ChartSpec,
    series: &[Series],
    with_legend: bool,
    overlay: &mut Overlay,
) -> Result<f64, PlotError> {
    let dpi = spec.dpi.max(1);
    let text = TextRenderer::new();
    let (w, h) = area.dim_in_pixel();
    let (ax, ay) = area.get_base_pixel();
    let labels: Vec<String> = series.iter().map(|s| s.label.clone()).collect();
    // A lone series named as the y axis needs no legend.
    let lone = series.len() == 1 && series[0].label == spec.y_label;
    let legend_w = if with_legend && !lone {
        legend_width(&text, &labels, dpi).min(w * 2 / 5)
    } else {
        0
    };
    let (chart_area, _) = area.split_horizontally(w - legend_w);

    // Ranges in plot coordinates (log10 for a log axis).
    let (x0, x1) = axis_range(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.0)),
        spec.log_x,
        if spec.log_x { 0.05 } else { 0.0 },
    );
    let (y0, y1) = match spec.y_range {
        Some((lo, hi)) if !spec.log_y && hi > lo => (lo, hi),
        _ => axis_range(
            series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
            spec.log_y,
            0.05,
        ),
    };
    let plot_w_in = (w - legend_w) as f64 / dpi as f64;
    let plot_h_in = h as f64 / dpi as f64;
    // (labelled ticks, minor ticks, step): decades on a log axis, else about `target`.
    let ticks = |lo: f64, hi: f64, log: bool, target: f64| {
        if log {
            let (major, minor) = log_ticks(lo, hi);
            (major, minor, 0.0)
        } else {
            let (t, s) = nice_ticks(lo, hi, target.round() as usize);
            (t, Vec::new(), s)
        }
    };
    let (x_ticks, x_minor, x_step) = ticks(x0, x1, spec.log_x, (plot_w_in / 0.6).clamp(3.0, 8.0));
    let (y_ticks, y_minor, y_step) = ticks(y0, y1, spec.log_y, (plot_h_in / 0.4).clamp(3.0, 7.0));
    let y_fmt = |v: f64| {
        if spec.log_y {
            format_log_tick(v)
        } else {
            format_tick(v, y_step)
        }
    };
    let y_labels: Vec<String> = y_ticks.iter().map(|&v| y_fmt(v)).collect();
    let x_labels: Vec<String> = x_ticks
        .iter()
        .map(|&v| {
            if spec.log_x {
                format_log_tick_plain(v)
            } else {
                format_tick(v, x_step)
            }
        })
        .collect();

    // Label areas sized from the text they hold.
    let (tick_px, label_px, title_px) = (
        px(TICK_PT, dpi) as f32,
        px(LABEL_PT, dpi) as f32,
        px(TITLE_PT, dpi) as f32,
    );
    let tick_len = px(TICK_LEN_PT, dpi).round();
    let pad = px(PAD_PT, dpi);
    let label_h = text.line_height(label_px) as f64;
    let tick_h = text.line_height(tick_px) as f64;
    let title_h = text.line_height(title_px) as f64;
    let y_tick_w = max_width(&text, &y_labels, TICK_PT, dpi);
    let y_area = tick_len + pad * 0.5 + y_tick_w + pad * 0.75 + label_h;
    let x_area = tick_len + pad * 0.5 + tick_h + pad * 0.5 + label_h;
    let half_last_x = x_labels
        .last()
        .map(|l| text.width(l, tick_px) as f64 / 2.0)
        .unwrap_or(0.0);
    let top = if spec.title.is_empty() {
        tick_h * 0.6 + pad * 0.5
    } else {
        title_h + pad
    };

    let mut chart = ChartBuilder::on(&chart_area)
        .margin_top(top as u32)
        .margin_right((half_last_x + pad) as u32)
        .margin_left((pad * 0.5) as u32)
        .margin_bottom((pad * 0.5) as u32)
        .x_label_area_size(x_area.ceil() as u32)
        .y_label_area_size(y_area.ceil() as u32)
        .build_cartesian_2d(
            TickAxis {
                lo: x0,
                hi: x1,
                bold: x_ticks.clone(),
                light: x_minor,
            },
            TickAxis {
                lo: y0,
                hi: y1,
                bold: y_ticks.clone(),
                light: y_minor,
            },
        )
        .map_err(draw_err)?;
    let no_label = |_: &f64| String::new();
    chart
        .configure_mesh()
        .x_label_formatter(&no_label)
        .y_label_formatter(&no_label)
        .bold_line_style(rgb_colour(spec.theme.grid).stroke_width(1))
        .light_line_style(rgb_colour(spec.theme.minor_grid).stroke_width(1))
        .axis_style(rgb_colour(spec.theme.ink).stroke_width(px_u(AXIS_PT, dpi)))
        .set_all_tick_mark_size(tick_len as u32)
        .draw()
        .map_err(draw_err)?;

    let (pxr, pyr) = chart.plotting_area().get_pixel_range();
    let (left, right) = (pxr.start as f64, pxr.end as f64);
    let (ptop, bottom) = (pyr.start as f64, pyr.end as f64);
    let map = |x: f64, y: f64| {
        let (bx, by) = chart.backend_coord(&(x, y));
        (bx as f64 + 0.5, by as f64 + 0.5)
    };

    // Data lines: runs of drawable points; anything else breaks the line.
    let clip = (left, ptop, right, bottom);
    for (i, s) in series.iter().enumerate() {
        let (rgb, dashed) = series_style(i, spec.alternate_dashes);
        let rgb = spec.theme.data_colour(rgb);
        let mut run: Vec<(f64, f64)> = Vec::new();
        let mut flush = |run: &mut Vec<(f64, f64)>| {
            if !run.is_empty() {
                overlay.lines.push(Line {
                    pts: std::mem::take(run),
                    width: px(LINE_PT, dpi),
                    rgb,
                    dashed,
                    clip,
                });
            }
        };
        let to_plot = |v: f64, log: bool| match log {
            true if v > 0.0 => v.log10(),
            true => f64::NAN,
            false => v,
        };
        let mut marks = Vec::new();
        for &(x, y) in &s.points {
            let (x, y) = (to_plot(x, spec.log_x), to_plot(y, spec.log_y));
            if x.is_finite() && y.is_finite() {
                run.push(map(x, y));
                marks.push(map(x, y));
            } else {
                flush(&mut run);
            }
        }
        flush(&mut run);
        if spec.markers {
            let r = px(MARKER_PT, dpi);
            for (cx, cy) in marks {
                overlay.lines.push(Line {
                    pts: vec![
                        (cx, cy - r),
                        (cx + r, cy),
                        (cx, cy + r),
                        (cx - r, cy),
                        (cx, cy - r),
                    ],
                    width: px(LINE_PT, dpi),
                    rgb,
                    dashed: false,
                    clip,
                });
            }
        }
    }

    // Tick numbers, axis titles, title.
    let area_right = (ax + (w - legend_w) as i32) as f64;
    for (v, l) in x_ticks.iter().zip(&x_labels) {
        let cx = map(*v, y0).0;
        let lw = text.width(l, tick_px) as f64;
        let lx = (cx - lw / 2.0).min(area_right - lw - 1.0);
        overlay.labels.push(Label {
            text: l.clone(),
            px: tick_px,
            at: (lx, bottom + tick_len + pad * 0.5),
            vertical: false,
        });
    }
    for (v, l) in y_ticks.iter().zip(&y_labels) {
        let cy = map(x0, *v).1;
        overlay.text_mid(&text, l, tick_px, left - tick_len - pad * 0.5, cy, true);
    }
    let xw = text.width(&spec.x_label, label_px) as f64;
    overlay.labels.push(Label {
        text: spec.x_label.clone(),
        px: label_px,
        at: (
            (left + right) / 2.0 - xw / 2.0,
            bottom + tick_len + pad + tick_h,
        ),
        vertical: false,
    });
    overlay.labels.push(Label {
        text: spec.y_label.clone(),
        px: label_px,
        at: (
            left - tick_len - pad * 0.5 - y_tick_w - pad * 0.75 - label_h / 2.0,
            (ptop + bottom) / 2.0,
        ),
        vertical: true,
    });
    if !spec.title.is_empty() {
        let tw = text.width(&spec.title, title_px) as f64;
        overlay.labels.push(Label {
            text: spec.title.clone(),
            px: title_px,
            at: (
                ((left + right) / 2.0 - tw / 2.0).max(ax as f64),
                ay as f64 + pad * 0.5,
            ),
            vertical: false,
        });
    }
    if legend_w > 0 {
        legend(
            overlay,
            &text,
            &labels,
            (area_right, ptop),
            spec.alternate_dashes,
            dpi,
            spec.theme,
        );
    }
    Ok(ptop)
}

/// What a chart or a page of charts draws, on any plotters backend (a bitmap for PNG, an
/// SVG document for SVG and PDF), at `size` pixels and `dpi`.
trait Plot {
    fn size(&self) -> (u32, u32);
    fn dpi(&self) -> u32;
    fn theme(&self) -> Theme;
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        overlay: &mut Overlay,
    ) -> Result<(), PlotError>;
}

/// One line chart ([`line_chart`]).
struct OneChart<'a> {
    spec: &'a ChartSpec,
    series: &'a [Series],
}

impl Plot for OneChart<'_> {
    fn size(&self) -> (u32, u32) {
        (self.spec.width_px.max(16), self.spec.height_px.max(16))
    }
    fn dpi(&self) -> u32 {
        self.spec.dpi.max(1)
    }
    fn theme(&self) -> Theme {
        self.spec.theme
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        overlay: &mut Overlay,
    ) -> Result<(), PlotError> {
        let with_legend = !self.series.is_empty();
        draw_chart(root, self.spec, self.series, with_legend, overlay).map(|_| ())
    }
}

/// A page of charts ([`chart_page`]).
struct Page<'a> {
    panels: &'a [ChartPanel],
    columns: usize,
    rows: usize,
    cell: (u32, u32),
    dpi: u32,
    /// The series labels shared by every panel (one legend for the page), if they are.
    shared: Option<Vec<String>>,
    legend_w: u32,
}

impl<'a> Page<'a> {
    fn new(panels: &'a [ChartPanel], columns: usize) -> Page<'a> {
        let columns = columns.clamp(1, panels.len().max(1));
        let rows = panels.len().div_ceil(columns).max(1);
        let largest = |f: fn(&ChartSpec) -> u32, default: u32| {
            panels
                .iter()
                .map(|p| f(&p.spec))
                .max()
                .unwrap_or(default)
                .max(16)
        };
        let cell = (largest(|s| s.width_px, 400), largest(|s| s.height_px, 300));
        let dpi = panels.first().map_or(DEFAULT_DPI, |p| p.spec.dpi.max(1));
        let labels_of =
            |p: &ChartPanel| p.series.iter().map(|s| s.label.clone()).collect::<Vec<_>>();
        let shared = panels
            .first()
            .map(labels_of)
            .filter(|first| !first.is_empty() && panels.iter().all(|p| labels_of(p) == *first));
        let legend_w = shared
            .as_ref()
            .map_or(0, |l| legend_width(&TextRenderer::new(), l, dpi));
        Page {
            panels,
            columns,
            rows,
            cell,
            dpi,
            shared,
            legend_w,
        }
    }
}

impl Plot for Page<'_> {
    fn size(&self) -> (u32, u32) {
        (
            self.cell.0 * self.columns as u32 + self.legend_w,
            self.cell.1 * self.rows as u32,
        )
    }
    fn dpi(&self) -> u32 {
        self.dpi
    }
    fn theme(&self) -> Theme {
        self.panels.first().map_or(Theme::LIGHT, |p| p.spec.theme)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        overlay: &mut Overlay,
    ) -> Result<(), PlotError> {
        let (grid_area, _) = root.split_horizontally(self.cell.0 * self.columns as u32);
        let cells = grid_area.split_evenly((self.rows, self.columns));
        let mut first_top = None;
        for (panel, cell) in self.panels.iter().zip(&cells) {
            let spec = ChartSpec {
                dpi: self.dpi,
                theme: self.theme(),
                ..panel.spec.clone()
            };
            let top = draw_chart(cell, &spec, &panel.series, self.shared.is_none(), overlay)?;
            first_top.get_or_insert(top);
        }
        if let Some(labels) = &self.shared {
            let x = (self.cell.0 * self.columns as u32) as f64;
            let dashes = self.panels.first().is_some_and(|p| p.spec.alternate_dashes);
            legend(
                overlay,
                &TextRenderer::new(),
                labels,
                (x, first_top.unwrap_or(0.0)),
                dashes,
                self.dpi,
                self.theme(),
            );
        }
        Ok(())
    }
}

/// Fills `root` with the theme's background and lets plotters draw `plot` on it; returns
/// what is drawn over it afterwards.
fn draw_on<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    plot: &impl Plot,
) -> Result<Overlay, PlotError> {
    register_font();
    let mut overlay = Overlay {
        ink: plot.theme().ink,
        ..Overlay::default()
    };
    root.fill(&rgb_colour(plot.theme().background))
        .map_err(draw_err)?;
    plot.draw(&root, &mut overlay)?;
    root.present().map_err(draw_err)?;
    Ok(overlay)
}

/// Draws `plot` into a bitmap with plotters, then the overlay on top.
fn render(plot: &impl Plot) -> Result<RgbImage, PlotError> {
    let (w, h) = plot.size();
    let mut buf = vec![255u8; (w as usize) * (h as usize) * 3];
    let overlay = draw_on(
        BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area(),
        plot,
    )?;
    let mut img = RgbImage::from_raw(w, h, buf).expect("buffer is w × h × 3");
    overlay.apply(&mut img, &TextRenderer::new(), plot.dpi());
    Ok(img)
}

/// Draws `plot` as an SVG document: plotters' axes and grid, then the overlay's lines
/// (polylines, dashed where dashed, clipped to the plotting area) and text (`<text>` in
/// DejaVu Sans at the positions the bitmap uses). Its size is given in inches (pixels /
/// dpi), so it prints at the size of the PNG.
fn render_svg(plot: &impl Plot) -> Result<String, PlotError> {
    let (w, h) = plot.size();
    let mut svg = String::new();
    let overlay = draw_on(
        SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area(),
        plot,
    )?;
    let dpi = plot.dpi() as f64;
    let size = format!(r#"width="{w}" height="{h}""#);
    if !svg.contains(&size) {
        return Err(PlotError::Draw(format!(
            "plotters' SVG root has no {size} to give a physical size"
        )));
    }
    let physical = format!(
        r#"width="{:.4}in" height="{:.4}in""#,
        w as f64 / dpi,
        h as f64 / dpi
    );
    let svg = svg.replacen(&size, &physical, 1);
    let end = svg
        .rfind("</svg>")
        .ok_or_else(|| PlotError::Draw("plotters' SVG has no closing tag".into()))?;
    let overlay_svg = overlay.svg(&TextRenderer::new(), plot.dpi());
    Ok(format!("{}{overlay_svg}{}", &svg[..end], &svg[end..]))
}

/// A chart in the three formats a run writes: PNG (pixels at the chart's dpi, `pHYs` set),
/// SVG and PDF (vector, the same layout and physical size; the PDF embeds the bundled
/// font).
pub struct ChartFiles {
    pub png: Vec<u8>,
    pub svg: String,
    pub pdf: Vec<u8>,
}

fn files(plot: &impl Plot) -> Result<ChartFiles, PlotError> {
    let png = super::encode_png(&render(plot)?, plot.dpi())?;
    let svg = render_svg(plot)?;
    let pdf = svg_to_pdf(&svg)?;
    Ok(ChartFiles { png, svg, pdf })
}

/// PDF of an SVG document drawn here (text in the bundled DejaVu Sans, embedded as a
/// subset), one page at the SVG's physical size.
pub fn svg_to_pdf(svg: &str) -> Result<Vec<u8>, PlotError> {
    use svg2pdf::usvg;
    let mut options = usvg::Options {
        font_family: "DejaVu Sans".to_string(),
        ..usvg::Options::default()
    };
    options.fontdb_mut().load_font_data(FONT_BYTES.to_vec());
    let tree = usvg::Tree::from_str(svg, &options)
        .map_err(|e| PlotError::Encode(format!("SVG for the PDF: {e}")))?;
    // The SVG's size is in inches, which usvg reads at the CSS 96 user units per inch.
    let page = svg2pdf::PageOptions { dpi: 96.0 };
    let mut pdf = svg2pdf::to_pdf(&tree, svg2pdf::ConversionOptions::default(), page)
        .map_err(|e| PlotError::Encode(format!("PDF: {e}")))?;
    sort_resource_entries(&mut pdf);
    Ok(pdf)
}

/// svg2pdf writes the entries of a resource dictionary (`/XObject << /xo3 10 0 R … >>`)
/// in hash-map order, which changes from call to call: the figure series' PDF, with one
/// image per panel, differed between two identical runs. Sorts the entry lines of every
/// such dictionary outside the streams, so the same SVG gives the same bytes (a resumed
/// run's files equal an uninterrupted run's). The lines are only permuted within their
/// dictionary, so no object moves and the cross-reference table stays valid.
fn sort_resource_entries(pdf: &mut [u8]) {
    let is_entry = |line: &[u8]| {
        let t = line.trim_ascii();
        let words: Vec<&[u8]> = t.split(|&b| b == b' ').collect();
        words.len() == 4
            && words[0].first() == Some(&b'/')
            && words[1].iter().all(u8::is_ascii_digit)
            && words[2] == b"0"
            && words[3] == b"R"
    };
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let mut i = 0;
    while i < pdf.len() {
        // A stream's data follows the keyword right after its dictionary.
        if pdf[i..].starts_with(b"stream\n") && i >= 3 && &pdf[i - 3..i] == b">>\n" {
            match find(pdf, b"\nendstream", i) {
                Some(end) => i = end + 10,
                None => return,
            }
            continue;
        }
        if pdf[i..].starts_with(b" <<\n") {
            let start = i + 4;
            let mut j = start;
            let mut lines: Vec<Vec<u8>> = Vec::new();
            let mut closed = false;
            while let Some(end) = find(pdf, b"\n", j) {
                let line = &pdf[j..end];
                if line.trim_ascii() == b">>" {
                    closed = true;
                    break;
                }
                if !is_entry(line) {
                    break;
                }
                lines.push(line.to_vec());
                j = end + 1;
            }
            if closed && lines.len() > 1 {
                lines.sort();
                let joined = lines.join(&b'\n');
                pdf[start..start + joined.len()].copy_from_slice(&joined);
            }
        }
        i += 1;
    }
}

/// Renders a line chart of `series` at `spec`'s size; see the module doc for the style.
pub fn line_chart(spec: &ChartSpec, series: &[Series]) -> Result<RgbImage, PlotError> {
    render(&OneChart { spec, series })
}

/// [`line_chart`] as PNG bytes with the chart's dpi in the `pHYs` chunk.
pub fn line_chart_png(spec: &ChartSpec, series: &[Series]) -> Result<Vec<u8>, PlotError> {
    super::encode_png(&line_chart(spec, series)?, spec.dpi)
}

/// [`line_chart`] as PNG, SVG and PDF.
pub fn line_chart_files(spec: &ChartSpec, series: &[Series]) -> Result<ChartFiles, PlotError> {
    files(&OneChart { spec, series })
}

/// Several charts on one page, `columns` per row, filled row by row. Each cell has the
/// size of the largest panel spec; the page's dpi is the first panel's. When every panel
/// has the same series labels in the same order (e.g. one panel per field, one line per
/// probe), one shared legend is drawn at the right of the page instead of one per panel,
/// so a probe keeps its colour across panels.
pub fn chart_page(panels: &[ChartPanel], columns: usize) -> Result<RgbImage, PlotError> {
    render(&Page::new(panels, columns))
}

/// [`chart_page`] as PNG, SVG and PDF.
pub fn chart_page_files(panels: &[ChartPanel], columns: usize) -> Result<ChartFiles, PlotError> {
    files(&Page::new(panels, columns))
}
