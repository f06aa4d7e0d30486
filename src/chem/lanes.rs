//! Batched twin of [`super::ros2::integrate`]: `L` voxels ([`LANES`] in the CPU backend)
//! advance together, structure of arrays (a [`Row`] of `L` f64 per quantity, lane l = one
//! voxel), so the tape's instruction dispatch, the sparse LU's index loads and the loop
//! overheads are paid once per `L` voxels and the arithmetic runs in SIMD registers.
//!
//! Same algorithm as the scalar integrator, lane by lane: ROS2 with its own adaptive
//! sub-steps per voxel (t, h, acceptance, rejections, `h_last` memory), the same error
//! norm, rejection rules and projector. Every lane performs the same f64 operations on the
//! same operands as [`super::ros2::integrate`] on that voxel, so the results (fields, step
//! sizes, sub-step counts, faults) are bit-identical to the scalar path, which stays the
//! reference (tests/chemistry_lanes.rs checks it on every shipped network).
//!
//! Divergence: voxels need different numbers of sub-steps. A lane whose voxel is finished
//! takes the next voxel of the chunk at once ([`integrate_chunk`] streams voxels through
//! the lanes), so lanes only idle at the end of a chunk. When all lanes start and finish
//! together (the common case of one sub-step per call), `L` neighbouring voxels are loaded
//! and stored as contiguous slices.
//!
//! [`RhsJacLanes`] exposes the batched f and J evaluation alone, for other integrators.

use super::ros2::{Fault, Outcome, Prepared, F32_MAX, GAMMA};
use super::sparse::LanePlan;
use super::tape::{lanes, LaneProgram, LaneRegisters, Row};
use super::Network;
use crate::grid::{held_bit, TISSUE_ID_MASK};

/// Voxels per batch of the CPU backend: a [`Row`] of 32 f64 is eight AVX2 registers. The
/// interpreter's per-instruction costs (operand indices, loop, dispatch) are paid per row,
/// so wider rows amortise them over more voxels, until the register file (≈ 170 rows of
/// the default network's f + J program) and the LU matrices fall out of the L1/L2 caches.
/// Measured on the default network (whole chunk, one thread, ns per voxel sub-step):
/// 8 lanes ≈ 510–730, 16 ≈ 340–390, 32 ≈ 300–320, 64 ≈ 400–420.
pub const LANES: usize = 32;

/// The voxels of one [`integrate_chunk`] call, as the CPU backend stores them: one slice
/// per species, one value per voxel.
pub struct Chunk<'a> {
    /// The values of each bound species ([`Network::bound_species`] order: state, inputs,
    /// quasi-steady), mM. Advanced in place; input species are only read.
    pub conc: Vec<&'a mut [f64]>,
    /// Voxel masks: tissue id in the low bits (`TISSUE_ID_MASK`), then one held bit per
    /// species (`held_bit`).
    pub mask: &'a [u32],
    /// Step size each voxel ended its last call with, s (0 = none yet: start with the
    /// interval); updated for the voxels that succeed.
    pub h_last: &'a mut [f64],
}

/// Totals of one [`integrate_chunk`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChunkOutcome {
    /// Sub-steps attempted by the voxels that succeeded.
    pub substeps: u64,
    /// Most sub-steps one successful voxel needed.
    pub substeps_max: u32,
    /// The lowest failing voxel (index in the chunk) and its fault. Its fields hold what
    /// the scalar integrator's workspace held at the fault, as the scalar path writes back.
    pub fault: Option<(usize, Fault)>,
}

/// Where a lane is in its voxel's integration.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// No voxel (none left in the chunk).
    Idle,
    /// Between sub-step attempts.
    Running,
    /// Attempts a sub-step in this round.
    Attempt,
    /// Integrated and checked; waits for the quasi-steady evaluation.
    Done(Outcome),
}

/// The scalar integrator's per-voxel control variables, one set per lane.
#[derive(Clone, Copy, Debug)]
struct Lane {
    phase: Phase,
    voxel: usize,
    t: f64,
    h: f64,
    h_next: f64,
    substeps: u32,
    rejected: bool,
    non_finite: Option<usize>,
    limiting: usize,
    last: bool,
}

const IDLE: Lane = Lane {
    phase: Phase::Idle,
    voxel: 0,
    t: 0.0,
    h: 0.0,
    h_next: 0.0,
    substeps: 0,
    rejected: false,
    non_finite: None,
    limiting: 0,
    last: false,
};

/// Scratch of one worker for `L` lanes; reused across chunks. Quantities are rows of `L`
/// values per state species (`n` rows) or per slot of the LU plan (`nnz` rows).
pub struct LaneWorkspace<const L: usize> {
    bound: Vec<usize>,
    /// Per bound species: written back (false for inputs).
    write: Vec<bool>,
    /// `held_bit` of each state species.
    held_bits: Vec<u32>,
    /// All species (scenario order) × lanes, mM.
    conc: Vec<Row<L>>,
    /// Registers of the f + J program (stage 2 reruns its f prefix in them) and of the
    /// quasi-steady program.
    regs: LaneRegisters<L>,
    qss_regs: LaneRegisters<L>,
    /// Register of J at each matrix slot of the LU plan.
    jac_reg: Vec<u32>,
    /// Per state species: all bits set where the species is free, 0 where it is held (a
    /// mask for the f64 bits: `out & keep` is `out` or +0.0, the scalar path's 0.0).
    keep: Vec<[u64; L]>,
    /// The network's projector (unused if it conserves nothing).
    projector: Projector,
    tissue: [usize; L],
    lane: [Lane; L],
    y: Vec<Row<L>>,
    y0: Vec<Row<L>>,
    acc: Vec<Row<L>>,
    inc: Vec<Row<L>>,
    f: Vec<Row<L>>,
    k1: Vec<Row<L>>,
    k2: Vec<Row<L>>,
    ynew: Vec<Row<L>>,
    b: Vec<Row<L>>,
    r: Vec<Row<L>>,
    /// M = I/(γh) − J over the plan's slots, unfactored and factored.
    ma: Vec<Row<L>>,
    m: Vec<Row<L>>,
}

