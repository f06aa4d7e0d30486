//! Implicit Douglas ADI diffusion with first-order loss, f64. GPU twin:
//! `shaders/diffuse_adi.wgsl` (`gpu::diffuse`); change the three together.
//!
//! The operator of a step, split by direction (r = D·dt/dx², q_t = k_t·dt for tissue t):
//!
//! ```text
//! A_x u = r·δx²u − q_t·u,   A_y u = r·δy²u,   A_z u = r·δz²u
//! ```
//!
//! where δ²u_i = (u_{i−1} − u_i) + (u_{i+1} − u_i), a missing neighbour at a grid face
//! dropping its term (zero flux), and every A_d u = 0 on a held voxel (Dirichlet face layer
//! or vessel). Douglas–Gunn splitting (Douglas 1962; Douglas & Gunn 1964) with weight θ:
//!
//! ```text
//! x: (I − θA_x) Δ₁ = (A_x + A_y + A_z) u      (the explicit residual of the full operator)
//! y: (I − θ(A_y + L)) Δ₂ = Δ₁
//! z: (I − θ(A_z + L)) Δ₃ = Δ₂,      u ← u + (I − θL)²·Δ₃
//! ```
//!
//! (L = −q_t per voxel, the loss that A_x carries; without loss this is Douglas's scheme,
//! and the loss terms are explained below), one Thomas solve per grid line and direction.
//! This "delta form" is algebraically the Douglas scheme; solving for increments rather than values keeps f32 rounding relative to
//! Δ, not to u, which is what conserves mass on the GPU (the value form drifted 3e-4 over
//! 1000 steps in f32). Unlike locally one-dimensional splitting,
//! its fixed point solves (A_x + A_y + A_z) u = 0 exactly, so steady states do not depend on
//! dt (LOD's did: at r = 20 it made vessel halos anisotropic). Unconditionally stable for
//! θ ≥ ½; θ = 1 is first order in time and damps stiff modes, θ = ½ is second order.
//! Second order in space. With zero-flux faces and no loss Σu is conserved exactly.
//!
//! Row i of a line of n voxels in direction d (the same in WGSL):
//! - held: a = 0, b = 1, c = 0 (and the right-hand side is u itself);
//! - free: a = −θr (0 at i = 0), c = −θr (0 at i = n−1), b = 1 + θ·q − a − c, with q = q_t
//!   in all three sweeps; the z sweep's result is multiplied by (1 + θq_t)² per voxel.
//!
//! **Loss and positivity.** With L the loss (−q_t per voxel), the step is
//!
//! ```text
//! Δ = (I − θL)²·(I − θ(A_z + L))⁻¹·(I − θ(A_y + L))⁻¹·(I − θ(A_x + L))⁻¹·A·u
//! ```
//!
//! whose factorisation is I − θA at first order in dt, as Douglas's, so θ = ½ stays second
//! order, and whose fixed point is A·u = 0 (delta form), so steady states do not depend on
//! dt. A voxel with only loss gets Δ = −q·u/(1 + θq) as before. With the loss on the x
//! sweep alone (the previous form), the y and z sweeps spread the x sweep's loss of a rich
//! voxel onto its poor neighbours: a rich voxel (u = h) beside an empty one along y, θ = 1,
//! no x or z variation, gives the empty voxel Δ = r·h·(1 − q)/((1 + q)(1 + 2r)), negative
//! once q > 1 (measured: O2 down to −3.3e-4 mM at 10/s, dt 0.5 s). In the form above it
//! is r·h/(1 + q + 2r) > 0, and the rich voxel keeps h·(1 + q + r)/((1 + q)(1 + q + 2r)) >
//! 0, for every q and r. Along a line with no y or z variation the two forms are equal.
//! (No θ < 1 is positive at large q: a lone voxel's factor (1 − (1 − θ)q)/(1 + θq) is
//! negative beyond q = 1/(1 − θ); the configuration refuses that.)

use crate::model::{StepCoefficients, TISSUE_ID_MASK};
use rayon::prelude::*;

/// Lines along x solved together, interleaved, so the divisions of independent lines
/// overlap instead of waiting on one recurrence.
const X_LANES: usize = 8;

