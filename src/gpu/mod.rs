//! The wgpu backend: f32 fields in one storage buffer per species, WGSL kernels from
//! `shaders/`. Twin of `cpu/`.

pub mod context;
pub mod diffuse;
pub mod plan;

pub use context::{GpuContext, INSTALL_LAVAPIPE};
pub use plan::BufferPlan;

use crate::model::{Model, SpeciesModel, StepCoefficients};
use crate::sim::{Engine, EngineInfo};
use diffuse::{DiffuseKernel, DiffuseParams, Sweep};
use wgpu::util::DeviceExt;

/// What the device lacks or did wrong, and what to change.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no GPU adapter{}{}. Fix: {} (or run with --backend cpu)",
        .wanted.as_ref().map(|w| format!(" matching `{w}`")).unwrap_or_default(),
        if .available.is_empty() { String::new() } else { format!(" (available: {})", .available) },
        INSTALL_LAVAPIPE)]
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

/// One species on the device.
struct SpeciesBuffers {
    conc: wgpu::Buffer,
    params: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

/// Steps chained in one command buffer before it is submitted.
const STEPS_PER_SUBMIT: u64 = 16;

pub struct GpuEngine {
    ctx: GpuContext,
    shape: [usize; 3],
    voxel_um: f64,
    theta: f64,
    species: Vec<SpeciesModel>,
    plan: BufferPlan,
    kernel: DiffuseKernel,
    buffers: Vec<SpeciesBuffers>,
    _mask: wgpu::Buffer,
    _scratch: wgpu::Buffer,
    staging: wgpu::Buffer,
    /// dt the params buffers were written for.
    params_dt_s: Option<f64>,
}

impl GpuEngine {
    /// Checks the [`BufferPlan`] against the adapter, then uploads the model.
    pub fn new(ctx: GpuContext, model: &Model) -> Result<GpuEngine, Error> {
        let plan = BufferPlan::new(&model.grid, model.species.len());
        plan.check_adapter(&ctx.adapter)?;
        let device = &ctx.device;
        let kernel = DiffuseKernel::new(device, plan.max_line)?;
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
        let buffers = model
            .species
            .iter()
            .zip(&model.initial_mm)
            .map(|(sp, init)| {
                let values: Vec<f32> = init.iter().map(|&v| v as f32).collect();
                let conc = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(&format!("ionfield.conc.{}", sp.name)),
                    contents: bytemuck::cast_slice(&values),
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
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
            species: model.species.clone(),
            plan,
            kernel,
            buffers,
            _mask: mask,
            _scratch: scratch,
            staging,
            params_dt_s: None,
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
            let co = StepCoefficients::new(sp, s, self.voxel_um, dt_s, self.theta);
            let params = DiffuseParams::new(self.shape, &co);
            self.ctx
                .queue
                .write_buffer(&b.params, 0, bytemuck::bytes_of(&params));
        }
        self.params_dt_s = Some(dt_s);
    }

    /// Records `n_steps` full steps into one compute pass.
    fn encode_steps(&self, encoder: &mut wgpu::CommandEncoder, n_steps: u64) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("ionfield.step"),
            timestamp_writes: None,
        });
        for _ in 0..n_steps {
            for (sp, b) in self.species.iter().zip(&self.buffers) {
                if sp.diffuses() {
                    for sweep in [Sweep::X, Sweep::Y, Sweep::Z] {
                        self.kernel
                            .encode(&mut pass, &b.bind_group, sweep, self.shape);
                    }
                } else if sp.decays() {
                    self.kernel
                        .encode(&mut pass, &b.bind_group, Sweep::Decay, self.shape);
                }
            }
        }
    }

    /// Copies one species to the staging buffer and maps it. Waits for the device.
    fn read_one(&self, species_ix: usize) -> Result<Vec<f32>, Error> {
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("ionfield.readback"),
            });
        encoder.copy_buffer_to_buffer(
            &self.buffers[species_ix].conc,
            0,
            &self.staging,
            0,
            self.plan.field_bytes,
        );
        self.ctx.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        self.staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.ctx.wait()?;
        rx.recv()
            .map_err(|e| Error::Readback {
                message: e.to_string(),
            })?
            .map_err(|e| Error::Readback {
                message: e.to_string(),
            })?;
        let values = {
            let view = self
                .staging
                .get_mapped_range(..)
                .map_err(|e| Error::Readback {
                    message: e.to_string(),
                })?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        self.staging.unmap();
        Ok(values)
    }
}

impl Engine for GpuEngine {
    fn info(&self) -> EngineInfo {
        let info = &self.ctx.adapter.info;
        EngineInfo {
            backend: "gpu".into(),
            adapter: format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info),
        }
    }

    fn advance(&mut self, n_steps: u64, dt_s: f64) -> Result<(), crate::sim::Error> {
        self.set_dt(dt_s);
        let mut left = n_steps;
        while left > 0 {
            let batch = left.min(STEPS_PER_SUBMIT);
            let mut encoder =
                self.ctx
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                        label: Some("ionfield.steps"),
                    });
            self.encode_steps(&mut encoder, batch);
            self.ctx.queue.submit([encoder.finish()]);
            left -= batch;
        }
        self.ctx.check_errors()?;
        Ok(())
    }

    fn read_fields(&mut self, species: &[usize]) -> Result<Vec<Vec<f32>>, crate::sim::Error> {
        Ok(species
            .iter()
            .map(|&s| self.read_one(s))
            .collect::<Result<_, _>>()?)
    }
}
