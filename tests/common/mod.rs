//! Shared helpers of the integration tests: scenarios from TOML text, engines on either
//! backend, and the GPU context rule (no adapter = failure with install instructions).
#![allow(dead_code)]

use ionfield::config::{self, Scenario};
use ionfield::cpu::CpuEngine;
use ionfield::engine::Engine;
use ionfield::gpu::{GpuContext, GpuEngine, INSTALL_LAVAPIPE};
use ionfield::model::Model;

/// A validated scenario from TOML text (the real loader, so tests read like configs).
pub fn scenario(toml: &str) -> Scenario {
    config::load_str(toml, "test.toml", &[]).unwrap_or_else(|e| panic!("test scenario: {e}"))
}

/// The GPU context for tests: the adapter named by IONFIELD_ADAPTER, else the first.
/// Without an adapter the test fails and says how to install lavapipe; it skips (visibly)
/// only when IONFIELD_SKIP_GPU_TESTS=1 is set.
pub fn gpu_context() -> Option<GpuContext> {
    if std::env::var("IONFIELD_SKIP_GPU_TESTS").as_deref() == Ok("1") {
        eprintln!("SKIPPED GPU part: IONFIELD_SKIP_GPU_TESTS=1");
        return None;
    }
    let filter = std::env::var("IONFIELD_ADAPTER").ok();
    match GpuContext::new(filter.as_deref()) {
        Ok(ctx) => {
            eprintln!("GPU adapter: {}", ctx.adapter.describe());
            Some(ctx)
        }
        Err(e) => panic!(
            "GPU tests need a wgpu adapter: {e}\nOn Debian/Ubuntu: {INSTALL_LAVAPIPE}\n(set IONFIELD_SKIP_GPU_TESTS=1 to skip them knowingly)"
        ),
    }
}

/// Which engine a test drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Cpu,
    Gpu,
}

pub fn engine(backend: Backend, model: &Model) -> Option<Box<dyn Engine>> {
    Some(match backend {
        Backend::Cpu => Box::new(CpuEngine::new(model)),
        Backend::Gpu => Box::new(GpuEngine::new(gpu_context()?, model).expect("GPU engine")),
    })
}

/// Runs `n_steps` of `dt_s` and returns species 0 as f64 (GPU values widened from f32).
/// `None` only when GPU tests are knowingly skipped.
pub fn run(backend: Backend, scenario: &Scenario, n_steps: u64, dt_s: f64) -> Option<Vec<f64>> {
    let model = Model::build(scenario);
    let mut e = engine(backend, &model)?;
    e.advance(n_steps, dt_s).expect("advance");
    let f = e.read_fields(&[0]).expect("read back");
    Some(f[0].iter().map(|&v| v as f64).collect())
}

/// Voxel centre coordinate along an axis, µm.
pub fn centre_um(i: usize, voxel_um: f64) -> f64 {
    (i as f64 + 0.5) * voxel_um
}

/// Least-squares slope of log(err) against log(h): the observed order of convergence.
pub fn observed_order(h: &[f64], err: &[f64]) -> f64 {
    let xs: Vec<f64> = h.iter().map(|v| v.ln()).collect();
    let ys: Vec<f64> = err.iter().map(|v| v.ln()).collect();
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    sxy / sxx
}

/// What the `ionfield` binary did.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `ionfield run <scenario> --backend <backend> --out <dir>/<out>` with a `--set` for
/// each of `sets`, in `dir`; asserts it succeeded and returns the output folder and what
/// the run printed.
pub fn run_in(
    dir: &std::path::Path,
    scenario: &std::path::Path,
    out: &str,
    backend: &str,
    sets: &[&str],
) -> (std::path::PathBuf, Output) {
    run_in_env(dir, scenario, out, backend, sets, &[])
}

/// [`run_in`] with extra environment variables.
pub fn run_in_env(
    dir: &std::path::Path,
    scenario: &std::path::Path,
    out: &str,
    backend: &str,
    sets: &[&str],
    env: &[(&str, &str)],
) -> (std::path::PathBuf, Output) {
    let out = dir.join(out);
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "--backend",
        backend,
        "--out",
        out.to_str().unwrap(),
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    let o = ionfield_env(dir, &args, env);
    assert_eq!(o.code, 0, "{} failed:\n{}", scenario.display(), o.stderr);
    (out, o)
}

