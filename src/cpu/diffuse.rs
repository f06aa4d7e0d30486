//! Implicit LOD diffusion with first-order loss, f64. GPU twin: `shaders/diffuse_lod.wgsl`
//! (`gpu::diffuse`); change the three together.
//!
//! One step of length dt solves, for each axis in turn (x, then y, then z), the implicit
//! (backward Euler) system of that axis alone (locally one-dimensional splitting, Yanenko
//! 1971; the scheme BioFVM uses, Ghaffarizadeh et al. 2016):
//!
//! ```text
//! (1 + q_t)·c_i − r·(c_{i−1} − 2c_i + c_{i+1}) = c_i*      r = D·dt/dx²,  q_t = k_t·dt/3
//! ```
//!
//! with one Thomas solve per grid line. Unconditionally stable for any r ≥ 0; first order
//! in time (splitting and backward Euler), second order in space.
//!
//! Row i of a line of n voxels (the same in WGSL, see [`row`]):
//! - held voxel (Dirichlet face layer or vessel): a = 0, b = 1, c = 0, so it keeps its value;
//! - free voxel: a = −r (0 at i = 0), c = −r (0 at i = n−1), b = 1 + q_t − a − c. Dropping
//!   the missing neighbour at a line end is the zero-flux (Neumann) face, and it conserves
//!   Σc exactly when q = 0.

use crate::model::{StepCoefficients, TISSUE_ID_MASK};
use rayon::prelude::*;

/// Coefficients (a, b, c) of row `i` of a line of `n` voxels whose mask is `mask`.
#[inline(always)]
pub fn row(i: usize, n: usize, mask: u32, co: &StepCoefficients) -> (f64, f64, f64) {
    if mask & co.held_bit != 0 {
        return (0.0, 1.0, 0.0);
    }
    let a = if i > 0 { -co.r } else { 0.0 };
    let c = if i + 1 < n { -co.r } else { 0.0 };
    let b = 1.0 + co.loss_per_sweep[(mask & TISSUE_ID_MASK) as usize] - a - c;
    (a, b, c)
}

/// Lines along x solved together, interleaved, so the divisions of independent lines
/// overlap instead of waiting on one recurrence.
const X_LANES: usize = 8;

/// One full LOD step of one species: x, y and z sweeps, in place.
pub fn step_in_place(
    conc_mm: &mut [f64],
    mask: &[u32],
    shape: [usize; 3],
    co: &StepCoefficients,
) {
    sweep_x_in_place(conc_mm, mask, shape, co);
    sweep_y_in_place(conc_mm, mask, shape, co);
    sweep_z_in_place(conc_mm, mask, shape, co);
}

/// Pointwise loss of a species that does not diffuse: c ← c/(1 + q) with the collapsed
/// loss of three sweeps (`StepCoefficients::collapsed_loss`); held voxels keep their value.
pub fn decay_in_place(conc_mm: &mut [f64], mask: &[u32], co: &StepCoefficients) {
    let loss = co.collapsed_loss();
    conc_mm
        .par_chunks_mut(1 << 14)
        .zip(mask.par_chunks(1 << 14))
        .for_each(|(c, m)| {
            for (c, &m) in c.iter_mut().zip(m) {
                if m & co.held_bit == 0 {
                    *c /= 1.0 + loss[(m & TISSUE_ID_MASK) as usize];
                }
            }
        });
}

/// Sweep along x: lines are contiguous; [`X_LANES`] lines of one z-slab at a time.
pub fn sweep_x_in_place(
    conc_mm: &mut [f64],
    mask: &[u32],
    [nx, ny, _nz]: [usize; 3],
    co: &StepCoefficients,
) {
    conc_mm
        .par_chunks_mut(nx * ny)
        .zip(mask.par_chunks(nx * ny))
        .for_each_init(
            || vec![0.0f64; 2 * nx * X_LANES],
            |scratch, (slab, mask_slab)| {
                let (cp, dp) = scratch.split_at_mut(nx * X_LANES);
                let mut j = 0;
                while j + X_LANES <= ny {
                    solve_x_lanes::<X_LANES>(slab, mask_slab, j, nx, co, cp, dp);
                    j += X_LANES;
                }
                while j < ny {
                    solve_x_lanes::<1>(slab, mask_slab, j, nx, co, cp, dp);
                    j += 1;
                }
            },
        );
}

/// Thomas solve of the L lines j0..j0+L of one slab (x contiguous).
#[inline(always)]
fn solve_x_lanes<const L: usize>(
    slab: &mut [f64],
    mask: &[u32],
    j0: usize,
    nx: usize,
    co: &StepCoefficients,
    cp: &mut [f64],
    dp: &mut [f64],
) {
    let mut c_prev = [0.0f64; L];
    let mut d_prev = [0.0f64; L];
    for i in 0..nx {
        for l in 0..L {
            let ix = (j0 + l) * nx + i;
            let (a, b, c) = row(i, nx, mask[ix], co);
            let inv = 1.0 / (b - a * c_prev[l]);
            c_prev[l] = c * inv;
            d_prev[l] = (slab[ix] - a * d_prev[l]) * inv;
            cp[i * L + l] = c_prev[l];
            dp[i * L + l] = d_prev[l];
        }
    }
    // Back substitution; c = 0 on the last row, so starting from x = 0 is exact.
    let mut x = [0.0f64; L];
    for i in (0..nx).rev() {
        for l in 0..L {
            x[l] = dp[i * L + l] - cp[i * L + l] * x[l];
            slab[(j0 + l) * nx + i] = x[l];
        }
    }
}

