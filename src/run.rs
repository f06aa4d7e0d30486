//! `ionfield run` and `ionfield resume`: a validated scenario → engine → time loop →
//! writers, with checkpoints, SIGINT/SIGTERM handling and bit-identical resume.
//!
//! A run folder holds `config.resolved.toml` (the merged scenario) from the start; a
//! checkpoint (`checkpoint/state.ifck`) holds the engine state, the loop position and the
//! state of every writer. `resume` loads both, rebuilds the same model on the same backend
//! and adapter, and continues the loop where it stopped. Checkpoints and interrupts happen
//! only at batch boundaries (`sim::STEPS_PER_BATCH`), where the splitting closes, so the
//! continued run computes exactly what the uninterrupted run would.

use crate::app::{choose_backend, cpu_required_bytes, load_resolved, AppError, Chosen};
use crate::cli::{CheckpointArgs, ResumeArgs, RunArgs};
use ionfield::config::{self, Resolved, Scenario, TimeseriesField};
use ionfield::cpu::CpuEngine;
use ionfield::gpu::{self, plan::human_bytes, BufferPlan, GpuContext, GpuEngine};
use ionfield::model::{DoseField, Model};
use ionfield::output::checkpoint::{self, Checkpoint};
use ionfield::output::derived::{ph_field, Derived};
use ionfield::output::manifest::sha256_hex;
use ionfield::output::timeseries::{Row, TimeSeries};
use ionfield::output::viability::{ViabilityState, ViabilityTracker};
use ionfield::output::{RunInfo, RunWriter, WriterState};
use ionfield::sim::{self, Engine, Flow, Hooks, Outcome, OutputSchedule, Position, Stop};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The resolved scenario, relative to the output folder.
const RESOLVED_CONFIG: &str = "config.resolved.toml";
/// Blob name of the per-voxel time of death in checkpoints.
const TIME_OF_DEATH_BLOB: &str = "time_of_death_s";
/// Exit code after SIGINT/SIGTERM (128 + SIGINT, the shell convention).
const EXIT_INTERRUPTED: u8 = 130;

/// The caller's part of a checkpoint: everything written or tracked so far.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunState {
    writer: WriterState,
    viability: Option<ViabilityState>,
    timeseries: Vec<Row>,
    next_checkpoint_s: Option<f64>,
}

/// `ionfield run`.
pub fn run(args: &RunArgs) -> Result<(), AppError> {
    let started = Instant::now();
    let resolved = load_resolved(args.config.as_deref(), &args.sets, false)?;
    let scenario = &resolved.scenario;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out").join(&scenario.name));
    check_checkpoint_args(&args.checkpoints, scenario)?;

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
            let need = cpu_required_bytes(scenario);
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
    let model = Model::build(scenario);
    let (mut engine, adapter_name) = build_engine(chosen, &model)?;
    let mut session = Session::new(
        resolved.clone(),
        &model,
        engine.as_ref(),
        &out_dir,
        adapter_name,
        &args.checkpoints,
    )?;
    let w = &mut session.writer;
    w.provenance.command_lines.push(std::env::args().collect());
    w.provenance.hosts.push(host_name());
    w.provenance.resolved_config = RESOLVED_CONFIG.into();
    if let Some(seed) = scenario.vessel_network.as_ref().and_then(|n| n.seed) {
        w.provenance.seeds.insert("vessel_network".into(), seed);
    }
    let text = resolved_config_text(&resolved);
    session.config_sha256 = sha256_hex(text.as_bytes());
    w.write_text(RESOLVED_CONFIG, "toml", &text)
        .map_err(AppError::input)?;
    if let Some(net) = &model.network {
        w.write_text(
            "react.wgsl",
            "wgsl",
            &ionfield::chem::wgsl::kernel_source(net),
        )
        .map_err(AppError::input)?;
    }
    w.provenance.wall_time_by_phase_s.setup_s += started.elapsed().as_secs_f64();
    session.spin_up(engine.as_mut())?;
    session.execute(engine.as_mut(), Position::default())
}

