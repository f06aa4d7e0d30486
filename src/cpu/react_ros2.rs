//! The reaction step on the CPU: `chem::ros2` in every voxel, in parallel (rayon) over
//! chunks of voxels, [`LANES`] voxels at a time (`chem::lanes`, bit-identical to the scalar
//! reference). Twin of the `react` entry point of `shaders/react_ros2.wgsl`.

use rayon::prelude::*;

use crate::chem::lanes::{self, Chunk, LaneWorkspace, LANES};
use crate::chem::ros2::{self, Fault, Prepared, Workspace};
use crate::chem::Network;
use crate::model::{held_bit, TISSUE_ID_MASK};

/// Voxels per parallel task.
const CHUNK: usize = 4096;

/// How [`CpuChemistry::react`] integrates the voxels. Both give bit-identical results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReactPath {
    /// [`LANES`] voxels at a time through the batched integrator (`chem::lanes`).
    #[default]
    Lanes,
    /// One voxel at a time through the reference integrator [`ros2::integrate`] (kept for
    /// the tests that check the batched path against it, and for benchmarks).
    Scalar,
}

/// The network, its tapes and the per-voxel step-size memory.
pub struct CpuChemistry {
    pub net: Network,
    prep: Prepared,
    /// Which integrator `react` runs.
    pub path: ReactPath,
    /// Step size each voxel ended its last call with, s (0 = none yet).
    pub(crate) h_last: Vec<f64>,
    /// Sub-steps attempted over the run, all voxels.
    pub substeps_total: u64,
    /// Reaction calls over the run.
    pub calls: u64,
    /// Most sub-steps one voxel needed in one call.
    pub substeps_max: u32,
}

/// The first failing voxel of a call.
#[derive(Clone, Copy, Debug)]
pub struct VoxelFault {
    pub voxel: usize,
    pub fault: Fault,
}

impl CpuChemistry {
    pub fn new(net: Network, n_voxels: usize) -> CpuChemistry {
        let prep = Prepared::new(&net);
        CpuChemistry {
            net,
            prep,
            path: ReactPath::default(),
            h_last: vec![0.0; n_voxels],
            substeps_total: 0,
            calls: 0,
            substeps_max: 0,
        }
    }

    /// Step size each voxel ended its last call with, s (0 = none yet).
    pub fn h_last(&self) -> &[f64] {
        &self.h_last
    }

    /// Integrates every voxel over `interval_s`. On failure returns the lowest failing voxel;
    /// fields of other voxels are advanced regardless.
    pub fn react(
        &mut self,
        conc: &mut [Vec<f64>],
        mask: &[u32],
        interval_s: f64,
    ) -> Result<(), VoxelFault> {
        let net = &self.net;
        let prep = &self.prep;
        let bound = net.bound_species();
        let n_voxels = mask.len();
        let n_chunks = n_voxels.div_ceil(CHUNK);
        // Per chunk: the slice of every bound species (in `bound` order).
        let mut per_chunk: Vec<Vec<&mut [f64]>> = (0..n_chunks).map(|_| Vec::new()).collect();
        let mut bound_fields: Vec<(usize, &mut Vec<f64>)> = conc
            .iter_mut()
            .enumerate()
            .filter(|(s, _)| bound.contains(s))
            .collect();
        // Keep `bound` order (state, inputs, quasi-steady).
        bound_fields.sort_by_key(|(s, _)| bound.iter().position(|b| b == s));
        for (_, field) in bound_fields {
            for (c, slice) in field.chunks_mut(CHUNK).enumerate() {
                per_chunk[c].push(slice);
            }
        }
        let held_bits: Vec<u32> = net.state.iter().map(|&s| held_bit(s)).collect();
        let results: Vec<(u64, u32, Option<VoxelFault>)> = per_chunk
            .into_par_iter()
            .zip(self.h_last.par_chunks_mut(CHUNK))
            .zip(mask.par_chunks(CHUNK))
            .enumerate()
            .map(|(c, ((mut fields, h_last), mask))| {
                if self.path == ReactPath::Lanes {
                    let mut chunk = Chunk {
                        conc: fields,
                        mask,
                        h_last,
                    };
                    let mut ws = LaneWorkspace::<LANES>::new(net, prep);
                    let out = lanes::integrate_chunk(net, prep, &mut ws, &mut chunk, interval_s);
                    let first = out.fault.map(|(v, fault)| VoxelFault {
                        voxel: c * CHUNK + v,
                        fault,
                    });
                    return (out.substeps, out.substeps_max, first);
                }
                let mut ws = Workspace::new(net, &prep.tapes);
                let mut total = 0u64;
                let mut most = 0u32;
                let mut first: Option<VoxelFault> = None;
                for v in 0..mask.len() {
                    for (b, &s) in bound.iter().enumerate() {
                        ws.conc[s] = fields[b][v];
                    }
                    let m = mask[v];
                    let tissue = (m & TISSUE_ID_MASK) as usize;
                    let h0 = if h_last[v] > 0.0 {
                        h_last[v]
                    } else {
                        interval_s
                    };
                    let held = |i: usize| m & held_bits[i] != 0;
                    match ros2::integrate(net, prep, &mut ws, tissue, held, interval_s, h0) {
                        Ok(out) => {
                            total += out.substeps as u64;
                            most = most.max(out.substeps);
                            h_last[v] = out.h_next;
                        }
                        Err(fault) => {
                            if first.is_none() {
                                first = Some(VoxelFault {
                                    voxel: c * CHUNK + v,
                                    fault,
                                });
                            }
                        }
                    }
                    for (b, &s) in bound.iter().enumerate() {
                        if !net.inputs.contains(&s) {
                            fields[b][v] = ws.conc[s];
                        }
                    }
                }
                (total, most, first)
            })
            .collect();
        self.calls += 1;
        let mut fault = None;
        for (total, most, first) in results {
            self.substeps_total += total;
            self.substeps_max = self.substeps_max.max(most);
            if fault.is_none() {
                fault = first;
            }
        }
        match fault {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }
}
