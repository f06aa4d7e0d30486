//! The wgpu backend: f32 fields in one storage buffer per species, WGSL kernels from
//! `shaders/`. Twin of `cpu/`.

pub mod block_multigrid;
pub mod context;
pub mod coupled;
pub mod coupled_blocks;
pub mod diffuse;
mod kernel;
pub mod multigrid;
pub mod plan;
pub mod react;

pub use context::{GpuContext, INSTALL_LAVAPIPE};
pub use plan::BufferPlan;

use crate::chem::Network;
use crate::engine::{
    self, strang_react_call, Engine, EngineInfo, EngineState, ReactionStats, StepControl, StepStats,
};
use crate::model::{Model, SpeciesModel, StepCoefficients};
pub use diffuse::XSweep;
use diffuse::{DiffuseKernel, DiffuseParams, Sweep};
use react::{ReactKernel, ReactParams};
use wgpu::util::DeviceExt;

/// What the device lacks or did wrong, and what to change.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no GPU adapter{}{}. Fix: {} (or run with --backend cpu)",
        .wanted.as_ref().map(|w| format!(" matching `{w}`")).unwrap_or_default(),
        if .available.is_empty() { String::new() } else { format!(" (available: {})", .available) },
        if .available.is_empty() { INSTALL_LAVAPIPE.to_string() } else {
            "give --adapter (or IONFIELD_ADAPTER) a part of one of the available names; `ionfield info` lists them".to_string()
        })]
    NoAdapter {
        wanted: Option<String>,
        available: String,
    },
    #[error("could not open a device on {adapter}: {message}. Fix: update the driver, or run with --backend cpu")]
    Device { adapter: String, message: String },
    #[error("the grid does not fit the GPU: {what}, but {allowed}. Fix: use a smaller grid (grid.shape) or fewer species, or run with --backend cpu")]
    TooLarge { what: String, allowed: String },
    #[error("shader {shader} failed to compile or validate: {message}")]
    Shader { shader: String, message: String },
    #[error("GPU validation error: {message}")]
    Validation { message: String },
    #[error("reading a field back from the GPU failed: {message}")]
    Readback { message: String },
}

impl From<Error> for engine::Error {
    /// The engine interface is backend-neutral: a device failure travels as its message,
    /// which already says what to change.
    fn from(e: Error) -> engine::Error {
        engine::Error::Device(e.to_string())
    }
}

/// One species on the device.
struct SpeciesBuffers {
    conc: wgpu::Buffer,
    params: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

/// Steps chained in one command buffer before it is submitted.
const STEPS_PER_SUBMIT: u64 = 16;

/// The reaction step on the device.
struct GpuChemistry {
    net: Network,
    kernel: ReactKernel,
    bind_group: wgpu::BindGroup,
    /// [start, end] model time of every reaction call so far, by call id, s.
    call_times: Vec<(f64, f64)>,
    stats: ReactionStats,
}

pub struct GpuEngine {
    ctx: GpuContext,
    shape: [usize; 3],
    voxel_um: f64,
    theta: f64,
    /// Cap of r per diffusion sub-step (see `StepCoefficients`).
    max_diffusion_r: Option<f64>,
    species: Vec<SpeciesModel>,
    plan: BufferPlan,
    kernel: DiffuseKernel,
    buffers: Vec<SpeciesBuffers>,
    _mask: wgpu::Buffer,
    _scratch: wgpu::Buffer,
    staging: wgpu::Buffer,
    /// dt the params buffers were written for.
    params_dt_s: Option<f64>,
    /// Diffusion sub-steps per step of each species at that dt.
    substeps: Vec<u32>,
    chemistry: Option<GpuChemistry>,
    /// The coupled scheme (`time.scheme = "coupled"`), which replaces the split step.
    coupled: Option<coupled::CoupledRun>,
    /// Model time reached, s.
    clock_s: f64,
}

impl GpuEngine {
    /// Checks the [`BufferPlan`] against the adapter, then uploads the model.
    pub fn new(ctx: GpuContext, model: &Model) -> Result<GpuEngine, Error> {
        let x_sweep =
            XSweep::for_adapter(ctx.adapter.is_hardware()).map_err(|message| Error::Device {
                adapter: ctx.adapter.describe(),
                message,
            })?;
        GpuEngine::with_x_sweep(ctx, model, x_sweep)
    }

