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

use super::multigrid::{coarse_shapes, row_neighbour_sums, Hierarchy, Level, SendPtr};
use super::scratch::{Buf, Scratch};

/// Collective sweeps before and after the coarse correction.
const SWEEPS: usize = 2;

/// Sweeps on the coarsest level: one, a smoothing step rather than a solve. Its blocks
/// sum J_R over aggregates of up to thousands of voxels, and such a sum of stable
/// per-voxel Jacobians need not be stable (an eigenvalue above σ), so solving that level
/// accurately injects a wrong coarse correction. Measured on the untreated margin window
/// (24 × 24 × 64, acidic tumour, 12 h spin-up; coarsest level 1 × 1 × 2): 30 sweeps
/// stalled the Krylov solves at every step of 1–8 min (373–600 s wall); an exact LU
/// solve of that level held the step near 1 s (stopped after 27 min); 8 sweeps 125 s,
/// 4 sweeps 125 s, 2 sweeps 60 s, 1 or 0 sweeps 16 s (45 steps). On the default
/// (`fe_fenton_cdt_day`, 64³, 24 h) 1 and 30 sweeps run alike (416 s and 409 s).
const COARSEST_SWEEPS: usize = 1;

/// Voxels of one colour solved together by the smoother (lanes of a group).
const LW: usize = 16;

/// Lane groups per (row, colour) for rows of `nx` voxels.
fn chunks_per_row(nx: usize) -> usize {
    nx.div_ceil(2).div_ceil(LW)
}

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

/// How a level's coarse correction is solved: by one cycle of the next level (V) or two
/// (W). A W-cycle costs about 1.17× a V-cycle on a 3D grid (the coarse levels are 1/8 of
/// the fine one each); it pays at long steps, where the piecewise-constant coarse
/// correction of every level must be accurate (64³, steps of 700 s: 22 % fewer Krylov
/// iterations), and not at short ones (32³, steps up to 7 min: 2.2 against 2.1
/// iterations per solve, 19 % more time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cycle {
    V,
    W,
}

