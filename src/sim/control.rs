//! Callbacks that steer a run rather than write it: checkpoints every so many model
//! seconds, a stop at a model time, a stop on SIGINT/SIGTERM, and the progress bar (spin-up
//! included) with its plain-log twin.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::callback::{Action, Callback, CallbackError, Fields, Schedule, SpinUpStatus, Status};
use super::Stop;
use crate::config::duration::human;
use crate::config::Scenario;

/// A checkpoint at every multiple of `every_s` of model time (not at the end).
pub struct CheckpointEvery {
    every_s: f64,
    next_s: f64,
    end_s: f64,
    tol_s: f64,
}

impl CheckpointEvery {
    /// Checkpoints every `every_s` s of model time, the first after `from_s` (0 for a new
    /// run, the resume time for a resumed one); `end_s` and `dt_s` are the run's.
    pub fn new(every_s: f64, from_s: f64, end_s: f64, dt_s: f64) -> CheckpointEvery {
        let mut c = CheckpointEvery {
            every_s,
            next_s: 0.0,
            end_s,
            tol_s: 1e-9 * dt_s,
        };
        c.next_s = c.next_after(from_s);
        c
    }

    /// The first multiple of `every_s` after `time_s`.
    fn next_after(&self, time_s: f64) -> f64 {
        ((time_s / self.every_s + 1e-9).floor() + 1.0) * self.every_s
    }
}

impl Callback for CheckpointEvery {
    fn name(&self) -> &str {
        "checkpoint_every"
    }
    fn schedule(&self) -> Schedule {
        Schedule::BatchesOnly
    }
    fn on_batch(&mut self, s: &Status) -> Action {
        if s.time_s >= self.next_s - self.tol_s && s.time_s < self.end_s - self.tol_s {
            Action::Checkpoint
        } else {
            Action::Continue
        }
    }
    fn on_checkpoint(&mut self, _: &[u8], s: &Status) -> Result<(), CallbackError> {
        self.next_s = self.next_after(s.time_s);
        Ok(())
    }
}

/// Stops the run with a checkpoint at the first batch boundary at or after `at_s`.
pub struct StopAt {
    at_s: f64,
    tol_s: f64,
}

impl StopAt {
    pub fn new(at_s: f64, dt_s: f64) -> StopAt {
        StopAt {
            at_s,
            tol_s: 1e-9 * dt_s,
        }
    }
}

impl Callback for StopAt {
    fn name(&self) -> &str {
        "stop_at"
    }
    fn schedule(&self) -> Schedule {
        Schedule::BatchesOnly
    }
    fn on_batch(&mut self, s: &Status) -> Action {
        if s.time_s >= self.at_s - self.tol_s {
            Action::Stop
        } else {
            Action::Continue
        }
    }
}

/// Stops the run with a checkpoint after SIGINT or SIGTERM, at the next batch boundary.
pub struct SignalStop {
    flag: Arc<AtomicBool>,
    /// The handlers, removed when the stop is dropped (the run is over): a process that
    /// goes on after a run (the Python package) gets its own signal handling back.
    ids: Vec<signal_hook::SigId>,
}

impl Drop for SignalStop {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

impl SignalStop {
    /// Installs the handlers. A second signal while the first is handled ends the process
    /// at once (exit 1), unless `forwarded`: under `ionfield sweep` the parent forwards
    /// the signal it got and Slurm may also signal the child directly, so a second signal
    /// must not end the run unsaved; inside Python a second Ctrl-C must not end the
    /// interpreter. Handlers installed before (Python's own) still run.
    pub fn install(forwarded: bool) -> Result<SignalStop, String> {
        let flag = Arc::new(AtomicBool::new(false));
        let mut stop = SignalStop {
            flag: Arc::clone(&flag),
            ids: Vec::new(),
        };
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let error = |e| format!("cannot install a signal handler: {e}");
            if !forwarded {
                stop.ids.push(
                    signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&flag))
                        .map_err(error)?,
                );
            }
            stop.ids
                .push(signal_hook::flag::register(sig, Arc::clone(&flag)).map_err(error)?);
        }
        Ok(stop)
    }

    /// The flag the handlers set: true once a signal arrived.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.flag)
    }
}

