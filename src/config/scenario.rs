//! The validated scenario: what `config::load` returns after parsing, `--set` overrides and
//! validation. Everything after `config/` works from these types only (no TOML, no name
//! lookups by string). Units are in every field name: µm, s, mM (= mol/m³), µm²/s, 1/s.

use glam::DVec3;
use serde::Serialize;

pub use crate::chem::input::{Buffer, ChemistrySpec, Parameter, Reaction};
pub use crate::grid::{Axis, Grid, MAX_SPECIES, MAX_TISSUES};

/// A fully resolved, physically checked scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Scenario {
    /// Short identifier, used for the default output folder `out/<name>/`.
    pub name: String,
    /// One-paragraph human description (may be empty).
    pub description: String,
    /// Where the scenario came from: a file path, or `<built-in default>`.
    pub source: String,
    pub grid: Grid,
    pub time: TimeSpec,
    /// Tissue types in id order; id 0 is always `normal` (every voxel no region claims).
    /// Later regions win where they overlap. At most [`MAX_TISSUES`].
    pub tissues: Vec<Tissue>,
    /// Species in buffer order. At most [`MAX_SPECIES`].
    pub species: Vec<Species>,
    /// Interior Dirichlet regions (vessels): voxels inside hold the listed species fixed.
    /// `[[vessels]]` first, then the segments of `[vessel_network]`.
    pub vessels: Vec<Vessel>,
    /// What `[vessel_network]` generated or read, for the manifest and `ionfield check`.
    pub vessel_network: Option<VesselNetwork>,
    /// Named parameters of the rate expressions (`[parameters]`), in file order.
    pub parameters: Vec<Parameter>,
    /// The reaction network (`[reactions.<name>]`), in file order. Empty = diffusion only.
    pub reactions: Vec<Reaction>,
    /// Proton buffering (`[buffer]`, docs/scientific-model.md R23), if any.
    pub buffer: Option<Buffer>,
    /// Integrator settings of the reaction step (`[chemistry]`).
    pub chemistry: ChemistrySpec,
    /// The reaction network, compiled once during validation (`None` without reactions).
    #[serde(skip)]
    pub network: Option<std::sync::Arc<crate::chem::Network>>,
    /// Doses added during the run (`[[dosing]]`), in time order.
    pub doses: Vec<Dose>,
    /// Baseline run before t = 0 (`time.spin_up_s`), if any.
    pub spin_up: Option<SpinUp>,
    /// Synthetic MRI (`[mri]`), if any.
    pub mri: Option<Mri>,
    /// Synthetic fluorescence imaging (`[fluorescence]`), if any.
    pub fluorescence: Option<Fluorescence>,
    pub output: OutputSpec,
}

impl Scenario {
    /// The network compiler's view of this scenario; `species` is
    /// `self.species.iter().map(Species::chem_spec)`, collected by the caller.
    pub fn network_input<'a>(
        &'a self,
        species: &'a [crate::chem::input::SpeciesSpec],
    ) -> crate::chem::input::NetworkInput<'a> {
        crate::chem::input::NetworkInput {
            species,
            parameters: &self.parameters,
            reactions: &self.reactions,
            buffer: self.buffer.as_ref(),
            chemistry: self.chemistry,
            n_tissues: self.tissues.len(),
        }
    }
}

/// A bolus: `amount_mm` added to a species inside a region at a time (a Gaussian region
/// adds amount·exp(−r²/2σ²): an intratumoural injection). Voxels where any species is held
/// (vessel lumens, Dirichlet faces) are not dosed, unless `everywhere`.
#[derive(Clone, Debug, Serialize)]
pub struct Dose {
    pub species: usize,
    /// Model time of the dose, s (≥ 0; doses come after any spin-up).
    pub time_s: f64,
    pub region: Region,
    /// Concentration added (peak of a Gaussian), mM.
    pub amount_mm: f64,
    /// Into every voxel of the region where the dosed species itself is not held (vessel
    /// lumens and other species' Dirichlet faces included): for switches that hold in
    /// every voxel, such as a laser's or an ultrasound transducer's time left, s. Default
    /// false: an injection reaches the interstitium, not the blood.
    pub everywhere: bool,
    /// Where the dose comes from (citation or "[E]").
    pub source: String,
}

