//! `ionfield describe`: a scenario's model as Markdown (`--all`: every preset, which is
//! how docs/model.md is made).

use super::args::DescribeArgs;
use super::common::{load, load_catalogue, AppError};
use crate::config;

pub fn describe(args: &DescribeArgs) -> Result<(), AppError> {
    if args.all {
        println!("{}", crate::output::describe::HEADER);
        for (_, path) in config::catalog::presets() {
            let scenario = load_catalogue(path)?;
            print!("{}", crate::output::describe::markdown(&scenario, path));
        }
        return Ok(());
    }
    let scenario = load(args.config.as_deref(), &[])?;
    let shown = args
        .config
        .as_deref()
        .map_or(config::catalog::DEFAULT_PATH.to_string(), |p| {
            p.display().to_string()
        });
    print!("{}", crate::output::describe::markdown(&scenario, &shown));
    Ok(())
}
