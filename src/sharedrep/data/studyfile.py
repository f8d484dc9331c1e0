"""Study description files (TOML): which sessions, where their files are, how to analyse.

A study file has four tables (see ``examples/study.toml``)::

    [study]        name, description
    [analysis]     model and analysis settings (n_shared, alpha, lags, cv, ...)
    [defaults]     default values for every session entry
    [[sessions]]   one entry per session: subject, day, stage, population, format, path, ...

Relative paths are relative to the folder of the TOML file.

:func:`validate_study` checks everything and returns *all* problems as a list of
messages (empty when the study is usable); :func:`load_study` returns a
:class:`~sharedrep.SessionCollection` or raises one :class:`StudyError` listing every
problem. Layer ``data``: the module may import only ``sharedrep.utils`` (the constraint
objects of :mod:`sharedrep.utils.params`) and ``sharedrep.data`` (sessions, readers,
preprocessing).

Session formats
---------------
``"nwb"``
    ``path`` is an NWB file read by :func:`sharedrep.data.io.read_nwb` (options ``neural``,
    ``behavior``, ``bin_size``, ``cells_only``, ``min_confidence``, ``max_gap``).
``"suite2p"``
    ``path`` is a suite2p plane folder (:func:`sharedrep.data.io.read_suite2p`), converted to
    dF/F (``neuropil_coef``, ``baseline_window_s``, ``baseline_percentile``, optional
    ``bouton_threshold``) on frame times from ``frame_times`` (``.npy``) or
    ``frame_rate`` (else ``ops["fs"]``); behaviour from ``lever`` (NPY/CSV trace) and
    ``pose`` (DeepLabCut ``.h5``/``.csv`` or SLEAP ``.slp``), resampled onto the frames.
    ``bodyparts`` selects pose body parts (SLEAP nodes); ``min_likelihood`` thresholds
    DeepLabCut likelihoods (default 0.6) or SLEAP point scores (default: no threshold;
    proofread SLEAP points count as 1.0).

For every format: ``trials`` / ``stimulation`` CSV tables (override the file's),
``exclude_stimulation`` (drop frames during stimulation +- ``stimulation_margin`` s),
``drop_bad_units`` (drop the neural units that are NaN/inf in every sample, constant,
or too large for the statistics, see :meth:`sharedrep.Session.bad_columns`, with a
warning listing them), ``drop_nonfinite`` (then drop samples with NaN, e.g. long pose
gaps), and ``movement_onset_from`` (detect movement onsets after ``cue_time`` from a
behaviour feature, threshold ``movement_threshold`` or automatic).

suite2p's pickled ``ops.npy`` / ``stat.npy`` are read with a restricted unpickler (no
code from a data file runs); ``allow_pickle = false`` skips them.

Labels
------
A label typo would silently split or merge animals or leave sessions out of an
analysis, so these are problems (:func:`load_study` refuses the study): stages and
populations close to another label (:data:`LABEL_SIMILARITY`, see
:func:`validate_study`); subject ids that differ only by case, spaces, separators or
leading zeros (``"M1"``, ``"m1 "``, ``"m_1"``, ``"m01"``; :func:`fold_subject`); one
recording (``path``) listed under two subjects.
The labels of an ``"nwb"`` entry (subject, day, stage, population) are compared with
those its file stores (``Subject.subject_id``; what :func:`sharedrep.data.io.write_nwb`
stored), read from the file's header: a contradiction that looks like a typo by the same
rules (a subject that differs only by case, spaces, separators or leading zeros, a label
that differs only by case or spaces, a close stage or
population) is a problem; any other (another stage, day or subject id) is taken as a
deliberate relabelling: the entry's value is used, as :func:`~sharedrep.data.io.read_nwb`
overrides do, and :func:`validate_study` and :func:`load_study` say so with a
:class:`UserWarning` naming the entry, the field, both values and the file.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from sharedrep.data.io._common import DataFormatError, check_timestamps
from sharedrep.data.io.lever import load_npy
from sharedrep.data.session import (
    RATE_TOLERANCE,
    BadColumn,
    Session,
    SessionCollection,
    _split_rates,
)
from sharedrep.utils.params import Interval, Predicate, TypeOf, param_problems
from sharedrep.utils.validation import closest_label, fold_label, fold_subject, is_missing

if TYPE_CHECKING:
    from sharedrep.data.io.nwb_header import NWBHeader

__all__ = ["StudyError", "load_study", "validate_study", "SESSION_KEYS", "ANALYSIS_KEYS"]

_INT = (int,)
_NUM = (int, float)
_STR = (str,)
_BOOL = (bool,)
_LIST = (list,)

#: The stage labels whose learning order is known, in that order (first: before
#: learning); a study with other labels gives the order as ``[analysis] stages`` (see
#: :func:`_unknown_order`).
STAGE_ORDER = ("novice", "intermediate", "expert")

#: Keys of ``[analysis]`` and their accepted TOML types.
ANALYSIS_KEYS: dict[str, tuple] = {
    "n_shared": (int, str),  # int or "auto"
    "alpha": (int, float, str, list),  # number, "auto", or grid
    "lags": (int, list),
    "behavior_metric": _STR,
    "cv": _INT,
    "selection": _STR,  # "best" or "1se"
    "random_state": _INT,
    "n_permutations": _INT,
    "min_shift": _NUM,
    "n_bootstrap": _INT,
    "fdr": _NUM,
    "populations": _LIST,
    "stages": _LIST,
    "within_trials": _BOOL,
    "backend": _STR,  # default of `sharedrep fit --backend` (`run` computes in-process)
    "output": _STR,
    # learning-study pipeline (sharedrep.study.pipeline.DEFAULT_SETTINGS)
    "alphas": _LIST,
    "n_perm_groups": _INT,
    "n_perm_units": _INT,
    "unit_whole_trials": _BOOL,
    "n_perm_overlap": _INT,
    "days_per_stage": _INT,
    "profile_lags": _LIST,
    "lever": _STR,
    "stim_population": _STR,
    "activation_population": _STR,
    "n_jobs": _INT,
}

_COMMON = {
    "subject": (str, int),
    "session_id": _STR,
    "day": _INT,
    "stage": _STR,
    "population": _STR,
    "format": _STR,
    "path": _STR,
    "trials": _STR,
    "stimulation": _STR,
    "exclude_stimulation": _BOOL,
    "stimulation_margin": _NUM,
    "drop_nonfinite": _BOOL,
    "drop_bad_units": _BOOL,
    "movement_onset_from": _STR,
    "movement_threshold": _NUM,
    "resample_method": _STR,
    "extrapolate": _STR,
    "max_gap": _INT,
}
_FORMAT_KEYS = {
    "nwb": {
        "neural": _STR,
        "behavior": _LIST,
        "bin_size": _NUM,
        "min_confidence": _NUM,
        "cells_only": _BOOL,
    },
    "suite2p": {
        "frame_rate": _NUM,
        "frame_times": _STR,
        "neuropil_coef": _NUM,
        "baseline_window_s": _NUM,
        "baseline_percentile": _NUM,
        "bouton_threshold": _NUM,
        "cells_only": _BOOL,
        "min_cell_prob": _NUM,
        "allow_pickle": _BOOL,
        "lever": _STR,
        "lever_sampling_rate": _NUM,
        "lever_units": _STR,
        "lever_names": _LIST,
        "pose": _STR,
        "pose_frame_rate": _NUM,
        "pose_frame_times": _STR,
        "min_likelihood": _NUM,
        "bodyparts": _LIST,
    },
}
#: All keys a ``[[sessions]]`` entry (or ``[defaults]``) may have.
SESSION_KEYS = {**_COMMON, **{k: v for d in _FORMAT_KEYS.values() for k, v in d.items()}}
_PATH_KEYS = ("path", "trials", "stimulation", "frame_times", "lever", "pose", "pose_frame_times")
_TOP = {"study": {"name": _STR, "description": _STR}, "analysis": ANALYSIS_KEYS}


class StudyError(ValueError):
    """A study file with problems; ``problems`` lists every message."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{path}: {len(self.problems)} problem(s):\n{lines}")


def _type_name(types: tuple) -> str:
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true/false",
        list: "a list",
    }
    return " or ".join(dict.fromkeys(names[t] for t in types))


def _type_ok(value, types: tuple) -> bool:
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def _label(i: int, entry: dict) -> str:
    sid = entry.get("session_id")
    if not sid and "subject" in entry:
        sid = f"{entry['subject']}" + (f"-day{entry['day']}" if "day" in entry else "")
    return f"sessions[{i}]" + (f" ({sid})" if sid else "")


def _resolve(base: Path, value: str) -> Path:
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else base / p


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive(value) -> bool:
    return _is_num(value) and math.isfinite(value) and value > 0


def _positive_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(map(_positive, value))


