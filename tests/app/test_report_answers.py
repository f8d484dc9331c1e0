"""One-line answers and key numbers of the report must not read as a finding the
results do not support (hand-built summaries)."""

from __future__ import annotations

import re

from sharedrep.app.report import _key_table, answer, key_numbers


def _table_text(name: str, summary: dict) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", _key_table(key_numbers(name, summary))))


# ------------------------------------------------------------------ selective activation
def _activation(change: float, p: float, **extra) -> dict:
    row = {
        "stage_from": "novice",
        "stage_to": "expert",
        "change": change,
        "ci": [change - 0.05, change + 0.05],
        "p_value": p,
        "n_mice": 6,
        "testable": True,
        "reason": "",
    }
    return {"changes": {"m1/selectivity": row | extra}}


def test_significant_decrease_of_selectivity_is_not_selective_activation():
    text = answer("selective_activation", _activation(-0.2, 0.01))
    assert not text.startswith("Yes")
    assert text.startswith("No: the selectivity decreases") and "-0.2" in text
    assert answer("selective_activation", _activation(0.2, 0.01)).startswith("Yes:")
    assert answer("selective_activation", _activation(-0.2, 0.3)).startswith("Not clearly:")


def test_activation_marked_not_testable_is_not_testable():
    why = "not testable (n = 2 mice)"
    s = _activation(0.2, 0.01, testable=False, reason=why)
    text = answer("selective_activation", s)
    assert text.startswith("Not testable (n = 2 mice)") and "an estimated +0.2" in text


# ------------------------------------------------------------------ overlap
def _overlap(**difference) -> dict:
    d = {
        "population": "m1",
        "stage_from": "novice",
        "stage_to": "expert",
        "ratio_of_odds_ratios": 6.3,
        "p_mice": 0.5,
        "n_mice": 1,
        "p_min": 0.5,
        "testable": False,
        "reason": "not testable at the 5% level: n = 1 mouse allows 2 sign patterns, "
        "smallest achievable p = 0.5",
    }
    stage = {"odds_ratio": 5.2, "p_pooled": 0.017, "n_mice": 4, "reason": ""}
    return {
        "population": "m1",
        "stages": {"novice": stage, "expert": stage},
        "difference": d | difference,
        "testable": True,
        "untestable_reason": "",
    }


def test_overlap_difference_not_testable_is_said_so():
    s = _overlap()
    text = answer("encoding_overlap", s)
    assert text.startswith("Not testable at the 5% level: n = 1 mouse allows 2 sign patterns")
    assert "Not clearly" not in text and "estimated 6.3" in text
    table = _table_text("encoding_overlap", s)
    assert "novice -&gt; expert: ratio of odds ratios 6.3 - not testable at the 5% level" in table
    assert "6.3 - 0.5" not in table
    # testable: the verdict follows the p-value and the direction
    ok = _overlap(testable=True, reason="", p_mice=0.01, p_min=0.002, n_mice=8)
    assert answer("encoding_overlap", ok).startswith("Yes:")
    down = ok | {}
    down["difference"] = ok["difference"] | {"ratio_of_odds_ratios": 0.2}
    assert answer("encoding_overlap", down).startswith("No: it decreases")


# ------------------------------------------------------------------ encoding by population
def _cell(score: float, **extra) -> dict:
    base = {"score": score, "ci": [score - 0.05, score + 0.05], "p_value": 0.01}
    return base | {"p_min": 0.001, "testable": True, "reason": "", "n_subjects": 4} | extra


def _comparison(**extra) -> dict:
    base = {"difference": 0.3, "p_value": 0.125, "p_min": 0.125, "testable": False}
    base |= {"reason": "not testable at the 5% level: n = 2 paired animals ..."}
    base |= {"paired": True, "paired_difference": 0.3, "p_paired": float("nan")}
    return base | {"n_paired": 2} | extra


