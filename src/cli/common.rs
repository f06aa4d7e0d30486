//! What the subcommands share: the error with its exit code, loading a scenario (file,
//! preset name or the built-in default) and choosing the backend.

use super::args::{Backend, RunArgs};
use crate::config::{self, Resolved, Scenario};
use crate::engine;
use crate::gpu::{self, GpuContext};
use crate::sim;
use std::path::Path;

/// Exit code after SIGINT/SIGTERM (128 + SIGINT, the shell convention).
pub const EXIT_INTERRUPTED: u8 = 130;

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

impl From<engine::Error> for AppError {
    /// A numerical failure of the reaction step (NaN, Inf, negative, no convergence) exits
    /// with 3; other engine failures with 1.
    fn from(e: engine::Error) -> AppError {
        match e {
            engine::Error::Reaction { .. } => AppError {
                code: 3,
                error: e.into(),
            },
            e => AppError::simulation(e),
        }
    }
}

impl From<sim::simulation::Error> for AppError {
    /// Engine failures as above; a writer that cannot write exits with 2 (environment),
    /// other callback failures with 1; a checkpoint that does not fit with 2.
    fn from(e: sim::simulation::Error) -> AppError {
        use sim::simulation::Error;
        match e {
            Error::Engine(e) => e.into(),
            Error::Callback(c) if c.environment => AppError::input(c),
            Error::Callback(c) => AppError::simulation(c),
            e @ Error::Restore(_) => AppError::input(e),
            e @ Error::SpinUpStopped { .. } => AppError {
                code: EXIT_INTERRUPTED,
                error: e.into(),
            },
        }
    }
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
    if let Some(e) = config.and_then(config::catalog::unknown_preset) {
        return Err(AppError::input(e));
    }
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

pub enum Chosen {
    Gpu(Box<GpuContext>),
    Cpu,
}

/// `--backend auto`: a hardware GPU; else the native CPU backend. With the batched CPU
/// integrator the CPU backend runs the default scenario (64³, reactions and diffusion)
/// 2.7× faster than lavapipe on the project's 2-core machine (BENCHMARKS.md), and it was
/// already 3–4× faster for diffusion alone.
pub fn choose_backend(args: &RunArgs, coupled: bool) -> Result<Chosen, AppError> {
    let filter = args
        .adapter
        .clone()
        .or_else(|| std::env::var("IONFIELD_ADAPTER").ok());
    // The coupled scheme's device twin (`gpu::coupled`) has not been timed on a hardware
    // GPU, and lacks the CPU's coupled multigrid: auto keeps the CPU, --backend gpu runs it.
    if coupled && args.backend == Backend::Auto {
        log::info!("--backend auto: time.scheme = \"coupled\" runs on the CPU backend (its GPU twin is not yet measured on a hardware GPU; --backend gpu runs it)");
        return Ok(Chosen::Cpu);
    }
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

/// `load_resolved` without origins: the scenario alone.
pub fn load(config: Option<&Path>, sets: &[String]) -> Result<Scenario, AppError> {
    load_resolved(config, sets, false).map(|r| r.scenario)
}

/// A preset of the built-in catalogue, validated.
pub fn load_catalogue(path: &str) -> Result<Scenario, AppError> {
    config::load_str(
        config::catalog::file(path).unwrap_or_default(),
        &config::catalog::source_name(path),
        &[],
    )
    .map_err(AppError::input)
}
