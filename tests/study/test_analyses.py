"""The learning-study analyses recover the simulated ground truth, and only it.

A small study (5 mice, days 1, 2, 13, 14, 40 trials per session) is simulated with every
effect on and with every effect off (:meth:`StudyEffects.null`); :func:`run_study` is run
once on each (module fixtures) and the tables are checked against the truth.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from parallel_calls import parallel_calls
from sharedrep.inference.multitest import holm
from sharedrep.sim.learning_study import StudyEffects, simulate_study
from sharedrep.study import (
    ANALYSES,
    AnalysisResult,
    resolve_settings,
    run_study,
    selective_activation,
    stimulation_responses,
)
from sharedrep.study._common import sign_flip_test

SMALL = dict(n_mice=5, days=(1, 2, 13, 14), trials_per_session=40)
SETTINGS = {
    "n_permutations": 19,
    "n_bootstrap": 19,
    "n_perm_groups": 29,
    "n_perm_units": 99,
    "n_perm_overlap": 999,
}
LEVEL = 0.05


@pytest.fixture(scope="module")
def study():
    return simulate_study(**SMALL, seed=1)


@pytest.fixture(scope="module")
def null_study():
    return simulate_study(**SMALL, effects=StudyEffects.null(), seed=1)


@pytest.fixture(scope="module")
def both_results(study, null_study):
    """``run_study`` on the study and on the null study, side by side (one CPU each)."""
    # M1 is left out of the (costly) population fits: the null claims concern the inputs
    null_settings = {**SETTINGS, "populations": ["thalamus", "other_input"]}
    return parallel_calls(
        [
            (run_study, (study.collection,), dict(settings=SETTINGS, progress=False)),
            (run_study, (null_study.collection,), dict(settings=null_settings, progress=False)),
        ]
    )


@pytest.fixture(scope="module")
def results(both_results):
    return both_results[0]


@pytest.fixture(scope="module")
def null_results(both_results):
    return both_results[1]


# ------------------------------------------------------------------ result objects
def test_every_analysis_returns_a_complete_result(results):
    assert list(results) == list(ANALYSES)
    for name, r in results.items():
        assert isinstance(r, AnalysisResult)
        assert r.name == name
        assert isinstance(r.table, pd.DataFrame) and len(r.table) > 0
        assert isinstance(r.figure, Figure)
        assert isinstance(r.summary, dict) and r.summary
        json.dumps(r.summary)  # JSON-serialisable
        assert r.summary["runtime_s"] >= 0
        assert isinstance(r.description, str) and len(r.description) > 200
        assert "mice" in r.description or "mouse" in r.description
        for t in r.tables.values():
            assert isinstance(t, pd.DataFrame)


# ------------------------------------------------------------------ behaviour
def test_learning_curves(results):
    r = results["learning_curves"]
    assert set(r.table.columns) >= {
        "subject",
        "day",
        "stage",
        "success_rate",
        "reaction_time_s",
        "movement_duration_s",
        "reproducibility",
    }
    assert len(r.table) == 5 * 4
    m = r.summary["metrics"]
    assert m["success_rate"]["slope_per_day"] > 0 and m["success_rate"]["p_holm"] < LEVEL
    assert m["reaction_time_s"]["slope_per_day"] < 0 and m["reaction_time_s"]["p_holm"] < LEVEL
    duration, reproducibility = m["movement_duration_s"], m["reproducibility"]
    assert duration["last_stage_mean"] < duration["first_stage_mean"]
    assert reproducibility["last_stage_mean"] > reproducibility["first_stage_mean"] + 0.2
    assert m["reproducibility"]["p_holm"] < LEVEL


def test_learning_curves_null(null_results):
    for v in null_results["learning_curves"].summary["metrics"].values():
        assert not v["p_holm"] < LEVEL


# ------------------------------------------------------------------ encoding
def test_thalamus_encodes_best_in_experts(results):
    r = results["encoding_by_population"]
    s = r.summary
    assert s["best"] == "thalamus/expert"
    cells = s["cells"]
    assert cells["thalamus/expert"]["p_value"] <= LEVEL
    assert cells["thalamus/expert"]["ci"][0] > cells["thalamus/novice"]["ci"][1]
    assert cells["thalamus/expert"]["ci"][0] > cells["other_input/expert"]["ci"][1]
    comp = s["comparisons"]
    for key in ("thalamus/expert vs thalamus/novice", "thalamus/expert vs other_input/expert"):
        assert comp[key]["difference"] > 0.2
        # the same 5 mice in both groups: relabelled within mice, all 2^5 swaps (exact);
        # the observed split and its mirror are the most extreme, so p sits at the
        # resolution 2 / 32, above 5%: the test says it cannot answer
        assert comp[key]["paired"] and comp[key]["exact"]
        assert comp[key]["p_min"] == pytest.approx(2 / 32)
        assert comp[key]["p_value"] == pytest.approx(comp[key]["p_min"])
        assert not comp[key]["testable"]
        assert comp[key]["reason"].startswith("not testable at the 5% level: n = 5 paired")
        # paired over the same mice: t-test on per-mouse held-out R^2
        assert comp[key]["p_paired"] < 0.01
    # other inputs encode less and do not change with learning
    other = comp["other_input/expert vs other_input/novice"]
    assert abs(other["difference"]) < 0.1
    assert other["p_paired"] >= 0.01
    assert "relabelled within mice" in r.description and "p = nan" not in r.description
    subj = r.tables["subjects"]
    assert set(subj["subject"]) == {f"mouse0{i}" for i in range(1, 6)}


def test_encoding_null_no_discovery(null_results):
    comp = null_results["encoding_by_population"].summary["comparisons"]
    for key in ("thalamus/expert vs thalamus/novice", "thalamus/expert vs other_input/expert"):
        assert not comp[key]["p_value"] <= LEVEL
        assert not comp[key]["p_paired"] <= LEVEL
    assert not null_results["encoding_by_population"].summary["best_significant"]


@pytest.mark.slow
def test_default_study_recovers_truth():
    """The default simulated study: the headline effects (its run time is not asserted:
    speed belongs in benchmarks)."""
    st = simulate_study()
    res = run_study(st.collection, progress=False)
    assert res["encoding_by_population"].summary["best"] == "thalamus/expert"
    assert res["encoding_by_population"].summary["best_significant"]
    assert res["lag_profiles"].summary["shifts"]["thalamus"]["ci"][0] > 0
    assert res["encoding_overlap"].summary["difference"]["p_mice"] <= LEVEL
    assert res["silencing_effects"].summary["impairs"]


# ------------------------------------------------------------------ timing
def test_thalamic_lag_shifts_earlier(results, study):
    s = results["lag_profiles"].summary
    truth = study.truth["lead_frames"]["thalamus"]
    assert abs(s["peaks"]["thalamus/novice"]["peak_lag"] - truth["novice"]) <= 1
    assert abs(s["peaks"]["thalamus/expert"]["peak_lag"] - truth["expert"]) <= 1
    sh = s["shifts"]["thalamus"]
    assert sh["shift"] >= 2 and sh["ci"][0] > 0 and sh["excludes_zero"]
    # other inputs keep their timing
    assert s["shifts"]["other_input"]["ci"][0] <= 0 <= s["shifts"]["other_input"]["ci"][1]
    t = results["lag_profiles"].table
    assert set(t["lag"]) == set(range(-2, 8))


def test_lag_shift_null(null_results):
    sh = null_results["lag_profiles"].summary["shifts"]["thalamus"]
    assert sh["ci"][0] <= 0 <= sh["ci"][1] and not sh["excludes_zero"]


# ------------------------------------------------------------------ optogenetics
def test_stimulation_classification_matches_truth(results, study):
    tab = results["stimulation_responses"].table
    assert set(tab["stage"]) == {"novice", "expert"}
    hits = found = true = 0
    for (subj, _), g in tab.groupby(["subject", "stage"]):
        drv = set(study.truth["driven_units"][subj].tolist())
        f = set(g.loc[g["classification"] == "driven", "unit_id"].tolist())
        hits, found, true = hits + len(drv & f), found + len(f), true + len(drv)
    assert hits / found > 0.9  # precision
    assert hits / true > 0.6  # recall


def test_artefact_masking_matters(study):
    masked = stimulation_responses(study.collection)
    raw = stimulation_responses(study.collection, mask_artifacts=False)
    n_masked = sum(v["n_driven"] for v in masked.summary["stages"].values())
    n_raw = sum(v["n_driven"] for v in raw.summary["stages"].values())
    assert n_raw > 2 * n_masked  # light artefacts look like responses


def test_driven_units_overlap_encoding_more_in_experts(results):
    s = results["encoding_overlap"].summary
    assert s["population"] == "m1"
    assert s["stages"]["expert"]["odds_ratio"] > 4 * s["stages"]["novice"]["odds_ratio"]
    assert s["stages"]["expert"]["p_pooled"] < 0.01
    d = s["difference"]
    assert d["ratio_of_odds_ratios"] > 3
    assert d["p_pooled"] < 0.01
    assert d["p_mice"] <= LEVEL  # 5 mice: every mouse increases (one-sided 1/32)
    units = results["encoding_overlap"].tables["unit_encoding"]
    assert set(units.columns) >= {"subject", "population", "stage", "unit_id", "encodes"}


def test_stimulation_and_overlap_null(null_results):
    stim = null_results["stimulation_responses"].summary["stages"]
    n_units = sum(v["n_units"] for v in stim.values())
    n_resp = sum(v["n_driven"] + v["n_suppressed"] for v in stim.values())
    assert n_resp <= 0.02 * n_units  # FDR: hardly any false responders
    s = null_results["encoding_overlap"].summary
    assert not s["difference"]["p_pooled"] <= LEVEL
    assert not s["difference"]["p_mice"] <= LEVEL


@pytest.mark.slow
def test_overlap_without_change_is_not_reported():
    """Stimulation works, but driven and encoding units are unrelated in both stages."""
    eff = StudyEffects(overlap_log_odds=(0.0, 0.0))
    st = simulate_study(**SMALL, effects=eff, seed=4)
    stim = stimulation_responses(st.collection)
    assert sum(v["n_driven"] for v in stim.summary["stages"].values()) > 20
    from sharedrep.study import encoding_overlap

    r = encoding_overlap(st.collection, stim.table, n_perm_units=99, n_perm=999)
    d = r.summary["difference"]
    assert not d["p_pooled"] <= LEVEL and not d["p_mice"] <= LEVEL


# ------------------------------------------------------------------ activation
def test_selective_activation(results):
    ch = results["selective_activation"].summary["changes"]
    assert ch["m1/other"]["change"] < 0 and ch["m1/other"]["p_value"] < LEVEL
    assert ch["m1/selectivity"]["change"] > 0 and ch["m1/selectivity"]["p_value"] < LEVEL


def test_selective_activation_null(null_results):
    ch = null_results["selective_activation"].summary["changes"]
    assert not ch["m1/selectivity"]["p_value"] < LEVEL


def test_selective_activation_validates_table(study):
    with pytest.raises(ValueError, match="encodes"):
        selective_activation(study.collection, pd.DataFrame({"subject": [], "unit_id": []}))


# ------------------------------------------------------------------ silencing
def test_silencing_impairs_movement(results):
    s = results["silencing_effects"].summary
    m = s["metrics"]
    # the headline is Holm-corrected over success rate and reaction time: with 5 mice
    # (smallest one-sided sign-flip p 1/32) no corrected p can fall below 2/32 > 0.05
    family = [m["success_rate"]["p_value"], m["reaction_time_s"]["p_value"]]
    p_holm = [m["success_rate"]["p_holm"], m["reaction_time_s"]["p_holm"]]
    np.testing.assert_allclose(p_holm, holm(family))
    assert min(p_holm) >= 2 / 32 and not s["impairs"]
    # ... so the headline says it is not testable rather than "no impairment"
    assert not s["testable"] and s["reason"].endswith("is 0.0625; more mice are needed")
    assert m["success_rate"]["difference"] < 0 and m["success_rate"]["p_value"] <= LEVEL
    assert m["reaction_time_s"]["difference"] > 0 and m["reaction_time_s"]["p_value"] <= LEVEL
    assert m["template_similarity"]["difference"] < 0
    assert m["template_similarity"]["p_value"] <= LEVEL
    assert m["success_rate"]["ci"][1] < 0


def test_silencing_null(null_results):
    s = null_results["silencing_effects"].summary
    assert not s["impairs"]
    for v in s["metrics"].values():
        assert not v["p_value"] <= LEVEL


# ------------------------------------------------------------------ settings and helpers
def test_settings_resolution(study):
    col = study.collection
    cfg = resolve_settings(col, {"n_permutations": 7})
    assert cfg["n_permutations"] == 7 and cfg["n_perm_groups"] == 7
    col2 = type(col)(list(col), analysis={"cv": 4, "output": "x", "selection": "1se"})
    cfg = resolve_settings(col2, {"cv": 3})
    assert cfg["cv"] == 3 and cfg["selection"] == "1se"
    with pytest.raises(ValueError, match="unknown analysis setting"):
        resolve_settings(col, {"n_perms": 3})
    with pytest.raises(TypeError):
        resolve_settings(col, [("cv", 3)])


def test_sign_flip_and_holm():
    assert sign_flip_test([1.0, 2.0, 3.0, 4.0, 5.0], "greater") == pytest.approx(1 / 32)
    assert sign_flip_test([1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(2 / 32)
    assert sign_flip_test([1.0, -1.0]) == 1.0
    assert math.isnan(sign_flip_test([np.nan]))
    big = np.random.default_rng(0).normal(size=40)
    assert 0.0 < sign_flip_test(big) <= 1.0
    np.testing.assert_allclose(holm([0.01, 0.04, np.nan, 0.03]), [0.03, 0.06, np.nan, 0.06])


def test_progress_bar_runs(study):
    from sharedrep.study import lag_profiles

    r = lag_profiles(study.collection, range(0, 3), populations=["thalamus"], progress=True)
    assert set(r.table["lag"]) == {0, 1, 2}


@pytest.mark.slow
def test_null_calibration_over_seeds():
    """Across null studies the lag shift and silencing are rarely reported (<= 2 of 8)."""
    from sharedrep.study import lag_profiles, silencing_effects

    fp_lag = fp_sil = 0
    for seed in range(100, 108):
        st = simulate_study(**SMALL, effects=StudyEffects.null(), seed=seed)
        lp = lag_profiles(st.collection, populations=["thalamus"], n_boot=1000)
        fp_lag += lp.summary["shifts"]["thalamus"]["excludes_zero"]
        fp_sil += silencing_effects(st.collection, n_perm=200).summary["impairs"]
    assert fp_lag <= 2 and fp_sil <= 2


# ------------------------------------------------------------------ frame rates (lags)
def _rate_study(pop, rate, seed, days=(1, 14)):
    return simulate_study(
        n_mice=3,
        days=days,
        populations=(pop,),
        trials_per_session=20,
        frame_rate=rate,
        seed=seed,
    )


def test_lag_profiles_use_each_cells_frame_rate():
    """Thalamus at 30 Hz, M1 at 10 Hz: seconds = frames / the cell's own rate."""
    from sharedrep import SessionCollection
    from sharedrep.study import lag_profiles

    a, b = _rate_study("thalamus", 30.0, 0), _rate_study("m1", 10.0, 1)
    rate = {"thalamus": a.truth["frame_rate"], "m1": b.truth["frame_rate"]}
    col = SessionCollection(list(a.collection) + list(b.collection))
    r = lag_profiles(col, [0, 3, 6], n_boot=50)
    t = r.table
    np.testing.assert_allclose(t["lag_s"], t["lag"] / t["population"].map(rate))
    pk = r.tables["peaks"]
    np.testing.assert_allclose(pk["frame_rate"], pk["population"].map(rate))
    np.testing.assert_allclose(pk["peak_lag_s"], pk["peak_lag"] / pk["population"].map(rate))
    assert r.summary["frame_rates"] == pytest.approx(
        {"thalamus/novice": 30.0, "thalamus/expert": 30.0, "m1/novice": 10.0, "m1/expert": 10.0}
    )
    assert math.isnan(r.summary["frame_rate"])  # no single rate
    for _, s in r.tables["shifts"].iterrows():
        assert s["shift_s"] == pytest.approx(s["shift"] / rate[s["population"]])
        assert s["ci_low_s"] == pytest.approx(s["ci_low"] / rate[s["population"]])
        assert s["ci_high_s"] == pytest.approx(s["ci_high"] / rate[s["population"]])