    /// As [`GpuEngine::new`], with the x sweep's kernel given.
    pub fn with_x_sweep(
        ctx: GpuContext,
        model: &Model,
        x_sweep: XSweep,
    ) -> Result<GpuEngine, Error> {
        let plan = BufferPlan::new(&model.grid, model.species.len());
        plan.check_adapter(&ctx.adapter)?;
        let device = &ctx.device;
        let kernel = DiffuseKernel::new(device, plan.max_line, x_sweep)?;
        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let mask = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("ionfield.diffuse_adi.mask"),
            contents: bytemuck::cast_slice(&model.mask),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let scratch = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("ionfield.diffuse_adi.scratch"),
            size: plan.field_bytes,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let buffers: Vec<SpeciesBuffers> = model
            .species
            .iter()
            .zip(&model.initial_mm)
            .map(|(sp, init)| {
                let values: Vec<f32> = init.iter().map(|&v| v as f32).collect();
                let conc = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(&format!("ionfield.conc.{}", sp.name)),
                    contents: bytemuck::cast_slice(&values),
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                });
                let params = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("ionfield.diffuse_adi.params.{}", sp.name)),
                    size: std::mem::size_of::<DiffuseParams>() as u64,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(&format!("ionfield.diffuse_adi.bind.{}", sp.name)),
                    layout: &kernel.layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: params.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: conc.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 2,
                            resource: scratch.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 3,
                            resource: mask.as_entire_binding(),
                        },
                    ],
                });
                SpeciesBuffers {
                    conc,
                    params,
                    bind_group,
                }
            })
            .collect();
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("ionfield.readback.staging"),
            size: plan.staging_bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let split = model.scheme == crate::config::Scheme::Split;
        let coupled = if split {
            None
        } else {
            Some(coupled::CoupledRun::new(&ctx, model)?)
        };
        let chemistry = match &model.network {
            Some(net) if split => {
                let kernel = ReactKernel::new(
                    device,
                    &ctx.adapter.limits,
                    net,
                    crate::chem::wgsl::kernel_source(net),
                    model.grid.n_voxels(),
                    STEPS_PER_SUBMIT + 1,
                )?;
                let conc: Vec<&wgpu::Buffer> = buffers.iter().map(|b| &b.conc).collect();
                let bind_group = kernel.bind_group(device, &mask, &conc);
                Some(GpuChemistry {
                    net: net.clone(),
                    kernel,
                    bind_group,
                    call_times: Vec::new(),
                    stats: ReactionStats::default(),
                })
            }
            _ => None,
        };
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::TooLarge {
                what: format!(
                    "{} of device memory",
                    plan::human_bytes(plan.required_bytes())
                ),
                allowed: format!("the device refused: {e}"),
            });
        }
        ctx.check_errors()?;
        Ok(GpuEngine {
            shape: model.grid.shape(),
            voxel_um: model.grid.voxel_um,
            theta: model.theta,
            max_diffusion_r: model.max_diffusion_r,
            species: model.species.clone(),
            plan,
            kernel,
            buffers,
            _mask: mask,
            _scratch: scratch,
            staging,
            params_dt_s: None,
            substeps: vec![1; model.species.len()],
            chemistry,
            coupled,
            clock_s: 0.0,
            ctx,
        })
    }

    pub fn plan(&self) -> &BufferPlan {
        &self.plan
    }

    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Writes the per-species parameters for steps of `dt_s` (queued before the next
    /// submit, so steps already submitted keep their dt).
    fn set_dt(&mut self, dt_s: f64) {
        if self.params_dt_s == Some(dt_s) {
            return;
        }
        for (s, (sp, b)) in self.species.iter().zip(&self.buffers).enumerate() {
            let co =
                StepCoefficients::new(sp, s, self.voxel_um, dt_s, self.theta, self.max_diffusion_r);
            let params = DiffuseParams::new(self.shape, &co);
            self.ctx
                .queue
                .write_buffer(&b.params, 0, bytemuck::bytes_of(&params));
            self.substeps[s] = co.substeps;
        }
        self.params_dt_s = Some(dt_s);
    }

    /// Records `n_steps` full steps into one compute pass. With a network, `first_react`
    /// adds the opening react(dt/2) and every step ends with a react call; parameter slots are
    /// taken in order from 0.
    fn encode_steps(&self, encoder: &mut wgpu::CommandEncoder, n_steps: u64, first_react: bool) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("ionfield.step"),
            timestamp_writes: None,
        });
        let n_voxels = self.shape.iter().product();
        let mut slot = 0;
        let mut react = |pass: &mut wgpu::ComputePass<'_>| {
            if let Some(c) = &self.chemistry {
                c.kernel.encode(pass, &c.bind_group, slot, n_voxels);
                slot += 1;
            }
        };
        if first_react {
            react(&mut pass);
        }
        for _ in 0..n_steps {
            for ((sp, b), &n_sub) in self.species.iter().zip(&self.buffers).zip(&self.substeps) {
                if sp.diffuses() {
                    for _ in 0..n_sub {
                        for sweep in [Sweep::X, Sweep::Y, Sweep::Z] {
                            self.kernel
                                .encode(&mut pass, &b.bind_group, sweep, self.shape);
                        }
                    }
                } else if sp.decays() {
                    self.kernel
                        .encode(&mut pass, &b.bind_group, Sweep::Decay, self.shape);
                }
            }
            react(&mut pass);
        }
    }

    /// Writes the parameter slots of the reaction calls `calls` ([start, end] in s) and
    /// records their times under consecutive call ids.
    fn write_react_slots(&mut self, calls: &[(f64, f64)]) {
        let n_voxels: usize = self.shape.iter().product();
        let Some(c) = &mut self.chemistry else {
            return;
        };
        let spec = c.net.spec;
        let mut bytes = vec![0u8; (react::SLOT_BYTES * c.kernel.slots) as usize];
        for (k, &(t0, t1)) in calls.iter().enumerate() {
            let p = ReactParams {
                interval_s: (t1 - t0) as f32,
                rtol: spec.rtol as f32,
                atol_mm: spec.atol_mm as f32,
                max_substeps: spec.max_substeps,
                n_voxels: n_voxels as u32,
                call_id: c.call_times.len() as u32,
                row_stride: ReactKernel::row_stride(n_voxels),
                opaque_zero: 0,
            };
            c.call_times.push((t0, t1));
            let at = k * react::SLOT_BYTES as usize;
            bytes[at..at + std::mem::size_of::<ReactParams>()]
                .copy_from_slice(bytemuck::bytes_of(&p));
        }
        self.ctx.queue.write_buffer(&c.kernel.params, 0, &bytes);
    }

    /// Reads the reaction status words (waits for the device), adds the work counters to the
    /// stats and resets them; a recorded fault becomes [`engine::Error::Reaction`].
    fn check_reactions(&mut self) -> Result<(), engine::Error> {
        let Some(c) = &mut self.chemistry else {
            return Ok(());
        };
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("ionfield.react_status"),
            });
        let bytes = 4 * react::STATUS_WORDS as u64;
        encoder.copy_buffer_to_buffer(&c.kernel.status, 0, &c.kernel.status_staging, 0, bytes);
        self.ctx.queue.submit([encoder.finish()]);
        let words = map_read::<u32>(&self.ctx, &c.kernel.status_staging)?;
        c.stats.substeps += words[4] as u64;
        c.stats.max_substeps = c.stats.max_substeps.max(words[5]);
        self.ctx
            .queue
            .write_buffer(&c.kernel.status, 16, bytemuck::cast_slice(&[0u32, 0]));
        if words[0] > 0 {
            let (t0, t1) = c
                .call_times
                .get(words[1] as usize)
                .copied()
                .unwrap_or((f64::NAN, f64::NAN));
            return Err(
                crate::chem::ros2::Fault::from_code(words[3]).into_engine_error(
                    &c.net,
                    words[2] as usize,
                    self.shape,
                    t0,
                    t1,
                ),
            );
        }
        Ok(())
    }

    /// Copies one species to the staging buffer and maps it. Waits for the device.
    fn read_one(&self, species_ix: usize) -> Result<Vec<f32>, Error> {
        self.read_buffer(&self.buffers[species_ix].conc)
    }

    /// Copies the first `field_bytes` of `buffer` (a per-voxel f32 array) to the staging
    /// buffer and maps it. Waits for the device.
    fn read_buffer<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer) -> Result<Vec<T>, Error> {
        self.read_range(buffer, 0, self.plan.field_bytes)
    }

    /// Copies `bytes` (at most `field_bytes`) of `buffer` from `offset` to the staging
    /// buffer and maps it. Waits for the device.
    fn read_range<T: bytemuck::Pod>(
        &self,
        buffer: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
    ) -> Result<Vec<T>, Error> {
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("ionfield.readback"),
            });
        encoder.copy_buffer_to_buffer(buffer, offset, &self.staging, 0, bytes);
        self.ctx.queue.submit([encoder.finish()]);
        let mut values = map_read::<T>(&self.ctx, &self.staging)?;
        values.truncate(bytes as usize / std::mem::size_of::<T>());
        Ok(values)
    }
}

