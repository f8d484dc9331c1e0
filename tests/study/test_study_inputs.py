"""Study inputs the analyses must name: absent stimulation / silencing data (skipped, not
"not testable"), an unknown ``stim_population``, the Holm-corrected silencing headline and
a unit-encoding test too coarse to classify any unit."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sharedrep.sim.learning_study import simulate_study
from sharedrep.study import (
    encoding_overlap,
    optogenetics,
    run_study,
    silencing_effects,
    stimulation_responses,
)
from sharedrep.study.inactivation import _METRICS, _summarise


@pytest.fixture(scope="module")
def no_opto():
    """Thalamus only: no stimulation and no silencing session."""
    return simulate_study(
        n_mice=2, days=(1, 14), populations=("thalamus",), trials_per_session=20, seed=0
    ).collection


@pytest.fixture(scope="module")
def with_m1():
    """Stimulation (and silencing) sessions in ``m1`` only."""
    return simulate_study(
        n_mice=2, days=(1, 14), populations=("thalamus", "m1"), trials_per_session=20, seed=0
    ).collection


# ------------------------------------------------------------------ absent data: skipped
def test_no_stimulation_sessions_are_skipped(no_opto):
    r = stimulation_responses(no_opto)
    assert r.summary["skipped"] == "no stimulation sessions in the study"
    assert r.summary["stages"] == {} and len(r.table) == 0


def test_population_without_stimulation_is_skipped(with_m1):
    r = stimulation_responses(with_m1, population="thalamus")
    assert r.summary["skipped"] == "no stimulation sessions in population(s) ['thalamus']"
    assert "skipped" not in stimulation_responses(with_m1, population="m1").summary


def test_no_silencing_sessions_are_skipped_not_untestable(no_opto):
    s = silencing_effects(no_opto, n_perm=5).summary
    assert s["skipped"] == "no silencing sessions in the study"
    assert not s["impairs"] and not s["testable"] and s["metrics"] == {}


# ------------------------------------------------------------------ unknown stim_population
def test_unknown_stim_population_is_refused(with_m1):
    with pytest.raises(ValueError, match=r"populations in the study: \['thalamus', 'm1'\]"):
        stimulation_responses(with_m1, population="M1")
    with pytest.raises(ValueError, match="did you mean 'm1'"):
        stimulation_responses(with_m1, population=["m1", "M1"])


def test_run_study_refuses_unknown_stim_population_before_running(with_m1, monkeypatch):
    import sharedrep.study.pipeline as pipeline

    def boom(*a, **k):  # the first analysis must not run
        raise AssertionError("ran an analysis")

    monkeypatch.setattr(pipeline, "_PLAN", (("learning_curves", boom, lambda r: ((), {})),))
    with pytest.raises(ValueError, match=r"stim_population='M1'.*did you mean 'm1'"):
        run_study(with_m1, {"stim_population": "M1"}, progress=False)
    with pytest.raises(ValueError, match="stim_population='cortex'"):
        run_study(with_m1, {"stim_population": "cortex"}, progress=False)
    with pytest.raises(ValueError, match=r"activation_population='Thalamus'.*'thalamus'"):
        run_study(with_m1, {"activation_population": "Thalamus"}, progress=False)


def test_stimulation_args_check_the_population(with_m1):
    from sharedrep.study.pipeline import _Run, _stimulation_args, resolve_settings

    cfg = resolve_settings(with_m1, {"stim_population": "M1"})
    with pytest.raises(ValueError, match="did you mean 'm1'"):
        _stimulation_args(_Run(with_m1, cfg, model=None))


# ------------------------------------------------------------------ silencing headline: Holm
def _effects(p_success: float, p_rt: float, p_sim: float = 0.001) -> pd.DataFrame:
    ps = {"success_rate": p_success, "reaction_time_s": p_rt, "template_similarity": p_sim}
    return pd.DataFrame(
        [
            {
                "metric": m,
                "unit": unit,
                "laser_off": 1.0,
                "laser_on": 0.5,
                "difference": -0.5 if alt == "less" else 0.5,
                "ci_low": -1.0,
                "ci_high": 1.0,
                "alternative": alt,
                "p_value": ps[m],
                "p_min": 1 / 64,
                "testable": True,
                "reason": math.nan,
                "p_wilcoxon": ps[m],
                "p_ttest": ps[m],
                "p_trials": ps[m],
                "n_mice": 6,
            }
            for m, (unit, _, alt) in _METRICS.items()
        ]
    )


@pytest.mark.parametrize(
    ("p_success", "p_rt", "impairs", "holm_success", "holm_rt"),
    [
        (0.04, 0.04, False, 0.08, 0.08),  # each nominally significant, not after Holm
        (0.03, 0.5, False, 0.06, 0.5),
        (0.04, 0.03, False, 0.06, 0.06),
        (0.02, 0.5, True, 0.04, 0.5),
        (0.5, 0.015625, True, 0.5, 0.03125),
        (0.02, math.nan, True, 0.02, math.nan),  # a p that is not a number: family of one
    ],
)
def test_silencing_impairs_is_holm_corrected(p_success, p_rt, impairs, holm_success, holm_rt):
    s = _summarise(_effects(p_success, p_rt), mice=list("abcdef"))
    assert s["impairs"] is impairs
    m = s["metrics"]
    np.testing.assert_allclose(
        [m["success_rate"]["p_holm"], m["reaction_time_s"]["p_holm"]], [holm_success, holm_rt]
    )
    assert math.isnan(m["template_similarity"]["p_holm"])  # not in the headline family


# ------------------------------------------------------------------ overlap: coarse unit test
def _overlap_inputs(n_mice=4, n_units=30):
    stim, enc = [], []
    for k in range(n_mice):
        for st in ("novice", "expert"):
            for u in range(n_units):
                key = {"subject": f"mouse{k}", "population": "m1", "stage": st, "unit_id": u}
                cls = "driven" if u < 4 else "not responsive"
                stim.append({**key, "session_id": f"mouse{k}-{st}", "classification": cls})
                enc.append(
                    {**key, "r2_cv": 0.0, "p_value": 0.05, "q_value": 1.0, "encodes": False}
                )
    return pd.DataFrame(stim), pd.DataFrame(enc)


@pytest.mark.parametrize("n_perm_units", [19, 9])
def test_overlap_names_a_too_coarse_unit_test(no_opto, monkeypatch, n_perm_units):
    stim, enc = _overlap_inputs()
    calls = []

    def fake_table(collection, **kw):
        calls.append(kw["n_perm"])
        return enc

    monkeypatch.setattr(optogenetics, "unit_encoding_table", fake_table)
    r = encoding_overlap(no_opto, stim, n_perm_units=n_perm_units, n_perm=20)
    assert calls == [n_perm_units]
    s = r.summary
    head = f"unit classification too coarse: n_perm_units={n_perm_units} gives p >= "
    assert not s["testable"] and s["untestable_reason"].startswith(head)
    assert s["unit_test_coarse"].startswith(head)
    for v in s["stages"].values():
        assert v["n_mice"] == 4 and v["n_informative"] == 0
        assert v["reason"].startswith(head)
    assert "n = 0 mice" not in r.description
    assert head in r.description and "in 4 mice" in r.description


def test_overlap_with_enough_unit_permutations_is_not_called_coarse(no_opto, monkeypatch):
    stim, enc = _overlap_inputs()
    monkeypatch.setattr(optogenetics, "unit_encoding_table", lambda c, **kw: enc)
    s = encoding_overlap(no_opto, stim, n_perm_units=99, n_perm=20).summary
    assert s["unit_test_coarse"] == ""
    assert not s["testable"] and "too coarse" not in s["untestable_reason"]
    assert all(v["reason"] == "no encoding unit" for v in s["stages"].values())
    # a given encoding table: its resolution is unknown, nothing is claimed
    given = encoding_overlap(no_opto, stim, encoding_table=enc, n_perm_units=19, n_perm=20)
    assert given.summary["unit_test_coarse"] == ""


# ------------------------------------------------------------------ activation_population
def _activation_run(with_m1, setting, monkeypatch):
    """The unit-encoding table :func:`pipeline._encoding_units` gives the activation, with
    an overlap table of ``m1`` units and ``activation_population=setting``; the tables it
    classifies itself are recorded as ``("classified", populations)``."""
    from types import SimpleNamespace

    from sharedrep.study import pipeline

    cfg = pipeline.resolve_settings(with_m1, {"activation_population": setting})
    run = pipeline._Run(with_m1, cfg, model=None)
    overlap = pd.DataFrame(
        {"subject": ["a", "a"], "population": ["m1", "m1"], "stage": ["novice", "expert"]}
    )
    run.results["stimulation_responses"] = SimpleNamespace(table=pd.DataFrame({"x": [1]}))
    run.results["encoding_overlap"] = SimpleNamespace(tables={"unit_encoding": overlap})
    monkeypatch.setattr(
        pipeline, "unit_encoding_table", lambda c, populations, **kw: ("classified", populations)
    )
    return pipeline._encoding_units(run), overlap


def test_activation_population_is_used_with_stimulation(with_m1, monkeypatch):
    # thalamus asked for while m1 was stimulated: thalamus units, not the overlap's m1 units
    got, _ = _activation_run(with_m1, "thalamus", monkeypatch)
    assert got == ("classified", ["thalamus"])
    got, overlap = _activation_run(with_m1, "m1", monkeypatch)  # classified by the overlap
    pd.testing.assert_frame_equal(got, overlap)
    got, overlap = _activation_run(with_m1, None, monkeypatch)  # default: the stimulated
    assert got is overlap
