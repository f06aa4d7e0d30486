//! Intravenous delivery (`[plasma.<species>]`, exchange with `blood_mm = "plasma"`,
//! docs/scientific-model.md §11): the plasma curve against the analytic one- and
//! two-compartment solutions, and extravasation from leaky tumour capillaries against
//! P·S·C_p integrated over the capillaries' own surface (2πr × length), with the
//! tumour-to-normal accumulation ratio that permeability alone (EPR) gives.

mod common;

use ionfield::config::{self, scenario::Region};
use ionfield::model::{Model, TISSUE_ID_MASK};

/// 320 × 320 × 160 µm, 20 µm voxels: the tumour is the half x < 160 µm; capillaries along
/// z, 80 µm apart, radius 5 µm. The particle does not diffuse here (a hindered 100 nm
/// particle moves ≈ 1 µm²/s, docs/scientific-model.md §11, which would carry tumour uptake
/// across the 160 µm box into the normal half within the hour), so what enters a voxel
/// stays there and each tissue's uptake is its own.
const SCENARIO: &str = r#"
name = "iv_delivery_test"
[grid]
shape = [16, 16, 8]
voxel_um = 20.0
[time]
dt = "30 s"
end = "4 h"
output_interval = "1 h"
[tissues.tumour]
shape = "box"
min_um = [0.0, 0.0, 0.0]
max_um = [160.0, 320.0, 160.0]
[species.NP]
diffusion_um2_per_s = 0.0
[vessel_network]
seed = 3
kind = "straight"
axis = "z"
spacing_um = 80.0
radius_um = 5.0
exchange = { NP = { permeability_um_per_s = { normal = 1e-4, tumour = 2e-3 }, blood_mm = "plasma" } }
[output]
fields = ["NP", "NP_plasma"]
slices = [4]
npy = true
"#;

const ONE_COMPARTMENT: &str = r#"
[plasma.NP]
dose_mm = 0.01
half_life = "2 h"
"#;

/// k10, k12, k21 (1/s) of the two-compartment case: distribution half-life ≈ 40 min,
/// elimination ≈ 5 h [E] (the ranges of docs/scientific-model.md §11).
const K: (f64, f64, f64) = (1e-4, 2e-4, 1e-4);

/// Runs `SCENARIO` + `plasma` on the CPU backend; the output folder and the scenario.
fn run(plasma: &str) -> (tempfile::TempDir, std::path::PathBuf, config::Scenario) {
    run_text(&format!("{SCENARIO}{plasma}"))
}

/// Runs the scenario `text` on the CPU backend.
fn run_text(text: &str) -> (tempfile::TempDir, std::path::PathBuf, config::Scenario) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("iv.toml");
    std::fs::write(&path, text).unwrap();
    let out = common::run_cpu(dir.path(), &path, "run");
    let scenario = config::load_str(text, "iv.toml", &[]).unwrap();
    (dir, out, scenario)
}

fn field(out: &std::path::Path, name: &str, t_s: f64) -> Vec<f64> {
    common::read_npy_f32(&out.join(format!("fields/{name}_t{t_s:09.1}s.npy")))
        .into_iter()
        .map(f64::from)
        .collect()
}

/// The plasma value of the run at `t_s`: the same in every tissue voxel (vessel lumens,
/// which take no dose, hold 0).
fn plasma_at(out: &std::path::Path, t_s: f64) -> f64 {
    let f = field(out, "NP_plasma", t_s);
    let max = f.iter().cloned().fold(0.0, f64::max);
    for &v in &f {
        assert!(v == 0.0 || (v - max).abs() <= 1e-6 * max, "{v} vs {max}");
    }
    max
}

#[test]
fn one_compartment_plasma_curve_is_the_exponential() {
    let (_dir, out, _) = run(ONE_COMPARTMENT);
    let k = std::f64::consts::LN_2 / 7200.0;
    let mut worst = 0.0f64;
    for h in 0..=4 {
        let t = 3600.0 * h as f64;
        let (got, want) = (plasma_at(&out, t), 0.01 * (-k * t).exp());
        eprintln!("t = {h} h: C_p {got:.6e} mM, analytic {want:.6e} mM");
        worst = worst.max((got / want - 1.0).abs());
    }
    eprintln!("worst relative error {worst:.2e}");
    assert!(worst < 2e-3, "{worst}");
}

