//! The aggregation multigrid of σ·I − A on the device (`shaders/multigrid.wgsl`): one
//! V-cycle for every species of a set of hierarchies at once, recorded into a command
//! encoder with no host round-trip. CPU twin: `cpu::multigrid`, whose level operators
//! (Galerkin, built once per species in f64) are flattened to f32 here, so both run the
//! same operator, the same sweeps in the same colour order.
//!
//! This is the diffusion half of the coupled scheme's factored preconditioner; the GPU
//! twin of the coupled scheme (per-voxel reaction blocks, Krylov solves, the step) is
//! being built around it and does not run scenarios yet (`--backend gpu` refuses
//! `time.scheme = "coupled"`).
//!
//! Memory: per species about 4 × 8/7 f32 per voxel of operator and 2 × 8/7 of vectors.

use wgpu::util::DeviceExt;

use super::diffuse::workgroups_2d;
use super::kernel::{Kernel, Slot};
use super::{read_back, Error, GpuContext};
use crate::cpu::multigrid::{Hierarchy, COARSEST_SWEEPS, SWEEPS};

/// Rust twin of `LevelParams` in `shaders/multigrid.wgsl` (layout checked by a test).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable, PartialEq)]
pub struct LevelParams {
    pub nx: u32,
    pub ny: u32,
    pub nz: u32,
    pub n: u32,
    pub op_off: u32,
    pub vec_off: u32,
    pub cnt_off: u32,
    pub colour: u32,
    pub cnx: u32,
    pub cny: u32,
    pub cnz: u32,
    pub cn: u32,
    pub c_vec_off: u32,
    pub n_species: u32,
    /// `partial_sums`: workgroups per species, each adding [`SUM_CHUNK`] values.
    pub sum_groups: u32,
    /// Offsets of the coupled multigrid's blocks (`gpu::block_multigrid`); 0 here.
    pub jac_off: u32,
    pub lu_off: u32,
    pub c_jac_off: u32,
    pub _pad: [u32; 2],
}

/// Values one workgroup of `partial_sums` adds; equal to `SUM_CHUNK` in the shader.
pub const SUM_CHUNK: usize = 1024;

/// WGSL source as written in `shaders/`.
pub const SHADER: &str = include_str!("../../shaders/multigrid.wgsl");

/// The hierarchies of several species on the device, with their vectors.
pub struct GpuMultigrid {
    /// Voxels per level, finest first.
    level_voxels: Vec<usize>,
    n_species: usize,
    relax: wgpu::ComputePipeline,
    restrict: wgpu::ComputePipeline,
    prolong: wgpu::ComputePipeline,
    scale_b: wgpu::ComputePipeline,
    partial_sums: wgpu::ComputePipeline,
    finish_sums: wgpu::ComputePipeline,
    shift_closed: wgpu::ComputePipeline,
    /// Whether some species is closed (the shift has work).
    any_closed: bool,
    sum_groups: usize,
    /// Per level, the bind groups of colour 0 and colour 1 (restriction and
    /// prolongation use colour 0's).
    bind_groups: Vec<[wgpu::BindGroup; 2]>,
    sigma: wgpu::Buffer,
    /// Solutions and right-hand sides of every level; level 0's species s at s·n₀.
    pub x: wgpu::Buffer,
    pub b: wgpu::Buffer,
    /// What the coupled multigrid (`gpu::block_multigrid`) shares: each level's parameters
    /// (colour 0) and the buffers of bindings 1–8 in binding order (σ, operators, counts,
    /// x, b, closed flags, partial sums, totals).
    pub(crate) level_params: Vec<LevelParams>,
    pub(crate) shared: [wgpu::Buffer; 8],
}

