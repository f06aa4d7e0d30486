// multigrid.wgsl: one V-cycle of the aggregation multigrid of σ·I − A, for every species of
// the hierarchy at once (the diffusion part of the coupled scheme's factored
// preconditioner). Entry points: relax (one colour of a red–black Gauss–Seidel sweep on
// one level), restrict_residual (the residual of a level summed over the 2×2×2 aggregates
// into the right-hand side of the next coarser level, whose solution is zeroed), prolong
// (the coarse solution added to every voxel of its aggregate).
// CPU twin: src/cpu/multigrid.rs (level operators, which the host flattens to f32 here;
// sweep counts and order are the host's, gpu::multigrid).
// binding 0 level  uniform     LevelParams (Rust twin: gpu::multigrid::LevelParams)
// binding 1 sigma  storage r   f32, 1/s: σ of the current step (element 0)
// binding 2 op     storage r   f32, 1/s: per level, per species s: diagonal without σ,
//                              then the couplings to the +x, +y, +z neighbour (entry −w),
//                              at level.op_off + (4·s + component)·level.n + voxel
// binding 3 count  storage r   f32: fine voxels per aggregate, at level.cnt_off + voxel
// binding 4 x      storage rw  f32: solutions, at level.vec_off + s·level.n + voxel
// binding 5 b      storage rw  f32: right-hand sides, same layout as x
// binding 6 closed storage r   u32 per species: 1 for a species with no held voxel and no
//                              loss (its grid sum is kept by the shift below)
// binding 7 partial storage rw f32: per species, level.sum_groups partial sums
// binding 8 totals storage rw  f32 per species
// dispatch: one invocation per (species, voxel) of the level (restrict_residual: of the
//           coarser level; partial_sums: level.sum_groups workgroups per species;
//           finish_sums: one per species); workgroup WORKGROUP_SIZE, groups laid out 2D
//           and flattened.
// The factored preconditioner on level 0 (host order): scale_b (b ← σ·b), the V-cycle,
// then for the closed species partial_sums, finish_sums and shift_closed, which adds
// (Σ b/σ − Σ x)/n to x so that its sum is that of the exact inverse (1ᵀ(σ − A) = σ·1ᵀ).

struct LevelParams {
    nx: u32,
    ny: u32,
    nz: u32,
    // Voxels of this level.
    n: u32,
    op_off: u32,
    vec_off: u32,
    cnt_off: u32,
    // relax: the colour updated, 0 for voxels with i + j + k even.
    colour: u32,
    // The next coarser level (restrict_residual, prolong).
    cnx: u32,
    cny: u32,
    cnz: u32,
    cn: u32,
    c_vec_off: u32,
    n_species: u32,
    // partial_sums: workgroups per species (each sums SUM_CHUNK values).
    sum_groups: u32,
    // The coupled multigrid (block_multigrid.wgsl, appended to this file): offsets of
    // this level's reaction blocks J_R (NJ per voxel) and factored blocks (NL per voxel),
    // and of the next coarser level's J_R; 0 in the per-species multigrid.
    jac_off: u32,
    lu_off: u32,
    c_jac_off: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> level: LevelParams;
@group(0) @binding(1) var<storage, read> sigma: array<f32>;
@group(0) @binding(2) var<storage, read> op: array<f32>;
@group(0) @binding(3) var<storage, read> count: array<f32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
@group(0) @binding(5) var<storage, read_write> b: array<f32>;
@group(0) @binding(6) var<storage, read> closed: array<u32>;
@group(0) @binding(7) var<storage, read_write> partial: array<f32>;
@group(0) @binding(8) var<storage, read_write> totals: array<f32>;

const WORKGROUP_SIZE: u32 = 64u;
// Values one workgroup of partial_sums adds (16 per invocation).
const SUM_CHUNK: u32 = 1024u;

var<workgroup> wg_sum: array<f32, WORKGROUP_SIZE>;

fn flat_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
}

fn w_at(s: u32, axis: u32, ix: u32) -> f32 {
    return op[level.op_off + (4u * s + 1u + axis) * level.n + ix];
}

// Σ w·x over the six neighbours of voxel (i, j, k) = ix of species s on this level.
fn neighbour_sum(s: u32, i: u32, j: u32, k: u32, ix: u32) -> f32 {
    let base = level.vec_off + s * level.n;
    let sy = level.nx;
    let sz = level.nx * level.ny;
    var acc = 0.0;
    if (i + 1u < level.nx) {
        acc += w_at(s, 0u, ix) * x[base + ix + 1u];
    }
    if (i > 0u) {
        acc += w_at(s, 0u, ix - 1u) * x[base + ix - 1u];
    }
    if (j + 1u < level.ny) {
        acc += w_at(s, 1u, ix) * x[base + ix + sy];
    }
    if (j > 0u) {
        acc += w_at(s, 1u, ix - sy) * x[base + ix - sy];
    }
    if (k + 1u < level.nz) {
        acc += w_at(s, 2u, ix) * x[base + ix + sz];
    }
    if (k > 0u) {
        acc += w_at(s, 2u, ix - sz) * x[base + ix - sz];
    }
    return acc;
}

