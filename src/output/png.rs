//! PNG encoders: 8-bit colour-mapped slices with title, colour bar and axis hints, and
//! raw 16-bit grayscale slices for quantitative use (Fiji, napari).
//!
//! Both use the orientation of [`super::slice`]: origin voxel at the bottom-left.

use std::io::Cursor;

use image::{ImageBuffer, ImageFormat, Luma, Rgb, RgbImage};

use crate::chart::colormap;
use crate::chart::text::TextRenderer;
use crate::chart::{ColourBar, Slice, Theme};
use crate::config::Colormap;

/// Long side the voxel picture is upscaled to (at least), pixels.
pub const MIN_LONG_SIDE_PX: usize = 400;

const MARGIN_PX: u32 = 12;
const TITLE_PX: f32 = 17.0;
const TICK_PX: f32 = 14.0;
const FOOTER_PX: f32 = 13.0;
const BAR_GAP_PX: u32 = 16;
const BAR_WIDTH_PX: u32 = 18;
const TICK_LEN_PX: u32 = 5;

/// 16-bit code of `value` on [lo, hi]: round((v − lo)/(hi − lo)·65535), clamped; NaN → 0.
/// Inverse (recorded in the manifest): value = lo + p/65535·(hi − lo).
pub fn to_u16(value: f64, lo: f64, hi: f64) -> u16 {
    if value.is_nan() {
        return 0;
    }
    ((value - lo) / (hi - lo) * 65535.0)
        .round()
        .clamp(0.0, 65535.0) as u16
}

/// Encodes a slice as a 16-bit grayscale PNG at one pixel per voxel.
pub fn encode_gray16(slice: &Slice, lo: f64, hi: f64) -> Result<Vec<u8>, image::ImageError> {
    let pixels: Vec<u16> = slice
        .values
        .iter()
        .map(|&v| to_u16(v as f64, lo, hi))
        .collect();
    let img: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_raw(slice.width as u32, slice.height as u32, pixels)
            .expect("buffer length is width × height");
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)?;
    Ok(bytes)
}

/// What is written on an 8-bit slice besides the voxels.
pub struct Png8Labels<'a> {
    /// Top line, e.g. `o2 [mM]  t = 120 s  z = 32 (325 µm)`.
    pub title: &'a str,
    /// Unit appended to the colour-bar tick values.
    pub unit: &'a str,
    /// Bottom line, e.g. axis directions and voxel size.
    pub footer: &'a str,
    pub colormap: Colormap,
    /// The colour bar: range and linear or log scale.
    pub bar: ColourBar,
    /// Background, text and frames.
    pub theme: Theme,
    /// What is drawn over the voxels, explained in a legend line above the footer.
    pub overlay: SliceOverlay<'a>,
}

