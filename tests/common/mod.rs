//! Shared helpers of the integration tests: scenarios from TOML text, engines on either
//! backend, and the GPU context rule (no adapter = failure with install instructions).
#![allow(dead_code)]

use ionfield::config::{self, Scenario};
use ionfield::cpu::CpuEngine;
use ionfield::gpu::{GpuContext, GpuEngine, INSTALL_LAVAPIPE};
use ionfield::model::Model;
use ionfield::sim::Engine;

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

/// Runs `ionfield args…` with `dir` as working directory and XDG_RUNTIME_DIR (silences
/// Mesa's "XDG_RUNTIME_DIR is invalid" warning), RUST_LOG unset; fails on a panic or a
/// signal.
pub fn ionfield(dir: &std::path::Path, args: &[&str]) -> Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ionfield"))
        .args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", dir)
        .env_remove("RUST_LOG")
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
