//! `ionfield run` and `ionfield resume`: a validated scenario → engine →
//! [`Simulation`] with the run folder's writers and the checkpoint, stop and signal
//! callbacks → the final manifest and report.
//!
//! A run folder holds `config.resolved.toml` (the merged scenario) from the start; a
//! checkpoint (`checkpoint/state.ifck`) holds the engine state, the loop position and the
//! state of every callback. `resume` loads both, rebuilds the same simulation on the same
//! backend and adapter, and continues where it stopped. Checkpoints and interrupts happen
//! only at batch boundaries (`sim::STEPS_PER_BATCH`), where the splitting closes, so the
//! continued run computes exactly what the uninterrupted run would.

use super::args::{CheckpointArgs, ResumeArgs, RunArgs};
use super::common::{choose_backend, load_resolved, AppError, Chosen, EXIT_INTERRUPTED};
use crate::config::{self, Resolved, Scenario};
use crate::cpu::CpuEngine;
use crate::engine::Engine;
use crate::gpu::{self, plan::human_bytes, BufferPlan, GpuContext, GpuEngine};
use crate::model::Model;
use crate::output::callbacks::{self, SharedRunWriter};
use crate::output::folder::{self, Occupant};
use crate::output::manifest::sha256_hex;
use crate::output::{RunInfo, RunWriter};
use crate::sim::checkpoint::{self, Checkpoint, InputFile};
use crate::sim::control::{CheckpointEvery, Progress, ProgressPlan, SignalStop, StopAt};
use crate::sim::{Outcome, RunIdentity, Simulation};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The resolved scenario, relative to the output folder.
const RESOLVED_CONFIG: &str = "config.resolved.toml";

/// What a program that embeds a run (the Python package) changes about it; the default is
/// the command line's.
#[derive(Default)]
pub struct Hooks {
    /// Progress lines go here instead of the terminal's bar or the log.
    pub progress: Option<crate::sim::control::ProgressSink>,
    /// The process goes on after the run: a second signal does not end it (as under
    /// `ionfield sweep`), and the handlers are removed when the run ends.
    pub embedded: bool,
    /// The command line recorded in the manifest (default: this process's arguments).
    pub command_line: Option<Vec<String>>,
}

impl Hooks {
    fn command_line(&self) -> Vec<String> {
        self.command_line
            .clone()
            .unwrap_or_else(|| std::env::args().collect())
    }
}

/// `ionfield run`.
pub fn run(args: &RunArgs) -> Result<(), AppError> {
    run_with(args, Hooks::default())
}

