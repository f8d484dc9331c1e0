"""Timing: held-out encoding as a function of the neural-behaviour lag.

For every population x stage, ShaReD is fitted with one lag at a time (lag ``l > 0``:
neural activity at ``t - l`` predicts behaviour at ``t``, i.e. neural activity leads the
movement by ``l`` frames). The per-mouse held-out R^2 of the first shared dimension
traces a lag profile; its peak is the lead of that population. The shift of the peak
between the first and the last stage (e.g. novice -> expert) gets a percentile bootstrap
interval over mice (none with fewer than :data:`MIN_BOOTSTRAP_MICE` mice).
The analysis is compute (private helpers returning tables) -> plot
(:mod:`sharedrep.study.figures`) -> summarise -> describe. This module may import
``sharedrep.data``, ``sharedrep.utils`` and ``sharedrep.study``'s ``_common``, ``_result``,
``figures`` and ``populations``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from sharedrep.data.session import RATE_TOLERANCE, SessionCollection
from sharedrep.study._common import (
    Steps,
    analysis,
    describe_provenance,
    fmt_num,
    fnum,
    left_out_cells,
    left_out_of,
    make_model,
    mice_text,
    no_session,
    origin,
    p_text,
    paired_mice,
    quiet,
    reason_cell,
    reason_text,
    session_provenance,
    sign_flip_test,
    sign_flip_testability,
    single_blas,
)
from sharedrep.study._result import AnalysisResult
from sharedrep.study.figures import plot_lag_profiles
from sharedrep.study.populations import cell_session_ids, fit_cells

__all__ = ["lag_profiles"]

#: Fewest mice behind a bootstrap interval of a peak lag or of its shift. A percentile
#: bootstrap over 2 mice has 3 distinct resamples (each mouse twice, or both), so its
#: "95%" interval is about the range of the two mice: in simulated per-mouse lag
#: profiles (1,000 data sets per case) it held the true peak shift in 72-83% of data
#: sets and excluded 0 in 20-28% of data sets without any shift; from 3 mice on it held
#: it in 93-100%.
MIN_BOOTSTRAP_MICE = 3


def _peak(curve: np.ndarray, lags: np.ndarray) -> float:
    """Lag of the maximum of a (mean) profile; NaN if the profile is all NaN."""
    c = np.asarray(curve, dtype=float)
    if not np.isfinite(c).any():
        return math.nan
    return float(lags[int(np.argmax(np.where(np.isfinite(c), c, -np.inf)))])


def _same_rate(a: float, b: float) -> bool:
    """Whether two frame rates (Hz) are the same within ``RATE_TOLERANCE`` (two unknown:
    yes)."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return not (math.isfinite(a) or math.isfinite(b))
    return bool(np.isclose(a, b, rtol=RATE_TOLERANCE, atol=0.0))


def _distinct_rates(rates) -> list[float]:
    """The distinct finite frame rates among ``rates`` (within ``RATE_TOLERANCE``)."""
    out: list[float] = []
    for r in rates:
        if math.isfinite(r) and not any(_same_rate(r, o) for o in out):
            out.append(float(r))
    return out


def _cell_rate(collection: SessionCollection, args) -> float:
    """Frame rate (Hz) of the sessions fitted in one population x stage cell (NaN if
    unknown), read from the sessions as recorded (before stimulation samples are masked).

    Lags are in frames, so the sessions of a cell share one frame rate:
    :meth:`~sharedrep.data.session.SessionCollection.to_fit_args` refuses mixed rates when
    the cell's fit arguments are built.
    """
    by_id = {s.session_id: s for s in collection}
    rates = [by_id[sid].sampling_rate for ids in args.session_ids for sid in ids]
    finite = [r for r in rates if math.isfinite(r)]
    return float(np.median(finite)) if finite else math.nan


