//! [`Simulation`]: an engine, the stops of a scenario, its doses and the callbacks added
//! to it; `run`, `run_until`, `checkpoint` and `restore` (resume). Nothing here knows
//! which backend it drives or what the callbacks write.

use std::time::Instant;

use super::callback::{
    Action, Callback, CallbackError, End, Fields, Saved, Schedule, SpinUpStatus, Status,
};
use super::checkpoint::Checkpoint;
use super::{Flow, Hooks, OutputSchedule, Phases, Position, SpinUpReport, Stop};
use crate::config::{Scenario, SpinUp};
use crate::engine::{self, Engine};
use crate::model::{DoseField, Model};

/// Why a simulation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine failed (a reaction fault, a device error, a state that does not fit).
    #[error(transparent)]
    Engine(#[from] engine::Error),
    /// A callback failed (a writer could not write).
    #[error(transparent)]
    Callback(#[from] CallbackError),
    /// A callback (a signal) stopped the spin-up: the run has not started.
    #[error("stopped during the spin-up, at {done_s} s of its {duration_s} s: the run itself had not started, so there is no checkpoint. Fix: run it again (the spin-up starts over)")]
    SpinUpStopped { done_s: f64, duration_s: f64 },
    /// A checkpoint that does not belong to this simulation.
    #[error("cannot restore the checkpoint: {0}. Fix: resume with the ionfield version, scenario and backend that wrote it, or start the run again")]
    Restore(String),
}

/// What a checkpoint records about where the run came from (beside the engine state),
/// so `resume` can rebuild the same simulation.
#[derive(Clone, Debug, Default)]
pub struct RunIdentity {
    /// The adapter's name as the driver reports it (`cpu` for the CPU backend).
    pub adapter_name: String,
    /// SHA-256 of the resolved scenario the run was started from.
    pub config_sha256: String,
    /// Absolute folder that relative paths of the scenario start from.
    pub base_dir: String,
    /// The files the scenario read (masks, vessel CSV) and their SHA-256 at the start.
    pub input_files: Vec<super::checkpoint::InputFile>,
}

/// The engine during the spin-up: each `advance` goes in batches of at most
/// [`super::STEPS_PER_BATCH`] steps (for an adaptive engine, of the span those steps
/// cover), after each of which the callbacks hear where the spin-up is. Everything else
/// passes through: every method of [`Engine`] is forwarded, the defaulted ones too (a new
/// one must be added here).
struct SpinUpEngine<'a> {
    engine: &'a mut dyn Engine,
    callbacks: &'a mut [Box<dyn Callback>],
    status: SpinUpStatus,
    /// A callback asked to stop: every later step is skipped.
    stopped: bool,
}

impl SpinUpEngine<'_> {
    fn report(&mut self) {
        self.status.next_step_s = self.engine.next_step_s();
        for c in self.callbacks.iter_mut() {
            if c.on_spin_up(&self.status) == Action::Stop {
                self.stopped = true;
            }
        }
    }
}

