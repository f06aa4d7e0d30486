//! Issue 18, run/resume/sweep integrity: hostile or accidental input to `run`, `resume` and
//! `sweep` is refused with exit 2 and a message naming the culprit, never a crash, a hang
//! or silently different numbers. Every case runs the real binary on a tiny CPU scenario.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_in(dir: &Path, mut cmd: Command) -> Out {
    let o = cmd
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", dir)
        .env_remove("RUST_LOG")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("IONFIELD_ADAPTER")
        .output()
        .expect("the ionfield binary starts");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "panicked:\n{stderr}");
    Out {
        code: o
            .status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {:?}\n{stderr}", o.status)),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr,
    }
}

fn ionfield(dir: &Path, args: &[&str]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ionfield"));
    cmd.args(args);
    run_in(dir, cmd)
}

/// The default scenario (spin-up, a dose, reactions) on an 8³ grid: `--stop-at 10` stops at
/// the first batch boundary (step 64 of 240).
const SMALL: &[&str] = &[
    "--backend",
    "cpu",
    "--set",
    "grid.shape=[8,8,8]",
    "--set",
    "grid.voxel_um=80",
    "--set",
    "time.end_s=120",
    "--set",
    "time.dt_s=0.5",
    "--set",
    "time.output_interval_s=60",
    "--set",
    "time.spin_up_s=10",
    "--set",
    "output.slices=[4]",
];

fn run_small(dir: &Path, out: &str, extra: &[&str]) -> Out {
    let mut args = vec!["run", "fe_fenton_cdt", "--out", out];
    args.extend(SMALL);
    args.extend(extra);
    ionfield(dir, &args)
}

fn refused(what: &str, o: &Out, needles: &[&str]) {
    assert_eq!(o.code, 2, "{what}: expected exit 2\n{}", o.stderr);
    for n in needles {
        assert!(o.stderr.contains(n), "{what}: no `{n}` in\n{}", o.stderr);
    }
}

