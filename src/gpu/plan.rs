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

/// Memory the process may still allocate, and what bounds it.
#[derive(Clone, Debug, PartialEq)]
pub struct HostMemory {
    /// Bytes, the least of the bounds below that are known.
    pub bytes: u64,
    /// Which bound this is, for messages, e.g. `MemAvailable of /proc/meminfo`.
    pub bound_by: String,
    /// What raises that bound (`, or raise ulimit -v`), to append to a fix; may be empty.
    pub fix: &'static str,
}

/// Memory available to the process, bytes, if known: the least of [`host_memory`]'s bounds.
pub fn host_available_bytes() -> Option<u64> {
    host_memory().map(|m| m.bytes)
}

/// Memory the process may still allocate (Linux): the least of the system's MemAvailable
/// (/proc/meminfo), what the address-space limit leaves (RLIMIT_AS, `ulimit -v`, from
/// /proc/self/limits, less the VmSize already mapped) and what the cgroup memory limits
/// leave (cgroup v2 `memory.max` less `memory.current`, v1 `memory.limit_in_bytes` less
/// `memory.usage_in_bytes`, both less reclaimable inactive page cache; the process's
/// cgroup and its ancestors). `None` when none is known.
pub fn host_memory() -> Option<HostMemory> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let mut bounds: Vec<HostMemory> = Vec::new();
    if let Some(b) = read("/proc/meminfo").as_deref().and_then(mem_available) {
        bounds.push(HostMemory {
            bytes: b,
            bound_by: "MemAvailable of /proc/meminfo".into(),
            fix: "",
        });
    }
    if let Some(limit) = read("/proc/self/limits")
        .as_deref()
        .and_then(address_space_limit)
    {
        let mapped = read("/proc/self/status")
            .as_deref()
            .and_then(vm_size)
            .unwrap_or(0);
        bounds.push(HostMemory {
            bytes: limit.saturating_sub(mapped),
            bound_by: format!(
                "the process's address-space limit (ulimit -v) of {}, {} of it already mapped",
                human_bytes(limit),
                human_bytes(mapped)
            ),
            fix: ", or raise the address-space limit (ulimit -v)",
        });
    }
    if let Some(cgroup) = read("/proc/self/cgroup") {
        bounds.extend(cgroup_bounds(&cgroup, |p| read(p)));
    }
    bounds.into_iter().min_by_key(|b| b.bytes)
}

/// MemAvailable of /proc/meminfo, bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The soft "Max address space" of /proc/self/limits, bytes; `None` when unlimited.
fn address_space_limit(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    line["Max address space".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// VmSize of /proc/self/status, bytes.
fn vm_size(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmSize:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The memory limits of the cgroups in `proc_self_cgroup` (the text of /proc/self/cgroup)
/// and their ancestors, each less its usage; `read` reads a file under /sys/fs/cgroup.
fn cgroup_bounds(proc_self_cgroup: &str, read: impl Fn(&str) -> Option<String>) -> Vec<HostMemory> {
    let num = |text: Option<String>| -> Option<u64> { text?.trim().parse().ok() };
    let inactive_file = |dir: &str, key: &str| -> u64 {
        read(&format!("{dir}/memory.stat"))
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
            })
            .unwrap_or(0)
    };
    let mut out = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (root, v2) = if id == "0" && controllers.is_empty() {
            ("/sys/fs/cgroup".to_string(), true)
        } else if controllers.split(',').any(|c| c == "memory") {
            ("/sys/fs/cgroup/memory".to_string(), false)
        } else {
            continue;
        };
        // The cgroup, then each ancestor up to the root of the mount.
        let mut rel = path.trim_end_matches('/').to_string();
        loop {
            let dir = format!("{root}{rel}");
            let (limit_file, usage_file, inactive_key) = if v2 {
                ("memory.max", "memory.current", "inactive_file ")
            } else {
                (
                    "memory.limit_in_bytes",
                    "memory.usage_in_bytes",
                    "total_inactive_file ",
                )
            };
            // v2 writes `max` when unlimited; v1 a number near 2^63.
            if let Some(limit) = num(read(&format!("{dir}/{limit_file}"))).filter(|&l| l < 1 << 60)
            {
                let used = num(read(&format!("{dir}/{usage_file}")))
                    .unwrap_or(0)
                    .saturating_sub(inactive_file(&dir, inactive_key));
                out.push(HostMemory {
                    bytes: limit.saturating_sub(used),
                    bound_by: format!(
                        "the cgroup memory limit {dir}/{limit_file} of {}, {} of it in use",
                        human_bytes(limit),
                        human_bytes(used)
                    ),
                    fix: ", or ask for more memory (container or job limit)",
                });
            }
            match rel.rfind('/') {
                Some(i) if !rel.is_empty() => rel.truncate(i),
                _ => break,
            }
        }
    }
    out
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
    fn memory_bounds_are_read_from_proc_and_cgroup_files() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax stack size            8388608              unlimited            bytes\nMax address space         3072000000           unlimited            bytes\n";
        assert_eq!(address_space_limit(limits), Some(3_072_000_000));
        let unlimited =
            "Max address space         unlimited            unlimited            bytes\n";
        assert_eq!(address_space_limit(unlimited), None);
        assert_eq!(vm_size("Name:\tx\nVmSize:\t  1000 kB\n"), Some(1_024_000));
        assert_eq!(mem_available("MemAvailable:   2048 kB\n"), Some(2_097_152));

        let files = |p: &str| -> Option<String> {
            match p {
                "/sys/fs/cgroup/job/task/memory.max" => Some("max\n".into()),
                "/sys/fs/cgroup/job/memory.max" => Some("1073741824\n".into()),
                "/sys/fs/cgroup/job/memory.current" => Some("536870912\n".into()),
                "/sys/fs/cgroup/job/memory.stat" => {
                    Some("anon 1\ninactive_file 268435456\n".into())
                }
                _ => None,
            }
        };
        let b = cgroup_bounds("0::/job/task\n", files);
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(b[0].bytes, (1 << 30) - (1 << 29) + (1 << 28));
        assert!(
            b[0].bound_by.contains("/sys/fs/cgroup/job/memory.max"),
            "{b:?}"
        );
        let v1 = |p: &str| -> Option<String> {
            (p == "/sys/fs/cgroup/memory/memory.limit_in_bytes")
                .then(|| "9223372036854771712".into())
        };
        assert!(cgroup_bounds("5:memory:/\n", v1).is_empty(), "v1 unlimited");
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
