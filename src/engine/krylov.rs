//! The small dense half of restarted GMRES, written once for both backends: the
//! Hessenberg matrix of one restart cycle, reduced by Givens rotations as columns arrive,
//! the residual estimate, and the least-squares solution. The long vectors (the basis,
//! the operator, the dot products) are the backend's (`cpu::coupled`, `gpu::coupled`).

/// One restart cycle's least-squares problem min ‖β·e₁ − H·y‖ with up to `restart`
/// columns.
pub struct Arnoldi {
    restart: usize,
    /// Column-reduced Hessenberg matrix, `hess[i][j]`.
    hess: Vec<Vec<f64>>,
    cs: Vec<f64>,
    sn: Vec<f64>,
    /// The rotated right-hand side β·e₁.
    g: Vec<f64>,
    /// Columns taken so far.
    columns: usize,
}

impl Arnoldi {
    /// A cycle that starts from a residual of norm `beta`.
    pub fn new(restart: usize, beta: f64) -> Arnoldi {
        let mut g = vec![0.0; restart + 1];
        g[0] = beta;
        Arnoldi {
            restart,
            hess: vec![vec![0.0; restart]; restart + 1],
            cs: vec![0.0; restart],
            sn: vec![0.0; restart],
            g,
            columns: 0,
        }
    }

    /// Columns taken so far.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// Adds column j = `columns()`: `h[i]` = ⟨A·z_j, v_i⟩ for i ≤ j and `h_next` the norm of
    /// what is left (the next basis vector's scale). Returns the residual norm estimate of
    /// the cycle after it, or `None` when the rotation breaks down (a zero or non-finite
    /// pivot).
    pub fn push(&mut self, h: &[f64], h_next: f64) -> Option<f64> {
        let j = self.columns;
        assert!(
            j < self.restart && h.len() == j + 1,
            "column {j} of {}",
            self.restart
        );
        for (i, &v) in h.iter().enumerate() {
            self.hess[i][j] = v;
        }
        for i in 0..j {
            let t = self.cs[i] * self.hess[i][j] + self.sn[i] * self.hess[i + 1][j];
            self.hess[i + 1][j] = -self.sn[i] * self.hess[i][j] + self.cs[i] * self.hess[i + 1][j];
            self.hess[i][j] = t;
        }
        let d = (self.hess[j][j] * self.hess[j][j] + h_next * h_next).sqrt();
        if d == 0.0 || !d.is_finite() {
            return None;
        }
        self.cs[j] = self.hess[j][j] / d;
        self.sn[j] = h_next / d;
        self.hess[j][j] = d;
        self.hess[j + 1][j] = 0.0;
        self.g[j + 1] = -self.sn[j] * self.g[j];
        self.g[j] *= self.cs[j];
        self.columns = j + 1;
        Some(self.g[j + 1].abs())
    }

    /// The coefficients y of the cycle's update x += Z·y (back substitution).
    pub fn solve(&self) -> Vec<f64> {
        let k = self.columns;
        let mut y = vec![0.0; k];
        for i in (0..k).rev() {
            let mut s = self.g[i];
            for (l, yl) in y.iter().enumerate().skip(i + 1) {
                s -= self.hess[i][l] * yl;
            }
            y[i] = s / self.hess[i][i];
        }
        y
    }
}

#[cfg(test)]
mod tests {
    use super::Arnoldi;

    /// On a 3×3 system run by hand (Arnoldi in the plain inner product), the cycle's
    /// residual estimate reaches 0 at the third column and y solves the system.
    #[test]
    fn solves_a_small_system_exactly() {
        let a = [[4.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 2.0]];
        let b = [1.0, 2.0, 3.0];
        let mv = |x: &[f64; 3]| -> [f64; 3] {
            std::array::from_fn(|i| (0..3).map(|k| a[i][k] * x[k]).sum())
        };
        let dot = |p: &[f64; 3], q: &[f64; 3]| -> f64 { (0..3).map(|i| p[i] * q[i]).sum() };
        let beta = dot(&b, &b).sqrt();
        let mut v: Vec<[f64; 3]> = vec![b.map(|x| x / beta)];
        let mut ar = Arnoldi::new(3, beta);
        let mut resid = f64::NAN;
        for j in 0..3 {
            let mut w = mv(&v[j]);
            let h: Vec<f64> = (0..=j).map(|i| dot(&w, &v[i])).collect();
            for (i, hi) in h.iter().enumerate() {
                for k in 0..3 {
                    w[k] -= hi * v[i][k];
                }
            }
            let hn = dot(&w, &w).sqrt();
            resid = ar.push(&h, hn).unwrap();
            v.push(w.map(|x| x / hn.max(1e-300)));
        }
        assert!(resid < 1e-12, "{resid}");
        let y = ar.solve();
        let x: [f64; 3] = std::array::from_fn(|k| (0..3).map(|j| y[j] * v[j][k]).sum());
        let ax = mv(&x);
        for i in 0..3 {
            assert!((ax[i] - b[i]).abs() < 1e-12, "{ax:?}");
        }
    }
}