#[test]
fn an_edited_checkpoint_header_is_refused() {
    let t = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = run_small(dir, "p", &["--stop-at", "10"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let ck = dir.join("p/checkpoint/state.ifck");
    let good = std::fs::read(&ck).unwrap();
    // Same-length edits of the JSON header: the step, the doses done, the stops done.
    for key in ["\"step\":", "\"doses_done\":", "\"stops_done\":"] {
        let at = good
            .windows(key.len())
            .position(|w| w == key.as_bytes())
            .unwrap_or_else(|| panic!("{key} in the header"));
        // The number's last digit, so the header stays valid JSON.
        let mut end = at + key.len();
        while good[end + 1].is_ascii_digit() {
            end += 1;
        }
        let mut bad = good.clone();
        let d = &mut bad[end];
        *d = if *d == b'0' { b'1' } else { b'0' };
        std::fs::write(&ck, &bad).unwrap();
        let r = ionfield(dir, &["resume", "p"]);
        refused(key, &r, &["state.ifck", "header fails its SHA-256"]);
    }
    std::fs::write(&ck, &good).unwrap();
    let r = ionfield(dir, &["resume", "p"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    eprintln!("header edits: {:.1} s", t.elapsed().as_secs_f64());
}

/// A diffusion-only scenario with its tumour from a mask file.
const MASKED: &str = r#"
name = "masked"
[grid]
shape = [8, 8, 8]
voxel_um = 10.0
[time]
dt_s = 1.0
end_s = 200.0
output_interval_s = 100.0
[tissues.tumour]
mask = "masks/tumour.npy"
[species.O2]
diffusion_um2_per_s = 2000.0
"#;

fn npy_mask(inside: &[usize]) -> Vec<u8> {
    let dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (8, 8, 8), }\n";
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    let mut data = vec![0u8; 512];
    for &i in inside {
        data[i] = 1;
    }
    out.extend_from_slice(&data);
    out
}

#[test]
fn resume_refuses_a_changed_or_missing_input_file_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("masks")).unwrap();
    std::fs::write(dir.join("s.toml"), MASKED).unwrap();
    let mask = dir.join("masks/tumour.npy");
    let original = npy_mask(&[0, 1, 2, 200]);
    std::fs::write(&mask, &original).unwrap();
    let o = ionfield(
        dir,
        &[
            "run",
            "s.toml",
            "--backend",
            "cpu",
            "--out",
            "p",
            "--stop-at",
            "10",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    // Same size, other voxels: the scenario still loads, so only the checksum can tell.
    std::fs::write(&mask, npy_mask(&[0, 1, 2, 300])).unwrap();
    let r = ionfield(dir, &["resume", "p"]);
    refused("changed mask", &r, &["masks/tumour.npy", "changed"]);
    std::fs::remove_file(&mask).unwrap();
    let r = ionfield(dir, &["resume", "p"]);
    refused("missing mask", &r, &["masks/tumour.npy", "cannot read"]);
    std::fs::write(&mask, &original).unwrap();
    let r = ionfield(dir, &["resume", "p"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn resume_removes_temp_files_left_by_a_killed_write() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = run_small(dir, "p", &["--stop-at", "10"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let planted = [
        dir.join("p/manifest.json.tmp-4194301"),
        dir.join("p/checkpoint/state.ifck.tmp-77"),
        dir.join("p/.ionfield-write-probe-12"),
    ];
    for p in &planted {
        std::fs::write(p, b"half written").unwrap();
    }
    std::fs::write(dir.join("p/notes.tmp"), b"not ours").unwrap();
    let r = ionfield(dir, &["resume", "p"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for p in &planted {
        assert!(!p.exists(), "{} is still there", p.display());
    }
    assert!(
        dir.join("p/notes.tmp").exists(),
        "a file not ours was removed"
    );
}

#[test]
fn a_run_folder_belongs_to_one_run() {
    let t = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = run_small(dir, "a", &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let before = std::fs::read(dir.join("a/manifest.json")).unwrap();

    // Another run into a finished run's folder.
    let r = run_small(dir, "a", &["--set", "time.end_s=60"]);
    refused(
        "finished run",
        &r,
        &["--out a", "holds another run", "--overwrite"],
    );
    assert_eq!(
        std::fs::read(dir.join("a/manifest.json")).unwrap(),
        before,
        "the refused run touched the folder"
    );

    // --overwrite replaces ionfield's files and keeps the user's.
    std::fs::write(dir.join("a/notes.txt"), b"mine").unwrap();
    std::fs::write(dir.join("a/png/stale.png"), b"old").unwrap();
    let r = run_small(dir, "a", &["--set", "time.end_s=60", "--overwrite"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("kept 1 entry"), "{}", r.stderr);
    assert_eq!(std::fs::read(dir.join("a/notes.txt")).unwrap(), b"mine");
    assert!(!dir.join("a/png/stale.png").exists());
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("a/manifest.json")).unwrap()).unwrap();
    assert_eq!(m["status"], "complete");
    for f in m["files"].as_array().unwrap() {
        let rel = f["path"].as_str().unwrap();
        assert!(
            !rel.contains("t0000120"),
            "a file of the old run is listed: {rel}"
        );
    }

    // A folder with an unfinished run points to resume.
    let o = run_small(dir, "b", &["--stop-at", "10"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r = run_small(dir, "b", &[]);
    refused("unfinished run", &r, &["ionfield resume b", "--overwrite"]);

    // Any other files.
    std::fs::create_dir(dir.join("c")).unwrap();
    std::fs::write(dir.join("c/data.csv"), b"1,2").unwrap();
    let r = run_small(dir, "c", &[]);
    refused("user files", &r, &["not empty", "data.csv", "--overwrite"]);

    // A regular file.
    std::fs::write(dir.join("f"), b"x").unwrap();
    let r = run_small(dir, "f", &[]);
    refused(
        "--out a file",
        &r,
        &["--out f", "is a file", "must be a folder"],
    );
    assert!(!r.stderr.contains("os error 17"), "{}", r.stderr);
    eprintln!("folder ownership: {:.1} s", t.elapsed().as_secs_f64());
}

fn fe_dose() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs/sweeps/fe_dose.toml")
        .display()
        .to_string()
}

#[test]
fn sweep_list_shows_only_its_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = fe_dose();
    let o = ionfield(tmp.path(), &["sweep", &sweep, "--list", "--shard", "0/3"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let indices: Vec<&str> = o
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(indices, ["0", "3", "6", "9"], "{}", o.stdout);
    assert!(o.stdout.lines().next().unwrap().contains("shard 0/3"));
}

fn sweep_file(dir: &Path, name: &str, body: &str) -> String {
    let text = format!(
        "name = \"t\"\n{body}\n",
        body = body.replace("BASE", "base = \"fe_fenton_cdt\"")
    );
    std::fs::write(dir.join(name), text).unwrap();
    name.to_string()
}

#[test]
fn sweep_list_validates_like_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (name, body, needle) in [
        (
            "key.toml",
            "BASE\n[axes]\n\"time.dtt_s\" = [1.0, 2.0]\n",
            "time.dtt_s",
        ),
        (
            "base.toml",
            "base = \"no_such_preset\"\n[axes]\n\"time.dt_s\" = [1.0]\n",
            "no_such_preset",
        ),
        (
            "dt.toml",
            "BASE\n[axes]\n\"time.dt_s\" = [-1.0]\n",
            "time.dt_s",
        ),
    ] {
        let f = sweep_file(dir, name, body);
        let listed = ionfield(dir, &["sweep", &f, "--list"]);
        let swept = ionfield(dir, &["sweep", &f, "--out", "o", "--backend", "cpu"]);
        refused(name, &listed, &[name, needle]);
        assert_eq!(swept.code, 2, "{}", swept.stderr);
        let last = |s: &str| s.lines().last().unwrap_or("").to_string();
        assert_eq!(last(&listed.stderr), last(&swept.stderr), "{name}");
        assert!(listed.stdout.is_empty(), "{name}: listed {}", listed.stdout);
    }
}

#[test]
fn huge_sweeps_are_refused_before_expanding() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (name, body) in [
        (
            "linear.toml",
            "BASE\n[axes]\n\"time.dt_s\" = { linear = [0.1, 1, 100000000000] }\n",
        ),
        (
            "three.toml",
            "BASE\n[axes]\n\"time.dt_s\" = { linear = [0.1, 1, 100000] }\n\"time.end_s\" = { linear = [10, 20, 100000] }\n\"grid.voxel_um\" = { linear = [10, 20, 100000] }\n",
        ),
        (
            "lhs.toml",
            "BASE\nmode = \"lhs\"\nsamples = 1000000000000\n[axes]\n\"time.dt_s\" = { linear = [0.1, 1] }\n",
        ),
    ] {
        let f = sweep_file(dir, name, body);
        for list in [true, false] {
            let started = Instant::now();
            let mut args = vec!["sweep", f.as_str(), "--out", "o"];
            if list {
                args.push("--list");
            }
            let o = ionfield(dir, &args);
            let took = started.elapsed();
            refused(name, &o, &[name, "100000 runs"]);
            assert!(took < Duration::from_secs(10), "{name}: took {took:?}");
        }
    }
}

#[test]
fn the_cpu_memory_check_respects_ulimit_v() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // 500³ voxels of the default scenario need tens of GiB; 3 GB of address space is
    // far less. Without the limit in the check the run would abort allocating.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -v 3000000 && exec \"$0\" run --backend cpu --out o --set grid.shape=[500,500,500] --set grid.voxel_um=2.56")
        .arg(env!("CARGO_BIN_EXE_ionfield"));
    let o = run_in(dir, cmd);
    refused("ulimit -v", &o, &["grid.shape", "ulimit -v"]);
    assert!(!dir.join("o").exists(), "a refused run created its folder");
}

#[test]
fn unclear_messages_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for flag in ["--checkpoint-every", "--stop-at"] {
        let o = run_small(dir, "n", &[flag, "-5"]);
        refused(flag, &o, &[flag, "must be a positive"]);
    }
    // --adapter naming no adapter lists the adapters there are (when there are any).
    let info = ionfield(dir, &["info"]);
    let o = ionfield(
        dir,
        &[
            "run",
            "fe_fenton_cdt",
            "--backend",
            "gpu",
            "--adapter",
            "NoSuchGPU",
            "--out",
            "g",
        ],
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    if o.stderr.contains("available:") {
        assert!(!o.stderr.contains("apt-get"), "{}", o.stderr);
        assert!(o.stderr.contains("ionfield info"), "{}", o.stderr);
    } else {
        eprintln!(
            "no adapter on this machine ({}): only the exit code checked",
            info.stdout.trim()
        );
    }
}

/// `A -> 2 A` at 10/s overflows f32 (the fields' and outputs' precision) at t ≈ 8.9 s: both
/// backends stop with exit 3 in the reaction step at 8.5–9.5 s, name the species and the
/// reaction, and the manifest says `failed` and why; no field written holds ±inf. (The
/// CPU backend computes in f64 and used to run on, writing +inf from t = 30 s, exit 0.)
#[test]
fn a_blow_up_stops_both_backends_with_exit_3_and_the_reason_in_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a2a.toml"),
        "name = \"blowup\"\n[grid]\nshape = [4, 4, 4]\nvoxel_um = 10.0\n\
         [time]\ndt_s = 1.0\nend_s = 120.0\noutput_interval_s = 30.0\n\
         [species.A]\ndiffusion_um2_per_s = 0.0\ninitial = { uniform_mm = 1.0 }\n\
         [parameters]\nk = { value = 10.0, unit = \"1/s\" }\n\
         [reactions.grow]\nequation = \"A -> 2 A\"\nrate = \"k * A\"\n",
    )
    .unwrap();
    for backend in ["cpu", "gpu"] {
        let out = format!("out_{backend}");
        let o = ionfield(
            dir.path(),
            &["run", "a2a.toml", "--backend", backend, "--out", &out],
        );
        assert_eq!(o.code, 3, "{backend}: {}", o.stderr);
        for needle in ["NaN or Inf", "`A`", "t = 8.5 s to 9.5 s", "grow"] {
            assert!(
                o.stderr.contains(needle),
                "{backend}: no `{needle}` in\n{}",
                o.stderr
            );
        }
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(&out).join("manifest.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["status"], "failed", "{backend}");
        let why = manifest["failure"].as_str().unwrap_or_default();
        assert!(
            why.contains("NaN or Inf in species `A`"),
            "{backend}: {why}"
        );
        for f in std::fs::read_dir(dir.path().join(&out).join("fields")).unwrap() {
            let bytes = std::fs::read(f.unwrap().path()).unwrap();
            let header = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            assert!(bytes[header..]
                .chunks_exact(4)
                .all(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite()));
        }
    }
}

/// Every file under `dir` (relative path → bytes) but `manifest.json` (wall times and
/// command lines).
fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out.remove("manifest.json");
    out
}

/// Temporary files of a write in progress (`<name>.tmp-<pid>`) under `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    files(dir)
        .into_keys()
        .filter(|k| k.contains(".tmp-"))
        .collect()
}

#[test]
fn kill_9_in_the_middle_of_writes_resumes_to_the_same_files() {
    // Outputs every 2 s of model time on 8³ voxels: most of the wall time is spent writing
    // fields, slices and checkpoints, so SIGKILLs at spread-out moments land inside writes.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let extra = [
        "--set",
        "time.output_interval_s=2",
        "--checkpoint-every",
        "10",
    ];
    let full = run_small(dir, "full", &extra);
    assert_eq!(full.code, 0, "{}", full.stderr);

    let spawn = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ionfield"))
            .args(args)
            .current_dir(dir)
            .env("XDG_RUNTIME_DIR", dir)
            .env_remove("RUST_LOG")
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the ionfield binary starts")
    };
    let mut args = vec!["run", "fe_fenton_cdt", "--out", "part"];
    args.extend(SMALL);
    args.extend(extra);
    let mut child = spawn(&args);
    let part = dir.join("part");
    let checkpoint = part.join("checkpoint/state.ifck");
    let (mut kills, mut mid_write, mut finished) = (0, 0, false);
    for attempt in 0..60u64 {
        // Kill only once a checkpoint exists (before it, there is nothing to resume).
        let t = Instant::now();
        while !checkpoint.exists() {
            assert!(t.elapsed() < Duration::from_secs(60), "no checkpoint");
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(5 + (attempt * 37) % 150));
        if child.try_wait().unwrap().is_some() {
            finished = true;
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        if !temp_files(&part).is_empty() {
            mid_write += 1;
        }
        if mid_write >= 3 {
            break;
        }
        child = spawn(&["resume", "part", "--checkpoint-every", "10"]);
    }
    eprintln!("{kills} SIGKILLs, {mid_write} of them inside a write; finished: {finished}");
    assert!(
        mid_write >= 1,
        "no SIGKILL landed inside a write ({kills} tried)"
    );
    if !finished {
        let r = ionfield(dir, &["resume", "part", "--checkpoint-every", "10"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    assert_eq!(temp_files(&part), Vec::<String>::new(), "temp files left");
    let (a, b) = (files(&dir.join("full")), files(&part));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the killed and resumed run wrote other files"
    );
    let differing: Vec<&String> = a.keys().filter(|k| a[*k] != b[*k]).collect();
    assert!(differing.is_empty(), "differ: {differing:?}");
    eprintln!("{} files byte-identical", a.len());
}

/// SIGTERM during a long spin-up (what Slurm sends before a time limit) ends the run within
/// seconds with exit 130, a message and an `interrupted` manifest; it used to be acted on
/// only at t = 0, hours later, after Slurm's SIGKILL.
#[test]
fn sigterm_during_the_spin_up_stops_the_run_at_once() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut args = vec!["run", "fe_fenton_cdt", "--out", "spin"];
    args.extend(SMALL);
    // 100 days of spin-up at 0.5 s: far longer than the test may wait.
    args.extend(["--set", "time.spin_up_s=8.64e6"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ionfield"))
        .args(&args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", dir)
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the ionfield binary starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut text = String::new();
    // The spin-up has started (the handlers are installed before it) when it says so.
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no spin-up:\n{text}"
        );
        text.push_str(&line);
        if line.starts_with("spin-up:") {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // Should the signal be ignored, the test fails after 30 s instead of hanging.
    let pid = child.id().to_string();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(30));
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
    });
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    text.push_str(&rest);
    let status = child.wait().unwrap();
    let waited = sent.elapsed().as_secs_f64();
    eprintln!("stopped {waited:.2} s after SIGTERM:\n{text}");
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(waited < 20.0, "took {waited} s");
    assert!(text.contains("during the spin-up"), "{text}");
    let manifest = std::fs::read_to_string(dir.join("spin/manifest.json")).unwrap();
    assert!(manifest.contains("\"interrupted\""), "{manifest}");
}