def test_encoding_headline_is_not_testable_when_its_comparisons_cannot_reach_5pct():
    s = {
        "cells": {"thal/expert": _cell(0.8), "m1/expert": _cell(0.5)},
        "best": "thal/expert",
        "best_comparisons": {"thal/expert vs m1/expert": _comparison()},
        "best_significant": False,
    }
    text = answer("encoding_by_population", s)
    assert "not significantly better" not in text
    assert "is not testable (thal/expert vs m1/expert: not testable at the 5% level" in text


def test_encoding_headline_with_one_cell_has_nothing_to_compare_with():
    s = {"cells": {"thal/expert": _cell(0.8)}, "best": "thal/expert", "best_comparisons": {}}
    s["best_significant"] = False
    text = answer("encoding_by_population", s)
    assert "nothing to compare it with" in text and "significantly" not in text


def test_encoding_headline_names_the_paired_ttest_it_rests_on():
    # relabelling p = 0.125 (what the comparisons print first), paired t-test p = 0.002
    comp = _comparison(p_paired=0.002, n_paired=4)
    s = {
        "cells": {"thal/expert": _cell(0.8), "m1/expert": _cell(0.5)},
        "best": "thal/expert",
        "best_comparisons": {"thal/expert vs m1/expert": comp},
        "best_significant": True,
    }
    text = answer("encoding_by_population", s)
    assert "significantly better than every cell it was compared with" in text
    assert "paired t-test over mice, largest p = 0.002" in text


# ------------------------------------------------------------------ key numbers
def test_key_numbers_show_untestable_p_values_as_not_testable():
    why = "not testable at the 5% level: n = 4 mice allow 16 sign patterns"
    metric = {"unit": "fraction", "difference": -0.36, "ci": [-0.6, -0.1], "n_mice": 4}
    metric |= {"p_value": 0.0625, "p_min": 0.0625, "testable": False, "reason": why}
    table = _table_text("silencing_effects", {"metrics": {"success_rate": metric}})
    assert why in table and "0.062" not in table
    # no reason: the smallest achievable p says why
    bare = metric | {"reason": ""}
    table = _table_text("silencing_effects", {"metrics": {"success_rate": bare}})
    assert "not testable: smallest achievable p = 0.062 &gt; 0.05" in table
    # lag shifts: p_signflip of a row marked not testable
    shift = {"shift_s": 0.3, "ci_s": [0.2, 0.3], "p_signflip": 0.125, "p_min": 0.125}
    shift |= {"testable": False, "reason": why, "n_subjects": 4}
    table = _table_text("lag_profiles", {"shifts": {"thalamus": shift}})
    assert why in table and "0.12" not in table
    # a testable row keeps its number
    ok = metric | {"p_value": 0.01, "p_min": 0.001, "testable": True, "reason": ""}
    assert " 0.01 " in _table_text("silencing_effects", {"metrics": {"success_rate": ok}})


# ------------------------------------------------------------------ learning, stimulation
def test_learning_answer_prints_the_mice_the_tests_used():
    row = {"unit": "fraction", "novice": 0.5, "expert": 0.98, "p_holm": 0.001, "n_mice": 5}
    row |= {"mice_left_out": {"mouse06": "fewer than 2 days with a value"}}
    s = {"n_mice": 6, "stages": ["novice", "expert"], "metrics": {"success_rate": row}}
    text = answer("learning_curves", s)
    assert "n = 5 of 6 mice" in text and "n = 6 mice" not in text
    s["metrics"]["reaction_time_s"] = row | {"n_mice": 4}
    assert "n = 4-5 of 6 mice" in answer("learning_curves", s)
    full = {"n_mice": 6, "stages": ["novice", "expert"], "metrics": {"x": row | {"n_mice": 6}}}
    assert "n = 6 mice" in answer("learning_curves", full)


