//! What each subcommand does: config → scenario → model → engine → schedule → writers.
//! Errors carry their exit code (see `cli::Cli`).

use crate::cli::{Backend, CheckArgs, Cli, Command, RunArgs};
use ionfield::config::{self, Scenario};
use ionfield::cpu::CpuEngine;
use ionfield::gpu::{self, plan::human_bytes, BufferPlan, GpuContext, GpuEngine};
use ionfield::model::Model;
use ionfield::output::viability::ViabilityTracker;
use ionfield::output::{RunInfo, RunWriter};
use ionfield::sim::{self, Engine, OutputSchedule};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A failure and the exit code it maps to.
#[derive(Debug)]
pub struct AppError {
    pub code: u8,
    pub error: anyhow::Error,
}

impl AppError {
    /// Bad input or environment: exit 2.
    fn input(error: impl Into<anyhow::Error>) -> AppError {
        AppError {
            code: 2,
            error: error.into(),
        }
    }
    /// The simulation itself failed: exit 1.
    fn simulation(error: impl Into<anyhow::Error>) -> AppError {
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
        Command::Run(args) => run_scenario(&args),
        Command::Check(args) => check(&args),
        Command::Info => info(),
        Command::List => list(),
        Command::Describe(args) => describe(&args),
    }
}

fn load(config: Option<&Path>, sets: &[String]) -> Result<Scenario, AppError> {
    load_with_origins(config, sets).map(|(scenario, _)| scenario)
}

/// The scenario, and where each of its values came from (file:line or `--set`).
fn load_with_origins(
    config: Option<&Path>,
    sets: &[String],
) -> Result<(Scenario, Vec<config::ResolvedValue>), AppError> {
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
        return config::load_str_with_origins(text, &source, here, sets).map_err(AppError::input);
    }
    match config {
        Some(path) => config::load_file_with_origins(path, sets),
        None => config::load_str_with_origins(
            config::DEFAULT_SCENARIO_TOML,
            config::DEFAULT_SOURCE,
            here,
            sets,
        ),
    }
    .map_err(AppError::input)
}

/// Bytes the CPU backend holds: f64 fields, the mask and Thomas scratch.
fn cpu_required_bytes(scenario: &Scenario) -> u64 {
    let n = scenario.grid.n_voxels() as u64;
    let g = scenario.grid;
    let scratch = 2 * 8 * (g.nx * g.ny.max(g.nz)) as u64 * rayon::current_num_threads() as u64;
    n * (8 * scenario.species.len() as u64 + 4) + scratch
}

enum Chosen {
    Gpu(Box<GpuContext>),
    Cpu,
}

