//! Recursive-descent parsers for the three chemistry languages: rate expressions
//! (`k_fenton * Fe2 * H2O2`), equations (`2 GSH + H2O2 -> GSSG`) and units (`1/(mM*s)`).
//! Every error carries the 1-based character column where it starts.

use super::{Dim, Equation, SyntaxError};

/// A parsed rate expression, before names are resolved. `col` fields are 1-based columns.
#[derive(Clone, Debug, PartialEq)]
pub enum Ast {
    Num(f64),
    Name {
        name: String,
        col: usize,
    },
    Neg(Box<Ast>),
    Bin {
        op: BinOp,
        lhs: Box<Ast>,
        rhs: Box<Ast>,
        col: usize,
    },
    Call {
        func: String,
        args: Vec<Ast>,
        col: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Op(char),
    Arrow,
    End,
}

/// Characters with their 1-based columns, then tokens with their columns.
fn lex(text: &str, allow_micro: bool) -> Result<Vec<(Tok, usize)>, SyntaxError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let s: String = chars[start..i].iter().collect();
            let v: f64 = s.parse().map_err(|_| SyntaxError {
                column: col,
                problem: "malformed number".into(),
                found: Some(s.clone()),
                fix: "write numbers like 0.07, 5 or 2.7e4".into(),
            })?;
            out.push((Tok::Num(v), col));
        } else if c.is_alphabetic() || c == '_' || (allow_micro && c == 'µ') {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), col));
        } else if c == '-' && chars.get(i + 1) == Some(&'>') {
            out.push((Tok::Arrow, col));
            i += 2;
        } else if "+-*/^(),".contains(c) {
            out.push((Tok::Op(c), col));
            i += 1;
        } else {
            return Err(SyntaxError {
                column: col,
                problem: "unexpected character".into(),
                found: Some(c.to_string()),
                fix: "use names, numbers, + - * / ^, parentheses and functions such as max(a, b)"
                    .into(),
            });
        }
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(v) => v.to_string(),
        Tok::Ident(s) => s.clone(),
        Tok::Op(c) => c.to_string(),
        Tok::Arrow => "->".into(),
        Tok::End => "the end".into(),
    }
}

/// Deepest rate expression or unit accepted: nesting of parentheses, calls, signs and
/// `^`, plus the length of a chain of `+ - * /` (each operator adds a level to the tree).
/// The parser, the lowering of the tree and its drop are recursive, so an unbounded depth
/// would overflow the stack; real rate laws are a few levels deep.
pub const MAX_EXPR_DEPTH: usize = 256;

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