impl Engine for SpinUpEngine<'_> {
    fn info(&self) -> engine::EngineInfo {
        self.engine.info()
    }
    fn advance(&mut self, n_steps: u64, dt_s: f64) -> Result<(), engine::Error> {
        if self.stopped {
            return Ok(());
        }
        if self.engine.is_adaptive() {
            // The span of the steps in calls of at most STEPS_PER_BATCH error-controlled
            // steps: batches of fixed length would cap the step at 64·dt (32 s for the
            // presets), where the settling baseline allows minutes.
            let (start, span_s) = (self.status.step, n_steps as f64 * dt_s);
            let mut t_s = 0.0;
            while t_s < span_s * (1.0 - 1e-12) {
                let (advanced_s, _) = self
                    .engine
                    .advance_adaptive(span_s - t_s, super::STEPS_PER_BATCH)?;
                t_s += advanced_s;
                self.status.step = start + ((t_s / dt_s).round() as u64).min(n_steps);
                self.report();
                // A remainder below the stepper's own end tolerance is not stepped.
                if advanced_s <= 0.0 || self.stopped {
                    break;
                }
            }
            // Stopped inside the span: the status keeps where the spin-up stood.
            if !self.stopped {
                self.status.step = start + n_steps;
            }
            return Ok(());
        }
        let mut done = 0;
        while done < n_steps {
            let n = (n_steps - done).min(super::STEPS_PER_BATCH);
            self.engine.advance(n, dt_s)?;
            done += n;
            self.status.step += n;
            self.report();
            if self.stopped {
                return Ok(());
            }
        }
        Ok(())
    }
    fn read_fields(&mut self, species: &[usize]) -> Result<Vec<Vec<f32>>, engine::Error> {
        self.engine.read_fields(species)
    }
    fn add_to_field(&mut self, species_ix: usize, delta_mm: &[f64]) -> Result<(), engine::Error> {
        self.engine.add_to_field(species_ix, delta_mm)
    }
    fn reaction_stats(&mut self) -> Option<engine::ReactionStats> {
        self.engine.reaction_stats()
    }
    fn is_adaptive(&self) -> bool {
        self.engine.is_adaptive()
    }
    fn advance_adaptive(
        &mut self,
        span_s: f64,
        max_steps: u64,
    ) -> Result<(f64, u64), engine::Error> {
        self.engine.advance_adaptive(span_s, max_steps)
    }
    fn scale_tolerance(&mut self, factor: f64) {
        self.engine.scale_tolerance(factor)
    }
    fn set_interrupt(&mut self, flag: std::sync::Arc<std::sync::atomic::AtomicBool>) {
        self.engine.set_interrupt(flag)
    }

    fn step_stats(&self) -> Option<engine::StepStats> {
        self.engine.step_stats()
    }
    fn next_step_s(&self) -> Option<f64> {
        self.engine.next_step_s()
    }
    fn save_state(&mut self) -> Result<engine::EngineState, engine::Error> {
        self.engine.save_state()
    }
    fn restore_state(&mut self, state: &engine::EngineState) -> Result<(), engine::Error> {
        self.engine.restore_state(state)
    }
}

/// The checkpoint's record of the simulation's own bookkeeping.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedRun {
    /// Wall time of the run up to the checkpoint, s.
    wall_s: f64,
    phases: Phases,
    /// Per callback name: its JSON state and the names of its blobs.
    callbacks: serde_json::Map<String, serde_json::Value>,
}

/// Wall-clock bookkeeping: time per phase, summed over resumed parts.
struct Clock {
    phases: Phases,
    /// Wall time of earlier parts of a resumed run, s.
    earlier_s: f64,
    started: Instant,
    mark: Instant,
}

impl Clock {
    fn wall_s(&self) -> f64 {
        self.earlier_s + self.started.elapsed().as_secs_f64()
    }
    /// Adds the time since the last mark to `phase` and restarts the mark.
    fn lap(&mut self, phase: fn(&mut Phases) -> &mut f64) {
        *phase(&mut self.phases) += self.mark.elapsed().as_secs_f64();
        self.mark = Instant::now();
    }
}

