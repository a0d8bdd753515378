//! The `--on-stall` hook: a crunching peer that does no LL iteration for
//! a while says so.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Shell, now_ms};

/// Runs `--on-stall` when this crunching peer does no LL iteration for
/// the stall time (out of work, or a unit stuck).
pub(super) async fn watch_stall(shell: Arc<Shell>, hooks: crate::notify::Hooks, threads: usize) {
    let Some(cmd) = hooks.on_stall.filter(|_| threads > 0) else {
        return;
    };
    let count = || shell.counters.iterations.load(Ordering::Relaxed);
    let mut w = crate::notify::StallWatch::new(hooks.stall_after, now_ms(), count());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if let Some(secs) = w.observe(now_ms(), count(), shell.gate.paused()) {
            let units = shell.progress.snapshot();
            let reason = if units.is_empty() {
                "no work".to_string()
            } else {
                format!("no progress on {} unit(s)", units.len())
            };
            let list = units
                .iter()
                .map(|u| u.exponent.to_string())
                .collect::<Vec<_>>()
                .join(",");
            tracing::warn!(secs, %reason, "stalled: no LL iteration done; running --on-stall");
            crate::notify::spawn(
                "on-stall",
                &cmd,
                vec![
                    ("MR_EVENT", "stall".into()),
                    ("MR_REASON", reason),
                    ("MR_STALL_SECS", secs.to_string()),
                    ("MR_CRUNCHING", list),
                    ("MR_PEER", shell.addr.clone()),
                ],
            );
        }
    }
}
