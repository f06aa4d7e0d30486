//! `plots/figure_series.png` of a run (`[output.figure]`): [`RunWriter`] keeps the 2D
//! slice of each figure field at each figure time as the fields are written, and renders
//! the figure once the last figure time has been written.

use super::manifest::FileRecord;
use super::png::format_value;
use super::{short_number, slice, Error, RunWriter};
use crate::chart::colormap;
use crate::chart::{self, FigureSeries, FigureStyle};
use crate::config::ValueRange;

/// The fields that exist only in cells: `viab`, and every species that does not diffuse
/// and is held neither by a vessel nor at a face (GSH, the labile iron pool, OH·, pHi,
/// particles taken up, …). In a vessel lumen or a held face layer such a species keeps
/// its initial value (lumens are not dosed), which a figure would show as a dark or
/// bright dot at every capillary.
pub fn cell_bound_fields(scenario: &crate::config::Scenario) -> Vec<String> {
    let held = |s: usize| {
        scenario
            .vessels
            .iter()
            .any(|v| v.hold_mm.iter().any(|(h, _)| *h == s))
            || scenario.species[s]
                .boundary
                .iter()
                .any(|b| matches!(b, crate::config::BoundaryCondition::Dirichlet { .. }))
    };
    let mut fields = vec!["viab".to_string()];
    for (s, sp) in scenario.species.iter().enumerate() {
        if sp.name != "viab" && !sp.diffuses() && !held(s) {
            fields.push(sp.name.clone());
        }
    }
    fields
}

/// Path of the figure in the output folder; the same figure in vector form is beside it
/// as `.svg` and `.pdf` ([`FIGURE_VECTOR_PATHS`]).
pub const FIGURE_PATH: &str = "plots/figure_series.png";
pub const FIGURE_VECTOR_PATHS: [&str; 2] = ["plots/figure_series.svg", "plots/figure_series.pdf"];

impl RunWriter {
    /// The empty figure of `[output.figure]`, if configured.
    pub(super) fn new_figure(scenario: &crate::config::Scenario) -> Option<FigureSeries> {
        let spec = scenario.output.figure.as_ref()?;
        let (w, h) = slice::slice_size(&scenario.grid, scenario.output.slice_axis);
        Some(FigureSeries::new(&spec.fields, &spec.times_s, w, h))
    }

    /// Tells the writer the model's geometry (one value per grid voxel, x fastest): the
    /// tissue id, the vessel voxels and the voxels that hold no tissue cells (vessel
    /// lumens and held boundary layers, the voxels every tissue summary leaves out).
    /// Fields that live in cells ([`cell_bound_fields`], `time_of_death`) draw cell-free
    /// voxels blank, in the 8-bit slices and the figure, instead of a value that means
    /// nothing there; the slices outline tissues and vessels (`output.outlines`).
    pub fn set_geometry(&mut self, tissue: Vec<u8>, vessel: Vec<bool>, no_cells: Vec<bool>) {
        self.mark_no_tissue(&no_cells);
        if self.scenario.output.outlines.tissue {
            self.outline_figure_tissues(&tissue);
        }
        let mut cell_fields = cell_bound_fields(&self.scenario);
        cell_fields.push(super::TIME_OF_DEATH.to_string());
        self.geometry = Some(super::SliceGeometry {
            tissue,
            vessel,
            no_cells,
            cell_fields,
        });
    }

    /// Outlines the tissues of the figure slice (`tissue`: the tissue id of every grid
    /// voxel) on its panels.
    fn outline_figure_tissues(&mut self, tissue: &[u8]) {
        let (Some(fig), Some(spec)) = (self.figure.as_mut(), self.scenario.output.figure.as_ref())
        else {
            return;
        };
        let grid = self.scenario.grid;
        let axis = self.scenario.output.slice_axis;
        if tissue.len() == grid.n_voxels() && spec.slice_index < slice::axis_len(&grid, axis) {
            fig.outline_tissues(slice::extract_values(tissue, &grid, axis, spec.slice_index));
        }
    }

