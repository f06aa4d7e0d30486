//! `ionfield sweep`: the command-line side of `crate::sweep`.
//!
//! Each run of a sweep is a child process (`ionfield run BASE --out DIR/<id> --set ...`,
//! or `ionfield resume DIR/<id>`) of the current executable, so a GPU driver crash or a
//! signal stays in one run. `--jobs K` runs K of them at once (several small runs share
//! one GPU). SIGINT/SIGTERM to the sweep is forwarded to every running child (as SIGINT),
//! which checkpoints and exits 130; the sweep starts no other run and exits 130 too.

use super::args::{Backend, SweepArgs};
use super::common::{load_resolved, AppError, EXIT_INTERRUPTED};
use crate::output::atomic::write_atomic;
use crate::sim::checkpoint;
use crate::sweep::gather;
use crate::sweep::{Run, Shard, Sweep};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn input(msg: String) -> AppError {
    AppError::input(anyhow::anyhow!(msg))
}

/// The base as `ionfield run` takes it: a scenario path (relative to the sweep file) if
/// that file exists, else a preset name.
fn resolve_base(sweep: &Sweep, sweep_path: &Path) -> Result<PathBuf, AppError> {
    let dir = sweep_path.parent().unwrap_or(Path::new("."));
    let candidate = dir.join(&sweep.base);
    if candidate.is_file() {
        return Ok(std::path::absolute(&candidate).unwrap_or(candidate));
    }
    let preset = format!("configs/therapies/{}.toml", sweep.base);
    if crate::config::catalog::file(&preset).is_some() {
        return Ok(PathBuf::from(&sweep.base));
    }
    Err(input(format!(
        "{}: base: no scenario file {} and no preset named {:?}. Fix: give a preset name from `ionfield list` or a scenario path relative to the sweep file",
        sweep.file,
        candidate.display(),
        sweep.base
    )))
}

/// Loads the base with the fixed sets, then with every run's sets, so a bad key fails
/// before any run starts; the error names the sweep file and the axis.
fn validate(sweep: &Sweep, base: &Path, runs: &[Run]) -> Result<(), AppError> {
    load_resolved(Some(base), &sweep.set, false).map_err(|e| {
        input(format!(
            "{}: set / base: the base scenario {} with the fixed sets {:?} does not load: {:#}",
            sweep.file, sweep.base, sweep.set, e.error
        ))
    })?;
    for run in runs {
        let mut sets = sweep.set.clone();
        sets.extend(run.sets());
        if let Err(e) = load_resolved(Some(base), &sets, false) {
            // Name the axis whose value alone breaks the scenario (else all together).
            let culprit = run.assignments.iter().find(|(k, v)| {
                let mut one = sweep.set.clone();
                one.push(format!("{k}={v}"));
                load_resolved(Some(base), &one, false).is_err()
            });
            let field = match culprit {
                Some((k, v)) => format!("axes.\"{k}\" = {v}"),
                None => format!("axes (together: {})", run.sets().join(" ")),
            };
            return Err(input(format!(
                "{}: {field} (run {}): the scenario does not accept it: {:#}",
                sweep.file, run.run_id, e.error
            )));
        }
    }
    Ok(())
}

