"""Benchmark: cost of a full cross-validated ShaReD fit relative to the unavoidable work.

The unavoidable work of any fit is one pass over the data forming every subject's Gram
matrix ``X~' X~`` of its (lag-embedded) activity. The method (docs/method.md, section 1)
asks that the full cross-validated fit (per-block sufficient statistics, folds by
subtraction, ``q x q`` algebra per fold: one tridiagonal reduction shared by the alpha
grid) cost a small multiple of that pass; the targets are a ratio <= 2 (goal) and <= 3
(required). The ratio is printed, never asserted.

The lower bound is computed the way the fit computes its statistics pass: one subject per
worker thread (``sharedrep.utils.parallel.thread_map``, as many workers as the fit uses),
each with single-threaded BLAS, on the lag-embedded activity formed beforehand (not timed).
Gram passes and fits are interleaved and the minimum of each is used; the machine load is
printed before and after. ``--threads`` sets every thread pool the fit uses (BLAS/OpenMP via
threadpoolctl, and ShaReD's worker threads via ``SHAREDREP_NUM_THREADS``).

Run ``python benchmarks/bench_fit.py`` (default: 20 subjects x 300 units x 20,000 samples,
5 folds x 10 alphas x n_shared="auto" up to 8) or ``--quick`` for a smaller problem that
finishes in well under two minutes on two cores. See ``--help`` and benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import os
import platform
import sys
import time
import warnings

import numpy as np

QUICK = dict(subjects=10, units=200, samples=10000)
TARGETS = (2, 3)  # targets of docs/benchmarks.md: <= 2 (goal), <= 3 (required)
FULL = dict(subjects=20, units=300, samples=20000)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"small problem ({QUICK['subjects']} subjects x {QUICK['units']} units x "
        f"{QUICK['samples']} samples) unless sizes are given explicitly",
    )
    ap.add_argument("--subjects", type=int, default=None, help=f"default {FULL['subjects']}")
    ap.add_argument("--units", type=int, default=None, help=f"default {FULL['units']}")
    ap.add_argument(
        "--samples", type=int, default=None, help=f"per subject; default {FULL['samples']}"
    )
    ap.add_argument("--lags", type=int, default=0, help="lags 0..LAGS")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--alphas", type=int, default=10, help="size of the log alpha grid")
    ap.add_argument("--max-shared", type=int, default=8, help='n_shared="auto" up to this')
    ap.add_argument("--behavior", type=int, default=12, help="behaviour features p")
    ap.add_argument("--trial-length", type=int, default=100, help="samples per trial")
    ap.add_argument(
        "--no-private",
        action="store_true",
        help="skip the private components (docs/method.md, Private structure) in the timed fit",
    )
    ap.add_argument(
        "--breakdown",
        action="store_true",
        help="also time the fit without private components (model selection + final fit)",
    )
    ap.add_argument(
        "--compare-direct",
        action="store_true",
        help="also time the statistics pass alone with the lag-structured product and with "
        "the direct product of the lag-embedded rows (interleaved, min of --repeat)",
    )
    ap.add_argument(
        "--floor",
        action="store_true",
        help="also time what the fit is built on, as fractions of the Gram pass: the "
        "statistics pass alone (as implemented: the products plus gathering, centring and "
        "fold planning) and one reduction of a q x q matrix per subject and fold (what no "
        "exact CV can skip), as the fit runs them (interleaved, min of --repeat)",
    )
    ap.add_argument(
        "--compare-float32",
        action="store_true",
        help='also time the fit with dtype="float32" against float64 (interleaved, min of '
        "--repeat; target float32 <= 0.7x) and print how far the float32 model is from the "
        "float64 one (selected alpha and k, axes, CV scores)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="Gram passes timed, interleaved with the fits (the minimum is used)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="every thread pool of the fit and of the Gram pass: BLAS/OpenMP threads "
        "(threadpoolctl) and ShaReD's worker threads (SHAREDREP_NUM_THREADS); default: one "
        "worker per usable core, single-threaded BLAS inside the workers",
    )
    ap.add_argument(
        "--fit-repeat",
        type=int,
        default=None,
        help="full fits timed (the minimum is used); default 1, or 2 with --quick",
    )
    ap.add_argument(
        "--input-dtype",
        choices=("float64", "float32"),
        default="float64",
        help="dtype of the activity given to the fits (float32: as suite2p writes it; "
        "the Gram pass still multiplies float64 copies)",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    base = QUICK if args.quick else FULL
    for key in ("subjects", "units", "samples"):
        if getattr(args, key) is None:
            setattr(args, key, base[key])
    if args.fit_repeat is None:
        args.fit_repeat = 2 if args.quick else 1
    for key in (
        "subjects",
        "units",
        "samples",
        "folds",
        "alphas",
        "max_shared",
        "repeat",
        "fit_repeat",
    ):
        if getattr(args, key) < 1:
            ap.error(f"--{key.replace('_', '-')} must be >= 1")
    if args.lags < 0:
        ap.error("--lags must be >= 0")
    return args


def load_line() -> str:
    """The machine's load average, for every table (timings under load are noisy)."""
    if not hasattr(os, "getloadavg"):
        return "load average: not available"
    return "load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def cpu_model() -> str:
    """The processor's model name (Linux ``/proc/cpuinfo``), else what Python knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> list[str]:
    from threadpoolctl import threadpool_info

    from sharedrep.utils.parallel import n_threads

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    lines = [
        f"python {platform.python_version()} on {platform.platform()}",
        f"cpu: {cpu_model()}; {os.cpu_count()} logical cores, {usable} usable by this process",
    ]
    if hasattr(os, "getloadavg"):
        busy = os.getloadavg()[0] > 0.75 * usable
        lines.append(load_line() + ("  <- machine busy: timings are noisy" if busy else ""))
    import scipy

    import sharedrep

    lines.append(
        f"numpy {np.__version__}, scipy {scipy.__version__}, sharedrep {sharedrep.__version__}"
    )
    lines.append(
        f"ShaReD worker threads: {n_threads()} (SHAREDREP_NUM_THREADS="
        f"{os.environ.get('SHAREDREP_NUM_THREADS', 'unset')}), single-threaded BLAS in each"
    )
    for lib in threadpool_info():
        lines.append(
            f"  {lib['user_api']}: {lib['internal_api']} {lib.get('version')} "
            f"({lib.get('threading_layer', '?')}, {lib['num_threads']} threads) "
            f"{os.path.basename(lib['filepath'])}"
        )
    return lines


def make_data(args):
    """Simulated data at the requested size (``sharedrep.sim.generic`` is fast enough)."""
    from sharedrep import simulate

    return simulate(
        n_subjects=args.subjects,
        n_samples=args.samples,
        n_units=args.units,
        n_behavior=args.behavior,
        n_shared=2,
        lag=min(args.lags, 2),
        trial_length=args.trial_length,
        seed=args.seed,
    )


def embedded(neural, n_lags: int) -> list[np.ndarray]:
    """Every subject's lag-embedded activity (lags ``0..n_lags-1``), C-contiguous."""
    out = []
    for X in neural:
        T = X.shape[0]
        if n_lags > 1:
            out.append(np.hstack([X[n_lags - 1 - lag : T - lag] for lag in range(n_lags)]))
        else:
            out.append(np.ascontiguousarray(X))
    return out


