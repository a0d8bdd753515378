//! An oracle independent of ours: the LL residues Mlucas publishes for its
//! self-test. Ernst W. Mayer's Mlucas (`src/Mlucas.c`, table `MersVec`)
//! lists, for one exponent per FFT length (the largest it runs there), the
//! Res64 of s_100, s_1000 and s_10000 from s_0 = 4. They are facts about
//! M_p, computed by another program on other hardware; here they check our
//! engine on every instruction set, at Mlucas's own exponents (issue 14's
//! 2,614,999 and 5,152,643 among them).

use super::*;

/// [(iterations, Res64)] of one exponent.
type Res64s = &'static [(u64, u64)];

/// (p, [(iterations, Res64)]) from Mlucas's `MersVec`.
const SMALL: [(u64, &[(u64, u64)]); 5] = [
    (
        22_679,
        &[
            (100, 0x27F7_9B32_2B31_FDA9),
            (1_000, 0xF602_AA61_8A82_1226),
            (10_000, 0x31E3_3974_FE4A_B5F8),
        ],
    ),
    (
        109_481,
        &[(100, 0x4353_0D2B_6398_F339), (1_000, 0x9327_D1EB_998E_1F9F)],
    ),
    (
        152_197,
        &[(100, 0xCD9D_42BD_1FC8_898A), (1_000, 0x61AF_4697_185D_79CF)],
    ),
    (
        215_767,
        &[(100, 0x4428_783B_C627_60F0), (1_000, 0xED46_A8C0_0190_8815)],
    ),
    (299_903, &[(100, 0xDB8E_39C6_7F8C_CA0A)]),
];

/// Mlucas's exponents at 64K, 128K and 256K words: 100 iterations. (Its
/// 576K one, 11,391,823, takes 15 s here; the power of two it runs on with
/// AVX-512 is checked bit for bit against the rustfft squarer in `soa/tests.rs`.
/// Its Res64 after 100 iterations is 0x78D8769B9F75FB2B, which this engine
/// matched when the test was written.)
const LARGE: [(u64, u64); 3] = [
    (1_327_099, 0xAC07_0112_2812_29E0),
    (2_614_999, 0x0409_1889_0E98_F8DA),
    (5_152_643, 0x0748_79D8_6679_CB5B),
];

/// Mlucas's exponents that our table starts on a 3·2^k length (12K to
/// 384K words, 17.9-19.3 bits a word), with its Res64 after 100 and (the
/// shorter ones) 1,000 iterations.
const THREE_TIMES_POW2: [(u64, &[(u64, u64)]); 6] = [
    (
        236_813,
        &[(100, 0x592D_849A_F4D1_336F), (1_000, 0xB4EE_B63B_B656_F424)],
    ),
    (
        466_733,
        &[(100, 0xD95F_8EC0_F32B_4756), (1_000, 0xB1F5_8184_918D_94B6)],
    ),
    (919_729, &[(100, 0x6ACC_0321_3A37_BA5B)]),
    (1_812_347, &[(100, 0x81BD_D3AC_63DF_3F73)]),
    (3_571_153, &[(100, 0xA016_F257_7990_2477)]),
    (7_036_339, &[(100, 0xD6A2_26BA_B5E1_4D62)]),
];

/// Mlucas's exponents at its 9·2^k lengths below the fused pass (18K to
/// 144K words, 20.0–20.8 bits a word), at that length on every set.
const NINE_TIMES_POW2: [(usize, u64, Res64s); 4] = [
    (
        9 << 11,
        383_521,
        &[
            (100, 0xBF30_D4AF_5ADF_87C8),
            (1_000, 0x9F45_3732_B3FE_3C04),
            (10_000, 0x0DBF_50D7_F214_2148),
        ],
    ),
    (
        9 << 12,
        755_737,
        &[(100, 0x13B1_3C61_2980_88DC), (1_000, 0x33A2_A43D_E878_2CCC)],
    ),
    (
        9 << 13,
        1_489_223,
        &[(100, 0x6674_518E_A19B_3D6A), (1_000, 0xEB31_2091_097F_6C3B)],
    ),
    (9 << 14, 2_934_479, &[(100, 0x1B90_A273_0198_0A3A)]),
];

