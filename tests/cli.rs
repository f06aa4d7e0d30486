//! The real `ionfield` binary, run in a fresh temp dir: each bad-input
//! class exits 2 with one message naming the file, the dotted field and the fix; stderr
//! never contains `panicked`; small runs on both backends write what the manifest lists.

mod common;

use common::{ionfield, Output};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The built-in scenario; bad configs are made from it (or from the baseline chemistry it
/// includes) by one textual edit each.
const DEFAULT_TOML: &str = include_str!("../configs/therapies/fe_fenton_cdt.toml");
const BASELINE_TOML: &str = include_str!("../configs/chemistry/baseline.toml");
const FE_PARTICLE_TOML: &str = include_str!("../configs/chemistry/fe_particle.toml");
const TISSUE_TOML: &str = include_str!("../configs/tissue/tumour_640um.toml");

/// Overrides for a run that takes about a second: 16³ voxels of 40 µm keep the 640 µm
/// domain of the default, so its vessels and tumour stay inside the grid.
const SMALL_RUN: [&str; 10] = [
    "--set",
    "time.end_s=20",
    "--set",
    "time.output_interval_s=10",
    "--set",
    "grid.shape=[16,16,16]",
    "--set",
    "grid.voxel_um=40",
    "--set",
    "output.slices=[8]",
];

/// Asserts a bad-input exit: code 2, and stderr contains every one of `needles` and "Fix".
fn assert_input_error(what: &str, out: &Output, needles: &[&str]) {
    println!(
        "{what}: exit {}\nstderr: {}",
        out.code,
        out.stderr.trim_end()
    );
    assert_eq!(
        out.code, 2,
        "{what}: expected exit 2\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    for n in needles.iter().chain(&["Fix"]) {
        assert!(
            out.stderr.contains(n),
            "{what}: stderr should contain {n:?}, got:\n{}",
            out.stderr
        );
    }
}

/// Writes the default scenario as `dir/therapies/name` and the files it includes beside it
/// (`dir/chemistry/baseline.toml`, `dir/tissue/tumour_640um.toml`), with `from` replaced by
/// `to` in whichever holds it (exactly once in all together); returns the scenario's path.
fn edited_default(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let files = [
        (format!("therapies/{name}"), DEFAULT_TOML),
        ("chemistry/baseline.toml".to_string(), BASELINE_TOML),
        ("chemistry/fe_particle.toml".to_string(), FE_PARTICLE_TOML),
        ("tissue/tumour_640um.toml".to_string(), TISSUE_TOML),
    ];
    assert_eq!(
        files
            .iter()
            .map(|(_, t)| t.matches(from).count())
            .sum::<usize>(),
        1,
        "the default scenario and the files it includes should contain {from:?} exactly once"
    );
    for (rel, text) in &files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create a temp folder");
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write a temp config");
    }
    dir.join("therapies").join(name)
}

fn tmp() -> TempDir {
    tempfile::tempdir().expect("create a temp dir")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

// ---- bad input: exit 2, naming file, field and fix ----

#[test]
fn bad_input_malformed_toml_exits_2_with_line_and_column() {
    let dir = tmp();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, "name = \"broken\"\n[grid\nshape = [8, 8, 8]\n").unwrap();
    let out = ionfield(dir.path(), &["check", s(&path)]);
    assert_input_error("malformed TOML", &out, &["broken.toml:2:", "invalid TOML"]);
    // `file:line:col:` — a line and a column, both numbers.
    let after = out.stderr.split("broken.toml:").nth(1).unwrap();
    let mut parts = after.splitn(3, ':');
    let line = parts.next().unwrap();
    let col = parts.next().unwrap();
    assert!(
        line.parse::<u32>().is_ok() && col.parse::<u32>().is_ok(),
        "expected broken.toml:LINE:COL, got:\n{}",
        out.stderr
    );
}

