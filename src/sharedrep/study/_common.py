"""Shared helpers of the learning-study analyses (not public API).

Selection of sessions and days, cleaning of stimulation / silencing samples, the ShaReD
template, mouse-level tests (exact sign-flip, Wilcoxon, t-test) and the t interval of a
mean over mice, progress and figures; and the two trust helpers every analysis uses:
:func:`session_provenance` (which sessions an analysis used and why it left out the
others, for its summary) and :func:`origin` with :func:`analysis` (an error raised while
an analysis processes one population, stage, session or subject becomes an
:class:`AnalysisError` naming them). A statistic that pairs two stages or conditions
within each mouse names the mice it leaves out, and why (:func:`paired_mice`,
:func:`nonfinite_mice`, :func:`no_session`; ``mice_left_out`` of the summaries, named in
the descriptions by :func:`mice_text`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import math
import numbers
import re
import warnings
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sharedrep.core.estimator import ShaReD
from sharedrep.data.preprocess import exclusion_mask
from sharedrep.data.session import Session, SessionCollection
from sharedrep.data.studyfile import STAGE_ORDER
from sharedrep.utils.validation import is_missing

SUCCESS_LABELS = {"success", "hit", "rewarded", "reward", "correct"}


# --------------------------------------------------------------------------- numbers
def fnum(x) -> float:
    """A plain float (NaN for None / non-finite-convertible values)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def fmt_num(x, spec: str = ".3g", missing: str = "n/a") -> str:
    """``x`` formatted with ``spec``, or ``missing`` when it is not a finite number.

    Descriptions use it so that a statistic that cannot be computed never reads "nan".
    """
    v = fnum(x)
    return format(v, spec) if math.isfinite(v) else missing


def mice_text(n, left_out: dict | None = None) -> str:
    """``"n = 3 mice"`` (``"n = 1 mouse"``), naming the mice ``left_out`` when there are
    any: ``"n = 5 mice (left out: mouse03, no expert session of thalamus; mouseX, no
    novice session of thalamus)"`` (see :func:`left_out_note`)."""
    return f"n = {count_mice(n)}" + left_out_note(left_out)


def count_mice(n, what: str = "") -> str:
    """``"3 mice"``, ``"1 mouse"``; ``what`` qualifies them: ``"1 informative mouse"``."""
    n = int(n)
    return f"{n} {what + ' ' if what else ''}{'mouse' if n == 1 else 'mice'}"


def p_text(p, *, n_mice=None, reason: str = "", label: str = "p", spec: str = ".3g") -> str:
    """A p-value in words for a description.

    ``"p = 0.031"``; ``"p not testable (n = 3 mice)"`` (or ``(reason)``) when ``p`` is not
    a finite number; ``"p = 0.25 (not testable at the 5% level: ...)"`` when a finite
    p-value comes with a ``reason`` (a test that cannot reach 0.05, see
    :class:`sharedrep.inference.groups.GroupComparison`). Never ``"p = nan"``.

    Parameters
    ----------
    p : float
    n_mice : int, optional
        Animals behind the test (named when ``p`` is not a number and no ``reason``).
    reason : str, optional
        Why the test cannot answer (empty: it can).
    label : str, default "p"
        E.g. ``"sign-flip p"``.
    spec : str, default ".3g"
    """
    v = fnum(p)
    if not math.isfinite(v):
        if reason.startswith("not testable"):
            return f"{label} {reason}"
        why = reason or (mice_text(n_mice) if n_mice is not None else "")
        return f"{label} not testable ({why})" if why else f"{label} not testable"
    text = f"{label} = {v:{spec}}"
    return f"{text} ({reason})" if reason else text


def sign_flip_testability(
    p, n_mice: int, alternative: str = "two-sided", left_out: dict | None = None
) -> dict:
    """``p_min``, ``testable`` and ``reason`` of an exact sign-flip test over ``n_mice``.

    With ``n`` mice the smallest p-value is ``2 / 2**n`` (two-sided) or ``1 / 2**n``
    (one-sided; :func:`sign_flip_test`, exact up to 16 mice): at most 4 mice
    (two-sided: 5) the test cannot reach 0.05 whatever the data, and the ``reason``
    says so, as :class:`sharedrep.inference.groups.GroupComparison` does, naming the
    mice ``left_out`` of the test (``{mouse: why}``) after the count.
    """
    n = int(n_mice)
    p_min = (2.0 if alternative == "two-sided" else 1.0) / 2.0**n if n <= 16 else 1.0 / 20001
    if n == 0 or not math.isfinite(fnum(p)):
        reason = untestable_reason(math.nan, n, left_out)
        return {"p_min": p_min, "testable": False, "reason": reason}
    if p_min > 0.05:
        return {
            "p_min": p_min,
            "testable": False,
            "reason": f"not testable at the 5% level: {mice_text(n, left_out)} "
            f"allow{'s' if n == 1 else ''} {2**n} sign patterns, smallest achievable p = "
            f"{p_min:.3g}",
        }
    return {"p_min": p_min, "testable": True, "reason": ""}


def reason_cell(reason: str):
    """A ``reason`` as a table cell: the sentence, or NaN (empty in CSV) when testable.

    An empty string would not survive the results folder (an empty CSV cell reads back
    as missing), so tables hold NaN where summaries hold ``""`` (:func:`reason_text`).
    """
    return reason if reason else math.nan


def reason_text(cell) -> str:
    """A table's ``reason`` cell as the summary's string (``""`` when testable)."""
    return cell if isinstance(cell, str) else ""


def untestable_reason(p, n_mice, left_out: dict | None = None) -> str:
    """``""`` when ``p`` is a finite number, else ``"not testable (n = 3 mice)"``: the
    ``reason`` written next to a p-value in the summaries (see :func:`p_text`); the mice
    ``left_out`` of the test are named after the count (:func:`mice_text`)."""
    return "" if math.isfinite(fnum(p)) else f"not testable ({mice_text(n_mice, left_out)})"


def nanmean(x) -> float:
    """Mean of the finite values (NaN when there are none), without warnings."""
    a = np.asarray(x, dtype=float).ravel()
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else math.nan


def nanmedian(x) -> float:
    """Median of the finite values (NaN when there are none), without warnings."""
    a = np.asarray(x, dtype=float).ravel()
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else math.nan


