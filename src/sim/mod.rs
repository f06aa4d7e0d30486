//! The time loop: an [`Engine`] advanced from output time to output time, with snapshots
//! handed to the writers. The loop never knows which backend it drives.

pub mod callback;
pub mod checkpoint;
pub mod control;
pub mod schedule;
pub mod simulation;

pub use callback::{Callback, Schedule};
pub use schedule::OutputSchedule;
pub use simulation::{RunIdentity, Simulation};

use crate::engine::{Engine, Error};

/// Wall time spent in each phase of the run, s, summed over resumed parts. With a reaction
/// network the GPU engine reads the reaction status after every batch of steps, which
/// waits for the device, so `steps_s` holds the device time; without one, steps are only
/// queued and the device time falls into `readback_s`.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Phases {
    /// Loading the config, choosing the adapter, building the model and the engine.
    pub setup_s: f64,
    pub spin_up_s: f64,
    /// Doses and time steps.
    pub steps_s: f64,
    /// Copying fields back from the engine (waits for queued GPU work).
    pub readback_s: f64,
    /// Derived fields, summaries and writing files.
    pub outputs_s: f64,
    pub checkpoints_s: f64,
}

/// One stop of [`run`], handed to its callback after the doses due at that time.
#[derive(Clone, Copy, Debug)]
pub struct Stop {
    pub time_s: f64,
    /// Steps done since t = 0.
    pub step: u64,
    /// Files are due (an output time), not only a summary.
    pub output: bool,
    /// Model time the engine is already past this stop, s: 0 where the loop landed on it,
    /// positive at a summary stop the coupled scheme stepped over, whose fields are then
    /// interpolated linearly within that step ([`Engine::read_fields_before`]).
    pub lag_s: f64,
}

/// Steps per [`Engine::advance`] call of [`run`]. The Strang splitting closes at the end of
/// every call (a half reaction step), so batch boundaries are part of the numerics: they
/// sit at fixed offsets from each stop, and checkpoints and interrupts happen only there,
/// which is what makes a resumed run bit-identical to an uninterrupted one.
pub const STEPS_PER_BATCH: u64 = 64;

/// How far a run has got: the stops whose callbacks have finished (stop 0 is t = 0), the
/// steps done since t = 0 and the doses added. Saved in checkpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub stops_done: usize,
    pub step: u64,
    pub doses_done: usize,
    /// Model time reached, s (kept by the adaptive loop; fixed steps derive it from
    /// `step`).
    #[serde(default)]
    pub time_s: f64,
}

/// What [`Hooks::on_batch`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Return now with [`Outcome::Stopped`] (an interrupt); the position is a batch
    /// boundary, resumable bit for bit.
    Stop,
}

/// How [`run`] ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    /// Every stop was reached; the position at the end.
    Finished(Position),
    Stopped(Position),
}

/// What the caller does at stops and between batches.
pub trait Hooks {
    type Error: From<Error>;
    /// At each stop, after the doses due then: read what is needed and write outputs.
    fn on_stop(&mut self, engine: &mut dyn Engine, stop: Stop) -> Result<(), Self::Error>;
    /// After each batch of steps, at model time `time_s`: progress, checkpoints, and the
    /// interrupt check.
    fn on_batch(
        &mut self,
        engine: &mut dyn Engine,
        at: Position,
        time_s: f64,
    ) -> Result<Flow, Self::Error>;
}

/// [`Hooks`] made of one closure called at every stop: no checkpoints, never stops early.
/// Build it with [`on_stop`].
pub struct OnStop<F, E>(F, std::marker::PhantomData<E>);

/// Hooks for [`run`] from a closure `f(engine, stop)`.
pub fn on_stop<E, F>(f: F) -> OnStop<F, E>
where
    E: From<Error>,
    F: FnMut(&mut dyn Engine, Stop) -> Result<(), E>,
{
    OnStop(f, std::marker::PhantomData)
}

impl<E, F> Hooks for OnStop<F, E>
where
    E: From<Error>,
    F: FnMut(&mut dyn Engine, Stop) -> Result<(), E>,
{
    type Error = E;
    fn on_stop(&mut self, engine: &mut dyn Engine, stop: Stop) -> Result<(), E> {
        (self.0)(engine, stop)
    }
    fn on_batch(&mut self, _: &mut dyn Engine, _: Position, _: f64) -> Result<Flow, E> {
        Ok(Flow::Continue)
    }
}