// Species and voxel (index and i, j, k) of invocation `id` over this level's voxels.
struct Voxel {
    s: u32,
    ix: u32,
    i: u32,
    j: u32,
    k: u32,
}

fn voxel_of(id: u32) -> Voxel {
    let ix = id % level.n;
    return Voxel(id / level.n, ix, ix % level.nx, (ix / level.nx) % level.ny, ix / (level.nx * level.ny));
}

fn diagonal(s: u32, ix: u32) -> f32 {
    return sigma[0] * count[level.cnt_off + ix] + op[level.op_off + 4u * s * level.n + ix];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn relax(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(gid, nwg);
    if (id >= level.n * level.n_species) {
        return;
    }
    let p = voxel_of(id);
    if ((p.i + p.j + p.k) % 2u != level.colour) {
        return;
    }
    let v = level.vec_off + p.s * level.n + p.ix;
    x[v] = (b[v] + neighbour_sum(p.s, p.i, p.j, p.k, p.ix)) / diagonal(p.s, p.ix);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn restrict_residual(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(gid, nwg);
    if (id >= level.cn * level.n_species) {
        return;
    }
    let s = id / level.cn;
    let c = id % level.cn;
    let ci = c % level.cnx;
    let cj = (c / level.cnx) % level.cny;
    let ck = c / (level.cnx * level.cny);
    let base = level.vec_off + s * level.n;
    var acc = 0.0;
    for (var k = 2u * ck; k < min(2u * ck + 2u, level.nz); k++) {
        for (var j = 2u * cj; j < min(2u * cj + 2u, level.ny); j++) {
            for (var i = 2u * ci; i < min(2u * ci + 2u, level.nx); i++) {
                let ix = i + level.nx * (j + level.ny * k);
                acc += b[base + ix] - diagonal(s, ix) * x[base + ix] + neighbour_sum(s, i, j, k, ix);
            }
        }
    }
    let cv = level.c_vec_off + s * level.cn + c;
    b[cv] = acc;
    x[cv] = 0.0;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn prolong(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(gid, nwg);
    if (id >= level.n * level.n_species) {
        return;
    }
    let p = voxel_of(id);
    let c = p.i / 2u + level.cnx * (p.j / 2u + level.cny * (p.k / 2u));
    x[level.vec_off + p.s * level.n + p.ix] += x[level.c_vec_off + p.s * level.cn + c];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn scale_b(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(gid, nwg);
    if (id >= level.n * level.n_species) {
        return;
    }
    b[level.vec_off + id] *= sigma[0];
}

// Per species s and group g: Σ (b/σ − x) over voxels g·SUM_CHUNK … (g + 1)·SUM_CHUNK − 1 of
// level 0, in a fixed order (the same sum every time).
@compute @workgroup_size(WORKGROUP_SIZE)
fn partial_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let group = wid.x + wid.y * nwg.x;
    let s = group / level.sum_groups;
    let g = group % level.sum_groups;
    var acc = 0.0;
    if (s < level.n_species) {
        let base = level.vec_off + s * level.n;
        for (var t = 0u; t < SUM_CHUNK / WORKGROUP_SIZE; t++) {
            let ix = g * SUM_CHUNK + t * WORKGROUP_SIZE + lid;
            if (ix < level.n) {
                acc += b[base + ix] / sigma[0] - x[base + ix];
            }
        }
    }
    wg_sum[lid] = acc;
    workgroupBarrier();
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
        if (lid < stride) {
            wg_sum[lid] += wg_sum[lid + stride];
        }
        workgroupBarrier();
    }
    if (lid == 0u && s < level.n_species) {
        partial[s * level.sum_groups + g] = wg_sum[0];
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn finish_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let s = flat_id(gid, nwg);
    if (s >= level.n_species) {
        return;
    }
    var acc = 0.0;
    for (var g = 0u; g < level.sum_groups; g++) {
        acc += partial[s * level.sum_groups + g];
    }
    totals[s] = acc;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn shift_closed(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(gid, nwg);
    if (id >= level.n * level.n_species) {
        return;
    }
    let s = id / level.n;
    if (closed[s] != 0u) {
        x[level.vec_off + id] += totals[s] / f32(level.n);
    }
}