/// A scenario's time loop on one engine, with callbacks (writers, progress, checkpoints)
/// added as values.
///
/// ```
/// use ionfield::{config, cpu::CpuEngine, model::Model, sim::{callback, Simulation}};
///
/// let sets = ["time.end_s=4".to_string(), "grid.shape=[8,8,8]".to_string(),
///             "grid.voxel_um=160".to_string(), "time.spin_up_s=0".to_string(),
///             "output.slices=[4]".to_string()];
/// let scenario = config::load_str(config::DEFAULT_SCENARIO_TOML, config::DEFAULT_SOURCE, &sets)
///     .expect("valid scenario");
/// let model = Model::build(&scenario);
/// let mut sim = Simulation::new(&scenario, &model, Box::new(CpuEngine::new(&model)));
/// let o2 = scenario.species.iter().position(|s| s.name == "O2").unwrap();
/// let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
/// let log = seen.clone();
/// sim.add(callback::from_fn("o2_max", callback::Schedule::TimeInterval(2.0), vec![o2],
///     move |stop, fields| {
///         log.borrow_mut().push(stop.time_s);
///         assert!(fields.species(o2).iter().all(|&c| c <= 0.054 + 1e-6));
///         Ok(())
///     }));
/// sim.run().unwrap();
/// // Called at t = 0, every 2 s and the end, exactly.
/// assert_eq!(*seen.borrow(), [0.0, 2.0, 4.0]);
/// assert_eq!(sim.time_s(), 4.0);
/// ```
pub struct Simulation {
    engine: Box<dyn Engine>,
    species_names: Vec<String>,
    spin: Option<SpinUp>,
    /// Per species: whether the spin-up waits for it to settle ([`super::settling_species`]).
    settles: Vec<bool>,
    schedule: OutputSchedule,
    doses: Vec<DoseField>,
    position: Position,
    callbacks: Vec<Box<dyn Callback>>,
    end_s: f64,
    clock: Clock,
    identity: RunIdentity,
}

impl Simulation {
    /// The time loop of `scenario` (its output times and doses) on `engine`, built for
    /// `model`, at t = 0, with no callbacks.
    pub fn new(scenario: &Scenario, model: &Model, engine: Box<dyn Engine>) -> Simulation {
        let schedule =
            OutputSchedule::new(&scenario.time).with_stops(scenario.doses.iter().map(|d| d.time_s));
        let now = Instant::now();
        Simulation {
            engine,
            species_names: scenario.species.iter().map(|s| s.name.clone()).collect(),
            spin: scenario.spin_up,
            settles: super::settling_species(scenario),
            schedule,
            doses: model.doses.clone(),
            position: Position::default(),
            callbacks: Vec::new(),
            end_s: scenario.time.end_s,
            clock: Clock {
                phases: Phases::default(),
                earlier_s: 0.0,
                started: now,
                mark: now,
            },
            identity: RunIdentity::default(),
        }
    }

    /// Adds a callback; callbacks act in the order they were added. A
    /// [`Schedule::TimeInterval`] adds its times as stops (before the run starts).
    pub fn add(&mut self, callback: impl Callback + 'static) {
        self.add_boxed(Box::new(callback));
    }

    /// [`Simulation::add`] for a boxed callback.
    pub fn add_boxed(&mut self, callback: Box<dyn Callback>) {
        if let Schedule::TimeInterval(every_s) = callback.schedule() {
            let n = (self.end_s / every_s).ceil() as u64;
            self.add_stops((1..n).map(|k| k as f64 * every_s));
        }
        self.callbacks.push(callback);
    }

    /// Adds exact stops inside [0, end]; stops are where callbacks act and where batches
    /// of steps start, so they belong to the numerics of a run.
    pub fn add_stops(&mut self, times_s: impl IntoIterator<Item = f64>) {
        self.change_schedule(|s| s.with_stops(times_s));
    }

    /// Adds summary stops inside [0, end]: exact for fixed steps; an engine with dense
    /// output (the coupled scheme) steps over them and its fields there are interpolated.
    pub fn add_summary_stops(&mut self, times_s: impl IntoIterator<Item = f64>) {
        self.change_schedule(|s| s.with_summary_stops(times_s));
    }

    fn change_schedule(&mut self, f: impl FnOnce(OutputSchedule) -> OutputSchedule) {
        assert_eq!(
            self.position,
            Position::default(),
            "stops are added before the run starts"
        );
        self.schedule = f(std::mem::take(&mut self.schedule));
    }

    /// What a checkpoint records about the run's origin (resume checks it).
    pub fn set_identity(&mut self, identity: RunIdentity) {
        self.identity = identity;
    }

    pub fn identity(&self) -> &RunIdentity {
        &self.identity
    }

    pub fn engine(&mut self) -> &mut dyn Engine {
        self.engine.as_mut()
    }

