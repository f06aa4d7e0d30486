//! `[time]`: step, end, output interval, ADI weight and spin-up → [`TimeSpec`], [`SpinUp`].

use serde::Deserialize;

use super::checks::{non_negative, positive, positive_f32};
use super::duration::{required_seconds, seconds, Duration, Seconds};
use super::error::{short, Error};
use super::scenario::{Grid, Scheme, Species, SpinUp, TimeSpec};

/// Most output times (t = 0, every `time.output_interval_s`, `time.end_s`) of one run.
/// Each writes a set of files (images, arrays) per field, and the list of them is held in
/// memory; 100 000 is far beyond any useful run (a day at one output per second) and still
/// small in memory, so more is a mistake in `end_s` or `output_interval_s`.
pub const MAX_OUTPUT_TIMES: u64 = 100_000;

/// Most stops of the time loop: output times plus the summary stops of
/// `output.summary_interval_s` (default [`default_summary_interval_s`]) and dose times. A
/// million stops is 1.9 years of model time at 60 s summaries; the default keeps the
/// summary stops of any run at [`SUMMARY_STOPS`] or fewer.
pub const MAX_STOPS: u64 = 1_000_000;

/// Summary stops the default `output.summary_interval_s` aims at for long runs: one a
/// minute for a day. Each stop reads fields back and appends rows to `timeseries.csv`
/// (about 0.2–1 MB per 1000 stops), so a 72 h run keeps 1440 stops (every 3 min), not 4320.
pub const SUMMARY_STOPS: f64 = 1440.0;

/// Summary stops the default aims at with the coupled scheme: every stop ends a step, so
/// 1440 stops a day would hold its steps at 60 s where the error control allows minutes
/// (150–200 s on `fe_fenton_cdt` hours after a dose, BENCHMARKS.md); 288 a day is every
/// 5 min.
pub const ADAPTIVE_SUMMARY_STOPS: f64 = 288.0;

/// The default model time between summaries (timeseries.csv, viability.csv, time of
/// death), s: min(output interval, max(60 s, end / [`SUMMARY_STOPS`] rounded up to a
/// whole minute)). Runs up to 24 h get 60 s (or the output interval if shorter), as
/// before; longer runs at most 1440 summary stops (72 h: every 3 min). With the coupled
/// scheme, [`ADAPTIVE_SUMMARY_STOPS`] in place of [`SUMMARY_STOPS`] (24 h: every 5 min).
pub fn default_summary_interval_s(time: &TimeSpec) -> f64 {
    let stops = match time.scheme {
        Scheme::Split => SUMMARY_STOPS,
        Scheme::Coupled { .. } => ADAPTIVE_SUMMARY_STOPS,
    };
    let long_run = (time.end_s / stops / 60.0).ceil() * 60.0;
    time.output_interval_s.min(long_run.max(60.0))
}

/// Most time steps of one run (`end_s / dt_s`, and the spin-up's `spin_up_s /
/// spin_up_dt_s`): 1e8 steps is 3 years at dt = 1 s or 11 days at dt = 10 ms, and hours
/// even on a one-voxel grid; more would run for days, or for ever when end_s is huge.
pub const MAX_STEPS: f64 = 1e8;

/// Largest r = D·dt/dx² (of one step, any diffusing species). The ADI solve forms 1 + 2r
/// and products of r in f32; 1e30 keeps them far inside the f32 range (3.4e38) and is
/// beyond any physical scenario (equilibration in 1e-30 of a step).
pub const MAX_DIFFUSION_R: f64 = 1e30;

/// Most diffusion sub-steps per step that `time.max_diffusion_r` may ask for
/// (ceil(r / max_diffusion_r)); each is a full ADI sweep of the grid.
pub const MAX_DIFFUSION_SUBSTEPS: f64 = 100_000.0;

/// Number of output times of a run of `end_s` with outputs every `interval_s` (as
/// `TimeSpec::output_times_s` counts them), as f64 so that huge counts do not overflow.
pub fn output_count(end_s: f64, interval_s: f64) -> f64 {
    (end_s / interval_s).ceil() + 1.0
}

