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

/// A two-operand operation of a [`LaneProgram`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Bin {
    Add,
    Mul,
    Div,
    Pow,
    Min,
    Max,
}

/// A one-operand operation of a [`LaneProgram`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Un {
    Neg,
    Exp,
    Ln,
    Sqrt,
    Abs,
    Step,
}

/// What every instruction of a block of a [`LaneProgram`] computes. Besides the tape's own
/// operations, a value read by one instruction only is computed inside its reader and
/// kept in a CPU register ("fused"), which saves the interpreter a store and a load per
/// lane row; the f64 operations and their operands are the same, so are the results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// d = max(conc[a], 0).
    Species,
    /// d = op(a).
    Unary(Un),
    /// d = op(a, b).
    Binary(Bin),
    /// d = outer(inner(a, b), c), or outer(c, inner(a, b)) if `right`.
    Fused { inner: Bin, outer: Bin, right: bool },
    /// d = −inner(a, b).
    NegOf(Bin),
    /// d = outer(−a, c), or outer(c, −a) if `right`.
    WithNeg { outer: Bin, right: bool },
}

impl Kind {
    /// Register operands read, in instruction slots (a, b, c) order.
    fn n_reads(self) -> usize {
        match self {
            Kind::Species => 0,
            Kind::Unary(_) => 1,
            Kind::Binary(_) | Kind::NegOf(_) | Kind::WithNeg { .. } => 2,
            Kind::Fused { .. } => 3,
        }
    }
}

/// The operations fused into their readers: exact, cheap and common in rate laws.
fn fusable(op: Bin) -> bool {
    matches!(op, Bin::Add | Bin::Mul | Bin::Div)
}

/// A [`Program`] for `L` voxels at a time ([`LaneProgram::run`]). The body is reordered into
/// blocks of instructions of one [`Kind`], so the interpreter dispatches once per block
/// rather than once per instruction (an interpreter's indirect jump mispredicts often; a
/// block is a tight loop). Any order that evaluates operands first gives every value the
/// same bits, so the results are those of [`Program::run`], bit for bit. Registers are
/// renumbered and reused (see [`LaneProgram::new`]); read results through
/// [`LaneProgram::outputs`].
#[derive(Clone, Debug)]
pub struct LaneProgram {
    prologue: Vec<(u32, Op)>,
    /// (kind, range in `instrs`), in evaluation order.
    blocks: Vec<(Kind, u32, u32)>,
    /// The first `prefix_blocks` blocks compute the prefix outputs (see `new`).
    prefix_blocks: usize,
    /// (result register, operands a, b, c): a is the species index for
    /// [`Kind::Species`]; unused operands are 0.
    instrs: Vec<[u32; 4]>,
    n_regs: usize,
    /// 1 + the largest species index read.
    n_species: usize,
    /// Register of each root, in the order given.
    pub outputs: Vec<u32>,
}

/// The values of one quantity in `L` lanes, aligned to a cache line: with `L` = 8 a row is
/// exactly one line, so no SIMD load or store of it straddles two (a `Vec<[f64; 8]>` is
/// only 16-byte aligned, which splits every other 32-byte access).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct Row<const L: usize>(pub [f64; L]);

impl<const L: usize> std::ops::Deref for Row<L> {
    type Target = [f64; L];
    #[inline(always)]
    fn deref(&self) -> &[f64; L] {
        &self.0
    }
}

impl<const L: usize> std::ops::DerefMut for Row<L> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [f64; L] {
        &mut self.0
    }
}

/// Registers of one [`LaneProgram`] for `L` voxels evaluated together: register r of lane l
/// is `values[r].0[l]` (structure of arrays, so each operation is one SIMD-friendly loop
/// over the lanes), with the tissue each lane's prologue was run for.
#[derive(Clone, Debug)]
pub struct LaneRegisters<const L: usize> {
    values: Vec<Row<L>>,
    tissue: [Option<usize>; L],
}

impl<const L: usize> LaneRegisters<L> {
    pub fn new(p: &LaneProgram) -> LaneRegisters<L> {
        LaneRegisters {
            values: vec![Row([0.0; L]); p.n_regs],
            tissue: [None; L],
        }
    }
    /// Values of register `r` (an entry of [`LaneProgram::outputs`]) in every lane.
    #[inline]
    pub fn get(&self, r: u32) -> &[f64; L] {
        &self.values[r as usize].0
    }
}

