//! 2D slices of a 3D field, oriented like a plot: the second in-plane axis points *up*.
//!
//! | axis | slice index | image columns (left → right) | image rows (top → bottom) |
//! |------|-------------|------------------------------|---------------------------|
//! | z    | k           | x: i = 0 … nx−1              | y: j = ny−1 … 0           |
//! | y    | j           | x: i = 0 … nx−1              | z: k = nz−1 … 0           |
//! | x    | i           | y: j = 0 … ny−1              | z: k = nz−1 … 0           |
//!
//! So the origin voxel (0, 0, 0) is always at the bottom-left corner of the picture,
//! exactly as a matplotlib `imshow(..., origin="lower")` of the same plane would show it.
//! The 8-bit colour slices (figures, labelled by their axes) use this orientation.
//!
//! The 16-bit stacks are data, opened in Fiji beside the TIFF of the same field, so they
//! keep the array order instead ([`extract_array_order`]): row r is the second in-plane
//! index r, top to bottom, as in the `.npy` and the TIFF pages (numpy's `imshow` default,
//! `origin="upper"`). A stack of z slices is then pixel for pixel the TIFF's pages.

use crate::config::{Axis, Grid};

pub use crate::chart::Slice;

/// The in-plane axes of a slice normal to `axis` as drawn: (left → right, bottom → top).
pub fn drawn_axes(axis: Axis) -> (char, char) {
    match axis {
        Axis::Z => ('x', 'y'),
        Axis::Y => ('x', 'z'),
        Axis::X => ('y', 'z'),
    }
}

/// Number of slices along `axis`.
pub fn axis_len(grid: &Grid, axis: Axis) -> usize {
    match axis {
        Axis::X => grid.nx,
        Axis::Y => grid.ny,
        Axis::Z => grid.nz,
    }
}

/// Image size (width, height) of a slice normal to `axis`.
pub fn slice_size(grid: &Grid, axis: Axis) -> (usize, usize) {
    match axis {
        Axis::Z => (grid.nx, grid.ny),
        Axis::Y => (grid.nx, grid.nz),
        Axis::X => (grid.ny, grid.nz),
    }
}

pub use crate::grid::voxel_at;

/// One-line description of the orientation, recorded in the manifest.
pub fn orientation(axis: Axis) -> &'static str {
    match axis {
        Axis::Z => "columns = x increasing left to right; rows = y, highest y at the top row",
        Axis::Y => "columns = x increasing left to right; rows = z, highest z at the top row",
        Axis::X => "columns = y increasing left to right; rows = z, highest z at the top row",
    }
}

/// One-line description of the array order of the 16-bit stacks, recorded in the manifest.
pub fn array_orientation(axis: Axis) -> &'static str {
    match axis {
        Axis::Z => "columns = x increasing left to right; rows = y increasing top to bottom (row 0 is y = 0, as in the .npy and the TIFF)",
        Axis::Y => "columns = x increasing left to right; rows = z increasing top to bottom (row 0 is z = 0, as in the .npy)",
        Axis::X => "columns = y increasing left to right; rows = z increasing top to bottom (row 0 is z = 0, as in the .npy)",
    }
}

/// Slice `index` normal to `axis` in array order: [`extract`]'s slice with its rows
/// reversed, so that row r holds the second in-plane index r (see the module doc).
pub fn extract_array_order(field: &[f32], grid: &Grid, axis: Axis, index: usize) -> Slice {
    let mut sl = extract(field, grid, axis, index);
    let w = sl.width;
    let rows: Vec<&[f32]> = sl.values.chunks(w).rev().collect();
    sl.values = rows.concat();
    sl
}

/// Extracts slice `index` normal to `axis` from a field stored x fastest
/// (`i + nx·(j + ny·k)`). Panics if `field` does not match `grid` or `index` is out of
/// range; [`super::RunWriter`] checks both before calling.
pub fn extract(field: &[f32], grid: &Grid, axis: Axis, index: usize) -> Slice {
    let (width, height) = slice_size(grid, axis);
    Slice {
        width,
        height,
        values: extract_values(field, grid, axis, index),
    }
}

/// The values of [`extract`]'s slice for a per-voxel array of any type (tissue ids,
/// vessel flags), row-major, top row first. Panics as [`extract`] does.
pub fn extract_values<T: Copy>(field: &[T], grid: &Grid, axis: Axis, index: usize) -> Vec<T> {
    assert_eq!(
        field.len(),
        grid.n_voxels(),
        "field length does not match the grid"
    );
    assert!(index < axis_len(grid, axis), "slice index out of range");
    let (width, height) = slice_size(grid, axis);
    let mut values = Vec::with_capacity(width * height);
    for row in 0..height {
        for col in 0..width {
            let [i, j, k] = voxel_at(grid, axis, index, col, row);
            values.push(field[i + grid.nx * (j + grid.ny * k)]);
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        Grid {
            nx: 5,
            ny: 4,
            nz: 3,
            voxel_um: 10.0,
        }
    }

    /// Value encodes the voxel: 100·i + 10·j + k.
    fn coded_field(g: &Grid) -> Vec<f32> {
        let mut f = vec![0.0; g.n_voxels()];
        for k in 0..g.nz {
            for j in 0..g.ny {
                for i in 0..g.nx {
                    f[i + g.nx * (j + g.ny * k)] = (100 * i + 10 * j + k) as f32;
                }
            }
        }
        f
    }

    #[test]
    fn slice_orientation_has_origin_bottom_left() {
        let g = grid();
        let f = coded_field(&g);
        let z = extract(&f, &g, Axis::Z, 2);
        assert_eq!((z.width, z.height), (5, 4));
        assert_eq!(z.get(0, 3), 2.0); // i=0, j=0 bottom-left
        assert_eq!(z.get(4, 0), 432.0); // i=4, j=3 top-right
        let y = extract(&f, &g, Axis::Y, 1);
        assert_eq!((y.width, y.height), (5, 3));
        assert_eq!(y.get(0, 2), 10.0); // i=0, k=0 bottom-left
        assert_eq!(y.get(3, 0), 312.0); // i=3, k=2 top row
        let x = extract(&f, &g, Axis::X, 4);
        assert_eq!((x.width, x.height), (4, 3));
        assert_eq!(x.get(0, 2), 400.0); // j=0, k=0 bottom-left
        assert_eq!(x.get(3, 0), 432.0); // j=3, k=2 top-right
    }

    #[test]
    fn array_order_has_the_origin_top_left_like_the_npy() {
        let g = grid();
        let f = coded_field(&g);
        for (axis, index) in [(Axis::Z, 2), (Axis::Y, 1), (Axis::X, 4)] {
            let sl = extract_array_order(&f, &g, axis, index);
            assert_eq!((sl.width, sl.height), slice_size(&g, axis));
            for row in 0..sl.height {
                for col in 0..sl.width {
                    let [i, j, k] = match axis {
                        Axis::Z => [col, row, index],
                        Axis::Y => [col, index, row],
                        Axis::X => [index, col, row],
                    };
                    assert_eq!(sl.get(col, row), f[i + g.nx * (j + g.ny * k)]);
                }
            }
        }
    }
}