impl<const L: usize> LaneWorkspace<L> {
    pub fn new(net: &Network, prep: &Prepared) -> LaneWorkspace<L> {
        let n = net.state.len();
        let plan = &prep.lane_lu;
        let tapes = &prep.lane_tapes;
        let bound = net.bound_species();
        let v = |len: usize| vec![Row([0.0; L]); len];
        LaneWorkspace {
            write: bound.iter().map(|s| !net.inputs.contains(s)).collect(),
            held_bits: net.state.iter().map(|&s| held_bit(s)).collect(),
            conc: v(net.species_names.len()),
            regs: LaneRegisters::new(&tapes.rhs_jac),
            qss_regs: LaneRegisters::new(&tapes.qss),
            jac_reg: plan
                .entries()
                .iter()
                .map(|&(i, k)| tapes.rhs_jac.outputs[n + i as usize * n + k as usize])
                .collect(),
            keep: vec![[u64::MAX; L]; n],
            projector: Projector::new(&net.projector, n),
            tissue: [0; L],
            lane: [IDLE; L],
            y: v(n),
            y0: v(n),
            acc: v(n),
            inc: v(n),
            f: v(n),
            k1: v(n),
            k2: v(n),
            ynew: v(n),
            b: v(n),
            r: v(n),
            ma: v(plan.nnz()),
            m: v(plan.nnz()),
            bound,
        }
    }
}

/// Integrates every voxel of `chunk` over `interval_s` (s), `L` at a time; each voxel's
/// result is bit-identical to [`super::ros2::integrate`] on it with the CPU backend's
/// inputs (its tissue and held rows from the mask, `h_last` or the interval as the first
/// step). Faulting voxels are written back as the scalar path writes them back.
pub fn integrate_chunk<const L: usize>(
    net: &Network,
    prep: &Prepared,
    ws: &mut LaneWorkspace<L>,
    chunk: &mut Chunk,
    interval_s: f64,
) -> ChunkOutcome {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { integrate_chunk_avx2(net, prep, ws, chunk, interval_s) };
    }
    integrate_chunk_impl(net, prep, ws, chunk, interval_s)
}

/// [`integrate_chunk`] compiled for AVX2 (the default build targets baseline x86-64, i.e.
/// SSE2: two f64 per instruction instead of four). The same IEEE operations either way
/// (`target_feature` neither contracts to FMA nor reassociates), so the results do not
/// depend on which version runs. (AVX-512 was measured 6 % slower than AVX2 on the AMD
/// EPYC of the benchmarks, so it is not used.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn integrate_chunk_avx2<const L: usize>(
    net: &Network,
    prep: &Prepared,
    ws: &mut LaneWorkspace<L>,
    chunk: &mut Chunk,
    interval_s: f64,
) -> ChunkOutcome {
    integrate_chunk_impl(net, prep, ws, chunk, interval_s)
}

#[inline(always)]
fn integrate_chunk_impl<const L: usize>(
    net: &Network,
    prep: &Prepared,
    ws: &mut LaneWorkspace<L>,
    chunk: &mut Chunk,
    interval_s: f64,
) -> ChunkOutcome {
    let n = net.state.len();
    let n_voxels = chunk.mask.len();
    assert!(chunk.conc.len() == ws.bound.len() && chunk.h_last.len() == n_voxels);
    assert!(chunk.conc.iter().all(|c| c.len() == n_voxels));
    let mut out = ChunkOutcome::default();
    let mut next = 0usize;
    ws.lane = [IDLE; L];
    loop {
        // Every lane either attempts a sub-step this round or is idle for good; finished
        // voxels get their quasi-steady species and are stored, and their lanes refilled.
        loop {
            if next + L <= n_voxels
                && ws.lane.iter().all(|x| x.phase == Phase::Idle)
                && start_block(net, ws, chunk, next, interval_s)
            {
                next += L;
            }
            let mut done = end_lanes(net, ws, chunk, interval_s, &mut out);
            for l in 0..L {
                loop {
                    match ws.lane[l].phase {
                        Phase::Attempt | Phase::Done(_) => break,
                        Phase::Idle => {
                            if next == n_voxels {
                                break;
                            }
                            next += 1;
                            if let Err(fault) = start(net, ws, chunk, l, next - 1, interval_s) {
                                finish(ws, chunk, l, Err(fault), &mut out);
                            }
                        }
                        Phase::Running => {
                            if let Err(fault) = before_attempt(net, ws, l, interval_s) {
                                finish(ws, chunk, l, Err(fault), &mut out);
                            }
                            done |= matches!(ws.lane[l].phase, Phase::Done(_));
                        }
                    }
                }
            }
            if !done {
                break;
            }
            let tapes = &prep.lane_tapes;
            if !net.qss.is_empty() {
                tapes
                    .qss
                    .run(&ws.conc, &ws.tissue, &net.params, &mut ws.qss_regs);
            }
            let v0 = ws.lane[0].voxel;
            let block = ws
                .lane
                .iter()
                .enumerate()
                .all(|(l, x)| matches!(x.phase, Phase::Done(_)) && x.voxel == v0 + l);
            let finished: [bool; L] = lanes(|l| matches!(ws.lane[l].phase, Phase::Done(_)));
            for (k, &(q, _)) in net.qss.iter().enumerate() {
                let value = ws.qss_regs.get(tapes.qss.outputs[k]);
                let c = ws.conc[q];
                ws.conc[q] = Row(lanes(|l| if finished[l] { value[l] } else { c[l] }));
            }
            if block {
                // L neighbouring voxels at once: each field's slice in one copy.
                for ((field, &s), &w) in chunk.conc.iter_mut().zip(&ws.bound).zip(&ws.write) {
                    if w {
                        let dst: &mut [f64; L] =
                            (&mut field[v0..v0 + L]).try_into().expect("L values");
                        *dst = ws.conc[s].0;
                    }
                }
            }
            for l in 0..L {
                if let Phase::Done(o) = ws.lane[l].phase {
                    if block {
                        record(ws, chunk, l, Ok(o), &mut out);
                    } else {
                        finish(ws, chunk, l, Ok(o), &mut out);
                    }
                }
            }
        }
        let attempt: [bool; L] = lanes(|l| ws.lane[l].phase == Phase::Attempt);
        if !attempt.contains(&true) {
            break;
        }
        sub_step(net, prep, ws, attempt, interval_s, n);
    }
    out
}

