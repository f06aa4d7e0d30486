//! The coupled scheme's step on the device (docs/numerics.md §10): ROS2 over reaction and
//! diffusion together, its two linear solves by restarted GMRES in the error-weighted
//! inner product, right-preconditioned either by the factored preconditioner
//! (`gpu::coupled_blocks` for the per-voxel blocks, `gpu::multigrid` for one V-cycle of
//! σ − A) or by the coupled multigrid (`gpu::block_multigrid`), chosen per attempt as the
//! CPU twin chooses, and the error test. The step-size control is `engine::control`, shared with the CPU twin
//! (`cpu::coupled`); the Hessenberg least squares is `engine::krylov`.
//!
//! What stays on the host: after each Krylov iteration the new column of H (j + 1 dot
//! products and a norm, a few hundred bytes) is read back to decide whether to go on,
//! and after each attempt the error test's three numbers. Everything with a vector's
//! length stays on the device.
//!
//! Gram–Schmidt is classical with one reorthogonalisation (CGS2: two batches of dot
//! products per iteration, each in one pass, instead of the CPU's j + 1 sequential
//! ones), which keeps the f32 basis orthogonal to working accuracy.

use std::collections::HashMap;

use wgpu::util::DeviceExt;

use super::block_multigrid::GpuBlockMultigrid;
use super::coupled_blocks::{BlockPass, GpuBlocks};
use super::diffuse::workgroups_2d;
use super::kernel::{Kernel, Slot, DYNAMIC_STRIDE};
use super::multigrid::GpuMultigrid;
use super::{map_read, Error, GpuContext};
use crate::cpu::coupled::{
    integrated_species, is_closed, species_hierarchy, DEFAULT_ATOL_MM, LINEAR_TOL,
    MAX_LINEAR_ITERATIONS, RESTART, RESTART_MIN_REDUCTION, SPLIT_LIMIT,
};
use crate::cpu::multigrid::Hierarchy;
use crate::engine::control::{Attempt, StepController};
use crate::engine::krylov::Arnoldi;
use crate::engine::{StepControl, StepStats};
use crate::model::Model;

/// ROS2's γ = 1 + 1/√2.
const GAMMA: f64 = 1.0 + std::f64::consts::FRAC_1_SQRT_2;

/// Values one `dot_partial` workgroup adds (`CHUNK` in the shader).
pub const DOT_CHUNK: usize = 1024;
/// Voxels per `check_partial` workgroup (`REDUCE_SIZE` in the shader).
const CHECK_GROUP: usize = 256;

/// Rust twin of `VectorParams` in `shaders/coupled_vectors.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct VectorParams {
    pub len: u32,
    pub n: u32,
    pub n_vars: u32,
    pub slot: u32,
    pub alpha: f32,
    pub beta: f32,
    pub gamma: f32,
    pub delta: f32,
    pub rtol: f32,
    pub groups: u32,
    pub inv_gamma: f32,
    /// Always 0: hides the compensated sum from the driver's algebraic simplification.
    pub opaque_zero: u32,
}

/// The vector kernel's WGSL.
pub const SHADER: &str = include_str!("../../shaders/coupled_vectors.wgsl");

/// Entry points of the vector kernel, in pipeline order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    Axpy,
    Axpby,
    Update,
    Weights,
    DotPartial,
    DotFinish,
    CheckPartial,
    CheckFinish,
}

const ENTRIES: [&str; 8] = [
    "axpy",
    "axpby",
    "update",
    "weights",
    "dot_partial",
    "dot_finish",
    "check_partial",
    "check_finish",
];

/// A vector the step uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum V {
    /// The state (`GpuBlocks::y`), R(y) (`fout`), the block and operator passes' input
    /// and output (`xin`, `xout`), the multigrid's right-hand side and solution.
    Y,
    Fout,
    Xin,
    Xout,
    MgB,
    MgX,
    /// The state at the start of the attempt, f(y), f at the second stage, K1, K2, the
    /// residual, the solution of a solve, the error weights.
    Y0,
    F,
    F2,
    K1,
    K2,
    R,
    X,
    Weight,
    /// The state's rounding residual (bound to every vector op, written by `update`).
    Lo,
    /// Small buffers bound where an entry reads nothing (read-only slots) or writes
    /// nothing (the `out` slot): one buffer cannot be bound both ways in a dispatch.
    Dummy,
    Sink,
    /// Krylov basis vector j and its preconditioned image z_j.
    Basis(usize),
    Image(usize),
}

