//! `manifest.json`: what a run wrote and how to read it back (DESIGN.md §5). Rewritten
//! atomically after every output time, so an interrupted run still lists every finished
//! file with its checksum.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::Scenario;

/// How fields are laid out in memory and in `.npy` files.
pub const AXIS_ORDER: &str = "fields stored x fastest; npy shape (nz, ny, nx)";

/// Inverse mapping of the 16-bit stacks.
pub const PNG16_MAPPING: &str =
    "value = lo + p/65535*(hi - lo), p = 16-bit pixel value; p = round((value - lo)/(hi - lo)*65535) clamped to [0, 65535]; NaN written as 0";

/// Lower-case hex SHA-256 of `bytes` (64 characters).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One output time.
#[derive(Clone, Debug, Serialize)]
pub struct OutputRecord {
    pub time_s: f64,
    pub step: u64,
}

/// One written file. `lo`, `hi`, `mapping`, `axis` and `slice_index` are set for PNGs;
/// `tiff` sets `lo`/`hi` (display range), `axis` (`z`, the page axis) and `mapping`; a
/// `vti` lists its fields and units comma-separated in `field`/`unit` and its array
/// names in `mapping`.
#[derive(Clone, Debug, Serialize)]
pub struct FileRecord {
    /// Relative to the output folder, `/`-separated.
    pub path: String,
    /// `png8`, `png16`, `npy`, `tiff`, `vti` or `pvd` (text files: `csv`, `wgsl`, …).
    pub kind: &'static str,
    pub field: String,
    pub unit: String,
    pub time_s: f64,
    pub step: u64,
    pub bytes: u64,
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub axis: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slice_index: Option<usize>,
    /// Value (in `unit`) at the bottom of the colour bar / 16-bit code 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lo: Option<f64>,
    /// Value (in `unit`) at the top of the colour bar / 16-bit code 65535.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hi: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping: Option<String>,
}

/// One 16-bit stack (a folder of slices along `axis`), with its calibration.
#[derive(Clone, Debug, Serialize)]
pub struct StackRecord {
    /// Folder relative to the output folder; slices are `<axis><index:03>.png` inside.
    pub dir: String,
    pub field: String,
    pub unit: String,
    pub time_s: f64,
    pub step: u64,
    pub axis: String,
    pub n_slices: usize,
    pub width_px: usize,
    pub height_px: usize,
    pub voxel_um: f64,
    pub lo: f64,
    pub hi: f64,
    pub mapping: &'static str,
    pub orientation: &'static str,
}

/// The whole manifest, borrowed from the [`super::RunWriter`].
#[derive(Serialize)]
pub struct Manifest<'a> {
    pub ionfield_version: &'static str,
    pub git_commit: &'static str,
    /// `running`, `complete`, `failed` or `interrupted`.
    pub status: &'a str,
    pub wall_time_s: f64,
    pub backend: &'a str,
    pub adapter: &'a str,
    pub driver: &'a str,
    pub scenario: &'a Scenario,
    pub axis_order: &'static str,
    /// Orientation of every PNG (8- and 16-bit) along the configured slice axis.
    pub image_orientation: &'static str,
    pub outputs: &'a [OutputRecord],
    pub files: &'a [FileRecord],
    pub png16_stacks: &'a [StackRecord],
    /// The baseline run before t = 0 and how steady it got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spin_up: Option<&'a crate::sim::SpinUpReport>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc_is_the_fips_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
