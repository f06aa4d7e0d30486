//! `ionfield._native`: the Rust half of the Python package. It runs the command line's
//! `run` and `resume` in this process (the same code as the `ionfield` binary, with the
//! progress lines handed to a Python callable and signal handlers that leave the
//! interpreter alive), and rebuilds a run's tissue and vessel masks from its resolved
//! scenario. Reading a run folder into xarray is Python (`ionfield/_dataset.py`).

use std::path::PathBuf;

use clap::Parser;
use ionfield::cli::args::{Cli, Command};
use ionfield::cli::run::{resume_with, run_with, Hooks};
use ionfield::model::{Model, TISSUE_ID_MASK};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

pyo3::create_exception!(
    _native,
    IonfieldError,
    PyRuntimeError,
    "An ionfield command failed: args are (message, exit code of the command line: 2 bad input, 1 the simulation failed, 130 interrupted)."
);

/// Runs the command line `argv` (`["ionfield", "run", …]`) in this process. `progress`,
/// if given, is called with each progress line (str) instead of the terminal's bar.
/// Raises `IonfieldError(message, exit_code)` where the binary would exit non-zero.
#[pyfunction]
#[pyo3(signature = (argv, progress=None))]
fn run_cli(py: Python<'_>, argv: Vec<String>, progress: Option<Py<PyAny>>) -> PyResult<()> {
    let parsed = Cli::try_parse_from(&argv)
        .map_err(|e| IonfieldError::new_err((e.render().to_string(), 2u8)))?;
    let result = py.detach(move || {
        let hooks = Hooks {
            progress: progress.map(progress_sink),
            embedded: true,
            command_line: Some(argv),
        };
        match parsed.command {
            Command::Run(args) => run_with(&args, hooks),
            Command::Resume(args) => resume_with(&args, hooks),
            command => ionfield::cli::dispatch(Cli { command }),
        }
    });
    result.map_err(|e| IonfieldError::new_err((format!("{:#}", e.error), e.code)))
}

/// A progress sink that calls the Python callable `callback(line)`; an exception it
/// raises is printed and the run goes on.
fn progress_sink(callback: Py<PyAny>) -> ionfield::sim::control::ProgressSink {
    Box::new(move |line: &str| {
        Python::attach(|py| {
            if let Err(e) = callback.call1(py, (line,)) {
                e.print(py);
            }
        })
    })
}

/// The masks of the run in `run_dir`, rebuilt from its `config.resolved.toml` by the
/// model code the run used: a dict with `shape` (nz, ny, nx), `tissue` (bytes, u8 tissue
/// index per voxel, x fastest), `vessels` (bytes, u8, 1 inside a vessel) and `tissues`
/// (the tissue names in index order). Relative input files are looked up from `base_dir`.
#[pyfunction]
#[pyo3(signature = (run_dir, base_dir=None))]
fn masks<'py>(
    py: Python<'py>,
    run_dir: PathBuf,
    base_dir: Option<PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let path = run_dir.join("config.resolved.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        IonfieldError::new_err((
            format!(
                "{}: cannot read the run's resolved scenario ({e}). Fix: give a run folder written by ionfield",
                path.display()
            ),
            2u8,
        ))
    })?;
    let base = base_dir.unwrap_or_else(|| PathBuf::from("."));
    let resolved =
        ionfield::config::load_resolved(&text, &path.display().to_string(), &base, &[], false)
            .map_err(|e| IonfieldError::new_err((format!("{e:#}"), 2u8)))?;
    let scenario = resolved.scenario;
    let (tissue, vessels) = py.detach(|| {
        let model = Model::build(&scenario);
        let tissue: Vec<u8> = model
            .mask
            .iter()
            .map(|m| (m & TISSUE_ID_MASK) as u8)
            .collect();
        let vessels: Vec<u8> = model.vessel.iter().map(|&v| u8::from(v)).collect();
        (tissue, vessels)
    });
    let g = &scenario.grid;
    let d = PyDict::new(py);
    d.set_item("shape", (g.nz, g.ny, g.nx))?;
    d.set_item("tissue", PyBytes::new(py, &tissue))?;
    d.set_item("vessels", PyBytes::new(py, &vessels))?;
    let names: Vec<&str> = scenario.tissues.iter().map(|t| t.name.as_str()).collect();
    d.set_item("tissues", names)?;
    Ok(d)
}

/// The name of the scenario `config` (a preset name, a file, or None for the default) with
/// the `--set` overrides `sets`: the command line's default run folder is `out/<name>`.
#[pyfunction]
#[pyo3(signature = (config, sets))]
fn scenario_name(config: Option<PathBuf>, sets: Vec<String>) -> PyResult<String> {
    ionfield::cli::load_resolved(config.as_deref(), &sets, false)
        .map(|r| r.scenario.name)
        .map_err(|e| IonfieldError::new_err((format!("{:#}", e.error), e.code)))
}

/// The built-in therapy presets: list of (name, description).
#[pyfunction]
fn presets() -> PyResult<Vec<(String, String)>> {
    use ionfield::config::catalog;
    catalog::presets()
        .map(|(name, path)| {
            let text = catalog::file(path).unwrap_or_default();
            let source = catalog::source_name(path);
            let resolved = ionfield::config::load_resolved(
                text,
                &source,
                std::path::Path::new("."),
                &[],
                false,
            )
            .map_err(|e| IonfieldError::new_err((format!("{e:#}"), 2u8)))?;
            Ok((name.to_string(), resolved.scenario.description))
        })
        .collect()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // The library logs warnings (a spin-up that did not settle, a large run) and, without a
    // progress callback, the progress lines: to stderr as the binary does.
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp(None)
        .write_style(env_logger::WriteStyle::Never) // notebooks show captured stderr as text
        .try_init();
    m.add("IonfieldError", m.py().get_type::<IonfieldError>())?;
    m.add("__version__", ionfield::VERSION)?;
    m.add("GIT_COMMIT", ionfield::GIT_COMMIT)?;
    m.add_function(wrap_pyfunction!(run_cli, m)?)?;
    m.add_function(wrap_pyfunction!(masks, m)?)?;
    m.add_function(wrap_pyfunction!(presets, m)?)?;
    m.add_function(wrap_pyfunction!(scenario_name, m)?)?;
    Ok(())
}
