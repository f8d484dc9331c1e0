"""Studies that stimulate more than one population: every population is summarised on its
own (never pooled, never dropped), and equals the analysis of that population alone.

Two small simulated M1 studies are combined into one study of the same three mice, the
second relabelled as population ``m2``: both are imaged in stimulation sessions.
"""

from __future__ import annotations

import json

import pytest

from sharedrep import SessionCollection
from sharedrep.app.report import answer, key_numbers
from sharedrep.sim.learning_study import simulate_study
from sharedrep.study import encoding_overlap, stimulation_responses

POPS = ("m1", "m2")
STIM = dict(n_mice=3, populations=("m1",), trials_per_session=30)
OVERLAP_KEYS = ("stages", "difference", "testable", "untestable_reason")


def _same(a, b) -> bool:
    """Equal, NaN included (compared as JSON)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _encoding_table(stim_table):
    """Encoding units by rule: m1 in both stages, m2 in experts only (its change untestable)."""
    enc = stim_table[["subject", "population", "stage", "unit_id"]].drop_duplicates().copy()
    m1 = (enc["population"] == "m1") & (enc["unit_id"] % 3 == 0)
    m2 = (enc["population"] == "m2") & (enc["stage"] == "expert") & (enc["unit_id"] % 4 == 0)
    enc["encodes"] = m1 | m2
    enc["r2_cv"], enc["p_value"], enc["q_value"] = 0.0, 1.0, 1.0
    return enc


@pytest.fixture(scope="module")
def two_pops():
    a = simulate_study(**STIM, days=(1, 14), seed=3)
    b = simulate_study(**STIM, days=(1, 14), seed=8)
    m2 = [
        s.replace(population="m2", session_id=s.session_id.replace("-m1", "-m2"))
        for s in b.collection
    ]
    return SessionCollection(list(a.collection) + m2)


@pytest.fixture(scope="module")
def stim(two_pops):
    both = stimulation_responses(two_pops)
    alone = {pop: stimulation_responses(two_pops, population=pop) for pop in POPS}
    return both, alone


@pytest.fixture(scope="module")
def overlap(two_pops, stim):
    both, alone = stim
    enc = _encoding_table(both.table)
    kw = dict(encoding_table=enc, n_perm=200)
    return (
        encoding_overlap(two_pops, both.table, **kw),
        {pop: encoding_overlap(two_pops, alone[pop].table, **kw) for pop in POPS},
    )


# ------------------------------------------------------------------ stimulation_responses
def test_stimulation_fractions_are_per_population(stim):
    both, alone = stim
    s = both.summary
    assert list(s["populations"]) == list(POPS)
    for pop in POPS:
        solo = alone[pop].summary
        assert list(solo["populations"]) == [pop]
        assert _same(s["populations"][pop]["stages"], solo["stages"])
        for st, row in solo["stages"].items():  # top level: one row per population and stage
            assert _same(s["stages"][f"{pop}/{st}"], {"population": pop, "stage": st, **row})
        v = solo["stages"]["novice"]
        counts = f"{v['n_driven']} driven and {v['n_suppressed']} suppressed of {v['n_units']}"
        assert f"{pop}: novice: {counts} units" in both.description
    assert set(s["stages"]) == {f"{p}/{st}" for p in POPS for st in ("novice", "expert")}
    # the populations differ: a pooled row would have been neither
    fd = [s["populations"][p]["stages"]["expert"]["fraction_driven"] for p in POPS]
    assert fd[0] != fd[1]


def test_stimulation_figure_shows_each_population(stim):
    both, _ = stim
    labels = [t.get_text() for t in both.figure.axes[1].get_xticklabels()]
    assert labels == [f"{p}\n{st}" for p in POPS for st in ("novice", "expert")]


# ------------------------------------------------------------------ encoding_overlap
def test_overlap_summarises_every_population(overlap):
    both, alone = overlap
    s = both.summary
    assert list(s["populations"]) == list(POPS)
    for pop in POPS:
        solo = alone[pop].summary
        assert solo["population"] == pop and list(solo["populations"]) == [pop]
        assert _same(s["populations"][pop], {k: solo[k] for k in OVERLAP_KEYS})
        for st, row in solo["stages"].items():
            assert _same(s["stages"][f"{pop}/{st}"], {"population": pop, "stage": st, **row})
        assert f"In {pop}: " in both.description
    # no single population's numbers pretend to be the whole study's
    assert "population" not in s and "difference" not in s
    assert s["populations"]["m1"]["testable"] and not s["populations"]["m2"]["testable"]
    assert s["testable"] is False
    assert s["untestable_reason"] == "m2: no encoding unit in novice"
    assert set(both.tables["stages"]["population"]) == set(POPS)
    assert [ax.get_title().split(":")[0] for ax in both.figure.axes] == list(POPS)
    json.dumps(s)


# ------------------------------------------------------------------ report answers
def _from_json(summary: dict) -> dict:
    return json.loads(json.dumps(summary))


def test_stimulation_answer_names_every_population(stim):
    s = _from_json(stim[0].summary)
    text = answer("stimulation_responses", s)
    for pop in POPS:
        row = s["populations"][pop]["stages"]["expert"]
        assert f"{100 * row['fraction_driven']:.1f}% of {pop} units in the expert stage" in text
    assert {r["quantity"] for r in key_numbers("stimulation_responses", s)} == {
        f"{p}/{st}: fraction driven" for p in POPS for st in ("novice", "expert")
    }


def test_overlap_answer_names_every_population(overlap):
    o = _from_json(overlap[0].summary)
    text = answer("encoding_overlap", o)
    assert "in m1, the odds that a driven unit also encodes" in text
    assert "Not testable: m2: no encoding unit in novice." in text
    quantities = [r["quantity"] for r in key_numbers("encoding_overlap", o)]
    for pop in POPS:
        assert f"{pop}: novice -> expert: ratio of odds ratios" in quantities
        assert f"{pop}/expert: odds ratio" in quantities


def test_single_population_answers_are_those_of_old_summaries(stim, overlap):
    """A summary without ``populations`` (written before it existed) answers the same,
    but for the stimulated population's name, which only the new summary holds."""
    for name, result in (
        ("stimulation_responses", stim[1]["m1"]),
        ("encoding_overlap", overlap[1]["m1"]),
    ):
        new = _from_json(result.summary)
        old = {k: v for k, v in new.items() if k != "populations"}
        assert answer(name, new).replace("% of m1 units", "% of units") == answer(name, old)
        assert key_numbers(name, new) == key_numbers(name, old)
    stim_new = _from_json(stim[1]["m1"].summary)
    assert "% of m1 units in the novice stage" in answer("stimulation_responses", stim_new)


