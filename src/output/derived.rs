//! Fields computed on the host from species fields at output times: pH, the synthetic MRI
//! and fluorescence readouts (docs/scientific-model.md §6), and the geometry masks
//! (`tissue`, `vessels`). [`Derived::species_to_read`] says what to read back;
//! [`Derived::assemble`] returns the written fields in `RunWriter::write_output` order:
//! `output.fields` species, then [`crate::config::OutputSpec::derived`].

use crate::config::{FluorescenceField, MaskField, MriField, Scenario};
use crate::grid::Grid;
use crate::model::{Model, TISSUE_ID_MASK};

pub struct Derived {
    /// Species read back at each output, in this order.
    read: Vec<usize>,
    n_species_written: usize,
    /// Index into `read` of free H+ for the pH field.
    proton: Option<usize>,
    mri: Vec<MriField>,
    /// (index into `read`, r1, r2) of each species with a relaxivity.
    relaxers: Vec<(usize, f64, f64)>,
    mri_model: Option<crate::config::Mri>,
    fluorescence: Vec<FluorescenceField>,
    /// (index into `read`, brightness per mM) of each fluorescent species.
    fluorophores: Vec<(usize, f64)>,
    /// Index into `read` of the excitation field (`None`: uniform 1).
    excitation: Option<usize>,
    /// exp(−µ_em·d) of each voxel, d its centre's distance to the imaged face.
    escape: Vec<f64>,
    grid: Grid,
    /// The imaged face's axis.
    face_axis: usize,
    tissue_of_voxel: Vec<u8>,
    /// The masks asked for, as fields (they do not change during a run).
    masks: Vec<Vec<f32>>,
}

impl Derived {
    pub fn new(scenario: &Scenario, model: &Model) -> Derived {
        let out = &scenario.output;
        let mut read = out.fields.clone();
        let slot = |s: usize, read: &mut Vec<usize>| {
            read.iter().position(|&r| r == s).unwrap_or_else(|| {
                read.push(s);
                read.len() - 1
            })
        };
        let proton = out.ph.map(|p| slot(p.proton, &mut read));
        let mri: Vec<MriField> = out.mri.iter().map(|(m, _)| *m).collect();
        let mut relaxers = Vec::new();
        if let (Some(m), false) = (&scenario.mri, mri.is_empty()) {
            let mut species: Vec<usize> = m.r1.iter().chain(&m.r2).map(|&(s, _)| s).collect();
            species.dedup();
            for s in species {
                let r1 = m.r1.iter().find(|r| r.0 == s).map_or(0.0, |r| r.1);
                let r2 = m.r2.iter().find(|r| r.0 == s).map_or(0.0, |r| r.1);
                if !relaxers.iter().any(|&(i, _, _)| read[i] == s) {
                    relaxers.push((slot(s, &mut read), r1, r2));
                }
            }
        }
        let fluorescence: Vec<FluorescenceField> =
            out.fluorescence.iter().map(|(f, _)| *f).collect();
        let (mut fluorophores, mut excitation, mut escape, mut face_axis) =
            (Vec::new(), None, Vec::new(), 0);
        if let (Some(f), false) = (&scenario.fluorescence, fluorescence.is_empty()) {
            for &(s, b) in &f.brightness {
                fluorophores.push((slot(s, &mut read), b));
            }
            excitation = f.excitation.map(|s| slot(s, &mut read));
            face_axis = f.face_axis as usize;
            escape = escape_factors(&scenario.grid, face_axis, f.face_max, f.mu_em_per_um);
        }
        Derived {
            read,
            n_species_written: out.fields.len(),
            proton,
            mri,
            relaxers,
            mri_model: scenario.mri.clone(),
            fluorescence,
            fluorophores,
            excitation,
            escape,
            grid: scenario.grid,
            face_axis,
            tissue_of_voxel: model
                .mask
                .iter()
                .map(|m| (m & TISSUE_ID_MASK) as u8)
                .collect(),
            masks: out
                .masks
                .iter()
                .map(|(m, _)| match m {
                    MaskField::Tissue => model
                        .mask
                        .iter()
                        .map(|v| (v & TISSUE_ID_MASK) as f32)
                        .collect(),
                    MaskField::Vessels => model
                        .vessel
                        .iter()
                        .map(|&v| f32::from(u8::from(v)))
                        .collect(),
                })
                .collect(),
        }
    }

    pub fn species_to_read(&self) -> &[usize] {
        &self.read
    }