/// Advances `engine` through the stops of `schedule` from `start` (`Position::default()` for
/// a new run, a checkpoint's position to resume). At each stop it first adds the doses due
/// then (`doses` in time order; their times must be stops), then calls `hooks.on_stop`.
/// Steps between stops go in batches of [`STEPS_PER_BATCH`] counted from the stop (the
/// last batch before a stop and a shortened last step may be smaller).
pub fn run<H: Hooks>(
    engine: &mut dyn Engine,
    schedule: &OutputSchedule,
    doses: &[crate::model::DoseField],
    start: Position,
    hooks: &mut H,
) -> Result<Outcome, H::Error> {
    let tol = 1e-9 * schedule.dt_s;
    let times = &schedule.times_s;
    // Steps done before each stop.
    let mut first_step = vec![0u64; times.len()];
    for (i, w) in times.windows(2).enumerate() {
        let n: u64 = schedule
            .segments(w[0], w[1])
            .iter()
            .map(|s| s.n_steps)
            .sum();
        first_step[i + 1] = first_step[i] + n;
    }
    let mut pos = start;
    let stop = |engine: &mut dyn Engine, pos: &mut Position, hooks: &mut H| {
        let i = pos.stops_done;
        let time_s = times[i];
        while pos.doses_done < doses.len() && doses[pos.doses_done].time_s <= time_s + tol {
            let d = &doses[pos.doses_done];
            engine.add_to_field(d.species, &d.delta_mm)?;
            pos.doses_done += 1;
        }
        hooks.on_stop(
            engine,
            Stop {
                time_s,
                step: pos.step,
                output: schedule.is_output[i],
                lag_s: 0.0,
            },
        )?;
        pos.stops_done += 1;
        Ok::<(), H::Error>(())
    };
    if pos.stops_done == 0 {
        stop(engine, &mut pos, hooks)?;
    }
    if engine.is_adaptive() {
        // The coupled scheme: up to STEPS_PER_BATCH error-controlled steps per call, each
        // call ending at the next exact stop at the latest. The model time reached is kept
        // in the position, so a resumed run continues from the same place with the same
        // step size (saved in the engine state). With dense output, summary stops do not
        // cut steps: one step per call while one is pending, and each stop passed is
        // handed on with the fields interpolated within that step.
        let dense = engine.has_dense_output();
        // Hands on the summary stops before `exact` that the steps have passed.
        let passed = |engine: &mut dyn Engine, pos: &mut Position, hooks: &mut H, exact| {
            while pos.stops_done < exact && times[pos.stops_done] <= pos.time_s + tol {
                let i = pos.stops_done;
                hooks.on_stop(
                    engine,
                    Stop {
                        time_s: times[i],
                        step: pos.step,
                        output: schedule.is_output[i],
                        lag_s: (pos.time_s - times[i]).max(0.0),
                    },
                )?;
                pos.stops_done += 1;
            }
            Ok::<(), H::Error>(())
        };
        while pos.stops_done < times.len() {
            let mut exact = pos.stops_done;
            while dense && !schedule.exact[exact] {
                exact += 1;
            }
            let target = times[exact];
            if pos.time_s < times[pos.stops_done - 1] {
                pos.time_s = times[pos.stops_done - 1];
            }
            while target - pos.time_s > tol {
                let max_steps = if pos.stops_done < exact {
                    1
                } else {
                    STEPS_PER_BATCH
                };
                let (advanced, steps) = engine.advance_adaptive(target - pos.time_s, max_steps)?;
                pos.step += steps;
                pos.time_s = if target - (pos.time_s + advanced) <= tol {
                    target
                } else {
                    pos.time_s + advanced
                };
                passed(engine, &mut pos, hooks, exact)?;
                if hooks.on_batch(engine, pos, pos.time_s)? == Flow::Stop {
                    return Ok(Outcome::Stopped(pos));
                }
            }
            passed(engine, &mut pos, hooks, exact)?;
            stop(engine, &mut pos, hooks)?;
        }
        return Ok(Outcome::Finished(pos));
    }
    while pos.stops_done < times.len() {
        let i = pos.stops_done - 1;
        // Steps of this window already done (resuming mid-window).
        let mut skip = pos.step - first_step[i];
        let mut seg_start_s = times[i];
        for segment in schedule.segments(times[i], times[i + 1]) {
            let mut done = skip.min(segment.n_steps);
            skip -= done;
            while done < segment.n_steps {
                let n = (segment.n_steps - done).min(STEPS_PER_BATCH);
                engine.advance(n, segment.dt_s)?;
                done += n;
                pos.step += n;
                let time_s = seg_start_s + done as f64 * segment.dt_s;
                if hooks.on_batch(engine, pos, time_s)? == Flow::Stop {
                    return Ok(Outcome::Stopped(pos));
                }
            }
            seg_start_s += segment.n_steps as f64 * segment.dt_s;
        }
        stop(engine, &mut pos, hooks)?;
    }
    Ok(Outcome::Finished(pos))
}

