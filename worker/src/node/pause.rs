//! Pausing, the shell's half: sets the [`Gate`](crate::citizen::Gate)'s
//! reasons from `worker pause` and from the `--schedule`,
//! `--pause-on-battery` and `--pause-when-busy` readings, and tells the
//! state machine when the gate opens or closes (it decides what happens
//! to the leases).

use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use mersenne_common::grid::Input;

use super::{Cmd, Shell};
use crate::citizen::{Policy, Reason, cpu, power, schedule};

/// Sets one reason and tells the state machine if that paused or
/// resumed the peer.
pub(super) async fn set(s: &Arc<Shell>, r: Reason, on: bool) {
    s.gate.set(r, on);
    sync(s).await;
}

async fn sync(s: &Arc<Shell>) {
    let mut told = s.told_paused.lock().await;
    let paused = s.gate.paused();
    if paused == *told {
        return;
    }
    *told = paused;
    let input = if paused {
        let why: Vec<&str> = s.gate.reasons().collect();
        info!(reasons = ?why, "paused: units checkpointed, leases kept");
        Input::Pause
    } else {
        // Resumed crunches must not give their units back.
        s.gate.set_yield(false);
        info!("resumed");
        Input::Resume
    };
    let _ = s.cmd.send(Cmd::Input(Box::new(input))).await;
}

/// The state machine asks for the held units back: paused crunches stop.
pub(super) fn yield_units(s: &Shell) {
    info!("the pause outlasted --pause-keep-secs: giving the units back");
    s.gate.set_yield(true);
}

/// Reads the schedule, the power supply and the CPU every second (the CPU
/// over two), and sets the gate's reasons.
pub(super) async fn watch(s: Arc<Shell>, policy: Policy) {
    if policy.schedule.is_none() && policy.battery.is_none() && policy.busy_cores.is_none() {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut last_cpu = cpu::sample();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for round in 0u64.. {
        tick.tick().await;
        if let Some(sch) = &policy.schedule {
            let allowed = sch.allows(schedule::local_minute_now());
            s.gate.set(Reason::Schedule, !allowed);
        }
        if let Some(dir) = &policy.battery {
            s.gate.set(Reason::Battery, power::on_battery(dir));
        }
        if let Some(limit) = policy.busy_cores
            && round % 2 == 1
        {
            let now = cpu::sample();
            if let (Some(a), Some(b)) = (last_cpu, now) {
                let others = cpu::others_cores(a, b, cpus);
                s.gate.set(Reason::Busy, others > limit);
            }
            last_cpu = now;
        }
        sync(&s).await;
    }
}
