//! `ionfield list`: the built-in therapy presets, one line each.

use super::common::{load_catalogue, AppError};
use crate::config;

pub fn list() -> Result<(), AppError> {
    println!("built-in therapy presets (run one with `ionfield run NAME` or `ionfield run configs/therapies/NAME.toml`):");
    for (name, path) in config::catalog::presets() {
        let scenario = load_catalogue(path)?;
        let default = if path == config::catalog::DEFAULT_PATH {
            " (default)"
        } else {
            ""
        };
        println!("  {name:<24} {}{default}", scenario.description);
    }
    Ok(())
}
