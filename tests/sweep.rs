//! `ionfield sweep` and `ionfield gather` end to end on the CPU backend and a 12³ grid:
//! sharded runs (by --shard and by Slurm array variables), the results table and plot, a
//! SIGINT to a shard and its requeue (finished runs skipped, the interrupted one resumed),
//! and a gather with a failed and a missing run.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SETS: &str = r#"set = ["grid.shape=[12,12,12]", "grid.voxel_um=53", "time.spin_up_s=10", "output.png16=false", "output.vti=false", "output.slices=[6]", "time.end_s=END"]"#;

fn sweep_file(dir: &Path, end_s: u32, axis: &str) {
    let text = format!(
        "name = \"dose\"\nbase = \"fe_fenton_cdt\"\n{}\n[axes]\n{axis}\n",
        SETS.replace("END", &end_s.to_string())
    );
    std::fs::write(dir.join("dose.toml"), text).unwrap();
}

fn ionfield(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ionfield"));
    cmd.args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", dir)
        .env_remove("RUST_LOG");
    for k in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_STEP",
        "SLURM_ARRAY_TASK_COUNT",
        "JOB_COMPLETION_INDEX",
        "IONFIELD_SHARD_COUNT",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("ionfield starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    out
}

/// Starts `ionfield sweep` (`args`) in `dir` in the background (no shard variables),
/// waits until every run of `ids` has started its time loop (timeseries.csv is written at
/// t = 0), then a little longer, and sends it SIGINT; returns its output.
fn interrupt_once_started(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    ids: &[String],
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ionfield"));
    cmd.args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", dir)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let out = dir.join("o");
    let t = Instant::now();
    while !ids
        .iter()
        .all(|id| out.join(id).join("timeseries.csv").exists())
    {
        assert!(
            t.elapsed() < Duration::from_secs(180),
            "{ids:?} did not start"
        );
        assert!(child.try_wait().unwrap().is_none(), "the sweep ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(400));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    child.wait_with_output().unwrap()
}

/// The run ids of `dose.toml` in `dir`, in index order (`ionfield sweep --list`: a header,
/// then `<index> <run_id> ...` per run).
fn run_ids(dir: &Path) -> Vec<String> {
    text(&ionfield(dir, &["sweep", "dose.toml", "--list"], &[]).stdout)
        .lines()
        .skip(1)
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn sharded_dose_sweep_gathers_a_table_and_a_plot_and_reports_failed_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sweep_file(
        dir,
        120,
        "\"dosing[0].amount_mm\" = { log = [0.01, 2.0, 3] }",
    );
    let list = ionfield(dir, &["sweep", "dose.toml", "--list"], &[]);
    assert_eq!(list.status.code(), Some(0));
    let listing = text(&list.stdout);
    let ids: Vec<String> = listing
        .lines()
        .skip(1)
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3, "{listing}");
    assert!(listing
        .lines()
        .nth(3)
        .unwrap()
        .ends_with("dosing[0].amount_mm=2.0"));

    // Shard 0/2 by flag (runs 0 and 2), shard 1/2 from a Slurm array --array=3-5:2 (task 5).
    let a = ionfield(
        dir,
        &[
            "sweep",
            "dose.toml",
            "--shard",
            "0/2",
            "--out",
            "o",
            "--backend",
            "cpu",
        ],
        &[],
    );
    assert_eq!(a.status.code(), Some(0), "{}", text(&a.stderr));
    let slurm = [
        ("SLURM_ARRAY_TASK_ID", "5"),
        ("SLURM_ARRAY_TASK_MIN", "3"),
        ("SLURM_ARRAY_TASK_STEP", "2"),
        ("SLURM_ARRAY_TASK_COUNT", "2"),
    ];
    let b = ionfield(
        dir,
        &["sweep", "dose.toml", "--out", "o", "--backend", "cpu"],
        &slurm,
    );
    let b_err = text(&b.stderr);
    assert_eq!(b.status.code(), Some(0), "{b_err}");
    assert!(b_err.contains("shard 1/2 (Slurm array task 5"), "{b_err}");
    assert!(
        b_err.contains(&format!("{} ran: complete", ids[1])),
        "{b_err}"
    );
    assert!(
        !b_err.contains(&ids[0]),
        "shard 1/2 ran only run 1: {b_err}"
    );
    let out = dir.join("o");
    for id in &ids {
        assert_eq!(manifest(&out.join(id))["status"], "complete");
    }
    assert!(out.join("sweep.json").is_file());

    let g = ionfield(dir, &["gather", "o"], &[]);
    assert_eq!(g.status.code(), Some(0), "{}", text(&g.stderr));
    assert!(text(&g.stdout).contains("3 runs: 3 complete, 0 failed, 0 missing"));
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    eprintln!("{csv}");
    let head: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(
        head[..4],
        ["run_id", "index", "status", "dosing[0].amount_mm"]
    );
    for m in [
        "final_viable_fraction_tumour",
        "final_mean_viab_tumour",
        "peak_OH_mM_tumour",
        "auc_OH_mM_s_tumour",
        "mean_pH_tumour_final",
        "wall_time_s",
    ] {
        assert!(head.contains(&m), "{m} in {head:?}");
    }
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let mut viable = Vec::new();
    let mut peak = Vec::new();
    for (i, line) in lines[1..].iter().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[0], ids[i]);
        assert_eq!(cells[2], "complete");
        for m in ["final_mean_viab_tumour", "peak_OH_mM_tumour", "wall_time_s"] {
            let v: f64 = cells[col(m)].parse().unwrap();
            assert!(v.is_finite(), "{m} = {v}");
        }
        viable.push(cells[col("final_mean_viab_tumour")].parse::<f64>().unwrap());
        peak.push(cells[col("peak_OH_mM_tumour")].parse::<f64>().unwrap());
    }
    // More iron: at least as much OH· and no more viable tissue.
    assert!(viable.windows(2).all(|w| w[1] <= w[0]), "{viable:?}");
    assert!(peak.windows(2).all(|w| w[1] > w[0]), "{peak:?}");
    let png = out.join("plots/final_viable_fraction_tumour_vs_dosing_0_.amount_mm.png");
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    // The same dose-response chart as SVG (the dose axis title as text) and PDF.
    let svg = std::fs::read_to_string(png.with_extension("svg")).unwrap();
    assert!(
        svg.contains("</text>") && svg.contains("<polyline"),
        "vector SVG"
    );
    assert!(std::fs::read(png.with_extension("pdf"))
        .unwrap()
        .starts_with(b"%PDF-"));

    // One run failed, one folder gone: both reported, the table still written.
    let m1 = out.join(&ids[1]).join("manifest.json");
    let failed = std::fs::read_to_string(&m1)
        .unwrap()
        .replace("\"status\": \"complete\"", "\"status\": \"failed\"");
    std::fs::write(&m1, failed).unwrap();
    std::fs::remove_dir_all(out.join(&ids[2])).unwrap();
    let g = ionfield(dir, &["gather", "o", "--metric", "peak_OH_mM_tumour"], &[]);
    let err = text(&g.stderr);
    assert_eq!(g.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("run {}: failed (manifest status failed)", ids[1])),
        "{err}"
    );
    assert!(err.contains(&format!("run {}: missing", ids[2])), "{err}");
    assert!(text(&g.stdout).contains("3 runs: 1 complete, 1 failed, 1 missing"));
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[2].starts_with(&format!("{},1,failed,0.", ids[1])));
    assert!(lines[2].ends_with(",,,,,,"), "{}", lines[2]);
    assert!(lines[3].starts_with(&format!("{},2,missing,2.0,", ids[2])));
    assert!(out
        .join("plots/peak_OH_mM_tumour_vs_dosing_0_.amount_mm.png")
        .is_file());

    // The failed run, without a checkpoint, is cleared and run again from scratch.
    let again = ionfield(
        dir,
        &[
            "sweep",
            "dose.toml",
            "--shard",
            "1/2",
            "--out",
            "o",
            "--backend",
            "cpu",
        ],
        &[],
    );
    let err = text(&again.stderr);
    assert_eq!(again.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "{} ran from scratch (previous status failed, no checkpoint): complete",
            ids[1]
        )),
        "{err}"
    );
    assert_eq!(manifest(&out.join(&ids[1]))["status"], "complete");
}

