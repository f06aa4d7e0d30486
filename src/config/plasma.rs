//! `[plasma.<species>]`: intravenous delivery of a circulating agent. The agent's plasma
//! concentration follows one- or two-compartment pharmacokinetics after a bolus at `time`
//! (docs/scientific-model.md §11); the vessel network's exchange of `<species>` with
//! `blood_mm = "plasma"` then draws on it (extravasation P·S/V·(C_p − C)).
//!
//! Generated: the species `<species>_plasma` (and `<species>_peripheral`, the peripheral
//! compartment's amount per plasma volume, for two compartments), both mM and not
//! diffusing, integrated in every tissue voxel alike; the parameters `k10_<species>`
//! (and `k12_`, `k21_`), 1/s; the reactions `plasma_elimination_<species>` (and
//! `plasma_distribution_`, `plasma_redistribution_`); and the dose into the plasma species.
//! The tissue's uptake is not taken out of the plasma: a tumour holds well under 1 % of an
//! injected dose (median 0.7 % [Wil16]).

use serde::Deserialize;

use super::checks::{non_negative, positive, species_ix};
use super::duration::{self, Duration};
use super::error::Error;
use super::raw::NamedMap;
use super::scenario::{
    BoundaryCondition, Dose, Grid, InitialCondition, Parameter, Reaction, Region, Species,
    TimeSpec, MAX_SPECIES,
};

/// `[plasma.<species>]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPlasma {
    /// Plasma concentration right after the bolus, mM.
    pub dose_mm: f64,
    /// When the bolus is given, s after t = 0 (or `time = "1 h"`; default 0).
    pub time_s: Option<f64>,
    pub time: Option<Duration>,
    /// One compartment: the plasma half-life (k10 = ln 2 / t½).
    pub half_life_s: Option<f64>,
    pub half_life: Option<Duration>,
    /// Two compartments (instead of a half-life): elimination from plasma, 1/s.
    pub k10_per_s: Option<f64>,
    /// Plasma → peripheral and back, 1/s (amount per plasma volume).
    pub k12_per_s: Option<f64>,
    pub k21_per_s: Option<f64>,
    /// Where the values come from (citation or "[E]").
    pub source: Option<String>,
}

/// Suffix of the generated plasma species.
pub const PLASMA_SUFFIX: &str = "_plasma";
/// Suffix of the generated peripheral compartment (two compartments).
pub const PERIPHERAL_SUFFIX: &str = "_peripheral";

