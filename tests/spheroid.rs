//! An untreated tumour spheroid in medium (`configs/untreated_spheroid.toml`: radius 300 µm,
//! no vessels, the box faces held at the medium's values): after the spin-up, O2 inside the
//! spheroid against the analytic solution of zero-order consumption in a sphere, and the
//! core's O2, pHe and lactate beside published spheroid measurements.
//!
//! Each assertion prints what it measured (run with `--nocapture`).

mod common;

use ionfield::config;
use ionfield::model::Model;

/// The value of parameter `name` in tissue `tissue`.
fn parameter(scenario: &config::Scenario, name: &str, tissue: usize) -> f64 {
    scenario
        .parameters
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no parameter {name}"))
        .value_by_tissue[tissue]
}

#[test]
fn spheroid_o2_follows_the_analytic_sphere_profile_and_its_core_is_lactic_and_acidic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config_path = root.join("configs/untreated_spheroid.toml");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (config_arg, out_arg) = (config_path.display().to_string(), out.display().to_string());
    let started = std::time::Instant::now();
    let o = common::ionfield(
        dir.path(),
        &["run", &config_arg, "--backend", "cpu", "--out", &out_arg],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    eprintln!(
        "untreated_spheroid: {:.1} s wall",
        started.elapsed().as_secs_f64()
    );
    // The closing line's step count and rate are over the run after the spin-up: fewer
    // steps than the coupled scheme's total, which counts the spin-up's too.
    let (after, total) = (
        common::number_after(&o.stderr, "done:", "done: "),
        common::number_after(&o.stderr, "time steps", "spin-up included): "),
    );
    assert!(
        after >= 1 && after < total,
        "done: {after} steps, {total} with the spin-up"
    );
    // The spin-up ran until settled, and said so in the manifest.
    let manifest = common::manifest(&out);
    assert_eq!(
        manifest["spin_up"]["settled"].as_bool(),
        Some(true),
        "{}",
        manifest["spin_up"]
    );

    let scenario = config::load_file(&config_path, &[]).unwrap();
    let model = Model::build(&scenario);
    let g = scenario.grid;
    let (nx, ny) = (g.nx, g.ny);
    let tumour = scenario
        .tissues
        .iter()
        .position(|t| t.name == "tumour")
        .unwrap();
    let (centre, radius) = match scenario.tissues[tumour].region.as_ref() {
        Some(config::Region::Sphere {
            centre_um,
            radius_um,
        }) => (*centre_um, *radius_um),
        other => panic!("the spheroid is not a sphere: {other:?}"),
    };
    let r_of = |ix: usize| {
        let (i, j, k) = (ix % nx, (ix / nx) % ny, ix / (nx * ny));
        g.centre_um(i, j, k).distance(centre)
    };
    // Tissue voxels as every summary counts them (held face layers left out).
    let in_spheroid = |ix: usize| model.summary_tissue(ix) == Some(tumour);
    let (o2, ph, lac) = (
        common::field_at(&out, "O2", 0.0),
        common::field_at(&out, "pH", 0.0),
        common::field_at(&out, "Lac", 0.0),
    );
    let within = |r0: f64, r1: f64| -> Vec<usize> {
        (0..o2.len())
            .filter(|&ix| in_spheroid(ix) && (r0..r1).contains(&r_of(ix)))
            .collect()
    };
    let avg = |ixs: &[usize], f: &dyn Fn(usize) -> f64| {
        assert!(!ixs.is_empty(), "no spheroid voxel in a shell");
        ixs.iter().map(|&ix| f(ix)).sum::<f64>() / ixs.len() as f64
    };
    let shell = |f: &[f64], r0: f64, r1: f64| avg(&within(r0, r1), &|ix| f[ix]);

    // O2 inside: consumption at rate M (mM/s) in a sphere gives the steady profile
    // C(r) = C(0) + M r² / (6 D) (docs/scientific-model.md §4, Krogh test). The shells are
    // compared by their means, which removes most of what the cube's faces and the
    // voxelised surface add (a harmonic function's mean over a sphere is its centre value);
    // M is Vmax_O2·C/(K_O2 + C)·viab averaged over the voxels within 200 µm (Michaelis–
    // Menten consumes 3 % below Vmax at the centre's 31 µM).
    let vmax = parameter(&scenario, "Vmax_O2", tumour);
    let k_o2 = parameter(&scenario, "K_O2", tumour);
    let o2_species = scenario.species.iter().find(|s| s.name == "O2").unwrap();
    let d = o2_species.diffusion_um2_per_s;
    let viab = common::field_at(&out, "viab", 0.0);
    let m = avg(&within(0.0, 200.0), &|ix| {
        vmax * o2[ix] / (k_o2 + o2[ix]) * viab[ix]
    });
    let (centre_shell, outer_shell) = (within(0.0, 40.0), within(160.0, 200.0));
    let rise = avg(&outer_shell, &|ix| o2[ix]) - avg(&centre_shell, &|ix| o2[ix]);
    let analytic = m / (6.0 * d)
        * (avg(&outer_shell, &|ix| r_of(ix).powi(2)) - avg(&centre_shell, &|ix| r_of(ix).powi(2)));
    eprintln!(
        "O2 rise from the centre (r < 40 µm) to 160–200 µm: {:.2} µM, analytic {:.2} µM (M {m:.3e} mM/s, D {d} µm²/s): {:+.2} %",
        rise * 1e3,
        analytic * 1e3,
        100.0 * (rise / analytic - 1.0)
    );
    assert!(
        (rise / analytic - 1.0).abs() < 0.03,
        "O2 rise {rise} mM against {analytic} mM"
    );

    // The core (r < 60 µm) against the surface shell and published spheroids.
    let mmhg = 1.35e-3; // mM O2 per mmHg (baseline: 0.054 mM ≈ 40 mmHg)
    let core = |f: &[f64]| shell(f, 0.0, 60.0);
    let rim = |f: &[f64]| shell(f, radius - 40.0, radius);
    let medium_o2 = match o2_species.boundary[0] {
        config::BoundaryCondition::Dirichlet { value_mm } => value_mm,
        other => panic!("the medium's O2 is not held: {other:?}"),
    };
    let r_max = (6.0 * d * medium_o2 / vmax).sqrt();
    eprintln!(
        "core: O2 {:.1} mmHg (rim {:.1}); an anoxic core needs r > R_max = sqrt(6 D C_medium / M) = {r_max:.0} µm",
        core(&o2) / mmhg,
        rim(&o2) / mmhg
    );
    // [Swi09]: HCT116 spheroids of radius ≈ 300 µm without CA9 (the scenario's cells: no
    // extracellular carbonic anhydrase) reach pHe ≈ 6.9 at the core, read from confocal
    // dye images; the band allows 0.15 on either side for that reading [E].
    let swi09_core_phe = 6.9;
    eprintln!(
        "core: pHe {:.3} (rim {:.3}, medium 7.40); HCT116 spheroids r ≈ 300 µm without CA9: core pHe ≈ {swi09_core_phe} [Swi09]",
        core(&ph),
        rim(&ph)
    );
    assert!(
        (core(&ph) - swi09_core_phe).abs() < 0.15,
        "core pHe {} against ≈ {swi09_core_phe} [Swi09]",
        core(&ph)
    );
    eprintln!(
        "core: lactate {:.2} mM (rim {:.2} mM, medium 0)",
        core(&lac),
        rim(&lac)
    );
    // pHi (chemistry/intracellular_ph.toml): NHE1 holds it at its 7.2 set point, as nothing
    // in the model inhibits it in acid; reported, not asserted.
    let phi = common::field_at(&out, "pHi", 0.0);
    eprintln!(
        "core: pHi {:.3} (rim {:.3}); HCT116 spheroids r ≈ 300 µm: core pHi ≈ 6.3 without CA9, ≈ 6.6 with CA9 [Swi09]: not met",
        core(&phi),
        rim(&phi)
    );
    assert!(core(&o2) < rim(&o2), "O2 does not fall toward the core");
    assert!(
        core(&ph) < rim(&ph) - 0.05,
        "pHe does not fall toward the core"
    );
    assert!(
        core(&lac) > rim(&lac) + 0.5,
        "lactate does not build up in the core"
    );
}
