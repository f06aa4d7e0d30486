//! Plots of a sweep: a dose–response line chart (a metric against one axis, one line per
//! combination of the other axes) and a heat map over two axes with a colour bar.

use image::{Rgb, RgbImage};

use super::gather::ResultRow;
use crate::chart::colormap;
use crate::chart::text::TextRenderer;
use crate::chart::{
    encode_png, line_chart_files, line_chart_png, pt_to_px, ChartFiles, ChartSpec, PlotError,
    Series, DEFAULT_DPI,
};
use crate::config::Colormap;

/// The numeric value of `key` in a row, if it has one.
fn axis_number(row: &ResultRow, key: &str) -> Option<f64> {
    row.assignments
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.parse::<f64>().ok())
}

/// True when the values are positive and span at least 10× (the dose axis is then
/// logarithmic: doses are chosen in steps of a factor, and a linear axis crowds the low
/// ones into its first tenth).
pub fn wants_log(values: &[f64]) -> bool {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    lo > 0.0 && hi / lo >= 10.0
}

/// Unit suffixes of config keys, longest first: `diffusion_um2_per_s` → (`diffusion`,
/// `µm²/s`).
const KEY_UNITS: &[(&str, &str)] = &[
    ("_um2_per_s", "µm²/s"),
    ("_um_per_s", "µm/s"),
    ("_per_s", "1/s"),
    ("_per_h", "1/h"),
    ("_mm", "mM"),
    ("_um", "µm"),
    ("_nm", "nm"),
    ("_s", "s"),
];

/// `name (unit)` from a key's last segment: `amount_mm` → `amount (mM)`, underscores as
/// spaces.
fn words_with_unit(field: &str) -> String {
    for (suffix, unit) in KEY_UNITS {
        if let Some(stem) = field.strip_suffix(suffix) {
            return format!("{} ({unit})", stem.replace('_', " "));
        }
    }
    field.replace('_', " ")
}

/// A readable axis title for a swept config key, using the resolved scenario of one of
/// the sweep's runs where it knows more (the species a dose is of, a parameter's unit):
/// `dosing[0].amount_mm` → `NP_Fe dose (mM)`, `parameters.k_d_Fe.value` → `k_d_Fe (1/s)`,
/// `species.O2.diffusion_um2_per_s` → `O2 diffusion (µm²/s)`; any other key is its last
/// segment with its unit (`grid.voxel_um` → `voxel (µm)`). No title contains the raw key.
pub fn axis_title(key: &str, resolved: Option<&toml::Table>) -> String {
    // The string at `path` in the resolved scenario (table keys, array indices).
    let as_str = |path: &[&str]| -> Option<String> {
        let (first, rest) = path.split_first()?;
        let mut v = resolved?.get(*first)?;
        for p in rest {
            v = match (p.parse::<usize>(), v) {
                (Ok(i), toml::Value::Array(a)) => a.get(i)?,
                (_, toml::Value::Table(t)) => t.get(*p)?,
                _ => return None,
            };
        }
        v.as_str().map(str::to_string)
    };
    let segments: Vec<&str> = key.split('.').collect();
    if let Some(index) = segments[0]
        .strip_prefix("dosing[")
        .and_then(|r| r.strip_suffix(']'))
    {
        let dose = match as_str(&["dosing", index, "species"]) {
            Some(species) => format!("{species} dose"),
            None => format!("dose {}", index.parse::<usize>().map_or(0, |i| i + 1)),
        };
        let field = segments.get(1).copied().unwrap_or("");
        return match field {
            "amount_mm" => format!("{dose} (mM)"),
            _ => format!("{dose} {}", words_with_unit(field)),
        };
    }
    match segments.as_slice() {
        ["parameters", name, rest @ ..] if rest.is_empty() || rest == ["value"] => {
            match as_str(&["parameters", name, "unit"]).as_deref() {
                Some("1") | None => (*name).to_string(),
                Some(unit) => format!("{name} ({unit})"),
            }
        }
        ["species" | "plasma", name, .., last] => format!("{name} {}", words_with_unit(last)),
        [.., last] => words_with_unit(last),
        [] => String::new(),
    }
}

