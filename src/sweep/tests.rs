use super::*;

const FILE: &str = r#"
name = "fe_dose"
base = "fe_fenton_cdt"
set = ["time.end_s=120"]
[axes]
"dosing[0].amount_mm" = { log = [0.01, 1.0, 3] }
"parameters.k_d_Fe.value" = [1e-4, 1e-3]
"#;

fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

#[test]
fn cartesian_expansion_is_deterministic_first_axis_slowest() {
    let s = Sweep::parse(FILE, "s.toml").unwrap();
    let runs = s.runs();
    assert_eq!(runs.len(), 6);
    assert_eq!(runs, Sweep::parse(FILE, "other.toml").unwrap().runs());
    assert_eq!(
        runs[1].sets(),
        ["dosing[0].amount_mm=0.01", "parameters.k_d_Fe.value=0.001"]
    );
    assert_eq!(runs[2].sets()[0], "dosing[0].amount_mm=0.1");
    assert!(runs[3].run_id.starts_with("r0003-"));
    assert_eq!(runs[3].run_id.len(), "r0003-".len() + 8);
    // The id depends only on the index and the assignments.
    assert_eq!(runs[3].run_id, run_id(3, &runs[3].assignments));
    let ids: std::collections::BTreeSet<_> = runs.iter().map(|r| &r.run_id).collect();
    assert_eq!(ids.len(), 6);
    assert_eq!(s.json(), Sweep::parse(FILE, "s.toml").unwrap().json());
    let listing = s.listing();
    assert_eq!(listing.lines().count(), 7);
    assert!(listing.lines().nth(1).unwrap().starts_with("0 r0000-"));
}

#[test]
fn shards_partition_the_runs() {
    let runs = Sweep::parse(FILE, "s.toml").unwrap().runs();
    for n in [1, 2, 3, 4, 6, 7, 13] {
        let mut seen: Vec<usize> = (0..n)
            .flat_map(|i| {
                let shard = Shard { index: i, count: n };
                runs.iter()
                    .filter(move |r| shard.contains(r.index))
                    .map(|r| r.index)
            })
            .collect();
        seen.sort();
        assert_eq!(seen, (0..runs.len()).collect::<Vec<_>>(), "n = {n}");
    }
    assert_eq!(Shard::parse("1/2"), Ok(Shard { index: 1, count: 2 }));
    assert!(Shard::parse("2/2").is_err());
    assert!(Shard::parse("0/0").is_err());
    assert!(Shard::parse("x").is_err());
}

