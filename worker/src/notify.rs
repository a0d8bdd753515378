//! Notifications (`--on-prime CMD`, `--on-stall CMD`): a command run by
//! `sh -c` with the details in `MR_*` environment variables, as
//! AutoPrimeNet mails on a new prime or a stalled worker.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use mersenne_common::ll::res64_hex;
use mersenne_common::work::UnitResult;

/// Longest a notification command may run before it is killed.
const HOOK_LIMIT: Duration = Duration::from_secs(60);

/// The commands a peer runs on events.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// Run when this peer finds a Mersenne prime.
    pub on_prime: Option<String>,
    /// Run when no LL iteration was done for `stall_after`.
    pub on_stall: Option<String>,
    /// How long without progress counts as a stall.
    pub stall_after: Duration,
}

/// The environment of `--on-prime` when this peer's own test says prime:
/// `MR_EVENT=prime`, `MR_VERIFIED=no` (other peers have yet to double-check
/// it), `MR_EXPONENT`, `MR_STATUS`, `MR_RES64`, `MR_SHIFT`, `MR_ENGINE`,
/// `MR_COMPUTED_BY`, `MR_TIMESTAMP`, `MR_CRUNCH_MS`.
pub fn prime_env(r: &UnitResult) -> Vec<(&'static str, String)> {
    let mut env = result_env(r);
    env.insert(0, ("MR_EVENT", "prime".into()));
    env.insert(1, ("MR_VERIFIED", "no".into()));
    env
}

/// The environment of `--on-prime` when the grid has verified a prime (on
/// every peer whose table sees it verified): `MR_EVENT=prime-verified`,
/// `MR_VERIFIED=yes`, `MR_VERIFIED_BY` (the agreeing peers, comma
/// separated), `MR_ENGINES`, and the find's fields as in [`prime_env`].
pub fn verified_prime_env(
    r: &UnitResult,
    agreeing: &[String],
    engines: &[String],
) -> Vec<(&'static str, String)> {
    let mut env = result_env(r);
    env.insert(0, ("MR_EVENT", "prime-verified".into()));
    env.insert(1, ("MR_VERIFIED", "yes".into()));
    env.push(("MR_VERIFIED_BY", agreeing.join(",")));
    env.push(("MR_ENGINES", engines.join(",")));
    env
}

fn result_env(r: &UnitResult) -> Vec<(&'static str, String)> {
    vec![
        ("MR_EXPONENT", r.exponent.to_string()),
        ("MR_STATUS", r.status.code().to_string()),
        ("MR_RES64", res64_hex(r.res64)),
        ("MR_SHIFT", r.shift.to_string()),
        ("MR_ENGINE", r.engine.clone()),
        ("MR_COMPUTED_BY", r.computed_by.clone()),
        (
            "MR_TIMESTAMP",
            crate::timefmt::utc_from_unix_ms(r.finished_ms),
        ),
        ("MR_CRUNCH_MS", r.crunch_ms.to_string()),
    ]
}

/// Runs `cmd` through `sh -c` with `env` added, on a thread of its own
/// that waits for it (killed after [`HOOK_LIMIT`]): a slow mailer never
/// holds up crunching.
pub fn spawn(what: &'static str, cmd: &str, env: Vec<(&'static str, String)>) {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let cmd = cmd.to_string();
    std::thread::spawn(move || {
        let mut child = match c.spawn() {
            Ok(ch) => ch,
            Err(e) => {
                warn!(%e, %cmd, "--{what} command could not start");
                return;
            }
        };
        let t = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return,
                Ok(Some(status)) => {
                    warn!(%cmd, ?status, "--{what} command failed");
                    return;
                }
                Ok(None) if t.elapsed() < HOOK_LIMIT => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    warn!(%cmd, "--{what} command still running after {HOOK_LIMIT:?}; killed");
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
            }
        }
    });
    info!(what, "notification command started");
}

/// Decides when a peer has stalled: no LL iteration for `after`. Fires
/// once per stall, and again only after progress resumed. Time is passed
/// in (ms), so it is tested without waiting.
#[derive(Debug, Clone)]
pub struct StallWatch {
    after_ms: u64,
    last_count: u64,
    last_change_ms: u64,
    fired: bool,
}

impl StallWatch {
    /// A watch that starts at `now_ms` with `count` iterations done.
    pub fn new(after: Duration, now_ms: u64, count: u64) -> Self {
        StallWatch {
            after_ms: after.as_millis() as u64,
            last_count: count,
            last_change_ms: now_ms,
            fired: false,
        }
    }

    /// Observes the iteration counter at `now_ms`; `paused` time is not a
    /// stall. Returns the seconds stalled when the stall is to be reported.
    pub fn observe(&mut self, now_ms: u64, count: u64, paused: bool) -> Option<u64> {
        if count != self.last_count || paused {
            self.last_count = count;
            self.last_change_ms = now_ms;
            self.fired = false;
            return None;
        }
        let idle = now_ms.saturating_sub(self.last_change_ms);
        if !self.fired && idle >= self.after_ms {
            self.fired = true;
            return Some(idle / 1000);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mersenne_common::ll::Status;

    #[test]
    fn a_stall_fires_once_and_rearms_after_progress() {
        let mut w = StallWatch::new(Duration::from_secs(10), 0, 5);
        assert_eq!(w.observe(9_999, 5, false), None);
        assert_eq!(w.observe(10_000, 5, false), Some(10));
        assert_eq!(w.observe(30_000, 5, false), None, "once per stall");
        assert_eq!(w.observe(31_000, 6, false), None);
        assert_eq!(w.observe(40_000, 6, false), None);
        assert_eq!(w.observe(41_000, 6, false), Some(10), "re-armed");
        // A pause is not a stall, and restarts the clock.
        let mut w = StallWatch::new(Duration::from_secs(10), 0, 0);
        assert_eq!(w.observe(20_000, 0, true), None);
        assert_eq!(w.observe(29_000, 0, false), None);
        assert_eq!(w.observe(30_000, 0, false), Some(10));
    }

    #[test]
    fn the_command_sees_the_details_in_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env");
        let r = UnitResult {
            exponent: 4423,
            status: Status::Prime,
            res64: 0,
            shift: 9,
            engine: "fft".into(),
            computed_by: "127.0.0.1:7700".into(),
            finished_ms: 1_796_016_014_000,
            crunch_ms: 12,
            fft_length: 0,
            errors: 0,
            signature: None,
            certificate: None,
        };
        spawn(
            "on-prime",
            &format!("env > {}.tmp && mv {0}.tmp {0}", out.display()),
            prime_env(&r),
        );
        let t = Instant::now();
        while !out.exists() {
            assert!(t.elapsed() < Duration::from_secs(10), "hook never ran");
            std::thread::sleep(Duration::from_millis(20));
        }
        let env = std::fs::read_to_string(&out).unwrap();
        for want in [
            "MR_EVENT=prime",
            "MR_EXPONENT=4423",
            "MR_STATUS=P",
            "MR_RES64=0000000000000000",
            "MR_SHIFT=9",
            "MR_TIMESTAMP=2026-11-30 05:20:14",
        ] {
            assert!(env.lines().any(|l| l == want), "{want} missing:\n{env}");
        }
    }
}
