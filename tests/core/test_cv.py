"""Cross-validation folds (:mod:`sharedrep.core.cv`)."""

import numpy as np
import pytest
from sklearn.model_selection import GroupKFold

from sharedrep.core.cv import block_folds


def _sklearn_folds(groups: np.ndarray, n_folds: int, random_state) -> np.ndarray:
    shuffle = dict(shuffle=True, random_state=random_state) if random_state is not None else {}
    fold = np.full(groups.size, -1)
    splits = GroupKFold(n_splits=n_folds, **shuffle).split(
        np.zeros((groups.size, 1)), groups=groups
    )
    for f, (_, test) in enumerate(splits):
        fold[test] = f
    return fold


def _groups(rng, strings: bool) -> np.ndarray:
    n_trials = int(rng.integers(6, 40))
    sizes = rng.integers(1, 30, size=n_trials)  # unequal trials, ties among them
    ids = rng.permutation(n_trials) * 3 + 7
    groups = np.repeat(ids, sizes)
    return np.array([f"trial-{g:03d}" for g in groups]) if strings else groups


@pytest.mark.parametrize("random_state", [None, 0, 12345])
@pytest.mark.parametrize("strings", [False, True])
def test_balanced_trial_folds_are_group_kfolds(random_state, strings):
    # the size-balanced and the seeded assignments are GroupKFold's, on trials of unequal
    # (and tied) sizes, in any order, with integer or string ids
    rng = np.random.default_rng(0 if random_state is None else random_state)
    for _ in range(25):
        groups = _groups(rng, strings)
        for n_folds in (2, 3, 5):
            ours = block_folds(
                groups.size, n_folds, groups, trials="balanced", random_state=random_state
            )
            assert np.array_equal(ours, _sklearn_folds(groups, n_folds, random_state))
            # whole trials per fold, every fold used
            for g in np.unique(groups):
                assert np.unique(ours[groups == g]).size == 1
            assert set(ours.tolist()) == set(range(n_folds))


@pytest.mark.parametrize("trials", ["balanced", "contiguous"])
def test_missing_trial_ids_are_refused(trials):
    # a NaN trial id would silently make its samples one trial of their own
    groups = np.repeat(np.arange(10.0), 5)
    groups[7] = np.nan
    with pytest.raises(ValueError, match="not finite.*index 7"):
        block_folds(groups.size, 3, groups, trials=trials)