/// `ionfield run` with `hooks`.
pub fn run_with(args: &RunArgs, mut hooks: Hooks) -> Result<(), AppError> {
    let started = Instant::now();
    let resolved = load_resolved(args.config.as_deref(), &args.sets, false)?;
    let scenario = &resolved.scenario;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out").join(&scenario.name));
    check_checkpoint_args(&args.checkpoints, scenario)?;
    check_out_dir(&out_dir, args.overwrite)?;
    let input_files = input_files(scenario)?;
    // A run that would fill a disk or a folder says so before it starts (`ionfield check`
    // lists what it writes).
    for w in crate::output::estimate::estimate(scenario, &resolved.toml).warnings() {
        log::warn!("{w}");
    }

    let coupled = matches!(scenario.time.scheme, crate::config::Scheme::Coupled { .. });
    let chosen = choose_backend(args, coupled)?;
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
            let need = crate::cpu::required_bytes(scenario);
            if let Some(mem) = gpu::plan::host_memory() {
                if need > mem.bytes {
                    return Err(AppError::input(anyhow::anyhow!(
                        "{}: grid.shape: the CPU backend needs {} but about {} of memory is available ({}). Fix: use a smaller grid{}",
                        scenario.source,
                        human_bytes(need),
                        human_bytes(mem.bytes),
                        mem.bound_by,
                        mem.fix
                    )));
                }
            }
        }
    }
    let model = Model::build(scenario);
    for w in model.warnings() {
        log::warn!("{}: {w}", scenario.source);
    }
    let (engine, adapter_name) = build_engine(chosen, &model)?;
    let text = resolved_config_text(&resolved);
    let base_dir = std::path::absolute(&resolved.base_dir)
        .unwrap_or(resolved.base_dir.clone())
        .display()
        .to_string();
    let identity = RunIdentity {
        adapter_name,
        config_sha256: sha256_hex(text.as_bytes()),
        base_dir,
        input_files,
    };
    if args.overwrite {
        clear_out_dir(&out_dir)?;
    }
    let mut run = RunFolder::new(
        scenario,
        &model,
        engine,
        &out_dir,
        identity,
        &args.checkpoints,
        0.0,
    )?;
    run.add_signal_stop(hooks.embedded)?;
    {
        let mut w = run.writer.borrow_mut();
        w.provenance.command_lines.push(hooks.command_line());
        w.provenance.hosts.push(host_name());
        w.provenance.resolved_config = RESOLVED_CONFIG.into();
        if let Some(seed) = scenario.vessel_network.as_ref().and_then(|n| n.seed) {
            w.provenance.seeds.insert("vessel_network".into(), seed);
        }
        w.write_text(RESOLVED_CONFIG, "toml", &text)
            .map_err(AppError::input)?;
        if let Some(net) = &model.network {
            w.write_text("react.wgsl", "wgsl", &crate::chem::wgsl::kernel_source(net))
                .map_err(AppError::input)?;
        }
    }
    run.sim.phases_mut().setup_s += started.elapsed().as_secs_f64();
    run.add_progress(scenario, true, hooks.progress.take());
    run.spin_up(scenario)?;
    run.execute(scenario)
}

/// `ionfield resume DIR`.
pub fn resume(args: &ResumeArgs) -> Result<(), AppError> {
    resume_with(args, Hooks::default())
}

/// `ionfield resume DIR` with `hooks`.
pub fn resume_with(args: &ResumeArgs, mut hooks: Hooks) -> Result<(), AppError> {
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
    check_input_files(&h.input_files)?;
    let resolved = config::load_resolved(
        &text,
        &config_path.display().to_string(),
        Path::new(&h.base_dir),
        &[],
        false,
    )
    .map_err(AppError::input)?;
    let scenario = &resolved.scenario;
    check_checkpoint_args(&args.checkpoints, scenario)?;
    let chosen = match h.backend.as_str() {
        "cpu" => Chosen::Cpu,
        _ => Chosen::Gpu(Box::new(
            GpuContext::new(Some(&h.adapter_name)).map_err(AppError::input)?,
        )),
    };
    let model = Model::build(scenario);
    for w in model.warnings() {
        log::warn!("{}: {w}", scenario.source);
    }
    let (engine, adapter_name) = build_engine(chosen, &model)?;
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
    let identity = RunIdentity {
        adapter_name,
        config_sha256: h.config_sha256.clone(),
        base_dir: h.base_dir.clone(),
        input_files: h.input_files.clone(),
    };
    let mut run = RunFolder::new(
        scenario,
        &model,
        engine,
        dir,
        identity,
        &args.checkpoints,
        h.time_s,
    )?;
    run.add_signal_stop(hooks.embedded)?;
    run.sim
        .restore(&ck)
        .map_err(|e| AppError::input(anyhow::anyhow!("{}: {e}", ck_path.display())))?;
    {
        let mut w = run.writer.borrow_mut();
        w.adopt_file(checkpoint::REL_PATH, "checkpoint", &bytes);
        let p = &mut w.provenance;
        p.command_lines.push(hooks.command_line());
        p.hosts.push(host_name());
        p.resumed_from_s.push(h.time_s);
    }
    run.sim.phases_mut().setup_s += started.elapsed().as_secs_f64();
    run.add_progress(scenario, false, hooks.progress.take());
    eprintln!(
        "resuming at t = {} s (step {}) from {}",
        h.time_s,
        h.position.step,
        ck_path.display()
    );
    run.execute(scenario)
}

