//! `[grid]`: voxel counts and the voxel edge → [`Grid`].

use serde::Deserialize;

use super::checks::positive_f32;
use super::error::{short, Error};
use super::scenario::Grid;

/// Grids above this many voxels are refused (indices are u32 on the GPU, buffers huge).
pub const MAX_VOXELS: u64 = 1 << 31;

/// Longest grid edge accepted, µm (1 m). Tissue models are mm to cm; positions and
/// distances are f32 on the GPU, and at 1e6 µm an f32 still resolves 0.06 µm.
pub const MAX_EXTENT_UM: f64 = 1e6;

/// `[grid]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGrid {
    pub shape: Vec<i64>,
    pub voxel_um: f64,
}

/// `[grid]`: three voxel counts ≥ 3 (or one well-mixed voxel), at most [`MAX_VOXELS`].
pub(super) fn validate(raw: &RawGrid) -> Result<Grid, Error> {
    let s = &raw.shape;
    let shown = format!("{s:?}");
    if s.len() != 3 {
        return Err(
            Error::invalid("grid.shape", "must be [nx, ny, nz] (three voxel counts)")
                .found(shown)
                .fix("give three integers, e.g. shape = [64, 64, 64]"),
        );
    }
    // [1, 1, 1] is one well-mixed voxel (chemistry without transport).
    let well_mixed = s.iter().all(|&n| n == 1);
    if !well_mixed && s.iter().any(|&n| n < 3) {
        return Err(Error::invalid(
            "grid.shape",
            "every voxel count must be ≥ 3 (or all 1: one well-mixed voxel)",
        )
        .found(shown)
        .fix("use at least 3 voxels along each axis, e.g. shape = [64, 64, 64], or [1, 1, 1] for a well-mixed voxel"));
    }
    let n: u128 = s.iter().map(|&n| n as u128).product();
    if n > MAX_VOXELS as u128 {
        return Err(Error::invalid(
            "grid.shape",
            format!("too many voxels ({n}; at most {MAX_VOXELS})"),
        )
        .found(shown)
        .fix("use a smaller grid (fewer voxels per axis, larger grid.voxel_um)"));
    }
    let voxel_um = positive_f32(
        raw.voxel_um,
        "grid.voxel_um",
        "set a positive voxel edge length in µm, e.g. 10",
    )?;
    let longest = s.iter().copied().max().unwrap_or(1) as f64 * voxel_um;
    if longest > MAX_EXTENT_UM {
        return Err(Error::invalid(
            "grid.voxel_um",
            format!(
                "makes the grid {} µm long, more than the limit of {MAX_EXTENT_UM:e} µm (1 m)",
                short(longest),
            ),
        )
        .found(short(voxel_um))
        .fix("use a voxel edge in µm (e.g. 10), or fewer voxels"));
    }
    Ok(Grid {
        nx: s[0] as usize,
        ny: s[1] as usize,
        nz: s[2] as usize,
        voxel_um,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;
    use crate::config::*;

    #[test]
    fn grid_shape_below_three() {
        let text = edited(&[("shape = [64, 64, 64]", "shape = [64, 2, 64]")]);
        let msg = check(&load_err(&text, &[]), "grid.shape");
        assert!(msg.contains("found [64, 2, 64]"), "{msg}");
        let text = edited(&[("shape = [64, 64, 64]", "shape = [64, 64]")]);
        check(&load_err(&text, &[]), "grid.shape");
        let text = edited(&[("shape = [64, 64, 64]", "shape = [4096, 4096, 4096]")]);
        let msg = check(&load_err(&text, &[]), "grid.shape");
        assert!(msg.contains("smaller grid"), "{msg}");
    }

    /// [1, 1, 1] is one well-mixed voxel; other shapes still need ≥ 3 per axis.
    #[test]
    fn well_mixed_grid() {
        let text = r#"
name = "one"
[grid]
shape = [1, 1, 1]
voxel_um = 10
[time]
dt_s = 1
end_s = 10
[species.A]
diffusion_um2_per_s = 0
"#;
        let s = load_str(text, FILE, &[]).expect("one voxel loads");
        assert_eq!(s.grid.n_voxels(), 1);
        assert_eq!(s.output.slices, SliceSelection::Indices(vec![0]));
        let e = load_err(text, &["grid.shape=[1, 1, 3]"]);
        let msg = check(&e, "grid.shape");
        assert!(msg.contains("[1, 1, 1]"), "{msg}");
    }
}
