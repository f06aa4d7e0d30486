
// block_multigrid.wgsl: the multigrid of the coupled scheme's whole matrix
// W = σ·I − J_R − A (docs/numerics.md §10, "coupled multigrid"), appended by the host to
// multigrid.wgsl, whose bindings 0–8 (level, σ, the per-species operators, counts, the
// level vectors x and b) and helpers (neighbour_sum, diagonal, voxel_of) it uses, with the
// network's block functions generated into the marked block (src/chem/wgsl.rs,
// block_multigrid_source). Each level holds per voxel the block σ·count + each species'
// diffusion diagonal − J_R summed over the aggregate; the smoother is collective red–black
// Gauss–Seidel (a voxel's species solved together by the block's sparse LU).
// Entry points: sum_jac (J_R of the next coarser level, summed over each aggregate),
// block_factor (a level's blocks factored), block_relax (one colour of a collective sweep),
// block_restrict (the residual b − W·x summed over each aggregate into the next coarser
// level's b, its x zeroed); prolongation is multigrid.wgsl's prolong.
// CPU twin: src/cpu/block_multigrid.rs (the same sweeps in the same colour order; the CPU
// stores its factors in f32 too).
// binding 9  jacs storage rw f32: J_R per level, jacs[level.jac_off + v · NJ + entry]
//                              (level 0 copied from the block kernel's jac)
// binding 10 lus  storage rw f32: factored blocks per level, lus[level.lu_off + v · NL + slot]
// dispatch: one invocation per voxel of the level (sum_jac: of the coarser level;
//           block_restrict: per (species, coarser voxel)); workgroup WORKGROUP_SIZE.

@group(0) @binding(9) var<storage, read_write> jacs: array<f32>;
@group(0) @binding(10) var<storage, read_write> lus: array<f32>;

fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

//!GENERATED

@compute @workgroup_size(WORKGROUP_SIZE)
fn sum_jac(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = flat_id(gid, nwg);
    if (c >= level.cn) {
        return;
    }
    let ci = c % level.cnx;
    let cj = (c / level.cnx) % level.cny;
    let ck = c / (level.cnx * level.cny);
    for (var q = 0u; q < NJ; q++) {
        var acc = 0.0;
        for (var k = 2u * ck; k < min(2u * ck + 2u, level.nz); k++) {
            for (var j = 2u * cj; j < min(2u * cj + 2u, level.ny); j++) {
                for (var i = 2u * ci; i < min(2u * ci + 2u, level.nx); i++) {
                    let f = i + level.nx * (j + level.ny * k);
                    acc += jacs[level.jac_off + f * NJ + q];
                }
            }
        }
        jacs[level.c_jac_off + c * NJ + q] = acc;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn block_factor(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let v = flat_id(gid, nwg);
    if (v >= level.n) {
        return;
    }
    var m: array<f32, NSS>;
    neg_jac(level.jac_off, v, &m);
    for (var i = 0u; i < NS; i++) {
        m[i * NS + i] += diagonal(VAR_OF_ROW[i], v);
    }
    // A vanished pivot leaves a non-finite factor, which makes the Krylov solve fail
    // (the attempt is then retried at half the step, as on the CPU).
    lu_factor(&m);
    store_block(level.lu_off, v, &m);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn block_relax(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let v = flat_id(gid, nwg);
    if (v >= level.n) {
        return;
    }
    let p = voxel_of(v);
    if ((p.i + p.j + p.k) % 2u != level.colour) {
        return;
    }
    var rhs: array<f32, NV>;
    for (var s = 0u; s < NV; s++) {
        rhs[s] = b[level.vec_off + s * level.n + v] + neighbour_sum(s, p.i, p.j, p.k, v);
    }
    var m: array<f32, NSS>;
    load_block(level.lu_off, v, &m);
    var t: array<f32, NS>;
    for (var i = 0u; i < NS; i++) {
        t[i] = rhs[VAR_OF_ROW[i]];
    }
    lu_solve(&m, &t);
    for (var s = 0u; s < NV; s++) {
        let row = ROW_OF_VAR[s];
        var value = 0.0;
        if (row == NO_ROW) {
            value = rhs[s] / diagonal(s, v);
        } else {
            value = t[row];
        }
        x[level.vec_off + s * level.n + v] = value;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn block_restrict(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
                acc += b[base + ix] - diagonal(s, ix) * x[base + ix] + neighbour_sum(s, i, j, k, ix)
                    + jx_var(s, level.jac_off, ix);
            }
        }
    }
    let cv = level.c_vec_off + s * level.cn + c;
    b[cv] = acc;
    x[cv] = 0.0;
}
