//! The JSON Schema of a scenario file: `ionfield schema` prints what
//! docs/config.schema.json holds (regenerate with `ionfield schema >
//! docs/config.schema.json`), and the `jsonschema` Python package
//! (`tests/schema/check_schema.py`) checks that every shipped scenario file validates and
//! that misspelt keys and wrong types are refused at the right key.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn schema_is_current_and_validates_every_shipped_scenario() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = common::ionfield(dir.path(), &["schema"]);
    assert_eq!(out.code, 0, "ionfield schema failed:\n{}", out.stderr);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(repo.join("docs/config.schema.json"))
        .expect("docs/config.schema.json");
    assert!(
        out.stdout == committed,
        "docs/config.schema.json is stale. Fix: ionfield schema > docs/config.schema.json"
    );
    let python = std::env::var("IONFIELD_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let r = Command::new(&python)
        .arg(repo.join("tests/schema/check_schema.py"))
        .arg(repo.join("docs/config.schema.json"))
        .arg(repo.join("configs"))
        .output()
        .unwrap_or_else(|e| panic!("cannot start {python} ({e}); install Python 3.11+ with jsonschema: python3 -m pip install -r tests/readers/requirements.txt"));
    let stdout = String::from_utf8_lossy(&r.stdout);
    let stderr = String::from_utf8_lossy(&r.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(
        r.status.success(),
        "the schema check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("scenario files valid") && stdout.contains("refused at the right key"));
}
