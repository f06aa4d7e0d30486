//! Where each value of a loaded scenario came from (`ionfield check` lists them): the file
//! and line that wrote it last in merge order, or the `--set` that overwrote it.
//!
//! The file comes from the writers tree [`compose`](super::compose) builds with the same
//! merge as the values (so a key of an inline table merged from two files is traced to
//! each file, and an array, arrays of tables included, to the one file that wrote it
//! whole); the line from the spanned document of that file (`locate`, as for errors).

use super::locate::{locate_segs, under, Context};
use super::overrides::{dotted, Seg};
use std::fmt;

/// Where a resolved value was written last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file of the scenario, named as in errors (a path, `<built-in> configs/…` for a
    /// catalogue file, or `<built-in default>`); 1-based line and column (in characters)
    /// of the value's key in it.
    File {
        source: String,
        line: usize,
        column: usize,
    },
    /// The `--set` argument that wrote it, as given (`time.end_s=60`).
    Set(String),
}

impl fmt::Display for Origin {
    /// `file:line`, or `--set path=value`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { source, line, .. } => write!(f, "{source}:{line}"),
            Origin::Set(arg) => write!(f, "--set {arg}"),
        }
    }
}

/// One leaf of the final TOML tree (after includes and `--set`): a value that is not a
/// table, and not an array of tables (those are listed per element, `dosing[0].time_s`).
/// Empty tables are leaves too (`{}`). Keys the file leaves out, and so take their
/// defaults, are not listed.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedValue {
    /// Dotted path as `--set` takes it and errors print it: `species.O2.initial.uniform_mm`,
    /// `dosing[0].amount_mm`.
    pub path: String,
    /// The value as TOML text on one line (newlines in strings escaped as `\n`; floats
    /// far from 1 in exponent form).
    pub value: String,
    pub origin: Origin,
}

impl ResolvedValue {
    /// `value` cut to at most `max` characters, the last of them `…` when cut.
    pub fn value_abbreviated(&self, max: usize) -> String {
        if self.value.chars().count() <= max {
            return self.value.clone();
        }
        let mut cut: String = self.value.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

impl Context<'_, '_> {
    /// Every leaf of `root` (the merged tree after `--set`) with its origin; `writers` is
    /// the tree of [`super::compose::Composed::writers`].
    pub(super) fn origins(&self, root: &toml::Table, writers: &toml::Table) -> Vec<ResolvedValue> {
        let mut leaves = Vec::new();
        for (key, value) in root {
            collect_leaves(value, &mut vec![Seg::Key(key.clone())], &mut leaves);
        }
        leaves
            .into_iter()
            .map(|(segs, value)| {
                let path = dotted(&segs);
                let origin = match self.sets.iter().rev().find(|s| under(&path, &s.path)) {
                    Some(set) => Origin::Set(
                        set.shown
                            .strip_prefix("--set ")
                            .unwrap_or(&set.shown)
                            .to_string(),
                    ),
                    None => self.file_origin(writers, &segs),
                };
                ResolvedValue {
                    path,
                    value: toml_text(value),
                    origin,
                }
            })
            .collect()
    }

    /// The file that wrote the leaf at `segs` (from the writers tree; for an empty table,
    /// which has no writer there, the last file that has the key) and the key's place in it.
    fn file_origin(&self, writers: &toml::Table, segs: &[Seg]) -> Origin {
        let located = |i: usize| {
            let layer = &self.layers[i];
            locate_segs(&self.docs[i], &layer.text, segs).map(|(depth, lc)| (depth, lc, layer))
        };
        let found = match writer(writers, segs) {
            Some(i) if i < self.layers.len() => located(i),
            _ => (0..self.layers.len())
                .rev()
                .filter_map(located)
                .find(|(depth, _, _)| *depth == segs.len()),
        };
        match found {
            Some((_, (line, column), layer)) => Origin::File {
                source: layer.source.clone(),
                line,
                column,
            },
            // Not expected: every leaf of the merged tree is in some file.
            None => Origin::File {
                source: self.source.to_string(),
                line: 0,
                column: 0,
            },
        }
    }
}

/// Pushes the leaves under `value` (at path `segs`) in tree order.
fn collect_leaves<'v>(
    value: &'v toml::Value,
    segs: &mut Vec<Seg>,
    out: &mut Vec<(Vec<Seg>, &'v toml::Value)>,
) {
    match value {
        toml::Value::Table(t) if !t.is_empty() => {
            for (key, v) in t {
                segs.push(Seg::Key(key.clone()));
                collect_leaves(v, segs, out);
                segs.pop();
            }
        }
        toml::Value::Array(a) if !a.is_empty() && a.iter().all(toml::Value::is_table) => {
            for (i, v) in a.iter().enumerate() {
                segs.push(Seg::Index(i));
                collect_leaves(v, segs, out);
                segs.pop();
            }
        }
        _ => out.push((segs.clone(), value)),
    }
}

/// The layer index the writers tree holds for the leaf at `segs`: the first non-table on
/// the way (an array is written whole, so its elements by the array's file).
fn writer(writers: &toml::Table, segs: &[Seg]) -> Option<usize> {
    let mut table = writers;
    for seg in segs {
        let Seg::Key(key) = seg else { return None };
        match table.get(key)? {
            toml::Value::Table(t) => table = t,
            toml::Value::Integer(i) => return usize::try_from(*i).ok(),
            _ => return None,
        }
    }
    None
}

/// `value` as TOML on one line.
fn toml_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => basic_string(s),
        toml::Value::Float(x) => float_text(*x),
        toml::Value::Array(a) => {
            let items: Vec<String> = a.iter().map(toml_text).collect();
            format!("[{}]", items.join(", "))
        }
        toml::Value::Table(t) if t.is_empty() => "{}".to_string(),
        toml::Value::Table(t) => {
            let items: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{} = {}", key_text(k), toml_text(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
        v => v.to_string(),
    }
}

/// A TOML basic string (`"…"`) on one line.
fn basic_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A bare key when it can be one, else a quoted one.
fn key_text(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        basic_string(key)
    }
}

