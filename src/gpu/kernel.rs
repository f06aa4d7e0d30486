//! A compute kernel from WGSL: one bind group layout of buffers in binding order (a
//! uniform, read-only or read–write storage each), a pipeline per entry point, and bind
//! groups that bind buffers in that order. The coupled scheme's device pieces
//! (`gpu::multigrid`, `gpu::coupled_blocks`) are built with it.

use super::Error;

/// Bytes per entry of a [`Slot::DynamicUniform`] buffer (the largest minimum offset
/// alignment wgpu allows an adapter to ask for).
pub(crate) const DYNAMIC_STRIDE: u64 = 256;

/// What a binding holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    Uniform,
    /// A uniform bound at a dynamic offset, [`DYNAMIC_STRIDE`] bytes per entry.
    DynamicUniform,
    Read,
    Write,
}

/// A shader module's layout and its pipelines.
pub(crate) struct Kernel {
    layout: wgpu::BindGroupLayout,
    /// One per entry point, in the order given to [`Kernel::new`].
    pub pipelines: Vec<wgpu::ComputePipeline>,
    slots: Vec<Slot>,
}

impl Kernel {
    /// Compiles `source` (named `label` in errors and debug labels) with bindings 0, 1, …
    /// as `slots` and a pipeline for each of `entries`; a validation error names the
    /// shader.
    pub(crate) fn new(
        device: &wgpu::Device,
        label: &str,
        source: String,
        slots: &[Slot],
        entries: &[&str],
    ) -> Result<Kernel, Error> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let layout_entries: Vec<_> = slots
            .iter()
            .enumerate()
            .map(|(b, slot)| wgpu::BindGroupLayoutEntry {
                binding: b as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match slot {
                        Slot::Uniform | Slot::DynamicUniform => wgpu::BufferBindingType::Uniform,
                        Slot::Read => wgpu::BufferBindingType::Storage { read_only: true },
                        Slot::Write => wgpu::BufferBindingType::Storage { read_only: false },
                    },
                    has_dynamic_offset: *slot == Slot::DynamicUniform,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries: &layout_entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipelines = entries
            .iter()
            .map(|name| {
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&format!("{label}.{name}")),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(name),
                    compilation_options: Default::default(),
                    cache: None,
                })
            })
            .collect();
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Shader {
                shader: label.to_string(),
                message: e.to_string(),
            });
        }
        Ok(Kernel {
            layout,
            pipelines,
            slots: slots.to_vec(),
        })
    }

    /// A bind group of `buffers` at bindings 0, 1, … (whole buffers; one
    /// [`DYNAMIC_STRIDE`] entry of a dynamic uniform).
    pub(crate) fn bind(
        &self,
        device: &wgpu::Device,
        label: &str,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let entries: Vec<_> = buffers
            .iter()
            .enumerate()
            .map(|(b, buf)| wgpu::BindGroupEntry {
                binding: b as u32,
                resource: match self.slots[b] {
                    Slot::DynamicUniform => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: buf,
                        offset: 0,
                        size: std::num::NonZeroU64::new(DYNAMIC_STRIDE),
                    }),
                    _ => buf.as_entire_binding(),
                },
            })
            .collect();
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &self.layout,
            entries: &entries,
        })
    }
}
