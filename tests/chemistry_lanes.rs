//! The batched reaction integrator (`chem::lanes`, the CPU backend's default) against the
//! scalar reference (`chem::ros2::integrate`): bit-identical fields, step-size memory,
//! sub-step counts and faults on every shipped network (the therapy presets and the
//! well-mixed Fenton config), over fields with varied voxels — both tissues, held vessel
//! voxels, zeros, −0.0, small negative values (ADI undershoot), scaled concentrations —
//! and over several calls, so the per-voxel step memory and rejections are exercised. The
//! batched f and J evaluation (`RhsJacLanes`) is checked against the scalar tapes.

use ionfield::chem::lanes::RhsJacLanes;
use ionfield::chem::ros2::Prepared;
use ionfield::chem::tape::Registers;
use ionfield::chem::Network;
use ionfield::config;
use ionfield::cpu::react_ros2::{CpuChemistry, ReactPath};
use ionfield::cpu::CpuEngine;
use ionfield::engine::Engine;
use ionfield::model::{held_bit, Model, TISSUE_ID_MASK};
use std::path::Path;

/// 13 × 11 × 17 = 2431 voxels: two rayon chunks of the backend (2048), the second one not
/// a multiple of the lane count.
const SHAPE: [usize; 3] = [13, 11, 17];

/// Every scenario file with a reaction network that the repository ships.
fn networks() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("configs/therapies"))
        .expect("configs/therapies")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files.push(root.join("configs/wellmixed_fenton.toml"));
    files
}

fn model(path: &Path, extra: &[String]) -> Model {
    // The scenario's own block on fewer, larger voxels, at least as large as the block on
    // every axis (its regions, doses and probes stay inside).
    let own = config::load_file(path, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let extent_um = own.grid.extent_um().max_element();
    let mut sets = vec![
        format!("grid.shape=[{},{},{}]", SHAPE[0], SHAPE[1], SHAPE[2]),
        format!("grid.voxel_um={}", extent_um / SHAPE[1] as f64),
        "output.slices=[8]".into(),
    ];
    sets.extend_from_slice(extra);
    let scenario =
        config::load_file(path, &sets).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Model::build(&scenario)
}

/// A deterministic pseudo-random number in [0, 1) for (voxel, species, salt).
fn unit(v: usize, s: usize, salt: u64) -> f64 {
    let mut x = (v as u64) ^ ((s as u64) << 32) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The model's initial fields plus every dose, then varied voxel by voxel (held voxels keep
/// their held values, as the engines keep them).
fn varied_fields(m: &Model) -> Vec<Vec<f64>> {
    let mut conc = m.initial_mm.clone();
    for d in &m.doses {
        for (c, dm) in conc[d.species].iter_mut().zip(&d.delta_mm) {
            *c += dm;
        }
    }
    for (s, field) in conc.iter_mut().enumerate() {
        for (v, c) in field.iter_mut().enumerate() {
            if m.mask[v] & held_bit(s) != 0 {
                continue;
            }
            let u = unit(v, s, 1);
            // Every 97th voxel: every free species at zero; else 4 % of values zero.
            *c = if v % 97 == 5 || u < 0.04 {
                0.0
            } else if u < 0.06 {
                -0.0
            } else if u < 0.09 {
                -1e-3 * c.abs() - 1e-12 // undershoot below zero
            } else if u < 0.12 {
                *c * 50.0 // a steep front
            } else {
                *c * (0.25 + 2.0 * unit(v, s, 2))
            };
        }
    }
    conc
}

fn same_bits(a: &[f64], b: &[f64]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits())
}

/// Runs `intervals` reaction calls with both paths on the same fields and asserts that
/// everything matches bit for bit; returns (sub-steps, faulting calls).
fn compare_paths(
    name: &str,
    m: &Model,
    mut conc: Vec<Vec<f64>>,
    intervals: &[f64],
) -> (u64, usize) {
    let net = m.network.clone().expect("a network");
    let n_voxels = m.mask.len();
    let mut scalar = CpuChemistry::new(net.clone(), n_voxels);
    scalar.path = ReactPath::Scalar;
    let mut lanes = CpuChemistry::new(net.clone(), n_voxels);
    assert_eq!(lanes.path, ReactPath::Lanes, "the default path");
    let mut conc_l = conc.clone();
    let mut faults = 0;
    for (call, &dt) in intervals.iter().enumerate() {
        let rs = scalar.react(&mut conc, &m.mask, dt);
        let rl = lanes.react(&mut conc_l, &m.mask, dt);
        let what = format!("{name}, call {call} (interval {dt} s)");
        match (&rs, &rl) {
            (Ok(()), Ok(())) => {}
            (Err(a), Err(b)) => {
                assert_eq!((a.voxel, a.fault), (b.voxel, b.fault), "{what}: fault");
                faults += 1;
            }
            _ => panic!("{what}: scalar {rs:?}, lanes {rl:?}"),
        }
        for (s, (a, b)) in conc.iter().zip(&conc_l).enumerate() {
            if let Some(v) = same_bits(a, b) {
                panic!(
                    "{what}: species {} voxel {v}: scalar {:e} ({:#x}), lanes {:e} ({:#x})",
                    net.species_names[s],
                    a[v],
                    a[v].to_bits(),
                    b[v],
                    b[v].to_bits()
                );
            }
        }
        if let Some(v) = same_bits(scalar.h_last(), lanes.h_last()) {
            panic!(
                "{what}: h_last of voxel {v}: scalar {:e}, lanes {:e}",
                scalar.h_last()[v],
                lanes.h_last()[v]
            );
        }
        assert_eq!(scalar.substeps_total, lanes.substeps_total, "{what}");
        assert_eq!(scalar.substeps_max, lanes.substeps_max, "{what}");
    }
    (scalar.substeps_total, faults)
}

#[test]
fn lanes_match_the_scalar_integrator_bit_for_bit_on_every_network() {
    // 0.5 s and 1 s: the production calls (Strang halves, whole steps); 20 s: long calls
    // with many sub-steps and rejections; 1e-3 s: short calls with large step memory.
    let intervals = [0.5, 1.0, 20.0, 1e-3, 1.0];
    for path in networks() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // The cap keeps the stiffest varied voxels (NaCl at 50× its dose) from taking
        // minutes; those voxels fail, which the comparison covers too.
        let m = model(&path, &["chemistry.max_substeps=400".into()]);
        let Some(net) = &m.network else {
            continue;
        };
        let tissues: std::collections::BTreeSet<u32> =
            m.mask.iter().map(|&x| x & TISSUE_ID_MASK).collect();
        let held = m.mask.iter().filter(|&&x| x & !TISSUE_ID_MASK != 0).count();
        // The initial fields as they are: neighbouring voxels alike, so the lanes mostly
        // start and finish together (the block loads and stores).
        compare_paths(&name, &m, m.initial_mm.clone(), &[0.5, 0.5]);
        let (substeps, faults) = compare_paths(&name, &m, varied_fields(&m), &intervals);
        eprintln!(
            "{name}: {} state species, {} voxels, tissues {tissues:?}, {held} with held species, {substeps} sub-steps, {faults} faulting calls: identical",
            net.state.len(),
            m.mask.len()
        );
        assert!(substeps > (m.mask.len() * intervals.len()) as u64, "{name}");
    }
}