/// A simulation with the writers of a run folder and the run's control callbacks.
struct RunFolder {
    sim: Simulation,
    writer: SharedRunWriter,
    interrupted: Arc<AtomicBool>,
}

impl RunFolder {
    /// The simulation of `scenario` on `engine`, writing into `out_dir`: the standard
    /// writers, then `--checkpoint-every` (from model time `from_s`) and `--stop-at`; the
    /// caller adds the signal stop and the progress bar next. `run` and `resume` build the
    /// same, so a checkpoint's callback states find their callbacks.
    fn new(
        scenario: &Scenario,
        model: &Model,
        engine: Box<dyn Engine>,
        out_dir: &Path,
        identity: RunIdentity,
        ck: &CheckpointArgs,
        from_s: f64,
    ) -> Result<RunFolder, AppError> {
        let info = engine.info();
        eprintln!(
            "ionfield {}: scenario `{}` ({}), backend {} on {}",
            crate::VERSION,
            scenario.name,
            scenario.source,
            info.backend,
            info.adapter
        );
        let writer = RunWriter::create(
            out_dir,
            scenario,
            RunInfo {
                backend: info.backend.clone(),
                adapter: info.adapter.clone(),
                driver: info.driver.clone(),
            },
        )
        .map_err(AppError::input)?;
        let writer: SharedRunWriter = Rc::new(RefCell::new(writer));
        let mut sim = Simulation::new(scenario, model, engine);
        sim.set_identity(identity);
        callbacks::attach(&mut sim, scenario, model, &writer);
        let (end_s, dt_s) = (scenario.time.end_s, scenario.time.dt_s);
        if let Some(every) = ck.checkpoint_every {
            sim.add(CheckpointEvery::new(every, from_s, end_s, dt_s));
        }
        if let Some(at) = ck.stop_at {
            sim.add(StopAt::new(at, dt_s));
        }
        Ok(RunFolder {
            sim,
            writer,
            interrupted: Arc::new(AtomicBool::new(false)),
        })
    }

    /// SIGINT and SIGTERM stop the run with a checkpoint; `embedded`: the process goes on
    /// after the run, so a second signal does not end it (as under `ionfield sweep`).
    fn add_signal_stop(&mut self, embedded: bool) -> Result<(), AppError> {
        let forwarded = embedded || std::env::var_os("IONFIELD_SWEEP_CHILD").is_some();
        let signals =
            SignalStop::install(forwarded).map_err(|e| AppError::simulation(anyhow::anyhow!(e)))?;
        self.interrupted = signals.flag();
        self.sim
            .engine()
            .set_interrupt(Arc::clone(&self.interrupted));
        self.sim.add(signals);
        Ok(())
    }

    /// The progress bar (or its log lines) from where the simulation stands to the end,
    /// over the spin-up too when `with_spin_up` (a new run); its lines go to `sink` if given.
    fn add_progress(
        &mut self,
        scenario: &Scenario,
        with_spin_up: bool,
        sink: Option<crate::sim::control::ProgressSink>,
    ) {
        let plan = ProgressPlan::new(
            scenario,
            self.sim.total_steps(),
            self.sim.position().step,
            with_spin_up,
        );
        self.sim.add(match sink {
            Some(sink) => Progress::with_sink(plan, sink),
            None => Progress::new(plan),
        });
    }

