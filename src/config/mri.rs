//! `[mri]`: relaxivities, baseline T1, T2 and proton density per tissue, spin-echo
//! sequences → [`Mri`].

use serde::Deserialize;

use super::checks::{non_negative, positive, species_ix};
use super::error::Error;
use super::parameters::parameter_value;
use super::raw::NamedMap;
use super::scenario::Mri;

/// `[mri]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMri {
    #[serde(rename = "field_T")]
    pub field_t: Option<f64>,
    #[serde(rename = "r1_per_mM_s")]
    pub r1_per_mm_s: Option<NamedMap<f64>>,
    #[serde(rename = "r2_per_mM_s")]
    pub r2_per_mm_s: Option<NamedMap<f64>>,
    /// A number or a per-tissue table (with optional `default`), s.
    #[serde(rename = "T1_0_s")]
    #[schemars(with = "serde_json::Value")]
    pub t1_0_s: toml::Value,
    #[serde(rename = "T2_0_s")]
    #[schemars(with = "serde_json::Value")]
    pub t2_0_s: toml::Value,
    #[schemars(with = "Option<serde_json::Value>")]
    pub rho: Option<toml::Value>,
    pub t1w: Option<RawSequence>,
    pub t2w: Option<RawSequence>,
}

/// A spin-echo sequence.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSequence {
    #[serde(rename = "TR_s")]
    pub tr_s: f64,
    #[serde(rename = "TE_s")]
    pub te_s: f64,
}

/// `[mri]`, if any; `species`, `tissues`: the names, by index and id.
pub(super) fn validate(
    m: Option<&RawMri>,
    species: &[&str],
    tissues: &[&str],
) -> Result<Option<Mri>, Error> {
    let Some(m) = m else {
        return Ok(None);
    };
    let relaxivities = |map: &Option<NamedMap<f64>>, key: &str| {
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
        let values = parameter_value(v, &field, tissues)?;
        for &x in &values {
            positive(x, &field, &format!("give {what} > 0 for every tissue"))?;
        }
        Ok(values)
    };
    let sequence = |s: &Option<RawSequence>, key: &str, default: (f64, f64)| match s {
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
