// diffuse_lod.wgsl: one implicit LOD sweep of one species along x, y or z (entry points
// sweep_x, sweep_y, sweep_z), (1 + q_t)·c − r·δ²c = c* with r = D·dt/dx², q_t = k_t·dt/3,
// Thomas solve per grid line; plus `decay`, the pointwise loss of a non-diffusing species.
// CPU twin: src/cpu/diffuse.rs (row coefficients, Thomas recurrences, held voxels).
// binding 0 params  uniform     DiffuseParams (Rust twin: gpu::diffuse::DiffuseParams)
// binding 1 conc    storage rw  f32, mM, one species, x fastest: i + nx·(j + ny·k)
// binding 2 mask    storage r   u32 per voxel: tissue id (bits 0–3), held bit per species
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
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    // k_t·dt/3 per tissue id t, dimensionless; element t is loss_per_sweep[t / 4][t % 4].
    loss_per_sweep: array<vec4<f32>, 4>,
}

@group(0) @binding(0) var<uniform> params: DiffuseParams;
@group(0) @binding(1) var<storage, read_write> conc: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<u32>;

// Longest grid line the private arrays hold; the host rewrites this line to the grid's
// longest axis before compiling (gpu::diffuse::shader_source).
const MAX_LINE: u32 = 1024u;
const WORKGROUP_SIZE: u32 = 64u;
const TISSUE_ID_MASK: u32 = 15u;

// Thomas forward-sweep values, kept in registers/private memory so back substitution
// does not re-read the buffer (PERF-NOTES: fewer buffer accesses is what is fast).
var<private> cp: array<f32, MAX_LINE>;
var<private> dp: array<f32, MAX_LINE>;

fn loss_of(m: u32) -> f32 {
    let t = m & TISSUE_ID_MASK;
    return params.loss_per_sweep[t / 4u][t % 4u];
}

fn flat_id(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * WORKGROUP_SIZE;
}

// Solves the line of n voxels at base, base + stride, …, in place.
fn solve_line(base: u32, stride: u32, n: u32) {
    var c_prev = 0.0;
    var d_prev = 0.0;
    for (var i = 0u; i < n; i++) {
        let ix = base + i * stride;
        let m = mask[ix];
        var a = 0.0;
        var b = 1.0;
        var c = 0.0;
        if ((m & params.held_bit) == 0u) {
            a = select(0.0, -params.r, i > 0u);
            c = select(0.0, -params.r, i + 1u < n);
            b = 1.0 + loss_of(m) - a - c;
        }
        let inv = 1.0 / (b - a * c_prev);
        c_prev = c * inv;
        d_prev = (conc[ix] - a * d_prev) * inv;
        cp[i] = c_prev;
        dp[i] = d_prev;
    }
    // c = 0 on the last row, so starting from x = 0 is exact.
    var x = 0.0;
    for (var i = n; i > 0u; i--) {
        x = dp[i - 1u] - cp[i - 1u] * x;
        conc[base + (i - 1u) * stride] = x;
    }
}

// Lines along x: line = j + ny·k, contiguous.
@compute @workgroup_size(WORKGROUP_SIZE)
fn sweep_x(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(num_workgroups) groups: vec3<u32>) {
    let line = flat_id(gid, groups);
    if (line >= params.ny * params.nz) {
        return;
    }
    solve_line(line * params.nx, 1u, params.nx);
}

// Lines along y: line = i + nx·k.
@compute @workgroup_size(WORKGROUP_SIZE)
fn sweep_y(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(num_workgroups) groups: vec3<u32>) {
    let line = flat_id(gid, groups);
    if (line >= params.nx * params.nz) {
        return;
    }
    let i = line % params.nx;
    let k = line / params.nx;
    solve_line(i + params.nx * params.ny * k, params.nx, params.ny);
}

// Lines along z: line = i + nx·j.
@compute @workgroup_size(WORKGROUP_SIZE)
fn sweep_z(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(num_workgroups) groups: vec3<u32>) {
    let line = flat_id(gid, groups);
    if (line >= params.nx * params.ny) {
        return;
    }
    solve_line(line, params.nx * params.ny, params.nz);
}

// Non-diffusing species: the three sweeps with r = 0 collapse to c / (1 + q_t)³.
@compute @workgroup_size(WORKGROUP_SIZE)
fn decay(@builtin(global_invocation_id) gid: vec3<u32>,
         @builtin(num_workgroups) groups: vec3<u32>) {
    let ix = flat_id(gid, groups);
    if (ix >= params.nx * params.ny * params.nz) {
        return;
    }
    let m = mask[ix];
    if ((m & params.held_bit) == 0u) {
        let f = 1.0 + loss_of(m);
        conc[ix] = conc[ix] / (f * f * f);
    }
}
