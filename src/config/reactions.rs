//! `[reactions.<name>]`: equation, rate and where each reaction acts → [`Reaction`]s (the
//! rates are compiled with the network, at the end of validation).

use serde::Deserialize;

use super::checks::{is_identifier, species_ix_fix, syntax_error, tissue_ix_fix};
use super::error::{Error, ErrorKind};
use super::raw::NamedMap;
use super::scenario::Reaction;

/// `reactions.<name>`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReaction {
    pub equation: String,
    pub rate: String,
    /// `"everywhere"`, `"viable"`, a tissue name or an array of tissue names; checked in
    /// `validate`.
    #[serde(rename = "where")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub where_: Option<toml::Value>,
}

const EQUATION_FIX: &str = "write the equation like \"Fe2 + H2O2 -> Fe3 + OH\": coefficients before the name (\"2 GSH\"), one side empty for a source (\"-> H2O2\") or a sink (\"OH ->\")";
const WHERE_FIX: &str = "write where = \"everywhere\" (the default), \"viable\" (rate × the viable fraction `viab`), a tissue name, or an array of tissue names such as [\"tumour\"]";

/// `[reactions]`; `tissues`, `species`: the names, by id and index.
pub(super) fn validate(
    map: Option<&NamedMap<RawReaction>>,
    tissues: &[&str],
    species: &[&str],
) -> Result<Vec<Reaction>, Error> {
    let mut out = Vec::new();
    for (name, r) in map.iter().flat_map(|m| m.0.iter()) {
        let path = format!("reactions.{name}");
        if !is_identifier(name, false) {
            return Err(
                Error::invalid(&path, "reaction names must match [A-Za-z][A-Za-z0-9_]*")
                    .found(format!("{name:?}"))
                    .fix("use a name such as `fenton` or `gsh_synthesis`"),
            );
        }
        let field = format!("{path}.equation");
        let eq = crate::chem::parse_equation(&r.equation)
            .map_err(|e| syntax_error(&field, "equation", &r.equation, e, EQUATION_FIX))?;
        if eq.reactants.is_empty() && eq.products.is_empty() {
            return Err(Error::invalid(
                &field,
                "a reaction needs at least one reactant or product",
            )
            .found(format!("{:?}", r.equation))
            .fix("write e.g. \"Fe2 + H2O2 -> Fe3 + OH\"; leave one side empty for a source (\"-> H2O2\") or a sink (\"OH ->\")"));
        }
        let reactants = equation_side(&eq.reactants, &field, species)?;
        let products = equation_side(&eq.products, &field, species)?;
        let (tissue_ids, viable_only) = match &r.where_ {
            None => (None, false),
            Some(v) => reaction_where(v, &format!("{path}.where"), tissues, species)?,
        };
        out.push(Reaction {
            name: name.clone(),
            equation: r.equation.clone(),
            rate: r.rate.clone(),
            reactants,
            products,
            tissues: tissue_ids,
            viable_only,
        });
    }
    Ok(out)
}

/// Names → species indices. A species written twice on one side is merged into one term
/// (`A + A` = `2 A`), so each index appears at most once per side.
fn equation_side(
    terms: &[(String, f64)],
    field: &str,
    species: &[&str],
) -> Result<Vec<(usize, f64)>, Error> {
    let mut out: Vec<(usize, f64)> = Vec::new();
    for (name, coef) in terms {
        let s = species_ix_fix(name, field, species, |names| {
            format!("use one of the species {names}, or define it under [species.{name}]")
        })?;
        if !(coef.is_finite() && *coef > 0.0) {
            return Err(Error::invalid(
                field,
                format!("the coefficient of `{name}` must be a positive number"),
            )
            .found(coef)
            .fix("write a positive coefficient before the name, e.g. \"2 GSH\" or \"0.5 GSSG\""));
        }
        match out.iter_mut().find(|(i, _)| *i == s) {
            Some((_, c)) => *c += coef,
            None => out.push((s, *coef)),
        }
    }
    Ok(out)
}

