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

use super::tape::Tapes;
use super::Network;

/// γ of ROS2.
pub const GAMMA: f64 = 1.0 + std::f64::consts::FRAC_1_SQRT_2;

/// Why a voxel's integration failed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// NaN or ±Inf in this state species (state index).
    NonFinite(usize),
    /// A negative value in this state species (state index).
    Negative(usize),
    /// The step-size control needed more than `max_substeps` attempts.
    TooManySubsteps,
}

impl Fault {
    /// Code stored by the GPU kernel: low byte = kind, next bits = state index.
    pub fn from_code(code: u32) -> Fault {
        let ix = (code >> 8) as usize;
        match code & 0xff {
            1 => Fault::NonFinite(ix),
            2 => Fault::Negative(ix),
            _ => Fault::TooManySubsteps,
        }
    }
}

/// Scratch of one worker; reused across voxels.
pub struct Workspace {
    /// All species of the voxel (scenario order), mM.
    pub conc: Vec<f64>,
    regs: Vec<f64>,
    y: Vec<f64>,
    y0: Vec<f64>,
    acc: Vec<f64>,
    inc: Vec<f64>,
    f: Vec<f64>,
    k1: Vec<f64>,
    k2: Vec<f64>,
    ynew: Vec<f64>,
    m: Vec<f64>,
    perm: Vec<usize>,
}

impl Workspace {
    pub fn new(net: &Network, tapes: &Tapes) -> Workspace {
        let n = net.state.len();
        Workspace {
            conc: vec![0.0; net.species_names.len()],
            regs: vec![0.0; tapes.n_registers()],
            y: vec![0.0; n],
            y0: vec![0.0; n],
            acc: vec![0.0; n],
            inc: vec![0.0; n],
            f: vec![0.0; n],
            k1: vec![0.0; n],
            k2: vec![0.0; n],
            ynew: vec![0.0; n],
            m: vec![0.0; n * n],
            perm: vec![0; n],
        }
    }
}

/// Result of one voxel's call.
#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    /// Attempted sub-steps (accepted + rejected).
    pub substeps: u32,
    /// Step size to start the next call with, s.
    pub h_next: f64,
}

/// LU factorisation with partial pivoting in place (row-major n×n). False if singular.
fn lu(m: &mut [f64], perm: &mut [usize], n: usize) -> bool {
    for (i, p) in perm.iter_mut().enumerate() {
        *p = i;
    }
    for c in 0..n {
        let mut piv = c;
        for r in c + 1..n {
            if m[r * n + c].abs() > m[piv * n + c].abs() {
                piv = r;
            }
        }
        if m[piv * n + c] == 0.0 || !m[piv * n + c].is_finite() {
            return false;
        }
        if piv != c {
            for k in 0..n {
                m.swap(c * n + k, piv * n + k);
            }
            perm.swap(c, piv);
        }
        let d = m[c * n + c];
        for r in c + 1..n {
            let l = m[r * n + c] / d;
            m[r * n + c] = l;
            for k in c + 1..n {
                m[r * n + k] -= l * m[c * n + k];
            }
        }
    }
    true
}

