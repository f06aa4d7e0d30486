//! Sparse LU of the Rosenbrock matrix M = I/(γh) − J without pivoting, planned once from
//! the Jacobian's structure (as KPP does): the factorisation and the triangular solves
//! become fixed lists of operations on the nonzeros (fill-in included). The WGSL generator
//! unrolls them into straight-line code with constant indices, which the driver keeps in
//! registers; the CPU twin runs the same lists.
//!
//! Without pivoting a pivot can vanish; the integrator then rejects the step and halves h,
//! which makes the diagonal 1/(γh) dominate, so a small enough step always factors.

use super::graph::Graph;
use super::tape::{lanes, Row};
use super::Network;

/// The operation lists of one network's matrix (row-major n × n indices).
#[derive(Clone, Debug)]
pub struct LuPlan {
    pub n: usize,
    /// Entries of M that can be nonzero before factorising: the diagonal and J's nonzeros.
    pub matrix: Vec<usize>,
    /// Factorisation, in order: for pivot k, `Scale(i·n + k, k·n + k)` turns M_ik into
    /// L_ik = M_ik / M_kk; `Update(i·n + j, i·n + k, k·n + j)` does M_ij −= L_ik·U_kj.
    pub factor: Vec<FactorOp>,
    /// Forward substitution (unit L): b_i −= L_ik·b_k, as (i, i·n + k, k).
    pub forward: Vec<(usize, usize, usize)>,
    /// Back substitution per row, last row first: (i, [(i·n + j, j)]) then b_i /= U_ii.
    pub backward: Vec<(usize, Vec<(usize, usize)>)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FactorOp {
    /// The pivot M_kk (index k·n + k) must be nonzero and finite.
    Pivot(usize),
    Scale(usize, usize),
    Update(usize, usize, usize),
}

impl LuPlan {
    /// The entries a factored block keeps: the pattern of J (with the diagonal) and the
    /// LU's fill-in, as indices of the dense row-major matrix, increasing.
    pub fn slots(&self) -> Vec<usize> {
        let mut used = vec![false; self.n * self.n];
        for &ix in &self.matrix {
            used[ix] = true;
        }
        for i in 0..self.n {
            used[i * self.n + i] = true;
        }
        for op in &self.factor {
            if let FactorOp::Update(ij, _, _) = *op {
                used[ij] = true;
            }
        }
        (0..used.len()).filter(|&ix| used[ix]).collect()
    }

    pub fn new(net: &Network) -> LuPlan {
        Self::from_jacobian(&net.graph, &net.jac, net.state.len())
    }

    pub fn from_jacobian(g: &Graph, jac: &[super::graph::Id], n: usize) -> LuPlan {
        let mut nz = vec![false; n * n];
        for i in 0..n {
            nz[i * n + i] = true;
            for k in 0..n {
                if g.constant(jac[i * n + k]) != Some(0.0) {
                    nz[i * n + k] = true;
                }
            }
        }
        let matrix: Vec<usize> = (0..n * n).filter(|&x| nz[x]).collect();
        let mut factor = Vec::new();
        for k in 0..n {
            factor.push(FactorOp::Pivot(k * n + k));
            for i in k + 1..n {
                if !nz[i * n + k] {
                    continue;
                }
                factor.push(FactorOp::Scale(i * n + k, k * n + k));
                for j in k + 1..n {
                    if nz[k * n + j] {
                        nz[i * n + j] = true; // fill-in
                        factor.push(FactorOp::Update(i * n + j, i * n + k, k * n + j));
                    }
                }
            }
        }
        let mut forward = Vec::new();
        for i in 0..n {
            for k in 0..i {
                if nz[i * n + k] {
                    forward.push((i, i * n + k, k));
                }
            }
        }
        let backward = (0..n)
            .rev()
            .map(|i| {
                let row = (i + 1..n)
                    .filter(|&j| nz[i * n + j])
                    .map(|j| (i * n + j, j))
                    .collect();
                (i, row)
            })
            .collect();
        LuPlan {
            n,
            matrix,
            factor,
            forward,
            backward,
        }
    }

