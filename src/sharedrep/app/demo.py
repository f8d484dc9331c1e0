"""The ``sharedrep demo``: ShaReD and the learning-study workflow on simulated data.

Step 1 simulates subjects with a known shared representation, fits ShaReD with
cross-validation, compares the recovered axes with the truth and decodes a held-out
subject against a per-subject ridge decoder. Step 2 simulates the lever-push learning
study, writes it as NWB files plus ``study.toml``, loads it back, runs every analysis
(:func:`sharedrep.study.pipeline.run_study`) and checks the results against the
simulator's ground truth (:func:`ground_truth_checks`: each claim "recovered", "not
recovered" or "not testable", never recovered on a statistic that is not a number).
:func:`run_demo` runs both and writes the report; the ``demo`` command of
:mod:`sharedrep.app.cli` calls it and exits non-zero unless every claim is recovered. Part of
the ``app`` layer: may import every other layer and :mod:`sharedrep.app._console`,
:mod:`~sharedrep.app.report`, :mod:`~sharedrep.app.plots` (never the command line).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from sharedrep._version import __version__
from sharedrep.app._console import (
    UserError,
    console,
    done_mark,
    prepare_out_dir,
    print_truth_checks,
    study_data_files,
    titled_table,
    write_study_with_progress,
)
from sharedrep.core.cv import block_folds, fold_splits
from sharedrep.core.design import lag_embed, valid_rows
from sharedrep.core.metrics import pooled_r2, r2_per_column
from sharedrep.core.ridge import ridge_cv, standardize_columns
from sharedrep.utils.files import atomic_write

__all__ = ["run_demo", "ground_truth_checks"]


DEMO_SIMULATION = dict(
    n_samples=3000,  # per subject; 60 trials of 50 samples
    n_units=(10, 20),  # units per subject, drawn uniformly
    n_behavior=12,
    n_shared=2,
    lag=2,  # neural activity leads behaviour by 2 samples
    trial_length=50,
    # Encoded directions carry as much behavioural variance as the largest unencoded
    # source (the simulator's default 0.2 makes them nearly invisible in raw behaviour R^2).
    shared_variance=1.0,
)
#: Estimator settings of the demo (plus random_state=seed).
DEMO_MODEL = dict(n_shared="auto", alpha=None, lags=3, cv=5)
#: Fraction of the held-out subject's samples (whole trials) used to calibrate it.
DEMO_CALIBRATION = 0.10
#: What the demo writes into its output folder.
DEMO_OUTPUTS = ("report.html", "results.json", "summary.json", "figures", "tables", "data")


@contextlib.contextmanager
def _step(con: Console, description: str, timings: dict) -> Iterator[None]:
    t0 = time.perf_counter()
    with con.status(f"{description}..."):
        yield
    dt = time.perf_counter() - t0
    timings[description] = round(dt, 4)
    con.print(f"[green]{done_mark(con)}[/green] {description} [dim]({dt:.2f} s)[/dim]")


def _ridge_decoder(X_cal, Y_cal, g_cal, X_test, lags, rows_test, alphas):
    """Per-subject baseline decoder: lagged standardised activity -> all behaviour features.

    Ridge regression with the ShaReD penalty convention (``a * n`` on unit-variance
    columns), ``a`` chosen from ``alphas`` by cross-validation over contiguous blocks of
    calibration trials (the same number of folds as the model).
    """
    rows_cal = valid_rows(X_cal.shape[0], lags, g_cal)
    Xc = lag_embed(X_cal, lags, rows_cal)
    Yc, gc = Y_cal[rows_cal], g_cal[rows_cal]
    mean, std = standardize_columns(Xc, constant="unit")
    Xc = (Xc - mean) / std
    trials = np.unique(gc)
    # contiguous blocks of whole calibration trials (np.array_split placement)
    trial_fold = block_folds(trials.size, min(5, trials.size), edges="kfold")
    splits = fold_splits(trial_fold[np.searchsorted(trials, gc)])
    fit, _ = ridge_cv(Xc, Yc, np.asarray(alphas, dtype=float), splits, standardize=False)
    Xt = (lag_embed(X_test, lags, rows_test) - mean) / std
    return fit.predict(Xt), float(fit.alpha)


def _write_json(path: Path, data: dict) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")

    atomic_write(path, write, overwrite=True)


def _recovery_step(con: Console, seed: int, n_subjects: int, timings: dict):
    """Step 1 of the demo: generic ShaReD recovery on :func:`sharedrep.sim.generic` data.

    Returns ``(summary, model, data, latent_r2)``.
    """
    from scipy.linalg import subspace_angles

    from sharedrep.core.estimator import ShaReD
    from sharedrep.sim.generic import simulate

    with _step(con, f"Simulating {n_subjects} + 1 held-out subjects (seed {seed})", timings):
        d = simulate(n_subjects=n_subjects + 1, seed=seed, **DEMO_SIMULATION)
        train, new = d.subset(range(n_subjects)), d.subset(n_subjects)

    model = ShaReD(random_state=seed, **DEMO_MODEL)
    with _step(con, "Fitting ShaReD with cross-validated alpha and k", timings):
        model.fit(train.neural, train.behavior, groups=train.groups)

    X, Y, g = new.neural[0], new.behavior[0], new.groups[0]
    trials = np.unique(g)
    n_cal_trials = max(model.cv, int(round(DEMO_CALIBRATION * trials.size)))
    cal = np.isin(g, trials[:n_cal_trials])
    test = ~cal
    with _step(
        con, f"Adding the held-out subject from {n_cal_trials} calibration trials", timings
    ):
        s_new = model.add_subject(X[cal], Y[cal], groups=g[cal])
        Y_hat, rows = model.predict(
            X[test], subject=s_new, groups=g[test], return_rows=True, through="shared"
        )
        Y_test = Y[test][rows]
        Y_chosen = model.predict(X[test], subject=s_new, groups=g[test], through="auto")
        Z_hat = model.transform(X[test], subject=s_new, groups=g[test])
        Z_test = model.transform_behavior(Y_test, subject=s_new)
        r2_shared = pooled_r2(Y_test, Y_hat, model.behavior_scale_)
        r2_chosen = pooled_r2(Y_test, Y_chosen, model.behavior_scale_)
        latent_r2 = r2_per_column(Z_test, Z_hat)

    cvr = model.cv_results_
    with _step(con, "Per-subject ridge decoder on the same calibration trials", timings):
        Y_ridge, ridge_alpha = _ridge_decoder(
            X[cal], Y[cal], g[cal], X[test], model.lags_, rows, cvr["alphas"]
        )
        r2_ridge = pooled_r2(Y_test, Y_ridge, model.behavior_scale_)

    i_alpha, k = (int(i) for i in cvr["best_index"])
    angles = np.sort(np.degrees(subspace_angles(model.shared_axes_, d.shared_axes)))[::-1]
    summary: dict[str, Any] = {
        "sharedrep_version": __version__,
        "seed": seed,
        "n_subjects": n_subjects,
        "units_per_subject": train.n_units,
        "simulation": dict(DEMO_SIMULATION),
        "model": {**DEMO_MODEL, "random_state": seed},
        "alpha": model.alpha_,
        "n_shared": model.n_shared_,
        "true_n_shared": d.n_shared,
        "principal_angles_deg": angles.tolist(),
        "max_angle_deg": float(angles.max()),
        "cv_r2_dim": cvr["r2_dim"][i_alpha, :k].tolist(),
        "cv_r2_subject_dim": cvr["r2_subject_dim"][i_alpha, :, :k].tolist(),
        "new_subject": {
            "units": int(X.shape[1]),
            "calibration_trials": int(n_cal_trials),
            "calibration_samples": int(cal.sum()),
            "test_samples": int(rows.size),
            "alpha": float(model.subject_alphas_[s_new]),
            "shared_r2": r2_shared,
            "decoder": model.subject_decoders_[s_new],
            "decoder_r2": r2_chosen,
            "decoder_inner_cv_r2": model.subject_cv_scores_[s_new],
            "ridge_r2": r2_ridge,
            "ridge_alpha": ridge_alpha,
            "latent_r2": latent_r2.tolist(),
        },
    }
    return summary, model, d, latent_r2


def _recovery_result(summary: dict, model, d, latent_r2):
    """The recovery step as an analysis result (table, figures, description)."""
    import pandas as pd

    from sharedrep.app.plots import plot_axes, plot_cv_scores, plot_heldout_r2
    from sharedrep.study._result import AnalysisResult

    k = summary["n_shared"]
    angles = summary["principal_angles_deg"]
    table = pd.DataFrame(
        {
            "dimension": np.arange(1, k + 1),
            "principal_angle_deg": [angles[j] if j < len(angles) else np.nan for j in range(k)],
            "cv_r2": summary["cv_r2_dim"],
            "new_subject_r2": summary["new_subject"]["latent_r2"],
        }
    )
    per_subject = pd.DataFrame(
        [
            {"subject": s, "dimension": j + 1, "cv_r2": r2}
            for s, row in enumerate(summary["cv_r2_subject_dim"])
            for j, r2 in enumerate(row)
        ]
    )
    ns = summary["new_subject"]
    decoders = pd.DataFrame(
        {
            "decoder": [
                "ShaReD shared read-out (frozen axes)",
                f"ShaReD decoder chosen by inner CV ({ns['decoder']})",
                "per-subject ridge",
            ],
            "behaviour_r2": [ns["shared_r2"], ns["decoder_r2"], ns["ridge_r2"]],
            "calibration_samples": [ns["calibration_samples"]] * 3,
            "test_samples": [ns["test_samples"]] * 3,
        }
    )
    description = (
        f"Generic check on data simulated with a known answer ({summary['n_subjects']} "
        f"subjects with {min(summary['units_per_subject'])}-"
        f"{max(summary['units_per_subject'])} units, {d.n_shared} true shared dimensions, "
        f"{DEMO_SIMULATION['n_behavior']} behaviour features). ShaReD selected k = {k} "
        f"and alpha = {summary['alpha']:.3g} by 5-fold cross-validation over trials; the "
        f"largest principal angle between the recovered and true shared axes is "
        f"{summary['max_angle_deg']:.2f} deg; held-out R^2 per shared dimension "
        + ", ".join(f"{r:.3f}" for r in summary["cv_r2_dim"])
        + f". A held-out subject calibrated on {ns['calibration_trials']} trials "
        f"(axes frozen) decodes behaviour with R^2 = {ns['shared_r2']:.3f} through the "
        f"shared read-out and {ns['decoder_r2']:.3f} through the decoder its inner "
        f"cross-validation chose ({ns['decoder']}), against {ns['ridge_r2']:.3f} for a "
        "per-subject ridge decoder trained on the same trials."
    )
    result = AnalysisResult(
        name="shared_recovery",
        table=table,
        figure=plot_axes(model, true_axes=d.shared_axes, feature_names=d.behavior_names),
        summary={
            k_: summary[k_]
            for k_ in ("alpha", "n_shared", "true_n_shared", "max_angle_deg", "cv_r2_dim")
        }
        | {"new_subject": ns},
        description=description,
        tables={"subjects": per_subject, "new_subject": decoders},
    )
    extra = {
        "cv_scores": plot_cv_scores(model),
        "heldout_r2": plot_heldout_r2(model, extra={"new subject (test)": latent_r2}),
    }
    return result, extra


# ----------------------------------------------------------------- learning-study demo

#: The simulated learning study of ``sharedrep demo`` (``--quick``: the second entry).
DEMO_STUDY = {
    "full": dict(n_mice=6, days=(1, 2, 13, 14), trials_per_session=50),
    "quick": dict(n_mice=6, days=(1, 14), trials_per_session=40),
}
#: Analysis settings written to the demo's study.toml (on top of the simulator's).
DEMO_STUDY_SETTINGS = {
    "full": dict(n_permutations=39, n_bootstrap=39),
    "quick": dict(n_permutations=24, n_bootstrap=9),
}


def _get(d, *keys):
    """``d[k1][k2]...``; KeyError/TypeError name the missing path."""
    for k in keys:
        d = d[k]
    return d


def _find(results: dict, name: str):
    """The result called ``name`` (dict key or ``AnalysisResult.name``)."""
    if name in results:
        return results[name]
    for r in results.values():
        if getattr(r, "name", None) == name:
            return r
    raise KeyError(f"no analysis {name!r} in the results (have {list(results)})")


def ground_truth_checks(results: dict, truth: dict, *, level: float = 0.05) -> list:
    """Compare the headline numbers of the study analyses with the simulator's truth.

    Four claims, each recovered when the analyses report the effect the simulator put in
    (or, for an effect switched off in the simulation, when they do not report it):

    1. the motor thalamus encodes the learned movement best in experts (best cell of
       ``encoding_by_population``, significant at ``level`` and better than every cell
       it is compared with: ``summary["best_significant"]``); not testable when the
       permutation test of that cell or of the best cell, or a test of a comparison it
       rests on, cannot reach ``level`` (``testable`` False);
    2. its peak lag shifts earlier (more lead) with learning (``lag_profiles`` shift > 0,
       significant at ``level`` by the per-mouse sign-flip test, with a bootstrap
       interval above 0); not testable when the sign-flip test cannot reach ``level``
       (with 5 mice or fewer: ``testable`` False);
    3. thalamus-driven M1 units overlap movement-encoding units more in experts than in
       novices (optogenetics analysis);
    4. silencing the thalamic inputs impairs expert movements (silencing analysis).

    A claim whose statistic is not a number (too few animals, an empty cell), whose
    analysis says it is not testable or was skipped, or that the simulation itself does
    not decide (``truth["expected"]["undetermined"]``, e.g. a thalamus with a higher snr
    but fewer encoding units than M1, or a study without thalamus, M1, a novice or an
    expert stage, stimulation or silencing sessions), is *not testable*
    (``TruthCheck.status``): never counted as recovered, in either direction.

    Parameters
    ----------
    results : dict of str to AnalysisResult
        Output of ``run_study``.
    truth : dict
        ``SimulatedStudy.truth``.
    level : float, default 0.05

    Returns
    -------
    list of sharedrep.app.report.TruthCheck
    """
    expected = truth.get("expected", {})
    roles = truth.get("roles", {})
    thal = next((p for p, r in roles.items() if r == "thalamus"), "thalamus")
    shift = expected.get("lag_shift_frames")
    undecided = set(expected.get("undetermined", ()))
    claims = [
        (
            f"{thal} encodes the learned movement best in experts",
            lambda: _encoding_claim(results, thal, level),
            "best_encoding",
            expected.get("best_encoding") is not None,
        ),
        (
            f"{thal} peak lag shifts earlier with learning",
            lambda: _timing_claim(results, truth, thal, level),
            "lag_shift_frames",
            bool(shift and shift > 0),
        ),
        (
            "thalamus-driven M1 units overlap movement-encoding units more in experts",
            lambda: _overlap_claim(results, truth, level),
            "overlap_increases",
            bool(expected.get("overlap_increases")),
        ),
        (
            "silencing the thalamic inputs impairs movement",
            lambda: _silencing_claim(results),
            "silencing_impairs",
            expected.get("silencing_impairs"),
        ),
    ]
    return [
        _truth_check(claim, compute, None if key in undecided else effect_on)
        for claim, compute, key, effect_on in claims
    ]


#: Errors of a claim computation that mean "the results cannot answer it" (a skipped
#: analysis, a missing key, a cell without data).
_UNANSWERABLE = (KeyError, TypeError, IndexError, ValueError, AttributeError, ZeroDivisionError)


def _truth_check(claim: str, compute, effect_on):
    """One :class:`~sharedrep.app.report.TruthCheck` from ``compute() -> (detected, detail)``.

    With the effect switched off in the simulation (``effect_on`` false) the check passes
    when the effect is *not* detected; ``effect_on`` None (the simulation does not decide
    the claim) gives a check that is *not testable*. ``detected`` None (a statistic that is not a
    number, an analysis that says it is not testable) or a claim the results cannot
    answer gives a check that is *not testable*: never recovered, whatever the direction.
    """
    from sharedrep.app.report import TruthCheck

    if effect_on is None:  # the simulation has no right answer to compare with
        reason = "not testable: the simulated effects do not decide this claim"
        return TruthCheck(claim, False, reason, testable=False)
    label = claim if effect_on else f"(effect switched off) not reported: {claim}"
    try:
        detected, detail = compute()
    except _UNANSWERABLE as exc:
        reason = f"not testable: not computable from the results ({exc!r})"
        return TruthCheck(label, False, reason, testable=False)
    if detected is None:
        return TruthCheck(label, False, detail, testable=False)
    return TruthCheck(label, bool(detected) == bool(effect_on), detail)


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _verdict(detected: bool, detail: str, testable: bool = True, **statistics):
    """``(detected, detail)``, or ``(None, "not testable (...): detail")`` when the
    analysis says the claim is not testable or a statistic it rests on is not finite."""
    bad = [name for name, value in statistics.items() if not _finite(value)]
    if bad or not testable:
        why = f"{', '.join(bad)} not a number" if bad else "the analysis could not test it"
        return None, f"not testable ({why}): {detail}"
    return bool(detected), detail


def _num(value, fmt: str = ".3g") -> str:
    """A number for a detail line; ``nan`` for a missing or non-numeric value."""
    return format(float(value), fmt) if _finite(value) else "nan"


def _encoding_claim(results: dict, thal: str, level: float) -> tuple[bool | None, str]:
    """Claim 1: the thalamus in experts is the best encoding cell, significantly.

    Not testable when a test the verdict rests on cannot reach ``level``: the permutation
    test of the best cell or of the thalamus expert cell, or the test
    (:func:`sharedrep.study.populations.comparison_testable`) of a comparison with the
    best cell.
    """
    from sharedrep.study.populations import comparison_testable

    s = _find(results, "encoding_by_population").summary
    best = s["best"]
    cell = s["cells"][best]
    comparisons = s.get("best_comparisons", {})
    # the best cell must beat every cell it is compared with, not only its own null
    detected = best == f"{thal}/expert" and cell["p_value"] <= level and s["best_significant"]
    relied = {k: s["cells"][k] for k in dict.fromkeys((best, f"{thal}/expert")) if k in s["cells"]}
    untestable = [
        f"{k}: {v.get('reason') or 'permutation test cannot reach the level'}"
        for k, v in relied.items()
        if not _cell_testable(v, level)
    ] + [
        f"{k}: {v.get('reason') or 'test cannot reach the level'}"
        for k, v in comparisons.items()
        if not comparison_testable(v)
    ]
    cells = ", ".join(f"{k} {_num(v['score'], '.3f')}" for k, v in s["cells"].items())
    comps = "; ".join(
        f"{k}: {_num(v['difference'], '+.3f')} (p = {_num(v['p_value'])}, "
        f"{'paired by mouse' if v.get('paired') else 'unpaired'})"
        for k, v in comparisons.items()
    )
    detail = (
        f"best: {best} (held-out R^2 {_num(cell['score'], '.3f')}, permutation p = "
        f"{_num(cell['p_value'])}); all cells: {cells}"
        + (f"; comparisons: {comps}" if comps else "")
        + (f"; not testable: {'; '.join(untestable)}" if untestable else "")
    )
    compared = {
        f"p ({k})": v["p_value"] if _finite(v.get("p_value")) else v.get("p_paired")
        for k, v in comparisons.items()
    }
    return _verdict(
        detected,
        detail,
        bool(comparisons) and not untestable,
        **{"best R^2": cell["score"], "best p": cell["p_value"]},
        **compared,
    )


def _cell_testable(cell: dict, level: float) -> bool:
    """Whether a cell's permutation test can reach ``level`` (``testable`` and ``p_min``;
    a summary without them: testable)."""
    p_min = cell.get("p_min")
    return bool(cell.get("testable", True)) and not (_finite(p_min) and p_min > level)


def _timing_claim(results: dict, truth: dict, thal: str, level: float) -> tuple[bool | None, str]:
    """Claim 2: the thalamus peak lag shifts earlier: shift > 0, per-mouse sign-flip
    p <= ``level`` and the bootstrap interval above 0 (in seconds when the summary has
    them, so stages imaged at different frame rates compare); not testable when the lag analysis
    says its sign-flip test cannot reach the 5% level (``testable``, e.g. 5 mice or fewer)
    or the test's smallest p (``p_min``) is above ``level``, and, with the reason, when it
    computed no shift at all (e.g. one stage analysed) or none of ``thal``."""
    from sharedrep.app.report import _no_shift_reason

    s = _find(results, "lag_profiles").summary
    if not s["shifts"]:  # e.g. one stage analysed: no shift to compare with the truth
        return None, f"not testable: {_no_shift_reason(s)}"
    if thal not in s["shifts"]:
        have = ", ".join(map(str, s["shifts"]))
        return None, f"not testable: no peak-lag shift of {thal} (computed for: {have})"
    sh = s["shifts"][thal]
    p = sh["p_signflip"]
    shift, ci_low = _shift_and_ci_low(sh)
    testable = bool(sh["testable"]) and not (_finite(sh.get("p_min")) and sh["p_min"] > level)
    detected = (
        _finite(shift) and _finite(ci_low) and _finite(p) and shift > 0 and ci_low > 0
    ) and p <= level
    return _verdict(
        detected,
        _timing_detail(s, sh, truth.get("lead_frames", {}).get(thal, {}), thal),
        testable,
        shift=shift,
        **{"CI low": ci_low, "sign-flip p": p},
    )


def _shift_and_ci_low(sh: dict) -> tuple:
    """The peak-lag shift of one population and the low end of its interval: in seconds
    when the summary has both (a shift in frames is NaN between stages at different
    frame rates), else in frames."""
    if _finite(sh.get("shift_s")) and _finite((sh.get("ci_s") or [math.nan])[0]):
        return sh["shift_s"], sh["ci_s"][0]
    return sh["shift"], sh["ci"][0]


def _timing_detail(s: dict, sh: dict, true_leads: dict, thal: str) -> str:
    """The detail line of the timing claim: the peak lags of ``thal`` per stage (frames),
    the shift ``sh`` with its interval and sign-flip p, and the simulated leads
    ``true_leads`` (``{stage: frames or None}``)."""
    from sharedrep.study._common import ci_text

    ci = sh["ci"]
    peaks = {
        k.split("/", 1)[1]: v["peak_lag"]
        for k, v in s["peaks"].items()
        if k.split("/", 1)[0] == thal
    }
    return (
        f"peak lag {sh['stage_from']} -> {sh['stage_to']}: "
        + ", ".join(f"{st} {_num(pk, '+.0f')}" for st, pk in peaks.items())
        + f" frames (shift {_num(sh['shift'], '+.0f')}, "
        f"{ci_text(ci[0], ci[1], sh.get('ci_reason', ''), spec='+.0f')}, per-mouse sign-flip "
        f"p = {_num(sh['p_signflip'])} over {sh.get('n_subjects', '?')} mice); true lead: "
        + ", ".join(
            f"{st} {'none (no encoding unit)' if v is None else v}" for st, v in true_leads.items()
        )
        + " frames"
        + (f"; {sh['reason']}" if sh.get("reason") else "")
    )


def _overlap_claim(results: dict, truth: dict, level: float) -> tuple[bool | None, str]:
    """Claim 3: driven units overlap encoding units more in experts (odds-ratio ratio > 1);
    not testable, with the analysis' reason, when it computed no change (e.g. one stage
    with stimulation sessions)."""
    s = _find(results, "encoding_overlap").summary
    diff = s["difference"]
    if not diff:
        why = (
            s.get("untestable_reason") or "the overlap analysis computed no change between stages"
        )
        return None, f"not testable: {why}"
    st = s["stages"]
    ror, p = diff["ratio_of_odds_ratios"], diff["p_pooled"]
    detected = _finite(ror) and _finite(p) and ror > 1 and p <= level
    ors = ", ".join(f"{k} {_num(v['odds_ratio'], '.2f')}" for k, v in st.items())
    true_or = ", ".join(f"{k} {v:.2f}" for k, v in truth.get("overlap_odds_ratio", {}).items())
    detail = (
        f"Mantel-Haenszel odds ratio driven x encoding: {ors}; ratio "
        f"{diff['stage_to']}/{diff['stage_from']} {_num(ror, '.2f')} (pooled permutation p "
        f"= {_num(p)}; per-mouse sign-flip p = {_num(diff['p_mice'])} over "
        f"{diff['n_mice']} mice); simulated selection odds multiplier: {true_or}"
    )
    if s.get("untestable_reason"):
        detail += f"; {s['untestable_reason']}"
    return _verdict(
        detected,
        detail,
        bool(s.get("testable", True)),
        **{"odds-ratio ratio": ror, "pooled p": p},
    )


def _silencing_claim(results: dict) -> tuple[bool | None, str]:
    """Claim 4: silencing lowers the success rate of expert movements."""
    s = _find(results, "silencing_effects").summary
    m = s["metrics"]
    success = m["success_rate"]
    detected = bool(s["impairs"]) and _finite(success["difference"]) and success["difference"] < 0
    parts = [
        f"{k} {_num(v['laser_off'])} -> {_num(v['laser_on'])} {v['unit']} "
        f"(p = {_num(v['p_value'])})"
        for k, v in m.items()
    ]
    detail = (
        f"laser off -> on, paired across {s['n_mice']} mice (one-sided sign-flip): "
        + "; ".join(parts)
    )
    return _verdict(
        detected,
        detail,
        bool(s.get("testable", True)) and s["n_mice"] > 0,
        **{
            "success-rate difference": success["difference"],
            "success-rate p": success["p_value"],
        },
    )


def _study_step(
    con: Console,
    out: Path,
    seed: int,
    size: str,
    n_mice: int | None,
    force: bool,
    timings: dict,
):
    """Step 2 of the demo: simulate the learning study, write NWB, load, analyse."""
    from sharedrep.data.io.results import write_json
    from sharedrep.data.studyfile import load_study
    from sharedrep.sim.learning_study import simulate_study
    from sharedrep.study.pipeline import run_study

    cfg = dict(DEMO_STUDY[size])
    if n_mice is not None:
        cfg["n_mice"] = n_mice
    n_pop = 3
    with _step(
        con,
        f"Simulating the learning study: {cfg['n_mice']} mice x {len(cfg['days'])} days x "
        f"{n_pop} populations (seed {seed})",
        timings,
    ):
        sim = simulate_study(seed=seed, **cfg)
        sim.settings.update(DEMO_STUDY_SETTINGS[size])
    data = out / "data"
    t0 = time.perf_counter()
    toml = write_study_with_progress(sim, data, force, con)
    write_json(sim.truth, data / "truth.json", overwrite=force)
    timings["Writing NWB files and study.toml"] = round(time.perf_counter() - t0, 4)
    with _step(con, "Loading the study back from the NWB files (load_study)", timings):
        collection = load_study(toml)
    con.print("Running the study analyses (run_study)")
    t0 = time.perf_counter()
    results = run_study(collection, settings=None, progress=True)
    dt = time.perf_counter() - t0
    timings["Running the study analyses"] = round(dt, 4)
    con.print(f"[green]{done_mark(con)}[/green] Study analyses [dim]({dt:.2f} s)[/dim]")
    checks = ground_truth_checks(results, sim.truth)
    return sim, toml, collection, results, checks


def _effective_settings(collection) -> dict:
    from sharedrep.study.pipeline import resolve_settings

    return resolve_settings(collection)


def run_demo(
    out: Path,
    seed: int = 0,
    n_subjects: int = 8,
    plots: bool = True,
    force: bool = False,
    con: Console | None = None,
    *,
    study: bool = True,
    quick: bool = False,
    n_mice: int | None = None,
) -> dict:
    """The demo: generic recovery, then the simulated learning study end to end.

    Step 1 simulates ``n_subjects`` subjects (plus one held out) with a known shared
    representation, fits ShaReD, compares the axes with the truth and decodes the
    held-out subject. Step 2 (``study``) simulates the lever-push learning study,
    writes it as NWB files plus ``study.toml`` under ``out / "data"``, loads it back
    with :func:`sharedrep.data.studyfile.load_study`, runs every analysis
    (:func:`sharedrep.study.pipeline.run_study`) and checks the results against the
    simulator's ground truth. With ``plots`` the report (``report.html``, figures,
    tables, ``results.json``) is written to ``out``; ``summary.json`` always. The output
    folder is checked first (created, writable, empty unless ``force``), before anything
    is simulated. The verdict of each claim is in ``summary["study"]["truth_checks"]``
    (``status``: "recovered", "not recovered" or "not testable"); the ``demo`` command
    exits non-zero unless every claim is recovered.

    Parameters
    ----------
    out : Path
        Output directory (must be empty or missing unless ``force``, and writable).
    seed : int
        Seed of the simulations and of the fold assignment.
    n_subjects : int
        Subjects of step 1 (one more is simulated and held out).
    plots : bool
        Write the report with its figures and tables.
    force : bool
        Write into a non-empty ``out`` (replacing files of the same names).
    con : rich Console, optional
    study : bool
        Run step 2.
    quick : bool
        A smaller study (for tests; less statistical power).
    n_mice : int, optional
        Mice of the study (default 6, also with ``quick``).

    Returns
    -------
    summary : dict
        Everything written to ``out / "summary.json"``.
    """
    con = con or console()
    if study:
        _require_nwb()
    out = prepare_out_dir(out, force, DEMO_OUTPUTS)  # writable, nothing in the way
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    con.rule("[bold]1. ShaReD recovers a known shared representation")
    summary, model, d, latent_r2 = _recovery_step(con, seed, n_subjects, timings)
    _print_report(con, model, summary)

    results: dict = {}
    data_files: list[Path] = []
    settings: dict = {"shared_recovery": {**DEMO_MODEL, "random_state": seed}}
    checks = None
    if study:
        size = "quick" if quick else "full"
        con.rule("[bold]2. The learning study: simulate -> NWB -> study.toml -> analyses")
        sim, toml, collection, results, checks = _study_step(
            con, out, seed, size, n_mice, force, timings
        )
        data_files = study_data_files(toml)
        settings["study"] = _effective_settings(collection)
        summary["study"] = _study_summary(out, size, n_mice, toml, collection) | {
            "settings": settings["study"],
            "analyses": list(results),
            "expected": sim.truth["expected"],
            "truth_checks": [
                {"claim": c.claim, "passed": c.passed, "status": c.status, "detail": c.detail}
                for c in checks
            ],
            "all_recovered": all(c.passed for c in checks),
            "headline": {k: r.summary for k, r in results.items()},
        }
        print_truth_checks(con, checks)

    summary["figures"] = []
    if plots:
        with _step(con, f"Writing the report, figures and tables to {out}", timings):
            recovery = _recovery_result(summary, model, d, latent_r2)
            report = _write_demo_report(
                out, recovery, results, settings, data_files, checks, force
            )
        summary["report"] = report.name
        summary["figures"] = sorted(
            str(p.relative_to(out)) for p in (out / "figures").iterdir() if p.is_file()
        )
    timings["total"] = round(time.perf_counter() - t_start, 4)
    summary["timings_s"] = timings
    _write_json(out / "summary.json", _jsonable(summary))
    _print_outcome(con, out, plots, study, checks, timings["total"])
    return summary


def _require_nwb() -> None:
    """Refuse the study step when the NWB packages it writes and reads with are missing."""
    import importlib.util

    missing = [m for m in ("pynwb", "ndx_pose") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(
            f"the demo's study step writes and reads NWB files but {', '.join(missing)} "
            "is not installed: pip install 'sharedrep[nwb]' (or run with --no-study)"
        )


def _study_summary(out: Path, size: str, n_mice, toml: Path, collection) -> dict:
    """How the demo's study was simulated and where it was written (``summary.json``)."""
    return {
        "size": size,
        "simulation": {**DEMO_STUDY[size], **({"n_mice": n_mice} if n_mice else {})},
        "n_sessions": len(collection),
        "study_file": str(toml.relative_to(out)),
    }


