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
// dispatch: one invocation per (species, voxel) of the level (restrict_residual: of the
//           coarser level); workgroup WORKGROUP_SIZE, groups laid out 2D and flattened.

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
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> level: LevelParams;
@group(0) @binding(1) var<storage, read> sigma: array<f32>;
@group(0) @binding(2) var<storage, read> op: array<f32>;
@group(0) @binding(3) var<storage, read> count: array<f32>;
@group(0) @binding(4) var<storage, read_write> x: array<f32>;
@group(0) @binding(5) var<storage, read_write> b: array<f32>;

const WORKGROUP_SIZE: u32 = 64u;

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

fn diagonal(s: u32, ix: u32) -> f32 {
    return sigma[0] * count[level.cnt_off + ix] + op[level.op_off + 4u * s * level.n + ix];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn relax(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = flat_id(gid, nwg);
    if (id >= level.n * level.n_species) {
        return;
    }
    let s = id / level.n;
    let ix = id % level.n;
    let i = ix % level.nx;
    let j = (ix / level.nx) % level.ny;
    let k = ix / (level.nx * level.ny);
    if ((i + j + k) % 2u != level.colour) {
        return;
    }
    let v = level.vec_off + s * level.n + ix;
    x[v] = (b[v] + neighbour_sum(s, i, j, k, ix)) / diagonal(s, ix);
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
    let s = id / level.n;
    let ix = id % level.n;
    let i = ix % level.nx;
    let j = (ix / level.nx) % level.ny;
    let k = ix / (level.nx * level.ny);
    let c = i / 2u + level.cnx * (j / 2u + level.cny * (k / 2u));
    x[level.vec_off + s * level.n + ix] += x[level.c_vec_off + s * level.cn + c];
}
