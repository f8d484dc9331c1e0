"""Near-constant behaviour features: per-feature R^2 is undefined (NaN), not -1e8.

A behaviour feature that does not vary in one animal (a lever channel that was not
connected, a keypoint that never moved: a constant plus sensor noise) makes
``R^2 = 1 - SSE/SST`` divide by a variance at noise level. ``evaluate`` and
``transfer_score`` must report such a score as undefined, say which animal and feature,
and leave the pooled R^2 of the animal's other features as it is.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from sharedrep import ShaReD
from sharedrep.inference.evaluate import _animal_table, evaluate
from sharedrep.inference.transfer import (
    NEAR_CONSTANT,
    check_calibration,
    near_constant_features,
    transfer_score,
)


def _flat(Y, features, offset, noise, seed=0):
    """A copy of ``Y`` whose ``features`` are ``offset`` plus Gaussian ``noise``."""
    rng = np.random.default_rng(seed)
    out = Y.copy()
    for j in features:
        out[:, j] = offset + noise * rng.standard_normal(Y.shape[0])
    return out


def _evaluate(d, Ys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = evaluate(
            ShaReD(n_shared=2, cv=3),
            d.neural,
            Ys,
            d.groups,
            calibration_fractions=(0.2, 0.5),
            n_splits=0,
            progress=False,
        )
    return ev, [str(w.message) for w in caught]


def test_evaluate_near_constant_feature_is_nan_with_a_warning(small):
    d = small
    Ys = list(d.behavior)
    # animal 1: feature 2 is an offset plus 1e-6 noise, feature 3 is noise about zero
    # (the estimator's own-units rule would not call it constant)
    Ys[1] = _flat(_flat(Ys[1], [2], 5.0, 1e-6), [3], 0.0, 1e-5, seed=1)
    ev, messages = _evaluate(d, Ys)
    for table in (ev.scores, ev.animal_scores):
        flat = (table["animal"] == 1) & table["feature"].isin(["feature 2", "feature 3"])
        assert table.loc[flat, "r2"].isna().all(), table.loc[flat]
        others = table.loc[~flat, "r2"]
        assert np.isfinite(others).all() and (others > -10).all(), table.loc[~flat]
    # the pooled R^2 keeps every feature's sums of squares
    pooled = ev.scores[ev.scores["feature"] == "pooled"]
    per = ev.scores[ev.scores["feature"] != "pooled"]
    keys = ["entry", "fraction", "method"]
    sums = per.groupby(keys)[["sse", "sst"]].sum()
    expect = 1.0 - sums["sse"] / sums["sst"]
    got = pooled.set_index(keys)["r2"].reindex(expect.index)
    np.testing.assert_allclose(got, expect, rtol=1e-12)
    # a warning names the animal, the recording and the features
    said = [m for m in messages if "held-out animal 1" in m and "do not vary" in m]
    assert said and all("'feature 2'" in m and "'feature 3'" in m for m in said), messages
    assert not any("'feature 0'" in m for m in said)
    assert said[0] in ev.warnings
    # the summary and comparisons are over the pooled R^2: animal 1 stays in
    assert (ev.summary["n_animals"] == 3).all()


def test_evaluate_animal_whose_behaviour_does_not_vary_is_left_out(small):
    d = small
    Ys = list(d.behavior)
    Ys[2] = _flat(Ys[2], range(4), 1.0, 1e-6)
    ev, messages = _evaluate(d, Ys)
    animal = ev.animal_scores
    assert animal.loc[animal["animal"] == 2, "r2"].isna().all()
    assert np.isfinite(animal.loc[animal["animal"] != 2, "r2"]).all()
    assert (ev.summary["n_animals"] == 2).all() and (ev.summary["n_animals_total"] == 3).all()
    left = [m for m in ev.notes if m.startswith("animal 2 is left out")]
    assert left and "does not vary on its test rows" in left[0], ev.notes


def test_animal_table_pools_recordings_where_one_varies():
    """An animal's per-feature R^2 is undefined only when it is in every recording."""
    base = dict(animal="a", fraction=0.5, method="ridge", feature="f")
    scores = pd.DataFrame(
        [
            dict(base, entry=0, r2=np.nan, sse=3.0, sst=1e-9),  # flat recording
            dict(base, entry=1, r2=0.5, sse=50.0, sst=100.0),
            dict(base, animal="b", entry=2, r2=np.nan, sse=2.0, sst=1e-9),
            dict(base, animal="b", entry=3, r2=np.nan, sse=4.0, sst=2e-9),
        ]
    )
    out = _animal_table(scores).set_index("animal")["r2"]
    assert out["a"] == pytest.approx(1.0 - 53.0 / (100.0 + 1e-9))
    assert np.isnan(out["b"])