/// One recorded operation of a batch.
enum Op {
    Kernel {
        entry: Entry,
        params: VectorParams,
        /// a, b, out, weight.
        vectors: [V; 4],
        groups: (u32, u32),
    },
    Blocks(BlockPass),
    Precondition,
    /// Level 0's J_R into the coupled multigrid, and every level's blocks factored.
    BlockFactor,
    /// One V-cycle of the coupled multigrid: `MgX` ≈ W⁻¹·`MgB`.
    BlockCycle,
    /// The multigrid's closed-species shift of `MgX` against `MgB` (see
    /// `GpuMultigrid::encode_closed_shift`).
    ClosedShift,
    /// Zeroes a vector.
    Clear(V),
    Copy(V, V),
}

/// Scalar slots: the first batch of Gram–Schmidt products, the second, the norm, the
/// error test (3).
const SLOT_H1: u32 = 0;
const SLOT_H2: u32 = RESTART as u32 + 1;
const SLOT_NORM: u32 = 2 * (RESTART as u32 + 1);
const SLOT_CHECK: u32 = SLOT_NORM + 1;
const N_SLOTS: usize = SLOT_CHECK as usize + 3;

/// Parameter entries one batch may hold.
const MAX_OPS: usize = 6 * (RESTART + 1) + 16;

/// The device twin of `cpu::coupled::Coupled`'s step.
pub struct GpuCoupled {
    blocks: GpuBlocks,
    multigrid: GpuMultigrid,
    kernel: Kernel,
    params: wgpu::Buffer,
    partial: wgpu::Buffer,
    scalars: wgpu::Buffer,
    staging: wgpu::Buffer,
    atol: wgpu::Buffer,
    own: HashMap<V, wgpu::Buffer>,
    groups: HashMap<[V; 4], wgpu::BindGroup>,
    n: usize,
    n_vars: usize,
    rtol: f64,
    /// Multiplies `rtol` (the spin-up loosens it).
    pub rtol_scale: f64,
    /// Vanished pivots counted by the block kernel up to the last attempt, and at the
    /// last read-back (every read-back carries the count).
    pivots_seen: u32,
    pivots_now: u32,
    /// Krylov iterations so far, and attempts preconditioned by the coupled multigrid.
    pub linear_iterations: u64,
    pub multigrid_attempts: u64,
    /// The coupled multigrid of W.
    block: GpuBlockMultigrid,
    /// The preconditioner of the current attempt: the coupled multigrid (else the
    /// factored one), chosen as the CPU twin chooses (`cpu::coupled`'s
    /// choose_preconditioner) from the largest absolute row sums of J_R the block kernel
    /// reports with the attempt's first read-back.
    use_block: Option<bool>,
    /// 12·D/dx² of each state row's species, 1/s (the diffusion rate of the estimate).
    row_diffusion_per_s: Vec<f64>,
    /// The largest absolute row sum of J_R per state row at the last read-back, 1/s.
    k_max: Vec<f64>,
    /// Quasi-steady species of the network (scenario indices), written by
    /// [`GpuCoupled::encode_quasi_steady`] into `xout` in this order.
    pub quasi_steady: Vec<usize>,
}