    /// The untreated baseline before t = 0 (`time.spin_up_s`), with its report.
    fn spin_up(&mut self, scenario: &Scenario) -> Result<(), AppError> {
        let Some(spin) = scenario.spin_up else {
            return Ok(());
        };
        let human = crate::config::duration::human(spin.duration_s);
        let duration = if human == format!("{} s", spin.duration_s) {
            human
        } else {
            format!("{} s ({human})", spin.duration_s)
        };
        let adaptive = scenario.time.scheme != crate::config::Scheme::Split;
        if adaptive {
            eprintln!(
                "spin-up: {duration} of baseline (no doses, no outputs) before t = 0, error-controlled steps from {} s at {}× the run's tolerance",
                spin.dt_s,
                crate::sim::SPIN_UP_TOLERANCE_SCALE
            );
        } else {
            eprintln!(
                "spin-up: {duration} of baseline (no doses, no outputs) at dt {} s before t = 0, {} steps",
                spin.dt_s,
                spin.n_steps()
            );
        }
        let report = match self.sim.spin_up() {
            Ok(Some(report)) => report,
            Ok(None) => return Ok(()),
            Err(e) => {
                // A signal during the spin-up: the manifest says so (no checkpoint, so a
                // sweep reruns the run from scratch).
                if matches!(e, crate::sim::simulation::Error::SpinUpStopped { .. }) {
                    let _ = self.write_manifest("interrupted");
                }
                return Err(e.into());
            }
        };
        let (name, drift) = report.worst.clone();
        // At the spin-up's looser tolerance the change over its last tenth is partly the
        // integrator's error relaxing (fe_fenton_cdt at 32³: glucose 8.5e-2 per hour at the
        // default tolerance, 1.7e-2 at 1e-3 and 1e-4), not the tissue's drift.
        let caveat = if adaptive {
            "; at the spin-up's looser tolerance this includes the integrator's own error"
        } else {
            ""
        };
        let ran = crate::config::duration::human(report.duration_s);
        let necrotic = crate::sim::NECROTIC_VIAB;
        match (report.tolerance_per_h, report.settled) {
            (Some(tol), Some(true)) => eprintln!(
                "spin-up settled after {ran}: largest drift {name} at {drift:.2e} of its range per hour over the last {}, within {tol:e} (voxels with viab ≥ {necrotic}; cumulative species and viab excluded{}; all in manifest.json)",
                crate::config::duration::human(report.window_s),
                if adaptive { "; measured at the run's own tolerance" } else { "" }
            ),
            (Some(tol), _) => log::warn!(
                "spin-up did not settle within its {ran}: {name} still drifts {drift:.2e} of its range per hour, above time.spin_up_tolerance_per_h = {tol:e}; the therapy starts from a baseline that is still changing. Fix: lengthen time.spin_up or loosen the tolerance (all drifts in manifest.json)"
            ),
            _ => eprintln!(
                "spin-up done: largest remaining drift {name} at {drift:.2e} of its range per hour (voxels with viab ≥ {necrotic}; cumulative species and viab excluded{caveat}; all in manifest.json)"
            ),
        }
        self.writer.borrow_mut().set_spin_up(report);
        Ok(())
    }