    /// Factorises `m` in place; false if a pivot is zero or not finite.
    pub fn factor(&self, m: &mut [f64]) -> bool {
        factor_in_place(&self.factor, m)
    }

    /// Solves L·U·x = b in place of `b`.
    pub fn solve(&self, m: &[f64], b: &mut [f64]) {
        for &(i, ik, k) in &self.forward {
            b[i] -= m[ik] * b[k];
        }
        for (i, row) in &self.backward {
            let mut s = b[*i];
            for &(ij, j) in row {
                s -= m[ij] * b[j];
            }
            b[*i] = s / m[i * self.n + i];
        }
    }

    /// r = b − A·x over the entries of the unfactored matrix `a`.
    pub fn residual(&self, a: &[f64], x: &[f64], b: &[f64], r: &mut [f64]) {
        r.copy_from_slice(b);
        for &ix in &self.matrix {
            let (i, k) = (ix / self.n, ix % self.n);
            r[i] -= a[ix] * x[k];
        }
    }
}

/// Runs the factorisation `ops` on `m` in place (indices as the ops give them: a plan's
/// own, or remapped onto compact slots); false if a pivot is zero or not finite.
pub fn factor_in_place(ops: &[FactorOp], m: &mut [f64]) -> bool {
    for op in ops {
        match *op {
            FactorOp::Pivot(kk) => {
                if m[kk] == 0.0 || !m[kk].is_finite() {
                    return false;
                }
            }
            FactorOp::Scale(ik, kk) => m[ik] /= m[kk],
            FactorOp::Update(ij, ik, kj) => m[ij] -= m[ik] * m[kj],
        }
    }
    true
}

/// A [`LuPlan`] renumbered for batched evaluation of `L` matrices at once (one per voxel,
/// see [`super::lanes`]): the entries of M that the factorisation reads or writes are
/// numbered as compact slots — the unfactored matrix's entries first, in
/// [`LuPlan::matrix`] order, then the fill-in — and every row, column and slot index is
/// precomputed, so the loops do no `ix / n`, `ix % n` and touch only the nonzeros.
///
/// The lane versions perform, per lane, the same f64 operations in the same order as
/// [`LuPlan::factor`], [`LuPlan::solve`] and [`LuPlan::residual`], so their results are
/// bit-identical to the scalar plan's. The index lists are private and checked when the
/// plan is built, so the loops index without bounds checks.
#[derive(Clone, Debug)]
pub struct LanePlan {
    n: usize,
    /// Slots 0..n_matrix are the entries of M before factorising (`LuPlan::matrix`).
    n_matrix: usize,
    /// Slots in all: matrix entries and fill-in (which must be 0 before factorising).
    nnz: usize,
    /// (row i, column k) of each matrix slot.
    entries: Vec<(u32, u32)>,
    /// Matrix slots of each row: `entries[rows[i]..rows[i + 1]]` (row-major order).
    rows: Vec<u32>,
    /// Slot of each diagonal entry M_ii.
    diag: Vec<u32>,
    /// The factorisation in `LuPlan::factor` order, one entry per `Scale(ik, kk)` with the
    /// updates that follow it (which all use that L_ik): (slot ik, slot kk, range in
    /// `updates`), that is M_ik /= M_kk, then M_ij −= M_ik·M_kj for each (ij, kj).
    factor: Vec<(u32, u32, u32, u32)>,
    /// (slot ij, slot kj) of every update.
    updates: Vec<(u32, u32)>,
    /// Forward substitution per row with terms: (i, range in `forward_terms`).
    forward: Vec<(u32, u32, u32)>,
    /// (slot of L_ik, k) of every forward term, row after row, in `LuPlan::forward` order.
    forward_terms: Vec<(u32, u32)>,
    /// `LuPlan::backward`: (i, range in `backward_terms`), last row first.
    backward: Vec<(u32, u32, u32)>,
    /// (slot of U_ij, j) of every back-substitution term, row after row.
    backward_terms: Vec<(u32, u32)>,
}

impl LanePlan {
    pub fn new(lu: &LuPlan) -> LanePlan {
        let n = lu.n;
        let mut slot = vec![u32::MAX; n * n];
        let mut entries = Vec::with_capacity(lu.matrix.len());
        let mut rows = vec![0u32; n + 1];
        for (s, &ix) in lu.matrix.iter().enumerate() {
            slot[ix] = s as u32;
            entries.push(((ix / n) as u32, (ix % n) as u32));
            rows[ix / n + 1] = s as u32 + 1;
        }
        assert!(
            lu.matrix.windows(2).all(|w| w[0] < w[1]),
            "row-major matrix"
        );
        for i in 0..n {
            rows[i + 1] = rows[i + 1].max(rows[i]);
        }
        let mut nnz = lu.matrix.len();
        let mut at = |ix: usize| -> u32 {
            if slot[ix] == u32::MAX {
                slot[ix] = nnz as u32; // fill-in
                nnz += 1;
            }
            slot[ix]
        };
        // A pivot's value is final when it is checked (later steps only change entries
        // below and right of it), so `factor_lanes` checks all pivots at the end.
        let mut factor: Vec<(u32, u32, u32, u32)> = Vec::new();
        let mut updates = Vec::new();
        for op in &lu.factor {
            match *op {
                FactorOp::Pivot(kk) => {
                    at(kk);
                }
                FactorOp::Scale(ik, kk) => {
                    let start = updates.len() as u32;
                    factor.push((at(ik), at(kk), start, start));
                }
                FactorOp::Update(ij, ik, kj) => {
                    let scale = factor.last_mut().expect("an update follows its scaling");
                    assert_eq!(scale.0, at(ik), "an update uses the last scaled entry");
                    updates.push((at(ij), at(kj)));
                    scale.3 = updates.len() as u32;
                }
            }
        }
        let mut forward = Vec::new();
        let mut forward_terms = Vec::new();
        for &(i, ik, k) in &lu.forward {
            if forward.last().is_none_or(|&(r, _, _)| r != i as u32) {
                let start = forward_terms.len() as u32;
                forward.push((i as u32, start, start));
            }
            forward_terms.push((at(ik), k as u32));
            forward.last_mut().expect("a row").2 = forward_terms.len() as u32;
        }
        let mut backward = Vec::with_capacity(n);
        let mut backward_terms = Vec::new();
        for (i, row) in &lu.backward {
            let start = backward_terms.len() as u32;
            for &(ij, j) in row {
                backward_terms.push((at(ij), j as u32));
            }
            backward.push((*i as u32, start, backward_terms.len() as u32));
        }
        let diag: Vec<u32> = (0..n).map(|i| at(i * n + i)).collect();
        // The loops index unchecked: every slot must be < nnz, every row/column < n.
        let (s_ok, r_ok) = (|x: u32| (x as usize) < nnz, |x: u32| (x as usize) < n);
        assert!(diag.iter().all(|&x| s_ok(x)));
        assert!(factor.iter().all(|&(ik, kk, _, _)| s_ok(ik) && s_ok(kk)));
        assert!(updates.iter().all(|&(ij, kj)| s_ok(ij) && s_ok(kj)));
        for terms in [&forward_terms, &backward_terms] {
            assert!(terms.iter().all(|&(s, k)| s_ok(s) && r_ok(k)));
        }
        assert!(forward.iter().chain(&backward).all(|&(i, _, _)| r_ok(i)));
        assert!(entries.iter().all(|&(i, k)| r_ok(i) && r_ok(k)));
        LanePlan {
            n,
            n_matrix: lu.matrix.len(),
            nnz,
            entries,
            rows,
            diag,
            factor,
            updates,
            forward,
            forward_terms,
            backward,
            backward_terms,
        }
    }

