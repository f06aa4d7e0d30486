//! `[output.figure]` (the multi-panel figure `plots/figure_series.png`): raw table →
//! [`FigureSpec`]. Errors name the dotted field and list what is allowed.

use serde::Deserialize;

use super::duration::{seconds_list, Duration};
use super::error::{did_you_mean, list, short, Error};
use super::scenario::{Axis, FigureSpec, TimeSpec};

/// `[output.figure]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFigure {
    /// Rows: names from `output.fields` (species, `pH`, MRI fields).
    pub fields: Vec<String>,
    /// Columns: output times, s (default: t = 0 and the output times nearest end/16, end/4
    /// and the end on a log scale, see `auto_columns`); or `times = ["0 h", "24 h"]` with
    /// units.
    pub times_s: Option<Vec<f64>>,
    pub times: Option<Vec<Duration>>,
    /// Slice along `output.slice_axis` (default: the middle one).
    pub slice_index: Option<i64>,
    /// Resolution, dots per inch (default 150).
    pub dpi: Option<i64>,
}

/// The automatic columns after t = 0 aim at end/ratio², end/ratio and the end.
const AUTO_COLUMN_RATIO: f64 = 4.0;

/// The figure's columns when none are given: t = 0, then the output times nearest (in
/// log time) to end/16 and end/4, then the end; all output times if there are at most 4.
/// After a dose at t = 0 a tissue changes fastest at first (the default's tumour loses
/// 60 % of its viability in the first 4 h of 24), so columns evenly spaced in time would
/// show three nearly equal late states and miss the kill. Each pick comes after the
/// previous one and leaves room for the rest, so there are always min(4, outputs) columns.
fn auto_columns(outputs: &[f64]) -> Vec<f64> {
    let n = outputs.len();
    if n <= 4 {
        return outputs.to_vec();
    }
    let end = outputs[n - 1];
    let mut picked = vec![0usize];
    for k in (1..=2usize).rev() {
        let target = end / AUTO_COLUMN_RATIO.powi(k as i32);
        let from = picked[picked.len() - 1] + 1;
        // Leave k output times for the picks still to come (the last is the end).
        let best = (from..n - k)
            .min_by(|&a, &b| {
                let d = |i: usize| (outputs[i] / target).ln().abs();
                d(a).total_cmp(&d(b))
            })
            .expect("n > 4 leaves a candidate");
        picked.push(best);
    }
    picked.push(n - 1);
    picked.into_iter().map(|i| outputs[i]).collect()
}

/// At most this many output times are listed in an error message.
const LISTED_TIMES: usize = 12;

/// `a, b, c s` (or the first and last few of many).
fn list_times(times: &[f64]) -> String {
    let fmt = |t: &f64| format!("{t}");
    let items: Vec<String> = if times.len() <= LISTED_TIMES {
        times.iter().map(fmt).collect()
    } else {
        let head = times[..LISTED_TIMES - 3].iter().map(fmt);
        let tail = times[times.len() - 2..].iter().map(fmt);
        head.chain(std::iter::once("…".to_string()))
            .chain(tail)
            .collect()
    };
    format!("{} s", items.join(", "))
}