/// One full step of one species: `u` advances in place; `v` (scratch, same size) holds Δ.
pub fn step_in_place(
    u_mm: &mut [f64],
    v_mm: &mut [f64],
    mask: &[u32],
    shape: [usize; 3],
    co: &StepCoefficients,
) {
    sweep_x(u_mm, v_mm, mask, shape, co);
    sweep_y(v_mm, mask, shape, co);
    sweep_z(u_mm, v_mm, mask, shape, co);
}

/// Pointwise loss of a species that does not diffuse (A_y = A_z = 0, r = 0):
/// u ← u·(1 − (1−θ)q)/(1 + θq); held voxels keep their value.
pub fn decay_in_place(u_mm: &mut [f64], mask: &[u32], co: &StepCoefficients) {
    let th = co.theta;
    u_mm.par_chunks_mut(1 << 14)
        .zip(mask.par_chunks(1 << 14))
        .for_each(|(u, m)| {
            for (u, &m) in u.iter_mut().zip(m) {
                if m & co.held_bit == 0 {
                    let q = co.loss[(m & TISSUE_ID_MASK) as usize];
                    *u *= (1.0 - (1.0 - th) * q) / (1.0 + th * q);
                }
            }
        });
}

/// x sweep: v ← (I − θA_x)⁻¹ (A_x + A_y + A_z) u. Lines are contiguous;
/// [`X_LANES`] lines of one z-slab at a time. Reads u at y and z neighbours.
pub fn sweep_x(
    u_mm: &[f64],
    v_mm: &mut [f64],
    mask: &[u32],
    [nx, ny, nz]: [usize; 3],
    co: &StepCoefficients,
) {
    let slab = nx * ny;
    v_mm.par_chunks_mut(slab).enumerate().for_each_init(
        || vec![0.0f64; 3 * nx * X_LANES],
        |scratch, (k, v_slab)| {
            let ctx = XSlab {
                u: u_mm,
                mask,
                nx,
                ny,
                nz,
                k,
                co,
            };
            let mut j = 0;
            while j + X_LANES <= ny {
                ctx.solve_lanes::<X_LANES>(v_slab, j, scratch);
                j += X_LANES;
            }
            while j < ny {
                ctx.solve_lanes::<1>(v_slab, j, scratch);
                j += 1;
            }
        },
    );
}

struct XSlab<'a> {
    u: &'a [f64],
    mask: &'a [u32],
    nx: usize,
    ny: usize,
    nz: usize,
    k: usize,
    co: &'a StepCoefficients,
}

impl XSlab<'_> {
    /// Residual (A_x + A_y + A_z) u of the x-line (j, k) into `out` (0 on held voxels).
    /// A missing neighbour row (grid face) is replaced by the line itself, whose
    /// difference is 0: the zero-flux face, without a branch per voxel.
    #[inline(always)]
    fn residual_line(&self, j: usize, out: &mut [f64]) {
        let (nx, ny, nz, k) = (self.nx, self.ny, self.nz, self.k);
        let co = self.co;
        let start = nx * (j + ny * k);
        let line = |s: usize| &self.u[s..s + nx];
        let u = line(start);
        let ym = if j > 0 { line(start - nx) } else { u };
        let yp = if j + 1 < ny { line(start + nx) } else { u };
        let zm = if k > 0 { line(start - nx * ny) } else { u };
        let zp = if k + 1 < nz { line(start + nx * ny) } else { u };
        let mask = &self.mask[start..start + nx];
        for i in 0..nx {
            let uc = u[i];
            let xm = if i > 0 { u[i - 1] } else { uc };
            let xp = if i + 1 < nx { u[i + 1] } else { uc };
            let m = mask[i];
            let q = co.loss[(m & TISSUE_ID_MASK) as usize];
            let lap = (xm + xp + ym[i] + yp[i] + zm[i] + zp[i]) - 6.0 * uc;
            let res = co.r * lap - q * uc;
            out[i] = if m & co.held_bit != 0 { 0.0 } else { res };
        }
    }

    /// Thomas solve of the L lines j0..j0+L of slab k, into `v_slab`.
    #[inline(always)]
    fn solve_lanes<const L: usize>(&self, v_slab: &mut [f64], j0: usize, scratch: &mut [f64]) {
        let (nx, ny, k) = (self.nx, self.ny, self.k);
        let co = self.co;
        let (cp, rest) = scratch.split_at_mut(nx * L);
        let (dp, res) = rest.split_at_mut(nx * L);
        for l in 0..L {
            self.residual_line(j0 + l, &mut res[l * nx..(l + 1) * nx]);
        }
        let mut c_prev = [0.0f64; L];
        let mut d_prev = [0.0f64; L];
        let tr = co.theta * co.r;
        for i in 0..nx {
            let a_free = if i > 0 { -tr } else { 0.0 };
            let c_free = if i + 1 < nx { -tr } else { 0.0 };
            for l in 0..L {
                let m = self.mask[i + nx * (j0 + l + ny * k)];
                let (a, b, c) = if m & co.held_bit != 0 {
                    (0.0, 1.0, 0.0)
                } else {
                    let q = co.loss[(m & TISSUE_ID_MASK) as usize];
                    (a_free, 1.0 + co.theta * q - a_free - c_free, c_free)
                };
                let inv = 1.0 / (b - a * c_prev[l]);
                c_prev[l] = c * inv;
                d_prev[l] = (res[l * nx + i] - a * d_prev[l]) * inv;
                cp[i * L + l] = c_prev[l];
                dp[i * L + l] = d_prev[l];
            }
        }
        // Back substitution; c = 0 on the last row, so starting from x = 0 is exact.
        let mut x = [0.0f64; L];
        for i in (0..nx).rev() {
            for l in 0..L {
                x[l] = dp[i * L + l] - cp[i * L + l] * x[l];
                v_slab[(j0 + l) * nx + i] = x[l];
            }
        }
    }
}

