// coupled_vectors.wgsl: the vector operations of the coupled scheme's step on the device
// (ROS2 stages, restarted GMRES in the error-weighted inner product, the error test;
// docs/numerics.md §10), in f32 over vectors of every integrated species (species k of
// voxel v at k·n + v). Reductions add in a fixed order (per workgroup a tree over a fixed
// chunk, then one workgroup over the partials in order): the same sums on every run.
// CPU twin: src/cpu/coupled.rs (attempt, set_weights, gmres).
// binding 0 vp      uniform     VectorParams (dynamic offset; Rust twin gpu::coupled::VectorParams)
// binding 1 a       storage r   f32 vector
// binding 2 b       storage r   f32 vector
// binding 3 out     storage rw  f32 vector
// binding 4 weight  storage r   f32 vector: error weights 1/(atol + rtol·|y|), 1/mM
// binding 5 partial storage rw  f32, per workgroup of a reduction
// binding 6 scalars storage rw  f32: results of reductions, by slot
// binding 7 atol    storage r   f32 per integrated species, mM
// binding 8 lo      storage rw  f32 vector: the state's rounding residual (the state is the
//                               double-f32 value y + lo; written only by update)
// dispatch: elementwise entries one invocation per value (groups laid out 2D and
//           flattened, see flat_id); dot_partial one workgroup per CHUNK values;
//           check_partial one invocation per voxel; the *_finish entries one workgroup.

struct VectorParams {
    // Values in a vector (n · n_vars), voxels, integrated species.
    len: u32,
    n: u32,
    n_vars: u32,
    // Scalar slot read (axpy's δ term) or written (the reductions).
    slot: u32,
    // Coefficients of axpy / axpby (see there).
    alpha: f32,
    beta: f32,
    gamma: f32,
    delta: f32,
    // Relative tolerance of the error weights and the error test.
    rtol: f32,
    // Partials a finish entry adds (workgroups of the partial pass).
    groups: u32,
    // 1/γ of ROS2 (γ = 1 + 1/√2).
    inv_gamma: f32,
    // Always 0. XOR-ed into bit patterns so the driver's compiler cannot see through the
    // compensated sum of update (Mesa's NIR otherwise simplifies (a + b) − a to b, and the
    // residual stays 0: measured).
    opaque_zero: u32,
}

@group(0) @binding(0) var<uniform> vp: VectorParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read_write> partial: array<f32>;
@group(0) @binding(6) var<storage, read_write> scalars: array<f32>;
@group(0) @binding(7) var<storage, read> atol: array<f32>;
@group(0) @binding(8) var<storage, read_write> lo: array<f32>;

const WORKGROUP_SIZE: u32 = 64u;
const REDUCE_SIZE: u32 = 256u;
// Values one dot_partial workgroup adds (equal to gpu::coupled::DOT_CHUNK).
const CHUNK: u32 = 1024u;

var<workgroup> tree: array<f32, REDUCE_SIZE>;
var<workgroup> tree2: array<f32, REDUCE_SIZE>;
var<workgroup> tree3: array<f32, REDUCE_SIZE>;

fn flat_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
}

// x, hidden from algebraic simplification.
fn opaque(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) ^ vp.opaque_zero);
}

fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// out = α·out + (β + δ·scalars[slot])·a, with α = 0 overwriting out (whatever it held).
@compute @workgroup_size(WORKGROUP_SIZE)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(gid, nwg);
    if (i >= vp.len) {
        return;
    }
    let c = vp.beta + vp.delta * scalars[vp.slot];
    var o = c * a[i];
    if (vp.alpha != 0.0) {
        o += vp.alpha * out[i];
    }
    out[i] = o;
}

// out = β·a + γ·b.
@compute @workgroup_size(WORKGROUP_SIZE)
fn axpby(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(gid, nwg);
    if (i >= vp.len) {
        return;
    }
    out[i] = vp.beta * a[i] + vp.gamma * b[i];
}

// The accepted step: out = max(out + (1.5·a + 0.5·b)/γ, 0) with a = K1, b = K2, added
// with compensation: the state is the double-f32 value out + lo, so that a voxel whose
// increment rounds the same way step after step (a settled voxel) does not drift; measured
// without it, the Fe total of tests/coupled_gpu.rs moved 9.2e-6 over 10⁴ steps.
@compute @workgroup_size(WORKGROUP_SIZE)
fn update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(gid, nwg);
    if (i >= vp.len) {
        return;
    }
    let y = out[i];
    let d = (1.5 * a[i] + 0.5 * b[i]) * vp.inv_gamma + lo[i];
    // Two-sum: s + e = y + d exactly.
    let s = opaque(y + d);
    let bb = opaque(s - y);
    let e = (y - opaque(s - bb)) + (d - bb);
    if (s < 0.0) {
        out[i] = 0.0;
        lo[i] = 0.0;
    } else {
        out[i] = s;
        lo[i] = e;
    }
}

