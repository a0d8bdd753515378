//! `--max-memory SIZE`: a cap on what the units crunched at once may hold.
//!
//! A unit's need is estimated before its engine is built, from the FFT
//! length the engine's own length table gives for p ([`unit_bytes`]). The
//! [`Budget`] then admits it, makes it wait until units in progress free
//! enough, or refuses it when it alone would exceed the cap (the unit goes
//! back to the grid for a peer with more memory). The decision is the pure
//! [`admit`]; the budget only keeps the books.

use std::collections::BTreeMap;
use std::sync::Mutex;

use mersenne_common::ll::{EngineKind, fft};
use serde::{Deserialize, Serialize};

/// Bytes a word of the transform costs. Our FFT keeps the data (re and
/// im, 8 bytes a word together), the real-wrap roots (8), the carry's
/// weights in two layouts (up to 32) and one byte of word size; rustfft's
/// squarer (complex data, weights, scratch) costs about as much. Checked
/// against the resident memory an engine really takes in
/// `worker/tests/memory.rs`.
pub const BYTES_PER_WORD: u64 = 56;

/// Arrays of at least this many bytes sit on 2 MiB huge pages, rounded up
/// to whole ones (`ll/fft/pages.rs`): up to 2 MiB more for each of the four.
const HUGE_PAGE: u64 = 2 << 20;

/// What a unit holds besides the transform, in copies of the p-bit
/// residue: the last verified and last good states the engine rolls back
/// to, the big-integer temporaries of converting to and from words, the
/// checkpoint being written and the one being read. Resuming from a
/// checkpoint was measured at up to 12 copies at once (M5152643).
const RESIDUE_COPIES: u64 = 16;

/// Fixed cost of a unit (engine, plans, buffers of the checkpoint file).
const BASE: u64 = 1 << 20;

/// The longest FFT length the engine may start M_p at (`None`: the
/// reference engine runs it). `FftEngine`'s planner takes the table's
/// shortest safe length (a 9·2^k one only where the radix-9 pass pays,
/// else the next, 10/9 as long), or the next power of two when that is at most
/// 8/5 as long and the shortest is not a radix-5 length its own kernels
/// run on this CPU; which of the two depends on the CPU, so this is the
/// longer one, and the estimate never falls short of what is allocated.
pub fn planned_fft_length(p: u64) -> Option<usize> {
    if EngineKind::Auto.resolve(p) != EngineKind::Fft {
        return None;
    }
    let n = fft::fft_lengths()[fft::start_index_for(p)?];
    let pow2 = n.next_power_of_two();
    if pow2 * 5 <= n * 8 && pow2 as u64 <= p {
        Some(pow2)
    } else {
        Some(n)
    }
}

/// Bytes one unit of M_p holds while it is crunched on one thread: the
/// transform (FFT length × [`BYTES_PER_WORD`], huge-page rounding), the
/// residue copies and checkpoint buffers, and a fixed part.
pub fn unit_bytes(p: u64) -> u64 {
    let residue = p.div_ceil(8);
    let transform = match planned_fft_length(p) {
        Some(n) => {
            let n = n as u64;
            let big_arrays = n * 4 >= HUGE_PAGE / 8;
            n * BYTES_PER_WORD + if big_arrays { 4 * HUGE_PAGE } else { 0 }
        }
        // num-bigint: the square is twice the residue, plus the fold.
        None => 4 * residue,
    };
    transform + RESIDUE_COPIES * residue + BASE
}

/// What the budget says to a unit that needs `need` bytes when `in_use`
/// are held by units in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// It fits now.
    Run,
    /// It fits once units in progress free memory.
    Wait,
    /// It alone exceeds the cap.
    Refuse,
}

/// The decision: no cap admits everything; a unit larger than the cap is
/// refused; otherwise it runs if it fits beside what is in use.
pub fn admit(cap: Option<u64>, in_use: u64, need: u64) -> Admit {
    match cap {
        None => Admit::Run,
        Some(c) if need > c => Admit::Refuse,
        Some(c) if in_use.saturating_add(need) > c => Admit::Wait,
        Some(_) => Admit::Run,
    }
}

/// What `worker status` shows of the budget.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStatus {
    /// The cap in bytes.
    pub cap: u64,
    /// Bytes held by units in progress.
    pub in_use: u64,
    /// Units waiting for memory: (exponent, bytes needed).
    pub waiting: Vec<(u64, u64)>,
    /// Units refused as too large, most recent last: (exponent, bytes needed).
    pub refused: Vec<(u64, u64)>,
}

/// Refusals remembered for the status.
const REFUSED_KEPT: usize = 16;

#[derive(Debug, Default)]
struct Books {
    held: BTreeMap<u64, u64>,
    waiting: BTreeMap<u64, u64>,
    refused: Vec<(u64, u64)>,
}

/// The units' memory on one peer (shared by the peers of `worker local`,
/// which share one pool).
#[derive(Debug, Default)]
pub struct Budget {
    cap: Option<u64>,
    books: Mutex<Books>,
}

impl Budget {
    /// A budget of `cap` bytes (`None`: unlimited).
    pub fn new(cap: Option<u64>) -> Self {
        Budget {
            cap,
            books: Mutex::default(),
        }
    }

