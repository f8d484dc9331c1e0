"""Does the verdict of ``evaluate`` stay right, with the right reason, on designs it was
not built for? Each design has a known answer from :func:`sharedrep.simulate`.

Designs: (b) animals that do not share (each its own encoded behaviour axes), (c) a gain
at small calibration sizes only, (d) one animal without signal among good ones, (e) very
unequal recording lengths, (h) animal labels that spell one animal two ways.
"""

import warnings

import numpy as np
import pandas as pd
import pytest

from sharedrep import ShaReD, simulate
from sharedrep.inference.evaluate import _comparison_table, _summary_table, _verdict, evaluate

#: Few samples per animal, 2 of 8 behaviour features encoded (pooling can help).
_REGIME = dict(
    n_units=20, n_behavior=8, n_shared=2, snr=1.0, trial_length=10, shared_variance=1.0,
    behavior_anisotropy=1.0,
)  # fmt: skip
_FRACTIONS = (0.1, 0.2, 0.5)


def _evaluate(X, Y, g, **kw):
    kw = dict(calibration_fractions=_FRACTIONS, n_splits=0, progress=False) | kw
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # calibration-range warnings
        return evaluate(ShaReD(n_shared=2, cv=5), X, Y, g, **kw)


def _sharing(n_animals, seed, **kw):
    """Animals that share one encoded representation (one draw: same behaviour axes)."""
    d = simulate(n_subjects=n_animals, seed=seed, **{**_REGIME, **kw})
    return list(d.neural), list(d.behavior), list(d.groups)


def _not_sharing(n_animals, seed, **kw):
    """Animals with their own encoded behaviour axes (one draw of simulate each)."""
    draws = [simulate(n_subjects=1, seed=100 * seed + s, **{**_REGIME, **kw}) for s in
             range(n_animals)]  # fmt: skip
    return (
        [d.neural[0] for d in draws],
        [d.behavior[0] for d in draws],
        [d.groups[0] for d in draws],
    )


_SHARED_WORSE = "the pure shared read-out (the other animals' axes alone) is worse than"


def test_animals_that_do_not_share_are_not_helped_and_the_verdict_says_why():
    """(b) Without a shared representation the verdict must not say "helps", and it must
    say why pooling does not help: the other animals' axes do not fit (the pure shared
    read-out loses to the animal's own ridge), not merely "no clear difference"."""
    ev = _evaluate(*_not_sharing(6, 1, n_samples=300))
    assert not ev.verdict.startswith("pooling helps"), ev.verdict
    shared = ev.comparisons.query("method == 'shared' and baseline == 'ridge'")
    threshold = 0.05 / int(np.isfinite(shared["ttest_p"]).sum())  # Bonferroni, as the verdict
    worse = shared[
        (shared["ttest_p"] < threshold) & (shared["mean_diff"] < -0.01)
        & (shared["losses"] > shared["wins"])
    ]  # fmt: skip
    assert len(worse) >= 1  # the data have the property the note reports
    first = worse.iloc[0]
    at = f"fraction(s) {first.fraction:g} ({first.mean_diff:+.3f} R^2, {first.losses} losses"
    assert f"{_SHARED_WORSE} the per-animal ridge at calibration {at}" in ev.verdict
    for r in worse.itertuples():
        assert f"{r.fraction:g} ({r.mean_diff:+.3f} R^2, {r.losses} losses / " in ev.verdict
    assert any(n.startswith(_SHARED_WORSE) for n in ev.notes)


def test_shared_animals_get_no_note_that_the_shared_read_out_loses():
    ev = _evaluate(*_sharing(6, 0, n_samples=300))
    assert ev.verdict.startswith("pooling helps on these data"), ev.verdict
    assert _SHARED_WORSE not in ev.verdict


def _table(diffs: dict) -> pd.DataFrame:
    """Per-animal pooled R^2 of constant, ridge and combined; ``diffs[f]`` gives the
    combined-minus-ridge difference of each animal at fraction ``f``."""
    rows = []
    for f, d in diffs.items():
        for a, x in enumerate(d):
            for method, r2 in (("constant", 0.0), ("ridge", 0.3), ("combined", 0.3 + x)):
                rows.append(dict(animal=a, fraction=f, method=method, feature="pooled", r2=r2))
    return pd.DataFrame(rows)


