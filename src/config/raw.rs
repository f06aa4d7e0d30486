//! The TOML schema as written: serde structs with `deny_unknown_fields` and optional fields.
//! `validate` turns them into a [`super::Scenario`]; defaults and physical checks live there.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A TOML table of user-chosen names → `T`, in file order (species order = buffer order).
#[derive(Debug)]
pub struct NamedMap<T>(pub Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for NamedMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = NamedMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, T>()? {
                    out.push((k, v));
                }
                Ok(NamedMap(out))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: String,
    pub description: Option<String>,
    pub grid: RawGrid,
    pub time: RawTime,
    pub tissues: Option<NamedMap<RawTissue>>,
    pub species: NamedMap<RawSpecies>,
    pub vessels: Option<Vec<RawVessel>>,
    pub vessel_network: Option<RawVesselNetwork>,
    pub parameters: Option<NamedMap<RawParameter>>,
    pub reactions: Option<NamedMap<RawReaction>>,
    pub buffer: Option<RawBuffer>,
    pub chemistry: Option<RawChemistry>,
    /// `[[dosing]]`: particle or drug doses during the run.
    pub dosing: Option<Vec<RawDose>>,
    pub mri: Option<RawMri>,
    pub output: Option<RawOutput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrid {
    pub shape: Vec<i64>,
    pub voxel_um: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTime {
    pub dt_s: f64,
    pub end_s: f64,
    pub output_interval_s: Option<f64>,
    /// Douglas ADI weight θ ∈ [0.5, 1], default 1.
    pub theta: Option<f64>,
    /// Model time run before t = 0 without doses or outputs (baseline to steady state), s.
    pub spin_up_s: Option<f64>,
    /// Step of the spin-up, s (default `dt_s`).
    pub spin_up_dt_s: Option<f64>,
    /// Cap of r = D·dt/dx² per diffusion sub-step.
    pub max_diffusion_r: Option<f64>,
}

/// The geometric keys of a region table, borrowed, whatever table they came from.
pub struct RegionKeys<'a> {
    pub shape: &'a str,
    pub centre_um: Option<&'a [f64]>,
    pub radius_um: Option<f64>,
    pub min_um: Option<&'a [f64]>,
    pub max_um: Option<&'a [f64]>,
    pub start_um: Option<&'a [f64]>,
    pub end_um: Option<&'a [f64]>,
    pub sigma_um: Option<f64>,
}

/// A region table plus the extra keys of its context (`value_mm`, `hold_mm`). A macro
/// rather than `#[serde(flatten)]`, which does not work with `deny_unknown_fields`.
macro_rules! region_table {
    ($(#[$m:meta])* $name:ident { $($extra:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub shape: String,
            pub centre_um: Option<Vec<f64>>,
            pub radius_um: Option<f64>,
            pub min_um: Option<Vec<f64>>,
            pub max_um: Option<Vec<f64>>,
            pub start_um: Option<Vec<f64>>,
            pub end_um: Option<Vec<f64>>,
            pub sigma_um: Option<f64>,
            $(pub $extra: $ty,)*
        }

        impl $name {
            pub fn keys(&self) -> RegionKeys<'_> {
                RegionKeys {
                    shape: &self.shape,
                    centre_um: self.centre_um.as_deref(),
                    radius_um: self.radius_um,
                    min_um: self.min_um.as_deref(),
                    max_um: self.max_um.as_deref(),
                    start_um: self.start_um.as_deref(),
                    end_um: self.end_um.as_deref(),
                    sigma_um: self.sigma_um,
                }
            }
        }
    };
}

/// `tissues.<name>`: a region (the keys of [`RegionKeys`]) or `mask`, a file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTissue {
    pub shape: Option<String>,
    pub centre_um: Option<Vec<f64>>,
    pub radius_um: Option<f64>,
    pub min_um: Option<Vec<f64>>,
    pub max_um: Option<Vec<f64>>,
    pub start_um: Option<Vec<f64>>,
    pub end_um: Option<Vec<f64>>,
    pub sigma_um: Option<f64>,
    /// A `.npy` array (nz, ny, nx) or a folder of PNG slices, relative to the scenario file.
    pub mask: Option<String>,
}

impl RawTissue {
    pub fn keys<'a>(&'a self, shape: &'a str) -> RegionKeys<'a> {
        RegionKeys {
            shape,
            centre_um: self.centre_um.as_deref(),
            radius_um: self.radius_um,
            min_um: self.min_um.as_deref(),
            max_um: self.max_um.as_deref(),
            start_um: self.start_um.as_deref(),
            end_um: self.end_um.as_deref(),
            sigma_um: self.sigma_um,
        }
    }
    /// Whether any geometric key is present.
    pub fn has_region_keys(&self) -> bool {
        self.centre_um.is_some()
            || self.radius_um.is_some()
            || self.min_um.is_some()
            || self.max_um.is_some()
            || self.start_um.is_some()
            || self.end_um.is_some()
            || self.sigma_um.is_some()
    }
}

/// `[vessel_network]`; checked in `validate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVesselNetwork {
    pub seed: Option<i64>,
    /// `"straight"` or `"branching"`; absent with `file`.
    pub kind: Option<String>,
    pub file: Option<String>,
    pub spacing_um: Option<f64>,
    pub density_mm_per_mm3: Option<f64>,
    pub radius_um: Option<f64>,
    pub axis: Option<String>,
    pub segment_um: Option<f64>,
    pub persistence: Option<f64>,
    pub branch_probability: Option<f64>,
    pub hold_mm: Option<NamedMap<f64>>,
    pub exchange: Option<NamedMap<RawExchange>>,
}

