//! The IBDWT floating-point FFT engine, with error checks that recover by
//! themselves.
//!
//! Squaring is the Crandall–Fagin IBDWT in double precision, on our own
//! structure-of-arrays FFT for lengths k·2^n with k ∈ {1, 3, 5, 7}, on
//! rustfft for the others. The files, from the top down:
//!
//! * `mod.rs`: the engine and its error checks; `backend.rs`: which
//!   squarer runs a length; `lengths.rs`: the length table; `isa.rs`: the
//!   instruction set a caller may force; `tuning.rs`: the hooks of the
//!   profiling examples.
//! * `soa/`: our squarer (`squarer.rs`), the order of its FFT's stages
//!   (`fft.rs`) and its carry (`carry.rs`); `plan.rs`: that FFT's twiddle
//!   tables and column layout.
//! * `dispatch.rs`: the one dispatch point, which runs each kernel compiled
//!   for the detected (or forced) instruction set.
//! * `generic/`: the kernels in plain Rust (what baseline runs, and the
//!   others where no hand-written kernel applies); `avx512/` and `avx2/`:
//!   the hand-written AVX-512 and AVX2 kernels.
//! * `fallback.rs`: the squarer on rustfft; `digits.rs`: the word layout
//!   both squarers share; `pages.rs`: huge-page arrays.
//!
//! Floating point can go wrong in two ways, and both are checked:
//!
//! * **Round-off.** Every iteration measures the largest distance of an
//!   unweighted output from the nearest integer. Past
//!   [`FftOptions::roundoff_limit`] the rounding may have picked the wrong
//!   integer, so the engine discards the work since the last snapshot and
//!   redoes it at the next larger FFT length (where words are smaller).
//!   Like Prime95's, that is an excursion: at the next snapshot the engine
//!   returns to its length. It stays at the longer one only when three
//!   intervals in a row need an excursion, or when the excursions pass
//!   [`excursions_before_moving`]. So an error past the limit costs an
//!   interval or two, not the rest of the test at a longer length, and the
//!   length table can stand where a test at the limit makes a few
//!   (`lengths.rs`).
//! * **Everything else** (a flipped bit in memory, a bug, a bad CPU): the
//!   Jacobi check. For i ≥ 1 the LL residue satisfies (s_i − 2 | M_p) = −1
//!   (s_i − 2 = s_{i−1}² − 4, and the symbol is a known invariant of the
//!   sequence), while a corrupted residue has it −1 only about half the time.
//!   At intervals, and always before the final residue is reported, the
//!   engine computes the symbol; on failure it rolls back to the last state
//!   that passed, and after repeated failures at one point it also moves to
//!   a larger FFT length. Only if that keeps failing does it return an error
//!   — it never reports a residue that failed a check.
//!
//! Since (2 | M_p) = 1, the check can be done on the shifted residue
//! x = s·2^h directly: (x − 2^{h+1} | M_p) = (s − 2 | M_p).

mod avx2;
mod avx512;
mod backend;
mod digits;
mod dispatch;
mod fallback;
mod generic;
mod isa;
mod lengths;
mod pages;
#[cfg(target_arch = "x86_64")]
mod par;
mod plan;
mod soa;
mod team;
mod tuning;

pub use isa::{ISA_ENV, Isa, IsaError};
pub use lengths::{
    EXCURSION_SHARE, TARGET_ROUNDOFF, WRONG_ROUNDING_CHANCE, expected_excursions,
    expected_max_roundoff, fft_lengths, length_index_for, max_bits_per_word, max_exponent,
    outputs_past,
};

use super::jacobi::jacobi;
use super::{
    CHECKPOINT_VERSION, Checkpoint, LlEngine, LlError, check_exponent, mersenne, rotate_left,
    rotate_right, shift_after, to_limbs, total_iterations,
};
use backend::Squarer;
use num_bigint::BigUint;
pub use tuning::{Accuracy, compare_fused, fft_accuracy, profile_soa, region_overhead};

/// Which way our FFT's passes run: forward (decimation in frequency, the
/// spectrum left in bit-reversed order) or inverse (decimation in time
/// from that order, unnormalised).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Forward,
    Inverse,
}

