//! Tick positions and labels shared by the chart axes and the figure's colour bars.
//!
//! Linear axes get "nice" ticks (1, 2, 2.5 or 5 × 10ᵏ apart); log axes ticks at decades
//! (with 2× and 5× when the range spans less than about two decades). Labels use the
//! typographic minus and `×10ⁿ` instead of `e-n`.

/// Spacing of about `target` ticks over a span: 1, 2, 2.5 or 5 × 10ᵏ, the one nearest
/// (in ratio) to span / target.
pub fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .min_by(|a, b| (a / raw).ln().abs().total_cmp(&(b / raw).ln().abs()))
        .unwrap_or(mag)
}

/// Spacing of at most `max_intervals` intervals over a span: the smallest 1, 2 or 5 × 10ᵏ
/// not below span / max_intervals (coarse, round labels such as 6.5, 7.0, 7.5).
pub fn coarse_step(span: f64, max_intervals: usize) -> f64 {
    let raw = span / max_intervals.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag)
}

/// About `target` evenly spaced ticks inside [lo, hi] (in the axis unit), [`nice_step`]
/// apart; returns (ticks, spacing). `hi > lo` and both finite, else no ticks.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return (Vec::new(), 1.0);
    }
    ticks_every(lo, hi, nice_step(hi - lo, target))
}

/// Ticks inside [lo, hi] at the multiples of [`coarse_step`]; returns (ticks, spacing).
pub fn coarse_ticks(lo: f64, hi: f64, max_intervals: usize) -> (Vec<f64>, f64) {
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return (Vec::new(), 1.0);
    }
    ticks_every(lo, hi, coarse_step(hi - lo, max_intervals))
}

/// The multiples of `step` inside [lo, hi] (with a relative tolerance of 10⁻⁶ step).
fn ticks_every(lo: f64, hi: f64, step: f64) -> (Vec<f64>, f64) {
    let eps = step * 1e-6;
    let first = (lo / step - 1e-9).ceil();
    let mut ticks = Vec::new();
    let mut k = first;
    while k * step <= hi + eps {
        let mut v = k * step;
        if v.abs() < eps {
            v = 0.0; // no "-0" and no 1e-17 from rounding
        }
        ticks.push(v);
        k += 1.0;
    }
    (ticks, step)
}

/// Ticks of a log10 axis spanning [lo_exp, hi_exp] (exponents, i.e. log10 of the values):
/// (labelled ticks, minor ticks), both as exponents. Decades every 1, 2, 3 … so at most
/// about 7 are labelled; below about two decades also 2× and 5× each decade.
pub fn log_ticks(lo_exp: f64, hi_exp: f64) -> (Vec<f64>, Vec<f64>) {
    if !(lo_exp.is_finite() && hi_exp.is_finite() && hi_exp > lo_exp) {
        return (Vec::new(), Vec::new());
    }
    let eps = 1e-9;
    let first = (lo_exp - eps).ceil() as i64;
    let last = (hi_exp + eps).floor() as i64;
    let n_decades = (last - first + 1).max(0);
    let every = ((n_decades as f64 / 7.0).ceil() as i64).max(1);
    let inside = |e: f64| e >= lo_exp - eps && e <= hi_exp + eps;
    let mut major: Vec<f64> = (first..=last)
        .filter(|k| k.rem_euclid(every) == 0)
        .map(|k| k as f64)
        .collect();
    let mut minor = Vec::new();
    let k0 = lo_exp.floor() as i64;
    let k1 = hi_exp.ceil() as i64;
    if hi_exp - lo_exp < 2.2 {
        for k in k0..=k1 {
            for m in [2.0f64, 5.0] {
                let e = k as f64 + m.log10();
                if inside(e) {
                    major.push(e);
                }
            }
        }
        major.sort_by(f64::total_cmp);
    }
    if every == 1 {
        for k in k0..=k1 {
            for m in 2..=9 {
                let e = k as f64 + (m as f64).log10();
                if inside(e) && !major.iter().any(|&t| (t - e).abs() < 1e-9) {
                    minor.push(e);
                }
            }
        }
    }
    (major, minor)
}

/// Unicode superscript of an integer, e.g. −6 → `⁻⁶`.
fn superscript(n: i32) -> String {
    n.to_string()
        .chars()
        .map(|c| match c {
            '-' => '⁻',
            '0' => '⁰',
            '1' => '¹',
            '2' => '²',
            '3' => '³',
            '4' => '⁴',
            '5' => '⁵',
            '6' => '⁶',
            '7' => '⁷',
            '8' => '⁸',
            '9' => '⁹',
            other => other,
        })
        .collect()
}

/// Fewest decimals (0 … 12) that write `step` exactly.
fn decimals_of(step: f64) -> usize {
    (0..=12)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() <= 1e-6 * scaled.abs().max(1.0)
        })
        .unwrap_or(12)
}