/// One exponent per power-of-two length from 256K words, at the
/// 5·2^k lengths 160K, 320K and 640K and the 9·2^k lengths 288K and 576K, with its Res64 after 100 iterations
/// (`MersVec`, as above): 18.6–19.9 bits per word, where our engine runs
/// the carry fused into the column passes (at 5·2^k, with the radix-5
/// pass inside them too).
const FUSED: [(usize, u64, u64); 10] = [
    (5 << 15, 3_253_153, 0x9AFD_3618_C164_D1B4),
    (9 << 15, 5_782_013, 0x9869_BE81_D9AB_1564),
    (9 << 16, 11_391_823, 0x78D8_769B_9F75_FB2B),
    (5 << 16, 6_409_849, 0x2073_9E43_A693_A937),
    (5 << 17, 12_628_613, 0xF951_B697_F5C5_032A),
    (1 << 18, 5_152_643, 0x0748_79D8_6679_CB5B),
    (1 << 19, 10_151_971, 0x7BA3_DD9C_3887_8B83),
    (1 << 20, 19_800_083, 0x95AF_D7A5_269F_14F6),
    (1 << 21, 39_003_229, 0xEC81_0981_F56D_5EC7),
    (1 << 22, 76_821_337, 0x18F1_08A0_AEC9_2DA2),
];

/// 8M words: 4096 rows, the first length where two column passes run
/// over all rows before the sub-blocks (`plan::SUB_ROWS`).
/// `MersVec`'s exponent for 8M words is past our `MAX_EXPONENT`, so this
/// is its exponent for 7680K words (16.9 bits per word here).
const EIGHT_M: (usize, u64, u64) = (1 << 23, 142_037_359, 0x9CD0_C494_D16C_B432);

fn res64(e: &FftEngine) -> u64 {
    e.residue().iter_u64_digits().next().unwrap_or(0)
}

/// Runs M_p from s_0 = 4 (shifted by p/3, which the residue undoes) and
/// checks the Res64 at each listed iteration.
fn check(p: u64, want: &[(u64, u64)], isa: Isa) {
    check_at(p, want, isa, None, 1);
}

/// [`check`] at a given FFT length (`None`: the engine's choice), on
/// `threads` threads.
fn check_at(p: u64, want: &[(u64, u64)], isa: Isa, fft_length: Option<usize>, threads: usize) {
    let mut e = FftEngine::with_options(
        p,
        p / 3,
        FftOptions {
            isa: Some(isa),
            fft_length,
            threads,
            ..FftOptions::default()
        },
    )
    .unwrap();
    for &(at, r) in want {
        e.advance(at - e.iteration()).unwrap();
        assert_eq!(
            res64(&e),
            r,
            "M{p} after {at} iterations on {isa} at {:?} words: {:016X} != Mlucas {r:016X}",
            e.fft_length(),
            res64(&e)
        );
    }
    assert_eq!(e.stats().roundoff_retries, 0, "M{p} on {isa}");
}

#[test]
fn mlucas_self_test_residues_on_every_instruction_set() {
    for isa in Isa::available() {
        for (p, want) in SMALL {
            check(p, want, isa);
        }
    }
}

#[test]
fn mlucas_self_test_residues_at_the_issue_exponents() {
    let isa = Isa::best();
    for (p, r) in LARGE {
        check(p, &[(100, r)], isa);
    }
}

#[test]
fn mlucas_self_test_residues_on_three_times_powers_of_two() {
    let isa = Isa::best();
    for (p, want) in THREE_TIMES_POW2 {
        let n = FftEngine::new(p, 0).unwrap().fft_length().unwrap();
        assert!(
            n.is_multiple_of(3) && n / 3 >= 2048,
            "M{p} starts at {n} words, not on our 3·2^k FFT"
        );
        check(p, want, isa);
    }
}

