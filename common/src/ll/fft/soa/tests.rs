//! The SoA FFT against the naive DFT, the SoA squarer against the rustfft
//! squarer bit for bit, and the AVX-512 kernels against the generic ones.

use super::super::digits::{unit_root, word_start};
use super::super::fallback::DwtSquarer;
use super::super::generic::{numerator, word_pow2};
use super::carry::ChunkWeights;
use super::squarer::bitrev;
use super::*;
use num_bigint::BigUint;
use rand::{Rng, SeedableRng};

/// O(m²) DFT, e^{−2πi jk/m}, the obviously-correct oracle.
fn naive_dft(re: &[f64], im: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let m = re.len();
    // ω^{jk} = ω^{jk mod m}: one table, so lengths of ten thousand points
    // take a fraction of a second.
    let roots: Vec<_> = (0..m as u64).map(|k| unit_root(k, m as u64)).collect();
    let mut out = (vec![0.0; m], vec![0.0; m]);
    for k in 0..m {
        let (mut sr, mut si) = (0.0, 0.0);
        for j in 0..m {
            let w = roots[(j * k) % m];
            sr += re[j] * w.re - im[j] * w.im;
            si += re[j] * w.im + im[j] * w.re;
        }
        out.0[k] = sr;
        out.1[k] = si;
    }
    out
}

fn random(m: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (
        (0..m).map(|_| rng.random_range(-1.0..1.0)).collect(),
        (0..m).map(|_| rng.random_range(-1.0..1.0)).collect(),
    )
}

#[test]
fn forward_is_the_dft_in_bit_reversed_order_and_inverse_undoes_it() {
    // Odd and even log2 m, below and above LEAF (breadth-first stages);
    // q·2^k with q = 3, 5, 7, 9, 15, one leaf per block and more (block s,
    // position i then holds X[s + q·bitrev(i)]); 2 and 4 rows a block
    // take the one pass down the rows (2048, 4096, 6144, 12_288, 18_432,
    // 20_480, 36_864), 8 and more the column groups.
    for m in [
        64usize, 128, 256, 512, 1024, 2048, 4096, 8192, 3072, 5120, 7168, 6144, 12_288, 9216,
        18_432, 15_360, 30_720, 20_480, 36_864,
    ] {
        let (re0, im0) = random(m, m as u64);
        let (dr, di) = naive_dft(&re0, &im0);
        let q = m >> m.trailing_zeros();
        let sub = m / q;
        let lg = sub.trailing_zeros();
        for (isa, fma) in Isa::all_supported()
            .into_iter()
            .map(|i| (i, i != Isa::Baseline))
        {
            let fft = SoaFft::new(m, isa);
            let (mut re, mut im) = (re0.clone(), im0.clone());
            let _ = fma;
            fft.forward(&mut re, &mut im);
            let mut worst = 0.0f64;
            for i in 0..m {
                let at = fft.plain_position(i);
                let k = at / sub + q * bitrev(at % sub, lg);
                worst = worst.max((re[i] - dr[k]).abs()).max((im[i] - di[k]).abs());
            }
            assert!(
                worst < 1e-9 * m as f64,
                "m={m} {isa:?} fma={fma}: forward off by {worst}"
            );
            fft.inverse(&mut re, &mut im);
            let mut worst = 0.0f64;
            for i in 0..m {
                worst = worst
                    .max((re[i] / m as f64 - re0[i]).abs())
                    .max((im[i] / m as f64 - im0[i]).abs());
            }
            assert!(
                worst < 1e-12 * m as f64,
                "m={m} {isa:?} fma={fma}: inverse off by {worst}"
            );
        }
    }
}

