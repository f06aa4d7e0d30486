//! Heat and light (`configs/chemistry/photothermal.toml` and the `bioheat.toml` it
//! includes, docs/scientific-model.md §12) against closed forms: light fluence by the
//! diffusion approximation (exp(−µ_eff·z)), the Pennes bioheat equation (steady profile
//! with perfusion; the heated half-space transient; the heat balance under the laser and
//! under ultrasound, `configs/chemistry/sonodynamic.toml`), the Arrhenius factor of the
//! Fenton reaction, the CEM43 thermal dose and the Arrhenius damage integral; and
//! photodynamic singlet oxygen (`configs/chemistry/photodynamic.toml`) against an
//! independent RK4 of its equations. Each test includes the shipped baseline and chemistry
//! files, so it checks their parameters and expressions, and runs the coupled scheme on
//! both backends: the CPU twin in f64 and the device twin in f32 (lavapipe here). Each
//! prints what it measured, per backend.

mod common;

use common::{centre_um, scenario, Backend};
use ionfield::config::Scenario;
use ionfield::cpu::CpuEngine;
use ionfield::engine::Engine;
use ionfield::model::Model;

/// Baseline + photothermal on `shape` voxels of `voxel_um`, all tumour, coupled scheme at
/// `tolerance`, first step `dt_s`, without the lumped heat loss into the body (`w_body`
/// 0: these slabs are the whole body), with `extra` TOML appended (species boundaries,
/// parameter overrides, initial values).
fn photothermal(
    shape: [usize; 3],
    voxel_um: f64,
    dt_s: f64,
    tolerance: f64,
    extra: &str,
) -> Scenario {
    with_chemistry(&["photothermal"], shape, voxel_um, dt_s, tolerance, extra)
}

/// [`photothermal`] with the chemistry files `files` (names in configs/chemistry/) after
/// the baseline.
fn with_chemistry(
    files: &[&str],
    shape: [usize; 3],
    voxel_um: f64,
    dt_s: f64,
    tolerance: f64,
    extra: &str,
) -> Scenario {
    let root = env!("CARGO_MANIFEST_DIR");
    let size = |n: usize| n as f64 * voxel_um;
    let includes: String = files
        .iter()
        .map(|f| format!(", \"{root}/configs/chemistry/{f}.toml\""))
        .collect();
    scenario(&format!(
        r#"name = "photothermal_test"
include = ["{root}/configs/chemistry/baseline.toml"{includes}]
[grid]
shape = [{}, {}, {}]
voxel_um = {voxel_um}
[tissues.tumour]
shape = "box"
min_um = [0.0, 0.0, 0.0]
max_um = [{}, {}, {}]
[time]
scheme = "coupled"
dt_s = {dt_s}
end_s = {dt_s}
tolerance = {tolerance}
[parameters.w_body]
value = 0.0
unit = "1/s"
source = "test: the slab's own faces carry the heat (no lumped loss into a body around it)"
{extra}
"#,
        shape[0],
        shape[1],
        shape[2],
        size(shape[0]),
        size(shape[1]),
        size(shape[2]),
    ))
}

/// Both engines: the CPU twin (f64) and the device twin (f32, on whatever adapter is
/// present, lavapipe included). The closed forms below hold on each; where f32 cannot
/// carry a tolerance the CPU is asked for, the device runs at [`tolerance`]'s floor and is
/// held to a bound stated beside the CPU's.
const BACKENDS: [Backend; 2] = [Backend::Cpu, Backend::Gpu];

/// The CPU only, for the two closed forms whose device runs cost most on lavapipe (the
/// heated half-space: 100 s; the ultrasound balance: 120 s, against 5 and 8 s on the CPU):
/// the terms they check are on the device in the other tests (conduction and the held face
/// in the Pennes profile, a timer-switched source in the laser balance; the ultrasound
/// source is one more expression of the same generated kernel).
const CPU_ONLY: [Backend; 1] = [Backend::Cpu];

