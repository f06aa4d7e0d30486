//! `[fluorescence]`: which species fluoresce and how brightly, the excitation light, the
//! attenuation of the emitted light and the imaged face → [`Fluorescence`].

use serde::Deserialize;

use super::checks::{face_axis, non_negative, species_ix};
use super::error::Error;
use super::raw::NamedMap;
use super::scenario::Fluorescence;

/// `[fluorescence]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFluorescence {
    /// Brightness ε·Φ_F per mM of each fluorescent species, a.u.
    #[serde(rename = "brightness_per_mM")]
    pub brightness_per_mm: NamedMap<f64>,
    /// Species holding the excitation fluence rate as a fraction of its surface value
    /// (e.g. `Phi` of chemistry/photothermal.toml); absent: uniform excitation.
    pub excitation: Option<String>,
    /// Effective attenuation coefficient µ_eff of the emitted light in tissue, 1/cm.
    pub emission_mu_eff_per_cm: f64,
    /// The face the camera looks through: `x_min`, …, `z_max`.
    pub face: String,
}

/// `[fluorescence]`, if any; `species`: the names by index.
pub(super) fn validate(
    f: Option<&RawFluorescence>,
    species: &[&str],
) -> Result<Option<Fluorescence>, Error> {
    let Some(f) = f else {
        return Ok(None);
    };
    if f.brightness_per_mm.0.is_empty() {
        return Err(Error::invalid(
            "fluorescence.brightness_per_mM",
            "names no fluorescent species",
        )
        .fix("give at least one species and its brightness per mM, e.g. { NP_Au = 1.0 }"));
    }
    let brightness = f
        .brightness_per_mm
        .0
        .iter()
        .map(|(name, b)| {
            let field = format!("fluorescence.brightness_per_mM.{name}");
            let s = species_ix(name, &field, species)?;
            let b = non_negative(
                *b,
                &field,
                "give the brightness ε·Φ_F per mM in arbitrary units (≥ 0), e.g. 1.0",
            )?;
            Ok((s, b))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let excitation = f
        .excitation
        .as_deref()
        .map(|name| species_ix(name, "fluorescence.excitation", species))
        .transpose()?;
    let mu = non_negative(
        f.emission_mu_eff_per_cm,
        "fluorescence.emission_mu_eff_per_cm",
        "give µ_eff of the emitted light in 1/cm (≥ 0), e.g. 2.5 for soft tissue near 800 nm",
    )?;
    let (face_axis, face_max) = face_axis(&f.face, "fluorescence.face")?;
    Ok(Some(Fluorescence {
        brightness,
        excitation,
        mu_em_per_um: mu * 1e-4,
        face_axis,
        face_max,
    }))
}