    /// Marks the voxels of the figure slice that hold no tissue cells (`no_cells`, one per
    /// grid voxel); the rows of cell-bound quantities draw them in white.
    fn mark_no_tissue(&mut self, no_cells: &[bool]) {
        let (Some(fig), Some(spec)) = (self.figure.as_mut(), self.scenario.output.figure.as_ref())
        else {
            return;
        };
        let grid = self.scenario.grid;
        let axis = self.scenario.output.slice_axis;
        if no_cells.len() != grid.n_voxels() || spec.slice_index >= slice::axis_len(&grid, axis) {
            return;
        }
        let as_f32: Vec<f32> = no_cells.iter().map(|&b| b as u8 as f32).collect();
        let sl = slice::extract(&as_f32, &grid, axis, spec.slice_index);
        let cell_fields = cell_bound_fields(&self.scenario);
        let names: Vec<&str> = cell_fields.iter().map(String::as_str).collect();
        fig.mark_no_tissue(sl.values.iter().map(|&v| v > 0.5).collect(), &names);
    }

    /// Keeps the figure slice of one written field (values in `unit`) if the field and
    /// the time are in the figure.
    pub(super) fn keep_figure_slice(
        &mut self,
        field_name: &str,
        unit: &str,
        range: ValueRange,
        field: &[f32],
        time_s: f64,
    ) {
        let (Some(fig), Some(spec)) = (self.figure.as_mut(), self.scenario.output.figure.as_ref())
        else {
            return;
        };
        if fig.written || !fig.has_field(field_name) || fig.column(time_s).is_none() {
            return;
        }
        let grid = self.scenario.grid;
        let axis = self.scenario.output.slice_axis;
        if field.len() != grid.n_voxels() || spec.slice_index >= slice::axis_len(&grid, axis) {
            return; // write_output has reported a mismatch already
        }
        let sl = slice::extract(field, &grid, axis, spec.slice_index);
        let range = match range {
            ValueRange::Fixed { lo, hi } => Some((lo, hi)),
            ValueRange::Auto => None,
        };
        fig.keep(field_name, unit, range, time_s, &sl);
    }