/// The step tolerance a test asks of `backend`: `cpu` on the CPU; at least 1e-5 on the
/// device, whose f32 state rounds at 6e-8 relative (a tighter tolerance would reject on
/// rounding alone).
fn tolerance(backend: Backend, cpu: f64) -> f64 {
    match backend {
        Backend::Cpu => cpu,
        Backend::Gpu => cpu.max(1e-5),
    }
}

/// `cpu` on the CPU, `gpu` on the device: an assertion's bound per backend.
fn bound(backend: Backend, cpu: f64, gpu: f64) -> f64 {
    match backend {
        Backend::Cpu => cpu,
        Backend::Gpu => gpu,
    }
}

/// Runs `sc` for `span_s` on `backend` (coupled scheme) and returns the named fields as
/// f64: the CPU twin's own f64 values, the device's widened from f32. `None` only when GPU
/// tests are knowingly skipped.
fn run(backend: Backend, sc: &Scenario, span_s: f64, names: &[&str]) -> Option<Vec<Vec<f64>>> {
    run_at(backend, sc, &[span_s], names).map(|mut v| v.remove(0))
}

/// [`run`] with one engine reading the fields at each of the increasing times `at_s`.
fn run_at(
    backend: Backend,
    sc: &Scenario,
    at_s: &[f64],
    names: &[&str],
) -> Option<Vec<Vec<Vec<f64>>>> {
    let started = std::time::Instant::now();
    let model = Model::build(sc);
    let ixs: Vec<usize> = names
        .iter()
        .map(|n| {
            sc.species
                .iter()
                .position(|sp| sp.name == *n)
                .unwrap_or_else(|| panic!("no species {n}"))
        })
        .collect();
    let mut engine: Box<dyn Engine> = match backend {
        Backend::Cpu => Box::new(CpuEngine::new(&model)),
        Backend::Gpu => common::engine(backend, &model)?,
    };
    assert!(engine.is_adaptive());
    let mut out = Vec::new();
    let mut t = 0.0;
    for &until in at_s {
        let (reached, _) = engine
            .advance_adaptive(until - t, u64::MAX)
            .expect("advance");
        assert!((reached - (until - t)).abs() <= 1e-9 * until);
        t = until;
        out.push(match backend {
            // The CPU twin's f64 state, not the f32 of `read_fields`.
            Backend::Cpu => {
                let state = engine.save_state().expect("state");
                assert_eq!(state.value_bytes, 8);
                ixs.iter()
                    .map(|&s| {
                        state.fields[s]
                            .chunks_exact(8)
                            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                            .collect()
                    })
                    .collect()
            }
            Backend::Gpu => engine
                .read_fields(&ixs)
                .expect("read back")
                .into_iter()
                .map(|f| f.into_iter().map(f64::from).collect())
                .collect(),
        });
    }
    eprintln!(
        "({backend:?}: {} s of model time in {:.2} s)",
        at_s.last().unwrap(),
        started.elapsed().as_secs_f64()
    );
    Some(out)
}

/// Value along x of a field of shape [n, 3, 3] (the middle row).
fn along_x(f: &[f64], n: usize, i: usize) -> f64 {
    f[i + n * (1 + 3)]
}

