"""Ground-truth claims fail loudly: "not recovered" and "not testable" are never hidden.

The claims of ``sharedrep demo`` / ``sharedrep run --truth`` are computed from the
analyses' headline numbers. Here the analyses are replaced by summaries with the keys
the pipeline writes (a recovered answer, then one statistic broken at a time), the truth
comes from the simulator itself, and the verdicts, the exit codes and what the console,
``summary.json`` and the HTML report say are checked.
"""

from __future__ import annotations

import copy
import io
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console
from typer.testing import CliRunner

from sharedrep.app import demo as demo_module
from sharedrep.app._console import EXIT_CLAIMS_FAILED, check_claims, print_truth_checks
from sharedrep.app.cli import app
from sharedrep.app.demo import ground_truth_checks
from sharedrep.app.report import TruthCheck, rebuild_report, write_report

runner = CliRunner()


@pytest.fixture(scope="module")
def truths():
    """The simulator's ground truth with every effect on, and with every effect off."""
    from sharedrep.sim.learning_study import StudyEffects, simulate_study

    small = dict(n_mice=2, days=(1, 14), trials_per_session=10, seed=0)
    return {
        "on": simulate_study(**small).truth,
        "off": simulate_study(effects=StudyEffects.null(), **small).truth,
    }


#: The testability keys of a test that can reach the 5% level, as the summaries hold them.
TESTABLE = {"testable": True, "reason": ""}


def _summaries(thal: str = "thalamus") -> dict:
    """Headline numbers of an analysis run that found every simulated effect."""
    return {
        "encoding_by_population": {
            "best": f"{thal}/expert",
            "cells": {
                f"{thal}/expert": {"score": 0.42, "p_value": 0.025, **TESTABLE, "p_min": 0.025},
                "m1/expert": {"score": 0.20, "p_value": 0.03, **TESTABLE, "p_min": 0.025},
            },
            "best_significant": True,
            "best_comparisons": {
                f"{thal}/expert vs m1/expert": {
                    "difference": 0.22,
                    "p_value": 0.02,
                    **TESTABLE,
                    "p_min": 1 / 100,
                    "paired": False,  # different mice: the relabelling test decides
                    "n_paired": 0,
                }
            },
        },
        "lag_profiles": {
            "shifts": {
                thal: {
                    "stage_from": "novice",
                    "stage_to": "expert",
                    "shift": 3.0,
                    "ci": [1, 4],
                    "p_signflip": 1 / 32,
                    "p_min": 1 / 32,
                    **TESTABLE,
                    "n_subjects": 6,
                }
            },
            "peaks": {f"{thal}/novice": {"peak_lag": 1.0}, f"{thal}/expert": {"peak_lag": 4.0}},
        },
        "encoding_overlap": {
            "stages": {"novice": {"odds_ratio": 1.1}, "expert": {"odds_ratio": 6.0}},
            "difference": {
                "stage_from": "novice",
                "stage_to": "expert",
                "ratio_of_odds_ratios": 5.5,
                "p_pooled": 0.004,
                "p_mice": 0.06,
                "n_mice": 5,
            },
            "testable": True,
        },
        "silencing_effects": {
            "metrics": {
                "success_rate": {
                    "laser_off": 0.8,
                    "laser_on": 0.35,
                    "unit": "fraction",
                    "difference": -0.45,
                    "p_value": 0.03,
                }
            },
            "n_mice": 5,
            "impairs": True,
            "testable": True,
        },
    }


def _results(summaries: dict) -> dict:
    return {k: SimpleNamespace(name=k, summary=v) for k, v in summaries.items()}


def _statuses(checks) -> list[str]:
    return [c.status for c in checks]


def test_recovered_answer_gives_four_recovered_claims(truths):
    checks = ground_truth_checks(_results(_summaries()), truths["on"])
    assert _statuses(checks) == ["recovered"] * 4
    assert all(c.passed and c.testable for c in checks)


