//! Submissions (one record per prime exponent, created by
//! compare-and-set on "absent") and restoring persisted records.

use crate::grant::{GrantError, WorkGrant};
use crate::ll::check_exponent;
use crate::ring::{Address, Id, Outcome, RingError, StoreReply};
use crate::work::{UnitRecord, check_submission, unit_key};

use super::codec::WireUnit;
use super::node::{GridNode, Pending, Submission};
use super::{Now, Output, ReqId, SEED_REQUEST, SUBMIT_WINDOW, SubmitError};

/// Attempts per record creation before the submission reports it failed.
const CREATE_ATTEMPTS: u32 = 4;

impl<A: Address> GridNode<A> {
    /// Validates a range and asks the shell to sieve it (never on the
    /// thread that runs this state machine: a wide range takes a second).
    /// In project mode the range must be covered by a grant the project
    /// key signed, which every record created then carries; in open mode
    /// a grant is dropped (records stay as they were).
    pub(super) fn submit(&mut self, req: ReqId, from: u64, to: u64, grant: Option<WorkGrant>) {
        let grant = self.cfg.project.and(grant);
        let refuse = if self.stopping {
            Some(SubmitError::Stopping)
        } else if let Err(e) = check_submission(from, to) {
            Some(SubmitError::Range(e))
        } else if let Some(project) = &self.cfg.project {
            match &grant {
                None => Some(SubmitError::Ungranted(GrantError::Missing)),
                Some(g) if !(g.covers(from) && g.covers(to)) => Some(SubmitError::Ungranted(
                    GrantError::NotCovered(if g.covers(from) { to } else { from }),
                )),
                Some(g) => g.verify(project).err().map(SubmitError::Ungranted),
            }
        } else {
            None
        };
        match refuse {
            Some(e) => self.out.push(Output::Submitted {
                req,
                result: Err(e),
            }),
            None => {
                self.grants.insert(req, grant);
                self.out.push(Output::Sieve { req, from, to })
            }
        }
    }

    /// The primes of a submission: every one is checked before any record
    /// is written, then one record per prime is created.
    pub(super) fn sieved(&mut self, req: ReqId, primes: Vec<u64>) {
        if let Some(e) = primes.iter().find_map(|&p| check_exponent(p).err()) {
            self.out.push(Output::Submitted {
                req,
                result: Err(SubmitError::BadExponent(e)),
            });
            return;
        }
        if primes.is_empty() {
            self.out.push(Output::Submitted {
                req,
                result: Ok((0, 0)),
            });
            return;
        }
        let grant = self.grants.remove(&req).flatten();
        self.submissions.insert(
            req,
            Submission {
                left: primes.len() as u64,
                grant,
                ..Submission::default()
            },
        );
        self.creates.extend(primes.into_iter().map(|p| (req, p, 0)));
    }

    /// The grid's own `seed_range`, once in a ring.
    pub(super) fn seed(&mut self, _now: Now) {
        if self.seeded || !self.in_ring() {
            return;
        }
        self.seeded = true;
        if let Some((a, b)) = self.cfg.seed_range {
            self.submit(SEED_REQUEST, a, b, self.cfg.seed_grant);
        }
    }

    pub(super) fn pump_creates(&mut self, now: Now) {
        while self.creates_in_flight < SUBMIT_WINDOW {
            let Some((req, p, attempt)) = self.creates.pop_front() else {
                break;
            };
            self.creates_in_flight += 1;
            let grant = self.submissions.get(&req).and_then(|s| s.grant);
            self.cas(
                None,
                &UnitRecord::granted(p, grant),
                0,
                Pending::Create { req, p, attempt },
                now,
            );
        }
    }

