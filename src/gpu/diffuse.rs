//! The Douglas ADI diffusion kernels (`shaders/diffuse_adi.wgsl`). CPU twin:
//! `cpu::diffuse_adi`. The module owns its pipelines and layout and only records dispatches.

use super::Error;
use crate::config::MAX_TISSUES;
use crate::model::StepCoefficients;

/// WGSL source as written in `shaders/` (validated by the shader tests as is).
pub const SHADER: &str = include_str!("../../shaders/diffuse_adi.wgsl");
/// Workgroup size of every entry point; must equal `WORKGROUP_SIZE` in the shader
/// (checked by a test through naga reflection).
pub const WORKGROUP_SIZE: u32 = 64;

/// Rust twin of `DiffuseParams` in `shaders/diffuse_adi.wgsl` (layout checked by a test).
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable, PartialEq)]
pub struct DiffuseParams {
    pub nx: u32,
    pub ny: u32,
    pub nz: u32,
    /// Mask bit of this species' held voxels.
    pub held_bit: u32,
    /// D·dt/dx², dimensionless.
    pub r: f32,
    /// Douglas weight θ.
    pub theta: f32,
    /// 1 when some tissue has a loss (q_t > 0), else 0: the y and z sweeps then skip the
    /// loss lookups and the mask reads of the update (the same values).
    pub lossy: u32,
    pub _pad: u32,
    /// q_t = k_t·dt per tissue id, dimensionless.
    pub loss: [f32; MAX_TISSUES],
}

impl DiffuseParams {
    pub fn new(shape: [usize; 3], co: &StepCoefficients) -> DiffuseParams {
        DiffuseParams {
            nx: shape[0] as u32,
            ny: shape[1] as u32,
            nz: shape[2] as u32,
            held_bit: co.held_bit,
            r: co.r as f32,
            theta: co.theta as f32,
            lossy: u32::from(co.loss.iter().any(|&q| q != 0.0)),
            _pad: 0,
            loss: co.loss.map(|q| q as f32),
        }
    }
}

/// The WGSL with `MAX_LINE` set to `max_line` (the grid's longest axis).
pub fn shader_source(max_line: usize) -> String {
    crate::grid::wgsl_constants()
        + &SHADER.replacen(
            "const MAX_LINE: u32 = 1024u;",
            &format!("const MAX_LINE: u32 = {max_line}u;"),
            1,
        )
}

/// Which kernel solves the x lines. Both solve the same rows in the same order (bit-identical
/// results); they differ in how a warp touches memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XSweep {
    /// `sweep_x`: one invocation walks its line, so a warp reads addresses nx·4 bytes
    /// apart. The faster one on lavapipe, where invocations are SIMD lanes of a CPU thread:
    /// 64³ × 8 species, full ADI step 127–140 ms against 205–210 ms tiled (BENCHMARKS.md).
    Lines,
    /// `sweep_x_tiled`: 64 lines a workgroup, read and written in chunks of 16 voxels
    /// along x by 16 invocations through workgroup memory (coalesced); for hardware GPUs.
    Tiled,
}

impl XSweep {
    /// Tiled on a hardware adapter, lines on a CPU one (lavapipe); `IONFIELD_X_SWEEP =
    /// lines | tiled` chooses (benchmarks, tests).
    pub fn for_adapter(hardware: bool) -> Result<XSweep, String> {
        match std::env::var("IONFIELD_X_SWEEP").ok().as_deref() {
            None | Some("") => Ok(if hardware { XSweep::Tiled } else { XSweep::Lines }),
            Some("lines") => Ok(XSweep::Lines),
            Some("tiled") => Ok(XSweep::Tiled),
            Some(other) => Err(format!(
                "IONFIELD_X_SWEEP = {other:?} is not a kernel of the x sweep. Fix: set it to \"lines\" or \"tiled\", or unset it (tiled on a hardware GPU, lines on lavapipe)"
            )),
        }
    }

    fn entry_point(self) -> &'static str {
        match self {
            XSweep::Lines => "sweep_x",
            XSweep::Tiled => "sweep_x_tiled",
        }
    }
}

/// Which kernel to dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sweep {
    X,
    Y,
    Z,
    /// Pointwise loss of a species that does not diffuse.
    Decay,
}

impl Sweep {
    fn entry_point(self) -> &'static str {
        match self {
            Sweep::X => "sweep_x",
            Sweep::Y => "sweep_y",
            Sweep::Z => "sweep_z",
            Sweep::Decay => "decay",
        }
    }
    /// Invocations of a dispatch: lines of the sweep, or voxels.
    pub fn invocations(self, [nx, ny, nz]: [usize; 3]) -> usize {
        match self {
            Sweep::X => ny * nz,
            Sweep::Y => nx * nz,
            Sweep::Z => nx * ny,
            Sweep::Decay => nx * ny * nz,
        }
    }
}

/// Pipelines of the four entry points and their shared bind group layout.
pub struct DiffuseKernel {
    pub layout: wgpu::BindGroupLayout,
    pipelines: [wgpu::ComputePipeline; 4],
    /// The x sweep's kernel.
    pub x_sweep: XSweep,
}

