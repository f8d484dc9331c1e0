"""ShaReD against peer methods on the same simulated data (linear and nonlinear variants).

Peers (the ``baselines`` extra: ``pip install cebra cca-zoo``; a missing one is skipped
with a message):

* **CEBRA multi-session** (``cebra``, CPU): behaviour-supervised contrastive embedding,
  one encoder per subject into a common embedding. Settings: the library defaults
  (``output_dimension=8``, ``learning_rate=3e-4``, ``temperature=1``,
  ``max_iterations=10000``) except those its multi-session demo requires:
  ``model_architecture="offset10-model"``, ``batch_size=512``,
  ``conditional="time_delta"``. ``--cebra-iterations`` trains for fewer iterations;
  the time at the default 10,000 iterations is then extrapolated (and marked so).
  Behaviour is read out from the embedding by a per-subject ridge regression.
* **cca-zoo MCCA, behaviour as a view**: views = each subject's (centred) activity,
  zero outside that subject's samples, plus the stacked behaviour; ``k`` components and
  the shrinkage chosen by cross-validation (grid below). Behaviour is read out from each
  subject's canonical variates by a per-subject least-squares map.
* **per-subject CCA** (scikit-learn ``CCA``, ``k`` chosen by cross-validation) and
  **per-subject ridge** (behaviour from activity, alpha chosen from ``logspace(-1, 5, 13)``
  by cross-validation): no pooling across subjects.
* **PCA-then-CCA alignment** (the approach of aligning latent dynamics across animals):
  per-subject PCA, behaviour-matched "conditions" from k-means (40 clusters) of the pooled
  training behaviour, each subject's condition-averaged PCs aligned to subject 0's by CCA
  (full rank), then one ridge decoder shared by all subjects on the aligned latents; the
  number of PCs and the decoder's alpha chosen by cross-validation.

Fair treatment:

* **one set of folds**: every hyper-parameter is chosen on the training trials by the same
  grouped 5-fold split, the one ShaReD uses internally
  (``sharedrep.core.cv.block_folds(..., trials="balanced", random_state=seed)``: whole
  trials per fold), scored by held-out R^2 of behaviour. ShaReD chooses ``k`` itself
  (``n_shared="auto"`` up to ``--max-shared``) and alpha; no method is given the true ``k``.
  CEBRA has no cross-validated setting here (library defaults), as in its own demos.
* **one thread budget** (``--threads``, default 1): BLAS/OpenMP threads (threadpoolctl),
  torch CPU threads (``torch.set_num_threads``) and ShaReD's per-subject worker threads
  (``SHAREDREP_NUM_THREADS``) are all set to it; scikit-learn runs with ``n_jobs=1``. The
  budget is printed.
* **measured ratios**: fit times are compared as measured. A CEBRA time at its default
  10,000 iterations, when fewer were run, is an extrapolation and printed as such, beside
  the measurement, never as the headline.

Metrics, all on held-out trials (the last 20 % of each subject's trials):

* **R^2**: pooled held-out R^2 of behaviour (pooled-standardised units, each subject's
  own mean), as ``ShaReD.score``;
* **axes**: largest principal angle (degrees) between the method's ``k``-dimensional
  behaviour subspace and the truth: ``shared_axes`` for behaviour weights of CCA-type
  methods (ShaReD, CCA, MCCA), ``encoded_subspace`` for subspaces of predicted behaviour
  (RidgeCV, PCA-CCA decoder, CEBRA readout); per-subject methods: mean over subjects;
* **consistency**: for each subject the least-squares map ``B_s`` (``p x m``) from held-out
  behaviour to the method's held-out latents (what each latent dimension means); the mean
  over subject pairs of the cosine between ``B_s`` and ``B_t`` (1: every latent means the
  same thing in every subject; near 0: unaligned latents);
* **fit s**: wall time of the fit, including the cross-validation that chooses its
  hyper-parameters (the minimum over ``--repeat`` fits, interleaved across methods).

Nonlinear variant: each unit is standardised and passed through ``exp(0.8 x)`` (a
rate-like, expansive nonlinearity), so no linear map recovers behaviour exactly.

Run ``python benchmarks/bench_peers.py --quick`` (4 subjects x 2000 samples, linear variant
only, CEBRA at 300 iterations; under two minutes on two cores without CEBRA) or without
``--quick`` (8 subjects x 5000 samples, both variants, CEBRA at its default 10,000
iterations: tens of minutes on a CPU). Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import sys
import time
import warnings

import numpy as np
from scipy.linalg import subspace_angles

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CEBRA_DEFAULT_ITERATIONS = 10_000
N_FOLDS = 5
RIDGE_ALPHAS = np.logspace(-1, 5, 13)
MCCA_SHRINKAGE = (0.01, 0.1, 0.3, 0.7)
PCA_COMPONENTS = (5, 10, 20)
DECODER_ALPHAS = (0.1, 1.0, 10.0, 100.0)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="4 subjects x 2000 samples, linear variant only, CEBRA 300 iterations",
    )
    ap.add_argument("--subjects", type=int, default=None, help="default 8 (4 with --quick)")
    ap.add_argument("--samples", type=int, default=None, help="default 5000 (2000 quick)")
    ap.add_argument("--units", type=int, nargs=2, default=(20, 60), help="units range")
    ap.add_argument("--behavior", type=int, default=12)
    ap.add_argument("--shared", type=int, default=2, help="true shared dimensions k")
    ap.add_argument(
        "--max-shared", type=int, default=6, help="k is chosen by CV among 1..MAX_SHARED"
    )
    ap.add_argument("--snr", type=float, default=1.0)
    ap.add_argument(
        "--shared-variance",
        type=float,
        default=1.0,
        help="behaviour variance of the encoded latents (simulate's default 0.2 makes them "
        "low-variance, so behaviour R^2 is small for every method)",
    )
    ap.add_argument("--trial-length", type=int, default=100)
    ap.add_argument(
        "--cebra-iterations",
        type=int,
        default=None,
        help=f"default {CEBRA_DEFAULT_ITERATIONS} (the library default; 300 with --quick)",
    )
    ap.add_argument(
        "--variants",
        nargs="+",
        default=None,
        choices=["linear", "nonlinear"],
        help="default: both (linear only with --quick)",
    )
    ap.add_argument("--skip", nargs="*", default=[], help="method names to skip")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="thread budget of every method: BLAS, torch and ShaReD's worker threads",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="fits timed per method, interleaved (the minimum is reported); default 3, "
        "1 with --quick",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.subjects is None:
        args.subjects = 4 if args.quick else 8
    if args.samples is None:
        args.samples = 2000 if args.quick else 5000
    if args.cebra_iterations is None:
        args.cebra_iterations = 300 if args.quick else CEBRA_DEFAULT_ITERATIONS
    if args.variants is None:
        args.variants = ["linear"] if args.quick else ["linear", "nonlinear"]
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    for key in ("subjects", "samples", "threads", "repeat", "max_shared"):
        if getattr(args, key) < 1:
            ap.error(f"--{key.replace('_', '-')} must be >= 1")
    return args


def set_thread_budget(n: int) -> tuple[contextlib.AbstractContextManager, str]:
    """Limit every thread pool to ``n``; returns the BLAS limiter and a description."""
    from threadpoolctl import threadpool_limits

    os.environ["SHAREDREP_NUM_THREADS"] = str(n)  # read by sharedrep at every fit
    parts = [f"BLAS/OpenMP {n} (threadpoolctl)", f"ShaReD workers {n} (SHAREDREP_NUM_THREADS)"]
    try:
        import torch

        torch.set_num_threads(n)
        parts.append(f"torch {torch.get_num_threads()}")
    except ImportError:
        parts.append("torch not installed")
    parts.append("scikit-learn n_jobs=1")
    return threadpool_limits(limits=n), "thread budget for every method: " + ", ".join(parts)


# ---------------------------------------------------------------------- data
class Split:
    """Train/test split of every subject, behaviour in pooled-standardised units.

    ``folds[s]`` is the fold (0..4) of each training sample of subject ``s``: whole trials,
    assigned as ShaReD assigns them (the same grouped folds for every method).
    """

    def __init__(self, neural, behavior, groups, test_fraction=0.2, seed=0):
        from sharedrep.core.cv import block_folds

        self.Xtr, self.Xte, self.Ytr, self.Yte, self.gtr, self.gte = [], [], [], [], [], []
        for X, Y, g in zip(neural, behavior, groups, strict=True):
            trials = np.unique(g)
            cut = trials[int(np.floor((1 - test_fraction) * trials.size))]
            tr, te = g < cut, g >= cut
            self.Xtr.append(X[tr])
            self.Xte.append(X[te])
            self.Ytr.append(Y[tr])
            self.Yte.append(Y[te])
            self.gtr.append(g[tr])
            self.gte.append(g[te])
        self.S = len(neural)
        var = np.mean([Y.var(axis=0) for Y in self.Ytr], axis=0)
        self.y_scale = np.sqrt(var)
        self.seed = seed
        self.folds = [
            block_folds(g.size, N_FOLDS, g, trials="balanced", edges="floor", random_state=seed)
            for g in self.gtr
        ]

    def splits(self, s: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(train, test)`` indices of the folds of subject ``s`` (scikit-learn ``cv``)."""
        from sharedrep.core.cv import fold_splits

        return fold_splits(self.folds[s])

    def r2(self, preds) -> float:
        """Pooled held-out R^2 (pooled-standardised units, each subject's own mean)."""
        return pooled_r2(self.Yte, preds, self.y_scale)


