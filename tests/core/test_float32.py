"""dtype="float32": float32 data pass, float64 accumulation and solves.

Documented accuracy check (docs/benchmarks.md): on simulated data the float32 fit selects
the same alpha and k as float64, every shared axis is within 0.01 degrees of its float64
counterpart and the cross-validated scores and R^2 agree within 1e-4 (measured: at most
6e-4 degrees and 1e-6).
"""

import numpy as np
import pytest

from sharedrep import ShaReD, simulate
from sharedrep.core import data_pass
from sharedrep.core.design import as_lags

AXIS_DEGREES = 0.01
SCORE_TOL = 1e-4


def axis_angles(a, b):
    """Angle in degrees between corresponding columns (axes are sign-normalised)."""
    cos = np.sum(a * b, axis=0) / np.linalg.norm(a, axis=0) / np.linalg.norm(b, axis=0)
    return np.degrees(np.arccos(np.clip(np.abs(cos), 0.0, 1.0)))


@pytest.mark.parametrize(
    "lags, offset, snr",
    [(0, 0.0, 1.0), (3, 1e4, 0.3)],  # large offsets: centring happens before rounding
)
def test_float32_accuracy(lags, offset, snr):
    d = simulate(n_subjects=3, n_samples=3000, n_units=(15, 30), seed=7, lag=1, snr=snr)
    X = [x + offset for x in d.neural]
    kw = dict(n_shared="auto", lags=lags, cv=5, random_state=0)
    a = ShaReD(**kw).fit(X, d.behavior, groups=d.groups)
    b = ShaReD(dtype="float32", **kw).fit(X, d.behavior, groups=d.groups)
    assert (a.alpha_, a.n_shared_) == (b.alpha_, b.n_shared_)
    assert axis_angles(a.shared_axes_, b.shared_axes_).max() < AXIS_DEGREES
    for key in ("mean_score", "r2_dim"):
        np.testing.assert_allclose(a.cv_results_[key], b.cv_results_[key], atol=SCORE_TOL)
    sa = a.score(X, d.behavior, groups=d.groups)
    sb = b.score(X, d.behavior, groups=d.groups)
    assert abs(sa - sb) < SCORE_TOL
    for ea, eb in zip(a.encoders_, b.encoders_, strict=True):
        assert np.abs(ea - eb).max() < 1e-3 * np.abs(ea).max()


def test_statistics_float32_are_float64_and_close():
    d = simulate(n_subjects=1, n_samples=9000, n_units=30, seed=1)  # > 2 row blocks
    X, Y, g = d.neural[0], d.behavior[0], d.groups[0]
    lags = as_lags(2)
    a = data_pass.subject_statistics(X, Y, g, lags, 3)
    b = data_pass.subject_statistics(X, Y, g, lags, 3, dtype=np.float32)
    np.testing.assert_array_equal(a.rows, b.rows)
    for sa, sb in zip(a.stats, b.stats, strict=True):
        assert sb.xx.dtype == np.float64 and sb.sx.dtype == np.float64
        assert sa.n == sb.n
        scale = np.abs(sa.xx).max()
        assert np.abs(sa.xx - sb.xx).max() < 1e-5 * scale
        assert np.abs(sa.xy - sb.xy).max() < 1e-5 * np.abs(sa.xy).max() + 1e-5 * scale


def test_float64_default_unchanged():
    d = simulate(n_subjects=2, n_samples=600, n_units=10, seed=0)
    a = ShaReD(n_shared=2, cv=3).fit(d.neural, d.behavior, groups=d.groups)
    b = ShaReD(n_shared=2, cv=3, dtype="float64").fit(d.neural, d.behavior, groups=d.groups)
    np.testing.assert_array_equal(a.shared_axes_, b.shared_axes_)


@pytest.mark.parametrize("step", [1, 3])  # runs of consecutive rows (slices) or scattered (take)
def test_lag_embed_into_float32_centres_then_rounds_once(step):
    """Large offsets: each value is centred in float64 and rounded once to float32,
    whichever way the rows are gathered (rounding first would lose ~1e-3 per value)."""
    from sharedrep.core.design import lag_embed

    rng = np.random.default_rng(2)
    X = rng.standard_normal((600, 5)) + 1e4
    center = X.mean(0)
    lags = np.array([0, 2])
    rows = np.arange(10, 600, step)
    out = lag_embed(X, lags, rows, center=center, out=np.empty((rows.size, 10), np.float32))
    expected = np.hstack([(X[rows - lag] - center).astype(np.float32) for lag in lags])
    np.testing.assert_array_equal(out, expected)


