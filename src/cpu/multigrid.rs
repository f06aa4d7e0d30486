//! Aggregation multigrid for one species' implicit diffusion matrix σ·I − A (the
//! preconditioner of the coupled scheme's linear solves, `cpu::coupled`).
//!
//! Level 0 is the 7-point operator on the grid in increment space: a free voxel has the
//! diagonal σ + c·(neighbours) + k_t and −c to each free neighbour (c = D/dx², 1/s; k_t the
//! first-order loss of its tissue); a held voxel (vessel, Dirichlet face) is the row σ with
//! no couplings, so the matrix is symmetric. Coarser levels aggregate 2×2×2 voxels and keep
//! the Galerkin operator Pᵀ·M·P of piecewise-constant prolongation P, which is again a
//! 7-point operator: diagonal σ·(voxels in the aggregate) + the aggregated loss and the
//! couplings that leave the aggregate, and couplings summed over the faces between
//! aggregates. The σ-free parts are built once per species; σ (which changes with the
//! step) is added when a cycle runs. One V-cycle: red–black Gauss–Seidel (2 sweeps down,
//! 2 up, reversed colours), restriction by summing, prolongation by injection, 30 sweeps on
//! the coarsest level (at most 2³ voxels, or diagonally dominant).

use rayon::prelude::*;

/// Relaxation sweeps before and after the coarse correction.
pub(crate) const SWEEPS: usize = 2;

/// Levels smaller than this run on one thread (rayon's hand-off costs more than the work).
const PARALLEL_VOXELS: usize = 1 << 15;

/// Sweeps on the coarsest level.
pub(crate) const COARSEST_SWEEPS: usize = 30;

/// One level's operator without σ.
#[derive(Clone, Debug)]
pub(crate) struct Level {
    pub(crate) shape: [usize; 3],
    /// Fine voxels per aggregate (the multiple of σ on the diagonal).
    pub(crate) count: Vec<f64>,
    /// Diagonal without σ, 1/s.
    pub(crate) diag: Vec<f64>,
    /// Coupling to the +x, +y, +z neighbour (the matrix entry is −w), 1/s.
    pub(crate) w: [Vec<f64>; 3],
}

/// The levels of one species.
#[derive(Clone, Debug)]
pub struct Hierarchy {
    levels: Vec<Level>,
}

impl Hierarchy {
    /// Level 0 from c = D/dx² (1/s), the per-voxel loss `loss_per_s` (1/s) and the held
    /// mask of the species; then coarser levels down to at most 2³ voxels.
    pub fn new(shape: [usize; 3], c_per_s: f64, loss_per_s: &[f64], held: &[bool]) -> Hierarchy {
        let [nx, ny, nz] = shape;
        let n = nx * ny * nz;
        let mut diag = vec![0.0; n];
        let mut w = [vec![0.0; n], vec![0.0; n], vec![0.0; n]];
        let strides = [1, nx, nx * ny];
        for k in 0..nz {
            for j in 0..ny {
                for i in 0..nx {
                    let ix = i + nx * (j + ny * k);
                    if held[ix] {
                        continue;
                    }
                    let pos = [i, j, k];
                    let mut d = loss_per_s[ix];
                    for a in 0..3 {
                        if pos[a] > 0 {
                            d += c_per_s;
                        }
                        if pos[a] + 1 < shape[a] {
                            d += c_per_s;
                            if !held[ix + strides[a]] {
                                w[a][ix] = c_per_s;
                            }
                        }
                    }
                    diag[ix] = d;
                }
            }
        }
        let mut levels = vec![Level {
            shape,
            count: vec![1.0; n],
            diag,
            w,
        }];
        while levels.len() < coarse_shapes(shape).len() {
            let coarse = coarsen(levels.last().unwrap());
            levels.push(coarse);
        }
        Hierarchy { levels }
    }

    /// The levels, finest first (shapes as [`coarse_shapes`] gives them).
    pub(crate) fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// x ≈ (σ·I − A)⁻¹·b by one V-cycle from x = 0.
    pub fn solve(&self, sigma: f64, b: &[f64], x: &mut [f64]) {
        x.fill(0.0);
        self.cycle(0, sigma, b, x);
    }

