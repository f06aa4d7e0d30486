//! Atomic file writes: bytes go to `<name>.tmp-<pid>` in the destination folder, are
//! fsynced, then renamed over the final name. A rename within one folder is atomic on
//! POSIX file systems, so a reader (or an interrupted run) sees either the old file or the
//! complete new one, never a half-written file (docs/design.md §5).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::Error;

/// The temporary name used while `path` is being written: same folder, so the rename
/// never crosses a file system.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `bytes` to `path` atomically, creating missing parent folders. On any failure
/// the temporary file is removed and the error names the path and the OS error.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io_err = |os_error| Error::Write {
        path: path.to_path_buf(),
        os_error,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|os_error| Error::CreateDir {
            path: parent.to_path_buf(),
            os_error,
        })?;
    }
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(os_error) = result {
        // Best effort: the original error is the one worth reporting.
        let _ = fs::remove_file(&tmp);
        return Err(io_err(os_error));
    }
    // Make the rename itself durable. Failing to sync a directory is not an error on
    // every platform, so it is ignored.
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// Whether `name` is a leftover of an interrupted writer: `<name>.tmp-<pid>` of
/// [`write_atomic`] or the `.ionfield-write-probe-<pid>` of the writability check. A run
/// killed mid-write (kill -9, power loss) leaves them; nothing else uses these names.
pub fn is_leftover_name(name: &str) -> bool {
    let pid_suffix = |rest: &str| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = name.strip_prefix(".ionfield-write-probe-") {
        return pid_suffix(rest);
    }
    match name.rfind(".tmp-") {
        Some(i) if i > 0 => pid_suffix(&name[i + 5..]),
        _ => false,
    }
}

/// Removes the leftovers ([`is_leftover_name`]) under `dir`, subfolders included (symbolic
/// links are not followed), and returns their paths. Called when a run starts or resumes
/// in `dir`, which belongs to that one run; errors are skipped (best effort).
pub fn remove_leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let Ok(kind) = e.file_type() else { continue };
            let path = e.path();
            if kind.is_dir() {
                stack.push(path);
            } else if is_leftover_name(&e.file_name().to_string_lossy())
                && fs::remove_file(&path).is_ok()
            {
                removed.push(path);
            }
        }
    }
    removed.sort();
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_recognised_and_removed_in_subfolders() {
        for (name, left) in [
            ("manifest.json.tmp-123", true),
            (".ionfield-write-probe-9", true),
            ("a.tmp-", false),
            ("a.tmp-12x", false),
            (".tmp-12", false),
            ("notes.tmp", false),
        ] {
            assert_eq!(is_leftover_name(name), left, "{name}");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir_all(dir.path().join("png/o2")).unwrap();
        fs::write(dir.path().join("png/o2/z.png.tmp-77"), b"half").unwrap();
        fs::write(dir.path().join("png/o2/z.png"), b"whole").unwrap();
        let removed = remove_leftovers(dir.path());
        assert_eq!(removed, vec![dir.path().join("png/o2/z.png.tmp-77")]);
        assert!(dir.path().join("png/o2/z.png").is_file());
    }

    #[test]
    fn atomic_write_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub/a.bin");
        write_atomic(&path, b"first").expect("write");
        write_atomic(&path, b"second").expect("overwrite");
        assert_eq!(fs::read(&path).expect("read"), b"second");
        let names: Vec<_> = fs::read_dir(dir.path().join("sub"))
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec!["a.bin".to_string()],
            "leftover files: {names:?}"
        );
    }

    #[test]
    fn atomic_write_error_names_path() {
        let err = write_atomic(Path::new("/etc/passwd/x/y.bin"), b"z").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/etc/passwd/x"), "{msg}");
    }
}