    /// The cap, if any.
    pub fn cap(&self) -> Option<u64> {
        self.cap
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for `need` bytes for unit `p`. On [`Admit::Run`] the bytes are
    /// held until [`Budget::release`]; on `Wait` the unit is listed as
    /// waiting; on `Refuse`, as refused.
    pub fn try_reserve(&self, p: u64, need: u64) -> Admit {
        let mut b = self.books();
        let in_use: u64 = b.held.values().sum();
        let a = admit(self.cap, in_use, need);
        match a {
            Admit::Run => {
                b.waiting.remove(&p);
                b.held.insert(p, need);
            }
            Admit::Wait => {
                b.waiting.insert(p, need);
            }
            Admit::Refuse => {
                b.waiting.remove(&p);
                b.refused.retain(|&(q, _)| q != p);
                b.refused.push((p, need));
                if b.refused.len() > REFUSED_KEPT {
                    b.refused.remove(0);
                }
            }
        }
        a
    }

    /// Unit `p` no longer holds memory, nor waits for it.
    pub fn release(&self, p: u64) {
        let mut b = self.books();
        b.held.remove(&p);
        b.waiting.remove(&p);
    }

    /// The status, when there is a cap.
    pub fn status(&self) -> Option<MemoryStatus> {
        let cap = self.cap?;
        let b = self.books();
        Some(MemoryStatus {
            cap,
            in_use: b.held.values().sum(),
            waiting: b.waiting.iter().map(|(&p, &n)| (p, n)).collect(),
            refused: b.refused.clone(),
        })
    }
}

/// Bytes in words: `1.5 GiB`, `320 MiB`, `12 KiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut x = bytes as f64;
    if x < 1024.0 {
        return format!("{bytes} B");
    }
    let mut unit = "B";
    for u in UNITS {
        if x < 1024.0 {
            break;
        }
        x /= 1024.0;
        unit = u;
    }
    if x < 10.0 {
        format!("{x:.1} {unit}")
    } else {
        format!("{x:.0} {unit}")
    }
}

/// Why a `--max-memory` value was not taken; each holds the value as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSize {
    /// It does not start with a number.
    #[error("{0:?} is not a size (e.g. 512M, 2G, 1.5GiB; a bare number is MiB)")]
    NotASize(String),
    /// The unit after the number is none of ours.
    #[error("unknown unit {unit:?} in {value:?} (use K, M, G or T)")]
    UnknownUnit {
        /// The unit, lower-cased.
        unit: String,
        /// The whole value.
        value: String,
    },
    /// Below one byte, or too large to count in bytes.
    #[error("{0:?} is not a usable size")]
    Unusable(String),
}

/// Parses `--max-memory`: a number with an optional binary unit (`K`, `M`,
/// `G`, `T`, also written `KiB`, `MB`, ...; powers of 1024, as Prime95's
/// memory settings); a bare number is MiB.
pub fn parse_size(s: &str) -> Result<u64, BadSize> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let x: f64 = num.parse().map_err(|_| BadSize::NotASize(s.to_string()))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => 20,
        "b" => 0,
        "k" | "kb" | "kib" => 10,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => {
            return Err(BadSize::UnknownUnit {
                unit: other.to_string(),
                value: s.to_string(),
            });
        }
    };
    let bytes = x * (1u64 << shift) as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(BadSize::Unusable(s.to_string()));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("512").unwrap(), 512 << 20);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("64 kb").unwrap(), 64 << 10);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5X").is_err());
        assert!(parse_size("0").is_err());
        assert_eq!(human(3 << 29), "1.5 GiB");
        assert_eq!(human(320 << 20), "320 MiB");
    }

    #[test]
    fn the_decision_refuses_waits_and_runs() {
        assert_eq!(admit(None, u64::MAX, u64::MAX), Admit::Run);
        assert_eq!(admit(Some(100), 0, 101), Admit::Refuse);
        assert_eq!(admit(Some(100), 60, 50), Admit::Wait);
        assert_eq!(admit(Some(100), 50, 50), Admit::Run);
    }

    #[test]
    fn the_budget_holds_until_released_and_lists_why() {
        let b = Budget::new(Some(100));
        assert_eq!(b.try_reserve(7, 60), Admit::Run);
        assert_eq!(b.try_reserve(11, 50), Admit::Wait);
        assert_eq!(b.try_reserve(13, 200), Admit::Refuse);
        let s = b.status().unwrap();
        assert_eq!((s.cap, s.in_use), (100, 60));
        assert_eq!(s.waiting, vec![(11, 50)]);
        assert_eq!(s.refused, vec![(13, 200)]);
        b.release(7);
        assert_eq!(b.try_reserve(11, 50), Admit::Run);
        let s = b.status().unwrap();
        assert_eq!((s.in_use, s.waiting.len()), (50, 0));
        assert_eq!(Budget::new(None).status(), None);
    }

    #[test]
    fn estimates_grow_with_p_and_follow_the_length_table() {
        // Below the crossover the reference engine runs: no transform.
        assert_eq!(planned_fft_length(1279), None);
        let mut last = 0;
        for p in [1279u64, 4423, 86_243, 1_257_787, 18_776_473, 136_279_841] {
            let b = unit_bytes(p);
            assert!(b > last, "M{p}: {b} after {last}");
            last = b;
            if let Some(n) = planned_fft_length(p) {
                let shortest = fft::fft_lengths()[fft::length_index_for(p).unwrap()];
                assert!(
                    n >= shortest && n * 5 <= shortest * 8,
                    "M{p}: {n} vs {shortest}"
                );
                assert!(b >= n as u64 * BYTES_PER_WORD);
            }
        }
        // The largest test needs gigabytes, the smallest about a megabyte.
        assert!(unit_bytes(136_279_841) > 400 << 20);
        assert!(unit_bytes(4423) < 4 << 20);
    }
}
