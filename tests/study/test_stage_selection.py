"""``[analysis] stages`` selects the same stages in every analysis.

A stage left out of the list is a selection: every analysis leaves its sessions out and
names them, whether the list comes from the study file (``collection.analysis``), from
``run_study``'s settings or from an analysis's ``stages=``. A list of novice,
intermediate and expert only used to select nothing in the learning curves, the
stimulation, the overlap and the activation (every known stage present was used), so one
report mixed a one-stage encoding analysis with two-stage learning curves.
"""

from __future__ import annotations

import re
import warnings

import pytest

from sharedrep import SessionCollection, simulate_study
from sharedrep.app.report import answer
from sharedrep.study import (
    encoding_overlap,
    learning_curves,
    run_study,
    selective_activation,
    silencing_effects,
    stimulation_responses,
)
from sharedrep.study._common import (
    StageOrderError,
    default_stages,
    ordered_stages,
    selected_stages,
)
from sharedrep.study.pipeline import ANALYSES
from sharedrep.study.populations import analysed_stages

SMALL = dict(
    n_permutations=9,
    n_bootstrap=9,
    n_perm_units=19,
    n_perm_overlap=19,
    profile_lags=[0, 2],
    n_jobs=1,
)
#: Analyses whose results are per stage: their table has a ``stage`` column.
STAGED = tuple(a for a in ANALYSES if a != "silencing_effects")
STAGE_REASON = re.compile(r"stage '(\w+)' not in this analysis's stages \[")


@pytest.fixture(scope="module")
def sessions():
    """3 mice, thalamus and M1, days 2 (novice), 6 (intermediate), 13 and 14 (expert);
    M1 stimulation on days 2 and 14, silencing on day 13."""
    sim = simulate_study(
        n_mice=3,
        days=(2, 6, 13, 14),
        populations=("thalamus", "m1"),
        trials_per_session=20,
        seed=5,
    )
    return list(sim.collection)


