//! The wgpu kernels against the f64 CPU reference: same scheme, same matrices, so the only
//! difference is f32 rounding. Tolerance: max |GPU − CPU| ≤ 1e-4 × the field's range
//! (f32 has a 6e-8 unit roundoff; tens of steps of three sweeps stay two orders below).

mod common;

use common::{scenario, Backend};
use ionfield::engine::Engine;
use ionfield::gpu::{GpuEngine, XSweep};
use ionfield::model::Model;

/// Mixed boundaries: Dirichlet on x_min and z_max, zero flux elsewhere; a vessel held at a
/// value; a tissue with faster uptake; a second species with θ = 1 and a non-diffusing
/// third one that only decays.
fn mixed_toml(shape: [usize; 3], theta: f64) -> String {
    let [nx, ny, nz] = shape;
    let (lx, ly, lz) = (nx as f64 * 10.0, ny as f64 * 10.0, nz as f64 * 10.0);
    format!(
        r#"
name = "mixed"
[grid]
shape = [{nx}, {ny}, {nz}]
voxel_um = 10.0
[time]
dt_s = 1.0
end_s = 10.0
theta = {theta}
[tissues.tumour]
shape = "sphere"
centre_um = [{cx}, {cy}, {cz}]
radius_um = {rad}
[species.O2]
diffusion_um2_per_s = 2000.0
uptake_per_s = {{ normal = 0.02, tumour = 0.2 }}
boundary = {{ all = "zero_flux", x_min = 0.1, z_max = 0.05 }}
[species.O2.initial]
uniform_mm = 0.03
[[species.O2.initial.regions]]
shape = "gaussian"
centre_um = [{cx}, {cy}, {cz}]
sigma_um = 30.0
value_mm = 0.08
[species.glucose]
diffusion_um2_per_s = 300.0
decay_per_s = 0.001
initial = {{ uniform_mm = 4.0 }}
boundary = {{ all = 5.0, y_max = "zero_flux" }}
[species.GSH]
diffusion_um2_per_s = 0.0
decay_per_s = 0.05
uptake_per_s = {{ tumour = 0.1 }}
initial = {{ uniform_mm = 2.0 }}
[[vessels]]
shape = "cylinder"
start_um = [{vx}, {vy}, 0.0]
end_um = [{vx}, {vy}, {lz}]
radius_um = 8.0
hold_mm = {{ O2 = 0.054, glucose = 5.0 }}
"#,
        cx = lx * 0.6,
        cy = ly * 0.5,
        cz = lz * 0.4,
        rad = lx.min(ly).min(lz) * 0.3,
        vx = lx * 0.25,
        vy = ly * 0.7,
    )
}

fn compare(shape: [usize; 3], theta: f64, steps: u64) {
    compare_with(shape, theta, steps, None);
}

/// `x_sweep`: the x sweep's kernel (`None`: the adapter's choice).
fn compare_with(shape: [usize; 3], theta: f64, steps: u64, x_sweep: Option<XSweep>) {
    let sc = scenario(&mixed_toml(shape, theta));
    let model = Model::build(&sc);
    let species: Vec<usize> = (0..model.species.len()).collect();
    let mut cpu = common::engine(Backend::Cpu, &model).expect("cpu");
    let Some(mut gpu) = (match x_sweep {
        None => common::engine(Backend::Gpu, &model),
        Some(x) => common::gpu_context().map(|ctx| {
            Box::new(GpuEngine::with_x_sweep(ctx, &model, x).expect("GPU engine"))
                as Box<dyn Engine>
        }),
    }) else {
        return;
    };
    println!("{}", gpu.info().adapter);
    // Two segments with different dt, as the schedule does before an output time.
    for engine in [&mut cpu, &mut gpu] {
        engine.advance(steps - 1, 1.0).expect("advance");
        engine.advance(1, 0.4).expect("advance short step");
    }
    let c = cpu.read_fields(&species).expect("cpu read");
    let g = gpu.read_fields(&species).expect("gpu read");
    for (s, sp) in model.species.iter().enumerate() {
        let (lo, hi) = c[s]
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let range = (hi - lo) as f64;
        let max_diff = c[s]
            .iter()
            .zip(&g[s])
            .map(|(a, b)| (*a as f64 - *b as f64).abs())
            .fold(0.0, f64::max);
        let rel = max_diff / range.max(1e-30);
        println!(
            "{shape:?} θ={theta} {}: range [{lo:.4e}, {hi:.4e}] mM, max |GPU − CPU| = {max_diff:.3e} mM = {rel:.3e} of range",
            sp.name
        );
        assert!(
            range > 0.0,
            "{}: the test must produce a non-trivial field",
            sp.name
        );
        assert!(
            rel <= 1e-4,
            "{}: GPU differs from CPU by {rel:.3e} of range",
            sp.name
        );
    }
}

#[test]
fn gpu_matches_cpu_on_24_cubed_with_mixed_boundaries() {
    compare([24, 24, 24], 1.0, 20);
    compare([24, 24, 24], 0.5, 20);
}

