//! The ion-interference presets (Cu, Mn, ZnO2, CaO2, NaCl, CaO2 + Fe) each run 10 minutes of
//! model time on the 24³ test grid (wgpu path) and must show the direction of their mechanism.
//! Every comparison uses an internal control (same tissue outside the dosed cloud, or the
//! fe_fenton_cdt preset), since the baseline itself drifts slightly. Figures are printed
//! (run with `--nocapture`).

mod common;

use common::{regions, run_preset, PresetRun};

#[test]
fn cu_fenton_like_depletes_gsh_and_makes_oh_where_copper_is() {
    let run = run_preset("cu_fenton_like", "gpu", &[]);
    run.assert_outputs();
    let r = regions(&run, "NP_Cu");
    let oh0 = PresetRun::mean(&run.field("OH", false), |i| r.inside[i]);
    let (oh_in, oh_out) = (
        run.mean_of("OH", true, &r.inside),
        run.mean_of("OH", true, &r.outside),
    );
    let (dg_in, dg_out) = (run.change("GSH", &r.inside), run.change("GSH", &r.outside));
    let cu = run.mean_of("Cu1", true, &r.inside) + run.mean_of("Cu2", true, &r.inside);
    let (dv_in, dv_out) = (
        run.change("viab", &r.inside),
        run.change("viab", &r.outside),
    );
    eprintln!("Cu: OH cloud {oh0:.3e} → {oh_in:.3e} mM (far shell {oh_out:.3e}); ΔGSH cloud {dg_in:.3e} vs far shell {dg_out:.3e} mM; labile Cu {cu:.3e} mM; Δviab cloud {dv_in:.3e} vs far shell {dv_out:.3e}");
    assert!(cu > 1e-2, "no labile Cu released");
    assert!(oh_in > 100.0 * oh0, "no OH· burst where Cu is");
    assert!(
        dg_in < -0.05 && dg_in < dg_out,
        "GSH did not fall where Cu is"
    );
    assert!(dv_in < dv_out, "no extra damage where Cu is");
}

#[test]
fn mn_fenton_oh_scales_with_h2o2_where_mn_is() {
    let run = run_preset("mn_fenton_bicarbonate", "gpu", &[]);
    run.assert_outputs();
    let r = regions(&run, "Mn2");
    let (oh_in, oh_out) = (
        run.mean_of("OH", true, &r.inside),
        run.mean_of("OH", true, &r.outside),
    );
    // OH· per Mn2+ in tumour (H2O2 0.05 mM) and normal (1e-4 mM) voxels reached by the cloud.
    let (tumour, normal) = (run.tissue_id("tumour"), run.tissue_id("normal"));
    let (oh, mn, h2o2) = (
        run.field("OH", true),
        run.field("Mn2", true),
        run.field("H2O2", true),
    );
    let reached = run.cloud("Mn2", 0.05);
    let per_mn = |t: u32| {
        let pick = |i: usize| reached[i] && run.tissue[i] == t;
        (
            PresetRun::mean(&oh, pick) / PresetRun::mean(&mn, pick),
            PresetRun::mean(&h2o2, pick),
        )
    };
    let ((ot, ht), (on, hn)) = (per_mn(tumour), per_mn(normal));
    let hco3 = run.mean_of("HCO3", true, &r.inside);
    eprintln!("Mn: OH cloud {oh_in:.3e} vs far shell {oh_out:.3e} mM; OH/Mn2 tumour {ot:.3e} (H2O2 {ht:.3e}) vs normal {on:.3e} (H2O2 {hn:.3e}); HCO3 cloud {hco3:.2} mM");
    assert!(oh_in > 1.5 * oh_out, "Mn2+ made no OH·");
    assert!(
        ot > 3.0 * on && ot / on > 0.5 * ht / hn,
        "OH· per Mn2+ does not follow H2O2"
    );
}