/// The levels' summed Jacobians and factored blocks for one σ.
pub struct BlockMultigrid {
    shapes: Vec<[usize; 3]>,
    /// Fine voxels per aggregate, per level.
    count: Vec<Vec<f64>>,
    /// J_R per voxel on compact slots, per level ≥ 1 (level 0 is the caller's).
    jac: Vec<Vec<f64>>,
    /// Factored blocks per level, in lane groups: one group per (z slab, y row, colour,
    /// chunk of [`LW`] voxels of that colour along x), each `n_slots` rows of [`LW`] lanes,
    /// so that the smoother solves [`LW`] voxels at once with contiguous loads; the
    /// diagonal slots hold the pivots' reciprocals. Stored in f32: the smoother is only
    /// a preconditioner (a fixed linear operator whether its factors are rounded or not,
    /// GMRES converges on the f64 W), and these loads are most of its memory traffic.
    lu: Vec<Vec<f32>>,
    /// Lane groups per (row, colour) of each level.
    chunks: Vec<usize>,
    /// J_R summed over the whole grid (compact slots), for the conservation correction.
    jac_total: Vec<f64>,
    /// J_R per voxel in the order of the plan's `matrix` entries, in f32, per level but the
    /// coarsest: what the residual reads (the coarse correction is part of the
    /// preconditioner, as the f32 factors are; a third of the f64 blocks' bytes).
    rjac: Vec<Vec<f32>>,
    /// The level-0 J_R entries of the closed species' rows, per voxel in the order of
    /// `closed_entries`, f64 (the conservation correction must be exact).
    closed_jac: Vec<f64>,
    /// (slot, row, start of the column's species in a vector) of each such entry.
    closed_entries: Vec<(usize, usize, usize)>,
    sigma: f64,
    /// Residuals and coarse vectors of the cycles.
    scratch: Scratch,
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
            lu: shapes
                .iter()
                .map(|&[nx, ny, nz]| vec![0.0f32; nz * ny * 2 * chunks_per_row(nx) * n_slots * LW])
                .collect(),
            chunks: shapes.iter().map(|s| chunks_per_row(s[0])).collect(),
            jac_total: vec![0.0; n_slots],
            rjac: vec![Vec::new(); shapes.len()],
            closed_jac: Vec::new(),
            closed_entries: Vec::new(),
            shapes,
            count,
            sigma: 0.0,
            scratch: Scratch::default(),
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
        let nnz = plan.matrix.len();
        for l in 0..=last {
            let jac: &[f64] = if l == 0 { jac0 } else { &self.jac[l - 1] };
            let rjac = &mut self.rjac[l];
            rjac.resize(self.count[l].len() * nnz, 0.0);
            rjac.par_chunks_mut(nnz * 1024)
                .zip(jac.par_chunks(ns * 1024))
                .for_each(|(r, j)| {
                    for (r, j) in r.chunks_mut(nnz).zip(j.chunks(ns)) {
                        for (e, &(slot, _, _)) in plan.matrix.iter().enumerate() {
                            r[e] = j[slot] as f32;
                        }
                    }
                });
        }
        self.set_closed_rows(plan, jac0);
        let mut ok = true;
        for l in 0..self.shapes.len() {
            let jac: &[f64] = if l == 0 { jac0 } else { &self.jac[l - 1] };
            let count = &self.count[l];
            let [nx, ny, nz] = self.shapes[l];
            let cpr = self.chunks[l];
            let diags: Vec<Option<&[f64]>> = plan
                .var_of_state
                .iter()
                .map(|&k| level(hier, k, l).map(|lv| lv.diag.as_slice()))
                .collect();
            // One z slab of groups: each voxel's block factored in `b`, then spread over
            // the lanes; unused lanes hold the identity.
            let factor_slab = |(k, lu): (usize, &mut [f32])| {
                let mut ok = true;
                let mut b = vec![0.0; ns];
                lu.fill(0.0);
                for g in lu.chunks_mut(ns * LW) {
                    for &d in plan.diag {
                        g[d * LW..(d + 1) * LW].fill(1.0);
                    }
                }
                for j in 0..ny {
                    for i in 0..nx {
                        let ix = i + nx * (j + ny * k);
                        let jb = &jac[ix * ns..(ix + 1) * ns];
                        b.fill(0.0);
                        for &(slot, _, _) in plan.matrix {
                            b[slot] = -jb[slot];
                        }
                        for (row, &d) in plan.diag.iter().enumerate() {
                            b[d] += sigma * count[ix] + diags[row].map_or(0.0, |dg| dg[ix]);
                        }
                        ok &= factor_in_place(plan.factor, &mut b);
                        let colour = (i + j + k) % 2;
                        let (chunk, lane) = ((i / 2) / LW, (i / 2) % LW);
                        let g = ((j * 2 + colour) * cpr + chunk) * ns * LW;
                        for (slot, &v) in b.iter().enumerate() {
                            lu[g + slot * LW + lane] = v as f32;
                        }
                        // The smoother multiplies by the pivots' reciprocals.
                        for &d in plan.diag {
                            lu[g + d * LW + lane] = (1.0 / b[d]) as f32;
                        }
                    }
                }
                ok
            };
            let slab_len = ny * 2 * cpr * ns * LW;
            ok &= if count.len() < PARALLEL_VOXELS {
                self.lu[l]
                    .chunks_mut(slab_len)
                    .enumerate()
                    .map(factor_slab)
                    .filter(|ok| !ok)
                    .count()
                    == 0
            } else {
                self.lu[l]
                    .par_chunks_mut(slab_len)
                    .enumerate()
                    .map(factor_slab)
                    .reduce(|| true, |a, b| a && b)
            };
            debug_assert_eq!(self.lu[l].len(), nz * slab_len);
        }
        ok
    }

    /// z ≈ W⁻¹·v by one cycle from 0, then the conservation correction. `v` and `z` are
    /// species-major over the integrated species (J_R as given to the last [`Self::factor`]).
    pub fn solve(
        &self,
        plan: &BlockPlan,
        hier: &[Option<Hierarchy>],
        cycle: Cycle,
        v: &[f64],
        z: &mut [f64],
    ) {
        z.fill(0.0);
        let cycles = match cycle {
            Cycle::V => 1,
            Cycle::W => 2,
        };
        self.cycle(plan, hier, cycles, 0, v, z);
        self.conserve(plan, v, z);
    }

    fn cycle(
        &self,
        plan: &BlockPlan,
        hier: &[Option<Hierarchy>],
        cycles: usize,
        l: usize,
        b: &[f64],
        x: &mut [f64],
    ) {
        if l + 1 == self.shapes.len() {
            for s in 0..COARSEST_SWEEPS {
                self.relax(plan, hier, l, b, x, s % 2 == 1);
            }
            return;
        }
        for _ in 0..SWEEPS {
            self.relax(plan, hier, l, b, x, false);
        }
        let r = self.residual(plan, hier, &self.rjac[l], l, b, x);
        let nv = plan.state_of_var.len();
        let [nx, ny, nz] = self.shapes[l];
        let [cx, cy, _] = self.shapes[l + 1];
        let (n, nc) = (nx * ny * nz, self.count[l + 1].len());
        let mut rc = self.scratch.zeroed(nv * nc);
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
        let mut xc = self.scratch.zeroed(nv * nc);
        for _ in 0..cycles {
            self.cycle(plan, hier, cycles, l + 1, &rc, &mut xc);
        }
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

    /// r = b − W_l·x at level l, x row by x row (each block of J_R read once).
    fn residual(
        &self,
        plan: &BlockPlan,
        hier: &[Option<Hierarchy>],
        jac: &[f32],
        l: usize,
        b: &[f64],
        x: &[f64],
    ) -> Buf {
        let [nx, ny, nz] = self.shapes[l];
        let n = nx * ny * nz;
        let nv = plan.state_of_var.len();
        let levels: Vec<Option<&Level>> = (0..nv).map(|k| level(hier, k, l)).collect();
        let mut r = self.scratch.uninit(nv * n);
        let ptr = SendPtr(r.as_mut_ptr());
        let avx2 = has_avx2();
        let ctx = SlabContext {
            plan,
            levels: &levels,
            shape: self.shapes[l],
            count: &self.count[l],
            sigma: self.sigma,
            b,
        };
        let slab = |w: &mut Vec<f64>, k: usize| {
            let p = &ptr;
            // SAFETY: slab k's task alone writes the voxels of slab k.
            let rs = unsafe { std::slice::from_raw_parts_mut(p.0, nv * n) };
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: the CPU supports AVX2 (`has_avx2`).
                return unsafe { residual_slab_avx2(&ctx, jac, x, rs, k, w) };
            }
            residual_slab(&ctx, jac, x, rs, k, w)
        };
        let init = || vec![0.0; nv * nx];
        if n < PARALLEL_VOXELS {
            let mut w = init();
            (0..nz).for_each(|k| slab(&mut w, k));
        } else {
            (0..nz).into_par_iter().for_each_init(init, slab);
        }
        r
    }

    /// One collective red–black Gauss–Seidel sweep at level l (black first with `reverse`):
    /// the voxels of one colour along an x row are solved [`LW`] at a time, the sparse LU
    /// substitutions running across the lanes.
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
        let nv = plan.state_of_var.len();
        let levels: Vec<Option<&Level>> = (0..nv).map(|k| level(hier, k, l)).collect();
        let ctx = SlabContext {
            plan,
            levels: &levels,
            shape: self.shapes[l],
            count: &self.count[l],
            sigma: self.sigma,
            b,
        };
        let (lu, cpr) = (&self.lu[l], self.chunks[l]);
        let len = x.len();
        let avx2 = has_avx2();
        let colours = if reverse { [1, 0] } else { [0, 1] };
        for colour in colours {
            let ptr = SendPtr(x.as_mut_ptr());
            let slab = |scratch: &mut RelaxScratch, k: usize| {
                // SAFETY: this task writes only voxels of `colour` in slab k (every
                // species) and reads their neighbours, of the other colour, which no task
                // writes in this pass.
                let p = &ptr;
                let xs = unsafe { std::slice::from_raw_parts_mut(p.0, len) };
                #[cfg(target_arch = "x86_64")]
                if avx2 {
                    // SAFETY: the CPU supports AVX2 (`has_avx2`).
                    return unsafe { relax_slab_avx2(&ctx, lu, cpr, xs, k, colour, scratch) };
                }
                relax_slab(&ctx, lu, cpr, xs, k, colour, scratch)
            };
            let init = || RelaxScratch {
                sums: vec![0.0; nv * nx],
                rhs: vec![0.0; nv * LW],
                t: vec![0.0; plan.m * LW],
            };
            if n < PARALLEL_VOXELS {
                let mut scratch = init();
                (0..nz).for_each(|k| slab(&mut scratch, k));
            } else {
                (0..nz).into_par_iter().for_each_init(init, slab);
            }
        }
    }

    /// Copies the level-0 J_R entries of the closed species' rows (what [`Self::conserve`]
    /// reads in every cycle) into `closed_jac`.
    fn set_closed_rows(&mut self, plan: &BlockPlan, jac0: &[f64]) {
        let n = self.count[0].len();
        let ns = plan.n_slots;
        let closed_rows: Vec<usize> = (0..plan.state_of_var.len())
            .filter(|&k| plan.closed[k])
            .filter_map(|k| plan.state_of_var[k])
            .collect();
        self.closed_entries = plan
            .matrix
            .iter()
            .filter(|e| closed_rows.contains(&e.1))
            .map(|&(slot, row, col)| (slot, row, plan.var_of_state[col] * n))
            .collect();
        let entries = &self.closed_entries;
        let ne = entries.len();
        self.closed_jac.resize(n * ne, 0.0);
        if ne == 0 {
            return;
        }
        self.closed_jac
            .par_chunks_mut(ne * 1024)
            .zip(jac0.par_chunks(ns * 1024))
            .for_each(|(c, j)| {
                for (c, j) in c.chunks_mut(ne).zip(j.chunks(ns)) {
                    for (o, &(slot, _, _)) in c.iter_mut().zip(entries) {
                        *o = j[slot];
                    }
                }
            });
    }

    /// Adds to each closed species a uniform value so that the grid sums of the residual
    /// v − W·z vanish over the closed species: (σ·N − ΣJ_R)_cc·δ = Σ(v − W·z)_c, where
    /// the diffusion of a closed species sums to 0 over the grid.
    fn conserve(&self, plan: &BlockPlan, v: &[f64], z: &mut [f64]) {
        let nv = plan.state_of_var.len();
        let n = self.count[0].len();
        let closed: Vec<usize> = (0..nv).filter(|&k| plan.closed[k]).collect();
        if closed.is_empty() {
            return;
        }
        // Σ_i (J_R·z)(i) over the rows of closed species (the only rows used below).
        let entries = &self.closed_entries;
        let ne = entries.len();
        let partial = |c: usize| {
            let mut s = vec![0.0; plan.m];
            for i in c * 4096..((c + 1) * 4096).min(n) {
                let block = &self.closed_jac[i * ne..(i + 1) * ne];
                for (&a, &(_, row, col_start)) in block.iter().zip(entries) {
                    s[row] += a * z[col_start + i];
                }
            }
            s
        };
        let add = |a: Vec<f64>, b: Vec<f64>| a.iter().zip(&b).map(|(p, q)| p + q).collect();
        let chunks = n.div_ceil(4096);
        let jz: Vec<f64> = if n < PARALLEL_VOXELS {
            (0..chunks).map(partial).fold(vec![0.0; plan.m], add)
        } else {
            // Collected, then added in order: the same sums for any work stealing.
            let parts: Vec<Vec<f64>> = (0..chunks).into_par_iter().map(partial).collect();
            parts.into_iter().fold(vec![0.0; plan.m], add)
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

/// What a slab of the smoother or the residual reads at one level.
struct SlabContext<'a> {
    plan: &'a BlockPlan<'a>,
    levels: &'a [Option<&'a Level>],
    shape: [usize; 3],
    count: &'a [f64],
    sigma: f64,
    b: &'a [f64],
}