/// [`run_in`] on the CPU backend without overrides; the output folder.
pub fn run_cpu(dir: &std::path::Path, scenario: &std::path::Path, out: &str) -> std::path::PathBuf {
    run_in(dir, scenario, out, "cpu", &[]).0
}

/// Runs `ionfield args…` with `dir` as working directory and XDG_RUNTIME_DIR (silences
/// Mesa's "XDG_RUNTIME_DIR is invalid" warning), RUST_LOG unset; fails on a panic or a
/// signal.
pub fn ionfield(dir: &std::path::Path, args: &[&str]) -> Output {
    ionfield_env(dir, args, &[])
}

/// [`ionfield`] with extra environment variables.
pub fn ionfield_env(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ionfield"))
        .args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", dir)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("the ionfield binary starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "ionfield {args:?} panicked:\n{stderr}"
    );
    let code = out.status.code().unwrap_or_else(|| {
        panic!(
            "ionfield {args:?} killed by a signal: {:?}\n{stderr}",
            out.status
        )
    });
    Output {
        code,
        stdout,
        stderr,
    }
}

/// A therapy preset run by the binary on the test grid (see [`run_preset`]).
pub struct PresetRun {
    pub dir: tempfile::TempDir,
    pub out: std::path::PathBuf,
    pub scenario: Scenario,
    /// Tissue id per voxel (x fastest), as the run rasterised it.
    pub tissue: Vec<u32>,
    pub stderr: String,
}

/// One quarter of the default's block (fe_fenton_cdt_day): [0, 640] × [0, 640] ×
/// [0, 1280] µm, the whole depth of the margin window with the injection's centre
/// (640, 640, 400) µm on the quarter's mirror edge (the tumour's box cut to the grid; the
/// default's probes all lie inside it); no VTK files;
/// `.npy` fields on (the default writes only the OME-Zarr store, and
/// [`PresetRun::field`] reads the `.npy`).
pub const DEFAULT_QUARTER: &[&str] = &[
    "grid.shape=[32,32,64]",
    "tissues.tumour.max_um=[640,640,800]",
    "output.npy=true",
    "output.slices=[31]",
    "output.vti=false",
];

/// One octant of the spherical-tumour block (`tissue/tumour_1280um_sphere.toml`, the
/// tissue of iv_fe_liposome): [0, 640 µm]³, whose corner (640, 640, 640) µm is the
/// tumour's centre; probes moved inside it; no VTK files; `.npy` fields on.
pub const SPHERE_OCTANT: &[&str] = &[
    "grid.shape=[32,32,32]",
    "output.npy=true",
    "output.probe[0].point_um=[630,630,630]",
    "output.probe[1].point_um=[630,630,230]",
    "output.probe[2].point_um=[630,630,50]",
    "output.slices=[31]",
    "output.vti=false",
];

/// The test grid of the presets: their 640 µm cube at 24³ voxels of 640/24 ≈ 26.7 µm, the
/// split scheme at dt 1 s (the path the GPU runs), a 2 min spin-up, 10 min of therapy,
/// outputs at 0, 5 and 10 min (the presets' own horizon, 24 h, is tests/presets_day.rs). (It was 32³ voxels of
/// 20 µm; 24³ is 42 % of the voxels and about halves the preset tests. Every asserted
/// figure of tests/presets*.rs was compared on both grids and keeps its margin: within a
/// few % of its 32³ value, the commit message lists them.)
pub const PRESET_TEST_SETS: &[&str] = &[
    "grid.shape=[24,24,24]",
    "grid.voxel_um=26.666666666666668",
    "time.dt_s=1",
    "time.spin_up_s=120",
    "time.end_s=600",
    "time.output_interval_s=300",
    "output.slices=[12]",
    "time.scheme=\"split\"",
];

