//! The coupled implicit integrator, f64: reaction and diffusion advanced together by one
//! Rosenbrock method with a global, error-controlled step (`time.scheme = "coupled"`).
//!
//! The whole system y' = f(y) = R(y) + A·y (R: the reaction network in every voxel; A: the
//! diffusion and first-order-loss operator of every species) is advanced by ROS2 (Verwer,
//! Spee, Blom & Hundsdorfer 1999, SIAM J Sci Comput 20:1456), the method the per-voxel
//! reaction step uses, now over the grid:
//!
//! ```text
//! W = I/(γh) − J_R − A,  γ = 1 + 1/√2
//! W·K1 = f(y)
//! W·K2 = f(y + K1/γ) − (2/(γh))·K1
//! y⁺ = y + 3/(2γ)·K1 + 1/(2γ)·K2,   error estimate e = (K1 + K2)/(2γ)
//! ```
//!
//! with J_R the reaction Jacobian of each voxel (exact, from the same expression graph as
//! the split scheme) and A exact. Properties (each tested in `tests/coupled.rs`):
//!
//! - **Coupled**: a sink beside a source is solved together; there is no splitting error.
//! - **Steady states do not depend on h**: f(y) = 0 gives K1 = K2 = 0 whatever the step.
//! - **L-stable in 3D**: the stability function R(z) = (1 − (2γ − 1)z)/(1 − γz)² lies in
//!   (0, 1] for z ≤ 0 and tends to 0 as z → −∞, for every mode, because W is inverted
//!   (to a tolerance) rather than factored by direction.
//! - **Conservation**: every linear total ℓ that the reactions keep in each voxel and that
//!   diffusion keeps over the grid (Σ Fe2 + Fe3 with zero-flux faces) is kept to rounding
//!   by each step, even though the linear solves are inexact (see [`Coupled::solve`]).
//!
//! **Linear solves.** W·K = b is solved by restarted GMRES (Saad & Schultz 1986) in the
//! error-weighted inner product, right-preconditioned by the approximate factorisation
//!
//! ```text
//! P = (σ − J_R)·σ⁻¹·(σ − A),   σ = 1/(γh)
//! ```
//!
//! applied as a sparse LU per voxel for the reaction block, then one aggregation-multigrid
//! V-cycle per species for σ − A (`cpu::multigrid`). P differs from W by J_R·A/σ, which is
//! small unless a fast reaction and fast diffusion meet. For a species with no held voxel
//! and no loss the V-cycle's result is shifted uniformly so that its grid sum is that of
//! the exact inverse (1ᵀ(σ − A) = σ·1ᵀ); with ℓ·(σ − J_R) = σℓ per voxel for every
//! conserved total ℓ, this gives ℓ·P⁻¹ = ℓ/σ and ℓ·W·P⁻¹ = ℓ, so every Krylov vector has
//! ℓ = 0 when ℓ·f = 0, and so does the increment: totals are kept to rounding however
//! loosely the linear system is solved (measured 2.5e-14 over 10⁴ steps; 9.5e-6 without
//! the shift). The solve stops when the weighted RMS of γh·(b − W·K), the error it leaves
//! in K, is below [`LINEAR_TOL`] of the step's error tolerance.
//!
//! **Step control.** err = max over voxels of the RMS over the integrated species of
//! e_i/(atol_i + rtol·max(|y_i|, |y⁺_i|)). A step is accepted when err ≤ 1 and no value is
//! below −atol (values in [−atol, 0) are set to 0); the next step is
//! h·clamp(0.9/√err, 0.2, 5), not growing right after a rejection; a rejected step is
//! retried with h·clamp(0.9/√err, 0.2, 0.9), or h/2 for a negative value or a linear solve
//! that did not converge. Held voxels (vessels, Dirichlet faces) keep their values.
//!
//! ROS2 is not positivity-preserving for diffusion at large h: its stability function
//! applied to the diffusion matrix is 1.41·B − 0.41·B² with B = (I − γhA)⁻¹ ≥ 0, negative
//! where B² reaches further than B, far ahead of a front. Undershoots within atol are set
//! to 0 (a change below atol per voxel, which breaks the conservation above only by that);
//! larger ones reject the step.

use rayon::prelude::*;

use crate::chem::lanes::{RhsJacLanes, LANES};
use crate::chem::ros2::{Prepared, GAMMA};
use crate::chem::sparse::{factor_in_place, FactorOp};
use crate::chem::Network;
use crate::engine::control::{Attempt, StepController};
use crate::engine::krylov::Arnoldi;
use crate::engine::{StepControl, StepStats};
use crate::grid::MAX_TISSUES;
use crate::model::{held_bit, Model, TISSUE_ID_MASK};

use super::block_multigrid::{BlockMultigrid, BlockPlan, Cycle};
use super::multigrid::Hierarchy;
use super::scratch::Scratch;

/// Fraction of the step's error tolerance the linear solves may leave in K (weighted RMS).
/// K1 and K2 enter y⁺ with weights 0.88 and 0.29, so the solves add at most about an
/// eighth of the tolerance to a step's error. Measured on `fe_fenton_cdt` at 64³, hours
/// 4–6 (steps of 700 s): 0.02 → 0.1 took 18 % fewer Krylov iterations and moved the
/// tumour means by at most 6.6e-4 relative (tolerance 1e-2).
pub const LINEAR_TOL: f64 = 0.1;

/// Absolute tolerance of a species outside the reaction network without `atol_mm`, mM
/// (the chemistry default).
pub const DEFAULT_ATOL_MM: f64 = 1e-6;

/// GMRES basis size before a restart.
pub const RESTART: usize = 30;

/// Most GMRES iterations per linear solve (all restarts); more rejects the step.
pub const MAX_LINEAR_ITERATIONS: usize = 300;

