//! Writers for everything a run leaves on disk (docs/design.md §5): 8-bit colour slices with
//! title and colour bar, 16-bit grayscale stacks, `.npy` fields, VTK ImageData series,
//! calibrated float TIFF stacks and `manifest.json`.
//!
//! Layout under the output folder (`<time>` is `t` + seconds with 7 integer digits and a
//! fixed number of decimals for the whole run, e.g. `t0000120.0s`, so names sort by time
//! for runs up to 10⁷ s):
//! ```text
//! png/<field>/<axis><index:03>_<time>.png     8-bit RGB, colour bar, title
//! png16/<field>/<time>/<axis><index:03>.png   16-bit gray, every slice, 1 px per voxel
//! fields/<field>_<time>.npy                   f32, shape (nz, ny, nx)
//! vti/fields_<time>.vti                       VTK ImageData, every field of the time as
//!                                             Float32 cell data `<field>_<unit>`, spacing µm
//! vti/series.pvd                              ParaView collection of the .vti (timestep = s)
//! tiff/<field>_<time>.tif                     f32 stack, page k = z k, row j = y j, ImageJ
//!                                             calibration in µm (output.tiff, default off)
//! plots/figure_series.png                     [output.figure]: fields × times grid
//! manifest.json                               scenario, versions, files + sha256
//! ```
//! Every file goes through [`atomic::write_atomic`]. Image orientation: see [`slice`];
//! `.npy`, `.vti` and `.tif` hold the same f32 values in storage order (see [`vti`],
//! [`tiff`]). The `.vti` holds the fields of [`RunWriter::write_output`];
//! `time_of_death` (written on its own at the end) goes to `.npy` and `.tif` only.

pub mod atomic;
pub mod callbacks;
pub mod centrelines;
pub mod derived;
pub mod describe;
pub mod estimate;
mod figure_out;
pub mod folder;
pub mod manifest;
pub mod npy;
pub mod png;
pub mod slice;
pub mod tiff;
pub mod timeseries;
pub mod viability;
pub mod vti;
pub mod zarr;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::chart::text::TextRenderer;
use crate::chart::{self, colormap};
use crate::chart::{finite_min_max, nonempty_range, ColourBar};
use crate::config::{duration, Scenario, SliceSelection, ValueRange};
use manifest::{FileRecord, Manifest, OutputRecord, Provenance, StackRecord};

/// Errors of the output writers. Each names the path, the OS error and a fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The output folder (or a subfolder) could not be created.
    #[error(
        "cannot create output directory {}: {os_error}. Fix: choose another --out directory or fix its permissions",
        path.display()
    )]
    CreateDir { path: PathBuf, os_error: io::Error },
    /// The output folder exists but a probe file could not be written or removed.
    #[error(
        "output directory {} is not writable: {os_error}. Fix: choose another --out directory or fix its permissions",
        path.display()
    )]
    NotWritable { path: PathBuf, os_error: io::Error },
    /// Writing, syncing or renaming a file failed (disk full, permissions, …).
    #[error(
        "cannot write {}: {os_error}. Fix: choose a writable --out directory with free space",
        path.display()
    )]
    Write { path: PathBuf, os_error: io::Error },
    /// PNG or TIFF encoding failed (an internal error, or a grid too large for the format;
    /// the message says which and the fix).
    #[error("cannot encode {}: {message}", path.display())]
    Encode { path: PathBuf, message: String },
    /// The manifest could not be serialised.
    #[error("cannot serialise {}: {message}", path.display())]
    Manifest { path: PathBuf, message: String },
    /// The caller passed fields that do not match the scenario (a programming error).
    #[error("output at t = {time_s} s: {message}")]
    Fields { time_s: f64, message: String },
}

/// Where the run was computed, recorded in the manifest.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    pub backend: String,
    pub adapter: String,
    pub driver: String,
}

/// Writes all configured outputs of one run and keeps `manifest.json` current.
pub struct RunWriter {
    out_dir: PathBuf,
    scenario: Scenario,
    info: RunInfo,
    started: Instant,
    /// Decimals of the time tag in file names, fixed for the run so names sort.
    time_decimals: usize,
    text: TextRenderer,
    outputs: Vec<OutputRecord>,
    files: Vec<FileRecord>,
    stacks: Vec<StackRecord>,
    /// Rows of `well_mixed.csv` written so far (well-mixed mode).
    well_mixed_rows: Vec<String>,
    /// How steady the baseline got before t = 0, if there was a spin-up.
    spin_up: Option<crate::sim::SpinUpReport>,
    /// The `.vti` of every output time so far, listed in `vti/series.pvd`.
    vti_series: Vec<vti::PvdEntry>,
    /// Command lines, seeds, resumes, checkpoints, wall time per phase.
    pub provenance: Provenance,
    /// Slices kept for `plots/figure_series.png` (`[output.figure]`), see `figure_out`.
    figure: Option<chart::FigureSeries>,
    /// Why the run failed, for the manifest.
    failure: Option<String>,
    /// What `fields.ome.zarr` holds so far (`output.zarr`).
    zarr: zarr::ZarrState,
    /// 8-bit colour slices of automatic range, for [`RunWriter::unify_slice_ranges`].
    kept_slices: Vec<KeptSlice>,
    /// More slices than [`MAX_KEPT_SLICE_VALUES`]: none are kept.
    kept_overflow: bool,
    /// Tissues, vessels and cell-free voxels, drawn over the 8-bit slices; set by
    /// [`RunWriter::set_geometry`] (not in checkpoints: the model rebuilds it).
    geometry: Option<SliceGeometry>,
}