def pooled_r2(Ys, preds, y_scale) -> float:
    sse = sst = 0.0
    for Y, P in zip(Ys, preds, strict=True):
        sse += float(np.sum(((Y - P) / y_scale) ** 2))
        sst += float(np.sum(((Y - Y.mean(0)) / y_scale) ** 2))
    return 1.0 - sse / sst


def pooled_cv(split, fit_predict, grid):
    """The grid point with the best pooled held-out R^2 over the shared folds.

    ``fit_predict(Xtr, Ytr, Xte, point) -> list of predictions`` runs a pooled method
    (all subjects at once) on per-subject training and test rows.
    """
    scores = []
    for point in grid:
        sse = 0.0
        for f in range(N_FOLDS):
            tr = [fold != f for fold in split.folds]
            te = [fold == f for fold in split.folds]
            Xtr = [X[m] for X, m in zip(split.Xtr, tr, strict=True)]
            Ytr = [Y[m] for Y, m in zip(split.Ytr, tr, strict=True)]
            Xte = [X[m] for X, m in zip(split.Xtr, te, strict=True)]
            Yte = [Y[m] for Y, m in zip(split.Ytr, te, strict=True)]
            preds = fit_predict(Xtr, Ytr, Xte, point)
            sse += sum(
                float(np.sum(((Y - P) / split.y_scale) ** 2))
                for Y, P in zip(Yte, preds, strict=True)
            )
        scores.append(-sse)
    return grid[int(np.argmax(scores))]


