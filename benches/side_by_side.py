#!/usr/bin/env python3
"""Ms per Lucas-Lehmer iteration, ours against Mlucas and GMP, in one run.

The machine this runs on is usually shared and noisy, so absolute times
mean little; what this prints is the *ratios* between engines measured
side by side, each the best of several repeats (the spread is printed
too), the engines' repeats interleaved so that a slow spell of the
machine falls on all of them.

  ours    `worker ll P --iterations K --engine fft` for two values of K, the
          difference divided by the difference in K (this removes start-up,
          the set-up of the transform and the final residue conversion).
          `--isa avx2` (or avx512, baseline) forces the instruction set
          through MERSENNE_FFT_ISA, to see what a volunteer without AVX-512
          gets.
  Mlucas  only with `--mlucas PATH`: `Mlucas -m P -iters N -cpu 0` (its
          self-test mode, which runs every candidate radix set and prints
          each one's wall clock), run twice, ranks the sets by their best
          clocks; then `Mlucas -m P
          -fft K -radset I -iters N -cpu 0` for the same two N as ours,
          once for each of the three fastest sets and then for the
          repeats at the fastest of those,
          in a scratch directory (it writes savefiles), in CPU seconds
          and differenced likewise. A figure under 3/4 of Mlucas's own
          clock of the longer run's iterations is flagged with ‡.
          Where those runs show a round-off error above 0.4375, or of
          0.4375 with p above 0.99 of the length's limit, Mlucas's own
          LL test would leave that length for the next one and keep it
          (see `mlucas_real_test_leaves`), so the row times the next
          length and gives the one it left after †. A row where the runs
          happened to show no such error keeps Mlucas's default length.
          `--mlucas-timing-length` turns this off. A run that an error
          above 0.47 stopped part-way (the timing mode halts there too)
          is left out of the times.
  GMP     gmpy2 in this process (`pip install gmpy2`), the same iteration
          as `benches/gmpy2_ll.py`; skipped with a note if gmpy2 is missing.
  threads only with `--threads T`: ours with `--threads-per-test T`, and
          Mlucas at the same length and radix set with `-cpu 0:T-1`, in
          wall time, taking turns with the one-thread runs; each speed-up
          is the median over rounds of that round's one-thread wall time
          over its T-thread one, so a slow spell of the machine falls on
          both sides of a ratio (before, the best CPU time of one thread
          was set against the best wall time of T, two different clocks,
          and Mlucas's threads were not timed at all).

    cargo build --release -p mersenne-worker
    python3 benches/side_by_side.py [--mlucas PATH] [--isa avx2] [P ...]

Without exponents it runs the list of issue 14's table. The default
repeats (3) and iteration counts are chosen for a few seconds per engine
and exponent; large p take minutes.
"""
import argparse
import copy
import math
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# Issue 14's table: where the FFT length changes, plus the GIMPS wavefront.
DEFAULT_EXPONENTS = [
    86_243,
    216_091,
    756_839,
    1_257_787,
    2_614_999,
    3_021_377,
    5_152_643,
    5_782_013,
    11_391_823,
    18_776_473,
    136_279_841,
]
SEED = 2026