@analysis("lag_profiles")
@single_blas
def lag_profiles(
    collection: SessionCollection,
    lags=range(-2, 8),
    *,
    populations=None,
    stages=None,
    model=None,
    n_boot: int = 2000,
    ci: float = 0.95,
    days_per_stage: int | None = 2,
    within_trials: bool = True,
    random_state: int = 0,
    progress=False,
) -> AnalysisResult:
    """Held-out score vs lag per population x stage; peak lag and its shift with learning.

    For every lag ``l`` in ``lags`` (frames) a ShaReD model with the single lag ``l`` is
    fitted on the mice of each population x stage (``model``'s other settings; alpha
    chosen by cross-validation for each lag). The score of a mouse at a lag is the
    held-out R^2 of the first shared dimension for that mouse (pooled cross-validation
    over its trials). The **peak lag** of a population x stage is the lag maximising the
    mean profile across mice (integer frames; positive = neural activity leads the
    movement). **Interval:** percentile bootstrap over mice (``n_boot`` resamples of the
    per-mouse profiles; the shared axes are not refitted, so the interval reflects
    variability across mice of the held-out profiles; integer-frame resolution, so a
    bound may equal the estimate). No interval (NaN bounds, with ``ci_reason``) from
    fewer than :data:`MIN_BOOTSTRAP_MICE` (3) mice: a bootstrap over 2 mice spans about
    the range of the two and covers far less than 95%. **Shift** = peak(last stage) -
    peak(first stage) (e.g. expert - novice; > 0: the population leads the movement
    more after learning), bootstrapped with the same mice drawn for both stages (paired;
    mice present in both), plus an exact sign-flip test (two-sided) on the per-mouse
    peak shifts. Mice are the unit of inference.

    **Frame rates.** Lags are in frames, so the sessions of one population x stage must
    share a frame rate (within 1 %; otherwise ``ValueError``); seconds (``lag_s``,
    ``peak_lag_s``) use the rate of each cell. The shift in seconds is
    ``peak_s(last) - peak_s(first)`` with each stage's own rate; when the two stages
    differ in rate, the shift in frames (``shift``, ``ci_low``, ``ci_high``) is NaN and
    the interval and the sign-flip test are computed in seconds.

    Parameters
    ----------
    collection : SessionCollection
    lags : iterable of int, default range(-2, 8)
        Lags to scan, in frames.
    populations, stages : list of str, optional
        As in :func:`sharedrep.study.encoding_by_population`.
    model : ShaReD, optional
        Template (its ``lags`` are replaced); default ``_common.make_model()``.
    n_boot : int, default 2000
    ci : float, default 0.95
    days_per_stage : int or None, default 2
    within_trials : bool, default True
    random_state : int, default 0
    progress : bool or rich.progress.Progress, default False

    Returns
    -------
    AnalysisResult
        ``table``: one row per population x stage x lag x mouse: ``population``,
        ``stage``, ``lag`` (frames), ``lag_s`` (seconds; positive = neural leads),
        ``subject``, ``score``. ``tables["pooled"]``: the pooled held-out R^2 of each
        population x stage x lag. ``tables["peaks"]``: ``population``, ``stage``,
        ``frame_rate`` (Hz), ``peak_lag``, ``peak_lag_s``, ``ci_low``, ``ci_high``
        (frames), ``ci_reason`` (why the interval is NaN; NaN when it is not),
        ``peak_score``, ``n_subjects``. ``tables["shifts"]``: ``population``,
        ``stage_from``, ``stage_to``, ``shift`` (frames), ``shift_s``, ``ci_low``,
        ``ci_high`` (frames), ``ci_low_s``, ``ci_high_s`` (seconds), ``ci_reason`` (as
        in ``peaks``), ``p_signflip`` (on the per-mouse shifts in seconds), ``p_min``
        (its smallest achievable value, ``2 / 2^n``), ``testable`` (``p_min <= 0.05``
        and p a number), ``reason`` (why not; NaN when testable, ``""`` in the summary),
        ``n_subjects`` (mice in both stages), ``mice_left_out`` (the mice of the
        population in one stage only, each with the reason, e.g. ``"mouse03, no expert
        session of thalamus"``; NaN when none). ``summary``: ``peaks`` {"pop/stage":
        {peak_lag, peak_lag_s, frame_rate, ci, ci_reason}}, ``shifts`` {pop: {shift,
        shift_s, ci, ci_s, ci_reason (``""`` when the interval is computed), p_signflip,
        p_min, testable, reason, n_subjects, mice_left_out ({mouse: reason}, ``{}`` when
        none; also named in ``reason`` and the description), excludes_zero (of
        ci_s)}}, ``frame_rate`` (the
        common rate of every cell; NaN when cells differ) and ``frame_rates``
        {"pop/stage": Hz}, ``sessions`` (the sessions used and those left out, with the
        reason: ``_common.session_provenance``).

    Raises
    ------
    ValueError
        Fewer than 2 lags, no cell with 2 mice, or sessions of different frame rates
        within one population x stage (refused as the cell's fit arguments are built).
    AnalysisError
        An error while fitting one cell (other than a lag the cell cannot be fitted at,
        which is reported in ``failed_lags``); the message starts with
        ``"lag_profiles"`` and names the population, stage, sessions and subjects.
    """
    lags = np.array(sorted({int(v) for v in lags}), dtype=np.int64)
    if lags.size < 2:
        raise ValueError(f"lags must hold at least 2 distinct lags; got {lags.tolist()}")
    if model is None:
        model = make_model(random_state=random_state)
    skipped: list = []
    left_out: dict = {}
    cells = fit_cells(
        collection,
        populations,
        stages,
        days_per_stage=days_per_stage,
        within_trials=within_trials,
        skipped=skipped,
        left_out=left_out,
    )
    cell_rates = {key: _cell_rate(collection, args) for key, args in cells.items()}
    distinct = _distinct_rates(cell_rates.values())
    rate = distinct[0] if len(distinct) == 1 else math.nan
    tables = _compute_lags(
        model,
        cells,
        lags,
        cell_rates,
        absent=lambda pop, st: no_session(collection, st, pop),
        n_boot=n_boot,
        ci=ci,
        random_state=random_state,
        progress=progress,
    )
    figure = plot_lag_profiles(tables.table, tables.peaks, tables.populations, tables.stages)
    summary = _summarise_lags(tables, lags, cell_rates, rate, n_boot, skipped)
    summary["sessions"] = session_provenance(collection, cell_session_ids(cells), left_out)
    return AnalysisResult(
        name="lag_profiles",
        table=tables.table,
        figure=figure,
        summary=summary,
        description=_describe_lags(summary, tables.failed, ci)
        + describe_provenance(summary["sessions"]),
        tables={
            "pooled": tables.pooled,
            "peaks": tables.peaks,
            "shifts": left_out_cells(tables.shifts),
        },
    )