/// A planar source (Φ held at 1, the surface fluence rate, on the x = 0 face) in a 40 mm
/// slab: the fluence
/// falls as exp(−µ_eff·x) with µ_eff = sqrt(3·µ_a·(µ_a + µ_s′)) = 2.498 /cm (808 nm:
/// µ_a 0.2, µ_s′ 10.2 /cm), within 1 % over the first 25 mm (6 penetration depths; the
/// far face at 40 mm changes the profile by e^(−2·10) there).
#[test]
fn light_fluence_falls_as_exp_of_minus_mu_eff_depth() {
    let n = 200;
    let dx = 200.0;
    for backend in BACKENDS {
        let sc = photothermal(
            [n, 3, 3],
            dx,
            0.01,
            tolerance(backend, 1e-3),
            "[species.Phi]\nboundary = { all = \"zero_flux\", x_min = 1.0 }\n",
        );
        let Some(f) = run(backend, &sc, 10.0, &["Phi"]) else {
            continue;
        };
        let phi = &f[0];
        let mu_eff = (3.0f64 * 0.2 * (0.2 + 10.2)).sqrt() / 1e4; // 1/µm
        let x0 = centre_um(0, dx);
        let mut worst = 0.0f64;
        for i in 0..125 {
            let x = centre_um(i, dx);
            let exact = (-(x - x0) * mu_eff).exp();
            worst = worst.max((along_x(phi, n, i) - exact).abs() / exact);
        }
        // The decay constant from the profile between 5 and 20 mm.
        let (a, b) = (25, 100);
        let fitted =
            (along_x(phi, n, a) / along_x(phi, n, b)).ln() / (centre_um(b, dx) - centre_um(a, dx));
        println!(
            "{backend:?}: light: Φ(x)/exp(−µ_eff·x) within {worst:.2e} over 25 mm; µ_eff fitted {:.4} /cm against {:.4} /cm (δ = {:.2} mm)",
            fitted * 1e4,
            mu_eff * 1e4,
            1e-3 / mu_eff
        );
        assert!(worst < 0.01, "{backend:?}: {worst}");
        assert!((fitted / mu_eff - 1.0).abs() < 0.01, "{backend:?}");
    }
}

/// When a 300 s dose of a timer (`laser`, `sono`) starts to ramp off, s.
const SWITCH_OFF_S: f64 = 299.0;

/// Closed form of the heat balance dE/dt = S·s(t) − ω·E, E(0) = 0, for a source S switched
/// by a 300 s timer (s = 1 until [`SWITCH_OFF_S`], then e^(−(t − 299)), its last second's
/// ramp): (E at the switch-off, E at `later_s`), K·voxels.
fn switched_heat(s: f64, w: f64, later_s: f64) -> (f64, f64) {
    let on = s / w * (1.0 - (-w * SWITCH_OFF_S).exp());
    let tail = later_s - SWITCH_OFF_S;
    let later = (-w * tail).exp() * (on + s * (1.0 - (-(1.0 - w) * tail).exp()) / (1.0 - w));
    (on, later)
}

/// The laser switch and the heat balance: light from the x = 0 face of a 12 mm slab, the
/// laser on for 300 s (`laser` starts at 300 s of irradiation time), tumour perfusion
/// ω = 5e-4 /s, zero-flux faces for heat. Conduction moves heat but keeps its total, so
/// E = Σ dT follows dE/dt = S·s(t) − ω·E with S = Σ heat_gain·µ_a·fluence_0·Φ and s(t)
/// the switch: 1 until t = 299 s, then e^(−(t − 299)) (the last second's ramp). Closed
/// form at the end of irradiation and 15 min later; within 1e-3. The timer is spent.
#[test]
fn the_laser_heats_while_on_and_the_heat_balance_holds() {
    let (n, dx) = (24usize, 500.0f64);
    for backend in BACKENDS {
        let sc = photothermal(
            [n, 3, 3],
            dx,
            0.01,
            tolerance(backend, 1e-5),
            "[species.Phi]\nboundary = { all = \"zero_flux\", x_min = 1.0 }\n[species.laser.initial]\nuniform_mm = 300.0\n",
        );
        let (w, heat_gain, mua, fluence_0) = (5e-4f64, 2.632f64, 2e-5f64, 1000.0f64);
        let energy = |f: &[Vec<f64>]| {
            let e: f64 = f[0].iter().sum();
            let s: f64 = f[1]
                .iter()
                .map(|phi| heat_gain * mua * fluence_0 * phi)
                .sum();
            (e, s, f[2][0], f[0][1 + n * 4])
        };
        let (on, later) = (SWITCH_OFF_S, 1200.0);
        let Some(f) = run_at(backend, &sc, &[on, later], &["dT", "Phi", "laser"]) else {
            continue;
        };
        let (e_on, s_on, _, dt_surface) = energy(&f[0]);
        let (e_later, s_later, timer, _) = energy(&f[1]);
        let (want_on, _) = switched_heat(s_on, w, later);
        let (_, want_later) = switched_heat(s_later, w, later);
        println!(
            "{backend:?}: laser 300 s at 1 W/cm²: Σ dT {e_on:.4} K·voxels at 299 s (closed form {want_on:.4}), {e_later:.4} at 1200 s ({want_later:.4}); dT under the surface {dt_surface:.3} K at 299 s; timer left {timer:.2e} s"
        );
        assert!(
            (e_on / want_on - 1.0).abs() < 1e-3,
            "{backend:?}: {e_on} vs {want_on}"
        );
        assert!(
            (e_later / want_later - 1.0).abs() < 1e-3,
            "{backend:?}: {e_later} vs {want_later}"
        );
        assert!(e_later < e_on, "the tissue did not cool after the laser");
        assert!(timer < 1e-6, "{backend:?}: timer {timer}");
    }
}

