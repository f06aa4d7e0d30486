//! The built-in default (`fe_fenton_cdt_day`) over its whole horizon, 24 h after a spin-up
//! that runs until the baseline has settled, against an untreated control. The test grid is
//! one quarter of the default's block (32 × 32 × 64 of its 20 µm voxels: the whole depth of
//! the margin window, the injection's centre on the quarter's mirror edge): the same
//! tissue, capillaries and dose, at a quarter of the cost.
//!
//! It asserts what the scenario's header promises: an untreated tumour that is acidic
//! (pHe within the 6.6–7.0 of human tumours, falling with depth), hypoxic, lactic and has
//! a necrotic core, beside normal tissue at pHe 7.3–7.45; a therapy that makes OH· where
//! iron and tumour H2O2 meet, kills the tumour from the injection outwards within hours
//! and spares normal tissue. Run with `--nocapture` to see the figures.

mod common;

use common::{field_at, run_preset_with, PresetRun, DEFAULT_QUARTER};
use ionfield::model::{Model, TISSUE_ID_MASK};

/// O2 of 5 mmHg, mM (1.35e-3 mM/mmHg): hypoxia as in tests/physiology.rs [McK14].
const HYPOXIC_MM: f64 = 6.8e-3;
/// Output times of the default, s.
const HOURS_4: f64 = 4.0 * 3600.0;
const HOURS_24: f64 = 24.0 * 3600.0;
/// The injection's centre (the default's `dosing[0].centre_um`) and the tumour's margin
/// (z of `tissues.tumour.max_um`), µm.
const INJECTION_UM: [f64; 3] = [640.0, 640.0, 400.0];
const MARGIN_Z_UM: f64 = 800.0;

/// Voxel centres (x fastest), µm.
fn centres_um(run: &PresetRun) -> Vec<[f64; 3]> {
    let g = &run.scenario.grid;
    let [nx, ny, nz] = g.shape();
    let c = |i: usize| (i as f64 + 0.5) * g.voxel_um;
    let mut out = Vec::with_capacity(nx * ny * nz);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                out.push([c(i), c(j), c(k)]);
            }
        }
    }
    out
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

/// The fields the test reads (the default writes fewer; lactate is not among them).
const FIELDS: &str =
    "output.fields=[\"O2\",\"glucose\",\"pH\",\"Lac\",\"Fe2\",\"GSH\",\"OH\",\"viab\"]";

