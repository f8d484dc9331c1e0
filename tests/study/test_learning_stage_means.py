"""The learning curves' first and last stage means are over the mice in both stages (the
mice of the stage difference), and they, and the silencing texts, carry the study's own
stage names.

A small simulated study (4 mice, M1 only, days 1, 2, 13 and 14, 20 trials per session);
in one version mouse02's novice sessions are dropped, so that mouse02 has expert values
only; in another the stages are called "naive" and "trained".
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest

from sharedrep.app.report import answer
from sharedrep.data.session import SessionCollection
from sharedrep.sim.learning_study import simulate_study
from sharedrep.study import learning_curves, silencing_effects
from sharedrep.study.behavior import METRICS

#: The mouse whose novice sessions are dropped.
MOUSE = "mouse02"
NAMES = {"novice": "naive", "expert": "trained"}


@pytest.fixture(scope="module")
def original() -> SessionCollection:
    return simulate_study(
        n_mice=4, days=(1, 2, 13, 14), populations=("m1",), trials_per_session=20, seed=41
    ).collection


@pytest.fixture(scope="module")
def no_novice(original) -> SessionCollection:
    """``original`` without mouse02's novice sessions."""
    kept = [s for s in original if (s.subject, s.stage) != (MOUSE, "novice")]
    return SessionCollection(kept, analysis=original.analysis)


@pytest.fixture(scope="module")
def renamed(original) -> SessionCollection:
    """``original`` with its stages called "naive" and "trained", in that order."""
    sessions = [dataclasses.replace(s, stage=NAMES[s.stage]) for s in original]
    return SessionCollection(sessions, analysis={"stages": ["naive", "trained"]})


def _paired_means(table, col: str, first: str, last: str) -> tuple[float, float]:
    """Means over the mice with a value in both stages of their per-mouse stage means."""
    per_mouse = table.groupby(["subject", "stage"])[col].mean().unstack("stage")
    both = per_mouse[[first, last]].dropna()
    return float(both[first].mean()), float(both[last].mean())


def test_stage_means_are_over_the_mice_of_the_stage_difference(no_novice):
    r = learning_curves(no_novice)
    assert r.summary["stages"] == ["novice", "expert"]
    expert_only = r.table[r.table["subject"] == MOUSE]
    assert set(expert_only["stage"]) == {"expert"}
    for col, _, _ in METRICS:
        v = r.summary["metrics"][col]
        assert v["mice_left_out_stage"] == {MOUSE: "no novice session"}, col
        assert v["n_mice_stage"] == 3, col
        first, last = _paired_means(r.table, col, "novice", "expert")
        assert v["first_stage_mean"] == pytest.approx(first, rel=1e-12), col
        assert v["last_stage_mean"] == pytest.approx(last, rel=1e-12), col
        diff = v["last_stage_mean"] - v["first_stage_mean"]
        assert diff == pytest.approx(v["stage_difference"], rel=1e-9, abs=1e-12), col
    # mouse02's expert success rate would move the expert mean of every mouse
    expert = r.table[r.table["stage"] == "expert"].groupby("subject")["success_rate"].mean()
    v = r.summary["metrics"]["success_rate"]
    assert not math.isclose(expert.mean(), v["last_stage_mean"], rel_tol=1e-9)
    trends = r.tables["trends"].set_index("metric")
    assert trends.loc["success_rate", "first_stage_mean"] == pytest.approx(
        r.summary["metrics"]["success_rate"]["first_stage_mean"]
    )


def test_stage_means_name_the_mice_left_out(no_novice):
    r = learning_curves(no_novice)
    v = r.summary["metrics"]["success_rate"]
    left_out = "n = 3 mice (left out: mouse02, no novice session)"
    means = f"{v['first_stage_mean']:.3g} -> {v['last_stage_mean']:.3g} fraction"
    assert (
        f"success rate: {means} (novice -> expert; means and expert - novice difference "
        f"over {left_out})"
    ) in r.description
    text = answer("learning_curves", r.summary, r.description)
    assert (
        f"success rate went from {v['first_stage_mean']:.3g} to {v['last_stage_mean']:.3g} "
        f"fraction (novice to expert, over {left_out})"
    ) in text


def test_intact_study_names_no_mouse(original):
    r = learning_curves(original)
    v = r.summary["metrics"]["success_rate"]
    assert v["mice_left_out_stage"] == {} and v["n_mice_stage"] == 4
    assert "left out" not in answer("learning_curves", r.summary, r.description)
    assert "(novice -> expert)" in r.description


def test_answer_of_an_old_summary_reads_its_novice_and_expert_means():
    row = {"unit": "fraction", "novice": 0.25, "expert": 0.75, "p_holm": 0.01, "n_mice": 3}
    row |= {"n_mice_stage": 2, "mice_left_out_stage": {"mouse02": "no novice session"}}
    old = {"n_mice": 3, "stages": ["novice", "expert"], "metrics": {"success_rate": row}}
    text = answer("learning_curves", old, "Fallback.")
    assert "success rate went from 0.25 to 0.75 fraction (novice to expert)." in text


def test_learning_keys_carry_no_stage_name(renamed):
    r = learning_curves(renamed)
    assert r.summary["stages"] == ["naive", "trained"]
    for col, _, _ in METRICS:
        v = r.summary["metrics"][col]
        assert {"first_stage_mean", "last_stage_mean"} <= set(v), col
        assert not {"novice", "expert"} & set(v), col
        first, last = _paired_means(r.table, col, "naive", "trained")
        assert v["first_stage_mean"] == pytest.approx(first, rel=1e-12), col
        assert v["last_stage_mean"] == pytest.approx(last, rel=1e-12), col
    columns = set(r.tables["trends"].columns)
    assert {"first_stage_mean", "last_stage_mean"} <= columns
    assert not {"novice", "expert"} & columns
    assert "(naive -> trained)" in r.description
    assert "(naive to trained)" in answer("learning_curves", r.summary, r.description)


def test_silencing_texts_name_the_template_stage(original, renamed):
    base = silencing_effects(original, n_perm=20)
    r = silencing_effects(renamed, n_perm=20)
    # the same numbers as with novice/expert
    for m, v in base.summary["metrics"].items():
        assert r.summary["metrics"][m]["difference"] == v["difference"], m
    assert "with the mouse's trained template" in r.description
    assert "similarity to trained template: " in r.description
    assert not re.search(r"\bexpert\b", r.description)
    left_out = r.summary["sessions"]["left_out"]
    naive = [s.session_id for s in renamed if s.stage == "naive"]
    assert sorted(left_out) == sorted(naive)
    for sid in naive:
        assert left_out[sid] == (
            "no silencing (laser-on) trial, and not used for its mouse's trained template"
        )
    labels = [ax.get_ylabel() for ax in r.figure.axes]
    assert "similarity to trained template (r)" in labels
    assert not any("expert" in label for label in labels)
    # the default template stage keeps its name
    assert "similarity to expert template: " in base.description
    assert np.isfinite(r.summary["metrics"]["template_similarity"]["difference"])
