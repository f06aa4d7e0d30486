//! The f64 CPU backend: the same Douglas ADI scheme as the GPU kernels, line by line, on all cores
//! (rayon). It is the oracle of the GPU tests and, without a hardware GPU, the fastest path.

pub mod block_multigrid;
pub mod coupled;
pub mod diffuse_adi;
pub mod multigrid;
pub mod react_ros2;
pub mod scratch;

use crate::config::Scheme;
use crate::engine::{
    strang_react_call, Engine, EngineInfo, EngineState, Error, ReactionStats, StepControl,
    StepStats,
};
use crate::model::{Model, SpeciesModel, StepCoefficients};
use react_ros2::{CpuChemistry, ReactPath};

/// Bytes the CPU backend holds for `scenario`: f64 fields, the mask and Thomas scratch.
pub fn required_bytes(scenario: &crate::config::Scenario) -> u64 {
    let n = scenario.grid.n_voxels() as u64;
    let g = scenario.grid;
    let scratch = 2 * 8 * (g.nx * g.ny.max(g.nz)) as u64 * rayon::current_num_threads() as u64;
    n * (8 * scenario.species.len() as u64 + 4) + scratch
}

/// Fields in f64 on the host; one `Vec` per species, x fastest.
pub struct CpuEngine {
    shape: [usize; 3],
    voxel_um: f64,
    species: Vec<SpeciesModel>,
    mask: Vec<u32>,
    conc_mm: Vec<Vec<f64>>,
    /// ADI scratch field (v), shared by all species.
    scratch_mm: Vec<f64>,
    theta: f64,
    /// Cap of r per diffusion sub-step (see `StepCoefficients`).
    max_diffusion_r: Option<f64>,
    /// Coefficients for the dt they were computed for (recomputed only when dt changes).
    coefficients: Option<(f64, Vec<StepCoefficients>)>,
    /// The reaction step, if the scenario has a network.
    chemistry: Option<CpuChemistry>,
    /// The coupled integrator (`time.scheme = "coupled"`), which replaces the split step.
    coupled: Option<coupled::Coupled>,
    /// Longest coupled step, s.
    max_dt_s: f64,
    /// Model time reached, s.
    clock_s: f64,
    /// Dense output of the coupled scheme: the fields at the start of the last
    /// `advance_adaptive` call (mM) and that call's length (s); `None` before the first
    /// call and after anything else changed the fields.
    span_start: Option<(Vec<Vec<f64>>, f64)>,
}

impl CpuEngine {
    pub fn new(model: &Model) -> CpuEngine {
        CpuEngine {
            shape: model.grid.shape(),
            voxel_um: model.grid.voxel_um,
            species: model.species.clone(),
            mask: model.mask.clone(),
            conc_mm: model.initial_mm.clone(),
            scratch_mm: vec![0.0; model.grid.n_voxels()],
            theta: model.theta,
            max_diffusion_r: model.max_diffusion_r,
            coefficients: None,
            // The coupled scheme integrates the network itself.
            chemistry: match model.scheme {
                Scheme::Split => model
                    .network
                    .clone()
                    .map(|net| CpuChemistry::new(net, model.grid.n_voxels())),
                Scheme::Coupled { .. } => None,
            },
            coupled: match model.scheme {
                Scheme::Coupled {
                    rtol,
                    first_dt_s,
                    adaptive,
                    ..
                } => Some(coupled::Coupled::new(model, rtol, first_dt_s, adaptive)),
                Scheme::Split => None,
            },
            max_dt_s: match model.scheme {
                Scheme::Coupled { max_dt_s, .. } => max_dt_s.unwrap_or(f64::INFINITY),
                Scheme::Split => f64::INFINITY,
            },
            clock_s: 0.0,
            span_start: None,
        }
    }

    /// One reaction call over [t0_s, t1_s].
    fn react(&mut self, (t0_s, t1_s): (f64, f64)) -> Result<(), Error> {
        let Some(chem) = &mut self.chemistry else {
            return Ok(());
        };
        chem.react(&mut self.conc_mm, &self.mask, t1_s - t0_s)
            .map_err(|f| {
                f.fault
                    .into_engine_error(&chem.net, f.voxel, self.shape, t0_s, t1_s)
            })
    }

    /// Selects the reaction integrator (default [`ReactPath::Lanes`]); both give
    /// bit-identical fields, so this only changes the speed (tests and benches compare them).
    pub fn set_react_path(&mut self, path: ReactPath) {
        if let Some(c) = &mut self.chemistry {
            c.path = path;
        }
    }

    /// The f64 field of one species (mM), for tests that need the reference precision.
    pub fn field_mm(&self, species_ix: usize) -> &[f64] {
        &self.conc_mm[species_ix]
    }

