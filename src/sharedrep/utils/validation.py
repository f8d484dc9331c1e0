"""Input validation at the public boundary of every entry point.

Every message names the subject, the array and the expected shape. Inputs are never
modified: arrays are converted to float64 (a copy only when the dtype differs). Missing
values marked otherwise than by NaN (the masked entries of a numpy masked array,
``pd.NA`` in a pandas nullable numeric column) become NaN, so ``nan_policy`` treats them
as it treats NaN.
"""

from __future__ import annotations

import difflib
import numbers
import re
import warnings
from collections import Counter

import numpy as np
import pandas as pd

from sharedrep.utils.parallel import thread_map

__all__ = [
    "closest_label",
    "fold_label",
    "as_subject_list",
    "check_subject_arrays",
    "check_groups",
    "check_trial_ids",
    "check_array",
    "check_column_names",
    "check_finite",
    "column_names",
    "common_column_names",
]


def as_subject_list(data, name: str) -> list:
    """Turn ``data`` into a list with one entry per subject.

    A list or tuple is taken as one entry per subject; a single 2-D array is one subject;
    a 3-D array is split along its first axis.
    """
    if isinstance(data, list | tuple):
        if len(data) == 0:
            raise ValueError(f"{name} is an empty list: give one array per subject")
        return list(data)
    if isinstance(data, np.ndarray):
        if data.ndim == 2:
            return [data]
        if data.ndim == 3:
            return list(data)
        raise ValueError(
            f"{name} must be a list with one (T_s, n) array per subject; "
            f"got an array of shape {data.shape}"
        )
    raise TypeError(
        f"{name} must be a list with one 2-D array per subject; got {type(data).__name__}"
    )


def check_array(
    a, name: str, subject: int | None, *, ndim: int = 2, allow_nonfinite: bool = False
) -> np.ndarray:
    """Convert one array to float64 and check its dimensionality and values.

    The masked entries of a numpy masked array and the missing values (``pd.NA``) of a
    pandas object with nullable numeric dtypes (``"Float64"``, ``"Int64"``...) become NaN:
    refused unless ``allow_nonfinite``, like any NaN. ``a`` itself is never modified.
    """
    where = f"subject {subject}: {name}" if subject is not None else name
    a = _missing_as_nan(a)
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged nested lists and the like
        raise ValueError(f"{where} could not be converted to a numeric array: {exc}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{where} must be numeric; got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{where} must be real-valued; got dtype {arr.dtype}")
    if arr.ndim != ndim:
        expected = "(T, n_units)" if "neural" in name else "(T, n_features)"
        if ndim == 1:
            expected = "(T,)"
        raise ValueError(f"{where} must be {ndim}-D with shape {expected}; got shape {arr.shape}")
    arr = np.asarray(arr, dtype=np.float64)
    if not allow_nonfinite and not np.all(np.isfinite(arr)):
        raise nonfinite_error(where, np.argwhere(~np.isfinite(arr))[0])
    return arr


def _missing_as_nan(a):
    """A float64 copy of ``a`` with its missing entries as NaN, or ``a`` itself.

    Only for a numeric numpy masked array (masked entries; ``np.asarray`` would drop the
    mask and keep the hidden values) and a pandas object whose columns are all real
    numeric with at least one nullable extension dtype (``pd.NA``; ``np.asarray`` would
    give dtype object). Anything else is returned as it is, for the usual checks.
    """
    if isinstance(a, np.ma.MaskedArray):
        if np.issubdtype(a.dtype, np.complexfloating) or not (
            np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.bool_)
        ):
            return a
        return np.ma.filled(a.astype(np.float64), np.nan)
    if isinstance(a, pd.DataFrame | pd.Series):
        dtypes = list(a.dtypes) if isinstance(a, pd.DataFrame) else [a.dtype]
        nullable = any(isinstance(dt, pd.api.extensions.ExtensionDtype) for dt in dtypes)
        numeric = all(
            pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_complex_dtype(dt)
            for dt in dtypes
        )
        if nullable and numeric:
            return a.to_numpy(dtype=np.float64, na_value=np.nan)
    return a


def check_same_features(n_features: int, first: int, subject, first_subject) -> None:
    """Every subject's behaviour has the first subject's number of features."""
    if n_features != first:
        raise ValueError(
            f"subject {subject}: behavior has {n_features} features but subject "
            f"{first_subject} has {first}; every subject needs the same behavioural features"
        )