def test_lag_shift_between_stages_of_different_rates_is_in_seconds():
    from sharedrep import SessionCollection
    from sharedrep.study import lag_profiles

    nov = _rate_study("thalamus", 30.0, 0).collection.filter(stage="novice")
    exp_ = _rate_study("thalamus", 10.0, 0).collection.filter(stage="expert")
    r = lag_profiles(SessionCollection(list(nov) + list(exp_)), [0, 3, 6], n_boot=50)
    pk = r.tables["peaks"].set_index("stage")
    assert pk.loc["novice", "peak_lag_s"] == pytest.approx(pk.loc["novice", "peak_lag"] / 30)
    assert pk.loc["expert", "peak_lag_s"] == pytest.approx(pk.loc["expert", "peak_lag"] / 10)
    s = r.tables["shifts"].iloc[0]
    assert s["shift_s"] == pytest.approx(
        pk.loc["expert", "peak_lag_s"] - pk.loc["novice", "peak_lag_s"]
    )
    # a shift in frames would mix 1/30 s and 1/10 s frames
    assert math.isnan(s["shift"]) and math.isnan(s["ci_low"])
    assert s["ci_low_s"] <= s["shift_s"] <= s["ci_high_s"]
    json.dumps(r.summary)


def test_lag_profiles_refuse_mixed_rates_within_a_cell():
    from sharedrep import SessionCollection
    from sharedrep.study import lag_profiles

    a = _rate_study("thalamus", 30.0, 0, days=(1, 14))
    b = _rate_study("thalamus", 10.0, 0, days=(2, 13))
    col = SessionCollection(list(a.collection) + list(b.collection))
    with pytest.raises(
        ValueError, match=r"(?s)'thalamus', stage 'novice'.*inconsistent sampling rates"
    ):
        lag_profiles(col, [0, 3], n_boot=10)