/// A parsed sub-expression and the depth of its tree (a leaf is 1).
type Parsed = Result<(Ast, usize), SyntaxError>;

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }
    fn col(&self) -> usize {
        self.toks[self.pos].1
    }
    fn next(&mut self) -> (Tok, usize) {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn error(&self, problem: &str, fix: &str) -> SyntaxError {
        SyntaxError {
            column: self.col(),
            problem: problem.into(),
            found: Some(describe(self.peek())),
            fix: fix.into(),
        }
    }
    /// `depth` if it is within [`MAX_EXPR_DEPTH`], else an error at `col`.
    fn deep(&self, depth: usize, col: usize) -> Result<usize, SyntaxError> {
        if depth <= MAX_EXPR_DEPTH {
            return Ok(depth);
        }
        Err(SyntaxError {
            column: col,
            problem: format!(
                "the expression is nested too deeply (more than {MAX_EXPR_DEPTH} levels of parentheses, calls, signs, powers or chained operators)"
            ),
            found: None,
            fix: "simplify the expression, or split a long sum into intermediate parameters or reactions".into(),
        })
    }
    fn expect(&mut self, c: char, fix: &str) -> Result<(), SyntaxError> {
        if self.peek() == &Tok::Op(c) {
            self.next();
            Ok(())
        } else {
            Err(self.error(&format!("expected `{c}`"), fix))
        }
    }

    // expr := term (('+'|'-') term)*
    fn expr(&mut self, depth: usize) -> Parsed {
        let (mut lhs, mut d) = self.term(depth)?;
        loop {
            let op = match self.peek() {
                Tok::Op('+') => BinOp::Add,
                Tok::Op('-') => BinOp::Sub,
                _ => return Ok((lhs, d)),
            };
            let col = self.col();
            self.next();
            let (rhs, dr) = self.term(depth)?;
            d = self.deep(d.max(dr) + 1, col)?;
            lhs = Ast::Bin {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                col,
            };
        }
    }
    // term := unary (('*'|'/') unary)*
    fn term(&mut self, depth: usize) -> Parsed {
        let (mut lhs, mut d) = self.unary(depth)?;
        loop {
            let op = match self.peek() {
                Tok::Op('*') => BinOp::Mul,
                Tok::Op('/') => BinOp::Div,
                _ => return Ok((lhs, d)),
            };
            let col = self.col();
            self.next();
            let (rhs, dr) = self.unary(depth)?;
            d = self.deep(d.max(dr) + 1, col)?;
            lhs = Ast::Bin {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                col,
            };
        }
    }
    // unary := '-' unary | power
    // `depth`: levels of recursion above this call; every path of the recursion passes
    // here, so the check bounds the parser's stack as well as the tree.
    fn unary(&mut self, depth: usize) -> Parsed {
        let depth = self.deep(depth + 1, self.col())?;
        if self.peek() == &Tok::Op('-') {
            self.next();
            let col = self.col();
            let (a, d) = self.unary(depth)?;
            let d = self.deep(d + 1, col)?;
            return Ok((Ast::Neg(Box::new(a)), d));
        }
        if self.peek() == &Tok::Op('+') {
            self.next();
            return self.unary(depth);
        }
        self.power(depth)
    }
    // power := atom ('^' unary)?   (right-associative; -x^2 = -(x^2))
    fn power(&mut self, depth: usize) -> Parsed {
        let (base, db) = self.atom(depth)?;
        if self.peek() == &Tok::Op('^') {
            let col = self.col();
            self.next();
            let (exp, de) = self.unary(depth)?;
            let d = self.deep(db.max(de) + 1, col)?;
            return Ok((
                Ast::Bin {
                    op: BinOp::Pow,
                    lhs: Box::new(base),
                    rhs: Box::new(exp),
                    col,
                },
                d,
            ));
        }
        Ok((base, db))
    }
    fn atom(&mut self, depth: usize) -> Parsed {
        let col = self.col();
        match self.peek().clone() {
            Tok::Num(v) => {
                self.next();
                Ok((Ast::Num(v), 1))
            }
            Tok::Ident(name) => {
                self.next();
                if self.peek() == &Tok::Op('(') {
                    self.next();
                    let mut args = Vec::new();
                    let mut d = 0;
                    if self.peek() != &Tok::Op(')') {
                        loop {
                            let (a, da) = self.expr(depth)?;
                            args.push(a);
                            d = d.max(da);
                            if self.peek() == &Tok::Op(',') {
                                self.next();
                            } else {
                                break;
                            }
                        }
                    }
                    self.expect(')', "close the argument list with `)`")?;
                    let d = self.deep(d + 1, col)?;
                    Ok((
                        Ast::Call {
                            func: name,
                            args,
                            col,
                        },
                        d,
                    ))
                } else {
                    Ok((Ast::Name { name, col }, 1))
                }
            }
            Tok::Op('(') => {
                self.next();
                let e = self.expr(depth)?;
                self.expect(')', "close the parenthesis")?;
                Ok(e)
            }
            _ => Err(self.error(
                "expected a number, a name, a function call or `(`",
                "complete the expression, e.g. `k * A * B`",
            )),
        }
    }
}

/// Parses a rate expression into an [`Ast`] (names unresolved).
pub fn parse_expr(text: &str) -> Result<Ast, SyntaxError> {
    let toks = lex(text, false)?;
    if toks.len() == 1 {
        return Err(SyntaxError {
            column: 1,
            problem: "the expression is empty".into(),
            found: None,
            fix: "write the rate in mM/s, e.g. `k_fenton * Fe2 * H2O2`".into(),
        });
    }
    let mut p = Parser { toks, pos: 0 };
    let (e, _) = p.expr(0)?;
    if p.peek() != &Tok::End {
        return Err(p.error(
            "unexpected text after the expression",
            "join terms with an operator (+ - * / ^) or remove the extra text",
        ));
    }
    Ok(e)
}