#[test]
fn bad_input_unknown_species_key_exits_2_and_suggests_the_right_one() {
    let dir = tmp();
    let path = edited_default(
        dir.path(),
        "typo.toml",
        "diffusion_um2_per_s = 300.0",
        "difusion_um2_per_s = 300.0",
    );
    let out = ionfield(dir.path(), &["check", s(&path)]);
    assert_input_error(
        "unknown key",
        &out,
        &[
            "chemistry/baseline.toml:",
            "species.glucose.difusion_um2_per_s",
            "did you mean `diffusion_um2_per_s`",
        ],
    );
}

#[test]
fn bad_input_negative_diffusion_exits_2() {
    let dir = tmp();
    let path = edited_default(
        dir.path(),
        "negative_d.toml",
        "diffusion_um2_per_s = 2000.0",
        "diffusion_um2_per_s = -2000.0",
    );
    let out = ionfield(dir.path(), &["check", s(&path)]);
    assert_input_error(
        "negative D",
        &out,
        &[
            "chemistry/baseline.toml:",
            "species.O2.diffusion_um2_per_s",
            "-2000",
        ],
    );
}

#[test]
fn bad_input_zero_time_step_exits_2() {
    let dir = tmp();
    let path = edited_default(dir.path(), "dt0.toml", "dt_s = 0.5", "dt_s = 0");
    let out = ionfield(dir.path(), &["check", s(&path)]);
    assert_input_error("dt = 0", &out, &["dt0.toml", "time.dt_s"]);
}

#[test]
fn bad_input_region_outside_grid_exits_2() {
    let dir = tmp();
    let path = edited_default(
        dir.path(),
        "outside.toml",
        "centre_um = [320.0, 320.0, 320.0]",
        "centre_um = [320.0, 320.0, 9000.0]",
    );
    let out = ionfield(dir.path(), &["check", s(&path)]);
    assert_input_error(
        "region outside the grid",
        &out,
        &[
            "tissue/tumour_640um.toml:",
            "tissues.tumour.centre_um",
            "outside the grid",
        ],
    );
}

#[test]
fn bad_input_grid_too_large_for_gpu_binding_exits_2() {
    // 512×512×256 f32 = 256 MiB per species field, above lavapipe's 128 MiB storage
    // binding (and any device's default 128 MiB limit). 2.5 µm voxels keep the default's
    // vessels inside the domain so the config itself is valid.
    let dir = tmp();
    let o = dir.path().join("o");
    let out = ionfield(
        dir.path(),
        &[
            "run",
            "fe_fenton_cdt",
            "--backend",
            "gpu",
            "--out",
            s(&o),
            "--set",
            "grid.shape=[512,512,256]",
            "--set",
            "grid.voxel_um=2.5",
        ],
    );
    assert_input_error(
        "grid too large for the GPU",
        &out,
        &["does not fit", "binding", "grid.shape", "--backend cpu"],
    );
    assert!(!o.join("manifest.json").exists(), "no run should start");
}

#[test]
fn bad_input_gpu_grid_1024_cubed_is_refused_before_allocating() {
    // 1024³ f32 = 4 GiB per species field. Refusal should come from the size arithmetic,
    // before the host model (masks, initial fields) for 2^30 voxels is built.
    let dir = tmp();
    let o = dir.path().join("o");
    let started = Instant::now();
    let out = ionfield(
        dir.path(),
        &[
            "run",
            "fe_fenton_cdt",
            "--backend",
            "gpu",
            "--out",
            s(&o),
            "--set",
            "grid.shape=[1024,1024,1024]",
            "--set",
            "grid.voxel_um=1.25",
        ],
    );
    let elapsed = started.elapsed();
    assert_input_error(
        "1024³ grid on the GPU",
        &out,
        &["does not fit", "binding", "grid.shape", "--backend cpu"],
    );
    assert!(
        elapsed < Duration::from_secs(30),
        "refusing a grid that cannot fit took {elapsed:?}"
    );
}

#[test]
fn bad_input_grid_too_large_for_cpu_memory_exits_2() {
    // 4000³ voxels: refused by config validation (> 2^31 voxels) or by the RAM check.
    let dir = tmp();
    let o = dir.path().join("o");
    let out = ionfield(
        dir.path(),
        &[
            "run",
            "fe_fenton_cdt",
            "--backend",
            "cpu",
            "--out",
            s(&o),
            "--set",
            "grid.shape=[4000,4000,4000]",
        ],
    );
    assert_input_error("grid too large for RAM", &out, &["grid.shape"]);
}

