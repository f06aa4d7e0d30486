//! `ionfield check`: the resolved scenario, step count, memory estimate, chemistry summary
//! and where every value came from.

use super::args::CheckArgs;
use super::common::{load_resolved, AppError};
use ionfield::config::{self, Resolved, Scenario};
use ionfield::gpu::{plan::human_bytes, BufferPlan};
use ionfield::sim::OutputSchedule;

pub fn check(args: &CheckArgs) -> Result<(), AppError> {
    let Resolved {
        scenario, origins, ..
    } = load_resolved(args.config.as_deref(), &args.sets, true)?;
    let schedule = OutputSchedule::new(&scenario.time);
    let plan = BufferPlan::new(&scenario.grid, scenario.species.len());
    let g = scenario.grid;
    println!("scenario: {} ({})", scenario.name, scenario.source);
    if !scenario.description.is_empty() {
        println!("  {}", scenario.description);
    }
    println!(
        "grid: {} × {} × {} voxels of {} µm = {} voxels, domain {:.0} × {:.0} × {:.0} µm",
        g.nx,
        g.ny,
        g.nz,
        g.voxel_um,
        g.n_voxels(),
        g.extent_um().x,
        g.extent_um().y,
        g.extent_um().z
    );
    println!(
        "time: dt {} s, end {} s, outputs every {} s → {} steps, {} output times",
        scenario.time.dt_s,
        scenario.time.end_s,
        scenario.time.output_interval_s,
        schedule.n_steps(),
        schedule.times_s.len()
    );
    let dx2 = g.voxel_um * g.voxel_um;
    for s in &scenario.species {
        let r = s.diffusion_um2_per_s * scenario.time.dt_s / dx2;
        println!(
            "species {}: D {} µm²/s (r = D·dt/dx² = {:.3}, {:.0}× the explicit limit), decay by tissue {:?} 1/s",
            s.name,
            s.diffusion_um2_per_s,
            r,
            r * 6.0,
            s.decay_per_s_by_tissue
        );
    }
    if let Some(net) = &scenario.vessel_network {
        println!(
            "vessel network: {}{}{}, {} segments, total length {:.0} µm, length density {:.2} mm/mm³, exchanged species {}",
            net.kind,
            net.seed.map(|s| format!(" (seed {s})")).unwrap_or_default(),
            net.file.as_ref().map(|f| format!(" from {f}")).unwrap_or_default(),
            net.n_segments,
            net.total_length_um,
            net.length_density_mm_per_mm3,
            net.exchange.len()
        );
    }
    if let Some(net) = scenario.network.as_deref() {
        // Validation compiled it.
        let or_none = |s: String| if s.is_empty() { "none".to_string() } else { s };
        println!(
            "chemistry: {} reactions, {} parameters; integrated: {}; read only: {}; quasi-steady: {}",
            scenario.reactions.len(),
            scenario.parameters.len(),
            net.names(net.state.iter().copied()),
            net.names(net.inputs.iter().copied()),
            net.names(net.qss.iter().map(|&(q, _)| q)),
        );
        println!(
            "conserved totals (kept to rounding by the integrator): {}",
            or_none(net.describe_laws().join("; "))
        );
        println!(
            "integrator: ROS2 (Rosenbrock, order 2, L-stable), rtol {}, atol {:?} mM, at most {} sub-steps per voxel and call; Strang splitting react(dt/2) → diffuse(dt) → react(dt/2)",
            scenario.chemistry.rtol,
            net.atol_mm,
            scenario.chemistry.max_substeps
        );
    }
    println!(
        "memory: GPU {} ({} per species buffer), CPU backend {}",
        human_bytes(plan.required_bytes()),
        human_bytes(plan.field_bytes),
        human_bytes(ionfield::cpu::required_bytes(&scenario))
    );
    println!("resolved scenario (JSON):");
    println!(
        "{}",
        serde_json::to_string_pretty(&scenario).expect("a Scenario always serialises")
    );
    print_origins(&scenario, &origins);
    Ok(())
}

/// `check`'s list of every value the files and `--set` wrote, one line each:
/// `path = value   file:line` (values over 80 characters cut with …).
fn print_origins(scenario: &Scenario, origins: &[config::ResolvedValue]) {
    println!(
        "resolved values ({}), with where each came from:",
        origins.len()
    );
    if scenario.source == config::DEFAULT_SOURCE {
        println!(
            "  ({} is {})",
            config::DEFAULT_SOURCE,
            config::catalog::DEFAULT_PATH
        );
    }
    let lines: Vec<(String, String)> = origins
        .iter()
        .map(|r| {
            (
                format!("{} = {}", r.path, r.value_abbreviated(80)),
                r.origin.to_string(),
            )
        })
        .collect();
    // The origins in one column, unless a few long values would push it far right.
    let width = lines
        .iter()
        .map(|(v, _)| v.chars().count())
        .filter(|&n| n <= 72)
        .max()
        .unwrap_or(0);
    for (value, origin) in &lines {
        println!("  {value:<width$}   {origin}");
    }
    println!("  (keys not listed take their defaults; the JSON above has every value)");
}
