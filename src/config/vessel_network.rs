//! `[vessel_network]`: a generated (seeded, straight or branching) or CSV-read capillary
//! network → segments appended to the vessels, plus the species, parameters and reactions
//! of its exchange with the blood. The geometry itself is in `vessel_network/generate.rs`.

mod generate;

pub use generate::{
    branching, length_in_box_um, parse_csv, straight, Branching, CsvError, Segment, SplitMix64,
};

use serde::Deserialize;

use super::checks::{finite, non_negative, positive, species_ix};
use super::error::{count, did_you_mean, short, Error, ErrorKind};
use super::parameters::parameter_name;
use super::raw::NamedMap;
use super::scenario::{
    Blood, BoundaryCondition, Exchange, Grid, InitialCondition, Parameter, Reaction, Region,
    Species, Vessel, VesselNetwork, MAX_SPECIES,
};

/// `[vessel_network]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVesselNetwork {
    pub seed: Option<i64>,
    /// `"straight"` or `"branching"`; absent with `file`.
    pub kind: Option<String>,
    pub file: Option<String>,
    pub spacing_um: Option<f64>,
    /// Mean intercapillary distance per tissue, µm (≥ the network's): the straight
    /// network is thinned there at random.
    pub tissue_spacing_um: Option<NamedMap<f64>>,
    pub density_mm_per_mm3: Option<f64>,
    pub radius_um: Option<f64>,
    pub axis: Option<String>,
    pub segment_um: Option<f64>,
    pub persistence: Option<f64>,
    pub branch_probability: Option<f64>,
    /// Held blood values, mM: a number, or per tissue (`{ normal = 1.3, tumour = 1.8 }`).
    #[schemars(with = "Option<NamedMap<serde_json::Value>>")]
    pub hold_mm: Option<NamedMap<toml::Value>>,
    pub exchange: Option<NamedMap<RawExchange>>,
}

/// `vessel_network.exchange.<species>`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExchange {
    /// µm/s: a number, or per tissue.
    #[schemars(with = "Option<serde_json::Value>")]
    pub permeability_um_per_s: Option<toml::Value>,
    /// Instead of a permeability, a particle by its hydrodynamic radius, nm: P from pore
    /// theory with `pore_radius_nm` (per tissue) and `pore_fraction_per_um` (ε/L, 1/µm).
    pub particle_radius_nm: Option<f64>,
    #[schemars(with = "Option<serde_json::Value>")]
    pub pore_radius_nm: Option<toml::Value>,
    pub pore_fraction_per_um: Option<f64>,
    /// mM: a number, or per tissue; or `"plasma"`: the plasma curve of `[plasma.<species>]`.
    #[schemars(with = "serde_json::Value")]
    pub blood_mm: toml::Value,
}

/// Most segments of a network (generated or read from CSV). Each becomes a capsule that is
/// rasterised onto the grid and kept in memory; a 1 mm³ tumour at 100 µm spacing has
/// about 100 straight capillaries or 5 000 branching segments of 20 µm, so a million is
/// far beyond any real network while still loading in seconds.
pub const MAX_NETWORK_SEGMENTS: usize = generate::MAX_NETWORK_SEGMENTS;

/// Name of the generated surface-per-volume field of exchange (1/µm).
pub const SURFACE_SPECIES: &str = "vessel_SV";
const SECTION: &str = "vessel_network";

fn field(key: &str) -> String {
    format!("{SECTION}.{key}")
}