    pub(super) fn created(&mut self, req: ReqId, p: u64, attempt: u32, o: Outcome<A>, now: Now) {
        self.creates_in_flight -= 1;
        let Some(s) = self.submissions.get_mut(&req) else {
            return;
        };
        let fresh = WireUnit::encode(&UnitRecord::granted(p, s.grant));
        match o {
            Outcome::Store {
                reply: StoreReply::Stored(_),
                ..
            } => s.created += 1,
            // The ring retried after a timeout and met its own first
            // attempt's write (its answer was lost or late): created here,
            // not found there. A fresh record is the same bytes whoever
            // writes it, so this can also be a submission made at the same
            // moment elsewhere; either way it did not exist before.
            Outcome::Store {
                reply: StoreReply::Conflict(Some(r)),
                attempts,
                ..
            } if attempts > 1 && r.version == 1 && r.value == fresh => s.created += 1,
            Outcome::Store {
                reply: StoreReply::Conflict(_),
                ..
            } => s.existed += 1,
            other => {
                if attempt + 1 < CREATE_ATTEMPTS {
                    let at = now.mono.after(250 << (attempt + 1));
                    self.create_retries.push((at, req, p, attempt + 1));
                    return;
                }
                s.failed += 1;
                s.last = Some(match other {
                    Outcome::Failed(e) => e,
                    _ => RingError::NotMember,
                });
            }
        }
        s.left -= 1;
        if s.left > 0 {
            return;
        }
        let s = self.submissions.remove(&req).expect("present above");
        let result = match s.last {
            Some(last) if s.failed > 0 => Err(SubmitError::Incomplete {
                failed: s.failed,
                created: s.created,
                existed: s.existed,
                last,
            }),
            _ => Ok((s.created, s.existed)),
        };
        self.out.push(Output::Submitted { req, result });
    }

    /// Puts persisted records back into the ring once in it: each one is
    /// joined into the ring's copy at its own version
    /// ([`crate::ring::RingNode::restore`]), so a record the ring lacks
    /// comes back at the version it had, not at 1, a version never goes
    /// backward, and the ring's copy loses nothing (the unit-record join
    /// keeps both sides' results).
    pub(super) fn pump_restore(&mut self, now: Now) {
        if self.restore.is_empty() || !self.in_ring() || now.mono < self.restore_at {
            return;
        }
        while self.restoring < SUBMIT_WINDOW {
            let Some(u) = self.restore.pop() else {
                break;
            };
            // A copy held here at least as far along needs no round trip
            // (the ring handed it over on join).
            let held = self
                .ring
                .record(Id(unit_key(u.exponent)))
                .and_then(WireUnit::decode)
                .is_some_and(|h| u.results.is_empty() || h.results.len() >= u.results.len());
            if held {
                if let Some(c) = &mut self.restore_counts {
                    c.2 += 1;
                }
                continue;
            }
            self.restoring += 1;
            self.restore_record(&u, Pending::Restore(Box::new(u.clone())), now);
        }
        self.restore_done();
    }

    fn restore_done(&mut self) {
        if self.restore.is_empty()
            && self.restoring == 0
            && let Some((total, restored, already_in_ring)) = self.restore_counts.take()
        {
            self.out.push(Output::Restored {
                total,
                restored,
                already_in_ring,
            });
        }
    }

    pub(super) fn restore_outcome(&mut self, u: UnitRecord, o: Outcome<A>, now: Now) {
        // `Conflict` here means the ring's copy already contains ours.
        self.restoring -= 1;
        match o {
            Outcome::Store {
                reply: StoreReply::Stored(_),
                ..
            } => {
                if let Some(c) = &mut self.restore_counts {
                    c.1 += 1;
                }
            }
            Outcome::Store {
                reply: StoreReply::Conflict(_),
                ..
            } => {
                if let Some(c) = &mut self.restore_counts {
                    c.2 += 1;
                }
            }
            _ => {
                self.restore.push(u);
                self.restore_at = now.mono.after(self.restore_delay);
                self.restore_delay = (self.restore_delay * 2).min(10_000);
            }
        }
        self.restore_done();
    }
}
