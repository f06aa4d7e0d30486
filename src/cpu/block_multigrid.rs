//! Multigrid for the whole coupled matrix W = σ·I − J_R − A of a coupled step (the
//! preconditioner of `cpu::coupled`'s linear solves when there is a reaction network).
//!
//! Each level holds, per voxel, a block over the integrated species: σ·(voxels in the
//! aggregate) plus each species' diffusion diagonal (the per-species aggregation levels of
//! [`super::multigrid`]) on the diagonal, minus the reaction Jacobian J_R summed over the
//! aggregate (the Galerkin operator of piecewise-constant prolongation, as for diffusion).
//! The smoother is collective red–black Gauss–Seidel: a voxel's species are updated
//! together by one sparse LU solve of its block, the neighbours' values taken as they are.
//! Factoring σ − J_R and σ − A apart (the first preconditioner) leaves an error J_R·A/σ
//! that grows with the step; this smoother keeps both in every voxel's solve, so the number
//! of Krylov iterations stays small at steps of minutes.
//!
//! Conservation: after the V-cycle, a uniform correction of the closed species (no held
//! voxel, no loss) makes their grid sums those of the exact inverse (its residual sums are
//! then 0): with E a conserved combination of closed species, Eᵀ·W = σ·Eᵀ over the grid,
//! so every preconditioned Krylov increment keeps the conserved totals to rounding.

use rayon::prelude::*;

use crate::chem::sparse::{factor_in_place, FactorOp};

use super::multigrid::{coarse_shapes, neighbour_sum, Hierarchy, Level, SendPtr};

/// Collective sweeps before and after the coarse correction.
const SWEEPS: usize = 2;

/// Sweeps on the coarsest level.
const COARSEST_SWEEPS: usize = 30;

/// Levels smaller than this run on one thread (a voxel's block update is about as much
/// work as a species' whole stencil, so this is lower than the diffusion multigrid's).
const PARALLEL_VOXELS: usize = 1 << 11;

/// One voxel's block as a sparse LU plan on compact slots (the reaction Jacobian's pattern
/// with the diagonal and the fill-in).
pub struct BlockPlan<'a> {
    /// State species of the network (block rows that couple).
    pub m: usize,
    /// Compact slots per voxel.
    pub n_slots: usize,
    /// (slot, row, column) of each Jacobian entry.
    pub matrix: &'a [(usize, usize, usize)],
    /// Diagonal slot of each row.
    pub diag: &'a [usize],
    pub factor: &'a [FactorOp],
    pub forward: &'a [(usize, usize, usize)],
    pub backward: &'a [(usize, Vec<(usize, usize)>)],
    /// Integrated species (index into the vectors' species blocks) of each state row.
    pub var_of_state: &'a [usize],
    /// Per state row, (slot, integrated species of the column) of its Jacobian entries.
    pub rows: &'a [Vec<(usize, usize)>],
    /// State row of each integrated species, if it is in the network.
    pub state_of_var: &'a [Option<usize>],
    /// Integrated species whose grid total only reactions change.
    pub closed: &'a [bool],
}

/// The levels' summed Jacobians and factored blocks for one σ.
pub struct BlockMultigrid {
    shapes: Vec<[usize; 3]>,
    /// Fine voxels per aggregate, per level.
    count: Vec<Vec<f64>>,
    /// J_R per voxel on compact slots, per level ≥ 1 (level 0 is the caller's).
    jac: Vec<Vec<f64>>,
    /// Factored blocks per voxel, per level.
    lu: Vec<Vec<f64>>,
    /// J_R summed over the whole grid (compact slots), for the conservation correction.
    jac_total: Vec<f64>,
    sigma: f64,
}

/// The diffusion level of integrated species k at level l, if it diffuses or decays.
fn level(hier: &[Option<Hierarchy>], k: usize, l: usize) -> Option<&Level> {
    hier[k].as_ref().map(|h| &h.levels()[l])
}

impl BlockMultigrid {
    pub fn new(shape: [usize; 3], n_slots: usize) -> BlockMultigrid {
        let shapes = coarse_shapes(shape);
        let mut count = vec![vec![1.0; shapes[0].iter().product()]];
        for l in 1..shapes.len() {
            let [nx, ny, nz] = shapes[l - 1];
            let [cx, cy, _] = shapes[l];
            let mut c = vec![0.0; shapes[l].iter().product()];
            for k in 0..nz {
                for j in 0..ny {
                    for i in 0..nx {
                        c[i / 2 + cx * (j / 2 + cy * (k / 2))] +=
                            count[l - 1][i + nx * (j + ny * k)];
                    }
                }
            }
            count.push(c);
        }
        let voxels: Vec<usize> = shapes.iter().map(|s| s.iter().product()).collect();
        BlockMultigrid {
            jac: voxels[1..]
                .iter()
                .map(|&n| vec![0.0; n * n_slots])
                .collect(),
            lu: voxels.iter().map(|&n| vec![0.0; n * n_slots]).collect(),
            jac_total: vec![0.0; n_slots],
            shapes,
            count,
            sigma: 0.0,
        }
    }

