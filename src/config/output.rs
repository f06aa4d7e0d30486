//! `[output]`: written fields, colour map, slices, ranges, formats, time series and probes →
//! [`OutputSpec`] (its `[output.figure]` is checked in `figure.rs`).

use serde::Deserialize;

use super::buffer::RawBuffer;
use super::checks::{finite, fmt_vec, species_ix_fix};
use super::duration::{self, Duration};
use super::error::{did_you_mean, list, short, Error, ErrorKind};
use super::figure::{self, RawFigure};
use super::raw::NamedMap;
use super::scenario::{
    Axis, Colormap, ColourScale, FluorescenceField, Grid, MaskField, MriField, Outlines,
    OutputSpec, PhOutput, Png16, Probe, SliceSelection, ThemeName, TimeSpec, TimeseriesField,
    ValueRange,
};
use super::time::{default_summary_interval_s, output_count, MAX_STOPS};
use glam::DVec3;

const COLORMAPS: [&str; 6] = [
    "viridis",
    "magma",
    "inferno",
    "plasma",
    "cividis",
    "grayscale",
];

/// `[output]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    pub fields: Option<Vec<String>>,
    pub colormap: Option<String>,
    /// `"auto"` (default: log for a field spanning more than three decades), `"linear"`
    /// or `"log"`: the colour bars of the 8-bit slices and the figure series.
    pub colour_scale: Option<String>,
    /// Boundaries drawn over the 8-bit slices and the figure series: any of `"tissue"`
    /// (the tumour's edge) and `"vessels"` (vessel walls); default `["tissue"]`, `[]` for
    /// none.
    pub outlines: Option<Vec<String>>,
    /// `"light"` or `"dark"` for every picture; default: dark 8-bit slices (screens), light
    /// plots and figure series (print).
    pub theme: Option<String>,
    pub slice_axis: Option<String>,
    /// An array of indices or `"all"`; checked in `validate`.
    #[schemars(with = "Option<serde_json::Value>")]
    pub slices: Option<toml::Value>,
    pub ranges_mm: Option<NamedMap<Vec<f64>>>,
    /// `true`, `false` or a list of written field names; checked in `validate`.
    #[schemars(with = "Option<serde_json::Value>")]
    pub png16: Option<toml::Value>,
    pub npy: Option<bool>,
    /// OME-Zarr store `fields.ome.zarr` (default true).
    pub zarr: Option<bool>,
    pub vti: Option<bool>,
    pub tiff: Option<bool>,
    /// Fields of `timeseries.csv` (species names and "pH"); default every species and pH.
    pub timeseries: Option<Vec<String>>,
    /// Model time between summaries (time series, viability), s; or `summary_interval =
    /// "5 min"`. Default: [`default_summary_interval_s`].
    pub summary_interval_s: Option<f64>,
    pub summary_interval: Option<Duration>,
    /// Summaries as exact stops of the coupled scheme (steps shortened to land on them)
    /// rather than interpolated within its steps; default false.
    pub exact_summaries: Option<bool>,
    pub probe: Option<Vec<RawProbe>>,
    /// `[output.figure]`: the multi-panel figure `plots/figure_series.png`.
    pub figure: Option<RawFigure>,
}

/// `[[output.probe]]`: a point probe in `timeseries.csv`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    pub name: String,
    pub point_um: Vec<f64>,
}

/// Which readout tables the scenario has: the fields that need them may be written.
#[derive(Clone, Copy)]
pub(super) struct Readouts {
    /// `[mri]`: `R1`, `R2`, `T1w`, `T2w`.
    pub mri: bool,
    /// `[fluorescence]`: `FL`, `FLimg`.
    pub fluorescence: bool,
}