/// What an 8-bit slice draws over its voxel colours (each `width × height`, like the
/// slice), and what its NaN values mean.
#[derive(Clone, Copy, Default)]
pub struct SliceOverlay<'a> {
    /// Pixels without tissue cells (vessel lumens) of a field that lives in cells, drawn
    /// in [`NO_CELLS_RGB`] instead of a value.
    pub no_cells: Option<&'a [bool]>,
    /// Tissue ids, outlined in [`TISSUE_LINE_RGB`] where they change.
    pub tissue: Option<&'a [u8]>,
    /// Vessel voxels, outlined in [`VESSEL_LINE_RGB`].
    pub vessels: Option<&'a [bool]>,
    /// What a NaN value means and its colour; default `no value` in the colour map's NaN
    /// colour (magenta).
    pub nan: Option<(&'a str, [u8; 3])>,
    /// One value that means something of its own (`time_of_death` 0: dead already at t = 0),
    /// what it means and its colour: voxels holding exactly it are drawn in that colour,
    /// not from the colour bar.
    pub marked: Option<(f32, &'a str, [u8; 3])>,
}

/// Colour of voxels without tissue cells in fields that live in cells.
pub const NO_CELLS_RGB: [u8; 3] = crate::chart::NO_TISSUE_RGB;
/// Colours of the dashes of the tissue boundary lines.
pub const TISSUE_LINE_RGB: [[u8; 3]; 2] = crate::chart::TISSUE_LINE_RGB;
/// Colour of the vessel wall lines (Okabe–Ito vermilion).
pub const VESSEL_LINE_RGB: [u8; 3] = [213, 94, 0];
/// Colour of a cell that is still alive in `time_of_death` (NaN there).
pub const ALIVE_RGB: [u8; 3] = [160, 160, 160];
/// Colour of a cell that was dead at t = 0 in `time_of_death` (0 there): black, which no
/// colour map's low end is but magma's and inferno's, whose bottom is (0, 0, 4).
pub const DEAD_AT_START_RGB: [u8; 3] = [0, 0, 0];

/// One entry of the legend line: a filled square or a line sample, and its text.
enum LegendMark {
    Fill([u8; 3]),
    /// A line sample dashed in two colours (the same twice: solid).
    Line([[u8; 3]; 2]),
}

/// The legend entries of `slice` under `overlay`: only what the picture shows.
fn legend_entries(slice: &Slice, overlay: &SliceOverlay) -> Vec<(LegendMark, String)> {
    let (w, h) = (slice.width, slice.height);
    let blank = |ix: usize| overlay.no_cells.is_some_and(|m| m.get(ix) == Some(&true));
    let mut entries = Vec::new();
    if (0..slice.values.len()).any(|ix| slice.values[ix].is_nan() && !blank(ix)) {
        let (label, rgb) = overlay.nan.unwrap_or(("no value (NaN)", colormap::NAN_RGB));
        entries.push((LegendMark::Fill(rgb), label.to_string()));
    }
    if let Some((value, label, rgb)) = overlay.marked {
        if (0..slice.values.len()).any(|ix| slice.values[ix] == value && !blank(ix)) {
            entries.push((LegendMark::Fill(rgb), label.to_string()));
        }
    }
    if overlay.no_cells.is_some_and(|m| m.iter().any(|&b| b)) {
        entries.push((
            LegendMark::Fill(NO_CELLS_RGB),
            "no cells (vessel lumen)".into(),
        ));
    }
    if overlay
        .tissue
        .is_some_and(|t| t.len() == w * h && crate::chart::has_boundary(t, w, h))
    {
        entries.push((LegendMark::Line(TISSUE_LINE_RGB), "tissue boundary".into()));
    }
    if overlay
        .vessels
        .is_some_and(|v| v.len() == w * h && crate::chart::has_boundary(v, w, h))
    {
        entries.push((LegendMark::Line([VESSEL_LINE_RGB; 2]), "vessel wall".into()));
    }
    entries
}

/// Integer upscale factor so the long side of a `width × height` slice is at least
/// [`MIN_LONG_SIDE_PX`] (nearest neighbour: each voxel becomes a crisp square).
pub fn upscale_factor(width: usize, height: usize) -> usize {
    let long = width.max(height).max(1);
    MIN_LONG_SIDE_PX.div_ceil(long).max(1)
}

/// Formats a tick value with 4 significant digits, trailing zeros trimmed; scientific
/// notation outside [1e-3, 1e5).
pub fn format_value(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v == 0.0 { "0".into() } else { v.to_string() };
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}"))
    } else {
        let s = format!("{v:.3e}");
        let (mantissa, exp) = s.split_once('e').expect("{:e} output has an exponent");
        format!("{}e{exp}", trim_zeros(mantissa))
    }
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

fn fill(img: &mut RgbImage, x0: u32, y0: u32, w: u32, h: u32, rgb: [u8; 3]) {
    for y in y0..(y0 + h).min(img.height()) {
        for x in x0..(x0 + w).min(img.width()) {
            img.put_pixel(x, y, Rgb(rgb));
        }
    }
}