/// A restart cycle must bring the true residual below this fraction of the one it started
/// from, or the solve is given up (the step is retried shorter). In an acidic tumour
/// (the margin window with lactate and HCO3 diffusivities of 160 and 232 µm²/s), solves
/// at steps of 50–500 s stall: measured, the true residual after each restart stayed at
/// 65–110× the target (or grew, 34× → 3833×, while the Jacobian still had the proton
/// buffer's positive eigenvalue, see `chem::network`), so waiting for the iteration limit
/// only cost 300 iterations per try.
pub const RESTART_MIN_REDUCTION: f64 = 0.5;

/// Voxels per parallel task in pointwise passes.
const CHUNK: usize = 4096;

/// One integrated species.
#[derive(Clone, Debug)]
struct Var {
    /// Scenario index.
    species: usize,
    /// D/dx², 1/s (0: does not diffuse).
    c_per_s: f64,
    /// First-order loss per tissue, 1/s.
    decay_per_s: [f64; MAX_TISSUES],
    held_bit: u32,
    /// Position in the network's state, if the network integrates it.
    state_ix: Option<usize>,
    /// Absolute tolerance, mM.
    atol_mm: f64,
    /// No held voxel and no loss: the grid total is changed by reactions only.
    closed: bool,
}

/// The network pieces the coupled step needs, with the LU plan of one voxel's block
/// remapped onto the entries it touches.
struct Chemistry {
    net: Network,
    prep: Prepared,
    /// Compact slots per voxel.
    n_slots: usize,
    /// (slot, i, k) of each Jacobian entry of the plan's `matrix`.
    matrix: Vec<(usize, usize, usize)>,
    /// Diagonal slot of each row.
    diag: Vec<usize>,
    /// The LU plan's factorisation, forward and backward lists on compact slots.
    factor: Vec<FactorOp>,
    forward: Vec<(usize, usize, usize)>,
    backward: Vec<(usize, Vec<(usize, usize)>)>,
    /// Index in `Coupled::vars` of each state species.
    var_of_state: Vec<usize>,
    /// Per state row, (slot, index in `Coupled::vars` of the column) of its entries.
    rows: Vec<Vec<(usize, usize)>>,
}

/// The right preconditioner of a step's linear solves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Preconditioner {
    /// (σ − J_R)·σ⁻¹·(σ − A): per-voxel LU, then one diffusion V-cycle per species.
    Split,
    /// One V-cycle of the coupled multigrid (`cpu::block_multigrid`).
    Block,
}

/// Above this estimated relative error of the factored preconditioner, the coupled
/// multigrid is used. Measured on `fe_fenton_cdt` (24³, 24 h) with the factored one: about
/// 2 GMRES iterations per solve below an estimate of 10, 3 between 10 and 100, 14 between
/// 100 and 1000 and 53 above, against about 3 with the coupled multigrid, whose iteration
/// costs 3–4 of the factored one's.
pub const SPLIT_LIMIT: f64 = 100.0;

/// The coupled multigrid switches to W-cycles after a linear solve that took this many
/// Krylov iterations or more with V-cycles, and back to V-cycles after one that took
/// fewer than [`V_CYCLE_BELOW`] with W-cycles (see [`Cycle`]).
const W_CYCLE_FROM: usize = 5;
const V_CYCLE_BELOW: usize = 3;

/// The error test of a step attempt over a range of voxels.
#[derive(Clone, Copy)]
struct Check {
    /// Largest weighted RMS error of a voxel.
    err: f64,
    /// (voxel, integrated species, weighted error) of the largest single error.
    worst: (usize, usize, f64),
    /// A value below −atol.
    negative: bool,
    finite: bool,
}

impl Default for Check {
    fn default() -> Check {
        Check {
            err: 0.0,
            worst: (0, 0, 0.0),
            negative: false,
            finite: true,
        }
    }
}

impl Check {
    fn merge(a: Check, b: Check) -> Check {
        Check {
            err: a.err.max(b.err),
            worst: if b.worst.2 > a.worst.2 {
                b.worst
            } else {
                a.worst
            },
            negative: a.negative || b.negative,
            finite: a.finite && b.finite,
        }
    }
}

/// The species the coupled scheme integrates, in scenario order: those the network
/// changes, those that diffuse and those that decay (the vector's species-major order).
pub fn integrated_species(model: &Model) -> Vec<usize> {
    let net = model.network.as_ref();
    (0..model.species.len())
        .filter(|&s| {
            let sp = &model.species[s];
            net.is_some_and(|net| net.state.contains(&s)) || sp.diffuses() || sp.decays()
        })
        .collect()
}

/// The multigrid levels of σ − A for species `s` (c = D/dx², its loss per tissue, its
/// held voxels); for a species that neither diffuses nor decays the operator is σ alone.
pub fn species_hierarchy(model: &Model, s: usize) -> Hierarchy {
    let sp = &model.species[s];
    let c_per_s = sp.diffusion_um2_per_s / (model.grid.voxel_um * model.grid.voxel_um);
    let held: Vec<bool> = model.mask.iter().map(|&m| m & held_bit(s) != 0).collect();
    let loss: Vec<f64> = model
        .mask
        .iter()
        .map(|&m| sp.decay_per_s_by_tissue[(m & TISSUE_ID_MASK) as usize])
        .collect();
    Hierarchy::new(model.grid.shape(), c_per_s, &loss, &held)
}

/// Whether species `s` is closed: no held voxel and no loss, so only reactions change its
/// grid total (the preconditioner then keeps its sum).
pub fn is_closed(model: &Model, s: usize) -> bool {
    let held_anywhere = model.mask.iter().any(|&m| m & held_bit(s) != 0);
    !held_anywhere && !model.species[s].decays()
}

/// The parts of one step's linear algebra ([`Coupled::step_parts`]).
pub struct StepParts {
    /// R(y), mM/s, 0 in held rows (integrated species only).
    pub r: Vec<f64>,
    /// J_R·x, mM/s.
    pub jx: Vec<f64>,
    /// (σ − J_R)⁻¹·x per voxel (σ⁻¹·x outside the network), without diffusion.
    pub block_solve: Vec<f64>,
    /// W·x = σx − J_R·x − A·x.
    pub wx: Vec<f64>,
    /// The factored preconditioner P⁻¹·x = σ·(σ − A)⁻¹·(σ − J_R)⁻¹·x (one V-cycle per
    /// species, closed species shifted to keep their sum).
    pub precond: Vec<f64>,
}