    /// Runs from where the simulation stands to the end (or a stop), then writes the final
    /// manifest and reports; a stop leaves a checkpoint and the resume hint.
    fn execute(mut self, scenario: &Scenario) -> Result<(), AppError> {
        let loop_started = Instant::now();
        let start_step = self.sim.position().step;
        // The coupled scheme counts its steps from the spin-up on; the rate below is over
        // this loop's wall time, so it counts only this loop's steps.
        let coupled_steps_before = self.sim.engine().step_stats().map_or(0, |st| st.steps);
        let total_steps = self.sim.total_steps();
        let result = self.sim.run();
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                let e = AppError::from(e);
                self.writer
                    .borrow_mut()
                    .set_failure(format!("{:#}", e.error));
                let _ = self.write_manifest("failed");
                eprintln!(
                    "the run stopped; {} finished output file(s) are in {}",
                    self.writer.borrow().files_written(),
                    self.writer.borrow().out_dir().display()
                );
                return Err(e);
            }
        };
        if let Outcome::Stopped(pos) = outcome {
            let by_signal = self.interrupted.load(Ordering::SeqCst);
            let status = if by_signal { "interrupted" } else { "stopped" };
            self.write_manifest(status).map_err(AppError::input)?;
            let dir = self.writer.borrow().out_dir().display().to_string();
            let hint = format!(
                "{status} at step {} of {total_steps}; checkpoint written. Resume with:\n  ionfield resume {}",
                pos.step,
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
        if let Some(st) = self.sim.engine().reaction_stats() {
            eprintln!(
                "reactions: {} calls, {:.2} sub-steps per voxel and call on average, at most {} in one voxel",
                st.calls,
                st.substeps as f64 / (st.calls.max(1) as f64 * scenario.grid.n_voxels() as f64),
                st.max_substeps
            );
        }
        if let Some(st) = self.sim.engine().step_stats() {
            eprintln!(
                "time steps (coupled scheme, spin-up included): {} accepted, {} rejected, dt {:.3}–{:.1} s, {:.1} linear iterations per solve, {} of {} attempts preconditioned by the coupled multigrid",
                st.steps,
                st.rejected,
                st.h_min_s,
                st.h_max_s,
                st.linear_iterations as f64 / (2.0 * (st.steps + st.rejected).max(1) as f64),
                st.coupled_multigrid_attempts,
                st.steps + st.rejected
            );
        }
        let manifest = self
            .write_manifest("complete")
            .map_err(AppError::simulation)?;
        let loop_s = loop_started.elapsed().as_secs_f64();
        // Accepted steps of the coupled scheme after the spin-up, else the fixed steps.
        let steps = match self.sim.engine().step_stats() {
            Some(st) => st.steps - coupled_steps_before,
            None => total_steps - start_step,
        };
        let diffusing = scenario.species.iter().filter(|s| s.diffuses()).count();
        let svu = steps as f64 * scenario.grid.n_voxels() as f64 * diffusing as f64;
        let w = self.writer.borrow();
        eprintln!(
            "done: {steps} step{} in {loop_s:.1} s ({:.1} M species-voxel updates/s incl. output), {} files in {}\nmanifest: {}",
            if steps == 1 { "" } else { "s" },
            svu / loop_s / 1e6,
            w.files_written(),
            w.out_dir().display(),
            manifest.display()
        );
        Ok(())
    }

    /// `manifest.json` with the final `status` and the simulation's wall times.
    fn write_manifest(&mut self, status: &str) -> Result<PathBuf, crate::output::Error> {
        let mut w = self.writer.borrow_mut();
        w.provenance.wall_time_by_phase_s = self.sim.phases().clone();
        w.provenance.time_steps = self.sim.engine().step_stats();
        w.write_manifest(status, self.sim.wall_s())
    }
}

/// Refuses an `--out` that is not a folder, or a folder that already holds files (another
/// run, an unfinished run, anything) unless `overwrite`: a run folder belongs to one run,
/// so its manifest never mixes two runs' files. Changes nothing on disk.
fn check_out_dir(dir: &Path, overwrite: bool) -> Result<(), AppError> {
    let shown = dir.display().to_string();
    let quoted = shell_quote(&shown);
    let occupant = folder::inspect(dir).map_err(|e| {
        AppError::input(anyhow::anyhow!(
            "--out {shown}: cannot use it as the output folder ({e}). Fix: choose another --out folder (it is created if missing)"
        ))
    })?;
    let status = |s: &Option<String>| s.as_deref().unwrap_or("unknown").to_string();
    let refusal = match occupant {
        Occupant::Missing | Occupant::Empty => return Ok(()),
        Occupant::NotAFolder => {
            return Err(AppError::input(anyhow::anyhow!(
                "--out {shown}: is a file, and the output must be a folder. Fix: give a folder path for --out (it is created if missing)"
            )))
        }
        _ if overwrite => return Ok(()),
        Occupant::Resumable { status: s } => format!(
            "holds an unfinished run (status {}) with a checkpoint. Fix: continue it with `ionfield resume {quoted}`, or start over with --overwrite (deletes that run's files), or choose another --out folder",
            status(&s)
        ),
        Occupant::Run {
            scenario,
            status: s,
        } => format!(
            "holds another run (manifest.json of scenario `{}`, status {}); a run folder belongs to one run. Fix: choose another --out folder, or add --overwrite to replace that run (only ionfield's files are deleted)",
            scenario.as_deref().unwrap_or("?"),
            status(&s)
        ),
        Occupant::Other { names, count } => format!(
            "is not empty ({count} entr{}: {}{}); a run folder belongs to one run. Fix: choose a new or empty --out folder, or add --overwrite (removes only ionfield's own files there; other files stay)",
            if count == 1 { "y" } else { "ies" },
            names.join(", "),
            if count > names.len() { ", …" } else { "" }
        ),
    };
    Err(AppError::input(anyhow::anyhow!("--out {shown}: {refusal}")))
}

