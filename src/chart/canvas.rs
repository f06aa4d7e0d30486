//! Where the figure series draws: a [`Canvas`] takes the few primitives of its layout
//! (rectangles, frames, text, grids of coloured cells, tissue outlines, a shaded box), so
//! the one layout in `figure` becomes a PNG ([`RasterCanvas`], pixels) and an SVG
//! ([`SvgCanvas`], vector text and lines; each grid of cells one embedded PNG drawn
//! without smoothing), and the PDF is converted from that SVG. Coordinates are pixels at
//! the figure's dpi in both; the SVG's physical size is pixels / dpi inches, as the PNG's.

use std::fmt::Write;

use base64::Engine as _;
use image::{Rgb, RgbImage};

use super::raster::{self, fill, frame, shade, text_vertical};
use super::text::TextRenderer;

/// The drawing primitives of the figure series. Rectangles are (x0, y0, w, h) in whole
/// pixels, text boxes by their top-left corner (`px` the font size in pixels).
pub(crate) trait Canvas {
    fn fill(&mut self, x0: i64, y0: i64, w: i64, h: i64, rgb: [u8; 3]);
    /// The outline of a rectangle, `t` pixels thick, inside it.
    fn frame(&mut self, x0: i64, y0: i64, w: i64, h: i64, t: i64, rgb: [u8; 3]);
    fn text(&mut self, left: f32, top: f32, px: f32, s: &str, rgb: [u8; 3]);
    /// `s` read bottom to top, centred on `centre`.
    fn text_vertical(&mut self, s: &str, px: f32, centre: (f64, f64), rgb: [u8; 3]);
    /// `cols × rows` cells (row-major colours, row 0 at the top), each `cell_w × cell_h`
    /// pixels, from (x0, y0).
    #[allow(clippy::too_many_arguments)]
    fn cells(
        &mut self,
        x0: i64,
        y0: i64,
        cell: (i64, i64),
        dims: (usize, usize),
        colours: &[[u8; 3]],
    );
    /// The boundaries between edge-sharing cells of different `labels` on a grid of
    /// `scale`-pixel cells from `origin` (see [`raster::outlines`]).
    #[allow(clippy::too_many_arguments)]
    fn outlines(
        &mut self,
        origin: (i64, i64),
        scale: i64,
        dims: (usize, usize),
        labels: &[u8],
        line_px: i64,
        ink: [[u8; 3]; 2],
        dash_px: i64,
    );
    /// Darkens a rectangle towards black by `amount` ∈ [0, 1].
    fn shade(&mut self, x0: i64, y0: i64, w: i64, h: i64, amount: f64);
}

/// Draws on an RGB image with the bundled font.
pub(crate) struct RasterCanvas<'a> {
    pub img: RgbImage,
    pub text: &'a TextRenderer,
}

impl Canvas for RasterCanvas<'_> {
    fn fill(&mut self, x0: i64, y0: i64, w: i64, h: i64, rgb: [u8; 3]) {
        fill(&mut self.img, x0, y0, w, h, rgb);
    }
    fn frame(&mut self, x0: i64, y0: i64, w: i64, h: i64, t: i64, rgb: [u8; 3]) {
        frame(&mut self.img, x0, y0, w, h, t, rgb);
    }
    fn text(&mut self, left: f32, top: f32, px: f32, s: &str, rgb: [u8; 3]) {
        self.text.draw(&mut self.img, left, top, px, s, rgb);
    }
    fn text_vertical(&mut self, s: &str, px: f32, centre: (f64, f64), rgb: [u8; 3]) {
        text_vertical(&mut self.img, self.text, s, px, centre, rgb);
    }
    fn cells(
        &mut self,
        x0: i64,
        y0: i64,
        (cell_w, cell_h): (i64, i64),
        (cols, rows): (usize, usize),
        colours: &[[u8; 3]],
    ) {
        for r in 0..rows {
            for c in 0..cols {
                let (x, y) = (x0 + c as i64 * cell_w, y0 + r as i64 * cell_h);
                fill(&mut self.img, x, y, cell_w, cell_h, colours[c + cols * r]);
            }
        }
    }
    fn outlines(
        &mut self,
        origin: (i64, i64),
        scale: i64,
        dims: (usize, usize),
        labels: &[u8],
        line_px: i64,
        ink: [[u8; 3]; 2],
        dash_px: i64,
    ) {
        raster::outlines(
            &mut self.img,
            origin,
            scale,
            dims,
            labels,
            line_px,
            ink,
            dash_px,
        );
    }
    fn shade(&mut self, x0: i64, y0: i64, w: i64, h: i64, amount: f64) {
        shade(&mut self.img, x0, y0, w, h, amount);
    }
}

