"""Lag-structured sufficient statistics: the lagged Gram matrix from shifted products.

With lags :math:`l_1, \\dots, l_L` the lag-embedded design has column blocks
:math:`X[t - l_i]`, so block :math:`(i, j)` of its Gram matrix over a run of consecutive
kept rows :math:`t = r_0, \\dots, r_1 - 1` is

.. math::

    \\sum_{t=r_0}^{r_1-1} X[t - l_i]' X[t - l_j]
    = \\sum_{s=r_0-l_i}^{r_1-1-l_i} X[s]' X[s + d], \\qquad d = l_i - l_j ,

a product that depends on :math:`i, j` only through :math:`d` and a window shifted by
:math:`l_i`. Here every run is copied once, as its *segment* ``X[r0 - lmax : r1 - lmin]``
(``span = lmax - lmin`` rows longer than the run), into a buffer ``W`` whose segments are
stacked (zero rows after the last one). For every distinct :math:`d \\ge 0` one product

.. math::

    F_d = \\sum_u W[u]' W[u + d]

over the whole buffer is computed (a ``syrk`` for :math:`d = 0`, a ``gemm`` otherwise);
block :math:`(i, j)` is :math:`F_d` minus the terms of the rows of each segment that its
window leaves out: the first ``lmax - l_i`` rows of every segment (*head*) and the last
``l_i - lmin`` (*tail*; their partner ``u + d`` may lie in the next segment or in the zero
rows, exactly as in :math:`F_d`). The head and tail terms are accumulated row position by
row position (``R_head[h] = sum_k W[p_k + h]' W[p_k + h + d]``) and cumulated, so the
corrections cost ``2 * span`` small products per block whatever the number of pairs.
Blocks with :math:`d < 0` are transposes.

The cross-products with behaviour need no correction: column block ``i`` of the behaviour
buffer ``V`` holds ``[Y - y_center, 1]`` at the rows ``pos(t) - (l_i - lmin)`` of the kept
rows ``t`` (``pos(t)`` the row of ``W`` holding ``X[t - lmin]``) and zeros elsewhere, so one
product ``W' V`` gives :math:`\tilde X' Y` and the column sums of :math:`\tilde X`; the
block of the smallest lag gives ``Y' Y``, the behaviour sums and the count.

The bookkeeping (runs, segments, blocks, the rows of ``W`` and ``V``) is computed once per
chunk with vectorised index arithmetic; the buffers and accumulators are allocated once
per subject and reused by every block and chunk. The edge rows of a chunk's segments are
staged across its blocks and multiplied together once the chunk ends (or their ~8 MiB
staging buffer is full), instead of once per block. With float32 the products of a block
(at most 4096 rows of ``W``) are formed in float32 and summed in float64.

Flops per row, in units of ``N^2``: the direct product ``n_lags^2 / 2`` (one ``syrk`` of
``q = N * n_lags`` columns); this one ``(n_d - 1/2) (1 + span / run)`` plus the corrections
``2 * span * n_d / run`` (``n_d`` distinct differences, ``run`` the mean run length). For
lags ``0..3`` on runs of 97 rows (trials of 100 samples) that is 3.9 against 8, about
2 times fewer. :func:`structured_pays`
is the rule that picks it (see there); the caller falls back to the direct product
otherwise (one lag, short runs, sparse lag sets).

This module is pure numerics (numpy only); :func:`sharedrep.core.solver.chunk_statistics`
is its caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sharedrep.core.design import run_bounds

__all__ = ["LagPlan", "lag_plan", "structured_pays", "lagged_statistics"]

# the structured product is used when its estimated cost is at most this fraction of the
# direct one: measured (N = 200, one BLAS thread) it took 0.53-0.60 of the direct time for
# lags 0..3 on runs of 17 to 97 rows, and more than the direct one for lags 0..1 or
# [0, 2, 5] on runs of 97 rows, whose estimates are 0.78 and 0.91
_PAY_FRACTION = 0.7
_CORRECTION_WEIGHT = 1.0
_BLOCK_BYTES = 2**22  # rows of the W buffer per block (~4 MiB), capped by _MAX_BLOCK
_MAX_BLOCK = 4096  # float32 blocks are summed in float64 at most every 4096 rows
_MIN_BLOCK = 256
_STAGE_BYTES = 2**23  # staged edge rows of a chunk (~8 MiB), at least _MIN_STAGE segments
_MIN_STAGE = 16


@dataclass(frozen=True)
class LagPlan:
    """What the lag set implies for the structured product (computed once per subject).

    Attributes
    ----------
    lags : ndarray of int (n_lags,)
        The lags, in the order of the design's column blocks.
    lmin, lmax, span : int
        Smallest and largest lag, and ``lmax - lmin``.
    diffs : ndarray of int (n_d,)
        Distinct differences ``l_i - l_j >= 0``, increasing (``diffs[0] == 0``).
    pairs : list of (i, j, k)
        Column blocks ``(i, j)`` with ``l_i >= l_j`` and ``diffs[k] == l_i - l_j``.
    """

    lags: np.ndarray
    lmin: int
    lmax: int
    span: int
    diffs: np.ndarray
    pairs: list


def lag_plan(lags) -> LagPlan:
    """The :class:`LagPlan` of integer ``lags`` (unique, any order, negative allowed)."""
    lags = np.asarray(lags, dtype=np.int64)
    d = lags[:, None] - lags[None, :]
    diffs = np.unique(d[d >= 0])
    index = {int(v): k for k, v in enumerate(diffs)}
    pairs = [
        (i, j, index[int(d[i, j])])
        for i in range(lags.size)
        for j in range(lags.size)
        if d[i, j] >= 0
    ]
    lmin, lmax = int(lags.min()), int(lags.max())
    return LagPlan(lags, lmin, lmax, lmax - lmin, diffs, pairs)


def structured_pays(plan: LagPlan, n_rows: int, n_runs: int) -> bool:
    """Whether the structured product is worth it for ``n_rows`` kept rows in ``n_runs`` runs.

    The rule compares flop estimates per ``N^2`` (see the module docstring):
    direct ``n_lags^2 / 2 * n_rows`` against structured
    ``(n_d - 1/2) (n_rows + span n_runs) + 2 * span * n_d * n_runs`` (the shifted
    products over the segments, then the head and tail corrections), and picks the
    structured one when it is at most 0.7 of the direct one (the gathers and the
    assembly of the ``q x q`` blocks cost extra). One lag (nothing to share) or runs
    hardly longer than the span (nothing left once the edges are corrected) never pass.
    """
    n_lags = plan.lags.size
    if n_lags < 2 or n_rows == 0:
        return False
    n_d = plan.diffs.size
    direct = 0.5 * n_lags**2 * n_rows
    structured = (n_d - 0.5) * (n_rows + plan.span * n_runs)
    structured += _CORRECTION_WEIGHT * 2 * plan.span * n_d * n_runs
    return structured <= _PAY_FRACTION * direct


def _block_rows(n_units: int, itemsize: int, plan: LagPlan) -> int:
    rows = _BLOCK_BYTES // max(1, itemsize * n_units)
    return int(max(_MIN_BLOCK + plan.span, min(_MAX_BLOCK, rows)))


def _segments(rows: np.ndarray, plan: LagPlan, block: int):
    """Runs of ``rows`` cut to at most ``block - span`` rows: ``(r0, r1)`` arrays."""
    bounds = run_bounds(rows)
    r0, r1 = rows[bounds[:-1]], rows[bounds[1:] - 1] + 1
    piece = block - plan.span
    n_pieces = -(-(r1 - r0) // piece)
    starts = np.repeat(r0, n_pieces) + piece * (
        np.arange(n_pieces.sum()) - np.repeat(np.cumsum(n_pieces) - n_pieces, n_pieces)
    )
    stops = np.minimum(starts + piece, np.repeat(r1, n_pieces))
    return starts, stops


@dataclass
class _Block:
    """Bookkeeping of one block of segments (indices into X and into the W buffer)."""

    src: np.ndarray  # (n_seg,) first row of X of each segment
    t: np.ndarray  # (n,) kept rows of the block
    pos: np.ndarray  # (n,) row of W aligned with lag lmin of each kept row
    heads: np.ndarray  # (n_seg,) first row of each segment in W
    ends: np.ndarray  # (n_seg,) one past the last row of each segment in W


def _blocks(rows: np.ndarray, plan: LagPlan, block: int) -> list[_Block]:
    """Split the runs of ``rows`` into blocks of at most ``block`` rows of ``W``."""
    starts, stops = _segments(rows, plan, block)
    seg_len = stops - starts + plan.span
    # greedy packing of whole segments (each <= block rows) into blocks
    out, first = [], 0
    cum = np.concatenate(([0], np.cumsum(seg_len)))
    while first < starts.size:
        last = int(np.searchsorted(cum, cum[first] + block, side="right")) - 1
        last = max(last, first + 1)
        s0, s1 = starts[first:last], stops[first:last]
        lens = seg_len[first:last]
        heads = np.concatenate(([0], np.cumsum(lens)[:-1]))
        n_run = s1 - s0
        offset = np.repeat(np.cumsum(n_run) - n_run, n_run)
        t = np.arange(int(n_run.sum())) - offset + np.repeat(s0, n_run)
        pos = t - np.repeat(s0 - heads, n_run) + plan.span
        out.append(_Block(s0 - plan.lmax, t, pos, heads, heads + lens))
        first = last
    return out


class _Buffers:
    """Work arrays of one subject's pass (allocated once, reused by every block).

    ``W`` holds the stacked segments (then ``span`` zero rows); column block ``i`` of
    ``V`` holds ``[Y - y_center, 1]`` at the rows ``pos - (l_i - lmin)`` of the kept rows
    (zero elsewhere), so that ``W' V`` is ``X~' [Y, 1]`` in one product. The edge rows of
    the segments (``span`` head and ``span`` tail rows, each with its partners at every
    difference) are staged over the blocks of a chunk, up to ``stage`` segments, and
    multiplied together (:func:`_flush_edges`): one product per edge row position per
    chunk on most problems, rather than one per block.
    """

    def __init__(self, plan: LagPlan, n_units: int, p: int, block: int, dtype, n_segments: int):
        n_d, span, n, n_lags = plan.diffs.size, plan.span, n_units, plan.lags.size
        self.W = np.zeros((block + span, n), dtype=dtype)
        self.V = np.zeros((block, n_lags * (p + 1)), dtype=dtype)
        self.F = np.zeros((n_d, n, n))
        # [e]: head row e (e < span) or the (e - span + 1)-th row from the end
        self.edges = np.zeros((2 * span, n, n_d * n))
        per_segment = 2 * span * n * (1 + n_d) * np.dtype(dtype).itemsize
        room = min(_MAX_BLOCK, max(_MIN_STAGE, _STAGE_BYTES // max(per_segment, 1)))
        self.stage = int(max(1, min(room, n_segments)))  # no more than a chunk needs
        self.edge_rows = np.empty((2 * span, self.stage, n), dtype=dtype)
        self.edge_partners = np.empty((2 * span, self.stage, n_d * n), dtype=dtype)
        self.staged, self.fresh = 0, True  # segments staged; edges not yet written
        self.XV = np.zeros((n, n_lags * (p + 1)))
        self.VV = np.zeros((p + 1, p + 1))
        self.nn = np.empty((n, n), dtype=dtype)
        self.nd = np.empty((n, n_d * n), dtype=dtype)
        self.nv = np.empty((n, n_lags * (p + 1)), dtype=dtype)
        self.vv = np.empty((p + 1, p + 1), dtype=dtype)

    def reset(self) -> None:
        for a in (self.F, self.XV, self.VV):
            a.fill(0.0)
        self.staged, self.fresh = 0, True


def _fill(buf: _Buffers, X, Y, plan: LagPlan, blk: _Block, center, y_center) -> int:
    """Copy the block's segments into ``W`` and its behaviour into ``V``; returns ``m``."""
    m = int(blk.ends[-1])
    W, V = buf.W, buf.V
    for src, a, b in zip(blk.src.tolist(), blk.heads.tolist(), blk.ends.tolist(), strict=True):
        if center is None:
            W[a:b] = X[src : src + b - a]
        else:
            np.subtract(X[src : src + b - a], center, out=W[a:b])
    W[m:] = 0.0
    V[:m] = 0.0
    yc = Y[blk.t] - y_center
    width = Y.shape[1] + 1
    for i, lag in enumerate(plan.lags.tolist()):
        rows = blk.pos - (lag - plan.lmin)
        V[rows, i * width : (i + 1) * width - 1] = yc
        V[rows, (i + 1) * width - 1] = 1.0
    return m