/// `where`: (tissue ids or None = everywhere, viable_only).
fn reaction_where(
    v: &toml::Value,
    field: &str,
    tissues: &[&str],
    species: &[&str],
) -> Result<(Option<Vec<usize>>, bool), Error> {
    let tissue = |name: &str, field: &str, keywords: bool| -> Result<usize, Error> {
        let words: &[&str] = if keywords {
            &["everywhere", "viable"]
        } else {
            &[]
        };
        tissue_ix_fix(name, field, (tissues, words), |names| {
            format!(
                "use {}tissue names from {names} (define new ones under [tissues.<name>])",
                if keywords {
                    "\"everywhere\", \"viable\" or "
                } else {
                    ""
                },
            )
        })
    };
    match v {
        toml::Value::String(s) if s == "everywhere" => Ok((None, false)),
        toml::Value::String(s) if s == "viable" => {
            if !species.contains(&"viab") {
                return Err(Error::invalid(
                    field,
                    "where = \"viable\" multiplies the rate by the viable fraction, but there is no species `viab`",
                )
                .fix("add [species.viab] with diffusion_um2_per_s = 0.0, unit = \"1\" and initial = { uniform_mm = 1.0 }, or use where = \"everywhere\" or a tissue name"));
            }
            Ok((None, true))
        }
        toml::Value::String(s) => Ok((Some(vec![tissue(s, field, true)?]), false)),
        toml::Value::Array(items) => {
            if items.is_empty() {
                return Err(Error::invalid(field, "lists no tissue").fix(WHERE_FIX));
            }
            let mut ids = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let f = format!("{field}[{i}]");
                let toml::Value::String(s) = item else {
                    return Err(Error::new(
                        ErrorKind::WrongType,
                        &f,
                        "must be a tissue name in quotes",
                    )
                    .found(format!("{} {item}", item.type_str()))
                    .fix(WHERE_FIX));
                };
                if s == "everywhere" || s == "viable" {
                    return Err(Error::invalid(
                        &f,
                        format!("\"{s}\" cannot be combined with tissue names"),
                    )
                    .fix(format!(
                        "write where = \"{s}\" alone, or list tissue names only"
                    )));
                }
                let id = tissue(s, &f, false)?;
                if ids.contains(&id) {
                    return Err(Error::invalid(&f, "tissue listed twice")
                        .found(format!("{s:?}"))
                        .fix("list each tissue once"));
                }
                ids.push(id);
            }
            Ok((Some(ids), false))
        }
        other => Err(Error::new(
            ErrorKind::WrongType,
            field,
            "must be a string or an array of tissue names",
        )
        .found(format!("{} {other}", other.type_str()))
        .fix(WHERE_FIX)),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;
    use crate::config::*;

    /// (chem: parse_unit, parse_equation) Unknown species in an equation, with suggestion.
    #[test]
    fn unknown_species_in_equation() {
        let text = fenton(&[(
            "equation = \"Fe2 + H2O2 -> Fe3 + OH\"",
            "equation = \"Fe2 + H2O3 -> Fe3 + OH\"",
        )]);
        let msg = check(&load_err(&text, &[]), "reactions.fenton.equation");
        assert!(
            msg.contains("unknown species `H2O3` (did you mean `H2O2`?)"),
            "{msg}"
        );
        assert!(msg.contains("`Fe2`, `Fe3`"), "species listed: {msg}");
        let line = line_of(&text, "H2O3 -> Fe3");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
        // On the product side too.
        let text = fenton(&[(
            "equation = \"GSSG -> 2 GSH\"",
            "equation = \"GSSG -> 2 GHS\"",
        )]);
        let msg = check(&load_err(&text, &[]), "reactions.gr.equation");
        assert!(msg.contains("unknown species `GHS`"), "{msg}");
    }

    /// (chem: parse_unit, parse_equation) A syntax error names the character.
    #[test]
    fn equation_syntax_error() {
        let text = fenton(&[(
            "equation = \"Fe2 + H2O2 -> Fe3 + OH\"",
            "equation = \"Fe2 + + H2O2 -> Fe3 + OH\"",
        )]);
        let msg = check(&load_err(&text, &[]), "reactions.fenton.equation");
        assert!(msg.contains("at character "), "{msg}");
    }

    /// (chem: parse_unit, parse_equation) `->` alone is refused with source/sink examples.
    #[test]
    fn reaction_without_reactants_or_products() {
        let text = fenton(&[("equation = \"OH ->\"", "equation = \"->\"")]);
        let msg = check(&load_err(&text, &[]), "reactions.oh_bio.equation");
        assert!(
            msg.contains("a reaction needs at least one reactant or product"),
            "{msg}"
        );
        assert!(msg.contains("-> H2O2") && msg.contains("OH ->"), "{msg}");
    }

    /// (chem) A species twice on one side is one term with the summed coefficient.
    #[test]
    fn repeated_species_on_one_side_are_merged() {
        let text = fenton(&[(
            "equation = \"2 GSH + H2O2 -> GSSG\"",
            "equation = \"GSH + H2O2 + GSH -> GSSG\"",
        )]);
        let s = load_str(&text, FILE, &[]).expect("loads");
        assert_eq!(reaction(&s, "gsh_h2o2").reactants, [(3, 2.0), (2, 1.0)]);
    }

    /// (chem: parse_unit, parse_equation) `where` names tissues; unknown ones are refused.
    #[test]
    fn unknown_tissue_in_where() {
        let reaction = |place: &str| {
            default_plus(&format!(
                "[parameters]\nk = {{ value = 0.1, unit = \"1/s\" }}\n\
                 [reactions.uptake]\nequation = \"O2 ->\"\nrate = \"k * O2\"\nwhere = {place}"
            ))
        };
        let text = reaction("\"tumor\"");
        let msg = check(&load_err(&text, &[]), "reactions.uptake.where");
        assert!(
            msg.contains("unknown tissue `tumor` (did you mean `tumour`?)"),
            "{msg}"
        );
        assert!(msg.contains("`normal`, `tumour`"), "{msg}");
        let line = line_of(&text, "where = \"tumor\"");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");

        let msg = check(
            &load_err(&reaction("[\"tumour\", \"tumor\"]"), &[]),
            "reactions.uptake.where[1]",
        );
        assert!(msg.contains("did you mean `tumour`?"), "{msg}");
        check(
            &load_err(&reaction("[\"tumour\", \"tumour\"]"), &[]),
            "reactions.uptake.where[1]",
        );
        check(&load_err(&reaction("[]"), &[]), "reactions.uptake.where");
        check(
            &load_err(&reaction("[\"viable\"]"), &[]),
            "reactions.uptake.where[0]",
        );
        let e = load_err(&reaction("3"), &[]);
        assert_eq!(e.kind, ErrorKind::WrongType);
        check(&e, "reactions.uptake.where");
    }

    /// (chem) Where a reaction acts, resolved to tissue ids.
    #[test]
    fn where_resolves_tissues() {
        let reaction_where = |place: &str| {
            let text = default_plus(&format!(
                "[parameters]\nk = {{ value = 0.1, unit = \"1/s\" }}\n\
                 [reactions.uptake]\nequation = \"O2 ->\"\nrate = \"k * O2\"\nwhere = {place}"
            ));
            let s = load_str(&text, FILE, &[]).expect("loads");
            (s.reactions[0].tissues.clone(), s.reactions[0].viable_only)
        };
        assert_eq!(reaction_where("\"everywhere\""), (None, false));
        assert_eq!(reaction_where("\"tumour\""), (Some(vec![1]), false));
        assert_eq!(
            reaction_where("[\"tumour\", \"normal\"]"),
            (Some(vec![1, 0]), false)
        );
    }

    /// (chem: parse_unit, parse_equation) `where = "viable"` needs a species `viab`.
    #[test]
    fn where_viable_needs_viab() {
        let edit = (
            "rate = \"k_fenton * Fe2 * H2O2\"",
            "rate = \"k_fenton * Fe2 * H2O2\"\nwhere = \"viable\"",
        );
        let text = fenton(&[edit]);
        let msg = check(&load_err(&text, &[]), "reactions.fenton.where");
        assert!(
            msg.contains("no species `viab`") && msg.contains("[species.viab]"),
            "{msg}"
        );
        let line = line_of(&text, "where = \"viable\"");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
    }

    /// (chem) With a `viab` species, `where = "viable"` sets viable_only.
    #[test]
    fn where_viable_with_viab() {
        let text = fenton(&[
            (
                "rate = \"k_fenton * Fe2 * H2O2\"",
                "rate = \"k_fenton * Fe2 * H2O2\"\nwhere = \"viable\"",
            ),
            (
                "[species.OH]",
                "[species.viab]\ndiffusion_um2_per_s = 0.0\nunit = \"1\"\ninitial = { uniform_mm = 1.0 }\n[species.OH]",
            ),
        ]);
        let s = load_str(&text, FILE, &[]).expect("loads");
        let r = reaction(&s, "fenton");
        assert!(r.viable_only);
        assert_eq!(r.tissues, None);
    }

    /// (chem) A compile error (here in a rate) is located at its field.
    #[test]
    fn compile_error_is_located_at_its_field() {
        let text = fenton(&[(
            "rate = \"k_fenton * Fe2 * H2O2\"",
            "rate = \"k_fentn * Fe2 * H2O2\"",
        )]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::InvalidValue);
        let msg = check(&e, "reactions.fenton.rate");
        let line = line_of(&text, "rate = \"k_fentn");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
    }
}
