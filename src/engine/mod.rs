//! The engine interface: what every backend (`cpu`, `gpu`) does, the state it saves, and
//! the Strang splitting's reaction calls, written once for both.
//!
//! This is the ground floor with [`crate::grid`]: it imports nothing else from ionfield.

pub mod control;
pub mod krylov;

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
/// `gpu::GpuEngine`; the simulation never knows which it drives.
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
    /// Whether this engine steps adaptively (`time.scheme = "coupled"`): the time loop
    /// then calls [`Engine::advance_adaptive`] instead of [`Engine::advance`].
    fn is_adaptive(&self) -> bool {
        false
    }
    /// Coupled adaptive stepping: advances by `span_s` seconds of model time, or less if
    /// `max_steps` steps are accepted first; returns (model time advanced, s; steps
    /// accepted). The last step is shortened to land exactly on the end of the span.
    fn advance_adaptive(&mut self, span_s: f64, max_steps: u64) -> Result<(f64, u64), Error> {
        let _ = (span_s, max_steps);
        Err(Error::Device(
            "this backend has no coupled time stepping; use the CPU backend (--backend cpu)".into(),
        ))
    }
    /// Whether [`Engine::read_fields_before`] works: the loop then steps over summary stops
    /// instead of shortening steps to land on them.
    fn has_dense_output(&self) -> bool {
        false
    }
    /// Fields (as [`Engine::read_fields`]) at `lag_s` seconds of model time before the
    /// present, inside the span of the last [`Engine::advance_adaptive`] call: linear
    /// interpolation between its start and end (second order, like the step; positive and
    /// conserving wherever the two states are).
    fn read_fields_before(
        &mut self,
        species: &[usize],
        lag_s: f64,
    ) -> Result<Vec<Vec<f32>>, Error> {
        let _ = (species, lag_s);
        Err(Error::Device(
            "this backend has no dense output (interpolated summaries)".into(),
        ))
    }
    /// Multiplies the adaptive integrator's relative tolerance by `factor` from now on
    /// (1 = as configured); the spin-up loosens it (only where it ends matters). Fixed steps
    /// ignore it.
    fn scale_tolerance(&mut self, factor: f64) {
        let _ = factor;
    }
    /// The step the adaptive integrator will try next, s (`None` for fixed steps and before
    /// the first step); the progress estimate reads it.
    fn next_step_s(&self) -> Option<f64> {
        None
    }
    /// Steps, rejections and the step-size range of the adaptive integrator (`None` for
    /// fixed steps).
    fn step_stats(&self) -> Option<StepStats> {
        None
    }
    /// A flag that, once true (a signal arrived), makes an adaptive span end after the step
    /// in progress instead of at its end, so that a stop request is honoured within one
    /// step and not only between batches. Fixed-step engines ignore it (their batches are
    /// short).
    fn set_interrupt(&mut self, flag: std::sync::Arc<std::sync::atomic::AtomicBool>) {
        let _ = flag;
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
    /// The adaptive integrator's next step and counters (`None` for fixed steps).
    pub step_control: Option<StepControl>,
}

/// What the adaptive integrator carries from one call to the next.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepControl {
    /// Step to try next, s (0 before the first step).
    pub h_s: f64,
    /// Longest step allowed after a failed linear solve, s (0: no cap), and the steps
    /// accepted under it since it was set or last doubled. Absent in older checkpoints.
    #[serde(default)]
    pub h_cap_s: f64,
    #[serde(default)]
    pub steps_under_cap: u32,
    pub stats: StepStats,
}

/// Work counters of the adaptive integrator (for logs, the manifest and benchmarks).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepStats {
    /// Accepted steps.
    pub steps: u64,
    /// Rejected attempts (error too large, a negative value, or a linear solve that did
    /// not converge).
    pub rejected: u64,
    /// Iterations of the linear solver over all solves.
    pub linear_iterations: u64,
    /// Smallest and largest accepted step, s (0 before the first; the smallest excludes
    /// steps shortened to land on a stop).
    pub h_min_s: f64,
    pub h_max_s: f64,
    /// Attempts (accepted or not) whose solves were preconditioned by the multigrid of the
    /// whole coupled matrix rather than the factored preconditioner.
    #[serde(default)]
    pub coupled_multigrid_attempts: u64,
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
    /// The device failed (a GPU validation, out-of-memory or lost-device error), with the
    /// backend's own message, which says what to change.
    #[error("{0}")]
    Device(String),
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

/// Dense output: how far back from the end of the last adaptive span (of `span_s`
/// seconds; `None` before any) a summary `lag_s` seconds before the present lies, as a
/// fraction in [0, 1] for linear interpolation between the span's end and start.
pub fn dense_output_fraction(span_s: Option<f64>, lag_s: f64) -> Result<f64, Error> {
    let Some(span_s) = span_s else {
        return Err(Error::Device(
            "no coupled step to interpolate in (internal: a summary stop before any step)".into(),
        ));
    };
    if lag_s > span_s * (1.0 + 1e-9) {
        return Err(Error::Device(format!(
            "internal: a summary {lag_s} s back lies before the last step ({span_s} s)"
        )));
    }
    Ok((lag_s / span_s).clamp(0.0, 1.0))
}

/// The reaction calls of one [`Engine::advance`] of `n_steps` steps of `dt_s` seconds
/// from model time `t0_s`, as Strang splitting orders them: call 0 is react(dt/2) before
/// the first diffusion step; call k (1 ≤ k ≤ n_steps) follows diffusion step k − 1 and
/// lasts dt (the two halves of neighbouring steps merged), except the last, dt/2, so the
/// fields are synchronous at the end of the call. Returns [start, end] in s.
pub fn strang_react_call(t0_s: f64, dt_s: f64, n_steps: u64, call: u64) -> (f64, f64) {
    if call == 0 {
        return (t0_s, t0_s + 0.5 * dt_s);
    }
    let start = t0_s + (call as f64 - 0.5) * dt_s;
    let len = if call == n_steps { 0.5 * dt_s } else { dt_s };
    (start, start + len)
}

#[cfg(test)]
mod tests {
    use super::strang_react_call;

    #[test]
    fn strang_calls_cover_the_steps_once_and_end_synchronous() {
        let (t0, dt, n) = (10.0, 2.0, 5);
        let calls: Vec<_> = (0..=n).map(|k| strang_react_call(t0, dt, n, k)).collect();
        assert_eq!(calls[0], (10.0, 11.0));
        for w in calls.windows(2) {
            assert_eq!(w[0].1, w[1].0, "calls are contiguous");
        }
        assert_eq!(calls[n as usize].1, t0 + n as f64 * dt);
        let total: f64 = calls.iter().map(|c| c.1 - c.0).sum();
        assert_eq!(total, n as f64 * dt);
    }
}
