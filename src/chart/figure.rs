//! The figure series: a grid of 2D slices, one row per field and one column per time,
//! with one colour bar per row (the same range for every time of the row, so times
//! compare), column headers `t = 600 s`, row labels `O2 [mM]`, a scale bar in µm and a
//! caption giving the slice. Laid out once and drawn on a [`Canvas`]: pixels with the
//! bundled font for the PNG, vectors and embedded panel images for the SVG (and the PDF
//! converted from it). It is image compositing, where `plotters` would add nothing but a
//! second text layout.
//!
//! Voxels are upscaled by a whole number of pixels (nearest neighbour, no blur), chosen so
//! a panel's long side is at most (and close to) [`FigureStyle::panel_in`] × dpi. Slices
//! keep the orientation of `output::slice` (origin voxel at the bottom-left).

use image::{Rgb, RgbImage};
use serde::{Deserialize, Serialize};

use super::canvas::{Canvas, RasterCanvas, SvgCanvas};
use super::colormap;
use super::pt_to_px;
use super::scale::ColourBar;
use super::text::TextRenderer;
use super::ticks::{coarse_step, format_tick};
use super::Slice;
use crate::config::{Colormap, ColourScale};

/// The scale bar's colour (on its own dark box, whatever the theme).
const WHITE: [u8; 3] = [255, 255, 255];

/// Font sizes, points.
const LABEL_PT: f64 = 8.0;
const TICK_PT: f64 = 7.0;
const CAPTION_PT: f64 = 6.5;
/// Spacing, points.
const MARGIN_PT: f64 = 6.0;
const COL_GAP_PT: f64 = 3.0;
const ROW_GAP_PT: f64 = 6.0;
const BAR_GAP_PT: f64 = 5.0;
const BAR_W_PT: f64 = 7.0;
const TICK_LEN_PT: f64 = 2.5;
const TICK_GAP_PT: f64 = 1.5;
/// At most this many intervals between colour-bar ticks.
const BAR_TICKS: usize = 3;

/// Colour range (lo, hi) of a row and its labelled ticks (value, label).
type RowBar = (ColourBar, Vec<(f64, String)>);

/// One field of the figure: its slices at the figure times.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FigureRow {
    /// Output field name (`O2`, `pH`, `T2w`).
    pub field: String,
    /// Unit of the values (`mM`, `pH`, `1/s`, `a.u.`); set when the first slice is kept.
    pub unit: String,
    /// Fixed colour range (lo, hi) in `unit`; `None` = min and max over the row's slices.
    pub range: Option<(f64, f64)>,
    /// One slice per figure time, `None` until it is written: `width × height` values in
    /// `unit`, row-major, top row first.
    pub panels: Vec<Option<Vec<f32>>>,
    /// Whether the field describes tissue cells (`viab`): pixels of
    /// [`FigureSeries::no_tissue`] are then drawn in [`NO_TISSUE_RGB`], not as values.
    #[serde(default)]
    pub cells_only: bool,
}

/// Colour of pixels without tissue cells (vessel lumens, held boundary layers) in rows of
/// cell fields: white, outside every colour map, and not the NaN colour.
pub const NO_TISSUE_RGB: [u8; 3] = [255, 255, 255];

/// Colours of the dashes of tissue boundary lines: black and white, seen on any colour
/// map and on blank pixels.
pub const TISSUE_LINE_RGB: [[u8; 3]; 2] = [[0, 0, 0], [255, 255, 255]];

/// The slices collected for `plots/figure_series.png` during a run (serialisable, so a
/// checkpoint can carry them).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FigureSeries {
    /// Column times, s, increasing.
    pub times_s: Vec<f64>,
    /// Slice size, voxels (image columns × rows).
    pub width: usize,
    pub height: usize,
    pub rows: Vec<FigureRow>,
    /// Pixels of the slice (`width × height`, as the panels) that hold no tissue cells,
    /// if any: see [`FigureRow::cells_only`].
    #[serde(default)]
    pub no_tissue: Option<Vec<bool>>,
    /// Tissue id of each pixel of the slice (`width × height`), outlined on every panel
    /// where it changes (the tumour's edge), if set.
    #[serde(default)]
    pub tissue: Option<Vec<u8>>,
    /// Whether the figure has been written.
    pub written: bool,
}

