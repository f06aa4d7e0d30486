//! Diffusion throughput: one full Douglas ADI step (x, y, z sweeps) of N³ × 8 species on
//! the CPU backend (f64, rayon) and the wgpu backend (whatever adapter is present), after
//! warm-up, without shader compilation or upload. Prints species-voxel updates per second
//! (SVU/s) and effective bandwidth from the bytes each step must move. Results: BENCHMARKS.md.
//!
//! `cargo bench --bench diffusion [-- 64 128]` (sizes; default 64 and 128).

use ionfield::config;
use ionfield::cpu::CpuEngine;
use ionfield::engine::Engine;
use ionfield::gpu::{GpuContext, GpuEngine};
use ionfield::model::Model;
use std::time::Instant;

const N_SPECIES: usize = 8;

/// Minimum bytes a step moves per species-voxel (each array touched once per sweep;
/// neighbour reads assumed cache hits): GPU f32 x: u, mask, v; y: v, mask, v;
/// z: v, mask, u, u → 10 accesses × 4 B. CPU f64: the same with 8-byte values, 4-byte mask.
const GPU_BYTES_PER_SVU: f64 = 40.0;
const CPU_BYTES_PER_SVU: f64 = 7.0 * 8.0 + 3.0 * 4.0;

fn scenario(n: usize) -> config::Scenario {
    let mut toml = format!(
        "name = \"bench\"\n[grid]\nshape = [{n}, {n}, {n}]\nvoxel_um = 10.0\n[time]\ndt_s = 1.0\nend_s = 1.0\n"
    );
    for s in 0..N_SPECIES {
        // D = 2000 µm²/s, dt = 1 s, dx = 10 µm → r = 20 (docs/performance.md and BioFVM runs).
        toml += &format!(
            "[species.s{s}]\ndiffusion_um2_per_s = 2000.0\n[species.s{s}.initial]\nuniform_mm = 1.0\n[[species.s{s}.initial.regions]]\nshape = \"gaussian\"\ncentre_um = [{c}, {c}, {c}]\nsigma_um = 50.0\nvalue_mm = 1.0\n",
            c = n as f64 * 5.0
        );
    }
    config::load_str(&toml, "bench", &[]).expect("bench scenario")
}

/// Host memory bandwidth, GB/s: a rayon copy of 256 MiB, best of 5 (read + write counted).
fn host_copy_bandwidth_gb_s() -> f64 {
    use rayon::prelude::*;
    let n = 32 << 20;
    let src = vec![1.0f64; n];
    let mut dst = vec![0.0f64; n];
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        dst.par_chunks_mut(1 << 16)
            .zip(src.par_chunks(1 << 16))
            .for_each(|(d, s)| d.copy_from_slice(s));
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(&dst);
    2.0 * (n * 8) as f64 / best / 1e9
}

fn report(label: &str, n: usize, steps: usize, secs: f64, bytes_per_svu: f64, bw: f64) {
    let svu = (n * n * n * N_SPECIES * steps) as f64 / secs;
    let gb_s = svu * bytes_per_svu / 1e9;
    println!(
        "{label:<34} {n:>4}³×{N_SPECIES}  {:>8.2} ms/step  {:>8.1} M SVU/s  {:>6.2} GB/s effective  ({:.0} % of host copy bandwidth)",
        secs / steps as f64 * 1e3,
        svu / 1e6,
        gb_s,
        100.0 * gb_s / bw
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![64, 128]
    } else {
        sizes
    };
    let bw = host_copy_bandwidth_gb_s();
    println!(
        "machine: {} threads; host copy bandwidth {bw:.1} GB/s (rayon memcpy, read+write)",
        rayon::current_num_threads()
    );
    for &n in &sizes {
        let model = Model::build(&scenario(n));
        let steps = if n <= 64 { 20 } else { 5 };

        let mut cpu = CpuEngine::new(&model);
        cpu.advance(2, 1.0).expect("warm-up");
        let t = Instant::now();
        cpu.advance(steps as u64, 1.0).expect("cpu steps");
        report(
            "cpu (f64, rayon)",
            n,
            steps,
            t.elapsed().as_secs_f64(),
            CPU_BYTES_PER_SVU,
            bw,
        );

        match GpuContext::new(std::env::var("IONFIELD_ADAPTER").ok().as_deref()) {
            Ok(ctx) => {
                let name = ctx.adapter.info.name.clone();
                let mut gpu = GpuEngine::new(ctx, &model).expect("gpu engine");
                gpu.advance(2, 1.0).expect("warm-up");
                gpu.context().wait().expect("wait");
                let t = Instant::now();
                gpu.advance(steps as u64, 1.0).expect("gpu steps");
                gpu.context().wait().expect("wait");
                report(
                    &format!("gpu ({})", name.split(' ').next().unwrap_or("")),
                    n,
                    steps,
                    t.elapsed().as_secs_f64(),
                    GPU_BYTES_PER_SVU,
                    bw,
                );
            }
            Err(e) => println!("gpu: not measured ({e})"),
        }
    }
}