/// The coupled integrator's state: the integrated species and their scratch vectors.
pub struct Coupled {
    shape: [usize; 3],
    n: usize,
    vars: Vec<Var>,
    chem: Option<Chemistry>,
    rtol: f64,
    /// Multiplies `rtol` (the spin-up loosens it; [`crate::engine::Engine::scale_tolerance`]).
    pub rtol_scale: f64,
    mask: Vec<u32>,
    /// The step-size control (shared with the device twin), with the next step, the
    /// interrupt flag and the counters.
    pub controller: StepController,
    /// Krylov iterations and attempts preconditioned by the coupled multigrid so far.
    linear_iterations: u64,
    multigrid_attempts: u64,
    /// Reaction Jacobian entries per voxel (compact slots), and σ − J_R factored per voxel
    /// (the factored preconditioner).
    jac: Vec<f64>,
    lu: Vec<f64>,
    /// The preconditioner of the current step.
    preconditioner: Preconditioner,
    /// The multigrid of the whole coupled matrix (with a reaction network).
    block: Option<BlockMultigrid>,
    /// Its cycle, from the Krylov iterations of the last solve.
    cycle: Cycle,
    /// State row of each integrated species, if the network integrates it.
    state_of_var: Vec<Option<usize>>,
    /// Per integrated species: no held voxel and no loss.
    closed: Vec<bool>,
    /// Error weights 1/(atol + rtol·|y|) of the current step, per unknown.
    weight: Vec<f64>,
    /// Multigrid levels of σ − A per integrated species (`None`: no diffusion, no loss).
    multigrid: Vec<Option<Hierarchy>>,
    /// GMRES basis vectors and their preconditioned images, kept between solves.
    basis: Vec<Vec<f64>>,
    preconditioned: Vec<Vec<f64>>,
    /// Reused whole-grid vectors of the attempts, solves and cycles.
    scratch: Scratch,
}

impl Coupled {
    /// Integrates every species that reacts, diffuses or decays; `rtol` is the relative
    /// tolerance of the step control, `first_dt_s` the first step tried; without
    /// `adaptive` every step is `first_dt_s` (the last one shortened) and the error estimate
    /// is not used.
    pub fn new(model: &Model, rtol: f64, first_dt_s: f64, adaptive: bool) -> Coupled {
        let n = model.grid.n_voxels();
        let dx2 = model.grid.voxel_um * model.grid.voxel_um;
        let net = model.network.clone();
        let mut vars = Vec::new();
        for s in integrated_species(model) {
            let sp = &model.species[s];
            let state_ix = net
                .as_ref()
                .and_then(|net| net.state.iter().position(|&x| x == s));
            let closed = is_closed(model, s);
            let atol_mm = match (&net, state_ix) {
                (Some(net), Some(i)) => net.atol_mm[i],
                _ => sp.atol_mm.unwrap_or(DEFAULT_ATOL_MM),
            };
            vars.push(Var {
                closed,
                species: s,
                c_per_s: sp.diffusion_um2_per_s / dx2,
                decay_per_s: sp.decay_per_s_by_tissue,
                held_bit: held_bit(s),
                state_ix,
                atol_mm,
            });
        }
        let chem = net.map(|net| {
            let prep = Prepared::new(&net);
            let m = net.state.len();
            let mut slot = vec![usize::MAX; m * m];
            let mut n_slots = 0;
            for ix in prep.lu.slots() {
                slot[ix] = n_slots;
                n_slots += 1;
            }
            let matrix: Vec<(usize, usize, usize)> = prep
                .lu
                .matrix
                .iter()
                .map(|&ix| (slot[ix], ix / m, ix % m))
                .collect();
            let diag = (0..m).map(|i| slot[i * m + i]).collect();
            let factor = prep
                .lu
                .factor
                .iter()
                .map(|op| match *op {
                    FactorOp::Pivot(kk) => FactorOp::Pivot(slot[kk]),
                    FactorOp::Scale(a, b) => FactorOp::Scale(slot[a], slot[b]),
                    FactorOp::Update(a, b, c) => FactorOp::Update(slot[a], slot[b], slot[c]),
                })
                .collect();
            let forward = prep
                .lu
                .forward
                .iter()
                .map(|&(r, ik, k)| (r, slot[ik], k))
                .collect();
            let backward = prep
                .lu
                .backward
                .iter()
                .map(|(r, row)| (*r, row.iter().map(|&(ij, j)| (slot[ij], j)).collect()))
                .collect();
            let var_of_state: Vec<usize> = (0..m)
                .map(|i| {
                    vars.iter()
                        .position(|v: &Var| v.state_ix == Some(i))
                        .expect("every state species is integrated")
                })
                .collect();
            let mut rows = vec![Vec::new(); m];
            for &(slot, row, col) in &matrix {
                rows[row].push((slot, var_of_state[col]));
            }
            Chemistry {
                net,
                prep,
                n_slots,
                matrix,
                diag,
                factor,
                forward,
                backward,
                var_of_state,
                rows,
            }
        });
        let multigrid = vars
            .iter()
            .map(|v| {
                let decays = v.decay_per_s.iter().any(|&d| d > 0.0);
                (v.c_per_s > 0.0 || decays).then(|| species_hierarchy(model, v.species))
            })
            .collect();
        let n_slots = chem.as_ref().map_or(0, |c| c.n_slots);
        Coupled {
            shape: model.grid.shape(),
            n,
            rtol,
            rtol_scale: 1.0,
            mask: model.mask.clone(),
            controller: StepController::new(first_dt_s, adaptive),
            linear_iterations: 0,
            multigrid_attempts: 0,
            jac: vec![0.0; n * n_slots],
            lu: vec![0.0; n * n_slots],
            preconditioner: Preconditioner::Split,
            cycle: Cycle::V,
            block: chem
                .as_ref()
                .map(|c| BlockMultigrid::new(model.grid.shape(), c.n_slots)),
            state_of_var: vars.iter().map(|v| v.state_ix).collect(),
            closed: vars.iter().map(|v| v.closed).collect(),
            weight: vec![0.0; n * vars.len()],
            multigrid,
            basis: Vec::new(),
            preconditioned: Vec::new(),
            scratch: Scratch::default(),
            vars,
            chem,
        }
    }

