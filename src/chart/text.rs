//! Burnt-in text for the 8-bit slices: titles, colour-bar ticks, axis hints.
//! Glyphs come from the bundled DejaVu Sans (licence in `assets/DejaVuSans-LICENSE.txt`),
//! rasterised by `ab_glyph` with anti-aliasing blended onto the existing pixels.

use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
use image::RgbImage;

pub(crate) const FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Draws single lines of text with the bundled font.
pub struct TextRenderer {
    font: FontRef<'static>,
}

impl Default for TextRenderer {
    fn default() -> Self {
        Self::new()
    }
}

impl TextRenderer {
    pub fn new() -> Self {
        let font = FontRef::try_from_slice(FONT_BYTES)
            .expect("the bundled DejaVuSans.ttf is a valid TrueType font");
        TextRenderer { font }
    }

    /// The font size in pixels per em (what SVG's `font-size` and PDF mean) of text drawn
    /// here at `px`: `px` is ab_glyph's scale, the line height (ascent − descent), which
    /// for DejaVu Sans is 1.16 em.
    pub fn em_px(&self, px: f32) -> f32 {
        let units_per_em = self.font.units_per_em().unwrap_or(2048.0);
        self.font
            .as_scaled(PxScale::from(px))
            .scale_factor()
            .vertical
            * units_per_em
    }

    /// Advance width of `text` at scale `px` (the line height, see [`Self::em_px`]), in
    /// pixels.
    pub fn width(&self, text: &str, px: f32) -> f32 {
        let scaled = self.font.as_scaled(PxScale::from(px));
        let mut caret = 0.0;
        let mut prev = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                caret += scaled.kern(p, id);
            }
            caret += scaled.h_advance(id);
            prev = Some(id);
        }
        caret
    }

    /// Height from the top of a line to its baseline (the ascent), pixels.
    pub fn ascent(&self, px: f32) -> f32 {
        self.font.as_scaled(PxScale::from(px)).ascent()
    }

    /// Height of a line (ascent − descent), pixels.
    pub fn line_height(&self, px: f32) -> f32 {
        let s = self.font.as_scaled(PxScale::from(px));
        s.ascent() - s.descent()
    }

    /// Draws `text` with its line box's top-left corner at (`left`, `top`), blending
    /// `rgb` over the image by glyph coverage. Pixels outside the image are skipped.
    pub fn draw(&self, img: &mut RgbImage, left: f32, top: f32, px: f32, text: &str, rgb: [u8; 3]) {
        let scale = PxScale::from(px);
        let scaled = self.font.as_scaled(scale);
        let baseline = top + scaled.ascent();
        let (w, h) = (img.width() as i64, img.height() as i64);
        let mut caret = left;
        let mut prev = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                caret += scaled.kern(p, id);
            }
            let glyph = id.with_scale_and_position(scale, point(caret, baseline));
            caret += scaled.h_advance(id);
            prev = Some(id);
            let Some(outlined) = self.font.outline_glyph(glyph) else {
                continue; // spaces and other blank glyphs
            };
            let bounds = outlined.px_bounds();
            outlined.draw(|gx, gy, coverage| {
                let x = bounds.min.x as i64 + gx as i64;
                let y = bounds.min.y as i64 + gy as i64;
                if x < 0 || y < 0 || x >= w || y >= h {
                    return;
                }
                let a = coverage.clamp(0.0, 1.0);
                let p = img.get_pixel_mut(x as u32, y as u32);
                for (dst, &src) in p.0.iter_mut().zip(&rgb) {
                    let bg = *dst as f32;
                    *dst = (bg + (src as f32 - bg) * a).round() as u8;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_renders_micro_sign_and_ascii() {
        let r = TextRenderer::new();
        let mut img = RgbImage::new(200, 30);
        r.draw(&mut img, 2.0, 2.0, 18.0, "325 µm", [255, 255, 255]);
        let lit = img.pixels().filter(|p| p.0[0] > 128).count();
        assert!(lit > 50, "only {lit} text pixels");
        // µ must be a real glyph in DejaVu, not the empty .notdef box.
        let font = FontRef::try_from_slice(FONT_BYTES).expect("font");
        assert_ne!(font.glyph_id('µ').0, 0);
        assert!(r.width("µm", 18.0) > 10.0);
    }
}