/// Acoustic heating (`configs/chemistry/sonodynamic.toml` through bioheat.toml): the
/// ultrasound beam enters a 10 mm column through its z_max face, attenuated at 2α with
/// α = 0.092 Np/cm (tumour), and heats at q = 2·α_abs·I/(ρc) with α_abs = α, I 1 W/cm²,
/// ρc 3.8 J/(cm³·K). With zero-flux faces and tumour perfusion ω = 5e-4 /s, E = Σ dT
/// follows the closed form of [`the_laser_heats_while_on_and_the_heat_balance_holds`],
/// with the source S = Σ q(z) evaluated here from the beam's formula (not read from the
/// run); within 1e-3 at the end of 300 s of sonication and 15 min later.
#[test]
fn ultrasound_heats_by_its_absorbed_intensity_and_the_heat_balance_holds() {
    let (n, dx) = (50usize, 200.0f64);
    // 2α in 1/µm; q per unit relative intensity, K/s: 2·α·1e4 µm/cm·1 W/cm² / 3.8.
    let (two_alpha, w) = (2.0 * 0.092e-4f64, 5e-4f64);
    let q0 = 2.0 * 0.092 / 3.8;
    let depth = |k: usize| n as f64 * dx - (k as f64 + 0.5) * dx;
    let s_total: f64 = (0..n)
        .map(|k| 9.0 * q0 * (-two_alpha * depth(k)).exp())
        .sum();
    for backend in CPU_ONLY {
        let sc = with_chemistry(
            &["sonodynamic"],
            [3, 3, n],
            dx,
            0.01,
            tolerance(backend, 1e-5),
            "[species.sono.initial]\nuniform_mm = 300.0\n",
        );
        let energy = |f: &[Vec<f64>]| {
            (
                f[0].iter().sum::<f64>(),
                f[1][0],
                f[0][4 + 9 * (n - 1)],
                f[0][4],
            )
        };
        let (on, later) = (SWITCH_OFF_S, 1200.0);
        let Some(f) = run_at(backend, &sc, &[on, later], &["dT", "sono"]) else {
            continue;
        };
        let (e_on, _, top, bottom) = energy(&f[0]);
        let (e_later, timer, _, _) = energy(&f[1]);
        let (want_on, want_later) = switched_heat(s_total, w, later);
        println!(
            "{backend:?}: ultrasound 300 s at 1 W/cm²: Σ dT {e_on:.4} K·voxels at 299 s (closed form {want_on:.4}), {e_later:.4} at 1200 s ({want_later:.4}); dT {top:.4} K under the transducer, {bottom:.4} K 10 mm deep; timer left {timer:.2e} s"
        );
        assert!(
            (e_on / want_on - 1.0).abs() < 1e-3,
            "{backend:?}: {e_on} vs {want_on}"
        );
        assert!(
            (e_later / want_later - 1.0).abs() < 1e-3,
            "{backend:?}: {e_later} vs {want_later}"
        );
        assert!(
            top > bottom,
            "the deep tissue heated more: {top} vs {bottom}"
        );
        assert!(timer < 1e-6, "{backend:?}: timer {timer}");
    }
}