/// Runs `configs/therapies/<name>.toml` with `--backend <backend>` on the test grid plus
/// `extra` `--set`s; panics unless it exits 0. The repository's config is used in place.
pub fn run_preset(name: &str, backend: &str, extra: &[&str]) -> PresetRun {
    let sets: Vec<&str> = PRESET_TEST_SETS.iter().chain(extra).copied().collect();
    run_preset_with(name, backend, &sets)
}

/// [`run_preset`] with only the `--set`s given (not the test grid's).
pub fn run_preset_with(name: &str, backend: &str, sets: &[&str]) -> PresetRun {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    run_config_with(
        &root.join(format!("configs/therapies/{name}.toml")),
        backend,
        sets,
    )
}

/// [`run_preset_with`] for any scenario file (`configs/…` relative to the repository).
pub fn run_config_with(config: &std::path::Path, backend: &str, sets: &[&str]) -> PresetRun {
    let name = config.file_stem().unwrap().to_string_lossy().into_owned();
    let dir = tempfile::tempdir().expect("temp dir");
    let started = std::time::Instant::now();
    let (out, o) = run_in(dir.path(), config, "run", backend, sets);
    eprintln!(
        "preset {name} ({backend}): {:.1} s wall",
        started.elapsed().as_secs_f64()
    );
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let scenario = config::load_file(config, &sets).expect("preset loads");
    let model = Model::build(&scenario);
    let tissue = model
        .mask
        .iter()
        .map(|m| m & ionfield::model::TISSUE_ID_MASK)
        .collect();
    PresetRun {
        dir,
        out,
        scenario,
        tissue,
        stderr: o.stderr,
    }
}

/// One preset run shared by the tests of a test binary that assert on the same run (the
/// same `name` and `extra`), so that it runs once: the first caller runs it, a caller on the
/// other test thread waits for that run, and all get the same [`PresetRun`]. `users` is the
/// number of tests of the binary that call this with the same `name` and `extra`; after the
/// last of them the cache lets go of the run, so its temporary folder is removed when the
/// last test holding it ends. A failed run (a panic in [`run_preset`]) is not cached: the
/// next caller runs it again and fails on its own.
pub fn shared_preset(name: &str, extra: &[&str], users: usize) -> std::sync::Arc<PresetRun> {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex, OnceLock};
    struct Slot {
        run: OnceLock<Arc<PresetRun>>,
        left: Mutex<usize>,
    }
    static CACHE: Mutex<BTreeMap<String, Arc<Slot>>> = Mutex::new(BTreeMap::new());
    let key = format!("{name} {extra:?}");
    let slot = CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key.clone())
        .or_insert_with(|| {
            Arc::new(Slot {
                run: OnceLock::new(),
                left: Mutex::new(users),
            })
        })
        .clone();
    let run = slot
        .run
        .get_or_init(|| Arc::new(run_preset(name, "gpu", extra)))
        .clone();
    let mut left = slot.left.lock().unwrap_or_else(|e| e.into_inner());
    *left = left.saturating_sub(1);
    if *left == 0 {
        CACHE.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
    }
    run
}

