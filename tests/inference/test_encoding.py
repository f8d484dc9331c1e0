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