/// The baseline run before t = 0: the model without doses, no outputs, so the therapy
/// starts from the untreated steady state. The manifest reports how steady it got.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct SpinUp {
    /// Model time of the baseline, s.
    pub duration_s: f64,
    /// Its step, s.
    pub dt_s: f64,
    /// `time.spin_up_tolerance_per_h`: end the spin-up once every settling field changes
    /// by at most this fraction of its largest value per hour (checked after every window
    /// of [`SpinUp::window_s`]); `duration_s` is then the longest it may run. `None`: run
    /// for `duration_s`.
    pub settle_per_h: Option<f64>,
}

impl SpinUp {
    /// Model time over which the drift is measured, s: the last tenth of the spin-up, at
    /// most 10 min; with a settle tolerance, every window of a tenth, at most 1 h, in turn
    /// (an error-controlled step grows to about an hour in a settling tissue, and a window
    /// ends a step).
    pub fn window_s(&self) -> f64 {
        let longest_s = if self.settle_per_h.is_some() {
            3600.0
        } else {
            600.0
        };
        (self.duration_s / 10.0).min(longest_s)
    }

    /// Steps of the spin-up as `sim::spin_up` takes them: the duration in whole steps of
    /// `dt_s` (rounded, at least one).
    pub fn n_steps(&self) -> u64 {
        (self.duration_s / self.dt_s).round().max(1.0) as u64
    }
}

/// Time stepping. `output_interval_s` is a whole multiple of `dt_s` after validation
/// (rounded with a warning otherwise); outputs are written at t = 0, every interval, and
/// at `end_s`.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct TimeSpec {
    /// Splitting step, s.
    pub dt_s: f64,
    /// Model time at which the run stops, s.
    pub end_s: f64,
    /// Time between outputs, s.
    pub output_interval_s: f64,
    /// Douglas ADI weight θ ∈ [½, 1] (`time.theta`, default 1): 1 = backward Euler, first
    /// order and damping stiff modes; ½ = Crank–Nicolson, second order in time.
    pub theta: f64,
    /// `time.max_diffusion_r`: a species whose r = D·dt/dx² exceeds this diffuses in
    /// ⌈r/max⌉ equal sub-steps per step (`None` = never). With reactions split around it,
    /// the Douglas scheme's fixed point carries a factorisation error growing like r²–r³
    /// where sources change sharply (vessel walls), so capping r bounds the overshoot.
    pub max_diffusion_r: Option<f64>,
    /// How reaction and diffusion are advanced (`time.scheme`).
    pub scheme: Scheme,
}

/// `time.scheme`: the time integrator.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "name")]
pub enum Scheme {
    /// Strang splitting of reaction (per-voxel ROS2) and diffusion (Douglas ADI) with the
    /// fixed step `time.dt_s`.
    #[default]
    Split,
    /// Reaction and diffusion coupled in one Rosenbrock method (ROS2) with a global step
    /// chosen by error control (`cpu::coupled`); `time.dt_s` is the first step.
    Coupled {
        /// Relative tolerance of the step control (`time.tolerance`).
        rtol: f64,
        /// First step, s (`time.dt_s`).
        first_dt_s: f64,
        /// Longest step, s (`time.max_dt_s`; `None`: unbounded).
        max_dt_s: Option<f64>,
        /// `time.adaptive` (default true); false takes fixed steps of `first_dt_s` with no
        /// error control (for convergence studies).
        adaptive: bool,
    },
}

