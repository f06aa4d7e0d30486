//! The light presets (`ptt_au_nanorods`, `ptt_fe_cdt`, `pdt_photofrin`, `pdt_cao2_oxygen`;
//! docs/scientific-model.md §12) against their controls, the same preset with the light
//! off (the O2-generating particle: `pdt_photofrin` without it). What the PTT presets show
//! is measured against closed forms evaluated on the run's own temperature history (tumour mean dT every 20 s from timeseries.csv, summaries
//! landed on exactly, step tolerance 1e-3 instead of the presets' 1e-2, which cools 3 %
//! slow): Newton cooling at the lumped loss after the laser, the Arrhenius damage integral,
//! CEM43, and the Arrhenius factor of the particle's dissolution. PDT: the photobleaching
//! invariant in every voxel, and where the singlet oxygen goes and kills against the O2
//! before the light; with the particle, the singlet oxygen of the hypoxic tumour.
//!
//! Grid: a column of the presets' margin window, 8 × 8 × 32 voxels of 40 µm
//! (320 × 320 × 1280 µm, mirror faces; the tumour below z = 800 µm, no probes), a 4 h
//! spin-up (the presets' 12 h settle the window's lactate and pH, which none of these
//! mechanisms needs), then 15 min (PTT: the laser's 10 min and the cooling) or 30 min
//! (PDT). Every case prints its figures (run with `--nocapture`).

mod common;

use common::{field_at, run_preset_with, PresetRun};

/// The test window (see the module doc), summaries every 20 s.
const PTT_TEST_SETS: &[&str] = &[
    "grid.shape=[8,8,32]",
    "grid.voxel_um=40",
    "tissues.tumour.max_um=[320,320,800]",
    "dosing[0].max_um=[320,320,800]",
    "dosing[1].max_um=[320,320,1280]",
    "output.slices=[4]",
    "output.probe=[]",
    "time.spin_up_s=14400",
    "time.tolerance=1e-3",
    "output.summary_interval_s=20",
    "output.exact_summaries=true",
];

/// When the PTT runs end and their viab is compared with the control's: the 10 min of
/// laser and 5 min of cooling (over 10 cooling times), s.
const PTT_END_S: f64 = 900.0;
/// When the PDT run ends: its 20 min of light and 10 min (the death time) after, s.
const PDT_END_S: f64 = 1800.0;

/// 43 °C − 37 °C, K; E_a/R of the damage integral and its rate at 43 °C (photothermal.toml).
const DT_43: f64 = 6.0;
const EA_TH_K: f64 = 75535.0;
const K_TH43: f64 = 5.355e-6;
const T_A: f64 = 310.15;

/// Runs preset `name` with the laser (dose 1) on and off, side by side, until `end_s`,
/// with `extra` sets.
fn with_and_without_laser(name: &str, end_s: f64, extra: &[&str]) -> (PresetRun, PresetRun) {
    let end = [
        format!("time.end_s={end_s}"),
        format!("output.figure.times_s=[0,600,{end_s}]"),
    ];
    let mut sets = PTT_TEST_SETS.to_vec();
    sets.extend(end.iter().map(String::as_str));
    sets.extend_from_slice(extra);
    std::thread::scope(|s| {
        let on = s.spawn(|| run_preset_with(name, "cpu", &sets));
        let mut sets = sets.clone();
        sets.push("dosing[1].amount_mm=0");
        let off = run_preset_with(name, "cpu", &sets);
        (on.join().expect("run with the laser"), off)
    })
}

/// ∫ f(dT(t)) dt over [t0, t1] by the trapezoid rule on the tumour-mean dT series.
fn integral(series: &[(f64, f64)], t0: f64, t1: f64, f: impl Fn(f64) -> f64) -> f64 {
    series
        .windows(2)
        .filter(|w| w[0].0 >= t0 - 1e-9 && w[1].0 <= t1 + 1e-9)
        .map(|w| 0.5 * (f(w[0].1) + f(w[1].1)) * (w[1].0 - w[0].0))
        .sum()
}

/// The value of a series at `t_s`.
fn at(series: &[(f64, f64)], t_s: f64) -> f64 {
    series
        .iter()
        .find(|p| (p.0 - t_s).abs() < 1e-6)
        .unwrap_or_else(|| panic!("no row at {t_s} s"))
        .1
}

/// Tissue mean viab at `t_s` from viability.csv.
fn viab(run: &PresetRun, tissue: &str, t_s: f64) -> f64 {
    run.viability()
        .into_iter()
        .find(|r| r.1 == tissue && (r.0 - t_s).abs() < 1e-6)
        .unwrap_or_else(|| panic!("no {tissue} row at {t_s} s"))
        .2
}

