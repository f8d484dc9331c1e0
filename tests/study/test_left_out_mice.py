"""Statistics that pair two stages or conditions within each mouse name the mice they
leave out, and why (``mice_left_out``), instead of silently dropping them.

A small simulated study (4 mice, days 1 and 14, 20 trials per session) is split the way
a typo in a study file splits it: the expert sessions of mouse03 filed under the subject
"mouseX". Every paired statistic then uses 3 mice and names mouse03 (no expert session)
and mouseX (no novice session); on the intact study it names none.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from sharedrep import SessionCollection
from sharedrep.sim.learning_study import simulate_study
from sharedrep.study import (
    encoding_by_population,
    encoding_overlap,
    lag_profiles,
    learning_curves,
    selective_activation,
    silencing_effects,
    stimulation_responses,
)
from sharedrep.study._common import (
    left_out_cells,
    left_out_names,
    mice_text,
    no_session,
    nonfinite_mice,
    paired_mice,
    sign_flip_testability,
)

SMALL = dict(n_mice=4, days=(1, 14), trials_per_session=20)
#: The mouse whose expert sessions are filed under another subject id, and that id.
MOUSE, TYPO = "mouse03", "mouseX"


def _split_reasons(population: str | None = None) -> dict:
    """``mice_left_out`` of a novice-expert statistic of the split study."""
    of = f" of {population}" if population else ""
    return {MOUSE: f"no expert session{of}", TYPO: f"no novice session{of}"}


def _relabel(collection: SessionCollection, change) -> SessionCollection:
    """The collection with each session replaced by ``change(session)``."""
    return SessionCollection(
        [change(s) for s in collection],
        name=collection.name,
        analysis=collection.analysis,
        source=collection.source,
    )


@pytest.fixture(scope="module")
def intact():
    return simulate_study(**SMALL, seed=0).collection


@pytest.fixture(scope="module")
def split(intact):
    """mouse03's expert sessions under the subject "mouseX" (a typo in the study file)."""
    return _relabel(
        intact,
        lambda s: s.replace(subject=TYPO) if (s.subject, s.stage) == (MOUSE, "expert") else s,
    )


@pytest.fixture(scope="module", params=["intact", "split"])
def study(request, intact, split):
    """``(collection, expected mice_left_out of population p, mice used)``."""
    if request.param == "intact":
        return intact, lambda pop=None: {}, 4
    return split, _split_reasons, 3


# ------------------------------------------------------------------ helpers
def test_paired_mice_names_the_mice_of_one_group():
    both, out = paired_mice(["a", "b", "c"], ["c", "d", "a"], "no novice", lambda m: f"{m}: none")
    assert both == ["a", "c"]  # in the order of the first group
    assert out == {"b": "b: none", "d": "no novice"}
    assert list(out) == ["b", "d"]
    assert paired_mice(["a"], ["a"], "x", "y") == (["a"], {})
    assert nonfinite_mice(["a", "b", "c"], [1.0, np.nan, None], "no value") == {
        "b": "no value",
        "c": "no value",
    }


def test_no_session_tells_a_missing_label_from_sessions_left_out(split):
    why = no_session(split, "expert", "thalamus")
    assert why(MOUSE) == "no expert session of thalamus"
    assert why("mouse01") == "its expert sessions of thalamus were left out (see sessions)"
    assert no_session(split, "novice", otherwise="fitted elsewhere")("mouse01") == (
        "fitted elsewhere"
    )


def test_left_out_text_is_short():
    out = {f"m{i}": "no expert session" for i in range(7)}
    assert left_out_names(out) == (
        "m0, no expert session; m1, no expert session; m2, no expert session; "
        "m3, no expert session; m4, no expert session; and 2 more"
    )
    assert left_out_names(out, None).count("no expert session") == 7
    assert mice_text(5, {"mouse03": "no expert session"}) == (
        "n = 5 mice (left out: mouse03, no expert session)"
    )
    assert mice_text(5, {}) == mice_text(5) == "n = 5 mice"
    reason = sign_flip_testability(0.25, 2, left_out={"mouseX": "no novice session"})["reason"]
    assert "n = 2 mice (left out: mouseX, no novice session) allow 4 sign patterns" in reason
    cells = left_out_cells(pd.DataFrame({"mice_left_out": [{}, {"a": "x", "b": "y"}]}))
    assert math.isnan(cells["mice_left_out"][0]) and cells["mice_left_out"][1] == "a, x; b, y"


# ------------------------------------------------------------------ analyses
def _check_table_cell(cell, left_out: dict):
    """A table's ``mice_left_out`` cell: every mouse of the summary's ``left_out`` with its
    reason, NaN when none."""
    if left_out:
        assert cell == left_out_names(left_out, None)
    else:
        assert isinstance(cell, float) and math.isnan(cell)


