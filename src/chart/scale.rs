//! Colour scales of the slice pictures (8-bit slices, figure series): where a value sits
//! on the colour bar, linearly or on a log axis, and the bar's labelled ticks.
//!
//! A field that spans decades (OH· from 10⁻¹⁷ to 10⁻¹² mM, a particle dose that is zero
//! outside the tumour) shows nothing on a linear bar but its largest values. Under
//! `colour_scale = "auto"` such a field (no negative value, largest value more than
//! [`AUTO_LOG_DECADES`] decades above the smallest positive one) gets a log bar instead.
//! A log bar reaches at most [`MAX_LOG_DECADES`] below its top; smaller values, zeros
//! included, take the bottom colour, and the bar's bottom label says `≤`. So does the end of a
//! fixed range that the data pass (`≥` at the top).

use serde::{Deserialize, Serialize};

use super::colormap;
use super::ticks::{coarse_ticks, format_log_tick_plain, format_tick, log_ticks};
use crate::config::{Colormap, ColourScale};

/// Decades of positive values above which `colour_scale = "auto"` draws a log bar.
pub const AUTO_LOG_DECADES: f64 = 3.0;
/// Decades a log bar spans at most, below its top.
pub const MAX_LOG_DECADES: f64 = 5.0;

/// A colour bar: values from `lo` (bottom colour) to `hi` (top colour), linear or log10.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColourBar {
    /// Value at the bottom of the bar, in the field's unit (> 0 on a log bar).
    pub lo: f64,
    /// Value at the top of the bar, in the field's unit; hi > lo.
    pub hi: f64,
    /// Whether positions follow log10 of the value.
    pub log: bool,
    /// Whether some values lie below `lo` (drawn in the bottom colour).
    #[serde(default)]
    pub below: bool,
    /// Whether some values lie above `hi` (drawn in the top colour).
    #[serde(default)]
    pub above: bool,
}

/// The smallest positive finite value of `values`, if any.
pub fn min_positive(values: impl IntoIterator<Item = f32>) -> Option<f64> {
    values
        .into_iter()
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(f64::from)
        .reduce(f64::min)
}

/// `v` (> 0) rounded up to the nearest 1, 2 or 5 × 10ᵏ.
fn round_up_125(v: f64) -> f64 {
    let mag = 10f64.powf((v.log10() - 1e-9).floor());
    let m = v / mag;
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|&s| s >= m * (1.0 - 1e-9))
        .unwrap_or(10.0);
    step * mag
}

impl ColourBar {
    /// A linear bar over [lo, hi] (widened when hi ≤ lo, see [`super::nonempty_range`]).
    pub fn linear(lo: f64, hi: f64) -> ColourBar {
        let (lo, hi) = super::nonempty_range(lo, hi);
        ColourBar {
            lo,
            hi,
            log: false,
            below: false,
            above: false,
        }
    }

    /// The bar `choice` asks for, for data whose finite values span [lo, hi] with
    /// `min_positive` the smallest positive one (see the module doc). A log bar's ends
    /// are rounded outwards: the bottom to a decade (so it is a labelled tick), the top
    /// to 1, 2 or 5 × 10ᵏ; it knows whether data lie below it ([`ColourBar::with_data`]). `"log"` for data without a positive value
    /// (nothing to draw on a log axis) gives a linear bar.
    pub fn choose(choice: ColourScale, lo: f64, hi: f64, min_positive: Option<f64>) -> ColourBar {
        let spans = |m: f64| hi > m && (hi / m).log10() > AUTO_LOG_DECADES;
        let log = match (choice, min_positive) {
            (ColourScale::Linear, _) | (_, None) => false,
            (ColourScale::Log, Some(m)) => hi > m,
            (ColourScale::Auto, Some(m)) => lo >= 0.0 && spans(m),
        };
        match min_positive {
            Some(m) if log => {
                let bottom = m.max(hi * 10f64.powf(-MAX_LOG_DECADES));
                ColourBar {
                    lo: 10f64.powf((bottom.log10() + 1e-9).floor()),
                    hi: round_up_125(hi),
                    log: true,
                    below: false,
                    above: false,
                }
                .with_data(lo, hi)
            }
            _ => ColourBar::linear(lo, hi),
        }
    }

    /// The bar of a fixed range [lo, hi] (its ends exact): log when `choice` is `"log"`, or
    /// `"auto"` and the range spans more than [`AUTO_LOG_DECADES`], and lo > 0; else linear.
    pub fn fixed(choice: ColourScale, lo: f64, hi: f64) -> ColourBar {
        let log = lo > 0.0
            && hi > lo
            && match choice {
                ColourScale::Linear => false,
                ColourScale::Log => true,
                ColourScale::Auto => (hi / lo).log10() > AUTO_LOG_DECADES,
            };
        if log {
            ColourBar {
                lo,
                hi,
                log,
                below: false,
                above: false,
            }
        } else {
            ColourBar::linear(lo, hi)
        }
    }

