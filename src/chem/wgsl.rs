//! Generated WGSL of a [`Network`]: parameters as named constants, one storage binding per
//! species, and the functions the integrator template (`shaders/react_ros2.wgsl`) calls:
//! `load_voxel`/`store_voxel`, `get_state`/`set_state`, `eval_rhs`, `eval_rhs_jac`,
//! `eval_qss`. Written to the run folder as `react.wgsl` for inspection.

use std::fmt::Write;

use super::graph::{Graph, Id, Node};
use super::sparse::{FactorOp, LuPlan};
use super::Network;
use crate::grid::held_bit;

/// The coupled scheme's per-voxel block template (the generated block in
/// [`Layout::Vectors`] and [`coupled_functions`] inserted at its marker).
pub const COUPLED_TEMPLATE: &str = include_str!("../../shaders/coupled_blocks.wgsl");
/// The coupled multigrid's template (`block_multigrid_source`).
pub const BLOCK_MULTIGRID_TEMPLATE: &str = include_str!("../../shaders/block_multigrid.wgsl");

/// The integrator template with the generated block marker.
pub const TEMPLATE: &str = include_str!("../../shaders/react_ros2.wgsl");
const MARKER: &str = "//!GENERATED";
/// First binding of the species buffers (0–4 are params, mask, h_last, status, residual).
pub const FIRST_SPECIES_BINDING: u32 = 5;

fn f32_literal(v: f64) -> String {
    let x = v as f32;
    if x == 0.0 {
        "0.0".into()
    } else if x.is_finite() {
        let s = format!("{x:e}");
        if x < 0.0 {
            format!("({s}f)")
        } else {
            format!("{s}f")
        }
    } else if x > 0.0 {
        "3.4028235e38f".into()
    } else {
        "(-3.4028235e38f)".into()
    }
}

struct Emitter<'a> {
    net: &'a Network,
    g: &'a Graph,
}

impl Emitter<'_> {
    fn species(&self, s: usize) -> &str {
        &self.net.species_names[s]
    }

    fn expr(&self, id: Id) -> String {
        let n = |i: Id| format!("n{i}");
        match self.g.node(id) {
            Node::Const(b) => f32_literal(f64::from_bits(b)),
            Node::Species(s) => format!("max(c_{}, 0.0)", self.species(s)),
            Node::Param(p) => {
                let values = &self.net.params[p];
                if values.windows(2).all(|w| w[0] == w[1]) {
                    format!("P_{}", self.net.param_names[p])
                } else {
                    format!("P_{}[tissue]", self.net.param_names[p])
                }
            }
            Node::TissueGate(m) => format!("select(0.0, 1.0, ((0x{m:x}u >> tissue) & 1u) != 0u)"),
            Node::Add(a, b) => format!("{} + {}", n(a), n(b)),
            Node::Mul(a, b) => format!("{} * {}", n(a), n(b)),
            Node::Div(a, b) => format!("{} / {}", n(a), n(b)),
            Node::Neg(a) => format!("-{}", n(a)),
            Node::Pow(a, b) => match self.g.constant(b) {
                Some(2.0) => format!("{} * {}", n(a), n(a)),
                Some(3.0) => format!("{} * {} * {}", n(a), n(a), n(a)),
                Some(0.5) => format!("sqrt({})", n(a)),
                Some(-1.0) => format!("1.0 / {}", n(a)),
                _ => format!("pow({}, {})", n(a), n(b)),
            },
            Node::Exp(a) => format!("exp({})", n(a)),
            Node::Ln(a) => format!("log({})", n(a)),
            Node::Sqrt(a) => format!("sqrt({})", n(a)),
            Node::Abs(a) => format!("abs({})", n(a)),
            Node::Min(a, b) => format!("min({}, {})", n(a), n(b)),
            Node::Max(a, b) => format!("max({}, {})", n(a), n(b)),
            Node::Step(a) => format!("select(0.0, 1.0, {} > 0.0)", n(a)),
        }
    }

    /// `let nK = …;` for every node the roots need, with the labels as comments.
    fn body(&self, out: &mut String, roots: &[Id], labels: &[(Id, String)]) {
        for id in self.g.schedule(roots) {
            let _ = write!(out, "    let n{id}: f32 = {};", self.expr(id));
            for (l_id, label) in labels {
                if *l_id == id {
                    let _ = write!(out, " // {label}");
                }
            }
            out.push('\n');
        }
    }
}