def _accumulate(buf: _Buffers, plan: LagPlan, blk: _Block, m: int) -> None:
    """Add the block's shifted products and behaviour products; stage its edge rows."""
    W, V = buf.W, buf.V
    for k, d in enumerate(plan.diffs):  # d = 0 is a syrk (same buffer, transposed)
        np.matmul(W[:m].T, W[d : m + d], out=buf.nn)
        buf.F[k] += buf.nn
    for lo in range(0, blk.heads.size, buf.stage):
        _stage_edges(buf, plan, blk.heads[lo : lo + buf.stage], blk.ends[lo : lo + buf.stage])
    np.matmul(W[:m].T, V[:m], out=buf.nv)
    buf.XV += buf.nv
    i0 = int(np.argmin(plan.lags))  # its block of V is [Y, 1] at the kept rows
    width = buf.VV.shape[0]
    Vy = V[:m, i0 * width : (i0 + 1) * width]
    np.matmul(Vy.T, Vy, out=buf.vv)
    buf.VV += buf.vv


def _stage_edges(buf: _Buffers, plan: LagPlan, heads: np.ndarray, ends: np.ndarray) -> None:
    """Copy the edge rows of segments (first rows ``heads``, ends ``ends`` in ``W``) and
    their partners at every difference into the staging buffers (flushed when full)."""
    if buf.staged + heads.size > buf.stage:
        _flush_edges(buf)
    span, W, at = plan.span, buf.W, slice(buf.staged, buf.staged + heads.size)
    shifts = plan.diffs[None, :]
    for e in range(2 * span):  # head row e, or the (e - span + 1)-th row from the end
        rows = heads + e if e < span else ends - (e - span + 1)
        buf.edge_rows[e, at] = W[rows]
        buf.edge_partners[e, at] = W[(rows[:, None] + shifts).ravel()].reshape(rows.size, -1)
    buf.staged += heads.size


