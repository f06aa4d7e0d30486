//! The built-in default (`fe_fenton_cdt_day`) over its whole horizon, 24 h after a spin-up
//! that runs until the baseline has settled, against an untreated control. The test grid is
//! one octant of the default's block (32³ of its 20 µm voxels, the tumour's centre at the
//! corner, mirror faces): the same tissue, capillaries and dose, at an eighth of the cost.
//!
//! It asserts what the scenario's header promises: an untreated tumour that is hypoxic,
//! more acidic than the normal tissue around it and has a necrotic core; a therapy that
//! makes OH· where iron and tumour H2O2 meet, kills the tumour from the injection outwards
//! within hours and spares normal tissue. Run with `--nocapture` to see the figures.

mod common;

use common::{field_at, run_preset_with, PresetRun, DEFAULT_OCTANT};
use ionfield::model::{Model, TISSUE_ID_MASK};

/// O2 of 5 mmHg, mM (1.35e-3 mM/mmHg): hypoxia as in tests/physiology.rs [McK14].
const HYPOXIC_MM: f64 = 6.8e-3;
/// Output times of the default, s.
const HOURS_4: f64 = 4.0 * 3600.0;
const HOURS_24: f64 = 24.0 * 3600.0;

/// Distance of each voxel centre from the tumour's centre, µm.
fn radius_um(run: &PresetRun) -> Vec<f64> {
    let g = &run.scenario.grid;
    let [nx, ny, nz] = g.shape();
    let c = |i: usize| (i as f64 + 0.5) * g.voxel_um - 640.0;
    let mut r = Vec::with_capacity(nx * ny * nz);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                r.push((c(i).powi(2) + c(j).powi(2) + c(k).powi(2)).sqrt());
            }
        }
    }
    r
}

fn mean(field: &[f64], pick: &dyn Fn(usize) -> bool) -> f64 {
    let (sum, n) = (0..field.len())
        .filter(|&i| pick(i))
        .fold((0.0, 0usize), |(s, n), i| (s + field[i], n + 1));
    assert!(n > 0, "no voxel selected");
    sum / n as f64
}

/// The tumour's mean viab over time from `viability.csv`: (h, mean viab).
fn tumour_curve(run: &PresetRun) -> Vec<(f64, f64)> {
    run.viability()
        .into_iter()
        .filter(|r| r.1 == "tumour")
        .map(|r| (r.0 / 3600.0, r.2))
        .collect()
}

