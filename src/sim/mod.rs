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

/// Advances `engine` through every output time of `schedule`, reading back `fields` (species
/// indices) only at output times and handing them to `on_output(time_s, step, fields)`.
/// `on_progress(steps_done, steps_total)` is called after each batch of steps.
pub fn run<E: From<Error>>(
    engine: &mut dyn Engine,
    schedule: &OutputSchedule,
    fields: &[usize],
    mut on_output: impl FnMut(f64, u64, Vec<Vec<f32>>) -> Result<(), E>,
    mut on_progress: impl FnMut(u64, u64),
) -> Result<(), E> {
    let total = schedule.n_steps();
    let mut step = 0u64;
    on_output(schedule.times_s[0], step, engine.read_fields(fields)?)?;
    for window in schedule.times_s.windows(2) {
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
        on_output(window[1], step, engine.read_fields(fields)?)?;
    }
    Ok(())
}