def nanmean_rows(a: np.ndarray, axis: int) -> np.ndarray:
    """``nanmean`` along an axis without the all-NaN RuntimeWarning."""
    a = np.asarray(a, dtype=float)
    ok = np.isfinite(a)
    n = ok.sum(axis=axis)
    s = np.where(ok, a, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.where(n > 0, n, 1), np.nan)


# --------------------------------------------------------------------------- mice left out
#: Mice named in a description's note on the mice left out (the others are counted).
SHOWN_MICE = 5


def _reason_of(reason, mouse) -> str:
    """``reason`` for one mouse: the string, or what the function of the mouse returns."""
    return str(reason(mouse)) if callable(reason) else str(reason)


def paired_mice(mice_a, mice_b, missing_a, missing_b) -> tuple[list, dict]:
    """The mice in both of two groups, and why the mice in only one are left out.

    A statistic that pairs two stages or conditions within each mouse uses only the mice
    in both groups; the others are named (``mice_left_out`` of the summaries) rather
    than silently dropped: a typo in a subject id splits one animal into two, each with
    one stage only.

    Parameters
    ----------
    mice_a, mice_b : iterable
        The mice of each group (e.g. with novice and with expert data).
    missing_a, missing_b : str or callable
        Why a mouse missing from group a (b) is left out (e.g. ``"no novice session of
        thalamus"``), or a function of the mouse returning it (:func:`no_session`).

    Returns
    -------
    both : list
        The mice in both groups, in the order of ``mice_a``.
    left_out : dict
        ``{mouse: reason}`` of the mice in one group only (those of ``mice_a``, then
        those of ``mice_b``).
    """
    a, b = list(dict.fromkeys(mice_a)), list(dict.fromkeys(mice_b))
    in_a, in_b = set(a), set(b)
    left_out = {m: _reason_of(missing_b, m) for m in a if m not in in_b}
    left_out.update({m: _reason_of(missing_a, m) for m in b if m not in in_a})
    return [m for m in a if m in in_b], left_out


def nonfinite_mice(mice, values, reason) -> dict:
    """``{mouse: reason}`` of the mice whose value (aligned with ``mice``) is not a finite
    number, which a test over the finite values leaves out (``reason`` may be a
    function of the mouse)."""
    return {
        m: _reason_of(reason, m)
        for m, v in zip(mice, values, strict=True)
        if not math.isfinite(fnum(v))
    }


def no_session(collection, stage, population=None, otherwise: str | None = None):
    """Why a mouse has no data of ``stage`` (of ``population``): a reason function for
    :func:`paired_mice`.

    ``"no expert session of thalamus"`` when no session of ``collection`` of that mouse
    carries those labels (e.g. its expert sessions were filed under a mistyped subject);
    else ``otherwise`` (default ``"its expert sessions of thalamus were left out (see
    sessions)"``: the analysis left them out, and its ``summary["sessions"]`` says why).
    """
    of = f" of {population}" if population is not None else ""
    recorded = {
        s.subject
        for s in collection
        if s.stage == stage and (population is None or s.population == population)
    }
    other = otherwise or f"its {stage} sessions{of} were left out (see sessions)"
    return lambda mouse: other if mouse in recorded else f"no {stage} session{of}"


def left_out_names(left_out: dict | None, shown: int | None = SHOWN_MICE) -> str:
    """``"mouse03, no expert session; mouseX, no novice session"``: the mice ``left_out``
    (``{mouse: reason}``) with their reasons, the first ``shown`` of them (None: all)
    and ``"and 2 more"``; ``""`` when there are none."""
    items = list((left_out or {}).items())
    named = items if shown is None else items[:shown]
    text = "; ".join(f"{m}, {why}" for m, why in named)
    if len(items) > len(named):
        text += f"; and {len(items) - len(named)} more"
    return text


def left_out_note(left_out: dict | None, shown: int = SHOWN_MICE) -> str:
    """``" (left out: mouse03, no expert session; ...)"`` after a count of mice in a
    description or a reason (at most ``shown`` mice named); ``""`` when none."""
    return f" (left out: {left_out_names(left_out, shown)})" if left_out else ""


def left_out_of(cell) -> dict:
    """The ``{mouse: reason}`` of a row's ``mice_left_out`` (``{}`` when it has none)."""
    return dict(cell) if isinstance(cell, dict) else {}


def left_out_cells(table: pd.DataFrame, column: str = "mice_left_out") -> pd.DataFrame:
    """``table`` with its ``{mouse: reason}`` cells of ``column`` written as text for the
    results folder: every mouse named (:func:`left_out_names`), NaN (an empty CSV cell)
    when none was left out, as :func:`reason_cell` does."""
    if column not in table.columns:
        return table
    out = table.copy()
    out[column] = [
        reason_cell(left_out_names(v, None) if isinstance(v, dict) else "") for v in table[column]
    ]
    return out


# --------------------------------------------------------------------------- stages
class StageOrderError(ValueError):
    """The learning order of the stages is unknown: give ``[analysis] stages = [...]``."""


def _order_hint(labels, stages) -> str:
    """Why the order of ``stages`` is unknown (``labels``: those of unknown order)."""
    return (
        f"stages {list(stages)}: the learning order of {', '.join(map(repr, labels))} is "
        "unknown (only novice, intermediate and expert have a known order); list the stages "
        "in learning order, the first before learning and the last after it, as "
        "stages = [...] in the analysis table of the study file ([analysis] stages), or "
        "stages=[...] in Python"
    )


def given_order(collection=None, stages=None) -> list[str] | None:
    """The user's order of the stages: ``stages`` (a list, or one label), else the
    collection's ``analysis["stages"]`` (the study file's ``[analysis] stages``), else None."""
    if stages is None and collection is not None:
        stages = (getattr(collection, "analysis", None) or {}).get("stages")
    if stages is None:
        return None
    if isinstance(stages, str):
        stages = [stages]
    return list(dict.fromkeys(stages))


def ordered_stages(values: Iterable, order: Iterable | None = None) -> list[str]:
    """Stages in learning order.

    With ``order`` (the user's ``[analysis] stages``), the stages present in that order
    (when the list holds only novice, intermediate and expert: in their learning order,
    whatever their order in the list); without it, novice, intermediate, expert. The
    learning order is never guessed: a stage whose place is unknown (not in ``order``;
    without ``order``, any label other than novice/intermediate/expert when there are
    several stages) raises :class:`StageOrderError` (a ValueError) naming it. A stage
    left out of ``order`` is a selection, not a stage to place: the analyses choose their
    stages with :func:`selected_stages`.

    Raises
    ------
    StageOrderError
    """
    vals = [v for v in dict.fromkeys(values) if v is not None and not is_missing(v)]
    if order is not None:
        return _in_given_order(vals, list(dict.fromkeys(order)))
    unknown = [v for v in vals if v not in STAGE_ORDER]
    if unknown and len(vals) > 1:
        raise StageOrderError(_order_hint(unknown, vals))
    return [s for s in STAGE_ORDER if s in vals] + unknown