impl TimeSpec {
    /// Number of steps of the run (the last one may be shortened to land on `end_s`).
    pub fn n_steps(&self) -> u64 {
        (self.end_s / self.dt_s - 1e-9).ceil().max(0.0) as u64
    }

    /// Output times, s: 0, every `output_interval_s` before `end_s`, and `end_s` (the
    /// output stops of `sim::OutputSchedule::new`).
    pub fn output_times_s(&self) -> Vec<f64> {
        let mut times = vec![0.0];
        let mut k = 1u64;
        loop {
            let t = k as f64 * self.output_interval_s;
            if t >= self.end_s * (1.0 - 1e-12) {
                break;
            }
            times.push(t);
            k += 1;
        }
        times.push(self.end_s);
        times
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Tissue {
    pub name: String,
    /// `None` for `normal` (id 0), the background, and for tissues given by a mask.
    pub region: Option<Region>,
    /// `tissues.<name>.mask`: the voxels read from a file (`None` with a region).
    pub mask: Option<TissueMask>,
}

/// A tissue read from a voxel mask file (`.npy` or a folder of PNG slices).
#[derive(Clone, Debug, Serialize)]
pub struct TissueMask {
    /// The file or folder as resolved (relative to the scenario file's folder).
    pub path: String,
    /// Number of voxels inside.
    pub n_inside: usize,
    /// Per voxel (x fastest, the grid's order): inside the tissue.
    #[serde(skip)]
    pub inside: Vec<bool>,
}

/// A geometric region in µm (domain coordinates, origin at the grid corner).
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
#[serde(tag = "shape", rename_all = "snake_case")]
pub enum Region {
    Sphere {
        centre_um: DVec3,
        radius_um: f64,
    },
    /// Axis-aligned box, `min_um` ≤ `max_um` componentwise.
    Box {
        min_um: DVec3,
        max_um: DVec3,
    },
    /// Finite cylinder between two axis points (flat ends).
    Cylinder {
        start_um: DVec3,
        end_um: DVec3,
        radius_um: f64,
    },
    /// Cylinder with hemispherical caps (points within `radius_um` of the segment).
    Capsule {
        start_um: DVec3,
        end_um: DVec3,
        radius_um: f64,
    },
    /// Gaussian blob exp(−|x−c|²/(2σ²)): as an initial-value region its value is the peak
    /// and it is *added*; as a tissue or vessel region it covers |x−c| ≤ 2σ.
    Gaussian {
        centre_um: DVec3,
        sigma_um: f64,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct Species {
    pub name: String,
    /// Unit of the value as the rates' dimension check reads it (mM, s, µm, K, `1`; the
    /// numbers are always mM unless stated).
    pub unit: String,
    /// The unit outputs print: `display_unit` of the config, else `unit`.
    pub display_unit: String,
    /// D, µm²/s. 0 means the species does not diffuse (cell-bound).
    pub diffusion_um2_per_s: f64,
    /// First-order uptake/decay rate in each tissue (indexed by tissue id), 1/s: the global
    /// `decay_per_s` plus the tissue's `uptake_per_s`.
    pub decay_per_s_by_tissue: Vec<f64>,
    pub initial: InitialCondition,
    /// Boundary condition per face, in [`Face`] order.
    pub boundary: [BoundaryCondition; 6],
    /// Algebraic (quasi-steady) species such as OH·: not integrated; each reaction step sets
    /// it to production / loss (docs/scientific-model.md §8). Requires D = 0 and rates linear in it.
    pub quasi_steady: bool,
    /// Absolute tolerance of the reaction integrator for this species, mM; `None` = the
    /// `[chemistry]` default.
    pub atol_mm: Option<f64>,
}

impl Species {
    pub fn diffuses(&self) -> bool {
        self.diffusion_um2_per_s > 0.0
    }

    /// What the network compiler needs of this species.
    pub fn chem_spec(&self) -> crate::chem::input::SpeciesSpec {
        crate::chem::input::SpeciesSpec {
            name: self.name.clone(),
            unit: self.unit.clone(),
            quasi_steady: self.quasi_steady,
            atol_mm: self.atol_mm,
        }
    }
}

/// Initial concentration: `uniform_mm` everywhere, then the value of each voxel's tissue
/// (where `tissue_mm` gives one), then each region in order.
#[derive(Clone, Debug, Serialize)]
pub struct InitialCondition {
    pub uniform_mm: f64,
    /// By tissue id: the value in that tissue's voxels, mM (`None` = keep `uniform_mm`).
    pub tissue_mm: Vec<Option<f64>>,
    /// Solid shapes set the value inside; a Gaussian adds `value_mm`·exp(−r²/2σ²).
    pub regions: Vec<InitialRegion>,
    /// A given field of relative intensity (`initial.beam`), instead of the above.
    pub beam: Option<Beam>,
}

/// A beam entering through a face (ultrasound, a collimated light beam without scattering):
/// relative intensity I/I0 = exp(−∫µ ds) along the axis times the lateral profile of a
/// Gaussian beam, (w0/w(d))²·exp(−2r²/w(d)²) with w(d) = w0·√(1 + ((d − d_f)/z_R)²)
/// (docs/scientific-model.md §12).
#[derive(Clone, Debug, Serialize)]
pub struct Beam {
    /// The axis the beam travels along.
    pub axis: crate::grid::Axis,
    /// Enters through the axis's high face (`x_max`, …) rather than its low one.
    pub from_max: bool,
    /// Intensity attenuation coefficient µ = 2α by tissue id, 1/µm.
    pub attenuation_per_um: Vec<f64>,
    /// 1/e² intensity radius w0, µm (`None`: a plane wave).
    pub waist_um: Option<f64>,
    /// The beam axis on the face: its two lateral coordinates in x, y, z order, µm.
    pub centre_um: [f64; 2],
    /// Focus depth d_f below the face and Rayleigh range z_R = π·w0²/λ, µm (`None`: the
    /// waist is the same at every depth).
    pub focus: Option<(f64, f64)>,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct InitialRegion {
    pub region: Region,
    pub value_mm: f64,
}

/// Faces of the box in the order used everywhere (boundary arrays, masks, shaders).
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Face {
    XMin,
    XMax,
    YMin,
    YMax,
    ZMin,
    ZMax,
}

impl Face {
    pub const ALL: [Face; 6] = [
        Face::XMin,
        Face::XMax,
        Face::YMin,
        Face::YMax,
        Face::ZMin,
        Face::ZMax,
    ];
    /// TOML key of the face.
    pub fn key(self) -> &'static str {
        match self {
            Face::XMin => "x_min",
            Face::XMax => "x_max",
            Face::YMin => "y_min",
            Face::YMax => "y_max",
            Face::ZMin => "z_min",
            Face::ZMax => "z_max",
        }
    }
}

/// Boundary condition of one species on one face.
///
/// Dirichlet is imposed on the boundary voxel layer itself (the layer is held at the value,
/// like an interior vessel voxel), zero flux by a conservative one-sided row in the
/// tridiagonal solve. See `cpu::diffuse_adi` for the discretisation.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum BoundaryCondition {
    ZeroFlux,
    Dirichlet { value_mm: f64 },
}

/// An interior Dirichlet region: inside it, each listed species is held at its value.
#[derive(Clone, Debug, Serialize)]
pub struct Vessel {
    pub region: Region,
    /// (species index, held concentration per tissue id, mM): each vessel voxel holds its
    /// own tissue's value (tumour blood may be hypercapnic, lactic). May be empty for a
    /// network segment that only exchanges (Robin).
    pub hold_mm: Vec<(usize, Vec<f64>)>,
    /// A `[vessel_network]` segment: besides the voxels whose centre it covers, every voxel
    /// its centre line passes through is a vessel voxel (a 5 µm capillary between voxel
    /// centres would otherwise vanish at 10 µm voxels), and its voxels count for the
    /// surface field of exchange.
    pub from_network: bool,
    /// Uniform in [0, 1), drawn from the network's seed (0 for `[[vessels]]`): in a tissue
    /// with a keep fraction below 1 (`vessel_network.tissue_spacing_um`) the segment is a
    /// vessel only where `keep_draw` is below that fraction.
    pub keep_draw: f64,
}

impl Vessel {
    /// Whether the vessel exists in tissue `tissue`: a `[vessel_network]` segment only
    /// where its draw is below the tissue's keep fraction (`keep_fraction_by_tissue`,
    /// [`VesselNetwork`]); every `[[vessels]]` region everywhere.
    pub fn kept_in(&self, tissue: usize, keep_fraction_by_tissue: &[f64]) -> bool {
        !self.from_network
            || keep_fraction_by_tissue
                .get(tissue)
                .is_none_or(|&f| self.keep_draw < f)
    }
}

/// What `[vessel_network]` produced.
#[derive(Clone, Debug, Serialize)]
pub struct VesselNetwork {
    /// `"straight"`, `"branching"` or `"file"`.
    pub kind: String,
    pub seed: Option<u64>,
    /// The segment file as resolved, for `kind = "file"`.
    pub file: Option<String>,
    pub n_segments: usize,
    /// Total centre-line length inside the domain, µm.
    pub total_length_um: f64,
    /// total_length_um / domain volume, in mm/mm³ (= 1e6 × µm/µm³).
    pub length_density_mm_per_mm3: f64,
    /// Robin exchange per species (generated reactions `vessel_exchange_<species>`).
    pub exchange: Vec<Exchange>,
    /// Species index of the generated `vessel_SV` field (1/µm) when there is exchange.
    pub surface_species: Option<usize>,
    /// Per tissue id: the fraction of segments kept there, (spacing_um / tissue spacing)²
    /// (1 where `tissue_spacing_um` does not name the tissue).
    pub keep_fraction_by_tissue: Vec<f64>,
}

/// Robin exchange of one species with blood: source P·(S/V)·(C_b − C) next to vessels.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Exchange {
    pub species: usize,
    /// P per tissue id, µm/s.
    pub permeability_um_per_s_by_tissue: Vec<f64>,
    /// The blood concentration C_b.
    pub blood: Blood,
}

/// Where an exchanged species' blood concentration comes from.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub enum Blood {
    /// Constant, per tissue id, mM.
    Mm(Vec<f64>),
    /// The generated plasma species of `[plasma.<species>]` (its index): intravenous delivery.
    Plasma(usize),
}

#[derive(Clone, Debug, Serialize)]
pub struct OutputSpec {
    /// Species indices to write, in order.
    pub fields: Vec<usize>,
    pub colormap: Colormap,
    /// Linear or log colour bars of the 8-bit slices and the figure series.
    pub colour_scale: ColourScale,
    /// Boundaries drawn over the 8-bit slices and the figure series (`output.outlines`).
    pub outlines: Outlines,
    /// Light or dark pictures (`output.theme`); `None`: dark 8-bit slices, light plots and
    /// figure series.
    pub theme: Option<ThemeName>,
    /// Axis of the 8-bit colour slices and of the 16-bit stacks.
    pub slice_axis: Axis,
    /// Which slices along `slice_axis` get an 8-bit colour PNG.
    pub slices: SliceSelection,
    /// Value range per written field (same order as `fields`).
    pub ranges: Vec<ValueRange>,
    /// Which written fields get a 16-bit grayscale PNG stack (every slice along
    /// `slice_axis`).
    pub png16: Png16,
    /// Write the full 3D field as `.npy` (f32, C order, shape (nz, ny, nx)).
    pub npy: bool,
    /// Write every field at every output time into one OME-Zarr store `fields.ome.zarr`
    /// (NGFF 0.5, Zarr v3: an image (t, c, z, y, x) in µm and s, the tissue and vessel
    /// masks as labels); see `output::zarr`.
    pub zarr: bool,
    /// Write one VTK ImageData `vti/fields_<time>.vti` per output time (every field as
    /// Float32 cell data, spacing = voxel in µm) and the ParaView series `vti/series.pvd`.
    pub vti: bool,
    /// Write one calibrated 32-bit float TIFF stack `tiff/<field>_<time>.tif` per field
    /// and output time (pages = z slices, ImageJ metadata in µm).
    pub tiff: bool,
    /// `"pH"` in `output.fields`: pH = 3 − log10(H/mM) written after the species fields.
    pub ph: Option<PhOutput>,
    /// Synthetic MRI fields in `output.fields` (`R1`, `R2`, `T1w`, `T2w`; needs `[mri]`),
    /// written after pH, with their value ranges.
    pub mri: Vec<(MriField, ValueRange)>,
    /// Synthetic fluorescence fields in `output.fields` (`FL`, `FLimg`; needs
    /// `[fluorescence]`), written after the MRI fields, with their value ranges.
    pub fluorescence: Vec<(FluorescenceField, ValueRange)>,
    /// Geometry masks in `output.fields` (`tissue`, `vessels`), written after the
    /// fluorescence fields, so that the tumour and the vessels can be segmented beside the fields, with
    /// their fixed value ranges (tissue: 0 to the last tissue index; vessels: 0 to 1).
    pub masks: Vec<(MaskField, ValueRange)>,
    /// Fields summarised in `timeseries.csv`.
    pub timeseries: Vec<TimeseriesField>,
    /// Model time between summaries (timeseries.csv, viability.csv, time of death), s;
    /// always set by validation (`output.summary_interval_s`, default
    /// [`crate::config::default_summary_interval_s`]); `None` (an `OutputSpec` built by
    /// hand) means that default too.
    pub summary_interval_s: Option<f64>,
    /// Whether the coupled scheme lands on every summary stop (`output.exact_summaries`);
    /// false (the default): it steps over them and the summaries are interpolated linearly
    /// within the step (second order, like the step; the split scheme lands on every stop).
    pub exact_summaries: bool,
    /// Point probes in `timeseries.csv`.
    pub probes: Vec<Probe>,
    /// `[output.figure]`: the multi-panel figure `plots/figure_series.png`.
    pub figure: Option<FigureSpec>,
}

/// `output.png16`: `true` (every written field), `false`, or a list of field names.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub enum Png16 {
    None,
    All,
    Fields(Vec<String>),
}