/// `[output]`; `buffer` names the proton behind "pH", `tissues` are the names of
/// `[tissues]` (probes may not take them), `species` the species names, by index.
pub(super) fn validate(
    raw: Option<&RawOutput>,
    buffer: Option<&RawBuffer>,
    tissues: &[&str],
    species: &[&str],
    grid: &Grid,
    time: &TimeSpec,
    readouts: Readouts,
) -> Result<OutputSpec, Error> {
    let Readouts {
        mri: has_mri,
        fluorescence: has_fluorescence,
    } = readouts;
    let empty;
    let o = match raw {
        Some(o) => o,
        None => {
            empty = RawOutput {
                fields: None,
                colormap: None,
                colour_scale: None,
                outlines: None,
                theme: None,
                slice_axis: None,
                slices: None,
                ranges_mm: None,
                png16: None,
                npy: None,
                zarr: None,
                vti: None,
                tiff: None,
                timeseries: None,
                summary_interval_s: None,
                summary_interval: None,
                exact_summaries: None,
                probe: None,
                figure: None,
            };
            &empty
        }
    };

    // Free H+ behind a "pH" field: the buffer's proton, else a species named H.
    let proton_name = buffer.map(|b| b.proton.as_str()).unwrap_or("H");
    let proton = species.iter().position(|n| *n == proton_name);
    let mut ph = None;
    let mut mri = Vec::new();
    let mut fluorescence = Vec::new();
    let mut masks = Vec::new();
    let fields: Vec<usize> = match &o.fields {
        None => (0..species.len()).collect(),
        Some(names) => {
            let mut out = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let field = format!("output.fields[{i}]");
                if name == "pH" {
                    let Some(proton) = proton else {
                        return Err(Error::invalid(&field, "pH needs a proton species")
                            .found("\"pH\"")
                            .fix("add a species `H` (free H+, mM) or a [buffer] with `proton = \"…\"`"));
                    };
                    ph = Some(PhOutput {
                        proton,
                        range: ValueRange::Auto,
                    });
                    continue;
                }
                if let Some(&m) = MaskField::ALL.iter().find(|m| m.name() == name) {
                    if masks.iter().any(|&(k, _)| k == m) {
                        return Err(Error::invalid(&field, "field listed twice")
                            .found(format!("{name:?}"))
                            .fix("list each field once"));
                    }
                    // Tissue indices run from 0 (`normal`) to the number of [tissues].
                    let hi = match m {
                        MaskField::Tissue => tissues.len().max(1) as f64,
                        MaskField::Vessels => 1.0,
                    };
                    masks.push((m, ValueRange::Fixed { lo: 0.0, hi }));
                    continue;
                }
                if let Some(m) = MriField::ALL.iter().find(|m| m.name() == name) {
                    if !has_mri {
                        return Err(Error::invalid(&field, format!("{name} needs an [mri] table"))
                            .found(format!("{name:?}"))
                            .fix("add [mri] with relaxivities and baseline T1_0_s/T2_0_s (see configs/therapies/mno2_gsh_depletion.toml), or remove the field"));
                    }
                    mri.push((*m, ValueRange::Auto));
                    continue;
                }
                if let Some(&m) = FluorescenceField::ALL.iter().find(|m| m.name() == name) {
                    if !has_fluorescence {
                        return Err(Error::invalid(
                            &field,
                            format!("{name} needs a [fluorescence] table"),
                        )
                        .found(format!("{name:?}"))
                        .fix("add [fluorescence] with brightness_per_mM, emission_mu_eff_per_cm and face (see configs/therapies/ptt_au_nanorods.toml), or remove the field"));
                    }
                    if fluorescence.iter().any(|&(k, _)| k == m) {
                        return Err(Error::invalid(&field, "field listed twice")
                            .found(format!("{name:?}"))
                            .fix("list each field once"));
                    }
                    fluorescence.push((m, ValueRange::Auto));
                    continue;
                }
                let Some(s) = species.iter().position(|n| n == name) else {
                    return Err(Error::invalid(
                        &field,
                        format!(
                            "unknown species{}",
                            did_you_mean(name, species.iter().copied())
                        ),
                    )
                    .found(format!("{name:?}"))
                    .fix(format!(
                        "use species names from {}",
                        list(species.iter().copied())
                    )));
                };
                if out.contains(&s) {
                    return Err(Error::invalid(&field, "species listed twice")
                        .found(format!("{name:?}"))
                        .fix("list each species once"));
                }
                out.push(s);
            }
            out
        }
    };

    let colormap = match o.colormap.as_deref() {
        None | Some("viridis") => Colormap::Viridis,
        Some("magma") => Colormap::Magma,
        Some("inferno") => Colormap::Inferno,
        Some("plasma") => Colormap::Plasma,
        Some("cividis") => Colormap::Cividis,
        Some("grayscale") => Colormap::Grayscale,
        Some(other) => {
            return Err(Error::invalid(
                "output.colormap",
                format!("unknown colour map{}", did_you_mean(other, COLORMAPS)),
            )
            .found(format!("{other:?}"))
            .fix(format!("use one of {}", list(COLORMAPS))))
        }
    };

    let colour_scale = match o.colour_scale.as_deref() {
        None | Some("auto") => ColourScale::Auto,
        Some("linear") => ColourScale::Linear,
        Some("log") => ColourScale::Log,
        Some(other) => {
            return Err(Error::invalid(
                "output.colour_scale",
                format!(
                    "unknown colour scale{}",
                    did_you_mean(other, ["auto", "linear", "log"])
                ),
            )
            .found(format!("{other:?}"))
            .fix("write colour_scale = \"auto\" (log for fields spanning more than three decades), \"linear\" or \"log\""))
        }
    };

    let outlines = match &o.outlines {
        None => Outlines::default(),
        Some(names) => {
            let mut outlines = Outlines {
                tissue: false,
                vessels: false,
            };
            for (i, name) in names.iter().enumerate() {
                match name.as_str() {
                    "tissue" => outlines.tissue = true,
                    "vessels" => outlines.vessels = true,
                    other => return Err(Error::invalid(
                        format!("output.outlines[{i}]"),
                        format!(
                            "unknown outline{}",
                            did_you_mean(other, ["tissue", "vessels"])
                        ),
                    )
                    .found(format!("{other:?}"))
                    .fix(
                        "write outlines = [\"tissue\", \"vessels\"], a part of it, or [] for none",
                    )),
                }
            }
            outlines
        }
    };

    let theme = match o.theme.as_deref() {
        None => None,
        Some("light") => Some(ThemeName::Light),
        Some("dark") => Some(ThemeName::Dark),
        Some(other) => {
            return Err(Error::invalid(
                "output.theme",
                format!("unknown theme{}", did_you_mean(other, ["light", "dark"])),
            )
            .found(format!("{other:?}"))
            .fix("write theme = \"light\" (white, for print) or \"dark\", or leave it out (dark slices, light plots)"))
        }
    };

    let slice_axis = match o.slice_axis.as_deref() {
        Some("x") => Axis::X,
        Some("y") => Axis::Y,
        None | Some("z") => Axis::Z,
        Some(other) => {
            return Err(
                Error::invalid("output.slice_axis", "must be \"x\", \"y\" or \"z\"")
                    .found(format!("{other:?}"))
                    .fix("write slice_axis = \"z\" (or \"x\", \"y\")"),
            )
        }
    };
    let axis_len = grid.shape()[slice_axis as usize];
    let slices = match &o.slices {
        None => SliceSelection::Indices(vec![axis_len / 2]),
        Some(v) => slices(v, axis_len, slice_axis)?,
    };

    let mut ranges = vec![ValueRange::Auto; fields.len()];
    for (name, r) in o.ranges_mm.iter().flat_map(|m| m.0.iter()) {
        let field = format!("output.ranges_mm.{name}");
        if name == "pH" {
            let Some(p) = ph.as_mut() else {
                return Err(Error::invalid(&field, "\"pH\" is not in output.fields")
                    .fix("add \"pH\" to output.fields or remove its range"));
            };
            p.range = fixed_range(r, &field, "give a pH range such as [6.4, 7.5]")?;
            continue;
        }
        if let Some(slot) = fluorescence.iter_mut().find(|(m, _)| m.name() == name) {
            slot.1 = fixed_range(
                r,
                &field,
                "give a range in the field's arbitrary units such as [0.0, 1.0]",
            )?;
            continue;
        }
        if let Some(slot) = mri.iter_mut().find(|(m, _)| m.name() == name) {
            slot.1 = fixed_range(r, &field, "give a range such as [0.5, 2.0]")?;
            continue;
        }
        if MaskField::ALL.iter().any(|m| m.name() == name) {
            return Err(Error::invalid(&field, "a mask's range is fixed")
                .found(fmt_vec(r))
                .fix("remove it: `tissue` spans 0 to the last tissue index, `vessels` 0 to 1"));
        }
        let s = species_ix_fix(name, &field, species, |names| {
            format!("use species names from {names}")
        })?;
        let Some(slot) = fields.iter().position(|&f| f == s) else {
            return Err(Error::invalid(
                &field,
                format!("species `{name}` is not in output.fields"),
            )
            .fix(format!(
                "add \"{name}\" to output.fields or remove its range"
            )));
        };
        const FIX: &str = "give [lo, hi] in the species' unit with lo < hi, e.g. [0.0, 0.06]";
        if r.len() != 2 {
            return Err(Error::invalid(&field, "must be [lo, hi]")
                .found(fmt_vec(r))
                .fix(FIX));
        }
        let (lo, hi) = (finite(r[0], &field)?, finite(r[1], &field)?);
        if lo >= hi {
            return Err(Error::invalid(&field, "needs lo < hi")
                .found(fmt_vec(r))
                .fix(FIX));
        }
        ranges[slot] = ValueRange::Fixed { lo, hi };
    }

    let timeseries = match &o.timeseries {
        None => (0..species.len())
            .map(TimeseriesField::Species)
            .chain(proton.map(TimeseriesField::Ph))
            .collect(),
        Some(names) => {
            let mut out = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let field = format!("output.timeseries[{i}]");
                let f = match (name.as_str(), proton) {
                    ("pH", Some(p)) => TimeseriesField::Ph(p),
                    _ => match species.iter().position(|n| n == name) {
                        Some(s) => TimeseriesField::Species(s),
                        None => {
                            return Err(Error::invalid(
                                &field,
                                format!(
                                    "unknown field{}",
                                    did_you_mean(name, species.iter().copied().chain(["pH"]))
                                ),
                            )
                            .found(format!("{name:?}"))
                            .fix(format!(
                                "use species names from {}{}",
                                list(species.iter().copied()),
                                if proton.is_some() { " or \"pH\"" } else { "" }
                            )))
                        }
                    },
                };
                if !out.contains(&f) {
                    out.push(f);
                }
            }
            out
        }
    };
    let summary = duration::seconds(
        "output",
        "summary_interval",
        o.summary_interval_s,
        o.summary_interval.as_ref(),
    )?;
    if let Some(v) = &summary {
        if !(v.value.is_finite() && v.value > 0.0) {
            return Err(
                Error::invalid(&v.field, "must be a positive time")
                    .found(v.value)
                    .fix("write e.g. summary_interval_s = 60.0 or summary_interval = \"5 min\", or leave it out (default: min(output interval, max(60 s, time.end_s / 1440 rounded up to a minute)))"),
            );
        }
    }
    let summary_s = summary
        .as_ref()
        .map_or_else(|| default_summary_interval_s(time), |v| v.value);
    if grid.n_voxels() > 1 {
        // The stops `output::callbacks::attach` adds: one summary every summary interval.
        let n_outputs = output_count(time.end_s, time.output_interval_s);
        let n_summaries = (time.end_s / summary_s).ceil();
        if n_outputs + n_summaries > MAX_STOPS as f64 {
            return Err(Error::invalid(
                summary.as_ref().map_or("time.end_s", |v| v.field.as_str()),
                format!(
                    "gives {} summary stops (every {} s) and {} output times, more than the limit of {MAX_STOPS} stops",
                    short(n_summaries),
                    short(summary_s),
                    short(n_outputs)
                ),
            )
            .found(short(summary.as_ref().map_or(time.end_s, |v| v.value)))
            .fix("lengthen output.summary_interval_s or shorten time.end_s"));
        }
    }
    let mut probes: Vec<Probe> = Vec::new();
    for (i, p) in o.probe.iter().flatten().enumerate() {
        let at = |key: &str| format!("output.probe[{i}].{key}");
        let reserved = p.name == "whole" || tissues.contains(&p.name.as_str());
        if p.name.is_empty()
            || !p
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            || reserved
            || probes.iter().any(|q| q.name == p.name)
        {
            return Err(Error::invalid(
                at("name"),
                "must be a new name of letters, digits, `_` or `-` (not `whole`, a tissue or another probe)",
            )
            .found(format!("{:?}", p.name))
            .fix("give each probe its own name, e.g. name = \"centre\""));
        }
        let extent = grid.extent_um();
        let point = (p.point_um.len() == 3)
            .then(|| DVec3::new(p.point_um[0], p.point_um[1], p.point_um[2]));
        let Some(voxel) = point.and_then(|q| grid.voxel_containing(q)) else {
            return Err(Error::invalid(
                at("point_um"),
                "must be a point [x, y, z] inside the grid",
            )
            .found(fmt_vec(&p.point_um))
            .fix(format!(
                "give µm coordinates with 0 ≤ x < {}, 0 ≤ y < {}, 0 ≤ z < {}",
                extent.x, extent.y, extent.z
            )));
        };
        probes.push(Probe {
            name: p.name.clone(),
            point_um: [p.point_um[0], p.point_um[1], p.point_um[2]],
            voxel,
        });
    }
    let tiff = o.tiff.unwrap_or(false);
    // A classic TIFF addresses 4 GiB; leave 1 MiB for the description and the IFDs.
    let tiff_bytes = 4 * grid.n_voxels() as u64;
    if tiff && tiff_bytes > u32::MAX as u64 - (1 << 20) {
        return Err(Error::invalid(
            "output.tiff",
            format!(
                "a {}×{}×{} f32 stack ({tiff_bytes} bytes) does not fit the 4 GiB of a classic TIFF",
                grid.nx, grid.ny, grid.nz
            ),
        )
        .found("true")
        .fix("set output.tiff = false (the .npy and .vti have no such limit) or use a smaller grid.shape"));
    }
    let mut spec = OutputSpec {
        fields,
        colormap,
        colour_scale,
        outlines,
        theme,
        slice_axis,
        slices,
        ranges,
        png16: Png16::All,
        npy: o.npy.unwrap_or(true),
        zarr: o.zarr.unwrap_or(true),
        vti: o.vti.unwrap_or(true),
        tiff,
        ph,
        mri,
        fluorescence,
        masks,
        timeseries,
        summary_interval_s: Some(summary_s),
        exact_summaries: o.exact_summaries.unwrap_or(false),
        probes,
        figure: None,
    };
    // Written field names in write order: species, then the derived fields.
    let written: Vec<&str> = (spec.fields.iter().map(|&s| species[s]))
        .chain(spec.derived().into_iter().map(|d| d.0))
        .collect();
    // time_of_death is written like a field when there is a viab species.
    let mut stackable = written.clone();
    if species.contains(&"viab") {
        stackable.push("time_of_death");
    }
    spec.png16 = png16(o.png16.as_ref(), &stackable)?;
    if let Some(f) = &o.figure {
        spec.figure = Some(figure::validate(f, &written, time, axis_len, slice_axis)?);
    }
    Ok(spec)
}

