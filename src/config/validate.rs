//! Raw TOML structs → validated [`Scenario`]: defaults, name resolution, physical sense and
//! consistency. Every error names the dotted field and says how to fix it.

use std::path::Path;

use glam::DVec3;

use super::error::{did_you_mean, list, Error, ErrorKind};
use super::raw::{RawBoundary, RawParameter, RawScenario, RawSpecies, RegionKeys};
use super::scenario::*;

/// Grids above this many voxels are refused (indices are u32 on the GPU, buffers huge).
pub const MAX_VOXELS: u64 = 1 << 31;

const SHAPES: [&str; 5] = ["sphere", "box", "cylinder", "capsule", "gaussian"];
const COLORMAPS: [&str; 6] = [
    "viridis",
    "magma",
    "inferno",
    "plasma",
    "cividis",
    "grayscale",
];

/// `base_dir`: the scenario file's folder; files named in the scenario (masks, vessel
/// segments) are relative to it.
pub fn validate(raw: RawScenario, source: &str, base_dir: &Path) -> Result<Scenario, Error> {
    check_name(&raw.name)?;
    let grid = grid(&raw)?;
    let time = time(&raw, source)?;
    let tissues = tissues(&raw, &grid, base_dir)?;
    let tissue_names: Vec<&str> = tissues.iter().map(|t| t.name.as_str()).collect();

    if raw.species.0.is_empty() {
        return Err(
            Error::invalid("species", "at least one species is required")
                .fix("add a table such as [species.O2] with `diffusion_um2_per_s = 2000.0`"),
        );
    }
    if raw.species.0.len() > MAX_SPECIES {
        return Err(Error::invalid(
            "species",
            format!("at most {MAX_SPECIES} species are supported"),
        )
        .found(raw.species.0.len())
        .fix("remove species or split the scenario"));
    }
    let mut species = raw
        .species
        .0
        .iter()
        .map(|(name, s)| species(name, s, &tissue_names, &grid))
        .collect::<Result<Vec<_>, _>>()?;
    let raw_species_names: Vec<String> = species.iter().map(|s| s.name.clone()).collect();
    let raw_species_names: Vec<&str> = raw_species_names.iter().map(String::as_str).collect();

    let mut vessels = vessels(&raw, &raw_species_names, &grid)?;
    let mut parameters = parameters(&raw, &tissue_names, &raw_species_names)?;
    let mut reactions = reactions(&raw, &tissue_names, &raw_species_names)?;
    let vessel_network = match &raw.vessel_network {
        None => None,
        Some(net) => Some(super::vessel_network::build(
            net,
            &grid,
            base_dir,
            &tissue_names,
            &mut species,
            &mut vessels,
            &mut parameters,
            &mut reactions,
        )?),
    };
    let species_names: Vec<&str> = species.iter().map(|s| s.name.as_str()).collect();
    let buffer = buffer(&raw, &species)?;
    let chemistry = chemistry(&raw)?;
    let doses = doses(&raw, &species_names, &grid, &time)?;
    let spin_up = spin_up(&raw, &time)?;
    let mri = mri(&raw, &species_names, &tissue_names)?;
    let output = output(&raw, &species_names, &grid, &time, mri.is_some())?;

    let mut scenario = Scenario {
        name: raw.name.clone(),
        description: raw.description.clone().unwrap_or_default(),
        source: source.to_string(),
        grid,
        time,
        tissues,
        species,
        vessels,
        vessel_network,
        parameters,
        reactions,
        buffer,
        chemistry,
        network: None,
        doses,
        spin_up,
        mri,
        output,
    };
    if !scenario.reactions.is_empty() {
        // Rates, units, names in expressions, quasi-steady linearity: the chemistry compiler
        // checks them; its error names the TOML field, so the loader can locate it. The
        // compiled network travels on in the scenario: it is compiled once.
        let species: Vec<_> = scenario.species.iter().map(|s| s.chem_spec()).collect();
        let network =
            crate::chem::Network::compile(scenario.network_input(&species)).map_err(|e| {
                let mut err = Error::invalid(e.field, e.problem).fix(e.fix);
                err.found = e.found;
                err
            })?;
        scenario.network = Some(std::sync::Arc::new(network));
    }
    Ok(scenario)
}

// ---------------------------------------------------------------------------------------
// Small checks

fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            "must be letters, digits, `_` or `-` only (it names the output folder)",
        )
        .found(format!("{name:?}"))
        .fix("use a short identifier such as \"vascularised_tumour\""))
    }
}

/// `[A-Za-z][A-Za-z0-9_]*`, plus `-` when `dash` (tissue names).
pub(super) fn is_identifier(name: &str, dash: bool) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (dash && c == '-'))
}

pub(super) fn finite(v: f64, field: &str) -> Result<f64, Error> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Error::invalid(field, "must be a finite number")
            .found(v)
            .fix("write an ordinary number (not nan or inf)"))
    }
}

pub(super) fn positive(v: f64, field: &str, fix: &str) -> Result<f64, Error> {
    if finite(v, field)? > 0.0 {
        Ok(v)
    } else {
        Err(Error::invalid(field, "must be > 0").found(v).fix(fix))
    }
}

pub(super) fn non_negative(v: f64, field: &str, fix: &str) -> Result<f64, Error> {
    if finite(v, field)? >= 0.0 {
        Ok(v)
    } else {
        Err(Error::invalid(field, "must be ≥ 0").found(v).fix(fix))
    }
}

fn fmt_vec(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("[{}]", items.join(", "))
}

fn vec3(v: &[f64], field: &str) -> Result<DVec3, Error> {
    if v.len() != 3 {
        return Err(
            Error::invalid(field, "must be a point [x, y, z] of 3 numbers in µm")
                .found(fmt_vec(v))
                .fix("give exactly three coordinates, e.g. [320.0, 320.0, 320.0]"),
        );
    }
    for &x in v {
        finite(x, field)?;
    }
    Ok(DVec3::new(v[0], v[1], v[2]))
}

pub(super) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

// ---------------------------------------------------------------------------------------
// Sections