    fn coefficients_for(&mut self, dt_s: f64) -> Vec<StepCoefficients> {
        match &self.coefficients {
            Some((dt, co)) if *dt == dt_s => co.clone(),
            _ => {
                let co: Vec<_> = self
                    .species
                    .iter()
                    .enumerate()
                    .map(|(s, sp)| {
                        StepCoefficients::new(
                            sp,
                            s,
                            self.voxel_um,
                            dt_s,
                            self.theta,
                            self.max_diffusion_r,
                        )
                    })
                    .collect();
                self.coefficients = Some((dt_s, co.clone()));
                co
            }
        }
    }

    /// [`Engine::advance`] on the current thread.
    fn advance_here(&mut self, n_steps: u64, dt_s: f64) -> Result<(), Error> {
        if n_steps == 0 {
            return Ok(());
        }
        if self.coupled.is_some() {
            // The coupled scheme chooses its own steps over the same span.
            let span_s = n_steps as f64 * dt_s;
            let (reached_s, _) = self.advance_adaptive_here(span_s, u64::MAX)?;
            if reached_s < span_s * (1.0 - 1e-12) {
                return Err(Error::Device(format!(
                    "interrupted after {reached_s} s of a {span_s} s advance (a stop signal); the fields stand at the engine's clock"
                )));
            }
            return Ok(());
        }
        let co = self.coefficients_for(dt_s);
        let t0 = self.clock_s;
        self.react(strang_react_call(t0, dt_s, n_steps, 0))?;
        for step in 0..n_steps {
            for (s, sp) in self.species.iter().enumerate() {
                if sp.diffuses() {
                    for _ in 0..co[s].substeps {
                        diffuse_adi::step_in_place(
                            &mut self.conc_mm[s],
                            &mut self.scratch_mm,
                            &self.mask,
                            self.shape,
                            &co[s],
                        );
                    }
                } else if sp.decays() {
                    diffuse_adi::decay_in_place(&mut self.conc_mm[s], &self.mask, &co[s]);
                }
            }
            self.react(strang_react_call(t0, dt_s, n_steps, step + 1))?;
        }
        self.clock_s = t0 + n_steps as f64 * dt_s;
        Ok(())
    }

    /// [`Engine::advance_adaptive`] on the current thread.
    fn advance_adaptive_here(&mut self, span_s: f64, max_steps: u64) -> Result<(f64, u64), Error> {
        let Some(c) = &mut self.coupled else {
            return Err(Error::Device(
                "advance_adaptive needs time.scheme = \"coupled\"".into(),
            ));
        };
        let before = c.stats().steps;
        let t0 = self.clock_s;
        let mut start = self.span_start.take().map(|s| s.0).unwrap_or_default();
        start.resize_with(self.conc_mm.len(), Vec::new);
        for (a, b) in start.iter_mut().zip(&self.conc_mm) {
            a.clone_from(b);
        }
        let reached = c
            .advance(&mut self.conc_mm, 0.0, span_s, max_steps, self.max_dt_s)
            .map_err(|problem| Error::Reaction {
                problem,
                voxel: [0, 0, 0],
                t0_s: t0,
                t1_s: t0 + span_s,
                reactions: "all".into(),
                fix: "tighten time.tolerance or shorten time.dt_s (the first step); if it persists, run with time.scheme = \"split\" and report it".into(),
            })?;
        self.clock_s = t0 + reached;
        self.span_start = Some((start, reached));
        Ok((reached, c.stats().steps - before))
    }
}

/// Runs `op` on a worker of rayon's pool. The CPU steps are many short parallel loops (the
/// coupled solver's vector updates and multigrid sweeps: hundreds per step at 16³); called
/// from a thread outside the pool, each loop is injected into the pool while the caller
/// sleeps on a futex until it is done, where on a worker it is split onto the worker's own
/// queue. mno2_gsh_depletion's day at 16³ on one rayon thread (strace): 62 173 futex calls
/// and 83 128 yields from the calling thread, 322 futex calls on a worker; cu_fenton_like's
/// day at 16³ × 40 µm on two threads: 70 s wall, 17 s of it system time, against 54 s and 5 s.
fn on_worker<R: Send>(op: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| op())
}