/// `ionfield resume DIR`.
pub fn resume(args: &ResumeArgs) -> Result<(), AppError> {
    let started = Instant::now();
    let dir = &args.dir;
    let ck_path = dir.join(checkpoint::REL_PATH);
    let bytes = std::fs::read(&ck_path).map_err(|e| {
        AppError::input(anyhow::anyhow!(
            "{}: cannot read the checkpoint ({e}). Fix: give the output folder of a run that was interrupted, stopped with --stop-at or run with --checkpoint-every (a completed run deletes its checkpoint)",
            ck_path.display()
        ))
    })?;
    let ck = Checkpoint::decode(&bytes, &ck_path).map_err(AppError::input)?;
    let h = &ck.header;
    let config_path = dir.join(RESOLVED_CONFIG);
    let text = std::fs::read_to_string(&config_path).map_err(|e| {
        AppError::input(anyhow::anyhow!(
            "{}: cannot read the run's resolved scenario ({e}). Fix: restore the file from the run folder; resume needs it",
            config_path.display()
        ))
    })?;
    if sha256_hex(text.as_bytes()) != h.config_sha256 {
        return Err(AppError::input(anyhow::anyhow!(
            "{}: the file changed since the checkpoint was written (SHA-256 differs). Fix: restore the original file; to change the scenario, start a new run",
            config_path.display()
        )));
    }
    let resolved = config::load_resolved(
        &text,
        &config_path.display().to_string(),
        Path::new(&h.base_dir),
        &[],
        false,
    )
    .map_err(AppError::input)?;
    check_checkpoint_args(&args.checkpoints, &resolved.scenario)?;
    let chosen = match h.backend.as_str() {
        "cpu" => Chosen::Cpu,
        _ => Chosen::Gpu(Box::new(
            GpuContext::new(Some(&h.adapter_name)).map_err(AppError::input)?,
        )),
    };
    let model = Model::build(&resolved.scenario);
    let (mut engine, adapter_name) = build_engine(chosen, &model)?;
    let info = engine.info();
    if info.adapter != h.adapter || info.driver != h.driver {
        log::warn!(
            "the checkpoint was written on {} ({}); resuming on {} ({}): the result may differ in the last bits from an uninterrupted run",
            h.adapter,
            h.driver,
            info.adapter,
            info.driver
        );
    }
    let names: Vec<String> = resolved
        .scenario
        .species
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let state = ck
        .engine_state(&names)
        .map_err(|e| AppError::input(anyhow::anyhow!("{}: {e}", ck_path.display())))?;
    engine.restore_state(&state)?;
    let run_state: RunState = serde_json::from_value(h.run.clone()).map_err(|e| {
        AppError::input(anyhow::anyhow!(
            "{}: the run state cannot be read ({e}). Fix: resume with the ionfield version that wrote it ({})",
            ck_path.display(),
            h.ionfield_version
        ))
    })?;
    let mut session = Session::new(
        resolved,
        &model,
        engine.as_ref(),
        dir,
        adapter_name,
        &args.checkpoints,
    )?;
    session.config_sha256 = h.config_sha256.clone();
    session.base_dir = h.base_dir.clone();
    session.earlier_wall_s = session.writer.restore(run_state.writer);
    session
        .writer
        .adopt_file(checkpoint::REL_PATH, "checkpoint", &bytes);
    if let (Some(v), Some(st)) = (&mut session.viability, run_state.viability) {
        let tod = ck
            .blob(TIME_OF_DEATH_BLOB)
            .map(checkpoint::f32_values)
            .unwrap_or_default();
        v.restore(st, tod)
            .map_err(|e| AppError::input(anyhow::anyhow!("{}: {e}", ck_path.display())))?;
    }
    if let Some(ts) = &mut session.timeseries {
        ts.rows = run_state.timeseries;
    }
    if session.checkpoint_every_s.is_some() {
        session.next_checkpoint_s = run_state
            .next_checkpoint_s
            .filter(|_| args.checkpoints.checkpoint_every.is_none())
            .unwrap_or_else(|| session.next_checkpoint_after(h.time_s));
    }
    let p = &mut session.writer.provenance;
    p.command_lines.push(std::env::args().collect());
    p.hosts.push(host_name());
    p.resumed_from_s.push(h.time_s);
    p.wall_time_by_phase_s.setup_s += started.elapsed().as_secs_f64();
    eprintln!(
        "resuming at t = {} s (step {}) from {}",
        h.time_s,
        h.position.step,
        ck_path.display()
    );
    session.execute(engine.as_mut(), h.position)
}

