//! Publication plots: `[output.figure]` validation (errors name the file, the dotted field
//! and the fix) and the figure series of a real run (`plots/figure_series.png`, listed in
//! the manifest, with the requested dpi). Rendering itself is tested in
//! `src/chart/tests.rs`.

mod common;

use common::ionfield;
use ionfield::chart::png_dpi;
use ionfield::config::{self, ErrorKind};

/// The diffusion-only config fixture: O2 and glucose written, 64³ voxels of 10 µm, outputs
/// every 120 s to 600 s.
const BASE: &str = include_str!("../src/config/testdata/base.toml");
const FILE: &str = "figure.toml";

/// `BASE` with an `[output.figure]` table of `body` appended.
fn with_figure(body: &str) -> String {
    format!("{BASE}\n[output.figure]\n{body}\n")
}

fn load(text: &str, sets: &[&str]) -> Result<config::Scenario, config::Error> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    config::load_str(text, FILE, &sets)
}

/// The error of `text`, checked to be one line naming the file and `field`, with a fix;
/// returns the message.
fn error_on(text: &str, sets: &[&str], field: &str) -> String {
    let e = match load(text, sets) {
        Ok(_) => panic!("expected an error on {field}"),
        Err(e) => e,
    };
    let msg = e.to_string();
    println!("{msg}");
    assert!(msg.starts_with(FILE), "names the file: {msg}");
    assert!(
        msg.contains(&format!(": {field}: ")),
        "names {field}: {msg}"
    );
    assert!(msg.contains("Fix: "), "has a fix: {msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert_eq!(e.field, field);
    msg
}

#[test]
fn figure_defaults_to_log_spaced_output_times_middle_slice_150_dpi() {
    let s = load(&with_figure("fields = [\"glucose\", \"O2\"]"), &[]).expect("loads");
    let f = s.output.figure.expect("a figure");
    assert_eq!(f.fields, ["glucose", "O2"]);
    // Outputs 0, 120, …, 600 s: t = 0, the outputs nearest end/16 = 37.5 s (120 s) and
    // end/4 = 150 s on a log scale (120 s is taken, so the next, 240 s), and the end.
    assert_eq!(f.times_s, [0.0, 120.0, 240.0, 600.0]);
    assert_eq!(f.slice_index, 32);
    assert_eq!(f.dpi, 150);
    // Fewer outputs than four: all of them.
    let s = load(
        &with_figure("fields = [\"O2\"]"),
        &["time.output_interval_s=300"],
    )
    .expect("loads");
    assert_eq!(s.output.figure.unwrap().times_s, [0.0, 300.0, 600.0]);
    // Given times, slice and dpi; also through --set.
    let s = load(
        &with_figure("fields = [\"O2\"]\ntimes_s = [0, 120.0, 600]\nslice_index = 10\ndpi = 300"),
        &[],
    )
    .expect("loads");
    let f = s.output.figure.unwrap();
    assert_eq!(
        (f.times_s.as_slice(), f.slice_index, f.dpi),
        (&[0.0, 120.0, 600.0][..], 10, 300)
    );
    let s = load(
        BASE,
        &[
            "output.figure.fields=[\"O2\"]",
            "output.figure.times_s=[480]",
        ],
    )
    .expect("--set creates the table");
    assert_eq!(s.output.figure.unwrap().times_s, [480.0]);
    // Without the table: no figure.
    assert!(load(BASE, &[]).unwrap().output.figure.is_none());
}

#[test]
fn figure_unknown_field_names_the_field_and_the_output_fields() {
    let msg = error_on(
        &with_figure("fields = [\"O2\", \"glucos\"]"),
        &[],
        "output.figure.fields[1]",
    );
    assert!(msg.contains("`glucos` is not an output field"), "{msg}");
    assert!(msg.contains("did you mean `glucose`?"), "{msg}");
    assert!(
        msg.contains("O2") && msg.contains("glucose"),
        "lists the output fields: {msg}"
    );
    // A species that exists but is not written.
    let text = with_figure("fields = [\"glucose\"]")
        .replacen("fields = [\"O2\", \"glucose\"]", "fields = [\"O2\"]", 1)
        .replacen(", glucose = [4.0, 5.0]", "", 1);
    let msg = error_on(&text, &[], "output.figure.fields[0]");
    assert!(msg.contains("add \"glucose\" to output.fields"), "{msg}");
    error_on(
        &with_figure("fields = [\"O2\", \"O2\"]"),
        &[],
        "output.figure.fields[1]",
    );
    error_on(&with_figure("fields = []"), &[], "output.figure.fields");
    // The table without `fields`.
    let e = load(&with_figure("dpi = 300"), &[]).expect_err("fields is required");
    assert_eq!(e.kind, ErrorKind::MissingKey, "{e}");
    assert!(e.to_string().contains("fields"), "{e}");
}

#[test]
fn figure_time_that_is_not_an_output_time_lists_the_output_times() {
    let msg = error_on(
        &with_figure("fields = [\"O2\"]\ntimes_s = [0, 300]"),
        &[],
        "output.figure.times_s[1]",
    );
    assert!(msg.contains("300 s is not an output time"), "{msg}");
    assert!(
        msg.contains("0, 120, 240, 360, 480, 600 s"),
        "lists them: {msg}"
    );
    assert!(msg.contains("output_interval_s = 120 s"), "{msg}");
    assert!(
        msg.contains("or remove output.figure.times_s for 4 chosen on a log time scale"),
        "names the key it was given: {msg}"
    );
    // The same after --set changes the output times.
    let msg = error_on(
        &with_figure("fields = [\"O2\"]\ntimes_s = [0, 120]"),
        &["time.output_interval_s=300"],
        "output.figure.times_s[1]",
    );
    assert!(msg.contains("0, 300, 600 s"), "{msg}");
    error_on(
        &with_figure("fields = [\"O2\"]\ntimes_s = [240, 120]"),
        &[],
        "output.figure.times_s[1]",
    );
    // Many output times are abbreviated.
    let msg = error_on(
        &with_figure("fields = [\"O2\"]\ntimes_s = [0.5]"),
        &["time.output_interval_s=1"],
        "output.figure.times_s[0]",
    );
    assert!(msg.contains("…, 599, 600 s"), "{msg}");
    assert!(msg.len() < 600, "short: {msg}");
}

#[test]
fn figure_slice_and_dpi_out_of_range() {
    let msg = error_on(
        &with_figure("fields = [\"O2\"]\nslice_index = 64"),
        &[],
        "output.figure.slice_index",
    );
    assert!(msg.contains("0..63"), "{msg}");
    error_on(
        &with_figure("fields = [\"O2\"]\ndpi = 0"),
        &[],
        "output.figure.dpi",
    );
    error_on(
        &with_figure("fields = [\"O2\"]\ndpi = 2400"),
        &[],
        "output.figure.dpi",
    );
    let e = load(&with_figure("fields = [\"O2\"]\ndpy = 300"), &[]).expect_err("unknown key");
    assert_eq!(e.kind, ErrorKind::UnknownKey, "{e}");
}

/// The built-in default (with its `[output.figure]`) on 16³ voxels for 20 s, outputs every
/// 10 s, the figure at 300 dpi: `plots/figure_series.png` is written, listed in the
/// manifest as a plot with its checksum, and is a PNG of 3 columns × 5 rows at 300 dpi;
/// its `.svg` and `.pdf` are beside it at the PNG's physical size, the SVG with vector
/// text and one image per panel and colour bar.
#[test]
fn run_writes_figure_series_listed_in_the_manifest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = dir.path().join("run");
    let run_s = run.to_str().expect("UTF-8 temp path");
    let out = ionfield(
        dir.path(),
        &[
            "run",
            "fe_fenton_cdt",
            "--backend",
            "cpu",
            "--out",
            run_s,
            "--set",
            "time.end_s=20",
            "--set",
            "time.output_interval_s=10",
            "--set",
            "grid.shape=[16,16,16]",
            "--set",
            "grid.voxel_um=40",
            "--set",
            "output.slices=[8]",
            "--set",
            "output.png16=false",
            "--set",
            "output.figure.dpi=300",
        ],
    );
    assert_eq!(out.code, 0, "run failed:\n{}", out.stderr);
    let path = run.join("plots/figure_series.png");
    let bytes = std::fs::read(&path).expect("plots/figure_series.png written");
    assert_eq!(png_dpi(&bytes), Some(300.0), "pHYs says 300 dpi");
    let img = image::load_from_memory(&bytes).expect("a PNG").into_rgb8();
    // 16 voxels, 28 px each (1.5 in × 300 dpi / 16 = 28.1): 3 columns (t = 0, 10, 20 s)
    // and 5 rows (O2, pH, Fe2, OH, viab) of 448 px panels plus labels.
    let (w, h) = img.dimensions();
    assert!((3 * 448..3 * 448 + 700).contains(&w), "width {w}");
    assert!((5 * 448..5 * 448 + 500).contains(&h), "height {h}");

    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("manifest.json")).expect("manifest"),
    )
    .expect("JSON");
    assert_eq!(manifest["status"], "complete");
    let rec = manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["path"] == "plots/figure_series.png")
        .expect("the figure is listed in manifest.json");
    assert_eq!(rec["kind"], "plot");
    assert_eq!(rec["field"], "O2,pH,Fe2,OH,viab");
    assert_eq!(rec["time_s"].as_f64(), Some(20.0));
    assert_eq!(rec["bytes"].as_u64(), Some(bytes.len() as u64));
    let mapping = rec["mapping"].as_str().expect("mapping");
    // Rows are labelled in the unit they are drawn in: O2's fixed 0–0.06 mM as µM.
    assert!(mapping.contains("O2 [µM] 0 … 60 (fixed)"), "{mapping}");
    assert!(mapping.contains("t = 0, 10, 20 s"), "{mapping}");
    // The vector twins: listed, the same physical size as the PNG (pixels / 300 dpi), the
    // column headers as text, 15 panels and 5 colour bars as images, a one-page PDF.
    let svg = std::fs::read_to_string(run.join("plots/figure_series.svg")).expect("SVG");
    let size = format!(
        r#"width="{:.4}in" height="{:.4}in""#,
        w as f64 / 300.0,
        h as f64 / 300.0
    );
    assert!(svg.contains(&size), "SVG sized {size}");
    assert_eq!(
        svg.matches("<image ").count(),
        15 + 5,
        "panels and colour bars"
    );
    for header in ["t = 0 s", "t = 10 s", "t = 20 s", "O2 [µM]"] {
        assert!(
            svg.contains(&format!(">{header}</text>")),
            "SVG text {header:?}"
        );
    }
    let pdf = std::fs::read(run.join("plots/figure_series.pdf")).expect("PDF");
    assert!(pdf.starts_with(b"%PDF-"), "a PDF");
    for (path, len) in [
        ("plots/figure_series.svg", svg.len()),
        ("plots/figure_series.pdf", pdf.len()),
    ] {
        let rec = manifest["files"]
            .as_array()
            .expect("files")
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("{path} is listed in manifest.json"));
        assert_eq!(rec["kind"], "plot");
        assert_eq!(rec["bytes"].as_u64(), Some(len as u64));
        let how = rec["mapping"].as_str().expect("mapping");
        assert!(
            how.contains("embedded PNG") && !how.contains("pHYs"),
            "{how}"
        );
    }
    // The figure's settings are in the resolved scenario.
    let fig = &manifest["scenario"]["output"]["figure"];
    assert_eq!(fig["dpi"], 300);
    assert_eq!(fig["slice_index"], 8);
}