def test_missed_effect_is_not_recovered(truths):
    s = _summaries()
    s["encoding_overlap"]["difference"]["p_pooled"] = 0.4  # overlap increase not found
    checks = ground_truth_checks(_results(s), truths["on"])
    assert _statuses(checks) == ["recovered", "recovered", "not recovered", "recovered"]
    assert not checks[2].passed and checks[2].testable


#: One statistic per claim set to NaN: (analysis, path to the statistic, claim index).
NAN_CASES = [
    ("encoding_by_population", ("cells", "thalamus/expert", "p_value"), 0),
    ("encoding_by_population", ("best_comparisons", "thalamus/expert vs m1/expert", "p_value"), 0),
    ("lag_profiles", ("shifts", "thalamus", "shift"), 1),
    ("encoding_overlap", ("difference", "p_pooled"), 2),
    ("encoding_overlap", ("difference", "ratio_of_odds_ratios"), 2),
    ("silencing_effects", ("metrics", "success_rate", "p_value"), 3),
]


@pytest.mark.parametrize("effects", ["on", "off"])
@pytest.mark.parametrize(("analysis", "path", "index"), NAN_CASES)
def test_nan_statistic_is_not_testable_in_either_direction(truths, effects, analysis, path, index):
    s = _summaries()
    node = s[analysis]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = math.nan
    checks = ground_truth_checks(_results(s), truths[effects])
    assert checks[index].status == "not testable"
    assert not checks[index].passed
    assert "not testable" in checks[index].detail
    others = [c for i, c in enumerate(checks) if i != index]
    assert all(c.status != "not testable" for c in others)


def test_overlap_over_zero_mice_is_not_testable_with_the_effect_off(truths):
    """The case of the issue: "p = nan over 0 mice" for a null-direction claim."""
    s = _summaries()
    s["encoding_overlap"]["difference"].update(
        ratio_of_odds_ratios=math.nan, p_pooled=math.nan, p_mice=math.nan, n_mice=0
    )
    s["encoding_overlap"]["testable"] = False
    check = ground_truth_checks(_results(s), truths["off"])[2]
    assert check.claim.startswith("(effect switched off)")
    assert check.status == "not testable" and not check.passed
    assert "p = nan over 0 mice" in check.detail


def test_analysis_that_says_untestable_or_was_skipped(truths):
    s = _summaries()
    s["silencing_effects"]["testable"] = False
    s["lag_profiles"] = {"skipped": "no stage with two days"}
    checks = ground_truth_checks(_results(s), truths["on"])
    assert _statuses(checks) == ["recovered", "not testable", "recovered", "not testable"]
    assert "not computable" in checks[1].detail


#: A permutation test that cannot reach 5% (9 circular shifts: smallest p 0.1).
UNTESTABLE_CELL = {
    "p_value": 0.1,
    "p_min": 0.1,
    "testable": False,
    "reason": "not testable at the 5% level: n_perm = 9 circular shifts, smallest "
    "achievable p = 0.1",
}


@pytest.mark.parametrize("effects", ["on", "off"])
@pytest.mark.parametrize("cell", ["thalamus/expert", "m1/expert"])
def test_encoding_claim_on_an_untestable_cell_is_not_testable(truths, effects, cell):
    """The best cell's or the thalamus expert cell's permutation test cannot reach 5%:
    neither "recovered" nor "not recovered" (the claim could not be detected at all)."""
    s = _summaries()
    enc = s["encoding_by_population"]
    enc["cells"][cell].update(UNTESTABLE_CELL)
    if cell == "m1/expert":  # the best cell, e.g. on null data
        enc["best"] = "m1/expert"
        enc["cells"]["m1/expert"]["score"] = 0.5
        enc["best_significant"] = False
    check = ground_truth_checks(_results(s), truths[effects])[0]
    assert check.status == "not testable" and not check.passed
    assert f"{cell}: not testable at the 5% level" in check.detail


