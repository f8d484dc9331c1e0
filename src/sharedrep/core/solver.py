"""Sufficient statistics, fold arithmetic and the pooled generalized eigenproblem.

Everything the ShaReD fit needs from subject ``s`` is contained in the sufficient
statistics of its lag-embedded design :math:`\\tilde X_s` (``n x q``) and behaviour
:math:`Y_s` (``n x p``):

.. math::

    n,\\quad \\sum_t \\tilde x_t,\\quad \\sum_t y_t,\\quad \\tilde X'\\tilde X,\\quad
    \\tilde X' Y,\\quad Y'Y .

They add over disjoint sets of rows, so the statistics of a cross-validation training set
are the total minus the held-out (and gap) chunks. From them the standardised matrices
follow exactly: with training means :math:`m, m_y`, unit scales
:math:`d_j = \\sqrt{C_{xx,jj} / n}` and the pooled behaviour scale :math:`\\sigma`,

.. math::

    G = D^{-1} C_{xx} D^{-1},\\quad B = D^{-1} C_{xy} \\Sigma^{-1},\\quad
    S_{yy} = \\Sigma^{-1} C_{yy} \\Sigma^{-1},

where :math:`C` are centred cross-products. One orthogonal tridiagonal reduction
:math:`G = Q T Q'` gives :math:`(G + a n I)^{-1} B = Q (T + a n I)^{-1} Q' B` for every
ridge parameter ``a`` at the cost of a tridiagonal solve (for wide ``G`` a reduction to a
band of 32 subdiagonals, solved per ``a`` by banded Cholesky); for one to three alphas a
Cholesky factorisation per alpha is cheaper (:func:`ridge_path` picks). Either way the
data are read once; every fold costs only ``q x q`` algebra.

The shared axes solve :math:`M(a) v = \\rho\\, C_m v` with
:math:`M(a) = \\sum_s \\frac{w_s}{n_s} B_s' (G_s + a n_s I)^{-1} B_s` and
:math:`C = \\sum_s \\frac{w_s}{n_s} S_{yy,s}`; :math:`C_m` is :math:`C` shrunk towards
:math:`\\mathrm{tr}(C)/p\\, I` (``"correlation"``) or the identity (``"variance"``).

This module is pure numerics: it never imports I/O, plotting or the estimator.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from sharedrep.core import _lapack, neural_cache
from sharedrep.core.cv import Chunks, make_chunks
from sharedrep.core.design import lag_embed, run_bounds, valid_rows
from sharedrep.core.lagged_gram import lag_plan, lagged_statistics, structured_pays
from sharedrep.utils.parallel import small_blas, thread_map

# the entry points of the fit (estimator, data pass, backends); the building blocks below
# (ridge paths, fold classes, scaling rules) are shared with :mod:`sharedrep.core.dual` and
# the torch backend by module attribute, not exported
__all__ = [
    "SufficientStats",
    "SubjectData",
    "Standardized",
    "plan_subject",
    "chunk_statistics",
    "check_folds",
    "is_kernel",
    "fit_from_stats",
    "cv_errors",
    "cv_criterion",
    "pooled_criterion",
]

_CONSTANT_TOL = 1e-10


@dataclass
class SufficientStats:
    """Additive sufficient statistics of one subject over a set of rows.

    Attributes
    ----------
    n : float
        Number of rows.
    sx : ndarray (q,)
        Column sums of the (preconditioned) lag-embedded neural design.
    sy : ndarray (p,)
        Column sums of the (preconditioned) behaviour.
    xx : ndarray (q, q)
    xy : ndarray (q, p)
    yy : ndarray (p, p)
        Uncentred cross-products.
    """

    n: float
    sx: np.ndarray
    sy: np.ndarray
    xx: np.ndarray
    xy: np.ndarray
    yy: np.ndarray

    def __add__(self, other: SufficientStats) -> SufficientStats:
        return SufficientStats(
            self.n + other.n,
            self.sx + other.sx,
            self.sy + other.sy,
            self.xx + other.xx,
            self.xy + other.xy,
            self.yy + other.yy,
        )

    def __sub__(self, other: SufficientStats) -> SufficientStats:
        return SufficientStats(
            self.n - other.n,
            self.sx - other.sx,
            self.sy - other.sy,
            self.xx - other.xx,
            self.xy - other.xy,
            self.yy - other.yy,
        )

    @classmethod
    def from_arrays(cls, X: np.ndarray, Y: np.ndarray) -> SufficientStats:
        """Statistics of the rows of ``X`` (n x q) and ``Y`` (n x p)."""
        return cls(
            float(X.shape[0]),
            X.sum(axis=0),
            Y.sum(axis=0),
            X.T @ X,
            X.T @ Y,
            Y.T @ Y,
        )

    def transform_behavior(self, T: np.ndarray) -> SufficientStats:
        """Statistics of ``Y @ T`` instead of ``Y`` (``T`` is p x p')."""
        return SufficientStats(
            self.n, self.sx, self.sy @ T, self.xx, self.xy @ T, T.T @ self.yy @ T
        )


_F32_BLOCK = 4096
# bytes of rows gathered per product in the statistics pass: blocks of ~1000 rows and
# more keep the summing of the block products (a q x q addition each) small against the
# products; measured 25% faster than 1 MiB blocks at q = 300 with two threads
_GATHER_BYTES = 2**22
_CENTER_ROWS = 1024  # rows sampled for the preconditioning centre (their median)


def _gram(Z: np.ndarray) -> np.ndarray:
    """``Z' Z`` in float64; a float32 ``Z`` is multiplied in row blocks summed in float64."""
    if Z.dtype == np.float64:
        return Z.T @ Z
    out = np.zeros((Z.shape[1], Z.shape[1]))
    for a in range(0, Z.shape[0], _F32_BLOCK):
        Zb = Z[a : a + _F32_BLOCK]
        out += Zb.T @ Zb
    return out


def augmented_stats(Z: np.ndarray, q: int, p: int, gram=None) -> SufficientStats:
    """Statistics from the augmented rows ``Z = [X, Y, 1]`` (n x (q + p + 1)).

    One symmetric product ``Z' Z`` (a BLAS ``syrk``) yields every cross-product, the
    column sums and the count in a single pass over the data.
    """
    ZZ = _gram(Z) if gram is None else np.asarray(gram(Z), dtype=np.float64)
    xs, ys = slice(0, q), slice(q, q + p)
    return SufficientStats(
        float(ZZ[-1, -1]),
        ZZ[xs, -1].copy(),
        ZZ[ys, -1].copy(),
        ZZ[xs, xs].copy(),
        ZZ[xs, ys].copy(),
        ZZ[ys, ys].copy(),
    )


def total(stats: list[SufficientStats]) -> SufficientStats:
    """Sum of a non-empty list of statistics (the first one itself when it is alone)."""
    return _accumulated(stats[0], stats[1:], np.add)


def _accumulated(first: SufficientStats, others, op) -> SufficientStats:
    """``first`` combined with each of ``others`` in turn by ``op`` (``np.add`` or
    ``np.subtract``), in one new set of arrays: the numbers of ``first + a + b + ...``
    without a ``q x q`` temporary per term."""
    if not len(others):
        return first
    fields = ("sx", "sy", "xx", "xy", "yy")
    skip = [getattr(first, f) is None for f in fields]  # e.g. xx formed elsewhere
    out = [
        None if no else op(getattr(first, f), getattr(others[0], f), dtype=np.float64)
        for f, no in zip(fields, skip, strict=True)
    ]
    n = op(first.n, others[0].n)
    for o in others[1:]:
        n = op(n, o.n)
        for a, f in zip(out, fields, strict=True):
            if a is not None:
                op(a, getattr(o, f), out=a)
    return SufficientStats(float(n), *out)


class Difference:
    """``first - others[0] - others[1] - ...`` of ``q x q`` matrices, never stored whole.

    A fold's training cross-products are the subject's total minus its held-out and gap
    chunks; :func:`standardize` reads them once, a block of rows at a time, so they
    are formed there (the same numbers as subtracting whole matrices in turn) and the
    fold needs no ``q x q`` array of its own. ``np.asarray`` forms the whole matrix.
    """

    def __init__(self, first: np.ndarray, others: list):
        self.first, self.others = first, list(others)
        self.shape = first.shape

    def diagonal(self) -> np.ndarray:
        d = np.array(np.diagonal(self.first), dtype=np.float64)
        for o in self.others:
            d -= np.diagonal(o)
        return d

    def rows(self, rows: slice, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``rows`` of the difference (into ``out``, shape (n_rows, q), when given)."""
        out = np.subtract(self.first[rows], self.others[0][rows], out=out, dtype=np.float64)
        for o in self.others[1:]:
            out -= o[rows]
        return out

    def __array__(self, dtype=None, copy=None):
        out = self.rows(slice(None))
        return out if dtype is None else out.astype(dtype, copy=False)


def _diagonal(xx) -> np.ndarray:
    return xx.diagonal() if isinstance(xx, Difference) else np.diag(xx)


def _columns_into(xx, cols: slice, out: np.ndarray) -> None:
    """``out[...] = xx[:, cols]`` for symmetric ``xx``, read as the transpose of its rows
    ``cols`` (contiguous in C order, where columns are strided)."""
    if isinstance(xx, Difference):
        xx.rows(cols, out=out.T)
    else:
        out[...] = xx[cols, :].T


@dataclass
class SubjectData:
    """One subject's data reduced to cross-validation chunk statistics.

    Attributes
    ----------
    rows : ndarray of int (T',)
        Kept samples (complete, finite lag windows).
    chunks : :class:`sharedrep.core.cv.Chunks`
        Cross-validation role of the kept rows.
    stats : list of SufficientStats
        Statistics of each chunk, on preconditioned data (a sequence that behaves so:
        :class:`sharedrep.core.backends.torch.DeviceStats` keeps them on a GPU), or a
        :class:`sharedrep.core.dual.KernelData` for a subject in the kernel form.
    x_center : ndarray (q,)
        Preconditioning centre of each lagged neural column (raw units).
    y_center : ndarray (p,)
        Preconditioning centre of the behaviour (raw units).
    """

    rows: np.ndarray
    chunks: Chunks
    stats: list
    x_center: np.ndarray
    y_center: np.ndarray


def _center(A: np.ndarray, finite_rows) -> np.ndarray:
    """Preconditioning centre: column medians over (at most ~1024 evenly spaced) finite rows.

    Only numerical conditioning depends on it (centring is exact algebra on the
    statistics), so a subsample is enough and spares a full pass over the data. The
    median keeps it in the bulk of the values: one huge value (e.g. in a row dropped for
    missing behaviour) would move a mean far from every kept value, and the variance of
    the column would then be lost to cancellation.
    """
    idx = np.arange(A.shape[0]) if finite_rows is None else np.flatnonzero(finite_rows)
    if idx.size == 0:
        return np.zeros(A.shape[1])
    idx = idx[:: max(1, idx.size // _CENTER_ROWS)]
    return column_medians(np.asarray(A[idx], dtype=np.float64))  # float32 data too


def column_medians(A: np.ndarray) -> np.ndarray:
    """``np.median(A, axis=0)`` of a 2-D float array, the same numbers, several times faster.

    numpy's median partitions at two positions (the middle and, to find NaNs, the end),
    which takes its slow multi-position path: about 10 ms for 1024 x 300. Here the
    columns are partitioned once, at the upper middle, in a contiguous copy; with an even
    count the lower middle is the largest value before it. A column with a NaN gives NaN.
    """
    n = A.shape[0]
    if n == 0:
        return np.median(A, axis=0)  # numpy's NaNs and warning for no rows
    half = n // 2
    part = np.array(A.T, order="C")  # a copy, partitioned in place
    part.partition(half, axis=1)
    med = part[:, half]
    if n % 2 == 0:
        med = (part[:, :half].max(axis=1) + med) / 2.0
    med[np.isnan(part).any(axis=1)] = np.nan
    return med


def check_folds(chunks: Chunks, subject) -> None:
    """Every fold needs >= 2 training and >= 1 test rows (chunk sizes from the bounds)."""
    n = np.diff(chunks.bounds).astype(float)
    for f in range(chunks.n_folds):
        n_train, n_test = n[chunks.train_mask(f)].sum(), n[chunks.test_mask(f)].sum()
        if n_train < 2 or n_test < 1:
            raise ValueError(
                f"subject {subject}: cross-validation fold {f} has {int(n_train)} training and "
                f"{int(n_test)} test samples (after lag windows and edge gaps); give more "
                "samples or trials, or fewer folds (cv)"
            )


def _missing_columns_hint(X, Y) -> str:
    """Names the neural units / behaviour features that are mostly missing (error hint)."""
    parts = []
    for name, A in (("neural units", X), ("behaviour features", Y)):
        if not isinstance(A, np.ndarray) or A.ndim != 2 or A.shape[0] == 0:
            continue
        cols = np.flatnonzero(np.mean(~np.isfinite(A), axis=0) > 0.5).tolist()
        if cols:
            more = "..." if len(cols) > 10 else ""
            parts.append(f"{name} {cols[:10]}{more}")
    if not parts:
        return ""
    return "; mostly missing (NaN/inf): " + ", ".join(parts) + " (drop them before fitting)"


def plan_subject(
    X,
    Y,
    groups,
    lags,
    n_folds,
    *,
    gap=0,
    folds_by_trial=True,
    random_state=None,
    nan_policy="raise",
    subject=None,
    x_summary=None,
):
    """Kept rows, CV chunks and preconditioning centres of one subject (no data pass).

    See :func:`sharedrep.core.data_pass.subject_statistics` for the parameters.
    ``x_summary = (finite_x, x_center)`` (finite rows of ``X`` or None, centres) may
    be computed where ``X`` lives (e.g. on a GPU); then only ``X.shape`` is used here. Returns
    ``(rows, chunks, x_center (N,), y_center (p,))``.
    """
    omit = nan_policy == "omit"
    if x_summary is not None:
        finite_x, x_center = x_summary
    else:
        finite_x = np.all(np.isfinite(X), axis=1) if omit else None
        x_center = None
    finite_y = np.all(np.isfinite(Y), axis=1) if omit else np.ones(X.shape[0], bool)
    rows = valid_rows(X.shape[0], lags, groups, finite=finite_x)
    rows = rows[finite_y[rows]]
    need = max(2 * n_folds, 2)
    if rows.size < need:
        raise ValueError(
            f"subject {subject}: only {rows.size} usable samples remain after lag embedding "
            f"(lags {lags.tolist()}, windows never cross trials or missing samples) out of "
            f"{X.shape[0]}; need at least {need}"
            + (f" for cv={n_folds} folds" if n_folds else "")
            + (_missing_columns_hint(X, Y) if omit else "")
        )
    if n_folds:
        fold_groups = groups if folds_by_trial else None
        if fold_groups is not None:
            n_trials = np.unique(np.asarray(groups)[rows]).size
            if n_trials < n_folds:
                raise ValueError(
                    f"subject {subject}: {n_trials} trials have usable samples but cv={n_folds} "
                    f"folds need at least {n_folds} trials"
                )
        chunks = make_chunks(rows, n_folds, groups=fold_groups, gap=gap, random_state=random_state)
    else:
        chunks = Chunks(
            order=np.arange(rows.size),
            bounds=np.array([0, rows.size]),
            fold=np.zeros(1, dtype=np.int64),
            exclude=np.zeros((1, 1), dtype=bool),
        )
    # numerical preconditioning only: approximate centres, exact centring is algebraic
    if x_center is None:
        x_center = _center(X, finite_x)
    y_center = _center(Y, finite_y)
    return rows, chunks, x_center, y_center


def chunk_statistics(
    X: np.ndarray,
    Y: np.ndarray,
    lags: np.ndarray,
    ordered: np.ndarray,
    bounds: np.ndarray,
    x_center: np.ndarray,
    y_center: np.ndarray,
    *,
    gram=None,
    dtype=np.float64,
) -> list[SufficientStats]:
    """Sufficient statistics of every CV chunk of one subject, in one pass (primal form).

    Parameters
    ----------
    X : ndarray (T, N)
        Neural activity (non-finite samples already replaced when they are omitted).
    Y : ndarray (T, p)
        Behaviour.
    lags : ndarray of int (n_lags,)
    ordered : ndarray of int (n,)
        Kept rows in chunk order; chunk ``c`` is ``ordered[bounds[c]:bounds[c + 1]]``.
    bounds : ndarray of int (C + 1,)
    x_center, y_center : ndarray (N,), (p,)
        Preconditioning centres (approximate; exact centring is algebraic).
    gram, dtype
        See :func:`sharedrep.core.data_pass.subject_statistics`.

    Returns
    -------
    list (C) of SufficientStats

    Notes
    -----
    With several lags and runs of consecutive rows long enough (the rule of
    :func:`sharedrep.core.lagged_gram.structured_pays`), and no ``gram`` hook, the
    statistics come from the lag structure: the distinct ``N x N`` products of shifted
    copies of ``X`` plus edge corrections (:mod:`sharedrep.core.lagged_gram`), equal to
    the direct product up to rounding. Otherwise the rows of each chunk are gathered (lag
    embedding, centring) into a buffer of about 1 MiB and multiplied there, block after
    block: the data are read once and the full embedded design is never formed.
    """
    dtype = np.dtype(dtype)
    parts = [ordered[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    if gram is None:
        plan = lag_plan(lags)
        n_runs = sum(run_bounds(rows).size - 1 for rows in parts)
        if structured_pays(plan, ordered.size, n_runs):  # centres (and rounds) per block
            found = lagged_statistics(X, Y, plan, parts, x_center, y_center, dtype=dtype)
            return [SufficientStats(*st) for st in found]
    # reduced precision: each value is centred in float64 and rounded once as it is
    # gathered (lag_embed into the dtype buffer)
    return _direct_statistics(X, Y, lags, parts, x_center, y_center, gram, dtype)


def _direct_statistics(X, Y, lags, parts, center, y_center, gram, dtype):
    """:func:`chunk_statistics` by the product of the gathered lag-embedded rows."""
    q, p = X.shape[1] * lags.size, Y.shape[1]
    a = q + p + 1
    buf = _gather_buffer(a, dtype)
    block_gram = np.empty((a, a), dtype=dtype)
    stats = []
    for rows in parts:
        ZZ = np.zeros((a, a))
        for Zb in _gathered(X, Y, lags, rows, (center, y_center), buf):
            if gram is None:  # one syrk into a preallocated buffer, summed in float64
                ZZ += np.matmul(Zb.T, Zb, out=block_gram)
            else:
                ZZ += np.asarray(gram(Zb), dtype=np.float64)
        stats.append(augmented_stats(None, q, p, gram=lambda _, ZZ=ZZ: ZZ))
    return stats


def _gather_buffer(width: int, dtype) -> np.ndarray:
    """A buffer of a few MiB for blocks of augmented rows ``[X~, Y, 1]`` (last column 1):
    the lag-embedded design is never formed in full (one read of ``X``, no large copy)."""
    rows_per_block = _GATHER_BYTES // (np.dtype(dtype).itemsize * width)
    buf = np.empty((max(64, min(_F32_BLOCK, rows_per_block)), width), dtype=dtype)
    buf[:, -1] = 1.0
    return buf


def _gathered(X, Y, lags, rows: np.ndarray, centers: tuple, buf: np.ndarray):
    """Yield ``rows`` block by block as ``[X~ - c_x, Y - c_y, 1]`` in ``buf`` (views of it,
    overwritten by the next block)."""
    q, p = X.shape[1] * lags.size, Y.shape[1]
    for start in range(0, rows.size, buf.shape[0]):
        idx = rows[start : start + buf.shape[0]]
        Zb = buf[: idx.size]
        lag_embed(X, lags, idx, center=centers[0], out=Zb[:, :q])
        np.subtract(Y[idx], centers[1], out=Zb[:, q : q + p])
        yield Zb


def behavior_statistics(X, Y, lags, parts: list, centers: tuple, neural: list):
    """:func:`chunk_statistics` whose neural part is known: only ``X'Y``, ``s_y`` and
    ``Y'Y`` are computed.

    ``parts``: the kept rows of each chunk; ``centers``: ``(x_center, y_center)``;
    ``neural``: per chunk ``(n, sx, xx)``, from a pass over the same rows of the same
    ``X`` with the same centre (:mod:`sharedrep.core.neural_cache`), used as they are.
    The rows are gathered (lag embedding, centring) block by block, as in the direct
    pass, and multiplied with the behaviour and a column of ones only:
    ``2 n (q + p + 1)(p + 1)`` flops instead of the ``n q^2`` of ``X'X``. Equal to the
    full pass's numbers to rounding (another BLAS product). Returns a list of
    :class:`SufficientStats`.
    """
    q, p = X.shape[1] * lags.size, Y.shape[1]
    buf = _gather_buffer(q + p + 1, np.float64)
    stats = []
    for rows, (n, sx, xx) in zip(parts, neural, strict=True):
        acc = np.zeros((q + p + 1, p + 1))
        for Zb in _gathered(X, Y, lags, rows, centers, buf):
            acc += Zb.T @ Zb[:, q:]
        if acc[-1, -1] != n:  # a plan that matched cannot give another count
            raise RuntimeError(f"chunk of {acc[-1, -1]:g} rows where {n:g} were kept")
        xy, yy, sy = acc[:q, :p].copy(), acc[q:-1, :p].copy(), acc[-1, :p].copy()
        stats.append(SufficientStats(n, sx, sy, xx, xy, yy))
    return stats


@dataclass
class Standardized:
    """Standardised matrices of one subject (see module docstring).

    Attributes
    ----------
    n : float
    x_mean : ndarray (q,)
        Training mean of the preconditioned design.
    x_scale : ndarray (q,)
        Training std of the preconditioned design (1 for constant columns).
    constant : ndarray of bool (q,)
        Columns that are constant in these rows; they get zero weight.
    y_mean : ndarray (p,)
    gram : ndarray (q, q) or None
        ``G``: centred, scaled Gram matrix (diagonal ``n``; zero rows for constant columns).
        None when the fit ran on a device (torch backend) and ``G`` was left there;
        :func:`standardize` of the total statistics recomputes it.
    cross : ndarray (q, p)
        ``B``: centred cross-products of standardised design and scaled behaviour.
    yy : ndarray (p, p)
        Centred cross-products of the scaled behaviour.
    """

    n: float
    x_mean: np.ndarray
    x_scale: np.ndarray
    constant: np.ndarray
    y_mean: np.ndarray
    gram: np.ndarray
    cross: np.ndarray
    yy: np.ndarray


def _centered_y(st: SufficientStats) -> tuple[np.ndarray, np.ndarray]:
    my = st.sy / st.n
    return my, st.yy - st.n * np.outer(my, my)


def pooled_y_scale(stats: list[SufficientStats], weights: np.ndarray) -> np.ndarray:
    """Pooled within-subject behaviour std, shape (p,).

    ``sigma_j^2 = sum_s w_s var_s(y_j)`` with per-subject centring; features that are
    constant in every subject (see :func:`column_scales`, with the pooled mean squares)
    get scale 1.
    """
    var = np.zeros(stats[0].sy.shape[0])
    mean_square = np.zeros_like(var)
    for w, st in zip(weights, stats, strict=True):
        _, cyy = _centered_y(st)
        var += w * np.clip(np.diag(cyy), 0.0, None) / st.n
        mean_square += w * np.abs(np.diag(st.yy)) / st.n
    return column_scales(var, mean_square)[1]


def column_scales(var: np.ndarray, mean_square: np.ndarray):
    """Constant columns and column scales from variances and mean squares (q,).

    A column is constant when its variance is at most ``1e-10`` times its own mean
    square (the statistics are of preconditioned values, i.e. about an approximate
    centre; a column of zeros is constant): it varies by less than about ``1e-5`` of its
    root mean square, which is rounding level once squared. The criterion does not
    depend on the column's unit of measurement (activity in volts is not mistaken for a
    constant). Its scale is then 1 (its weight is zeroed by the callers).
    """
    constant = var <= _CONSTANT_TOL * mean_square
    return constant, np.sqrt(np.where(constant, 1.0, var))


_COLUMNS = 32  # columns of the q x q matrix formed at once by standardize (in cache)


def standardize(st: SufficientStats, y_scale: np.ndarray, *, gram: bool = True) -> Standardized:
    """Centre and scale the statistics of one subject (exact algebra, no data pass).

    ``G = D^-1 (X'X - n m m') D^-1`` is formed as ``X'X * (d d') - n u u'`` with
    ``d = 1 / scale`` (0 for constant columns) and ``u = d m``, a block of columns at a
    time into one Fortran-ordered ``q x q`` array (the layout LAPACK reduces in place);
    exactly symmetric when ``X'X`` is (the solvers read its lower triangle). A block of
    columns of the symmetric ``X'X`` is read as the transpose of its rows, which are
    contiguous, straight into ``G``, and each block is scaled in place (measured at
    ``q = 1600``: 36 ms -> 28 ms -> 18 ms per fold). ``gram=False`` leaves ``G`` out
    (``gram`` None), for a fold whose reduction of ``G`` is known already.
    """
    n = st.n
    mx = st.sx / n
    my, cyy = _centered_y(st)
    xx_diag = _diagonal(st.xx)
    constant, scale = column_scales(xx_diag / n - mx**2, np.abs(xx_diag) / n)
    inv = np.where(constant, 0.0, 1.0 / scale)
    G = _standardized_gram(st.xx, inv, inv * mx, n) if gram else None
    cxy = st.xy - n * np.outer(mx, my)
    cross = cxy / scale[:, None] / y_scale[None, :]
    cross[constant, :] = 0.0
    yy = cyy / np.outer(y_scale, y_scale)
    return Standardized(n, mx, scale, constant, my, G, cross, 0.5 * (yy + yy.T))


def _standardized_gram(xx, inv: np.ndarray, u: np.ndarray, n: float) -> np.ndarray:
    """``X'X * (d d') - n u u'`` (:func:`standardize`), Fortran-ordered."""
    gram = np.empty((inv.size, inv.size), order="F")  # LAPACK's order: reduced in place
    work = np.empty((inv.size, _COLUMNS))
    for a in range(0, inv.size, _COLUMNS):  # column blocks: no q x q temporary
        cols = slice(a, a + _COLUMNS)
        block = gram[:, cols]
        outer = work[:, : block.shape[1]]
        _columns_into(xx, cols, block)
        block *= np.multiply(inv[:, None], inv[None, cols], out=outer)
        np.multiply(u[:, None], u[None, cols], out=outer)
        outer *= n
        block -= outer
    return gram