impl DiffuseKernel {
    pub fn new(
        device: &wgpu::Device,
        max_line: usize,
        x_sweep: XSweep,
    ) -> Result<DiffuseKernel, Error> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("ionfield.diffuse_adi"),
            source: wgpu::ShaderSource::Wgsl(shader_source(max_line).into()),
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
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("ionfield.diffuse_adi.layout"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: wgpu::BufferSize::new(
                            std::mem::size_of::<DiffuseParams>() as u64,
                        ),
                    },
                    count: None,
                },
                storage(1, false),
                storage(2, false),
                storage(3, true),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("ionfield.diffuse_adi.pipeline_layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let make = |sweep: Sweep| {
            let entry = match sweep {
                Sweep::X => x_sweep.entry_point(),
                other => other.entry_point(),
            };
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&format!("ionfield.diffuse_adi.{entry}")),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let pipelines = [
            make(Sweep::X),
            make(Sweep::Y),
            make(Sweep::Z),
            make(Sweep::Decay),
        ];
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Shader {
                shader: "diffuse_adi.wgsl".into(),
                message: e.to_string(),
            });
        }
        Ok(DiffuseKernel {
            layout,
            pipelines,
            x_sweep,
        })
    }

    /// Records one dispatch of `sweep` for the species bound in `bind_group`.
    pub fn encode(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        bind_group: &wgpu::BindGroup,
        sweep: Sweep,
        shape: [usize; 3],
    ) {
        let index = match sweep {
            Sweep::X => 0,
            Sweep::Y => 1,
            Sweep::Z => 2,
            Sweep::Decay => 3,
        };
        pass.set_pipeline(&self.pipelines[index]);
        pass.set_bind_group(0, bind_group, &[]);
        let (gx, gy) = workgroups_2d(sweep.invocations(shape));
        pass.dispatch_workgroups(gx, gy, 1);
    }
}

/// Workgroup counts (x ≤ 65535, y) covering `invocations`; the shader flattens them
/// (`flat_id`) and discards the excess.
pub fn workgroups_2d(invocations: usize) -> (u32, u32) {
    let groups = invocations.div_ceil(WORKGROUP_SIZE as usize).max(1);
    let gx = groups.min(65535);
    (gx as u32, groups.div_ceil(gx) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    fn module() -> naga::Module {
        let module = naga::front::wgsl::parse_str(&shader_source(64))
            .unwrap_or_else(|e| panic!("{}", e.emit_to_string(SHADER)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("diffuse_adi.wgsl does not validate: {e:?}"));
        module
    }

    #[test]
    fn shader_parses_and_validates_without_a_gpu() {
        let m = module();
        let names: Vec<_> = m.entry_points.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["sweep_x", "sweep_x_tiled", "sweep_y", "sweep_z", "decay"]
        );
    }

    #[test]
    fn workgroup_size_matches_the_host_constant() {
        for ep in module().entry_points {
            assert_eq!(ep.workgroup_size, [WORKGROUP_SIZE, 1, 1], "{}", ep.name);
        }
    }

    #[test]
    fn params_layout_matches_the_wgsl_struct() {
        let m = module();
        let (_, ty) = m
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("DiffuseParams"))
            .expect("DiffuseParams in the shader");
        let naga::TypeInner::Struct { members, span } = &ty.inner else {
            panic!("DiffuseParams is a struct")
        };
        assert_eq!(*span as usize, size_of::<DiffuseParams>());
        let offsets: Vec<(String, u32)> = members
            .iter()
            .map(|mb| (mb.name.clone().unwrap_or_default(), mb.offset))
            .collect();
        let rust = [
            ("nx", offset_of!(DiffuseParams, nx)),
            ("ny", offset_of!(DiffuseParams, ny)),
            ("nz", offset_of!(DiffuseParams, nz)),
            ("held_bit", offset_of!(DiffuseParams, held_bit)),
            ("r", offset_of!(DiffuseParams, r)),
            ("theta", offset_of!(DiffuseParams, theta)),
            ("lossy", offset_of!(DiffuseParams, lossy)),
            ("loss", offset_of!(DiffuseParams, loss)),
        ];
        for (name, off) in rust {
            let wgsl = offsets
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("{name} missing in WGSL"));
            assert_eq!(wgsl.1 as usize, off, "offset of {name}");
        }
    }

    #[test]
    fn max_line_is_substituted() {
        assert!(shader_source(300).contains("const MAX_LINE: u32 = 300u;"));
        assert!(!shader_source(300).contains("1024u;"));
    }

    #[test]
    fn dispatch_covers_every_line_and_stays_within_limits() {
        assert_eq!(workgroups_2d(1), (1, 1));
        assert_eq!(workgroups_2d(64 * 65535 + 1), (65535, 2));
        let (gx, gy) = workgroups_2d(1000);
        assert!(gx as usize * gy as usize * WORKGROUP_SIZE as usize >= 1000);
    }
}