/// 1-px frame just outside the rectangle (x0, y0, w, h).
fn frame(img: &mut RgbImage, x0: u32, y0: u32, w: u32, h: u32, rgb: [u8; 3]) {
    fill(img, x0 - 1, y0 - 1, w + 2, 1, rgb);
    fill(img, x0 - 1, y0 + h, w + 2, 1, rgb);
    fill(img, x0 - 1, y0 - 1, 1, h + 2, rgb);
    fill(img, x0 + w, y0 - 1, 1, h + 2, rgb);
}

/// Renders the colour-mapped slice with a title band on top, a colour bar with round
/// ticks in a readable unit on the right and a footer line below.
pub fn render_colour(slice: &Slice, labels: &Png8Labels, text: &TextRenderer) -> RgbImage {
    let s = upscale_factor(slice.width, slice.height) as u32;
    let (plot_w, plot_h) = (slice.width as u32 * s, slice.height as u32 * s);

    let title_h = text.line_height(TITLE_PX).ceil() as u32 + 2 * 8;
    let footer_h = text.line_height(FOOTER_PX).ceil() as u32 + 2 * 6;
    let legend = legend_entries(slice, &labels.overlay);
    let swatch = text.line_height(FOOTER_PX).ceil() as u32;
    let legend_h = if legend.is_empty() { 0 } else { footer_h };
    let legend_w = MARGIN_PX
        + legend
            .iter()
            .map(|(_, l)| swatch + 6 + text.width(l, FOOTER_PX).ceil() as u32 + 18)
            .sum::<u32>()
        + MARGIN_PX;
    let tick_h = text.line_height(TICK_PX);

    // Round values in a readable unit (fM … mM), at their place on the bar.
    let (ticks, tick_labels): (Vec<f64>, Vec<String>) =
        labels.bar.ticks(labels.unit, 4, true).into_iter().unzip();
    let label_w = tick_labels
        .iter()
        .map(|l| text.width(l, TICK_PX).ceil() as u32)
        .max()
        .unwrap_or(0);

    let plot_x = MARGIN_PX;
    let plot_y = title_h + MARGIN_PX;
    let bar_x = plot_x + plot_w + BAR_GAP_PX;
    let label_x = bar_x + BAR_WIDTH_PX + TICK_LEN_PX + 4;
    let content_w = label_x + label_w + MARGIN_PX;
    let title_w = MARGIN_PX + text.width(labels.title, TITLE_PX).ceil() as u32 + MARGIN_PX;
    let footer_w = MARGIN_PX + text.width(labels.footer, FOOTER_PX).ceil() as u32 + MARGIN_PX;
    let width = content_w.max(title_w).max(footer_w).max(legend_w);
    let height = plot_y + plot_h + MARGIN_PX + legend_h + footer_h;

    let theme = labels.theme;
    let mut img = RgbImage::from_pixel(width, height, Rgb(theme.background));

    // Voxels, nearest-neighbour upscaled.
    let overlay = &labels.overlay;
    let nan_rgb = overlay.nan.map(|n| n.1);
    for row in 0..slice.height {
        for col in 0..slice.width {
            let ix = col + slice.width * row;
            let value = slice.get(col, row);
            let rgb = if overlay.no_cells.is_some_and(|m| m.get(ix) == Some(&true)) {
                NO_CELLS_RGB
            } else if let (true, Some(rgb)) = (value.is_nan(), nan_rgb) {
                rgb
            } else if let Some((_, _, rgb)) = overlay.marked.filter(|m| m.0 == value) {
                rgb
            } else {
                labels.bar.colour(labels.colormap, value as f64)
            };
            fill(
                &mut img,
                plot_x + col as u32 * s,
                plot_y + row as u32 * s,
                s,
                s,
                rgb,
            );
        }
    }
    // Outlines: about an eighth of a voxel wide, at least one pixel.
    let line_px = (s as i64 / 8).max(1);
    let (cells, origin, dash) = (
        (slice.width, slice.height),
        (plot_x as i64, plot_y as i64),
        3 * line_px.max(2),
    );
    if let Some(v) = overlay.vessels {
        let ink = [VESSEL_LINE_RGB; 2];
        crate::chart::outlines(&mut img, origin, s as i64, cells, v, line_px, ink, dash);
    }
    if let Some(t) = overlay.tissue {
        let ink = TISSUE_LINE_RGB;
        crate::chart::outlines(&mut img, origin, s as i64, cells, t, line_px, ink, dash);
    }
    frame(&mut img, plot_x, plot_y, plot_w, plot_h, theme.frame);

    // Colour bar: hi at the top, lo at the bottom, same height as the picture.
    for y in 0..plot_h {
        let t = 1.0 - (y as f64 + 0.5) / plot_h as f64;
        fill(
            &mut img,
            bar_x,
            plot_y + y,
            BAR_WIDTH_PX,
            1,
            colormap::rgb(labels.colormap, t),
        );
    }
    frame(&mut img, bar_x, plot_y, BAR_WIDTH_PX, plot_h, theme.frame);
    for (&t, label) in ticks.iter().zip(&tick_labels) {
        let tick_y = plot_y + ((1.0 - t) * (plot_h - 1) as f64).round() as u32;
        fill(
            &mut img,
            bar_x + BAR_WIDTH_PX,
            tick_y,
            TICK_LEN_PX,
            1,
            theme.ink,
        );
        let top = (tick_y as f32 - tick_h / 2.0)
            .clamp(plot_y as f32 - 4.0, (plot_y + plot_h) as f32 - tick_h + 4.0);
        text.draw(&mut img, label_x as f32, top, TICK_PX, label, theme.ink);
    }

    text.draw(
        &mut img,
        MARGIN_PX as f32,
        8.0,
        TITLE_PX,
        labels.title,
        theme.ink,
    );
    // Legend line: a square or line sample per entry, then its text.
    let legend_top = plot_y + plot_h + MARGIN_PX + 6;
    let mut x = MARGIN_PX;
    for (mark, label) in &legend {
        match mark {
            LegendMark::Fill(rgb) => {
                fill(&mut img, x, legend_top + 1, swatch, swatch - 2, *rgb);
                frame(&mut img, x, legend_top + 1, swatch, swatch - 2, theme.frame);
            }
            LegendMark::Line(ink) => {
                for (i, dx) in (0..swatch).step_by(4).enumerate() {
                    let w = 4.min(swatch - dx);
                    fill(
                        &mut img,
                        x + dx,
                        legend_top + swatch / 2 - 1,
                        w,
                        3,
                        ink[i % 2],
                    );
                }
            }
        }
        x += swatch + 6;
        text.draw(
            &mut img,
            x as f32,
            legend_top as f32,
            FOOTER_PX,
            label,
            theme.ink,
        );
        x += text.width(label, FOOTER_PX).ceil() as u32 + 18;
    }
    let footer_top = (plot_y + plot_h + MARGIN_PX + legend_h + 6) as f32;
    text.draw(
        &mut img,
        MARGIN_PX as f32,
        footer_top,
        FOOTER_PX,
        labels.footer,
        theme.ink,
    );
    img
}

