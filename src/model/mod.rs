//! The model: a [`Scenario`] rasterised onto its grid, ready for either engine.
//!
//! Both engines start from the same [`Model`]: initial fields (f64, mM), one voxel mask
//! shared by all species, and per-species coefficients. Nothing after this module looks at
//! regions or names.

pub mod beam;
pub mod region;

use crate::config::{BoundaryCondition, Face, Grid, Region, Scenario, Vessel, MAX_TISSUES};
use glam::DVec3;
use region::InitialValue;

pub use crate::grid::{held_bit, TISSUE_BITS, TISSUE_ID_MASK};

/// What the engines need to know of one species.
#[derive(Clone, Debug)]
pub struct SpeciesModel {
    pub name: String,
    pub unit: String,
    /// D, µm²/s (0 = does not diffuse).
    pub diffusion_um2_per_s: f64,
    /// First-order loss rate per tissue id, 1/s (length [`MAX_TISSUES`], zero-padded).
    pub decay_per_s_by_tissue: [f64; MAX_TISSUES],
    /// `species.<name>.atol_mm`: absolute tolerance of the step control, mM, if set.
    pub atol_mm: Option<f64>,
}

impl SpeciesModel {
    pub fn diffuses(&self) -> bool {
        self.diffusion_um2_per_s > 0.0
    }
    pub fn decays(&self) -> bool {
        self.decay_per_s_by_tissue.iter().any(|&k| k > 0.0)
    }
}

/// A scenario on its grid.
#[derive(Clone, Debug)]
pub struct Model {
    pub grid: Grid,
    pub species: Vec<SpeciesModel>,
    /// Per voxel: tissue id in the low [`TISSUE_BITS`] bits, then one held bit per species.
    pub mask: Vec<u32>,
    /// Initial concentration per species per voxel, mM (x fastest). Held voxels carry their
    /// held value, which the engines never change.
    pub initial_mm: Vec<Vec<f64>>,
    /// Douglas ADI weight θ (see `cpu::diffuse_adi`).
    pub theta: f64,
    /// Cap of r per diffusion sub-step (`time.max_diffusion_r`).
    pub max_diffusion_r: Option<f64>,
    /// The time integrator (`time.scheme`).
    pub scheme: crate::config::Scheme,
    /// The compiled reaction network, if the scenario has reactions.
    pub network: Option<crate::chem::Network>,
    /// Per voxel, whether it lies inside a vessel (a kept `[vessel_network]` capillary or a
    /// `[[vessels]]` region); the `vessels` output mask.
    pub vessel: Vec<bool>,
    /// Doses in time order, rasterised (see [`DoseField`]).
    pub doses: Vec<DoseField>,
}

/// A dose on the grid: `delta_mm` is added to `species` at `time_s` (zero in voxels where
/// any species is held: vessel lumens and Dirichlet faces).
#[derive(Clone, Debug)]
pub struct DoseField {
    pub time_s: f64,
    pub species: usize,
    /// Added concentration per voxel, mM, x fastest.
    pub delta_mm: Vec<f64>,
}

