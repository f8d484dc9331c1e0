"""`validate` reports the stages whose learning order the analyses would need and lack.

Without ``[analysis] stages`` only novice, intermediate and expert have a known order:
several stages of which one has another label make ``sharedrep run`` stop, so validate
reports it, naming the labels. With the list, a stage left out of it is a deliberate
selection, also for the stimulation responses. Validate and the run agree case by case.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sharedrep.app.cli import app
from sharedrep.data.studyfile import StudyError, load_study, validate_study
from sharedrep.study import run_study, stimulation_responses
from sharedrep.study._common import StageOrderError, given_order, ordered_stages

#: A small, fast run: it only has to reach its stage-ordering analyses (days_per_stage
#: keeps the 3 days of a single stage: fewer, of a stage other than novice, make
#: shared_representation fail, a failure that has nothing to do with the stages' order).
SETTINGS = dict(
    alpha=1.0,
    lags=[0],
    cv=2,
    n_permutations=4,
    n_bootstrap=4,
    n_perm_units=9,
    n_perm_overlap=19,
    profile_lags=[0, 2],
    days_per_stage=3,
    n_jobs=1,
)
ORDER_PROBLEM = "learning order"


@pytest.fixture(scope="module")
def sim_toml(tmp_path_factory):
    """2 mice x days 1, 7, 14 (novice, intermediate, expert) of M1 as NWB files; the M1
    sessions of days 1 and 14 have stimulation, those of day 7 none."""
    pytest.importorskip("pynwb")
    from sharedrep.sim.learning_study import simulate_study

    st = simulate_study(
        n_mice=2, days=(1, 7, 14), populations=("m1",), trials_per_session=20, seed=0
    )
    assert {s.day for s in st.sessions if len(s.stimulation)} == {1, 14}
    return st.write(tmp_path_factory.mktemp("stages") / "sim")


def _variant(toml: Path, labels: tuple, stages=None) -> Path:
    """A copy of ``toml`` whose sessions of days 1, 7, 14 have the stages ``labels`` and
    whose ``[analysis] stages`` is ``stages`` (None: no list)."""
    text = re.sub(r"^stages = .*\n", "", toml.read_text(), flags=re.M)
    by_day = dict(zip((1, 7, 14), labels, strict=True))
    text = re.sub(
        r'^day = (\d+)\nstage = ".*"$',
        lambda m: f'day = {m[1]}\nstage = "{by_day[int(m[1])]}"',
        text,
        flags=re.M,
    )
    if stages is not None:
        text = text.replace("[analysis]\n", f"[analysis]\nstages = {json.dumps(stages)}\n", 1)
    out = toml.parent / f"{'-'.join(labels)}-{'-'.join(stages or ['none'])}.toml"
    out.write_text(text)
    return out


def _quiet(func, *args, **kwargs):
    """``func(...)`` without the warnings of the relabelled NWB files (their stored stage
    is novice / intermediate / expert: a deliberate relabelling)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r".* in the study file contradicts ", UserWarning)
        return func(*args, **kwargs)


def _order_problems(toml: Path, **kwargs) -> list[str]:
    return [p for p in _quiet(validate_study, toml, **kwargs) if ORDER_PROBLEM in p]


def test_stages_of_unknown_order_without_a_list_are_a_problem(sim_toml):
    toml = _variant(sim_toml, ("naive", "naive", "trained"))
    (problem,) = _quiet(validate_study, toml)
    assert problem.startswith(
        "[analysis]: the learning order of the stages 'naive', 'trained' is unknown (only "
        "novice, intermediate and expert have a known order)"
    )
    assert 'in the [analysis] table: stages = ["naive", "trained"]' in problem
    # the shallow check knows the stages from the study file too
    assert _quiet(validate_study, toml, deep=False) == [problem]
    with pytest.raises(StudyError, match="'naive', 'trained' is unknown"):
        _quiet(load_study, toml)
    # with the list (in learning order) the study is valid
    listed = _variant(sim_toml, ("naive", "naive", "trained"), ["naive", "trained"])
    assert _quiet(validate_study, listed) == []
    # novice / expert, or a single stage of any name, need no list
    for labels in (("novice", "novice", "expert"), ("naive", "naive", "naive")):
        assert _quiet(validate_study, _variant(sim_toml, labels), deep=False) == []


