"""GPU benchmark of the torch backend: CPU vs GPU times and the Gram pass's efficiency.

One short run on an H200 (about 2-4 minutes at the default size, 200 subjects x 20,000
samples x 1000 units = 32 GB of float64 activity), printing as it goes:

1. the **Gram pass** ``X' X`` of every subject with the data resident on the GPU: time,
   achieved TFLOP/s and memory bandwidth, and their fractions of the device's peaks;
2. the same pass with numpy on the CPU (timed on ``--cpu-subjects`` subjects, scaled to
   all);
3. the torch backend's **statistics pass** from host memory (host-to-device copy of each
   subject's raw activity, lag embedding on the device, CV chunk products, copy of the
   small statistics back);
4. the **CV solves** on the GPU (``5 folds x n_alphas`` batched Cholesky factorisations
   per subject; see ``sharedrep.backends.torch``) and their ratio to the Gram pass (issue
   target: whole CV fit within 3x the Gram pass);
5. the **full fit** ``ShaReD(backend="torch", device=..., private=False)`` and the numpy
   fit on ``--cpu-subjects`` subjects (scaled), with the largest relative difference
   between the two models on those subjects (must be < 1e-8 in float64);
6. with ``--eigh``: a batched ``torch.linalg.eigh`` of the Gram matrices, for comparison
   with the strategy the torch backend avoids.

Peaks: ``--peak-tflops`` / ``--peak-gbs``; by default taken from the device name for the
H200 / H100 SXM (fp64 67 TFLOP/s with tensor cores, fp32 67; 4.8 / 3.35 TB/s HBM3e/HBM3)
and left blank otherwise.

Usage on the GPU machine (sharedrep need not be installed: ``src/`` is put on the path)::

    PYTHONUNBUFFERED=1 python3 benchmarks/gpu.py                 # H200, default size
    python3 benchmarks/gpu.py --subjects 50 --eigh               # smaller, with eigh
    python benchmarks/gpu.py --device cpu --smoke                 # smoke test, CPU torch
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    import sharedrep  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.join(HERE, "..", "src"))

PEAKS = {  # device-name fragment -> (fp64 TFLOP/s, fp32 TFLOP/s, GB/s)
    "H200": (67.0, 67.0, 4800.0),
    "H100": (67.0, 67.0, 3350.0),
}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--subjects", type=int, default=200)
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--units", type=int, default=1000)
    ap.add_argument("--behavior", type=int, default=12)
    ap.add_argument("--lags", type=int, default=0, help="lags 0..LAGS")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--alphas", type=int, default=10)
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--cpu-subjects", type=int, default=4, help="subjects timed on the CPU")
    ap.add_argument("--repeat", type=int, default=3, help="resident Gram passes (min used)")
    ap.add_argument("--eigh", action="store_true", help="also time a batched eigh")
    ap.add_argument("--skip-fit", action="store_true", help="only the Gram passes")
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--peak-gbs", type=float, default=None)
    ap.add_argument(
        "--smoke", action="store_true", help="tiny problem (4 x 2000 x 50) for a quick check"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.smoke:
        args.subjects, args.samples, args.units, args.cpu_subjects = 4, 2000, 50, 2
    args.cpu_subjects = min(args.cpu_subjects, args.subjects)
    return args


def sync(torch, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_data(torch, args, device):
    """Random activity with a planted linear behaviour code, generated on ``device``."""
    gen = torch.Generator(device=device).manual_seed(args.seed)
    S, T, N, p = args.subjects, args.samples, args.units, args.behavior
    neural, behavior = [], []
    for _ in range(S):
        Y = torch.randn(T, p, generator=gen, device=device, dtype=torch.float64)
        W = torch.randn(p, N, generator=gen, device=device, dtype=torch.float64) / p**0.5
        X = Y @ W + 2.0 * torch.randn(T, N, generator=gen, device=device, dtype=torch.float64)
        neural.append(X)
        behavior.append(Y)
    return neural, behavior


def peaks(args, name):
    fp64 = fp32 = gbs = None
    for key, val in PEAKS.items():
        if key in name:
            fp64, fp32, gbs = val
    tflops = fp64 if args.dtype == "float64" else fp32
    if args.peak_tflops is not None:
        tflops = args.peak_tflops
    if args.peak_gbs is not None:
        gbs = args.peak_gbs
    return tflops, gbs


def fmt_frac(x, peak):
    return f"{x / peak:.0%} of {peak:g}" if peak else "peak unknown"


def lag_design(X, n_lags):
    """``[X(t), X(t-1), ...]`` rows ``n_lags-1 .. T-1`` (works for numpy and torch)."""
    T = X.shape[0]
    if n_lags == 1:
        return X
    cat = np.hstack if isinstance(X, np.ndarray) else __import__("torch").hstack
    return cat([X[n_lags - 1 - lag : T - lag] for lag in range(n_lags)])


def main(argv=None) -> int:
    args = parse_args(argv)
    import scipy
    import torch

    from sharedrep import ShaReD, __version__
    from sharedrep.backends import get_backend
    from sharedrep.design import as_lags

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available to this torch; use --device cpu for a smoke test")
        return 2
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    peak_tf, peak_gbs = peaks(args, name if device.type == "cuda" else "")
    tdt = torch.float64 if args.dtype == "float64" else torch.float32
    S, T, N = args.subjects, args.samples, args.units
    n_lags = args.lags + 1
    q = N * n_lags
    print(
        f"device {device} ({name}); torch {torch.__version__}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, sharedrep {__version__}; {os.cpu_count()} CPU cores"
    )
    print(
        f"problem: {S} subjects x {T} samples x {N} units, lags 0..{args.lags} ({q} columns), "
        f"p = {args.behavior}, {args.dtype}; {S * T * N * 8 / 1e9:.1f} GB of float64 activity"
    )

    t0 = time.perf_counter()
    neural_d, behavior_d = make_data(torch, args, device)
    sync(torch, device)
    print(f"data generated on {device} in {time.perf_counter() - t0:.1f} s", flush=True)

    # 1. resident Gram pass ---------------------------------------------------------
    designs = [lag_design(X, n_lags).to(tdt).contiguous() for X in neural_d]
    G = designs[0].T @ designs[0]  # warm-up (library init)
    sync(torch, device)
    times = []
    for _ in range(args.repeat):
        sync(torch, device)
        t0 = time.perf_counter()
        for Z in designs:
            G = Z.T @ Z
        sync(torch, device)
        times.append(time.perf_counter() - t0)
    t_gram = min(times)
    rows = designs[0].shape[0]
    flops = 2.0 * S * rows * q * q
    nbytes = S * rows * q * designs[0].element_size()
    tf = flops / t_gram / 1e12
    gbs = nbytes / t_gram / 1e9
    print(
        f"\n1. Gram pass on {device}, data resident: {t_gram:.3f} s (min of {args.repeat}); "
        f"{tf:.1f} TFLOP/s ({fmt_frac(tf, peak_tf)}), {gbs:.0f} GB/s read "
        f"({fmt_frac(gbs, peak_gbs)})",
        flush=True,
    )
    del designs, G

    # host copies (what a user has) ---------------------------------------------------
    t0 = time.perf_counter()
    neural = [X.cpu().numpy() for X in neural_d]
    behavior = [Y.cpu().numpy() for Y in behavior_d]
    del neural_d, behavior_d
    if device.type == "cuda":
        torch.cuda.empty_cache()
    print(f"   (copied to host memory in {time.perf_counter() - t0:.1f} s)", flush=True)

    # 2. CPU Gram pass ------------------------------------------------------------------
    sc = args.cpu_subjects
    cpu_designs = [
        np.ascontiguousarray(lag_design(X, n_lags), dtype=args.dtype) for X in neural[:sc]
    ]
    _ = cpu_designs[0].T @ cpu_designs[0]
    t0 = time.perf_counter()
    for Z in cpu_designs:
        _ = Z.T @ Z
    t_cpu_gram = (time.perf_counter() - t0) * S / sc
    del cpu_designs
    print(
        f"2. Gram pass with numpy on the CPU: {t_cpu_gram:.2f} s for {S} subjects (timed on "
        f"{sc}, scaled); {flops / t_cpu_gram / 1e12:.2f} TFLOP/s; {device.type} speed-up "
        f"{t_cpu_gram / t_gram:.0f}x",
        flush=True,
    )
    if args.skip_fit:
        return 0

    lags = as_lags(args.lags)
    alphas = np.logspace(-4, 3, args.alphas)
    k_max = min(8, args.behavior)
    weights = np.full(S, 1.0 / S)

    # 3. statistics pass from host memory -----------------------------------------------
    be = get_backend("torch", device=args.device)
    be.statistics(neural[:1], behavior[:1], [None], lags, args.folds)  # warm-up
    sync(torch, device)
    t0 = time.perf_counter()
    prep = be.statistics(
        neural, behavior, [None] * S, lags, args.folds, gap=args.lags, dtype=args.dtype
    )
    sync(torch, device)
    t_stats = time.perf_counter() - t0
    print(
        f"3. statistics pass (torch backend, from host memory): {t_stats:.2f} s = "
        f"{t_stats / t_gram:.1f}x the resident Gram pass; host->device "
        f"{S * T * N * 8 / t_stats / 1e9:.0f} GB/s effective",
        flush=True,
    )

    # 4. CV solves on the device ----------------------------------------------------------
    stats = [p.stats for p in prep]
    chunks = [p.chunks for p in prep]
    be.cv_errors(stats[:1], chunks[:1], [1.0], alphas[:2], k_max, "correlation", 0.01)  # warm-up
    sync(torch, device)
    t0 = time.perf_counter()
    be.cv_errors(stats, chunks, weights, alphas, k_max, "correlation", 0.01)
    sync(torch, device)
    t_cv = time.perf_counter() - t0
    n_chol = args.folds * args.alphas * S
    print(
        f"4. CV solves on {device} ({args.folds} folds x {args.alphas} alphas x {S} subjects "
        f"= {n_chol} Cholesky factorisations of {q} x {q}): {t_cv:.2f} s = "
        f"{t_cv / t_gram:.1f}x the Gram pass; "
        f"{n_chol * q**3 / 3 / t_cv / 1e12:.1f} TFLOP/s in the factorisations",
        flush=True,
    )
    del prep, stats, chunks, be
    if device.type == "cuda":
        torch.cuda.empty_cache()

    # 5. full fits -------------------------------------------------------------------------
    kw = dict(
        n_shared="auto",
        lags=args.lags,
        cv=args.folds,
        alphas=alphas,
        max_shared=k_max,
        private=False,
        random_state=0,
        dtype=args.dtype,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        ShaReD(backend="torch", device=args.device, **kw).fit(neural, behavior)
        sync(torch, device)
        t_fit = time.perf_counter() - t0
        print(
            f"5. full fit ShaReD(backend='torch', device={args.device!r}, private=False), "
            f"{S} subjects: {t_fit:.2f} s = {t_fit / t_gram:.1f}x the resident Gram pass "
            f"(target <= 3x); {t_fit / (t_stats + t_cv):.2f}x statistics + CV solves",
            flush=True,
        )
        a = ShaReD(backend="torch", device=args.device, **kw).fit(neural[:sc], behavior[:sc])
        t0 = time.perf_counter()
        b = ShaReD(**kw).fit(neural[:sc], behavior[:sc])
        t_np = (time.perf_counter() - t0) * S / sc
    rel = max(
        np.abs(a.shared_axes_ - b.shared_axes_).max() / np.abs(b.shared_axes_).max(),
        max(
            np.abs(x - y).max() / np.abs(y).max()
            for x, y in zip(a.encoders_, b.encoders_, strict=True)
        ),
    )
    same = (a.alpha_, a.n_shared_) == (b.alpha_, b.n_shared_)
    print(
        f"   numpy fit on the CPU: {t_np:.1f} s for {S} subjects (timed on {sc}, scaled): "
        f"{device.type} fit speed-up {t_np / t_fit:.1f}x\n"
        f"   torch vs numpy on {sc} subjects: same alpha and k: {same}; largest relative "
        f"difference {rel:.1e} ({'ok' if rel < 1e-8 or args.dtype == 'float32' else 'TOO LARGE'})",
        flush=True,
    )

    # 6. eigh for comparison ------------------------------------------------------------
    if args.eigh:
        m = min(S, 50)
        Z = torch.as_tensor(neural[0][:, :N], device=device, dtype=torch.float64)
        Gb = (Z.T @ Z / T).expand(m, N, N).contiguous()
        torch.linalg.eigh(Gb[:2])
        sync(torch, device)
        t0 = time.perf_counter()
        torch.linalg.eigh(Gb)
        sync(torch, device)
        t_e = (time.perf_counter() - t0) * S / m
        print(
            f"6. batched eigh of {S} Gram matrices {N} x {N} (timed on {m}, scaled): "
            f"{t_e:.2f} s = {t_e / t_gram:.1f}x the Gram pass (per fold)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
