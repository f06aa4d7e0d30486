//! The small checks every table uses: numbers (finite, > 0, ≥ 0), identifiers, dotted
//! field paths, and the name lookups (tissue, species) with their "did you mean" errors.

use super::error::{did_you_mean, list, short, Error};

/// `[A-Za-z][A-Za-z0-9_]*`, plus `-` when `dash` (tissue names).
pub(super) fn is_identifier(name: &str, dash: bool) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (dash && c == '-'))
}

/// `v` if it is finite and its f32 form is finite too (|v| ≤ `f32::MAX` ≈ 3.4e38: the GPU
/// computes in f32, so a larger value would become ±inf there and in the outputs), else
/// an error at `field`.
pub(super) fn finite(v: f64, field: &str) -> Result<f64, Error> {
    if !v.is_finite() {
        Err(Error::invalid(field, "must be a finite number")
            .found(v)
            .fix("write an ordinary number (not nan or inf)"))
    } else if v.abs() > f32::MAX as f64 {
        Err(Error::invalid(
            field,
            "is beyond the f32 range (±3.4e38) the simulation computes in",
        )
        .found(short(v))
        .fix("check the unit and the exponent; use a value of a physically sensible magnitude"))
    } else {
        Ok(v)
    }
}

/// `v` if it is finite, > 0, and still > 0 as an f32 (≥ `f32::MIN_POSITIVE` ≈ 1.2e-38):
/// for lengths and times the simulation divides by, where f32 zero would divide by zero.
pub(super) fn positive_f32(v: f64, field: &str, fix: &str) -> Result<f64, Error> {
    let v = positive(v, field, fix)?;
    if v < f32::MIN_POSITIVE as f64 {
        return Err(Error::invalid(
            field,
            "is below the smallest positive f32 (1.2e-38) the simulation computes in",
        )
        .found(short(v))
        .fix(fix));
    }
    Ok(v)
}

/// The faces' TOML keys, in [`super::scenario::Face`] order.
pub(super) const FACES: [&str; 6] = ["x_min", "x_max", "y_min", "y_max", "z_min", "z_max"];

/// The axis normal to face `name` (`x_min`, …, `z_max`) and whether it is the axis's high
/// end, else an error at `field`.
pub(super) fn face_axis(name: &str, field: &str) -> Result<(crate::grid::Axis, bool), Error> {
    use crate::grid::Axis;
    match name {
        "x_min" => Ok((Axis::X, false)),
        "x_max" => Ok((Axis::X, true)),
        "y_min" => Ok((Axis::Y, false)),
        "y_max" => Ok((Axis::Y, true)),
        "z_min" => Ok((Axis::Z, false)),
        "z_max" => Ok((Axis::Z, true)),
        other => Err(Error::invalid(field, "unknown face")
            .found(format!("{other:?}"))
            .fix(format!("use one of {}", FACES.join(", ")))),
    }
}

/// `v` if it is finite and > 0, else an error at `field` with `fix`.
pub(super) fn positive(v: f64, field: &str, fix: &str) -> Result<f64, Error> {
    if finite(v, field)? > 0.0 {
        Ok(v)
    } else {
        Err(Error::invalid(field, "must be > 0").found(v).fix(fix))
    }
}

/// `v` if it is finite and ≥ 0, else an error at `field` with `fix`.
pub(super) fn non_negative(v: f64, field: &str, fix: &str) -> Result<f64, Error> {
    if finite(v, field)? >= 0.0 {
        Ok(v)
    } else {
        Err(Error::invalid(field, "must be ≥ 0").found(v).fix(fix))
    }
}

/// `[1, 2.5, 3]`: numbers as a user wrote them, for `found`.
pub(super) fn fmt_vec(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("[{}]", items.join(", "))
}

/// The dotted path `parent.key` (`key` alone at the top level).
pub(super) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Index of `name` in `names`, or an error at `field`: "unknown {kind} `name`" ("tissue",
/// "species") with a "did you mean" among `names` and the words `also` (keys the place
/// also takes, such as `default`); `fix` writes the fix from the list of `names`.
fn name_ix(
    kind: &str,
    name: &str,
    field: &str,
    (names, also): (&[&str], &[&str]),
    fix: impl FnOnce(String) -> String,
) -> Result<usize, Error> {
    names.iter().position(|n| *n == name).ok_or_else(|| {
        let candidates = names.iter().chain(also).copied();
        Error::invalid(
            field,
            format!("unknown {kind} `{name}`{}", did_you_mean(name, candidates)),
        )
        .fix(fix(list(names.iter().copied())))
    })
}

/// Tissue id of `name`, or an error at `field` listing the tissues.
pub(super) fn tissue_ix(name: &str, field: &str, tissues: &[&str]) -> Result<usize, Error> {
    tissue_ix_fix(name, field, (tissues, &[]), |names| {
        format!("use one of the tissues {names} (define new ones under [tissues.<name>])")
    })
}

/// [`tissue_ix`] where the place also takes the words `also` (suggested too), with the fix
/// that `fix` writes from the list of tissues (the one lookup of a tissue name: every
/// "unknown tissue `name`" error comes from here).
pub(super) fn tissue_ix_fix(
    name: &str,
    field: &str,
    (tissues, also): (&[&str], &[&str]),
    fix: impl FnOnce(String) -> String,
) -> Result<usize, Error> {
    name_ix("tissue", name, field, (tissues, also), fix)
}

/// Species index of `name`, or an error at `field` listing the species.
pub(super) fn species_ix(name: &str, field: &str, species: &[&str]) -> Result<usize, Error> {
    species_ix_fix(name, field, species, |names| {
        format!("use one of the species {names}")
    })
}

/// [`species_ix`] with the fix that `fix` writes from the list of species (the one
/// lookup of a species name: every "unknown species `name`" error comes from here).
pub(super) fn species_ix_fix(
    name: &str,
    field: &str,
    species: &[&str],
    fix: impl FnOnce(String) -> String,
) -> Result<usize, Error> {
    name_ix("species", name, field, (species, &[]), fix)
}

/// A syntax error in a chemistry string (unit, equation) as a config error on `field`.
pub(super) fn syntax_error(
    field: &str,
    what: &str,
    text: &str,
    e: crate::chem::SyntaxError,
    default_fix: &str,
) -> Error {
    let fix = if e.fix.trim().is_empty() {
        default_fix.to_string()
    } else {
        e.fix
    };
    let mut err = Error::invalid(
        field,
        format!(
            "{} at character {} of the {what} {text:?}",
            e.problem.trim_end_matches('.'),
            e.column
        ),
    )
    .fix(fix);
    err.found = e.found.map(|f| format!("{f:?}"));
    err
}
