//! The time loop: an [`Engine`] advanced from output time to output time, with snapshots
//! handed to the writers. The loop never knows which backend it drives.

pub mod schedule;

pub use schedule::OutputSchedule;

/// What ran, for logs and the manifest.
#[derive(Clone, Debug)]
pub struct EngineInfo {
    /// `gpu` or `cpu`.
    pub backend: String,
    /// Adapter name (GPU) or a description of the CPU path.
    pub adapter: String,
    /// Driver name and version where known.
    pub driver: String,
}

/// A backend that advances the fields. Implemented by `cpu::CpuEngine` and
/// `gpu::GpuEngine`.
pub trait Engine {
    fn info(&self) -> EngineInfo;
    /// Advances `n_steps` steps of `dt_s` seconds each. The GPU engine records and submits
    /// without waiting; nothing is read back.
    fn advance(&mut self, n_steps: u64, dt_s: f64) -> Result<(), Error>;
    /// Full 3D fields (mM, x fastest) of the given species, as f32. Waits for the device.
    fn read_fields(&mut self, species: &[usize]) -> Result<Vec<Vec<f32>>, Error>;
    /// Adds `delta_mm` (mM per voxel, x fastest) to species `species_ix` (a dose). The model
    /// zeroes the delta in held voxels. The CPU engine adds in f64, the GPU engine in f32.
    fn add_to_field(&mut self, species_ix: usize, delta_mm: &[f64]) -> Result<(), Error>;
    /// Work done by the reaction step so far (`None` without a network).
    fn reaction_stats(&mut self) -> Option<ReactionStats> {
        None
    }
    /// Everything that carries over from one step to the next (fields, the reaction
    /// integrator's per-voxel step sizes, the clock and the work counters), copied out
    /// exactly. Waits for the device.
    fn save_state(&mut self) -> Result<EngineState, Error>;
    /// Puts back a state saved by the same backend for the same model; afterwards the
    /// engine continues exactly (bit for bit) as the engine that saved it.
    fn restore_state(&mut self, state: &EngineState) -> Result<(), Error>;
}

/// The full state of an engine between steps, as raw little-endian bytes in the engine's
/// own precision (f32 on the GPU, f64 on the CPU), for checkpoints.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineState {
    /// `gpu` or `cpu` ([`EngineInfo::backend`]).
    pub backend: String,
    /// Bytes per value: 4 (f32) or 8 (f64).
    pub value_bytes: usize,
    /// Model time reached, s.
    pub clock_s: f64,
    /// Per species (scenario order), every voxel, x fastest, mM.
    pub fields: Vec<Vec<u8>>,
    /// Per voxel, the step size the reaction integrator ended its last call with, s
    /// (empty without a network).
    pub reaction_h_s: Vec<u8>,
    /// GPU only: per integrated species and voxel, the rounding residual that makes the
    /// f32 field a double-f32 value inside the reaction step, mM (empty on the CPU, whose
    /// fields are f64).
    pub reaction_residual_mm: Vec<u8>,
    /// Reaction work counters (`None` without a network).
    pub reaction_stats: Option<ReactionStats>,
}

impl EngineState {
    /// Checks that the state fits an engine of `backend` with `n_species` fields of
    /// `n_voxels` values of `value_bytes` bytes; the message says what differs.
    pub fn check_fits(
        &self,
        backend: &str,
        value_bytes: usize,
        n_species: usize,
        n_voxels: usize,
        has_network: bool,
        residual_bytes: usize,
    ) -> Result<(), String> {
        if self.backend != backend || self.value_bytes != value_bytes {
            return Err(format!(
                "the state was saved by the {} backend ({}-byte values); this engine is {backend} ({value_bytes}-byte values)",
                self.backend, self.value_bytes
            ));
        }
        let field_bytes = n_voxels * value_bytes;
        if self.fields.len() != n_species || self.fields.iter().any(|f| f.len() != field_bytes) {
            return Err(format!(
                "the state holds {} fields, the model has {n_species} species of {n_voxels} voxels",
                self.fields.len()
            ));
        }
        let h_bytes = if has_network { field_bytes } else { 0 };
        if self.reaction_h_s.len() != h_bytes {
            return Err(format!(
                "the state's reaction step sizes have {} bytes, expected {h_bytes}",
                self.reaction_h_s.len()
            ));
        }
        if self.reaction_residual_mm.len() != residual_bytes {
            return Err(format!(
                "the state's reaction residuals have {} bytes, expected {residual_bytes}",
                self.reaction_residual_mm.len()
            ));
        }
        Ok(())
    }
}

/// Work counters of the reaction step (for logs, the manifest and benchmarks).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReactionStats {
    /// Reaction calls (each covers every voxel once).
    pub calls: u64,
    /// Sub-steps attempted, summed over voxels and calls.
    pub substeps: u64,
    /// Most sub-steps one voxel needed in one call.
    pub max_substeps: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Gpu(#[from] crate::gpu::Error),
    /// A checkpoint state that does not fit this engine.
    #[error("cannot restore the checkpoint: {0}. Fix: resume with the backend and adapter that wrote it (see its manifest.json), or start the run again")]
    State(String),
    /// The reaction step produced a NaN, an Inf or a negative value, or could not finish.
    #[error("{problem} at voxel ({}, {}, {}) in the reaction step from t = {t0_s} s to {t1_s} s. Reactions that touch it: {reactions}. Fix: {fix}", .voxel[0], .voxel[1], .voxel[2])]
    Reaction {
        problem: String,
        voxel: [usize; 3],
        t0_s: f64,
        t1_s: f64,
        reactions: String,
        fix: String,
    },
}