_SHIFT_COLUMNS = [
    "population",
    "stage_from",
    "stage_to",
    "shift",
    "shift_s",
    "ci_low",
    "ci_high",
    "ci_low_s",
    "ci_high_s",
    "ci_reason",
    "p_signflip",
    "p_min",
    "testable",
    "reason",
    "n_subjects",
    "mice_left_out",
]


@dataclass
class _LagTables:
    """Tables computed by :func:`lag_profiles` and the facts their summary needs.

    ``curves`` maps ``(population, stage)`` to ``(mice, scores)``, ``scores`` of shape
    (n_mice, n_lags); ``failed`` maps ``"pop / stage"`` to ``[(lag, message), ...]``.
    """

    table: pd.DataFrame
    pooled: pd.DataFrame
    peaks: pd.DataFrame
    shifts: pd.DataFrame
    curves: dict
    failed: dict
    populations: list
    stages: list


def _fit_lag(model, args, lag: int):
    """ShaReD with the single lag ``lag`` fitted on one cell; its per-mouse and pooled R^2.

    Returns ``(per_mouse, pooled)``: the held-out R^2 of dimension 1 of every mouse,
    shape (n_mice,), and pooled over the mice (float).
    """
    m = clone(model).set_params(lags=[int(lag)])
    m.fit(args.neural, args.behavior, groups=args.groups)
    ia = m.cv_results_["best_index"][0]
    return m.cv_results_["r2_subject_dim"][ia, :, 0], float(m.cv_results_["r2_dim"][ia, 0])