    /// Sums `jac0` (level 0, per voxel on compact slots) onto the coarser levels and factors
    /// every level's blocks for `sigma` (1/s); false if a pivot vanished.
    pub fn factor(
        &mut self,
        plan: &BlockPlan,
        hier: &[Option<Hierarchy>],
        jac0: &[f64],
        sigma: f64,
    ) -> bool {
        let ns = plan.n_slots;
        self.sigma = sigma;
        for l in 1..self.shapes.len() {
            let [nx, ny, nz] = self.shapes[l - 1];
            let [cx, cy, _] = self.shapes[l];
            let (done, rest) = self.jac.split_at_mut(l - 1);
            let fine: &[f64] = if l == 1 { jac0 } else { &done[l - 2] };
            let coarse = &mut rest[0];
            coarse.fill(0.0);
            for k in 0..nz {
                for j in 0..ny {
                    for i in 0..nx {
                        let f = i + nx * (j + ny * k);
                        let c = i / 2 + cx * (j / 2 + cy * (k / 2));
                        for &(slot, _, _) in plan.matrix {
                            coarse[c * ns + slot] += fine[f * ns + slot];
                        }
                    }
                }
            }
        }
        let last = self.shapes.len() - 1;
        let coarsest: &[f64] = if last == 0 { jac0 } else { &self.jac[last - 1] };
        self.jac_total.fill(0.0);
        for block in coarsest.chunks(ns) {
            for &(slot, _, _) in plan.matrix {
                self.jac_total[slot] += block[slot];
            }
        }
        let mut ok = true;
        for l in 0..self.shapes.len() {
            let jac: &[f64] = if l == 0 { jac0 } else { &self.jac[l - 1] };
            let count = &self.count[l];
            let diags: Vec<Option<&[f64]>> = plan
                .var_of_state
                .iter()
                .map(|&k| level(hier, k, l).map(|lv| lv.diag.as_slice()))
                .collect();
            let factor_chunk = |(c, (lu, jac)): (usize, (&mut [f64], &[f64]))| {
                let mut ok = true;
                for (b_ix, (b, j)) in lu.chunks_mut(ns).zip(jac.chunks(ns)).enumerate() {
                    let i = c * 256 + b_ix;
                    b.fill(0.0);
                    for &(slot, _, _) in plan.matrix {
                        b[slot] = -j[slot];
                    }
                    for (row, &d) in plan.diag.iter().enumerate() {
                        b[d] += sigma * count[i] + diags[row].map_or(0.0, |dg| dg[i]);
                    }
                    ok &= factor_in_place(plan.factor, b);
                }
                ok
            };
            ok &= if count.len() < PARALLEL_VOXELS {
                self.lu[l]
                    .chunks_mut(ns * 256)
                    .zip(jac.chunks(ns * 256))
                    .enumerate()
                    .map(factor_chunk)
                    .filter(|ok| !ok)
                    .count()
                    == 0
            } else {
                self.lu[l]
                    .par_chunks_mut(ns * 256)
                    .zip(jac.par_chunks(ns * 256))
                    .enumerate()
                    .map(factor_chunk)
                    .reduce(|| true, |a, b| a && b)
            };
        }
        ok
    }

    /// z ≈ W⁻¹·v by one V-cycle from 0, then the conservation correction. `v` and `z` are
    /// species-major over the integrated species; `jac0` is level 0's J_R.
    pub fn solve(
        &self,
        plan: &BlockPlan,
        hier: &[Option<Hierarchy>],
        jac0: &[f64],
        v: &[f64],
        z: &mut [f64],
    ) {
        z.fill(0.0);
        self.cycle(plan, hier, jac0, 0, v, z);
        self.conserve(plan, jac0, v, z);
    }

