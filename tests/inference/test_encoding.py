"""Unit-level encoding of the shared representation (sharedrep.inference.encoding)."""

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from sharedrep import ShaReD, simulate
from sharedrep.inference.encoding import unit_encoding
from sharedrep.inference.multitest import benjamini_hochberg

COLUMNS = ["unit", "r2_cv", "p_value", "q_value", "encodes", "structure_0", "structure_1"]


def sim(seed, **kw):
    params = dict(
        n_subjects=3,
        n_samples=800,
        n_units=30,
        n_behavior=6,
        n_shared=2,
        snr=0.3,
        lag=1,
        trial_length=10,
        seed=seed,
    )
    params.update(kw)
    return simulate(**params)


def test_sensitivity_and_false_discoveries_against_truth():
    sens, fdp = [], []
    for seed in range(3):
        d = sim(seed)
        m = ShaReD(n_shared=2, lags=2, alpha=1.0, cv=5).fit(d.neural, d.behavior, groups=d.groups)
        tables = unit_encoding(
            m, d.neural, d.behavior, d.groups, n_perm=99, random_state=seed, progress=False
        )
        for tab, truth in zip(tables, d.encoding_units, strict=True):
            e = tab["encodes"].to_numpy()
            sens.append(e[truth].mean())
            fdp.append((e & ~truth).sum() / max(e.sum(), 1))
    assert np.mean(sens) > 0.8, sens
    # BH at 5% with half the units null: expected FDP 2.5%; allow sampling noise
    assert np.mean(fdp) <= 0.1, fdp


def test_table_structure_and_attrs():
    d = sim(5, n_subjects=2, n_samples=400, n_units=10)
    m = ShaReD(n_shared=2, lags=2, alpha=1.0, cv=5).fit(d.neural, d.behavior, groups=d.groups)
    tables = unit_encoding(
        m, d.neural, d.behavior, d.groups, n_perm=19, fdr=0.1, random_state=0, progress=False
    )
    assert len(tables) == 2
    for s, tab in enumerate(tables):
        assert list(tab.columns) == COLUMNS
        assert len(tab) == 10 and tab["encodes"].dtype == bool
        assert tab.attrs["subject"] == s and tab.attrs["fdr"] == 0.1
        assert tab.attrs["lags"] == [0, 1, 2] and tab.attrs["n_perm"] == 19
        assert tab.attrs["exhaustive"] is False
        assert tab.attrs["structure_lag"] == 1  # the simulated lag
        p = tab["p_value"].to_numpy()
        assert np.all((p >= 1 / 20) & (p <= 1))
        assert np.allclose(tab["q_value"], false_discovery_control(p))
        assert np.array_equal(tab["encodes"], tab["q_value"] <= 0.1)
        if tab["encodes"].any():
            assert tab.attrs["p_threshold"] == tab.loc[tab["encodes"], "p_value"].max()
        st = tab[["structure_0", "structure_1"]].to_numpy()
        assert np.all(np.abs(st) <= 1)
    # encoding units have larger structure coefficients than the others
    tab, truth = tables[0], d.encoding_units[0]
    mag = np.hypot(tab["structure_0"], tab["structure_1"])
    assert mag[truth].mean() > 2 * mag[~truth].mean()
    # reproducible
    again = unit_encoding(
        m, d.neural, d.behavior, d.groups, n_perm=19, fdr=0.1, random_state=0, progress=False
    )
    assert np.array_equal(again[0]["p_value"], tables[0]["p_value"])


@pytest.mark.filterwarnings("ignore:subjects .* smallest possible p-value:UserWarning")
def test_unfitted_template_and_no_trial_ids_and_no_cross_fit():
    d = sim(7, n_subjects=2, n_samples=400, n_units=8)
    template = ShaReD(n_shared=2, lags=1, alpha=1.0, cv=5)
    a = unit_encoding(
        template, d.neural, d.behavior, None, n_perm=9, random_state=0, progress=False
    )
    assert not hasattr(template, "shared_axes_")
    with pytest.warns(UserWarning, match="cross_fit=True for inference"):
        b = unit_encoding(
            template,
            d.neural,
            d.behavior,
            d.groups,
            n_perm=9,
            random_state=0,
            cross_fit=False,
            gap=5,
            progress=False,
        )
    assert b[0].attrs["cross_fit"] is False and b[0].attrs["gap"] == 5
    # strongly encoding units are found either way
    for tabs in (a, b):
        r2 = tabs[0]["r2_cv"].to_numpy()
        assert r2[d.encoding_units[0]].mean() > r2[~d.encoding_units[0]].mean() + 0.1