def test_lag_shift_names_the_mice_left_out(study):
    collection, expected, n = study
    r = lag_profiles(collection, [0, 2], populations=["thalamus"], n_boot=20)
    v = r.summary["shifts"]["thalamus"]
    assert v["mice_left_out"] == expected("thalamus")
    assert v["n_subjects"] == n
    row = r.tables["shifts"].iloc[0]
    _check_table_cell(row["mice_left_out"], v["mice_left_out"])
    json.dumps(r.summary)
    if expected():
        # 3 mice cannot reach 0.05: the reason and the description name the two left out
        assert (
            "n = 3 mice (left out: mouse03, no expert session of thalamus; mouseX, "
            in (v["reason"])
        )
        assert "mouseX, no novice session of thalamus" in r.description
    else:
        assert "(left out: mouse" not in r.description


def test_lag_shift_with_fewer_than_two_paired_mice_is_a_row_not_a_gap(intact):
    # the expert sessions of 3 of 4 mice under other ids: 1 mouse in both stages; and
    # a population imaged at the novice stage only. Both get a row that says why there
    # is no shift (they were silently missing from the shifts)
    moved = {"mouse01": "m1x", "mouse02": "m2x", "mouse03": "m3x"}
    split = _relabel(
        intact,
        lambda s: (
            s.replace(subject=moved[s.subject])
            if s.stage == "expert" and s.subject in moved
            else s
        ),
    )
    novice_only = _relabel(
        intact,
        lambda s: (
            s.replace(population="vl") if (s.population, s.stage) == ("thalamus", "novice") else s
        ),
    )
    for collection, pop, n in ((split, "thalamus", 1), (novice_only, "vl", 0)):
        r = lag_profiles(collection, [0, 2], populations=[pop, "other_input"], n_boot=20)
        v = r.summary["shifts"][pop]
        assert v["n_subjects"] == n and not v["testable"]
        assert math.isnan(v["shift_s"]) and math.isnan(v["p_signflip"])
        assert len(v["mice_left_out"]) == (6 if n else 4)
        assert v["reason"].startswith(f"not testable ({mice_text(n)} (left out: ")
        assert len(r.tables["shifts"]) == 2
        assert f"{pop}: novice -> expert shift not estimated" in r.description


@pytest.mark.filterwarnings("ignore:with 2 circular shifts")
def test_encoding_comparison_names_the_mice_left_out(study):
    collection, expected, n = study
    r = encoding_by_population(
        collection, n_perm=2, n_boot=2, n_perm_groups=4, populations=["thalamus"]
    )
    v = r.summary["comparisons"]["thalamus/expert vs thalamus/novice"]
    assert v["mice_left_out"] == expected("thalamus")
    assert v["n_paired"] == n
    _check_table_cell(r.tables["comparisons"]["mice_left_out"].iloc[0], v["mice_left_out"])
    json.dumps(r.summary)
    if expected():
        assert (
            "per-mouse tests over 3 mice (left out: mouseX, no novice session of thalamus; "
            "mouse03, no expert session of thalamus)"
        ) in r.description


def test_learning_curves_name_the_mice_left_out(study):
    collection, expected, n = study
    r = learning_curves(collection)
    # one day per stage: the two halves of mouse03 have no slope, and no stage difference
    slope = {m: "fewer than 2 days with a value" for m in expected()}
    for name, v in r.summary["metrics"].items():
        assert v["mice_left_out_stage"] == expected(), name
        assert v["n_mice_stage"] == n, name
        assert v["mice_left_out"] == slope, name
        assert v["n_mice"] == n, name
    trends = r.tables["trends"].set_index("metric")
    v = r.summary["metrics"]["success_rate"]
    _check_table_cell(trends.loc["success_rate", "mice_left_out_stage"], v["mice_left_out_stage"])
    _check_table_cell(trends.loc["success_rate", "mice_left_out"], v["mice_left_out"])
    json.dumps(r.summary)
    if expected():
        assert (
            "expert - novice difference over n = 3 mice (left out: mouse03, no expert "
            "session; mouseX, no novice session)"
        ) in r.description


def _unit_tables(collection):
    """Stimulation and encoding tables of the M1 units with fixed classes: units 0-2
    driven, units 2-7 encoding, in every mouse and stage (every mouse informative)."""
    stim = stimulation_responses(collection, population="m1").table.copy()
    stim["classification"] = np.where(stim["unit_id"] < 3, "driven", "not responsive")
    enc = stim[["subject", "population", "stage", "unit_id"]].drop_duplicates()
    enc = enc.assign(encodes=(enc["unit_id"] >= 2) & (enc["unit_id"] < 8))
    return stim, enc


