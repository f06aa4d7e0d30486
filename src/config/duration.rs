//! Times with a unit. Every time key of the schema is a number of seconds named `<key>_s`
//! (`end_s = 86400`) and also takes a string with its unit under the name without the
//! suffix (`end = "24 h"`, `output_interval = "30 min"`, `dt = "0.5 s"`, `spin_up = "2 d"`).
//! The keys are listed once, in [`TIME_KEYS`]; the tables' raw structs carry both forms and
//! call [`seconds`], [`required_seconds`] or [`seconds_list`], which refuse a key given in
//! both forms and a string that is not a time. The scenario holds seconds only.
//!
//! Across files the later one wins whichever form it uses: a file (or a `--set`) that
//! writes either form of a key replaces both forms written underneath it
//! ([`drop_replaced_forms`], [`drop_forms_set`]); only one file (or the `--set`s) giving
//! both is an error.

use serde::Deserialize;

use super::checks::join;
use super::error::{short, Error, ErrorKind};
use super::overrides::Seg;

/// The units a time may carry, with their length in s.
pub const UNITS: [(&str, f64); 4] = [("s", 1.0), ("min", 60.0), ("h", 3600.0), ("d", 86400.0)];

/// Every time key that takes both forms: (table, key without `_s`). `dosing[]` is every
/// `[[dosing]]` entry; `output.figure.times` is an array of times.
pub const TIME_KEYS: [(&str, &str); 9] = [
    ("time", "dt"),
    ("time", "end"),
    ("time", "output_interval"),
    ("time", "spin_up"),
    ("time", "spin_up_dt"),
    ("time", "max_dt"),
    ("dosing[]", "time"),
    ("output", "summary_interval"),
    ("output.figure", "times"),
];

/// The accepted units, for messages: `s, min, h, d`.
fn unit_names() -> String {
    UNITS.map(|(u, _)| u).join(", ")
}

/// A time as written under a key without `_s` (`end = "24 h"`): kept as the TOML value
/// so that a number or another type is refused by [`seconds`] with a fix, not by serde.
#[derive(Clone, Debug, Deserialize)]
#[serde(transparent)]
pub struct Duration(pub toml::Value);

impl schemars::JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "a time with its unit: \"24 h\", \"30 min\", \"0.5 s\", \"1.5 d\" (keys ending in _s take seconds as a number)",
            "pattern": "^\\s*[0-9.eE+-]+\\s*[a-z]+\\s*$"
        })
    }
}

/// A time key resolved to seconds, with the key it was written under (`time.end_s` or
/// `time.end`): later checks name the key the user wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Seconds {
    /// s.
    pub value: f64,
    /// Dotted path of the key the value came from.
    pub field: String,
}

/// Seconds of a time text: a number, optional spaces, a unit of [`UNITS`] (`24 h`,
/// `30min`, `1.5e3 s`, `0.5 d`). `Err` holds the problem, for a message.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let number_end = t
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphabetic())
        .last()
        .map_or(t.len(), |(i, _)| i);
    let (number, unit) = (t[..number_end].trim_end(), &t[number_end..]);
    if unit.is_empty() {
        return Err("has no unit".into());
    }
    let Some(&(_, factor)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(format!("has an unknown unit `{unit}`"));
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("does not start with a number before the unit `{unit}`"))?;
    if !value.is_finite() {
        return Err("is not a finite time".into());
    }
    if value < 0.0 {
        return Err("is negative; times are ≥ 0".into());
    }
    Ok(value * factor)
}

/// `t` s in the unit that reads best: `45 s`, `12.5 min`, `3.25 h`, `2.5 d` (s below 2 min,
/// min below 2 h, h below 2 d; at most 3 significant decimals, trailing zeros trimmed).
pub fn human(t_s: f64) -> String {
    human_in(t_s, t_s)
}

/// `t` s in the unit that [`human`] picks for `scale_s`: times shown side by side (a
/// figure's columns) share one unit, `0 h`, `8 h`, `24 h` rather than `0 s`, `8 h`.
pub fn human_in(t_s: f64, scale_s: f64) -> String {
    let (seconds, unit) = unit_for(scale_s);
    format!("{} {unit}", three_digits(t_s / seconds))
}