/// Loads voxels `v0..v0 + L` into the lanes (all idle) with one slice copy per field, as
/// [`start`] would one by one. False (nothing loaded) if a state value is not finite:
/// [`start`] then reports those voxels.
#[inline(always)]
fn start_block<const L: usize>(
    net: &Network,
    ws: &mut LaneWorkspace<L>,
    chunk: &Chunk,
    v0: usize,
    interval_s: f64,
) -> bool {
    let n = net.state.len();
    // The bound species start with the state, in state order.
    if !chunk.conc[..n]
        .iter()
        .all(|f| block_of::<L>(f, v0).iter().all(|&c| finite(c)))
    {
        return false;
    }
    for (field, &s) in chunk.conc.iter().zip(&ws.bound) {
        ws.conc[s] = Row(*block_of::<L>(field, v0));
    }
    let mask = &chunk.mask[v0..v0 + L];
    for (t, &m) in ws.tissue.iter_mut().zip(mask) {
        *t = (m & TISSUE_ID_MASK) as usize;
    }
    for (keep, &bit) in ws.keep.iter_mut().zip(&ws.held_bits) {
        *keep = lanes(|l| if mask[l] & bit != 0 { 0 } else { u64::MAX });
    }
    for (i, &s) in net.state.iter().enumerate() {
        let c = &ws.conc[s];
        ws.y[i] = Row(lanes(|l| c[l].max(0.0)));
        ws.y0[i] = ws.y[i];
        ws.acc[i] = Row([0.0; L]);
    }
    let h_last = &chunk.h_last[v0..v0 + L];
    for (l, &hl) in h_last.iter().enumerate() {
        let h0 = if hl > 0.0 { hl } else { interval_s };
        let h = h0.clamp(interval_s * 1e-12, interval_s);
        ws.lane[l] = Lane {
            phase: Phase::Running,
            voxel: v0 + l,
            h,
            h_next: h,
            ..IDLE
        };
    }
    true
}

/// Values `v0..v0 + L` of a field (a fixed-size copy compiles to vector moves, a slice
/// copy of run-time length to a `memcpy` call).
#[inline(always)]
fn block_of<const L: usize>(field: &[f64], v0: usize) -> &[f64; L] {
    field[v0..v0 + L].try_into().expect("L values")
}

/// Loads voxel `v` into lane `l` and sets up its control variables as the scalar
/// integrator's prologue does (which fails on a non-finite state value).
fn start<const L: usize>(
    net: &Network,
    ws: &mut LaneWorkspace<L>,
    chunk: &Chunk,
    l: usize,
    v: usize,
    interval_s: f64,
) -> Result<(), Fault> {
    for (field, &s) in chunk.conc.iter().zip(&ws.bound) {
        ws.conc[s][l] = field[v];
    }
    let m = chunk.mask[v];
    ws.tissue[l] = (m & TISSUE_ID_MASK) as usize;
    for (keep, &bit) in ws.keep.iter_mut().zip(&ws.held_bits) {
        keep[l] = if m & bit != 0 { 0 } else { u64::MAX };
    }
    ws.lane[l] = Lane {
        phase: Phase::Running,
        voxel: v,
        ..IDLE
    };
    for (i, &s) in net.state.iter().enumerate() {
        let c = ws.conc[s][l];
        if !c.is_finite() {
            return Err(Fault::NonFinite(i));
        }
        ws.y[i][l] = c.max(0.0);
        ws.y0[i][l] = ws.y[i][l];
        ws.acc[i][l] = 0.0;
    }
    let h0 = if chunk.h_last[v] > 0.0 {
        chunk.h_last[v]
    } else {
        interval_s
    };
    let h = h0.clamp(interval_s * 1e-12, interval_s);
    ws.lane[l].h = h;
    ws.lane[l].h_next = h;
    Ok(())
}

/// Counts lane `l`'s result (step memory, sub-steps or the fault) and frees the lane; its
/// fields must already be written.
fn record<const L: usize>(
    ws: &mut LaneWorkspace<L>,
    chunk: &mut Chunk,
    l: usize,
    result: Result<Outcome, Fault>,
    out: &mut ChunkOutcome,
) {
    let v = ws.lane[l].voxel;
    match result {
        Ok(o) => {
            out.substeps += o.substeps as u64;
            out.substeps_max = out.substeps_max.max(o.substeps);
            chunk.h_last[v] = o.h_next;
        }
        Err(fault) => {
            if out.fault.is_none_or(|(w, _)| v < w) {
                out.fault = Some((v, fault));
            }
        }
    }
    ws.lane[l].phase = Phase::Idle;
}