/// The SoA squarer, with every instruction set this CPU has, computes
/// exactly the same residues as the rustfft squarer, with the −2 at
/// varying shifts (including the words the carry handles outside its
/// chunk loop: the last three and the chunk boundaries).
#[test]
fn soa_squarer_matches_the_rustfft_squarer_bit_for_bit() {
    for &(p, n) in &[
        (4_423u64, 256usize),
        (9_689, 512),
        (86_243, 4096),
        (132_049, 8192),
        (1_257_787, 65536),
        // Fewer bits per word, as when a power-of-two length replaces
        // a shorter rustfft length (see `preferred_length_index`).
        (86_243, 8192),
        (756_839, 65536),
        // Under the generic carry's minimum, on AVX-512's lane carry
        // only: the powers of two that replace 5·2^k lengths, 8.6 to
        // 10.9 bits a word.
        (4_423, 512),
        (2_614_999, 262_144),
        (11_391_823, 1 << 20),
        // q·2^k lengths with the radix-q pass: one leaf per block, a few,
        // and the 160K and 320K at the bits per word it measured.
        (110_503, 6144),
        (190_000, 10_240),
        (250_000, 14_336),
        (700_000, 57_344),
        (1_500_000, 98_304),
        (2_614_999, 163_840),
        (5_152_643, 327_680),
        // 9·2^k: two leaves a block, and 288K (at 18.3 bits a word: at
        // Mlucas's 19.6 rustfft's round-off reaches 0.41).
        (380_000, 18_432),
        (5_400_000, 294_912),
        // 15·2^k: two leaves a block.
        (600_000, 30_720),
        // One radix-2 or radix-4 pass down the rows of each block: 36K
        // (9 blocks of 2 rows) and 40K (5 blocks of 4 rows, at issue 14's
        // 756,839); 36K a bit under its limit, where rustfft's round-off
        // reaches 0.45.
        (700_000, 36_864),
        (756_839, 40_960),
    ] {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(p);
        let digits: Vec<u32> = (0..p.div_ceil(32)).map(|_| rng.random()).collect();
        let x = BigUint::from_slice(&digits) % crate::ll::mersenne(p);
        let mut classic = DwtSquarer::new(p, n, 1);
        classic.load(&x);
        // Every instruction set on one thread, and the best on two (the
        // column groups, leaf pairs and carry chunks then run on a pool).
        let best = Isa::detect();
        let mut soas: Vec<(Isa, SoaSquarer)> = Isa::all_supported()
            .into_iter()
            .map(|isa| (isa, 1))
            .chain([(best, 2)])
            .filter(|&(isa, _)| supports(p, n, isa))
            .map(|(isa, threads)| {
                let mut s = SoaSquarer::new(p, n, isa, threads);
                s.load(&x);
                (isa, s)
            })
            .collect();
        let last = p - 1;
        let boundary = word_start(CARRY_CHUNK as u64, p, n as u64);
        let shifts = [
            0,
            1,
            last,
            last - 30,
            boundary,
            boundary - 1,
            p / 2,
            12_345 % p,
        ];
        assert!(!soas.is_empty(), "p={p} n={n}: no kernels take it");
        // Fewer iterations at a million words: each is a rustfft and a
        // BigUint conversion of 11M bits.
        let iterations = if n > 65536 { 8 } else { 24 };
        for (it, &shift) in shifts.iter().cycle().take(iterations).enumerate() {
            let e0 = classic.square_sub2(shift);
            let v0 = classic.value();
            for (isa, s) in soas.iter_mut() {
                let _ = isa;
                let e = s.iterate(shift);
                assert!(e < 0.4 && e0 < 0.4, "p={p}: round-off {e} / {e0}");
                assert_eq!(
                    s.value(),
                    v0,
                    "p={p} n={n} {isa:?} iteration {it} shift {shift}"
                );
            }
        }
    }
}

/// The hand-written leaf kernels (AVX-512: fused heads, transposed
/// 64-point tails, the pair kernel with its wrap, the self-paired leaves
/// 0 and 1; AVX2: the fused 16-point tails and the 4-lane wrap) take the
/// same input to the same output as the generic kernels, to rounding, at
/// every leaf size (64, 256, 1024; one to 32 leaves).
#[test]
fn hand_written_leaves_match_the_generic_leaves() {
    for isa in [super::super::Isa::Avx512, super::super::Isa::Avx2] {
        if !isa.is_available() {
            super::super::isa::report_skip("hand_written_leaves_match_the_generic_leaves", isa);
        }
    }
    let fast_sets: Vec<Isa> = Isa::all_supported()
        .into_iter()
        .filter(|i| *i != Isa::Baseline)
        .collect();
    for &(p, n) in &[
        (4_423u64, 256usize),
        (9_689, 512),
        (21_701, 1024),
        (44_497, 2048),
        (86_243, 4096),
        (132_049, 8192),
        (1_257_787, 65536),
    ] {
        let m = n / 2;
        let (re, im) = random(m, p);
        for &isa in &fast_sets {
            let mut fast = SoaSquarer::new(p, n, isa, 1);
            let mut slow = SoaSquarer::new(p, n, Isa::Baseline, 1);
            for s in [&mut fast, &mut slow] {
                for i in 0..m {
                    let at = s.fft.pos(i);
                    s.re[at] = re[i];
                    s.im[at] = im[i];
                }
                s.leaves_wrap_square();
            }
            let scale = slow
                .re
                .iter()
                .chain(slow.im.iter())
                .fold(0.0f64, |a, x| a.max(x.abs()));
            let worst = (0..m).fold(0.0f64, |a, i| {
                let at = slow.fft.pos(i);
                a.max((fast.re[at] - slow.re[at]).abs())
                    .max((fast.im[at] - slow.im[at]).abs())
            });
            assert!(
                scale > 0.0 && worst <= 1e-12 * scale,
                "{isa:?} p={p} n={n}: leaves differ by {worst} (values up to {scale})"
            );
        }
    }
}

