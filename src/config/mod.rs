//! Scenario configuration: TOML schema, `--set` overrides, validation → [`Scenario`].
//!
//! Pipeline: text → spanned TOML document (syntax errors with line:col, positions for later
//! errors) and a plain `toml::Value` tree → `--set` overrides written into the tree → serde
//! into the raw schema structs (`raw.rs`, unknown keys refused with their dotted path) →
//! `validate.rs` (defaults, names, physical sense) → [`Scenario`].

pub mod catalog;
mod compose;
mod error;
mod figure;
pub mod mask;
mod origins;
mod overrides;
mod raw;
pub mod scenario;
mod validate;
pub mod vessel_network;

pub use error::{Error, ErrorDetails, ErrorKind, Location};
pub use origins::{Origin, ResolvedValue};
pub use scenario::*;
pub use validate::MAX_VOXELS;

use std::path::Path;

#[cfg(test)]
mod network_tests;

use error::{did_you_mean, list};
use overrides::{Seg, SetArg};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// The built-in scenario, used when no CONFIG is given: the Fe Fenton CDT preset.
pub const DEFAULT_SCENARIO_TOML: &str = include_str!("../../configs/therapies/fe_fenton_cdt.toml");
/// Source name of [`DEFAULT_SCENARIO_TOML`] in errors and in [`Scenario::source`].
pub const DEFAULT_SOURCE: &str = "<built-in default>";

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
    let text = std::fs::read_to_string(path).map_err(|e| {
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
    let raw: raw::RawScenario =
        serde_path_to_error::deserialize(root).map_err(|e| ctx.finish(from_serde(&e)))?;
    let scenario = validate::validate(raw, source, base_dir).map_err(|e| ctx.finish(e))?;
    Ok(Resolved {
        scenario,
        toml,
        base_dir: base_dir.to_path_buf(),
        origins,
    })
}

/// What an error needs to name its file and place.
struct Context<'a, 'i> {
    /// The top file (errors about no particular field name it).
    source: &'a str,
    /// Every file of the scenario in merge order, the top file last.
    layers: &'a [compose::Layer],
    docs: &'a [Spanned<DeTable<'i>>],
    sets: Vec<SetArg>,
}

impl Context<'_, '_> {
    /// Fills in the file and the location: the `--set` that wrote the field, else the
    /// field's line:col in the file that last wrote it (the deepest match over the
    /// included files; the later file on a tie).
    fn finish(&self, mut e: Error) -> Error {
        if e.file.is_empty() {
            e.file = self.source.to_string();
        }
        if e.location != Location::Unknown {
            return e;
        }
        let by_set = self.sets.iter().rev().find(|s| {
            under(&e.field, &s.path)
                || (e.kind == ErrorKind::UnknownKey && under(&s.path, &e.field))
        });
        if let Some(set) = by_set {
            e.location = Location::Set(set.shown.clone());
            if e.kind == ErrorKind::UnknownKey {
                e.kind = ErrorKind::BadSet;
            }
            return e;
        }
        let best = self
            .docs
            .iter()
            .zip(self.layers)
            .filter_map(|(doc, layer)| {
                locate(doc, &layer.text, &e.field).map(|(depth, lc)| (depth, lc, layer))
            })
            .fold(
                None,
                |best: Option<(usize, (usize, usize), &compose::Layer)>, cur| match best {
                    Some(b) if b.0 > cur.0 => Some(b),
                    _ => Some(cur),
                },
            );
        if let Some((_, (line, column), layer)) = best {
            e.file = layer.source.clone();
            e.location = Location::LineCol { line, column };
        }
        e
    }
}

/// Is `path` equal to `prefix` or inside it (`a.b` is under `a`, `a[1].c` under `a[1]`)?
fn under(path: &str, prefix: &str) -> bool {
    !prefix.is_empty()
        && path.starts_with(prefix)
        && matches!(
            path[prefix.len()..].chars().next(),
            None | Some('.') | Some('[')
        )
}

fn line_col(text: &str, offset: usize) -> Option<(usize, usize)> {
    let before = text.get(..offset.min(text.len()))?;
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Some((line, column))
}

/// (depth, line:col) of the key at `field` (dotted path), or of its deepest existing
/// ancestor; depth counts the path segments found.
fn locate(doc: &Spanned<DeTable<'_>>, text: &str, field: &str) -> Option<(usize, (usize, usize))> {
    locate_segs(doc, text, &overrides::parse_path(field)?)
}

/// [`locate`] for a parsed path.
fn locate_segs(
    doc: &Spanned<DeTable<'_>>,
    text: &str,
    segs: &[Seg],
) -> Option<(usize, (usize, usize))> {
    let mut table: Option<&DeTable<'_>> = Some(doc.get_ref());
    let mut array: Option<&[Spanned<DeValue<'_>>]> = None;
    let mut offset = None;
    let mut depth = 0;
    for seg in segs {
        let next: &Spanned<DeValue<'_>> = match (seg, table, array) {
            (Seg::Key(k), Some(t), _) => {
                let Some((key, value)) = t
                    .iter()
                    .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
                else {
                    break;
                };
                offset = Some(key.span().start);
                value
            }
            (Seg::Index(i), _, Some(a)) => {
                let Some(value) = a.get(*i) else { break };
                offset = Some(value.span().start);
                value
            }
            _ => break,
        };
        depth += 1;
        table = None;
        array = None;
        match next.get_ref() {
            DeValue::Table(t) => table = Some(t),
            DeValue::Array(a) => array = Some(a),
            _ => {}
        }
    }
    Some((depth, line_col(text, offset?)?))
}

pub(crate) fn syntax_error(e: &toml::de::Error, text: &str, source: &str) -> Error {
    let mut err = Error::new(
        ErrorKind::Syntax,
        "",
        format!("invalid TOML: {}", e.message().trim().replace('\n', " ")),
    )
    .fix("correct the TOML syntax at this position (strings in quotes, arrays in [ ], one `key = value` per line; see https://toml.io)");
    err.file = source.to_string();
    if let Some(span) = e.span() {
        if let Some((line, column)) = line_col(text, span.start) {
            err.location = Location::LineCol { line, column };
        }
        err.field = syntax_field(text, span.start).unwrap_or_default();
    }
    err
}