def nonlinear(neural):
    """Standardise each unit, then ``exp(0.8 x)``: an expansive, rate-like nonlinearity."""
    out = []
    for X in neural:
        Z = (X - X.mean(0)) / X.std(0)
        out.append(np.exp(0.8 * Z))
    return out


def standardize_fit(X):
    m, s = X.mean(0), X.std(0)
    s[s == 0] = 1.0
    return m, s


def max_angle(A, B) -> float:
    return float(np.degrees(subspace_angles(A, B)).max())


def top_subspace(M, k):
    """Top-``k`` left singular vectors of ``M`` (p x ...)."""
    U, _, _ = np.linalg.svd(M, full_matrices=False)
    return U[:, :k]


def consistency(split, latents) -> float:
    """Mean pairwise cosine of the behaviour-to-latent maps ``B_s`` (see module docstring)."""
    maps = []
    for Y, Z in zip(split.Yte, latents, strict=True):
        Ys = (Y - Y.mean(0)) / split.y_scale
        Zc = Z - Z.mean(0)
        B = np.linalg.lstsq(Ys, Zc, rcond=None)[0]
        maps.append(B / np.linalg.norm(B))
    cos = [float(np.sum(a * b)) for a, b in itertools.combinations(maps, 2)]
    return float(np.mean(cos)) if cos else float("nan")