/// Per-voxel geometry of the model (x fastest), for the 8-bit slices' overlay.
struct SliceGeometry {
    /// Tissue id of each voxel.
    tissue: Vec<u8>,
    /// Whether a vessel occupies the voxel.
    vessel: Vec<bool>,
    /// Whether the voxel holds no tissue cells (vessel lumens, held boundary layers).
    no_cells: Vec<bool>,
    /// Fields that live in cells (viab, bound species, time_of_death): their cell-free
    /// voxels are drawn blank.
    cell_fields: Vec<String>,
}

/// What a [`RunWriter`] has written so far, saved in checkpoints so a resumed run keeps
/// one manifest listing every file.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct WriterState {
    outputs: Vec<OutputRecord>,
    files: Vec<FileRecord>,
    stacks: Vec<StackRecord>,
    well_mixed_rows: Vec<String>,
    spin_up: Option<crate::sim::SpinUpReport>,
    vti_series: Vec<vti::PvdEntry>,
    figure: Option<chart::FigureSeries>,
    provenance: Provenance,
    /// Wall time of the parts before this one, s.
    wall_time_s: f64,
    #[serde(default)]
    zarr: zarr::ZarrState,
    #[serde(default)]
    kept_slices: Vec<KeptSlice>,
    #[serde(default)]
    kept_overflow: bool,
}

/// Smallest number of decimals (1 … 6) that writes every output time of the run
/// (multiples of `interval_s`, and `end_s`) without two times sharing a name.
fn time_decimals(interval_s: f64, end_s: f64) -> usize {
    let exact = |v: f64, d: i32| {
        let scaled = v * 10f64.powi(d);
        (scaled - scaled.round()).abs() <= 1e-6 * scaled.abs().max(1.0)
    };
    (1..=6)
        .find(|&d| exact(interval_s, d as i32) && exact(end_s, d as i32))
        .unwrap_or(6)
}

/// `t0000120.0s`: 7 integer digits, `decimals` decimals.
fn time_tag(time_s: f64, decimals: usize) -> String {
    let width = 8 + decimals;
    format!("t{:0width$.decimals$}s", time_s.max(0.0))
}

/// A number for titles: at most `decimals` decimals, trailing zeros trimmed.
fn short_number(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A species name made safe as a path component (it normally already is).
fn path_component(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        "field".to_string()
    } else {
        cleaned
    }
}

/// (lo, hi) of a field at one time; always hi > lo.
fn resolve_range(range: ValueRange, field: &[f32]) -> (f64, f64) {
    let (lo, hi) = match range {
        ValueRange::Fixed { lo, hi } => (lo, hi),
        // (0, 1) when there is no finite value at all.
        ValueRange::Auto => finite_min_max(field.iter().copied()).unwrap_or((0.0, 1.0)),
    };
    nonempty_range(lo, hi)
}

impl RunWriter {
    /// Creates `out_dir` (and parents), checks it is writable by writing and removing a
    /// probe file, and removes leftover temporary files of an earlier process killed
    /// mid-write there ([`atomic::remove_leftovers`]; the folder belongs to this run).
    pub fn create(out_dir: &Path, scenario: &Scenario, info: RunInfo) -> Result<Self, Error> {
        if out_dir.exists() && !out_dir.is_dir() {
            return Err(Error::CreateDir {
                path: out_dir.to_path_buf(),
                os_error: io::Error::other("it is a file, and the output must be a folder"),
            });
        }
        fs::create_dir_all(out_dir).map_err(|os_error| Error::CreateDir {
            path: out_dir.to_path_buf(),
            os_error,
        })?;
        for p in atomic::remove_leftovers(out_dir) {
            log::info!("removed {} (left by an interrupted write)", p.display());
        }
        let probe = out_dir.join(format!(".ionfield-write-probe-{}", std::process::id()));
        let not_writable = |os_error| Error::NotWritable {
            path: out_dir.to_path_buf(),
            os_error,
        };
        fs::write(&probe, b"probe").map_err(not_writable)?;
        fs::remove_file(&probe).map_err(not_writable)?;
        Ok(RunWriter {
            out_dir: out_dir.to_path_buf(),
            scenario: scenario.clone(),
            info,
            started: Instant::now(),
            time_decimals: time_decimals(scenario.time.output_interval_s, scenario.time.end_s),
            text: TextRenderer::new(),
            outputs: Vec::new(),
            files: Vec::new(),
            stacks: Vec::new(),
            well_mixed_rows: Vec::new(),
            spin_up: None,
            vti_series: Vec::new(),
            provenance: Provenance::default(),
            figure: Self::new_figure(scenario),
            failure: None,
            zarr: zarr::ZarrState::default(),
            kept_slices: Vec::new(),
            kept_overflow: false,
            geometry: None,
        })
    }