def test_a_gain_at_small_calibration_only_says_where_there_is_none():
    """(c) Many samples per animal: pooling helps with little calibration, the animal's
    own decoder is as good with more. "pooling helps" alone would hide the second part."""
    rng = np.random.default_rng(0)
    gain = 0.05 + rng.normal(0.0, 0.01, 6)  # every animal gains at 0.1
    tie = rng.normal(0.0, 0.002, 6)  # and ties at 0.2 and 0.5
    table = _table({0.1: gain, 0.2: tie, 0.5: tie[::-1]})
    cfg = dict(tie_tolerance=0.01, level=0.05, all_k_equal_p=False, notes=[])
    line, notes = _verdict(_comparison_table(table, 0.01, 0.05), _summary_table(table), cfg)
    assert line.startswith("pooling helps on these data, by +"), line
    by = "by calibration fraction: pooling helps at 0.1; no clear difference at 0.2, 0.5"
    assert by in line and notes[0].startswith(by)


def test_an_animal_without_signal_is_named_as_such():
    """(d) One animal whose units encode nothing (snr 0) among 6 that share: it must be
    named as having no decodable signal, not only (if at all) as a "loss"."""
    X, Y, g = _sharing(6, 0, n_samples=400)
    z = simulate(n_subjects=1, seed=77, **{**_REGIME, "snr": 0.0, "n_samples": 400})
    ev = _evaluate(X + z.neural, Y + z.behavior, g + z.groups)
    assert ev.verdict.startswith("pooling helps on these data"), ev.verdict  # not dragged
    r2 = ev.animal_scores.query("feature == 'pooled' and method != 'constant'")
    best = r2.groupby("animal")["r2"].max()
    assert best[6] <= 0 < best.drop(6).min()  # the data: only animal 6 explains nothing
    named = f"no decodable signal: animal 6 (best pooled R^2 {best[6]:.3f})"
    assert named in ev.verdict and any(n.startswith(named) for n in ev.notes)
    assert "animal 0 (best" not in ev.verdict


def test_unequal_recording_lengths_are_said_to_make_fractions_unequal_sizes():
    """(e) A fraction of a 1000-trial recording is 5x that of a 200-trial one: the verdict
    names a fraction, so it must say which calibration sizes that fraction means."""
    lengths = [2000, 400, 400, 600, 400, 400]  # samples; trials of 10
    ev = _evaluate(*_sharing(6, 0, n_samples=lengths))
    n = ev.scores.query("method == 'constant' and feature == 'pooled'")
    sizes = n.groupby("fraction")["n_calibration"].agg(["min", "max"])
    assert (sizes["max"] >= 4 * sizes["min"]).all()
    parts = ", ".join(f"{f:g} is {r['min']} to {r['max']} trials" for f, r in sizes.iterrows())
    assert f"recordings differ in length, so a calibration fraction is not one calibration " \
        f"size: {parts}" in ev.verdict  # fmt: skip


def test_equal_recording_lengths_get_no_size_note():
    ev = _evaluate(*_sharing(6, 0, n_samples=300))
    assert "recordings differ in length" not in ev.verdict


@pytest.mark.parametrize(
    "labels, clash",
    [
        (["m1", "m01", "m2", "m3", "m4"], "'m1' vs 'm01'"),
        (["mouse_1", "mouse1", "m2", "m3", "m4"], "'mouse_1' vs 'mouse1'"),
        (["M-03", "m3", "m2", "m4", "m5"], "'M-03' vs 'm3'"),
    ],
)
def test_labels_that_spell_one_animal_two_ways_are_refused(labels, clash):
    """(h) As in the study file, subject ids that differ only by separators or leading
    zeros are one animal misspelt: held out apart, its other recording would train the
    fit that scores it."""
    X, Y, g = _sharing(5, 1, n_samples=200)
    with pytest.raises(ValueError, match=f"{clash} differ only by case"):
        _evaluate(X, Y, g, animals=labels)


def test_labels_of_different_animals_are_kept():
    X, Y, g = _sharing(5, 1, n_samples=200)
    ev = _evaluate(X, Y, g, animals=["m1", "m10", "m1_2", "m12", "m2"],
                   calibration_fractions=(0.5,))  # fmt: skip
    assert ev.settings["animals"] == ["m1", "m10", "m1_2", "m12", "m2"]
