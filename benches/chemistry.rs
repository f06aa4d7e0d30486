//! Reaction-step throughput of the built-in default network (configs/default.toml: 16
//! reactions, 12 species, 11 integrated, OH· quasi-steady) on the CPU backend (f64, rayon)
//! and the wgpu backend (whatever adapter is present), after warm-up.
//!
//! * react only: every diffusion coefficient set to 0, so a step is one reaction call of dt
//!   per voxel (Strang halves merged); reported as voxel-steps/s and mean sub-steps per
//!   voxel and call;
//! * full step: react + diffuse (7 diffusing species) + react, the production schedule.
//!
//! The grid keeps the default's 640 µm domain (voxel = 640/N µm) so the vessels, tumour and
//! iron cloud are the same at every size. The first steps are a transient (the initial
//! fields are not at steady state); the timed steps start after `WARM_STEPS`.
//!
//! `cargo bench --bench chemistry [-- 64 128]` (sizes; default 64 and 128). Results:
//! BENCHMARKS.md.
//!
//! `cargo bench --bench chemistry -- paths [64]`: the CPU backend only, its two reaction
//! integrators (the scalar reference and the batched lanes) on twin engines, timed in
//! alternation (pairs, so a shared machine's drift hits both) for react only and the full
//! step; prints min/median/max per path and of the per-pair ratio, and checks that the two
//! engines' fields are bit-identical at the end. `-- path=scalar [64]` or `-- path=lanes
//! [64] [steps=5]`: the react-only run of one path alone (for timing whole processes;
//! `steps=0` stops after the set-up).

use ionfield::config;
use ionfield::cpu::react_ros2::ReactPath;
use ionfield::cpu::CpuEngine;
use ionfield::engine::{Engine, ReactionStats};
use ionfield::gpu::{GpuContext, GpuEngine};
use ionfield::model::Model;
use std::time::Instant;

const WARM_STEPS: u64 = 3;

fn scenario(n: usize, diffusion: bool) -> config::Scenario {
    let mut sets = vec![
        format!("grid.shape=[{n},{n},{n}]"),
        format!("grid.voxel_um={}", 640.0 / n as f64),
        format!("output.slices=[{}]", n / 2),
    ];
    let base = config::load_str(config::DEFAULT_SCENARIO_TOML, config::DEFAULT_SOURCE, &sets)
        .expect("default scenario");
    if !diffusion {
        for s in &base.species {
            sets.push(format!("species.{}.diffusion_um2_per_s=0", s.name));
        }
    }
    config::load_str(config::DEFAULT_SCENARIO_TOML, config::DEFAULT_SOURCE, &sets)
        .expect("default scenario")
}

/// Runs `steps` timed steps after the warm-up; returns (seconds, stats of the timed steps).
fn time_steps(
    engine: &mut dyn Engine,
    steps: u64,
    sync: &dyn Fn(&mut dyn Engine),
) -> (f64, ReactionStats) {
    engine.advance(WARM_STEPS, 1.0).expect("warm-up");
    sync(engine);
    let before = engine.reaction_stats().unwrap_or_default();
    let t = Instant::now();
    engine.advance(steps, 1.0).expect("timed steps");
    sync(engine);
    let secs = t.elapsed().as_secs_f64();
    let after = engine.reaction_stats().unwrap_or_default();
    (
        secs,
        ReactionStats {
            calls: after.calls - before.calls,
            substeps: after.substeps - before.substeps,
            max_substeps: after.max_substeps,
        },
    )
}

fn report(label: &str, what: &str, n: usize, steps: u64, secs: f64, st: ReactionStats) {
    let voxels = (n * n * n) as f64;
    let per_step = secs / steps as f64;
    println!(
        "{label:<22} {what:<10} {n:>4}³  {:>9.1} ms/step  {:>7.2} M voxel-steps/s  {:>5.2} sub-steps per voxel and call (max {})",
        per_step * 1e3,
        voxels / per_step / 1e6,
        st.substeps as f64 / (st.calls.max(1) as f64 * voxels),
        st.max_substeps
    );
}

/// (min, median, max).
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (s[0], s[s.len() / 2], s[s.len() - 1])
}

/// CPU seconds this process has used (user + system, all threads; Linux `/proc/self/stat`,
/// 10 ms ticks), or NaN elsewhere. On a shared machine CPU time moves less than wall time.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which is in parentheses): utime and stime are the
    // 12th and 13th of them.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    if f.len() == 2 {
        (f[0] + f[1]) / 100.0
    } else {
        f64::NAN
    }
}

