"""Property tests of :class:`sharedrep.ShaReD`: shapes, kept rows, normalisation, determinism.

Random problems (1..4 subjects with their own unit counts, 1..5 behaviour features,
integer or explicit lags including negative ones, with or without trial ids, float32 /
float64 / integer data) are fitted with a fixed ``alpha`` and ``cv=None``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sharedrep import ShaReD
from sharedrep.core.design import as_lags

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _span(lags) -> tuple[int, int]:
    """Samples needed before / after ``t`` by the lag window of row ``t``."""
    lags = as_lags(lags)
    return max(0, int(lags.max())), max(0, -int(lags.min()))


def brute_force_rows(n_samples: int, lags, groups=None) -> np.ndarray:
    """Rows whose whole lag window (and ``t`` itself) is inside the recording and one trial."""
    lags = as_lags(lags)
    keep = []
    for t in range(n_samples):
        window = [t] + [t - int(lag) for lag in lags]
        lo, hi = min(window), max(window)
        if lo < 0 or hi >= n_samples:
            continue
        if groups is not None and len(set(np.asarray(groups)[lo : hi + 1].tolist())) != 1:
            continue
        keep.append(t)
    return np.asarray(keep, dtype=np.int64)


def _make(rng, shape, dtype):
    if dtype == "int":
        return rng.integers(-50, 51, size=shape)
    return rng.normal(size=shape).astype(dtype)


lags_strategy = st.one_of(
    st.integers(0, 3),
    st.lists(st.integers(-3, 3), min_size=1, max_size=4, unique=True),
)


@st.composite
def problems(draw):
    n_subjects = draw(st.integers(1, 4))
    p = draw(st.integers(1, 5))
    k = draw(st.integers(1, p))
    lags = draw(lags_strategy)
    with_groups = draw(st.booleans())
    dtype = draw(st.sampled_from(["float32", "float64", "int"]))
    alpha = draw(st.sampled_from([1e-3, 0.1, 1.0, 10.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    before, after = _span(lags)
    need = before + after + 3  # >= 3 usable rows per trial
    rng = np.random.default_rng(seed)
    neural, behavior, groups = [], [], []
    for _ in range(n_subjects):
        n_units = draw(st.integers(1, 8))
        if with_groups:
            lengths = draw(st.lists(st.integers(need, need + 6), min_size=1, max_size=4))
            # trial ids may repeat (also non-adjacently): a window must stay in one
            # contiguous run of the same id
            ids = draw(st.lists(st.integers(0, 2), min_size=len(lengths), max_size=len(lengths)))
            g = np.repeat(np.asarray(ids, dtype=np.int64), lengths)
            n_samples = g.size
        else:
            n_samples = draw(st.integers(need, need + 25))
            g = None
        neural.append(_make(rng, (n_samples, n_units), dtype))
        behavior.append(_make(rng, (n_samples, p), dtype))
        groups.append(g)
    return dict(
        neural=neural,
        behavior=behavior,
        groups=groups if with_groups else None,
        lags=lags,
        n_shared=k,
        alpha=alpha,
        p=p,
        metric=draw(st.sampled_from(["correlation", "variance"])),
        private=draw(st.booleans()),
    )


def _n_rows(pb) -> list[int]:
    return [
        brute_force_rows(X.shape[0], pb["lags"], _group(pb, s)).size
        for s, X in enumerate(pb["neural"])
    ]


def _private(pb) -> bool:
    # The private components crash when a subject has fewer than k + 1 usable rows
    # (see test_private_components_with_degenerate_subject_behavior): only ask for them
    # when every subject has enough rows for its shared latents to be linearly independent.
    return pb["private"] and min(_n_rows(pb)) >= pb["n_shared"] + 2


def _fit(pb):
    model = ShaReD(
        n_shared=pb["n_shared"],
        alpha=pb["alpha"],
        lags=pb["lags"],
        cv=None,
        behavior_metric=pb["metric"],
        private=_private(pb),
    )
    return model.fit(pb["neural"], pb["behavior"], groups=pb["groups"])


def _group(pb, s):
    return None if pb["groups"] is None else pb["groups"][s]


@pytest.mark.filterwarnings("ignore:subject .* are constant:UserWarning")
@SETTINGS
@given(pb=problems())
def test_shapes_rows_and_values(pb):
    m = _fit(pb)
    S, p, k = len(pb["neural"]), pb["p"], pb["n_shared"]
    n_lags = as_lags(pb["lags"]).size
    assert m.n_subjects_ == S and m.n_features_ == p and m.n_shared_ == k
    np.testing.assert_array_equal(m.lags_, as_lags(pb["lags"]))

    V = m.shared_axes_
    assert V.shape == (p, k) and V.dtype == np.float64 and np.all(np.isfinite(V))
    assert m.metric_.shape == (p, p)
    np.testing.assert_allclose(V.T @ m.metric_ @ V, np.eye(k), atol=1e-8)
    assert m.eigenvalues_.shape == (k,) and m.explained_.shape == (k,)
    assert np.all(np.isfinite(m.eigenvalues_))
    if max(_n_rows(pb)) >= p + 2:  # pooled behaviour covariance of full rank: explained_ defined
        assert np.all(np.isfinite(m.explained_))
    assert np.all(np.diff(m.eigenvalues_) <= 1e-10 * max(1.0, abs(m.eigenvalues_[0])))
    assert m.behavior_scale_.shape == (p,) and np.all(m.behavior_scale_ > 0)
    assert len(m.encoders_) == S
    for s, X in enumerate(pb["neural"]):
        n_units = X.shape[1]
        A = m.encoders_[s]
        assert A.shape == (n_units * n_lags, k) and A.dtype == np.float64
        assert np.all(np.isfinite(A))
        assert m.unit_means_[s].shape == m.unit_scales_[s].shape == (n_units * n_lags,)
        assert m.behavior_means_[s].shape == (p,)

        g = _group(pb, s)
        expected = brute_force_rows(X.shape[0], pb["lags"], g)
        Z, rows = m.transform(X, subject=s, groups=g, return_rows=True)
        assert rows.dtype.kind == "i"
        np.testing.assert_array_equal(rows, expected)
        assert Z.shape == (expected.size, k) and Z.dtype == np.float64
        assert np.all(np.isfinite(Z))
        np.testing.assert_array_equal(m.transform(X, subject=s, groups=g), Z)

        Yh, rows_p = m.predict(X, subject=s, groups=g, return_rows=True)
        np.testing.assert_array_equal(rows_p, expected)
        assert Yh.shape == (expected.size, p) and Yh.dtype == np.float64
        assert np.all(np.isfinite(Yh))
        np.testing.assert_array_equal(m.predict(X, subject=s, groups=g), Yh)

        Y = pb["behavior"][s]
        Zb = m.transform_behavior(Y, subject=s)
        assert Zb.shape == (Y.shape[0], k) and Zb.dtype == np.float64
        assert np.all(np.isfinite(Zb))
        assert m.transform_behavior(Y).shape == (Y.shape[0], k)

        if _private(pb):
            pc = m.private_[s]
            assert pc.behavior_axes.shape[0] == p
            assert pc.neural_components.shape[0] == n_units * n_lags
    score = m.score(pb["neural"], pb["behavior"], groups=pb["groups"])
    assert isinstance(score, float)


@pytest.mark.filterwarnings("ignore:subject .* are constant:UserWarning")
@SETTINGS
@given(pb=problems(), n_new=st.integers(0, 30), seed=st.integers(0, 1000))
def test_rows_of_new_data_without_and_with_trials(pb, n_new, seed):
    """``T'`` and the kept rows on data of another length, with random trial ids."""
    m = _fit(pb)
    rng = np.random.default_rng(seed)
    n_units = pb["neural"][0].shape[1]
    X = rng.normal(size=(n_new, n_units))
    for g in (None, rng.integers(0, 3, size=n_new)):
        expected = brute_force_rows(n_new, pb["lags"], g)
        if expected.size == 0:
            with pytest.raises(ValueError, match=r"subject 0: neural has .* too few"):
                m.transform(X, subject=0, groups=g)
            continue
        Z, rows = m.transform(X, subject=0, groups=g, return_rows=True)
        np.testing.assert_array_equal(rows, expected)
        assert Z.shape == (expected.size, pb["n_shared"])


