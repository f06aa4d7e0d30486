//! Scenario reactions → one expression graph: names resolved, units checked, quasi-steady
//! species eliminated, buffering applied, right-hand side and Jacobian built.

use super::did_you_mean;
use super::graph::{Graph, Id};
use super::input::NetworkInput;
use super::parse::{parse_expr, Ast, BinOp};
use super::{CompileError, Dim, Network, SyntaxError};

/// Function names a rate expression may call.
pub const FUNCTIONS: [&str; 12] = [
    "exp", "log", "log10", "sqrt", "abs", "min", "max", "pow", "hill", "mm", "step", "clamp",
];

const LN10: f64 = std::f64::consts::LN_10;
/// Floor of a quasi-steady loss rate, 1/s (keeps P/L finite when nothing consumes it).
const QSS_MIN_LOSS: f64 = 1e-30;
/// Floor of H (mM) inside pH = 3 − log10(H), so pH stays finite when H reaches 0.
const PH_MIN_H_MM: f64 = 1e-20;

struct Lowering<'a> {
    scenario: NetworkInput<'a>,
    /// Dimension of each species' concentration.
    species_dims: Vec<Dim>,
    /// Dimension of each parameter.
    param_dims: Vec<Dim>,
    /// Species behind `pH`, if any.
    proton: Option<usize>,
}

fn err(
    column: usize,
    problem: impl Into<String>,
    found: Option<String>,
    fix: impl Into<String>,
) -> SyntaxError {
    SyntaxError {
        column,
        problem: problem.into(),
        found,
        fix: fix.into(),
    }
}

/// Unifies the dimensions of two operands that must agree (`+`, `-`, `min`, `max`).
/// `None` is a bare number, which takes the other side's unit.
fn unify(
    a: Option<Dim>,
    b: Option<Dim>,
    col: usize,
    what: &str,
) -> Result<Option<Dim>, SyntaxError> {
    match (a, b) {
        (Some(x), Some(y)) if x != y => Err(err(
            col,
            format!("{what} mixes units: {x} and {y}"),
            None,
            "both sides must have the same unit; check the parameters' `unit` entries",
        )),
        (Some(x), _) | (_, Some(x)) => Ok(Some(x)),
        _ => Ok(None),
    }
}

fn dimless(d: Option<Dim>, col: usize, what: &str) -> Result<(), SyntaxError> {
    match d {
        Some(x) if !x.is_none() => Err(err(
            col,
            format!("{what} needs a dimensionless argument, but it is in {x}"),
            None,
            "divide by a reference value of the same unit (e.g. `H / H_ref`), or use `pH` for acidity",
        )),
        _ => Ok(()),
    }
}