def test_few_trials_use_every_shift_once():
    # 20 trials of 40 samples: whole-trial shifts of >= 80 samples are 17 distinct offsets;
    # all are used once (sampling them with replacement would fake p-values below 1/18)
    d = sim(3, n_subjects=2, trial_length=40)
    m = ShaReD(n_shared=2, lags=2, alpha=1.0, cv=5).fit(d.neural, d.behavior, groups=d.groups)
    with pytest.warns(UserWarning, match=r"smallest possible p-value is 1/18 .* > fdr"):
        tabs = unit_encoding(
            m, d.neural, d.behavior, d.groups, n_perm=99, random_state=0, progress=False
        )
    for tab in tabs:
        assert tab.attrs["n_perm"] == 17 and tab.attrs["exhaustive"] is True
        assert tab["p_value"].min() >= 1 / 18
        assert not tab["encodes"].any()  # 1/18 can never pass BH at 5%
    # shifting by samples instead of whole trials gives the test its resolution back
    tabs = unit_encoding(
        m,
        d.neural,
        d.behavior,
        d.groups,
        n_perm=99,
        random_state=0,
        whole_trials=False,
        progress=False,
    )
    assert tabs[0].attrs["n_perm"] == 99
    assert tabs[0]["encodes"].to_numpy()[d.encoding_units[0]].mean() > 0.8


@pytest.mark.filterwarnings("ignore:subjects .* smallest possible p-value:UserWarning")
def test_constant_unit_gets_nan_and_is_not_classified():
    d = sim(8, n_subjects=2, n_samples=400, n_units=8)
    neural = [x.copy() for x in d.neural]
    neural[0][:, 3] = 5.0
    with pytest.warns(UserWarning, match="constant"):
        m = ShaReD(n_shared=2, alpha=1.0, cv=5).fit(neural, d.behavior, groups=d.groups)
    tab = unit_encoding(m, neural, d.behavior, d.groups, n_perm=9, random_state=0, progress=False)[
        0
    ]
    row = tab.loc[3]
    assert np.isnan(row["r2_cv"]) and np.isnan(row["p_value"]) and not row["encodes"]
    assert np.isfinite(tab.drop(index=3)["p_value"]).all()


def test_no_cross_fit_reports_no_p_values():
    # with the full-data axes the shift null is invalid (the axes were fitted to the
    # observed alignment): r2_cv and structure only, no p-values, q-values or decisions
    d = sim(10, n_subjects=2, n_samples=300, n_units=6)
    m = ShaReD(n_shared=2, alpha=1.0, cv=5).fit(d.neural, d.behavior, groups=d.groups)
    with pytest.warns(UserWarning, match=r"cross_fit=False.*not valid.*use cross_fit=True"):
        tabs = unit_encoding(
            m, d.neural, d.behavior, d.groups, n_perm=9, cross_fit=False, progress=False
        )
    for tab in tabs:
        assert list(tab.columns) == COLUMNS
        assert tab["p_value"].isna().all() and tab["q_value"].isna().all()
        assert tab["encodes"].dtype == "boolean" and tab["encodes"].isna().all()
        with pytest.raises(ValueError):
            tab["encodes"].to_numpy(bool)  # an undecided unit is never read as True/False
        assert np.isfinite(tab["r2_cv"]).all() and np.isfinite(tab["structure_0"]).all()
        assert tab.attrs["n_perm"] == 0 and tab.attrs["exhaustive"] is False
        assert np.isnan(tab.attrs["p_threshold"]) and tab.attrs["min_shift"] is None
        assert "not valid" in tab.attrs["reason"]
    # the descriptive R^2 is the one computed before
    r2 = tabs[0]["r2_cv"].to_numpy()
    assert r2[d.encoding_units[0]].mean() > r2[~d.encoding_units[0]].mean()
    # cross-fitted: p-values, and no reason
    tabs = unit_encoding(
        m, d.neural, d.behavior, d.groups, n_perm=19, fdr=0.1, random_state=0, progress=False
    )
    assert tabs[0]["p_value"].notna().all() and tabs[0].attrs["reason"] == ""


def test_unit_table_counts_nan_nulls_as_extreme_and_keeps_nan_observed():
    from sharedrep.inference.encoding import _unit_table

    obs = np.array([0.5, np.nan, 0.5, 0.1])
    null = np.zeros((9, 4))
    null[:4, 0] = np.nan  # 4 shifts that could not be scored: as extreme as observed
    null[:, 3] = 0.2  # every shift beats the observed
    tab, p_threshold = _unit_table(obs, null, 0.5, np.zeros((4, 1)))
    np.testing.assert_allclose(tab["p_value"], [5 / 10, np.nan, 1 / 10, 1.0])
    assert np.isnan(tab.loc[1, "q_value"]) and not tab.loc[1, "encodes"]
    assert tab["encodes"].tolist() == [False, False, True, False]
    assert p_threshold == 0.1