#[test]
fn lanes_match_the_scalar_integrator_on_faults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/therapies/fe_fenton_cdt.toml");
    // Too few sub-steps for long calls: many voxels fail; their fields hold what the scalar
    // integrator had evaluated last, and that must match too.
    let m = model(&path, &["chemistry.max_substeps=3".into()]);
    let (_, faults) = compare_paths("max_substeps=3", &m, varied_fields(&m), &[50.0, 50.0]);
    assert_eq!(faults, 2, "both calls fail somewhere");
    // Non-finite inputs in a few voxels.
    let m = model(&path, &[]);
    let mut conc = varied_fields(&m);
    let net = m.network.as_ref().unwrap();
    for (k, v) in [17usize, 18, 2000, 2430].into_iter().enumerate() {
        let s = net.state[k % net.state.len()];
        conc[s][v] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::NAN][k];
    }
    let (_, faults) = compare_paths("non-finite inputs", &m, conc, &[1.0]);
    assert_eq!(faults, 1);
}

/// Twin engines, full steps (diffusion, doses, Strang halves): identical fields.
#[test]
fn cpu_engine_lanes_match_scalar_over_full_steps() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/therapies/fe_fenton_cdt.toml");
    let m = model(&path, &[]);
    let mut a = CpuEngine::new(&m);
    a.set_react_path(ReactPath::Scalar);
    let mut b = CpuEngine::new(&m);
    for e in [&mut a, &mut b] {
        e.advance(4, 0.5).expect("advance");
        for d in &m.doses {
            e.add_to_field(d.species, &d.delta_mm).expect("dose");
        }
        e.advance(6, 0.5).expect("advance");
    }
    for s in 0..m.species.len() {
        assert_eq!(
            same_bits(a.field_mm(s), b.field_mm(s)),
            None,
            "species {}",
            m.species[s].name
        );
    }
    assert_eq!(a.reaction_stats(), b.reaction_stats());
}

