//! Workloads: growing the ring, client writes, lookups and reads, churn.

use super::*;

impl Sim {
    pub(super) fn random_member(&mut self) -> u32 {
        let k = self.rng.random_range(0..self.members.len());
        self.members[k].1
    }

    /// Grow the ring to `target` members in waves that double it, every
    /// newcomer joining through the same well-known peer (node 0).
    pub fn grow(&mut self, target: usize) {
        if self.slots.is_empty() {
            let first = self.spawn();
            self.insert_member(first);
            self.flush(first);
        }
        let period = self.period();
        while self.members.len() < target {
            let wave = self.members.len().min(target - self.members.len());
            self.schedule_joins(wave, 0, period);
            self.settle_joins(40);
            self.run_periods(1);
        }
    }

    pub(super) fn schedule_joins(&mut self, count: usize, via: u32, window: u64) {
        for _ in 0..count {
            let node = self.spawn();
            let at = self.now + self.rng.random_range(0..window.max(1));
            self.push(at, Ev::Act(Action::Join { node, via }));
        }
    }

    /// Run until every scheduled join has completed (bounded by `max_periods`).
    pub(super) fn settle_joins(&mut self, max_periods: u64) {
        let period = self.period();
        let end = self.now + max_periods * period;
        self.run_until(self.now + period + 1);
        while self.pending_joins > 0 && self.now < end {
            self.run_until(self.now + period);
        }
    }

    /// Write `count` records through random members, spread over a period.
    pub fn write_records(&mut self, count: usize) {
        let period = self.period();
        for _ in 0..count {
            let node = self.random_member();
            let tag = self.next_tag;
            self.next_tag += 1;
            let key = Id::hash(format!("record-{tag}").as_bytes());
            let at = self.now + self.rng.random_range(0..period);
            self.push(at, Ev::Act(Action::Put { node, key, tag }));
        }
    }

    /// Issue `count` census lookups of random keys from random members,
    /// spread over `window` ms.
    pub fn census_lookups(&mut self, count: usize, window: u64) {
        for _ in 0..count {
            let node = self.random_member();
            let key = Id(self.rng.random());
            let at = self.now + self.rng.random_range(0..window.max(1));
            self.push(at, Ev::Act(Action::Lookup { node, key }));
        }
    }

    /// Read back every acknowledged record from random members.
    pub fn census_reads(&mut self, window: u64) {
        let mut keys: Vec<Id> = self.written.keys().copied().collect();
        keys.sort();
        for key in keys {
            let node = self.random_member();
            let at = self.now + self.rng.random_range(0..window.max(1));
            self.push(at, Ev::Act(Action::Get { node, key }));
        }
    }

    /// Fail `count` random live members at once.
    pub fn fail_random(&mut self, count: usize) {
        for _ in 0..count.min(self.members.len().saturating_sub(1)) {
            let node = self.random_member();
            self.kill(node);
        }
    }

    /// Poisson failures and joins (`rate` of each per period) for `periods`
    /// periods, with lookups and writes running throughout. Lookups during
    /// churn count towards the report.
    pub fn churn(&mut self, rate: f64, periods: u64) {
        let period = self.period();
        let start = self.now;
        let end = start + periods * period;
        // Client load: a census-sized stream of lookups and a few writes per period.
        let lookups_per_period = (self.cfg.lookups as u64 / periods.max(1)).max(10);
        let writes_per_period = (self.cfg.records as u64 / periods.max(1)).max(2);
        let mean_gap = period as f64 / rate.max(1e-9);
        let mut next_fail = start as f64 + self.exp(mean_gap);
        let mut next_join = start as f64 + self.exp(mean_gap);
        let mut t = start;
        while t < end {
            let slice_end = (t + period).min(end);
            self.census_lookups(lookups_per_period as usize, slice_end - t);
            for _ in 0..writes_per_period {
                let node = self.random_member();
                let tag = self.next_tag;
                self.next_tag += 1;
                let key = Id::hash(format!("record-{tag}").as_bytes());
                let at = t + self.rng.random_range(0..(slice_end - t).max(1));
                self.push(at, Ev::Act(Action::Put { node, key, tag }));
            }
            while next_fail < slice_end as f64 {
                let node = self.random_member();
                self.push(next_fail as u64, Ev::Act(Action::Fail { node }));
                next_fail += self.exp(mean_gap);
            }
            while next_join < slice_end as f64 {
                let node = self.spawn();
                let via = self.random_member();
                self.push(next_join as u64, Ev::Act(Action::Join { node, via }));
                next_join += self.exp(mean_gap);
            }
            self.run_until(slice_end);
            t = slice_end;
        }
    }

    pub(super) fn exp(&mut self, mean: f64) -> f64 {
        let u: f64 = self.rng.random();
        -mean * (1.0 - u).ln()
    }

    /// Writes during a fault, spread over `window` ms from random members:
    /// fresh keys, and with `updates` every other write updates a key
    /// already written (never two writes to one key at a time, so the
    /// latest acknowledged write of each key is well defined). Updates of
    /// one key on both sides of a partition are a conflict no ring without
    /// quorums can avoid; the merge hook settles them.
    pub fn fault_writes(&mut self, count: usize, window: u64, updates: bool) {
        let mut keys: Vec<Id> = self.written.keys().copied().collect();
        keys.sort();
        for k in 0..count {
            let node = self.random_member();
            let tag = self.next_tag;
            self.next_tag += 1;
            let key = if !updates || k % 2 == 0 || keys.is_empty() {
                Id::hash(format!("record-{tag}").as_bytes())
            } else {
                keys[self.rng.random_range(0..keys.len())]
            };
            let at = self.now + self.rng.random_range(0..window.max(1));
            self.push(at, Ev::Act(Action::Put { node, key, tag }));
        }
    }

    /// Write `count` records whose keys node `i` owns by the global view,
    /// so that a pause of `i` has something to get wrong.
    pub fn write_owned_by(&mut self, i: u32, count: usize) -> Vec<Id> {
        let mut keys = Vec::new();
        let mut probe = 0u64;
        // Bounded: each try hits i's range with probability about 1/N.
        while keys.len() < count && probe < 200 * count as u64 * self.members.len() as u64 {
            probe += 1;
            let key = Id::hash(format!("owned-{i}-{probe}").as_bytes());
            if self.true_successor(key) == Some(i) {
                keys.push(key);
            }
        }
        let period = self.period();
        for &key in &keys {
            let node = self.random_member();
            let tag = self.next_tag;
            self.next_tag += 1;
            let at = self.now + self.rng.random_range(0..period);
            self.push(at, Ev::Act(Action::Put { node, key, tag }));
        }
        keys
    }

    /// Node `node` writes each of `keys` once, spread over `window` ms.
    pub fn writes_from(&mut self, node: u32, keys: &[Id], window: u64) {
        for &key in keys {
            let tag = self.next_tag;
            self.next_tag += 1;
            let at = self.now + self.rng.random_range(0..window.max(1));
            self.push(at, Ev::Act(Action::Put { node, key, tag }));
        }
    }

    /// Every other member (not `except`) writes each of `keys` once.
    pub fn writes_elsewhere(&mut self, except: u32, keys: &[Id], window: u64) {
        for &key in keys {
            let mut node = self.random_member();
            if node == except {
                node = self.random_member();
            }
            let tag = self.next_tag;
            self.next_tag += 1;
            let at = self.now + self.rng.random_range(0..window.max(1));
            self.push(at, Ev::Act(Action::Put { node, key, tag }));
        }
    }
}