impl Model {
    /// Rasterises `scenario`: voxel (i, j, k) takes whatever covers its centre.
    ///
    /// Order of precedence: tissues (later wins), initial values (uniform, then regions in
    /// order), Dirichlet faces (boundary voxel layers), then vessels (later wins).
    pub fn build(scenario: &Scenario) -> Model {
        let grid = scenario.grid;
        let (nx, ny, nz) = (grid.nx, grid.ny, grid.nz);
        let n = grid.n_voxels();
        let n_species = scenario.species.len();
        let mut mask = vec![0u32; n];
        let mut initial_mm: Vec<Vec<f64>> = scenario
            .species
            .iter()
            .map(|s| vec![s.initial.uniform_mm; n])
            .collect();

        for k in 0..nz {
            for j in 0..ny {
                for i in 0..nx {
                    let ix = i + nx * (j + ny * k);
                    let p = grid.centre_um(i, j, k);
                    for (tissue_id, tissue) in scenario.tissues.iter().enumerate() {
                        let inside = match &tissue.mask {
                            Some(m) => m.inside[ix],
                            None => tissue.region.is_some_and(|r| r.contains(p)),
                        };
                        if inside {
                            mask[ix] = (mask[ix] & !TISSUE_ID_MASK) | tissue_id as u32;
                        }
                    }
                    for (s, species) in scenario.species.iter().enumerate() {
                        let tissue = (mask[ix] & TISSUE_ID_MASK) as usize;
                        if let Some(Some(v)) = species.initial.tissue_mm.get(tissue) {
                            initial_mm[s][ix] = *v;
                        }
                        for ir in &species.initial.regions {
                            match ir.region.initial_value(p, ir.value_mm) {
                                Some(InitialValue::Set(v)) => initial_mm[s][ix] = v,
                                Some(InitialValue::Add(v)) => initial_mm[s][ix] += v,
                                None => {}
                            }
                        }
                        let on_face = [
                            i == 0,
                            i == nx - 1,
                            j == 0,
                            j == ny - 1,
                            k == 0,
                            k == nz - 1,
                        ];
                        for face in Face::ALL {
                            if let (true, BoundaryCondition::Dirichlet { value_mm }) =
                                (on_face[face as usize], species.boundary[face as usize])
                            {
                                mask[ix] |= held_bit(s);
                                initial_mm[s][ix] = value_mm;
                            }
                        }
                    }
                }
            }
        }
        // Beams: given fields computed from the tissue labels along their paths.
        for (s, species) in scenario.species.iter().enumerate() {
            if let Some(beam) = &species.initial.beam {
                let field = beam::intensity(beam, &grid, &mask);
                for (ix, v) in field.into_iter().enumerate() {
                    if mask[ix] & held_bit(s) == 0 {
                        initial_mm[s][ix] = v;
                    }
                }
            }
        }
        // Vessels last (later wins), each over its bounding box only: networks have
        // thousands of segments.
        // Radius of the network capillary in each vessel voxel, µm (0: none).
        let mut network_voxel = vec![
            0.0;
            if scenario.vessel_network.is_some() {
                n
            } else {
                0
            }
        ];
        let keep = scenario
            .vessel_network
            .as_ref()
            .map(|net| net.keep_fraction_by_tissue.as_slice())
            .unwrap_or_default();
        let mut in_vessel = vec![false; n];
        for vessel in &scenario.vessels {
            for ix in vessel_voxels(&grid, vessel) {
                // A thinned tissue keeps a segment only where its draw is below the
                // tissue's keep fraction (the tissue as rasterised above).
                let tissue = (mask[ix] & TISSUE_ID_MASK) as usize;
                if !vessel.kept_in(tissue, keep) {
                    continue;
                }
                in_vessel[ix] = true;
                for (s, value_mm) in &vessel.hold_mm {
                    let (s, value_mm) = (*s, value_mm[tissue]);
                    debug_assert!(s < n_species);
                    mask[ix] |= held_bit(s);
                    initial_mm[s][ix] = value_mm;
                }
                if let (true, Region::Capsule { radius_um, .. }) =
                    (vessel.from_network, vessel.region)
                {
                    network_voxel[ix] = f64::max(network_voxel[ix], radius_um);
                }
            }
        }
        if let Some(sv) = scenario
            .vessel_network
            .as_ref()
            .and_then(|net| net.surface_species)
        {
            initial_mm[sv] = surface_per_volume(&grid, &network_voxel);
        }

        let species = scenario
            .species
            .iter()
            .map(|s| {
                let mut decay = [0.0; MAX_TISSUES];
                for (t, &k) in s.decay_per_s_by_tissue.iter().enumerate().take(MAX_TISSUES) {
                    decay[t] = k;
                }
                SpeciesModel {
                    name: s.name.clone(),
                    unit: s.unit.clone(),
                    diffusion_um2_per_s: s.diffusion_um2_per_s,
                    decay_per_s_by_tissue: decay,
                    atol_mm: s.atol_mm,
                }
            })
            .collect();
        // Compiled once, by config validation.
        let network = scenario.network.as_deref().cloned();
        if let Some(net) = &network {
            set_quasi_steady(net, &mask, &mut initial_mm);
        }
        let doses = scenario
            .doses
            .iter()
            .map(|d| DoseField {
                time_s: d.time_s,
                species: d.species,
                delta_mm: (0..n)
                    .map(|ix| {
                        // Not into vessel lumens or Dirichlet faces (any held species),
                        // or, `everywhere`, only not where the species itself is held.
                        let skip = if d.everywhere {
                            mask[ix] & held_bit(d.species) != 0
                        } else {
                            mask[ix] >> TISSUE_BITS != 0
                        };
                        if skip {
                            return 0.0;
                        }
                        let p = grid.centre_um(ix % nx, (ix / nx) % ny, ix / (nx * ny));
                        match d.region.initial_value(p, d.amount_mm) {
                            Some(InitialValue::Set(v) | InitialValue::Add(v)) => v,
                            None => 0.0,
                        }
                    })
                    .collect(),
            })
            .collect();
        Model {
            grid,
            species,
            mask,
            initial_mm,
            theta: scenario.time.theta,
            max_diffusion_r: scenario.time.max_diffusion_r,
            scheme: scenario.time.scheme,
            network,
            vessel: in_vessel,
            doses,
        }
    }