@pytest.mark.parametrize("effects", ["on", "off"])
def test_encoding_claim_on_an_untestable_comparison_is_not_testable(truths, effects):
    """The relabelling test of a comparison with the best cell cannot reach 5%: not
    testable, unless the verdict rests on the paired t-test over the same mice (at least
    3, as ``best_significant`` does), which can."""
    s = _summaries()
    comp = s["encoding_by_population"]["best_comparisons"]["thalamus/expert vs m1/expert"]
    comp.update(
        p_value=2 / 32,
        p_min=2 / 32,
        testable=False,
        reason="not testable at the 5% level: n = 5 paired animals",
    )
    s["encoding_by_population"]["best_significant"] = False
    check = ground_truth_checks(_results(s), truths[effects])[0]
    assert check.status == "not testable" and not check.passed
    # the same 5 mice in both cells: the paired t-test decides
    comp.update(paired=True, n_paired=5, p_paired=0.003, paired_difference=0.2)
    s["encoding_by_population"]["best_significant"] = True
    check = ground_truth_checks(_results(s), truths[effects])[0]
    assert check.status == ("recovered" if effects == "on" else "not recovered")


@pytest.mark.parametrize("effects", ["on", "off"])
def test_timing_claim_on_an_untestable_sign_flip_is_not_testable(truths, effects):
    """2 mice: a bootstrap interval above 0 but a sign-flip test that cannot reach 5%."""
    s = _summaries()
    s["lag_profiles"]["shifts"]["thalamus"].update(
        p_signflip=0.5,
        p_min=0.5,
        testable=False,
        reason="not testable at the 5% level: n = 2 mice allow 4 sign patterns, smallest "
        "achievable p = 0.5",
        n_subjects=2,
    )
    check = ground_truth_checks(_results(s), truths[effects])[1]
    assert check.status == "not testable" and not check.passed
    assert "n = 2 mice allow 4 sign patterns" in check.detail


def test_timing_claim_needs_the_sign_flip_test(truths):
    """A testable sign-flip test that does not reach 5% (one mouse without a shift): the
    bootstrap interval alone does not recover the claim."""
    s = _summaries()
    s["lag_profiles"]["shifts"]["thalamus"].update(p_signflip=3 / 32, n_subjects=6)
    check = ground_truth_checks(_results(s), truths["on"])[1]
    assert check.status == "not recovered" and check.testable
    assert "sign-flip p = 0.0938 over 6 mice" in check.detail


def test_timing_claim_reads_seconds_when_stages_differ_in_frame_rate(truths):
    """Stages at 30 and 10 Hz: no shift in frames, but one in seconds (the summary's)."""
    s = _summaries()
    s["lag_profiles"]["shifts"]["thalamus"].update(
        shift=float("nan"), ci=[float("nan"), float("nan")], shift_s=0.1, ci_s=[0.05, 0.3]
    )
    check = ground_truth_checks(_results(s), truths["on"])[1]
    assert check.status == "recovered"


def _small_study_results(effects, n_mice: int, seed: int, populations) -> tuple[dict, dict]:
    """Encoding (4 circular shifts: smallest p 0.2) and lag profiles of a small study."""
    from sharedrep.sim.learning_study import StudyEffects, simulate_study
    from sharedrep.study import encoding_by_population, lag_profiles

    st = simulate_study(
        n_mice=n_mice,
        days=(1, 14),
        trials_per_session=20,
        populations=populations,
        effects=StudyEffects.null() if effects == "off" else None,
        seed=seed,
    )
    with pytest.warns(UserWarning):  # the tests say they cannot reach 5%
        enc = encoding_by_population(st.collection, n_perm=4, n_boot=2, n_perm_groups=4)
    lag = lag_profiles(st.collection, list(range(-2, 8)))
    return {"encoding_by_population": enc, "lag_profiles": lag}, st.truth


