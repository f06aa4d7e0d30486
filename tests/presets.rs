//! Every therapy preset of `configs/therapies/` runs 10 minutes of model time on a 32³ grid
//! (after a 2 min spin-up) and shows the direction of its mechanism, asserted on the fields
//! it writes. The runs use the wgpu path (lavapipe here), where the reaction step is fast;
//! `fe_fenton_cdt` also runs on the CPU backend and the two must agree.
//!
//! Each test prints the figures it asserts (run with `--nocapture` to see them).

mod common;

use common::{run_preset, PresetRun};

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
    let run = run_preset("fe_fenton_cdt", "gpu", &[]);
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
