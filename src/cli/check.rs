//! `ionfield check`: the resolved scenario, step count, memory estimate, chemistry summary
//! and where every value came from.

use super::args::CheckArgs;
use super::common::{load_resolved, AppError};
use crate::config::duration::human;
use crate::config::{self, Resolved, Scenario};
use crate::gpu::{plan::human_bytes, BufferPlan};
use crate::output::estimate::{self, Estimate, WALL_UNCERTAINTY};

pub fn check(args: &CheckArgs) -> Result<(), AppError> {
    let Resolved {
        mut scenario,
        origins,
        toml,
        ..
    } = load_resolved(args.config.as_deref(), &args.sets, true)?;
    let estimate = estimate::estimate(&scenario, &toml);
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
    print_vessels(&scenario);
    print_time(&scenario, &estimate);
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
        match scenario.time.scheme {
            crate::config::Scheme::Split => println!(
                "integrator: ROS2 (Rosenbrock, order 2, L-stable), rtol {}, atol {:?} mM, at most {} sub-steps per voxel and call; Strang splitting react(dt/2) → diffuse(dt) → react(dt/2)",
                scenario.chemistry.rtol,
                net.atol_mm,
                scenario.chemistry.max_substeps
            ),
            crate::config::Scheme::Coupled { rtol, .. } => println!(
                "integrator: ROS2 (Rosenbrock, order 2, L-stable) over reaction and diffusion together (time.scheme = \"coupled\"), relative tolerance {rtol} per step (10× during the spin-up), atol {:?} mM",
                net.atol_mm
            ),
        }
    }
    println!(
        "memory: GPU {} ({} per species buffer), CPU backend {}",
        human_bytes(plan.required_bytes()),
        human_bytes(plan.field_bytes),
        human_bytes(crate::cpu::required_bytes(&scenario))
    );
    print_outputs(&estimate);
    println!("resolved scenario (JSON):");
    println!("{}", scenario_json(&mut scenario));
    print_origins(&scenario, &origins);
    Ok(())
}

/// Grids up to this many voxels are rasterised by `check` to report their vessels (a
/// 256³ model builds in seconds; 1024³ would take minutes and gigabytes).
const CHECK_RASTER_VOXELS: usize = 1 << 24;

/// The fraction of voxels inside vessels, and the model's warnings (a grid too coarse
/// for its capillaries), as `run` logs them before it starts.
fn print_vessels(scenario: &crate::config::Scenario) {
    if scenario.grid.n_voxels() > CHECK_RASTER_VOXELS {
        println!(
            "vessels: not rasterised here above 256³ voxels (`run` reports them before it starts)"
        );
        return;
    }
    let model = crate::model::Model::build(scenario);
    println!(
        "vessels: {:.1} % of the voxels",
        100.0 * model.vessel_fraction()
    );
    for w in model.warnings() {
        println!("warning: {w}");
    }
}

/// Vessels listed in full by `check`'s JSON; a longer list (a network file may hold up to
/// a million segments, 600 MB of JSON) shows its first ones and a count of the rest.
const SHOWN_VESSELS: usize = 20;

/// The resolved scenario as pretty JSON, the vessel list cut after [`SHOWN_VESSELS`]
/// (serialised without the rest, which `scenario` gets back).
fn scenario_json(scenario: &mut crate::config::Scenario) -> String {
    let total = scenario.vessels.len();
    let rest = scenario.vessels.split_off(total.min(SHOWN_VESSELS));
    let mut value = serde_json::to_value(&*scenario).expect("a Scenario always serialises");
    scenario.vessels.extend(rest);
    if total > SHOWN_VESSELS {
        if let Some(vessels) = value["vessels"].as_array_mut() {
            vessels.push(
                format!(
                    "… and {} more vessels ({total} in all; the network's summary is above)",
                    total - SHOWN_VESSELS
                )
                .into(),
            );
        }
    }
    serde_json::to_string_pretty(&value).expect("JSON values serialise")
}

