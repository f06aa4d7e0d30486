//! One V-cycle of the aggregation multigrid of σ·I − A (the diffusion half of the coupled
//! scheme's factored preconditioner) for N³ × 8 species: the CPU twin (`cpu::multigrid`,
//! f64, one species after another, rayon inside each sweep) and the device one
//! (`gpu::multigrid`, f32, all species in each dispatch, one compute pass), after
//! warm-up, without upload. r = c/σ = 20, a vessel line held. Prints ms per V-cycle, the
//! dispatches a device cycle records, and the bytes it must move per species-voxel
//! (an estimate: see `BYTES_PER_SVU`). Results: BENCHMARKS.md.
//!
//! `cargo bench --bench multigrid [-- 64 128]` (sizes; default 64).

use ionfield::cpu::multigrid::Hierarchy;
use ionfield::gpu::multigrid::GpuMultigrid;
use ionfield::gpu::GpuContext;
use std::time::Instant;

const N_SPECIES: usize = 8;

/// Bytes a V-cycle moves per species-voxel, f32, counted at the finest level (coarser
/// levels add 1/7): 8 one-colour relax dispatches, each streaming the operator (diagonal
/// and 3 couplings), count, b and x and writing x (8 × 4 B, neighbours from cache), the
/// fused residual restriction (b, x, operator: 6 × 4 B, plus the coarse write) and the
/// prolongation (x read and written): (8·32 + 26 + 8)·8/7 ≈ 330 B, all from DRAM on a
/// grid larger than the caches.
const BYTES_PER_SVU: f64 = 330.0;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() { vec![64] } else { sizes };
    println!("machine: {} threads", rayon::current_num_threads());
    for &n in &sizes {
        let shape = [n, n, n];
        let voxels = n * n * n;
        let held: Vec<bool> = (0..voxels)
            .map(|ix| ix % n == n / 3 && (ix / n) % n == n / 2)
            .collect();
        let hs: Vec<Hierarchy> = (0..N_SPECIES)
            .map(|s| {
                Hierarchy::new(
                    shape,
                    20.0 * (1.0 + s as f64 / 8.0),
                    &vec![0.0; voxels],
                    &held,
                )
            })
            .collect();
        let b: Vec<f64> = (0..voxels * N_SPECIES)
            .map(|i| ((i * 7919) % 13) as f64 - 6.0)
            .collect();
        let mut x = vec![0.0; voxels * N_SPECIES];
        let cycles = if n <= 64 { 10 } else { 3 };
        let cpu_cycle = |x: &mut [f64]| {
            for (s, h) in hs.iter().enumerate() {
                h.solve(
                    1.0,
                    &b[s * voxels..(s + 1) * voxels],
                    &mut x[s * voxels..(s + 1) * voxels],
                );
            }
        };
        cpu_cycle(&mut x);
        let t = Instant::now();
        for _ in 0..cycles {
            cpu_cycle(&mut x);
        }
        let cpu_s = t.elapsed().as_secs_f64() / cycles as f64;
        // No bandwidth figure for the CPU: one species' levels (about 14 MB of f64 at 64³)
        // stay largely in cache between its sweeps.
        println!(
            "cpu (f64, rayon)        {n:>4}³×{N_SPECIES}  {:>8.2} ms/V-cycle",
            cpu_s * 1e3
        );
        match GpuContext::new(std::env::var("IONFIELD_ADAPTER").ok().as_deref()) {
            Ok(ctx) => {
                let refs: Vec<&Hierarchy> = hs.iter().collect();
                let mg = GpuMultigrid::new(&ctx, &refs, &[]).expect("device multigrid");
                let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
                ctx.queue.write_buffer(&mg.b, 0, bytemuck::cast_slice(&b32));
                mg.set_sigma(&ctx, 1.0);
                let run = |k: usize| {
                    let mut encoder = ctx.device.create_command_encoder(&Default::default());
                    for _ in 0..k {
                        mg.encode_v_cycle(&mut encoder);
                    }
                    ctx.queue.submit([encoder.finish()]);
                    ctx.wait().expect("wait");
                };
                run(1);
                let t = Instant::now();
                run(cycles);
                let gpu_s = t.elapsed().as_secs_f64() / cycles as f64;
                let svu = (voxels * N_SPECIES) as f64;
                println!(
                    "gpu ({:<16}) {n:>4}³×{N_SPECIES}  {:>8.2} ms/V-cycle  {:>6.2} GB/s at {BYTES_PER_SVU:.0} B/SVU; {} dispatches per cycle",
                    ctx.adapter.info.name.split(' ').next().unwrap_or(""),
                    gpu_s * 1e3,
                    BYTES_PER_SVU * svu / gpu_s / 1e9,
                    mg.dispatches_per_cycle()
                );
            }
            Err(e) => println!("gpu: not measured ({e})"),
        }
    }
}