/// The lane-parallel carries (AVX-512, and AVX2 on the same tables) leave
/// the same number as the generic carry, with the same round-off, in digits within one unit of
/// balanced, on products far larger than a real squaring makes (so big
/// carries cross every segment and chunk boundary and wrap from the top
/// word to word 0), with the −2 at the first and last words of
/// segments and chunks and at the top word.
#[test]
fn lane_carries_match_the_generic_carry() {
    let lanes: Vec<Isa> = Isa::all_supported()
        .into_iter()
        .filter(|i| i.avx512_token().is_some() || i.avx2_token().is_some())
        .collect();
    for isa in [super::super::Isa::Avx512, super::super::Isa::Avx2] {
        if !isa.is_available() {
            super::super::isa::report_skip("lane_carries_match_the_generic_carry", isa);
        }
    }
    for (&(p, n), &isa) in [(9_689u64, 512usize), (1_257_787, 65536)]
        .iter()
        .flat_map(|c| lanes.iter().map(move |i| (c, i)))
    {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(p ^ 0xca11);
        let mut fast = SoaSquarer::new(p, n, isa, 1);
        let mut slow = SoaSquarer::new(p, n, Isa::Baseline, 1);
        let half = (CARRY_CHUNK / 2).min(n / 2);
        let bit_of_word = |j: usize| word_start(j as u64, p, n as u64);
        let chunk = bit_of_word(2 * half);
        let segment = bit_of_word(2 * half / 8);
        let shifts = [0, 1, chunk, chunk - 1, segment, segment - 1, p - 1, p / 3];
        for (it, shift) in shifts.into_iter().enumerate() {
            let scale = if it % 2 == 0 { 1u64 << 49 } else { 1 << 30 };
            for j in 0..n {
                // Unweighted values up to ±2^49 with a fraction of at
                // most 1/8, as a squaring with 0.125 round-off leaves.
                let v = rng.random_range(-(scale as f64)..scale as f64).round()
                    + rng.random_range(-0.125..0.125);
                let x = v / fast.cw.weights(j).1;
                fast.set_word(j, x);
                slow.set_word(j, x);
            }
            let (e1, e0) = (fast.carry(shift), slow.carry(shift));
            assert_eq!(e1.to_bits(), e0.to_bits(), "{isa:?} p={p} shift={shift}");
            assert_eq!(fast.value(), slow.value(), "{isa:?} p={p} shift={shift}");
            for j in 0..n {
                let limit = (1i64 << (fast.bits[j] - 1)) + 1;
                let d = fast.digit(j);
                assert!(
                    d.abs() <= limit,
                    "{isa:?} p={p} shift={shift} word {j}: {d}"
                );
            }
        }
    }
}

/// A product that is garbage (NaN, or too large to round) makes the
/// carry report an infinite round-off, with every instruction set,
/// wherever it is (first word, a lane 7, the last word).
#[test]
fn carry_reports_garbage_products_as_infinite_error() {
    let (p, n) = (86_243u64, 4096usize);
    for isa in Isa::all_supported() {
        for j in [0, 15, 1000, n - 1] {
            for bad in [f64::NAN, 2.0e15, -2.0e15] {
                let mut s = SoaSquarer::new(p, n, isa, 1);
                for k in 0..n {
                    s.set_word(k, 3.0 / s.cw.weights(k).1);
                }
                s.set_word(j, bad / s.cw.weights(j).1);
                let e = s.carry(7);
                assert_eq!(e, f64::INFINITY, "{isa:?} word {j} = {bad}");
            }
            let mut s = SoaSquarer::new(p, n, isa, 1);
            for k in 0..n {
                s.set_word(k, 3.25 / s.cw.weights(k).1);
            }
            let e = s.carry(7);
            assert!((e - 0.25).abs() < 1e-9, "{isa:?}: {e}");
        }
    }
}

