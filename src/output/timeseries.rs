//! `timeseries.csv`: probes and region summaries at every summary time, one tidy row per
//! value (docs/design.md §5).
//!
//! Columns:
//! - `time_s`: model time, s (0 = the end of spin-up, when dosing starts);
//! - `probe`: a region (`whole` = every voxel; a tissue name = that tissue's voxels except
//!   held ones, i.e. vessel lumens and Dirichlet faces, which carry blood values) or a point
//!   probe's name (`[[output.probe]]`);
//! - `field`: a species, `pH`, …;
//! - `unit`: the field's unit (mM, pH, 1 = fraction);
//! - `statistic`: `mean`, `min`, `max` (regions; the mean of pH is the mean of the voxels'
//!   pH values), `fraction_alive` (regions, field `viab`: fraction of voxels with
//!   viab ≥ 0.05, as in viability.csv) or `value` (point probes: the value of the voxel
//!   whose box holds the point);
//! - `value`: the number, in `unit`.
//!
//! Non-finite values (a NaN pH where H ≤ 0) are skipped by the statistics.

use serde::{Deserialize, Serialize};

use super::viability::NECROSIS_THRESHOLD;
use crate::chart::{self, ChartFiles, ChartPanel, ChartSpec, PlotError, Series, Theme};
use crate::config::Probe;
use crate::model::Model;

/// Header of `timeseries.csv`.
pub const HEADER: &str = "time_s,probe,field,unit,statistic,value";

/// One row of `timeseries.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub time_s: f64,
    pub probe: String,
    pub field: String,
    pub unit: String,
    pub statistic: String,
    pub value: f64,
}

/// A region of voxels summarised at every time.
struct Region {
    name: String,
    voxels: Vec<u32>,
}

/// Collects the rows of a run.
pub struct TimeSeries {
    regions: Vec<Region>,
    /// (name, flat voxel index).
    probes: Vec<(String, usize)>,
    pub rows: Vec<Row>,
}

impl TimeSeries {
    /// Regions: every voxel (`whole`), then each tissue without its held voxels; point
    /// probes from the scenario.
    pub fn new(model: &Model, tissue_names: &[String], probes: &[Probe]) -> TimeSeries {
        let mut regions = vec![Region {
            name: "whole".into(),
            voxels: (0..model.mask.len() as u32).collect(),
        }];
        for (t, name) in tissue_names.iter().enumerate() {
            let voxels: Vec<u32> = model
                .mask
                .iter()
                .enumerate()
                .filter(|&(v, _)| model.summary_tissue(v) == Some(t))
                .map(|(v, _)| v as u32)
                .collect();
            if !voxels.is_empty() {
                regions.push(Region {
                    name: name.clone(),
                    voxels,
                });
            }
        }
        TimeSeries {
            regions,
            probes: probes.iter().map(|p| (p.name.clone(), p.voxel)).collect(),
            rows: Vec::new(),
        }
    }

    /// Names of the regions and probes, in row order.
    pub fn probe_names(&self) -> Vec<String> {
        self.regions
            .iter()
            .map(|r| r.name.clone())
            .chain(self.probes.iter().map(|p| p.0.clone()))
            .collect()
    }

    /// Records `fields` (name, unit, values of every voxel) at `time_s`.
    pub fn record(&mut self, time_s: f64, fields: &[(&str, &str, &[f32])]) {
        for &(field, unit, values) in fields {
            let mut row = |probe: &str, statistic: &str, value: f64| {
                self.rows.push(Row {
                    time_s,
                    probe: probe.to_string(),
                    field: field.to_string(),
                    unit: unit.to_string(),
                    statistic: statistic.to_string(),
                    value,
                })
            };
            for r in &self.regions {
                let (mut sum, mut n) = (0f64, 0usize);
                let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                let mut alive = 0usize;
                for &v in &r.voxels {
                    let x = values[v as usize];
                    if !x.is_finite() {
                        continue;
                    }
                    let x64 = x as f64;
                    sum += x64;
                    n += 1;
                    lo = lo.min(x64);
                    hi = hi.max(x64);
                    alive += (x >= NECROSIS_THRESHOLD) as usize;
                }
                if n == 0 {
                    continue;
                }
                row(&r.name, "mean", sum / n as f64);
                row(&r.name, "min", lo);
                row(&r.name, "max", hi);
                if field == "viab" {
                    row(&r.name, "fraction_alive", alive as f64 / n as f64);
                }
            }
            for (name, voxel) in &self.probes {
                row(name, "value", values[*voxel] as f64);
            }
        }
    }

    /// The whole file.
    pub fn csv(&self) -> String {
        let mut text = String::with_capacity(64 * (self.rows.len() + 1));
        text.push_str(HEADER);
        text.push('\n');
        for r in &self.rows {
            text.push_str(&format!(
                "{},{},{},{},{},{:e}\n",
                r.time_s, r.probe, r.field, r.unit, r.statistic, r.value
            ));
        }
        text
    }

