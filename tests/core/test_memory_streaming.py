"""Low-memory in-process fit (``ShaReD(low_memory=True)``, issue #16 item 2).

Each subject's chunk statistics are reduced to ``p x p`` matrices per fold and alpha as
soon as they are computed (:mod:`sharedrep.core.backends._streaming`). The model must be
the one of the path that keeps every subject's statistics (``low_memory=False``) and the
peak memory of a fit must not grow with the number of subjects by more than one ``q x q``
total per subject (plus ``O(q p)``), i.e. by less than one subject's chunk statistics
when going from 4 to 8 subjects.
"""

import tracemalloc
import warnings

import numpy as np
import pytest

from sharedrep import ShaReD, simulate
from sharedrep.core import backends, solver
from sharedrep.core.backends import _streaming

RTOL = 1e-10
ALPHAS = np.logspace(-2, 2, 5)


def _close(a, b, what):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(float(np.nanmax(np.abs(b))) if b.size else 0.0, 1e-300)
    err = float(np.nanmax(np.abs(a - b))) / scale if a.size else 0.0
    assert a.shape == b.shape and err <= RTOL, (what, err)
    assert np.array_equal(np.isnan(a), np.isnan(b)), what


def _fit_both(neural, behavior, groups, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [
            ShaReD(random_state=0, low_memory=lm, **kw).fit(neural, behavior, groups=groups)
            for lm in (False, True)
        ]


@pytest.mark.parametrize(
    "kw",
    [
        dict(n_shared="auto", lags=2, subject_weights=[1.0, 2.0, 1.0, 3.0]),
        dict(n_shared=2, lags=1, behavior_metric="variance", alphas=[0.1, 1.0, 10.0]),
    ],
)
def test_low_memory_fit_equals_the_full_path(kw):
    d = simulate(n_subjects=4, n_samples=1200, n_units=12, n_behavior=6, n_private=1, seed=3)
    old, new = _fit_both(d.neural, d.behavior, d.groups, **kw)
    assert (new.alpha_, new.n_shared_, new.shrinkage_) == (
        old.alpha_,
        old.n_shared_,
        old.shrinkage_,
    )
    for key, value in old.cv_results_.items():
        if key != "best_index":
            _close(new.cv_results_[key], value, key)
    assert new.cv_results_["best_index"] == old.cv_results_["best_index"]
    # the final fit is the same computation on the same totals: equal bit for bit
    assert np.array_equal(new.shared_axes_, old.shared_axes_)
    assert all(np.array_equal(a, b) for a, b in zip(new.encoders_, old.encoders_, strict=True))
    assert np.array_equal(new.explained_, old.explained_)
    ranks = []
    for a, b in zip(new.private_, old.private_, strict=True):
        assert a.behavior_rank == b.behavior_rank
        ranks.append(a.behavior_rank)
        for field in ("behavior_axes", "behavior_cv_score", "behavior_explained"):
            _close(getattr(a, field), getattr(b, field), field)
        for field in ("neural_components", "neural_explained"):  # same Gram matrix
            assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert max(ranks) > 0  # the private cross-validation ran on reduced folds
    _close(new.score(d.neural, d.behavior), old.score(d.neural, d.behavior), "score")


def test_kernel_subjects_mix_with_reduced_ones():
    d = simulate(n_subjects=3, n_samples=300, n_units=100, n_behavior=5, seed=1)
    neural = list(d.neural)
    neural[0] = neural[0][:, :20]  # primal; the others have more lagged columns than rows
    prep = backends.get_backend("numpy").statistics(
        neural, d.behavior, [None] * 3, np.arange(4), 5, gap=3, form="auto", reduce_alphas=[1.0]
    )
    assert isinstance(prep[0].stats, _streaming.ReducedStats)
    # a reduced subject keeps nothing of size T (rows, chunk order), only its chunk table
    assert prep[0].rows.size == 0 and prep[0].chunks.order.size == 0
    assert prep[0].chunks.bounds.size == len(prep[0].stats) + 1
    assert all(solver.is_kernel(p.stats) for p in prep[1:])
    old, new = _fit_both(neural, d.behavior, None, n_shared=2, lags=3)
    assert new.alpha_ == old.alpha_
    _close(new.cv_results_["mean_score"], old.cv_results_["mean_score"], "mean_score")
    for a, b in zip(new.encoders_, old.encoders_, strict=True):
        _close(a, b, "encoders")


def _peak(neural, behavior, groups, low_memory):
    """Peak traced allocation (bytes) during one fit."""
    model = ShaReD(n_shared=2, lags=2, cv=8, alphas=ALPHAS, random_state=0, low_memory=low_memory)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            model.fit(neural, behavior, groups=groups)
            return tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()


def test_peak_memory_does_not_grow_with_subjects(monkeypatch):
    """S = 4 vs 8 subjects of q = 180 columns (8 chunks each), one worker thread."""
    monkeypatch.setenv("SHAREDREP_NUM_THREADS", "1")
    N, p, n_chunks = 60, 4, 8
    d = simulate(n_subjects=8, n_samples=1600, n_units=N, n_behavior=p, seed=2)
    a = 3 * N + p + 1
    block = n_chunks * a * a * 8  # one subject's chunk statistics (2.2 MB)
    peaks = {
        (S, low): _peak(d.neural[:S], d.behavior[:S], d.groups[:S], low)
        for S in (4, 8)
        for low in (True, False)
    }
    growth = peaks[8, True] - peaks[4, True]
    # per added subject: its total (a^2), its reduced folds (n_folds * n_alphas * 3 p^2)
    # and O(q p) results; never its chunk statistics
    assert growth < block, (growth, block)
    assert growth < 4 * 1.5 * a * a * 8, (growth, a)
    # the path that keeps every subject's statistics grows by several of them
    assert peaks[8, False] - peaks[4, False] > 4 * block, peaks
    assert peaks[8, True] < peaks[8, False] / 3, peaks


# ---------------------------------------------------------------- low_memory="strict"


def _counting_reads(monkeypatch):
    """Count the numpy backend's per-subject data passes (``subject_task`` calls)."""
    from sharedrep.core.backends import numpy as numpy_backend

    calls = []
    real = numpy_backend.subject_task

    def counted(X, Y, g, s, **opts):
        calls.append(s)
        return real(X, Y, g, s, **opts)

    monkeypatch.setattr(numpy_backend, "subject_task", counted)
    return calls


@pytest.mark.parametrize("private", [True, False])
def test_strict_fit_reads_each_subject_again_and_equals_low_memory(monkeypatch, private):
    d = simulate(n_subjects=3, n_samples=1000, n_units=10, n_behavior=5, n_private=1, seed=4)
    kw = dict(n_shared=2, lags=2, behavior_metric="variance", private=private, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = ShaReD(low_memory=True, **kw).fit(d.neural, d.behavior, groups=d.groups)
        calls = _counting_reads(monkeypatch)
        strict = ShaReD(low_memory="strict", **kw).fit(d.neural, d.behavior, groups=d.groups)
    # one pass for the CV statistics, one for the final fit, one for the private components
    assert sorted(calls) == sorted([0, 1, 2] * (3 if private else 2)), calls
    assert (strict.alpha_, strict.n_shared_) == (kept.alpha_, kept.n_shared_)
    for key, value in kept.cv_results_.items():
        np.testing.assert_array_equal(strict.cv_results_[key], value, err_msg=key)
    assert np.array_equal(strict.shared_axes_, kept.shared_axes_)
    assert all(np.array_equal(a, b) for a, b in zip(strict.encoders_, kept.encoders_, strict=True))
    assert np.array_equal(strict.behavior_scale_, kept.behavior_scale_)
    if private:
        for a, b in zip(strict.private_, kept.private_, strict=True):
            for field in (
                "behavior_axes",
                "behavior_cv_score",
                "neural_components",
                "neural_explained",
            ):
                assert np.array_equal(getattr(a, field), getattr(b, field)), field
            assert a.behavior_explained == b.behavior_explained
    else:
        assert strict.private_ is None


def test_strict_fit_reads_file_sources_again(tmp_path):
    d = simulate(n_subjects=2, n_samples=800, n_units=8, n_behavior=4, seed=5)
    paths = []
    for s, X in enumerate(d.neural):
        paths.append(tmp_path / f"neural{s}.npy")
        np.save(paths[-1], X)
    kw = dict(n_shared=1, lags=1, random_state=0, low_memory="strict")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ShaReD(**kw).fit(paths, d.behavior, groups=d.groups)
        b = ShaReD(**kw).fit(d.neural, d.behavior, groups=d.groups)
    assert np.array_equal(a.shared_axes_, b.shared_axes_)
    assert all(np.array_equal(x, y) for x, y in zip(a.encoders_, b.encoders_, strict=True))


def test_strict_peak_memory_has_no_total_per_subject(monkeypatch):
    """S = 4 vs 8 subjects of q = 360 columns, one worker thread: the low-memory fit grows
    by one (q + p + 1)-square total per added subject, the strict fit only by what is
    O(q p) per subject (measured: 0.12 of a total per subject here, 0.27 at q = 180:
    linear in q, not quadratic)."""
    monkeypatch.setenv("SHAREDREP_NUM_THREADS", "1")
    N, p = 120, 4
    d = simulate(n_subjects=8, n_samples=1600, n_units=N, n_behavior=p, seed=2)
    total = (3 * N + p + 1) ** 2 * 8  # one subject's total statistics (1.07 MB)
    peaks = {
        (S, mode): _peak(d.neural[:S], d.behavior[:S], d.groups[:S], mode)
        for S in (4, 8)
        for mode in (True, "strict")
    }
    kept = peaks[8, True] - peaks[4, True]
    strict = peaks[8, "strict"] - peaks[4, "strict"]
    assert kept > 4 * 0.9 * total, (kept, total)  # the totals kept by low_memory=True
    # per added subject: its reduced folds, behaviour chunks and O(q p) results only
    assert strict < 4 * 0.25 * total, (strict, total)
    assert peaks[8, "strict"] < peaks[8, True] - 4 * total, peaks


def test_low_memory_choice(monkeypatch):
    from sharedrep.core import estimator

    X = [np.zeros((10, 50))] * 4  # q = 100 with 2 lags, p = 3: a = 104
    model = ShaReD(low_memory="auto")
    a2 = 104**2 * 8
    monkeypatch.setattr(estimator, "LOW_MEMORY_BYTES", 5 * 4 * a2 - 1)
    monkeypatch.setattr(estimator, "LOW_MEMORY_STRICT_BYTES", 4 * a2)
    assert model._low_memory(X, 3, 2, 5) is True  # chunk statistics beyond the bound
    assert model._low_memory(X, 3, 2, 4) is False
    monkeypatch.setattr(estimator, "LOW_MEMORY_STRICT_BYTES", 4 * a2 - 1)
    assert model._low_memory(X, 3, 2, 5) == "strict"  # the totals alone beyond it
    for value, expected in ((True, True), (False, False), ("strict", "strict")):
        assert ShaReD(low_memory=value)._low_memory(X, 3, 2, 5) == expected
    d = simulate(n_subjects=2, n_samples=200, n_units=4, seed=0)
    with pytest.raises(ValueError, match="low_memory.*'strict'"):
        ShaReD(low_memory="strictly").fit(d.neural, d.behavior)


def test_strict_total_without_a_seed_is_the_same_sum():
    """With random_state=None the second pass may assign other folds: its total is the
    same rows summed in another order (equal to rounding), never other rows."""
    d = simulate(n_subjects=1, n_samples=900, n_units=7, n_behavior=3, seed=6)
    be = backends.get_backend("numpy")
    args = (d.neural, d.behavior, d.groups, np.arange(3), 5)
    (plain,) = be.statistics(*args, gap=2, random_state=None)
    (strict,) = be.statistics(
        *args, gap=2, random_state=None, reduce_alphas=ALPHAS, keep_totals=False
    )
    assert not strict.stats.keeps_total
    want, got = solver.total(plain.stats), strict.stats.total()
    assert got.n == want.n
    for field in ("sx", "sy", "xx", "xy", "yy"):
        a, b = getattr(got, field), getattr(want, field)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max(), err_msg=field)