/// How the figure is drawn (not part of the collected data).
#[derive(Clone, Debug, PartialEq)]
pub struct FigureStyle {
    pub colormap: Colormap,
    /// Resolution, dots per inch (also recorded in the PNG).
    pub dpi: u32,
    /// Target long side of one panel, inches.
    pub panel_in: f64,
    /// Edge of a voxel, µm (for the scale bar).
    pub voxel_um: f64,
    /// Text under the figure, one line per `\n`, e.g. `slice z = 32 (325 µm); x →, y ↑`.
    pub caption: String,
    /// Linear or log colour bars ([`FigureSeries::row_bar`]).
    pub colour_scale: ColourScale,
    /// Background, text and frames.
    pub theme: super::Theme,
}

impl FigureStyle {
    /// Panels of 1.5 inches at `dpi`, colour scales chosen per row (`"auto"`).
    pub fn new(colormap: Colormap, dpi: u32, voxel_um: f64, caption: &str) -> FigureStyle {
        FigureStyle {
            colormap,
            dpi,
            panel_in: 1.5,
            voxel_um,
            caption: caption.to_string(),
            colour_scale: ColourScale::Auto,
            theme: super::Theme::LIGHT,
        }
    }
}

/// Whether two times (s) name the same output time.
fn same_time(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

impl FigureSeries {
    /// An empty figure of `fields` (rows) at `times_s` (columns) for slices of
    /// `width × height` voxels.
    pub fn new(fields: &[String], times_s: &[f64], width: usize, height: usize) -> FigureSeries {
        FigureSeries {
            times_s: times_s.to_vec(),
            width,
            height,
            rows: fields
                .iter()
                .map(|f| FigureRow {
                    field: f.clone(),
                    unit: String::new(),
                    range: None,
                    panels: vec![None; times_s.len()],
                    cells_only: false,
                })
                .collect(),
            no_tissue: None,
            tissue: None,
            written: false,
        }
    }

    /// Marks the pixels without tissue cells (`width × height`, true = none) and the rows
    /// of `cells_fields`, which draw them in [`NO_TISSUE_RGB`]. A slice where every pixel
    /// holds cells keeps no mask.
    pub fn mark_no_tissue(&mut self, no_tissue: Vec<bool>, cells_fields: &[&str]) {
        if no_tissue.len() != self.width * self.height || !no_tissue.iter().any(|&b| b) {
            return;
        }
        for row in &mut self.rows {
            row.cells_only = cells_fields.contains(&row.field.as_str());
        }
        self.no_tissue = Some(no_tissue);
    }

    /// Outlines the tissues of `tissue` (tissue id per pixel, `width × height`) on every
    /// panel; a slice without a boundary keeps none.
    pub fn outline_tissues(&mut self, tissue: Vec<u8>) {
        if tissue.len() == self.width * self.height
            && super::raster::has_boundary(&tissue, self.width, self.height)
        {
            self.tissue = Some(tissue);
        }
    }

    /// Names of the rows that draw pixels without tissue cells in [`NO_TISSUE_RGB`].
    pub fn rows_masked(&self) -> Vec<&str> {
        match self.no_tissue {
            Some(_) => self
                .rows
                .iter()
                .filter(|r| r.cells_only)
                .map(|r| r.field.as_str())
                .collect(),
            None => Vec::new(),
        }
    }

    /// Column of `time_s`, if it is a figure time.
    pub fn column(&self, time_s: f64) -> Option<usize> {
        self.times_s.iter().position(|&t| same_time(t, time_s))
    }

    /// Whether `field` is a row of the figure.
    pub fn has_field(&self, field: &str) -> bool {
        self.rows.iter().any(|r| r.field == field)
    }

    /// Keeps `slice` as the panel of (`field`, `time_s`) if both are in the figure;
    /// `range` is the field's fixed colour range (`None` = auto over the row). Returns
    /// whether it was kept.
    pub fn keep(
        &mut self,
        field: &str,
        unit: &str,
        range: Option<(f64, f64)>,
        time_s: f64,
        slice: &Slice,
    ) -> bool {
        let Some(col) = self.column(time_s) else {
            return false;
        };
        if (slice.width, slice.height) != (self.width, self.height) {
            return false;
        }
        let Some(row) = self.rows.iter_mut().find(|r| r.field == field) else {
            return false;
        };
        row.unit = unit.to_string();
        row.range = range;
        row.panels[col] = Some(slice.values.clone());
        true
    }

    /// Whether the last column is reached: `time_s` is at or after the last figure time.
    pub fn is_due(&self, time_s: f64) -> bool {
        self.times_s
            .last()
            .is_some_and(|&t| time_s >= t || same_time(t, time_s))
    }

    /// Colour bar of row `r` under `scale`: the fixed range, else min and max of the
    /// finite values of its slices; on a linear bar widened to the enclosing colour-bar
    /// ticks (so both ends are labelled; at most one tick spacing wider), on a log bar
    /// ([`ColourBar::choose`]) to a decade at the bottom.
    pub fn row_bar(&self, r: usize, scale: ColourScale) -> ColourBar {
        let row = &self.rows[r];
        let values = || row.panels.iter().flatten().flatten().copied();
        let min_pos = super::min_positive(values());
        let data = super::finite_min_max(values());
        let (lo, hi) = match row.range {
            Some((lo, hi)) => {
                let (data_lo, data_hi) = data.unwrap_or((lo, hi));
                return ColourBar::fixed(scale, lo, hi).with_data(data_lo, data_hi);
            }
            None => data.unwrap_or((0.0, 1.0)),
        };
        let bar = ColourBar::choose(scale, lo, hi, min_pos);
        if bar.log || hi <= lo {
            return bar;
        }
        let step = coarse_step(hi - lo, BAR_TICKS);
        let snap = |v: f64, up: bool| {
            let k = v / step;
            let k = if up {
                (k - 1e-9).ceil()
            } else {
                (k + 1e-9).floor()
            };
            k * step
        };
        ColourBar::linear(snap(lo, false), snap(hi, true))
    }

    /// The unit row `r` is labelled in and the factor from its values to it: a
    /// concentration in the SI prefix its colour bar's top reads best in
    /// ([`super::readable_unit`]: OH· in fM, O2 in µM), any other unit as it is.
    pub fn row_unit(&self, r: usize, scale: ColourScale) -> (f64, String) {
        let bar = self.row_bar(r, scale);
        super::readable_unit(&self.rows[r].unit, bar.lo.abs().max(bar.hi.abs()))
    }

    /// Axis title of row `r`: `O2 [µM]`, or just `pH` when the unit is the name.
    pub fn row_label(&self, r: usize, scale: ColourScale) -> String {
        let row = &self.rows[r];
        if row.unit.is_empty() || row.unit == row.field {
            row.field.clone()
        } else {
            format!("{} [{}]", row.field, self.row_unit(r, scale).1)
        }
    }
}

/// `t = 45 s`, `t = 10 min`, `t = 24 h`: the model time in the unit that reads best for
/// the last column `last_s` ([`crate::config::duration::human_in`]), the same in every
/// column (`t = 0 h` beside `t = 8 h`; a day-long run's columns are not 86400 s).
fn time_label(t_s: f64, last_s: f64) -> String {
    format!("t = {}", crate::config::duration::human_in(t_s, last_s))
}

/// `line` broken at spaces into lines at most `max_px` wide at `px` (a word longer than
/// that stays on its own line).
fn wrap(text: &TextRenderer, line: &str, px: f32, max_px: f64) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in line.split(' ') {
        let candidate = if current.is_empty() {
            word.to_string()
        } else {
            format!("{current} {word}")
        };
        if !current.is_empty() && text.width(&candidate, px) as f64 > max_px {
            lines.push(std::mem::replace(&mut current, word.to_string()));
        } else {
            current = candidate;
        }
    }
    lines.push(current);
    lines
}

