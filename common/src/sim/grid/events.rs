//! The event loop of the simulated world: the queue, the network between
//! peers (latency, loss, partitions, sleeping receivers) and the shell each
//! peer runs, which carries out its [`GridNode`](crate::grid::GridNode)'s
//! outputs the way `worker/src/node/ring_task.rs` does over TCP.

use std::cmp::Reverse;

use rand::Rng;

use crate::grid::{Crunched, Input, Output, PeerAnswer, PeerRequest, ReqId};
use crate::primes::primes_in;
use crate::ring::Message;

use super::crunch::{Crunch, simulated_result};
use super::peer::{Act, World};

/// The shell's timeout of a call to a peer (`ring_task::call_peer`).
const CALL_TIMEOUT_MS: u64 = 5_000;
/// The same for a digest.
const DIGEST_TIMEOUT_MS: u64 = 10_000;

#[derive(Debug)]
pub(super) enum Ev {
    Ring {
        to: u32,
        msg: Message<u32>,
    },
    Request {
        from: u32,
        to: u32,
        req: u64,
        msg: PeerRequest,
    },
    Answer {
        from: u32,
        to: u32,
        req: u64,
        answer: PeerAnswer,
    },
    CallTimeout {
        req: u64,
    },
    Timer {
        node: u32,
    },
    Input {
        node: u32,
        input: Input<u32>,
    },
    CrunchEnd {
        node: u32,
        p: u64,
        generation: u64,
    },
    Act(Act),
}

