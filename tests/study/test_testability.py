"""Group comparisons of the same mice are paired, and a test that cannot answer says so.

``encoding_by_population`` calls ``compare_groups(paired=True)`` when both groups hold the
same mice (the same mice at two stages, two populations recorded in the same mice) and
unpaired otherwise, and writes ``testable``, ``reason`` and ``p_min`` next to the p-value.
A study too small to test anything (3 mice) says "not testable", never "nan".
"""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from sharedrep import SessionCollection
from sharedrep.sim.learning_study import simulate_study
from sharedrep.study import encoding_by_population, run_study
from sharedrep.study import populations as populations_module
from sharedrep.study._common import p_text, sign_flip_testability, untestable_reason

QUICK = {
    "n_permutations": 9,
    "n_bootstrap": 9,
    "n_perm_groups": 9,
    "n_perm_units": 19,
    "n_perm_overlap": 99,
}


@pytest.fixture(scope="module")
def three_mice():
    return simulate_study(n_mice=3, days=(1, 14), trials_per_session=20, seed=0)


def _recording(monkeypatch) -> list[dict]:
    """Record the keyword arguments of every ``compare_groups`` call of the analysis."""
    calls: list[dict] = []
    real = populations_module.compare_groups

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(populations_module, "compare_groups", spy)
    return calls


def test_same_mice_at_two_stages_are_compared_paired(three_mice, monkeypatch):
    calls = _recording(monkeypatch)
    r = encoding_by_population(
        three_mice.collection, n_perm=2, n_boot=2, n_perm_groups=9, populations=["thalamus"]
    )
    assert [c["paired"] for c in calls] == [True]
    # 3 mice: all 2^3 within-mouse swaps (exact), smallest p 2 / 8
    assert calls[0]["n_perm"] == 8
    row = r.tables["comparisons"].iloc[0]
    assert row["paired"] and row["exact"] and row["n_perm"] == 8
    assert row["p_min"] == pytest.approx(0.25)
    assert not row["testable"]
    assert row["reason"].startswith("not testable at the 5% level: n = 3 paired animals")
    comp = r.summary["comparisons"]["thalamus/expert vs thalamus/novice"]
    assert comp["paired"] is True and comp["testable"] is False
    assert comp["p_min"] == pytest.approx(0.25) and comp["reason"] == row["reason"]
    assert "relabelled within mice" in r.description
    assert row["reason"] in r.description


def test_different_mice_are_compared_unpaired(three_mice, monkeypatch):
    c = three_mice.collection
    # mouse03 has no novice session: the stages hold different mice
    novice3 = {s.session_id for s in c if s.subject == "mouse03" and s.day == 1}
    sub = SessionCollection(
        [s for s in c if s.population == "thalamus" and s.session_id not in novice3]
    )
    calls = _recording(monkeypatch)
    r = encoding_by_population(sub, n_perm=2, n_boot=2, n_perm_groups=9)
    assert [c["paired"] for c in calls] == [False]
    assert calls[0]["n_perm"] == 9
    row = r.tables["comparisons"].iloc[0]
    assert not row["paired"]
    # C(5, 2) = 10 splits > 9: random relabellings, smallest p 1 / 10
    assert not row["exact"] and row["p_min"] == pytest.approx(0.1)
    assert row["reason"].startswith("not testable at the 5% level: n_perm = 9")
    assert "mice relabelled between groups" in r.description


def test_paired_order_follows_group_a():
    a = SimpleNamespace(subjects=["m1", "m2", "m3"])
    b = SimpleNamespace(
        subjects=["m3", "m1", "m2"],
        neural=["n3", "n1", "n2"],
        behavior=["b3", "b1", "b2"],
        groups=["g3", "g1", "g2"],
    )
    (neural, behavior, groups), paired = populations_module._paired_order(a, b)
    assert paired
    assert neural == ["n1", "n2", "n3"] and behavior == ["b1", "b2", "b3"]
    assert groups == ["g1", "g2", "g3"]
    partly = SimpleNamespace(**{**vars(b), "subjects": ["m3", "m1", "m4"]})
    data, paired = populations_module._paired_order(a, partly)
    assert not paired and data == (partly.neural, partly.behavior, partly.groups)


