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
        let mg = GpuMultigrid::new(&ctx, &refs, &[false, false, true]).expect("device multigrid");
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

/// (largest max |GPU − CPU| / max |CPU| over the species of species-major vectors of
/// `n` voxels each, that species); a species that is 0 on the CPU must be 0 on the GPU.
fn worst_per_species(what: &str, cpu: &[f64], gpu: &[f32], n: usize) -> (f64, usize) {
    let mut worst = (0.0f64, 0usize);
    for k in 0..cpu.len() / n {
        let (c, g) = (&cpu[k * n..(k + 1) * n], &gpu[k * n..(k + 1) * n]);
        let scale = c.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if scale == 0.0 {
            assert!(
                g.iter().all(|&v| v == 0.0),
                "{what}: species {k} should be 0"
            );
            continue;
        }
        let err = c
            .iter()
            .zip(g)
            .fold(0.0f64, |m, (a, b)| m.max((a - *b as f64).abs()));
        if err / scale > worst.0 {
            worst = (err / scale, k);
        }
    }
    worst
}

/// fe_fenton_cdt's 640 µm block on 10³ voxels of 64 µm, with its vessels and network.
fn fenton_model_10() -> Model {
    let path = "configs/therapies/fe_fenton_cdt.toml";
    let sets: Vec<String> = ["grid.shape=[10,10,10]", "grid.voxel_um=64"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let resolved = ionfield::config::load_resolved(
        ionfield::config::catalog::file(path).expect("a preset"),
        &ionfield::config::catalog::source_name(path),
        std::path::Path::new("."),
        &sets,
        false,
    )
    .expect("the preset loads");
    Model::build(&resolved.scenario)
}

/// The coupled scheme's per-voxel reaction parts on the device (`gpu::coupled_blocks`, the
/// network generated into `shaders/coupled_blocks.wgsl`) against the CPU twin
/// (`Coupled::step_parts`) on fe_fenton_cdt's 640 µm block at 10³ with its vessels
/// (held rows) and every integrated species raised off its baseline so every reaction
/// runs: R(y), J_R·x, the block solve (σ − J_R)⁻¹·x and W·x = σx − A·x − J_R·x at
/// σ = 1/(γ·10 s), each within 2e-4 of the species' largest value (f32 against f64).
#[test]
fn device_reaction_blocks_match_the_cpu() {
    use ionfield::cpu::coupled::{integrated_species, Coupled};
    use ionfield::gpu::coupled_blocks::{BlockPass, GpuBlocks};
    let Some(ctx) = common::gpu_context() else {
        return;
    };
    let model = fenton_model_10();
    let vars = integrated_species(&model);
    let n = model.grid.n_voxels();
    let mut conc = model.initial_mm.clone();
    for (k, &s) in vars.iter().enumerate() {
        for (i, c) in conc[s].iter_mut().enumerate() {
            let held = model.mask[i] & ionfield::grid::held_bit(s) != 0;
            if !held {
                *c = (*c * (1.0 + 0.2 * ((i * 13 + k * 7) % 11) as f64 / 11.0))
                    .max(0.01 * (1 + (i * 7919 + k) % 17) as f64 / 17.0);
            }
        }
    }
    let h = 10.0;
    let sigma = 1.0 / ((1.0 + 1.0 / 2f64.sqrt()) * h);
    let x: Vec<f64> = (0..vars.len() * n)
        .map(|i| ((i * 104_729) % 23) as f64 / 23.0 - 0.4)
        .collect();
    let mut cpu = Coupled::new(&model, 1e-2, 1.0, true);
    assert_eq!(
        cpu.species(),
        vars,
        "the device and the CPU integrate the same species"
    );
    let parts = cpu.step_parts(&conc, sigma, &x);

    let mut gpu = GpuBlocks::new(&ctx, &model)
        .expect("device blocks")
        .expect("the preset has a network");
    let y32: Vec<f32> = vars
        .iter()
        .flat_map(|&s| conc[s].iter().map(|&v| v as f32))
        .collect();
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    ctx.queue
        .write_buffer(&gpu.y, 0, bytemuck::cast_slice(&y32));
    ctx.queue
        .write_buffer(&gpu.xin, 0, bytemuck::cast_slice(&x32));
    gpu.set_sigma(&ctx, sigma);
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    gpu.encode(&mut encoder, BlockPass::Blocks);
    gpu.encode(&mut encoder, BlockPass::Precond);
    ctx.queue.submit([encoder.finish()]);
    let (r_gpu, z_gpu) = (
        gpu.read(&ctx, &gpu.fout).expect("R"),
        gpu.read(&ctx, &gpu.xout).expect("z"),
    );
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    encoder.clear_buffer(&gpu.xout, 0, None);
    gpu.encode(&mut encoder, BlockPass::ApplyJr);
    ctx.queue.submit([encoder.finish()]);
    let jx_gpu: Vec<f32> = gpu
        .read(&ctx, &gpu.xout)
        .expect("J x")
        .iter()
        .map(|v| -v)
        .collect();
    // W·x = σx − A·x − J_R·x: the diffusion operator, then J_R.
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    gpu.encode(&mut encoder, BlockPass::SigmaMinusA);
    gpu.encode(&mut encoder, BlockPass::ApplyJr);
    ctx.queue.submit([encoder.finish()]);
    let wx_gpu = gpu.read(&ctx, &gpu.xout).expect("W x");
    assert_eq!(gpu.failed_pivots(&ctx).expect("status"), 0);

    for (what, cpu_v, gpu_v) in [
        ("R(y)", &parts.r, &r_gpu),
        ("J_R·x", &parts.jx, &jx_gpu),
        ("(σ − J_R)⁻¹·x", &parts.block_solve, &z_gpu),
        ("W·x", &parts.wx, &wx_gpu),
    ] {
        let worst = worst_per_species(what, cpu_v, gpu_v, n);
        let name = &model.species[vars[worst.1]].name;
        println!(
            "{what}: worst max |GPU − CPU| / max |CPU| = {:.2e} ({name})",
            worst.0
        );
        assert!(worst.0 <= 2e-4, "{what}: {:e} in {name}", worst.0);
    }
}

/// The whole factored preconditioner on the device against `Coupled::step_parts`'s
/// apply_split: the block solve (`gpu::coupled_blocks`), then σ·(σ − A)⁻¹ by one V-cycle of
/// every integrated species (`gpu::multigrid`, species without diffusion or loss on the
/// identity's levels) and the uniform shift of the closed species (no held voxel, no loss:
/// their sums are kept, by a fixed-order reduction). fe_fenton_cdt on 10³ × 64 µm, as
/// above, at σ = 1/(γ·10 s) and 1/(γ·600 s); within 2e-4 of each species' largest value,
/// and the closed species' sums within 1e-5 of the CPU's.
#[test]
fn device_preconditioner_matches_the_cpu() {
    use ionfield::cpu::coupled::{integrated_species, is_closed, species_hierarchy, Coupled};
    use ionfield::cpu::multigrid::Hierarchy;
    use ionfield::gpu::coupled_blocks::{BlockPass, GpuBlocks};
    use ionfield::gpu::multigrid::GpuMultigrid;
    let Some(ctx) = common::gpu_context() else {
        return;
    };
    let model = fenton_model_10();
    let vars = integrated_species(&model);
    let closed: Vec<bool> = vars.iter().map(|&s| is_closed(&model, s)).collect();
    assert!(closed.iter().any(|&c| c), "the case has a closed species");
    let n = model.grid.n_voxels();
    let hs: Vec<Hierarchy> = vars.iter().map(|&s| species_hierarchy(&model, s)).collect();
    let refs: Vec<&Hierarchy> = hs.iter().collect();
    let mg = GpuMultigrid::new(&ctx, &refs, &closed).expect("device multigrid");
    let mut blocks = GpuBlocks::new(&ctx, &model)
        .expect("device blocks")
        .expect("the preset has a network");
    let conc = model.initial_mm.clone();
    let x: Vec<f64> = (0..vars.len() * n)
        .map(|i| ((i * 104_729) % 23) as f64 / 23.0 - 0.3)
        .collect();
    let y32: Vec<f32> = vars
        .iter()
        .flat_map(|&s| conc[s].iter().map(|&v| v as f32))
        .collect();
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    ctx.queue
        .write_buffer(&blocks.y, 0, bytemuck::cast_slice(&y32));
    ctx.queue
        .write_buffer(&blocks.xin, 0, bytemuck::cast_slice(&x32));
    let bytes = (vars.len() * n * 4) as u64;
    for h in [10.0, 600.0] {
        let sigma = 1.0 / ((1.0 + 1.0 / 2f64.sqrt()) * h);
        let mut cpu = Coupled::new(&model, 1e-2, 1.0, true);
        let want = cpu.step_parts(&conc, sigma, &x).precond;
        blocks.set_sigma(&ctx, sigma);
        mg.set_sigma(&ctx, sigma);
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        blocks.encode(&mut encoder, BlockPass::Blocks);
        blocks.encode(&mut encoder, BlockPass::Precond);
        encoder.copy_buffer_to_buffer(&blocks.xout, 0, &mg.b, 0, bytes);
        mg.encode_preconditioner(&mut encoder);
        ctx.queue.submit([encoder.finish()]);
        let got = mg.read_x(&ctx).expect("read back");
        let worst = worst_per_species("P⁻¹·x", &want, &got, n);
        for k in 0..vars.len() {
            let (c, g) = (&want[k * n..(k + 1) * n], &got[k * n..(k + 1) * n]);
            if closed[k] {
                let (sc, sg) = (
                    c.iter().sum::<f64>(),
                    g.iter().map(|&v| v as f64).sum::<f64>(),
                );
                let size = c.iter().map(|v| v.abs()).sum::<f64>();
                assert!(
                    (sc - sg).abs() <= 1e-5 * size,
                    "h = {h} s: closed {} sums {sc:e} against {sg:e}",
                    model.species[vars[k]].name
                );
            }
        }
        let name = &model.species[vars[worst.1]].name;
        println!(
            "h = {h} s: P⁻¹·x worst max |GPU − CPU| / max |CPU| = {:.2e} ({name})",
            worst.0
        );
        assert!(worst.0 <= 2e-4, "h = {h} s: {:e} in {name}", worst.0);
    }
}