@pytest.mark.filterwarnings("ignore:subject .* are constant:UserWarning")
@SETTINGS
@given(pb=problems())
def test_fit_is_deterministic(pb):
    m1, m2 = _fit(pb), _fit(pb)
    for name in ("shared_axes_", "eigenvalues_", "explained_", "metric_", "behavior_scale_"):
        np.testing.assert_array_equal(getattr(m1, name), getattr(m2, name))
    for name in ("encoders_", "unit_means_", "unit_scales_", "behavior_means_"):
        for a, b in zip(getattr(m1, name), getattr(m2, name), strict=True):
            np.testing.assert_array_equal(a, b)
    for s, X in enumerate(pb["neural"]):
        g = _group(pb, s)
        np.testing.assert_array_equal(
            m1.predict(X, subject=s, groups=g), m2.predict(X, subject=s, groups=g)
        )


@pytest.mark.filterwarnings("ignore:subject .* are constant:UserWarning")
@SETTINGS
@given(pb=problems())
def test_dtype_of_the_input_does_not_matter(pb):
    """float32 / int input gives the same model as the same values in float64."""
    m = _fit(pb)
    pb64 = dict(pb)
    pb64["neural"] = [x.astype(np.float64) for x in pb["neural"]]
    pb64["behavior"] = [y.astype(np.float64) for y in pb["behavior"]]
    m64 = _fit(pb64)
    np.testing.assert_array_equal(m.shared_axes_, m64.shared_axes_)
    for a, b in zip(m.encoders_, m64.encoders_, strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ edge sizes


@pytest.mark.parametrize("lags", [0, 1, 3, [-1, 1], [2, 3], [-2, -1], [-3, 0, 2]])
def test_minimum_number_of_samples_without_cv(lags):
    before, after = _span(lags)
    n_min = before + after + 2  # two complete lag windows
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(n_min, 2)), rng.normal(size=(n_min, 2))
    m = ShaReD(n_shared=1, alpha=1.0, lags=lags, cv=None).fit([X], [Y])
    Z, rows = m.transform(X, return_rows=True)
    assert Z.shape == (2, 1)
    np.testing.assert_array_equal(rows, [before, before + 1])
    # one sample less: a clear error naming the subject
    with pytest.raises(ValueError, match=r"subject 0: only 1 usable samples.*need at least 2"):
        ShaReD(n_shared=1, alpha=1.0, lags=lags, cv=None).fit([X[:-1]], [Y[:-1]])
    # transform needs one complete window
    assert m.transform(X[: before + after + 1]).shape == (1, 1)
    with pytest.raises(ValueError, match=r"subject 0: neural has \d+ samples, too few"):
        m.transform(X[: before + after])