/// The carry's two-level weights agree with the definitions: numerator
/// (−jp) mod n, weight 2^{num/n} to a few ulps, 1/(4n·weight), and
/// bits B_{j+1} − B_j, for every word.
#[test]
fn two_level_weights_match_the_definitions() {
    for &(p, n) in &[(9_689u64, 512usize), (86_243, 8192), (1_257_787, 65536)] {
        let cw = ChunkWeights::new(p, n);
        let t = cw.d[0].len();
        for j in 0..n {
            let (i, e) = (j / 2, j % 2);
            let c = cw.consts(i / t);
            let (num, _) = numerator(&c, cw.d[e][i % t]);
            let exact = ((n as u128 - (j as u128 * p as u128) % n as u128) % n as u128) as f64;
            assert_eq!(num, exact, "p={p} n={n} j={j}");
            let (w, u) = cw.weights(j);
            let want = (exact / n as f64).exp2();
            assert!((w / want - 1.0).abs() < 1e-15, "p={p} j={j}: {w} vs {want}");
            assert!(
                (u * 4.0 * n as f64 * want - 1.0).abs() < 1e-15,
                "p={p} j={j}"
            );
            let b = word_start(j as u64 + 1, p, n as u64) - word_start(j as u64, p, n as u64);
            assert_eq!(word_pow2(&c, num).0, (b as f64).exp2(), "p={p} j={j}");
            let (_, wrapped) = numerator(&c, cw.d[e][i % t]);
            // The lane-parallel carry's tables (lane l runs segment l
            // of the chunk, positions l·t/8 ..) say the same.
            let seg = t / 8;
            let (h, l, k) = (i / t, (i % t) / seg, i % seg);
            let f = cw.lane_flags[h * seg + k];
            assert_eq!(f[e] & (1 << l) != 0, wrapped, "p={p} j={j}");
            assert_eq!(f[2 + e] & (1 << l) != 0, b > p / n as u64, "p={p} j={j}");
            let lane = 8 * k + l;
            assert_eq!(cw.lane_u[e][lane], cw.u[e][i % t], "p={p} j={j}");
            assert_eq!(cw.lane_w[e][lane], cw.w[e][i % t], "p={p} j={j}");
        }
    }
}

/// The hand-written AVX2 and AVX-512 radix-3, 5 and 7 passes against the
/// generic pass compiled for the same set, on the whole column range and
/// on ranges of it as the threaded pass cuts them.
#[test]
#[cfg(target_arch = "x86_64")]
fn hand_written_odd_pass_matches_the_generic_one() {
    use super::super::Direction;
    use super::super::Isa as Set;
    use super::super::avx2::odd_columns_avx2;
    use super::super::avx512::odd_columns_avx512;
    use super::super::dispatch::odd_columns;
    use super::super::plan::{LEAF, OddPass, ROW_PAD};
    for (isa, set) in [(Isa::Avx2, Set::Avx2), (Isa::Avx512, Set::Avx512)] {
        if !Isa::supported().contains(&isa) {
            super::super::isa::report_skip("hand_written_odd_pass_matches_the_generic_one", set);
            continue;
        }
        // The shortest range each kernel takes: one vector.
        let lanes = if isa == Isa::Avx2 { 4 } else { 8 };
        let hand = |r: &mut [&mut [f64]], i: &mut [&mut [f64]], pass: &OddPass, at| match (
            isa.avx512_token(),
            isa.avx2_token(),
        ) {
            (Some(t), _) => odd_columns_avx512(t, r, i, pass, at),
            (None, Some(t)) => odd_columns_avx2(t, r, i, pass, at),
            (None, None) => unreachable!("{isa:?} is AVX2 or AVX-512"),
        };
        for q in [3usize, 5, 7, 9, 15] {
            let pass = OddPass::new(q, 4 * LEAF, LEAF, LEAF + ROW_PAD);
            let b = pass.block;
            let (re0, im0) = random(q * b, q as u64);
            for dir in [Direction::Forward, Direction::Inverse] {
                let (mut gr, mut gi) = (re0.clone(), im0.clone());
                let mut r: Vec<&mut [f64]> = gr.chunks_exact_mut(b).collect();
                let mut i: Vec<&mut [f64]> = gi.chunks_exact_mut(b).collect();
                odd_columns(isa, &mut r, &mut i, &pass, 0, dir);
                for cols in [b, 128, lanes] {
                    let (mut hr, mut hi) = (re0.clone(), im0.clone());
                    let ranges = column_ranges_of(&mut hr, q, b, cols)
                        .into_iter()
                        .zip(column_ranges_of(&mut hi, q, b, cols));
                    for (k, (mut r, mut i)) in ranges.enumerate() {
                        hand(&mut r, &mut i, &pass, (k * cols, dir));
                    }
                    // The inverse twiddle rounds its products in another
                    // order (cmulc), so agreement is to the last bits only.
                    let worst = (hr.iter().zip(&gr))
                        .chain(hi.iter().zip(&gi))
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0f64, f64::max);
                    assert!(
                        worst < 1e-14,
                        "q={q} {dir:?} ranges of {cols}: {isa:?} pass off by {worst}"
                    );
                }
                assert!(gr != re0, "q={q}: the pass changed nothing");
            }
        }
    }
}

