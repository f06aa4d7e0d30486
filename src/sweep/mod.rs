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

pub mod gather;
pub mod plot;

use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;

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

/// `n` values from `lo` to `hi` evenly spaced; the ends are exactly `lo` and `hi`.
pub fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    match n {
        0 => vec![],
        1 => vec![lo],
        _ => (0..n)
            .map(|i| {
                if i + 1 == n {
                    hi
                } else {
                    lo + (hi - lo) * i as f64 / (n - 1) as f64
                }
            })
            .collect(),
    }
}

/// `n` values from `lo` to `hi` evenly spaced in log10; the ends are exactly `lo` and
/// `hi`, and the inner values are 10^(log10 lo + i·step) (0.01, 1, 3 → 0.01, 0.1, 1).
pub fn logspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let (a, b) = (lo.log10(), hi.log10());
    linspace(a, b, n)
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            if i == 0 {
                lo
            } else if i + 1 == n {
                hi
            } else {
                // Round to 15 significant digits so 10^-1 prints as 0.1, not 0.09999999999999999.
                let v = 10f64.powf(e);
                format!("{v:.14e}").parse().unwrap_or(v)
            }
        })
        .collect()
}

/// SplitMix64 (Steele, Lea & Flood 2014): a small seeded generator, the same on every
/// platform.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform integer in 0..n (n > 0), by rejection (no modulo bias).
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }
}

/// Latin hypercube samples: for each (lo, hi, log) range, `samples` values, one in each
/// of `samples` equal strata (in log10 for log ranges), the strata in a random order. The
/// same seed gives the same samples. Result: `[axis][sample]`.
pub fn latin_hypercube(ranges: &[(f64, f64, bool)], samples: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = SplitMix64(seed);
    ranges
        .iter()
        .map(|&(lo, hi, log)| {
            let mut strata: Vec<usize> = (0..samples).collect();
            for i in (1..samples).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                strata.swap(i, j);
            }
            let (a, b) = if log {
                (lo.log10(), hi.log10())
            } else {
                (lo, hi)
            };
            strata
                .into_iter()
                .map(|s| {
                    let u = (s as f64 + rng.next_f64()) / samples as f64;
                    let x = a + (b - a) * u;
                    if log {
                        10f64.powf(x)
                    } else {
                        x
                    }
                })
                .collect()
        })
        .collect()
}

/// The run id: `r0003-1a2b3c4d` (the index with at least 4 digits, then the first 8 hex
/// digits of the SHA-256 of the assignments written `key=value` one per line).
pub fn run_id(index: usize, assignments: &[(String, String)]) -> String {
    let mut text = String::new();
    for (k, v) in assignments {
        text.push_str(k);
        text.push('=');
        text.push_str(v);
        text.push('\n');
    }
    let hash = Sha256::digest(text.as_bytes());
    let hex: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("r{index:04}-{hex}")
}