impl Callback for SignalStop {
    fn name(&self) -> &str {
        "signal_stop"
    }
    fn schedule(&self) -> Schedule {
        Schedule::BatchesOnly
    }
    fn on_spin_up(&mut self, s: &SpinUpStatus) -> Action {
        if self.flag.load(Ordering::SeqCst) {
            eprintln!(
                "signal received during the spin-up ({:.0} s of {} s): stopping",
                s.step as f64 * s.dt_s,
                s.duration_s
            );
            Action::Stop
        } else {
            Action::Continue
        }
    }
    fn on_batch(&mut self, s: &Status) -> Action {
        if self.flag.load(Ordering::SeqCst) {
            eprintln!(
                "signal received: writing a checkpoint at t = {} s",
                s.time_s
            );
            Action::Stop
        } else {
            Action::Continue
        }
    }
}

/// Progress of a run, spin-up included: a bar on a terminal, else (stderr redirected to a
/// file or a batch system's log) a log line at every tenth of the spin-up, at every output
/// time and at least every [`Progress::LOG_EVERY_S`] of wall time. Both show the model time
/// in the unit that fits (s, min, h, d), dt, the steps and an ETA from the pace so far.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    plan: ProgressPlan,
    started: Instant,
    /// Bar position (spin-up and run steps) when this process started counting.
    start_pos: u64,
    /// Bar position now.
    pos: u64,
    /// When the last plain log line was written, and the last tenth of the spin-up logged.
    last_log: Instant,
    spin_tenths: u64,
    /// The last output time written, s.
    last_output_s: Option<f64>,
    /// Two (wall time, bar position) samples at least [`Progress::PACE_WINDOW_S`] apart:
    /// an adaptive run's ETA goes at the pace between the older one and now, since its
    /// steps lengthen as it goes (the pace of the first, millisecond steps would say days).
    pace: [(Instant, u64); 2],
    /// The adaptive integrator's next step, s, as last reported.
    next_step_s: Option<f64>,
    /// Where the plain lines go instead of the log (and of the bar): the Python package's
    /// progress callback.
    sink: Option<ProgressSink>,
}

/// Receives each progress line of a [`Progress`] (what the plain log would print).
pub type ProgressSink = Box<dyn FnMut(&str)>;

/// What [`Progress`] shows the progress of.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgressPlan {
    /// Steps of the spin-up still to run (0 without one, or when resuming).
    pub spin_up_steps: u64,
    /// Steps of the run (from t = 0 to the end), the step reached (a resumed run's
    /// checkpoint), the run's dt and end, s.
    pub steps: u64,
    pub start_step: u64,
    pub dt_s: f64,
    pub end_s: f64,
    /// The coupled scheme chooses its own steps: the bar then follows model time (in
    /// steps of `dt_s`) and the messages count accepted steps without a total.
    pub adaptive: bool,
    /// Longest step the adaptive run can take, s: `time.max_dt_s`, and no step passes an
    /// output time (∞ when neither bounds it).
    pub max_step_s: f64,
    /// Dose times, s: an adaptive run's steps shrink at each and grow again after it.
    pub dose_times_s: Vec<f64>,
}

impl ProgressPlan {
    /// The plan of `scenario`'s run of `total_steps` steps from `start_step`, with its
    /// spin-up when `with_spin_up` (a new run; a resumed one has done it).
    pub fn new(scenario: &Scenario, total_steps: u64, start_step: u64, with_spin_up: bool) -> Self {
        let spin = scenario.spin_up.filter(|_| with_spin_up);
        let max_dt_s = match scenario.time.scheme {
            crate::config::Scheme::Coupled { max_dt_s, .. } => max_dt_s,
            crate::config::Scheme::Split => None,
        };
        ProgressPlan {
            spin_up_steps: spin.map_or(0, |s| s.n_steps()),
            steps: total_steps,
            start_step,
            dt_s: scenario.time.dt_s,
            end_s: scenario.time.end_s,
            adaptive: scenario.time.scheme != crate::config::Scheme::Split,
            max_step_s: max_dt_s
                .unwrap_or(f64::INFINITY)
                .min(scenario.time.output_interval_s),
            dose_times_s: scenario.doses.iter().map(|d| d.time_s).collect(),
        }
    }

