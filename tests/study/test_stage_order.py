"""The learning order of the stages is the user's ``[analysis] stages``, never a guess.

A lab that names its stages "naive"/"expert" or "pre"/"post" gets the same results as
with novice/expert (stage names aside) when it gives ``stages`` in learning order; without
the list, labels of unknown learning order are refused with a message naming them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest

from sharedrep.data.session import SessionCollection
from sharedrep.sim.learning_study import simulate_study
from sharedrep.study import learning_curves, run_study, silencing_effects
from sharedrep.study._common import StageOrderError, ordered_stages, select_days

SETTINGS = dict(
    n_permutations=9,
    n_bootstrap=9,
    n_perm_units=19,
    n_perm_overlap=99,
    profile_lags=[0, 2, 4],
    n_jobs=1,
)
NAMES = [
    {"novice": "naive", "expert": "expert"},
    {"novice": "pre", "expert": "post"},
    {"novice": "untrained", "expert": "trained"},
]


@pytest.fixture(scope="module")
def original():
    return simulate_study(
        n_mice=4,
        days=(1, 2, 13, 14),
        populations=("thalamus", "m1"),
        trials_per_session=20,
        seed=41,
    )


def _relabelled(study, names: dict, stages=None) -> SessionCollection:
    sessions = [dataclasses.replace(s, stage=names.get(s.stage, s.stage)) for s in study.sessions]
    analysis = dict(study.collection.analysis or {})
    analysis.pop("stages", None)
    if stages is not None:
        analysis["stages"] = stages
    return SessionCollection(sessions, analysis=analysis)


def _renamed(obj, names: dict):
    """``obj`` (summaries: dicts, lists, strings, numbers) with the stage names replaced
    (whole words) in every string and key."""
    if isinstance(obj, dict):
        return {_renamed(k, names): _renamed(v, names) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_renamed(v, names) for v in obj]
    if isinstance(obj, str):
        words = "|".join(re.escape(k) for k in sorted(names, key=len, reverse=True))
        return re.sub(rf"(?<![\w-])({words})(?![\w-])", lambda m: f"<{names[m[1]]}>", obj)
    if isinstance(obj, (float, np.floating)) and math.isnan(obj):
        return "nan"
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _comparable(summary: dict, names: dict):
    """The summary without run times, stage names made neutral."""
    out = {k: v for k, v in summary.items() if k != "runtime_s"}
    return json.loads(json.dumps(_renamed(out, names), default=str))


def _same(a: dict, b: dict, names: dict):
    """Summaries ``a`` (novice/expert) and ``b`` (stages renamed by ``names``) are the
    same, stage names aside (the learning curves' ``novice`` / ``expert`` keys, the
    first and last stage's means, keep their names)."""
    neutral_a = {"novice": "STAGE0", "expert": "STAGE1"}
    neutral_b = {**neutral_a, names["novice"]: "STAGE0", names["expert"]: "STAGE1"}
    ca, cb = _comparable(a, neutral_a), _comparable(b, neutral_b)
    assert ca == cb


@pytest.fixture(scope="module")
def original_results(original):
    """``run_study`` on the novice/expert study (once for every renaming compared with it)."""
    return run_study(original.collection, dict(SETTINGS), progress=False)


@pytest.mark.parametrize("names", NAMES[:2], ids=["naive-expert", "pre-post"])
def test_study_with_own_stage_names_matches_novice_expert(original, original_results, names):
    base = original_results
    order = [names["novice"], names["expert"]]
    col = _relabelled(original, names, stages=order)
    res = run_study(col, dict(SETTINGS), progress=False)
    for name in base:
        _same(base[name].summary, res[name].summary, names)
    lc = res["learning_curves"].summary
    assert lc["stages"] == order
    assert res["learning_curves"].summary["sessions"]["n_left_out"] == 0


@pytest.mark.parametrize("names", NAMES, ids=["naive-expert", "pre-post", "untrained-trained"])
def test_analyses_called_directly_take_stages(original, names):
    order = [names["novice"], names["expert"]]
    col = _relabelled(original, names)
    for func in (learning_curves, silencing_effects):
        base = func(original.collection)
        res = func(col, stages=order)
        _same(base.summary, res.summary, names)
    assert learning_curves(col, stages=order).summary["stages"] == order


@pytest.mark.parametrize("names", NAMES, ids=["naive-expert", "pre-post", "untrained-trained"])
def test_unknown_stage_order_is_refused(original, names):
    col = _relabelled(original, names)
    unknown = [v for v in names.values() if v != "expert"]
    hint = r"stages = \[\.\.\.\] in the analysis table of the study file"
    with pytest.raises(ValueError, match=hint) as info:
        learning_curves(col)
    assert isinstance(info.value, StageOrderError)
    for label in unknown:
        assert repr(label) in str(info.value)
    assert "first before learning" in str(info.value)
    with pytest.raises(ValueError, match=hint) as info:
        run_study(col, dict(SETTINGS), progress=False)
    for label in unknown:
        assert repr(label) in str(info.value)


def test_ordered_stages_follows_the_given_order():
    assert ordered_stages(["expert", "naive"], ["naive", "expert"]) == ["naive", "expert"]
    assert ordered_stages(["post", "pre"], ["pre", "post"]) == ["pre", "post"]
    assert ordered_stages(["expert", "novice", "intermediate"]) == [
        "novice",
        "intermediate",
        "expert",
    ]
    with pytest.raises(StageOrderError, match="'naive'"):
        ordered_stages(["expert", "naive"])
    with pytest.raises(StageOrderError, match="'post'"):
        ordered_stages(["pre", "post"], ["pre"])


def test_earliest_days_are_of_the_first_stage(original):
    col = _relabelled(original, {"novice": "pre", "expert": "post"}, stages=["pre", "post"])
    kept = select_days(col, 1)
    days = {s.stage: set() for s in kept}
    for s in kept:
        days[s.stage].add(s.day)
    assert days == {"pre": {1}, "post": {14}}
    base = select_days(original.collection, 1)
    assert [s.session_id for s in base] == [s.session_id for s in kept]


# ------------------------------------------------------------------ which days: one rule
@pytest.fixture(scope="module")
def expert_only():
    """Three expert days per mouse, no novice session: more days than ``days_per_stage``."""
    return simulate_study(
        n_mice=3, days=(10, 12, 14), populations=("thalamus",), trials_per_session=20, seed=0
    ).collection


def _fit_days(collection, days_per_stage=2, **kw) -> set:
    from sharedrep.study.populations import cell_session_ids, fit_cells

    return set(cell_session_ids(fit_cells(collection, days_per_stage=days_per_stage, **kw)))


def test_representation_reads_the_days_its_cells_were_fitted_on(expert_only):
    # the fit kept the earliest expert days (expert is the first stage analysed) while
    # the latents were read from the latest ones: KeyError on a session not kept
    from sharedrep.study import shared_representation

    r = shared_representation(expert_only, days_per_stage=2)
    assert set(r.summary["sessions"]["used"]) == _fit_days(expert_only)


def test_activation_reads_the_days_of_the_encoding_classification(expert_only):
    from sharedrep.study import selective_activation
    from sharedrep.study.optogenetics import unit_encoding_table

    enc = unit_encoding_table(expert_only, days_per_stage=2, n_perm=9)
    r = selective_activation(expert_only, enc, days_per_stage=2)
    assert set(r.summary["sessions"]["used"]) == _fit_days(expert_only)


def test_known_stages_listed_out_of_order_keep_the_novice_days(original):
    c = original.collection  # days 1, 2 (novice) and 13, 14 (expert)
    days = _fit_days(c, 1, stages=["novice", "expert"])
    assert {sid.split("-")[1] for sid in days} == {"day01", "day14"}
    assert _fit_days(c, 1, stages=["expert", "novice"]) == days
