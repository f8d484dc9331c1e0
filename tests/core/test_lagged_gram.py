"""The lag-structured statistics equal the direct product of the lag-embedded design.

The reference is computed independently: ``lag_embed`` builds the full design of the
chunk's rows and ``Z' Z``, ``Z' (Y - c)``, the sums and the count follow by plain numpy.
Lag sets, trials, missing samples and chunk orders are drawn at random (seeded).
"""

import numpy as np
import pytest

from sharedrep.core import data_pass, lagged_gram, solver
from sharedrep.core.design import lag_embed, run_bounds, valid_rows
from sharedrep.core.lagged_gram import lag_plan, lagged_statistics, structured_pays

RTOL = 1e-10  # relative to the largest entry of each statistic


def reference(X, Y, lags, rows, x_center, y_center):
    """``(n, sx, sy, xx, xy, yy)`` from the explicit lag-embedded design."""
    Z = lag_embed(X, lags, rows, center=x_center)
    V = Y[rows] - y_center
    return float(rows.size), Z.sum(0), V.sum(0), Z.T @ Z, Z.T @ V, V.T @ V


def assert_same(found, expected, rtol=RTOL):
    names = ("n", "sx", "sy", "xx", "xy", "yy")
    for name, a, b in zip(names, found, expected, strict=True):
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        assert a.shape == b.shape, name
        scale = max(np.max(np.abs(b), initial=0.0), 1.0)
        err = np.max(np.abs(a - b), initial=0.0) / scale
        assert err <= rtol, f"{name}: relative error {err:.3g} > {rtol:g}"


