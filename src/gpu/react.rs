//! The reaction kernel: `shaders/react_ros2.wgsl` with the network's generated block
//! (`chem::wgsl`). CPU twin: `chem::ros2` driven by `cpu::react_ros2`.

use super::diffuse::{workgroups_2d, WORKGROUP_SIZE};
use super::Error;
use crate::chem::{wgsl, Network};

/// Rust twin of `ReactParams` in `shaders/react_ros2.wgsl` (layout checked by a test).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable, PartialEq)]
pub struct ReactParams {
    /// Length of the call, s.
    pub interval_s: f32,
    pub rtol: f32,
    /// mM.
    pub atol_mm: f32,
    pub max_substeps: u32,
    pub n_voxels: u32,
    pub call_id: u32,
    /// Voxels per row of workgroups (64 × workgroups along x).
    pub row_stride: u32,
    /// Always 0 (hides the compensated sums from the driver's optimiser).
    pub opaque_zero: u32,
}

/// Bytes between parameter slots (the dynamic-offset alignment wgpu guarantees).
pub const SLOT_BYTES: u64 = 256;
/// Words of the status buffer.
pub const STATUS_WORDS: usize = 8;

/// Pipeline, layout and the kernel's own buffers.
pub struct ReactKernel {
    pub layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    /// Complete WGSL as compiled (written to the run folder).
    pub source: String,
    pub params: wgpu::Buffer,
    pub slots: u64,
    pub h_last: wgpu::Buffer,
    /// Rounding residual of each state species, mM (see the shader).
    pub residual: wgpu::Buffer,
    pub status: wgpu::Buffer,
    pub status_staging: wgpu::Buffer,
    /// Species (scenario indices) in binding order from `wgsl::FIRST_SPECIES_BINDING`.
    pub bound: Vec<usize>,
}

