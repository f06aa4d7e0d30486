// coupled_operator.wgsl: the diffusion part of the coupled scheme's matrix W = σ·I − J_R − A
// (docs/numerics.md §10) for every integrated species at once: xout = σ·xin − A·xin, where
// A·u = c·Σ_neighbours (u_nb − u) − k_t·u on free voxels (c = D/dx², k_t the loss of the
// voxel's tissue; a grid face drops its neighbour: zero flux) and 0 on held voxels. The
// block kernel's apply_jr then subtracts J_R·xin (shaders/coupled_blocks.wgsl).
// CPU twin: src/cpu/coupled.rs (apply_w, apply_diffusion).
// binding 0 op     uniform     OperatorParams (Rust twin: gpu::coupled_blocks::OperatorParams)
// binding 1 vars   storage r   VarParams per integrated species
// binding 2 mask   storage r   u32 per voxel: tissue id (bits 0–3), held bit per species
// binding 3 xin    storage r   f32, species-major: species k of voxel v at k·n + v
// binding 4 xout   storage rw  f32, the same layout
// dispatch: one invocation per (species, voxel); workgroup WORKGROUP_SIZE, groups laid out
//           2D and flattened (see flat_id).

struct OperatorParams {
    nx: u32,
    ny: u32,
    nz: u32,
    n_vars: u32,
    // σ = 1/(γh), 1/s.
    sigma: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct VarParams {
    // D/dx², 1/s.
    c: f32,
    // Mask bit of the species' held voxels.
    held_bit: u32,
    _pad0: u32,
    _pad1: u32,
    // First-order loss per tissue id t, 1/s: element t is decay[t / 4][t % 4].
    decay: array<vec4<f32>, 4>,
}

@group(0) @binding(0) var<uniform> op: OperatorParams;
@group(0) @binding(1) var<storage, read> vars: array<VarParams>;
@group(0) @binding(2) var<storage, read> mask: array<u32>;
@group(0) @binding(3) var<storage, read> xin: array<f32>;
@group(0) @binding(4) var<storage, read_write> xout: array<f32>;

const WORKGROUP_SIZE: u32 = 64u;
// TISSUE_ID_MASK comes from ionfield::grid::wgsl_constants, prepended by the host.

fn flat_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn sigma_minus_a(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = op.nx * op.ny * op.nz;
    let id = flat_id(gid, nwg);
    if (id >= n * op.n_vars) {
        return;
    }
    let k = id / n;
    let ix = id % n;
    let i = ix % op.nx;
    let j = (ix / op.nx) % op.ny;
    let kz = ix / (op.nx * op.ny);
    let base = k * n;
    let u = xin[base + ix];
    var out = op.sigma * u;
    let m = mask[ix];
    let p = vars[k];
    if ((m & p.held_bit) == 0u) {
        var lap = 0.0;
        if (i > 0u) {
            lap += xin[base + ix - 1u] - u;
        }
        if (i + 1u < op.nx) {
            lap += xin[base + ix + 1u] - u;
        }
        if (j > 0u) {
            lap += xin[base + ix - op.nx] - u;
        }
        if (j + 1u < op.ny) {
            lap += xin[base + ix + op.nx] - u;
        }
        let slab = op.nx * op.ny;
        if (kz > 0u) {
            lap += xin[base + ix - slab] - u;
        }
        if (kz + 1u < op.nz) {
            lap += xin[base + ix + slab] - u;
        }
        let t = m & TISSUE_ID_MASK;
        out -= p.c * lap - p.decay[t / 4u][t % 4u] * u;
    }
    xout[base + ix] = out;
}
