//! `[time]`: step, end, output interval, ADI weight and spin-up → [`TimeSpec`], [`SpinUp`].

use serde::Deserialize;

use super::checks::{non_negative, positive, positive_f32};
use super::error::{short, Error};
use super::scenario::{Grid, Scheme, Species, SpinUp, TimeSpec};

/// Most output times (t = 0, every `time.output_interval_s`, `time.end_s`) of one run.
/// Each writes a set of files (images, arrays) per field, and the list of them is held in
/// memory; 100 000 is far beyond any useful run (a day at one output per second) and still
/// small in memory, so more is a mistake in `end_s` or `output_interval_s`.
pub const MAX_OUTPUT_TIMES: u64 = 100_000;

/// Most stops of the time loop: output times plus the summary stops of
/// `output.summary_interval_s` (default min(output interval, 60 s)) and dose times. A
/// million stops is 1.9 years of model time at the default 60 s summaries.
pub const MAX_STOPS: u64 = 1_000_000;

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

/// `[time]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTime {
    pub dt_s: f64,
    pub end_s: f64,
    pub output_interval_s: Option<f64>,
    /// Douglas ADI weight θ ∈ [0.5, 1], default 1.
    pub theta: Option<f64>,
    /// Model time run before t = 0 without doses or outputs (baseline to steady state), s.
    pub spin_up_s: Option<f64>,
    /// Step of the spin-up, s (default `dt_s`).
    pub spin_up_dt_s: Option<f64>,
    /// Cap of r = D·dt/dx² per diffusion sub-step.
    pub max_diffusion_r: Option<f64>,
    /// `split` (default) or `coupled`.
    pub scheme: Option<String>,
    /// Relative tolerance of the coupled scheme's step control (default 1e-3).
    pub tolerance: Option<f64>,
    /// Longest step of the coupled scheme, s (default: unbounded).
    pub max_dt_s: Option<f64>,
    /// Error control of the coupled scheme (default true; false: fixed steps of dt_s).
    pub adaptive: Option<bool>,
}

/// Default relative tolerance of the coupled scheme.
pub const DEFAULT_TOLERANCE: f64 = 1e-3;

/// `time.scheme`, `time.tolerance`, `time.max_dt_s`.
fn scheme(t: &RawTime) -> Result<Scheme, Error> {
    let coupled_only = |key: &str| {
        Error::invalid(key, "applies to time.scheme = \"coupled\" only")
            .fix("add scheme = \"coupled\" to [time], or remove the key")
    };
    match t.scheme.as_deref() {
        None | Some("split") => {
            if t.tolerance.is_some() {
                return Err(coupled_only("time.tolerance"));
            }
            if t.max_dt_s.is_some() {
                return Err(coupled_only("time.max_dt_s"));
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
                .fix("use e.g. 1e-3 (the default; about 0.1 % per step) or 1e-4 for a reference run"));
            }
            let max_dt_s = t
                .max_dt_s
                .map(|v| {
                    positive(
                        v,
                        "time.max_dt_s",
                        "set the longest step in s, e.g. 600, or remove the key",
                    )
                })
                .transpose()?;
            Ok(Scheme::Coupled {
                rtol,
                first_dt_s: t.dt_s,
                max_dt_s,
                adaptive: t.adaptive.unwrap_or(true),
            })
        }
        Some(other) => Err(Error::invalid("time.scheme", "is not a time integrator")
            .found(format!("\"{other}\""))
            .fix("use \"split\" (Strang splitting, fixed dt_s) or \"coupled\" (reaction and diffusion together, error-controlled step)")),
    }
}

/// `[time]`; the output interval is rounded to whole steps (with a warning naming `source`).
pub(super) fn validate(t: &RawTime, source: &str) -> Result<TimeSpec, Error> {
    let dt_s = positive_f32(
        t.dt_s,
        "time.dt_s",
        "set a positive time step in s, e.g. 1.0",
    )?;
    let end_s = positive(
        t.end_s,
        "time.end_s",
        "set a positive end time in s, e.g. 600",
    )?;
    if end_s < dt_s {
        return Err(Error::invalid(
            "time.end_s",
            format!("must be ≥ time.dt_s = {} s", short(dt_s)),
        )
        .found(short(end_s))
        .fix("make end_s at least one time step, or reduce dt_s"));
    }
    let mut output_interval_s = match t.output_interval_s {
        Some(v) => positive(
            v,
            "time.output_interval_s",
            "set a positive interval in s, or remove the key to write only at the start and end",
        )?,
        None => end_s,
    };
    let steps = end_s / dt_s;
    if steps > MAX_STEPS {
        return Err(Error::invalid(
            "time.end_s",
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
            "time.output_interval_s",
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
            "time.end_s",
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
            "{source}: time.output_interval_s: {output_interval_s} s is not a whole multiple of \
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
    let scheme = scheme(t)?;
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
    let Some(duration_s) = raw.spin_up_s else {
        if raw.spin_up_dt_s.is_some() {
            return Err(
                Error::invalid("time.spin_up_dt_s", "is set without time.spin_up_s").fix(
                    "add time.spin_up_s (the baseline run before t = 0, s) or remove spin_up_dt_s",
                ),
            );
        }
        return Ok(None);
    };
    let duration_s = non_negative(
        duration_s,
        "time.spin_up_s",
        "set the baseline run before t = 0 in s, or 0 for none",
    )?;
    let dt_s = positive_f32(
        raw.spin_up_dt_s.unwrap_or(time.dt_s),
        "time.spin_up_dt_s",
        "set a positive spin-up step in s",
    )?;
    let steps = duration_s / dt_s;
    if steps > MAX_STEPS {
        return Err(Error::invalid(
            "time.spin_up_s",
            format!(
                "makes {} spin-up steps of {} s, more than the limit of {MAX_STEPS:e} steps",
                short(steps.ceil()),
                short(dt_s),
            ),
        )
        .found(short(duration_s))
        .fix("shorten spin_up_s or lengthen spin_up_dt_s"));
    }
    Ok((duration_s > 0.0).then_some(SpinUp { duration_s, dt_s }))
}

/// r = D·dt/dx² of every diffusing species (at the step and the spin-up step) within
/// [`MAX_DIFFUSION_R`], and the sub-steps `time.max_diffusion_r` asks for within
/// [`MAX_DIFFUSION_SUBSTEPS`].
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
        if let Some(max_r) = time.max_diffusion_r {
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
        let e = load_err(BASE, &["species.O2.diffusion_um2_per_s=3e38"]);
        let msg = check(&e, "species.O2.diffusion_um2_per_s");
        assert!(msg.contains("r = D·dt/dx²"), "{msg}");
    }
}