/// A TOML float: `2000.0`, `0.054`, `4.27e-5`, `1e7` (exponent form below 1e-4 and from
/// 1e6).
fn float_text(x: f64) -> String {
    if x.is_nan() {
        "nan".to_string()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if x != 0.0 && !(1e-4..1e6).contains(&x.abs()) {
        format!("{x:e}")
    } else if x.fract() == 0.0 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::{load_file_with_origins, load_str_with_origins, Scenario};
    use super::*;
    use std::path::{Path, PathBuf};

    /// 1-based line of the first line containing `needle`, at or after the first line
    /// containing `after` (a table header).
    fn line_of(text: &str, after: &str, needle: &str) -> usize {
        let start = text.lines().position(|l| l.contains(after)).expect("after");
        start
            + text
                .lines()
                .skip(start)
                .position(|l| l.contains(needle))
                .expect("needle")
            + 1
    }

    /// 1-based column (in characters) of `key` on that line.
    fn column_of(text: &str, line: usize, key: &str) -> usize {
        let l = text.lines().nth(line - 1).expect("line");
        l[..l.find(key).expect("key on the line")].chars().count() + 1
    }

    fn find<'a>(values: &'a [ResolvedValue], path: &str) -> &'a ResolvedValue {
        values
            .iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("no {path} in {values:#?}"))
    }

    fn file(source: &Path, line: usize, column: usize) -> Origin {
        Origin::File {
            source: source.display().to_string(),
            line,
            column,
        }
    }

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/config/testdata/origins");
    /// The deepest include: only here are the grid and `name` (overridden on top).
    const GRID: &str = include_str!("testdata/origins/chem/grid.toml");
    /// Included by the top file; includes GRID.
    const BASE: &str = include_str!("testdata/origins/chem/base.toml");
    const TOP: &str = include_str!("testdata/origins/top.toml");

    fn top() -> PathBuf {
        Path::new(DIR).join("top.toml")
    }
    fn base() -> PathBuf {
        Path::new(DIR).join("chem").join("base.toml")
    }
    fn grid() -> PathBuf {
        Path::new(DIR).join("chem").join("grid.toml")
    }

    /// top.toml → chem/base.toml → chem/grid.toml, loaded with `sets`.
    fn layered(sets: &[&str]) -> (Scenario, Vec<ResolvedValue>) {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        load_file_with_origins(&top(), &sets).expect("loads")
    }

    #[test]
    fn included_overridden_and_set_values_name_their_origin() {
        let (scenario, values) = layered(&["time.dt_s=0.5"]);
        let (top, base, grid) = (top(), base(), grid());
        assert_eq!(scenario.time.dt_s, 0.5);
        assert_eq!(scenario.time.end_s, 200.0);

        // Only in the included file (two levels down).
        let line = line_of(GRID, "[grid]", "voxel_um");
        let r = find(&values, "grid.voxel_um");
        assert_eq!(r.value, "10.0");
        assert_eq!(r.origin, file(&grid, line, 1));
        assert_eq!(
            r.origin.to_string(),
            format!("{}:{line}", grid.display()),
            "shown as file:line"
        );
        let line = line_of(BASE, "[time]", "output_interval_s");
        assert_eq!(
            find(&values, "time.output_interval_s").origin,
            file(&base, line, 1)
        );
        let line = line_of(BASE, "[species.A]", "initial");
        let column = column_of(BASE, line, "uniform_mm");
        let r = find(&values, "species.A.initial.uniform_mm");
        assert_eq!(r.origin, file(&base, line, column));

        // In the included files, overridden on top (the later file wins, not the deeper).
        let r = find(&values, "time.end_s");
        assert_eq!(r.value, "200.0");
        assert_eq!(r.origin, file(&top, line_of(TOP, "[time]", "end_s"), 1));
        let r = find(&values, "name");
        assert_eq!(r.value, "\"top\"");
        assert_eq!(r.origin, file(&top, line_of(TOP, "", "name = "), 1));

        // In both files and set on the command line.
        let r = find(&values, "time.dt_s");
        assert_eq!(r.value, "0.5");
        assert_eq!(r.origin, Origin::Set("time.dt_s=0.5".to_string()));
        assert_eq!(r.origin.to_string(), "--set time.dt_s=0.5");
    }

    /// `k = { value = 0.1, unit = …, source = … }` in the included file and `k = { value =
    /// 0.3 }` on top merge key by key, as tables do.
    #[test]
    fn inline_table_keys_merge_from_two_files() {
        let (scenario, values) = layered(&[]);
        let (top, base) = (top(), base());
        assert_eq!(scenario.parameters[0].value_by_tissue, [0.3]);
        let line = line_of(TOP, "[parameters]", "k = ");
        let r = find(&values, "parameters.k.value");
        assert_eq!(r.value, "0.3");
        assert_eq!(r.origin, file(&top, line, column_of(TOP, line, "value")));
        let line = line_of(BASE, "[parameters]", "k = ");
        let r = find(&values, "parameters.k.unit");
        assert_eq!(r.value, "\"1/s\"");
        assert_eq!(r.origin, file(&base, line, column_of(BASE, line, "unit")));
        let r = find(&values, "parameters.k.source");
        assert_eq!(r.origin, file(&base, line, column_of(BASE, line, "source")));
    }

    /// The top file's one `[[vessels]]` replaces the included two whole: one element, every
    /// key from the top file; a --set into the element names the --set.
    #[test]
    fn array_of_tables_is_replaced_whole() {
        let (scenario, values) = layered(&["vessels[0].radius_um=7"]);
        let top = top();
        assert_eq!(scenario.vessels.len(), 1);
        let vessels: Vec<&ResolvedValue> = values
            .iter()
            .filter(|r| r.path.starts_with("vessels"))
            .collect();
        let paths: Vec<&str> = vessels.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "vessels[0].shape",
                "vessels[0].start_um",
                "vessels[0].end_um",
                "vessels[0].radius_um",
                "vessels[0].hold_mm.A"
            ]
        );
        for r in &vessels {
            match r.path.as_str() {
                "vessels[0].radius_um" => {
                    assert_eq!(r.origin, Origin::Set("vessels[0].radius_um=7".to_string()))
                }
                _ => {
                    let Origin::File { source, line, .. } = &r.origin else {
                        panic!("{r:?}")
                    };
                    assert_eq!(source, &top.display().to_string(), "{r:?}");
                    assert!(*line >= line_of(TOP, "[[vessels]]", "[[vessels]]"), "{r:?}");
                }
            }
        }
        let r = find(&values, "vessels[0].start_um");
        assert_eq!(r.value, "[40.0, 40.0, 0.0]");
        let line = line_of(TOP, "[[vessels]]", "start_um");
        assert_eq!(r.origin, file(&top, line, 1));
        let line = line_of(TOP, "[[vessels]]", "hold_mm");
        let column = column_of(TOP, line, "A = ");
        assert_eq!(
            find(&values, "vessels[0].hold_mm.A").origin,
            file(&top, line, column)
        );
        // A plain array too: only the top file's list, its line; or the --set's.
        let r = find(&values, "output.slices");
        assert_eq!(r.value, "[1, 2]");
        assert_eq!(r.origin, file(&top, line_of(TOP, "[output]", "slices"), 1));
        let (_, values) = layered(&["output.slices=[3]"]);
        let r = find(&values, "output.slices");
        assert_eq!(r.value, "[3]");
        assert_eq!(r.origin, Origin::Set("output.slices=[3]".into()));
    }

    /// A --set of a whole table names the --set for every key under it; a later --set
    /// above an earlier one wins.
    #[test]
    fn set_of_a_table_covers_its_keys() {
        let (_, values) = layered(&[
            "time.end_s=300",
            "species.A.initial={ uniform_mm = 0.5 }",
            "time={ dt_s = 1.0, end_s = 50.0 }",
        ]);
        let by_time = Origin::Set("time={ dt_s = 1.0, end_s = 50.0 }".to_string());
        assert_eq!(find(&values, "time.end_s").origin, by_time);
        assert_eq!(find(&values, "time.dt_s").origin, by_time);
        assert!(values.iter().all(|r| r.path != "time.output_interval_s"));
        let r = find(&values, "species.A.initial.uniform_mm");
        assert_eq!(r.value, "0.5");
        assert_eq!(
            r.origin,
            Origin::Set("species.A.initial={ uniform_mm = 0.5 }".to_string())
        );
    }

    /// The built-in default names catalogue files as errors do; every leaf is listed once.
    #[test]
    fn built_in_default_names_catalogue_files() {
        let (_, values) = load_str_with_origins(
            super::super::DEFAULT_SCENARIO_TOML,
            super::super::DEFAULT_SOURCE,
            Path::new("."),
            &[],
        )
        .expect("default loads");
        let baseline = super::super::catalog::file("configs/chemistry/baseline.toml").unwrap();
        let line = line_of(baseline, "[species.O2]", "diffusion_um2_per_s");
        let r = find(&values, "species.O2.diffusion_um2_per_s");
        assert_eq!(
            r.origin.to_string(),
            format!("<built-in> configs/chemistry/baseline.toml:{line}")
        );
        let r = find(&values, "dosing[0].amount_mm");
        let line = line_of(
            super::super::DEFAULT_SCENARIO_TOML,
            "[[dosing]]",
            "amount_mm",
        );
        assert_eq!(r.origin.to_string(), format!("<built-in default>:{line}"));
        let mut paths: Vec<&str> = values.iter().map(|r| r.path.as_str()).collect();
        let n = paths.len();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), n, "a path listed twice");
        assert!(values.iter().all(
            |r| matches!(&r.origin, Origin::File { line, column, .. } if *line > 0 && *column > 0)
        ));
        // Without --set, load_str_in gives the same scenario.
        let plain = super::super::load_str(
            super::super::DEFAULT_SCENARIO_TOML,
            super::super::DEFAULT_SOURCE,
            &[],
        )
        .unwrap();
        assert_eq!(plain.name, "fe_fenton_cdt_day");
    }

    #[test]
    fn values_are_one_line_toml() {
        let v = |text: &str| toml_text(&text.parse::<toml::Table>().unwrap()["v"]);
        assert_eq!(
            v("v = \"\"\"\nline 1\nsaid \"2\"\"\"\""),
            r#""line 1\nsaid \"2\"""#
        );
        assert_eq!(v("v = 1e-10"), "1e-10");
        assert_eq!(v("v = 4.27e-5"), "4.27e-5");
        assert_eq!(v("v = 1e7"), "1e7");
        assert_eq!(v("v = 320000.0"), "320000.0");
        assert_eq!(v("v = 0.054"), "0.054");
        assert_eq!(v("v = 2000"), "2000");
        assert_eq!(v("v = -0.0"), "-0.0");
        assert_eq!(v("v = [1, [2.5, \"a\"]]"), "[1, [2.5, \"a\"]]");
        assert_eq!(v("v = { a = 1, \"b c\" = {} }"), "{ a = 1, \"b c\" = {} }");
        for text in ["v = 1e-10", "v = [1, [2.5]]", "v = { a = 1, \"b c\" = {} }"] {
            let back = format!("v = {}", v(text)).parse::<toml::Table>().unwrap();
            assert_eq!(back, text.parse::<toml::Table>().unwrap(), "{text}");
        }
        let r = ResolvedValue {
            path: "a".into(),
            value: "\"0123456789\"".into(),
            origin: Origin::Set("a=1".into()),
        };
        assert_eq!(r.value_abbreviated(12), "\"0123456789\"");
        assert_eq!(r.value_abbreviated(8), "\"012345…");
        assert_eq!(r.value_abbreviated(8).chars().count(), 8);
    }
}