/// Writes lane `l`'s fields back to its voxel and records its result.
fn finish<const L: usize>(
    ws: &mut LaneWorkspace<L>,
    chunk: &mut Chunk,
    l: usize,
    result: Result<Outcome, Fault>,
    out: &mut ChunkOutcome,
) {
    let v = ws.lane[l].voxel;
    for ((field, &s), &w) in chunk.conc.iter_mut().zip(&ws.bound).zip(&ws.write) {
        if w {
            field[v] = ws.conc[s][l];
        }
    }
    record(ws, chunk, l, result, out);
}

/// The top of the scalar integrator's loop for lane `l`: the end of the interval (final
/// state and its checks; the lane becomes `Done`), the sub-step limit, or the next attempt's
/// step (the lane becomes `Attempt`).
#[inline(always)]
fn before_attempt<const L: usize>(
    net: &Network,
    ws: &mut LaneWorkspace<L>,
    l: usize,
    interval_s: f64,
) -> Result<(), Fault> {
    let lane = &mut ws.lane[l];
    if lane.t < interval_s {
        if lane.substeps >= net.spec.max_substeps {
            // A trial step that kept overflowing is a blow-up of that species, not slowness.
            return Err(match lane.non_finite {
                Some(i) => Fault::NonFinite(i),
                None => Fault::TooManySubsteps(lane.limiting),
            });
        }
        lane.substeps += 1;
        lane.last = lane.h >= interval_s - lane.t;
        if lane.last {
            lane.h = interval_s - lane.t;
        }
        lane.phase = Phase::Attempt;
        return Ok(());
    }
    finish_state(net, ws, l)
}

/// The end of the scalar integrator in every running lane whose voxel reached the end of
/// the interval, all lanes at once: y = max(y0 + acc, 0) and its checks (the first failing
/// species, as the scalar loop over the state finds it). Passing lanes become `Done`;
/// failing ones are stored. True if a lane became `Done`.
#[inline(always)]
fn end_lanes<const L: usize>(
    net: &Network,
    ws: &mut LaneWorkspace<L>,
    chunk: &mut Chunk,
    interval_s: f64,
    out: &mut ChunkOutcome,
) -> bool {
    // The scalar loop runs `while t < interval_s`, so it ends when that is false (NaN too).
    let ending: [bool; L] = lanes(|l| {
        let before_end = ws.lane[l].t < interval_s;
        ws.lane[l].phase == Phase::Running && !before_end
    });
    if !ending.contains(&true) {
        return false;
    }
    const NONE: u64 = u64::MAX;
    // Per lane: 2·i for a non-finite (or beyond f32) value of species i, 2·i + 1 for a
    // negative one, of the first failing i; NONE if none fails.
    let mut fault = [NONE; L];
    for (i, &s) in net.state.iter().enumerate() {
        let (y0, acc, y) = (ws.y0[i], ws.acc[i], ws.y[i]);
        let end: [f64; L] = lanes(|l| (y0[l] + acc[l]).max(0.0));
        ws.y[i] = Row(lanes(|l| if ending[l] { end[l] } else { y[l] }));
        let c = ws.conc[s];
        ws.conc[s] = Row(lanes(|l| if ending[l] { end[l] } else { c[l] }));
        for l in 0..L {
            let v = end[l];
            let non_finite = !finite(v) | (v > F32_MAX);
            let code = if non_finite {
                2 * i as u64
            } else {
                2 * i as u64 + 1
            };
            let bad = non_finite | (v < 0.0);
            fault[l] = if bad & (fault[l] == NONE) {
                code
            } else {
                fault[l]
            };
        }
    }
    let mut done = false;
    for l in 0..L {
        if !ending[l] {
            continue;
        }
        if fault[l] == NONE {
            let lane = &mut ws.lane[l];
            lane.phase = Phase::Done(Outcome {
                substeps: lane.substeps,
                h_next: lane.h_next,
            });
            done = true;
        } else {
            let i = (fault[l] / 2) as usize;
            let f = if fault[l] % 2 == 0 {
                Fault::NonFinite(i)
            } else {
                Fault::Negative(i)
            };
            finish(ws, chunk, l, Err(f), out);
        }
    }
    done
}

/// The end of the scalar integrator for lane `l`: y = max(y0 + acc, 0) and its checks.
fn finish_state<const L: usize>(
    net: &Network,
    ws: &mut LaneWorkspace<L>,
    l: usize,
) -> Result<(), Fault> {
    for (i, &s) in net.state.iter().enumerate() {
        let y = (ws.y0[i][l] + ws.acc[i][l]).max(0.0);
        ws.y[i][l] = y;
        ws.conc[s][l] = y;
    }
    for i in 0..net.state.len() {
        let v = ws.y[i][l];
        // Beyond f32's range is an overflow as on the GPU (see the scalar integrator).
        if !v.is_finite() || v > F32_MAX {
            return Err(Fault::NonFinite(i));
        }
        if v < 0.0 {
            return Err(Fault::Negative(i));
        }
    }
    let lane = &mut ws.lane[l];
    lane.phase = Phase::Done(Outcome {
        substeps: lane.substeps,
        h_next: lane.h_next,
    });
    Ok(())
}