@pytest.mark.parametrize(("effects", "seed"), [("on", 0), ("off", 1)])
def test_small_simulated_study_claims_are_not_testable(effects, seed):
    """3 mice, 4 circular shifts: no encoding or lag-shift test can reach 5%, so neither
    claim is recovered or missed, whether the effects are on or off."""
    results, truth = _small_study_results(effects, 3, seed, ("thalamus", "m1"))
    cells = results["encoding_by_population"].summary["cells"]
    assert not any(v["testable"] for v in cells.values())
    assert not results["lag_profiles"].summary["shifts"]["thalamus"]["testable"]
    checks = ground_truth_checks(results, truth)
    assert [c.status for c in checks[:2]] == ["not testable", "not testable"]
    assert not checks[0].passed and not checks[1].passed


def test_two_mouse_null_lag_shift_is_not_a_false_positive():
    """Null data, 2 mice (seed 10): a percentile bootstrap over 2 mice excluded 0 here (a
    false positive); now no interval is given below 3 mice and the sign-flip test over 2
    mice cannot answer, so the claim is not testable, not "not recovered"."""
    from sharedrep.sim.learning_study import StudyEffects, simulate_study
    from sharedrep.study import lag_profiles

    st = simulate_study(
        n_mice=2,
        days=(1, 2, 10, 14),
        populations=("thalamus", "other_input"),
        trials_per_session=30,
        effects=StudyEffects.null(),
        seed=10,
    )
    r = lag_profiles(st.collection, list(range(-2, 8)))
    shift = r.summary["shifts"]["thalamus"]
    assert not shift["excludes_zero"] and not shift["testable"]
    assert math.isnan(shift["ci_s"][0]) and "needs at least 3" in shift["ci_reason"]
    check = ground_truth_checks({"lag_profiles": r}, st.truth)[1]
    assert check.claim.startswith("(effect switched off)")
    assert check.status == "not testable" and not check.passed


def test_truth_check_status_and_untestable_never_passes():
    assert TruthCheck("c", True).status == "recovered"
    assert TruthCheck("c", False).status == "not recovered"
    assert TruthCheck("c", False, testable=False).status == "not testable"
    with pytest.raises(ValueError, match="not testable cannot pass"):
        TruthCheck("c", True, testable=False)


def test_console_table_and_exit_code():
    checks = [
        TruthCheck("a", True, "fine"),
        TruthCheck("b", False, "missed"),
        TruthCheck("c", False, "not testable (p not a number): ...", testable=False),
    ]
    buf = io.StringIO()
    print_truth_checks(Console(file=buf, width=200), checks)
    rows = {
        line.split("│")[2].strip(): line for line in buf.getvalue().splitlines() if "│" in line
    }
    assert "yes" in rows["a"] and "NO" in rows["b"] and "not testable" in rows["c"]
    assert "yes" not in rows["c"]
    import typer

    with pytest.raises(typer.Exit) as exc:
        check_claims(checks)
    assert exc.value.exit_code == EXIT_CLAIMS_FAILED
    with pytest.raises(typer.Exit):
        check_claims([checks[0], checks[2]])  # not testable alone fails too
    check_claims(checks, check=False)  # --no-check
    check_claims([checks[0]])
    check_claims(None)