/// How steady the spin-up got: per species, the largest change over the last window,
/// relative to the field's largest magnitude (plus 1e-9 mM), per hour.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SpinUpReport {
    /// Model time the spin-up ran, s (shorter than asked when it settled).
    pub duration_s: f64,
    pub dt_s: f64,
    /// Length of the final window the drift is measured over, s.
    pub window_s: f64,
    /// (species, max |ΔC| / max |C| per hour over the window).
    pub relative_drift_per_h: Vec<(String, f64)>,
    /// `time.spin_up_tolerance_per_h`, if the spin-up ran until the fields settled.
    #[serde(default)]
    pub tolerance_per_h: Option<f64>,
    /// The settling species that drifted most over the last window, and by how much
    /// (relative, per hour); ("", 0) when no species settles.
    #[serde(default)]
    pub worst: (String, f64),
    /// Whether every settling species is within `tolerance_per_h` (None without one).
    #[serde(default)]
    pub settled: Option<bool>,
    /// The voxels the drift was measured over: those with viab ≥ this ([`NECROTIC_VIAB`]),
    /// or every voxel (None) in a scenario without `viab`. Absent in older manifests.
    #[serde(default)]
    pub living_viab_min: Option<f32>,
}

/// Which species should settle in an untreated baseline: all but `viab` and the
/// cumulative counters (species no reaction consumes, such as Ox), which grow or fall by
/// design.
pub fn settling_species(scenario: &crate::config::Scenario) -> Vec<bool> {
    (0..scenario.species.len())
        .map(|s| {
            scenario.species[s].name != "viab"
                && scenario.reactions.iter().any(|r| {
                    let made: f64 = r.products.iter().filter(|p| p.0 == s).map(|p| p.1).sum();
                    let used: f64 = r.reactants.iter().filter(|p| p.0 == s).map(|p| p.1).sum();
                    made - used < 0.0
                })
        })
        .collect()
}

/// The adaptive scheme's relative tolerance during the spin-up, as a multiple of
/// `time.tolerance`: the spin-up's start (fields not yet in balance with the vessels) takes
/// steps of milliseconds, and only its end state is used; the 10-minute tumour means of
/// `fe_fenton_cdt` stay within the tests' bounds (tests/coupled.rs).
pub const SPIN_UP_TOLERANCE_SCALE: f64 = 10.0;

/// Below this viable fraction a voxel is necrotic, and the spin-up does not wait for its
/// chemistry: what dead cells leave behind runs on for days (their GSH is oxidised by H2O2
/// with no glutathione reductase to undo it, measured in the default's core at 1 % of the
/// GSSG range per hour after 48 h), and no regulation of the living tissue depends on it.
pub const NECROTIC_VIAB: f32 = 0.1;

/// Largest change between two states of each field over the voxels that `counts` marks
/// (all when empty), relative to the field's largest magnitude there in `after` (plus
/// 1e-9 mM), per hour of `span_s`.
fn relative_drift_per_h(
    before: &[Vec<f32>],
    after: &[Vec<f32>],
    counts: &[bool],
    span_s: f64,
) -> Vec<f64> {
    let counted = |i: usize| counts.is_empty() || counts[i];
    before
        .iter()
        .zip(after)
        .map(|(b, a)| {
            let (mut scale, mut change) = (0f32, 0f32);
            for (i, (x, y)) in b.iter().zip(a).enumerate() {
                if counted(i) {
                    scale = scale.max(y.abs());
                    change = change.max((x - y).abs());
                }
            }
            change as f64 / (scale as f64 + 1e-9) * 3600.0 / span_s
        })
        .collect()
}