#[test]
fn interrupted_shard_is_requeued_skipping_finished_runs_and_resuming_the_interrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sweep_file(dir, 300, "\"dosing[0].amount_mm\" = [0.5, 1.0]");
    let ids = run_ids(dir);
    let out = dir.join("o");
    let args = ["sweep", "dose.toml", "--out", "o", "--backend", "cpu"];
    // Interrupted once the second run is in its time loop.
    let first = interrupt_once_started(dir, &args, &[], &ids[1..2]);
    let err = text(&first.stderr);
    assert_eq!(first.status.code(), Some(130), "{err}");
    assert!(err.contains(&format!("{} interrupted", ids[1])), "{err}");
    let run0 = manifest(&out.join(&ids[0]));
    assert_eq!(run0["status"], "complete");
    let run1 = manifest(&out.join(&ids[1]));
    assert_eq!(run1["status"], "interrupted", "{err}");
    let stopped_at = run1["provenance"]["checkpoints_s"][0].as_f64().unwrap();
    assert!(out.join(&ids[1]).join("checkpoint/state.ifck").is_file());

    // Requeued: run 0 skipped, run 1 resumed from its checkpoint.
    let second = ionfield(dir, &args, &[]);
    let err = text(&second.stderr);
    assert_eq!(second.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("{} skipped (already complete)", ids[0])),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{} resumed from its checkpoint (status interrupted): complete",
            ids[1]
        )),
        "{err}"
    );
    assert_eq!(
        manifest(&out.join(&ids[0])),
        run0,
        "the finished run was not touched"
    );
    let run1 = manifest(&out.join(&ids[1]));
    assert_eq!(run1["status"], "complete");
    assert_eq!(
        run1["provenance"]["resumed_from_s"][0].as_f64(),
        Some(stopped_at)
    );
    assert_eq!(
        run1["provenance"]["command_lines"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    eprintln!("interrupted at model time {stopped_at} s of 300 s; resumed from there");
}

/// `--jobs 2`: two runs at once (sharing the machine, as several small runs share one GPU),
/// the third waits; a SIGINT to the sweep checkpoints both running runs and starts no
/// other; the requeued sweep resumes both and runs the third.
#[test]
fn jobs_run_at_once_and_a_signal_checkpoints_every_running_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sweep_file(dir, 1800, "\"dosing[0].amount_mm\" = [0.25, 0.5, 1.0]");
    let ids = run_ids(dir);
    assert_eq!(ids.len(), 3);
    let out = dir.join("o");
    let args = [
        "sweep",
        "dose.toml",
        "--out",
        "o",
        "--backend",
        "cpu",
        "--jobs",
        "2",
    ];
    // Interrupted once both first runs are in their time loops.
    let first = interrupt_once_started(dir, &args, &[("RAYON_NUM_THREADS", "2")], &ids[..2]);
    let err = text(&first.stderr);
    assert_eq!(first.status.code(), Some(130), "{err}");
    for id in &ids[..2] {
        assert_eq!(
            manifest(&out.join(id))["status"],
            "interrupted",
            "{id}: {err}"
        );
        assert!(out.join(id).join("checkpoint/state.ifck").is_file(), "{id}");
    }
    assert!(
        !out.join(&ids[2]).exists(),
        "the third run must not start: {err}"
    );

    // Requeued with --jobs 2: both resumed, the third run from scratch.
    let second = ionfield(dir, &args, &[]);
    let err = text(&second.stderr);
    assert_eq!(second.status.code(), Some(0), "{err}");
    for id in &ids[..2] {
        assert!(
            err.contains(&format!(
                "{id} resumed from its checkpoint (status interrupted): complete"
            )),
            "{err}"
        );
    }
    assert!(err.contains(&format!("{} ran: complete", ids[2])), "{err}");
    for id in &ids {
        assert_eq!(manifest(&out.join(id))["status"], "complete", "{id}");
    }
}

