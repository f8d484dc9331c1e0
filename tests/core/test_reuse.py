"""Each subject reduced once within reuse_statistics (sharedrep.core.backends._reuse).

A refit inside the block must give the numbers of a fit that computes everything again
with the same path (``low_memory=True``) bit for bit, whatever ran before it in the block
(an earlier fit with private components must not change the reused statistics), and
nothing may be reused for another subject, other trial ids or other options.
"""

import numpy as np
import pytest

from sharedrep import ShaReD, simulate
from sharedrep.core.backends import _reuse, reuse_statistics, reusing


@pytest.fixture(scope="module")
def four():
    return simulate(
        n_subjects=4, n_samples=600, n_units=(8, 14), n_behavior=4, n_shared=2,
        trial_length=20, seed=11,
    )  # fmt: skip


def _fit(d, idx, **kw):
    m = ShaReD(n_shared="auto", cv=4, lags=[0, 1], random_state=0, **kw)
    return m.fit([d.neural[i] for i in idx], [d.behavior[i] for i in idx],
                 groups=[d.groups[i] for i in idx])  # fmt: skip


def _same(a, b):
    assert (a.alpha_, a.n_shared_) == (b.alpha_, b.n_shared_)
    np.testing.assert_array_equal(a.shared_axes_, b.shared_axes_)
    for ea, eb in zip(a.encoders_, b.encoders_, strict=True):
        np.testing.assert_array_equal(ea, eb)
    for key in ("mean_score", "r2_dim", "r2_subject_dim"):
        np.testing.assert_array_equal(a.cv_results_[key], b.cv_results_[key])


class Counter:
    def __init__(self, monkeypatch):
        self.computed = 0
        original = _reuse.reused

        def spy(X, Y, g, opts, alphas, keep_totals, compute):
            def counted():
                self.computed += 1
                return compute()

            return original(X, Y, g, opts, alphas, keep_totals, counted)

        monkeypatch.setattr(_reuse, "reused", spy)


def test_refits_reuse_each_subject_and_equal_fresh_fits(four, monkeypatch):
    count = Counter(monkeypatch)
    fresh = [_fit(four, idx, low_memory=True) for idx in ([0, 1, 2], [2, 3, 3, 1])]
    count.computed = 0
    with reuse_statistics() as cache:
        assert reusing()
        first = _fit(four, [0, 1, 2], private=True)  # private components read the totals
        again = _fit(four, [2, 3, 3, 1])  # subject 3 drawn twice, as a bootstrap does
        repeat = _fit(four, [0, 1, 2])
        assert len(cache) == 4
    assert not reusing() and not cache
    # subjects 0..3 once each; the two draws of subject 3 in one fit may both start
    # before either is kept (they run side by side), the later fits reuse them
    assert 4 <= count.computed <= 5
    _same(first, fresh[0])
    _same(repeat, fresh[0])
    _same(again, fresh[1])


def test_outside_the_block_nothing_is_kept(four, monkeypatch):
    count = Counter(monkeypatch)
    _fit(four, [0, 1])
    _fit(four, [0, 1], low_memory=True)
    assert count.computed == 2  # the default path for small data does not reduce at all


def test_other_arrays_groups_or_options_are_computed_again(four, monkeypatch):
    count = Counter(monkeypatch)
    d = four
    with reuse_statistics():
        _fit(d, [0, 1])
        count.computed = 0
        X0 = d.neural[0].copy()  # equal values, another array: another subject
        ShaReD(n_shared="auto", cv=4, lags=[0, 1], random_state=0).fit(
            [X0, d.neural[1]], [d.behavior[0], d.behavior[1]], groups=[d.groups[0], d.groups[1]]
        )
        assert count.computed == 1
        count.computed = 0
        g0 = d.groups[0].copy()
        g0[:20] = g0[20]  # other trials
        ShaReD(n_shared="auto", cv=4, lags=[0, 1], random_state=0).fit(
            d.neural[:2], d.behavior[:2], groups=[g0, d.groups[1]]
        )
        assert count.computed == 1
        count.computed = 0
        _fit(d, [0, 1], alphas=[0.1, 1.0])  # another alpha grid
        _fit(d, [0, 1], low_memory="strict")  # totals not kept: never cached
        assert count.computed == 4
        count.computed = 0
        ShaReD(n_shared="auto", cv=4, lags=[0, 1], random_state=np.random.RandomState(0)).fit(
            d.neural[:2], d.behavior[:2], groups=d.groups[:2]
        )  # a generator draws other folds at each use: not a key
        assert count.computed == 2


def test_handed_out_folds_do_not_share_per_fit_state(four):
    with reuse_statistics() as cache:
        _fit(four, [0, 1])
        data = next(iter(cache.values()))[0][3]  # (X, Y, groups, reduced data)
        a = _reuse._fresh(data)
    assert a.stats is not data.stats and a.stats.total() is data.stats.total()
    pairs = list(zip(a.stats.folds, data.stats.folds, strict=True))
    assert pairs and all(fa is not fb and fa.M1 is fb.M1 for fa, fb in pairs)
    # the fit solved copies handed out like ``a``: the kept folds hold no fit's state
    assert all(fa.std is None and fb.std is None for fa, fb in pairs)


def test_kernel_form_subjects_are_reused_too(four):
    """Subjects in the kernel form keep their rows; reusing them changes nothing."""
    fresh = _fit(four, [1, 2, 3], form="dual", low_memory=True)
    with reuse_statistics() as cache:
        _fit(four, [0, 1, 2], form="dual")
        again = _fit(four, [1, 2, 3], form="dual")
        assert len(cache) == 4
    _same(again, fresh)
