// diffuse_adi.wgsl: one Douglas ADI sweep of one species in delta form (entry points
// sweep_x, sweep_y, sweep_z), a Thomas solve per grid line of (I − θA_d)·Δ = rhs, with
//   x: rhs = (A_x + A_y + A_z) u   → v (= Δ₁)
//   y: rhs = v                     → v (= Δ₂)
//   z: rhs = v                     → u ← u + Δ₃
// A_x u = r·δx²u − q_t·u, A_y u = r·δy²u, A_z u = r·δz²u, A = 0 on held voxels; every
// sweep's row carries θ·q_t on its diagonal and the z sweep's Δ₃ is multiplied by
// (1 + θq_t)² (positivity at any loss, see the CPU twin); and `decay`, the pointwise loss
// of a non-diffusing species.
// CPU twin: src/cpu/diffuse_adi.rs (scheme, row coefficients, held voxels, zero-flux faces).
// binding 0 params  uniform     DiffuseParams (Rust twin: gpu::diffuse::DiffuseParams)
// binding 1 u       storage rw  f32, mM, the species, x fastest: i + nx·(j + ny·k)
// binding 2 v       storage rw  f32, mM, scratch shared by all species
// binding 3 mask    storage r   u32 per voxel: tissue id (bits 0–3), held bit per species
// dispatch: one invocation per grid line (decay: per voxel); workgroup WORKGROUP_SIZE;
//           groups laid out 2D (x ≤ 65535) and flattened, see `flat_id`.

struct DiffuseParams {
    nx: u32,
    ny: u32,
    nz: u32,
    // Mask bit of this species' held (Dirichlet) voxels.
    held_bit: u32,
    // D·dt/dx², dimensionless.
    r: f32,
    // Douglas weight θ ∈ [½, 1].
    theta: f32,
    _pad0: u32,
    _pad1: u32,
    // q_t = k_t·dt per tissue id t, dimensionless; element t is loss[t / 4][t % 4].
    loss: array<vec4<f32>, 4>,
}

@group(0) @binding(0) var<uniform> params: DiffuseParams;
@group(0) @binding(1) var<storage, read_write> u: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<u32>;

// Longest grid line the private arrays hold; the host rewrites this line to the grid's
// longest axis before compiling (gpu::diffuse::shader_source).
const MAX_LINE: u32 = 1024u;
const WORKGROUP_SIZE: u32 = 64u;
// TISSUE_ID_MASK comes from ionfield::grid::wgsl_constants, prepended by the host.

// Thomas forward-sweep values, kept in private memory so back substitution does not
// re-read the buffers (docs/performance.md: fewer buffer accesses is what is fast on lavapipe).
var<private> cp: array<f32, MAX_LINE>;
var<private> dp: array<f32, MAX_LINE>;

fn loss_of(m: u32) -> f32 {
    let t = m & TISSUE_ID_MASK;
    return params.loss[t / 4u][t % 4u];
}

fn is_held(m: u32) -> bool {
    return (m & params.held_bit) != 0u;
}

fn flat_id(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * WORKGROUP_SIZE;
}

// r·δ²u along a direction of stride `stride`, position `i` of `n` on the line.
fn second_difference(ix: u32, stride: u32, i: u32, n: u32, uc: f32) -> f32 {
    var s = 0.0;
    if (i > 0u) {
        s += u[ix - stride] - uc;
    }
    if (i + 1u < n) {
        s += u[ix + stride] - uc;
    }
    return params.r * s;
}

// Forward elimination of row i with coefficients (a, b, c) and right-hand side rhs.
fn eliminate(i: u32, a: f32, b: f32, c: f32, rhs: f32, prev: vec2<f32>) -> vec2<f32> {
    let inv = 1.0 / (b - a * prev.x);
    let next = vec2<f32>(c * inv, (rhs - a * prev.y) * inv);
    cp[i] = next.x;
    dp[i] = next.y;
    return next;
}

// Implicit row of a free voxel at position i of n, with extra diagonal loss q·θ.
fn free_row(i: u32, n: u32, q: f32) -> vec3<f32> {
    let tr = params.theta * params.r;
    let a = select(0.0, -tr, i > 0u);
    let c = select(0.0, -tr, i + 1u < n);
    return vec3<f32>(a, 1.0 + params.theta * q - a - c, c);
}