/// Where the generated block's kernel finds the species.
pub enum Layout<'a> {
    /// One storage binding per bound species (`s_O2`, …), from
    /// [`FIRST_SPECIES_BINDING`]: the split scheme's reaction kernel.
    Bindings,
    /// The coupled scheme's vectors (`shaders/coupled_blocks.wgsl`): an integrated species
    /// at `y[var · cp.n + v]`, a read-only one at `fixed[j · cp.n + v]`; per scenario
    /// species, its var index and its fixed index.
    Vectors {
        var_of: &'a [Option<usize>],
        fixed_of: &'a [Option<usize>],
    },
}

/// The generated block (declarations and functions) for `net`, species in bindings.
pub fn generate(net: &Network) -> String {
    generate_block(net, &Layout::Bindings)
}

/// The generated block for `net` with the species where `layout` says.
pub fn generate_block(net: &Network, layout: &Layout) -> String {
    let g = &net.graph;
    let e = Emitter { net, g };
    let ns = net.state.len();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// ---- generated by ionfield {} from the scenario's [reactions] ----",
        crate::VERSION
    );
    let _ = writeln!(
        out,
        "// State (integrated): {}",
        net.names(net.state.iter().copied())
    );
    let _ = writeln!(
        out,
        "// Inputs (read only): {}",
        net.names(net.inputs.iter().copied())
    );
    let _ = writeln!(
        out,
        "// Quasi-steady: {}",
        net.names(net.qss.iter().map(|&(s, _)| s))
    );
    let _ = writeln!(out, "// Reactions (rate in mM/s):");
    for (name, equation, rate) in &net.reaction_text {
        let _ = writeln!(out, "//   {name}: {equation}   rate = {rate}");
    }
    let _ = writeln!(
        out,
        "const NS: u32 = {ns}u;\nconst NSS: u32 = {}u;",
        ns * ns
    );
    let bits: Vec<String> = net
        .state
        .iter()
        .map(|&s| format!("0x{:x}u", held_bit(s)))
        .collect();
    let atol: Vec<String> = net.atol_mm.iter().map(|&a| f32_literal(a)).collect();
    let _ = writeln!(out, "// Absolute tolerance of each state species, mM.");
    let _ = writeln!(
        out,
        "var<private> ATOL: array<f32, NS> = array<f32, NS>({});",
        atol.join(", ")
    );
    let _ = writeln!(
        out,
        "// Mask bit of each state species' held (Dirichlet/vessel) voxels."
    );
    let _ = writeln!(
        out,
        "var<private> HELD_BITS: array<u32, NS> = array<u32, NS>({});",
        bits.join(", ")
    );
    let _ = writeln!(
        out,
        "// Conserved totals: {}",
        if net.laws.is_empty() {
            "none".to_string()
        } else {
            net.describe_laws().join("; ")
        }
    );
    if net.projector.is_empty() {
        let _ = writeln!(
            out,
            "const HAS_PROJECTOR: bool = false;\nvar<private> PROJECTOR: array<f32, NSS>;"
        );
    } else {
        let v: Vec<String> = net.projector.iter().map(|&x| f32_literal(x)).collect();
        let _ = writeln!(out, "const HAS_PROJECTOR: bool = true;\n// Projector onto the conserved totals (row-major): removed from every increment.\nvar<private> PROJECTOR: array<f32, NSS> = array<f32, NSS>({});", v.join(", "));
    }
    let _ = writeln!(
        out,
        "\n// Parameters ([parameters]; unit and source as in the scenario)."
    );
    for (p, name) in net.param_names.iter().enumerate() {
        let vals = &net.params[p];
        let note = &net.param_notes[p];
        if vals.windows(2).all(|w| w[0] == w[1]) {
            let _ = writeln!(
                out,
                "const P_{name}: f32 = {}; // {note}",
                f32_literal(vals[0])
            );
        } else {
            let mut v: Vec<String> = vals.iter().map(|&x| f32_literal(x)).collect();
            v.resize(16, "0.0".into());
            let _ = writeln!(out, "var<private> P_{name}: array<f32, 16> = array<f32, 16>({}); // {note}; by tissue id", v.join(", "));
        }
    }
    let bound = net.bound_species();
    match layout {
        Layout::Bindings => species_bindings(&mut out, net, &e, &bound),
        Layout::Vectors { var_of, fixed_of } => {
            for &s in &bound {
                let _ = writeln!(out, "var<private> c_{}: f32;", e.species(s));
            }
            out.push_str("\nfn load_voxel(v: u32) {\n");
            for &s in net.state.iter().chain(&net.inputs) {
                let name = e.species(s);
                match (var_of[s], fixed_of[s]) {
                    // Negative values within the tolerance read as 0, as on the CPU.
                    (Some(k), _) => {
                        let _ = writeln!(out, "    c_{name} = max(y[{k}u * cp.n + v], 0.0);");
                    }
                    (None, Some(j)) => {
                        let _ = writeln!(out, "    c_{name} = fixed[{j}u * cp.n + v];");
                    }
                    (None, None) => {
                        let _ = writeln!(out, "    c_{name} = 0.0; // not stored");
                    }
                }
            }
            out.push_str("}\n");
            out.push_str("\n// Quasi-steady species q (in net.qss order) into xout[q · n + v].\nfn store_qss(v: u32) {\n");
            for (q, &(s, _)) in net.qss.iter().enumerate() {
                let _ = writeln!(out, "    xout[{q}u * cp.n + v] = c_{};", e.species(s));
            }
            out.push_str("}\n");
        }
    }
    out.push_str("\nfn get_state(y: ptr<function, array<f32, NS>>) {\n");
    for (i, &s) in net.state.iter().enumerate() {
        let _ = writeln!(out, "    (*y)[{i}] = c_{};", e.species(s));
    }
    out.push_str("}\n\nfn set_state(y: ptr<function, array<f32, NS>>) {\n");
    for (i, &s) in net.state.iter().enumerate() {
        let _ = writeln!(out, "    c_{} = (*y)[{i}];", e.species(s));
    }
    out.push_str("}\n");

    // Labels: reaction rates are not separate roots, so label the f_i and J_ik outputs.
    let mut labels: Vec<(Id, String)> = Vec::new();
    for (i, &f) in net.rhs.iter().enumerate() {
        labels.push((f, format!("d{}/dt", e.species(net.state[i]))));
    }
    out.push_str("\n// f = dy/dt, mM/s.\nfn eval_rhs(f: ptr<function, array<f32, NS>>) {\n");
    e.body(&mut out, &net.rhs, &labels);
    for (i, &f) in net.rhs.iter().enumerate() {
        let _ = writeln!(out, "    (*f)[{i}] = n{f};");
    }
    out.push_str("}\n\n// f and J = ∂f/∂y (row-major, 1/s).\nfn eval_rhs_jac(f: ptr<function, array<f32, NS>>, jm: ptr<function, array<f32, NSS>>) {\n");
    let mut roots = net.rhs.clone();
    roots.extend(&net.jac);
    e.body(&mut out, &roots, &labels);
    for (i, &f) in net.rhs.iter().enumerate() {
        let _ = writeln!(out, "    (*f)[{i}] = n{f};");
    }
    for (k, &j) in net.jac.iter().enumerate() {
        if g.constant(j) == Some(0.0) {
            let _ = writeln!(out, "    (*jm)[{k}] = 0.0;");
        } else {
            let _ = writeln!(out, "    (*jm)[{k}] = n{j};");
        }
    }
    out.push_str(
        "}\n\n// Quasi-steady species = production / loss at the current state.\nfn eval_qss() {\n",
    );
    let q: Vec<Id> = net.qss.iter().map(|&(_, v)| v).collect();
    e.body(&mut out, &q, &[]);
    for &(s, v) in &net.qss {
        let _ = writeln!(out, "    c_{} = n{v};", e.species(s));
    }
    out.push_str("}\n");
    lu_functions(&mut out, &LuPlan::new(net), net);
    out.push_str("// ---- end of generated block ----\n");
    out
}