fn check_checkpoint_args(a: &CheckpointArgs, scenario: &Scenario) -> Result<(), AppError> {
    for (flag, v) in [
        ("--checkpoint-every", a.checkpoint_every),
        ("--stop-at", a.stop_at),
    ] {
        if let Some(v) = v {
            if !(v.is_finite() && v > 0.0) {
                return Err(AppError::input(anyhow::anyhow!(
                    "{flag} {v}: must be a positive model time in s. Fix: e.g. {flag} {}",
                    scenario.time.end_s / 2.0
                )));
            }
        }
    }
    Ok(())
}

/// The engine for `chosen` and the adapter's name as the driver reports it (for resume).
fn build_engine(chosen: Chosen, model: &Model) -> Result<(Box<dyn Engine>, String), AppError> {
    Ok(match chosen {
        Chosen::Gpu(ctx) => {
            let name = ctx.adapter.info.name.clone();
            (
                Box::new(GpuEngine::new(*ctx, model).map_err(AppError::input)?),
                name,
            )
        }
        Chosen::Cpu => (Box::new(CpuEngine::new(model)), "cpu".to_string()),
    })
}

/// `config.resolved.toml`: a comment saying what it is, then the merged scenario.
fn resolved_config_text(r: &Resolved) -> String {
    format!(
        "# The fully resolved scenario of this run: `{}` with its includes merged and every\n# --set applied, written by ionfield {} ({}). `ionfield resume` reads it; relative\n# paths in it start from {}.\n\n{}",
        r.scenario.source,
        ionfield::VERSION,
        ionfield::GIT_COMMIT,
        r.base_dir.display(),
        r.toml
    )
}

/// This machine's name (Linux), or `unknown`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Everything a run carries between stops.
struct Session {
    scenario: Scenario,
    doses: Vec<DoseField>,
    writer: RunWriter,
    derived: Derived,
    /// Species read at output times (all of them in well-mixed mode).
    read_at_output: Vec<usize>,
    well_mixed: bool,
    viability: Option<ViabilityTracker>,
    timeseries: Option<TimeSeries>,
    schedule: OutputSchedule,
    total_steps: u64,
    /// Start of the current phase measurement.
    mark: Instant,
    started: Instant,
    /// Wall time of earlier parts of a resumed run, s.
    earlier_wall_s: f64,
    bar: Option<indicatif::ProgressBar>,
    checkpoint_every_s: Option<f64>,
    next_checkpoint_s: f64,
    stop_at_s: Option<f64>,
    interrupted: Arc<AtomicBool>,
    adapter_name: String,
    config_sha256: String,
    base_dir: String,
}