/// The time lines: dt, end, outputs; the steps of the run and of the spin-up; the
/// estimated wall time per backend.
fn print_time(scenario: &Scenario, e: &Estimate) {
    let t = &scenario.time;
    let both = |s: f64| {
        let h = human(s);
        if h == format!("{s} s") {
            h
        } else {
            format!("{s} s ({h})")
        }
    };
    println!(
        "time: dt {}, end {}, outputs every {} → {} output times",
        both(t.dt_s),
        both(t.end_s),
        both(t.output_interval_s),
        e.output_times
    );
    let summaries = e
        .summary_interval_s
        .map(|s| format!(", summaries every {}", both(s)))
        .unwrap_or_default();
    let about = if e.adaptive { "about " } else { "" };
    println!(
        "steps: {about}{} steps after t = 0, {} stops (output, dose and summary times{summaries})",
        e.steps, e.stops
    );
    if e.adaptive {
        println!(
            "  (time.scheme = \"coupled\": the integrator chooses its steps by error control, from {} s; the counts are estimated from the steps fe_fenton_cdt took after its dose, scaled by the tolerance)",
            t.dt_s
        );
    }
    if let Some(spin) = scenario.spin_up {
        let of = if e.adaptive {
            String::new()
        } else {
            format!(" of {}", both(spin.dt_s))
        };
        let settle = spin.settle_per_h.map_or(String::new(), |tol| {
            format!(", at most: it ends once every settling field drifts by less than {tol:e} of its range per hour, checked every {}", both(spin.window_s()))
        });
        println!(
            "spin-up: {about}{} steps{of} before t = 0 ({} of baseline{settle}); {about}{} steps in all",
            e.spin_up_steps,
            both(spin.duration_s),
            e.spin_up_steps + e.steps
        );
    }
    println!(
        "wall time, an estimate on this kind of machine (2 x86_64 cores, release build; per-voxel-per-species step costs measured in BENCHMARKS.md; can be {WALL_UNCERTAINTY}× off either way, more on tiny grids):"
    );
    let about = |s: f64| {
        if s < 1.0 {
            "under 1 s".to_string()
        } else {
            format!("about {}", human(s))
        }
    };
    for (cost, spin_s, run_s) in &e.wall {
        let spin = if e.spin_up_steps > 0 {
            format!(" (spin-up {}, run {})", human(*spin_s), human(*run_s))
        } else {
            String::new()
        };
        println!(
            "  {} backend ({}): {}{spin}",
            cost.backend,
            cost.on,
            about(spin_s + run_s)
        );
    }
    if e.adaptive {
        println!("  gpu backend: runs time.scheme = \"coupled\" with --backend gpu (not estimated here: its cost is not yet measured on a hardware GPU); --backend auto runs it on the CPU");
        println!("  (the coupled scheme's cost per step measured on the 24 h benchmark at 64³, BENCHMARKS.md; 0.95–1.4× of three other measured runs)");
    } else {
        println!("  (a hardware GPU has not been measured; docs/performance.md §7 estimates it 100–1000× faster than lavapipe)");
    }
}

/// The files the run will write, by kind, their total and the warnings.
fn print_outputs(e: &Estimate) {
    println!(
        "output: {} files, about {} (estimated from the output spec; sizes of compressed PNGs and text ±30 %)",
        e.files(),
        estimate::human_bytes(e.bytes())
    );
    let width = e
        .groups
        .iter()
        .map(|g| g.what.chars().count())
        .max()
        .unwrap_or(0);
    for g in &e.groups {
        println!(
            "  {:<width$}  {:>7} file{} {}{}",
            g.what,
            g.files,
            if g.files == 1 { " " } else { "s" },
            if g.exact { "" } else { "≈ " },
            estimate::human_bytes(g.bytes)
        );
    }
    for w in e.warnings() {
        println!("warning: {w}");
    }
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
