"""Subject bootstrap (sharedrep.inference.bootstrap)."""

import numpy as np
import pytest
from scipy.linalg import subspace_angles

from sharedrep import ShaReD, simulate
from sharedrep.inference.bootstrap import bootstrap_subjects

FAST = dict(alpha=1.0, cv=5, private=False)


# --------------------------------------------------------------------------- bootstrap
def test_bootstrap_ci_contains_truth():
    d = simulate(
        n_subjects=8,
        n_samples=600,
        n_units=15,
        n_behavior=6,
        n_shared=1,
        snr=0.5,
        trial_length=30,
        seed=11,
    )
    model = ShaReD(n_shared=1, alpha=0.1, cv=5, private=False)
    b = bootstrap_subjects(
        model, d.neural, d.behavior, d.groups, n_boot=60, random_state=0, progress=False
    )
    full = b.model
    # truth in the full fit's standardised units, normalised like the fitted axis
    a = d.shared_axes[:, 0] * full.behavior_scale_
    a = a / np.sqrt(a @ full.metric_ @ a)
    a *= np.sign(a @ full.metric_ @ b.axes[:, 0])
    inside = (b.axes_ci[0, :, 0] <= a) & (a <= b.axes_ci[1, :, 0])
    assert inside.mean() >= 5 / 6, (b.axes_ci[:, :, 0], a)
    assert b.axes_boot.shape == (60, 6, 1) and b.score_boot.shape == (60, 1)
    assert b.score_ci[0, 0] <= b.score[0] <= b.score_ci[1, 0]
    assert b.score_ci[0, 0] > 0.1
    assert set(b.summary()["quantity"]) >= {"r2_heldout", "loading:feature_0"}


def test_bootstrap_alignment_removes_rotation():
    # two equal-variance shared dimensions: the axes are only defined up to rotation, so
    # without alignment the loadings would scatter; aligned, they stay close to the full fit
    d = simulate(
        n_subjects=6,
        n_samples=500,
        n_units=15,
        n_behavior=6,
        n_shared=2,
        snr=1.0,
        trial_length=25,
        seed=2,
    )
    b = bootstrap_subjects(
        ShaReD(n_shared=2, **FAST),
        d.neural,
        d.behavior,
        d.groups,
        n_boot=20,
        random_state=1,
        progress=False,
    )
    err = np.abs(b.axes_boot - b.axes[None]).max(axis=(1, 2))
    assert np.median(err) < 0.5 * np.abs(b.axes).max()


def test_bootstrap_validation(small):
    d = small
    m = ShaReD(n_shared=1, **FAST)
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_subjects(m, d.neural[:1], d.behavior[:1], n_boot=5)
    with pytest.raises(ValueError, match="ci"):
        bootstrap_subjects(m, d.neural, d.behavior, ci=1.5)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_subjects(m, d.neural, d.behavior, n_boot=1)
    with pytest.warns(UserWarning, match="unreliable"):
        b = bootstrap_subjects(
            m, d.neural, d.behavior, d.groups, n_boot=3, random_state=0, progress=False
        )
    assert b.subjects.shape == (3, 3)


def test_bootstrap_subject_weights_follow_the_drawn_subjects(small):
    d = small
    w = np.array([3.0, 1.0, 0.5])
    m = ShaReD(n_shared=1, subject_weights=w, **FAST)
    with pytest.warns(UserWarning, match="unreliable"):  # 3 subjects
        b = bootstrap_subjects(
            m, d.neural, d.behavior, d.groups, n_boot=4, random_state=0, progress=False
        )
    for draw, V in zip(b.subjects, b.axes_boot, strict=True):
        alone = ShaReD(n_shared=1, subject_weights=w[draw], **FAST).fit(
            [d.neural[i] for i in draw], [d.behavior[i] for i in draw], [d.groups[i] for i in draw]
        )
        expected = (b.model.behavior_scale_ / alone.behavior_scale_) * alone.shared_axes_[:, 0]
        assert np.degrees(subspace_angles(V, expected[:, None]))[0] < 1e-6


def test_bootstrap_resamples_only_subjects_of_positive_weight():
    # a subject of weight 0 takes no part in the model: it is never drawn (before, a draw
    # of it alone -- seeds 20 and 93 with 6 draws -- had no model and crashed the bootstrap)
    d = simulate(
        n_subjects=4, n_samples=300, n_units=8, n_behavior=4, n_shared=1, trial_length=15, seed=0
    )
    w = [1.0, 1.0, 0.0, 1.0]
    m = ShaReD(n_shared=1, subject_weights=w, **FAST)
    for seed in (0, 1, 20, 93):
        with pytest.warns(UserWarning, match="only 3 subjects"):
            b = bootstrap_subjects(
                m, d.neural, d.behavior, d.groups, n_boot=6, random_state=seed, progress=False
            )
        assert b.subjects.shape == (6, 3)
        assert not np.isin(b.subjects, 2).any()
        assert np.all(np.isfinite(b.axes_boot)) and np.all(np.isfinite(b.score_boot))
    one = ShaReD(n_shared=1, subject_weights=[0.0, 1.0, 0.0, 0.0], **FAST)
    with pytest.raises(ValueError, match="positive subject_weights.*need at least 2, got 1"):
        bootstrap_subjects(one, d.neural, d.behavior, d.groups, n_boot=4, progress=False)