#[test]
fn zno2_releases_zn_and_h2o2_where_particles_are() {
    let run = run_preset("zno2", "gpu", &[]);
    run.assert_outputs();
    let r = regions(&run, "NP_ZnO2");
    let (zn_in, zn_out) = (
        run.mean_of("Zn2", true, &r.inside),
        run.mean_of("Zn2", true, &r.outside),
    );
    let (h_in, h_out) = (
        run.mean_of("H2O2", true, &r.inside),
        run.mean_of("H2O2", true, &r.outside),
    );
    let dissolved = -run.change("NP_ZnO2", &r.inside);
    eprintln!("ZnO2: dissolved {dissolved:.3e} mM; Zn2 cloud {zn_in:.3e} vs far shell {zn_out:.3e} mM; H2O2 cloud {h_in:.3e} vs far shell {h_out:.3e} mM");
    assert!(dissolved > 0.1, "ZnO2 did not dissolve");
    assert!(
        zn_in > 1e-4 && zn_in > 2.0 * zn_out,
        "labile Zn2+ did not rise where ZnO2 is"
    );
    assert!(h_in > 1.2 * h_out, "H2O2 did not rise where ZnO2 is");
}

#[test]
fn cao2_overloads_calcium_and_damages_cells_where_particles_are() {
    let run = run_preset("cao2_calcium_overload", "gpu", &[]);
    run.assert_outputs();
    let r = regions(&run, "NP_CaO2");
    let (ca_in, ca_out) = (
        run.mean_of("Ca_i", true, &r.inside),
        run.mean_of("Ca_i", true, &r.outside),
    );
    let (h_in, h_out) = (
        run.mean_of("H2O2", true, &r.inside),
        run.mean_of("H2O2", true, &r.outside),
    );
    let (dph_in, dph_out) = (run.change("pH", &r.inside), run.change("pH", &r.outside));
    let dv = run.change("viab", &r.inside) - run.change("viab", &r.outside);
    eprintln!("CaO2: Ca_i cloud {ca_in:.3e} vs far shell {ca_out:.3e} mM; H2O2 cloud {h_in:.3e} vs far shell {h_out:.3e} mM; ΔpH cloud {dph_in:.4} vs far shell {dph_out:.4}; Δviab cloud − outside {dv:.3e}");
    assert!(ca_in > 1e-3 && ca_in > 5.0 * ca_out, "no Ca2+ overload");
    // Each CaO2 dissolved released one H2O2 and consumed two H+; the net H2O2 and pH
    // changes are not asserted: they are masked (see the report in the commit message).
    let dissolved = -run.change("NP_CaO2", &r.inside);
    eprintln!("CaO2 dissolved in the cloud: {dissolved:.3e} mM");
    assert!(dissolved > 0.5, "CaO2 did not dissolve");
    assert!(dv < -0.1, "no extra damage where CaO2 is");
}

#[test]
fn nacl_loads_intracellular_sodium_where_particles_are() {
    let run = run_preset("nacl_osmotic", "gpu", &[]);
    run.assert_outputs();
    let r = regions(&run, "NP_NaCl");
    let na = run.field("Na_i", true);
    let na_max = (0..na.len())
        .filter(|&i| r.inside[i])
        .map(|i| na[i] as f64)
        .fold(0.0, f64::max);
    let (na_in, na_out) = (
        run.mean_of("Na_i", true, &r.inside),
        run.mean_of("Na_i", true, &r.outside),
    );
    let (dv_in, dv_out) = (
        run.change("viab", &r.inside),
        run.change("viab", &r.outside),
    );
    eprintln!("NaCl: Na_i cloud mean {na_in:.2} (max {na_max:.2}) vs far shell {na_out:.2} mM; Δviab cloud {dv_in:.3e} vs far shell {dv_out:.3e}");
    // Na_i peaks (> 40 mM in the core) at ≈ 5 min and is falling again by 10 min; the
    // overload damage (τ 1 h above 40 mM) is not yet measurable, so viab is only printed.
    assert!(na_max > 30.0, "Na_i never approaches 40 mM in loaded cells");
    assert!(na_in > na_out + 5.0, "no Na+ loading where NaCl is");
}
