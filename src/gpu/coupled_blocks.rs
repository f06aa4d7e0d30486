//! The coupled scheme's per-voxel reaction parts on the device
//! (`shaders/coupled_blocks.wgsl` with the network generated into it by
//! `chem::wgsl::coupled_kernel_source`): R(y) and J_R at a state, the factored blocks
//! σ − J_R, their solve, J_R·x and (`shaders/coupled_operator.wgsl`) σ·x − A·x, so W·x.
//! CPU twin: `cpu::coupled` (`Coupled::step_parts`).
//!
//! Part of the coupled scheme's GPU twin, with `gpu::multigrid` (the diffusion half of the
//! preconditioner); `gpu::coupled` runs the step around them.
//!
//! Vectors are species-major over the integrated species (`cpu::coupled::
//! integrated_species`): species k of voxel v at k·n + v.

use wgpu::util::DeviceExt;

use super::diffuse::workgroups_2d;
use super::kernel::{Kernel, Slot};
use super::{read_back, Error, GpuContext};
use crate::chem::wgsl::coupled_kernel_source;
use crate::config::MAX_TISSUES;
use crate::cpu::coupled::integrated_species;
use crate::model::Model;

/// Rust twin of `CoupledParams` in `shaders/coupled_blocks.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable, PartialEq)]
pub struct CoupledParams {
    pub n: u32,
    pub n_vars: u32,
    /// σ = 1/(γh), 1/s.
    pub sigma: f32,
    pub _pad: u32,
}

/// Rust twin of `OperatorParams` in `shaders/coupled_operator.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable, PartialEq)]
pub struct OperatorParams {
    pub nx: u32,
    pub ny: u32,
    pub nz: u32,
    pub n_vars: u32,
    /// σ = 1/(γh), 1/s.
    pub sigma: f32,
    pub _pad: [u32; 3],
}

/// Rust twin of `VarParams` in `shaders/coupled_operator.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable, PartialEq)]
pub struct VarParams {
    /// D/dx², 1/s.
    pub c: f32,
    pub held_bit: u32,
    pub _pad: [u32; 2],
    /// First-order loss per tissue id, 1/s.
    pub decay: [f32; MAX_TISSUES],
}

/// The diffusion operator's WGSL (`shaders/coupled_operator.wgsl`).
pub const OPERATOR_SHADER: &str = include_str!("../../shaders/coupled_operator.wgsl");

/// A pass of the device kernels over every voxel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockPass {
    /// fout = R(y), jac = J_R(y), lu = σ − J_R factored.
    Blocks,
    /// xout = (σ − J_R)⁻¹·xin per voxel (σ⁻¹ outside the network).
    Precond,
    /// xout −= J_R·xin.
    ApplyJr,
    /// xout = σ·xin − A·xin (every integrated species); with [`BlockPass::ApplyJr`]
    /// after it, xout = W·xin.
    SigmaMinusA,
    /// xout = −A·xin (the diffusion and loss part of f(y), negated).
    MinusA,
    /// fout = R(y) alone (J_R and the factored blocks are kept).
    Rates,
    /// The quasi-steady species at y into xout (quasi-steady species q at q·n + v).
    QuasiSteady,
}

/// The block kernel's buffers and pipelines for one model with a reaction network.
pub struct GpuBlocks {
    n: usize,
    n_vars: usize,
    params: CoupledParams,
    uniform: wgpu::Buffer,
    pipelines: [wgpu::ComputePipeline; 5],
    bind_group: wgpu::BindGroup,
    operator: wgpu::ComputePipeline,
    operator_uniform: wgpu::Buffer,
    operator_params: OperatorParams,
    jac: wgpu::Buffer,
    /// The network's read-only species that are not integrated (scenario index, in the
    /// order of `fixed`), and their values (mM), `fixed[j · n + v]`.
    pub fixed_species: Vec<usize>,
    pub fixed: wgpu::Buffer,
    operator_group: wgpu::BindGroup,
    /// The operator with σ = 0.
    _zero_uniform: wgpu::Buffer,
    zero_group: wgpu::BindGroup,
    status: wgpu::Buffer,
    /// The state (mM), R(y) (mM/s), and the input and output vectors of the solves.
    pub y: wgpu::Buffer,
    pub fout: wgpu::Buffer,
    pub xin: wgpu::Buffer,
    pub xout: wgpu::Buffer,
}

