//! The wgpu instance, adapter choice and device. Engines and kernels take a [`GpuContext`];
//! they never create one (tests inject their own).

use super::Error;
use std::sync::{Arc, Mutex};

/// Backends probed. GL is left out: it adds nothing for compute here and probing it prints
/// "XDG_RUNTIME_DIR is invalid" on headless machines (docs/performance.md).
pub const BACKENDS: wgpu::Backends = wgpu::Backends::VULKAN
    .union(wgpu::Backends::METAL)
    .union(wgpu::Backends::DX12);

/// How to install a software Vulkan driver, quoted in every "no adapter" error.
pub const INSTALL_LAVAPIPE: &str =
    "install Mesa's software Vulkan driver (lavapipe): apt-get update && apt-get install -y mesa-vulkan-drivers";

/// One adapter as `ionfield info` shows it.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
}

impl AdapterSummary {
    pub fn is_hardware(&self) -> bool {
        !matches!(self.info.device_type, wgpu::DeviceType::Cpu)
    }
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?}, driver {} {})",
            self.info.name,
            self.info.backend,
            self.info.device_type,
            self.info.driver,
            self.info.driver_info
        )
    }
}

fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if std::env::var_os("WGPU_BACKEND").is_none() {
        desc.backends = BACKENDS;
    }
    wgpu::Instance::new(desc)
}

/// Every adapter the instance sees, hardware first.
pub fn list_adapters() -> Vec<AdapterSummary> {
    let instance = instance();
    let mut list: Vec<_> = pollster::block_on(instance.enumerate_adapters(BACKENDS))
        .into_iter()
        .map(|a| AdapterSummary {
            info: a.get_info(),
            limits: a.limits(),
        })
        .collect();
    list.sort_by_key(|a| !a.is_hardware());
    list
}

/// A device and queue with the adapter they came from.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter: AdapterSummary,
    /// First validation error the device reported outside an error scope.
    uncaptured: Arc<Mutex<Option<String>>>,
}

impl GpuContext {
    /// Opens the adapter whose name contains `name_filter` (case-insensitive), else the
    /// first hardware adapter, else the first adapter (lavapipe on a CPU-only machine).
    pub fn new(name_filter: Option<&str>) -> Result<GpuContext, Error> {
        let instance = instance();
        let mut adapters = pollster::block_on(instance.enumerate_adapters(BACKENDS));
        if adapters.is_empty() {
            return Err(Error::NoAdapter {
                wanted: name_filter.map(str::to_string),
                available: String::new(),
            });
        }
        adapters.sort_by_key(|a| matches!(a.get_info().device_type, wgpu::DeviceType::Cpu));
        let chosen = match name_filter {
            Some(f) => {
                let f_lower = f.to_lowercase();
                let pos = adapters
                    .iter()
                    .position(|a| a.get_info().name.to_lowercase().contains(&f_lower));
                match pos {
                    Some(p) => adapters.swap_remove(p),
                    None => {
                        return Err(Error::NoAdapter {
                            wanted: Some(f.to_string()),
                            available: adapters
                                .iter()
                                .map(|a| a.get_info().name)
                                .collect::<Vec<_>>()
                                .join(", "),
                        })
                    }
                }
            }
            None => adapters.swap_remove(0),
        };
        let summary = AdapterSummary {
            info: chosen.get_info(),
            limits: chosen.limits(),
        };
        // Ask for the adapter's own limits: lavapipe allows 128 MiB bindings and 32 KiB of
        // workgroup memory, above wgpu's defaults (docs/performance.md).
        let (device, queue) = pollster::block_on(chosen.request_device(&wgpu::DeviceDescriptor {
            label: Some("ionfield.device"),
            required_features: wgpu::Features::empty(),
            required_limits: summary.limits.clone(),
            experimental_features: Default::default(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Device {
            adapter: summary.describe(),
            message: e.to_string(),
        })?;
        let uncaptured = Arc::new(Mutex::new(None));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                *slot = Some(e.to_string());
            }
        }));
        log::info!("GPU adapter: {}", summary.describe());
        Ok(GpuContext {
            device,
            queue,
            adapter: summary,
            uncaptured,
        })
    }

    /// Fails with the first validation error the device reported since creation.
    pub fn check_errors(&self) -> Result<(), Error> {
        let slot = self.uncaptured.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some(message) => Err(Error::Validation {
                message: message.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Waits until all submitted work has finished.
    pub fn wait(&self) -> Result<(), Error> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device {
                adapter: self.adapter.describe(),
                message: e.to_string(),
            })?;
        self.check_errors()
    }
}