/// `[time]`. Each time is given in s under `<key>_s` or with a unit under `<key>`
/// (`end = "24 h"`, see `duration.rs`); one of `dt_s`/`dt` and of `end_s`/`end` is required.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTime {
    /// Step, s.
    pub dt_s: Option<f64>,
    pub dt: Option<Duration>,
    /// End of the run (model time after any spin-up), s.
    pub end_s: Option<f64>,
    pub end: Option<Duration>,
    /// Model time between output times, s (default: only the start and the end).
    pub output_interval_s: Option<f64>,
    pub output_interval: Option<Duration>,
    /// Douglas ADI weight θ ∈ [0.5, 1], default 1.
    pub theta: Option<f64>,
    /// Model time run before t = 0 without doses or outputs (baseline to steady state), s.
    pub spin_up_s: Option<f64>,
    pub spin_up: Option<Duration>,
    /// Step of the spin-up, s (default `dt_s`).
    pub spin_up_dt_s: Option<f64>,
    pub spin_up_dt: Option<Duration>,
    /// Settle criterion: the spin-up ends once no settling field changes by more than this
    /// fraction of its largest value per hour (`spin_up` is then the longest it may run).
    pub spin_up_tolerance_per_h: Option<f64>,
    /// Cap of r = D·dt/dx² per diffusion sub-step.
    pub max_diffusion_r: Option<f64>,
    /// `split` (default) or `coupled`.
    pub scheme: Option<String>,
    /// Relative tolerance of the coupled scheme's step control (default 1e-2).
    pub tolerance: Option<f64>,
    /// Longest step of the coupled scheme, s (default: unbounded); or `max_dt = "10 min"`.
    pub max_dt_s: Option<f64>,
    pub max_dt: Option<Duration>,
    /// Error control of the coupled scheme (default true; false: fixed steps of dt_s).
    pub adaptive: Option<bool>,
}

/// Default relative tolerance of the coupled scheme.
pub const DEFAULT_TOLERANCE: f64 = 1e-2;

/// `time.scheme`, `time.tolerance`, `time.max_dt_s`; `dt_s` is the resolved `time.dt_s`
/// (the coupled scheme's first step).
fn scheme(t: &RawTime, dt_s: f64) -> Result<Scheme, Error> {
    let max_dt = seconds("time", "max_dt", t.max_dt_s, t.max_dt.as_ref())?;
    let coupled_only = |key: &str| {
        Error::invalid(key, "applies to time.scheme = \"coupled\" only")
            .fix("add scheme = \"coupled\" to [time], or remove the key")
    };
    match t.scheme.as_deref() {
        None | Some("split") => {
            if t.tolerance.is_some() {
                return Err(coupled_only("time.tolerance"));
            }
            if let Some(m) = &max_dt {
                return Err(coupled_only(&m.field));
            }
            if t.adaptive.is_some() {
                return Err(coupled_only("time.adaptive"));
            }
            Ok(Scheme::Split)
        }
        Some("coupled") => {
            let rtol = t.tolerance.unwrap_or(DEFAULT_TOLERANCE);
            if !(rtol.is_finite() && (1e-10..=0.5).contains(&rtol)) {
                return Err(Error::invalid(
                    "time.tolerance",
                    "must be a relative tolerance in [1e-10, 0.5]",
                )
                .found(short(rtol))
                .fix("use e.g. 1e-2 (the default; about 1 % per step) or 1e-4 for a reference run"));
            }
            let max_dt_s = max_dt
                .map(|m| {
                    positive(
                        m.value,
                        &m.field,
                        "set the longest step, e.g. max_dt_s = 600 or max_dt = \"10 min\", or remove the key",
                    )
                })
                .transpose()?;
            Ok(Scheme::Coupled {
                rtol,
                first_dt_s: dt_s,
                max_dt_s,
                adaptive: t.adaptive.unwrap_or(true),
            })
        }
        Some(other) => Err(Error::invalid("time.scheme", "is not a time integrator")
            .found(format!("\"{other}\""))
            .fix("use \"split\" (Strang splitting, fixed dt_s) or \"coupled\" (reaction and diffusion together, error-controlled step)")),
    }
}

impl RawTime {
    fn dt(&self) -> Result<Seconds, Error> {
        required_seconds("time", "dt", self.dt_s, self.dt.as_ref(), "0.5 s")
    }
    fn end(&self) -> Result<Seconds, Error> {
        required_seconds("time", "end", self.end_s, self.end.as_ref(), "10 min")
    }
    fn output_interval(&self) -> Result<Option<Seconds>, Error> {
        seconds(
            "time",
            "output_interval",
            self.output_interval_s,
            self.output_interval.as_ref(),
        )
    }
    fn spin_up(&self) -> Result<Option<Seconds>, Error> {
        seconds("time", "spin_up", self.spin_up_s, self.spin_up.as_ref())
    }
    fn spin_up_dt(&self) -> Result<Option<Seconds>, Error> {
        seconds(
            "time",
            "spin_up_dt",
            self.spin_up_dt_s,
            self.spin_up_dt.as_ref(),
        )
    }
}

