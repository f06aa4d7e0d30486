use super::Slice;
use super::*;
use crate::config::Colormap;
use image::ImageFormat;

const BG: [u8; 3] = [255, 255, 255];

fn decode(bytes: &[u8]) -> RgbImage {
    image::load_from_memory_with_format(bytes, ImageFormat::Png)
        .expect("a valid PNG")
        .into_rgb8()
}

/// Damped oscillation and decay over 600 s: three probes of an O2-like field, mM.
fn o2_series() -> Vec<Series> {
    let probe = |label: &str, base: f64, amp: f64, tau: f64| Series {
        label: label.to_string(),
        points: (0..=120)
            .map(|i| {
                let t = i as f64 * 5.0;
                (t, base + amp * (-t / tau).exp())
            })
            .collect(),
    };
    vec![
        probe("tumour centre", 0.004, 0.02, 150.0),
        probe("tumour rim", 0.015, 0.015, 200.0),
        probe("normal tissue", 0.045, 0.005, 300.0),
    ]
}

/// OH· spanning six decades (mM), with a zero that a log axis must skip.
fn oh_series() -> Vec<Series> {
    let probe = |label: &str, peak: f64| Series {
        label: label.to_string(),
        points: (0..=60)
            .map(|i| {
                let t = i as f64 * 10.0;
                let v = if i == 0 {
                    0.0
                } else {
                    peak * (t / 600.0).powi(3)
                };
                (t, v)
            })
            .collect(),
    };
    vec![probe("tumour centre", 2e-6), probe("normal tissue", 3e-9)]
}

/// Pixels of `img` inside (x0..x1, y0..y1) that are not background.
fn ink_in(img: &RgbImage, x0: u32, x1: u32, y0: u32, y1: u32) -> usize {
    let mut n = 0;
    for y in y0..y1.min(img.height()) {
        for x in x0..x1.min(img.width()) {
            if img.get_pixel(x, y).0 != BG {
                n += 1;
            }
        }
    }
    n
}

fn count_colour(img: &RgbImage, rgb: [u8; 3]) -> usize {
    img.pixels().filter(|p| p.0 == rgb).count()
}

#[test]
fn line_chart_png_has_size_dpi_lines_and_legend() {
    let spec = ChartSpec::new("O2 at three probes", "time [s]", "O2 [mM]");
    let bytes = line_chart_png(&spec, &o2_series()).expect("chart");
    assert_eq!(png_dpi(&bytes), Some(150.0));
    let img = decode(&bytes);
    assert_eq!(img.dimensions(), (spec.width_px, spec.height_px));
    assert_eq!(img.dimensions(), (525, 360), "3.5 × 2.4 in at 150 dpi");
    // Every series colour is drawn (solid lines, 3 px wide at 150 dpi).
    for (i, rgb) in OKABE_ITO.iter().take(3).enumerate() {
        let n = count_colour(&img, *rgb);
        assert!(n > 200, "series {i} colour {rgb:?}: {n} pixels");
    }
    // Axes, ticks and numbers: the left quarter (y labels) and the bottom band (x labels)
    // hold dark text pixels.
    let dark = |x0, x1, y0, y1| {
        let mut n = 0;
        for y in y0..y1 {
            for x in x0..x1 {
                if img.get_pixel(x, y).0.iter().all(|&c| c < 100) {
                    n += 1;
                }
            }
        }
        n
    };
    assert!(dark(0, 100, 30, 300) > 300, "y tick labels and title");
    assert!(dark(60, 400, 300, 360) > 300, "x tick labels and title");
    // The legend column (right of the axes) has text.
    assert!(dark(400, 525, 0, 200) > 100, "legend text");
}

