//! `[[vessels]]`: regions that hold species at fixed concentrations → [`Vessel`]s (the
//! generated ones are in `vessel_network.rs`).

use super::checks::{non_negative, species_ix};
use super::error::Error;
use super::raw::NamedMap;
use super::region::{self, region_table};
use super::scenario::{Grid, Vessel};

region_table!(
    /// `vessels[i]`.
    RawVessel { hold_mm: NamedMap<f64> }
);

/// `vessels`; `species`: the species names, by index.
pub(super) fn validate(
    raw: &[RawVessel],
    species: &[&str],
    grid: &Grid,
    n_tissues: usize,
) -> Result<Vec<Vessel>, Error> {
    let mut out = Vec::new();
    for (i, v) in raw.iter().enumerate() {
        let path = format!("vessels[{i}]");
        let region = region::validate(v.keys(), &path, grid)?;
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
            let s = species_ix(name, &field, species)?;
            let value = non_negative(
                *value,
                &field,
                "set a non-negative held concentration in mM",
            )?;
            hold_mm.push((s, vec![value; n_tissues]));
        }
        out.push(Vessel {
            region,
            hold_mm,
            from_network: false,
            keep_draw: 0.0,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;

    #[test]
    fn unknown_species_in_hold_mm() {
        let text = edited(&[("hold_mm = { O2 = 0.054", "hold_mm = { O3 = 0.054")]);
        let msg = check(&load_err(&text, &[]), "vessels[0].hold_mm.O3");
        assert!(msg.contains("did you mean `O2`?"), "{msg}");
        let line = line_of(&text, "O3 = 0.054");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
    }
}
