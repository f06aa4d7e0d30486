//! `[parameters]`: the named constants of the rate expressions, uniform or per tissue →
//! [`Parameter`]s.

use serde::Deserialize;

use super::checks::{finite, is_identifier, syntax_error, tissue_ix_fix};
use super::error::{list, Error, ErrorKind};
use super::raw::NamedMap;
use super::scenario::Parameter;

/// `parameters.<name>`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawParameter {
    /// A number, or a table tissue name → number (with an optional `default`); checked in
    /// `validate`.
    #[schemars(with = "serde_json::Value")]
    pub value: toml::Value,
    pub unit: String,
    pub source: Option<String>,
}

/// Names a parameter may not take: the built-in variables and the functions of the rate
/// expressions.
const RESERVED: [&str; 15] = [
    "pH", "viab", "t", "exp", "log", "log10", "sqrt", "abs", "min", "max", "pow", "hill", "mm",
    "step", "clamp",
];
const UNIT_FIX: &str =
    "write a unit such as \"1/s\", \"mM\", \"mM/s\", \"1/(mM*s)\" or \"1\" (dimensionless)";

/// `[parameters]`; `tissues`, `species`: the names, by id and index.
pub(super) fn validate(
    map: Option<&NamedMap<RawParameter>>,
    tissues: &[&str],
    species: &[&str],
) -> Result<Vec<Parameter>, Error> {
    let mut out = Vec::new();
    for (name, p) in map.iter().flat_map(|m| m.0.iter()) {
        let path = format!("parameters.{name}");
        parameter_name(name, &path, tissues, species)?;
        let value_by_tissue = parameter_value(&p.value, &format!("{path}.value"), tissues)?;
        crate::chem::parse_unit(&p.unit)
            .map_err(|e| syntax_error(&format!("{path}.unit"), "unit", &p.unit, e, UNIT_FIX))?;
        out.push(Parameter {
            name: name.clone(),
            value_by_tissue,
            unit: p.unit.clone(),
            source: p.source.clone().unwrap_or_default(),
        });
    }
    Ok(out)
}

/// A parameter name: an identifier, not a species, a tissue or a reserved word of the rate
/// expressions (also the names `vessel_network` generates).
pub(super) fn parameter_name(
    name: &str,
    path: &str,
    tissues: &[&str],
    species: &[&str],
) -> Result<(), Error> {
    let rename = format!("rename the parameter, e.g. `k_{name}` or `{name}_set`");
    if !is_identifier(name, false) {
        return Err(Error::invalid(
            path,
            "parameter names must match [A-Za-z][A-Za-z0-9_]* (they appear in rate expressions)",
        )
        .found(format!("{name:?}"))
        .fix("use a name such as `k_fenton` or `K_G`"));
    }
    if species.contains(&name) {
        return Err(Error::invalid(
            path,
            format!("`{name}` is already a species; a rate expression could not tell them apart"),
        )
        .fix(rename));
    }
    if tissues.contains(&name) {
        return Err(Error::invalid(
            path,
            format!(
                "`{name}` is already a tissue name; parameter names must differ from tissue names"
            ),
        )
        .fix(rename));
    }
    if RESERVED.contains(&name) {
        return Err(Error::invalid(
            path,
            format!(
                "`{name}` is reserved in rate expressions (built-in variables and functions: {})",
                list(RESERVED)
            ),
        )
        .fix(rename));
    }
    Ok(())
}

/// `value = 0.07` (every tissue) or `value = { tumour = 0.1, default = 0.07 }`.
pub(super) fn parameter_value(
    value: &toml::Value,
    field: &str,
    tissues: &[&str],
) -> Result<Vec<f64>, Error> {
    const FIX: &str = "write value = 0.07, or a per-tissue table value = { normal = 0.07, tumour = 0.1 } (a `default` key covers the tissues not listed)";
    if let Some(x) = number(value) {
        return Ok(vec![finite(x, field)?; tissues.len()]);
    }
    let toml::Value::Table(table) = value else {
        return Err(Error::new(
            ErrorKind::WrongType,
            field,
            "must be a number or a table of per-tissue numbers",
        )
        .found(format!("{} {}", value.type_str(), value))
        .fix(FIX));
    };
    let mut by_tissue: Vec<Option<f64>> = vec![None; tissues.len()];
    let mut default = None;
    for (key, item) in table {
        let f = format!("{field}.{key}");
        let Some(x) = number(item) else {
            return Err(Error::new(ErrorKind::WrongType, &f, "must be a number")
                .found(format!("{} {item}", item.type_str()))
                .fix(FIX));
        };
        let x = finite(x, &f)?;
        if key == "default" {
            default = Some(x);
            continue;
        }
        let t = tissue_ix_fix(key, &f, (tissues, &["default"]), |names| {
            format!(
                "use the tissues {names} or `default` (define new tissues under [tissues.<name>])"
            )
        })?;
        by_tissue[t] = Some(x);
    }
    let missing: Vec<&str> = tissues
        .iter()
        .zip(&by_tissue)
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
    if default.is_none() && !missing.is_empty() {
        return Err(Error::invalid(
            field,
            format!("no value for the tissue(s) {}", list(missing.iter().copied())),
        )
        .fix(format!(
            "give every tissue a value, or add `default = <number>` for the tissues not listed ({})",
            list(missing.iter().copied())
        )));
    }
    Ok(by_tissue
        .into_iter()
        .map(|v| v.or(default).unwrap_or_default())
        .collect())
}