def _in_given_order(vals: list, order: list) -> list[str]:
    """The stages ``vals`` (distinct, none missing) in the user's list ``order``
    (distinct): in learning order when it holds only novice, intermediate and expert,
    else in its order; a stage it does not list raises :class:`StageOrderError`."""
    extra = [v for v in vals if v not in order]
    if extra:
        raise StageOrderError(_unlisted_message(extra, order))
    if all(s in STAGE_ORDER for s in order):
        return [s for s in STAGE_ORDER if s in vals]  # known labels: learning order
    return [s for s in order if s in vals]


def _unlisted_message(extra: list, order: list) -> str:
    """Why the stages ``extra``, not in the user's list ``order``, cannot be placed: a
    known stage left out is a selection (:func:`selected_stages`); another label has an
    unknown place in the learning order."""
    head = f"stage(s) {extra} not in the stages {order}"
    if all(s in STAGE_ORDER for s in extra):
        return (
            f"{head}: a stage left out of the list is left out of the analyses (select the "
            "stages with selected_stages)"
        )
    return f"{head}; " + _order_hint([v for v in extra if v not in STAGE_ORDER], order + extra)


def selected_stages(values: Iterable, order: Iterable | None = None) -> list[str]:
    """The stages of ``values`` an analysis uses, in learning order: the one stage rule.

    Every analysis chooses its stages with this rule (``order``: the user's list,
    :func:`given_order`). With a list, only the stages it names, in its order (a list of
    novice, intermediate and expert only: in their learning order); a stage left out of
    the list is a selection, its sessions left out (:func:`stage_reasons` names them).
    Without a list, every stage of ``values``, novice, intermediate, expert in learning
    order (several stages with another label raise :class:`StageOrderError`, by
    :func:`ordered_stages`).

    Parameters
    ----------
    values : iterable of str
        The stages present (e.g. of the sessions or of a table); None and missing
        values are ignored.
    order : iterable of str, optional
        The user's stage list (None: no list).

    Returns
    -------
    list of str

    Raises
    ------
    StageOrderError
        Without a list, several stages some of which have an unknown learning order.
    """
    if order is not None:
        order = list(dict.fromkeys(order))
        values = [v for v in values if v in order]
    return ordered_stages(values, order)


def stage_reasons(sessions: Iterable[Session], order: Iterable | None) -> dict:
    """``{session_id: reason}`` of the sessions whose stage the user's list ``order``
    leaves out (a selection: every analysis leaves them out, with this reason).

    ``{}`` without a list (``order`` None). Sessions without a stage are not of a stage
    left out: each analysis treats them as without a list. The reason names the list in
    learning order: ``"stage 'novice' not in this analysis's stages ['expert']"``.
    """
    if order is None:
        return {}
    listed = listed_stages(order)
    return label_reasons([s for s in sessions if s.stage is not None], stages=listed)


def selection_note(sessions: Iterable[Session], order: Iterable | None) -> str:
    """``"the selected stages ['expert']"`` when the user's stage list ``order`` leaves
    out a session of ``sessions``, else ``""``: a "no stimulation sessions in the study"
    message says instead that the selection lacks them."""
    if not stage_reasons(sessions, order):
        return ""
    return f"the selected stages {listed_stages(order)}"


def listed_stages(order: Iterable) -> list[str]:
    """The user's stage list ``order`` in learning order (:func:`ordered_stages`): a list
    of novice, intermediate and expert only in their learning order, else as listed;
    e.g. its last stage is the one after learning."""
    return ordered_stages(order, order)


def default_stages(collection: SessionCollection) -> list[str]:
    """The stages an analysis of population x stage cells uses by default, in learning
    order.

    With the collection's ``analysis["stages"]`` (the study file's ``[analysis]
    stages``): the stages it lists that are present (:func:`selected_stages`); else
    ``["novice", "expert"]`` when both are present, else every stage present
    (:func:`ordered_stages`: several stages of which some are of unknown learning order
    raise :class:`StageOrderError`).
    """
    order = given_order(collection)
    present = [s for s in collection.stages if s is not None]
    if order is not None:
        return selected_stages(present, order)
    if "novice" in present and "expert" in present:
        return ["novice", "expert"]
    return ordered_stages(present)


def check_choice(values, available, what: str) -> list:
    """Validate a list of populations / stages against those present."""
    if values is None:
        return list(available)
    if isinstance(values, str):
        values = [values]
    values = list(values)
    missing = [v for v in values if v not in available]
    if missing:
        raise ValueError(f"{what} {missing} not in the collection (available: {list(available)})")
    return values


# --------------------------------------------------------------------------- progress
class Steps:
    """Progress over the steps of an analysis.

    ``progress`` may be False/None (silent), True (own transient rich bar) or a running
    ``rich.progress.Progress`` to which a task is added (used by the pipeline).
    """

    def __init__(self, progress, description: str, total: int):
        self._own = False
        self._bar = None
        self._task = None
        self._description = description
        if progress is None or progress is False:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        if isinstance(progress, Progress):
            self._bar = progress
        elif progress is True:
            self._bar = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                transient=True,
            )
            self._own = True
            self._bar.start()
        else:
            raise TypeError(
                "progress must be a bool or a rich.progress.Progress; got "
                f"{type(progress).__name__}"
            )
        self._task = self._bar.add_task(description, total=max(int(total), 1))

    def advance(self, label: str | None = None) -> None:
        if self._bar is not None:
            desc = self._description if label is None else f"{self._description}: {label}"
            self._bar.update(self._task, advance=1, description=desc)

    def close(self) -> None:
        if self._bar is None:
            return
        if self._own:
            self._bar.stop()
        else:
            self._bar.remove_task(self._task)
        self._bar = None

    def __enter__(self) -> Steps:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------- model
