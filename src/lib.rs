//! ionfield: 3D tumour-tissue chemistry on the GPU (wgpu/WGSL) with an f64 CPU twin.
//!
//! Data flows one way: `config` (TOML → validated [`config::Scenario`]) → `model`
//! (rasterised initial fields, voxel masks, per-species coefficients) → an [`sim::Engine`]
//! (`gpu` or `cpu`) → `sim` (clock, output schedule) → `output` (PNG, npy, manifest).

pub mod config;
pub mod cpu;
pub mod gpu;
pub mod model;
pub mod output;
pub mod sim;

/// Version and commit recorded in every manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = env!("IONFIELD_GIT_COMMIT");
