//! The per-voxel reaction integrator, f64 twin of `shaders/react_ros2.wgsl` (keep in sync).
//!
//! ROS2 (Verwer, Spee, Blom & Hundsdorfer 1999, SIAM J Sci Comput 20:1456), a two-stage
//! L-stable Rosenbrock method of order 2, in the stage form of KPP (Sandu et al. 1997):
//!
//! ```text
//! M = I/(γh) − J,  γ = 1 + 1/√2
//! M·K1 = f(y)
//! M·K2 = f(y + K1/γ) − (2/(γh))·K1
//! y⁺ = y + 3/(2γ)·K1 + 1/(2γ)·K2,   error estimate e = (K1 + K2)/(2γ)
//! ```
//!
//! Properties the tests check: every stage increment lies in the range of the stoichiometric
//! matrix, so each conserved total (Fe2 + Fe3, …) is kept to rounding; a sub-step whose result
//! has a value below −atol is rejected and retried with half the step, so concentrations
//! never go negative (values in [−atol, 0) are set to 0); the step size follows the RMS
//! error norm with `rtol`/`atol`; more than `max_substeps` attempts in one call is a failure.

use super::sparse::{LanePlan, LuPlan};
use super::tape::{LaneTapes, Registers, Tapes};
use super::Network;
use crate::engine;

/// γ of ROS2.
pub const GAMMA: f64 = 1.0 + std::f64::consts::FRAC_1_SQRT_2;

/// Largest f32, mM: values above it cannot be written (fields and outputs are f32).
pub(crate) const F32_MAX: f64 = f32::MAX as f64;

/// Why a voxel's integration failed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// NaN or ±Inf in this state species (state index).
    NonFinite(usize),
    /// A negative value in this state species (state index).
    Negative(usize),
    /// The step-size control needed more than `max_substeps` attempts; the state index is
    /// the species with the largest error ratio in the last attempt (what limited the step).
    TooManySubsteps(usize),
}

impl Fault {
    /// Code stored by the GPU kernel: low byte = kind, next bits = state index.
    pub fn from_code(code: u32) -> Fault {
        let ix = (code >> 8) as usize;
        match code & 0xff {
            1 => Fault::NonFinite(ix),
            2 => Fault::Negative(ix),
            _ => Fault::TooManySubsteps(ix),
        }
    }
}

impl Fault {
    /// The engine error for this fault in voxel `voxel` (flat index) of a grid of `shape`
    /// in the reaction call [t0_s, t1_s]: the problem, the species, the reactions that
    /// touch it and a fix.
    pub fn into_engine_error(
        self,
        net: &Network,
        voxel: usize,
        shape: [usize; 3],
        t0_s: f64,
        t1_s: f64,
    ) -> engine::Error {
        let [nx, ny, _] = shape;
        let ijk = [voxel % nx, (voxel / nx) % ny, voxel / (nx * ny)];
        let (problem, species, fix) = match self {
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
        engine::Error::Reaction {
            problem,
            voxel: ijk,
            t0_s,
            t1_s,
            reactions,
            fix: fix.into(),
        }
    }
}

/// Scratch of one worker; reused across voxels.
pub struct Workspace {
    /// All species of the voxel (scenario order), mM.
    pub conc: Vec<f64>,
    regs: [Registers; 3],
    y: Vec<f64>,
    y0: Vec<f64>,
    acc: Vec<f64>,
    inc: Vec<f64>,
    f: Vec<f64>,
    k1: Vec<f64>,
    k2: Vec<f64>,
    ynew: Vec<f64>,
    /// M = I/(γh) − J, unfactored (for the residual) and factored.
    ma: Vec<f64>,
    m: Vec<f64>,
    r: Vec<f64>,
}

impl Workspace {
    pub fn new(net: &Network, tapes: &Tapes) -> Workspace {
        let n = net.state.len();
        Workspace {
            conc: vec![0.0; net.species_names.len()],
            regs: tapes.registers(),
            y: vec![0.0; n],
            y0: vec![0.0; n],
            acc: vec![0.0; n],
            inc: vec![0.0; n],
            f: vec![0.0; n],
            k1: vec![0.0; n],
            k2: vec![0.0; n],
            ynew: vec![0.0; n],
            ma: vec![0.0; n * n],
            m: vec![0.0; n * n],
            r: vec![0.0; n],
        }
    }
}

/// Result of one voxel's call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome {
    /// Attempted sub-steps (accepted + rejected).
    pub substeps: u32,
    /// Step size to start the next call with, s.
    pub h_next: f64,
}