def test_near_constant_rule():
    """Relative to the pooled variance (std 1e-3 of the pooled std), or constant to
    rounding in its own units (the estimator's rule); small units are not constant."""
    rng = np.random.default_rng(0)
    n = 400
    z = rng.standard_normal(n)
    z = (z - z.mean()) / z.std()
    Y = np.c_[
        2.0 * np.sqrt(NEAR_CONSTANT) * 0.9 * z,  # std 0.9e-3 of the pooled std 2: flat
        2.0 * np.sqrt(NEAR_CONSTANT) * 1.1 * z,  # std 1.1e-3: varies
        1e6 + 1e-6 * z,  # constant to rounding in its own units, pooled std tiny
        1e-9 * z,  # behaviour in small units (its pooled std is as small)
    ]
    scale = np.array([2.0, 2.0, 1e-7, 1e-9])
    np.testing.assert_array_equal(near_constant_features(Y, scale), [True, False, True, False])
    with pytest.raises(ValueError, match=r"scale.*\(4,\)"):
        near_constant_features(Y, scale[:3])


def test_check_calibration_flags_near_constant_features():
    rng = np.random.default_rng(0)
    cal = rng.standard_normal((200, 3))
    test = rng.standard_normal((100, 3))
    cal[:, 1] = 3.0 + 1e-7 * rng.standard_normal(200)
    # without the pooled scale, only exact constants are constant (as before): the feature
    # is reported for its range only
    with pytest.warns(UserWarning, match="different behaviour range"):
        msgs = check_calibration(cal, test, "x", ["x", "speed", "y"])
    assert len(msgs) == 1 and "speed (100%)" in msgs[0], msgs
    with pytest.warns(UserWarning, match=r"animal A: .*near-constant.*\['speed'\]"):
        msgs = check_calibration(cal, test, "animal A", ["x", "speed", "y"], scale=np.ones(3))
    # a near-constant feature is not also reported for its calibration range
    assert len(msgs) == 1, msgs


def test_transfer_subject_whose_behaviour_does_not_vary_gets_nan(small):
    d = small
    Ys = list(d.behavior)
    Ys[1] = _flat(Ys[1], range(4), 1.0, 1e-6)
    kw = dict(calibration_fractions=(0.5,), subjects=[1], progress=False)
    with pytest.warns(UserWarning) as record:
        df = transfer_score(ShaReD(n_shared=2, alpha=1.0, cv=3), d.neural, Ys, d.groups, **kw)
    assert df["r2"].isna().all(), df
    messages = [str(w.message) for w in record]
    assert any("held-out subject 1" in m and "undefined" in m for m in messages), messages


def _offset(Ys, offsets):
    """Copies of ``Ys`` whose feature ``j`` is standardised (unit std) plus ``offsets[j]``
    (None: left as it is), in every animal: a behaviour in absolute coordinates."""
    out = []
    for Y in Ys:
        Y = Y.copy()
        for j, c in enumerate(offsets):
            if c is not None:
                Y[:, j] = c + (Y[:, j] - Y[:, j].mean()) / Y[:, j].std()
        out.append(Y)
    return out


def test_near_constant_rule_ignores_an_offset():
    """A feature that varies (unit std) about a large offset is not constant: the
    own-units rule is about rounding of the values, not a mean square about zero."""
    rng = np.random.default_rng(0)
    for offset in (1e6, 3e5, -1e6, 1e9):
        Y = offset + rng.standard_normal((400, 2))
        np.testing.assert_array_equal(near_constant_features(Y, [1.0, 1e-3]), [False, False])
        # the same in other units: the rule does not depend on the unit of measurement
        np.testing.assert_array_equal(near_constant_features(1e-6 * Y, [1e-6, 1e-9]), [0, 0])
    # constant to rounding about the offset is still constant, whatever the pooled scale
    flat = 1e6 + 1e-9 * rng.standard_normal((400, 1))
    assert near_constant_features(flat, [1e-9]).all()
    assert near_constant_features(np.full((5, 1), 3e5), [0.0]).all()


def test_evaluate_feature_with_a_large_offset_is_scored(small):
    d = small
    Ys = _offset(d.behavior, [1e6, 3e5, None, None])
    ev, messages = _evaluate(d, Ys)
    assert not any("do not vary" in m for m in messages), messages
    for table in (ev.scores, ev.animal_scores):
        r2 = table.loc[table["method"] != "constant", "r2"]
        assert np.isfinite(r2).all() and (r2 > -10).all(), table
    assert (ev.summary["n_animals"] == 3).all()


def test_transfer_feature_with_a_large_offset_is_scored(small):
    d = small
    Ys = _offset(d.behavior, [1e6, 3e5, 1e6, 3e5])
    kw = dict(calibration_fractions=(0.5,), subjects=[1], progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = transfer_score(ShaReD(n_shared=2, alpha=1.0, cv=3), d.neural, Ys, d.groups, **kw)
    messages = [str(w.message) for w in caught]
    assert not any("undefined" in m or "near-constant" in m for m in messages), messages
    assert np.isfinite(df["r2"]).all() and (df["r2"] > -10).all(), df