    /// Model time reached, s.
    pub fn time_s(&self) -> f64 {
        self.schedule.time_at(self.position)
    }

    pub fn position(&self) -> Position {
        self.position
    }

    /// Steps of the whole run.
    pub fn total_steps(&self) -> u64 {
        self.schedule.n_steps()
    }

    /// The stops of the loop (output, dose, summary and callback times).
    pub fn schedule(&self) -> &OutputSchedule {
        &self.schedule
    }

    /// Wall time of the run so far (every part of a resumed run), s.
    pub fn wall_s(&self) -> f64 {
        self.clock.wall_s()
    }

    /// Wall time per phase so far, s.
    pub fn phases(&self) -> &Phases {
        &self.clock.phases
    }

    /// Wall time per phase so far, s; `setup_s` is the caller's to add.
    pub fn phases_mut(&mut self) -> &mut Phases {
        &mut self.clock.phases
    }

    /// Runs the untreated baseline before t = 0 (`time.spin_up_s`: no doses, no stops)
    /// and reports how steady it got; `None` without a spin-up. It advances in batches of
    /// at most [`super::STEPS_PER_BATCH`] steps, like the run, and calls every callback's
    /// [`Callback::on_spin_up`] before the first and after each (progress).
    pub fn spin_up(&mut self) -> Result<Option<SpinUpReport>, Error> {
        let Some(spin) = self.spin else {
            return Ok(None);
        };
        self.clock.mark = Instant::now();
        let mut batched = SpinUpEngine {
            engine: self.engine.as_mut(),
            callbacks: &mut self.callbacks,
            status: SpinUpStatus {
                step: 0,
                total_steps: spin.n_steps(),
                dt_s: spin.dt_s,
                duration_s: spin.duration_s,
                next_step_s: None,
            },
            stopped: false,
        };
        batched.report();
        let report = super::spin_up(&mut batched, spin, &self.species_names, &self.settles)?;
        if batched.stopped {
            return Err(Error::SpinUpStopped {
                done_s: batched.status.step as f64 * spin.dt_s,
                duration_s: spin.duration_s,
            });
        }
        self.clock.lap(|p| &mut p.spin_up_s);
        Ok(Some(report))
    }

    /// Runs to the end (from t = 0, or from where the run stopped or was restored).
    pub fn run(&mut self) -> Result<super::Outcome, Error> {
        self.run_loop(None)
    }

    /// Runs until model time `t_s` (the first batch boundary at or after it) and returns
    /// [`super::Outcome::Stopped`] there, without a checkpoint; [`Simulation::run`]
    /// continues exactly from there.
    pub fn run_until(&mut self, t_s: f64) -> Result<super::Outcome, Error> {
        self.run_loop(Some(t_s))
    }

    fn run_loop(&mut self, until_s: Option<f64>) -> Result<super::Outcome, Error> {
        self.clock.mark = Instant::now();
        let mut runner = Runner {
            callbacks: &mut self.callbacks,
            clock: &mut self.clock,
            schedule: &self.schedule,
            end_s: self.end_s,
            until_s,
            names: &self.species_names,
            identity: &self.identity,
            stopped_by_callback: false,
            total_steps: self.schedule.n_steps(),
        };
        let result = super::run(
            self.engine.as_mut(),
            &self.schedule,
            &self.doses,
            self.position,
            &mut runner,
        );
        let stopped_by_callback = runner.stopped_by_callback;
        let outcome = result?;
        let end = match outcome {
            super::Outcome::Finished(pos) => {
                self.position = pos;
                Some(End::Complete)
            }
            super::Outcome::Stopped(pos) => {
                self.position = pos;
                stopped_by_callback.then_some(End::Stopped)
            }
        };
        // `run_until` pauses without ending the run.
        if let Some(end) = end {
            let phases = self.clock.phases.clone();
            let status = Status {
                phases: &phases,
                ..self.status()
            };
            for c in &mut self.callbacks {
                c.on_end(end, self.engine.as_mut(), &status)?;
            }
            self.clock.lap(|p| &mut p.outputs_s);
        }
        Ok(outcome)
    }