/// The mean of `f` over the voxels `pick` selects (at least one).
fn mean(f: &[f64], pick: &dyn Fn(usize) -> bool) -> f64 {
    let (s, n) = (0..f.len())
        .filter(|&i| pick(i))
        .fold((0.0, 0usize), |(s, n), i| (s + f[i], n + 1));
    assert!(n > 0, "no voxel selected");
    s / n as f64
}

/// Gold nanorods under the laser: the tumour heats to a plateau while the laser is on,
/// cools after it at the lumped loss rate w_body + w_perf (uniform in the window, whose
/// thermal length sqrt(α/w) ≈ 1.9 mm exceeds it), and its cells die by the Arrhenius
/// damage integral: the treated/control viab ratio at 1 h is exp(−Ω) with Ω from the
/// run's own temperature history at 15 min (within 5 %); CEM43 likewise. The control stays at
/// 37 °C and loses nothing to heat.
#[test]
fn ptt_au_nanorods_heats_the_tumour_and_kills_by_the_damage_integral() {
    let (on, off) = with_and_without_laser("ptt_au_nanorods", PTT_END_S, &[]);
    let dt = on.series("tumour", "dT", "mean");
    let peak = dt.iter().map(|p| p.1).fold(0.0, f64::max);
    let plateau = (at(&dt, 300.0), at(&dt, 580.0));
    // Newton cooling from 620 s (the laser ramps off over 599–600 s): w_body 0.0367 /s
    // plus perfusion 5e-4 (tumour) – 1e-3 (normal) /s.
    let rate = (at(&dt, 620.0) / at(&dt, 680.0)).ln() / 60.0;
    let omega_want = integral(&dt, 0.0, PTT_END_S, |d| {
        K_TH43
            * ((EA_TH_K * (1.0 / (T_A + DT_43) - 1.0 / (T_A + d))).exp()
                - (EA_TH_K * (1.0 / (T_A + DT_43) - 1.0 / T_A)).exp())
    });
    let ratio = viab(&on, "tumour", PTT_END_S) / viab(&off, "tumour", PTT_END_S);
    let omega = -ratio.ln();
    let cem_want = integral(&dt, 0.0, PTT_END_S, |d| {
        let r = if d >= DT_43 { 0.5f64 } else { 0.25 };
        r.powf(DT_43 - d) / 60.0
    });
    let cem = |run: &PresetRun| at(&run.series("tumour", "CEM43", "mean"), PTT_END_S);
    let (cem_on, cem_off) = (cem(&on), cem(&off));
    let normal = viab(&on, "normal", PTT_END_S) / viab(&off, "normal", PTT_END_S);
    println!(
        "ptt_au_nanorods: tumour mean dT peak {peak:.2} K (300 s {:.2}, 580 s {:.2}); cooling rate {rate:.4} /s (w_body + w_perf 0.0372–0.0377); Ω {omega:.4} from viab {ratio:.4} of the control's at 15 min, closed form on the run's dT {omega_want:.4}; CEM43 {cem_on:.1} min (closed form {cem_want:.1} + the control's {cem_off:.2}); normal tissue viab {normal:.4} of the control's",
        plateau.0, plateau.1
    );
    assert!(
        (8.0..15.0).contains(&peak),
        "peak {peak} K outside the 45–52 °C the preset states"
    );
    assert!((plateau.1 / plateau.0 - 1.0).abs() < 0.02, "no plateau");
    assert!((0.0367..0.0380).contains(&rate), "cooling rate {rate} /s");
    assert!(
        (omega / omega_want - 1.0).abs() < 0.05,
        "Ω {omega} vs {omega_want}"
    );
    assert!(omega > 0.02, "the heat killed nothing: Ω {omega}");
    assert!((cem_on - cem_off) / cem_want - 1.0 < 0.05 && (cem_on - cem_off) / cem_want > 0.95);
    let off_dt = off.series("tumour", "dT", "max");
    assert!(off_dt.iter().all(|p| p.1 == 0.0), "the control warmed");
    assert!(normal < 1.0, "normal tissue above was not warmed");
}