#[allow(clippy::too_many_arguments)]
pub(super) fn build(
    raw: &RawVesselNetwork,
    grid: &Grid,
    base_dir: &std::path::Path,
    tissues: &[&str],
    species: &mut Vec<Species>,
    vessels: &mut Vec<Vessel>,
    parameters: &mut Vec<Parameter>,
    reactions: &mut Vec<Reaction>,
) -> Result<VesselNetwork, Error> {
    let extent = grid.extent_um();
    let volume_um3 = extent.x * extent.y * extent.z;
    let mut keep_fraction_by_tissue = vec![1.0; tissues.len()];
    let (kind, seed, file, segments) = match (&raw.file, raw.kind.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                field("kind"),
                "`kind` generates a network, `file` reads one: give one of the two",
            )
            .fix("remove `kind` (and its settings) to read the file, or remove `file`"))
        }
        (Some(f), None) => {
            for (key, present) in [
                ("seed", raw.seed.is_some()),
                ("spacing_um", raw.spacing_um.is_some()),
                ("tissue_spacing_um", raw.tissue_spacing_um.is_some()),
                ("density_mm_per_mm3", raw.density_mm_per_mm3.is_some()),
                ("radius_um", raw.radius_um.is_some()),
                ("axis", raw.axis.is_some()),
                ("segment_um", raw.segment_um.is_some()),
                ("persistence", raw.persistence.is_some()),
                ("branch_probability", raw.branch_probability.is_some()),
            ] {
                if present {
                    return Err(Error::invalid(
                        field(key),
                        format!("`{key}` is a setting of a generated network, not of `file`"),
                    )
                    .fix(format!("remove `{key}` (the file gives positions and radii)")));
                }
            }
            let path = base_dir.join(f);
            let text = super::files::read_text(&path).map_err(|e| {
                Error::new(ErrorKind::Io, field("file"), format!("cannot read {} ({e})", path.display()))
                    .found(format!("{f:?}"))
                    .fix("give a CSV file relative to the scenario file's folder, with the header polyline,x_um,y_um,z_um,radius_um")
            })?;
            let segments = parse_csv(&text).map_err(|e| {
                Error::invalid(
                    field("file"),
                    format!("{}:{}: {}", path.display(), e.line, e.problem),
                )
                .fix("one row per point: polyline id, x_um, y_um, z_um, radius_um; consecutive rows of one polyline are joined")
            })?;
            ("file".to_string(), None, Some(path.display().to_string()), segments)
        }
        (None, None) => {
            return Err(Error::new(
                ErrorKind::MissingKey,
                field("kind"),
                "a vessel network needs `kind` (\"straight\" or \"branching\") or `file`",
            )
            .fix("add kind = \"straight\" with seed, spacing_um and radius_um, or file = \"vessels.csv\""))
        }
        (None, Some(kind)) => {
            if kind != "straight" && kind != "branching" {
                return Err(Error::invalid(
                    field("kind"),
                    format!(
                        "unknown network kind{}",
                        did_you_mean(kind, ["straight", "branching"])
                    ),
                )
                .found(format!("{kind:?}"))
                .fix("use \"straight\" (parallel capillaries) or \"branching\" (random trees)"));
            }
            let seed = raw.seed.ok_or_else(|| {
                Error::new(ErrorKind::MissingKey, field("seed"), "required by a generated network")
                    .fix("add seed = 1 (any integer ≥ 0; the same seed gives the same network)")
            })?;
            let seed = u64::try_from(seed).map_err(|_| {
                Error::invalid(field("seed"), "must be ≥ 0")
                    .found(seed)
                    .fix("use an integer ≥ 0, e.g. seed = 7")
            })?;
            let spacing_key = if raw.spacing_um.is_some() {
                "spacing_um"
            } else {
                "density_mm_per_mm3"
            };
            let too_many = |what: &str, n: f64, fix: &str| {
                let given = match raw.spacing_um {
                    Some(s) => s,
                    None => raw.density_mm_per_mm3.unwrap_or(f64::NAN),
                };
                Error::invalid(
                    field(spacing_key),
                    format!(
                        "would generate {} {what} in the {} × {} × {} µm grid, more than the limit of {MAX_NETWORK_SEGMENTS} segments",
                        count(n),
                        short(extent.x),
                        short(extent.y),
                        short(extent.z)
                    ),
                )
                .found(short(given))
                .fix(fix.to_string())
            };
            let spacing_um = match (raw.spacing_um, raw.density_mm_per_mm3) {
                (Some(_), Some(_)) => {
                    return Err(Error::invalid(
                        field("density_mm_per_mm3"),
                        "give `spacing_um` or `density_mm_per_mm3`, not both (density = 1/spacing²)",
                    )
                    .fix("remove one of the two"))
                }
                (None, None) => {
                    return Err(Error::new(
                        ErrorKind::MissingKey,
                        field("spacing_um"),
                        "a generated network needs its mean intercapillary distance or its length density",
                    )
                    .fix("add spacing_um = 120.0 (tumour 100–300 µm, normal 40–80 µm) or density_mm_per_mm3 = 70.0"))
                }
                (Some(s), None) => positive(
                    s,
                    &field("spacing_um"),
                    "set a positive mean intercapillary distance in µm, e.g. 120",
                )?,
                (None, Some(rho)) => {
                    let rho = positive(
                        rho,
                        &field("density_mm_per_mm3"),
                        "set a positive length density in mm per mm³, e.g. 70",
                    )?;
                    // ρ mm/mm³ = ρ·1e-6 µm/µm³; spacing = 1/√ρ.
                    1.0 / (rho * 1e-6).sqrt()
                }
            };
            let radius_um = positive(
                raw.radius_um.unwrap_or(f64::NAN),
                &field("radius_um"),
                "set the capillary radius in µm, e.g. radius_um = 5.0",
            )?;
            let axis = match raw.axis.as_deref().unwrap_or("z") {
                "x" => 0,
                "y" => 1,
                "z" => 2,
                other => {
                    return Err(Error::invalid(field("axis"), "must be \"x\", \"y\" or \"z\"")
                        .found(format!("{other:?}"))
                        .fix("name the axis the capillaries run along (branching: grow from its min face)"))
                }
            };
            let segments = if kind == "straight" {
                keep_fraction_by_tissue = keep_fractions(raw, spacing_um, tissues)?;
                for key in [
                    ("segment_um", raw.segment_um.is_some()),
                    ("persistence", raw.persistence.is_some()),
                    ("branch_probability", raw.branch_probability.is_some()),
                ] {
                    if key.1 {
                        return Err(Error::invalid(
                            field(key.0),
                            format!("`{}` is a setting of kind = \"branching\"", key.0),
                        )
                        .fix("remove it, or set kind = \"branching\""));
                    }
                }
                let (u, v) = match axis {
                    0 => (1, 2),
                    1 => (0, 2),
                    _ => (0, 1),
                };
                let n = (extent[u] * extent[v]) / (spacing_um * spacing_um);
                if n.is_nan() || n.round() > MAX_NETWORK_SEGMENTS as f64 {
                    return Err(too_many(
                        "capillaries",
                        n,
                        "use a larger spacing_um (tumour 100–300 µm, normal 40–80 µm) or a lower density_mm_per_mm3, or a smaller grid",
                    ));
                }
                straight(extent, axis, spacing_um, radius_um, seed)
            } else {
                if raw.tissue_spacing_um.is_some() {
                    return Err(Error::invalid(
                        field("tissue_spacing_um"),
                        "applies to kind = \"straight\" (thinning a branching tree at random would cut it into pieces)",
                    )
                    .fix("remove tissue_spacing_um, or use kind = \"straight\""));
                }
                let segment_um = positive(
                    raw.segment_um.unwrap_or(20.0),
                    &field("segment_um"),
                    "set a positive growth step in µm, e.g. 20",
                )?;
                let persistence = raw.persistence.unwrap_or(0.85);
                if !(finite(persistence, &field("persistence"))? >= 0.0 && persistence < 1.0) {
                    return Err(Error::invalid(field("persistence"), "must be in [0, 1)")
                        .found(persistence)
                        .fix("use e.g. 0.85 (0 = random walk, close to 1 = straight)"));
                }
                let p = raw.branch_probability.unwrap_or(0.05);
                if !(finite(p, &field("branch_probability"))? >= 0.0 && p <= 1.0) {
                    return Err(Error::invalid(field("branch_probability"), "must be in [0, 1]")
                        .found(p)
                        .fix("use e.g. 0.05 (chance per growth step that a tip splits)"));
                }
                let target = volume_um3 / (spacing_um * spacing_um);
                // Every segment but the clipped ones is segment_um long.
                let n = target / segment_um;
                if n.is_nan() || n > MAX_NETWORK_SEGMENTS as f64 {
                    return Err(too_many(
                        &format!("branching segments of segment_um = {} µm (total length {} µm) or more", short(segment_um), short(target)),
                        n,
                        "use a larger spacing_um or a lower density_mm_per_mm3, a longer segment_um, or a smaller grid",
                    ));
                }
                branching(
                    extent,
                    axis,
                    target,
                    radius_um,
                    Branching {
                        segment_um,
                        persistence,
                        branch_probability: p,
                    },
                    seed,
                )
            };
            (kind.to_string(), Some(seed), None, segments)
        }
    };

    let names: Vec<String> = species.iter().map(|s| s.name.clone()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut hold_mm = Vec::new();
    for (name, v) in raw.hold_mm.iter().flat_map(|m| m.0.iter()) {
        let f = field(&format!("hold_mm.{name}"));
        let s = species_ix(name, &f, &names)?;
        hold_mm.push((
            s,
            per_tissue(
                v,
                &f,
                tissues,
                "set a non-negative held concentration in mM",
            )?,
        ));
    }
    let mut exchange = Vec::new();
    for (name, x) in raw.exchange.iter().flat_map(|m| m.0.iter()) {
        let f = field(&format!("exchange.{name}"));
        let s = species_ix(name, &f, &names)?;
        if hold_mm.iter().any(|(h, _)| *h == s) {
            return Err(Error::invalid(
                &f,
                format!("`{name}` is both held (hold_mm, Dirichlet) and exchanged (Robin)"),
            )
            .fix(format!("remove {name} from hold_mm or from exchange")));
        }
        exchange.push(Exchange {
            species: s,
            permeability_um_per_s_by_tissue: permeability(x, &f, tissues)?,
            blood: match &x.blood_mm {
                toml::Value::String(s) if s == "plasma" => {
                    let plasma = format!("{name}{}", super::plasma::PLASMA_SUFFIX);
                    let ix = names.iter().position(|n| *n == plasma).ok_or_else(|| {
                        Error::invalid(
                            format!("{f}.blood_mm"),
                            format!("\"plasma\" needs a [plasma.{name}] table (its plasma curve)"),
                        )
                        .fix(format!("add [plasma.{name}] with dose_mm and half_life, or give blood_mm in mM"))
                    })?;
                    Blood::Plasma(ix)
                }
                v => Blood::Mm(per_tissue(
                    v,
                    &format!("{f}.blood_mm"),
                    tissues,
                    "set the non-negative blood concentration in mM, or \"plasma\" (intravenous delivery, [plasma.<species>])",
                )?),
            },
        });
    }
    if hold_mm.is_empty() && exchange.is_empty() {
        return Err(Error::invalid(
            SECTION,
            "the network neither holds nor exchanges any species",
        )
        .fix("add hold_mm = { O2 = 0.054 } and/or exchange = { glucose = { permeability_um_per_s = 0.5, blood_mm = 5.0 } }"));
    }

    let mut surface_species = None;
    if !exchange.is_empty() {
        let f = field("exchange");
        if names.contains(&SURFACE_SPECIES) {
            return Err(Error::invalid(
                &f,
                format!("exchange generates the species `{SURFACE_SPECIES}`, but the scenario already has one"),
            )
            .fix(format!("rename [species.{SURFACE_SPECIES}]")));
        }
        if species.len() + 1 > MAX_SPECIES {
            return Err(Error::invalid(
                &f,
                format!("exchange adds the species `{SURFACE_SPECIES}`, which makes more than {MAX_SPECIES}"),
            )
            .fix("remove a species, or hold the exchanged species instead (hold_mm)"));
        }
        let n_tissues = tissues.len();
        surface_species = Some(species.len());
        species.push(Species {
            name: SURFACE_SPECIES.to_string(),
            unit: "1/um".to_string(),
            display_unit: "1/µm".to_string(),
            diffusion_um2_per_s: 0.0,
            decay_per_s_by_tissue: vec![0.0; n_tissues],
            // Filled per voxel by `Model::build` from the rasterised vessels.
            initial: InitialCondition {
                uniform_mm: 0.0,
                tissue_mm: vec![None; n_tissues],
                regions: Vec::new(),
                beam: None,
            },
            boundary: [BoundaryCondition::ZeroFlux; 6],
            quasi_steady: false,
            atol_mm: None,
        });
        let all_names: Vec<&str> = species.iter().map(|s| s.name.as_str()).collect();
        for x in &exchange {
            let name = all_names[x.species];
            let p = format!("P_{name}");
            // The blood side: a parameter C_b, or the plasma species itself.
            let (cb, cb_value) = match &x.blood {
                Blood::Mm(v) => (format!("Cb_{name}"), Some(v)),
                Blood::Plasma(ix) => (all_names[*ix].to_string(), None),
            };
            let generated = std::iter::once((&p, &x.permeability_um_per_s_by_tissue, "um/s"))
                .chain(cb_value.map(|v| (&cb, v, "mM")));
            for (pname, value, unit) in generated {
                parameter_name(pname, &f, tissues, &all_names)?;
                if parameters.iter().any(|q| &q.name == pname) {
                    return Err(Error::invalid(
                        &f,
                        format!("exchange of `{name}` generates the parameter `{pname}`, which [parameters] already defines"),
                    )
                    .fix(format!("rename [parameters.{pname}]")));
                }
                parameters.push(Parameter {
                    name: pname.clone(),
                    value_by_tissue: value.clone(),
                    unit: unit.to_string(),
                    source: "vessel_network.exchange".to_string(),
                });
            }
            let rname = format!("vessel_exchange_{name}");
            if reactions.iter().any(|r| r.name == rname) {
                return Err(Error::invalid(
                    &f,
                    format!("exchange of `{name}` generates the reaction `{rname}`, which [reactions] already defines"),
                )
                .fix(format!("rename [reactions.{rname}]")));
            }
            reactions.push(Reaction {
                name: rname,
                equation: format!("-> {name}"),
                rate: format!("{p} * {SURFACE_SPECIES} * ({cb} - {name})"),
                reactants: Vec::new(),
                products: vec![(x.species, 1.0)],
                tissues: None,
                viable_only: false,
            });
        }
    }

    if segments.len() > MAX_NETWORK_SEGMENTS {
        // Branching: clipped segments are shorter than segment_um, so the estimate
        // checked before generating can fall short.
        return Err(Error::invalid(
            field("kind"),
            format!(
                "generated {} segments, more than the limit of {MAX_NETWORK_SEGMENTS}",
                segments.len()
            ),
        )
        .fix("use a larger spacing_um or segment_um, or a smaller grid"));
    }
    let total_length_um = length_in_box_um(&segments, extent);
    let n_segments = segments.len();
    // A stream of its own, so that the draws leave the geometry of the seed unchanged.
    let mut draws = SplitMix64::new(seed.unwrap_or(0) ^ THINNING_STREAM);
    for s in segments {
        vessels.push(Vessel {
            region: Region::Capsule {
                start_um: s.start_um,
                end_um: s.end_um,
                radius_um: s.radius_um,
            },
            hold_mm: hold_mm.clone(),
            from_network: true,
            keep_draw: draws.next_f64(),
        });
    }
    Ok(VesselNetwork {
        kind,
        seed,
        file,
        n_segments,
        total_length_um,
        length_density_mm_per_mm3: total_length_um / volume_um3 * 1e6,
        exchange,
        surface_species,
        keep_fraction_by_tissue,
    })
}