impl ReactKernel {
    pub fn new(
        device: &wgpu::Device,
        limits: &wgpu::Limits,
        net: &Network,
        source: String,
        n_voxels: usize,
        slots: u64,
    ) -> Result<ReactKernel, Error> {
        let bound = net.bound_species();
        let storage_needed = 4 + bound.len() as u32;
        if storage_needed > limits.max_storage_buffers_per_shader_stage {
            return Err(Error::TooLarge {
                what: format!(
                    "the reaction kernel needs {storage_needed} storage buffers ({} species fields + 4)",
                    bound.len()
                ),
                allowed: format!(
                    "the adapter allows {} per shader stage",
                    limits.max_storage_buffers_per_shader_stage
                ),
            });
        }
        let residual_bytes = 4 * (n_voxels.max(1) * net.state.len().max(1)) as u64;
        if residual_bytes > limits.max_storage_buffer_binding_size {
            return Err(Error::TooLarge {
                what: format!(
                    "the reaction residual buffer ({} reacting species × {n_voxels} voxels) needs {}",
                    net.state.len(),
                    super::plan::human_bytes(residual_bytes)
                ),
                allowed: format!(
                    "one binding may hold {}",
                    super::plan::human_bytes(limits.max_storage_buffer_binding_size)
                ),
            });
        }
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("ionfield.react_ros2"),
            source: wgpu::ShaderSource::Wgsl(source.as_str().into()),
        });
        let storage = |binding, read_only| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let mut entries = vec![
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: wgpu::BufferSize::new(
                        std::mem::size_of::<ReactParams>() as u64
                    ),
                },
                count: None,
            },
            storage(1, true),
            storage(2, false),
            storage(3, false),
            storage(4, false),
        ];
        for (b, s) in bound.iter().enumerate() {
            entries.push(storage(
                wgsl::FIRST_SPECIES_BINDING + b as u32,
                net.inputs.contains(s),
            ));
        }
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("ionfield.react_ros2.layout"),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("ionfield.react_ros2.pipeline_layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("ionfield.react_ros2.react"),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("react"),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Shader {
                shader: "react_ros2.wgsl (generated)".into(),
                message: e.to_string(),
            });
        }
        let buffer = |label: &str, size: u64, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        use wgpu::BufferUsages as U;
        Ok(ReactKernel {
            layout,
            pipeline,
            source,
            params: buffer(
                "ionfield.react_ros2.params",
                SLOT_BYTES * slots,
                U::UNIFORM | U::COPY_DST,
            ),
            slots,
            h_last: buffer(
                "ionfield.react_ros2.h_last",
                4 * n_voxels.max(1) as u64,
                // Copied out and back by checkpoints.
                U::STORAGE | U::COPY_SRC | U::COPY_DST,
            ),
            residual: buffer(
                "ionfield.react_ros2.residual",
                residual_bytes,
                // Copied out and back by checkpoints.
                U::STORAGE | U::COPY_SRC | U::COPY_DST,
            ),
            status: buffer(
                "ionfield.react_ros2.status",
                4 * STATUS_WORDS as u64,
                U::STORAGE | U::COPY_SRC | U::COPY_DST,
            ),
            status_staging: buffer(
                "ionfield.react_ros2.status_staging",
                4 * STATUS_WORDS as u64,
                U::MAP_READ | U::COPY_DST,
            ),
            bound,
        })
    }

    /// Bind group over the mask and the species buffers (`conc[s]` for scenario index s).
    pub fn bind_group(
        &self,
        device: &wgpu::Device,
        mask: &wgpu::Buffer,
        conc: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let mut entries = vec![
            wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &self.params,
                    offset: 0,
                    size: wgpu::BufferSize::new(std::mem::size_of::<ReactParams>() as u64),
                }),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: mask.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: self.h_last.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 3,
                resource: self.status.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 4,
                resource: self.residual.as_entire_binding(),
            },
        ];
        for (b, &s) in self.bound.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: wgsl::FIRST_SPECIES_BINDING + b as u32,
                resource: conc[s].as_entire_binding(),
            });
        }
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("ionfield.react_ros2.bind"),
            layout: &self.layout,
            entries: &entries,
        })
    }

    /// Records one reaction call using parameter slot `slot`.
    pub fn encode(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        bind_group: &wgpu::BindGroup,
        slot: u64,
        n_voxels: usize,
    ) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, bind_group, &[(slot * SLOT_BYTES) as u32]);
        let (gx, gy) = workgroups_2d(n_voxels);
        pass.dispatch_workgroups(gx, gy, 1);
    }

    /// `row_stride` for [`ReactParams`]: voxels covered by one row of workgroups.
    pub fn row_stride(n_voxels: usize) -> u32 {
        workgroups_2d(n_voxels).0 * WORKGROUP_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    fn scenario_with_network() -> crate::config::Scenario {
        crate::config::load_str(
            include_str!("../../configs/wellmixed_fenton.toml"),
            "wellmixed_fenton.toml",
            &[],
        )
        .expect("example loads")
    }

    /// The generated kernel of the example network parses and validates with naga, and its
    /// `ReactParams` matches the Rust twin.
    #[test]
    fn generated_kernel_validates_and_params_layout_matches() {
        let sc = scenario_with_network();
        let net = sc.network.as_deref().cloned().expect("validation compiles");
        let src = wgsl::kernel_source(&net);
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{}", e.emit_to_string(&src)));
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}", e.emit_to_string(&src)));
        let _ = info;
        let ty = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("ReactParams"))
            .expect("ReactParams in the shader")
            .1;
        let naga::TypeInner::Struct { members, span } = &ty.inner else {
            panic!("ReactParams is a struct")
        };
        assert_eq!(*span as usize, size_of::<ReactParams>());
        let rust = [
            ("interval_s", offset_of!(ReactParams, interval_s)),
            ("rtol", offset_of!(ReactParams, rtol)),
            ("atol_mm", offset_of!(ReactParams, atol_mm)),
            ("max_substeps", offset_of!(ReactParams, max_substeps)),
            ("n_voxels", offset_of!(ReactParams, n_voxels)),
            ("call_id", offset_of!(ReactParams, call_id)),
            ("row_stride", offset_of!(ReactParams, row_stride)),
            ("opaque_zero", offset_of!(ReactParams, opaque_zero)),
        ];
        for (name, off) in rust {
            let m = members
                .iter()
                .find(|m| m.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("member {name}"));
            assert_eq!(m.offset as usize, off, "{name}");
        }
        let ep = module
            .entry_points
            .iter()
            .find(|e| e.name == "react")
            .expect("react entry point");
        assert_eq!(ep.workgroup_size, [WORKGROUP_SIZE, 1, 1]);
    }
}
