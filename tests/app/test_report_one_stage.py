"""A study with one stage cannot show learning across stages.

Its learning curves trend over the days of that stage only: the report answers the
learning question as not testable (with the reason) and gives the trend as a
description, never "Yes"; every other answer that needs a change between stages, and
every ground-truth claim about a change with learning, is not testable either.
"""

from __future__ import annotations

import dataclasses
import warnings

import pytest

from sharedrep import SessionCollection, simulate_study
from sharedrep.app.demo import ground_truth_checks
from sharedrep.app.report import answer
from sharedrep.study import learning_curves, run_study

SMALL = dict(n_permutations=9, n_bootstrap=9, n_perm_units=19, n_perm_overlap=19, n_jobs=1)
WHY = "one stage analysed: {}; learning needs at least two stages"


def _intermediate_only() -> SessionCollection:
    """4 mice imaged on days 4-9 only: one stage (intermediate), in which they improve."""
    sim = simulate_study(n_mice=4, days=(4, 5, 6, 7, 8, 9), populations=("m1",), seed=3)
    return sim.collection


def _trained_only() -> SessionCollection:
    """The same mice with the stage named "trained" by a lab whose study file lists
    ``stages = ["naive", "trained"]`` but holds the trained sessions only."""
    sessions = [dataclasses.replace(s, stage="trained") for s in _intermediate_only()]
    return SessionCollection(sessions, analysis={"stages": ["naive", "trained"]})


@pytest.mark.parametrize(
    ("collection", "stage"),
    [(_intermediate_only, "intermediate"), (_trained_only, "trained")],
)
def test_one_stage_learning_answer_is_not_testable_with_the_trend_described(collection, stage):
    r = learning_curves(collection())
    s = r.summary
    assert s["stages"] == [stage, stage]
    # the mice do improve over the days of the stage: the trend tests find it ...
    assert any(v["p_holm"] <= 0.05 for v in s["metrics"].values())
    # ... but that is no learning across stages (it was "Yes: 4 of 4 ... changed")
    text = answer("learning_curves", s, r.description)
    assert text.startswith(f"Not testable: {WHY.format(stage)}. Descriptive, within the {stage}")
    assert "Yes" not in text and "changed" not in text
    assert s["learning_testable"] is False
    assert s["learning_reason"] == WHY.format(stage)
    slope = s["metrics"]["success_rate"]["slope_per_day"]
    assert f"mean success rate slope {slope:+.3g} fraction/day" in text
    assert f"Learning across stages is not testable: {WHY.format(stage)}." in r.description


def _metric(p_holm: float, first: float, last: float) -> dict:
    return {
        "unit": "fraction",
        "slope_per_day": 0.05,
        "p_holm": p_holm,
        "n_mice": 8,
        "first_stage_mean": first,
        "last_stage_mean": last,
        "mice_left_out_stage": {},
        "n_mice_stage": 8,
    }


def test_summary_written_before_learning_reason_reads_its_stages():
    one = {
        "n_mice": 8,
        "stages": ["expert", "expert"],
        "metrics": {"success_rate": _metric(0.01, 0.9, 0.9)},
    }
    text = answer("learning_curves", one)
    assert text.startswith(f"Not testable: {WHY.format('expert')}.")
    assert "1 of 1 behavioural measures trended over its days (Holm p <= 0.05, n = 8 mice)" in text
    # no trend p-value: still not testable for learning, and said why
    none = one | {"metrics": {"success_rate": _metric(float("nan"), 0.9, 0.9)}}
    assert "no trend p-value over its days is a number (n = 8 mice)" in answer(
        "learning_curves", none
    )
    # two stages: a trend with training is evidence of learning
    two = one | {
        "stages": ["novice", "expert"],
        "metrics": {"success_rate": _metric(0.01, 0.5, 0.9)},
    }
    assert answer("learning_curves", two).startswith(
        "Yes: 1 of 1 behavioural measures changed with training"
    )


# ------------------------------------------------------------------ whole study, one stage
@pytest.fixture(scope="module")
def expert_sessions():
    """A two-stage simulation (its truth has a lag shift and an overlap increase) whose
    novice sessions were left out: the results hold the expert stage only."""
    sim = simulate_study(
        n_mice=4, days=(2, 13, 14), populations=("thalamus", "m1"), trials_per_session=20, seed=5
    )
    kept = [s for s in sim.collection if s.stage == "expert"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_study(SessionCollection(kept), SMALL, progress=False)
    return results, sim.truth


@pytest.mark.parametrize(
    "name",
    [
        "learning_curves",
        "shared_representation",
        "lag_profiles",
        "encoding_overlap",
        "selective_activation",
    ],
)
def test_answers_that_need_a_stage_change_are_not_testable(expert_sessions, name):
    results, _ = expert_sessions
    text = answer(name, results[name].summary, results[name].description)
    assert text.startswith("Not testable: "), text
    assert "Yes" not in text


def test_learning_claims_of_the_truth_are_not_testable_and_say_why(expert_sessions):
    results, truth = expert_sessions
    expected = truth["expected"]
    assert expected["lag_shift_frames"] > 0 and expected["overlap_increases"]
    checks = ground_truth_checks(results, truth)
    lag, overlap = checks[1], checks[2]
    assert lag.status == "not testable" and not lag.passed
    assert overlap.status == "not testable" and not overlap.passed
    # the reason, not a KeyError of the claim computation
    assert lag.detail == (
        "not testable: only the expert stage was fitted, and a peak-lag shift needs two "
        "stages with the same mice"
    )
    assert overlap.detail.startswith("not testable: ")
    assert "m1: fewer than 2 stages with stimulation sessions" in overlap.detail
    assert "KeyError" not in lag.detail + overlap.detail