#[derive(Clone, Copy)]
enum Stage {
    One,
    Two,
}

/// K = M⁻¹·K in place (K1 or K2), with one step of iterative refinement as in the shader
/// (in f64 it changes nothing measurable; kept so the twins run the same algorithm).
fn solve_refined(lu: &LuPlan, ws: &mut Workspace, stage: Stage) {
    let k = match stage {
        Stage::One => &mut ws.k1,
        Stage::Two => &mut ws.k2,
    };
    ws.ynew.copy_from_slice(k); // b
    lu.solve(&ws.m, k); // x
    lu.residual(&ws.ma, k, &ws.ynew, &mut ws.r);
    lu.solve(&ws.m, &mut ws.r);
    for (x, r) in k.iter_mut().zip(&ws.r) {
        *x += r;
    }
}

/// Writes the state into `ws.conc` and evaluates a program; `held[i]` rows give 0.
fn load(net: &Network, ws: &mut Workspace, y: &[f64]) {
    for (i, &s) in net.state.iter().enumerate() {
        ws.conc[s] = y[i];
    }
}

/// Integrates one voxel over `interval_s`. `ws.conc` holds the voxel's species on entry and
/// the result on exit (state species advanced, quasi-steady species set to P/L).
/// What [`integrate`] needs besides the network: its tapes and LU plan, built once.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub tapes: Tapes,
    pub lu: LuPlan,
    /// `tapes` for the batched integrator ([`super::lanes`]).
    pub lane_tapes: LaneTapes,
    /// `lu` renumbered for the batched integrator.
    pub lane_lu: LanePlan,
}

impl Prepared {
    pub fn new(net: &Network) -> Prepared {
        let (tapes, lu) = (Tapes::new(net), LuPlan::new(net));
        Prepared {
            lane_tapes: LaneTapes::new(&tapes),
            lane_lu: LanePlan::new(&lu),
            tapes,
            lu,
        }
    }
}

