//! Cost of one Lucas–Lehmer iteration (square, subtract 2, reduce mod M_p).
//!
//! `cargo bench --bench ll_iteration` measures the reference engine at a few
//! sizes; with `--features gmp` the same iteration on GMP (through `rug`) runs
//! in the same process, so the two can be compared as a ratio on a noisy,
//! shared machine. `cargo bench -- --test` runs each benchmark once as a
//! smoke test.

use criterion::{BenchmarkId, Criterion};
use mersenne_common::ll::{EngineKind, LlEngine, new_engine, resume_engine};

/// Exponents of known Mersenne primes at three sizes.
const SIZES: [u64; 3] = [9689, 44497, 86243];

/// Iterations before timing: the residue starts at 4 and only becomes a
/// full-size p-bit number after about log2(p) squarings.
const WARM_UP: u64 = 64;

fn warm_engine(kind: EngineKind, p: u64) -> Box<dyn LlEngine> {
    let mut e = new_engine(kind, p, 0).expect("prime exponent");
    e.advance(WARM_UP).expect("advance");
    e
}

fn ll_iteration(c: &mut Criterion) {
    let mut g = c.benchmark_group("ll_iteration");
    for p in SIZES {
        let mut e = warm_engine(EngineKind::Reference, p);
        let warm = e.checkpoint();
        g.bench_with_input(BenchmarkId::new("reference", p), &p, |b, _| {
            b.iter(|| {
                if e.is_done() {
                    // Small p can run out of iterations within a sample.
                    e = resume_engine(EngineKind::Reference, &warm).expect("resume");
                }
                e.advance(1).expect("advance")
            })
        });
        #[cfg(feature = "gmp")]
        {
            let mut x = gmp::GmpLl::new(p);
            x.advance(WARM_UP);
            // The comparison is only fair if GMP computes the same thing.
            assert_eq!(
                x.res64(),
                e_res64_after(p, WARM_UP),
                "GMP disagrees at M{p}"
            );
            let start = x.clone();
            let mut done = WARM_UP;
            g.bench_with_input(BenchmarkId::new("gmp", p), &p, |b, _| {
                b.iter(|| {
                    if done == p - 2 {
                        x = start.clone();
                        done = WARM_UP;
                    }
                    x.advance(1);
                    done += 1;
                })
            });
        }
    }
    g.finish();
}

#[cfg(feature = "gmp")]
fn e_res64_after(p: u64, k: u64) -> u64 {
    let mut e = new_engine(EngineKind::Reference, p, 0).expect("prime exponent");
    e.advance(k).expect("advance");
    e.res64()
}

#[cfg(feature = "gmp")]
mod gmp {
    use rug::Integer;

    /// The same iteration as the reference engine (square, fold-reduce,
    /// subtract 2), unshifted, with GMP doing the arithmetic.
    #[derive(Clone)]
    pub struct GmpLl {
        p: u32,
        m: Integer,
        x: Integer,
        hi: Integer,
    }

    impl GmpLl {
        pub fn new(p: u64) -> Self {
            let p = u32::try_from(p).expect("p fits in u32");
            let m = (Integer::from(1) << p) - 1u32;
            GmpLl {
                p,
                m,
                x: Integer::from(4),
                hi: Integer::new(),
            }
        }

        pub fn advance(&mut self, k: u64) {
            for _ in 0..k {
                self.x.square_mut();
                // x mod M_p = (x & M_p) + (x >> p) since 2^p ≡ 1, as in the
                // reference engine; one fold leaves x < 2^{p+1}.
                self.hi.assign_shr(&self.x, self.p);
                self.x.keep_bits_mut(self.p);
                self.x += &self.hi;
                if self.x >= self.m {
                    self.x -= &self.m;
                }
                if self.x < 2 {
                    self.x += &self.m;
                }
                self.x -= 2;
            }
        }

        pub fn res64(&self) -> u64 {
            self.x.to_u64_wrapping()
        }
    }

    trait AssignShr {
        fn assign_shr(&mut self, src: &Integer, bits: u32);
    }

    impl AssignShr for Integer {
        fn assign_shr(&mut self, src: &Integer, bits: u32) {
            use rug::Assign;
            self.assign(src >> bits);
        }
    }
}

// A plain `main` instead of `criterion_group!`/`criterion_main!`, whose
// generated functions carry no docs and would trip `missing_docs`.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    ll_iteration(&mut c);
    c.final_summary();
}
