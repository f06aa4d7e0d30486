//! Raw TOML structs → validated [`Scenario`]: the root table ([`RawScenario`]) and the order
//! in which its tables are checked, each by the module named after it (`grid.rs`,
//! `species.rs`, …: defaults, name resolution, physical sense). Every error names the dotted
//! field and says how to fix it.

use std::path::Path;

use serde::Deserialize;

use super::error::Error;
use super::raw::NamedMap;
use super::scenario::{Scenario, MAX_SPECIES};
use super::{
    buffer, chemistry, dosing, fluorescence, grid, mri, output, parameters, plasma, reactions,
    species, time, tissues, vessel_network, vessels,
};

/// The root table of a scenario file.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: String,
    pub description: Option<String>,
    pub grid: grid::RawGrid,
    pub time: time::RawTime,
    pub tissues: Option<NamedMap<tissues::RawTissue>>,
    pub species: NamedMap<species::RawSpecies>,
    pub vessels: Option<Vec<vessels::RawVessel>>,
    pub vessel_network: Option<vessel_network::RawVesselNetwork>,
    /// `[plasma.<species>]`: intravenous delivery (plasma pharmacokinetics).
    pub plasma: Option<NamedMap<plasma::RawPlasma>>,
    pub parameters: Option<NamedMap<parameters::RawParameter>>,
    pub reactions: Option<NamedMap<reactions::RawReaction>>,
    pub buffer: Option<buffer::RawBuffer>,
    pub chemistry: Option<chemistry::RawChemistry>,
    /// `[[dosing]]`: particle or drug doses during the run.
    pub dosing: Option<Vec<dosing::RawDose>>,
    pub mri: Option<mri::RawMri>,
    pub fluorescence: Option<fluorescence::RawFluorescence>,
    pub output: Option<output::RawOutput>,
}