/// Heat-enhanced CDT: with the laser the iron particles dissolve faster during the
/// irradiation by their Arrhenius factor (E_a 60 kJ/mol) averaged over the run's
/// temperature history (within 3 %), the tumour makes more OH· (oxidation Ox) than under
/// CDT at 37 °C, by no more than the two Arrhenius factors allow, and dies faster (tumour
/// mean viab at 15 min).
#[test]
fn ptt_fe_cdt_heat_speeds_dissolution_and_fenton_against_cdt_at_37_c() {
    let (on, off) = with_and_without_laser("ptt_fe_cdt", PTT_END_S, &[]);
    let dt = on.series("tumour", "dT", "mean");
    let peak = dt.iter().map(|p| p.1).fold(0.0, f64::max);
    let arrhenius = |ea_k: f64| move |d: f64| (ea_k * (1.0 / T_A - 1.0 / (T_A + d))).exp();
    let laser_s = 600.0;
    let dissolution_want = integral(&dt, 0.0, laser_s, arrhenius(7217.0)) / laser_s;
    let dissolved = |run: &PresetRun| {
        let np = run.series("tumour", "NP_Fe", "mean");
        (at(&np, 0.0) / at(&np, laser_s)).ln()
    };
    let dissolution = dissolved(&on) / dissolved(&off);
    let oxidised = |run: &PresetRun| {
        let ox = run.series("tumour", "Ox", "mean");
        at(&ox, laser_s) - at(&ox, 0.0)
    };
    let ox = oxidised(&on) / oxidised(&off);
    let ox_bound = arrhenius(7217.0)(peak) * arrhenius(4751.0)(peak);
    let (v_on, v_off) = (
        viab(&on, "tumour", PTT_END_S),
        viab(&off, "tumour", PTT_END_S),
    );
    println!(
        "ptt_fe_cdt: tumour mean dT peak {peak:.2} K; dissolution over the 10 min of laser {dissolution:.4}× the control's (Arrhenius on the run's dT {dissolution_want:.4}); oxidation Ox {ox:.3}× (bound at the peak {ox_bound:.3}); tumour viab at 15 min {v_on:.4} (CDT at 37 °C {v_off:.4})"
    );
    assert!(
        peak > 2.0,
        "the particles did not heat the tumour: {peak} K"
    );
    assert!(
        (dissolution / dissolution_want - 1.0).abs() < 0.03,
        "{dissolution} vs {dissolution_want}"
    );
    assert!(ox > 1.05 && ox < ox_bound, "Ox {ox} (bound {ox_bound})");
    assert!(v_on < v_off, "heat did not speed the kill");
}

/// PDT: in every photosensitised voxel the reacted singlet oxygen and the photosensitiser
/// left obey [Wan10]'s bleaching invariant, [¹O2]rx = ln((PS0 + δ)/(PS + δ))/σ, whatever
/// the light and O2 were (within 2e-3 mM); the tumour well oxygenated before the light
/// (O2 ≥ 10 µM) reacts over 3× the singlet oxygen of its hypoxic part (< 2 µM) and dies,
/// while the hypoxic part keeps at least 90 % of the control's viab (the hypoxia limit of
/// PDT); normal tissue, without photosensitiser, is spared.
#[test]
fn pdt_photofrin_kills_where_o2_is_and_spares_the_hypoxic_tumour() {
    let (on, off) = with_and_without_laser("pdt_photofrin", PDT_END_S, &["output.npy=true"]);
    let (ps0, sigma, delta) = (0.005f64, 0.076f64, 0.033f64);
    let o2 = field_at(&on.out, "O2", 0.0);
    let ps = field_at(&on.out, "PS", PDT_END_S);
    let so = field_at(&on.out, "SOrx", PDT_END_S);
    let v_on = field_at(&on.out, "viab", PDT_END_S);
    let v_off = field_at(&off.out, "viab", PDT_END_S);
    let dosed: Vec<bool> = field_at(&on.out, "PS", 0.0)
        .iter()
        .map(|&p| p > 0.9 * ps0)
        .collect();
    let worst = (0..so.len())
        .filter(|&i| dosed[i])
        .map(|i| (so[i] - ((ps0 + delta) / (ps[i] + delta)).ln() / sigma).abs())
        .fold(0.0, f64::max);
    let oxic = |i: usize| dosed[i] && o2[i] >= 0.01;
    let hypoxic = |i: usize| dosed[i] && o2[i] < 0.002;
    let (so_oxic, so_hyp) = (mean(&so, &oxic), mean(&so, &hypoxic));
    let (v_oxic, v_hyp) = (mean(&v_on, &oxic), mean(&v_on, &hypoxic));
    let (c_oxic, c_hyp) = (mean(&v_off, &oxic), mean(&v_off, &hypoxic));
    let normal = viab(&on, "normal", PDT_END_S) / viab(&off, "normal", PDT_END_S);
    println!(
        "pdt_photofrin at 30 min: bleaching invariant within {worst:.2e} mM; reacted ¹O2 {so_oxic:.3} mM where O2 ≥ 10 µM before the light, {so_hyp:.3} mM where < 2 µM; viab there {v_oxic:.4} / {v_hyp:.4} (control {c_oxic:.4} / {c_hyp:.4}); tumour mean viab {:.4} (control {:.4}); normal tissue {normal:.5} of the control's",
        viab(&on, "tumour", PDT_END_S),
        viab(&off, "tumour", PDT_END_S)
    );
    assert!(worst < 2e-3, "bleaching invariant off by {worst} mM");
    assert!(so_oxic > 3.0 * so_hyp, "{so_oxic} vs {so_hyp}");
    assert!(
        so_oxic > 0.5,
        "the oxygenated tumour stays under the threshold"
    );
    assert!(
        v_oxic < 0.05 * c_oxic,
        "the oxygenated tumour survived: {v_oxic}"
    );
    assert!(
        v_hyp > 0.9 * c_hyp,
        "the hypoxic tumour died: {v_hyp} vs {c_hyp}"
    );
    assert!(normal > 0.999, "normal tissue damaged: {normal}");
}