/// Substeps attempted so far (0 if the engine has no network).
fn substeps(e: &mut CpuEngine) -> u64 {
    e.reaction_stats().map_or(0, |s| s.substeps)
}

/// Scalar vs lanes on twin CPU engines, `pairs` alternating timings of `steps` steps each.
fn compare_paths(n: usize) {
    let (pairs, steps) = if n <= 64 { (7, 2) } else { (3, 1) };
    for (what, diffusion) in [("react", false), ("full step", true)] {
        let model = Model::build(&scenario(n, diffusion));
        if let (Some(net), false) = (&model.network, diffusion) {
            let prep = ionfield::chem::ros2::Prepared::new(net);
            let t = &prep.lane_tapes;
            println!(
                "network: {} state species; lanes f+J program {} instructions in {} blocks ({} registers, f alone the first {}); LU {} slots ({} matrix entries)",
                net.state.len(),
                t.rhs_jac.n_instructions(),
                t.rhs_jac.n_blocks(),
                t.rhs_jac.n_registers(),
                t.rhs_jac.n_prefix_instructions(),
                prep.lane_lu.nnz(),
                prep.lane_lu.n_matrix()
            );
        }
        let mut engines = [CpuEngine::new(&model), CpuEngine::new(&model)];
        engines[0].set_react_path(ReactPath::Scalar);
        engines[1].set_react_path(ReactPath::Lanes);
        let mut ms = [Vec::new(), Vec::new()];
        let mut cpu_ms = [Vec::new(), Vec::new()];
        let mut rate = [Vec::new(), Vec::new()];
        for e in &mut engines {
            e.advance(WARM_STEPS, 1.0).expect("warm-up");
        }
        for _ in 0..pairs {
            for (p, e) in engines.iter_mut().enumerate() {
                let before = substeps(e);
                let (t, cpu) = (Instant::now(), cpu_seconds());
                e.advance(steps, 1.0).expect("timed steps");
                let secs = t.elapsed().as_secs_f64();
                ms[p].push(secs * 1e3 / steps as f64);
                cpu_ms[p].push((cpu_seconds() - cpu) * 1e3 / steps as f64);
                rate[p].push((substeps(e) - before) as f64 / secs / 1e6);
            }
        }
        let identical = (0..model.species.len()).all(|s| {
            let (a, b) = (engines[0].field_mm(s), engines[1].field_mm(s));
            a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
        });
        for (p, label) in ["scalar", "lanes"].iter().enumerate() {
            let (lo, med, hi) = spread(&ms[p]);
            let (rlo, rmed, rhi) = spread(&rate[p]);
            let (_, cmed, _) = spread(&cpu_ms[p]);
            println!(
                "cpu {label:<6} {what:<10} {n:>4}³  ms/step {med:>8.1} (min {lo:.1}, max {hi:.1}; CPU {cmed:.1})  M voxel-substeps/s {rmed:>6.2} ({rlo:.2}–{rhi:.2})"
            );
        }
        for (times, kind) in [(&ms, "wall"), (&cpu_ms, "CPU time")] {
            let ratio: Vec<f64> = times[0].iter().zip(&times[1]).map(|(a, b)| a / b).collect();
            let (lo, med, hi) = spread(&ratio);
            println!(
                "cpu scalar/lanes {what:<10} {n:>4}³  {kind:<8} {med:.2}× (min {lo:.2}, max {hi:.2}) over {pairs} pairs of {steps} steps"
            );
        }
        println!("fields bit-identical after the pairs: {identical}");
    }
    react_in_full_steps(n, pairs);
}