def iteration_counts(p):
    """Two iteration counts whose difference takes a second or two on our
    engine (rough n log n model, calibrated at 1.26M = 0.4 ms), both below
    p/2 so neither run meets the engine's mid-test Jacobi check. At least
    120 iterations apart: at 8M words 40 of them (2 s) gave ±45% between
    repeats, since the set-up of the two runs differs by more than that."""
    est_ms = 0.4 * (p / 1_257_787) * 1.1
    k = max(150, min(int(1500 / est_ms), p // 4))
    return k // 5, k


def time_run(cmd, env=None, cwd=None):
    """Seconds the command took, (CPU, wall), and its output. CPU seconds
    (user + sys), which other jobs on a shared machine do not inflate, time
    the single-threaded engines; wall seconds time threads, whose point is
    the wall clock, and the one-thread runs they are set beside."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()[-400:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return (cpu, wall), r.stdout + r.stderr


def speed_up(one, many):
    """Median over rounds of one thread's wall time over T threads': the
    two take turns, so each round's pair saw the same spell of the
    machine."""
    ratios = [a / b for a, b in zip(one, many) if a and b]
    return statistics.median(ratios) if ratios else None


class Ours:
    """Our engine on p: each `sample()` adds one ms-per-iteration figure
    (two runs of `worker ll`, differenced) in CPU time to `cpus` and in
    wall time to `walls`; `samples` are the ones that time it (CPU with one
    thread, else wall), and `tries` counts them, as `Mlucas.tries` does its
    own."""

    def __init__(self, worker, p, isa, threads=1):
        self.k1, self.k2 = iteration_counts(p // threads)
        self.env = dict(os.environ)
        if isa:
            self.env["MERSENNE_FFT_ISA"] = isa
        self.threads = threads
        self.base = [worker, "ll", str(p), "--engine", "fft", "--threads-per-test", str(threads)]
        self.cpus, self.walls, self.length = [], [], None

    @property
    def samples(self):
        return self.cpus if self.threads == 1 else self.walls

    @property
    def tries(self):
        return len(self.walls)

    def sample(self):
        t1, _ = time_run(self.base + ["--iterations", str(self.k1)], self.env)
        t2, out = time_run(self.base + ["--iterations", str(self.k2), "--json"], self.env)
        cpu, wall = [(b - a) / (self.k2 - self.k1) * 1e3 for a, b in zip(t1, t2)]
        self.cpus.append(cpu)
        self.walls.append(wall)
        m = re.search(r'"fft-length"\s*:\s*(\d+)', out)
        self.length = int(m.group(1)) if m else None


def mlucas_run(binary, cfg, args, threads=1):
    """Mlucas with `args` on the first `threads` CPUs, in a scratch
    directory (it writes savefiles): (CPU, wall) seconds and output."""
    with tempfile.TemporaryDirectory() as d:
        if cfg:
            shutil.copy(cfg, os.path.join(d, "mlucas.cfg"))
        cpus = "0" if threads == 1 else f"0:{threads - 1}"
        return time_run([binary] + args + ["-cpu", cpus], cwd=d)


class Mlucas:
    """Mlucas on p at its default length, or at `fft_k` (K words): the
    set-up picks its radix set (below); each `sample()` then adds one ms
    per iteration in CPU time to `cpus` and in wall time to `walls` (None
    for a halted run), and Mlucas's own clock of it to `own`.
    `length` is in words, `printed` everything it printed."""

    def __init__(self, binary, cfg, p, fft_k=None):
        self.binary, self.cfg, self.p, self.threads = binary, cfg, p, 1
        self.counts = iteration_counts(p)
        # `-m P -iters N` is Mlucas's self-test mode: it runs the N
        # iterations once per candidate radix set and prints each run's
        # wall clock. Sets are then timed alone (`-fft K -radset I`) in
        # CPU seconds, as ours is: a wall clock on a loaded machine
        # measured Mlucas 2x slow.
        # One self-test's wall clock per set is noisy enough to pick a set
        # 1.6x slower than the best (36K words: 0.08 against 0.13 ms); each
        # set's best of two self-tests is a fairer ranking for Mlucas.
        clocks, f, self.printed = None, None, []
        forced = ["-fft", str(fft_k)] if fft_k else []
        for _ in range(2):
            args = ["-m", str(p)] + forced + ["-iters", str(self.counts[0])]
            _, out = mlucas_run(binary, cfg, args)
            self.printed.append(out)
            c = mlucas_clocks(out)
            f = re.search(r"using FFT length (\d+)K", out)
            if not c or not f or (clocks and len(c) != len(clocks)):
                raise RuntimeError(f"no clocks or length in Mlucas output: {out[-400:]}")
            clocks = c if clocks is None else [min(a, b) for a, b in zip(clocks, c)]
        self.fft_k = int(f.group(1))
        self.length = self.fft_k * 1024
        # Even the best of two self-tests can rank a slow set first: at 36K
        # words the set picked that way took 0.130-0.135 ms in two runs and
        # 0.078 in a third. So the fastest few by that clock are each timed
        # once as the repeats are, and the repeats go to the fastest of
        # them (its time counts as one). This can only favour Mlucas.
        ranked = sorted(range(len(clocks)), key=clocks.__getitem__)[:MLUCAS_FINALISTS]
        self.halted, self.tries = 0, 0
        trials = {r: self._time(r) for r in ranked}
        # A set whose trial halted ranks last.
        ms = {r: math.inf if t[0] is None else t[0] for r, t in trials.items()}
        self.best_set = min(ms, key=ms.__getitem__)
        self.cpus, self.own, self.walls = [], [], []
        self._keep(*trials[self.best_set])

    @property
    def samples(self):
        """The runs' times that did not halt: CPU time on one CPU, else
        wall time."""
        times = self.cpus if self.threads == 1 else self.walls
        return [t for t in times if t is not None]

    def threaded(self, threads):
        """This length and radix set on `threads` CPUs (`-cpu 0:T-1`), its
        repeats yet to run."""
        t = copy.copy(self)
        t.threads, t.halted, t.tries = threads, 0, 0
        t.cpus, t.own, t.walls, t.printed = [], [], [], []
        return t

    def _time(self, radset):
        """One difference at `radset` in CPU time, Mlucas's own clock of the
        longer run's iteration loop, and the difference in wall time."""
        # As for ours: a difference of a second or two, else the CPU time
        # of Mlucas's start-up (self-tests of its tables) swamps it.
        base = ["-m", str(self.p), "-fft", str(self.fft_k), "-radset", str(radset)]
        runs = [
            mlucas_run(self.binary, self.cfg, base + ["-iters", str(n)], self.threads)
            for n in self.counts
        ]
        self.printed.extend(r[1] for r in runs)
        t = [r[0] for r in runs]
        # Mlucas's own wall clock of the longer run's iteration loop: a
        # cross-check of the difference, which one slow short run (a
        # round-off retry, say) can make far too small.
        c = mlucas_clocks(runs[1][1])
        if any(MLUCAS_HALTED in r[1] for r in runs):
            # An error above 0.47 stops even the timing mode, part-way:
            # the difference would be of runs cut short (576K words at
            # 11,391,823 read 0.75-0.91 ms against 1.85-1.89 at 640K).
            self.halted += 1
            return None, None, None
        cpu, wall = [(b - a) / (self.counts[1] - self.counts[0]) * 1e3 for a, b in zip(*t)]
        return cpu, c[-1] / self.counts[1] * 1e3 if c else None, wall

    def _keep(self, cpu, clock, wall):
        self.tries += 1
        # A halted run keeps its place as None, so that `speed_up` pairs
        # the rounds that both ran.
        self.cpus.append(cpu)
        self.walls.append(wall)
        if clock is not None:
            self.own.append(clock)

    def sample(self):
        self._keep(*self._time(self.best_set))


# Mlucas's LL test (`Test=P` in worktodo.txt, not the `-iters` timing
# mode) treats a round-off error above 0.4375 as fatal to its length, and
# one of 0.4375 too once its carry is at its most accurate setting, where
# it starts when p is above 0.99 of the length's limit (below that it
# first makes its carry more accurate). It then restarts from its last
# savefile at the next length and stays there (it reverts only if such
# errors came fewer than once in 64 savefile intervals of the test so
# far); see `mers_mod_square.c` and `Mlucas.c`. The timing mode only warns.
# Seen at 756,839 (`Test=756839`): errors of 0.4375 at iterations 277 and
# 6,690 of 36K, then the rest of the test at 40K.
MLUCAS_FATAL_ROE = 0.4375
# Radix sets, fastest first by their self-test clocks, that are each timed
# in CPU seconds before the repeats (see `mlucas`).
MLUCAS_FINALISTS = 3
# What Mlucas prints when a round-off error above 0.47 stops a run, even in
# its timing mode (`mers_mod_square.c`).
MLUCAS_HALTED = "Halting test of exponent"
MLUCAS_HIGH_ACCURACY_RATIO = 0.99


def mlucas_real_test_leaves(out):
    """Whether Mlucas's own LL test would leave the length this output
    timed: an error above 0.4375 in the iterations it ran, or one of 0.4375
    with p above 0.99 of the length's limit."""
    ratio = re.search(r"/pmax_rec = ([0-9]+\.[0-9]+)", out)
    worst = max(
        (float(x) for x in re.findall(r"Roundoff warning on iteration\s+\d+, maxerr =\s*([0-9.]+)", out)),
        default=0.0,
    )
    near_limit = bool(ratio) and float(ratio.group(1)) > MLUCAS_HIGH_ACCURACY_RATIO
    return worst > MLUCAS_FATAL_ROE or (near_limit and worst >= MLUCAS_FATAL_ROE)


def mlucas_next_length(k):
    """The length after K words in Mlucas's table, k·2^m with k in 8..15:
    (k + 1)·2^m (16·2^m = 8·2^(m+1)); below 8K, every K."""
    if k < 8:
        return k + 1
    m = 0
    while k >= 16:
        k, m = k / 2, m + 1
    return int((k + 1) * 2**m)


def mlucas_clocks(out):
    """The seconds of every `Clocks = hh:mm:ss.fff` line Mlucas printed."""
    return [
        int(h) * 3600 + int(mi) * 60 + int(sec) + float("0." + frac)
        for h, mi, sec, frac in re.findall(r"Clocks\s*=\s*(\d+):(\d+):(\d+)\.(\d+)", out)
    ]


def gmp(p, repeats):
    try:
        import gmpy2
        from gmpy2 import mpz
    except ImportError:
        return None
    rng = random.Random(SEED ^ p)
    m = (mpz(1) << p) - 1
    x = mpz(rng.getrandbits(p)) % m

    # The same iteration as benches/gmpy2_ll.py, not a copy of it.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from gmpy2_ll import ll_iterations

    def run(x, k):
        return ll_iterations(x, p, m, k)

    # CPU time of this process, like the others' (see `time_run`).
    t = time.process_time()
    x = run(x, 2)
    k = max(2, int(1.0 / max((time.process_time() - t) / 2, 1e-6)))
    samples = []
    for _ in range(repeats):
        t = time.process_time()
        x = run(x, k)
        samples.append((time.process_time() - t) / k * 1e3)
    return samples


def fmt(samples):
    """Best of the repeats, and the spread (worst / best − 1)."""
    if not samples:
        return "—", None
    best = min(samples)
    return f"{best:.3f} (±{(max(samples) / best - 1) * 100:.0f}%)", best


def mlucas_cell(e, p, flagged):
    """Mlucas's best time and spread, and its best (None if every run
    halted). A difference well below Mlucas's own clock (see
    `Mlucas._time`) means one short run was slow and the figure is not to
    be trusted: it is marked ‡ and p goes on the `flagged` list."""
    if not e.samples:
        return "halted (an error above 0.47 in every run)", None
    text, best = fmt(e.samples)
    if e.halted:
        text += f" ({e.halted} halted run(s) left out)"
    if e.own and best < 0.75 * min(e.own):
        text += f" ‡ own clock {min(e.own):.3f}"
        if p not in flagged:
            flagged.append(p)
    return text, best


def length_k(n):
    return f"{n // 1024}K" if n else "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("exponents", nargs="*", type=int, default=DEFAULT_EXPONENTS)
    ap.add_argument("--worker", default="target/release/worker")
    ap.add_argument("--isa", choices=["avx512", "avx2", "baseline"])
    ap.add_argument("--mlucas", help="path of an Mlucas binary")
    ap.add_argument("--mlucas-cfg", help="an mlucas.cfg from its self-test")
    ap.add_argument(
        "--mlucas-timing-length",
        action="store_true",
        help="time Mlucas only at its default length, even where its own LL test would leave it",
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="also time ours (and Mlucas, with --mlucas) with this many threads per test",
    )
    ap.add_argument("--no-gmp", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(a.worker):
        sys.exit(f"{a.worker} not found: cargo build --release -p mersenne-worker")
    print(
        f"seed {SEED}, best of {a.repeats}, ms per iteration (CPU time; wall time with threads; "
        "a speed-up is the median over rounds of one thread's wall time over the threads'), "
        f"ISA {a.isa or 'detected'}"
    )
    cols = ["p", "ours (length)"]
    if a.threads > 1:
        cols += [f"ours, {a.threads} threads", "speed-up"]
    if a.mlucas:
        cols += ["Mlucas (length)", "ours ÷ Mlucas"]
        if a.threads > 1:
            cols += [f"Mlucas, {a.threads} threads", "its speed-up"]
    if not a.no_gmp:
        cols += ["GMP", "GMP ÷ ours"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    flagged, daggered = [], []
    for p in a.exponents:
        # Every engine's repeats are interleaved, one sample of each in
        # turn, so that a slow spell of the shared machine lands on all of
        # them rather than on whichever ran through it.
        o = Ours(a.worker, p, a.isa)
        engines = [o]
        ot = Ours(a.worker, p, a.isa, a.threads) if a.threads > 1 else None
        if ot:
            engines.append(ot)
        m, left, mt, failed = None, None, None, False
        if a.mlucas:
            try:
                m = Mlucas(a.mlucas, a.mlucas_cfg, p)
                if not a.mlucas_timing_length and mlucas_real_test_leaves("\n".join(m.printed)):
                    # Time the length Mlucas's own test keeps for p too,
                    # and say what the one it left took.
                    left = m
                    m = Mlucas(a.mlucas, a.mlucas_cfg, p, mlucas_next_length(left.fft_k))
                    daggered.append(p)
                mt = m.threaded(a.threads) if a.threads > 1 else None
                engines += [e for e in (m, left, mt) if e]
            except RuntimeError as e:
                print(f"Mlucas at {p}: {e}", file=sys.stderr)
                failed = True
        for _ in range(a.repeats):
            for e in engines:
                if e.tries < a.repeats:
                    e.sample()
        text, best = fmt(o.samples)
        row = [f"{p:,}", f"{text} ({length_k(o.length)})"]
        if ot:
            tt, _ = fmt(ot.samples)
            su = speed_up(o.walls, ot.walls)
            row += [tt, f"{su:.2f}" if su else ""]
        if failed:
            row += ["failed", ""] + (["", ""] if a.threads > 1 else [])
        elif m:
            mtext, mbest = mlucas_cell(m, p, flagged)
            gone = ""
            if left:
                gone = f" † its {length_k(left.length)}: {mlucas_cell(left, p, flagged)[0]}"
            ratio = f"{best / mbest:.2f}" if mbest else ""
            row += [f"{mtext} ({length_k(m.length)}){gone}", ratio]
            if mt:
                # m.walls[0] is its radix set's trial, from before the
                # rounds the twin took part in.
                su = speed_up(m.walls[1:], mt.walls)
                row += [mlucas_cell(mt, p, flagged)[0], f"{su:.2f}" if su else ""]
        if not a.no_gmp:
            g = gmp(p, a.repeats) if p < 10_000_000 else None
            if g is None:
                row += ["— (no gmpy2, or p ≥ 10M)", ""]
            else:
                gt, gbest = fmt(g)
                row += [gt, f"{gbest / best:.1f}"]
        print("| " + " | ".join(row) + " |", flush=True)
    if daggered:
        print(
            "† At " + ", ".join(f"{p:,}" for p in daggered) + " Mlucas's timing mode showed a "
            "round-off error that its own LL test treats as fatal to that length (above 0.4375, "
            "or 0.4375 above 0.99 of the length's limit): it restarts at the next length and "
            "keeps it. The "
            "row times that length; the figure after † is the length it left "
            "(--mlucas-timing-length times only that one)."
        )
    if flagged:
        print(
            "‡ Mlucas's differenced CPU time is under 3/4 of its own clock of the "
            "longer run's iterations: one short run was slow; rerun these: "
            + " ".join(str(p) for p in flagged)
        )


if __name__ == "__main__":
    main()