    /// State species (rows of M).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Slots of the unfactored matrix (0..n_matrix), in [`LuPlan::matrix`] order.
    pub fn n_matrix(&self) -> usize {
        self.n_matrix
    }

    /// Slots in all (matrix entries and fill-in): the length of a lanes matrix.
    pub fn nnz(&self) -> usize {
        self.nnz
    }

    /// Operations of one factorisation and one solve: (scalings, updates, solve terms).
    pub fn n_operations(&self) -> (usize, usize, usize) {
        (
            self.factor.len(),
            self.updates.len(),
            self.forward_terms.len() + self.backward_terms.len() + self.n,
        )
    }

    /// (row, column) of each matrix slot.
    pub fn entries(&self) -> &[(u32, u32)] {
        &self.entries
    }

    /// Factorises the `L` matrices in `m` (slots × lanes; the fill-in slots must be 0) in
    /// place. Lane l is false if one of its pivots is zero or not finite, where
    /// [`LuPlan::factor`] stops; its slots are then meaningless (the other lanes go on).
    #[inline(always)]
    pub fn factor_lanes<const L: usize>(&self, m: &mut [Row<L>]) -> [bool; L] {
        let m = &mut m[..self.nnz];
        for &(ik, kk, start, end) in &self.factor {
            // SAFETY (both blocks): `new` checked every slot against nnz = m.len().
            let a = unsafe {
                let (x, p) = (*m.get_unchecked(ik as usize), *m.get_unchecked(kk as usize));
                let a = Row(lanes(|l| x[l] / p[l]));
                *m.get_unchecked_mut(ik as usize) = a;
                a
            };
            for &(ij, kj) in &self.updates[start as usize..end as usize] {
                unsafe {
                    let (x, b) = (*m.get_unchecked(ij as usize), *m.get_unchecked(kj as usize));
                    *m.get_unchecked_mut(ij as usize) = Row(lanes(|l| x[l] - a[l] * b[l]));
                }
            }
        }
        let mut ok = [true; L];
        for &kk in &self.diag {
            // SAFETY: as above.
            let p = unsafe { *m.get_unchecked(kk as usize) };
            for l in 0..L {
                ok[l] &= p[l] != 0.0 && p[l].is_finite();
            }
        }
        ok
    }