def _fit_lag_curves(model, cells: dict, lags: np.ndarray, cell_rates: dict, progress):
    """Per-mouse lag profiles of every cell.

    Returns ``(table, pooled, curves, failed)``: the long per-mouse table, the pooled
    table, ``{cell: (mice, scores (n_mice, n_lags))}`` and the lags whose fit failed.
    A cell whose fit fails at every lag raises an ``AnalysisError`` naming it.
    """
    rows, pooled_rows = [], []
    curves: dict = {}
    failed: dict = {}  # lags whose fit failed, per cell (e.g. lag windows longer than trials)
    with Steps(progress, "lag profiles", len(cells) * lags.size) as steps, quiet():
        for (pop, st), args in cells.items():
            rate_c = cell_rates[(pop, st)]
            per = np.full((len(args), lags.size), np.nan)
            for j, lag in enumerate(lags):
                try:
                    per[:, j], score = _fit_lag(model, args, lag)
                except ValueError as exc:
                    failed.setdefault(f"{pop} / {st}", []).append((int(lag), str(exc)))
                    steps.advance(f"{pop}/{st} lag {lag}")
                    continue
                cell = {"population": pop, "stage": st, "lag": int(lag), "lag_s": lag / rate_c}
                pooled_rows.append({**cell, "score": score})
                steps.advance(f"{pop}/{st} lag {lag}")
            if len(failed.get(f"{pop} / {st}", ())) == lags.size:
                with origin(population=pop, stage=st, cell=args):
                    raise ValueError(f"no fit at any lag: {failed[f'{pop} / {st}'][0][1]}")
            curves[(pop, st)] = (list(args.subjects), per)
            for i, subj in enumerate(args.subjects):
                for j, lag in enumerate(lags):
                    cell = {"population": pop, "stage": st, "lag": int(lag), "lag_s": lag / rate_c}
                    rows.append({**cell, "subject": subj, "score": float(per[i, j])})
    return pd.DataFrame(rows), pd.DataFrame(pooled_rows), curves, failed


def _too_few_mice(n_mice: int) -> str:
    """Why no bootstrap interval is given over ``n_mice`` mice (``""``: enough mice)."""
    if n_mice >= MIN_BOOTSTRAP_MICE:
        return ""
    return (
        f"not computed ({mice_text(n_mice)}: a percentile bootstrap interval needs at "
        f"least {MIN_BOOTSTRAP_MICE})"
    )


def _percentile_ci(boot: np.ndarray, q: list) -> tuple[float, float, str]:
    """``(low, high, reason)``: the ``q`` quantiles of the finite bootstrap values."""
    boot = boot[np.isfinite(boot)]
    if not boot.size:
        return math.nan, math.nan, "not computable (no resample has a peak)"
    lo, hi = np.quantile(boot, q)
    return float(lo), float(hi), ""


def _peak_table(curves: dict, lags, cell_rates: dict, rng, n_boot: int, q: list) -> pd.DataFrame:
    """Peak lag of each cell's mean profile, with a bootstrap-over-mice interval (frames;
    NaN, with ``ci_reason``, from fewer than :data:`MIN_BOOTSTRAP_MICE` mice)."""
    peak_rows = []
    for (pop, st), (subj, per) in curves.items():
        mean = _mean_rows(per)
        lo, hi, why = math.nan, math.nan, _too_few_mice(per.shape[0])
        if not why:
            draws = rng.integers(0, per.shape[0], size=(n_boot, per.shape[0]))
            boot = np.array([_peak(_mean_rows(per[d]), lags) for d in draws])
            lo, hi, why = _percentile_ci(boot, q)
        pk = _peak(mean, lags)
        peak_rows.append(
            {
                "population": pop,
                "stage": st,
                "frame_rate": cell_rates[(pop, st)],
                "peak_lag": pk,
                "peak_lag_s": pk / cell_rates[(pop, st)],
                "ci_low": lo,
                "ci_high": hi,
                "ci_reason": reason_cell(why),
                "peak_score": float(np.nanmax(mean)) if np.isfinite(mean).any() else math.nan,
                "n_subjects": len(subj),
            }
        )
    return pd.DataFrame(peak_rows)


