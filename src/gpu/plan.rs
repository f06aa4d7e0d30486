//! Every buffer size of a run, computed once before anything is allocated, and the check
//! against the adapter's limits (also printed by `ionfield check`).

use super::Error;
use crate::config::Grid;

/// Longest grid line the diffusion kernel accepts: its private Thomas arrays hold
/// 2 × MAX_LINE_CAP f32 per invocation.
pub const MAX_LINE_CAP: usize = 4096;

/// Sizes of the device buffers of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct BufferPlan {
    pub n_species: usize,
    pub n_voxels: usize,
    /// One f32 field, bytes (each species has its own storage buffer).
    pub field_bytes: u64,
    /// Voxel mask (u32 per voxel), bytes.
    pub mask_bytes: u64,
    /// ADI scratch (one field, shared by all species), bytes.
    pub scratch_bytes: u64,
    /// Readback staging buffer (one field), bytes.
    pub staging_bytes: u64,
    /// Uniform parameters (one block per species), bytes.
    pub params_bytes: u64,
    /// Longest grid line, voxels.
    pub max_line: usize,
}

impl BufferPlan {
    pub fn new(grid: &Grid, n_species: usize) -> BufferPlan {
        let n_voxels = grid.n_voxels();
        let field_bytes = 4 * n_voxels as u64;
        BufferPlan {
            n_species,
            n_voxels,
            field_bytes,
            mask_bytes: 4 * n_voxels as u64,
            scratch_bytes: field_bytes,
            staging_bytes: field_bytes,
            params_bytes: n_species as u64
                * std::mem::size_of::<super::diffuse::DiffuseParams>() as u64,
            max_line: grid.nx.max(grid.ny).max(grid.nz),
        }
    }

    /// Total device memory of the run, bytes.
    pub fn required_bytes(&self) -> u64 {
        self.n_species as u64 * self.field_bytes
            + self.mask_bytes
            + self.scratch_bytes
            + self.staging_bytes
            + self.params_bytes
    }

    /// Refuses, before any allocation, a plan the adapter cannot hold. `available_bytes`
    /// is the memory the device may use where known (system RAM for a CPU adapter).
    pub fn check(&self, limits: &wgpu::Limits, available_bytes: Option<u64>) -> Result<(), Error> {
        let binding = limits.max_storage_buffer_binding_size;
        if self.field_bytes > binding || self.field_bytes > limits.max_buffer_size {
            return Err(Error::TooLarge {
                what: format!(
                    "one species field needs a {} storage binding",
                    human_bytes(self.field_bytes)
                ),
                allowed: format!(
                    "the adapter allows {} per binding and {} per buffer",
                    human_bytes(binding),
                    human_bytes(limits.max_buffer_size)
                ),
            });
        }
        let storage_buffers = 3; // u, v, mask per dispatch
        if limits.max_storage_buffers_per_shader_stage < storage_buffers {
            return Err(Error::TooLarge {
                what: format!("{storage_buffers} storage buffers per shader stage"),
                allowed: format!(
                    "the adapter allows {}",
                    limits.max_storage_buffers_per_shader_stage
                ),
            });
        }
        if self.max_line > MAX_LINE_CAP {
            return Err(Error::TooLarge {
                what: format!("a grid line of {} voxels", self.max_line),
                allowed: format!("the diffusion kernel holds lines of at most {MAX_LINE_CAP}"),
            });
        }
        if let Some(avail) = available_bytes {
            if self.required_bytes() > avail {
                return Err(Error::TooLarge {
                    what: format!("{} of device memory", human_bytes(self.required_bytes())),
                    allowed: format!("about {} is available", human_bytes(avail)),
                });
            }
        }
        Ok(())
    }
}

impl BufferPlan {
    /// [`BufferPlan::check`] against an adapter: its limits, and for a CPU adapter
    /// (lavapipe) the host memory it allocates from; a GPU's memory size is not exposed.
    pub fn check_adapter(&self, adapter: &super::context::AdapterSummary) -> Result<(), Error> {
        let available = match adapter.info.device_type {
            wgpu::DeviceType::Cpu => host_available_bytes(),
            _ => None,
        };
        self.check(&adapter.limits, available)
    }
}

/// Memory available to the process (MemAvailable of /proc/meminfo), bytes, if known.
pub fn host_available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `1.5 GiB`, `64.0 MiB`, `512 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_field_above_the_binding_limit() {
        let grid = Grid {
            nx: 512,
            ny: 512,
            nz: 512,
            voxel_um: 10.0,
        };
        let plan = BufferPlan::new(&grid, 2);
        assert_eq!(plan.field_bytes, 512 * 1024 * 1024);
        let mut limits = wgpu::Limits::downlevel_defaults();
        limits.max_storage_buffer_binding_size = 128 << 20;
        let err = plan.check(&limits, None).unwrap_err().to_string();
        assert!(
            err.contains("512.0 MiB") && err.contains("128.0 MiB"),
            "{err}"
        );
    }

    #[test]
    fn required_bytes_adds_fields_mask_staging_params() {
        let grid = Grid {
            nx: 8,
            ny: 8,
            nz: 8,
            voxel_um: 1.0,
        };
        let plan = BufferPlan::new(&grid, 3);
        assert_eq!(
            plan.required_bytes(),
            3 * 2048 + 2048 + 2048 + 2048 + 3 * 96
        );
    }
}