/// The public batched f and J against the scalar tapes, lane by lane, bit for bit.
#[test]
fn batched_rhs_and_jacobian_match_the_scalar_tapes() {
    const L: usize = 4;
    for path in networks() {
        let m = model(&path, &[]);
        let Some(net) = &m.network else {
            continue;
        };
        let net: &Network = net;
        let prep = Prepared::new(net);
        let n = net.state.len();
        let conc = varied_fields(&m);
        let mut eval = RhsJacLanes::<L>::new(net, &prep);
        let mut scalar_regs = Registers::new(&prep.tapes.rhs_jac);
        let mut scalar_rhs = Registers::new(&prep.tapes.rhs);
        let mut f = vec![[0.0; L]; n];
        let mut f2 = vec![[0.0; L]; n];
        let mut jac = vec![[0.0; L]; n * n];
        for first in (0..m.mask.len() - L).step_by(37) {
            let mut lanes = vec![[0.0; L]; conc.len()];
            let mut tissue = [0; L];
            let mut held = vec![[false; L]; n];
            for l in 0..L {
                let v = first + l;
                for (s, field) in conc.iter().enumerate() {
                    lanes[s][l] = field[v];
                }
                tissue[l] = (m.mask[v] & TISSUE_ID_MASK) as usize;
                for (i, &s) in net.state.iter().enumerate() {
                    held[i][l] = m.mask[v] & held_bit(s) != 0;
                }
            }
            eval.rhs_jac(&lanes, &tissue, Some(&held), &mut f, &mut jac);
            eval.rhs(&lanes, &tissue, Some(&held), &mut f2);
            for l in 0..L {
                let voxel: Vec<f64> = lanes.iter().map(|c| c[l]).collect();
                prep.tapes
                    .rhs_jac
                    .run(&voxel, tissue[l], &net.params, &mut scalar_regs);
                prep.tapes
                    .rhs
                    .run(&voxel, tissue[l], &net.params, &mut scalar_rhs);
                let out = &prep.tapes.rhs_jac.outputs;
                for i in 0..n {
                    let want = |x: f64| if held[i][l] { 0.0 } else { x };
                    let fi = want(scalar_regs.get(out[i]));
                    assert_eq!(f[i][l].to_bits(), fi.to_bits(), "f_{i}, lane {l}");
                    let fr = want(scalar_rhs.get(prep.tapes.rhs.outputs[i]));
                    assert_eq!(f2[i][l].to_bits(), fr.to_bits(), "f_{i} (rhs), lane {l}");
                    for k in 0..n {
                        let jik = want(scalar_regs.get(out[n + i * n + k]));
                        assert_eq!(jac[i * n + k][l].to_bits(), jik.to_bits(), "J_{i}{k}");
                    }
                }
            }
        }
    }
}

