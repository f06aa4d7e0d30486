//! Reading the files a scenario names (the scenario itself, `include`s, vessel CSV, tissue
//! masks): only regular files, and at most a stated size, so that a FIFO cannot block the
//! loader forever and `/dev/zero` or a huge file cannot exhaust memory.

use std::io::Read;
use std::path::Path;

/// Largest scenario, included TOML, vessel CSV or PNG mask slice read: 64 MiB. The
/// largest shipped scenario is a few kB and a 1 000 000-segment CSV (the
/// [`super::vessel_network::MAX_NETWORK_SEGMENTS`] limit) about 40 MB; anything larger is a
/// mistake, and reading it whole would cost its size in memory.
pub const MAX_TEXT_FILE_BYTES: u64 = 64 << 20;

/// Room for the header of a `.npy` mask on top of its data (numpy pads the header to 64
/// bytes; version 2 allows up to 4 GiB, but a mask header is a few hundred bytes).
pub const MAX_NPY_HEADER_BYTES: u64 = 1 << 20;

/// Why a file could not be read, in words that follow "cannot read <file>".
pub(crate) fn read_bytes(path: &Path, max_bytes: u64) -> Result<Vec<u8>, String> {
    // `metadata` follows symlinks, so a link to a regular file is fine; a FIFO is never
    // opened (opening it would block until a writer appears).
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let what = if ft.is_dir() {
            "a directory"
        } else {
            special_kind(&ft)
        };
        return Err(format!("it is {what}, not a regular file"));
    }
    if meta.len() > max_bytes {
        return Err(too_large(meta.len(), max_bytes));
    }
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte more than allowed: a file that grew since `metadata` is caught too.
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64, max_bytes));
    }
    Ok(bytes)
}

/// [`read_bytes`] as UTF-8 text, at most [`MAX_TEXT_FILE_BYTES`].
pub(crate) fn read_text(path: &Path) -> Result<String, String> {
    let bytes = read_bytes(path, MAX_TEXT_FILE_BYTES)?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "it is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn too_large(len: u64, max: u64) -> String {
    format!(
        "it is {len} bytes, more than the limit of {max} bytes ({} MiB)",
        max >> 20
    )
}

#[cfg(unix)]
fn special_kind(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let e = read_text(dir.path()).unwrap_err();
        assert!(e.contains("directory"), "{e}");
        let p = dir.path().join("a.toml");
        std::fs::write(&p, "x = 1\n").expect("write");
        assert_eq!(read_text(&p).unwrap(), "x = 1\n");
        let e = read_bytes(&p, 3).unwrap_err();
        assert!(e.contains("more than the limit of 3 bytes"), "{e}");
        std::fs::write(&p, [0xff, 0xfe]).expect("write");
        assert!(read_text(&p).unwrap_err().contains("UTF-8"));
        #[cfg(unix)]
        {
            let e = read_text(Path::new("/dev/zero")).unwrap_err();
            assert!(e.contains("character device"), "{e}");
        }
    }
}