def _write_demo_report(out, recovery, results, settings, data_files, checks, force) -> Path:
    """Write ``report.html`` with the recovery section first, then the study analyses."""
    from sharedrep.app.report import REPORT_NAME, write_report

    recovery_result, recovery_figures = recovery
    report = write_report(
        {"shared_recovery": recovery_result, **results},
        out,
        settings=settings,
        data_files=data_files,
        title="sharedrep demo: ShaReD on simulated data with known ground truth",
        overwrite=force,
        truth_checks=checks,
        extra_figures={"shared_recovery": recovery_figures},
        notes=[
            "Everything in this report was computed from simulated data by "
            "`sharedrep demo`. Section 'shared_recovery' checks ShaReD itself on "
            "generic simulated subjects; the other sections are the analyses of a "
            "simulated lever-push learning study, written as NWB files with a "
            "study.toml (data/) and loaded back, exactly as `sharedrep run` would "
            "process a real study."
        ],
    )
    assert report.name == REPORT_NAME
    return report


def _print_outcome(con: Console, out: Path, plots: bool, study: bool, checks, total_s) -> None:
    """The closing lines: what was written where, how many claims were recovered."""
    written = ["summary.json"] + (["report.html", "figures/", "tables/"] if plots else [])
    if study:
        written.append("data/")
    con.print(f"Results in [bold]{out}[/bold]: " + ", ".join(written))
    if checks is not None:
        n_ok = sum(c.status == "recovered" for c in checks)
        n_untestable = sum(c.status == "not testable" for c in checks)
        colour = "green" if n_ok == len(checks) else "red"
        untestable = f", {n_untestable} not testable" if n_untestable else ""
        con.print(
            f"[{colour}]{n_ok} of {len(checks)} ground-truth claims recovered{untestable}"
            f"[/{colour}] in {total_s:.0f} s."
        )