    /// Scenario indices of the integrated species.
    pub fn species(&self) -> Vec<usize> {
        self.vars.iter().map(|v| v.species).collect()
    }

    fn len(&self) -> usize {
        self.vars.len() * self.n
    }

    /// Gathers the integrated species of `conc` into one vector (species-major).
    fn gather(&self, conc: &[Vec<f64>]) -> Vec<f64> {
        let mut y = Vec::with_capacity(self.len());
        for v in &self.vars {
            y.extend_from_slice(&conc[v.species]);
        }
        y
    }

    /// Advances `conc` (all species, mM) to `t_end_s` from `t_s`, or until `max_steps`
    /// steps are accepted, or until the controller's interrupt flag is set; returns the time
    /// reached.
    /// `h_max_s` caps the step.
    pub fn advance(
        &mut self,
        conc: &mut [Vec<f64>],
        t_s: f64,
        t_end_s: f64,
        max_steps: u64,
        h_max_s: f64,
    ) -> Result<f64, String> {
        let mut y = self.gather(conc);
        // The attempt takes `adaptive` from here: `self.controller` is a placeholder while
        // the controller runs (its adaptive = false had let every error pass).
        let adaptive = self.controller.adaptive;
        let mut controller =
            std::mem::replace(&mut self.controller, StepController::new(0.0, false));
        let reached = controller.advance(t_s, t_end_s, max_steps, h_max_s, |h, stats| {
            let outcome = self.attempt(&mut y, conc, h, adaptive);
            stats.linear_iterations = self.linear_iterations;
            stats.coupled_multigrid_attempts = self.multigrid_attempts;
            Ok(outcome)
        });
        self.controller = controller;
        for (k, v) in self.vars.iter().enumerate() {
            conc[v.species].copy_from_slice(&y[k * self.n..(k + 1) * self.n]);
        }
        self.set_quasi_steady(conc);
        reached
    }

    /// The counters of the step control, with the solver's work.
    pub fn stats(&self) -> StepStats {
        self.controller.control.stats
    }

    /// Puts back the step control saved with a checkpoint.
    pub fn restore_control(&mut self, control: StepControl) {
        self.controller.control = control;
        self.linear_iterations = control.stats.linear_iterations;
        self.multigrid_attempts = control.stats.coupled_multigrid_attempts;
    }

    /// One step attempt of length `h` from `y`; on acceptance `y` holds the result.
    /// With `adaptive` false (fixed steps) the error estimate does not reject.
    fn attempt(&mut self, y: &mut [f64], conc: &[Vec<f64>], h: f64, adaptive: bool) -> Attempt {
        let len = self.len();
        let sigma = 1.0 / (GAMMA * h);
        let pool = self.scratch.clone();
        let mut f = pool.uninit(len);
        self.rhs(y, conc, &mut f, true);
        self.set_weights(y);
        if !self.factor_blocks(sigma) {
            return Attempt::LinearFailed;
        }
        let mut k1 = pool.uninit(len);
        let Some(_) = self.solve(&f, &mut k1, sigma, h) else {
            return Attempt::LinearFailed;
        };
        let mut y2 = pool.uninit(len);
        y2.par_iter_mut()
            .zip(&*y)
            .zip(&*k1)
            .for_each(|((o, a), b)| *o = a + b / GAMMA);
        let mut f2 = f;
        self.rhs(&y2, conc, &mut f2, false);
        drop(y2);
        let c21 = -2.0 / (GAMMA * h);
        f2.par_iter_mut().zip(&*k1).for_each(|(b, k)| *b += c21 * k);
        let mut k2 = pool.uninit(len);
        let Some(_) = self.solve(&f2, &mut k2, sigma, h) else {
            return Attempt::LinearFailed;
        };
        // Result, error and positivity, per voxel.
        let n = self.n;
        let nv = self.vars.len();
        let rtol = self.rtol * self.rtol_scale;
        let atol: Vec<f64> = self.vars.iter().map(|v| v.atol_mm).collect();
        let (y0, k1, k2) = (&*y, &*k1, &*k2);
        let check = |c: usize| {
            let mut o = Check::default();
            for i in c * CHUNK..((c + 1) * CHUNK).min(n) {
                let mut e2 = 0.0;
                for (k, atol) in atol.iter().enumerate() {
                    let ix = k * n + i;
                    let yn = y0[ix] + (1.5 * k1[ix] + 0.5 * k2[ix]) / GAMMA;
                    let e = 0.5 * (k1[ix] + k2[ix]) / GAMMA;
                    let sc = atol + rtol * y0[ix].abs().max(yn.abs());
                    e2 += (e / sc) * (e / sc);
                    if (e / sc).abs() > o.worst.2 {
                        o.worst = (i, k, (e / sc).abs());
                    }
                    o.negative |= yn < -atol;
                    o.finite &= yn.is_finite();
                }
                o.err = o.err.max((e2 / nv as f64).sqrt());
            }
            o
        };
        let Check {
            err,
            worst,
            negative,
            finite,
        } = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(check)
            .reduce(Check::default, Check::merge);
        if std::env::var("IONFIELD_DEBUG_COUPLED").is_ok() {
            eprintln!(
                "worst h={h} voxel={} var={} species={} e/sc={:.3} y={:e}",
                worst.0,
                worst.1,
                self.vars[worst.1].species,
                worst.2,
                y[worst.1 * n + worst.0]
            );
        }
        if !finite || !err.is_finite() {
            return Attempt::NonFinite;
        }
        if negative {
            return Attempt::Negative;
        }
        if err > 1.0 && adaptive {
            return Attempt::Rejected { err };
        }
        y.par_iter_mut()
            .zip(k1)
            .zip(k2)
            .for_each(|((a, p), q)| *a = (*a + (1.5 * p + 0.5 * q) / GAMMA).max(0.0));
        Attempt::Accepted { err }
    }