# ------------------------------------------------------------------ overlap: empty cells
def _overlap(enc_rule):
    from sharedrep.study import encoding_overlap

    st = simulate_study(n_mice=3, days=(1, 14), populations=("m1",), trials_per_session=30)
    stim = stimulation_responses(st.collection)
    enc = stim.table[["subject", "population", "stage", "unit_id"]].drop_duplicates().copy()
    enc["encodes"] = [enc_rule(r) for r in enc.itertuples()]
    enc["r2_cv"], enc["p_value"], enc["q_value"] = 0.0, 1.0, 1.0
    return encoding_overlap(st.collection, stim.table, encoding_table=enc, n_perm=200)


def test_overlap_without_encoding_units_is_not_testable():
    r = _overlap(lambda u: False)
    for v in r.summary["stages"].values():
        assert v["n_encoding"] == 0
        assert math.isnan(v["odds_ratio"]) and math.isnan(v["p_pooled"])
    d = r.summary["difference"]
    assert math.isnan(d["ratio_of_odds_ratios"]) and math.isnan(d["p_pooled"])
    assert r.summary["testable"] is False
    assert "no encoding unit in novice" in r.summary["untestable_reason"]
    assert "not testable" in r.description
    # per mouse: no encoding unit -> the odds ratio is undefined (not a Haldane artefact)
    assert r.table["odds_ratio"].isna().all() and r.table["log_odds_ratio"].isna().all()
    json.dumps(r.summary)


