//! A peer's screen (issue 11, item 5): every result and record write that
//! reaches the grid node from outside goes through [`super::legal`]'s
//! checks here first; a refusal is counted, noted for the shell's log in
//! bounded form, and the result or write is never stored or forwarded.

use crate::ring::{Address, Body, Id, Message, Record, StoreOp, StoreReply};
use crate::work::{UnitRecord, UnitResult};

use super::Now;
use super::codec::WireUnit;
use super::legal::{
    GrantCheck, MAX_ROW_RESULTS, ProjectChecks, Refusal, Refusals, Write, check_record,
    check_result, cut,
};
use super::legal_member::{Judged, MemberCheck};
use super::node::GridNode;
use super::squat::{MAX_LIVE_LEASES, new_claims};

/// Refusals noted for the log between two drains; the rest are counted.
const LOG_MAX: usize = 16;

/// Longest note kept about one refusal.
const NOTE_MAX: usize = 200;

impl<A: Address> GridNode<A> {
    /// Whether a result may enter the table (within its bounds when
    /// `capped`: from outside); counts and notes a refusal.
    pub(super) fn admit_result(&mut self, r: &UnitResult, now_ms: u64, capped: bool) -> bool {
        let table = &self.results;
        let known = |r: &UnitResult| table.get(r.exponent).is_some_and(|rs| rs.contains(r));
        let members = MemberCheck::of(
            self.cfg.project.as_ref(),
            self.revocations.as_ref(),
            &mut self.verified_certs,
        );
        let room = || {
            if !capped || known(r) {
                Ok(())
            } else if table.result_count() >= self.cfg.max_results {
                Err(Refusal::TableFull {
                    exponent: r.exponent,
                    held: table.result_count(),
                })
            } else if table.get(r.exponent).map_or(0, <[_]>::len) >= MAX_ROW_RESULTS {
                Err(Refusal::RowFull(r.exponent))
            } else {
                Ok(())
            }
        };
        let checked = room()
            .and_then(|()| check_result(r, now_ms, known))
            .and_then(|()| match members {
                Some(mut m) if !known(r) => m.check(r, Judged::Finished),
                _ => Ok(()),
            });
        match checked {
            Ok(()) => true,
            Err(e) => {
                self.refusals.results += 1;
                self.note_refusal(&e);
                false
            }
        }
    }

    /// The held copy of `key`, decoded.
    fn held(&self, key: Id) -> Option<UnitRecord> {
        self.ring.record(key).and_then(WireUnit::decode)
    }

    fn admit_record(&mut self, r: &Record, write: Write, now: Now) -> bool {
        if self.store_full(r.key, 0) {
            return false;
        }
        let held = self.held(r.key);
        let version = match write {
            Write::Step => held.as_ref().map_or(0, |h| h.version).saturating_add(1),
            Write::Copy => r.version,
        };
        let table = &self.results;
        let known = |r: &UnitResult| table.get(r.exponent).is_some_and(|rs| rs.contains(r));
        let grants = self.cfg.project.as_ref().map(|project| GrantCheck {
            project,
            verified: &mut self.verified_grants,
        });
        match check_record(
            r.key,
            &r.value,
            version,
            held.as_ref(),
            write,
            now.wall_ms,
            self.cfg.lease_ms,
            ProjectChecks {
                grants,
                members: MemberCheck::of(
                    self.cfg.project.as_ref(),
                    self.revocations.as_ref(),
                    &mut self.verified_certs,
                ),
            },
            known,
        ) {
            Ok(()) => match self.squatting(r, held.as_ref(), write, now) {
                None => true,
                Some(e) => {
                    self.refusals.records += 1;
                    self.note_refusal(&e);
                    false
                }
            },
            Err(e) => {
                self.refusals.records += 1;
                self.note_refusal(&e);
                false
            }
        }
    }

