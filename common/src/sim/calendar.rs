//! A calendar queue (Brown, 1988) for the simulator's events.
//!
//! Almost every event the simulator schedules lies a bounded distance
//! ahead: a message at most `latency_max` ms, a node's next timer at most a
//! stabilization period. A ring of one-millisecond buckets covering that
//! horizon turns a push into an append and a pop into a read from the
//! current bucket, where a binary heap pays `O(log n)` sifts through a
//! large, cache-cold array. The rare event beyond the horizon (a client
//! action scheduled periods ahead, the end of a pause) waits in a small
//! binary heap.
//!
//! Order is exactly a binary heap's on `(time, insertion order)`: within
//! one bucket every event has the same time and events are appended in
//! insertion order, and an event in the far heap for time `t` was pushed
//! before any event in `t`'s bucket (the cursor only moves forward, so once
//! `t` is within the horizon nothing for `t` goes to the far heap again);
//! the far heap's events for `t` are therefore served first.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Events ordered by time, ties in insertion order.
#[derive(Debug)]
pub struct CalendarQueue<T> {
    /// Bucket `t & mask` holds the events for time `t`, for every `t` in
    /// `[cursor, cursor + horizon)`.
    buckets: Vec<Vec<T>>,
    mask: u64,
    /// No event is earlier than this; pushes before it are clamped to it.
    cursor: u64,
    /// The events for `cursor` taken out of their bucket, being served.
    current: std::vec::IntoIter<T>,
    /// Events in `buckets` (not counting `current`).
    in_buckets: usize,
    /// Events at or beyond the horizon when they were pushed.
    far: BinaryHeap<Far<T>>,
    far_seq: u64,
}

#[derive(Debug)]
struct Far<T> {
    at: u64,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Far<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<T> Eq for Far<T> {}
impl<T> PartialOrd for Far<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Far<T> {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<T> CalendarQueue<T> {
    /// An empty queue whose buckets cover at least `horizon` ms (rounded up
    /// to a power of two); time starts at 0.
    pub fn new(horizon: u64) -> Self {
        let width = horizon.max(1).next_power_of_two();
        CalendarQueue {
            buckets: (0..width).map(|_| Vec::new()).collect(),
            mask: width - 1,
            cursor: 0,
            current: Vec::new().into_iter(),
            in_buckets: 0,
            far: BinaryHeap::new(),
            far_seq: 0,
        }
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.current.len() + self.in_buckets + self.far.len()
    }

    /// The events [`CalendarQueue::pop_until`] returns next, in order,
    /// without removing them: what is left of the current time's bucket
    /// (events pushed later, even for the same time, come after these, and
    /// the far heap has none for this time once its bucket is being
    /// served). A simulator looks ahead here to prefetch what they touch.
    pub fn upcoming(&self) -> &[T] {
        self.current.as_slice()
    }

    /// The event [`CalendarQueue::pop_until`] returns next if it is due at
    /// the queue's current time (the last time popped or passed to it),
    /// without removing it.
    pub fn peek_now(&self) -> Option<&T> {
        self.current
            .as_slice()
            .first()
            .or_else(|| {
                self.far
                    .peek()
                    .filter(|f| f.at == self.cursor)
                    .map(|f| &f.item)
            })
            .or_else(|| self.buckets[(self.cursor & self.mask) as usize].first())
    }

    /// Every waiting event, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.current
            .as_slice()
            .iter()
            .chain(self.buckets.iter().flatten())
            .chain(self.far.iter().map(|f| &f.item))
    }

    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Schedule `item` at time `at`. Time never runs backwards in a
    /// discrete-event simulation, so `at` must not be earlier than the last
    /// time popped or passed to [`CalendarQueue::pop_until`]; an earlier
    /// `at` is served at that time instead.
    pub fn push(&mut self, at: u64, item: T) {
        debug_assert!(at >= self.cursor, "event at {at} before {}", self.cursor);
        let at = at.max(self.cursor);
        if at - self.cursor <= self.mask {
            self.buckets[(at & self.mask) as usize].push(item);
            self.in_buckets += 1;
        } else {
            self.far_seq += 1;
            self.far.push(Far {
                at,
                seq: self.far_seq,
                item,
            });
        }
    }

