//! The expression graph both back ends are generated from: a hash-consed DAG (equal
//! subexpressions are one node, so common terms are computed once), simplified as it is
//! built, with symbolic derivatives for the Jacobian.
//!
//! Children always have smaller ids than their parents, so evaluating ids in ascending order
//! is a valid schedule (the CPU tape and the generated WGSL both rely on it).

use std::collections::HashMap;

pub type Id = u32;

/// One operation. Constants are stored as bits so nodes can be hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    Const(u64),
    /// Concentration of species (scenario index), mM, clamped at ≥ 0 when loaded.
    Species(usize),
    /// Parameter (scenario index), value of the voxel's tissue.
    Param(usize),
    /// 1 in the tissues whose bits are set in the mask, else 0.
    TissueGate(u32),
    Add(Id, Id),
    Mul(Id, Id),
    Div(Id, Id),
    Neg(Id),
    Pow(Id, Id),
    Exp(Id),
    Ln(Id),
    Sqrt(Id),
    Abs(Id),
    Min(Id, Id),
    Max(Id, Id),
    /// Heaviside: 1 if x > 0 else 0.
    Step(Id),
}

#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    index: HashMap<Node, Id>,
    deriv: HashMap<(Id, usize), Id>,
    subst: HashMap<(Id, usize, Id), Id>,
}

impl Graph {
    pub fn node(&self, id: Id) -> Node {
        self.nodes[id as usize]
    }

    fn intern(&mut self, n: Node) -> Id {
        if let Some(&id) = self.index.get(&n) {
            return id;
        }
        let id = self.nodes.len() as Id;
        self.nodes.push(n);
        self.index.insert(n, id);
        id
    }

    pub fn constant(&self, id: Id) -> Option<f64> {
        match self.node(id) {
            Node::Const(b) => Some(f64::from_bits(b)),
            _ => None,
        }
    }

    pub fn num(&mut self, v: f64) -> Id {
        // One zero: -0.0 and 0.0 are the same node.
        let v = if v == 0.0 { 0.0 } else { v };
        self.intern(Node::Const(v.to_bits()))
    }
    pub fn species(&mut self, s: usize) -> Id {
        self.intern(Node::Species(s))
    }
    pub fn param(&mut self, p: usize) -> Id {
        self.intern(Node::Param(p))
    }
    pub fn gate(&mut self, mask: u32) -> Id {
        self.intern(Node::TissueGate(mask))
    }