pub fn integrate(
    net: &Network,
    prep: &Prepared,
    ws: &mut Workspace,
    tissue: usize,
    held: impl Fn(usize) -> bool,
    interval_s: f64,
    h_start: f64,
) -> Result<Outcome, Fault> {
    let (tapes, lu) = (&prep.tapes, &prep.lu);
    let n = net.state.len();
    let spec = net.spec;
    let rtol = spec.rtol;
    let atol = &net.atol_mm;
    for i in 0..n {
        let v = ws.conc[net.state[i]];
        if !v.is_finite() {
            return Err(Fault::NonFinite(i));
        }
        // Douglas ADI undershoots below 0 next to steep fronts (about 1 % of the peak at
        // r ≈ 3); the reaction step starts from the non-negative part, which adds that mass
        // (known issue, reproduced by tests/chemistry.rs adi_undershoot_does_not_create_iron).
        ws.y[i] = v.max(0.0);
        // y = y0 + acc, as in the shader (which keeps acc for its f32 rounding residual).
        ws.y0[i] = ws.y[i];
        ws.acc[i] = 0.0;
    }
    let mut t = 0.0;
    let mut h = h_start.clamp(interval_s * 1e-12, interval_s);
    let mut h_next = h;
    let mut substeps = 0u32;
    let mut rejected = false;
    // State index of the last trial step that overflowed, if the latest rejection was one.
    let mut non_finite: Option<usize> = None;
    // State index with the largest error ratio in the last attempt.
    let mut limiting = 0usize;
    while t < interval_s {
        if substeps >= spec.max_substeps {
            // A trial step that kept overflowing is a blow-up of that species, not slowness.
            return Err(match non_finite {
                Some(i) => Fault::NonFinite(i),
                None => Fault::TooManySubsteps(limiting),
            });
        }
        substeps += 1;
        let last = h >= interval_s - t;
        if last {
            h = interval_s - t;
        }
        // Stage 1: f and J at y.
        let y = std::mem::take(&mut ws.y);
        load(net, ws, &y);
        ws.y = y;
        tapes
            .rhs_jac
            .run(&ws.conc, tissue, &net.params, &mut ws.regs[1]);
        let inv = 1.0 / (GAMMA * h);
        ws.ma.fill(0.0);
        for i in 0..n {
            let row_held = held(i);
            ws.f[i] = if row_held {
                0.0
            } else {
                ws.regs[1].get(tapes.rhs_jac.outputs[i])
            };
        }
        for &ix in &lu.matrix {
            let (i, k) = (ix / n, ix % n);
            let jik = if held(i) {
                0.0
            } else {
                ws.regs[1].get(tapes.rhs_jac.outputs[n + ix])
            };
            ws.ma[ix] = if i == k { inv } else { 0.0 } - jik;
        }
        ws.m.copy_from_slice(&ws.ma);
        if !lu.factor(&mut ws.m) {
            h *= 0.5;
            rejected = true;
            continue;
        }
        ws.k1.copy_from_slice(&ws.f);
        solve_refined(lu, ws, Stage::One);
        // Stage 2 at y + K1/γ.
        for i in 0..n {
            ws.ynew[i] = ws.y[i] + ws.k1[i] / GAMMA;
        }
        let y2 = std::mem::take(&mut ws.ynew);
        load(net, ws, &y2);
        ws.ynew = y2;
        tapes
            .rhs
            .run(&ws.conc, tissue, &net.params, &mut ws.regs[0]);
        let c21 = -2.0 / (GAMMA * h);
        for i in 0..n {
            let fi = if held(i) {
                0.0
            } else {
                ws.regs[0].get(tapes.rhs.outputs[i])
            };
            ws.k2[i] = fi + c21 * ws.k1[i];
        }
        solve_refined(lu, ws, Stage::Two);
        // Solution, error norm, positivity.
        // Increment, minus its part along the conserved totals (see the shader).
        for i in 0..n {
            ws.inc[i] = (1.5 * ws.k1[i] + 0.5 * ws.k2[i]) / GAMMA;
        }
        if !net.projector.is_empty() {
            for i in 0..n {
                ws.f[i] = (0..n).map(|k| net.projector[i * n + k] * ws.inc[k]).sum();
            }
            for i in 0..n {
                if !held(i) {
                    ws.inc[i] -= ws.f[i];
                }
            }
        }
        let mut err2 = 0.0;
        let mut worst = -1.0;
        let mut negative = false;
        let mut finite = true;
        #[allow(clippy::needless_range_loop)] // mirrors the shader's loop over NS
        for i in 0..n {
            let yn = ws.y0[i] + (ws.acc[i] + ws.inc[i]);
            let e = 0.5 * (ws.k1[i] + ws.k2[i]) / GAMMA;
            let sc = atol[i] + rtol * ws.y[i].abs().max(yn.abs());
            if (e / sc).abs() > worst {
                worst = (e / sc).abs();
                limiting = i;
            }
            err2 += (e / sc) * (e / sc);
            negative |= yn < -atol[i];
            finite &= yn.is_finite();
            ws.ynew[i] = yn;
        }
        let err = (err2 / n.max(1) as f64).sqrt();
        if !finite {
            // Stiffness can overflow a too-long trial step; shrink before calling it a fault.
            non_finite = (0..n).find(|&i| !ws.ynew[i].is_finite());
            h *= 0.25;
            rejected = true;
            continue;
        }
        non_finite = None;
        if err <= 1.0 && !negative {
            t = if last { interval_s } else { t + h };
            for i in 0..n {
                ws.acc[i] += ws.inc[i];
                if ws.ynew[i] < 0.0 {
                    ws.acc[i] = -ws.y0[i];
                }
                ws.y[i] = ws.ynew[i].max(0.0);
            }
            let mut fac = (0.9 / err.max(1e-10).sqrt()).clamp(0.2, 6.0);
            if rejected {
                fac = fac.min(1.0);
            }
            rejected = false;
            // Keep the unclipped step for the next call when the last one was shortened.
            h_next = if last { h_next.max(h * fac) } else { h * fac };
            h *= fac;
        } else {
            h *= if negative {
                0.5
            } else {
                (0.9 / err.sqrt()).clamp(0.2, 0.9)
            };
            rejected = true;
        }
    }
    for i in 0..n {
        ws.y[i] = (ws.y0[i] + ws.acc[i]).max(0.0);
    }
    let y = std::mem::take(&mut ws.y);
    load(net, ws, &y);
    ws.y = y;
    for i in 0..n {
        let v = ws.y[i];
        // Beyond f32's range is an overflow as on the GPU (whose fields are f32): the CPU
        // twin stops at the same point instead of writing +inf to f32 outputs later.
        if !v.is_finite() || v > F32_MAX {
            return Err(Fault::NonFinite(i));
        }
        if v < 0.0 {
            return Err(Fault::Negative(i));
        }
    }
    if !net.qss.is_empty() {
        tapes
            .qss
            .run(&ws.conc, tissue, &net.params, &mut ws.regs[2]);
        for (k, &(q, _)) in net.qss.iter().enumerate() {
            ws.conc[q] = ws.regs[2].get(tapes.qss.outputs[k]);
        }
    }
    Ok(Outcome { substeps, h_next })
}