/// `[f(0), f(1), …, f(L − 1)]`: `std::array::from_fn` forced inline. (`from_fn` itself is
/// not always inlined into the `target_feature` hot loops; called, it runs one lane at a
/// time in baseline code.)
#[inline(always)]
pub fn lanes<T: Copy + Default, const L: usize>(f: impl Fn(usize) -> T) -> [T; L] {
    let mut r = [T::default(); L];
    for (l, x) in r.iter_mut().enumerate() {
        *x = f(l);
    }
    r
}

/// `op(x, y)` as the scalar tape computes it; `OP` is a `Bin` as u8 (a const parameter, so
/// each block loop is compiled for its operation).
#[inline(always)]
fn bin<const OP: u8>(x: f64, y: f64) -> f64 {
    match OP {
        0 => x + y,
        1 => x * y,
        2 => x / y,
        3 => x.powf(y),
        4 => x.min(y),
        _ => x.max(y),
    }
}

/// `op(x)` as the scalar tape computes it; `OP` is a `Un` as u8.
#[inline(always)]
fn un<const OP: u8>(x: f64) -> f64 {
    match OP {
        0 => -x,
        1 => x.exp(),
        2 => x.ln(),
        3 => x.sqrt(),
        4 => x.abs(),
        _ => (x > 0.0) as u8 as f64,
    }
}

/// Runs one block: `f` maps the instruction's operand rows (a, b, c; unused ones are
/// register 0) to its result row.
///
/// # Safety
/// Every register index of `block` must be < `values.len()`.
#[inline(always)]
unsafe fn block<const L: usize>(
    values: &mut [Row<L>],
    block: &[[u32; 4]],
    f: impl Fn(&[f64; L], &[f64; L], &[f64; L]) -> [f64; L],
) {
    for &[d, a, b, c] in block {
        debug_assert!(d.max(a).max(b).max(c) < values.len() as u32);
        // SAFETY: the caller guarantees that every index is in bounds.
        let r = unsafe {
            let (x, y, z) = (
                &values.get_unchecked(a as usize).0,
                &values.get_unchecked(b as usize).0,
                &values.get_unchecked(c as usize).0,
            );
            f(x, y, z)
        };
        // SAFETY: as above.
        unsafe { *values.get_unchecked_mut(d as usize) = Row(r) };
    }
}