    pub fn add(&mut self, a: Id, b: Id) -> Id {
        match (self.constant(a), self.constant(b)) {
            (Some(x), Some(y)) => self.num(x + y),
            (Some(0.0), _) => b,
            (_, Some(0.0)) => a,
            _ => {
                let (a, b) = (a.min(b), a.max(b));
                self.intern(Node::Add(a, b))
            }
        }
    }
    pub fn sub(&mut self, a: Id, b: Id) -> Id {
        if a == b {
            return self.num(0.0);
        }
        let nb = self.neg(b);
        self.add(a, nb)
    }
    pub fn mul(&mut self, a: Id, b: Id) -> Id {
        match (self.constant(a), self.constant(b)) {
            (Some(x), Some(y)) => self.num(x * y),
            (Some(x), _) | (_, Some(x)) if x == 0.0 => self.num(0.0),
            (Some(1.0), _) => b,
            (_, Some(1.0)) => a,
            (Some(-1.0), _) => self.neg(b),
            (_, Some(-1.0)) => self.neg(a),
            _ => {
                let (a, b) = (a.min(b), a.max(b));
                self.intern(Node::Mul(a, b))
            }
        }
    }
    pub fn div(&mut self, a: Id, b: Id) -> Id {
        match (self.constant(a), self.constant(b)) {
            (Some(x), Some(y)) if y != 0.0 => self.num(x / y),
            (Some(0.0), _) => self.num(0.0),
            (_, Some(1.0)) => a,
            (_, Some(y)) if y != 0.0 => {
                let r = self.num(1.0 / y);
                self.mul(a, r)
            }
            _ => self.intern(Node::Div(a, b)),
        }
    }
    pub fn neg(&mut self, a: Id) -> Id {
        match self.node(a) {
            Node::Const(b) => self.num(-f64::from_bits(b)),
            Node::Neg(x) => x,
            _ => self.intern(Node::Neg(a)),
        }
    }
    pub fn pow(&mut self, a: Id, b: Id) -> Id {
        match (self.constant(a), self.constant(b)) {
            (Some(x), Some(y)) => self.num(x.powf(y)),
            (_, Some(0.0)) => self.num(1.0),
            (_, Some(1.0)) => a,
            _ => self.intern(Node::Pow(a, b)),
        }
    }
    pub fn unary(&mut self, f: fn(Id) -> Node, eval: fn(f64) -> f64, a: Id) -> Id {
        match self.constant(a) {
            Some(x) => self.num(eval(x)),
            None => self.intern(f(a)),
        }
    }
    pub fn exp(&mut self, a: Id) -> Id {
        self.unary(Node::Exp, f64::exp, a)
    }
    pub fn ln(&mut self, a: Id) -> Id {
        self.unary(Node::Ln, f64::ln, a)
    }
    pub fn sqrt(&mut self, a: Id) -> Id {
        self.unary(Node::Sqrt, f64::sqrt, a)
    }
    pub fn abs(&mut self, a: Id) -> Id {
        self.unary(Node::Abs, f64::abs, a)
    }
    pub fn step(&mut self, a: Id) -> Id {
        self.unary(Node::Step, |x| if x > 0.0 { 1.0 } else { 0.0 }, a)
    }
    pub fn min(&mut self, a: Id, b: Id) -> Id {
        match (self.constant(a), self.constant(b)) {
            (Some(x), Some(y)) => self.num(x.min(y)),
            _ if a == b => a,
            _ => self.intern(Node::Min(a.min(b), a.max(b))),
        }
    }
    pub fn max(&mut self, a: Id, b: Id) -> Id {
        match (self.constant(a), self.constant(b)) {
            (Some(x), Some(y)) => self.num(x.max(y)),
            _ if a == b => a,
            _ => self.intern(Node::Max(a.min(b), a.max(b))),
        }
    }