/// Pennes, steady, 1D: the face x = 0 held 5 K above arterial temperature, tumour
/// perfusion ω = 5e-4 /s, α = 1.32e5 µm²/s, a 64 mm slab with a zero-flux far face:
/// ΔT = 5·cosh((L − x)/λ)/cosh((L − x0)/λ), λ = sqrt(α/ω) = 16.2 mm; within 0.5 %.
#[test]
fn pennes_steady_profile_with_perfusion_matches_the_cosh_solution() {
    let (n, dx) = (64usize, 1000.0f64);
    let (alpha, w) = (1.32e5f64, 5e-4f64);
    let lambda = (alpha / w).sqrt();
    let l = n as f64 * dx;
    let x0 = centre_um(0, dx);
    for backend in BACKENDS {
        let sc = photothermal(
            [n, 3, 3],
            dx,
            1.0,
            tolerance(backend, 1e-4),
            "[species.dT]\nboundary = { all = \"zero_flux\", x_min = 5.0 }\n",
        );
        // Ten perfusion times: the slowest mode decays as exp(−(ω + α(π/2L)²)t).
        let Some(f) = run(backend, &sc, 20_000.0, &["dT"]) else {
            continue;
        };
        let dt = &f[0];
        let mut worst = 0.0f64;
        for i in 0..n {
            let x = centre_um(i, dx);
            let exact = 5.0 * ((l - x) / lambda).cosh() / ((l - x0) / lambda).cosh();
            worst = worst.max((along_x(dt, n, i) - exact).abs() / exact);
        }
        println!(
            "{backend:?}: Pennes steady: ΔT within {worst:.2e} of the cosh profile (λ = {:.1} mm); ΔT at 20 mm {:.3} K",
            lambda / 1e3,
            along_x(dt, n, 20)
        );
        assert!(worst < 5e-3, "{backend:?}: {worst}");
    }
}

/// Pennes, transient, no perfusion: the face x = 0 held 10 K above arterial temperature
/// from t = 0 in tissue at 37 °C: ΔT = 10·erfc(x/(2·sqrt(α·t))) at t = 30 s (penetration
/// 2·sqrt(α·t) = 4.0 mm; the zero-flux far face at 12.75 mm reflects 2·10·erfc(3.2) =
/// 1.2e-4 K); within 1 % of the 10 K.
#[test]
fn heated_half_space_follows_the_erfc_solution() {
    let (n, dx) = (128usize, 100.0f64);
    let t = 30.0;
    let alpha = 1.32e5f64;
    let x0 = centre_um(0, dx);
    for backend in CPU_ONLY {
        let sc = photothermal(
            [n, 3, 3],
            dx,
            0.01,
            tolerance(backend, 1e-4),
            "[species.dT]\nboundary = { all = \"zero_flux\", x_min = 10.0 }\n[parameters]\nw_perf = { value = 0.0, unit = \"1/s\", source = \"test: no perfusion\" }\n",
        );
        let Some(f) = run(backend, &sc, t, &["dT"]) else {
            continue;
        };
        let dt = &f[0];
        let mut worst = 0.0f64;
        for i in 0..n {
            let x = centre_um(i, dx) - x0;
            let exact = 10.0 * erfc(x / (2.0 * (alpha * t).sqrt()));
            worst = worst.max((along_x(dt, n, i) - exact).abs());
        }
        println!("{backend:?}: heated half-space at 30 s: ΔT within {worst:.3e} K of 10·erfc(x/2√(αt)); ΔT at 2 mm {:.3} K", along_x(dt, n, 20));
        assert!(worst < 0.1, "{backend:?}: {worst} K");
    }
}

/// erfc by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
fn erfc(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.3275911 * x.abs());
    let poly = t
        * (0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let e = poly * (-x * x).exp();
    if x >= 0.0 {
        e
    } else {
        2.0 - e
    }
}