    fn cycle(
        &self,
        plan: &BlockPlan,
        hier: &[Option<Hierarchy>],
        jac0: &[f64],
        l: usize,
        b: &[f64],
        x: &mut [f64],
    ) {
        let jac: &[f64] = if l == 0 { jac0 } else { &self.jac[l - 1] };
        if l + 1 == self.shapes.len() {
            for s in 0..COARSEST_SWEEPS {
                self.relax(plan, hier, l, b, x, s % 2 == 1);
            }
            return;
        }
        for _ in 0..SWEEPS {
            self.relax(plan, hier, l, b, x, false);
        }
        let r = self.residual(plan, hier, jac, l, b, x);
        let nv = plan.state_of_var.len();
        let [nx, ny, nz] = self.shapes[l];
        let [cx, cy, _] = self.shapes[l + 1];
        let (n, nc) = (nx * ny * nz, self.count[l + 1].len());
        let mut rc = vec![0.0; nv * nc];
        for kv in 0..nv {
            let (src, dst) = (&r[kv * n..(kv + 1) * n], &mut rc[kv * nc..(kv + 1) * nc]);
            for k in 0..nz {
                for j in 0..ny {
                    for i in 0..nx {
                        dst[i / 2 + cx * (j / 2 + cy * (k / 2))] += src[i + nx * (j + ny * k)];
                    }
                }
            }
        }
        let mut xc = vec![0.0; nv * nc];
        self.cycle(plan, hier, jac0, l + 1, &rc, &mut xc);
        let prolong = |(slab, xs): (usize, &mut [f64])| {
            let (kv, k) = (slab / nz, slab % nz);
            let coarse = &xc[kv * nc..(kv + 1) * nc];
            for j in 0..ny {
                for i in 0..nx {
                    xs[i + nx * j] += coarse[i / 2 + cx * (j / 2 + cy * (k / 2))];
                }
            }
        };
        if n < PARALLEL_VOXELS {
            x.chunks_mut(nx * ny).enumerate().for_each(prolong);
        } else {
            x.par_chunks_mut(nx * ny).enumerate().for_each(prolong);
        }
        for _ in 0..SWEEPS {
            self.relax(plan, hier, l, b, x, true);
        }
    }

    /// r = b − W_l·x at level l.
    fn residual(
        &self,
        plan: &BlockPlan,
        hier: &[Option<Hierarchy>],
        jac: &[f64],
        l: usize,
        b: &[f64],
        x: &[f64],
    ) -> Vec<f64> {
        let [nx, ny, nz] = self.shapes[l];
        let n = nx * ny * nz;
        let ns = plan.n_slots;
        let nv = plan.state_of_var.len();
        let count = &self.count[l];
        let sigma = self.sigma;
        let mut r = vec![0.0; nv * n];
        let slab = |(slab, rs): (usize, &mut [f64])| {
            let (kv, k) = (slab / nz, slab % nz);
            let lv = level(hier, kv, l);
            let xs = &x[kv * n..(kv + 1) * n];
            for j in 0..ny {
                for i in 0..nx {
                    let ix = i + nx * (j + ny * k);
                    let mut w = sigma * count[ix] * xs[ix];
                    if let Some(lv) = lv {
                        w += lv.diag[ix] * xs[ix] - neighbour_sum(lv, xs, [i, j, k], ix);
                    }
                    if let Some(row) = plan.state_of_var[kv] {
                        let block = &jac[ix * ns..(ix + 1) * ns];
                        for &(slot, col_var) in &plan.rows[row] {
                            w -= block[slot] * x[col_var * n + ix];
                        }
                    }
                    rs[i + nx * j] = b[kv * n + ix] - w;
                }
            }
        };
        if n < PARALLEL_VOXELS {
            r.chunks_mut(nx * ny).enumerate().for_each(slab);
        } else {
            r.par_chunks_mut(nx * ny).enumerate().for_each(slab);
        }
        r
    }

    /// One collective red–black Gauss–Seidel sweep at level l (black first with `reverse`).
    fn relax(
        &self,
        plan: &BlockPlan,
        hier: &[Option<Hierarchy>],
        l: usize,
        b: &[f64],
        x: &mut [f64],
        reverse: bool,
    ) {
        let [nx, ny, nz] = self.shapes[l];
        let n = nx * ny * nz;
        let ns = plan.n_slots;
        let nv = plan.state_of_var.len();
        let m = plan.m;
        let count = &self.count[l];
        let lu = &self.lu[l];
        let sigma = self.sigma;
        let levels: Vec<Option<&Level>> = (0..nv).map(|k| level(hier, k, l)).collect();
        let len = x.len();
        let colours = if reverse { [1, 0] } else { [0, 1] };
        for colour in colours {
            let ptr = SendPtr(x.as_mut_ptr());
            let slab = |(rhs, t): &mut (Vec<f64>, Vec<f64>), k: usize| {
                let p = &ptr;
                for j in 0..ny {
                    let start = (colour + j + k) % 2;
                    for i in (start..nx).step_by(2) {
                        let ix = i + nx * (j + ny * k);
                        // SAFETY: this task writes only voxels of `colour` in slab k (every
                        // species) and reads their neighbours, of the other colour, which no
                        // task writes in this pass.
                        let xs = unsafe { std::slice::from_raw_parts(p.0, len) };
                        for (kv, lv) in levels.iter().enumerate() {
                            rhs[kv] = b[kv * n + ix]
                                + lv.map_or(0.0, |lv| {
                                    neighbour_sum(lv, &xs[kv * n..(kv + 1) * n], [i, j, k], ix)
                                });
                        }
                        let block = &lu[ix * ns..(ix + 1) * ns];
                        for row in 0..m {
                            t[row] = rhs[plan.var_of_state[row]];
                        }
                        for &(r, ik, kk) in plan.forward {
                            t[r] -= block[ik] * t[kk];
                        }
                        for (r, row) in plan.backward {
                            let mut s = t[*r];
                            for &(ij, jj) in row {
                                s -= block[ij] * t[jj];
                            }
                            t[*r] = s / block[plan.diag[*r]];
                        }
                        for (kv, lv) in levels.iter().enumerate() {
                            let value = match plan.state_of_var[kv] {
                                Some(row) => t[row],
                                None => {
                                    rhs[kv] / (sigma * count[ix] + lv.map_or(0.0, |lv| lv.diag[ix]))
                                }
                            };
                            unsafe { *p.0.add(kv * n + ix) = value };
                        }
                    }
                }
            };
            let init = || (vec![0.0; nv], vec![0.0; m]);
            if n < PARALLEL_VOXELS {
                let mut scratch = init();
                (0..nz).for_each(|k| slab(&mut scratch, k));
            } else {
                (0..nz).into_par_iter().for_each_init(init, slab);
            }
        }
    }