/// The length to start at, given the shortest safe one: that one if our
/// own FFT does it and it is 2^k, 3·2^k, 5·2^k, or 7·2^k from
/// [`RADIX7_FROM`] words up. Else the next power of two if our FFT can do
/// p there and it is at most 1.6× longer (with AVX-512 always, so rustfft
/// is off the hot path: issue 14 measured rustfft's 160K at 3.07 ms an
/// iteration at p = 2,614,999 and our 256K at 2.03 ms at p = 3,021,377);
/// the longer length's words are shorter, so round-off only improves. Else
/// the shortest, on our FFT where it can or rustfft.
///
/// The radix-q pass costs about one more sweep over memory each way. The
/// radix-3 and radix-5 ones pay against the power of two 1.33× and 1.6×
/// longer: 0.71-0.86 of its time at 96K and 384K words, 0.65-0.78 at
/// 160K-640K. The radix-7 one, against the power of two only 1.14× longer,
/// paid at first only once the data was well outside L2 (0.75-0.86 of its
/// time at 224K, 448K and 896K words; 1.0-1.08 at 56K, 1.08-1.27 at 112K).
/// Measured in CPU time with `examples/fft_speed.rs` on a loaded 2-core
/// AVX-512 machine. Since the column stages of short lengths run down the
/// rows (`soa::fft`'s `DOWN_ROWS_MAX`) it pays from 14K words too: 14K
/// 0.92-0.97 of the power of two's time, 28K 0.96, 56K 0.84-0.89, 112K
/// 0.83-0.87 (the fat-LTO worker, `worker ll P --iterations K`, two
/// sittings of three alternating runs on one core).
///
/// A 9·2^k length not in [`RADIX9_AT`] or 15·2^k not in [`RADIX15_AT`]
/// gives way to the next length, 10/9 or 16/15 as long, before any of that.
fn preferred_length_index(p: u64, shortest: usize, isa: dispatch::Isa) -> usize {
    let lengths = fft_lengths();
    let shortest = past_slow_odd(&lengths, shortest);
    let n = lengths[shortest];
    if (!n.is_multiple_of(7) || n >= RADIX7_FROM) && soa::supports(p, n, isa) {
        return shortest;
    }
    (shortest..lengths.len())
        .find(|&i| lengths[i].is_power_of_two())
        .filter(|&i| {
            let m = lengths[i];
            m * 5 <= n * 8 && m as u64 <= p && soa::supports(p, m, isa)
        })
        .unwrap_or(shortest)
}

/// The 9·2^k lengths the engine starts at (see `preferred_length_index`),
/// where the radix-9 pass paid against the next length, 5·2^(k−2), in the
/// fat-LTO worker (`worker ll P --iterations K`, CPU time, the best of
/// three alternating runs on one core; 9·2^k ÷ old): 18K 0.57 (each
/// block one leaf, so no column stage: 1.8 ns a word against 2.7–2.9 at
/// 20K and 24K), 288K 0.96, 576K 0.82. It did not at 36K (1.11), 72K and
/// 144K (1.01–1.02), 1152K (1.07) and 2304K (1.11); at 4608K it was level
/// (0.98, within the noise there). Once the column stages of short lengths
/// ran down the rows (`soa::fft`'s `DOWN_ROWS_MAX`), two sittings gave
/// 36K 0.89-0.99 and 72K 0.85-0.94, taken; 144K 0.99-1.02, not.
const RADIX9_AT: [usize; 5] = [9 << 11, 9 << 12, 9 << 13, 9 << 15, 9 << 16];

/// The 15·2^k lengths the engine starts at: only 7680K words, where the
/// radix-15 pass took about 0.96 of the time of the next length, 8M
/// (136,279,841; `fft_speed --at 136279841 8388608`, 18 alternating pairs
/// in three sittings: 8M ÷ 7680K 0.80–1.20, median 1.045, 13 pairs at
/// 1.02 or more; the best times 33.6 against 35.0 ms). Elsewhere it cost
/// about what the 1/16 fewer words saved, or more: 3840K 0.99 (best of
/// six; most pairs slower), 1920K 1.08, 960K 0.98–1.1 (`fft_fused`), and
/// 1.03–1.26 at 60K–240K, 0.85–1.18 at 30K and 480K (`fft_speed`).
const RADIX15_AT: [usize; 1] = [15 << 19];