/// The unit [`human`] writes times of about `scale_s` in, and its length in s: s below
/// 2 min, min below 2 h, h below 2 d, else d.
pub fn unit_for(scale_s: f64) -> (f64, &'static str) {
    let a = scale_s.abs();
    if a < 120.0 {
        (1.0, "s")
    } else if a < 7200.0 {
        (60.0, "min")
    } else if a < 172_800.0 {
        (3600.0, "h")
    } else {
        (86400.0, "d")
    }
}

/// `v` with 2 decimals below 10, 1 below 100, none above, trailing zeros trimmed: `1.23`,
/// `45.5`, `600` (the number part of [`human`]).
pub fn three_digits(v: f64) -> String {
    let decimals = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The error of a time text `value` at `field` that is not a time (`problem`); `key_s` is
/// the seconds form of the key, offered as the alternative.
fn not_a_time(field: &str, key_s: &str, value: &toml::Value, problem: &str) -> Error {
    let (kind, found) = match value {
        toml::Value::String(s) => (ErrorKind::InvalidValue, format!("{s:?}")),
        other => (
            ErrorKind::WrongType,
            format!("{} {other}", other.type_str()),
        ),
    };
    Error::new(kind, field, format!("{problem}: a time here is a number and a unit in quotes"))
        .found(found)
        .fix(format!(
            "write e.g. \"24 h\", \"30 min\", \"0.5 s\" or \"2 d\" (units: {}), or give seconds as a number under `{key_s}`",
            unit_names()
        ))
}

/// The error of a key given in both forms.
fn both_forms(field_s: &str, field: &str, key_s: &str, key: &str) -> Error {
    Error::invalid(
        field,
        format!("is given twice, as `{field_s}` (s) and as `{field}` (with a unit)"),
    )
    .fix(format!(
        "keep one of them: `{key_s} = <seconds>` or `{key} = \"<number> <unit>\"`"
    ))
}

/// Seconds of the time `value` written under `field` (with a unit); `key_s` names the
/// seconds form for the fix.
fn parse_value(field: &str, key_s: &str, value: &toml::Value) -> Result<f64, Error> {
    match value {
        toml::Value::String(s) => parse_seconds(s).map_err(|p| not_a_time(field, key_s, value, &p)),
        _ => Err(not_a_time(field, key_s, value, "is not a string")),
    }
}

/// The time key `key` of table `parent` (`"time"`, `"end"`), written as seconds under
/// `<key>_s` (`secs`) or with a unit under `<key>` (`text`); `None` when neither is given.
pub(super) fn seconds(
    parent: &str,
    key: &str,
    secs: Option<f64>,
    text: Option<&Duration>,
) -> Result<Option<Seconds>, Error> {
    let key_s = format!("{key}_s");
    let (field_s, field) = (join(parent, &key_s), join(parent, key));
    match (secs, text) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(both_forms(&field_s, &field, &key_s, key)),
        (Some(value), None) => Ok(Some(Seconds {
            value,
            field: field_s,
        })),
        (None, Some(Duration(v))) => Ok(Some(Seconds {
            value: parse_value(&field, &key_s, v)?,
            field,
        })),
    }
}

/// [`seconds`] for a key that must be given; `example` is a time text for the fix
/// (`"10 min"`).
pub(super) fn required_seconds(
    parent: &str,
    key: &str,
    secs: Option<f64>,
    text: Option<&Duration>,
    example: &str,
) -> Result<Seconds, Error> {
    seconds(parent, key, secs, text)?.ok_or_else(|| {
        let value = parse_seconds(example).expect("examples are valid times");
        Error::new(
            ErrorKind::MissingKey,
            join(parent, &format!("{key}_s")),
            "required key is missing",
        )
        .fix(format!(
            "add `{key}_s = {}` (seconds) or `{key} = \"{example}\"` (units: {})",
            short(value),
            unit_names()
        ))
    })
}