/// See [`super::parse_equation`].
pub fn parse_equation(text: &str) -> Result<Equation, SyntaxError> {
    let toks = lex(text, false)?;
    let mut p = Parser { toks, pos: 0 };
    let mut sides: [Vec<(String, f64)>; 2] = [Vec::new(), Vec::new()];
    let mut side = 0;
    let mut seen_arrow = false;
    loop {
        match p.peek().clone() {
            Tok::End => break,
            Tok::Arrow => {
                if seen_arrow {
                    return Err(p.error(
                        "a second `->`",
                        "write one `->` between reactants and products",
                    ));
                }
                seen_arrow = true;
                side = 1;
                p.next();
                continue;
            }
            _ => {}
        }
        // term := [number] name
        let coef = if let Tok::Num(v) = p.peek().clone() {
            if v <= 0.0 {
                return Err(p.error(
                    "a stoichiometric coefficient must be > 0",
                    "write e.g. `2 GSH` or `0.5 GSSG`",
                ));
            }
            p.next();
            v
        } else {
            1.0
        };
        match p.peek().clone() {
            Tok::Ident(name) => {
                p.next();
                sides[side].push((name, coef));
            }
            _ => {
                return Err(p.error(
                    "expected a species name",
                    "write the equation as `A + 2 B -> C` (coefficient, then species name)",
                ))
            }
        }
        match p.peek() {
            Tok::Op('+') => {
                p.next();
                if matches!(p.peek(), Tok::End | Tok::Arrow) {
                    return Err(p.error("expected a species after `+`", "remove the trailing `+`"));
                }
            }
            Tok::Arrow | Tok::End => {}
            _ => {
                return Err(p.error(
                    "expected `+` or `->`",
                    "separate species with `+` and the sides with `->`",
                ))
            }
        }
    }
    if !seen_arrow {
        return Err(SyntaxError {
            column: text.chars().count() + 1,
            problem: "missing `->`".into(),
            found: None,
            fix: "write `reactants -> products`, e.g. `Fe2 + H2O2 -> Fe3 + OH`, `-> H2O2` (source) or `OH ->` (sink)".into(),
        });
    }
    let [reactants, products] = sides;
    Ok(Equation {
        reactants,
        products,
    })
}

/// Sixths per unit exponent in [`Dim`].
pub const SIXTHS: i32 = 6;

/// See [`super::parse_unit`].
pub fn parse_unit(text: &str) -> Result<Dim, SyntaxError> {
    let toks = lex(text, true)?;
    let mut p = Parser { toks, pos: 0 };
    if p.peek() == &Tok::End {
        return Err(SyntaxError {
            column: 1,
            problem: "the unit is empty".into(),
            found: None,
            fix: "write `1` for a dimensionless value, or e.g. `mM`, `1/s`, `1/(mM*s)`, `mM/s`"
                .into(),
        });
    }
    let d = unit_product(&mut p, 0)?;
    if p.peek() != &Tok::End {
        return Err(p.error(
            "unexpected text in the unit",
            "write units like `1/(mM*s)` or `mM^-1 s^-1`",
        ));
    }
    Ok(d)
}

// product := factor (('*' | '/' | juxtaposition) factor)*
// `depth`: parentheses around this product (bounded by [`MAX_EXPR_DEPTH`]).
fn unit_product(p: &mut Parser, depth: usize) -> Result<Dim, SyntaxError> {
    let mut d = unit_factor(p, depth)?;
    loop {
        match p.peek() {
            Tok::Op('*') => {
                p.next();
                d = d.times(unit_factor(p, depth)?);
            }
            Tok::Op('/') => {
                p.next();
                d = d.times(unit_factor(p, depth)?.powi(-1, 1));
            }
            Tok::Ident(_) | Tok::Op('(') | Tok::Num(_) => d = d.times(unit_factor(p, depth)?),
            _ => return Ok(d),
        }
    }
}