def _lag_list(value) -> bool:
    """A non-empty list of distinct integer lags."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(map(_is_int, value))
        and len(set(value)) == len(value)
    )


def _profile_lag_list(value) -> bool:
    """A list of integer lags with at least 2 distinct values (repeats allowed)."""
    return isinstance(value, list) and all(map(_is_int, value)) and len(set(value)) >= 2


_AUTO = TypeOf(str, '"auto"')  # the string values are checked by _check_analysis_options

#: Range constraints of ``[analysis]`` values whose TOML type is right (the types: the
#: schema ``ANALYSIS_KEYS``): key -> (constraints any one of which accepts the value,
#: what the value must be). Checked in this order by :func:`_check_analysis_values`.
_ANALYSIS_VALUE_CONSTRAINTS: dict[str, tuple[list, str]] = {
    "n_shared": ([Interval(int, 1), _AUTO], "an integer >= 1 (shared dimensions)"),
    "n_permutations": ([Interval(int, 1)], "an integer >= 1 (circular-shift permutations)"),
    "n_perm_groups": (
        [Interval(int, 1)],
        "an integer >= 1 (relabellings per group comparison)",
    ),
    "n_perm_units": (
        [Interval(int, 1)],
        "an integer >= 1 (permutations of the unit encoding test)",
    ),
    "n_perm_overlap": ([Interval(int, 1)], "an integer >= 1 (permutations of the overlap test)"),
    "n_bootstrap": ([Interval(int, 2)], "an integer >= 2 (bootstrap resamples of mice)"),
    "days_per_stage": ([Interval(int, 1)], "an integer >= 1 (days per subject and stage)"),
    "random_state": ([Interval(int, 0)], "an integer >= 0 (seed)"),
    "cv": ([Interval(int, 2)], "an integer >= 2 (cross-validation folds)"),
    "n_jobs": (
        [Predicate(lambda v: v != 0, "non-zero")],
        "a non-zero integer (number of parallel jobs; -1: all cores)",
    ),
    "fdr": (
        [Interval(float, 0, 1, closed="neither")],
        "a number in (0, 1) (false discovery rate)",
    ),
    "min_shift": (
        [Predicate(lambda v: math.isfinite(v) and round(v) >= 1, "rounds to >= 1")],
        "a number of samples >= 1 (rounded to an integer)",
    ),
    "alpha": (
        [Predicate(_positive, "positive"), Predicate(_positive_list, "positive list"), _AUTO],
        'a positive number, a non-empty list of positive numbers, or "auto"',
    ),
    "alphas": (
        [Predicate(_positive_list, "positive list")],
        "a non-empty list of positive numbers (ridge grid)",
    ),
    "lags": (
        [Interval(int), Predicate(_lag_list, "distinct lags")],
        "an integer or a non-empty list of distinct integers (frames)",
    ),
    "profile_lags": (
        [Predicate(_profile_lag_list, "lags")],
        "a list of at least 2 distinct integer lags (frames)",
    ),
}


def _any_of(constraints: list, expected: str) -> Predicate:
    """One constraint accepting what any of ``constraints`` accepts, described as
    ``expected``."""
    return Predicate(lambda v: any(c.accepts(v) for c in constraints), expected)


#: :data:`_ANALYSIS_VALUE_CONSTRAINTS` as a constraint table of
#: :mod:`sharedrep.utils.params` (one constraint per key, described as "what it must be").
_ANALYSIS_VALUE_TABLE = {
    key: [_any_of(constraints, expected)]
    for key, (constraints, expected) in _ANALYSIS_VALUE_CONSTRAINTS.items()
}


def _check_analysis_values(analysis: dict) -> list[str]:
    """Range checks of ``[analysis]`` values whose type is right (types: the schema).

    One message per value that no constraint of :data:`_ANALYSIS_VALUE_CONSTRAINTS`
    accepts (:func:`sharedrep.utils.params.param_problems`: every problem, not only
    the first); wrongly typed values are left to the schema check (one message each).
    """
    typed = {
        k: v for k, v in analysis.items() if k in ANALYSIS_KEYS and _type_ok(v, ANALYSIS_KEYS[k])
    }
    return param_problems(typed, _ANALYSIS_VALUE_TABLE, owner="[analysis]")


def _check_top_level(doc: dict) -> list[str]:
    """Unknown top-level keys, and keys/types of the ``[study]`` and ``[analysis]`` tables."""
    problems: list[str] = []
    for key in doc:
        if key not in ("study", "analysis", "defaults", "sessions"):
            problems.append(
                f"unknown top-level key {key!r} (allowed: study, analysis, defaults, sessions)"
            )
    for table, schema in _TOP.items():
        section = doc.get(table, {})
        if not isinstance(section, dict):
            problems.append(f"[{table}] must be a table")
            continue
        for k, v in section.items():
            if k not in schema:
                problems.append(f"[{table}]: unknown key {k!r} (allowed: {sorted(schema)})")
            elif not _type_ok(v, schema[k]):
                problems.append(f"[{table}]: {k!r} must be {_type_name(schema[k])}, got {v!r}")
    return problems


def _check_analysis_options(analysis: dict) -> list[str]:
    """String-valued ``[analysis]`` settings: ``"auto"`` and the named choices."""
    problems: list[str] = []
    for k in ("n_shared", "alpha"):
        if isinstance(analysis.get(k), str) and analysis[k] != "auto":
            problems.append(f'[analysis]: {k!r} must be a number or "auto", got {analysis[k]!r}')
    if analysis.get("behavior_metric") not in (None, "correlation", "variance"):
        problems.append(
            f'[analysis]: behavior_metric must be "correlation" or "variance", got '
            f"{analysis['behavior_metric']!r}"
        )
    if analysis.get("selection") not in (None, "best", "1se"):
        problems.append(
            f'[analysis]: selection must be "best" or "1se", got {analysis["selection"]!r}'
        )
    return problems


def _check_defaults(doc: dict, problems: list[str]) -> dict:
    """Check the ``[defaults]`` table (appending to ``problems``); return it (``{}`` if bad)."""
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append("[defaults] must be a table")
        return {}
    for k, v in defaults.items():
        if k in ("subject", "session_id", "path", "day"):
            problems.append(f"[defaults]: {k!r} must be given per session, not as a default")
        elif k not in SESSION_KEYS:
            problems.append(f"[defaults]: unknown key {k!r}")
        elif not _type_ok(v, SESSION_KEYS[k]):
            problems.append(f"[defaults]: {k!r} must be {_type_name(SESSION_KEYS[k])}, got {v!r}")
    return defaults


def _check_entry_keys(label: str, raw: dict) -> list[str]:
    """Required, known and well-typed keys of one ``[[sessions]]`` entry."""
    problems = [
        f"{label}: missing required key {req!r}" for req in ("subject", "path") if req not in raw
    ]
    for k, v in raw.items():
        if k not in SESSION_KEYS:
            problems.append(f"{label}: unknown key {k!r}")
        elif not _type_ok(v, SESSION_KEYS[k]):
            problems.append(f"{label}: {k!r} must be {_type_name(SESSION_KEYS[k])}, got {v!r}")
    return problems


def _entry_format(label: str, entry: dict, base: Path, problems: list[str]) -> str | None:
    """The entry's format (given, or inferred from its path); ``None`` after a problem."""
    fmt = entry.get("format")
    if fmt is None:
        path = _resolve(base, entry["path"])
        fmt = "nwb" if path.suffix.lower() == ".nwb" else "suite2p" if path.is_dir() else None
        if fmt is None:
            problems.append(f"{label}: cannot infer 'format' from {entry['path']!r}; set format")
            return None
    if fmt not in _FORMAT_KEYS:
        problems.append(f"{label}: unknown format {fmt!r} (allowed: {sorted(_FORMAT_KEYS)})")
        return None
    return fmt


def _check_entry_values(label: str, raw: dict, entry: dict, base: Path) -> list[str]:
    """Format-specific keys, existing files and option values of one merged entry."""
    fmt = entry["format"]
    problems = [
        f"{label}: key {k!r} does not apply to format {fmt!r}"
        for k in raw
        if k not in _COMMON and k not in _FORMAT_KEYS[fmt]
    ]
    for k in _PATH_KEYS:
        if k in entry and isinstance(entry[k], str):
            file_path = _resolve(base, entry[k])
            if not file_path.exists():
                problems.append(f"{label}: {k} file not found: {file_path}")
    if entry.get("resample_method") not in (None, "linear", "nearest", "mean"):
        problems.append(f"{label}: resample_method must be linear, nearest or mean")
    if entry.get("extrapolate") not in (None, "error", "nan", "nearest"):
        problems.append(f"{label}: extrapolate must be error, nan or nearest")
    if entry.get("exclude_stimulation") and "stimulation_margin" in entry:
        if entry["stimulation_margin"] < 0:
            problems.append(f"{label}: stimulation_margin must be >= 0")
    return problems


