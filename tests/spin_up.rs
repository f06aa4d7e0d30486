//! A spin-up that runs until the baseline has settled (`time.spin_up_tolerance_per_h`),
//! against the analytic relaxation C(t) = C∞ + (C0 − C∞)·e^(−kt): it must end after the
//! first window whose measured drift is within the tolerance, report that drift, leave
//! cumulative species out, and say so when the longest spin-up is spent first.

mod common;

use common::{engine, scenario, Backend};
use ionfield::model::Model;
use ionfield::sim::{Simulation, SpinUpReport};

/// Relaxation rate k, 1/s: one e-fold per hour.
const K_PER_S: f64 = 1.0 / 3600.0;
/// Start and end value of the relaxing species, mM.
const C0_MM: f64 = 2.0;
const CINF_MM: f64 = 1.0;

/// A 3³ block, no diffusion: `a` relaxes from 2 to 1 mM at k; `ox` only grows (a
/// cumulative counter, which the settle test must ignore).
fn toml(scheme: &str, max_spin_up: &str, tol_per_h: f64) -> String {
    format!(
        r#"name = "relax"
[grid]
shape = [3, 3, 3]
voxel_um = 10.0
[time]
{scheme}
end_s = 10.0
spin_up = "{max_spin_up}"
spin_up_tolerance_per_h = {tol_per_h}
[species.a]
diffusion_um2_per_s = 0.0
initial = {{ uniform_mm = {C0_MM} }}
[species.ox]
diffusion_um2_per_s = 0.0
initial = {{ uniform_mm = 0.0 }}
[parameters]
k = {{ value = {K_PER_S}, unit = "1/s", source = "test" }}
c_inf = {{ value = {CINF_MM}, unit = "mM", source = "test" }}
[reactions.supply]
equation = "-> a"
rate = "k * c_inf"
[reactions.loss]
equation = "a ->"
rate = "k * a"
[reactions.count]
equation = "-> ox"
rate = "k * c_inf"
"#
    )
}

/// The spin-up's report and the value of `a` it hands to the therapy, mM.
fn spin_up(
    backend: Backend,
    scheme: &str,
    max_spin_up: &str,
    tol_per_h: f64,
) -> (SpinUpReport, f64) {
    let sc = scenario(&toml(scheme, max_spin_up, tol_per_h));
    let model = Model::build(&sc);
    let e = engine(backend, &model).expect("engine");
    let mut sim = Simulation::new(&sc, &model, e);
    let report = sim
        .spin_up()
        .expect("spin-up")
        .expect("a spin-up was asked for");
    let a = sim.engine().read_fields(&[0]).expect("read back")[0][13] as f64;
    (report, a)
}

/// The drift the spin-up measures over the hour-long window ending at `n_h` hours:
/// |C(n−1) − C(n)| / C(n), per hour.
fn analytic_drift_per_h(n_h: f64) -> f64 {
    let c = |t_h: f64| CINF_MM + (C0_MM - CINF_MM) * (-t_h).exp();
    (c(n_h - 1.0) - c(n_h)).abs() / c(n_h)
}

const SPLIT: &str = "dt_s = 10.0";

