//! The writers of a run folder as simulation callbacks, each with its own schedule:
//! [`FieldWriter`] (output times: slices, stacks, npy, vti, tiff, figure, the vessel
//! centre lines once; or `well_mixed.csv`), [`TimeSeriesWriter`] and [`ViabilityWriter`] (every stop: CSV,
//! plots and time of death at the end) and [`ManifestWriter`] (every stop and checkpoint:
//! `manifest.json`, the checkpoint file). They share one [`RunWriter`], which lists every
//! file in the manifest; [`attach`] adds the set `ionfield run` writes.

use std::cell::RefCell;
use std::rc::Rc;

use super::derived::{ph_field, Derived};
use super::timeseries::{Row, TimeSeries};
use super::viability::{ViabilityState, ViabilityTracker};
use super::RunWriter;
use crate::config::{Scenario, TimeseriesField};
use crate::engine::Engine;
use crate::model::Model;
use crate::sim::callback::{CallbackError, End, Fields, Saved, Schedule, Status};
use crate::sim::checkpoint::{self, f32_bytes, f32_values};
use crate::sim::{Callback, Simulation, Stop};

/// The run folder, shared by the writers of one run.
pub type SharedRunWriter = Rc<RefCell<RunWriter>>;

/// Blob name of the per-voxel time of death in checkpoints.
const TIME_OF_DEATH_BLOB: &str = "time_of_death_s";

fn env_error(e: super::Error) -> CallbackError {
    CallbackError::environment(e)
}

/// Adds the writers `ionfield run` uses for `scenario` to `sim`, all writing through
/// `writer`: fields at output times; the time series and viability at every stop, with
/// summary stops every `output.summary_interval_s` (default
/// [`crate::config::default_summary_interval_s`]); the manifest last. A one-voxel grid is
/// well-mixed mode: every species to `well_mixed.csv`, no images, no summaries.
pub fn attach(sim: &mut Simulation, scenario: &Scenario, model: &Model, writer: &SharedRunWriter) {
    let well_mixed = scenario.grid.n_voxels() == 1;
    sim.add(FieldWriter::new(scenario, model, writer.clone()));
    if !well_mixed {
        if scenario.output.exact_summaries {
            sim.add_stops(summary_stops(scenario));
        } else {
            sim.add_summary_stops(summary_stops(scenario));
        }
        sim.add(TimeSeriesWriter::new(scenario, model, writer.clone()));
        if let Some(v) = ViabilityWriter::new(scenario, model, writer.clone()) {
            sim.add(v);
        }
    }
    sim.add(ManifestWriter {
        writer: writer.clone(),
    });
}

/// The summary stops [`attach`] adds (none in well-mixed mode): every
/// `output.summary_interval_s` (default [`crate::config::default_summary_interval_s`])
/// strictly inside the run, s.
pub fn summary_stops(scenario: &Scenario) -> Vec<f64> {
    if scenario.grid.n_voxels() == 1 {
        return Vec::new();
    }
    let summary_s = scenario
        .output
        .summary_interval_s
        .unwrap_or_else(|| crate::config::default_summary_interval_s(&scenario.time));
    let n_summaries = (scenario.time.end_s / summary_s).ceil() as u64;
    (1..n_summaries).map(|k| k as f64 * summary_s).collect()
}

/// Fields at output times: every written field (with derived pH and MRI), or in
/// well-mixed mode every species as one row of `well_mixed.csv`.
pub struct FieldWriter {
    writer: SharedRunWriter,
    derived: Derived,
    /// Species read at output times (all of them in well-mixed mode).
    read: Vec<usize>,
    well_mixed: bool,
    /// `vessels_centrelines.vtp`, written with the first output when the `vessels` mask
    /// is asked for and there are cylinder or capsule vessels.
    centrelines: Option<String>,
    /// The tissue index and vessel flag of every voxel, for the OME-Zarr store's label
    /// images, written with the first output (`output.zarr`).
    labels: Option<(Vec<u8>, Vec<u8>)>,
}