impl Error {
    /// The failure of `fault` in voxel `voxel` (flat index) in the reaction call [t0_s, t1_s].
    pub fn reaction(
        net: &crate::chem::Network,
        fault: crate::chem::ros2::Fault,
        voxel: usize,
        shape: [usize; 3],
        t0_s: f64,
        t1_s: f64,
    ) -> Error {
        use crate::chem::ros2::Fault;
        let [nx, ny, _] = shape;
        let ijk = [voxel % nx, (voxel / nx) % ny, voxel / (nx * ny)];
        let (problem, species, fix) = match fault {
            Fault::NonFinite(i) => (
                "NaN or Inf",
                Some(net.state[i]),
                "look for rate terms that can overflow (exp of a large argument, a division by a small quantity) and lower time.dt_s",
            ),
            Fault::Negative(i) => (
                "a negative concentration",
                Some(net.state[i]),
                "tighten chemistry.rtol or lower time.dt_s",
            ),
            Fault::TooManySubsteps(i) => (
                "the reaction integrator exceeded chemistry.max_substeps (a blow-up or an extremely fast transient; the step size was limited by",
                Some(net.state[i]),
                "raise chemistry.max_substeps, loosen chemistry.rtol, or lower time.dt_s",
            ),
        };
        let s = species.expect("every fault names a species");
        let name = &net.species_names[s];
        let problem = if problem.ends_with("by") {
            format!("{problem} `{name}`)")
        } else {
            format!("{problem} in species `{name}`")
        };
        let reactions = net.reactions_touching(s);
        Error::Reaction {
            problem,
            voxel: ijk,
            t0_s,
            t1_s,
            reactions,
            fix: fix.into(),
        }
    }
}

/// One stop of [`run`], handed to its callback after the doses due at that time.
#[derive(Clone, Copy, Debug)]
pub struct Stop {
    pub time_s: f64,
    /// Steps done since t = 0.
    pub step: u64,
    /// Files are due (an output time), not only a summary.
    pub output: bool,
}

/// Steps per [`Engine::advance`] call of [`run`]. The Strang splitting closes at the end of
/// every call (a half reaction step), so batch boundaries are part of the numerics: they
/// sit at fixed offsets from each stop, and checkpoints and interrupts happen only there,
/// which is what makes a resumed run bit-identical to an uninterrupted one.
pub const STEPS_PER_BATCH: u64 = 64;

/// How far a run has got: the stops whose callbacks have finished (stop 0 is t = 0), the
/// steps done since t = 0 and the doses added. Saved in checkpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub stops_done: usize,
    pub step: u64,
    pub doses_done: usize,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Finished,
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
            },
        )?;
        pos.stops_done += 1;
        Ok::<(), H::Error>(())
    };
    if pos.stops_done == 0 {
        stop(engine, &mut pos, hooks)?;
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
    Ok(Outcome::Finished)
}

/// How steady the spin-up got: per species, the largest change over the last window,
/// relative to the field's largest magnitude (plus 1e-9 mM), per hour.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SpinUpReport {
    pub duration_s: f64,
    pub dt_s: f64,
    /// Length of the final window the drift is measured over, s.
    pub window_s: f64,
    /// (species, max |ΔC| / max |C| per hour over the window).
    pub relative_drift_per_h: Vec<(String, f64)>,
}

/// Runs the baseline for `spin.duration_s` before t = 0 (no doses, no outputs) and
/// measures the drift over the last tenth (at most 10 min) of it.
pub fn spin_up(
    engine: &mut dyn Engine,
    spin: crate::config::SpinUp,
    names: &[String],
) -> Result<SpinUpReport, Error> {
    let window_s = (spin.duration_s / 10.0).min(600.0);
    let steps = |span: f64| (span / spin.dt_s).round().max(1.0) as u64;
    let n_all = steps(spin.duration_s);
    let n_window = steps(window_s).min(n_all);
    let all: Vec<usize> = (0..names.len()).collect();
    engine.advance(n_all - n_window, spin.dt_s)?;
    let before = engine.read_fields(&all)?;
    engine.advance(n_window, spin.dt_s)?;
    let after = engine.read_fields(&all)?;
    let window_s = n_window as f64 * spin.dt_s;
    let relative_drift_per_h = names
        .iter()
        .zip(before.iter().zip(&after))
        .map(|(name, (b, a))| {
            let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())) as f64 + 1e-9;
            let change = b.iter().zip(a).fold(0f32, |m, (x, y)| m.max((x - y).abs())) as f64;
            (name.clone(), change / scale * 3600.0 / window_s)
        })
        .collect();
    Ok(SpinUpReport {
        duration_s: n_all as f64 * spin.dt_s,
        dt_s: spin.dt_s,
        window_s,
        relative_drift_per_h,
    })
}