/// Best-effort dotted path of a syntax error: the last `[table]` header before it plus the
/// `key =` on its line. `None` when either part does not look like plain keys.
fn syntax_field(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset.min(text.len()))?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| plain(k));
    let headers: Vec<&str> = before[..line_start]
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('['))
        .collect();
    let header = headers.last().map(|last| {
        let name = last
            .trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or("")
            .trim();
        if last.starts_with("[[") {
            // Array of tables: the n-th `[[name]]` is element n − 1.
            let n = headers
                .iter()
                .filter(|l| {
                    l.starts_with("[[")
                        && l.trim_start_matches('[').split(']').next().map(str::trim) == Some(name)
                })
                .count();
            (name, Some(n.saturating_sub(1)))
        } else {
            (name, None)
        }
    });
    let header = header.filter(|(h, _)| plain(h)).map(|(h, i)| match i {
        Some(i) => format!("{h}[{i}]"),
        None => h.to_string(),
    });
    match (header, key) {
        (Some(h), Some(k)) => Some(format!("{h}.{k}")),
        (None, Some(k)) => Some(k.to_string()),
        (Some(h), None) if !line.trim_start().starts_with('[') => Some(h),
        _ => None,
    }
}

/// Turns a serde error (unknown key, missing key, wrong type) into a [`config::Error`](Error).
fn from_serde(e: &serde_path_to_error::Error<toml::de::Error>) -> Error {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let msg = e.inner().message().trim();
    let backticked = |s: &str| -> Vec<String> {
        s.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (key, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let allowed = backticked(tail);
        let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
        let fix = if allowed.is_empty() {
            "remove the key".to_string()
        } else {
            format!(
                "use one of the allowed keys here: {}",
                list(allowed.iter().copied())
            )
        };
        Error::new(
            ErrorKind::UnknownKey,
            path,
            format!(
                "unknown key `{key}`{}",
                did_you_mean(key, allowed.iter().copied())
            ),
        )
        .fix(fix)
    } else if let Some(rest) = msg.strip_prefix("missing field `") {
        let key = rest.split('`').next().unwrap_or(rest);
        let field = if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        };
        let fix = match key {
            "grid" => {
                "add a [grid] table with `shape = [64, 64, 64]` and `voxel_um = 10.0`".to_string()
            }
            "time" => "add a [time] table with `dt_s`, `end_s` and optionally `output_interval_s`"
                .to_string(),
            "species" => {
                "add at least one species, e.g. [species.O2] with `diffusion_um2_per_s = 2000.0`"
                    .to_string()
            }
            "value" => "add `value = <number>`, or a per-tissue table `value = { normal = 0.07, tumour = 0.1 }`".to_string(),
            "unit" => "add the parameter's unit, e.g. `unit = \"1/s\"`, `unit = \"1/(mM*s)\"` or `unit = \"1\"` (dimensionless)".to_string(),
            "equation" => "add the stoichiometry, e.g. `equation = \"Fe2 + H2O2 -> Fe3 + OH\"`".to_string(),
            "rate" => "add the rate in mM/s, e.g. `rate = \"k_fenton * Fe2 * H2O2\"`".to_string(),
            "proton" => "add the free proton species, e.g. `proton = \"H\"`".to_string(),
            "beta_nb_mM_per_pH" => "add the non-bicarbonate buffer capacity, e.g. `beta_nb_mM_per_pH = 20.0`".to_string(),
            _ => format!("add `{key} = …` (see {} for an example)", example_for(&field)),
        };
        Error::new(ErrorKind::MissingKey, field, "required key is missing").fix(fix)
    } else if let Some(rest) = msg.strip_prefix("invalid type: ") {
        let (found, expected) = rest
            .rsplit_once(", expected ")
            .unwrap_or((rest, "another type"));
        let expected = human_type(expected);
        let fix = format!(
            "write {expected} here (see {} for an example)",
            example_for(&path)
        );
        Error::new(
            ErrorKind::WrongType,
            path,
            format!("wrong type, expected {expected}"),
        )
        .found(human_found(found))
        .fix(fix)
    } else {
        let fix = format!("see {} for a working example", example_for(&path));
        Error::new(ErrorKind::InvalidValue, path, msg.replace('\n', " ")).fix(fix)
    }
}

/// The example config that shows the section of `field`.
fn example_for(field: &str) -> &'static str {
    let chemistry = ["parameters", "reactions", "buffer", "chemistry"]
        .iter()
        .any(|s| under(field, s));
    if chemistry {
        "configs/wellmixed_fenton.toml"
    } else {
        "configs/therapies/fe_fenton_cdt.toml"
    }
}

/// serde's expected-type wording → the TOML words a user knows.
fn human_type(expected: &str) -> String {
    match expected.trim() {
        "f64" | "f32" => "a number".to_string(),
        "i64" | "i32" | "u64" | "u32" | "usize" => "an integer".to_string(),
        "a boolean" | "bool" => "true or false".to_string(),
        "a sequence" => "an array".to_string(),
        "a string" | "string" => "a string in quotes".to_string(),
        "a map" | "a table" => "a table".to_string(),
        s if s.starts_with("struct ") => "a table".to_string(),
        s => s.to_string(),
    }
}

fn human_found(found: &str) -> String {
    match found {
        "map" => "a table".to_string(),
        "sequence" => "an array".to_string(),
        s => s.replace('`', ""),
    }
}

#[cfg(test)]
mod tests {
    /// Diffusion-only scenario the tests edit (the built-in default has a network).
    const BASE: &str = include_str!("testdata/base.toml");

    use super::*;

    const FILE: &str = "scenario.toml";

    /// The default scenario with each `(from, to)` replaced once (each `from` must occur).
    fn edited(edits: &[(&str, &str)]) -> String {
        let mut text = BASE.to_string();
        for (from, to) in edits {
            assert!(text.contains(from), "test edit `{from}` not found");
            text = text.replacen(from, to, 1);
        }
        text
    }