/// The radix-9 pass (3 × 3) gives Mlucas's residues at its 9·2^k lengths
/// below the fused pass, on every instruction set.
#[test]
fn mlucas_self_test_residues_on_nine_times_powers_of_two() {
    for isa in Isa::available() {
        for (n, p, want) in NINE_TIMES_POW2 {
            check_at(p, want, isa, Some(n), 1);
        }
    }
}

/// The engine starts at a 15·2^k length only where the radix-15 pass paid
/// (`RADIX15_AT`): 7680K, the length Mlucas runs the GIMPS wavefront at;
/// Mlucas's 960K, 1920K and 3840K exponents start at the next power of
/// two.
#[test]
fn the_engine_starts_at_fifteen_times_powers_of_two_where_they_pay() {
    starts_at(&[
        (142_037_359, 15 << 19, 15 << 19),
        (136_279_841, 15 << 19, 15 << 19),
        (18_776_473, 15 << 16, 1 << 20),
        (36_617_407, 15 << 17, 1 << 21),
        (72_123_137, 15 << 18, 1 << 22),
    ]);
}

/// The engine starts at a 9·2^k length only where the radix-9 pass paid
/// (`RADIX9_AT`): Mlucas's 18K, 36K, 72K, 288K and 576K exponents there,
/// its 144K and 1152K ones at the next length, 10/9 as long.
#[test]
fn the_engine_starts_at_nine_times_powers_of_two_where_they_pay() {
    starts_at(&[
        (383_521, 9 << 11, 9 << 11),
        (5_782_013, 9 << 15, 9 << 15),
        (11_391_823, 9 << 16, 9 << 16),
        (755_737, 9 << 12, 9 << 12),
        (1_489_223, 9 << 13, 9 << 13),
        (2_934_479, 9 << 14, 5 << 15),
        (22_217_791, 9 << 17, 5 << 18),
    ]);
}

/// For each (p, the shortest safe length, the length the engine starts
/// at): the table's shortest length for p, and the start that both the
/// engine and `start_index_for` (the memory estimate's) take.
fn starts_at(cases: &[(u64, usize, usize)]) {
    for &(p, shortest, start) in cases {
        assert_eq!(
            fft_lengths()[length_index_for(p).unwrap()],
            shortest,
            "M{p}"
        );
        let n = FftEngine::new(p, 0).unwrap().fft_length();
        assert_eq!(n, Some(start), "M{p}");
        assert_eq!(fft_lengths()[start_index_for(p).unwrap()], start, "M{p}");
    }
}

/// The fused pass (AVX-512 and AVX2, from 160K words) gives
/// Mlucas's residues at its own lengths and bits per word, on one thread
/// and on two (where each thread's range of column groups is carried
/// apart and the carries between the ranges settled afterwards).
#[test]
fn mlucas_self_test_residues_on_the_fused_pass() {
    for isa in [Isa::Avx512, Isa::Avx2] {
        if !isa.is_available() {
            super::isa::report_skip("mlucas_self_test_residues_on_the_fused_pass", isa);
            continue;
        }
        for (n, p, r) in FUSED {
            for threads in [1, 2] {
                check_at(p, &[(100, r)], isa, Some(n), threads);
            }
        }
    }
}

/// The GIMPS wavefront's lengths, 8M words and Mlucas's own 7680K (the
/// radix-15 pass in the fused sweep), give Mlucas's residue on each set
/// with the fused pass (and on AVX-512 with two threads too).
#[test]
fn mlucas_self_test_residue_at_the_wavefront_lengths() {
    let (n, p, r) = EIGHT_M;
    for isa in [Isa::Avx512, Isa::Avx2] {
        if !isa.is_available() {
            super::isa::report_skip("mlucas_self_test_residue_at_the_wavefront_lengths", isa);
            continue;
        }
        let threads: &[usize] = if isa == Isa::Avx512 { &[1, 2] } else { &[1] };
        for length in [n, 15 << 19] {
            for &t in threads {
                check_at(p, &[(100, r)], isa, Some(length), t);
            }
        }
    }
}
