//! What the network compiler reads: chem's own input types. `config` validation fills
//! them from the TOML tables (`[parameters]`, `[reactions]`, `[buffer]`, `[chemistry]`)
//! and the species, compiles the network once, and hands it on in the scenario.

use serde::Serialize;

/// What the compiler needs of one species.
#[derive(Clone, Debug, PartialEq)]
pub struct SpeciesSpec {
    pub name: String,
    /// Unit of the concentration as written (`mM`, `1` for `viab`).
    pub unit: String,
    /// Algebraic (quasi-steady): set to production / loss in every reaction step.
    pub quasi_steady: bool,
    /// Absolute tolerance of the integrator for this species, mM (`None`: the default).
    pub atol_mm: Option<f64>,
}

/// Everything a network is compiled from. Species, parameter and tissue indices are the
/// scenario's.
#[derive(Clone, Copy, Debug)]
pub struct NetworkInput<'a> {
    pub species: &'a [SpeciesSpec],
    pub parameters: &'a [Parameter],
    pub reactions: &'a [Reaction],
    pub buffer: Option<&'a Buffer>,
    pub chemistry: ChemistrySpec,
    pub n_tissues: usize,
}

/// A named constant of the rate expressions, e.g. `k_fenton = 0.07 1/(mM*s)`.
#[derive(Clone, Debug, Serialize)]
pub struct Parameter {
    pub name: String,
    /// Value in each tissue (indexed by tissue id), in `unit`. A plain number in the file
    /// gives the same value in every tissue.
    pub value_by_tissue: Vec<f64>,
    /// Unit as written (`1/(mM*s)`, `mM`, `mM/s`, `1`), checked by `chem::parse_unit`.
    pub unit: String,
    /// Where the value comes from (citation or "[E] estimate"); may be empty.
    pub source: String,
}

impl Parameter {
    /// True when every tissue has the same value.
    pub fn is_uniform(&self) -> bool {
        self.value_by_tissue.windows(2).all(|w| w[0] == w[1])
    }
}

/// One reaction: `equation` gives the stoichiometry, `rate` the rate in mM/s; each species
/// changes by (product coefficient − reactant coefficient) × rate.
#[derive(Clone, Debug, Serialize)]
pub struct Reaction {
    pub name: String,
    /// As written, e.g. `Fe2 + H2O2 -> Fe3 + OH`.
    pub equation: String,
    /// Rate expression as written, e.g. `k_fenton * Fe2 * H2O2` (mM/s).
    pub rate: String,
    /// (species index, coefficient > 0) of the left side, in equation order.
    pub reactants: Vec<(usize, f64)>,
    /// (species index, coefficient > 0) of the right side.
    pub products: Vec<(usize, f64)>,
    /// Tissue ids where the reaction acts; `None` = everywhere.
    pub tissues: Option<Vec<usize>>,
    /// `where = "viable"`: the rate is multiplied by the species `viab` (viable fraction).
    pub viable_only: bool,
}

/// Proton buffering (docs/scientific-model.md R23): dH/dt = ln10·H/β·S_H with β = β_nb + 2.303·HCO3,
/// where S_H is the net proton production of the reactions (mM/s). With a bicarbonate
/// species it is consumed at S_H·2.303·HCO3/β (R23b, open CO2 system).
#[derive(Clone, Debug, Serialize)]
pub struct Buffer {
    /// Species index of free H+ (mM).
    pub proton: usize,
    /// Non-bicarbonate buffer capacity β_nb, mM per pH unit.
    pub beta_nb_mm_per_ph: f64,
    /// Species index of HCO3-, if the bicarbonate system is on.
    pub bicarbonate: Option<usize>,
}

/// Error control of the per-voxel reaction integrator (`[chemistry]`).
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct ChemistrySpec {
    /// Relative tolerance per sub-step (default 1e-3).
    pub rtol: f64,
    /// Absolute tolerance, mM, for species without their own `atol_mm` (default 1e-6).
    pub atol_mm: f64,
    /// Sub-steps allowed per voxel and reaction call; more stops the run (default 20000).
    pub max_substeps: u32,
}

impl Default for ChemistrySpec {
    fn default() -> Self {
        ChemistrySpec {
            rtol: 1e-3,
            atol_mm: 1e-6,
            max_substeps: 20_000,
        }
    }
}