/// `[time]`; the output interval is rounded to whole steps (with a warning naming `source`).
pub(super) fn validate(t: &RawTime, source: &str) -> Result<TimeSpec, Error> {
    let (dt, end) = (t.dt()?, t.end()?);
    let dt_s = positive_f32(
        dt.value,
        &dt.field,
        "set a positive time step, e.g. dt_s = 1.0 or dt = \"1 s\"",
    )?;
    let end_s = positive(
        end.value,
        &end.field,
        "set a positive end time, e.g. end_s = 600 or end = \"24 h\"",
    )?;
    if end_s < dt_s {
        return Err(Error::invalid(
            &end.field,
            format!("must be ≥ time.dt_s = {} s", short(dt_s)),
        )
        .found(short(end_s))
        .fix("make end_s at least one time step, or reduce dt_s"));
    }
    let interval = t.output_interval()?;
    let interval_field = interval
        .as_ref()
        .map_or("time.output_interval_s", |i| i.field.as_str());
    let mut output_interval_s = match &interval {
        Some(i) => positive(
            i.value,
            &i.field,
            "set a positive interval (output_interval_s = 120 or output_interval = \"30 min\"), or remove the key to write only at the start and end",
        )?,
        None => end_s,
    };
    let steps = end_s / dt_s;
    if steps > MAX_STEPS {
        return Err(Error::invalid(
            &end.field,
            format!(
                "makes {} time steps of time.dt_s = {} s, more than the limit of {MAX_STEPS:e} steps",
                short(steps.ceil()),
                short(dt_s),
            ),
        )
        .found(short(end_s))
        .fix("shorten end_s or lengthen dt_s"));
    }
    let steps = (output_interval_s / dt_s).round();
    if steps < 1.0 {
        let n = output_count(end_s, dt_s);
        return Err(Error::invalid(
            interval_field,
            format!(
                "is shorter than half a time step (time.dt_s = {} s): it would write every step, {} output times",
                short(dt_s),
                short(n)
            ),
        )
        .found(short(output_interval_s))
        .fix("set output_interval_s to a multiple of dt_s (at least dt_s), or remove it to write only at the start and end"));
    }
    let rounded = steps * dt_s;
    let n_outputs = output_count(end_s, rounded);
    if n_outputs > MAX_OUTPUT_TIMES as f64 {
        return Err(Error::invalid(
            &end.field,
            format!(
                "with time.output_interval_s = {} s gives {} output times, more than the limit of {MAX_OUTPUT_TIMES}",
                short(rounded),
                short(n_outputs)
            ),
        )
        .found(short(end_s))
        .fix("shorten end_s or lengthen output_interval_s"));
    }
    if (rounded - output_interval_s).abs() > 1e-9 * output_interval_s {
        log::warn!(
            "{source}: {interval_field}: {output_interval_s} s is not a whole multiple of \
             time.dt_s = {dt_s} s; rounded to {rounded} s"
        );
    }
    output_interval_s = rounded;
    let theta = t.theta.unwrap_or(1.0);
    if !(0.5..=1.0).contains(&theta) {
        return Err(
            Error::invalid("time.theta", "must be in [0.5, 1] (Douglas ADI weight)".to_string())
                .found(theta)
                .fix("use 1 (backward Euler, robust) or 0.5 (Crank–Nicolson, second order in time); below 0.5 the scheme is unstable"),
        );
    }
    let max_diffusion_r = t
        .max_diffusion_r
        .map(|r| {
            positive(
                r,
                "time.max_diffusion_r",
                "set the largest r = D·dt/dx² of one diffusion sub-step, e.g. 2, or remove the key",
            )
        })
        .transpose()?;
    let scheme = scheme(t, dt_s)?;
    Ok(TimeSpec {
        dt_s,
        end_s,
        output_interval_s,
        theta,
        max_diffusion_r,
        scheme,
    })
}