    /// Error weights 1/(atol + rtol·|y|) at the start of a step.
    fn set_weights(&mut self, y: &[f64]) {
        let n = self.n;
        let rtol = self.rtol * self.rtol_scale;
        for (k, v) in self.vars.iter().enumerate() {
            self.weight[k * n..(k + 1) * n]
                .par_iter_mut()
                .zip(&y[k * n..(k + 1) * n])
                .for_each(|(w, yv)| *w = 1.0 / (v.atol_mm + rtol * yv.abs()));
        }
    }

    /// f(y) = R(y) + A·y (mM/s), 0 in held voxels. With `jacobian`, also stores J_R.
    fn rhs(&mut self, y: &[f64], conc: &[Vec<f64>], out: &mut [f64], jacobian: bool) {
        out.fill(0.0);
        self.reaction_rhs(y, conc, out, jacobian);
        for (k, v) in self.vars.iter().enumerate() {
            let (a, b) = (k * self.n, (k + 1) * self.n);
            apply_diffusion(v, &y[a..b], &mut out[a..b], &self.mask, self.shape);
        }
    }

    /// Adds R(y) to `out` (0 in held rows) and, with `jacobian`, stores J_R on compact
    /// slots: the network evaluated [`LANES`] voxels at a time by the batched tapes
    /// (bit-identical to the scalar tapes, voxel by voxel).
    fn reaction_rhs(&mut self, y: &[f64], conc: &[Vec<f64>], out: &mut [f64], jacobian: bool) {
        let Some(chem) = &self.chem else {
            return;
        };
        let n = self.n;
        let net = &chem.net;
        let m = net.state.len();
        let ns = chem.n_slots;
        // Per network species: where to read it (integrated var or a constant field).
        let read: Vec<(usize, Option<usize>)> = net
            .bound_species()
            .into_iter()
            .map(|s| (s, self.vars.iter().position(|v| v.species == s)))
            .collect();
        let row_var = &chem.var_of_state;
        let held_bits: Vec<u32> = net.state.iter().map(|&s| held_bit(s)).collect();
        let mask = &self.mask;
        // J_R is written in place, chunk by chunk (the slice is empty without `jacobian`).
        let jac_out: &mut [f64] = if jacobian { &mut self.jac } else { &mut [] };
        let jac_chunks: Vec<&mut [f64]> = if jacobian {
            jac_out.chunks_mut(CHUNK * ns).collect()
        } else {
            (0..n.div_ceil(CHUNK))
                .map(|_| <&mut [f64]>::default())
                .collect()
        };
        let results: Vec<(usize, Vec<f64>)> = jac_chunks
            .into_par_iter()
            .enumerate()
            .map(|(c, jac)| {
                let lo = c * CHUNK;
                let hi = (lo + CHUNK).min(n);
                let mut eval = RhsJacLanes::<LANES>::new(net, &chem.prep);
                let mut lanes = vec![[0.0; LANES]; net.species_names.len()];
                let mut tissue = [0usize; LANES];
                let mut held = vec![[false; LANES]; m];
                let mut fl = vec![[0.0; LANES]; m];
                let mut jl = vec![[0.0; LANES]; if jacobian { m * m } else { 0 }];
                let mut f = vec![0.0; (hi - lo) * m];
                for first in (lo..hi).step_by(LANES) {
                    let count = LANES.min(hi - first);
                    // A short last group repeats its last voxel in the spare lanes.
                    for l in 0..LANES {
                        let i = first + l.min(count - 1);
                        for &(s, var) in &read {
                            lanes[s][l] = match var {
                                Some(k) => y[k * n + i].max(0.0),
                                None => conc[s][i],
                            };
                        }
                        tissue[l] = (mask[i] & TISSUE_ID_MASK) as usize;
                        for (row, bit) in held_bits.iter().enumerate() {
                            held[row][l] = mask[i] & bit != 0;
                        }
                    }
                    if jacobian {
                        eval.rhs_jac(&lanes, &tissue, Some(&held), &mut fl, &mut jl);
                    } else {
                        eval.rhs(&lanes, &tissue, Some(&held), &mut fl);
                    }
                    for l in 0..count {
                        let li = first + l - lo;
                        for row in 0..m {
                            f[li * m + row] = fl[row][l];
                        }
                        if jacobian {
                            for &(slot, row, col) in &chem.matrix {
                                jac[li * ns + slot] = jl[row * m + col][l];
                            }
                        }
                    }
                }
                (lo, f)
            })
            .collect();
        for (lo, f) in results {
            let cnt = f.len() / m.max(1);
            for li in 0..cnt {
                for row in 0..m {
                    out[row_var[row] * n + lo + li] += f[li * m + row];
                }
            }
        }
    }

    /// Chooses the preconditioner for σ and factors it; false if a pivot vanished.
    fn factor_blocks(&mut self, sigma: f64) -> bool {
        self.preconditioner = self.choose_preconditioner(sigma);
        if self.preconditioner == Preconditioner::Split {
            return self.factor_split(sigma);
        }
        self.multigrid_attempts += 1;
        let (Some(chem), Some(block)) = (&self.chem, &mut self.block) else {
            return true;
        };
        let plan = block_plan(chem, &self.state_of_var, &self.closed);
        block.factor(&plan, &self.multigrid, &self.jac, sigma)
    }

