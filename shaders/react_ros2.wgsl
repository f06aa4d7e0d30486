// Reaction step: integrates the network in every voxel over params.interval_s with ROS2,
// an L-stable two-stage Rosenbrock method of order 2 with adaptive sub-steps.
// f32 twin of src/chem/ros2.rs (keep the two in sync; the tests compare them).
//
// Dispatch: one invocation per voxel, 64 per workgroup; workgroups in (x, y) when there are
// more than 65535 along x. The network (species bindings, parameters, f and J) is generated
// by src/chem/wgsl.rs into the block below; this template is the integrator around it.

// Kept in sync with `gpu::react::ReactParams` (layout test there). One 256-byte slot per
// reaction call, selected with a dynamic offset.
struct ReactParams {
    // Length of this call, s (dt/2 or dt under Strang splitting).
    interval_s: f32,
    // Relative tolerance per sub-step.
    rtol: f32,
    // Unused (absolute tolerances are per species: ATOL in the generated block).
    atol_mm: f32,
    // Sub-step attempts allowed per voxel in this call.
    max_substeps: u32,
    // Voxels in the grid.
    n_voxels: u32,
    // Sequence number of this call in the run (reported with a failure).
    call_id: u32,
    // Voxels per row of workgroups (64 × workgroups along x).
    row_stride: u32,
    // Always 0. XOR-ed into bit patterns so the driver's compiler cannot see through the
    // compensated sums (Mesa's NIR otherwise simplifies (a + b) - a to b).
    opaque_zero: u32,
}

@group(0) @binding(0) var<uniform> params: ReactParams;
// Tissue id (bits 0-3) and one held bit per species (bit 4 + species index).
@group(0) @binding(1) var<storage, read> mask: array<u32>;
// Step size each voxel ended its last call with, s (0 = none yet).
@group(0) @binding(2) var<storage, read_write> h_last: array<f32>;
// [0] faults seen, [1] call id, [2] voxel, [3] code (kind | state index << 8) of the first;
// [4] sub-steps attempted (sum), [5] most sub-steps in one voxel.
@group(0) @binding(3) var<storage, read_write> status: array<atomic<u32>, 8>;
// Rounding residual of each state species' stored value, mM, [state index * n_voxels + v]:
// the f32 field plus this residual is the value to double-f32 accuracy, so the small
// increments of near-steady voxels are not rounded away call after call (compensated,
// Kahan-style summation); conserved totals then drift at the 1e-7 level instead of 1e-5.
@group(0) @binding(4) var<storage, read_write> residual: array<f32>;

const GAMMA: f32 = 1.7071067811865476;
const FAULT_NON_FINITE: u32 = 1u;
const FAULT_NEGATIVE: u32 = 2u;
const FAULT_SUBSTEPS: u32 = 3u;

var<private> tissue: u32;
var<workgroup> wg_substeps: atomic<u32>;

//!GENERATED

fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// x, hidden from algebraic simplification.
fn opaque(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) ^ params.opaque_zero);
}

fn report(v: u32, code: u32) {
    let prev = atomicAdd(&status[0], 1u);
    if prev == 0u {
        atomicStore(&status[1], params.call_id);
        atomicStore(&status[2], v);
        atomicStore(&status[3], code);
    }
}

// x = M⁻¹·b with one step of iterative refinement against the unfactored `ma`: the f32
// solve alone leaves errors of order ε·cond(M)·|x|; `lu` is the factored M (generated
// functions `lu_solve` and `mat_residual` below the network).
fn solve_refined(ma: ptr<function, array<f32, NSS>>, lu: ptr<function, array<f32, NSS>>,
                 b: ptr<function, array<f32, NS>>) {
    var x = *b;
    lu_solve(lu, &x);
    var r: array<f32, NS>;
    mat_residual(ma, &x, b, &r);
    lu_solve(lu, &r);
    for (var i = 0u; i < NS; i++) {
        (*b)[i] = x[i] + r[i];
    }
}

