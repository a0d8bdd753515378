//! The whole engine, forced onto every instruction set this CPU has, against
//! the reference engine: full tests, sampled iterations on full-size data,
//! the round-off rollback and threads. The squarer-level tests in `soa/tests.rs`
//! compare kernels; these make sure each set also carries a real run, since
//! an engine left to itself only ever uses the best set.

use super::*;
use crate::ll::{ReferenceEngine, Status};

fn forced(isa: Isa) -> FftOptions {
    FftOptions {
        isa: Some(isa),
        ..FftOptions::default()
    }
}

/// A random residue of M_p part-way through a test (seeded), started at
/// shift p/7: the engine tests' helper.
fn random_checkpoint(p: u64, iteration: u64, seed: u64) -> Checkpoint {
    super::tests::random_checkpoint(p, p / 7, iteration, seed)
}

#[test]
fn full_tests_on_every_instruction_set() {
    // Two primes and a composite, on our own FFT (512, 1024 and 1024
    // words), to the end.
    let cases: Vec<_> = [
        (9_689u64, Status::Prime),
        (19_937, Status::Prime),
        (19_927, Status::Composite),
    ]
    .into_iter()
    .map(|(p, want)| {
        let b = ReferenceEngine::new(p, p / 3)
            .unwrap()
            .run_to_end()
            .unwrap();
        (p, want, b)
    })
    .collect();
    for isa in Isa::available() {
        for (p, want, b) in &cases {
            let (p, want) = (*p, *want);
            let mut f = FftEngine::with_options(p, p / 3, forced(isa)).unwrap();
            assert_eq!(f.isa(), isa);
            assert!(f.own_fft(), "M{p} runs on rustfft: {f:?}");
            let a = f.run_to_end().unwrap();
            assert_eq!(a.status, want, "M{p} on {isa}");
            assert_eq!((a.status, a.res64), (b.status, b.res64), "M{p} on {isa}");
            let s = f.stats();
            assert_eq!(s.roundoff_retries + s.jacobi_failures, 0, "{isa}: {s:?}");
            assert!(s.max_roundoff < 0.25, "M{p} on {isa}: {s:?}");
        }
    }
}

#[test]
fn sampled_full_size_iterations_on_every_instruction_set() {
    // 65536 words: the AVX-512 path's column groups, 1024-point leaves and
    // lane carry, the others' generic ones; one and two threads.
    let (p, iters) = (1_257_787u64, 6);
    let c = random_checkpoint(p, 5_000, 0x15a);
    let mut r = ReferenceEngine::resume(&c).unwrap();
    r.advance(iters).unwrap();
    let want = r.checkpoint().residue;
    for isa in Isa::available() {
        for threads in [1, 2] {
            let mut f = FftEngine::resume_with_options(
                &c,
                FftOptions {
                    threads,
                    ..forced(isa)
                },
            )
            .unwrap();
            assert!(f.own_fft() && f.isa() == isa, "{f:?}");
            f.advance(iters).unwrap();
            assert!(
                f.checkpoint().residue == want,
                "M{p} {isa} {threads} threads"
            );
            assert!(f.stats().max_roundoff < 0.3, "{isa}: {:?}", f.stats());
        }
    }
}

#[test]
fn round_off_rollback_fires_and_recovers_on_every_instruction_set() {
    // 756,839 bits in 32768 words is 23 bits a word, far past the limit:
    // the first squaring's round-off must exceed the limit, and the engine
    // must roll back and finish the iterations at a longer length with the
    // reference's residue.
    let (p, iters) = (756_839u64, 4);
    let c = random_checkpoint(p, 100, 0xb01);
    let mut r = ReferenceEngine::resume(&c).unwrap();
    r.advance(iters).unwrap();
    for isa in Isa::available() {
        let mut f = FftEngine::resume_with_options(
            &c,
            FftOptions {
                fft_length: Some(32_768),
                ..forced(isa)
            },
        )
        .unwrap();
        assert!(f.own_fft(), "{f:?}");
        f.advance(iters).unwrap();
        let s = f.stats();
        assert!(s.roundoff_retries >= 1, "{isa}: {s:?}");
        assert!(f.fft_length().unwrap() > 32_768);
        assert_eq!(f.isa(), isa, "the set survives the length change");
        assert!(f.checkpoint().residue == r.checkpoint().residue, "{isa}");
    }
}

