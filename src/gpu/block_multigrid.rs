//! The coupled multigrid on the device: one V-cycle of the whole coupled matrix
//! W = σ·I − J_R − A as the preconditioner of `gpu::coupled`'s solves at long steps
//! (`shaders/block_multigrid.wgsl`, appended to `shaders/multigrid.wgsl`, whose levels,
//! vectors and buffers it shares with `gpu::multigrid`). CPU twin: `cpu::block_multigrid`:
//! the same aggregation levels, the same blocks (σ·count + each species' diffusion
//! diagonal − J_R summed over the aggregate), collective red–black Gauss–Seidel with the
//! same sweeps in the same colour order (2 down, 2 up, 1 on the coarsest level), factors
//! in f32. What it does not do: the CPU's switch to W-cycles after slow solves, and the
//! CPU's conservation correction inside the cycle (the device corrects each solve's
//! result instead, `gpu::coupled`).

use wgpu::util::DeviceExt;

use super::diffuse::workgroups_2d;
use super::kernel::{Kernel, Slot};
use super::multigrid::{GpuMultigrid, LevelParams, SHADER as MULTIGRID_SHADER};
use super::{Error, GpuContext};
use crate::chem::sparse::LuPlan;
use crate::chem::wgsl::block_multigrid_source;
use crate::chem::Network;

/// Collective sweeps before and after the coarse correction, and on the coarsest level
/// (`cpu::block_multigrid`'s SWEEPS and COARSEST_SWEEPS).
const SWEEPS: usize = 2;
const COARSEST_SWEEPS: usize = 1;

/// The coupled multigrid's pipelines, blocks and per-level bind groups.
pub struct GpuBlockMultigrid {
    level_voxels: Vec<usize>,
    n_vars: usize,
    sum_jac: wgpu::ComputePipeline,
    factor: wgpu::ComputePipeline,
    relax: wgpu::ComputePipeline,
    restrict: wgpu::ComputePipeline,
    prolong: wgpu::ComputePipeline,
    /// Per level, the bind groups of colour 0 and colour 1.
    bind_groups: Vec<[wgpu::BindGroup; 2]>,
    /// J_R of every level (level 0 first, at offset 0), NJ per voxel.
    pub jacs: wgpu::Buffer,
    /// Bytes of level 0's J_R (what the step copies in from the block kernel).
    pub level0_jac_bytes: u64,
    x: wgpu::Buffer,
}

