//! Vessel centre lines for ParaView: `vessels_centrelines.vtp`, VTK XML PolyData (ASCII),
//! written with the `vessels` mask. One polyline per stretch of a capillary's centre line
//! where the vessel exists: inside the grid and, for a `[vessel_network]` segment, in a
//! tissue that keeps it (`vessel_network.tissue_spacing_um` thins the tumour's
//! capillaries per segment and tissue, as the voxel mask does). Points in µm, in the
//! coordinates of the VTI and the masks; cell data `radius_um` and `vessel` (the index of
//! the capillary in the scenario's vessel list).
//!
//! Hand-written, not through a VTK crate: the file is a few dozen lines of XML that the
//! VTI writer's conventions already cover, and the crates that write it pull in a full
//! VTK data model for this one use.

use glam::DVec3;

use crate::config::{Region, Scenario};
use crate::model::{Model, TISSUE_ID_MASK};

/// The file's name in the run folder.
pub const FILE: &str = "vessels_centrelines.vtp";

/// Centre lines are sampled at this many points per voxel edge.
const SAMPLES_PER_VOXEL: f64 = 4.0;

/// One stretch of a vessel's centre line: its points (µm), radius (µm) and vessel index.
#[derive(Clone, Debug, PartialEq)]
pub struct Polyline {
    pub points_um: Vec<DVec3>,
    pub radius_um: f64,
    pub vessel: usize,
}

impl Polyline {
    /// Length along the points, µm.
    pub fn length_um(&self) -> f64 {
        self.points_um.windows(2).map(|w| w[0].distance(w[1])).sum()
    }
}

/// The centre lines of the scenario's cylinder and capsule vessels where they exist (see
/// the module doc), sampled at a quarter voxel; empty when there are none.
pub fn centrelines(scenario: &Scenario, model: &Model) -> Vec<Polyline> {
    let grid = model.grid;
    let keep = scenario
        .vessel_network
        .as_ref()
        .map(|n| n.keep_fraction_by_tissue.as_slice())
        .unwrap_or_default();
    let mut lines = Vec::new();
    for (v, vessel) in scenario.vessels.iter().enumerate() {
        let (start, end, radius_um) = match vessel.region {
            Region::Capsule {
                start_um,
                end_um,
                radius_um,
            }
            | Region::Cylinder {
                start_um,
                end_um,
                radius_um,
            } => (start_um, end_um, radius_um),
            _ => continue,
        };
        let exists = |p: DVec3| {
            grid.voxel_containing(p)
                .is_some_and(|ix| vessel.kept_in((model.mask[ix] & TISSUE_ID_MASK) as usize, keep))
        };
        let n = ((start.distance(end) * SAMPLES_PER_VOXEL / grid.voxel_um).ceil() as usize).max(1);
        let mut run: Vec<DVec3> = Vec::new();
        let mut flush = |run: &mut Vec<DVec3>| {
            if run.len() >= 2 {
                lines.push(Polyline {
                    points_um: std::mem::take(run),
                    radius_um,
                    vessel: v,
                });
            }
            run.clear();
        };
        for s in 0..=n {
            let p = start.lerp(end, s as f64 / n as f64);
            if exists(p) {
                run.push(p);
            } else {
                flush(&mut run);
            }
        }
        flush(&mut run);
    }
    lines
}

/// `lines` as a VTK XML PolyData file (ASCII).
pub fn polydata_xml(lines: &[Polyline]) -> String {
    let n_points: usize = lines.iter().map(|l| l.points_um.len()).sum();
    let mut points = String::new();
    let mut connectivity = String::new();
    let mut offsets = String::new();
    let mut next = 0usize;
    for l in lines {
        for p in &l.points_um {
            points.push_str(&format!("{} {} {}\n", p.x, p.y, p.z));
            connectivity.push_str(&format!("{next} "));
            next += 1;
        }
        offsets.push_str(&format!("{next} "));
    }
    let radius: Vec<String> = lines.iter().map(|l| l.radius_um.to_string()).collect();
    let vessel: Vec<String> = lines.iter().map(|l| l.vessel.to_string()).collect();
    format!(
        r#"<?xml version="1.0"?>
<VTKFile type="PolyData" version="1.0" byte_order="LittleEndian">
  <PolyData>
    <Piece NumberOfPoints="{n_points}" NumberOfVerts="0" NumberOfLines="{}" NumberOfStrips="0" NumberOfPolys="0">
      <Points>
        <DataArray type="Float64" NumberOfComponents="3" format="ascii" Name="position_um">
{points}        </DataArray>
      </Points>
      <Lines>
        <DataArray type="Int64" Name="connectivity" format="ascii">
{connectivity}
        </DataArray>
        <DataArray type="Int64" Name="offsets" format="ascii">
{offsets}
        </DataArray>
      </Lines>
      <CellData Scalars="radius_um">
        <DataArray type="Float64" Name="radius_um" format="ascii">
{}
        </DataArray>
        <DataArray type="Int64" Name="vessel" format="ascii">
{}
        </DataArray>
      </CellData>
    </Piece>
  </PolyData>
</VTKFile>
"#,
        lines.len(),
        radius.join(" "),
        vessel.join(" "),
    )
}