/// `base_dir`: the scenario file's folder; files named in the scenario (masks, vessel
/// segments) are relative to it.
pub fn validate(raw: RawScenario, source: &str, base_dir: &Path) -> Result<Scenario, Error> {
    check_name(&raw.name)?;
    let grid = grid::validate(&raw.grid)?;
    let time = time::validate(&raw.time, source)?;
    let tissues = tissues::validate(raw.tissues.as_ref(), &grid, base_dir)?;
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
        .map(|(name, s)| species::validate(name, s, &tissue_names, &grid))
        .collect::<Result<Vec<_>, _>>()?;
    let raw_species_names: Vec<String> = species.iter().map(|s| s.name.clone()).collect();
    let raw_species_names: Vec<&str> = raw_species_names.iter().map(String::as_str).collect();

    let raw_vessels = raw.vessels.as_deref().unwrap_or_default();
    let mut vessels =
        vessels::validate(raw_vessels, &raw_species_names, &grid, tissue_names.len())?;
    let raw_parameters = raw.parameters.as_ref();
    let mut parameters = parameters::validate(raw_parameters, &tissue_names, &raw_species_names)?;
    let raw_reactions = raw.reactions.as_ref();
    let mut reactions = reactions::validate(raw_reactions, &tissue_names, &raw_species_names)?;
    // Before the network: its exchange may draw on the generated plasma species.
    let mut plasma_doses = Vec::new();
    plasma::build(
        raw.plasma.as_ref(),
        &grid,
        &time,
        &tissue_names,
        &mut species,
        &mut parameters,
        &mut reactions,
        &mut plasma_doses,
    )?;
    let vessel_network = match &raw.vessel_network {
        None => None,
        Some(net) => Some(vessel_network::build(
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
    let buffer = buffer::validate(raw.buffer.as_ref(), &species)?;
    let chemistry = chemistry::validate(raw.chemistry.as_ref())?;
    let raw_doses = raw.dosing.as_deref().unwrap_or_default();
    let mut doses = dosing::validate(raw_doses, &species_names, &grid, &time)?;
    doses.extend(plasma_doses);
    doses.sort_by(|a, b| a.time_s.total_cmp(&b.time_s));
    let spin_up = time::spin_up(&raw.time, &time)?;
    time::check_diffusion(&time, spin_up.as_ref(), &grid, &species)?;
    let mri = mri::validate(raw.mri.as_ref(), &species_names, &tissue_names)?;
    let fluorescence = fluorescence::validate(raw.fluorescence.as_ref(), &species_names)?;
    // The tissues of [tissues] as written (without `normal`): probes may not take their names.
    let raw_tissue_names: Vec<&str> = (raw.tissues.iter().flat_map(|m| m.0.iter()))
        .map(|(t, _)| t.as_str())
        .collect();
    let output = output::validate(
        raw.output.as_ref(),
        raw.buffer.as_ref(),
        &raw_tissue_names,
        &species_names,
        &grid,
        &time,
        output::Readouts {
            mri: mri.is_some(),
            fluorescence: fluorescence.is_some(),
        },
    )?;

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
        fluorescence,
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

/// The top-level `name` (it names the output folder).
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

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;
    use crate::config::*;

    #[test]
    fn default_config_loads() {
        let s = load_str(DEFAULT_SCENARIO_TOML, DEFAULT_SOURCE, &[]).expect("default loads");
        assert_eq!(s.name, "fe_fenton_cdt_day");
        assert!(!s.reactions.is_empty() && s.buffer.is_some());
        let s = load_str(BASE, DEFAULT_SOURCE, &[]).expect("test base loads");
        assert_eq!(s.name, "vascularised_tumour");
        assert!(!s.description.is_empty());
        assert_eq!(s.source, DEFAULT_SOURCE);
        assert_eq!(
            s.grid,
            Grid {
                nx: 64,
                ny: 64,
                nz: 64,
                voxel_um: 10.0
            }
        );
        assert_eq!(
            s.time,
            TimeSpec {
                dt_s: 1.0,
                end_s: 600.0,
                output_interval_s: 120.0,
                theta: 1.0,
                max_diffusion_r: None,
                scheme: Default::default(),
            }
        );
        let tissues: Vec<&str> = s.tissues.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(tissues, ["normal", "tumour"]);
        assert!(s.tissues[0].region.is_none());
        assert_eq!(
            s.tissues[1].region,
            Some(Region::Sphere {
                centre_um: glam::DVec3::splat(320.0),
                radius_um: 200.0
            })
        );
        let species: Vec<&str> = s.species.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(species, ["O2", "glucose"]);
        let o2 = &s.species[0];
        assert_eq!(o2.unit, "mM");
        assert_eq!(o2.diffusion_um2_per_s, 2000.0);
        assert_eq!(o2.decay_per_s_by_tissue, [0.06, 0.1]);
        assert_eq!(o2.initial.uniform_mm, 0.054);
        assert!(o2.initial.regions.is_empty());
        assert_eq!(o2.boundary, [BoundaryCondition::ZeroFlux; 6]);
        assert_eq!(s.species[1].decay_per_s_by_tissue, [7e-4, 1.7e-3]);
        assert_eq!(s.vessels.len(), 6);
        for v in &s.vessels {
            assert_eq!(v.hold_mm, [(0, vec![0.054; 2]), (1, vec![5.0; 2])]);
            assert!(matches!(v.region, Region::Cylinder { radius_um, .. } if radius_um == 8.0));
        }
        let out = &s.output;
        assert_eq!(out.fields, [0, 1]);
        assert_eq!(out.colormap, Colormap::Viridis);
        assert_eq!(out.slice_axis, Axis::Z);
        assert_eq!(out.slices, SliceSelection::Indices(vec![32]));
        assert_eq!(
            out.ranges,
            [
                ValueRange::Fixed { lo: 0.0, hi: 0.06 },
                ValueRange::Fixed { lo: 4.0, hi: 5.0 }
            ]
        );
        assert!(out.png16 == Png16::All && out.npy && out.vti && !out.tiff);
    }

    #[test]
    fn minimal_scenario_takes_defaults() {
        let text = r#"
name = "mini"
[grid]
shape = [8, 9, 10]
voxel_um = 5
[time]
dt_s = 0.1
end_s = 1
[species.Z]
diffusion_um2_per_s = 10
[species.A]
diffusion_um2_per_s = 0
"#;
        let s = load_str(text, FILE, &[]).expect("minimal loads");
        assert_eq!(s.tissues.len(), 1);
        assert_eq!(s.time.output_interval_s, 1.0);
        let names: Vec<&str> = s.species.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Z", "A"], "file order is buffer order");
        assert_eq!(s.species[0].unit, "mM");
        assert_eq!(s.species[0].decay_per_s_by_tissue, [0.0]);
        assert!(!s.species[1].diffuses());
        assert_eq!(s.output.fields, [0, 1]);
        assert_eq!(s.output.slices, SliceSelection::Indices(vec![5]));
        assert_eq!(s.output.ranges, [ValueRange::Auto, ValueRange::Auto]);
        let no_species = text.split("[species.Z]").next().expect("split");
        let e = load_err(no_species, &[]);
        assert_eq!(e.kind, ErrorKind::MissingKey);
        check(&e, "species");
    }

    /// `output.png16` takes true, false or a list of written fields (a 16-bit stack is one
    /// PNG per slice, field and time: a list keeps a run's file count down).
    #[test]
    fn png16_takes_a_bool_or_a_list_of_written_fields() {
        let base = edited(&[]);
        let sets = |v: &str| vec![format!("output.png16={v}")];
        let load = |v: &str| load_str(&base, FILE, &sets(v)).map(|s| s.output.png16);
        assert_eq!(load("true").unwrap(), Png16::All);
        assert_eq!(load("false").unwrap(), Png16::None);
        assert_eq!(
            load("[\"glucose\"]").unwrap(),
            Png16::Fields(vec!["glucose".into()])
        );
        for (value, field, needle) in [
            ("[\"OH\"]", "output.png16[0]", "not a written field"),
            ("[\"O2\", \"O2\"]", "output.png16[1]", "listed twice"),
            ("[1]", "output.png16[0]", "field name"),
            ("\"yes\"", "output.png16", "true, false or a list"),
        ] {
            let set = sets(value);
            let set: Vec<&str> = set.iter().map(String::as_str).collect();
            let msg = check(&load_err(&base, &set), field);
            assert!(msg.contains(needle), "{msg}");
        }
    }

    /// `output.colour_scale`, `output.outlines` and `output.theme`: defaults, values, and
    /// errors that name the field and the accepted values.
    #[test]
    fn colour_scale_and_outlines() {
        let base = edited(&[]);
        let load = |set: &str| load_str(&base, FILE, &[set.to_string()]).map(|s| s.output);
        let out = load_str(&base, FILE, &[]).unwrap().output;
        assert_eq!(out.colour_scale, ColourScale::Auto);
        assert_eq!(
            out.outlines,
            Outlines {
                tissue: true,
                vessels: false
            }
        );
        let out = load("output.colour_scale=\"log\"").unwrap();
        assert_eq!(out.colour_scale, ColourScale::Log);
        let out = load("output.outlines=[\"vessels\"]").unwrap();
        assert!(out.outlines.vessels && !out.outlines.tissue);
        let out = load("output.outlines=[]").unwrap();
        assert!(!out.outlines.vessels && !out.outlines.tissue);
        let msg = check(
            &load_err(&base, &["output.colour_scale=\"logarithmic\""]),
            "output.colour_scale",
        );
        assert!(
            msg.contains("did you mean `log`?") && msg.contains("\"linear\""),
            "{msg}"
        );
        let msg = check(
            &load_err(&base, &["output.outlines=[\"tissue\", \"vessel\"]"]),
            "output.outlines[1]",
        );
        assert!(msg.contains("did you mean `vessels`?"), "{msg}");
        assert_eq!(load_str(&base, FILE, &[]).unwrap().output.theme, None);
        let out = load("output.theme=\"dark\"").unwrap();
        assert_eq!(out.theme, Some(ThemeName::Dark));
        let msg = check(
            &load_err(&base, &["output.theme=\"night\""]),
            "output.theme",
        );
        assert!(msg.contains("\"light\""), "{msg}");
    }

    #[test]
    fn names_and_cross_references() {
        let text = edited(&[("[tissues.tumour]", "[tissues.normal]")]);
        check(&load_err(&text, &[]), "tissues.normal");
        let text = edited(&[(
            "uptake_per_s = { normal = 0.06, tumour",
            "uptake_per_s = { normal = 0.06, tumor",
        )]);
        let msg = check(&load_err(&text, &[]), "species.O2.uptake_per_s.tumor");
        assert!(msg.contains("did you mean `tumour`?"), "{msg}");
        let text = edited(&[("fields = [\"O2\", \"glucose\"]", "fields = [\"O2\"]")]);
        let msg = check(&load_err(&text, &[]), "output.ranges_mm.glucose");
        assert!(msg.contains("not in output.fields"), "{msg}");
        let text = edited(&[("slices = [32]", "slices = [64]")]);
        check(&load_err(&text, &[]), "output.slices[0]");
        let text = edited(&[("glucose = [4.0, 5.0]", "glucose = [5.0, 4.0]")]);
        check(&load_err(&text, &[]), "output.ranges_mm.glucose");
        let text = edited(&[("name = \"vascularised_tumour\"", "name = \"has space\"")]);
        check(&load_err(&text, &[]), "name");
        let text = edited(&[(
            "boundary = { all = \"zero_flux\" }",
            "boundary = { all = \"zeroflux\" }",
        )]);
        let msg = check(&load_err(&text, &[]), "species.O2.boundary.all");
        assert!(msg.contains("did you mean `zero_flux`?"), "{msg}");
    }

    /// Mangling any line of the default file gives Ok or a one-line error, never a panic.
    #[test]
    fn never_panics_on_mangled_input() {
        let lines: Vec<&str> = BASE.lines().collect();
        for i in 0..lines.len() {
            let Some((key, _)) = lines[i].split_once(" = ") else {
                continue;
            };
            for value in [
                "-1",
                "0",
                "\"x\"",
                "[]",
                "[1, 2, 3]",
                "{}",
                "nan",
                "1e400",
                "true",
                "",
                "[[1]]",
            ] {
                let mut l = lines.clone();
                let new = format!("{key} = {value}");
                l[i] = &new;
                if let Err(e) = load_str(&l.join("\n"), FILE, &[]) {
                    let msg = e.to_string();
                    assert!(msg.starts_with(FILE) && !msg.contains('\n'), "{msg}");
                }
            }
            let mut l = lines.clone();
            l.remove(i);
            let _ = load_str(&l.join("\n"), FILE, &[]);
        }
        for set in [
            "=",
            "=1",
            "a=",
            "[=1",
            "grid.shape[0]=2",
            "grid.shape[7]=2",
            "name.x=1",
            "vessels.x=1",
        ] {
            let _ = load_str(BASE, FILE, &[set.to_string()]);
        }
    }
}
