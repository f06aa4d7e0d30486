//! `--set dotted.path=value` overrides, applied to the parsed TOML tree before it is
//! deserialised. Whether the key is allowed there is decided by the schema itself (serde's
//! `deny_unknown_fields`), so the schema is not written down twice; only user-named tables
//! (`species.<name>`, `tissues.<name>`, `parameters.<name>`, `reactions.<name>`) are checked
//! here, because `--set` cannot create them.

use super::error::{did_you_mean, list, Error, ErrorKind, Location};

/// One step of a dotted path: `species`, `O2`, or the `[2]` of `vessels[2]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// Parses `a.b[2].c`; `None` when malformed (empty key, bad brackets).
pub(crate) fn parse_path(path: &str) -> Option<Vec<Seg>> {
    let mut segs = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        let key = key.trim();
        if key.is_empty() || key.contains(']') {
            return None;
        }
        segs.push(Seg::Key(key.to_string()));
        while !rest.is_empty() {
            let close = rest.find(']')?;
            let index = rest.get(1..close)?.trim().parse().ok()?;
            segs.push(Seg::Index(index));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return None;
            }
        }
    }
    Some(segs)
}

/// The canonical spelling of a path: `vessels[2].radius_um`.
pub(crate) fn dotted(segs: &[Seg]) -> String {
    let mut out = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// A parsed `--set` argument.
#[derive(Clone, Debug)]
pub(crate) struct SetArg {
    /// As given on the command line, prefixed with `--set ` (used as the error location).
    pub shown: String,
    pub segs: Vec<Seg>,
    /// Canonical dotted path of the key.
    pub path: String,
    pub value: toml::Value,
}

impl SetArg {
    fn error(&self, kind: ErrorKind, field: String, problem: impl Into<String>) -> Error {
        let mut e = Error::new(kind, field, problem);
        e.location = Location::Set(self.shown.clone());
        e
    }
}

const EXAMPLE: &str =
    "write --set dotted.path=value, e.g. --set time.end_s=300 or --set output.colormap=magma";

pub(crate) fn parse(arg: &str) -> Result<SetArg, Error> {
    let shown = format!("--set {arg}");
    let malformed = |problem: &str| {
        let mut e = Error::new(ErrorKind::BadSet, "", problem)
            .found(format!("{arg:?}"))
            .fix(EXAMPLE);
        e.location = Location::Set(shown.clone());
        e
    };
    let Some((path, value)) = arg.split_once('=') else {
        return Err(malformed(
            "malformed --set: missing `=` between key path and value",
        ));
    };
    let Some(segs) = parse_path(path.trim()) else {
        return Err(malformed("malformed --set: the key path must be dotted keys such as `species.O2.decay_per_s` or `vessels[0].radius_um`"));
    };
    if out_of_range(value.trim()) {
        let mut e = Error::new(
            ErrorKind::BadSet,
            dotted(&segs),
            "the number is out of the range of f64 (magnitudes up to about 1.8e308)",
        )
        .found(value.trim())
        .fix("write a number of ordinary magnitude (check the exponent)");
        e.location = Location::Set(shown.clone());
        return Err(e);
    }
    Ok(SetArg {
        shown,
        path: dotted(&segs),
        segs,
        value: parse_value(value.trim()),
    })
}

/// A number too large for f64 (`1e999`, `-2e400`): TOML refuses it, and it would
/// otherwise be taken as a bare string ("wrong type, expected a number").
fn out_of_range(text: &str) -> bool {
    let plain = text.replace('_', "");
    let lower = plain.to_ascii_lowercase();
    !lower.contains("inf")
        && !lower.contains("nan")
        && plain.parse::<f64>().is_ok_and(|v| v.is_infinite())
}

/// A TOML value (`1.5`, `[1, 2, 3]`, `"text"`, `true`), else the text as a bare string.
fn parse_value(text: &str) -> toml::Value {
    match format!("v = {text}").parse::<toml::Table>() {
        Ok(mut t) if t.len() == 1 => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(text.to_string())),
        _ => toml::Value::String(text.to_string()),
    }
}