/// `i`, or the next index if length i is 9·2^k outside [`RADIX9_AT`] or
/// 15·2^k outside [`RADIX15_AT`] (the next length is 10/9 or 16/15 as
/// long, so p fits it too).
fn past_slow_odd(lengths: &[usize], i: usize) -> usize {
    let n = lengths[i];
    if (n.is_multiple_of(9) && !RADIX9_AT.contains(&n))
        || (n.is_multiple_of(15) && !RADIX15_AT.contains(&n))
    {
        i + 1
    } else {
        i
    }
}

/// Index in [`fft_lengths`] of the length the engine starts M_p at on any
/// instruction set, or of the shorter of the two it may start at (see
/// `preferred_length_index`: a power of two instead on some sets): the
/// shortest safe length, past a 9·2^k or 15·2^k length where the radix-9
/// or radix-15 pass does not pay.
pub fn start_index_for(p: u64) -> Option<usize> {
    length_index_for(p).map(|i| past_slow_odd(&fft_lengths(), i))
}

/// The shortest 7·2^k length the engine starts at (see
/// `preferred_length_index`): 7·2^11 words, the shortest our FFT runs
/// (7·2^15 until the column stages of short lengths ran down the rows).
const RADIX7_FROM: usize = 7 << 11;

/// Settings for an [`FftEngine`].
#[derive(Debug, Clone, PartialEq)]
pub struct FftOptions {
    /// Threads that cooperate on each squaring (four-step FFT and carry in
    /// parallel chunks). 1 is the plain single-threaded transform.
    pub threads: usize,
    /// Start at this FFT length instead of the table's choice. It must be one
    /// of [`fft_lengths`]; a too-short one is caught by the round-off check
    /// and replaced by a longer one.
    pub fft_length: Option<usize>,
    /// Iterations between Jacobi checks; `None` picks a default that keeps
    /// the (quadratic) check to a few per cent of the run time.
    pub jacobi_interval: Option<u64>,
    /// Round-off error past which an iteration is redone at a longer length.
    pub roundoff_limit: f64,
    /// Run our own FFT's kernels with this instruction set instead of the
    /// best the CPU has. `None` takes [`ISA_ENV`] if it is set, else the
    /// best. A set the CPU lacks is refused with [`LlError::Isa`].
    pub isa: Option<Isa>,
}

impl Default for FftOptions {
    fn default() -> Self {
        Self {
            threads: 1,
            fft_length: None,
            jacobi_interval: None,
            roundoff_limit: TARGET_ROUNDOFF,
            isa: None,
        }
    }
}

/// Counters of the error checks, for tests and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FftStats {
    /// Largest round-off error seen on an accepted iteration.
    pub max_roundoff: f64,
    /// Times the round-off limit was exceeded (each redid the interval
    /// since the last snapshot at a longer length).
    pub roundoff_retries: u64,
    /// Jacobi checks run.
    pub jacobi_checks: u64,
    /// Jacobi checks that failed (each caused a rollback).
    pub jacobi_failures: u64,
}

/// A saved state: the shifted residue at an iteration.
#[derive(Debug, Clone)]
struct Snapshot {
    iteration: u64,
    shift: u64,
    x: BigUint,
}

/// Iterations between round-off snapshots: rolling back after a round-off
/// error loses at most this much work, and a snapshot costs about one
/// iteration.
const SNAPSHOT_INTERVAL: u64 = 5_000;

/// Round-off excursions from one length, in all, before the engine stays
/// at the longer one even if they never came three intervals in a row:
/// four times what a test at the length's limit is expected to make
/// ([`expected_excursions`]), and at least 8.
pub fn excursions_before_moving(p: u64) -> u32 {
    (4.0 * expected_excursions(p)).max(8.0) as u32
}

/// Excursions in consecutive intervals before the engine stays at the
/// longer length: a length that is really too short needs one every
/// interval. Three, not two: a test at the limit of 7680K words (144M)
/// makes about 170 excursions in 29,000 intervals, and two of them fall
/// next to each other about once a test (three, once in 170 tests).
const EXCURSION_STREAK_BEFORE_MOVING: u32 = 3;