@pytest.mark.parametrize("cv", [2, 3, 5])
def test_minimum_number_of_samples_and_trials_with_cv(cv):
    rng = np.random.default_rng(2)
    n = 2 * cv
    X, Y = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    m = ShaReD(n_shared=1, alpha=None, cv=cv).fit([X], [Y])
    assert m.cv_results_["fold_scores"].shape[0] == cv
    with pytest.raises(ValueError, match=rf"subject 0: only {n - 1} usable samples.*cv={cv}"):
        ShaReD(n_shared=1, alpha=None, cv=cv).fit([X[:-1]], [Y[:-1]])
    groups = np.repeat(np.arange(cv), 2)  # exactly cv trials of 2 samples
    ShaReD(n_shared=1, alpha=None, cv=cv).fit([X], [Y], groups=[groups])
    with pytest.raises(ValueError, match=rf"subject 0: {cv - 1} trials.*cv={cv}"):
        ShaReD(n_shared=1, alpha=None, cv=cv).fit([X], [Y], groups=[np.minimum(groups, cv - 2)])


@pytest.mark.parametrize("metric", ["correlation", "variance"])
def test_one_unit_one_feature(metric):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 1))
    y = 2.0 * x + 0.1 * rng.normal(size=(50, 1))
    m = ShaReD(n_shared=1, alpha=1e-6, cv=None, behavior_metric=metric).fit([x, x], [y, y])
    assert m.shared_axes_.shape == (1, 1)
    assert [A.shape for A in m.encoders_] == [(1, 1), (1, 1)]
    np.testing.assert_allclose(m.shared_axes_.T @ m.metric_ @ m.shared_axes_, [[1.0]])
    assert m.transform(x, subject=1).shape == (50, 1)
    assert m.predict(x, subject=1).shape == (50, 1)
    assert m.score([x], [y]) > 0.99


def test_one_unit_one_feature_with_lags_and_cv():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(60, 1))
    y = np.roll(x, 1, axis=0)  # neural leads behaviour by one sample
    m = ShaReD(n_shared="auto", alpha=None, lags=[0, 1], cv=3).fit([x], [y])
    assert m.n_shared_ == 1 and m.encoders_[0].shape == (2, 1)
    Yh, rows = m.predict(x, return_rows=True)
    np.testing.assert_array_equal(rows, np.arange(1, 60))
    assert m.score([x], [y]) > 0.99


@pytest.mark.parametrize("const", [0.0, 3.0])
def test_private_components_with_degenerate_subject_behavior(const):
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(100, 5)) for _ in range(2)]
    Y = [rng.normal(size=(100, 2)) for _ in range(2)]
    Y[1][:, 1] = const  # a feature that does not vary in subject 1 (e.g. not tracked)
    ref = ShaReD(n_shared=2, alpha=1.0, cv=None, private=False).fit(X, Y)
    m = ShaReD(n_shared=2, alpha=1.0, cv=None, private=True).fit(X, Y)
    np.testing.assert_allclose(m.shared_axes_, ref.shared_axes_)
    for pc in m.private_:
        assert np.all(np.isfinite(pc.neural_explained))
        assert np.all((pc.neural_explained >= 0) & (pc.neural_explained <= 1))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 300),
    lags=st.lists(st.integers(0, 4), min_size=1, max_size=3, unique=True),
    keep=st.floats(0.05, 1.0),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_lag_embed_centres_the_same_by_runs_and_by_gather(n, lags, keep, shuffle, seed):
    # long runs of consecutive rows are copied as slices, scattered rows are gathered:
    # both give X[rows - lag] - center exactly
    from sharedrep.core.design import lag_embed

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n + 4, 3))
    c = rng.standard_normal(3)
    rows = np.flatnonzero(rng.random(n) < keep) + 4
    if shuffle:  # chunk order: blocks of consecutive rows out of time order
        blocks = np.array_split(rows, max(1, rows.size // 40))
        rows = np.concatenate([blocks[i] for i in rng.permutation(len(blocks))])
    got = lag_embed(X, lags, rows, center=c)
    lag_list = as_lags(lags)
    want = np.hstack([X[rows - lag] - c for lag in lag_list])
    np.testing.assert_array_equal(got, want)