/// `time.spin_up_s`, `time.spin_up_dt_s`: the baseline run before t = 0, if any.
pub(super) fn spin_up(raw: &RawTime, time: &TimeSpec) -> Result<Option<SpinUp>, Error> {
    let spin_dt = raw.spin_up_dt()?;
    let Some(spin) = raw.spin_up()? else {
        let without = |field: &str| {
            Error::invalid(field, "is set without time.spin_up_s").fix(
                "add time.spin_up_s (the baseline run before t = 0, s; or spin_up = \"2 h\") or remove it",
            )
        };
        if let Some(dt) = spin_dt {
            return Err(without(&dt.field));
        }
        if raw.spin_up_tolerance_per_h.is_some() {
            return Err(without("time.spin_up_tolerance_per_h"));
        }
        return Ok(None);
    };
    let settle_per_h = raw
        .spin_up_tolerance_per_h
        .map(|tol| {
            if tol.is_finite() && (1e-8..=10.0).contains(&tol) {
                Ok(tol)
            } else {
                Err(Error::invalid(
                    "time.spin_up_tolerance_per_h",
                    "must be a relative change per hour in [1e-8, 10]",
                )
                .found(short(tol))
                .fix("use e.g. 0.01 (every settling field changes by less than 1 % of its largest value per hour), or remove the key for a spin-up of fixed length"))
            }
        })
        .transpose()?;
    let duration_s = non_negative(
        spin.value,
        &spin.field,
        "set the baseline run before t = 0 (spin_up_s = 300 or spin_up = \"2 h\"), or 0 for none",
    )?;
    let dt_field = spin_dt
        .as_ref()
        .map_or("time.spin_up_dt_s", |d| d.field.as_str());
    let dt_s = positive_f32(
        spin_dt.as_ref().map_or(time.dt_s, |d| d.value),
        dt_field,
        "set a positive spin-up step in s",
    )?;
    let steps = duration_s / dt_s;
    if steps > MAX_STEPS {
        return Err(Error::invalid(
            &spin.field,
            format!(
                "makes {} spin-up steps of {} s, more than the limit of {MAX_STEPS:e} steps",
                short(steps.ceil()),
                short(dt_s),
            ),
        )
        .found(short(duration_s))
        .fix("shorten spin_up_s or lengthen spin_up_dt_s"));
    }
    // spin_up = 0 turns the spin-up off (e.g. `--set time.spin_up_s=0` on a scenario that
    // spins up until settled); its tolerance then has nothing to end.
    Ok((duration_s > 0.0).then_some(SpinUp {
        duration_s,
        dt_s,
        settle_per_h,
    }))
}

/// r = D·dt/dx² of every diffusing species (at the step and the spin-up step) within
/// [`MAX_DIFFUSION_R`], and, under the split scheme, the sub-steps `time.max_diffusion_r`
/// asks for within [`MAX_DIFFUSION_SUBSTEPS`].
pub(super) fn check_diffusion(
    time: &TimeSpec,
    spin_up: Option<&SpinUp>,
    grid: &Grid,
    species: &[Species],
) -> Result<(), Error> {
    let dx2 = grid.voxel_um * grid.voxel_um;
    let dt = spin_up.map_or(time.dt_s, |s| s.dt_s.max(time.dt_s));
    for s in species.iter().filter(|s| s.diffusion_um2_per_s > 0.0) {
        let r = s.diffusion_um2_per_s * dt / dx2;
        let field = format!("species.{}.diffusion_um2_per_s", s.name);
        if r.is_nan() || r > MAX_DIFFUSION_R {
            return Err(Error::invalid(
                &field,
                format!(
                    "gives r = D·dt/dx² = {} (dt = {} s, dx = grid.voxel_um = {} µm), more than the limit of {}",
                    short(r),
                    short(dt),
                    short(grid.voxel_um),
                    short(MAX_DIFFUSION_R)
                ),
            )
            .found(short(s.diffusion_um2_per_s))
            .fix("check the unit (µm²/s: O2 is about 2000) and grid.voxel_um, or shorten time.dt_s"));
        }
        // Sub-steps belong to the split scheme; the coupled scheme solves diffusion
        // implicitly with the reactions at any r.
        let split_cap = match time.scheme {
            Scheme::Split => time.max_diffusion_r,
            Scheme::Coupled { .. } => None,
        };
        if let Some(max_r) = split_cap {
            let substeps = (r / max_r).ceil();
            if substeps > MAX_DIFFUSION_SUBSTEPS {
                return Err(Error::invalid(
                    "time.max_diffusion_r",
                    format!(
                        "asks for {} diffusion sub-steps per step for `{}` (r = {}), more than the limit of {}",
                        short(substeps),
                        s.name,
                        short(r),
                        short(MAX_DIFFUSION_SUBSTEPS)
                    ),
                )
                .found(short(max_r))
                .fix("raise max_diffusion_r (or remove it: the ADI step is stable at any r), or shorten time.dt_s"));
            }
        }
    }
    check_loss_positivity(time, dt, dx2, species)
}