def _paired_profiles(curves: dict, pop: str, first: str, last: str, absent):
    """The profiles of the mice present in both stages: ``(mice, A, B, left_out)`` (rows
    aligned; ``left_out``: ``{mouse: reason}`` of the mice in one stage only, the reason
    from ``absent(population, stage)``, see ``_common.no_session``)."""
    sa, pa = curves[(pop, first)]
    sb, pb = curves[(pop, last)]
    common, left_out = paired_mice(sa, sb, absent(pop, first), absent(pop, last))
    return (
        common,
        pa[[sa.index(s) for s in common]],
        pb[[sb.index(s) for s in common]],
        left_out,
    )


def _no_profile(pop: str, stage: str) -> str:
    """Why a mouse has no lag profile of ``pop`` in ``stage`` (without the sessions)."""
    return f"no {stage} session of {pop}"


def _shift_row(
    pop, first, last, curves, lags, cell_rates, rng, n_boot, q, absent=_no_profile
) -> dict:
    """Peak shift ``first -> last`` of one population over its paired mice (NaN, not
    testable, with fewer than 2 mice in both stages: a row that says so, never a gap)."""
    common, A, B, left_out = _paired_profiles(curves, pop, first, last, absent)
    why = _too_few_mice(len(common))
    if len(common) < 2:
        nan = [math.nan] * 6
        untestable = sign_flip_testability(math.nan, len(common), left_out=left_out)
        return _shift_values(pop, first, last, nan, why, math.nan, untestable, common, left_out)
    # lags in seconds per stage: the stages may be imaged at different rates
    ra, rb = cell_rates[(pop, first)], cell_rates[(pop, last)]
    same_rate = _same_rate(ra, rb)
    if same_rate:  # one rate: the shift in seconds is the shift in frames / rate
        ra = rb = (ra + rb) / 2
    lags_a, lags_b = lags / ra, lags / rb

    def shift_of(rows_a, rows_b):
        """Shift in frames and in seconds of the peaks of two sets of rows."""
        pa_, pb_ = _peak(rows_a, lags), _peak(rows_b, lags)
        return pb_ - pa_, _peak(rows_b, lags_b) - _peak(rows_a, lags_a)

    obs, obs_s = shift_of(_mean_rows(A), _mean_rows(B))
    lo = hi = lo_s = hi_s = math.nan
    if not why:
        draws = rng.integers(0, len(common), size=(n_boot, len(common)))
        boot = np.array([shift_of(_mean_rows(A[d]), _mean_rows(B[d])) for d in draws])
        boot = boot.reshape(-1, 2)
        lo, hi, _ = _percentile_ci(boot[:, 0], q)
        lo_s, hi_s, why = _percentile_ci(boot[:, 1], q)
    per_mouse_s = np.array([shift_of(A[i], B[i])[1] for i in range(len(common))])
    if not same_rate:
        # a shift in frames mixes two frame durations: only seconds are reported
        obs, lo, hi = math.nan, math.nan, math.nan
    p = sign_flip_test(per_mouse_s)
    testability = sign_flip_testability(p, int(np.isfinite(per_mouse_s).sum()), left_out=left_out)
    values = [obs, obs_s, lo, hi, lo_s, hi_s]
    return _shift_values(pop, first, last, values, why, p, testability, common, left_out)


def _shift_values(pop, first, last, values, why, p, testability, common, left_out) -> dict:
    """One row of the shifts table: ``values`` (shift, shift_s, ci_low, ci_high,
    ci_low_s, ci_high_s), the interval's ``why``, the sign-flip ``p`` and its
    ``testability``, over the mice ``common`` (``left_out``: the others)."""
    return {
        "population": pop,
        "stage_from": first,
        "stage_to": last,
        **dict(zip(_SHIFT_COLUMNS[3:9], map(float, values), strict=True)),
        "ci_reason": reason_cell(why),
        "p_signflip": float(p),
        **testability,
        "reason": reason_cell(testability["reason"]),
        "n_subjects": len(common),
        "mice_left_out": left_out,
    }