    /// The tissue id of voxel `ix` if it counts in tissue summaries (means over a tissue,
    /// viability): voxels that hold any species' value (vessels, boundary layers) are left
    /// out, so that every summary of a run counts the same cells.
    pub fn summary_tissue(&self, ix: usize) -> Option<usize> {
        let m = self.mask[ix];
        (m & !TISSUE_ID_MASK == 0).then_some((m & TISSUE_ID_MASK) as usize)
    }

    /// Number of voxels of each tissue id (for summaries and tests).
    pub fn tissue_voxel_counts(&self) -> [usize; MAX_TISSUES] {
        let mut counts = [0; MAX_TISSUES];
        for &m in &self.mask {
            counts[(m & TISSUE_ID_MASK) as usize] += 1;
        }
        counts
    }

    /// Fraction of the voxels inside a vessel.
    pub fn vessel_fraction(&self) -> f64 {
        let n = self.vessel.len().max(1);
        self.vessel.iter().filter(|&&v| v).count() as f64 / n as f64
    }

    /// What a run on this model should be warned of before it starts: a grid too coarse
    /// for its vessels (above [`MAX_VESSEL_FRACTION`] of the voxels inside one, every
    /// concentration next to blood values, nothing like tissue).
    pub fn warnings(&self) -> Vec<String> {
        let f = self.vessel_fraction();
        let mut out = Vec::new();
        if f > MAX_VESSEL_FRACTION {
            out.push(format!(
                "vessels fill {:.0} % of the voxels: voxels of {} µm do not resolve the capillaries (tissue holds 2–10 % blood by volume), so the tissue's O2, pH and uptake are not physiological here. Fix: smaller voxels than the vessel spacing (grid.voxel_um = 20 for the presets' tissue, capillaries 60–150 µm apart)",
                100.0 * f,
                self.grid.voxel_um
            ));
        }
        out
    }
}

/// Above this fraction of voxels inside vessels, [`Model::warnings`] says the grid does not
/// resolve them (real tissue: 2–10 % blood volume; the default's 20 µm grid has 9 %).
pub const MAX_VESSEL_FRACTION: f64 = 0.25;