def _check_entry(
    i: int, raw: dict, defaults: dict, base: Path, seen: dict[str, int], problems: list[str]
) -> dict | None:
    """Check entry ``i`` merged with the defaults; return it when loadable, else ``None``.

    Appends to ``problems``; ``seen`` maps session ids already used to their entry index.
    """
    entry = {**{k: v for k, v in defaults.items() if k in SESSION_KEYS}, **raw}
    label = _label(i, entry)
    key_problems = _check_entry_keys(label, raw)
    if key_problems:
        problems.extend(key_problems)
        return None
    fmt = _entry_format(label, entry, base, problems)
    if fmt is None:
        return None
    # defaults that do not apply to this entry's format are ignored
    entry = {k: v for k, v in entry.items() if k in _COMMON or k in _FORMAT_KEYS[fmt]}
    entry["format"] = fmt
    entry_problems = _check_entry_values(label, raw, entry, base)
    sid = entry.get("session_id") or _default_id(entry)
    if sid in seen:
        entry_problems.append(
            f"{label}: duplicate session_id {sid!r} (also sessions[{seen[sid]}])"
        )
    seen.setdefault(sid, i)
    problems.extend(entry_problems)
    return None if entry_problems else entry


def _check_static(doc: dict, base: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """Schema checks; returns problems and the entries (merged with defaults) to load."""
    problems = _check_top_level(doc)
    analysis = doc.get("analysis", {}) if isinstance(doc.get("analysis"), dict) else {}
    problems.extend(_check_analysis_options(analysis))
    problems.extend(_check_analysis_values(analysis))
    defaults = _check_defaults(doc, problems)

    sessions = doc.get("sessions")
    if sessions is None:
        problems.append("no [[sessions]] entries")
        return problems, []
    if not isinstance(sessions, list) or not all(isinstance(s, dict) for s in sessions):
        problems.append("'sessions' must be an array of tables ([[sessions]])")
        return problems, []
    if not sessions:
        problems.append("no [[sessions]] entries")
    to_load: list[tuple[int, dict]] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(sessions):
        entry = _check_entry(i, raw, defaults, base, seen, problems)
        if entry is not None:
            to_load.append((i, entry))
    problems.extend(_subject_problems(sessions))
    problems.extend(_shared_path_problems(to_load, base))
    return problems, to_load


def _subject_problems(sessions: list[dict]) -> list[str]:
    """Subject ids that differ only by case, spaces, separators or leading zeros
    (``"M1"``, ``"m1 "``, ``"m_1"``, ``"m01"``; :func:`fold_subject`): as written they
    are different animals, and an animal split in two leaves the analyses that pair its
    stages.

    One message per entry that does not use the most common spelling (the first on
    ties, a spelling without surrounding spaces first), naming its id, the id it
    likely means and the entries that use that one. Ids that differ otherwise
    (``"m1"`` / ``"m2"``, ``"mouse01"`` / ``"mouse10"``) are different animals.
    """
    spellings: dict[str, dict[str, list[int]]] = {}  # folded id -> spelling -> entries
    for i, e in enumerate(sessions):
        subject = e.get("subject")
        if isinstance(subject, (str, int)) and not isinstance(subject, bool):
            subject = str(subject)
            spellings.setdefault(fold_subject(subject), {}).setdefault(subject, []).append(i)
    problems = []
    for variants in spellings.values():
        if len(variants) < 2:
            continue
        main = max(variants, key=lambda v: (len(variants[v]), v == v.strip()))
        users = variants[main]
        where = ", ".join(_label(j, sessions[j]) for j in users[:3])
        where += f" and {len(users) - 3} more" if len(users) > 3 else ""
        for spelling, entries in variants.items():
            if spelling == main:
                continue
            for i in entries:
                problems.append(
                    f"{_label(i, sessions[i])}: subject {spelling!r} differs from subject "
                    f"{main!r} ({where}) only by case, spaces, separators or leading "
                    f"zeros; did you mean {main!r}? (as written, they are loaded as two "
                    "animals)"
                )
    return problems


def _shared_path_problems(entries: list[tuple[int, dict]], base: Path) -> list[str]:
    """Entries of different subjects that read the same recording (``path``): one file
    or plane is one animal's, so one of them names the wrong file or subject."""
    first: dict[Path, tuple[int, dict]] = {}
    problems = []
    for i, entry in entries:
        where = _resolve(base, entry["path"]).resolve()
        j, other = first.setdefault(where, (i, entry))
        if str(other["subject"]) != str(entry["subject"]):
            problems.append(
                f"{_label(i, entry)}: {where} is also the recording of {_label(j, other)}, "
                f"under subject {str(other['subject'])!r}, not {str(entry['subject'])!r}: "
                "one recording cannot be two animals (a wrong path or subject?)"
            )
    return problems


#: ``_load_entry``'s ``stored`` when the file's header has not been read yet.
_UNREAD = object()


def _load_entry(entry: dict, base: Path, stored=_UNREAD) -> Session:
    """Load one session entry (already schema-checked); raises on data problems.
    ``stored``: the subject id the NWB file's header stores, when already read."""
    path = _resolve(base, entry["path"])
    ident = {
        "subject": str(entry["subject"]),
        "session_id": entry.get("session_id"),
        "day": entry.get("day"),
        "stage": entry.get("stage"),
        "population": entry.get("population"),
    }
    resampling = {
        "resample_method": entry.get("resample_method", "linear"),
        "extrapolate": entry.get("extrapolate", "error"),
    }
    if entry["format"] == "nwb":
        session = _load_nwb(entry, path, ident, resampling, stored)
    else:
        session = _load_suite2p(entry, base, path, ident, resampling)
    session = _replace_tables(session, entry, base, path)
    session = _add_movement_onsets(session, entry, path)
    session = _exclude_stimulation(session, entry)
    session = _drop_bad_units(session, entry, path)
    return _drop_nonfinite(session, entry, path)


def _load_nwb(entry: dict, path: Path, ident: dict, resampling: dict, stored=_UNREAD) -> Session:
    """Read an ``"nwb"`` entry; the session id defaults to ``subject-dayN``.

    The entry's subject replaces the one the file stores (``stored``, read from its
    header unless given; compared with the entry's by :func:`_file_label_conflicts`, so
    not again by ``read_nwb``)."""
    from sharedrep.data import io as sio

    if stored is _UNREAD:
        stored = _file_subject(path, entry.get("cells_only", True))
    session = sio.read_nwb(
        path,
        neural=entry.get("neural"),
        behavior=entry.get("behavior"),
        bin_size=entry.get("bin_size"),
        cells_only=entry.get("cells_only", True),
        min_confidence=entry.get("min_confidence", 0.6),
        max_gap=entry.get("max_gap", 5),
        **resampling,
        **{**ident, "subject": stored or ident["subject"]},
    )
    if session.subject != ident["subject"]:
        session = session.replace(subject=ident["subject"])
    if entry.get("session_id") is None:
        session = session.replace(session_id=_default_id(entry))
    return session


def _file_subject(path: Path, cells_only: bool) -> str | None:
    """The subject id an NWB file stores (read from its header, with the entry's
    ``cells_only``); None when it stores none or the header cannot be read
    (``read_nwb`` then compares the ids)."""
    from sharedrep.data.io import nwb_header

    try:
        return nwb_header.read_nwb_header(path, cells_only=cells_only).subject
    except (DataFormatError, OSError, ImportError, ValueError):
        return None


def _load_suite2p(entry: dict, base: Path, path: Path, ident: dict, resampling: dict) -> Session:
    """Read a ``"suite2p"`` plane, its frame times and behaviour traces; convert to dF/F."""
    from sharedrep.data import io as sio

    plane = sio.read_suite2p(
        path,
        cells_only=entry.get("cells_only", True),
        min_cell_prob=entry.get("min_cell_prob"),
        allow_pickle=entry.get("allow_pickle", True),
    )
    return plane.to_session(
        timestamps=_frame_times(entry, base, path, plane),
        behavior=_behavior_traces(entry, base),
        neuropil_coef=entry.get("neuropil_coef"),  # default: ops["neucoeff"], else 0.7
        baseline_window_s=entry.get("baseline_window_s", 60.0),
        baseline_percentile=entry.get("baseline_percentile", 8.0),
        bouton_threshold=entry.get("bouton_threshold"),
        **resampling,
        **{**ident, "session_id": ident["session_id"] or _default_id(entry)},
    )


def _frame_times(entry: dict, base: Path, path: Path, plane) -> np.ndarray:
    """Frame times (s), shape (n_frames,): from ``frame_times``, ``frame_rate`` or ops.

    Raises :class:`DataFormatError` when the declared and measured rates disagree.
    """
    rate = entry.get("frame_rate")
    if rate is not None and plane.sampling_rate:
        if abs(rate / plane.sampling_rate - 1) > RATE_TOLERANCE:
            raise DataFormatError(
                f"{path}: inconsistent sampling rates: frame_rate = {rate} Hz in the study "
                f"file but ops['fs'] = {plane.sampling_rate} Hz"
            )
    if "frame_times" not in entry:
        return plane.timestamps() if rate is None else np.arange(plane.n_frames) / float(rate)
    times_path = _resolve(base, entry["frame_times"])
    times = load_npy(times_path, "frame times").astype(np.float64).ravel()
    if times.size != plane.n_frames:
        raise DataFormatError(
            f"{times_path}: {times.size} frame times but {plane.n_frames} frames in {path}"
        )
    check_timestamps(times, str(times_path), "frame times")
    declared = [("frame_rate", rate), ("ops['fs']", plane.sampling_rate or None)]
    if times.size > 1:
        measured = 1.0 / float(np.median(np.diff(times)))
        for what, declared_rate in declared:
            if declared_rate is not None and abs(declared_rate / measured - 1) > RATE_TOLERANCE:
                raise DataFormatError(
                    f"{times_path}: inconsistent sampling rates: {what} = {declared_rate} Hz "
                    f"but frame times give {measured:.4g} Hz"
                )
    return times


def _behavior_traces(entry: dict, base: Path) -> list:
    """The behaviour traces of a suite2p entry: the ``lever`` trace, then the ``pose``."""
    from sharedrep.data import io as sio

    traces = []
    if "lever" in entry:
        traces.append(
            sio.read_trace(
                _resolve(base, entry["lever"]),
                sampling_rate=entry.get("lever_sampling_rate"),
                units=entry.get("lever_units", "a.u."),
                names=entry.get("lever_names"),
            )
        )
    if "pose" in entry:
        traces.append(_read_pose(entry, base))
    return traces


def _read_pose(entry: dict, base: Path):
    """Read the ``pose`` file (SLEAP ``.slp``, else DeepLabCut) on its own frame times."""
    from sharedrep.data import io as sio

    pose_path = _resolve(base, entry["pose"])
    time_base = {}
    if "pose_frame_times" in entry:
        time_base["timestamps"] = load_npy(
            _resolve(base, entry["pose_frame_times"]), "pose frame times"
        ).ravel()
    elif "pose_frame_rate" in entry:
        time_base["frame_rate"] = entry["pose_frame_rate"]
    else:
        raise DataFormatError(f"{pose_path}: pose needs pose_frame_rate or pose_frame_times")
    options = {"max_gap": entry.get("max_gap", 5), "bodyparts": entry.get("bodyparts")}
    if pose_path.suffix.lower() == ".slp":
        return sio.read_sleap(
            pose_path, min_score=entry.get("min_likelihood"), **options, **time_base
        )
    return sio.read_dlc(
        pose_path, min_likelihood=entry.get("min_likelihood", 0.6), **options, **time_base
    )


def _replace_tables(session: Session, entry: dict, base: Path, path: Path) -> Session:
    """Replace the file's trials / stimulation tables by the entry's CSV tables, if given."""
    from sharedrep.data import io as sio

    changes = {}
    if "trials" in entry:
        changes["trials"] = sio.read_intervals(_resolve(base, entry["trials"]), "trials")
    if "stimulation" in entry:
        changes["stimulation"] = sio.read_intervals(
            _resolve(base, entry["stimulation"]), "stimulation"
        )
    if not changes:
        return session
    try:
        return session.replace(**changes)
    except (TypeError, ValueError) as err:
        raise DataFormatError(f"{path}: {err}") from None


def _add_movement_onsets(session: Session, entry: dict, path: Path) -> Session:
    """Detect ``movement_onset_time`` after each cue from ``movement_onset_from``, if set."""
    from sharedrep.data.preprocess import detect_movement_onsets

    feature = entry.get("movement_onset_from")
    if feature is None:
        return session
    if feature not in session.behavior_names:
        raise DataFormatError(
            f"{path}: movement_onset_from = {feature!r} is not a behaviour feature "
            f"(have {session.behavior_names})"
        )
    if "cue_time" not in session.trials.columns:
        raise DataFormatError(f"{path}: movement_onset_from needs a trials 'cue_time' column")
    onsets = detect_movement_onsets(
        session.behavior[:, session.behavior_names.index(feature)],
        session.timestamps,
        session.trials["cue_time"].to_numpy(),
        threshold=entry.get("movement_threshold"),
    )
    trials = session.trials.copy()
    trials["movement_onset_time"] = onsets
    return session.replace(trials=trials)


def _exclude_stimulation(session: Session, entry: dict) -> Session:
    """Drop the frames during stimulation (+- ``stimulation_margin`` s) when asked."""
    from sharedrep.data.preprocess import exclusion_mask

    if not (entry.get("exclude_stimulation") and len(session.stimulation)):
        return session
    rate = session.sampling_rate
    mask = exclusion_mask(
        session.timestamps,
        session.stimulation,
        margin=float(entry.get("stimulation_margin", 0.0)),
        frame_duration=1.0 / rate if np.isfinite(rate) else 0.0,
    )
    session = session.mask_samples(mask)
    session.metadata["excluded_stimulation_frames"] = int(mask.sum())
    return session


def _some_columns(bad: list[BadColumn], limit: int = 8) -> str:
    """``"neural unit 3 (column 3): constant (= 0); ..."`` for at most ``limit`` columns."""
    text = "; ".join(b.describe() for b in bad[:limit])
    return text + (f"; and {len(bad) - limit} more" if len(bad) > limit else "")


def _drop_bad_units(session: Session, entry: dict, path: Path) -> Session:
    """Drop the neural units that are all NaN/inf, too large or constant, when
    ``drop_bad_units``, with a warning listing them (session id and unit columns/ids).

    Raises :class:`DataFormatError` naming the file when every unit is bad.
    """
    if not entry.get("drop_bad_units"):
        return session
    bad = [b for b in session.bad_columns() if b.series == "neural"]
    if not bad:
        return session
    if len(bad) == session.n_units:
        raise DataFormatError(
            f"{path}: session {session.session_id!r}: every neural unit is unusable "
            f"({_some_columns(bad)}); nothing is left after drop_bad_units"
        )
    warnings.warn(
        f"session {session.session_id!r} ({path}): drop_bad_units dropped {len(bad)} of "
        f"{session.n_units} neural units: {_some_columns(bad, limit=50)}",
        UserWarning,
        stacklevel=2,
    )
    dropped = session.drop_units([b.index for b in bad])
    dropped.metadata["dropped_bad_units"] = [b.name for b in bad]
    return dropped


def _align_dropped_units(loaded: dict[int, Session], flags: dict[int, bool]) -> list[str]:
    """Drop a unit from every session of its tracked set once one session drops it.

    Sessions with ``drop_bad_units`` of one subject and population that recorded the
    same units (same unit ids before the drop) lose the union of their dropped units,
    so that the analyses can still concatenate them (they need identical unit ids).
    Replaces sessions of ``loaded`` in place; returns problems (every unit dropped).
    """
    groups: dict[tuple, list[int]] = {}
    for i, s in loaded.items():
        if flags.get(i):
            dropped = s.metadata.get("dropped_bad_units", [])
            original = frozenset(map(str, s.unit_ids)) | frozenset(dropped)
            groups.setdefault((s.subject, s.population, original), []).append(i)
    problems = []
    for members in groups.values():
        union = set().union(*(loaded[i].metadata.get("dropped_bad_units", []) for i in members))
        for i in members:
            s = loaded[i]
            extra = [j for j, u in enumerate(s.unit_ids) if str(u) in union]
            if not extra:
                continue
            if len(extra) == s.n_units:
                problems.append(
                    f"session {s.session_id!r}: drop_bad_units leaves no unit (the units "
                    "that are usable here are unusable in other sessions of the subject)"
                )
                continue
            names = [str(s.unit_ids[j]) for j in extra]
            warnings.warn(
                f"session {s.session_id!r}: drop_bad_units also dropped unit(s) {names} "
                "(unusable in another session of the subject; tracked units stay aligned)",
                UserWarning,
                stacklevel=3,
            )
            new = s.drop_units(extra)
            new.metadata["dropped_bad_units"] = list(s.metadata.get("dropped_bad_units", []))
            new.metadata["dropped_bad_units"] += names
            loaded[i] = new
    return problems


def _drop_nonfinite(session: Session, entry: dict, path: Path) -> Session:
    """Drop the samples with NaN or inf (e.g. long pose gaps) when ``drop_nonfinite``.

    Raises :class:`DataFormatError` naming the columns that are NaN/inf everywhere
    (and pointing to ``drop_bad_units``) when no sample would be left.
    """
    if not entry.get("drop_nonfinite"):
        return session
    nonfinite = session.nonfinite_samples()
    if nonfinite.all():
        raise DataFormatError(
            f"{path}: session {session.session_id!r}: drop_nonfinite would drop all "
            f"{session.n_samples} samples: {_nonfinite_culprits(session)}"
        )
    if nonfinite.any():
        session = session.mask_samples(nonfinite)
        session.metadata["dropped_nonfinite_samples"] = int(nonfinite.sum())
    return session


def _nonfinite_culprits(session: Session) -> str:
    """Which columns make every sample of ``session`` non-finite, and what to do."""
    empty = [b for b in session.bad_columns() if b.reason.startswith("NaN/inf")]
    units = [b for b in empty if b.series == "neural"]
    if units:
        fix = (
            "set drop_bad_units = true to drop these units"
            if len(units) < session.n_units
            else "no unit has a finite sample; fix the data"
        )
        return f"{_some_columns(units)}; {fix}"
    if empty:
        return f"{_some_columns(empty)}; fix the data or leave the feature out"
    columns = [
        (float(frac), f"neural unit {uid} (column {j})")
        for j, (uid, frac) in enumerate(
            zip(session.unit_ids, (~np.isfinite(session.neural)).mean(axis=0), strict=True)
        )
    ] + [
        (float(frac), f"behaviour feature {name!r} (column {j})")
        for j, (name, frac) in enumerate(
            zip(session.behavior_names, (~np.isfinite(session.behavior)).mean(axis=0), strict=True)
        )
    ]
    frac, worst = max(columns, key=lambda c: c[0])
    return (
        f"NaN/inf are spread over several columns (the most: {worst}, NaN/inf in "
        f"{frac:.0%} of the samples); fix the data"
    )


def _default_id(entry: dict) -> str:
    return f"{entry['subject']}" + (f"-day{entry['day']}" if "day" in entry else "")


def _entry_files(entry: dict, base: Path) -> str:
    """The files an entry reads, for messages."""
    return ", ".join(
        str(_resolve(base, entry[k])) for k in _PATH_KEYS if isinstance(entry.get(k), str)
    )


class _Labels(NamedTuple):
    """Stage and population of an entry: declared in the study file, else stored in
    its NWB file (read from the file's header, not loaded)."""

    stage: str | None
    population: str | None


def _read_headers(
    todo, base: Path, problems: list | None = None, progress=None
) -> dict[int, NWBHeader]:
    """The headers of the NWB files of the ``(index, entry)`` pairs ``todo``
    (:func:`sharedrep.data.io.nwb_header.read_nwb_header`: labels and shapes, no data
    array is loaded), by entry index.

    ``progress(done, total, label)`` is called before each header (and once at the end);
    an unreadable header is left out (the caller falls back to loading the entry), and
    reported in ``problems`` when given (a missing ``h5py`` is not a problem).
    """
    from sharedrep.data.io import nwb_header

    headers: dict[int, NWBHeader] = {}
    for i, entry in _reported(todo, progress, end_when_empty=False):
        try:
            headers[i] = nwb_header.read_nwb_header(
                _resolve(base, entry["path"]), cells_only=entry.get("cells_only", True)
            )
        except DataFormatError as err:
            if problems is not None:
                problems.append(f"{_label(i, entry)}: {err}")
        except (OSError, ImportError, ValueError):
            continue
    return headers


def _header_labels(entries, headers: dict[int, NWBHeader], fields) -> dict[int, _Labels]:
    """Labels of the entries that do not declare every one of ``fields`` and whose NWB
    header was read (``headers``): as :func:`read_nwb` would give them, the entry's,
    else those stored in the file."""
    return {
        i: _Labels(
            stage=e.get("stage") or headers[i].stage,
            population=e.get("population") or headers[i].population,
        )
        for i, e in entries
        if i in headers and any(e.get(f) is None for f in fields)
    }


#: The labels of an ``"nwb"`` entry compared with those its file stores (the
#: ``Subject``'s ``subject_id``; the day, stage and population written by
#: :func:`sharedrep.data.io.write_nwb`).
_FILE_LABELS = ("subject", "day", "stage", "population")


def _file_label_conflicts(entries, headers: dict[int, NWBHeader]) -> tuple[list[str], list[str]]:
    """Labels of the entries that contradict the labels stored in their NWB files.

    Returns ``(problems, warnings)``: a contradiction that looks like a typo is a
    problem: subjects that differ only by case, spaces, separators or leading zeros
    (as :func:`_subject_problems` judges them), stages and populations that do or are
    :data:`LABEL_SIMILARITY` close (as :func:`_label_problems` judges them). Any other
    (e.g. ``stage = "expert"`` for a file that says ``"novice"``, another day or
    subject id) is taken as a deliberate relabelling, the entry's value being used,
    and is a warning. Each message names the entry, the field, both values and the
    file.
    """
    problems: list[str] = []
    warned: list[str] = []
    for i, entry in entries:
        header = headers.get(i)
        if header is None:
            continue
        for field in _FILE_LABELS:
            mine, theirs = entry.get(field), getattr(header, field)
            if mine is None or theirs is None or str(mine) == str(theirs):
                continue
            text = (
                f"{_label(i, entry)}: {field} {mine!r} in the study file contradicts "
                f"{field} {theirs!r} stored in {header.path}"
            )
            if _looks_like_typo(field, str(mine), str(theirs)):
                problems.append(
                    f"{text}; did you mean {theirs!r}? (write the file's value, or "
                    "point the entry to the right file)"
                )
            else:
                warned.append(f"{text}; the study file's {field} {mine!r} is used")
    return problems, warned


def _looks_like_typo(field: str, label: str, other: str) -> bool:
    """Whether two different values of ``field`` look like spellings of one value:
    the same up to case and surrounding spaces (subjects: also separators and leading
    zeros, :func:`fold_subject`), or (stages, populations) :data:`LABEL_SIMILARITY`
    close. Days and otherwise different subject ids do not."""
    if field == "day":
        return False
    if field == "subject" and fold_subject(label) == fold_subject(other):
        return True
    if fold_label(label) == fold_label(other):
        return True
    return field != "subject" and _closest(label, [other]) is not None


def _reported(todo: list, progress, *, end_when_empty: bool = True):
    """The ``(index, entry)`` pairs of ``todo``, with ``progress(done, total, label)``
    called before each and once after the last (also for an empty ``todo`` unless
    ``end_when_empty`` is False)."""
    for done, (i, entry) in enumerate(todo):
        if progress is not None:
            progress(done, len(todo), _label(i, entry))
        yield i, entry
    if progress is not None and (todo or end_when_empty):
        progress(len(todo), len(todo), "")


def _wanted(entry: dict, only: dict | None, labels: _Labels | None = None) -> bool:
    """Whether to load an entry: its population / stage match ``only``.

    The labels are the entry's, else ``labels`` (read from the NWB file's header). An
    entry whose label is unknown (not declared, header unreadable) is loaded, so that
    the label can be read; the caller filters the loaded sessions.
    """
    if not only:
        return True
    for field, wanted in only.items():
        value = entry.get(field)
        if value is None and labels is not None:
            value = getattr(labels, field)
            if value is None:  # the file stores no label: read_nwb gives None
                return False
        if wanted is not None and value is not None and str(value) != str(wanted):
            return False
    return True


def _load_entries(
    entries, base: Path, problems: list, only, progress, labels=None, stored=None
) -> dict[int, Session]:
    """Load the wanted entries, each problem named after its entry; ``progress(i, n,
    label)`` is called before each load. ``labels``: entry index -> labels read from
    NWB headers (see :func:`_wanted`); ``stored``: entry index -> the subject id its
    NWB header stores, when the header was read already (not read again)."""
    labels, stored = labels or {}, stored or {}
    todo = [(i, entry) for i, entry in entries if _wanted(entry, only, labels.get(i))]
    loaded: dict[int, Session] = {}
    for i, entry in _reported(todo, progress):
        try:
            loaded[i] = _load_entry(entry, base, stored.get(i, _UNREAD))
        except (DataFormatError, FileNotFoundError, ImportError, ValueError, TypeError) as err:
            problems.append(f"{_label(i, entry)}: {err}")
        except (LookupError, OSError) as err:
            # unexpected failure inside a reader (e.g. an IndexError on an unusual
            # file): report it as a problem of this entry and its files
            problems.append(
                f"{_label(i, entry)}: cannot load {_entry_files(entry, base)} "
                f"({type(err).__name__}: {err})"
            )
    return loaded


def _check(path: str | os.PathLike, *, deep: bool = True, only=None, progress=None, headers=True):
    """``(problems, doc, sessions)``; ``headers``: read the labels stored in the NWB
    files (of the entries ``only`` selects, and of those whose labels it needs) from
    their headers, to compare them with the entries' labels and to learn the labels
    the entries do not declare without loading the sessions (shallow checks, a
    selection ``only``); the contradictions taken as deliberate are warned about
    here."""
    p = Path(path)
    if not p.exists():
        return [f"study file not found: {p}"], None, []
    if p.is_dir():
        return [f"{p}: is a directory, expected a TOML study file"], None, []
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return [f"{p}: not a text file (cannot decode as UTF-8)"], None, []
    except tomllib.TOMLDecodeError as err:
        return [f"{p}: invalid TOML: {err}"], None, []
    base = p.resolve().parent
    problems, entries = _check_static(doc, base)
    labels, stored = (
        _header_checks(entries, base, problems, deep, only, progress) if headers else ({}, {})
    )
    loaded: dict[int, Session] = {}
    if deep:
        loaded = _load_entries(entries, base, problems, only, progress, labels, stored)
        flags = {i: bool(entry.get("drop_bad_units")) for i, entry in entries}
        problems.extend(_align_dropped_units(loaded, flags))
    sessions = list(loaded.values())
    if deep:
        problems.extend(_cross_checks(sessions))
    known = {**labels, **loaded}  # the labels of every session that is known
    if not only:  # with a selection, the sessions left unloaded would be missed here
        problems.extend(_choice_checks(doc, known))
        problems.extend(_stage_order_problems(doc, known))
    problems.extend(_label_problems(doc, known))
    if not only:  # a selection holds part of each animal's stages
        for message in _split_animal_warnings(entries, known):
            warnings.warn(message, UserWarning, stacklevel=3)
    if deep:
        an = doc.get("analysis")
        problems.extend(_analysis_data_checks(an if isinstance(an, dict) else {}, sessions))
    return problems, doc, sessions


#: How close (:class:`difflib.SequenceMatcher` ratio, case-folded) two subject ids whose
#: sessions share no stage must be to be reported as one animal perhaps split in two by a
#: typo ("mosue03" / "mouse03": 0.86); "m1" / "m2" (0.5) are not.
SUBJECT_SIMILARITY = 0.8


def _split_animal_warnings(entries, known: dict) -> list[str]:
    """Pairs of subjects with close ids (:data:`SUBJECT_SIMILARITY`) whose sessions share
    no stage, e.g. the novice days under ``"mouse03"`` and the expert days under
    ``"mosue03"``: if they are one animal, a typo split it in two and every analysis that
    pairs stages within a mouse leaves both out. A warning, not a problem: two animals
    with close ids may each have been imaged at one stage only."""
    stages: dict[str, set] = {}
    for i, entry in entries:
        stage = getattr(known.get(i), "stage", None) or entry.get("stage")
        if entry.get("subject") is not None and isinstance(stage, str):
            stages.setdefault(str(entry["subject"]), set()).add(stage)
    out = []
    names = sorted(stages)
    for k, a in enumerate(names):
        for b in names[k + 1 :]:
            if stages[a] & stages[b] or closest_label(a, [b], SUBJECT_SIMILARITY) is None:
                continue
            out.append(
                f"subjects {a!r} (stages {sorted(stages[a])}) and {b!r} (stages "
                f"{sorted(stages[b])}) have close ids and no stage in common: if they are "
                "one animal, correct the subject id (as written they are two animals, and "
                "the analyses that pair stages within a mouse use neither)"
            )
    return out


def _header_checks(entries, base: Path, problems: list, deep: bool, only, progress):
    """Read the NWB headers :func:`_check` needs; compare the labels stored there with
    the entries' (contradictions: typos to ``problems``, the rest warned about) and
    return ``(labels, subjects)``: the labels the shallow checks or a selection ``only``
    need, and the subject id each header read stores (None: none stored), by entry."""
    fields = ("stage", "population") if not deep else tuple(only or ())
    todo = [
        (i, e)
        for i, e in entries
        if e.get("format") == "nwb" and (_wanted(e, only) or any(e.get(f) is None for f in fields))
    ]
    shallow = not deep
    found = _read_headers(todo, base, problems if shallow else None, progress if shallow else None)
    conflicts, relabelled = _file_label_conflicts(entries, found)
    problems.extend(conflicts)
    for message in relabelled:
        warnings.warn(message, UserWarning, stacklevel=4)
    labels = _header_labels(entries, found, fields) if fields else {}
    return labels, {i: header.subject for i, header in found.items()}


def _choice_checks(doc: dict, loaded: dict[int, Session | _Labels]) -> list[str]:
    """``[analysis]`` populations / stages that no session of the study has.

    A session's population (stage) is the one of the study file, else (NWB) the one of
    the loaded file or of its header (``loaded`` maps entry index -> session or
    :class:`_Labels`); when some session has neither (not declared and not read) the
    names cannot be checked and are not reported.
    """
    an, raw, defaults = doc.get("analysis"), doc.get("sessions"), doc.get("defaults", {})
    if not isinstance(an, dict) or not isinstance(raw, list):
        return []
    if not all(isinstance(e, dict) for e in raw):
        return []
    defaults = defaults if isinstance(defaults, dict) else {}
    problems: list[str] = []
    fields = (
        ("population", "populations", ("stim_population", "activation_population")),
        ("stage", "stages", ()),
    )
    for field, plural, single in fields:
        present: set = set()
        known = True
        for i, e in enumerate(raw):
            if i in loaded:
                v = getattr(loaded[i], field)
            else:
                v = e.get(field, defaults.get(field))
                known &= v is not None
            if v is not None:
                present.add(v)
        if not known:
            continue
        have = sorted(map(str, present))
        for v in an.get(plural, []) if isinstance(an.get(plural), list) else []:
            if v not in present:
                problems.append(
                    f"[analysis]: {plural} lists {v!r} but no session has it ({plural} of "
                    f"the study: {have})"
                )
        for key in single:
            if isinstance(an.get(key), str) and an[key] not in present:
                problems.append(
                    f"[analysis]: {key} = {an[key]!r} is not a {field} of the study "
                    f"({plural}: {have})"
                )
    return problems


def _unknown_order(labels) -> list:
    """The stage labels whose place in the learning order is unknown (``[]``: none).

    The rule by which the analyses' ``ordered_stages`` (:mod:`sharedrep.study._common`)
    refuses stages without ``[analysis] stages``: every label other than
    :data:`STAGE_ORDER` when there are several labels (a single label needs no order).
    Missing labels (no stage) are ignored.
    """
    labels = [v for v in dict.fromkeys(labels) if not is_missing(v)]
    unknown = [v for v in labels if v not in STAGE_ORDER]
    return unknown if len(labels) > 1 else []


def _first_days(doc: dict, loaded: dict[int, Session | _Labels]) -> dict:
    """``{stage: earliest day of its sessions}`` (stages of sessions with a day)."""
    raw, defaults = doc.get("sessions"), doc.get("defaults", {})
    defaults = defaults if isinstance(defaults, dict) else {}
    days: dict = {}
    for i, (_, values) in enumerate(_entry_labels(doc, loaded)):
        day = getattr(loaded.get(i), "day", None)
        day = raw[i].get("day", defaults.get("day")) if day is None else day
        if "stage" in values and _is_int(day):
            days[values["stage"]] = min(day, days.get(values["stage"], day))
    return days


def _no_order_problem(unknown: list, stages: list, days: dict) -> str:
    """The problem of the stages ``unknown`` without ``[analysis] stages`` (``stages``:
    those to list, here ordered by their first day, ``{stage: day}``)."""
    example = sorted(stages, key=lambda st: days.get(st, math.inf))
    typos = [f"{v!r}: did you mean {g!r}?" for v in unknown if (g := _closest(v, STAGE_ORDER))]
    return (
        f"[analysis]: the learning order of the stage{'s' if len(unknown) > 1 else ''} "
        f"{', '.join(map(repr, unknown))} is unknown (only novice, intermediate and expert "
        "have a known order), so the analyses, which compare the stages in learning order, "
        "would stop; list every stage in learning order, the first before learning and the "
        "last after it, in the [analysis] table: stages = "
        f"{json.dumps(example, ensure_ascii=False)} (here by first day: check the order)"
        + (f", or correct the misspelt stages ({'; '.join(typos)})" if typos else "")
    )


def _stage_order_problems(doc: dict, loaded: dict[int, Session | _Labels]) -> list[str]:
    """Stages whose learning order the analyses need but cannot know (they would stop).

    Without ``[analysis] stages``: the stages of every session (:func:`_unknown_order`).
    With the list, a stage it leaves out is a deliberate selection: every analysis leaves
    its sessions out, naming them. A label reported as a misspelling
    (:func:`_label_problems`) is left to that problem: once it is corrected, the order is
    checked on the stages as they then are.
    """
    an = doc.get("analysis") if isinstance(doc.get("analysis"), dict) else {}
    if an.get("stages") is not None:
        return []
    used = _label_counts(_entry_labels(doc, loaded), "stage")
    stages = [v for v in used if _misspelling(v, used, None) is None]
    unknown = _unknown_order(stages)
    return [_no_order_problem(unknown, stages, _first_days(doc, loaded))] if unknown else []


#: How close (:class:`difflib.SequenceMatcher` ratio of the case-folded labels) a stage
#: or population must be to another one to be reported as its likely misspelling:
#: "novcie" / "novice" (0.83) and "expret" / "expert" (0.83) are, "day1" / "day2" (0.75)
#: and "m1" / "m2" (0.5) are not.
LABEL_SIMILARITY = 0.8


def _closest(label: str, candidates) -> str | None:
    """The candidate most similar to ``label`` (case-folded) if at least
    :data:`LABEL_SIMILARITY` similar, else ``None``."""
    return closest_label(label, candidates, LABEL_SIMILARITY)


def _entry_labels(doc: dict, loaded: dict[int, Session | _Labels]) -> list[tuple[str, dict]]:
    """``(entry label, {"stage": ..., "population": ...})`` per ``[[sessions]]`` entry:
    the loaded session's (or NWB header's) values, else the entry's (or ``[defaults]``)
    ones."""
    raw, defaults = doc.get("sessions"), doc.get("defaults", {})
    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        return []
    defaults = defaults if isinstance(defaults, dict) else {}
    out = []
    for i, e in enumerate(raw):
        values = {}
        for field in ("stage", "population"):
            v = getattr(loaded[i], field) if i in loaded else e.get(field, defaults.get(field))
            if isinstance(v, str):
                values[field] = v
        out.append((_label(i, e), values))
    return out


def _label_counts(entries: list[tuple[str, dict]], field: str) -> dict[str, int]:
    """``{label: sessions}`` of ``field`` (of :func:`_entry_labels`), by first use."""
    used: dict[str, int] = {}
    for _, values in entries:
        if field in values:
            used[values[field]] = used.get(values[field], 0) + 1
    return used


def _listed(an: dict, plural: str) -> list[str] | None:
    """``[analysis] stages`` (``populations``) when it is a list of labels, else None."""
    listed = an.get(plural)
    ok = isinstance(listed, list) and all(isinstance(x, str) for x in listed)
    return listed if ok else None


def _misspelling(label: str, used: dict[str, int], listed: list | None) -> str | None:
    """The label that ``label`` looks like a misspelling of (see :func:`_label_problems`),
    or None: with the list ``listed``, a listed one close to an unlisted ``label``;
    without, one of more sessions (``used``: sessions per label) that differs from it
    only by case or spaces, or, for a label of one session only, is close to it."""
    if listed is not None:
        return None if label in listed else _closest(label, listed)
    if (main := _main_spelling(label, used)) != label:
        return main
    if used[label] == 1:
        return _closest(label, [u for u, n in used.items() if n > 1])
    return None


def _label_problems(doc: dict, loaded: dict[int, Session | _Labels]) -> list[str]:
    """Stages and populations that look like misspellings of another label.

    With ``[analysis] stages`` (``populations``): a session whose label is not listed
    but close to a listed one (see :data:`LABEL_SIMILARITY`); such a session would
    silently leave the analyses of that label. Without the list: a label used by a
    single session and close to a label used by more sessions, or a label that differs
    from a more used one only by case or spaces (``"Novice"`` and ``"novice"``). Labels
    far from every other (e.g. "intermediate" when ``stages = ["novice", "expert"]``)
    are deliberate.
    """
    an = doc.get("analysis") if isinstance(doc.get("analysis"), dict) else {}
    entries = _entry_labels(doc, loaded)
    problems = []
    for field, plural in (("stage", "stages"), ("population", "populations")):
        listed = _listed(an, plural)
        used = _label_counts(entries, field)
        for label, values in entries:
            v = values.get(field)
            guess = None if v is None else _misspelling(v, used, listed)
            if guess is None:
                continue
            if listed is not None:
                problems.append(
                    f"{label}: {field} {v!r} is not in [analysis] {plural} {listed}; "
                    f"did you mean {guess!r}? (as written, this session is left out "
                    f"of the {guess!r} analyses)"
                )
            elif fold_label(guess) == fold_label(v):
                problems.append(
                    f"{label}: {field} {v!r} differs from {guess!r} ({used[guess]} sessions) "
                    f"only by case or spaces; did you mean {guess!r}? (as written they are "
                    f"different {plural}; list the intended ones in [analysis] {plural})"
                )
            else:
                problems.append(
                    f"{label}: {field} {v!r} is used by this session only and is "
                    f"close to {guess!r} ({used[guess]} sessions); did you mean "
                    f"{guess!r}? (list the intended {plural} in [analysis] {plural})"
                )
    return problems


def _main_spelling(label: str, used: dict[str, int]) -> str:
    """The most used of the labels in ``used`` (label -> sessions) that equal ``label``
    up to case and surrounding spaces (ties: the first seen); ``label`` itself if none
    other does."""
    same = [u for u in used if fold_label(u) == fold_label(label)]
    return max(same, key=lambda u: used[u]) if len(same) > 1 else label


def _analysis_data_checks(an: dict, sessions: list[Session]) -> list[str]:
    """``[analysis]`` settings that must agree with the loaded sessions."""
    problems: list[str] = []
    lever = an.get("lever")
    if isinstance(lever, str):
        # the behaviour analyses read the lever of every session with trials
        lacking = [s for s in sessions if len(s.trials) and lever not in s.behavior_names]
        if lacking:
            ids = ", ".join(repr(s.session_id) for s in lacking[:3])
            more = f" and {len(lacking) - 3} more" if len(lacking) > 3 else ""
            problems.append(
                f"[analysis]: lever = {lever!r} is not a behaviour feature of session(s) "
                f"{ids}{more} (features of {lacking[0].session_id!r}: "
                f"{lacking[0].behavior_names})"
            )
    k = an.get("n_shared")
    if _is_int(k) and k >= 1:
        small = [s for s in sessions if 0 < s.n_behavior < k]
        if small:
            s = min(small, key=lambda x: x.n_behavior)
            problems.append(
                f"[analysis]: n_shared = {k} exceeds the number of behaviour features "
                f"({s.n_behavior} in session {s.session_id!r}: {s.behavior_names})"
            )
    return problems


def _cross_checks(sessions: list[Session]) -> list[str]:
    """Problems between loaded sessions (rates, behaviour names/units) and within each."""
    problems = _rate_problems(sessions) + _behavior_label_problems(sessions)
    for s in sessions:
        problems.extend(_session_data_problems(s))
    return problems


def _rate_problems(sessions: list[Session]) -> list[str]:
    """One message when some sampling rates (Hz) differ from the most common one."""
    # reference: the rate shared (within tolerance) by most sessions; first on ties
    ref, same_sessions, off_sessions = _split_rates(sessions)
    if not off_sessions:
        return []
    same = [s.session_id for s in same_sessions]
    detail = ", ".join(f"{s.session_id!r} {s.sampling_rate:.4g} Hz" for s in off_sessions)
    return [
        f"inconsistent sampling rates: {len(same)} session(s) at {ref:.4g} Hz "
        f"({', '.join(map(repr, same[:5]))}{' ...' if len(same) > 5 else ''}) but "
        f"{detail} (lags and time constants would mean different things; resample "
        "first)"
    ]


def _behavior_label_problems(sessions: list[Session]) -> list[str]:
    """With several subjects: sessions whose behaviour names or units differ from the
    first subject's first session."""
    first_of_subject: dict[str, Session] = {}
    for s in sessions:
        first_of_subject.setdefault(s.subject, s)
    if len(first_of_subject) <= 1:
        return []
    ref = next(iter(first_of_subject.values()))
    ref_units = dict(zip(ref.behavior_names, ref.behavior_units, strict=True))
    problems = []
    for s in sessions:
        if set(s.behavior_names) != set(ref.behavior_names):
            extra = sorted(set(s.behavior_names) - set(ref.behavior_names))
            missing = sorted(set(ref.behavior_names) - set(s.behavior_names))
            problems.append(
                f"behaviour names differ across subjects: session {s.session_id!r} "
                f"(subject {s.subject!r}) vs {ref.session_id!r} (subject {ref.subject!r}): "
                f"extra {extra}, missing {missing}"
            )
            continue
        diff = [
            n
            for n, unit in zip(s.behavior_names, s.behavior_units, strict=True)
            if ref_units[n] != unit
        ]
        if diff:
            problems.append(
                f"behaviour units differ: session {s.session_id!r} vs "
                f"{ref.session_id!r} for {diff}"
            )
    return problems


def _session_data_problems(s: Session) -> list[str]:
    """Trials outside the recording (another time unit?) and NaN/inf samples of one session."""
    problems = []
    if len(s.trials) and s.n_samples:
        t0, t1 = float(s.timestamps[0]), float(s.timestamps[-1])
        start = pd.to_numeric(s.trials["start_time"], errors="coerce").to_numpy(float)
        stop = pd.to_numeric(s.trials["stop_time"], errors="coerce").to_numpy(float)
        if not np.any((stop >= t0) & (start <= t1)):
            problems.append(
                f"session {s.session_id!r}: none of its {len(s.trials)} trials "
                f"({np.nanmin(start):.6g}..{np.nanmax(stop):.6g} s) overlaps the "
                f"recording ({t0:.6g}..{t1:.6g} s): trial times in another unit or time "
                "base (e.g. milliseconds)?"
            )
    columns = s.bad_columns()
    problems.extend(_bad_column_problems(s, columns))
    # samples with NaN/inf, among the columns that have some finite samples (columns
    # NaN/inf everywhere are reported above: dropping samples cannot help them)
    empty = {(b.series, b.index) for b in columns if b.reason.startswith("NaN/inf")}
    keep_n = [j for j in range(s.n_units) if ("neural", j) not in empty]
    keep_b = [j for j in range(s.n_behavior) if ("behavior", j) not in empty]
    bad = ~np.isfinite(s.neural[:, keep_n]).all(axis=1)
    bad |= ~np.isfinite(s.behavior[:, keep_b]).all(axis=1)
    if bad.any() and keep_n:
        problems.append(
            f"session {s.session_id!r}: {int(bad.sum())} of {s.n_samples} samples have "
            "NaN/inf (e.g. long pose gaps); set drop_nonfinite = true or fix the data"
        )
    return problems


def _bad_column_problems(s: Session, columns: list[BadColumn]) -> list[str]:
    """One message for the unusable neural units of ``s`` (all NaN/inf, too large,
    constant: see :meth:`Session.bad_columns`), one for its unusable behaviour
    features; each names the session, its file and every column."""
    source = s.metadata.get("source")
    where = f"session {s.session_id!r}" + (f" ({source})" if source else "")
    units = [b for b in columns if b.series == "neural"]
    features = [b for b in columns if b.series == "behavior"]
    problems = []
    if units:
        series = s.metadata.get("neural_source") or s.metadata.get("neural_kind") or "neural"
        problems.append(
            f"{where}: {len(units)} of {s.n_units} neural units of {series!r} cannot be "
            f"used: {_some_columns(units, limit=20)}; set drop_bad_units = true to drop "
            "them"
        )
    if features:
        problems.append(
            f"{where}: behaviour feature(s) cannot be used: "
            f"{_some_columns(features, limit=20)}; fix the data or leave the session out "
            "(behaviour features must be the same in every session)"
        )
    return problems


def validate_study(path: str | os.PathLike, *, deep: bool = True, progress=None) -> list[str]:
    """Check a study file and every session it lists; report all problems at once.

    Checks: TOML syntax; unknown or mistyped keys; missing required keys; unknown
    formats; files that do not exist; duplicate session ids; ``[analysis]`` values out
    of the range the analyses accept (e.g. ``fdr`` in (0, 1), ``cv >= 2``,
    ``n_bootstrap >= 2``, at least 2 distinct ``profile_lags``, ``days_per_stage >= 1``);
    ``populations``, ``stages``, ``stim_population`` and ``activation_population`` that
    no session has; then (``deep``) loads every session and reports unreadable/truncated
    files, mismatched lengths, non-monotonic timestamps, sampling rates inconsistent
    across sessions or with the declared ``frame_rate``, behaviour names or units that
    differ across subjects, NaN samples, a ``lever`` that is not a behaviour feature of
    the sessions with trials, and ``n_shared`` above the number of behaviour features.
    Stages and populations that look like typos: not in ``[analysis] stages`` /
    ``populations`` but close to a listed label (:data:`LABEL_SIMILARITY`), or, without
    those lists, used by one session only and close to another session's label.
    Stages whose learning order the analyses need and cannot know, so that they would
    stop: without ``[analysis] stages``, several stages of which one is not novice,
    intermediate or expert (:data:`STAGE_ORDER`; the message gives the list to add; with
    the list, a stage it leaves out is a selection: the analyses leave its sessions out).
    Unusable columns (:meth:`sharedrep.Session.bad_columns`: neural units and behaviour
    features NaN/inf in every sample, constant, or beyond
    :data:`sharedrep.data.session.MAX_ABS_VALUE`), naming session, file and column;
    ``drop_bad_units = true`` drops such neural units at load time instead.
    Subject ids that differ only by case, spaces, separators or leading zeros, and one recording
    listed under two subjects. The labels of NWB entries that contradict those stored
    in their files (see *Labels* in :mod:`sharedrep.data.studyfile`: typo-like ones
    are problems, the others a :class:`UserWarning`).
    The headers of the NWB files are read (:func:`sharedrep.data.io.nwb_header.
    read_nwb_header`: labels and shapes only, no data array is loaded) to compare their
    labels, and, when not ``deep``, to learn the populations and stages stored only in
    the files, so that their typos and the ``[analysis]`` names no session has are found
    by the shallow check too; an NWB file whose header cannot be read is then reported
    (without ``h5py`` the labels are left unchecked).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.toml`` study file.
    deep : bool, default True
        Also load every session (slower; catches data problems).
    progress : callable or None
        ``progress(done, total, label)``, called before each session is loaded (when
        not ``deep``: before each NWB header is read), and once at the end with
        ``done == total``, e.g. to show a progress bar.

    Returns
    -------
    list of str
        One human-readable message per problem, each naming the session entry and
        file; empty if the study is valid.
    """
    problems, _, _ = _check(path, deep=deep, progress=progress)
    return problems


def declared_labels(path: str | os.PathLike) -> dict[str, list[str]]:
    """Populations and stages of the study file's entries (no data array is read).

    A label an NWB entry does not declare is read from its file's header. Returns
    ``{"populations": [...], "stages": [...]}`` in order of first appearance.
    """
    problems, doc, _ = _check(path, deep=False, headers=False)
    if doc is None:
        raise StudyError(str(path), problems)
    base = Path(path).resolve().parent
    _, entries = _check_static(doc, base)
    fields = ("stage", "population")
    todo = [(i, e) for i, e in entries if e.get("format") == "nwb"]
    todo = [(i, e) for i, e in todo if any(e.get(f) is None for f in fields)]
    stored = _header_labels(entries, _read_headers(todo, base), fields)
    out: dict[str, list[str]] = {"populations": [], "stages": []}
    for i, entry in entries:
        labels = stored.get(i, _Labels(entry.get("stage"), entry.get("population")))
        for value, plural in ((labels.population, "populations"), (labels.stage, "stages")):
            if value is not None and str(value) not in out[plural]:
                out[plural].append(str(value))
    return out


def load_study(
    path: str | os.PathLike, *, population=None, stage=None, progress=None
) -> SessionCollection:
    """Load the sessions of a study file (all, or those of one population / stage).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.toml`` study file.
    population, stage : str or None
        Load only the sessions of this population (stage): entries that declare another
        one are not read at all, nor are NWB entries whose file stores another one (its
        header is read to learn the label, see
        :func:`sharedrep.data.io.nwb_header.read_nwb_header`; an unreadable header
        makes the entry load). The collection then holds exactly the matching sessions,
        and the checks that need the whole study (e.g. ``[analysis] populations`` that
        no session has) are left to :func:`validate_study`.
    progress : callable or None
        As in :func:`validate_study`.

    Returns
    -------
    SessionCollection
        Sessions in file order, with ``name`` (``[study] name``), ``analysis`` (the
        ``[analysis]`` table; ``output`` resolved to an absolute path) and ``source``.

    Raises
    ------
    StudyError
        A :class:`ValueError` listing every problem found by :func:`validate_study`.

    Warns
    -----
    UserWarning
        An NWB entry's subject, day, stage or population contradicts the file's and
        does not look like a typo: the entry's value is used (see *Labels* in
        :mod:`sharedrep.data.studyfile`).
    """
    only = {"population": population, "stage": stage}
    only = {k: v for k, v in only.items() if v is not None}
    problems, doc, sessions = _check(path, deep=True, only=only, progress=progress)
    if problems:
        raise StudyError(str(path), problems)
    for field, wanted in only.items():
        sessions = [s for s in sessions if getattr(s, field) == wanted]
    base = Path(path).resolve().parent
    analysis = dict(doc.get("analysis", {}))
    if "output" in analysis:
        analysis["output"] = str(_resolve(base, analysis["output"]))
    study = doc.get("study", {})
    return SessionCollection(
        sessions, name=study.get("name"), analysis=analysis, source=str(Path(path).resolve())
    )
