//! Transport of nanoparticles from their size (docs/scientific-model.md §11): free diffusivity
//! by Stokes–Einstein and the permeability of a capillary wall by pore theory (Renkin's
//! hindrance of a sphere in a cylindrical pore). Used by `vessel_network.exchange` when a
//! particle is given by its radius instead of a permeability.

/// Boltzmann constant, J/K.
const K_B: f64 = 1.380_649e-23;
/// Body temperature, K.
pub const T_BODY_K: f64 = 310.15;
/// Viscosity of water (plasma water, interstitial fluid) at 37 °C, Pa·s [T].
pub const WATER_VISCOSITY_PA_S: f64 = 0.69e-3;

/// Free diffusivity of a sphere of hydrodynamic radius `radius_nm` in water at 37 °C,
/// µm²/s: D0 = k_B·T/(6π·η·r).
pub fn stokes_einstein_um2_per_s(radius_nm: f64) -> f64 {
    K_B * T_BODY_K / (6.0 * std::f64::consts::PI * WATER_VISCOSITY_PA_S * radius_nm * 1e-9) * 1e12
}

/// Renkin's hindrance of a sphere of radius ratio λ = r_particle/r_pore in a cylindrical
/// pore (partition × diffusive drag), 0 for λ ≥ 1: (1 − λ)²·(1 − 2.104λ + 2.09λ³ − 0.95λ⁵).
pub fn renkin_hindrance(lambda: f64) -> f64 {
    if !(0.0..1.0).contains(&lambda) {
        return 0.0;
    }
    (1.0 - lambda).powi(2) * (1.0 - 2.104 * lambda + 2.09 * lambda.powi(3) - 0.95 * lambda.powi(5))
}

/// Ogston's hindrance of a sphere of radius `radius_nm` diffusing through a random mesh of
/// straight fibres of radius `fibre_radius_nm` at volume fraction `phi` (Ogston, Preston
/// & Wells 1973): D/D0 = exp(−√φ·(1 + r/r_f)).
pub fn ogston_hindrance(radius_nm: f64, fibre_radius_nm: f64, phi: f64) -> f64 {
    (-phi.sqrt() * (1.0 + radius_nm / fibre_radius_nm)).exp()
}

/// Diffusive permeability of a capillary wall with pores of radius `pore_radius_nm` and
/// pore area per wall area per wall thickness `pore_fraction_per_um` (ε/L, 1/µm) to a
/// particle of radius `radius_nm`, µm/s: P = (ε/L)·D0(r)·H(r/r_pore).
pub fn pore_permeability_um_per_s(
    radius_nm: f64,
    pore_radius_nm: f64,
    pore_fraction_per_um: f64,
) -> f64 {
    pore_fraction_per_um
        * stokes_einstein_um2_per_s(radius_nm)
        * renkin_hindrance(radius_nm / pore_radius_nm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stokes_einstein_gives_the_table_of_docs_section_11() {
        // Diameters 10, 20, 50, 100, 200 nm: 66, 33, 13, 6.6, 3.3 µm²/s [T].
        for (d_nm, want) in [
            (10.0, 66.0),
            (20.0, 33.0),
            (50.0, 13.0),
            (100.0, 6.6),
            (200.0, 3.3),
        ] {
            let got = stokes_einstein_um2_per_s(d_nm / 2.0);
            assert!(
                (got / want - 1.0).abs() < 0.02,
                "{d_nm} nm: {got} vs {want}"
            );
        }
    }

    #[test]
    fn ogston_is_one_without_fibres_and_falls_with_size() {
        assert!((ogston_hindrance(50.0, 20.0, 0.0) - 1.0).abs() < 1e-15);
        // φ 0.04, r/r_f 1: exp(−0.2·2) = 0.670.
        assert!((ogston_hindrance(20.0, 20.0, 0.04) - (-0.4f64).exp()).abs() < 1e-15);
        let h: Vec<f64> = [5.0, 10.0, 25.0, 50.0]
            .iter()
            .map(|&r| ogston_hindrance(r, 20.0, 0.05))
            .collect();
        assert!(h.windows(2).all(|w| w[1] < w[0]), "{h:?}");
    }

    #[test]
    fn renkin_is_one_for_points_zero_at_the_pore_and_decreasing() {
        assert!((renkin_hindrance(0.0) - 1.0).abs() < 1e-12);
        assert_eq!(renkin_hindrance(1.0), 0.0);
        assert_eq!(renkin_hindrance(1.5), 0.0);
        let h: Vec<f64> = (0..20).map(|i| renkin_hindrance(i as f64 / 20.0)).collect();
        assert!(h.windows(2).all(|w| w[1] < w[0]), "{h:?}");
    }

    /// With ε/L set so that albumin (r 3.5 nm) crosses tumour capillaries (pores 400 nm)
    /// at 2e-7 cm/s [Yua95], a 100 nm liposome comes out at ≈ 1e-8 cm/s, Yuan's measured
    /// order (1e-8 – 1e-7 cm/s), and normal capillaries (pores 6 nm) pass albumin at
    /// 1e-9 – 1e-8 cm/s and no liposome.
    #[test]
    fn pore_theory_reproduces_measured_tumour_permeabilities() {
        let albumin_nm = 3.5;
        let eps = 2e-3 / pore_permeability_um_per_s(albumin_nm, 400.0, 1.0);
        let liposome = pore_permeability_um_per_s(50.0, 400.0, eps);
        let normal_albumin = pore_permeability_um_per_s(albumin_nm, 6.0, eps);
        eprintln!(
            "ε/L {eps:.2e} 1/µm; liposome 100 nm {:.1e} cm/s; albumin in normal capillaries {:.1e} cm/s",
            liposome * 1e-4,
            normal_albumin * 1e-4
        );
        assert!((1e-9..1e-7).contains(&(liposome * 1e-4)), "{liposome}");
        assert!((1e-9..1e-8).contains(&(normal_albumin * 1e-4)));
        assert_eq!(pore_permeability_um_per_s(50.0, 6.0, eps), 0.0);
    }
}