/// Voxels of one vessel: those whose centre it covers, searched over its bounding box, and
/// for network segments also every voxel the centre line passes through (sampled every
/// voxel/4 along it). Sorted, without duplicates.
fn vessel_voxels(grid: &Grid, vessel: &Vessel) -> Vec<usize> {
    let (lo, hi) = bounding_box_um(&vessel.region);
    let h = grid.voxel_um;
    let dims = [grid.nx, grid.ny, grid.nz];
    // Voxel index range whose centres ((i + ½)·h) can lie in [lo, hi].
    let range = |a: usize| -> (usize, usize) {
        let first = ((lo[a] / h - 0.5).ceil().max(0.0) as usize).min(dims[a]);
        let last = ((hi[a] / h - 0.5).floor() + 1.0).clamp(0.0, dims[a] as f64) as usize;
        (first, last.max(first))
    };
    let ((i0, i1), (j0, j1), (k0, k1)) = (range(0), range(1), range(2));
    let mut out = Vec::new();
    for k in k0..k1 {
        for j in j0..j1 {
            for i in i0..i1 {
                if vessel.region.contains(grid.centre_um(i, j, k)) {
                    out.push(i + grid.nx * (j + grid.ny * k));
                }
            }
        }
    }
    if let (
        true,
        Region::Capsule {
            start_um, end_um, ..
        },
    ) = (vessel.from_network, vessel.region)
    {
        let n = ((start_um.distance(end_um) / (0.25 * h)).ceil() as usize).max(1);
        for step in 0..=n {
            let p = start_um + (end_um - start_um) * (step as f64 / n as f64);
            let idx = [0, 1, 2].map(|a| ((p[a] / h).floor().max(0.0) as usize).min(dims[a] - 1));
            out.push(idx[0] + grid.nx * (idx[1] + grid.ny * idx[2]));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Axis-aligned bounds of a region, µm.
fn bounding_box_um(region: &Region) -> (DVec3, DVec3) {
    match *region {
        Region::Sphere {
            centre_um,
            radius_um,
        } => (centre_um - radius_um, centre_um + radius_um),
        Region::Box { min_um, max_um } => (min_um, max_um),
        Region::Cylinder {
            start_um,
            end_um,
            radius_um,
        }
        | Region::Capsule {
            start_um,
            end_um,
            radius_um,
        } => (
            start_um.min(end_um) - radius_um,
            start_um.max(end_um) + radius_um,
        ),
        Region::Gaussian {
            centre_um,
            sigma_um,
        } => (centre_um - 2.0 * sigma_um, centre_um + 2.0 * sigma_um),
    }
}

/// The `vessel_SV` field of Robin exchange, 1/µm: in each non-vessel voxel, the capillary
/// surface it touches per voxel volume. Each face it shares with a network vessel voxel
/// counts h²/h³, scaled by the capillary's true perimeter over that of its voxel
/// staircase, 2πr / max(4h, 8r): a capillary thinner than a voxel is one column of voxels
/// with 4 faces per h of length (2πr/4h: 0.79 for r = 5 µm at h = 10 µm, 0.39 at 20 µm);
/// a thick one's staircase over-estimates its circumference by 4/π. So P·S/V is the
/// capillary's, whatever the voxel size. Vessel voxels themselves get 0: exchange species
/// are not held there; they diffuse through them like tissue and the scenario's reactions
/// of that tissue apply. `radius_um`: per voxel, the radius of the network capillary it
/// belongs to (0 for none).
fn surface_per_volume(grid: &Grid, radius_um: &[f64]) -> Vec<f64> {
    let (nx, ny, nz) = (grid.nx, grid.ny, grid.nz);
    let inv_h = 1.0 / grid.voxel_um;
    let mut out = vec![0.0; grid.n_voxels()];
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let ix = i + nx * (j + ny * k);
                if radius_um[ix] > 0.0 {
                    continue;
                }
                let h = grid.voxel_um;
                let mut faces = 0.0;
                let mut probe = |cond: bool, jx: usize| {
                    if cond && radius_um[jx] > 0.0 {
                        let r = radius_um[jx];
                        faces += 2.0 * std::f64::consts::PI * r / f64::max(4.0 * h, 8.0 * r);
                    }
                };
                probe(i > 0, ix.wrapping_sub(1));
                probe(i + 1 < nx, ix + 1);
                probe(j > 0, ix.wrapping_sub(nx));
                probe(j + 1 < ny, ix + nx);
                probe(k > 0, ix.wrapping_sub(nx * ny));
                probe(k + 1 < nz, ix + nx * ny);
                out[ix] = faces * inv_h;
            }
        }
    }
    out
}