impl World {
    pub(super) fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        let idx = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = Some(ev);
                i
            }
            None => {
                self.slab.push(Some(ev));
                (self.slab.len() - 1) as u32
            }
        };
        self.queue.push(Reverse((at, self.seq, idx)));
    }

    /// The ring simulator's latency: a floor plus an exponential tail,
    /// capped.
    fn latency(&mut self) -> u64 {
        let u: f64 = self.rng.random();
        let tail = -self.cfg.latency_tail_mean * (1.0 - u).ln();
        (self.cfg.latency_min + tail as u64).min(self.cfg.latency_max)
    }

    fn lost(&mut self) -> bool {
        self.cfg.loss > 0.0 && self.rng.random::<f64>() < self.cfg.loss
    }

    /// Messages between `a` and `b` are dropped now.
    fn severed(&self, a: u32, b: u32) -> bool {
        self.cut && self.slots[a as usize].group != self.slots[b as usize].group
    }

    pub(super) fn paused(&self, i: u32) -> bool {
        self.slots[i as usize].paused_until > self.now
    }

    /// Feeds `input` to peer `i` and carries out what it says.
    pub fn step(&mut self, i: u32, input: Input<u32>) {
        let now = self.clock_of(i);
        let outs = self.slots[i as usize].g.step(input, now);
        self.carry_out(i, outs);
        self.schedule_timer(i, false);
    }

    /// Result writes the ring acknowledged to peer `i`: the results in
    /// them are promised to be stored.
    fn note_acks(&mut self, i: u32) {
        for unit in self.slots[i as usize].g.take_acked() {
            for r in &unit.results {
                if let Some(by) = self.index_of(&r.computed_by) {
                    let k = (r.exponent, by, r.shift);
                    self.acked.insert(k);
                    if let Some(left) = self.produced.get_mut(&k) {
                        *left = true;
                    }
                }
            }
        }
    }

    pub(super) fn schedule_timer(&mut self, i: u32, after_tick: bool) {
        let now = self.clock_of(i);
        let slot = &mut self.slots[i as usize];
        if !slot.alive {
            return;
        }
        // A sleeping peer's timers fire when it wakes.
        let mut w = slot
            .g
            .next_wakeup(now)
            .0
            .max(self.now)
            .max(slot.paused_until);
        // A timer that is still due right after its tick would spin.
        if after_tick && w <= self.now {
            w = self.now + 1;
        }
        if w < slot.scheduled {
            slot.scheduled = w;
            self.push(w, Ev::Timer { node: i });
        }
    }

    /// What `ring_task::carry_out` does, over the simulated network.
    fn carry_out(&mut self, i: u32, outs: Vec<Output<u32>>) {
        self.note_acks(i);
        for o in outs {
            match o {
                Output::Ring(out) => {
                    self.traffic.ring(&out.msg.body);
                    if !self.lost() {
                        let at = self.now + self.latency();
                        self.push(
                            at,
                            Ev::Ring {
                                to: out.to,
                                msg: out.msg,
                            },
                        );
                    }
                }
                Output::Call { call, to, msg } => {
                    self.traffic.call(&msg);
                    let req = self.next_req;
                    self.next_req += 1;
                    self.calls.insert(req, (i, call));
                    let timeout = match msg {
                        PeerRequest::Digest(_) => DIGEST_TIMEOUT_MS,
                        _ => CALL_TIMEOUT_MS,
                    };
                    self.push(self.now + timeout, Ev::CallTimeout { req });
                    if !self.lost() {
                        let at = self.now + self.latency();
                        self.push(
                            at,
                            Ev::Request {
                                from: i,
                                to,
                                req,
                                msg,
                            },
                        );
                    }
                }
                Output::Answer { req, answer } => {
                    self.traffic.answer(&answer);
                    if let Some(&(caller, _)) = self.calls.get(&req.0)
                        && !self.lost()
                    {
                        let at = self.now + self.latency();
                        self.push(
                            at,
                            Ev::Answer {
                                from: i,
                                to: caller,
                                req: req.0,
                                answer,
                            },
                        );
                    }
                }
                Output::Sieve { req, from, to } => {
                    let primes = primes_in(from, to);
                    self.push(
                        self.now,
                        Ev::Input {
                            node: i,
                            input: Input::Sieved { req, primes },
                        },
                    );
                }
                Output::Submitted { result, .. } => self.submitted = Some(result.is_ok()),
                Output::Crunch { p, shift, check } => {
                    let ms = self.cfg.cost.crunch_ms(p);
                    let generation = self.next_generation;
                    self.next_generation += 1;
                    let ends = self.now + ms;
                    self.slots[i as usize].crunching.insert(
                        p,
                        Crunch {
                            shift,
                            ends,
                            generation,
                            engine: check.and_then(|c| c.engine),
                        },
                    );
                    self.push(
                        ends,
                        Ev::CrunchEnd {
                            node: i,
                            p,
                            generation,
                        },
                    );
                }
                // A pause that outlasted its leases stops the crunches just as a
                // graceful stop does (the state machine gives the units back).
                Output::StopCrunching | Output::YieldUnits => {
                    let stopped = std::mem::take(&mut self.slots[i as usize].crunching);
                    for p in stopped.into_keys() {
                        self.push(
                            self.now,
                            Ev::Input {
                                node: i,
                                input: Input::Crunched {
                                    p,
                                    outcome: Crunched::Stopped,
                                },
                            },
                        );
                    }
                }
                Output::Left => {
                    let slot = &mut self.slots[i as usize];
                    slot.alive = false;
                    slot.died = Some(self.now);
                }
                // Persistence and reports go nowhere: peers of the
                // simulation never restart from disk. The rows a peer
                // would write have changed: they share memory with the
                // other peers' equal rows from now on.
                Output::PersistResults(rows) => {
                    let ps = rows.into_iter().map(|(p, _)| p);
                    self.slots[i as usize].g.share_rows(ps, &mut self.rows);
                }
                Output::DropCheckpoint(_)
                | Output::PersistRecords(_)
                | Output::ForgetRecords(_)
                | Output::PersistPeers(_)
                | Output::CrunchFailed { .. }
                | Output::PrimeVerified { .. }
                | Output::Restored { .. } => {}
            }
        }
    }

    fn crunch_end(&mut self, i: u32, p: u64, generation: u64) {
        let slot = &self.slots[i as usize];
        let Some(c) = slot.crunching.get(&p).copied() else {
            return;
        };
        if !slot.alive || c.generation != generation {
            return;
        }
        self.slots[i as usize].crunching.remove(&p);
        let ms = self.cfg.cost.crunch_ms(p);
        let wall = self.clock_of(i).wall_ms;
        let mut r = simulated_result(p, c.shift, &self.slots[i as usize].name, wall, ms);
        super::liars::report(self, i, &mut r, c.engine);
        // Signed as the worker's shell signs, liars' lies included.
        let r = crate::work::signature::sign(r, &self.sim_key(i));
        self.crunches += 1;
        self.crunch_ms += ms;
        self.first_done.entry(p).or_insert(self.now);
        self.produced.entry((p, i, c.shift)).or_insert(false);
        self.step(
            i,
            Input::Crunched {
                p,
                outcome: Crunched::Done(r),
            },
        );
    }

    /// Processes events up to and including virtual time `until`.
    pub fn run_until(&mut self, until: u64) {
        while let Some(&Reverse((at, _, idx))) = self.queue.peek() {
            if at > until {
                break;
            }
            self.queue.pop();
            let Some(ev) = self.slab[idx as usize].take() else {
                continue;
            };
            self.free.push(idx);
            self.now = at;
            self.event(at, ev);
        }
        self.now = self.now.max(until);
    }

    fn event(&mut self, at: u64, ev: Ev) {
        match ev {
            Ev::Ring { to, msg } => {
                if !self.live(to) || self.severed(msg.from.addr, to) {
                    return;
                }
                if self.paused(to) {
                    let at = self.slots[to as usize].paused_until;
                    self.push(at, Ev::Ring { to, msg });
                    return;
                }
                self.step(to, Input::Ring(msg));
            }
            Ev::Request { from, to, req, msg } => {
                if !self.live(to) || self.severed(from, to) {
                    return;
                }
                if self.paused(to) {
                    let at = self.slots[to as usize].paused_until;
                    self.push(at, Ev::Request { from, to, req, msg });
                    return;
                }
                self.step(
                    to,
                    Input::Request {
                        req: ReqId(req),
                        msg,
                    },
                );
            }
            Ev::Answer {
                from,
                to,
                req,
                answer,
            } => {
                if !self.live(to) || self.severed(from, to) {
                    return;
                }
                if self.paused(to) {
                    let at = self.slots[to as usize].paused_until;
                    self.push(
                        at,
                        Ev::Answer {
                            from,
                            to,
                            req,
                            answer,
                        },
                    );
                    return;
                }
                if let Some((_, call)) = self.calls.remove(&req) {
                    self.step(
                        to,
                        Input::Answer {
                            call,
                            answer: Some(answer),
                        },
                    );
                }
            }
            Ev::CallTimeout { req } => {
                let Some(&(caller, call)) = self.calls.get(&req) else {
                    return;
                };
                if !self.live(caller) {
                    self.calls.remove(&req);
                    return;
                }
                // The shell's timer runs on the caller's clock, which
                // stood still while it slept.
                if self.paused(caller) {
                    let at = self.slots[caller as usize].paused_until;
                    self.push(at, Ev::CallTimeout { req });
                    return;
                }
                self.calls.remove(&req);
                self.step(caller, Input::Answer { call, answer: None });
            }
            Ev::Timer { node } => {
                let slot = &mut self.slots[node as usize];
                if !slot.alive || slot.scheduled != at || slot.paused_until > at {
                    return;
                }
                slot.scheduled = u64::MAX;
                let now = self.clock_of(node);
                let outs = self.slots[node as usize].g.tick(now);
                self.carry_out(node, outs);
                self.schedule_timer(node, true);
            }
            Ev::Input { node, input } => {
                if self.live(node) {
                    self.step(node, input);
                }
            }
            Ev::CrunchEnd {
                node,
                p,
                generation,
            } => self.crunch_end(node, p, generation),
            Ev::Act(a) => self.act(a),
        }
    }
}
