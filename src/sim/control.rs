//! Callbacks that steer a run rather than write it: checkpoints every so many model
//! seconds, a stop at a model time, a stop on SIGINT/SIGTERM, and a progress bar.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::callback::{Action, Callback, CallbackError, Fields, Schedule, Status};
use super::Stop;

/// A checkpoint at every multiple of `every_s` of model time (not at the end).
pub struct CheckpointEvery {
    every_s: f64,
    next_s: f64,
    end_s: f64,
    tol_s: f64,
}

impl CheckpointEvery {
    /// Checkpoints every `every_s` s of model time, the first after `from_s` (0 for a new
    /// run, the resume time for a resumed one); `end_s` and `dt_s` are the run's.
    pub fn new(every_s: f64, from_s: f64, end_s: f64, dt_s: f64) -> CheckpointEvery {
        let mut c = CheckpointEvery {
            every_s,
            next_s: 0.0,
            end_s,
            tol_s: 1e-9 * dt_s,
        };
        c.next_s = c.next_after(from_s);
        c
    }

    /// The first multiple of `every_s` after `time_s`.
    fn next_after(&self, time_s: f64) -> f64 {
        ((time_s / self.every_s + 1e-9).floor() + 1.0) * self.every_s
    }
}

impl Callback for CheckpointEvery {
    fn name(&self) -> &str {
        "checkpoint_every"
    }
    fn schedule(&self) -> Schedule {
        Schedule::BatchesOnly
    }
    fn on_batch(&mut self, s: &Status) -> Action {
        if s.time_s >= self.next_s - self.tol_s && s.time_s < self.end_s - self.tol_s {
            Action::Checkpoint
        } else {
            Action::Continue
        }
    }
    fn on_checkpoint(&mut self, _: &[u8], s: &Status) -> Result<(), CallbackError> {
        self.next_s = self.next_after(s.time_s);
        Ok(())
    }
}

/// Stops the run with a checkpoint at the first batch boundary at or after `at_s`.
pub struct StopAt {
    at_s: f64,
    tol_s: f64,
}

impl StopAt {
    pub fn new(at_s: f64, dt_s: f64) -> StopAt {
        StopAt {
            at_s,
            tol_s: 1e-9 * dt_s,
        }
    }
}

impl Callback for StopAt {
    fn name(&self) -> &str {
        "stop_at"
    }
    fn schedule(&self) -> Schedule {
        Schedule::BatchesOnly
    }
    fn on_batch(&mut self, s: &Status) -> Action {
        if s.time_s >= self.at_s - self.tol_s {
            Action::Stop
        } else {
            Action::Continue
        }
    }
}

/// Stops the run with a checkpoint after SIGINT or SIGTERM, at the next batch boundary.
pub struct SignalStop {
    flag: Arc<AtomicBool>,
}

impl SignalStop {
    /// Installs the handlers. A second signal while the first is handled ends the process
    /// at once (exit 1), unless `forwarded`: under `ionfield sweep` the parent forwards
    /// the signal it got and Slurm may also signal the child directly, so a second signal
    /// must not end the run unsaved.
    pub fn install(forwarded: bool) -> Result<SignalStop, String> {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let error = |e| format!("cannot install a signal handler: {e}");
            if !forwarded {
                signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&flag))
                    .map_err(error)?;
            }
            signal_hook::flag::register(sig, Arc::clone(&flag)).map_err(error)?;
        }
        Ok(SignalStop { flag })
    }

    /// The flag the handlers set: true once a signal arrived.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.flag)
    }
}

impl Callback for SignalStop {
    fn name(&self) -> &str {
        "signal_stop"
    }
    fn schedule(&self) -> Schedule {
        Schedule::BatchesOnly
    }
    fn on_batch(&mut self, s: &Status) -> Action {
        if self.flag.load(Ordering::SeqCst) {
            eprintln!(
                "signal received: writing a checkpoint at t = {} s",
                s.time_s
            );
            Action::Stop
        } else {
            Action::Continue
        }
    }
}

/// A progress bar on a terminal (steps, rate, ETA, the last output time), else a log
/// line per output time.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: std::time::Instant,
}

impl Progress {
    /// Starts at `start_step` of `total_steps`.
    pub fn new(total_steps: u64, start_step: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total_steps);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:40}] step {pos}/{len} ({per_sec}, eta {eta}) {msg}",
                )
                .expect("static template is valid")
                .progress_chars("=> "),
            );
            bar.set_position(start_step);
            bar
        });
        Progress {
            bar,
            started: std::time::Instant::now(),
        }
    }
}

impl Callback for Progress {
    fn name(&self) -> &str {
        "progress"
    }
    fn schedule(&self) -> Schedule {
        Schedule::OutputTimes
    }
    fn on_stop(&mut self, stop: &Stop, _: &Fields, s: &Status) -> Result<(), CallbackError> {
        let msg = format!("output t = {} s written", stop.time_s);
        match &self.bar {
            Some(b) => b.set_message(msg),
            None => log::info!(
                "step {}/{}: {msg} ({:.1} s wall)",
                stop.step,
                s.total_steps,
                self.started.elapsed().as_secs_f64()
            ),
        }
        Ok(())
    }
    fn on_batch(&mut self, s: &Status) -> Action {
        if let Some(b) = &self.bar {
            b.set_position(s.step);
        }
        Action::Continue
    }
    fn on_end(
        &mut self,
        _: super::callback::End,
        _: &mut dyn crate::engine::Engine,
        _: &Status,
    ) -> Result<(), CallbackError> {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        Ok(())
    }
}