fn number(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(x) => Some(*x),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;
    use crate::config::*;

    /// (chem: parse_unit) Per-tissue values, `default`, integers, missing and unknown tissues.
    #[test]
    fn per_tissue_parameter_tables() {
        let text = default_plus(
            r#"[parameters]
k_a = { value = { tumour = 0.2, default = 0.1 }, unit = "1/s" }
k_b = { value = { normal = 1, tumour = 2 }, unit = "1/s", source = "[E]" }
k_c = { value = 3, unit = "mM" }"#,
        );
        let s = load_str(&text, FILE, &[]).expect("loads");
        assert_eq!(parameter(&s, "k_a").value_by_tissue, [0.1, 0.2]);
        assert!(!parameter(&s, "k_a").is_uniform());
        assert_eq!(parameter(&s, "k_b").value_by_tissue, [1.0, 2.0]);
        assert_eq!(parameter(&s, "k_b").source, "[E]");
        assert_eq!(parameter(&s, "k_c").value_by_tissue, [3.0, 3.0]);
        assert!(parameter(&s, "k_c").is_uniform());
        assert_eq!(parameter(&s, "k_c").source, "");

        // --set into a per-tissue table.
        let s =
            load_str(&text, FILE, &["parameters.k_b.value.tumour=5".to_string()]).expect("loads");
        assert_eq!(parameter(&s, "k_b").value_by_tissue, [1.0, 5.0]);
    }

    /// These fail before any chemistry string is parsed.
    #[test]
    fn per_tissue_parameter_errors() {
        let one = |value: &str| {
            default_plus(&format!(
                "[parameters]\nk = {{ value = {value}, unit = \"1/s\" }}"
            ))
        };
        let text = one("{ tumour = 0.2 }");
        let msg = check(&load_err(&text, &[]), "parameters.k.value");
        assert!(
            msg.contains("`normal`") && msg.contains("default = "),
            "{msg}"
        );
        let line = line_of(&text, "k = { value");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");

        let msg = check(
            &load_err(&one("{ tumor = 0.2, default = 0.1 }"), &[]),
            "parameters.k.value.tumor",
        );
        assert!(
            msg.contains("unknown tissue `tumor` (did you mean `tumour`?)"),
            "{msg}"
        );
        assert!(msg.contains("`normal`, `tumour`"), "{msg}");

        let e = load_err(&one("\"fast\""), &[]);
        assert_eq!(e.kind, ErrorKind::WrongType);
        check(&e, "parameters.k.value");
        let e = load_err(&one("{ normal = 1, tumour = \"x\" }"), &[]);
        assert_eq!(e.kind, ErrorKind::WrongType);
        check(&e, "parameters.k.value.tumour");
        let msg = check(&load_err(&one("nan"), &[]), "parameters.k.value");
        assert!(msg.contains("finite"), "{msg}");

        // unit is required, unknown keys refused.
        let text = default_plus("[parameters]\nk = { value = 1 }");
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::MissingKey);
        let msg = check(&e, "parameters.k.unit");
        assert!(msg.contains("unit = \"1/s\""), "{msg}");
        let text = default_plus("[parameters]\nk = { value = 1, unit = \"1/s\", units = \"1/s\" }");
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::UnknownKey);
        let msg = check(&e, "parameters.k.units");
        assert!(msg.contains("did you mean `unit`?"), "{msg}");
    }

    /// Parameter names: identifiers, not a species, tissue, built-in variable or function.
    #[test]
    fn parameter_name_clashes() {
        let first = "k_fenton    = { value = 0.07";
        for (name, needle) in [
            ("Fe2", "already a species"),
            ("normal", "already a tissue"),
            ("pH", "reserved"),
            ("viab", "reserved"),
            ("t", "reserved"),
            ("exp", "reserved"),
            ("hill", "reserved"),
            ("clamp", "reserved"),
        ] {
            let text = fenton(&[(first, &format!("{name} = {{ value = 0.07"))]);
            let msg = check(&load_err(&text, &[]), &format!("parameters.{name}"));
            assert!(msg.contains(needle), "{msg}");
            let line = line_of(&text, &format!("{name} = {{ value = 0.07"));
            assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
        }
        let text = fenton(&[(first, "\"k-1\" = { value = 0.07")]);
        let msg = check(&load_err(&text, &[]), "parameters.k-1");
        assert!(msg.contains("[A-Za-z][A-Za-z0-9_]*"), "{msg}");
    }

    /// (chem: parse_unit) A bad unit names the field and the character.
    #[test]
    fn bad_parameter_unit() {
        let text = fenton(&[(
            "unit = \"1/(mM*s)\", source = \"R1,",
            "unit = \"1/(mM*s\", source = \"R1,",
        )]);
        let msg = check(&load_err(&text, &[]), "parameters.k_fenton.unit");
        assert!(msg.contains("at character "), "{msg}");
        let line = line_of(&text, "unit = \"1/(mM*s\"");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
    }

    /// (chem) --set changes a parameter value; --set cannot invent a parameter.
    #[test]
    fn set_parameter_value() {
        let s = load_str(
            FENTON,
            FILE,
            &["parameters.k_fenton.value=0.08".to_string()],
        )
        .expect("loads");
        assert_eq!(parameter(&s, "k_fenton").value_by_tissue, [0.08]);
        let s = load_str(
            FENTON,
            FILE,
            &["parameters.k_fenton.value={ normal = 0.09 }".to_string()],
        )
        .expect("loads");
        assert_eq!(parameter(&s, "k_fenton").value_by_tissue, [0.09]);
    }
}