/// `ionfield sweep`.
pub fn sweep(args: &SweepArgs) -> Result<(), AppError> {
    let sweep = Sweep::load(&args.sweep).map_err(AppError::input)?;
    let runs = sweep.runs();
    let base = resolve_base(&sweep, &args.sweep)?;
    let (shard, shard_source) = match &args.shard {
        Some(s) => (Shard::parse(s).map_err(input)?, format!("--shard {s}")),
        None => Shard::from_env(|k| std::env::var(k).ok()).map_err(input)?,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out").join(&sweep.name));
    validate(&sweep, &base, &runs)?;
    // --list checks exactly what a sweep checks, then lists this worker's runs.
    if args.list {
        print!("{}", sweep.listing_of(shard));
        return Ok(());
    }

    let json_path = out.join("sweep.json");
    let json = sweep.json();
    if let Ok(existing) = std::fs::read_to_string(&json_path) {
        if existing != json {
            return Err(input(format!(
                "{}: belongs to a different sweep (or an older version of {}): its expansion differs. Fix: use another --out, or delete the folder to start this sweep afresh",
                json_path.display(),
                sweep.file
            )));
        }
    } else {
        write_atomic(&json_path, json.as_bytes()).map_err(AppError::input)?;
    }

    let mine: Vec<&Run> = runs.iter().filter(|r| shard.contains(r.index)).collect();
    eprintln!(
        "sweep {}: {} runs, this worker shard {}/{} ({shard_source}): {} runs → {}",
        sweep.name,
        runs.len(),
        shard.index,
        shard.count,
        mine.len(),
        out.display()
    );

    let interrupted = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&interrupted)).map_err(|e| {
            AppError::simulation(anyhow::anyhow!("cannot install a signal handler: {e}"))
        })?;
    }
    let exe = std::env::current_exe().map_err(|e| {
        AppError::input(anyhow::anyhow!(
            "cannot find the ionfield executable to run each sweep run ({e})"
        ))
    })?;
    let jobs = args.jobs.max(1) as usize;
    let threads = child_threads(jobs);
    let mut failed = Vec::new();
    let mut pending = mine.iter().enumerate();
    let mut running: Vec<Running> = Vec::new();
    let mut stop = false;
    let mut forwarded = false;
    loop {
        // Start runs while there is room, unless a signal came.
        while !stop && running.len() < jobs && !interrupted.load(Ordering::SeqCst) {
            let Some((k, run)) = pending.next() else {
                break;
            };
            let tag = format!("[{}/{}] {}", k + 1, mine.len(), run.run_id);
            let dir = out.join(&run.run_id);
            let Some((mut cmd, action)) = run_command(&exe, &base, &sweep, run, &dir, args) else {
                eprintln!("sweep: {tag} skipped (already complete)");
                continue;
            };
            if let Some(n) = threads {
                cmd.env("RAYON_NUM_THREADS", n.to_string());
            }
            eprintln!("sweep: {tag} starting: {}", run.sets().join(" "));
            let child = spawn_child(cmd).map_err(|e| {
                AppError::simulation(anyhow::anyhow!("cannot start the run {}: {e}", run.run_id))
            })?;
            running.push(Running {
                child,
                run_id: run.run_id.clone(),
                tag,
                action,
                dir,
                started: Instant::now(),
            });
        }
        // A signal to the sweep goes to every running child, once, as SIGINT.
        if !forwarded && interrupted.load(Ordering::SeqCst) {
            forwarded = true;
            stop = true;
            for r in &running {
                let _ = std::process::Command::new("kill")
                    .args(["-INT", &r.child.id().to_string()])
                    .status();
            }
        }
        // Collect the runs that ended.
        let mut k = 0;
        while k < running.len() {
            let Some(status) = running[k].child.try_wait().map_err(|e| {
                AppError::simulation(anyhow::anyhow!(
                    "cannot wait for {}: {e}",
                    running[k].run_id
                ))
            })?
            else {
                k += 1;
                continue;
            };
            let r = running.swap_remove(k);
            let wall = r.started.elapsed().as_secs_f64();
            match status.code() {
                Some(0) => eprintln!("sweep: {} {}: complete in {wall:.1} s", r.tag, r.action),
                Some(130) => {
                    eprintln!(
                        "sweep: {} interrupted after {wall:.1} s (checkpoint written in {})",
                        r.tag,
                        r.dir.display()
                    );
                    // Interrupted from outside the sweep: the others stop too.
                    interrupted.store(true, Ordering::SeqCst);
                }
                other => {
                    let how = match other {
                        Some(c) => format!("exit code {c}"),
                        None => KILLED_BY_SIGNAL.to_string(),
                    };
                    mark_failed(&r.dir, &how);
                    eprintln!(
                        "sweep: {} failed ({how}) after {wall:.1} s; continuing with the next run",
                        r.tag
                    );
                    failed.push(r.run_id);
                }
            }
        }
        let idle = running.is_empty();
        if idle && (stop || interrupted.load(Ordering::SeqCst)) {
            return Err(interrupted_error(&args.sweep, &shard));
        }
        if idle && pending.len() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if failed.is_empty() {
        eprintln!(
            "sweep {}: shard {}/{} done ({} runs). Collect with: ionfield gather {}",
            sweep.name,
            shard.index,
            shard.count,
            mine.len(),
            out.display()
        );
        Ok(())
    } else {
        Err(AppError::simulation(anyhow::anyhow!(
            "{} of {} runs of this shard failed: {} (their manifests say failed; rerunning the sweep runs them again from scratch, and resumes from its checkpoint a run that a signal ended)",
            failed.len(),
            mine.len(),
            failed.join(", ")
        )))
    }
}

/// How [`mark_failed`] records a child that a signal ended.
const KILLED_BY_SIGNAL: &str = "killed by a signal";