#[test]
fn a_missing_instruction_set_is_refused_not_run() {
    for isa in Isa::ALL {
        let e = FftEngine::with_options(4423, 0, forced(isa));
        if isa.is_available() {
            assert_eq!(e.unwrap().isa(), isa);
        } else {
            assert!(
                matches!(e, Err(LlError::Isa(IsaError::Unavailable(i))) if i == isa),
                "{isa}"
            );
        }
    }
}

#[test]
fn with_a_lane_carry_every_exponent_runs_on_our_fft() {
    // The sets with a hand-written lane carry (AVX-512, AVX2) take the
    // fewer bits per word of a power of two that replaces a 5·2^k length.
    let mut sets = Vec::new();
    for isa in [Isa::Avx512, Isa::Avx2] {
        match isa.kernels() {
            Some(k) => sets.push((isa, k)),
            None => {
                super::isa::report_skip("with_a_lane_carry_every_exponent_runs_on_our_fft", isa)
            }
        }
    }
    // The choice, across the whole table: always our own FFT, at the
    // table's shortest length unless that is 9·2^k outside RADIX9_AT or
    // 15·2^k outside RADIX15_AT (then the next length), 7·2^k below RADIX7_FROM or too short for
    // our FFT (then a power of two).
    let lengths = fft_lengths();
    for &(isa, k) in &sets {
        let mut p = 20_000u64;
        while p < max_exponent(*lengths.last().unwrap()) {
            let shortest = length_index_for(p).unwrap();
            let n = lengths[preferred_length_index(p, shortest, k)];
            assert!(soa::supports(p, n, k), "{isa} p={p}: {n}");
            let s = lengths[past_slow_odd(&lengths, shortest)];
            assert!(
                n == s
                    || (n.is_power_of_two()
                        && ((s.is_multiple_of(7) && s < RADIX7_FROM) || !soa::supports(p, s, k))),
                "{isa} p={p}: {n}"
            );
            p = p * 21 / 20;
        }
    }
    // And the run: the largest exponents of the 5·2^k lengths 160K and
    // 320K, at that length, against the reference on full-size data.
    for n in [5usize << 15, 5 << 16] {
        let mut p = max_exponent(n);
        while !crate::primes::is_prime(p) {
            p -= 1;
        }
        let c = random_checkpoint(p, 1_000, p);
        let mut r = ReferenceEngine::resume(&c).unwrap();
        r.advance(3).unwrap();
        for &(isa, _) in &sets {
            let mut f = FftEngine::resume_with_options(&c, forced(isa)).unwrap();
            let n = f.fft_length().unwrap();
            assert!(f.own_fft() && !n.is_power_of_two(), "{isa} M{p}: {f:?}");
            assert_eq!(n, lengths[length_index_for(p).unwrap()]);
            f.advance(3).unwrap();
            assert!(
                f.checkpoint().residue == r.checkpoint().residue,
                "{isa} M{p} at {n}"
            );
            assert!(
                f.stats().max_roundoff < TARGET_ROUNDOFF,
                "{isa} M{p}: {:?}",
                f.stats()
            );
        }
    }
}

#[test]
fn round_off_rollback_fires_and_recovers_on_the_fused_pass() {
    // 5,636,003 bits in 262,144 words is 21.5 bits a word, past the
    // limit of that length (19.7): the fused pass (AVX-512 or AVX2, from
    // 256K words, one range of column groups per thread) must report the
    // round-off, and the engine roll back and finish at a longer length
    // with the reference's residue.
    let (p, n, iters) = (5_636_003u64, 1usize << 18, 3);
    let c = random_checkpoint(p, 100, 0xf0b);
    let mut r = ReferenceEngine::resume(&c).unwrap();
    r.advance(iters).unwrap();
    for isa in [Isa::Avx512, Isa::Avx2] {
        if !isa.is_available() {
            super::isa::report_skip(
                "round_off_rollback_fires_and_recovers_on_the_fused_pass",
                isa,
            );
            continue;
        }
        for threads in [1, 2] {
            let mut f = FftEngine::resume_with_options(
                &c,
                FftOptions {
                    fft_length: Some(n),
                    threads,
                    ..forced(isa)
                },
            )
            .unwrap();
            assert!(f.own_fft() && f.fft_length() == Some(n), "{f:?}");
            f.advance(iters).unwrap();
            let s = f.stats();
            assert!(s.roundoff_retries >= 1, "{isa}, {threads} threads: {s:?}");
            assert!(f.fft_length().unwrap() > n, "{isa}, {threads} threads");
            assert!(
                f.checkpoint().residue == r.checkpoint().residue,
                "{isa}, {threads} threads"
            );
        }
    }
}