def test_overlap_difference_names_the_mice_left_out(study):
    collection, expected, n = study
    stim, enc = _unit_tables(collection)
    r = encoding_overlap(collection, stim, encoding_table=enc, n_perm=50)
    d = r.summary["difference"]
    assert d["mice_left_out"] == expected("m1")
    assert d["n_mice"] == n
    for st, v in r.summary["stages"].items():
        assert v["mice_left_out"] == {}, st
        assert v["n_informative"] == v["n_mice"], st
    json.dumps(r.summary)
    if expected():
        assert "n = 3 mice (left out: mouse03, no expert session of m1; mouseX, no " in d["reason"]
        assert "mouseX, no novice session of m1" in r.description


def test_overlap_names_uninformative_mice(intact):
    stim, enc = _unit_tables(intact)
    novice02 = (stim["subject"] == "mouse02") & (stim["stage"] == "novice")
    stim.loc[novice02, "classification"] = "not responsive"
    r = encoding_overlap(intact, stim, encoding_table=enc, n_perm=50)
    assert r.summary["stages"]["novice"]["mice_left_out"] == {"mouse02": "no driven unit"}
    assert r.summary["stages"]["novice"]["n_informative"] == 3
    assert r.summary["difference"]["mice_left_out"] == {
        "mouse02": "no odds ratio in novice (no driven unit)"
    }
    assert r.summary["difference"]["n_mice"] == 3
    assert "3 informative mice (left out: mouse02, no driven unit)" in r.description


def test_selective_activation_names_the_mice_left_out(study):
    collection, expected, n = study
    _, enc = _unit_tables(collection)
    r = selective_activation(collection, enc)
    assert set(r.summary["changes"]) == {"m1/other", "m1/encoding", "m1/selectivity"}
    for key, v in r.summary["changes"].items():
        assert v["mice_left_out"] == expected("m1"), key
        assert v["n_mice"] == n, key
    changes = r.tables["changes"]
    for cell, v in zip(changes["mice_left_out"], r.summary["changes"].values(), strict=True):
        _check_table_cell(cell, v["mice_left_out"])
    json.dumps(r.summary)
    if expected():
        assert (
            "(n = 3 mice (left out: mouse03, no expert session of m1; mouseX, no novice "
            "session of m1))"
        ) in r.description


def _one_laser(s, subject: str, change: str):
    """Session ``s``, its trials changed when it is ``subject``'s silencing session:
    every trial laser-on (``"all_on"``), or its laser-on trials also stimulation trials
    (``"on_is_stim"``: not used, so no laser-on trial is left)."""
    tr = s.trials
    if s.subject != subject or "silencing" not in tr.columns or not tr["silencing"].any():
        return s
    tr = tr.copy()
    if change == "all_on":
        tr["silencing"] = True
    else:
        tr["stim"] = tr["stim"].astype(bool) | tr["silencing"].astype(bool)
    return s.replace(trials=tr)


def test_silencing_names_the_mice_without_both_lasers(intact):
    col = _relabel(
        intact, lambda s: _one_laser(_one_laser(s, "mouse01", "all_on"), "mouse02", "on_is_stim")
    )
    r = silencing_effects(col, n_perm=50)
    expected = {"mouse01": "no laser-off trial", "mouse02": "no laser-on trial"}
    assert r.summary["mice_left_out"] == expected
    assert r.summary["n_mice"] == 2
    for name, v in r.summary["metrics"].items():
        assert v["mice_left_out"] == expected, name
        assert v["n_mice"] == 2, name
        assert "left out: mouse01, no laser-off trial; mouse02, no laser-on trial" in v["reason"]
    _check_table_cell(r.tables["effects"]["mice_left_out"].iloc[0], r.summary["mice_left_out"])
    assert "2 mice (left out: mouse01, no laser-off trial; mouse02, no laser-on trial)" in (
        r.description
    )
    json.dumps(r.summary)
    clean = silencing_effects(intact, n_perm=50)
    assert clean.summary["mice_left_out"] == {} and clean.summary["n_mice"] == 4
    assert all(v["mice_left_out"] == {} for v in clean.summary["metrics"].values())


def test_stage_values_are_over_the_mice_of_the_change():
    # mouse b has no encoding unit at the last stage: its first-stage value must not
    # enter value_from while it is left out of the change
    from sharedrep.study.activation import _change_row

    a = pd.DataFrame({"selectivity": [0.1, 5.0]}, index=["a", "b"])
    b = pd.DataFrame({"selectivity": [0.4, np.nan]}, index=["a", "b"])
    row = _change_row("m1", "selectivity", a, b, ["a", "b"], first="novice", last="expert", seed=0)
    assert row["n_mice"] == 1 and "b" in row["mice_left_out"]
    assert row["value_from"] == pytest.approx(0.1) and row["value_to"] == pytest.approx(0.4)
    assert row["value_to"] - row["value_from"] == pytest.approx(row["change"])
