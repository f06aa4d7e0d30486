//! Callbacks: values added to a [`super::Simulation`], each with its own [`Schedule`].
//! Writers (fields, time series, viability, manifest; `output::`), progress, the signal
//! stop and the checkpoint policy are all callbacks; the time loop knows none of them.

use super::{Phases, Stop};
use crate::engine::Engine;

/// When a callback acts at stops of the time loop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// At output times only (t = 0, every `time.output_interval_s`, `time.end_s`).
    OutputTimes,
    /// At every stop: output times, dose times, summary times and every callback's times.
    EveryStop,
    /// At t = 0, every multiple of the interval (s) and the end. The simulation adds these
    /// times as stops, so they are exact (the step before is shortened to land on them).
    TimeInterval(f64),
    /// Never at stops: only [`Callback::on_batch`] (progress, signals, checkpoints).
    BatchesOnly,
}

impl Schedule {
    /// Whether a callback of this schedule acts at `stop`; `tol_s` is the time tolerance.
    pub fn is_due(&self, stop: &Stop, end_s: f64, tol_s: f64) -> bool {
        match *self {
            Schedule::OutputTimes => stop.output,
            Schedule::EveryStop => true,
            Schedule::TimeInterval(every_s) => {
                let k = (stop.time_s / every_s).round();
                (stop.time_s - k * every_s).abs() <= tol_s || (stop.time_s - end_s).abs() <= tol_s
            }
            Schedule::BatchesOnly => false,
        }
    }
}

/// The fields read back at a stop, for the callbacks due there (f32, mM, x fastest).
pub struct Fields<'a> {
    pub(super) species: &'a [usize],
    pub(super) data: &'a [Vec<f32>],
}

impl<'a> Fields<'a> {
    /// The field of species `species_ix`, if some callback due at this stop asked for it.
    pub fn get(&self, species_ix: usize) -> Option<&'a [f32]> {
        self.species
            .iter()
            .position(|&s| s == species_ix)
            .map(|i| &self.data[i][..])
    }

    /// The field of a species the callback asked for in [`Callback::species`].
    pub fn species(&self, species_ix: usize) -> &'a [f32] {
        self.get(species_ix)
            .expect("the simulation reads every species a due callback asks for")
    }
}

/// Where the run is, for callbacks.
#[derive(Clone, Copy, Debug)]
pub struct Status<'a> {
    /// Model time, s.
    pub time_s: f64,
    /// Steps done since t = 0.
    pub step: u64,
    /// Steps of the whole run.
    pub total_steps: u64,
    /// Wall time of the run so far (all parts of a resumed run), s.
    pub wall_s: f64,
    /// Wall time per phase so far, s.
    pub phases: &'a Phases,
    /// The step the adaptive integrator will try next, s (`None` for fixed steps).
    pub next_step_s: Option<f64>,
}

/// Where the spin-up is, for [`Callback::on_spin_up`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpinUpStatus {
    /// Spin-up steps done.
    pub step: u64,
    /// Steps of the whole spin-up.
    pub total_steps: u64,
    /// Its step, s.
    pub dt_s: f64,
    /// Its model time, s (the run's t = 0 is its end).
    pub duration_s: f64,
    /// The step the adaptive integrator will try next, s (`None` for fixed steps).
    pub next_step_s: Option<f64>,
}

/// What a callback asks for after a batch of steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Continue,
    /// Save a checkpoint here and go on.
    Checkpoint,
    /// Save a checkpoint here and return [`super::Outcome::Stopped`].
    Stop,
}

/// How a run ended, for [`Callback::on_end`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The last stop was reached.
    Complete,
    /// Stopped at a batch boundary with a checkpoint written ([`Action::Stop`]).
    Stopped,
}

/// The state a callback keeps across a checkpoint: JSON and named per-voxel arrays.
#[derive(Clone, Debug, Default)]
pub struct Saved {
    pub json: serde_json::Value,
    /// (blob name, bytes); names must be unique within the checkpoint.
    pub blobs: Vec<(String, Vec<u8>)>,
}

/// A failure of a callback: the message, and whether it is the environment's (an
/// unwritable or full disk: exit 2) or the run's (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CallbackError {
    pub message: String,
    pub environment: bool,
}

