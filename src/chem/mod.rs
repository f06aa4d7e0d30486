//! Reaction networks as data: rate expressions and equations parsed once, compiled to
//! generated WGSL (GPU) and to an f64 tape (CPU reference) from the same expression graph,
//! so the two back ends cannot drift.
//!
//! Front end (used by `config` validation): [`parse_equation`], [`parse_unit`],
//! [`Network::compile`]. Errors carry the 1-based character column in the string.
//!
//! Path: rate strings → [`parse`] (AST) → [`network`] (names, units, quasi-steady
//! elimination, buffering) → [`graph`] (one DAG holding the right-hand side f and its
//! Jacobian J) → [`tape`] (f64 evaluator, CPU) and [`wgsl`] (generated kernel, GPU); both
//! integrate with the same Rosenbrock scheme ([`ros2`] on the CPU, `shaders/react_ros2.wgsl`).

pub mod graph;
pub mod input;
pub mod lanes;
pub mod network;
pub mod parse;
pub mod ros2;
pub mod sparse;
pub mod tape;
pub mod wgsl;

use graph::{Graph, Id};
use input::{ChemistrySpec, NetworkInput};

/// " (did you mean `x`?)" for the candidate closest to `word`, or "" when none is close:
/// Jaro–Winkler catches typos in long keys; the edit distance catches short names (`O3` →
/// `O2`) where one wrong character already drops Jaro–Winkler below the cut. Shared with
/// `config` error messages.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let lower = word.to_lowercase();
    let close = |c: &str| {
        let c = c.to_lowercase();
        let edits = strsim::levenshtein(&lower, &c);
        let score = strsim::jaro_winkler(&lower, &c);
        (score >= 0.8 || edits <= (lower.chars().count() / 3).max(1)).then_some(score)
    };
    let best = candidates
        .into_iter()
        .filter(|c| *c != word)
        .filter_map(|c| close(c).map(|score| (score, c)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, c)) => format!(" (did you mean `{c}`?)"),
        None => String::new(),
    }
}

/// A mistake in one chemistry string (equation, unit or rate expression).
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    /// 1-based character column in the string where the problem starts.
    pub column: usize,
    /// What is wrong (`unknown name`, `expected ')'`).
    pub problem: String,
    /// The offending text, if any.
    pub found: Option<String>,
    /// What to change (may contain a "did you mean" suggestion).
    pub fix: String,
}

/// Left and right side of `A + 2 B -> C`, names as written, coefficients > 0.
#[derive(Clone, Debug, PartialEq)]
pub struct Equation {
    pub reactants: Vec<(String, f64)>,
    pub products: Vec<(String, f64)>,
}

/// Parses `Fe2 + H2O2 -> Fe3 + OH`, `2 GSH + H2O2 -> GSSG`, `-> H2O2`, `OH ->`.
pub fn parse_equation(text: &str) -> Result<Equation, SyntaxError> {
    parse::parse_equation(text)
}

/// Physical dimension as exponents of (mM, s, µm, K), in sixths (so mM^(2/3) is exact).
/// Kelvin is for temperatures (the Pennes field and Arrhenius factors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Dim {
    pub mm: i32,
    pub s: i32,
    pub um: i32,
    pub k: i32,
}

/// Parses a unit: `1`, `mM`, `1/s`, `mM/s`, `1/(mM*s)`, `mM^-1 s^-1`, `um^2/s`, `mM/pH`.
pub fn parse_unit(text: &str) -> Result<Dim, SyntaxError> {
    parse::parse_unit(text)
}

/// A failure to compile the network of a scenario, naming the TOML field.
#[derive(Clone, Debug, PartialEq)]
pub struct CompileError {
    /// Dotted TOML field, e.g. `reactions.fenton.rate`.
    pub field: String,
    /// The error within the string at that field, column included in `problem`.
    pub problem: String,
    pub found: Option<String>,
    pub fix: String,
}

/// The compiled network of a scenario: dy/dt = f(y) for the state species, J = ∂f/∂y, and
/// the quasi-steady species as functions of the state. Species indices are the scenario's.
#[derive(Clone, Debug)]
pub struct Network {
    pub graph: Graph,
    /// Integrated species, in state order.
    pub state: Vec<usize>,
    /// Species the rates read but no reaction changes (e.g. `viab`, a catalyst field).
    pub inputs: Vec<usize>,
    /// Quasi-steady species and the node of their value P/L.
    pub qss: Vec<(usize, Id)>,
    /// f_i, mM/s, one node per state species.
    pub rhs: Vec<Id>,
    /// J_ik = ∂f_i/∂y_k, 1/s, row-major over the state.
    pub jac: Vec<Id>,
    /// Absolute tolerance of each state species, mM.
    pub atol_mm: Vec<f64>,
    /// Conserved totals implied by the stoichiometry (weights over the state).
    pub laws: Vec<Vec<f64>>,
    /// Projector onto the conserved directions (row-major n × n, empty if none): every
    /// sub-step increment has this part removed, so rounding cannot drift the totals.
    pub projector: Vec<f64>,
    /// Parameter values by tissue id.
    pub params: Vec<Vec<f64>>,
    /// Names of the reactions whose equation contains each species (for error reports).
    pub touching: Vec<Vec<String>>,
    pub n_tissues: usize,
    pub species_names: Vec<String>,
    pub param_names: Vec<String>,
    /// `unit; source` of each parameter, for comments in the generated WGSL.
    pub param_notes: Vec<String>,
    /// (name, equation, rate) of each reaction as written.
    pub reaction_text: Vec<(String, String, String)>,
    pub spec: ChemistrySpec,
}

impl Network {
    /// Parses every rate, resolves names (species, parameters, `pH`, `viab`), checks units
    /// (rates must be mM/s), the linearity of quasi-steady species and guards on divisions.
    pub fn compile(input: NetworkInput) -> Result<Network, CompileError> {
        network::compile(input)
    }

    /// Species the react step reads or writes: state, inputs, quasi-steady, in that order.
    pub fn bound_species(&self) -> Vec<usize> {
        self.state
            .iter()
            .chain(&self.inputs)
            .copied()
            .chain(self.qss.iter().map(|&(q, _)| q))
            .collect()
    }

    /// Names of the given species, comma-separated, or `none`.
    pub fn names(&self, species: impl IntoIterator<Item = usize>) -> String {
        let names: Vec<&str> = species
            .into_iter()
            .map(|s| self.species_names[s].as_str())
            .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    }

    /// The conserved totals as text, e.g. `Fe2 + Fe3`.
    pub fn describe_laws(&self) -> Vec<String> {
        self.laws
            .iter()
            .map(|w| {
                let mut terms = Vec::new();
                for (i, &c) in w.iter().enumerate() {
                    if c == 0.0 {
                        continue;
                    }
                    let name = &self.species_names[self.state[i]];
                    let sign = if c < 0.0 { "- " } else { "+ " };
                    let mag = c.abs();
                    let coef = if (mag - 1.0).abs() < 1e-12 {
                        String::new()
                    } else {
                        format!("{mag}·")
                    };
                    terms.push(format!("{sign}{coef}{name}"));
                }
                let s = terms.join(" ");
                s.strip_prefix("+ ").map(str::to_string).unwrap_or(s)
            })
            .collect()
    }

    /// One line per reaction name list, for failure reports.
    pub fn reactions_touching(&self, species: usize) -> String {
        let t = &self.touching[species];
        if t.is_empty() {
            "no reaction".into()
        } else {
            t.join(", ")
        }
    }
}
