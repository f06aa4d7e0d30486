//! `timeseries.csv` against the written fields, and the time-series plots of a real run
//! (issue 6 items 3 and 4): every point-probe row equals the `.npy` value of the voxel
//! holding the point, every region mean/min/max equals the statistic recomputed here from
//! the `.npy` and the tissue mask (as do `viability.csv`'s tumour rows), and `plots/timeseries.png` and `plots/viability.png` are
//! valid PNGs at 150 dpi with ink in every panel.

mod common;

use common::{ionfield, read_npy_f32};
use ionfield::chart::png_dpi;
use ionfield::config;
use ionfield::model::{Model, TISSUE_ID_MASK};
use std::collections::HashMap;

const SETS: [&str; 7] = [
    "grid.shape=[12,12,12]",
    "grid.voxel_um=53",
    "time.end_s=120",
    "time.output_interval_s=60",
    "time.spin_up_s=10",
    "output.slices=[6]",
    "output.png16=false",
];

#[test]
fn timeseries_rows_match_the_written_fields_and_plots_are_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["run", "fe_fenton_cdt", "--backend", "cpu", "--out", "run"];
    for s in SETS {
        args.extend(["--set", s]);
    }
    let r = ionfield(dir.path(), &args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = dir.path().join("run");

    // The same scenario and model, for the probe voxels and the tissue mask.
    let sets: Vec<String> = SETS.iter().map(|s| s.to_string()).collect();
    let path = "configs/therapies/fe_fenton_cdt.toml";
    let sc = config::load_str(
        config::catalog::file(path).expect("a preset"),
        &config::catalog::source_name(path),
        &sets,
    )
    .expect("fe_fenton_cdt loads");
    let model = Model::build(&sc);
    assert_eq!(sc.output.probes.len(), 3, "the default has three probes");

    // time_s, probe, field, unit, statistic → value
    let text = std::fs::read_to_string(out.join("timeseries.csv")).expect("timeseries.csv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("time_s,probe,field,unit,statistic,value")
    );
    let mut rows: HashMap<(String, String, String, String), f64> = HashMap::new();
    for line in lines {
        let c: Vec<&str> = line.split(',').collect();
        assert_eq!(c.len(), 6, "{line}");
        let key = (
            c[0].to_string(),
            c[1].to_string(),
            c[2].to_string(),
            c[4].to_string(),
        );
        rows.insert(key, c[5].parse().expect("a number"));
    }
    let get = |t: &str, probe: &str, field: &str, stat: &str| {
        *rows
            .get(&(t.into(), probe.into(), field.into(), stat.into()))
            .unwrap_or_else(|| panic!("no row {t},{probe},{field},{stat}"))
    };

    let viability_csv = std::fs::read_to_string(out.join("viability.csv")).expect("viability.csv");
    let viability: Vec<Vec<&str>> = viability_csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let tumour = sc.tissues.iter().position(|t| t.name == "tumour").unwrap() as u32;
    let tumour_voxels: Vec<usize> = (0..model.mask.len())
        .filter(|&v| {
            model.mask[v] & TISSUE_ID_MASK == tumour && model.mask[v] & !TISSUE_ID_MASK == 0
        })
        .collect();
    assert!(tumour_voxels.len() > 50, "a tumour on the test grid");
    let held_in_tumour = (0..model.mask.len())
        .filter(|&v| {
            model.mask[v] & TISSUE_ID_MASK == tumour && model.mask[v] & !TISSUE_ID_MASK != 0
        })
        .count();
    assert!(
        held_in_tumour > 0,
        "vessel voxels in the tumour (which the summaries leave out)"
    );
    let mut checked = 0;
    for (t, tag) in [
        ("0", "t0000000.0s"),
        ("60", "t0000060.0s"),
        ("120", "t0000120.0s"),
    ] {
        for field in ["O2", "Fe2", "OH", "viab", "pH"] {
            let v = read_npy_f32(&out.join(format!("fields/{field}_{tag}.npy")));
            for p in &sc.output.probes {
                assert_eq!(
                    get(t, &p.name, field, "value"),
                    v[p.voxel] as f64,
                    "{field} at {}",
                    p.name
                );
                checked += 1;
            }
            let x: Vec<f64> = tumour_voxels.iter().map(|&i| v[i] as f64).collect();
            let mean = x.iter().sum::<f64>() / x.len() as f64;
            let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-30);
            assert!(
                rel(get(t, "tumour", field, "mean"), mean) < 1e-12,
                "{field} tumour mean at {t} s"
            );
            let max = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let min = x.iter().cloned().fold(f64::INFINITY, f64::min);
            assert_eq!(get(t, "tumour", field, "max"), max);
            assert_eq!(get(t, "tumour", field, "min"), min);
            let whole = v.iter().map(|&a| a as f64).sum::<f64>() / v.len() as f64;
            assert!(rel(get(t, "whole", field, "mean"), whole) < 1e-12);
            checked += 4;
        }
        let viab = read_npy_f32(&out.join(format!("fields/viab_{tag}.npy")));
        let alive = tumour_voxels.iter().filter(|&&i| viab[i] >= 0.05).count();
        assert_eq!(
            get(t, "tumour", "viab", "fraction_alive"),
            alive as f64 / tumour_voxels.len() as f64
        );
        // viability.csv counts the same voxels (vessels left out): its tumour row at this
        // time gives the same mean and alive fraction (6 decimals) and voxel count.
        let vrow = viability
            .iter()
            .find(|c| c[0] == t && c[1] == "tumour")
            .unwrap_or_else(|| panic!("no viability.csv row for the tumour at {t} s"));
        assert_eq!(vrow[2].parse::<usize>().unwrap(), tumour_voxels.len());
        let mean: f64 =
            tumour_voxels.iter().map(|&i| viab[i] as f64).sum::<f64>() / tumour_voxels.len() as f64;
        assert!(
            (vrow[3].parse::<f64>().unwrap() - mean).abs() < 1e-6,
            "{vrow:?} vs {mean}"
        );
        assert!(
            (vrow[4].parse::<f64>().unwrap() - alive as f64 / tumour_voxels.len() as f64).abs()
                < 1e-6
        );
    }
    // Iron reaches the injection centre: the time series must show the dose.
    assert!(
        get("120", "injection_centre", "Fe2", "value")
            > 10.0 * get("0", "injection_centre", "Fe2", "value")
    );
    eprintln!("{checked} timeseries values checked against the .npy fields");

    for (name, min_w) in [("timeseries", 1000), ("viability", 400)] {
        let path = out.join(format!("plots/{name}.png"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!((png_dpi(&bytes).expect("pHYs") - 150.0).abs() < 0.1);
        let img = image::load_from_memory(&bytes)
            .expect("valid PNG")
            .to_rgb8();
        assert!(
            img.width() >= min_w,
            "{name}: {}×{}",
            img.width(),
            img.height()
        );
        // Ink in each cell of the page (3 columns × rows of panels for the time series).
        let (cols, rows) = if name == "timeseries" { (3, 4) } else { (1, 1) };
        let legend = if name == "timeseries" { 0.12 } else { 0.0 };
        let plot_w = (img.width() as f64 * (1.0 - legend)) as u32;
        for r in 0..rows {
            for c in 0..cols {
                if name == "timeseries" && r * cols + c >= 10 {
                    continue; // the page has 10 panels
                }
                let (x0, y0) = (c * plot_w / cols, r * img.height() / rows);
                let (w, h) = (plot_w / cols, img.height() / rows);
                let ink = (y0..y0 + h)
                    .flat_map(|y| (x0..x0 + w).map(move |x| (x, y)))
                    .filter(|&(x, y)| {
                        let p = img.get_pixel(x, y).0;
                        p.iter().any(|&ch| ch < 200) && !(p[0] == p[1] && p[1] == p[2])
                    })
                    .count();
                assert!(
                    ink > 200,
                    "{name}: panel ({r}, {c}) has {ink} coloured pixels"
                );
            }
        }
    }
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(
        manifest.contains("\"plots/timeseries.png\"") && manifest.contains("\"timeseries.csv\"")
    );
    // Beside each PNG, the SVG and PDF of the same chart, listed in the manifest; the SVG
    // holds the axis titles as text and the PDF's page is the PNG's size at 150 dpi.
    for name in ["timeseries", "viability"] {
        let png = image::open(out.join(format!("plots/{name}.png"))).unwrap();
        let svg = std::fs::read_to_string(out.join(format!("plots/{name}.svg"))).unwrap();
        assert!(
            svg.contains(">time [h]</text>")
                || svg.contains(">time [min]</text>")
                || svg.contains(">time [s]</text>"),
            "{name}.svg has no time axis title"
        );
        let pdf = std::fs::read(out.join(format!("plots/{name}.pdf"))).unwrap();
        let text = String::from_utf8_lossy(&pdf);
        // "/MediaBox [0 0 W H]" in pt (f32 in the file).
        let media: Vec<f64> = text
            .split("/MediaBox [")
            .nth(1)
            .and_then(|r| r.split(']').next())
            .expect("a MediaBox")
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        let pt = |px: u32| px as f64 / 150.0 * 72.0;
        assert!(
            (media[2] - pt(png.width())).abs() < 0.01 && (media[3] - pt(png.height())).abs() < 0.01,
            "{name}.pdf: MediaBox {media:?} for a {}×{} px PNG at 150 dpi",
            png.width(),
            png.height()
        );
        for ext in ["svg", "pdf"] {
            assert!(
                manifest.contains(&format!("\"plots/{name}.{ext}\"")),
                "{name}.{ext}"
            );
        }
    }
}