/// The first `len` 4-byte values of `buffer` (a STORAGE | COPY_SRC buffer), through a new
/// staging buffer. Waits for the device.
pub(crate) fn read_back<T: bytemuck::Pod>(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    len: usize,
) -> Result<Vec<T>, Error> {
    let bytes = (len * 4) as u64;
    let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("ionfield.read_back"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("ionfield.read_back"),
        });
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
    ctx.queue.submit([encoder.finish()]);
    map_read(ctx, &staging)
}

/// Maps a MAP_READ buffer whose copy was submitted, waits, and returns its contents.
pub(crate) fn map_read<T: bytemuck::Pod>(
    ctx: &GpuContext,
    staging: &wgpu::Buffer,
) -> Result<Vec<T>, Error> {
    let (tx, rx) = std::sync::mpsc::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    ctx.wait()?;
    let readback = |e: &dyn std::fmt::Display| Error::Readback {
        message: e.to_string(),
    };
    rx.recv()
        .map_err(|e| readback(&e))?
        .map_err(|e| readback(&e))?;
    let values = {
        let view = staging.get_mapped_range(..).map_err(|e| readback(&e))?;
        bytemuck::cast_slice::<u8, T>(&view).to_vec()
    };
    staging.unmap();
    Ok(values)
}

impl Engine for GpuEngine {
    fn info(&self) -> EngineInfo {
        let info = &self.ctx.adapter.info;
        EngineInfo {
            backend: "gpu".into(),
            adapter: format!(
                "{} ({:?}, {:?}; x sweep {})",
                info.name,
                info.backend,
                info.device_type,
                match self.kernel.x_sweep {
                    XSweep::Lines => "by lines",
                    XSweep::Tiled => "tiled",
                }
            ),
            driver: format!("{} {}", info.driver, info.driver_info),
        }
    }

