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
  zero outside that subject's samples, plus the stacked behaviour; ``k`` components,
  shrinkage 0.1. Behaviour is read out from each subject's canonical variates by a
  per-subject least-squares map.
* **per-subject CCA** (scikit-learn ``CCA(k)``) and **per-subject RidgeCV** (behaviour from
  activity, alphas ``logspace(-3, 3, 13)``): no pooling across subjects.
* **PCA-then-CCA alignment** (the approach of aligning latent dynamics across animals):
  per-subject PCA (10 components), behaviour-matched "conditions" from k-means (40
  clusters) of the pooled training behaviour, each subject's condition-averaged PCs
  aligned to subject 0's by CCA (full rank), then one ridge decoder shared by all
  subjects on the aligned latents.

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
* **fit s**: wall time of the fit (including any internal cross-validation).

Nonlinear variant: each unit is standardised and passed through ``exp(0.8 x)`` (a
rate-like, expansive nonlinearity), so no linear map recovers behaviour exactly.

Run ``python benchmarks/bench_peers.py --quick`` (4 subjects, about 2-3 minutes with CEBRA
at 300 iterations) or without ``--quick`` (8 subjects, CEBRA at its default 10,000
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


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="4 subjects, CEBRA 300 iterations")
    ap.add_argument("--subjects", type=int, default=None, help="default 8 (4 with --quick)")
    ap.add_argument("--samples", type=int, default=None, help="default 5000 (2000 quick)")
    ap.add_argument("--units", type=int, nargs=2, default=(20, 60), help="units range")
    ap.add_argument("--behavior", type=int, default=12)
    ap.add_argument("--shared", type=int, default=2, help="true shared dimensions k")
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
        "--variants", nargs="+", default=["linear", "nonlinear"], choices=["linear", "nonlinear"]
    )
    ap.add_argument("--skip", nargs="*", default=[], help="method names to skip")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (threadpoolctl)")
    ap.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch CPU threads for CEBRA (on a busy machine >1 thread can be 10x slower)",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.subjects is None:
        args.subjects = 4 if args.quick else 8
    if args.samples is None:
        args.samples = 2000 if args.quick else 5000
    if args.cebra_iterations is None:
        args.cebra_iterations = 300 if args.quick else CEBRA_DEFAULT_ITERATIONS
    return args


# ---------------------------------------------------------------------- data
class Split:
    """Train/test split of every subject, behaviour in pooled-standardised units."""

    def __init__(self, neural, behavior, groups, test_fraction=0.2):
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

    def r2(self, preds) -> float:
        """Pooled held-out R^2 (pooled-standardised units, each subject's own mean)."""
        sse = sst = 0.0
        for Y, P in zip(self.Yte, preds, strict=True):
            sse += float(np.sum(((Y - P) / self.y_scale) ** 2))
            sst += float(np.sum(((Y - Y.mean(0)) / self.y_scale) ** 2))
        return 1.0 - sse / sst


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
    m = ShaReD(n_shared=k, cv=5, random_state=0).fit(split.Xtr, split.Ytr, groups=split.gtr)
    t = time.perf_counter() - t0
    preds = [m.predict(X, subject=s) for s, X in enumerate(split.Xte)]
    lat = [m.transform(X, subject=s) for s, X in enumerate(split.Xte)]
    return t, preds, max_angle(m.shared_axes_, truth["shared"]), "shared", lat


def run_cca(split, truth, k, args):
    from sklearn.cross_decomposition import CCA

    t0 = time.perf_counter()
    models = [
        CCA(n_components=k, max_iter=1000).fit(X, Y)
        for X, Y in zip(split.Xtr, split.Ytr, strict=True)
    ]
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
    return t, preds, ang, "shared", lat


def run_ridgecv(split, truth, k, args):
    from sklearn.linear_model import RidgeCV

    t0 = time.perf_counter()
    models = []
    for X, Y in zip(split.Xtr, split.Ytr, strict=True):
        m, s = standardize_fit(X)
        models.append((m, s, RidgeCV(alphas=np.logspace(-3, 3, 13)).fit((X - m) / s, Y)))
    t = time.perf_counter() - t0
    preds, lat, angs = [], [], []
    for (m, s, r), X, Xtr in zip(models, split.Xte, split.Xtr, strict=True):
        preds.append(r.predict((X - m) / s))
        Ptr = (r.predict((Xtr - m) / s) - r.intercept_) / split.y_scale
        axes = top_subspace(Ptr.T, k)  # predicted-behaviour subspace, pooled units
        angs.append(max_angle(axes, truth["encoded"]))
        lat.append(((preds[-1] - r.intercept_) / split.y_scale) @ axes)
    return t, preds, float(np.mean(angs)), "encoded", lat


def run_mcca(split, truth, k, args):
    from cca_zoo.linear import MCCA

    S = split.S
    n = [len(X) for X in split.Xtr]
    offsets = np.concatenate([[0], np.cumsum(n)])
    t0 = time.perf_counter()
    means = [X.mean(0) for X in split.Xtr]
    views = []
    for s, X in enumerate(split.Xtr):
        V = np.zeros((offsets[-1], X.shape[1]))
        V[offsets[s] : offsets[s + 1]] = X - means[s]
        views.append(V)
    Ystack = np.vstack([(Y - Y.mean(0)) / split.y_scale for Y in split.Ytr])
    views.append(Ystack)
    model = MCCA(n_components=k, shrinkage=0.1).fit(views)
    t = time.perf_counter() - t0
    W = model.weights_
    preds, lat = [], []
    for s in range(S):
        Ztr = (split.Xtr[s] - means[s]) @ W[s]
        Zte = (split.Xte[s] - means[s]) @ W[s]
        P, _ = ridge_readout(Ztr, split.Ytr[s], Zte)
        preds.append(P)
        lat.append(Zte)
    return t, preds, max_angle(W[-1], truth["shared"]), "shared", lat


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