impl FieldWriter {
    pub fn new(scenario: &Scenario, model: &Model, writer: SharedRunWriter) -> FieldWriter {
        let well_mixed = scenario.grid.n_voxels() == 1;
        // Derived fields (pH, MRI) need species that may not be written: read those too.
        let derived = Derived::new(scenario, model);
        let read = if well_mixed {
            (0..scenario.species.len()).collect()
        } else {
            derived.species_to_read().to_vec()
        };
        let no_cells: Vec<bool> = (0..model.mask.len())
            .map(|ix| model.summary_tissue(ix).is_none())
            .collect();
        let tissue_ids: Vec<u8> = model
            .mask
            .iter()
            .map(|m| (m & crate::model::TISSUE_ID_MASK) as u8)
            .collect();
        let wants_vessels = scenario
            .output
            .masks
            .iter()
            .any(|(m, _)| *m == crate::config::MaskField::Vessels);
        let lines = if wants_vessels && !well_mixed {
            super::centrelines::centrelines(scenario, model)
        } else {
            Vec::new()
        };
        let labels = (scenario.output.zarr && !well_mixed).then(|| {
            let vessels = model.vessel.iter().map(|&v| u8::from(v)).collect();
            (tissue_ids.clone(), vessels)
        });
        writer
            .borrow_mut()
            .set_geometry(tissue_ids, model.vessel.clone(), no_cells);
        FieldWriter {
            writer,
            derived,
            read,
            well_mixed,
            centrelines: (!lines.is_empty()).then(|| super::centrelines::polydata_xml(&lines)),
            labels,
        }
    }
}

impl Callback for FieldWriter {
    fn name(&self) -> &str {
        "fields"
    }
    fn schedule(&self) -> Schedule {
        Schedule::OutputTimes
    }
    fn species(&self, _: &Stop) -> Vec<usize> {
        self.read.clone()
    }
    /// A completed run's 8-bit colour slices of automatic range are drawn again with one
    /// range per field over the whole run (an interrupted run keeps each time's own).
    fn on_end(&mut self, end: End, _: &mut dyn Engine, _: &Status) -> Result<(), CallbackError> {
        if end == End::Complete && !self.well_mixed {
            let n = self
                .writer
                .borrow_mut()
                .unify_slice_ranges()
                .map_err(env_error)?;
            if n > 0 {
                log::info!(
                    "{n} colour slices drawn again with one range per field over the whole run"
                );
            }
        }
        Ok(())
    }
    fn on_stop(&mut self, stop: &Stop, fields: &Fields, _: &Status) -> Result<(), CallbackError> {
        let data: Vec<Vec<f32>> = self
            .read
            .iter()
            .map(|&s| fields.species(s).to_vec())
            .collect();
        let mut w = self.writer.borrow_mut();
        if let Some(xml) = self.centrelines.take() {
            w.write_text(super::centrelines::FILE, "vtp", &xml)
                .map_err(env_error)?;
        }
        if let Some((tissue, vessels)) = self.labels.take() {
            w.write_labels(&tissue, &vessels).map_err(env_error)?;
        }
        if self.well_mixed {
            let values: Vec<f64> = data.iter().map(|f| f[0] as f64).collect();
            w.write_well_mixed(stop.time_s, stop.step, &values)
        } else {
            w.write_output(stop.time_s, stop.step, &self.derived.assemble(data))
        }
        .map_err(env_error)
    }
}

/// `timeseries.csv` at every stop (tissue means and probes of `output.timeseries`), and
/// `plots/timeseries.png` and `plots/viability.png` when the run ends or stops.
pub struct TimeSeriesWriter {
    writer: SharedRunWriter,
    series: TimeSeries,
    fields: Vec<TimeseriesField>,
    /// (name, unit) per entry of `fields`.
    labels: Vec<(String, String)>,
    /// (name, unit) of the panels of `plots/timeseries.png`.
    plotted: Vec<(String, String)>,
    /// Colours of the plots (`output.theme`, light by default).
    theme: crate::chart::Theme,
}