def test_report_and_results_json_say_not_testable(tmp_path):
    import pandas as pd

    from sharedrep.study._result import AnalysisResult

    result = AnalysisResult(
        name="a", table=pd.DataFrame({"x": [1.0]}), figure=None, summary={}, description="d"
    )
    checks = [
        TruthCheck("claim one", True, "ok"),
        TruthCheck("claim two", False, "not testable (p not a number): p = nan", testable=False),
    ]
    write_report({"a": result}, tmp_path, settings=None, truth_checks=checks)
    meta = json.loads((tmp_path / "results.json").read_text())
    assert [c["status"] for c in meta["truth_checks"]] == ["recovered", "not testable"]
    assert [c["passed"] for c in meta["truth_checks"]] == [True, False]
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "1 of 2 ground-truth claims are not testable" in html
    assert "All 2 ground-truth claims were recovered" not in html
    row = html[html.rindex("<tr>", 0, html.index("claim two")) : html.index("claim two")]
    assert ">not testable<" in row and ">recovered<" not in row
    # an older results.json without statuses: the verdict follows "passed"
    for c in meta["truth_checks"]:
        c.pop("status")
    (tmp_path / "results.json").write_text(json.dumps(meta))
    rebuilt = rebuild_report(tmp_path, overwrite=True).read_text(encoding="utf-8")
    assert "1 of 2 ground-truth claims were NOT recovered" in rebuilt


# ------------------------------------------------------------------ the demo command


@pytest.fixture(scope="module")
def recovery():
    """One real recovery step (step 1 of the demo), reused by the command tests."""
    timings: dict = {}
    return demo_module._recovery_step(Console(file=io.StringIO()), 0, 2, timings)


@pytest.fixture
def fake_study(monkeypatch, recovery, truths):
    """Replace the demo's study step by analyses with the given headline numbers."""
    monkeypatch.setattr(demo_module, "_recovery_step", lambda *a, **k: recovery)
    monkeypatch.setattr(demo_module, "_effective_settings", lambda collection: {})

    def install(summaries: dict):
        def study_step(con, out, seed, size, n_mice, force, timings):
            toml = out / "data" / "study.toml"
            toml.parent.mkdir(parents=True)
            toml.write_text('[study]\nname = "fake"\n', encoding="utf-8")
            checks = ground_truth_checks(_results(summaries), truths["on"])
            sim = SimpleNamespace(truth=truths["on"])
            return sim, toml, [], _results(summaries), checks

        monkeypatch.setattr(demo_module, "_study_step", study_step)

    return install


def _demo(out: Path, *extra: str):
    return runner.invoke(app, ["demo", "--out", str(out), "--no-plots", "--subjects", "2", *extra])


def test_demo_exits_zero_when_every_claim_is_recovered(tmp_path, fake_study):
    fake_study(_summaries())
    result = _demo(tmp_path / "ok")
    assert result.exit_code == 0, result.output
    assert "4 of 4 ground-truth claims recovered" in result.stdout


def test_demo_fails_on_a_claim_not_recovered(tmp_path, fake_study):
    s = _summaries()
    s["lag_profiles"]["shifts"]["thalamus"]["ci"] = [-1, 4]  # interval includes 0
    fake_study(s)
    result = _demo(tmp_path / "bad")
    assert result.exit_code == EXIT_CLAIMS_FAILED
    assert "1 not recovered of 4 claims" in result.stderr and "--no-check" in result.stderr
    study = json.loads((tmp_path / "bad" / "summary.json").read_text())["study"]
    assert [c["status"] for c in study["truth_checks"]][1] == "not recovered"
    assert study["all_recovered"] is False
    result = _demo(tmp_path / "bad2", "--no-check")
    assert result.exit_code == 0, result.output
    assert "3 of 4 ground-truth claims recovered" in result.stdout


def test_demo_fails_on_a_nan_claim_and_says_not_testable(tmp_path, fake_study):
    s = _summaries()
    s["encoding_overlap"]["difference"]["p_pooled"] = math.nan
    fake_study(s)
    result = _demo(tmp_path / "nan")
    assert result.exit_code == EXIT_CLAIMS_FAILED
    assert "1 not testable of 4 claims" in result.stderr
    assert "not testable" in result.stdout
    assert "3 of 4 ground-truth claims recovered, 1 not testable" in result.stdout
    study = json.loads((tmp_path / "nan" / "summary.json").read_text())["study"]
    overlap = study["truth_checks"][2]
    assert overlap["status"] == "not testable" and overlap["passed"] is False
    result = _demo(tmp_path / "nan2", "--no-check")
    assert result.exit_code == 0, result.output