impl Lowering<'_> {
    fn species_ix(&self, name: &str) -> Option<usize> {
        self.scenario.species.iter().position(|s| s.name == name)
    }
    fn param_ix(&self, name: &str) -> Option<usize> {
        self.scenario.parameters.iter().position(|p| p.name == name)
    }

    /// Value of an expression made only of numbers and uniform parameters (exponents).
    fn const_value(&self, ast: &Ast) -> Option<f64> {
        match ast {
            Ast::Num(v) => Some(*v),
            Ast::Name { name, .. } => {
                let p = &self.scenario.parameters[self.param_ix(name)?];
                p.is_uniform().then(|| p.value_by_tissue[0])
            }
            Ast::Neg(a) => Some(-self.const_value(a)?),
            Ast::Bin { op, lhs, rhs, .. } => {
                let (a, b) = (self.const_value(lhs)?, self.const_value(rhs)?);
                Some(match op {
                    BinOp::Add => a + b,
                    BinOp::Sub => a - b,
                    BinOp::Mul => a * b,
                    BinOp::Div => a / b,
                    BinOp::Pow => a.powf(b),
                })
            }
            Ast::Call { .. } => None,
        }
    }

    /// A constant exponent as a number node (so x^(n−1) folds and pow(0, 0) never runs).
    fn exponent(&self, g: &mut Graph, id: Id, ast: &Ast) -> Id {
        match self.const_value(ast) {
            Some(v) => g.num(v),
            None => id,
        }
    }

    /// Whether a denominator can be zero for non-negative concentrations.
    fn can_be_zero(&self, ast: &Ast) -> bool {
        match ast {
            Ast::Num(v) => *v == 0.0,
            Ast::Name { name, .. } => match self.param_ix(name) {
                Some(p) => self.scenario.parameters[p].value_by_tissue.contains(&0.0),
                None => name != "pH",
            },
            Ast::Neg(a) => self.can_be_zero(a),
            Ast::Bin { op, lhs, rhs, .. } => match op {
                BinOp::Add => self.can_be_zero(lhs) && self.can_be_zero(rhs),
                BinOp::Mul => self.can_be_zero(lhs) || self.can_be_zero(rhs),
                BinOp::Div | BinOp::Pow => self.can_be_zero(lhs),
                BinOp::Sub => true,
            },
            Ast::Call { func, args, .. } => match func.as_str() {
                "exp" => false,
                "max" => args.iter().all(|a| self.can_be_zero(a)),
                "sqrt" | "abs" | "pow" => args.first().is_none_or(|a| self.can_be_zero(a)),
                _ => true,
            },
        }
    }

    fn lower(&self, g: &mut Graph, ast: &Ast) -> Result<(Id, Option<Dim>), SyntaxError> {
        Ok(match ast {
            Ast::Num(v) => (g.num(*v), None),
            Ast::Name { name, col } => self.name(g, name, *col)?,
            Ast::Neg(a) => {
                let (x, d) = self.lower(g, a)?;
                (g.neg(x), d)
            }
            Ast::Bin { op, lhs, rhs, col } => {
                let (a, da) = self.lower(g, lhs)?;
                let (b, db) = self.lower(g, rhs)?;
                match op {
                    BinOp::Add => (g.add(a, b), unify(da, db, *col, "`+`")?),
                    BinOp::Sub => (g.sub(a, b), unify(da, db, *col, "`-`")?),
                    BinOp::Mul => (g.mul(a, b), mul_dims(da, db)),
                    BinOp::Div => {
                        if self.can_be_zero(rhs) {
                            return Err(err(
                                *col,
                                "division by a quantity that can be zero (a species can reach 0)",
                                None,
                                "add a positive constant to the denominator (`K + GSH`) or guard it (`max(GSH, 1e-12)`)",
                            ));
                        }
                        (g.div(a, b), mul_dims(da, db.map(|d| d.powi(-1, 1))))
                    }
                    BinOp::Pow => {
                        let d = self.pow_dims(da, db, rhs, *col)?;
                        let e = self.exponent(g, b, rhs);
                        (g.pow(a, e), d)
                    }
                }
            }
            Ast::Call { func, args, col } => self.call(g, func, args, *col)?,
        })
    }

    fn pow_dims(
        &self,
        base: Option<Dim>,
        exp: Option<Dim>,
        exp_ast: &Ast,
        col: usize,
    ) -> Result<Option<Dim>, SyntaxError> {
        dimless(exp, col, "an exponent")?;
        match base {
            Some(d) if !d.is_none() => {
                let Some(p) = self.const_value(exp_ast) else {
                    return Err(err(
                        col,
                        format!("a quantity in {d} can only be raised to a constant power"),
                        None,
                        "make the base dimensionless (e.g. `(S / K)^n`) or use a number or uniform parameter as the exponent",
                    ));
                };
                d.checked_pow(p).map(Some).ok_or_else(|| {
                    err(
                        col,
                        format!("{d} raised to {p} is not a whole number of sixths of a unit"),
                        None,
                        "make the base dimensionless, e.g. `(S / K)^n`",
                    )
                })
            }
            _ => Ok(base),
        }
    }

    fn name(
        &self,
        g: &mut Graph,
        name: &str,
        col: usize,
    ) -> Result<(Id, Option<Dim>), SyntaxError> {
        if let Some(s) = self.species_ix(name) {
            return Ok((g.species(s), Some(self.species_dims[s])));
        }
        if let Some(p) = self.param_ix(name) {
            return Ok((g.param(p), Some(self.param_dims[p])));
        }
        if name == "pH" {
            let Some(h) = self.proton else {
                return Err(err(
                    col,
                    "`pH` needs a proton species",
                    Some(name.into()),
                    "add a [buffer] with `proton = \"H\"`, or a species named `H` (free H+ in mM)",
                ));
            };
            // pH = 3 − log10(H): H in mM.
            let hx = g.species(h);
            let floor = g.num(PH_MIN_H_MM);
            let hm = g.max(hx, floor);
            let l = g.ln(hm);
            let k = g.num(1.0 / LN10);
            let lg = g.mul(l, k);
            let three = g.num(3.0);
            return Ok((g.sub(three, lg), Some(Dim::NONE)));
        }
        let candidates = self
            .scenario
            .species
            .iter()
            .map(|s| s.name.as_str())
            .chain(self.scenario.parameters.iter().map(|p| p.name.as_str()))
            .chain(["pH"]);
        let hint = did_you_mean(name, candidates);
        Err(err(
            col,
            format!("unknown name `{name}`{hint}"),
            Some(name.into()),
            "use a species, a parameter from [parameters], or `pH`; define new parameters as `name = { value = …, unit = \"…\" }` under [parameters]",
        ))
    }

    fn call(
        &self,
        g: &mut Graph,
        func: &str,
        args: &[Ast],
        col: usize,
    ) -> Result<(Id, Option<Dim>), SyntaxError> {
        let arity = match func {
            "exp" | "log" | "log10" | "sqrt" | "abs" | "step" => 1,
            "min" | "max" | "pow" | "mm" => 2,
            "hill" | "clamp" => 3,
            _ => {
                return Err(err(
                    col,
                    format!(
                        "unknown function `{func}`{}",
                        did_you_mean(func, FUNCTIONS.iter().copied())
                    ),
                    Some(func.into()),
                    format!("use one of {}", FUNCTIONS.join(", ")),
                ))
            }
        };
        if args.len() != arity {
            return Err(err(
                col,
                format!("`{func}` takes {arity} argument(s), got {}", args.len()),
                Some(func.into()),
                signature(func),
            ));
        }
        let lowered = args
            .iter()
            .map(|a| self.lower(g, a))
            .collect::<Result<Vec<_>, _>>()?;
        let (x, dx) = lowered[0];
        Ok(match func {
            "exp" => {
                dimless(dx, col, "exp")?;
                (g.exp(x), Some(Dim::NONE))
            }
            "log" | "log10" => {
                dimless(dx, col, func)?;
                if self.can_be_zero(&args[0]) {
                    return Err(err(
                        col,
                        format!("`{func}` of a quantity that can be zero"),
                        None,
                        "guard the argument, e.g. `log(max(x, 1e-12))`",
                    ));
                }
                let l = g.ln(x);
                if func == "log10" {
                    let k = g.num(1.0 / LN10);
                    (g.mul(l, k), Some(Dim::NONE))
                } else {
                    (l, Some(Dim::NONE))
                }
            }
            "sqrt" => {
                let d = match dx {
                    Some(d) => Some(d.checked_pow(0.5).ok_or_else(|| {
                        err(
                            col,
                            format!("sqrt of {d} is not a whole number of sixths of a unit"),
                            None,
                            "check the units",
                        )
                    })?),
                    None => None,
                };
                (g.sqrt(x), d)
            }
            "abs" => (g.abs(x), dx),
            "step" => (g.step(x), Some(Dim::NONE)),
            "min" | "max" => {
                let (y, dy) = lowered[1];
                let d = unify(dx, dy, col, func)?;
                (
                    if func == "min" {
                        g.min(x, y)
                    } else {
                        g.max(x, y)
                    },
                    d,
                )
            }
            "pow" => {
                let (y, dy) = lowered[1];
                let d = self.pow_dims(dx, dy, &args[1], col)?;
                let e = self.exponent(g, y, &args[1]);
                (g.pow(x, e), d)
            }
            "mm" => {
                // x / (K + x)
                let (k, dk) = lowered[1];
                unify(dx, dk, col, "mm(x, K)")?;
                if self.can_be_zero(&args[1]) {
                    return Err(err(
                        col,
                        "mm(x, K) needs K > 0",
                        None,
                        "give K a positive value",
                    ));
                }
                let den = g.add(k, x);
                (g.div(x, den), Some(Dim::NONE))
            }
            "hill" => {
                // x^n / (K^n + x^n)
                let (k, dk) = lowered[1];
                let (n, dn) = lowered[2];
                unify(dx, dk, col, "hill(x, K, n)")?;
                dimless(dn, col, "the Hill exponent")?;
                if self.can_be_zero(&args[1]) {
                    return Err(err(
                        col,
                        "hill(x, K, n) needs K > 0",
                        None,
                        "give K a positive value",
                    ));
                }
                let n = self.exponent(g, n, &args[2]);
                let xn = g.pow(x, n);
                let kn = g.pow(k, n);
                let den = g.add(kn, xn);
                (g.div(xn, den), Some(Dim::NONE))
            }
            "clamp" => {
                let (lo, dl) = lowered[1];
                let (hi, dh) = lowered[2];
                let d = unify(dx, dl, col, "clamp")?;
                let d = unify(d, dh, col, "clamp")?;
                let m = g.max(x, lo);
                (g.min(m, hi), d)
            }
            _ => unreachable!("arity table covers every function"),
        })
    }
}

