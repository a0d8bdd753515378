//! Checks from the global view: ring invariants, lost records, the report.

use super::*;

impl Sim {
    /// Acknowledged writes missing at the key's true owner or at the true
    /// owner's first successor (the two copies a `Stored` reply promises).
    /// A copy counts if it is the acknowledged write or a later version.
    pub fn records_lost(&self) -> usize {
        let n = self.members.len();
        let holds = |i: u32, key: Id, v: u64, tag: u64| {
            self.slots[i as usize]
                .node
                .record(key)
                .is_some_and(|r| r.version > v || (r.version == v && r.value == tag.to_be_bytes()))
        };
        let mut lost = 0;
        for (&key, &(v, tag)) in &self.written {
            let pos = self.members.partition_point(|(id, _)| *id < key);
            if n == 0 {
                lost += 1;
                continue;
            }
            let owner = self.members[pos % n].1;
            let next = self.members[(pos + 1) % n].1;
            if !holds(owner, key, v, tag) || (n > 1 && !holds(next, key, v, tag)) {
                lost += 1;
            }
        }
        lost
    }

    /// Acknowledged records whose acknowledged version no live node holds
    /// at all (the old, lenient measure).
    pub fn records_unheld(&self) -> usize {
        let mut best: HashMap<Id, u64> = HashMap::with_capacity(self.written.len());
        for slot in self.slots.iter().filter(|s| s.alive) {
            for r in slot.node.records() {
                if self.written.contains_key(&r.key) {
                    let e = best.entry(r.key).or_insert(0);
                    *e = (*e).max(r.version);
                }
            }
        }
        self.written
            .iter()
            .filter(|(k, (v, _))| best.get(k).is_none_or(|b| b < v))
            .count()
    }

    /// Check the ring invariants from the global view; returns the number of
    /// violations and up to ten descriptions.
    pub fn check_invariants(&self) -> (usize, Vec<String>) {
        let mut bad = 0usize;
        let mut samples = Vec::new();
        let mut note = |bad: &mut usize, s: String| {
            *bad += 1;
            if samples.len() < 10 {
                samples.push(s);
            }
        };
        let n = self.members.len();
        for &(id, i) in &self.members {
            let node = &self.slots[i as usize].node;
            let succ = node.successors();
            if n > 1 && succ.is_empty() {
                note(
                    &mut bad,
                    format!("node {i} ({id}) has an empty successor list"),
                );
                continue;
            }
            let mut last = 0u64;
            for (k, s) in succ.iter().enumerate() {
                if s.id == id {
                    note(&mut bad, format!("node {i} lists itself at {k}"));
                }
                let d = id.distance_to(s.id);
                if d <= last && k > 0 {
                    note(
                        &mut bad,
                        format!("node {i}: successor list out of order or duplicated at {k}"),
                    );
                }
                last = d;
                // Dead entries deeper in a list are not an invariant
                // violation: after failures they leave one period at a time
                // as lists are copied (counted in `stale_successor_entries`).
                if k == 0 && !self.slots[s.addr as usize].alive {
                    note(
                        &mut bad,
                        format!("node {i}: first successor (node {}) is dead", s.addr),
                    );
                }
            }
            if let (Some(first), Some(truth)) =
                (succ.first(), self.true_successor(Id(id.0.wrapping_add(1))))
                && first.addr != truth
            {
                note(
                    &mut bad,
                    format!(
                        "node {i}: first successor {} but true successor {truth}",
                        first.addr
                    ),
                );
            }
        }
        if n > 1 {
            // Exactly one ring: first successors from the lowest id visit
            // every live member once and come back.
            let start = self.members[0].1;
            let mut seen = vec![false; self.slots.len()];
            let mut cur = start;
            let mut steps = 0usize;
            loop {
                if seen[cur as usize] {
                    break;
                }
                seen[cur as usize] = true;
                steps += 1;
                match self.slots[cur as usize].node.successors().first() {
                    Some(s) if self.slots[s.addr as usize].alive => cur = s.addr,
                    _ => break,
                }
            }
            if cur != start || steps != n {
                note(
                    &mut bad,
                    format!(
                        "following successors from node {start} visits {steps} of {n} live nodes"
                    ),
                );
            }
        }
        (bad, samples)
    }

    /// Entries naming dead nodes anywhere in live members' successor lists.
    pub fn stale_successor_entries(&self) -> usize {
        self.members
            .iter()
            .map(|&(_, i)| {
                let node = &self.slots[i as usize].node;
                node.successors()
                    .iter()
                    .filter(|s| !self.slots[s.addr as usize].alive)
                    .count()
            })
            .sum()
    }

