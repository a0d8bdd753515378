//! Hooks of the tuning examples (`fft_profile`, `fft_fused`,
//! `fft_accuracy`): they time parts of the squarer with a clock the caller
//! owns, as this crate reads none, or measure the transform's accuracy.

use num_bigint::BigUint;
use rand::{Rng, SeedableRng};
use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

use super::soa::{self, SoaSquarer};
use super::{Isa, dispatch};
use crate::ll::mersenne;

/// Tuning aid for `examples/fft_profile.rs`: runs `iterations` squarings of
/// a pseudo-random residue of M_p on the SoA squarer at length n, for each
/// instruction set, and returns (set name, fastest seconds seen in the
/// forward column stages, the leaves with the real-wrap, the inverse column
/// stages, the carry). `clock` reads seconds (the caller
/// owns the clock: this crate has none). `None` if the SoA squarer does not
/// do p at n.
#[doc(hidden)]
pub fn profile_soa(
    p: u64,
    n: usize,
    iterations: u32,
    clock: &mut dyn FnMut() -> f64,
) -> Option<Vec<(String, [f64; 4])>> {
    let x = (BigUint::from(3u8).pow(p as u32 / 2)) % mersenne(p);
    let mut out = Vec::new();
    let isas = dispatch::Isa::supported();
    for isa in isas.into_iter().filter(|&i| soa::supports(p, n, i)) {
        let mut s = SoaSquarer::new(p, n, isa, 1);
        s.load(&x);
        // The fastest of each part: on a shared machine, the mean mostly
        // measures the neighbours.
        let mut best = [f64::INFINITY; 4];
        for i in 0..iterations {
            let t = s.iterate_timed(u64::from(i) % p, clock);
            for k in 0..4 {
                best[k] = best[k].min(t[k]);
            }
        }
        out.push((format!("{isa:?}"), best));
    }
    (!out.is_empty()).then_some(out)
}

/// Tuning aid for `examples/fft_fused.rs`: seconds of CPU (read by
/// `clock`, which the caller owns) per squaring of the SoA
/// squarer at (p, n) with `isa` (`MERSENNE_FFT_ISA`'s set, else the
/// best) on `threads` threads with the fused pass and with the separate
/// passes, each the best of `repeats` runs of `iterations`, alternating
/// so that both see the same neighbours. `None` where the fused pass does
/// not apply (without AVX-512 or AVX2, or at this length).
#[doc(hidden)]
pub fn compare_fused(
    p: u64,
    n: usize,
    (iterations, repeats, threads): (u32, u32, usize),
    clock: &mut dyn FnMut() -> f64,
) -> Option<[f64; 2]> {
    let isa = Isa::from_env().ok().flatten().unwrap_or_else(Isa::best);
    let isa = isa.kernels()?;
    if !soa::supports(p, n, isa) {
        return None;
    }
    let x = (BigUint::from(3u8).pow(p as u32 / 2)) % mersenne(p);
    let mut s = [true, false].map(|on| {
        let mut s = SoaSquarer::new(p, n, isa, threads);
        s.set_fused(on);
        s.load(&x);
        s
    });
    if !s[0].fused_applies() {
        return None;
    }
    let mut best = [f64::INFINITY; 2];
    for _ in 0..repeats {
        for (k, s) in s.iter_mut().enumerate() {
            s.iterate(1);
            let t0 = clock();
            for i in 0..iterations {
                s.iterate(u64::from(i) % p);
            }
            best[k] = best[k].min((clock() - t0) / f64::from(iterations));
        }
    }
    Some(best)
}

/// One transform's accuracy at one length (see [`fft_accuracy`]).
#[doc(hidden)]
pub struct Accuracy {
    /// The instruction set, or "rustfft".
    pub name: String,
    /// Root-mean-square error of a forward and inverse transform of
    /// points uniform in [−1, 1), relative to the inputs.
    pub roundtrip: f64,
    /// Root-mean-square distance to the nearest integer of a cyclic
    /// self-convolution of integer points (forward, square each point of
    /// the spectrum, inverse), relative to the outputs' root mean square:
    /// the LL iteration's round-off without the weights and the carry.
    pub square: f64,
}