/// Label of the tick `v` on an axis whose ticks are `step` apart: plain decimals with as
/// many places as the step needs (`0.02`, `7.5`, `120`, `7.39995` on a narrow pH axis), or
/// `2.5×10⁻⁶`, `1×10⁻⁶` when the ticks are very small (step < 10⁻³ and values within
/// 1000 steps of zero) or large (≥ 10⁵). Negative values get a typographic minus.
pub fn format_tick(v: f64, step: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v.abs() <= step.abs() * 1e-6 {
        return "0".into();
    }
    let small = step.abs() < 1e-3 && v.abs() < 1e3 * step.abs();
    let s = if small || v.abs() >= 1e5 {
        let exp = v.abs().log10().floor() as i32;
        let mantissa = v / 10f64.powi(exp);
        // Decimals of the mantissa: enough for the step at this exponent.
        let d = decimals_of((step / 10f64.powi(exp)).abs()).min(3);
        let m = format!("{mantissa:.d$}");
        let m = if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            m
        };
        format!("{m}×10{}", superscript(exp))
    } else {
        let d = decimals_of(step.abs());
        format!("{v:.d$}")
    };
    s.replace('-', "−")
}

/// Label of a log-axis tick at exponent `e` (the value is 10^e): `10⁻⁶`, `2×10⁻⁶`.
pub fn format_log_tick(e: f64) -> String {
    let k = e.floor();
    let m = 10f64.powf(e - k);
    let k = k as i32;
    let mr = m.round();
    if (m - 1.0).abs() < 1e-6 {
        format!("10{}", superscript(k))
    } else if (m - mr).abs() < 1e-6 {
        format!("{}×10{}", mr as i64, superscript(k))
    } else {
        format!("{m:.2}×10{}", superscript(k))
    }
}

/// Label of a log-axis tick at exponent `e` as a plain number where it is short (values
/// from 0.001 to 99 999: `0.2`, `1`, `20`), else as [`format_log_tick`]: for doses, which
/// readers compare with the numbers in a protocol.
pub fn format_log_tick_plain(e: f64) -> String {
    let v = 10f64.powf(e);
    if !(1e-3 * (1.0 - 1e-9)..1e5).contains(&v) {
        return format_log_tick(e);
    }
    // Ticks are m × 10^k with m an integer (1…9): as many decimals as 10^k needs.
    let k = (e + 1e-9).floor() as i32;
    let decimals = (-k).max(0) as usize;
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn plain_log_ticks_read_as_numbers() {
        let labels: Vec<String> = [0.2f64, 1.0, 20.0, 0.005, 5e5]
            .iter()
            .map(|v| super::format_log_tick_plain(v.log10()))
            .collect();
        assert_eq!(labels, ["0.2", "1", "20", "0.005", "5×10⁵"]);
    }

    #[test]
    fn a_narrow_axis_far_from_zero_keeps_its_digits() {
        // pH 7.39995 … 7.40005: every label must differ.
        let labels: Vec<String> = [7.39995, 7.4, 7.40005]
            .iter()
            .map(|&v| super::format_tick(v, 5e-5))
            .collect();
        assert_eq!(labels, ["7.39995", "7.40000", "7.40005"]);
        assert_eq!(super::format_tick(2e-5, 1e-5), "2×10⁻⁵");
    }

    use super::*;

    #[test]
    fn nice_ticks_are_round_and_inside() {
        let (t, s) = nice_ticks(0.0, 0.06, 3);
        assert_eq!(s, 0.02);
        assert_eq!(t.len(), 4);
        assert!((t[3] - 0.06).abs() < 1e-12);
        assert_eq!(
            nice_ticks(0.002, 0.0525, 5).1,
            0.01,
            "nearest, not the next larger"
        );
        let (t, s) = nice_ticks(6.5, 7.5, 4);
        assert_eq!(s, 0.25);
        assert_eq!(t.first(), Some(&6.5));
        assert_eq!(t.last(), Some(&7.5));
        let (t, s) = coarse_ticks(6.5, 7.5, 3);
        assert_eq!((t, s), (vec![6.5, 7.0, 7.5], 0.5));
        let (t, _) = nice_ticks(-3.0, 7.0, 5);
        assert!(t.contains(&0.0), "{t:?}");
        assert!(t.iter().all(|&v| (-3.0..=7.0).contains(&v)));
        assert!(nice_ticks(1.0, 1.0, 4).0.is_empty());
    }

    #[test]
    fn tick_labels_are_typographic() {
        assert_eq!(format_tick(0.04, 0.02), "0.04");
        assert_eq!(format_tick(7.0, 0.25), "7.00");
        assert_eq!(format_tick(120.0, 60.0), "120");
        assert_eq!(format_tick(-2.0, 1.0), "−2");
        assert_eq!(format_tick(0.0, 2e-6), "0");
        assert_eq!(format_tick(2.5e-6, 2.5e-6), "2.5×10⁻⁶");
        assert_eq!(format_tick(1e-6, 5e-7), "1×10⁻⁶");
        assert_eq!(format_tick(3e5, 1e5), "3×10⁵");
        assert_eq!(format_log_tick(-6.0), "10⁻⁶");
        assert_eq!(format_log_tick(-6.0 + 2f64.log10()), "2×10⁻⁶");
        assert_eq!(format_log_tick(0.0), "10⁰");
    }

    #[test]
    fn log_ticks_label_decades() {
        let (major, minor) = log_ticks(-9.3, -3.1);
        assert_eq!(major, [-9.0, -8.0, -7.0, -6.0, -5.0, -4.0]);
        assert!(minor.len() > 30);
        let (major, _) = log_ticks(-20.0, 0.0);
        assert!(major.len() <= 8, "{major:?}");
        let (major, _) = log_ticks(-6.2, -5.5);
        assert!(major.len() >= 2, "{major:?}");
    }
}
