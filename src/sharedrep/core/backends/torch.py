"""PyTorch backend (``device="cuda"`` for a GPU; ``"cpu"`` works too, e.g. for tests).

Design for a GPU, where a float64 ``Z'Z`` runs near peak (an H200 reaches about 48 of
its 67 fp64 TFLOP/s on the Gram pass) but a symmetric eigendecomposition is one to two
orders of magnitude slower per flop (a batched ``eigh`` of 200 matrices of 1000 x 1000
takes about 13 times the Gram pass that produced them). So the GPU path does not copy
the CPU strategy, and the whole fit stays on the device:

* **Data where it is.** Neural activity may be given as torch tensors (already on the
  GPU: nothing crosses the bus) or host arrays/files (each subject's raw activity is
  copied once). The lag embedding is a gather on the device (``n_lags`` times less
  traffic than sending the embedded design) and every CV chunk's augmented product
  ``Z_c' Z_c`` is one GEMM. The chunk statistics stay on the device
  (:class:`DeviceStats`; host copies only if something asks for them, e.g. private
  components).
* **Fold solves without eigendecompositions.** For every fold the training statistics
  (total minus held-out chunks) of all subjects with the same number of columns are
  standardised as one batch; for every alpha one batched Cholesky factorisation
  ``G_s + a n_s I = L L'`` and triangular solves give ``(G_s + a n_s I)^{-1} B_s``
  for all subjects at once. Large matrices use a blocked factorisation whose work is
  batched GEMMs (:func:`_cholesky_blocked`). A Cholesky failure (never expected: the
  matrix is ``>= a n I``) falls back to ``eigh`` for that subject only. The ``p x p``
  generalized eigenproblems of the shared axes are solved on the host (``p`` is the
  number of behaviour features, tiny). Held-out errors are batched GEMMs.
* **Final fit on the device** (:meth:`TorchBackend.final_fit`): one more batched solve
  at the selected alpha; only the ``q x k`` encoders and ``q``-vectors come back.

Cost per fold and alpha is ``S q^3 / 3`` (Cholesky) against ``2 S T q^2`` for the Gram
pass: ``n_folds * n_alphas * q / (6 T)`` times the pass, e.g. 0.4x for 5 folds, 10
alphas, ``q = 1000``, ``T = 20000``. When ``q`` exceeds the samples per subject the
kernel form (:mod:`sharedrep.core.dual`, numpy and dask backends) needs fewer flops, but here
the primal factorisations run as batched GEMMs (e.g. 50 of 3000 x 3000 are 4.5e11
flops: tens of milliseconds at the tens of fp64 TFLOP/s of an H100-class GPU, by
arithmetic, not measured here), so this backend always solves the primal form;
``form="dual"`` is refused.

``dtype="float32"``: the embedded design is float32 on the device, each chunk product is
accumulated in float64 over row blocks of 4096 samples (TF32 is not used); all
solves are float64.

Private components (``private=True``) run on the host (numpy) from host copies of the
statistics, as with the other backends.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from sharedrep.core import data_pass, solver
from sharedrep.core.backends import Backend
from sharedrep.core.backends._sources import TensorArray, load
from sharedrep.utils.validation import nonfinite_error

__all__ = ["TorchBackend", "DeviceStats", "FACTORIZATIONS"]

_BLOCK = 4096  # float32 row blocks, summed in float64
_PANEL = 128  # columns per panel of the blocked factorisation and solves
_BLOCKED_MIN = 512  # factorization="auto": blocked on CUDA from this many columns on
FACTORIZATIONS = ("auto", "blocked", "library")


def _import_torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise ImportError(
            "backend='torch' needs PyTorch: pip install 'sharedrep[torch]' (or pip install torch)"
        ) from exc
    return torch


class DeviceStats(Sequence):
    """One subject's CV chunk statistics, left on the device.

    Behaves as the list of :class:`sharedrep.core.solver.SufficientStats` the other backends
    return; the host copies are made on first access (private components, ``add_subject``...),
    so a fit that needs only the solves never copies the ``(q + p + 1)``-square
    matrices back to the host.

    Attributes
    ----------
    mats : torch.Tensor (C, q + p + 1, q + p + 1)
        Augmented products ``Z_c' Z_c`` of each chunk (float64, on the device).
    q, p : int
        Lagged neural columns and behaviour features.
    """

    def __init__(self, mats, q: int, p: int):
        self.mats = mats
        self.q, self.p = int(q), int(p)
        self._host = None

    def __len__(self) -> int:
        return int(self.mats.shape[0])

    def __getitem__(self, i):
        if self._host is None:
            host = self.mats.cpu().numpy()
            self._host = [
                solver.augmented_stats(None, self.q, self.p, gram=lambda _, m=m: m) for m in host
            ]
        return self._host[i]

    def __repr__(self) -> str:
        return (
            f"DeviceStats({len(self)} chunks, {self.q} + {self.p} columns, on {self.mats.device})"
        )


class TorchBackend(Backend):
    """Statistics pass, CV solves and final fit with PyTorch (see the module docstring).

    Parameters
    ----------
    device : str
        ``"cuda"``, ``"cuda:1"``, ``"cpu"``...
    batch_size : int or None
        Most subjects solved in one batch (device memory ~ ``6 * batch * q^2 * 8`` bytes);
        ``None``: all subjects with the same number of columns at once.
    factorization : {"auto", "blocked", "library"}
        Cholesky factorisations and solves of the ridge systems: ``"blocked"`` (panels
        of 128 columns, the work in batched matrix products), ``"library"``
        (``torch.linalg.cholesky_ex`` / ``torch.cholesky_solve``) or ``"auto"`` (blocked
        on CUDA from 512 columns on, the library otherwise). The threshold is a design
        choice not yet measured on a GPU; ``benchmarks/gpu.py`` times both.
    """

    name = "torch"

    def __init__(self, device="cpu", batch_size=None, factorization="auto"):
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
        if factorization not in FACTORIZATIONS:
            raise ValueError(
                f"factorization must be one of {FACTORIZATIONS}; got {factorization!r}"
            )
        self.batch_size = batch_size
        self.factorization = factorization
        self._torch = torch

    def _blocked(self, q: int) -> bool:
        if self.factorization == "auto":
            return self.device.type == "cuda" and q >= _BLOCKED_MIN
        return self.factorization == "blocked"

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

    def _tensor_on_device(self, X, subject, omit: bool):
        """A neural tensor as float64 on the device, validated there, and its summary.

        Returns ``(X, (finite rows or None, preconditioning centres))``: the centres are
        column medians over at most ~1024 evenly spaced finite rows, as
        :func:`solver.plan_subject` takes them on the host. Non-finite samples are zeroed
        with ``nan_policy="omit"`` (their lag windows are dropped).
        """
        torch = self._torch
        Xt = X.detach().to(device=self.device, dtype=torch.float64)
        finite = torch.isfinite(Xt)
        if not omit:
            if not bool(finite.all()):
                raise nonfinite_error(f"subject {subject}: neural", torch.nonzero(~finite)[0])
            return Xt, (None, self._center(Xt, None))
        rows = finite.all(1)
        Xt = torch.where(finite, Xt, torch.zeros((), dtype=Xt.dtype, device=Xt.device))
        return Xt, (rows.cpu().numpy(), self._center(Xt, rows))

    def _center(self, Xt, rows) -> np.ndarray:
        """Column medians (N,) of ``Xt`` over a subsample of its rows ``rows`` (all if None)."""
        torch = self._torch
        idx = torch.arange(Xt.shape[0], device=Xt.device)
        if rows is not None:
            idx = idx[rows]
        if idx.numel() == 0:
            return np.zeros(Xt.shape[1])
        idx = idx[:: max(1, idx.numel() // solver._CENTER_ROWS)]
        return Xt[idx].median(0).values.cpu().numpy()

    def subject_statistics(
        self,
        X,
        Y,
        groups,
        lags,
        n_folds,
        *,
        dtype,
        subject,
        form="primal",
        **plan,
    ):
        """One subject's :class:`solver.SubjectData` with :class:`DeviceStats` (primal form).

        ``X`` is a float64 ndarray or a torch tensor (used where it is, copied to
        ``device`` if elsewhere); ``Y`` and ``groups`` are host arrays. ``plan`` are the
        options of :func:`solver.plan_subject` (``gap``, ``folds_by_trial``,
        ``random_state``, ``nan_policy``). ``form`` is accepted with the other pass
        options; this backend always uses the primal form.
        """
        torch = self._torch
        dev = self.device
        omit = plan.get("nan_policy", "raise") == "omit"
        summary = None
        if isinstance(X, torch.Tensor):
            X, summary = self._tensor_on_device(X, subject, omit)
        rows, chunks, x_center, y_center = solver.plan_subject(
            X, Y, groups, lags, n_folds, subject=subject, x_summary=summary, **plan
        )
        ordered = rows[chunks.order]
        N, p = X.shape[1], Y.shape[1]
        q = N * lags.size
        if summary is None:
            Xsrc = np.where(np.isfinite(X), X, 0.0) if omit else X
        xc = torch.as_tensor(x_center, device=dev)
        if dtype == np.float64:
            tdt = torch.float64
            Xt = X if summary is not None else self._to_device(Xsrc)
        else:  # centre in float64, round once, (from the host: send half the bytes)
            tdt = torch.float32
            if summary is not None:
                Xt = (X - xc).to(torch.float32)
            else:
                Xt = self._to_device((Xsrc - x_center).astype(np.float32))
            xc = None
        idx = torch.as_tensor(ordered, device=dev)
        Z = torch.empty((ordered.size, q + p + 1), dtype=tdt, device=dev)
        for j, lag in enumerate(lags):
            block = Xt.index_select(0, idx - int(lag))
            Z[:, j * N : (j + 1) * N] = block - xc if xc is not None else block
        del Xt
        Yc = torch.as_tensor(Y[ordered] - y_center, device=dev)
        Z[:, q : q + p] = Yc.to(tdt)
        Z[:, -1] = 1.0
        bounds = chunks.bounds
        ZZ = torch.stack(
            [self._gram(Z[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        )
        del Z
        if dtype != np.float64:  # X on the host: exact check; a device tensor: overflow
            host = Xsrc if summary is None else None
            _check_range(ZZ, host, Y, rows, lags, x_center, y_center, dtype, subject)
        stats = DeviceStats(ZZ, q, p)
        if n_folds:
            solver.check_folds(chunks, subject)
        return solver.SubjectData(rows, chunks, stats, np.tile(x_center, lags.size), y_center)

    def _statistics(self, neural, behavior, groups, opts):
        if opts["form"] == "dual":
            raise ValueError(
                "form='dual' (kernel solves) runs on the numpy and dask backends; the torch "
                "backend solves the primal form (use form='auto' or 'primal')"
            )
        nan_policy = opts["nan_policy"]
        out = []
        for s, (X, Y, g) in enumerate(zip(neural, behavior, groups, strict=True)):
            if isinstance(X, TensorArray):
                X = X.tensor  # stays where it is (on the device, typically)
            else:
                X = load(X, "neural", s, nan_policy=nan_policy, expected_shape=X.shape)
            Y = load(Y, "behavior", s, nan_policy=nan_policy, expected_shape=Y.shape)
            if g is not None:
                g = load(g, "groups", s, expected_shape=g.shape)
            out.append(self.subject_statistics(X, Y, g, subject=s, **opts))
        return out

    # ------------------------------------------------------------------ solves
    def _device_chunks(self, stats):
        """Chunk products of one subject on the device, shape (C, a, a)."""
        if isinstance(stats, DeviceStats) and stats.mats.device == self.device:
            return stats.mats
        if isinstance(stats, DeviceStats):
            return stats.mats.to(self.device)
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

    def _batches(self, chunks_stats):
        """Subjects with the same number of columns, in batches of at most ``batch_size``."""
        by_q: dict = {}
        for s, chunk_stats in enumerate(chunks_stats):
            by_q.setdefault(
                chunk_stats.q
                if isinstance(chunk_stats, DeviceStats)
                else chunk_stats[0].xx.shape[0],
                [],
            ).append(s)
        out = []
        for q, members in by_q.items():
            step = self.batch_size or len(members)
            out += [(q, members[i : i + step]) for i in range(0, len(members), step)]
        return out

    def _y_scale(self, train, weights, p):
        """Pooled behaviour scale from the ``(p + 1)``-square corners (one small transfer)."""
        corners = self._torch.stack([tr[-1 - p :, -1 - p :] for tr in train]).cpu().numpy()
        light = [
            solver.SufficientStats(float(c[-1, -1]), None, c[:-1, -1], None, None, c[:-1, :-1])
            for c in corners
        ]
        return solver.pooled_y_scale(light, weights)

    def _solve_batches(self, train, batches, weights, alphas_t, ysc_t, p):
        """Standardise and solve every batch; pooled ``M`` per alpha and ``C`` on the host."""
        torch = self._torch
        dev = self.device
        C = torch.zeros((p, p), dtype=torch.float64, device=dev)
        Ms = torch.zeros((alphas_t.numel(), p, p), dtype=torch.float64, device=dev)
        solved = []  # per batch: (q, members, std, P (n_alpha, b, q, p))
        for q, members in batches:
            T_ = torch.stack([train[s] for s in members])
            std = _standardize(torch, T_, q, p, ysc_t)
            del T_
            w = torch.as_tensor(weights[members], device=dev) / std["n"]
            P = _ridge_batch(
                torch, std.pop("gram"), std["n"], alphas_t, std["cross"], blocked=self._blocked(q)
            )
            Ms += torch.einsum("b,bqi,abqj->aij", w, std["cross"], P)
            C += torch.einsum("b,bij->ij", w, std["yy"])
            solved.append((q, members, std, P))
        return Ms.cpu().numpy(), C.cpu().numpy(), solved

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
        keep_solutions=False,
    ):
        """As :func:`solver.cv_errors`, with batched Cholesky solves on the device.

        The device solves are not kept (``keep_solutions`` is accepted and ignored): the
        private components factorise their folds again.
        """
        torch = self._torch
        dev = self.device
        n_folds = chunks[0].n_folds
        S = len(chunks)
        alphas = np.asarray(alphas, dtype=float)
        n_alpha = alphas.size
        p = _n_behavior(chunks_stats[0])
        sse = np.zeros((n_folds, n_alpha, S, k_max))
        sst = np.zeros_like(sse)
        sst_b = np.zeros((n_folds, S))
        n_test = np.zeros((n_folds, S))
        weights = np.asarray(weights, dtype=float)
        dev_chunks = [self._device_chunks(chunk_stats) for chunk_stats in chunks_stats]
        totals = [c.sum(0) for c in dev_chunks]
        batches = self._batches(chunks_stats)
        alphas_t = torch.as_tensor(alphas, device=dev)
        for f in range(n_folds):
            train, test, has_test = [], [], np.zeros(S, bool)
            for s in range(S):
                ch = chunks[s]
                out = torch.as_tensor(~ch.train_mask(f), device=dev)
                train.append(totals[s] - dev_chunks[s][out].sum(0))
                te_mask = ch.test_mask(f)
                has_test[s] = bool(te_mask.any())
                test.append(dev_chunks[s][torch.as_tensor(te_mask, device=dev)].sum(0))
            ysc = (
                self._y_scale(train, weights, p) if y_scale is None else np.asarray(y_scale, float)
            )
            ysc_t = torch.as_tensor(ysc, device=dev)
            Ms, C, solved = self._solve_batches(train, batches, weights, alphas_t, ysc_t, p)
            del train
            Cm = solver.behavior_metric(C, metric, shrinkage)
            if axes is None:
                Vs = solver.solve_axes_many(Ms, Cm, k_max)[0]
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

    def final_fit(self, chunks_stats, weights, alpha, k, metric, shrinkage) -> solver.Fit:
        """:func:`solver.fit_from_stats` on the device: one batched solve for all subjects.

        Only ``p``- and ``q x p``-sized results come back to the host; the standardised
        Gram matrices stay on the device (``Fit.standardized[s].gram`` is None).
        """
        torch = self._torch
        dev = self.device
        weights = np.asarray(weights, dtype=float)
        p = _n_behavior(chunks_stats[0])
        totals = [self._device_chunks(chunk_stats).sum(0) for chunk_stats in chunks_stats]
        ysc = self._y_scale(totals, weights, p)
        ysc_t = torch.as_tensor(ysc, device=dev)
        alpha_t = torch.as_tensor([float(alpha)], device=dev)
        M, C, solved = self._solve_batches(
            totals, self._batches(chunks_stats), weights, alpha_t, ysc_t, p
        )
        V, rho, explained, Cm = solver.shared_axes(M[0], C, k, metric, shrinkage)
        V_t = torch.as_tensor(V, device=dev)
        encoders, stds = [None] * len(totals), [None] * len(totals)
        for _q, members, std, P in solved:
            host = {key: val.cpu().numpy() for key, val in std.items()}
            enc = (P[0] @ V_t).cpu().numpy()
            for i, s in enumerate(members):
                encoders[s] = enc[i]
                stds[s] = solver.Standardized(
                    float(host["n"][i]),
                    host["x_mean"][i],
                    host["x_scale"][i],
                    host["constant"][i],
                    host["y_mean"][i],
                    None,
                    host["cross"][i],
                    host["yy"][i],
                )
        return solver.Fit(V, rho, explained, encoders, stds, ysc, C, Cm)


def _n_behavior(stats) -> int:
    return stats.p if isinstance(stats, DeviceStats) else stats[0].sy.shape[0]


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
    mean_square = torch.abs(torch.diagonal(xx, dim1=1, dim2=2)) / n[:, None]
    constant = var <= solver._CONSTANT_TOL * mean_square  # as solver.column_scales
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


def _ridge_batch(torch, G, n, alphas, B, blocked=False):
    """``(G_b + a n_b I)^{-1} B_b`` for every alpha: shape (n_alpha, b, q, m).

    One Cholesky factorisation per alpha for the whole batch (:func:`_cholesky_blocked`
    and :func:`_cholesky_solve_blocked` when ``blocked``, else torch's own). A matrix
    whose factorisation fails (never expected: it is ``>= a n I``) is solved through an
    eigendecomposition instead, for that subject only.
    """
    b, q, _ = G.shape
    out = []
    eig = None
    for a in alphas:
        reg = G.clone()
        reg.diagonal(dim1=1, dim2=2).add_((a * n)[:, None])
        if blocked:
            L, info = _cholesky_blocked(torch, reg, inplace=True)
            P = _cholesky_solve_blocked(torch, L, B)
        else:
            L, info = torch.linalg.cholesky_ex(reg)
            del reg
            P = torch.cholesky_solve(B, L)
        del L
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


def _cholesky_blocked(torch, A, panel=None, inplace=False):
    """Lower Cholesky factors of a batch ``A`` (b, q, q): ``(L, info)`` as ``cholesky_ex``.

    Right-looking blocked algorithm: for each panel of ``panel`` columns, the diagonal
    block is factorised by the library (small, batched), the sub-diagonal block by a
    triangular solve, and the trailing lower triangle is updated by batched matrix
    products, one per column block (``q^3 / 3`` flops in all, almost all in GEMMs,
    which run near the device's fp64 peak, where a library factorisation of large
    matrices is latency-bound). ``info[i] > 0`` marks a matrix that is not positive
    definite (its factor is then garbage). ``inplace``: overwrite ``A`` with ``L``.
    """
    panel = panel or _PANEL
    b, q, _ = A.shape
    L = A if inplace else A.clone()
    info = torch.zeros(b, dtype=torch.int32, device=A.device)
    for k in range(0, q, panel):
        e = min(k + panel, q)
        Lkk, inf = torch.linalg.cholesky_ex(L[:, k:e, k:e])
        info = torch.where((info == 0) & (inf > 0), inf + k, info)
        L[:, k:e, k:e] = Lkk
        if e == q:
            break
        # L21 Lkk' = A21
        L21 = torch.linalg.solve_triangular(Lkk.mT, L[:, e:, k:e], upper=True, left=False)
        L[:, e:, k:e] = L21
        for j in range(e, q, panel):  # trailing lower triangle, one column block at a time
            f = min(j + panel, q)
            L[:, j:, j:f].baddbmm_(L21[:, j - e :], L21[:, j - e : f - e].mT, alpha=-1.0)
    return L.tril_(), info


def _cholesky_solve_blocked(torch, L, B, panel=None):
    """``(L L')^{-1} B`` by blocked forward and back substitution (b, q, m)."""
    panel = panel or _PANEL
    q = L.shape[1]
    X = B.clone()
    starts = list(range(0, q, panel))
    for k in starts:  # L Y = B
        e = min(k + panel, q)
        X[:, k:e] = torch.linalg.solve_triangular(L[:, k:e, k:e], X[:, k:e], upper=False)
        if e < q:
            X[:, e:].baddbmm_(L[:, e:, k:e], X[:, k:e], alpha=-1.0)
    for k in reversed(starts):  # L' X = Y
        e = min(k + panel, q)
        X[:, k:e] = torch.linalg.solve_triangular(L[:, k:e, k:e].mT, X[:, k:e], upper=True)
        if k > 0:
            X[:, :k].baddbmm_(L[:, k:e, :k].mT, X[:, k:e], alpha=-1.0)
    return X


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


def _check_range(ZZ, X, Y, rows, lags, x_center, y_center, dtype, subject) -> None:
    """Refuse data whose reduced-precision products overflowed or underflowed.

    ``ZZ`` (C, a, a): the chunks' augmented products (float64 sums). When a sum of
    squares is not finite, or below the smallest normal number per row, the data are
    checked exactly by :func:`data_pass.check_precision_range` if ``X`` is on the host;
    for a device tensor (``X`` None) only an overflow is refused, since a constant unit
    also has zero squares.
    """
    total = ZZ.sum(0)
    n = max(float(total[-1, -1]), 1.0)
    squares = total.diagonal()[:-1].cpu().numpy()
    overflow = not np.all(np.isfinite(squares))
    if X is not None and (overflow or np.any(squares / n < np.finfo(dtype).tiny)):
        data_pass.check_precision_range(
            X, Y, rows, lags, x_center, y_center, dtype=dtype, subject=subject
        )
    elif overflow:
        raise ValueError(
            f"subject {subject}: dtype={np.dtype(dtype).name!r} cannot represent this data's "
            "products (they overflow); use dtype='float64' or rescale the data (e.g. to unit "
            "variance)"
        )
