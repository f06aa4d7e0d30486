//! Scenario configuration: TOML schema, `--set` overrides, validation → [`Scenario`].
//!
//! Pipeline: text → spanned TOML document (syntax errors with line:col: `syntax.rs`;
//! positions for later errors: `locate.rs`) and a plain `toml::Value` tree (`include`s
//! merged: `compose.rs`) → `--set` overrides written into the tree (`overrides.rs`) → serde
//! into the raw schema structs (unknown keys refused with their dotted path:
//! `serde_error.rs`) → `validate.rs` (defaults, names, physical sense) → [`Scenario`].
//!
//! One module per TOML table holds the table's raw (serde) struct, its checks and its
//! tests: `grid.rs`, `time.rs`, `tissues.rs`, `species.rs` (with `boundary`), `vessels.rs`,
//! `vessel_network.rs`, `parameters.rs`, `reactions.rs`, `buffer.rs`, `chemistry.rs`,
//! `dosing.rs`, `mri.rs`, `output.rs` (its `[output.figure]` in `figure.rs`); the root table
//! is in `validate.rs`, the region keys that several tables share in `region.rs`, the small
//! checks and name lookups in `checks.rs`, the time keys that take a unit (`end = "24 h"`
//! beside `end_s = 86400`) in `duration.rs`.

pub mod catalog;
pub mod mask;
pub mod scenario;
pub mod vessel_network;

mod beam;
mod buffer;
mod checks;
mod chemistry;
mod compose;
mod dosing;
pub mod duration;
mod error;
mod figure;
mod files;
mod fluorescence;
mod grid;
mod locate;
mod mri;
mod origins;
mod output;
mod overrides;
mod parameters;
pub mod particle;
pub mod plasma;
mod raw;
mod reactions;
mod region;
pub mod schema;
mod serde_error;
mod species;
mod syntax;
mod time;
mod tissues;
mod validate;
mod vessels;

#[cfg(test)]
mod network_tests;
#[cfg(test)]
mod test_support;

pub use catalog::{DEFAULT_SCENARIO_TOML, DEFAULT_SOURCE};
pub use error::{Error, ErrorDetails, ErrorKind, Location};
pub use files::{MAX_NPY_HEADER_BYTES, MAX_TEXT_FILE_BYTES};
pub use grid::{MAX_EXTENT_UM, MAX_VOXELS};
pub use origins::{Origin, ResolvedValue};
pub use scenario::*;
pub use time::{
    default_summary_interval_s, MAX_DIFFUSION_R, MAX_DIFFUSION_SUBSTEPS, MAX_OUTPUT_TIMES,
    MAX_STEPS, MAX_STOPS, SUMMARY_STOPS,
};

use std::path::Path;

use locate::Context;
use serde_error::from_serde;
use syntax::syntax_error;
use toml::de::DeTable;

/// A validated scenario with what is needed to load it again exactly (checkpoints).
#[derive(Clone, Debug)]
pub struct Resolved {
    pub scenario: Scenario,
    /// The merged scenario (includes resolved, `--set` applied) as TOML, without
    /// `include`: loading it with the same `base_dir` gives the same scenario.
    pub toml: String,
    /// Folder that relative paths in the scenario (masks, vessel CSV) start from.
    pub base_dir: std::path::PathBuf,
    /// Where each value came from (empty unless asked for).
    pub origins: Vec<ResolvedValue>,
}

/// Reads and validates a scenario file; `overrides` are "dotted.path=value" strings from --set.
pub fn load_file(path: &Path, overrides: &[String]) -> Result<Scenario, Error> {
    load_file_resolved(path, overrides, false).map(|r| r.scenario)
}

/// [`load_file`], and where each value of the scenario came from (see
/// [`load_str_with_origins`]).
pub fn load_file_with_origins(
    path: &Path,
    overrides: &[String],
) -> Result<(Scenario, Vec<ResolvedValue>), Error> {
    load_file_resolved(path, overrides, true).map(|r| (r.scenario, r.origins))
}

/// [`load_file`], keeping the resolved TOML (and the origins when `with_origins`).
pub fn load_file_resolved(
    path: &Path,
    overrides: &[String],
    with_origins: bool,
) -> Result<Resolved, Error> {
    let (text, source) = read_file(path)?;
    load_resolved(&text, &source, file_dir(path), overrides, with_origins)
}

