//! The voxel grid and the voxel mask: sizes, indexing, the slice orientation of images,
//! and the mask bits (tissue id, held species) shared with the WGSL kernels.
//!
//! The ground floor with [`crate::engine`]: it imports nothing else from ionfield.

use glam::DVec3;
use serde::Serialize;

/// At most this many tissue types (4 bits of the voxel mask).
pub const MAX_TISSUES: usize = 16;
/// At most this many species (28 "held" bits of the voxel mask).
pub const MAX_SPECIES: usize = 28;

/// The voxel grid. Voxel (i, j, k) has its centre at ((i+½)·voxel_um, (j+½)·voxel_um,
/// (k+½)·voxel_um); the domain spans [0, n·voxel_um] on each axis. Storage is x fastest:
/// index = i + nx·(j + ny·k).
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Grid {
    pub nx: usize,
    pub ny: usize,
    pub nz: usize,
    /// Edge length of a cubic voxel, µm.
    pub voxel_um: f64,
}

impl Grid {
    pub fn n_voxels(&self) -> usize {
        self.nx * self.ny * self.nz
    }
    /// Domain size along (x, y, z), µm.
    pub fn extent_um(&self) -> DVec3 {
        DVec3::new(self.nx as f64, self.ny as f64, self.nz as f64) * self.voxel_um
    }
    /// Centre of voxel (i, j, k), µm.
    pub fn centre_um(&self, i: usize, j: usize, k: usize) -> DVec3 {
        (DVec3::new(i as f64, j as f64, k as f64) + 0.5) * self.voxel_um
    }
    pub fn shape(&self) -> [usize; 3] {
        [self.nx, self.ny, self.nz]
    }
    /// Flat index (x fastest) of the voxel whose box holds `p` (µm); `None` outside the
    /// grid (0 ≤ p < extent on every axis).
    pub fn voxel_containing(&self, p: DVec3) -> Option<usize> {
        if !(p.cmpge(DVec3::ZERO).all() && p.cmplt(self.extent_um()).all()) {
            return None;
        }
        // min: a point just below the far face may round onto it.
        let [i, j, k] = [(p.x, self.nx), (p.y, self.ny), (p.z, self.nz)]
            .map(|(c, n)| ((c / self.voxel_um) as usize).min(n - 1));
        Some(i + self.nx * (j + self.ny * k))
    }
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    X,
    Y,
    Z,
}

impl Axis {
    pub fn letter(self) -> char {
        match self {
            Axis::X => 'x',
            Axis::Y => 'y',
            Axis::Z => 'z',
        }
    }
}

/// Bits of the voxel mask that hold the tissue id (0 = normal). The shaders get it from
/// [`wgsl_constants`], so host and kernels cannot disagree.
pub const TISSUE_BITS: u32 = 4;
/// Mask of the tissue id bits.
pub const TISSUE_ID_MASK: u32 = (1 << TISSUE_BITS) - 1;

/// Mask bit that marks voxel values of species `species_ix` as held (Dirichlet: a boundary
/// layer or a vessel).
pub const fn held_bit(species_ix: usize) -> u32 {
    1 << (TISSUE_BITS as usize + species_ix)
}

const _: () = assert!(MAX_TISSUES <= 1 << TISSUE_BITS);
const _: () = assert!(MAX_SPECIES + TISSUE_BITS as usize <= 32);

/// The mask constants as WGSL, prepended to every kernel (`gpu::diffuse::shader_source`,
/// `chem::wgsl::kernel_source`): the shaders use these names, never the numbers.
pub fn wgsl_constants() -> String {
    format!(
        "// Generated from ionfield::grid (src/grid.rs); do not edit.\nconst TISSUE_ID_MASK: u32 = {TISSUE_ID_MASK}u;\nconst TISSUE_BITS: u32 = {TISSUE_BITS}u;\n\n"
    )
}

/// The voxel (i, j, k) shown at image (col, row) of slice `index` normal to `axis`: x (or
/// y) increases to the right, the highest y (or z) is the top row.
pub fn voxel_at(grid: &Grid, axis: Axis, index: usize, col: usize, row: usize) -> [usize; 3] {
    match axis {
        Axis::Z => [col, grid.ny - 1 - row, index],
        Axis::Y => [col, index, grid.nz - 1 - row],
        Axis::X => [index, col, grid.nz - 1 - row],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wgsl_constants_carry_the_rust_values() {
        let w = wgsl_constants();
        assert!(w.contains(&format!("const TISSUE_ID_MASK: u32 = {}u;", TISSUE_ID_MASK)));
        assert_eq!(TISSUE_ID_MASK, 15);
        assert_eq!(held_bit(0), 1 << TISSUE_BITS);
    }
}
