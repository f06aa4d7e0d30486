//! `tissues.<name>.mask`: a tissue read from voxel data instead of a geometric region.
//!
//! - `.npy` (NPY format 1.0–3.0, <https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html>):
//!   shape (nz, ny, nx), C order — the layout `output::npy` writes, so `a[k, j, i]` is voxel
//!   (i, j, k). dtypes bool, (u)int8/16/32/64 and float32/64, little-endian or single-byte;
//!   nonzero = inside.
//! - A folder of PNG slices (Fiji "Image Sequence" export): one 8- or 16-bit grayscale PNG
//!   per z slice, sorted by file name (slice k = k-th name), width nx, height ny, nonzero =
//!   inside. Orientation as the z slices `output::slice` writes: column = x increasing to
//!   the right, row 0 = the *highest* y (j = ny − 1), so a slice written by ionfield reads
//!   back onto the same voxels.
//!
//! Errors are (problem, fix) pairs; the caller names the file and field.

use std::path::Path;

use super::scenario::{Axis, Grid, TissueMask};

type MaskError = (String, String);

pub fn read(path: &Path, grid: &Grid) -> Result<TissueMask, MaskError> {
    let shown = path.display().to_string();
    let inside = if path.is_dir() {
        read_png_stack(path, grid)?
    } else if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
    {
        // The largest valid mask of this grid (8-byte values) and its header.
        let max_bytes = (grid.n_voxels() as u64)
            .saturating_mul(8)
            .saturating_add(super::files::MAX_NPY_HEADER_BYTES);
        let bytes = super::files::read_bytes(path, max_bytes).map_err(|e| {
            (
                format!("cannot read {shown} ({e})"),
                "give an existing .npy file or PNG folder, relative to the scenario file's folder"
                    .to_string(),
            )
        })?;
        read_npy(&bytes, grid).map_err(|(p, f)| (format!("{shown}: {p}"), f))?
    } else if !path.exists() {
        return Err((
            format!("{shown} does not exist"),
            "give an existing .npy file or PNG folder, relative to the scenario file's folder"
                .to_string(),
        ));
    } else {
        return Err((
            format!("{shown} is neither a .npy file nor a folder of PNG slices"),
            "save the mask with numpy.save (shape (nz, ny, nx)) or as a PNG image sequence in a folder".to_string(),
        ));
    };
    Ok(TissueMask {
        path: shown,
        n_inside: inside.iter().filter(|&&b| b).count(),
        inside,
    })
}

/// Nonzero voxels of an NPY array of shape (nz, ny, nx).
pub fn read_npy(bytes: &[u8], grid: &Grid) -> Result<Vec<bool>, MaskError> {
    let fix_format =
        "write the mask with numpy.save(path, mask) from a C-ordered array of shape (nz, ny, nx)"
            .to_string();
    const MAGIC: &[u8] = b"\x93NUMPY";
    let truncated = || {
        (
            format!(
                "truncated NPY file: {} bytes end inside its preamble",
                bytes.len()
            ),
            fix_format.clone(),
        )
    };
    if !bytes.starts_with(MAGIC) {
        return Err(if !bytes.is_empty() && MAGIC.starts_with(bytes) {
            truncated()
        } else {
            ("not an NPY file (bad magic)".into(), fix_format)
        });
    }
    // Magic, major and minor version, then the header length in 2 (version 1) or 4 bytes.
    let start = match bytes.get(6) {
        None => return Err(truncated()),
        Some(1) => 10,
        Some(2 | 3) => 12,
        Some(v) => return Err((format!("unsupported NPY version {v}"), fix_format)),
    };
    if bytes.len() < start {
        return Err(truncated());
    }
    let header_len = match start {
        10 => u16::from_le_bytes([bytes[8], bytes[9]]) as usize,
        _ => u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
    };
    let header = bytes
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| {
            (
                "truncated or non-text NPY header".to_string(),
                fix_format.clone(),
            )
        })?;
    let value_of = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let descr = value_of("descr")
        .and_then(|r| r.strip_prefix('\''))
        .and_then(|r| r.split('\'').next())
        .ok_or_else(|| ("NPY header without 'descr'".to_string(), fix_format.clone()))?;
    if value_of("fortran_order").is_some_and(|r| r.starts_with("True")) {
        return Err((
            "the array is in Fortran order".into(),
            "save a C-ordered array: numpy.save(path, numpy.ascontiguousarray(mask))".into(),
        ));
    }
    let shape_text = value_of("shape")
        .and_then(|r| r.strip_prefix('('))
        .and_then(|r| r.split(')').next())
        .ok_or_else(|| ("NPY header without 'shape'".to_string(), fix_format.clone()))?;
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| (format!("bad shape ({shape_text})"), fix_format.clone()))?;
    let want = [grid.nz, grid.ny, grid.nx];
    if shape != want {
        return Err((
            format!(
                "shape {shape:?} does not match the grid: expected (nz, ny, nx) = {want:?}"
            ),
            format!(
                "resample the mask to grid.shape = [{}, {}, {}] (note the order: numpy shape is (nz, ny, nx)), or change grid.shape",
                grid.nx, grid.ny, grid.nz
            ),
        ));
    }
    let (kind, size) = match descr.as_bytes() {
        [b'|' | b'<' | b'=', k, n @ ..] => (
            *k,
            std::str::from_utf8(n)
                .ok()
                .and_then(|n| n.parse::<usize>().ok()),
        ),
        _ => (b'?', None),
    };
    let size = match (kind, size) {
        (b'b', Some(1)) | (b'u' | b'i', Some(1 | 2 | 4 | 8)) | (b'f', Some(4 | 8)) => {
            size.unwrap_or(1)
        }
        _ => {
            return Err((
                format!("unsupported dtype '{descr}'"),
                "use bool, uint8/16/32/64, int8/16/32/64 or float32/64, little-endian: mask.astype(numpy.uint8)".into(),
            ))
        }
    };
    let data = &bytes[start + header_len..];
    let n = grid.n_voxels();
    if data.len() < n * size {
        return Err((
            format!(
                "the data is truncated: {} bytes for {n} values of {size} bytes",
                data.len()
            ),
            fix_format,
        ));
    }
    Ok(data[..n * size]
        .chunks_exact(size)
        .map(|c| match (kind, size) {
            (b'f', 4) => f32::from_le_bytes([c[0], c[1], c[2], c[3]]) != 0.0,
            (b'f', _) => {
                f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) != 0.0
            }
            _ => c.iter().any(|&b| b != 0),
        })
        .collect())
}

