//! Every therapy preset of `configs/therapies/` runs 10 minutes of model time on a 24³ grid
//! (after a 2 min spin-up) and shows the direction of its mechanism, asserted on the fields
//! it writes. The runs use the wgpu path (lavapipe here), where the reaction step is fast
//! (GPU and CPU agreement is tested in tests/gpu_vs_cpu.rs and tests/chemistry.rs).
//! `cao2_fe_combination` (in this file, not presets_ions.rs) is compared with the same
//! fe_fenton_cdt run, which runs once for both tests.
//!
//! Each test prints the figures it asserts (run with `--nocapture` to see them).

mod common;

use common::{regions, run_preset, shared_preset, PresetRun};

/// Tests of this binary that assert on the one fe_fenton_cdt run (see
/// [`common::shared_preset`]).
const FE_FENTON_USERS: usize = 2;

/// The particle field at t = 0 as a fraction of its peak (the dosed cloud is > 0.5, the
/// control region < 0.05).
fn dose_fraction(run: &PresetRun, particle: &str) -> Vec<f32> {
    let np = run.field(particle, false);
    let peak = np.iter().cloned().fold(0.0, f32::max);
    assert!(peak > 0.0, "{particle} was not dosed");
    np.iter().map(|&v| v / peak).collect()
}

#[test]
fn fe_fenton_cdt_makes_oh_in_the_acidic_tumour_and_depletes_gsh_where_iron_is() {
    let run = shared_preset("fe_fenton_cdt", &[], FE_FENTON_USERS);
    run.assert_outputs();
    let tumour = run.tissue_id("tumour");
    let normal = run.tissue_id("normal");
    let oh = run.field("OH", true);
    let oh_t = PresetRun::mean(&oh, |i| run.tissue[i] == tumour);
    let oh_n = PresetRun::mean(&oh, |i| run.tissue[i] == normal);
    // The dosed cloud inside the tumour against the rest of the tumour (internal control:
    // the baseline drifts a little after the spin-up).
    let dose = dose_fraction(&run, "NP_Fe");
    let treated = |i: usize| dose[i] > 0.5 && run.tissue[i] == tumour;
    let control = |i: usize| dose[i] < 0.3 && run.tissue[i] == tumour;
    let change = |name: &str, pick: &dyn Fn(usize) -> bool| {
        let (a, b) = (run.field(name, false), run.field(name, true));
        PresetRun::mean(&b, pick) - PresetRun::mean(&a, pick)
    };
    let fe_gain = change("Fe2", &treated);
    let gsh = (change("GSH", &treated), change("GSH", &control));
    let viab = (change("viab", &treated), change("viab", &control));
    let oh_cloud = (PresetRun::mean(&oh, treated), PresetRun::mean(&oh, control));
    eprintln!(
        "OH tumour {oh_t:.3e} mM vs normal {oh_n:.3e} mM; tumour, cloud (>½ peak dose) vs tumour rim (<30 %): OH {:.3e} vs {:.3e} mM, Fe2+ +{fe_gain:.3e} mM, ΔGSH {:.3e} vs {:.3e} mM, Δviab {:.4} vs {:.4}",
        oh_cloud.0, oh_cloud.1, gsh.0, gsh.1, viab.0, viab.1
    );
    assert!(oh_t > 10.0 * oh_n, "OH· not higher in the tumour");
    assert!(
        oh_cloud.0 > 2.0 * oh_cloud.1,
        "OH· not highest in the particle cloud"
    );
    assert!(fe_gain > 1e-2, "the particles released no Fe2+");
    assert!(gsh.0 < gsh.1 - 1e-3, "GSH did not fall where the iron is");
    assert!(viab.0 < viab.1, "no extra damage where the iron is");
    // Synthetic MRI: T2-weighted signal darkens where the particle iron is (docs/scientific-model.md §6).
    let t2w = run.field("T2w", false);
    let (dark, bright) = (
        PresetRun::mean(&t2w, treated),
        PresetRun::mean(&t2w, control),
    );
    eprintln!("T2w signal: cloud {dark:.3e} vs tumour rim {bright:.3e} (a.u.)");
    assert!(dark < 0.5 * bright, "no T2 darkening where the iron is");
}

/// `ionfield list` names every preset, and docs/model.md is exactly `ionfield describe
/// --all` (regenerate with `cargo run -- describe --all > docs/model.md`).
#[test]
fn list_names_every_preset_and_docs_model_md_is_current() {
    let dir = tempfile::tempdir().unwrap();
    let list = common::ionfield(dir.path(), &["list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for e in std::fs::read_dir(root.join("configs/therapies")).unwrap() {
        let name = e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .replace(".toml", "");
        assert!(
            list.stdout.contains(&format!("  {name} ")),
            "{name} not listed:\n{}",
            list.stdout
        );
        n += 1;
    }
    assert_eq!(list.stdout.lines().count(), n + 1);
    let describe = common::ionfield(dir.path(), &["describe", "--all"]);
    assert_eq!(describe.code, 0, "{}", describe.stderr);
    let docs = std::fs::read_to_string(root.join("docs/model.md")).expect("docs/model.md");
    assert!(
        docs == describe.stdout,
        "docs/model.md is stale: regenerate with `cargo run -- describe --all > docs/model.md`"
    );
}

/// The combination adds Ca2+ overload to Fenton damage. Its H2O2 boost is small here: the
/// tumour already makes ≈ 0.05 mM/s of H2O2 (baseline R14p) against ≈ 2.5e-3 mM/s from
/// CaO2, and dying cells make less (R14p × viab), so OH· and H2O2 are only printed; the
/// damage must be larger than with iron alone, and Ca2+ overloaded. (Here, not in
/// presets_ions.rs, so that it shares the one fe_fenton_cdt run of this binary.)
#[test]
fn cao2_with_iron_kills_more_than_iron_alone() {
    let combo = run_preset("cao2_fe_combination", "gpu", &[]);
    combo.assert_outputs();
    let fe = shared_preset("fe_fenton_cdt", &[], FE_FENTON_USERS);
    let (rc, rf) = (regions(&combo, "NP_Fe"), regions(&fe, "NP_Fe"));
    let (oh_c, oh_f) = (
        combo.mean_of("OH", true, &rc.inside),
        fe.mean_of("OH", true, &rf.inside),
    );
    let (h_c, h_f) = (
        combo.mean_of("H2O2", true, &rc.inside),
        fe.mean_of("H2O2", true, &rf.inside),
    );
    let ca = combo.mean_of("Ca_i", true, &rc.inside);
    let (dv_c, dv_f) = (
        combo.change("viab", &rc.inside),
        fe.change("viab", &rf.inside),
    );
    eprintln!("CaO2+Fe vs Fe alone, cloud: OH {oh_c:.3e} vs {oh_f:.3e} mM; H2O2 {h_c:.3e} vs {h_f:.3e} mM; Δviab {dv_c:.3e} vs {dv_f:.3e}; Ca_i {ca:.3e} mM");
    assert!(ca > 1e-3, "no Ca2+ overload");
    assert!(
        dv_c < 2.0 * dv_f,
        "the combination did not kill more than iron alone"
    );
}