/// The text of a scenario file and its name in errors.
fn read_file(path: &Path) -> Result<(String, String), Error> {
    let source = path.display().to_string();
    let text = files::read_text(path).map_err(|e| {
        let mut err = Error::new(ErrorKind::Io, "", format!("cannot read the scenario file ({e})"))
            .fix("check the path (relative paths start from the current directory), or omit CONFIG to run the built-in default");
        err.file = source.clone();
        err
    })?;
    Ok((text, source))
}

/// The folder files named in a scenario file are relative to.
fn file_dir(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// Same, from text; `source` names it in errors (a path or DEFAULT_SOURCE). Files the
/// scenario names (masks, vessel segments) are relative to the current directory.
pub fn load_str(text: &str, source: &str, overrides: &[String]) -> Result<Scenario, Error> {
    load_str_in(text, source, Path::new("."), overrides)
}

/// Same, with files the scenario names (masks, vessel segments) relative to `base_dir`,
/// the top file's folder. Files named in `include = [...]` are merged underneath (see
/// `compose`; their paths are relative to the including file).
pub fn load_str_in(
    text: &str,
    source: &str,
    base_dir: &Path,
    overrides: &[String],
) -> Result<Scenario, Error> {
    load_resolved(text, source, base_dir, overrides, false).map(|r| r.scenario)
}

/// [`load_str_in`], and where each value came from: every leaf of the merged TOML tree
/// after the overrides (see [`ResolvedValue`]), in tree order (an included file's keys
/// before the including file's new ones), with the file and line that wrote it last in
/// merge order, or the `--set` that wrote it.
pub fn load_str_with_origins(
    text: &str,
    source: &str,
    base_dir: &Path,
    overrides: &[String],
) -> Result<(Scenario, Vec<ResolvedValue>), Error> {
    load_resolved(text, source, base_dir, overrides, true).map(|r| (r.scenario, r.origins))
}

/// The loader behind the `load_*` functions: [`load_str_in`], keeping the resolved TOML,
/// and the origins of every value (else empty) when `with_origins`.
pub fn load_resolved(
    text: &str,
    source: &str,
    base_dir: &Path,
    overrides: &[String],
    with_origins: bool,
) -> Result<Resolved, Error> {
    let compose::Composed {
        table,
        layers,
        writers,
    } = compose::compose(text, source)?;
    let texts: Vec<&str> = layers.iter().map(|l| l.text.as_str()).collect();
    let docs = texts
        .iter()
        .zip(&layers)
        .map(|(t, l)| DeTable::parse(t).map_err(|e| syntax_error(&e, t, &l.source)))
        .collect::<Result<Vec<_>, _>>()?;
    let ctx = Context {
        source,
        layers: &layers,
        docs: &docs,
        sets: Vec::new(),
    };
    let sets = overrides
        .iter()
        .map(|s| overrides::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ctx.finish(e))?;
    let ctx = Context { sets, ..ctx };

    let mut root = toml::Value::Table(table);
    // A --set of either form of a time key replaces the files' value in both forms.
    for set in &ctx.sets {
        duration::drop_forms_set(&mut root, &set.segs);
    }
    for set in &ctx.sets {
        overrides::apply(&mut root, set).map_err(|e| ctx.finish(e))?;
    }
    let origins = match (&root, with_origins) {
        (toml::Value::Table(t), true) => ctx.origins(t, &writers),
        _ => Vec::new(),
    };
    let toml = toml::to_string(&root).map_err(|e| {
        ctx.finish(Error::new(
            ErrorKind::InvalidValue,
            "",
            format!("the merged scenario cannot be written back as TOML ({e})"),
        ))
    })?;
    let raw: validate::RawScenario =
        serde_path_to_error::deserialize(root).map_err(|e| ctx.finish(from_serde(&e)))?;
    let scenario = validate::validate(raw, source, base_dir).map_err(|e| ctx.finish(e))?;
    Ok(Resolved {
        scenario,
        toml,
        base_dir: base_dir.to_path_buf(),
        origins,
    })
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn missing_file() {
        let path = Path::new("/nonexistent/dir/scenario.toml");
        let e = load_file(path, &[]).expect_err("missing file");
        assert_eq!(e.kind, ErrorKind::Io);
        let msg = e.to_string();
        assert!(msg.starts_with("/nonexistent/dir/scenario.toml: "), "{msg}");
        assert!(msg.contains("Fix: check the path"), "{msg}");
    }

    #[test]
    fn load_file_reads_a_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("s.toml");
        std::fs::write(&path, BASE).expect("write");
        let s = load_file(&path, &[]).expect("loads");
        assert_eq!(s.source, path.display().to_string());
    }
}