    /// Model time at bar position `pos`, s since the start of the transient it lies in
    /// (the spin-up's start, or the last dose at or before it in the run, or t = 0),
    /// and the length of that transient's phase from its start to its end, s.
    fn transient(&self, pos: u64) -> (f64, f64, f64) {
        if pos < self.spin_up_steps {
            let t = pos as f64 * self.dt_s;
            return (t, 0.0, self.spin_up_steps as f64 * self.dt_s);
        }
        let t = (pos - self.spin_up_steps) as f64 * self.dt_s;
        let origin = self
            .dose_times_s
            .iter()
            .copied()
            .filter(|&d| d <= t)
            .fold(0.0, f64::max);
        (t, origin, self.end_s)
    }

    /// Bar position of the run at model time `time_s` after `step` steps.
    fn run_pos(&self, time_s: f64, step: u64) -> u64 {
        if self.adaptive {
            self.spin_up_steps + (time_s / self.dt_s).round() as u64
        } else {
            self.spin_up_steps + step
        }
    }

    /// Bar length: spin-up and run steps.
    fn len(&self) -> u64 {
        self.spin_up_steps + self.steps
    }
}

/// Wall time to go of an adaptive run, s: `wall_s` of wall time took the run from
/// `then_s` to `now_s` s after the start of its transient (a dose, or the spin-up's start),
/// and the rest goes to `end_s`. After a dose the error control lets the step grow about in
/// proportion to the time since (1 ms, then seconds, minutes, hours), so the pace in model
/// time overstates the rest (on the 64³ day of BENCHMARKS.md, stop 17, 2.4–2.5× from each
/// doubling of model time between 1 and 12 h) and the pace per factor of model time
/// understates it early (0.40× from 2 h, 1.45× from 12 h). The forecast is the geometric
/// mean of the two: 0.98×, 1.29×, 1.57× and 1.93× of what the rest took from 2, 4, 8 and
/// 12 h. `None` when the window starts at the transient's start.
pub fn adaptive_eta_s(wall_s: f64, then_s: f64, now_s: f64, end_s: f64) -> Option<f64> {
    (then_s > 0.0 && now_s > then_s && wall_s > 0.0).then(|| {
        let rest = (end_s - now_s).max(0.0);
        let linear = wall_s * rest / (now_s - then_s);
        let log = wall_s * ((now_s + rest) / now_s).ln() / (now_s / then_s).ln();
        (linear * log).sqrt()
    })
}

/// A wall-clock duration for people: `45 s`, `12 min 5 s`, `3 h 20 min`, `2 d 4 h`.
pub fn wall_duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    let (d, h, m, sec) = (s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min {sec} s")
    } else {
        format!("{sec} s")
    }
}

impl Progress {
    /// Plain log lines at least this often (wall time, s) while the run goes on.
    pub const LOG_EVERY_S: f64 = 60.0;

    /// Wall time between the pace samples of an adaptive run's ETA, s.
    const PACE_WINDOW_S: f64 = 60.0;