const KEYS: &[&str] = &["name", "base", "set", "mode", "seed", "samples", "axes"];

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

    /// Every run, in index order.
    pub fn runs(&self) -> Vec<Run> {
        let n_axes = self.axes.len();
        let combos: Vec<Vec<usize>> = match self.mode {
            Mode::Zip | Mode::Lhs => (0..self.axes[0].values.len())
                .map(|i| vec![i; n_axes])
                .collect(),
            Mode::Cartesian => {
                let mut combos = vec![vec![]];
                for axis in &self.axes {
                    combos = combos
                        .into_iter()
                        .flat_map(|c| {
                            (0..axis.values.len()).map(move |i| {
                                let mut c = c.clone();
                                c.push(i);
                                c
                            })
                        })
                        .collect();
                }
                combos
            }
        };
        combos
            .into_iter()
            .enumerate()
            .map(|(index, c)| {
                let assignments: Vec<(String, String)> = self
                    .axes
                    .iter()
                    .zip(&c)
                    .map(|(a, &i)| (a.key.clone(), a.values[i].text.clone()))
                    .collect();
                Run {
                    index,
                    run_id: run_id(index, &assignments),
                    assignments,
                }
            })
            .collect()
    }

    /// `sweep.json`: the expansion (ids, assignments), the base and the fixed sets. The
    /// same sweep file gives the same bytes on every worker.
    pub fn json(&self) -> String {
        let runs = self.runs();
        let axes: Vec<serde_json::Value> = self
            .axes
            .iter()
            .map(|a| {
                let (spacing, lo, hi) = match a.spacing {
                    Spacing::List => ("list", None, None),
                    Spacing::Linear { lo, hi, .. } => ("linear", Some(lo), Some(hi)),
                    Spacing::Log { lo, hi, .. } => ("log", Some(lo), Some(hi)),
                };
                serde_json::json!({
                    "key": a.key,
                    "spacing": spacing,
                    "lo": lo,
                    "hi": hi,
                    "values": a.values.iter().map(|v| v.text.clone()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let runs: Vec<serde_json::Value> = runs
            .iter()
            .map(|r| {
                let mut assignments = serde_json::Map::new();
                for (k, v) in &r.assignments {
                    assignments.insert(k.clone(), serde_json::Value::String(v.clone()));
                }
                serde_json::json!({
                    "index": r.index,
                    "run_id": r.run_id,
                    "assignments": assignments,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "name": self.name,
            "base": self.base,
            "set": self.set,
            "mode": self.mode,
            "seed": (self.mode == Mode::Lhs).then_some(self.seed),
            "samples": (self.mode == Mode::Lhs).then_some(self.samples),
            "axes": axes,
            "runs": runs,
        });
        let mut text = serde_json::to_string_pretty(&doc).expect("JSON values serialise");
        text.push('\n');
        text
    }

    /// `--list`: a header line, then `<index> <run_id> <key>=<value> ...` per run.
    pub fn listing(&self) -> String {
        let runs = self.runs();
        let mut text = format!(
            "# sweep {}: {} runs ({} mode) on base {}; index run_id assignments\n",
            self.name,
            runs.len(),
            match self.mode {
                Mode::Cartesian => "cartesian",
                Mode::Zip => "zip",
                Mode::Lhs => "lhs",
            },
            self.base
        );
        for r in &runs {
            text.push_str(&format!("{} {}", r.index, r.run_id));
            for s in r.sets() {
                text.push(' ');
                text.push_str(&s);
            }
            text.push('\n');
        }
        text
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

/// This worker's share of the runs: those with `index % count == index_of_worker`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// `I/N` as given to `--shard`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || {
            format!("--shard {text}: expected I/N with 0 ≤ I < N, e.g. --shard 0/4. Fix: give the worker index and the worker count")
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    pub fn contains(&self, run_index: usize) -> bool {
        run_index % self.count == self.index
    }

    /// The shard from the environment, read through `get`: a Slurm job array
    /// (`SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_MIN` (default 0), `SLURM_ARRAY_TASK_STEP`
    /// (default 1), `SLURM_ARRAY_TASK_COUNT`: shard (ID − MIN)/STEP of COUNT), else a
    /// Kubernetes indexed Job (`JOB_COMPLETION_INDEX` of `IONFIELD_SHARD_COUNT`, which the
    /// Job manifest sets to `completions`), else all runs (0/1). The second value says
    /// where the shard came from.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<(Shard, String), String> {
        let num = |name: &str| -> Result<Option<i64>, String> {
            match get(name) {
                None => Ok(None),
                Some(s) if s.trim().is_empty() => Ok(None),
                Some(s) => s.trim().parse().map(Some).map_err(|_| {
                    format!("environment variable {name}={s:?} is not an integer. Fix: unset it or give a whole number")
                }),
            }
        };
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1);
            let count = num("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
                "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not. Fix: run under `sbatch --array=...` (Slurm sets both), or pass --shard I/N".to_string()
            })?;
            if step < 1 || count < 1 || id < min || (id - min) % step != 0 {
                return Err(format!(
                    "Slurm array task {id} does not fit MIN {min}, STEP {step}, COUNT {count}. Fix: use a regular --array=A-B[:S] range, or pass --shard I/N"
                ));
            }
            let index = ((id - min) / step) as usize;
            if index >= count as usize {
                return Err(format!(
                    "Slurm array task {id} is shard {index} but SLURM_ARRAY_TASK_COUNT is {count}. Fix: use a regular --array=A-B[:S] range (no % limit changes this), or pass --shard I/N"
                ));
            }
            return Ok((
                Shard {
                    index,
                    count: count as usize,
                },
                format!("Slurm array task {id} (MIN {min}, STEP {step}, COUNT {count})"),
            ));
        }
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let count = num("IONFIELD_SHARD_COUNT")?.ok_or_else(|| {
                "JOB_COMPLETION_INDEX is set (Kubernetes indexed Job) but IONFIELD_SHARD_COUNT is not. Fix: set env IONFIELD_SHARD_COUNT to the Job's `completions` in the manifest, or pass --shard I/N".to_string()
            })?;
            if count < 1 || index < 0 || index >= count {
                return Err(format!(
                    "JOB_COMPLETION_INDEX {index} is not below IONFIELD_SHARD_COUNT {count}. Fix: set IONFIELD_SHARD_COUNT to the Job's `completions`"
                ));
            }
            return Ok((
                Shard {
                    index: index as usize,
                    count: count as usize,
                },
                format!("Kubernetes JOB_COMPLETION_INDEX {index} of IONFIELD_SHARD_COUNT {count}"),
            ));
        }
        Ok((
            Shard::ALL,
            "no --shard or array environment: all runs".into(),
        ))
    }
}

#[cfg(test)]
mod tests;