/// A readable title of a gathered metric, with its unit (see [`super::gather::METRICS`]).
pub fn metric_title(metric: &str) -> String {
    match metric {
        "final_viable_fraction_tumour" => "tumour viable fraction at the end",
        "final_mean_viab_tumour" => "tumour mean viab at the end",
        "time_to_50pct_kill_s" => "time to 50 % kill (s)",
        "peak_OH_mM_tumour" => "tumour peak OH· (mM)",
        "auc_OH_mM_s_tumour" => "tumour OH· exposure (mM·s)",
        "mean_pH_tumour_final" => "tumour mean pH at the end",
        "wall_time_s" => "wall time (s)",
        other => return words_with_unit(other),
    }
    .to_string()
}

/// The range a metric can take when it has one: fractions and mean viab lie in [0, 1], and a
/// plot of them on that scale does not turn a fall from 0.96 to 0.64 into one across the
/// whole axis. `None`: the axis follows the data.
pub fn metric_bounds(metric: &str) -> Option<(f64, f64)> {
    match metric {
        "final_viable_fraction_tumour" | "final_mean_viab_tumour" => Some((0.0, 1.0)),
        _ => None,
    }
}

/// A file-name-safe form of an axis key: `dosing[0].amount_mm` → `dosing_0_.amount_mm`.
pub fn safe_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The dose–response chart: `metric` of the complete runs against the numeric axis `x`,
/// a marker at every run, one line per combination of the other axes (labelled
/// `title = value, …`), on a log x axis when the x values span 10× or more ([`wants_log`]).
/// Axis titles are [`axis_title`]s (`resolved`: the resolved scenario of one of the runs)
/// and [`metric_title`]s. `None` when no complete run has both numbers.
pub fn dose_response_chart(
    rows: &[ResultRow],
    keys: &[String],
    x: &str,
    metric: &str,
    resolved: Option<&toml::Table>,
) -> Option<(ChartSpec, Vec<Series>)> {
    let xs: Vec<f64> = rows.iter().filter_map(|r| axis_number(r, x)).collect();
    let log_x = wants_log(&xs);
    let y_title = metric_title(metric);
    let mut series: Vec<Series> = Vec::new();
    for r in rows {
        let (Some(xv), Some(&yv)) = (axis_number(r, x), r.metrics.get(metric)) else {
            continue;
        };
        if !yv.is_finite() {
            continue; // no value (time_to_50pct_kill_s of a run that never got there)
        }
        let label: Vec<String> = r
            .assignments
            .iter()
            .filter(|(k, _)| k != x && keys.contains(k))
            .map(|(k, v)| format!("{} = {v}", axis_title(k, resolved)))
            .collect();
        let label = if label.is_empty() {
            y_title.clone()
        } else {
            label.join(", ")
        };
        match series.iter_mut().find(|s| s.label == label) {
            Some(s) => s.points.push((xv, yv)),
            None => series.push(Series {
                label,
                points: vec![(xv, yv)],
            }),
        }
    }
    if series.is_empty() {
        return None;
    }
    for s in &mut series {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let x_title = axis_title(x, resolved);
    let mut spec = ChartSpec::new(&format!("{y_title} against {x_title}"), &x_title, &y_title)
        .with_size_in(6.0, 3.5, DEFAULT_DPI)
        .with_log_x(log_x)
        .with_markers();
    if let Some((low, high)) = metric_bounds(metric) {
        spec = spec.with_y_range(low, high);
    }
    Some((spec, series))
}

/// [`dose_response_chart`] as PNG bytes.
pub fn dose_response_png(
    rows: &[ResultRow],
    keys: &[String],
    x: &str,
    metric: &str,
    resolved: Option<&toml::Table>,
) -> Result<Option<Vec<u8>>, PlotError> {
    match dose_response_chart(rows, keys, x, metric, resolved) {
        Some((spec, series)) => line_chart_png(&spec, &series).map(Some),
        None => Ok(None),
    }
}

/// [`dose_response_chart`] as PNG, SVG and PDF.
pub fn dose_response_files(
    rows: &[ResultRow],
    keys: &[String],
    x: &str,
    metric: &str,
    resolved: Option<&toml::Table>,
) -> Result<Option<ChartFiles>, PlotError> {
    match dose_response_chart(rows, keys, x, metric, resolved) {
        Some((spec, series)) => line_chart_files(&spec, &series).map(Some),
        None => Ok(None),
    }
}

/// A heat map of `metric` over the axes `x` (columns) and `y` (rows, first value at the
/// bottom), one cell per pair of values (the mean over the other axes), viridis with a
/// colour bar; cells without a value are light grey. Titles as [`dose_response_chart`]'s.
/// `None` when nothing has a value.
pub fn heat_map_png(
    rows: &[ResultRow],
    x: &str,
    y: &str,
    metric: &str,
    resolved: Option<&toml::Table>,
) -> Result<Option<Vec<u8>>, PlotError> {
    let (x_title, y_title) = (axis_title(x, resolved), axis_title(y, resolved));
    let value_of = |r: &ResultRow, k: &str| {
        r.assignments
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.clone())
    };
    let mut x_vals: Vec<String> = Vec::new();
    let mut y_vals: Vec<String> = Vec::new();
    for r in rows {
        if let (Some(a), Some(b)) = (value_of(r, x), value_of(r, y)) {
            if !x_vals.contains(&a) {
                x_vals.push(a);
            }
            if !y_vals.contains(&b) {
                y_vals.push(b);
            }
        }
    }
    let sort = |v: &mut Vec<String>| {
        if v.iter().all(|s| s.parse::<f64>().is_ok()) {
            v.sort_by(|a, b| {
                a.parse::<f64>()
                    .unwrap()
                    .total_cmp(&b.parse::<f64>().unwrap())
            });
        }
    };
    sort(&mut x_vals);
    sort(&mut y_vals);
    let (nx, ny) = (x_vals.len(), y_vals.len());
    let mut sum = vec![(0.0, 0usize); nx * ny];
    for r in rows {
        let (Some(a), Some(b), Some(&v)) = (value_of(r, x), value_of(r, y), r.metrics.get(metric))
        else {
            continue;
        };
        if !v.is_finite() {
            continue;
        }
        let i = x_vals.iter().position(|s| *s == a).unwrap();
        let j = y_vals.iter().position(|s| *s == b).unwrap();
        sum[j * nx + i].0 += v;
        sum[j * nx + i].1 += 1;
    }
    let cells: Vec<Option<f64>> = sum
        .iter()
        .map(|&(s, n)| (n > 0).then(|| s / n as f64))
        .collect();
    let present: Vec<f64> = cells.iter().flatten().copied().collect();
    if present.is_empty() {
        return Ok(None);
    }
    let (mut lo, mut hi) = (
        present.iter().copied().fold(f64::INFINITY, f64::min),
        present.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    if let Some(bounds) = metric_bounds(metric) {
        (lo, hi) = bounds;
    }
    if hi <= lo {
        hi = lo + lo.abs().max(1e-12) * 1e-6;
    }

    let dpi = DEFAULT_DPI;
    let text = TextRenderer::new();
    let px = |pt: f64| pt_to_px(pt, dpi) as f32;
    let (tick_px, label_px, title_px) = (px(7.0), px(8.0), px(9.0));
    let ink = [0u8, 0, 0];
    let fmt = |s: &str| match s.parse::<f64>() {
        Ok(v) if format!("{v}").len() <= 8 => format!("{v}"),
        Ok(v) => format!("{v:.3e}"),
        Err(_) => s.to_string(),
    };
    let y_labels: Vec<String> = y_vals.iter().map(|s| fmt(s)).collect();
    let x_labels: Vec<String> = x_vals.iter().map(|s| fmt(s)).collect();
    let y_label_w = y_labels
        .iter()
        .map(|s| text.width(s, tick_px))
        .fold(0.0f32, f32::max);
    let cell = (px(36.0) as u32).max(20);
    let left = (text.line_height(label_px) + y_label_w + px(10.0)) as u32;
    let top = (text.line_height(title_px) + text.line_height(label_px) + px(8.0)) as u32;
    let plot_w = cell * nx as u32;
    let plot_h = cell * ny as u32;
    let bar_gap = px(10.0) as u32;
    let bar_w = px(10.0) as u32;
    let bar_labels = [lo, hi].map(|v| format!("{v:.4}"));
    let bar_label_w = bar_labels
        .iter()
        .map(|s| text.width(s, tick_px))
        .fold(0.0f32, f32::max) as u32;
    let title = format!("{} over {x_title} × {y_title}", metric_title(metric));
    let width = (left + plot_w + bar_gap + bar_w + px(4.0) as u32 + bar_label_w + px(8.0) as u32)
        .max(text.width(&title, title_px) as u32 + px(8.0) as u32);
    let bottom = (text.line_height(tick_px) * 2.5 + text.line_height(label_px) + px(8.0)) as u32;
    let height = top + plot_h + bottom;
    let mut img = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    text.draw(&mut img, px(4.0), px(3.0), title_px, &title, ink);
    for j in 0..ny {
        for i in 0..nx {
            let rgb = match cells[j * nx + i] {
                Some(v) => colormap::map_value(Colormap::Viridis, v, lo, hi),
                None => [220, 220, 220],
            };
            // Row 0 (the smallest y) at the bottom.
            let y0 = top + plot_h - (j as u32 + 1) * cell;
            let x0 = left + i as u32 * cell;
            for yy in y0..y0 + cell {
                for xx in x0..x0 + cell {
                    let edge = yy == y0 || xx == x0;
                    img.put_pixel(xx, yy, Rgb(if edge { [255, 255, 255] } else { rgb }));
                }
            }
        }
    }
    for (j, l) in y_labels.iter().enumerate() {
        let yc = top + plot_h - j as u32 * cell - cell / 2;
        let w = text.width(l, tick_px);
        let t = yc as f32 - text.line_height(tick_px) / 2.0;
        text.draw(&mut img, left as f32 - w - px(3.0), t, tick_px, l, ink);
    }
    for (i, l) in x_labels.iter().enumerate() {
        let xc = left + i as u32 * cell + cell / 2;
        let w = text.width(l, tick_px);
        // Alternate rows so long labels of narrow cells do not overlap.
        let row = if nx > 1 && w > cell as f32 {
            (i % 2) as f32
        } else {
            0.0
        };
        let t = (top + plot_h) as f32 + px(2.0) + row * text.line_height(tick_px);
        text.draw(&mut img, xc as f32 - w / 2.0, t, tick_px, l, ink);
    }
    let xl_w = text.width(&x_title, label_px);
    text.draw(
        &mut img,
        left as f32 + plot_w as f32 / 2.0 - xl_w / 2.0,
        (top + plot_h) as f32 + px(4.0) + 2.0 * text.line_height(tick_px),
        label_px,
        &x_title,
        ink,
    );
    // The y axis title, horizontal above the row labels (no rotated text renderer).
    text.draw(
        &mut img,
        px(4.0),
        top as f32 - text.line_height(label_px) - px(2.0),
        label_px,
        &format!("↑ {y_title}"),
        ink,
    );
    // Colour bar: hi at the top, lo at the bottom.
    let bx = left + plot_w + bar_gap;
    for yy in 0..plot_h {
        let t = 1.0 - yy as f64 / (plot_h.max(2) - 1) as f64;
        let rgb = colormap::rgb(Colormap::Viridis, t);
        for xx in bx..bx + bar_w {
            img.put_pixel(xx, top + yy, Rgb(rgb));
        }
    }
    let lx = (bx + bar_w) as f32 + px(3.0);
    text.draw(&mut img, lx, top as f32, tick_px, &bar_labels[1], ink);
    text.draw(
        &mut img,
        lx,
        (top + plot_h) as f32 - text.line_height(tick_px),
        tick_px,
        &bar_labels[0],
        ink,
    );
    encode_png(&img, dpi).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn row(x: &str, y: &str, v: Option<f64>) -> ResultRow {
        let mut metrics = BTreeMap::new();
        if let Some(v) = v {
            metrics.insert("final_viable_fraction_tumour", v);
        }
        ResultRow {
            run_id: format!("r-{x}-{y}"),
            index: 0,
            status: if v.is_some() { "complete" } else { "failed" }.into(),
            assignments: vec![("dose_mm".into(), x.into()), ("k_per_s".into(), y.into())],
            metrics,
        }
    }

    #[test]
    fn heat_map_and_dose_response_render() {
        let mut rows = Vec::new();
        for (i, x) in ["0.01", "0.1", "1.0", "10.0"].iter().enumerate() {
            for (j, y) in ["0.0001", "0.001", "0.01"].iter().enumerate() {
                let v = (i == 3 && j == 0)
                    .then_some(())
                    .map_or(Some(1.0 - 0.08 * (i * 3 + j) as f64), |_| None);
                rows.push(row(x, y, v));
            }
        }
        let png = heat_map_png(
            &rows,
            "dose_mm",
            "k_per_s",
            "final_viable_fraction_tumour",
            None,
        )
        .unwrap()
        .unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert!(img.width() > 300 && img.height() > 150);
        if let Ok(dir) = std::env::var("IONFIELD_PLOT_DUMP") {
            std::fs::write(format!("{dir}/heat_map.png"), &png).unwrap();
        }
        let keys = vec!["dose_mm".to_string(), "k_per_s".to_string()];
        let png = dose_response_png(
            &rows,
            &keys,
            "dose_mm",
            "final_viable_fraction_tumour",
            None,
        )
        .unwrap()
        .unwrap();
        if let Ok(dir) = std::env::var("IONFIELD_PLOT_DUMP") {
            std::fs::write(format!("{dir}/dose_response.png"), &png).unwrap();
        }
        assert!(wants_log(&[0.01, 10.0]) && wants_log(&[0.01, 1.0]) && !wants_log(&[1.0, 5.0]));
        assert_eq!(safe_name("dosing[0].amount_mm"), "dosing_0_.amount_mm");
    }

    #[test]
    fn fractions_are_plotted_on_zero_to_one_and_other_metrics_follow_their_data() {
        let rows: Vec<ResultRow> = [("0.1", 0.96), ("1.0", 0.80), ("5.0", 0.64)]
            .iter()
            .map(|&(x, v)| row(x, "0.001", Some(v)))
            .collect();
        let keys = vec!["dose_mm".to_string()];
        let (spec, _) = dose_response_chart(
            &rows,
            &keys,
            "dose_mm",
            "final_viable_fraction_tumour",
            None,
        )
        .unwrap();
        assert_eq!(spec.y_range, Some((0.0, 1.0)));
        let mut rows = rows;
        for r in &mut rows {
            let v = r.metrics.remove("final_viable_fraction_tumour").unwrap();
            r.metrics.insert("peak_OH_mM_tumour", v * 1e-12);
        }
        let (spec, _) =
            dose_response_chart(&rows, &keys, "dose_mm", "peak_OH_mM_tumour", None).unwrap();
        assert_eq!(spec.y_range, None);
    }
}