def make_model(
    *,
    n_shared=1,
    alpha=None,
    alphas=None,
    lags=(0, 2, 4),
    behavior_metric="correlation",
    cv=5,
    selection="best",
    random_state=0,
) -> ShaReD:
    """The ShaReD template of the analyses (private components off: not used here).

    ``alpha="auto"`` or a list is cross-validated (a list is the grid); ``selection``
    accepts ``"1se"`` for ``"one_se"``.
    """
    if isinstance(alpha, str):
        if alpha != "auto":
            raise ValueError(f'alpha must be a number, a list or "auto"; got {alpha!r}')
        alpha = None
    if isinstance(alpha, (list, tuple, np.ndarray)):
        alphas, alpha = list(alpha), None
    if selection == "1se":
        selection = "one_se"
    if isinstance(lags, tuple):
        lags = list(lags)
    return ShaReD(
        n_shared=n_shared,
        alpha=alpha,
        lags=lags,
        behavior_metric=behavior_metric,
        cv=cv,
        random_state=random_state,
        alphas=alphas,
        selection=selection,
        private=False,
    )


# --------------------------------------------------------------------------- sessions
#: String spellings of boolean trial flags (compared stripped and lower-cased).
TRUE_STRINGS = frozenset({"true", "1", "yes", "y", "t", "1.0"})
FALSE_STRINGS = frozenset({"false", "0", "no", "n", "f", "0.0", ""})


def flag_column(trials: pd.DataFrame, column: str, where: str = "") -> np.ndarray:
    """A boolean trial flag (``stim``, ``silencing``) parsed from a trials-table column.

    Booleans are kept; numbers are true when non-zero; strings are read
    case-insensitively ("true"/"false", "1"/"0", "yes"/"no", "t"/"f", "y"/"n"; an
    empty string is false); missing values (None, NaN) are false (no flag recorded).

    Parameters
    ----------
    trials : pandas.DataFrame
    column : str
    where : str, optional
        Prefix of error messages (e.g. the session).

    Returns
    -------
    numpy.ndarray of bool, shape (n_trials,)

    Raises
    ------
    ValueError
        For a string (or other value) that is not a boolean spelling; the message names
        the column and the offending values.
    """
    col = trials[column]
    if pd.api.types.is_bool_dtype(col) and not col.isna().any():
        return col.to_numpy(bool)
    out = np.zeros(len(col), bool)
    bad = []
    for i, v in enumerate(col.tolist()):
        if is_missing(v):
            continue
        if isinstance(v, (bool, np.bool_, numbers.Number)):
            out[i] = bool(v)
            continue
        if isinstance(v, (str, bytes)):
            t = (v.decode() if isinstance(v, bytes) else v).strip().lower()
            if t in TRUE_STRINGS:
                out[i] = True
                continue
            if t in FALSE_STRINGS:
                continue
        bad.append(v)
    if bad:
        shown = list(dict.fromkeys(map(repr, bad)))[:5]
        raise ValueError(
            f"{where}trials column {column!r} must hold booleans (True/False, 1/0, or the "
            f"strings true/false, yes/no, 1/0); got {', '.join(shown)}"
        )
    return out


def trial_flags(session: Session) -> tuple[np.ndarray, np.ndarray]:
    """Per trial: stimulation trial?, silencing (laser-on) trial? (bool arrays).

    Uses the ``stim`` / ``silencing`` columns of the trials table when present (parsed
    by :func:`flag_column`: booleans, 0/1, or strings such as "True"/"false"/"yes";
    missing values are false); without a ``stim`` column a trial counts as a
    stimulation trial when a stimulation interval starts inside it.

    Raises
    ------
    ValueError
        If a ``stim`` or ``silencing`` value is not a boolean spelling.
    """
    tr = session.trials
    n = len(tr)
    where = f"session {session.session_id!r}: "
    if "stim" in tr.columns:
        stim = flag_column(tr, "stim", where)
    else:
        stim = np.zeros(n, bool)
        if len(session.stimulation):
            on = session.stimulation["start_time"].to_numpy()
            st, sp = tr["start_time"].to_numpy(), tr["stop_time"].to_numpy()
            stim = np.array(
                [np.any((on >= a) & (on < b)) for a, b in zip(st, sp, strict=True)], dtype=bool
            )
    if "silencing" in tr.columns:
        sil = flag_column(tr, "silencing", where)
    else:
        sil = np.zeros(n, bool)
    return stim, sil


def subcollection(collection: SessionCollection, sessions) -> SessionCollection:
    """``sessions`` (of ``collection``) as a collection with its name, analysis and
    source."""
    return SessionCollection(
        sessions, name=collection.name, analysis=collection.analysis, source=collection.source
    )


def encoding_sessions(
    collection: SessionCollection, *, stim_margin_s: float = 1.5
) -> SessionCollection:
    """Sessions cleaned for encoding analyses.

    Removes the samples of stimulation trials and of silencing (laser-on) trials, and
    every frame overlapping a stimulation interval or the ``stim_margin_s`` seconds after
    it (light artefacts and evoked responses). Sessions left without samples are dropped.

    Parameters
    ----------
    collection : SessionCollection
    stim_margin_s : float, default 1.5
        Seconds after each stimulation interval also removed.

    Returns
    -------
    SessionCollection
    """
    out = []
    for s in collection:
        bad = np.zeros(s.n_samples, bool)
        if len(s.trials):
            stim, sil = trial_flags(s)
            drop = np.flatnonzero(stim | sil)
            if drop.size:
                bad |= np.isin(s.trial_ids(), drop)
        if len(s.stimulation):
            rate = s.sampling_rate
            bad |= exclusion_mask(
                s.timestamps,
                s.stimulation,
                margin=(0.0, float(stim_margin_s)),
                frame_duration=1.0 / rate if np.isfinite(rate) else 0.0,
            )
        if bad.all():
            continue
        out.append(s.mask_samples(bad) if bad.any() else s)
    return subcollection(collection, out)


def select_days(
    collection: SessionCollection, days_per_stage: int | None, first_stage: str | None = None
) -> SessionCollection:
    """Keep at most ``days_per_stage`` days per subject, population and stage.

    The earliest days of the first stage of the learning order (``first_stage``; default
    the first of the collection's ``analysis["stages"]``, else novice) and the latest
    days of every other stage are kept (the most distinct behaviour), so that every stage
    contributes about the same amount of data. ``None`` keeps everything; sessions
    without a day are kept.
    """
    if days_per_stage is None:
        return collection
    if not isinstance(days_per_stage, numbers.Integral) or days_per_stage < 1:
        raise ValueError(f"days_per_stage must be a positive int or None; got {days_per_stage!r}")
    if first_stage is None:
        order = given_order(collection)
        first_stage = order[0] if order else STAGE_ORDER[0]
    groups: dict = {}
    for s in collection:
        if s.day is not None:
            groups.setdefault((s.subject, s.population, s.stage), set()).add(s.day)
    keep_days = {}
    for key, days in groups.items():
        d = sorted(days)
        keep_days[key] = set(d[:days_per_stage] if key[2] == first_stage else d[-days_per_stage:])
    kept = [
        s
        for s in collection
        if s.day is None or s.day in keep_days[(s.subject, s.population, s.stage)]
    ]
    return subcollection(collection, kept)