    /// Everything written so far, for a checkpoint; `wall_time_s` is the run's wall time
    /// up to now.
    pub fn state(&self, wall_time_s: f64) -> WriterState {
        WriterState {
            outputs: self.outputs.clone(),
            files: self.files.clone(),
            stacks: self.stacks.clone(),
            well_mixed_rows: self.well_mixed_rows.clone(),
            spin_up: self.spin_up.clone(),
            vti_series: self.vti_series.clone(),
            figure: self.figure.clone(),
            provenance: self.provenance.clone(),
            wall_time_s,
            zarr: self.zarr.clone(),
            kept_slices: self.kept_slices.clone(),
            kept_overflow: self.kept_overflow,
        }
    }

    /// Continues from a checkpoint's state; returns the wall time of the earlier parts, s.
    pub fn restore(&mut self, state: WriterState) -> f64 {
        self.outputs = state.outputs;
        self.files = state.files;
        self.stacks = state.stacks;
        self.well_mixed_rows = state.well_mixed_rows;
        self.spin_up = state.spin_up;
        self.vti_series = state.vti_series;
        self.figure = state.figure;
        self.provenance = state.provenance;
        self.zarr = state.zarr;
        self.kept_slices = state.kept_slices;
        self.kept_overflow = state.kept_overflow;
        state.wall_time_s
    }

    /// Writes `bytes` as the run's file `rel` (replacing an earlier version of it) and
    /// lists it in the manifest under `kind`.
    pub fn write_bytes(
        &mut self,
        rel: &str,
        kind: &'static str,
        bytes: &[u8],
    ) -> Result<(), Error> {
        self.replace_file(rel, bytes, FileRecord::other(kind))
    }

    /// Writes `bytes` as the run's file `rel`, replacing an earlier version of it and its
    /// manifest entry, listed with `record`.
    pub(super) fn replace_file(
        &mut self,
        rel: &str,
        bytes: &[u8],
        record: FileRecord,
    ) -> Result<(), Error> {
        self.files.retain(|f| f.path != rel);
        write_file(
            &self.out_dir,
            &mut self.files,
            rel.to_string(),
            bytes,
            record,
        )
    }

    /// Lists an existing file of the run (`bytes` are its contents) in the manifest, e.g.
    /// the checkpoint a resumed run started from.
    pub fn adopt_file(&mut self, rel: &str, kind: &'static str, bytes: &[u8]) {
        self.files.retain(|f| f.path != rel);
        self.files.push(FileRecord {
            path: rel.to_string(),
            bytes: bytes.len() as u64,
            sha256: manifest::sha256_hex(bytes),
            ..FileRecord::other(kind)
        });
    }

