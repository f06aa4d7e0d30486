//! The design of a sweep: axis spacings, Latin hypercube samples, the expansion into runs
//! (cartesian, zip, lhs) with stable run ids, and the listing and `sweep.json` of it.

use sha2::{Digest, Sha256};

use super::{Mode, Run, Spacing, Sweep};
use crate::random::SplitMix64;

/// `n` values from `lo` to `hi` evenly spaced; the ends are exactly `lo` and `hi`.
pub fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    match n {
        0 => vec![],
        1 => vec![lo],
        _ => (0..n)
            .map(|i| {
                if i + 1 == n {
                    hi
                } else {
                    lo + (hi - lo) * i as f64 / (n - 1) as f64
                }
            })
            .collect(),
    }
}

/// `n` values from `lo` to `hi` evenly spaced in log10; the ends are exactly `lo` and
/// `hi`, and the inner values are 10^(log10 lo + i·step) (0.01, 1, 3 → 0.01, 0.1, 1).
pub fn logspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let (a, b) = (lo.log10(), hi.log10());
    linspace(a, b, n)
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            if i == 0 {
                lo
            } else if i + 1 == n {
                hi
            } else {
                // Round to 15 significant digits so 10^-1 prints as 0.1, not 0.09999999999999999.
                let v = 10f64.powf(e);
                format!("{v:.14e}").parse().unwrap_or(v)
            }
        })
        .collect()
}

/// Latin hypercube samples: for each (lo, hi, log) range, `samples` values, one in each
/// of `samples` equal strata (in log10 for log ranges), the strata in a random order. The
/// same seed gives the same samples. Result: `[axis][sample]`.
pub fn latin_hypercube(ranges: &[(f64, f64, bool)], samples: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = SplitMix64::new(seed);
    ranges
        .iter()
        .map(|&(lo, hi, log)| {
            let mut strata: Vec<usize> = (0..samples).collect();
            for i in (1..samples).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                strata.swap(i, j);
            }
            let (a, b) = if log {
                (lo.log10(), hi.log10())
            } else {
                (lo, hi)
            };
            strata
                .into_iter()
                .map(|s| {
                    let u = (s as f64 + rng.next_f64()) / samples as f64;
                    let x = a + (b - a) * u;
                    if log {
                        10f64.powf(x)
                    } else {
                        x
                    }
                })
                .collect()
        })
        .collect()
}

/// The run id: `r0003-1a2b3c4d` (the index with at least 4 digits, then the first 8 hex
/// digits of the SHA-256 of the assignments written `key=value` one per line).
pub fn run_id(index: usize, assignments: &[(String, String)]) -> String {
    let mut text = String::new();
    for (k, v) in assignments {
        text.push_str(k);
        text.push('=');
        text.push_str(v);
        text.push('\n');
    }
    let hash = Sha256::digest(text.as_bytes());
    let hex: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("r{index:04}-{hex}")
}

impl Sweep {
    /// Every run, in index order.
    pub fn runs(&self) -> Vec<Run> {
        let n_axes = self.axes.len();
        let combos: Vec<Vec<usize>> = match self.mode {
            Mode::Zip | Mode::Lhs => (0..self.axes[0].values.len())
                .map(|i| vec![i; n_axes])
                .collect(),
            Mode::Cartesian => {
                let mut combos = vec![vec![]];
                for axis in &self.axes {
                    combos = combos
                        .into_iter()
                        .flat_map(|c| {
                            (0..axis.values.len()).map(move |i| {
                                let mut c = c.clone();
                                c.push(i);
                                c
                            })
                        })
                        .collect();
                }
                combos
            }
        };
        combos
            .into_iter()
            .enumerate()
            .map(|(index, c)| {
                let assignments: Vec<(String, String)> = self
                    .axes
                    .iter()
                    .zip(&c)
                    .map(|(a, &i)| (a.key.clone(), a.values[i].text.clone()))
                    .collect();
                Run {
                    index,
                    run_id: run_id(index, &assignments),
                    assignments,
                }
            })
            .collect()
    }

    /// `sweep.json`: the expansion (ids, assignments), the base and the fixed sets. The
    /// same sweep file gives the same bytes on every worker.
    pub fn json(&self) -> String {
        let runs = self.runs();
        let axes: Vec<serde_json::Value> = self
            .axes
            .iter()
            .map(|a| {
                let (spacing, lo, hi) = match a.spacing {
                    Spacing::List => ("list", None, None),
                    Spacing::Linear { lo, hi, .. } => ("linear", Some(lo), Some(hi)),
                    Spacing::Log { lo, hi, .. } => ("log", Some(lo), Some(hi)),
                };
                serde_json::json!({
                    "key": a.key,
                    "spacing": spacing,
                    "lo": lo,
                    "hi": hi,
                    "values": a.values.iter().map(|v| v.text.clone()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let runs: Vec<serde_json::Value> = runs
            .iter()
            .map(|r| {
                let mut assignments = serde_json::Map::new();
                for (k, v) in &r.assignments {
                    assignments.insert(k.clone(), serde_json::Value::String(v.clone()));
                }
                serde_json::json!({
                    "index": r.index,
                    "run_id": r.run_id,
                    "assignments": assignments,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "name": self.name,
            "base": self.base,
            "set": self.set,
            "mode": self.mode,
            "seed": (self.mode == Mode::Lhs).then_some(self.seed),
            "samples": (self.mode == Mode::Lhs).then_some(self.samples),
            "axes": axes,
            "runs": runs,
        });
        let mut text = serde_json::to_string_pretty(&doc).expect("JSON values serialise");
        text.push('\n');
        text
    }

    /// `--list`: a header line, then `<index> <run_id> <key>=<value> ...` per run.
    pub fn listing(&self) -> String {
        self.listing_of(super::Shard::ALL)
    }

    /// `--list` of one worker's share: the header (which also gives the shard when it is
    /// not all runs), then the runs of `shard` only.
    pub fn listing_of(&self, shard: super::Shard) -> String {
        let runs = self.runs();
        let mine: Vec<&Run> = runs.iter().filter(|r| shard.contains(r.index)).collect();
        let share = if shard.count > 1 {
            format!(
                "; shard {}/{}: {} of them",
                shard.index,
                shard.count,
                mine.len()
            )
        } else {
            String::new()
        };
        let mut text = format!(
            "# sweep {}: {} runs ({} mode) on base {}{share}; index run_id assignments\n",
            self.name,
            runs.len(),
            match self.mode {
                Mode::Cartesian => "cartesian",
                Mode::Zip => "zip",
                Mode::Lhs => "lhs",
            },
            self.base
        );
        for r in mine {
            text.push_str(&format!("{} {}", r.index, r.run_id));
            for s in r.sets() {
                text.push(' ');
                text.push_str(&s);
            }
            text.push('\n');
        }
        text
    }
}
