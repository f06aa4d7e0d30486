//! Checkpoints and resume (issue 6 item 6): a run stopped part-way and resumed writes
//! byte-identical files to an uninterrupted run, on the CPU backend and on the wgpu path
//! (lavapipe); SIGINT leaves only complete files, all listed in the manifest, and a
//! checkpoint that resumes.
//!
//! Every run is the built-in default (Fe Fenton CDT with spin-up, doses, reactions,
//! viability) on a 12³ grid of 53 µm voxels.

mod common;

use common::{ionfield, manifest};
use ionfield::output::manifest::sha256_hex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The default scenario on a small grid: spin-up, a dose at t = 0, outputs every 60 s.
fn small(end_s: u32, dt_s: f64) -> Vec<String> {
    [
        "grid.shape=[12,12,12]".to_string(),
        "grid.voxel_um=53".into(),
        format!("time.end_s={end_s}"),
        format!("time.dt_s={dt_s}"),
        "time.output_interval_s=60".into(),
        "time.spin_up_s=20".into(),
        "output.slices=[6]".into(),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_string(), s])
    .collect()
}

fn args<'a>(head: &[&'a str], sets: &'a [String]) -> Vec<&'a str> {
    head.iter()
        .copied()
        .chain(sets.iter().map(String::as_str))
        .collect()
}

/// Every file under `dir` (relative path → bytes), except `manifest.json`, which records
/// wall times and command lines.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("readable folder") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).expect("readable file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out.remove("manifest.json");
    out
}

/// The two folders hold the same files with the same bytes.
fn assert_identical(full: &Path, resumed: &Path) {
    let (a, b) = (files(full), files(resumed));
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "the runs wrote different files");
    let differing: Vec<&String> = a.keys().filter(|k| a[*k] != b[*k]).collect();
    assert!(
        differing.is_empty(),
        "{} of {} files differ after resume, e.g. {:?}",
        differing.len(),
        a.len(),
        &differing[..differing.len().min(5)]
    );
    let npy = a.keys().filter(|k| k.ends_with(".npy")).count();
    assert!(npy >= 20, "too few fields compared: {npy}");
    eprintln!("{} files byte-identical ({npy} .npy)", a.len());
}

/// Runs the default in full and as stop + resume, compares every file.
fn stop_and_resume(backend: &str, extra: &[&str], resumed_from_s: Option<f64>) {
    stop_and_resume_with(backend, extra, resumed_from_s, &[]);
}

