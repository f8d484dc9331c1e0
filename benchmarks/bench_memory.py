"""Benchmark: peak extra memory of an in-memory ShaReD fit for each ``low_memory`` setting.

For each size (``q`` = units x lags = 800 and 1600 by default) the data are made first (not
counted), then one cross-validated fit runs with ``ShaReD(low_memory=False)`` (every
subject's per-chunk statistics held at once: the earlier path), one with
``low_memory=True`` (one subject reduced at a time per worker thread, its total kept:
:mod:`sharedrep.core.backends._streaming`) and one with ``low_memory="strict"`` (not even
the totals kept: the final fit and the private components read each subject again). Each
fit runs in a fresh Python process and reports two measurements of the memory it needed
beyond its data:

* ``tracemalloc``: the peak of Python/numpy allocations traced during ``fit``;
* ``RSS``: the process's peak resident size (``ru_maxrss``) minus its resident size just
  before ``fit``.

Printed per size: the data size, one subject's per-chunk statistics (``n_chunks`` matrices
of ``(q + p + 1)^2`` float64), one ``q x q`` total, the predicted bound of the low-memory
fit and the measured peaks. The bound of ``low_memory=True`` is

    n_workers * (n_chunks + 6) * a^2 * 8  +  S * a^2 * 8  +  small,    a = q + p + 1,

i.e. per worker thread one subject's chunk statistics plus a workspace of about six
``a x a`` matrices (its total, a fold's training and held-out statistics, the standardised
Gram matrix and the tridiagonal reduction's copy), and one total per subject (kept for the
final fit and the private components); "small" is ``O(S n_folds n_alphas p^2 + S q p)``.
That of ``"strict"`` has no ``S * a^2 * 8`` term: one subject's statistics per worker
thread plus "small", whatever the number of subjects (at the cost of two more passes
over the data, shown in the seconds column).

Run ``python benchmarks/bench_memory.py`` (8 subjects x 20,000 samples, 200 / 400 units,
lags 0..3, 5 folds, 15 alphas, private components on) or ``--quick`` (2,000 samples: the
statistics, and so the memory of the fit, do not depend on the number of samples; the
data do). ``--threads`` sets the worker threads (``SHAREDREP_NUM_THREADS``; default: all
CPUs of the process).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
import warnings

import numpy as np

FULL = dict(subjects=8, samples=20000)
QUICK = dict(subjects=8, samples=2000)
UNITS = (200, 400)  # q = 800 and 1600 with lags 0..3
#: child mode -> (ShaReD's low_memory, label)
MODES = {
    "full": (False, "low_memory=False   "),
    "low": (True, "low_memory=True    "),
    "strict": ("strict", 'low_memory="strict"'),
}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2,000 samples per subject")
    ap.add_argument("--subjects", type=int, default=None)
    ap.add_argument("--samples", type=int, default=None, help="per subject")
    ap.add_argument("--units", type=int, nargs="+", default=list(UNITS))
    ap.add_argument("--lags", type=int, default=3, help="lags 0..LAGS")
    ap.add_argument("--behavior", type=int, default=8, help="behaviour features p")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="worker threads")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # child: "units,mode"
    args = ap.parse_args(argv)
    base = QUICK if args.quick else FULL
    args.subjects = args.subjects or base["subjects"]
    args.samples = args.samples or base["samples"]
    return args


def make_data(S: int, T: int, N: int, p: int, seed: int = 0):
    """Neural (T x N) and behaviour (T x p) per subject sharing two latents; 100-sample trials."""
    rng = np.random.default_rng(seed)
    neural, behavior, groups = [], [], []
    U = rng.standard_normal((2, p))
    for _ in range(S):
        Z = rng.standard_normal((T, 2))
        X = Z @ rng.standard_normal((2, N)) + rng.standard_normal((T, N))
        Y = Z @ U + 0.5 * rng.standard_normal((T, p))
        neural.append(X)
        behavior.append(Y)
        groups.append(np.arange(T) // 100)
    return neural, behavior, groups


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_one(args) -> dict:
    """Child process: one fit, its peak extra memory (tracemalloc and RSS) and time."""
    from sharedrep import ShaReD

    units, mode = args.one.split(",")
    N = int(units)
    neural, behavior, groups = make_data(args.subjects, args.samples, N, args.behavior)
    model = ShaReD(
        n_shared=2, lags=args.lags, cv=args.folds, random_state=0, low_memory=MODES[mode][0]
    )
    warnings.simplefilter("ignore")
    rss0 = _rss_bytes()
    tracemalloc.start()
    t0 = time.perf_counter()
    model.fit(neural, behavior, groups=groups)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    return {
        "peak_traced": peak,
        "peak_rss": max(0, maxrss - rss0),
        "seconds": seconds,
        "alpha": model.alpha_,
        "axes": model.shared_axes_.tolist(),
    }


def child(units: int, mode: str, args) -> dict:
    cmd = [sys.executable, __file__, "--one", f"{units},{mode}"]
    cmd += ["--subjects", str(args.subjects), "--samples", str(args.samples)]
    cmd += ["--lags", str(args.lags), "--behavior", str(args.behavior)]
    cmd += ["--folds", str(args.folds)]
    env = dict(os.environ)
    if args.threads:
        env["SHAREDREP_NUM_THREADS"] = str(args.threads)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def mib(x: float) -> str:
    return f"{x / 2**20:8.1f}"


def report(units: int, args, results: dict) -> None:
    """Sizes, the predicted bound and the measured peaks of one size."""
    from sharedrep.core.cv import make_chunks
    from sharedrep.utils.parallel import n_threads

    S, T, p = args.subjects, args.samples, args.behavior
    n_lags = args.lags + 1
    q = units * n_lags
    a = q + p + 1
    rows = np.arange(T)
    n_chunks = len(make_chunks(rows, args.folds, groups=rows // 100, gap=args.lags).bounds) - 1
    workers = min(S, args.threads or n_threads())
    data = S * T * (units + p) * 8
    block = n_chunks * a * a * 8
    bound = workers * (n_chunks + 6) * a * a * 8 + S * a * a * 8
    print(f"\nq = {q} ({units} units x {n_lags} lags), S = {S}, T = {T}, p = {p}")
    print(f"  data (neural + behaviour)          {mib(data)} MiB")
    print(f"  one subject's chunk statistics     {mib(block)} MiB ({n_chunks} chunks)")
    print(f"  one total (q+p+1)^2                {mib(a * a * 8)} MiB")
    strict = workers * (n_chunks + 6) * a * a * 8
    print(f"  predicted bound, low_memory=True   {mib(bound)} MiB ({workers} worker threads)")
    print(f'  predicted bound, "strict"          {mib(strict)} MiB + O(S q p)')
    print("  measured peak extra memory (MiB):      tracemalloc      RSS   x data   seconds")
    for mode, (_, label) in MODES.items():
        r = results[mode]
        print(
            f"    {label}                 {mib(r['peak_traced'])} {mib(r['peak_rss'])}"
            f"   {r['peak_traced'] / data:6.2f}   {r['seconds']:7.1f}"
        )
    full = results["full"]
    for mode in ("low", "strict"):
        r = results[mode]
        same = np.allclose(full["axes"], r["axes"], rtol=1e-10, atol=1e-12)
        print(
            f"  {MODES[mode][0]!r}: same alpha and axes as False (1e-10): "
            f"{same and full['alpha'] == r['alpha']}"
        )


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args)))
        return 0
    print(__doc__.split("\n\n")[0])
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    for units in args.units:
        results = {mode: child(units, mode, args) for mode in MODES}
        report(units, args, results)
    print(f"\nload {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