fn read_png_stack(dir: &Path, grid: &Grid) -> Result<Vec<bool>, MaskError> {
    let shown = dir.display().to_string();
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| {
            (
                format!("cannot list {shown} ({e})"),
                "give a readable folder of PNG slices".to_string(),
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .collect();
    files.sort();
    if files.len() != grid.nz {
        return Err((
            format!(
                "{shown} holds {} PNG files, but the grid has nz = {} slices",
                files.len(),
                grid.nz
            ),
            "export one PNG per z slice (Fiji: File › Save As › Image Sequence), or change grid.shape".into(),
        ));
    }
    let mut inside = vec![false; grid.n_voxels()];
    for (k, file) in files.iter().enumerate() {
        let name = file.display().to_string();
        let bytes =
            super::files::read_bytes(file, super::files::MAX_TEXT_FILE_BYTES).map_err(|e| {
                (
                    format!("cannot read {name} ({e})"),
                    "give a folder of regular PNG files, one per z slice".to_string(),
                )
            })?;
        let img =
            image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).map_err(|e| {
                (
                    format!("cannot decode {name} ({e})"),
                    "save the slices as 8- or 16-bit grayscale PNG".to_string(),
                )
            })?;
        if !matches!(
            img.color(),
            image::ColorType::L8
                | image::ColorType::L16
                | image::ColorType::La8
                | image::ColorType::La16
        ) {
            return Err((
                format!("{name} is {:?}, not grayscale", img.color()),
                "save the slices as 8- or 16-bit grayscale PNG (Fiji: Image › Type › 8-bit)".into(),
            ));
        }
        let img = img.into_luma16();
        if (img.width() as usize, img.height() as usize) != (grid.nx, grid.ny) {
            return Err((
                format!(
                    "{name} is {}×{} pixels, but the grid is nx × ny = {}×{}",
                    img.width(),
                    img.height(),
                    grid.nx,
                    grid.ny
                ),
                "resample the slices to width nx and height ny, or change grid.shape".into(),
            ));
        }
        for row in 0..grid.ny {
            for col in 0..grid.nx {
                let [i, j, kk] = crate::grid::voxel_at(grid, Axis::Z, k, col, row);
                inside[i + grid.nx * (j + grid.ny * kk)] =
                    img.get_pixel(col as u32, row as u32)[0] != 0;
            }
        }
    }
    Ok(inside)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        Grid {
            nx: 4,
            ny: 3,
            nz: 2,
            voxel_um: 10.0,
        }
    }

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n");
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        out.extend_from_slice(dict.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn npy_dtypes_and_errors() {
        let g = grid();
        let mut u8s = vec![0u8; 24];
        u8s[1 + 4 * (2 + 3)] = 7; // voxel (1, 2, 1)
        let m = read_npy(&npy("|u1", "(2, 3, 4)", &u8s), &g).unwrap();
        assert_eq!(m.iter().filter(|&&b| b).count(), 1);
        assert!(m[1 + 4 * (2 + 3)]);
        let f4: Vec<u8> = (0..24)
            .flat_map(|v| (if v % 2 == 0 { 0.5f32 } else { 0.0 }).to_le_bytes())
            .collect();
        let m = read_npy(&npy("<f4", "(2, 3, 4)", &f4), &g).unwrap();
        assert_eq!(m.iter().filter(|&&b| b).count(), 12);
        let e = read_npy(&npy("|u1", "(4, 3, 2)", &u8s), &g).unwrap_err();
        assert!(e.0.contains("[2, 3, 4]"), "{}", e.0);
        let e = read_npy(&npy("<c8", "(2, 3, 4)", &u8s), &g).unwrap_err();
        assert!(e.0.contains("dtype"), "{}", e.0);
        let e = read_npy(&npy(">i4", "(2, 3, 4)", &[0; 96]), &g).unwrap_err();
        assert!(e.0.contains("dtype"), "{}", e.0);
        let e = read_npy(&npy("|u1", "(2, 3, 4)", &u8s[..10]), &g).unwrap_err();
        assert!(e.0.contains("truncated"), "{}", e.0);
        // Cut inside the preamble: version 1 after 8 bytes, version 2 after 10, the magic
        // after 3; a file that is not NPY at all.
        let whole = npy("|u1", "(2, 3, 4)", &u8s);
        for cut in [3, 7, 8, 9] {
            let e = read_npy(&whole[..cut], &g).unwrap_err();
            assert!(e.0.contains("truncated NPY file"), "{cut}: {}", e.0);
        }
        let mut v2 = whole.clone();
        v2[6] = 2;
        let e = read_npy(&v2[..10], &g).unwrap_err();
        assert!(e.0.contains("truncated NPY file"), "{}", e.0);
        let e = read_npy(b"P5 2 3", &g).unwrap_err();
        assert!(e.0.contains("bad magic"), "{}", e.0);
    }
}