#[test]
fn two_compartment_plasma_curve_is_the_biexponential() {
    let (k10, k12, k21) = K;
    let (_dir, out, _) = run(&format!(
        "[plasma.NP]\ndose_mm = 0.01\nk10_per_s = {k10:e}\nk12_per_s = {k12:e}\nk21_per_s = {k21:e}\n"
    ));
    // C_p = C0·[(α − k21)e^(−αt) − (β − k21)e^(−βt)]/(α − β), α, β the roots of
    // s² − (k10 + k12 + k21)s + k10·k21 = 0.
    let (sum, prod) = (k10 + k12 + k21, k10 * k21);
    let disc = (sum * sum - 4.0 * prod).sqrt();
    let (a, b) = ((sum + disc) / 2.0, (sum - disc) / 2.0);
    let analytic =
        |t: f64| 0.01 * ((a - k21) * (-a * t).exp() - (b - k21) * (-b * t).exp()) / (a - b);
    let mut worst = 0.0f64;
    for h in 0..=4 {
        let t = 3600.0 * h as f64;
        let (got, want) = (plasma_at(&out, t), analytic(t));
        let one = 0.01 * (-k10 * t).exp();
        eprintln!(
            "t = {h} h: C_p {got:.6e} mM, analytic {want:.6e} mM (without distribution {one:.3e})"
        );
        worst = worst.max((got / want - 1.0).abs());
    }
    eprintln!("worst relative error {worst:.2e}");
    assert!(worst < 2e-3, "{worst}");
    // The distribution phase is there: at 1 h the curve is well below elimination alone.
    assert!(plasma_at(&out, 3600.0) < 0.7 * 0.01 * (-k10 * 3600.0f64).exp());
}