def test_overlap_with_one_empty_stage():
    """Encoding units only in experts (units 0-5 of mice 1 and 2; none for mouse03)."""
    r = _overlap(lambda u: u.stage == "expert" and u.subject != "mouse03" and u.unit_id < 6)
    assert r.summary["testable"] is False
    assert r.summary["untestable_reason"] == "m1: no encoding unit in novice"
    assert math.isnan(r.summary["difference"]["ratio_of_odds_ratios"])
    t = r.table.set_index(["subject", "stage"])
    assert np.isnan(t.loc[("mouse03", "expert"), "odds_ratio"])
    for m in ("mouse01", "mouse02"):
        row = t.loc[(m, "expert")]
        a, b = row["driven_encoding"], row["driven_other"]
        c, d = row["nondriven_encoding"], row["nondriven_other"]
        if row["informative"]:  # Haldane-corrected odds ratio, from the counts
            haldane = (a + 0.5) * (d + 0.5) / ((b + 0.5) * (c + 0.5))
            assert row["odds_ratio"] == pytest.approx(haldane)
        else:
            assert np.isnan(row["odds_ratio"])
    assert np.isfinite(r.summary["stages"]["expert"]["p_pooled"])


# ------------------------------------------------------------------ trial outcomes and flags
def test_missing_outcomes_are_unknown_not_failures():
    from sharedrep.study._common import success_of

    tr = pd.DataFrame({"outcome": ["success", None, np.nan, "Success ", "", "failure", True]})
    np.testing.assert_array_equal(success_of(tr), [1, np.nan, np.nan, 1, np.nan, 0, 1])
    num = pd.DataFrame({"outcome": [1.0, np.nan, 0.0]})
    np.testing.assert_array_equal(success_of(num), [1, np.nan, 0])