    /// [`Preconditioner::Block`] where the factored preconditioner's error J_R·A/σ is not
    /// small against W: per state row, with k the largest absolute row sum of J_R over the
    /// voxels (1/s) and a = 12·D/dx² the stiffest diffusion mode (1/s), the relative error
    /// of a mode that sees both is about k·a / (σ·(σ + k + a)).
    fn choose_preconditioner(&self, sigma: f64) -> Preconditioner {
        let Some(chem) = &self.chem else {
            return Preconditioner::Split;
        };
        let m = chem.net.state.len();
        let ns = chem.n_slots;
        let k_max: Vec<f64> = self
            .jac
            .par_chunks(ns * CHUNK)
            .map(|blocks| {
                let mut k = vec![0.0f64; m];
                for b in blocks.chunks(ns) {
                    for (row, entries) in chem.rows.iter().enumerate() {
                        let sum: f64 = entries.iter().map(|&(slot, _)| b[slot].abs()).sum();
                        k[row] = k[row].max(sum);
                    }
                }
                k
            })
            .reduce(
                || vec![0.0; m],
                |a, b| a.iter().zip(&b).map(|(p, q)| p.max(*q)).collect(),
            );
        let worst = (0..m)
            .map(|row| {
                let a = 12.0 * self.vars[chem.var_of_state[row]].c_per_s;
                let k = k_max[row];
                k * a / (sigma * (sigma + k + a))
            })
            .fold(0.0, f64::max);
        if std::env::var("IONFIELD_DEBUG_COUPLED").is_ok() {
            eprintln!(
                "splitting error estimate {worst:.3e} at h = {:e} s",
                1.0 / (GAMMA * sigma)
            );
        }
        if worst > SPLIT_LIMIT {
            Preconditioner::Block
        } else {
            Preconditioner::Split
        }
    }

    fn factor_split(&mut self, sigma: f64) -> bool {
        let Some(chem) = &self.chem else {
            return true;
        };
        let ns = chem.n_slots;
        let ops = &chem.factor;
        self.lu
            .par_chunks_mut(ns * 256)
            .zip(self.jac.par_chunks(ns * 256))
            .map(|(lu, jac)| {
                lu.fill(0.0);
                let mut ok = true;
                for (b, j) in lu.chunks_mut(ns).zip(jac.chunks(ns)) {
                    for &(slot, _, _) in &chem.matrix {
                        b[slot] = -j[slot];
                    }
                    for &d in &chem.diag {
                        b[d] += sigma;
                    }
                    ok &= factor_in_place(ops, b);
                }
                ok
            })
            .reduce(|| true, |a, b| a && b)
    }

    /// out = W·x = σx − J_R·x − A·x.
    fn apply_w(&self, x: &[f64], out: &mut [f64], sigma: f64) {
        let n = self.n;
        out.par_iter_mut()
            .zip(x)
            .for_each(|(o, xv)| *o = sigma * xv);
        let mut ax = self.scratch.uninit(n);
        for (k, v) in self.vars.iter().enumerate() {
            let (a, b) = (k * n, (k + 1) * n);
            ax.fill(0.0);
            apply_diffusion(v, &x[a..b], &mut ax, &self.mask, self.shape);
            out[a..b]
                .par_iter_mut()
                .zip(&*ax)
                .for_each(|(o, d)| *o -= d);
        }
        self.subtract_jr(x, out);
    }