impl Png16 {
    /// Whether written field `name` gets a stack.
    pub fn includes(&self, name: &str) -> bool {
        match self {
            Png16::None => false,
            Png16::All => true,
            Png16::Fields(f) => f.iter().any(|n| n == name),
        }
    }
}

impl OutputSpec {
    /// The derived fields written after the species of `fields`, in write order: pH, the
    /// MRI fields, the fluorescence fields, the masks; as (name, unit, value range).
    pub fn derived(&self) -> Vec<(&'static str, &'static str, ValueRange)> {
        self.ph
            .iter()
            .map(|p| ("pH", "pH", p.range))
            .chain(self.mri.iter().map(|&(m, r)| (m.name(), m.unit(), r)))
            .chain(
                self.fluorescence
                    .iter()
                    .map(|&(m, r)| (m.name(), m.unit(), r)),
            )
            .chain(self.masks.iter().map(|&(m, r)| (m.name(), m.unit(), r)))
            .collect()
    }
}

/// A field of `timeseries.csv`.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub enum TimeseriesField {
    /// A species (scenario index).
    Species(usize),
    /// pH computed from the free-H+ species (its scenario index).
    Ph(usize),
}

/// `[[output.probe]]`: the value of one voxel over time.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Probe {
    pub name: String,
    /// The requested point, µm from the grid's origin corner.
    pub point_um: [f64; 3],
    /// The voxel whose box holds the point (flat index, x fastest).
    pub voxel: usize,
}