/// Longest scale bar of 1, 2 or 5 × 10ᵏ µm not longer than `max_um`.
fn scale_bar_um(max_um: f64) -> f64 {
    if max_um <= 0.0 || !max_um.is_finite() {
        return 0.0;
    }
    let mag = 10f64.powf(max_um.log10().floor());
    [5.0, 2.0, 1.0]
        .iter()
        .map(|m| m * mag)
        .find(|&l| l <= max_um * (1.0 + 1e-9))
        .unwrap_or(mag)
}

/// Pixels per voxel, a whole number ≥ 1: the largest that keeps the panel's long side
/// within `panel_in × dpi`, unless that makes it smaller than 80 % of it (then the nearest).
pub(crate) fn voxel_scale(width: usize, height: usize, panel_in: f64, dpi: u32) -> usize {
    let target = panel_in * dpi as f64;
    let long = width.max(height).max(1) as f64;
    let floor = (target / long).floor();
    let s = if floor >= 1.0 && floor * long >= 0.8 * target {
        floor
    } else {
        (target / long).round()
    };
    (s as usize).max(1)
}

/// Renders the figure; see the module doc. A row without a slice at some time (or with
/// one of the wrong size) shows a grey `no data` panel there. Voxels are never shrunk: a
/// slice wider than `panel_in × dpi` pixels gets 1 pixel per voxel.
pub fn figure_series(fig: &FigureSeries, style: &FigureStyle) -> RgbImage {
    let text = TextRenderer::new();
    draw(fig, style, &text, |w, h, background| RasterCanvas {
        img: RgbImage::from_pixel(w, h, Rgb(background)),
        text: &text,
    })
    .img
}