/// Odd sizes that are not workgroup multiples, and a different length on every axis, so
/// a mix-up of strides or line counts cannot cancel out.
#[test]
fn gpu_matches_cpu_on_odd_17_13_11_grid() {
    compare([17, 13, 11], 1.0, 15);
}

/// Both kernels of the x sweep (one invocation per line; 64 lines a workgroup in tiles of
/// 16 voxels) on grids that fill whole tiles and workgroups and grids that do not: each
/// matches the CPU, and they match each other bit for bit (the same rows, eliminated in
/// the same order).
#[test]
fn both_x_sweep_kernels_match_cpu_and_each_other() {
    for (shape, theta, steps) in [([17, 13, 11], 1.0, 15), ([32, 16, 8], 0.5, 10)] {
        let mut fields = Vec::new();
        for x in [XSweep::Lines, XSweep::Tiled] {
            compare_with(shape, theta, steps, Some(x));
            let model = Model::build(&scenario(&mixed_toml(shape, theta)));
            let Some(ctx) = common::gpu_context() else {
                return;
            };
            let mut gpu = GpuEngine::with_x_sweep(ctx, &model, x).expect("GPU engine");
            gpu.advance(steps, 1.0).expect("advance");
            let all: Vec<usize> = (0..model.species.len()).collect();
            fields.push(gpu.read_fields(&all).expect("read back"));
        }
        let differing = fields[0]
            .iter()
            .flatten()
            .zip(fields[1].iter().flatten())
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        println!("{shape:?}: {differing} values differ between the two x-sweep kernels");
        assert_eq!(differing, 0, "{shape:?}");
    }
}

/// The device multigrid (`gpu::multigrid`, the diffusion half of the coupled scheme's
/// preconditioner) against its CPU twin (`cpu::multigrid`): one V-cycle of σ·I − A for
/// three species at once on a 24 × 20 × 16 box with a vessel along z (held for two of
/// them), a per-voxel loss for one, at r = c/σ = 1, 20 and 1000; the same operator in
/// f32 gives the CPU's f64 result within 1e-5 of its largest value, and that result is far
/// from the right-hand side scaled by 1/σ (the cycle does work).
#[test]
fn device_multigrid_v_cycle_matches_the_cpu() {
    use ionfield::cpu::multigrid::Hierarchy;
    use ionfield::gpu::multigrid::GpuMultigrid;
    let Some(ctx) = common::gpu_context() else {
        return;
    };
    let shape = [24, 20, 16];
    let n: usize = shape.iter().product();
    let vessel: Vec<bool> = (0..n)
        .map(|ix| ix % shape[0] == 5 && (ix / shape[0]) % shape[1] == 7)
        .collect();
    let none = vec![false; n];
    let loss: Vec<f64> = (0..n)
        .map(|ix| if ix % 3 == 0 { 0.2 } else { 0.0 })
        .collect();
    let zero = vec![0.0; n];
    for c in [1.0, 20.0, 1000.0] {
        let sigma = 1.0;
        let hs = [
            Hierarchy::new(shape, c, &zero, &vessel),
            Hierarchy::new(shape, 0.5 * c, &loss, &vessel),
            Hierarchy::new(shape, 2.0 * c, &zero, &none),
        ];
        let refs: Vec<&Hierarchy> = hs.iter().collect();
        let mg = GpuMultigrid::new(&ctx, &refs).expect("device multigrid");
        let b: Vec<f64> = (0..3 * n)
            .map(|i| ((i * 7919) % 13) as f64 - 6.0 + 0.25 * (i % 5) as f64)
            .collect();
        let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
        // The CPU twin from the same f32-representable right-hand side.
        let b: Vec<f64> = b32.iter().map(|&v| v as f64).collect();
        ctx.queue.write_buffer(&mg.b, 0, bytemuck::cast_slice(&b32));
        mg.set_sigma(&ctx, sigma);
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        mg.encode_v_cycle(&mut encoder);
        ctx.queue.submit([encoder.finish()]);
        let gpu = mg.read_x(&ctx).expect("read back");
        let mut cpu = vec![0.0; 3 * n];
        for (s, h) in hs.iter().enumerate() {
            h.solve(sigma, &b[s * n..(s + 1) * n], &mut cpu[s * n..(s + 1) * n]);
        }
        let scale = cpu.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = gpu
            .iter()
            .zip(&cpu)
            .fold(0.0f64, |m, (g, c)| m.max((*g as f64 - c).abs()));
        let moved = cpu
            .iter()
            .zip(&b)
            .fold(0.0f64, |m, (x, bv)| m.max((x - bv / sigma).abs()));
        println!("r = {c}: max |GPU − CPU| = {err:.3e} of max |x| = {scale:.3e}; |x − b/σ| up to {moved:.3e}");
        assert!(err <= 1e-5 * scale, "r = {c}: {err:e} against {scale:e}");
        assert!(
            moved > 0.1 * scale,
            "r = {c}: the cycle changed little ({moved:e})"
        );
    }
}