#[test]
fn leaky_tumour_capillaries_take_up_p_s_c_and_the_tumour_accumulates_more() {
    let (_dir, out, scenario) = run(ONE_COMPARTMENT);
    let model = Model::build(&scenario);
    let g = scenario.grid;
    let voxel_um3 = g.voxel_um.powi(3);
    let tumour = scenario
        .tissues
        .iter()
        .position(|t| t.name == "tumour")
        .unwrap() as u32;
    let tissue = |ix: usize| model.mask[ix] & TISSUE_ID_MASK;
    let vessel = |ix: usize| model.mask[ix] & !TISSUE_ID_MASK != 0;

    // Capillary surface, µm²: 2πr × length of the generated segments (all run the box's
    // full height), by the tissue of the voxel column each is in.
    let mut surface = [0.0f64; 2];
    for v in scenario.vessels.iter() {
        let Region::Capsule {
            start_um,
            end_um,
            radius_um,
        } = v.region
        else {
            panic!("{:?}", v.region)
        };
        let (i, j) = (
            (start_um.x / g.voxel_um) as usize,
            (start_um.y / g.voxel_um) as usize,
        );
        let length = (end_um.z.min(g.nz as f64 * g.voxel_um) - start_um.z.max(0.0)).max(0.0);
        let t = tissue(j * g.nx + i) as usize;
        surface[t] += 2.0 * std::f64::consts::PI * radius_um * length;
    }
    eprintln!(
        "capillary surface: normal {:.0} µm², tumour {:.0} µm²",
        surface[0], surface[1]
    );
    assert!(surface[0] > 0.0 && surface[1] > 0.0);

    // The exchange acts through the rasterised surface field vessel_SV (1/µm) of the voxels
    // next to each capillary: its total must be the capillaries' geometric surface.
    let sv_ix = scenario
        .species
        .iter()
        .position(|s| s.name == "vessel_SV")
        .unwrap();
    let sv_area = |t: u32| -> f64 {
        (0..g.n_voxels())
            .filter(|&ix| tissue(ix) == t)
            .map(|ix| model.initial_mm[sv_ix][ix] * voxel_um3)
            .sum()
    };
    let (sv_total, geometric) = (sv_area(0) + sv_area(1), surface[0] + surface[1]);
    eprintln!(
        "Σ vessel_SV·V: {sv_total:.0} µm² against 2πr × length {geometric:.0} µm² ({:+.1} %)",
        100.0 * (sv_total / geometric - 1.0)
    );
    assert!((sv_total / geometric - 1.0).abs() < 0.1);
    // Each voxel takes up dC/dt = k·(C_p − C), k = P·S/V, C_p = C0·e^(−λt), so
    // C(T) = k·C0·(e^(−λT) − e^(−kT))/(k − λ); summed over the voxels of each tissue, and
    // P·S·∫C_p dt (the flux while C ≪ C_p) beside it.
    let lambda = std::f64::consts::LN_2 / 7200.0;
    let t_end = 3600.0;
    let integral = 0.01 * (1.0 - (-lambda * t_end).exp()) / lambda;
    let np = field(&out, "NP", t_end);
    let p = [1e-4, 2e-3];
    for t in [0u32, 1] {
        let voxels: Vec<usize> = (0..np.len())
            .filter(|&ix| !vessel(ix) && tissue(ix) == t)
            .collect();
        let got: f64 = voxels.iter().map(|&ix| np[ix] * voxel_um3).sum();
        let want: f64 = voxels
            .iter()
            .map(|&ix| {
                let k = p[t as usize] * model.initial_mm[sv_ix][ix];
                let c = if k > 0.0 {
                    k * 0.01 * ((-lambda * t_end).exp() - (-k * t_end).exp()) / (k - lambda)
                } else {
                    0.0
                };
                c * voxel_um3
            })
            .sum();
        let flux = p[t as usize] * sv_area(t) * integral;
        eprintln!(
            "{}: uptake in the first hour {got:.4e} µm³·mM, analytic {want:.4e} ({:+.3} %), P·S·∫C_p dt {flux:.4e}",
            if t == tumour { "tumour" } else { "normal" },
            100.0 * (got / want - 1.0)
        );
        assert!(
            (got / want - 1.0).abs() < 0.01,
            "tissue {t}: {got} vs {want}"
        );
        assert!(got < flux && got > 0.85 * flux);
    }

    // EPR: after 4 h the tumour holds more per volume than normal tissue, from the
    // permeability alone (same capillary spacing, same plasma).
    let np = field(&out, "NP", 4.0 * 3600.0);
    let mean = |t: u32| {
        let v: Vec<f64> = (0..np.len())
            .filter(|&ix| !vessel(ix) && tissue(ix) == t)
            .map(|ix| np[ix])
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (t_mean, n_mean) = (mean(tumour), mean(1 - tumour));
    eprintln!(
        "at 4 h: tumour {t_mean:.3e} mM, normal {n_mean:.3e} mM, ratio {:.1}",
        t_mean / n_mean
    );
    assert!(t_mean > 5.0 * n_mean);
}

/// Pore theory (docs/scientific-model.md §11): with tumour pores of 400 nm and normal ones of
/// 6 nm [Hob98], albumin-sized particles (r 3.5 nm) reach both tissues, 100 nm liposomes
/// (r 50 nm) only the tumour, and the tumour takes up the small ones faster.
#[test]
fn particle_size_decides_which_capillaries_let_it_through() {
    let uptake = |radius_nm: f64| -> [f64; 2] {
        let exchange = format!(
            "exchange = {{ NP = {{ particle_radius_nm = {radius_nm:?}, pore_radius_nm = {{ normal = 6.0, tumour = 400.0 }}, pore_fraction_per_um = 2.2e-5, blood_mm = \"plasma\" }} }}"
        );
        let text = SCENARIO.replace(
            "exchange = { NP = { permeability_um_per_s = { normal = 1e-4, tumour = 2e-3 }, blood_mm = \"plasma\" } }",
            &exchange,
        );
        assert_ne!(text, SCENARIO);
        let (_dir, out, scenario) = run_text(&format!("{text}{ONE_COMPARTMENT}"));
        let model = Model::build(&scenario);
        let np = field(&out, "NP", 4.0 * 3600.0);
        let mut sum = [0.0; 2];
        for (ix, v) in np.iter().enumerate() {
            if model.mask[ix] & !TISSUE_ID_MASK == 0 {
                sum[(model.mask[ix] & TISSUE_ID_MASK) as usize] += v;
            }
        }
        sum
    };
    let (small, large) = (uptake(3.5), uptake(50.0));
    eprintln!("4 h uptake (sum of mM over voxels), normal / tumour: r 3.5 nm {small:?}, r 50 nm {large:?}");
    assert!(small[0] > 0.0 && small[1] > small[0]);
    assert_eq!(large[0], 0.0);
    assert!(large[1] > 0.0 && large[1] < small[1]);
}

#[test]
fn plasma_errors_name_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("[plasma.NP]\ndose_mm = 0.01\n", "plasma.NP", "half_life"),
        (
            "[plasma.NP]\ndose_mm = 0.01\nhalf_life = \"2 h\"\nk10_per_s = 1e-4\n",
            "plasma.NP",
            "either",
        ),
        (
            "[plasma.NP]\ndose_mm = -1.0\nhalf_life = \"2 h\"\n",
            "plasma.NP.dose_mm",
            "mM",
        ),
        (
            "[plasma.XX]\ndose_mm = 0.01\nhalf_life = \"2 h\"\n",
            "plasma.XX",
            "NP",
        ),
        (
            "[plasma.NP]\ndose_mm = 0.01\nhalf_life = \"2 h\"\ntime = \"9 h\"\n",
            "plasma.NP.time",
            "end",
        ),
        ("", "exchange.NP.blood_mm", "[plasma.NP]"),
    ];
    // A particle by size takes all three of its keys, and no permeability beside them.
    let pores = SCENARIO.replace(
        "permeability_um_per_s = { normal = 1e-4, tumour = 2e-3 }",
        "permeability_um_per_s = 1e-3, particle_radius_nm = 50.0",
    );
    let e = config::load_str(&format!("{pores}{ONE_COMPARTMENT}"), "iv.toml", &[])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("vessel_network.exchange.NP") && e.contains("pore_fraction_per_um"),
        "{e}"
    );
    for (plasma, field, fix) in cases {
        let text = format!("{SCENARIO}{plasma}");
        let e = config::load_str(&text, "iv.toml", &[])
            .err()
            .unwrap_or_else(|| panic!("accepted:\n{plasma}"))
            .to_string();
        assert!(e.contains(field) && e.contains(fix), "{plasma}\n→ {e}");
    }
}