#[test]
fn bad_input_tiff_stack_over_4_gib_exits_2() {
    // 1024³ f32 = 4 GiB: more than a classic TIFF addresses; refused by validation.
    let dir = tmp();
    let out = ionfield(
        dir.path(),
        &[
            "check",
            "--set",
            "grid.shape=[1024,1024,1024]",
            "--set",
            "grid.voxel_um=1.25",
            "--set",
            "output.tiff=true",
        ],
    );
    assert_input_error(
        "TIFF over 4 GiB",
        &out,
        &[
            "--set output.tiff=true",
            "output.tiff",
            "4 GiB",
            "output.tiff = false",
        ],
    );
}

#[test]
fn bad_input_out_under_a_regular_file_exits_2() {
    let dir = tmp();
    let file = dir.path().join("file.txt");
    std::fs::write(&file, "not a directory").unwrap();
    let o = file.join("sub");
    let mut args = vec!["run", "fe_fenton_cdt", "--backend", "cpu", "--out", s(&o)];
    args.extend(SMALL_RUN);
    let out = ionfield(dir.path(), &args);
    assert_input_error("--out under a file", &out, &[s(&o), "--out"]);
}

#[test]
fn bad_input_out_in_proc_exits_2() {
    let dir = tmp();
    let mut args = vec![
        "run",
        "fe_fenton_cdt",
        "--backend",
        "cpu",
        "--out",
        "/proc/ionfield-test",
    ];
    args.extend(SMALL_RUN);
    let out = ionfield(dir.path(), &args);
    assert_input_error("--out in /proc", &out, &["/proc/ionfield-test", "--out"]);
}

#[test]
fn bad_input_unknown_set_key_exits_2_and_suggests_dt_s() {
    let dir = tmp();
    let out = ionfield(dir.path(), &["check", "--set", "time.dtt_s=1"]);
    assert_input_error(
        "unknown --set key",
        &out,
        &[
            "<built-in default>",
            "--set time.dtt_s=1",
            "time.dtt_s",
            "`dt_s`",
        ],
    );
    // The same through `run`, before any backend or output folder is touched.
    let o = dir.path().join("o");
    let out = ionfield(
        dir.path(),
        &[
            "run",
            "fe_fenton_cdt",
            "--backend",
            "cpu",
            "--out",
            s(&o),
            "--set",
            "time.dtt_s=1",
        ],
    );
    assert_input_error("unknown --set key (run)", &out, &["time.dtt_s", "`dt_s`"]);
    assert!(
        !o.exists(),
        "a refused config must not create the output folder"
    );
}

#[test]
fn bad_input_missing_config_file_exits_2() {
    let dir = tmp();
    let path = dir.path().join("no_such_scenario.toml");
    let out = ionfield(dir.path(), &["check", s(&path)]);
    assert_input_error("missing config", &out, &[s(&path), "cannot read"]);
    let out = ionfield(dir.path(), &["run", s(&path), "--backend", "cpu"]);
    assert_input_error("missing config (run)", &out, &[s(&path), "cannot read"]);
}

// ---- what works ----