fn grid(raw: &RawScenario) -> Result<Grid, Error> {
    let s = &raw.grid.shape;
    let shown = format!("{s:?}");
    if s.len() != 3 {
        return Err(
            Error::invalid("grid.shape", "must be [nx, ny, nz] (three voxel counts)")
                .found(shown)
                .fix("give three integers, e.g. shape = [64, 64, 64]"),
        );
    }
    // [1, 1, 1] is one well-mixed voxel (chemistry without transport).
    let well_mixed = s.iter().all(|&n| n == 1);
    if !well_mixed && s.iter().any(|&n| n < 3) {
        return Err(Error::invalid(
            "grid.shape",
            "every voxel count must be ≥ 3 (or all 1: one well-mixed voxel)",
        )
        .found(shown)
        .fix("use at least 3 voxels along each axis, e.g. shape = [64, 64, 64], or [1, 1, 1] for a well-mixed voxel"));
    }
    let n: u128 = s.iter().map(|&n| n as u128).product();
    if n > MAX_VOXELS as u128 {
        return Err(Error::invalid(
            "grid.shape",
            format!("too many voxels ({n}; at most {MAX_VOXELS})"),
        )
        .found(shown)
        .fix("use a smaller grid (fewer voxels per axis, larger grid.voxel_um)"));
    }
    let voxel_um = positive(
        raw.grid.voxel_um,
        "grid.voxel_um",
        "set a positive voxel edge length in µm, e.g. 10",
    )?;
    Ok(Grid {
        nx: s[0] as usize,
        ny: s[1] as usize,
        nz: s[2] as usize,
        voxel_um,
    })
}

fn time(raw: &RawScenario, source: &str) -> Result<TimeSpec, Error> {
    let t = &raw.time;
    let dt_s = positive(
        t.dt_s,
        "time.dt_s",
        "set a positive time step in s, e.g. 1.0",
    )?;
    let end_s = positive(
        t.end_s,
        "time.end_s",
        "set a positive end time in s, e.g. 600",
    )?;
    if end_s < dt_s {
        return Err(
            Error::invalid("time.end_s", format!("must be ≥ time.dt_s = {dt_s} s"))
                .found(end_s)
                .fix("make end_s at least one time step, or reduce dt_s"),
        );
    }
    let mut output_interval_s = match t.output_interval_s {
        Some(v) => positive(
            v,
            "time.output_interval_s",
            "set a positive interval in s, or remove the key to write only at the start and end",
        )?,
        None => end_s,
    };
    let steps = (output_interval_s / dt_s).round().max(1.0);
    let rounded = steps * dt_s;
    if (rounded - output_interval_s).abs() > 1e-9 * output_interval_s {
        log::warn!(
            "{source}: time.output_interval_s: {output_interval_s} s is not a whole multiple of \
             time.dt_s = {dt_s} s; rounded to {rounded} s"
        );
    }
    output_interval_s = rounded;
    let theta = t.theta.unwrap_or(1.0);
    if !(0.5..=1.0).contains(&theta) {
        return Err(
            Error::invalid("time.theta", "must be in [0.5, 1] (Douglas ADI weight)".to_string())
                .found(theta)
                .fix("use 1 (backward Euler, robust) or 0.5 (Crank–Nicolson, second order in time); below 0.5 the scheme is unstable"),
        );
    }
    let max_diffusion_r = t
        .max_diffusion_r
        .map(|r| {
            positive(
                r,
                "time.max_diffusion_r",
                "set the largest r = D·dt/dx² of one diffusion sub-step, e.g. 2, or remove the key",
            )
        })
        .transpose()?;
    Ok(TimeSpec {
        dt_s,
        end_s,
        output_interval_s,
        theta,
        max_diffusion_r,
    })
}

fn tissues(raw: &RawScenario, grid: &Grid, base_dir: &Path) -> Result<Vec<Tissue>, Error> {
    let mut out = vec![Tissue {
        name: "normal".to_string(),
        region: None,
        mask: None,
    }];
    let Some(map) = &raw.tissues else {
        return Ok(out);
    };
    if map.0.len() + 1 > MAX_TISSUES {
        return Err(Error::invalid(
            "tissues",
            format!(
                "at most {} tissues besides `normal` are supported",
                MAX_TISSUES - 1
            ),
        )
        .found(map.0.len())
        .fix("merge or remove tissue types"));
    }
    for (name, t) in &map.0 {
        let path = format!("tissues.{name}");
        if name == "normal" {
            return Err(Error::invalid(&path, "`normal` is reserved for the background (tissue id 0)")
                .fix("rename the tissue, e.g. [tissues.stroma]; every voxel no region claims is already `normal`"));
        }
        if !is_identifier(name, true) {
            return Err(
                Error::invalid(&path, "tissue names must match [A-Za-z][A-Za-z0-9_-]*")
                    .found(format!("{name:?}"))
                    .fix("use a name such as `tumour` or `necrotic_core`"),
            );
        }
        let tissue = match (&t.mask, &t.shape) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    join(&path, "mask"),
                    "a tissue takes either a geometric region (`shape` …) or a `mask` file, not both",
                )
                .fix("remove `mask`, or remove `shape` and its keys"))
            }
            (Some(file), None) => {
                if t.has_region_keys() {
                    return Err(Error::invalid(
                        join(&path, "mask"),
                        "a tissue with a `mask` takes no region keys (centre_um, radius_um, min_um, …)",
                    )
                    .fix("remove the region keys, or remove `mask` and add `shape`"));
                }
                let field = join(&path, "mask");
                let mask = super::mask::read(&base_dir.join(file), grid)
                    .map_err(|(problem, fix)| Error::invalid(&field, problem).found(format!("{file:?}")).fix(fix))?;
                Tissue {
                    name: name.clone(),
                    region: None,
                    mask: Some(mask),
                }
            }
            (None, Some(shape)) => Tissue {
                name: name.clone(),
                region: Some(region(t.keys(shape), &path, grid)?),
                mask: None,
            },
            (None, None) => {
                return Err(Error::new(
                    ErrorKind::MissingKey,
                    join(&path, "shape"),
                    "a tissue needs a region (`shape` and its keys) or a `mask` file",
                )
                .fix("add e.g. shape = \"sphere\", centre_um = [..], radius_um = 100.0, or mask = \"tumour.npy\""))
            }
        };
        out.push(tissue);
    }
    Ok(out)
}