/// As [`stop_and_resume`], with more `--set`s; `resumed_from_s = None` accepts any
/// resume time at or after the stop asked for.
fn stop_and_resume_with(
    backend: &str,
    extra: &[&str],
    resumed_from_s: Option<f64>,
    more_sets: &[&str],
) {
    let dir = tempfile::tempdir().unwrap();
    let mut sets = small(120, 0.5);
    for s in more_sets {
        sets.push("--set".into());
        sets.push(s.to_string());
    }
    let t = Instant::now();
    let full = ionfield(
        dir.path(),
        &args(
            &[
                "run",
                "fe_fenton_cdt",
                "--backend",
                backend,
                "--out",
                "full",
            ],
            &sets,
        ),
    );
    assert_eq!(full.code, 0, "{}", full.stderr);
    let full_s = t.elapsed().as_secs_f64();

    let mut head = vec![
        "run",
        "fe_fenton_cdt",
        "--backend",
        backend,
        "--out",
        "part",
    ];
    head.extend_from_slice(extra);
    let part = ionfield(dir.path(), &args(&head, &sets));
    assert_eq!(part.code, 0, "--stop-at exits 0: {}", part.stderr);
    assert!(
        part.stderr.contains("ionfield resume part"),
        "the resume command is printed: {}",
        part.stderr
    );
    let m = manifest(&dir.path().join("part"));
    assert_eq!(m["status"], "stopped");
    let listed: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(listed.contains(&"checkpoint/state.ifck"), "{listed:?}");
    assert!(!dir.path().join("part/fields/O2_t0000120.0s.npy").exists());

    let t = Instant::now();
    let resumed = ionfield(dir.path(), &["resume", "part"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    eprintln!(
        "{backend}: full run {full_s:.1} s, stop + resume ({:.1} s for the resume)",
        t.elapsed().as_secs_f64()
    );
    let m = manifest(&dir.path().join("part"));
    assert_eq!(m["status"], "complete");
    let from = &m["provenance"]["resumed_from_s"];
    match resumed_from_s {
        Some(t) => assert_eq!(*from, serde_json::json!([t])),
        None => assert_eq!(from.as_array().map(Vec::len), Some(1), "{from}"),
    }
    assert_eq!(
        m["provenance"]["command_lines"].as_array().unwrap().len(),
        2
    );
    assert!(
        !dir.path().join("part/checkpoint").exists(),
        "a completed run deletes its checkpoint and the emptied checkpoint/ folder"
    );
    assert_identical(&dir.path().join("full"), &dir.path().join("part"));
}

#[test]
fn resume_is_bit_identical_on_the_cpu_backend() {
    // Batches of 64 steps of 0.5 s from each stop: the first boundary at or after 50 s is
    // the stop at 60 s (64 + 56 steps).
    stop_and_resume("cpu", &["--stop-at", "50"], Some(60.0));
}

/// The coupled scheme: its step size and model time travel in the checkpoint, so the
/// resumed run takes the same steps.
#[test]
fn resume_is_bit_identical_with_the_coupled_scheme() {
    stop_and_resume_with(
        "cpu",
        &["--stop-at", "30"],
        None,
        &["time.scheme=coupled", "time.dt_s=0.05"],
    );
}

/// The coupled scheme on the device: the step control and the state's rounding residual
/// (the f32 state is a double-f32 value) travel in the checkpoint.
#[test]
fn resume_is_bit_identical_with_the_coupled_scheme_on_the_gpu() {
    if std::env::var("IONFIELD_SKIP_GPU_TESTS").as_deref() == Ok("1") {
        eprintln!("SKIPPED GPU part: IONFIELD_SKIP_GPU_TESTS=1");
        return;
    }
    stop_and_resume_with(
        "gpu",
        &["--stop-at", "30"],
        None,
        &["time.scheme=coupled", "time.dt_s=0.05"],
    );
}

#[test]
fn resume_is_bit_identical_on_the_gpu_backend() {
    if std::env::var("IONFIELD_SKIP_GPU_TESTS").as_deref() == Ok("1") {
        eprintln!("SKIPPED GPU part: IONFIELD_SKIP_GPU_TESTS=1");
        return;
    }
    // Checkpoints at 32 s and 60 s, then the stop at 92 s (60 + 64 · 0.5 s).
    stop_and_resume(
        "gpu",
        &["--checkpoint-every", "30", "--stop-at", "70"],
        Some(92.0),
    );
}

/// Starts `ionfield` in the background.
fn spawn(dir: &Path, args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_ionfield"))
        .args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", dir)
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the ionfield binary starts")
}

#[test]
fn sigint_leaves_complete_listed_files_and_a_checkpoint_that_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let sets = small(300, 1.0);
    let out: PathBuf = dir.path().join("run");
    let mut child = spawn(
        dir.path(),
        &args(
            &["run", "fe_fenton_cdt", "--backend", "cpu", "--out", "run"],
            &sets,
        ),
    );
    // Wait for the first summary (t = 0, after the spin-up), then interrupt.
    let t = Instant::now();
    while !out.join("timeseries.csv").exists() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no output after 120 s"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let result = child.wait_with_output().expect("the run ends");
    let stderr = String::from_utf8_lossy(&result.stderr);
    eprintln!("SIGINT → exit in {:.2} s", sent.elapsed().as_secs_f64());
    assert_eq!(result.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("ionfield resume run"), "{stderr}");

    // Every file is complete and listed with its size and checksum.
    let m = manifest(&out);
    assert_eq!(m["status"], "interrupted");
    let listed: BTreeMap<String, (u64, String)> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                (
                    f["bytes"].as_u64().unwrap(),
                    f["sha256"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    let on_disk = files(&out);
    assert_eq!(
        on_disk.keys().collect::<Vec<_>>(),
        listed.keys().collect::<Vec<_>>(),
        "files on disk and in the manifest differ (a .tmp file would show here)"
    );
    for (path, bytes) in &on_disk {
        let (n, sha) = &listed[path];
        assert_eq!(bytes.len() as u64, *n, "{path}: size");
        assert_eq!(&sha256_hex(bytes), sha, "{path}: checksum");
    }
    assert!(listed.contains_key("checkpoint/state.ifck"));
    let stopped_at = m["provenance"]["checkpoints_s"][0].as_f64().unwrap();
    assert!(
        stopped_at < 300.0,
        "the run was interrupted part-way (checkpoint at {stopped_at} s)"
    );

    let resumed = ionfield(dir.path(), &["resume", "run"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let full = ionfield(
        dir.path(),
        &args(
            &["run", "fe_fenton_cdt", "--backend", "cpu", "--out", "full"],
            &sets,
        ),
    );
    assert_eq!(full.code, 0, "{}", full.stderr);
    assert_identical(&dir.path().join("full"), &out);
}

#[test]
fn resume_refuses_a_folder_without_checkpoint_or_with_a_changed_config() {
    let dir = tempfile::tempdir().unwrap();
    let r = ionfield(dir.path(), &["resume", "nowhere"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("checkpoint") && r.stderr.contains("Fix:"),
        "{}",
        r.stderr
    );

    let sets = small(120, 0.5);
    let part = ionfield(
        dir.path(),
        &args(
            &[
                "run",
                "fe_fenton_cdt",
                "--backend",
                "cpu",
                "--out",
                "p",
                "--stop-at",
                "10",
            ],
            &sets,
        ),
    );
    assert_eq!(part.code, 0, "{}", part.stderr);
    let cfg = dir.path().join("p/config.resolved.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("end_s = 120", "end_s = 240")).unwrap();
    let r = ionfield(dir.path(), &["resume", "p"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("config.resolved.toml") && r.stderr.contains("changed"),
        "{}",
        r.stderr
    );
    std::fs::write(&cfg, text).unwrap();
    // A damaged checkpoint is refused, naming the check that failed.
    let ck = dir.path().join("p/checkpoint/state.ifck");
    let mut bytes = std::fs::read(&ck).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&ck, bytes).unwrap();
    let r = ionfield(dir.path(), &["resume", "p"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("SHA-256"), "{}", r.stderr);
}