    /// Adds to each closed species a uniform value so that the grid sums of the residual
    /// v − W·z vanish over the closed species: (σ·N − ΣJ_R)_cc·δ = Σ(v − W·z)_c, where
    /// the diffusion of a closed species sums to 0 over the grid.
    fn conserve(&self, plan: &BlockPlan, jac0: &[f64], v: &[f64], z: &mut [f64]) {
        let nv = plan.state_of_var.len();
        let n = self.count[0].len();
        let ns = plan.n_slots;
        let closed: Vec<usize> = (0..nv).filter(|&k| plan.closed[k]).collect();
        if closed.is_empty() {
            return;
        }
        // Σ_i (J_R·z)(i) per state row.
        let partial = |c: usize| {
            let mut s = vec![0.0; plan.m];
            for i in c * 4096..((c + 1) * 4096).min(n) {
                let block = &jac0[i * ns..(i + 1) * ns];
                for &(slot, row, col) in plan.matrix {
                    s[row] += block[slot] * z[plan.var_of_state[col] * n + i];
                }
            }
            s
        };
        let add = |a: Vec<f64>, b: Vec<f64>| a.iter().zip(&b).map(|(p, q)| p + q).collect();
        let chunks = n.div_ceil(4096);
        let jz: Vec<f64> = if n < PARALLEL_VOXELS {
            (0..chunks).map(partial).fold(vec![0.0; plan.m], add)
        } else {
            (0..chunks)
                .into_par_iter()
                .map(partial)
                .reduce(|| vec![0.0; plan.m], add)
        };
        let nc = closed.len();
        let mut a = vec![0.0; nc * nc];
        let mut rhs = vec![0.0; nc];
        for (p, &k) in closed.iter().enumerate() {
            let range = k * n..(k + 1) * n;
            let sum_v: f64 = v[range.clone()].iter().sum();
            let sum_z: f64 = z[range].iter().sum();
            rhs[p] = sum_v - self.sigma * sum_z;
            a[p * nc + p] = self.sigma * n as f64;
            if let Some(row) = plan.state_of_var[k] {
                rhs[p] += jz[row];
                for &(slot, rr, col) in plan.matrix {
                    if rr != row {
                        continue;
                    }
                    if let Some(q) = closed.iter().position(|&c| plan.var_of_state[col] == c) {
                        a[p * nc + q] -= self.jac_total[slot];
                    }
                }
            }
        }
        let Some(delta) = dense_solve(&mut a, &mut rhs, nc) else {
            return;
        };
        for (&k, d) in closed.iter().zip(&delta) {
            z[k * n..(k + 1) * n].iter_mut().for_each(|x| *x += d);
        }
    }
}

/// Solves a·x = b (n × n, row-major) by Gaussian elimination with partial pivoting;
/// `None` if singular.
fn dense_solve(a: &mut [f64], b: &mut [f64], n: usize) -> Option<Vec<f64>> {
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| a[i * n + c].abs().total_cmp(&a[j * n + c].abs()))?;
        if a[p * n + c] == 0.0 || !a[p * n + c].is_finite() {
            return None;
        }
        if p != c {
            for j in 0..n {
                a.swap(p * n + j, c * n + j);
            }
            b.swap(p, c);
        }
        for r in c + 1..n {
            let f = a[r * n + c] / a[c * n + c];
            for j in c..n {
                a[r * n + j] -= f * a[c * n + j];
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let mut s = b[r];
        for j in r + 1..n {
            s -= a[r * n + j] * x[j];
        }
        x[r] = s / a[r * n + r];
    }
    Some(x)
}