/// [`Layout::Bindings`]: one storage binding per bound species, the voxel's private values,
/// `load_voxel` and `store_voxel`.
fn species_bindings(out: &mut String, net: &Network, e: &Emitter, bound: &[usize]) {
    let _ = writeln!(
        out,
        "\n// Species fields, one binding each, and the voxel's values."
    );
    for (b, &s) in bound.iter().enumerate() {
        let access = if net.inputs.contains(&s) {
            "read"
        } else {
            "read_write"
        };
        let role = if net.state.contains(&s) {
            "state"
        } else if net.inputs.contains(&s) {
            "input"
        } else {
            "quasi-steady (written)"
        };
        let _ = writeln!(
            out,
            "@group(0) @binding({}) var<storage, {access}> s_{}: array<f32>; // {role}",
            FIRST_SPECIES_BINDING as usize + b,
            e.species(s)
        );
    }
    for &s in bound {
        let _ = writeln!(out, "var<private> c_{}: f32;", e.species(s));
    }

    out.push_str("\nfn load_voxel(v: u32) {\n");
    for &s in net.state.iter().chain(&net.inputs) {
        let _ = writeln!(out, "    c_{0} = s_{0}[v];", e.species(s));
    }
    out.push_str("}\n\nfn store_voxel(v: u32) {\n");
    for &s in net.state.iter().chain(net.qss.iter().map(|(q, _)| q)) {
        let _ = writeln!(out, "    s_{0}[v] = c_{0};", e.species(s));
    }
    out.push_str("}\n");
}