    fn load_err(text: &str, sets: &[&str]) -> Error {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        match load_str(text, FILE, &sets) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    /// One line, names the file and the field, has a fix.
    fn check(e: &Error, field: &str) -> String {
        let msg = e.to_string();
        assert!(msg.starts_with(FILE), "{msg}");
        assert!(
            msg.contains(&format!(": {field}: ")),
            "field `{field}` not in: {msg}"
        );
        assert!(msg.contains("Fix: "), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
        assert_eq!(e.field, field);
        msg
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text.lines()
            .position(|l| l.contains(needle))
            .expect("needle in text")
            + 1
    }

    #[test]
    fn default_config_loads() {
        let s = load_str(DEFAULT_SCENARIO_TOML, DEFAULT_SOURCE, &[]).expect("default loads");
        assert_eq!(s.name, "fe_fenton_cdt");
        assert!(!s.reactions.is_empty() && s.buffer.is_some());
        let s = load_str(BASE, DEFAULT_SOURCE, &[]).expect("test base loads");
        assert_eq!(s.name, "vascularised_tumour");
        assert!(!s.description.is_empty());
        assert_eq!(s.source, DEFAULT_SOURCE);
        assert_eq!(
            s.grid,
            Grid {
                nx: 64,
                ny: 64,
                nz: 64,
                voxel_um: 10.0
            }
        );
        assert_eq!(
            s.time,
            TimeSpec {
                dt_s: 1.0,
                end_s: 600.0,
                output_interval_s: 120.0,
                theta: 1.0,
                max_diffusion_r: None,
            }
        );
        let tissues: Vec<&str> = s.tissues.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(tissues, ["normal", "tumour"]);
        assert!(s.tissues[0].region.is_none());
        assert_eq!(
            s.tissues[1].region,
            Some(Region::Sphere {
                centre_um: glam::DVec3::splat(320.0),
                radius_um: 200.0
            })
        );
        let species: Vec<&str> = s.species.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(species, ["O2", "glucose"]);
        let o2 = &s.species[0];
        assert_eq!(o2.unit, "mM");
        assert_eq!(o2.diffusion_um2_per_s, 2000.0);
        assert_eq!(o2.decay_per_s_by_tissue, [0.06, 0.1]);
        assert_eq!(o2.initial.uniform_mm, 0.054);
        assert!(o2.initial.regions.is_empty());
        assert_eq!(o2.boundary, [BoundaryCondition::ZeroFlux; 6]);
        assert_eq!(s.species[1].decay_per_s_by_tissue, [7e-4, 1.7e-3]);
        assert_eq!(s.vessels.len(), 6);
        for v in &s.vessels {
            assert_eq!(v.hold_mm, [(0, 0.054), (1, 5.0)]);
            assert!(matches!(v.region, Region::Cylinder { radius_um, .. } if radius_um == 8.0));
        }
        let out = &s.output;
        assert_eq!(out.fields, [0, 1]);
        assert_eq!(out.colormap, Colormap::Viridis);
        assert_eq!(out.slice_axis, Axis::Z);
        assert_eq!(out.slices, SliceSelection::Indices(vec![32]));
        assert_eq!(
            out.ranges,
            [
                ValueRange::Fixed { lo: 0.0, hi: 0.06 },
                ValueRange::Fixed { lo: 4.0, hi: 5.0 }
            ]
        );
        assert!(out.png16 && out.npy && out.vti && !out.tiff);
    }

    #[test]
    fn malformed_toml_has_line_col() {
        let text = edited(&[("dt_s = 1.0", "dt_s = 1.0.0")]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::Syntax);
        let msg = check(&e, "time.dt_s");
        let line = line_of(&text, "dt_s = 1.0.0");
        assert!(
            matches!(e.location, Location::LineCol { line: l, .. } if l == line),
            "{msg}"
        );
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
    }

    #[test]
    fn unknown_key_suggests_the_close_one() {
        let text = edited(&[(
            "diffusion_um2_per_s = 2000.0",
            "difusion_um2_per_s = 2000.0",
        )]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::UnknownKey);
        let msg = check(&e, "species.O2.difusion_um2_per_s");
        assert!(msg.contains("did you mean `diffusion_um2_per_s`?"), "{msg}");
        assert!(msg.contains("`decay_per_s`"), "allowed keys listed: {msg}");
        let line = line_of(&text, "difusion_um2_per_s");
        assert!(msg.starts_with(&format!("{FILE}:{line}:1: ")), "{msg}");
    }

    #[test]
    fn center_um_suggests_centre_um() {
        let text = edited(&[("centre_um = [320.0", "center_um = [320.0")]);
        let msg = check(&load_err(&text, &[]), "tissues.tumour.center_um");
        assert!(msg.contains("did you mean `centre_um`?"), "{msg}");
    }

    #[test]
    fn negative_diffusion() {
        let text = edited(&[("diffusion_um2_per_s = 2000.0", "diffusion_um2_per_s = -5")]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::InvalidValue);
        let msg = check(&e, "species.O2.diffusion_um2_per_s");
        let line = line_of(&text, "diffusion_um2_per_s = -5");
        assert_eq!(
            msg,
            format!(
                "{FILE}:{line}:1: species.O2.diffusion_um2_per_s: must be ≥ 0, found -5. \
                 Fix: set a non-negative diffusion coefficient in µm²/s (0 = does not diffuse)."
            )
        );
    }

    #[test]
    fn non_positive_dt() {
        for dt in ["0.0", "-1"] {
            let text = edited(&[("dt_s = 1.0", &format!("dt_s = {dt}"))]);
            let msg = check(&load_err(&text, &[]), "time.dt_s");
            assert!(msg.contains("must be > 0"), "{msg}");
        }
        let text = edited(&[("end_s = 600.0", "end_s = 0.5")]);
        check(&load_err(&text, &[]), "time.end_s");
    }

    #[test]
    fn region_outside_the_grid() {
        let text = edited(&[(
            "centre_um = [320.0, 320.0, 320.0]",
            "centre_um = [700.0, 320.0, 320.0]",
        )]);
        let msg = check(&load_err(&text, &[]), "tissues.tumour.centre_um");
        assert!(msg.contains("outside the grid"), "{msg}");
        assert!(msg.contains("[0, 640] µm on x"), "{msg}");
        let line = line_of(&text, "centre_um = [700.0");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
        // Vessel end points too, by index.
        let text = edited(&[(
            "end_um = [540.0, 150.0, 640.0]",
            "end_um = [540.0, 150.0, 641.0]",
        )]);
        let msg = check(&load_err(&text, &[]), "vessels[1].end_um");
        assert!(msg.contains("on z"), "{msg}");
    }

    #[test]
    fn grid_shape_below_three() {
        let text = edited(&[("shape = [64, 64, 64]", "shape = [64, 2, 64]")]);
        let msg = check(&load_err(&text, &[]), "grid.shape");
        assert!(msg.contains("found [64, 2, 64]"), "{msg}");
        let text = edited(&[("shape = [64, 64, 64]", "shape = [64, 64]")]);
        check(&load_err(&text, &[]), "grid.shape");
        let text = edited(&[("shape = [64, 64, 64]", "shape = [4096, 4096, 4096]")]);
        let msg = check(&load_err(&text, &[]), "grid.shape");
        assert!(msg.contains("smaller grid"), "{msg}");
    }

    #[test]
    fn set_unknown_key() {
        let e = load_err(BASE, &["species.O2.difusion=3"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
        let msg = check(&e, "species.O2.difusion");
        assert!(
            msg.starts_with(&format!("{FILE} (--set species.O2.difusion=3): ")),
            "{msg}"
        );
        assert!(msg.contains("did you mean `diffusion_um2_per_s`?"), "{msg}");
        // A species the file does not define.
        let e = load_err(BASE, &["species.o2.decay_per_s=1"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
        let msg = check(&e, "species.o2");
        assert!(msg.contains("did you mean `O2`?"), "{msg}");
        // A whole unknown table.
        let e = load_err(BASE, &["tme.dt_s=1"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
        let msg = check(&e, "tme");
        assert!(msg.contains("did you mean `time`?"), "{msg}");
        // Index out of range.
        let e = load_err(BASE, &["vessels[9].radius_um=3"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
        check(&e, "vessels[9]");
    }

    #[test]
    fn set_malformed() {
        let e = load_err(BASE, &["time.dt_s"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("{FILE} (--set time.dt_s): ")),
            "{msg}"
        );
        assert!(
            msg.contains("missing `=`") && msg.contains("Fix: "),
            "{msg}"
        );
        let e = load_err(BASE, &["time..dt_s=1"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
    }

    #[test]
    fn set_values_apply_and_are_validated() {
        let sets: Vec<String> = [
            "output.colormap=magma",
            "time.dt_s=0.5",
            "vessels[1].radius_um=5",
            "species.O2.uptake_per_s.tumour=0.2",
            "species.glucose.boundary.x_min=5",
            "output.slices=all",
            "description=\"changed\"",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = load_str(BASE, FILE, &sets).expect("overrides load");
        assert_eq!(s.output.colormap, Colormap::Magma);
        assert_eq!(s.time.dt_s, 0.5);
        assert!(
            matches!(s.vessels[1].region, Region::Cylinder { radius_um, .. } if radius_um == 5.0)
        );
        assert_eq!(s.species[0].decay_per_s_by_tissue, [0.06, 0.2]);
        assert_eq!(
            s.species[1].boundary[0],
            BoundaryCondition::Dirichlet { value_mm: 5.0 }
        );
        assert_eq!(s.species[1].boundary[1], BoundaryCondition::ZeroFlux);
        assert_eq!(s.output.slices, SliceSelection::All);
        assert_eq!(s.description, "changed");

        // A key the file omits but the schema allows.
        let text = edited(&[("output_interval_s = 120.0\n", "")]);
        let s = load_str(&text, FILE, &[]).expect("loads");
        assert_eq!(s.time.output_interval_s, 600.0);
        let s = load_str(&text, FILE, &["time.output_interval_s=60".to_string()]).expect("loads");
        assert_eq!(s.time.output_interval_s, 60.0);

        // A bad value from --set is located at the --set, not in the file.
        let e = load_err(BASE, &["species.O2.decay_per_s=-1"]);
        assert_eq!(e.kind, ErrorKind::InvalidValue);
        let msg = check(&e, "species.O2.decay_per_s");
        assert!(
            msg.starts_with(&format!("{FILE} (--set species.O2.decay_per_s=-1): species.O2.decay_per_s: must be ≥ 0, found -1.")),
            "{msg}"
        );
        let e = load_err(BASE, &["time.dt_s=fast"]);
        assert_eq!(e.kind, ErrorKind::WrongType);
        let msg = check(&e, "time.dt_s");
        assert!(
            msg.contains("(--set time.dt_s=fast)") && msg.contains("expected a number"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_species_in_hold_mm() {
        let text = edited(&[("hold_mm = { O2 = 0.054", "hold_mm = { O3 = 0.054")]);
        let msg = check(&load_err(&text, &[]), "vessels[0].hold_mm.O3");
        assert!(msg.contains("did you mean `O2`?"), "{msg}");
        let line = line_of(&text, "O3 = 0.054");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
    }

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

    #[test]
    fn output_interval_rounded_to_a_multiple_of_dt() {
        let text = edited(&[("dt_s = 1.0", "dt_s = 0.7")]);
        let s = load_str(&text, FILE, &[]).expect("loads with a warning");
        let steps = s.time.output_interval_s / s.time.dt_s;
        assert!((steps - steps.round()).abs() < 1e-9, "{steps}");
        assert!((s.time.output_interval_s - 119.7).abs() < 1e-9);
        // Shorter than one step → one step.
        let text = edited(&[("output_interval_s = 120.0", "output_interval_s = 0.2")]);
        let s = load_str(&text, FILE, &[]).expect("loads");
        assert_eq!(s.time.output_interval_s, 1.0);
    }

    #[test]
    fn region_fields_follow_the_shape() {
        let text = edited(&[("shape = \"sphere\"", "shape = \"box\"")]);
        let msg = check(&load_err(&text, &[]), "tissues.tumour.centre_um");
        assert!(
            msg.contains("`centre_um` is not a field of shape \"box\""),
            "{msg}"
        );
        let text = edited(&[("radius_um = 200.0\n", "")]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::MissingKey);
        check(&e, "tissues.tumour.radius_um");
        let text = edited(&[("shape = \"sphere\"", "shape = \"spere\"")]);
        let msg = check(&load_err(&text, &[]), "tissues.tumour.shape");
        assert!(msg.contains("did you mean `sphere`?"), "{msg}");
    }

    #[test]
    fn wrong_type() {
        let text = edited(&[("voxel_um = 10.0", "voxel_um = \"ten\"")]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::WrongType);
        let msg = check(&e, "grid.voxel_um");
        assert!(msg.contains("expected a number"), "{msg}");
        let text = edited(&[("shape = [64, 64, 64]", "shape = [64, 64.5, 64]")]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::WrongType);
        check(&e, "grid.shape[1]");
    }

    #[test]
    fn names_and_cross_references() {
        let text = edited(&[("[tissues.tumour]", "[tissues.normal]")]);
        check(&load_err(&text, &[]), "tissues.normal");
        let text = edited(&[(
            "uptake_per_s = { normal = 0.06, tumour",
            "uptake_per_s = { normal = 0.06, tumor",
        )]);
        let msg = check(&load_err(&text, &[]), "species.O2.uptake_per_s.tumor");
        assert!(msg.contains("did you mean `tumour`?"), "{msg}");
        let text = edited(&[("fields = [\"O2\", \"glucose\"]", "fields = [\"O2\"]")]);
        let msg = check(&load_err(&text, &[]), "output.ranges_mm.glucose");
        assert!(msg.contains("not in output.fields"), "{msg}");
        let text = edited(&[("slices = [32]", "slices = [64]")]);
        check(&load_err(&text, &[]), "output.slices[0]");
        let text = edited(&[("glucose = [4.0, 5.0]", "glucose = [5.0, 4.0]")]);
        check(&load_err(&text, &[]), "output.ranges_mm.glucose");
        let text = edited(&[("name = \"vascularised_tumour\"", "name = \"has space\"")]);
        check(&load_err(&text, &[]), "name");
        let text = edited(&[(
            "boundary = { all = \"zero_flux\" }",
            "boundary = { all = \"zeroflux\" }",
        )]);
        let msg = check(&load_err(&text, &[]), "species.O2.boundary.all");
        assert!(msg.contains("did you mean `zero_flux`?"), "{msg}");
    }

    #[test]
    fn minimal_scenario_takes_defaults() {
        let text = r#"
name = "mini"
[grid]
shape = [8, 9, 10]
voxel_um = 5
[time]
dt_s = 0.1
end_s = 1
[species.Z]
diffusion_um2_per_s = 10
[species.A]
diffusion_um2_per_s = 0
"#;
        let s = load_str(text, FILE, &[]).expect("minimal loads");
        assert_eq!(s.tissues.len(), 1);
        assert_eq!(s.time.output_interval_s, 1.0);
        let names: Vec<&str> = s.species.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Z", "A"], "file order is buffer order");
        assert_eq!(s.species[0].unit, "mM");
        assert_eq!(s.species[0].decay_per_s_by_tissue, [0.0]);
        assert!(!s.species[1].diffuses());
        assert_eq!(s.output.fields, [0, 1]);
        assert_eq!(s.output.slices, SliceSelection::Indices(vec![5]));
        assert_eq!(s.output.ranges, [ValueRange::Auto, ValueRange::Auto]);
        let no_species = text.split("[species.Z]").next().expect("split");
        let e = load_err(no_species, &[]);
        assert_eq!(e.kind, ErrorKind::MissingKey);
        check(&e, "species");
    }

    /// Mangling any line of the default file gives Ok or a one-line error, never a panic.
    #[test]
    fn never_panics_on_mangled_input() {
        let lines: Vec<&str> = BASE.lines().collect();
        for i in 0..lines.len() {
            let Some((key, _)) = lines[i].split_once(" = ") else {
                continue;
            };
            for value in [
                "-1",
                "0",
                "\"x\"",
                "[]",
                "[1, 2, 3]",
                "{}",
                "nan",
                "1e400",
                "true",
                "",
                "[[1]]",
            ] {
                let mut l = lines.clone();
                let new = format!("{key} = {value}");
                l[i] = &new;
                if let Err(e) = load_str(&l.join("\n"), FILE, &[]) {
                    let msg = e.to_string();
                    assert!(msg.starts_with(FILE) && !msg.contains('\n'), "{msg}");
                }
            }
            let mut l = lines.clone();
            l.remove(i);
            let _ = load_str(&l.join("\n"), FILE, &[]);
        }
        for set in [
            "=",
            "=1",
            "a=",
            "[=1",
            "grid.shape[0]=2",
            "grid.shape[7]=2",
            "name.x=1",
            "vessels.x=1",
        ] {
            let _ = load_str(BASE, FILE, &[set.to_string()]);
        }
    }

    // ---- chemistry: [parameters], [reactions], [buffer], [chemistry], quasi_steady ----
    // Tests marked (chem) call chem::parse_unit / parse_equation / Network::compile.

    const FENTON: &str = include_str!("../../configs/wellmixed_fenton.toml");

    /// The well-mixed Fenton example with each `(from, to)` replaced once.
    fn fenton(edits: &[(&str, &str)]) -> String {
        let mut text = FENTON.to_string();
        for (from, to) in edits {
            assert!(text.contains(from), "test edit `{from}` not found");
            text = text.replacen(from, to, 1);
        }
        text
    }

    /// The default scenario (tissues `normal`, `tumour`; species `O2`, `glucose`) plus
    /// `extra` TOML at the end.
    fn default_plus(extra: &str) -> String {
        format!("{BASE}\n{extra}\n")
    }

    fn parameter<'a>(s: &'a Scenario, name: &str) -> &'a Parameter {
        s.parameters
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("parameter {name}"))
    }

    fn reaction<'a>(s: &'a Scenario, name: &str) -> &'a Reaction {
        s.reactions
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("reaction {name}"))
    }

    /// (chem) The example loads: indices in species order, fractional and integer
    /// coefficients, empty sides, buffer, integrator settings.
    #[test]
    fn wellmixed_fenton_example_loads() {
        let s = load_str(FENTON, FILE, &[]).expect("the Fenton example loads");
        assert_eq!(s.grid.shape(), [1, 1, 1]);
        let names: Vec<&str> = s.species.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["Fe2", "Fe3", "H2O2", "GSH", "GSSG", "H", "HCO3", "OH"]
        );
        let qs: Vec<bool> = s.species.iter().map(|s| s.quasi_steady).collect();
        assert_eq!(qs, [false, false, false, false, false, false, false, true]);
        let (fe2, fe3, h2o2, gsh, gssg, h, hco3, oh) = (0, 1, 2, 3, 4, 5, 6, 7);

        assert_eq!(s.parameters.len(), 15);
        assert_eq!(s.parameters[0].name, "k_fenton", "file order");
        let k = parameter(&s, "k_fenton");
        assert_eq!(k.value_by_tissue, [0.07]);
        assert_eq!(k.unit, "1/(mM*s)");
        assert!(k.source.starts_with("R1, 63"));
        assert!(k.is_uniform());
        assert_eq!(parameter(&s, "K_G").unit, "mM");
        assert_eq!(parameter(&s, "k_bio").value_by_tissue, [5e8]);

        assert_eq!(s.reactions.len(), 13);
        assert_eq!(s.reactions[0].name, "fenton", "file order");
        let r = reaction(&s, "fenton");
        assert_eq!(r.equation, "Fe2 + H2O2 -> Fe3 + OH");
        assert_eq!(r.rate, "k_fenton * Fe2 * H2O2");
        assert_eq!(r.reactants, [(fe2, 1.0), (h2o2, 1.0)]);
        assert_eq!(r.products, [(fe3, 1.0), (oh, 1.0)]);
        assert_eq!(r.tissues, None);
        assert!(!r.viable_only);
        assert_eq!(reaction(&s, "oh_gsh").reactants, [(oh, 1.0), (gsh, 1.0)]);
        assert_eq!(reaction(&s, "oh_gsh").products, [(gssg, 0.5)]);
        assert_eq!(
            reaction(&s, "fe3_gsh").products,
            [(fe2, 1.0), (gssg, 0.5), (h, 1.0)]
        );
        assert_eq!(
            reaction(&s, "gsh_h2o2").reactants,
            [(gsh, 2.0), (h2o2, 1.0)]
        );
        assert_eq!(reaction(&s, "gsh_h2o2").products, [(gssg, 1.0)]);
        assert_eq!(reaction(&s, "gr").products, [(gsh, 2.0)]);
        let sink = reaction(&s, "oh_h2o2");
        assert_eq!(sink.reactants, [(oh, 1.0), (h2o2, 1.0)]);
        assert!(sink.products.is_empty());
        let source = reaction(&s, "gsh_synthesis");
        assert!(source.reactants.is_empty());
        assert_eq!(source.products, [(gsh, 1.0)]);

        let b = s.buffer.as_ref().expect("buffer");
        assert_eq!(b.proton, h);
        assert_eq!(b.beta_nb_mm_per_ph, 20.0);
        assert_eq!(b.bicarbonate, Some(hco3));
        assert_eq!(
            s.chemistry,
            ChemistrySpec {
                rtol: 1e-3,
                atol_mm: 1e-6,
                max_substeps: 20_000
            }
        );
    }

    /// Without chemistry sections a scenario has no network and default integrator settings.
    #[test]
    fn no_chemistry_sections_means_no_network() {
        let s = load_str(BASE, FILE, &[]).expect("default loads");
        assert!(s.parameters.is_empty() && s.reactions.is_empty() && s.buffer.is_none());
        assert_eq!(s.chemistry, ChemistrySpec::default());
        assert!(s.species.iter().all(|s| !s.quasi_steady));
    }

    /// (chem: parse_unit) Per-tissue values, `default`, integers, missing and unknown tissues.
    #[test]
    fn per_tissue_parameter_tables() {
        let text = default_plus(
            r#"[parameters]
k_a = { value = { tumour = 0.2, default = 0.1 }, unit = "1/s" }
k_b = { value = { normal = 1, tumour = 2 }, unit = "1/s", source = "[E]" }
k_c = { value = 3, unit = "mM" }"#,
        );
        let s = load_str(&text, FILE, &[]).expect("loads");
        assert_eq!(parameter(&s, "k_a").value_by_tissue, [0.1, 0.2]);
        assert!(!parameter(&s, "k_a").is_uniform());
        assert_eq!(parameter(&s, "k_b").value_by_tissue, [1.0, 2.0]);
        assert_eq!(parameter(&s, "k_b").source, "[E]");
        assert_eq!(parameter(&s, "k_c").value_by_tissue, [3.0, 3.0]);
        assert!(parameter(&s, "k_c").is_uniform());
        assert_eq!(parameter(&s, "k_c").source, "");

        // --set into a per-tissue table.
        let s =
            load_str(&text, FILE, &["parameters.k_b.value.tumour=5".to_string()]).expect("loads");
        assert_eq!(parameter(&s, "k_b").value_by_tissue, [1.0, 5.0]);
    }

    /// These fail before any chemistry string is parsed.
    #[test]
    fn per_tissue_parameter_errors() {
        let one = |value: &str| {
            default_plus(&format!(
                "[parameters]\nk = {{ value = {value}, unit = \"1/s\" }}"
            ))
        };
        let text = one("{ tumour = 0.2 }");
        let msg = check(&load_err(&text, &[]), "parameters.k.value");
        assert!(
            msg.contains("`normal`") && msg.contains("default = "),
            "{msg}"
        );
        let line = line_of(&text, "k = { value");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");

        let msg = check(
            &load_err(&one("{ tumor = 0.2, default = 0.1 }"), &[]),
            "parameters.k.value.tumor",
        );
        assert!(
            msg.contains("unknown tissue `tumor` (did you mean `tumour`?)"),
            "{msg}"
        );
        assert!(msg.contains("`normal`, `tumour`"), "{msg}");

        let e = load_err(&one("\"fast\""), &[]);
        assert_eq!(e.kind, ErrorKind::WrongType);
        check(&e, "parameters.k.value");
        let e = load_err(&one("{ normal = 1, tumour = \"x\" }"), &[]);
        assert_eq!(e.kind, ErrorKind::WrongType);
        check(&e, "parameters.k.value.tumour");
        let msg = check(&load_err(&one("nan"), &[]), "parameters.k.value");
        assert!(msg.contains("finite"), "{msg}");

        // unit is required, unknown keys refused.
        let text = default_plus("[parameters]\nk = { value = 1 }");
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::MissingKey);
        let msg = check(&e, "parameters.k.unit");
        assert!(msg.contains("unit = \"1/s\""), "{msg}");
        let text = default_plus("[parameters]\nk = { value = 1, unit = \"1/s\", units = \"1/s\" }");
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::UnknownKey);
        let msg = check(&e, "parameters.k.units");
        assert!(msg.contains("did you mean `unit`?"), "{msg}");
    }

    /// Parameter names: identifiers, not a species, tissue, built-in variable or function.
    #[test]
    fn parameter_name_clashes() {
        let first = "k_fenton    = { value = 0.07";
        for (name, needle) in [
            ("Fe2", "already a species"),
            ("normal", "already a tissue"),
            ("pH", "reserved"),
            ("viab", "reserved"),
            ("t", "reserved"),
            ("exp", "reserved"),
            ("hill", "reserved"),
            ("clamp", "reserved"),
        ] {
            let text = fenton(&[(first, &format!("{name} = {{ value = 0.07"))]);
            let msg = check(&load_err(&text, &[]), &format!("parameters.{name}"));
            assert!(msg.contains(needle), "{msg}");
            let line = line_of(&text, &format!("{name} = {{ value = 0.07"));
            assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
        }
        let text = fenton(&[(first, "\"k-1\" = { value = 0.07")]);
        let msg = check(&load_err(&text, &[]), "parameters.k-1");
        assert!(msg.contains("[A-Za-z][A-Za-z0-9_]*"), "{msg}");
    }

    /// (chem: parse_unit) A bad unit names the field and the character.
    #[test]
    fn bad_parameter_unit() {
        let text = fenton(&[(
            "unit = \"1/(mM*s)\", source = \"R1,",
            "unit = \"1/(mM*s\", source = \"R1,",
        )]);
        let msg = check(&load_err(&text, &[]), "parameters.k_fenton.unit");
        assert!(msg.contains("at character "), "{msg}");
        let line = line_of(&text, "unit = \"1/(mM*s\"");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
    }

    /// (chem: parse_unit, parse_equation) Unknown species in an equation, with suggestion.
    #[test]
    fn unknown_species_in_equation() {
        let text = fenton(&[(
            "equation = \"Fe2 + H2O2 -> Fe3 + OH\"",
            "equation = \"Fe2 + H2O3 -> Fe3 + OH\"",
        )]);
        let msg = check(&load_err(&text, &[]), "reactions.fenton.equation");
        assert!(
            msg.contains("unknown species `H2O3` (did you mean `H2O2`?)"),
            "{msg}"
        );
        assert!(msg.contains("`Fe2`, `Fe3`"), "species listed: {msg}");
        let line = line_of(&text, "H2O3 -> Fe3");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
        // On the product side too.
        let text = fenton(&[(
            "equation = \"GSSG -> 2 GSH\"",
            "equation = \"GSSG -> 2 GHS\"",
        )]);
        let msg = check(&load_err(&text, &[]), "reactions.gr.equation");
        assert!(msg.contains("unknown species `GHS`"), "{msg}");
    }

    /// (chem: parse_unit, parse_equation) A syntax error names the character.
    #[test]
    fn equation_syntax_error() {
        let text = fenton(&[(
            "equation = \"Fe2 + H2O2 -> Fe3 + OH\"",
            "equation = \"Fe2 + + H2O2 -> Fe3 + OH\"",
        )]);
        let msg = check(&load_err(&text, &[]), "reactions.fenton.equation");
        assert!(msg.contains("at character "), "{msg}");
    }

    /// (chem: parse_unit, parse_equation) `->` alone is refused with source/sink examples.
    #[test]
    fn reaction_without_reactants_or_products() {
        let text = fenton(&[("equation = \"OH ->\"", "equation = \"->\"")]);
        let msg = check(&load_err(&text, &[]), "reactions.oh_bio.equation");
        assert!(
            msg.contains("a reaction needs at least one reactant or product"),
            "{msg}"
        );
        assert!(msg.contains("-> H2O2") && msg.contains("OH ->"), "{msg}");
    }

    /// (chem) A species twice on one side is one term with the summed coefficient.
    #[test]
    fn repeated_species_on_one_side_are_merged() {
        let text = fenton(&[(
            "equation = \"2 GSH + H2O2 -> GSSG\"",
            "equation = \"GSH + H2O2 + GSH -> GSSG\"",
        )]);
        let s = load_str(&text, FILE, &[]).expect("loads");
        assert_eq!(reaction(&s, "gsh_h2o2").reactants, [(3, 2.0), (2, 1.0)]);
    }

    /// (chem: parse_unit, parse_equation) `where` names tissues; unknown ones are refused.
    #[test]
    fn unknown_tissue_in_where() {
        let reaction = |place: &str| {
            default_plus(&format!(
                "[parameters]\nk = {{ value = 0.1, unit = \"1/s\" }}\n\
                 [reactions.uptake]\nequation = \"O2 ->\"\nrate = \"k * O2\"\nwhere = {place}"
            ))
        };
        let text = reaction("\"tumor\"");
        let msg = check(&load_err(&text, &[]), "reactions.uptake.where");
        assert!(
            msg.contains("unknown tissue `tumor` (did you mean `tumour`?)"),
            "{msg}"
        );
        assert!(msg.contains("`normal`, `tumour`"), "{msg}");
        let line = line_of(&text, "where = \"tumor\"");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");

        let msg = check(
            &load_err(&reaction("[\"tumour\", \"tumor\"]"), &[]),
            "reactions.uptake.where[1]",
        );
        assert!(msg.contains("did you mean `tumour`?"), "{msg}");
        check(
            &load_err(&reaction("[\"tumour\", \"tumour\"]"), &[]),
            "reactions.uptake.where[1]",
        );
        check(&load_err(&reaction("[]"), &[]), "reactions.uptake.where");
        check(
            &load_err(&reaction("[\"viable\"]"), &[]),
            "reactions.uptake.where[0]",
        );
        let e = load_err(&reaction("3"), &[]);
        assert_eq!(e.kind, ErrorKind::WrongType);
        check(&e, "reactions.uptake.where");
    }

    /// (chem) Where a reaction acts, resolved to tissue ids.
    #[test]
    fn where_resolves_tissues() {
        let reaction_where = |place: &str| {
            let text = default_plus(&format!(
                "[parameters]\nk = {{ value = 0.1, unit = \"1/s\" }}\n\
                 [reactions.uptake]\nequation = \"O2 ->\"\nrate = \"k * O2\"\nwhere = {place}"
            ));
            let s = load_str(&text, FILE, &[]).expect("loads");
            (s.reactions[0].tissues.clone(), s.reactions[0].viable_only)
        };
        assert_eq!(reaction_where("\"everywhere\""), (None, false));
        assert_eq!(reaction_where("\"tumour\""), (Some(vec![1]), false));
        assert_eq!(
            reaction_where("[\"tumour\", \"normal\"]"),
            (Some(vec![1, 0]), false)
        );
    }

    /// (chem: parse_unit, parse_equation) `where = "viable"` needs a species `viab`.
    #[test]
    fn where_viable_needs_viab() {
        let edit = (
            "rate = \"k_fenton * Fe2 * H2O2\"",
            "rate = \"k_fenton * Fe2 * H2O2\"\nwhere = \"viable\"",
        );
        let text = fenton(&[edit]);
        let msg = check(&load_err(&text, &[]), "reactions.fenton.where");
        assert!(
            msg.contains("no species `viab`") && msg.contains("[species.viab]"),
            "{msg}"
        );
        let line = line_of(&text, "where = \"viable\"");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
    }

    /// (chem) With a `viab` species, `where = "viable"` sets viable_only.
    #[test]
    fn where_viable_with_viab() {
        let text = fenton(&[
            (
                "rate = \"k_fenton * Fe2 * H2O2\"",
                "rate = \"k_fenton * Fe2 * H2O2\"\nwhere = \"viable\"",
            ),
            (
                "[species.OH]",
                "[species.viab]\ndiffusion_um2_per_s = 0.0\nunit = \"1\"\ninitial = { uniform_mm = 1.0 }\n[species.OH]",
            ),
        ]);
        let s = load_str(&text, FILE, &[]).expect("loads");
        let r = reaction(&s, "fenton");
        assert!(r.viable_only);
        assert_eq!(r.tissues, None);
    }

    /// A quasi-steady species cannot diffuse.
    #[test]
    fn quasi_steady_with_diffusion() {
        let text = fenton(&[(
            "diffusion_um2_per_s = 0.0\nquasi_steady = true",
            "diffusion_um2_per_s = 100.0\nquasi_steady = true",
        )]);
        let msg = check(&load_err(&text, &[]), "species.OH.diffusion_um2_per_s");
        assert!(
            msg.contains("quasi-steady") && msg.contains("found 100"),
            "{msg}"
        );
        assert!(
            msg.contains("diffusion_um2_per_s = 0.0") && msg.contains("quasi_steady = true"),
            "{msg}"
        );
        let line = line_of(&text, "diffusion_um2_per_s = 100.0");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
        // Also when switched on from the command line.
        let e = load_err(BASE, &["species.O2.quasi_steady=true"]);
        check(&e, "species.O2.diffusion_um2_per_s");
        let e = load_err(BASE, &["species.O2.quasi_steady=1"]);
        assert_eq!(e.kind, ErrorKind::WrongType);
    }

    /// (chem: parse_unit, parse_equation) Buffer species must exist, differ, not be
    /// quasi-steady; β must be > 0.
    #[test]
    fn bad_buffer() {
        let text = fenton(&[("proton = \"H\"", "proton = \"Hp\"")]);
        let msg = check(&load_err(&text, &[]), "buffer.proton");
        assert!(
            msg.contains("unknown species `Hp` (did you mean `H`?)"),
            "{msg}"
        );
        let line = line_of(&text, "proton = \"Hp\"");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
        let text = fenton(&[("bicarbonate = \"HCO3\"", "bicarbonate = \"HCO\"")]);
        let msg = check(&load_err(&text, &[]), "buffer.bicarbonate");
        assert!(msg.contains("did you mean `HCO3`?"), "{msg}");
        let text = fenton(&[("bicarbonate = \"HCO3\"", "bicarbonate = \"H\"")]);
        let msg = check(&load_err(&text, &[]), "buffer.bicarbonate");
        assert!(msg.contains("must differ from buffer.proton"), "{msg}");
        let text = fenton(&[("proton = \"H\"", "proton = \"OH\"")]);
        let msg = check(&load_err(&text, &[]), "buffer.proton");
        assert!(msg.contains("quasi-steady"), "{msg}");
        let text = fenton(&[("beta_nb_mM_per_pH = 20.0", "beta_nb_mM_per_pH = 0.0")]);
        let msg = check(&load_err(&text, &[]), "buffer.beta_nb_mM_per_pH");
        assert!(msg.contains("must be > 0"), "{msg}");
        let line = line_of(&text, "beta_nb_mM_per_pH = 0.0");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
    }

    /// Buffer keys are checked by the schema (no chemistry string parsed yet).
    #[test]
    fn buffer_schema() {
        let text = fenton(&[("beta_nb_mM_per_pH = 20.0", "beta_nb_mm_per_ph = 20.0")]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::UnknownKey);
        let msg = check(&e, "buffer.beta_nb_mm_per_ph");
        assert!(msg.contains("did you mean `beta_nb_mM_per_pH`?"), "{msg}");
        let text = fenton(&[("proton = \"H\"\n", "")]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::MissingKey);
        check(&e, "buffer.proton");
    }

    /// (chem: parse_unit, parse_equation) Integrator settings: defaults and bounds.
    #[test]
    fn chemistry_settings() {
        let cut = FENTON.split("[chemistry]").next().expect("split");
        let s = load_str(cut, FILE, &[]).expect("loads without [chemistry]");
        assert_eq!(s.chemistry, ChemistrySpec::default());
        let s = load_str(FENTON, FILE, &["chemistry.rtol=1e-6".to_string()]).expect("loads");
        assert_eq!(s.chemistry.rtol, 1e-6);
        for (set, field) in [
            ("chemistry.rtol=0", "chemistry.rtol"),
            ("chemistry.rtol=0.5", "chemistry.rtol"),
            ("chemistry.atol_mm=0", "chemistry.atol_mm"),
            ("chemistry.atol_mm=-1e-9", "chemistry.atol_mm"),
            ("chemistry.max_substeps=0", "chemistry.max_substeps"),
            (
                "chemistry.max_substeps=99999999999",
                "chemistry.max_substeps",
            ),
        ] {
            let e = load_err(FENTON, &[set]);
            assert_eq!(e.kind, ErrorKind::InvalidValue, "{e}");
            let msg = check(&e, field);
            assert!(msg.contains(&format!("(--set {set})")), "{msg}");
        }
        let e = load_err(FENTON, &["chemistry.max_substeps=1.5"]);
        assert_eq!(e.kind, ErrorKind::WrongType);
    }

    /// (chem) --set changes a parameter value; --set cannot invent a parameter.
    #[test]
    fn set_parameter_value() {
        let s = load_str(
            FENTON,
            FILE,
            &["parameters.k_fenton.value=0.08".to_string()],
        )
        .expect("loads");
        assert_eq!(parameter(&s, "k_fenton").value_by_tissue, [0.08]);
        let s = load_str(
            FENTON,
            FILE,
            &["parameters.k_fenton.value={ normal = 0.09 }".to_string()],
        )
        .expect("loads");
        assert_eq!(parameter(&s, "k_fenton").value_by_tissue, [0.09]);
    }

    #[test]
    fn set_unknown_parameter_or_reaction() {
        let e = load_err(FENTON, &["parameters.k_fentn.value=0.08"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
        let msg = check(&e, "parameters.k_fentn");
        assert!(
            msg.contains("unknown parameter `k_fentn` (did you mean `k_fenton`?)"),
            "{msg}"
        );
        assert!(
            msg.starts_with(&format!("{FILE} (--set parameters.k_fentn.value=0.08): ")),
            "{msg}"
        );
        let e = load_err(FENTON, &["reactions.fentn.rate=0"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
        let msg = check(&e, "reactions.fentn");
        assert!(msg.contains("did you mean `fenton`?"), "{msg}");
        // A scenario without [parameters].
        let e = load_err(BASE, &["parameters.k.value=1"]);
        assert_eq!(e.kind, ErrorKind::BadSet);
        check(&e, "parameters.k");
    }

    /// (chem) A compile error (here in a rate) is located at its field.
    #[test]
    fn compile_error_is_located_at_its_field() {
        let text = fenton(&[(
            "rate = \"k_fenton * Fe2 * H2O2\"",
            "rate = \"k_fentn * Fe2 * H2O2\"",
        )]);
        let e = load_err(&text, &[]);
        assert_eq!(e.kind, ErrorKind::InvalidValue);
        let msg = check(&e, "reactions.fenton.rate");
        let line = line_of(&text, "rate = \"k_fentn");
        assert!(msg.starts_with(&format!("{FILE}:{line}:")), "{msg}");
    }

    /// [1, 1, 1] is one well-mixed voxel; other shapes still need ≥ 3 per axis.
    #[test]
    fn well_mixed_grid() {
        let text = r#"
name = "one"
[grid]
shape = [1, 1, 1]
voxel_um = 10
[time]
dt_s = 1
end_s = 10
[species.A]
diffusion_um2_per_s = 0
"#;
        let s = load_str(text, FILE, &[]).expect("one voxel loads");
        assert_eq!(s.grid.n_voxels(), 1);
        assert_eq!(s.output.slices, SliceSelection::Indices(vec![0]));
        let e = load_err(text, &["grid.shape=[1, 1, 3]"]);
        let msg = check(&e, "grid.shape");
        assert!(msg.contains("[1, 1, 1]"), "{msg}");
    }
}