def behavior_metric(C: np.ndarray, metric: str, shrinkage: float) -> np.ndarray:
    """The metric ``C_m`` of the generalized eigenproblem, shape (p, p)."""
    p = C.shape[0]
    if metric == "variance":
        return np.eye(p)
    if metric == "correlation":
        return (1.0 - shrinkage) * C + shrinkage * np.trace(C) / p * np.eye(p)
    raise ValueError(f"behavior_metric must be 'correlation' or 'variance'; got {metric!r}")


def solve_axes(M: np.ndarray, Cm: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` generalized eigenvectors of ``M v = rho Cm v``, normalised ``V' Cm V = I``.

    The sign of each axis is fixed so that its largest-magnitude loading is positive.
    One problem of :func:`solve_axes_many`.

    Returns
    -------
    V : ndarray (p, k)
    rho : ndarray (k,)
        Eigenvalues in decreasing order.
    """
    V, rho = solve_axes_many(np.asarray(M)[None], Cm, k)
    return V[0], rho[0]


def solve_axes_many(Ms: np.ndarray, Cm: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`solve_axes` for a stack of matrices ``Ms`` (n, p, p) with one metric ``Cm``,
    or with each metric of a stack ``Cm`` (m, p, p).

    The generalized problem is reduced to standard form with the Cholesky factor
    ``Cm = L L'`` (``A = L^-1 M L^-T``, ``V = L^-T W``; LAPACK ``sygvd``'s method), and
    every problem (``n``, or ``m n``) is solved by numpy's stacked ``eigh`` in one call, so
    that a grid of alphas (and of metric shrinkages) costs no Python overhead per alpha.
    Each problem is solved exactly as it would be alone.

    Returns
    -------
    V : ndarray (n, p, k), or (m, n, p, k) for a stack of metrics
    rho : ndarray (n, k), or (m, n, k)
        Eigenvalues in decreasing order.
    """
    Ms = np.asarray(Ms, dtype=np.float64)
    Cms = np.asarray(Cm, dtype=np.float64)
    n, p = Ms.shape[0], Ms.shape[-1]
    Ms = 0.5 * (Ms + np.swapaxes(Ms, -1, -2))
    factors = [_metric_factor(C) for C in (Cms[None] if Cms.ndim == 2 else Cms)]
    standard = np.concatenate([Ms if L is None else _standard_form(L, Ms) for L in factors])
    rho, W = np.linalg.eigh(standard)  # stacked gufunc, GIL released
    rho, W = rho[:, p - k :][:, ::-1], W[:, :, p - k :][:, :, ::-1]
    V = np.concatenate(
        [
            W[i * n : (i + 1) * n]
            if L is None
            else _stacked_triangular(L, W[i * n : (i + 1) * n], "T")
            for i, L in enumerate(factors)
        ]
    )
    idx = np.argmax(np.abs(V), axis=1)  # (m n, k): largest loading of each axis
    V = V * np.sign(np.take_along_axis(V, idx[:, None, :], axis=1))
    if Cms.ndim == 2:
        return V, rho
    return V.reshape(len(factors), n, p, k), rho.reshape(len(factors), n, k)


def _metric_factor(Cm: np.ndarray) -> np.ndarray | None:
    """Cholesky factor ``L`` of the metric (None for the identity), or the ValueError of a
    singular metric."""
    if np.array_equal(Cm, np.eye(Cm.shape[0])):
        return None
    try:
        return np.linalg.cholesky(Cm)
    except np.linalg.LinAlgError:  # Cm not positive definite
        raise ValueError(
            "the behaviour metric (pooled behaviour covariance) is singular: a behaviour "
            "feature is constant or a linear combination of others. Give shrinkage > 0 "
            "(e.g. the default), behavior_metric='variance', or drop that feature"
        ) from None


def _standard_form(L: np.ndarray, Ms: np.ndarray) -> np.ndarray:
    """``L^-1 M L^-T`` (symmetrised) of every ``M`` of the stack ``Ms`` (n, p, p)."""
    half = _stacked_triangular(L, Ms)  # L^-1 M
    A = _stacked_triangular(L, np.swapaxes(half, -1, -2))  # L^-1 M L^-T
    return 0.5 * (A + np.swapaxes(A, -1, -2))


def _stacked_triangular(L: np.ndarray, B: np.ndarray, trans: str = "N") -> np.ndarray:
    """``L^-1 B_i`` (or ``L^-T B_i``) for every ``B_i`` of a stack (n, p, m): one triangular
    solve with the stack side by side as ``n m`` right-hand sides (BLAS ``trsm``, what
    :func:`scipy.linalg.solve_triangular` runs, without its per-call checks: ``L`` is a
    Cholesky factor, non-singular)."""
    n, p, m = B.shape
    flat = np.swapaxes(B, 0, 1).reshape(p, n * m)
    X = sla.blas.dtrsm(1.0, L, flat, lower=1, trans_a=int(trans == "T"))
    return np.swapaxes(X.reshape(p, n, m), 0, 1)


def top_eigh(A: np.ndarray, m: int, minus: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Leading ``m`` eigenpairs of a symmetric PSD matrix, in decreasing order.

    Dense LAPACK ``syevr`` for small matrices (:func:`sharedrep.core._lapack.syevr_top`, GIL
    released); Lanczos (ARPACK, deterministic start vector) when only a few of many
    eigenpairs are wanted.

    ``minus = (L, R)``, both (q, r) with ``L R'`` symmetric, asks for the eigenpairs of
    ``A - L R'`` instead: Lanczos then applies ``v -> A v - L (R' v)`` and never forms
    the difference (no ``q x q`` temporary).
    """
    q = A.shape[0]
    if q <= 400 or m >= q // 4:  # dense is faster up to ~400 columns (measured)
        if minus is not None:
            A = A - minus[0] @ minus[1].T
            A = 0.5 * (A + A.T)
        lam, U = _lapack.syevr_top(A, m)
    else:
        from scipy.sparse.linalg import LinearOperator, eigsh

        op = A
        if minus is not None:
            L, R = minus

            def product(v):  # v (q,) or (q, k)
                return A @ v - L @ (R.T @ v)

            op = LinearOperator((q, q), matvec=product, matmat=product, dtype=A.dtype)
        lam, U = eigsh(op, k=m, which="LA", v0=np.ones(q) / np.sqrt(q))
        idx = np.argsort(lam)
        lam, U = lam[idx], U[:, idx]
    return np.clip(lam[::-1], 0.0, None), U[:, ::-1]


def low_rank_quotient(G: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(L, R)`` with ``L R' = G C^+ G'`` for symmetric ``C`` (r, r) and ``G`` (q, r).

    ``C^+`` is the pseudo-inverse of :func:`numpy.linalg.pinv` (``hermitian=True``):
    eigenvalues of magnitude at most ``1e-15`` times the largest are dropped.
    """
    lam, U = np.linalg.eigh(0.5 * (C + C.T))
    keep = np.abs(lam) > 1e-15 * np.max(np.abs(lam), initial=0.0)
    R = G @ (U[:, keep] / np.sqrt(np.abs(lam[keep])))
    return R * np.sign(lam[keep]), R


def ridge_eig(gram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigendecomposition ``G = Q diag(lam) Q'`` (eigenvalues clipped at 0)."""
    lam, Q = sla.eigh(gram, driver="evr", check_finite=False)
    return np.clip(lam, 0.0, None), Q


_REDUCTION_MIN_ALPHAS = 4


def ridge_path(
    gram: np.ndarray, n: float, alphas: np.ndarray, rhs: np.ndarray, *, overwrite: bool = False
) -> np.ndarray:
    """``(G + a n I)^{-1} rhs`` for every alpha, shape (n_alphas, q, m).

    A Cholesky factorisation costs ``q^3 / 3`` flops per alpha. From 4 alphas on, one
    orthogonal tridiagonal reduction ``G = Q T Q'`` (LAPACK ``sytrd``, ``4 q^3 / 3``
    flops) is shared by the whole grid instead: each alpha is then a tridiagonal solve
    ``(T + a n I) x = Q' rhs`` (``O(q m)``) and one application of ``Q`` for all alphas
    together (LAPACK ``ormtr``). Both are backward stable; they agree to rounding.
    Measured on one core (10 alphas): about 2.5x faster than a Cholesky per alpha at
    ``q = 300`` and ``q = 1000``, and faster than an eigendecomposition shared by the grid.
    From ``q = 800`` on, ``G`` is reduced to a band of 32 subdiagonals instead
    (``G = Q B Q'``, LAPACK ``sytrd_sy2sb``, all level-3 BLAS) and each alpha is a banded
    Cholesky solve (``O(q kd^2)``): 0.78x the tridiagonal route's time at ``q = 800`` and
    0.51x at ``q = 1600`` on one core (``benchmarks/bench_reductions.py``,
    docs/benchmarks.md section 1).

    With ``overwrite`` the reduction runs in the memory of ``gram`` (destroyed; no
    ``q x q`` copy): for fold problems whose Gram matrix is not needed afterwards.
    """
    alphas = np.atleast_1d(np.asarray(alphas, dtype=float))
    if alphas.size < _REDUCTION_MIN_ALPHAS or gram.shape[0] < 3:
        return _ridge_cholesky(gram, n, alphas, rhs)
    return _ridge_reduced(gram, n, alphas, rhs, overwrite)


def _ridge_reduced(gram, n: float, alphas: np.ndarray, rhs: np.ndarray, overwrite: bool):
    """:func:`ridge_path` through ``G = Q M Q'``, ``M`` tridiagonal or, for wide ``G``,
    banded (:func:`sharedrep.core._lapack.reduce_symmetric`).

    LAPACK runs without the GIL, so subjects solved on parallel threads overlap.
    """
    red = _lapack.reduce_symmetric(gram, overwrite=overwrite)
    if red.info != 0:  # never expected for a finite symmetric matrix
        if overwrite:  # gram is gone
            raise np.linalg.LinAlgError(f"LAPACK symmetric reduction failed (info = {red.info})")
        return _ridge_cholesky(gram, n, alphas, rhs)
    return _reduced_path(red, n, alphas, rhs)


def _reduced_path(red, n: float, alphas: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """:func:`ridge_path` from a reduction ``G = Q M Q'`` (read only)."""
    q, m = rhs.shape
    R = red.apply_q(rhs, transpose=True)
    X = np.empty((q, alphas.size * m), order="F")
    for i, a in enumerate(alphas):
        X[:, i * m : (i + 1) * m] = red.solve(a * n, R)
    X = red.apply_q(X)
    return np.ascontiguousarray(X.reshape(q, alphas.size, m).transpose(1, 0, 2))


def fold_path(train: SufficientStats, y_scale: np.ndarray, alphas: np.ndarray):
    """Standardise a fold's training statistics and solve every alpha.

    Returns ``(std, P)``: :func:`standardize` without ``G`` (``std.gram`` None; it is
    reduced in its own memory) and ``P`` (n_alphas, q, p) of :func:`ridge_path`. Within
    :func:`sharedrep.core.neural_cache.reuse_neural_side` what is computed of ``G``
    alone is kept under a digest of the neural statistics it comes from (``n``,
    ``s_x``, ``X'X``) and taken by every later fold with the same ones, which then
    computes only the behaviour side: the reduction ``G = Q M Q'`` (bit for bit the
    numbers of computing it again), or, when the block expects many reuses
    (:func:`sharedrep.core.neural_cache.eigen_pays`), the eigendecomposition of ``G``
    (a later fold's path is then two matrix products, equal to rounding).
    """
    alphas = np.atleast_1d(np.asarray(alphas, dtype=float))
    q = train.sx.shape[0]
    reduces = alphas.size >= _REDUCTION_MIN_ALPHAS and q >= 3
    key = neural_cache.fold_key(train.n, train.sx, _xx_parts(train.xx)) if reduces else None
    kept = neural_cache.lookup(key)
    if kept is not None:
        std = standardize(train, y_scale, gram=False)
        if isinstance(kept, tuple):
            return std, _eigen_path(*kept, std.n, alphas, std.cross)
        return std, _reduced_path(kept, std.n, alphas, std.cross)
    std = standardize(train, y_scale)
    if key is None:
        P = ridge_path(std.gram, std.n, alphas, std.cross, overwrite=True)
        return _without_gram(std), P
    keep = neural_cache.wants(key, q * q * 8)
    # small folds keep an eigendecomposition (cheap): applying kept reflectors of fewer
    # than ~64 columns is LAPACK's unblocked code, which writes into them for a moment
    eigen = keep and (q <= _INLINE_Q or neural_cache.eigen_pays())
    eig = ridge_eig(std.gram) if eigen else None  # before G is reduced in place
    red = _lapack.reduce_symmetric(std.gram, overwrite=True)
    if red.info != 0:  # never expected for a finite symmetric matrix
        raise np.linalg.LinAlgError(f"LAPACK symmetric reduction failed (info = {red.info})")
    if keep:
        neural_cache.keep(key, red if eig is None else eig, q * q * 8)
    return _without_gram(std), _reduced_path(red, std.n, alphas, std.cross)


def _eigen_path(lam: np.ndarray, V: np.ndarray, n: float, alphas: np.ndarray, rhs):
    """:func:`ridge_path` from ``G = V diag(lam) V'``: ``V diag(1 / (lam + a n)) V' rhs``
    for every alpha in one product, shape (n_alphas, q, m)."""
    q, m = rhs.shape
    R = V.T @ rhs
    W = R[:, None, :] / (lam[:, None, None] + n * alphas[None, :, None])  # (q, n_a, m)
    X = V @ W.reshape(q, alphas.size * m)
    return np.ascontiguousarray(X.reshape(q, alphas.size, m).transpose(1, 0, 2))


def _xx_parts(xx) -> list:
    """The arrays whose difference is ``xx`` (:class:`Difference`), in order."""
    return [xx.first, *xx.others] if isinstance(xx, Difference) else [xx]


_STACK_BYTES = 64 * 2**20


def _ridge_cholesky(gram: np.ndarray, n: float, alphas: np.ndarray, rhs: np.ndarray):
    """``(G + a n I)^{-1} rhs`` for each alpha by Cholesky, shape (n_alphas, q, m).

    The factorisations of several alphas run as one stacked ``np.linalg.cholesky`` call
    (a gufunc that releases the GIL, so subjects solved on parallel threads run in
    parallel), in stacks of at most 64 MiB; the two triangular solves per alpha are
    BLAS ``trsm``. Any failure (never expected: the matrix is ``>= a n I``) falls back
    to :func:`_solve_ridge` for that stack.
    """
    q = gram.shape[0]
    per = max(1, _STACK_BYTES // max(8 * q * q, 1))
    rhs_f = np.asfortranarray(rhs, dtype=np.float64)
    out = np.empty((alphas.size, q, rhs.shape[1]))
    for start in range(0, alphas.size, per):
        block = alphas[start : start + per]
        regs = np.repeat(gram[None], block.size, axis=0)
        regs[:, np.arange(q), np.arange(q)] += (block * n)[:, None]
        try:
            Ls = np.linalg.cholesky(regs)
        except np.linalg.LinAlgError:
            for i, a in enumerate(block):
                out[start + i] = _solve_ridge(gram, n, a, rhs)
            continue
        for i, L in enumerate(Ls):  # L (C order) = L'^T: pass L' (Fortran) as "upper"
            Y = sla.blas.dtrsm(1.0, L.T, rhs_f, lower=0, trans_a=1)
            out[start + i] = sla.blas.dtrsm(1.0, L.T, Y, lower=0, trans_a=0)
    return out


def heldout_errors(
    std: Standardized, y_scale: np.ndarray, A: np.ndarray, V: np.ndarray, held: SufficientStats
) -> tuple[np.ndarray, np.ndarray, float]:
    """Held-out error of the latents ``z = Y V`` predicted by ``z^ = X A``.

    The held-out rows are standardised with the *training* means and scales in ``std``.
    Column ``j`` of ``A`` and ``V`` form one latent; several models (e.g. one per alpha)
    can be scored at once by stacking their columns.

    Parameters
    ----------
    std : Standardized
        Training standardisation of this subject.
    y_scale : ndarray (p,)
    A : ndarray (q, m)
        Encoders on standardised columns.
    V : ndarray (p, m)
        Axes on scaled behaviour.
    held : SufficientStats
        Statistics of the held-out rows.

    Returns
    -------
    sse : ndarray (m,)
        Sum of squared errors per latent.
    sst : ndarray (m,)
        Sum of squares of each held-out latent about its held-out mean.
    sst_behavior : float
        Total sum of squares of the scaled held-out behaviour about its mean.
    """
    At = A / std.x_scale[:, None]
    At[std.constant, :] = 0.0
    Vt = V / y_scale[:, None]
    c = std.y_mean @ Vt - std.x_mean @ At
    n = held.n
    yv = np.sum(Vt * (held.yy @ Vt), axis=0)
    xa = np.sum(At * (held.xx @ At), axis=0)
    cross = np.sum(At * (held.xy @ Vt), axis=0)
    lin = held.sy @ Vt - held.sx @ At
    sse = yv - 2.0 * cross + xa - 2.0 * c * lin + n * c**2
    _, cyy = _centered_y(held)
    sst = np.sum(Vt * (cyy @ Vt), axis=0)
    sst_behavior = float(np.sum(np.diag(cyy) / y_scale**2))
    return np.clip(sse, 0.0, None), sst, sst_behavior


def held_moments(std: Standardized, P: np.ndarray, test: SufficientStats | None, y_scale=None):
    """The ``p x p`` moments of a fold's held-out rows for every alpha of a ridge path.

    With ``Q_a = D^-1 P_a diag(y_scale)`` (``D`` the training column scales, constant
    columns zeroed) the encoders of axes ``V`` are ``Q_a V~`` on unscaled columns, with
    ``V~ = V / y_scale``; the held-out error of any axes then needs only
    ``H_a = Q_a' X'X Q_a``, ``K_a = Q_a' X'Y``, ``l_a = s_y - Q_a' s_x`` (held-out
    statistics) and ``r_a = m_y - Q_a' m_x`` (training means): one ``q x q`` by
    ``q x (n_alphas p)`` product per fold, whatever the number of axes scored.

    Parameters
    ----------
    std : Standardized
        Training standardisation of the fold.
    P : ndarray (n_alphas, q, p)
        Ridge solutions for the behaviour scaled by ``y_scale``.
    test : SufficientStats or None
        Held-out statistics.
    y_scale : ndarray (p,), optional
        Behaviour scale ``P`` was solved with (ones when omitted).

    Returns
    -------
    held : tuple (H (n_alphas, p, p), K (n_alphas, p, p), l (n_alphas, p)) or None
        None without held-out rows.
    r : ndarray (n_alphas, p)
    """
    Q = P / std.x_scale[None, :, None]
    if y_scale is not None:
        Q *= y_scale[None, None, :]
    Q[:, std.constant, :] = 0.0
    Qt = Q.transpose(0, 2, 1)  # (n_alphas, p, q)
    r = std.y_mean[None] - Qt @ std.x_mean
    if test is None:
        return None, r
    n_alpha, q, p = Q.shape
    GQ = (test.xx @ Q.transpose(1, 0, 2).reshape(q, n_alpha * p)).reshape(q, n_alpha, p)
    held = (Qt @ GQ.transpose(1, 0, 2), Qt @ test.xy, test.sy[None] - Qt @ test.sx)
    return held, r


def moment_errors(held, r: np.ndarray, test, Vs: np.ndarray, V_all: np.ndarray, y_scale):
    """Held-out ``(sse, sst, sst_behavior)`` as :func:`heldout_errors`, from the moments of
    :func:`held_moments` (``test`` needs only its behaviour part: ``n``, ``sy``, ``yy``).

    ``Vs`` (n_alphas, p, k) are the axes of each alpha, ``V_all`` (p, n_alphas * k) the
    same side by side; results are ordered as the columns of ``V_all``.
    """
    sse, sst, sst_behavior = moment_errors_stacked([held], [r], [test], Vs, V_all, y_scale)
    return sse[0], sst[0], float(sst_behavior[0])


def moment_errors_stacked(helds: list, rs: list, tests: list, Vs, V_all, y_scale):
    """:func:`moment_errors` of several subjects' folds at once (the same axes).

    Returns ``sse``, ``sst`` (S, n_alphas * k) and ``sst_behavior`` (S,), in the order of
    ``helds``; one stacked computation instead of a few small products per subject.
    """
    return stacked_errors(stack_moments(helds, rs, tests), Vs, V_all, y_scale)


def stack_moments(helds: list, rs: list, tests: list) -> tuple:
    """The moments of several subjects' folds stacked for :func:`stacked_errors` (they do
    not depend on the axes: stacked once, scored for every set of axes)."""
    H, K, lin_x = (np.stack([h[i] for h in helds]) for i in range(3))  # (S, n_alphas, p[, p])
    yy = np.stack([t.yy for t in tests])
    cyy = np.stack([_centered_y(t)[1] for t in tests])
    n = np.array([float(t.n) for t in tests])
    return H, K, lin_x, np.stack(rs), yy, cyy, n


def stacked_scorer(moments, n: int):
    """``score(Vss, V_alls, y_scale)`` of ``n`` subjects' folds from their stacked moments
    (``moments(y_scale)``, as :func:`stack_moments`): for every set of axes ``Vss[i]``
    (n_alphas, p, k), with ``V_alls[i]`` (p, n_alphas * k) the same side by side, the
    list (n) of ``(sse, sst, sst_behavior)``; one stacked computation for all. The
    ``scorer_many`` of the fold kinds that score several subjects at once."""

    def score(Vss: np.ndarray, V_alls: np.ndarray, y_scale: np.ndarray) -> list:
        sse, sst, sst_b = stacked_errors(moments(y_scale), Vss, V_alls, y_scale)
        return [
            [(sse[j, i], sst[j, i], float(sst_b[j])) for j in range(n)] for i in range(len(Vss))
        ]

    return score


def stacked_errors(moments: tuple, Vs, V_all, y_scale):
    """:func:`moment_errors_stacked` from moments stacked by :func:`stack_moments`.

    ``Vs`` (n_alphas, p, k) and ``V_all`` (p, n_alphas * k) give ``sse``, ``sst``
    (S, n_alphas * k); a stack of axes sets ``Vs`` (m, n_alphas, p, k) and ``V_all``
    (m, p, n_alphas * k) gives them per set, (S, m, n_alphas * k). ``sst_behavior``: (S,).
    """
    if np.ndim(Vs) == 3:
        sse, sst, sst_behavior = stacked_errors(moments, Vs[None], V_all[None], y_scale)
        return sse[:, 0], sst[:, 0], sst_behavior
    H, K, lin_x, r, yy, cyy, n = moments
    S, m = H.shape[0], Vs.shape[0]
    Vt_all = np.concatenate(list(V_all), axis=1) / y_scale[:, None]  # (p, m n_alphas k)
    Vt = Vs / y_scale[None, None, :, None]  # (m, n_alphas, p, k)
    yv = np.sum(Vt_all * (yy @ Vt_all), axis=1).reshape(S, m, -1)
    xa = np.sum(Vt * (H[:, None] @ Vt), axis=3).reshape(S, m, -1)
    cross = np.sum(Vt * (K[:, None] @ Vt), axis=3).reshape(S, m, -1)
    lin = np.einsum("sap,mapk->smak", lin_x, Vt).reshape(S, m, -1)
    c = np.einsum("sap,mapk->smak", r, Vt).reshape(S, m, -1)
    sse = yv - 2.0 * cross + xa - 2.0 * c * lin + n[:, None, None] * c**2
    sst = np.sum(Vt_all * (cyy @ Vt_all), axis=1).reshape(S, m, -1)
    sst_behavior = np.sum(np.diagonal(cyy, axis1=1, axis2=2) / y_scale**2, axis=1)
    return np.clip(sse, 0.0, None), sst, sst_behavior


@dataclass
class Fit:
    """Result of :func:`fit_from_stats`.

    Attributes
    ----------
    axes : ndarray (p, k)
    rho : ndarray (k,)
        Generalized eigenvalues (variance of each latent explained, in the metric).
    explained : ndarray (k,)
        In-sample pooled fraction of each latent's variance explained by neural activity.
    encoders : list of ndarray (q_s, k)
    standardized : list of Standardized
    y_scale : ndarray (p,)
    C : ndarray (p, p)
    Cm : ndarray (p, p)
    kernels : list of (KernelFold or None) or None
        Per subject, the solved whole-data kernel problem of a subject in the kernel
        form (its kernel is what the neural-private components need), else None.
    """

    axes: np.ndarray
    rho: np.ndarray
    explained: np.ndarray
    encoders: list
    standardized: list
    y_scale: np.ndarray
    C: np.ndarray
    Cm: np.ndarray
    kernels: list | None = None


def _solve_ridge(gram: np.ndarray, n: float, alpha: float, rhs: np.ndarray) -> np.ndarray:
    """``(G + alpha n I)^{-1} rhs`` by Cholesky, with an eigen fallback."""
    reg = gram.copy()
    reg.flat[:: gram.shape[0] + 1] += alpha * n
    try:
        cf = sla.cho_factor(reg, lower=True, check_finite=False)
        return sla.cho_solve(cf, rhs, check_finite=False)
    except np.linalg.LinAlgError:
        lam, Q = ridge_eig(gram)
        return Q @ ((Q.T @ rhs) / (lam + alpha * n)[:, None])


@small_blas
def fit_from_stats(
    stats: list[SufficientStats],
    weights: np.ndarray,
    alpha: float,
    k: int,
    metric: str,
    shrinkage: float,
    *,
    y_scale: np.ndarray | None = None,
    axes: np.ndarray | None = None,
    keep_gram: bool = True,
) -> Fit:
    """Closed-form ShaReD fit from per-subject statistics.

    Parameters
    ----------
    stats : list of SufficientStats
        Total statistics, one per subject (or a :class:`sharedrep.core.dual.KernelData`
        for a subject solved in the kernel form), or functions of no arguments returning
        them: each is then called on the worker thread that solves its subject, so only
        one subject's ``q x q`` statistics per thread exist at a time (``y_scale`` must
        then be given).
    weights : ndarray (S,)
        Subject weights ``w_s`` (sum to 1).
    alpha : float
        Scale-free ridge parameter (> 0).
    k : int
        Number of shared dimensions.
    metric : {"correlation", "variance"}
    shrinkage : float in [0, 1]
    y_scale : ndarray (p,), optional
        Behaviour scale; pooled from ``stats`` when omitted.
    axes : ndarray (p, k), optional
        Frozen axes: only the encoders are fitted.
    keep_gram : bool, default=True
        Keep each primal subject's ``q x q`` Gram matrix in ``Fit.standardized``; False
        drops it as soon as the subject is solved (``gram`` None: the low-memory fit).
    """
    if y_scale is None:
        if any(callable(st) for st in stats):
            raise ValueError("statistics given as functions need the behaviour scale y_scale")
        y_scale = pooled_y_scale(stats, weights)
    p = y_scale.shape[0]
    C = np.zeros((p, p))
    M = np.zeros((p, p))

    def solve(st):
        if callable(st):
            st = st()
        problem = subject_whole(st)
        sd, M_s = problem.solve(y_scale, np.array([alpha]))
        if is_kernel(st):
            return problem.coefficients(0), sd, M_s[0], problem
        return problem.coefficients(0), sd if keep_gram else _without_gram(sd), M_s[0], None

    solved, stds, kernels = [], [], []
    stats = list(stats)
    for w, (P, sd, M_s, kern) in zip(weights, _subject_map(solve, stats, stats), strict=True):
        solved.append(P)
        stds.append(sd)
        kernels.append(kern)
        M += w / sd.n * M_s
        C += w / sd.n * sd.yy
    V, rho, explained, Cm = shared_axes(M, C, k, metric, shrinkage, axes)
    encoders = [P @ V for P in solved]
    return Fit(V, rho, explained, encoders, stds, y_scale, C, Cm, kernels)


def _without_gram(sd: Standardized) -> Standardized:
    return dataclasses.replace(sd, gram=None)


def shared_axes(
    M: np.ndarray,
    C: np.ndarray,
    k: int,
    metric: str,
    shrinkage: float,
    axes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Axes from the pooled moments ``M = sum_s w_s B_s' P_s / n_s`` and ``C`` (p x p).

    Returns ``(V (p, k), rho (k,), explained (k,), Cm (p, p))``; with frozen ``axes``
    only ``rho`` and ``explained`` are computed.
    """
    Cm = behavior_metric(C, metric, shrinkage)
    if axes is None:
        V, rho = solve_axes(M, Cm, k)
    else:
        V = axes
        rho = np.einsum("ij,ik,kj->j", V, M, V)
    denom = np.einsum("ij,ik,kj->j", V, C, V)
    ok = denom > 1e-12 * np.trace(C)
    explained = np.einsum("ij,ik,kj->j", V, M, V) / np.where(ok, denom, np.nan)
    return V, rho, explained, Cm


@small_blas
def cv_errors(
    chunks_stats: list[list[SufficientStats]],
    chunks: list,
    weights: np.ndarray,
    alphas: np.ndarray,
    k_max: int,
    metric: str,
    shrinkage: float,
    *,
    y_scale: np.ndarray | None = None,
    axes: np.ndarray | None = None,
    keep_solutions: bool = False,
    folds: list | None = None,
) -> dict:
    """Held-out errors for every fold, alpha and number of dimensions.

    Each fold refits the behaviour scale, every subject's standardisation, the axes and
    the encoders on the training statistics (total minus held-out and gap chunks); the
    ridge solves of a subject and fold use :func:`ridge_path` (one tridiagonal
    reduction shared by the alpha grid, or a Cholesky factorisation per alpha for grids
    of fewer than 4 values).

    Parameters
    ----------
    chunks_stats : list (S) of list of SufficientStats
        Statistics of each chunk of each subject.
    chunks : list (S) of :class:`sharedrep.core.cv.Chunks`
    weights, alphas, k_max, metric
        See :func:`fit_from_stats`; ``alphas`` has shape (n_alphas,).
    shrinkage : float or array-like (n_shrinkage,)
        Shrinkage of the behaviour metric. A grid scores every value on the same solved
        folds (the ridge solves do not depend on it; only the axes do): ``sse`` and ``sst``
        then get a leading axis (n_shrinkage, ...).
    y_scale : ndarray (p,), optional
        Frozen behaviour scale (otherwise pooled per fold).
    axes : ndarray (p, k_max), optional
        Frozen axes (only encoders are refitted per fold).
    keep_solutions : bool, default=False
        Also return every primal subject's fold solutions (:class:`FoldSolution`), for
        later problems on the same folds (the private components). Kept only for
        subjects where they take no more memory than the chunk statistics themselves.
    folds : list (n_folds) of list (S) of fold problems, optional
        Problems posed already (e.g. :meth:`FoldSolution.fold`); ``chunks_stats`` is
        then not read.

    Returns
    -------
    dict with
        ``sse``, ``sst`` : ndarray (n_folds, n_alphas, S, k_max)
            (n_shrinkage, n_folds, n_alphas, S, k_max) for a grid of shrinkages.
        ``sst_behavior`` : ndarray (n_folds, S)
        ``n_test`` : ndarray (n_folds, S)
        ``solutions`` : list (S) of (list (n_folds) of FoldSolution, or None)
            Only with ``keep_solutions``.
    """
    n_folds = chunks[0].n_folds
    S = len(chunks)
    alphas = np.asarray(alphas, dtype=float)
    n_alpha = alphas.size
    grid = np.ndim(shrinkage) > 0
    shrinkages = np.atleast_1d(np.asarray(shrinkage, dtype=float))
    sse = np.zeros((shrinkages.size, n_folds, n_alpha, S, k_max))
    sst = np.zeros_like(sse)
    sst_b = np.zeros((n_folds, S))
    n_test = np.zeros((n_folds, S))
    if folds is None:  # q x q sums, a thread per core (small subjects: this thread)
        totals = _subject_map(
            lambda chunk_stats: None if is_kernel(chunk_stats) else total(chunk_stats),
            chunks_stats,
            chunks_stats,
        )
    keep = [keep_solutions and _worth_keeping(chunks_stats[s], n_folds, n_alpha) for s in range(S)]
    kept = [[] if keep[s] else None for s in range(S)]
    for f in range(n_folds):
        if folds is None:
            fold_f = _subject_map(
                lambda s, f=f: subject_fold(
                    chunks_stats[s], chunks[s].train_mask(f), chunks[s].test_mask(f), totals[s]
                ),
                list(range(S)),
                chunks_stats,
            )
        else:
            fold_f = folds[f]
        ysc = (
            pooled_y_scale([fd.y_train for fd in fold_f], weights) if y_scale is None else y_scale
        )
        stds, Ms_s = zip(
            *_fold_map(lambda fd, ysc=ysc: fd.solve(ysc, alphas), fold_f), strict=True
        )
        parts = [(M_s, sd.yy, sd.n) for sd, M_s in zip(stds, Ms_s, strict=True)]
        Vss, V_alls = shrinkage_axes(weights, parts, metric, shrinkages, k_max, axes)
        for i_shrink, results in enumerate(_fold_scorer(fold_f)(Vss, V_alls, ysc)):
            for s, res in enumerate(results):
                if res is None:
                    continue
                e, t, tb = res
                sse[i_shrink, f, :, s] = e.reshape(n_alpha, k_max)
                sst[i_shrink, f, :, s] = t.reshape(n_alpha, k_max)
                sst_b[f, s] = tb
                n_test[f, s] = fold_f[s].n_test
        for s in range(S):
            if kept[s] is not None:
                kept[s].append(fold_f[s].solution(alphas))
    if not grid:
        sse, sst = sse[0], sst[0]
    out = {"sse": sse, "sst": sst, "sst_behavior": sst_b, "n_test": n_test}
    if keep_solutions:
        out["solutions"] = kept
    return out


def shrinkage_axes(weights, parts: list, metric: str, shrinkages, k_max: int, frozen=None):
    """The axes of one fold for every shrinkage of the metric and every alpha.

    ``parts``: each subject's ``(M_s (n_alphas, p, p), S_yy (p, p), n)``, pooled with
    weights ``w_s / n_s``; the axes of all shrinkages come from one stacked solve
    (:func:`solve_axes_many`). ``frozen`` axes (p, k) are used for every shrinkage and
    alpha instead. Returns ``Vss`` (n_shrink, n_alphas, p, k) and ``V_alls``
    (n_shrink, p, n_alphas * k), the axes of each alpha side by side.
    """
    n_alpha = parts[0][0].shape[0]
    if frozen is None:
        Ms = np.zeros_like(parts[0][0], dtype=float)
        C = np.zeros_like(parts[0][1], dtype=float)
        for w, (M_s, yy, n) in zip(weights, parts, strict=True):
            Ms += w / n * M_s
            C += w / n * yy
        Cms = np.stack([behavior_metric(C, metric, shrink) for shrink in shrinkages])
        Vss = solve_axes_many(Ms, Cms, k_max)[0]
    else:
        Vss = np.broadcast_to(frozen, (len(shrinkages), n_alpha, *np.shape(frozen)))
    return Vss, np.concatenate(list(np.moveaxis(Vss, 1, 0)), axis=2)


# folds of at most this many columns are solved in the calling thread: on 2 cores, handing
# them to worker threads cost more than their work up to q ~ 200 (CV fits at q = 60 to 150
# took 0.74-0.88x the time without threads; equal at 200, threads faster from 300)
_INLINE_Q = 128


def _fold_map(func, folds: list) -> list:
    """``[func(fd) for fd in folds]``: on a thread per core (:func:`thread_map`), or in
    this thread when every fold is small (``inline``: reduced to ``p x p`` matrices,
    :class:`sharedrep.core.backends._streaming.ReducedFold`, or a primal fold of at most
    ``_INLINE_Q`` columns), whose work is smaller than handing it to a thread."""
    if all(getattr(fd, "inline", False) for fd in folds):
        return [func(fd) for fd in folds]
    return thread_map(func, folds)


def _subject_map(func, items: list, stats: list) -> list:
    """``[func(x) for x in items]`` on a thread per core, or in this thread when every
    subject's ``stats`` (chunk statistics or a total) has at most ``_INLINE_Q`` columns."""
    if all(_small(st) for st in stats):
        return [func(x) for x in items]
    return thread_map(func, items)


def _small(st) -> bool:
    if isinstance(st, list) and st and isinstance(st[0], SufficientStats):
        st = st[0]
    return isinstance(st, SufficientStats) and st.xx.shape[0] <= _INLINE_Q


def _fold_scorer(folds: list):
    """``score(Vss, V_alls, y_scale)``: for every set of axes ``Vss[i]`` (n_alphas, p, k)
    (``V_alls[i]`` the same side by side), ``fd.errors(Vss[i], V_alls[i], y_scale)`` of
    each fold with held-out rows (None for the others). Folds of one kind that score
    several subjects at once (``scorer_many``: moments stacked once) score every subject
    and every set of axes in one stacked computation."""
    scored = [fd for fd in folds if fd.n_test > 0]
    kinds = {type(fd) for fd in scored}
    many = getattr(kinds.pop(), "scorer_many", None) if len(kinds) == 1 else None
    together = many(scored) if many is not None else None

    def score(Vss, V_alls, y_scale) -> list:
        if together is not None:
            per_set = together(Vss, V_alls, y_scale)
        else:
            per_set = [
                _fold_map(lambda fd, Vs=Vs, V_all=V_all: fd.errors(Vs, V_all, y_scale), scored)
                for Vs, V_all in zip(Vss, V_alls, strict=True)
            ]
        out = []
        for results in map(iter, per_set):
            out.append([next(results) if fd.n_test > 0 else None for fd in folds])
        return out

    return score


_KEEP_BYTES = 4 * 2**20  # fold solutions of a subject always kept below this size


def _worth_keeping(chunk_stats, n_folds: int, n_alpha: int) -> bool:
    """Whether to keep a subject's fold solutions (:func:`cv_errors`).

    A primal fold keeps ``P`` (n_alphas, q, p), a kernel-form fold its held-out kernel
    and dual coefficients; kept when that takes no more memory than the subject's data
    as held (chunk statistics, or kept rows in the kernel form) or less than 4 MiB.
    """
    if is_kernel(chunk_stats):  # held-out kernels (< n^2 over all folds) and dual coefficients
        n, q = chunk_stats.Z.shape
        kept = 8 * (n * n + n_folds * n_alpha * n * chunk_stats.Y.shape[1])
        return kept <= max(8 * n * q, _KEEP_BYTES)
    if not isinstance(chunk_stats, list):
        return False
    q, p = chunk_stats[0].xy.shape
    kept = 8 * n_folds * n_alpha * q * p
    return kept <= max(8 * len(chunk_stats) * q * q, _KEEP_BYTES)


@dataclass
class FoldSolution:
    """What scoring needs of one subject's solved fold (no ``q x q`` matrix).

    Attributes
    ----------
    std : Standardized
        Training standardisation (``gram`` dropped).
    P : ndarray (n_alphas, q, p)
        ``(G + a n I)^{-1} B`` for each alpha of the grid.
    alphas : ndarray (n_alphas,)
    y_scale : ndarray (p,)
        Behaviour scale the fold was solved with.
    """

    std: Standardized
    P: np.ndarray
    alphas: np.ndarray
    y_scale: np.ndarray

    def fold(self, alpha: float, T: np.ndarray, test: SufficientStats | None) -> PrimalFold:
        """The fold of the behaviour ``Y @ T`` (``T`` p x p'), unscaled, at ``alpha``.

        Exact algebra: the ridge solution is linear in the behaviour, so
        ``P_T = P diag(y_scale) T``; nothing is factorised again. ``test`` holds the
        statistics of the held-out rows with the behaviour ``Y @ T`` (or None).
        """
        i = alpha_index(self.alphas, alpha)
        std = transformed_std(self.std, self.y_scale, T)
        return SolvedFold(std, (self.P[i] @ (self.y_scale[:, None] * T))[None], alpha, test)


def alpha_index(alphas: np.ndarray, alpha: float) -> int:
    """Position of ``alpha`` in a solved grid (to 1e-12 relative), or ValueError."""
    hit = np.flatnonzero(np.isclose(alphas, alpha, rtol=1e-12, atol=0.0))
    if hit.size == 0:
        raise ValueError(f"alpha {alpha} was not solved for this fold")
    return int(hit[0])


def transformed_std(sd: Standardized, y_scale: np.ndarray, T: np.ndarray) -> Standardized:
    """The standardisation of a fold for the unscaled behaviour ``Y @ T``.

    ``sd`` was computed with the behaviour scale ``y_scale``: cross-products and
    behaviour moments are rescaled and mapped by ``T``; the neural part is unchanged.
    """
    cross = (sd.cross * y_scale) @ T
    yy = T.T @ (sd.yy * np.outer(y_scale, y_scale)) @ T
    return Standardized(
        sd.n, sd.x_mean, sd.x_scale, sd.constant, sd.y_mean @ T, None, cross, 0.5 * (yy + yy.T)
    )


def check_presolved(alpha: float, y_scale: np.ndarray, alphas: np.ndarray) -> None:
    """A presolved fold answers only its own alpha, for unscaled behaviour."""
    alphas = np.atleast_1d(alphas)
    if alphas.size != 1 or not np.isclose(alphas[0], alpha, rtol=1e-12, atol=0.0):
        raise ValueError(f"this fold was solved for alpha {alpha} only")
    if not np.all(y_scale == 1.0):
        raise ValueError("this fold was solved for unscaled behaviour (y_scale of ones)")


def is_kernel(subject_stats) -> bool:
    """Whether a subject's data are in the kernel form (:class:`sharedrep.core.dual.KernelData`).

    The form is explicit: kernel-form data carry ``form == "dual"``; the primal form is a
    list of chunk :class:`SufficientStats` (or the torch backend's ``DeviceStats``).
    """
    return getattr(subject_stats, "form", "primal") == "dual"


class PrimalFold:
    """One subject's fold from sufficient statistics (training and held-out rows).

    The interface shared with :class:`sharedrep.core.dual.KernelFold`: ``y_train`` (behaviour
    statistics of the training rows), ``n_test``, ``solve(y_scale, alphas) -> (std, Ms)``
    with ``Ms[a] = B' P_a``, ``coefficients(i) -> P_i`` and ``errors(Vs, V_all, y_scale)``.
    """

    def __init__(
        self,
        train: SufficientStats,
        test: SufficientStats | None = None,
        *,
        release_gram: bool = False,
    ):
        self.train, self.test = train, test
        self.y_train = train
        self.release_gram = release_gram
        self._moments = None

    @property
    def n_test(self) -> float:
        return 0.0 if self.test is None else self.test.n

    @property
    def inline(self) -> bool:
        """Small enough to be solved in the calling thread (:func:`_fold_map`)."""
        return self.train.xx.shape[0] <= _INLINE_Q

    def solve(self, y_scale: np.ndarray, alphas: np.ndarray):
        """Standardise and solve every alpha; returns ``(std, Ms)``. With
        ``release_gram`` (cross-validation folds) the reduction runs in the standardised
        Gram matrix's own memory and ``std.gram`` is None afterwards."""
        alphas = np.atleast_1d(alphas)
        if self.release_gram:
            self.std, self.P = fold_path(self.train, y_scale, alphas)
        else:
            std = standardize(self.train, y_scale)
            self.P = ridge_path(std.gram, std.n, alphas, std.cross)
            self.std = std
        self.y_scale = y_scale
        self._moments = None
        return self.std, self.std.cross.T[None] @ self.P

    def coefficients(self, i_alpha: int = 0) -> np.ndarray:
        return self.P[i_alpha]

    def errors(self, Vs: np.ndarray, V_all: np.ndarray, y_scale: np.ndarray):
        """Held-out errors of axes ``Vs`` (n_alphas, p, k), as :func:`heldout_errors`;
        the moments of :func:`held_moments` are formed once per fold and behaviour scale
        and serve every set of axes scored (e.g. one per shrinkage)."""
        held, r = self._held_moments(y_scale)
        return moment_errors(held, r, self.test, Vs, V_all, y_scale)

    def _held_moments(self, y_scale: np.ndarray) -> tuple:
        """``(held, r)`` of :func:`held_moments`, formed once per behaviour scale."""
        cached = self._moments
        if cached is None or not np.array_equal(cached[0], y_scale):
            cached = (np.array(y_scale), *held_moments(self.std, self.P, self.test, y_scale))
            self._moments = cached
        return cached[1:]

    @staticmethod
    def scorer_many(folds: list):
        """``score(Vss, V_alls, y_scale)`` (:func:`stacked_scorer`): :meth:`errors` of
        several subjects' folds (with held-out rows) for every set of axes at once."""

        def moments(y_scale: np.ndarray) -> tuple:
            held, r = zip(*(f._held_moments(y_scale) for f in folds), strict=True)
            return stack_moments(list(held), list(r), [f.test for f in folds])

        return stacked_scorer(moments, len(folds))

    def solution(self, alphas: np.ndarray) -> FoldSolution:
        """The solved fold without its ``q x q`` matrices (call after :meth:`solve`)."""
        std = dataclasses.replace(self.std, gram=None)
        return FoldSolution(std, self.P, np.atleast_1d(alphas), self.y_scale)


class SolvedFold(PrimalFold):
    """A primal fold whose ridge solution is given (one alpha): :meth:`solve` solves nothing.

    Built by :meth:`FoldSolution.fold`; scored by :func:`cv_errors` with ``folds=`` and a
    frozen ``y_scale`` of ones (the solution is for unscaled behaviour).
    """

    def __init__(
        self, std: Standardized, P: np.ndarray, alpha: float, test: SufficientStats | None
    ):
        self.train, self.test, self.y_train = None, test, None
        self.std, self.P, self.alpha = std, P, alpha
        self._moments = None

    def solve(self, y_scale: np.ndarray, alphas: np.ndarray):
        check_presolved(self.alpha, y_scale, alphas)
        return self.std, self.std.cross.T[None] @ self.P


def subject_fold(chunk_stats, train_mask: np.ndarray, test_mask: np.ndarray, total_s=None):
    """The fold of one subject: primal from chunk statistics, or kernel form.

    ``chunk_stats`` is a list of chunk :class:`SufficientStats` (training statistics =
    total minus the chunks outside ``train_mask``) or a
    :class:`sharedrep.core.dual.KernelData`.
    """
    if is_kernel(chunk_stats):
        return chunk_stats.fold(train_mask, test_mask)
    tr = total(chunk_stats) if total_s is None else total_s
    out = [chunk_stats[c] for c in np.flatnonzero(~train_mask)]
    if out:  # the q x q part is formed where standardize reads it (no array of its own)
        small = _accumulated(dataclasses.replace(tr, xx=None), out, np.subtract)
        tr = dataclasses.replace(small, xx=Difference(tr.xx, [o.xx for o in out]))
    return PrimalFold(tr, held_out_stats(chunk_stats, test_mask), release_gram=True)


def held_out_stats(
    chunk_stats: list[SufficientStats], test_mask: np.ndarray
) -> SufficientStats | None:
    """Statistics of the held-out chunks (``test_mask``, shape (n_chunks,)), or None."""
    idx = np.flatnonzero(test_mask)
    return total([chunk_stats[c] for c in idx]) if idx.size else None


def subject_whole(st):
    """A subject's final-fit problem: total :class:`SufficientStats` (primal) or kernel data."""
    return st.whole() if is_kernel(st) else PrimalFold(st)


def subject_total(chunk_stats):
    """Total statistics of a subject's chunks (kernel data are returned as they are)."""
    return chunk_stats if is_kernel(chunk_stats) else total(chunk_stats)


def heldout_behavior_ss(
    chunk_stats_s: list[SufficientStats], chunks, y_scale: np.ndarray
) -> float:
    """Total held-out sum of squares of the scaled behaviour of one subject over all folds."""
    if is_kernel(chunk_stats_s):
        chunk_stats_s = chunk_stats_s.chunk_y_stats()
    out = 0.0
    for f in range(chunks.n_folds):
        idx = np.flatnonzero(chunks.test_mask(f))
        if idx.size:
            _, cyy = _centered_y(total([chunk_stats_s[c] for c in idx]))
            out += float(np.sum(np.diag(cyy) / y_scale**2))
    return out


def cv_criterion(errors: dict, metric: str) -> np.ndarray:
    """Per-fold selection score for every alpha and number of dimensions.

    For ``k`` dimensions the score is the held-out behaviour variance explained in the
    metric of the model, latent by latent: the sum over the first ``k`` dimensions of the
    pooled per-dimension R^2 ``1 - SSE_j / SST_j`` (``"correlation"``: every latent has
    unit variance in the ``C_m`` metric), or ``sum_{j <= k} (SST_j - SSE_j) / SST_y``
    (``"variance"``: the latents' held-out variance explained, relative to the held-out
    behaviour variance ``SST_y``). ``SSE_j`` is the held-out error of latent ``j``
    predicted with the training intercept; ``SST_j`` and ``SST_y`` are sums of squares
    about the *held-out* means. Adding a dimension raises the score exactly when it is
    predicted better than by its held-out mean (a conservative baseline). For
    ``"variance"`` the score is not the plain held-out behaviour R^2 of the rank-``k``
    prediction: that R^2 also charges the drift between the training and held-out means
    of the behaviour outside the ``k`` axes, which no encoder can predict.

    Returns
    -------
    score : ndarray (n_folds, n_alphas, k_max)
    """
    return _criterion(errors["sse"], errors["sst"], errors["sst_behavior"], metric)


def pooled_criterion(errors: dict, metric: str) -> np.ndarray:
    """Selection score with the errors pooled over folds, shape (n_alphas, k_max).

    As :func:`cv_criterion` but from the held-out sums of squares added over all folds
    (``sum_f SSE / sum_f SST``) rather than a mean of per-fold ratios: robust when a
    small fold holds a latent that barely varies (its per-fold R^2 can be hugely
    negative and would dominate a mean).
    """
    return _criterion(
        errors["sse"].sum(axis=0, keepdims=True),
        errors["sst"].sum(axis=0, keepdims=True),
        errors["sst_behavior"].sum(axis=0, keepdims=True),
        metric,
    )[0]


def _criterion(sse, sst, sst_behavior, metric):
    sse = sse.sum(axis=2)
    sst = sst.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "correlation":
            gain = 1.0 - sse / np.where(sst > 0, sst, np.nan)
        else:
            tot = sst_behavior.sum(axis=1)[:, None, None]
            gain = (sst - sse) / tot
    return np.cumsum(gain, axis=2)