/// The WGSL of the coupled multigrid (`shaders/block_multigrid.wgsl` appended to
/// `multigrid_source`, the per-species multigrid whose bindings and helpers it shares) for
/// `net` with `n_vars` integrated species, species `s` at integrated index `var_of[s]`.
pub fn block_multigrid_source(
    multigrid_source: &str,
    net: &Network,
    var_of: &[Option<usize>],
    n_vars: usize,
) -> String {
    let plan = LuPlan::new(net);
    let n = plan.n;
    let slots = plan.slots();
    let var = |i: usize| var_of[net.state[i]].expect("every state species is integrated");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// ---- generated by ionfield {} from the scenario's [reactions] ----",
        crate::VERSION
    );
    let _ = writeln!(
        out,
        "const NS: u32 = {n}u;\nconst NSS: u32 = {}u;\nconst NV: u32 = {n_vars}u;\n// Per voxel: entries of J_R, of the factored block.\nconst NJ: u32 = {}u;\nconst NL: u32 = {}u;",
        n * n,
        plan.matrix.len().max(1),
        slots.len().max(1)
    );
    let rows: Vec<String> = (0..n).map(|i| format!("{}u", var(i))).collect();
    let _ = writeln!(
        out,
        "// Integrated index of each state row.\nconst VAR_OF_ROW = array<u32, NS>({});",
        rows.join(", ")
    );
    let row_of: Vec<String> = (0..n_vars)
        .map(|k| match (0..n).find(|&i| var(i) == k) {
            Some(i) => format!("{i}u"),
            None => "NO_ROW".into(),
        })
        .collect();
    let _ = writeln!(
        out,
        "const NO_ROW: u32 = 0xffffffffu;\n// State row of each integrated species (NO_ROW: outside the network).\nconst ROW_OF_VAR = array<u32, NV>({});",
        row_of.join(", ")
    );
    out.push_str("\n// m = −J_R of voxel v (blocks at joff), 0 off the pattern.\nfn neg_jac(joff: u32, v: u32, m: ptr<function, array<f32, NSS>>) {\n");
    for ix in 0..n * n {
        match plan.matrix.iter().position(|&x| x == ix) {
            Some(q) => {
                let _ = writeln!(out, "    (*m)[{ix}] = -jacs[joff + v * NJ + {q}u];");
            }
            None => {
                let _ = writeln!(out, "    (*m)[{ix}] = 0.0;");
            }
        }
    }
    out.push_str("}\n\nfn store_block(loff: u32, v: u32, m: ptr<function, array<f32, NSS>>) {\n");
    for (q, &ix) in slots.iter().enumerate() {
        let _ = writeln!(out, "    lus[loff + v * NL + {q}u] = (*m)[{ix}];");
    }
    out.push_str("}\n\nfn load_block(loff: u32, v: u32, m: ptr<function, array<f32, NSS>>) {\n");
    for (q, &ix) in slots.iter().enumerate() {
        let _ = writeln!(out, "    (*m)[{ix}] = lus[loff + v * NL + {q}u];");
    }
    out.push_str("}\n\n// (J_R·x) of integrated species k at voxel v of this level (x at level.vec_off).\nfn jx_var(k: u32, joff: u32, v: u32) -> f32 {\n    switch k {\n");
    for i in 0..n {
        let terms: Vec<String> = plan
            .matrix
            .iter()
            .enumerate()
            .filter(|(_, &ix)| ix / n == i)
            .map(|(q, &ix)| {
                format!(
                    "jacs[joff + v * NJ + {q}u] * x[level.vec_off + {}u * level.n + v]",
                    var(ix % n)
                )
            })
            .collect();
        let body = if terms.is_empty() {
            "0.0".to_string()
        } else {
            terms.join(" + ")
        };
        let _ = writeln!(out, "        case {}u: {{ return {body}; }}", var(i));
    }
    out.push_str("        default: { return 0.0; }\n    }\n}\n");
    lu_functions(&mut out, &plan, net);
    out.push_str("// ---- end of generated block ----\n");
    crate::grid::wgsl_constants()
        + multigrid_source
        + &BLOCK_MULTIGRID_TEMPLATE.replacen(MARKER, &out, 1)
}

