//! `manifest.json`: what a run wrote and how to read it back (docs/design.md §5). Rewritten
//! atomically after every output time, so an interrupted run still lists every finished
//! file with its checksum.

use serde::{Deserialize, Serialize};

use crate::config::Scenario;

/// How fields are laid out in memory and in `.npy` files.
pub const AXIS_ORDER: &str = "fields stored x fastest; npy shape (nz, ny, nx)";

/// Inverse mapping of the 16-bit stacks.
pub const PNG16_MAPPING: &str =
    "value = lo + p/65535*(hi - lo), p = 16-bit pixel value; p = round((value - lo)/(hi - lo)*65535) clamped to [0, 65535]; NaN written as 0";

/// Lower-case hex SHA-256 of `bytes` (64 characters); the one checksum of manifests and
/// checkpoints.
pub use crate::sim::checkpoint::sha256_hex;

pub use crate::sim::Phases;

/// One output time.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutputRecord {
    pub time_s: f64,
    pub step: u64,
}

/// One written file. `lo`, `hi`, `mapping`, `axis` and `slice_index` are set for PNGs;
/// `tiff` sets `lo`/`hi` (display range), `axis` (`z`, the page axis) and `mapping`; a
/// `vti` lists its fields and units comma-separated in `field`/`unit` and its array
/// names in `mapping`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileRecord {
    /// Relative to the output folder, `/`-separated.
    pub path: String,
    /// `png8`, `png16`, `npy`, `tiff`, `vti` or `pvd` (text files: `csv`, `wgsl`, …).
    pub kind: String,
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

impl FileRecord {
    /// A record of a file that is not a field (CSV, TOML, WGSL, checkpoint, plot): no
    /// field, time or calibration. Path, size and checksum are filled in when written.
    pub fn other(kind: &str) -> FileRecord {
        FileRecord::of_field(kind, "", "", 0.0, 0)
    }

    /// A record of field `field` (in `unit`) at `time_s`, `step`; the calibration fields
    /// are set with struct update syntax where they apply.
    pub fn of_field(kind: &str, field: &str, unit: &str, time_s: f64, step: u64) -> FileRecord {
        FileRecord {
            path: String::new(),
            kind: kind.to_string(),
            field: field.to_string(),
            unit: unit.to_string(),
            time_s,
            step,
            bytes: 0,
            sha256: String::new(),
            axis: None,
            slice_index: None,
            lo: None,
            hi: None,
            mapping: None,
        }
    }
}

/// One 16-bit stack (a folder of slices along `axis`), with its calibration.
#[derive(Clone, Debug, Serialize, Deserialize)]
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
    pub mapping: String,
    pub orientation: String,
}

/// The whole manifest, borrowed from the [`super::RunWriter`].
#[derive(Serialize)]
pub struct Manifest<'a> {
    pub ionfield_version: &'static str,
    pub git_commit: &'static str,
    /// `running`, `complete`, `failed`, `stopped` or `interrupted`.
    pub status: &'a str,
    /// Why the run failed (status `failed`): the error as printed, with its fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<&'a str>,
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
    /// How the run was started and resumed, the seeds and the wall time per phase.
    pub provenance: &'a Provenance,
}

/// Where a run came from, for the manifest.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Provenance {
    /// The command line of the first part, then of every resume.
    pub command_lines: Vec<Vec<String>>,
    /// Host name of each part (where known).
    pub hosts: Vec<String>,
    /// The fully resolved scenario (includes merged, --set applied) as TOML, relative to
    /// the output folder; `resume` reads it.
    pub resolved_config: String,
    /// Every random seed the scenario uses (name → seed); empty when nothing is random.
    pub seeds: std::collections::BTreeMap<String, u64>,
    /// Model times (s) this run was resumed from, in order.
    pub resumed_from_s: Vec<f64>,
    /// Model times (s) of the checkpoints written.
    pub checkpoints_s: Vec<f64>,
    pub wall_time_by_phase_s: Phases,
    /// The coupled scheme's steps (accepted, rejected, linear iterations, the range of
    /// step sizes, s) over the run, spin-up included; absent for fixed steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_steps: Option<crate::engine::StepStats>,
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