    /// Deletes the run's file `rel` and its manifest entry (a checkpoint after the run
    /// completed).
    pub fn remove_file(&mut self, rel: &str) -> Result<(), Error> {
        let path = self.out_dir.join(rel);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(os_error) => return Err(Error::Write { path, os_error }),
        }
        // Its folder too, once empty (`checkpoint/` of a completed run); a folder that
        // holds anything else stays.
        if let Some(parent) = path.parent().filter(|p| *p != self.out_dir) {
            let _ = fs::remove_dir(parent);
        }
        self.files.retain(|f| f.path != rel);
        Ok(())
    }

    /// Writes (or rewrites) a text file that belongs to the run, e.g. the generated WGSL.
    pub fn write_text(&mut self, rel: &str, kind: &'static str, text: &str) -> Result<(), Error> {
        self.write_bytes(rel, kind, text.as_bytes())
    }

    /// Well-mixed mode (a 1-voxel grid): appends one row to `well_mixed.csv` — time in s,
    /// every species in mM (scenario order), then pH when there is a proton species — and
    /// rewrites the file and the manifest. `values[s]` is species s.
    pub fn write_well_mixed(
        &mut self,
        time_s: f64,
        step: u64,
        values: &[f64],
    ) -> Result<(), Error> {
        let sc = &self.scenario;
        let proton = sc
            .buffer
            .as_ref()
            .map(|b| b.proton)
            .or_else(|| sc.species.iter().position(|s| s.name == "H"));
        let mut row = format!("{time_s}");
        for v in values {
            row.push_str(&format!(",{v:.9e}"));
        }
        if let Some(h) = proton {
            row.push_str(&format!(",{:.6}", 3.0 - values[h].log10()));
        }
        self.well_mixed_rows.push(row);
        let mut text = String::from("time_s");
        for s in &sc.species {
            text.push(',');
            text.push_str(&s.name);
        }
        if proton.is_some() {
            text.push_str(",pH");
        }
        text.push('\n');
        for r in &self.well_mixed_rows {
            text.push_str(r);
            text.push('\n');
        }
        self.write_text("well_mixed.csv", "csv", &text)?;
        self.outputs.push(OutputRecord { time_s, step });
        let elapsed = self.started.elapsed().as_secs_f64();
        self.write_manifest("running", elapsed)?;
        Ok(())
    }

    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    /// Number of data files written so far (the manifest is not counted).
    pub fn files_written(&self) -> usize {
        self.files.len()
    }

    /// Writes every configured output for one output time. `fields[i]` is the full 3D
    /// field (len = grid.n_voxels()) of species `scenario.output.fields[i]`. Ends by
    /// rewriting the manifest with status `running`.
    pub fn write_output(
        &mut self,
        time_s: f64,
        step: u64,
        fields: &[Vec<f32>],
    ) -> Result<(), Error> {
        let out = self.scenario.output.clone();
        let grid = self.scenario.grid;
        let fields_err = |message: String| Error::Fields { time_s, message };
        let derived = out.derived();
        let expected = out.fields.len() + derived.len();
        if fields.len() != expected {
            return Err(fields_err(format!(
                "expected {expected} fields (output.fields), got {}",
                fields.len()
            )));
        }
        let axis = out.slice_axis;
        let axis_len = slice::axis_len(&grid, axis);
        let slice_indices: Vec<usize> = match &out.slices {
            SliceSelection::All => (0..axis_len).collect(),
            SliceSelection::Indices(ix) => ix.clone(),
        };
        if let Some(bad) = slice_indices.iter().find(|&&i| i >= axis_len) {
            return Err(fields_err(format!(
                "slice index {bad} is outside axis {} with {axis_len} slices",
                axis.letter()
            )));
        }
        let mut names_units = Vec::with_capacity(fields.len());
        for (n, field) in fields.iter().enumerate() {
            // Species fields in output.fields order, then the derived fields.
            let (field_name, unit, range) = match out.fields.get(n) {
                Some(&species_ix) => {
                    let species = self.scenario.species.get(species_ix).ok_or_else(|| {
                        fields_err(format!(
                            "output.fields[{n}] = {species_ix} is not a species index"
                        ))
                    })?;
                    let range = out.ranges.get(n).copied().unwrap_or(ValueRange::Auto);
                    (species.name.clone(), species.display_unit.clone(), range)
                }
                None => {
                    let (name, unit, range) = derived[n - out.fields.len()];
                    (name.to_string(), unit.to_string(), range)
                }
            };
            if field.len() != grid.n_voxels() {
                return Err(fields_err(format!(
                    "field {field_name} has {} values, the grid has {} voxels",
                    field.len(),
                    grid.n_voxels()
                )));
            }
            self.write_field(&field_name, &unit, range, field, time_s, step)?;
            self.keep_figure_slice(&field_name, &unit, range, field, time_s);
            names_units.push((field_name, unit));
        }
        if out.vti {
            self.write_vti(time_s, step, &names_units, fields)?;
        }
        self.write_zarr_metadata()?;
        self.write_figure_if_due(time_s, step)?;

        self.outputs.push(OutputRecord { time_s, step });
        let elapsed = self.started.elapsed().as_secs_f64();
        self.write_manifest("running", elapsed)?;
        Ok(())
    }

    /// Writes one 3D field (a species or a derived field such as pH) at one time: 8-bit
    /// colour slices, the 16-bit stack, the `.npy` and the TIFF stack, as configured in
    /// `[output]`.
    pub fn write_field(
        &mut self,
        field_name: &str,
        unit: &str,
        range: ValueRange,
        field: &[f32],
        time_s: f64,
        step: u64,
    ) -> Result<(), Error> {
        let out = self.scenario.output.clone();
        let grid = self.scenario.grid;
        let axis = out.slice_axis;
        let axis_len = slice::axis_len(&grid, axis);
        let slice_indices: Vec<usize> = match &out.slices {
            SliceSelection::All => (0..axis_len).collect(),
            SliceSelection::Indices(ix) => ix.clone(),
        };
        let tag = time_tag(time_s, self.time_decimals);
        let time_label = duration::human_in(time_s, self.scenario.time.end_s);
        let (field_name, unit) = (field_name.to_string(), unit.to_string());
        let name = path_component(&field_name);
        let (lo, hi) = resolve_range(range, field);
        let min_pos = chart::min_positive(field.iter().copied());
        let (range_note, bar) = match range {
            ValueRange::Auto => (
                "auto range (min/max of the 3D field)",
                ColourBar::choose(out.colour_scale, lo, hi, min_pos),
            ),
            ValueRange::Fixed { .. } => {
                let bar = ColourBar::fixed(out.colour_scale, lo, hi);
                let (data_lo, data_hi) = finite_min_max(field.iter().copied()).unwrap_or((lo, hi));
                ("fixed range", bar.with_data(data_lo, data_hi))
            }
        };

        // The manifest record of one slice image over [lo, hi].
        let slice_of =
            |index: usize, kind: &'static str, mapping: &str, (lo, hi): (f64, f64)| FileRecord {
                axis: Some(axis.letter().to_string()),
                slice_index: Some(index),
                lo: Some(lo),
                hi: Some(hi),
                mapping: Some(mapping.to_string()),
                ..FileRecord::of_field(kind, &field_name, &unit, time_s, step)
            };
        // 8-bit colour slices. Those of an automatic range are kept, to be drawn again
        // with the field's range over the whole run when it completes.
        let mapping8 = mapping8(&field_name, &bar, out.colormap, range_note);
        let auto = matches!(range, ValueRange::Auto);
        for &index in &slice_indices {
            let sl = slice::extract(field, &grid, axis, index);
            let label = SliceLabel {
                field: &field_name,
                unit: &unit,
                time_label: &time_label,
                index,
                range_note,
            };
            let encoded = self.draw_slice8(&label, &sl, &bar);
            let rel = format!("png/{name}/{}{index:03}_{tag}.png", axis.letter());
            write_slice_png(
                &self.out_dir,
                &mut self.files,
                rel.clone(),
                encoded,
                slice_of(index, "png8", &mapping8, (bar.lo, bar.hi)),
            )?;
            if auto {
                self.keep_slice8(KeptSlice {
                    rel,
                    field: field_name.clone(),
                    unit: unit.clone(),
                    time_s,
                    time_label: time_label.clone(),
                    step,
                    index,
                    width: sl.width,
                    height: sl.height,
                    values: sl.values,
                    lo,
                    hi,
                    min_positive: min_pos,
                });
            }
        }

        // 16-bit stack: every slice, one pixel per voxel.
        if out.png16.includes(&field_name) {
            let dir = format!("png16/{name}/{tag}");
            let (width_px, height_px) = slice::slice_size(&grid, axis);
            for index in 0..axis_len {
                let sl = slice::extract_array_order(field, &grid, axis, index);
                let rel = format!("{dir}/{}{index:03}.png", axis.letter());
                let encoded = png::encode_gray16(&sl, lo, hi);
                write_slice_png(
                    &self.out_dir,
                    &mut self.files,
                    rel,
                    encoded,
                    slice_of(index, "png16", manifest::PNG16_MAPPING, (lo, hi)),
                )?;
            }
            self.stacks.push(StackRecord {
                dir,
                field: field_name.clone(),
                unit: unit.clone(),
                time_s,
                step,
                axis: axis.letter().to_string(),
                n_slices: axis_len,
                width_px,
                height_px,
                voxel_um: grid.voxel_um,
                lo,
                hi,
                mapping: manifest::PNG16_MAPPING.into(),
                orientation: slice::array_orientation(axis).into(),
            });
        }

        if out.npy {
            let rel = format!("fields/{name}_{tag}.npy");
            let bytes = npy::encode_field(field, &grid);
            write_file(
                &self.out_dir,
                &mut self.files,
                rel,
                &bytes,
                FileRecord::of_field("npy", &field_name, &unit, time_s, step),
            )?;
        }
        let zarr = out.zarr;
        if out.tiff {
            self.write_tiff(&field_name, &unit, (lo, hi), field, time_s, step)?;
        }
        if zarr {
            let chunks = self
                .zarr
                .field_chunks(&grid, &field_name, &unit, field, time_s)
                .map_err(|e| Error::Fields {
                    time_s,
                    message: e.to_string(),
                })?;
            for (key, bytes) in chunks {
                self.files
                    .retain(|f| f.path != format!("{}/{key}", zarr::STORE));
                write_file(
                    &self.out_dir,
                    &mut self.files,
                    format!("{}/{key}", zarr::STORE),
                    &bytes,
                    FileRecord::of_field("zarr", &field_name, &unit, time_s, step),
                )?;
            }
        }
        Ok(())
    }

    /// An 8-bit colour slice of `sl` labelled by `label`, coloured on `bar`, encoded.
    fn draw_slice8(
        &self,
        label: &SliceLabel,
        sl: &chart::Slice,
        bar: &ColourBar,
    ) -> Result<Vec<u8>, image::ImageError> {
        let out = &self.scenario.output;
        let grid = self.scenario.grid;
        let axis = out.slice_axis;
        let (right, up) = slice::drawn_axes(axis);
        let scale = if bar.log { "log scale, " } else { "" };
        let footer = format!(
            "{right} →   {up} ↑   voxel {} µm   {}, {scale}{}",
            short_number(grid.voxel_um, 3),
            colormap::name(out.colormap),
            label.range_note
        );
        let pos_um = (label.index as f64 + 0.5) * grid.voxel_um;
        // The unit the colour bar reads in (fM … mM).
        let (_, shown) = chart::readable_unit(label.unit, bar.lo.abs().max(bar.hi.abs()));
        let title = format!(
            "{} [{}]  t = {}  {} = {} ({} µm)",
            label.field,
            shown,
            label.time_label,
            axis.letter(),
            label.index,
            short_number(pos_um, 3)
        );
        // Overlay: the slice's geometry, as `output.outlines` asks.
        let geometry = self
            .geometry
            .as_ref()
            .filter(|g| g.tissue.len() == grid.n_voxels());
        let cut = |v: &[bool]| slice::extract_values(v, &grid, axis, label.index);
        let no_cells = geometry
            .filter(|g| g.cell_fields.iter().any(|f| f == label.field))
            .map(|g| cut(&g.no_cells));
        let tissue = geometry
            .filter(|_| out.outlines.tissue)
            .map(|g| slice::extract_values(&g.tissue, &grid, axis, label.index));
        let vessels = geometry
            .filter(|_| out.outlines.vessels)
            .map(|g| cut(&g.vessel));
        let (nan, marked) = special_values(label.field);
        let labels = png::Png8Labels {
            title: &title,
            unit: label.unit,
            footer: &footer,
            colormap: out.colormap,
            bar: *bar,
            theme: chart::Theme::chosen(out.theme, chart::Theme::DARK),
            overlay: png::SliceOverlay {
                no_cells: no_cells.as_deref(),
                tissue: tissue.as_deref(),
                vessels: vessels.as_deref(),
                nan,
                marked,
            },
        };
        png::encode_rgb(&png::render_colour(sl, &labels, &self.text))
    }

    /// Keeps `slice` for [`RunWriter::unify_slice_ranges`], up to
    /// [`MAX_KEPT_SLICE_VALUES`] values in all (then says once that the slices keep the
    /// ranges of their own times).
    fn keep_slice8(&mut self, slice: KeptSlice) {
        if self.kept_overflow {
            return;
        }
        let kept: usize = self.kept_slices.iter().map(|k| k.values.len()).sum();
        if kept + slice.values.len() > MAX_KEPT_SLICE_VALUES {
            self.kept_overflow = true;
            self.kept_slices.clear();
            log::warn!(
                "the 8-bit colour slices keep the automatic range of their own time: one range per field over the run would keep more than {} MiB of slices. Fix: fewer slices (output.slices) or fixed ranges (output.ranges_mm)",
                (MAX_KEPT_SLICE_VALUES * 4) >> 20
            );
            return;
        }
        self.kept_slices.push(slice);
    }

    /// Draws every kept 8-bit colour slice again with its field's range over the whole run
    /// (the smallest and largest value of the 3D field at any output time), so one colour
    /// means one value in every picture of a field; the manifest records the new range.
    /// Called when the run completes; returns the number of slices redrawn.
    pub fn unify_slice_ranges(&mut self) -> Result<usize, Error> {
        let kept = std::mem::take(&mut self.kept_slices);
        // Per field: the smallest and largest value, and the smallest positive one.
        let mut ranges: Vec<(String, f64, f64, Option<f64>)> = Vec::new();
        for k in &kept {
            match ranges.iter_mut().find(|r| r.0 == k.field) {
                Some((_, lo, hi, min_pos)) => {
                    *lo = lo.min(k.lo);
                    *hi = hi.max(k.hi);
                    *min_pos = match (*min_pos, k.min_positive) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                None => ranges.push((k.field.clone(), k.lo, k.hi, k.min_positive)),
            }
        }
        let out = &self.scenario.output;
        let (colormap, scale, axis) = (out.colormap, out.colour_scale, out.slice_axis);
        for k in &kept {
            let &(_, lo, hi, min_pos) = ranges
                .iter()
                .find(|r| r.0 == k.field)
                .expect("every kept field has a range");
            let bar = ColourBar::choose(scale, lo, hi, min_pos);
            let mapping = mapping8(&k.field, &bar, colormap, RUN_RANGE_NOTE);
            let sl = chart::Slice {
                width: k.width,
                height: k.height,
                values: k.values.clone(),
            };
            let label = SliceLabel {
                field: &k.field,
                unit: &k.unit,
                time_label: &k.time_label,
                index: k.index,
                range_note: RUN_RANGE_NOTE,
            };
            let encoded = self.draw_slice8(&label, &sl, &bar);
            self.files.retain(|f| f.path != k.rel);
            let record = FileRecord {
                axis: Some(axis.letter().to_string()),
                slice_index: Some(k.index),
                lo: Some(bar.lo),
                hi: Some(bar.hi),
                mapping: Some(mapping.clone()),
                ..FileRecord::of_field("png8", &k.field, &k.unit, k.time_s, k.step)
            };
            write_slice_png(
                &self.out_dir,
                &mut self.files,
                k.rel.clone(),
                encoded,
                record,
            )?;
        }
        Ok(kept.len())
    }

    /// Rewrites the documents of `fields.ome.zarr` that grow with the run (the root
    /// group's attributes, the image's shape), if `output.zarr`.
    fn write_zarr_metadata(&mut self) -> Result<(), Error> {
        if !self.scenario.output.zarr || self.zarr.channels.is_empty() {
            return Ok(());
        }
        let grid = self.scenario.grid;
        let files = self
            .zarr
            .metadata_files(&grid, &self.scenario.name)
            .map_err(|e| Error::Fields {
                time_s: self.zarr.times_s.last().copied().unwrap_or(0.0),
                message: e.to_string(),
            })?;
        for (key, bytes) in files {
            self.write_bytes(&format!("{}/{key}", zarr::STORE), "zarr", &bytes)?;
        }
        Ok(())
    }

    /// Writes the label images of `fields.ome.zarr` (if `output.zarr`, once per run):
    /// `tissue` (the tissue index of each voxel, x fastest) and `vessels` (1 inside a
    /// vessel).
    pub fn write_labels(&mut self, tissue: &[u8], vessels: &[u8]) -> Result<(), Error> {
        if !self.scenario.output.zarr || self.zarr.labels_written {
            return Ok(());
        }
        let grid = self.scenario.grid;
        let names: Vec<String> = self
            .scenario
            .tissues
            .iter()
            .map(|t| t.name.clone())
            .collect();
        let files = self
            .zarr
            .label_files(&grid, tissue, vessels, &names)
            .map_err(|e| Error::Fields {
                time_s: 0.0,
                message: e.to_string(),
            })?;
        for (key, bytes) in files {
            self.write_bytes(&format!("{}/{key}", zarr::STORE), "zarr", &bytes)?;
        }
        Ok(())
    }

    /// Records why the run failed; the next manifest carries it (status `failed`).
    pub fn set_failure(&mut self, message: String) {
        self.failure = Some(message);
    }

    /// Records the spin-up report for the manifest.
    pub fn set_spin_up(&mut self, report: crate::sim::SpinUpReport) {
        self.spin_up = Some(report);
    }

    /// Writes the per-voxel time of death (s; NaN = alive at the end) as a field of the
    /// final time: `.npy`, colour slices and 16-bit stack like any field.
    pub fn write_time_of_death(&mut self, time_of_death_s: &[f32]) -> Result<(), Error> {
        let end_s = self.scenario.time.end_s;
        let step = self.outputs.last().map_or(0, |o| o.step);
        self.write_field(
            TIME_OF_DEATH,
            "s",
            ValueRange::Fixed { lo: 0.0, hi: end_s },
            time_of_death_s,
            end_s,
            step,
        )?;
        self.write_zarr_metadata()?;
        let elapsed = self.started.elapsed().as_secs_f64();
        self.write_manifest("running", elapsed)?;
        Ok(())
    }

    /// Rewrites `manifest.json` with `status` (`running`, `complete`, `failed`,
    /// `interrupted`) and the wall time; returns its path.
    pub fn write_manifest(&mut self, status: &str, wall_time_s: f64) -> Result<PathBuf, Error> {
        let path = self.out_dir.join("manifest.json");
        let manifest = Manifest {
            ionfield_version: crate::VERSION,
            git_commit: crate::GIT_COMMIT,
            status,
            failure: self.failure.as_deref(),
            wall_time_s,
            backend: &self.info.backend,
            adapter: &self.info.adapter,
            driver: &self.info.driver,
            scenario: &self.scenario,
            axis_order: manifest::AXIS_ORDER,
            image_orientation: slice::orientation(self.scenario.output.slice_axis),
            outputs: &self.outputs,
            files: &self.files,
            png16_stacks: &self.stacks,
            spin_up: self.spin_up.as_ref(),
            provenance: &self.provenance,
        };
        let mut bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        bytes.push(b'\n');
        atomic::write_atomic(&path, &bytes)?;
        Ok(path)
    }
}

