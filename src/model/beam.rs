//! The given field of a [`Beam`]: relative intensity in every voxel, from the tissue labels
//! along its path (docs/scientific-model.md §12).

use crate::config::scenario::Beam;
use crate::grid::{Axis, Grid, TISSUE_ID_MASK};

/// Relative intensity I/I0 of `beam` at every voxel centre (x fastest), with the tissue of
/// each voxel from `mask`: exp(−Σ µ·ds) over the voxels between the face and the centre
/// (half of the voxel's own), times the Gaussian beam's lateral profile at that depth.
pub fn intensity(beam: &Beam, grid: &Grid, mask: &[u32]) -> Vec<f64> {
    let [nx, ny, nz] = grid.shape();
    let dx = grid.voxel_um;
    let index = |i: usize, j: usize, k: usize| i + nx * (j + ny * k);
    // (depth axis length, lateral lengths) and the voxel at (depth step s, lateral a, b).
    let (n_depth, n_a, n_b) = match beam.axis {
        Axis::X => (nx, ny, nz),
        Axis::Y => (ny, nx, nz),
        Axis::Z => (nz, nx, ny),
    };
    let voxel = |s: usize, a: usize, b: usize| {
        let d = if beam.from_max { n_depth - 1 - s } else { s };
        match beam.axis {
            Axis::X => index(d, a, b),
            Axis::Y => index(a, d, b),
            Axis::Z => index(a, b, d),
        }
    };
    let mu = |ix: usize| {
        let t = (mask[ix] & TISSUE_ID_MASK) as usize;
        beam.attenuation_per_um.get(t).copied().unwrap_or(0.0)
    };
    let mut out = vec![0.0; grid.n_voxels()];
    for b in 0..n_b {
        for a in 0..n_a {
            let (pa, pb) = ((a as f64 + 0.5) * dx, (b as f64 + 0.5) * dx);
            let r2 = (pa - beam.centre_um[0]).powi(2) + (pb - beam.centre_um[1]).powi(2);
            // Optical depth from the face to the start of voxel s.
            let mut tau = 0.0;
            for s in 0..n_depth {
                let ix = voxel(s, a, b);
                let m = mu(ix);
                let depth_um = (s as f64 + 0.5) * dx;
                out[ix] = (-(tau + 0.5 * m * dx)).exp() * lateral(beam, depth_um, r2);
                tau += m * dx;
            }
        }
    }
    out
}

/// The Gaussian beam's lateral factor at `depth_um` and squared distance `r2` (µm²) from
/// its axis: (w0/w)²·exp(−2r²/w²); 1 for a plane wave.
fn lateral(beam: &Beam, depth_um: f64, r2: f64) -> f64 {
    let Some(w0) = beam.waist_um else {
        return 1.0;
    };
    let w2 = match beam.focus {
        Some((d_f, z_r)) => w0 * w0 * (1.0 + ((depth_um - d_f) / z_r).powi(2)),
        None => w0 * w0,
    };
    w0 * w0 / w2 * (-2.0 * r2 / w2).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beam(attenuation_per_um: Vec<f64>) -> Beam {
        Beam {
            axis: Axis::Z,
            from_max: true,
            attenuation_per_um,
            waist_um: None,
            centre_um: [40.0, 40.0],
            focus: None,
        }
    }

    const GRID: Grid = Grid {
        nx: 8,
        ny: 8,
        nz: 40,
        voxel_um: 10.0,
    };

    /// A plane wave in one tissue: exp(−µ·d) at each depth d of a voxel centre.
    #[test]
    fn plane_wave_decays_as_exp_of_depth() {
        let mu = 1.84e-5; // 2 × 0.092 Np/cm, 1/µm
        let b = beam(vec![mu]);
        let field = intensity(&b, &GRID, &vec![0; GRID.n_voxels()]);
        for k in 0..GRID.nz {
            let d = (GRID.nz - k) as f64 * 10.0 - 5.0;
            let ix = 3 + 8 * (5 + 8 * k);
            let exact = (-mu * d).exp();
            assert!(
                (field[ix] - exact).abs() < 1e-14,
                "k {k}: {} vs {exact}",
                field[ix]
            );
        }
    }

    /// Two layers: the deep layer's intensity carries the whole upper layer's attenuation.
    #[test]
    fn layers_attenuate_by_their_path_lengths() {
        let (mu0, mu1) = (1e-3, 5e-3);
        let b = beam(vec![mu0, mu1]);
        let mut mask = vec![0u32; GRID.n_voxels()];
        // Tissue 1 in the lower half (k < 20), entered after 200 µm of tissue 0.
        for (ix, m) in mask.iter_mut().enumerate() {
            if ix / 64 < 20 {
                *m = 1;
            }
        }
        let field = intensity(&b, &GRID, &mask);
        let k = 9; // centre 105 µm above the bottom: 200 µm of tissue 0, then 105 µm of 1
        let exact = (-(mu0 * 200.0 + mu1 * 105.0)).exp();
        assert!(
            (field[64 * k] - exact).abs() < 1e-14,
            "{} vs {exact}",
            field[64 * k]
        );
    }

    /// A focused Gaussian beam without attenuation: on its axis (w0/w(d))², with w(d) the
    /// beam radius at depth d; off axis exp(−2r²/w²) of that.
    #[test]
    fn focused_beam_follows_the_gaussian_beam_radius() {
        let mut b = beam(vec![0.0]);
        b.waist_um = Some(20.0);
        b.focus = Some((195.0, 50.0));
        b.centre_um = [30.0, 30.0]; // voxel (3, 3) is centred at (35, 35): r² = 2·5² µm²
        let field = intensity(&b, &GRID, &vec![0; GRID.n_voxels()]);
        for k in [0, 10, 20, 25, 39] {
            let d = (GRID.nz - k) as f64 * 10.0 - 5.0;
            let w2 = 400.0 * (1.0 + ((d - 195.0) / 50.0f64).powi(2));
            let exact = 400.0 / w2 * (-2.0 * 50.0 / w2).exp();
            let ix = 3 + 8 * (3 + 8 * k);
            assert!(
                (field[ix] - exact).abs() < 1e-14,
                "k {k}: {} vs {exact}",
                field[ix]
            );
        }
        // The focus (d = 195 µm, k = 20) is the brightest depth near the axis.
        let on_axis = |k: usize| field[3 + 8 * (3 + 8 * k)];
        assert!((0..GRID.nz).all(|k| on_axis(k) <= on_axis(20)));
    }
}
