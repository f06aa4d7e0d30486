//! The `ionfield` command line: arguments ([`args`]), one module per subcommand, and the
//! pieces they share ([`common`]: the error with its exit code, loading, the backend).
//! Everything a subcommand computes is in the library; here it is called and printed.

pub mod args;
mod check;
mod common;
mod describe;
mod gather;
mod info;
mod list;
pub mod run;
mod sweep;

pub use common::{load_resolved, AppError, EXIT_INTERRUPTED};

/// Runs the parsed command line.
pub fn dispatch(cli: args::Cli) -> Result<(), AppError> {
    use args::Command;
    match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Resume(args) => run::resume(&args),
        Command::Check(args) => check::check(&args),
        Command::Info => info::info(),
        Command::List => list::list(),
        Command::Describe(args) => describe::describe(&args),
        Command::Schema => {
            let schema = crate::config::schema::scenario_schema();
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("a JSON value prints")
            );
            Ok(())
        }
        Command::Sweep(args) => sweep::sweep(&args),
        Command::Gather(args) => gather::gather(&args),
    }
}