#[test]
fn the_default_kills_the_hypoxic_tumour_from_the_injection_outwards_within_hours_and_spares_normal_tissue(
) {
    let (treated, control) = std::thread::scope(|s| {
        let t = s.spawn(|| run_preset_with("fe_fenton_cdt_day", "cpu", DEFAULT_OCTANT));
        let mut sets = DEFAULT_OCTANT.to_vec();
        sets.push("dosing[0].amount_mm=0");
        let c = run_preset_with("fe_fenton_cdt_day", "cpu", &sets);
        (t.join().expect("treated run"), c)
    });
    treated.assert_outputs();
    let model = Model::build(&treated.scenario);
    let vessel: Vec<bool> = model
        .mask
        .iter()
        .map(|m| m & !TISSUE_ID_MASK != 0)
        .collect();
    let (tumour, normal) = (treated.tissue_id("tumour"), treated.tissue_id("normal"));
    let in_tumour = |i: usize| treated.tissue[i] == tumour && !vessel[i];
    let in_normal = |i: usize| treated.tissue[i] == normal && !vessel[i];
    let r = radius_um(&treated);

    // 1. The spin-up ran until the baseline had settled, and says so.
    for run in [&treated, &control] {
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.out.join("manifest.json")).unwrap())
                .unwrap();
        let spin = &manifest["spin_up"];
        eprintln!(
            "spin-up: {} h, settled {}, worst {}",
            spin["duration_s"].as_f64().unwrap() / 3600.0,
            spin["settled"],
            spin["worst"]
        );
        assert_eq!(spin["settled"], serde_json::json!(true), "{spin}");
        assert!(spin["worst"][1].as_f64().unwrap() <= 0.01);
    }

    // 2. The untreated tumour at t = 0 (the same in both runs: no dose yet).
    let (o2, ph, viab0) = (
        field_at(&control.out, "O2", 0.0),
        field_at(&control.out, "pH", 0.0),
        field_at(&control.out, "viab", 0.0),
    );
    let hypoxic = |pick: &dyn Fn(usize) -> bool| {
        mean(
            &o2.iter()
                .map(|&v| f64::from(u8::from(v < HYPOXIC_MM)))
                .collect::<Vec<_>>(),
            pick,
        )
    };
    let (hyp_t, hyp_n) = (hypoxic(&in_tumour), hypoxic(&in_normal));
    let (ph_t, ph_n) = (mean(&ph, &in_tumour), mean(&ph, &in_normal));
    let core = |i: usize| in_tumour(i) && r[i] < 150.0;
    let rim = |i: usize| in_tumour(i) && r[i] > 350.0;
    let (ph_core, viab_core, viab_rim) =
        (mean(&ph, &core), mean(&viab0, &core), mean(&viab0, &rim));
    let viab_t0 = mean(&viab0, &in_tumour);
    eprintln!(
        "untreated at t = 0: tumour hypoxic {:.1} % (normal {:.1} %; 10–50 % in human tumours [McK14]); pHe tumour {ph_t:.3}, its centre {ph_core:.3}, normal {ph_n:.3}; tumour viab {viab_t0:.3} (centre {viab_core:.3}, rim {viab_rim:.3})",
        100.0 * hyp_t,
        100.0 * hyp_n
    );
    assert!((0.05..=0.6).contains(&hyp_t), "hypoxic fraction {hyp_t}");
    assert_eq!(hyp_n, 0.0);
    assert!(
        ph_t < ph_n - 0.05 && ph_core < ph_t,
        "pHe {ph_core} {ph_t} {ph_n}"
    );
    assert!((7.3..=7.45).contains(&ph_n), "normal pHe {ph_n}");
    assert!(
        viab_core < 0.8 * viab_rim,
        "no necrotic core: {viab_core} vs {viab_rim}"
    );

    // 3. The mechanism, 4 h after the dose: Fe2+ released, OH· made in the tumour, GSH spent.
    let at4 = |run: &PresetRun, name: &str| field_at(&run.out, name, HOURS_4);
    let (oh_t, oh_c) = (
        mean(&at4(&treated, "OH"), &in_tumour),
        mean(&at4(&control, "OH"), &in_tumour),
    );
    let oh_n = mean(&at4(&treated, "OH"), &in_normal);
    let (fe_t, fe_c) = (
        mean(&at4(&treated, "Fe2"), &in_tumour),
        mean(&at4(&control, "Fe2"), &in_tumour),
    );
    let (gsh_t, gsh_c) = (
        mean(&at4(&treated, "GSH"), &in_tumour),
        mean(&at4(&control, "GSH"), &in_tumour),
    );
    eprintln!(
        "4 h, tumour means, treated vs control: Fe2 {fe_t:.3e} vs {fe_c:.3e} mM, OH {oh_t:.3e} vs {oh_c:.3e} mM (treated normal tissue {oh_n:.3e}), GSH {gsh_t:.3} vs {gsh_c:.3} mM"
    );
    assert!(fe_t > 10.0 * fe_c, "no Fe2+ released");
    assert!(
        oh_t > 10.0 * oh_c && oh_t > 10.0 * oh_n,
        "no OH· burst in the tumour"
    );
    assert!(gsh_t < gsh_c, "GSH not spent");

    // 4. Where it kills: at 4 h the injection's centre is deader than the tumour's rim,
    //    relative to the control (the rim lost no cells to hypoxia there either).
    let (v4_t, v4_c) = (at4(&treated, "viab"), at4(&control, "viab"));
    let inner = |i: usize| in_tumour(i) && r[i] < 250.0;
    let loss = |pick: &dyn Fn(usize) -> bool| 1.0 - mean(&v4_t, pick) / mean(&v4_c, pick);
    let (loss_inner, loss_rim) = (loss(&inner), loss(&rim));
    eprintln!(
        "4 h, viab lost to the therapy (1 − treated/control): within 250 µm of the injection {:.1} %, tumour rim (> 350 µm) {:.1} %",
        100.0 * loss_inner,
        100.0 * loss_rim
    );
    assert!(
        loss_inner > loss_rim + 0.1,
        "not from the injection outwards"
    );

    // 5. How fast and what it spares, over the 24 h (viability.csv, every 5 min).
    let (curve_t, curve_c) = (tumour_curve(&treated), tumour_curve(&control));
    let v0 = curve_t[0].1;
    let half = curve_t
        .iter()
        .find(|p| p.1 < 0.5 * v0)
        .map(|p| p.0)
        .expect("the tumour's viab never halved in 24 h");
    let end_t = curve_t.last().unwrap().1;
    let end_c = curve_c.last().unwrap().1;
    let viab24 = |run: &PresetRun| field_at(&run.out, "viab", HOURS_24);
    let normal_t = mean(&viab24(&treated), &in_normal);
    let normal_c = mean(&viab24(&control), &in_normal);
    eprintln!(
        "tumour mean viab: treated {v0:.3} → {end_t:.3} at 24 h (halved at {half:.2} h), control {:.3} → {end_c:.3}; normal tissue at 24 h: treated {normal_t:.4}, control {normal_c:.4}",
        curve_c[0].1
    );
    for h in [1.0, 2.0, 4.0, 8.0, 12.0, 24.0] {
        let at = |c: &[(f64, f64)]| c.iter().find(|p| p.0 >= h - 1e-9).unwrap().1;
        eprintln!(
            "  {h:>4} h: tumour viab treated {:.3}, control {:.3}",
            at(&curve_t),
            at(&curve_c)
        );
    }
    assert!(half < 8.0, "the tumour took {half} h to halve");
    assert!(end_t < 0.25 * end_c, "treated {end_t} vs control {end_c}");
    assert!(normal_t > 0.95, "normal tissue not spared: {normal_t}");
}
