"""Which input encodes the learned movement? ShaReD per population x stage.

For every population and stage the mice are aligned with ShaReD (one subject per mouse;
the days of the stage concatenated, stimulation and silencing samples removed). The
headline statistic is the pooled held-out R^2 of the first shared dimension predicted
from neural activity (cross-validated over trials), with a bootstrap-over-mice interval
(:func:`sharedrep.inference.bootstrap.bootstrap_subjects`) and a circular-shift permutation p-value
(:func:`sharedrep.inference.permutation.permutation_test`). Stages and populations are compared
with :func:`sharedrep.inference.groups.compare_groups` (relabelling of mice; paired,
within mice, when both groups hold the same mice).
The analysis is compute (private helpers returning tables) -> plot
(:mod:`sharedrep.study.figures`) -> summarise -> describe. This module may import
``sharedrep.data``, ``sharedrep.inference``, ``sharedrep.utils`` and ``sharedrep.study``'s
``_common``, ``_result`` and ``figures``.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sharedrep.data.session import SessionCollection
from sharedrep.inference.bootstrap import bootstrap_subjects
from sharedrep.inference.groups import compare_groups
from sharedrep.inference.permutation import permutation_test
from sharedrep.study._common import (
    Steps,
    analysis,
    check_choice,
    check_magnitude,
    default_stages,
    describe_provenance,
    dropped,
    encoding_sessions,
    fmt_num,
    fnum,
    given_order,
    label_reasons,
    left_out_cells,
    left_out_note,
    left_out_of,
    make_model,
    merge_reasons,
    no_session,
    ordered_stages,
    origin,
    p_text,
    paired_mice,
    quiet,
    reason_cell,
    reason_text,
    select_days,
    session_provenance,
    sign_flip_test,
    single_blas,
    ttest_p,
)
from sharedrep.study._result import AnalysisResult
from sharedrep.study.figures import plot_encoding_by_population

__all__ = ["analysed_stages", "encoding_by_population", "fit_cells"]


def analysed_stages(collection: SessionCollection, stages=None) -> list[str]:
    """The stages :func:`fit_cells` analyses, in learning order.

    ``stages`` (default ``_common.default_stages``: the stages of the collection's
    ``analysis["stages"]``, else novice and expert when present), checked against the
    collection's stages and ordered by ``_common.ordered_stages`` (the user's order, or
    novice, intermediate, expert); a stage left out is a selection, its sessions left
    out (``_common.label_reasons``), as by every analysis. Its first stage is the one
    whose earliest days ``_common.select_days`` keeps; every analysis that reads the
    days of a cell's fit takes it from here.

    Raises
    ------
    ValueError
        A stage the collection does not have, or of unknown learning order.
    """
    stages = check_choice(
        stages if stages is not None else default_stages(collection), collection.stages, "stages"
    )
    return ordered_stages(stages, given_order(collection, stages))


@analysis("fit_cells")
def fit_cells(
    collection: SessionCollection,
    populations=None,
    stages=None,
    *,
    days_per_stage: int | None = 2,
    within_trials: bool = True,
    stim_margin_s: float = 1.5,
    require: bool = True,
    skipped: list | None = None,
    left_out: dict | None = None,
) -> dict:
    """Fit arguments of every population x stage cell with at least 2 mice.

    Parameters
    ----------
    collection : SessionCollection
    populations, stages : list of str, optional
        Default: every population; ``default_stages`` (the stages of the collection's
        ``analysis["stages"]``, else novice and expert when present).
    days_per_stage : int or None, default 2
        See ``_common.select_days``.
    within_trials : bool, default True
        Use only samples inside trials.
    stim_margin_s : float, default 1.5
        Seconds after stimulation removed (see ``_common.encoding_sessions``).
    require : bool, default True
        Raise ``ValueError`` when no cell has 2 mice (otherwise return ``{}``).
    skipped : list, optional
        Receives ``"<population> / <stage>: 1 mouse"`` for each cell left out because it
        has a single mouse (so that analyses can say so).
    left_out : dict, optional
        Receives ``{session_id: reason}`` for every session of ``collection`` that no
        cell uses (population or stage not analysed, no sample left after removing
        stimulation and silencing, day not kept, single-mouse cell); see
        ``_common.session_provenance``.

    Returns
    -------
    dict
        ``{(population, stage): FitArgs}`` in population, stage order.

    Raises
    ------
    AnalysisError
        A session's values overflow the statistics (``_common.check_magnitude``) or its
        fit arguments cannot be built (NaN/inf, other units or features); the message
        names the population, stage, session and subject.
    """
    populations = check_choice(populations, collection.populations, "populations")
    stages = analysed_stages(collection, stages)
    cleaned = encoding_sessions(collection, stim_margin_s=stim_margin_s)
    clean = select_days(cleaned, days_per_stage, stages[0] if stages else None)
    reasons = merge_reasons(
        label_reasons(collection, populations, stages),
        dropped(collection, cleaned, _NO_SAMPLES),
        dropped(cleaned, clean, lambda s: _day_not_kept(s, days_per_stage)),
    )
    cells = {}
    for pop in populations:
        for st in stages:
            sub = clean.filter(population=pop, stage=st)
            if len(sub.subjects) < 2:
                if len(sub.subjects) == 1 and skipped is not None:
                    skipped.append(f"{pop} / {st}: 1 mouse")
                reasons = merge_reasons(reasons, dropped(sub, (), f"{pop} / {st}: 1 mouse"))
                continue
            cells[(pop, st)] = _cell_args(sub, pop, st, within_trials)
    if left_out is not None:
        left_out.update(merge_reasons(left_out, reasons))
    if require and not cells:
        raise ValueError("no population x stage has at least 2 mice: nothing to fit")
    return cells


#: Why a session without samples after cleaning is left out of the fits.
_NO_SAMPLES = (
    "no sample left after removing stimulation and silencing trials and the "
    "post-stimulation margin"
)


def _day_not_kept(session, days_per_stage) -> str:
    """Why a session was left out by ``_common.select_days``."""
    return (
        f"day {session.day} not among the {days_per_stage} day(s) kept per mouse, "
        f"population and stage (days_per_stage)"
    )


def _cell_args(sub: SessionCollection, pop: str, st: str, within_trials: bool):
    """Fit arguments of one cell, after checking that no value overflows the statistics."""
    n = sum(int(np.sum(s.trial_ids() >= 0)) if within_trials else s.n_samples for s in sub)
    for s in sub:
        with origin(session=s):
            check_magnitude(s, n, rows=(s.trial_ids() >= 0) if within_trials else None)
    with origin(population=pop, stage=st, cell=list(sub)):
        return sub.to_fit_args(within_trials=within_trials)


def cell_session_ids(cells: dict) -> list[str]:
    """Ids of the sessions the cells of :func:`fit_cells` use (in cell order)."""
    return list(
        dict.fromkeys(sid for args in cells.values() for ids in args.session_ids for sid in ids)
    )


def _seed(random_state: int, i: int) -> int:
    """Independent seed number ``i`` derived from ``random_state`` (SeedSequence)."""
    return int(np.random.SeedSequence([int(random_state), i]).generate_state(1)[0])


@analysis("encoding_by_population")
@single_blas
def encoding_by_population(
    collection: SessionCollection,
    n_perm: int = 29,
    n_boot: int = 29,
    *,
    populations=None,
    stages=None,
    model=None,
    n_perm_groups: int | None = None,
    days_per_stage: int | None = 2,
    within_trials: bool = True,
    min_shift: int | None = None,
    random_state: int = 0,
    n_jobs: int = 1,
    progress=False,
) -> AnalysisResult:
    """Held-out encoding of the shared movement representation per population x stage.

    **Per cell** (population x stage, mice with sessions in it, at least 2): ShaReD is
    fitted on the mice together (``model``; default one shared dimension, lags 0, 2, 4
    frames, 5-fold CV over trials, alpha chosen by CV). Score: pooled held-out R^2 of the
    first shared dimension. p-value: circular-shift permutation test (each mouse's
    behaviour shifted by whole trials against its neural activity; full pipeline refitted
    ``n_perm`` times; ``p = (1 + #null >= obs) / (1 + n_perm)``). Interval: percentile
    bootstrap over mice (``n_boot`` resamples, full refit). The unit of inference is the
    mouse; with fewer than 8 mice the bootstrap interval is descriptive (too narrow).

    **Comparisons** (:func:`sharedrep.inference.groups.compare_groups`, full refits,
    two-sided on the difference of held-out R^2): every population, last vs first stage
    (e.g. expert vs novice); every pair of populations in the last stage. When both
    groups hold the same mice (the same mice at two stages, or two populations recorded
    in the same mice) the test is paired (``paired=True``: each mouse's two recordings
    are swapped, never mice between groups); otherwise mice are relabelled between the
    groups (unpaired; conservative when some mice are in both). Each comparison says
    whether it can answer at the 5% level (``testable``, ``reason``, ``p_min``: with few
    mice the smallest achievable p-value is above 0.05). A paired test over the mice
    present in both groups (their per-mouse held-out R^2 from each group's fit; t-test
    and exact sign-flip, two-sided) is reported alongside.

    Parameters
    ----------
    collection : SessionCollection
    n_perm : int, default 29
        Permutations per cell.
    n_boot : int, default 29
        Bootstrap resamples per cell.
    populations, stages : list of str, optional
        Default: all populations; the stages of the collection's ``analysis["stages"]``,
        else novice and expert (all stages if either is missing).
    model : ShaReD, optional
        Template (cloned). Default ``_common.make_model()``.
    n_perm_groups : int, optional
        Relabellings per comparison (default ``n_perm``); a paired comparison of ``n``
        mice enumerates all ``2**n`` within-mouse relabellings instead when that is at
        most ``2 * n_perm_groups`` (exact test).
    days_per_stage : int or None, default 2
        Days per mouse and stage used (earliest novice days, latest other days), so that
        stages contribute equal amounts of data; None: all.
    within_trials : bool, default True
        Use samples inside trials only.
    min_shift : int, optional
        Minimum circular shift (samples) of the permutation test.
    random_state : int, default 0
    n_jobs : int, default 1
        Parallel refits (joblib).
    progress : bool or rich.progress.Progress, default False

    Returns
    -------
    AnalysisResult
        ``table``: one row per cell: ``population``, ``stage``, ``n_subjects``,
        ``n_units``, ``n_samples``, ``score`` (held-out R^2, dim 1), ``ci_low``,
        ``ci_high``, ``p_value``, ``p_min`` (smallest achievable p), ``testable``,
        ``reason`` (why not testable), ``null_mean``, ``null_q95``, ``alpha``, ``n_perm``
        (circular shifts used), ``n_boot``. ``tables["subjects"]``: per-mouse held-out R^2
        (``population``, ``stage``, ``subject``, ``score``). ``tables["comparisons"]``:
        ``kind`` ("stage"/"population"), ``group_a``, ``group_b``, ``score_a``,
        ``score_b``, ``difference``, ``p_value``, ``p_min`` (smallest achievable p),
        ``testable``, ``reason`` (why not testable; NaN when testable), ``paired``
        (relabelled within mice), ``n_perm``, ``exact``, ``similarity``, ``p_similarity``,
        ``paired_difference``, ``p_paired`` (paired t-test over the mice in both groups on
        their per-mouse held-out R^2), ``p_paired_signflip``, ``n_paired``,
        ``mice_left_out`` (the mice of one group only, left out of the paired tests,
        each with the reason, e.g. ``"mouse03, no expert session of thalamus"``; NaN when
        none; the relabelling test uses every mouse). ``summary``:
        ``cells`` {"pop/stage": {score, ci, p_value, p_min, testable, reason,
        n_subjects}} (``reason``: ``""`` when testable), ``best`` ("pop/stage"),
        ``best_score``, ``best_comparisons``, ``best_significant`` (the best cell is
        significant and every comparison with it is significant in its favour: the paired
        t-test over mice when the same mice (at least 3) are in both cells, the
        subject-label permutation test otherwise; see :func:`comparison_test`) and
        ``comparisons`` {"a/stage vs b/stage": {difference, p_value, p_min, testable,
        reason, paired, n_perm, exact, paired_difference, p_paired, p_paired_signflip,
        n_paired, mice_left_out ({mouse: reason} of the paired tests, ``{}`` when none;
        named in the description), kind}}, ``sessions`` (the sessions used and those left
        out, with the reason: ``_common.session_provenance``).

    Raises
    ------
    AnalysisError
        An error while fitting one cell or comparison; the message starts with
        ``"encoding_by_population"`` and names the population, stage, sessions and
        subjects.
    """
    if model is None:
        model = make_model(random_state=random_state)
    n_perm_groups = n_perm if n_perm_groups is None else n_perm_groups
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
    tables = _compute_encoding(
        model,
        cells,
        absent=lambda pop, st: no_session(collection, st, pop),
        n_perm=n_perm,
        n_boot=n_boot,
        n_perm_groups=n_perm_groups,
        min_shift=min_shift,
        random_state=random_state,
        n_jobs=n_jobs,
        progress=progress,
    )
    figure = plot_encoding_by_population(
        tables.table, tables.subjects, tables.populations, tables.stages
    )
    summary = _summarise_encoding(
        tables, n_perm=n_perm, n_boot=n_boot, n_perm_groups=n_perm_groups, skipped=skipped
    )
    summary["sessions"] = session_provenance(collection, cell_session_ids(cells), left_out)
    return AnalysisResult(
        name="encoding_by_population",
        table=tables.table,
        figure=figure,
        summary=summary,
        description=_describe_encoding(summary, tables.table, days_per_stage)
        + describe_provenance(summary["sessions"]),
        tables={"subjects": tables.subjects, "comparisons": left_out_cells(tables.comparisons)},
    )


_COMPARISON_COLUMNS = [
    "kind",
    "group_a",
    "group_b",
    "score_a",
    "score_b",
    "difference",
    "p_value",
    "p_min",
    "testable",
    "reason",
    "paired",
    "n_perm",
    "exact",
    "similarity",
    "p_similarity",
    "paired_difference",
    "p_paired",
    "p_paired_signflip",
    "n_paired",
    "mice_left_out",
]


@dataclass
class _EncodingTables:
    """Tables computed by :func:`encoding_by_population` (see its Returns section)."""

    table: pd.DataFrame
    subjects: pd.DataFrame
    comparisons: pd.DataFrame
    populations: list
    stages: list


def _comparison_plan(cells: dict) -> tuple[list, list, list]:
    """Populations, stages and ``(kind, cell_a, cell_b)`` comparisons of the fitted cells."""
    pops = list(dict.fromkeys(p for p, _ in cells))
    stg = list(dict.fromkeys(s for _, s in cells))  # fit_cells: in learning order
    comparisons = []
    if len(stg) >= 2:
        for p in pops:
            if (p, stg[-1]) in cells and (p, stg[0]) in cells:
                comparisons.append(("stage", (p, stg[-1]), (p, stg[0])))
    last = stg[-1]
    for a, b in itertools.combinations([p for p in pops if (p, last) in cells], 2):
        comparisons.append(("population", (a, last), (b, last)))
    return pops, stg, comparisons


def _cell_row(pop: str, st: str, args, perm, boot, n_boot: int) -> dict:
    """One row of the cell table from the permutation and bootstrap results of a cell."""
    return {
        "population": pop,
        "stage": st,
        "n_subjects": len(args),
        "n_units": int(sum(x.shape[1] for x in args.neural)),
        "n_samples": int(sum(x.shape[0] for x in args.neural)),
        "score": float(perm.observed[0]),
        "ci_low": float(boot.score_ci[0, 0]),
        "ci_high": float(boot.score_ci[1, 0]),
        "p_value": float(perm.p_values[0]),
        "null_mean": float(np.mean(perm.null[:, 0])),
        "null_q95": float(np.quantile(perm.null[:, 0], 0.95)),
        "p_min": float(perm.p_min),
        "testable": bool(perm.testable),
        "reason": reason_cell(perm.reason),
        "alpha": float(perm.alpha),
        "n_perm": int(perm.n_perm),  # shifts actually used (fewer when few exist)
        "n_boot": int(n_boot),
    }


def _fit_cell(model, args, *, n_perm, n_boot, min_shift, n_jobs, random_state, i):
    """Permutation test and subject bootstrap of cell number ``i`` (full refits)."""
    perm = permutation_test(
        model,
        args.neural,
        args.behavior,
        args.groups,
        n_perm=n_perm,
        min_shift=min_shift,
        n_jobs=n_jobs,
        random_state=_seed(random_state, 2 * i),
        progress=False,
    )
    boot = bootstrap_subjects(
        model,
        args.neural,
        args.behavior,
        args.groups,
        n_boot=n_boot,
        random_state=_seed(random_state, 2 * i + 1),
        n_jobs=n_jobs,
        progress=False,
    )
    return perm, boot


def _comparison_row(kind: str, ca: tuple, cb: tuple, gc, per_mouse: dict, absent) -> dict:
    """One row of the comparison table: the group comparison and the paired tests over mice.

    ``per_mouse`` maps each cell to ``{mouse: held-out R^2}``; the paired difference is
    taken over the mice present in both cells, the others are in ``mice_left_out``
    (``{mouse: reason}``, the reason from ``absent(population, stage)``).
    """
    ma, mb = per_mouse[ca], per_mouse[cb]
    both, left_out = paired_mice(ma, mb, absent(*ca), absent(*cb))
    paired = np.array([ma[m] - mb[m] for m in both], dtype=float)
    return {
        "kind": kind,
        "group_a": "/".join(ca),
        "group_b": "/".join(cb),
        "score_a": float(gc.score_a[0]),
        "score_b": float(gc.score_b[0]),
        "difference": float(gc.difference[0]),
        "p_value": float(gc.p_values[0]),
        "p_min": float(gc.p_min),
        "testable": bool(gc.testable),
        "reason": reason_cell(gc.reason),
        "paired": bool(gc.paired),
        "n_perm": int(gc.n_perm),
        "exact": bool(gc.exact),
        "similarity": float(gc.similarity),
        "p_similarity": float(gc.p_similarity),
        "paired_difference": float(paired.mean()) if paired.size else math.nan,
        "p_paired": ttest_p(paired),
        "p_paired_signflip": sign_flip_test(paired),
        "n_paired": int(paired.size),
        "mice_left_out": left_out,
    }


def _paired_order(A, B) -> tuple[tuple, bool]:
    """Group B's ``(neural, behavior, groups)`` and whether the comparison is paired.

    Paired when both cells hold the same mice (each once): B is then reordered to A's
    mouse order, as ``compare_groups(paired=True)`` needs. Otherwise B as it is (the
    mice differ, or only some are in both cells: unpaired relabelling).
    """
    sa, sb = list(A.subjects), list(B.subjects)
    if len(set(sa)) == len(sa) == len(sb) and set(sa) == set(sb):
        order = [sb.index(m) for m in sa]
        return (
            [B.neural[i] for i in order],
            [B.behavior[i] for i in order],
            [B.groups[i] for i in order],
        ), True
    return (B.neural, B.behavior, B.groups), False


def _relabellings(n_perm_groups: int, n_mice: int, paired: bool) -> int:
    """Relabellings asked of ``compare_groups``: ``n_perm_groups``, or all ``2**n_mice``
    within-mouse swaps of a paired comparison when that is at most twice as many (an
    exact test: random draws from so few swap patterns repeat them, and their smallest
    p, ``1 / (1 + n_perm_groups)``, would be finer than the test's real resolution,
    ``2 / 2**n_mice``)."""
    if paired and 2**n_mice <= 2 * n_perm_groups:
        return 2**n_mice
    return n_perm_groups


def _compute_encoding(
    model,
    cells: dict,
    *,
    absent,
    n_perm,
    n_boot,
    n_perm_groups,
    min_shift,
    random_state,
    n_jobs,
    progress,
) -> _EncodingTables:
    """Fit, test and bootstrap every cell, then compare the cells (tables only).

    ``absent(population, stage)``: why a mouse has no data in that cell (a function of
    the mouse, ``_common.no_session``), for the mice the paired tests leave out.
    """
    pops, stg, comparisons = _comparison_plan(cells)
    rows, subj_rows, comp_rows = [], [], []
    per_mouse: dict = {}
    with Steps(progress, "encoding", len(cells) + len(comparisons)) as steps, quiet():
        for i, ((pop, st), args) in enumerate(cells.items()):
            with origin(population=pop, stage=st, cell=args):
                perm, boot = _fit_cell(
                    model,
                    args,
                    n_perm=n_perm,
                    n_boot=n_boot,
                    min_shift=min_shift,
                    n_jobs=n_jobs,
                    random_state=random_state,
                    i=i,
                )
            fitted = perm.model
            ia = fitted.cv_results_["best_index"][0]
            per_subject = fitted.cv_results_["r2_subject_dim"][ia, :, 0]
            rows.append(_cell_row(pop, st, args, perm, boot, n_boot))
            per_mouse[(pop, st)] = dict(zip(args.subjects, map(float, per_subject), strict=True))
            for s, v in zip(args.subjects, per_subject, strict=True):
                subj_rows.append({"population": pop, "stage": st, "subject": s, "score": float(v)})
            steps.advance(f"{pop}/{st}")
        for j, (kind, ca, cb) in enumerate(comparisons):
            A, B = cells[ca], cells[cb]
            data_b, paired = _paired_order(A, B)
            with origin(what=f"comparison {'/'.join(ca)} vs {'/'.join(cb)}", cell=[A, B]):
                gc = compare_groups(
                    model,
                    (A.neural, A.behavior, A.groups),
                    model,
                    data_b,
                    n_perm=_relabellings(n_perm_groups, len(A), paired),
                    n_jobs=n_jobs,
                    random_state=_seed(random_state, 1000 + j),
                    paired=paired,
                    progress=False,
                )
            comp_rows.append(_comparison_row(kind, ca, cb, gc, per_mouse, absent))
            steps.advance(f"{'/'.join(ca)} vs {'/'.join(cb)}")
    return _EncodingTables(
        table=pd.DataFrame(rows),
        subjects=pd.DataFrame(subj_rows),
        comparisons=pd.DataFrame(comp_rows, columns=_COMPARISON_COLUMNS),
        populations=pops,
        stages=stg,
    )


def _best_significant(best_key: str, cells_summary: dict, best_vs: dict) -> bool:
    """The best cell is significant and wins every comparison it is in (see Returns)."""
    return bool(
        best_vs
        and cells_summary[best_key]["p_value"] <= 0.05
        and all(beats(best_key, k, v) for k, v in best_vs.items())
    )


def _summarise_encoding(
    tables: _EncodingTables, *, n_perm, n_boot, n_perm_groups, skipped
) -> dict:
    """Headline numbers of :func:`encoding_by_population` (keys documented there)."""
    table = tables.table
    best = table.loc[table["score"].idxmax()]
    best_key = f"{best['population']}/{best['stage']}"
    cells_summary = {
        f"{r['population']}/{r['stage']}": {
            "score": fnum(r["score"]),
            "ci": [fnum(r["ci_low"]), fnum(r["ci_high"])],
            "p_value": fnum(r["p_value"]),
            "p_min": fnum(r["p_min"]),
            "testable": bool(r["testable"]),
            "reason": reason_text(r["reason"]),
            "n_subjects": int(r["n_subjects"]),
        }
        for r in table.to_dict("records")
    }
    comp_summary = {
        f"{r['group_a']} vs {r['group_b']}": {
            "difference": fnum(r["difference"]),
            "p_value": fnum(r["p_value"]),
            "p_min": fnum(r["p_min"]),
            "testable": bool(r["testable"]),
            "reason": reason_text(r["reason"]),
            "paired": bool(r["paired"]),
            "n_perm": int(r["n_perm"]),
            "exact": bool(r["exact"]),
            "paired_difference": fnum(r["paired_difference"]),
            "p_paired": fnum(r["p_paired"]),
            "p_paired_signflip": fnum(r["p_paired_signflip"]),
            "n_paired": int(r["n_paired"]),
            "mice_left_out": left_out_of(r.get("mice_left_out")),
            "kind": r["kind"],
        }
        for r in tables.comparisons.to_dict("records")
    }
    best_vs = {
        k: v
        for k, v in comp_summary.items()
        if k.startswith(best_key + " vs ") or k.endswith(" vs " + best_key)
    }
    return {
        "cells": cells_summary,
        "best": best_key,
        "best_score": fnum(best["score"]),
        "best_comparisons": best_vs,
        "best_significant": _best_significant(best_key, cells_summary, best_vs),
        "comparisons": comp_summary,
        "n_perm": int(n_perm),
        "n_boot": int(n_boot),
        "n_perm_groups": int(n_perm_groups),
        "skipped_cells": skipped,
    }


def _cell_text(key: str, v: dict) -> str:
    """One cell of the description: score, interval and p-value (never "nan"), with why
    the permutation test cannot answer at the 5% level when it cannot."""
    p = p_text(v["p_value"], n_mice=v["n_subjects"], reason=v.get("reason", ""))
    return (
        f"{key}: R^2 = {fmt_num(v['score'], '.3f')} [{fmt_num(v['ci'][0], '.3f')}, "
        f"{fmt_num(v['ci'][1], '.3f')}], {p}"
    )


def _comparison_text(key: str, v: dict) -> str:
    """One comparison of the description: relabelling test (with why it cannot answer,
    when it cannot) and the paired tests over mice (never "nan")."""
    n = v["n_paired"]
    how = "relabelled within mice" if v.get("paired") else "mice relabelled between groups"
    return (
        f"{key}: difference {fmt_num(v['difference'], '+.3f')}, "
        f"{p_text(v['p_value'], reason=v.get('reason', ''))} ({how}; per-mouse tests over "
        f"{n} mice{left_out_note(v.get('mice_left_out'))}: "
        f"{p_text(v['p_paired'], n_mice=n, label='t-test p')}, "
        f"{p_text(v['p_paired_signflip'], n_mice=n, label='sign-flip p')})"
    )


def _describe_encoding(summary: dict, table: pd.DataFrame, days_per_stage) -> str:
    """The paragraph of :func:`encoding_by_population`: method, unit of inference, results."""
    cell_txt = "; ".join(_cell_text(k, v) for k, v in summary["cells"].items())
    comp_txt = "; ".join(_comparison_text(k, v) for k, v in summary["comparisons"].items())
    n_mice = int(table["n_subjects"].max())
    n_perm, n_boot = summary["n_perm"], summary["n_boot"]
    description = (
        "ShaReD was fitted per population and learning stage with the mice as subjects "
        f"(up to {n_mice} mice; {days_per_stage or 'all'} day(s) per stage; "
        "stimulation and silencing trials removed). Score: pooled held-out R^2 of the first "
        "shared dimension predicted from neural activity (cross-validated over trials); "
        f"p-value: circular-shift permutation test with full refits ({n_perm} permutations; "
        "whole-trial shifts of each mouse's behaviour); 95% interval: bootstrap over mice "
        f"({n_boot} resamples; descriptive with fewer than 8 mice). Mice are the unit of "
        "inference throughout. " + cell_txt + ". Best: " + summary["best"] + ". Comparisons "
        f"({summary['n_perm_groups']} relabellings, two-sided; paired -- each mouse's two "
        "recordings swapped, all 2^n swaps when at most twice as many -- when both groups "
        "hold the same mice, otherwise mice relabelled between the groups; a comparison "
        "whose smallest achievable p exceeds 0.05 is marked not testable; the paired tests "
        "use the per-mouse held-out R^2 of the mice present in both groups): "
        + (comp_txt if comp_txt else "none")
        + "."
    )
    if math.isnan(summary["best_score"]):
        description += " (No finite score.)"
    if summary["skipped_cells"]:
        description += (
            " Not fitted (fewer than 2 mice): " + "; ".join(summary["skipped_cells"]) + "."
        )
    return description


def comparison_testable(comparison: dict) -> bool:
    """Whether the test :func:`comparison_test` uses for one comparison can reach 0.05.

    The paired t-test over at least 3 mice can (a continuous statistic); the permutation
    of subject labels says so itself (``testable``, False when its smallest achievable p
    exceeds 0.05; taken as testable when a summary lacks the key).
    """
    return uses_paired_ttest(comparison) or bool(comparison.get("testable", True))


def uses_paired_ttest(comparison: Mapping) -> bool:
    """Whether a cell comparison's headline test is the paired t-test over mice: the same
    mice (at least 3) in both cells and a finite ``p_paired`` (a summary read back from
    JSON may hold None for it)."""
    n, p = comparison.get("n_paired"), comparison.get("p_paired")
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 3 or p is None:
        return False
    return bool(np.isfinite(float(p)))


def beats(cell: str, key: str, comparison: Mapping) -> bool:
    """Whether ``cell`` ("pop/stage") is significantly better in one comparison with it
    (``key``, "a/stage vs b/stage"): the test of :func:`comparison_test` gives p <= 0.05
    and the difference (first minus second cell) favours ``cell``. False when a number is
    missing (a summary read back from JSON may hold None)."""
    p, difference = comparison_test(comparison)
    return p <= 0.05 and (difference > 0) == key.startswith(cell + " vs ")


def comparison_test(comparison: Mapping) -> tuple[float, float]:
    """``(p_value, difference)`` of one cell comparison for the headline claim.

    When the same mice contribute to both cells (``n_paired >= 3``), the paired t-test over
    mice is the appropriate test (each mouse is its own control); otherwise the
    permutation of subject labels between the cells
    (:func:`sharedrep.inference.groups.compare_groups`).
    """
    if uses_paired_ttest(comparison):
        return fnum(comparison["p_paired"]), fnum(comparison["paired_difference"])
    return fnum(comparison["p_value"]), fnum(comparison["difference"])