    /// Solves L·U·x = b in place of `b` (n × lanes) for the factors in `m` (slots × lanes).
    #[inline(always)]
    pub fn solve_lanes<const L: usize>(&self, m: &[Row<L>], b: &mut [Row<L>]) {
        let (m, b) = (&m[..self.nnz], &mut b[..self.n]);
        // SAFETY (all blocks below): `new` checked every slot against nnz = m.len() and
        // every row and column against n = b.len().
        for &(i, start, end) in &self.forward {
            let mut s = unsafe { *b.get_unchecked(i as usize) };
            for &(ik, k) in &self.forward_terms[start as usize..end as usize] {
                let (a, bk) =
                    unsafe { (*m.get_unchecked(ik as usize), *b.get_unchecked(k as usize)) };
                for l in 0..L {
                    s[l] -= a[l] * bk[l];
                }
            }
            unsafe { *b.get_unchecked_mut(i as usize) = s };
        }
        for &(i, start, end) in &self.backward {
            let mut s = unsafe { *b.get_unchecked(i as usize) };
            for &(ij, j) in &self.backward_terms[start as usize..end as usize] {
                let (a, bj) =
                    unsafe { (*m.get_unchecked(ij as usize), *b.get_unchecked(j as usize)) };
                for l in 0..L {
                    s[l] -= a[l] * bj[l];
                }
            }
            let d = unsafe { *m.get_unchecked(*self.diag.get_unchecked(i as usize) as usize) };
            unsafe { *b.get_unchecked_mut(i as usize) = Row(lanes(|l| s[l] / d[l])) };
        }
    }