/// Dispatches a block of `kind` to its compiled loop.
///
/// # Safety
/// As [`block`].
#[inline(always)]
unsafe fn run_block<const L: usize>(values: &mut [Row<L>], kind: Kind, instrs: &[[u32; 4]]) {
    // The kinds as const parameters: one loop per kind, operations inlined.
    macro_rules! binary {
        ($op:expr) => {
            block(values, instrs, |x, y, _| {
                lanes(|l| bin::<{ $op as u8 }>(x[l], y[l]))
            })
        };
    }
    macro_rules! unary {
        ($op:expr) => {
            block(values, instrs, |x, _, _| {
                lanes(|l| un::<{ $op as u8 }>(x[l]))
            })
        };
    }
    macro_rules! fused {
        ($i:expr, $o:expr, false) => {
            block(values, instrs, |x, y, z| {
                lanes(|l| bin::<{ $o as u8 }>(bin::<{ $i as u8 }>(x[l], y[l]), z[l]))
            })
        };
        ($i:expr, $o:expr, true) => {
            block(values, instrs, |x, y, z| {
                lanes(|l| bin::<{ $o as u8 }>(z[l], bin::<{ $i as u8 }>(x[l], y[l])))
            })
        };
    }
    macro_rules! with_neg {
        ($o:expr, false) => {
            block(values, instrs, |x, y, _| {
                lanes(|l| bin::<{ $o as u8 }>(-x[l], y[l]))
            })
        };
        ($o:expr, true) => {
            block(values, instrs, |x, y, _| {
                lanes(|l| bin::<{ $o as u8 }>(y[l], -x[l]))
            })
        };
    }
    // SAFETY (every call): the caller's guarantee on `instrs`.
    unsafe {
        match kind {
            Kind::Species => unreachable!("species loads are run by the caller"),
            Kind::Binary(Bin::Add) => binary!(Bin::Add),
            Kind::Binary(Bin::Mul) => binary!(Bin::Mul),
            Kind::Binary(Bin::Div) => binary!(Bin::Div),
            Kind::Binary(Bin::Pow) => binary!(Bin::Pow),
            Kind::Binary(Bin::Min) => binary!(Bin::Min),
            Kind::Binary(Bin::Max) => binary!(Bin::Max),
            Kind::Unary(Un::Neg) => unary!(Un::Neg),
            Kind::Unary(Un::Exp) => unary!(Un::Exp),
            Kind::Unary(Un::Ln) => unary!(Un::Ln),
            Kind::Unary(Un::Sqrt) => unary!(Un::Sqrt),
            Kind::Unary(Un::Abs) => unary!(Un::Abs),
            Kind::Unary(Un::Step) => unary!(Un::Step),
            Kind::NegOf(Bin::Add) => block(values, instrs, |x, y, _| lanes(|l| -(x[l] + y[l]))),
            Kind::NegOf(Bin::Mul) => block(values, instrs, |x, y, _| lanes(|l| -(x[l] * y[l]))),
            Kind::NegOf(Bin::Div) => block(values, instrs, |x, y, _| lanes(|l| -(x[l] / y[l]))),
            Kind::WithNeg {
                outer: Bin::Add,
                right: false,
            } => with_neg!(Bin::Add, false),
            Kind::WithNeg {
                outer: Bin::Add,
                right: true,
            } => with_neg!(Bin::Add, true),
            Kind::WithNeg {
                outer: Bin::Mul,
                right: false,
            } => with_neg!(Bin::Mul, false),
            Kind::WithNeg {
                outer: Bin::Mul,
                right: true,
            } => with_neg!(Bin::Mul, true),
            Kind::WithNeg {
                outer: Bin::Div,
                right: false,
            } => with_neg!(Bin::Div, false),
            Kind::WithNeg {
                outer: Bin::Div,
                right: true,
            } => with_neg!(Bin::Div, true),
            Kind::Fused {
                inner,
                outer,
                right,
            } => match (inner, outer, right) {
                (Bin::Add, Bin::Add, false) => fused!(Bin::Add, Bin::Add, false),
                (Bin::Add, Bin::Add, true) => fused!(Bin::Add, Bin::Add, true),
                (Bin::Add, Bin::Mul, false) => fused!(Bin::Add, Bin::Mul, false),
                (Bin::Add, Bin::Mul, true) => fused!(Bin::Add, Bin::Mul, true),
                (Bin::Add, Bin::Div, false) => fused!(Bin::Add, Bin::Div, false),
                (Bin::Add, Bin::Div, true) => fused!(Bin::Add, Bin::Div, true),
                (Bin::Mul, Bin::Add, false) => fused!(Bin::Mul, Bin::Add, false),
                (Bin::Mul, Bin::Add, true) => fused!(Bin::Mul, Bin::Add, true),
                (Bin::Mul, Bin::Mul, false) => fused!(Bin::Mul, Bin::Mul, false),
                (Bin::Mul, Bin::Mul, true) => fused!(Bin::Mul, Bin::Mul, true),
                (Bin::Mul, Bin::Div, false) => fused!(Bin::Mul, Bin::Div, false),
                (Bin::Mul, Bin::Div, true) => fused!(Bin::Mul, Bin::Div, true),
                (Bin::Div, Bin::Add, false) => fused!(Bin::Div, Bin::Add, false),
                (Bin::Div, Bin::Add, true) => fused!(Bin::Div, Bin::Add, true),
                (Bin::Div, Bin::Mul, false) => fused!(Bin::Div, Bin::Mul, false),
                (Bin::Div, Bin::Mul, true) => fused!(Bin::Div, Bin::Mul, true),
                (Bin::Div, Bin::Div, false) => fused!(Bin::Div, Bin::Div, false),
                (Bin::Div, Bin::Div, true) => fused!(Bin::Div, Bin::Div, true),
                _ => unreachable!("only Add, Mul and Div are fused"),
            },
            Kind::NegOf(_) | Kind::WithNeg { .. } => {
                unreachable!("only Add, Mul and Div are fused")
            }
        }
    }
}

/// One instruction while a [`LaneProgram`] is built: kind, result register (of the
/// [`Program`]) and operand registers (or the species index).
#[derive(Clone, Copy, Debug)]
struct Instr {
    kind: Kind,
    d: u32,
    ops: [u32; 3],
}