#[test]
fn shard_from_slurm_and_kubernetes_environments() {
    // sbatch --array=2-8:3 → tasks 2, 5, 8: MIN 2, STEP 3, COUNT 3.
    let slurm = |id: &'static str| {
        vec![
            ("SLURM_ARRAY_TASK_ID", id),
            ("SLURM_ARRAY_TASK_MIN", "2"),
            ("SLURM_ARRAY_TASK_STEP", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]
    };
    for (id, index) in [("2", 0), ("5", 1), ("8", 2)] {
        let vars = slurm(id);
        let (shard, _) = Shard::from_env(env(&vars)).unwrap();
        assert_eq!(shard, Shard { index, count: 3 });
    }
    let vars = slurm("6");
    assert!(Shard::from_env(env(&vars)).is_err());
    // --array=0-3: no STEP in old Slurm versions → 1.
    let vars = [
        ("SLURM_ARRAY_TASK_ID", "3"),
        ("SLURM_ARRAY_TASK_MIN", "0"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
    ];
    assert_eq!(
        Shard::from_env(env(&vars)).unwrap().0,
        Shard { index: 3, count: 4 }
    );
    let vars = [("JOB_COMPLETION_INDEX", "2"), ("IONFIELD_SHARD_COUNT", "5")];
    assert_eq!(
        Shard::from_env(env(&vars)).unwrap().0,
        Shard { index: 2, count: 5 }
    );
    let vars = [("JOB_COMPLETION_INDEX", "2")];
    let e = Shard::from_env(env(&vars)).unwrap_err();
    assert!(
        e.contains("IONFIELD_SHARD_COUNT") && e.contains("Fix:"),
        "{e}"
    );
    assert_eq!(Shard::from_env(env(&[])).unwrap().0, Shard::ALL);
}

#[test]
fn log_and_linear_spacing_are_exact() {
    assert_eq!(logspace(0.01, 1.0, 3), [0.01, 0.1, 1.0]);
    assert_eq!(
        logspace(1e-3, 1e3, 7),
        [1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1000.0]
    );
    assert_eq!(linspace(0.0, 1.0, 5), [0.0, 0.25, 0.5, 0.75, 1.0]);
    assert_eq!(linspace(2.0, 3.0, 1), [2.0]);
    let s = Sweep::parse(
        "name='a'\nbase='b'\n[axes]\nx = { linear = [1, 2, 3] }\ny = [16, \"magma\", [1,2]]\n",
        "s.toml",
    )
    .unwrap();
    let texts: Vec<_> = s.axes[0].values.iter().map(|v| v.text.clone()).collect();
    assert_eq!(texts, ["1.0", "1.5", "2.0"]);
    let texts: Vec<_> = s.axes[1].values.iter().map(|v| v.text.clone()).collect();
    assert_eq!(texts, ["16", "\"magma\"", "[1,2]"]);
}

#[test]
fn latin_hypercube_hits_every_stratum_once_and_is_seeded() {
    let text = "name='h'\nbase='b'\nmode='lhs'\nseed=7\nsamples=12\n[axes]\na = { log = [0.01, 100.0] }\nb = { linear = [5, 6] }\n";
    let s = Sweep::parse(text, "s.toml").unwrap();
    assert_eq!(s.runs().len(), 12);
    assert_eq!(s.runs(), Sweep::parse(text, "s.toml").unwrap().runs());
    let other = Sweep::parse(&text.replace("seed=7", "seed=8"), "s.toml").unwrap();
    assert_ne!(s.runs(), other.runs());
    for (axis, lo, hi, log) in [(0, 0.01f64, 100.0f64, true), (1, 5.0, 6.0, false)] {
        let mut hit = [0; 12];
        for v in &s.axes[axis].values {
            let x = v.number.unwrap();
            let u = if log {
                (x.log10() - lo.log10()) / (hi.log10() - lo.log10())
            } else {
                (x - lo) / (hi - lo)
            };
            assert!((0.0..1.0).contains(&u), "{x}");
            hit[(u * 12.0).floor() as usize] += 1;
        }
        assert_eq!(hit, [1; 12], "axis {axis}");
    }
}

#[test]
fn bad_sweep_files_name_file_field_and_fix() {
    let cases = [
        ("base='b'\n[axes]\nx=[1]\n", "name"),
        ("name='a'\nbase='b'\n", "axes"),
        ("name='a'\nbase='b'\nmode='grid'\n[axes]\nx=[1]\n", "mode"),
        (
            "name='a'\nbase='b'\n[axes]\nx={ log = [0, 1, 3] }\n",
            "axes.\"x\"",
        ),
        (
            "name='a'\nbase='b'\nmode='zip'\n[axes]\nx=[1,2]\ny=[1]\n",
            "axes.\"y\"",
        ),
        (
            "name='a'\nbase='b'\nmode='lhs'\n[axes]\nx={ log = [1, 2] }\n",
            "samples",
        ),
        ("name='a'\nbase='b'\nfoo=1\n[axes]\nx=[1]\n", "foo"),
    ];
    for (text, field) in cases {
        let e = Sweep::parse(text, "s.toml").unwrap_err();
        assert_eq!(e.field, field, "{e}");
        let shown = e.to_string();
        assert!(
            shown.starts_with("s.toml: ") && shown.contains("Fix: "),
            "{shown}"
        );
    }
}

/// A complete run of a dose sweep: `dosing[0].amount_mm = dose`, optionally a second axis,
/// and its final tumour mean viab.
fn dose_row(index: usize, dose: f64, k: Option<f64>, viab: f64) -> gather::ResultRow {
    let mut assignments = vec![("dosing[0].amount_mm".to_string(), dose.to_string())];
    if let Some(k) = k {
        assignments.push(("parameters.k_d_Fe.value".to_string(), k.to_string()));
    }
    gather::ResultRow {
        run_id: format!("r{index:04}"),
        index,
        status: "complete".into(),
        assignments,
        metrics: [("final_mean_viab_tumour", viab)].into_iter().collect(),
    }
}

/// The resolved scenario a sweep's runs carry, as far as the titles read it.
fn resolved() -> toml::Table {
    "[[dosing]]\nspecies = \"NP_Fe\"\namount_mm = 2.0\n[parameters.k_d_Fe]\nvalue = 1e-3\nunit = \"1/s\"\n"
        .parse()
        .unwrap()
}

/// The dose–response chart of issue 17: a dose range of 10× or more on a log axis (a
/// 100× range was drawn linear), a marker at every run, and titles without raw config
/// keys, in the axis, the title and the legend.
#[test]
fn dose_response_is_logarithmic_from_10x_with_markers_and_readable_titles() {
    let keys = vec![
        "dosing[0].amount_mm".to_string(),
        "parameters.k_d_Fe.value".to_string(),
    ];
    let doses = [0.2, 0.6, 2.0, 6.0, 20.0];
    let rows: Vec<_> = doses
        .iter()
        .enumerate()
        .flat_map(|(i, &d)| {
            [
                dose_row(2 * i, d, Some(1e-3), 1.0 - d / 40.0),
                dose_row(2 * i + 1, d, Some(1e-2), 1.0 - d / 25.0),
            ]
        })
        .collect();
    let r = resolved();
    let (spec, series) = plot::dose_response_chart(
        &rows,
        &keys,
        "dosing[0].amount_mm",
        "final_mean_viab_tumour",
        Some(&r),
    )
    .expect("a chart");
    assert!(spec.log_x, "100× of dose on a linear axis");
    assert!(spec.markers);
    assert_eq!(spec.x_label, "NP_Fe dose (mM)");
    assert_eq!(spec.y_label, "tumour mean viab at the end");
    let labels: Vec<&str> = series.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["k_d_Fe (1/s) = 0.001", "k_d_Fe (1/s) = 0.01"]);
    for text in labels.iter().copied().chain([
        spec.title.as_str(),
        spec.x_label.as_str(),
        spec.y_label.as_str(),
    ]) {
        for raw in [
            "dosing[",
            "amount_mm",
            ".value",
            "parameters.",
            "final_mean",
        ] {
            assert!(!text.contains(raw), "raw key {raw:?} in {text:?}");
        }
    }
    assert!(series.iter().all(|s| s.points.len() == doses.len()));
    let png = plot::dose_response_png(
        &rows,
        &keys,
        "dosing[0].amount_mm",
        "final_mean_viab_tumour",
        Some(&r),
    )
    .unwrap()
    .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    // 2× of dose stays linear; without the resolved scenario the dose is numbered.
    let narrow: Vec<_> = [1.0, 1.5, 2.0]
        .iter()
        .enumerate()
        .map(|(i, &d)| dose_row(i, d, None, 0.5))
        .collect();
    let (spec, _) = plot::dose_response_chart(
        &narrow,
        &keys[..1],
        "dosing[0].amount_mm",
        "final_mean_viab_tumour",
        None,
    )
    .unwrap();
    assert!(!spec.log_x);
    assert_eq!(spec.x_label, "dose 1 (mM)");
}

#[test]
fn axis_titles_name_the_quantity_and_its_unit() {
    let r = resolved();
    for (key, want) in [
        ("species.O2.diffusion_um2_per_s", "O2 diffusion (µm²/s)"),
        ("grid.voxel_um", "voxel (µm)"),
        ("time.end_s", "end (s)"),
        ("dosing[0].time_s", "NP_Fe dose time (s)"),
        ("parameters.k_d_Fe", "k_d_Fe (1/s)"),
        ("plasma.NP_lip.dose_mm", "NP_lip dose (mM)"),
    ] {
        assert_eq!(plot::axis_title(key, Some(&r)), want, "{key}");
    }
    assert_eq!(
        plot::metric_title("time_to_50pct_kill_s"),
        "time to 50 % kill (s)"
    );
}