fn species(name: &str, s: &RawSpecies, tissues: &[&str], grid: &Grid) -> Result<Species, Error> {
    let path = format!("species.{name}");
    if !is_identifier(name, false) {
        return Err(
            Error::invalid(&path, "species names must match [A-Za-z][A-Za-z0-9_]*")
                .found(format!("{name:?}"))
                .fix("use a name such as `O2`, `glucose` or `H2O2`"),
        );
    }
    let diffusion_um2_per_s = non_negative(
        s.diffusion_um2_per_s,
        &format!("{path}.diffusion_um2_per_s"),
        "set a non-negative diffusion coefficient in µm²/s (0 = does not diffuse)",
    )?;
    let decay_per_s = non_negative(
        s.decay_per_s.unwrap_or(0.0),
        &format!("{path}.decay_per_s"),
        "set a non-negative first-order decay rate in 1/s (0 = stable)",
    )?;
    let mut decay_per_s_by_tissue = vec![decay_per_s; tissues.len()];
    if let Some(uptake) = &s.uptake_per_s {
        for (tissue, rate) in &uptake.0 {
            let field = format!("{path}.uptake_per_s.{tissue}");
            let t = tissue_ix(tissue, &field, tissues)?;
            decay_per_s_by_tissue[t] += non_negative(
                *rate,
                &field,
                "set a non-negative uptake rate in 1/s (0 = no uptake in this tissue)",
            )?;
        }
    }

    let mut initial = InitialCondition {
        uniform_mm: 0.0,
        tissue_mm: vec![None; tissues.len()],
        regions: Vec::new(),
    };
    if let Some(init) = &s.initial {
        initial.uniform_mm = non_negative(
            init.uniform_mm.unwrap_or(0.0),
            &format!("{path}.initial.uniform_mm"),
            "set a non-negative concentration in mM",
        )?;
        for (tissue, value) in init.tissue_mm.iter().flat_map(|m| &m.0) {
            let field = format!("{path}.initial.tissue_mm.{tissue}");
            let t = tissue_ix(tissue, &field, tissues)?;
            initial.tissue_mm[t] = Some(non_negative(
                *value,
                &field,
                "set a non-negative concentration in mM",
            )?);
        }
        for (i, r) in init.regions.iter().flatten().enumerate() {
            let rpath = format!("{path}.initial.regions[{i}]");
            let region = region(r.keys(), &rpath, grid)?;
            let value_mm = non_negative(
                r.value_mm,
                &format!("{rpath}.value_mm"),
                "set a non-negative concentration in mM",
            )?;
            initial.regions.push(InitialRegion { region, value_mm });
        }
    }

    let boundary = match &s.boundary {
        Some(b) => boundary(b, &format!("{path}.boundary"))?,
        None => [BoundaryCondition::ZeroFlux; 6],
    };

    let quasi_steady = s.quasi_steady.unwrap_or(false);
    if quasi_steady && diffusion_um2_per_s != 0.0 {
        return Err(Error::invalid(
            format!("{path}.diffusion_um2_per_s"),
            "must be 0 for a quasi-steady species (quasi_steady = true: the species is set to production / loss in each voxel, it cannot diffuse)",
        )
        .found(diffusion_um2_per_s)
        .fix("set diffusion_um2_per_s = 0.0, or remove `quasi_steady = true` to integrate the species like any other"));
    }

    let atol_mm = match s.atol_mm {
        Some(a) => Some(positive(
            a,
            &format!("{path}.atol_mm"),
            "set a positive absolute tolerance in mM, about 1e-4 of the smallest value that matters (e.g. 1e-10 for H+ at pH 7)",
        )?),
        None => None,
    };

    Ok(Species {
        name: name.to_string(),
        unit: s.unit.clone().unwrap_or_else(|| "mM".to_string()),
        diffusion_um2_per_s,
        decay_per_s_by_tissue,
        initial,
        boundary,
        quasi_steady,
        atol_mm,
    })
}

fn boundary(b: &RawBoundary, path: &str) -> Result<[BoundaryCondition; 6], Error> {
    let all = match &b.all {
        Some(v) => boundary_value(v, &join(path, "all"))?,
        None => BoundaryCondition::ZeroFlux,
    };
    let mut out = [all; 6];
    for (face, value) in Face::ALL.iter().zip(b.faces()) {
        if let Some(v) = value {
            out[*face as usize] = boundary_value(v, &join(path, face.key()))?;
        }
    }
    Ok(out)
}

fn boundary_value(v: &toml::Value, field: &str) -> Result<BoundaryCondition, Error> {
    const FIX: &str =
        "write \"zero_flux\" (no flux through the face) or a number ≥ 0 (held concentration in mM)";
    match v {
        toml::Value::String(s) if s == "zero_flux" => Ok(BoundaryCondition::ZeroFlux),
        toml::Value::String(s) => Err(Error::invalid(
            field,
            format!(
                "unknown boundary condition{}",
                did_you_mean(s, ["zero_flux"])
            ),
        )
        .found(format!("{s:?}"))
        .fix(FIX)),
        toml::Value::Integer(i) => Ok(BoundaryCondition::Dirichlet {
            value_mm: non_negative(*i as f64, field, FIX)?,
        }),
        toml::Value::Float(x) => Ok(BoundaryCondition::Dirichlet {
            value_mm: non_negative(*x, field, FIX)?,
        }),
        other => Err(Error::new(
            ErrorKind::WrongType,
            field,
            "must be \"zero_flux\" or a number",
        )
        .found(format!("{} {other}", other.type_str()))
        .fix(FIX)),
    }
}

/// Index of `name` in `names`, or an error at `field` naming the `kind` ("tissue",
/// "species"), with a "did you mean" and the list of `plural` to choose from.
fn name_ix(
    (kind, plural): (&str, &str),
    name: &str,
    field: &str,
    names: &[&str],
    extra_fix: &str,
) -> Result<usize, Error> {
    names.iter().position(|n| *n == name).ok_or_else(|| {
        Error::invalid(
            field,
            format!(
                "unknown {kind} `{name}`{}",
                did_you_mean(name, names.iter().copied())
            ),
        )
        .fix(format!(
            "use one of the {plural} {}{extra_fix}",
            list(names.iter().copied())
        ))
    })
}

/// Tissue id of `name`, or an error at `field` listing the tissues.
fn tissue_ix(name: &str, field: &str, tissues: &[&str]) -> Result<usize, Error> {
    let fix = " (define new ones under [tissues.<name>])";
    name_ix(("tissue", "tissues"), name, field, tissues, fix)
}

/// Species index of `name`, or an error at `field` listing the species.
fn species_ix(name: &str, field: &str, species: &[&str]) -> Result<usize, Error> {
    name_ix(("species", "species"), name, field, species, "")
}

