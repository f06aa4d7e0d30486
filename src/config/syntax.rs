//! TOML syntax errors: the message, its line:col and, at best effort, the dotted field.

use super::error::{Error, ErrorKind, Location};

/// A TOML syntax error of `text` (named `source`) at its line:col and best-effort field.
pub(super) fn syntax_error(e: &toml::de::Error, text: &str, source: &str) -> Error {
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

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(super) fn line_col(text: &str, offset: usize) -> Option<(usize, usize)> {
    let before = text.get(..offset.min(text.len()))?;
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Some((line, column))
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;
    use crate::config::*;

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
}