/// Sets the quasi-steady species (OH·, …) to production/loss at the initial state, so the
/// fields written at t = 0 are consistent with the other species.
fn set_quasi_steady(net: &crate::chem::Network, mask: &[u32], conc: &mut [Vec<f64>]) {
    if net.qss.is_empty() {
        return;
    }
    let tapes = crate::chem::tape::Tapes::new(net);
    let [_, _, mut regs] = tapes.registers();
    let mut voxel = vec![0.0; conc.len()];
    for v in 0..mask.len() {
        for (s, field) in conc.iter().enumerate() {
            voxel[s] = field[v];
        }
        let tissue = (mask[v] & TISSUE_ID_MASK) as usize;
        tapes.qss.run(&voxel, tissue, &net.params, &mut regs);
        for (k, &(q, _)) in net.qss.iter().enumerate() {
            conc[q][v] = regs.get(tapes.qss.outputs[k]);
        }
    }
}

/// Per-species coefficients of one implicit step of length `dt_s`, computed once on the
/// host and shared by both engines (so the CPU and GPU solve the same matrices). See
/// `cpu::diffuse_adi` for the scheme.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepCoefficients {
    /// r = D·dt/dx², dimensionless.
    pub r: f64,
    /// Douglas weight θ ∈ [½, 1]: 1 = backward Euler (first order), ½ = Crank–Nicolson.
    pub theta: f64,
    /// First-order loss per step and tissue, q_t = k_t·dt, dimensionless.
    pub loss: [f64; MAX_TISSUES],
    /// Mask bit of this species' held voxels.
    pub held_bit: u32,
    /// Diffusion sub-steps per step; `r` and `loss` are per sub-step.
    pub substeps: u32,
}

