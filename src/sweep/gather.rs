//! Metrics of finished runs and the `results.csv` table of a sweep.
//!
//! Every metric comes from a run folder's `timeseries.csv` (tidy: `time_s, probe, field,
//! unit, statistic, value`), `viability.csv` (fallback for the viability metrics) and
//! `manifest.json`; a metric whose rows are absent (no `OH` species, no `viab`) is left
//! out, and one the run has the rows for but no value of (`time_to_50pct_kill_s` of a run
//! that never reached it) is NaN in the map and an empty cell in `results.csv`.
//! Definitions (the tumour = probe `tumour` of timeseries.csv):
//!
//! - `final_viable_fraction_tumour` (1): `viab` `fraction_alive` (voxels with viab ≥ 0.05)
//!   at the last time.
//! - `final_mean_viab_tumour` (1): `viab` `mean` at the last time.
//! - `time_to_50pct_kill_s` (s): the first time the `viab` mean is ≤ 0.5, linearly
//!   interpolated between the two summary times around the crossing; empty if never.
//! - `peak_OH_mM_tumour` (mM): the largest `OH` `mean` over time.
//! - `auc_OH_mM_s_tumour` (mM·s): trapezoid rule over time of the `OH` `mean`.
//! - `mean_pH_tumour_final` (pH): `pH` `mean` at the last time.
//! - `wall_time_s` (s): `wall_time_s` of manifest.json.

use std::collections::BTreeMap;
use std::path::Path;

/// Names of the metrics, in column order.
pub const METRICS: &[&str] = &[
    "final_viable_fraction_tumour",
    "final_mean_viab_tumour",
    "time_to_50pct_kill_s",
    "peak_OH_mM_tumour",
    "auc_OH_mM_s_tumour",
    "mean_pH_tumour_final",
    "wall_time_s",
];

/// A time series (time_s, value), sorted by time, one value per time (the last row wins).
pub type Series = Vec<(f64, f64)>;

/// The tumour series of `timeseries.csv`, keyed by (field, statistic).
pub fn tumour_series(csv: &str) -> BTreeMap<(String, String), Series> {
    let mut map: BTreeMap<(String, String), BTreeMap<u64, (f64, f64)>> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        if cols.len() != 6 || cols[1] != "tumour" {
            continue;
        }
        let (Ok(t), Ok(v)) = (cols[0].parse::<f64>(), cols[5].parse::<f64>()) else {
            continue;
        };
        // Ordered by time; the bit pattern of a non-negative f64 orders like the number.
        map.entry((cols[2].to_string(), cols[4].to_string()))
            .or_default()
            .insert(t.max(0.0).to_bits(), (t, v));
    }
    map.into_iter()
        .map(|(k, m)| (k, m.into_values().collect()))
        .collect()
}

/// The first time `series` falls to ≤ `level`, linearly interpolated between the two
/// points around the crossing; `None` if it never does.
pub fn time_to_level(series: &[(f64, f64)], level: f64) -> Option<f64> {
    let first = series.first()?;
    if first.1 <= level {
        return Some(first.0);
    }
    series.windows(2).find_map(|w| {
        let ((t0, v0), (t1, v1)) = (w[0], w[1]);
        (v1 <= level).then(|| {
            if v0 == v1 {
                t1
            } else {
                t0 + (t1 - t0) * (v0 - level) / (v0 - v1)
            }
        })
    })
}

/// ∫ v dt by the trapezoid rule.
pub fn trapezoid(series: &[(f64, f64)]) -> f64 {
    series
        .windows(2)
        .map(|w| 0.5 * (w[0].1 + w[1].1) * (w[1].0 - w[0].0))
        .sum()
}

