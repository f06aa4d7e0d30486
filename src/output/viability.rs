//! Cell viability summaries (docs/scientific-model.md §4–5): the viable fraction of each tissue over time
//! (`viability.csv`) and the per-voxel time of death.
//!
//! The voxels of a tissue are those of [`Model::summary_tissue`] (vessel and other held
//! voxels left out), as in `timeseries.csv`, so both files give the same tissue means.
//!
//! A voxel counts as dead (necrotic) once its viable fraction `viab` falls below
//! [`NECROSIS_THRESHOLD`]; its time of death is the first summary time at which that is
//! seen, so it is resolved to the summary interval (at most 60 s of model time).

use crate::model::Model;

/// `viab` below this = necrotic (docs/scientific-model.md §4: "viable fraction below 0.05").
pub const NECROSIS_THRESHOLD: f32 = 0.05;

/// The rows and latest summary of a [`ViabilityTracker`], for checkpoints (the time of
/// death, a per-voxel array, is saved separately).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ViabilityState {
    rows: Vec<String>,
    latest: Vec<(String, f64, f64)>,
    latest_time_s: f64,
}

/// Tracks `viab` across the summary times of a run.
pub struct ViabilityTracker {
    /// Species index of `viab`.
    pub species: usize,
    /// Tissue id of each voxel that counts ([`Model::summary_tissue`]), else `None`.
    tissue_of_voxel: Vec<Option<u8>>,
    tissue_names: Vec<String>,
    /// Voxels per tissue id.
    voxels: Vec<usize>,
    /// Model time at which each voxel was first seen below the threshold, s; NaN = alive.
    pub time_of_death_s: Vec<f32>,
    /// CSV rows so far.
    rows: Vec<String>,
    /// (tissue name, mean viab, alive fraction) at the latest time.
    latest: Vec<(String, f64, f64)>,
    latest_time_s: f64,
}

impl ViabilityTracker {
    pub fn new(species: usize, model: &Model, tissue_names: &[String]) -> ViabilityTracker {
        let tissue_of_voxel: Vec<Option<u8>> = (0..model.mask.len())
            .map(|ix| model.summary_tissue(ix).map(|t| t as u8))
            .collect();
        let mut voxels = vec![0; tissue_names.len()];
        for t in tissue_of_voxel.iter().flatten() {
            voxels[*t as usize] += 1;
        }
        ViabilityTracker {
            species,
            tissue_of_voxel,
            tissue_names: tissue_names.to_vec(),
            voxels,
            time_of_death_s: vec![f32::NAN; model.grid.n_voxels()],
            rows: Vec::new(),
            latest: Vec::new(),
            latest_time_s: 0.0,
        }
    }

    /// The summaries so far (see [`ViabilityState`]).
    pub fn state(&self) -> ViabilityState {
        ViabilityState {
            rows: self.rows.clone(),
            latest: self.latest.clone(),
            latest_time_s: self.latest_time_s,
        }
    }

    /// Continues from a checkpoint: its summaries and per-voxel time of death (s, NaN =
    /// alive); the time of death must have one value per voxel.
    pub fn restore(
        &mut self,
        state: ViabilityState,
        time_of_death_s: Vec<f32>,
    ) -> Result<(), String> {
        if time_of_death_s.len() != self.time_of_death_s.len() {
            return Err(format!(
                "time of death has {} values, the grid has {} voxels",
                time_of_death_s.len(),
                self.time_of_death_s.len()
            ));
        }
        self.rows = state.rows;
        self.latest = state.latest;
        self.latest_time_s = state.latest_time_s;
        self.time_of_death_s = time_of_death_s;
        Ok(())
    }

    /// Records the `viab` field at `time_s`.
    pub fn record(&mut self, time_s: f64, viab: &[f32]) {
        let n_t = self.tissue_names.len();
        let mut sum = vec![0f64; n_t];
        let mut alive = vec![0usize; n_t];
        for (ix, (&v, &t)) in viab.iter().zip(&self.tissue_of_voxel).enumerate() {
            let Some(t) = t else { continue };
            let t = t as usize;
            sum[t] += v as f64;
            if v >= NECROSIS_THRESHOLD {
                alive[t] += 1;
            } else if self.time_of_death_s[ix].is_nan() {
                self.time_of_death_s[ix] = time_s as f32;
            }
        }
        self.latest.clear();
        for t in 0..n_t {
            let n = self.voxels[t];
            if n == 0 {
                continue;
            }
            let mean = sum[t] / n as f64;
            let alive_fraction = alive[t] as f64 / n as f64;
            self.rows.push(format!(
                "{time_s},{},{n},{mean:.6},{alive_fraction:.6},{}",
                self.tissue_names[t],
                n - alive[t]
            ));
            self.latest
                .push((self.tissue_names[t].clone(), mean, alive_fraction));
        }
        self.latest_time_s = time_s;
    }

    /// `viability.csv`: one row per summary time and tissue.
    pub fn csv(&self) -> String {
        let mut text =
            String::from("time_s,tissue,voxels,mean_viab,alive_fraction,necrotic_voxels\n");
        for r in &self.rows {
            text.push_str(r);
            text.push('\n');
        }
        text
    }

    /// Lines for the end-of-run log.
    pub fn final_summary(&self) -> Vec<String> {
        self.latest
            .iter()
            .map(|(name, mean, alive)| {
                format!(
                    "viability at t = {} s, {name}: mean viable fraction {mean:.4}, {:.2} % of voxels alive (viab ≥ {NECROSIS_THRESHOLD})",
                    self.latest_time_s,
                    100.0 * alive
                )
            })
            .collect()
    }
}
