#!/usr/bin/env python3
"""Milliseconds per Lucas-Lehmer iteration with GMP through gmpy2.

The side-by-side reference for `benches/fft_iteration.rs` (which times rug,
i.e. GMP built from source by gmp-mpfr-sys): the same iteration, square,
fold modulo 2^p - 1 with a shift and a mask, subtract 2, on a random
full-size residue. gmpy2's wheels ship a GMP built with --enable-fat (code
picked for the CPU at run time), so this is GMP at its best on this machine.

    pip install gmpy2
    python3 benches/gmpy2_ll.py [seconds per exponent]

Prints the fastest of several timed batches, like criterion's lower bound;
the seed is fixed and printed.
"""
import random
import sys
import time

import gmpy2
from gmpy2 import mpz

EXPONENTS = [86_243, 216_091, 756_839, 1_257_787, 3_021_377]
SEED = 2026


def ll_iterations(x, p, m, k):
    for _ in range(k):
        x = x * x
        x = (x & m) + (x >> p)
        if x >= m:
            x -= m
        x -= 2
        if x < 0:
            x += m
    return x


def main():
    budget = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    print(f"gmpy2 {gmpy2.version()}, {gmpy2.mp_version()}, seed {SEED}")
    rng = random.Random(SEED)
    for p in EXPONENTS:
        m = (mpz(1) << p) - 1
        x = mpz(rng.getrandbits(p)) % m
        # Batch size: about 50 ms per batch.
        t = time.perf_counter()
        x = ll_iterations(x, p, m, 3)
        per = (time.perf_counter() - t) / 3
        k = max(1, int(0.05 / per))
        best = float("inf")
        end = time.perf_counter() + budget
        while time.perf_counter() < end:
            t = time.perf_counter()
            x = ll_iterations(x, p, m, k)
            best = min(best, (time.perf_counter() - t) / k)
        print(f"p={p:>9}: {best * 1e3:8.3f} ms/iter (gmpy2)")


if __name__ == "__main__":
    main()