fn mul_dims(a: Option<Dim>, b: Option<Dim>) -> Option<Dim> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(Dim::NONE).times(b.unwrap_or(Dim::NONE))),
    }
}

fn signature(func: &str) -> String {
    match func {
        "min" | "max" => format!("write `{func}(a, b)`"),
        "pow" => "write `pow(x, n)` or `x^n`".into(),
        "mm" => "write `mm(S, K)` = S/(K + S)".into(),
        "hill" => "write `hill(S, K, n)` = S^n/(K^n + S^n)".into(),
        "clamp" => "write `clamp(x, lo, hi)`".into(),
        _ => format!("write `{func}(x)`"),
    }
}

fn compile_error(field: String, e: SyntaxError) -> CompileError {
    CompileError {
        field,
        problem: format!("at character {}: {}", e.column, e.problem),
        found: e.found,
        fix: e.fix,
    }
}

pub fn compile(sc: NetworkInput) -> Result<Network, CompileError> {
    let n_species = sc.species.len();
    let species_dims = sc
        .species
        .iter()
        .map(|s| super::parse_unit(&s.unit).unwrap_or(Dim::MM))
        .collect();
    let param_dims = sc
        .parameters
        .iter()
        .enumerate()
        .map(|(i, p)| {
            super::parse_unit(&p.unit)
                .map_err(|e| compile_error(format!("parameters.{}.unit", sc.parameters[i].name), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let proton = sc
        .buffer
        .map(|b| b.proton)
        .or_else(|| sc.species.iter().position(|s| s.name == "H"));
    let low = Lowering {
        scenario: sc,
        species_dims,
        param_dims,
        proton,
    };
    let mut g = Graph::default();

    // Net stoichiometry ν[species][reaction] and the rate node of each reaction.
    let mut nu = vec![vec![0.0f64; sc.reactions.len()]; n_species];
    let mut rates = Vec::with_capacity(sc.reactions.len());
    let mut touching = vec![Vec::new(); n_species];
    for (j, r) in sc.reactions.iter().enumerate() {
        for &(s, c) in &r.reactants {
            nu[s][j] -= c;
        }
        for &(s, c) in &r.products {
            nu[s][j] += c;
        }
        for &(s, _) in r.reactants.iter().chain(&r.products) {
            if !touching[s].contains(&r.name) {
                touching[s].push(r.name.clone());
            }
        }
        let field = format!("reactions.{}.rate", r.name);
        let ast = parse_expr(&r.rate).map_err(|e| compile_error(field.clone(), e))?;
        let (mut rate, dim) = low
            .lower(&mut g, &ast)
            .map_err(|e| compile_error(field.clone(), e))?;
        // Every species of the equation must share one unit U; the rate is then U/s.
        let mut want = Dim::RATE;
        if let Some(&(s, _)) = r.reactants.iter().chain(&r.products).next() {
            want = low.species_dims[s].times(Dim {
                s: -super::parse::SIXTHS,
                ..Dim::NONE
            });
        }
        if let Some(d) = dim {
            if d != want {
                return Err(CompileError {
                    field,
                    problem: format!("the rate is in {d}, but it must be in {want} (concentration per second)"),
                    found: Some(r.rate.clone()),
                    fix: "check the parameters' units: a first-order constant is `1/s`, a second-order one `1/(mM*s)`, a zero-order rate `mM/s`".into(),
                });
            }
        }
        if let Some(ts) = &r.tissues {
            let mask = ts.iter().fold(0u32, |m, &t| m | (1 << t));
            let gate = g.gate(mask);
            rate = g.mul(gate, rate);
        }
        if r.viable_only {
            let viab = sc
                .species
                .iter()
                .position(|s| s.name == "viab")
                .ok_or_else(|| CompileError {
                    field: format!("reactions.{}.where", r.name),
                    problem: "`viable` needs a species named `viab` (viable fraction)".into(),
                    found: None,
                    fix: "add [species.viab] with unit = \"1\", or use `where = \"everywhere\"`"
                        .into(),
                })?;
            let v = g.species(viab);
            rate = g.mul(v, rate);
        }
        rates.push(rate);
    }

    // Quasi-steady species: q = P/L, then substituted into every rate.
    let mut qss = Vec::new();
    for (q, sp) in sc
        .species
        .iter()
        .enumerate()
        .filter(|(_, s)| s.quasi_steady)
    {
        let mut p = g.num(0.0);
        let mut l = g.num(0.0);
        for (j, r) in sc.reactions.iter().enumerate() {
            let c = nu[q][j];
            let field = format!("reactions.{}.rate", r.name);
            if c > 0.0 {
                if g.depends_on(rates[j], q) {
                    return Err(CompileError {
                        field,
                        problem: format!("the rate of a reaction that produces quasi-steady `{}` must not depend on it", sp.name),
                        found: Some(r.rate.clone()),
                        fix: format!("remove `{}` from this rate, or set quasi_steady = false for it", sp.name),
                    });
                }
                let cn = g.num(c);
                let t = g.mul(cn, rates[j]);
                p = g.add(p, t);
            } else if c < 0.0 {
                let d = g.diff(rates[j], q);
                if !g.depends_on(rates[j], q) || g.depends_on(d, q) {
                    return Err(CompileError {
                        field,
                        problem: format!("a reaction that consumes quasi-steady `{}` must have a rate proportional to it (k·{}·…)", sp.name, sp.name),
                        found: Some(r.rate.clone()),
                        fix: format!("write the rate as `{}` times terms without `{}`, or set quasi_steady = false", sp.name, sp.name),
                    });
                }
                let cn = g.num(-c);
                let t = g.mul(cn, d);
                l = g.add(l, t);
            }
        }
        for later in sc
            .species
            .iter()
            .enumerate()
            .skip(q + 1)
            .filter(|(_, s)| s.quasi_steady)
        {
            if g.depends_on(p, later.0) || g.depends_on(l, later.0) {
                return Err(CompileError {
                    field: format!("species.{}.quasi_steady", sp.name),
                    problem: format!("quasi-steady `{}` depends on quasi-steady `{}`, which is declared after it", sp.name, later.1.name),
                    found: None,
                    fix: "declare quasi-steady species in the order they feed each other".into(),
                });
            }
        }
        let floor = g.num(QSS_MIN_LOSS);
        let lf = g.max(l, floor);
        let value = g.div(p, lf);
        for r in rates.iter_mut() {
            *r = g.substitute(*r, q, value);
        }
        qss.push((q, value));
    }

    // State: non-quasi-steady species changed by some reaction, plus the buffer species.
    let mut state: Vec<usize> = (0..n_species)
        .filter(|&s| !sc.species[s].quasi_steady && nu[s].iter().any(|&c| c != 0.0))
        .collect();
    if let Some(b) = sc.buffer {
        for s in std::iter::once(b.proton).chain(b.bicarbonate) {
            if !state.contains(&s) {
                state.push(s);
            }
        }
        state.sort_unstable();
    }
    let mut rhs: Vec<Id> = state
        .iter()
        .map(|&s| {
            let mut f = g.num(0.0);
            for (j, &c) in nu[s].iter().enumerate() {
                if c != 0.0 {
                    let cn = g.num(c);
                    let t = g.mul(cn, rates[j]);
                    f = g.add(f, t);
                }
            }
            f
        })
        .collect();
    let mut proton_diagonal = None;
    if let Some(b) = sc.buffer {
        // R23: dH/dt = ln10·H/β·S_H, β = β_nb + 2.303·HCO3; R23b: HCO3 −= S_H·2.303·HCO3/β.
        let ih = state
            .iter()
            .position(|&s| s == b.proton)
            .expect("proton is in the state");
        let s_h = rhs[ih];
        let mut beta = g.num(b.beta_nb_mm_per_ph);
        let k2303 = g.num(2.303);
        let hco3_term = b.bicarbonate.map(|c| {
            let x = g.species(c);
            g.mul(k2303, x)
        });
        if let Some(t) = hco3_term {
            beta = g.add(beta, t);
        }
        let h = g.species(b.proton);
        let ln10 = g.num(LN10);
        let lh = g.mul(ln10, h);
        let factor = g.div(lh, beta);
        rhs[ih] = g.mul(factor, s_h);
        // ∂(dH/dt)/∂H without the growth term ln10·S_H/β where it is positive (below).
        let ds_dh = g.diff(s_h, b.proton);
        let kept = g.mul(factor, ds_dh);
        let l_sh = g.mul(ln10, s_h);
        let growth = g.div(l_sh, beta);
        let zero = g.num(0.0);
        let damping = g.min(growth, zero);
        proton_diagonal = Some((ih, g.add(kept, damping)));
        if let (Some(c), Some(t)) = (b.bicarbonate, hco3_term) {
            let ic = state
                .iter()
                .position(|&s| s == c)
                .expect("bicarbonate is in the state");
            let frac = g.div(t, beta);
            let loss = g.mul(s_h, frac);
            rhs[ic] = g.sub(rhs[ic], loss);
        }
    }
    let laws = conservation_laws(&state, &nu, sc.buffer);
    let mut jac = Vec::with_capacity(state.len() * state.len());
    for &f in &rhs {
        for &k in &state {
            jac.push(g.diff(f, k));
        }
    }
    // The buffered proton row: dH/dt = ln10·H/β·S_H grows H at the rate ln10·S_H/β under a
    // net acid load (pH falls linearly, H exponentially). That positive eigenvalue makes
    // W = σ − J singular where σ = 1/(γh) meets it (h of 100–500 s in an acidic tumour),
    // and the coupled scheme's linear solves fail there. The Jacobian keeps that term only
    // where it damps (S_H < 0); ROS2 (γ = 1 + 1/√2) stays second order for any W
    // (a W-method: Verwer et al. 1999, SIAM J. Sci. Comput. 20:1456), so only the step
    // control sees the growth, as it would any slow non-stiff change.
    if let Some((ih, d)) = proton_diagonal {
        jac[ih * state.len() + ih] = d;
    }
    let mut inputs: Vec<usize> = (0..n_species)
        .filter(|s| !state.contains(s) && !sc.species[*s].quasi_steady)
        .filter(|&s| {
            rhs.iter()
                .chain(qss.iter().map(|(_, v)| v))
                .any(|&f| g.depends_on(f, s))
        })
        .collect();
    inputs.sort_unstable();
    let params = sc
        .parameters
        .iter()
        .map(|p| p.value_by_tissue.clone())
        .collect();
    let projector = projector(&laws, state.len());
    let atol_mm = state
        .iter()
        .map(|&s| sc.species[s].atol_mm.unwrap_or(sc.chemistry.atol_mm))
        .collect();
    Ok(Network {
        graph: g,
        atol_mm,
        laws,
        projector,
        state,
        inputs,
        qss,
        rhs,
        jac,
        params,
        touching,
        n_tissues: sc.n_tissues,
        species_names: sc.species.iter().map(|s| s.name.clone()).collect(),
        param_names: sc.parameters.iter().map(|p| p.name.clone()).collect(),
        param_notes: sc
            .parameters
            .iter()
            .map(|p| {
                if p.source.is_empty() {
                    p.unit.clone()
                } else {
                    format!("{}; {}", p.unit, p.source)
                }
            })
            .collect(),
        reaction_text: sc
            .reactions
            .iter()
            .map(|r| (r.name.clone(), r.equation.clone(), r.rate.clone()))
            .collect(),
        spec: sc.chemistry,
    })
}

/// Conserved totals of the stoichiometry: a basis of the vectors w (over the state) with
/// w·ν_j = 0 for every reaction j, scaled so the largest entry is 1. Buffered species take
/// no part (buffering changes H+ and HCO3- outside the stoichiometry).
pub fn conservation_laws(
    state: &[usize],
    nu: &[Vec<f64>],
    buffer: Option<&super::input::Buffer>,
) -> Vec<Vec<f64>> {
    let n = state.len();
    let buffered = |s: usize| buffer.is_some_and(|b| b.proton == s || b.bicarbonate == Some(s));
    let cols: Vec<usize> = (0..n).filter(|&i| !buffered(state[i])).collect();
    let n_r = nu.first().map_or(0, Vec::len);
    // A (reactions × cols): A[j][c] = ν[state[cols[c]]][j]; null space of A.
    let mut a: Vec<Vec<f64>> = (0..n_r)
        .map(|j| cols.iter().map(|&c| nu[state[c]][j]).collect())
        .collect();
    let m = cols.len();
    let mut pivots = Vec::new();
    let mut row = 0;
    for c in 0..m {
        let Some(p) = (row..a.len()).max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs()))
        else {
            break;
        };
        if a[p][c].abs() < 1e-12 {
            continue;
        }
        a.swap(row, p);
        let d = a[row][c];
        for v in a[row].iter_mut() {
            *v /= d;
        }
        for r in 0..a.len() {
            if r != row && a[r][c] != 0.0 {
                let f = a[r][c];
                let pivot_row = a[row].clone();
                for (x, p) in a[r].iter_mut().zip(&pivot_row) {
                    *x -= f * p;
                }
            }
        }
        pivots.push(c);
        row += 1;
    }
    let mut laws = Vec::new();
    for free in (0..m).filter(|c| !pivots.contains(c)) {
        let mut w = vec![0.0; n];
        w[cols[free]] = 1.0;
        for (r, &pc) in pivots.iter().enumerate() {
            w[cols[pc]] = -a[r][free];
        }
        let max = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        laws.push(
            w.into_iter()
                .map(|v| if v.abs() < 1e-12 { 0.0 } else { v / max })
                .collect(),
        );
    }
    laws
}

/// P = Qᵀ·Q for an orthonormal basis Q of the laws (row-major n × n): the part of an
/// increment that would change a conserved total. Empty when nothing is conserved.
fn projector(laws: &[Vec<f64>], n: usize) -> Vec<f64> {
    let mut q: Vec<Vec<f64>> = Vec::new();
    for w in laws {
        let mut v = w.clone();
        for u in &q {
            let d: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            for (vi, ui) in v.iter_mut().zip(u) {
                *vi -= d * ui;
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-12 {
            q.push(v.into_iter().map(|x| x / norm).collect());
        }
    }
    if q.is_empty() {
        return Vec::new();
    }
    let mut p = vec![0.0; n * n];
    for u in &q {
        for i in 0..n {
            for k in 0..n {
                p[i * n + k] += u[i] * u[k];
            }
        }
    }
    p
}