def test_benjamini_hochberg():
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.5])
    q = benjamini_hochberg(p)
    assert np.isnan(q[2])
    assert np.allclose(q[[0, 1, 3, 4]], false_discovery_control(p[[0, 1, 3, 4]]))


def test_validation():
    d = sim(9, n_subjects=2, n_samples=400, n_units=8)
    m = ShaReD(n_shared=2, alpha=1.0, cv=5).fit(d.neural, d.behavior, groups=d.groups)
    with pytest.raises(ValueError, match="fdr"):
        unit_encoding(m, d.neural, d.behavior, fdr=1.5)
    with pytest.raises(ValueError, match="n_perm"):
        unit_encoding(m, d.neural, d.behavior, n_perm=0)
    with pytest.raises(ValueError, match="subject 1: neural has 7 units"):
        unit_encoding(m, [d.neural[0], d.neural[1][:, :7]], d.behavior, progress=False)
    with pytest.raises(ValueError, match="model has 2 subjects but 3"):
        unit_encoding(m, d.neural + d.neural[:1], d.behavior + d.behavior[:1], progress=False)
    with pytest.raises(ValueError, match="trials"):
        unit_encoding(m, d.neural, d.behavior, [np.repeat([0, 1], 200)] * 2, progress=False)
    with pytest.raises(ValueError, match="alpha"):
        unit_encoding(m, d.neural, d.behavior, alpha=-1)


def _explicit_cv_r2(X, designs, fold, train_masks, alpha):
    """Reference: fit and predict each fold explicitly (copies of the rows)."""
    from sharedrep.core.ridge import ridge_fit

    finite_x = np.all(np.isfinite(X), axis=1)
    N = X.shape[1]
    sse, sst, bad = np.zeros(N), np.zeros(N), np.zeros(N, dtype=bool)
    for f in range(len(train_masks)):
        D = designs[f]
        usable = np.all(np.isfinite(D), axis=1) & finite_x
        tr, te = usable & train_masks[f], usable & (fold == f)
        if tr.sum() < 3 or te.sum() < 2:
            continue
        Xtr, Xte = X[tr], X[te]
        pred = ridge_fit(D[tr], Xtr, alpha, constant="unit", solver="normal").predict(D[te])
        sse += np.sum((Xte - pred) ** 2, axis=0)
        sst += np.sum((Xte - Xte.mean(axis=0)) ** 2, axis=0)
        bad |= Xtr.std(axis=0) <= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - sse / np.where(sst > 0, sst, np.nan)
    r2[bad | (sst <= 0)] = np.nan
    return r2


@pytest.mark.parametrize("seed", range(4))
def test_moment_cv_r2_equals_explicit_fits(seed):
    # the unit R^2 from moments equals fitting and predicting each fold explicitly, with
    # rows missing from the design (lag windows) and from the activity, an offset far
    # larger than the signal, a silent unit and a unit constant but for one held-out row
    from sharedrep.inference.encoding import _activity, _cv_r2

    rng = np.random.default_rng(seed)
    T, N, d, cv = 600, 9, 4, 5
    fold = np.repeat(np.arange(cv), T // cv)
    train = [(fold != f) & (np.abs(np.arange(T) - T // cv * f) > 3) for f in range(cv)]
    designs = []
    for _ in range(cv):
        D = rng.standard_normal((T, d))
        D[rng.random(T) < 0.05] = np.nan
        designs.append(D)
    X = designs[0][:, :2].sum(axis=1, keepdims=True) * rng.uniform(0, 2, N) + rng.standard_normal(
        (T, N)
    )
    X = np.nan_to_num(X) + rng.uniform(-1e3, 1e3, N)
    X[:, 3] = 0.0  # silent
    X[:, 4] = 7.0
    X[np.flatnonzero(fold == 2)[0], 4] = 8.0  # constant in the training rows of fold 2
    X[rng.random(T) < 0.03, 5] = np.nan
    alpha = float(rng.choice([1e-3, 0.1, 10.0]))
    got = _cv_r2(_activity(X), designs, fold, train, alpha)
    ref = _explicit_cv_r2(X, designs, fold, train, alpha)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    assert np.isnan(got[3]) and np.isnan(got[4])
    ok = ~np.isnan(ref)
    assert ok.sum() >= N - 2
    np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-9, atol=1e-10)
