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
// entry points: sweep_x or sweep_x_tiled (the host picks one), sweep_y, sweep_z, decay.
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
    // 1 when some tissue has a loss (q_t > 0), else 0 (the y and z sweeps skip the loss).
    lossy: u32,
    _pad0: u32,
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

// Lines along x: line = j + ny·k, contiguous; residual of u → v. One invocation per line.
// The x sweep's row at voxel ix (position i on x line `line`): (right-hand side
// (A_x + A_y + A_z) u, q_t), or (0, −1) for a held voxel.
fn x_row(ix: u32, i: u32, line: u32) -> vec2<f32> {
    let m = mask[ix];
    if (is_held(m)) {
        return vec2<f32>(0.0, -1.0);
    }
    let nx = params.nx;
    let ny = params.ny;
    let uc = u[ix];
    let q = loss_of(m);
    let ax = second_difference(ix, 1u, i, nx, uc) - q * uc;
    let ay = second_difference(ix, nx, line % ny, ny, uc);
    let az = second_difference(ix, nx * ny, line / ny, params.nz, uc);
    return vec2<f32>(ax + ay + az, q);
}

// Forward elimination of the x sweep's row i (from x_row).
fn eliminate_x(i: u32, row: vec2<f32>, prev: vec2<f32>) -> vec2<f32> {
    if (row.y < 0.0) {
        return eliminate(i, 0.0, 1.0, 0.0, 0.0, prev);
    }
    let abc = free_row(i, params.nx, row.y);
    return eliminate(i, abc.x, abc.y, abc.z, row.x, prev);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn sweep_x(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(num_workgroups) groups: vec3<u32>) {
    let line = flat_id(gid, groups);
    let nx = params.nx;
    if (line >= params.ny * params.nz) {
        return;
    }
    let base = line * nx;
    var prev = vec2<f32>(0.0, 0.0);
    for (var i = 0u; i < nx; i++) {
        prev = eliminate_x(i, x_row(base + i, i, line), prev);
    }
    // c = 0 on the last row, so starting from x = 0 is exact.
    var x = 0.0;
    for (var i = nx; i > 0u; i--) {
        x = dp[i - 1u] - cp[i - 1u] * x;
        v[base + i - 1u] = x;
    }
}

// sweep_x_tiled: the same solve for a hardware GPU. A workgroup takes
// WORKGROUP_SIZE consecutive lines and walks them in chunks of CHUNK voxels along x: the
// residual and the row of every voxel of a chunk are computed cooperatively (CHUNK
// consecutive invocations on consecutive x of one line: coalesced reads of u and mask)
// into workgroup memory, then each invocation eliminates its own line's CHUNK rows from
// there; back substitution goes chunk by chunk from the end, through the same tile, to
// coalesced writes of v. sweep_x reads addresses nx·4 bytes apart across a warp; on
// lavapipe, where invocations are SIMD lanes of one CPU thread, it is the faster one
// (the host chooses by adapter type, gpu::diffuse::XSweep).
const CHUNK: u32 = 16u;
// Row pitch of the tile: CHUNK + 1, so that invocations reading their own line's row of
// the tile do not all fall in one memory bank.
const PITCH: u32 = 17u;
// Per voxel of the chunk: its x_row (forward), then its solution (back substitution, .x).
var<workgroup> tile: array<vec2<f32>, WORKGROUP_SIZE * PITCH>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn sweep_x_tiled(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) groups: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let nx = params.nx;
    let n_lines = params.ny * params.nz;
    // The workgroup's first line (flat_id of its invocation 0) and this invocation's.
    let first = flat_id(gid, groups) - li;
    let line = first + li;
    let chunks = (nx + CHUNK - 1u) / CHUNK;
    var prev = vec2<f32>(0.0, 0.0);
    for (var c = 0u; c < chunks; c++) {
        // Cooperative: invocation li fills x = c·CHUNK + li % CHUNK of lines
        // li / CHUNK, + WORKGROUP_SIZE / CHUNK, … of the workgroup.
        for (var l = li / CHUNK; l < WORKGROUP_SIZE; l += WORKGROUP_SIZE / CHUNK) {
            let i = c * CHUNK + li % CHUNK;
            let ln = first + l;
            if (ln < n_lines && i < nx) {
                tile[l * PITCH + li % CHUNK] = x_row(ln * nx + i, i, ln);
            }
        }
        workgroupBarrier();
        if (line < n_lines) {
            let end = min(CHUNK, nx - c * CHUNK);
            for (var k = 0u; k < end; k++) {
                prev = eliminate_x(c * CHUNK + k, tile[li * PITCH + k], prev);
            }
        }
        workgroupBarrier();
    }
    // c = 0 on the last row, so starting from x = 0 is exact.
    var x = 0.0;
    for (var c = chunks; c > 0u; c--) {
        let c0 = (c - 1u) * CHUNK;
        if (line < n_lines) {
            let end = min(CHUNK, nx - c0);
            for (var k = end; k > 0u; k--) {
                let i = c0 + k - 1u;
                x = dp[i] - cp[i] * x;
                tile[li * PITCH + k - 1u].x = x;
            }
        }
        workgroupBarrier();
        for (var l = li / CHUNK; l < WORKGROUP_SIZE; l += WORKGROUP_SIZE / CHUNK) {
            let i = c0 + li % CHUNK;
            let ln = first + l;
            if (ln < n_lines && i < nx) {
                v[ln * nx + i] = tile[l * PITCH + li % CHUNK].x;
            }
        }
        workgroupBarrier();
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
            var q = 0.0;
            if (params.lossy != 0u) {
                q = loss_of(m);
            }
            let row = free_row(i, n, q);
            prev = eliminate(i, row.x, row.y, row.z, v[ix], prev);
        }
    }
    var x = 0.0;
    for (var i = n; i > 0u; i--) {
        x = dp[i - 1u] - cp[i - 1u] * x;
        let ix = base + (i - 1u) * stride;
        if (add_to_u && params.lossy != 0u) {
            let f = 1.0 + params.theta * loss_of(mask[ix]);
            u[ix] = u[ix] + f * f * x;
        } else if (add_to_u) {
            u[ix] = u[ix] + x;
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