impl Session {
    fn new(
        resolved: Resolved,
        model: &Model,
        engine: &dyn Engine,
        out_dir: &Path,
        adapter_name: String,
        ck: &CheckpointArgs,
    ) -> Result<Session, AppError> {
        let scenario = resolved.scenario;
        let info = engine.info();
        eprintln!(
            "ionfield {}: scenario `{}` ({}), backend {} on {}",
            ionfield::VERSION,
            scenario.name,
            scenario.source,
            info.backend,
            info.adapter
        );
        let writer = RunWriter::create(
            out_dir,
            &scenario,
            RunInfo {
                backend: info.backend.clone(),
                adapter: info.adapter.clone(),
                driver: info.driver.clone(),
            },
        )
        .map_err(AppError::input)?;
        // One voxel = well-mixed mode: every species to well_mixed.csv, no images.
        let well_mixed = scenario.grid.n_voxels() == 1;
        // Derived fields (pH, MRI) need species that may not be written: read those too.
        let derived = Derived::new(&scenario, model);
        let read_at_output = if well_mixed {
            (0..scenario.species.len()).collect()
        } else {
            derived.species_to_read().to_vec()
        };
        let tissue_names: Vec<String> = scenario.tissues.iter().map(|t| t.name.clone()).collect();
        // Viability (a species `viab`): summaries at every stop, so the time series and
        // the time of death resolve the killing.
        let viability = scenario
            .species
            .iter()
            .position(|s| s.name == "viab")
            .filter(|_| !well_mixed)
            .map(|v| ViabilityTracker::new(v, model, &tissue_names));
        let timeseries =
            (!well_mixed).then(|| TimeSeries::new(model, &tissue_names, &scenario.output.probes));
        let summary_s = scenario
            .output
            .summary_interval_s
            .unwrap_or(scenario.time.output_interval_s.min(60.0));
        let n_summaries = (scenario.time.end_s / summary_s).ceil() as u64;
        let schedule = OutputSchedule::new(&scenario.time)
            .with_stops(scenario.doses.iter().map(|d| d.time_s))
            .with_stops(
                (1..n_summaries)
                    .map(|k| k as f64 * summary_s)
                    .filter(|_| !well_mixed),
            );
        let total_steps = schedule.n_steps();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total_steps);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:40}] step {pos}/{len} ({per_sec}, eta {eta}) {msg}",
                )
                .expect("static template is valid")
                .progress_chars("=> "),
            );
            bar
        });
        let interrupted = Arc::new(AtomicBool::new(false));
        // Under `ionfield sweep` the parent forwards the signal it got, and Slurm may also
        // signal the child directly: there a second signal must not end the run unsaved.
        let forwarded = std::env::var_os("IONFIELD_SWEEP_CHILD").is_some();
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let handler_error =
                |e| AppError::simulation(anyhow::anyhow!("cannot install a signal handler: {e}"));
            if !forwarded {
                // A second signal while the first is handled ends the process at once (exit 1).
                signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&interrupted))
                    .map_err(handler_error)?;
            }
            signal_hook::flag::register(sig, Arc::clone(&interrupted)).map_err(handler_error)?;
        }
        let base_dir = std::path::absolute(&resolved.base_dir)
            .unwrap_or(resolved.base_dir)
            .display()
            .to_string();
        let mut s = Session {
            doses: model.doses.clone(),
            writer,
            derived,
            read_at_output,
            well_mixed,
            viability,
            timeseries,
            schedule,
            total_steps,
            mark: Instant::now(),
            started: Instant::now(),
            earlier_wall_s: 0.0,
            bar,
            checkpoint_every_s: ck.checkpoint_every,
            next_checkpoint_s: f64::INFINITY,
            stop_at_s: ck.stop_at,
            interrupted,
            adapter_name,
            config_sha256: String::new(),
            base_dir,
            scenario,
        };
        s.next_checkpoint_s = s.next_checkpoint_after(0.0);
        Ok(s)
    }

    /// The first multiple of `--checkpoint-every` after `time_s`.
    fn next_checkpoint_after(&self, time_s: f64) -> f64 {
        match self.checkpoint_every_s {
            Some(every) => ((time_s / every + 1e-9).floor() + 1.0) * every,
            None => f64::INFINITY,
        }
    }

    fn wall_s(&self) -> f64 {
        self.earlier_wall_s + self.started.elapsed().as_secs_f64()
    }

    /// Adds the time since the last mark to a phase and restarts the mark.
    fn lap(&mut self, phase: fn(&mut ionfield::output::manifest::Phases) -> &mut f64) {
        *phase(&mut self.writer.provenance.wall_time_by_phase_s) +=
            self.mark.elapsed().as_secs_f64();
        self.mark = Instant::now();
    }

    /// The untreated baseline before t = 0 (`time.spin_up_s`).
    fn spin_up(&mut self, engine: &mut dyn Engine) -> Result<(), AppError> {
        let Some(spin) = self.scenario.spin_up else {
            return Ok(());
        };
        let scenario = &self.scenario;
        eprintln!(
            "spin-up: {} s of baseline (no doses, no outputs) at dt {} s before t = 0",
            spin.duration_s, spin.dt_s
        );
        let names: Vec<String> = scenario.species.iter().map(|s| s.name.clone()).collect();
        self.mark = Instant::now();
        let report = sim::spin_up(engine, spin, &names)?;
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
        self.writer.set_spin_up(report);
        self.lap(|p| &mut p.spin_up_s);
        Ok(())
    }

    /// The time loop from `start`, then the end-of-run outputs, or a checkpoint and the
    /// resume hint when stopped.
    fn execute(mut self, engine: &mut dyn Engine, start: Position) -> Result<(), AppError> {
        let loop_started = Instant::now();
        let start_step = start.step;
        if let Some(b) = &self.bar {
            b.set_position(start.step);
        }
        self.mark = Instant::now();
        let schedule = self.schedule.clone();
        let doses = std::mem::take(&mut self.doses);
        let result = sim::run(engine, &schedule, &doses, start, &mut self);
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                let wall = self.wall_s();
                let _ = self.writer.write_manifest("failed", wall);
                eprintln!(
                    "the run stopped; {} finished output file(s) are in {}",
                    self.writer.files_written(),
                    self.writer.out_dir().display()
                );
                return Err(e);
            }
        };
        self.write_plots()?;
        if let Outcome::Stopped(pos) = outcome {
            let by_signal = self.interrupted.load(Ordering::SeqCst);
            let status = if by_signal { "interrupted" } else { "stopped" };
            let wall = self.wall_s();
            self.writer
                .write_manifest(status, wall)
                .map_err(AppError::input)?;
            let dir = self.writer.out_dir().display().to_string();
            let hint = format!(
                "{status} at step {} of {}; checkpoint written. Resume with:\n  ionfield resume {}",
                pos.step,
                self.total_steps,
                shell_quote(&dir)
            );
            if by_signal {
                return Err(AppError {
                    code: EXIT_INTERRUPTED,
                    error: anyhow::anyhow!("interrupted by a signal: {hint}"),
                });
            }
            eprintln!("{hint}");
            return Ok(());
        }
        if let Some(v) = &self.viability {
            self.writer
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
                st.substeps as f64
                    / (st.calls.max(1) as f64 * self.scenario.grid.n_voxels() as f64),
                st.max_substeps
            );
        }
        // A completed run needs no checkpoint.
        self.writer
            .remove_file(checkpoint::REL_PATH)
            .map_err(AppError::input)?;
        self.lap(|p| &mut p.outputs_s);
        let wall = self.wall_s();
        let manifest = self
            .writer
            .write_manifest("complete", wall)
            .map_err(AppError::simulation)?;
        let loop_s = loop_started.elapsed().as_secs_f64();
        let steps = self.total_steps - start_step;
        let svu = steps as f64
            * self.scenario.grid.n_voxels() as f64
            * self
                .scenario
                .species
                .iter()
                .filter(|s| s.diffuses())
                .count() as f64;
        eprintln!(
            "done: {steps} steps in {loop_s:.1} s ({:.1} M species-voxel updates/s incl. output), {} files in {}\nmanifest: {}",
            svu / loop_s / 1e6,
            self.writer.files_written(),
            self.writer.out_dir().display(),
            manifest.display()
        );
        Ok(())
    }

    /// `plots/timeseries.png` (the fields of `output.fields` that `timeseries.csv` has,
    /// else all of them) and `plots/viability.png`, from the summaries so far.
    fn write_plots(&mut self) -> Result<(), AppError> {
        let Some(ts) = &self.timeseries else {
            return Ok(());
        };
        let sc = &self.scenario;
        let all: Vec<(String, String, bool)> = sc
            .output
            .timeseries
            .iter()
            .map(|f| match *f {
                TimeseriesField::Species(s) => (
                    sc.species[s].name.clone(),
                    sc.species[s].unit.clone(),
                    sc.output.fields.contains(&s),
                ),
                TimeseriesField::Ph(_) => ("pH".into(), "pH".into(), sc.output.ph.is_some()),
            })
            .collect();
        let written: Vec<(String, String)> = all
            .iter()
            .filter(|f| f.2)
            .map(|f| (f.0.clone(), f.1.clone()))
            .collect();
        let fields = if written.is_empty() {
            all.into_iter().map(|f| (f.0, f.1)).collect()
        } else {
            written
        };
        let dpi = ionfield::output::plot::DEFAULT_DPI;
        let pages = [
            ("plots/timeseries.png", ts.chart_page_png(&fields, dpi)),
            ("plots/viability.png", ts.viability_png(dpi)),
        ];
        for (rel, png) in pages {
            let png = png.map_err(AppError::simulation)?;
            if let Some(bytes) = png {
                self.writer
                    .write_bytes(rel, "plot", &bytes)
                    .map_err(AppError::input)?;
            }
        }
        Ok(())
    }

    /// Writes the checkpoint of `engine` at `pos` (model time `time_s`).
    fn write_checkpoint(
        &mut self,
        engine: &mut dyn Engine,
        pos: Position,
        time_s: f64,
    ) -> Result<(), AppError> {
        self.lap(|p| &mut p.steps_s);
        let state = engine.save_state()?;
        self.writer.provenance.checkpoints_s.push(time_s);
        let run = RunState {
            writer: self.writer.state(self.wall_s()),
            viability: self.viability.as_ref().map(ViabilityTracker::state),
            timeseries: self
                .timeseries
                .as_ref()
                .map(|t| t.rows.clone())
                .unwrap_or_default(),
            next_checkpoint_s: self
                .checkpoint_every_s
                .map(|_| self.next_checkpoint_after(time_s)),
        };
        let extra = self
            .viability
            .iter()
            .map(|v| {
                (
                    TIME_OF_DEATH_BLOB.to_string(),
                    checkpoint::f32_bytes(&v.time_of_death_s),
                )
            })
            .collect();
        let names: Vec<String> = self
            .scenario
            .species
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let ck = Checkpoint::new(
            state,
            &names,
            &self.adapter_name,
            &RunInfo {
                backend: engine.info().backend,
                adapter: engine.info().adapter,
                driver: engine.info().driver,
            },
            self.config_sha256.clone(),
            self.base_dir.clone(),
            pos,
            time_s,
            serde_json::to_value(run).expect("the run state is plain data"),
            extra,
        );
        self.writer
            .write_bytes(checkpoint::REL_PATH, "checkpoint", &ck.encode())
            .map_err(AppError::input)?;
        self.lap(|p| &mut p.checkpoints_s);
        let wall = self.wall_s();
        self.writer
            .write_manifest("running", wall)
            .map_err(AppError::input)?;
        log::info!("checkpoint at t = {time_s} s (step {})", pos.step);
        Ok(())
    }
}