// Integrates voxel v; returns the sub-steps attempted.
fn integrate(v: u32) -> u32 {
    let held_mask = mask[v];
    // y = y0 + acc: y0 the stored value, acc the increments of this call (small, so they
    // keep their precision), y the rounded sum used to evaluate f and J.
    var y: array<f32, NS>;
    var y0: array<f32, NS>;
    var acc: array<f32, NS>;
    get_state(&y);
    for (var i = 0u; i < NS; i++) {
        if !is_finite(y[i]) {
            report(v, FAULT_NON_FINITE | (i << 8u));
            return 0u;
        }
        // ADI undershoots below 0 next to steep fronts; clipping adds that mass (known issue).
        y[i] = max(y[i], 0.0);
        y0[i] = y[i];
        acc[i] = residual[i * params.n_voxels + v];
    }
    let interval = params.interval_s;
    let rtol = params.rtol;
    var t = 0.0;
    var h = h_last[v];
    if h <= 0.0 {
        h = interval;
    }
    h = clamp(h, interval * 1e-12, interval);
    var h_next = h;
    var substeps = 0u;
    var rejected = false;
    // State index of the last trial step that overflowed (NS = none).
    var non_finite = NS;
    // State index with the largest error ratio in the last attempt.
    var limiting = 0u;
    var f: array<f32, NS>;
    var jm: array<f32, NSS>;
    var ma: array<f32, NSS>;
    var k1: array<f32, NS>;
    var k2: array<f32, NS>;
    var yn: array<f32, NS>;
    loop {
        if t >= interval {
            break;
        }
        if substeps >= params.max_substeps {
            // A trial step that kept overflowing is a blow-up of that species.
            if non_finite < NS {
                report(v, FAULT_NON_FINITE | (non_finite << 8u));
            } else {
                report(v, FAULT_SUBSTEPS | (limiting << 8u));
            }
            h_last[v] = h;
            return substeps;
        }
        substeps++;
        let last = h >= interval - t;
        if last {
            h = interval - t;
        }
        // Stage 1: f and J at y; M = I/(γh) − J (held rows: f = 0, J = 0).
        set_state(&y);
        eval_rhs_jac(&f, &jm);
        let inv = 1.0 / (GAMMA * h);
        for (var i = 0u; i < NS; i++) {
            if (held_mask & HELD_BITS[i]) != 0u {
                f[i] = 0.0;
            }
        }
        assemble(inv, held_mask, &jm, &ma);
        var lu = ma;
        if !lu_factor(&lu) {
            h *= 0.5;
            rejected = true;
            continue;
        }
        k1 = f;
        solve_refined(&ma, &lu, &k1);
        // Stage 2 at y + K1/γ.
        for (var i = 0u; i < NS; i++) {
            yn[i] = y[i] + k1[i] / GAMMA;
        }
        set_state(&yn);
        eval_rhs(&f);
        let c21 = -2.0 / (GAMMA * h);
        for (var i = 0u; i < NS; i++) {
            var fi = f[i];
            if (held_mask & HELD_BITS[i]) != 0u {
                fi = 0.0;
            }
            k2[i] = fi + c21 * k1[i];
        }
        solve_refined(&ma, &lu, &k2);
        // Increment of the step, with its part along the conserved totals removed (zero in
        // exact arithmetic; in f32 the solves leave a correlated residue there that would
        // otherwise drift the totals call after call near a steady state).
        var inc: array<f32, NS>;
        for (var i = 0u; i < NS; i++) {
            inc[i] = (1.5 * k1[i] + 0.5 * k2[i]) / GAMMA;
        }
        if HAS_PROJECTOR {
            var pinc: array<f32, NS>;
            for (var i = 0u; i < NS; i++) {
                var s = 0.0;
                for (var k = 0u; k < NS; k++) {
                    s += PROJECTOR[i * NS + k] * inc[k];
                }
                pinc[i] = s;
            }
            for (var i = 0u; i < NS; i++) {
                if (held_mask & HELD_BITS[i]) == 0u {
                    inc[i] -= pinc[i];
                }
            }
        }
        var err2 = 0.0;
        var worst = -1.0;
        var negative = false;
        var finite = true;
        for (var i = 0u; i < NS; i++) {
            let ynew = y0[i] + (acc[i] + inc[i]);
            let e = 0.5 * (k1[i] + k2[i]) / GAMMA;
            let sc = ATOL[i] + rtol * max(abs(y[i]), abs(ynew));
            if abs(e / sc) > worst {
                worst = abs(e / sc);
                limiting = i;
            }
            err2 += (e / sc) * (e / sc);
            negative = negative || ynew < -ATOL[i];
            finite = finite && is_finite(ynew) && is_finite(e);
            yn[i] = ynew;
        }
        let err = sqrt(err2 / f32(NS));
        if !finite {
            non_finite = NS;
            for (var i = 0u; i < NS; i++) {
                if non_finite == NS && !is_finite(yn[i]) {
                    non_finite = i;
                }
            }
            h *= 0.25;
            rejected = true;
            continue;
        }
        non_finite = NS;
        if err <= 1.0 && !negative {
            if last {
                t = interval;
            } else {
                t += h;
            }
            for (var i = 0u; i < NS; i++) {
                acc[i] += inc[i];
                if yn[i] < 0.0 {
                    acc[i] = -y0[i];
                }
                y[i] = max(yn[i], 0.0);
            }
            var fac = clamp(0.9 / sqrt(max(err, 1e-10)), 0.2, 6.0);
            if rejected {
                fac = min(fac, 1.0);
            }
            rejected = false;
            if last {
                h_next = max(h_next, h * fac);
            } else {
                h_next = h * fac;
            }
            h *= fac;
        } else {
            if negative {
                h *= 0.5;
            } else {
                h *= clamp(0.9 / sqrt(err), 0.2, 0.9);
            }
            rejected = true;
        }
    }
    // Drivers may cap loop iterations (Mesa's llvmpipe leaves a loop after 65535 in total):
    // a call that did not reach its end is a failure, never a silent partial step.
    if t < interval {
        report(v, FAULT_SUBSTEPS | (limiting << 8u));
    }
    // Store y0 + acc as a rounded f32 and its exact rounding error (Fast2Sum, valid as
    // |acc| ≤ |y0| or y0 + acc ≤ 0, which is clamped).
    for (var i = 0u; i < NS; i++) {
        let a = y0[i];
        let b = acc[i];
        var s = opaque(a + b);
        var e = b - opaque(s - a);
        if abs(b) > abs(a) {
            // Large relative change: plain sum, the residual is negligible.
            s = a + b;
            e = 0.0;
        }
        y[i] = max(s, 0.0);
        residual[i * params.n_voxels + v] = select(e, 0.0, s <= 0.0);
    }
    set_state(&y);
    for (var i = 0u; i < NS; i++) {
        if !is_finite(y[i]) {
            report(v, FAULT_NON_FINITE | (i << 8u));
        } else if bitcast<u32>(y[i]) > 0x80000000u {
            report(v, FAULT_NEGATIVE | (i << 8u));
        }
    }
    eval_qss();
    h_last[v] = h_next;
    return substeps;
}

@compute @workgroup_size(64)
fn react(@builtin(global_invocation_id) gid: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
    let v = gid.x + gid.y * params.row_stride;
    var n = 0u;
    if v < params.n_voxels {
        tissue = mask[v] & TISSUE_ID_MASK;
        load_voxel(v);
        n = integrate(v);
        store_voxel(v);
        atomicMax(&status[5], n);
    }
    atomicAdd(&wg_substeps, n);
    workgroupBarrier();
    if li == 0u {
        atomicAdd(&status[4], atomicLoad(&wg_substeps));
    }
}