/// The coupled block kernel's source for `net`: integrated species at `y[var · n + v]`
/// (`var_of`, per scenario species), read-only ones at `fixed[j · n + v]` (`fixed_of`),
/// `n_vars` integrated species in all.
pub fn coupled_kernel_source(
    net: &Network,
    var_of: &[Option<usize>],
    fixed_of: &[Option<usize>],
    n_vars: usize,
) -> String {
    let mut block = generate_block(net, &Layout::Vectors { var_of, fixed_of });
    coupled_functions(&mut block, net, var_of, n_vars);
    crate::grid::wgsl_constants() + &COUPLED_TEMPLATE.replacen(MARKER, &block, 1)
}

/// The coupled template's storage functions, unrolled: f and J_R (on the plan's
/// `matrix` entries, `NJ` per voxel) and the LU (on [`LuPlan::slots`], `NL` per voxel) to and
/// from their buffers, the block solve's gather and scatter, σ⁻¹ for integrated species
/// outside the network, and out −= J_R·x.
fn coupled_functions(out: &mut String, net: &Network, var_of: &[Option<usize>], n_vars: usize) {
    let plan = LuPlan::new(net);
    let n = plan.n;
    let slots = plan.slots();
    let var = |i: usize| var_of[net.state[i]].expect("every state species is integrated");
    let _ = writeln!(
        out,
        "\n// Per voxel: {} entries of J_R, {} of the factored block.\nconst NJ: u32 = {}u;\nconst NL: u32 = {}u;",
        plan.matrix.len(),
        slots.len(),
        plan.matrix.len().max(1),
        slots.len().max(1)
    );
    out.push_str("\nfn store_f(v: u32, f: ptr<function, array<f32, NS>>) {\n");
    for i in 0..n {
        let _ = writeln!(out, "    fout[{}u * cp.n + v] = (*f)[{i}];", var(i));
    }
    out.push_str("}\n\nfn store_jac(v: u32, jm: ptr<function, array<f32, NSS>>) {\n");
    for (q, &ix) in plan.matrix.iter().enumerate() {
        let _ = writeln!(out, "    jac[v * NJ + {q}u] = (*jm)[{ix}];");
    }
    out.push_str("}\n\nfn store_lu(v: u32, m: ptr<function, array<f32, NSS>>) {\n");
    for (q, &ix) in slots.iter().enumerate() {
        let _ = writeln!(out, "    lu[v * NL + {q}u] = (*m)[{ix}];");
    }
    out.push_str("}\n\nfn load_lu(v: u32, m: ptr<function, array<f32, NSS>>) {\n");
    for (q, &ix) in slots.iter().enumerate() {
        let _ = writeln!(out, "    (*m)[{ix}] = lu[v * NL + {q}u];");
    }
    out.push_str("}\n\nfn gather_b(v: u32, b: ptr<function, array<f32, NS>>) {\n");
    for i in 0..n {
        let _ = writeln!(out, "    (*b)[{i}] = xin[{}u * cp.n + v];", var(i));
    }
    out.push_str("}\n\nfn scatter_b(v: u32, b: ptr<function, array<f32, NS>>) {\n");
    for i in 0..n {
        let _ = writeln!(out, "    xout[{}u * cp.n + v] = (*b)[{i}];", var(i));
    }
    out.push_str(
        "}\n\n// Integrated species outside the network: σ⁻¹.\nfn scale_others(v: u32) {\n",
    );
    let in_net: Vec<usize> = (0..n).map(var).collect();
    for k in (0..n_vars).filter(|k| !in_net.contains(k)) {
        let _ = writeln!(
            out,
            "    xout[{k}u * cp.n + v] = xin[{k}u * cp.n + v] / cp.sigma;"
        );
    }
    out.push_str("}\n\n// xout −= J_R·xin in voxel v.\nfn jr_apply(v: u32) {\n");
    for i in 0..n {
        let terms: Vec<String> = plan
            .matrix
            .iter()
            .enumerate()
            .filter(|(_, &ix)| ix / n == i)
            .map(|(q, &ix)| format!("jac[v * NJ + {q}u] * xin[{}u * cp.n + v]", var(ix % n)))
            .collect();
        if !terms.is_empty() {
            let _ = writeln!(
                out,
                "    xout[{0}u * cp.n + v] -= {1};",
                var(i),
                terms.join(" + ")
            );
        }
    }
    out.push_str("}\n");
}