/// Builds an SVG document: text as `<text>` in DejaVu Sans (the bundled font, embedded
/// when converted to PDF), lines and rectangles as vectors, cells as PNG images.
pub(crate) struct SvgCanvas<'a> {
    width: u32,
    height: u32,
    dpi: u32,
    text: &'a TextRenderer,
    body: String,
}

impl<'a> SvgCanvas<'a> {
    /// A `width × height`-pixel page at `dpi`, filled with `background`.
    pub fn new(
        width: u32,
        height: u32,
        dpi: u32,
        background: [u8; 3],
        text: &'a TextRenderer,
    ) -> Self {
        let mut canvas = SvgCanvas {
            width,
            height,
            dpi,
            text,
            body: String::new(),
        };
        canvas.fill(0, 0, width as i64, height as i64, background);
        canvas
    }

    /// The document, sized in inches (pixels / dpi) so it prints at the PNG's size.
    pub fn finish(self) -> String {
        let dpi = self.dpi.max(1) as f64;
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{:.4}in" height="{:.4}in" viewBox="0 0 {} {}">
{}</svg>
"#,
            self.width as f64 / dpi,
            self.height as f64 / dpi,
            self.width,
            self.height,
            self.body
        )
    }
}

/// `#rrggbb`.
pub(crate) fn svg_colour([r, g, b]: [u8; 3]) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// `s` with `&`, `<` and `>` escaped for XML text.
pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Canvas for SvgCanvas<'_> {
    fn fill(&mut self, x0: i64, y0: i64, w: i64, h: i64, rgb: [u8; 3]) {
        let _ = writeln!(
            self.body,
            r#"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="{}"/>"#,
            svg_colour(rgb)
        );
    }
    fn frame(&mut self, x0: i64, y0: i64, w: i64, h: i64, t: i64, rgb: [u8; 3]) {
        // The stroke is centred on its path: inset by half the thickness, as the raster's.
        let half = t as f64 / 2.0;
        let _ = writeln!(
            self.body,
            r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="none" stroke="{}" stroke-width="{t}"/>"#,
            x0 as f64 + half,
            y0 as f64 + half,
            (w as f64 - t as f64).max(0.0),
            (h as f64 - t as f64).max(0.0),
            svg_colour(rgb)
        );
    }
    fn text(&mut self, left: f32, top: f32, px: f32, s: &str, rgb: [u8; 3]) {
        // SVG places the baseline; the raster text's box starts at the ascent above it.
        let baseline = top + self.text.ascent(px);
        let _ = writeln!(
            self.body,
            r#"<text x="{left:.2}" y="{baseline:.2}" font-family="DejaVu Sans" font-size="{:.2}" fill="{}">{}</text>"#,
            self.text.em_px(px),
            svg_colour(rgb),
            xml_escape(s)
        );
    }
    fn text_vertical(&mut self, s: &str, px: f32, (cx, cy): (f64, f64), rgb: [u8; 3]) {
        let _ = writeln!(
            self.body,
            r#"<text x="{cx:.2}" y="{cy:.2}" text-anchor="middle" dominant-baseline="central" transform="rotate(-90 {cx:.2} {cy:.2})" font-family="DejaVu Sans" font-size="{:.2}" fill="{}">{}</text>"#,
            self.text.em_px(px),
            svg_colour(rgb),
            xml_escape(s)
        );
    }
    fn cells(
        &mut self,
        x0: i64,
        y0: i64,
        (cell_w, cell_h): (i64, i64),
        (cols, rows): (usize, usize),
        colours: &[[u8; 3]],
    ) {
        if cols == 0 || rows == 0 {
            return;
        }
        let img = RgbImage::from_fn(cols as u32, rows as u32, |c, r| {
            Rgb(colours[c as usize + cols * r as usize])
        });
        let mut png = Vec::new();
        if img
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .is_err()
        {
            return; // an in-memory PNG of plain pixels does not fail
        }
        let data = base64::engine::general_purpose::STANDARD.encode(&png);
        let _ = writeln!(
            self.body,
            r#"<image x="{x0}" y="{y0}" width="{}" height="{}" preserveAspectRatio="none" image-rendering="optimizeSpeed" style="image-rendering:pixelated" href="data:image/png;base64,{data}"/>"#,
            cell_w * cols as i64,
            cell_h * rows as i64
        );
    }
    fn outlines(
        &mut self,
        (x0, y0): (i64, i64),
        scale: i64,
        (cols, rows): (usize, usize),
        labels: &[u8],
        line_px: i64,
        ink: [[u8; 3]; 2],
        dash_px: i64,
    ) {
        if labels.len() != cols * rows {
            return;
        }
        // Boundary edges, joined along each grid line into runs: vertical edges right of
        // column c, horizontal edges below row r. The raster colours a pixel by
        // ((x − x0) + (y − y0)) / dash: odd in the second ink. Each run's dash offset
        // continues that pattern, so runs are grouped by offset (at most 2·dash paths).
        let s = scale;
        let d = dash_px.max(1);
        let mut all = String::new();
        let mut by_offset: std::collections::BTreeMap<i64, String> = Default::default();
        let mut run = |x: i64, y: i64, seg: String| {
            all.push_str(&seg);
            let offset = ((x - x0) + (y - y0) - d).rem_euclid(2 * d);
            by_offset.entry(offset).or_default().push_str(&seg);
        };
        for c in 0..cols.saturating_sub(1) {
            let x = x0 + (c as i64 + 1) * s;
            let mut start: Option<usize> = None;
            for r in 0..=rows {
                let edge = r < rows && labels[c + cols * r] != labels[c + 1 + cols * r];
                match (edge, start) {
                    (true, None) => start = Some(r),
                    (false, Some(r0)) => {
                        let y = y0 + r0 as i64 * s;
                        run(x, y, format!("M{x} {y}V{}", y0 + r as i64 * s));
                        start = None;
                    }
                    _ => {}
                }
            }
        }
        for r in 0..rows.saturating_sub(1) {
            let y = y0 + (r as i64 + 1) * s;
            let mut start: Option<usize> = None;
            for c in 0..=cols {
                let edge = c < cols && labels[c + cols * r] != labels[c + cols * (r + 1)];
                match (edge, start) {
                    (true, None) => start = Some(c),
                    (false, Some(c0)) => {
                        let x = x0 + c0 as i64 * s;
                        run(x, y, format!("M{x} {y}H{}", x0 + c as i64 * s));
                        start = None;
                    }
                    _ => {}
                }
            }
        }
        if all.is_empty() {
            return;
        }
        // The first ink solid, the second dashed over it.
        let _ = writeln!(
            self.body,
            r#"<path d="{all}" fill="none" stroke="{}" stroke-width="{line_px}" stroke-linecap="square"/>"#,
            svg_colour(ink[0])
        );
        if ink[1] != ink[0] {
            for (offset, path) in by_offset {
                let _ = writeln!(
                    self.body,
                    r#"<path d="{path}" fill="none" stroke="{}" stroke-width="{line_px}" stroke-dasharray="{d} {d}" stroke-dashoffset="{offset}"/>"#,
                    svg_colour(ink[1]),
                );
            }
        }
    }
    fn shade(&mut self, x0: i64, y0: i64, w: i64, h: i64, amount: f64) {
        let _ = writeln!(
            self.body,
            r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="#000000" fill-opacity="{:.3}"/>"##,
            amount.clamp(0.0, 1.0)
        );
    }
}