/// `[output.figure]`: fields among the written ones (`written`: names in write order),
/// times among the output times, the slice inside the grid, dpi 1 … 1200.
pub(super) fn validate(
    f: &RawFigure,
    written: &[&str],
    time: &TimeSpec,
    axis_len: usize,
    axis: Axis,
) -> Result<FigureSpec, Error> {
    if f.fields.is_empty() {
        return Err(
            Error::invalid("output.figure.fields", "needs at least one field").fix(format!(
                "list fields from output.fields, e.g. fields = [\"{}\"]",
                written.first().copied().unwrap_or("O2")
            )),
        );
    }
    let mut fields = Vec::new();
    for (i, name) in f.fields.iter().enumerate() {
        let field = format!("output.figure.fields[{i}]");
        if !written.contains(&name.as_str()) {
            return Err(Error::invalid(
                &field,
                format!(
                    "`{name}` is not an output field{}",
                    did_you_mean(name, written.iter().copied())
                ),
            )
            .found(format!("{name:?}"))
            .fix(format!(
                "use names from output.fields ({}) or add \"{name}\" to output.fields",
                list(written.iter().copied())
            )));
        }
        if fields.contains(name) {
            return Err(Error::invalid(&field, "field listed twice")
                .found(format!("{name:?}"))
                .fix("list each field once"));
        }
        fields.push(name.clone());
    }

    let outputs = time.output_times_s();
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
    let given = seconds_list(
        "output.figure",
        "times",
        f.times_s.as_deref(),
        f.times.as_deref(),
    )?;
    let times_s = match &given {
        None => auto_columns(&outputs),
        Some((times, key)) => {
            if times.is_empty() {
                return Err(
                    Error::invalid(key, "needs at least one time").fix(
                        "list output times (times_s in s, or times with units), or remove the key for 4 chosen on a log time scale",
                    ),
                );
            }
            let mut out: Vec<f64> = Vec::new();
            for (i, &t) in times.iter().enumerate() {
                let field = format!("{key}[{i}]");
                let Some(&exact) = outputs.iter().find(|&&o| same(o, t)) else {
                    return Err(Error::invalid(&field, format!("{} s is not an output time", short(t)))
                        .fix(format!(
                            "use output times (t = 0, every time.output_interval_s = {} s, and time.end_s = {} s): {}; or remove {key} for 4 chosen on a log time scale",
                            time.output_interval_s,
                            time.end_s,
                            list_times(&outputs)
                        )));
                };
                if out.last().is_some_and(|&prev| exact <= prev) {
                    return Err(Error::invalid(&field, "times must increase")
                        .found(t)
                        .fix("list each time once, in increasing order"));
                }
                out.push(exact);
            }
            out
        }
    };

    let slice_index = match f.slice_index {
        None => axis_len / 2,
        Some(i) if i >= 0 && (i as u64) < axis_len as u64 => i as usize,
        Some(i) => {
            return Err(Error::invalid(
                "output.figure.slice_index",
                format!(
                    "must be in 0..{} (the grid has {axis_len} slices along output.slice_axis = {})",
                    axis_len.saturating_sub(1),
                    axis.letter()
                ),
            )
            .found(i)
            .fix(format!(
                "write a slice index along {}, e.g. slice_index = {}, or remove it for the middle slice",
                axis.letter(),
                axis_len / 2
            )))
        }
    };

    let dpi = match f.dpi {
        None => 150,
        Some(d) if (1..=1200).contains(&d) => d as u32,
        Some(d) => {
            return Err(
                Error::invalid("output.figure.dpi", "must be 1 … 1200 dots per inch")
                    .found(d)
                    .fix("write dpi = 150 (screen, default) or 300 (print)"),
            )
        }
    };

    Ok(FigureSpec {
        fields,
        times_s,
        slice_index,
        dpi,
    })
}

#[cfg(test)]
mod tests {
    use super::auto_columns;

    fn every(step_s: f64, end_s: f64) -> Vec<f64> {
        let n = (end_s / step_s).round() as usize;
        (0..=n).map(|i| i as f64 * step_s).collect()
    }

    #[test]
    fn automatic_columns_follow_a_log_time_scale() {
        let h = 3600.0;
        // The default: hourly outputs over a day → 0, 2 h (nearest 1.5 h in log), 6 h, 24 h.
        assert_eq!(
            auto_columns(&every(h, 24.0 * h)),
            [0.0, 2.0 * h, 6.0 * h, 24.0 * h]
        );
        // Outputs every 5 min over a day: 1.5 h and 6 h are outputs themselves.
        assert_eq!(
            auto_columns(&every(300.0, 24.0 * h)),
            [0.0, 1.5 * h, 6.0 * h, 24.0 * h]
        );
        // Five outputs: the picks crowd at the start but stay distinct and keep the end.
        assert_eq!(auto_columns(&every(60.0, 240.0)), [0.0, 60.0, 120.0, 240.0]);
        // Four or fewer: all of them.
        assert_eq!(auto_columns(&every(60.0, 180.0)), [0.0, 60.0, 120.0, 180.0]);
        assert_eq!(auto_columns(&[0.0]), [0.0]);
    }
}
