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

use ionfield::config;
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

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
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