    /// True if `id` depends on species `s`.
    pub fn depends_on(&self, id: Id, s: usize) -> bool {
        let mut seen = vec![false; id as usize + 1];
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            if seen[n as usize] {
                continue;
            }
            seen[n as usize] = true;
            match self.node(n) {
                Node::Species(k) if k == s => return true,
                node => stack.extend(children(node)),
            }
        }
        false
    }

    /// ∂id/∂(species s), simplified and memoised.
    pub fn diff(&mut self, id: Id, s: usize) -> Id {
        if let Some(&d) = self.deriv.get(&(id, s)) {
            return d;
        }
        let d = match self.node(id) {
            Node::Const(_) | Node::Param(_) | Node::TissueGate(_) => self.num(0.0),
            Node::Species(k) => self.num(if k == s { 1.0 } else { 0.0 }),
            Node::Add(a, b) => {
                let (da, db) = (self.diff(a, s), self.diff(b, s));
                self.add(da, db)
            }
            Node::Mul(a, b) => {
                let (da, db) = (self.diff(a, s), self.diff(b, s));
                let t1 = self.mul(da, b);
                let t2 = self.mul(a, db);
                self.add(t1, t2)
            }
            Node::Div(a, b) => {
                // (a/b)' = a'/b − (a/b)·b'/b
                let (da, db) = (self.diff(a, s), self.diff(b, s));
                let t1 = self.div(da, b);
                let q = self.div(db, b);
                let t2 = self.mul(id, q);
                self.sub(t1, t2)
            }
            Node::Neg(a) => {
                let da = self.diff(a, s);
                self.neg(da)
            }
            Node::Pow(a, b) => {
                let (da, db) = (self.diff(a, s), self.diff(b, s));
                // b·a^(b−1)·a' + a^b·ln(a)·b'
                let one = self.num(1.0);
                let bm1 = self.sub(b, one);
                let p = self.pow(a, bm1);
                let t = self.mul(b, p);
                let t1 = self.mul(t, da);
                let t2 = if self.constant(db) == Some(0.0) {
                    self.num(0.0)
                } else {
                    let l = self.ln(a);
                    let t = self.mul(id, l);
                    self.mul(t, db)
                };
                self.add(t1, t2)
            }
            Node::Exp(a) => {
                let da = self.diff(a, s);
                self.mul(id, da)
            }
            Node::Ln(a) => {
                let da = self.diff(a, s);
                self.div(da, a)
            }
            Node::Sqrt(a) => {
                let da = self.diff(a, s);
                let two = self.num(2.0);
                let den = self.mul(two, id);
                self.div(da, den)
            }
            Node::Abs(a) => {
                let da = self.diff(a, s);
                let na = self.neg(a);
                let (p, n) = (self.step(a), self.step(na));
                let sign = self.sub(p, n);
                self.mul(sign, da)
            }
            Node::Min(a, b) | Node::Max(a, b) => {
                let (da, db) = (self.diff(a, s), self.diff(b, s));
                // Max: a wins where a − b > 0; Min: a wins where b − a > 0.
                let diff = match self.node(id) {
                    Node::Max(..) => self.sub(a, b),
                    _ => self.sub(b, a),
                };
                let w = self.step(diff);
                let one = self.num(1.0);
                let wb = self.sub(one, w);
                let t1 = self.mul(w, da);
                let t2 = self.mul(wb, db);
                self.add(t1, t2)
            }
            Node::Step(_) => self.num(0.0),
        };
        self.deriv.insert((id, s), d);
        d
    }

    /// `id` with species `s` replaced by the node `by`.
    pub fn substitute(&mut self, id: Id, s: usize, by: Id) -> Id {
        if let Some(&r) = self.subst.get(&(id, s, by)) {
            return r;
        }
        let r = match self.node(id) {
            Node::Species(k) if k == s => by,
            Node::Const(_) | Node::Species(_) | Node::Param(_) | Node::TissueGate(_) => id,
            Node::Add(a, b) => bin(self, a, b, s, by, Graph::add),
            Node::Mul(a, b) => bin(self, a, b, s, by, Graph::mul),
            Node::Div(a, b) => bin(self, a, b, s, by, Graph::div),
            Node::Pow(a, b) => bin(self, a, b, s, by, Graph::pow),
            Node::Min(a, b) => bin(self, a, b, s, by, Graph::min),
            Node::Max(a, b) => bin(self, a, b, s, by, Graph::max),
            Node::Neg(a) => un(self, a, s, by, Graph::neg),
            Node::Exp(a) => un(self, a, s, by, Graph::exp),
            Node::Ln(a) => un(self, a, s, by, Graph::ln),
            Node::Sqrt(a) => un(self, a, s, by, Graph::sqrt),
            Node::Abs(a) => un(self, a, s, by, Graph::abs),
            Node::Step(a) => un(self, a, s, by, Graph::step),
        };
        self.subst.insert((id, s, by), r);
        r
    }

    /// Every node `roots` need, in ascending (evaluation) order.
    pub fn schedule(&self, roots: &[Id]) -> Vec<Id> {
        let mut need = vec![false; self.nodes.len()];
        let mut stack: Vec<Id> = roots.to_vec();
        while let Some(n) = stack.pop() {
            if need[n as usize] {
                continue;
            }
            need[n as usize] = true;
            stack.extend(children(self.node(n)));
        }
        (0..self.nodes.len() as Id)
            .filter(|&i| need[i as usize])
            .collect()
    }
}

fn bin(g: &mut Graph, a: Id, b: Id, s: usize, by: Id, f: fn(&mut Graph, Id, Id) -> Id) -> Id {
    let (a, b) = (g.substitute(a, s, by), g.substitute(b, s, by));
    f(g, a, b)
}

fn un(g: &mut Graph, a: Id, s: usize, by: Id, f: fn(&mut Graph, Id) -> Id) -> Id {
    let a = g.substitute(a, s, by);
    f(g, a)
}