/// Jacobi failures in a row at one point before the length is raised too,
/// and in total before giving up.
const JACOBI_RETRIES_PER_LENGTH: u32 = 2;
const JACOBI_GIVE_UP: u32 = 8;

/// The default Jacobi interval: every p/2 iterations, so a test gets a check
/// half way and the final one (which always runs).
///
/// The binary Jacobi symbol is quadratic in p, and so is a whole test, so
/// one check costs a roughly constant share of a test: measured 3% at
/// p = 86243 and 3% at p = 216091 (`cargo bench --bench fft_iteration --
/// jacobi` against the per-iteration figures), extrapolated ~4% near
/// p = 1.26M. Two checks per test is the compromise between that cost and
/// the work lost when a failed check rolls back to the previous one.
pub fn default_jacobi_interval(p: u64) -> u64 {
    (p / 2).max(1_000)
}

/// Lucas–Lehmer with IBDWT squaring.
pub struct FftEngine {
    p: u64,
    initial_shift: u64,
    shift: u64,
    iteration: u64,
    sq: Squarer,
    length_index: usize,
    /// The length excursions return to (see the module docs).
    home_index: usize,
    /// Round-off excursions from `home_index` so far, and in consecutive
    /// intervals.
    excursions: u32,
    excursion_streak: u32,
    /// The checked instruction set of our FFT's kernels, kept across
    /// length changes.
    isa: dispatch::Isa,
    options: FftOptions,
    jacobi_interval: u64,
    /// Last state that passed a Jacobi check (or the start).
    verified: Snapshot,
    /// Last state whose iterations all passed the round-off check.
    recent: Snapshot,
    jacobi_fail_streak: u32,
    jacobi_fail_total: u32,
    stats: FftStats,
    /// Test hook: add 2^bit to the residue once, on reaching an iteration.
    fault: Option<(u64, u64)>,
}

impl std::fmt::Debug for FftEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FftEngine")
            .field("p", &self.p)
            .field("iteration", &self.iteration)
            .field("fft_length", &self.sq.len())
            .field("threads", &self.options.threads)
            .field("isa", &self.isa)
            .field("stats", &self.stats)
            .finish()
    }
}

impl FftEngine {
    /// Starts a test of M_p with s_0 = 4·2^shift, one thread.
    pub fn new(p: u64, shift: u64) -> Result<Self, LlError> {
        Self::with_options(p, shift, FftOptions::default())
    }

    /// Starts a test with `threads` threads cooperating on each squaring.
    pub fn with_threads(p: u64, shift: u64, threads: usize) -> Result<Self, LlError> {
        Self::with_options(
            p,
            shift,
            FftOptions {
                threads,
                ..FftOptions::default()
            },
        )
    }

    /// Starts a test with explicit options.
    pub fn with_options(p: u64, shift: u64, options: FftOptions) -> Result<Self, LlError> {
        check_exponent(p)?;
        let shift = if p == 2 { 0 } else { shift };
        if p > 2 && shift >= p {
            return Err(LlError::BadShift { p, shift });
        }
        let x = if p == 2 {
            BigUint::ZERO
        } else {
            rotate_left(&(BigUint::from(4u8) % mersenne(p)), p, shift)
        };
        Self::build(
            p,
            shift,
            Snapshot {
                iteration: 0,
                shift,
                x,
            },
            options,
        )
    }

    /// Resumes from a checkpoint written by any engine, bit for bit.
    pub fn resume(c: &Checkpoint) -> Result<Self, LlError> {
        Self::resume_with_options(c, FftOptions::default())
    }

    /// Resumes from a checkpoint with explicit options.
    pub fn resume_with_options(c: &Checkpoint, options: FftOptions) -> Result<Self, LlError> {
        c.validate()?;
        Self::build(
            c.exponent,
            c.initial_shift,
            Snapshot {
                iteration: c.iteration,
                shift: c.shift,
                x: c.residue_int(),
            },
            options,
        )
    }