def _shift_table(curves, pops, stg, lags, cell_rates, rng, n_boot, q, absent) -> pd.DataFrame:
    """Peak shift from the first to the last stage of every population (paired mice;
    ``mice_left_out`` holds ``{mouse: reason}`` dicts, written as text by
    ``_common.left_out_cells``)."""
    shift_rows = []
    if len(stg) >= 2:
        first, last = stg[0], stg[-1]
        none = ([], np.empty((0, lags.size)))  # a stage without any profile of pop
        for pop in pops:
            pair = {(pop, st): curves.get((pop, st), none) for st in (first, last)}
            if not any(len(mice) for mice, _ in pair.values()):
                continue  # pop is not imaged at either stage
            shift_rows.append(
                _shift_row(pop, first, last, pair, lags, cell_rates, rng, n_boot, q, absent)
            )
    return pd.DataFrame(shift_rows, columns=_SHIFT_COLUMNS)


def _compute_lags(model, cells, lags, cell_rates, *, absent, n_boot, ci, random_state, progress):
    """Fit the lag profiles, then bootstrap the peaks and their shifts (tables only).

    ``absent(population, stage)``: why a mouse has no profile there (a function of the
    mouse, ``_common.no_session``), for the mice a shift leaves out.
    """
    table, pooled, curves, failed = _fit_lag_curves(model, cells, lags, cell_rates, progress)
    rng = np.random.default_rng(random_state)
    q = [(1 - ci) / 2, (1 + ci) / 2]
    peaks = _peak_table(curves, lags, cell_rates, rng, n_boot, q)
    stg = list(dict.fromkeys(s for _, s in curves))  # the cells' (learning) order
    pops = list(dict.fromkeys(p for p, _ in curves))
    shifts = _shift_table(curves, pops, stg, lags, cell_rates, rng, n_boot, q, absent)
    return _LagTables(table, pooled, peaks, shifts, curves, failed, pops, stg)


def _summarise_lags(tables: _LagTables, lags, cell_rates: dict, rate: float, n_boot, skipped):
    """Headline numbers of :func:`lag_profiles` (keys documented there)."""
    peak_summary = {
        f"{r['population']}/{r['stage']}": {
            "peak_lag": fnum(r["peak_lag"]),
            "peak_lag_s": fnum(r["peak_lag_s"]),
            "frame_rate": fnum(r["frame_rate"]),
            "ci": [fnum(r["ci_low"]), fnum(r["ci_high"])],
            "ci_reason": reason_text(r.get("ci_reason")),
        }
        for r in tables.peaks.to_dict("records")
    }
    shift_summary = {
        r["population"]: {
            "stage_from": r["stage_from"],
            "stage_to": r["stage_to"],
            "shift": fnum(r["shift"]),
            "shift_s": fnum(r["shift_s"]),
            "ci": [fnum(r["ci_low"]), fnum(r["ci_high"])],
            "ci_s": [fnum(r["ci_low_s"]), fnum(r["ci_high_s"])],
            "ci_reason": reason_text(r.get("ci_reason")),
            "p_signflip": fnum(r["p_signflip"]),
            "p_min": fnum(r["p_min"]),
            "testable": bool(r["testable"]),
            "reason": reason_text(r["reason"]),
            "n_subjects": int(r["n_subjects"]),
            "mice_left_out": left_out_of(r.get("mice_left_out")),
            "excludes_zero": bool(r["ci_low_s"] > 0 or r["ci_high_s"] < 0),
        }
        for r in tables.shifts.to_dict("records")
    }
    return {
        "lags": lags.tolist(),
        "frame_rate": rate,
        "frame_rates": {f"{p}/{s}": fnum(r) for (p, s), r in cell_rates.items()},
        "peaks": peak_summary,
        "shifts": shift_summary,
        "n_boot": int(n_boot),
        "failed_lags": {k: [lag for lag, _ in v] for k, v in tables.failed.items()},
        "skipped_cells": skipped,
    }