def _flush_edges(buf: _Buffers) -> None:
    """Add the products of the staged edge rows with their partners to ``edges``."""
    k = buf.staged
    direct = buf.fresh and buf.edge_rows.dtype == buf.edges.dtype
    for e in range(buf.edges.shape[0]):
        rows, partners = buf.edge_rows[e, :k], buf.edge_partners[e, :k]
        if direct:  # float64, first products of the chunk: written in place
            np.matmul(rows.T, partners, out=buf.edges[e])
            continue
        np.matmul(rows.T, partners, out=buf.nd)
        if buf.fresh:
            buf.edges[e] = buf.nd
        else:
            buf.edges[e] += buf.nd
    buf.staged, buf.fresh = 0, False


def _assemble(buf: _Buffers, plan: LagPlan, n_units: int, p: int):
    """The chunk's statistics from the accumulated products (see the module docstring)."""
    n, q = n_units, n_units * plan.lags.size
    if buf.staged or buf.fresh:
        _flush_edges(buf)  # a chunk without rows: zero products
    heads, tails = buf.edges[: plan.span], buf.edges[plan.span :]
    for c in range(1, plan.span):  # cumulate in place: heads[c - 1] = rows h < c
        heads[c] += heads[c - 1]
        tails[c] += tails[c - 1]
    xx = np.empty((q, q))
    for i, j, k in plan.pairs:
        li = int(plan.lags[i])
        cols = slice(k * n, (k + 1) * n)
        out = xx[i * n : (i + 1) * n, j * n : (j + 1) * n]
        edges = []
        if plan.lmax > li:
            edges.append(heads[plan.lmax - li - 1, :, cols])
        if li > plan.lmin:
            edges.append(tails[li - plan.lmin - 1, :, cols])
        if edges:  # F minus its edge terms, without a copy of F first
            np.subtract(buf.F[k], edges[0], out=out)
            for edge in edges[1:]:
                out -= edge
        else:
            out[...] = buf.F[k]
        if i == j:
            out += out.T.copy()
            out *= 0.5
        else:
            xx[j * n : (j + 1) * n, i * n : (i + 1) * n] = out.T
    xv = buf.XV.reshape(n, plan.lags.size, p + 1).transpose(1, 0, 2).reshape(q, p + 1)
    vv = buf.VV
    n_rows, sx, sy = float(vv[-1, -1]), xv[:, -1].copy(), vv[:-1, -1].copy()
    return n_rows, sx, sy, xx, xv[:, :-1].copy(), vv[:-1, :-1].copy()