def _run(collection, settings=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_study(collection, {**SMALL, **(settings or {})}, progress=False)


@pytest.fixture(scope="module")
def expert_only(sessions):
    """``stages = ["expert"]`` given in Python (run_study's settings)."""
    return _run(SessionCollection(sessions), {"stages": ["expert"]})


@pytest.fixture(scope="module")
def no_intermediate(sessions):
    """``[analysis] stages = ["novice", "expert"]`` of the study file, on a study that
    also has intermediate sessions."""
    return _run(SessionCollection(sessions, analysis={"stages": ["novice", "expert"]}))


def _check_selection(results, sessions, selected: list[str]) -> None:
    """Every analysis used sessions of the ``selected`` stages only and named each
    session of another stage as left out by the stage list (or by its population)."""
    stage_of = {s.session_id: s.stage for s in sessions}
    for name, r in results.items():
        prov = r.summary["sessions"]
        assert {stage_of[sid] for sid in prov["used"]} <= set(selected), name
        for sid, why in prov["left_out"].items():
            if stage_of[sid] in selected:
                continue
            match = STAGE_REASON.match(why)
            assert match or why.startswith("population "), (name, sid, why)
            assert match is None or match[1] == stage_of[sid]
        if name in STAGED:
            assert set(r.table["stage"]) <= set(selected), name


def test_one_listed_stage_is_the_only_stage_of_every_analysis(expert_only, sessions):
    _check_selection(expert_only, sessions, ["expert"])
    for name in STAGED:
        assert set(expert_only[name].table["stage"]) == {"expert"}, name
    curves = expert_only["learning_curves"].summary
    assert curves["stages"] == ["expert", "expert"]
    assert curves["learning_testable"] is False
    assert list(expert_only["stimulation_responses"].summary["stages"]) == ["expert"]
    assert list(expert_only["encoding_overlap"].summary["stages"]) == ["expert"]
    assert expert_only["selective_activation"].summary["stages"] == ["expert"]
    # the report's learning answer: not "Yes ... (novice to expert)"
    r = expert_only["learning_curves"]
    text = answer("learning_curves", r.summary, r.description)
    assert text.startswith("Not testable: one stage analysed: expert"), text
    assert "novice" not in text


def test_a_stage_left_out_of_the_list_is_left_out_everywhere(no_intermediate, sessions):
    _check_selection(no_intermediate, sessions, ["novice", "expert"])
    intermediate = [s.session_id for s in sessions if s.stage == "intermediate"]
    for name, r in no_intermediate.items():
        left_out = r.summary["sessions"]["left_out"]
        assert set(intermediate) <= set(left_out), name
    curves = no_intermediate["learning_curves"]
    assert set(curves.table["stage"]) == {"novice", "expert"}
    assert curves.summary["stages"] == ["novice", "expert"]
    assert "day 6" not in curves.description and "intermediate" in curves.description


def test_stages_of_each_analysis_in_python(no_intermediate, sessions):
    col = SessionCollection(sessions)  # no list: every stage present
    assert set(learning_curves(col).table["stage"]) == {"novice", "intermediate", "expert"}
    assert set(learning_curves(col, stages=["expert"]).table["stage"]) == {"expert"}
    stim = stimulation_responses(col, stages=["expert"])
    assert set(stim.table["stage"]) == {"expert"}
    assert list(stim.summary["stages"]) == ["expert"]
    # a stimulation table and a unit-encoding table of both stages, restricted by stages=
    both_stim = no_intermediate["stimulation_responses"].table
    units = no_intermediate["encoding_overlap"].tables["unit_encoding"]
    assert set(both_stim["stage"]) == set(units["stage"]) == {"novice", "expert"}
    ov = encoding_overlap(col, both_stim, encoding_table=units, n_perm=19, stages=["expert"])
    assert set(ov.table["stage"]) == {"expert"} and list(ov.summary["stages"]) == ["expert"]
    stage_of = {s.session_id: s.stage for s in sessions}
    assert {stage_of[sid] for sid in ov.summary["sessions"]["used"]} == {"expert"}
    act = selective_activation(col, units, stages=["expert"])
    assert set(act.table["stage"]) == {"expert"} and act.summary["stages"] == ["expert"]
    assert {stage_of[sid] for sid in act.summary["sessions"]["used"]} == {"expert"}


def test_silencing_leaves_out_the_sessions_of_unlisted_stages(sessions):
    col = SessionCollection(sessions)
    assert silencing_effects(col).summary["sessions"]["n_used"] > 0  # day 13: expert
    r = silencing_effects(col, stages=["novice"])
    assert r.summary["skipped"] == "no silencing sessions in the selected stages ['novice']"
    assert r.summary["sessions"]["used"] == []
    for s in sessions:
        if s.stage != "novice":
            why = r.summary["sessions"]["left_out"][s.session_id]
            assert why == f"stage {s.stage!r} not in this analysis's stages ['novice']"
    stim = stimulation_responses(col, stages=["intermediate"])
    assert stim.summary["skipped"] == (
        "no stimulation sessions in the selected stages ['intermediate']"
    )


def test_default_stages_of_the_cells_follow_the_list(sessions):
    listed = SessionCollection(sessions, analysis={"stages": ["expert"]})
    assert default_stages(listed) == analysed_stages(listed) == ["expert"]
    full = SessionCollection(sessions, analysis={"stages": ["novice", "intermediate", "expert"]})
    assert analysed_stages(full) == ["novice", "intermediate", "expert"]
    # without a list: novice and expert (unchanged)
    assert analysed_stages(SessionCollection(sessions)) == ["novice", "expert"]


def test_selected_stages_is_the_one_rule():
    present = ["expert", "intermediate", "novice"]
    assert selected_stages(present) == ["novice", "intermediate", "expert"]
    assert selected_stages(present, ["expert"]) == ["expert"]
    assert selected_stages(present, ["novice", "expert"]) == ["novice", "expert"]
    # known labels keep their learning order whatever the list's order
    assert selected_stages(present, ["expert", "novice"]) == ["novice", "expert"]
    # other labels: the list's order; a listed stage that is absent is skipped
    assert selected_stages(["post", "pre", "mid"], ["pre", "post", "late"]) == ["pre", "post"]
    with pytest.raises(StageOrderError, match="'naive'"):
        selected_stages(["expert", "naive"])
    # ordering is not selecting: a stage outside the list is never placed silently
    with pytest.raises(StageOrderError, match="left out of the list"):
        ordered_stages(["novice", "expert"], ["expert"])