def _jsonable(obj):
    from sharedrep.data.io.results import to_jsonable

    return to_jsonable(obj)


def _print_report(con: Console, model, summary: dict) -> None:
    k = summary["n_shared"]
    t = titled_table("Model selection (cross-validation over trials)")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_row("selected alpha", f"{summary['alpha']:.3g}")
    t.add_row("selected k (shared dimensions)", f"{k}  (true: {summary['true_n_shared']})")
    t.add_row(
        "principal angles to true axes (deg)",
        ", ".join(f"{a:.2f}" for a in summary["principal_angles_deg"]),
    )
    t.add_row("max principal angle (deg)", f"{summary['max_angle_deg']:.2f}")
    con.print(t)

    t = titled_table("Held-out R^2 per shared dimension (CV, pooled over subjects)")
    t.add_column("dimension")
    t.add_column("held-out R^2", justify="right")
    for j, r2 in enumerate(summary["cv_r2_dim"]):
        t.add_row(str(j + 1), f"{r2:.3f}")
    con.print(t)

    ns = summary["new_subject"]
    con.print(
        f"Held-out subject ({ns['units']} units): calibrated on {ns['calibration_samples']} "
        f"samples ({ns['calibration_trials']} trials), scored on {ns['test_samples']} others."
    )
    t = titled_table("New-subject decoding")
    t.add_column("decoder")
    t.add_column("behaviour R^2", justify="right")
    t.add_row("ShaReD shared read-out (frozen axes)", f"{ns['shared_r2']:.3f}")
    t.add_row(f"ShaReD decoder chosen by inner CV ({ns['decoder']})", f"{ns['decoder_r2']:.3f}")
    t.add_row("per-subject ridge decoder (same calibration)", f"{ns['ridge_r2']:.3f}")
    con.print(t)
    con.print(
        "Held-out subject, R^2 of each shared latent: "
        + ", ".join(f"dim {j + 1}: {r:.3f}" for j, r in enumerate(ns["latent_r2"]))
    )
