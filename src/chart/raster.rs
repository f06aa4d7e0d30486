//! Raster helpers of the plots: filled rectangles, frames, anti-aliased thick polylines
//! and text (horizontal, vertical, with a halo) through [`TextRenderer`].

use image::{imageops, Rgb, RgbImage};

use super::text::TextRenderer;

/// Fills the rectangle (x0, y0, w, h), clipped to the image.
pub(crate) fn fill(img: &mut RgbImage, x0: i64, y0: i64, w: i64, h: i64, rgb: [u8; 3]) {
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    for y in y0.max(0)..(y0 + h).min(ih) {
        for x in x0.max(0)..(x0 + w).min(iw) {
            img.put_pixel(x as u32, y as u32, Rgb(rgb));
        }
    }
}

/// A `t`-pixel frame just outside the rectangle (x0, y0, w, h).
pub(crate) fn frame(img: &mut RgbImage, x0: i64, y0: i64, w: i64, h: i64, t: i64, rgb: [u8; 3]) {
    fill(img, x0 - t, y0 - t, w + 2 * t, t, rgb);
    fill(img, x0 - t, y0 + h, w + 2 * t, t, rgb);
    fill(img, x0 - t, y0, t, h, rgb);
    fill(img, x0 + w, y0, t, h, rgb);
}

/// Blends `rgb` over pixel (x, y) with opacity `a` ∈ [0, 1].
fn blend(img: &mut RgbImage, x: u32, y: u32, rgb: [u8; 3], a: f64) {
    let p = img.get_pixel_mut(x, y);
    for (dst, &src) in p.0.iter_mut().zip(&rgb) {
        let bg = *dst as f64;
        *dst = (bg + (src as f64 - bg) * a).round().clamp(0.0, 255.0) as u8;
    }
}

