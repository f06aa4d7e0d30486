//! The chart library: publication plots and the pieces they are drawn with (the bundled
//! font [`text`], colour maps [`colormap`], rasters, ticks). Writers of run folders
//! (`output`) and sweeps (`sweep`) draw with it; it writes no files itself.
//!
//! Publication plots: time-series line charts ([`line_chart`], [`chart_page`]) and the
//! multi-panel field figure ([`figure_series`], `plots/figure_series.png` of a run).
//!
//! Physical size: every plot has a resolution in dots per inch; pixels = inches × dpi,
//! font sizes and line widths are given in points (1 pt = 1/72 in) and converted with
//! [`pt_to_px`], so a plot rendered at 300 dpi is the same figure as at 150 dpi with twice
//! the pixels. [`encode_png`] writes the dpi into the PNG `pHYs` chunk (pixels per metre),
//! so word processors and LaTeX place the figure at its intended size.
//!
//! Text uses the bundled DejaVu Sans (no system fonts): the line charts draw with
//! `plotters` (axes, ticks, grid) through its `ab_glyph` font backend, the figure series
//! with the same font through [`text::TextRenderer`].
//!
//! Colours of lines follow the Okabe–Ito palette ([`OKABE_ITO`]), which stays distinct
//! for the common forms of colour blindness.

mod canvas;
pub mod colormap;
mod figure;
mod line;
mod raster;
mod scale;
pub mod text;
mod ticks;

pub use figure::{
    figure_series, figure_series_svg, FigureRow, FigureSeries, FigureStyle, NO_TISSUE_RGB,
    TISSUE_LINE_RGB,
};
pub use line::{
    chart_page, chart_page_files, line_chart, line_chart_files, line_chart_png, svg_to_pdf,
    ChartFiles, ChartPanel, ChartSpec, Series,
};
pub use raster::{has_boundary, outlines};
pub use scale::{min_positive, ColourBar, AUTO_LOG_DECADES, MAX_LOG_DECADES};
pub use ticks::{
    coarse_step, coarse_ticks, format_log_tick, format_tick, log_ticks, nice_step, nice_ticks,
};

use std::io::Cursor;

use image::RgbImage;

/// A 2D image of voxel values, row-major, row 0 at the top.
#[derive(Clone, Debug, PartialEq)]
pub struct Slice {
    pub width: usize,
    pub height: usize,
    /// `width * height` values (mM), index `col + width * row`.
    pub values: Vec<f32>,
}

impl Slice {
    pub fn get(&self, col: usize, row: usize) -> f32 {
        self.values[col + self.width * row]
    }
}

/// (min, max) of the finite values, `None` when there is none.
pub fn finite_min_max(values: impl IntoIterator<Item = f32>) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.into_iter().filter(|v| v.is_finite()) {
        lo = lo.min(v as f64);
        hi = hi.max(v as f64);
    }
    (lo <= hi).then_some((lo, hi))
}

/// (lo, hi) with hi > lo: a constant field (or a reversed fixed range) is widened so
/// nothing divides by zero.
pub fn nonempty_range(lo: f64, hi: f64) -> (f64, f64) {
    if hi > lo {
        (lo, hi)
    } else {
        (lo, lo + 1e-12 * lo.abs().max(1.0))
    }
}

/// The unit in which values given in `unit` read best on an axis or colour bar: for a
/// concentration in mM, the SI prefix that puts the largest magnitude `max_abs` in
/// [1, 1000) (`0.054` mM → 54 µM, `1.4e-12` mM → 1.4 fM), never above mM; for a time in s,
/// the unit of [`crate::config::duration::unit_for`] (min from 120 s, h from 2 h, d from
/// 2 d); any other unit as it is. Returns (factor, unit): value in the new unit = value ×
/// factor.
pub fn readable_unit(unit: &str, max_abs: f64) -> (f64, String) {
    const PREFIXES: [(f64, &str); 5] = [
        (1.0, "mM"),
        (1e3, "µM"),
        (1e6, "nM"),
        (1e9, "pM"),
        (1e12, "fM"),
    ];
    if !(max_abs.is_finite() && max_abs > 0.0) {
        return (1.0, unit.to_string());
    }
    if unit == "s" {
        let (seconds, name) = crate::config::duration::unit_for(max_abs);
        return (1.0 / seconds, name.to_string());
    }
    if unit != "mM" {
        return (1.0, unit.to_string());
    }
    let (factor, name) = PREFIXES
        .iter()
        .find(|(f, _)| max_abs * f * (1.0 + 1e-9) >= 1.0)
        .unwrap_or(&PREFIXES[PREFIXES.len() - 1]);
    (*factor, (*name).to_string())
}