/// `--overwrite`: removes the earlier run's files from `dir` (see
/// [`folder::clear_previous_run`]); says what it removed and what it kept.
fn clear_out_dir(dir: &Path) -> Result<(), AppError> {
    let cleared = folder::clear_previous_run(dir).map_err(|e| {
        AppError::input(anyhow::anyhow!(
            "--overwrite: cannot clear the earlier run's files in {} ({e}). Fix: fix the folder's permissions or choose another --out folder",
            dir.display()
        ))
    })?;
    if cleared.removed > 0 {
        eprintln!(
            "--overwrite: removed {} file(s)/folder(s) of the earlier run in {}{}",
            cleared.removed,
            dir.display(),
            if cleared.kept.is_empty() {
                String::new()
            } else {
                format!(
                    "; kept {} entr{} that ionfield did not write: {}",
                    cleared.kept.len(),
                    if cleared.kept.len() == 1 { "y" } else { "ies" },
                    cleared.kept.join(", ")
                )
            }
        );
    }
    Ok(())
}

/// Every file the scenario read besides itself (tissue masks, the vessel CSV), with its
/// SHA-256, so `resume` can refuse when one changed. Included TOML files are not listed:
/// they are merged into `config.resolved.toml`, which resume reads (and checks) instead.
fn input_files(scenario: &Scenario) -> Result<Vec<InputFile>, AppError> {
    let paths = scenario
        .tissues
        .iter()
        .filter_map(|t| t.mask.as_ref().map(|m| m.path.clone()))
        .chain(
            scenario
                .vessel_network
                .as_ref()
                .and_then(|n| n.file.clone()),
        );
    let mut files: Vec<InputFile> = Vec::new();
    for p in paths {
        let path = std::path::absolute(&p).unwrap_or_else(|_| PathBuf::from(&p));
        let path_text = path.display().to_string();
        if files.iter().any(|f| f.path == path_text) {
            continue;
        }
        let sha256 = checkpoint::input_sha256(&path).map_err(|e| {
            AppError::input(anyhow::anyhow!(
                "{path_text}: cannot read an input file of the scenario ({e}). Fix: check the file"
            ))
        })?;
        files.push(InputFile {
            path: path_text,
            sha256,
        });
    }
    Ok(files)
}

/// Resume: every input file must be what the run started with.
fn check_input_files(files: &[InputFile]) -> Result<(), AppError> {
    for f in files {
        match checkpoint::input_sha256(Path::new(&f.path)) {
            Ok(sha) if sha == f.sha256 => {}
            Ok(_) => {
                return Err(AppError::input(anyhow::anyhow!(
                    "{}: the input file changed since the run started (SHA-256 differs); the resumed part would compute with other data than the first. Fix: restore the original file, or start a new run with the new one (ionfield run ... --overwrite)",
                    f.path
                )))
            }
            Err(e) => {
                return Err(AppError::input(anyhow::anyhow!(
                    "{}: cannot read an input file of the run ({e}). Fix: restore the file at that path; resume needs the same input files as the start",
                    f.path
                )))
            }
        }
    }
    Ok(())
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
        crate::VERSION,
        crate::GIT_COMMIT,
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