def lagged_statistics(X, Y, plan: LagPlan, chunks: list, x_center, y_center, *, dtype):
    """Statistics of each chunk of rows, by the lag-structured product.

    Parameters
    ----------
    X : ndarray (T, N)
        Neural activity (finite wherever a kept row's segment reads it), of any float
        dtype: each value is centred (``x_center``) in the precision of ``X`` and the
        centre, and rounded once to ``dtype`` as the block is copied.
    Y : ndarray (T, p)
        Behaviour.
    plan : LagPlan
    chunks : list (C) of ndarray of int
        Kept rows of each chunk (any order; runs of consecutive rows are found here).
    x_center : ndarray (N,) or None
        Subtracted from ``X`` while copying.
    y_center : ndarray (p,)
    dtype : numpy dtype
        Precision of the products (float32 products are summed in float64 every block,
        at most 4096 rows).

    Returns
    -------
    list (C) of tuple ``(n, sx (q,), sy (p,), xx (q, q), xy (q, p), yy (p, p))``
        Uncentred float64 statistics of the lag-embedded design
        (``lag_embed(X, lags, rows, center=x_center)``) and of ``Y - y_center``.
    """
    n_units, p = X.shape[1], Y.shape[1]
    block = _block_rows(n_units, np.dtype(dtype).itemsize, plan)
    chunks = [np.asarray(rows) for rows in chunks]
    n_segments = max((_segments(rows, plan, block)[0].size for rows in chunks), default=0)
    buf = _Buffers(plan, n_units, p, block, dtype, n_segments)
    out = []
    for rows in chunks:
        buf.reset()
        for blk in _blocks(rows, plan, block):
            m = _fill(buf, X, Y, plan, blk, x_center, y_center)
            _accumulate(buf, plan, blk, m)
        out.append(_assemble(buf, plan, n_units, p))
    return out
