"""Resampling refits reuse each subject's reduced statistics (bootstrap, relabelling).

The reuse must not change what the procedures report beyond rounding (the refits take
the reduced path, equal to the default one to ~1e-14), must make the refit of the
observed split give the observed numbers bit for bit, and must compute each subject once.
"""

import numpy as np
import pytest

from sharedrep import ShaReD, simulate
from sharedrep.core.backends import _reuse
from sharedrep.inference import _resampling
from sharedrep.inference.bootstrap import bootstrap_subjects
from sharedrep.inference.groups import compare_groups


@pytest.fixture(scope="module")
def six():
    return simulate(
        n_subjects=6, n_samples=400, n_units=(8, 12), n_behavior=4, n_shared=1,
        trial_length=20, snr=0.5, seed=5,
    )  # fmt: skip


def _count_computed(monkeypatch) -> list:
    computed = []
    original = _reuse.reused

    def spy(X, Y, g, opts, alphas, keep_totals, compute):
        def counted():
            computed.append(1)
            return compute()

        return original(X, Y, g, opts, alphas, keep_totals, counted)

    monkeypatch.setattr(_reuse, "reused", spy)
    return computed


def _halves(d):
    a = (d.neural[:3], d.behavior[:3], d.groups[:3])
    b = (d.neural[3:], d.behavior[3:], d.groups[3:])
    return a, b


def test_relabelling_reuses_subjects_and_matches_refits_without_reuse(six, monkeypatch):
    m = ShaReD(n_shared=1, cv=4, private=False, random_state=0)
    a, b = _halves(six)
    computed = _count_computed(monkeypatch)
    res = compare_groups(m, a, m, b, n_perm=100, progress=False)
    assert res.exact and res.n_perm == 20  # C(6, 3) splits, the observed one among them
    # observed: 2 group fits + 6 single-subject fits; then 20 x 2 refits, none computed
    assert len(computed) == 6
    # the observed split's refit gives the observed numbers bit for bit
    assert np.any(np.all(res.null_difference == res.difference, axis=1))
    assert np.any(res.null_similarity == res.similarity)

    monkeypatch.setattr(_resampling, "_reuses_subjects", lambda model: False)
    plain = compare_groups(m, a, m, b, n_perm=100, progress=False, n_jobs=2)
    np.testing.assert_allclose(res.difference, plain.difference, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.null_difference, plain.null_difference, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.null_similarity, plain.null_similarity, rtol=1e-8)
    for key in ("p_values", "p_similarity", "p_subspace"):
        np.testing.assert_array_equal(getattr(res, key), getattr(plain, key))


def test_bootstrap_reuses_subjects_and_matches_refits_without_reuse(six, monkeypatch):
    m = ShaReD(n_shared="auto", cv=4, random_state=0)
    computed = _count_computed(monkeypatch)
    res = bootstrap_subjects(m, six.neural, six.behavior, six.groups, n_boot=8,
                             random_state=1, progress=False)  # fmt: skip
    # each subject once, plus at most one more per subject drawn twice in one refit
    # whose two draws started side by side
    assert 6 <= len(computed) <= 12 < 6 * 9
    monkeypatch.setattr(_resampling, "_reuses_subjects", lambda model: False)
    plain = bootstrap_subjects(m, six.neural, six.behavior, six.groups, n_boot=8,
                               random_state=1, progress=False)  # fmt: skip
    np.testing.assert_array_equal(res.subjects, plain.subjects)
    np.testing.assert_allclose(res.axes_boot, plain.axes_boot, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(res.score_boot, plain.score_boot, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.score, plain.score, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("low_memory, jobs", [("auto", 1), ("strict", 2)])
def test_refits_run_here_only_when_subjects_are_kept(six, monkeypatch, low_memory, jobs):
    """Strict templates keep no subject (totals are read again): their refits stay in
    joblib workers with the n_jobs asked for; the others run here."""
    seen = []
    real = _resampling._progress_map

    def spy(tasks, n_jobs, progress, description):
        seen.append(n_jobs)
        return real(tasks, n_jobs, progress, description)

    from sharedrep.inference import bootstrap, groups

    monkeypatch.setattr(bootstrap, "_progress_map", spy)
    monkeypatch.setattr(groups, "_progress_map", spy)
    m = ShaReD(n_shared=1, alpha=1.0, cv=3, private=False, low_memory=low_memory)
    bootstrap_subjects(m, six.neural, six.behavior, six.groups, n_boot=2, n_jobs=2,
                       progress=False)  # fmt: skip
    a, b = _halves(six)
    compare_groups(m, a, m, b, n_perm=3, n_jobs=2, progress=False)
    assert seen == [jobs, jobs]
    assert not _resampling._reuses_subjects(ShaReD(backend="dask"))
    assert not _resampling._reuses_subjects(ShaReD(backend="torch"))