/// PDT with an O2-generating particle: catalase-loaded CaO2 dissolving in the tumour adds O2
/// where it dissolves, so the hypoxic tumour (O2 < 2 µM before the light) reacts over 1.5×
/// the singlet oxygen it reacts with `pdt_photofrin` alone, under the same light, and holds
/// more O2 at the end of the light; both runs start from the same spin-up (O2 at t = 0 equal
/// within 1e-6 mM). The particle's O2 is bounded by its dose: the CaO2 dissolved by then,
/// × f_cat/2 = ¼, exceeds the O2 the hypoxic tumour gained. Normal tissue is unchanged.
#[test]
fn pdt_cao2_oxygen_makes_more_singlet_oxygen_in_the_hypoxic_tumour_than_pdt_alone() {
    let mut sets = PTT_TEST_SETS.to_vec();
    let end = [
        format!("time.end_s={PDT_END_S}"),
        format!("output.figure.times_s=[0,600,{PDT_END_S}]"),
    ];
    sets.extend(end.iter().map(String::as_str));
    sets.push("output.npy=true");
    let (with, alone) = std::thread::scope(|s| {
        let mut sets_np = sets.clone();
        sets_np.push("dosing[2].max_um=[320,320,800]");
        let with = s.spawn(move || run_preset_with("pdt_cao2_oxygen", "cpu", &sets_np));
        let alone = run_preset_with("pdt_photofrin", "cpu", &sets);
        (with.join().expect("run with the particle"), alone)
    });
    let o2_0 = field_at(&alone.out, "O2", 0.0);
    let o2_0_with = field_at(&with.out, "O2", 0.0);
    let start = o2_0
        .iter()
        .zip(&o2_0_with)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let np0 = field_at(&with.out, "NP_CaO2", 0.0);
    let hypoxic = |i: usize| np0[i] > 0.0 && o2_0[i] < 0.002;
    let oxic = |i: usize| np0[i] > 0.0 && o2_0[i] >= 0.01;
    let light_off = 1200.0;
    let so_with = field_at(&with.out, "SOrx", PDT_END_S);
    let so_alone = field_at(&alone.out, "SOrx", PDT_END_S);
    let (h_with, h_alone) = (mean(&so_with, &hypoxic), mean(&so_alone, &hypoxic));
    let (x_with, x_alone) = (mean(&so_with, &oxic), mean(&so_alone, &oxic));
    let o2_with = mean(&field_at(&with.out, "O2", light_off), &hypoxic);
    let o2_alone = mean(&field_at(&alone.out, "O2", light_off), &hypoxic);
    let np = field_at(&with.out, "NP_CaO2", light_off);
    let dissolved = mean(&np0, &hypoxic) - mean(&np, &hypoxic);
    let normal = viab(&with, "normal", PDT_END_S) / viab(&alone, "normal", PDT_END_S);
    println!(
        "pdt_cao2_oxygen at 30 min against pdt_photofrin: O2 at t = 0 equal within {start:.1e} mM; reacted ¹O2 where O2 < 2 µM before the light {h_with:.4} mM against {h_alone:.4} ({:.2}×), where ≥ 10 µM {x_with:.4} against {x_alone:.4}; O2 there at the end of the light {o2_with:.5} against {o2_alone:.5} mM; CaO2 dissolved there {dissolved:.3} mM (its O2 ≤ {:.3} mM); tumour viab {:.4} against {:.4}; normal tissue {normal:.5} of pdt_photofrin's",
        h_with / h_alone,
        dissolved / 4.0,
        viab(&with, "tumour", PDT_END_S),
        viab(&alone, "tumour", PDT_END_S),
    );
    assert!(start < 1e-6, "the spin-ups differ: {start} mM");
    assert!(h_with > 1.5 * h_alone, "{h_with} vs {h_alone}");
    assert!(o2_with > o2_alone, "{o2_with} vs {o2_alone}");
    assert!(
        (o2_with - o2_alone) < dissolved / 4.0,
        "the hypoxic tumour gained more O2 than the particle holds"
    );
    assert!(
        (x_with / x_alone - 1.0).abs() < 0.1,
        "{x_with} vs {x_alone}"
    );
    assert!(
        (normal - 1.0).abs() < 1e-3,
        "normal tissue changed: {normal}"
    );
}