/// K = M⁻¹·K in place with one step of iterative refinement (see the scalar
/// `solve_refined`); `b` and `r` are scratch.
#[inline(always)]
fn solve_refined<const L: usize>(
    plan: &LanePlan,
    ma: &[Row<L>],
    m: &[Row<L>],
    k: &mut [Row<L>],
    b: &mut [Row<L>],
    r: &mut [Row<L>],
) {
    b.copy_from_slice(k);
    plan.solve_lanes(m, k);
    plan.residual_lanes(ma, k, b, r);
    plan.solve_lanes(m, r);
    for (x, r) in k.iter_mut().zip(r.iter()) {
        let (x0, r) = (**x, **r);
        *x = Row(lanes(|l| x0[l] + r[l]));
    }
}

/// `out` where `keep` is all ones, +0.0 where it is 0 (a held row).
#[inline(always)]
fn masked<const L: usize>(out: &[f64; L], keep: &[u64; L]) -> [f64; L] {
    lanes(|l| f64::from_bits(out[l].to_bits() & keep[l]))
}

/// The projector onto the conserved totals (`Network::projector`, n × n) applied to lane
/// rows exactly as the scalar path applies it: row i of P·x is `Iterator::sum` of P_ik·x_k
/// over every k, a fold from −0.0 in k order. Only the nonzero P_ik are multiplied; that
/// gives the same sum when the x_k are finite (the skipped terms are ±0) and the sum is not
/// zero. A zero sum's sign is that of the full fold: −0.0 only if every term is −0.0,
/// known from the sign bits when every term is zero; a sum that cancels to zero, or a
/// non-finite x_k, makes the row summed in full.
struct Projector {
    n: usize,
    /// The dense matrix (row-major), for the rows summed in full.
    dense: Vec<f64>,
    /// Row i's nonzero weights: `terms[rows[i]..rows[i + 1]]` as (k, P_ik).
    rows: Vec<u32>,
    terms: Vec<(u32, f64)>,
    /// Per row, bit k set: P_ik ≠ 0; and the sign bit of P_ik (n ≤ 64; beyond, every row
    /// is summed in full).
    nonzero: Vec<u64>,
    negative: Vec<u64>,
}

impl Projector {
    fn new(dense: &[f64], n: usize) -> Projector {
        let (mut rows, mut terms) = (vec![0u32], Vec::new());
        let (mut nonzero, mut negative) = (Vec::new(), Vec::new());
        for row in dense.chunks_exact(n.max(1)) {
            let (mut nz, mut neg) = (0u64, 0u64);
            for (k, &p) in row.iter().enumerate() {
                if p != 0.0 {
                    terms.push((k as u32, p));
                }
                if k < 64 {
                    nz |= ((p != 0.0) as u64) << k;
                    neg |= (p.is_sign_negative() as u64) << k;
                }
            }
            rows.push(terms.len() as u32);
            nonzero.push(nz);
            negative.push(neg);
        }
        Projector {
            n,
            dense: dense.to_vec(),
            rows,
            terms,
            nonzero,
            negative,
        }
    }

    /// out = P·x (n rows of lanes each), bit for bit the scalar fold (see [`Projector`]).
    #[inline(always)]
    fn apply<const L: usize>(&self, x: &[Row<L>], out: &mut [Row<L>]) {
        let n = self.n;
        let (x, out) = (&x[..n], &mut out[..n]);
        // Per lane: bit k = sign bit of x_k; bit k = (x_k == ±0); some x_k not finite.
        // (Loops over local copies of the rows, so that they compile to SIMD.)
        let (mut sign, mut zero, mut bad) = ([0u64; L], [0u64; L], [0u64; L]);
        let small = n <= 64;
        for (k, row) in x.iter().enumerate() {
            let (v, k) = (**row, k.min(63));
            for l in 0..L {
                sign[l] |= (v[l].to_bits() >> 63) << k;
                zero[l] |= ((v[l] == 0.0) as u64) << k;
                bad[l] |= !finite(v[l]) as u64;
            }
        }
        let all = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
        for (i, out) in out.iter_mut().enumerate() {
            let terms = &self.terms[self.rows[i] as usize..self.rows[i + 1] as usize];
            let mut s = [-0.0; L];
            for &(k, p) in terms {
                let v = &x[k as usize];
                for l in 0..L {
                    s[l] += p * v[l];
                }
            }
            let (nz, neg) = (self.nonzero[i], self.negative[i]);
            // Branch-free over the lanes, unconditional writes and a scalar reduction
            // (conditional stores into arrays compile to masked stores, which stall the
            // loads after them).
            let mut full = !small as u64;
            let mut sum = [0.0; L];
            for l in 0..L {
                let zero_sum = s[l] == 0.0;
                let all_terms_zero = zero[l] & nz == nz;
                // Every term P_ik·x_k is ±0: −0 iff each sign bit differs from P_ik's.
                let all_negative = (sign[l] ^ neg) & all == all;
                let signed_zero = if all_negative { -0.0 } else { 0.0 };
                full |= bad[l] | (zero_sum & !all_terms_zero) as u64;
                sum[l] = if zero_sum { signed_zero } else { s[l] };
            }
            if full != 0 {
                sum = [-0.0; L];
                for (k, v) in x.iter().enumerate() {
                    let p = self.dense[i * n + k];
                    for l in 0..L {
                        sum[l] += p * v[l];
                    }
                }
            }
            *out = Row(sum);
        }
    }
}

