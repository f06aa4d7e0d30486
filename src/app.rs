//! What each subcommand does: config → scenario → model → engine → schedule → writers.
//! Errors carry their exit code (see `cli::Cli`).

use crate::cli::{Backend, CheckArgs, Cli, Command, RunArgs};
use ionfield::config::{self, Resolved, Scenario};
use ionfield::gpu::{self, plan::human_bytes, BufferPlan, GpuContext};
use ionfield::sim::{self, OutputSchedule};
use std::path::Path;

/// A failure and the exit code it maps to.
#[derive(Debug)]
pub struct AppError {
    pub code: u8,
    pub error: anyhow::Error,
}

impl AppError {
    /// Bad input or environment: exit 2.
    pub fn input(error: impl Into<anyhow::Error>) -> AppError {
        AppError {
            code: 2,
            error: error.into(),
        }
    }
    /// The simulation itself failed: exit 1.
    pub fn simulation(error: impl Into<anyhow::Error>) -> AppError {
        AppError {
            code: 1,
            error: error.into(),
        }
    }
}

impl From<sim::Error> for AppError {
    /// A numerical failure of the reaction step (NaN, Inf, negative, no convergence) exits
    /// with 3; other engine failures with 1.
    fn from(e: sim::Error) -> AppError {
        match e {
            sim::Error::Reaction { .. } => AppError {
                code: 3,
                error: e.into(),
            },
            e => AppError::simulation(e),
        }
    }
}

pub fn run(cli: Cli) -> Result<(), AppError> {
    match cli.command {
        Command::Run(args) => crate::run::run(&args),
        Command::Resume(args) => crate::run::resume(&args),
        Command::Check(args) => check(&args),
        Command::Info => info(),
        Command::List => list(),
        Command::Describe(args) => describe(&args),
        Command::Sweep(args) => crate::sweep_cmd::sweep(&args),
        Command::Gather(args) => crate::sweep_cmd::gather(&args),
    }
}

fn load(config: Option<&Path>, sets: &[String]) -> Result<Scenario, AppError> {
    load_resolved(config, sets, false).map(|r| r.scenario)
}

/// A scenario file, a preset name, or (no CONFIG) the built-in default, with `--set`s
/// applied; keeps the resolved TOML for the run folder and for resume, and where each
/// value came from (file:line or `--set`) when `with_origins`.
pub fn load_resolved(
    config: Option<&Path>,
    sets: &[String],
    with_origins: bool,
) -> Result<Resolved, AppError> {
    // A preset name (`ionfield run cao2_calcium_overload`) when no such file exists.
    let preset = config
        .filter(|p| !p.exists())
        .and_then(|p| p.to_str())
        .and_then(|name| {
            let path = format!("configs/therapies/{name}.toml");
            config::catalog::file(&path).map(|text| (path, text))
        });
    let here = Path::new(".");
    if let Some((path, text)) = preset {
        let source = config::catalog::source_name(&path);
        return config::load_resolved(text, &source, here, sets, with_origins)
            .map_err(AppError::input);
    }
    match config {
        Some(path) => config::load_file_resolved(path, sets, with_origins),
        None => config::load_resolved(
            config::DEFAULT_SCENARIO_TOML,
            config::DEFAULT_SOURCE,
            here,
            sets,
            with_origins,
        ),
    }
    .map_err(AppError::input)
}

/// Bytes the CPU backend holds: f64 fields, the mask and Thomas scratch.
pub fn cpu_required_bytes(scenario: &Scenario) -> u64 {
    let n = scenario.grid.n_voxels() as u64;
    let g = scenario.grid;
    let scratch = 2 * 8 * (g.nx * g.ny.max(g.nz)) as u64 * rayon::current_num_threads() as u64;
    n * (8 * scenario.species.len() as u64 + 4) + scratch
}

pub enum Chosen {
    Gpu(Box<GpuContext>),
    Cpu,
}

