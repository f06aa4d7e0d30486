//! Parameter sweeps (issue 7): a sweep file → a deterministic list of runs (each a set of
//! `--set` assignments on a base scenario), the share of one worker of a Slurm array or a
//! Kubernetes indexed Job ([`Shard`]), and the metrics/table of finished runs ([`gather`]).
//!
//! The sweep file is TOML with its keys at the top level:
//!
//! ```toml
//! name = "fe_dose"
//! base = "fe_fenton_cdt"          # preset name, or scenario path relative to this file
//! set = ["time.end_s=120"]        # fixed --set for every run
//! mode = "cartesian"              # cartesian | zip | lhs
//! [axes]
//! "dosing[0].amount_mm" = { log = [0.01, 1.0, 7] }
//! "parameters.k_d_Fe.value" = [1e-4, 1e-3]
//! ```
//!
//! Runs are numbered from 0; the first axis varies slowest in `cartesian` mode. A run's id
//! is `r<index, 4 digits>-<first 8 hex digits of the SHA-256 of its assignments>`, so it
//! is the same on every machine and for every sharding.

mod design;
mod file;
pub mod gather;
pub mod plot;
mod shard;

pub use design::{latin_hypercube, linspace, logspace, run_id};
pub use file::MAX_RUNS;
pub use shard::Shard;

use std::fmt;

/// A sweep file that cannot be used: names the file, the field and the fix.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepError {
    pub file: String,
    pub field: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for SweepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}. Fix: {}", self.file, self.problem, self.fix)
        } else {
            write!(
                f,
                "{}: {}: {}. Fix: {}",
                self.file, self.field, self.problem, self.fix
            )
        }
    }
}

impl std::error::Error for SweepError {}

/// How axis values combine into runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every combination; the first axis varies slowest.
    Cartesian,
    /// Run i takes value i of every axis (all axes the same length).
    Zip,
    /// Latin hypercube: `samples` runs, each axis range cut into `samples` equal strata
    /// (in log10 for `log` ranges), each stratum hit exactly once per axis.
    Lhs,
}

/// One value of an axis: its TOML literal (what `--set` receives) and its number, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub text: String,
    pub number: Option<f64>,
}

impl Value {
    fn of(v: &toml::Value) -> Value {
        let number = match v {
            toml::Value::Float(f) => Some(*f),
            toml::Value::Integer(i) => Some(*i as f64),
            _ => None,
        };
        Value {
            text: literal(v),
            number,
        }
    }
    fn num(x: f64) -> Value {
        Value::of(&toml::Value::Float(x))
    }
}

/// The TOML literal of a value (`0.01`, `"magma"`, `[16, 16, 16]`, `true`).
fn literal(v: &toml::Value) -> String {
    match v {
        toml::Value::Float(f) => fmt_float(*f),
        toml::Value::Array(a) => {
            format!("[{}]", a.iter().map(literal).collect::<Vec<_>>().join(","))
        }
        other => other.to_string(),
    }
}

/// Shortest round-trip text of a float, always a TOML float (`1.0`, `0.001`, `1e-7`).
pub fn fmt_float(f: f64) -> String {
    let s = format!("{f:?}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

/// How an axis was given, for sweep.json.
#[derive(Clone, Debug, PartialEq)]
pub enum Spacing {
    List,
    Linear { lo: f64, hi: f64, n: Option<usize> },
    Log { lo: f64, hi: f64, n: Option<usize> },
}

/// One swept key and its values (empty for an `lhs` range until sampled).
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// The dotted `--set` key, e.g. `dosing[0].amount_mm`.
    pub key: String,
    pub spacing: Spacing,
    pub values: Vec<Value>,
}

/// A parsed sweep file.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    /// Where it was read from (for errors).
    pub file: String,
    pub name: String,
    /// As written: a preset name or a scenario path relative to the sweep file.
    pub base: String,
    /// Fixed `--set`s applied to every run (before the run's own assignments).
    pub set: Vec<String>,
    pub mode: Mode,
    pub seed: u64,
    pub samples: usize,
    pub axes: Vec<Axis>,
}

/// One run of the expansion.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Run {
    pub index: usize,
    pub run_id: String,
    /// (key, TOML literal) in axis order.
    pub assignments: Vec<(String, String)>,
}

impl Run {
    /// The run's own `--set` arguments, `key=value`.
    pub fn sets(&self) -> Vec<String> {
        self.assignments
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

#[cfg(test)]
mod tests;