impl GpuCoupled {
    /// The step's kernels and vectors for `model` (which must have a reaction network:
    /// `None` without one), with relative tolerance `rtol`.
    pub fn new(ctx: &GpuContext, model: &Model, rtol: f64) -> Result<Option<GpuCoupled>, Error> {
        let Some(blocks) = GpuBlocks::new(ctx, model)? else {
            return Ok(None);
        };
        let net = model.network.as_ref().expect("GpuBlocks needs a network");
        let device = &ctx.device;
        let vars = integrated_species(model);
        let (n, n_vars) = (model.grid.n_voxels(), vars.len());
        if net.qss.len() > n_vars {
            return Err(Error::Validation {
                message: format!(
                    "the network has {} quasi-steady species but only {n_vars} integrated ones; the device step stores them in one vector",
                    net.qss.len()
                ),
            });
        }
        let hierarchies: Vec<Hierarchy> =
            vars.iter().map(|&s| species_hierarchy(model, s)).collect();
        let refs: Vec<&Hierarchy> = hierarchies.iter().collect();
        let closed: Vec<bool> = vars.iter().map(|&s| is_closed(model, s)).collect();
        let multigrid = GpuMultigrid::new(ctx, &refs, &closed)?;
        let mut var_of = vec![None; model.species.len()];
        for (k, &s) in vars.iter().enumerate() {
            var_of[s] = Some(k);
        }
        let block = GpuBlockMultigrid::new(ctx, &multigrid, net, &var_of, n_vars)?;
        let atol: Vec<f32> = vars
            .iter()
            .map(|&s| {
                let state_ix = net.state.iter().position(|&x| x == s);
                (match state_ix {
                    Some(i) => net.atol_mm[i],
                    None => model.species[s].atol_mm.unwrap_or(DEFAULT_ATOL_MM),
                }) as f32
            })
            .collect();
        let (u, r, w) = (Slot::DynamicUniform, Slot::Read, Slot::Write);
        let kernel = Kernel::new(
            device,
            "coupled_vectors.wgsl",
            SHADER.to_string(),
            &[u, r, r, w, r, w, w, r, w],
            &ENTRIES,
        )?;
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("ionfield.cv.params"),
            size: MAX_OPS as u64 * DYNAMIC_STRIDE,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let len = n * n_vars;
        let partials = (len.div_ceil(DOT_CHUNK)).max(3 * n.div_ceil(CHECK_GROUP));
        let storage = |label: &str, values: usize, usage: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (values.max(1) * 4) as u64,
                usage: wgpu::BufferUsages::STORAGE | usage,
                mapped_at_creation: false,
            })
        };
        let copy = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let partial = storage("ionfield.cv.partial", partials, copy);
        let scalars = storage("ionfield.cv.scalars", N_SLOTS, copy);
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("ionfield.cv.staging"),
            size: (N_SLOTS * 4 + 16 + 4 * net.state.len()) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let atol = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("ionfield.cv.atol"),
            contents: bytemuck::cast_slice(&atol),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let mut own = HashMap::new();
        for v in [
            V::Y0,
            V::F,
            V::F2,
            V::K1,
            V::K2,
            V::R,
            V::X,
            V::Weight,
            V::Lo,
        ] {
            own.insert(v, storage(&format!("ionfield.cv.{v:?}"), len, copy));
        }
        own.insert(V::Dummy, storage("ionfield.cv.dummy", 4, copy));
        own.insert(V::Sink, storage("ionfield.cv.sink", 4, copy));
        Ok(Some(GpuCoupled {
            blocks,
            multigrid,
            kernel,
            params,
            partial,
            scalars,
            staging,
            atol,
            own,
            groups: HashMap::new(),
            n,
            n_vars,
            rtol,
            rtol_scale: 1.0,
            pivots_seen: 0,
            pivots_now: 0,
            linear_iterations: 0,
            multigrid_attempts: 0,
            block,
            use_block: None,
            k_max: vec![0.0; net.state.len()],
            row_diffusion_per_s: net
                .state
                .iter()
                .map(|&s| {
                    12.0 * model.species[s].diffusion_um2_per_s
                        / (model.grid.voxel_um * model.grid.voxel_um)
                })
                .collect(),
            quasi_steady: net.qss.iter().map(|&(s, _)| s).collect(),
        }))
    }

    /// The state vector (integrated species × voxels, species-major, mM, f32): the engine
    /// copies its fields in and out of it.
    pub fn state(&self) -> &wgpu::Buffer {
        &self.blocks.y
    }

    /// The state's rounding residual (same layout as the state, mM): the state is the
    /// double-f32 value state + residual. Zero it when the fields change outside the step.
    pub fn residual(&self) -> &wgpu::Buffer {
        &self.own[&V::Lo]
    }

    /// The buffer [`GpuCoupled::encode_quasi_steady`] writes.
    pub fn quasi_steady_out(&self) -> &wgpu::Buffer {
        &self.blocks.xout
    }

    /// Values in a vector.
    pub fn vector_len(&self) -> usize {
        self.n * self.n_vars
    }

    /// Records the quasi-steady species at the state into [`GpuCoupled::quasi_steady_out`].
    pub fn encode_quasi_steady(&self, encoder: &mut wgpu::CommandEncoder) {
        self.blocks.encode(encoder, BlockPass::QuasiSteady);
    }

    fn buffer(&self, v: V) -> &wgpu::Buffer {
        match v {
            V::Y => &self.blocks.y,
            V::Fout => &self.blocks.fout,
            V::Xin => &self.blocks.xin,
            V::Xout => &self.blocks.xout,
            V::MgB => &self.multigrid.b,
            V::MgX => &self.multigrid.x,
            other => &self.own[&other],
        }
    }

    /// Makes sure the basis vector or image `v` exists.
    fn ensure(&mut self, ctx: &GpuContext, v: V) {
        if !self.own.contains_key(&v) {
            let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&format!("ionfield.cv.{v:?}")),
                size: (self.vector_len() * 4) as u64,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            self.own.insert(v, buffer);
        }
    }

    fn params(&self) -> VectorParams {
        VectorParams {
            len: self.vector_len() as u32,
            n: self.n as u32,
            n_vars: self.n_vars as u32,
            rtol: (self.rtol * self.rtol_scale) as f32,
            inv_gamma: (1.0 / GAMMA) as f32,
            ..VectorParams::default()
        }
    }

    /// An elementwise kernel over the vector.
    fn elementwise(&self, entry: Entry, params: VectorParams, vectors: [V; 4]) -> Op {
        Op::Kernel {
            entry,
            params,
            vectors,
            groups: workgroups_2d(self.vector_len()),
        }
    }

    /// out = α·out + (β + δ·scalars[slot])·a.
    fn axpy(&self, out: V, alpha: f32, beta: f32, delta: f32, slot: u32, a: V) -> Op {
        let p = VectorParams {
            alpha,
            beta,
            delta,
            slot,
            ..self.params()
        };
        self.elementwise(Entry::Axpy, p, [a, V::Dummy, out, V::Dummy])
    }

    /// out = β·a + γ·b.
    fn axpby(&self, out: V, beta: f32, a: V, gamma: f32, b: V) -> Op {
        let p = VectorParams {
            beta,
            gamma,
            ..self.params()
        };
        self.elementwise(Entry::Axpby, p, [a, b, out, V::Dummy])
    }

    /// scalars[slot] = ⟨a, b⟩ in the weighted inner product (two ops).
    fn dot(&self, slot: u32, a: V, b: V) -> [Op; 2] {
        let groups = self.vector_len().div_ceil(DOT_CHUNK);
        let p = VectorParams {
            slot,
            groups: groups as u32,
            ..self.params()
        };
        reduction(
            Entry::DotPartial,
            Entry::DotFinish,
            p,
            [a, b, V::Sink, V::Weight],
            groups,
        )
    }

    /// The ops of out = W·x (through `xin`, `xout`).
    fn apply_w(&self, ops: &mut Vec<Op>, x: V, out: V) {
        ops.push(Op::Copy(x, V::Xin));
        ops.push(Op::Blocks(BlockPass::SigmaMinusA));
        ops.push(Op::Blocks(BlockPass::ApplyJr));
        if out != V::Xout {
            ops.push(Op::Copy(V::Xout, out));
        }
    }

    /// The ops of out = f(y) = R(y) + A·y at the state `y` (R already in `fout`). The
    /// grid sum of A·y is 0 for a closed species (no held voxel, no loss); the f32 sum of
    /// its rounding is removed by the multigrid's closed shift, as in the preconditioner:
    /// without it that rounding repeats step after step in a settled field (measured: the
    /// Fe total of tests/coupled_gpu.rs drifted 9.2e-6 over 10⁴ steps).
    fn rhs(&self, ops: &mut Vec<Op>, out: V) {
        ops.push(Op::Copy(V::Y, V::Xin));
        ops.push(Op::Blocks(BlockPass::MinusA));
        ops.push(Op::Copy(V::Xout, V::MgX));
        ops.push(Op::Clear(V::MgB));
        ops.push(Op::ClosedShift);
        ops.push(self.axpby(out, 1.0, V::Fout, -1.0, V::MgX));
    }

    /// Records and submits `ops`; with `read`, copies scalar slots `read` back and returns
    /// them (waits for the device), followed by the block kernel's vanished-pivot count.
    fn run(
        &mut self,
        ctx: &GpuContext,
        ops: Vec<Op>,
        read: Option<std::ops::Range<u32>>,
    ) -> Result<Vec<f32>, Error> {
        // Parameters, one dynamic entry per kernel op.
        let mut bytes = Vec::new();
        for op in &ops {
            if let Op::Kernel { params, .. } = op {
                let at = bytes.len();
                bytes.resize(at + DYNAMIC_STRIDE as usize, 0);
                bytes[at..at + std::mem::size_of::<VectorParams>()]
                    .copy_from_slice(bytemuck::bytes_of(params));
            }
        }
        assert!(
            bytes.len() as u64 <= MAX_OPS as u64 * DYNAMIC_STRIDE,
            "a batch of more than {MAX_OPS} vector operations"
        );
        if !bytes.is_empty() {
            ctx.queue.write_buffer(&self.params, 0, &bytes);
        }
        for op in &ops {
            if let Op::Kernel { vectors, .. } = op {
                if !self.groups.contains_key(vectors) {
                    let [a, b, out, w] = vectors.map(|v| self.buffer(v));
                    let group = self.kernel.bind(
                        &ctx.device,
                        "ionfield.coupled_vectors",
                        &[
                            &self.params,
                            a,
                            b,
                            out,
                            w,
                            &self.partial,
                            &self.scalars,
                            &self.atol,
                            &self.own[&V::Lo],
                        ],
                    );
                    self.groups.insert(*vectors, group);
                }
            }
        }
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        let bytes_per_vector = (self.vector_len() * 4) as u64;
        let mut entry_ix = 0u64;
        let mut pass: Option<wgpu::ComputePass<'static>> = None;
        for op in &ops {
            match op {
                Op::Kernel {
                    entry,
                    vectors,
                    groups,
                    ..
                } => {
                    let p = pass.get_or_insert_with(|| {
                        encoder
                            .begin_compute_pass(&wgpu::ComputePassDescriptor {
                                label: Some("ionfield.coupled_vectors"),
                                timestamp_writes: None,
                            })
                            .forget_lifetime()
                    });
                    p.set_pipeline(&self.kernel.pipelines[*entry as usize]);
                    p.set_bind_group(
                        0,
                        &self.groups[vectors],
                        &[(entry_ix * DYNAMIC_STRIDE) as u32],
                    );
                    p.dispatch_workgroups(groups.0, groups.1, 1);
                    entry_ix += 1;
                }
                Op::Blocks(b) => {
                    pass = None;
                    self.blocks.encode(&mut encoder, *b);
                }
                Op::Precondition => {
                    pass = None;
                    self.multigrid.encode_preconditioner(&mut encoder);
                }
                Op::BlockFactor => {
                    pass = None;
                    encoder.copy_buffer_to_buffer(
                        self.blocks.jac_buffer(),
                        0,
                        &self.block.jacs,
                        0,
                        self.block.level0_jac_bytes,
                    );
                    self.block.encode_factor(&mut encoder);
                }
                Op::BlockCycle => {
                    pass = None;
                    self.block.encode_v_cycle(&mut encoder);
                }
                Op::ClosedShift => {
                    pass = None;
                    self.multigrid.encode_closed_shift(&mut encoder);
                }
                Op::Clear(v) => {
                    pass = None;
                    encoder.clear_buffer(self.buffer(*v), 0, Some(bytes_per_vector));
                }
                Op::Copy(from, to) => {
                    pass = None;
                    encoder.copy_buffer_to_buffer(
                        self.buffer(*from),
                        0,
                        self.buffer(*to),
                        0,
                        bytes_per_vector,
                    );
                }
            }
        }
        drop(pass);
        let Some(range) = read else {
            ctx.queue.submit([encoder.finish()]);
            return Ok(Vec::new());
        };
        let count = (range.end - range.start) as u64;
        encoder.copy_buffer_to_buffer(
            &self.scalars,
            range.start as u64 * 4,
            &self.staging,
            0,
            count * 4,
        );
        let n_rows = self.k_max.len() as u64;
        encoder.copy_buffer_to_buffer(
            self.blocks.status_buffer(),
            0,
            &self.staging,
            count * 4,
            16 + 4 * n_rows,
        );
        ctx.queue.submit([encoder.finish()]);
        let all: Vec<u32> = map_read(ctx, &self.staging)?;
        let mut out: Vec<f32> = all[..count as usize]
            .iter()
            .map(|&b| f32::from_bits(b))
            .collect();
        let status = &all[count as usize..];
        self.pivots_now = status[0];
        for (k, &bits) in self.k_max.iter_mut().zip(&status[4..]) {
            *k = f32::from_bits(bits) as f64;
        }
        out.push(status[0] as f32);
        Ok(out)
    }

    /// One ROS2 step attempt of length `h_s` from the state; on acceptance the state holds
    /// the result. `stats`-free: the caller adds [`GpuCoupled::linear_iterations`].
    pub fn attempt(
        &mut self,
        ctx: &GpuContext,
        h_s: f64,
        adaptive: bool,
    ) -> Result<Attempt, Error> {
        let sigma = 1.0 / (GAMMA * h_s);
        self.blocks.set_sigma(ctx, sigma);
        self.multigrid.set_sigma(ctx, sigma);
        // The row sums the Blocks pass reports are this attempt's.
        ctx.queue.write_buffer(
            self.blocks.status_buffer(),
            16,
            &vec![0u8; 4 * self.k_max.len()],
        );
        self.use_block = None;
        let mut ops = vec![
            Op::Blocks(BlockPass::Blocks),
            Op::Copy(V::Y, V::Y0),
            self.elementwise(
                Entry::Weights,
                self.params(),
                [V::Y, V::Dummy, V::Weight, V::Dummy],
            ),
        ];
        self.rhs(&mut ops, V::F);
        self.run(ctx, ops, None)?;
        // A failed solve ends the attempt; the pivots its read-backs counted are this
        // attempt's (the next one compares against them).
        if !self.solve(ctx, V::F, V::K1, h_s)? {
            self.pivots_seen = self.pivots_now;
            return Ok(Attempt::LinearFailed);
        }
        // Second stage: f(y + K1/γ) − 2/(γh)·K1, J_R and the blocks kept from y.
        let mut ops = vec![
            self.axpby(V::Y, 1.0, V::Y0, (1.0 / GAMMA) as f32, V::K1),
            Op::Blocks(BlockPass::Rates),
        ];
        self.rhs(&mut ops, V::F2);
        ops.push(self.axpy(V::F2, 1.0, (-2.0 / (GAMMA * h_s)) as f32, 0.0, 0, V::K1));
        ops.push(Op::Copy(V::Y0, V::Y));
        self.run(ctx, ops, None)?;
        if !self.solve(ctx, V::F2, V::K2, h_s)? {
            self.pivots_seen = self.pivots_now;
            return Ok(Attempt::LinearFailed);
        }
        let check_groups = self.n.div_ceil(CHECK_GROUP);
        let p = VectorParams {
            slot: SLOT_CHECK,
            groups: check_groups as u32,
            ..self.params()
        };
        let ops = reduction(
            Entry::CheckPartial,
            Entry::CheckFinish,
            p,
            [V::K1, V::K2, V::Y0, V::Dummy],
            check_groups,
        )
        .into();
        let got = self.run(ctx, ops, Some(SLOT_CHECK..SLOT_CHECK + 3))?;
        let (err, negative, bad, pivots) = (got[0] as f64, got[1], got[2], got[3] as u32);
        if pivots != self.pivots_seen {
            self.pivots_seen = pivots;
            return Ok(Attempt::LinearFailed);
        }
        if bad > 0.0 {
            return Ok(Attempt::NonFinite);
        }
        if negative > 0.0 {
            return Ok(Attempt::Negative);
        }
        if err > 1.0 && adaptive {
            return Ok(Attempt::Rejected { err });
        }
        let p = self.params();
        self.run(
            ctx,
            vec![self.elementwise(Entry::Update, p, [V::K1, V::K2, V::Y, V::Dummy])],
            None,
        )?;
        Ok(Attempt::Accepted { err })
    }

    /// The estimated relative error of the factored preconditioner at σ (1/s), as the CPU
    /// twin estimates it: max over state rows of k·a/(σ(σ + k + a)), k the row's largest
    /// absolute row sum of J_R, a = 12·D/dx² of its species.
    fn splitting_estimate(&self, sigma: f64) -> f64 {
        self.k_max
            .iter()
            .zip(&self.row_diffusion_per_s)
            .map(|(&k, &a)| k * a / (sigma * (sigma + k + a)))
            .fold(0.0, f64::max)
    }

    /// Solves W·x = b into `x` by restarted GMRES (as `cpu::coupled`'s); false if it did not
    /// converge.
    fn solve(&mut self, ctx: &GpuContext, b: V, x: V, h_s: f64) -> Result<bool, Error> {
        let len = self.vector_len();
        let target = LINEAR_TOL * (len as f64).sqrt() / (GAMMA * h_s);
        let mut iterations = 0;
        let mut ops: Vec<Op> = Vec::new();
        ops.extend(self.dot(SLOT_NORM, b, b));
        ops.push(self.axpy(V::X, 0.0, 0.0, 0.0, 0, b));
        let got = self.run(ctx, ops, Some(SLOT_NORM..SLOT_NORM + 1))?;
        let mut beta = (got[0] as f64).max(0.0).sqrt();
        let mut pending = Vec::new();
        if self.use_block.is_none() {
            let block = self.splitting_estimate(1.0 / (GAMMA * h_s)) > SPLIT_LIMIT;
            self.use_block = Some(block);
            if block {
                self.multigrid_attempts += 1;
                pending.push(Op::BlockFactor);
            }
        }
        let block = self.use_block == Some(true);
        // The solution of W·x = b keeps, for a closed species k (no held voxel, no loss:
        // Σ A·x = 0), σ·Σx_k = Σ(b + J_R·x)_k, with no diffusion term. The f32 Krylov
        // vectors carry the rounding of A·x into their sums; shifting x_k uniformly onto
        // that relation (the multigrid's closed shift against b + J_R·x) removes it, so the
        // totals the reactions keep (Fe, Cu) drift only by the reactions' own rounding.
        let finish = |this: &mut GpuCoupled, converged: bool| -> Result<bool, Error> {
            let ops = vec![
                Op::Copy(V::X, V::Xin),
                Op::Clear(V::Xout),
                Op::Blocks(BlockPass::ApplyJr),
                this.axpby(V::MgB, 1.0, b, -1.0, V::Xout),
                Op::Copy(V::X, V::MgX),
                Op::ClosedShift,
                Op::Copy(V::MgX, x),
            ];
            this.run(ctx, ops, None)?;
            Ok(converged)
        };
        if beta == 0.0 {
            return finish(self, true);
        }
        let mut residual = b;
        let mut first = true;
        loop {
            if !first {
                // True residual after a restart: r = b − W·x.
                let mut ops = Vec::new();
                self.apply_w(&mut ops, V::X, V::Xout);
                ops.push(self.axpby(V::R, 1.0, b, -1.0, V::Xout));
                ops.extend(self.dot(SLOT_NORM, V::R, V::R));
                let got = self.run(ctx, ops, Some(SLOT_NORM..SLOT_NORM + 1))?;
                let before = beta;
                beta = (got[0] as f64).max(0.0).sqrt();
                if beta <= target {
                    return finish(self, true);
                }
                if beta.is_nan() || beta > RESTART_MIN_REDUCTION * before {
                    return finish(self, false);
                }
                residual = V::R;
            }
            first = false;
            self.ensure(ctx, V::Basis(0));
            pending.push(self.axpy(V::Basis(0), 0.0, (1.0 / beta) as f32, 0.0, 0, residual));
            let mut arnoldi = Arnoldi::new(RESTART, beta);
            let mut resid = beta;
            for j in 0..RESTART {
                self.ensure(ctx, V::Image(j));
                let mut ops = std::mem::take(&mut pending);
                // z_j = P⁻¹·v_j, kept for the update.
                if block {
                    ops.push(Op::Copy(V::Basis(j), V::MgB));
                    ops.push(Op::BlockCycle);
                } else {
                    ops.push(Op::Copy(V::Basis(j), V::Xin));
                    ops.push(Op::Blocks(BlockPass::Precond));
                    ops.push(Op::Copy(V::Xout, V::MgB));
                    ops.push(Op::Precondition);
                }
                ops.push(Op::Copy(V::MgX, V::Image(j)));
                self.apply_w(&mut ops, V::Image(j), V::Xout);
                // CGS2 into xout: two passes of j + 1 products each.
                for first_slot in [SLOT_H1, SLOT_H2] {
                    for i in 0..=j {
                        ops.extend(self.dot(first_slot + i as u32, V::Xout, V::Basis(i)));
                    }
                    for i in 0..=j {
                        ops.push(self.axpy(
                            V::Xout,
                            1.0,
                            0.0,
                            -1.0,
                            first_slot + i as u32,
                            V::Basis(i),
                        ));
                    }
                }
                ops.extend(self.dot(SLOT_NORM, V::Xout, V::Xout));
                let got = self.run(ctx, ops, Some(SLOT_H1..SLOT_NORM + 1))?;
                let h: Vec<f64> = (0..=j)
                    .map(|i| got[i] as f64 + got[SLOT_H2 as usize + i] as f64)
                    .collect();
                let hn = (got[SLOT_NORM as usize] as f64).max(0.0).sqrt();
                let Some(r) = arnoldi.push(&h, hn) else {
                    return finish(self, false);
                };
                resid = r;
                iterations += 1;
                if resid <= target || iterations >= MAX_LINEAR_ITERATIONS || hn == 0.0 {
                    break;
                }
                self.ensure(ctx, V::Basis(j + 1));
                pending.push(self.axpy(V::Basis(j + 1), 0.0, (1.0 / hn) as f32, 0.0, 0, V::Xout));
            }
            let k_used = arnoldi.columns();
            let ops: Vec<Op> = arnoldi
                .solve()
                .iter()
                .enumerate()
                .map(|(j, &yj)| self.axpy(V::X, 1.0, yj as f32, 0.0, 0, V::Image(j)))
                .collect();
            self.run(ctx, ops, None)?;
            self.linear_iterations += k_used as u64;
            if resid <= target {
                return finish(self, true);
            }
            if iterations >= MAX_LINEAR_ITERATIONS {
                return finish(self, false);
            }
        }
    }
}

