//! Hooks of the tuning examples (`fft_profile`, `fft_fused`): they time
//! parts of the squarer with a clock the caller owns, as this crate reads
//! none.

use num_bigint::BigUint;

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