def test_the_example_list_follows_the_days_and_typos_are_named(sim_toml):
    (problem,) = _order_problems(_variant(sim_toml, ("post", "novcie", "expert")))
    assert "the learning order of the stages 'post', 'novcie' is unknown" in problem
    assert 'stages = ["post", "novcie", "expert"] (here by first day: check the order)' in problem
    assert problem.endswith("or correct the misspelt stages ('novcie': did you mean 'novice'?)")


def test_a_misspelt_stage_is_reported_once(sim_toml):
    # one session's "novcie": a typo (named as such), not a stage of unknown order
    text = _variant(sim_toml, ("novice", "novice", "expert")).read_text()
    toml = sim_toml.parent / "one_typo.toml"
    toml.write_text(text.replace('stage = "novice"', 'stage = "novcie"', 1))
    problems = _quiet(validate_study, toml, deep=False)
    # (the file stores "novice": the entry contradicts it, a problem of its own)
    (problem,) = [p for p in problems if "stored in" not in p]
    assert "stage 'novcie' is used by this session only" in problem


def test_cli_validate_fails_and_names_the_stages(sim_toml):
    toml = _variant(sim_toml, ("naive", "naive", "trained"))
    result = _quiet(CliRunner().invoke, app, ["validate", str(toml)])
    assert result.exit_code == 1
    out = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "1 problem(s)" in out
    assert "the learning order of the stages 'naive', 'trained' is unknown" in out
    assert 'stages = ["naive", "trained"]' in out


def test_an_unlisted_stage_with_stimulation_is_left_out_by_name(sim_toml):
    # 'post' (day 14) has stimulation sessions but is not listed: a selection, which the
    # stimulation responses make as the other analyses do (they used to stop on it)
    toml = _variant(sim_toml, ("pre", "mid", "post"), ["pre", "mid"])
    assert _quiet(validate_study, toml) == []
    collection = _quiet(load_study, toml, population="m1")
    r = stimulation_responses(collection)
    assert set(r.table["stage"]) == {"pre"} and list(r.summary["stages"]) == ["pre"]
    left_out = r.summary["sessions"]["left_out"]
    assert (
        left_out["mouse01-day14-m1"] == "stage 'post' not in this analysis's stages ['pre', 'mid']"
    )


#: (stages of days 1, 7, 14; [analysis] stages; whether the run needs an order it lacks).
CASES = [
    (("naive", "naive", "trained"), None, True),
    (("naive", "naive", "trained"), ["naive", "trained"], False),
    (("novice", "other", "expert"), None, True),
    (("novice", "intermediate", "expert"), None, False),
    (("naive", "naive", "naive"), None, False),
    (("pre", "mid", "post"), ["pre", "mid"], False),
    (("pre", "mid", "post"), ["pre", "post"], False),
    (("novice", "intermediate", "other"), ["novice", "intermediate"], False),
    (("novice", "intermediate", "expert"), ["novice", "intermediate"], False),
]


def _run_refuses(collection) -> bool:
    """Whether ``run_study`` stops because the learning order of a stage is unknown."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # too few permutations: no matter
            run_study(collection, dict(SETTINGS), progress=False)
    except ValueError as exc:
        if StageOrderError not in (type(exc), type(exc.__cause__)):
            raise
        return True
    return False


def _ordered_labels(collection, order) -> list:
    """The stages the run orders: every session's without a list; with one, those it
    lists (the analyses leave the others out)."""
    if order is None:
        return collection.stages
    return [st for st in collection.stages if st in order]


@pytest.mark.parametrize(
    "labels, order, refused",
    CASES,
    ids=[
        "/".join(labels) + f"-{'list ' + '/'.join(order) if order else 'no list'}"
        for labels, order, _ in CASES
    ],
)
def test_validate_flags_what_the_run_refuses(sim_toml, labels, order, refused):
    toml = _variant(sim_toml, labels, order)
    flagged = bool(_order_problems(toml))
    # the sessions as the run sees them (a selection skips the whole-study checks)
    collection = _quiet(load_study, toml, population="m1")
    assert len(collection) == 6
    try:
        ordered_stages(_ordered_labels(collection, order), given_order(collection))
    except StageOrderError:
        raises = True
    else:
        raises = False
    assert flagged == raises == _run_refuses(collection) == refused
