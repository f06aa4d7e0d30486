//! The coupled scheme's step-size control, written once for both backends: which step to
//! try, what to do after an accepted or rejected attempt, the cap after a failed linear
//! solve, the counters. The attempt itself (the ROS2 stages, the linear solves and the
//! error test) is the backend's (`cpu::coupled`, `gpu::coupled`), passed in as a closure.
//! docs/numerics.md §10 describes the control.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{StepControl, StepStats};

/// After a linear solve fails at h, steps are capped at h/2; the cap doubles after this many
/// accepted steps (the error control alone would grow the step straight back to where the
/// solves stall, measured: 2–3 failed tries every 2–3 accepted steps).
pub const CAP_RELEASE_STEPS: u32 = 10;

/// Consecutive rejected attempts after which a span gives up with an error.
pub const MAX_REJECTED_IN_ROW: u32 = 60;

/// What one step attempt of a backend found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Attempt {
    /// The weighted RMS error `err` (≤ 1, or any with fixed steps); the backend has already
    /// moved its state to the end of the step.
    Accepted { err: f64 },
    /// The error test failed: `err` > 1. The state is unchanged.
    Rejected { err: f64 },
    /// A value below −atol.
    Negative,
    /// A linear solve did not converge (or a pivot of the preconditioner vanished).
    LinearFailed,
    /// A NaN or an infinity.
    NonFinite,
}