def test_stimulation_answer_rounds_consistently():
    s = {"fdr": 0.05, "stages": {"novice": {"fraction_driven": 0.0349}}}
    s["stages"]["expert"] = {"fraction_driven": 0.025}
    text = answer("stimulation_responses", s)
    assert "3.5% of units in the novice stage, 2.5% of units in the expert stage" in text


def test_activation_answer_covers_every_population():
    s = _activation(0.2, 0.01)
    s["changes"]["thalamus/selectivity"] = s["changes"]["m1/selectivity"] | {
        "change": -0.1,
        "p_value": 0.4,
    }
    text = answer("selective_activation", s)
    # each sentence names its population once (no "m1: Yes: in m1, ...")
    assert text.startswith("Yes: in m1, ") and " Not clearly: in thalamus, " in text
    assert "m1: " not in text and "thalamus: " not in text
    assert "-0.1" in text


# ------------------------------------------------------------------ representation
def test_representation_answer_compares_only_with_several_populations():
    def rep(*pops):
        angles = {
            pop: {"max_angle_deg": 10.0 * (k + 1), "stages": ["novice", "expert"]}
            for k, pop in enumerate(pops)
        }
        return {"angles": angles, "reference": "m1/expert"}

    one = answer("shared_representation", rep("m1"))
    assert "changes in m1 (10 deg" in one and "most" not in one
    two = answer("shared_representation", rep("m1", "thalamus"))
    assert "changes most in thalamus (20 deg" in two


# ------------------------------------------------------------------ lag profiles
def test_lag_answer_without_shift_names_custom_stages():
    # stages of any name, in the order the analysis fitted them (it was a fallback to the
    # description: the stage labels have no known order)
    peaks = {
        f"{pop}/{st}": {"peak_lag": 1} for pop in ("m1", "thalamus") for st in ("pre", "post")
    }
    text = answer("lag_profiles", {"shifts": {}, "peaks": peaks}, "Fallback description.")
    assert text == (
        "Not testable: no population has the same 2 or more mice in both the pre and the "
        "post stage, so no peak-lag shift could be computed."
    )
    one = answer("lag_profiles", {"shifts": {}, "peaks": {"m1/trained": {}}}, "Fallback.")
    assert one.startswith("Not testable: only the trained stage was fitted")


def test_significant_t_test_over_few_mice_says_it_rests_on_normality():
    few = answer("selective_activation", _activation(0.2, 0.01, n_mice=3))
    assert few.startswith("Yes:") and "a t-test over 3 mice, valid only if" in few
    assert "valid only if" not in answer("selective_activation", _activation(0.2, 0.01))
    assert "valid only if" not in answer("selective_activation", _activation(0.2, 0.3, n_mice=3))
    metric = {
        "unit": "fraction",
        "p_holm": 0.01,
        "n_mice": 2,
        "first_stage_mean": 0.2,
        "last_stage_mean": 0.8,
        "mice_left_out_stage": {},
        "n_mice_stage": 2,
    }
    s = {"n_mice": 2, "stages": ["novice", "expert"], "metrics": {"success_rate": metric}}
    assert "a t-test over 2 mice, valid only if" in answer("learning_curves", s)
    s["metrics"]["success_rate"]["p_holm"] = 0.4
    assert "valid only if" not in answer("learning_curves", s)


def test_learning_answer_of_one_stage_is_a_trend_over_its_days():
    metric = {"unit": "fraction", "p_holm": 0.01, "n_mice": 8, "first_stage_mean": 0.9}
    metric |= {"last_stage_mean": 0.9, "mice_left_out_stage": {}, "n_mice_stage": 8}
    s = {"n_mice": 8, "stages": ["expert", "expert"], "metrics": {"success_rate": metric}}
    text = answer("learning_curves", s)
    # a trend over the days of one stage is described, not called learning ("Yes")
    assert text.startswith("Not testable: one stage analysed: expert; learning needs at least")
    assert "Descriptive, within the expert stage only: 1 of 1 behavioural measures " in text
    assert "with training" not in text and "Yes" not in text