/// The colours around the data of a picture (background, text and axes, frames, grid):
/// light (white paper, for print: the plots' default) or dark (for screens and slides:
/// the 8-bit slices' default); `output.theme` sets one for all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    pub background: [u8; 3],
    /// Text, axes and tick marks.
    pub ink: [u8; 3],
    /// Frames around panels and colour bars.
    pub frame: [u8; 3],
    /// Grid lines at labelled ticks, and at minor ticks.
    pub grid: [u8; 3],
    pub minor_grid: [u8; 3],
    /// A panel without data.
    pub missing: [u8; 3],
}

impl Theme {
    pub const LIGHT: Theme = Theme {
        background: [255, 255, 255],
        ink: [0, 0, 0],
        frame: [90, 90, 90],
        grid: [225, 225, 225],
        minor_grid: [242, 242, 242],
        missing: [225, 225, 225],
    };
    pub const DARK: Theme = Theme {
        background: [28, 28, 32],
        ink: [240, 240, 240],
        frame: [150, 150, 150],
        grid: [72, 72, 80],
        minor_grid: [46, 46, 52],
        missing: [64, 64, 70],
    };

    /// The theme `output.theme` names, else `default`.
    pub fn chosen(choice: Option<crate::config::ThemeName>, default: Theme) -> Theme {
        match choice {
            Some(crate::config::ThemeName::Light) => Theme::LIGHT,
            Some(crate::config::ThemeName::Dark) => Theme::DARK,
            None => default,
        }
    }

    /// `rgb` as drawn on this theme: black data (the eighth Okabe–Ito colour) becomes
    /// the ink colour, so it stays visible on a dark background.
    pub fn data_colour(&self, rgb: [u8; 3]) -> [u8; 3] {
        if rgb == [0, 0, 0] {
            self.ink
        } else {
            rgb
        }
    }
}

/// Default resolution of plots, dots per inch.
pub const DEFAULT_DPI: u32 = 150;

/// Okabe & Ito (2008), "Color Universal Design": blue, vermillion, bluish green, reddish
/// purple, orange, sky blue, black, yellow — ordered so the first colours contrast most on
/// white. Series `i` of a chart gets colour `i % 8` (dashed after the first 8).
pub const OKABE_ITO: [[u8; 3]; 8] = [
    [0, 114, 178],
    [213, 94, 0],
    [0, 158, 115],
    [204, 121, 167],
    [230, 159, 0],
    [86, 180, 233],
    [0, 0, 0],
    [240, 228, 66],
];

/// A plot could not be drawn or encoded (an internal error: inputs are checked).
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("cannot draw plot: {0}")]
    Draw(String),
    #[error("cannot encode plot PNG: {0}")]
    Encode(String),
}

/// Pixels of a length of `pt` points at `dpi` dots per inch.
pub fn pt_to_px(pt: f64, dpi: u32) -> f64 {
    pt * dpi as f64 / 72.0
}

/// Pixels per metre of `dpi` (the unit of the PNG `pHYs` chunk), rounded.
pub fn dpi_to_pixels_per_metre(dpi: u32) -> u32 {
    (dpi as f64 / 0.0254).round() as u32
}

/// PNG bytes of an RGB image with a `pHYs` chunk saying `dpi` (as pixels per metre).
pub fn encode_png(img: &RgbImage, dpi: u32) -> Result<Vec<u8>, PlotError> {
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(Cursor::new(&mut bytes), img.width(), img.height());
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let ppm = dpi_to_pixels_per_metre(dpi);
        enc.set_pixel_dims(Some(png::PixelDimensions {
            xppu: ppm,
            yppu: ppm,
            unit: png::Unit::Meter,
        }));
        let mut writer = enc
            .write_header()
            .map_err(|e| PlotError::Encode(e.to_string()))?;
        writer
            .write_image_data(img.as_raw())
            .map_err(|e| PlotError::Encode(e.to_string()))?;
        writer
            .finish()
            .map_err(|e| PlotError::Encode(e.to_string()))?;
    }
    Ok(bytes)
}

/// The resolution recorded in a PNG's `pHYs` chunk, dots per inch (rounded to 0.1);
/// `None` without the chunk or with an unspecified unit.
pub fn png_dpi(bytes: &[u8]) -> Option<f64> {
    let reader = png::Decoder::new(Cursor::new(bytes)).read_info().ok()?;
    let dims = reader.info().pixel_dims?;
    if dims.unit != png::Unit::Meter {
        return None;
    }
    Some((dims.xppu as f64 * 0.0254 * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests;
