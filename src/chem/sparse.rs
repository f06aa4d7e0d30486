//! Sparse LU of the Rosenbrock matrix M = I/(γh) − J without pivoting, planned once from
//! the Jacobian's structure (as KPP does): the factorisation and the triangular solves
//! become fixed lists of operations on the nonzeros (fill-in included). The WGSL generator
//! unrolls them into straight-line code with constant indices, which the driver keeps in
//! registers; the CPU twin runs the same lists.
//!
//! Without pivoting a pivot can vanish; the integrator then rejects the step and halves h,
//! which makes the diagonal 1/(γh) dominate, so a small enough step always factors.

use super::graph::Graph;
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
        for op in &self.factor {
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
    }
}