/// `--backend auto`: a hardware GPU; else, for a scenario with reactions, a software Vulkan
/// adapter (lavapipe runs the unrolled reaction kernel 5.7× faster than the CPU tape per
/// full step at 64³, BENCHMARKS.md); else the CPU backend (3–4× faster than lavapipe for
/// diffusion alone).
fn choose_backend(args: &RunArgs, has_reactions: bool) -> Result<Chosen, AppError> {
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

fn run_scenario(args: &RunArgs) -> Result<(), AppError> {
    let started = Instant::now();
    let scenario = load(args.config.as_deref(), &args.sets)?;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out").join(&scenario.name));

    let chosen = choose_backend(args, !scenario.reactions.is_empty())?;
    // Refuse a grid the backend cannot hold before rasterising it (that alone takes
    // minutes and gigabytes for 1024³).
    match &chosen {
        Chosen::Gpu(ctx) => {
            BufferPlan::new(&scenario.grid, scenario.species.len())
                .check_adapter(&ctx.adapter)
                .map_err(|e| {
                    AppError::input(anyhow::anyhow!("{}: grid.shape: {e}", scenario.source))
                })?;
        }
        Chosen::Cpu => {
            let need = cpu_required_bytes(&scenario);
            if let Some(avail) = gpu::plan::host_available_bytes() {
                if need > avail {
                    return Err(AppError::input(anyhow::anyhow!(
                        "{}: grid.shape: the CPU backend needs {} but about {} of memory is available. Fix: use a smaller grid",
                        scenario.source,
                        human_bytes(need),
                        human_bytes(avail)
                    )));
                }
            }
        }
    }
    let model = Model::build(&scenario);
    let mut engine: Box<dyn Engine> = match chosen {
        Chosen::Gpu(ctx) => Box::new(GpuEngine::new(*ctx, &model).map_err(AppError::input)?),
        Chosen::Cpu => Box::new(CpuEngine::new(&model)),
    };
    let engine_info = engine.info();
    eprintln!(
        "ionfield {}: scenario `{}` ({}), backend {} on {}",
        ionfield::VERSION,
        scenario.name,
        scenario.source,
        engine_info.backend,
        engine_info.adapter
    );

    let mut writer = RunWriter::create(
        &out_dir,
        &scenario,
        RunInfo {
            backend: engine_info.backend.clone(),
            adapter: engine_info.adapter.clone(),
            driver: engine_info.driver.clone(),
        },
    )
    .map_err(AppError::input)?;

    if let Some(net) = &model.network {
        writer
            .write_text(
                "react.wgsl",
                "wgsl",
                &ionfield::chem::wgsl::kernel_source(net),
            )
            .map_err(AppError::input)?;
    }
    // One voxel = well-mixed mode: every species to well_mixed.csv, no images.
    let well_mixed = scenario.grid.n_voxels() == 1;
    let mut fields: Vec<usize> = if well_mixed {
        (0..scenario.species.len()).collect()
    } else {
        scenario.output.fields.clone()
    };
    // Derived fields (pH, MRI) need species that may not be written: read those too.
    let derived = ionfield::output::derived::Derived::new(&scenario, &model);
    if !well_mixed {
        fields = derived.species_to_read().to_vec();
    }
    // Viability (a species `viab`): summaries at every stop, at most every 60 s of model
    // time, so the time series and the time of death resolve the killing.
    let viability = scenario
        .species
        .iter()
        .position(|s| s.name == "viab")
        .filter(|_| !well_mixed)
        .map(|v| {
            let names: Vec<String> = scenario.tissues.iter().map(|t| t.name.clone()).collect();
            ViabilityTracker::new(v, &model, &names)
        });
    let summary_interval_s = scenario.time.output_interval_s.min(60.0);
    let n_summaries = (scenario.time.end_s / summary_interval_s).ceil() as u64;
    let schedule = OutputSchedule::new(&scenario.time)
        .with_stops(scenario.doses.iter().map(|d| d.time_s))
        .with_stops(
            (1..n_summaries)
                .map(|k| k as f64 * summary_interval_s)
                .filter(|_| viability.is_some()),
        );
    let total = schedule.n_steps();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] step {pos}/{len} ({per_sec}, eta {eta}) {msg}",
            )
            .expect("static template is valid")
            .progress_chars("=> "),
        );
        bar
    });
    if let Some(spin) = scenario.spin_up {
        eprintln!(
            "spin-up: {} s of baseline (no doses, no outputs) at dt {} s before t = 0",
            spin.duration_s, spin.dt_s
        );
        let names: Vec<String> = scenario.species.iter().map(|s| s.name.clone()).collect();
        let report = sim::spin_up(engine.as_mut(), spin, &names)?;
        // Species no reaction consumes (cumulative counters such as Ox) and `viab` grow or
        // fall by design; the steadiness that matters is that of the others.
        let monotone = |s: usize| {
            scenario.species[s].name == "viab"
                || scenario.reactions.iter().all(|r| {
                    let net: f64 = r
                        .products
                        .iter()
                        .filter(|p| p.0 == s)
                        .map(|p| p.1)
                        .sum::<f64>()
                        - r.reactants
                            .iter()
                            .filter(|p| p.0 == s)
                            .map(|p| p.1)
                            .sum::<f64>();
                    net >= 0.0
                })
        };
        let worst = report
            .relative_drift_per_h
            .iter()
            .enumerate()
            .filter(|(s, _)| !monotone(*s))
            .map(|(_, d)| d)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .cloned()
            .unwrap_or_default();
        eprintln!(
            "spin-up done: largest remaining drift {} at {:.2e} of its range per hour (cumulative species and viab excluded; all in manifest.json)",
            worst.0, worst.1
        );
        writer.set_spin_up(report);
    }
    let mut viability = viability;
    let loop_started = Instant::now();
    let result = sim::run(
        engine.as_mut(),
        &schedule,
        &model.doses,
        |engine, stop| -> Result<(), AppError> {
            let sim::Stop {
                time_s,
                step,
                output,
            } = stop;
            // One readback per stop: the written fields at outputs (viab among them when
            // it is written), viab alone at summary-only stops.
            let read = if output { fields.as_slice() } else { &[] };
            let data = engine.read_fields(read)?;
            if let Some(v) = &mut viability {
                let viab = match read.iter().position(|&s| s == v.species) {
                    Some(i) => data[i].clone(),
                    None => engine.read_fields(&[v.species])?.remove(0),
                };
                v.record(time_s, &viab);
                writer
                    .write_text("viability.csv", "csv", &v.csv())
                    .map_err(AppError::input)?;
            }
            if !output {
                return Ok(());
            }
            let fields = data;
            if well_mixed {
                let values: Vec<f64> = fields.iter().map(|f| f[0] as f64).collect();
                writer.write_well_mixed(time_s, step, &values)
            } else {
                writer.write_output(time_s, step, &derived.assemble(fields))
            }
            .map_err(AppError::input)?;
            let msg = format!("output t = {time_s} s written");
            match &bar {
                Some(b) => b.set_message(msg),
                None => log::info!(
                    "step {step}/{total}: {msg} ({:.1} s wall)",
                    loop_started.elapsed().as_secs_f64()
                ),
            }
            Ok(())
        },
        |done, _| {
            if let Some(b) = &bar {
                b.set_position(done);
            }
        },
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let wall_s = started.elapsed().as_secs_f64();
    if let Err(e) = result {
        let _ = writer.write_manifest("failed", wall_s);
        eprintln!(
            "the run stopped; {} finished output file(s) are in {}",
            writer.files_written(),
            writer.out_dir().display()
        );
        return Err(e);
    }
    if let Some(v) = &viability {
        writer
            .write_time_of_death(&v.time_of_death_s)
            .map_err(AppError::input)?;
        for line in v.final_summary() {
            eprintln!("{line}");
        }
    }
    if let Some(st) = engine.reaction_stats() {
        eprintln!(
            "reactions: {} calls, {:.2} sub-steps per voxel and call on average, at most {} in one voxel",
            st.calls,
            st.substeps as f64 / (st.calls.max(1) as f64 * scenario.grid.n_voxels() as f64),
            st.max_substeps
        );
    }
    let manifest = writer
        .write_manifest("complete", wall_s)
        .map_err(AppError::simulation)?;
    let loop_s = loop_started.elapsed().as_secs_f64();
    let svu = total as f64
        * scenario.grid.n_voxels() as f64
        * scenario.species.iter().filter(|s| s.diffuses()).count() as f64;
    eprintln!(
        "done: {total} steps in {loop_s:.1} s ({:.1} M species-voxel updates/s incl. output), {} files in {}\nmanifest: {}",
        svu / loop_s / 1e6,
        writer.files_written(),
        writer.out_dir().display(),
        manifest.display()
    );
    Ok(())
}

fn check(args: &CheckArgs) -> Result<(), AppError> {
    let (scenario, origins) = load_with_origins(args.config.as_deref(), &args.sets)?;
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
