//! Where an error is: the `--set` that wrote its field, else the field's line:col in the
//! file that last wrote it (the deepest match over the included files).

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::compose;
use super::error::{Error, ErrorKind, Location};
use super::overrides::{self, Seg, SetArg};
use super::syntax::line_col;

/// What an error needs to name its file and place.
pub(super) struct Context<'a, 'i> {
    /// The top file (errors about no particular field name it).
    pub source: &'a str,
    /// Every file of the scenario in merge order, the top file last.
    pub layers: &'a [compose::Layer],
    pub docs: &'a [Spanned<DeTable<'i>>],
    pub sets: Vec<SetArg>,
}

impl Context<'_, '_> {
    /// Fills in the file and the location: the `--set` that wrote the field, else the
    /// field's line:col in the file that last wrote it (the deepest match over the
    /// included files; the later file on a tie).
    pub(super) fn finish(&self, mut e: Error) -> Error {
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
pub(super) fn under(path: &str, prefix: &str) -> bool {
    !prefix.is_empty()
        && path.starts_with(prefix)
        && matches!(
            path[prefix.len()..].chars().next(),
            None | Some('.') | Some('[')
        )
}

/// (depth, line:col) of the key at `field` (dotted path), or of its deepest existing
/// ancestor; depth counts the path segments found.
fn locate(doc: &Spanned<DeTable<'_>>, text: &str, field: &str) -> Option<(usize, (usize, usize))> {
    locate_segs(doc, text, &overrides::parse_path(field)?)
}

/// [`locate`] for a parsed path.
pub(super) fn locate_segs(
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