def test_overlap_change_not_computed_has_no_stage_labels():
    s = {
        "population": "m1",
        "stages": {},
        "difference": {},
        "testable": False,
        "untestable_reason": "m1: fewer than 2 stages with stimulation sessions",
    }
    (row,) = key_numbers("encoding_overlap", s)
    assert row["quantity"] == "change with learning: ratio of odds ratios"
    assert row["reason"] == s["untestable_reason"]


# ------------------------------------------------------------------ stages without stimulation
def test_stage_without_stimulation_is_named_as_such():
    """An intermediate stage imaged without stimulation is left out for that reason, not
    as a stage outside the analysis."""
    st = simulate_study(n_mice=2, days=(1, 5, 14), populations=("m1",), trials_per_session=20)
    r = stimulation_responses(st.collection)
    o = encoding_overlap(st.collection, r.table, n_perm_units=19, n_perm=50)
    left = o.summary["sessions"]["left_out"]
    assert set(left) == {"mouse01-day05-m1", "mouse02-day05-m1"}
    assert set(left.values()) == {
        "no stimulation session of m1 in the intermediate stage was analysed (the overlap "
        "needs units classified by stimulation)"
    }


def test_intermediate_stimulation_sessions_are_used(two_pops):
    """Stimulation in three stages: each has its per-stage test; the change is first vs last."""
    inter = [
        s.replace(day=5, stage="intermediate", session_id=s.session_id.replace("day01", "day05"))
        for s in simulate_study(**STIM, days=(1, 14), seed=5).collection
        if s.day == 1
    ]
    col = SessionCollection(list(two_pops.filter(population="m1")) + inter)
    r = stimulation_responses(col)
    o = encoding_overlap(col, r.table, encoding_table=_encoding_table(r.table), n_perm=50)
    assert set(o.summary["stages"]) == {"novice", "intermediate", "expert"}
    d = o.summary["difference"]
    assert (d["stage_from"], d["stage_to"]) == ("novice", "expert")
    assert o.summary["sessions"]["n_left_out"] == 0


def test_overlap_stages_are_in_learning_order(overlap):
    both, alone = overlap
    for pop in POPS:
        assert list(both.summary["populations"][pop]["stages"]) == ["novice", "expert"]
        assert list(alone[pop].summary["stages"]) == ["novice", "expert"]
    d = alone["m1"].description
    assert d.index("novice: MH odds ratio") < d.index("expert: MH odds ratio")


def test_stimulation_figure_keeps_learning_order_when_a_population_lacks_a_stage(two_pops):
    # m1 stimulated only as expert, m2 in both stages: the axis still reads novice first
    sessions = [s for s in two_pops if not (s.population == "m1" and s.stage == "novice")]
    r = stimulation_responses(SessionCollection(sessions))
    labels = [t.get_text() for t in r.figure.axes[1].get_xticklabels()]
    assert [lab.split("\n")[1] for lab in labels if lab.startswith("m2")] == ["novice", "expert"]