/// A particle's diffusivity from its size (`particle = { radius_nm, hindrance }`): a
/// Gaussian cloud of 10 nm and of 100 nm particles spreads in x as σ² = σ0² + 2·D·t with
/// D = k_B·T/(6π·η·r)·H (Stokes–Einstein at 37 °C, written out here). The box is thin in
/// y and z; diffusion is separable, so the cloud's x-marginal (summed over y and z, with
/// zero-flux faces) is a 1D Gaussian whatever y and z do, and the walls in x lie 3.4σ out.
#[test]
fn particle_diffusivity_from_size_spreads_a_cloud_as_2dt() {
    let (t_end, sigma0, h) = (300.0, 40.0, 10.0);
    for (radius_nm, hindrance) in [(5.0, 0.3), (50.0, 0.3)] {
        let (_dir, out, scenario) = run_text(&format!(
            r#"
name = "particle_spread"
[grid]
shape = [80, 4, 4]
voxel_um = {h}
[time]
dt = "1 s"
end = "{t_end} s"
output_interval = "{t_end} s"
[species.NP]
particle = {{ radius_nm = {radius_nm}, hindrance = {hindrance} }}
[[dosing]]
species = "NP"
time_s = 0.0
shape = "gaussian"
centre_um = [400.0, 20.0, 20.0]
sigma_um = {sigma0}
amount_mm = 1.0
[output]
fields = ["NP"]
slices = [2]
npy = true
"#
        ));
        // k_B·T/(6π·η·r) at 310.15 K, η 0.69 mPa·s, in µm²/s.
        let d0 = 1.380_649e-23 * 310.15 / (6.0 * std::f64::consts::PI * 0.69e-3 * radius_nm * 1e-9)
            * 1e12;
        let d = d0 * hindrance;
        assert!(
            (scenario.species[0].diffusion_um2_per_s / d - 1.0).abs() < 1e-12,
            "configured D {} vs {d}",
            scenario.species[0].diffusion_um2_per_s
        );
        let variance = |t: f64| {
            let f = field(&out, "NP", t);
            let (nx, plane) = (80, 16);
            let marginal: Vec<f64> = (0..nx)
                .map(|i| (0..plane).map(|p| f[p * nx + i]).sum())
                .collect();
            let mass: f64 = marginal.iter().sum();
            let x = |i: usize| (i as f64 + 0.5) * h;
            let mean = (0..nx).map(|i| x(i) * marginal[i]).sum::<f64>() / mass;
            (0..nx)
                .map(|i| (x(i) - mean).powi(2) * marginal[i])
                .sum::<f64>()
                / mass
        };
        let grown = variance(t_end) - variance(0.0);
        let want = 2.0 * d * t_end;
        eprintln!(
            "r {radius_nm} nm, H {hindrance}: D {d:.3} µm²/s; σ² grew by {grown:.1} µm² in {t_end} s, 2Dt = {want:.1} µm² ({:+.2} %)",
            100.0 * (grown / want - 1.0)
        );
        assert!((grown / want - 1.0).abs() < 0.01, "{grown} vs {want}");
    }
}