impl CallbackError {
    /// A failure of the environment (disk, permissions): exit 2.
    pub fn environment(e: impl std::fmt::Display) -> CallbackError {
        CallbackError {
            message: format!("{e:#}"),
            environment: true,
        }
    }
    /// A failure of the run itself: exit 1.
    pub fn run(e: impl std::fmt::Display) -> CallbackError {
        CallbackError {
            message: format!("{e:#}"),
            environment: false,
        }
    }
}

/// Something the time loop calls at scheduled stops and after every batch of steps.
/// Every method but [`Callback::name`] and [`Callback::schedule`] has a default that does
/// nothing.
pub trait Callback {
    /// A name unique within the simulation: the key of the callback's checkpoint state.
    fn name(&self) -> &str;
    /// When [`Callback::on_stop`] is called.
    fn schedule(&self) -> Schedule;
    /// Species (scenario indices) to read back at a stop where this callback is due. The
    /// simulation reads the union of all due callbacks' species once per stop.
    fn species(&self, _stop: &Stop) -> Vec<usize> {
        Vec::new()
    }
    /// At a due stop, after the doses due then, with the fields asked for.
    fn on_stop(
        &mut self,
        _stop: &Stop,
        _fields: &Fields,
        _status: &Status,
    ) -> Result<(), CallbackError> {
        Ok(())
    }
    /// After every batch of steps (at most [`super::STEPS_PER_BATCH`]): the only places a
    /// run can checkpoint or stop, bit for bit resumable.
    fn on_batch(&mut self, _status: &Status) -> Action {
        Action::Continue
    }
    /// During the spin-up ([`super::Simulation::spin_up`]), before its first step and
    /// after every batch of at most [`super::STEPS_PER_BATCH`] baseline steps (progress).
    /// No fields or checkpoints happen there: [`Action::Stop`] ends the spin-up, and with
    /// it the run, which has not started (a signal must not wait hours for t = 0);
    /// [`Action::Checkpoint`] is ignored.
    fn on_spin_up(&mut self, _status: &SpinUpStatus) -> Action {
        Action::Continue
    }
    /// The state to keep in a checkpoint taken at `status` (`None`: nothing to keep).
    fn save(&mut self, _status: &Status) -> Option<Saved> {
        None
    }
    /// Continues from the state [`Callback::save`] returned (on resume).
    fn restore(&mut self, _saved: Saved) -> Result<(), String> {
        Ok(())
    }
    /// A checkpoint was taken at `status`: `bytes` is the encoded file.
    fn on_checkpoint(&mut self, _bytes: &[u8], _status: &Status) -> Result<(), CallbackError> {
        Ok(())
    }
    /// The run ended (complete, or stopped with a checkpoint); `engine` is there for
    /// final reports (reaction counters).
    fn on_end(
        &mut self,
        _end: End,
        _engine: &mut dyn Engine,
        _status: &Status,
    ) -> Result<(), CallbackError> {
        Ok(())
    }
}

/// A callback from a closure `f(stop, fields)` called at the stops of `schedule`, reading
/// `species`. Build it with [`from_fn`].
pub struct FnCallback<F> {
    name: String,
    schedule: Schedule,
    species: Vec<usize>,
    f: F,
}

/// A callback named `name` that calls `f(stop, fields)` at the stops of `schedule` with
/// the fields of `species` read back, e.g. to print a tumour mean every simulated minute.
pub fn from_fn<F>(name: &str, schedule: Schedule, species: Vec<usize>, f: F) -> FnCallback<F>
where
    F: FnMut(&Stop, &Fields) -> Result<(), CallbackError>,
{
    FnCallback {
        name: name.to_string(),
        schedule,
        species,
        f,
    }
}

impl<F> Callback for FnCallback<F>
where
    F: FnMut(&Stop, &Fields) -> Result<(), CallbackError>,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn schedule(&self) -> Schedule {
        self.schedule
    }
    fn species(&self, _stop: &Stop) -> Vec<usize> {
        self.species.clone()
    }
    fn on_stop(&mut self, stop: &Stop, fields: &Fields, _: &Status) -> Result<(), CallbackError> {
        (self.f)(stop, fields)
    }
}
