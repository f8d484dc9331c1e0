"""Leave-one-subject-out transfer (sharedrep.inference.transfer)."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sharedrep import ShaReD, simulate
from sharedrep.core.design import lag_embed
from sharedrep.core.estimator import DEFAULT_ALPHAS
from sharedrep.inference.transfer import ridge_decoder, transfer_score


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
    assert len(df) == 5 * 3 * 2
    assert set(df["method"]) == {"shared", "ridge"}
    assert (df["calibration_unit"] == "trials").all()
    wide = df.pivot_table(index=["subject", "fraction"], columns="method", values="r2")
    gain = (wide["shared"] - wide["ridge"]).unstack("fraction")
    # small calibration sets: the frozen axes help in every held-out subject
    assert (gain[0.05] > 0).all() and (gain[0.1] > 0).all(), gain
    assert gain[0.05].mean() > 0.1
    # with the most calibration data both decoders are good
    assert wide.xs(0.5, level="fraction").min().min() > 0.1
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
    assert list(df["subject"]) == [0, 0]
    assert (df["calibration_unit"] == "samples").all()
    assert df.attrs["target"] == "latents"
    assert (df["r2"] > 0.3).all()


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
    assert np.allclose(df["p_value"], 1 / 10)  # decoding far above chance
    assert df.attrs["n_perm"] == 9
    again = transfer_score(m, d.neural, d.behavior, d.groups, random_state=0, **kw)
    assert np.array_equal(df["p_value"], again["p_value"])
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
