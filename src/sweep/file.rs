//! The sweep file: reading, checking every key, and parsing axes (lists, linear and log
//! spacings, LHS ranges).

use std::path::Path;

use super::design::{latin_hypercube, linspace, logspace};
use super::{Axis, Mode, Spacing, Sweep, SweepError, Value};

const KEYS: &[&str] = &["name", "base", "set", "mode", "seed", "samples", "axes"];

/// Most runs one sweep file may expand to (and most values of one axis): a sweep is
/// expanded, validated and written to sweep.json in full before any run, so a typo such as
/// `n = 100000000000` must be refused before anything is allocated. Split bigger designs
/// into several sweep files.
pub const MAX_RUNS: usize = 100_000;

impl Sweep {
    /// Reads and validates a sweep file.
    pub fn load(path: &Path) -> Result<Sweep, SweepError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SweepError {
            file: file.clone(),
            field: String::new(),
            problem: format!("cannot read the sweep file ({e})"),
            fix: "check the path (relative paths start from the current directory)".into(),
        })?;
        Sweep::parse(&text, &file)
    }

    /// Parses and validates sweep-file text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Sweep, SweepError> {
        let err = |field: &str, problem: String, fix: &str| SweepError {
            file: file.to_string(),
            field: field.to_string(),
            problem,
            fix: fix.to_string(),
        };
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            err(
                "",
                format!("not valid TOML: {}", e.message()),
                "correct the TOML syntax",
            )
        })?;
        for key in table.keys() {
            if !KEYS.contains(&key.as_str()) {
                return Err(err(
                    key,
                    "unknown key".into(),
                    &format!(
                        "use one of {} (keys at the top level, no [sweep] table)",
                        KEYS.join(", ")
                    ),
                ));
            }
        }
        let string = |key: &str| -> Result<Option<String>, SweepError> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
                Some(v) => Err(err(
                    key,
                    format!("must be a non-empty string, found {v}"),
                    &format!("write {key} = \"...\""),
                )),
            }
        };
        let name = string("name")?.ok_or_else(|| {
            err(
                "name",
                "missing".into(),
                "add name = \"my_sweep\" (the default output folder is out/<name>/)",
            )
        })?;
        if name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(err(
                "name",
                format!("must be a plain folder name, found {name:?}"),
                "use letters, digits, _ and - only",
            ));
        }
        let base = string("base")?.ok_or_else(|| {
            err(
                "base",
                "missing".into(),
                "add base = \"fe_fenton_cdt\" (a preset from `ionfield list`) or a scenario path relative to the sweep file",
            )
        })?;
        let set = match table.get("set") {
            None => vec![],
            Some(toml::Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) if s.contains('=') => Ok(s.clone()),
                    other => Err(err(
                        "set",
                        format!("every entry must be a string \"key=value\", found {other}"),
                        "write set = [\"time.end_s=120\", \"grid.shape=[16,16,16]\"]",
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(v) => {
                return Err(err(
                    "set",
                    format!("must be an array of strings, found {v}"),
                    "write set = [\"time.end_s=120\"]",
                ))
            }
        };
        let mode = match string("mode")?.as_deref() {
            None | Some("cartesian") => Mode::Cartesian,
            Some("zip") => Mode::Zip,
            Some("lhs") => Mode::Lhs,
            Some(other) => {
                return Err(err(
                    "mode",
                    format!("unknown mode {other:?}"),
                    "use \"cartesian\" (every combination), \"zip\" (i-th values together) or \"lhs\" (Latin hypercube)",
                ))
            }
        };
        let int = |key: &str| -> Result<Option<i64>, SweepError> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::Integer(i)) if *i >= 0 => Ok(Some(*i)),
                Some(v) => Err(err(
                    key,
                    format!("must be a non-negative integer, found {v}"),
                    &format!("write {key} = 7"),
                )),
            }
        };
        let seed = int("seed")?;
        let samples = int("samples")?;
        if mode != Mode::Lhs {
            for (key, v) in [("seed", seed), ("samples", samples)] {
                if v.is_some() {
                    return Err(err(
                        key,
                        "only used with mode = \"lhs\"".into(),
                        &format!("remove {key}, or set mode = \"lhs\""),
                    ));
                }
            }
        }
        let samples = match (mode, samples) {
            (Mode::Lhs, None | Some(0)) => {
                return Err(err(
                    "samples",
                    "mode = \"lhs\" needs the number of runs, at least 1".into(),
                    "add samples = 12",
                ))
            }
            (Mode::Lhs, Some(n)) if n as u64 > MAX_RUNS as u64 => {
                return Err(err(
                    "samples",
                    format!("samples = {n} is more than the {MAX_RUNS} runs one sweep may have"),
                    &format!("use at most samples = {MAX_RUNS}, or split the design into several sweep files"),
                ))
            }
            (_, s) => s.unwrap_or(0) as usize,
        };
        let axes_table = match table.get("axes") {
            Some(toml::Value::Table(t)) if !t.is_empty() => t,
            Some(toml::Value::Table(_)) | None => {
                return Err(err(
                    "axes",
                    "no axes: a sweep needs at least one swept key".into(),
                    "add [axes] with \"dotted.key\" = [values] or { log = [lo, hi, n] }",
                ))
            }
            Some(v) => {
                return Err(err(
                    "axes",
                    format!("must be a table, found {v}"),
                    "write [axes] and one \"dotted.key\" = [...] per line",
                ))
            }
        };
        let mut axes = Vec::new();
        for (key, v) in axes_table {
            axes.push(parse_axis(key, v, mode, file)?);
        }
        if mode == Mode::Cartesian {
            let total = axes
                .iter()
                .try_fold(1usize, |acc, a| acc.checked_mul(a.values.len()))
                .filter(|&t| t <= MAX_RUNS);
            if total.is_none() {
                let sizes: Vec<String> = axes.iter().map(|a| a.values.len().to_string()).collect();
                return Err(err(
                    "axes",
                    format!(
                        "every combination of {} values is more than the {MAX_RUNS} runs one sweep may have",
                        sizes.join(" × ")
                    ),
                    "use fewer values per axis, mode = \"lhs\" with samples, or split the design into several sweep files",
                ));
            }
        }
        if mode == Mode::Zip {
            let n = axes[0].values.len();
            if let Some(a) = axes.iter().find(|a| a.values.len() != n) {
                return Err(err(
                    &format!("axes.\"{}\"", a.key),
                    format!(
                        "has {} values but axes.\"{}\" has {n}; mode = \"zip\" pairs the i-th values",
                        a.values.len(),
                        axes[0].key
                    ),
                    "give every axis the same number of values, or use mode = \"cartesian\"",
                ));
            }
        }
        let mut sweep = Sweep {
            file: file.to_string(),
            name,
            base,
            set,
            mode,
            seed: seed.unwrap_or(0) as u64,
            samples,
            axes,
        };
        if mode == Mode::Lhs {
            let ranges: Vec<(f64, f64, bool)> = sweep
                .axes
                .iter()
                .map(|a| match a.spacing {
                    Spacing::Log { lo, hi, .. } => (lo, hi, true),
                    Spacing::Linear { lo, hi, .. } => (lo, hi, false),
                    Spacing::List => unreachable!("lhs axes are ranges (checked in parse_axis)"),
                })
                .collect();
            let samples = latin_hypercube(&ranges, sweep.samples, sweep.seed);
            for (axis, values) in sweep.axes.iter_mut().zip(samples) {
                axis.values = values.into_iter().map(Value::num).collect();
            }
        }
        Ok(sweep)
    }
}