impl StepCoefficients {
    pub fn new(
        species: &SpeciesModel,
        species_ix: usize,
        voxel_um: f64,
        dt_s: f64,
        theta: f64,
        max_r: Option<f64>,
    ) -> Self {
        let r_step = species.diffusion_um2_per_s * dt_s / (voxel_um * voxel_um);
        let substeps = max_r.map_or(1, |m| (r_step / m - 1e-9).ceil().max(1.0) as u32);
        let dt_sub = dt_s / substeps as f64;
        StepCoefficients {
            r: r_step / substeps as f64,
            theta,
            loss: species.decay_per_s_by_tissue.map(|k| k * dt_sub),
            held_bit: held_bit(species_ix),
            substeps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default's 20 µm grid resolves its capillaries (9 % of voxels in vessels: no
    /// warning); the same 1.28 mm block at 80 µm is mostly vessel and is warned of.
    #[test]
    fn a_grid_coarser_than_the_capillaries_is_warned_of() {
        let load = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            crate::config::load_resolved(
                crate::config::catalog::DEFAULT_SCENARIO_TOML,
                crate::config::catalog::DEFAULT_SOURCE,
                std::path::Path::new("."),
                &sets,
                false,
            )
            .expect("the default loads")
            .scenario
        };
        let fine = Model::build(&load(&[]));
        assert!(fine.vessel_fraction() < 0.15, "{}", fine.vessel_fraction());
        assert!(fine.warnings().is_empty(), "{:?}", fine.warnings());
        let coarse = Model::build(&load(&["grid.shape=[16,16,16]", "grid.voxel_um=80"]));
        let w = coarse.warnings();
        assert!(
            coarse.vessel_fraction() > 0.5,
            "{}",
            coarse.vessel_fraction()
        );
        assert!(
            w.len() == 1 && w[0].contains("80 µm") && w[0].contains("Fix: "),
            "{w:?}"
        );
    }
    use crate::config::{
        Colormap, ColourScale, InitialCondition, OutputSpec, Region, SliceSelection, Species,
        TimeSpec, Tissue, Vessel,
    };
    use glam::DVec3;

    pub(crate) fn tiny_scenario() -> Scenario {
        let grid = Grid {
            nx: 5,
            ny: 4,
            nz: 3,
            voxel_um: 10.0,
        };
        Scenario {
            name: "tiny".into(),
            description: String::new(),
            source: "test".into(),
            grid,
            time: TimeSpec {
                dt_s: 1.0,
                end_s: 1.0,
                output_interval_s: 1.0,
                theta: 1.0,
                max_diffusion_r: None,
                scheme: Default::default(),
            },
            tissues: vec![
                Tissue {
                    name: "normal".into(),
                    region: None,
                    mask: None,
                },
                Tissue {
                    name: "tumour".into(),
                    region: Some(Region::Box {
                        min_um: DVec3::ZERO,
                        max_um: DVec3::new(20.0, 40.0, 30.0),
                    }),
                    mask: None,
                },
            ],
            species: vec![Species {
                name: "O2".into(),
                unit: "mM".into(),
                display_unit: "mM".into(),
                diffusion_um2_per_s: 100.0,
                decay_per_s_by_tissue: vec![0.0, 0.3],
                initial: InitialCondition {
                    uniform_mm: 1.0,
                    tissue_mm: vec![],
                    regions: vec![],
                    beam: None,
                },
                boundary: [
                    BoundaryCondition::Dirichlet { value_mm: 2.0 },
                    BoundaryCondition::ZeroFlux,
                    BoundaryCondition::ZeroFlux,
                    BoundaryCondition::ZeroFlux,
                    BoundaryCondition::ZeroFlux,
                    BoundaryCondition::ZeroFlux,
                ],
                quasi_steady: false,
                atol_mm: None,
            }],
            vessels: vec![Vessel {
                region: Region::Sphere {
                    centre_um: DVec3::new(45.0, 35.0, 25.0),
                    radius_um: 1.0,
                },
                hold_mm: vec![(0, vec![7.0; 2])],
                from_network: false,
                keep_draw: 0.0,
            }],
            vessel_network: None,
            parameters: vec![],
            reactions: vec![],
            buffer: None,
            chemistry: crate::config::ChemistrySpec::default(),
            network: None,
            doses: vec![],
            spin_up: None,
            mri: None,
            fluorescence: None,
            output: OutputSpec {
                fields: vec![0],
                colormap: Colormap::Viridis,
                colour_scale: ColourScale::Auto,
                outlines: crate::config::Outlines::default(),
                theme: None,
                slice_axis: crate::config::Axis::Z,
                slices: SliceSelection::Indices(vec![1]),
                ranges: vec![crate::config::ValueRange::Auto],
                png16: crate::config::Png16::All,
                npy: true,
                zarr: false,
                vti: true,
                tiff: false,
                ph: None,
                mri: vec![],
                fluorescence: vec![],
                masks: vec![],
                timeseries: vec![],
                summary_interval_s: None,
                exact_summaries: false,
                probes: vec![],
                figure: None,
            },
        }
    }

    #[test]
    fn rasterises_tissues_faces_and_vessels() {
        let m = Model::build(&tiny_scenario());
        let ix = |i: usize, j: usize, k: usize| i + 5 * (j + 4 * k);
        // Tumour box covers centres x ∈ {5, 15} µm.
        assert_eq!(m.mask[ix(1, 2, 1)] & TISSUE_ID_MASK, 1);
        assert_eq!(m.mask[ix(2, 2, 1)] & TISSUE_ID_MASK, 0);
        // Dirichlet x_min layer held at 2 mM.
        assert_ne!(m.mask[ix(0, 3, 2)] & held_bit(0), 0);
        assert_eq!(m.initial_mm[0][ix(0, 3, 2)], 2.0);
        // Vessel voxel (4, 3, 2) held at 7 mM; its neighbour free at 1 mM.
        assert_ne!(m.mask[ix(4, 3, 2)] & held_bit(0), 0);
        assert_eq!(m.initial_mm[0][ix(4, 3, 2)], 7.0);
        assert_eq!(m.mask[ix(3, 3, 2)] & held_bit(0), 0);
        assert_eq!(m.initial_mm[0][ix(3, 3, 2)], 1.0);
        assert_eq!(m.tissue_voxel_counts()[1], 2 * 4 * 3);
    }

    /// A Gaussian dose adds peak·exp(−r²/2σ²) in tissue, nothing in a vessel lumen or on a
    /// Dirichlet face.
    #[test]
    fn doses_add_a_gaussian_in_tissue_but_not_in_held_voxels() {
        let mut sc = tiny_scenario();
        let centre_um = DVec3::new(35.0, 25.0, 15.0);
        sc.doses.push(crate::config::Dose {
            species: 0,
            time_s: 0.0,
            region: Region::Gaussian {
                centre_um,
                sigma_um: 10.0,
            },
            amount_mm: 2.0,
            everywhere: false,
            source: String::new(),
        });
        let m = Model::build(&sc);
        let d = &m.doses[0].delta_mm;
        let ix = |i: usize, j: usize, k: usize| i + 5 * (j + 4 * k);
        assert!(
            (d[ix(3, 2, 1)] - 2.0).abs() < 1e-12,
            "peak at the centre voxel"
        );
        let r2 = m.grid.centre_um(2, 2, 1).distance_squared(centre_um);
        assert!((d[ix(2, 2, 1)] - 2.0 * (-r2 / 200.0).exp()).abs() < 1e-12);
        assert_eq!(d[ix(4, 3, 2)], 0.0, "vessel lumen");
        assert_eq!(d[ix(0, 2, 1)], 0.0, "Dirichlet face");
    }

    /// An `everywhere` dose (a switch such as a laser's time left) goes into vessel lumens
    /// and onto the Dirichlet faces of other species, but not where its own species is held.
    #[test]
    fn everywhere_doses_skip_only_voxels_that_hold_their_own_species() {
        let mut sc = tiny_scenario();
        let mut timer = sc.species[0].clone();
        timer.name = "laser".into();
        timer.unit = "s".into();
        timer.diffusion_um2_per_s = 0.0;
        timer.boundary = [BoundaryCondition::ZeroFlux; 6];
        sc.species.push(timer);
        for species in [1, 0] {
            sc.doses.push(crate::config::Dose {
                species,
                time_s: 0.0,
                region: Region::Box {
                    min_um: DVec3::ZERO,
                    max_um: sc.grid.extent_um(),
                },
                amount_mm: 300.0,
                everywhere: true,
                source: String::new(),
            });
        }
        let m = Model::build(&sc);
        let ix = |i: usize, j: usize, k: usize| i + 5 * (j + 4 * k);
        let (lumen, face, tissue) = (ix(4, 3, 2), ix(0, 2, 1), ix(2, 2, 1));
        let (timer, o2) = (&m.doses[0].delta_mm, &m.doses[1].delta_mm);
        assert_eq!(m.doses[0].species, 1);
        assert_eq!(
            [timer[lumen], timer[face], timer[tissue]],
            [300.0; 3],
            "the timer is dosed in every voxel"
        );
        assert_eq!(
            [o2[lumen], o2[face], o2[tissue]],
            [0.0, 0.0, 300.0],
            "O2 is held in the lumen and on the face"
        );
    }
}
