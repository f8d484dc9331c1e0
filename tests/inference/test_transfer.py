"""Leave-one-subject-out transfer (sharedrep.inference.transfer)."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sharedrep import ShaReD, simulate
from sharedrep.core.design import lag_embed
from sharedrep.core.estimator import DEFAULT_ALPHAS
from sharedrep.inference.permutation import circular_shift_candidates
from sharedrep.inference.transfer import (
    RANGE_SHARE,
    _constant_features,
    _warn_below_constant,
    check_calibration,
    ridge_decoder,
    transfer_score,
)


@pytest.fixture(scope="module")
def data():
    # 6 behaviour features of which 2 shared dimensions are encoded
    return simulate(
        n_subjects=5,
        n_samples=1000,
        n_units=30,
        n_behavior=6,
        n_shared=2,
        snr=0.5,
        trial_length=25,
        shared_variance=1.0,
        behavior_anisotropy=1.0,
        seed=0,
    )


def test_shared_transfer_beats_single_subject_decoder_with_little_calibration(data):
    d = data
    df = transfer_score(
        ShaReD(n_shared=2, cv=5),
        d.neural,
        d.behavior,
        d.groups,
        calibration_fractions=(0.05, 0.1, 0.5),
        progress=False,
    )
    assert len(df) == 5 * 3 * 3
    assert set(df["method"]) == {"shared", "ridge", "constant"}
    assert (df["calibration_unit"] == "trials").all()
    wide = df.pivot_table(index=["subject", "fraction"], columns="method", values="r2")
    gain = (wide["shared"] - wide["ridge"]).unstack("fraction")
    # small calibration sets: the frozen axes help in every held-out subject
    assert (gain[0.05] > 0).all() and (gain[0.1] > 0).all(), gain
    assert gain[0.05].mean() > 0.1
    # with the most calibration data both decoders are good
    at_half = wide.xs(0.5, level="fraction")
    assert at_half[["shared", "ridge"]].min().min() > 0.1
    # ... and both beat the constant prediction of the calibration mean
    assert (at_half["ridge"] > at_half["constant"]).all()
    assert df.loc[(df["fraction"] == 0.5) & (df["method"] != "constant"), "above_constant"].all()
    # n_calibration counts trials: 40 trials per subject
    assert sorted(df["n_calibration"].unique()) == [2, 4, 20]
    assert (df["n_test"] == 12).all()
    assert df["p_value"].isna().all()


def test_no_trial_ids_and_latent_target(data):
    d = data.subset([0, 1, 2])
    df = transfer_score(
        ShaReD(n_shared=2, alpha=1.0, cv=5),
        d.neural,
        d.behavior,
        None,
        calibration_fractions=(0.2,),
        subjects=[0],
        target="latents",
        progress=False,
    )
    assert list(df["subject"]) == [0, 0, 0]
    assert (df["calibration_unit"] == "samples").all()
    assert df.attrs["target"] == "latents"
    assert (df.loc[df["method"] != "constant", "r2"] > 0.3).all()


def test_ridge_decoder_matches_sklearn_ridge():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5)) * [1, 2, 3, 4, 5] + 7
    Y = X @ rng.standard_normal((5, 2)) + 0.5 * rng.standard_normal((200, 2))
    dec = ridge_decoder(X, Y, groups=np.repeat(np.arange(10), 20), lags=[0, 1])
    assert dec.cv_mse_.shape == (15,) and dec.alpha_ in DEFAULT_ALPHAS
    Yh, rows = dec.predict(X, np.repeat(np.arange(10), 20))
    assert rows.size == 190  # one row lost per trial to lag 1
    Z = lag_embed(X, [0, 1], rows)
    ref = make_pipeline(StandardScaler(), Ridge(alpha=dec.alpha_ * rows.size)).fit(Z, Y[rows])
    assert np.allclose(Yh, ref.predict(Z))
    with pytest.raises(ValueError, match="lag windows"):
        ridge_decoder(X[:3], Y[:3], lags=2)


def test_transfer_permutation_p_values(data):
    d = data.subset([0, 1, 2])
    kw = dict(calibration_fractions=(0.5,), subjects=[0], n_perm=9, progress=False)
    m = ShaReD(n_shared=2, alpha=1.0, cv=5)
    df = transfer_score(m, d.neural, d.behavior, d.groups, random_state=0, **kw)
    decoders = df[df["method"] != "constant"]
    assert np.allclose(decoders["p_value"], 1 / 10)  # decoding far above chance
    assert df.loc[df["method"] == "constant", "p_value"].isna().all()
    assert (df["n_shifts"] == 9).all() and df.attrs["n_shifts"] == {0: 9}
    assert df.attrs["n_perm"] == 9
    again = transfer_score(m, d.neural, d.behavior, d.groups, random_state=0, **kw)
    assert np.array_equal(df["p_value"], again["p_value"], equal_nan=True)
    with pytest.raises(ValueError, match="min_shift"):
        transfer_score(m, d.neural, d.behavior, d.groups, min_shift=900, **kw)


def test_transfer_subject_weights_follow_the_training_subjects(data):
    d = data.subset([0, 1, 2])
    kw = dict(calibration_fractions=(0.2,), subjects=[0], progress=False)

    def shared_r2(weights):
        m = ShaReD(n_shared=2, alpha=1.0, cv=5, subject_weights=weights)
        df = transfer_score(m, d.neural, d.behavior, d.groups, **kw)
        return df.loc[df["method"] == "shared", "r2"].to_numpy()

    # subject 0 is held out: its weight plays no part, and weights act up to a factor
    a, b, other = shared_r2([5, 1, 2]), shared_r2([9, 2, 4]), shared_r2([1, 2, 1])
    np.testing.assert_allclose(a, b, rtol=1e-9)
    assert not np.allclose(a, other, rtol=1e-6)


def test_transfer_with_missing_samples_under_omit(data):
    d = data.subset([0, 1, 2])
    m = ShaReD(n_shared=2, alpha=1.0, cv=5, nan_policy="omit")
    kw = dict(calibration_fractions=(0.3,), subjects=[0], progress=False)
    clean = transfer_score(m, d.neural, d.behavior, d.groups, **kw)["r2"].to_numpy()
    Y = [B.copy() for B in d.behavior]
    Y[0][990, 0] = np.nan  # in the test block
    X = [A.copy() for A in d.neural]
    X[0][5, 1] = np.nan  # in the calibration block
    for neural, behavior in ((d.neural, Y), (X, d.behavior), (X, Y)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # a NaN cell is no constant feature
            r2 = transfer_score(m, neural, behavior, d.groups, **kw)["r2"].to_numpy()
        assert np.all(np.isfinite(r2))
        np.testing.assert_allclose(r2, clean, atol=0.02)
    with pytest.raises(ValueError, match="behavior contains NaN"):
        ridge_decoder(d.neural[0], Y[0])


def test_transfer_validation(data):
    d = data.subset([0, 1])
    m = ShaReD(n_shared=2, alpha=1.0, cv=5)
    with pytest.raises(ValueError, match="exceeds 1"):
        transfer_score(m, d.neural, d.behavior, d.groups, calibration_fractions=(0.8,))
    with pytest.raises(ValueError, match="calibration_fractions"):
        transfer_score(m, d.neural, d.behavior, d.groups, calibration_fractions=(0.0,))
    with pytest.raises(ValueError, match="need >= 2"):
        transfer_score(m, d.neural[:1], d.behavior[:1])
    with pytest.raises(ValueError, match="target"):
        transfer_score(m, d.neural, d.behavior, target="spikes")
    with pytest.raises(IndexError, match="subject 5"):
        transfer_score(m, d.neural, d.behavior, subjects=[5])
    with pytest.raises(ValueError, match="subject 1: behavior has 5 features"):
        transfer_score(m, d.neural, [d.behavior[0], d.behavior[1][:, :5]])
    with pytest.raises(ValueError, match="held-out subject 0"):
        # 2 calibration samples cannot hold a window of lags 0..5
        transfer_score(
            ShaReD(n_shared=2, alpha=1.0, cv=5, lags=5),
            d.neural,
            d.behavior,
            None,
            calibration_fractions=(0.002,),
            progress=False,
        )


def test_constant_baseline_matches_an_independent_computation(data):
    d = data.subset([0, 1, 2])
    m = ShaReD(n_shared=2, alpha=1.0, cv=5)
    df = transfer_score(
        m,
        d.neural,
        d.behavior,
        d.groups,
        calibration_fractions=(0.2,),
        subjects=[0],
        progress=False,
    )
    # 40 trials of 25 samples: calibration = first 8 trials, test = last 12 trials
    Y = d.behavior[0]
    cal, test = Y[: 8 * 25], Y[-12 * 25 :]
    scale = ShaReD(n_shared=2, alpha=1.0, cv=5).fit(d.neural[1:], d.behavior[1:]).behavior_scale_
    sse = np.sum(((test - cal.mean(axis=0)) / scale) ** 2)
    sst = np.sum(((test - test.mean(axis=0)) / scale) ** 2)
    const = df.loc[df["method"] == "constant", "r2"].item()
    np.testing.assert_allclose(const, 1 - sse / sst, rtol=1e-10)
    for row in df[df["method"] != "constant"].itertuples():
        assert row.above_constant == (row.r2 > const)


def test_transfer_warns_on_too_few_shifts(data):
    d = data.subset([0, 1, 2])
    # shifts of >= 400 samples at trial starts (every 25 samples) of a 1000-sample recording
    n_available = circular_shift_candidates(1000, d.groups[0], 400).size
    assert n_available == len(range(400, 601, 25))
    m = ShaReD(n_shared=2, alpha=1.0, cv=5)
    kw = dict(calibration_fractions=(0.5,), subjects=[0], min_shift=400, progress=False)
    with pytest.warns(UserWarning) as record:
        df = transfer_score(m, d.neural, d.behavior, d.groups, n_perm=20, **kw)
    messages = [str(w.message) for w in record]
    assert any(f"only {n_available} distinct circular shifts" in msg for msg in messages)
    assert any("cannot reach significance" in msg for msg in messages)
    assert (df["n_shifts"] == n_available).all()
    assert df.attrs["n_shifts"] == {0: n_available}
    p = df.loc[df["method"] != "constant", "p_value"].to_numpy()
    np.testing.assert_allclose(p * (1 + n_available), np.round(p * (1 + n_available)))
    # enough shifts and a reachable level: no warning about the test
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        transfer_score(m, d.neural, d.behavior, d.groups, n_perm=5, level=0.2, **kw)


def test_transfer_warns_on_constant_calibration_features(data):
    d = data.subset([0, 1, 2])
    Y = [B.copy() for B in d.behavior]
    Y[0][: 10 * 25, 3] = 1.5  # feature 3 constant over the calibration trials (first 20 %)
    m = ShaReD(n_shared=2, alpha=1.0, cv=5)
    kw = dict(calibration_fractions=(0.2,), subjects=[0], progress=False)
    with pytest.warns(
        UserWarning, match=r"subject 0.*constant behaviour features \['feature 3'\]"
    ):
        transfer_score(m, d.neural, Y, d.groups, **kw)


def test_check_calibration_flags_a_different_range():
    rng = np.random.default_rng(0)
    cal = rng.standard_normal((200, 3))
    test = rng.standard_normal((100, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert check_calibration(cal, test, "x") == []  # same distribution: no warning
    test[: int(100 * (RANGE_SHARE + 0.1)), 1] += 50.0  # 35 % of rows far outside
    with pytest.warns(UserWarning, match=r"animal A: .*different behaviour range.*speed \(35%\)"):
        msgs = check_calibration(cal, test, "animal A", names=["x", "speed", "y"])
    assert len(msgs) == 1


def test_warns_when_both_decoders_are_below_the_constant():
    observed = np.array([[0.5, 0.4, -0.1], [-0.3, -0.2, -0.1]])  # shared, ridge, constant
    with pytest.warns(UserWarning, match="fraction 0.5: neither the shared decoder") as rec:
        _warn_below_constant(observed, [0.1, 0.5], 2)
    assert len(rec) == 1 and "held-out subject 2" in str(rec[0].message)


def test_constant_features_rule_is_scale_free():
    """Behaviour in small units varies; a column of one value (any offset) does not."""
    rng = np.random.default_rng(1)
    Y = np.c_[1e-13 * rng.standard_normal(50), np.full(50, 1e8), np.zeros(50)]
    assert _constant_features(Y) == [1, 2]


def test_transfer_undefined_r2_gets_no_p_value(data):
    # subject 1's behaviour is constant: R^2 is undefined (NaN) for every decoder, and a
    # NaN must not be reported with the smallest p-value (a NaN >= null is always False)
    d = data.subset([0, 1, 2])
    Y = [B.copy() for B in d.behavior]
    Y[1][:] = 1.0
    m = ShaReD(n_shared=2, alpha=1.0, cv=5)
    kw = dict(calibration_fractions=(0.5,), subjects=[1], n_perm=9, progress=False)
    with pytest.warns(UserWarning) as record:
        df = transfer_score(m, d.neural, Y, d.groups, random_state=0, **kw)
    assert df["r2"].isna().all()
    assert df["p_value"].isna().all()
    assert not df["above_constant"].any()
    messages = [str(w.message) for w in record]
    undefined = (
        "held-out subject 1, calibration fraction 0.5: the R^2 of the shared and ridge "
        "decoders is undefined"
    )
    assert any(undefined in m and "not tested (p_value NaN)" in m for m in messages), messages


def test_transfer_nan_null_r2_counts_as_extreme(data, monkeypatch):
    # shifted recordings whose R^2 is undefined (NaN) count as at least as extreme as the
    # observed R^2: they must not make it look rarer
    import sharedrep.inference.transfer as tr

    observed = np.array([[0.2, 0.1, 0.0]])  # shared, ridge, constant
    calls = []

    def fake_scores(*args, check=False):
        if check:
            return observed
        calls.append(None)
        # odd shifts: undefined R^2; even shifts: far below the observed
        return np.full((1, 3), np.nan if len(calls) % 2 else -1.0)

    monkeypatch.setattr(tr, "_fraction_scores", fake_scores)
    d = data.subset([0, 1, 2])
    df = transfer_score(
        ShaReD(n_shared=2, alpha=1.0, cv=5),
        d.neural,
        d.behavior,
        d.groups,
        calibration_fractions=(0.5,),
        subjects=[0],
        n_perm=9,
        level=0.5,
        random_state=0,
        progress=False,
    )
    assert len(calls) == 9
    decoders = df[df["method"] != "constant"]
    np.testing.assert_allclose(decoders["p_value"], (1 + 5) / (1 + 9))  # 5 NaN nulls
    assert df.loc[df["method"] == "constant", "p_value"].isna().all()