/// [`figure_series`] as an SVG document of the same layout and physical size: text,
/// frames, ticks and outlines as vectors, each panel and colour bar an embedded PNG of
/// one pixel per voxel, drawn without smoothing.
pub fn figure_series_svg(fig: &FigureSeries, style: &FigureStyle) -> String {
    let text = TextRenderer::new();
    draw(fig, style, &text, |w, h, background| {
        SvgCanvas::new(w, h, style.dpi.max(1), background, &text)
    })
    .finish()
}

/// Lays the figure out and draws it on the canvas `make` gives for the page's size in
/// pixels and its background colour.
fn draw<C: Canvas>(
    fig: &FigureSeries,
    style: &FigureStyle,
    text: &TextRenderer,
    make: impl FnOnce(u32, u32, [u8; 3]) -> C,
) -> C {
    let dpi = style.dpi.max(1);
    let p = |pt: f64| pt_to_px(pt, dpi);
    let (label_px, tick_px, cap_px) = (p(LABEL_PT) as f32, p(TICK_PT) as f32, p(CAPTION_PT) as f32);
    let label_h = text.line_height(label_px) as f64;
    let tick_h = text.line_height(tick_px) as f64;
    let cap_h = text.line_height(cap_px) as f64;
    let (n_rows, n_cols) = (fig.rows.len(), fig.times_s.len());

    let s = voxel_scale(fig.width, fig.height, style.panel_in, dpi);
    let (pw, ph) = ((fig.width * s) as f64, (fig.height * s) as f64);
    let (margin, col_gap, row_gap) = (p(MARGIN_PT), p(COL_GAP_PT).round(), p(ROW_GAP_PT).round());
    let (bar_gap, bar_w, tick_len, tick_gap) = (
        p(BAR_GAP_PT),
        p(BAR_W_PT).round(),
        p(TICK_LEN_PT),
        p(TICK_GAP_PT),
    );

    // Colour-bar ticks per row, and the widest tick label of all rows.
    // Tick labels in the row's readable unit (µM … fM for small concentrations).
    let bars: Vec<RowBar> = (0..n_rows)
        .map(|r| {
            let bar = fig.row_bar(r, style.colour_scale);
            (bar, bar.ticks(&fig.rows[r].unit, BAR_TICKS, false))
        })
        .collect();
    let tick_label_w = bars
        .iter()
        .flat_map(|(_, t)| t.iter().map(|(_, l)| text.width(l, tick_px) as f64))
        .fold(0.0, f64::max);

    let header_h = label_h + p(3.0);
    let row_label_w = label_h + p(4.0);
    let left = (margin + row_label_w).round();
    let top = (margin + header_h).round();
    let col_x = |c: usize| left + c as f64 * (pw + col_gap);
    let row_y = |r: usize| top + r as f64 * (ph + row_gap);
    let grid_right = col_x(n_cols.max(1)) - col_gap;
    let bar_x = (grid_right + bar_gap).round();
    let content_w = bar_x + bar_w + tick_len + tick_gap + tick_label_w + margin;
    let caption_y = row_y(n_rows.max(1)) - row_gap + p(5.0);
    // The caption wraps to the width of the panels and bars (never narrower than 3 in).
    let wrap_w = (content_w - 2.0 * margin).max(3.0 * dpi as f64);
    let caption_lines: Vec<String> = style
        .caption
        .lines()
        .flat_map(|l| wrap(text, l, cap_px, wrap_w))
        .collect();
    let caption_w = 2.0 * margin
        + caption_lines
            .iter()
            .map(|l| text.width(l, cap_px))
            .fold(0.0f32, f32::max) as f64;
    let width = content_w.max(caption_w).ceil() as u32;
    let height = (caption_y + cap_h * caption_lines.len().max(1) as f64 + margin).ceil() as u32;
    let theme = style.theme;
    let (ink, frame_rgb) = (theme.ink, theme.frame);
    let mut canvas = make(width, height, theme.background);

    // Column headers.
    let last_s = fig.times_s.iter().fold(0.0f64, |m, t| m.max(t.abs()));
    for (c, &t) in fig.times_s.iter().enumerate() {
        let label = time_label(t, last_s);
        let x = col_x(c) + (pw - text.width(&label, label_px) as f64) / 2.0;
        canvas.text(x as f32, margin as f32, label_px, &label, ink);
    }

    let frame_px = (p(0.5).round() as i64).max(1);
    for (r, row) in fig.rows.iter().enumerate() {
        let y0 = row_y(r);
        canvas.text_vertical(
            &fig.row_label(r, style.colour_scale),
            label_px,
            (margin + row_label_w / 2.0 - p(1.0), y0 + ph / 2.0),
            ink,
        );
        let (bar, ticks) = &bars[r];
        let blank = fig.no_tissue.as_deref().filter(|_| row.cells_only);
        for (c, panel) in row.panels.iter().enumerate() {
            let x0 = col_x(c);
            match panel.as_ref().filter(|v| v.len() == fig.width * fig.height) {
                Some(values) => {
                    let colours: Vec<[u8; 3]> = values
                        .iter()
                        .enumerate()
                        .map(|(ix, &v)| {
                            if blank.is_some_and(|b| b[ix]) {
                                NO_TISSUE_RGB
                            } else {
                                bar.colour(style.colormap, v as f64)
                            }
                        })
                        .collect();
                    canvas.cells(
                        x0 as i64,
                        y0 as i64,
                        (s as i64, s as i64),
                        (fig.width, fig.height),
                        &colours,
                    );
                }
                None => {
                    canvas.fill(x0 as i64, y0 as i64, pw as i64, ph as i64, theme.missing);
                    let msg = "no data";
                    let tx = x0 + (pw - text.width(msg, tick_px) as f64) / 2.0;
                    let ty = y0 + (ph - tick_h) / 2.0;
                    canvas.text(tx as f32, ty as f32, tick_px, msg, frame_rgb);
                }
            }
            if let (Some(t), true) = (&fig.tissue, panel.is_some()) {
                let line = frame_px.max(s as i64 / 8);
                canvas.outlines(
                    (x0 as i64, y0 as i64),
                    s as i64,
                    (fig.width, fig.height),
                    t,
                    line,
                    TISSUE_LINE_RGB,
                    3 * line.max(2),
                );
            }
            canvas.frame(
                x0 as i64, y0 as i64, pw as i64, ph as i64, frame_px, frame_rgb,
            );
        }

        // Colour bar: hi at the top, lo at the bottom, the height of the panels.
        let bh = ph as i64;
        let bar_colours: Vec<[u8; 3]> = (0..bh)
            .map(|y| colormap::rgb(style.colormap, 1.0 - (y as f64 + 0.5) / bh as f64))
            .collect();
        canvas.cells(
            bar_x as i64,
            y0 as i64,
            (bar_w as i64, 1),
            (1, bh.max(0) as usize),
            &bar_colours,
        );
        canvas.frame(
            bar_x as i64,
            y0 as i64,
            bar_w as i64,
            bh,
            frame_px,
            frame_rgb,
        );
        for (frac, label) in ticks {
            let ty = y0 + ((1.0 - frac) * (ph - 1.0)).round();
            canvas.fill(
                (bar_x + bar_w) as i64,
                ty as i64,
                tick_len.round() as i64,
                frame_px,
                ink,
            );
            let label_top =
                (ty - tick_h / 2.0).clamp(y0 - row_gap / 2.0, y0 + ph + row_gap / 2.0 - tick_h);
            canvas.text(
                (bar_x + bar_w + tick_len + tick_gap) as f32,
                label_top as f32,
                tick_px,
                label,
                ink,
            );
        }
    }

    // Scale bar in the bottom-left panel.
    if n_rows > 0 && n_cols > 0 && style.voxel_um > 0.0 {
        let panel_um = fig.width as f64 * style.voxel_um;
        let bar_um = scale_bar_um(0.3 * panel_um);
        let len = (bar_um / style.voxel_um * s as f64).round();
        if bar_um > 0.0 && len >= 4.0 {
            // White bar and label on a translucent dark box: readable on any colour map.
            let label = format!("{} µm", format_tick(bar_um, bar_um));
            let lw = text.width(&label, tick_px) as f64;
            let pad = p(2.0).round();
            let bar_h = p(1.5).round().max(2.0);
            let box_w = len.max(lw) + 2.0 * pad;
            let box_h = tick_h + p(1.0) + bar_h + 2.0 * pad;
            let bx = col_x(0) + p(3.0).round();
            let by = row_y(n_rows - 1) + ph - p(3.0).round() - box_h;
            canvas.shade(bx as i64, by as i64, box_w as i64, box_h as i64, 0.55);
            let bar_x = bx + (box_w - len) / 2.0;
            let bar_y = by + box_h - pad - bar_h;
            canvas.fill(bar_x as i64, bar_y as i64, len as i64, bar_h as i64, WHITE);
            let lx = bx + (box_w - lw) / 2.0;
            canvas.text(lx as f32, (by + pad) as f32, tick_px, &label, WHITE);
        }
    }

    for (i, line) in caption_lines.iter().enumerate() {
        canvas.text(
            margin as f32,
            (caption_y + i as f64 * cap_h) as f32,
            cap_px,
            line,
            ink,
        );
    }
    canvas
}