#[test]
fn a_bad_axis_key_fails_before_any_run_naming_the_sweep_file_and_axis() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sweep_file(
        dir,
        120,
        "\"dosing[0].amount_mm\" = [1.0]\n\"parameters.k_nonexistent.value\" = [1e-3]",
    );
    let r = ionfield(
        dir,
        &["sweep", "dose.toml", "--out", "o", "--backend", "cpu"],
        &[],
    );
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(
        err.contains("dose.toml: axes.\"parameters.k_nonexistent.value\""),
        "{err}"
    );
    assert!(err.contains("Fix:"), "{err}");
    assert!(!dir.join("o").exists(), "nothing ran");
    let r = ionfield(dir, &["sweep", "dose.toml", "--shard", "3/2"], &[]);
    assert_eq!(r.status.code(), Some(2));
    let r = ionfield(
        dir,
        &["sweep", "dose.toml"],
        &[("JOB_COMPLETION_INDEX", "1")],
    );
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("IONFIELD_SHARD_COUNT"));
}

#[test]
fn failing_runs_are_marked_failed_and_the_sweep_continues_then_exits_1() {
    // Every child fails at start (no adapter of that name): recorded, the next run tried.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sweep_file(dir, 120, "\"dosing[0].amount_mm\" = [0.5, 1.0]");
    let r = ionfield(
        dir,
        &["sweep", "dose.toml", "--out", "o", "--backend", "gpu"],
        &[("IONFIELD_ADAPTER", "no-such-adapter")],
    );
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(
        err.contains("[1/2]") && err.contains("failed (exit code 2)"),
        "{err}"
    );
    assert!(
        err.contains("[2/2]"),
        "the sweep went on after the failure: {err}"
    );
    assert!(err.contains("2 of 2 runs of this shard failed"), "{err}");
    let g = ionfield(dir, &["gather", "o"], &[]);
    assert_eq!(g.status.code(), Some(0));
    assert!(text(&g.stdout).contains("2 runs: 0 complete, 2 failed"));
    assert_eq!(
        text(&g.stderr)
            .matches("failed (manifest status failed)")
            .count(),
        2
    );
}

