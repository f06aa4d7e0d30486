//! The real `ionfield` binary on reaction-network configs: the well-mixed Fenton example is
//! accepted by `check`, and chemistry mistakes exit 2 with one message naming the file,
//! line, dotted field and fix (never a panic).

mod common;

use common::ionfield;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// The well-mixed Fenton + glutathione example; bad configs are made from it by one edit.
const FENTON_TOML: &str = include_str!("../configs/wellmixed_fenton.toml");

/// Writes the Fenton example with `from` replaced by `to` (which must occur once).
fn edited_fenton(dir: &Path, from: &str, to: &str) -> PathBuf {
    assert_eq!(
        FENTON_TOML.matches(from).count(),
        1,
        "configs/wellmixed_fenton.toml should contain {from:?} exactly once"
    );
    let path = dir.join("fenton.toml");
    std::fs::write(&path, FENTON_TOML.replacen(from, to, 1)).expect("write a temp config");
    path
}

fn line_of(from: &str, to: &str, needle: &str) -> usize {
    FENTON_TOML
        .replacen(from, to, 1)
        .lines()
        .position(|l| l.contains(needle))
        .expect("needle in the edited config")
        + 1
}

/// `ionfield check` on the example edited once: exit 2, one message with file:line (the
/// line of the edited text containing `at`), the field, every needle and a fix.
fn assert_chemistry_error(from: &str, to: &str, at: &str, field: &str, needles: &[&str]) {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let path = edited_fenton(dir.path(), from, to);
    let path = path.to_str().expect("temp paths are UTF-8");
    let out = ionfield(dir.path(), &["check", path]);
    println!(
        "{field}: exit {}\nstderr: {}",
        out.code,
        out.stderr.trim_end()
    );
    assert_eq!(
        out.code, 2,
        "expected exit 2\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    let line = line_of(from, to, at);
    let at = format!("{path}:{line}:");
    for n in [at.as_str(), &format!(": {field}: "), "Fix: "]
        .into_iter()
        .chain(needles.iter().copied())
    {
        assert!(
            out.stderr.contains(n),
            "stderr should contain {n:?}, got:\n{}",
            out.stderr
        );
    }
}

fn example_path() -> String {
    format!(
        "{}/configs/wellmixed_fenton.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn check_wellmixed_fenton_example_succeeds() {
    let dir: TempDir = tempfile::tempdir().expect("create a temp dir");
    let out = ionfield(dir.path(), &["check", &example_path()]);
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.contains("wellmixed_fenton"),
        "stdout:\n{}",
        out.stdout
    );
    assert!(out.stdout.contains("3600 steps"), "stdout:\n{}", out.stdout);
}

#[test]
fn check_accepts_set_of_a_parameter_value() {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let out = ionfield(
        dir.path(),
        &[
            "check",
            &example_path(),
            "--set",
            "parameters.k_fenton.value=0.08",
        ],
    );
    assert_eq!(out.code, 0, "stderr:\n{}", out.stderr);
}

#[test]
fn bad_input_unknown_parameter_in_set_exits_2() {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let out = ionfield(
        dir.path(),
        &[
            "check",
            &example_path(),
            "--set",
            "parameters.k_fentn.value=0.08",
        ],
    );
    assert_eq!(out.code, 2, "stderr:\n{}", out.stderr);
    for n in [
        "(--set parameters.k_fentn.value=0.08)",
        "parameters.k_fentn",
        "did you mean `k_fenton`?",
        "Fix: ",
    ] {
        assert!(out.stderr.contains(n), "{n:?} not in:\n{}", out.stderr);
    }
}

#[test]
fn bad_input_unknown_species_in_equation_exits_2() {
    assert_chemistry_error(
        "equation = \"Fe2 + H2O2 -> Fe3 + OH\"",
        "equation = \"Fe2 + H2O3 -> Fe3 + OH\"",
        "H2O3 -> Fe3",
        "reactions.fenton.equation",
        &["unknown species `H2O3`", "did you mean `H2O2`?"],
    );
}

#[test]
fn bad_input_empty_reaction_exits_2() {
    assert_chemistry_error(
        "equation = \"OH ->\"",
        "equation = \"->\"",
        "equation = \"->\"",
        "reactions.oh_bio.equation",
        &["at least one reactant or product"],
    );
}

#[test]
fn bad_input_where_viable_without_viab_exits_2() {
    assert_chemistry_error(
        "rate = \"k_fenton * Fe2 * H2O2\"",
        "rate = \"k_fenton * Fe2 * H2O2\"\nwhere = \"viable\"",
        "where = \"viable\"",
        "reactions.fenton.where",
        &["viab"],
    );
}

#[test]
fn bad_input_quasi_steady_species_that_diffuses_exits_2() {
    assert_chemistry_error(
        "diffusion_um2_per_s = 0.0\nquasi_steady = true",
        "diffusion_um2_per_s = 100.0\nquasi_steady = true",
        "diffusion_um2_per_s = 100.0",
        "species.OH.diffusion_um2_per_s",
        &["quasi-steady"],
    );
}

#[test]
fn bad_input_parameter_named_like_a_species_exits_2() {
    assert_chemistry_error(
        "k_fenton    = { value = 0.07",
        "Fe2 = { value = 0.07",
        "Fe2 = { value = 0.07",
        "parameters.Fe2",
        &["already a species"],
    );
}

#[test]
fn bad_input_unknown_buffer_species_exits_2() {
    assert_chemistry_error(
        "proton = \"H\"",
        "proton = \"Hp\"",
        "proton = \"Hp\"",
        "buffer.proton",
        &["unknown species `Hp`", "did you mean `H`?"],
    );
}

#[test]
fn bad_input_bad_rate_exits_2_at_the_rate() {
    assert_chemistry_error(
        "rate = \"k_fenton * Fe2 * H2O2\"",
        "rate = \"k_fenton * Fe2 * * H2O2\"",
        "* * H2O2",
        "reactions.fenton.rate",
        &[],
    );
}

#[test]
fn bad_input_rate_with_unbalanced_units_exits_2() {
    // A first-order constant (1/s) in a second-order rate: mM²/s instead of mM/s.
    assert_chemistry_error(
        "rate = \"k_cat * H2O2\"",
        "rate = \"k_cat * H2O2 * GSH\"",
        "k_cat * H2O2 * GSH",
        "reactions.catalase.rate",
        &["mM^2 s^-1", "must be in mM s^-1", "`1/s`", "`1/(mM*s)`"],
    );
}

#[test]
fn bad_input_unclosed_parenthesis_in_rate_exits_2_with_the_character() {
    // `k_fenton * (Fe2 + H2O2` is 22 characters: the `)` is missing at character 23.
    assert_chemistry_error(
        "rate = \"k_fenton * Fe2 * H2O2\"",
        "rate = \"k_fenton * (Fe2 + H2O2\"",
        "(Fe2 + H2O2",
        "reactions.fenton.rate",
        &["at character 23", "expected `)`", "close the parenthesis"],
    );
}

#[test]
fn bad_input_unknown_name_in_rate_exits_2_and_suggests_the_parameter() {
    assert_chemistry_error(
        "rate = \"k_gr * GSSG\"",
        "rate = \"k_grr * GSSG\"",
        "k_grr * GSSG",
        "reactions.gr.rate",
        &[
            "at character 1",
            "unknown name `k_grr`",
            "did you mean `k_gr`?",
        ],
    );
}

#[test]
fn bad_input_unguarded_division_by_a_species_exits_2() {
    // GSH can reach 0; the `/` is character 20 of the rate.
    assert_chemistry_error(
        "rate = \"k_gr * GSSG\"",
        "rate = \"k_gr * GSSG * GSSG / GSH\"",
        "GSSG * GSSG / GSH",
        "reactions.gr.rate",
        &[
            "at character 20",
            "division by a quantity that can be zero",
            "max(GSH, 1e-12)",
        ],
    );
}