/// [`seconds`] for an array of times (`times_s = [0, 3600]` or `times = ["0 h", "1 h"]`):
/// the values in s and the key they came from; an entry's error names its index.
pub(super) fn seconds_list(
    parent: &str,
    key: &str,
    secs: Option<&[f64]>,
    text: Option<&[Duration]>,
) -> Result<Option<(Vec<f64>, String)>, Error> {
    let key_s = format!("{key}_s");
    let (field_s, field) = (join(parent, &key_s), join(parent, key));
    match (secs, text) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(both_forms(&field_s, &field, &key_s, key)),
        (Some(v), None) => Ok(Some((v.to_vec(), field_s))),
        (None, Some(items)) => {
            let values = items
                .iter()
                .enumerate()
                .map(|(i, Duration(v))| parse_value(&format!("{field}[{i}]"), &key_s, v))
                .collect::<Result<Vec<f64>, Error>>()?;
            Ok(Some((values, field)))
        }
    }
}

/// The pattern of a table path for [`TIME_KEYS`]: `dosing[2]` → `dosing[]`.
fn table_pattern(segs: &[Seg]) -> String {
    let mut out = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(_) => out.push_str("[]"),
        }
    }
    out
}

/// The key without `_s` if `key` is either form of a time key of `table` (a pattern).
fn time_key(table: &str, key: &str) -> Option<&'static str> {
    TIME_KEYS
        .iter()
        .find(|(t, k)| *t == table && (key == *k || key.strip_suffix("_s") == Some(k)))
        .map(|(_, k)| *k)
}

/// The table at `path` (dotted keys, no indices) inside `root`, if it is one.
fn table_at_mut<'a>(root: &'a mut toml::Table, path: &str) -> Option<&'a mut toml::Table> {
    path.split('.').try_fold(root, |t, k| {
        t.get_mut(k).and_then(toml::Value::as_table_mut)
    })
}

fn table_at<'a>(root: &'a toml::Table, path: &str) -> Option<&'a toml::Table> {
    path.split('.')
        .try_fold(root, |t, k| t.get(k).and_then(toml::Value::as_table))
}

/// Before a file's table `upper` is merged over `lower` (the files it includes): every
/// time key that `upper` writes in either form is removed from `lower` in both forms, so
/// the including file's `end = "24 h"` replaces an included `end_s = 600` as any other
/// value would be replaced. (`[[dosing]]` arrays are replaced whole by the merge anyway.)
pub(super) fn drop_replaced_forms(lower: &mut toml::Table, upper: &toml::Table) {
    for (table, key) in TIME_KEYS {
        if table.contains('[') {
            continue;
        }
        let key_s = format!("{key}_s");
        let Some(up) = table_at(upper, table) else {
            continue;
        };
        if !(up.contains_key(key) || up.contains_key(&key_s)) {
            continue;
        }
        if let Some(low) = table_at_mut(lower, table) {
            low.remove(key);
            low.remove(&key_s);
        }
    }
}