impl Instr {
    fn reads(&self) -> &[u32] {
        &self.ops[..self.kind.n_reads()]
    }
}

/// Blocks (kind, range of instructions), how many of them are phase 0, instructions.
type Schedule = (Vec<(Kind, u32, u32)>, usize, Vec<Instr>);

/// One greedy list schedule of `body` into blocks of one kind (see [`LaneProgram::new`]):
/// phase-0 instructions first; the next block's kind among the ready ones by `rule`:
/// 0 the most ready instructions; 1 the largest share of that kind's remaining
/// instructions ready; 2 all of that kind's remaining instructions ready, else rule 0;
/// 3 the most instructions made ready by the block. Returns (blocks, blocks of phase 0,
/// instructions in order).
fn schedule(
    body: &[Instr],
    users: &[Vec<usize>],
    waiting: &[usize],
    phase: &[usize],
    rule: u8,
) -> Schedule {
    type Ready = std::collections::BTreeMap<Kind, Vec<usize>>;
    let mut waiting = waiting.to_vec();
    let mut remaining: std::collections::BTreeMap<(usize, Kind), usize> = Default::default();
    for (j, ins) in body.iter().enumerate() {
        *remaining.entry((phase[j], ins.kind)).or_default() += 1;
    }
    let mut ready: [Ready; 2] = Default::default();
    for (j, &w) in waiting.iter().enumerate() {
        if w == 0 {
            ready[phase[j]].entry(body[j].kind).or_default().push(j);
        }
    }
    let mut blocks = Vec::new();
    let mut prefix_blocks = 0;
    let mut order: Vec<Instr> = Vec::with_capacity(body.len());
    for ph in 0..2 {
        loop {
            let score = |kind: Kind, js: &Vec<usize>| -> (u64, u64) {
                let n_ready = js.len() as u64;
                let left = remaining[&(ph, kind)] as u64;
                match rule {
                    0 => (n_ready, 0),
                    1 => (n_ready * 1_000_000 / left, n_ready),
                    2 => ((n_ready == left) as u64, n_ready),
                    _ => (
                        js.iter().map(|&j| users[j].len() as u64).sum::<u64>(),
                        n_ready,
                    ),
                }
            };
            let Some(kind) = ready[ph]
                .iter()
                .max_by_key(|(kind, js)| (score(**kind, js), std::cmp::Reverse(**kind)))
                .map(|(kind, _)| *kind)
            else {
                break;
            };
            // The block also takes the instructions of its kind (and phase) that its own
            // instructions make ready (a chain of sums is one block): a block runs in order.
            let mut js = ready[ph].remove(&kind).expect("a ready kind");
            js.sort_unstable();
            let start = order.len() as u32;
            let mut next = 0;
            while next < js.len() {
                let j = js[next];
                next += 1;
                order.push(body[j]);
                *remaining.get_mut(&(ph, kind)).expect("counted") -= 1;
                for &u in &users[j] {
                    waiting[u] -= 1;
                    if waiting[u] == 0 {
                        if body[u].kind == kind && phase[u] == ph {
                            js.push(u);
                        } else {
                            ready[phase[u]].entry(body[u].kind).or_default().push(u);
                        }
                    }
                }
            }
            blocks.push((kind, start, order.len() as u32));
        }
        if ph == 0 {
            prefix_blocks = blocks.len();
        }
    }
    (blocks, prefix_blocks, order)
}