#[test]
fn check_default_prints_step_count_and_memory() {
    let dir = tmp();
    let out = ionfield(dir.path(), &["check"]);
    assert_eq!(out.code, 0, "stderr:\n{}", out.stderr);
    // The default's coupled scheme: estimated steps, and a spin-up until it settles.
    assert!(
        out.stdout.contains("steps after t = 0") && out.stdout.contains("settling field"),
        "stdout:\n{}",
        out.stdout
    );
    let memory = out
        .stdout
        .lines()
        .find(|l| l.starts_with("memory:"))
        .unwrap_or_else(|| panic!("no memory line in:\n{}", out.stdout));
    assert!(
        memory.contains("GPU") && memory.contains("CPU") && memory.contains("iB"),
        "memory line: {memory}"
    );
    // Its vessels: 5.9 % of the 64³ voxels, no warning; the same block at 80 µm is mostly
    // vessel lumen, and check says so before a run would.
    assert!(
        out.stdout.contains("vessels: 5.9 % of the voxels"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("warning: vessels fill"),
        "{}",
        out.stdout
    );
    let coarse = ionfield(
        dir.path(),
        &[
            "check",
            "--set",
            "grid.shape=[16,16,16]",
            "--set",
            "grid.voxel_um=80",
        ],
    );
    assert_eq!(coarse.code, 0, "stderr:\n{}", coarse.stderr);
    assert!(
        coarse
            .stdout
            .contains("warning: vessels fill 61 % of the voxels: voxels of 80 µm"),
        "{}",
        coarse.stdout
    );
}

/// `check` lists every resolved value with the catalogue file and line it came from, or
/// the --set that wrote it.
#[test]
fn check_prints_where_each_value_came_from() {
    let dir = tmp();
    let out = ionfield(dir.path(), &["check", "--set", "time.end_s=60"]);
    assert_eq!(out.code, 0, "stderr:\n{}", out.stderr);
    let section = out
        .stdout
        .split_once("resolved values (")
        .unwrap_or_else(|| panic!("no origins section in:\n{}", out.stdout))
        .1;
    let line_of = |line: &str| -> &str {
        section
            .lines()
            .find(|l| l.trim_start().starts_with(line))
            .unwrap_or_else(|| panic!("no line starting with {line:?} in:\n{section}"))
    };
    // species.O2.diffusion_um2_per_s: the first such key after [species.O2] in the baseline.
    let o2 = BASELINE_TOML
        .lines()
        .position(|l| l.trim() == "[species.O2]")
        .expect("baseline has [species.O2]");
    let line = o2
        + BASELINE_TOML
            .lines()
            .skip(o2)
            .position(|l| l.starts_with("diffusion_um2_per_s"))
            .expect("O2 has a diffusion coefficient")
        + 1;
    let o2 = line_of("species.O2.diffusion_um2_per_s = 2000.0 ");
    assert!(
        o2.ends_with(&format!(
            " <built-in> configs/chemistry/baseline.toml:{line}"
        )),
        "{o2}"
    );
    let end = line_of("time.end_s = 60 ");
    assert!(end.ends_with(" --set time.end_s=60"), "{end}");
    // A key of the default scenario itself.
    let line = include_str!("../configs/therapies/fe_fenton_cdt_day.toml")
        .lines()
        .position(|l| l.starts_with("dt = "))
        .expect("the default sets dt")
        + 1;
    let dt = line_of("time.dt = \"0.5 s\" ");
    assert!(dt.ends_with(&format!(" <built-in default>:{line}")), "{dt}");
    // One line per value, none over the cut.
    let n: usize = section
        .split(')')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a count");
    let listed = section.lines().filter(|l| l.contains(" = ")).count();
    assert_eq!(listed, n, "{n} announced, {listed} listed:\n{section}");
    for l in section.lines() {
        assert!(
            l.chars().count() < 80 + 160,
            "line too long ({} chars): {l}",
            l.chars().count()
        );
    }
}

/// Runs the small scenario on `backend` into `<tmp>/run`; checks the manifest and files.
fn small_run(backend: &str) -> (Output, serde_json::Value) {
    let dir = tmp();
    let run = dir.path().join("run");
    let mut args = vec![
        "run",
        "fe_fenton_cdt",
        "--backend",
        backend,
        "--out",
        s(&run),
    ];
    args.extend(SMALL_RUN);
    let out = ionfield(dir.path(), &args);
    println!("{backend} run stderr:\n{}", out.stderr);
    assert_eq!(
        out.code, 0,
        "{backend} run failed\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );

    let text = std::fs::read_to_string(run.join("manifest.json")).expect("manifest.json");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest is JSON");
    assert_eq!(manifest["status"], "complete");
    assert_eq!(manifest["backend"], backend);
    let files = manifest["files"]
        .as_array()
        .expect("manifest.files is a list");
    assert!(!files.is_empty(), "manifest lists no files");
    for f in files {
        let rel = f["path"].as_str().expect("files[].path is a string");
        let path = run.join(rel);
        let meta = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("manifest lists {rel}, missing: {e}"));
        if let Some(bytes) = f["bytes"].as_u64() {
            assert_eq!(meta.len(), bytes, "{rel}: size differs from the manifest");
        }
    }
    for sub in ["png", "png16", "fields"] {
        assert!(run.join(sub).is_dir(), "{sub}/ missing");
    }
    let o2_at_20 = files.iter().any(|f| {
        f["field"] == "O2"
            && f["time_s"].as_f64() == Some(20.0)
            && f["path"].as_str().is_some_and(|p| p.ends_with(".npy"))
            && run.join(f["path"].as_str().unwrap()).is_file()
    });
    assert!(o2_at_20, "no O2 .npy at t = 20 s listed and present");
    assert!(
        run.join("fields/O2_t0000020.0s.npy").is_file(),
        "fields/O2_t0000020.0s.npy missing"
    );
    (out, manifest)
}

#[test]
fn run_small_cpu_writes_complete_manifest_and_files() {
    small_run("cpu");
}

#[test]
fn run_small_gpu_on_any_adapter_writes_complete_manifest() {
    let (out, _) = small_run("gpu");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("backend gpu"),
        "no mention of the gpu backend:\n{all}"
    );
}

