//! The samples of a run, as they complete: per-budget views, the schedule lag, a per-second
//! timeline, and the live progress line.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use perf_budget::LatencyHistogram;
use tokio::time::Instant;

use super::{Sample, Target, Tick, View, ms};

/// Most timeline seconds kept (a day); later seconds are folded into the last.
const MAX_TICKS: usize = 86_400;

/// Accumulates measured samples.
pub(super) struct Collector<'a> {
    targets: &'a [Target],
    views: &'a mut [View],
    thresholds: &'a [Vec<Option<u64>>],
    pub(super) sent: u64,
    pub(super) lag: LatencyHistogram,
    all: LatencyHistogram,
    errors: u64,
    pub(super) timeline: Vec<Tick>,
    second: LatencyHistogram,
    second_errors: u64,
    second_index: usize,
}

impl<'a> Collector<'a> {
    pub(super) fn new(
        targets: &'a [Target],
        views: &'a mut [View],
        thresholds: &'a [Vec<Option<u64>>],
    ) -> Self {
        Self {
            targets,
            views,
            thresholds,
            sent: 0,
            lag: LatencyHistogram::new(),
            all: LatencyHistogram::new(),
            errors: 0,
            timeline: Vec::new(),
            second: LatencyHistogram::new(),
            second_errors: 0,
            second_index: 0,
        }
    }

    /// Adds one sample; `second` is its completion's whole second since the measured start.
    pub(super) fn add(&mut self, s: &Sample, second: usize) {
        if !s.measured {
            return;
        }
        self.sent += 1;
        self.lag.record(s.lag);
        self.all.record(s.latency);
        self.errors += u64::from(s.error);
        let b = self.targets[s.target].budget;
        let v = &mut self.views[b];
        v.hist.record(s.latency);
        v.errors += u64::from(s.error);
        v.timeouts += u64::from(s.timeout);
        let ns = u64::try_from(s.latency.as_nanos()).unwrap_or(u64::MAX);
        for (o, t) in v.over.iter_mut().zip(&self.thresholds[b]) {
            if let Some(t) = t {
                *o += u64::from(ns >= *t);
            }
        }
        let second = second.min(MAX_TICKS - 1);
        if second > self.second_index {
            self.flush();
            self.second_index = second;
        }
        self.second.record(s.latency);
        self.second_errors += u64::from(s.error);
    }

    /// Closes the current second into the timeline.
    pub(super) fn flush(&mut self) {
        if self.second.is_empty() {
            return;
        }
        self.timeline.push(Tick {
            t_s: self.second_index as f64,
            rps: self.second.len() as f64,
            errors: self.second_errors,
            p50_ms: ms(self.second.quantile(0.5)),
            p99_ms: ms(self.second.quantile(0.99)),
        });
        self.second = LatencyHistogram::new();
        self.second_errors = 0;
    }
}

/// The live progress line: on a terminal only, quiet in CI.
pub(super) struct Progress {
    bar: ProgressBar,
    start: Instant,
}

impl Progress {
    /// A progress line on stdout when it is a terminal, else a hidden one; `start` is the
    /// measured start (after the warm-up).
    pub(super) fn new(show: bool, start: Instant) -> Self {
        let target = if show && std::io::stdout().is_terminal() {
            ProgressDrawTarget::stdout_with_hz(4)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| {
                // The template is a literal; the default style is the fallback.
                ProgressStyle::default_spinner()
            }),
        );
        Self { bar, start }
    }

    /// Redraws the line from the collector's state.
    pub(super) fn update(&self, c: &Collector<'_>, in_flight: usize) {
        if self.bar.is_hidden() {
            return;
        }
        let elapsed = Instant::now().saturating_duration_since(self.start);
        if elapsed.is_zero() {
            self.bar.set_message("warming up");
            self.bar.tick();
            return;
        }
        let rate = c.sent as f64 / elapsed.as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{:>5.1}s  {rate:>8.1} req/s  in-flight {in_flight:<4} errors {:<6} p99 {:.3}ms",
            elapsed.as_secs_f64(),
            c.errors,
            ms(c.all.quantile(0.99)),
        ));
        self.bar.tick();
    }

    /// Removes the line before the report is printed.
    pub(super) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// How often the progress line is redrawn.
pub(super) const PROGRESS_EVERY: Duration = Duration::from_millis(250);