    fn status(&self) -> Status<'_> {
        Status {
            time_s: self.time_s(),
            step: self.position.step,
            total_steps: self.schedule.n_steps(),
            wall_s: self.clock.wall_s(),
            phases: &self.clock.phases,
            next_step_s: self.engine.next_step_s(),
        }
    }

    /// A checkpoint of the current position (between runs), with every callback's state;
    /// callbacks' [`Callback::on_checkpoint`] are not called.
    pub fn checkpoint(&mut self) -> Result<Checkpoint, Error> {
        let time_s = self.time_s();
        let step = self.position.step;
        let total_steps = self.schedule.n_steps();
        build_checkpoint(
            self.engine.as_mut(),
            &mut self.callbacks,
            &self.clock,
            &self.species_names,
            &self.identity,
            self.position,
            (time_s, step, total_steps),
        )
    }

    /// Continues from `checkpoint` (taken by a simulation of the same scenario, backend
    /// and callbacks, which must be added before): the engine state, the position, the
    /// wall-time bookkeeping and every callback's state.
    pub fn restore(&mut self, checkpoint: &Checkpoint) -> Result<(), Error> {
        let h = &checkpoint.header;
        let state = checkpoint
            .engine_state(&self.species_names)
            .map_err(Error::Restore)?;
        self.engine.restore_state(&state)?;
        let saved: SavedRun = serde_json::from_value(h.run.clone()).map_err(|e| {
            Error::Restore(format!(
                "its run state cannot be read ({e}); it was written by ionfield {}",
                h.ionfield_version
            ))
        })?;
        for c in &mut self.callbacks {
            let Some(entry) = saved.callbacks.get(c.name()) else {
                continue;
            };
            let blobs = entry["blobs"]
                .as_array()
                .map(|names| {
                    names
                        .iter()
                        .filter_map(|n| n.as_str())
                        .filter_map(|n| checkpoint.blob(n).map(|b| (n.to_string(), b.to_vec())))
                        .collect()
                })
                .unwrap_or_default();
            c.restore(Saved {
                json: entry["state"].clone(),
                blobs,
            })
            .map_err(|e| Error::Restore(format!("{}: {e}", c.name())))?;
        }
        self.position = h.position;
        self.clock.phases = saved.phases;
        self.clock.earlier_s = saved.wall_s;
        self.clock.started = Instant::now();
        self.identity = RunIdentity {
            adapter_name: h.adapter_name.clone(),
            config_sha256: h.config_sha256.clone(),
            base_dir: h.base_dir.clone(),
            input_files: h.input_files.clone(),
        };
        Ok(())
    }
}

/// Engine state + every callback's state → a checkpoint at `pos`.
fn build_checkpoint(
    engine: &mut dyn Engine,
    callbacks: &mut [Box<dyn Callback>],
    clock: &Clock,
    names: &[String],
    identity: &RunIdentity,
    pos: Position,
    (time_s, step, total_steps): (f64, u64, u64),
) -> Result<Checkpoint, Error> {
    let state = engine.save_state()?;
    let status = Status {
        time_s,
        step,
        total_steps,
        wall_s: clock.wall_s(),
        phases: &clock.phases,
        next_step_s: engine.next_step_s(),
    };
    let mut saved_callbacks = serde_json::Map::new();
    let mut blobs = Vec::new();
    for c in callbacks.iter_mut() {
        if let Some(saved) = c.save(&status) {
            let names: Vec<&str> = saved.blobs.iter().map(|b| b.0.as_str()).collect();
            saved_callbacks.insert(
                c.name().to_string(),
                serde_json::json!({ "state": saved.json, "blobs": names }),
            );
            blobs.extend(saved.blobs);
        }
    }
    let run = SavedRun {
        wall_s: status.wall_s,
        phases: clock.phases.clone(),
        callbacks: saved_callbacks,
    };
    Ok(Checkpoint::new(
        state,
        names,
        &identity.adapter_name,
        &engine.info(),
        identity.config_sha256.clone(),
        identity.base_dir.clone(),
        identity.input_files.clone(),
        pos,
        time_s,
        serde_json::to_value(run).expect("the run state is plain data"),
        blobs,
    ))
}