impl Engine for CpuEngine {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            backend: "cpu".into(),
            adapter: format!(
                "native CPU, f64, {} rayon threads",
                rayon::current_num_threads()
            ),
            driver: format!("ionfield {}", crate::VERSION),
        }
    }

    /// Strang splitting ([`strang_react_call`]): react(dt/2), then per step diffuse(dt) and
    /// react — dt between two steps, dt/2 after the last, so the fields are synchronous.
    fn advance(&mut self, n_steps: u64, dt_s: f64) -> Result<(), Error> {
        on_worker(|| self.advance_here(n_steps, dt_s))
    }

    fn is_adaptive(&self) -> bool {
        self.coupled.is_some()
    }

    fn advance_adaptive(&mut self, span_s: f64, max_steps: u64) -> Result<(f64, u64), Error> {
        on_worker(|| self.advance_adaptive_here(span_s, max_steps))
    }

    fn step_stats(&self) -> Option<StepStats> {
        self.coupled.as_ref().map(|c| c.stats())
    }

    fn next_step_s(&self) -> Option<f64> {
        self.coupled
            .as_ref()
            .map(|c| c.controller.control.h_s)
            .filter(|&h| h > 0.0)
    }

    fn has_dense_output(&self) -> bool {
        self.coupled.is_some()
    }

    fn read_fields_before(
        &mut self,
        species: &[usize],
        lag_s: f64,
    ) -> Result<Vec<Vec<f32>>, Error> {
        let back =
            crate::engine::dense_output_fraction(self.span_start.as_ref().map(|s| s.1), lag_s)?;
        let start = &self
            .span_start
            .as_ref()
            .expect("checked by dense_output_fraction")
            .0;
        Ok(species
            .iter()
            .map(|&s| {
                start[s]
                    .iter()
                    .zip(&self.conc_mm[s])
                    .map(|(&a, &b)| (b + back * (a - b)) as f32)
                    .collect()
            })
            .collect())
    }

    fn scale_tolerance(&mut self, factor: f64) {
        if let Some(c) = &mut self.coupled {
            c.rtol_scale = factor;
        }
    }

    fn set_interrupt(&mut self, flag: std::sync::Arc<std::sync::atomic::AtomicBool>) {
        if let Some(c) = &mut self.coupled {
            c.controller.interrupt = Some(flag);
        }
    }

    fn reaction_stats(&mut self) -> Option<ReactionStats> {
        self.chemistry.as_ref().map(|c| ReactionStats {
            calls: c.calls,
            substeps: c.substeps_total,
            max_substeps: c.substeps_max,
        })
    }

    fn save_state(&mut self) -> Result<EngineState, Error> {
        let bytes = |v: &[f64]| bytemuck::cast_slice::<f64, u8>(v).to_vec();
        Ok(EngineState {
            backend: "cpu".into(),
            value_bytes: 8,
            clock_s: self.clock_s,
            fields: self.conc_mm.iter().map(|f| bytes(f)).collect(),
            reaction_h_s: self
                .chemistry
                .as_ref()
                .map(|c| bytes(&c.h_last))
                .unwrap_or_default(),
            reaction_residual_mm: Vec::new(),
            reaction_stats: self.reaction_stats(),
            step_control: self.coupled.as_ref().map(|c| StepControl {
                stats: c.stats(),
                ..c.controller.control
            }),
        })
    }

    fn restore_state(&mut self, state: &EngineState) -> Result<(), Error> {
        let n_voxels = self.mask.len();
        state
            .check_fits(
                "cpu",
                8,
                self.conc_mm.len(),
                n_voxels,
                self.chemistry.is_some(),
                0,
            )
            .map_err(Error::State)?;
        // pod_read_unaligned: the bytes come from a file and need not be 8-byte aligned.
        let values = |b: &[u8]| -> Vec<f64> {
            b.chunks_exact(8)
                .map(bytemuck::pod_read_unaligned::<f64>)
                .collect()
        };
        for (f, bytes) in self.conc_mm.iter_mut().zip(&state.fields) {
            *f = values(bytes);
        }
        if let Some(c) = &mut self.chemistry {
            c.h_last = values(&state.reaction_h_s);
            let st = state.reaction_stats.unwrap_or_default();
            c.calls = st.calls;
            c.substeps_total = st.substeps;
            c.substeps_max = st.max_substeps;
        }
        if let (Some(c), Some(sc)) = (&mut self.coupled, state.step_control) {
            c.restore_control(sc);
        }
        self.clock_s = state.clock_s;
        self.span_start = None;
        Ok(())
    }

    fn read_fields(&mut self, species: &[usize]) -> Result<Vec<Vec<f32>>, Error> {
        Ok(species
            .iter()
            .map(|&s| self.conc_mm[s].iter().map(|&v| v as f32).collect())
            .collect())
    }

    fn add_to_field(&mut self, species_ix: usize, delta_mm: &[f64]) -> Result<(), Error> {
        self.span_start = None;
        if let Some(c) = &mut self.coupled {
            c.controller.restart_steps();
        }
        for (c, d) in self.conc_mm[species_ix].iter_mut().zip(delta_mm) {
            *c += d;
        }
        Ok(())
    }
}
