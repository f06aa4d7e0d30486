//! NPY v1.0 writer for f32 fields (format spec:
//! <https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html>).
//! `numpy.load` returns an array of shape (nz, ny, nx), so `a[k, j, i]` is voxel (i, j, k):
//! C order with the last index fastest *is* the storage order (x fastest).

use crate::config::Grid;

const MAGIC: &[u8] = b"\x93NUMPY";

/// The header dictionary padded with spaces and a final `\n` so that magic + version +
/// length + header is a multiple of 64 bytes, as current numpy writes it.
fn header(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_str = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_str}, }}");
    let prefix = MAGIC.len() + 2 + 2;
    let unpadded = prefix + dict.len() + 1;
    let padded = unpadded.div_ceil(64) * 64;
    dict.push_str(&" ".repeat(padded - unpadded));
    dict.push('\n');
    let mut out = Vec::with_capacity(padded);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    let len = u16::try_from(dict.len()).expect("an NPY header of a 3D shape is < 64 KiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Bytes of the header of a field's NPY file on `grid` (the data follows: 4 per voxel).
pub fn header_len(grid: &Grid) -> usize {
    header(&[grid.nz, grid.ny, grid.nx]).len()
}

/// Encodes a field (x fastest, `grid.n_voxels()` values) as an NPY file with shape
/// (nz, ny, nx), dtype little-endian f32.
pub fn encode_field(field: &[f32], grid: &Grid) -> Vec<u8> {
    assert_eq!(
        field.len(),
        grid.n_voxels(),
        "field length does not match the grid"
    );
    let mut out = header(&[grid.nz, grid.ny, grid.nx]);
    out.reserve(field.len() * 4);
    for v in field {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_header_and_bytes() {
        let grid = Grid {
            nx: 5,
            ny: 4,
            nz: 3,
            voxel_um: 2.0,
        };
        let field: Vec<f32> = (0..grid.n_voxels()).map(|i| i as f32 * 0.5 - 3.0).collect();
        let bytes = encode_field(&field, &grid);
        assert_eq!(&bytes[..6], MAGIC);
        assert_eq!(&bytes[6..8], &[1, 0]);
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let data_start = 10 + header_len;
        assert_eq!(data_start % 64, 0, "header not aligned to 64 bytes");
        let dict = std::str::from_utf8(&bytes[10..data_start]).expect("ascii header");
        assert!(dict.ends_with('\n'));
        assert!(dict.contains("'descr': '<f4'"), "{dict}");
        assert!(dict.contains("'fortran_order': False"), "{dict}");
        assert!(dict.contains("'shape': (3, 4, 5)"), "{dict}");
        let data = &bytes[data_start..];
        assert_eq!(data.len(), field.len() * 4);
        let back: Vec<f32> = data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(back, field);
        // a[k, j, i] in C order is voxel (i, j, k): element (2, 1, 3) is i=3, j=1, k=2.
        let flat = 3 + 5 * (1 + 4 * 2);
        assert_eq!(back[flat], field[3 + grid.nx * (1 + grid.ny * 2)]);
    }
}
