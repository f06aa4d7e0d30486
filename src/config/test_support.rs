//! What config's unit tests share: the scenarios they edit and the check that an error is
//! one line naming the file, the field and a fix.

use super::{load_str, Error, Parameter, Reaction, Scenario};

/// Diffusion-only scenario the tests edit (the built-in default has a network).
pub(super) const BASE: &str = include_str!("testdata/base.toml");

pub(super) const FILE: &str = "scenario.toml";

/// The default scenario with each `(from, to)` replaced once (each `from` must occur).
pub(super) fn edited(edits: &[(&str, &str)]) -> String {
    let mut text = BASE.to_string();
    for (from, to) in edits {
        assert!(text.contains(from), "test edit `{from}` not found");
        text = text.replacen(from, to, 1);
    }
    text
}

pub(super) fn load_err(text: &str, sets: &[&str]) -> Error {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    match load_str(text, FILE, &sets) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

/// One line, names the file and the field, has a fix.
pub(super) fn check(e: &Error, field: &str) -> String {
    let msg = e.to_string();
    assert!(msg.starts_with(FILE), "{msg}");
    assert!(
        msg.contains(&format!(": {field}: ")),
        "field `{field}` not in: {msg}"
    );
    assert!(msg.contains("Fix: "), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    assert_eq!(e.field, field);
    msg
}

pub(super) fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle in text")
        + 1
}

// ---- chemistry: [parameters], [reactions], [buffer], [chemistry], quasi_steady ----
// Tests marked (chem) call chem::parse_unit / parse_equation / Network::compile.

pub(super) const FENTON: &str = include_str!("../../configs/wellmixed_fenton.toml");

/// The well-mixed Fenton example with each `(from, to)` replaced once.
pub(super) fn fenton(edits: &[(&str, &str)]) -> String {
    let mut text = FENTON.to_string();
    for (from, to) in edits {
        assert!(text.contains(from), "test edit `{from}` not found");
        text = text.replacen(from, to, 1);
    }
    text
}

/// The default scenario (tissues `normal`, `tumour`; species `O2`, `glucose`) plus
/// `extra` TOML at the end.
pub(super) fn default_plus(extra: &str) -> String {
    format!("{BASE}\n{extra}\n")
}

pub(super) fn parameter<'a>(s: &'a Scenario, name: &str) -> &'a Parameter {
    s.parameters
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("parameter {name}"))
}

pub(super) fn reaction<'a>(s: &'a Scenario, name: &str) -> &'a Reaction {
    s.reactions
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("reaction {name}"))
}