/// The complete kernel source: the template with the generated block inserted.
pub fn kernel_source(net: &Network) -> String {
    crate::grid::wgsl_constants() + &TEMPLATE.replacen(MARKER, &generate(net), 1)
}

/// The matrix functions of the integrator, unrolled from the sparse LU plan: every index is
/// a constant, so the arrays stay in registers.
fn lu_functions(out: &mut String, plan: &LuPlan, net: &Network) {
    let n = plan.n;
    out.push_str("\n// M = I/(γh) − J over J's nonzeros; held rows keep only the diagonal.\n");
    out.push_str("fn assemble(inv: f32, held_mask: u32, jm: ptr<function, array<f32, NSS>>, m: ptr<function, array<f32, NSS>>) {\n");
    for i in 0..n {
        let _ = writeln!(
            out,
            "    let held{i} = (held_mask & 0x{:x}u) != 0u;",
            held_bit(net.state[i])
        );
    }
    for ix in 0..n * n {
        let (i, k) = (ix / n, ix % n);
        if plan.matrix.contains(&ix) {
            if i == k {
                let _ = writeln!(
                    out,
                    "    (*m)[{ix}] = inv - select((*jm)[{ix}], 0.0, held{i});"
                );
            } else {
                let _ = writeln!(out, "    (*m)[{ix}] = select(-(*jm)[{ix}], 0.0, held{i});");
            }
        } else {
            let _ = writeln!(out, "    (*m)[{ix}] = 0.0;");
        }
    }
    out.push_str(
        "}\n\n// Sparse LU without pivoting (fill-in planned); false if a pivot vanishes.\n",
    );
    out.push_str("fn lu_factor(m: ptr<function, array<f32, NSS>>) -> bool {\n");
    for op in &plan.factor {
        match *op {
            FactorOp::Pivot(kk) => {
                let _ = writeln!(
                    out,
                    "    if (*m)[{kk}] == 0.0 || !is_finite((*m)[{kk}]) {{ return false; }}"
                );
            }
            FactorOp::Scale(ik, kk) => {
                let _ = writeln!(out, "    (*m)[{ik}] = (*m)[{ik}] / (*m)[{kk}];");
            }
            FactorOp::Update(ij, ik, kj) => {
                let _ = writeln!(out, "    (*m)[{ij}] -= (*m)[{ik}] * (*m)[{kj}];");
            }
        }
    }
    out.push_str("    return true;\n}\n\n// Solves L·U·x = b in place of b.\n");
    out.push_str(
        "fn lu_solve(m: ptr<function, array<f32, NSS>>, b: ptr<function, array<f32, NS>>) {\n",
    );
    for &(i, ik, k) in &plan.forward {
        let _ = writeln!(out, "    (*b)[{i}] -= (*m)[{ik}] * (*b)[{k}];");
    }
    for (i, row) in &plan.backward {
        let mut line = format!("    (*b)[{i}] = ((*b)[{i}]");
        for &(ij, j) in row {
            line += &format!(" - (*m)[{ij}] * (*b)[{j}]");
        }
        let _ = writeln!(out, "{line}) / (*m)[{}];", i * n + i);
    }
    out.push_str("}\n\n// r = b − A·x over A's nonzeros.\n");
    out.push_str("fn mat_residual(a: ptr<function, array<f32, NSS>>, x: ptr<function, array<f32, NS>>, b: ptr<function, array<f32, NS>>, r: ptr<function, array<f32, NS>>) {\n");
    for i in 0..n {
        let mut line = format!("    (*r)[{i}] = (*b)[{i}]");
        for &ix in plan.matrix.iter().filter(|&&ix| ix / n == i) {
            line += &format!(" - (*a)[{ix}] * (*x)[{}]", ix % n);
        }
        let _ = writeln!(out, "{line};");
    }
    out.push_str("}\n");
}