    /// `plots/timeseries.{png,svg,pdf}`: the page of [`Self::chart_panels`]. `None` when
    /// there is nothing to draw.
    pub fn chart_page_files(
        &self,
        fields: &[(String, String)],
        dpi: u32,
        theme: Theme,
    ) -> Result<Option<ChartFiles>, PlotError> {
        let panels = self.chart_panels(fields, dpi, theme);
        if panels.is_empty() {
            return Ok(None);
        }
        let columns = if panels.len() > 4 { 3 } else { 2 };
        chart::chart_page_files(&panels, columns).map(Some)
    }

    /// One panel per field of `fields` (name, unit) that has data, each with the mean of
    /// every tissue and the value at every point probe (the same lines in every panel, one
    /// shared legend); a log axis for positive fields spanning more than three decades
    /// (OH·); concentrations in the SI prefix they read best in (µM … fM).
    pub fn chart_panels(
        &self,
        fields: &[(String, String)],
        dpi: u32,
        theme: Theme,
    ) -> Vec<ChartPanel> {
        let lines: Vec<(String, &str, String)> = self
            .regions
            .iter()
            .filter(|r| r.name != "whole")
            .map(|r| (r.name.clone(), "mean", format!("{} (mean)", r.name)))
            .chain(
                self.probes
                    .iter()
                    .map(|(name, _)| (name.clone(), "value", name.clone())),
            )
            .collect();
        let (per_unit_s, time_label) = self.time_axis();
        fields
            .iter()
            .map(|(field, unit)| {
                let mut series: Vec<Series> = lines
                    .iter()
                    .map(|(probe, stat, label)| Series {
                        label: label.clone(),
                        points: self.series_in(probe, field, stat, per_unit_s),
                    })
                    .collect();
                let values = |series: &[Series]| {
                    let v = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
                    v.filter(|x| x.is_finite())
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                            (lo.min(x), hi.max(x))
                        })
                };
                // Concentrations in the SI prefix they read best in (OH· in pM).
                let (lo, hi) = values(&series);
                let (factor, unit) = chart::readable_unit(unit, lo.abs().max(hi.abs()));
                for p in series.iter_mut().flat_map(|s| s.points.iter_mut()) {
                    p.1 *= factor;
                }
                let log_y = lo > 0.0 && (hi / lo).log10() > chart::AUTO_LOG_DECADES;
                let y_label = match unit.as_str() {
                    "pH" => "pH".to_string(),
                    "1" => format!("{field} [fraction]"),
                    u => format!("{field} [{u}]"),
                };
                ChartPanel {
                    spec: ChartSpec::new(field, time_label, &y_label)
                        .with_size_in(3.2, 2.3, dpi)
                        .with_theme(theme)
                        .with_log_y(log_y),
                    series,
                }
            })
            .filter(|p| p.series.iter().any(|s| !s.points.is_empty()))
            .collect()
    }

    /// `plots/viability.{png,svg,pdf}`: per tissue, the mean viable fraction (solid) and the fraction
    /// of voxels alive (viab ≥ 0.05, dashed) over time, on a fixed 0–1.03 axis (a loss of 1 %
    /// does not fill the plot). `None` without a `viab` field.
    pub fn viability_files(&self, dpi: u32, theme: Theme) -> Result<Option<ChartFiles>, PlotError> {
        let (per_unit_s, time_label) = self.time_axis();
        let mut series = Vec::new();
        for r in self.regions.iter().filter(|r| r.name != "whole") {
            // Mean viab solid, alive fraction dashed over it (where both are 1 they coincide).
            for (stat, what) in [("mean", "mean viab"), ("fraction_alive", "alive")] {
                let points = self.series_in(&r.name, "viab", stat, per_unit_s);
                if !points.is_empty() {
                    series.push(Series {
                        label: format!("{} {what}", r.name),
                        points,
                    });
                }
            }
        }
        if series.is_empty() {
            return Ok(None);
        }
        let spec = ChartSpec::new(
            "Viability by tissue",
            time_label,
            "fraction of voxels / viab [1]",
        )
        .with_size_in(4.5, 3.0, dpi)
        .with_theme(theme)
        // 3 % above 1, so that a line at 1 is not cut in half by the frame.
        .with_y_range(0.0, 1.03)
        .with_alternate_dashes();
        chart::line_chart_files(&spec, &series).map(Some)
    }

    /// The (time_s, value) series of one probe, field and statistic.
    pub fn series(&self, probe: &str, field: &str, statistic: &str) -> Vec<(f64, f64)> {
        self.series_in(probe, field, statistic, 1.0)
    }

    /// The same series with time in units of `per_unit_s` seconds.
    fn series_in(&self, probe: &str, field: &str, stat: &str, per_unit_s: f64) -> Vec<(f64, f64)> {
        self.rows
            .iter()
            .filter(|r| r.probe == probe && r.field == field && r.statistic == stat)
            .map(|r| (r.time_s / per_unit_s, r.value))
            .collect()
    }

    /// The plots' time unit (s per unit) and axis label, from the latest time recorded:
    /// hours from 3 h on, minutes from 3 min on, else seconds (a day-long run reads
    /// 0–24 h, not 0–86 400 s).
    fn time_axis(&self) -> (f64, &'static str) {
        let last_s = self.rows.iter().fold(0f64, |m, r| m.max(r.time_s));
        if last_s >= 3.0 * 3600.0 {
            (3600.0, "time [h]")
        } else if last_s >= 180.0 {
            (60.0, "time [min]")
        } else {
            (1.0, "time [s]")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    #[test]
    fn region_statistics_and_probes_are_exact() {
        let sc = load_str(
            r#"
name = "ts"
[grid]
shape = [4, 3, 3]
voxel_um = 10.0
[time]
dt_s = 1.0
end_s = 1.0
output_interval_s = 1.0
[tissues.tumour]
shape = "box"
min_um = [0.0, 0.0, 0.0]
max_um = [20.0, 30.0, 30.0]
[species.A]
diffusion_um2_per_s = 0.0
initial = { uniform_mm = 0.0 }
[output]
fields = ["A"]
[[output.probe]]
name = "corner"
point_um = [35.0, 15.0, 5.0]
"#,
            "ts.toml",
            &[],
        )
        .unwrap();
        let model = Model::build(&sc);
        let names: Vec<String> = sc.tissues.iter().map(|t| t.name.clone()).collect();
        let mut ts = TimeSeries::new(&model, &names, &sc.output.probes);
        let a: Vec<f32> = (0..36).map(|v| v as f32).collect();
        ts.record(5.0, &[("A", "mM", &a)]);
        let get = |p: &str, s: &str| ts.series(p, "A", s)[0].1;
        assert_eq!(get("whole", "mean"), 17.5);
        assert_eq!(get("whole", "max"), 35.0);
        // tumour = x < 20 µm: v = x + 4(y + 3z) with x ∈ {0, 1}: mean 0.5 + 4·(1 + 3·1).
        assert_eq!(get("tumour", "mean"), 16.5);
        assert_eq!(get("tumour", "min"), 0.0);
        assert_eq!(get("normal", "min"), 2.0);
        // (35, 15, 5) µm → voxel (3, 1, 0) = 7.
        assert_eq!(get("corner", "value"), 7.0);
        let csv = ts.csv();
        assert!(csv.starts_with(HEADER));
        assert!(csv.contains("5,tumour,A,mM,mean,1.65e1\n"), "{csv}");

        // Concentrations are drawn in the SI prefix they read best in: tens of 1e-12 mM
        // (OH·; 1e-12 mM = 1 fM) in fM, of 1e-9 mM in pM, 0.05 mM in µM, 5 mM in mM; a
        // fraction stays a fraction.
        for (scale, unit, label) in [
            (1e-12, "mM", "A [fM]"),
            (1e-9, "mM", "A [pM]"),
            (5e-2 / 35.0, "mM", "A [µM]"),
            (5.0 / 35.0, "mM", "A [mM]"),
            (1.0 / 35.0, "1", "A [fraction]"),
        ] {
            let mut ts = TimeSeries::new(&model, &names, &sc.output.probes);
            for t in [0.0, 1.0] {
                let a: Vec<f32> = (0..36).map(|v| (v as f64 * scale) as f32).collect();
                ts.record(t, &[("A", unit, &a)]);
            }
            let panels = ts.chart_panels(&[("A".to_string(), unit.to_string())], 100, Theme::LIGHT);
            assert_eq!(panels[0].spec.y_label, label);
            let hi = panels[0]
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1))
                .fold(0.0, f64::max);
            assert!(
                (1.0..1000.0).contains(&hi) || unit == "1",
                "{label}: max {hi}"
            );
        }
    }

    #[test]
    fn plots_of_long_runs_use_minutes_or_hours() {
        let sc = load_str(
            "name = \"t\"\n[grid]\nshape = [3, 3, 3]\nvoxel_um = 10.0\n[time]\ndt_s = 1.0\nend_s = 1.0\n\
             output_interval_s = 1.0\n[species.A]\ndiffusion_um2_per_s = 0.0\n\
             initial = { uniform_mm = 0.0 }\n[output]\nfields = [\"A\"]\n",
            "t.toml",
            &[],
        )
        .unwrap();
        let model = Model::build(&sc);
        let mut ts = TimeSeries::new(&model, &[], &[]);
        let a = vec![1.0f32; 27];
        ts.record(0.0, &[("A", "mM", &a)]);
        ts.record(120.0, &[("A", "mM", &a)]);
        assert_eq!(ts.time_axis(), (1.0, "time [s]"));
        ts.record(600.0, &[("A", "mM", &a)]);
        assert_eq!(ts.time_axis(), (60.0, "time [min]"));
        ts.record(86_400.0, &[("A", "mM", &a)]);
        assert_eq!(ts.time_axis(), (3600.0, "time [h]"));
        let hours: Vec<f64> = ts
            .series_in("whole", "A", "mean", 3600.0)
            .iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(hours, [0.0, 120.0 / 3600.0, 600.0 / 3600.0, 24.0]);
    }
}
