//! The cell compartment of `configs/chemistry/intracellular_ph.toml` in one well-mixed
//! tumour voxel (baseline physiology, no vessels, no glucose, cell death switched off),
//! against what follows from its equations independently of ionfield's code:
//!
//! - NHE1 alone: pHi relaxes to the set point along the regulator's ODE,
//!   dpHi/dt = (V_NHE/β_i)·(2·Hi^n/(Hi^n + H_NHE^n) − 1), integrated here by RK4;
//! - acid is conserved between the compartments: what leaves the cell, β_i·ΔpHi, appears
//!   in the interstitium as titrated bicarbonate and bound non-bicarbonate buffer,
//!   −ΔHCO3 − β_nb·ΔpHe (the baseline's [buffer], R23), also when CO2 hydration runs;
//! - MCT alone: lactate is conserved, each lactate leaves with one H⁺ (ΔLac = β_i·ΔpHi),
//!   and the carrier stops at its thermodynamic equilibrium, Lac_i·Hi = Lac·H.
//!
//! Every case prints its figures (run with `--nocapture`).

mod common;

use std::collections::BTreeMap;

/// The compartment's constants, as in `configs/chemistry/intracellular_ph.toml`.
const BETA_I: f64 = 48.0; // mM per pH unit
const V_NHE: f64 = 5e-2; // mM/s
const H_NHE: f64 = 6.3e-5; // mM (set point pHi 7.2)
const N_NHE: f64 = 2.0;
/// The baseline's interstitial non-bicarbonate buffer capacity, mM per pH unit.
const BETA_NB: f64 = 20.0;

/// Runs one well-mixed tumour voxel for 30 min with the cells at pHi `phi0` holding
/// `lac_i0` mM lactate, and `extra` lines appended to its [parameters]; returns
/// well_mixed.csv as columns by name.
fn run(phi0: f64, lac_i0: f64, extra: &str) -> BTreeMap<String, Vec<f64>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cell_ph.toml");
    std::fs::write(
        &path,
        format!(
            r#"name = "cell_ph"
include = ["{0}/chemistry/baseline.toml", "{0}/chemistry/intracellular_ph.toml"]
[grid]
shape = [1, 1, 1]
voxel_um = 10.0
[tissues.tumour]
shape = "box"
min_um = [0.0, 0.0, 0.0]
max_um = [10.0, 10.0, 10.0]
[time]
dt_s = 1.0
end_s = 1800.0
output_interval_s = 60.0
[species.glucose]
initial = {{ uniform_mm = 0.0 }}
[species.Lac]
initial = {{ uniform_mm = 0.0, tissue_mm = {{ tumour = 0.0 }} }}
[species.Lac_i]
initial = {{ uniform_mm = 0.0, tissue_mm = {{ tumour = {lac_i0} }} }}
[species.pHi]
initial = {{ uniform_mm = {phi0} }}
[parameters]
tau_hyp = {{ value = 1e12, unit = "s", source = "test: no hypoxic death" }}
tau_glc = {{ value = 1e12, unit = "s", source = "test: no starvation" }}
tau_acid = {{ value = 1e12, unit = "s", source = "test: no acidotic death" }}
{extra}
"#,
            root.display()
        ),
    )
    .unwrap();
    let out = common::run_cpu(dir.path(), &path, "out");
    let text = std::fs::read_to_string(out.join("well_mixed.csv")).unwrap();
    let mut lines = text.lines();
    let names: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let mut cols: BTreeMap<String, Vec<f64>> =
        names.iter().map(|n| (n.clone(), Vec::new())).collect();
    for line in lines {
        for (name, v) in names.iter().zip(line.split(',')) {
            cols.get_mut(name).unwrap().push(v.parse().unwrap());
        }
    }
    cols
}

/// The regulator's pHi rate, pH units per s.
fn nhe_rate(phi: f64) -> f64 {
    let hi = 10f64.powf(3.0 - phi);
    let h = hi.powf(N_NHE) / (hi.powf(N_NHE) + H_NHE.powf(N_NHE));
    V_NHE / BETA_I * (2.0 * h - 1.0)
}