/// The metrics of one run folder (those whose inputs exist).
pub fn run_metrics(dir: &Path) -> BTreeMap<&'static str, f64> {
    let mut m = BTreeMap::new();
    let series = std::fs::read_to_string(dir.join("timeseries.csv"))
        .map(|t| tumour_series(&t))
        .unwrap_or_default();
    let get = |field: &str, stat: &str| {
        series
            .get(&(field.to_string(), stat.to_string()))
            .filter(|s| !s.is_empty())
    };
    // viability.csv: time_s,tissue,voxels,mean_viab,alive_fraction,necrotic_voxels
    let viability: Vec<(f64, f64, f64)> = std::fs::read_to_string(dir.join("viability.csv"))
        .map(|t| {
            t.lines()
                .skip(1)
                .filter_map(|l| {
                    let c: Vec<&str> = l.split(',').collect();
                    (c.len() == 6 && c[1] == "tumour").then_some(())?;
                    Some((c[0].parse().ok()?, c[3].parse().ok()?, c[4].parse().ok()?))
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(s) = get("viab", "fraction_alive") {
        m.insert("final_viable_fraction_tumour", s.last().unwrap().1);
    } else if let Some(v) = viability.last() {
        m.insert("final_viable_fraction_tumour", v.2);
    }
    let mean_viab: Option<Series> = get("viab", "mean").cloned().or_else(|| {
        (!viability.is_empty()).then(|| viability.iter().map(|v| (v.0, v.1)).collect())
    });
    if let Some(s) = &mean_viab {
        m.insert("final_mean_viab_tumour", s.last().unwrap().1);
        // Never reached: NaN, an empty cell (the column is kept).
        m.insert(
            "time_to_50pct_kill_s",
            time_to_level(s, 0.5).unwrap_or(f64::NAN),
        );
    }
    if let Some(s) = get("OH", "mean") {
        m.insert(
            "peak_OH_mM_tumour",
            s.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max),
        );
        m.insert("auc_OH_mM_s_tumour", trapezoid(s));
    }
    if let Some(s) = get("pH", "mean") {
        m.insert("mean_pH_tumour_final", s.last().unwrap().1);
    }
    if let Some(w) = read_manifest(dir).and_then(|j| j["wall_time_s"].as_f64()) {
        m.insert("wall_time_s", w);
    }
    m
}

/// A run folder's manifest.json, if readable.
pub fn read_manifest(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("manifest.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// One row of `results.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultRow {
    pub run_id: String,
    pub index: usize,
    /// The manifest's status, `missing` (no folder or no manifest) or `unreadable`.
    pub status: String,
    /// (key, TOML literal), in axis order.
    pub assignments: Vec<(String, String)>,
    /// Empty unless the run is complete.
    pub metrics: BTreeMap<&'static str, f64>,
}

/// The runs listed in `DIR/sweep.json`: (index, run_id, assignments), and the axis keys.
pub type Listed = (Vec<(usize, String, Vec<(String, String)>)>, Vec<String>);

/// Reads `sweep.json` (written by `ionfield sweep`).
pub fn read_sweep_json(path: &Path) -> Result<Listed, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{}: cannot read ({e}). Fix: give the output folder of `ionfield sweep` (it writes sweep.json before any run)",
            path.display()
        )
    })?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not valid JSON ({e}). Fix: rewrite it with `ionfield sweep SWEEP.toml --out DIR` (it is the same for every worker)",
            path.display()
        )
    })?;
    let bad = |what: &str| {
        format!(
            "{}: {what}. Fix: rewrite it with `ionfield sweep SWEEP.toml --out DIR`",
            path.display()
        )
    };
    let keys: Vec<String> = doc["axes"]
        .as_array()
        .ok_or_else(|| bad("no `axes` array"))?
        .iter()
        .map(|a| a["key"].as_str().map(str::to_string))
        .collect::<Option<_>>()
        .ok_or_else(|| bad("an axis without `key`"))?;
    let runs = doc["runs"]
        .as_array()
        .ok_or_else(|| bad("no `runs` array"))?
        .iter()
        .map(|r| {
            let index = r["index"].as_u64()? as usize;
            let id = r["run_id"].as_str()?.to_string();
            let a = r["assignments"].as_object()?;
            let assignments = keys
                .iter()
                .map(|k| Some((k.clone(), a.get(k)?.as_str()?.to_string())))
                .collect::<Option<Vec<_>>>()?;
            Some((index, id, assignments))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad("a run without index, run_id or an assignment of every axis"))?;
    Ok((runs, keys))
}

/// The row of one run folder.
pub fn result_row(
    dir: &Path,
    index: usize,
    run_id: &str,
    assignments: &[(String, String)],
) -> ResultRow {
    let run_dir = dir.join(run_id);
    let status = if !run_dir.join("manifest.json").is_file() {
        "missing".to_string()
    } else {
        match read_manifest(&run_dir) {
            Some(j) => j["status"].as_str().unwrap_or("unreadable").to_string(),
            None => "unreadable".to_string(),
        }
    };
    let metrics = if status == "complete" {
        run_metrics(&run_dir)
    } else {
        BTreeMap::new()
    };
    ResultRow {
        run_id: run_id.to_string(),
        index,
        status,
        assignments: assignments.to_vec(),
        metrics,
    }
}

/// Quotes a CSV cell when it holds a comma, quote or newline (RFC 4180).
fn cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The resolved scenario (`config.resolved.toml`) of the first complete run in `rows`,
/// for readable plot titles; `None` when none is complete or it cannot be read.
pub fn resolved_scenario(dir: &Path, rows: &[ResultRow]) -> Option<toml::Table> {
    let run = rows.iter().find(|r| r.status == "complete")?;
    let text = std::fs::read_to_string(dir.join(&run.run_id).join("config.resolved.toml")).ok()?;
    text.parse::<toml::Table>().ok()
}

/// The metric columns present in at least one row, in [`METRICS`] order.
pub fn metric_columns(rows: &[ResultRow]) -> Vec<&'static str> {
    METRICS
        .iter()
        .copied()
        .filter(|m| rows.iter().any(|r| r.metrics.contains_key(m)))
        .collect()
}

