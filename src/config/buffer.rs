//! `[buffer]`: the proton and bicarbonate species and the non-bicarbonate buffer capacity
//! → [`Buffer`].

use serde::Deserialize;

use super::checks::{positive, species_ix_fix};
use super::error::Error;
use super::scenario::{Buffer, Species};

/// `[buffer]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBuffer {
    pub proton: String,
    #[serde(rename = "beta_nb_mM_per_pH")]
    pub beta_nb_mm_per_ph: f64,
    pub bicarbonate: Option<String>,
}

/// `[buffer]`; `species`: the validated species (a buffered one may not be quasi-steady).
pub(super) fn validate(
    b: Option<&RawBuffer>,
    species: &[Species],
) -> Result<Option<Buffer>, Error> {
    let Some(b) = b else {
        return Ok(None);
    };
    let names: Vec<&str> = species.iter().map(|s| s.name.as_str()).collect();
    let index = |name: &str, field: &str, example: &str| -> Result<usize, Error> {
        let i = species_ix_fix(name, field, &names, |names| {
            format!("name one of the species {names} ({example})")
        })?;
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

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;
    use crate::config::*;

    /// (chem: parse_unit, parse_equation) Buffer species must exist, differ, not be
    /// quasi-steady; β must be > 0.
    #[test]
    fn bad_buffer() {
        let text = fenton(&[("proton = \"H\"", "proton = \"Hp\"")]);
        let msg = check(&load_err(&text, &[]), "buffer.proton");
        assert!(
            msg.contains("unknown species `Hp` (did you mean `H`?)"),
            "{msg}"
        );
        let line = line_of(&text, "proton = \"Hp\"");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
        let text = fenton(&[("bicarbonate = \"HCO3\"", "bicarbonate = \"HCO\"")]);
        let msg = check(&load_err(&text, &[]), "buffer.bicarbonate");
        assert!(msg.contains("did you mean `HCO3`?"), "{msg}");
        let text = fenton(&[("bicarbonate = \"HCO3\"", "bicarbonate = \"H\"")]);
        let msg = check(&load_err(&text, &[]), "buffer.bicarbonate");
        assert!(msg.contains("must differ from buffer.proton"), "{msg}");
        let text = fenton(&[("proton = \"H\"", "proton = \"OH\"")]);
        let msg = check(&load_err(&text, &[]), "buffer.proton");
        assert!(msg.contains("quasi-steady"), "{msg}");
        let text = fenton(&[("beta_nb_mM_per_pH = 20.0", "beta_nb_mM_per_pH = 0.0")]);
        let msg = check(&load_err(&text, &[]), "buffer.beta_nb_mM_per_pH");
        assert!(msg.contains("must be > 0"), "{msg}");
        let line = line_of(&text, "beta_nb_mM_per_pH = 0.0");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
    }

    /// Buffer keys are checked by the schema (no chemistry string parsed yet).
    #[test]
    fn buffer_schema() {
        let text = fenton(&[("beta_nb_mM_per_pH = 20.0", "beta_nb_mm_per_ph = 20.0")]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::UnknownKey);
        let msg = check(&e, "buffer.beta_nb_mm_per_ph");
        assert!(msg.contains("did you mean `beta_nb_mM_per_pH`?"), "{msg}");
        let text = fenton(&[("proton = \"H\"\n", "")]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::MissingKey);
        check(&e, "buffer.proton");
    }
}