def run_pca_cca(split, truth, k, args, n_pc=10, n_clusters=40):
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.linear_model import Ridge

    t0 = time.perf_counter()
    pcas, Ltr = [], []
    for X in split.Xtr:
        m, s = standardize_fit(X)
        d = min(n_pc, X.shape[1])
        p = PCA(n_components=d).fit((X - m) / s)
        pcas.append((m, s, p))
        Ltr.append(p.transform((X - m) / s))
    km = KMeans(n_clusters=n_clusters, n_init=3, random_state=0).fit(
        np.vstack([Y / split.y_scale for Y in split.Ytr])
    )
    labels = [km.predict(Y / split.y_scale) for Y in split.Ytr]

    def cond_means(L, lab):
        return {c: L[lab == c].mean(0) for c in np.unique(lab)}

    ref = cond_means(Ltr[0], labels[0])
    maps = [np.eye(Ltr[0].shape[1])]
    for s in range(1, split.S):
        cur = cond_means(Ltr[s], labels[s])
        common = sorted(set(ref) & set(cur))
        A = np.array([cur[c] for c in common])
        B = np.array([ref[c] for c in common])
        d = min(A.shape[1], B.shape[1])
        Wa, Wb = _cca_maps(A[:, :d], B[:, :d])
        maps.append(Wa @ np.linalg.pinv(Wb))  # subject PCs -> reference PC space
    Atr = [L[:, : m.shape[0]] @ m for L, m in zip(Ltr, maps, strict=True)]
    dec = Ridge(alpha=1.0).fit(np.vstack(Atr), np.vstack(split.Ytr))
    t = time.perf_counter() - t0
    preds, lat = [], []
    for (m, s, p), M, X in zip(pcas, maps, split.Xte, strict=True):
        A = p.transform((X - m) / s)[:, : M.shape[0]] @ M
        preds.append(dec.predict(A))
        lat.append(A)
    axes = top_subspace((dec.coef_ / split.y_scale[:, None]) @ np.cov(np.vstack(Atr).T), k)
    return t, preds, max_angle(axes, truth["encoded"]), "encoded", lat


def run_cebra(split, truth, k, args):
    import cebra
    import torch

    torch.set_num_threads(args.torch_threads)
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
    return t, preds, max_angle(axes, truth["encoded"]), "encoded", lat


METHODS = [
    ("ShaReD", run_sharedrep, None),
    ("CEBRA multi-session", run_cebra, "cebra"),
    ("cca-zoo MCCA (+behaviour view)", run_mcca, "cca_zoo"),
    ("per-subject CCA", run_cca, None),
    ("per-subject RidgeCV", run_ridgecv, None),
    ("PCA-then-CCA alignment", run_pca_cca, None),
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


def main(argv=None) -> int:
    args = parse_args(argv)
    from bench_fit import machine_info

    from sharedrep import simulate

    limiter = contextlib.nullcontext()
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=args.threads)
    with limiter, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        print("Machine")
        for line in machine_info():
            print("  " + line)
        print("  " + versions())
        for name, _, module in METHODS:
            if not available(module):
                print(
                    f"  {name}: package {module!r} not installed (pip install "
                    f"{module.replace('_', '-')}): skipped"
                )
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
            f"{args.units[0]}..{args.units[1]}, p = {args.behavior}, k = {args.shared}, "
            f"snr {args.snr}, shared variance {args.shared_variance};\nheld out: the last 20% "
            "of the trials of every subject. "
            f"CEBRA: {args.cebra_iterations} iterations, {args.torch_threads} torch thread(s)."
        )
        for variant in args.variants:
            neural = d.neural if variant == "linear" else nonlinear(d.neural)
            split = Split(neural, d.behavior, d.groups)
            print(f"\n[{variant}]")
            header = (
                f"{'method':<32}{'fit s':>10}{'R^2':>8}{'axes deg':>10}{'truth':>9}"
                f"{'consistency':>13}"
            )
            print(header)
            print("-" * len(header))
            results = {}
            for name, fn, module in METHODS:
                if name in args.skip or not available(module):
                    continue
                try:
                    t, preds, ang, which, lat = fn(split, truth, args.shared, args)
                except Exception as exc:  # a peer failing must not stop the table
                    print(f"{name:<32}failed: {type(exc).__name__}: {exc}")
                    continue
                r2 = split.r2(preds)
                cons = consistency(split, lat)
                results[name] = (t, r2)
                note = ""
                if name.startswith("CEBRA") and args.cebra_iterations != CEBRA_DEFAULT_ITERATIONS:
                    t_def = t * CEBRA_DEFAULT_ITERATIONS / args.cebra_iterations
                    results[name] = (t_def, r2)
                    note = (
                        f"  ({args.cebra_iterations} it; ~{t_def:.0f} s at 10,000, extrapolated)"
                    )
                print(
                    f"{name:<32}{t:>10.2f}{r2:>8.3f}{ang:>10.1f}{which:>9}{cons:>13.2f}{note}",
                    flush=True,
                )
            if "ShaReD" in results and "CEBRA multi-session" in results:
                ts, rs = results["ShaReD"]
                tc, rc = results["CEBRA multi-session"]
                print(
                    f"CEBRA (at its default iterations) / ShaReD fit time: {tc / ts:.0f}x "
                    f"(target >= 100x); held-out R^2 ShaReD {rs:.3f} vs CEBRA {rc:.3f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
