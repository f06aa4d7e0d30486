//! Output times and the steps between them. Output times are exact: the step before an
//! output (or the end) is shortened to land on it.

use crate::config::TimeSpec;

/// Stops of the time loop: output times (t = 0, every `output_interval_s`, `end_s`) plus
/// any extra stops (doses, summaries) merged in with [`OutputSchedule::with_stops`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutputSchedule {
    /// Every stop, increasing.
    pub times_s: Vec<f64>,
    /// Whether the stop at the same index is an output time (files are written).
    pub is_output: Vec<bool>,
    /// Whether the loop must land on the stop at the same index. Outputs, doses and
    /// callback times are exact; summary stops are not: an engine with dense output (the
    /// coupled scheme) steps over them and the fields there are interpolated within the step
    /// (see [`crate::engine::Engine::read_fields_before`]).
    pub exact: Vec<bool>,
    pub dt_s: f64,
}

/// A run of equal steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Segment {
    pub n_steps: u64,
    pub dt_s: f64,
}

impl OutputSchedule {
    pub fn new(time: &TimeSpec) -> OutputSchedule {
        let times_s = time.output_times_s();
        OutputSchedule {
            is_output: vec![true; times_s.len()],
            exact: vec![true; times_s.len()],
            times_s,
            dt_s: time.dt_s,
        }
    }

    /// Adds exact stops that are not outputs (dose and callback times) inside [0, end]; a
    /// stop within 1e-9·dt of an existing one (or of another added one) is merged with it.
    /// Sorts and merges once: O((n + m) log m) for m added stops, so a million summary
    /// stops cost milliseconds.
    pub fn with_stops(self, extra: impl IntoIterator<Item = f64>) -> OutputSchedule {
        self.merge(extra, true)
    }

    /// Adds summary stops (not outputs, not exact: an adaptive engine with dense output may
    /// step over them) inside [0, end]; one that merges with an exact stop stays exact.
    pub fn with_summary_stops(self, extra: impl IntoIterator<Item = f64>) -> OutputSchedule {
        self.merge(extra, false)
    }

