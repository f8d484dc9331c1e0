"""Group comparison by relabelling subjects (sharedrep.inference.groups)."""

import numpy as np
import pytest

from sharedrep import ShaReD, simulate
from sharedrep.inference.groups import compare_groups

FAST = dict(alpha=1.0, cv=5, private=False)


# --------------------------------------------------------------------------- groups
@pytest.fixture(scope="module")
def eight():
    return simulate(
        n_subjects=8,
        n_samples=400,
        n_units=12,
        n_behavior=5,
        n_shared=1,
        snr=0.5,
        trial_length=20,
        seed=21,
    )


def _data(d, idx, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    neural = []
    for i in idx:
        X = d.neural[i]
        neural.append(X + noise * X.std(axis=0) * rng.standard_normal(X.shape))
    return neural, [d.behavior[i] for i in idx], [d.groups[i] for i in idx]


def test_compare_groups_null_not_detected(eight):
    m = ShaReD(n_shared=1, **FAST)
    res = compare_groups(
        m, _data(eight, range(4)), m, _data(eight, range(4, 8)), n_perm=100, progress=False
    )
    assert res.exact and res.n_perm == 70  # C(8, 4) splits enumerated
    assert res.p_value_mean > 0.05
    assert res.p_similarity > 0.05 and res.p_subspace > 0.05
    assert res.similarity > 0.8


def test_compare_groups_detects_score_difference(eight):
    m = ShaReD(n_shared=1, **FAST)
    res = compare_groups(
        m,
        _data(eight, range(4)),
        m,
        _data(eight, range(4, 8), noise=2.0),
        n_perm=100,
        progress=False,
    )
    assert res.difference[0] > 0.1
    assert res.p_value_mean <= 2 / 70 + 1e-12 and res.p_values[0] <= 0.05
    df = res.summary()
    assert list(df["dimension"]) == ["0", "mean"]


def test_compare_groups_detects_subspace_difference(eight):
    other = simulate(
        n_subjects=4,
        n_samples=400,
        n_units=12,
        n_behavior=5,
        n_shared=1,
        snr=0.5,
        trial_length=20,
        seed=99,
    )  # different shared axis
    m = ShaReD(n_shared=1, **FAST)
    res = compare_groups(
        m, _data(eight, range(4)), m, other, n_perm=20, random_state=0, progress=False
    )
    assert not res.exact and res.n_perm == 20
    assert res.p_subspace <= 1 / 21 + 1e-12
    assert res.angles[0] > 20 and res.similarity < 0.9


def test_compare_groups_null_fits_keep_the_observed_number_of_dimensions(eight, monkeypatch):
    from sharedrep.inference import groups

    seen = []
    real = groups._quiet_fit

    def spy(model, *args):
        seen.append(model.get_params()["n_shared"])
        return real(model, *args)

    monkeypatch.setattr(groups, "_quiet_fit", spy)
    m = ShaReD(n_shared="auto", max_shared=3, **FAST)
    res = compare_groups(
        m, _data(eight, range(4)), m, _data(eight, range(4, 8)), n_perm=5, progress=False
    )
    k = len(res.angles)
    null_fits = seen[8:]  # after the 8 single-subject fits of the subspace test
    assert len(null_fits) == 2 * res.n_perm and set(null_fits) == {k}


def test_compare_groups_validation(eight):
    m = ShaReD(n_shared=1, **FAST)
    a = _data(eight, range(4))
    with pytest.raises(ValueError, match="same model specification"):
        compare_groups(m, a, ShaReD(n_shared=1, alpha=2.0, cv=5, private=False), a)
    with pytest.raises(ValueError, match="behaviour features"):
        compare_groups(m, a, m, (a[0], [y[:, :3] for y in a[1]]))
    with pytest.raises(ValueError, match="at least 2 subjects"):
        compare_groups(m, _data(eight, [0]), m, a)
    with pytest.raises(TypeError, match="tuple"):
        compare_groups(m, a, m, "data")
    weighted = ShaReD(n_shared=1, subject_weights=[1, 1, 2, 2], **FAST)
    with pytest.raises(ValueError, match="subject_weights=None"):
        compare_groups(weighted, a, weighted, a)


def test_compare_groups_omits_samples_like_the_fits(eight):
    # a non-finite behaviour sample under nan_policy="omit" is the same as dropping it
    m = ShaReD(n_shared=1, nan_policy="omit", **FAST)
    neural, behavior, groups = _data(eight, range(8))
    with_nan = [Y.copy() for Y in behavior]
    with_nan[2][40, 0] = np.nan
    keep = np.arange(behavior[2].shape[0]) != 40
    dropped = (
        [X[keep] if s == 2 else X for s, X in enumerate(neural)],
        [Y[keep] if s == 2 else Y for s, Y in enumerate(behavior)],
        [g[keep] if s == 2 else g for s, g in enumerate(groups)],
    )

    def compare(data):
        X, Y, g = data
        return compare_groups(
            m,
            (X[:4], Y[:4], g[:4]),
            m,
            (X[4:], Y[4:], g[4:]),
            n_perm=10,
            random_state=0,
            progress=False,
        )

    a, b = compare((neural, with_nan, groups)), compare(dropped)
    assert np.isfinite(a.similarity)
    np.testing.assert_allclose(a.similarity, b.similarity, rtol=1e-9)
    np.testing.assert_allclose(a.difference, b.difference, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(a.p_values, b.p_values)