def lever_index(session: Session, lever: str | None = None) -> int:
    """Column of the lever-position feature.

    ``lever`` if given; else ``"lever_position"``, ``"lever"``, or the first feature whose
    name starts with ``"lever"`` and does not mention velocity.
    """
    names = list(session.behavior_names)
    if lever is not None:
        if lever not in names:
            raise ValueError(
                f"session {session.session_id!r}: no behaviour feature {lever!r} (have {names})"
            )
        return names.index(lever)
    for cand in ("lever_position", "lever"):
        if cand in names:
            return names.index(cand)
    for i, n in enumerate(names):
        if n.lower().startswith("lever") and "vel" not in n.lower():
            return i
    raise ValueError(
        f"session {session.session_id!r}: no lever-position feature among {names}; pass lever="
    )


#: Outcome strings that mean "not recorded" (compared stripped and lower-cased).
MISSING_OUTCOMES = frozenset({"", "nan", "none", "na", "n/a", "null", "unknown"})


def success_of(trials: pd.DataFrame) -> np.ndarray:
    """Per trial success (float 1/0; NaN when unknown) from ``outcome`` or ``reward_time``.

    A numeric or boolean ``outcome`` is used as is (NaN stays NaN). A text ``outcome``
    is 1 for a success label (``SUCCESS_LABELS``: "success", "hit", "rewarded", ...,
    case-insensitive), NaN when missing (None, NaN, or a string in
    ``MISSING_OUTCOMES`` such as "" or "nan"), 1/0 for booleans or numbers mixed into
    the column, and 0 for any other label (failure, timeout, miss, ...). Without an
    ``outcome`` column a trial succeeded when its ``reward_time`` is finite. Average
    with NaN-aware means (``nanmean``).

    Parameters
    ----------
    trials : pandas.DataFrame

    Returns
    -------
    numpy.ndarray of float, shape (n_trials,)
    """
    if "outcome" in trials.columns:
        out = trials["outcome"]
        if pd.api.types.is_bool_dtype(out) or pd.api.types.is_numeric_dtype(out):
            return pd.to_numeric(out, errors="coerce").astype(float).to_numpy()
        return np.array([_success_value(v) for v in out.tolist()], dtype=float)
    if "reward_time" in trials.columns:
        return np.isfinite(pd.to_numeric(trials["reward_time"], errors="coerce")).astype(float)
    return np.full(len(trials), np.nan)


def _success_value(v) -> float:
    """1 / 0 / NaN for one ``outcome`` cell of a text column."""
    if is_missing(v):
        return math.nan
    if isinstance(v, (bool, np.bool_, numbers.Number)):
        return float(v)
    t = str(v).strip().lower()
    if t in MISSING_OUTCOMES:
        return math.nan
    return float(t in SUCCESS_LABELS)


# --------------------------------------------------------------------------- statistics
def sign_flip_test(
    x, alternative: str = "two-sided", *, n_perm: int = 20000, random_state=0
) -> float:
    """Sign-flip (paired permutation) test that the mean of ``x`` is 0.

    Exact (all ``2^n`` sign patterns, the observed one included) for ``n <= 16`` finite
    values, else ``n_perm`` random patterns (``(1 + count) / (1 + n_perm)``).

    Parameters
    ----------
    x : array_like, shape (n,)
        Paired differences, one per subject; NaN entries are ignored.
    alternative : {"two-sided", "greater", "less"}
    n_perm : int
    random_state : int

    Returns
    -------
    float
        p-value (NaN when no finite value).
    """
    a = np.asarray(x, dtype=float)
    a = a[np.isfinite(a)]
    n = a.size
    if n == 0:
        return math.nan
    obs = a.mean()
    if n <= 16:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        null = signs @ a / n
        exact = True
    else:
        rng = np.random.default_rng(random_state)
        null = (rng.choice((-1.0, 1.0), size=(n_perm, n)) @ a) / n
        exact = False
    tol = 1e-12 * max(1.0, abs(obs))
    if alternative == "two-sided":
        count = np.sum(np.abs(null) >= abs(obs) - tol)
    elif alternative == "greater":
        count = np.sum(null >= obs - tol)
    elif alternative == "less":
        count = np.sum(null <= obs + tol)
    else:
        raise ValueError(f"alternative must be two-sided, greater or less; got {alternative!r}")
    if exact:
        return float(count / null.size)
    return float((1 + count) / (1 + n_perm))


def ttest_p(x, alternative: str = "two-sided") -> float:
    """One-sample t-test p-value that the mean of ``x`` (one value per subject) is 0.

    The p-value of :func:`scipy.stats.ttest_1samp` (``popmean = 0``), except where the
    t statistic is undefined: with fewer than 2 finite values, or data that are
    essentially constant (standard error below ``10 eps |mean|``, the criterion of R's
    ``t.test``; all values equal, e.g. quantised per-mouse slopes), NaN is returned.
    scipy would report ``t = +-inf`` and ``p = 0`` for constant non-zero data (or a
    p-value from rounding noise for nearly constant data), a certainty the data cannot
    give; for constant zero data scipy also gives NaN.

    Parameters
    ----------
    x : array_like
        One value per subject; non-finite values are ignored.
    alternative : {"two-sided", "greater", "less"}

    Returns
    -------
    float
        p-value, or NaN when not computable.
    """
    from scipy.stats import ttest_1samp

    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be two-sided, greater or less; got {alternative!r}")
    a = np.asarray(x, dtype=float).ravel()
    a = a[np.isfinite(a)]
    if a.size < 2:
        return math.nan
    mean = float(a.mean())
    se = float(np.std(a, ddof=1)) / math.sqrt(a.size)
    if not se > 10 * np.finfo(float).eps * abs(mean):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(ttest_1samp(a, 0.0, alternative=alternative).pvalue)


