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
}

/// Work counters of the reaction step (for logs, the manifest and benchmarks).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
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

/// Advances `engine` through every stop of `schedule`. At each stop it first adds the
/// doses due then (`doses` in time order; their times must be stops), then calls
/// `on_stop(engine, stop)`, which reads what it needs. `on_progress(steps_done,
/// steps_total)` is called after each batch of steps.
pub fn run<E: From<Error>>(
    engine: &mut dyn Engine,
    schedule: &OutputSchedule,
    doses: &[crate::model::DoseField],
    mut on_stop: impl FnMut(&mut dyn Engine, Stop) -> Result<(), E>,
    mut on_progress: impl FnMut(u64, u64),
) -> Result<(), E> {
    let total = schedule.n_steps();
    let tol = 1e-9 * schedule.dt_s;
    let mut next_dose = 0;
    let mut step = 0u64;
    let mut stop = |engine: &mut dyn Engine, i: usize, step: u64| -> Result<(), E> {
        let time_s = schedule.times_s[i];
        while next_dose < doses.len() && doses[next_dose].time_s <= time_s + tol {
            let d = &doses[next_dose];
            engine.add_to_field(d.species, &d.delta_mm)?;
            next_dose += 1;
        }
        on_stop(
            engine,
            Stop {
                time_s,
                step,
                output: schedule.is_output[i],
            },
        )
    };
    stop(engine, 0, 0)?;
    for (i, window) in schedule.times_s.windows(2).enumerate() {
        for segment in schedule.segments(window[0], window[1]) {
            // Submit in slices so progress moves on long intervals; the GPU engine
            // queues them without waiting.
            let mut left = segment.n_steps;
            while left > 0 {
                let n = left.min(64);
                engine.advance(n, segment.dt_s)?;
                step += n;
                left -= n;
                on_progress(step, total);
            }
        }
        stop(engine, i + 1, step)?;
    }
    Ok(())
}

/// How steady the spin-up got: per species, the largest change over the last window,
/// relative to the field's largest magnitude (plus 1e-9 mM), per hour.
#[derive(Clone, Debug, serde::Serialize)]
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
