//! `[species.<name>]`: transport, decay and uptake, initial values and boundary conditions →
//! [`Species`].

use serde::Deserialize;

use super::checks::{is_identifier, join, non_negative, positive, syntax_error, tissue_ix};
use super::error::{did_you_mean, Error, ErrorKind};
use super::raw::NamedMap;
use super::region::{self, region_table};
use super::scenario::{BoundaryCondition, Face, Grid, InitialCondition, InitialRegion, Species};

/// `species.<name>`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSpecies {
    pub unit: Option<String>,
    /// What outputs print as the unit (figures, colour bars, time series, Zarr), where
    /// `unit` (the one the rates' dimension check reads, in mM, s, µm and K) cannot say it:
    /// CEM43 counts equivalent minutes at 43 °C with `unit = "1"`. Default: `unit`.
    pub display_unit: Option<String>,
    /// Diffusivity in tissue, µm²/s; or, for a particle, `particle` (not both).
    pub diffusion_um2_per_s: Option<f64>,
    /// A nanoparticle whose diffusivity follows from its size (docs/scientific-model.md §11).
    pub particle: Option<RawParticle>,
    pub decay_per_s: Option<f64>,
    pub uptake_per_s: Option<NamedMap<f64>>,
    pub initial: Option<RawInitial>,
    pub boundary: Option<RawBoundary>,
    /// Algebraic species (production / loss each reaction step), default false.
    pub quasi_steady: Option<bool>,
    /// Absolute tolerance of the reaction integrator for this species, mM.
    pub atol_mm: Option<f64>,
}

/// `species.<name>.particle`: D = D0(r)·H, D0 by Stokes–Einstein in water at 37 °C and
/// H the hindrance of the interstitium, given (`hindrance`) or from Ogston's fibre model
/// (`fibre_radius_nm`, `fibre_volume_fraction`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawParticle {
    /// Hydrodynamic radius, nm.
    pub radius_nm: f64,
    /// D_eff/D0 in (0, 1].
    pub hindrance: Option<f64>,
    /// Radius of the matrix fibres, nm (Ogston).
    pub fibre_radius_nm: Option<f64>,
    /// Volume fraction of the matrix fibres, in (0, 1) (Ogston).
    pub fibre_volume_fraction: Option<f64>,
}

/// `species.<name>.initial`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInitial {
    pub uniform_mm: Option<f64>,
    /// Tissue name → value in every voxel of that tissue (after `uniform_mm`).
    pub tissue_mm: Option<NamedMap<f64>>,
    pub regions: Option<Vec<RawInitialRegion>>,
    /// A given field of relative intensity entering through a face (ultrasound).
    pub beam: Option<super::beam::RawBeam>,
}

region_table!(
    /// `species.<name>.initial.regions[i]`.
    RawInitialRegion { value_mm: f64 }
);

/// Each value is `"zero_flux"` or a number (Dirichlet, mM); checked in `validate`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBoundary {
    #[schemars(with = "Option<serde_json::Value>")]
    pub all: Option<toml::Value>,
    #[schemars(with = "Option<serde_json::Value>")]
    pub x_min: Option<toml::Value>,
    #[schemars(with = "Option<serde_json::Value>")]
    pub x_max: Option<toml::Value>,
    #[schemars(with = "Option<serde_json::Value>")]
    pub y_min: Option<toml::Value>,
    #[schemars(with = "Option<serde_json::Value>")]
    pub y_max: Option<toml::Value>,
    #[schemars(with = "Option<serde_json::Value>")]
    pub z_min: Option<toml::Value>,
    #[schemars(with = "Option<serde_json::Value>")]
    pub z_max: Option<toml::Value>,
}

impl RawBoundary {
    /// The per-face values in [`super::Face`] order.
    pub fn faces(&self) -> [&Option<toml::Value>; 6] {
        [
            &self.x_min,
            &self.x_max,
            &self.y_min,
            &self.y_max,
            &self.z_min,
            &self.z_max,
        ]
    }
}