def wilcoxon_p(x, alternative: str = "two-sided") -> float:
    """Wilcoxon signed-rank p-value of paired differences (NaN if not computable)."""
    from scipy.stats import wilcoxon

    a = np.asarray(x, dtype=float)
    a = a[np.isfinite(a)]
    if a.size < 2 or np.all(a == 0):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(wilcoxon(a, alternative=alternative).pvalue)
        except ValueError:
            return math.nan


class MeanCI(NamedTuple):
    """A confidence interval of a mean over subjects (:func:`t_mean_ci`).

    ``low`` and ``high`` are NaN when no interval can be given, and ``reason`` then says
    why (e.g. ``"not computable (n = 1 mouse)"``); ``reason`` is ``""`` otherwise.
    """

    low: float
    high: float
    reason: str = ""


def t_mean_ci(x, *, ci: float = 0.95) -> MeanCI:
    """Student t confidence interval of the mean over subjects (one value per subject).

    ``mean +- t(n - 1, (1 + ci) / 2) * sd / sqrt(n)`` (``sd`` with ``ddof=1``; the
    quantile from :data:`scipy.stats.t`): the interval of
    :func:`scipy.stats.ttest_1samp`'s ``confidence_interval``, computed directly (several
    times faster). Exact when the per-subject values are normal, and the dual of
    :func:`ttest_p`: a 95% interval excludes 0 exactly when the two-sided t-test gives
    p < 0.05.

    It replaces a percentile bootstrap of the mean, which with the few mice of a study
    covers far less than it says. ``python benchmarks/interval_coverage.py`` (2,000 data
    sets per cell) measured, for a nominal 95%: the percentile bootstrap held the true
    mean of normal values in 50.5% of data sets with 2 mice, 75.8% with 3, 83.0% with 5
    and 88.8% with 10 (BCa no better); this interval in 93.5-95.7% (95.8-96.7% for
    heavy-tailed t3 values). With skewed values no interval is honest at this n: this one
    covers 81-90% (lognormal) and 87.5-92.3% (exponential), the percentile bootstrap
    44-89%; a bootstrap-t does better there from 4 mice on but fails with 2 or 3 mice
    and with tied (integer) values. ``tests/study/test_intervals.py`` checks the coverage.

    No interval (NaN bounds, with a ``reason``) from fewer than 2 finite values, or from
    values that are essentially equal (standard error below ``10 eps |mean|``, the
    criterion of :func:`ttest_p`; e.g. every mouse with the same integer value): their
    spread says nothing about the spread of the population, and ``[x, x]`` would claim a
    certainty the data cannot give.

    Parameters
    ----------
    x : array_like
        One value per subject; non-finite values are ignored.
    ci : float, default 0.95
        Confidence level, in (0, 1).

    Returns
    -------
    MeanCI
        ``(low, high, reason)``.

    Raises
    ------
    ValueError
        If ``ci`` is not in (0, 1).
    """
    from scipy.stats import t

    if not 0 < float(ci) < 1:
        raise ValueError(f"ci must be in (0, 1); got {ci!r}")
    a = np.asarray(x, dtype=float).ravel()
    a = a[np.isfinite(a)]
    if a.size < 2:
        return MeanCI(math.nan, math.nan, f"not computable ({mice_text(a.size)})")
    mean = float(a.mean())
    se = float(np.std(a, ddof=1)) / math.sqrt(a.size)
    if not se > 10 * np.finfo(float).eps * abs(mean):
        return MeanCI(
            math.nan,
            math.nan,
            f"not computable (the {mice_text(a.size)} have the same value)",
        )
    half = float(t.ppf((1 + float(ci)) / 2, a.size - 1)) * se
    return MeanCI(mean - half, mean + half, "")


def ci_text(low, high, reason: str = "", *, label: str = "95% CI", spec: str = "+.3g") -> str:
    """An interval in words: ``"95% CI [-0.1, +0.3]"``, or ``"95% CI not computable
    (n = 1 mouse)"`` when a bound is not a number (``reason``, else ``"not
    computable"``). Never ``"[n/a, n/a]"``."""
    lo, hi = fnum(low), fnum(high)
    if math.isfinite(lo) and math.isfinite(hi):
        return f"{label} [{lo:{spec}}, {hi:{spec}}]"
    return f"{label} {reason or 'not computable'}"


def ignored_n_boot(n_boot, name: str) -> None:
    """Warn (FutureWarning) that ``n_boot`` of analysis ``name`` is ignored, when given.

    The analyses whose interval over mice was a percentile bootstrap now give the t
    interval of :func:`t_mean_ci`, which draws nothing.
    """
    if n_boot is not None:
        warnings.warn(
            f"{name}: n_boot is ignored and will be removed: the interval over mice is a "
            "Student t interval (no resampling)",
            FutureWarning,
            stacklevel=3,
        )


# --------------------------------------------------------------------------- figures
def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 4.0, height: float = 3.2):
    """A pyplot-free figure and its axes array (always 2-D)."""
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(nrows, ncols, squeeze=False))
    return fig, axes


def empty_figure(message: str) -> Figure:
    """A figure that only says why there is nothing to show."""
    fig, ax = new_figure(1, 1, width=5, height=2)
    ax[0, 0].axis("off")
    ax[0, 0].text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return fig


def single_blas(func):
    """Run ``func`` with single-threaded BLAS.

    The analyses do many small fits; multi-threaded BLAS on small matrices is slower
    (and on a shared machine much slower: threads spin while waiting for cores).
    """
    from sharedrep.utils.parallel import small_blas

    return small_blas(func)