/// Writes the value into the tree, creating missing tables where the schema has fixed keys.
pub(crate) fn apply(root: &mut toml::Value, set: &SetArg) -> Result<(), Error> {
    let mut cur = root;
    let n = set.segs.len();
    for (i, seg) in set.segs.iter().enumerate() {
        let last = i + 1 == n;
        let here = dotted(&set.segs[..=i]);
        let parent = dotted(&set.segs[..i]);
        let kind_of_cur = cur.type_str();
        match seg {
            Seg::Key(k) => {
                let toml::Value::Table(t) = cur else {
                    return Err(set
                        .error(ErrorKind::BadSet, parent.clone(), format!("`{parent}` holds a {kind_of_cur}, not a table, so it has no key `{k}`"))
                        .fix(format!("set `{parent}` itself, or check the path")));
                };
                let what = match (i, &set.segs[0]) {
                    (1, Seg::Key(s)) => match s.as_str() {
                        "species" => Some("species"),
                        "tissues" => Some("tissue"),
                        "parameters" => Some("parameter"),
                        "reactions" => Some("reaction"),
                        _ => None,
                    },
                    _ => None,
                };
                if let (false, Some(what)) = (t.contains_key(k), what) {
                    return Err(set
                        .error(
                            ErrorKind::BadSet,
                            here,
                            format!(
                                "unknown {what} `{k}`{}",
                                did_you_mean(k, t.keys().map(String::as_str))
                            ),
                        )
                        .fix(format!(
                            "--set can only change a {what} the file defines: {}",
                            list(t.keys().map(String::as_str))
                        )));
                }
                if last {
                    t.insert(k.clone(), set.value.clone());
                    return Ok(());
                }
                cur = t
                    .entry(k.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            }
            Seg::Index(idx) => {
                let toml::Value::Array(a) = cur else {
                    return Err(set
                        .error(
                            ErrorKind::BadSet,
                            parent.clone(),
                            format!("`{parent}` holds a {kind_of_cur}, not an array"),
                        )
                        .fix("drop the [index] from the path"));
                };
                let len = a.len();
                let Some(item) = a.get_mut(*idx) else {
                    return Err(set
                        .error(
                            ErrorKind::BadSet,
                            here,
                            format!("index out of range: `{parent}` has {len} entries"),
                        )
                        .fix(format!("use an index from 0 to {}", len.saturating_sub(1))));
                };
                if last {
                    *item = set.value.clone();
                    return Ok(());
                }
                cur = item;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            parse_path("vessels[2].radius_um"),
            Some(vec![
                Seg::Key("vessels".into()),
                Seg::Index(2),
                Seg::Key("radius_um".into())
            ])
        );
        assert_eq!(
            dotted(&parse_path("vessels[2].radius_um").unwrap()),
            "vessels[2].radius_um"
        );
        assert_eq!(parse_path("a..b"), None);
        assert_eq!(parse_path("a[x]"), None);
        assert_eq!(parse_path("a[1"), None);
        assert_eq!(parse_path(""), None);
    }

    #[test]
    fn values() {
        assert_eq!(parse_value("1.5"), toml::Value::Float(1.5));
        assert!(out_of_range("1e999") && out_of_range("-2e400") && out_of_range("1_0e999"));
        assert!(!out_of_range("1e300") && !out_of_range("inf") && !out_of_range("magma"));
        let msg = parse("time.end_s=1e999").unwrap_err().to_string();
        assert!(
            msg.contains("time.end_s") && msg.contains("out of the range of f64"),
            "{msg}"
        );
        assert_eq!(parse_value("magma"), toml::Value::String("magma".into()));
        assert_eq!(parse_value("\"a b\""), toml::Value::String("a b".into()));
        assert_eq!(parse_value("true"), toml::Value::Boolean(true));
        assert!(matches!(parse_value("[1, 2, 3]"), toml::Value::Array(a) if a.len() == 3));
    }
}

/// `--set` through the whole loader: located at the `--set`, validated like the file.
#[cfg(test)]
mod loader_tests {
    use crate::config::test_support::*;
    use crate::config::*;

    #[test]
    fn set_unknown_key() {
        let e = load_err(BASE, &["species.O2.difusion=3"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
        let msg = check(&e, "species.O2.difusion");
        assert!(
            msg.starts_with(&format!("{FILE} (--set species.O2.difusion=3): ")),
            "{msg}"
        );
        assert!(msg.contains("did you mean `diffusion_um2_per_s`?"), "{msg}");
        // A species the file does not define.
        let e = load_err(BASE, &["species.o2.decay_per_s=1"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
        let msg = check(&e, "species.o2");
        assert!(msg.contains("did you mean `O2`?"), "{msg}");
        // A whole unknown table.
        let e = load_err(BASE, &["tme.dt_s=1"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
        let msg = check(&e, "tme");
        assert!(msg.contains("did you mean `time`?"), "{msg}");
        // Index out of range.
        let e = load_err(BASE, &["vessels[9].radius_um=3"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
        check(&e, "vessels[9]");
    }

    #[test]
    fn set_malformed() {
        let e = load_err(BASE, &["time.dt_s"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("{FILE} (--set time.dt_s): ")),
            "{msg}"
        );
        assert!(
            msg.contains("missing `=`") && msg.contains("Fix: "),
            "{msg}"
        );
        let e = load_err(BASE, &["time..dt_s=1"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
    }

    #[test]
    fn set_values_apply_and_are_validated() {
        let sets: Vec<String> = [
            "output.colormap=magma",
            "time.dt_s=0.5",
            "vessels[1].radius_um=5",
            "species.O2.uptake_per_s.tumour=0.2",
            "species.glucose.boundary.x_min=5",
            "output.slices=all",
            "description=\"changed\"",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = load_str(BASE, FILE, &sets).expect("overrides load");
        assert_eq!(s.output.colormap, Colormap::Magma);
        assert_eq!(s.time.dt_s, 0.5);
        assert!(
            matches!(s.vessels[1].region, Region::Cylinder { radius_um, .. } if radius_um == 5.0)
        );
        assert_eq!(s.species[0].decay_per_s_by_tissue, [0.06, 0.2]);
        assert_eq!(
            s.species[1].boundary[0],
            BoundaryCondition::Dirichlet { value_mm: 5.0 }
        );
        assert_eq!(s.species[1].boundary[1], BoundaryCondition::ZeroFlux);
        assert_eq!(s.output.slices, SliceSelection::All);
        assert_eq!(s.description, "changed");

        // A key the file omits but the schema allows.
        let text = edited(&[("output_interval_s = 120.0\n", "")]);
        let s = load_str(&text, FILE, &[]).expect("loads");
        assert_eq!(s.time.output_interval_s, 600.0);
        let s = load_str(&text, FILE, &["time.output_interval_s=60".to_string()]).expect("loads");
        assert_eq!(s.time.output_interval_s, 60.0);

        // A bad value from --set is located at the --set, not in the file.
        let e = load_err(BASE, &["species.O2.decay_per_s=-1"]);
        assert_eq!(e.kind, ErrorKind::InvalidValue);
        let msg = check(&e, "species.O2.decay_per_s");
        assert!(
            msg.starts_with(&format!("{FILE} (--set species.O2.decay_per_s=-1): species.O2.decay_per_s: must be ≥ 0, found -1.")),
            "{msg}"
        );
        let e = load_err(BASE, &["time.dt_s=fast"]);
        assert_eq!(e.kind, ErrorKind::WrongType);
        let msg = check(&e, "time.dt_s");
        assert!(
            msg.contains("(--set time.dt_s=fast)") && msg.contains("expected a number"),
            "{msg}"
        );
    }

    #[test]
    fn set_unknown_parameter_or_reaction() {
        let e = load_err(FENTON, &["parameters.k_fentn.value=0.08"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
        let msg = check(&e, "parameters.k_fentn");
        assert!(
            msg.contains("unknown parameter `k_fentn` (did you mean `k_fenton`?)"),
            "{msg}"
        );
        assert!(
            msg.starts_with(&format!("{FILE} (--set parameters.k_fentn.value=0.08): ")),
            "{msg}"
        );
        let e = load_err(FENTON, &["reactions.fentn.rate=0"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
        let msg = check(&e, "reactions.fentn");
        assert!(msg.contains("did you mean `fenton`?"), "{msg}");
        // A scenario without [parameters].
        let e = load_err(BASE, &["parameters.k.value=1"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
        check(&e, "parameters.k");
    }
}