/// Before the `--set`s are applied: a `--set` of either form of a time key (`time.end=24h`,
/// `dosing[0].time_s=60`) removes both forms from the files' tree, so it replaces the
/// file's value whichever form that used. Two `--set`s of both forms still meet (error).
pub(super) fn drop_forms_set(root: &mut toml::Value, segs: &[Seg]) {
    let Some((Seg::Key(last), parent)) = segs.split_last() else {
        return;
    };
    let Some(key) = time_key(&table_pattern(parent), last) else {
        return;
    };
    let mut cur = root;
    for seg in parent {
        let next = match (seg, cur) {
            (Seg::Key(k), toml::Value::Table(t)) => t.get_mut(k),
            (Seg::Index(i), toml::Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else { return };
        cur = next;
    }
    if let toml::Value::Table(t) = cur {
        t.remove(key);
        t.remove(&format!("{key}_s"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;
    use crate::config::*;

    #[test]
    fn parses_numbers_with_units() {
        for (text, s) in [
            ("24 h", 86400.0),
            ("30 min", 1800.0),
            ("0.5 s", 0.5),
            ("2 d", 172800.0),
            ("2h", 7200.0),
            ("  1.5e3 s ", 1500.0),
            ("0 s", 0.0),
            ("1e-1 min", 6.0),
        ] {
            assert_eq!(parse_seconds(text), Ok(s), "{text}");
        }
        for (text, problem) in [
            ("24", "has no unit"),
            ("24 hours", "unknown unit `hours`"),
            ("24 H", "unknown unit `H`"),
            ("h", "does not start with a number"),
            ("twelve h", "does not start with a number"),
            ("1,5 h", "does not start with a number"),
            ("-2 h", "negative"),
            ("inf h", "not a finite time"),
            ("nan s", "not a finite time"),
            ("1e999 s", "not a finite time"),
            ("", "has no unit"),
        ] {
            let e = parse_seconds(text).expect_err(text);
            assert!(e.contains(problem), "{text}: {e}");
        }
    }

    #[test]
    fn human_times() {
        assert_eq!(human(0.5), "0.5 s");
        assert_eq!(human(45.0), "45 s");
        assert_eq!(human(119.0), "119 s");
        assert_eq!(human(750.0), "12.5 min");
        assert_eq!(human(11700.0), "3.25 h");
        assert_eq!(human(86400.0), "24 h");
        assert_eq!(human(216000.0), "2.5 d");
        assert_eq!(human(-300.0), "-5 min");
        assert_eq!(human_in(0.0, 86400.0), "0 h");
        assert_eq!(human_in(1800.0, 86400.0), "0.5 h");
        assert_eq!(human_in(90.0, 600.0), "1.5 min");
    }

    /// `time.spin_up_tolerance_per_h` needs a spin-up to end; with `spin_up = 0` (the
    /// spin-up turned off) it is moot.
    #[test]
    fn spin_up_tolerance_needs_a_spin_up() {
        let text = default_plus("").replacen(
            "end_s = 600.0",
            "end_s = 600.0\nspin_up_tolerance_per_h = 0.01",
            1,
        );
        let e = load_str(&text, FILE, &[])
            .expect_err("no spin-up to end")
            .to_string();
        assert!(
            e.contains("time.spin_up_tolerance_per_h") && e.contains("without time.spin_up_s"),
            "{e}"
        );
        let off = load_str(&text, FILE, &["time.spin_up_s=0".into()]).expect("spin-up off");
        assert_eq!(off.spin_up, None);
        let on = load_str(&text, FILE, &["time.spin_up=\"2 h\"".into()]).expect("loads");
        let spin = on.spin_up.expect("a spin-up");
        assert_eq!((spin.settle_per_h, spin.window_s()), (Some(0.01), 720.0));
    }

    /// Every time key takes the unit form and gives the same scenario as the seconds form.
    #[test]
    fn unit_forms_give_the_same_scenario() {
        let plain = default_plus(
            "summary_interval_s = 30.0\n[output.figure]\nfields = [\"O2\"]\ntimes_s = [0, 600]\n\
             [[dosing]]\nspecies = \"O2\"\ntime_s = 240.0\nshape = \"sphere\"\n\
             centre_um = [320.0, 320.0, 320.0]\nradius_um = 50.0\namount_mm = 0.01\n",
        )
        .replacen(
            "end_s = 600.0",
            "end_s = 600.0\nspin_up_s = 7200.0\nspin_up_dt_s = 2.0",
            1,
        );
        let units = plain
            .replacen("dt_s = 1.0", "dt = \"1 s\"", 1)
            .replacen("end_s = 600.0", "end = \"10 min\"", 1)
            .replacen("output_interval_s = 120.0", "output_interval = \"2min\"", 1)
            .replacen("spin_up_s = 7200.0", "spin_up = \"2 h\"", 1)
            .replacen("spin_up_dt_s = 2.0", "spin_up_dt = \"2 s\"", 1)
            .replacen(
                "summary_interval_s = 30.0",
                "summary_interval = \"0.5 min\"",
                1,
            )
            .replacen("times_s = [0, 600]", "times = [\"0 s\", \"10 min\"]", 1)
            .replacen("time_s = 240.0", "time = \"4 min\"", 1);
        for (_, key) in TIME_KEYS {
            assert!(
                !units.contains(&format!("\n{key}_s = ")),
                "{key}_s left:\n{units}"
            );
        }
        let a = load_str(&plain, FILE, &[]).expect("seconds form loads");
        let b = load_str(&units, FILE, &[]).expect("unit form loads");
        assert_eq!(a.time, b.time);
        assert_eq!(a.spin_up, b.spin_up);
        assert_eq!(a.doses[0].time_s, 240.0);
        assert_eq!(a.doses[0].time_s, b.doses[0].time_s);
        assert_eq!(a.output.summary_interval_s, Some(30.0));
        assert_eq!(a.output.summary_interval_s, b.output.summary_interval_s);
        assert_eq!(a.output.figure, b.output.figure);
        assert_eq!(b.spin_up.expect("spin-up").duration_s, 7200.0);
    }

    #[test]
    fn both_forms_in_one_file_is_an_error_naming_both() {
        let text = edited(&[("end_s = 600.0", "end_s = 600.0\nend = \"10 min\"")]);
        let msg = check(&load_err(&text, &[]), "time.end");
        assert!(
            msg.contains("`time.end_s`") && msg.contains("`time.end`"),
            "{msg}"
        );
        let line = line_of(&text, "end = \"10 min\"");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
        // Both from --set: an error located at the --set.
        let e = load_err(BASE, &["time.end_s=60", "time.end=1min"]);
        let msg = e.to_string();
        assert!(msg.contains("--set time.end=1min"), "{msg}");
        assert!(msg.contains("`time.end_s`"), "{msg}");
    }

    #[test]
    fn bad_time_text_names_file_key_found_and_units() {
        let text = edited(&[("end_s = 600.0", "end = \"10 minutes\"")]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::InvalidValue);
        let msg = check(&e, "time.end");
        let line = line_of(&text, "10 minutes");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
        assert!(msg.contains("found \"10 minutes\""), "{msg}");
        assert!(msg.contains("unknown unit `minutes`"), "{msg}");
        assert!(msg.contains("units: s, min, h, d"), "{msg}");
        assert!(msg.contains("under `end_s`"), "{msg}");
        // A bare number under the unit form: refused with the fix, not taken as seconds.
        let text = edited(&[("dt_s = 1.0", "dt = 1.0")]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::WrongType);
        let msg = check(&e, "time.dt");
        assert!(
            msg.contains("found float 1.0") && msg.contains("dt_s"),
            "{msg}"
        );
        // An array entry names its index and offers the array's seconds form.
        let text = default_plus("[output.figure]\nfields = [\"O2\"]\ntimes = [\"0 s\", \"5\"]");
        let msg = check(&load_err(&text, &[]), "output.figure.times[1]");
        assert!(
            msg.contains("has no unit") && msg.contains("under `times_s`"),
            "{msg}"
        );
        // A later check names the key the user wrote.
        let msg = check(&load_err(BASE, &["time.end=0 s"]), "time.end");
        assert!(msg.contains("must be > 0"), "{msg}");
    }

    #[test]
    fn missing_time_offers_both_forms() {
        let text = edited(&[("end_s = 600.0\n", "")]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::MissingKey);
        let msg = check(&e, "time.end_s");
        assert!(msg.contains("end = \"10 min\""), "{msg}");
    }

    /// `deny_unknown_fields` still refuses unknown keys and suggests both forms.
    #[test]
    fn unknown_keys_still_suggest() {
        let text = edited(&[("end_s = 600.0", "ennd = \"10 min\"")]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::UnknownKey);
        let msg = check(&e, "time.ennd");
        assert!(msg.contains("did you mean `end`?"), "{msg}");
        assert!(
            msg.contains("`end_s`") && msg.contains("`spin_up`"),
            "{msg}"
        );
        let text = edited(&[("output_interval_s = 120.0", "output_intervall = \"2 min\"")]);
        let msg = check(&load_err(&text, &[]), "time.output_intervall");
        assert!(msg.contains("did you mean `output_interval`?"), "{msg}");
        let text = edited(&[("end_s = 600.0", "edn_s = 600.0")]);
        let msg = check(&load_err(&text, &[]), "time.edn_s");
        assert!(msg.contains("did you mean `end_s`?"), "{msg}");
    }

    /// An including file's or a --set's form replaces the other form underneath it.
    #[test]
    fn later_file_or_set_replaces_either_form() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("base.toml"), BASE).expect("write");
        let top =
            "include = [\"base.toml\"]\n[time]\nend = \"1 h\"\noutput_interval = \"30 min\"\n";
        let path = dir.path().join("top.toml");
        std::fs::write(&path, top).expect("write");
        let s = load_file(&path, &[]).expect("the including file's unit form wins");
        assert_eq!(s.time.end_s, 3600.0);
        assert_eq!(s.time.output_interval_s, 1800.0);
        assert_eq!(
            s.time.dt_s, 1.0,
            "other keys still come from the included file"
        );
        let (s, origins) =
            load_file_with_origins(&path, &["time.end_s=7200".into()]).expect("--set wins");
        assert_eq!(s.time.end_s, 7200.0);
        let paths: Vec<&str> = origins.iter().map(|o| o.path.as_str()).collect();
        assert!(
            paths.contains(&"time.end_s") && !paths.contains(&"time.end"),
            "{paths:?}"
        );
        assert!(paths.contains(&"time.output_interval"), "{paths:?}");
        let s = load_str(BASE, FILE, &["time.end=2h".into()]).expect("--set of the unit form");
        assert_eq!(s.time.end_s, 7200.0);
        let doses = default_plus(
            "[[dosing]]\nspecies = \"O2\"\ntime_s = 60.0\nshape = \"sphere\"\n\
             centre_um = [320.0, 320.0, 320.0]\nradius_um = 50.0\namount_mm = 0.01\n",
        );
        let s = load_str(&doses, FILE, &["dosing[0].time=3 min".into()]).expect("dose time");
        assert_eq!(s.doses[0].time_s, 180.0);
    }

    /// The coupled scheme's first step is the resolved `dt` and its longest step takes a
    /// unit too.
    #[test]
    fn coupled_scheme_steps_take_units() {
        let sets = ["time.scheme=coupled", "time.dt=2 s", "time.max_dt=10 min"].map(String::from);
        let s = load_str(BASE, FILE, &sets).expect("loads");
        assert_eq!(
            s.time.scheme,
            Scheme::Coupled {
                rtol: super::super::time::DEFAULT_TOLERANCE,
                first_dt_s: 2.0,
                max_dt_s: Some(600.0),
                adaptive: true
            }
        );
        let msg = check(&load_err(BASE, &["time.max_dt=10 min"]), "time.max_dt");
        assert!(msg.contains("coupled"), "{msg}");
    }

    #[test]
    fn time_keys_exist_in_the_schema() {
        // Each listed key, in either form, is a known key: an unknown one would fail with
        // UnknownKey, a known one with something else (or load).
        for (table, key) in TIME_KEYS {
            for k in [key.to_string(), format!("{key}_s")] {
                let path = format!("{}.{k}", table.replace("[]", "[0]"));
                let value = if k.ends_with("_s") { "-1" } else { "\"-1 s\"" };
                let value = if key == "times" {
                    format!("[{value}]")
                } else {
                    value.into()
                };
                let doses = default_plus(
                    "[output.figure]\nfields = [\"O2\"]\n[[dosing]]\nspecies = \"O2\"\n\
                     shape = \"sphere\"\ncentre_um = [320.0, 320.0, 320.0]\nradius_um = 50.0\n\
                     amount_mm = 0.01\n",
                );
                let e = load_err(&doses, &[&format!("{path}={value}")]);
                assert!(
                    !matches!(e.kind, ErrorKind::UnknownKey | ErrorKind::BadSet),
                    "{path}: {e}"
                );
            }
        }
    }
}
