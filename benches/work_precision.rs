//! Diffusion at equal accuracy: wall time to reach a stated error, not time per step.
//!
//! N³ × 8 species, 10 µm voxels, D = 2000 µm²/s, no decay, zero-flux faces (the setting of
//! `benches/diffusion.rs` and of the BioFVM comparison in BENCHMARKS.md). The initial field is
//! 1 mM plus three cosine modes of the cell-centred grid, amplitudes 0.5, 0.3 and 0.2 mM,
//! wave numbers (1,1,1), (4,3,2) and (20,17,11) (the last two are stiff transients). Each
//! mode is an exact eigenvector of the 7-point zero-flux Laplacian, so the exact solution of
//! the spatially discrete problem is known: every mode decays as exp(λ t) with
//! λ = −(4D/dx²) Σ_d sin²(k_d π / 2N). The error printed is the largest |u − exact| over
//! every voxel and species at `end_s`, in mM (the initial perturbation's amplitude is 1 mM),
//! so it is the time integrator's error alone, comparable with any code that uses the same
//! stencil.
//!
//! `cargo bench --bench work_precision [-- N [end_s [tolerance ...]]]` (default 64, 10 s,
//! tolerances 1e-2 … 1e-5); also runs the split scheme (Douglas ADI) at fixed dt for
//! reference. Results: BENCHMARKS.md.

use ionfield::config;
use ionfield::cpu::CpuEngine;
use ionfield::engine::Engine;
use ionfield::model::Model;
use std::f64::consts::PI;
use std::time::Instant;

const N_SPECIES: usize = 8;
const DX_UM: f64 = 10.0;
const D_UM2_PER_S: f64 = 2000.0;
/// (wave numbers, amplitude mM) of the initial perturbation.
const MODES: [([usize; 3], f64); 3] = [([1, 1, 1], 0.5), ([4, 3, 2], 0.3), ([20, 17, 11], 0.2)];

/// `[time]` block: the coupled scheme (adaptive at `tolerance`) or the split scheme at `dt_s`.
fn scenario(n: usize, time: &str) -> config::Scenario {
    let mut toml = format!(
        "name = \"work_precision\"\n[grid]\nshape = [{n}, {n}, {n}]\nvoxel_um = {DX_UM}\n{time}"
    );
    for s in 0..N_SPECIES {
        toml += &format!(
            "[species.s{s}]\ndiffusion_um2_per_s = {D_UM2_PER_S}\n[species.s{s}.initial]\nuniform_mm = 1.0\n"
        );
    }
    config::load_str(&toml, "work_precision", &[]).expect("bench scenario")
}

/// Cosine mode `k` at voxel (i, j, l) of an N³ cell-centred grid.
fn mode(n: usize, k: [usize; 3], ijl: [usize; 3]) -> f64 {
    (0..3)
        .map(|d| (k[d] as f64 * PI * (ijl[d] as f64 + 0.5) / n as f64).cos())
        .product()
}

/// Eigenvalue (1/s) of mode `k` under the zero-flux 7-point Laplacian.
fn lambda_per_s(n: usize, k: [usize; 3]) -> f64 {
    let s: f64 = k
        .iter()
        .map(|&kd| (kd as f64 * PI / (2.0 * n as f64)).sin().powi(2))
        .sum();
    -4.0 * D_UM2_PER_S / (DX_UM * DX_UM) * s
}

/// The perturbation (mM) at time `t_s`, x fastest.
fn perturbation(n: usize, t_s: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(n * n * n);
    let amps: Vec<f64> = MODES
        .iter()
        .map(|&(k, a)| a * (lambda_per_s(n, k) * t_s).exp())
        .collect();
    for l in 0..n {
        for j in 0..n {
            for i in 0..n {
                out.push(
                    MODES
                        .iter()
                        .zip(&amps)
                        .map(|(&(k, _), a)| a * mode(n, k, [i, j, l]))
                        .sum(),
                );
            }
        }
    }
    out
}

/// Runs one engine from the perturbed state to `end_s`; prints wall time, steps, error.
fn run(label: &str, n: usize, end_s: f64, time: &str) {
    let sc = scenario(n, time);
    let model = Model::build(&sc);
    let mut e = CpuEngine::new(&model);
    let p0 = perturbation(n, 0.0);
    for s in 0..N_SPECIES {
        e.add_to_field(s, &p0).expect("perturb");
    }
    let t = Instant::now();
    let steps = if e.is_adaptive() {
        let (reached, steps) = e.advance_adaptive(end_s, u64::MAX).expect("advance");
        assert!(
            (reached - end_s).abs() <= 1e-9 * end_s,
            "{reached} vs {end_s}"
        );
        steps
    } else {
        let dt = sc.time.dt_s;
        let steps = (end_s / dt).round() as u64;
        e.advance(steps, dt).expect("advance");
        steps
    };
    let secs = t.elapsed().as_secs_f64();
    let exact = perturbation(n, end_s);
    let err = (0..N_SPECIES)
        .flat_map(|s| {
            e.field_mm(s)
                .iter()
                .zip(&exact)
                .map(|(u, x)| (u - 1.0 - x).abs())
                .collect::<Vec<_>>()
        })
        .fold(0.0f64, f64::max);
    let detail = e
        .step_stats()
        .map(|st| {
            format!(
                ", {} rejected, h {:.3}–{:.3} s, {} linear iterations",
                st.rejected, st.h_min_s, st.h_max_s, st.linear_iterations
            )
        })
        .unwrap_or_default();
    println!(
        "{label:<28} {n}³×{N_SPECIES} to {end_s} s: stepping {secs:.3} s, {steps} steps ({:.2} ms/step){detail}; max error {err:.3e} mM",
        secs / steps.max(1) as f64 * 1e3
    );
}

fn main() {
    let args: Vec<f64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().map_or(64, |&v| v as usize);
    let end_s = args.get(1).copied().unwrap_or(10.0);
    let tolerances = if args.len() > 2 {
        args[2..].to_vec()
    } else {
        vec![1e-2, 1e-3, 1e-4, 1e-5]
    };
    println!(
        "threads: {}; exact decay of the (1,1,1) mode over {end_s} s: {:.4}",
        rayon::current_num_threads(),
        (lambda_per_s(n, [1, 1, 1]) * end_s).exp()
    );
    for tol in tolerances {
        run(
            &format!("coupled, tolerance {tol:e}"),
            n,
            end_s,
            &format!(
                "[time]\ndt_s = 1.0\nend_s = {end_s}\nscheme = \"coupled\"\ntolerance = {tol}\n"
            ),
        );
    }
    if args.len() <= 2 {
        for dt in [1.0, 0.25] {
            run(
                &format!("split (Douglas ADI), dt {dt} s"),
                n,
                end_s,
                &format!("[time]\ndt_s = {dt}\nend_s = {end_s}\n"),
            );
        }
    }
}
