//! Pausing a peer (`worker pause`, a schedule, the machine busy or on
//! battery): what a pause does to the units it holds.
//!
//! A paused peer claims nothing new. The units it crunches are
//! checkpointed by the shell and keep their leases, renewed as usual, so a
//! short pause (the user at the keyboard for a minute) loses no work and
//! moves nothing. A pause that outlasts [`GridConfig::pause_keep_ms`]
//! gives the units back ([`Output::YieldUnits`]: the crunches stop and
//! their leases are released) so that other peers finish them; the peer
//! keeps their checkpoints and claims them again after it resumes, if no
//! one has taken them meanwhile.
//!
//! [`GridConfig::pause_keep_ms`]: super::GridConfig::pause_keep_ms

use crate::ring::{Address, Time};

use super::node::GridNode;
use super::{Now, Output};

impl<A: Address> GridNode<A> {
    /// True while paused.
    pub fn is_paused(&self) -> bool {
        self.paused_at.is_some()
    }

    pub(super) fn pause(&mut self, now: Now) {
        if self.paused_at.is_none() {
            self.paused_at = Some(now.mono);
            self.yielded = false;
            self.candidates.clear();
        }
    }

    pub(super) fn resume_work(&mut self, now: Now) {
        self.paused_at = None;
        self.yielded = false;
        self.next_scan = now.mono;
        self.next_steal = now.mono;
        self.idle_ms = 100;
    }

    /// When a pause begun now-ish must give its units back.
    pub(super) fn pause_deadline(&self) -> Option<Time> {
        self.paused_at
            .filter(|_| !self.yielded)
            .map(|at| at.after(self.cfg.pause_keep_ms))
    }

    pub(super) fn pause_due(&mut self, now: Now) {
        if self.pause_deadline().is_some_and(|t| now.mono >= t) {
            self.yielded = true;
            if !self.active.is_empty() {
                self.out.push(Output::YieldUnits);
            }
        }
    }

    /// A crunch stopped while paused: its unit is released, and claimed
    /// again from its checkpoint after the pause if still free.
    pub(super) fn stopped_while_paused(&mut self, p: u64) {
        if self.is_paused() {
            self.resume.insert(p);
            self.resume_asked.remove(&p);
        }
    }
}
