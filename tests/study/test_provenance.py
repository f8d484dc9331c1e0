"""Trust in the analyses: each states the sessions it used and left out (and why), and
every error inside one names the analysis, population, stage, session and subject.

Small simulated studies (3 mice, days 1 and 14, 20 trials per session) are corrupted
the way a careless user would: a mistyped stage label, one huge or infinite value in one
session's neural data, an unreadable trial flag.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sharedrep import SessionCollection
from sharedrep.sim.learning_study import simulate_study
from sharedrep.study import (
    encoding_by_population,
    lag_profiles,
    learning_curves,
    run_study,
    shared_representation,
    stimulation_responses,
)
from sharedrep.study._common import (
    UNSPECIFIED,
    AnalysisError,
    analysis,
    naming,
    origin,
    session_provenance,
)
from sharedrep.study.populations import fit_cells

SMALL = dict(n_mice=3, days=(1, 14), trials_per_session=20)


@pytest.fixture(scope="module")
def thalamus():
    return simulate_study(**SMALL, populations=("thalamus",), seed=0).collection


def _with(collection, session_id, **changes):
    """The collection with one session replaced (``Session.replace(**changes)``)."""
    return SessionCollection(
        [s.replace(**changes) if s.session_id == session_id else s for s in collection],
        name=collection.name,
        analysis=collection.analysis,
        source=collection.source,
    )


def _check_provenance(prov: dict, given: list[str]):
    """Used and left out partition the given sessions, counts match, JSON-serialisable."""
    json.dumps(prov)
    assert prov["n_given"] == len(given)
    assert prov["n_used"] == len(prov["used"]) and prov["n_left_out"] == len(prov["left_out"])
    assert sorted(prov["used"] + list(prov["left_out"])) == sorted(given)
    assert not set(prov["used"]) & set(prov["left_out"])
    assert all(isinstance(v, str) and v for v in prov["left_out"].values())


# ------------------------------------------------------------------ provenance
def test_session_provenance_partitions_the_given_sessions():
    prov = session_provenance(
        ["a", "b", "c", "d"],
        used=["c", "a"],
        left_out={"b": "no trials", "a": "ignored: a is used"},
        partly_used={"c": "not in the trajectories", "d": "ignored: d is not used"},
    )
    assert prov["used"] == ["a", "c"]  # the given order
    assert prov["left_out"] == {"b": "no trials", "d": UNSPECIFIED}
    assert (prov["n_given"], prov["n_used"], prov["n_left_out"]) == (4, 2, 2)
    assert prov["partly_used"] == {"c": "not in the trajectories"}


def test_mistyped_stage_is_left_out_of_learning_curves(thalamus):
    typo = thalamus.filter(subject="mouse02", stage="novice")[0].session_id
    col = _with(thalamus, typo, stage="novcie")
    r = learning_curves(col)
    prov = r.summary["sessions"]
    _check_provenance(prov, [s.session_id for s in col])
    assert prov["left_out"] == {
        typo: "stage 'novcie' not in this analysis's stages ['novice', 'expert']"
    }
    assert prov["n_used"] == len(col) - 1 and typo not in prov["used"]
    # the headline compares the learning stages, not the typo
    assert r.summary["stages"] == ["novice", "expert"]
    assert typo not in set(r.tables["trials"]["session_id"])
    assert len(r.table) == len(col) - 1  # one row per mouse x day
    assert f"{typo} (stage 'novcie'" in r.description


def test_mistyped_stage_is_left_out_of_the_representation(thalamus):
    typo = thalamus.filter(subject="mouse01", stage="expert")[0].session_id
    col = _with(thalamus, typo, stage="novcie")
    r = shared_representation(col)
    prov = r.summary["sessions"]
    _check_provenance(prov, [s.session_id for s in col])
    assert set(prov["left_out"]) == {typo}
    assert prov["left_out"][typo].startswith("stage 'novcie' not in this analysis's stages")
    assert prov["n_used"] == len(col) - 1
    # the mouse is missing from the expert fit, and only from it
    assert r.summary["cells"]["thalamus/expert"]["n_subjects"] == 2
    assert r.summary["cells"]["thalamus/novice"]["n_subjects"] == 3


def test_selection_reasons_of_the_fits():
    """Population not requested, day beyond days_per_stage, single-mouse cell: named."""
    st = simulate_study(n_mice=2, days=(1, 2, 14), trials_per_session=10, seed=3)
    col = st.collection
    # mouse02 loses its expert thalamus session: the expert cell has a single mouse
    lone = col.filter(subject="mouse02", population="thalamus", stage="expert")[0].session_id
    col = SessionCollection([s for s in col if s.session_id != lone])
    left_out: dict = {}
    cells = fit_cells(col, populations=["thalamus"], days_per_stage=1, left_out=left_out)
    assert list(cells) == [("thalamus", "novice")]
    used = {sid for args in cells.values() for ids in args.session_ids for sid in ids}
    assert used == {f"mouse0{m}-day01-thalamus" for m in (1, 2)}
    assert set(used) | set(left_out) == {s.session_id for s in col}
    for s in col:
        why = left_out.get(s.session_id)
        if s.population != "thalamus":
            assert why.startswith(f"population {s.population!r} not in this analysis's")
        elif s.day == 2:
            assert why.startswith("day 2 not among the 1 day(s) kept")
        elif s.stage == "expert":
            assert why == "thalamus / expert: 1 mouse"


def test_stimulation_sessions_left_out_are_named():
    st = simulate_study(**SMALL, populations=("thalamus", "m1"), seed=0)
    r = stimulation_responses(st.collection, population="m1")
    prov = r.summary["sessions"]
    _check_provenance(prov, [s.session_id for s in st.collection])
    assert set(prov["used"]) == set(r.table["session_id"])
    by_id = {s.session_id: s for s in st.collection}
    for sid, why in prov["left_out"].items():
        if by_id[sid].population == "thalamus":
            assert why == "population 'thalamus' not in this analysis's populations ['m1']"
        else:
            assert why == "no stimulation trial"


# ------------------------------------------------------------------ errors name their origin
def _corrupt(collection, value):
    """One value of one unit, inside a trial of mouse02's expert session, set to ``value``."""
    s = collection.filter(subject="mouse02", stage="expert")[0]
    neural = s.neural.copy()
    t = int(np.flatnonzero(s.trial_ids() >= 0)[7])
    neural[t, 3] = value
    return _with(collection, s.session_id, neural=neural), s


