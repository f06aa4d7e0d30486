//! The f64 evaluator of a [`Network`]: the graph's needed nodes flattened, in evaluation
//! order, into a register tape. It computes exactly what the generated WGSL computes.

use super::graph::{Graph, Id, Node};
use super::Network;

#[derive(Clone, Copy, Debug)]
enum Op {
    Const(f64),
    /// Species (scenario index), clamped at ≥ 0.
    Species(u32),
    Param(u32),
    Gate(u32),
    Add(u32, u32),
    Mul(u32, u32),
    Div(u32, u32),
    Neg(u32),
    Pow(u32, u32),
    Exp(u32),
    Ln(u32),
    Sqrt(u32),
    Abs(u32),
    Min(u32, u32),
    Max(u32, u32),
    Step(u32),
}

/// A flattened program computing some roots of the graph. Register r holds the value of
/// the r-th scheduled node. Constants, parameters and tissue gates depend only on the
/// tissue, so they sit in a prologue that runs when the tissue changes; the body reruns for
/// every evaluation.
#[derive(Clone, Debug)]
pub struct Program {
    /// (register, op) evaluated per tissue.
    prologue: Vec<(u32, Op)>,
    /// (register, op) evaluated per call, in order.
    body: Vec<(u32, Op)>,
    n_regs: usize,
    /// Register of each root, in the order given.
    pub outputs: Vec<u32>,
}

/// Registers of one [`Program`] and the tissue its prologue was run for.
#[derive(Clone, Debug)]
pub struct Registers {
    values: Vec<f64>,
    tissue: Option<usize>,
}

impl Registers {
    pub fn new(p: &Program) -> Registers {
        Registers {
            values: vec![0.0; p.n_regs],
            tissue: None,
        }
    }
    /// Value of register `r` (an entry of [`Program::outputs`]).
    pub fn get(&self, r: u32) -> f64 {
        self.values[r as usize]
    }
}

impl Program {
    pub fn new(g: &Graph, roots: &[Id]) -> Program {
        let order = g.schedule(roots);
        let mut reg = vec![u32::MAX; g.nodes.len()];
        for (r, &id) in order.iter().enumerate() {
            reg[id as usize] = r as u32;
        }
        let r = |id: Id| reg[id as usize];
        let mut prologue = Vec::new();
        let mut body = Vec::new();
        for (k, &id) in order.iter().enumerate() {
            let op = match g.node(id) {
                Node::Const(b) => Op::Const(f64::from_bits(b)),
                Node::Species(s) => Op::Species(s as u32),
                Node::Param(p) => Op::Param(p as u32),
                Node::TissueGate(m) => Op::Gate(m),
                Node::Add(a, b) => Op::Add(r(a), r(b)),
                Node::Mul(a, b) => Op::Mul(r(a), r(b)),
                Node::Div(a, b) => Op::Div(r(a), r(b)),
                Node::Neg(a) => Op::Neg(r(a)),
                Node::Pow(a, b) => Op::Pow(r(a), r(b)),
                Node::Exp(a) => Op::Exp(r(a)),
                Node::Ln(a) => Op::Ln(r(a)),
                Node::Sqrt(a) => Op::Sqrt(r(a)),
                Node::Abs(a) => Op::Abs(r(a)),
                Node::Min(a, b) => Op::Min(r(a), r(b)),
                Node::Max(a, b) => Op::Max(r(a), r(b)),
                Node::Step(a) => Op::Step(r(a)),
            };
            match op {
                Op::Const(_) | Op::Param(_) | Op::Gate(_) => prologue.push((k as u32, op)),
                _ => body.push((k as u32, op)),
            }
        }
        Program {
            prologue,
            body,
            n_regs: order.len(),
            outputs: roots.iter().map(|&id| r(id)).collect(),
        }
    }

    pub fn n_registers(&self) -> usize {
        self.n_regs
    }

    /// Runs the tape. `conc` holds every species (scenario order, mM); `params[p][tissue]`.
    pub fn run(&self, conc: &[f64], tissue: usize, params: &[Vec<f64>], regs: &mut Registers) {
        if regs.tissue != Some(tissue) {
            for &(k, op) in &self.prologue {
                regs.values[k as usize] = match op {
                    Op::Const(c) => c,
                    Op::Param(p) => params[p as usize][tissue],
                    Op::Gate(m) => ((m >> tissue) & 1) as f64,
                    _ => unreachable!("the prologue holds leaves only"),
                };
            }
            regs.tissue = Some(tissue);
        }
        let values = &mut regs.values[..self.n_regs];
        for &(k, op) in &self.body {
            // Operands are earlier registers of this program (schedule order), so every index
            // is < n_regs = values.len(); the compiler cannot see that, hence the hot loop
            // spends its time on bounds checks unless told.
            let v = |i: u32| {
                debug_assert!((i as usize) < values.len());
                // SAFETY: `Program::new` only emits operand registers of scheduled nodes, all
                // below `n_regs`, and `values` has exactly `n_regs` entries.
                unsafe { *values.get_unchecked(i as usize) }
            };
            let x = match op {
                Op::Species(s) => conc[s as usize].max(0.0),
                Op::Add(a, b) => v(a) + v(b),
                Op::Mul(a, b) => v(a) * v(b),
                Op::Div(a, b) => v(a) / v(b),
                Op::Neg(a) => -v(a),
                Op::Pow(a, b) => v(a).powf(v(b)),
                Op::Exp(a) => v(a).exp(),
                Op::Ln(a) => v(a).ln(),
                Op::Sqrt(a) => v(a).sqrt(),
                Op::Abs(a) => v(a).abs(),
                Op::Min(a, b) => v(a).min(v(b)),
                Op::Max(a, b) => v(a).max(v(b)),
                Op::Step(a) => (v(a) > 0.0) as u8 as f64,
                Op::Const(_) | Op::Param(_) | Op::Gate(_) => {
                    unreachable!("leaves are in the prologue")
                }
            };
            // SAFETY: as above, k < n_regs.
            unsafe { *values.get_unchecked_mut(k as usize) = x };
        }
    }
}

/// The three programs an integrator needs.
#[derive(Clone, Debug)]
pub struct Tapes {
    /// f only (second Rosenbrock stage).
    pub rhs: Program,
    /// f then J (row-major), first stage.
    pub rhs_jac: Program,
    /// Quasi-steady values, after the step.
    pub qss: Program,
}

impl Tapes {
    pub fn new(net: &Network) -> Tapes {
        let g = &net.graph;
        let mut both = net.rhs.clone();
        both.extend(&net.jac);
        let q: Vec<Id> = net.qss.iter().map(|&(_, v)| v).collect();
        Tapes {
            rhs: Program::new(g, &net.rhs),
            rhs_jac: Program::new(g, &both),
            qss: Program::new(g, &q),
        }
    }
    /// Register files for (rhs, rhs_jac, qss).
    pub fn registers(&self) -> [Registers; 3] {
        [
            Registers::new(&self.rhs),
            Registers::new(&self.rhs_jac),
            Registers::new(&self.qss),
        ]
    }
}