/// `configs/iv_fe_liposome.toml` (the default's chemistry in the spherical-tumour block,
/// with liposomal iron given into the blood) on one octant of that block, against the same run with a zero bolus:
/// particles leave only the leaky tumour capillaries (EPR from pore theory), are taken up
/// into lysosomes and dissolve there, and the Fe2+ they release damages the tumour and
/// spares normal tissue. Figures printed (run with `--nocapture`).
#[test]
fn intravenous_liposomal_iron_reaches_the_tumour_only_and_damages_it() {
    let config =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/iv_fe_liposome.toml");
    let (treated, control) = std::thread::scope(|s| {
        let t = s.spawn(|| common::run_config_with(&config, "cpu", common::SPHERE_OCTANT));
        let mut sets = common::SPHERE_OCTANT.to_vec();
        sets.push("plasma.NP_lip.dose_mm=0");
        let c = common::run_config_with(&config, "cpu", &sets);
        (t.join().expect("treated run"), c)
    });
    let (tumour, normal) = (treated.tissue_id("tumour"), treated.tissue_id("normal"));
    let model = Model::build(&treated.scenario);
    let in_tissue = |t: u32| -> Vec<bool> {
        (0..treated.tissue.len())
            .map(|i| treated.tissue[i] == t && model.mask[i] & !TISSUE_ID_MASK == 0)
            .collect()
    };
    let (tum, nor) = (in_tissue(tumour), in_tissue(normal));
    let mean = |run: &common::PresetRun, f: &str, h: f64, pick: &[bool]| {
        let v = field(&run.out, f, h * 3600.0);
        let (s, n) = (0..v.len())
            .filter(|&i| pick[i])
            .fold((0.0, 0usize), |(s, n), i| (s + v[i], n + 1));
        s / n as f64
    };
    // The plasma curve: one compartment, t½ 8 h.
    let cp = mean(&treated, "NP_lip_plasma", 4.0, &tum);
    let cp_want = 3.6 * (-std::f64::consts::LN_2 * 4.0 / 8.0).exp();
    // Particles in each tissue at 4 h (interstitium + lysosomes).
    let particles =
        |pick: &[bool]| mean(&treated, "NP_lip", 4.0, pick) + mean(&treated, "NP_lys", 4.0, pick);
    let (p_t, p_n) = (particles(&tum), particles(&nor));
    let (fe_t, fe_c) = (
        mean(&treated, "Fe2", 24.0, &tum),
        mean(&control, "Fe2", 24.0, &tum),
    );
    let (v_t, v_c) = (
        mean(&treated, "viab", 24.0, &tum),
        mean(&control, "viab", 24.0, &tum),
    );
    let v_n = mean(&treated, "viab", 24.0, &nor);
    eprintln!(
        "i.v. liposomal Fe: plasma at 4 h {cp:.4} mM (analytic {cp_want:.4}); particles at 4 h tumour {p_t:.3e}, normal {p_n:.3e} mM (ratio {:.1}); tumour Fe2+ at 24 h {fe_t:.4} mM (untreated {fe_c:.4}); tumour viab at 24 h {v_t:.3} (untreated {v_c:.3}); normal {v_n:.4}",
        p_t / p_n
    );
    assert!(
        (cp / cp_want - 1.0).abs() < 2e-3,
        "plasma {cp} vs {cp_want}"
    );
    assert!(p_t > 5.0 * p_n, "no EPR: tumour {p_t}, normal {p_n}");
    assert!(
        mean(&treated, "NP_lys", 4.0, &tum) > 0.0,
        "nothing taken up into lysosomes"
    );
    assert!(fe_t > 2.0 * fe_c, "no iron released in the tumour");
    assert!(v_t < v_c - 0.03, "no damage in the tumour");
    assert!(v_n > 0.99, "normal tissue not spared: {v_n}");
}