/// Solves LU·x = P·b in place of `b`, using `tmp`.
fn lu_solve(m: &[f64], perm: &[usize], n: usize, b: &mut [f64], tmp: &mut [f64]) {
    for i in 0..n {
        let mut s = b[perm[i]];
        for k in 0..i {
            s -= m[i * n + k] * tmp[k];
        }
        tmp[i] = s;
    }
    for i in (0..n).rev() {
        let mut s = tmp[i];
        for k in i + 1..n {
            s -= m[i * n + k] * b[k];
        }
        b[i] = s / m[i * n + i];
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
pub fn integrate(
    net: &Network,
    tapes: &Tapes,
    ws: &mut Workspace,
    tissue: usize,
    held: impl Fn(usize) -> bool,
    interval_s: f64,
    h_start: f64,
) -> Result<Outcome, Fault> {
    let n = net.state.len();
    let spec = net.spec;
    let (rtol, atol) = (spec.rtol, spec.atol_mm);
    for i in 0..n {
        let v = ws.conc[net.state[i]];
        if !v.is_finite() {
            return Err(Fault::NonFinite(i));
        }
        // Diffusion (ADI) may undershoot below 0 by rounding-sized amounts next to steep
        // fronts; the reaction step starts from the non-negative part.
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
    while t < interval_s {
        if substeps >= spec.max_substeps {
            return Err(Fault::TooManySubsteps);
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
            .run(&ws.conc, tissue, &net.params, &mut ws.regs);
        let inv = 1.0 / (GAMMA * h);
        for i in 0..n {
            let row_held = held(i);
            ws.f[i] = if row_held {
                0.0
            } else {
                ws.regs[tapes.rhs_jac.outputs[i] as usize]
            };
            for k in 0..n {
                let jik = if row_held {
                    0.0
                } else {
                    ws.regs[tapes.rhs_jac.outputs[n + i * n + k] as usize]
                };
                ws.m[i * n + k] = if i == k { inv } else { 0.0 } - jik;
            }
        }
        if !lu(&mut ws.m, &mut ws.perm, n) {
            h *= 0.5;
            rejected = true;
            continue;
        }
        ws.k1.copy_from_slice(&ws.f);
        lu_solve(&ws.m, &ws.perm, n, &mut ws.k1, &mut ws.ynew);
        // Stage 2 at y + K1/γ.
        for i in 0..n {
            ws.ynew[i] = ws.y[i] + ws.k1[i] / GAMMA;
        }
        let y2 = std::mem::take(&mut ws.ynew);
        load(net, ws, &y2);
        ws.ynew = y2;
        tapes.rhs.run(&ws.conc, tissue, &net.params, &mut ws.regs);
        let c21 = -2.0 / (GAMMA * h);
        for i in 0..n {
            let fi = if held(i) {
                0.0
            } else {
                ws.regs[tapes.rhs.outputs[i] as usize]
            };
            ws.k2[i] = fi + c21 * ws.k1[i];
        }
        lu_solve(&ws.m, &ws.perm, n, &mut ws.k2, &mut ws.ynew);
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
        let mut negative = false;
        let mut finite = true;
        for i in 0..n {
            let yn = ws.y0[i] + (ws.acc[i] + ws.inc[i]);
            let e = 0.5 * (ws.k1[i] + ws.k2[i]) / GAMMA;
            let sc = atol + rtol * ws.y[i].abs().max(yn.abs());
            err2 += (e / sc) * (e / sc);
            negative |= yn < -atol;
            finite &= yn.is_finite();
            ws.ynew[i] = yn;
        }
        let err = (err2 / n.max(1) as f64).sqrt();
        if !finite {
            // Stiffness can overflow a too-long trial step; shrink before calling it a fault.
            h *= 0.25;
            rejected = true;
            continue;
        }
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
        if !v.is_finite() {
            return Err(Fault::NonFinite(i));
        }
        if v < 0.0 {
            return Err(Fault::Negative(i));
        }
    }
    if !net.qss.is_empty() {
        tapes.qss.run(&ws.conc, tissue, &net.params, &mut ws.regs);
        for (k, &(q, _)) in net.qss.iter().enumerate() {
            ws.conc[q] = ws.regs[tapes.qss.outputs[k] as usize];
        }
    }
    Ok(Outcome { substeps, h_next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lu_solves_a_pivoting_system() {
        let n = 3;
        let mut m = vec![0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 3.0, 0.0, 1.0];
        let a = m.clone();
        let mut perm = vec![0; n];
        assert!(lu(&mut m, &mut perm, n));
        let x = [1.0, -2.0, 0.5];
        let mut b: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|k| a[i * n + k] * x[k]).sum())
            .collect();
        let mut tmp = vec![0.0; n];
        lu_solve(&m, &perm, n, &mut b, &mut tmp);
        for i in 0..n {
            assert!((b[i] - x[i]).abs() < 1e-14);
        }
    }
}