impl GpuMultigrid {
    /// The hierarchies (all of one grid's shape, finest level first) on the device;
    /// `closed[s]`: species s has no held voxel and no loss, so the preconditioner keeps
    /// its grid sum ([`GpuMultigrid::encode_preconditioner`]).
    pub fn new(
        ctx: &GpuContext,
        hierarchies: &[&Hierarchy],
        closed: &[bool],
    ) -> Result<GpuMultigrid, Error> {
        let device = &ctx.device;
        let n_species = hierarchies.len();
        let first = hierarchies.first().ok_or_else(|| Error::Validation {
            message: "a device multigrid needs at least one species".into(),
        })?;
        let shapes: Vec<[usize; 3]> = first.levels().iter().map(|l| l.shape).collect();
        let level_voxels: Vec<usize> = shapes.iter().map(|s| s.iter().product()).collect();
        // Flatten: per level, species-major [diag | w_x | w_y | w_z].
        let mut op: Vec<f32> = Vec::new();
        let mut count: Vec<f32> = Vec::new();
        let (mut op_off, mut cnt_off, mut vec_off) = (Vec::new(), Vec::new(), Vec::new());
        let mut vec_len = 0usize;
        for (l, &n) in level_voxels.iter().enumerate() {
            op_off.push(op.len());
            cnt_off.push(count.len());
            vec_off.push(vec_len);
            vec_len += n * n_species;
            count.extend(first.levels()[l].count.iter().map(|&c| c as f32));
            for h in hierarchies {
                let lv = &h.levels()[l];
                if lv.shape != shapes[l] {
                    return Err(Error::Validation {
                        message: "device multigrid: hierarchies of different grids".into(),
                    });
                }
                op.extend(lv.diag.iter().map(|&v| v as f32));
                for w in &lv.w {
                    op.extend(w.iter().map(|&v| v as f32));
                }
            }
        }
        let too_big = |what: &str, elements: usize| {
            (elements > u32::MAX as usize).then(|| Error::TooLarge {
                what: format!("{what} of {elements} values"),
                allowed: "at most 2³² per buffer index".into(),
            })
        };
        if let Some(e) = too_big("the multigrid operator", op.len())
            .or_else(|| too_big("the multigrid vectors", vec_len))
        {
            return Err(e);
        }
        let storage = |label: &str, data: &[f32], usage: wgpu::BufferUsages| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::cast_slice(data),
                usage: wgpu::BufferUsages::STORAGE | usage,
            })
        };
        let op_buf = storage("ionfield.mg.op", &op, wgpu::BufferUsages::empty());
        let count_buf = storage("ionfield.mg.count", &count, wgpu::BufferUsages::empty());
        let vec_usage = wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        let x = storage("ionfield.mg.x", &vec![0.0; vec_len], vec_usage);
        let b = storage("ionfield.mg.b", &vec![0.0; vec_len], vec_usage);
        let sigma = storage("ionfield.mg.sigma", &[1.0], wgpu::BufferUsages::COPY_DST);
        let sum_groups = level_voxels[0].div_ceil(SUM_CHUNK);
        let closed_flags: Vec<u32> = (0..n_species)
            .map(|s| u32::from(closed.get(s).copied().unwrap_or(false)))
            .collect();
        let closed_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("ionfield.mg.closed"),
            contents: bytemuck::cast_slice(&closed_flags),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let partial = storage(
            "ionfield.mg.partial",
            &vec![0.0; sum_groups * n_species],
            wgpu::BufferUsages::empty(),
        );
        let totals = storage(
            "ionfield.mg.totals",
            &vec![0.0; n_species],
            wgpu::BufferUsages::COPY_SRC,
        );

        let kernel = Kernel::new(
            device,
            "multigrid.wgsl",
            SHADER.to_string(),
            &[
                Slot::Uniform,
                Slot::Read,
                Slot::Read,
                Slot::Read,
                Slot::Write,
                Slot::Write,
                Slot::Read,
                Slot::Write,
                Slot::Write,
            ],
            &[
                "relax",
                "restrict_residual",
                "prolong",
                "scale_b",
                "partial_sums",
                "finish_sums",
                "shift_closed",
            ],
        )?;
        let [relax, restrict, prolong, scale_b, partial_sums, finish_sums, shift_closed]: [_; 7] =
            kernel
                .pipelines
                .clone()
                .try_into()
                .expect("seven entry points");
        let mut bind_groups = Vec::new();
        let mut level_params = Vec::new();
        for (l, &shape) in shapes.iter().enumerate() {
            let coarse = shapes.get(l + 1).copied().unwrap_or([1, 1, 1]);
            let make = |colour: u32| {
                let params = LevelParams {
                    nx: shape[0] as u32,
                    ny: shape[1] as u32,
                    nz: shape[2] as u32,
                    n: level_voxels[l] as u32,
                    op_off: op_off[l] as u32,
                    vec_off: vec_off[l] as u32,
                    cnt_off: cnt_off[l] as u32,
                    colour,
                    cnx: coarse[0] as u32,
                    cny: coarse[1] as u32,
                    cnz: coarse[2] as u32,
                    cn: coarse.iter().product::<usize>() as u32,
                    c_vec_off: vec_off.get(l + 1).copied().unwrap_or(0) as u32,
                    n_species: n_species as u32,
                    sum_groups: sum_groups as u32,
                    jac_off: 0,
                    lu_off: 0,
                    c_jac_off: 0,
                    _pad: [0; 2],
                };
                let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("ionfield.mg.level"),
                    contents: bytemuck::bytes_of(&params),
                    usage: wgpu::BufferUsages::UNIFORM,
                });
                let group = kernel.bind(
                    device,
                    "ionfield.mg.bind_group",
                    &[
                        &uniform,
                        &sigma,
                        &op_buf,
                        &count_buf,
                        &x,
                        &b,
                        &closed_buf,
                        &partial,
                        &totals,
                    ],
                );
                (group, params)
            };
            let ((g0, p0), (g1, _)) = (make(0), make(1));
            bind_groups.push([g0, g1]);
            level_params.push(p0);
        }
        Ok(GpuMultigrid {
            level_voxels,
            n_species,
            relax,
            restrict,
            prolong,
            scale_b,
            partial_sums,
            finish_sums,
            shift_closed,
            any_closed: closed_flags.iter().any(|&c| c != 0),
            sum_groups,
            bind_groups,
            level_params,
            shared: [
                sigma.clone(),
                op_buf,
                count_buf,
                x.clone(),
                b.clone(),
                closed_buf,
                partial,
                totals,
            ],
            sigma,
            x,
            b,
        })
    }

    /// Voxels of the finest level (the grid).
    pub fn n_voxels(&self) -> usize {
        self.level_voxels[0]
    }

    /// Dispatches one V-cycle records: per level but the coarsest, 4·SWEEPS relax
    /// dispatches, a restriction and a prolongation; 2·COARSEST_SWEEPS on the coarsest.
    pub fn dispatches_per_cycle(&self) -> usize {
        (self.level_voxels.len() - 1) * (4 * SWEEPS + 2) + 2 * COARSEST_SWEEPS
    }

    /// Sets σ (1/s) for the cycles recorded after it is submitted.
    pub fn set_sigma(&self, ctx: &GpuContext, sigma: f64) {
        ctx.queue
            .write_buffer(&self.sigma, 0, bytemuck::bytes_of(&(sigma as f32)));
    }

    /// Records x ≈ (σ·I − A)⁻¹·b for every species by one V-cycle from x = 0 (level 0 of
    /// `x` and `b`, species s at s·n₀), as `cpu::multigrid::Hierarchy::solve`.
    pub fn encode_v_cycle(&self, encoder: &mut wgpu::CommandEncoder) {
        let level0_bytes = (self.level_voxels[0] * self.n_species * 4) as u64;
        encoder.clear_buffer(&self.x, 0, Some(level0_bytes));
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("ionfield.mg.v_cycle"),
            timestamp_writes: None,
        });
        let last = self.level_voxels.len() - 1;
        let dispatch = |pass: &mut wgpu::ComputePass<'_>,
                        pipeline: &wgpu::ComputePipeline,
                        group: &wgpu::BindGroup,
                        voxels: usize| {
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, group, &[]);
            let (gx, gy) = workgroups_2d(voxels * self.n_species);
            pass.dispatch_workgroups(gx, gy, 1);
        };
        let sweep = |pass: &mut wgpu::ComputePass<'_>, l: usize, colours: [usize; 2]| {
            for c in colours {
                dispatch(
                    pass,
                    &self.relax,
                    &self.bind_groups[l][c],
                    self.level_voxels[l],
                );
            }
        };
        // Down: smooth, restrict the residual.
        for l in 0..last {
            for _ in 0..SWEEPS {
                sweep(&mut pass, l, [0, 1]);
            }
            let coarse = self.level_voxels[l + 1];
            dispatch(&mut pass, &self.restrict, &self.bind_groups[l][0], coarse);
        }
        for _ in 0..COARSEST_SWEEPS {
            sweep(&mut pass, last, [0, 1]);
        }
        // Up: prolong, smooth with the colours reversed.
        for l in (0..last).rev() {
            dispatch(
                &mut pass,
                &self.prolong,
                &self.bind_groups[l][0],
                self.level_voxels[l],
            );
            for _ in 0..SWEEPS {
                sweep(&mut pass, l, [1, 0]);
            }
        }
    }

    /// Records x = σ·(σ·I − A)⁻¹·b on level 0 (one V-cycle of σ·b, then the closed
    /// species shifted uniformly so that Σx = Σb: the diffusion half of the coupled
    /// scheme's factored preconditioner, `cpu::coupled`'s apply_split after its block
    /// solve). `b` holds the block solve's output on entry and σ times it on exit.
    pub fn encode_preconditioner(&self, encoder: &mut wgpu::CommandEncoder) {
        let n0 = self.level_voxels[0];
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("ionfield.mg.scale_b"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.scale_b);
            pass.set_bind_group(0, &self.bind_groups[0][0], &[]);
            let (gx, gy) = workgroups_2d(n0 * self.n_species);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        self.encode_v_cycle(encoder);
        self.encode_closed_shift(encoder);
    }

    /// Records the closed species' shift alone: x += (Σ b/σ − Σ x)/n per closed species
    /// (level 0; fixed-order sums). With b = 0 it removes the rounding from the grid sum of
    /// an x whose exact sum is 0.
    pub fn encode_closed_shift(&self, encoder: &mut wgpu::CommandEncoder) {
        let n0 = self.level_voxels[0];
        if !self.any_closed {
            return;
        }
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("ionfield.mg.closed_shift"),
            timestamp_writes: None,
        });
        pass.set_bind_group(0, &self.bind_groups[0][0], &[]);
        pass.set_pipeline(&self.partial_sums);
        // Whole workgroups here, laid out as workgroups_2d lays out invocations.
        let groups = self.sum_groups * self.n_species;
        let gx = groups.min(65535);
        pass.dispatch_workgroups(gx as u32, groups.div_ceil(gx) as u32, 1);
        pass.set_pipeline(&self.finish_sums);
        let (gx, gy) = workgroups_2d(self.n_species);
        pass.dispatch_workgroups(gx, gy, 1);
        pass.set_pipeline(&self.shift_closed);
        let (gx, gy) = workgroups_2d(n0 * self.n_species);
        pass.dispatch_workgroups(gx, gy, 1);
    }

    /// Reads level 0 of `x` back (species-major, n_species × n₀). Waits for the device.
    pub fn read_x(&self, ctx: &GpuContext) -> Result<Vec<f32>, Error> {
        read_back(ctx, &self.x, self.level_voxels[0] * self.n_species)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// The WGSL struct has the Rust twin's layout (naga reflection).
    #[test]
    fn level_params_layout_matches_the_wgsl_struct() {
        let module = naga::front::wgsl::parse_str(SHADER).expect("multigrid.wgsl parses");
        let mut validator = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        );
        validator
            .validate(&module)
            .expect("multigrid.wgsl validates");
        let (_, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("LevelParams"))
            .expect("LevelParams in the shader");
        let naga::TypeInner::Struct { members, span } = &ty.inner else {
            panic!("LevelParams is a struct");
        };
        assert_eq!(*span as usize, size_of::<LevelParams>());
        assert!(SHADER.contains(&format!("const SUM_CHUNK: u32 = {SUM_CHUNK}u;")));
        let rust = [
            ("nx", offset_of!(LevelParams, nx)),
            ("n", offset_of!(LevelParams, n)),
            ("colour", offset_of!(LevelParams, colour)),
            ("cn", offset_of!(LevelParams, cn)),
            ("c_vec_off", offset_of!(LevelParams, c_vec_off)),
            ("n_species", offset_of!(LevelParams, n_species)),
            ("sum_groups", offset_of!(LevelParams, sum_groups)),
        ];
        for (name, offset) in rust {
            let m = members
                .iter()
                .find(|m| m.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("{name} in LevelParams"));
            assert_eq!(m.offset as usize, offset, "{name}");
        }
    }
}