/// `[output.figure]`: a grid of 2D slices, one row per field and one column per time.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FigureSpec {
    /// Row fields, names as in `output.fields` (species, `pH`, MRI fields).
    pub fields: Vec<String>,
    /// Column times, s: output times (as the schedule computes them), increasing.
    pub times_s: Vec<f64>,
    /// Slice index along `output.slice_axis`.
    pub slice_index: usize,
    /// Resolution of the PNG, dots per inch.
    pub dpi: u32,
}

/// A synthetic MRI readout (docs/scientific-model.md §6), computed from the fields at output times.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub enum MriField {
    /// Longitudinal relaxation rate R1 = 1/T1, 1/s.
    R1,
    /// Transverse relaxation rate R2 = 1/T2, 1/s.
    R2,
    /// T1-weighted spin-echo signal (`mri.t1w` TR/TE), arbitrary units (ρ = 1 → 1).
    T1w,
    /// T2-weighted spin-echo signal (`mri.t2w` TR/TE), arbitrary units.
    T2w,
}

impl MriField {
    pub const ALL: [MriField; 4] = [MriField::R1, MriField::R2, MriField::T1w, MriField::T2w];
    pub fn name(self) -> &'static str {
        match self {
            MriField::R1 => "R1",
            MriField::R2 => "R2",
            MriField::T1w => "T1w",
            MriField::T2w => "T2w",
        }
    }
    pub fn unit(self) -> &'static str {
        match self {
            MriField::R1 | MriField::R2 => "1/s",
            MriField::T1w | MriField::T2w => "a.u.",
        }
    }
}