pub fn children(n: Node) -> Vec<Id> {
    match n {
        Node::Const(_) | Node::Species(_) | Node::Param(_) | Node::TissueGate(_) => vec![],
        Node::Add(a, b)
        | Node::Mul(a, b)
        | Node::Div(a, b)
        | Node::Pow(a, b)
        | Node::Min(a, b)
        | Node::Max(a, b) => vec![a, b],
        Node::Neg(a)
        | Node::Exp(a)
        | Node::Ln(a)
        | Node::Sqrt(a)
        | Node::Abs(a)
        | Node::Step(a) => {
            vec![a]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluates with species values `x` (no parameters).
    fn eval(g: &Graph, id: Id, x: &[f64]) -> f64 {
        let v = |i| eval(g, i, x);
        match g.node(id) {
            Node::Const(b) => f64::from_bits(b),
            Node::Species(k) => x[k],
            Node::Param(_) | Node::TissueGate(_) => unreachable!(),
            Node::Add(a, b) => v(a) + v(b),
            Node::Mul(a, b) => v(a) * v(b),
            Node::Div(a, b) => v(a) / v(b),
            Node::Neg(a) => -v(a),
            Node::Pow(a, b) => v(a).powf(v(b)),
            Node::Exp(a) => v(a).exp(),
            Node::Ln(a) => v(a).ln(),
            Node::Sqrt(a) => v(a).sqrt(),
            Node::Abs(a) => v(a).abs(),
            Node::Min(a, b) => v(a).min(v(b)),
            Node::Max(a, b) => v(a).max(v(b)),
            Node::Step(a) => (v(a) > 0.0) as u8 as f64,
        }
    }

    #[test]
    fn hash_consing_and_folding() {
        let mut g = Graph::default();
        let (a, b) = (g.species(0), g.species(1));
        let ab = g.mul(a, b);
        let ba = g.mul(b, a);
        assert_eq!(ab, ba);
        let z = g.num(0.0);
        assert_eq!(g.mul(ab, z), z);
        let one = g.num(1.0);
        assert_eq!(g.mul(one, ab), ab);
        let two = g.num(2.0);
        let three = g.num(3.0);
        let five = g.add(two, three);
        assert_eq!(g.constant(five), Some(5.0));
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let mut g = Graph::default();
        let (a, b) = (g.species(0), g.species(1));
        // f = exp(a)·b/(0.5 + b) + max(a, b)^1.5 − sqrt(a·b) + ln(1 + a) + |a − b|
        let e = g.exp(a);
        let eb = g.mul(e, b);
        let half = g.num(0.5);
        let den = g.add(half, b);
        let t1 = g.div(eb, den);
        let m = g.max(a, b);
        let p15 = g.num(1.5);
        let t2 = g.pow(m, p15);
        let ab = g.mul(a, b);
        let t3 = g.sqrt(ab);
        let one = g.num(1.0);
        let opa = g.add(one, a);
        let t4 = g.ln(opa);
        let amb = g.sub(a, b);
        let t5 = g.abs(amb);
        let s12 = g.add(t1, t2);
        let s123 = g.sub(s12, t3);
        let s1234 = g.add(s123, t4);
        let f = g.add(s1234, t5);
        let x = [0.7, 1.3];
        for s in 0..2 {
            let d = g.diff(f, s);
            let h = 1e-6;
            let mut xp = x;
            xp[s] += h;
            let mut xm = x;
            xm[s] -= h;
            let fd = (eval(&g, f, &xp) - eval(&g, f, &xm)) / (2.0 * h);
            let an = eval(&g, d, &x);
            assert!(
                (fd - an).abs() < 1e-7 * (1.0 + an.abs()),
                "s={s}: {an} vs {fd}"
            );
        }
    }

    #[test]
    fn substitution_and_dependence() {
        let mut g = Graph::default();
        let (a, b) = (g.species(0), g.species(1));
        let ab = g.mul(a, b);
        assert!(g.depends_on(ab, 1));
        let two = g.num(2.0);
        let r = g.substitute(ab, 1, two);
        assert!(!g.depends_on(r, 1));
        assert_eq!(eval(&g, r, &[3.0, 0.0]), 6.0);
        let sched = g.schedule(&[r]);
        assert!(sched.windows(2).all(|w| w[0] < w[1]));
    }
}