def test_float32_direct_pass_centres_before_rounding():
    """One lag (the gathered direct product) on data far from zero: the float32
    statistics stay within float32 rounding of the centred data."""
    rng = np.random.default_rng(3)
    T = 8000
    X = rng.standard_normal((T, 6)) + 1e4
    Y = rng.standard_normal((T, 2))
    g = np.repeat(np.arange(T // 100), 100)
    a = data_pass.subject_statistics(X, Y, g, as_lags(0), 4)
    b = data_pass.subject_statistics(X, Y, g, as_lags(0), 4, dtype=np.float32)
    for sa, sb in zip(a.stats, b.stats, strict=True):
        assert np.abs(sa.xx - sb.xx).max() < 1e-5 * np.abs(sa.xx).max()
        assert np.abs(sa.sx - sb.sx).max() < 1e-5 * np.sqrt(sa.n * np.diag(sa.xx)).max()


@pytest.mark.filterwarnings("ignore:.*constant")
@pytest.mark.parametrize(
    "name, scale, words",
    [
        ("neural", 1e20, r"vary by up to .* beyond 2.9e\+17 \(sums of 4096 float32 products"),
        ("neural", 1e-50, r"vary by at most .* below 1.1e-19 \(their float32 squares"),
        ("behavior", 1e20, r"vary by up to"),
    ],
)
def test_float32_refuses_data_its_products_cannot_hold(name, scale, words):
    """Beyond float32's range the products overflowed (a bare LinAlgError) or flushed to
    zero (every unit declared constant); float64 fits the same data."""
    d = simulate(n_subjects=2, n_samples=300, n_units=5, n_behavior=3, seed=11)
    X, Y = [x.copy() for x in d.neural], [y.copy() for y in d.behavior]
    target = X if name == "neural" else Y
    target[1] = target[1] * scale
    kw = dict(n_shared=1, cv=3, lags=[0, 2], random_state=0)
    what = "units" if name == "neural" else "features"
    with pytest.raises(
        ValueError,
        match=rf"subject 1: dtype='float32' cannot represent this data's products: {name} "
        rf"{what} \[0, .*{words}.*use dtype='float64' or rescale the data",
    ):
        ShaReD(dtype="float32", **kw).fit(X, Y, groups=d.groups)
    ShaReD(**kw).fit(X, Y, groups=d.groups)  # float64: unaffected
    # the spreads are measured about the centres: neither an offset nor a constant unit
    # (zero spread, dropped as in float64) is a reason to refuse
    X = [x * 1e-3 + 1e6 for x in d.neural]
    X[0][:, 1] = 3.0
    a = ShaReD(**kw).fit(X, d.behavior, groups=d.groups)
    b = ShaReD(dtype="float32", **kw).fit(X, d.behavior, groups=d.groups)
    assert axis_angles(a.shared_axes_, b.shared_axes_).max() < AXIS_DEGREES


def test_torch_float32_refuses_data_its_products_cannot_hold():
    """The torch backend's float32 pass: the exact check for host arrays, the overflow
    for a tensor on the device."""
    torch = pytest.importorskip("torch")
    d = simulate(n_subjects=2, n_samples=300, n_units=5, n_behavior=3, seed=11)
    kw = dict(n_shared=1, cv=3, lags=[0, 2], random_state=0, backend="torch", dtype="float32")
    for scale, words in ((1e20, "beyond"), (1e-50, "below")):
        X = [x.copy() for x in d.neural]
        X[1] = X[1] * scale
        with pytest.raises(ValueError, match=rf"subject 1: .*neural units \[0, .*{words}"):
            ShaReD(**kw).fit(X, d.behavior, groups=d.groups)
    X = [torch.as_tensor(x) for x in d.neural]
    X[1] = X[1] * 1e20
    with pytest.raises(ValueError, match=r"subject 1: dtype='float32' .*\(they overflow\)"):
        ShaReD(**kw).fit(X, d.behavior, groups=d.groups)
