//! Who owns an output folder. A run folder belongs to one run: `ionfield run --out DIR`
//! refuses a folder that already holds files (another run's, or anything else) unless
//! `--overwrite` is given, and then removes only what ionfield wrote there: the files the
//! folder's `manifest.json` lists, ionfield's own file names and subfolders
//! ([`KNOWN_FILES`], [`KNOWN_DIRS`]; only in a folder that holds a run's manifest, resolved
//! scenario or checkpoint) and leftovers of the atomic writer. Other files stay.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::atomic;

/// Files ionfield writes at the top of a run folder.
pub const KNOWN_FILES: &[&str] = &[
    "manifest.json",
    "config.resolved.toml",
    "react.wgsl",
    "timeseries.csv",
    "viability.csv",
    "well_mixed.csv",
];

/// Subfolders ionfield writes in a run folder (removed whole by `--overwrite`).
pub const KNOWN_DIRS: &[&str] = &[
    "checkpoint",
    "png",
    "png16",
    "fields",
    "fields.ome.zarr",
    "vti",
    "tiff",
    "plots",
];

/// What an output folder holds before a run starts.
#[derive(Clone, Debug, PartialEq)]
pub enum Occupant {
    /// Nothing there yet.
    Missing,
    /// A folder with no entries (leftover temporary files of the atomic writer aside).
    Empty,
    /// Not a folder (a regular file, a device, …).
    NotAFolder,
    /// A run that can be resumed: it has `checkpoint/state.ifck`. `status` from its
    /// manifest, if any.
    Resumable { status: Option<String> },
    /// Another run's folder (it has a manifest): its scenario and status.
    Run {
        scenario: Option<String>,
        status: Option<String>,
    },
    /// Files that are not (recognisably) a run: the first few names and how many there are.
    Other { names: Vec<String>, count: usize },
}

/// Looks at `dir` without changing it.
pub fn inspect(dir: &Path) -> io::Result<Occupant> {
    let meta = match fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Occupant::Missing),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return Ok(Occupant::NotAFolder);
    }
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !atomic::is_leftover_name(n))
        .collect();
    if names.is_empty() {
        return Ok(Occupant::Empty);
    }
    names.sort();
    let manifest = read_manifest(dir);
    let field = |k: &str| {
        manifest
            .as_ref()
            .and_then(|m| m[k].as_str().map(str::to_string))
    };
    let status = field("status");
    if dir.join(crate::sim::checkpoint::REL_PATH).is_file() {
        return Ok(Occupant::Resumable { status });
    }
    if manifest.is_some() {
        let scenario = manifest
            .as_ref()
            .and_then(|m| m["scenario"]["name"].as_str().map(str::to_string));
        return Ok(Occupant::Run { scenario, status });
    }
    let count = names.len();
    names.truncate(5);
    Ok(Occupant::Other { names, count })
}