def gram_pass(designs: list[np.ndarray], n_lags: int | None = None) -> float:
    """Seconds to form every subject's Gram matrix ``X~' X~``, the way the fit runs.

    One subject per worker thread of :func:`sharedrep.utils.parallel.thread_map` (the
    fit's pool, as many workers as the fit uses), single-threaded BLAS in each; the lag
    embedding is formed beforehand and not timed: only the products, the floating-point
    work any exact fit must do. ``designs`` are the lag-embedded matrices, or the raw
    activity when ``n_lags`` is given (then embedded here, untimed).
    """
    from sharedrep.utils.parallel import thread_map

    if n_lags is not None:
        designs = embedded(designs, n_lags)
    gc.collect()
    t0 = time.perf_counter()
    thread_map(lambda Xl: Xl.T @ Xl, designs)
    return time.perf_counter() - t0


def time_fit(model, d, repeat: int = 1) -> list[float]:
    """Seconds of ``repeat`` full fits (warnings silenced)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            model.fit(d.neural, d.behavior, groups=d.groups)
            times.append(time.perf_counter() - t0)
    return times


def interleaved(model, d, designs, args) -> tuple[list[float], list[float]]:
    """Gram passes and fits alternated (``--repeat`` and ``--fit-repeat`` of each)."""
    gram_pass(designs[:1])  # warm-up (thread pool, page faults)
    grams, fits = [], []
    for r in range(max(args.repeat, args.fit_repeat)):
        if r < args.repeat:
            grams.append(gram_pass(designs))
        if r < args.fit_repeat:
            fits.extend(time_fit(model, d))
    return grams, fits


def time_stages(model, d, args) -> dict:
    """Seconds of the fit's stages, each the best of two: statistics pass, CV, final fit."""
    from sharedrep.core.backends import get_backend
    from sharedrep.core.design import as_lags

    be = get_backend("numpy")
    lags = as_lags(args.lags)
    alphas = np.logspace(-4, 3, args.alphas)
    w = np.full(args.subjects, 1.0 / args.subjects)
    k = min(args.max_shared, args.behavior)
    best = {"statistics pass": np.inf, "CV solves": np.inf, "final fit": np.inf}
    for _ in range(2):
        gc.collect()
        t0 = time.perf_counter()
        prep = be.statistics(
            d.neural, d.behavior, d.groups, lags, args.folds, gap=args.lags, random_state=0
        )
        t1 = time.perf_counter()
        stats, chunks = [p.stats for p in prep], [p.chunks for p in prep]
        shrink = getattr(model, "shrinkage_", model.shrinkage)  # "auto": the one chosen
        be.cv_errors(stats, chunks, w, alphas, k, model.behavior_metric, shrink)
        t2 = time.perf_counter()
        be.final_fit(stats, w, model.alpha_, model.n_shared_, "correlation", shrink)
        t3 = time.perf_counter()
        for key, t in zip(best, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            best[key] = min(best[key], t)
    return best


def compare_direct(model, d, args) -> dict:
    """Seconds of the statistics pass (numpy backend, as in the fit) and of the full fit,
    lag-structured vs direct product, interleaved; the direct product by switching off the
    rule :func:`sharedrep.core.lagged_gram.structured_pays` for the duration."""
    from sharedrep.core import solver

    rule = solver.structured_pays
    keys = ("stats direct", "stats structured", "fit direct", "fit structured")
    times = {key: [] for key in keys}
    for _ in range(args.repeat):
        solver.structured_pays = lambda *a: False
        try:
            times["stats direct"].append(statistics_pass(d, args))
            times["fit direct"].extend(time_fit(model, d))
        finally:
            solver.structured_pays = rule
        times["stats structured"].append(statistics_pass(d, args))
        times["fit structured"].extend(time_fit(model, d))
    return times


def statistics_pass(d, args, dtype: str = "float64") -> float:
    """Seconds of the fit's statistics pass alone (numpy backend, run as in the fit: one
    subject per worker thread), in ``dtype``."""
    from sharedrep.core.backends import get_backend
    from sharedrep.core.design import as_lags

    gc.collect()
    t0 = time.perf_counter()
    get_backend("numpy").statistics(
        d.neural,
        d.behavior,
        d.groups,
        as_lags(args.lags),
        args.folds,
        gap=args.lags,
        random_state=0,
        dtype=dtype,
    )
    return time.perf_counter() - t0


def fold_reductions(args) -> tuple[float, str]:
    """Seconds of the per-fold factorisations exact cross-validation cannot avoid, and
    the route that ran.

    Each subject's training Gram matrix differs in every fold, so exact CV factorises
    ``subjects x folds`` matrices of size ``q x q``; the fit's cheapest route for a grid of
    alphas is one reduction per fold (``sharedrep.core._lapack.reduce_symmetric``: to a
    band from ``q = 800`` on, else tridiagonal). Here a fixed symmetric positive definite
    ``q x q`` matrix is copied and reduced ``subjects x folds`` times, one task per worker
    thread of the fit's pool, single-threaded BLAS in each (as the fit runs them).
    """
    from sharedrep.core import _lapack
    from sharedrep.utils.parallel import thread_map

    q = args.units * (args.lags + 1)
    X = np.random.default_rng(args.seed).standard_normal((2 * q, q))
    G = np.asfortranarray(X.T @ X / (2 * q))
    route = type(_lapack.reduce_symmetric(G)).__name__  # untimed: which route runs

    def reduce(_):
        return _lapack.reduce_symmetric(G.copy(order="F"), overwrite=True).info

    gc.collect()
    t0 = time.perf_counter()
    thread_map(reduce, list(range(args.subjects * args.folds)))
    return time.perf_counter() - t0, route


def floor(d, args) -> dict:
    """``--floor``: the statistics pass and the fold reductions, interleaved, ``--repeat``
    each (the minimum of each is used)."""
    stats, reductions = [], []
    route = ""
    for _ in range(args.repeat):
        stats.append(statistics_pass(d, args))
        seconds, route = fold_reductions(args)
        reductions.append(seconds)
    return {"stats": stats, "reductions": reductions, "route": route}


def print_floor(fl: dict, args, t_gram: float, t_fit: float) -> None:
    """The lines of ``--floor`` (see :func:`floor`)."""
    s, r = min(fl["stats"]), min(fl["reductions"])
    q = args.units * (args.lags + 1)
    print(
        f"Floor (statistics pass as implemented + the fold reductions exact CV cannot skip): "
        f"statistics pass {_fmt(fl['stats'])} ({s / t_gram:.2f}x) + "
        f"{args.subjects} x {args.folds} fold reductions (q = {q}, {fl['route']}) "
        f"{_fmt(fl['reductions'])} ({r / t_gram:.2f}x) = {(s + r) / t_gram:.2f}x the Gram "
        f"pass; the rest of the fit (solves, scores, final fit, private components) "
        f"{(t_fit - s - r) / t_gram:.2f}x"
    )
    from sharedrep.core.solver import _REDUCTION_MIN_ALPHAS

    if args.alphas < _REDUCTION_MIN_ALPHAS:
        print(
            f"  (with {args.alphas} alphas the fit factorises each alpha instead of reducing "
            "each fold: the reductions above are not what it runs)"
        )
    print(load_line() + "  (after the floor)")


FLOAT32_TARGET = 0.7  # docs/benchmarks.md: float32 fit at most 0.7x the float64 fit


def compare_float32(model, d, args) -> dict:
    """Seconds of the full fit in float64 and in float32 (interleaved, ``--repeat`` each),
    the statistics pass of each (numpy backend), and the float32 model's distance to the
    float64 one."""
    m64 = clone_model(model, dtype="float64")
    m32 = clone_model(model, dtype="float32")
    times = {key: [] for key in ("fit float64", "fit float32", "stats float64", "stats float32")}
    for _ in range(args.repeat):
        for dtype, m in (("float64", m64), ("float32", m32)):
            times[f"fit {dtype}"].extend(time_fit(m, d))
            times[f"stats {dtype}"].append(statistics_pass(d, args, dtype))
    return {"times": times, "accuracy": float32_accuracy(m64, m32)}


def clone_model(model, **params):
    from sklearn.base import clone

    return clone(model).set_params(**params)


def float32_accuracy(m64, m32) -> dict:
    """How far the float32 fit is from the float64 fit on the same data."""
    from scipy.linalg import subspace_angles

    same = m64.alpha_ == m32.alpha_ and m64.n_shared_ == m32.n_shared_
    angle = np.nan
    if m64.n_shared_ == m32.n_shared_:
        angle = float(np.degrees(subspace_angles(m64.shared_axes_, m32.shared_axes_).max()))
    s64, s32 = np.asarray(m64.cv_results_["mean_score"]), np.asarray(m32.cv_results_["mean_score"])
    ok = np.isfinite(s64) & np.isfinite(s32)
    d_score = float(np.max(np.abs(s64[ok] - s32[ok]))) if ok.any() else np.nan
    return {
        "same alpha and k": same,
        "largest axis angle (deg)": angle,
        "max |d CV score|": d_score,
    }


def _fmt(times: list[float]) -> str:
    if len(times) == 1:
        return f"{times[0]:.3f} s"
    return f"{min(times):.3f} s (min of {len(times)}: {', '.join(f'{t:.3f}' for t in times)})"


def _ratio_line(label: str, a: list[float], b: list[float], names: tuple[str, str]) -> str:
    """``label: A <times>; B <times>; ratio min(a) / min(b)``, interleaved timings."""
    return f"{label}: {names[0]} {_fmt(a)}; {names[1]} {_fmt(b)}; ratio {min(a) / min(b):.2f}"


def print_compare_direct(cmp: dict) -> None:
    """The lines of ``--compare-direct`` (see :func:`compare_direct`)."""
    names = ("lag-structured", "direct product")
    print(
        _ratio_line(
            "Statistics pass alone (numpy backend), interleaved",
            cmp["stats structured"],
            cmp["stats direct"],
            names,
        )
    )
    print(_ratio_line("Full CV fit, interleaved", cmp["fit structured"], cmp["fit direct"], names))
    print(load_line() + "  (after the comparison)")


def print_compare_float32(cmp: dict) -> None:
    """The lines of ``--compare-float32`` (see :func:`compare_float32`)."""
    t, names = cmp["times"], ("float32", "float64")
    ratio = min(t["fit float32"]) / min(t["fit float64"])
    verdict = "meets" if ratio <= FLOAT32_TARGET else "misses"
    print(
        _ratio_line(
            "float32 vs float64, interleaved: full fit", t["fit float32"], t["fit float64"], names
        )
        + f" (target <= {FLOAT32_TARGET}: {verdict} it)"
    )
    print(_ratio_line("  statistics pass alone", t["stats float32"], t["stats float64"], names))
    acc = ", ".join(
        f"{k}: {v:.3g}" if isinstance(v, float) else f"{k}: {v}"
        for k, v in cmp["accuracy"].items()
    )
    print(f"  float32 model vs float64 model: {acc}")
    print(load_line() + "  (after the float32 comparison)")


def limit_threads(n):
    """Context setting every pool the fit uses to ``n`` threads (None: the defaults)."""
    if n is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    os.environ["SHAREDREP_NUM_THREADS"] = str(n)  # read by sharedrep at every call
    return threadpool_limits(limits=n)


def main(argv=None) -> int:
    args = parse_args(argv)
    from sharedrep import ShaReD

    with limit_threads(args.threads):
        print("Machine")
        for line in machine_info():
            print("  " + line)
        n_lags = args.lags + 1
        cols = args.units * n_lags
        gb = args.subjects * args.samples * args.units * 8 / 1e9
        print(
            f"\nProblem: {args.subjects} subjects x {args.units} units x {args.samples} samples "
            f"({gb:.2f} GB of float64 activity), lags 0..{args.lags} "
            f"({cols} columns per subject), p = {args.behavior} behaviour features,\n"
            f"         CV {args.folds} folds x {args.alphas} alphas x n_shared='auto' "
            f"(k <= {args.max_shared}), trials of {args.trial_length} samples, "
            f"private components {'off' if args.no_private else 'on'}"
        )

        t0 = time.perf_counter()
        d = make_data(args)
        designs = embedded(d.neural, n_lags)
        if args.input_dtype != "float64":  # the fits read the activity in this dtype
            d = dataclasses.replace(d, neural=[x.astype(args.input_dtype) for x in d.neural])
            print(f"Activity given to the fits as {args.input_dtype}")
        print(f"\nData generated in {time.perf_counter() - t0:.2f} s (not part of the ratio)")

        model = ShaReD(
            n_shared="auto",
            alpha=None,
            lags=args.lags,
            cv=args.folds,
            random_state=args.seed,
            alphas=np.logspace(-4, 3, args.alphas),
            max_shared=min(args.max_shared, args.behavior),
            private=not args.no_private,
        )
        print(load_line() + "  (before the timings)")
        grams, fits = interleaved(model, d, designs, args)
        t_gram, t_fit = min(grams), min(fits)
        print(
            "One Gram pass (every subject's X~'X~; one subject per worker thread, "
            f"single-threaded BLAS): {_fmt(grams)}"
        )
        print(
            f"Full cross-validated fit: {_fmt(fits)} "
            f"(selected alpha = {model.alpha_:.3g}, k = {model.n_shared_})"
        )
        print(load_line() + "  (after the timings)")
        ratio = t_fit / t_gram
        if args.breakdown and not args.no_private:
            sel = time_fit(model.set_params(private=False), d, args.fit_repeat)
            t_sel = min(sel)
            print(
                f"  without private components: {_fmt(sel)}, ratio {t_sel / t_gram:.2f}; "
                f"private components ~ {t_fit - t_sel:.3f} s"
            )
        if args.breakdown:
            stages = time_stages(model, d, args)
            print(
                "  stages (numpy backend, best of 2): "
                + ", ".join(f"{k} {v:.3f} s ({v / t_gram:.2f}x)" for k, v in stages.items())
            )
        if args.floor:
            print_floor(floor(d, args), args, t_gram, t_fit)
        if args.compare_direct:
            print_compare_direct(compare_direct(model, d, args))
        if args.compare_float32:
            print_compare_float32(compare_float32(model, d, args))
        verdicts = ", ".join(f"<= {t}: {'meets' if ratio <= t else 'misses'} it" for t in TARGETS)
        print(f"\nRatio full CV fit / Gram pass = {ratio:.2f}  (targets {verdicts})")
        if ratio > TARGETS[0] and not args.floor:
            print("  (--floor: how much of it the statistics pass and the fold reductions take)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
