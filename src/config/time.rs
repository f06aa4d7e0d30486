//! `[time]`: step, end, output interval, ADI weight and spin-up → [`TimeSpec`], [`SpinUp`].

use serde::Deserialize;

use super::checks::{non_negative, positive};
use super::error::Error;
use super::scenario::{SpinUp, TimeSpec};

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
}

/// `[time]`; the output interval is rounded to whole steps (with a warning naming `source`).
pub(super) fn validate(t: &RawTime, source: &str) -> Result<TimeSpec, Error> {
    let dt_s = positive(
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
        return Err(
            Error::invalid("time.end_s", format!("must be ≥ time.dt_s = {dt_s} s"))
                .found(end_s)
                .fix("make end_s at least one time step, or reduce dt_s"),
        );
    }
    let mut output_interval_s = match t.output_interval_s {
        Some(v) => positive(
            v,
            "time.output_interval_s",
            "set a positive interval in s, or remove the key to write only at the start and end",
        )?,
        None => end_s,
    };
    let steps = (output_interval_s / dt_s).round().max(1.0);
    let rounded = steps * dt_s;
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
    Ok(TimeSpec {
        dt_s,
        end_s,
        output_interval_s,
        theta,
        max_diffusion_r,
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
    let dt_s = positive(
        raw.spin_up_dt_s.unwrap_or(time.dt_s),
        "time.spin_up_dt_s",
        "set a positive spin-up step in s",
    )?;
    Ok((duration_s > 0.0).then_some(SpinUp { duration_s, dt_s }))
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
        // Shorter than one step → one step.
        let text = edited(&[("output_interval_s = 120.0", "output_interval_s = 0.2")]);
        let s = load_str(&text, FILE, &[]).expect("loads");
        assert_eq!(s.time.output_interval_s, 1.0);
    }
}