#[test]
fn info_lists_adapters_or_says_how_to_install_lavapipe() {
    let dir = tmp();
    let out = ionfield(dir.path(), &["info"]);
    println!("info stdout:\n{}", out.stdout);
    assert_eq!(out.code, 0, "stderr:\n{}", out.stderr);
    let adapter_line = out
        .stdout
        .lines()
        .any(|l| l.contains("llvmpipe") || l.contains(", driver "));
    assert!(
        adapter_line || out.stdout.contains("mesa-vulkan-drivers"),
        "neither an adapter nor how to install lavapipe:\n{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("--backend auto would use"),
        "{}",
        out.stdout
    );
}

#[test]
fn help_mentions_exit_codes() {
    let dir = tmp();
    let out = ionfield(dir.path(), &["--help"]);
    println!("--help:\n{}", out.stdout);
    assert_eq!(out.code, 0, "stderr:\n{}", out.stderr);
    let help = out.stdout.to_lowercase();
    assert!(
        help.contains("exit code"),
        "`ionfield --help` does not mention exit codes:\n{}",
        out.stdout
    );
    for code in ["0", "1", "2"] {
        assert!(help.contains(code), "exit code {code} not described");
    }
}

/// Without any Vulkan driver, `--backend gpu` fails (exit 2) and says how to install
/// lavapipe; it never falls back silently. The loader is pointed at a driver list that
/// does not exist.
#[test]
fn no_adapter_exits_2_and_says_how_to_install_lavapipe() {
    let dir = tmp();
    let out = Command::new(env!("CARGO_BIN_EXE_ionfield"))
        .args([
            "run",
            "fe_fenton_cdt",
            "--backend",
            "gpu",
            "--out",
            s(&dir.path().join("o")),
        ])
        .current_dir(dir.path())
        .env("XDG_RUNTIME_DIR", dir.path())
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
        .env_remove("RUST_LOG")
        .output()
        .expect("the ionfield binary starts");
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stderr}");
    assert!(!stderr.contains("panicked"));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("mesa-vulkan-drivers"), "{stderr}");
}

/// A reader that stops early (`ionfield describe --all | true`: `true` reads nothing) ends
/// the command quietly, as for any Unix tool: no panic ("failed printing to stdout: Broken
/// pipe"), killed by SIGPIPE (bash reports 128 + 13). The output (180 kB) is larger than a
/// pipe's buffer (64 kB), so the writer is still writing when the reader has gone, however
/// the two are scheduled; `schema` (38 kB) could fit in the buffer before `true` exited,
/// and then ended with 0 (seen once in CI under load).
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_output_commands_without_a_panic() {
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            r#""$0" describe --all | true; exit "${PIPESTATUS[0]}""#,
        ])
        .arg(env!("CARGO_BIN_EXE_ionfield"))
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{:?}: {stderr}", out.status);
}