/// A synthetic fluorescence readout (docs/scientific-model.md §6), computed from the fields
/// at output times.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub enum FluorescenceField {
    /// Emission of each voxel that reaches the imaged face, a.u. per µm of depth:
    /// Σ b·C · excitation · exp(−µ_em·d), d the voxel centre's distance to the face.
    Fl,
    /// The image at the face: `FL` summed through the depth (a.u., × µm), the same value
    /// in every voxel of a column across the face, so that a slice across the viewing
    /// axis is the image.
    FlImg,
}

impl FluorescenceField {
    pub const ALL: [FluorescenceField; 2] = [FluorescenceField::Fl, FluorescenceField::FlImg];
    pub fn name(self) -> &'static str {
        match self {
            FluorescenceField::Fl => "FL",
            FluorescenceField::FlImg => "FLimg",
        }
    }
    pub fn unit(self) -> &'static str {
        match self {
            FluorescenceField::Fl => "a.u./µm",
            FluorescenceField::FlImg => "a.u.",
        }
    }
}

/// `[fluorescence]` (docs/scientific-model.md §6): each voxel emits
/// Σ b·C·E (b the brightness ε·Φ_F per mM, E the excitation as a fraction of the surface
/// value), attenuated by exp(−µ_em·d) on its way to the imaged face at distance d; the
/// image sums the emission through the depth. No lateral blur: the diffuse spread of the
/// emitted light over ~d is not modelled.
#[derive(Clone, Debug, Serialize)]
pub struct Fluorescence {
    /// (species, brightness per mM, a.u.).
    pub brightness: Vec<(usize, f64)>,
    /// The excitation light field (a species, fraction of the surface fluence rate); `None`:
    /// uniform excitation 1.
    pub excitation: Option<usize>,
    /// Effective attenuation of the emitted light in tissue, 1/µm.
    pub mu_em_per_um: f64,
    /// The axis across the imaged face, and whether the face is its far end (`x_max`, …).
    pub face_axis: crate::grid::Axis,
    pub face_max: bool,
}