/// Columns k·cols.. of each of the q blocks, for each k (the test's own
/// copy of the split, so that a wrong split in the FFT would show).
#[cfg(target_arch = "x86_64")]
fn column_ranges_of(x: &mut [f64], q: usize, b: usize, cols: usize) -> Vec<Vec<&mut [f64]>> {
    let mut out: Vec<Vec<&mut [f64]>> = (0..b.div_ceil(cols)).map(|_| Vec::new()).collect();
    for block in x[..q * b].chunks_exact_mut(b) {
        for (k, r) in block.chunks_mut(cols).enumerate() {
            out[k].push(r);
        }
    }
    out
}

/// The column stages (the radix-q pass included) on two threads give the
/// same bits as on one, for every instruction set and odd factor, forward
/// and inverse: each element's arithmetic is the same whichever thread
/// does it.
#[test]
fn threaded_column_stages_match_one_thread_bit_for_bit() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("two threads");
    for m in [
        8192usize,
        2048,
        4096,
        3 << 12,
        5 << 12,
        7 << 12,
        9 << 11,
        9 << 12,
        15 << 11,
        15 << 12,
    ] {
        for isa in Isa::all_supported() {
            let fft = SoaFft::new(m, isa);
            let len = fft.padded_len();
            let (re0, im0) = random(len, m as u64);
            let (mut ar, mut ai) = (re0.clone(), im0.clone());
            let (mut br, mut bi) = (re0.clone(), im0.clone());
            fft.forward_columns(&mut ar, &mut ai, None);
            fft.forward_columns(&mut br, &mut bi, Some(&pool));
            assert!(ar == br && ai == bi, "m={m} {isa:?}: forward differs");
            assert!(ar != re0, "m={m} {isa:?}: forward changed nothing");
            fft.inverse_columns(&mut ar, &mut ai, None);
            fft.inverse_columns(&mut br, &mut bi, Some(&pool));
            assert!(ar == br && ai == bi, "m={m} {isa:?}: inverse differs");
        }
    }
}

/// Every instruction set's transform is at least as accurate as rustfft's,
/// an independent FFT, at the same length, for each radix of the first
/// pass: both there and back and in the squaring the LL test does
/// (`tuning::fft_accuracy`, root-mean-square over four random vectors).
/// A kernel that lost bits (a twiddle rounded from a product, a sum
/// formed in the wrong order) would show here long before a whole test's
/// largest round-off crossed the engine's limit.
#[test]
fn every_set_is_at_least_as_accurate_as_rustfft() {
    for m in [
        64usize, 1024, 3072, 5120, 7168, 9216, 15_360, 16_384, 65_536,
    ] {
        let runs = super::super::tuning::fft_accuracy(m, 4).expect("a length our FFT runs");
        let (ours, rustfft) = runs.split_at(runs.len() - 1);
        let r = &rustfft[0];
        assert_eq!(r.name, "rustfft");
        assert_eq!(ours.len(), Isa::all_supported().len());
        for a in ours {
            assert!(
                a.roundtrip > 0.0 && a.square > 0.0,
                "m={m} {}: no error measured",
                a.name
            );
            assert!(
                a.roundtrip < r.roundtrip && a.square < r.square,
                "m={m} {}: there and back {:.3e} (rustfft {:.3e}), squaring {:.3e} ({:.3e})",
                a.name,
                a.roundtrip,
                r.roundtrip,
                a.square,
                r.square
            );
        }
    }
}