/// A non-negative value, uniform or per tissue (`{ normal = 1.3, tumour = 1.8 }`, with an
/// optional `default`), by tissue id.
/// P per tissue id, µm/s: given, or from the particle's size by pore theory
/// (docs/scientific-model.md §11).
fn permeability(x: &RawExchange, f: &str, tissues: &[&str]) -> Result<Vec<f64>, Error> {
    let pores = (
        x.particle_radius_nm,
        x.pore_radius_nm.as_ref(),
        x.pore_fraction_per_um,
    );
    let example = "permeability_um_per_s = { normal = 1e-4, tumour = 2e-3 }, or particle_radius_nm = 50.0, pore_radius_nm = { normal = 6.0, tumour = 400.0 }, pore_fraction_per_um = 2.2e-5";
    match (&x.permeability_um_per_s, pores) {
        (Some(p), (None, None, None)) => per_tissue(
            p,
            &format!("{f}.permeability_um_per_s"),
            tissues,
            "set a non-negative permeability in µm/s, e.g. 0.5",
        ),
        (None, (Some(r), Some(pore), Some(eps))) => {
            let r = positive(
                r,
                &format!("{f}.particle_radius_nm"),
                "set the particle's hydrodynamic radius in nm, e.g. 50.0",
            )?;
            let eps = non_negative(
                eps,
                &format!("{f}.pore_fraction_per_um"),
                "set the pore area fraction per wall thickness ε/L in 1/µm, e.g. 2.2e-5",
            )?;
            let field = format!("{f}.pore_radius_nm");
            let pores = per_tissue(pore, &field, tissues, "set the pore radius in nm")?;
            for p in &pores {
                positive(*p, &field, "set a pore radius above 0 nm, e.g. 6.0 (normal), 400.0 (tumour)")?;
            }
            Ok(pores
                .iter()
                .map(|&p| super::particle::pore_permeability_um_per_s(r, p, eps))
                .collect())
        }
        _ => Err(Error::invalid(
            f,
            "give either permeability_um_per_s, or all of particle_radius_nm, pore_radius_nm and pore_fraction_per_um",
        )
        .fix(example)),
    }
}

