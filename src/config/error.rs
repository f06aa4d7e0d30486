//! `config::Error`: one line naming the file, the place in it, the dotted field, what was
//! found and how to fix it.

use std::fmt;

/// What class of mistake an [`Error`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file is missing or unreadable.
    Io,
    /// Not valid TOML.
    Syntax,
    /// A key the schema does not know at that place.
    UnknownKey,
    /// A required key is absent.
    MissingKey,
    /// A value of the wrong TOML type (string where a number belongs, …).
    WrongType,
    /// A value of the right type that makes no physical sense or is inconsistent.
    InvalidValue,
    /// A `--set` argument that is malformed or names a key the schema does not allow.
    BadSet,
}

/// Where in the input an [`Error`] points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Unknown,
    /// 1-based line and column (column counted in characters) in the file.
    LineCol {
        line: usize,
        column: usize,
    },
    /// The value came from this `--set` argument, not from the file.
    Set(String),
}

/// A scenario that cannot be loaded. Display is one line:
/// `file[:line:col]: field: problem, found X. Fix: …` (or `file (--set a.b=v): …`).
/// The parts are read through `Deref` (`err.kind`, `err.field`, …); boxed so that
/// `Result<_, Error>` stays small.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct Error(Box<ErrorDetails>);

/// The parts of an [`Error`].
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorDetails {
    pub kind: ErrorKind,
    /// The scenario's source: a path or [`super::DEFAULT_SOURCE`].
    pub file: String,
    pub location: Location,
    /// Dotted TOML path of the offending key (`species.O2.diffusion_um2_per_s`,
    /// `vessels[2].radius_um`); empty when the error is not about one field.
    pub field: String,
    /// What is wrong, without the found value (`must be ≥ 0`).
    pub problem: String,
    /// The offending value as written, when there is one.
    pub found: Option<String>,
    /// What to change.
    pub fix: String,
}

impl Error {
    /// An error about `field`; `file` and `location` are filled in by the loader.
    pub(crate) fn new(
        kind: ErrorKind,
        field: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Error(Box::new(ErrorDetails {
            kind,
            file: String::new(),
            location: Location::Unknown,
            field: field.into(),
            problem: problem.into(),
            found: None,
            fix: String::new(),
        }))
    }

    pub(crate) fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidValue, field, problem)
    }

    /// The offending value; a number whose plain form is long (`1e-300` is written out
    /// by `f64`'s `Display` as 300 zeros) is shown in the short form [`short`].
    pub(crate) fn found(mut self, found: impl fmt::Display) -> Self {
        let s = found.to_string();
        self.found = Some(match s.parse::<f64>() {
            Ok(v) if s.len() > SHORT_LEN => short(v),
            _ => s,
        });
        self
    }

    pub(crate) fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = fix.into();
        self
    }
}

impl std::ops::Deref for Error {
    type Target = ErrorDetails;
    fn deref(&self) -> &ErrorDetails {
        &self.0
    }
}

impl std::ops::DerefMut for Error {
    fn deref_mut(&mut self) -> &mut ErrorDetails {
        &mut self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        match &self.location {
            Location::Unknown => {}
            Location::LineCol { line, column } => write!(f, ":{line}:{column}")?,
            Location::Set(arg) => {
                // A huge --set value (a generated rate expression) is shown by its head.
                if arg.chars().count() > SET_SHOWN {
                    let head: String = arg.chars().take(SET_SHOWN).collect();
                    write!(f, " ({head}… [{} characters])", arg.chars().count())?
                } else {
                    write!(f, " ({arg})")?
                }
            }
        }
        f.write_str(": ")?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(self.problem.trim_end_matches('.'))?;
        if let Some(found) = &self.found {
            write!(f, ", found {found}")?;
        }
        let fix = self.fix.trim();
        if fix.is_empty() {
            f.write_str(".")
        } else if fix.ends_with(['.', '?', '!']) {
            write!(f, ". Fix: {fix}")
        } else {
            write!(f, ". Fix: {fix}.")
        }
    }
}

pub(crate) use crate::chem::did_you_mean;

/// `v` as written by `{}` when that is short (`0.054`, `600`), else in exponent form
/// (`1e-300`, `1.7e28`): error messages stay one short line whatever the magnitude.
pub(crate) fn short(v: f64) -> String {
    let plain = v.to_string();
    let exp = format!("{v:e}");
    if plain.len() <= SHORT_LEN || exp.len() >= plain.len() {
        plain
    } else {
        exp
    }
}

/// Characters of a `--set` argument shown in an error's location.
const SET_SHOWN: usize = 100;

/// A count for an error message: whole, and in short exponent form when large
/// (`6.4e17`, not `640000000000000100`).
pub(crate) fn count(n: f64) -> String {
    let s = short(n.round());
    if s.len() <= 12 {
        s
    } else {
        let e = format!("{:.3e}", n);
        // 6.400e17 → 6.4e17
        match e.split_once('e') {
            Some((m, x)) if m.contains('.') => {
                format!("{}e{x}", m.trim_end_matches('0').trim_end_matches('.'))
            }
            _ => e,
        }
    }
}

/// Numbers up to this many characters are shown as `{}` writes them.
const SHORT_LEN: usize = 8;

/// "`a`, `b`, `c`" (or "none" for an empty list).
pub(crate) fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let v: Vec<String> = items.into_iter().map(|s| format!("`{s}`")).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_with_line_col() {
        let mut e = Error::invalid("species.O2.diffusion_um2_per_s", "must be ≥ 0")
            .found(-5.0)
            .fix("set a non-negative diffusion coefficient in µm²/s (0 = does not diffuse)");
        e.file = "scenario.toml".into();
        e.location = Location::LineCol {
            line: 12,
            column: 1,
        };
        assert_eq!(
            e.to_string(),
            "scenario.toml:12:1: species.O2.diffusion_um2_per_s: must be ≥ 0, found -5. \
             Fix: set a non-negative diffusion coefficient in µm²/s (0 = does not diffuse)."
        );
        e.location = Location::Unknown;
        assert!(e.to_string().starts_with("scenario.toml: species.O2"));
    }

    #[test]
    fn long_numbers_are_shown_short() {
        assert_eq!(short(0.054), "0.054");
        assert_eq!(short(600.0), "600");
        assert_eq!(short(1e-300), "1e-300");
        assert_eq!(short(1.7e28), "1.7e28");
        assert_eq!(short(1e-9), "1e-9");
        assert_eq!(short(4096000000.0), "4.096e9");
        assert_eq!(short(6000000.0), "6000000");
        assert_eq!(short(0.123456789), "0.123456789");
        assert_eq!(count(6.400000000000001e17), "6.4e17");
        assert_eq!(count(200001.0), "200001");
        let e = Error::invalid("grid.voxel_um", "too small").found(1e-300);
        assert_eq!(e.found.as_deref(), Some("1e-300"));
        let e = Error::invalid("name", "bad").found("\"a long name with spaces\"");
        assert_eq!(e.found.as_deref(), Some("\"a long name with spaces\""));
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("difusion_um2_per_s", ["unit", "diffusion_um2_per_s"]),
            " (did you mean `diffusion_um2_per_s`?)"
        );
        assert_eq!(did_you_mean("zzz", ["unit", "diffusion_um2_per_s"]), "");
        assert_eq!(
            did_you_mean("center_um", ["shape", "centre_um"]),
            " (did you mean `centre_um`?)"
        );
    }
}
