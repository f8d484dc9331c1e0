"""`sharedrep run` reports of unusual study designs, end to end: every answer, key-number
table and description must say what the results support, and name the mice a paired
statistic leaves out.

Small simulated studies run through :func:`sharedrep.study.run_study` (module-scoped,
tiny settings) and :func:`sharedrep.app.report.write_report`; hand-built summaries where a
design would need a long run (a null study with enough mice to test).
"""

from __future__ import annotations

import json
import re
import warnings

import pytest

from sharedrep import SessionCollection, simulate_study
from sharedrep.app.report import _key_table, answer, key_numbers, rebuild_report, write_report
from sharedrep.study import run_study

SMALL = dict(n_permutations=19, n_bootstrap=19, n_perm_units=99, n_perm_overlap=99)
STUDY = dict(populations=("thalamus", "m1"), trials_per_session=20)


def _run(collection: SessionCollection) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_study(collection, SMALL, progress=False)


def _text(html: str) -> str:
    """HTML as plain text (tags removed, spaces collapsed)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture(scope="module")
def expert_only():
    """3 mice imaged on expert days only (one stage): nothing to compare across stages."""
    return _run(simulate_study(n_mice=3, days=(10, 14), seed=1, **STUDY).collection)


@pytest.fixture(scope="module")
def missing_stages():
    """4 mice; mouse01 has no novice session, mouse02 no expert session."""
    st = simulate_study(n_mice=4, days=(1, 14), seed=7, **STUDY | {"populations": ("m1",)})
    gone = {("mouse01", "novice"), ("mouse02", "expert")}
    return _run(SessionCollection([s for s in st.collection if (s.subject, s.stage) not in gone]))


def _answer(results: dict, name: str) -> str:
    r = results[name]
    return answer(name, r.summary, r.description)


# ------------------------------------------------------------------ one stage
def test_one_stage_activation_answer_says_why_no_change_was_tested(expert_only):
    # it was an empty answer: the analysis computes no change from one stage
    text = _answer(expert_only, "selective_activation")
    assert text == (
        "Not testable: the m1 units were classified as encoding or not in the expert stage "
        "only, and a change with learning needs two stages."
    )
    description = expert_only["selective_activation"].description
    assert "Units classified in the expert stage only: no change tested" in description


def test_one_stage_representation_answer_says_no_change_can_be_measured(expert_only):
    # it was the first sentence of the description (how the fits were made), no answer
    text = _answer(expert_only, "shared_representation")
    assert text.startswith(
        "Not testable: only the expert stage was fitted, so no change of the shared movement "
        "axis with learning can be measured; loadings are aligned to the reference cell "
    )


def test_one_stage_learning_curves_give_no_change_between_stages(expert_only):
    # it read "went from 0.98 to 0.98 fraction (expert to expert)"
    r = expert_only["learning_curves"]
    mean = r.summary["metrics"]["success_rate"]["first_stage_mean"]
    text = _answer(expert_only, "learning_curves")
    assert f"success rate was {mean:.3g} fraction in the expert stage (the only stage)." in text
    assert "expert to expert" not in text and "went from" not in text
    assert "expert -> expert" not in r.description
    assert f"success rate: {mean:.3g} fraction (the expert stage only)" in r.description


def test_untestable_silencing_answer_gives_why_and_the_estimate(expert_only):
    s = expert_only["silencing_effects"].summary
    rate = s["metrics"]["success_rate"]
    assert s["testable"] is False and s["n_mice"] == 3
    text = _answer(expert_only, "silencing_effects")
    assert text.startswith(
        "Not testable: no metric of the headline (success rate, reaction time) can be tested "
        "(success rate: not testable at the 5% level: n = 3 mice allow 8 sign patterns"
    )
    assert (
        f"; with the laser on, success rate goes from an estimated {rate['laser_off']:.3g} to "
        f"{rate['laser_on']:.3g} fraction." in text
    )


def test_report_of_an_old_summary_without_the_new_keys_still_renders(expert_only, tmp_path):
    out = tmp_path / "res"
    write_report(expert_only, out, settings=SMALL)
    meta = json.loads((out / "results.json").read_text())
    for section in meta["analyses"]:
        if section["key"] == "selective_activation":
            section["summary"].pop("stages", None)
            section["summary"].pop("populations", None)
    (out / "results.json").write_text(json.dumps(meta))
    html = _text(rebuild_report(out, overwrite=True).read_text())
    assert (
        "Not testable: the units were classified as encoding or not in fewer than two "
        "stages, and a change with learning needs two stages." in html
    )


# ------------------------------------------------------------------ a stage missing
def test_activation_answer_names_the_mice_without_both_stages(missing_stages):
    c = missing_stages["selective_activation"].summary["changes"]["m1/selectivity"]
    assert set(c["mice_left_out"]) == {"mouse01", "mouse02"} and c["n_mice"] == 2
    text = _answer(missing_stages, "selective_activation")
    assert "n = 2 mice (left out: " in text
    assert "mouse01, no novice session of m1" in text
    assert "mouse02, no expert session of m1" in text


def test_axis_change_names_the_mice_in_one_stage_only(missing_stages):
    r = missing_stages["shared_representation"]
    one_stage = r.summary["angles"]["m1"]["mice_in_one_stage"]
    assert one_stage == {
        "mouse02": "no expert session of m1",
        "mouse01": "no novice session of m1",
    }
    assert (
        "m1 novice vs expert: "
        f"{r.summary['angles']['m1']['max_angle_deg']:.1f} deg (the two fits hold different "
        "mice: mouse02, no expert session of m1; mouse01, no novice session of m1)"
        in r.description
    )
    text = _answer(missing_stages, "shared_representation")
    assert text.startswith("Descriptive, not tested: the shared movement axis changes in m1")
    assert (
        "; the two stages were fitted on different mice (mouse02, no expert session of m1; "
        "mouse01, no novice session of m1)); loadings are aligned" in text
    )


# ------------------------------------------------------------------ hand-built summaries
def _cell(score: float, p: float = 0.01) -> dict:
    return {"score": score, "ci": [score - 0.05, score + 0.05], "p_value": p, "p_min": 0.001}


def _paired(p: float, difference: float, n: int = 6) -> dict:
    """A comparison whose headline test is the paired t-test over ``n`` mice."""
    base = {"difference": difference, "p_value": 0.5, "p_min": 0.01, "testable": True}
    return base | {"paired_difference": difference, "p_paired": p, "n_paired": n}


def _encoding(comparisons: dict, significant: bool) -> dict:
    cells = {"m1/novice": _cell(0.5), "thalamus/novice": _cell(0.42), "m1/expert": _cell(0.4)}
    return {
        "cells": cells,
        "best": "m1/novice",
        "best_comparisons": comparisons,
        "best_significant": significant,
    }


def test_best_cell_that_is_not_significantly_better_is_no_finding():
    # null study: the best cell beats one cell but not the other
    s = _encoding(
        {
            "m1/novice vs thalamus/novice": _paired(0.01, 0.08),
            "m1/expert vs m1/novice": _paired(0.29, -0.1),
        },
        significant=False,
    )
    text = answer("encoding_by_population", s)
    assert text == (
        "Not clearly: m1 in the novice stage has the highest held-out R² (0.50), but it is "
        "not significantly better than m1/expert (paired t-test over mice, p = 0.29)."
    )


def test_significant_best_cell_over_few_mice_says_the_ttest_assumes_normality():
    comparisons = {"m1/novice vs thalamus/novice": _paired(0.01, 0.08, n=3)}
    text = answer("encoding_by_population", _encoding(comparisons, significant=True))
    assert text.startswith("m1 in the novice stage encodes the learned movement best")
    assert "; a t-test over 3 mice, valid only if per-mouse values are normally" in text
    six = {"m1/novice vs thalamus/novice": _paired(0.01, 0.08, n=6)}
    assert "valid only if" not in answer("encoding_by_population", _encoding(six, True))


def test_only_cell_is_not_called_the_best_encoder():
    s = {"cells": {"m1/expert": _cell(0.6)}, "best": "m1/expert", "best_comparisons": {}}
    assert answer("encoding_by_population", s) == (
        "Not testable: m1 in the expert stage is the only cell (held-out R² = 0.60), so there "
        "was nothing to compare it with."
    )


def test_axis_change_is_said_to_be_descriptive():
    angles = {"m1": {"max_angle_deg": 14.0, "stages": ["novice", "expert"]}}
    text = answer("shared_representation", {"angles": angles, "reference": "m1/novice"})
    assert text.startswith("Descriptive, not tested: the shared movement axis changes in m1")
    assert not text.startswith("With learning")


def test_overlap_key_table_gives_a_reason_once():
    stage = {"odds_ratio": None, "p_pooled": None, "n_mice": 6, "n_units": 193}
    stage |= {"n_driven": 0, "n_encoding": 71, "reason": "no driven unit"}
    s = {"population": "m1", "stages": {"novice": stage}, "testable": False}
    table = _text(_key_table(key_numbers("encoding_overlap", s)))
    # it read "not testable: no driven unit of 193 units; no driven unit"
    assert (
        "novice: odds ratio not testable - not testable: no driven unit of 193 units 6 " in table
    )
    # a reason the counts do not give is kept
    other = s | {"stages": {"novice": stage | {"reason": "unit classification too coarse"}}}
    table = _text(_key_table(key_numbers("encoding_overlap", other)))
    assert "no driven unit of 193 units; unit classification too coarse 6 " in table


def test_untestable_activation_counts_one_mouse_in_the_singular():
    row = {"stage_from": "novice", "stage_to": "expert", "change": 0.24, "p_value": None}
    row |= {"n_mice": 1, "testable": False, "reason": "not testable (n = 1 mouse (left out: ...))"}
    text = answer("selective_activation", {"changes": {"m1/selectivity": row}})
    assert text.endswith("from the novice to the expert stage, n = 1 mouse).")


def test_overlap_description_counts_one_mouse_in_the_singular():
    from sharedrep.study.optogenetics import _overlap_difference_text

    diff = {"stage_from": "novice", "stage_to": "expert", "ratio_of_odds_ratios": 5.0}
    diff |= {"p_pooled": 0.01, "n_mice": 1, "mean_log_or_difference": 2.0, "p_mice": 0.5}
    diff |= {"mice_left_out": {}, "reason": "not testable at the 5% level: n = 1 mouse ..."}
    text = _overlap_difference_text(diff, "")
    assert "over 1 mouse (" in text and "1 mice" not in text