    /// out −= J_R·x (the reaction Jacobian of the current step, per voxel).
    fn subtract_jr(&self, x: &[f64], out: &mut [f64]) {
        let n = self.n;
        let Some(chem) = &self.chem else {
            return;
        };
        let ns = chem.n_slots;
        let var_of_state = &chem.var_of_state;
        // J_R·x per voxel, in parallel over voxel chunks into a species-major buffer.
        let m = chem.net.state.len();
        let jx: Vec<Vec<f64>> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let lo = c * CHUNK;
                let hi = (lo + CHUNK).min(n);
                let mut r = vec![0.0; (hi - lo) * m];
                for i in lo..hi {
                    let j = &self.jac[i * ns..(i + 1) * ns];
                    for &(slot, row, col) in &chem.matrix {
                        r[(i - lo) * m + row] += j[slot] * x[var_of_state[col] * n + i];
                    }
                }
                r
            })
            .collect();
        for (c, r) in jx.iter().enumerate() {
            let lo = c * CHUNK;
            for li in 0..r.len() / m.max(1) {
                for row in 0..m {
                    out[var_of_state[row] * n + lo + li] -= r[li * m + row];
                }
            }
        }
    }

    /// z = P⁻¹·v with the preconditioner chosen for this step.
    fn apply_preconditioner(&self, v: &[f64], z: &mut [f64], sigma: f64) {
        match (&self.chem, &self.block, self.preconditioner) {
            (Some(chem), Some(block), Preconditioner::Block) => {
                let plan = block_plan(chem, &self.state_of_var, &self.closed);
                block.solve(&plan, &self.multigrid, self.cycle, v, z);
            }
            _ => self.apply_split(v, z, sigma),
        }
    }

    fn apply_split(&self, v: &[f64], z: &mut [f64], sigma: f64) {
        let n = self.n;
        self.solve_blocks(v, z, sigma);
        // σ·(σ − A)⁻¹ per species by one multigrid V-cycle; a closed species (no held
        // voxel, no loss) is then shifted uniformly so that its sum is that of the input,
        // as for the exact inverse (1ᵀ(σ − A) = σ·1ᵀ): the Krylov increments then keep
        // every conserved total.
        for (k, var) in self.vars.iter().enumerate() {
            let Some(mg) = &self.multigrid[k] else {
                continue;
            };
            let field = &mut z[k * n..(k + 1) * n];
            let mut rhs = self.scratch.uninit(n);
            rhs.par_iter_mut()
                .zip(&*field)
                .for_each(|(r, v)| *r = v * sigma);
            mg.solve(sigma, &rhs, field);
            if var.closed {
                let want: f64 = rhs.iter().sum::<f64>() / sigma;
                let have: f64 = field.iter().sum();
                let shift = (want - have) / n as f64;
                for x in field.iter_mut() {
                    *x += shift;
                }
            }
        }
    }

    /// z = (σ − J_R)⁻¹·v in every voxel (the factored blocks), σ⁻¹·v for integrated
    /// species outside the network.
    fn solve_blocks(&self, v: &[f64], z: &mut [f64], sigma: f64) {
        let n = self.n;
        z.copy_from_slice(v);
        if let Some(chem) = &self.chem {
            let ns = chem.n_slots;
            let m = chem.net.state.len();
            let var_of_state = &chem.var_of_state;
            let solved: Vec<Vec<f64>> = (0..n.div_ceil(CHUNK))
                .into_par_iter()
                .map(|c| {
                    let lo = c * CHUNK;
                    let hi = (lo + CHUNK).min(n);
                    let mut out = vec![0.0; (hi - lo) * m];
                    let mut b = vec![0.0; m];
                    for i in lo..hi {
                        let lu = &self.lu[i * ns..(i + 1) * ns];
                        for row in 0..m {
                            b[row] = v[var_of_state[row] * n + i];
                        }
                        for &(r, ik, k) in &chem.forward {
                            b[r] -= lu[ik] * b[k];
                        }
                        for (r, row) in &chem.backward {
                            let mut s = b[*r];
                            for &(ij, j) in row {
                                s -= lu[ij] * b[j];
                            }
                            b[*r] = s / lu[chem.diag[*r]];
                        }
                        out[(i - lo) * m..(i - lo + 1) * m].copy_from_slice(&b);
                    }
                    out
                })
                .collect();
            for (c, r) in solved.iter().enumerate() {
                let lo = c * CHUNK;
                for li in 0..r.len() / m.max(1) {
                    for row in 0..m {
                        z[var_of_state[row] * n + lo + li] = r[li * m + row];
                    }
                }
            }
            // Integrated species outside the network: (σ)⁻¹.
            for (k, var) in self.vars.iter().enumerate() {
                if var.state_ix.is_none() {
                    for x in &mut z[k * n..(k + 1) * n] {
                        *x /= sigma;
                    }
                }
            }
        } else {
            for x in z.iter_mut() {
                *x /= sigma;
            }
        }
    }

    /// The parts of a step at `conc` (all species, mM), for checking the device twin
    /// (`gpu::coupled_blocks`); vectors species-major as [`Coupled::species`].
    pub fn step_parts(&mut self, conc: &[Vec<f64>], sigma: f64, x: &[f64]) -> StepParts {
        let y = self.gather(conc);
        let mut r = vec![0.0; self.len()];
        self.reaction_rhs(&y, conc, &mut r, true);
        let ok = self.factor_split(sigma);
        debug_assert!(ok, "a pivot of σ − J_R vanished");
        let mut jx = vec![0.0; self.len()];
        self.subtract_jr(x, &mut jx);
        jx.iter_mut().for_each(|v| *v = -*v);
        let mut block_solve = vec![0.0; self.len()];
        self.solve_blocks(x, &mut block_solve, sigma);
        let mut wx = vec![0.0; self.len()];
        self.apply_w(x, &mut wx, sigma);
        let mut precond = vec![0.0; self.len()];
        self.apply_split(x, &mut precond, sigma);
        StepParts {
            r,
            jx,
            block_solve,
            wx,
            precond,
        }
    }

    /// Solves W·x = b (x = 0 on entry) by right-preconditioned restarted GMRES in the
    /// weighted inner product; returns the iterations, or `None` if it did not converge.
    fn solve(&mut self, b: &[f64], x: &mut [f64], sigma: f64, h: f64) -> Option<usize> {
        // The Krylov basis is kept between solves (each vector is a whole state).
        let mut basis = std::mem::take(&mut self.basis);
        let mut zs = std::mem::take(&mut self.preconditioned);
        let result = self.gmres(b, x, sigma, h, &mut basis, &mut zs);
        self.basis = basis;
        self.preconditioned = zs;
        if let (Some(its), Preconditioner::Block) = (result, self.preconditioner) {
            self.cycle = match self.cycle {
                Cycle::V if its >= W_CYCLE_FROM => Cycle::W,
                Cycle::W if its < V_CYCLE_BELOW => Cycle::V,
                c => c,
            };
        }
        result
    }

    fn gmres(
        &mut self,
        b: &[f64],
        x: &mut [f64],
        sigma: f64,
        h: f64,
        basis: &mut Vec<Vec<f64>>,
        zs: &mut Vec<Vec<f64>>,
    ) -> Option<usize> {
        let len = self.len();
        let pool = self.scratch.clone();
        let w = pool.copy_of(&self.weight);
        // Partial sums over fixed chunks, added in order: the same value for any number of
        // threads and any work stealing (rayon's `sum` splits where threads steal, so its
        // rounding, and with it the solver's steps, would change from run to run).
        let dot = |a: &[f64], c: &[f64]| -> f64 {
            let partial: Vec<f64> = a
                .par_chunks(CHUNK)
                .zip(c.par_chunks(CHUNK))
                .zip(w.par_chunks(CHUNK))
                .map(|((a, c), w)| {
                    a.iter()
                        .zip(c)
                        .zip(w)
                        .map(|((p, q), s)| p * q * s * s)
                        .sum()
                })
                .collect();
            partial.iter().sum()
        };
        // Stop when the weighted RMS of γh·r is below LINEAR_TOL.
        let target = LINEAR_TOL * (len as f64).sqrt() / (GAMMA * h);
        let mut r = pool.copy_of(b);
        let mut iterations = 0;
        x.fill(0.0);
        let mut beta = dot(&r, &r).sqrt();
        if beta == 0.0 {
            return Some(0);
        }
        let mut first = true;
        loop {
            if !first {
                // True residual after a restart.
                let mut wx = pool.uninit(len);
                self.apply_w(x, &mut wx, sigma);
                r.par_iter_mut()
                    .zip(b)
                    .zip(&*wx)
                    .for_each(|((ri, bi), wi)| *ri = bi - wi);
                let before = beta;
                beta = dot(&r, &r).sqrt();
                if beta <= target {
                    return Some(iterations);
                }
                // (A NaN residual gives up too.)
                if beta.is_nan() || beta > RESTART_MIN_REDUCTION * before {
                    return None;
                }
            }
            first = false;
            let vector = |basis: &mut Vec<Vec<f64>>, j: usize, from: &[f64], scale: f64| {
                if basis.len() <= j {
                    basis.push(vec![0.0; len]);
                }
                basis[j]
                    .par_iter_mut()
                    .zip(from)
                    .for_each(|(a, b)| *a = b * scale);
            };
            vector(basis, 0, &r, 1.0 / beta);
            let mut arnoldi = Arnoldi::new(RESTART, beta);
            let mut wz = pool.uninit(len);
            let mut resid = beta;
            for j in 0..RESTART {
                // z_j = P⁻¹v_j is kept, so that x = Z·y needs no further preconditioner
                // application (P is linear and fixed within a solve: the same x).
                if zs.len() <= j {
                    zs.push(vec![0.0; len]);
                }
                self.apply_preconditioner(&basis[j], &mut zs[j], sigma);
                self.apply_w(&zs[j], &mut wz, sigma);
                let mut h = Vec::with_capacity(j + 1);
                for v in basis.iter().take(j + 1) {
                    let hij = dot(&wz, v);
                    h.push(hij);
                    wz.par_iter_mut().zip(v).for_each(|(a, b)| *a -= hij * b);
                }
                let hn = dot(&wz, &wz).sqrt();
                resid = arnoldi.push(&h, hn)?;
                iterations += 1;
                if resid <= target || iterations >= MAX_LINEAR_ITERATIONS || hn == 0.0 {
                    break;
                }
                vector(basis, j + 1, &wz, 1.0 / hn);
            }
            // y = H⁻¹g, x += Z·y (= P⁻¹·V·y: right preconditioning with the images kept).
            let k_used = arnoldi.columns();
            let yv = arnoldi.solve();
            for (zj, yj) in zs.iter().take(k_used).zip(&yv) {
                x.par_iter_mut().zip(zj).for_each(|(a, b)| *a += yj * b);
            }
            self.linear_iterations += k_used as u64;
            if resid <= target {
                return Some(iterations);
            }
            if iterations >= MAX_LINEAR_ITERATIONS {
                return None;
            }
        }
    }

    /// Sets the quasi-steady species from the state (as the split scheme does after each
    /// reaction call).
    fn set_quasi_steady(&self, conc: &mut [Vec<f64>]) {
        let Some(chem) = &self.chem else {
            return;
        };
        let net = &chem.net;
        if net.qss.is_empty() {
            return;
        }
        let tapes = &chem.prep.tapes;
        let bound = net.bound_species();
        let n = self.n;
        let values: Vec<Vec<f64>> = (0..n.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let lo = c * CHUNK;
                let hi = (lo + CHUNK).min(n);
                let mut regs = tapes.registers();
                let mut conc_v = vec![0.0; net.species_names.len()];
                let mut out = Vec::with_capacity((hi - lo) * net.qss.len());
                #[allow(clippy::needless_range_loop)] // i indexes every bound species' field
                for i in lo..hi {
                    for &s in &bound {
                        conc_v[s] = conc[s][i];
                    }
                    let tissue = (self.mask[i] & TISSUE_ID_MASK) as usize;
                    tapes.qss.run(&conc_v, tissue, &net.params, &mut regs[2]);
                    for k in 0..net.qss.len() {
                        out.push(regs[2].get(tapes.qss.outputs[k]));
                    }
                }
                out
            })
            .collect();
        let nq = net.qss.len();
        for (c, vals) in values.iter().enumerate() {
            let lo = c * CHUNK;
            for (li, chunk) in vals.chunks(nq).enumerate() {
                for (k, &(q, _)) in net.qss.iter().enumerate() {
                    conc[q][lo + li] = chunk[k];
                }
            }
        }
    }
}