impl PresetRun {
    /// The written field `name` (an `.npy` of the run) at the first (`last = false`) or
    /// last output time.
    pub fn field(&self, name: &str, last: bool) -> Vec<f32> {
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(self.out.join("fields"))
            .expect("fields/ exists")
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&format!("{name}_t"))
            })
            .collect();
        files.sort();
        let path = if last { files.last() } else { files.first() };
        let path = path.unwrap_or_else(|| panic!("no .npy of field {name} in the run"));
        read_npy_f32(path)
    }

    /// Voxels where the particle field at t = 0 exceeds `frac` of its peak (the dosed cloud).
    pub fn cloud(&self, particle: &str, frac: f32) -> Vec<bool> {
        let np = self.field(particle, false);
        let peak = np.iter().cloned().fold(0.0, f32::max);
        assert!(peak > 0.0, "{particle} was not dosed");
        np.iter().map(|&v| v > frac * peak).collect()
    }

    /// Mean of `field` at the last (or first) output over the voxels of `pick`.
    pub fn mean_of(&self, field: &str, last: bool, pick: &[bool]) -> f64 {
        PresetRun::mean(&self.field(field, last), |i| pick[i])
    }

    /// Mean change of `field` (last − first output) over the voxels of `pick`.
    pub fn change(&self, field: &str, pick: &[bool]) -> f64 {
        self.mean_of(field, true, pick) - self.mean_of(field, false, pick)
    }

    /// The files every preset run must leave: PNG slices, 16-bit stacks, `.npy` fields,
    /// the manifest, `viability.csv` (≥ 10 summary times × 2 tissues) and time of death.
    pub fn assert_outputs(&self) {
        for dir in ["png", "png16", "fields"] {
            let n = count_files(&self.out.join(dir));
            assert!(n > 0, "no files under {dir}/");
        }
        let v = self.viability();
        assert!(v.len() >= 2 * 10, "viability.csv has {} rows", v.len());
        assert!(self.out.join("manifest.json").exists());
        let n_voxels = self.scenario.grid.n_voxels();
        assert_eq!(self.field("time_of_death", true).len(), n_voxels);
    }

    /// Tissue id of `name` in the run's scenario.
    pub fn tissue_id(&self, name: &str) -> u32 {
        self.scenario
            .tissues
            .iter()
            .position(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tissue {name}")) as u32
    }

    /// Mean of `field` over voxels where `pick(voxel index)` holds.
    pub fn mean(field: &[f32], pick: impl Fn(usize) -> bool) -> f64 {
        let (mut sum, mut n) = (0.0, 0usize);
        for (i, &v) in field.iter().enumerate() {
            if pick(i) {
                sum += v as f64;
                n += 1;
            }
        }
        assert!(n > 0, "no voxel selected");
        sum / n as f64
    }

    /// The (time_s, value) rows of `timeseries.csv` for one probe or region (`tumour`),
    /// field and statistic (`mean`, `min`, `max`, …), in file order.
    pub fn series(&self, probe: &str, field: &str, stat: &str) -> Vec<(f64, f64)> {
        let text =
            std::fs::read_to_string(self.out.join("timeseries.csv")).expect("timeseries.csv");
        text.lines()
            .skip(1)
            .filter_map(|l| {
                let c: Vec<&str> = l.split(',').collect();
                (c[1] == probe && c[2] == field && c[4] == stat).then(|| {
                    (
                        c[0].parse().expect("a time"),
                        c[5].parse().expect("a number"),
                    )
                })
            })
            .collect()
    }

    /// The rows of `viability.csv` as (time_s, tissue, mean_viab, alive_fraction).
    pub fn viability(&self) -> Vec<(f64, String, f64, f64)> {
        let text = std::fs::read_to_string(self.out.join("viability.csv")).expect("viability.csv");
        text.lines()
            .skip(1)
            .map(|l| {
                let c: Vec<&str> = l.split(',').collect();
                (
                    c[0].parse().unwrap(),
                    c[1].to_string(),
                    c[3].parse().unwrap(),
                    c[4].parse().unwrap(),
                )
            })
            .collect()
    }
}

/// Tumour voxels inside the cloud of `particle` (> half its peak at t = 0) and outside it.
pub struct Regions {
    pub inside: Vec<bool>,
    pub outside: Vec<bool>,
}

pub fn regions(run: &PresetRun, particle: &str) -> Regions {
    let tumour = run.tissue_id("tumour");
    let c = run.cloud(particle, 0.5);
    // The Gaussian cloud (σ 120 µm) reaches the whole tumour: "outside" is its far shell,
    // dosed at less than 30 % of the peak.
    let far = run.cloud(particle, 0.3);
    let t = |i: usize| run.tissue[i] == tumour;
    Regions {
        inside: (0..c.len()).map(|i| c[i] && t(i)).collect(),
        outside: (0..c.len()).map(|i| !far[i] && t(i)).collect(),
    }
}

/// A run's `manifest.json`, parsed.
pub fn manifest(out: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("manifest.json")).expect("manifest.json");
    serde_json::from_str(&text).expect("manifest.json is JSON")
}