/// A geometry mask written like a field: the same voxels, formats and times.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub enum MaskField {
    /// Tissue label of each voxel: the index of its tissue in `tissues` order (0 = the
    /// first tissue, usually `normal`); the manifest's scenario lists the names.
    Tissue,
    /// 1 in voxels inside a vessel (`[vessel_network]` capillaries kept after thinning,
    /// `[[vessels]]`), 0 elsewhere.
    Vessels,
}

impl MaskField {
    pub const ALL: [MaskField; 2] = [MaskField::Tissue, MaskField::Vessels];
    pub fn name(self) -> &'static str {
        match self {
            MaskField::Tissue => "tissue",
            MaskField::Vessels => "vessels",
        }
    }
    pub fn unit(self) -> &'static str {
        match self {
            MaskField::Tissue => "id",
            MaskField::Vessels => "1",
        }
    }
}

/// `[mri]` (docs/scientific-model.md §6): relaxation rates add, 1/T = 1/T0 + Σ r·C (fast exchange);
/// spin-echo signal S = ρ·(1 − e^(−TR/T1))·e^(−TE/T2).
#[derive(Clone, Debug, Serialize)]
pub struct Mri {
    /// Field strength the relaxivities belong to, T (documentation).
    pub field_t: f64,
    /// (species, r1 in 1/(mM·s)).
    pub r1: Vec<(usize, f64)>,
    /// (species, r2 in 1/(mM·s)).
    pub r2: Vec<(usize, f64)>,
    /// Baseline T1 per tissue id, s.
    pub t1_0_s_by_tissue: Vec<f64>,
    /// Baseline T2 per tissue id, s.
    pub t2_0_s_by_tissue: Vec<f64>,
    /// Proton density per tissue id (relative).
    pub rho_by_tissue: Vec<f64>,
    /// T1-weighted sequence (TR, TE), s.
    pub t1w_tr_te_s: (f64, f64),
    /// T2-weighted sequence (TR, TE), s.
    pub t2w_tr_te_s: (f64, f64),
}

