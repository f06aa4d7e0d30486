//! ionfield: 3D tumour-tissue chemistry on the GPU (wgpu/WGSL) with an f64 CPU twin.
//!
//! Data flows one way: `config` (TOML → validated [`config::Scenario`]) → `model`
//! (rasterised initial fields, voxel masks, per-species coefficients) → an [`engine::Engine`]
//! (`gpu` or `cpu`) → `sim` (clock, output schedule) → `output` (PNG, npy, manifest).
//! `cli` is the command line on top of them (the `ionfield` binary and the Python package
//! both call it).
//!
//! ```
//! use ionfield::{config, cpu::CpuEngine, engine::Engine, model::Model};
//!
//! // The built-in default scenario, shortened from the command line's --set syntax.
//! // (Its 1.28 mm block on 16³ voxels of 80 µm.)
//! let sets = ["time.end_s=10".to_string(), "grid.shape=[16,16,16]".to_string(),
//!             "grid.voxel_um=80".to_string(), "output.slices=[8]".to_string()];
//! let scenario = config::load_str(config::DEFAULT_SCENARIO_TOML, config::DEFAULT_SOURCE, &sets)
//!     .expect("valid scenario");
//! let model = Model::build(&scenario);
//! let mut engine = CpuEngine::new(&model);
//! engine.advance(10, scenario.time.dt_s).unwrap();
//! let o2 = &engine.read_fields(&[0]).unwrap()[0];
//! // Vessels hold O2 at 0.054 mM; tissue consumes it, so nothing exceeds the blood value.
//! assert!(o2.iter().all(|&c| (0.0..=0.054 + 1e-6).contains(&c)));
//! ```

pub mod chart;
pub mod chem;
pub mod cli;
pub mod config;
pub mod cpu;
pub mod engine;
pub mod gpu;
pub mod grid;
pub mod model;
pub mod output;
pub mod random;
pub mod sim;
pub mod sweep;

/// Version and commit recorded in every manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = env!("IONFIELD_GIT_COMMIT");