// factor := (name | '1' | '(' product ')') ['^' signed integer or (a/b)]
fn unit_factor(p: &mut Parser, depth: usize) -> Result<Dim, SyntaxError> {
    let col = p.col();
    let base = match p.next().0 {
        Tok::Num(1.0) => Dim::default(),
        Tok::Ident(name) => match name.as_str() {
            "mM" => Dim { mm: SIXTHS, ..Dim::default() },
            "s" => Dim { s: SIXTHS, ..Dim::default() },
            "um" | "µm" => Dim { um: SIXTHS, ..Dim::default() },
            "K" => Dim { k: SIXTHS, ..Dim::default() },
            "pH" => Dim::default(),
            _ => {
                return Err(SyntaxError {
                    column: col,
                    problem: "unknown unit".into(),
                    found: Some(name),
                    fix: "ionfield works in mM, s, µm and K only (write `um` or `µm`); `pH` and `1` are dimensionless. Convert the value (1 M^-1 s^-1 = 1e-3 mM^-1 s^-1, 1 min = 60 s)".into(),
                })
            }
        },
        Tok::Op('(') => {
            let depth = p.deep(depth + 1, col)?;
            let d = unit_product(p, depth)?;
            p.expect(')', "close the parenthesis")?;
            d
        }
        t => {
            return Err(SyntaxError {
                column: col,
                problem: "expected a unit".into(),
                found: Some(describe(&t)),
                fix: "write units like `mM`, `1/s`, `1/(mM*s)`".into(),
            })
        }
    };
    if p.peek() != &Tok::Op('^') {
        return Ok(base);
    }
    p.next();
    let col = p.col();
    let neg = if p.peek() == &Tok::Op('-') {
        p.next();
        true
    } else {
        false
    };
    let (num, den) = match p.next().0 {
        Tok::Num(v) if v.fract() == 0.0 => (v as i32, 1),
        Tok::Op('(') => {
            let a = match p.next().0 {
                Tok::Num(v) if v.fract() == 0.0 => v as i32,
                _ => return Err(bad_exponent(col)),
            };
            p.expect('/', "write a fractional exponent as (a/b)")?;
            let b = match p.next().0 {
                Tok::Num(v) if v.fract() == 0.0 && v > 0.0 => v as i32,
                _ => return Err(bad_exponent(col)),
            };
            p.expect(')', "close the parenthesis")?;
            (a, b)
        }
        _ => return Err(bad_exponent(col)),
    };
    if SIXTHS % den != 0 && (num * SIXTHS) % den != 0 {
        return Err(bad_exponent(col));
    }
    Ok(base.powi(if neg { -num } else { num }, den))
}

fn bad_exponent(col: usize) -> SyntaxError {
    SyntaxError {
        column: col,
        problem: "a unit exponent must be an integer or a fraction (a/b) with b dividing 6".into(),
        found: None,
        fix: "write e.g. `mM^-1`, `um^2` or `mM^(1/3)`".into(),
    }
}

impl Dim {
    pub const NONE: Dim = Dim {
        mm: 0,
        s: 0,
        um: 0,
        k: 0,
    };
    /// mM/s: the unit every rate must have.
    pub const RATE: Dim = Dim {
        mm: SIXTHS,
        s: -SIXTHS,
        um: 0,
        k: 0,
    };
    pub const MM: Dim = Dim {
        mm: SIXTHS,
        s: 0,
        um: 0,
        k: 0,
    };