fn interrupted_error(sweep: &Path, shard: &Shard) -> AppError {
    AppError {
        code: EXIT_INTERRUPTED,
        error: anyhow::anyhow!(
            "sweep interrupted. Rerun the same command (ionfield sweep {} --shard {}/{} ...) to skip the finished runs and resume the interrupted one",
            sweep.display(),
            shard.index,
            shard.count
        ),
    }
}

/// A run of the sweep whose child process is running.
struct Running {
    child: std::process::Child,
    run_id: String,
    /// `[k/n] run_id`, for the log.
    tag: String,
    /// What was done (`ran`, `resumed from its checkpoint ...`), for the log.
    action: String,
    dir: PathBuf,
    started: Instant,
}

/// Starts a run's child process in its own process group, so a terminal's Ctrl-C reaches
/// it only through the sweep (which forwards it once as SIGINT), and tells it
/// (IONFIELD_SWEEP_CHILD) that a second signal is no reason to quit unsaved.
fn spawn_child(mut cmd: std::process::Command) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    cmd.env("IONFIELD_SWEEP_CHILD", "1").process_group(0);
    cmd.spawn()
}

/// CPU threads of each of `jobs` runs at once: RAYON_NUM_THREADS (or the machine's cores)
/// divided among them, at least 1; `None` (the child's own default) for one run at a time.
fn child_threads(jobs: usize) -> Option<usize> {
    if jobs <= 1 {
        return None;
    }
    let total = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1);
    Some((total / jobs).max(1))
}

/// The child command of `run` (in `dir`) and what it does, or `None` when the run is
/// already complete. A run that failed by itself (an error it recorded, or an exit code
/// other than an interruption) is run again from scratch: its checkpoint would replay the
/// failure with the configuration resolved then, not the sweep file and base as they are
/// now. One killed by a signal (out of memory, a lost node) resumes from its checkpoint.
fn run_command(
    exe: &Path,
    base: &Path,
    sweep: &Sweep,
    run: &Run,
    dir: &Path,
    args: &SweepArgs,
) -> Option<(std::process::Command, String)> {
    let manifest = gather::read_manifest(dir);
    let status = manifest
        .as_ref()
        .and_then(|m| m["status"].as_str().map(str::to_string));
    if status.as_deref() == Some("complete") {
        return None;
    }
    let has_checkpoint = dir.join(checkpoint::REL_PATH).is_file();
    let killed = manifest.as_ref().is_some_and(|m| {
        m["sweep_failure"]
            .as_str()
            .is_some_and(|s| s.ends_with(KILLED_BY_SIGNAL))
    });
    let failed_itself = status.as_deref() == Some("failed") && !killed;
    let mut cmd = std::process::Command::new(exe);
    let action = if has_checkpoint && !failed_itself {
        cmd.arg("resume").arg(dir);
        format!(
            "resumed from its checkpoint (status {})",
            status.as_deref().unwrap_or("unknown")
        )
    } else {
        cmd.arg("run").arg(base).arg("--out").arg(dir);
        // A rerun from scratch replaces what an earlier attempt left (its manifest,
        // partial outputs); the child deletes only ionfield's files there.
        if dir.exists() {
            cmd.arg("--overwrite");
        }
        for s in sweep.set.iter().cloned().chain(run.sets()) {
            cmd.arg("--set").arg(s);
        }
        cmd.arg("--backend").arg(match args.backend {
            Backend::Auto => "auto",
            Backend::Gpu => "gpu",
            Backend::Cpu => "cpu",
        });
        if has_checkpoint {
            "ran from scratch (previous status failed; its checkpoint is not resumed)".to_string()
        } else if status.is_some() {
            format!(
                "ran from scratch (previous status {}, no checkpoint)",
                status.as_deref().unwrap_or("")
            )
        } else {
            "ran".to_string()
        }
    };
    Some((cmd, action))
}

/// Makes the run's manifest say `failed` (a child killed by a signal or refused at start
/// may have left `running` or nothing).
fn mark_failed(dir: &Path, how: &str) {
    let path = dir.join("manifest.json");
    let mut doc = gather::read_manifest(dir).unwrap_or_else(|| serde_json::json!({}));
    if doc["status"].as_str() == Some("failed") {
        return;
    }
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("status".into(), "failed".into());
        obj.insert(
            "sweep_failure".into(),
            format!("ionfield sweep: the run's process ended with {how}").into(),
        );
    }
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    if let Err(e) = write_atomic(&path, text.as_bytes()) {
        eprintln!("sweep: cannot mark {} failed: {e}", path.display());
    }
}
