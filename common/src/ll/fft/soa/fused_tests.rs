//! The fused pass (inverse column passes, carry, forward column passes in
//! one sweep) against the separate passes it replaces.

use super::super::Isa as PubIsa;
use super::super::digits::{balanced_digits, word_start};
use super::super::plan::{GROUP, LEAF};
use super::fused::FUSED_MIN_LEN;
use super::squarer::SoaSquarer;
use num_bigint::BigUint;
use rand::{Rng, SeedableRng};

/// The squarer at (p, n) with `isa`'s kernels and the fused pass on, or
/// `None` (reported where CI shows it) on a CPU without them.
fn fused_squarer(test: &str, isa: PubIsa, p: u64, n: usize, threads: usize) -> Option<SoaSquarer> {
    let Some(kernels) = isa.kernels() else {
        super::super::isa::report_skip(test, isa);
        return None;
    };
    let mut s = SoaSquarer::new(p, n, kernels, threads);
    // On whatever the environment says (see `FUSED_ENV`).
    s.set_fused(true);
    Some(s)
}

/// A pseudo-random residue of M_p from `seed`.
fn random_residue(p: u64, seed: u64) -> BigUint {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let bytes: Vec<u8> = (0..p.div_ceil(8)).map(|_| rng.random()).collect();
    let m = (BigUint::from(1u8) << p) - 1u8;
    BigUint::from_bytes_le(&bytes) % m
}

/// Over many iterations at 256K, 512K and 1M words (about 18 bits per
/// word, as the length table runs them), and at the lengths q·2^k 160K,
/// 288K, 320K, 384K, 448K, 480K and 576K (the radix-q pass inside the
/// sweep), on one, two and three threads
/// (one range of column groups per thread, carried apart and settled
/// afterwards), the fused pass leaves the same number as the separate
/// passes after every iteration, with the −2 put at words where rows,
/// column groups and ranges meet (first and last word of a row, the first
/// word of each thread's range, the top word, word 0) and elsewhere; its
/// round-off check runs and measures what the separate carry measures,
/// to within the difference of their (equal-valued) inputs.
#[test]
fn fused_pass_matches_the_separate_passes() {
    for isa in [PubIsa::Avx512, PubIsa::Avx2] {
        fused_matches_separate(isa);
    }
}

/// [`fused_pass_matches_the_separate_passes`] with `isa`'s kernels.
fn fused_matches_separate(isa: PubIsa) {
    let cases = [
        (4_718_599u64, FUSED_MIN_LEN, 1),
        (4_718_599u64, FUSED_MIN_LEN, 3),
        (9_437_189, 2 * FUSED_MIN_LEN, 2),
        (18_776_473, 4 * FUSED_MIN_LEN, 1),
        (18_776_473, 4 * FUSED_MIN_LEN, 2),
        (2_976_221, 5 << 15, 1),
        (5_782_013, 5 << 16, 1),
        (5_782_013, 5 << 16, 3),
        (6_972_593, 3 << 17, 2),
        (8_090_057, 7 << 16, 1),
        (5_782_013, 9 << 15, 2),
        (11_391_823, 9 << 16, 1),
        (9_530_803, 15 << 15, 2),
    ];
    for (p, n, threads) in cases {
        let test = "fused_pass_matches_the_separate_passes";
        let Some(mut fused) = fused_squarer(test, isa, p, n, threads) else {
            return;
        };
        assert!(
            fused.fused_applies() && fused.fused.is_some(),
            "p={p} n={n}"
        );
        let mut plain = SoaSquarer::new(p, n, fused.fft.isa, 1);
        plain.set_fused(false);
        let seed = p ^ 0xf05e;
        eprintln!("{test}: {isa} p={p} n={n} threads={threads} seed={seed}");
        let x = random_residue(p, seed);
        fused.load(&x);
        plain.load(&x);
        let bit = |j: u64| word_start(j, p, n as u64);
        let row = 2 * LEAF as u64;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut shifts = vec![0, bit(row) - 1, bit(row), bit(3 * row - 1), p - 1, bit(16)];
        // Where block 1 of a q·2^k length starts, and the word before.
        let block = (n / (n >> n.trailing_zeros())) as u64;
        if block < n as u64 {
            shifts.extend([bit(block), bit(block) - 1, bit(2 * block + 7)]);
        }
        // The first word of each thread's range in rows 0 and 5, and the
        // word before it.
        let groups = (LEAF / GROUP) as u64;
        for k in 1..threads as u64 {
            let w = 2 * GROUP as u64 * (k * groups / threads as u64);
            shifts.extend([bit(w), bit(w) - 1, bit(5 * row + w), bit(5 * row + w) - 1]);
        }
        shifts.extend((0..34).map(|_| rng.random_range(0..p)));
        for (it, &shift) in shifts.iter().enumerate() {
            let (ef, ep) = (fused.iterate(shift), plain.iterate(shift));
            assert!(
                ef > 0.0 && ef < 0.4 && ep < 0.4,
                "p={p} iteration {it}: round-off fused {ef}, separate {ep}"
            );
            assert!(
                ef <= 2.0 * ep + 0.01 && ep <= 2.0 * ef + 0.01,
                "p={p} iteration {it}: round-off fused {ef}, separate {ep}"
            );
            if it < 8 || it % 8 == 0 || it + 1 == shifts.len() {
                assert!(
                    fused.value() == plain.value(),
                    "{isa} p={p} n={n} threads={threads}: the residues differ after iteration {it}"
                );
            }
        }
        // After `finish` the words are the digits the carry left, within
        // one unit of balanced, and the squaring goes on from them.
        fused.finish();
        let v = fused.value();
        for j in 0..n {
            let limit = (1i64 << (fused.bits[j] - 1)) + 1;
            assert!(fused.digit(j).abs() <= limit, "p={p} word {j}");
        }
        assert_eq!(
            balanced_digits(&v, &fused.bits).len(),
            n,
            "p={p}: digits of the residue"
        );
        let (ef, ep) = (fused.iterate(5), plain.iterate(5));
        assert!(ef < 0.4 && ep < 0.4);
        assert!(fused.value() == plain.value(), "p={p}: after finish");
    }
}

/// Garbage in the words (a NaN, or products too large to round: far too
/// many bits per word for the length) makes the fused pass report a
/// round-off past any limit, as the separate passes do.
#[test]
fn fused_pass_reports_garbage_as_large_error() {
    let n = FUSED_MIN_LEN;
    let test = "fused_pass_reports_garbage_as_large_error";
    for isa in [PubIsa::Avx512, PubIsa::Avx2] {
        for threads in [1, 2] {
            let Some(mut s) = fused_squarer(test, isa, 4_718_599, n, threads) else {
                continue;
            };
            s.load(&random_residue(4_718_599, 7));
            s.set_word(1000, f64::NAN);
            assert_eq!(s.iterate(3), f64::INFINITY, "{isa}, {threads} threads");
        }
        // 26 bits per word: products near 2^64, far past the 53-bit mantissa.
        let p = 26 * n as u64 + 1;
        let Some(mut s) = fused_squarer(test, isa, p, n, 1) else {
            continue;
        };
        assert!(s.fused_applies() && s.fused.is_some());
        s.load(&random_residue(p, 8));
        let e = s.iterate(3);
        assert!(e > 0.4, "{isa}: round-off {e} at 26 bits per word");
    }
}