def test_demo_help_documents_no_check():
    text = runner.invoke(app, ["demo", "--help"]).stdout
    assert "--no-check" in text and "Exit code" in text
    text = runner.invoke(app, ["run", "--help"]).stdout
    assert "--no-check" in text


def test_summaries_are_not_modified(truths):
    s = _summaries()
    before = copy.deepcopy(s)
    ground_truth_checks(_results(s), truths["on"])
    assert s == before


def test_claim_the_simulation_does_not_decide_is_not_testable():
    # the thalamus has the higher snr but M1 the larger fraction of encoding units: which
    # one decodes the movement better is not decided by the effects, so the encoding
    # claim is neither recovered nor missed, whatever the analyses report
    from sharedrep.sim.learning_study import StudyEffects, simulate_study

    effects = StudyEffects(
        thalamus_snr=(0.12, 0.9), thalamus_fraction=(0.35, 0.2), m1_snr=0.2, m1_fraction=0.5
    )
    truth = simulate_study(
        n_mice=2,
        days=(1, 14),
        populations=("thalamus", "m1"),
        trials_per_session=10,
        effects=effects,
        seed=0,
    ).truth
    assert truth["expected"]["undetermined"] == ["best_encoding"]
    assert truth["expected"]["best_encoding"] is None
    for best in (True, False):
        s = _summaries()
        s["encoding_by_population"]["best_significant"] = best
        first = ground_truth_checks(_results(s), truth)[0]
        assert first.status == "not testable" and not first.passed
        assert "do not decide" in first.detail


def test_default_and_null_effects_decide_every_claim(truths):
    assert truths["on"]["expected"]["undetermined"] == []
    assert truths["off"]["expected"]["undetermined"] == []


@pytest.mark.parametrize(
    ("populations", "untestable"),
    [(("m1",), [0, 1]), (("thalamus", "other_input"), [2, 3])],
)
def test_claims_about_what_the_study_does_not_image_are_not_testable(populations, untestable):
    # an M1-only study has no thalamus to encode best or lead; a study without M1 has
    # no overlap or silencing to test: those claims are neither recovered nor missed,
    # whatever the analyses report
    from sharedrep.sim.learning_study import simulate_study

    truth = simulate_study(
        n_mice=2, days=(1, 14), populations=populations, trials_per_session=10, seed=0
    ).truth
    keys = ["best_encoding", "lag_shift_frames", "overlap_increases", "silencing_impairs"]
    assert truth["expected"]["undetermined"] == [keys[i] for i in untestable]
    checks = ground_truth_checks(_results(_summaries()), truth)
    for i, check in enumerate(checks):
        assert (check.status == "not testable") == (i in untestable), (i, check)


def test_timing_claim_without_a_shift_of_the_thalamus_names_what_was_computed(truths):
    """Shifts computed for other populations only: not testable, saying so in words (it
    read ``not computable from the results (KeyError('thalamus'))``)."""
    s = _summaries()
    s["lag_profiles"]["shifts"] = {"m1": s["lag_profiles"]["shifts"]["thalamus"]}
    check = ground_truth_checks(_results(s), truths["on"])[1]
    assert check.status == "not testable" and not check.passed
    assert "KeyError" not in check.detail
    assert "thalamus" in check.detail and "m1" in check.detail


def test_overlap_claim_without_a_difference_or_reason_says_so(truths):
    """An overlap summary with no between-stage change and no reason: not testable, in
    words (it read ``not computable from the results (KeyError('ratio_of_odds_ratios'))``)."""
    s = _summaries()
    s["encoding_overlap"]["difference"] = {}
    s["encoding_overlap"].pop("untestable_reason", None)
    check = ground_truth_checks(_results(s), truths["on"])[2]
    assert check.status == "not testable" and not check.passed
    assert "KeyError" not in check.detail
    assert "no change between stages" in check.detail