    /// A legal compare-and-set on a record this peer owns that gives a new
    /// live lease to a claimant already at the cap ([`super::squat`]).
    fn squatting(
        &self,
        r: &Record,
        held: Option<&UnitRecord>,
        write: Write,
        now: Now,
    ) -> Option<Refusal> {
        if write != Write::Step || !self.ring.owns(r.key) {
            return None;
        }
        let rec = WireUnit::decode(r)?;
        if let Some((claimant, held_ms)) = self.leases.overheld(r.key, &rec, held, now.wall_ms) {
            return Some(Refusal::Overheld {
                claimant: cut(&claimant, 64),
                exponent: rec.exponent,
                held_ms,
            });
        }
        new_claims(&rec, held, now.wall_ms)
            .into_iter()
            .find_map(|c| {
                let held = self.leases.live(&c, now.wall_ms, |k| self.ring.owns(k));
                (held >= MAX_LIVE_LEASES).then(|| Refusal::Squat {
                    claimant: cut(&c, 64),
                    held,
                })
            })
    }

    /// Whether a record under `key` is refused (and counted) because it
    /// would grow a store already at its bound, with `fresh` new keys
    /// admitted before it in the same batch (stored only after it).
    /// Checked before any decoding or signature check.
    fn store_full(&mut self, key: Id, fresh: usize) -> bool {
        let held = self.ring.record_count().saturating_add(fresh);
        let full = self.ring.record(key).is_none() && held >= self.cfg.max_records;
        if full {
            self.refusals.records += 1;
            self.note_refusal(&Refusal::StoreFull { held });
        }
        full
    }

    fn admit_records(&mut self, records: &mut Vec<Record>, now: Now) {
        let mut fresh = 0;
        records.retain(|r| {
            let new = self.ring.record(r.key).is_none();
            let ok = !self.store_full(r.key, fresh) && self.admit_record(r, Write::Copy, now);
            fresh += usize::from(ok && new);
            ok
        });
    }

    /// A ring message with every record write in it screened: illegal
    /// copies are taken out of batches (replicas, hand-overs, a leaver's
    /// records, digest answers); an illegal write or answer drops the whole
    /// message (the writer's operation then times out, as for a lost one).
    pub(super) fn screen(&mut self, mut m: Message<A>, now: Now) -> Option<Message<A>> {
        let ok = match &mut m.body {
            Body::Store { op, .. } => match op {
                StoreOp::Put { .. } => {
                    self.refusals.records += 1;
                    self.note_refusal(&Refusal::Put);
                    false
                }
                StoreOp::Get { .. } => true,
                // A compare-and-set on another version than ours writes
                // nothing (the ring answers with a conflict and our copy),
                // so it is not a step from our copy to judge: refusing it
                // would only make the writer time out instead of retrying.
                StoreOp::Cas { key, expected, .. }
                    if self.ring.record(*key).map_or(0, |r| r.version) != *expected =>
                {
                    true
                }
                StoreOp::Cas { key, value, .. } => {
                    let r = Record {
                        key: *key,
                        value: std::mem::take(value),
                        version: 0,
                    };
                    let ok = self.admit_record(&r, Write::Step, now);
                    *value = r.value;
                    ok
                }
                StoreOp::Merge { record } => self.admit_record(record, Write::Copy, now),
            },
            Body::StoreDone {
                reply:
                    StoreReply::Stored(r) | StoreReply::Value(Some(r)) | StoreReply::Conflict(Some(r)),
                ..
            } => self.admit_record(r, Write::Copy, now),
            Body::Replicate { records, .. }
            | Body::Handover { records, .. }
            | Body::Leaving { records, .. }
            | Body::DigestDiff { records, .. } => {
                self.admit_records(records, now);
                true
            }
            _ => true,
        };
        ok.then_some(m)
    }

    fn note_refusal(&mut self, e: &Refusal) {
        if self.refusal_log.len() < LOG_MAX {
            self.refusal_log.push(cut(&e.to_string(), NOTE_MAX));
        }
    }

    /// What was refused so far.
    pub fn refusals(&self) -> Refusals {
        self.refusals
    }

    /// Notes on refusals since the last call (at most 16, each at most 200
    /// bytes; [`GridNode::refusals`] counts them all), for the shell's log.
    pub fn take_refusal_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.refusal_log)
    }
}