/// One colour range per field over the whole run: every 8-bit slice of OH· (automatic
/// range, rising ~100× over the run) is drawn with the same lo/hi, which are the smallest
/// and largest value of the OH· field over all output times (read from the .npy files);
/// fields with a fixed range keep it; a stopped run keeps each time's own range until it
/// completes.
#[test]
fn colour_slices_of_a_field_share_one_range_over_the_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = dir.path().join("run");
    let run_s = run.to_str().expect("UTF-8 temp path");
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "run",
            "fe_fenton_cdt",
            "--backend",
            "cpu",
            "--out",
            run_s,
            "--set",
            "time.spin_up_s=60",
            "--set",
            "time.end_s=240",
            "--set",
            "time.output_interval_s=60",
            "--set",
            "grid.shape=[16,16,16]",
            "--set",
            "grid.voxel_um=40",
            "--set",
            "output.slices=[8]",
            "--set",
            "output.png16=false",
            "--set",
            "output.vti=false",
        ];
        a.extend_from_slice(extra);
        a
    };
    let ranges = |field: &str| -> Vec<(f64, f64, String)> {
        let text = std::fs::read_to_string(run.join("manifest.json")).expect("manifest");
        let m: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        m["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "png8" && f["field"] == field)
            .map(|f| {
                (
                    f["lo"].as_f64().unwrap(),
                    f["hi"].as_f64().unwrap(),
                    f["mapping"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    // Stopped at 150 s: the slices so far keep the range of their own time.
    let out = ionfield(dir.path(), &args(&["--stop-at", "150"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let part = ranges("OH");
    assert_eq!(part.len(), 3, "{part:?}");
    assert!(part[0].1 != part[2].1, "OH· rises: {part:?}");
    // Resumed to the end: one range for all five times.
    let out = ionfield(dir.path(), &["resume", run_s]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let oh = ranges("OH");
    assert_eq!(oh.len(), 5, "{oh:?}");
    // The run's OH· values, from the .npy of every output time.
    let (mut lo, mut hi, mut min_pos) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY);
    for entry in std::fs::read_dir(run.join("fields")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("OH_")
        {
            let bytes = std::fs::read(&path).unwrap();
            // npy v1: header length at bytes 8..10, f32 little-endian after it
            let start = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            for c in bytes[start..].chunks_exact(4) {
                let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64;
                lo = lo.min(v);
                hi = hi.max(v);
                if v > 0.0 {
                    min_pos = min_pos.min(v);
                }
            }
        }
    }
    // OH· spans more than three decades: a log bar (colour_scale = "auto"), the same for
    // all five times, from a decade at or below the run's smallest positive value to a
    // round value at or above its largest (less than 2.5× above it).
    assert!(
        (hi / min_pos).log10() > 3.0,
        "OH· spans {lo}…{hi}, smallest positive {min_pos}"
    );
    let (bar_lo, bar_hi) = (oh[0].0, oh[0].1);
    for (l, h, mapping) in &oh {
        assert_eq!(
            (*l, *h),
            (bar_lo, bar_hi),
            "OH slice range is not the run's: {oh:?}"
        );
        assert!(mapping.contains("range of the whole run"), "{mapping}");
        assert!(mapping.contains("log10(value/lo)"), "{mapping}");
    }
    assert!(
        bar_hi >= hi && bar_hi < 2.5 * hi,
        "top {bar_hi} for max {hi}"
    );
    assert!(
        bar_lo <= min_pos && bar_lo > min_pos / 10.0,
        "bottom {bar_lo} for {min_pos}"
    );
    let decade = bar_lo.log10();
    assert!(
        (decade - decade.round()).abs() < 1e-9,
        "bottom {bar_lo} is a decade"
    );
    assert!(
        hi > 10.0 * part[0].1,
        "OH· should rise over the run: {hi} vs {:?}",
        part[0]
    );
    // Forced linear: the bar is the run's exact range.
    let linear = dir.path().join("linear");
    let linear_s = linear.to_str().unwrap();
    let mut a = args(&["--set", "output.colour_scale=\"linear\""]);
    let at = a.iter().position(|&x| x == run_s).unwrap();
    a[at] = linear_s;
    let out = ionfield(dir.path(), &a);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = std::fs::read_to_string(linear.join("manifest.json")).expect("manifest");
    let m: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let lin: Vec<(f64, f64)> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "png8" && f["field"] == "OH")
        .map(|f| (f["lo"].as_f64().unwrap(), f["hi"].as_f64().unwrap()))
        .collect();
    assert_eq!(lin.len(), 5);
    assert!(lin.iter().all(|&r| r == (lo, hi)), "{lin:?} vs {lo}…{hi}");
    // O2 has a fixed range in the preset: unchanged.
    for (l, h, mapping) in ranges("O2") {
        assert_eq!((l, h), (0.0, 0.06));
        assert!(mapping.contains("fixed range"), "{mapping}");
    }
}