    /// Place of `value` on the bar: 0 at the bottom, 1 at the top, clamped; NaN stays NaN.
    /// On a log bar every value ≤ lo (zero and negative values too) is at 0.
    pub fn position(&self, value: f64) -> f64 {
        if value.is_nan() {
            return f64::NAN;
        }
        let t = if self.log {
            if value <= self.lo {
                0.0
            } else {
                (value / self.lo).log10() / (self.hi / self.lo).log10()
            }
        } else {
            (value - self.lo) / (self.hi - self.lo)
        };
        t.clamp(0.0, 1.0)
    }

    /// Colour of `value` in `map` (NaN → [`colormap::NAN_RGB`]).
    pub fn colour(&self, map: Colormap, value: f64) -> [u8; 3] {
        colormap::rgb(map, self.position(value))
    }

    /// Labelled ticks of the bar: (place on the bar 0…1, label). Values are labelled in
    /// the SI prefix the bar's top reads best in ([`super::readable_unit`]: fM … mM, s …
    /// h), with the unit after each number when `with_unit` (never for a dimensionless
    /// unit "1"). Linear: at most `max_intervals` + 1 round values (the ends when the
    /// range holds fewer than two). Log: decades (with 2 and 5 × 10ᵏ below about two
    /// decades). An end beyond which the data go ([`ColourBar::below`], `above`) is
    /// labelled `≤ lo` / `≥ hi` (replacing a tick too close to it).
    pub fn ticks(&self, unit: &str, max_intervals: usize, with_unit: bool) -> Vec<(f64, String)> {
        let (factor, shown) = super::readable_unit(unit, self.lo.abs().max(self.hi.abs()));
        let suffix = if shown == "1" || !with_unit {
            String::new()
        } else {
            format!(" {shown}")
        };
        let (values, step) = if self.log {
            let (major, _) = log_ticks(self.lo.log10(), self.hi.log10());
            let values = if major.len() >= 2 {
                major.iter().map(|&e| 10f64.powf(e)).collect()
            } else {
                vec![self.lo, self.hi]
            };
            (values, 0.0)
        } else {
            // Round values in the unit shown (0, 1, 2 h; not 0, 5000, 10000 s).
            let (ticks, step) = coarse_ticks(self.lo * factor, self.hi * factor, max_intervals);
            if ticks.len() >= 2 {
                (ticks.iter().map(|t| t / factor).collect(), step / factor)
            } else {
                (
                    vec![self.lo, self.hi],
                    (self.hi - self.lo).abs().max(f64::MIN_POSITIVE),
                )
            }
        };
        let label = |v: f64| {
            let number = if self.log {
                format_log_tick_plain(v.log10() + factor.log10())
            } else {
                format_tick(v * factor, step * factor)
            };
            format!("{number}{suffix}")
        };
        /// Ticks closer than this to a marked end (fraction of the bar) give way to it.
        const END_GAP: f64 = 0.08;
        let mut ticks: Vec<(f64, String)> = values
            .iter()
            .map(|&v| (self.position(v), label(v)))
            .filter(|&(t, _)| !(self.below && t < END_GAP || self.above && t > 1.0 - END_GAP))
            .collect();
        if self.below {
            ticks.insert(0, (0.0, format!("≤ {}", label(self.lo))));
        }
        if self.above {
            ticks.push((1.0, format!("≥ {}", label(self.hi))));
        }
        ticks
    }

    /// The same bar, told whether the data, spanning [lo, hi] (finite values; zeros and
    /// negative values count as below a log bar), reach beyond its ends: the ends are
    /// then labelled `≤` / `≥` ([`ColourBar::ticks`]).
    pub fn with_data(mut self, lo: f64, hi: f64) -> ColourBar {
        let tol = 1e-9 * self.lo.abs().max(self.hi.abs());
        self.below = lo < self.lo - tol;
        self.above = hi > self.hi + tol;
        self
    }

    /// How a value becomes a colour, for the manifest: `viridis((value − lo)/(hi − lo))`
    /// or `viridis(log10(value/lo)/log10(hi/lo)), values ≤ lo at 0`.
    pub fn mapping(&self, map: Colormap) -> String {
        let name = colormap::name(map);
        if self.log {
            format!("colour = {name}(log10(value/lo)/log10(hi/lo)), log scale, values ≤ lo (zero included) at the bottom colour, clamped")
        } else {
            format!("colour = {name}((value - lo)/(hi - lo)), clamped to [lo, hi]")
        }
    }
}