/// `inc −= P·inc` in the free rows (`f` is scratch), as the scalar path does it.
#[inline(always)]
fn project<const L: usize>(ws: &mut LaneWorkspace<L>, n: usize) {
    ws.projector.apply(&ws.inc, &mut ws.f);
    for ((inc, f), keep) in ws.inc[..n].iter_mut().zip(&ws.f[..n]).zip(&ws.keep[..n]) {
        let (x, f) = (**inc, **f);
        *inc = Row(lanes(|l| if keep[l] != 0 { x[l] - f[l] } else { x[l] }));
    }
}

/// `x.is_finite()`, written so that it compiles to SIMD compares.
#[inline(always)]
fn finite(x: f64) -> bool {
    x.abs() < f64::INFINITY
}

/// One sub-step attempt in every lane of `attempt` (the body of the scalar integrator's
/// loop); lanes outside it compute along and are ignored.
#[inline(always)]
fn sub_step<const L: usize>(
    net: &Network,
    prep: &Prepared,
    ws: &mut LaneWorkspace<L>,
    attempt: [bool; L],
    interval_s: f64,
    n: usize,
) {
    let (tapes, plan) = (&prep.lane_tapes, &prep.lane_lu);
    let rtol = net.spec.rtol;
    let atol = &net.atol_mm;
    // Stage 1: f and J at y.
    for (y, &s) in ws.y[..n].iter().zip(&net.state) {
        ws.conc[s] = *y;
    }
    tapes
        .rhs_jac
        .run(&ws.conc, &ws.tissue, &net.params, &mut ws.regs);
    let regs = &ws.regs;
    let h: [f64; L] = lanes(|l| ws.lane[l].h);
    let inv: [f64; L] = lanes(|l| 1.0 / (GAMMA * h[l]));
    let keep = &ws.keep[..n];
    for ((f, keep), &r) in ws.f[..n].iter_mut().zip(keep).zip(&tapes.rhs_jac.outputs) {
        *f = Row(masked(regs.get(r), keep));
    }
    let entries = plan.entries();
    let ma = &mut ws.ma[..entries.len()];
    for ((ma, &(i, k)), &reg) in ma.iter_mut().zip(entries).zip(&ws.jac_reg) {
        let jik = masked(regs.get(reg), &keep[i as usize]);
        *ma = Row(if i == k {
            lanes(|l| inv[l] - jik[l])
        } else {
            lanes(|l| 0.0 - jik[l])
        });
    }
    let n_matrix = plan.n_matrix();
    ws.m[..n_matrix].copy_from_slice(&ws.ma[..n_matrix]);
    ws.m[n_matrix..].fill(Row([0.0; L]));
    let ok = plan.factor_lanes(&mut ws.m);
    let mut live = [false; L];
    for l in 0..L {
        if !attempt[l] {
            continue;
        }
        if ok[l] {
            live[l] = true;
        } else {
            let lane = &mut ws.lane[l];
            lane.h *= 0.5;
            lane.rejected = true;
            lane.phase = Phase::Running;
        }
    }
    if !live.contains(&true) {
        return;
    }
    ws.k1.copy_from_slice(&ws.f);
    solve_refined(plan, &ws.ma, &ws.m, &mut ws.k1, &mut ws.b, &mut ws.r);
    // Stage 2 at y + K1/γ (loaded only in the live lanes: the others keep the state the
    // scalar integrator's workspace holds after its rejection).
    for (((yn, y), k1), &s) in ws.ynew[..n]
        .iter_mut()
        .zip(&ws.y[..n])
        .zip(&ws.k1[..n])
        .zip(&net.state)
    {
        *yn = Row(lanes(|l| y[l] + k1[l] / GAMMA));
        let c = &mut ws.conc[s];
        *c = Row(lanes(|l| if live[l] { yn[l] } else { c[l] }));
    }
    // f alone: the first blocks of the f + J program, in its registers.
    tapes
        .rhs_jac
        .run_prefix(&ws.conc, &ws.tissue, &net.params, &mut ws.regs);
    let c21: [f64; L] = lanes(|l| -2.0 / (GAMMA * h[l]));
    for (((k2, k1), keep), &r) in ws.k2[..n]
        .iter_mut()
        .zip(&ws.k1[..n])
        .zip(keep)
        .zip(&tapes.rhs_jac.outputs)
    {
        let fi = masked(ws.regs.get(r), keep);
        *k2 = Row(lanes(|l| fi[l] + c21[l] * k1[l]));
    }
    solve_refined(plan, &ws.ma, &ws.m, &mut ws.k2, &mut ws.b, &mut ws.r);
    // Increment, minus its part along the conserved totals.
    for ((inc, k1), k2) in ws.inc[..n].iter_mut().zip(&ws.k1[..n]).zip(&ws.k2[..n]) {
        *inc = Row(lanes(|l| (1.5 * k1[l] + 0.5 * k2[l]) / GAMMA));
    }
    if !net.projector.is_empty() {
        project(ws, n);
    }
    // Solution, error norm, positivity.
    let mut err2 = [0.0; L];
    let mut worst = [-1.0; L];
    let mut limiting: [u64; L] = lanes(|l| ws.lane[l].limiting as u64);
    let mut negative = [0u64; L];
    let mut finite = [u64::MAX; L];
    let rows = ws.ynew[..n]
        .iter_mut()
        .zip(&ws.y0[..n])
        .zip(&ws.acc[..n])
        .zip(&ws.inc[..n])
        .zip(&ws.k1[..n])
        .zip(&ws.k2[..n])
        .zip(&ws.y[..n])
        .zip(&atol[..n]);
    for (i, (((((((ynew, y0), acc), inc), k1), k2), y), &atol)) in rows.enumerate() {
        let (y0, acc, inc, k1, k2, y) = (**y0, **acc, **inc, **k1, **k2, **y);
        let mut row = [0.0; L];
        for l in 0..L {
            let yn = y0[l] + (acc[l] + inc[l]);
            let e = 0.5 * (k1[l] + k2[l]) / GAMMA;
            let sc = atol + rtol * y[l].abs().max(yn.abs());
            let q = e / sc;
            let better = q.abs() > worst[l];
            worst[l] = if better { q.abs() } else { worst[l] };
            limiting[l] = if better { i as u64 } else { limiting[l] };
            err2[l] += q * q;
            negative[l] |= (yn < -atol) as u64;
            finite[l] &= (self::finite(yn) as u64).wrapping_neg();
            row[l] = yn;
        }
        *ynew = Row(row);
    }
    // Per lane: the scalar integrator's decisions; the accepted lanes' state update runs
    // for all lanes at once below, masked.
    // The step factors of both outcomes, every lane at once (square roots and divisions
    // in SIMD); each lane below takes the one its outcome needs.
    let err: [f64; L] = lanes(|l| (err2[l] / n.max(1) as f64).sqrt());
    let fac_accept: [f64; L] = lanes(|l| (0.9 / err[l].max(1e-10).sqrt()).clamp(0.2, 6.0));
    let fac_reject: [f64; L] = lanes(|l| (0.9 / err[l].sqrt()).clamp(0.2, 0.9));
    let mut accept = [0u64; L];
    for l in 0..L {
        if !live[l] {
            continue;
        }
        let lane = &mut ws.lane[l];
        lane.phase = Phase::Running;
        lane.limiting = limiting[l] as usize;
        let err = err[l];
        if finite[l] == 0 {
            // Stiffness can overflow a too-long trial step; shrink before calling it a fault.
            lane.non_finite = (0..n).find(|&i| !ws.ynew[i][l].is_finite());
            lane.h *= 0.25;
            lane.rejected = true;
            continue;
        }
        lane.non_finite = None;
        if err <= 1.0 && negative[l] == 0 {
            accept[l] = u64::MAX;
            lane.t = if lane.last {
                interval_s
            } else {
                lane.t + lane.h
            };
            let mut fac = fac_accept[l];
            if lane.rejected {
                fac = fac.min(1.0);
            }
            lane.rejected = false;
            // Keep the unclipped step for the next call when the last one was shortened.
            lane.h_next = if lane.last {
                lane.h_next.max(lane.h * fac)
            } else {
                lane.h * fac
            };
            lane.h *= fac;
        } else {
            lane.h *= if negative[l] != 0 { 0.5 } else { fac_reject[l] };
            lane.rejected = true;
        }
    }
    if accept.iter().all(|&a| a == 0) {
        return;
    }
    // acc += inc, or −y0 where the new value is negative; y = max(ynew, 0).
    let rows = ws.acc[..n]
        .iter_mut()
        .zip(&mut ws.y[..n])
        .zip(&ws.inc[..n])
        .zip(&ws.ynew[..n])
        .zip(&ws.y0[..n]);
    for ((((acc, y), inc), ynew), y0) in rows {
        let (a0, y_old, inc, ynew, y0) = (**acc, **y, **inc, **ynew, **y0);
        *acc = Row(lanes(|l| {
            let a = if ynew[l] < 0.0 {
                -y0[l]
            } else {
                a0[l] + inc[l]
            };
            if accept[l] != 0 {
                a
            } else {
                a0[l]
            }
        }));
        *y = Row(lanes(|l| {
            if accept[l] != 0 {
                ynew[l].max(0.0)
            } else {
                y_old[l]
            }
        }));
    }
}