/// Component timings (not a check; BENCHMARKS.md quotes them): `cargo test --release
/// --test chemistry_lanes -- --ignored --nocapture` (`CHUNK_REPS=n` repeats the whole-chunk
/// timing, e.g. under `perf record`). Compiled for AVX2 as the backend's hot loop is.
#[cfg(target_arch = "x86_64")]
#[test]
#[ignore]
fn component_timings() {
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { component_timings_avx2() }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn component_timings_avx2() {
    use ionfield::chem::lanes::LANES as L;
    use ionfield::chem::tape::{LaneRegisters, Row};
    use std::hint::black_box;
    use std::time::Instant;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/therapies/fe_fenton_cdt.toml");
    let m = model(&path, &[]);
    let net = m.network.as_ref().unwrap();
    let prep = Prepared::new(net);
    let conc = varied_fields(&m);
    let v0 = 1000;
    let mut lanes = vec![Row([0.0; L]); conc.len()];
    for l in 0..L {
        for (s, f) in conc.iter().enumerate() {
            lanes[s][l] = f[v0 + l].abs();
        }
    }
    let tissue = [1usize; L];
    let reps = 20_000;
    // The fastest of 9 batches: the machine is shared.
    let time = |what: &str, f: &mut dyn FnMut()| {
        let mut ns = f64::INFINITY;
        for _ in 0..9 {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            ns = ns.min(t.elapsed().as_secs_f64() * 1e9 / reps as f64);
        }
        eprintln!(
            "{what:<28} {ns:>8.0} ns per {L} lanes, {:>6.1} ns per voxel",
            ns / L as f64
        );
    };
    let t = &prep.lane_tapes;
    eprintln!(
        "f+J: {} instructions in {} blocks, {} registers; f: {} in {}, {}",
        t.rhs_jac.n_instructions(),
        t.rhs_jac.n_blocks(),
        t.rhs_jac.n_registers(),
        t.rhs.n_instructions(),
        t.rhs.n_blocks(),
        t.rhs.n_registers()
    );
    let mut regs = LaneRegisters::<L>::new(&t.rhs_jac);
    time("f+J tape", &mut || {
        t.rhs_jac
            .run(black_box(&lanes), &tissue, &net.params, &mut regs)
    });
    let mut regs = LaneRegisters::<L>::new(&t.rhs);
    time("f tape", &mut || {
        t.rhs
            .run(black_box(&lanes), &tissue, &net.params, &mut regs)
    });
    let voxel: Vec<f64> = lanes.iter().map(|c| c[0]).collect();
    let mut sregs = Registers::new(&prep.tapes.rhs_jac);
    time("scalar f+J tape (×L)", &mut || {
        for _ in 0..L {
            prep.tapes
                .rhs_jac
                .run(black_box(&voxel), 1, &net.params, &mut sregs);
        }
    });
    let plan = &prep.lane_lu;
    eprintln!(
        "LU: (scalings, updates, solve terms) = {:?}",
        plan.n_operations()
    );
    let mut ma = vec![Row([0.0; L]); plan.nnz()];
    for (s, &(i, k)) in plan.entries().iter().enumerate() {
        ma[s] = Row([if i == k { 10.0 } else { 0.1 }; L]);
    }
    let mut mm = ma.clone();
    time("copy + factor", &mut || {
        mm.copy_from_slice(black_box(&ma));
        black_box(plan.factor_lanes(&mut mm));
    });
    let mut b = vec![Row([1.0; L]); plan.n()];
    time("solve", &mut || plan.solve_lanes(black_box(&mm), &mut b));
    let x = b.clone();
    let mut r = b.clone();
    time("residual", &mut || {
        plan.residual_lanes(black_box(&ma), &x, &b, &mut r)
    });
    // A whole chunk, after one call (so the step memory is warm), per voxel and sub-step.
    use ionfield::chem::lanes::{integrate_chunk, Chunk, LaneWorkspace};
    let bound = net.bound_species();
    let nv = 2048;
    let mut fields: Vec<Vec<f64>> = bound
        .iter()
        .map(|&s| m.initial_mm[s][..nv].to_vec())
        .collect();
    let mask = &m.mask[..nv];
    let mut h_last = vec![0.0; nv];
    let mut ws = LaneWorkspace::<L>::new(net, &prep);
    let mut chunk = Chunk {
        conc: fields.iter_mut().map(|f| &mut f[..]).collect(),
        mask,
        h_last: &mut h_last,
    };
    integrate_chunk(net, &prep, &mut ws, &mut chunk, 0.5);
    let mut best = f64::INFINITY;
    let mut substeps = 0;
    let reps: usize = std::env::var("CHUNK_REPS").map_or(5, |v| v.parse().unwrap());
    for _ in 0..reps {
        let t = Instant::now();
        let out = integrate_chunk(net, &prep, &mut ws, &mut chunk, 0.5);
        best = best.min(t.elapsed().as_secs_f64());
        substeps = out.substeps;
    }
    eprintln!(
        "whole chunk: {:.0} ns per voxel-substep ({substeps} sub-steps for {nv} voxels)",
        best * 1e9 / substeps as f64
    );
    // The scalar reference on the same voxels (its own copy, same step memory).
    let mut sws = ionfield::chem::ros2::Workspace::new(net, &prep.tapes);
    let held_bits: Vec<u32> = net.state.iter().map(|&s| held_bit(s)).collect();
    let h0 = chunk.h_last.to_vec();
    let mut best_s = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        let mut total = 0;
        for v in 0..nv {
            for (b, &s) in bound.iter().enumerate() {
                sws.conc[s] = chunk.conc[b][v];
            }
            let mk = mask[v];
            let held = |i: usize| mk & held_bits[i] != 0;
            let out = ionfield::chem::ros2::integrate(
                net,
                &prep,
                &mut sws,
                (mk & TISSUE_ID_MASK) as usize,
                held,
                0.5,
                h0[v],
            )
            .expect("scalar");
            total += out.substeps;
        }
        best_s = best_s.min(t.elapsed().as_secs_f64());
        assert_eq!(total as u64, substeps);
    }
    eprintln!(
        "scalar: {:.0} ns per voxel-substep; ratio {:.2}",
        best_s * 1e9 / substeps as f64,
        best_s / best
    );
}