def _interval_text(bounds, reason: str, ci: float, unit: str = "") -> str:
    """``"[95% CI +1, +3]"`` (whole numbers; ``unit`` after them), or ``"[95% CI not
    computed (n = 2 mice: ...)]"`` when a bound is not a number."""
    if not all(math.isfinite(fnum(b)) for b in bounds):
        return f"[{100 * ci:.0f}% CI {reason or 'not computable'}]"
    lo, hi = (fmt_num(b, "+.0f") for b in bounds)
    return f"[{100 * ci:.0f}% CI {lo}, {hi}{unit}]"


def _shift_text(k: str, v: dict, ci: float) -> str:
    """One population's shift in words (frames when one rate, else milliseconds)."""
    why = v.get("ci_reason", "")
    if not math.isfinite(fnum(v["shift_s"])):  # too few mice in both stages
        text = f"{k}: {v['stage_from']} -> {v['stage_to']} shift not estimated"
    elif math.isfinite(v["shift"]):
        text = (
            f"{k}: {v['stage_from']} -> {v['stage_to']} shift {v['shift']:+.0f} frames "
            f"({fmt_num(v['shift_s'] * 1000, '+.0f')} ms) {_interval_text(v['ci'], why, ci)}"
        )
    else:
        ms = [1000 * fnum(x) for x in v["ci_s"]]
        text = (
            f"{k}: {v['stage_from']} -> {v['stage_to']} shift "
            f"{fmt_num(1000 * fnum(v['shift_s']), '+.0f')} ms (stages imaged at different "
            f"frame rates) {_interval_text(ms, why, ci, ' ms')}"
        )
    text += ", " + p_text(
        v["p_signflip"], reason=v.get("reason", ""), label="per-mouse sign-flip p"
    )
    if v.get("mice_left_out") and not v.get("reason"):  # the reason names them otherwise
        text += f" ({mice_text(v['n_subjects'], v['mice_left_out'])})"
    return text


def _describe_lags(summary: dict, failed: dict, ci: float) -> str:
    """The paragraph of :func:`lag_profiles`: method, unit of inference, results."""
    lags, rate, n_boot = np.asarray(summary["lags"]), summary["frame_rate"], summary["n_boot"]
    peak_txt = "; ".join(
        f"{k}: peak {fmt_num(v['peak_lag'], '+.0f')} frames "
        + _interval_text(v["ci"], v.get("ci_reason", ""), ci)
        for k, v in summary["peaks"].items()
    )
    shift_txt = "; ".join(_shift_text(k, v, ci) for k, v in summary["shifts"].items())
    rate_txt = (
        f"frame rate {rate:g} Hz"
        if math.isfinite(rate)
        else "frame rates "
        + ", ".join(f"{k} {v:g} Hz" for k, v in summary["frame_rates"].items())
        + " (seconds use each cell's own rate)"
    )
    description = (
        "Held-out R^2 of the first shared dimension as a function of a single "
        f"neural-behaviour lag ({lags.min()}..{lags.max()} frames; positive: neural "
        "activity leads the movement), ShaReD fitted per population, stage and lag with "
        "the mice as subjects. Peak lag = maximum of the mean profile across mice; "
        f"{100 * ci:.0f}% percentile bootstrap intervals over mice ({n_boot} resamples of "
        "the per-mouse held-out profiles, same mice for both stages for the shift; none "
        f"from fewer than {MIN_BOOTSTRAP_MICE} mice; mice are the unit of inference; "
        f"integer-frame resolution; {rate_txt}). "
        + peak_txt
        + ". Shifts: "
        + (shift_txt if shift_txt else "none")
        + "."
    )
    for key, items in failed.items():
        lags_txt = ", ".join(str(lag) for lag, _ in items)
        description += f" {key}: no fit at lag(s) {lags_txt} ({items[0][1]})."
    if summary["skipped_cells"]:
        description += (
            " Not fitted (fewer than 2 mice): " + "; ".join(summary["skipped_cells"]) + "."
        )
    return description


def _mean_rows(per: np.ndarray) -> np.ndarray:
    """Mean over mice (rows) of per-lag scores, ignoring NaN, without warnings."""
    ok = np.isfinite(per)
    n = ok.sum(axis=0)
    s = np.where(ok, per, 0.0).sum(axis=0)
    return np.where(n > 0, s / np.where(n > 0, n, 1), np.nan)