/// The SVG and PDF of a chart: the PNG's layout at the same physical size, every text as
/// text (the PDF with the bundled font embedded), one polyline per series and legend
/// sample, data clipped to the plotting area.
#[test]
fn chart_files_give_svg_and_pdf_of_the_same_chart() {
    let spec = ChartSpec::new("O2 at three probes", "time [s]", "O2 [mM]");
    let series = o2_series();
    let files = line_chart_files(&spec, &series).expect("chart");
    assert_eq!(
        files.png,
        line_chart_png(&spec, &series).unwrap(),
        "the same PNG"
    );
    // SVG: 525 × 360 px at 150 dpi is 3.5 × 2.4 in.
    let svg = &files.svg;
    assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
    assert!(
        svg.contains(r#"width="3.5000in" height="2.4000in""#),
        "{}",
        &svg[..200]
    );
    assert!(svg.contains(r#"viewBox="0 0 525 360""#));
    for label in ["O2 at three probes", "time [s]", "O2 [mM]"]
        .into_iter()
        .chain(series.iter().map(|s| s.label.as_str()))
    {
        assert!(
            svg.contains(&format!(">{label}</text>")),
            "no text {label:?}"
        );
    }
    // Each series: its data line (clipped) and its legend sample (not clipped).
    for rgb in OKABE_ITO.iter().take(series.len()) {
        let stroke = format!(r##"stroke="#{:02x}{:02x}{:02x}""##, rgb[0], rgb[1], rgb[2]);
        let lines: Vec<&str> = svg.lines().filter(|l| l.contains(&stroke)).collect();
        assert_eq!(lines.len(), 2, "{stroke}: {lines:?}");
        assert_eq!(lines.iter().filter(|l| l.contains("clip-path")).count(), 1);
    }
    // PDF: one page of 3.5 × 2.4 in = 252 × 172.8 pt, DejaVu Sans embedded.
    let pdf = &files.pdf;
    assert!(pdf.starts_with(b"%PDF-"));
    let text = String::from_utf8_lossy(pdf);
    assert!(
        text.contains("/MediaBox [0 0 252 172.8]"),
        "{}",
        &text[..600.min(text.len())]
    );
    assert_eq!(
        text.matches("/Type /Page\n").count() + text.matches("/Type /Page ").count(),
        1
    );
    assert!(
        text.contains("DejaVuSans") && text.contains("/FontFile2"),
        "font embedded"
    );
}

/// The dark theme: dark background, light text, and the black series drawn in the ink
/// colour; the light theme is the default.
#[test]
fn dark_theme_chart_has_a_dark_background_and_light_text() {
    let series = o2_series();
    let light =
        decode(&line_chart_png(&ChartSpec::new("t", "time [s]", "O2 [mM]"), &series).unwrap());
    let spec = ChartSpec::new("t", "time [s]", "O2 [mM]").with_theme(Theme::DARK);
    let dark = decode(&line_chart_png(&spec, &series).unwrap());
    assert_eq!(light.get_pixel(1, 1).0, Theme::LIGHT.background);
    assert_eq!(dark.get_pixel(1, 1).0, Theme::DARK.background);
    let bright = dark
        .pixels()
        .filter(|p| p.0.iter().all(|&c| c > 200))
        .count();
    assert!(bright > 300, "light text and axes on dark: {bright} pixels");
    assert_eq!(Theme::DARK.data_colour([0, 0, 0]), Theme::DARK.ink);
    assert_eq!(Theme::DARK.data_colour(OKABE_ITO[0]), OKABE_ITO[0]);
    let svg = line_chart_files(&spec, &series).unwrap().svg;
    assert!(
        svg.contains(&format!(r#"fill="{}""#, "#f0f0f0")),
        "SVG text in the ink colour"
    );
}

#[test]
fn log_y_chart_draws_positive_values_only() {
    let spec = ChartSpec::new("", "time [s]", "OH [mM]").with_log_y(true);
    let img = line_chart(&spec, &oh_series()).expect("chart");
    let n0 = count_colour(&img, OKABE_ITO[0]);
    let n1 = count_colour(&img, OKABE_ITO[1]);
    assert!(n0 > 200 && n1 > 200, "both series drawn: {n0}, {n1}");
    // Empty and degenerate inputs still give a chart, not a panic.
    line_chart(&spec, &[]).expect("no series");
    let flat = Series {
        label: "flat".into(),
        points: vec![(0.0, 1.0), (1.0, 1.0), (2.0, f64::NAN), (3.0, 1.0)],
    };
    line_chart(&ChartSpec::new("", "t [s]", "x [mM]"), &[flat]).expect("flat");
}

/// Rows (top, bottom) of the pixels of colour `rgb`.
fn rows_of(img: &RgbImage, rgb: [u8; 3]) -> (u32, u32) {
    let rows: Vec<u32> = img
        .enumerate_pixels()
        .filter(|p| p.2 .0 == rgb)
        .map(|p| p.1)
        .collect();
    assert!(!rows.is_empty(), "colour {rgb:?} not drawn");
    (*rows.iter().min().unwrap(), *rows.iter().max().unwrap())
}

#[test]
fn a_fixed_y_range_keeps_a_small_change_small() {
    // A viability that falls by 1 %: on its own range it spans the plot's height; on the
    // fixed 0–1 axis it is a line near the top.
    let fall = Series {
        label: "tumour mean viab".into(),
        points: (0..=24)
            .map(|h| (h as f64, 1.0 - 0.01 * h as f64 / 24.0))
            .collect(),
    };
    let spec = ChartSpec::new("", "time [h]", "viab [1]");
    let auto = line_chart(&spec, std::slice::from_ref(&fall)).expect("chart");
    let fixed = line_chart(&spec.with_y_range(0.0, 1.0), &[fall]).expect("chart");
    let (a0, a1) = rows_of(&auto, OKABE_ITO[0]);
    let (f0, f1) = rows_of(&fixed, OKABE_ITO[0]);
    let h = auto.height();
    assert!(
        a1 - a0 > h / 2,
        "auto range: the 1 % fall spans rows {a0}–{a1} of {h}"
    );
    assert!(
        f1 - f0 < h / 20,
        "0–1 axis: the 1 % fall spans rows {f0}–{f1} of {h}"
    );
    assert!(
        f1 < h / 3,
        "0–1 axis: the line sits near the top (rows {f0}–{f1})"
    );
}

#[test]
fn a_series_on_top_of_another_still_shows_with_alternate_dashes() {
    // Two identical lines (a tissue's alive fraction and mean viab, both 1): solid, the
    // second drawn over the first hides it; with alternate dashes the first shows through
    // the gaps of the second.
    let flat = |label: &str| Series {
        label: label.into(),
        points: (0..=24).map(|h| (h as f64, 1.0)).collect(),
    };
    let pair = [flat("normal mean viab"), flat("normal alive")];
    let spec = ChartSpec::new("", "time [h]", "viab [1]").with_y_range(0.0, 1.03);
    let plain = line_chart(&spec.clone().with_size_in(3.5, 2.4, 150), &pair).expect("chart");
    let dashed = line_chart(
        &spec.with_alternate_dashes().with_size_in(3.5, 2.4, 150),
        &pair,
    )
    .expect("chart");
    // Pixels of (nearly) the first series' colour left of the legend, i.e. in the plot.
    let in_plot = |img: &RgbImage, rgb: [u8; 3]| {
        let legend_x = img.width() * 3 / 5;
        img.enumerate_pixels()
            .filter(|(x, _, p)| {
                *x < legend_x && (0..3).all(|c| (p.0[c] as i32 - rgb[c] as i32).abs() < 24)
            })
            .count()
    };
    let (hidden, shown) = (
        in_plot(&plain, OKABE_ITO[0]),
        in_plot(&dashed, OKABE_ITO[0]),
    );
    eprintln!("first series in the plot: {hidden} px hidden, {shown} px shown");
    assert!(
        shown > 4 * hidden.max(1),
        "first series: {hidden} px under a solid line, {shown} px under a dashed one"
    );
    assert!(in_plot(&dashed, OKABE_ITO[1]) > shown / 2);
}

#[test]
fn chart_size_follows_dpi() {
    let spec = ChartSpec::new("", "time [s]", "O2 [mM]").with_size_in(3.0, 2.0, 300);
    let bytes = line_chart_png(&spec, &o2_series()).expect("chart");
    assert_eq!(png_dpi(&bytes), Some(300.0));
    assert_eq!(decode(&bytes).dimensions(), (900, 600));
}

#[test]
fn chart_page_shares_one_legend() {
    let panels: Vec<ChartPanel> = ["O2 [mM]", "glucose [mM]", "pH", "OH [mM]"]
        .iter()
        .map(|y| ChartPanel {
            spec: ChartSpec::new("", "time [s]", y)
                .with_size_in(2.5, 1.8, 150)
                .with_log_y(y.starts_with("OH")),
            series: if y.starts_with("OH") {
                let mut s = oh_series();
                s.push(Series {
                    label: "normal tissue".into(),
                    points: vec![(0.0, 1e-9), (600.0, 2e-9)],
                });
                s[1].label = "tumour rim".into();
                s
            } else {
                o2_series()
            },
        })
        .collect();
    let img = chart_page(&panels, 2).expect("page");
    assert_eq!(img.height(), 2 * 270);
    assert!(img.width() > 2 * 375, "a legend column right of the panels");
    for rgb in OKABE_ITO.iter().take(3) {
        assert!(count_colour(&img, *rgb) > 400);
    }
}

fn gaussian_slice(w: usize, h: usize, cx: f64, cy: f64, peak: f32, base: f32) -> Vec<f32> {
    let mut v = Vec::with_capacity(w * h);
    for row in 0..h {
        for col in 0..w {
            let (dx, dy) = (col as f64 - cx, row as f64 - cy);
            let g = (-(dx * dx + dy * dy) / (2.0 * 64.0)).exp() as f32;
            v.push(base + peak * g);
        }
    }
    v
}

/// 3 fields × `n_times`, 48 × 32 voxels.
fn test_figure(n_times: usize) -> FigureSeries {
    let times: Vec<f64> = (0..n_times).map(|i| i as f64 * 300.0).collect();
    let fields = ["O2".to_string(), "pH".to_string(), "OH".to_string()];
    let mut fig = FigureSeries::new(&fields, &times, 48, 32);
    for (c, &t) in times.iter().enumerate() {
        let f = c as f32 / n_times.max(1) as f32;
        let o2 = Slice {
            width: 48,
            height: 32,
            values: gaussian_slice(48, 32, 30.0, 20.0, -0.04 * (1.0 - f), 0.05),
        };
        let ph = Slice {
            width: 48,
            height: 32,
            values: gaussian_slice(48, 32, 20.0, 12.0, -0.6 * f, 7.4),
        };
        let oh = Slice {
            width: 48,
            height: 32,
            values: gaussian_slice(48, 32, 24.0, 16.0, if c == 0 { 5e-7 } else { 2e-6 }, 0.0),
        };
        assert!(fig.keep("O2", "mM", Some((0.0, 0.06)), t, &o2));
        assert!(fig.keep("pH", "pH", Some((6.5, 7.5)), t, &ph));
        assert!(fig.keep("OH", "mM", None, t, &oh));
    }
    assert!(!fig.keep(
        "H2O2",
        "mM",
        None,
        0.0,
        &Slice {
            width: 48,
            height: 32,
            values: vec![0.0; 48 * 32]
        }
    ));
    assert!(!fig.keep(
        "O2",
        "mM",
        None,
        17.0,
        &Slice {
            width: 48,
            height: 32,
            values: vec![0.0; 48 * 32]
        }
    ));
    fig
}

#[test]
fn figure_series_layout_scale_bar_and_colour_bars() {
    let fig = test_figure(3);
    let style = FigureStyle::new(
        Colormap::Viridis,
        150,
        10.0,
        "slice z = 16 (165 µm); x →, y ↑",
    );
    let img = figure_series(&fig, &style);
    let bytes = encode_png(&img, style.dpi).expect("encode");
    assert_eq!(png_dpi(&bytes), Some(150.0));
    let back = decode(&bytes);
    assert_eq!(back.dimensions(), img.dimensions());
    // Panels: 48 voxels × 4 px (225 px / 48 = 4.7 → 4, 192 px ≥ 80 % of 225).
    assert_eq!(figure::voxel_scale(48, 32, 1.5, 150), 4);
    assert_eq!(
        figure::voxel_scale(120, 120, 1.5, 150),
        2,
        "1 px would be 53 %"
    );
    assert_eq!(figure::voxel_scale(1000, 10, 1.5, 150), 1);
    // Size follows columns: one more time adds a panel and a gap, exactly.
    let wider = figure_series(&test_figure(4), &style);
    let gap = pt_to_px(3.0, 150).round() as u32;
    assert_eq!(wider.width() - img.width(), 48 * 4 + gap);
    assert_eq!(wider.height(), img.height());
    // … and rows: one more field adds a panel height and a row gap, exactly.
    let mut taller = fig.clone();
    let mut extra = taller.rows[0].clone();
    extra.field = "viab".into();
    taller.rows.push(extra);
    let row_gap = pt_to_px(6.0, 150).round() as u32;
    let taller = figure_series(&taller, &style);
    assert_eq!(taller.height() - img.height(), 32 * 4 + row_gap);
    // At 300 dpi: 9 px per voxel (450 px / 48 = 9.4; 4 at 150 dpi), fonts and gaps
    // doubled, so about twice as wide (panels 2.25×).
    assert_eq!(figure::voxel_scale(48, 32, 1.5, 300), 9);
    let big = figure_series(
        &fig,
        &FigureStyle {
            dpi: 300,
            ..style.clone()
        },
    );
    let ratio = big.width() as f64 / img.width() as f64;
    assert!(
        (1.9..2.3).contains(&ratio),
        "300 vs 150 dpi width ratio {ratio}"
    );
    // Scale bar: without a voxel size there is none; the difference is a white bar of
    // 100 µm (10 voxels × 4 px) and its label on a dark box, in the bottom-left panel.
    let bare = figure_series(
        &fig,
        &FigureStyle {
            voxel_um: 0.0,
            ..style.clone()
        },
    );
    let (mut n_diff, mut n_white, mut max_x, mut min_y) = (0, 0, 0, u32::MAX);
    for (x, y, p) in img.enumerate_pixels() {
        if p != bare.get_pixel(x, y) {
            n_diff += 1;
            n_white += (p.0 == [255, 255, 255]) as usize;
            max_x = max_x.max(x);
            min_y = min_y.min(y);
        }
    }
    assert!(
        n_white >= 40 * 3,
        "white bar and text: {n_white} of {n_diff} changed pixels"
    );
    assert!(max_x < img.width() / 4, "in the first column (x ≤ {max_x})");
    assert!(
        min_y > img.height() * 2 / 3,
        "in the last row (y ≥ {min_y})"
    );
    // Physical size sensible for a paper: 3 panels of 1.28 in + labels.
    let w_in = img.width() as f64 / 150.0;
    assert!((4.0..6.0).contains(&w_in), "width {w_in} in");
}

#[test]
fn figure_colour_bars_are_monotone_and_panels_share_the_row_range() {
    let fig = test_figure(3);
    let style = FigureStyle::new(Colormap::Grayscale, 150, 10.0, "caption");
    let img = figure_series(&fig, &style);
    // Find the colour bars: columns right of the panels whose pixels are gray levels
    // running from white (top) to black (bottom) over a panel height (32 × 4 = 128 px).
    let ph = 128u32;
    let mut bar_x = None;
    'search: for x in (img.width() / 2)..img.width() {
        for y0 in 0..img.height().saturating_sub(ph) {
            let top = img.get_pixel(x, y0 + 1).0;
            let bottom = img.get_pixel(x, y0 + ph - 2).0;
            if top[0] > 245 && bottom[0] < 10 && top[0] == top[1] && bottom == [bottom[0]; 3] {
                // Monotone non-increasing brightness down the bar.
                let col: Vec<u8> = (y0 + 1..y0 + ph - 1)
                    .map(|y| img.get_pixel(x, y).0[0])
                    .collect();
                if col.windows(2).all(|w| w[1] <= w[0]) && col[0] > col[col.len() - 1] {
                    bar_x = Some((x, y0));
                    break 'search;
                }
            }
        }
    }
    let (bx, by) = bar_x.expect("a monotone colour bar (white on top, black at the bottom)");
    // Tick numbers right of the bar.
    let right = ink_in(&img, bx + 10, img.width(), by, by + ph);
    assert!(right > 50, "colour-bar numbers: {right} ink pixels");
    // The OH row has an auto range over the row: its last panel reaches the top (white)
    // and every panel has the lowest value (black) somewhere.
    let whites = count_colour(&img, [255, 255, 255]);
    assert!(whites > 0);
}

#[test]
fn figure_missing_panels_are_grey_and_due_after_the_last_time() {
    let mut fig = FigureSeries::new(&["O2".to_string()], &[0.0, 60.0], 8, 8);
    assert!(!fig.is_due(0.0));
    assert!(fig.is_due(60.0));
    let sl = Slice {
        width: 8,
        height: 8,
        values: vec![0.03; 64],
    };
    assert!(fig.keep("O2", "mM", None, 60.0, &sl));
    let img = figure_series(&fig, &FigureStyle::new(Colormap::Viridis, 72, 5.0, ""));
    assert!(
        count_colour(&img, [225, 225, 225]) > 100,
        "the missing t = 0 panel is grey"
    );
    // Constant row: a usable range, no NaN colour.
    let bar = fig.row_bar(0, crate::config::ColourScale::Auto);
    assert!(bar.hi > bar.lo && !bar.log);
    assert_eq!(count_colour(&img, crate::chart::colormap::NAN_RGB), 0);
    // Serialisable (checkpoints).
    let json = serde_json::to_string(&fig).expect("serialise");
    let back: FigureSeries = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, fig);
}

/// Pixels without tissue cells are white in the rows of cell fields (`viab`), not in the
/// others, and only where the slice has such pixels; a two-line caption adds one line.
#[test]
fn figure_draws_voxels_without_cells_white_in_cell_rows_only() {
    let fields = ["O2".to_string(), "viab".to_string()];
    let mut fig = FigureSeries::new(&fields, &[0.0], 8, 8);
    let slice = |v: f32| Slice {
        width: 8,
        height: 8,
        values: vec![v; 64],
    };
    assert!(fig.keep("O2", "mM", Some((0.0, 1.0)), 0.0, &slice(0.75)));
    assert!(fig.keep("viab", "1", Some((0.0, 1.0)), 0.0, &slice(0.25)));
    let style = FigureStyle::new(Colormap::Viridis, 72, 5.0, "one line");
    let plain = figure_series(&fig, &style);
    let o2_rgb = crate::chart::colormap::map_value(Colormap::Viridis, 0.75, 0.0, 1.0);
    let viab_rgb = crate::chart::colormap::map_value(Colormap::Viridis, 0.25, 0.0, 1.0);
    let (o2_px, viab_px) = (count_colour(&plain, o2_rgb), count_colour(&plain, viab_rgb));
    assert!(o2_px > 0 && viab_px > 0);
    // A mask without any blank pixel is not kept.
    fig.mark_no_tissue(vec![false; 64], &["viab"]);
    assert!(fig.no_tissue.is_none() && fig.rows_masked().is_empty());
    // 4 of the 64 voxels hold no cells.
    let mut blank = vec![false; 64];
    for ix in [0, 9, 18, 63] {
        blank[ix] = true;
    }
    fig.mark_no_tissue(blank, &["viab"]);
    assert_eq!(fig.rows_masked(), vec!["viab"]);
    let masked = figure_series(&fig, &style);
    assert_eq!(count_colour(&masked, o2_rgb), o2_px, "the O2 row changed");
    // Each blank voxel turns one square of panel pixels from the viab colour to white.
    let lost = viab_px - count_colour(&masked, viab_rgb);
    let side = ((lost / 4) as f64).sqrt() as usize;
    assert!(lost > 0 && side * side * 4 == lost, "{lost} pixels changed");
    assert_eq!(
        count_colour(&masked, NO_TISSUE_RGB),
        count_colour(&plain, NO_TISSUE_RGB) + lost
    );
    let two_lines = figure_series(
        &fig,
        &FigureStyle::new(Colormap::Viridis, 72, 5.0, "one\ntwo"),
    );
    assert!(two_lines.height() > masked.height());
    // Checkpoints carry the mask.
    let back: FigureSeries = serde_json::from_str(&serde_json::to_string(&fig).unwrap()).unwrap();
    assert_eq!(back, fig);
}

/// Writes example plots to `$IONFIELD_PLOT_EXAMPLES` (a folder) for looking at them:
/// `IONFIELD_PLOT_EXAMPLES=/tmp/plots cargo test --lib plot::tests::write_examples -- --ignored`.
#[test]
#[ignore = "writes example PNGs for inspection"]
fn write_examples() {
    let Ok(dir) = std::env::var("IONFIELD_PLOT_EXAMPLES") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("example folder");
    let spec = ChartSpec::new("O2 at three probes", "time [s]", "O2 [mM]");
    std::fs::write(
        dir.join("line_o2.png"),
        line_chart_png(&spec, &o2_series()).unwrap(),
    )
    .unwrap();
    let spec = ChartSpec::new("OH· (log scale)", "time [s]", "OH [mM]").with_log_y(true);
    std::fs::write(
        dir.join("line_oh_log.png"),
        line_chart_png(&spec, &oh_series()).unwrap(),
    )
    .unwrap();
    let spec = ChartSpec::new("O2 at 300 dpi", "time [s]", "O2 [mM]").with_size_in(3.5, 2.4, 300);
    std::fs::write(
        dir.join("line_o2_300dpi.png"),
        line_chart_png(&spec, &o2_series()).unwrap(),
    )
    .unwrap();
    let many: Vec<Series> = (0..10)
        .map(|k| Series {
            label: format!("probe {k}"),
            points: (0..=50)
                .map(|i| {
                    (
                        i as f64 * 12.0,
                        (k as f64 + 1.0) * (1.0 + (i as f64 / 8.0).sin()),
                    )
                })
                .collect(),
        })
        .collect();
    let spec = ChartSpec::new("ten series", "time [s]", "x [µM]");
    std::fs::write(
        dir.join("line_many.png"),
        line_chart_png(&spec, &many).unwrap(),
    )
    .unwrap();
    let panels: Vec<ChartPanel> = [
        ("O2 [mM]", false),
        ("glucose [mM]", false),
        ("pH", false),
        ("OH [mM]", true),
    ]
    .iter()
    .map(|&(y, log)| ChartPanel {
        spec: ChartSpec::new("", "time [s]", y)
            .with_size_in(2.6, 1.9, 150)
            .with_log_y(log),
        series: if log {
            let mut s = oh_series();
            s.insert(
                1,
                Series {
                    label: "tumour rim".into(),
                    points: (0..=60)
                        .map(|i| (i as f64 * 10.0, 1e-7 * (1.0 + i as f64)))
                        .collect(),
                },
            );
            s
        } else {
            o2_series()
        },
    })
    .collect();
    let page = chart_page(&panels, 2).unwrap();
    std::fs::write(dir.join("page.png"), encode_png(&page, 150).unwrap()).unwrap();
    let fig = test_figure(4);
    let style = FigureStyle::new(
        Colormap::Viridis,
        150,
        10.0,
        "slice z = 16 (165 µm); x →, y ↑",
    );
    std::fs::write(
        dir.join("figure_150.png"),
        encode_png(&figure_series(&fig, &style), 150).unwrap(),
    )
    .unwrap();
    let style = FigureStyle { dpi: 300, ..style };
    std::fs::write(
        dir.join("figure_300.png"),
        encode_png(&figure_series(&fig, &style), 300).unwrap(),
    )
    .unwrap();
}

#[test]
fn colour_bar_ticks_are_round_values_in_a_readable_unit() {
    let labels = |bar: ColourBar, unit: &str| -> Vec<(f64, String)> { bar.ticks(unit, 4, true) };
    // OH·: 2.85e-17 … 2.31e-12 mM reads in fM.
    let t = labels(ColourBar::linear(2.85e-17, 2.31e-12), "mM");
    let names: Vec<&str> = t.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(names, vec!["1 fM", "2 fM"]);
    assert!(t.iter().all(|&(p, _)| (0.0..=1.0).contains(&p)));
    // O2 over a fixed 0 … 0.06 mM: µM, the ends at the ends of the bar.
    let t = labels(ColourBar::linear(0.0, 0.06), "mM");
    assert_eq!(t.first().unwrap(), &(0.0, "0 µM".to_string()));
    assert_eq!(t.last().unwrap(), &(1.0, "60 µM".to_string()));
    // pH keeps its unit; a narrow range gets distinct labels inside it.
    let t = labels(ColourBar::linear(6.5, 7.5), "pH");
    assert!(t.iter().any(|(_, l)| l == "7.0 pH"), "{t:?}");
    let t = labels(ColourBar::linear(1.0001, 1.0002), "1");
    assert!(t.len() >= 2 && t.iter().all(|&(p, _)| (0.0..=1.0).contains(&p)));
    assert!(t.windows(2).all(|w| w[0].1 != w[1].1), "{t:?}");
    // A dimensionless field: bare numbers.
    let t = labels(ColourBar::linear(0.0, 1.0), "1");
    assert_eq!(t.last().unwrap().1, "1.0");
    // A time (time_of_death over a 4 h run) in h, at round hours.
    let t = labels(ColourBar::linear(0.0, 14_400.0), "s");
    let names: Vec<&str> = t.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(names, vec!["0 h", "1 h", "2 h", "3 h", "4 h"]);
    assert!((t[1].0 - 0.25).abs() < 1e-12);
    // Without the unit (the figure series, whose row label carries it).
    let t = ColourBar::linear(0.0, 0.06).ticks("mM", 4, false);
    assert_eq!(t.last().unwrap().1, "60");
}

/// The issue's figure test: a log colour scale is chosen for data spanning more than three
/// decades, and only then (under `colour_scale = "auto"`).
#[test]
fn auto_colour_scale_is_log_for_data_spanning_more_than_three_decades() {
    use crate::config::ColourScale;
    // OH· of a Fenton run: 2.85e-17 … 2.31e-12 mM, five decades.
    let bar = ColourBar::choose(ColourScale::Auto, 2.85e-17, 2.31e-12, Some(2.85e-17));
    assert!(bar.log, "{bar:?}");
    assert_eq!(
        (bar.lo, bar.hi),
        (1e-17, 5e-12),
        "bottom to a decade, top to 1-2-5"
    );
    let t = bar.ticks("mM", 4, true);
    let names: Vec<&str> = t.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "10⁻⁵ fM",
            "10⁻⁴ fM",
            "0.001 fM",
            "0.01 fM",
            "0.1 fM",
            "1 fM"
        ]
    );
    assert!(!bar.below, "no value lies below the bar");
    // Decades are evenly spaced on the bar.
    let gaps: Vec<f64> = t.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(gaps.iter().all(|g| (g - gaps[0]).abs() < 1e-12), "{gaps:?}");
    // Zeros (a dose outside the tumour) with positive values over 3.5 decades: log; the
    // zeros take the bottom colour.
    let bar = ColourBar::choose(ColourScale::Auto, 0.0, 8.0, Some(2.5e-3));
    assert!(bar.log && bar.lo == 1e-3 && bar.hi == 10.0, "{bar:?}");
    assert_eq!(bar.position(0.0), 0.0);
    assert_eq!(bar.position(10.0), 1.0);
    assert!((bar.position(0.1) - 0.5).abs() < 1e-12);
    let t = bar.ticks("mM", 4, true);
    assert_eq!(
        t.first().unwrap(),
        &(0.0, "≤ 0.001 mM".to_string()),
        "zeros lie below"
    );
    // Smaller values are clipped at five decades below the top.
    let bar = ColourBar::choose(ColourScale::Auto, 0.0, 1.0, Some(1e-20));
    assert!(bar.log && bar.lo == 1e-5, "{bar:?}");
    assert_eq!(bar.position(1e-9), 0.0);
    // Not log: 2.9 decades, negative values, or asked for linear.
    assert!(!ColourBar::choose(ColourScale::Auto, 0.0, 0.8, Some(0.001)).log);
    assert!(!ColourBar::choose(ColourScale::Auto, -1.0, 1e3, Some(1e-6)).log);
    assert!(!ColourBar::choose(ColourScale::Linear, 1e-17, 1e-12, Some(1e-17)).log);
    // "log" is honoured for a narrow range too, and falls back to linear without a
    // positive value.
    let bar = ColourBar::choose(ColourScale::Log, 0.02, 0.06, Some(0.02));
    assert!(bar.log && bar.lo == 0.01 && bar.hi == 0.1, "{bar:?}");
    assert!(!ColourBar::choose(ColourScale::Log, -2.0, 0.0, None).log);
    // A fixed range that the data pass says so at its ends; ticks too close give way.
    let bar = ColourBar::fixed(ColourScale::Auto, 7.0, 7.5).with_data(6.71, 7.6);
    assert!(!bar.log && bar.below && bar.above);
    let names: Vec<String> = bar.ticks("pH", 4, true).into_iter().map(|t| t.1).collect();
    assert_eq!(names, vec!["≤ 7.0 pH", "7.2 pH", "7.4 pH", "≥ 7.5 pH"]);
    let inside = ColourBar::fixed(ColourScale::Auto, 7.0, 7.5).with_data(7.1, 7.45);
    assert!(!inside.below && !inside.above);
    assert!(ColourBar::fixed(ColourScale::Auto, 1e-6, 1e-2).log);
    assert!(!ColourBar::fixed(ColourScale::Auto, 0.0, 1e-2).log);
    // pH (about 7) never spans decades.
    assert!(!ColourBar::choose(ColourScale::Auto, 6.6, 7.4, Some(6.6)).log);
}

/// The figure's PDF is the same bytes every time it is made (svg2pdf lists its images'
/// resources in hash-map order; `svg_to_pdf` sorts them), and its SVG holds one image per
/// panel and colour bar and the column headers as text.
#[test]
fn figure_series_pdf_is_deterministic() {
    let fig = test_figure(4);
    let style = FigureStyle::new(Colormap::Viridis, 150, 10.0, "slice z = 16");
    let svg = super::figure_series_svg(&fig, &style);
    assert_eq!(
        svg.matches("<image ").count(),
        fig.rows.len() * (fig.times_s.len() + 1)
    );
    let first = super::svg_to_pdf(&svg).expect("PDF");
    assert!(first.starts_with(b"%PDF-"));
    for _ in 0..3 {
        assert!(
            super::svg_to_pdf(&svg).expect("PDF") == first,
            "PDF bytes differ"
        );
    }
}