/// The mapping text of an 8-bit colour slice in the manifest.
fn mapping8(
    field: &str,
    bar: &ColourBar,
    cmap: crate::config::Colormap,
    range_note: &str,
) -> String {
    let (nan, marked) = special_values(field);
    let mut special = match nan {
        Some((meaning, rgb)) => format!("NaN = {rgb:?}: {meaning}"),
        None => "NaN = magenta".to_string(),
    };
    if let Some((value, meaning, rgb)) = marked {
        special += &format!("; {value} = {rgb:?}: {meaning}");
    }
    format!("{}; {special}; {range_note}", bar.mapping(cmap))
}

/// What a field's special values mean and how its 8-bit slices draw them, for the slice
/// legend and the manifest's mapping alike: its NaN (None: "no value" in the colour map's
/// NaN colour) and one value drawn apart from the colour bar. Only `time_of_death` has
/// them: NaN = alive at the end, 0 = dead already at t = 0.
#[allow(clippy::type_complexity)]
fn special_values(
    field: &str,
) -> (
    Option<(&'static str, [u8; 3])>,
    Option<(f32, &'static str, [u8; 3])>,
) {
    if field == TIME_OF_DEATH {
        (
            Some((ALIVE_LABEL, png::ALIVE_RGB)),
            Some((0.0, DEAD_AT_START_LABEL, png::DEAD_AT_START_RGB)),
        )
    } else {
        (None, None)
    }
}

/// Name of the per-voxel time-of-death field (s; NaN = alive at the end, 0 = dead at t = 0).
pub const TIME_OF_DEATH: &str = "time_of_death";

/// Legend of the NaN voxels of `time_of_death`.
const ALIVE_LABEL: &str = "alive at the end (never died)";
/// Legend of the voxels of `time_of_death` that were dead at the first summary, t = 0,
/// before any step of the run: necrosis of the spin-up (or of the initial state), not of
/// the therapy.
const DEAD_AT_START_LABEL: &str = "dead already at t = 0";

/// What the title and footer of an 8-bit colour slice say.
struct SliceLabel<'a> {
    field: &'a str,
    unit: &'a str,
    time_label: &'a str,
    index: usize,
    range_note: &'a str,
}

/// Most slice values kept for [`RunWriter::unify_slice_ranges`] (16 MiB of f32; they
/// travel in checkpoints). Beyond it the slices keep the range of their own time.
const MAX_KEPT_SLICE_VALUES: usize = 1 << 22;

/// The note of a slice drawn with its field's range over the whole run.
const RUN_RANGE_NOTE: &str =
    "range of the whole run (min/max of the 3D field over every output time)";

/// An 8-bit colour slice drawn with the automatic range of its own time, kept so that
/// [`RunWriter::unify_slice_ranges`] can draw it again with its field's range over the
/// whole run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct KeptSlice {
    rel: String,
    field: String,
    unit: String,
    time_s: f64,
    time_label: String,
    step: u64,
    index: usize,
    width: usize,
    height: usize,
    values: Vec<f32>,
    /// The range of the 3D field at its time (min/max), from which it was drawn.
    lo: f64,
    hi: f64,
    /// The smallest positive value of the 3D field at its time (for a log colour bar).
    #[serde(default)]
    min_positive: Option<f64>,
}

/// Writes an encoded slice image (8-bit colour or 16-bit gray) as the run's file `rel`,
/// listed with its slice, range and mapping; an encoding failure names the file.
fn write_slice_png(
    out_dir: &Path,
    files: &mut Vec<FileRecord>,
    rel: String,
    encoded: Result<Vec<u8>, image::ImageError>,
    record: FileRecord,
) -> Result<(), Error> {
    let bytes = encoded.map_err(|e| Error::Encode {
        path: out_dir.join(&rel),
        message: e.to_string(),
    })?;
    write_file(out_dir, files, rel, &bytes, record)
}

/// Writes `bytes` atomically to `out_dir/rel` (`rel` relative, `/`-separated) and
/// records it with its size and checksum.
fn write_file(
    out_dir: &Path,
    files: &mut Vec<FileRecord>,
    rel: String,
    bytes: &[u8],
    mut record: FileRecord,
) -> Result<(), Error> {
    let path = out_dir.join(&rel);
    atomic::write_atomic(&path, bytes)?;
    log::debug!("wrote {}", path.display());
    record.path = rel;
    record.bytes = bytes.len() as u64;
    record.sha256 = manifest::sha256_hex(bytes);
    files.push(record);
    Ok(())
}

#[cfg(test)]
mod tests;
