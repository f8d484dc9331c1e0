"""Refits on unchanged neural activity reuse its statistics and fold reductions.

Within :func:`sharedrep.core.neural_cache.reuse_neural_side`, a refit of the same activity
with other behaviour takes the kept neural chunk statistics (``n``, ``s_x``, ``X'X``) and
each fold's reduction, and computes only the behaviour side. The model must be that of a
fit without the cache (to rounding: ``X'Y`` comes from another BLAS product), and
anything that changes the neural side must not take what was kept.
"""

import numpy as np
import pytest

from sharedrep import ShaReD, simulate
from sharedrep.core import neural_cache, solver
from sharedrep.core.data_pass import subject_statistics

S, FOLDS = 3, 4


@pytest.fixture(scope="module")
def data():
    return simulate(
        n_subjects=S, n_samples=1200, n_units=30, n_behavior=5, n_shared=2,
        trial_length=40, seed=3, snr=0.5,
    )  # fmt: skip


def _model(**kw):
    return ShaReD(cv=FOLDS, random_state=0, private=False, **kw)


def _shifted(Ys, c=200):
    return [np.roll(Y, -c, axis=0) for Y in Ys]


def _assert_same_model(a, b, rtol=1e-9):
    assert a.alpha_ == b.alpha_ and a.n_shared_ == b.n_shared_
    ca, cb = a.cv_results_, b.cv_results_
    np.testing.assert_allclose(ca["mean_score"], cb["mean_score"], rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(ca["r2_dim"], cb["r2_dim"], rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(a.shared_axes_, b.shared_axes_, rtol=1e-7, atol=1e-9)
    for ea, eb in zip(a.encoders_, b.encoders_, strict=True):
        np.testing.assert_allclose(ea, eb, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("lags", [[0], [0, 1, 2]])
@pytest.mark.parametrize("low_memory", [False, True])
def test_refit_on_shifted_behaviour_equals_a_fresh_fit(data, lags, low_memory):
    """lags 0..2 take the lag-structured pass, lags 0 the direct one; low_memory the
    reduced folds (``reduce_fold``), otherwise ``PrimalFold``."""
    kw = dict(lags=lags, low_memory=low_memory)
    Ys = _shifted(data.behavior)
    fresh = _model(**kw).fit(data.neural, Ys, groups=data.groups)
    with neural_cache.reuse_neural_side() as kept:
        _model(**kw).fit(data.neural, data.behavior, groups=data.groups)
        assert kept.pass_hits == 0 and kept.hits == 0
        misses = kept.misses
        assert misses == S * FOLDS  # every fold reduced once and kept
        reused = _model(**kw).fit(data.neural, Ys, groups=data.groups)
        assert kept.pass_hits == S  # every subject's X'X taken
        assert kept.hits == S * FOLDS and kept.misses == misses  # and every reduction
    assert len(kept) == 0  # emptied with its block
    _assert_same_model(reused, fresh)


@pytest.mark.parametrize("lags", [[0, 1], [0, 1, 2]])
def test_kept_eigendecompositions_equal_a_fresh_fit(data, lags):
    """With many reuses expected, folds keep eigendecompositions instead (tridiagonal
    and, with 90 columns, still tridiagonal; the banded route is covered below)."""
    Ys = _shifted(data.behavior)
    fresh = _model(lags=lags).fit(data.neural, Ys, groups=data.groups)
    with neural_cache.reuse_neural_side() as kept:
        kept.reuses = neural_cache.EIGEN_REUSES
        _model(lags=lags).fit(data.neural, data.behavior, groups=data.groups)
        kept.freeze()
        assert all(isinstance(v, tuple) for v in kept._reductions.values())
        reused = _model(lags=lags).fit(data.neural, Ys, groups=data.groups)
        assert kept.hits == S * FOLDS
    _assert_same_model(reused, fresh)


@pytest.mark.parametrize("eigen", [False, True])
def test_kept_banded_reductions_and_eigendecompositions_solve_wide_folds(eigen, monkeypatch):
    """From BAND_MIN_Q columns on the reduction is banded (lowered here to 40; 140
    columns, as folds of at most 128 keep eigendecompositions); both kept forms give the
    fold solution of a fresh computation."""
    from sharedrep.core import _lapack

    monkeypatch.setattr(_lapack, "BAND_MIN_Q", 40)
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((600, 140)), rng.standard_normal((600, 3))
    train = solver.SufficientStats.from_arrays(X, Y)
    alphas = np.logspace(-3, 2, 6)
    _, want = solver.fold_path(train, np.ones(3), alphas)
    with neural_cache.reuse_neural_side() as kept:
        kept.reuses = neural_cache.EIGEN_REUSES if eigen else 0
        _, first = solver.fold_path(train, np.ones(3), alphas)
        (red,) = kept._reductions.values()
        assert isinstance(red, tuple) if eigen else isinstance(red, _lapack.Banded)
        _, again = solver.fold_path(train, np.ones(3), alphas)
    np.testing.assert_array_equal(first, want)  # the first fit computes as without a block
    np.testing.assert_allclose(again, want, rtol=1e-10, atol=1e-13)


def test_a_kept_reduction_gives_the_fold_solution_bit_for_bit():
    """The reduction is of the same matrix: the ridge path is the same bit for bit
    (140 columns: folds of at most 128 keep an eigendecomposition instead)."""
    d = simulate(n_subjects=1, n_samples=800, n_units=70, n_behavior=5, trial_length=40, seed=5)
    sd = subject_statistics(
        d.neural[0], d.behavior[0], d.groups[0], np.array([0, 1]), FOLDS, random_state=0
    )
    tot = solver.total(sd.stats)

    def solve():
        fold = solver.subject_fold(sd.stats, sd.chunks.train_mask(1), sd.chunks.test_mask(1), tot)
        return solver.fold_path(fold.train, np.full(5, 2.0), np.logspace(-2, 2, 6))

    std0, P0 = solve()  # no block: computed
    with neural_cache.reuse_neural_side() as kept:
        std1, P1 = solve()
        std2, P2 = solve()
        assert (kept.misses, kept.hits) == (1, 1)
        assert not isinstance(next(iter(kept._reductions.values())), tuple)
    np.testing.assert_array_equal(P1, P0)
    np.testing.assert_array_equal(P2, P0)
    np.testing.assert_array_equal(std2.cross, std0.cross)
    assert std0.gram is None and std2.gram is None


def test_other_neural_side_is_not_taken(data):
    """A copy of the activity, other lags, other folds or rows dropped as missing
    behaviour elsewhere take no kept statistics (a copy's folds, equal in content, take
    the kept factorisations); other lags take nothing and equal a fresh fit bit for bit."""
    Ys = _shifted(data.behavior)
    with neural_cache.reuse_neural_side() as kept:
        _model(lags=[0, 1]).fit(data.neural, data.behavior, groups=data.groups)
        copies = [X.copy() for X in data.neural]
        fits = {
            "copy": (_model(lags=[0, 1]), copies, Ys),
            "lags": (_model(lags=[0, 2]), data.neural, Ys),
        }
        Yn = [Y.copy() for Y in data.behavior]
        Yn[1][100:140] = np.nan
        fits["missing"] = (_model(lags=[0, 1], nan_policy="omit"), data.neural, Yn)
        kept.freeze()
        got, hits = {}, {}
        for name, (m, Xs, Y_) in fits.items():
            kept.pass_hits = 0
            got[name] = m.fit(Xs, Y_, groups=data.groups)
            hits[name] = kept.pass_hits
        other_folds = ShaReD(cv=FOLDS, random_state=1, private=False, lags=[0, 1])
        kept.pass_hits = 0
        other_folds.fit(data.neural, Ys, groups=data.groups)
        assert kept.pass_hits == 0
    assert hits == {"copy": 0, "lags": 0, "missing": S - 1}
    for name, (m, Xs, Y_) in fits.items():
        want = _model(**{k: m.get_params()[k] for k in ("lags", "nan_policy")})
        want.fit(Xs, Y_, groups=data.groups)
        if name == "lags":  # nothing taken: the same computation
            np.testing.assert_array_equal(
                got[name].cv_results_["mean_score"], want.cv_results_["mean_score"]
            )
        else:
            _assert_same_model(got[name], want)


def test_float32_passes_and_full_or_frozen_blocks_keep_nothing(data):
    with neural_cache.reuse_neural_side() as kept:
        _model(dtype="float32").fit(data.neural, data.behavior, groups=data.groups)
        _model(dtype="float32").fit(data.neural, _shifted(data.behavior), groups=data.groups)
        assert kept.pass_hits == 0  # float32 statistics are not kept
    with neural_cache.reuse_neural_side(max_bytes=0) as kept:
        _model().fit(data.neural, data.behavior, groups=data.groups)
        assert len(kept) == 0 and kept.nbytes == 0
    with neural_cache.reuse_neural_side() as kept:
        kept.freeze()
        _model().fit(data.neural, data.behavior, groups=data.groups)
        assert len(kept) == 0


def test_kept_statistics_are_read_only(data):
    with neural_cache.reuse_neural_side():
        sd = subject_statistics(
            data.neural[0], data.behavior[0], data.groups[0], np.array([0]), FOLDS
        )
        with pytest.raises(ValueError, match="read-only"):
            sd.stats[0].xx[0, 0] = 1.0


def test_strict_fits_keep_nothing_and_read_their_subjects_the_same_way(data):
    """low_memory="strict" keeps no q x q statistics: inside a block it still keeps
    nothing, and its model is that of a strict fit outside any block, bit for bit."""
    want = _model(low_memory="strict").fit(data.neural, data.behavior, groups=data.groups)
    with neural_cache.reuse_neural_side() as kept:
        got = _model(low_memory="strict").fit(data.neural, data.behavior, groups=data.groups)
        assert len(kept) == 0 and kept.nbytes == 0
    np.testing.assert_array_equal(got.cv_results_["mean_score"], want.cv_results_["mean_score"])
    for a, b in zip(got.encoders_, want.encoders_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fits_in_other_threads_do_not_see_the_block(data):
    """The block belongs to the context that opened it: a fit run by another thread of
    the program neither keeps nor takes anything (a fit's own worker threads do: the
    low_memory fits above reduce their subjects on them)."""
    import threading

    with neural_cache.reuse_neural_side() as kept:
        worker = threading.Thread(
            target=lambda: _model().fit(data.neural, data.behavior, groups=data.groups)
        )
        worker.start()
        worker.join()
        assert len(kept) == 0 and kept.misses == 0
        _model().fit(data.neural, data.behavior, groups=data.groups)
        assert len(kept) > 0