/// One well-mixed voxel of tumour held at 37 + `dt_k` °C (no perfusion, no light) with
/// `fe2_mm` Fe2+ (the baseline's labile 3 µM when `None`) and 0.05 mM H2O2, run for
/// `span_s` on `backend`: returns (Ox, CEM43, viab), `None` when GPU tests are knowingly
/// skipped.
fn held_temperature(
    backend: Backend,
    dt_k: f64,
    fe2_mm: Option<f64>,
    span_s: f64,
) -> Option<(f64, f64, f64)> {
    let fe2 = fe2_mm.map_or(String::new(), |c| {
        format!("[species.Fe2.initial]\ntissue_mm = {{ tumour = {c} }}\n")
    });
    let sc = photothermal(
        [1, 1, 1],
        20.0,
        0.001,
        tolerance(backend, 1e-6),
        &format!(
            "[species.dT.initial]\nuniform_mm = {dt_k}\n{fe2}[parameters]\nw_perf = {{ value = 0.0, unit = \"1/s\", source = \"test: no perfusion\" }}\n"
        ),
    );
    let f = run(backend, &sc, span_s, &["Ox", "CEM43", "viab", "dT"])?;
    assert!(
        (f[3][0] - dt_k).abs() < bound(backend, 1e-9, 1e-6),
        "dT moved: {}",
        f[3][0]
    );
    Some((f[0][0], f[1][0], f[2][0]))
}

/// The Fenton reaction's Arrhenius factor (E_a 39.5 kJ/mol): from 37 to 42 °C it runs
/// exp((E_a/R)·(1/310.15 − 1/315.15)) = 1.275 times faster, as the file states (×1.28).
/// Measured by the oxidation (Ox) the first 10 ms make: OH· is in quasi-steady state with
/// the Fenton rate, so Ox grows with it.
#[test]
fn fenton_runs_faster_by_its_arrhenius_factor() {
    let want = (4751.0f64 * (1.0 / 310.15 - 1.0 / 315.15)).exp();
    assert!((want - 1.275).abs() < 5e-3, "{want}");
    for backend in BACKENDS {
        let Some((ox37, _, _)) = held_temperature(backend, 0.0, Some(0.5), 0.01) else {
            continue;
        };
        let (ox42, _, _) = held_temperature(backend, 5.0, Some(0.5), 0.01).expect("42 °C");
        println!(
            "{backend:?}: Fenton 37 → 42 °C: Ox ratio {:.4}, Arrhenius factor {want:.4}",
            ox42 / ox37
        );
        assert!(
            (ox42 / ox37 / want - 1.0).abs() < 5e-3,
            "{backend:?}: {}",
            ox42 / ox37
        );
    }
}

/// CEM43 at constant temperature: t·R^(43 − T) minutes, R = 0.5 at or above 43 °C and
/// 0.25 below (10 min at 45 °C → 40 min; at 41 °C → 0.625 min; at 43 °C → 10 min); and
/// the Arrhenius damage integral: viab falls as exp(−k(T)·t) with
/// k(T) = 5.355e-6 /s · exp(75535·(1/316.15 − 1/T)) [Hen47], relative to 37 °C (the
/// other insults are the same in both voxels: no labile iron, so no heat-dependent
/// Fenton chemistry and oxidative damage).
#[test]
fn cem43_and_thermal_damage_follow_their_closed_forms_at_constant_temperature() {
    let span = 600.0;
    for backend in BACKENDS {
        let Some((_, _, viab37)) = held_temperature(backend, 0.0, Some(0.0), span) else {
            continue;
        };
        for (dt_k, cem_want) in [(8.0, 40.0), (4.0, 0.625), (6.0, 10.0)] {
            let (_, cem, viab) =
                held_temperature(backend, dt_k, Some(0.0), span).expect("held run");
            let k = |dt: f64| 5.355e-6 * (75535.0f64 * (1.0 / 316.15 - 1.0 / (310.15 + dt))).exp();
            let viab_want = (-(k(dt_k) - k(0.0)) * span).exp();
            println!(
                "{backend:?}: {:.0} °C for 10 min: CEM43 {cem:.6} min (closed form {cem_want}); viab / viab(37 °C) {:.6} (closed form {viab_want:.6})",
                37.0 + dt_k,
                viab / viab37
            );
            assert!(
                (cem / cem_want - 1.0).abs() < bound(backend, 1e-6, 1e-4),
                "{backend:?}: {cem}"
            );
            assert!(
                (viab / viab37 / viab_want - 1.0).abs() < bound(backend, 1e-4, 1e-3),
                "{backend:?}"
            );
        }
    }
}