/// The species' diffusivity in tissue, µm²/s: `diffusion_um2_per_s`, or from `particle`.
fn diffusivity(path: &str, s: &RawSpecies) -> Result<f64, Error> {
    match (s.diffusion_um2_per_s, &s.particle) {
        (Some(d), None) => non_negative(
            d,
            &format!("{path}.diffusion_um2_per_s"),
            "set a non-negative diffusion coefficient in µm²/s (0 = does not diffuse)",
        ),
        (None, Some(p)) => particle_diffusivity(&format!("{path}.particle"), p),
        (Some(_), Some(_)) => Err(Error::invalid(
            format!("{path}.particle"),
            "a species takes `diffusion_um2_per_s` or `particle`, not both",
        )
        .fix("remove `diffusion_um2_per_s` to compute D from the particle's size, or remove `particle`")),
        (None, None) => Err(Error::invalid(path, "has no diffusivity").fix(
            "add `diffusion_um2_per_s = …` (µm²/s, 0 = does not diffuse), or for a nanoparticle \
             `particle = { radius_nm = 50.0, hindrance = 0.1 }`",
        )),
    }
}

/// D = D0(r)·H of `species.<name>.particle` (`field`), µm²/s.
fn particle_diffusivity(field: &str, p: &RawParticle) -> Result<f64, Error> {
    let radius_nm = positive(
        p.radius_nm,
        &format!("{field}.radius_nm"),
        "set the particle's hydrodynamic radius in nm, e.g. 50.0 for a 100 nm particle",
    )?;
    let hindrance = match (p.hindrance, p.fibre_radius_nm, p.fibre_volume_fraction) {
        (Some(h), None, None) => {
            let h = positive(
                h,
                &format!("{field}.hindrance"),
                "set D_eff/D0 in (0, 1], e.g. 0.1 (tumour interstitium 0.01–0.3)",
            )?;
            if h > 1.0 {
                return Err(Error::invalid(format!("{field}.hindrance"), "must be ≤ 1")
                    .found(h)
                    .fix("set D_eff/D0 in (0, 1]: the matrix slows a particle, never speeds it"));
            }
            h
        }
        (None, Some(rf), Some(phi)) => {
            let rf = positive(
                rf,
                &format!("{field}.fibre_radius_nm"),
                "set the matrix fibres' radius in nm",
            )?;
            let phi = positive(
                phi,
                &format!("{field}.fibre_volume_fraction"),
                "set the fibres' volume fraction in (0, 1)",
            )?;
            if phi >= 1.0 {
                return Err(Error::invalid(
                    format!("{field}.fibre_volume_fraction"),
                    "must be < 1",
                )
                .found(phi)
                .fix("set the fibres' volume fraction in (0, 1), e.g. 0.05"));
            }
            super::particle::ogston_hindrance(radius_nm, rf, phi)
        }
        _ => {
            return Err(Error::invalid(
                field,
                "needs `hindrance`, or both `fibre_radius_nm` and `fibre_volume_fraction`",
            )
            .fix("give D_eff/D0 as `hindrance = 0.1`, or the matrix as `fibre_radius_nm = 20.0, fibre_volume_fraction = 0.05` (Ogston), not both"));
        }
    };
    Ok(super::particle::stokes_einstein_um2_per_s(radius_nm) * hindrance)
}