#[test]
fn the_default_kills_the_acidic_hypoxic_tumour_from_the_injection_outwards_within_hours_and_spares_normal_tissue(
) {
    let (treated, control) = std::thread::scope(|s| {
        let mut sets = DEFAULT_QUARTER.to_vec();
        sets.push(FIELDS);
        let treated = sets.clone();
        let t = s.spawn(move || run_preset_with("fe_fenton_cdt_day", "cpu", &treated));
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
    let at = centres_um(&treated);
    // Distance from the injection's centre, and depth below the tumour's margin, µm.
    let r: Vec<f64> = at
        .iter()
        .map(|p| {
            (0..3)
                .map(|a| (p[a] - INJECTION_UM[a]).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    let depth: Vec<f64> = at.iter().map(|p| MARGIN_Z_UM - p[2]).collect();

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
    let (o2, ph, lac, viab0) = (
        field_at(&control.out, "O2", 0.0),
        field_at(&control.out, "pH", 0.0),
        field_at(&control.out, "Lac", 0.0),
        field_at(&control.out, "viab", 0.0),
    );
    let fraction = |field: &[f64], below: f64, pick: &dyn Fn(usize) -> bool| {
        mean(
            &field
                .iter()
                .map(|&v| f64::from(u8::from(v < below)))
                .collect::<Vec<_>>(),
            pick,
        )
    };
    let (hyp_t, hyp_n) = (
        fraction(&o2, HYPOXIC_MM, &in_tumour),
        fraction(&o2, HYPOXIC_MM, &in_normal),
    );
    let (ph_t, ph_n) = (mean(&ph, &in_tumour), mean(&ph, &in_normal));
    let lac_t = mean(&lac, &in_tumour);
    // The deepest 200 µm of the window against the 200 µm below the margin.
    let deep = |i: usize| in_tumour(i) && depth[i] > 600.0;
    let shallow = |i: usize| in_tumour(i) && depth[i] < 200.0;
    let (ph_deep, ph_shallow) = (mean(&ph, &deep), mean(&ph, &shallow));
    let (nec_deep, nec_shallow) = (
        fraction(&viab0, 0.1, &deep),
        fraction(&viab0, 0.1, &shallow),
    );
    let viab_t0 = mean(&viab0, &in_tumour);
    eprintln!(
        "untreated at t = 0: tumour pHe {ph_t:.3} (6.6–7.0 [Buf13]; deepest 200 µm {ph_deep:.3}, first 200 µm below the margin {ph_shallow:.3}), normal {ph_n:.3} (7.3–7.45 [T]); hypoxic (< 5 mmHg) {:.1} % of the tumour (10–50 % [McK14]), normal {:.1} %; tumour lactate {lac_t:.2} mM (5–20 [Wal00]); necrotic (viab < 0.1) {:.1} % of the deepest 200 µm, {:.1} % below the margin; tumour mean viab {viab_t0:.3}",
        100.0 * hyp_t,
        100.0 * hyp_n,
        100.0 * nec_deep,
        100.0 * nec_shallow
    );
    assert!((6.6..=7.0).contains(&ph_t), "tumour pHe {ph_t}");
    assert!((7.3..=7.45).contains(&ph_n), "normal pHe {ph_n}");
    assert!(
        ph_deep < ph_shallow - 0.1,
        "pHe {ph_deep} deep vs {ph_shallow}"
    );
    assert!((0.1..=0.6).contains(&hyp_t), "hypoxic fraction {hyp_t}");
    assert_eq!(hyp_n, 0.0);
    assert!((5.0..=20.0).contains(&lac_t), "tumour lactate {lac_t}");
    assert!(
        nec_deep > 0.01 && nec_deep > 2.0 * nec_shallow,
        "no necrotic core: {nec_deep} deep vs {nec_shallow}"
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

    // 4. Where it kills: at 4 h the tumour within 250 µm of the injection has lost far
    //    more of its cells to the therapy than the tumour beyond 450 µm (relative to the
    //    control, which loses cells to hypoxia in both), and most of them.
    let (v4_t, v4_c) = (at4(&treated, "viab"), at4(&control, "viab"));
    let inner = |i: usize| in_tumour(i) && r[i] < 250.0;
    let far = |i: usize| in_tumour(i) && r[i] > 450.0;
    let loss = |pick: &dyn Fn(usize) -> bool| 1.0 - mean(&v4_t, pick) / mean(&v4_c, pick);
    let (loss_inner, loss_far) = (loss(&inner), loss(&far));
    eprintln!(
        "4 h, viab lost to the therapy (1 − treated/control): within 250 µm of the injection {:.1} %, tumour beyond 450 µm {:.1} %",
        100.0 * loss_inner,
        100.0 * loss_far
    );
    assert!(
        loss_inner > 0.5 && loss_inner > loss_far + 0.3,
        "not from the injection outwards"
    );

    // 5. How fast and what it spares, over the 24 h (viability.csv, every 5 min).
    let (curve_t, curve_c) = (tumour_curve(&treated), tumour_curve(&control));
    let end_t = curve_t.last().unwrap().1;
    let end_c = curve_c.last().unwrap().1;
    let viab24 = |run: &PresetRun| field_at(&run.out, "viab", HOURS_24);
    let normal_t = mean(&viab24(&treated), &in_normal);
    let normal_c = mean(&viab24(&control), &in_normal);
    eprintln!(
        "tumour mean viab: treated {:.3} → {end_t:.3} at 24 h, control {:.3} → {end_c:.3}; normal tissue at 24 h: treated {normal_t:.4}, control {normal_c:.4}",
        curve_t[0].1, curve_c[0].1
    );
    for h in [1.0, 2.0, 4.0, 8.0, 12.0, 24.0] {
        let at = |c: &[(f64, f64)]| c.iter().find(|p| p.0 >= h - 1e-9).unwrap().1;
        eprintln!(
            "  {h:>4} h: tumour viab treated {:.3}, control {:.3}",
            at(&curve_t),
            at(&curve_c)
        );
    }
    assert!(end_t < 0.75 * end_c, "treated {end_t} vs control {end_c}");
    assert!(normal_t > 0.95, "normal tissue not spared: {normal_t}");
}