def ridge_readout(Ztr, Ytr, Zte, lam=1e-3):
    """Least-squares (tiny ridge) map from latents to behaviour; returns test predictions."""
    mz, my = Ztr.mean(0), Ytr.mean(0)
    Zc = Ztr - mz
    W = np.linalg.solve(Zc.T @ Zc + lam * len(Zc) * np.eye(Zc.shape[1]), Zc.T @ (Ytr - my))
    return (Zte - mz) @ W + my, W


# ---------------------------------------------------------------------- methods
def run_sharedrep(split, truth, k, args):
    from sharedrep import ShaReD

    t0 = time.perf_counter()
    m = ShaReD(
        n_shared="auto", max_shared=args.max_shared, cv=N_FOLDS, random_state=split.seed
    ).fit(split.Xtr, split.Ytr, groups=split.gtr)
    t = time.perf_counter() - t0
    preds = [m.predict(X, subject=s) for s, X in enumerate(split.Xte)]
    lat = [m.transform(X, subject=s) for s, X in enumerate(split.Xte)]
    note = f"k={m.n_shared_}, alpha={m.alpha_:.3g}"
    return t, preds, max_angle(m.shared_axes_, truth["shared"]), "shared", lat, note


def _scorer(y_scale):
    """Held-out score of the CV: minus the squared error in pooled-standardised units."""
    from sklearn.metrics import make_scorer

    return make_scorer(lambda y, p: -float(np.sum(((y - p) / y_scale) ** 2)))


def run_cca(split, truth, k, args):
    from sklearn.cross_decomposition import CCA
    from sklearn.model_selection import GridSearchCV

    t0 = time.perf_counter()
    models = []
    for s, (X, Y) in enumerate(zip(split.Xtr, split.Ytr, strict=True)):
        ks = list(range(1, min(args.max_shared, X.shape[1], Y.shape[1]) + 1))
        search = GridSearchCV(
            CCA(max_iter=1000),
            {"n_components": ks},
            cv=split.splits(s),
            scoring=_scorer(split.y_scale),
        )
        models.append(search.fit(X, Y).best_estimator_)
    t = time.perf_counter() - t0
    preds = [c.predict(X) for c, X in zip(models, split.Xte, strict=True)]
    lat = [c.transform(X) for c, X in zip(models, split.Xte, strict=True)]
    # y weights act on behaviour scaled by its own std: map back to pooled units
    ang = np.mean(
        [
            max_angle(c.y_weights_ / c._y_std[:, None] * split.y_scale[:, None], truth["shared"])
            for c in models
        ]
    )
    note = "k=" + ",".join(str(c.n_components) for c in models)
    return t, preds, ang, "shared", lat, note


def run_ridge(split, truth, k, args):
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    t0 = time.perf_counter()
    models = []
    for s, (X, Y) in enumerate(zip(split.Xtr, split.Ytr, strict=True)):
        search = GridSearchCV(
            make_pipeline(StandardScaler(), Ridge()),
            {"ridge__alpha": RIDGE_ALPHAS},
            cv=split.splits(s),
            scoring=_scorer(split.y_scale),
        )
        models.append(search.fit(X, Y).best_estimator_)
    t = time.perf_counter() - t0
    preds, lat, angs = [], [], []
    for pipe, X, Xtr in zip(models, split.Xte, split.Xtr, strict=True):
        r = pipe[-1]
        preds.append(pipe.predict(X))
        Ptr = (pipe.predict(Xtr) - r.intercept_) / split.y_scale
        axes = top_subspace(Ptr.T, k)  # predicted-behaviour subspace, pooled units
        angs.append(max_angle(axes, truth["encoded"]))
        lat.append(((preds[-1] - r.intercept_) / split.y_scale) @ axes)
    note = "alpha=" + ",".join(f"{pipe[-1].alpha:.3g}" for pipe in models)
    return t, preds, float(np.mean(angs)), "encoded", lat, note