fn doses(
    raw: &RawScenario,
    species: &[&str],
    grid: &Grid,
    time: &TimeSpec,
) -> Result<Vec<Dose>, Error> {
    let mut out = Vec::new();
    for (i, d) in raw.dosing.iter().flatten().enumerate() {
        let path = format!("dosing[{i}]");
        let species = species_ix(&d.species, &format!("{path}.species"), species)?;
        match d.kind.as_deref().unwrap_or("bolus") {
            "bolus" => {}
            other => {
                return Err(
                    Error::invalid(format!("{path}.kind"), "unknown dosing kind")
                        .found(format!("{other:?}"))
                        .fix("use kind = \"bolus\" (an amount added in a region at time_s)"),
                )
            }
        }
        let time_s = non_negative(
            d.time_s.unwrap_or(0.0),
            &format!("{path}.time_s"),
            "doses are given at t ≥ 0 (after any spin-up)",
        )?;
        if time_s > time.end_s {
            return Err(Error::invalid(
                format!("{path}.time_s"),
                format!("is after time.end_s = {} s", time.end_s),
            )
            .found(time_s)
            .fix("dose within the run, or lengthen time.end_s"));
        }
        let amount_mm = non_negative(
            d.amount_mm,
            &format!("{path}.amount_mm"),
            "set the added concentration in mM (peak of a Gaussian)",
        )?;
        out.push(Dose {
            species,
            time_s,
            region: region(d.keys(), &path, grid)?,
            amount_mm,
            source: d.source.clone().unwrap_or_default(),
        });
    }
    out.sort_by(|a, b| a.time_s.total_cmp(&b.time_s));
    Ok(out)
}

fn spin_up(raw: &RawScenario, time: &TimeSpec) -> Result<Option<SpinUp>, Error> {
    let Some(duration_s) = raw.time.spin_up_s else {
        if raw.time.spin_up_dt_s.is_some() {
            return Err(
                Error::invalid("time.spin_up_dt_s", "is set without time.spin_up_s").fix(
                    "add time.spin_up_s (the baseline run before t = 0, s) or remove spin_up_dt_s",
                ),
            );
        }
        return Ok(None);
    };
    let duration_s = non_negative(
        duration_s,
        "time.spin_up_s",
        "set the baseline run before t = 0 in s, or 0 for none",
    )?;
    let dt_s = positive(
        raw.time.spin_up_dt_s.unwrap_or(time.dt_s),
        "time.spin_up_dt_s",
        "set a positive spin-up step in s",
    )?;
    Ok((duration_s > 0.0).then_some(SpinUp { duration_s, dt_s }))
}

fn vessels(raw: &RawScenario, species: &[&str], grid: &Grid) -> Result<Vec<Vessel>, Error> {
    let mut out = Vec::new();
    for (i, v) in raw.vessels.iter().flatten().enumerate() {
        let path = format!("vessels[{i}]");
        let region = region(v.keys(), &path, grid)?;
        if v.hold_mm.0.is_empty() {
            return Err(Error::invalid(
                format!("{path}.hold_mm"),
                "a vessel must hold at least one species",
            )
            .fix("list the held species, e.g. hold_mm = { O2 = 0.054 }, or remove the vessel"));
        }
        let mut hold_mm = Vec::new();
        for (name, value) in &v.hold_mm.0 {
            let field = format!("{path}.hold_mm.{name}");
            let Some(s) = species.iter().position(|n| n == name) else {
                return Err(Error::invalid(
                    &field,
                    format!(
                        "unknown species `{name}`{}",
                        did_you_mean(name, species.iter().copied())
                    ),
                )
                .fix(format!(
                    "use one of the species {}",
                    list(species.iter().copied())
                )));
            };
            let value = non_negative(
                *value,
                &field,
                "set a non-negative held concentration in mM",
            )?;
            hold_mm.push((s, value));
        }
        out.push(Vessel {
            region,
            hold_mm,
            from_network: false,
        });
    }
    Ok(out)
}

fn mri(raw: &RawScenario, species: &[&str], tissues: &[&str]) -> Result<Option<Mri>, Error> {
    let Some(m) = &raw.mri else {
        return Ok(None);
    };
    let relaxivities = |map: &Option<super::raw::NamedMap<f64>>, key: &str| {
        map.iter()
            .flat_map(|m| m.0.iter())
            .map(|(name, r)| {
                let field = format!("mri.{key}.{name}");
                let s = species_ix(name, &field, species)?;
                let r = non_negative(
                    *r,
                    &field,
                    "give the relaxivity in 1/(mM·s), e.g. 6.5 for Mn2+ r1 at 3 T",
                )?;
                Ok((s, r))
            })
            .collect::<Result<Vec<_>, Error>>()
    };
    let by_tissue = |v: &toml::Value, key: &str, what: &str| -> Result<Vec<f64>, Error> {
        let field = format!("mri.{key}");
        let raw = RawParameter {
            value: v.clone(),
            unit: String::new(),
            source: None,
        };
        let values = parameter_value(&raw, &field, tissues)?;
        for &x in &values {
            positive(x, &field, &format!("give {what} > 0 for every tissue"))?;
        }
        Ok(values)
    };
    let sequence = |s: &Option<super::raw::RawSequence>, key: &str, default: (f64, f64)| match s {
        None => Ok(default),
        Some(s) => {
            let tr = positive(
                s.tr_s,
                &format!("mri.{key}.TR_s"),
                "give the repetition time in s",
            )?;
            let te = positive(
                s.te_s,
                &format!("mri.{key}.TE_s"),
                "give the echo time in s",
            )?;
            if te >= tr {
                return Err(
                    Error::invalid(format!("mri.{key}.TE_s"), "must be shorter than TR_s")
                        .found(te)
                        .fix("a spin echo needs TE < TR, e.g. TR_s = 0.5, TE_s = 0.01"),
                );
            }
            Ok((tr, te))
        }
    };
    Ok(Some(Mri {
        field_t: m.field_t.unwrap_or(3.0),
        r1: relaxivities(&m.r1_per_mm_s, "r1_per_mM_s")?,
        r2: relaxivities(&m.r2_per_mm_s, "r2_per_mM_s")?,
        t1_0_s_by_tissue: by_tissue(&m.t1_0_s, "T1_0_s", "T1")?,
        t2_0_s_by_tissue: by_tissue(&m.t2_0_s, "T2_0_s", "T2")?,
        rho_by_tissue: match &m.rho {
            Some(v) => by_tissue(v, "rho", "the proton density")?,
            None => vec![1.0; tissues.len()],
        },
        // docs/scientific-model.md §6 suggested sequences.
        t1w_tr_te_s: sequence(&m.t1w, "t1w", (0.5, 0.01))?,
        t2w_tr_te_s: sequence(&m.t2w, "t2w", (3.0, 0.08))?,
    }))
}

