//! `[[dosing]]`: bolus doses of a species into a region during the run → [`Dose`]s.

use super::checks::{non_negative, species_ix};
use super::duration::{self, Duration};
use super::error::Error;
use super::region::{self, region_table};
use super::scenario::{Dose, Grid, TimeSpec};

region_table!(
    /// `dosing[i]`: `amount_mm` added to `species` inside the region at `time_s` (or
    /// `time = "2 h"`; default 0); `everywhere = true` also into vessel lumens and the
    /// Dirichlet faces of other species (a switch such as a laser's irradiation time).
    RawDose {
        species: String,
        kind: Option<String>,
        time_s: Option<f64>,
        time: Option<Duration>,
        amount_mm: f64,
        everywhere: Option<bool>,
        source: Option<String>,
    }
);

/// `dosing`, sorted by time; `species`: the species names, by index.
pub(super) fn validate(
    raw: &[RawDose],
    species: &[&str],
    grid: &Grid,
    time: &TimeSpec,
) -> Result<Vec<Dose>, Error> {
    let mut out = Vec::new();
    for (i, d) in raw.iter().enumerate() {
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
        let time_s = dose_time_s(&path, d.time_s, d.time.as_ref(), time)?;
        let amount_mm = non_negative(
            d.amount_mm,
            &format!("{path}.amount_mm"),
            "set the added concentration in mM (peak of a Gaussian)",
        )?;
        out.push(Dose {
            species,
            time_s,
            region: region::validate(d.keys(), &path, grid)?,
            amount_mm,
            everywhere: d.everywhere.unwrap_or(false),
            source: d.source.clone().unwrap_or_default(),
        });
    }
    out.sort_by(|a, b| a.time_s.total_cmp(&b.time_s));
    Ok(out)
}

/// The time of a dose in table `path` (`time_s`, or `time = "2 h"`; default 0), s: at
/// t ≥ 0 (after any spin-up) and within the run.
pub(super) fn dose_time_s(
    path: &str,
    secs: Option<f64>,
    text: Option<&Duration>,
    time: &TimeSpec,
) -> Result<f64, Error> {
    let at = duration::seconds(path, "time", secs, text)?;
    let field = at
        .as_ref()
        .map_or(format!("{path}.time_s"), |a| a.field.clone());
    let time_s = non_negative(
        at.map_or(0.0, |a| a.value),
        &field,
        "doses are given at t ≥ 0 (after any spin-up)",
    )?;
    if time_s > time.end_s {
        return Err(
            Error::invalid(field, format!("is after time.end_s = {} s", time.end_s))
                .found(time_s)
                .fix("dose within the run, or lengthen time.end_s"),
        );
    }
    Ok(time_s)
}