    /// Starts at the plan's start: the spin-up's first step, or the run's `start_step`.
    pub fn new(plan: ProgressPlan) -> Progress {
        let start_pos = if plan.spin_up_steps > 0 {
            0
        } else {
            plan.spin_up_steps + plan.start_step
        };
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(plan.len());
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {percent:>3}% {msg}",
                )
                .expect("static template is valid")
                .progress_chars("=> "),
            );
            bar.set_position(start_pos);
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            plan,
            started: now,
            start_pos,
            pos: start_pos,
            last_log: now,
            spin_tenths: 0,
            last_output_s: None,
            pace: [(now, start_pos); 2],
            next_step_s: None,
            sink: None,
        }
    }

    /// Like [`Progress::new`], but every line goes to `sink` (no bar, no log).
    pub fn with_sink(plan: ProgressPlan, sink: ProgressSink) -> Progress {
        let mut p = Progress::new(plan);
        p.bar = None;
        p.sink = Some(sink);
        p
    }

    /// Wall time to the end at the pace since this process started, s (`None` before
    /// the first steps).
    fn eta_s(&self) -> Option<f64> {
        let (from, from_pos) = if self.plan.adaptive {
            self.pace[0]
        } else {
            (self.started, self.start_pos)
        };
        let done = self.pos.saturating_sub(from_pos);
        let elapsed = from.elapsed().as_secs_f64();
        let linear = (done > 0 && elapsed > 0.0)
            .then(|| elapsed / done as f64 * self.plan.len().saturating_sub(self.pos) as f64);
        if !self.plan.adaptive {
            return linear;
        }
        // An adaptive run: to the end of the phase it is in (the spin-up's end during
        // the spin-up, the run's end after it). At its longest step the model time goes
        // linearly; before, it goes in factors of the time since the transient started.
        let (now_s, origin_s, end_s) = self.plan.transient(self.pos);
        // (The spin-up has no output times: its step is not capped by them.)
        let capped = self.pos >= self.plan.spin_up_steps
            && self
                .next_step_s
                .is_some_and(|h| h >= 0.9 * self.plan.max_step_s);
        if capped {
            return linear;
        }
        let (then_s, then_origin_s, _) = self.plan.transient(from_pos);
        let same_transient = then_origin_s == origin_s
            && (from_pos < self.plan.spin_up_steps) == (self.pos < self.plan.spin_up_steps);
        if !same_transient {
            return None;
        }
        adaptive_eta_s(
            elapsed,
            then_s - origin_s,
            now_s - origin_s,
            end_s - origin_s,
        )
    }

    fn eta(&self) -> String {
        self.eta_s()
            .map_or("eta …".into(), |s| format!("eta {}", wall_duration(s)))
    }

    /// `spin-up 1.5 min of 5 min, dt 0.5 s, eta 3 min 10 s`; an adaptive spin-up shows
    /// its current step and the time to its own end (`…, dt 12 s (adaptive), eta of the
    /// spin-up 40 s`): the run's steps are not known before the run's first dose.
    fn spin_up_message(&self, s: &SpinUpStatus) -> String {
        let t = human(s.step as f64 * s.dt_s);
        let of = human(s.duration_s);
        if self.plan.adaptive {
            return format!(
                "spin-up {t} of {of}, {}, {} of the spin-up",
                adaptive_dt(self.next_step_s),
                self.eta()
            );
        }
        format!("spin-up {t} of {of}, dt {}, {}", human(s.dt_s), self.eta())
    }

    /// `t = 3.25 h of 24 h, dt 0.5 s, step 23400/172800, eta 1 h 5 min`.
    fn run_message(&self, time_s: f64, step: u64) -> String {
        let written = self
            .last_output_s
            .map(|t| format!(", output t = {} written", human(t)))
            .unwrap_or_default();
        if self.plan.adaptive {
            return format!(
                "t = {} of {}, {}, {step} steps, {}{written}",
                human(time_s),
                human(self.plan.end_s),
                adaptive_dt(self.next_step_s),
                self.eta()
            );
        }
        format!(
            "t = {} of {}, dt {}, step {step}/{}, {}{written}",
            human(time_s),
            human(self.plan.end_s),
            human(self.plan.dt_s),
            self.plan.steps,
            self.eta()
        )
    }

    /// Shows `msg` at bar position `pos`: on the bar, or as a log line when `log`.
    fn show(&mut self, pos: u64, msg: String, log: bool) {
        self.set_pos(pos);
        match &self.bar {
            Some(b) => {
                b.set_position(pos);
                b.set_message(msg);
            }
            None if log => {
                self.last_log = Instant::now();
                let line = format!(
                    "{msg} ({} wall)",
                    wall_duration(self.started.elapsed().as_secs_f64())
                );
                match &mut self.sink {
                    Some(sink) => sink(&line),
                    None => log::info!("{line}"),
                }
            }
            None => {}
        }
    }

    /// Moves to bar position `pos`, taking a new pace sample once the newer one is
    /// [`Progress::PACE_WINDOW_S`] old.
    fn set_pos(&mut self, pos: u64) {
        self.pos = pos;
        if self.pace[1].0.elapsed().as_secs_f64() >= Self::PACE_WINDOW_S {
            self.pace = [self.pace[1], (Instant::now(), pos)];
        }
    }

    fn log_due(&self) -> bool {
        self.last_log.elapsed().as_secs_f64() >= Self::LOG_EVERY_S
    }
}

