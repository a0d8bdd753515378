//! `--cpu-limit PCT`: duty-cycle throttling. A crunch thread runs a slice,
//! then sleeps so that run / (run + sleep) is PCT, as BOINC's CPU
//! throttle does. Time is passed in, so the cycle is tested exactly.
//!
//! "Run" is the thread's own CPU time ([`thread_cpu_time`]), not the
//! slice's wall time: on a loaded machine a slice also waits for a CPU,
//! and counting that wait would make the thread sleep more than its share.

use std::time::Duration;

/// Sleeps shorter than this are saved up rather than taken: the OS
/// cannot sleep that briefly with any precision.
const MIN_SLEEP: Duration = Duration::from_millis(5);

/// The sleep a crunch thread owes for the slices it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DutyCycle {
    pct: u32,
    owed: Duration,
}

impl DutyCycle {
    /// A cycle that runs `pct` percent of the time (1..=100; 100 never
    /// sleeps).
    pub fn new(pct: u32) -> Self {
        DutyCycle {
            pct: pct.clamp(1, 100),
            owed: Duration::ZERO,
        }
    }

    /// After a slice that ran for `ran`: how long to sleep now, if at all.
    pub fn after_run(&mut self, ran: Duration) -> Option<Duration> {
        if self.pct >= 100 {
            return None;
        }
        self.owed += ran * (100 - self.pct) / self.pct;
        (self.owed >= MIN_SLEEP).then(|| std::mem::take(&mut self.owed))
    }
}

/// CPU time the calling thread has used (Linux/Unix
/// `CLOCK_THREAD_CPUTIME_ID`); `None` where the clock is missing.
#[allow(unsafe_code)]
pub fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which we own, and keeps
    // no pointer to it.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    ok.then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// A `--cpu-limit` value that is not a percentage from 1 to 100 (the
/// value as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a percentage from 1 to 100")]
pub struct BadPercentage(pub String);

/// `--cpu-limit`'s value: 1..=100.
pub fn parse_pct(s: &str) -> Result<u32, BadPercentage> {
    match s.trim_end_matches('%').parse::<u32>() {
        Ok(p) if (1..=100).contains(&p) => Ok(p),
        _ => Err(BadPercentage(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs slices of the given lengths and returns the share of time
    /// spent running.
    fn share(pct: u32, slices: &[u64]) -> f64 {
        let mut d = DutyCycle::new(pct);
        let (mut run, mut slept) = (Duration::ZERO, Duration::ZERO);
        for &ms in slices {
            let ran = Duration::from_millis(ms);
            run += ran;
            slept += d.after_run(ran).unwrap_or_default();
        }
        slept += d.owed;
        run.as_secs_f64() / (run + slept).as_secs_f64()
    }

    #[test]
    fn the_share_of_time_running_is_the_limit() {
        let slices: Vec<u64> = (0..1000).map(|i| 1 + (i * 37) % 90).collect();
        for pct in [1, 10, 25, 50, 75, 99] {
            let s = share(pct, &slices);
            assert!((s - pct as f64 / 100.0).abs() < 1e-3, "{pct}%: {s}");
        }
        assert_eq!(share(100, &slices), 1.0);
    }

    #[test]
    fn tiny_sleeps_are_saved_up() {
        let mut d = DutyCycle::new(50);
        assert_eq!(d.after_run(Duration::from_millis(2)), None);
        assert_eq!(d.after_run(Duration::from_millis(2)), None);
        assert_eq!(
            d.after_run(Duration::from_millis(2)),
            Some(Duration::from_millis(6))
        );
        assert_eq!(DutyCycle::new(100).after_run(Duration::from_secs(1)), None);
    }

    #[test]
    fn the_thread_clock_counts_work_not_sleep() {
        let a = thread_cpu_time().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let b = thread_cpu_time().unwrap();
        assert!(b - a < Duration::from_millis(20), "{:?}", b - a);
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(thread_cpu_time().unwrap() > b);
    }

    #[test]
    fn limits_parse() {
        assert_eq!(parse_pct("50"), Ok(50));
        assert_eq!(parse_pct("25%"), Ok(25));
        assert!(parse_pct("0").is_err());
        assert!(parse_pct("101").is_err());
        assert!(parse_pct("x").is_err());
    }
}