    pub fn times(self, o: Dim) -> Dim {
        Dim {
            mm: self.mm + o.mm,
            s: self.s + o.s,
            um: self.um + o.um,
            k: self.k + o.k,
        }
    }
    /// Raised to num/den; exact only when every exponent stays a whole number of sixths
    /// (checked by [`Dim::checked_pow`]).
    pub fn powi(self, num: i32, den: i32) -> Dim {
        Dim {
            mm: self.mm * num / den,
            s: self.s * num / den,
            um: self.um * num / den,
            k: self.k * num / den,
        }
    }
    /// Raised to a real power, if every exponent stays a whole number of sixths.
    pub fn checked_pow(self, p: f64) -> Option<Dim> {
        let f = |e: i32| {
            let v = e as f64 * p;
            ((v - v.round()).abs() < 1e-9).then_some(v.round() as i32)
        };
        Some(Dim {
            mm: f(self.mm)?,
            s: f(self.s)?,
            um: f(self.um)?,
            k: f(self.k)?,
        })
    }
    pub fn is_none(self) -> bool {
        self == Dim::NONE
    }
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for (e, u) in [
            (self.mm, "mM"),
            (self.um, "um"),
            (self.k, "K"),
            (self.s, "s"),
        ] {
            if e == 0 {
                continue;
            }
            if e == SIXTHS {
                parts.push(u.to_string());
            } else if e % SIXTHS == 0 {
                parts.push(format!("{u}^{}", e / SIXTHS));
            } else {
                let g = gcd(e.abs(), SIXTHS);
                parts.push(format!("{u}^({}/{})", e / g, SIXTHS / g));
            }
        }
        if parts.is_empty() {
            f.write_str("1 (dimensionless)")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

fn gcd(a: i32, b: i32) -> i32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_parse_with_precedence() {
        let e = parse_expr("k * A * B / (K + B) - 2^-x").unwrap();
        match e {
            Ast::Bin { op: BinOp::Sub, .. } => {}
            other => panic!("{other:?}"),
        }
        let e = parse_expr("max(0, S - G)").unwrap();
        assert!(
            matches!(e, Ast::Call { ref func, ref args, col: 1 } if func == "max" && args.len() == 2)
        );
        assert_eq!(parse_expr("1.5e-3").unwrap(), Ast::Num(1.5e-3));
    }

    #[test]
    fn expression_errors_point_at_the_column() {
        let e = parse_expr("k * (A + B").unwrap_err();
        assert_eq!(e.column, 11);
        assert!(e.problem.contains("expected `)`"), "{e:?}");
        let e = parse_expr("k * * A").unwrap_err();
        assert_eq!(e.column, 5);
        let e = parse_expr("k A").unwrap_err();
        assert_eq!(e.column, 3);
        let e = parse_expr("k # A").unwrap_err();
        assert_eq!((e.column, e.found.as_deref()), (3, Some("#")));
    }

    /// Deep nesting and long operator chains are a syntax error naming the column, not a
    /// stack overflow (in the parser, the lowering or the drop of the tree).
    #[test]
    fn depth_is_bounded() {
        let ok = format!("{}A{}", "(".repeat(100), ")".repeat(100));
        parse_expr(&ok).unwrap();
        for text in [
            format!("{}A{}", "(".repeat(8000), ")".repeat(8000)),
            format!("{}A{}", "abs(".repeat(10_000), ")".repeat(10_000)),
            format!("{}A", "-".repeat(100_000)),
            format!("A{}", "^A".repeat(100_000)),
            format!("A{}", " + A".repeat(100_000)),
            format!("A{}", " * A".repeat(100_000)),
        ] {
            let e = parse_expr(&text).unwrap_err();
            assert!(e.problem.contains("nested too deeply"), "{e:?}");
            assert!(e.column > 1 && e.column <= text.len(), "{}", e.column);
        }
        let e = parse_unit(&format!("{}mM{}", "(".repeat(8000), ")".repeat(8000))).unwrap_err();
        assert!(e.problem.contains("nested too deeply"), "{e:?}");
    }

    #[test]
    fn equations() {
        let e = parse_equation("Fe3 + GSH -> Fe2 + 0.5 GSSG + H").unwrap();
        assert_eq!(e.reactants, vec![("Fe3".into(), 1.0), ("GSH".into(), 1.0)]);
        assert_eq!(e.products[1], ("GSSG".into(), 0.5));
        let e = parse_equation("-> H2O2").unwrap();
        assert!(e.reactants.is_empty());
        let e = parse_equation("OH ->").unwrap();
        assert!(e.products.is_empty());
        let e = parse_equation("2 GSH + H2O2 -> GSSG").unwrap();
        assert_eq!(e.reactants[0], ("GSH".into(), 2.0));
        assert!(parse_equation("A + B")
            .unwrap_err()
            .problem
            .contains("missing `->`"));
        assert_eq!(parse_equation("A + -> B").unwrap_err().column, 5);
        assert!(parse_equation("A -> B -> C").is_err());
    }

    #[test]
    fn units() {
        let k2 = Dim {
            mm: -6,
            s: -6,
            ..Dim::NONE
        };
        assert_eq!(parse_unit("1/(mM*s)").unwrap(), k2);
        assert_eq!(parse_unit("mM^-1 s^-1").unwrap(), k2);
        assert_eq!(parse_unit("mM/s").unwrap(), Dim::RATE);
        assert_eq!(parse_unit("1").unwrap(), Dim::NONE);
        assert_eq!(
            parse_unit("µm^2/s").unwrap(),
            Dim {
                s: -6,
                um: 12,
                ..Dim::NONE
            }
        );
        assert_eq!(parse_unit("mM/pH").unwrap(), Dim::MM);
        assert_eq!(parse_unit("mM^(1/3)").unwrap(), Dim { mm: 2, ..Dim::NONE });
        assert_eq!(
            parse_unit("K/s").unwrap(),
            Dim {
                k: 6,
                s: -6,
                ..Dim::NONE
            }
        );
        let e = parse_unit("M^-1 s^-1").unwrap_err();
        assert_eq!((e.column, e.found.as_deref()), (1, Some("M")));
        assert_eq!(Dim::RATE.to_string(), "mM s^-1");
        assert_eq!(Dim { mm: 4, ..Dim::NONE }.to_string(), "mM^(2/3)");
        assert_eq!(
            Dim {
                k: 6,
                s: -6,
                ..Dim::NONE
            }
            .to_string(),
            "K s^-1"
        );
    }
}