    /// `fields[i]` is species `species_to_read()[i]`.
    pub fn assemble(&self, mut fields: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
        let ph = self.proton.map(|i| ph_field(&fields[i]));
        let mri: Vec<Vec<f32>> = self
            .mri
            .iter()
            .map(|&m| self.mri_field(m, &fields))
            .collect();
        let fl = (!self.fluorescence.is_empty()).then(|| self.emission(&fields));
        let fluorescence: Vec<Vec<f32>> = self
            .fluorescence
            .iter()
            .map(|&f| {
                let fl = fl.as_ref().expect("computed when asked for");
                let field: Vec<f64> = match f {
                    FluorescenceField::Fl => fl.clone(),
                    FluorescenceField::FlImg => column_sums(&self.grid, self.face_axis, fl),
                };
                field.into_iter().map(|v| v as f32).collect()
            })
            .collect();
        fields.truncate(self.n_species_written);
        fields.extend(ph);
        fields.extend(mri);
        fields.extend(fluorescence);
        fields.extend(self.masks.iter().cloned());
        fields
    }

    fn mri_field(&self, which: MriField, fields: &[Vec<f32>]) -> Vec<f32> {
        let m = self
            .mri_model
            .as_ref()
            .expect("validation requires [mri] for MRI fields");
        (0..self.tissue_of_voxel.len())
            .map(|v| {
                let t = self.tissue_of_voxel[v] as usize;
                let (mut r1, mut r2) = (1.0 / m.t1_0_s_by_tissue[t], 1.0 / m.t2_0_s_by_tissue[t]);
                for &(i, a1, a2) in &self.relaxers {
                    let c = fields[i][v].max(0.0) as f64;
                    r1 += a1 * c;
                    r2 += a2 * c;
                }
                let spin_echo = |(tr, te): (f64, f64)| {
                    m.rho_by_tissue[t] * (1.0 - (-tr * r1).exp()) * (-te * r2).exp()
                };
                (match which {
                    MriField::R1 => r1,
                    MriField::R2 => r2,
                    MriField::T1w => spin_echo(m.t1w_tr_te_s),
                    MriField::T2w => spin_echo(m.t2w_tr_te_s),
                }) as f32
            })
            .collect()
    }

    /// `FL`: Σ b·C·E·exp(−µ_em·d) per voxel (a.u. per µm of depth).
    fn emission(&self, fields: &[Vec<f32>]) -> Vec<f64> {
        (0..self.escape.len())
            .map(|v| {
                let e = self
                    .excitation
                    .map_or(1.0, |i| fields[i][v].max(0.0) as f64);
                let c: f64 = self
                    .fluorophores
                    .iter()
                    .map(|&(i, b)| b * fields[i][v].max(0.0) as f64)
                    .sum();
                c * e * self.escape[v]
            })
            .collect()
    }
}

/// exp(−µ·d) of each voxel (x fastest), d = the distance (µm) from the voxel's centre to
/// the face at the low (`max` false) or high end of `axis`.
fn escape_factors(grid: &Grid, axis: usize, max: bool, mu_per_um: f64) -> Vec<f64> {
    let shape = grid.shape();
    let n = shape[axis];
    (0..grid.n_voxels())
        .map(|v| {
            let ijk = [
                v % shape[0],
                (v / shape[0]) % shape[1],
                v / (shape[0] * shape[1]),
            ];
            let k = if max { n - 1 - ijk[axis] } else { ijk[axis] };
            (-mu_per_um * (k as f64 + 0.5) * grid.voxel_um).exp()
        })
        .collect()
}

/// Each voxel's column sum along `axis` times the voxel edge (µm): the integral through
/// the depth, the same in every voxel of the column.
fn column_sums(grid: &Grid, axis: usize, f: &[f64]) -> Vec<f64> {
    let shape = grid.shape();
    let stride = [1, shape[0], shape[0] * shape[1]][axis];
    let n = shape[axis];
    (0..f.len())
        .map(|v| {
            let k = (v / stride) % n;
            let first = v - k * stride;
            (0..n).map(|j| f[first + j * stride]).sum::<f64>() * grid.voxel_um
        })
        .collect()
}

/// pH = 3 − log10(H / mM) of a free-H+ field (mM); NaN where H ≤ 0.
pub fn ph_field(h_mm: &[f32]) -> Vec<f32> {
    h_mm.iter()
        .map(|&h| if h > 0.0 { 3.0 - h.log10() } else { f32::NAN })
        .collect()
}