def is_missing(value) -> bool:
    """Whether a table cell is missing (None, NaN, NaT, ``pd.NA``); list-like cells are not."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def nonfinite_error(where: str, index) -> ValueError:
    """The error for an array with NaN or inf, ``index`` the first such position."""
    return ValueError(
        f"{where} contains NaN or inf (first at index {tuple(int(i) for i in index)}); "
        "clean it or pass nan_policy='omit' to drop those samples"
    )


def check_groups(groups, n_subjects: int, n_samples: list[int], *, subject_ids=None) -> list:
    """Validate trial ids: ``None`` or one 1-D array of length ``T_s`` per subject.

    Every sample needs an id: NaN (or NaT) ids are refused (see :func:`check_trial_ids`).

    ``subject_ids`` (optional, one label per entry) names the subjects in error messages
    (default ``0..n_subjects-1``), e.g. the model index of a subject being added.
    """
    ids = _subject_ids(subject_ids, n_subjects)
    if groups is None:
        return [None] * n_subjects
    if isinstance(groups, np.ndarray) and groups.ndim == 1 and n_subjects == 1:
        groups = [groups]
    if not isinstance(groups, list | tuple):
        raise TypeError(
            f"groups must be None or a list with one trial-id array per subject; "
            f"got {type(groups).__name__}"
        )
    if len(groups) != n_subjects:
        raise ValueError(
            f"groups has {len(groups)} entries but there are {n_subjects} subjects: give "
            "one trial-id array (or None) per subject"
        )
    out = []
    for s, g, T in zip(ids, groups, n_samples, strict=True):
        if g is None:
            out.append(None)
            continue
        arr = np.asarray(g)
        if arr.ndim != 1 or arr.shape[0] != T:
            raise ValueError(
                f"subject {s}: groups must have shape ({T},) to match neural; got {arr.shape}"
            )
        out.append(check_trial_ids(arr, s))
    return out


def check_trial_ids(arr: np.ndarray, subject) -> np.ndarray:
    """One subject's trial ids ``(T,)``, with every sample's id present.

    Ids held as Python objects (e.g. a pandas column) become a string or integer array
    (:func:`object_trial_ids`); a missing id (NaN, NaT) is refused, naming the subject and
    its first position: lag windows and folds cannot place a sample without a trial.
    """
    if arr.dtype == object:  # e.g. a pandas column of strings
        return object_trial_ids(arr, subject)
    if np.issubdtype(arr.dtype, np.inexact):
        missing, what = np.isnan(arr), "NaN"
    elif arr.dtype.kind in "mM":  # datetime64 / timedelta64
        missing, what = np.isnat(arr), "NaT"
    else:
        return arr
    bad = np.flatnonzero(missing)
    if bad.size:
        raise ValueError(
            f"subject {subject}: groups must hold a trial id for every sample; got {what} "
            f"at index {bad[0]} ({bad.size} of {arr.size} samples; missing trial ids?)"
        )
    return arr


def object_trial_ids(arr: np.ndarray, subject) -> np.ndarray:
    """Trial ids held as Python objects (e.g. read by pandas) as a string or integer array."""
    values = arr.tolist()
    kinds = {type(v) for v in values}
    if kinds and all(issubclass(k, str) for k in kinds):
        return arr.astype(str)
    if kinds and all(issubclass(k, int) and not issubclass(k, bool) for k in kinds):
        return arr.astype(np.int64)
    found = ", ".join(sorted(k.__name__ for k in kinds))
    first = next((i for i, v in enumerate(values) if is_missing(v)), None)
    if first is not None:
        hint = f" (missing trial ids? first at index {first})"
    else:
        hint = " (missing trial ids?)" if kinds & {float, type(None)} else ""
    raise TypeError(
        f"subject {subject}: groups must hold integer or string trial ids (one kind); got "
        f"objects of type {found}{hint}"
    )


def _subject_ids(subject_ids, n_subjects: int) -> list:
    if subject_ids is None:
        return list(range(n_subjects))
    ids = list(subject_ids)
    if len(ids) != n_subjects:
        raise ValueError(f"subject_ids has {len(ids)} entries but there are {n_subjects} subjects")
    return ids


def check_subject_arrays(
    neural,
    behavior,
    groups=None,
    *,
    nan_policy: str = "raise",
    subject_ids=None,
    n_features: int | None = None,
):
    """Validate the per-subject neural and behaviour lists of ``fit``-like methods.

    Parameters
    ----------
    neural, behavior : list of array-like
        One ``(T_s, N_s)`` and one ``(T_s, p)`` array per subject.
    groups : list of array-like (T_s,) or None
    nan_policy : {"raise", "omit"}
    subject_ids : sequence or None
        Label of each entry in error messages (default ``0..S-1``); e.g. ``[n_subjects_]``
        for a subject being added to a fitted model, or the model indices given to
        ``score``.
    n_features : int or None
        Expected number of behaviour features ``p`` (e.g. the fitted model's); ``None``
        only requires every subject to have the same count.

    Returns
    -------
    neural : list of float64 ndarray (T_s, N_s)
    behavior : list of float64 ndarray (T_s, p)
    groups : list of ndarray (T_s,) or None
    """
    if nan_policy not in ("raise", "omit"):
        raise ValueError(f"nan_policy must be 'raise' or 'omit'; got {nan_policy!r}")
    allow = nan_policy == "omit"
    nl = as_subject_list(neural, "neural")
    bl = as_subject_list(behavior, "behavior")
    if len(nl) != len(bl):
        raise ValueError(
            f"neural has {len(nl)} subjects but behavior has {len(bl)}: give one array of "
            "each per subject"
        )
    ids = _subject_ids(subject_ids, len(nl))
    check_pandas_alignment(nl, bl, ids)
    Xs, Ys = [], []
    for i, (s, x, y) in enumerate(zip(ids, nl, bl, strict=True)):
        X = check_array(x, "neural", s, allow_nonfinite=True)
        Y = check_array(y, "behavior", s, allow_nonfinite=True)
        check_pair_shapes(X.shape, Y.shape, s, n_features=n_features)
        if i > 0:
            check_same_features(Y.shape[1], Ys[0].shape[1], s, ids[0])
        Xs.append(X)
        Ys.append(Y)
    if not allow:
        check_finite(
            [
                (f"subject {s}: {name}", a)
                for s, X, Y in zip(ids, Xs, Ys, strict=True)
                for name, a in (("neural", X), ("behavior", Y))
            ]
        )
    gs = check_groups(groups, len(Xs), [X.shape[0] for X in Xs], subject_ids=ids)
    return Xs, Ys, gs


def check_pandas_alignment(neural: list, behavior: list, ids) -> None:
    """Refuse pandas inputs that numpy's positional reading would silently misalign.

    Rows and columns are read by position. When a subject's neural and behaviour arrays
    are both pandas objects, their row indexes must be equal (else the samples would be
    paired by position, not by time); the subjects whose behaviour is a DataFrame (all
    of them, or some, the others being arrays) must have the same columns in the same
    order (else feature ``j`` would be another variable in another subject).

    Raises
    ------
    ValueError
        Naming the subject, the first differing row label or the columns, and the remedy.
    """
    frames = (pd.DataFrame, pd.Series)
    for s, x, y in zip(ids, neural, behavior, strict=True):
        if isinstance(x, frames) and isinstance(y, frames) and not x.index.equals(y.index):
            diff = _first_difference(x.index, y.index)
            raise ValueError(
                f"subject {s}: neural and behavior are pandas objects whose row indexes "
                f"differ ({diff}); rows are read by position, so align them first, e.g. "
                "behavior.reindex(neural.index), or pass numpy arrays"
            )
    named = [(s, y) for s, y in zip(ids, behavior, strict=True) if isinstance(y, pd.DataFrame)]
    if len(named) > 1:  # also when other subjects are arrays: the frames must agree
        _check_same_columns([y for _, y in named], [s for s, _ in named])


def _check_same_columns(frames: list, ids) -> None:
    """Every subject's DataFrame has the first one's columns, in the same order."""
    first = list(frames[0].columns)
    for s, y in zip(ids[1:], frames[1:], strict=True):
        if list(y.columns) != first:
            raise ValueError(
                f"subject {s}: behavior columns {list(y.columns)} differ from subject "
                f"{ids[0]}'s {first}; features are read by position, so give every "
                f"subject the same columns in the same order, e.g. behavior[{first}]"
            )


def _where(name: str, subject) -> str:
    return f"subject {subject}: {name}" if subject is not None else name


def column_names(a, name: str, subject=None, *, unit_ids: bool = False) -> np.ndarray | None:
    """The column names of a DataFrame, as scikit-learn reads feature names.

    Parameters
    ----------
    a : object
        One subject's array-like.
    name, subject
        The array and its subject (``None``: none), named in the error.
    unit_ids : bool
        Also keep integer column names (neural unit / ROI ids, as suite2p numbers its
        cells), unless they are ``0..n-1`` in order: the default columns of a frame built
        from an array carry no identity.

    Returns
    -------
    names : object ndarray (n_columns,) or None
        The names (str; or int with ``unit_ids``), or None: ``a`` is no DataFrame, or
        its column names are neither all strings nor (with ``unit_ids``) integer ids.

    Raises
    ------
    TypeError
        Column names mixing strings and other types (ambiguous: refused, as scikit-learn
        does).
    """
    if not isinstance(a, pd.DataFrame) or a.shape[1] == 0:
        return None
    names = list(a.columns)
    is_text = [isinstance(c, str) for c in names]
    if all(is_text):
        return np.array([str(c) for c in names], dtype=object)
    if any(is_text):
        kinds = sorted({type(c).__name__ for c in names})
        rule = "all are strings" + (" or all are integers" if unit_ids else "")
        raise TypeError(
            f"{_where(name, subject)} columns mix strings with names of types {kinds}; "
            f"column names are kept and checked only when {rule}: convert them, "
            f"e.g. {name}.columns = {name}.columns.astype(str), or pass {name}.to_numpy()"
        )
    ids = _integer_names(a) if unit_ids else None
    if ids is not None and ids.tolist() != list(range(ids.size)):
        return ids
    return None


def _integer_names(a) -> np.ndarray | None:
    """A DataFrame's integer column names (object ndarray of int), or None."""
    names = list(a.columns) if isinstance(a, pd.DataFrame) else []
    if names and all(
        isinstance(c, numbers.Integral) and not isinstance(c, bool | np.bool_) for c in names
    ):
        return np.array([int(c) for c in names], dtype=object)
    return None


def _check_distinct(names: np.ndarray | None, name: str, subject) -> np.ndarray | None:
    """``names``, refused when they repeat a name (a name must identify a column)."""
    counts = Counter([] if names is None else names.tolist())
    repeated = sorted(c for c, n in counts.items() if n > 1)
    if repeated:
        raise ValueError(
            f"{_where(name, subject)} columns repeat the names {_short_list(repeated)}; "
            "each column must have its own name (rename them, or pass arrays)"
        )
    return names


def subject_column_names(arrays: list, name: str, ids=None) -> list | None:
    """Each subject's own column names (what a fit keeps of neural DataFrames).

    Parameters
    ----------
    arrays : list
        One array-like per subject, as given.
    name : str
        The array (``"neural"``), named in errors.
    ids : sequence or None
        Label of each entry in errors (default ``0..S-1``).

    Returns
    -------
    names : list (S) of (object ndarray (N_s,) or None) or None
        Per subject, :func:`column_names` with ``unit_ids`` (strings, or integer unit
        ids other than ``0..N_s-1``); None when no subject has names.

    Raises
    ------
    ValueError
        A subject's columns repeat a name.
    TypeError
        Column names mixing strings and other types (:func:`column_names`).
    """
    ids = _subject_ids(ids, len(arrays))
    names = [
        _check_distinct(column_names(a, name, s, unit_ids=True), name, s)
        for s, a in zip(ids, arrays, strict=True)
    ]
    return None if all(n is None for n in names) else names


def common_column_names(frames: list, name: str, ids=None) -> np.ndarray | None:
    """The column names shared by every subject's DataFrame (what a fit keeps).

    Parameters
    ----------
    frames : list
        One array-like per subject.
    name : str
        The array (``"behavior"``), named in errors.
    ids : sequence or None
        Label of each entry in errors (default ``0..S-1``).

    Returns
    -------
    names : object ndarray of str (n_columns,) or None
        None unless every entry is a DataFrame with string column names.

    Raises
    ------
    ValueError
        The subjects' columns differ, or repeat a name (a name must identify a column).
    TypeError
        Column names mixing strings and other types (:func:`column_names`).
    """
    ids = _subject_ids(ids, len(frames))
    if not frames or not all(isinstance(a, pd.DataFrame) for a in frames):
        return None
    _check_same_columns(frames, ids)
    return _check_distinct(column_names(frames[0], name, ids[0]), name, ids[0])


def _short_list(items: list, n: int = 20) -> str:
    return f"{items[:n]}"[:-1] + (", ...]" if len(items) > n else "]")


def check_column_names(
    arrays: list,
    expected,
    name: str,
    ids,
    *,
    attribute: str,
    stacklevel: int = 3,
    unit_ids: bool = False,
) -> None:
    """Check the columns given to a fitted model against those it was fitted with.

    Columns are read by position. As scikit-learn checks ``feature_names_in_``: a
    DataFrame whose named columns (:func:`column_names`) differ from the expected ones
    (another order, or other names) is refused; an entry without column names (an array,
    a path, a frame with unnamed columns) is read by position after one warning for all
    of them. Entries expected to have no names are not checked.

    Parameters
    ----------
    arrays : list
        The entries as given (before conversion), one per subject.
    expected : ndarray (p,), None, or list of (ndarray or None)
        The model's column names: one array for every entry (behaviour), None (nothing
        is checked), or a list holding each entry's own (neural units; None: that
        subject has no names).
    name : str
        The array (``"behavior"``, ``"neural"``), named in messages.
    ids : sequence
        The subject of each entry (``None``: no subject), named in messages.
    attribute : str
        The model attribute holding ``expected``, named in the remedy
        (``name[model.attribute]``, or ``name[model.attribute[s]]`` for a list).
    stacklevel : int
        Of the warning (default: the caller's caller).
    unit_ids : bool
        Integer column names are names too (:func:`column_names`); compared even when
        they are ``0..n-1`` if the expected names are integers.

    Raises
    ------
    ValueError
        Naming the subject, the given and the expected columns, the first differing
        position, the missing and unexpected names, and the remedy.

    Warns
    -----
    UserWarning
        Once, naming the entries without column names.
    """
    if expected is None:
        return
    per_entry = isinstance(expected, list)
    wants = list(expected) if per_entry else [expected] * len(arrays)
    unnamed = []
    for s, a, want in zip(ids, arrays, wants, strict=True):
        if want is None:
            continue
        want = list(want)
        names = column_names(a, name, s, unit_ids=unit_ids)
        if names is None and unit_ids and all(isinstance(c, int) for c in want):
            names = _integer_names(a)  # 0..n-1 too: compared with the fitted unit ids
        if names is None:
            unnamed.append((s, want))
        elif list(names) != want:
            remedy = f"{name}[model.{attribute}" + (f"[{s}]]" if per_entry else "]")
            raise _columns_error(list(names), want, _where(name, s), remedy)
    if unnamed:
        _warn_unnamed(unnamed, name, attribute if per_entry else None, stacklevel + 1)


def _warn_unnamed(unnamed: list, name: str, attribute: str | None, stacklevel: int) -> None:
    """One warning for the ``(subject, expected names)`` entries given without names."""
    subjects = [s for s, _ in unnamed]
    who = _where(name, subjects[0])
    if len(unnamed) > 1:
        who = f"{name} of subjects {_short_list(subjects)}"
    if attribute is None or len(unnamed) == 1:
        fitted = f"{name} columns {_short_list(unnamed[0][1])}"
    else:
        fitted = f"named {name} columns (model.{attribute}[s])"
    warnings.warn(
        f"{who} has no column names, but the model was fitted with {fitted}; its "
        "columns are read by position as those (pass a DataFrame with these columns to "
        "have them checked)",
        UserWarning,
        stacklevel=stacklevel,
    )


def _columns_error(given: list, want: list, where: str, remedy: str) -> ValueError:
    first = _first_column_difference(given, want)
    if sorted(given) == sorted(want):
        return ValueError(
            f"{where} columns {_short_list(given)} are the model's columns "
            f"{_short_list(want)} in another order ({first}); columns are read by "
            f"position, so reorder them, e.g. {remedy}"
        )
    given_set, want_set = set(given), set(want)
    missing = [c for c in want if c not in given_set]
    unexpected = [c for c in given if c not in want_set]
    return ValueError(
        f"{where} columns {_short_list(given)} differ from the columns the model was "
        f"fitted with, {_short_list(want)} ({first}; missing {_short_list(missing)}, "
        f"unexpected {_short_list(unexpected)}); columns are read by position, so give "
        f"the fitted columns in the fitted order, e.g. {remedy}"
    )


def _first_column_difference(given: list, want: list) -> str:
    """Where two column lists first differ, in words (they do differ)."""
    j = next(
        (j for j, (g, w) in enumerate(zip(given, want, strict=False)) if g != w),
        min(len(given), len(want)),
    )
    if j == len(want):
        return f"column {j} is {given[j]!r}, beyond the {len(want)} expected"
    if j == len(given):
        return f"column {j} is absent, expected {want[j]!r}"
    return f"column {j} is {given[j]!r}, expected {want[j]!r}"


def _first_difference(a: pd.Index, b: pd.Index) -> str:
    """``"row 3: 0.3 vs 0.4"`` or ``"100 vs 99 rows"`` for two indexes that differ."""
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)} rows"
    differ = np.flatnonzero(np.asarray(a, dtype=object) != np.asarray(b, dtype=object))
    if not differ.size:
        return f"index types {a.dtype} vs {b.dtype}"
    k = int(differ[0])
    return f"row {k}: {a[k]!r} vs {b[k]!r}"