def _mcca_fit(Xtr, Ytr, y_scale, k, shrinkage):
    from cca_zoo.linear import MCCA

    n = [len(X) for X in Xtr]
    offsets = np.concatenate([[0], np.cumsum(n)])
    means = [X.mean(0) for X in Xtr]
    views = []
    for s, X in enumerate(Xtr):
        V = np.zeros((offsets[-1], X.shape[1]))
        V[offsets[s] : offsets[s + 1]] = X - means[s]
        views.append(V)
    views.append(np.vstack([(Y - Y.mean(0)) / y_scale for Y in Ytr]))
    return means, MCCA(n_components=k, shrinkage=shrinkage).fit(views).weights_


def _mcca_predict(means, W, Xtr, Ytr, Xte):
    preds, lat = [], []
    for s, (X, Y, Xt) in enumerate(zip(Xtr, Ytr, Xte, strict=True)):
        Ztr, Zte = (X - means[s]) @ W[s], (Xt - means[s]) @ W[s]
        preds.append(ridge_readout(Ztr, Y, Zte)[0])
        lat.append(Zte)
    return preds, lat


def run_mcca(split, truth, k, args):
    grid = [(kk, sh) for kk in range(1, args.max_shared + 1) for sh in MCCA_SHRINKAGE]

    def fit_predict(Xtr, Ytr, Xte, point):
        means, W = _mcca_fit(Xtr, Ytr, split.y_scale, *point)
        return _mcca_predict(means, W, Xtr, Ytr, Xte)[0]

    t0 = time.perf_counter()
    best = pooled_cv(split, fit_predict, grid)
    means, W = _mcca_fit(split.Xtr, split.Ytr, split.y_scale, *best)
    t = time.perf_counter() - t0
    preds, lat = _mcca_predict(means, W, split.Xtr, split.Ytr, split.Xte)
    note = f"k={best[0]}, shrinkage={best[1]}"
    return t, preds, max_angle(W[-1], truth["shared"]), "shared", lat, note


def _cca_maps(A, B, reg=1e-6):
    """Full-rank CCA of paired rows: ``A @ Wa`` and ``B @ Wb`` are the canonical variates."""
    A = A - A.mean(0)
    B = B - B.mean(0)

    def inv_sqrt(C):
        lam, Q = np.linalg.eigh(C + reg * np.trace(C) / len(C) * np.eye(len(C)))
        return Q @ np.diag(lam**-0.5) @ Q.T

    Ka, Kb = inv_sqrt(A.T @ A), inv_sqrt(B.T @ B)
    U, _, Vt = np.linalg.svd(Ka @ A.T @ B @ Kb)
    return Ka @ U, Kb @ Vt.T