// Lines along x: line = j + ny·k, contiguous; residual of u → v.
@compute @workgroup_size(WORKGROUP_SIZE)
fn sweep_x(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(num_workgroups) groups: vec3<u32>) {
    let line = flat_id(gid, groups);
    let nx = params.nx;
    let ny = params.ny;
    let nz = params.nz;
    if (line >= ny * nz) {
        return;
    }
    let j = line % ny;
    let k = line / ny;
    let base = line * nx;
    var prev = vec2<f32>(0.0, 0.0);
    for (var i = 0u; i < nx; i++) {
        let ix = base + i;
        let m = mask[ix];
        if (is_held(m)) {
            prev = eliminate(i, 0.0, 1.0, 0.0, 0.0, prev);
        } else {
            let uc = u[ix];
            let q = loss_of(m);
            let ax = second_difference(ix, 1u, i, nx, uc) - q * uc;
            let ay = second_difference(ix, nx, j, ny, uc);
            let az = second_difference(ix, nx * ny, k, nz, uc);
            let row = free_row(i, nx, q);
            prev = eliminate(i, row.x, row.y, row.z, ax + ay + az, prev);
        }
    }
    // c = 0 on the last row, so starting from x = 0 is exact.
    var x = 0.0;
    for (var i = nx; i > 0u; i--) {
        x = dp[i - 1u] - cp[i - 1u] * x;
        v[base + i - 1u] = x;
    }
}

// Shared by the y and z sweeps: solves (I − θ(A_d − q_t))Δ = v along the line; stores Δ
// in v (y) or adds (1 + θq_t)²·Δ to u (z).
fn solve_increment_line(base: u32, stride: u32, n: u32, add_to_u: bool) {
    var prev = vec2<f32>(0.0, 0.0);
    for (var i = 0u; i < n; i++) {
        let ix = base + i * stride;
        let m = mask[ix];
        if (is_held(m)) {
            prev = eliminate(i, 0.0, 1.0, 0.0, v[ix], prev);
        } else {
            let row = free_row(i, n, loss_of(m));
            prev = eliminate(i, row.x, row.y, row.z, v[ix], prev);
        }
    }
    var x = 0.0;
    for (var i = n; i > 0u; i--) {
        x = dp[i - 1u] - cp[i - 1u] * x;
        let ix = base + (i - 1u) * stride;
        if (add_to_u) {
            let f = 1.0 + params.theta * loss_of(mask[ix]);
            u[ix] = u[ix] + f * f * x;
        } else {
            v[ix] = x;
        }
    }
}

// Lines along y: line = i + nx·k; v → v.
@compute @workgroup_size(WORKGROUP_SIZE)
fn sweep_y(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(num_workgroups) groups: vec3<u32>) {
    let line = flat_id(gid, groups);
    if (line >= params.nx * params.nz) {
        return;
    }
    let i = line % params.nx;
    let k = line / params.nx;
    solve_increment_line(i + params.nx * params.ny * k, params.nx, params.ny, false);
}

// Lines along z: line = i + nx·j; u ← u + solve(v).
@compute @workgroup_size(WORKGROUP_SIZE)
fn sweep_z(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(num_workgroups) groups: vec3<u32>) {
    let line = flat_id(gid, groups);
    if (line >= params.nx * params.ny) {
        return;
    }
    solve_increment_line(line, params.nx * params.ny, params.nz, true);
}

// Non-diffusing species (r = 0, A_y = A_z = 0): u ← u·(1 − (1−θ)q)/(1 + θq).
@compute @workgroup_size(WORKGROUP_SIZE)
fn decay(@builtin(global_invocation_id) gid: vec3<u32>,
         @builtin(num_workgroups) groups: vec3<u32>) {
    let ix = flat_id(gid, groups);
    if (ix >= params.nx * params.ny * params.nz) {
        return;
    }
    let m = mask[ix];
    if (!is_held(m)) {
        let q = loss_of(m);
        u[ix] = u[ix] * (1.0 - (1.0 - params.theta) * q) / (1.0 + params.theta * q);
    }
}