/// y sweep: v ← (I − θ(A_y + L))⁻¹ v. For each z-slab, all x-lines advance together row by
/// row (contiguous, vectorisable inner loop over x).
pub fn sweep_y(v_mm: &mut [f64], mask: &[u32], [nx, ny, _nz]: [usize; 3], co: &StepCoefficients) {
    let slab = nx * ny;
    v_mm.par_chunks_mut(slab)
        .zip(mask.par_chunks(slab))
        .for_each_init(
            || vec![0.0f64; 2 * slab + nx],
            |scratch, (v, m)| {
                let lines = RowLines {
                    v: v.as_mut_ptr(),
                    add_to: None,
                    mask: m.as_ptr(),
                    row_stride: nx,
                    n: ny,
                    nx,
                };
                // SAFETY: rows t·nx .. t·nx + nx (t < ny) lie in this slab, owned by this
                // task.
                unsafe { lines.solve(co, scratch) };
            },
        );
}

/// z sweep: Δ₃ = (I − θ(A_z + L))⁻¹ v, u ← u + (I − θL)²·Δ₃. For each y, all x-lines of the (x, z) plane
/// advance together row by row.
pub fn sweep_z(
    u_mm: &mut [f64],
    v_mm: &mut [f64],
    mask: &[u32],
    [nx, ny, nz]: [usize; 3],
    co: &StepCoefficients,
) {
    let n = nx * ny * nz;
    assert!(
        u_mm.len() == n && v_mm.len() == n && mask.len() == n,
        "fields match the grid"
    );
    let u = SendPtr(u_mm.as_mut_ptr());
    let v = SendPtr(v_mm.as_mut_ptr());
    (0..ny).into_par_iter().for_each_init(
        || vec![0.0f64; 2 * nx * nz + nx],
        |scratch, j| {
            let (u, v) = (&u, &v);
            let lines = RowLines {
                v: v.0.wrapping_add(j * nx),
                add_to: Some(u.0.wrapping_add(j * nx)),
                mask: mask.as_ptr().wrapping_add(j * nx),
                row_stride: nx * ny,
                n: nz,
                nx,
            };
            // SAFETY: the rows of plane j (offsets j·nx + k·nx·ny, k < nz, length nx) are
            // inside the fields and disjoint from every other plane's.
            unsafe { lines.solve(co, scratch) };
        },
    );
}

/// A raw pointer that may cross threads; each task touches disjoint rows (see callers).
struct SendPtr(*mut f64);
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

/// `nx` independent lines of length `n`, stored as `n` rows of `nx` contiguous values,
/// row t at offset t·row_stride in `v`, `mask` and `add_to` (y sweep: stride nx; z sweep:
/// stride nx·ny).
struct RowLines {
    /// Right-hand side; receives the solution unless `add_to` is set.
    v: *mut f64,
    /// If set, the solution is added here (u ← u + Δ) instead of stored in `v`.
    add_to: Option<*mut f64>,
    mask: *const u32,
    row_stride: usize,
    n: usize,
    nx: usize,
}

