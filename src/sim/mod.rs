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
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Gpu(#[from] crate::gpu::Error),
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