@contextlib.contextmanager
def quiet():
    """Silence the expected warnings of resampling-based fits."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="only .* subjects", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*are constant", category=UserWarning)
        # lags, permutations and cells that do not encode are expected: their scores say so
        warnings.filterwarnings("ignore", message="no shared dimension")
        yield


def _name_subjects(message: str, subjects) -> str:
    """``message`` with the mouse named behind each "subject <i>" (index into ``subjects``)."""
    subjects = list(subjects)

    def mouse(m):
        i = int(m.group(1))
        return f"{m.group(0)} ({subjects[i]})" if i < len(subjects) else m.group(0)

    return re.sub(r"subject (\d+)", mouse, message)


@contextlib.contextmanager
def naming(where: str, subjects=()):
    """Prefix a ``ValueError`` raised inside with ``where`` (e.g. ``"thalamus / expert"``)
    and name the mice behind "subject <i>" (the index into ``subjects``).

    An :class:`AnalysisError` passes unchanged: it already starts with the analysis and
    names where it came from.
    """
    try:
        yield
    except AnalysisError:
        raise
    except ValueError as exc:
        raise ValueError(f"{where}: {_name_subjects(str(exc), subjects)}") from exc


# --------------------------------------------------------------------------- provenance
#: Reason recorded for a left-out session when no selection step gave one.
UNSPECIFIED = "not used by this analysis"


def _ids(sessions) -> list[str]:
    """Session ids of an iterable of :class:`Session` objects or ids."""
    return [s if isinstance(s, str) else s.session_id for s in sessions]


def session_provenance(given, used, left_out=None, partly_used=None) -> dict:
    """Which sessions an analysis used and which it left out, and why (for its summary).

    Every analysis puts this under ``summary["sessions"]``, so that a session lost to a
    mistyped label, a missing column or a selection rule is named, never silently dropped.

    Parameters
    ----------
    given : SessionCollection or iterable of Session or str
        The sessions the analysis was given (or their ids), in order.
    used : iterable of str
        Ids of the sessions whose data entered the results.
    left_out : dict of str to str, optional
        Why sessions were left out (``{session_id: reason}``), from the selection steps
        (:func:`label_reasons`, :func:`dropped`, ...). A left-out session without a
        reason gets :data:`UNSPECIFIED`; reasons of used sessions are ignored.
    partly_used : dict of str to str, optional
        Used sessions that are missing from some results, and from which.

    Returns
    -------
    dict
        ``n_given``, ``n_used``, ``used`` (ids, in the given order), ``n_left_out``,
        ``left_out`` (``{session_id: reason}``, in the given order) and, when not empty,
        ``partly_used`` (``{session_id: note}``).
    """
    given_ids = list(dict.fromkeys(_ids(given)))
    used_set = set(_ids(used))
    reasons = left_out or {}
    used_ids = [sid for sid in given_ids if sid in used_set]
    out = {sid: reasons.get(sid, UNSPECIFIED) for sid in given_ids if sid not in used_set}
    summary = {
        "n_given": len(given_ids),
        "n_used": len(used_ids),
        "used": used_ids,
        "n_left_out": len(out),
        "left_out": out,
    }
    partly = {sid: note for sid, note in (partly_used or {}).items() if sid in used_set}
    if partly:
        summary["partly_used"] = partly
    return summary


def describe_provenance(provenance: dict, shown: int = 5) -> str:
    """One sentence for an analysis's description: sessions used, and those left out (why).

    Parameters
    ----------
    provenance : dict
        :func:`session_provenance`'s result.
    shown : int, default 5
        Left-out sessions named (the rest are counted).
    """
    text = f" Sessions used: {provenance['n_used']} of {provenance['n_given']}"
    out = list(provenance["left_out"].items())
    if out:
        named = "; ".join(f"{sid} ({why})" for sid, why in out[:shown])
        more = f"; and {len(out) - shown} more" if len(out) > shown else ""
        text += f"; left out: {named}{more}"
    return text + "."


def dropped(before, after, reason) -> dict:
    """``{session_id: reason}`` of the sessions of ``before`` that are not in ``after``.

    Parameters
    ----------
    before, after : iterable of Session
        The sessions before and after one selection step.
    reason : str or callable
        The reason, or a function of the dropped :class:`Session` returning it.
    """
    kept = set(_ids(after))
    return {
        s.session_id: reason(s) if callable(reason) else reason
        for s in before
        if s.session_id not in kept
    }


def label_reasons(collection, populations=None, stages=None) -> dict:
    """Why the sessions whose population or stage is not analysed are left out.

    Parameters
    ----------
    collection : iterable of Session
    populations, stages : list of str, optional
        Labels the analysis uses (None: any).

    Returns
    -------
    dict of str to str
        ``{session_id: "population 'x' not in this analysis's populations [...]"}`` or
        ``"stage 'novcie' not in this analysis's stages ['novice', 'expert']"``.
    """
    out = {}
    for s in collection:
        if populations is not None and s.population not in populations:
            out[s.session_id] = (
                f"population {s.population!r} not in this analysis's populations "
                f"{list(populations)}"
            )
        elif stages is not None and s.stage not in stages:
            out[s.session_id] = f"stage {s.stage!r} not in this analysis's stages {list(stages)}"
    return out


def merge_reasons(*reasons: dict) -> dict:
    """One ``{session_id: reason}`` from several (the first reason of a session wins)."""
    out: dict = {}
    for r in reasons:
        for sid, why in r.items():
            out.setdefault(sid, why)
    return out


# --------------------------------------------------------------------------- errors
class AnalysisError(ValueError):
    """An error inside a study analysis that names where it came from.

    Its message starts with the analysis name, then the population, stage, session(s)
    and subject(s) being processed (``"encoding_by_population: population 'thalamus',
    stage 'expert', session 'mouse01-day14', subject 'mouse01': ..."``); the original
    exception is chained (``__cause__``).

    Attributes
    ----------
    analysis : str
    population, stage : str or None
    sessions, subjects : list of str
        The sessions (and their subjects) being processed; when several were processed
        together, those whose data hold non-finite or overflowing values if any, else all.
    """

    def __init__(
        self, message: str, *, analysis: str, population=None, stage=None, sessions=(), subjects=()
    ):
        super().__init__(message)
        self.analysis = analysis
        self.population = population
        self.stage = stage
        self.sessions = list(sessions)
        self.subjects = list(subjects)


_CURRENT_ANALYSIS: contextvars.ContextVar = contextvars.ContextVar(
    "sharedrep_study_analysis", default=None
)


def analysis(name: str):
    """Decorator: errors raised by :func:`origin` inside the function name ``name``.

    When an analysis calls another one (e.g. ``silencing_effects`` calls
    ``trial_measures``), the outermost name is kept.
    """

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if _CURRENT_ANALYSIS.get() is not None:
                return func(*args, **kwargs)
            token = _CURRENT_ANALYSIS.set(name)
            try:
                return func(*args, **kwargs)
            finally:
                _CURRENT_ANALYSIS.reset(token)

        return wrapper

    return decorate


def overflow_limit(n_samples: int) -> float:
    """Largest magnitude whose squares summed over ``n_samples`` samples stay finite.

    ``sqrt(max float64 / (4 n))``: about 1e152 for 1,000 samples. Larger values overflow
    the sums of squares and cross-products of the fit (and every statistic after it).
    """
    return float(np.sqrt(np.finfo(np.float64).max / (4.0 * max(int(n_samples), 1))))


def _unusable(x, n_samples: int) -> bool:
    """Whether an array holds NaN/inf or a value beyond :func:`overflow_limit`."""
    a = np.asarray(x, dtype=float)
    if not a.size:
        return False
    return bool(not np.isfinite(a).all() or np.nanmax(np.abs(a)) > overflow_limit(n_samples))


def check_magnitude(session: Session, n_samples: int, rows=None) -> None:
    """Refuse a session whose neural or behaviour values would overflow the statistics.

    Parameters
    ----------
    session : Session
    n_samples : int
        Samples of the fit the session enters (the limit is :func:`overflow_limit`).
    rows : array of bool, shape (n_samples_session,), optional
        Samples used (default all); NaN/inf are left to the fit's own checks.

    Raises
    ------
    ValueError
        Naming the array, the unit (or feature) index and the value.
    """
    limit = overflow_limit(n_samples)
    arrays = (("neural", session.neural, "unit"), ("behavior", session.behavior, "feature"))
    for name, x, what in arrays:
        if x is None or not np.size(x):
            continue
        a = np.asarray(x, dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN arrays
            lo, hi = np.nanmin(a), np.nanmax(a)
        if not (lo < -limit or hi > limit):  # the common case, without temporaries
            continue
        with np.errstate(invalid="ignore"):
            big = np.isfinite(a) & (np.abs(a) > limit)
        if rows is not None:
            big &= np.asarray(rows, dtype=bool)[:, None]
        if big.any():
            t, j = np.argwhere(big)[0]
            raise ValueError(
                f"{name} {what} {int(j)} holds {a[t, j]:.3g} at sample {int(t)} "
                f"({int(big.sum())} value(s) beyond {limit:.3g} in magnitude): its squares "
                "overflow the statistics in float64; drop or rescale it"
            )


def _cell_entries(cell) -> list[tuple[list, str, bool]]:
    """``(session ids, subject, unusable?)`` per subject of fit arguments or per session.

    ``cell``: a :class:`~sharedrep.data.session.FitArgs`, or a list of them, or of
    :class:`Session` objects; unusable: NaN/inf, or beyond :func:`overflow_limit` of the
    samples fitted together.
    """
    items = list(cell) if isinstance(cell, (list, tuple, SessionCollection)) else [cell]
    entries = []
    sessions = [x for x in items if isinstance(x, Session)]
    n = sum(s.n_samples for s in sessions)
    for s in sessions:
        bad = _unusable(s.neural, n) or (s.behavior is not None and _unusable(s.behavior, n))
        entries.append(([s.session_id], s.subject, bad))
    for args in (x for x in items if not isinstance(x, Session)):
        n = int(sum(np.shape(x)[0] for x in args.neural))
        for i, subj in enumerate(args.subjects):
            bad = _unusable(args.neural[i], n) or _unusable(args.behavior[i], n)
            entries.append((list(args.session_ids[i]), subj, bad))
    return entries


def _cell_culprits(cell) -> tuple[list, list]:
    """``(sessions, subjects)`` of a cell: those with unusable arrays if any, else all."""
    entries = _cell_entries(cell)
    chosen = [e for e in entries if e[2]] or entries
    return [sid for ids, _, _ in chosen for sid in ids], [s for ids, s, _ in chosen for _ in ids]


def _where(population, stage, sessions, subjects, what) -> str:
    """ "population 'p', stage 's', session 'x', subject 'm'" (the parts that are known)."""
    parts = [f"{k} {v!r}" for k, v in (("population", population), ("stage", stage)) if v]
    if what:
        parts.append(what)
    if len(sessions) == 1:
        parts.append(f"session {sessions[0]!r}")
    elif sessions:
        parts.append("sessions " + ", ".join(map(repr, sessions)))
    subj = list(dict.fromkeys(subjects))
    if len(subj) == 1:
        parts.append(f"subject {subj[0]!r}")
    elif subj:
        parts.append("subjects " + ", ".join(map(repr, subj)))
    return ", ".join(parts)


#: Exceptions :func:`origin` re-raises as :class:`AnalysisError` (others pass unchanged).
WRAPPED_ERRORS = (ValueError, ArithmeticError, LookupError)


@contextlib.contextmanager
def origin(*, session=None, cell=None, population=None, stage=None, subject=None, what=None):
    """Re-raise an error of the block as an :class:`AnalysisError` naming its origin.

    Use it around the work on one session, one population x stage cell or one subject;
    the analysis name comes from the :func:`analysis` decorator. An
    :class:`AnalysisError` raised inside passes unchanged (the innermost origin is the
    most precise); a ``ValueError``, ``ArithmeticError`` or ``LookupError`` is re-raised
    ``from`` the original.

    Parameters
    ----------
    session : Session, optional
        The session processed (gives its population, stage and subject).
    cell : FitArgs, or list of FitArgs or of Session, optional
        Several subjects' sessions processed together; the error names the sessions
        whose arrays hold non-finite or overflowing values (else every one), and, for
        one FitArgs, the mouse behind each "subject <i>" of the original message.
    population, stage, subject : str, optional
        Labels (override those of ``session``).
    what : str, optional
        Any other part of the origin (e.g. ``"comparison a vs b"``).
    """
    try:
        yield
    except AnalysisError:
        raise
    except WRAPPED_ERRORS as exc:
        sessions, subjects, message = [], [], str(exc) or type(exc).__name__
        if isinstance(exc, KeyError) and exc.args:
            message = f"missing {exc.args[0]!r}"
        if session is not None:
            population = population if population is not None else session.population
            stage = stage if stage is not None else session.stage
            sessions, subjects = [session.session_id], [session.subject]
        elif cell is not None:
            sessions, subjects = _cell_culprits(cell)
            if hasattr(cell, "subjects") and not isinstance(cell, SessionCollection):
                message = _name_subjects(message, cell.subjects)
        if subject is not None:
            subjects = [subject]
        name = _CURRENT_ANALYSIS.get() or "analysis"
        where = _where(population, stage, sessions, subjects, what)
        raise AnalysisError(
            f"{name}: {where}: {message}" if where else f"{name}: {message}",
            analysis=name,
            population=population,
            stage=stage,
            sessions=sessions,
            subjects=subjects,
        ) from exc
