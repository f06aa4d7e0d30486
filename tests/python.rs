//! The Python package (`python/`: PyO3 + maturin) built, installed and used as a
//! researcher would: maturin builds the abi3 wheel from this checkout, pip installs it
//! into a fresh venv, then
//!   * `tests/python/check_package.py` runs scenarios through `ionfield.run`, opens them
//!     with `ionfield.open_run` and compares every variable with the `.npy` files read by
//!     numpy alone (bitwise), the masks with the ones the run wrote, the DataFrame with the
//!     CSV, a stopped-and-resumed run with an uninterrupted one (bitwise), and bad input
//!     with the command line's errors;
//!   * `tests/python/run_notebook.py` executes `examples/quickstart.ipynb` with nbclient
//!     (a run, a profile, a dose–response whose last cell asserts that viability falls
//!     with dose) and fails on any cell error or a missing figure.
//!
//! Needs maturin, xarray, pandas, nbclient and ipykernel for `python3`:
//! `python3 -m pip install -r tests/readers/requirements.txt` (`IONFIELD_PYTHON` picks
//! another interpreter). Without them the test fails and says so; it never passes
//! without checking. The wheel is built with the dev profile, so it reuses the library
//! `cargo test` has just compiled.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const INSTALL: &str = "python3 -m pip install -r tests/readers/requirements.txt (Debian's own /usr/bin/python3 refuses this unless PIP_BREAK_SYSTEM_PACKAGES=1 is set, as .ci/run does; or install into a venv and set IONFIELD_PYTHON=venv/bin/python)";

/// Runs `cmd`, echoing its output; panics with `what` and the output if it fails.
fn run(mut cmd: Command, what: &str) {
    let started = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?} ({e}). {INSTALL}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "{what}: {:.1} s, {}\n{stdout}{stderr}",
        started.elapsed().as_secs_f64(),
        out.status
    );
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{stderr}\nIf a module is missing: {INSTALL}",
        out.status
    );
}

/// Builds the wheel into `dir` and installs it into a new venv there; returns the venv's
/// python.
fn install_wheel(dir: &Path) -> PathBuf {
    let python = std::env::var("IONFIELD_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let wheels = dir.join("wheels");
    let mut build = Command::new(&python);
    build
        .args([
            "-m",
            "maturin",
            "build",
            "--profile",
            "dev",
            "--manifest-path",
        ])
        .arg(repo.join("python/Cargo.toml"))
        .arg("--out")
        .arg(&wheels);
    run(build, "maturin build");
    let wheel = std::fs::read_dir(&wheels)
        .expect("maturin's output folder")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .expect("maturin wrote a .whl");
    assert!(
        wheel.to_string_lossy().contains("abi3"),
        "one wheel for every CPython ≥ 3.9: {}",
        wheel.display()
    );
    let venv = dir.join("venv");
    let mut make = Command::new(&python);
    // The venv sees the interpreter's numpy, xarray, pandas and nbclient; the package is
    // installed from the wheel alone (no index, no dependencies fetched).
    make.args(["-m", "venv", "--system-site-packages"])
        .arg(&venv);
    run(make, "python -m venv");
    let venv_python = venv.join("bin/python");
    let mut pip = Command::new(&venv_python);
    pip.args(["-m", "pip", "install", "--no-deps", "--no-index"])
        .arg(&wheel);
    run(pip, "pip install the wheel");
    venv_python
}

#[test]
fn python_package_runs_scenarios_reads_runs_back_and_executes_the_notebook() {
    let dir = tempfile::tempdir().expect("temp dir");
    let python = install_wheel(dir.path());
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Run from the temp dir, so `import ionfield` finds the installed wheel, not the
    // sources in python/.
    let mut check = Command::new(&python);
    check
        .arg(repo.join("tests/python/check_package.py"))
        .arg(dir.path().join("work"))
        .current_dir(dir.path());
    run(check, "tests/python/check_package.py");
    let mut notebook = Command::new(&python);
    notebook
        .arg(repo.join("tests/python/run_notebook.py"))
        .arg(repo.join("examples/quickstart.ipynb"))
        .arg(dir.path().join("notebook"))
        .current_dir(dir.path());
    run(notebook, "examples/quickstart.ipynb");
}