    fn build(
        p: u64,
        initial_shift: u64,
        start: Snapshot,
        options: FftOptions,
    ) -> Result<Self, LlError> {
        let lengths = fft_lengths();
        let isa = Isa::resolve(options.isa)?;
        let length_index = match options.fft_length {
            Some(n) => lengths
                .iter()
                .position(|&l| l == n && l as u64 <= p)
                .ok_or_else(|| {
                    LlError::Arithmetic(format!("{n} is not a usable FFT length for M{p}"))
                })?,
            None => preferred_length_index(
                p,
                // Unreachable through the constructors, which refuse
                // p > MAX_EXPONENT, the table's reach or less.
                length_index_for(p).ok_or(LlError::ExponentTooLarge {
                    p,
                    max: super::MAX_EXPONENT,
                })?,
                isa,
            ),
        };
        let threads = options.threads.max(1);
        let mut sq = Squarer::new(p, lengths[length_index], threads, isa);
        sq.load(&start.x);
        Ok(Self {
            p,
            initial_shift,
            shift: start.shift,
            iteration: start.iteration,
            sq,
            length_index,
            home_index: length_index,
            excursions: 0,
            excursion_streak: 0,
            isa,
            jacobi_interval: options
                .jacobi_interval
                .unwrap_or_else(|| default_jacobi_interval(p))
                .max(1),
            options: FftOptions { threads, ..options },
            verified: start.clone(),
            recent: start,
            jacobi_fail_streak: 0,
            jacobi_fail_total: 0,
            stats: FftStats::default(),
            fault: None,
        })
    }

    /// Counters of the error checks so far.
    pub fn stats(&self) -> FftStats {
        self.stats
    }

    /// The last state that passed a Jacobi check (or the starting state).
    ///
    /// [`LlEngine::checkpoint`] saves the *current* state, which may carry a
    /// fault the next check would catch; a checkpoint from here never does
    /// (as far as the Jacobi check can tell), so it is the safer one to keep
    /// for a long run.
    pub fn verified_checkpoint(&self) -> Checkpoint {
        Checkpoint {
            version: CHECKPOINT_VERSION,
            exponent: self.p,
            initial_shift: self.initial_shift,
            shift: self.verified.shift,
            iteration: self.verified.iteration,
            residue: to_limbs(&self.verified.x),
            engine: self.name().to_string(),
        }
    }

    /// Threads cooperating on each squaring.
    pub fn threads(&self) -> usize {
        self.options.threads
    }

    /// The instruction set our FFT's kernels run with (lengths on the
    /// rustfft fallback ignore it).
    pub fn isa(&self) -> Isa {
        Isa::from_kernels(self.isa)
    }

    /// Whether the current length runs on our own FFT (else rustfft).
    pub fn own_fft(&self) -> bool {
        matches!(self.sq, Squarer::Soa(_))
    }

    /// Test hook: on reaching `iteration`, add 2^`bit` to the shifted residue
    /// once, as a flipped bit in memory would.
    #[doc(hidden)]
    pub fn inject_fault(&mut self, iteration: u64, bit: u64) {
        self.fault = Some((iteration, bit % self.p));
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            iteration: self.iteration,
            shift: self.shift,
            x: self.sq.value(),
        }
    }

    fn restore(&mut self, s: &Snapshot, length_index: usize) {
        if length_index != self.length_index {
            self.length_index = length_index;
            self.sq = Squarer::new(
                self.p,
                fft_lengths()[length_index],
                self.options.threads,
                self.isa,
            );
        }
        self.sq.load(&s.x);
        self.iteration = s.iteration;
        self.shift = s.shift;
    }

    fn longer_length(&self) -> Result<usize, LlError> {
        let next = self.length_index + 1;
        if next >= fft_lengths().len() || fft_lengths()[next] as u64 > self.p {
            return Err(LlError::Arithmetic(format!(
                "M{}: errors persist at the longest FFT length {}",
                self.p,
                self.sq.len()
            )));
        }
        Ok(next)
    }

    /// (s − 2 | M_p) = −1 on the current state.
    fn jacobi_ok(&self, x: &BigUint) -> bool {
        let m = mersenne(self.p);
        let two = rotate_left(&BigUint::from(2u8), self.p, self.shift);
        let y = if *x >= two { x - two } else { x + &m - two };
        jacobi(&y, &m) == -1
    }

    fn one_iteration(&mut self) -> f64 {
        if let Some((at, bit)) = self.fault
            && at == self.iteration
        {
            self.fault = None;
            self.sq.flip_bit(bit);
        }
        let next = (2 * self.shift) % self.p;
        let err = self.sq.square_sub2(next);
        self.shift = next;
        self.iteration += 1;
        err
    }
}