impl LaneProgram {
    /// Builds the lane program of `p` in three passes:
    /// 1. fusion: a binary Add, Mul or Div (or a Neg) whose value has one reader and is not
    ///    an output is computed inside that reader (two operations per instruction at most);
    /// 2. scheduling: repeatedly, of the instructions whose operands are computed, all those
    ///    of the most common kind form the next block, with those of the same kind that
    ///    they make ready in turn;
    /// 3. registers: the prologue's first (they keep their per-tissue values), then the
    ///    body's, a register reused once its value's last reader has run, so the register
    ///    file of `L` lanes stays small enough for the L1 cache. Outputs live to the end.
    ///
    /// The instructions that the first `prefix_outputs` outputs need come first, so that
    /// [`Self::run_prefix`] can recompute those outputs alone.
    pub fn new(p: &Program, prefix_outputs: usize) -> LaneProgram {
        let mut body: Vec<Instr> = p
            .body
            .iter()
            .map(|&(k, op)| {
                let (kind, ops) = match op {
                    Op::Species(s) => (Kind::Species, [s, 0, 0]),
                    Op::Add(a, b) => (Kind::Binary(Bin::Add), [a, b, 0]),
                    Op::Mul(a, b) => (Kind::Binary(Bin::Mul), [a, b, 0]),
                    Op::Div(a, b) => (Kind::Binary(Bin::Div), [a, b, 0]),
                    Op::Pow(a, b) => (Kind::Binary(Bin::Pow), [a, b, 0]),
                    Op::Min(a, b) => (Kind::Binary(Bin::Min), [a, b, 0]),
                    Op::Max(a, b) => (Kind::Binary(Bin::Max), [a, b, 0]),
                    Op::Neg(a) => (Kind::Unary(Un::Neg), [a, 0, 0]),
                    Op::Exp(a) => (Kind::Unary(Un::Exp), [a, 0, 0]),
                    Op::Ln(a) => (Kind::Unary(Un::Ln), [a, 0, 0]),
                    Op::Sqrt(a) => (Kind::Unary(Un::Sqrt), [a, 0, 0]),
                    Op::Abs(a) => (Kind::Unary(Un::Abs), [a, 0, 0]),
                    Op::Step(a) => (Kind::Unary(Un::Step), [a, 0, 0]),
                    Op::Const(_) | Op::Param(_) | Op::Gate(_) => {
                        unreachable!("leaves are in the prologue")
                    }
                };
                Instr { kind, d: k, ops }
            })
            .collect();
        let n = p.n_regs;
        // 1. Fusion.
        let mut readers = vec![0usize; n];
        for ins in &body {
            for &r in ins.reads() {
                readers[r as usize] += 1;
            }
        }
        for &r in &p.outputs {
            readers[r as usize] += 2; // never fused away
        }
        let mut producer = vec![usize::MAX; n];
        for (j, ins) in body.iter().enumerate() {
            producer[ins.d as usize] = j;
        }
        let mut dead = vec![false; body.len()];
        for j in 0..body.len() {
            let ins = body[j];
            // The producer of operand `r` if it may be fused into this instruction.
            let single = |r: u32, dead: &[bool]| -> Option<usize> {
                let q = producer[r as usize];
                (q != usize::MAX && readers[r as usize] == 1 && !dead[q]).then_some(q)
            };
            let fused = match ins.kind {
                Kind::Unary(Un::Neg) => {
                    single(ins.ops[0], &dead).and_then(|q| match body[q].kind {
                        Kind::Binary(inner) if fusable(inner) => {
                            Some((q, Kind::NegOf(inner), [body[q].ops[0], body[q].ops[1], 0]))
                        }
                        _ => None,
                    })
                }
                Kind::Binary(outer) if fusable(outer) => [1usize, 0]
                    .into_iter()
                    .filter(|&side| ins.ops[0] != ins.ops[1] || side == 1)
                    .find_map(|side| {
                        let q = single(ins.ops[side], &dead)?;
                        let other = ins.ops[1 - side];
                        // Add and Mul commute exactly (only a NaN's payload can depend on
                        // the order, which IEEE leaves open and LLVM does not keep
                        // either): one kind for both sides, so fewer, longer blocks.
                        let right = side == 1 && outer == Bin::Div;
                        match body[q].kind {
                            Kind::Binary(inner) if fusable(inner) => Some((
                                q,
                                Kind::Fused {
                                    inner,
                                    outer,
                                    right,
                                },
                                [body[q].ops[0], body[q].ops[1], other],
                            )),
                            Kind::Unary(Un::Neg) => Some((
                                q,
                                Kind::WithNeg { outer, right },
                                [body[q].ops[0], other, 0],
                            )),
                            _ => None,
                        }
                    }),
                _ => None,
            };
            if let Some((q, kind, ops)) = fused {
                dead[q] = true;
                body[j] = Instr {
                    kind,
                    d: ins.d,
                    ops,
                };
            }
        }
        let body: Vec<Instr> = body
            .into_iter()
            .zip(&dead)
            .filter(|(_, &d)| !d)
            .map(|(i, _)| i)
            .collect();
        // 2. Scheduling.
        let mut producer = vec![usize::MAX; n];
        for (j, ins) in body.iter().enumerate() {
            producer[ins.d as usize] = j;
        }
        let mut waiting = vec![0usize; body.len()];
        let mut users = vec![Vec::new(); body.len()];
        for (j, ins) in body.iter().enumerate() {
            for &r in ins.reads() {
                let q = producer[r as usize];
                if q != usize::MAX {
                    waiting[j] += 1;
                    users[q].push(j);
                }
            }
        }
        // The instructions the first `prefix_outputs` outputs need are scheduled first
        // (phase 0), so that those outputs can be recomputed alone ([`Self::run_prefix`]).
        let mut phase = vec![1usize; body.len()];
        let mut stack: Vec<usize> = p.outputs[..prefix_outputs]
            .iter()
            .map(|&r| producer[r as usize])
            .filter(|&q| q != usize::MAX)
            .collect();
        while let Some(j) = stack.pop() {
            if phase[j] == 0 {
                continue;
            }
            phase[j] = 0;
            for &r in body[j].reads() {
                let q = producer[r as usize];
                if q != usize::MAX {
                    stack.push(q);
                }
            }
        }
        // Several greedy rules for the next block's kind; the schedule with the fewest
        // blocks (dispatches) wins.
        let mut best: Option<Schedule> = None;
        for rule in 0..4 {
            let (blocks, prefix_blocks, order) = schedule(&body, &users, &waiting, &phase, rule);
            if best.as_ref().is_none_or(|b| blocks.len() < b.0.len()) {
                best = Some((blocks, prefix_blocks, order));
            }
        }
        let (blocks, prefix_blocks, order) = best.expect("a schedule");
        assert_eq!(order.len(), body.len(), "every instruction is scheduled");
        // 3. Registers.
        let mut last_read = vec![usize::MAX; n];
        for (pos, ins) in order.iter().enumerate() {
            for &r in ins.reads() {
                last_read[r as usize] = pos;
            }
        }
        let mut is_output = vec![false; n];
        for &r in &p.outputs {
            is_output[r as usize] = true;
        }
        let mut renamed = vec![u32::MAX; n];
        let prologue: Vec<(u32, Op)> = p
            .prologue
            .iter()
            .enumerate()
            .map(|(j, &(k, op))| {
                renamed[k as usize] = j as u32;
                (j as u32, op)
            })
            .collect();
        let n_prologue = prologue.len() as u32;
        let mut n_regs = n_prologue;
        let mut free: Vec<u32> = Vec::new();
        let mut instrs = Vec::with_capacity(order.len());
        for (pos, ins) in order.iter().enumerate() {
            let mut ops = [0u32; 3];
            for (o, &r) in ops.iter_mut().zip(ins.reads()) {
                *o = renamed[r as usize];
            }
            if ins.kind == Kind::Species {
                ops[0] = ins.ops[0];
            }
            let mut freed: Vec<u32> = Vec::new();
            for &r in ins.reads() {
                let reg = renamed[r as usize];
                if reg >= n_prologue
                    && last_read[r as usize] == pos
                    && !is_output[r as usize]
                    && !freed.contains(&reg)
                {
                    freed.push(reg);
                }
            }
            free.extend(freed);
            let d = free.pop().unwrap_or_else(|| {
                n_regs += 1;
                n_regs - 1
            });
            renamed[ins.d as usize] = d;
            instrs.push([d, ops[0], ops[1], ops[2]]);
        }
        let outputs: Vec<u32> = p.outputs.iter().map(|&r| renamed[r as usize]).collect();
        let n_species = order
            .iter()
            .filter(|i| i.kind == Kind::Species)
            .map(|i| i.ops[0] as usize + 1)
            .max()
            .unwrap_or(0);
        // `run` indexes registers unchecked: every index must be below n_regs.
        for &(kind, start, end) in &blocks {
            for &[d, a, b, c] in &instrs[start as usize..end as usize] {
                let regs = if kind == Kind::Species {
                    d
                } else {
                    d.max(a).max(b).max(c)
                };
                assert!(regs < n_regs);
            }
        }
        assert!(outputs.iter().all(|&r| r < n_regs) && n_regs > 0 || outputs.is_empty());
        LaneProgram {
            prologue,
            blocks,
            prefix_blocks,
            instrs,
            n_regs: (n_regs as usize).max(1),
            n_species,
            outputs,
        }
    }