impl Hooks for Session {
    type Error = AppError;

    fn on_stop(&mut self, engine: &mut dyn Engine, stop: Stop) -> Result<(), AppError> {
        let Stop {
            time_s,
            step,
            output,
        } = stop;
        self.lap(|p| &mut p.steps_s);
        // One readback per stop: the output species at output times, plus what the
        // summaries need.
        let mut read: Vec<usize> = if output {
            self.read_at_output.clone()
        } else {
            Vec::new()
        };
        let ts_fields = self.scenario.output.timeseries.clone();
        let summary_species = ts_fields
            .iter()
            .map(|f| match *f {
                TimeseriesField::Species(s) | TimeseriesField::Ph(s) => s,
            })
            .filter(|_| self.timeseries.is_some())
            .chain(self.viability.as_ref().map(|v| v.species));
        for s in summary_species.collect::<Vec<_>>() {
            if !read.contains(&s) {
                read.push(s);
            }
        }
        let data = engine.read_fields(&read)?;
        self.lap(|p| &mut p.readback_s);
        let field = |s: usize| &data[read.iter().position(|&r| r == s).expect("read above")];
        if let Some(v) = &mut self.viability {
            v.record(time_s, field(v.species));
            let csv = v.csv();
            self.writer
                .write_text("viability.csv", "csv", &csv)
                .map_err(AppError::input)?;
        }
        if let Some(ts) = &mut self.timeseries {
            let ph: Vec<(usize, Vec<f32>)> = ts_fields
                .iter()
                .filter_map(|f| match *f {
                    TimeseriesField::Ph(h) => Some((h, ph_field(field(h)))),
                    TimeseriesField::Species(_) => None,
                })
                .collect();
            let species = &self.scenario.species;
            let fields: Vec<(&str, &str, &[f32])> = ts_fields
                .iter()
                .map(|f| match *f {
                    TimeseriesField::Species(s) => (
                        species[s].name.as_str(),
                        species[s].unit.as_str(),
                        &field(s)[..],
                    ),
                    TimeseriesField::Ph(h) => (
                        "pH",
                        "pH",
                        &ph.iter().find(|p| p.0 == h).expect("computed above").1[..],
                    ),
                })
                .collect();
            ts.record(time_s, &fields);
            let csv = ts.csv();
            self.writer
                .write_text("timeseries.csv", "csv", &csv)
                .map_err(AppError::input)?;
        }
        if output {
            // The output species come first in `read`, in `read_at_output` order: hand
            // those fields over without copying.
            let mut written = data;
            written.truncate(self.read_at_output.len());
            if self.well_mixed {
                let values: Vec<f64> = written.iter().map(|f| f[0] as f64).collect();
                self.writer.write_well_mixed(time_s, step, &values)
            } else {
                self.writer
                    .write_output(time_s, step, &self.derived.assemble(written))
            }
            .map_err(AppError::input)?;
        }
        self.lap(|p| &mut p.outputs_s);
        let wall = self.wall_s();
        self.writer
            .write_manifest("running", wall)
            .map_err(AppError::input)?;
        if output {
            let msg = format!("output t = {time_s} s written");
            match &self.bar {
                Some(b) => b.set_message(msg),
                None => log::info!(
                    "step {step}/{}: {msg} ({:.1} s wall)",
                    self.total_steps,
                    self.started.elapsed().as_secs_f64()
                ),
            }
        }
        self.mark = Instant::now();
        Ok(())
    }

    fn on_batch(
        &mut self,
        engine: &mut dyn Engine,
        at: Position,
        time_s: f64,
    ) -> Result<Flow, AppError> {
        self.lap(|p| &mut p.steps_s);
        if let Some(b) = &self.bar {
            b.set_position(at.step);
        }
        let tol = 1e-9 * self.schedule.dt_s;
        let signal = self.interrupted.load(Ordering::SeqCst);
        let stop_here = self.stop_at_s.is_some_and(|t| time_s >= t - tol);
        let end = self.scenario.time.end_s;
        let due = time_s >= self.next_checkpoint_s - tol && time_s < end - tol;
        if signal || stop_here || due {
            if signal {
                eprintln!("signal received: writing a checkpoint at t = {time_s} s");
            }
            self.write_checkpoint(engine, at, time_s)?;
            self.next_checkpoint_s = self.next_checkpoint_after(time_s);
        }
        Ok(if signal || stop_here {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }
}

/// Quotes a path for a POSIX shell when it needs it.
fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