/// The reaction alone on the fields of full steps (diffusion before each call, so voxels
/// need several and differing sub-steps): a lanes engine advances one step, then twin
/// reaction objects (scalar, lanes) each integrate a copy of its fields over dt = 1 s,
/// timed in alternation; their outputs must be bit-identical.
fn react_in_full_steps(n: usize, pairs: usize) {
    use ionfield::cpu::react_ros2::CpuChemistry;
    let model = Model::build(&scenario(n, true));
    let Some(net) = &model.network else {
        return;
    };
    let mut engine = CpuEngine::new(&model);
    engine.advance(WARM_STEPS, 1.0).expect("warm-up");
    let n_voxels = model.mask.len();
    let mut chem = [
        CpuChemistry::new(net.clone(), n_voxels),
        CpuChemistry::new(net.clone(), n_voxels),
    ];
    chem[0].path = ReactPath::Scalar;
    chem[1].path = ReactPath::Lanes;
    let (mut ms, mut rate) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    let mut identical = true;
    for _ in 0..pairs {
        engine.advance(1, 1.0).expect("step");
        let fields: Vec<Vec<f64>> = (0..model.species.len())
            .map(|s| engine.field_mm(s).to_vec())
            .collect();
        let mut out = Vec::new();
        for (p, c) in chem.iter_mut().enumerate() {
            let mut conc = fields.clone();
            let before = c.substeps_total;
            let t = Instant::now();
            c.react(&mut conc, &model.mask, 1.0).expect("react");
            let secs = t.elapsed().as_secs_f64();
            ms[p].push(secs * 1e3);
            rate[p].push((c.substeps_total - before) as f64 / secs / 1e6);
            out.push(conc);
        }
        identical &= out[0]
            .iter()
            .flatten()
            .zip(out[1].iter().flatten())
            .all(|(a, b)| a.to_bits() == b.to_bits());
    }
    for (p, label) in ["scalar", "lanes"].iter().enumerate() {
        let (lo, med, hi) = spread(&ms[p]);
        let (_, rmed, _) = spread(&rate[p]);
        let per_voxel = chem[p].substeps_total as f64 / (chem[p].calls as f64 * n_voxels as f64);
        println!(
            "cpu {label:<6} react in full steps {n:>4}³  ms/call {med:>8.1} (min {lo:.1}, max {hi:.1})  M voxel-substeps/s {rmed:>6.2}  ({per_voxel:.2} sub-steps per voxel and call)"
        );
    }
    let ratio: Vec<f64> = ms[0].iter().zip(&ms[1]).map(|(a, b)| a / b).collect();
    let (lo, med, hi) = spread(&ratio);
    println!(
        "cpu scalar/lanes react in full steps {n:>4}³  {med:.2}× (min {lo:.2}, max {hi:.2}) over {pairs} pairs; outputs bit-identical: {identical}"
    );
}

/// React only with one path: warm-up then `steps` steps (whole-process timing from
/// outside; `steps=0` times the set-up alone).
fn one_path(path: ReactPath, n: usize, steps: u64) {
    let model = Model::build(&scenario(n, false));
    let mut e = CpuEngine::new(&model);
    e.set_react_path(path);
    if steps == 0 {
        return;
    }
    let cpu = cpu_seconds();
    let (secs, st) = time_steps(&mut e, steps, &|_: &mut dyn Engine| {});
    report(&format!("cpu {path:?}"), "react", n, steps, secs, st);
    println!(
        "  CPU time of warm-up and timed steps: {:.3} s",
        cpu_seconds() - cpu
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let path = args.iter().find_map(|a| match a.as_str() {
        "path=scalar" => Some(ReactPath::Scalar),
        "path=lanes" => Some(ReactPath::Lanes),
        _ => None,
    });
    let steps = args
        .iter()
        .find_map(|a| a.strip_prefix("steps=")?.parse().ok())
        .unwrap_or(5);
    if args.iter().any(|a| a == "paths") || path.is_some() {
        println!("machine: {} threads", rayon::current_num_threads());
        for &n in if sizes.is_empty() { &[64][..] } else { &sizes } {
            match path {
                Some(p) => one_path(p, n, steps),
                None => compare_paths(n),
            }
        }
        return;
    }
    let sizes = if sizes.is_empty() {
        vec![64, 128]
    } else {
        sizes
    };
    println!(
        "machine: {} threads; network: configs/default.toml",
        rayon::current_num_threads()
    );
    let no_sync = |_: &mut dyn Engine| {};
    for &n in &sizes {
        let steps = if n <= 64 { 5 } else { 1 };
        for (what, diffusion) in [("react", false), ("full step", true)] {
            let model = Model::build(&scenario(n, diffusion));
            let mut cpu = CpuEngine::new(&model);
            let (secs, st) = time_steps(&mut cpu, steps, &no_sync);
            report("cpu (f64, rayon)", what, n, steps, secs, st);

            match GpuContext::new(std::env::var("IONFIELD_ADAPTER").ok().as_deref()) {
                Ok(ctx) => {
                    let name = ctx.adapter.info.name.clone();
                    let mut gpu = GpuEngine::new(ctx, &model).expect("gpu engine");
                    // `advance` already waits for the reaction status at its end.
                    let (secs, st) = time_steps(&mut gpu, steps, &no_sync);
                    let label = format!("gpu ({})", name.split(' ').next().unwrap_or(""));
                    report(&label, what, n, steps, secs, st);
                }
                Err(e) => println!("gpu: not measured ({e})"),
            }
        }
    }
}