/// Distance from (px, py) to the segment a–b.
fn segment_distance(px: f64, py: f64, a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((px - a.0) * dx + (py - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (cx, cy) = (a.0 + t * dx, a.1 + t * dy);
    ((px - cx).powi(2) + (py - cy).powi(2)).sqrt()
}

/// Draws a polyline of `width` pixels with round joins and caps, anti-aliased (coverage
/// from the distance of each pixel centre to the nearest segment, so joints are not
/// blended twice), clipped to `clip` = (x0, y0, x1, y1). One point draws a dot.
pub(crate) fn polyline(
    img: &mut RgbImage,
    pts: &[(f64, f64)],
    width: f64,
    rgb: [u8; 3],
    clip: (f64, f64, f64, f64),
) {
    if pts.is_empty() {
        return;
    }
    let r = width / 2.0;
    let (mut bx0, mut by0, mut bx1, mut by1) = (f64::INFINITY, f64::INFINITY, f64::MIN, f64::MIN);
    for &(x, y) in pts {
        bx0 = bx0.min(x);
        by0 = by0.min(y);
        bx1 = bx1.max(x);
        by1 = by1.max(y);
    }
    let x0 = ((bx0 - r - 1.0).floor().max(clip.0.floor())).max(0.0) as i64;
    let y0 = ((by0 - r - 1.0).floor().max(clip.1.floor())).max(0.0) as i64;
    let x1 = ((bx1 + r + 1.0).ceil().min(clip.2.ceil())).min(img.width() as f64) as i64;
    let y1 = ((by1 + r + 1.0).ceil().min(clip.3.ceil())).min(img.height() as f64) as i64;
    if x1 <= x0 || y1 <= y0 {
        return;
    }
    let (w, h) = ((x1 - x0) as usize, (y1 - y0) as usize);
    let mut cov = vec![0f64; w * h];
    let segments: Vec<((f64, f64), (f64, f64))> = if pts.len() == 1 {
        vec![(pts[0], pts[0])]
    } else {
        pts.windows(2).map(|s| (s[0], s[1])).collect()
    };
    for (a, b) in segments {
        let sx0 = ((a.0.min(b.0) - r - 1.0).floor() as i64).max(x0);
        let sy0 = ((a.1.min(b.1) - r - 1.0).floor() as i64).max(y0);
        let sx1 = ((a.0.max(b.0) + r + 1.0).ceil() as i64).min(x1);
        let sy1 = ((a.1.max(b.1) + r + 1.0).ceil() as i64).min(y1);
        for y in sy0..sy1 {
            for x in sx0..sx1 {
                let d = segment_distance(x as f64 + 0.5, y as f64 + 0.5, a, b);
                let c = (r + 0.5 - d).clamp(0.0, 1.0);
                let slot = &mut cov[(x - x0) as usize + w * (y - y0) as usize];
                *slot = slot.max(c);
            }
        }
    }
    for y in 0..h {
        for x in 0..w {
            let c = cov[x + w * y];
            if c > 0.0 {
                blend(img, (x0 + x as i64) as u32, (y0 + y as i64) as u32, rgb, c);
            }
        }
    }
}

/// Splits a polyline into dashes of `on` pixels separated by `off` pixels of arc length.
pub(crate) fn dashes(pts: &[(f64, f64)], on: f64, off: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let mut current = vec![];
    let mut drawing = true;
    let mut left = on;
    if let Some(&p) = pts.first() {
        current.push(p);
    }
    for s in pts.windows(2) {
        let (mut a, b) = (s[0], s[1]);
        let mut seg = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        while seg > left {
            let t = left / seg;
            let p = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
            if drawing {
                current.push(p);
                out.push(std::mem::take(&mut current));
            } else {
                current = vec![p];
            }
            drawing = !drawing;
            seg -= left;
            a = p;
            left = if drawing { on } else { off };
        }
        left -= seg;
        if drawing {
            current.push(b);
        }
    }
    if drawing && current.len() > 1 {
        out.push(current);
    }
    out
}

/// Draws `s` rotated 90° counter-clockwise (reading bottom to top), centred on (cx, cy),
/// blended over what is there.
pub(crate) fn text_vertical(
    img: &mut RgbImage,
    text: &TextRenderer,
    s: &str,
    px: f32,
    (cx, cy): (f64, f64),
    rgb: [u8; 3],
) {
    let w = text.width(s, px).ceil() as u32 + 2;
    let h = text.line_height(px).ceil() as u32 + 2;
    // Coverage mask: white text on black, rotated, then used as opacity.
    let mut tmp = RgbImage::new(w, h);
    text.draw(&mut tmp, 1.0, 1.0, px, s, [255, 255, 255]);
    let rot = imageops::rotate270(&tmp);
    let x0 = (cx - rot.width() as f64 / 2.0).round() as i64;
    let y0 = (cy - rot.height() as f64 / 2.0).round() as i64;
    for (x, y, p) in rot.enumerate_pixels() {
        let (gx, gy) = (x0 + x as i64, y0 + y as i64);
        if p.0[0] > 0
            && gx >= 0
            && gy >= 0
            && (gx as u32) < img.width()
            && (gy as u32) < img.height()
        {
            blend(img, gx as u32, gy as u32, rgb, p.0[0] as f64 / 255.0);
        }
    }
}

/// Draws the boundaries between edge-sharing cells of different `labels` (a grid of
/// `cols × rows` cells, row-major), where cell (c, r) covers the `scale`-pixel square at
/// (x0 + c·scale, y0 + r·scale): lines `line_px` wide, centred on the shared edge and
/// clipped to the grid, dashed in the two colours `ink` (dashes `dash_px` long; the
/// same colour twice draws a solid line). Black-and-white dashes stay visible on any
/// colour map and on blank cells.
#[allow(clippy::too_many_arguments)]
pub fn outlines<T: PartialEq + Copy>(
    img: &mut RgbImage,
    (x0, y0): (i64, i64),
    scale: i64,
    (cols, rows): (usize, usize),
    labels: &[T],
    line_px: i64,
    ink: [[u8; 3]; 2],
    dash_px: i64,
) {
    if labels.len() != cols * rows {
        return;
    }
    let half = line_px / 2;
    let dash = dash_px.max(1);
    let (right, bottom) = (x0 + cols as i64 * scale, y0 + rows as i64 * scale);
    let mut line = |x: i64, y: i64, w: i64, h: i64| {
        for py in y.max(y0)..(y + h).min(bottom).min(img.height() as i64) {
            for px in x.max(x0)..(x + w).min(right).min(img.width() as i64) {
                let rgb = ink[(((px - x0) + (py - y0)) / dash % 2) as usize];
                img.put_pixel(px as u32, py as u32, Rgb(rgb));
            }
        }
    };
    for r in 0..rows {
        for c in 0..cols {
            let here = labels[c + cols * r];
            let (px, py) = (x0 + c as i64 * scale, y0 + r as i64 * scale);
            if c + 1 < cols && labels[c + 1 + cols * r] != here {
                line(px + scale - half, py - half, line_px, scale + line_px);
            }
            if r + 1 < rows && labels[c + cols * (r + 1)] != here {
                line(px - half, py + scale - half, scale + line_px, line_px);
            }
        }
    }
}

/// Whether a `cols × rows` grid of `labels` has two edge-sharing cells that differ (so
/// [`outlines`] draws something).
pub fn has_boundary<T: PartialEq>(labels: &[T], cols: usize, rows: usize) -> bool {
    (0..rows).any(|r| {
        (0..cols).any(|c| {
            let here = &labels[c + cols * r];
            (c + 1 < cols && labels[c + 1 + cols * r] != *here)
                || (r + 1 < rows && labels[c + cols * (r + 1)] != *here)
        })
    })
}

/// Darkens the rectangle (x0, y0, w, h) towards black by `amount` ∈ [0, 1].
pub(crate) fn shade(img: &mut RgbImage, x0: i64, y0: i64, w: i64, h: i64, amount: f64) {
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    for y in y0.max(0)..(y0 + h).min(ih) {
        for x in x0.max(0)..(x0 + w).min(iw) {
            blend(img, x as u32, y as u32, [0, 0, 0], amount);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polyline_is_antialiased_and_clipped() {
        let mut img = RgbImage::from_pixel(40, 20, Rgb([255, 255, 255]));
        polyline(
            &mut img,
            &[(2.0, 2.0), (38.0, 17.0)],
            3.0,
            [0, 0, 0],
            (0.0, 0.0, 30.0, 20.0),
        );
        let levels: std::collections::BTreeSet<u8> = img.pixels().map(|p| p.0[0]).collect();
        assert!(
            levels.contains(&0) && levels.len() > 5,
            "solid core and soft edges"
        );
        assert!(
            (30..40).all(|x| (0..20).all(|y| img.get_pixel(x, y).0 == [255; 3])),
            "clipped"
        );
    }

    #[test]
    fn outlines_follow_label_edges() {
        // 3 × 2 cells, 4 px each: the left column differs from the rest.
        let labels = [1u8, 2, 2, 1, 2, 2];
        let mut img = RgbImage::from_pixel(12, 8, Rgb([0, 0, 0]));
        outlines(&mut img, (0, 0), 4, (3, 2), &labels, 2, [[255; 3]; 2], 4);
        // The edge x = 4 is drawn on both rows (pixels 3 and 4), nothing else.
        for y in 0..8 {
            for x in 0..12 {
                let lit = img.get_pixel(x, y).0 == [255; 3];
                assert_eq!(lit, x == 3 || x == 4, "pixel ({x}, {y})");
            }
        }
        assert!(has_boundary(&labels, 3, 2));
        // Dashed: both colours along the line, 3 px dashes.
        let mut img = RgbImage::from_pixel(12, 8, Rgb([9, 9, 9]));
        outlines(
            &mut img,
            (0, 0),
            4,
            (3, 2),
            &labels,
            1,
            [[0; 3], [255; 3]],
            3,
        );
        let column: Vec<u8> = (0..8).map(|y| img.get_pixel(4, y).0[0]).collect();
        assert_eq!(column, vec![255, 255, 0, 0, 0, 255, 255, 255]);
        assert!(!has_boundary(&[7u8; 6], 3, 2));
    }

    #[test]
    fn dashes_alternate() {
        let d = dashes(&[(0.0, 0.0), (100.0, 0.0)], 10.0, 5.0);
        assert_eq!(d.len(), 7);
        assert_eq!(d[0], vec![(0.0, 0.0), (10.0, 0.0)]);
        assert_eq!(d[1][0], (15.0, 0.0));
    }
}