def test_p_text_never_prints_nan():
    assert p_text(0.0312) == "p = 0.0312"
    assert p_text(math.nan, n_mice=3) == "p not testable (n = 3 mice)"
    assert p_text(None, n_mice=1, label="sign-flip p") == "sign-flip p not testable (n = 1 mouse)"
    assert p_text(np.nan, reason="not testable (n = 0 mice)") == "p not testable (n = 0 mice)"
    why = "not testable at the 5% level: n = 3 mice allow 8 sign patterns"
    assert p_text(0.25, reason=why) == f"p = 0.25 ({why})"
    assert untestable_reason(0.2, 3) == "" and untestable_reason(math.nan, 3).endswith("3 mice)")


def test_sign_flip_testability():
    assert sign_flip_testability(0.03125, 5, "greater") == {
        "p_min": 1 / 32,
        "testable": True,
        "reason": "",
    }
    two = sign_flip_testability(0.0625, 5)
    assert two["p_min"] == pytest.approx(2 / 32) and not two["testable"]
    assert "n = 5 mice allow 32 sign patterns" in two["reason"]
    none = sign_flip_testability(math.nan, 0)
    assert not none["testable"] and none["reason"] == "not testable (n = 0 mice)"


def _strings(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, str):
        yield obj


def test_three_mouse_study_says_not_testable_never_nan(three_mice):
    res = run_study(three_mice.collection, settings=QUICK, progress=False)
    nan = re.compile(r"\bnan\b", re.IGNORECASE)
    for name, r in res.items():
        assert not nan.search(r.description), (name, r.description)
        for text in _strings(r.summary):
            assert not nan.search(text), (name, text)
    for name in (
        "learning_curves",
        "encoding_by_population",
        "lag_profiles",
        "encoding_overlap",
        "selective_activation",
        "silencing_effects",
    ):
        assert "not testable" in res[name].description, name
    # 3 mice: no sign-flip test of the silencing can reach 5% (one-sided, 1 / 8)
    sil = res["silencing_effects"].summary
    assert not sil["testable"]
    for v in sil["metrics"].values():
        assert v["p_min"] == pytest.approx(1 / 8) and not v["testable"]
        assert v["reason"].startswith("not testable at the 5% level: n = 3 mice")
    # summaries hold "" for a testable statistic (tables: NaN, an empty CSV cell)
    for v in res["learning_curves"].summary["metrics"].values():
        assert (v["reason"] == "") == v["testable"]
        assert isinstance(v["reason"], str)
    for v in res["encoding_by_population"].summary["comparisons"].values():
        assert v["paired"] and not v["testable"] and v["p_min"] == pytest.approx(0.25)


def test_cell_summary_says_when_its_permutation_test_cannot_answer(three_mice):
    """9 circular shifts: smallest p 0.1. The summary's cells carry ``testable``, ``p_min``
    and ``reason`` (as the table's rows do) and the description says "not testable"."""
    with pytest.warns(UserWarning):
        r = encoding_by_population(
            three_mice.collection, n_perm=9, n_boot=2, n_perm_groups=2, populations=["thalamus"]
        )
    for row in r.table.to_dict("records"):
        cell = r.summary["cells"][f"{row['population']}/{row['stage']}"]
        assert cell["testable"] is False and cell["p_min"] == pytest.approx(0.1)
        assert cell["reason"] == row["reason"]
        assert cell["reason"].startswith("not testable at the 5% level: n_perm = 9")
        text = re.search(rf"{row['population']}/{row['stage']}: R\^2[^;]*", r.description)
        assert f"({cell['reason']})" in text.group(0)


def test_sign_flip_reason_agrees_with_one_mouse():
    one = sign_flip_testability(0.5, 1)["reason"]
    assert one == (
        "not testable at the 5% level: n = 1 mouse allows 2 sign patterns, smallest "
        "achievable p = 1"
    )
    assert "n = 3 mice allow 8 sign patterns" in sign_flip_testability(0.25, 3)["reason"]