/// Batched evaluation of a network's right-hand side f and Jacobian J for `L` voxels, for
/// integrators other than ROS2 (e.g. one coupling reaction and transport). Lane l computes
/// exactly what the scalar tapes compute for voxel l (bit-identical to
/// [`super::tape::Program::run`] on the same inputs); AVX2 code where the CPU has it.
/// `L` is free ([`LANES`] = 32 is what the CPU backend found fastest); build `prep` once
/// per network with [`Prepared::new`].
///
/// ```ignore
/// let prep = Prepared::new(&net);
/// let mut eval = RhsJacLanes::<LANES>::new(&net, &prep);
/// eval.rhs_jac(&conc, &tissue, Some(&held), &mut f, &mut jac);
/// ```
///
/// Layout (structure of arrays, lane index last):
/// * `conc[s][l]`: species s in scenario order (all of them, length
///   `net.species_names.len()`), lane l, mM. Only the state and input species are read;
///   negative values are read as 0, as everywhere in the rates.
/// * `tissue[l]`: tissue id of lane l (the voxel mask's low bits, `TISSUE_ID_MASK`), the
///   index into each row of `net.params`.
/// * `held`: if given, `held[i][l]` is true when state species i is held in voxel l (the
///   mask's `held_bit`); its row of f and of J is then 0, as in the integrator.
/// * `f[i][l]`: f_i = dy_i/dt of state species i (state order, `net.state`), mM/s;
///   `n = net.state.len()` rows.
/// * `jac[i·n + k][l]`: J_ik = ∂f_i/∂y_k, 1/s, row-major over the state (n² rows).
///   Entries outside the pattern of [`super::sparse::LuPlan::matrix`] are exactly 0.
pub struct RhsJacLanes<'a, const L: usize> {
    net: &'a Network,
    prep: &'a Prepared,
    rhs: LaneRegisters<L>,
    rhs_jac: LaneRegisters<L>,
    /// `conc` as aligned rows.
    rows: Vec<Row<L>>,
}