/// The step-size controller and its carried state.
#[derive(Clone, Debug)]
pub struct StepController {
    /// Next step, cap, and counters (saved in checkpoints). The attempt closure adds its
    /// own work (linear iterations, multigrid attempts) to `control.stats`.
    pub control: StepControl,
    /// Error control on (false: fixed steps of `fixed_dt_s`, the error estimate unused).
    pub adaptive: bool,
    /// The configured first step (and the step of fixed stepping), s.
    pub fixed_dt_s: f64,
    /// Set by a signal handler: [`StepController::advance`] returns before its next attempt.
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl StepController {
    /// A controller whose first step is `first_dt_s`.
    pub fn new(first_dt_s: f64, adaptive: bool) -> StepController {
        StepController {
            control: StepControl {
                h_s: first_dt_s,
                ..StepControl::default()
            },
            adaptive,
            fixed_dt_s: first_dt_s,
            interrupt: None,
        }
    }

    /// After a jump in the fields (a dose): the next step starts again from the first
    /// step, not from the long steps of the settled tissue before it, which the error test
    /// would reject one after another.
    pub fn restart_steps(&mut self) {
        if self.adaptive && self.control.h_s > 0.0 {
            self.control.h_s = self.control.h_s.min(self.fixed_dt_s);
        }
    }

    /// Advances from `t_s` to `t_end_s` (s) by calling `attempt(h, stats)` with the step to
    /// try, or until `max_steps` steps are accepted, or until the interrupt flag is set;
    /// returns the time reached. `h_max_s` caps the step. An error from `attempt` (the
    /// device failed) is returned at once; another says where the attempts kept failing.
    pub fn advance(
        &mut self,
        t_s: f64,
        t_end_s: f64,
        max_steps: u64,
        h_max_s: f64,
        mut attempt: impl FnMut(f64, &mut StepStats) -> Result<Attempt, String>,
    ) -> Result<f64, String> {
        let debug = std::env::var("IONFIELD_DEBUG_COUPLED").is_ok();
        let mut t = t_s;
        let c = &mut self.control;
        let mut h = if c.h_s > 0.0 { c.h_s } else { t_end_s - t_s };
        let mut taken = 0u64;
        let mut rejected_in_row = 0u32;
        let mut after_reject = false;
        // (h, err) of the last rejected try, while tries are being rejected.
        let mut last_reject: Option<(f64, f64)> = None;
        let tiny = 1e-12 * t_end_s.abs().max(1.0);
        while t < t_end_s - tiny && taken < max_steps {
            if let Some(flag) = &self.interrupt {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
            }
            h = h.min(h_max_s);
            if c.h_cap_s > 0.0 {
                h = h.min(c.h_cap_s);
            }
            let last = h >= t_end_s - t;
            let h_try = if last { t_end_s - t } else { h };
            let outcome = attempt(h_try, &mut c.stats)?;
            if debug {
                eprintln!(
                    "{outcome:?} h={h_try} t={t} lin={}",
                    c.stats.linear_iterations
                );
            }
            match outcome {
                Attempt::Accepted { err } => {
                    t = if last { t_end_s } else { t + h_try };
                    taken += 1;
                    rejected_in_row = 0;
                    last_reject = None;
                    c.stats.steps += 1;
                    if c.h_cap_s > 0.0 {
                        c.steps_under_cap += 1;
                        if c.steps_under_cap >= CAP_RELEASE_STEPS {
                            c.h_cap_s *= 2.0;
                            c.steps_under_cap = 0;
                        }
                    }
                    let st = &mut c.stats;
                    if !last || st.h_min_s == 0.0 {
                        st.h_min_s = if st.h_min_s == 0.0 {
                            h_try
                        } else {
                            st.h_min_s.min(h_try)
                        };
                    }
                    st.h_max_s = st.h_max_s.max(h_try);
                    let mut fac = (0.9 / err.max(1e-10).sqrt()).clamp(0.2, 5.0);
                    if !self.adaptive {
                        fac = 1.0;
                    }
                    if after_reject {
                        fac = fac.min(1.0);
                    }
                    after_reject = false;
                    // A step shortened to land on t_end keeps the longer step for later.
                    h = if last {
                        h.max(h_try * fac)
                    } else {
                        h_try * fac
                    };
                    // Fixed steps: back to the configured step, doubling after a forced
                    // halving (a negative value or an unconverged solve).
                    if !self.adaptive {
                        h = (2.0 * h_try).max(h).min(self.fixed_dt_s);
                    }
                }
                other => {
                    c.stats.rejected += 1;
                    rejected_in_row += 1;
                    after_reject = true;
                    if rejected_in_row > MAX_REJECTED_IN_ROW {
                        return Err(format!(
                            "the coupled step was rejected {MAX_REJECTED_IN_ROW} times in a row at t = {t} s (last try h = {h_try:e} s)"
                        ));
                    }
                    let fac = match other {
                        Attempt::Rejected { err } => {
                            // The error of ROS2's embedded estimate scales as h²; from the
                            // second rejection in a row the exponent is the one observed
                            // between the last two tries, and below 1 (the error does not
                            // shrink with h: a transient faster than the step, as at the
                            // start of a spin-up) the step falls 5× at once (CVODE's
                            // η ≤ 0.2 after repeated error-test failures) instead of the
                            // ~0.8× that h² would give.
                            let order = match last_reject {
                                Some((h_prev, err_prev)) if rejected_in_row >= 2 => {
                                    (err_prev / err).ln() / (h_prev / h_try).ln()
                                }
                                _ => 2.0,
                            };
                            last_reject = Some((h_try, err));
                            if order < 1.0 {
                                0.2
                            } else {
                                (0.9 / err).powf(1.0 / order.min(2.0)).clamp(0.2, 0.9)
                            }
                        }
                        Attempt::NonFinite => 0.25,
                        Attempt::LinearFailed if self.adaptive => {
                            let cap = 0.5 * h_try;
                            c.h_cap_s = if c.h_cap_s > 0.0 {
                                c.h_cap_s.min(cap)
                            } else {
                                cap
                            };
                            c.steps_under_cap = 0;
                            0.5
                        }
                        _ => 0.5,
                    };
                    h = h_try * fac;
                }
            }
        }
        c.h_s = h;
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y' = −y advanced by an exact step with an error estimate ∝ h²: the controller
    /// lands on the end, rejects nothing once the step fits, and grows the step.
    #[test]
    fn grows_the_step_and_lands_on_the_end() {
        let mut ctl = StepController::new(0.01, true);
        let mut y = 1.0f64;
        let reached = ctl
            .advance(0.0, 10.0, u64::MAX, f64::INFINITY, |h, _| {
                let err = (h / 0.5).powi(2);
                if err > 1.0 {
                    return Ok(Attempt::Rejected { err });
                }
                y *= (-h).exp();
                Ok(Attempt::Accepted { err })
            })
            .unwrap();
        assert_eq!(reached, 10.0);
        assert!((y - (-10.0f64).exp()).abs() < 1e-12);
        let st = ctl.control.stats;
        assert!(st.h_max_s > 0.3 && st.h_max_s <= 0.5, "{st:?}");
        assert!(st.steps < 60, "{st:?}");
    }

    /// A failed linear solve halves the step and caps it; the cap doubles after
    /// CAP_RELEASE_STEPS accepted steps.
    #[test]
    fn a_failed_solve_caps_the_step() {
        let mut ctl = StepController::new(8.0, true);
        let mut tries = Vec::new();
        ctl.advance(0.0, 1000.0, 10, f64::INFINITY, |h, _| {
            tries.push(h);
            Ok(if h > 4.0 {
                Attempt::LinearFailed
            } else {
                Attempt::Accepted { err: 1e-6 }
            })
        })
        .unwrap();
        assert_eq!(tries[0], 8.0);
        assert_eq!(tries[1], 4.0);
        assert_eq!(tries.len(), 11);
        assert!(tries[1..].iter().all(|&h| h == 4.0), "{tries:?}");
        assert_eq!(ctl.control.h_cap_s, 8.0);
        assert_eq!(ctl.control.stats.rejected, 1);
    }

    /// Endless rejection ends in an error, not a hang.
    #[test]
    fn endless_rejection_is_an_error() {
        let mut ctl = StepController::new(1.0, true);
        let r = ctl.advance(0.0, 10.0, u64::MAX, f64::INFINITY, |_, _| {
            Ok(Attempt::NonFinite)
        });
        assert!(r.unwrap_err().contains("rejected 60 times"));
    }
}