fn read_manifest(dir: &Path) -> Option<serde_json::Value> {
    let text = fs::read_to_string(dir.join("manifest.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// `rel` (a `/`-separated path from a manifest) under `dir`, if it stays inside: relative,
/// plain names only (no `..`, no root), and no folder on the way is a symbolic link.
fn inside(dir: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    if rel.as_os_str().is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    let mut at = dir.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for c in &parts[..parts.len() - 1] {
        at.push(c);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            _ => return None,
        }
    }
    Some(dir.join(rel))
}

/// What [`clear_previous_run`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cleared {
    /// Files and folders removed.
    pub removed: usize,
    /// Top-level entries left because they are not ionfield's.
    pub kept: Vec<String>,
}

/// `--overwrite`: removes the previous run's files from `dir` — the files its manifest
/// lists (paths inside `dir` only), [`KNOWN_FILES`], [`KNOWN_DIRS`] and leftover
/// temporary files — and nothing else. A missing folder is nothing to clear.
pub fn clear_previous_run(dir: &Path) -> io::Result<Cleared> {
    let mut cleared = Cleared::default();
    if !dir.is_dir() {
        return Ok(cleared);
    }
    let remove = |p: &Path, cleared: &mut Cleared| -> io::Result<()> {
        let meta = match fs::symlink_metadata(p) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        // remove_dir_all does not follow symbolic links: a link is removed, not its target.
        if meta.is_dir() {
            fs::remove_dir_all(p)?;
        } else {
            fs::remove_file(p)?;
        }
        cleared.removed += 1;
        Ok(())
    };
    let listed: Vec<String> = read_manifest(dir)
        .and_then(|m| {
            m["files"].as_array().map(|files| {
                files
                    .iter()
                    .filter_map(|f| f["path"].as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default();
    let mut parents = Vec::new();
    for rel in &listed {
        if let Some(p) = inside(dir, rel) {
            if fs::symlink_metadata(&p).is_ok_and(|m| !m.is_dir()) {
                remove(&p, &mut cleared)?;
                parents.extend(p.parent().map(Path::to_path_buf));
            }
        }
    }
    // Folders emptied by the above (png/<field>/ outside the known folders, say).
    parents.sort();
    parents.dedup();
    for p in parents.iter().rev() {
        let mut at = p.clone();
        while at.starts_with(dir) && at != dir && fs::remove_dir(&at).is_ok() {
            at.pop();
        }
    }
    // ionfield's names only in a folder that is recognisably a run's (a `plots/` of the
    // user's in a folder that never held a run stays).
    let is_run_folder = [
        "manifest.json",
        "config.resolved.toml",
        crate::sim::checkpoint::REL_PATH,
    ]
    .iter()
    .any(|n| dir.join(n).is_file());
    if is_run_folder {
        for name in KNOWN_FILES.iter().chain(KNOWN_DIRS) {
            remove(&dir.join(name), &mut cleared)?;
        }
    }
    cleared.removed += atomic::remove_leftovers(dir).len();
    let mut kept: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    cleared.kept = kept;
    Ok(cleared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_tells_runs_checkpoints_and_other_files_apart() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        assert_eq!(inspect(&d.join("none")).unwrap(), Occupant::Missing);
        assert_eq!(inspect(d).unwrap(), Occupant::Empty);
        fs::write(d.join("manifest.json.tmp-12345"), b"x").unwrap();
        assert_eq!(inspect(d).unwrap(), Occupant::Empty);
        fs::write(d.join("notes.txt"), b"mine").unwrap();
        assert!(matches!(
            inspect(d).unwrap(),
            Occupant::Other { count: 1, .. }
        ));
        assert_eq!(inspect(&d.join("notes.txt")).unwrap(), Occupant::NotAFolder);
        fs::write(
            d.join("manifest.json"),
            r#"{"status": "complete", "scenario": {"name": "s"}}"#,
        )
        .unwrap();
        assert_eq!(
            inspect(d).unwrap(),
            Occupant::Run {
                scenario: Some("s".into()),
                status: Some("complete".into())
            }
        );
        fs::create_dir(d.join("checkpoint")).unwrap();
        fs::write(d.join("checkpoint/state.ifck"), b"x").unwrap();
        assert!(matches!(inspect(d).unwrap(), Occupant::Resumable { .. }));
    }

    #[test]
    fn clearing_removes_only_ionfield_files_and_stays_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside.txt");
        fs::write(&outside, b"keep").unwrap();
        let d = tmp.path().join("run");
        fs::create_dir_all(d.join("png/o2")).unwrap();
        fs::create_dir_all(d.join("extra/sub")).unwrap();
        fs::write(d.join("png/o2/z.png"), b"p").unwrap();
        fs::write(d.join("extra/sub/listed.bin"), b"l").unwrap();
        fs::write(d.join("timeseries.csv"), b"t").unwrap();
        fs::write(d.join("notes.txt"), b"mine").unwrap();
        fs::write(d.join("x.npy.tmp-4242"), b"partial").unwrap();
        // A link to a folder outside: a manifest path through it must not be followed.
        std::os::unix::fs::symlink(tmp.path(), d.join("link")).unwrap();
        fs::write(
            d.join("manifest.json"),
            r#"{"files": [{"path": "extra/sub/listed.bin"}, {"path": "../outside.txt"},
                {"path": "/etc/hostname"}, {"path": "link/outside.txt"}]}"#,
        )
        .unwrap();
        let c = clear_previous_run(&d).unwrap();
        assert!(outside.is_file(), "a file outside the folder was removed");
        assert_eq!(c.kept, vec!["link".to_string(), "notes.txt".to_string()]);
        assert!(!d.join("extra").exists(), "emptied folders go too");
        assert!(!d.join("png").exists() && !d.join("manifest.json").exists());

        // A folder that never held a run keeps even folders with ionfield's names.
        let user = tmp.path().join("user");
        fs::create_dir_all(user.join("plots")).unwrap();
        fs::write(user.join("plots/mine.png"), b"m").unwrap();
        let c = clear_previous_run(&user).unwrap();
        assert_eq!(c.removed, 0);
        assert!(user.join("plots/mine.png").is_file());
    }
}
