//! `ionfield gather`: a sweep's runs into DIR/results.csv (status, swept values, metrics)
//! and a plot of a metric against one axis (lines) or two (heat map).

use super::args::GatherArgs;
use super::common::AppError;
use crate::output::atomic::write_atomic;
use crate::sweep::gather::{self, ResultRow, METRICS};
use crate::sweep::plot;

fn input(msg: String) -> AppError {
    AppError::input(anyhow::anyhow!(msg))
}

/// `ionfield gather`.
/// The files of one plot: (extension, bytes).
type PlotFiles = Vec<(&'static str, Vec<u8>)>;

pub fn gather(args: &GatherArgs) -> Result<(), AppError> {
    let dir = &args.dir;
    let (listed, keys) = gather::read_sweep_json(&dir.join("sweep.json")).map_err(input)?;
    if !METRICS.contains(&args.metric.as_str()) {
        return Err(input(format!(
            "--metric {}: unknown metric. Fix: use one of {}",
            args.metric,
            METRICS.join(", ")
        )));
    }
    let check_axis = |flag: &str, a: &str| {
        if keys.iter().any(|k| k == a) {
            Ok(())
        } else {
            Err(input(format!(
                "{flag} {a}: not an axis of the sweep in {}. Fix: use one of {}",
                dir.join("sweep.json").display(),
                keys.join(", ")
            )))
        }
    };
    let x = args.x.clone().unwrap_or_else(|| keys[0].clone());
    check_axis("--x", &x)?;
    if let Some(y) = &args.y {
        check_axis("--y", y)?;
    }
    let rows: Vec<ResultRow> = listed
        .iter()
        .map(|(i, id, a)| gather::result_row(dir, *i, id, a))
        .collect();
    let (mut complete, mut failed, mut missing, mut other) = (0, 0, 0, 0);
    for r in &rows {
        match r.status.as_str() {
            "complete" => complete += 1,
            "failed" => {
                failed += 1;
                eprintln!("run {}: failed (manifest status failed)", r.run_id);
            }
            "missing" => {
                missing += 1;
                eprintln!(
                    "run {}: missing (no {} or no manifest.json in it)",
                    r.run_id,
                    dir.join(&r.run_id).display()
                );
            }
            s => {
                other += 1;
                eprintln!("run {}: not finished (manifest status {s})", r.run_id);
            }
        }
    }
    let csv_path = dir.join("results.csv");
    write_atomic(&csv_path, gather::results_csv(&rows, &keys).as_bytes())
        .map_err(AppError::input)?;
    println!(
        "{}: {} runs: {complete} complete, {failed} failed, {missing} missing, {other} unfinished",
        csv_path.display(),
        rows.len()
    );
    let resolved = gather::resolved_scenario(dir, &rows);
    // A heat map is an image (PNG); a dose-response chart is drawn as PNG, SVG and PDF.
    let (files, stem): (Result<Option<PlotFiles>, _>, String) = match &args.y {
        Some(y) => (
            plot::heat_map_png(&rows, &x, y, &args.metric, resolved.as_ref())
                .map(|png| png.map(|b| vec![("png", b)])),
            format!(
                "{}_vs_{}_and_{}",
                args.metric,
                plot::safe_name(&x),
                plot::safe_name(y)
            ),
        ),
        None => (
            plot::dose_response_files(&rows, &keys, &x, &args.metric, resolved.as_ref()).map(|f| {
                f.map(|f| vec![("png", f.png), ("svg", f.svg.into_bytes()), ("pdf", f.pdf)])
            }),
            format!("{}_vs_{}", args.metric, plot::safe_name(&x)),
        ),
    };
    match files.map_err(AppError::simulation)? {
        Some(files) => {
            for (ext, bytes) in files {
                let path = dir.join("plots").join(format!("{stem}.{ext}"));
                write_atomic(&path, &bytes).map_err(AppError::input)?;
                println!("{}", path.display());
            }
        }
        None => eprintln!(
            "no plot: no complete run has both a numeric {x} and a value of {} (time_to_50pct_kill_s has none where a run never reached 50 % kill)",
            args.metric
        ),
    }
    Ok(())
}