impl<'a, const L: usize> RhsJacLanes<'a, L> {
    pub fn new(net: &'a Network, prep: &'a Prepared) -> RhsJacLanes<'a, L> {
        RhsJacLanes {
            net,
            prep,
            rhs: LaneRegisters::new(&prep.lane_tapes.rhs),
            rhs_jac: LaneRegisters::new(&prep.lane_tapes.rhs_jac),
            rows: Vec::new(),
        }
    }

    /// f alone (the cheaper program). Layout and units: see [`RhsJacLanes`].
    pub fn rhs(
        &mut self,
        conc: &[[f64; L]],
        tissue: &[usize; L],
        held: Option<&[[bool; L]]>,
        f: &mut [[f64; L]],
    ) {
        let p = &self.prep.lane_tapes.rhs;
        self.rows.clear();
        self.rows.extend(conc.iter().map(|&c| Row(c)));
        run_program(p, &self.rows, tissue, &self.net.params, &mut self.rhs);
        write_rows(&self.rhs, &p.outputs, 0, self.net.state.len(), 1, held, f);
    }

    /// f and J together. Layout and units: see [`RhsJacLanes`].
    pub fn rhs_jac(
        &mut self,
        conc: &[[f64; L]],
        tissue: &[usize; L],
        held: Option<&[[bool; L]]>,
        f: &mut [[f64; L]],
        jac: &mut [[f64; L]],
    ) {
        let n = self.net.state.len();
        let p = &self.prep.lane_tapes.rhs_jac;
        self.rows.clear();
        self.rows.extend(conc.iter().map(|&c| Row(c)));
        run_program(p, &self.rows, tissue, &self.net.params, &mut self.rhs_jac);
        write_rows(&self.rhs_jac, &p.outputs, 0, n, 1, held, f);
        write_rows(&self.rhs_jac, &p.outputs, n, n, n, held, jac);
    }
}

/// [`LaneProgram::run`], in AVX2 code where the CPU has it.
fn run_program<const L: usize>(
    p: &LaneProgram,
    conc: &[Row<L>],
    tissue: &[usize; L],
    params: &[Vec<f64>],
    regs: &mut LaneRegisters<L>,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2<const L: usize>(
            p: &LaneProgram,
            conc: &[Row<L>],
            tissue: &[usize; L],
            params: &[Vec<f64>],
            regs: &mut LaneRegisters<L>,
        ) {
            p.run(conc, tissue, params, regs);
        }
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { avx2(p, conc, tissue, params, regs) };
        return;
    }
    p.run(conc, tissue, params, regs);
}

/// `out[j] = outputs[first + j]` for `rows` rows of `cols` entries, 0 in held rows.
fn write_rows<const L: usize>(
    regs: &LaneRegisters<L>,
    outputs: &[u32],
    first: usize,
    rows: usize,
    cols: usize,
    held: Option<&[[bool; L]]>,
    out: &mut [[f64; L]],
) {
    assert!(
        out.len() >= rows * cols,
        "output shorter than {rows}×{cols}"
    );
    for i in 0..rows {
        for c in 0..cols {
            let j = i * cols + c;
            let v = regs.get(outputs[first + j]);
            out[j] = match held {
                Some(h) => lanes(|l| if h[i][l] { 0.0 } else { v[l] }),
                None => *v,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scalar path's row i of P·x for one lane.
    fn fold(p: &[f64], n: usize, i: usize, x: &[f64]) -> f64 {
        (0..n).map(|k| p[i * n + k] * x[k]).sum()
    }

    #[test]
    fn projector_matches_the_scalar_fold_bit_for_bit() {
        let n = 5;
        // Zero rows, zero and negative weights, a weight that cancels.
        #[rustfmt::skip]
        let p = vec![
            0.5, -0.5, 0.0, 0.0, 0.0,
            -0.5, 0.5, 0.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.25, 1e-300,
            1.0, 1.0, 1.0, 1.0, 1.0,
        ];
        let proj = Projector::new(&p, n);
        const L: usize = 12;
        // One lane per case: x_0..x_4.
        let cases: [[f64; 5]; L] = [
            [1.0, 2.0, 3.0, 4.0, 5.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [-0.0, -0.0, -0.0, -0.0, -0.0],
            [-0.0, 0.0, -0.0, -0.0, -0.0],
            [0.0, -0.0, 0.0, 0.0, 0.0],
            [1.0, 1.0, -2.0, 0.0, 0.0], // rows 0, 1 and 4 cancel to zero
            [-1.5, -1.5, -0.0, -0.0, -0.0], // cancels with negative terms
            [f64::INFINITY, 0.0, 0.0, 0.0, 0.0],
            [0.0, f64::NAN, 0.0, 0.0, 0.0],
            [1e-300, -1e-300, 0.0, -1e-10, 1e-20], // underflowing products
            [-3.0, 2.0, -0.0, 8.0, -1e300],
            [0.0, 0.0, f64::NEG_INFINITY, 0.0, 0.0],
        ];
        let x: Vec<Row<L>> = (0..n).map(|k| Row(lanes(|l| cases[l][k]))).collect();
        let mut out = vec![Row([0.0; L]); n];
        proj.apply(&x, &mut out);
        for (l, case) in cases.iter().enumerate() {
            for (i, row) in out.iter().enumerate() {
                let want = fold(&p, n, i, case);
                let got = row[l];
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "case {l} row {i}: {got:e} ({:#x}) against {want:e} ({:#x})",
                    got.to_bits(),
                    want.to_bits()
                );
            }
        }
    }
}