// out = 1/(atol_k + rtol·|a|), the error weights at the state a.
@compute @workgroup_size(WORKGROUP_SIZE)
fn weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(gid, nwg);
    if (i >= vp.len) {
        return;
    }
    out[i] = 1.0 / (atol[i / vp.n] + vp.rtol * abs(a[i]));
}

// partial[g] = Σ a·b·weight² over values g·CHUNK … (g + 1)·CHUNK − 1.
@compute @workgroup_size(REDUCE_SIZE)
fn dot_partial(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    let t = lid.x;
    var s = 0.0;
    for (var q = 0u; q < CHUNK / REDUCE_SIZE; q++) {
        let i = g * CHUNK + q * REDUCE_SIZE + t;
        if (i < vp.len) {
            let w = weight[i];
            s += a[i] * b[i] * w * w;
        }
    }
    tree[t] = s;
    workgroupBarrier();
    for (var half = REDUCE_SIZE / 2u; half > 0u; half = half / 2u) {
        if (t < half) {
            tree[t] += tree[t + half];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        partial[g] = tree[0];
    }
}

// scalars[slot] = Σ partial[0 … groups − 1].
@compute @workgroup_size(REDUCE_SIZE)
fn dot_finish(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    var s = 0.0;
    for (var g = t; g < vp.groups; g += REDUCE_SIZE) {
        s += partial[g];
    }
    tree[t] = s;
    workgroupBarrier();
    for (var half = REDUCE_SIZE / 2u; half > 0u; half = half / 2u) {
        if (t < half) {
            tree[t] += tree[t + half];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        scalars[vp.slot] = tree[0];
    }
}

// The error test's workgroup reduction into tree[0] (largest error), tree2[0] and
// tree3[0] (counts), from thread t's values; called by every thread of the workgroup.
fn reduce_check(t: u32, err: f32, negative: f32, bad: f32) {
    tree[t] = err;
    tree2[t] = negative;
    tree3[t] = bad;
    workgroupBarrier();
    for (var half = REDUCE_SIZE / 2u; half > 0u; half = half / 2u) {
        if (t < half) {
            tree[t] = max(tree[t], tree[t + half]);
            tree2[t] += tree2[t + half];
            tree3[t] += tree3[t + half];
        }
        workgroupBarrier();
    }
}

// The error test of a step from out = y with a = K1, b = K2, per voxel over its species:
// the weighted RMS of e = (K1 + K2)/(2γ) with scale atol + rtol·max(|y|, |y⁺|), whether
// y⁺ = y + (1.5·K1 + 0.5·K2)/γ has a value below −atol, whether any is not finite. Per
// workgroup: partial[3g] the largest error, partial[3g + 1] the count of negative voxels,
// partial[3g + 2] of non-finite ones.
@compute @workgroup_size(REDUCE_SIZE)
fn check_partial(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = wid.x + wid.y * nwg.x;
    let t = lid.x;
    let v = g * REDUCE_SIZE + t;
    var err = 0.0;
    var negative = 0.0;
    var bad = 0.0;
    if (v < vp.n) {
        var e2 = 0.0;
        for (var k = 0u; k < vp.n_vars; k++) {
            let i = k * vp.n + v;
            let y0 = out[i];
            let yn = y0 + (1.5 * a[i] + 0.5 * b[i]) * vp.inv_gamma;
            let e = 0.5 * (a[i] + b[i]) * vp.inv_gamma;
            let sc = atol[k] + vp.rtol * max(abs(y0), abs(yn));
            e2 += (e / sc) * (e / sc);
            if (yn < -atol[k]) {
                negative = 1.0;
            }
            if (!is_finite(yn)) {
                bad = 1.0;
            }
        }
        err = sqrt(e2 / f32(vp.n_vars));
        if (!is_finite(err)) {
            bad = 1.0;
            err = 0.0;
        }
    }
    reduce_check(t, err, negative, bad);
    if (t == 0u) {
        partial[3u * g] = tree[0];
        partial[3u * g + 1u] = tree2[0];
        partial[3u * g + 2u] = tree3[0];
    }
}

// scalars[slot … slot + 2] = the largest error, the negative and non-finite counts.
@compute @workgroup_size(REDUCE_SIZE)
fn check_finish(@builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    var err = 0.0;
    var negative = 0.0;
    var bad = 0.0;
    for (var g = t; g < vp.groups; g += REDUCE_SIZE) {
        err = max(err, partial[3u * g]);
        negative += partial[3u * g + 1u];
        bad += partial[3u * g + 2u];
    }
    reduce_check(t, err, negative, bad);
    if (t == 0u) {
        scalars[vp.slot] = tree[0];
        scalars[vp.slot + 1u] = tree2[0];
        scalars[vp.slot + 2u] = tree3[0];
    }
}