    /// After the last figure time: renders and writes `plots/figure_series.png`, `.svg`
    /// and `.pdf` (kind `plot` in the manifest), once.
    pub(super) fn write_figure_if_due(&mut self, time_s: f64, step: u64) -> Result<(), Error> {
        let (Some(fig), Some(spec)) = (self.figure.as_ref(), self.scenario.output.figure.as_ref())
        else {
            return Ok(());
        };
        if fig.written || !fig.is_due(time_s) {
            return Ok(());
        }
        let out = &self.scenario.output;
        let grid = self.scenario.grid;
        let axis = out.slice_axis;
        let (right, up) = slice::drawn_axes(axis);
        let pos_um = (spec.slice_index as f64 + 0.5) * grid.voxel_um;
        let names = |fixed: bool| {
            fig.rows
                .iter()
                .filter(|r| r.range.is_some() == fixed)
                .map(|r| r.field.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (fixed, auto) = (names(true), names(false));
        let mut ranges = Vec::new();
        if !fixed.is_empty() {
            ranges.push(format!("fixed ({fixed})"));
        }
        if !auto.is_empty() {
            ranges.push(format!("min–max over the row ({auto})"));
        }
        let log_rows: Vec<&str> = (0..fig.rows.len())
            .filter(|&r| fig.row_bar(r, out.colour_scale).log)
            .map(|r| fig.rows[r].field.as_str())
            .collect();
        if !log_rows.is_empty() {
            ranges.push(format!(
                "log10 scale in {} (values at or below the bar's bottom in its bottom colour)",
                log_rows.join(", ")
            ));
        }
        let masked = fig.rows_masked().join(", ");
        let mut no_tissue = if masked.is_empty() {
            String::new()
        } else {
            format!("\nWhite in {masked}: no tissue cells (vessel lumens, held faces).")
        };
        if fig.tissue.is_some() {
            no_tissue.push_str(" Black-and-white dashes: tissue boundaries.");
        }
        let caption = format!(
            "Slice {} = {} ({} µm from the grid edge), voxel {} µm; {right} →, {up} ↑. Colour range per row: {}.{no_tissue}",
            axis.letter(),
            spec.slice_index,
            short_number(pos_um, 3),
            short_number(grid.voxel_um, 3),
            ranges.join("; ")
        );
        let style = FigureStyle {
            colour_scale: out.colour_scale,
            theme: chart::Theme::chosen(out.theme, chart::Theme::LIGHT),
            ..FigureStyle::new(out.colormap, spec.dpi, grid.voxel_um, &caption)
        };
        let img = chart::figure_series(fig, &style);
        let path = self.out_dir.join(FIGURE_PATH);
        let bytes = chart::encode_png(&img, spec.dpi).map_err(|e| Error::Encode {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let rows: Vec<String> = (0..fig.rows.len())
            .map(|r| {
                // In the unit the row is labelled in (O2 in µM, OH· in fM), as drawn.
                let bar = fig.row_bar(r, style.colour_scale);
                let (factor, _) = fig.row_unit(r, style.colour_scale);
                let (lo, hi) = (bar.lo * factor, bar.hi * factor);
                let how = if fig.rows[r].range.is_some() {
                    "fixed"
                } else {
                    "auto over the row"
                };
                let scale = if bar.log { ", log10" } else { "" };
                format!(
                    "{} {} … {} ({how}{scale})",
                    fig.row_label(r, style.colour_scale),
                    format_value(lo),
                    format_value(hi)
                )
            })
            .collect();
        let times: Vec<String> = fig.times_s.iter().map(|t| format!("{t}")).collect();
        let mapping = format!(
            "rows top to bottom: {}; columns t = {} s; colour = {}((value − lo)/(hi − lo)) per row, or of log10(value/lo)/log10(hi/lo) on a log10 row (values ≤ lo at the bottom colour), clamped; NaN = magenta;{}",
            rows.join("; "),
            times.join(", "),
            colormap::name(out.colormap),
            no_tissue.replace('\n', " "),
        );
        let how_drawn = [
            format!(" {} dpi (pHYs)", spec.dpi),
            format!(
                " vector text and lines, each panel an embedded PNG of one pixel per voxel drawn unsmoothed; the size of the {} dpi PNG",
                spec.dpi
            ),
        ];
        let fields: Vec<&str> = fig.rows.iter().map(|r| r.field.as_str()).collect();
        let record = FileRecord {
            axis: Some(axis.letter().to_string()),
            slice_index: Some(spec.slice_index),
            mapping: Some(mapping.clone() + &how_drawn[0]),
            ..FileRecord::of_field("plot", &fields.join(","), "", time_s, step)
        };
        let svg = chart::figure_series_svg(fig, &style);
        let pdf = chart::svg_to_pdf(&svg).map_err(|e| Error::Encode {
            path: self.out_dir.join(FIGURE_VECTOR_PATHS[1]),
            message: e.to_string(),
        })?;
        for (rel, bytes) in [
            (FIGURE_PATH, &bytes[..]),
            (FIGURE_VECTOR_PATHS[0], svg.as_bytes()),
            (FIGURE_VECTOR_PATHS[1], &pdf[..]),
        ] {
            let mut record = record.clone();
            if rel != FIGURE_PATH {
                record.mapping = Some(mapping.clone() + &how_drawn[1]);
            }
            self.replace_file(rel, bytes, record)?;
        }
        if let Some(fig) = self.figure.as_mut() {
            fig.written = true;
        }
        Ok(())
    }
}