/// PNG bytes of an RGB image.
pub fn encode_rgb(img: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Axis, Grid};
    use crate::output::slice;

    #[test]
    fn png16_mapping_and_orientation() {
        let grid = Grid {
            nx: 6,
            ny: 5,
            nz: 2,
            voxel_um: 1.0,
        };
        let field: Vec<f32> = (0..grid.n_voxels()).map(|i| i as f32 * 0.01).collect();
        let (lo, hi) = (0.05, 0.25);
        let sl = slice::extract_array_order(&field, &grid, Axis::Z, 0);
        let bytes = encode_gray16(&sl, lo, hi).expect("encode");
        let img = image::load_from_memory_with_format(&bytes, ImageFormat::Png)
            .expect("decode")
            .into_luma16();
        assert_eq!(img.dimensions(), (6, 5));
        let expect = |i: usize, j: usize, k: usize| {
            let v = field[i + grid.nx * (j + grid.ny * k)] as f64;
            ((v - lo) / (hi - lo) * 65535.0).round().clamp(0.0, 65535.0) as u16
        };
        // Array order, as in the .npy and the TIFF: row j is y = j; x increases to the right.
        for (i, j) in [(0, 4), (5, 4), (2, 0), (3, 2), (0, 0)] {
            assert_eq!(
                img.get_pixel(i as u32, j as u32).0[0],
                expect(i, j, 0),
                "voxel ({i},{j},0)"
            );
        }
        assert_eq!(img.get_pixel(0, 0).0[0], 0, "value below lo clamps to 0");
        assert_eq!(
            img.get_pixel(5, 4).0[0],
            65535,
            "value above hi clamps to 65535"
        );
        // The inverse mapping recorded in the manifest recovers the value to 1/65535.
        let p = img.get_pixel(3, 2).0[0] as f64;
        let v = lo + p / 65535.0 * (hi - lo);
        assert!((v - field[3 + 6 * 2] as f64).abs() < (hi - lo) / 65535.0);
    }

    #[test]
    fn png8_has_size_title_and_colour_bar() {
        let sl = Slice {
            width: 64,
            height: 48,
            values: (0..64 * 48).map(|i| (i % 64) as f32).collect(),
        };
        let labels = Png8Labels {
            title: "o2 [mM]  t = 120 s  z = 32 (325 µm)",
            unit: "mM",
            footer: "x →  y ↑",
            colormap: Colormap::Viridis,
            bar: ColourBar::linear(0.0, 63.0),
            theme: Theme::DARK,
            overlay: SliceOverlay::default(),
        };
        let img = render_colour(&sl, &labels, &TextRenderer::new());
        let bytes = encode_rgb(&img).expect("encode");
        let back = image::load_from_memory_with_format(&bytes, ImageFormat::Png)
            .expect("decode")
            .into_rgb8();
        assert_eq!(back.dimensions(), img.dimensions());
        let s = upscale_factor(64, 48) as u32;
        assert!(64 * s >= MIN_LONG_SIDE_PX as u32);
        assert!(back.width() >= 64 * s && back.height() >= 48 * s);
        // Title band: rows above the picture contain text pixels.
        let title_rows = MARGIN_PX..(MARGIN_PX + 10);
        let text_px = title_rows
            .flat_map(|y| (0..back.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| back.get_pixel(x, y).0 != Theme::DARK.background)
            .count();
        assert!(
            text_px > 30,
            "title band has {text_px} non-background pixels"
        );
        // Colour bar: top and bottom colours differ (viridis yellow vs purple).
        let title_h = TextRenderer::new().line_height(TITLE_PX).ceil() as u32 + 16;
        let plot_y = title_h + MARGIN_PX;
        let bar_mid_x = MARGIN_PX + 64 * s + BAR_GAP_PX + BAR_WIDTH_PX / 2;
        let top = back.get_pixel(bar_mid_x, plot_y + 1).0;
        let bottom = back.get_pixel(bar_mid_x, plot_y + 48 * s - 2).0;
        assert_ne!(top, bottom);
        assert_eq!(
            top,
            colormap::rgb(Colormap::Viridis, 1.0 - 1.5 / (48 * s) as f64)
        );
    }

    /// Cell-free voxels are blank, NaN takes the field's own colour, tissue edges are
    /// dashed in black and white, and a legend line names each, only when present.
    #[test]
    fn png8_overlay_draws_blank_cells_nan_outlines_and_a_legend() {
        // 8 × 4 voxels: left half tissue 0, right half tissue 1; voxel (0, 0) has no
        // cells; voxel (7, 3) is NaN (alive in time_of_death), voxel (6, 3) 0 (dead at the
        // start).
        let (w, h) = (8usize, 4usize);
        let mut values = vec![100.0f32; w * h];
        values[7 + w * 3] = f32::NAN;
        values[6 + w * 3] = 0.0;
        let sl = Slice {
            width: w,
            height: h,
            values,
        };
        let tissue: Vec<u8> = (0..w * h).map(|ix| u8::from(ix % w >= 4)).collect();
        let mut no_cells = vec![false; w * h];
        no_cells[0] = true;
        let render = |overlay: SliceOverlay| {
            let labels = Png8Labels {
                title: "time_of_death [h]",
                unit: "s",
                footer: "x →  y ↑",
                colormap: Colormap::Viridis,
                bar: ColourBar::linear(0.0, 200.0),
                theme: Theme::DARK,
                overlay,
            };
            render_colour(&sl, &labels, &TextRenderer::new())
        };
        let plain = render(SliceOverlay::default());
        let img = render(SliceOverlay {
            no_cells: Some(&no_cells),
            tissue: Some(&tissue),
            vessels: None,
            nan: Some(("alive", ALIVE_RGB)),
            marked: Some((0.0, "dead at t = 0", DEAD_AT_START_RGB)),
        });
        let plain_legend: Vec<String> = legend_entries(&sl, &SliceOverlay::default())
            .into_iter()
            .map(|e| e.1)
            .collect();
        assert_eq!(plain_legend, ["no value (NaN)"]);
        let s = upscale_factor(w, h) as u32;
        let title_h = TextRenderer::new().line_height(TITLE_PX).ceil() as u32 + 16;
        let (px, py) = (MARGIN_PX, title_h + MARGIN_PX);
        let centre = |c: u32, r: u32| img.get_pixel(px + c * s + s / 2, py + r * s + s / 2).0;
        assert_eq!(centre(0, 0), NO_CELLS_RGB);
        assert_eq!(centre(7, 3), ALIVE_RGB);
        assert_eq!(centre(6, 3), DEAD_AT_START_RGB);
        // Without the mark, 0 takes the bar's bottom colour.
        let plain_zero = plain.get_pixel(px + 6 * s + s / 2, py + 3 * s + s / 2).0;
        assert_eq!(
            plain_zero,
            ColourBar::linear(0.0, 200.0).colour(Colormap::Viridis, 0.0)
        );
        assert_eq!(
            centre(2, 2),
            ColourBar::linear(0.0, 200.0).colour(Colormap::Viridis, 100.0)
        );
        // The edge between columns 3 and 4 is dashed in black and white.
        let edge: std::collections::BTreeSet<[u8; 3]> = (py..py + h as u32 * s)
            .map(|y| img.get_pixel(px + 4 * s, y).0)
            .collect();
        assert!(
            edge.contains(&[0, 0, 0]) && edge.contains(&[255, 255, 255]),
            "{edge:?}"
        );
        // Without the overlay NaN is magenta and nothing is outlined or blank.
        let plain_centre = plain.get_pixel(px + 7 * s + s / 2, py + 3 * s + s / 2).0;
        assert_eq!(plain_centre, colormap::NAN_RGB);
        // The legend entries are those shown.
        let entries: Vec<String> = legend_entries(
            &sl,
            &SliceOverlay {
                no_cells: Some(&no_cells),
                tissue: Some(&tissue),
                vessels: Some(&vec![false; w * h]),
                nan: Some(("alive", ALIVE_RGB)),
                marked: Some((0.0, "dead at t = 0", DEAD_AT_START_RGB)),
            },
        )
        .into_iter()
        .map(|e| e.1)
        .collect();
        assert_eq!(
            entries,
            [
                "alive",
                "dead at t = 0",
                "no cells (vessel lumen)",
                "tissue boundary"
            ]
        );
    }

    #[test]
    fn tick_values_are_short() {
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(0.15), "0.15");
        assert_eq!(format_value(120.0), "120");
        assert_eq!(format_value(1.23456), "1.235");
        assert_eq!(format_value(2.5e-6), "2.5e-6");
        assert_eq!(format_value(-7.0), "-7");
    }
}