/// Plants, in the sweep's only run folder, a run stopped at 60 s with a checkpoint whose
/// manifest then says `failed` with `extra` (a failure the run recorded, or one the sweep
/// recorded for a signal).
fn plant_failed_run_with_checkpoint(dir: &Path, id: &str, extra: (&str, &str)) {
    let sets: Vec<String> = SETS
        .replace("END", "120")
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    let run_dir = format!("o/{id}");
    let mut args = vec![
        "run",
        "fe_fenton_cdt",
        "--out",
        &run_dir,
        "--backend",
        "cpu",
    ];
    for s in &sets {
        args.extend(["--set", s.as_str()]);
    }
    args.extend(["--set", "dosing[0].amount_mm=0.5", "--stop-at", "60"]);
    let r = ionfield(dir, &args, &[]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    let path = dir.join(&run_dir);
    assert!(path.join("checkpoint/state.ifck").is_file());
    let mut m = manifest(&path);
    m["status"] = "failed".into();
    m[extra.0] = extra.1.into();
    std::fs::write(
        path.join("manifest.json"),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
}

#[test]
fn a_failed_run_is_rerun_from_scratch_and_one_a_signal_ended_is_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sweep_file(dir, 120, "\"dosing[0].amount_mm\" = [0.5]");
    let list = text(&ionfield(dir, &["sweep", "dose.toml", "--list"], &[]).stdout);
    let id = list
        .lines()
        .nth(1)
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_string();
    let args = ["sweep", "dose.toml", "--out", "o", "--backend", "cpu"];

    // Failed by itself: its checkpoint would replay the failure with the old configuration.
    plant_failed_run_with_checkpoint(dir, &id, ("failure", "planted: a non-finite value"));
    let r = ionfield(dir, &args, &[]);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "{id} ran from scratch (previous status failed; its checkpoint is not resumed): complete"
        )),
        "{err}"
    );
    let m = manifest(&dir.join("o").join(&id));
    assert_eq!(m["status"], "complete");
    assert!(
        m["provenance"]["resumed_from_s"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{m}"
    );

    // Ended by a signal (the sweep's record): resumed from its checkpoint.
    std::fs::remove_dir_all(dir.join("o")).unwrap();
    plant_failed_run_with_checkpoint(
        dir,
        &id,
        (
            "sweep_failure",
            "ionfield sweep: the run's process ended with killed by a signal",
        ),
    );
    let r = ionfield(dir, &args, &[]);
    let err = text(&r.stderr);
    assert_eq!(r.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "{id} resumed from its checkpoint (status failed): complete"
        )),
        "{err}"
    );
    let m = manifest(&dir.join("o").join(&id));
    assert_eq!(m["status"], "complete");
    let resumed = m["provenance"]["resumed_from_s"][0].as_f64().unwrap();
    assert!((60.0..120.0).contains(&resumed), "{resumed}");
}