def _names_origin(exc: AnalysisError, name: str, s) -> None:
    msg = str(exc)
    assert msg.startswith(
        f"{name}: population {s.population!r}, stage {s.stage!r}, session "
        f"{s.session_id!r}, subject {s.subject!r}: "
    ), msg
    assert isinstance(exc, ValueError) and exc.__cause__ is not None
    assert (exc.analysis, exc.population, exc.stage) == (name, s.population, s.stage)
    assert exc.sessions == [s.session_id] and exc.subjects == [s.subject]


_RUNS = {
    "encoding_by_population": lambda c: encoding_by_population(c, n_perm=2, n_boot=2),
    "shared_representation": lambda c: shared_representation(c),
    "lag_profiles": lambda c: lag_profiles(c, [0, 2], n_boot=5),
}


@pytest.mark.parametrize("value", [1e300, -1e300, np.inf])
@pytest.mark.parametrize("name", list(_RUNS))
def test_bad_value_in_one_session_is_named(thalamus, name, value):
    col, s = _corrupt(thalamus, value)
    with pytest.raises(AnalysisError) as info:
        _RUNS[name](col)
    _names_origin(info.value, name, s)
    if np.isfinite(value):
        assert "neural unit 3 holds" in str(info.value) and "overflow" in str(info.value)


def test_run_study_names_the_analysis_and_the_session(thalamus):
    col, s = _corrupt(thalamus, 1e300)
    settings = {"n_permutations": 2, "n_bootstrap": 2}
    with pytest.raises(AnalysisError) as info:
        run_study(col, settings=settings, progress=False)
    _names_origin(info.value, "encoding_by_population", s)


def test_bad_trial_flag_is_named_with_its_session(thalamus):
    s = thalamus.filter(subject="mouse03", stage="novice")[0]
    trials = s.trials.copy()
    trials["stim"] = trials["stim"].astype(object)
    trials.loc[trials.index[2], "stim"] = "maybe"
    col = _with(thalamus, s.session_id, trials=trials)
    with pytest.raises(AnalysisError) as info:
        learning_curves(col)
    _names_origin(info.value, "learning_curves", s)
    assert "'maybe'" in str(info.value)


def test_lag_profiles_without_any_fit_is_an_error(thalamus):
    trial = int(min(len(s.neural) / len(s.trials) for s in thalamus))
    with pytest.raises(AnalysisError, match=r"^lag_profiles: population 'thalamus', stage "):
        lag_profiles(thalamus, [3 * trial, 4 * trial], n_boot=5)


def test_origin_of_an_error_in_a_fit_of_several_mice(thalamus):
    """The mouse whose arrays overflow is named; "subject <i>" gets the mouse's name."""
    args = thalamus.filter(stage="novice").to_fit_args(within_trials=True)
    args.neural[1] = args.neural[1] * 1e300  # mouse02's data overflow (inf in places)

    @analysis("demo_analysis")
    def fit():
        with origin(population="thalamus", stage="novice", cell=args):
            raise FloatingPointError("subject 1: overflow in the sums of squares")

    with pytest.raises(AnalysisError) as info:
        fit()
    msg = str(info.value)
    assert msg.startswith(
        "demo_analysis: population 'thalamus', stage 'novice', session "
        f"{args.session_ids[1][0]!r}, subject 'mouse02': subject 1 (mouse02): overflow"
    ), msg
    assert isinstance(info.value.__cause__, FloatingPointError)
    # without a culprit, every session of the cell is named
    args.neural[1] = np.ones_like(args.neural[1])
    with pytest.raises(AnalysisError) as info:
        fit()
    assert info.value.sessions == [ids[0] for ids in args.session_ids]
    assert info.value.subjects == ["mouse01", "mouse02", "mouse03"]


def test_nested_origins_keep_the_innermost_and_naming_passes_them(thalamus):
    s = thalamus[0]

    @analysis("outer")
    def outer():
        return inner()

    @analysis("inner")
    def inner():
        with origin(population="ignored"), origin(session=s):
            raise ZeroDivisionError("division by zero")

    with pytest.raises(AnalysisError) as info, naming("analysis outer"):
        outer()
    assert str(info.value).startswith(
        f"outer: population {s.population!r}, stage {s.stage!r}, session {s.session_id!r}"
    )
    # errors outside any analysis or origin are left alone
    with pytest.raises(TypeError):
        with origin(session=s):
            raise TypeError("a programming error")