    /// Instructions per evaluation (excluding the per-tissue prologue).
    pub fn n_instructions(&self) -> usize {
        self.instrs.len()
    }

    /// Dispatches per evaluation (blocks of one kind).
    pub fn n_blocks(&self) -> usize {
        self.blocks.len()
    }

    pub fn n_registers(&self) -> usize {
        self.n_regs
    }

    /// Runs the program for `L` voxels at once. Lane l computes exactly what
    /// [`Program::run`] computes for `conc[·][l]` and `tissue[l]`: the same f64 operations
    /// on the same operands (the lanes only share the instruction dispatch), so its
    /// results are bit-identical to the scalar run's.
    ///
    /// `conc[s].0[l]`: species s (scenario order) of lane l, mM; `tissue[l]`: tissue id of
    /// lane l; `params[p][tissue]` as in [`Program::run`].
    #[inline(always)]
    pub fn run<const L: usize>(
        &self,
        conc: &[Row<L>],
        tissue: &[usize; L],
        params: &[Vec<f64>],
        regs: &mut LaneRegisters<L>,
    ) {
        self.run_blocks(conc, tissue, params, regs, self.blocks.len());
    }

    /// Recomputes only the first `prefix_outputs` outputs (see [`Self::new`]) for new
    /// `conc`; the other outputs' registers are then meaningless. Same results as
    /// [`Self::run`] for those outputs.
    #[inline(always)]
    pub fn run_prefix<const L: usize>(
        &self,
        conc: &[Row<L>],
        tissue: &[usize; L],
        params: &[Vec<f64>],
        regs: &mut LaneRegisters<L>,
    ) {
        self.run_blocks(conc, tissue, params, regs, self.prefix_blocks);
    }