/// pHi at times `t_s` from `phi0`, classical RK4 with 0.1 s steps.
fn nhe_reference(phi0: f64, t_s: &[f64]) -> Vec<f64> {
    let (h, mut t, mut y) = (0.1, 0.0, phi0);
    t_s.iter()
        .map(|&target| {
            while t < target - 1e-9 {
                let k1 = nhe_rate(y);
                let k2 = nhe_rate(y + 0.5 * h * k1);
                let k3 = nhe_rate(y + 0.5 * h * k2);
                let k4 = nhe_rate(y + h * k3);
                y += h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
                t += h;
            }
            y
        })
        .collect()
}

#[test]
fn nhe_restores_phi_along_its_ode_and_the_acid_it_extrudes_is_buffered_outside() {
    let c = run(6.9, 0.0, "");
    let (t, phi, ph, hco3) = (&c["time_s"], &c["pHi"], &c["pH"], &c["HCO3"]);
    let reference = nhe_reference(6.9, t);
    let worst = phi
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let last = t.len() - 1;
    eprintln!(
        "pHi 6.9 → {:.4} in {:.0} s (RK4 reference {:.4}); worst difference {worst:.1e} pH",
        phi[last], t[last], reference[last]
    );
    // It moved: at least 0.25 of the 0.3 to the set point.
    assert!(reference[last] > 7.15 && phi[last] > 7.15);
    assert!(worst < 2e-3, "pHi off its ODE by {worst}");
    // Acid out of the cell = acid titrated outside (CO2 hydration and the other H⁺
    // reactions of the baseline run alongside).
    for i in [1, last / 2, last] {
        let out_of_cell = BETA_I * (phi[i] - phi[0]);
        let outside = -(hco3[i] - hco3[0]) - BETA_NB * (ph[i] - ph[0]);
        eprintln!(
            "t = {:.0} s: β_i·ΔpHi {out_of_cell:.4} mM, −ΔHCO3 − β_nb·ΔpHe {outside:.4} mM",
            t[i]
        );
        assert!(
            (outside - out_of_cell).abs() < 0.01 * out_of_cell.abs(),
            "acid not conserved between the compartments at {} s",
            t[i]
        );
    }
}

#[test]
fn mct_exports_lactate_with_one_proton_each_until_lac_h_balances() {
    // NHE off, 20 mM lactate in the cells and none outside.
    let c = run(
        7.2,
        20.0,
        "V_NHE = { value = 0.0, unit = \"mM/s\", source = \"test: MCT alone\" }",
    );
    let (phi, ph, lac, lac_i) = (&c["pHi"], &c["pH"], &c["Lac"], &c["Lac_i"]);
    let last = phi.len() - 1;
    let total_drift = (0..=last)
        .map(|i| (lac[i] + lac_i[i] - 20.0).abs())
        .fold(0.0, f64::max);
    let exported = lac[last];
    let proton_balance = BETA_I * (phi[last] - phi[0]);
    let (hi, he) = (10f64.powf(3.0 - phi[last]), 10f64.powf(3.0 - ph[last]));
    let (inside, outside) = (lac_i[last] * hi, lac[last] * he);
    eprintln!(
        "MCT: exported {exported:.3} mM lactate, β_i·ΔpHi {proton_balance:.3} mM; Lac + Lac_i − 20 at most {total_drift:.1e} mM; at 30 min Lac_i·Hi {inside:.3e}, Lac·H {outside:.3e} mM² (pHi {:.3}, pHe {:.3})",
        phi[last], ph[last]
    );
    assert!(exported > 1.0, "the MCT moved {exported} mM");
    assert!(total_drift < 1e-5, "lactate not conserved: {total_drift}");
    assert!(
        (proton_balance - exported).abs() < 0.01 * exported,
        "one H⁺ per lactate: {proton_balance} vs {exported}"
    );
    assert!(
        (inside - outside).abs() < 0.02 * outside,
        "the carrier did not settle at Lac_i·Hi = Lac·H"
    );
}