/// `dt 12 s (adaptive)`, `dt 0.5 s (adaptive)`, `dt 1.5 ms (adaptive)` (below 0.1 s), or `adaptive dt` before the first step.
fn adaptive_dt(next_step_s: Option<f64>) -> String {
    let Some(h) = next_step_s else {
        return "adaptive dt".into();
    };
    let h = if h < 0.1 {
        format!("{} ms", crate::config::duration::three_digits(h * 1e3))
    } else {
        human(h)
    };
    format!("dt {h} (adaptive)")
}

impl Callback for Progress {
    fn name(&self) -> &str {
        "progress"
    }
    fn schedule(&self) -> Schedule {
        Schedule::OutputTimes
    }
    fn on_spin_up(&mut self, s: &SpinUpStatus) -> Action {
        self.next_step_s = s.next_step_s;
        // A log line at the start, at every tenth and at the end of the spin-up.
        let tenths = s.step * 10 / s.total_steps.max(1);
        let log = s.step == 0 || tenths > self.spin_tenths || self.log_due();
        self.spin_tenths = tenths;
        self.set_pos(s.step);
        let msg = self.spin_up_message(s);
        self.show(s.step, msg, log);
        Action::Continue
    }
    fn on_stop(&mut self, stop: &Stop, _: &Fields, s: &Status) -> Result<(), CallbackError> {
        self.last_output_s = Some(stop.time_s);
        self.next_step_s = s.next_step_s;
        let pos = self.plan.run_pos(stop.time_s, stop.step);
        self.set_pos(pos);
        let msg = self.run_message(stop.time_s, stop.step);
        self.show(pos, msg, true);
        Ok(())
    }
    fn on_batch(&mut self, s: &Status) -> Action {
        self.next_step_s = s.next_step_s;
        let pos = self.plan.run_pos(s.time_s, s.step);
        self.set_pos(pos);
        if self.bar.is_some() || self.log_due() {
            let msg = self.run_message(s.time_s, s.step);
            self.show(pos, msg, true);
        }
        Action::Continue
    }
    fn on_end(
        &mut self,
        _: super::callback::End,
        _: &mut dyn crate::engine::Engine,
        _: &Status,
    ) -> Result<(), CallbackError> {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_durations() {
        assert_eq!(wall_duration(0.4), "0 s");
        assert_eq!(wall_duration(45.0), "45 s");
        assert_eq!(wall_duration(725.0), "12 min 5 s");
        assert_eq!(wall_duration(12_000.0), "3 h 20 min");
        assert_eq!(wall_duration(187_200.0), "2 d 4 h");
    }

    fn plan() -> ProgressPlan {
        ProgressPlan {
            spin_up_steps: 600,
            steps: 172_800,
            start_step: 0,
            dt_s: 0.5,
            end_s: 86_400.0,
            adaptive: false,
            max_step_s: f64::INFINITY,
            dose_times_s: vec![0.0],
        }
    }

    /// The messages show model time in the unit that fits, dt and the steps; the ETA
    /// follows the pace over spin-up and run steps together.
    #[test]
    fn messages_and_eta() {
        let mut p = Progress::new(plan());
        assert!(p.bar.is_none() || p.bar.is_some());
        let s = SpinUpStatus {
            step: 180,
            total_steps: 600,
            dt_s: 0.5,
            duration_s: 300.0,
            next_step_s: None,
        };
        p.pos = 180;
        let m = p.spin_up_message(&s);
        assert!(
            m.starts_with("spin-up 90 s of 5 min, dt 0.5 s, eta "),
            "{m}"
        );
        p.pos = 600 + 23_400;
        p.last_output_s = Some(10_800.0);
        let m = p.run_message(11_700.0, 23_400);
        assert!(
            m.starts_with("t = 3.25 h of 24 h, dt 0.5 s, step 23400/172800, eta ")
                && m.ends_with(", output t = 3 h written"),
            "{m}"
        );
        // Half the work done in t wall seconds: about t more to go.
        p.started = Instant::now() - std::time::Duration::from_secs(100);
        p.pos = plan().len() / 2;
        let eta = p.eta_s().expect("steps were done");
        assert!((eta - 100.0).abs() < 2.0, "{eta}");
        // A resumed run counts its pace from where it resumed.
        let resumed = Progress::new(ProgressPlan {
            spin_up_steps: 0,
            start_step: 1000,
            ..plan()
        });
        assert_eq!((resumed.start_pos, resumed.eta_s()), (1000, None));
        // The coupled scheme: the bar follows model time, the message counts steps.
        let mut a = Progress::new(ProgressPlan {
            adaptive: true,
            max_step_s: 3600.0,
            ..plan()
        });
        a.last_output_s = None;
        assert_eq!(a.plan.run_pos(3600.0, 55), 600 + 7200);
        let m = a.run_message(3600.0, 55);
        assert!(
            m.starts_with("t = 60 min of 24 h, adaptive dt, 55 steps, eta "),
            "{m}"
        );
    }

    /// The forecast against the 64³ day of BENCHMARKS.md (stop 17: wall time at 1, 2, 4,
    /// 8, 12 and 24 h after the dose 150, 185, 249, 346, 417 and 501 s): from each doubling
    /// of model time it is within a factor 2 of what the rest took, where the pace in
    /// model time of the same window is 2.4× over or more.
    #[test]
    fn adaptive_forecast_of_a_day() {
        let wall = [
            (1.0, 150.0),
            (2.0, 185.0),
            (4.0, 249.0),
            (8.0, 346.0),
            (12.0, 417.0),
            (24.0, 501.0),
        ];
        for w in wall.windows(2).take(4) {
            let ((h0, w0), (h1, w1)) = (w[0], w[1]);
            let eta = adaptive_eta_s(w1 - w0, h0 * 3600.0, h1 * 3600.0, 86_400.0).unwrap();
            let linear = (w1 - w0) / (h1 - h0) * (24.0 - h1);
            let took = 501.0 - w1;
            assert!(
                (0.9..=2.0).contains(&(eta / took)),
                "from {h1} h: {eta} s, took {took} s"
            );
            assert!(
                linear / took > 2.4,
                "from {h1} h the linear pace says {linear} s"
            );
        }
        assert_eq!(adaptive_eta_s(60.0, 0.0, 10.0, 100.0), None);
        assert_eq!(adaptive_eta_s(60.0, 10.0, 100.0, 100.0), Some(0.0));
    }

    /// An adaptive run forecasts by the time since its last dose, and linearly once its
    /// step reaches the longest allowed; it shows its step.
    #[test]
    fn adaptive_eta_and_step() {
        let plan = ProgressPlan {
            adaptive: true,
            max_step_s: 3600.0,
            dose_times_s: vec![0.0, 43_200.0],
            ..plan()
        };
        let pos = |t_s: f64| plan.spin_up_steps + (t_s / plan.dt_s) as u64;
        let mut p = Progress::new(plan.clone());
        let minute_ago = Instant::now() - std::time::Duration::from_secs(60);
        // 1 h → 2 h in the last minute: 24 h is 3.58 doublings of 2 h away and 22 h of
        // model time.
        p.pace = [(minute_ago, pos(3600.0)), (Instant::now(), pos(7200.0))];
        p.pos = pos(7200.0);
        p.next_step_s = Some(600.0);
        let eta = p.eta_s().unwrap();
        let expected = (60.0 * 12f64.ln() / 2f64.ln() * 60.0 * 22.0).sqrt();
        assert!((eta - expected).abs() < 1.0, "{eta}");
        assert!(p
            .run_message(7200.0, 40)
            .contains("dt 10 min (adaptive), 40 steps"));
        // At the longest step: linear.
        p.next_step_s = Some(3600.0);
        let eta = p.eta_s().unwrap();
        assert!((eta - 60.0 * 22.0).abs() < 1.0, "{eta}");
        // A window across the second dose has no forecast; after it, the time since it.
        p.next_step_s = Some(1.0);
        p.pace[0].1 = pos(40_000.0);
        p.pos = pos(50_400.0);
        assert_eq!(p.eta_s(), None);
        p.pace[0].1 = pos(46_800.0);
        let eta = p.eta_s().unwrap();
        let expected = (60.0 * 6f64.ln() / 2f64.ln() * 60.0 * 36_000.0 / 3600.0).sqrt();
        assert!((eta - expected).abs() < 1.0, "{eta}");
        assert_eq!(adaptive_dt(Some(0.00123)), "dt 1.23 ms (adaptive)");
        assert_eq!(adaptive_dt(None), "adaptive dt");
    }
}