impl LlEngine for FftEngine {
    fn name(&self) -> &'static str {
        "fft"
    }
    fn exponent(&self) -> u64 {
        self.p
    }
    fn initial_shift(&self) -> u64 {
        self.initial_shift
    }
    fn iteration(&self) -> u64 {
        self.iteration
    }

    fn advance(&mut self, k: u64) -> Result<u64, LlError> {
        let total = total_iterations(self.p);
        let n = k.min(total - self.iteration);
        let target = self.iteration + n;
        while self.iteration < target {
            let err = self.one_iteration();
            if err > self.options.roundoff_limit || err.is_nan() {
                self.stats.roundoff_retries += 1;
                let next = self.longer_length()?;
                if self.length_index == self.home_index {
                    self.excursions += 1;
                    self.excursion_streak += 1;
                    if self.excursion_streak >= EXCURSION_STREAK_BEFORE_MOVING
                        || self.excursions > excursions_before_moving(self.p)
                    {
                        self.home_index = next;
                        self.excursions = 0;
                        self.excursion_streak = 0;
                    }
                }
                let recent = self.recent.clone();
                self.restore(&recent, next);
                continue;
            }
            self.stats.max_roundoff = self.stats.max_roundoff.max(err);
            let it = self.iteration;
            if it.is_multiple_of(self.jacobi_interval) || it == total {
                let snap = self.snapshot();
                self.stats.jacobi_checks += 1;
                if self.jacobi_ok(&snap.x) {
                    self.jacobi_fail_streak = 0;
                    self.verified = snap.clone();
                    self.recent = snap;
                } else {
                    self.stats.jacobi_failures += 1;
                    self.jacobi_fail_streak += 1;
                    self.jacobi_fail_total += 1;
                    if self.jacobi_fail_total >= JACOBI_GIVE_UP {
                        return Err(LlError::Arithmetic(format!(
                            "M{}: the Jacobi check failed {} times",
                            self.p, self.jacobi_fail_total
                        )));
                    }
                    let mut li = self.length_index;
                    if self.jacobi_fail_streak >= JACOBI_RETRIES_PER_LENGTH {
                        li = self.longer_length()?;
                        self.home_index = li;
                        self.jacobi_fail_streak = 0;
                    }
                    let verified = self.verified.clone();
                    self.recent = verified.clone();
                    self.restore(&verified, li);
                }
            } else if it.is_multiple_of(SNAPSHOT_INTERVAL) {
                self.recent = self.snapshot();
            }
            if self.recent.iteration == it {
                if self.length_index == self.home_index {
                    // An interval at home without an excursion.
                    self.excursion_streak = 0;
                } else if it < total {
                    // The excursion's interval is done: back home.
                    let recent = self.recent.clone();
                    self.restore(&recent, self.home_index);
                }
            }
        }
        debug_assert_eq!(
            self.shift,
            shift_after(self.p, self.initial_shift, self.iteration)
        );
        Ok(n)
    }

    fn residue(&self) -> BigUint {
        if self.p == 2 {
            return BigUint::ZERO;
        }
        rotate_right(&self.sq.value(), self.p, self.shift)
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            version: CHECKPOINT_VERSION,
            exponent: self.p,
            initial_shift: self.initial_shift,
            shift: self.shift,
            iteration: self.iteration,
            residue: to_limbs(&self.sq.value()),
            engine: self.name().to_string(),
        }
    }

    fn fft_length(&self) -> Option<usize> {
        Some(self.sq.len())
    }
}

#[cfg(test)]
mod isa_tests;
#[cfg(test)]
mod mlucas_residues;
#[cfg(test)]
mod tests;