/// Runs the baseline before t = 0 (no doses, no outputs) and measures the drift of every
/// field over windows of [`crate::config::SpinUp::window_s`]: over the last one for a
/// spin-up of fixed length; with `settle_per_h`, window after window until every species
/// `settles` marks drifts by at most that much (or `duration_s` is spent).
pub fn spin_up(
    engine: &mut dyn Engine,
    spin: crate::config::SpinUp,
    names: &[String],
    settles: &[bool],
) -> Result<SpinUpReport, Error> {
    let steps = |span: f64| (span / spin.dt_s).round().max(1.0) as u64;
    let n_all = steps(spin.duration_s);
    let n_window = steps(spin.window_s()).min(n_all);
    let all: Vec<usize> = (0..names.len()).collect();
    let worst = |drift: &[f64]| {
        drift
            .iter()
            .zip(names)
            .zip(settles)
            .filter(|(_, settles)| **settles)
            .map(|((d, n), _)| (n.clone(), *d))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or_default()
    };
    engine.scale_tolerance(SPIN_UP_TOLERANCE_SCALE);
    let mut done = match spin.settle_per_h {
        Some(_) => 0,
        None => {
            engine.advance(n_all - n_window, spin.dt_s)?;
            n_all - n_window
        }
    };
    // An error-controlled engine at the loose spin-up tolerance cannot resolve a small
    // drift (a relaxation measured 2.3× its true drift of 4e-3 per hour at 10 × 1e-2), so
    // a settled window there is confirmed by windows at the run's own tolerance.
    let mut loose = engine.is_adaptive();
    // Drift is measured over living voxels only (all of them without a `viab` field).
    let viab = names.iter().position(|n| n == "viab");
    let mut before = engine.read_fields(&all)?;
    let (drift, last_n) = loop {
        let n = n_window.min(n_all - done);
        engine.advance(n, spin.dt_s)?;
        done += n;
        let after = engine.read_fields(&all)?;
        let living: Vec<bool> = viab
            .map(|v| after[v].iter().map(|&x| x >= NECROTIC_VIAB).collect())
            .unwrap_or_default();
        let drift = relative_drift_per_h(&before, &after, &living, n as f64 * spin.dt_s);
        let (name, largest) = worst(&drift);
        log::debug!(
            "spin-up at {} s: largest drift {name} {largest:.3e} of its range per hour{}",
            done as f64 * spin.dt_s,
            if loose { " (loose tolerance)" } else { "" }
        );
        let settled = spin.settle_per_h.is_some_and(|tol| largest <= tol);
        if settled && loose && done < n_all {
            loose = false;
            engine.scale_tolerance(1.0);
        } else if settled || done >= n_all {
            break (drift, n);
        }
        before = after;
    };
    engine.scale_tolerance(1.0);
    let worst = worst(&drift);
    Ok(SpinUpReport {
        duration_s: done as f64 * spin.dt_s,
        dt_s: spin.dt_s,
        window_s: last_n as f64 * spin.dt_s,
        tolerance_per_h: spin.settle_per_h,
        settled: spin.settle_per_h.map(|tol| worst.1 <= tol),
        living_viab_min: viab.map(|_| NECROTIC_VIAB),
        worst,
        relative_drift_per_h: names.iter().cloned().zip(drift).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::relative_drift_per_h;

    #[test]
    fn drift_is_relative_per_hour_and_skips_voxels_not_counted() {
        // Two voxels over half an hour: the first moves 0.1 of a field whose largest value
        // is 2, the second (necrotic) moves 1.
        let before = vec![vec![1.9f32, 0.0]];
        let after = vec![vec![2.0f32, 1.0]];
        let all = relative_drift_per_h(&before, &after, &[], 1800.0);
        assert!((all[0] - 1.0).abs() < 1e-6, "{all:?}"); // 1 of 2, per 0.5 h
        let living = relative_drift_per_h(&before, &after, &[true, false], 1800.0);
        let want = 0.1 / 2.0 * 2.0;
        assert!((living[0] - want).abs() < 1e-6, "{living:?}");
    }
}