/// `results.csv`: `run_id,index,status,<axis keys>,<metrics>`; a metric a run lacks or
/// has no value of (NaN) is an empty cell; values in shortest round-trip form.
pub fn results_csv(rows: &[ResultRow], keys: &[String]) -> String {
    let metrics = metric_columns(rows);
    let mut head: Vec<String> = vec!["run_id".into(), "index".into(), "status".into()];
    head.extend(keys.iter().map(|k| cell(k)));
    head.extend(metrics.iter().map(|m| m.to_string()));
    let mut text = head.join(",");
    text.push('\n');
    for r in rows {
        let mut cols = vec![r.run_id.clone(), r.index.to_string(), r.status.clone()];
        for k in keys {
            let v = r
                .assignments
                .iter()
                .find(|(a, _)| a == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            cols.push(cell(v));
        }
        for m in &metrics {
            cols.push(
                r.metrics
                    .get(m)
                    .filter(|v| !v.is_nan())
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_default(),
            );
        }
        text.push_str(&cols.join(","));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "time_s,probe,field,unit,statistic,value
0,tumour,viab,1,mean,1e0
0,tumour,viab,1,fraction_alive,1e0
0,tumour,OH,mM,mean,0e0
0,normal,viab,1,mean,1e0
0,tumour,pH,pH,mean,7.3e0
60,tumour,viab,1,mean,8e-1
60,tumour,viab,1,fraction_alive,9e-1
60,tumour,OH,mM,mean,2e-6
60,tumour,pH,pH,mean,7.2e0
120,tumour,viab,1,mean,2e-1
120,tumour,viab,1,fraction_alive,3e-1
120,tumour,OH,mM,mean,1e-6
120,tumour,pH,pH,mean,7.1e0
120,normal,viab,1,mean,1e-2
";

    #[test]
    fn metrics_of_a_synthetic_timeseries() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("timeseries.csv"), CSV).unwrap();
        std::fs::write(
            dir.path().join("manifest.json"),
            r#"{"status":"complete","wall_time_s":12.5}"#,
        )
        .unwrap();
        let m = run_metrics(dir.path());
        assert_eq!(m["final_viable_fraction_tumour"], 0.3);
        assert_eq!(m["final_mean_viab_tumour"], 0.2);
        // 0.8 at 60 s → 0.2 at 120 s crosses 0.5 half-way: 90 s.
        assert!((m["time_to_50pct_kill_s"] - 90.0).abs() < 1e-9);
        assert_eq!(m["peak_OH_mM_tumour"], 2e-6);
        // Trapezoids: 60·(0 + 2e-6)/2 + 60·(2e-6 + 1e-6)/2 = 6e-5 + 9e-5.
        assert!((m["auc_OH_mM_s_tumour"] - 1.5e-4).abs() < 1e-15);
        assert_eq!(m["mean_pH_tumour_final"], 7.1);
        assert_eq!(m["wall_time_s"], 12.5);
    }

    #[test]
    fn absent_fields_leave_their_metrics_out_and_no_crossing_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "time_s,probe,field,unit,statistic,value\n0,tumour,viab,1,mean,1e0\n60,tumour,viab,1,mean,9e-1\n";
        std::fs::write(dir.path().join("timeseries.csv"), csv).unwrap();
        let m = run_metrics(dir.path());
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(m["final_mean_viab_tumour"], 0.9);
        // Never below 0.5: no value, but the column stays, with an empty cell.
        assert!(m["time_to_50pct_kill_s"].is_nan());
        let row = ResultRow {
            run_id: "r0".into(),
            index: 0,
            status: "complete".into(),
            assignments: Vec::new(),
            metrics: m,
        };
        let csv = results_csv(&[row], &[]);
        assert_eq!(
            csv,
            "run_id,index,status,final_mean_viab_tumour,time_to_50pct_kill_s\nr0,0,complete,0.9,\n"
        );
        assert_eq!(time_to_level(&[(0.0, 0.4), (60.0, 0.3)], 0.5), Some(0.0));
    }

    #[test]
    fn results_table_has_status_axes_and_empty_cells_for_missing_runs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("r0000-aaaa")).unwrap();
        std::fs::write(dir.path().join("r0000-aaaa/timeseries.csv"), CSV).unwrap();
        std::fs::write(
            dir.path().join("r0000-aaaa/manifest.json"),
            r#"{"status":"complete","wall_time_s":1.0}"#,
        )
        .unwrap();
        let a = |v: &str| vec![("x".to_string(), v.to_string())];
        let rows = vec![
            result_row(dir.path(), 0, "r0000-aaaa", &a("0.1")),
            result_row(dir.path(), 1, "r0001-bbbb", &a("1.0")),
        ];
        assert_eq!(rows[1].status, "missing");
        let csv = results_csv(&rows, &["x".to_string()]);
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].starts_with("run_id,index,status,x,final_viable_fraction_tumour"));
        assert!(lines[1].starts_with("r0000-aaaa,0,complete,0.1,0.3,"));
        assert_eq!(lines[2], "r0001-bbbb,1,missing,1.0,,,,,,,");
    }
}