impl TimeSeriesWriter {
    pub fn new(scenario: &Scenario, model: &Model, writer: SharedRunWriter) -> TimeSeriesWriter {
        let tissue_names: Vec<String> = scenario.tissues.iter().map(|t| t.name.clone()).collect();
        let sc = scenario;
        let all: Vec<(String, String, bool)> = sc
            .output
            .timeseries
            .iter()
            .map(|f| match *f {
                TimeseriesField::Species(s) => (
                    sc.species[s].name.clone(),
                    sc.species[s].display_unit.clone(),
                    sc.output.fields.contains(&s),
                ),
                TimeseriesField::Ph(_) => ("pH".into(), "pH".into(), sc.output.ph.is_some()),
            })
            .collect();
        // The fields of `output.fields` that the time series has, else all of them.
        let written: Vec<(String, String)> = all
            .iter()
            .filter(|f| f.2)
            .map(|f| (f.0.clone(), f.1.clone()))
            .collect();
        let labels: Vec<(String, String)> =
            all.iter().map(|f| (f.0.clone(), f.1.clone())).collect();
        let plotted = if written.is_empty() {
            labels.clone()
        } else {
            written
        };
        TimeSeriesWriter {
            writer,
            series: TimeSeries::new(model, &tissue_names, &sc.output.probes),
            fields: sc.output.timeseries.clone(),
            labels,
            plotted,
            theme: crate::chart::Theme::chosen(sc.output.theme, crate::chart::Theme::LIGHT),
        }
    }
}