/// `output.png16`: `true` (the default), `false`, or a list of names from the written
/// fields `written` (and `time_of_death`).
fn png16(value: Option<&toml::Value>, written: &[&str]) -> Result<Png16, Error> {
    const FIX: &str = "write png16 = true (a 16-bit stack of every written field), false, or a list of written fields such as [\"O2\", \"OH\"]";
    let list = match value {
        None | Some(toml::Value::Boolean(true)) => return Ok(Png16::All),
        Some(toml::Value::Boolean(false)) => return Ok(Png16::None),
        Some(toml::Value::Array(a)) => a,
        Some(other) => {
            return Err(
                Error::invalid("output.png16", "must be true, false or a list of fields")
                    .found(other.to_string())
                    .fix(FIX),
            )
        }
    };
    let mut names: Vec<String> = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let field = format!("output.png16[{i}]");
        let Some(name) = v.as_str() else {
            return Err(Error::invalid(&field, "must be a field name")
                .found(v.to_string())
                .fix(FIX));
        };
        if !written.contains(&name) {
            return Err(Error::invalid(&field, "is not a written field")
                .found(format!("{name:?}"))
                .fix(format!(
                    "use names from output.fields ({}) or add {name:?} to output.fields",
                    written.join(", ")
                )));
        }
        if names.iter().any(|n| n == name) {
            return Err(Error::invalid(&field, "field listed twice")
                .found(format!("{name:?}"))
                .fix("list each field once"));
        }
        names.push(name.to_string());
    }
    Ok(if names.is_empty() {
        Png16::None
    } else {
        Png16::Fields(names)
    })
}

