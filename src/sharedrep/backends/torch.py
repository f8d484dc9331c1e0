"""PyTorch backend (``device="cuda"`` for a GPU; ``"cpu"`` works too, e.g. for tests).

Design for a GPU, where a float64 ``Z'Z`` runs near peak (an H200 reaches about 48 of
its 67 fp64 TFLOP/s on the Gram pass) but a symmetric eigendecomposition is one to two
orders of magnitude slower per flop (a batched ``eigh`` of 200 matrices of 1000 x 1000
takes about 13 times the Gram pass that produced them). So the GPU path does not copy
the CPU strategy (one ``eigh`` per fold Gram shared by the whole alpha grid):

* **Data pass on the device.** Each subject's raw activity ``X`` (``T x N``) goes to the
  device once; the lag embedding is a gather on the device (``n_lags`` times less
  host-to-device traffic than sending the embedded design) and every CV chunk's
  augmented product ``Z_c' Z_c`` is one GEMM. The chunk statistics stay on the device
  for the solves (and are copied once to the host for the final fit).
* **Fold solves without eigendecompositions.** For every fold the training statistics
  (total minus held-out chunks) of all subjects with the same number of columns are
  standardised as one batch; for every alpha one batched Cholesky factorisation
  ``(G_s + a n_s I) = L L'`` and triangular solves give ``(G_s + a n_s I)^{-1} B_s`` for
  all subjects at once (``q^3 / 3`` flops each, level-3 BLAS on the device). A Cholesky
  failure (never expected: the matrix is ``>= a n I``) falls back to ``eigh`` for that
  subject only. The ``p x p`` generalized eigenproblems of the shared axes are solved
  on the host (``p`` is the number of behaviour features, tiny). Held-out errors are
  batched GEMMs on the device.

Cost per fold and alpha is ``S q^3 / 3`` (Cholesky) against ``2 S T q^2`` for the Gram
pass: ``n_folds * n_alphas * q / (6 T)`` times the pass, e.g. 0.4x for 5 folds, 10
alphas, ``q = 1000``, ``T = 20000``. When ``q`` exceeds the samples per subject, the
dual (kernel) form would be cheaper; it is not implemented (the primal form is used).

``dtype="float32"``: the embedded design is float32 on the device, each chunk product is
accumulated in float64 over row blocks of 4096 samples (TF32 is not used); all
solves are float64.

The final fit (one solve per subject) and the private components run on the host
(numpy) from the statistics, as with the other backends.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import solver
from . import Backend, check_dtype
from ._sources import load

__all__ = ["TorchBackend"]

_BLOCK = 4096


def _import_torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise ImportError(
            "backend='torch' needs PyTorch: pip install 'sharedrep[torch]' (or pip install torch)"
        ) from exc
    return torch


class TorchBackend(Backend):
    """Statistics pass and CV solves with PyTorch (see the module docstring).

    Parameters
    ----------
    device : str
        ``"cuda"``, ``"cuda:1"``, ``"cpu"``...
    batch_size : int or None
        Most subjects solved in one batch (device memory ~ ``6 * batch * q^2 * 8`` bytes);
        ``None``: all subjects with the same number of columns at once.
    """

    name = "torch"

    def __init__(self, device="cpu", batch_size=None):
        torch = _import_torch()
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device {device!r} is not a torch device: {exc}") from exc
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"device={device!r} but CUDA is not available to torch {torch.__version__} "
                "(use device='cpu' or a CUDA build of torch)"
            )
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int or None; got {batch_size!r}")
        self.batch_size = batch_size
        self._torch = torch
        self._cache: dict = {}  # id(stats list) -> (stats list, chunk tensor (C, a, a))

    # ------------------------------------------------------------------ data pass
    def _to_device(self, a: np.ndarray):
        """Copy to the device (read-only inputs, e.g. memory-mapped files, are only read)."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return self._torch.as_tensor(np.ascontiguousarray(a), device=self.device)

    def _gram(self, Z):
        torch = self._torch
        if Z.dtype == torch.float64:
            return Z.T @ Z
        out = torch.zeros((Z.shape[1], Z.shape[1]), dtype=torch.float64, device=Z.device)
        for a in range(0, Z.shape[0], _BLOCK):
            Zb = Z[a : a + _BLOCK]
            out += (Zb.T @ Zb).to(torch.float64)
        return out

    def subject_statistics(
        self,
        X,
        Y,
        groups,
        lags,
        n_folds,
        *,
        gap,
        folds_by_trial,
        random_state,
        nan_policy,
        dtype,
        subject,
    ):
        """One subject's :class:`solver.SubjectData`; the chunk products stay on the device."""
        torch = self._torch
        dev = self.device
        rows, chunks, x_center, y_center = solver.plan_subject(
            X, Y, groups, lags, n_folds, gap, folds_by_trial, random_state, nan_policy, subject
        )
        omit = nan_policy == "omit"
        ordered = rows[chunks.order]
        N, p = X.shape[1], Y.shape[1]
        q = N * lags.size
        Xsrc = np.where(np.isfinite(X), X, 0.0) if omit else X
        idx = torch.as_tensor(ordered, device=dev)
        if dtype == np.float64:
            tdt = torch.float64
            Xt = self._to_device(Xsrc)
            xc = torch.as_tensor(x_center, device=dev)
            Yt = self._to_device(Y)
        else:  # centre in float64 on the host, round once, send half the bytes
            tdt = torch.float32
            Xt = self._to_device((Xsrc - x_center).astype(np.float32))
            xc = None
            Yt = self._to_device(Y)
        Z = torch.empty((ordered.size, q + p + 1), dtype=tdt, device=dev)
        for j, lag in enumerate(lags):
            block = Xt.index_select(0, idx - int(lag))
            Z[:, j * N : (j + 1) * N] = block - xc if xc is not None else block
        del Xt
        Z[:, q : q + p] = (Yt.index_select(0, idx) - torch.as_tensor(y_center, device=dev)).to(tdt)
        Z[:, -1] = 1.0
        bounds = chunks.bounds
        ZZ = torch.stack(
            [self._gram(Z[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        )
        del Z
        host = ZZ.cpu().numpy()
        stats = [solver.augmented_stats(None, q, p, gram=lambda _, m=m: m) for m in host]
        if n_folds:
            solver._check_folds(chunks, stats, subject)
        self._cache[id(stats)] = (stats, ZZ)
        return solver.SubjectData(rows, chunks, stats, np.tile(x_center, lags.size), y_center)

    def statistics(
        self,
        neural,
        behavior,
        groups,
        lags,
        n_folds,
        *,
        gap=0,
        folds_by_trial=True,
        random_state=None,
        nan_policy="raise",
        dtype="float64",
    ):
        dt = check_dtype(dtype) if isinstance(dtype, str) else np.dtype(dtype)
        self._cache.clear()
        out = []
        for s, (X, Y, g) in enumerate(zip(neural, behavior, groups, strict=True)):
            X = load(X, "neural", s, nan_policy=nan_policy, expected_shape=X.shape)
            Y = load(Y, "behavior", s, nan_policy=nan_policy, expected_shape=Y.shape)
            if g is not None:
                g = load(g, "groups", s, expected_shape=g.shape)
            out.append(
                self.subject_statistics(
                    X,
                    Y,
                    g,
                    lags,
                    n_folds,
                    gap=gap,
                    folds_by_trial=folds_by_trial,
                    random_state=random_state,
                    nan_policy=nan_policy,
                    dtype=dt,
                    subject=s,
                )
            )
        return out

    # ------------------------------------------------------------------ solves
    def _device_chunks(self, stats: list):
        """Chunk products of one subject on the device, shape (C, a, a)."""
        hit = self._cache.get(id(stats))
        if hit is not None and hit[0] is stats:
            return hit[1]
        mats = []
        for st in stats:
            q, p = st.xy.shape
            m = np.empty((q + p + 1, q + p + 1))
            m[:q, :q], m[:q, q : q + p], m[q : q + p, :q] = st.xx, st.xy, st.xy.T
            m[q : q + p, q : q + p] = st.yy
            m[:q, -1] = m[-1, :q] = st.sx
            m[q : q + p, -1] = m[-1, q : q + p] = st.sy
            m[-1, -1] = st.n
            mats.append(m)
        return self._torch.as_tensor(np.stack(mats), device=self.device)

    def cv_errors(
        self,
        chunks_stats,
        chunks,
        weights,
        alphas,
        k_max,
        metric,
        shrinkage,
        *,
        y_scale=None,
        axes=None,
    ):
        """As :func:`solver.cv_errors`, with batched Cholesky solves on the device."""
        torch = self._torch
        dev = self.device
        n_folds = chunks[0].n_folds
        S = len(chunks)
        alphas = np.asarray(alphas, dtype=float)
        n_alpha = alphas.size
        p = chunks_stats[0][0].sy.shape[0]
        sse = np.zeros((n_folds, n_alpha, S, k_max))
        sst = np.zeros_like(sse)
        sst_b = np.zeros((n_folds, S))
        n_test = np.zeros((n_folds, S))
        weights = np.asarray(weights, dtype=float)
        dev_chunks = [self._device_chunks(cs) for cs in chunks_stats]
        totals = [c.sum(0) for c in dev_chunks]
        # subjects with the same number of columns are solved as one batch
        by_q: dict = {}
        for s, cs in enumerate(chunks_stats):
            by_q.setdefault(cs[0].xx.shape[0], []).append(s)
        batches = []
        for q, members in by_q.items():
            step = self.batch_size or len(members)
            batches += [(q, members[i : i + step]) for i in range(0, len(members), step)]
        alphas_t = torch.as_tensor(alphas, device=dev)
        for f in range(n_folds):
            train, test, has_test = [], [], np.zeros(S, bool)
            for s in range(S):
                ch = chunks[s]
                out = ~ch.train_mask(f)
                tr = totals[s] - dev_chunks[s][torch.as_tensor(out, device=dev)].sum(0)
                te_mask = ch.test_mask(f)
                has_test[s] = bool(te_mask.any())
                te = dev_chunks[s][torch.as_tensor(te_mask, device=dev)].sum(0)
                train.append(tr)
                test.append(te)
            # pooled behaviour scale of this fold (p-sized, on the host)
            if y_scale is None:  # one transfer of the (p + 1)-square corners
                corners = torch.stack([tr[-1 - p :, -1 - p :] for tr in train]).cpu().numpy()
                light = [
                    solver.Stats(float(c[-1, -1]), None, c[:-1, -1], None, None, c[:-1, :-1])
                    for c in corners
                ]
                ysc = solver.pooled_y_scale(light, weights)
            else:
                ysc = np.asarray(y_scale, dtype=float)
            ysc_t = torch.as_tensor(ysc, device=dev)
            C = torch.zeros((p, p), dtype=torch.float64, device=dev)
            Ms = torch.zeros((n_alpha, p, p), dtype=torch.float64, device=dev)
            solved = []  # per batch: (q, members, std, P (n_alpha, b, q, p))
            for q, members in batches:
                T_ = torch.stack([train[s] for s in members])
                std = _standardize(torch, T_, q, p, ysc_t)
                w = torch.as_tensor(weights[members], device=dev) / std["n"]
                P = _ridge_batch(torch, std["gram"], std["n"], alphas_t, std["cross"])
                Ms += torch.einsum("b,bqi,abqj->aij", w, std["cross"], P)
                C += torch.einsum("b,bij->ij", w, std["yy"])
                solved.append((q, members, std, P))
            C_np = C.cpu().numpy()
            Cm = solver.behavior_metric(C_np, metric, shrinkage)
            if axes is None:
                Ms_np = Ms.cpu().numpy()
                Vs = np.stack(
                    [solver.solve_axes(Ms_np[ia], Cm, k_max)[0] for ia in range(n_alpha)]
                )
            else:
                Vs = np.broadcast_to(np.asarray(axes, dtype=float), (n_alpha, p, k_max))
            Vs_t = torch.as_tensor(np.ascontiguousarray(Vs), device=dev)
            V_all = Vs_t.permute(1, 0, 2).reshape(p, n_alpha * k_max)
            Vt = V_all / ysc_t[:, None]
            for q, members, std, P in solved:
                A_all = torch.einsum("abqp,apk->bqak", P, Vs_t).reshape(
                    len(members), -1, n_alpha * k_max
                )
                H = torch.stack([test[s] for s in members])
                e, t, tb, hn = _heldout(torch, std, A_all, Vt, ysc_t, H, q, p)
                e, t, tb, hn = (x.cpu().numpy() for x in (e, t, tb, hn))
                for i, s in enumerate(members):
                    if not has_test[s]:
                        continue
                    sse[f, :, s] = e[i].reshape(n_alpha, k_max)
                    sst[f, :, s] = t[i].reshape(n_alpha, k_max)
                    sst_b[f, s] = tb[i]
                    n_test[f, s] = hn[i]
        return {"sse": sse, "sst": sst, "sst_behavior": sst_b, "n_test": n_test}


def _standardize(torch, T_, q, p, ysc):
    """Batched :func:`solver.standardize` of augmented statistics ``T_`` (b, a, a)."""
    n = T_[:, -1, -1]
    sx, sy = T_[:, :q, -1], T_[:, q : q + p, -1]
    xx, xy, yy = T_[:, :q, :q], T_[:, :q, q : q + p], T_[:, q : q + p, q : q + p]
    mx, my = sx / n[:, None], sy / n[:, None]
    nn = n[:, None, None]
    cyy = yy - nn * my[:, :, None] * my[:, None, :]
    cxx = xx - nn * mx[:, :, None] * mx[:, None, :]
    cxy = xy - nn * mx[:, :, None] * my[:, None, :]
    dxx = torch.diagonal(cxx, dim1=1, dim2=2)
    var = dxx / n[:, None]
    ref = torch.clamp(
        torch.amax(torch.abs(torch.diagonal(xx, dim1=1, dim2=2)) / n[:, None], 1), 1.0
    )
    constant = var <= solver._CONSTANT_TOL * ref[:, None]
    scale = torch.sqrt(torch.where(constant, torch.ones_like(var), var))
    gram = cxx / (scale[:, :, None] * scale[:, None, :])
    keep = (~constant).to(gram.dtype)
    gram = gram * keep[:, :, None] * keep[:, None, :]
    gram = 0.5 * (gram + gram.transpose(1, 2))
    cross = cxy / scale[:, :, None] / ysc[None, None, :] * keep[:, :, None]
    yyz = cyy / (ysc[:, None] * ysc[None, :])
    return {
        "n": n,
        "x_mean": mx,
        "x_scale": scale,
        "constant": constant,
        "y_mean": my,
        "gram": gram,
        "cross": cross,
        "yy": 0.5 * (yyz + yyz.transpose(1, 2)),
    }


def _ridge_batch(torch, G, n, alphas, B):
    """``(G_b + a n_b I)^{-1} B_b`` for every alpha: shape (n_alpha, b, q, m)."""
    b, q, _ = G.shape
    eye = torch.eye(q, dtype=G.dtype, device=G.device)
    out = []
    eig = None
    for a in alphas:
        reg = G + (a * n)[:, None, None] * eye
        L, info = torch.linalg.cholesky_ex(reg)
        P = torch.cholesky_solve(B, L)
        bad = torch.nonzero(info).flatten().tolist()
        if bad:  # fall back to an eigendecomposition for those subjects only
            if eig is None:
                lam, Q = torch.linalg.eigh(G)
                eig = (torch.clamp(lam, min=0.0), Q)
            lam, Q = eig
            for i in bad:
                R = Q[i].T @ B[i]
                P[i] = Q[i] @ (R / (lam[i] + a * n[i])[:, None])
        out.append(P)
    return torch.stack(out)


def _heldout(torch, std, A, Vt, ysc, H, q, p):
    """Batched :func:`solver.heldout_errors`; ``A`` (b, q, m), ``Vt = V / y_scale`` (p, m)."""
    At = A / std["x_scale"][:, :, None]
    At = At * (~std["constant"]).to(At.dtype)[:, :, None]
    c = std["y_mean"] @ Vt - torch.einsum("bq,bqm->bm", std["x_mean"], At)
    n = H[:, -1, -1]
    hsx, hsy = H[:, :q, -1], H[:, q : q + p, -1]
    hxx, hxy, hyy = H[:, :q, :q], H[:, :q, q : q + p], H[:, q : q + p, q : q + p]
    yv = torch.sum(Vt[None] * (hyy @ Vt), dim=1)
    xa = torch.sum(At * (hxx @ At), dim=1)
    cross = torch.sum(At * (hxy @ Vt), dim=1)
    lin = hsy @ Vt - torch.einsum("bq,bqm->bm", hsx, At)
    sse = yv - 2.0 * cross + xa - 2.0 * c * lin + n[:, None] * c**2
    safe = torch.where(n > 0, n, torch.ones_like(n))
    my = hsy / safe[:, None]
    cyy = hyy - n[:, None, None] * my[:, :, None] * my[:, None, :]
    sst = torch.sum(Vt[None] * (cyy @ Vt), dim=1)
    sst_b = torch.sum(torch.diagonal(cyy, dim1=1, dim2=2) / ysc[None] ** 2, dim=1)
    return torch.clamp(sse, min=0.0), sst, sst_b, n
