//! Composition: `include = ["../chemistry/baseline.toml", …]` at the top of a scenario
//! merges other TOML files underneath it.
//!
//! Merge rule: the included files are read first, in list order, then the including file
//! on top. Tables merge key by key (recursively); any other value (number, string, array,
//! array of tables) is replaced whole by the later file; a time key written in either form
//! (`end_s` or `end = "24 h"`, `duration.rs`) replaces both forms. New keys keep file
//! order, so the species of an included chemistry file come first in buffer order. A table
//! with a `shape` (a tissue, a region, a dose) redefined with another shape replaces the
//! earlier one whole: a box over an included sphere does not inherit its `radius_um`. Includes
//! may include; paths are relative to the including file. Files of the built-in catalogue
//! ([`super::catalog`]) resolve inside the binary, so the built-in default needs no files.

use super::catalog;
use super::error::{Error, ErrorKind};
use std::path::{Path, PathBuf};

/// One file that went into a scenario, in merge order (the top file last).
#[derive(Clone, Debug)]
pub struct Layer {
    /// Path as shown in errors (a path, or `<built-in> configs/…` for catalogue files).
    pub source: String,
    pub text: String,
}

/// Includes nested deeper than this are refused (a cycle guard besides the path check).
const MAX_DEPTH: usize = 16;

/// A composed scenario: the merged table, the files that went into it, and who wrote what.
#[derive(Clone, Debug)]
pub struct Composed {
    pub table: toml::Table,
    /// Every file in merge order, the top file last.
    pub layers: Vec<Layer>,
    /// The same tree shape as `table` (tables merged key by key), each other value (number,
    /// string, array, array of tables) replaced by the index in `layers` of the file that
    /// wrote it: made by the same [`merge`] as `table`, so it cannot disagree with it.
    pub writers: toml::Table,
}

/// Parses `text` (named `source`) and everything it includes; returns the merged table and
/// the layers in merge order. Syntax errors name the layer they are in.
pub fn compose(text: &str, source: &str) -> Result<Composed, Error> {
    let mut layers = Vec::new();
    let (table, writers) = load(text, source, &mut layers, &mut Vec::new())?;
    Ok(Composed {
        table,
        layers,
        writers,
    })
}

/// The merged table of `text` and its includes, and its writers (see [`Composed`]).
fn load(
    text: &str,
    source: &str,
    layers: &mut Vec<Layer>,
    stack: &mut Vec<String>,
) -> Result<(toml::Table, toml::Table), Error> {
    let mut table: toml::Table =
        toml::from_str(text).map_err(|e| super::syntax::syntax_error(&e, text, source))?;
    let includes = match table.remove("include") {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| include_error(source, "every entry must be a file path in quotes"))?,
        Some(toml::Value::String(s)) => vec![s],
        Some(_) => return Err(include_error(source, "must be an array of file paths")),
    };
    stack.push(source.to_string());
    let mut merged = toml::Table::new();
    let mut writers = toml::Table::new();
    for inc in &includes {
        let (inc_source, inc_text) = resolve(source, inc)?;
        if stack.contains(&inc_source) || stack.len() >= MAX_DEPTH {
            return Err(include_error(
                source,
                &format!("`{inc}` includes itself (through {})", stack.join(" → ")),
            ));
        }
        let (sub, sub_writers) = load(&inc_text, &inc_source, layers, stack)?;
        merge_layer((&mut merged, &mut writers), (sub, sub_writers));
    }
    stack.pop();
    // A time key this file writes in either form replaces both forms underneath.
    super::duration::drop_replaced_forms(&mut merged, &table);
    super::duration::drop_replaced_forms(&mut writers, &table);
    // This file's index: its includes are pushed before it.
    let own_writers = written_by(&table, layers.len());
    merge_layer((&mut merged, &mut writers), (table, own_writers));
    layers.push(Layer {
        source: source.to_string(),
        text: text.to_string(),
    });
    Ok((merged, writers))
}

