"""GPU benchmark of the torch backend: CPU vs GPU times and the Gram pass's efficiency.

One short run on an H200 (not yet timed on one; default size 200 subjects x 20,000
samples x 1000 units = 32 GB of float64 activity), printing as it goes:

1. the **Gram pass** ``X' X`` of every subject: with the data resident on the GPU (time,
   achieved TFLOP/s and memory bandwidth, and their fractions of the device's peaks) and
   from host memory (copy of each subject to the GPU, then its product);
2. the same pass with numpy on the CPU (timed on ``--cpu-subjects`` subjects, scaled to
   all);
3. the **factorisations** of the ridge systems, ``S`` matrices ``q x q`` at once:
   torch's batched Cholesky against the backend's blocked one, and their solves;
4. the torch backend's **statistics pass** (lag embedding on the device, CV chunk
   products) from tensors on the GPU and from host arrays;
5. the **CV solves** on the GPU (``n_folds x n_alphas`` batched factorisations) with
   each factorisation;
6. the **full fit** ``ShaReD(backend="torch", device=..., private=False)`` from tensors
   on the GPU (issue target: within 3x the resident Gram pass) and from host arrays
   (against the Gram pass from host memory); with ``private=True`` (computed on the
   host); the numpy fit on ``--cpu-subjects`` subjects (scaled), with the largest
   relative difference between the GPU and numpy models on those subjects (must be
   < 1e-8 in float64);
7. with ``--eigh``: a batched ``torch.linalg.eigh`` of the Gram matrices, for comparison
   with the strategy the torch backend avoids.

A section that fails prints its error and the run goes on to the next one.

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
import traceback
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
    ap.add_argument("--no-private", action="store_true", help="skip the private=True fit")
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


def timed(torch, device, func, *args, **kwargs):
    """``(seconds, result)`` of one call, synchronised with the device."""
    sync(torch, device)
    t0 = time.perf_counter()
    out = func(*args, **kwargs)
    sync(torch, device)
    return time.perf_counter() - t0, out


def section(title):
    """Run a benchmark section; a failure is printed and the run goes on."""

    def wrap(func):
        def run(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - report and continue
                print(f"{title}: FAILED: {type(exc).__name__}: {exc}", flush=True)
                traceback.print_exc(limit=4)
                return None

        return run

    return wrap


def main(argv=None) -> int:
    args = parse_args(argv)
    import scipy
    import torch

    from sharedrep import ShaReD, __version__
    from sharedrep.core.backends import get_backend
    from sharedrep.core.backends import torch as tb
    from sharedrep.core.design import as_lags

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
    t0 = time.perf_counter()
    neural = [X.cpu().numpy() for X in neural_d]
    behavior = [Y.cpu().numpy() for Y in behavior_d]
    print(f"   (copied to host memory in {time.perf_counter() - t0:.1f} s)", flush=True)
    res = {}

    # 1. Gram passes -------------------------------------------------------------------
    @section("1. Gram pass")
    def gram_passes():
        designs = [lag_design(X, n_lags).to(tdt).contiguous() for X in neural_d]
        G = designs[0].T @ designs[0]  # warm-up (library init)

        def resident(designs):
            for Z in designs:
                G = Z.T @ Z
            return G

        t = min(timed(torch, device, resident, designs)[0] for _ in range(args.repeat))
        res["gram"] = t
        rows = designs[0].shape[0]
        flops = 2.0 * S * rows * q * q
        nbytes = S * rows * q * designs[0].element_size()
        tf, gbs = flops / t / 1e12, nbytes / t / 1e9
        print(
            f"\n1. Gram pass on {device}, data resident: {t:.3f} s (min of {args.repeat}); "
            f"{tf:.1f} TFLOP/s ({fmt_frac(tf, peak_tf)}), {gbs:.0f} GB/s read "
            f"({fmt_frac(gbs, peak_gbs)})",
            flush=True,
        )
        del designs, G

        def from_host():
            for X in neural:
                Z = lag_design(torch.as_tensor(X, device=device), n_lags).to(tdt)
                G = Z.T @ Z
            return G

        t_h = timed(torch, device, from_host)[0]
        res["gram_host"] = t_h
        print(
            f"   Gram pass from host memory (copy of each subject, then its product): "
            f"{t_h:.2f} s; {S * T * N * 8 / t_h / 1e9:.0f} GB/s host->device effective",
            flush=True,
        )
        res["flops"] = flops

    gram_passes()
    t_gram = res.get("gram", float("nan"))

    # 2. CPU Gram pass ------------------------------------------------------------------
    @section("2. CPU Gram pass")
    def cpu_gram():
        sc = args.cpu_subjects
        cpu_designs = [
            np.ascontiguousarray(lag_design(X, n_lags), dtype=args.dtype) for X in neural[:sc]
        ]
        _ = cpu_designs[0].T @ cpu_designs[0]
        t0 = time.perf_counter()
        for Z in cpu_designs:
            _ = Z.T @ Z
        t = (time.perf_counter() - t0) * S / sc
        print(
            f"2. Gram pass with numpy on the CPU: {t:.2f} s for {S} subjects (timed on "
            f"{sc}, scaled); {res['flops'] / t / 1e12:.2f} TFLOP/s; {device.type} speed-up "
            f"{t / t_gram:.0f}x",
            flush=True,
        )

    cpu_gram()
    if args.skip_fit:
        return 0
    lags = as_lags(args.lags)
    alphas = np.logspace(-4, 3, args.alphas)
    k_max = min(8, args.behavior)
    weights = np.full(S, 1.0 / S)
    n_fact = args.folds * args.alphas

    # 3. factorisations -------------------------------------------------------------------
    @section("3. factorisations")
    def factorisations():
        Z = neural_d[0][: max(T // 4, q + 1)]
        G1 = Z.T @ Z / Z.shape[0] + 1e-3 * torch.eye(N, device=device, dtype=torch.float64)
        A = G1.expand(S, N, N).contiguous()
        B = torch.randn(S, N, args.behavior, device=device, dtype=torch.float64)
        torch.linalg.cholesky_ex(A[:2])
        tb._cholesky_blocked(torch, A[:2])
        t_lib, (L, _) = timed(torch, device, torch.linalg.cholesky_ex, A)
        t_lib_s, X1 = timed(torch, device, torch.cholesky_solve, B, L)
        t_blk, (Lb, _) = timed(torch, device, tb._cholesky_blocked, torch, A)
        t_blk_s, X2 = timed(torch, device, tb._cholesky_solve_blocked, torch, Lb, B)
        diff = float((L - Lb).abs().max() / L.abs().max())
        dsol = float((X1 - X2).abs().max() / X1.abs().max())
        fl = S * N**3 / 3
        print(
            f"3. {S} Cholesky factorisations of {N} x {N}: torch.linalg.cholesky_ex "
            f"{t_lib * 1e3:.1f} ms ({fl / t_lib / 1e12:.2f} TFLOP/s), blocked "
            f"{t_blk * 1e3:.1f} ms ({fl / t_blk / 1e12:.2f} TFLOP/s); solves with "
            f"{args.behavior} columns: cholesky_solve {t_lib_s * 1e3:.1f} ms, blocked "
            f"{t_blk_s * 1e3:.1f} ms; factors agree to {diff:.1e}, solutions to {dsol:.1e}\n"
            f"   x {n_fact} (folds x alphas): library {n_fact * (t_lib + t_lib_s):.2f} s = "
            f"{n_fact * (t_lib + t_lib_s) / t_gram:.1f}x the Gram pass, blocked "
            f"{n_fact * (t_blk + t_blk_s):.2f} s = {n_fact * (t_blk + t_blk_s) / t_gram:.1f}x",
            flush=True,
        )

    factorisations()
    if device.type == "cuda":
        torch.cuda.empty_cache()

    # 4. statistics pass ------------------------------------------------------------------
    be = get_backend("torch", device=args.device)
    kw_stats = dict(gap=args.lags, dtype=args.dtype)

    @section("4. statistics pass")
    def statistics():
        be.statistics(neural_d[:1], behavior[:1], [None], lags, args.folds)  # warm-up
        t_d, prep = timed(
            torch,
            device,
            be.statistics,
            neural_d,
            behavior,
            [None] * S,
            lags,
            args.folds,
            **kw_stats,
        )
        print(
            f"4. statistics pass (torch backend) from tensors on {device}: {t_d:.2f} s = "
            f"{t_d / t_gram:.1f}x the resident Gram pass",
            flush=True,
        )
        del prep
        t_h, prep = timed(
            torch,
            device,
            be.statistics,
            neural,
            behavior,
            [None] * S,
            lags,
            args.folds,
            **kw_stats,
        )
        print(
            f"   from host arrays: {t_h:.2f} s = "
            f"{t_h / res.get('gram_host', float('nan')):.2f}x the Gram pass from host memory",
            flush=True,
        )
        return prep

    prep = statistics()

    # 5. CV solves --------------------------------------------------------------------------
    @section("5. CV solves")
    def cv_solves(prep):
        stats = [p.stats for p in prep]
        chunks = [p.chunks for p in prep]
        out = {}
        for fact in ("blocked", "library"):
            b = get_backend("torch", device=args.device, factorization=fact)
            b.cv_errors(stats[:1], chunks[:1], [1.0], alphas[:2], k_max, "correlation", 0.01)
            t, err = timed(
                torch,
                device,
                b.cv_errors,
                stats,
                chunks,
                weights,
                alphas,
                k_max,
                "correlation",
                0.01,
            )
            out[fact] = err
            print(
                f"5. CV solves on {device}, factorization={fact!r} ({args.folds} folds x "
                f"{args.alphas} alphas x {S} subjects, {q} columns): {t:.2f} s = "
                f"{t / t_gram:.1f}x the Gram pass",
                flush=True,
            )
        d = max(
            float(np.nanmax(np.abs(out["blocked"][k] - out["library"][k])))
            / max(float(np.nanmax(np.abs(out["library"][k]))), 1e-300)
            for k in ("sse", "sst")
        )
        print(f"   blocked vs library held-out errors: largest relative difference {d:.1e}")

    if prep is not None:
        cv_solves(prep)
    del prep
    if device.type == "cuda":
        torch.cuda.empty_cache()

    # 6. full fits --------------------------------------------------------------------------
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

    @section("6. full fits")
    def full_fits():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ShaReD(backend="torch", device=args.device, **kw).fit(neural_d[:2], behavior[:2])
            t_d, _ = timed(
                torch,
                device,
                ShaReD(backend="torch", device=args.device, **kw).fit,
                neural_d,
                behavior,
            )
            print(
                f"6. full fit ShaReD(backend='torch', device={args.device!r}, private=False) "
                f"from tensors on {device}: {t_d:.2f} s = {t_d / t_gram:.1f}x the resident "
                "Gram pass (target <= 3x)",
                flush=True,
            )
            t_h, m = timed(
                torch,
                device,
                ShaReD(backend="torch", device=args.device, **kw).fit,
                neural,
                behavior,
            )
            print(
                f"   from host arrays: {t_h:.2f} s = "
                f"{t_h / res.get('gram_host', float('nan')):.2f}x the Gram pass from host "
                f"memory; selected alpha {m.alpha_:.3g}, k = {m.n_shared_}",
                flush=True,
            )
            if not args.no_private:
                t_p, _ = timed(
                    torch,
                    device,
                    ShaReD(backend="torch", device=args.device, **{**kw, "private": True}).fit,
                    neural_d,
                    behavior,
                )
                print(
                    f"   with private=True (private components on the host): {t_p:.2f} s "
                    f"= {t_p / t_gram:.1f}x the resident Gram pass",
                    flush=True,
                )
            sc = args.cpu_subjects
            a = ShaReD(backend="torch", device=args.device, **kw).fit(neural_d[:sc], behavior[:sc])
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
        ok = rel < 1e-8 or args.dtype == "float32"
        print(
            f"   numpy fit on the CPU: {t_np:.1f} s for {S} subjects (timed on {sc}, scaled): "
            f"{device.type} fit speed-up {t_np / t_d:.0f}x from tensors, {t_np / t_h:.0f}x "
            f"from host arrays\n   torch vs numpy on {sc} subjects: same alpha and k: "
            f"{same}; largest relative difference {rel:.1e} ({'ok' if ok else 'TOO LARGE'})",
            flush=True,
        )

    full_fits()

    # 7. eigh for comparison ------------------------------------------------------------
    @section("7. eigh")
    def eigh():
        m = min(S, 50)
        Z = neural_d[0]
        Gb = (Z.T @ Z / T).expand(m, N, N).contiguous()
        torch.linalg.eigh(Gb[:2])
        t_e = timed(torch, device, torch.linalg.eigh, Gb)[0] * S / m
        print(
            f"7. batched eigh of {S} Gram matrices {N} x {N} (timed on {m}, scaled): "
            f"{t_e:.2f} s = {t_e / t_gram:.1f}x the Gram pass (per fold)",
            flush=True,
        )

    if args.eigh:
        eigh()
    return 0


if __name__ == "__main__":
    sys.exit(main())