    /// r = b − A·x over the matrix slots of the unfactored `a` (slots × lanes).
    #[inline(always)]
    pub fn residual_lanes<const L: usize>(
        &self,
        a: &[Row<L>],
        x: &[Row<L>],
        b: &[Row<L>],
        r: &mut [Row<L>],
    ) {
        let (a, x, b, r) = (
            &a[..self.n_matrix],
            &x[..self.n],
            &b[..self.n],
            &mut r[..self.n],
        );
        for i in 0..self.n {
            let mut s = b[i];
            let (start, end) = (self.rows[i] as usize, self.rows[i + 1] as usize);
            for (&(_, k), ai) in self.entries[start..end].iter().zip(&a[start..end]) {
                // SAFETY: `new` checked every column against n = x.len().
                let xk = unsafe { *x.get_unchecked(k as usize) };
                for l in 0..L {
                    s[l] -= ai[l] * xk[l];
                }
            }
            r[i] = s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_lu_solves_with_fill_in() {
        // Arrow matrix: fill-in appears when the dense first row/column are eliminated.
        let n = 4;
        let mut g = Graph::default();
        let one = g.num(1.0);
        let zero = g.num(0.0);
        let mut jac = vec![zero; n * n];
        for k in 0..n {
            jac[k] = one; // row 0
            jac[k * n] = one; // column 0
        }
        let plan = LuPlan::from_jacobian(&g, &jac, n);
        assert!(plan
            .factor
            .iter()
            .any(|op| matches!(op, FactorOp::Update(..))));
        let a = vec![
            4.0, 1.0, 2.0, 1.0, //
            1.0, 3.0, 0.0, 0.0, //
            2.0, 0.0, 5.0, 0.0, //
            1.0, 0.0, 0.0, 2.0,
        ];
        let mut m = a.clone();
        assert!(plan.factor(&mut m));
        let x = [1.0, -1.0, 0.5, 2.0];
        let mut b: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|k| a[i * n + k] * x[k]).sum())
            .collect();
        let b0 = b.clone();
        plan.solve(&m, &mut b);
        for i in 0..n {
            assert!((b[i] - x[i]).abs() < 1e-14, "{b:?}");
        }
        let mut r = vec![0.0; n];
        plan.residual(&a, &b, &b0, &mut r);
        assert!(r.iter().all(|v| v.abs() < 1e-13));

        // The lane plan: each lane's factors, solution and residual are the scalar plan's,
        // bit for bit (a different matrix and right-hand side per lane, one singular).
        const L: usize = 4;
        let lanes_plan = LanePlan::new(&plan);
        // (Zero outside the pattern, as the integrator's matrices are.)
        let scaled = |l: usize| -> Vec<f64> {
            let mut m = vec![0.0; n * n];
            for &ix in &plan.matrix {
                m[ix] = a[ix] * (1.0 + 0.37 * l as f64) + ix as f64 * 1e-3 * l as f64;
            }
            m
        };
        let mut mats: Vec<Vec<f64>> = (0..L).map(scaled).collect();
        mats[3][0] = 0.0; // row 0 of the arrow: pivot 0 vanishes
        mats[3][1] = 0.0;
        mats[3][2] = 0.0;
        mats[3][3] = 0.0;
        let slots = lanes_plan.nnz();
        let mut ma = vec![Row([0.0; L]); slots];
        for (s, &ix) in plan.matrix.iter().enumerate() {
            ma[s] = Row(lanes(|l| mats[l][ix]));
        }
        let mut m = ma.clone();
        let ok = lanes_plan.factor_lanes(&mut m);
        let rhs: Vec<Row<L>> = (0..n)
            .map(|i| Row(lanes(|l| (i + l) as f64 - 1.5)))
            .collect();
        let mut x = rhs.clone();
        lanes_plan.solve_lanes(&m, &mut x);
        let mut res = vec![Row([0.0; L]); n];
        lanes_plan.residual_lanes(&ma, &x, &rhs, &mut res);
        for l in 0..L {
            let mut ms = mats[l].clone();
            assert_eq!(ok[l], plan.factor(&mut ms), "lane {l}");
            if !ok[l] {
                continue;
            }
            let mut xs: Vec<f64> = rhs.iter().map(|r| r[l]).collect();
            let b0 = xs.clone();
            plan.solve(&ms, &mut xs);
            let mut rs = vec![0.0; n];
            plan.residual(&mats[l], &xs, &b0, &mut rs);
            for i in 0..n {
                assert_eq!(x[i][l].to_bits(), xs[i].to_bits(), "x_{i}, lane {l}");
                assert_eq!(res[i][l].to_bits(), rs[i].to_bits(), "r_{i}, lane {l}");
            }
        }
        assert!(!ok[3] && ok[..3].iter().all(|&o| o));
    }
}