/// `--backend auto`: a hardware GPU; else, for a scenario with reactions, a software Vulkan
/// adapter (lavapipe runs the unrolled reaction kernel 5.7× faster than the CPU tape per
/// full step at 64³, BENCHMARKS.md); else the CPU backend (3–4× faster than lavapipe for
/// diffusion alone).
pub fn choose_backend(args: &RunArgs, has_reactions: bool) -> Result<Chosen, AppError> {
    let filter = args
        .adapter
        .clone()
        .or_else(|| std::env::var("IONFIELD_ADAPTER").ok());
    match args.backend {
        Backend::Cpu => Ok(Chosen::Cpu),
        Backend::Gpu => GpuContext::new(filter.as_deref())
            .map(|c| Chosen::Gpu(Box::new(c)))
            .map_err(AppError::input),
        Backend::Auto => {
            let adapters = gpu::context::list_adapters();
            let hardware = adapters.iter().find(|a| {
                a.is_hardware()
                    && filter
                        .as_deref()
                        .is_none_or(|f| a.info.name.to_lowercase().contains(&f.to_lowercase()))
            });
            match hardware {
                Some(a) => {
                    log::info!("--backend auto: hardware GPU {}", a.describe());
                    GpuContext::new(Some(&a.info.name))
                        .map(|c| Chosen::Gpu(Box::new(c)))
                        .map_err(AppError::input)
                }
                None if has_reactions && !adapters.is_empty() => {
                    log::info!(
                        "--backend auto: no hardware GPU; the scenario has reactions, which run faster on software Vulkan ({}) than on the CPU backend (use --backend cpu to force it)",
                        adapters[0].info.name
                    );
                    GpuContext::new(filter.as_deref())
                        .map(|c| Chosen::Gpu(Box::new(c)))
                        .map_err(AppError::input)
                }
                None => {
                    log::info!(
                        "--backend auto: no hardware GPU ({} software adapter(s)); using the native CPU backend, faster than software Vulkan (use --backend gpu to force wgpu)",
                        adapters.len()
                    );
                    Ok(Chosen::Cpu)
                }
            }
        }
    }
}

fn check(args: &CheckArgs) -> Result<(), AppError> {
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
    if !scenario.reactions.is_empty() {
        // Validation compiled it already; this cannot fail for an accepted scenario.
        let net = ionfield::chem::Network::compile(&scenario).map_err(|e| {
            AppError::input(anyhow::anyhow!(
                "{}: {}: {}",
                scenario.source,
                e.field,
                e.problem
            ))
        })?;
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
        human_bytes(cpu_required_bytes(&scenario))
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

/// A preset of the built-in catalogue, validated.
fn load_catalogue(path: &str) -> Result<Scenario, AppError> {
    config::load_str(
        config::catalog::file(path).unwrap_or_default(),
        &config::catalog::source_name(path),
        &[],
    )
    .map_err(AppError::input)
}

fn list() -> Result<(), AppError> {
    println!("built-in therapy presets (run one with `ionfield run NAME` or `ionfield run configs/therapies/NAME.toml`):");
    for (name, path) in config::catalog::presets() {
        let scenario = load_catalogue(path)?;
        let default = if path == config::catalog::DEFAULT_PATH {
            " (default)"
        } else {
            ""
        };
        println!("  {name:<24} {}{default}", scenario.description);
    }
    Ok(())
}

fn describe(args: &crate::cli::DescribeArgs) -> Result<(), AppError> {
    if args.all {
        println!("{}", ionfield::output::describe::HEADER);
        for (_, path) in config::catalog::presets() {
            let scenario = load_catalogue(path)?;
            print!("{}", ionfield::output::describe::markdown(&scenario, path));
        }
        return Ok(());
    }
    let scenario = load(args.config.as_deref(), &[])?;
    let shown = args
        .config
        .as_deref()
        .map_or(config::catalog::DEFAULT_PATH.to_string(), |p| {
            p.display().to_string()
        });
    print!(
        "{}",
        ionfield::output::describe::markdown(&scenario, &shown)
    );
    Ok(())
}

fn info() -> Result<(), AppError> {
    let adapters = gpu::context::list_adapters();
    if adapters.is_empty() {
        println!(
            "no GPU adapter found. Fix: {}. The CPU backend (--backend cpu) needs none.",
            gpu::INSTALL_LAVAPIPE
        );
    }
    for a in &adapters {
        let l = &a.limits;
        println!("{}", a.describe());
        println!(
            "  max storage binding {} | max buffer {} | storage buffers/stage {} | workgroup invocations {} | workgroup storage {} | workgroups/dim {}",
            human_bytes(l.max_storage_buffer_binding_size),
            human_bytes(l.max_buffer_size),
            l.max_storage_buffers_per_shader_stage,
            l.max_compute_invocations_per_workgroup,
            human_bytes(l.max_compute_workgroup_storage_size as u64),
            l.max_compute_workgroups_per_dimension
        );
    }
    println!(
        "--backend auto would use: {}",
        match adapters.iter().find(|a| a.is_hardware()) {
            Some(a) => format!("gpu on {}", a.info.name),
            None => match adapters.first() {
                Some(a) => format!(
                    "gpu on {} for scenarios with reactions, cpu ({} threads) for diffusion only",
                    a.info.name,
                    rayon::current_num_threads()
                ),
                None => format!("cpu ({} threads)", rayon::current_num_threads()),
            },
        }
    );
    Ok(())
}