def _pca_cca_fit(Xtr, Ytr, y_scale, n_pc, alpha, n_clusters=40):
    """Per-subject PCA, condition-matched CCA alignment to subject 0, shared ridge decoder."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.linear_model import Ridge

    pcas, Ltr = [], []
    for X in Xtr:
        m, s = standardize_fit(X)
        p = PCA(n_components=min(n_pc, X.shape[1])).fit((X - m) / s)
        pcas.append((m, s, p))
        Ltr.append(p.transform((X - m) / s))
    km = KMeans(n_clusters=n_clusters, n_init=3, random_state=0).fit(
        np.vstack([Y / y_scale for Y in Ytr])
    )
    labels = [km.predict(Y / y_scale) for Y in Ytr]

    def cond_means(L, lab):
        return {c: L[lab == c].mean(0) for c in np.unique(lab)}

    ref = cond_means(Ltr[0], labels[0])
    maps = [np.eye(Ltr[0].shape[1])]
    for s in range(1, len(Xtr)):
        cur = cond_means(Ltr[s], labels[s])
        common = sorted(set(ref) & set(cur))
        A = np.array([cur[c] for c in common])
        B = np.array([ref[c] for c in common])
        d = min(A.shape[1], B.shape[1])
        Wa, Wb = _cca_maps(A[:, :d], B[:, :d])
        maps.append(Wa @ np.linalg.pinv(Wb))  # subject PCs -> reference PC space
    Atr = [L[:, : m.shape[0]] @ m for L, m in zip(Ltr, maps, strict=True)]
    dec = Ridge(alpha=alpha).fit(np.vstack(Atr), np.vstack(Ytr))
    return pcas, maps, dec, Atr


def _pca_cca_predict(model, Xte):
    pcas, maps, dec, _ = model
    preds, lat = [], []
    for (m, s, p), M, X in zip(pcas, maps, Xte, strict=True):
        A = p.transform((X - m) / s)[:, : M.shape[0]] @ M
        preds.append(dec.predict(A))
        lat.append(A)
    return preds, lat


def run_pca_cca(split, truth, k, args):
    grid = [(n_pc, a) for n_pc in PCA_COMPONENTS for a in DECODER_ALPHAS]

    def fit_predict(Xtr, Ytr, Xte, point):
        return _pca_cca_predict(_pca_cca_fit(Xtr, Ytr, split.y_scale, *point), Xte)[0]

    t0 = time.perf_counter()
    best = pooled_cv(split, fit_predict, grid)
    model = _pca_cca_fit(split.Xtr, split.Ytr, split.y_scale, *best)
    t = time.perf_counter() - t0
    preds, lat = _pca_cca_predict(model, split.Xte)
    dec, Atr = model[2], model[3]
    axes = top_subspace((dec.coef_ / split.y_scale[:, None]) @ np.cov(np.vstack(Atr).T), k)
    note = f"PCs={best[0]}, alpha={best[1]:g}"
    return t, preds, max_angle(axes, truth["encoded"]), "encoded", lat, note


def run_cebra(split, truth, k, args):
    import cebra

    model = cebra.CEBRA(
        model_architecture="offset10-model",
        batch_size=512,
        conditional="time_delta",
        max_iterations=args.cebra_iterations,
        device="cpu",
        verbose=False,
    )
    f32 = [X.astype(np.float32) for X in split.Xtr]
    y32 = [((Y - Y.mean(0)) / split.y_scale).astype(np.float32) for Y in split.Ytr]
    t0 = time.perf_counter()
    model.fit(f32, y32)
    t = time.perf_counter() - t0
    preds, lat, stacked = [], [], []
    for s in range(split.S):
        Ztr = model.transform(split.Xtr[s].astype(np.float32), session_id=s)
        Zte = model.transform(split.Xte[s].astype(np.float32), session_id=s)
        P, _ = ridge_readout(Ztr, split.Ytr[s], Zte)
        Ptr, _ = ridge_readout(Ztr, split.Ytr[s], Ztr)
        stacked.append((Ptr - Ptr.mean(0)) / split.y_scale)
        preds.append(P)
        lat.append(Zte)
    axes = top_subspace(np.vstack(stacked).T, k)
    note = f"{args.cebra_iterations} iterations (library defaults, no CV)"
    return t, preds, max_angle(axes, truth["encoded"]), "encoded", lat, note


METHODS = [
    ("ShaReD", run_sharedrep, None),
    ("CEBRA multi-session", run_cebra, "cebra"),
    ("cca-zoo MCCA (+behaviour view)", run_mcca, "cca_zoo"),
    ("per-subject CCA", run_cca, "sklearn"),
    ("per-subject ridge", run_ridge, "sklearn"),
    ("PCA-then-CCA alignment", run_pca_cca, "sklearn"),
]


def available(module):
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def versions():
    out = []
    for mod in ("numpy", "scipy", "sklearn", "sharedrep", "torch", "cebra", "cca_zoo"):
        try:
            m = __import__(mod)
            out.append(f"{mod} {getattr(m, '__version__', '?')}")
        except ImportError:
            out.append(f"{mod} (not installed)")
    return ", ".join(out)


def run_variant(split, truth, args, methods) -> dict:
    """Fit every method ``--repeat`` times, interleaved; print the table; return results."""
    results, best = {}, {}
    for _ in range(args.repeat):
        for name, fn, _module in methods:
            if best.get(name) == "failed":
                continue
            try:
                out = fn(split, truth, args.shared, args)
            except Exception as exc:  # a peer failing must not stop the table
                print(f"{name}: failed: {type(exc).__name__}: {exc}")
                best[name] = "failed"
                continue
            best[name] = min(best.get(name, np.inf), out[0])
            results[name] = out
    header = (
        f"{'method':<32}{'fit s':>9}{'R^2':>8}{'axes deg':>10}{'truth':>9}{'consistency':>13}"
        "  chosen by CV"
    )
    print(header)
    print("-" * len(header))
    table = {}
    for name, (_, preds, ang, which, lat, note) in results.items():
        t = best[name]
        r2 = split.r2(preds)
        table[name] = (t, r2)
        print(
            f"{name:<32}{t:>9.2f}{r2:>8.3f}{ang:>10.1f}{which:>9}"
            f"{consistency(split, lat):>13.2f}  {note}",
            flush=True,
        )
    return table


def print_ratios(table: dict, args) -> None:
    """The headline: measured fit-time ratios to ShaReD (extrapolations labelled)."""
    if "ShaReD" not in table:
        return
    ts, rs = table["ShaReD"]
    print(f"Measured fit time / ShaReD's ({ts:.2f} s), same thread budget and folds:")
    for name, (t, r2) in table.items():
        if name == "ShaReD":
            continue
        line = f"  {name:<32}{t / ts:>9.1f}x   held-out R^2 {r2:.3f} vs ShaReD {rs:.3f}"
        if name.startswith("CEBRA") and args.cebra_iterations != CEBRA_DEFAULT_ITERATIONS:
            t_def = t * CEBRA_DEFAULT_ITERATIONS / args.cebra_iterations
            line += (
                f"   [measured at {args.cebra_iterations} iterations; at the default "
                f"{CEBRA_DEFAULT_ITERATIONS}: ~{t_def / ts:.0f}x, EXTRAPOLATED, not measured]"
            )
        print(line)


def main(argv=None) -> int:
    args = parse_args(argv)
    from bench_fit import load_line, machine_info

    from sharedrep import simulate

    limiter, budget = set_thread_budget(args.threads)
    with limiter, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        print("Machine")
        for line in machine_info():
            print("  " + line)
        print("  " + versions())
        print("  " + budget)
        methods = []
        for name, fn, module in METHODS:
            if name in args.skip:
                print(f"  {name}: skipped (--skip)")
            elif not available(module):
                print(
                    f"  {name}: package {module!r} not installed (pip install "
                    f"{module.replace('_', '-').replace('sklearn', 'scikit-learn')}): skipped"
                )
            else:
                methods.append((name, fn, module))
        d = simulate(
            n_subjects=args.subjects,
            n_samples=args.samples,
            n_units=tuple(args.units),
            n_behavior=args.behavior,
            n_shared=args.shared,
            snr=args.snr,
            shared_variance=args.shared_variance,
            trial_length=args.trial_length,
            seed=args.seed,
        )
        truth = {"shared": d.shared_axes, "encoded": d.encoded_subspace}
        print(
            f"\nData: {args.subjects} subjects x {args.samples} samples, units "
            f"{args.units[0]}..{args.units[1]}, p = {args.behavior}, true k = {args.shared} "
            f"(not given to any method; k chosen among 1..{args.max_shared}), snr {args.snr}, "
            f"shared variance {args.shared_variance};\nheld out: the last 20% of the trials "
            f"of every subject; hyper-parameters: {N_FOLDS} grouped folds over the training "
            f"trials, the same for every method; fit times: min of {args.repeat} (interleaved)."
        )
        for variant in args.variants:
            neural = d.neural if variant == "linear" else nonlinear(d.neural)
            split = Split(neural, d.behavior, d.groups, seed=args.seed)
            print(f"\n[{variant}]  {load_line()}")
            table = run_variant(split, truth, args, methods)
            print_ratios(table, args)
        print(f"\n{load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