/// The derived pH field.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct PhOutput {
    /// Species index of free H+ (mM): the buffer's proton, else the species `H`.
    pub proton: usize,
    pub range: ValueRange,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SliceSelection {
    /// These slice indices (validated < length of the axis).
    Indices(Vec<usize>),
    /// Every slice: a colour stack.
    All,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum ValueRange {
    /// Min and max of the field at each output time.
    Auto,
    /// Fixed (lo, hi) in the field's unit; values outside are clamped.
    Fixed { lo: f64, hi: f64 },
}

/// `output.theme`: the colours around the data of every picture a run draws.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ThemeName {
    /// White background, black text (print).
    Light,
    /// Dark grey background, light text (screens, slides).
    Dark,
}

/// `output.outlines`: which boundaries the 8-bit slices and the figure series draw over
/// the values.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct Outlines {
    /// Between voxels of different tissues (the tumour's edge), white.
    pub tissue: bool,
    /// Around vessel voxels (the vessel walls), vermilion.
    pub vessels: bool,
}

impl Default for Outlines {
    /// The tissue boundaries only (vessel walls crowd a coarse grid, where most voxels of
    /// a tissue may hold a capillary).
    fn default() -> Outlines {
        Outlines {
            tissue: true,
            vessels: false,
        }
    }
}

/// `output.colour_scale`: how the 8-bit slices and the figure series map values to
/// colours (see `chart::ColourBar`).
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ColourScale {
    /// Log10 for a field without negative values whose largest value is more than three
    /// decades above its smallest positive one, else linear.
    #[default]
    Auto,
    Linear,
    /// Log10 wherever the field has a positive value.
    Log,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Colormap {
    Viridis,
    Magma,
    Inferno,
    Plasma,
    Cividis,
    Grayscale,
}