/// The split scheme with θ < 1 turns a decaying value negative once q = k·dt (per
/// diffusion sub-step) exceeds 1/(1 − θ): a lone voxel's factor (1 − (1 − θ)q)/(1 + θq)
/// is then below 0. θ = 1 is positive at every q (`cpu::diffuse_adi`, "Loss and
/// positivity"); the coupled scheme does not use θ.
fn check_loss_positivity(
    time: &TimeSpec,
    dt: f64,
    dx2: f64,
    species: &[Species],
) -> Result<(), Error> {
    if time.theta >= 1.0 || !matches!(time.scheme, Scheme::Split) {
        return Ok(());
    }
    let q_max = 1.0 / (1.0 - time.theta);
    for s in species {
        let k = s.decay_per_s_by_tissue.iter().copied().fold(0.0, f64::max);
        let r = s.diffusion_um2_per_s * dt / dx2;
        let substeps = time
            .max_diffusion_r
            .filter(|_| r > 0.0)
            .map_or(1.0, |m| (r / m - 1e-9).ceil().max(1.0));
        let q = k * dt / substeps;
        if q > q_max {
            return Err(Error::invalid(
                format!("species.{}.decay_per_s", s.name),
                format!(
                    "gives q = k·dt = {} per diffusion step (k = {} 1/s in the fastest tissue, dt = {} s), beyond 1/(1 − θ) = {} where the θ = {} step makes the value negative",
                    short(q),
                    short(k),
                    short(dt / substeps),
                    short(q_max),
                    short(time.theta)
                ),
            )
            .found(short(k))
            .fix(format!(
                "set time.theta = 1 (the default, positive at any rate), shorten time.dt_s below {} s, or use time.scheme = \"coupled\"",
                short(q_max / k * substeps)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;
    use crate::config::*;

    #[test]
    fn non_positive_dt() {
        for dt in ["0.0", "-1"] {
            let text = edited(&[("dt_s = 1.0", &format!("dt_s = {dt}"))]);
            let msg = check(&load_err(&text, &[]), "time.dt_s");
            assert!(msg.contains("must be > 0"), "{msg}");
        }
        let text = edited(&[("end_s = 600.0", "end_s = 0.5")]);
        check(&load_err(&text, &[]), "time.end_s");
    }

    #[test]
    fn theta_below_one_refuses_a_loss_that_would_turn_negative() {
        // θ = ½: q = k·dt must stay ≤ 2. O2's tumour uptake 0.1/s at dt 1 s loads.
        let half = edited(&[("dt_s = 1.0", "dt_s = 1.0\ntheta = 0.5")]);
        load_str(&half, FILE, &[]).expect("q = 0.1 loads");
        let fast = half.replace(
            "decay_per_s = 0.0\n# First-order",
            "decay_per_s = 3.0\n# First-order",
        );
        assert_ne!(fast, half);
        let msg = check(&load_err(&fast, &[]), "species.O2.decay_per_s");
        assert!(
            msg.contains("1/(1 − θ) = 2") && msg.contains("time.theta = 1"),
            "{msg}"
        );
        // θ = 1 (the default) is positive at any rate.
        let one = fast.replace("theta = 0.5", "theta = 1.0");
        load_str(&one, FILE, &[]).expect("θ = 1 loads");
    }

    #[test]
    fn output_interval_rounded_to_a_multiple_of_dt() {
        let text = edited(&[("dt_s = 1.0", "dt_s = 0.7")]);
        let s = load_str(&text, FILE, &[]).expect("loads with a warning");
        let steps = s.time.output_interval_s / s.time.dt_s;
        assert!((steps - steps.round()).abs() < 1e-9, "{steps}");
        assert!((s.time.output_interval_s - 119.7).abs() < 1e-9);
        // At least half a step → one step.
        let text = edited(&[("output_interval_s = 120.0", "output_interval_s = 0.6")]);
        let s = load_str(&text, FILE, &[]).expect("loads");
        assert_eq!(s.time.output_interval_s, 1.0);
        // Shorter: an error with the count it would give, not a silent clamp.
        let text = edited(&[("output_interval_s = 120.0", "output_interval_s = 1e-9")]);
        let msg = check(&load_err(&text, &[]), "time.output_interval_s");
        assert!(
            msg.contains("601 output times") && msg.contains("1e-9"),
            "{msg}"
        );
    }

    /// The default summary interval: 60 s (or the output interval if shorter) up to a 24 h
    /// run, then end / 1440 rounded up to a whole minute, so no run gets more than 1440
    /// summary stops by default.
    #[test]
    fn default_summary_interval_scales_with_long_runs() {
        let spec = |end_s: f64, output_interval_s: f64| TimeSpec {
            dt_s: 0.5,
            end_s,
            output_interval_s,
            theta: 1.0,
            max_diffusion_r: None,
            scheme: Default::default(),
        };
        let h = 3600.0;
        for (end_s, interval_s, expected) in [
            (600.0, 120.0, 60.0),
            (600.0, 30.0, 30.0),
            (24.0 * h, h, 60.0),
            (24.0 * h + 1.0, h, 120.0),
            (30.0 * h, h, 120.0),
            (48.0 * h, h, 120.0),
            (72.0 * h, h, 180.0),
            (72.0 * h, 120.0, 120.0),
            (365.0 * 24.0 * h, 24.0 * h, 21900.0),
        ] {
            let t = spec(end_s, interval_s);
            let got = default_summary_interval_s(&t);
            assert_eq!(got, expected, "end {end_s} s, outputs every {interval_s} s");
            assert!(got <= interval_s && got >= 60f64.min(interval_s));
            assert!((end_s / got).ceil() <= SUMMARY_STOPS.max(end_s / interval_s).ceil());
        }
        // The coupled scheme: 288 stops a day, 60 s up to 4.8 h.
        let coupled = |end_s: f64| TimeSpec {
            scheme: Scheme::Coupled {
                rtol: 1e-3,
                first_dt_s: 0.5,
                max_dt_s: None,
                adaptive: true,
            },
            ..spec(end_s, h)
        };
        for (end_s, expected) in [
            (h, 60.0),
            (4.8 * h, 60.0),
            (24.0 * h, 300.0),
            (72.0 * h, 900.0),
        ] {
            assert_eq!(
                default_summary_interval_s(&coupled(end_s)),
                expected,
                "{end_s}"
            );
        }
        // Through the loader: a 72 h run with hourly outputs summarises every 3 min.
        let s = load_str(
            BASE,
            FILE,
            &["time.end=72 h".into(), "time.output_interval=1h".into()],
        )
        .expect("loads");
        assert_eq!(s.output.summary_interval_s, Some(180.0));
        assert_eq!((s.time.end_s / 180.0).ceil(), SUMMARY_STOPS);
        // The built-in short runs keep their 60 s summaries; a given value is kept.
        assert_eq!(
            load_str(BASE, FILE, &[])
                .expect("loads")
                .output
                .summary_interval_s,
            Some(60.0)
        );
        let s = load_str(BASE, FILE, &["output.summary_interval=\"10 s\"".into()]).expect("loads");
        assert_eq!(s.output.summary_interval_s, Some(10.0));
    }

    /// Counts of output times, steps and sub-steps are checked before anything is
    /// allocated or run.
    #[test]
    fn counts_are_limited() {
        let msg = check(&load_err(BASE, &["time.end_s=1e30"]), "time.end_s");
        assert!(msg.contains("limit") && msg.contains("1e30"), "{msg}");
        let sets = ["time.end_s=1e7", "time.output_interval_s=60"];
        let msg = check(&load_err(BASE, &sets), "time.end_s");
        assert!(
            msg.contains("output times") && msg.contains("100000"),
            "{msg}"
        );
        let msg = check(&load_err(BASE, &["time.dt_s=1e300"]), "time.dt_s");
        assert!(msg.contains("f32"), "{msg}");
        let msg = check(
            &load_err(BASE, &["time.max_diffusion_r=1e-9"]),
            "time.max_diffusion_r",
        );
        assert!(msg.contains("sub-steps"), "{msg}");
        // The cap is the split scheme's: the coupled scheme takes the same r in one solve.
        let coupled = ["time.max_diffusion_r=1e-9", "time.scheme=\"coupled\""];
        let coupled: Vec<String> = coupled.iter().map(|s| s.to_string()).collect();
        assert!(load_str(BASE, FILE, &coupled).is_ok());
        let e = load_err(BASE, &["species.O2.diffusion_um2_per_s=3e38"]);
        let msg = check(&e, "species.O2.diffusion_um2_per_s");
        assert!(msg.contains("r = D·dt/dx²"), "{msg}");
    }
}