/// Per-task scratch of the smoother: neighbour sums of one x row per species, and the
/// right-hand sides and unknowns of one lane group.
struct RelaxScratch {
    sums: Vec<f64>,
    rhs: Vec<f64>,
    t: Vec<f64>,
}

/// Whether to run the AVX2 builds of the slab functions (four f64 per instruction instead
/// of the baseline's two). The same IEEE operations either way (`target_feature` neither
/// contracts to FMA nor reassociates), so the result does not depend on the version.
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::arch::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn residual_slab_avx2(
    c: &SlabContext,
    jac: &[f32],
    x: &[f64],
    r: &mut [f64],
    k: usize,
    w: &mut [f64],
) {
    residual_slab(c, jac, x, r, k, w)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn relax_slab_avx2(
    c: &SlabContext,
    lu: &[f32],
    cpr: usize,
    x: &mut [f64],
    k: usize,
    colour: usize,
    s: &mut RelaxScratch,
) {
    relax_slab(c, lu, cpr, x, k, colour, s)
}

/// r = b − W·x on the voxels of slab k (`w`: nv rows of nx scratch).
#[inline(always)]
fn residual_slab(c: &SlabContext, jac: &[f32], x: &[f64], r: &mut [f64], k: usize, w: &mut [f64]) {
    let [nx, ny, nz] = c.shape;
    let n = nx * ny * nz;
    let plan = c.plan;
    let nnz = plan.matrix.len();
    for j in 0..ny {
        let base = nx * (j + ny * k);
        for (kv, lv) in c.levels.iter().enumerate() {
            let wr = &mut w[kv * nx..(kv + 1) * nx];
            let xs = &x[kv * n..(kv + 1) * n];
            let xr = &xs[base..base + nx];
            let cr = &c.count[base..base + nx];
            match lv {
                Some(lv) => {
                    row_neighbour_sums(lv, xs, j, k, wr);
                    let dr = &lv.diag[base..base + nx];
                    for i in 0..nx {
                        wr[i] = (c.sigma * cr[i] + dr[i]) * xr[i] - wr[i];
                    }
                }
                None => {
                    for i in 0..nx {
                        wr[i] = c.sigma * cr[i] * xr[i];
                    }
                }
            }
        }
        for i in 0..nx {
            let ix = base + i;
            let block = &jac[ix * nnz..(ix + 1) * nnz];
            for (&a, &(_, row, col)) in block.iter().zip(plan.matrix) {
                w[plan.var_of_state[row] * nx + i] -= a as f64 * x[plan.var_of_state[col] * n + ix];
            }
        }
        for kv in 0..c.levels.len() {
            let (rr, br) = (
                &mut r[kv * n + base..kv * n + base + nx],
                &c.b[kv * n + base..kv * n + base + nx],
            );
            for ((o, &bb), &ww) in rr.iter_mut().zip(br).zip(&w[kv * nx..(kv + 1) * nx]) {
                *o = bb - ww;
            }
        }
    }
}

/// One colour's update of slab k: per x row, the neighbour sums of every species, then
/// the voxels of `colour` in lane groups of [`LW`].
#[inline(always)]
fn relax_slab(
    c: &SlabContext,
    lu: &[f32],
    cpr: usize,
    x: &mut [f64],
    k: usize,
    colour: usize,
    s: &mut RelaxScratch,
) {
    let [nx, ny, nz] = c.shape;
    let n = nx * ny * nz;
    let plan = c.plan;
    let ns = plan.n_slots;
    for j in 0..ny {
        let start = (colour + j + k) % 2;
        let in_row = (nx - start).div_ceil(2);
        let base = nx * (j + ny * k);
        for (kv, lv) in c.levels.iter().enumerate() {
            let sums = &mut s.sums[kv * nx..(kv + 1) * nx];
            match lv {
                Some(lv) => row_neighbour_sums(lv, &x[kv * n..(kv + 1) * n], j, k, sums),
                None => sums.fill(0.0),
            }
        }
        for chunk in 0..cpr {
            let q0 = chunk * LW;
            let lanes = in_row.saturating_sub(q0).min(LW);
            if lanes == 0 {
                continue;
            }
            let i0 = start + 2 * q0;
            for kv in 0..c.levels.len() {
                let (bk, sk) = (
                    &c.b[kv * n + base..kv * n + base + nx],
                    &s.sums[kv * nx..(kv + 1) * nx],
                );
                for (q, r) in s.rhs[kv * LW..kv * LW + lanes].iter_mut().enumerate() {
                    let i = i0 + 2 * q;
                    *r = bk[i] + sk[i];
                }
            }
            let g = &lu[((k * ny + j) * 2 * cpr + colour * cpr + chunk) * ns * LW..][..ns * LW];
            for row in 0..plan.m {
                let v = plan.var_of_state[row];
                s.t[row * LW..(row + 1) * LW].copy_from_slice(&s.rhs[v * LW..(v + 1) * LW]);
            }
            substitute_impl(plan, g, &mut s.t);
            for (kv, lv) in c.levels.iter().enumerate() {
                for q in 0..lanes {
                    let i = i0 + 2 * q;
                    let value = match plan.state_of_var[kv] {
                        Some(row) => s.t[row * LW + q],
                        None => {
                            s.rhs[kv * LW + q]
                                / (c.sigma * c.count[base + i]
                                    + lv.map_or(0.0, |lv| lv.diag[base + i]))
                        }
                    };
                    x[kv * n + base + i] = value;
                }
            }
        }
    }
}

#[inline(always)]
fn substitute_impl(plan: &BlockPlan, g: &[f32], t: &mut [f64]) {
    for &(r, ik, kk) in plan.forward {
        // kk < r: the row read lies before the row written.
        let (lo, hi) = t.split_at_mut(r * LW);
        lanes_sub(
            &mut hi[..LW],
            &g[ik * LW..(ik + 1) * LW],
            &lo[kk * LW..(kk + 1) * LW],
        );
    }
    for (r, row) in plan.backward {
        let (lo, hi) = t.split_at_mut((r + 1) * LW);
        let tr = &mut lo[r * LW..];
        for &(ij, jj) in row {
            // jj > r: the row read lies after the row written.
            let o = (jj - r - 1) * LW;
            lanes_sub(tr, &g[ij * LW..(ij + 1) * LW], &hi[o..o + LW]);
        }
        let d = &g[plan.diag[*r] * LW..(plan.diag[*r] + 1) * LW];
        for (a, &dd) in tr.iter_mut().zip(d) {
            *a *= dd as f64;
        }
    }
}

/// t −= a·u across the lanes of a group (the factor widened to f64).
#[inline(always)]
fn lanes_sub(t: &mut [f64], a: &[f32], u: &[f64]) {
    let (t, a, u) = (&mut t[..LW], &a[..LW], &u[..LW]);
    for q in 0..LW {
        t[q] -= a[q] as f64 * u[q];
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