fn per_tissue(
    value: &toml::Value,
    f: &str,
    tissues: &[&str],
    fix: &str,
) -> Result<Vec<f64>, Error> {
    let values = super::parameters::parameter_value(value, f, tissues)?;
    for v in &values {
        non_negative(*v, f, fix)?;
    }
    Ok(values)
}

/// Seed offset of the per-segment thinning draws.
const THINNING_STREAM: u64 = 0x7468_696e_6e69_6e67;

/// `tissue_spacing_um = { tumour = 200.0 }`: per tissue id, the fraction of the network's
/// capillaries kept there, (spacing_um / tissue spacing)² (length density ∝ 1/spacing²).
fn keep_fractions(
    raw: &RawVesselNetwork,
    spacing_um: f64,
    tissues: &[&str],
) -> Result<Vec<f64>, Error> {
    let mut keep = vec![1.0; tissues.len()];
    for (name, s) in raw.tissue_spacing_um.iter().flat_map(|m| m.0.iter()) {
        let f = field(&format!("tissue_spacing_um.{name}"));
        let t = super::checks::tissue_ix_fix(name, &f, (tissues, &[]), |names| {
            format!("use the tissues {names} (define new tissues under [tissues.<name>])")
        })?;
        let s = positive(
            *s,
            &f,
            "set the tissue's mean intercapillary distance in µm, e.g. 200",
        )?;
        if s < spacing_um {
            return Err(Error::invalid(
                &f,
                format!(
                    "is below the network's spacing_um = {} µm: a tissue can only be thinned, not made denser",
                    short(spacing_um)
                ),
            )
            .found(short(s))
            .fix("set spacing_um to the densest tissue's spacing (normal 40–80 µm) and larger values here (tumour 100–300 µm)"));
        }
        keep[t] = (spacing_um / s).powi(2);
    }
    Ok(keep)
}