/// A reduction: `partial` over `groups` workgroups (laid out 2D) on `vectors`, then
/// `finish` in one workgroup, both with `params`.
fn reduction(
    partial: Entry,
    finish: Entry,
    params: VectorParams,
    vectors: [V; 4],
    groups: usize,
) -> [Op; 2] {
    let gx = groups.min(65535);
    [
        Op::Kernel {
            entry: partial,
            params,
            vectors,
            groups: (gx as u32, groups.div_ceil(gx) as u32),
        },
        Op::Kernel {
            entry: finish,
            params,
            vectors: [V::Dummy, V::Dummy, V::Sink, V::Dummy],
            groups: (1, 1),
        },
    ]
}

/// The coupled scheme as the GPU engine runs it: the step, the shared step control, and
/// the dense output's copy of the fields at the start of the last span.
pub struct CoupledRun {
    pub step: GpuCoupled,
    pub controller: StepController,
    /// Scenario index of each integrated species (the state's species order).
    vars: Vec<usize>,
    /// Longest step, s.
    max_dt_s: f64,
    /// Every field at the start of the last span, and the span's length (s); the length
    /// is `None` before the first span and after anything else changed the fields.
    start_fields: Vec<wgpu::Buffer>,
    pub span_s: Option<f64>,
}

impl CoupledRun {
    /// The run for `model` (`time.scheme = "coupled"`); an error for a model without a
    /// reaction network, whose coupled step has no device kernels.
    pub fn new(ctx: &GpuContext, model: &Model) -> Result<CoupledRun, Error> {
        let crate::config::Scheme::Coupled {
            rtol,
            first_dt_s,
            adaptive,
            max_dt_s,
        } = model.scheme
        else {
            return Err(Error::Validation {
                message: "internal: CoupledRun for a split-scheme model".into(),
            });
        };
        let step = GpuCoupled::new(ctx, model, rtol)?.ok_or_else(|| Error::Validation {
            message: "time.scheme = \"coupled\" without a reaction network has no GPU kernels; run it with --backend cpu".into(),
        })?;
        let bytes = (model.grid.n_voxels() * 4) as u64;
        let start_fields = model
            .species
            .iter()
            .map(|sp| {
                ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("ionfield.cv.span_start.{}", sp.name)),
                    size: bytes,
                    usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .collect();
        Ok(CoupledRun {
            step,
            controller: StepController::new(first_dt_s, adaptive),
            vars: integrated_species(model),
            max_dt_s: max_dt_s.unwrap_or(f64::INFINITY),
            start_fields,
            span_s: None,
        })
    }

    /// The counters of the step control, with the Krylov iterations.
    pub fn stats(&self) -> StepStats {
        self.controller.control.stats
    }

    /// Puts back the step control saved with a checkpoint.
    pub fn restore_control(&mut self, control: StepControl) {
        self.controller.control = control;
        self.step.linear_iterations = control.stats.linear_iterations;
        self.step.multigrid_attempts = control.stats.coupled_multigrid_attempts;
    }

    /// Advances `fields` (every species' buffer, scenario order) by `span_s` seconds or
    /// `max_steps` accepted steps; returns (time advanced, s; steps accepted).
    pub fn advance(
        &mut self,
        ctx: &GpuContext,
        fields: &[&wgpu::Buffer],
        span_s: f64,
        max_steps: u64,
    ) -> Result<(f64, u64), String> {
        let n_bytes = (self.step.n * 4) as u64;
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        for (field, start) in fields.iter().zip(&self.start_fields) {
            encoder.copy_buffer_to_buffer(field, 0, start, 0, n_bytes);
        }
        for (k, &s) in self.vars.iter().enumerate() {
            encoder.copy_buffer_to_buffer(
                fields[s],
                0,
                self.step.state(),
                k as u64 * n_bytes,
                n_bytes,
            );
        }
        // The read-only inputs as they are now (a dose or a light switched on changes them).
        for (j, &s) in self.step.blocks.fixed_species.iter().enumerate() {
            encoder.copy_buffer_to_buffer(
                fields[s],
                0,
                &self.step.blocks.fixed,
                j as u64 * n_bytes,
                n_bytes,
            );
        }
        ctx.queue.submit([encoder.finish()]);
        let before = self.controller.control.stats.steps;
        let adaptive = self.controller.adaptive;
        let step = &mut self.step;
        let reached =
            self.controller
                .advance(0.0, span_s, max_steps, self.max_dt_s, |h, stats| {
                    let outcome = step.attempt(ctx, h, adaptive).map_err(|e| e.to_string())?;
                    stats.linear_iterations = step.linear_iterations;
                    stats.coupled_multigrid_attempts = step.multigrid_attempts;
                    Ok(outcome)
                })?;
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        for (k, &s) in self.vars.iter().enumerate() {
            encoder.copy_buffer_to_buffer(
                self.step.state(),
                k as u64 * n_bytes,
                fields[s],
                0,
                n_bytes,
            );
        }
        self.step.encode_quasi_steady(&mut encoder);
        for (q, &s) in self.step.quasi_steady.iter().enumerate() {
            encoder.copy_buffer_to_buffer(
                self.step.quasi_steady_out(),
                q as u64 * n_bytes,
                fields[s],
                0,
                n_bytes,
            );
        }
        ctx.queue.submit([encoder.finish()]);
        self.span_s = Some(reached);
        Ok((reached, self.controller.control.stats.steps - before))
    }

    /// The buffer of species `s` at the start of the last span.
    pub fn start_field(&self, s: usize) -> &wgpu::Buffer {
        &self.start_fields[s]
    }
}