/// The loop's hooks: dispatches stops and batches to the callbacks.
struct Runner<'a> {
    callbacks: &'a mut Vec<Box<dyn Callback>>,
    clock: &'a mut Clock,
    schedule: &'a OutputSchedule,
    end_s: f64,
    until_s: Option<f64>,
    names: &'a [String],
    identity: &'a RunIdentity,
    /// A callback asked to stop ([`Action::Stop`]), not `run_until`.
    stopped_by_callback: bool,
    /// Steps of the whole run (computed once: O(stops)).
    total_steps: u64,
}

impl Hooks for Runner<'_> {
    type Error = Error;

    fn on_stop(&mut self, engine: &mut dyn Engine, stop: Stop) -> Result<(), Error> {
        self.clock.lap(|p| &mut p.steps_s);
        let tol = 1e-9 * self.schedule.dt_s;
        let due: Vec<bool> = self
            .callbacks
            .iter()
            .map(|c| c.schedule().is_due(&stop, self.end_s, tol))
            .collect();
        // One readback per stop: the union of what the due callbacks read.
        let mut read: Vec<usize> = Vec::new();
        for (c, _) in self.callbacks.iter().zip(&due).filter(|(_, &d)| d) {
            for s in c.species(&stop) {
                if !read.contains(&s) {
                    read.push(s);
                }
            }
        }
        let data = if read.is_empty() {
            Vec::new()
        } else if stop.lag_s > 0.0 {
            engine.read_fields_before(&read, stop.lag_s)?
        } else {
            engine.read_fields(&read)?
        };
        self.clock.lap(|p| &mut p.readback_s);
        let fields = Fields {
            species: &read,
            data: &data,
        };
        let phases = self.clock.phases.clone();
        let status = Status {
            time_s: stop.time_s,
            step: stop.step,
            total_steps: self.total_steps,
            wall_s: self.clock.wall_s(),
            phases: &phases,
            next_step_s: engine.next_step_s(),
        };
        for (c, _) in self.callbacks.iter_mut().zip(&due).filter(|(_, &d)| d) {
            c.on_stop(&stop, &fields, &status)?;
        }
        self.clock.lap(|p| &mut p.outputs_s);
        Ok(())
    }

    fn on_batch(
        &mut self,
        engine: &mut dyn Engine,
        at: Position,
        time_s: f64,
    ) -> Result<Flow, Error> {
        self.clock.lap(|p| &mut p.steps_s);
        let total_steps = self.total_steps;
        let phases = self.clock.phases.clone();
        let status = Status {
            time_s,
            step: at.step,
            total_steps,
            wall_s: self.clock.wall_s(),
            phases: &phases,
            next_step_s: engine.next_step_s(),
        };
        let action = self
            .callbacks
            .iter_mut()
            .map(|c| c.on_batch(&status))
            .max()
            .unwrap_or(Action::Continue);
        if action >= Action::Checkpoint {
            let ck = build_checkpoint(
                engine,
                self.callbacks,
                self.clock,
                self.names,
                self.identity,
                at,
                (time_s, at.step, total_steps),
            )?;
            let bytes = ck.encode();
            let phases = self.clock.phases.clone();
            let status = Status {
                wall_s: self.clock.wall_s(),
                phases: &phases,
                ..status
            };
            for c in self.callbacks.iter_mut() {
                c.on_checkpoint(&bytes, &status)?;
            }
            self.clock.lap(|p| &mut p.checkpoints_s);
        }
        let until = self
            .until_s
            .is_some_and(|t| time_s >= t - 1e-9 * self.schedule.dt_s);
        self.stopped_by_callback = action == Action::Stop;
        Ok(if action == Action::Stop || until {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }
}
