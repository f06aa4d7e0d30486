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
            times_s,
            dt_s: time.dt_s,
        }
    }

    /// Adds stops that are not outputs (dose times, summary times) inside [0, end]; a stop
    /// within 1e-9·dt of an existing one is merged with it.
    pub fn with_stops(mut self, extra: impl IntoIterator<Item = f64>) -> OutputSchedule {
        let end = *self.times_s.last().expect("a schedule has t = 0");
        let tol = 1e-9 * self.dt_s;
        for t in extra {
            if !(0.0..=end).contains(&t) || self.times_s.iter().any(|&s| (s - t).abs() <= tol) {
                continue;
            }
            let at = self.times_s.partition_point(|&s| s < t);
            self.times_s.insert(at, t);
            self.is_output.insert(at, false);
        }
        self
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
        });
        assert_eq!(s.times_s, vec![0.0, 100.0, 200.0, 250.0]);
        assert_eq!(s.n_steps(), 250);
        let s = s.with_stops([50.0, 100.0, 300.0, 0.5]);
        assert_eq!(s.times_s, vec![0.0, 0.5, 50.0, 100.0, 200.0, 250.0]);
        assert_eq!(s.is_output, [true, false, false, true, true, true]);
        assert_eq!(s.output_times().count(), 4);
        assert_eq!(s.n_steps(), 251, "the stop at 0.5 s splits one step in two");
    }

    #[test]
    fn last_step_is_shortened_to_hit_the_end() {
        let s = OutputSchedule::new(&TimeSpec {
            dt_s: 0.3,
            end_s: 1.0,
            output_interval_s: 0.9,
            theta: 1.0,
            max_diffusion_r: None,
        });
        assert_eq!(s.times_s.len(), 3);
        let seg = s.segments(0.9, 1.0);
        assert_eq!(seg.len(), 1);
        assert!((seg[0].dt_s - 0.1).abs() < 1e-12);
        assert_eq!(s.segments(0.0, 0.9)[0].n_steps, 3);
    }
}