/// Sweep along y: for each z-slab, all x-lines advance together row by row (contiguous,
/// vectorisable inner loop over x).
pub fn sweep_y_in_place(
    conc_mm: &mut [f64],
    mask: &[u32],
    [nx, ny, _nz]: [usize; 3],
    co: &StepCoefficients,
) {
    conc_mm
        .par_chunks_mut(nx * ny)
        .zip(mask.par_chunks(nx * ny))
        .for_each_init(
            || vec![0.0f64; 2 * nx * ny],
            |scratch, (slab, mask_slab)| {
                let rows = RowLines {
                    base: slab.as_mut_ptr(),
                    mask: mask_slab.as_ptr(),
                    row_stride: nx,
                    n: ny,
                    nx,
                };
                // SAFETY: rows j·nx .. j·nx+nx for j < ny lie inside this slab, which this
                // closure owns exclusively.
                unsafe { rows.solve_in_place(co, scratch) };
            },
        );
}

/// Sweep along z: for each y, all x-lines of the (x, z) plane advance together, row by row.
pub fn sweep_z_in_place(
    conc_mm: &mut [f64],
    mask: &[u32],
    [nx, ny, nz]: [usize; 3],
    co: &StepCoefficients,
) {
    assert_eq!(conc_mm.len(), nx * ny * nz, "field length matches the grid");
    assert_eq!(mask.len(), nx * ny * nz, "mask length matches the grid");
    let base = SendPtr(conc_mm.as_mut_ptr());
    let mask_base = mask.as_ptr() as usize;
    (0..ny).into_par_iter().for_each_init(
        || vec![0.0f64; 2 * nx * nz],
        |scratch, j| {
            let base = &base;
            let rows = RowLines {
                // SAFETY: offset j·nx < nx·ny·nz.
                base: unsafe { base.0.add(j * nx) },
                mask: (mask_base as *const u32).wrapping_add(j * nx),
                row_stride: nx * ny,
                n: nz,
                nx,
            };
            // SAFETY: the rows of plane j (offsets j·nx + k·nx·ny, k < nz, length nx) are
            // inside the field and disjoint from every other plane's, so each task writes
            // only its own voxels.
            unsafe { rows.solve_in_place(co, scratch) };
        },
    );
}

/// A raw pointer that may cross threads; each task touches disjoint rows (see the callers).
struct SendPtr(*mut f64);
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

/// `nx` independent lines of length `n`, laid out as `n` rows of `nx` contiguous values,
/// row t at `base + t·row_stride` (y-sweep: stride nx; z-sweep: stride nx·ny).
struct RowLines {
    base: *mut f64,
    mask: *const u32,
    row_stride: usize,
    n: usize,
    nx: usize,
}

impl RowLines {
    /// Thomas solve of all `nx` lines at once. `scratch` holds 2·n·nx values.
    ///
    /// # Safety
    /// Every row `base + t·row_stride .. + nx` for t < n must be valid for reads and
    /// writes and not accessed by anyone else during the call; likewise `mask` for reads.
    unsafe fn solve_in_place(&self, co: &StepCoefficients, scratch: &mut [f64]) {
        let (n, nx) = (self.n, self.nx);
        let (cp, dp) = scratch.split_at_mut(n * nx);
        for t in 0..n {
            let conc = std::slice::from_raw_parts(self.base.add(t * self.row_stride), nx);
            let mask = std::slice::from_raw_parts(self.mask.add(t * self.row_stride), nx);
            let a_free = if t > 0 { -co.r } else { 0.0 };
            let c_free = if t + 1 < n { -co.r } else { 0.0 };
            let (cp_done, cp_rest) = cp.split_at_mut(t * nx);
            let (dp_done, dp_rest) = dp.split_at_mut(t * nx);
            let (cp_row, dp_row) = (&mut cp_rest[..nx], &mut dp_rest[..nx]);
            if t == 0 {
                for i in 0..nx {
                    let (_, b, c) = row_free_or_held(mask[i], a_free, c_free, co);
                    let inv = 1.0 / b;
                    cp_row[i] = c * inv;
                    dp_row[i] = conc[i] * inv;
                }
            } else {
                let cp_prev = &cp_done[(t - 1) * nx..];
                let dp_prev = &dp_done[(t - 1) * nx..];
                for i in 0..nx {
                    let (a, b, c) = row_free_or_held(mask[i], a_free, c_free, co);
                    let inv = 1.0 / (b - a * cp_prev[i]);
                    cp_row[i] = c * inv;
                    dp_row[i] = (conc[i] - a * dp_prev[i]) * inv;
                }
            }
        }
        // Back substitution, last row first (c = 0 there: x = d′).
        for t in (0..n).rev() {
            let out = std::slice::from_raw_parts_mut(self.base.add(t * self.row_stride), nx);
            let cp_row = &cp[t * nx..(t + 1) * nx];
            let dp_row = &dp[t * nx..(t + 1) * nx];
            if t + 1 == n {
                out.copy_from_slice(dp_row);
            } else {
                let next =
                    std::slice::from_raw_parts(self.base.add((t + 1) * self.row_stride), nx);
                for i in 0..nx {
                    out[i] = dp_row[i] - cp_row[i] * next[i];
                }
            }
        }
    }
}

/// [`row`] with the line-position terms hoisted out of the inner loop.
#[inline(always)]
fn row_free_or_held(mask: u32, a_free: f64, c_free: f64, co: &StepCoefficients) -> (f64, f64, f64) {
    if mask & co.held_bit != 0 {
        (0.0, 1.0, 0.0)
    } else {
        let q = co.loss_per_sweep[(mask & TISSUE_ID_MASK) as usize];
        (a_free, 1.0 + q - a_free - c_free, c_free)
    }
}