/// `vessel_network.exchange.<species>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExchange {
    pub permeability_um_per_s: f64,
    pub blood_mm: f64,
}
region_table!(
    /// `species.<name>.initial.regions[i]`.
    RawInitialRegion { value_mm: f64 }
);
region_table!(
    /// `dosing[i]`: `amount_mm` added to `species` inside the region at `time_s`.
    RawDose {
        species: String,
        kind: Option<String>,
        time_s: Option<f64>,
        amount_mm: f64,
        source: Option<String>,
    }
);
region_table!(
    /// `vessels[i]`.
    RawVessel { hold_mm: NamedMap<f64> }
);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpecies {
    pub unit: Option<String>,
    pub diffusion_um2_per_s: f64,
    pub decay_per_s: Option<f64>,
    pub uptake_per_s: Option<NamedMap<f64>>,
    pub initial: Option<RawInitial>,
    pub boundary: Option<RawBoundary>,
    /// Algebraic species (production / loss each reaction step), default false.
    pub quasi_steady: Option<bool>,
    /// Absolute tolerance of the reaction integrator for this species, mM.
    pub atol_mm: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInitial {
    pub uniform_mm: Option<f64>,
    /// Tissue name → value in every voxel of that tissue (after `uniform_mm`).
    pub tissue_mm: Option<NamedMap<f64>>,
    pub regions: Option<Vec<RawInitialRegion>>,
}

/// Each value is `"zero_flux"` or a number (Dirichlet, mM); checked in `validate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBoundary {
    pub all: Option<toml::Value>,
    pub x_min: Option<toml::Value>,
    pub x_max: Option<toml::Value>,
    pub y_min: Option<toml::Value>,
    pub y_max: Option<toml::Value>,
    pub z_min: Option<toml::Value>,
    pub z_max: Option<toml::Value>,
}

impl RawBoundary {
    /// The per-face values in [`super::Face`] order.
    pub fn faces(&self) -> [&Option<toml::Value>; 6] {
        [
            &self.x_min,
            &self.x_max,
            &self.y_min,
            &self.y_max,
            &self.z_min,
            &self.z_max,
        ]
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    pub fields: Option<Vec<String>>,
    pub colormap: Option<String>,
    pub slice_axis: Option<String>,
    /// An array of indices or `"all"`; checked in `validate`.
    pub slices: Option<toml::Value>,
    pub ranges_mm: Option<NamedMap<Vec<f64>>>,
    pub png16: Option<bool>,
    pub npy: Option<bool>,
    pub vti: Option<bool>,
    pub tiff: Option<bool>,
    /// Fields of `timeseries.csv` (species names and "pH"); default every species and pH.
    pub timeseries: Option<Vec<String>>,
    pub summary_interval_s: Option<f64>,
    pub probe: Option<Vec<RawProbe>>,
    /// `[output.figure]`: the multi-panel figure `plots/figure_series.png`.
    pub figure: Option<RawFigure>,
}

/// `[[output.probe]]`: a point probe in `timeseries.csv`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    pub name: String,
    pub point_um: Vec<f64>,
}

/// `[output.figure]`; checked in `validate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFigure {
    /// Rows: names from `output.fields` (species, `pH`, MRI fields).
    pub fields: Vec<String>,
    /// Columns: output times, s (default: up to 4 evenly spaced, first and last included).
    pub times_s: Option<Vec<f64>>,
    /// Slice along `output.slice_axis` (default: the middle one).
    pub slice_index: Option<i64>,
    /// Resolution, dots per inch (default 150).
    pub dpi: Option<i64>,
}

/// `parameters.<name>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawParameter {
    /// A number, or a table tissue name → number (with an optional `default`); checked in
    /// `validate`.
    pub value: toml::Value,
    pub unit: String,
    pub source: Option<String>,
}

/// `reactions.<name>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReaction {
    pub equation: String,
    pub rate: String,
    /// `"everywhere"`, `"viable"`, a tissue name or an array of tissue names; checked in
    /// `validate`.
    #[serde(rename = "where")]
    pub where_: Option<toml::Value>,
}

/// `[buffer]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBuffer {
    pub proton: String,
    #[serde(rename = "beta_nb_mM_per_pH")]
    pub beta_nb_mm_per_ph: f64,
    pub bicarbonate: Option<String>,
}

/// `[chemistry]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChemistry {
    pub rtol: Option<f64>,
    pub atol_mm: Option<f64>,
    pub max_substeps: Option<i64>,
}

/// `[mri]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMri {
    #[serde(rename = "field_T")]
    pub field_t: Option<f64>,
    #[serde(rename = "r1_per_mM_s")]
    pub r1_per_mm_s: Option<NamedMap<f64>>,
    #[serde(rename = "r2_per_mM_s")]
    pub r2_per_mm_s: Option<NamedMap<f64>>,
    /// A number or a per-tissue table (with optional `default`), s.
    #[serde(rename = "T1_0_s")]
    pub t1_0_s: toml::Value,
    #[serde(rename = "T2_0_s")]
    pub t2_0_s: toml::Value,
    pub rho: Option<toml::Value>,
    pub t1w: Option<RawSequence>,
    pub t2w: Option<RawSequence>,
}

/// A spin-echo sequence.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSequence {
    #[serde(rename = "TR_s")]
    pub tr_s: f64,
    #[serde(rename = "TE_s")]
    pub te_s: f64,
}