def random_problem(rng):
    """Data, lags (negative, gapped, unordered), trials and dropped rows of one draw."""
    T, N, p = int(rng.integers(200, 900)), int(rng.integers(1, 12)), int(rng.integers(1, 4))
    lags = rng.choice(np.arange(-5, 8), size=int(rng.integers(2, 6)), replace=False)
    X = rng.standard_normal((T, N)) * rng.uniform(0.1, 10, N) + rng.uniform(-5, 5, N)
    Y = rng.standard_normal((T, p)) + 2.0
    trial = int(rng.integers(15, 120))
    groups = np.repeat(np.arange(T // trial + 1), trial)[:T] if rng.random() < 0.7 else None
    finite = rng.random(T) > rng.choice([0.0, 0.02, 0.1])
    rows = valid_rows(T, lags, groups, finite=finite)
    rows = rows[rng.random(rows.size) > 0.05]  # behaviour missing at some rows
    return X, Y, lags, rows


def split_chunks(rng, rows, n_chunks):
    """Chunks of trial-like stretches in a random order (rows within a chunk in order or
    reversed): the runs are found whatever the order."""
    pieces = np.array_split(rows, n_chunks)
    order = rng.permutation(n_chunks)
    return [pieces[c][::-1] if rng.random() < 0.2 else pieces[c] for c in order]


@pytest.mark.parametrize("seed", range(12))
def test_structured_equals_direct_product(seed):
    rng = np.random.default_rng(seed)
    X, Y, lags, rows = random_problem(rng)
    chunks = split_chunks(rng, rows, int(rng.integers(1, 6)))
    x_center, y_center = rng.standard_normal(X.shape[1]), rng.standard_normal(Y.shape[1])
    found = lagged_statistics(X, Y, lag_plan(lags), chunks, x_center, y_center, dtype=np.float64)
    assert len(found) == len(chunks)
    for st, r in zip(found, chunks, strict=True):
        assert_same(st, reference(X, Y, lags, r, x_center, y_center))


@pytest.mark.parametrize("lags", [[0, 1, 2, 3], [0, 2, 5], [-2, 0, 3], [4, -1]])
def test_runs_split_over_many_blocks(monkeypatch, lags):
    """Runs longer than a block are cut; each piece is corrected at its own edges."""
    monkeypatch.setattr(lagged_gram, "_BLOCK_BYTES", 1)  # blocks of _MIN_BLOCK + span rows
    monkeypatch.setattr(lagged_gram, "_MIN_BLOCK", 40)
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((1500, 7)) + 1.0, rng.standard_normal((1500, 2))
    groups = np.repeat(np.arange(3), 500)
    rows = valid_rows(1500, np.array(lags), groups)
    chunks = [rows[:700], rows[700:]]
    x_center = X[::50].mean(0)
    y_center = np.zeros(2)
    plan = lag_plan(np.array(lags))
    assert lagged_gram._block_rows(7, 8, plan) == 40 + plan.span
    found = lagged_statistics(X, Y, plan, chunks, x_center, y_center, dtype=np.float64)
    for st, r in zip(found, chunks, strict=True):
        assert_same(st, reference(X, Y, np.array(lags), r, x_center, y_center))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(4))
def test_edge_rows_staged_in_several_flushes(monkeypatch, seed, dtype):
    """With room for only 3 segments, the edge rows of a chunk (and of a block with more
    segments than that) are multiplied in several flushes and summed: same statistics."""
    monkeypatch.setattr(lagged_gram, "_STAGE_BYTES", 1)
    monkeypatch.setattr(lagged_gram, "_MIN_STAGE", 3)
    rng = np.random.default_rng(seed + 40)
    X, Y, lags, rows = random_problem(rng)
    chunks = split_chunks(rng, rows, int(rng.integers(1, 4)))
    x_center, y_center = X[::7].mean(0), np.zeros(Y.shape[1])
    found = lagged_statistics(X, Y, lag_plan(lags), chunks, x_center, y_center, dtype=dtype)
    rtol = RTOL if dtype == np.float64 else 1e-5
    for st, r in zip(found, chunks, strict=True):
        assert_same(st, reference(X, Y, lags, r, x_center, y_center), rtol=rtol)


def test_empty_chunk_gives_zero_statistics():
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((300, 4)), rng.standard_normal((300, 2))
    lags = np.arange(4)
    rows = valid_rows(300, lags)
    chunks = [rows, rows[:0]]
    found = lagged_statistics(X, Y, lag_plan(lags), chunks, None, np.zeros(2), dtype=np.float64)
    n, sx, sy, xx, xy, yy = found[1]
    assert n == 0 and xx.shape == (16, 16) and xy.shape == (16, 2)
    assert not np.any(sx) and not np.any(sy) and not np.any(xx) and not np.any(xy)
    assert not np.any(yy)
    assert_same(found[0], reference(X, Y, lags, rows, None, np.zeros(2)))


def test_float32_within_float32_rounding_of_float64():
    """The float32 structured pass is as close to the float64 product as the float32
    direct pass is (both round the centred data once and sum blocks in float64)."""
    rng = np.random.default_rng(3)
    T, N = 20000, 20
    X = rng.standard_normal((T, N)) + 100.0
    Y = rng.standard_normal((T, 3))
    lags = np.arange(4)
    groups = np.repeat(np.arange(T // 100), 100)
    rows = valid_rows(T, lags, groups)
    x_center = X[::100].mean(0)
    exact = reference(X, Y, lags, rows, x_center, np.zeros(3))
    X32 = (X - x_center).astype(np.float32)
    plan = lag_plan(lags)
    found = lagged_statistics(X32, Y, plan, [rows], None, np.zeros(3), dtype=np.float32)[0]
    direct = solver._direct_statistics(
        X32, Y, lags, [rows], None, np.zeros(3), None, np.dtype(np.float32)
    )[0]
    direct = (direct.n, direct.sx, direct.sy, direct.xx, direct.xy, direct.yy)
    err_direct = np.max(np.abs(direct[3] - exact[3])) / np.max(np.abs(exact[3]))
    err_structured = np.max(np.abs(found[3] - exact[3])) / np.max(np.abs(exact[3]))
    assert err_direct < 1e-5  # float32 rounding of the data, not of the sums
    assert err_structured <= 2 * err_direct + 1e-7
    assert_same(found, exact, rtol=1e-5)


@pytest.mark.parametrize("nan_policy", ["raise", "omit"])
@pytest.mark.parametrize("lags", [np.arange(4), np.array([0, 2, 5]), np.array([-3, -1, 0, 2])])
def test_subject_statistics_equal_direct_product(monkeypatch, nan_policy, lags):
    """Through the data pass (CV chunks, trial boundaries, NaN windows dropped), with
    the structured product forced on for every lag set."""
    calls = []

    def spy(*args, **kwargs):
        calls.append(1)
        return lagged_statistics(*args, **kwargs)

    monkeypatch.setattr(solver, "structured_pays", lambda *args: True)
    monkeypatch.setattr(solver, "lagged_statistics", spy)
    rng = np.random.default_rng(4)
    T, N, p = 4000, 9, 3
    X = rng.standard_normal((T, N)) + 3.0
    Y = rng.standard_normal((T, p))
    groups = np.repeat(np.arange(T // 80), 80)
    if nan_policy == "omit":
        X[rng.choice(T, 30, replace=False), rng.integers(0, N, 30)] = np.nan
        Y[rng.choice(T, 20, replace=False), 0] = np.nan
    data = data_pass.subject_statistics(
        X, Y, groups, lags, 5, gap=3, random_state=0, nan_policy=nan_policy
    )
    assert calls == [1]
    ordered = data.rows[data.chunks.order]
    bounds = data.chunks.bounds
    Xsrc = np.where(np.isfinite(X), X, 0.0)
    x_center = data.x_center[:N]
    for c, st in enumerate(data.stats):
        r = ordered[bounds[c] : bounds[c + 1]]
        expected = reference(Xsrc, Y, lags, r, x_center, data.y_center)
        assert_same((st.n, st.sx, st.sy, st.xx, st.xy, st.yy), expected)


def test_data_pass_takes_structured_path_on_trials():
    """Lags 0..3 on trials of 100 samples: the rule picks the structured product."""
    lags = np.arange(4)
    groups = np.repeat(np.arange(40), 100)
    rows = valid_rows(4000, lags, groups)
    assert structured_pays(lag_plan(lags), rows.size, run_bounds(rows).size - 1)


def test_rule_prefers_direct_product_where_structure_does_not_pay():
    four = lag_plan(np.arange(4))
    assert structured_pays(four, 9700, 100)  # lags 0..3 on runs of 97 rows
    assert not structured_pays(lag_plan(np.array([0])), 10000, 1)  # one lag
    assert not structured_pays(four, 1000, 500)  # runs of two rows
    assert not structured_pays(lag_plan(np.array([0, 1])), 9900, 100)  # little to share
    assert not structured_pays(four, 0, 0)


def test_chunk_statistics_falls_back_to_direct_product(monkeypatch):
    """Where the rule says no (short runs), the direct product is used, and agrees."""
    calls = []
    monkeypatch.setattr(solver, "lagged_statistics", lambda *a, **k: calls.append(1))
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((500, 5)), rng.standard_normal((500, 2))
    lags = np.arange(3)
    rows = valid_rows(500, lags)[::2]  # no two consecutive rows: runs of one
    bounds = np.array([0, rows.size // 2, rows.size])
    stats = solver.chunk_statistics(X, Y, lags, rows, bounds, X.mean(0), np.zeros(2))
    assert not calls
    for c, st in enumerate(stats):
        r = rows[bounds[c] : bounds[c + 1]]
        expected = reference(X, Y, lags, r, X.mean(0), np.zeros(2))
        assert_same((st.n, st.sx, st.sy, st.xx, st.xy, st.yy), expected)


@pytest.mark.parametrize(("n_units", "run"), [(3, 40), (3, 900), (80, 40), (80, 5)])
def test_lag_embed_copies_the_same_values_by_runs_or_by_rows(n_units, run):
    """Centred rows are copied run by run (long runs of many values) or by one gather per
    lag (otherwise): the same values either way, the definition's."""
    rng = np.random.default_rng(run)
    X = rng.standard_normal((2000, n_units)) + 5.0
    starts = rng.permutation(np.arange(3, 2000 - run, run))[:12]
    rows = np.concatenate([np.arange(s, s + run) for s in starts])
    lags, center = np.array([0, 2, 3]), X.mean(axis=0)
    Z = lag_embed(X, lags, rows, center=center)
    want = np.hstack([X[rows - lag] - center for lag in lags])
    np.testing.assert_array_equal(Z, want)