fn parse_axis(key: &str, v: &toml::Value, mode: Mode, file: &str) -> Result<Axis, SweepError> {
    let field = format!("axes.\"{key}\"");
    let err = |problem: String, fix: &str| SweepError {
        file: file.to_string(),
        field: field.clone(),
        problem,
        fix: fix.to_string(),
    };
    if key.trim().is_empty() || key.contains('=') {
        return Err(err(
            "not a dotted key".into(),
            "name the key as for --set, e.g. \"dosing[0].amount_mm\"",
        ));
    }
    match v {
        toml::Value::Array(list) => {
            if mode == Mode::Lhs {
                return Err(err(
                    "mode = \"lhs\" samples ranges, not lists".into(),
                    "write { linear = [lo, hi] } or { log = [lo, hi] }",
                ));
            }
            if list.is_empty() {
                return Err(err("empty list".into(), "give at least one value"));
            }
            if list.len() > MAX_RUNS {
                return Err(err(
                    format!(
                        "{} values is more than the {MAX_RUNS} runs one sweep may have",
                        list.len()
                    ),
                    "split the design into several sweep files",
                ));
            }
            Ok(Axis {
                key: key.to_string(),
                spacing: Spacing::List,
                values: list.iter().map(Value::of).collect(),
            })
        }
        toml::Value::Table(t) => {
            let (kind, args) = match (t.len(), t.iter().next()) {
                (1, Some((k, toml::Value::Array(a)))) if k == "log" || k == "linear" => {
                    (k.as_str(), a)
                }
                _ => {
                    return Err(err(
                        format!("unknown spacing {v}"),
                        "write { log = [lo, hi, n] }, { linear = [lo, hi, n] } or a list [a, b, c] (lhs: { log = [lo, hi] })",
                    ))
                }
            };
            let nums: Option<Vec<f64>> = args
                .iter()
                .map(|x| match x {
                    toml::Value::Float(f) => Some(*f),
                    toml::Value::Integer(i) => Some(*i as f64),
                    _ => None,
                })
                .collect();
            let want = if mode == Mode::Lhs { 2 } else { 3 };
            let shape = if mode == Mode::Lhs {
                format!("{{ {kind} = [lo, hi] }} (lhs draws `samples` values)")
            } else {
                format!("{{ {kind} = [lo, hi, n] }} with n the number of values")
            };
            let nums = match nums {
                Some(n) if n.len() == want => n,
                _ => {
                    return Err(err(
                        format!("{kind} takes {want} numbers, found {v}"),
                        &shape,
                    ))
                }
            };
            let (lo, hi) = (nums[0], nums[1]);
            if !lo.is_finite() || !hi.is_finite() || (kind == "log" && (lo <= 0.0 || hi <= 0.0)) {
                return Err(err(
                    format!("{kind} range [{lo}, {hi}] is not usable"),
                    if kind == "log" {
                        "log spacing needs lo > 0 and hi > 0"
                    } else {
                        "give finite numbers"
                    },
                ));
            }
            let n = if want == 3 {
                let n = nums[2];
                if n < 1.0 || n.fract() != 0.0 {
                    return Err(err(
                        format!("n = {n} is not a positive whole number"),
                        &shape,
                    ));
                }
                if n > MAX_RUNS as f64 {
                    return Err(err(
                        format!(
                            "n = {n} values is more than the {MAX_RUNS} runs one sweep may have"
                        ),
                        &format!(
                            "use n ≤ {MAX_RUNS}, or split the design into several sweep files"
                        ),
                    ));
                }
                Some(n as usize)
            } else {
                None
            };
            let values = match n {
                Some(n) if kind == "log" => logspace(lo, hi, n),
                Some(n) => linspace(lo, hi, n),
                None => vec![],
            };
            Ok(Axis {
                key: key.to_string(),
                spacing: if kind == "log" {
                    Spacing::Log { lo, hi, n }
                } else {
                    Spacing::Linear { lo, hi, n }
                },
                values: values.into_iter().map(Value::num).collect(),
            })
        }
        other => Err(err(
            format!("must be a list or a spacing table, found {other}"),
            "write [1e-4, 1e-3] or { log = [0.01, 1.0, 7] }",
        )),
    }
}