    /// Strang splitting as in `cpu::CpuEngine::advance`. With a network, the status of the
    /// reaction step is read once per call (a few bytes) and a fault stops the run.
    fn advance(&mut self, n_steps: u64, dt_s: f64) -> Result<(), engine::Error> {
        if n_steps == 0 {
            return Ok(());
        }
        if self.coupled.is_some() {
            // The coupled scheme chooses its own steps over the same span.
            let end = self.clock_s + n_steps as f64 * dt_s;
            while self.clock_s < end - 1e-12 * end.abs().max(1.0) {
                self.advance_adaptive(end - self.clock_s, u64::MAX)?;
            }
            return Ok(());
        }
        self.set_dt(dt_s);
        let t0 = self.clock_s;
        let mut done = 0;
        while done < n_steps {
            let batch = (n_steps - done).min(STEPS_PER_SUBMIT);
            if self.chemistry.is_some() {
                let mut calls = Vec::with_capacity(batch as usize + 1);
                let first = if done == 0 { 0 } else { done + 1 };
                calls.extend(
                    (first..=done + batch).map(|k| strang_react_call(t0, dt_s, n_steps, k)),
                );
                self.write_react_slots(&calls);
            }
            let mut encoder =
                self.ctx
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("ionfield.steps"),
                    });
            self.encode_steps(&mut encoder, batch, done == 0);
            self.ctx.queue.submit([encoder.finish()]);
            done += batch;
        }
        self.clock_s = t0 + n_steps as f64 * dt_s;
        self.ctx.check_errors()?;
        self.check_reactions()
    }

    fn is_adaptive(&self) -> bool {
        self.coupled.is_some()
    }

    fn advance_adaptive(
        &mut self,
        span_s: f64,
        max_steps: u64,
    ) -> Result<(f64, u64), engine::Error> {
        let t0 = self.clock_s;
        let Some(c) = &mut self.coupled else {
            return Err(engine::Error::Device(
                "advance_adaptive needs time.scheme = \"coupled\"".into(),
            ));
        };
        let fields: Vec<&wgpu::Buffer> = self.buffers.iter().map(|b| &b.conc).collect();
        let (reached, steps) = c
            .advance(&self.ctx, &fields, span_s, max_steps)
            .map_err(|problem| engine::Error::Reaction {
                problem,
                voxel: [0, 0, 0],
                t0_s: t0,
                t1_s: t0 + span_s,
                reactions: "all".into(),
                fix: "tighten time.tolerance or shorten time.dt_s (the first step); if it persists, run with --backend cpu and report it".into(),
            })?;
        self.clock_s = t0 + reached;
        self.ctx.check_errors()?;
        Ok((reached, steps))
    }

    fn step_stats(&self) -> Option<StepStats> {
        self.coupled.as_ref().map(|c| c.stats())
    }

    fn next_step_s(&self) -> Option<f64> {
        self.coupled
            .as_ref()
            .map(|c| c.controller.control.h_s)
            .filter(|&h| h > 0.0)
    }

    fn has_dense_output(&self) -> bool {
        self.coupled.is_some()
    }

    /// As `cpu::CpuEngine`'s: linear in time between the span's start and end, in f32.
    fn read_fields_before(
        &mut self,
        species: &[usize],
        lag_s: f64,
    ) -> Result<Vec<Vec<f32>>, engine::Error> {
        let back =
            engine::dense_output_fraction(self.coupled.as_ref().and_then(|c| c.span_s), lag_s)?;
        let mut out = Vec::with_capacity(species.len());
        for &s in species {
            let end = self.read_one(s)?;
            let c = self.coupled.as_ref().expect("checked above");
            let start: Vec<f32> = self.read_buffer(c.start_field(s))?;
            out.push(
                start
                    .iter()
                    .zip(&end)
                    .map(|(&a, &b)| (b as f64 + back * (a as f64 - b as f64)) as f32)
                    .collect(),
            );
        }
        Ok(out)
    }

    fn scale_tolerance(&mut self, factor: f64) {
        if let Some(c) = &mut self.coupled {
            c.step.rtol_scale = factor;
        }
    }

    fn set_interrupt(&mut self, flag: std::sync::Arc<std::sync::atomic::AtomicBool>) {
        if let Some(c) = &mut self.coupled {
            c.controller.interrupt = Some(flag);
        }
    }

    fn reaction_stats(&mut self) -> Option<ReactionStats> {
        self.chemistry.as_ref().map(|c| ReactionStats {
            calls: c.call_times.len() as u64,
            ..c.stats
        })
    }

    fn save_state(&mut self) -> Result<EngineState, engine::Error> {
        let n_bytes = 4 * self.shape.iter().product::<usize>();
        let mut fields = Vec::with_capacity(self.buffers.len());
        for b in &self.buffers {
            let mut bytes = self.read_buffer::<u8>(&b.conc)?;
            bytes.truncate(n_bytes);
            fields.push(bytes);
        }
        let (reaction_h_s, reaction_residual_mm, reaction_stats) = match &self.chemistry {
            Some(c) => {
                let h = self.read_range::<u8>(&c.kernel.h_last, 0, n_bytes as u64)?;
                // One field-sized chunk per integrated species (the staging buffer holds one).
                let mut residual = Vec::new();
                for k in 0..c.kernel.residual.size() / n_bytes as u64 {
                    let chunk = self.read_range::<u8>(
                        &c.kernel.residual,
                        k * n_bytes as u64,
                        n_bytes as u64,
                    )?;
                    residual.extend(chunk);
                }
                let stats = ReactionStats {
                    calls: c.call_times.len() as u64,
                    ..c.stats
                };
                (h, residual, Some(stats))
            }
            None => {
                // The coupled state's rounding residual, one field-sized chunk at a time.
                let mut residual = Vec::new();
                if let Some(c) = &self.coupled {
                    let buf = c.step.residual();
                    for k in 0..buf.size() / n_bytes as u64 {
                        residual.extend(self.read_range::<u8>(
                            buf,
                            k * n_bytes as u64,
                            n_bytes as u64,
                        )?);
                    }
                }
                (Vec::new(), residual, None)
            }
        };
        Ok(EngineState {
            backend: "gpu".into(),
            value_bytes: 4,
            clock_s: self.clock_s,
            fields,
            reaction_h_s,
            reaction_residual_mm,
            reaction_stats,
            step_control: self.coupled.as_ref().map(|c| StepControl {
                stats: c.stats(),
                ..c.controller.control
            }),
        })
    }

    fn restore_state(&mut self, state: &EngineState) -> Result<(), engine::Error> {
        let n_voxels: usize = self.shape.iter().product();
        let residual_buffer = match (&self.chemistry, &self.coupled) {
            (Some(c), _) => Some(&c.kernel.residual),
            (None, Some(c)) => Some(c.step.residual()),
            (None, None) => None,
        };
        let residual_bytes = residual_buffer.map_or(0, |b| {
            (b.size() / (4 * n_voxels as u64)) as usize * 4 * n_voxels
        });
        state
            .check_fits(
                "gpu",
                4,
                self.buffers.len(),
                n_voxels,
                self.chemistry.is_some(),
                residual_bytes,
            )
            .map_err(engine::Error::State)?;
        for (b, bytes) in self.buffers.iter().zip(&state.fields) {
            self.ctx.queue.write_buffer(&b.conc, 0, bytes);
        }
        if let Some(c) = &mut self.chemistry {
            self.ctx
                .queue
                .write_buffer(&c.kernel.h_last, 0, &state.reaction_h_s);
            self.ctx
                .queue
                .write_buffer(&c.kernel.residual, 0, &state.reaction_residual_mm);
            let stats = state.reaction_stats.unwrap_or_default();
            // Call ids continue from the saved count; the times of calls before the
            // checkpoint are not kept (they only name a failing call).
            c.call_times = vec![(f64::NAN, f64::NAN); stats.calls as usize];
            c.stats = ReactionStats { calls: 0, ..stats };
        }
        if let (Some(c), Some(sc)) = (&mut self.coupled, state.step_control) {
            c.restore_control(sc);
            c.span_s = None;
            self.ctx
                .queue
                .write_buffer(c.step.residual(), 0, &state.reaction_residual_mm);
        }
        self.clock_s = state.clock_s;
        self.ctx.check_errors()?;
        Ok(())
    }

    fn read_fields(&mut self, species: &[usize]) -> Result<Vec<Vec<f32>>, engine::Error> {
        Ok(species
            .iter()
            .map(|&s| self.read_one(s))
            .collect::<Result<_, _>>()?)
    }

    /// Read, add on the host in f32, write back (doses are rare: once per dose event).
    fn add_to_field(&mut self, species_ix: usize, delta_mm: &[f64]) -> Result<(), engine::Error> {
        if let Some(c) = &mut self.coupled {
            c.controller.restart_steps();
            c.span_s = None;
            let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
            encoder.clear_buffer(c.step.residual(), 0, None);
            self.ctx.queue.submit([encoder.finish()]);
        }
        let mut values = self.read_one(species_ix)?;
        for (v, d) in values.iter_mut().zip(delta_mm) {
            *v += *d as f32;
        }
        self.ctx.queue.write_buffer(
            &self.buffers[species_ix].conc,
            0,
            bytemuck::cast_slice(&values),
        );
        Ok(())
    }
}