    fn merge(self, extra: impl IntoIterator<Item = f64>, exact: bool) -> OutputSchedule {
        let end = *self.times_s.last().expect("a schedule has t = 0");
        let tol = 1e-9 * self.dt_s;
        let mut added: Vec<f64> = extra
            .into_iter()
            .filter(|t| (0.0..=end).contains(t))
            .collect();
        added.sort_by(f64::total_cmp);
        let n = self.times_s.len() + added.len();
        let mut times_s = Vec::with_capacity(n);
        let mut is_output = Vec::with_capacity(n);
        let mut is_exact: Vec<bool> = Vec::with_capacity(n);
        let mut old = self
            .times_s
            .iter()
            .zip(&self.is_output)
            .zip(&self.exact)
            .peekable();
        let mut new = added.into_iter().peekable();
        loop {
            let take_old = match (old.peek(), new.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(((&o, _), _)), Some(&n)) => o <= n + tol,
            };
            if take_old {
                let ((&t, &out), &ex) = old.next().expect("peeked");
                times_s.push(t);
                is_output.push(out);
                is_exact.push(ex);
            } else {
                let t = new.next().expect("peeked");
                let near_next = old.peek().is_some_and(|((&o, _), _)| (o - t).abs() <= tol);
                let near_last = times_s.last().is_some_and(|&l: &f64| (t - l).abs() <= tol);
                if near_last {
                    *is_exact.last_mut().expect("a last stop") |= exact;
                } else if !near_next {
                    times_s.push(t);
                    is_output.push(false);
                    is_exact.push(exact);
                }
            }
        }
        OutputSchedule {
            times_s,
            is_output,
            exact: is_exact,
            dt_s: self.dt_s,
        }
    }

    /// Output times only.
    pub fn output_times(&self) -> impl Iterator<Item = f64> + '_ {
        self.times_s
            .iter()
            .zip(&self.is_output)
            .filter(|(_, &o)| o)
            .map(|(&t, _)| t)
    }

    /// Steps from `t0_s` to `t1_s`: whole steps of dt, then one shortened step if needed.
    pub fn segments(&self, t0_s: f64, t1_s: f64) -> Vec<Segment> {
        let span = t1_s - t0_s;
        let ratio = span / self.dt_s;
        let whole = (ratio + 1e-9).floor();
        let mut out = Vec::new();
        if whole >= 1.0 {
            out.push(Segment {
                n_steps: whole as u64,
                dt_s: self.dt_s,
            });
        }
        let rest = span - whole * self.dt_s;
        if rest > 1e-9 * self.dt_s {
            out.push(Segment {
                n_steps: 1,
                dt_s: rest,
            });
        }
        out
    }

    /// Model time at `pos` (a stop, or a batch boundary after stop `pos.stops_done − 1`), s.
    pub fn time_at(&self, pos: super::Position) -> f64 {
        // The adaptive loop (coupled scheme) keeps the model time itself.
        if pos.time_s > 0.0 {
            return pos.time_s;
        }
        let Some(i) = pos.stops_done.checked_sub(1) else {
            return 0.0;
        };
        let Some(&next) = self.times_s.get(i + 1) else {
            return self.times_s[i];
        };
        let before: u64 = self.times_s[..=i]
            .windows(2)
            .flat_map(|w| self.segments(w[0], w[1]))
            .map(|s| s.n_steps)
            .sum();
        let segments = self.segments(self.times_s[i], next);
        let mut skip = pos.step.saturating_sub(before);
        if skip >= segments.iter().map(|s| s.n_steps).sum::<u64>() {
            return next;
        }
        let mut t = self.times_s[i];
        for seg in segments {
            let n = skip.min(seg.n_steps);
            t += n as f64 * seg.dt_s;
            skip -= n;
        }
        t
    }

    /// Total number of steps of the run.
    pub fn n_steps(&self) -> u64 {
        self.times_s
            .windows(2)
            .flat_map(|w| self.segments(w[0], w[1]))
            .map(|s| s.n_steps)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_land_on_interval_and_end() {
        let s = OutputSchedule::new(&TimeSpec {
            dt_s: 1.0,
            end_s: 250.0,
            output_interval_s: 100.0,
            theta: 1.0,
            max_diffusion_r: None,
            scheme: Default::default(),
        });
        assert_eq!(s.times_s, vec![0.0, 100.0, 200.0, 250.0]);
        assert_eq!(s.n_steps(), 250);
        let s = s.with_stops([50.0, 100.0, 300.0, 0.5]);
        assert_eq!(s.times_s, vec![0.0, 0.5, 50.0, 100.0, 200.0, 250.0]);
        assert_eq!(s.is_output, [true, false, false, true, true, true]);
        assert_eq!(s.output_times().count(), 4);
        assert_eq!(s.n_steps(), 251, "the stop at 0.5 s splits one step in two");
    }

    /// The merge gives what inserting one stop at a time gives (the former algorithm),
    /// and a million summary stops take well under a second.
    #[test]
    fn merged_stops_match_one_by_one_insertion_and_scale() {
        let naive = |mut s: OutputSchedule, extra: &[f64]| {
            let end = *s.times_s.last().unwrap();
            let tol = 1e-9 * s.dt_s;
            for &t in extra {
                if !(0.0..=end).contains(&t) || s.times_s.iter().any(|&x| (x - t).abs() <= tol) {
                    continue;
                }
                let at = s.times_s.partition_point(|&x| x < t);
                s.times_s.insert(at, t);
                s.is_output.insert(at, false);
                s.exact.insert(at, true);
            }
            s
        };
        let base = OutputSchedule::new(&TimeSpec {
            dt_s: 0.5,
            end_s: 600.0,
            output_interval_s: 120.0,
            theta: 1.0,
            max_diffusion_r: None,
            scheme: Default::default(),
        });
        let mut rng = crate::random::SplitMix64::new(11);
        for _ in 0..200 {
            // Times on a coarse lattice (so duplicates and hits on outputs occur), some
            // nudged within the tolerance, some outside [0, end].
            let extra: Vec<f64> = (0..20)
                .map(|_| {
                    let t = (rng.below(70) as f64 - 2.0) * 10.0;
                    match rng.below(3) {
                        0 => t + 1e-10,
                        1 => t - 1e-10,
                        _ => t,
                    }
                })
                .collect();
            let a = base.clone().with_stops(extra.iter().copied());
            let b = naive(base.clone(), &extra);
            assert_eq!(a.is_output, b.is_output, "{extra:?}");
            assert_eq!(a.times_s.len(), b.times_s.len(), "{extra:?}");
            for (x, y) in a.times_s.iter().zip(&b.times_s) {
                assert!((x - y).abs() <= 1e-9, "{x} vs {y} for {extra:?}");
            }
        }
        let t0 = std::time::Instant::now();
        let big = base
            .clone()
            .with_stops((1..1_000_000).map(|k| k as f64 * 6e-4));
        // Every added time is new except the four that land on 120, 240, 360 and 480 s.
        assert_eq!(big.times_s.len(), base.times_s.len() + 999_999 - 4);
        assert!(big.times_s.windows(2).all(|w| w[0] < w[1]));
        assert!(t0.elapsed().as_secs_f64() < 5.0, "{:?}", t0.elapsed());
    }

    /// Summary stops are not exact unless they merge with an exact stop, in either order.
    #[test]
    fn summary_stops_are_inexact_unless_merged_with_an_exact_one() {
        let s = OutputSchedule::new(&TimeSpec {
            dt_s: 1.0,
            end_s: 300.0,
            output_interval_s: 100.0,
            theta: 1.0,
            max_diffusion_r: None,
            scheme: Default::default(),
        })
        .with_stops([30.0])
        .with_summary_stops([30.0, 50.0, 100.0, 150.0, 250.0])
        .with_stops([150.0]);
        assert_eq!(
            s.times_s,
            [0.0, 30.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0]
        );
        assert_eq!(s.exact, [true, true, false, true, true, true, false, true]);
        assert_eq!(
            s.is_output,
            [true, false, false, true, false, true, false, true]
        );
    }

    #[test]
    fn last_step_is_shortened_to_hit_the_end() {
        let s = OutputSchedule::new(&TimeSpec {
            dt_s: 0.3,
            end_s: 1.0,
            output_interval_s: 0.9,
            theta: 1.0,
            max_diffusion_r: None,
            scheme: Default::default(),
        });
        assert_eq!(s.times_s.len(), 3);
        let seg = s.segments(0.9, 1.0);
        assert_eq!(seg.len(), 1);
        assert!((seg[0].dt_s - 0.1).abs() < 1e-12);
        assert_eq!(s.segments(0.0, 0.9)[0].n_steps, 3);
    }
}
