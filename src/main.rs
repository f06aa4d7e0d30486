//! `ionfield` binary: parse the command line, run, map the outcome to an exit code.

use clap::Parser;
use ionfield::cli;
use std::process::ExitCode;

/// A closed pipe ends the process quietly, as for any Unix tool (`ionfield check | head`
/// panicked in println! with "failed printing to stdout: Broken pipe"): Rust ignores
/// SIGPIPE by default; this restores the default action. Files a run writes are atomic,
/// so a run stopped this way leaves only complete files.
#[cfg(unix)]
fn restore_sigpipe() {
    // SAFETY: called first in main, before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn restore_sigpipe() {}

fn main() -> ExitCode {
    // Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid" on headless machines; give
    // them the temp dir. Done first, while the process has one thread.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    restore_sigpipe();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp(None)
        .init();
    let parsed = match cli::args::Cli::try_parse() {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli::dispatch(parsed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {:#}", e.error);
            ExitCode::from(e.code)
        }
    }
}