/// `species.<name>`; `tissues`: the tissue names, by id.
pub(super) fn validate(
    name: &str,
    s: &RawSpecies,
    tissues: &[&str],
    grid: &Grid,
) -> Result<Species, Error> {
    let path = format!("species.{name}");
    if !is_identifier(name, false) {
        return Err(
            Error::invalid(&path, "species names must match [A-Za-z][A-Za-z0-9_]*")
                .found(format!("{name:?}"))
                .fix("use a name such as `O2`, `glucose` or `H2O2`"),
        );
    }
    let diffusion_um2_per_s = diffusivity(&path, s)?;
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
        beam: None,
    };
    if let Some((init, beam)) = s
        .initial
        .as_ref()
        .and_then(|i| i.beam.as_ref().map(|b| (i, b)))
    {
        if init.uniform_mm.is_some() || init.tissue_mm.is_some() || init.regions.is_some() {
            return Err(Error::invalid(
                format!("{path}.initial.beam"),
                "sets the whole field, so it cannot be combined with uniform_mm, tissue_mm or regions",
            )
            .fix(format!("remove uniform_mm, tissue_mm and regions from {path}.initial, or remove the beam")));
        }
        if diffusion_um2_per_s != 0.0 {
            return Err(Error::invalid(
                format!("{path}.diffusion_um2_per_s"),
                "must be 0 for a beam: a beam is a given field, it does not diffuse",
            )
            .found(diffusion_um2_per_s)
            .fix(format!(
                "set diffusion_um2_per_s = 0.0, or replace initial.beam, e.g. {}",
                super::beam::EXAMPLE
            )));
        }
        let extent = [grid.nx, grid.ny, grid.nz].map(|n| n as f64 * grid.voxel_um);
        initial.beam = Some(super::beam::validate(beam, &path, tissues, extent)?);
    }
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
            let region = region::validate(r.keys(), &rpath, grid)?;
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

    // The rates' dimension check reads the unit: one it cannot parse would be taken as mM.
    if let Some(unit) = &s.unit {
        crate::chem::parse_unit(unit).map_err(|e| {
            syntax_error(
                &format!("{path}.unit"),
                "unit",
                unit,
                e,
                "write the unit in mM, s, µm and K (e.g. `mM`, `K`, `s`), or `1` for a dimensionless value",
            )
        })?;
    }
    Ok(Species {
        name: name.to_string(),
        unit: s.unit.clone().unwrap_or_else(|| "mM".to_string()),
        display_unit: s
            .display_unit
            .clone()
            .or_else(|| s.unit.clone())
            .unwrap_or_else(|| "mM".to_string()),
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

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;
    use crate::config::*;

    /// A species unit the dimension check cannot read is an error, not mM.
    #[test]
    fn unknown_species_unit() {
        let o2 = "[species.O2]\nunit = \"mM\"";
        let text = edited(&[(o2, "[species.O2]\nunit = \"degC\"")]);
        let msg = check(&load_err(&text, &[]), "species.O2.unit");
        assert!(
            msg.contains("unknown unit") && msg.contains("degC"),
            "{msg}"
        );
        let ok = edited(&[(o2, "[species.O2]\nunit = \"K\"")]);
        let sc = load_str(&ok, "test.toml", &[]).expect("K is a unit");
        assert_eq!(sc.species[0].unit, "K");
    }

    /// `display_unit` changes what outputs print, not what the dimension check reads; without
    /// it outputs print `unit`.
    #[test]
    fn display_unit_is_for_outputs_only() {
        let o2 = "[species.O2]\nunit = \"mM\"";
        let sc = load_str(&edited(&[]), "test.toml", &[]).unwrap();
        assert_eq!(
            (
                sc.species[0].unit.as_str(),
                sc.species[0].display_unit.as_str()
            ),
            ("mM", "mM")
        );
        let shown = edited(&[(
            o2,
            "[species.O2]\nunit = \"1\"\ndisplay_unit = \"min at 43 °C\"",
        )]);
        let sc = load_str(&shown, "test.toml", &[]).unwrap();
        assert_eq!(sc.species[0].unit, "1");
        assert_eq!(sc.species[0].display_unit, "min at 43 °C");
        // A display unit is free text; the unit itself is still checked.
        let bad = edited(&[(o2, "[species.O2]\nunit = \"min\"\ndisplay_unit = \"min\"")]);
        let msg = check(&load_err(&bad, &[]), "species.O2.unit");
        assert!(msg.contains("unknown unit"), "{msg}");
    }

    #[test]
    fn negative_diffusion() {
        let text = edited(&[("diffusion_um2_per_s = 2000.0", "diffusion_um2_per_s = -5")]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::InvalidValue);
        let msg = check(&e, "species.O2.diffusion_um2_per_s");
        let line = line_of(&text, "diffusion_um2_per_s = -5");
        assert_eq!(
            msg,
            format!(
                "{FILE}:{line}:1: species.O2.diffusion_um2_per_s: must be ≥ 0, found -5. \
                 Fix: set a non-negative diffusion coefficient in µm²/s (0 = does not diffuse)."
            )
        );
    }

    /// `particle` instead of a number: D = Stokes–Einstein × hindrance; the mistakes a user
    /// can make with it each name the field and the fix.
    #[test]
    fn particle_gives_d_from_size_and_bad_particles_are_named() {
        let with = |particle: &str| {
            edited(&[(
                "diffusion_um2_per_s = 2000.0",
                &format!("particle = {particle}"),
            )])
        };
        let sc = load_str(&with("{ radius_nm = 50.0, hindrance = 0.1 }"), FILE, &[]).unwrap();
        let d = sc
            .species
            .iter()
            .find(|s| s.name == "O2")
            .unwrap()
            .diffusion_um2_per_s;
        // 100 nm in water at 37 °C: 6.6 µm²/s [T]; × 0.1.
        assert!((d / 0.658 - 1.0).abs() < 0.01, "{d}");
        let cases: [(&str, &str, &str); 5] = [
            (
                "{ radius_nm = 50.0, hindrance = 1.5 }",
                "species.O2.particle.hindrance",
                "must be ≤ 1",
            ),
            (
                "{ radius_nm = 0.0, hindrance = 0.1 }",
                "species.O2.particle.radius_nm",
                "must be > 0",
            ),
            (
                "{ radius_nm = 50.0 }",
                "species.O2.particle",
                "needs `hindrance`",
            ),
            (
                "{ radius_nm = 50.0, fibre_radius_nm = 20.0 }",
                "species.O2.particle",
                "needs `hindrance`",
            ),
            (
                "{ radius_nm = 50.0, fibre_radius_nm = 20.0, fibre_volume_fraction = 1.0 }",
                "species.O2.particle.fibre_volume_fraction",
                "must be < 1",
            ),
        ];
        for (particle, field, what) in cases {
            let msg = check(&load_err(&with(particle), &[]), field);
            assert!(
                msg.contains(what) && msg.contains("Fix:"),
                "{particle}: {msg}"
            );
        }
        // Both, or neither.
        let both = edited(&[(
            "diffusion_um2_per_s = 2000.0",
            "diffusion_um2_per_s = 2000.0\nparticle = { radius_nm = 50.0, hindrance = 0.1 }",
        )]);
        let msg = check(&load_err(&both, &[]), "species.O2.particle");
        assert!(msg.contains("not both"), "{msg}");
        let neither = edited(&[("diffusion_um2_per_s = 2000.0", "")]);
        let msg = check(&load_err(&neither, &[]), "species.O2");
        assert!(
            msg.contains("no diffusivity") && msg.contains("particle = {"),
            "{msg}"
        );
    }

    /// A quasi-steady species cannot diffuse.
    #[test]
    fn quasi_steady_with_diffusion() {
        let text = fenton(&[(
            "diffusion_um2_per_s = 0.0\nquasi_steady = true",
            "diffusion_um2_per_s = 100.0\nquasi_steady = true",
        )]);
        let msg = check(&load_err(&text, &[]), "species.OH.diffusion_um2_per_s");
        assert!(
            msg.contains("quasi-steady") && msg.contains("found 100"),
            "{msg}"
        );
        assert!(
            msg.contains("diffusion_um2_per_s = 0.0") && msg.contains("quasi_steady = true"),
            "{msg}"
        );
        let line = line_of(&text, "diffusion_um2_per_s = 100.0");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
        // Also when switched on from the command line.
        let e = load_err(BASE, &["species.O2.quasi_steady=true"]);
        check(&e, "species.O2.diffusion_um2_per_s");
        let e = load_err(BASE, &["species.O2.quasi_steady=1"]);
        assert_eq!(e.kind, ErrorKind::WrongType);
    }
}