_FINITE_BLOCK = 8 * 2**20


def check_finite(named: list) -> None:
    """Raise for the first of ``(where, array)`` pairs that holds NaN or inf.

    The arrays are scanned on a thread per core (numpy releases the GIL); the error
    names the first bad array in list order, whatever the scheduling.
    """

    def bad(item):  # row blocks of ~8 MiB: no array-sized temporary
        a = item[1]
        step = max(1, _FINITE_BLOCK // max(1, a[:1].nbytes))
        return not all(np.all(np.isfinite(a[i : i + step])) for i in range(0, len(a), step))

    flags = thread_map(bad, named)
    for (where, a), flag in zip(named, flags, strict=True):
        if flag:
            raise nonfinite_error(where, np.argwhere(~np.isfinite(a))[0])


def check_pair_shapes(x_shape, y_shape, subject, *, n_features=None) -> None:
    """Check that one subject's neural ``(T, N)`` and behaviour ``(T, p)`` shapes agree."""
    if x_shape[0] != y_shape[0]:
        raise ValueError(
            f"subject {subject}: neural has {x_shape[0]} samples (rows) but behavior has "
            f"{y_shape[0]}; both must be (T, .) with the same T"
        )
    if x_shape[1] == 0:
        raise ValueError(f"subject {subject}: neural has no units (shape {tuple(x_shape)})")
    if y_shape[1] == 0:
        raise ValueError(f"subject {subject}: behavior has no features (shape {tuple(y_shape)})")
    if n_features is not None and y_shape[1] != n_features:
        raise ValueError(
            f"subject {subject}: behavior has {y_shape[1]} features but the model was fitted "
            f"with {n_features}; expected shape ({y_shape[0]}, {n_features})"
        )


def check_subject_index(subject, n_subjects: int) -> int:
    """Check a subject index against the number of fitted subjects."""
    if not isinstance(subject, numbers.Integral) or isinstance(subject, bool):
        raise TypeError(f"subject must be an integer index; got {subject!r}")
    if not -n_subjects <= subject < n_subjects:
        raise IndexError(
            f"subject {subject} is out of range: the model has {n_subjects} subjects "
            f"(indices 0..{n_subjects - 1})"
        )
    return int(subject) % n_subjects


def fold_label(label) -> str:
    """``label`` as text without surrounding spaces, case-folded (``" M1"`` -> ``"m1"``):
    labels equal under it differ only by case or spaces (a typo, never two things)."""
    return str(label).strip().casefold()


def fold_subject(subject) -> str:
    """A subject id reduced to what identifies an animal: case-folded, without spaces or
    the separators ``_ - .`` (between two digits one separator of any kind is kept:
    ``"1_2"`` is not ``"12"``), and without leading zeros in its numbers
    (``"Mouse_03"``, ``"mouse3"`` and ``" mouse-003"`` -> ``"mouse3"``). Ids equal under
    it are spellings of one id (a typo), never two animals."""
    text = re.sub(r"(?<=\d)[\s_.\-]+(?=\d)", ".", fold_label(subject))  # "1_2" is not "12"
    text = re.sub(r"[\s_\-]+|(?<!\d)\.|\.(?!\d)", "", text)
    return re.sub(r"(?<!\d)0+(?=\d)", "", text)


def closest_label(label: str, candidates, cutoff: float) -> str | None:
    """The candidate most similar to ``label`` (case-folded; :func:`difflib.get_close_matches`)
    if at least ``cutoff`` similar, else ``None``; ``label`` itself is not a candidate."""
    folded = {str(c).casefold(): c for c in candidates if c != label}
    match = difflib.get_close_matches(str(label).casefold(), folded, n=1, cutoff=cutoff)
    return folded[match[0]] if match else None