/// Paths of the tables of `base` that `top` redefines with a different `shape` (a region:
/// a tissue, an initial region, a dose). They are removed before `top` is merged (from the
/// values and from their writers alike), so that the later file's region replaces the
/// earlier one whole instead of inheriting keys its shape does not take (a sphere's
/// `radius_um` under a box).
fn replaced_regions(base: &toml::Table, top: &toml::Table) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (key, value) in top {
        let (Some(toml::Value::Table(b)), toml::Value::Table(t)) = (base.get(key), value) else {
            continue;
        };
        match (b.get("shape"), t.get("shape")) {
            (Some(toml::Value::String(old)), Some(toml::Value::String(new))) if old != new => {
                out.push(vec![key.clone()]);
            }
            _ => out.extend(replaced_regions(b, t).into_iter().map(|mut p| {
                p.insert(0, key.clone());
                p
            })),
        }
    }
    out
}

/// Removes the tables at `paths` from `table` (those present).
fn remove_paths(table: &mut toml::Table, paths: &[Vec<String>]) {
    fn remove(t: &mut toml::Table, path: &[String]) {
        match path {
            [last] => {
                t.remove(last);
            }
            [first, rest @ ..] => {
                if let Some(toml::Value::Table(next)) = t.get_mut(first) {
                    remove(next, rest);
                }
            }
            [] => {}
        }
    }
    for path in paths {
        remove(table, path);
    }
}

/// Merges `top` onto the values and their writers, a region redefined with a new shape
/// replacing the old one whole ([`replaced_regions`]).
fn merge_layer(
    (merged, writers): (&mut toml::Table, &mut toml::Table),
    (top, top_writers): (toml::Table, toml::Table),
) {
    let replaced = replaced_regions(merged, &top);
    remove_paths(merged, &replaced);
    remove_paths(writers, &replaced);
    merge(merged, top);
    merge(writers, top_writers);
}

/// `table` with every value that is not a table replaced by `layer` (the shape [`merge`]
/// sees: tables, inline ones included, and leaves it replaces whole).
fn written_by(table: &toml::Table, layer: usize) -> toml::Table {
    table
        .iter()
        .map(|(key, value)| {
            let tag = match value {
                toml::Value::Table(t) => toml::Value::Table(written_by(t, layer)),
                _ => toml::Value::Integer(layer as i64),
            };
            (key.clone(), tag)
        })
        .collect()
}

const INCLUDE_FIX: &str =
    "write include = [\"relative/path.toml\", …] with paths relative to this file, without cycles";

fn include_error(source: &str, problem: &str) -> Error {
    include_error_fix(source, problem, INCLUDE_FIX)
}

fn include_error_fix(source: &str, problem: &str, fix: &str) -> Error {
    let mut e = Error::new(ErrorKind::InvalidValue, "include", problem.to_string()).fix(fix);
    e.file = source.to_string();
    e
}