/// Appends the generated species, parameters, reactions and doses of every
/// `[plasma.<species>]`; `tissues`: the tissue names, by id.
#[allow(clippy::too_many_arguments)]
pub(super) fn build(
    raw: Option<&NamedMap<RawPlasma>>,
    grid: &Grid,
    time: &TimeSpec,
    tissues: &[&str],
    species: &mut Vec<Species>,
    parameters: &mut Vec<Parameter>,
    reactions: &mut Vec<Reaction>,
    doses: &mut Vec<Dose>,
) -> Result<(), Error> {
    for (name, p) in raw.iter().flat_map(|m| m.0.iter()) {
        let path = format!("plasma.{name}");
        let names: Vec<String> = species.iter().map(|s| s.name.clone()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        species_ix(name, &path, &names)?;
        let k = rates(p, &path)?;
        let generated: Vec<String> = std::iter::once(format!("{name}{PLASMA_SUFFIX}"))
            .chain(k.k12.map(|_| format!("{name}{PERIPHERAL_SUFFIX}")))
            .collect();
        for g in &generated {
            if names.contains(&g.as_str()) {
                return Err(Error::invalid(
                    &path,
                    format!("generates the species `{g}`, but the scenario already has one"),
                )
                .fix(format!("rename [species.{g}]")));
            }
        }
        if species.len() + generated.len() > MAX_SPECIES {
            return Err(Error::invalid(
                &path,
                format!(
                    "adds {} species, which makes more than {MAX_SPECIES}",
                    generated.len()
                ),
            )
            .fix("remove a species, or use one compartment (half_life)"));
        }
        let first = species.len();
        for g in &generated {
            species.push(Species {
                name: g.clone(),
                unit: "mM".to_string(),
                display_unit: "mM".to_string(),
                diffusion_um2_per_s: 0.0,
                decay_per_s_by_tissue: vec![0.0; tissues.len()],
                initial: InitialCondition {
                    uniform_mm: 0.0,
                    tissue_mm: vec![None; tissues.len()],
                    regions: Vec::new(),
                    beam: None,
                },
                boundary: [BoundaryCondition::ZeroFlux; 6],
                quasi_steady: false,
                atol_mm: None,
            });
        }
        let (cp, plasma) = (first, generated[0].clone());
        let source = p.source.clone().unwrap_or_else(|| path.clone());
        let mut parameter = |pname: String, value: f64| -> Result<String, Error> {
            super::parameters::parameter_name(&pname, &path, tissues, &names)?;
            if parameters.iter().any(|q| q.name == pname) {
                return Err(Error::invalid(
                    &path,
                    format!(
                        "generates the parameter `{pname}`, which [parameters] already defines"
                    ),
                )
                .fix(format!("rename [parameters.{pname}]")));
            }
            parameters.push(Parameter {
                name: pname.clone(),
                value_by_tissue: vec![value; tissues.len()],
                unit: "1/s".to_string(),
                source: source.clone(),
            });
            Ok(pname)
        };
        let k10 = parameter(format!("k10_{name}"), k.k10)?;
        let mut push = |rname: String, equation: String, rate: String, reactants, products| {
            if reactions.iter().any(|r| r.name == rname) {
                return Err(Error::invalid(
                    &path,
                    format!("generates the reaction `{rname}`, which [reactions] already defines"),
                )
                .fix(format!("rename [reactions.{rname}]")));
            }
            reactions.push(Reaction {
                name: rname,
                equation,
                rate,
                reactants,
                products,
                tissues: None,
                viable_only: false,
            });
            Ok(())
        };
        push(
            format!("plasma_elimination_{name}"),
            format!("{plasma} ->"),
            format!("{k10} * {plasma}"),
            vec![(cp, 1.0)],
            Vec::new(),
        )?;
        if let (Some(k12), Some(k21)) = (k.k12, k.k21) {
            let (k12, k21) = (
                parameter(format!("k12_{name}"), k12)?,
                parameter(format!("k21_{name}"), k21)?,
            );
            let peripheral = &generated[1];
            push(
                format!("plasma_distribution_{name}"),
                format!("{plasma} -> {peripheral}"),
                format!("{k12} * {plasma}"),
                vec![(cp, 1.0)],
                vec![(cp + 1, 1.0)],
            )?;
            push(
                format!("plasma_redistribution_{name}"),
                format!("{peripheral} -> {plasma}"),
                format!("{k21} * {peripheral}"),
                vec![(cp + 1, 1.0)],
                vec![(cp, 1.0)],
            )?;
        }

        let time_s = super::dosing::dose_time_s(&path, p.time_s, p.time.as_ref(), time)?;
        // 0 is an untreated control, as a [[dosing]] amount of 0 is.
        let dose_mm = non_negative(
            p.dose_mm,
            &format!("{path}.dose_mm"),
            "set the plasma concentration right after the bolus in mM, e.g. 0.01 (0 = none)",
        )?;
        doses.push(Dose {
            species: cp,
            time_s,
            region: Region::Box {
                min_um: glam::DVec3::ZERO,
                max_um: grid.extent_um(),
            },
            amount_mm: dose_mm,
            everywhere: false,
            source: source.clone(),
        });
    }
    Ok(())
}

/// First-order rate constants, 1/s.
struct Rates {
    k10: f64,
    k12: Option<f64>,
    k21: Option<f64>,
}

fn rates(p: &RawPlasma, path: &str) -> Result<Rates, Error> {
    let half = duration::seconds(path, "half_life", p.half_life_s, p.half_life.as_ref())?;
    let two = [p.k10_per_s, p.k12_per_s, p.k21_per_s];
    match (half, two) {
        (Some(h), [None, None, None]) => {
            let t = positive(h.value, &h.field, "set the plasma half-life, e.g. \"8 h\"")?;
            Ok(Rates {
                k10: std::f64::consts::LN_2 / t,
                k12: None,
                k21: None,
            })
        }
        (None, [Some(k10), Some(k12), Some(k21)]) => {
            let fix = "set a first-order rate constant in 1/s, e.g. 2.4e-5 (t½ 8 h)";
            Ok(Rates {
                k10: positive(k10, &format!("{path}.k10_per_s"), fix)?,
                k12: Some(positive(k12, &format!("{path}.k12_per_s"), fix)?),
                k21: Some(positive(k21, &format!("{path}.k21_per_s"), fix)?),
            })
        }
        _ => Err(Error::invalid(
            path,
            "give either half_life (one compartment) or all of k10_per_s, k12_per_s and k21_per_s (two compartments)",
        )
        .fix("e.g. half_life = \"8 h\", or k10_per_s = 2.4e-5, k12_per_s = 1e-4, k21_per_s = 5e-5")),
    }
}