    fn cycle(&self, l: usize, sigma: f64, b: &[f64], x: &mut [f64]) {
        let lv = &self.levels[l];
        if l + 1 == self.levels.len() {
            for _ in 0..COARSEST_SWEEPS {
                relax(lv, sigma, b, x, false);
            }
            return;
        }
        for _ in 0..SWEEPS {
            relax(lv, sigma, b, x, false);
        }
        // Residual, restricted by summing over aggregates.
        let r = residual(lv, sigma, b, x);
        let cl = &self.levels[l + 1];
        let nc: usize = cl.shape.iter().product();
        let mut rc = vec![0.0; nc];
        let [nx, ny, nz] = lv.shape;
        let [cx, cy, _] = cl.shape;
        for k in 0..nz {
            for j in 0..ny {
                for i in 0..nx {
                    rc[i / 2 + cx * (j / 2 + cy * (k / 2))] += r[i + nx * (j + ny * k)];
                }
            }
        }
        let mut xc = vec![0.0; nc];
        self.cycle(l + 1, sigma, &rc, &mut xc);
        let prolong = |(k, xs): (usize, &mut [f64])| {
            for j in 0..ny {
                for i in 0..nx {
                    xs[i + nx * j] += xc[i / 2 + cx * (j / 2 + cy * (k / 2))];
                }
            }
        };
        if nx * ny * nz < PARALLEL_VOXELS {
            x.chunks_mut(nx * ny).enumerate().for_each(prolong);
        } else {
            x.par_chunks_mut(nx * ny).enumerate().for_each(prolong);
        }
        for _ in 0..SWEEPS {
            relax(lv, sigma, b, x, true);
        }
    }
}

/// The shapes of the levels of a grid of `shape`, finest first: 2×2×2 aggregates (a last
/// odd layer joins a one-voxel-thick aggregate) down to at most 2³ voxels.
pub(super) fn coarse_shapes(shape: [usize; 3]) -> Vec<[usize; 3]> {
    let mut shapes = vec![shape];
    loop {
        let s = *shapes.last().unwrap();
        if s.iter().product::<usize>() <= 8 || s.iter().all(|&a| a == 1) {
            return shapes;
        }
        shapes.push([s[0].div_ceil(2), s[1].div_ceil(2), s[2].div_ceil(2)]);
    }
}

/// The Galerkin coarse level of `fine` (2×2×2 aggregates; a last odd layer joins a
/// one-voxel-thick aggregate).
fn coarsen(fine: &Level) -> Level {
    let [nx, ny, nz] = fine.shape;
    let cs = [nx.div_ceil(2), ny.div_ceil(2), nz.div_ceil(2)];
    let nc: usize = cs.iter().product();
    let mut count = vec![0.0; nc];
    let mut diag = vec![0.0; nc];
    let mut w = [vec![0.0; nc], vec![0.0; nc], vec![0.0; nc]];
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let f = i + nx * (j + ny * k);
                let pos = [i, j, k];
                let c = i / 2 + cs[0] * (j / 2 + cs[1] * (k / 2));
                count[c] += fine.count[f];
                diag[c] += fine.diag[f];
                for a in 0..3 {
                    let wf = fine.w[a][f];
                    if wf == 0.0 || pos[a] + 1 >= fine.shape[a] {
                        continue;
                    }
                    if pos[a] % 2 == 0 {
                        // Both voxels in the same aggregate: the coupling cancels against
                        // its share of the two diagonals.
                        diag[c] -= 2.0 * wf;
                    } else {
                        w[a][c] += wf;
                    }
                }
            }
        }
    }
    Level {
        shape: cs,
        count,
        diag,
        w,
    }
}

/// Matrix entry helpers: (σ·count + diag) on the diagonal, −w to neighbours.
fn residual(lv: &Level, sigma: f64, b: &[f64], x: &[f64]) -> Vec<f64> {
    let [nx, ny, nz] = lv.shape;
    let mut r = vec![0.0; b.len()];
    let slab = |(k, rs): (usize, &mut [f64])| {
        for j in 0..ny {
            for i in 0..nx {
                let ix = i + nx * (j + ny * k);
                let neighbours = neighbour_sum(lv, x, [i, j, k], ix);
                rs[i + nx * j] = b[ix] - (sigma * lv.count[ix] + lv.diag[ix]) * x[ix] + neighbours;
            }
        }
    };
    if nx * ny * nz < PARALLEL_VOXELS {
        r.chunks_mut(nx * ny).enumerate().for_each(slab);
    } else {
        r.par_chunks_mut(nx * ny).enumerate().for_each(slab);
    }
    r
}

/// Σ w·x over the six neighbours of voxel `ix` at `pos`.
#[inline(always)]
pub(super) fn neighbour_sum(lv: &Level, x: &[f64], pos: [usize; 3], ix: usize) -> f64 {
    let [nx, ny, _] = lv.shape;
    let strides = [1, nx, nx * ny];
    let mut s = 0.0;
    for a in 0..3 {
        if pos[a] + 1 < lv.shape[a] {
            s += lv.w[a][ix] * x[ix + strides[a]];
        }
        if pos[a] > 0 {
            s += lv.w[a][ix - strides[a]] * x[ix - strides[a]];
        }
    }
    s
}