impl GpuBlockMultigrid {
    /// The coupled multigrid over `mg`'s levels for `net`, with `n_vars` integrated
    /// species, species `s` at integrated index `var_of[s]`.
    pub fn new(
        ctx: &GpuContext,
        mg: &GpuMultigrid,
        net: &Network,
        var_of: &[Option<usize>],
        n_vars: usize,
    ) -> Result<GpuBlockMultigrid, Error> {
        let device = &ctx.device;
        let plan = LuPlan::new(net);
        let (nj, nl) = (plan.matrix.len().max(1), plan.slots().len().max(1));
        let level_voxels: Vec<usize> = mg.level_params.iter().map(|p| p.n as usize).collect();
        let (mut jac_off, mut lu_off) = (Vec::new(), Vec::new());
        let (mut jac_len, mut lu_len) = (0usize, 0usize);
        for &n in &level_voxels {
            jac_off.push(jac_len);
            lu_off.push(lu_len);
            jac_len += n * nj;
            lu_len += n * nl;
        }
        for (what, len) in [
            ("the coupled multigrid's J_R", jac_len),
            ("its blocks", lu_len),
        ] {
            if len as u64 * 4 > device.limits().max_storage_buffer_binding_size {
                return Err(Error::TooLarge {
                    what: format!("{what} needs {} MB", len as u64 * 4 / 1_000_000),
                    allowed: format!(
                        "a storage binding holds at most {} MB",
                        device.limits().max_storage_buffer_binding_size / 1_000_000
                    ),
                });
            }
        }
        let storage = |label: &str, values: usize| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (values.max(1) * 4) as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let jacs = storage("ionfield.bmg.jacs", jac_len);
        let lus = storage("ionfield.bmg.lus", lu_len);
        let (r, w) = (Slot::Read, Slot::Write);
        let kernel = Kernel::new(
            device,
            "block_multigrid.wgsl (generated)",
            block_multigrid_source(MULTIGRID_SHADER, net, var_of, n_vars),
            &[Slot::Uniform, r, r, r, w, w, r, w, w, w, w],
            &[
                "sum_jac",
                "block_factor",
                "block_relax",
                "block_restrict",
                "prolong",
            ],
        )?;
        let [sum_jac, factor, relax, restrict, prolong]: [_; 5] = kernel
            .pipelines
            .clone()
            .try_into()
            .expect("five entry points");
        let mut bind_groups = Vec::new();
        for (l, p) in mg.level_params.iter().enumerate() {
            let make = |colour: u32| {
                let params = LevelParams {
                    colour,
                    jac_off: jac_off[l] as u32,
                    lu_off: lu_off[l] as u32,
                    c_jac_off: jac_off.get(l + 1).copied().unwrap_or(0) as u32,
                    ..*p
                };
                let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("ionfield.bmg.level"),
                    contents: bytemuck::bytes_of(&params),
                    usage: wgpu::BufferUsages::UNIFORM,
                });
                let mut buffers: Vec<&wgpu::Buffer> = vec![&uniform];
                buffers.extend(mg.shared.iter());
                buffers.push(&jacs);
                buffers.push(&lus);
                kernel.bind(device, "ionfield.bmg.bind_group", &buffers)
            };
            bind_groups.push([make(0), make(1)]);
        }
        Ok(GpuBlockMultigrid {
            level0_jac_bytes: (level_voxels[0] * nj * 4) as u64,
            level_voxels,
            n_vars,
            sum_jac,
            factor,
            relax,
            restrict,
            prolong,
            bind_groups,
            jacs,
            x: mg.x.clone(),
        })
    }

    fn dispatch(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        pipeline: &wgpu::ComputePipeline,
        group: &wgpu::BindGroup,
        invocations: usize,
    ) {
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, group, &[]);
        let (gx, gy) = workgroups_2d(invocations);
        pass.dispatch_workgroups(gx, gy, 1);
    }

    /// Records the blocks of every level for the σ the multigrid holds: J_R summed onto
    /// the coarser levels (level 0 must be in `jacs`), then every level factored.
    pub fn encode_factor(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("ionfield.bmg.factor"),
            timestamp_writes: None,
        });
        let last = self.level_voxels.len() - 1;
        for l in 0..last {
            let g = &self.bind_groups[l][0];
            self.dispatch(&mut pass, &self.sum_jac, g, self.level_voxels[l + 1]);
        }
        for l in 0..=last {
            let g = &self.bind_groups[l][0];
            self.dispatch(&mut pass, &self.factor, g, self.level_voxels[l]);
        }
    }

    /// Records x ≈ W⁻¹·b on level 0 by one V-cycle from x = 0 (`b` and `x` of the shared
    /// per-species multigrid, level 0).
    pub fn encode_v_cycle(&self, encoder: &mut wgpu::CommandEncoder) {
        let level0_bytes = (self.level_voxels[0] * self.n_vars * 4) as u64;
        encoder.clear_buffer(&self.x, 0, Some(level0_bytes));
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("ionfield.bmg.v_cycle"),
            timestamp_writes: None,
        });
        let last = self.level_voxels.len() - 1;
        let sweep = |pass: &mut wgpu::ComputePass<'_>, l: usize, colours: [usize; 2]| {
            for c in colours {
                self.dispatch(
                    pass,
                    &self.relax,
                    &self.bind_groups[l][c],
                    self.level_voxels[l],
                );
            }
        };
        for l in 0..last {
            for _ in 0..SWEEPS {
                sweep(&mut pass, l, [0, 1]);
            }
            let coarse = self.level_voxels[l + 1] * self.n_vars;
            self.dispatch(&mut pass, &self.restrict, &self.bind_groups[l][0], coarse);
        }
        for _ in 0..COARSEST_SWEEPS {
            sweep(&mut pass, last, [0, 1]);
        }
        for l in (0..last).rev() {
            let fine = self.level_voxels[l] * self.n_vars;
            self.dispatch(&mut pass, &self.prolong, &self.bind_groups[l][0], fine);
            for _ in 0..SWEEPS {
                sweep(&mut pass, l, [1, 0]);
            }
        }
    }
}