/// The field `name` a run wrote at model time `t_s` (an output time), in voxel order.
pub fn field_at(out: &std::path::Path, name: &str, t_s: f64) -> Vec<f64> {
    read_npy_f32(&out.join(format!("fields/{name}_t{t_s:09.1}s.npy")))
        .into_iter()
        .map(f64::from)
        .collect()
}

/// Reads a little-endian f32 `.npy` as written by the run (any shape).
pub fn read_npy_f32(path: &std::path::Path) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("npy file");
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{} is not .npy", path.display());
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8_lossy(&bytes[10..10 + header_len]);
    assert!(header.contains("'<f4'"), "not f32: {header}");
    bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Files below `dir`, recursively (0 when it does not exist).
pub fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| {
                let p = e.expect("readable dir entry").path();
                if p.is_dir() {
                    count_files(&p)
                } else {
                    1
                }
            })
            .sum()
        })
        .unwrap_or(0)
}

/// A closed 8×6×5 box of 10 µm voxels with Fe2/Fe3 and Cu1/Cu2 redox cycling (driven by
/// H2O2 and GSH, different D per species), whose Fe and Cu totals only rounding may change;
/// `time` is its `[time]` table.
pub fn redox_box_toml(time: &str) -> String {
    format!(
        r#"
name = "conservation"
[grid]
shape = [8, 6, 5]
voxel_um = 10.0
{time}
[species.Fe2]
diffusion_um2_per_s = 300.0
[species.Fe2.initial]
uniform_mm = 0.01
[[species.Fe2.initial.regions]]
shape = "sphere"
centre_um = [20.0, 20.0, 20.0]
radius_um = 20.0
value_mm = 0.5
[species.Fe3]
diffusion_um2_per_s = 100.0
initial = {{ uniform_mm = 0.01 }}
[species.Cu1]
diffusion_um2_per_s = 500.0
initial = {{ uniform_mm = 0.02 }}
[species.Cu2]
diffusion_um2_per_s = 50.0
[species.Cu2.initial]
uniform_mm = 0.2
[[species.Cu2.initial.regions]]
shape = "sphere"
centre_um = [60.0, 40.0, 30.0]
radius_um = 20.0
value_mm = 1.0
[species.H2O2]
diffusion_um2_per_s = 1400.0
initial = {{ uniform_mm = 0.05 }}
[species.GSH]
diffusion_um2_per_s = 0.0
initial = {{ uniform_mm = 2.0 }}
[parameters]
kf = {{ value = 0.07, unit = "1/(mM*s)" }}
kr = {{ value = 1e-3, unit = "1/(mM*s)" }}
kc = {{ value = 1.0, unit = "1/(mM*s)" }}
kg = {{ value = 0.5, unit = "1/(mM*s)" }}
s = {{ value = 1e-3, unit = "mM/s" }}
kd = {{ value = 0.05, unit = "1/s" }}
syn = {{ value = 1e-3, unit = "mM/s" }}
[reactions.fenton]
equation = "Fe2 + H2O2 -> Fe3"
rate = "kf * Fe2 * H2O2"
[reactions.fe_reduction]
equation = "Fe3 + GSH -> Fe2"
rate = "kr * Fe3 * GSH"
[reactions.cu_fenton]
equation = "Cu1 + H2O2 -> Cu2"
rate = "kc * Cu1 * H2O2"
[reactions.cu_reduction]
equation = "Cu2 + GSH -> Cu1"
rate = "kg * Cu2 * GSH"
[reactions.h2o2_supply]
equation = "-> H2O2"
rate = "s"
[reactions.h2o2_clearance]
equation = "H2O2 ->"
rate = "kd * H2O2"
[reactions.gsh_synthesis]
equation = "-> GSH"
rate = "syn"
"#,
        time = time
    )
}

/// The number after `prefix` on the line of `text` that starts with `line_start`.
pub fn number_after(text: &str, line_start: &str, prefix: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("no line starting with {line_start:?} in:\n{text}"));
    let rest = line
        .split_once(prefix)
        .unwrap_or_else(|| panic!("no {prefix:?} in {line:?}"))
        .1;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after {prefix:?} in {line:?}"))
}
