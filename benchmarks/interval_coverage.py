"""Coverage of 95% intervals of a mean over few subjects (mice), by Monte Carlo.

The study analyses give an interval of a mean over mice (:func:`sharedrep.study._common.
t_mean_ci`: the Student t interval). This script measures, for the few mice a study has,
how often each candidate interval holds the true mean: the t interval, the percentile
bootstrap the analyses used before, BCa (:func:`scipy.stats.bootstrap`) and the
bootstrap-t, for normal, heavy-tailed (t3), skewed (lognormal, exponential) and
integer-valued (0..3, like per-mouse lag shifts in frames) values. A data set for which
an interval cannot be formed (NaN bounds) counts as a miss; the share of such data sets
is printed in brackets.

    python benchmarks/interval_coverage.py [--reps 2000] [--boot 1000] [--seed 12345]

About a minute at the defaults on 2 cores.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from scipy import stats

SUBJECTS = (2, 3, 4, 5, 6, 8, 10, 15)
BATCH = 200  # data sets resampled at once (memory: BATCH x boot x n)


def _values(name: str, rng, size) -> tuple[np.ndarray, float]:
    """``size`` values of distribution ``name`` and its true mean."""
    if name == "normal":
        return rng.normal(0.0, 1.0, size), 0.0
    if name == "t3":
        return rng.standard_t(3, size), 0.0
    if name == "lognormal":
        return rng.lognormal(0.0, 1.0, size), float(np.exp(0.5))
    if name == "exponential":
        return rng.exponential(1.0, size), 1.0
    vals, p = np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.1, 0.5, 0.3, 0.1])
    return rng.choice(vals, size=size, p=p), float(vals @ p)


def _resampled(x: np.ndarray, rng, boot: int):
    """Batches of (data-set slice, bootstrap resamples (batch, boot, n))."""
    n = x.shape[1]
    for s in range(0, x.shape[0], BATCH):
        xs = x[s : s + BATCH]
        idx = rng.integers(0, n, size=(xs.shape[0], boot, n))
        yield slice(s, s + xs.shape[0]), np.take_along_axis(xs[:, None, :], idx, axis=2)


def percentile(x, rng, boot):
    lo, hi = np.empty(x.shape[0]), np.empty(x.shape[0])
    for sl, xb in _resampled(x, rng, boot):
        lo[sl], hi[sl] = np.quantile(xb.mean(-1), [0.025, 0.975], axis=1)
    return lo, hi


def t_interval(x, rng, boot):
    from sharedrep.study._common import t_mean_ci

    bounds = np.array([t_mean_ci(row)[:2] for row in x])
    return bounds[:, 0], bounds[:, 1]


def bca(x, rng, boot):
    res = stats.bootstrap(
        (x,), np.mean, axis=-1, n_resamples=boot, method="BCa", vectorized=True,
        batch=BATCH, random_state=rng,
    )  # fmt: skip
    return res.confidence_interval.low, res.confidence_interval.high


def bootstrap_t(x, rng, boot):
    n = x.shape[1]
    m, se = x.mean(1), x.std(1, ddof=1) / np.sqrt(n)
    lo, hi = np.empty(x.shape[0]), np.empty(x.shape[0])
    for sl, xb in _resampled(x, rng, boot):
        with np.errstate(divide="ignore", invalid="ignore"):
            tb = (xb.mean(-1) - m[sl, None]) / (xb.std(-1, ddof=1) / np.sqrt(n))
        tb[~np.isfinite(tb)] = np.nan  # resamples without spread
        lo[sl] = m[sl] - np.nanquantile(tb, 0.975, axis=1) * se[sl]
        hi[sl] = m[sl] - np.nanquantile(tb, 0.025, axis=1) * se[sl]
    return lo, hi


METHODS = {"t": t_interval, "percentile": percentile, "BCa": bca, "bootstrap-t": bootstrap_t}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2000, help="data sets per cell")
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples")
    ap.add_argument("--seed", type=int, default=12345)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"{args.reps} data sets per cell, {args.boot} resamples; coverage % of a nominal 95%")
    print("interval [% of data sets without an interval]")
    for dist in ("normal", "t3", "lognormal", "exponential", "integer"):
        print(f"\n{dist}\n   n" + "".join(f"{k:>16}" for k in METHODS))
        for n in SUBJECTS:
            x, mu = _values(dist, rng, (args.reps, n))
            cells = []
            for method in METHODS.values():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    lo, hi = (np.asarray(b, float) for b in method(x, rng, args.boot))
                ok = np.isfinite(lo) & np.isfinite(hi)
                cover = np.mean(ok & (lo <= mu) & (mu <= hi))
                cells.append(f"{100 * cover:6.1f} [{100 * (1 - ok.mean()):4.1f}]")
            print(f"{n:4d}" + "".join(f"{c:>16}" for c in cells), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