/// Deep merge: tables key by key, everything else replaced.
pub fn merge(base: &mut toml::Table, top: toml::Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => merge(b, t),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

/// The text of `path` included from `including`: a catalogue file when the including file
/// is one (or is the built-in default), else a file on disk relative to the including one.
fn resolve(including: &str, path: &str) -> Result<(String, String), Error> {
    if let Some(virtual_path) = catalog::virtual_path(including) {
        let joined = normalise(
            &Path::new(virtual_path)
                .parent()
                .unwrap_or(Path::new(""))
                .join(path),
        );
        let key = joined.to_string_lossy().replace('\\', "/");
        return match catalog::file(&key) {
            Some(text) => Ok((catalog::source_name(&key), text.to_string())),
            None => Err(include_error(
                including,
                &format!("`{path}` is not a file of the built-in catalogue ({key})"),
            )),
        };
    }
    let base = Path::new(including).parent().unwrap_or(Path::new(""));
    let full = base.join(path);
    let text = super::files::read_text(&full).map_err(|e| {
        include_error_fix(
            including,
            &format!("cannot read included file `{}` ({e})", full.display()),
            "check the path: it is relative to the folder of the including file (copy the included files along when you copy a preset)",
        )
    })?;
    Ok((full.display().to_string(), text))
}

/// `a/b/../c` → `a/c` (no file system access; the catalogue has no symlinks).
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_file_wins_and_tables_merge() {
        let mut a: toml::Table = toml::from_str(
            "[species.O2]\nd = 1\ninitial = { u = 1 }\n[species.G]\nd = 2\n[p]\nx = [1, 2]",
        )
        .unwrap();
        let b: toml::Table =
            toml::from_str("[species.O2]\ninitial = { v = 3 }\n[species.N]\nd = 4\n[p]\nx = [9]")
                .unwrap();
        merge(&mut a, b);
        let species: Vec<&String> = a["species"].as_table().unwrap().keys().collect();
        assert_eq!(
            species,
            ["O2", "G", "N"],
            "file order kept, new keys appended"
        );
        let o2 = &a["species"]["O2"];
        assert_eq!(o2["d"].as_integer(), Some(1));
        assert_eq!(o2["initial"]["u"].as_integer(), Some(1));
        assert_eq!(o2["initial"]["v"].as_integer(), Some(3));
        assert_eq!(
            a["p"]["x"].as_array().unwrap().len(),
            1,
            "arrays are replaced"
        );
    }

    #[test]
    fn a_region_with_a_new_shape_replaces_the_included_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("sphere.toml"),
            "[tissues.tumour]\nshape = \"sphere\"\ncentre_um = [1.0, 2.0, 3.0]\nradius_um = 4.0\n[tissues.rim]\nshape = \"sphere\"\ncentre_um = [0.0, 0.0, 0.0]\nradius_um = 9.0\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("box.toml"),
            "[tissues.tumour]\nshape = \"box\"\nmin_um = [0.0, 0.0, 0.0]\nmax_um = [5.0, 5.0, 5.0]\n",
        )
        .unwrap();
        let top = dir.path().join("top.toml").display().to_string();
        let text = "include = [\"sphere.toml\", \"box.toml\"]\n[tissues.rim]\nshape = \"sphere\"\nradius_um = 8.0\n";
        let c = compose(text, &top).unwrap();
        let tumour = c.table["tissues"]["tumour"].as_table().unwrap();
        let keys: Vec<&String> = tumour.keys().collect();
        assert_eq!(keys, ["shape", "min_um", "max_um"], "no sphere keys left");
        let w = c.writers["tissues"]["tumour"].as_table().unwrap();
        assert_eq!(w.keys().collect::<Vec<_>>(), keys, "writers pruned alike");
        assert_eq!(w["shape"].as_integer(), Some(1), "written by box.toml");
        // The same shape still merges key by key.
        let rim = &c.table["tissues"]["rim"];
        assert_eq!(rim["radius_um"].as_float(), Some(8.0));
        assert_eq!(rim["centre_um"].as_array().unwrap().len(), 3);
        assert_eq!(
            c.writers["tissues"]["rim"]["centre_um"].as_integer(),
            Some(0)
        );
    }

    #[test]
    fn includes_resolve_on_disk_and_refuse_cycles() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("chem")).unwrap();
        std::fs::write(
            dir.path().join("chem/base.toml"),
            "[parameters]\nk = { value = 1.0, unit = \"1/s\" }\n",
        )
        .unwrap();
        let top = dir.path().join("top.toml");
        let text =
            "include = [\"chem/base.toml\"]\n[parameters]\nk2 = { value = 2.0, unit = \"1/s\" }\n";
        let c = compose(text, &top.display().to_string()).unwrap();
        let keys: Vec<&String> = c.table["parameters"].as_table().unwrap().keys().collect();
        assert_eq!(keys, ["k", "k2"]);
        assert_eq!(c.layers.len(), 2);
        assert!(c.layers[0].source.ends_with("base.toml"));
        assert_eq!(c.writers["parameters"]["k"]["value"].as_integer(), Some(0));
        assert_eq!(c.writers["parameters"]["k2"]["unit"].as_integer(), Some(1));

        std::fs::write(dir.path().join("loop.toml"), "include = [\"loop.toml\"]\n").unwrap();
        let loop_path = dir.path().join("loop.toml").display().to_string();
        let e = compose("include = [\"loop.toml\"]\n", &loop_path).unwrap_err();
        assert!(e.to_string().contains("includes itself"), "{e}");
        let e = compose("include = [\"missing.toml\"]\n", &loop_path).unwrap_err();
        assert!(e.to_string().contains("cannot read included file"), "{e}");
        assert_eq!(e.field, "include");
    }
}