#[test]
fn the_spin_up_ends_at_the_first_hour_whose_drift_is_within_the_tolerance() {
    // Windows of an hour (a tenth of 24 h, at most 1 h). Analytic drifts per hour at the
    // end of hours 5, 6, 7: 1.15e-2, 4.25e-3, 1.56e-3; so a tolerance of 1e-2 ends at 6 h.
    assert!(analytic_drift_per_h(5.0) > 1e-2 && analytic_drift_per_h(6.0) < 1e-2);
    let mut table = vec![];
    // The split steps of 10 s follow the analytic curve: they settle at 6 h with its drift.
    // The coupled scheme's loose spin-up tolerance (10 × 1e-2) measured 9.7e-3 at 6 h (the
    // analytic 4.2e-3: at that tolerance its state lags the relaxation), so it confirms
    // with an hour at the run's own tolerance and ends at 7 h. Either way the promise is
    // about the state handed on: from it, the relaxation's own next hour (analytic, from
    // C∞ and k) changes `a` by less than the tolerance, and the last window's reported
    // drift is what that state's relaxation implies for the hour before it, within the
    // integrator's error: a step's error is relative to the value (≈ 1 mM), the hour's
    // change only ≈ 2e-3–7e-3 mM (measured 33 % at 1e-2, 6 % at 1e-4).
    let coupled = |tol: f64| format!("scheme = \"coupled\"\ndt_s = 1.0\ntolerance = {tol:e}");
    for (backend, scheme, hours, limit) in [
        (Backend::Cpu, SPLIT.to_string(), 6.0, 1e-3),
        (Backend::Gpu, SPLIT.to_string(), 6.0, 1e-3),
        (Backend::Cpu, coupled(1e-2), 7.0, 0.5),
        (Backend::Cpu, coupled(1e-4), 7.0, 0.1),
    ] {
        let (r, a) = spin_up(backend, &scheme, "24 h", 1e-2);
        let e = std::f64::consts::E;
        let before = (a - CINF_MM) * (e - 1.0) / a;
        let next_hour = (a - CINF_MM) * (1.0 - 1.0 / e) / (CINF_MM + (a - CINF_MM) / e);
        let rel = (r.worst.1 - before).abs() / before;
        table.push(format!(
            "{backend:?} {}: ran {} s, window {} s, worst {} {:.4e} (from the state handed on: last hour {before:.4e}, {rel:.1e} off; next hour {next_hour:.4e}; analytic curve at {hours} h {:.4e}), settled {:?}",
            scheme.replace('\n', " "),
            r.duration_s,
            r.window_s,
            r.worst.0,
            r.worst.1,
            analytic_drift_per_h(hours),
            r.settled
        ));
        let table = table.join("\n");
        assert_eq!(r.duration_s, hours * 3600.0, "{table}");
        assert_eq!(r.window_s, 3600.0);
        assert_eq!(r.settled, Some(true));
        assert_eq!(r.tolerance_per_h, Some(1e-2));
        assert!(next_hour < 1e-2, "{table}");
        // The counter grows by k·C∞·1 h = 1 mM an hour, 1/(hours) of its value: it would
        // never settle, and it is not what the settle test looked at.
        assert_eq!(r.worst.0, "a", "{table}");
        let ox = r
            .relative_drift_per_h
            .iter()
            .find(|d| d.0 == "ox")
            .unwrap()
            .1;
        assert!((ox - 1.0 / hours).abs() < 1e-2 / hours, "ox drift {ox}");
        assert!(rel < limit, "{table}");
    }
    eprintln!("{}", table.join("\n"));
}

#[test]
fn a_spin_up_that_cannot_settle_in_time_says_so() {
    // 3 h at most, windows of 18 min: the drift at 3 h is 0.13 per hour, far above 1e-3.
    let (r, _) = spin_up(Backend::Cpu, SPLIT, "3 h", 1e-3);
    assert_eq!(r.duration_s, 3.0 * 3600.0);
    assert_eq!(r.window_s, 1080.0);
    assert_eq!(r.settled, Some(false));
    let c = |t_h: f64| CINF_MM + (C0_MM - CINF_MM) * (-t_h).exp();
    let expected = (c(2.7) - c(3.0)) / c(3.0) / 0.3;
    assert!(
        (r.worst.1 - expected).abs() < 1e-3 * expected,
        "drift {} against {expected}",
        r.worst.1
    );
}

#[test]
fn a_fixed_spin_up_measures_its_last_tenth_and_claims_no_settling() {
    let sc = scenario(&toml(SPLIT, "3 h", 1e-2).replace("spin_up_tolerance_per_h = 0.01\n", ""));
    let model = Model::build(&sc);
    let mut sim = Simulation::new(&sc, &model, engine(Backend::Cpu, &model).unwrap());
    let r = sim.spin_up().unwrap().unwrap();
    assert_eq!((r.duration_s, r.window_s), (10800.0, 600.0));
    assert_eq!((r.settled, r.tolerance_per_h), (None, None));
    let c = |t_h: f64| CINF_MM + (C0_MM - CINF_MM) * (-t_h).exp();
    let expected = (c(3.0 - 1.0 / 6.0) - c(3.0)) / c(3.0) * 6.0;
    assert!((r.worst.1 - expected).abs() < 1e-3 * expected);
}
