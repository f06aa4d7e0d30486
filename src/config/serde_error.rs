//! Schema errors: what serde reports (unknown key, missing key, wrong type) in the words of
//! a TOML user, with the allowed keys, a "did you mean" and an example file.

use super::error::{did_you_mean, list, Error, ErrorKind};
use super::locate::under;

/// Turns a serde error (unknown key, missing key, wrong type) into a [`config::Error`](Error).
pub(super) fn from_serde(e: &serde_path_to_error::Error<toml::de::Error>) -> Error {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let msg = e.inner().message().trim();
    let backticked = |s: &str| -> Vec<String> {
        s.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (key, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let allowed = backticked(tail);
        let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
        let fix = if allowed.is_empty() {
            "remove the key".to_string()
        } else {
            format!(
                "use one of the allowed keys here: {}",
                list(allowed.iter().copied())
            )
        };
        Error::new(
            ErrorKind::UnknownKey,
            path,
            format!(
                "unknown key `{key}`{}",
                did_you_mean(key, allowed.iter().copied())
            ),
        )
        .fix(fix)
    } else if let Some(rest) = msg.strip_prefix("missing field `") {
        let key = rest.split('`').next().unwrap_or(rest);
        let field = if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        };
        let fix = match key {
            "grid" => {
                "add a [grid] table with `shape = [64, 64, 64]` and `voxel_um = 10.0`".to_string()
            }
            "time" => "add a [time] table with `dt_s`, `end_s` and optionally `output_interval_s` (or with units: `dt = \"0.5 s\"`, `end = \"24 h\"`, `output_interval = \"1 h\"`)"
                .to_string(),
            "species" => {
                "add at least one species, e.g. [species.O2] with `diffusion_um2_per_s = 2000.0`"
                    .to_string()
            }
            "value" => "add `value = <number>`, or a per-tissue table `value = { normal = 0.07, tumour = 0.1 }`".to_string(),
            "unit" => "add the parameter's unit, e.g. `unit = \"1/s\"`, `unit = \"1/(mM*s)\"` or `unit = \"1\"` (dimensionless)".to_string(),
            "equation" => "add the stoichiometry, e.g. `equation = \"Fe2 + H2O2 -> Fe3 + OH\"`".to_string(),
            "rate" => "add the rate in mM/s, e.g. `rate = \"k_fenton * Fe2 * H2O2\"`".to_string(),
            "proton" => "add the free proton species, e.g. `proton = \"H\"`".to_string(),
            "beta_nb_mM_per_pH" => "add the non-bicarbonate buffer capacity, e.g. `beta_nb_mM_per_pH = 20.0`".to_string(),
            _ => format!("add `{key} = …` (see {} for an example)", example_for(&field)),
        };
        Error::new(ErrorKind::MissingKey, field, "required key is missing").fix(fix)
    } else if let Some(rest) = msg.strip_prefix("invalid type: ") {
        let (found, expected) = rest
            .rsplit_once(", expected ")
            .unwrap_or((rest, "another type"));
        let expected = human_type(expected);
        let fix = format!(
            "write {expected} here (see {} for an example)",
            example_for(&path)
        );
        Error::new(
            ErrorKind::WrongType,
            path,
            format!("wrong type, expected {expected}"),
        )
        .found(human_found(found))
        .fix(fix)
    } else {
        let fix = format!("see {} for a working example", example_for(&path));
        Error::new(ErrorKind::InvalidValue, path, msg.replace('\n', " ")).fix(fix)
    }
}

/// The example config that shows the section of `field`.
fn example_for(field: &str) -> &'static str {
    let chemistry = ["parameters", "reactions", "buffer", "chemistry"]
        .iter()
        .any(|s| under(field, s));
    if chemistry {
        "configs/wellmixed_fenton.toml"
    } else {
        "configs/therapies/fe_fenton_cdt.toml"
    }
}

/// serde's expected-type wording → the TOML words a user knows.
fn human_type(expected: &str) -> String {
    match expected.trim() {
        "f64" | "f32" => "a number".to_string(),
        "i64" | "i32" | "u64" | "u32" | "usize" => "an integer".to_string(),
        "a boolean" | "bool" => "true or false".to_string(),
        "a sequence" => "an array".to_string(),
        "a string" | "string" => "a string in quotes".to_string(),
        "a map" | "a table" => "a table".to_string(),
        s if s.starts_with("struct ") => "a table".to_string(),
        s => s.to_string(),
    }
}

fn human_found(found: &str) -> String {
    match found {
        "map" => "a table".to_string(),
        "sequence" => "an array".to_string(),
        s => s.replace('`', ""),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;
    use crate::config::*;

    #[test]
    fn unknown_key_suggests_the_close_one() {
        let text = edited(&[(
            "diffusion_um2_per_s = 2000.0",
            "difusion_um2_per_s = 2000.0",
        )]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::UnknownKey);
        let msg = check(&e, "species.O2.difusion_um2_per_s");
        assert!(msg.contains("did you mean `diffusion_um2_per_s`?"), "{msg}");
        assert!(msg.contains("`decay_per_s`"), "allowed keys listed: {msg}");
        let line = line_of(&text, "difusion_um2_per_s");
        assert!(msg.starts_with(&format!("{FILE}:{line}:1: ")), "{msg}");
    }

    #[test]
    fn center_um_suggests_centre_um() {
        let text = edited(&[("centre_um = [320.0", "center_um = [320.0")]);
        let msg = check(&load_err(&text, &[]), "tissues.tumour.center_um");
        assert!(msg.contains("did you mean `centre_um`?"), "{msg}");
    }

    #[test]
    fn wrong_type() {
        let text = edited(&[("voxel_um = 10.0", "voxel_um = \"ten\"")]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::WrongType);
        let msg = check(&e, "grid.voxel_um");
        assert!(msg.contains("expected a number"), "{msg}");
        let text = edited(&[("shape = [64, 64, 64]", "shape = [64, 64.5, 64]")]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::WrongType);
        check(&e, "grid.shape[1]");
    }
}