/// `[lo, hi]` with lo < hi as a fixed colour range of `field`, else an error with `fix`.
fn fixed_range(r: &[f64], field: &str, fix: &str) -> Result<ValueRange, Error> {
    if r.len() != 2 || r[0].partial_cmp(&r[1]) != Some(std::cmp::Ordering::Less) {
        return Err(Error::invalid(field, "must be [lo, hi] with lo < hi")
            .found(fmt_vec(r))
            .fix(fix));
    }
    Ok(ValueRange::Fixed { lo: r[0], hi: r[1] })
}

fn slices(v: &toml::Value, axis_len: usize, axis: Axis) -> Result<SliceSelection, Error> {
    let fix = format!(
        "write \"all\" or an array of slice indices 0..{} along {}, e.g. [{}]",
        axis_len - 1,
        axis.letter(),
        axis_len / 2
    );
    match v {
        toml::Value::String(s) if s == "all" => Ok(SliceSelection::All),
        toml::Value::Array(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let field = format!("output.slices[{i}]");
                match item {
                    toml::Value::Integer(n) if *n >= 0 && (*n as u64) < axis_len as u64 => {
                        out.push(*n as usize)
                    }
                    toml::Value::Integer(n) => {
                        return Err(Error::invalid(
                            field,
                            format!("slice index must be in 0..{} (the grid has {axis_len} slices along {})", axis_len - 1, axis.letter()),
                        )
                        .found(n)
                        .fix(fix))
                    }
                    other => {
                        return Err(Error::new(ErrorKind::WrongType, field, "must be an integer slice index")
                            .found(format!("{} {other}", other.type_str()))
                            .fix(fix))
                    }
                }
            }
            Ok(SliceSelection::Indices(out))
        }
        other => Err(Error::new(
            ErrorKind::WrongType,
            "output.slices",
            "must be \"all\" or an array of indices",
        )
        .found(format!("{} {other}", other.type_str()))
        .fix(fix)),
    }
}
