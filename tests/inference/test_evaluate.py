"""Does pooling help? Leave-one-animal-out evaluation (sharedrep.inference.evaluate)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sharedrep import ShaReD, simulate
from sharedrep.inference.evaluate import (
    MIN_ANIMALS,
    _comparison_table,
    _summary_table,
    _verdict,
    evaluate,
    interleaved_blocks,
)


def _quiet_evaluate(*args, **kwargs):
    kwargs.setdefault("progress", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # calibration-range warnings
        return evaluate(*args, **kwargs)


@pytest.fixture(scope="module")
def must_help():
    """Few units per animal, 12 behaviour features of which 2 are shared and encoded."""
    d = simulate(
        n_subjects=6,
        n_samples=600,
        n_units=6,
        n_behavior=12,
        n_shared=2,
        snr=2.0,
        trial_length=20,
        shared_variance=1.0,
        behavior_anisotropy=1.0,
        seed=0,
    )
    ev = _quiet_evaluate(
        ShaReD(n_shared=2, cv=5),
        d.neural,
        d.behavior,
        d.groups,
        calibration_fractions=(0.1, 0.5),
        n_splits=3,
        random_state=0,
    )
    return d, ev


def test_pooling_helps_where_it_must(must_help):
    _, ev = must_help
    assert ev.verdict.startswith("pooling helps on these data, by +"), ev.verdict
    comp = ev.comparisons.set_index(["fraction", "method", "baseline"])
    small = comp.loc[(0.1, "combined", "ridge")]
    assert small.wins > small.losses and small.mean_diff > 0.01
    assert small.ttest_p < 0.05
    # the pure shared read-out also beats the animal's own ridge with little calibration
    assert comp.loc[(0.1, "shared", "ridge")].mean_diff > 0
    # split-half axes (3 animals each) agree better than single animals' axes
    rep = ev.reproducibility
    half = rep.loc[rep["comparison"] == "split-half", "max_angle_deg"]
    single = rep.loc[rep["comparison"] == "single-animal", "max_angle_deg"]
    assert len(half) == 3 and len(single) == 6 * 5 // 2
    assert half.median() < single.median()


def test_pooling_cannot_help_with_many_units_and_k_equal_p():
    d = simulate(
        n_subjects=6,
        n_samples=600,
        n_units=40,
        n_behavior=3,
        n_shared=2,
        snr=2.0,
        trial_length=20,
        shared_variance=1.0,
        behavior_anisotropy=1.0,
        seed=0,
    )
    ev = _quiet_evaluate(
        ShaReD(n_shared=3, cv=5),
        d.neural,
        d.behavior,
        d.groups,
        calibration_fractions=(0.1, 0.5),
        n_splits=1,
        random_state=0,
    )
    assert ev.verdict.startswith("pooling is neutral on these data by construction"), ev.verdict
    assert "the shared axes constrain nothing" in ev.verdict
    assert "k = p = 3" in ev.verdict
    # k = p: every axis fit spans the whole behaviour space, so all angles are 0
    np.testing.assert_allclose(ev.reproducibility["max_angle_deg"], 0.0, atol=1e-5)


def test_scores_are_consistent_and_paired_tests_match_scipy(must_help):
    _, ev = must_help
    s = ev.scores
    assert set(s["method"]) == {"constant", "ridge", "shared", "combined", "own"}
    assert np.isfinite(s["r2"]).all()
    # every decoder of a recording and fraction is scored on the same test rows
    assert (s.groupby(["entry", "fraction"])["n_test"].nunique() == 1).all()
    # pooled R^2 recomputed from the per-feature sums of squares
    pooled = s[s["feature"] == "pooled"].set_index(["entry", "fraction", "method"])
    feats = s[s["feature"] != "pooled"].groupby(["entry", "fraction", "method"])
    again = 1 - feats["sse"].sum() / feats["sst"].sum()
    np.testing.assert_allclose(pooled["r2"], again.loc[pooled.index], rtol=1e-12)
    # the paired tests of the comparison table, recomputed with scipy
    wide = pooled["r2"].unstack("method")
    comp = ev.comparisons.set_index(["fraction", "method", "baseline"])
    for f in (0.1, 0.5):
        d = (wide["combined"] - wide["ridge"]).xs(f, level="fraction").to_numpy()
        row = comp.loc[(f, "combined", "ridge")]
        assert row.n_animals == 6 >= MIN_ANIMALS
        np.testing.assert_allclose(row.wilcoxon_p, stats.wilcoxon(d).pvalue)
        np.testing.assert_allclose(row.ttest_p, stats.ttest_1samp(d, 0.0).pvalue)
        assert (row.wins, row.ties, row.losses) == (
            np.sum(d > 0.01),
            np.sum(np.abs(d) <= 0.01),
            np.sum(d < -0.01),
        )


def test_animal_grouping_is_respected():
    d = simulate(
        n_subjects=6, n_samples=400, n_units=(5, 14), n_behavior=4, n_shared=2,
        trial_length=20, seed=3,
    )  # fmt: skip
    animals = ["A", "A", "B", "B", "C", "C"]
    model = ShaReD(n_shared=2, alpha=1.0, cv=5)
    ev = _quiet_evaluate(
        model,
        d.neural,
        d.behavior,
        d.groups,
        animals=animals,
        calibration_fractions=(0.2,),
        n_splits=1,
    )
    folds = ev.folds
    assert len(folds) == 3 * 6
    for a in "ABC":
        f = folds[folds["held_out"] == a]
        test = f[f["role"] == "test"]
        assert sorted(test["entry"]) == [i for i, x in enumerate(animals) if x == a]
        assert (test["fit_subject"] == -1).all()
        train = f[f["role"] == "train"]
        assert list(train["fit_subject"]) == [0, 1, 2, 3]
        # the fit's subjects have exactly the training recordings' units
        assert (train["fit_n_units"] == train["n_units"]).all()
    # both recordings of a held-out animal are scored, and pooled into one animal score
    assert sorted(ev.scores["entry"].unique()) == list(range(6))
    assert sorted(ev.animal_scores["animal"].unique()) == ["A", "B", "C"]
    # fewer than 5 animals: no p-values, and the note says why
    assert ev.comparisons["wilcoxon_p"].isna().all()
    assert ev.comparisons["test_note"].str.startswith("not testable: 3 animals").all()
    # independent computation for animal B's first recording: fit on A and C only
    base = ShaReD(n_shared=2, alpha=1.0, cv=5, private=False).fit(
        [d.neural[i] for i in (0, 1, 4, 5)],
        [d.behavior[i] for i in (0, 1, 4, 5)],
        groups=[d.groups[i] for i in (0, 1, 4, 5)],
    )
    _, cal_masks, test_mask = interleaved_blocks(400, d.groups[2], 10, [0.2])
    X, Y, g = d.neural[2], d.behavior[2], d.groups[2]
    m, idx = base.with_subject(X[cal_masks[0]], Y[cal_masks[0]], groups=g[cal_masks[0]])
    Yh, rows = m.predict(
        X[test_mask], idx, groups=g[test_mask], return_rows=True, through="shared"
    )
    Yt = Y[test_mask][rows]
    scale = base.behavior_scale_
    r2 = 1 - np.sum(((Yt - Yh) / scale) ** 2) / np.sum(((Yt - Yt.mean(0)) / scale) ** 2)
    got = ev.scores.query("entry == 2 and method == 'shared' and feature == 'pooled'")["r2"]
    np.testing.assert_allclose(got.item(), r2, rtol=1e-9)


def test_interleaved_blocks():
    block, cal, test = interleaved_blocks(100, None, 10, [0.1, 0.2, 0.5])
    np.testing.assert_array_equal(block, np.repeat(np.arange(10), 10))
    np.testing.assert_array_equal(test, np.repeat(np.arange(10) % 2 == 1, 10))
    # calibration blocks taken from the even blocks, spread over the recording
    assert sorted(set(block[cal[0]])) == [4]
    assert sorted(set(block[cal[1]])) == [2, 6]
    assert sorted(set(block[cal[2]])) == [0, 2, 4, 6, 8]
    for c in cal:
        assert not np.any(c & test)
    # whole trials of unequal length: a trial never straddles two blocks
    groups = np.repeat(np.arange(23), np.arange(23) % 5 + 3)
    block, cal, test = interleaved_blocks(groups.size, groups, 10, [0.2])
    for t in range(23):
        assert np.unique(block[groups == t]).size == 1
    assert set(np.unique(block)) == set(range(10))
    with pytest.raises(ValueError, match="23 trials cannot be cut into n_blocks=30"):
        interleaved_blocks(groups.size, groups, 30, [0.2], "recording 4")
    with pytest.raises(ValueError, match="fraction 0.7 needs 7 of 10 blocks"):
        interleaved_blocks(100, None, 10, [0.7])


def test_evaluate_warns_on_constant_calibration_features_and_writes_tables(tmp_path):
    d = simulate(
        n_subjects=3, n_samples=400, n_units=10, n_behavior=4, n_shared=2,
        trial_length=20, seed=5,
    )  # fmt: skip
    Y = [B.copy() for B in d.behavior]
    block, cal, _ = interleaved_blocks(400, d.groups[1], 10, [0.2])
    Y[1][cal[0], 2] = 0.25  # feature "speed" constant over animal 1's calibration blocks
    with pytest.warns(UserWarning, match=r"animal 1, .*constant behaviour features \['speed'\]"):
        ev = evaluate(
            ShaReD(n_shared=2, alpha=1.0, cv=5),
            d.neural,
            Y,
            d.groups,
            calibration_fractions=(0.2,),
            behavior_names=["a", "b", "speed", "c"],
            n_splits=1,
            progress=False,
        )
    assert any("['speed']" in w for w in ev.warnings)
    assert set(ev.scores["feature"]) == {"a", "b", "speed", "c", "pooled"}
    paths = ev.to_csv(tmp_path / "ev")
    assert {p.name for p in paths} == {
        "scores.csv",
        "animal_scores.csv",
        "summary.csv",
        "comparisons.csv",
        "reproducibility.csv",
        "folds.csv",
        "evaluation.json",
    }
    back = pd.read_csv(tmp_path / "ev" / "summary.csv")
    np.testing.assert_allclose(back["mean_r2"], ev.summary["mean_r2"])
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ev.to_csv(tmp_path / "ev")
    ev.to_csv(tmp_path / "ev", overwrite=True)


def test_evaluate_validation():
    d = simulate(n_subjects=2, n_samples=200, n_units=5, n_behavior=3, trial_length=20, seed=1)
    m = ShaReD(n_shared=1, alpha=1.0, cv=5)
    with pytest.raises(ValueError, match="one label per entry"):
        evaluate(m, d.neural, d.behavior, animals=["a"])
    with pytest.raises(ValueError, match="need >= 2 animals"):
        evaluate(m, d.neural, d.behavior, animals=["a", "a"])
    with pytest.raises(ValueError, match="calibration_fractions"):
        evaluate(m, d.neural, d.behavior, calibration_fractions=(1.2,))
    with pytest.raises(ValueError, match="n_blocks"):
        evaluate(m, d.neural, d.behavior, n_blocks=1)
    with pytest.raises(ValueError, match=r"recording 0 \(animal 0\): 10 trials cannot be cut"):
        evaluate(m, d.neural, d.behavior, d.groups, n_blocks=12, progress=False)


@pytest.mark.slow
def test_monkey_reach_gives_a_verdict_and_finite_scores(monkey_reach_dir):
    from sharedrep.sim.datasets import load_monkey_reach

    recs = load_monkey_reach(monkey_reach_dir)
    ev = _quiet_evaluate(
        ShaReD(n_shared=2, lags=3, cv=5, random_state=0),
        [r.neural for r in recs],
        [r.behavior for r in recs],
        [r.trial for r in recs],
        animals=[r.monkey for r in recs],
        calibration_fractions=(0.2,),
        n_splits=1,
        random_state=0,
    )
    # k = p = 2 velocity features: the shared axes cannot help, whatever the scores
    assert ev.verdict.startswith("pooling is neutral on these data by construction")
    assert "constrain nothing" in ev.verdict
    assert np.isfinite(ev.scores["r2"]).all()
    assert sorted(ev.folds["held_out"].unique()) == ["C", "M"]
    assert ev.comparisons["test_note"].str.startswith("not testable: 2 animals").all()


def _comparison(wins, ties, losses, mean_diff, ttest_p=np.nan):
    return pd.DataFrame(
        [
            dict(
                fraction=0.1, method="combined", baseline="ridge", n_animals=wins + ties + losses,
                wins=wins, ties=ties, losses=losses, mean_diff=mean_diff, median_diff=mean_diff,
                wilcoxon_p=ttest_p, ttest_p=ttest_p, test_note="n/a",
            )
        ]
    )  # fmt: skip


@pytest.mark.parametrize(
    "counts, ttest_p, k_is_p, start",
    [
        # fewer than MIN_ANIMALS: no test, so no side, whatever the signs
        ((2, 0, 0, 0.05), np.nan, False, "cannot tell whether pooling helps"),
        ((1, 1, 0, 0.05), np.nan, False, "cannot tell whether pooling helps"),
        ((0, 0, 3, -0.05), np.nan, False, "cannot tell whether pooling helps"),
        ((5, 0, 1, 0.05), 0.01, False, "pooling helps"),
        ((5, 0, 1, 0.05), 0.20, False, "pooling is neutral"),  # not significant
        ((2, 0, 0, 0.05), np.nan, True, "pooling is neutral on these data by construction"),
    ],
)
def test_verdict_rules(counts, ttest_p, k_is_p, start):
    summary = pd.DataFrame(
        dict(fraction=0.1, method=["constant", "ridge", "combined"], mean_r2=[-0.1, 0.3, 0.35])
    )
    cfg = dict(tie_tolerance=0.01, level=0.05, all_k_equal_p=k_is_p, notes=[])
    line, _ = _verdict(_comparison(*counts, ttest_p=ttest_p), summary, cfg)
    assert line.startswith(start), line


def test_results_do_not_depend_on_n_jobs():
    d = simulate(n_subjects=3, n_samples=300, n_units=6, n_behavior=4, trial_length=15, seed=2)
    kw = dict(calibration_fractions=(0.2,), n_splits=1, random_state=0)
    one = _quiet_evaluate(ShaReD(n_shared=2, cv=3), d.neural, d.behavior, d.groups, **kw)
    two = _quiet_evaluate(ShaReD(n_shared=2, cv=3), d.neural, d.behavior, d.groups, n_jobs=2, **kw)
    pd.testing.assert_frame_equal(one.scores, two.scores)
    pd.testing.assert_frame_equal(one.reproducibility, two.reproducibility)
    assert one.verdict == two.verdict


def _small(n_subjects=4, seed=0):
    return simulate(
        n_subjects=n_subjects, n_samples=300, n_units=8, n_behavior=4, n_shared=1,
        trial_length=15, seed=seed, snr=2,
    )  # fmt: skip


def test_animal_with_undefined_r2_is_counted_named_and_explained():
    d = _small()
    Y = [y.copy() for y in d.behavior]
    _, _, test = interleaved_blocks(300, d.groups[2], 10, [0.3])
    Y[2][test] = 0.5  # animal 2: constant behaviour on its test blocks only
    m = ShaReD(n_shared=1, alpha=1.0, cv=3, private=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = evaluate(m, d.neural, Y, d.groups, calibration_fractions=(0.3,), n_splits=0,
                      progress=False)  # fmt: skip
    # the summary's statistics are over 3 animals, and say so next to the total of 4
    assert (ev.summary["n_animals"] == 3).all() and (ev.summary["n_animals_total"] == 4).all()
    comp = ev.comparisons
    assert (comp["n_animals"] == 3).all() and (comp["n_animals_total"] == 4).all()
    assert (comp["left_out"] == "2").all()
    assert (comp["wins"] + comp["ties"] + comp["losses"] == 3).all()
    why = "animal 2 is left out of the comparisons and the summary at calibration fraction"
    assert any(why in str(w.message) for w in caught)
    assert any(why in n for n in ev.notes) and any(why in w for w in ev.warnings)
    assert "over 3 of 4 animals (left out: 2)" in ev.verdict and why in ev.verdict
    assert "does not vary on its test rows" in ev.verdict


def _five(labels, d=None):
    d = d or _small(5, seed=1)
    m = ShaReD(n_shared=1, alpha=1.0, cv=3, private=False)
    return evaluate(m, d.neural, d.behavior, d.groups, animals=labels, n_splits=0,
                    calibration_fractions=(0.3,), progress=False)  # fmt: skip


@pytest.mark.parametrize(
    "labels, error, match",
    [
        (pd.Series(["m1", np.nan, np.nan, "m2", "m3"], index=range(10, 15)), ValueError,
         r"labels of recordings \[1, 2\] are missing"),
        (["a", None, "b", "b", "c"], ValueError, r"recordings \[1\] are missing"),
        (pd.array(["a", "b", pd.NA, "c", "c"], dtype="string"), ValueError,
         r"recordings \[2\] are missing"),
        (["m1", "M1 ", "m2", "m3", "m4"], ValueError,
         r"'m1' vs 'M1 ' differ only by case.*fix the labels"),
        ([1, "1", 2, 3, 4], ValueError, r"1 vs '1' differ only by"),
        ("mouse", TypeError, r"animals must be a sequence .* got str 'mouse'"),
        (5, TypeError, "animals must be a sequence"),
        ({"a", "b", "c", "d", "e"}, TypeError, "animals must be a sequence"),
        (np.array([["a", "b", "c", "d", "e"]]), TypeError, "animals must be a sequence"),
    ],
)  # fmt: skip
def test_evaluate_refuses_labels_that_would_split_or_merge_animals(labels, error, match):
    with pytest.raises(error, match=match):
        _five(labels)


@pytest.mark.parametrize("case", ["constant behaviour", "subject weight 0"])
def test_impossible_single_animal_fit_gives_nan_angles_and_a_reason(case):
    d = _small()
    Y = [y.copy() for y in d.behavior]
    weights = None
    if case == "constant behaviour":
        Y[2][:] = 3.0  # e.g. a failed tracking session
        why = "the behaviour metric"
    else:
        weights = [1.0, 1.0, 0.0, 1.0]
        why = "all have subject_weights 0"
    m = ShaReD(n_shared=1, alpha=1.0, cv=3, private=False, subject_weights=weights)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = evaluate(m, d.neural, Y, d.groups, calibration_fractions=(0.3,), n_splits=0,
                      progress=False)  # fmt: skip
    step = "reproducibility: the single-animal fit of animal(s) 2 (recordings [2])"
    assert any(step in str(w.message) and why in str(w.message) for w in caught)
    assert any(step in w for w in ev.warnings)
    rep = ev.reproducibility
    with_2 = (rep["first"] == "2") | (rep["second"] == "2")
    assert with_2.sum() == 3 and rep.loc[with_2, "max_angle_deg"].isna().all()
    assert rep.loc[with_2, "note"].str.startswith("2 not fitted: ").all()
    assert rep.loc[with_2, "note"].str.contains(why).all()
    assert np.isfinite(rep.loc[~with_2, "max_angle_deg"]).all()
    assert (rep.loc[~with_2, "note"] == "").all()
    # 4 animals: too few for a paired test over animals
    assert ev.verdict.startswith("cannot tell whether pooling helps on these data"), ev.verdict


# --------------------------------------------------------------------------- ground truth
# Regimes of sharedrep.sim.generic.simulate with a known answer to "does pooling help?".
_REGIME = dict(
    n_samples=600, n_units=20, n_behavior=8, n_shared=2, snr=1.0, trial_length=10,
    shared_variance=1.0, behavior_anisotropy=1.0,
)  # fmt: skip
_FRACTIONS = (0.1, 0.2, 0.5)


def _sharing(n_animals, seed, **kw):
    """Animals that share one encoded representation (same behaviour axes)."""
    d = simulate(n_subjects=n_animals, seed=seed, **{**_REGIME, **kw})
    return d.neural, d.behavior, d.groups


def _ground_truth_evaluate(X, Y, g):
    return _quiet_evaluate(ShaReD(n_shared=2, cv=5), X, Y, g,
                           calibration_fractions=_FRACTIONS, n_splits=0)  # fmt: skip


@pytest.mark.parametrize(
    "n_animals, seed, snr",
    [
        (3, 0, 1.0),  # 3 animals that do share: true, but 3 animals cannot show it
        (2, 1, 0.0),  # nothing encoded at all: the old rule said "pooling helps" here
    ],
)
def test_too_few_animals_cannot_tell(n_animals, seed, snr):
    X, Y, g = _sharing(n_animals, seed, n_samples=300, snr=snr)
    ev = _ground_truth_evaluate(X, Y, g)
    assert ev.comparisons["ttest_p"].isna().all()
    assert ev.verdict.startswith(
        f"cannot tell whether pooling helps on these data: at most {n_animals} animals were "
        f"compared at any calibration fraction, and a paired test over animals needs at "
        f"least {MIN_ANIMALS}"
    ), ev.verdict


@pytest.mark.parametrize("seed", [2, 9])
def test_the_animal_that_does_not_share_is_named(seed):
    """5 animals share; animal 5 has its own behaviour axes (another draw of simulate)."""
    X, Y, g = _sharing(5, seed)
    odd = simulate(n_subjects=1, seed=5000 + seed, **_REGIME)
    ev = _ground_truth_evaluate(X + odd.neural, Y + odd.behavior, g + odd.groups)
    assert ev.verdict.startswith("pooling helps on these data"), ev.verdict
    # which animals lose, recomputed from the per-animal scores: exactly the odd one
    wide = ev.animal_scores.query("feature == 'pooled'").pivot_table(
        index=["animal", "fraction"], columns="method", values="r2"
    )
    lost = wide.index[wide["combined"] - wide["ridge"] < -0.01]
    assert set(lost.get_level_values("animal")) == {5}
    fractions = ", ".join(f"{f:g}" for f in lost.get_level_values("fraction"))
    named = f"animal 5 (calibration fraction(s) {fractions}) (per-animal point differences"
    assert named in ev.verdict and any(named in n for n in ev.notes)
    assert "animal 0 (" not in ev.verdict


def test_paired_tests_ignore_rounding_level_differences():
    """The model's own ridge and the per-animal ridge are the same decoder: their pooled
    R^2 differ by ~1e-16, which must not come out as a significant difference."""
    X, Y, g = _sharing(6, 0)
    ev = _ground_truth_evaluate(X, Y, g)
    wide = ev.animal_scores.query("feature == 'pooled'").pivot_table(
        index=["fraction", "animal"], columns="method", values="r2"
    )
    d = (wide["own"] - wide["ridge"]).abs().groupby("fraction").max()
    assert (d < 1e-12).all()
    own = ev.comparisons.query("method == 'own' and baseline == 'ridge'")
    assert (own["wilcoxon_p"] == 1.0).all() and (own["ttest_p"] == 1.0).all()
    assert (own["test_note"] == "all differences are 0").all()


def test_verdict_numbers_are_the_computed_ones():
    X, Y, g = _sharing(6, 3)
    ev = _ground_truth_evaluate(X, Y, g)
    main = ev.comparisons.query("method == 'combined' and baseline == 'ridge'")
    # the largest mean difference among the fractions that pass the rule (fraction 0.1
    # has a larger one, +0.119, but p = 0.035 > 0.05 / 3: it is not reported)
    passed = main.query("ttest_p < 0.05 / 3 and mean_diff > 0.01 and wins > losses")
    assert 0 < len(passed) < len(main)
    pick = passed.loc[passed["mean_diff"].idxmax()]
    assert ev.verdict.startswith(
        f"pooling helps on these data, by {pick.mean_diff:+.3f} R^2 at calibration fraction "
        f"{pick.fraction:g} (combined decoder minus per-animal ridge, mean over animals; "
        f"{pick.wins} wins / {pick.ties} ties / {pick.losses} losses over 6 animals; paired "
        f"t-test p = {pick.ttest_p:.3g} (threshold {0.05 / 3:.3g} = level 0.05 / 3 "
        f"calibration fractions tested), Wilcoxon p = {pick.wilcoxon_p:.3g})"
    ), ev.verdict
    assert pick.ttest_p < 0.05 / 3
    # and the mean difference is the mean over animals of the per-animal differences
    wide = ev.animal_scores.query("feature == 'pooled' and fraction == @pick.fraction")
    r2 = wide.pivot_table(index="animal", columns="method", values="r2")
    np.testing.assert_allclose(pick.mean_diff, (r2["combined"] - r2["ridge"]).mean())


def test_verdict_picks_a_side_by_chance_at_most_at_rate_level():
    """Null of the decision rule: per-animal differences symmetric about 0, 6 animals,
    3 fractions. The verdict takes the best of 3 tests, so at level 0.05 each it picked
    a side ~14% of the time; held to level / 3 it must stay near 5%."""
    rng = np.random.default_rng(0)
    cfg = dict(tie_tolerance=0.01, level=0.05, all_k_equal_p=False, notes=[])
    n_runs, sides = 200, 0
    for _ in range(n_runs):
        rows = []
        diff = rng.normal(0.0, 0.03, size=(6, len(_FRACTIONS)))
        for a in range(6):
            for j, f in enumerate(_FRACTIONS):
                base = 0.3 + rng.normal(0.0, 0.05)
                for method, r2 in (("constant", 0.0), ("ridge", base),
                                   ("combined", base + diff[a, j])):  # fmt: skip
                    rows.append(dict(animal=a, fraction=f, method=method, feature="pooled",
                                     r2=r2))  # fmt: skip
        table = pd.DataFrame(rows)
        line, _ = _verdict(_comparison_table(table, 0.01, 0.05), _summary_table(table), cfg)
        sides += not line.startswith("pooling is neutral")
    # binomial(200, 0.05): sd 1.5%; the old rule gave ~14%
    assert sides / n_runs < 0.1, sides / n_runs
