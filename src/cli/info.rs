//! `ionfield info`: the GPU adapters, their limits, and what `--backend auto` would use.

use super::common::AppError;
use crate::gpu::{self, plan::human_bytes};

pub fn info() -> Result<(), AppError> {
    let adapters = gpu::context::list_adapters();
    if adapters.is_empty() {
        println!(
            "no GPU adapter found. Fix: {}. The CPU backend (--backend cpu) needs none.",
            gpu::INSTALL_LAVAPIPE
        );
    }
    for a in &adapters {
        let l = &a.limits;
        println!("{}", a.describe());
        println!(
            "  max storage binding {} | max buffer {} | storage buffers/stage {} | workgroup invocations {} | workgroup storage {} | workgroups/dim {}",
            human_bytes(l.max_storage_buffer_binding_size),
            human_bytes(l.max_buffer_size),
            l.max_storage_buffers_per_shader_stage,
            l.max_compute_invocations_per_workgroup,
            human_bytes(l.max_compute_workgroup_storage_size as u64),
            l.max_compute_workgroups_per_dimension
        );
    }
    println!(
        "--backend auto would use: {}",
        match adapters.iter().find(|a| a.is_hardware()) {
            Some(a) => format!(
                "gpu on {} (split scheme); cpu ({} threads) for time.scheme = \"coupled\", whose GPU twin is not yet measured on a hardware GPU (--backend gpu runs it)",
                a.info.name,
                rayon::current_num_threads()
            ),
            None => format!(
                "cpu ({} threads): no hardware GPU, and the native CPU backend is faster than software Vulkan (--backend gpu forces it)",
                rayon::current_num_threads()
            ),
        }
    );
    Ok(())
}
