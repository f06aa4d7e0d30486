//! Every therapy preset of `configs/therapies/` runs 10 minutes of model time on a 32³ grid
//! (after a 2 min spin-up) and shows the direction of its mechanism, asserted on the fields
//! it writes. The runs use the wgpu path (lavapipe here), where the reaction step is fast;
//! `fe_fenton_cdt` also runs on the CPU backend and the two must agree.
//!
//! Each test prints the figures it asserts (run with `--nocapture` to see them).

mod common;

use common::{run_preset, PresetRun};

/// Voxels where the particle field at t = 0 exceeds `frac` of its peak: the dosed cloud.
fn cloud(run: &PresetRun, particle: &str, frac: f32) -> Vec<bool> {
    let np = run.field(particle, false);
    let peak = np.iter().cloned().fold(0.0, f32::max);
    assert!(peak > 0.0, "{particle} was not dosed");
    np.iter().map(|&v| v > frac * peak).collect()
}

/// Checks the files every preset run must leave: PNG slices and 16-bit stacks, `.npy`
/// fields, `viability.csv` and the time-of-death field.
fn assert_outputs(run: &PresetRun) {
    for dir in ["png", "png16", "fields"] {
        let n = walk(&run.out.join(dir));
        assert!(n > 0, "no files under {dir}/");
    }
    let v = run.viability();
    assert!(v.len() >= 2 * 10, "viability.csv has {} rows", v.len());
    assert!(run.out.join("manifest.json").exists());
    let tod = run.field("time_of_death", true);
    assert_eq!(tod.len(), 32 * 32 * 32);
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p)
                } else {
                    1
                }
            })
            .sum()
        })
        .unwrap_or(0)
}

#[test]
fn fe_fenton_cdt_makes_oh_in_the_acidic_tumour_and_depletes_gsh_where_iron_is() {
    let run = run_preset("fe_fenton_cdt", "gpu", &[]);
    assert_outputs(&run);
    let tumour = run.tissue_id("tumour");
    let normal = run.tissue_id("normal");
    let oh = run.field("OH", true);
    let oh_t = PresetRun::mean(&oh, |i| run.tissue[i] == tumour);
    let oh_n = PresetRun::mean(&oh, |i| run.tissue[i] == normal);
    let cloud = cloud(&run, "NP_Fe", 0.5);
    let in_cloud = |i: usize| cloud[i];
    let (fe0, fe1) = (run.field("Fe2", false), run.field("Fe2", true));
    let (gsh0, gsh1) = (run.field("GSH", false), run.field("GSH", true));
    let (v0, v1) = (run.field("viab", false), run.field("viab", true));
    let fe_gain = PresetRun::mean(&fe1, in_cloud) - PresetRun::mean(&fe0, in_cloud);
    let gsh_drop = PresetRun::mean(&gsh0, in_cloud) - PresetRun::mean(&gsh1, in_cloud);
    let viab_drop = PresetRun::mean(&v0, in_cloud) - PresetRun::mean(&v1, in_cloud);
    eprintln!(
        "OH tumour {oh_t:.3e} mM vs normal {oh_n:.3e} mM; in the cloud: Fe2+ +{fe_gain:.3e} mM, GSH −{gsh_drop:.3e} mM, viab −{viab_drop:.4}"
    );
    assert!(oh_t > 10.0 * oh_n, "OH· not higher in the tumour");
    assert!(fe_gain > 1e-2, "the particles released no Fe2+");
    assert!(gsh_drop > 1e-3, "GSH did not fall where the iron is");
    assert!(viab_drop > 0.0, "no damage where the iron is");
}