def test_learning_curves_ignore_unknown_outcomes():
    from sharedrep import SessionCollection
    from sharedrep.study import learning_curves

    st = simulate_study(n_mice=2, days=(1, 14), populations=("m1",), trials_per_session=20)
    sessions = []
    for s in st.collection:
        t = s.trials.copy()
        t.loc[t.index[::2], "outcome"] = None
        sessions.append(s.replace(trials=t))
    r = learning_curves(SessionCollection(sessions))
    for s in sessions:
        tr = s.trials[~(s.trials["stim"] | s.trials["silencing"])]
        known = tr["outcome"].dropna()
        expected = (known == "success").mean()
        row = r.table[(r.table["subject"] == s.subject) & (r.table["day"] == s.day)]
        assert row["success_rate"].iloc[0] == pytest.approx(expected)


def test_trial_flags_parse_strings():
    from sharedrep import Session
    from sharedrep.study._common import trial_flags

    def session(stim):
        tr = pd.DataFrame(
            {
                "start_time": np.arange(len(stim), dtype=float),
                "stop_time": np.arange(1, len(stim) + 1, dtype=float),
                "stim": stim,
            }
        )
        n = 10 * len(stim)
        return Session(
            subject="m",
            neural=np.arange(2.0 * n).reshape(n, 2),
            timestamps=np.arange(n) / 10,
            trials=tr,
        )

    s = session(["False", "TRUE", " yes", "no", "1", "0", None, np.nan])
    np.testing.assert_array_equal(trial_flags(s)[0], [0, 1, 1, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(trial_flags(session([1.0, 0.0, np.nan]))[0], [1, 0, 0])
    with pytest.raises(ValueError, match="'stim'.*'maybe'"):
        trial_flags(session(["True", "maybe"]))


# ------------------------------------------------------------------ t-test p-values
def test_ttest_p_matches_scipy_and_is_nan_for_constant_data():
    from scipy.stats import ttest_1samp

    from sharedrep.study._common import ttest_p

    rng = np.random.default_rng(0)
    for n in (2, 3, 7):
        x = rng.normal(0.3, 1.0, n)
        for alt in ("two-sided", "greater", "less"):
            assert ttest_p(x, alt) == pytest.approx(ttest_1samp(x, 0.0, alternative=alt).pvalue)
    assert ttest_p([1.0, np.nan, 2.0, np.inf]) == pytest.approx(ttest_1samp([1, 2], 0).pvalue)
    # zero variance: t undefined (scipy: NaN for zeros, +-inf -> 0 otherwise); not p = 0
    for x in ([-0.0308] * 3, [1.0, 1.0], [0.0, 0.0, 0.0], [5.0]):
        for alt in ("two-sided", "greater", "less"):
            assert math.isnan(ttest_p(x, alt))


def test_cells_and_lags_left_out_are_reported():
    """A population with a single mouse, and lags longer than the trials, are named."""
    from sharedrep import SessionCollection
    from sharedrep.study import encoding_by_population, lag_profiles

    st = simulate_study(n_mice=3, days=(1, 14), trials_per_session=20, seed=0)
    c = st.collection
    one = SessionCollection(
        [s for s in c if not (s.population == "m1" and s.subject != "mouse01")]
    )
    r = encoding_by_population(one, n_perm=2, n_boot=2, populations=["thalamus", "m1"])
    assert set(r.table["population"]) == {"thalamus"}
    assert r.summary["skipped_cells"] == ["m1 / novice: 1 mouse", "m1 / expert: 1 mouse"]
    assert "Not fitted (fewer than 2 mice): m1 / novice: 1 mouse" in r.description
    thal = c.filter(population="thalamus")
    trial = int(min(len(s.neural) / len(s.trials) for s in thal))  # samples per trial, at most
    lp = lag_profiles(thal, [0, 2, 3 * trial], n_boot=10)
    assert lp.summary["failed_lags"] == {
        "thalamus / novice": [3 * trial],
        "thalamus / expert": [3 * trial],
    }
    assert f"thalamus / novice: no fit at lag(s) {3 * trial} (" in lp.description


def test_stimulation_sessions_that_cannot_be_analysed_are_named():
    from sharedrep import SessionCollection
    from sharedrep.study import stimulation_responses

    every = simulate_study(
        n_mice=2,
        days=(1, 14),
        populations=("m1",),
        trials_per_session=10,
        effects=StudyEffects(stim_fraction=1.0, silencing_fraction=0.0),
        seed=0,
    )
    r = stimulation_responses(every.collection)
    assert len(r.table) == 0 and len(r.summary["not_analysed"]) == 4
    assert "10 stimulation and 0 control trials (needs at least 2 of each)" in r.description
    no_times = SessionCollection(
        [
            s.replace(stimulation=None)
            for s in simulate_study(
                n_mice=2, days=(1, 14), populations=("m1",), trials_per_session=20, seed=0
            ).collection
        ]
    )
    r = stimulation_responses(no_times)
    assert r.summary["not_analysed"][0].endswith("stimulation trials but no stimulation times")