impl RowLines {
    /// Solves (I − θA)Δ = v along the lines. `scratch` holds 2·n·nx + nx values.
    ///
    /// # Safety
    /// Rows t < n at offset t·row_stride, length nx, must be valid in `v`, `mask` and
    /// `add_to`, and touched by no one else during the call.
    unsafe fn solve(&self, co: &StepCoefficients, scratch: &mut [f64]) {
        // A species with no loss in any tissue (most of them) skips the per-voxel loss
        // lookups and the mask reads of the z sweep's update: the same values (q = 0 makes
        // both factors exactly 1), 15 % of a CPU ADI step (64³ × 8, BENCHMARKS.md).
        if co.loss.iter().all(|&q| q == 0.0) {
            self.solve_with::<false>(co, scratch)
        } else {
            self.solve_with::<true>(co, scratch)
        }
    }

    /// [`RowLines::solve`], with `LOSS = false` for a species without loss.
    unsafe fn solve_with<const LOSS: bool>(&self, co: &StepCoefficients, scratch: &mut [f64]) {
        let (n, nx) = (self.n, self.nx);
        let (cp, rest) = scratch.split_at_mut(n * nx);
        let (dp, x_next) = rest.split_at_mut(n * nx);
        let tr = co.theta * co.r;
        for t in 0..n {
            let v = std::slice::from_raw_parts(self.v.add(t * self.row_stride), nx);
            let mask = std::slice::from_raw_parts(self.mask.add(t * self.row_stride), nx);
            let a_free = if t > 0 { -tr } else { 0.0 };
            let c_free = if t + 1 < n { -tr } else { 0.0 };
            let b_free = 1.0 - a_free - c_free;
            let (cp_done, cp_rest) = cp.split_at_mut(t * nx);
            let (dp_done, dp_rest) = dp.split_at_mut(t * nx);
            let (cp_row, dp_row) = (&mut cp_rest[..nx], &mut dp_rest[..nx]);
            let prev = t.saturating_sub(1) * nx;
            for i in 0..nx {
                let held = mask[i] & co.held_bit != 0;
                let (a, b, c) = if held {
                    (0.0, 1.0, 0.0)
                } else if LOSS {
                    let q = co.loss[(mask[i] & TISSUE_ID_MASK) as usize];
                    (a_free, b_free + co.theta * q, c_free)
                } else {
                    (a_free, b_free, c_free)
                };
                let (cpp, dpp) = if t > 0 {
                    (cp_done[prev + i], dp_done[prev + i])
                } else {
                    (0.0, 0.0)
                };
                let inv = 1.0 / (b - a * cpp);
                cp_row[i] = c * inv;
                dp_row[i] = (v[i] - a * dpp) * inv;
            }
        }
        // Back substitution, last row first (c = 0 there, so x_next = 0 is exact).
        x_next.fill(0.0);
        for t in (0..n).rev() {
            let cp_row = &cp[t * nx..(t + 1) * nx];
            let dp_row = &dp[t * nx..(t + 1) * nx];
            for i in 0..nx {
                x_next[i] = dp_row[i] - cp_row[i] * x_next[i];
            }
            match self.add_to {
                Some(u) if LOSS => {
                    let u = std::slice::from_raw_parts_mut(u.add(t * self.row_stride), nx);
                    let mask = std::slice::from_raw_parts(self.mask.add(t * self.row_stride), nx);
                    for i in 0..nx {
                        // Δ = (1 + θq)²·Δ₃ (held voxels: Δ₃ = 0).
                        let f = 1.0 + co.theta * co.loss[(mask[i] & TISSUE_ID_MASK) as usize];
                        u[i] += f * f * x_next[i];
                    }
                }
                Some(u) => {
                    let u = std::slice::from_raw_parts_mut(u.add(t * self.row_stride), nx);
                    for (u, x) in u.iter_mut().zip(x_next.iter()) {
                        *u += x;
                    }
                }
                None => std::slice::from_raw_parts_mut(self.v.add(t * self.row_stride), nx)
                    .copy_from_slice(x_next),
            }
        }
    }
}