/// Tuning aid for `examples/fft_accuracy.rs`: the accuracy of our FFT of
/// m complex points ([`Accuracy`]; `seeds` random vectors) with each
/// instruction set this CPU has and, last, of rustfft at the same length.
/// Unlike the largest round-off of whole LL iterations, which moves in
/// steps of 1/32 and takes hours of runs to fit, these are averages over
/// millions of outputs, so a change to a kernel's arithmetic shows in them
/// at once. `None` if our FFT does not run length m.
#[doc(hidden)]
pub fn fft_accuracy(m: usize, seeds: u64) -> Option<Vec<Accuracy>> {
    let q = m >> m.trailing_zeros();
    let runs = match q {
        1 => m >= 64,
        q => super::plan::ODD_FACTORS.contains(&q) && m / q >= super::plan::LEAF,
    };
    if !runs {
        return None;
    }
    type Pair = (Vec<f64>, Vec<f64>);
    // A transform there and back on (re, im), unnormalised, squaring each
    // point of the spectrum in between if asked.
    type ThereAndBack<'a> = &'a mut dyn FnMut(&mut [f64], &mut [f64], bool);
    let inputs = |range: std::ops::Range<f64>, int: bool| -> Vec<Pair> {
        (0..seeds)
            .map(|seed| {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
                let mut x = || rng.random_range(range.clone());
                let mut v = || -> Vec<f64> {
                    (0..m)
                        .map(|_| if int { x().round() } else { x() })
                        .collect()
                };
                (v(), v())
            })
            .collect()
    };
    let (floats, ints) = (inputs(-1.0..1.0, false), inputs(-1024.0..1024.0, true));
    let measure = |t: ThereAndBack<'_>| {
        let (mut e2, mut n) = (0.0, 0.0);
        for (re0, im0) in &floats {
            let (mut re, mut im) = (re0.clone(), im0.clone());
            t(&mut re, &mut im, false);
            for (x, x0) in re.iter().zip(re0).chain(im.iter().zip(im0)) {
                e2 += (x / m as f64 - x0).powi(2);
                n += 1.0;
            }
        }
        let roundtrip = (e2 / n).sqrt();
        let (mut e2, mut x2) = (0.0, 0.0);
        for (re0, im0) in &ints {
            let (mut re, mut im) = (re0.clone(), im0.clone());
            t(&mut re, &mut im, true);
            for x in re.iter().chain(&im).map(|x| x / m as f64) {
                e2 += (x - x.round()).powi(2);
                x2 += x * x;
            }
        }
        (roundtrip, (e2 / x2).sqrt())
    };
    let square = |re: &mut [f64], im: &mut [f64]| {
        for (r, i) in re.iter_mut().zip(im.iter_mut()) {
            (*r, *i) = (*r * *r - *i * *i, 2.0 * *r * *i);
        }
    };
    let mut out = Vec::new();
    for isa in dispatch::Isa::supported() {
        let fft = soa::SoaFft::new(m, isa);
        let (roundtrip, sq) = measure(&mut |re, im, sq| {
            fft.forward(re, im);
            if sq {
                square(re, im);
            }
            fft.inverse(re, im);
        });
        out.push(Accuracy {
            name: format!("{isa:?}"),
            roundtrip,
            square: sq,
        });
    }
    let mut planner = FftPlanner::<f64>::new();
    let (f, i) = (planner.plan_fft_forward(m), planner.plan_fft_inverse(m));
    let (roundtrip, sq) = measure(&mut |re, im, sq| {
        let mut x: Vec<_> = re
            .iter()
            .zip(&*im)
            .map(|(&r, &i)| Complex::new(r, i))
            .collect();
        f.process(&mut x);
        if sq {
            x.iter_mut().for_each(|z| *z *= *z);
        }
        i.process(&mut x);
        for (k, z) in x.into_iter().enumerate() {
            (re[k], im[k]) = (z.re, z.im);
        }
    });
    out.push(Accuracy {
        name: "rustfft".to_string(),
        roundtrip,
        square: sq,
    });
    Some(out)
}

/// Tuning aid for `examples/fft_threads.rs --apart`: the cost of one
/// parallel region over and above its work, in seconds, through a rayon
/// pool and through the test's team ([`super::team::Team`]), each of
/// `threads` threads. Each of `regions` regions has every thread spin for
/// `work` seconds, with `gap` seconds of serial work between regions, as
/// an iteration's regions have; `clock` reads seconds (the caller's
/// clock). Returns (rayon, team), the median over regions.
#[doc(hidden)]
pub fn region_overhead(
    threads: usize,
    regions: usize,
    (work, gap): (f64, f64),
    clock: &(dyn Fn() -> f64 + Sync),
) -> (f64, f64) {
    use rayon::prelude::*;
    let spin = |s: f64| {
        let t = clock();
        while clock() - t < s {
            std::hint::spin_loop();
        }
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool");
    let team = super::team::Team::new(threads);
    let mut by_rayon = Vec::new();
    let mut by_team = Vec::new();
    for _ in 0..regions {
        let t = clock();
        pool.install(|| (0..threads).into_par_iter().for_each(|_| spin(work)));
        by_rayon.push(clock() - t - work);
        spin(gap);
        let t = clock();
        team.run(&|_| spin(work));
        by_team.push(clock() - t - work);
        spin(gap);
    }
    (median(by_rayon), median(by_team))
}