    /// Instructions of the prefix (see [`Self::new`]).
    pub fn n_prefix_instructions(&self) -> usize {
        self.blocks[..self.prefix_blocks]
            .last()
            .map_or(0, |&(_, _, end)| end as usize)
    }

    #[inline(always)]
    fn run_blocks<const L: usize>(
        &self,
        conc: &[Row<L>],
        tissue: &[usize; L],
        params: &[Vec<f64>],
        regs: &mut LaneRegisters<L>,
        n_blocks: usize,
    ) {
        assert_eq!(
            regs.values.len(),
            self.n_regs,
            "registers of another program"
        );
        let conc = &conc[..self.n_species];
        for (l, &t) in tissue.iter().enumerate() {
            if regs.tissue[l] == Some(t) {
                continue;
            }
            for &(k, op) in &self.prologue {
                regs.values[k as usize].0[l] = match op {
                    Op::Const(c) => c,
                    Op::Param(p) => params[p as usize][t],
                    Op::Gate(m) => ((m >> t) & 1) as f64,
                    _ => unreachable!("the prologue holds leaves only"),
                };
            }
            regs.tissue[l] = Some(t);
        }
        let values = &mut regs.values[..];
        for &(kind, start, end) in &self.blocks[..n_blocks] {
            let instrs = &self.instrs[start as usize..end as usize];
            if kind == Kind::Species {
                for &[d, s, _, _] in instrs {
                    let c = &conc[s as usize];
                    values[d as usize] = Row(lanes(|l| c[l].max(0.0)));
                }
                continue;
            }
            // SAFETY: `LaneProgram::new` checked every register index against `n_regs`,
            // which is `values.len()` (asserted above).
            unsafe { run_block(values, kind, instrs) };
        }
    }
}

/// The [`Tapes`] as [`LaneProgram`]s.
#[derive(Clone, Debug)]
pub struct LaneTapes {
    pub rhs: LaneProgram,
    pub rhs_jac: LaneProgram,
    pub qss: LaneProgram,
}

impl LaneTapes {
    pub fn new(t: &Tapes) -> LaneTapes {
        LaneTapes {
            rhs: LaneProgram::new(&t.rhs, 0),
            // f (the first n outputs) first: the integrator's second stage recomputes f
            // alone in the same registers.
            rhs_jac: LaneProgram::new(&t.rhs_jac, t.rhs.outputs.len()),
            qss: LaneProgram::new(&t.qss, 0),
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