/// out += A·u for one species: c·Σ_neighbours (u_nb − u) − k_t·u, 0 on held voxels. A
/// missing neighbour (grid face) drops its term: zero flux.
fn apply_diffusion(v: &Var, u: &[f64], out: &mut [f64], mask: &[u32], [nx, ny, nz]: [usize; 3]) {
    let c = v.c_per_s;
    let decays = v.decay_per_s.iter().any(|&d| d > 0.0);
    if c == 0.0 && !decays {
        return;
    }
    let slab = nx * ny;
    out.par_chunks_mut(slab).enumerate().for_each(|(k, o)| {
        for j in 0..ny {
            for i in 0..nx {
                let ix = i + nx * (j + ny * k);
                let m = mask[ix];
                if m & v.held_bit != 0 {
                    continue;
                }
                let uc = u[ix];
                let mut lap = 0.0;
                if i > 0 {
                    lap += u[ix - 1] - uc;
                }
                if i + 1 < nx {
                    lap += u[ix + 1] - uc;
                }
                if j > 0 {
                    lap += u[ix - nx] - uc;
                }
                if j + 1 < ny {
                    lap += u[ix + nx] - uc;
                }
                if k > 0 {
                    lap += u[ix - slab] - uc;
                }
                if k + 1 < nz {
                    lap += u[ix + slab] - uc;
                }
                let q = v.decay_per_s[(m & TISSUE_ID_MASK) as usize];
                o[i + nx * j] += c * lap - q * uc;
            }
        }
    });
}

/// The block plan of the coupled multigrid over `chem`'s compact slots.
fn block_plan<'a>(
    chem: &'a Chemistry,
    state_of_var: &'a [Option<usize>],
    closed: &'a [bool],
) -> BlockPlan<'a> {
    BlockPlan {
        m: chem.net.state.len(),
        n_slots: chem.n_slots,
        matrix: &chem.matrix,
        diag: &chem.diag,
        factor: &chem.factor,
        forward: &chem.forward,
        backward: &chem.backward,
        var_of_state: &chem.var_of_state,
        rows: &chem.rows,
        state_of_var,
        closed,
    }
}