    /// Remove and return the earliest event if it is due at or before
    /// `limit`, with its time. The queue's time moves forward to that event,
    /// or to `limit` when none is due (never past it, so that events may
    /// still be pushed for `limit`).
    pub fn pop_until(&mut self, limit: u64) -> Option<(u64, T)> {
        loop {
            if self.cursor > limit {
                return None;
            }
            if let Some(item) = self.current.next() {
                return Some((self.cursor, item));
            }
            if self.far.peek().is_some_and(|f| f.at == self.cursor) {
                let f = self.far.pop()?;
                return Some((f.at, f.item));
            }
            let bucket = &mut self.buckets[(self.cursor & self.mask) as usize];
            if !bucket.is_empty() {
                self.in_buckets -= bucket.len();
                self.current = std::mem::take(bucket).into_iter();
                continue;
            }
            if self.cursor == limit {
                return None;
            }
            self.cursor = if self.in_buckets == 0 {
                // Nothing near: jump straight to the far heap's next event.
                self.far.peek().map_or(limit, |f| f.at.min(limit))
            } else {
                self.cursor + 1
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::cmp::Reverse;

    /// The oracle: a binary heap on (time, insertion order), served with
    /// the same "due at or before `limit`" rule.
    struct Oracle {
        heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
        seq: u64,
    }

    impl Oracle {
        fn push(&mut self, at: u64, item: u32) {
            self.seq += 1;
            self.heap.push(Reverse((at, self.seq, item)));
        }
        fn pop_until(&mut self, limit: u64) -> Option<(u64, u32)> {
            let &Reverse((at, _, item)) = self.heap.peek()?;
            if at > limit {
                return None;
            }
            self.heap.pop();
            Some((at, item))
        }
    }

    /// Random pushes (many ties, some beyond the horizon) and pops with
    /// random limits: the calendar serves exactly the heap's order.
    fn against_oracle(seed: u64, horizon: u64, spread: u64, steps: usize) {
        println!("seed {seed}, horizon {horizon}, spread {spread}");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut cal = CalendarQueue::new(horizon);
        let mut oracle = Oracle {
            heap: BinaryHeap::new(),
            seq: 0,
        };
        let mut now = 0u64;
        let mut next_item = 0u32;
        let mut popped = 0usize;
        for _ in 0..steps {
            if rng.random_bool(0.55) {
                // Mostly near (ties are common), now and then far ahead.
                let ahead = if rng.random_bool(0.1) {
                    rng.random_range(0..spread * 20)
                } else {
                    rng.random_range(0..spread)
                };
                cal.push(now + ahead, next_item);
                oracle.push(now + ahead, next_item);
                next_item += 1;
            } else {
                let limit = now + rng.random_range(0..spread / 2 + 1);
                loop {
                    let got = cal.pop_until(limit);
                    assert_eq!(got, oracle.pop_until(limit), "seed {seed}");
                    match got {
                        Some((at, _)) => {
                            now = at;
                            popped += 1;
                            // Pushes while serving a time, as the simulator does.
                            if rng.random_bool(0.2) {
                                let ahead = rng.random_range(0..3);
                                cal.push(now + ahead, next_item);
                                oracle.push(now + ahead, next_item);
                                next_item += 1;
                            }
                            if rng.random_bool(0.3) {
                                break;
                            }
                        }
                        None => {
                            now = limit;
                            break;
                        }
                    }
                }
            }
            assert_eq!(cal.len(), oracle.heap.len());
        }
        // Drain both completely.
        loop {
            let got = cal.pop_until(u64::MAX);
            assert_eq!(got, oracle.pop_until(u64::MAX), "seed {seed}");
            if got.is_none() {
                break;
            }
            popped += 1;
        }
        assert!(cal.is_empty());
        assert!(
            popped > steps / 4,
            "the run must pop a good share: {popped}"
        );
    }

    #[test]
    fn serves_a_binary_heaps_order_with_ties_and_far_events() {
        for seed in 0..6 {
            against_oracle(seed, 64, 40, 20_000);
        }
    }

    #[test]
    fn serves_a_binary_heaps_order_when_most_events_are_far() {
        for seed in 10..14 {
            against_oracle(seed, 8, 100, 20_000);
        }
    }

    #[test]
    fn serves_a_binary_heaps_order_in_a_one_bucket_calendar() {
        against_oracle(20, 1, 5, 10_000);
    }

    #[test]
    fn upcoming_shows_the_next_pops_in_order() {
        let mut cal = CalendarQueue::new(16);
        for (at, c) in [(5, 'a'), (5, 'b'), (7, 'x'), (5, 'c'), (100, 'f')] {
            cal.push(at, c);
        }
        assert!(cal.upcoming().is_empty(), "nothing is being served yet");
        assert_eq!(cal.pop_until(1000), Some((5, 'a')));
        assert_eq!(cal.upcoming(), &['b', 'c']);
        // A push for the same time goes after what is shown.
        cal.push(5, 'd');
        assert_eq!(cal.upcoming(), &['b', 'c']);
        let next: Vec<_> = (0..3).map_while(|_| cal.pop_until(1000)).collect();
        assert_eq!(next, vec![(5, 'b'), (5, 'c'), (5, 'd')]);
        assert_eq!(cal.pop_until(1000), Some((7, 'x')));
        assert!(cal.upcoming().is_empty());
    }

    #[test]
    fn never_moves_past_the_limit() {
        let mut cal = CalendarQueue::new(16);
        cal.push(100, 'a');
        assert_eq!(cal.pop_until(50), None);
        // Time stopped at 50, so an event for 50 is still accepted and
        // served before the later one.
        cal.push(50, 'b');
        assert_eq!(cal.pop_until(1000), Some((50, 'b')));
        assert_eq!(cal.pop_until(1000), Some((100, 'a')));
        assert_eq!(cal.pop_until(1000), None);
    }
}