impl Callback for TimeSeriesWriter {
    fn name(&self) -> &str {
        "timeseries"
    }
    fn schedule(&self) -> Schedule {
        Schedule::EveryStop
    }
    fn species(&self, _: &Stop) -> Vec<usize> {
        self.fields
            .iter()
            .map(|f| match *f {
                TimeseriesField::Species(s) | TimeseriesField::Ph(s) => s,
            })
            .collect()
    }
    fn on_stop(&mut self, stop: &Stop, fields: &Fields, _: &Status) -> Result<(), CallbackError> {
        let ph: Vec<Vec<f32>> = self
            .fields
            .iter()
            .map(|f| match *f {
                TimeseriesField::Ph(h) => ph_field(fields.species(h)),
                TimeseriesField::Species(_) => Vec::new(),
            })
            .collect();
        let values: Vec<(&str, &str, &[f32])> = self
            .fields
            .iter()
            .zip(&self.labels)
            .zip(&ph)
            .map(|((f, (name, unit)), ph)| {
                let data = match *f {
                    TimeseriesField::Species(s) => fields.species(s),
                    TimeseriesField::Ph(_) => &ph[..],
                };
                (name.as_str(), unit.as_str(), data)
            })
            .collect();
        self.series.record(stop.time_s, &values);
        let csv = self.series.csv();
        self.writer
            .borrow_mut()
            .write_text("timeseries.csv", "csv", &csv)
            .map_err(env_error)
    }
    fn on_end(&mut self, _: End, _: &mut dyn Engine, _: &Status) -> Result<(), CallbackError> {
        let dpi = crate::chart::DEFAULT_DPI;
        let pages = [
            (
                "plots/timeseries",
                self.series.chart_page_files(&self.plotted, dpi, self.theme),
            ),
            (
                "plots/viability",
                self.series.viability_files(dpi, self.theme),
            ),
        ];
        for (stem, files) in pages {
            if let Some(f) = files.map_err(CallbackError::run)? {
                let mut w = self.writer.borrow_mut();
                for (ext, bytes) in [
                    ("png", &f.png[..]),
                    ("svg", f.svg.as_bytes()),
                    ("pdf", &f.pdf[..]),
                ] {
                    w.write_bytes(&format!("{stem}.{ext}"), "plot", bytes)
                        .map_err(env_error)?;
                }
            }
        }
        Ok(())
    }
    fn save(&mut self, _: &Status) -> Option<Saved> {
        Some(Saved {
            json: serde_json::to_value(&self.series.rows).expect("rows are plain data"),
            blobs: Vec::new(),
        })
    }
    fn restore(&mut self, saved: Saved) -> Result<(), String> {
        self.series.rows =
            serde_json::from_value::<Vec<Row>>(saved.json).map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Viability of a species `viab`: `viability.csv` at every stop (so the time of death
/// resolves the killing); at the end, the time-of-death field and a summary on stderr.
pub struct ViabilityWriter {
    writer: SharedRunWriter,
    tracker: ViabilityTracker,
}

impl ViabilityWriter {
    /// `None` when the scenario has no species `viab`.
    pub fn new(
        scenario: &Scenario,
        model: &Model,
        writer: SharedRunWriter,
    ) -> Option<ViabilityWriter> {
        let tissue_names: Vec<String> = scenario.tissues.iter().map(|t| t.name.clone()).collect();
        let v = scenario.species.iter().position(|s| s.name == "viab")?;
        Some(ViabilityWriter {
            writer,
            tracker: ViabilityTracker::new(v, model, &tissue_names),
        })
    }
}

impl Callback for ViabilityWriter {
    fn name(&self) -> &str {
        "viability"
    }
    fn schedule(&self) -> Schedule {
        Schedule::EveryStop
    }
    fn species(&self, _: &Stop) -> Vec<usize> {
        vec![self.tracker.species]
    }
    fn on_stop(&mut self, stop: &Stop, fields: &Fields, _: &Status) -> Result<(), CallbackError> {
        self.tracker
            .record(stop.time_s, fields.species(self.tracker.species));
        let csv = self.tracker.csv();
        self.writer
            .borrow_mut()
            .write_text("viability.csv", "csv", &csv)
            .map_err(env_error)
    }
    fn on_end(&mut self, end: End, _: &mut dyn Engine, _: &Status) -> Result<(), CallbackError> {
        if end == End::Complete {
            self.writer
                .borrow_mut()
                .write_time_of_death(&self.tracker.time_of_death_s)
                .map_err(env_error)?;
            for line in self.tracker.final_summary() {
                eprintln!("{line}");
            }
        }
        Ok(())
    }
    fn save(&mut self, _: &Status) -> Option<Saved> {
        Some(Saved {
            json: serde_json::to_value(self.tracker.state()).expect("plain data"),
            blobs: vec![(
                TIME_OF_DEATH_BLOB.to_string(),
                f32_bytes(&self.tracker.time_of_death_s),
            )],
        })
    }
    fn restore(&mut self, saved: Saved) -> Result<(), String> {
        let state: ViabilityState =
            serde_json::from_value(saved.json).map_err(|e| e.to_string())?;
        let tod = saved
            .blobs
            .iter()
            .find(|b| b.0 == TIME_OF_DEATH_BLOB)
            .map(|b| f32_values(&b.1))
            .unwrap_or_default();
        self.tracker.restore(state, tod)
    }
}

/// `manifest.json` after every stop (status `running`, wall time per phase) and the
/// checkpoint file with it; the checkpoint is removed when the run completes. The
/// caller writes the final status.
pub struct ManifestWriter {
    writer: SharedRunWriter,
}

impl ManifestWriter {
    pub fn new(writer: SharedRunWriter) -> ManifestWriter {
        ManifestWriter { writer }
    }
}

impl Callback for ManifestWriter {
    fn name(&self) -> &str {
        "run_folder"
    }
    fn schedule(&self) -> Schedule {
        Schedule::EveryStop
    }
    fn on_stop(&mut self, _: &Stop, _: &Fields, status: &Status) -> Result<(), CallbackError> {
        let mut w = self.writer.borrow_mut();
        w.provenance.wall_time_by_phase_s = status.phases.clone();
        w.write_manifest("running", status.wall_s)
            .map(|_| ())
            .map_err(env_error)
    }
    fn save(&mut self, status: &Status) -> Option<Saved> {
        let mut w = self.writer.borrow_mut();
        w.provenance.checkpoints_s.push(status.time_s);
        w.provenance.wall_time_by_phase_s = status.phases.clone();
        Some(Saved {
            json: serde_json::to_value(w.state(status.wall_s)).expect("plain data"),
            blobs: Vec::new(),
        })
    }
    fn restore(&mut self, saved: Saved) -> Result<(), String> {
        let state = serde_json::from_value(saved.json).map_err(|e| e.to_string())?;
        self.writer.borrow_mut().restore(state);
        Ok(())
    }
    fn on_checkpoint(&mut self, bytes: &[u8], status: &Status) -> Result<(), CallbackError> {
        let mut w = self.writer.borrow_mut();
        w.write_bytes(checkpoint::REL_PATH, "checkpoint", bytes)
            .map_err(env_error)?;
        w.provenance.wall_time_by_phase_s = status.phases.clone();
        w.write_manifest("running", status.wall_s)
            .map_err(env_error)?;
        log::info!(
            "checkpoint at t = {} s (step {})",
            status.time_s,
            status.step
        );
        Ok(())
    }
    fn on_end(&mut self, end: End, _: &mut dyn Engine, _: &Status) -> Result<(), CallbackError> {
        if end == End::Complete {
            // A completed run needs no checkpoint.
            self.writer
                .borrow_mut()
                .remove_file(checkpoint::REL_PATH)
                .map_err(env_error)?;
        }
        Ok(())
    }
}