impl GpuBlocks {
    /// The kernel for `model`'s network (`None` without one). The read-only species
    /// take the model's initial values.
    pub fn new(ctx: &GpuContext, model: &Model) -> Result<Option<GpuBlocks>, Error> {
        let Some(net) = &model.network else {
            return Ok(None);
        };
        let device = &ctx.device;
        let n = model.grid.n_voxels();
        let vars = integrated_species(model);
        let mut var_of = vec![None; model.species.len()];
        for (k, &s) in vars.iter().enumerate() {
            var_of[s] = Some(k);
        }
        let mut fixed_of = vec![None; model.species.len()];
        let mut fixed: Vec<f32> = Vec::new();
        for &s in &net.inputs {
            if var_of[s].is_none() {
                fixed_of[s] = Some(fixed.len() / n);
                fixed.extend(model.initial_mm[s].iter().map(|&v| v as f32));
            }
        }
        if fixed.is_empty() {
            fixed.push(0.0); // a binding needs at least one value
        }
        let source = coupled_kernel_source(net, &var_of, &fixed_of, vars.len());
        let plan = crate::chem::sparse::LuPlan::new(net);
        let (nj, nl) = (plan.matrix.len().max(1), plan.slots().len().max(1));
        let len = n * vars.len();
        for (what, values) in [
            ("J_R", n * nj),
            ("the LU blocks", n * nl),
            ("a vector", len),
        ] {
            if values as u64 * 4 > device.limits().max_storage_buffer_binding_size {
                return Err(Error::TooLarge {
                    what: format!("{what} needs {} MB", values as u64 * 4 / 1_000_000),
                    allowed: format!(
                        "a storage binding holds at most {} MB",
                        device.limits().max_storage_buffer_binding_size / 1_000_000
                    ),
                });
            }
        }
        let buffer = |label: &str, size_f32: usize, usage: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (size_f32.max(1) * 4) as u64,
                usage: wgpu::BufferUsages::STORAGE | usage,
                mapped_at_creation: false,
            })
        };
        let copy = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let init = |label: &str, bytes: &[u8]| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytes,
                usage: wgpu::BufferUsages::STORAGE | copy,
            })
        };
        let mask = init("ionfield.cb.mask", bytemuck::cast_slice(&model.mask));
        let fixed_buf = init("ionfield.cb.fixed", bytemuck::cast_slice(&fixed));
        let y = buffer("ionfield.cb.y", len, copy);
        let fout = buffer("ionfield.cb.fout", len, copy);
        let jac = buffer("ionfield.cb.jac", n * nj, copy);
        let lu = buffer("ionfield.cb.lu", n * nl, copy);
        // [0] vanished pivots, [4 + i] the largest absolute row sum of J_R's row i.
        let status = init("ionfield.cb.status", &vec![0u8; 16 + 4 * net.state.len()]);
        let xin = buffer("ionfield.cb.xin", len, copy);
        let xout = buffer("ionfield.cb.xout", len, copy);
        let params = CoupledParams {
            n: n as u32,
            n_vars: vars.len() as u32,
            sigma: 1.0,
            _pad: 0,
        };
        let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("ionfield.cb.params"),
            contents: bytemuck::bytes_of(&params),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });

        let (r, w) = (Slot::Read, Slot::Write);
        let blocks_kernel = Kernel::new(
            device,
            "coupled_blocks.wgsl (generated)",
            source,
            &[Slot::Uniform, r, r, r, w, w, w, w, r, w],
            &["blocks", "precond", "apply_jr", "rates", "quasi_steady"],
        )?;
        let bind_group = blocks_kernel.bind(
            device,
            "ionfield.coupled_blocks.bind_group",
            &[
                &uniform, &mask, &y, &fixed_buf, &fout, &jac, &lu, &status, &xin, &xout,
            ],
        );
        let pipelines: [_; 5] = blocks_kernel
            .pipelines
            .try_into()
            .expect("five entry points");

        // The diffusion operator over the same vectors.
        let dx2 = model.grid.voxel_um * model.grid.voxel_um;
        let var_params: Vec<VarParams> = vars
            .iter()
            .map(|&s| {
                let sp = &model.species[s];
                VarParams {
                    c: (sp.diffusion_um2_per_s / dx2) as f32,
                    held_bit: crate::grid::held_bit(s),
                    _pad: [0; 2],
                    decay: sp.decay_per_s_by_tissue.map(|k| k as f32),
                }
            })
            .collect();
        let [nx, ny, nz] = model.grid.shape();
        let operator_params = OperatorParams {
            nx: nx as u32,
            ny: ny as u32,
            nz: nz as u32,
            n_vars: vars.len() as u32,
            sigma: 1.0,
            _pad: [0; 3],
        };
        let operator_uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("ionfield.cb.operator_params"),
            contents: bytemuck::bytes_of(&operator_params),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let var_buf = init("ionfield.cb.vars", bytemuck::cast_slice(&var_params));
        let op_kernel = Kernel::new(
            device,
            "coupled_operator.wgsl",
            crate::grid::wgsl_constants() + OPERATOR_SHADER,
            &[Slot::Uniform, r, r, r, w],
            &["sigma_minus_a"],
        )?;
        let operator_group = op_kernel.bind(
            device,
            "ionfield.coupled_operator.bind_group",
            &[&operator_uniform, &var_buf, &mask, &xin, &xout],
        );
        let zero_uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("ionfield.cb.operator_params_zero"),
            contents: bytemuck::bytes_of(&OperatorParams {
                sigma: 0.0,
                ..operator_params
            }),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let zero_group = op_kernel.bind(
            device,
            "ionfield.coupled_operator.bind_group_zero",
            &[&zero_uniform, &var_buf, &mask, &xin, &xout],
        );
        let [operator]: [_; 1] = op_kernel.pipelines.try_into().expect("one entry point");
        Ok(Some(GpuBlocks {
            n,
            n_vars: vars.len(),
            params,
            uniform,
            pipelines,
            bind_group,
            operator,
            operator_uniform,
            operator_params,
            operator_group,
            _zero_uniform: zero_uniform,
            jac,
            fixed_species: {
                let mut by_slot: Vec<(usize, usize)> = (0..model.species.len())
                    .filter_map(|s| fixed_of[s].map(|j| (j, s)))
                    .collect();
                by_slot.sort_unstable();
                by_slot.into_iter().map(|(_, s)| s).collect()
            },
            fixed: fixed_buf,
            zero_group,
            status,
            y,
            fout,
            xin,
            xout,
        }))
    }

    /// Values in a vector (integrated species × voxels).
    pub fn vector_len(&self) -> usize {
        self.n * self.n_vars
    }

    /// Sets σ (1/s) for the passes recorded after it is submitted.
    pub fn set_sigma(&mut self, ctx: &GpuContext, sigma: f64) {
        self.params.sigma = sigma as f32;
        self.operator_params.sigma = sigma as f32;
        ctx.queue
            .write_buffer(&self.uniform, 0, bytemuck::bytes_of(&self.params));
        ctx.queue.write_buffer(
            &self.operator_uniform,
            0,
            bytemuck::bytes_of(&self.operator_params),
        );
    }

    /// Records one pass over every voxel.
    pub fn encode(&self, encoder: &mut wgpu::CommandEncoder, pass: BlockPass) {
        let mut cpass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("ionfield.coupled_blocks"),
            timestamp_writes: None,
        });
        let (pipeline, group, invocations) = match pass {
            BlockPass::Blocks => (&self.pipelines[0], &self.bind_group, self.n),
            BlockPass::Precond => (&self.pipelines[1], &self.bind_group, self.n),
            BlockPass::ApplyJr => (&self.pipelines[2], &self.bind_group, self.n),
            BlockPass::SigmaMinusA => (&self.operator, &self.operator_group, self.vector_len()),
            BlockPass::MinusA => (&self.operator, &self.zero_group, self.vector_len()),
            BlockPass::Rates => (&self.pipelines[3], &self.bind_group, self.n),
            BlockPass::QuasiSteady => (&self.pipelines[4], &self.bind_group, self.n),
        };
        cpass.set_pipeline(pipeline);
        cpass.set_bind_group(0, group, &[]);
        let (gx, gy) = workgroups_2d(invocations);
        cpass.dispatch_workgroups(gx, gy, 1);
    }

    /// Reads `buffer` (one of the vectors) back. Waits for the device.
    pub fn read(&self, ctx: &GpuContext, buffer: &wgpu::Buffer) -> Result<Vec<f32>, Error> {
        read_back(ctx, buffer, self.vector_len())
    }

    /// The status buffer (u32: [0] the vanished-pivot count; [4 + i] the bits of the
    /// largest absolute row sum of J_R's row i over voxels, an f32, since last zeroed).
    pub(crate) fn status_buffer(&self) -> &wgpu::Buffer {
        &self.status
    }

    /// J_R per voxel on its pattern (`NJ` entries per voxel), as the last `Blocks` pass left it.
    pub(crate) fn jac_buffer(&self) -> &wgpu::Buffer {
        &self.jac
    }

    /// Voxels whose block σ − J_R had a vanished pivot since the kernel was made.
    pub fn failed_pivots(&self, ctx: &GpuContext) -> Result<u32, Error> {
        let s: Vec<u32> = read_back(ctx, &self.status, 4)?;
        Ok(s[0])
    }
}
