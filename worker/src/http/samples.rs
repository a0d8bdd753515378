//! Throughput over time for the dashboard's chart: a bounded ring buffer of
//! counter readings, taken by a task of the shell once a period.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::node::Shell;

/// Time between samples.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Samples kept: one hour at [`SAMPLE_EVERY`].
pub const CAPACITY: usize = 3600;

/// One reading of the counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds since the peer started.
    pub secs: f64,
    /// LL iterations done here since start.
    pub iterations: u64,
    /// Rows in the result table (the whole grid's progress).
    pub results: usize,
}

/// The newest [`CAPACITY`] samples.
#[derive(Debug, Default)]
pub struct Samples {
    buf: Mutex<VecDeque<Sample>>,
}

impl Samples {
    /// Adds a sample, dropping the oldest when full.
    pub fn push(&self, s: Sample) {
        let mut b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() == CAPACITY {
            b.pop_front();
        }
        b.push_back(s);
    }

    /// The samples, oldest first.
    pub fn all(&self) -> Vec<Sample> {
        let b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        b.iter().copied().collect()
    }
}

/// Rates between consecutive samples: (seconds, iterations/s, results/s),
/// one point per interval, at the interval's end.
pub fn rates(samples: &[Sample]) -> Vec<(f64, f64, f64)> {
    samples
        .windows(2)
        .filter_map(|w| {
            let dt = w[1].secs - w[0].secs;
            (dt > 0.0).then(|| {
                (
                    w[1].secs,
                    w[1].iterations.saturating_sub(w[0].iterations) as f64 / dt,
                    w[1].results.saturating_sub(w[0].results) as f64 / dt,
                )
            })
        })
        .collect()
}

/// Iterations per second over the last `window` seconds of samples (or
/// over what there is), `None` with fewer than two samples.
pub fn recent_rate(samples: &[Sample], window: f64) -> Option<f64> {
    let last = samples.last()?;
    let first = samples
        .iter()
        .find(|s| last.secs - s.secs <= window)
        .filter(|s| s.secs < last.secs)?;
    Some(last.iterations.saturating_sub(first.iterations) as f64 / (last.secs - first.secs))
}

/// Samples the shell's counters every [`SAMPLE_EVERY`] until aborted.
pub(crate) async fn run(shell: Arc<Shell>, samples: Arc<Samples>) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(results) = shell.read(|g| g.results().len()).await else {
            return;
        };
        samples.push(Sample {
            secs: shell.started.elapsed().as_secs_f64(),
            iterations: shell.counters.iterations.load(Ordering::Relaxed),
            results,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: f64, iterations: u64, results: usize) -> Sample {
        Sample {
            secs,
            iterations,
            results,
        }
    }

    #[test]
    fn buffer_keeps_the_newest() {
        let b = Samples::default();
        for i in 0..CAPACITY + 5 {
            b.push(s(i as f64, i as u64, 0));
        }
        let all = b.all();
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].iterations, 5);
        assert_eq!(all.last().unwrap().iterations, (CAPACITY + 4) as u64);
    }

    #[test]
    fn rates_between_samples() {
        let r = rates(&[s(0.0, 0, 0), s(2.0, 1000, 4), s(3.0, 1500, 4)]);
        assert_eq!(r, vec![(2.0, 500.0, 2.0), (3.0, 500.0, 0.0)]);
    }

    #[test]
    fn recent_rate_uses_the_window() {
        let v = [s(0.0, 0, 0), s(10.0, 100, 0), s(20.0, 1100, 0)];
        assert_eq!(recent_rate(&v, 10.0), Some(100.0));
        assert_eq!(recent_rate(&v, 60.0), Some(55.0));
        assert_eq!(recent_rate(&v[..1], 60.0), None);
    }
}
