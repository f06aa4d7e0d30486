//! `species.<name>.initial.beam`: a given field of relative intensity, such as ultrasound,
//! entering through one face and attenuated along its way → [`Beam`] (the field itself is
//! computed when the model is rasterised, `model::beam`).

use serde::Deserialize;

use super::checks::{face_axis, non_negative, positive};
use super::error::Error;
use super::scenario::Beam;

/// `species.<name>.initial.beam`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBeam {
    /// The face the beam enters through: `x_min`, …, `z_max`.
    pub face: String,
    /// Amplitude attenuation coefficient α, Np/cm (a number, or per tissue); the intensity
    /// falls as exp(−2∫α ds).
    #[schemars(with = "serde_json::Value")]
    pub attenuation_np_per_cm: toml::Value,
    /// 1/e² intensity radius of a Gaussian beam at its focus (or everywhere without a
    /// focus), µm; absent: a plane wave, uniform across the face.
    pub waist_um: Option<f64>,
    /// The beam axis's position on the face (its two coordinates in x, y, z order), µm;
    /// absent: the face's centre.
    pub centre_um: Option<[f64; 2]>,
    /// Depth of the focus below the face, µm (needs `waist_um` and `wavelength_um`).
    pub focus_depth_um: Option<f64>,
    /// Wavelength in tissue, µm (ultrasound: 1540 m/s / f, 1540 µm at 1 MHz).
    pub wavelength_um: Option<f64>,
}

/// A beam, for fixes.
pub(super) const EXAMPLE: &str = "beam = { face = \"z_max\", attenuation_np_per_cm = 0.09 } (ultrasound at 1 MHz in soft tissue)";

/// `beam` of species `path` (e.g. `species.US`) on a grid of `extent_um` (x, y, z).
pub(super) fn validate(
    b: &RawBeam,
    path: &str,
    tissues: &[&str],
    extent_um: [f64; 3],
) -> Result<Beam, Error> {
    let f = |key: &str| format!("{path}.initial.beam.{key}");
    let (axis, from_max) = face_axis(&b.face, &f("face"))?;
    let attenuation_np_per_cm = super::parameters::parameter_value(
        &b.attenuation_np_per_cm,
        &f("attenuation_np_per_cm"),
        tissues,
    )?;
    for a in &attenuation_np_per_cm {
        non_negative(
            *a,
            &f("attenuation_np_per_cm"),
            "give the amplitude attenuation α in Np/cm (≥ 0), e.g. 0.09 for soft tissue at 1 MHz (0.8 dB/cm/MHz / 8.686)",
        )?;
    }
    let waist_um = b
        .waist_um
        .map(|w| {
            positive(
                w,
                &f("waist_um"),
                "give the beam's 1/e² intensity radius in µm, e.g. 500",
            )
        })
        .transpose()?;
    // The two lateral axes, in x, y, z order.
    let lateral = match axis {
        crate::grid::Axis::X => [1, 2],
        crate::grid::Axis::Y => [0, 2],
        crate::grid::Axis::Z => [0, 1],
    };
    let centre_um = match b.centre_um {
        Some(c) => {
            for v in c {
                super::checks::finite(v, &f("centre_um"))?;
            }
            c
        }
        None => [extent_um[lateral[0]] / 2.0, extent_um[lateral[1]] / 2.0],
    };
    let focus = match (b.focus_depth_um, b.wavelength_um, waist_um) {
        (None, None, _) => None,
        (Some(d), Some(l), Some(w)) => {
            let d = non_negative(d, &f("focus_depth_um"), "give the focus's depth below the face in µm (≥ 0)")?;
            let l = positive(l, &f("wavelength_um"), "give the wavelength in tissue in µm, e.g. 1540 for ultrasound at 1 MHz")?;
            Some((d, std::f64::consts::PI * w * w / l))
        }
        (Some(_), _, None) | (None, Some(_), None) => {
            return Err(Error::invalid(f("waist_um"), "is needed by a focused beam")
                .fix("give waist_um, the 1/e² intensity radius at the focus in µm, or remove focus_depth_um and wavelength_um for an unfocused beam"))
        }
        (Some(_), None, _) => {
            return Err(Error::invalid(f("wavelength_um"), "is needed by a focused beam")
                .fix("give wavelength_um, the wavelength in tissue in µm (1540 at 1 MHz), or remove focus_depth_um"))
        }
        (None, Some(_), _) => {
            return Err(Error::invalid(f("focus_depth_um"), "is needed with wavelength_um")
                .fix("give focus_depth_um, the focus's depth below the face in µm, or remove wavelength_um"))
        }
    };
    Ok(Beam {
        axis,
        from_max,
        attenuation_per_um: attenuation_np_per_cm
            .iter()
            .map(|a| 2.0 * a * 1e-4)
            .collect(),
        waist_um,
        centre_um,
        focus,
    })
}