fn output(
    raw: &RawScenario,
    species: &[&str],
    grid: &Grid,
    time: &TimeSpec,
    has_mri: bool,
) -> Result<OutputSpec, Error> {
    let empty;
    let o = match &raw.output {
        Some(o) => o,
        None => {
            empty = super::raw::RawOutput {
                fields: None,
                colormap: None,
                slice_axis: None,
                slices: None,
                ranges_mm: None,
                png16: None,
                npy: None,
                vti: None,
                tiff: None,
                timeseries: None,
                summary_interval_s: None,
                probe: None,
                figure: None,
            };
            &empty
        }
    };

    // Free H+ behind a "pH" field: the buffer's proton, else a species named H.
    let proton_name = raw
        .buffer
        .as_ref()
        .map(|b| b.proton.as_str())
        .unwrap_or("H");
    let proton = species.iter().position(|n| *n == proton_name);
    let mut ph = None;
    let mut mri = Vec::new();
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
                if let Some(m) = MriField::ALL.iter().find(|m| m.name() == name) {
                    if !has_mri {
                        return Err(Error::invalid(&field, format!("{name} needs an [mri] table"))
                            .found(format!("{name:?}"))
                            .fix("add [mri] with relaxivities and baseline T1_0_s/T2_0_s (see configs/therapies/mno2_gsh_depletion.toml), or remove the field"));
                    }
                    mri.push((*m, ValueRange::Auto));
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
            if r.len() != 2 || r[0].partial_cmp(&r[1]) != Some(std::cmp::Ordering::Less) {
                return Err(Error::invalid(&field, "must be [lo, hi] with lo < hi")
                    .found(fmt_vec(r))
                    .fix("give a pH range such as [6.4, 7.5]"));
            }
            p.range = ValueRange::Fixed { lo: r[0], hi: r[1] };
            continue;
        }
        if let Some(slot) = mri.iter_mut().find(|(m, _)| m.name() == name) {
            if r.len() != 2 || r[0].partial_cmp(&r[1]) != Some(std::cmp::Ordering::Less) {
                return Err(Error::invalid(&field, "must be [lo, hi] with lo < hi")
                    .found(fmt_vec(r))
                    .fix("give a range such as [0.5, 2.0]"));
            }
            slot.1 = ValueRange::Fixed { lo: r[0], hi: r[1] };
            continue;
        }
        let Some(s) = species.iter().position(|n| n == name) else {
            return Err(Error::invalid(
                &field,
                format!(
                    "unknown species `{name}`{}",
                    did_you_mean(name, species.iter().copied())
                ),
            )
            .fix(format!(
                "use species names from {}",
                list(species.iter().copied())
            )));
        };
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
    if let Some(v) = o.summary_interval_s {
        if !(v.is_finite() && v > 0.0) {
            return Err(
                Error::invalid("output.summary_interval_s", "must be a positive time in s")
                    .found(v)
                    .fix("write e.g. summary_interval_s = 60.0, or leave it out (default: the output interval, at most 60 s)"),
            );
        }
    }
    let mut probes: Vec<Probe> = Vec::new();
    for (i, p) in o.probe.iter().flatten().enumerate() {
        let at = |key: &str| format!("output.probe[{i}].{key}");
        let reserved = p.name == "whole"
            || raw
                .tissues
                .iter()
                .flat_map(|m| m.0.iter())
                .any(|(t, _)| *t == p.name);
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
        let inside = p.point_um.len() == 3
            && p.point_um.iter().all(|v| v.is_finite())
            && (0..3).all(|a| p.point_um[a] >= 0.0 && p.point_um[a] < extent[a]);
        if !inside {
            return Err(Error::invalid(
                at("point_um"),
                "must be a point [x, y, z] inside the grid",
            )
            .found(fmt_vec(&p.point_um))
            .fix(format!(
                "give µm coordinates with 0 ≤ x < {}, 0 ≤ y < {}, 0 ≤ z < {}",
                extent.x, extent.y, extent.z
            )));
        }
        let ijk: Vec<usize> = p
            .point_um
            .iter()
            .map(|v| (v / grid.voxel_um) as usize)
            .collect();
        let [nx, ny, nz] = grid.shape();
        let ijk = [ijk[0].min(nx - 1), ijk[1].min(ny - 1), ijk[2].min(nz - 1)];
        probes.push(Probe {
            name: p.name.clone(),
            point_um: [p.point_um[0], p.point_um[1], p.point_um[2]],
            voxel: ijk[0] + nx * (ijk[1] + ny * ijk[2]),
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
    // Written field names in write order: species, pH, MRI.
    let written: Vec<&str> = fields
        .iter()
        .map(|&s| species[s])
        .chain(ph.iter().map(|_| "pH"))
        .chain(mri.iter().map(|(m, _)| m.name()))
        .collect();
    let figure = match &o.figure {
        None => None,
        Some(f) => Some(super::figure::validate(
            f, &written, time, axis_len, slice_axis,
        )?),
    };

    Ok(OutputSpec {
        fields,
        colormap,
        slice_axis,
        slices,
        ranges,
        png16: o.png16.unwrap_or(true),
        npy: o.npy.unwrap_or(true),
        vti: o.vti.unwrap_or(true),
        tiff,
        ph,
        mri,
        timeseries,
        summary_interval_s: o.summary_interval_s,
        probes,
        figure,
    })
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

// ---------------------------------------------------------------------------------------
// Chemistry: parameters, reactions, buffer, integrator settings

/// Names a parameter may not take: the built-in variables and the functions of the rate
/// expressions.
const RESERVED: [&str; 15] = [
    "pH", "viab", "t", "exp", "log", "log10", "sqrt", "abs", "min", "max", "pow", "hill", "mm",
    "step", "clamp",
];
const UNIT_FIX: &str =
    "write a unit such as \"1/s\", \"mM\", \"mM/s\", \"1/(mM*s)\" or \"1\" (dimensionless)";
const EQUATION_FIX: &str = "write the equation like \"Fe2 + H2O2 -> Fe3 + OH\": coefficients before the name (\"2 GSH\"), one side empty for a source (\"-> H2O2\") or a sink (\"OH ->\")";
const WHERE_FIX: &str = "write where = \"everywhere\" (the default), \"viable\" (rate × the viable fraction `viab`), a tissue name, or an array of tissue names such as [\"tumour\"]";

/// A syntax error in a chemistry string (unit, equation) as a config error on `field`.
fn syntax_error(
    field: &str,
    what: &str,
    text: &str,
    e: crate::chem::SyntaxError,
    default_fix: &str,
) -> Error {
    let fix = if e.fix.trim().is_empty() {
        default_fix.to_string()
    } else {
        e.fix
    };
    let mut err = Error::invalid(
        field,
        format!(
            "{} at character {} of the {what} {text:?}",
            e.problem.trim_end_matches('.'),
            e.column
        ),
    )
    .fix(fix);
    err.found = e.found.map(|f| format!("{f:?}"));
    err
}

fn number(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(x) => Some(*x),
        _ => None,
    }
}

fn parameters(
    raw: &RawScenario,
    tissues: &[&str],
    species: &[&str],
) -> Result<Vec<Parameter>, Error> {
    let mut out = Vec::new();
    for (name, p) in raw.parameters.iter().flat_map(|m| m.0.iter()) {
        let path = format!("parameters.{name}");
        parameter_name(name, &path, tissues, species)?;
        let value_by_tissue = parameter_value(p, &format!("{path}.value"), tissues)?;
        crate::chem::parse_unit(&p.unit)
            .map_err(|e| syntax_error(&format!("{path}.unit"), "unit", &p.unit, e, UNIT_FIX))?;
        out.push(Parameter {
            name: name.clone(),
            value_by_tissue,
            unit: p.unit.clone(),
            source: p.source.clone().unwrap_or_default(),
        });
    }
    Ok(out)
}

pub(super) fn parameter_name(
    name: &str,
    path: &str,
    tissues: &[&str],
    species: &[&str],
) -> Result<(), Error> {
    let rename = format!("rename the parameter, e.g. `k_{name}` or `{name}_set`");
    if !is_identifier(name, false) {
        return Err(Error::invalid(
            path,
            "parameter names must match [A-Za-z][A-Za-z0-9_]* (they appear in rate expressions)",
        )
        .found(format!("{name:?}"))
        .fix("use a name such as `k_fenton` or `K_G`"));
    }
    if species.contains(&name) {
        return Err(Error::invalid(
            path,
            format!("`{name}` is already a species; a rate expression could not tell them apart"),
        )
        .fix(rename));
    }
    if tissues.contains(&name) {
        return Err(Error::invalid(
            path,
            format!(
                "`{name}` is already a tissue name; parameter names must differ from tissue names"
            ),
        )
        .fix(rename));
    }
    if RESERVED.contains(&name) {
        return Err(Error::invalid(
            path,
            format!(
                "`{name}` is reserved in rate expressions (built-in variables and functions: {})",
                list(RESERVED)
            ),
        )
        .fix(rename));
    }
    Ok(())
}

/// `value = 0.07` (every tissue) or `value = { tumour = 0.1, default = 0.07 }`.
fn parameter_value(p: &RawParameter, field: &str, tissues: &[&str]) -> Result<Vec<f64>, Error> {
    const FIX: &str = "write value = 0.07, or a per-tissue table value = { normal = 0.07, tumour = 0.1 } (a `default` key covers the tissues not listed)";
    if let Some(x) = number(&p.value) {
        return Ok(vec![finite(x, field)?; tissues.len()]);
    }
    let toml::Value::Table(table) = &p.value else {
        return Err(Error::new(
            ErrorKind::WrongType,
            field,
            "must be a number or a table of per-tissue numbers",
        )
        .found(format!("{} {}", p.value.type_str(), p.value))
        .fix(FIX));
    };
    let mut by_tissue: Vec<Option<f64>> = vec![None; tissues.len()];
    let mut default = None;
    for (key, item) in table {
        let f = format!("{field}.{key}");
        let Some(x) = number(item) else {
            return Err(Error::new(ErrorKind::WrongType, &f, "must be a number")
                .found(format!("{} {item}", item.type_str()))
                .fix(FIX));
        };
        let x = finite(x, &f)?;
        if key == "default" {
            default = Some(x);
            continue;
        }
        let Some(t) = tissues.iter().position(|n| n == key) else {
            let keys = tissues.iter().copied().chain(["default"]);
            return Err(Error::invalid(
                &f,
                format!("unknown tissue `{key}`{}", did_you_mean(key, keys)),
            )
            .fix(format!(
                "use the tissues {} or `default` (define new tissues under [tissues.<name>])",
                list(tissues.iter().copied())
            )));
        };
        by_tissue[t] = Some(x);
    }
    let missing: Vec<&str> = tissues
        .iter()
        .zip(&by_tissue)
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
    if default.is_none() && !missing.is_empty() {
        return Err(Error::invalid(
            field,
            format!("no value for the tissue(s) {}", list(missing.iter().copied())),
        )
        .fix(format!(
            "give every tissue a value, or add `default = <number>` for the tissues not listed ({})",
            list(missing.iter().copied())
        )));
    }
    Ok(by_tissue
        .into_iter()
        .map(|v| v.or(default).unwrap_or_default())
        .collect())
}

fn reactions(
    raw: &RawScenario,
    tissues: &[&str],
    species: &[&str],
) -> Result<Vec<Reaction>, Error> {
    let mut out = Vec::new();
    for (name, r) in raw.reactions.iter().flat_map(|m| m.0.iter()) {
        let path = format!("reactions.{name}");
        if !is_identifier(name, false) {
            return Err(
                Error::invalid(&path, "reaction names must match [A-Za-z][A-Za-z0-9_]*")
                    .found(format!("{name:?}"))
                    .fix("use a name such as `fenton` or `gsh_synthesis`"),
            );
        }
        let field = format!("{path}.equation");
        let eq = crate::chem::parse_equation(&r.equation)
            .map_err(|e| syntax_error(&field, "equation", &r.equation, e, EQUATION_FIX))?;
        if eq.reactants.is_empty() && eq.products.is_empty() {
            return Err(Error::invalid(
                &field,
                "a reaction needs at least one reactant or product",
            )
            .found(format!("{:?}", r.equation))
            .fix("write e.g. \"Fe2 + H2O2 -> Fe3 + OH\"; leave one side empty for a source (\"-> H2O2\") or a sink (\"OH ->\")"));
        }
        let reactants = equation_side(&eq.reactants, &field, species)?;
        let products = equation_side(&eq.products, &field, species)?;
        let (tissue_ids, viable_only) = match &r.where_ {
            None => (None, false),
            Some(v) => reaction_where(v, &format!("{path}.where"), tissues, species)?,
        };
        out.push(Reaction {
            name: name.clone(),
            equation: r.equation.clone(),
            rate: r.rate.clone(),
            reactants,
            products,
            tissues: tissue_ids,
            viable_only,
        });
    }
    Ok(out)
}

/// Names → species indices. A species written twice on one side is merged into one term
/// (`A + A` = `2 A`), so each index appears at most once per side.
fn equation_side(
    terms: &[(String, f64)],
    field: &str,
    species: &[&str],
) -> Result<Vec<(usize, f64)>, Error> {
    let mut out: Vec<(usize, f64)> = Vec::new();
    for (name, coef) in terms {
        let Some(s) = species.iter().position(|n| n == name) else {
            return Err(Error::invalid(
                field,
                format!(
                    "unknown species `{name}`{}",
                    did_you_mean(name, species.iter().copied())
                ),
            )
            .fix(format!(
                "use one of the species {}, or define it under [species.{name}]",
                list(species.iter().copied())
            )));
        };
        if !(coef.is_finite() && *coef > 0.0) {
            return Err(Error::invalid(
                field,
                format!("the coefficient of `{name}` must be a positive number"),
            )
            .found(coef)
            .fix("write a positive coefficient before the name, e.g. \"2 GSH\" or \"0.5 GSSG\""));
        }
        match out.iter_mut().find(|(i, _)| *i == s) {
            Some((_, c)) => *c += coef,
            None => out.push((s, *coef)),
        }
    }
    Ok(out)
}

/// `where`: (tissue ids or None = everywhere, viable_only).
fn reaction_where(
    v: &toml::Value,
    field: &str,
    tissues: &[&str],
    species: &[&str],
) -> Result<(Option<Vec<usize>>, bool), Error> {
    let tissue = |name: &str, field: &str, keywords: bool| -> Result<usize, Error> {
        tissues.iter().position(|n| *n == name).ok_or_else(|| {
            let words: &[&str] = if keywords {
                &["everywhere", "viable"]
            } else {
                &[]
            };
            let candidates = tissues.iter().chain(words).copied();
            Error::invalid(
                field,
                format!("unknown tissue `{name}`{}", did_you_mean(name, candidates)),
            )
            .fix(format!(
                "use {}tissue names from {} (define new ones under [tissues.<name>])",
                if keywords {
                    "\"everywhere\", \"viable\" or "
                } else {
                    ""
                },
                list(tissues.iter().copied())
            ))
        })
    };
    match v {
        toml::Value::String(s) if s == "everywhere" => Ok((None, false)),
        toml::Value::String(s) if s == "viable" => {
            if !species.contains(&"viab") {
                return Err(Error::invalid(
                    field,
                    "where = \"viable\" multiplies the rate by the viable fraction, but there is no species `viab`",
                )
                .fix("add [species.viab] with diffusion_um2_per_s = 0.0, unit = \"1\" and initial = { uniform_mm = 1.0 }, or use where = \"everywhere\" or a tissue name"));
            }
            Ok((None, true))
        }
        toml::Value::String(s) => Ok((Some(vec![tissue(s, field, true)?]), false)),
        toml::Value::Array(items) => {
            if items.is_empty() {
                return Err(Error::invalid(field, "lists no tissue").fix(WHERE_FIX));
            }
            let mut ids = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let f = format!("{field}[{i}]");
                let toml::Value::String(s) = item else {
                    return Err(Error::new(
                        ErrorKind::WrongType,
                        &f,
                        "must be a tissue name in quotes",
                    )
                    .found(format!("{} {item}", item.type_str()))
                    .fix(WHERE_FIX));
                };
                if s == "everywhere" || s == "viable" {
                    return Err(Error::invalid(
                        &f,
                        format!("\"{s}\" cannot be combined with tissue names"),
                    )
                    .fix(format!(
                        "write where = \"{s}\" alone, or list tissue names only"
                    )));
                }
                let id = tissue(s, &f, false)?;
                if ids.contains(&id) {
                    return Err(Error::invalid(&f, "tissue listed twice")
                        .found(format!("{s:?}"))
                        .fix("list each tissue once"));
                }
                ids.push(id);
            }
            Ok((Some(ids), false))
        }
        other => Err(Error::new(
            ErrorKind::WrongType,
            field,
            "must be a string or an array of tissue names",
        )
        .found(format!("{} {other}", other.type_str()))
        .fix(WHERE_FIX)),
    }
}

fn buffer(raw: &RawScenario, species: &[Species]) -> Result<Option<Buffer>, Error> {
    let Some(b) = &raw.buffer else {
        return Ok(None);
    };
    let index = |name: &str, field: &str, example: &str| -> Result<usize, Error> {
        let names = || species.iter().map(|s| s.name.as_str());
        let Some(i) = names().position(|n| n == name) else {
            return Err(Error::invalid(
                field,
                format!("unknown species `{name}`{}", did_you_mean(name, names())),
            )
            .fix(format!(
                "name one of the species {} ({example})",
                list(names())
            )));
        };
        if species[i].quasi_steady {
            return Err(Error::invalid(
                field,
                format!("the buffered species `{name}` cannot be quasi-steady"),
            )
            .fix(format!(
                "remove `quasi_steady = true` from [species.{name}], or name another species"
            )));
        }
        Ok(i)
    };
    let proton = index(
        &b.proton,
        "buffer.proton",
        "free H+ in mM, e.g. proton = \"H\"",
    )?;
    let beta_nb_mm_per_ph = positive(
        b.beta_nb_mm_per_ph,
        "buffer.beta_nb_mM_per_pH",
        "set the non-bicarbonate buffer capacity in mM per pH unit, e.g. 20.0",
    )?;
    let bicarbonate = match &b.bicarbonate {
        None => None,
        Some(name) => {
            let i = index(
                name,
                "buffer.bicarbonate",
                "HCO3- in mM, e.g. bicarbonate = \"HCO3\"",
            )?;
            if i == proton {
                return Err(Error::invalid("buffer.bicarbonate", "must differ from buffer.proton")
                    .found(format!("{name:?}"))
                    .fix("name the HCO3- species, e.g. bicarbonate = \"HCO3\", or remove the key for no bicarbonate system"));
            }
            Some(i)
        }
    };
    Ok(Some(Buffer {
        proton,
        beta_nb_mm_per_ph,
        bicarbonate,
    }))
}

fn chemistry(raw: &RawScenario) -> Result<ChemistrySpec, Error> {
    let mut spec = ChemistrySpec::default();
    let Some(c) = &raw.chemistry else {
        return Ok(spec);
    };
    if let Some(rtol) = c.rtol {
        if !(finite(rtol, "chemistry.rtol")? > 0.0 && rtol <= 0.1) {
            return Err(Error::invalid("chemistry.rtol", "must be in (0, 0.1]")
                .found(rtol)
                .fix("use a relative tolerance such as 1e-4 (smaller = more accurate, more sub-steps)"));
        }
        spec.rtol = rtol;
    }
    if let Some(atol) = c.atol_mm {
        spec.atol_mm = positive(
            atol,
            "chemistry.atol_mm",
            "set a positive absolute tolerance in mM, e.g. 1e-12 (below the smallest concentration that matters)",
        )?;
    }
    if let Some(n) = c.max_substeps {
        spec.max_substeps = u32::try_from(n).ok().filter(|&n| n >= 1).ok_or_else(|| {
            Error::invalid(
                "chemistry.max_substeps",
                format!("must be in 1..={}", u32::MAX),
            )
            .found(n)
            .fix("allow enough sub-steps per voxel and reaction step, e.g. 20000")
        })?;
    }
    Ok(spec)
}

// ---------------------------------------------------------------------------------------
// Regions

/// Which keys each shape takes, in the order they are listed in messages.
fn shape_keys(shape: &str) -> &'static [&'static str] {
    match shape {
        "sphere" => &["centre_um", "radius_um"],
        "box" => &["min_um", "max_um"],
        "cylinder" | "capsule" => &["start_um", "end_um", "radius_um"],
        "gaussian" => &["centre_um", "sigma_um"],
        _ => &[],
    }
}

pub(crate) fn region(k: RegionKeys<'_>, path: &str, grid: &Grid) -> Result<Region, Error> {
    let shape = k.shape;
    if !SHAPES.contains(&shape) {
        return Err(Error::invalid(
            join(path, "shape"),
            format!("unknown region shape{}", did_you_mean(shape, SHAPES)),
        )
        .found(format!("{shape:?}"))
        .fix(format!("use one of {}", list(SHAPES))));
    }
    let allowed = shape_keys(shape);
    let present = [
        ("centre_um", k.centre_um.is_some()),
        ("radius_um", k.radius_um.is_some()),
        ("min_um", k.min_um.is_some()),
        ("max_um", k.max_um.is_some()),
        ("start_um", k.start_um.is_some()),
        ("end_um", k.end_um.is_some()),
        ("sigma_um", k.sigma_um.is_some()),
    ];
    for (key, is) in present {
        if is && !allowed.contains(&key) {
            return Err(Error::invalid(
                join(path, key),
                format!("`{key}` is not a field of shape \"{shape}\""),
            )
            .fix(format!(
                "remove `{key}`; shape \"{shape}\" takes {}",
                list(allowed.iter().copied())
            )));
        }
    }
    for key in allowed {
        if !present.iter().any(|(p, is)| p == key && *is) {
            return Err(Error::new(
                ErrorKind::MissingKey,
                join(path, key),
                format!("required by shape \"{shape}\" but missing"),
            )
            .fix(format!(
                "add `{key}`; shape \"{shape}\" takes {}",
                list(allowed.iter().copied())
            )));
        }
    }

    // Presence was checked above; `unwrap_or` only keeps this free of panics.
    let point = |v: Option<&[f64]>, key: &str| -> Result<DVec3, Error> {
        let field = join(path, key);
        let p = vec3(v.unwrap_or(&[]), &field)?;
        inside_grid(p, &field, grid)?;
        Ok(p)
    };
    let length = |v: Option<f64>, key: &str, what: &str| -> Result<f64, Error> {
        positive(
            v.unwrap_or(0.0),
            &join(path, key),
            &format!("set a positive {what} in µm"),
        )
    };
    let region =
        match shape {
            "sphere" => Region::Sphere {
                centre_um: point(k.centre_um, "centre_um")?,
                radius_um: length(k.radius_um, "radius_um", "radius")?,
            },
            "box" => {
                let min_um = point(k.min_um, "min_um")?;
                let max_um = point(k.max_um, "max_um")?;
                for a in 0..3 {
                    if min_um[a] >= max_um[a] {
                        let axis = ["x", "y", "z"][a];
                        return Err(Error::invalid(
                            join(path, "max_um"),
                            format!(
                            "must be greater than min_um on every axis ({axis}: max {} ≤ min {})",
                            max_um[a], min_um[a]
                        ),
                        )
                        .found(fmt_vec(&max_um.to_array()))
                        .fix("give the lower corner in min_um and the upper corner in max_um"));
                    }
                }
                Region::Box { min_um, max_um }
            }
            "cylinder" | "capsule" => {
                let start_um = point(k.start_um, "start_um")?;
                let end_um = point(k.end_um, "end_um")?;
                if start_um == end_um {
                    return Err(Error::invalid(join(path, "end_um"), "must differ from start_um")
                    .found(fmt_vec(&end_um.to_array()))
                    .fix("give two distinct axis end points (use shape = \"sphere\" for a ball)"));
                }
                let radius_um = length(k.radius_um, "radius_um", "radius")?;
                if shape == "cylinder" {
                    Region::Cylinder {
                        start_um,
                        end_um,
                        radius_um,
                    }
                } else {
                    Region::Capsule {
                        start_um,
                        end_um,
                        radius_um,
                    }
                }
            }
            _ => Region::Gaussian {
                centre_um: point(k.centre_um, "centre_um")?,
                sigma_um: length(k.sigma_um, "sigma_um", "width σ")?,
            },
        };
    Ok(region)
}

fn inside_grid(p: DVec3, field: &str, grid: &Grid) -> Result<(), Error> {
    let ext = grid.extent_um();
    for a in 0..3 {
        if !(0.0..=ext[a]).contains(&p[a]) {
            let axis = ["x", "y", "z"][a];
            return Err(Error::invalid(
                field,
                format!("outside the grid: domain is [0, {}] µm on {axis}", ext[a]),
            )
            .found(fmt_vec(&p.to_array()))
            .fix(format!(
                "move the point inside [0, {}] µm (domain = grid.shape × grid.voxel_um), or enlarge the grid",
                ext[a]
            )));
        }
    }
    Ok(())
}