/// Photodynamic singlet oxygen in one well-mixed voxel of tumour under constant light and
/// O2 (Φ and O2 held on every face, which holds a one-voxel grid's voxel: Φ = 1, O2 0.05
/// mM), 100 mW/cm² for 600 s, 5 µM photosensitiser. [Wan10]'s equations,
/// d[¹O2]rx/dt = a·PS with a = ξφ·O2/(O2 + β), dPS/dt = −σ(PS + δ)·d[¹O2]rx/dt, then have
/// a closed form: 1/PS(t) = (1/PS0 + 1/δ)·e^(σaδt) − 1/δ and
/// [¹O2]rx(t) = ln((PS0 + δ)/(PS(t) + δ))/σ; within 1e-5 relative. The reacted dose
/// passes the necrosis threshold (0.5 mM) and cells above it die.
#[test]
fn singlet_oxygen_and_photobleaching_follow_their_closed_forms() {
    let (ps0, o2, span) = (0.005f64, 0.05f64, 600.0f64);
    let (sigma, beta, delta) = (0.076f64, 0.0119, 0.033);
    let a = 3.7e-3 * 100.0 * o2 / (o2 + beta);
    let ps = 1.0 / ((1.0 / ps0 + 1.0 / delta) * (sigma * a * delta * span).exp() - 1.0 / delta);
    let so = ((ps0 + delta) / (ps + delta)).ln() / sigma;
    assert!(so > 0.5, "the test dose stays under the threshold: {so}");
    for backend in BACKENDS {
        let sc = with_chemistry(
            &["photothermal", "photodynamic"],
            [1, 1, 1],
            20.0,
            0.001,
            tolerance(backend, 1e-7),
            &format!(
                "[species.Phi]\nboundary = {{ all = 1.0 }}\n[species.O2]\nboundary = {{ all = {o2} }}\n[species.PS.initial]\nuniform_mm = {ps0}\n[species.laser.initial]\nuniform_mm = 1e6\n[parameters]\nfluence_0 = {{ value = 100.0, unit = \"1\", source = \"test: PDT irradiance, mW/cm²\" }}\n"
            ),
        );
        let Some(f) = run(backend, &sc, span, &["PS", "O2", "SOrx", "viab", "Phi"]) else {
            continue;
        };
        // Held values, as stored (f32 on the device).
        let stored = |v: f64| match backend {
            Backend::Cpu => v,
            Backend::Gpu => f64::from(v as f32),
        };
        assert_eq!((f[1][0], f[4][0]), (stored(o2), 1.0), "O2 and Φ not held");
        println!(
            "{backend:?}: PDT 600 s at 100 mW/cm², O2 0.05 mM: PS {:.7e} mM (closed form {ps:.7e}), reacted ¹O2 {:.7e} mM ({so:.7e}); viab {:.4}",
            f[0][0], f[2][0], f[3][0]
        );
        let tol = bound(backend, 1e-5, 1e-3);
        assert!((f[0][0] / ps - 1.0).abs() < tol, "{backend:?}: PS");
        assert!((f[2][0] / so - 1.0).abs() < tol, "{backend:?}: ¹O2");
        assert!(
            f[3][0] < 0.9,
            "no PDT death above the threshold: viab {}",
            f[3][0]
        );
    }
}