/// Σ w·x over the six neighbours of every voxel of the x row (j, k), into `out` (length
/// nx): the same sums as [`neighbour_sum`], in contiguous (vectorisable) passes.
#[inline(always)]
pub(super) fn row_neighbour_sums(lv: &Level, x: &[f64], j: usize, k: usize, out: &mut [f64]) {
    let [nx, ny, nz] = lv.shape;
    let base = nx * (j + ny * k);
    let out = &mut out[..nx];
    let (w0, xr) = (&lv.w[0][base..base + nx], &x[base..base + nx]);
    out[nx - 1] = 0.0;
    for i in 0..nx - 1 {
        out[i] = w0[i] * xr[i + 1];
    }
    for i in 1..nx {
        out[i] += w0[i - 1] * xr[i - 1];
    }
    let mut add = |w: &[f64], xo: &[f64]| {
        for ((o, &a), &b) in out.iter_mut().zip(w).zip(xo) {
            *o += a * b;
        }
    };
    let (sy, sz) = (nx, nx * ny);
    if j + 1 < ny {
        add(&lv.w[1][base..base + nx], &x[base + sy..base + sy + nx]);
    }
    if j > 0 {
        add(
            &lv.w[1][base - sy..base - sy + nx],
            &x[base - sy..base - sy + nx],
        );
    }
    if k + 1 < nz {
        add(&lv.w[2][base..base + nx], &x[base + sz..base + sz + nx]);
    }
    if k > 0 {
        add(
            &lv.w[2][base - sz..base - sz + nx],
            &x[base - sz..base - sz + nx],
        );
    }
}

/// One red–black Gauss–Seidel sweep (red then black; black then red with `reverse`).
fn relax(lv: &Level, sigma: f64, b: &[f64], x: &mut [f64], reverse: bool) {
    let [nx, ny, nz] = lv.shape;
    let colours = if reverse { [1, 0] } else { [0, 1] };
    for colour in colours {
        // Voxels of one colour depend only on the other colour: update in parallel by
        // slab through a raw pointer (reads of the other colour, writes of this one).
        let ptr = SendPtr(x.as_mut_ptr());
        let slab = |k: usize| {
            let p = &ptr;
            for j in 0..ny {
                let start = (colour + j + k) % 2;
                for i in (start..nx).step_by(2) {
                    let ix = i + nx * (j + ny * k);
                    // SAFETY: this task writes only voxels of `colour` in slab k and reads
                    // only voxels of the other colour, which no task writes in this pass.
                    let xs = unsafe { std::slice::from_raw_parts(p.0, nx * ny * nz) };
                    let s = neighbour_sum(lv, xs, [i, j, k], ix);
                    let v = (b[ix] + s) / (sigma * lv.count[ix] + lv.diag[ix]);
                    unsafe { *p.0.add(ix) = v };
                }
            }
        };
        if nx * ny * nz < PARALLEL_VOXELS {
            (0..nz).for_each(slab);
        } else {
            (0..nz).into_par_iter().for_each(slab);
        }
    }
}

pub(super) struct SendPtr(pub(super) *mut f64);
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

#[cfg(test)]
mod tests {
    use super::*;

    /// One V-cycle reduces the residual of σ − A by a factor independent of r = c/σ
    /// (aggregation multigrid with Gauss–Seidel), measured over repeated cycles.
    #[test]
    fn v_cycle_converges_at_large_r() {
        let shape = [24, 20, 16];
        let n: usize = shape.iter().product();
        let mut held = vec![false; n];
        for k in 0..shape[2] {
            held[5 + shape[0] * (7 + shape[1] * k)] = true; // a vessel along z
        }
        for r in [1.0, 20.0, 1000.0] {
            let h = Hierarchy::new(shape, r, &vec![0.0; n], &held);
            let sigma = 1.0;
            let b: Vec<f64> = (0..n)
                .map(|i| {
                    if held[i] {
                        0.0
                    } else {
                        ((i * 7919) % 13) as f64 - 6.0
                    }
                })
                .collect();
            let mut x = vec![0.0; n];
            let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
            let r0 = norm(&b);
            let mut rate = 0.0;
            let mut prev = r0;
            for _ in 0..6 {
                let res = residual(&h.levels[0], sigma, &b, &x);
                let mut dx = vec![0.0; n];
                h.solve(sigma, &res, &mut dx);
                for (a, d) in x.iter_mut().zip(&dx) {
                    *a += d;
                }
                let now = norm(&residual(&h.levels[0], sigma, &b, &x));
                rate = now / prev;
                prev = now;
            }
            println!("r = {r}: residual reduction per V-cycle {rate:.3}");
            assert!(rate < 0.6, "r = {r}: {rate}");
        }
    }
}