    pub(super) fn wrong_predecessors(&self) -> usize {
        let n = self.members.len();
        if n < 2 {
            return 0;
        }
        self.members
            .iter()
            .enumerate()
            .filter(|(k, (_, i))| {
                let truth = self.members[(k + n - 1) % n].1;
                self.slots[*i as usize].node.predecessor().map(|p| p.addr) != Some(truth)
            })
            .count()
    }

    /// Run the final census and assemble the report.
    pub(super) fn report(&mut self, settle_periods: u64) -> Report {
        let period = self.period();
        self.run_periods(settle_periods);
        let (violations, samples) = self.check_invariants();
        let stale = self.stale_successor_entries();
        let rings_after_heal = self.rings();
        let zombies = self.zombies();
        let double_owned_keys = self.double_owned_keys();
        let lookups = self.cfg.lookups;
        self.census_lookups(lookups, 5 * period);
        self.census_reads(5 * period);
        self.run_periods(5 + 8);
        let mut hops = std::mem::take(&mut self.hops);
        hops.sort_unstable();
        let mean = if hops.is_empty() {
            0.0
        } else {
            hops.iter().map(|&h| h as f64).sum::<f64>() / hops.len() as f64
        };
        let p99 = if hops.is_empty() {
            0
        } else {
            hops[((hops.len() - 1) as f64 * 0.99).round() as usize]
        };
        let sim_seconds = self.now as f64 / 1000.0;
        let live = self.members.len();
        let held: Vec<usize> = self
            .members
            .iter()
            .map(|&(_, i)| self.slots[i as usize].node.records().count())
            .collect();
        let records_held = self
            .slots
            .iter()
            .filter(|s| s.alive)
            .map(|s| s.node.records().count())
            .sum();
        let copies = (self.cfg.ring.successors + 1).min(live.max(1)) as f64;
        Report {
            nodes: self.cfg.nodes,
            live_nodes: live,
            seed: self.cfg.seed,
            lookups: self.lookups,
            lookups_ok: self.lookups_ok,
            lookup_success: if self.lookups == 0 {
                0.0
            } else {
                self.lookups_ok as f64 / self.lookups as f64
            },
            mean_hops: mean,
            p99_hops: p99,
            records_written: self.written.len(),
            records_lost: self.records_lost(),
            records_unheld: self.records_unheld(),
            acked_writes_lost: self.acked_lost,
            stale_acks: self.stale_acks,
            reads_failed: self.reads_failed,
            rings_after_heal,
            periods_to_one_ring: self.periods_to_one_ring,
            zombies,
            double_owned_keys,
            reads: self.reads,
            reads_ok: self.reads_ok,
            invariant_violations: violations,
            violation_samples: samples,
            wrong_predecessors: self.wrong_predecessors(),
            stale_successor_entries: stale,
            failed_joins: self.failed_joins,
            messages: self.messages,
            messages_per_node_per_sec: self.messages as f64
                / (self.cfg.nodes.max(1) as f64 * sim_seconds.max(1e-9)),
            sim_seconds,
            records_held,
            records_per_node_mean: held.iter().sum::<usize>() as f64 / live.max(1) as f64,
            records_per_node_max: held.iter().copied().max().unwrap_or(0),
            records_per_node_ideal: copies * self.written.len() as f64 / live.max(1) as f64,
        }
    }
}

/// Rings among `members` of a simulation of `slots` nodes: cycles of the
/// first-successor pointers `next` gives (`None` where a pointer leads out
/// of the members, which then belong to no ring). Shared by ringsim's and
/// gridsim's checks.
pub(crate) fn count_rings(
    slots: usize,
    members: impl IntoIterator<Item = u32>,
    next: impl Fn(u32) -> Option<u32>,
) -> usize {
    // 0 = unvisited, 1 = on the current walk, 2 = done.
    let mut state = vec![0u8; slots];
    let mut rings = 0;
    for start in members {
        let mut walk = Vec::new();
        let mut cur = start;
        loop {
            match state[cur as usize] {
                1 => {
                    rings += 1;
                    break;
                }
                2 => break,
                _ => {}
            }
            state[cur as usize] = 1;
            walk.push(cur);
            match next(cur) {
                Some(n) => cur = n,
                None => break,
            }
        }
        for w in walk {
            state[w as usize] = 2;
        }
    }
    rings
}
