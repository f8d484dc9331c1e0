"""The data model: one recording session, and collections of sessions.

A :class:`Session` holds what one imaging (or electrophysiology) session of one subject
contributes to an analysis: neural activity ``(T, N)`` with unit ids, behaviour
``(T, p)`` with feature names and units, both on one time base, plus the trials table
and stimulation intervals. A :class:`SessionCollection` groups sessions and turns a
selection (population, stage) into the arguments of :meth:`sharedrep.ShaReD.fit`.
Layer ``data``: this module uses numpy and pandas only and may import nothing but
``sharedrep.utils`` and ``sharedrep.data``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

__all__ = [
    "BadColumn",
    "FitArgs",
    "MAX_ABS_VALUE",
    "Session",
    "SessionCollection",
    "TRIAL_COLUMNS",
]

#: Relative tolerance within which two sampling rates count as the same rate (timestamp
#: jitter: 29.97 and 30 Hz are one rate; 10 and 30 Hz are not).
RATE_TOLERANCE = 0.01

#: Conventional trials-table columns (seconds, except ``outcome``). Only ``start_time``
#: and ``stop_time`` are required; the others are used when present.
TRIAL_COLUMNS = (
    "start_time",
    "stop_time",
    "cue_time",
    "movement_onset_time",
    "reward_time",
    "outcome",
)

#: Optional trials-table column of cross-validation group labels (written by
#: :meth:`SessionCollection.from_arrays`): trials with the same value form one group
#: of :meth:`SessionCollection.to_fit_args`.
CV_GROUP_COLUMN = "cv_group"


#: Largest magnitude a neural or behaviour value may have: the statistics of a fit form
#: sums of squares and cross-products over every sample of a subject, which overflow
#: float64 (max ~1.8e308) once magnitudes reach ~1e154; 1e150 leaves room for 1e8
#: samples. A column is also *too large* when the sum of its squares over the session
#: is not a finite float64 (see :meth:`Session.bad_columns`).
MAX_ABS_VALUE = 1e150


@dataclass(frozen=True)
class BadColumn:
    """A neural unit or behaviour feature of a session that no analysis can use.

    Attributes
    ----------
    series : {"neural", "behavior"}
        The array the column belongs to.
    index : int
        Column index in that array (0-based).
    name : str
        Unit id (neural) or feature name (behaviour).
    reason : str
        ``"NaN/inf in every sample"``, ``"constant (= v)"`` or ``"too large (...)"``.
    """

    series: str
    index: int
    name: str
    reason: str

    def describe(self) -> str:
        """``"neural unit 3 (column 3): constant (= 0)"`` and the like."""
        what = "neural unit" if self.series == "neural" else "behaviour feature"
        name = self.name if self.series == "neural" else repr(self.name)
        return f"{what} {name} (column {self.index}): {self.reason}"


def _column_problems(x: np.ndarray) -> list[tuple[int, str]]:
    """``(column, reason)`` for the columns of ``x`` (T, n) that are all NaN/inf,
    hold magnitudes beyond :data:`MAX_ABS_VALUE` (or whose sum of squares overflows),
    or are constant over their finite samples. Works on blocks of columns (a few
    million values at a time) to bound the temporary memory."""
    step = max(1, 2**22 // max(x.shape[0], 1))
    return [
        (start + j, why)
        for start in range(0, x.shape[1], step)
        for j, why in _block_problems(x[:, start : start + step])
    ]


def _block_problems(x: np.ndarray) -> list[tuple[int, str]]:
    """:func:`_column_problems` of one block of columns."""
    if x.shape[1] == 0:
        return []
    finite = np.isfinite(x)
    xf = np.where(finite, x, 0.0)
    peak = np.abs(xf).max(axis=0)  # largest finite magnitude per column
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        scaled_ss = np.sum((xf / np.where(peak > 0, peak, 1.0)) ** 2, axis=0)
        # sum of squares = peak^2 * scaled_ss, compared in log scale (never overflows)
        log_ss = 2 * np.log(np.where(peak > 0, peak, 1.0)) + np.log(np.maximum(scaled_ss, 1.0))
    lo = np.where(finite, x, np.inf).min(axis=0)
    hi = np.where(finite, x, -np.inf).max(axis=0)
    out = []
    for j in range(x.shape[1]):
        if not finite[:, j].any():
            out.append((j, "NaN/inf in every sample"))
        elif peak[j] > MAX_ABS_VALUE or log_ss[j] >= np.log(np.finfo(np.float64).max):
            out.append((j, f"too large (|value| up to {peak[j]:.3g}; limit {MAX_ABS_VALUE:.0e})"))
        elif lo[j] == hi[j]:
            out.append((j, f"constant (= {lo[j]:.6g})"))
    return out


def _scalar(value):
    """A numpy scalar as the Python value it holds (for messages); others unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def _interval_table(df, label: str, *, allow_overlap: bool) -> pd.DataFrame:
    """Validate and copy a table of [start_time, stop_time) intervals."""
    if df is None:
        return pd.DataFrame(
            {"start_time": np.zeros(0), "stop_time": np.zeros(0)},
        )
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{label} must be a pandas DataFrame, got {type(df).__name__}")
    out = df.copy()
    missing = [c for c in ("start_time", "stop_time") if c not in out.columns]
    if missing:
        raise ValueError(f"{label} lacks required column(s) {missing}")
    for c in out.columns:
        if str(c).endswith("_time"):
            try:
                out[c] = pd.to_numeric(out[c]).astype(np.float64)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{label} column {c!r} must hold times in seconds") from err
    st = out["start_time"].to_numpy()
    sp = out["stop_time"].to_numpy()
    if not (np.all(np.isfinite(st)) and np.all(np.isfinite(sp))):
        raise ValueError(f"{label} has non-finite start_time/stop_time")
    if np.any(sp < st):
        i = int(np.argmax(sp < st))
        raise ValueError(
            f"{label} row {i}: stop_time {float(sp[i])!r} < start_time {float(st[i])!r}"
        )
    if not allow_overlap and st.size > 1:
        o = np.argsort(st, kind="stable")
        if np.any(st[o][1:] < sp[o][:-1]):
            k = int(np.argmax(st[o][1:] < sp[o][:-1]))
            raise ValueError(
                f"{label} rows {int(o[k])} and {int(o[k + 1])} overlap; trials must be "
                "disjoint [start_time, stop_time) intervals"
            )
    return out


@dataclass(kw_only=True, eq=False)
class Session:
    """One recording session of one subject, on a single time base.

    Parameters
    ----------
    subject : str
        Subject (animal) id.
    session_id : str, optional
        Unique id of the session; default ``"<subject>-day<day>"`` or ``subject``.
    day : int, optional
        Day of training.
    stage : str, optional
        Learning stage (e.g. ``"novice"``, ``"expert"``).
    population : str, optional
        Recorded population / brain region (e.g. ``"motor thalamus"``).
    neural : array_like, shape (T, N)
        Neural activity (e.g. dF/F, unitless; or spike counts per bin); stored as
        float64. NaN is allowed here (see :meth:`nonfinite_samples`) but not in
        :meth:`SessionCollection.to_fit_args`. A pandas DataFrame contributes its
        column labels (e.g. ROI ids) as the default ``unit_ids``, except the default
        labels ``0 .. N-1`` of an unlabelled DataFrame; its index is ignored.
    timestamps : array_like, shape (T,)
        Sample times in seconds, finite and strictly increasing.
    unit_ids : array_like, shape (N,), optional
        Unique unit (ROI, bouton, axon, spike unit) ids; default the column labels of
        a DataFrame ``neural``, else ``0 .. N-1``. Given with a labelled DataFrame,
        they must be its column labels in column order (compared as strings).
    behavior : array_like, shape (T, p) or (T,), optional
        Behaviour on the same time base; default: no features (``p = 0``). A pandas
        DataFrame (Series) contributes its column names (its name) as the default
        ``behavior_names``; its index is ignored (rows are samples in order).
    behavior_names : sequence of str, length p, optional
        Unique feature names; default the DataFrame column names or Series name of
        ``behavior``, else ``"behavior_0" ..``. With a DataFrame ``behavior`` whose
        columns are named (not the default ``0 .. p-1``), the names select its columns
        by name, in the order given (other columns are left out): they never relabel
        columns by position. To rename columns, use :meth:`pandas.DataFrame.rename`
        or pass ``behavior.to_numpy()``.
    behavior_units : str or sequence of str, length p, optional
        Physical unit of each feature; default ``"a.u."``.
    trials : pandas.DataFrame, optional
        One row per trial with ``start_time`` and ``stop_time`` (seconds; disjoint
        half-open intervals) and, when known, ``cue_time``, ``movement_onset_time``,
        ``reward_time`` (seconds) and ``outcome`` (see :data:`TRIAL_COLUMNS`); an
        optional ``cv_group`` column groups trials for cross-validation (see
        :meth:`SessionCollection.to_fit_args`).
    stimulation : pandas.DataFrame, optional
        Stimulation intervals: ``start_time``, ``stop_time`` (seconds), extra columns
        (site, power, ...) allowed.
    metadata : dict, optional
        Anything else (subject details, source file, acquisition settings).

    Raises
    ------
    ValueError
        On inconsistent shapes, non-monotonic timestamps, duplicate ids or names,
        ``behavior_names`` that are not columns of a DataFrame ``behavior``, or
        ``unit_ids`` that disagree with the column labels of a DataFrame ``neural``,
        with a message naming the session and the array, e.g.
        ``"session 'm1-d3' (subject 'm1'): neural has 500 rows but timestamps has 499"``.
    TypeError
        On non-numeric arrays or tables of the wrong type.

    Notes
    -----
    Arrays are converted with :func:`numpy.asarray` (no copy when already float64);
    no method modifies a session in place: :meth:`select_time`, :meth:`mask_samples`
    and :meth:`replace` return new sessions.
    """

    subject: str
    session_id: str | None = None
    day: int | None = None
    stage: str | None = None
    population: str | None = None
    neural: np.ndarray
    timestamps: np.ndarray
    unit_ids: np.ndarray | None = None
    behavior: np.ndarray | None = None
    behavior_names: list[str] | None = None
    behavior_units: list[str] | None = None
    trials: pd.DataFrame | None = None
    stimulation: pd.DataFrame | None = None
    metadata: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        self._check_identity()
        self._neural_frame_ids()
        n_samples, n_units = self._check_neural()
        self._check_timestamps(n_samples)
        self._check_unit_ids(n_units)
        self._check_behavior(n_samples)
        self._check_behavior_labels()
        self._check_tables()

    def _check_identity(self) -> None:
        """Normalise ``subject``, ``day`` and ``session_id``; check ``stage``/``population``."""
        if isinstance(self.subject, (int, np.integer)):
            self.subject = str(self.subject)
        if not isinstance(self.subject, str) or not self.subject:
            raise ValueError(f"subject must be a non-empty string, got {self.subject!r}")
        if self.day is not None:
            self.day = self._integer_day(self.day)
        if self.session_id is None:
            self.session_id = self.subject if self.day is None else f"{self.subject}-day{self.day}"
        self.session_id = str(self.session_id)
        for name in ("stage", "population"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{self._label}: {name} must be a string, got {value!r}")

    def _integer_day(self, day) -> int:
        """Return ``day`` as an int (an integral float is accepted), else raise."""
        if isinstance(day, (float, np.floating)) and float(day).is_integer():
            day = int(day)
        if not isinstance(day, (int, np.integer)) or isinstance(day, bool):
            raise ValueError(f"subject {self.subject!r}: day must be an integer, got {day!r}")
        return int(day)

    def _neural_frame_ids(self) -> None:
        """Take ``unit_ids`` from the column labels of a DataFrame ``neural``.

        The default labels ``0 .. N-1`` of an unlabelled DataFrame (a RangeIndex from
        0) are not ids. Given ``unit_ids`` of the right length must equal the labels
        (compared as strings, in column order); other lengths are reported by
        :meth:`_check_unit_ids`.
        """
        x = self.neural
        if not isinstance(x, pd.DataFrame):
            return
        cols = x.columns
        if isinstance(cols, pd.RangeIndex) and cols.start == 0 and cols.step == 1:
            return
        if isinstance(cols, pd.MultiIndex):
            raise ValueError(
                f"{self._label}: neural is a DataFrame with MultiIndex columns; flatten "
                "them to one unit id per column, or pass neural.to_numpy() and unit_ids"
            )
        labels = np.asarray(cols.tolist())  # as given unit_ids would be converted
        if self.unit_ids is None:
            self.unit_ids = labels
            return
        given = np.asarray(self.unit_ids)
        if given.ndim != 1 or given.size != labels.size:
            return
        differ = np.flatnonzero(given.astype(str) != labels.astype(str))
        if differ.size:
            j = int(differ[0])
            raise ValueError(
                f"{self._label}: unit_ids disagree with the column labels of the neural "
                f"DataFrame at {differ.size} of {labels.size} columns (column {j} is "
                f"labelled {_scalar(labels[j])!r} but unit_ids[{j}] is {_scalar(given[j])!r}); "
                "pass unit_ids=None to use the column labels, or relabel the columns"
            )

    def _check_neural(self) -> tuple[int, int]:
        """Convert ``neural`` to a non-empty 2-D float array; return ``(T, N)``."""
        lab = self._label
        self.neural = self._numeric(self.neural, "neural")
        if self.neural.ndim != 2:
            raise ValueError(f"{lab}: neural must be 2-D (T, N), got shape {self.neural.shape}")
        n_samples, n_units = self.neural.shape
        if n_samples == 0:
            raise ValueError(f"{lab}: neural has no samples (empty session)")
        if n_units == 0:
            raise ValueError(f"{lab}: neural has no units")
        return n_samples, n_units

    def _check_timestamps(self, n_samples: int) -> None:
        """Check that ``timestamps`` (s) are 1-D, length T, finite and strictly increasing."""
        lab = self._label
        self.timestamps = self._numeric(self.timestamps, "timestamps")
        if self.timestamps.ndim != 1:
            raise ValueError(f"{lab}: timestamps must be 1-D, got shape {self.timestamps.shape}")
        if self.timestamps.size != n_samples:
            raise ValueError(
                f"{lab}: neural has {n_samples} rows but timestamps has {self.timestamps.size}"
            )
        if not np.all(np.isfinite(self.timestamps)):
            raise ValueError(f"{lab}: timestamps contain NaN or inf")
        dt = np.diff(self.timestamps)
        if np.any(dt <= 0):
            i = int(np.argmax(dt <= 0))
            raise ValueError(
                f"{lab}: timestamps are not strictly increasing (index {i + 1}: "
                f"{float(self.timestamps[i + 1])!r} after {float(self.timestamps[i])!r})"
            )

    def _check_unit_ids(self, n_units: int) -> None:
        """Default ``unit_ids`` to ``0 .. N-1``, else check N unique ids."""
        lab = self._label
        if self.unit_ids is None:
            self.unit_ids = np.arange(n_units)
            return
        self.unit_ids = np.asarray(self.unit_ids)
        if self.unit_ids.ndim != 1 or self.unit_ids.size != n_units:
            raise ValueError(
                f"{lab}: neural has {n_units} columns but unit_ids has "
                f"{self.unit_ids.size} entries"
            )
        if np.unique(self.unit_ids).size != n_units:
            raise ValueError(f"{lab}: unit_ids are not unique")

    def _default_behavior_names(self) -> None:
        """Name, or select by name, the features of a DataFrame or Series ``behavior``.

        Without ``behavior_names`` they are the DataFrame's column names or the
        Series' name; a string ``behavior_names`` is one name. With ``behavior_names``
        and a DataFrame whose columns are named, the columns are selected by name in the
        order of ``behavior_names``. Default
        positions ``0 .. p-1`` (a RangeIndex) are not names: such columns are named by
        position.

        Raises
        ------
        ValueError
            If a name is not a column, or names several columns, of the DataFrame.
        """
        if isinstance(self.behavior_names, str):  # one name, never one per character
            self.behavior_names = [self.behavior_names]
        b = self.behavior
        if isinstance(b, pd.Series):
            if self.behavior_names is None and b.name is not None:
                self.behavior_names = [str(b.name)]
            return
        if not isinstance(b, pd.DataFrame) or isinstance(b.columns, pd.RangeIndex):
            return
        labels = [str(c) for c in b.columns]
        if self.behavior_names is None:
            self.behavior_names = labels
            return
        names = [str(n) for n in self.behavior_names]
        missing = [n for n in names if n not in labels]
        if missing:
            raise ValueError(
                f"{self._label}: behavior_names {missing} are not columns of the behavior "
                f"DataFrame (columns {labels}); with a DataFrame, behavior_names selects "
                "columns by name: rename the columns (DataFrame.rename) or pass "
                "behavior.to_numpy() to name them by position"
            )
        ambiguous = sorted({n for n in names if labels.count(n) > 1})
        if ambiguous:
            raise ValueError(
                f"{self._label}: behavior_names {ambiguous} each name several columns of "
                f"the behavior DataFrame (columns {labels})"
            )
        self.behavior = b.iloc[:, [labels.index(n) for n in names]]
        self.behavior_names = names

    def _check_behavior(self, n_samples: int) -> None:
        """Convert ``behavior`` to a ``(T, p)`` float array (default ``p = 0``)."""
        lab = self._label
        if self.behavior is None:
            self.behavior = np.zeros((n_samples, 0))
        self._default_behavior_names()
        self.behavior = self._numeric(self.behavior, "behavior")
        if self.behavior.ndim == 1:
            self.behavior = self.behavior[:, None]
        if self.behavior.ndim != 2:
            raise ValueError(
                f"{lab}: behavior must be 2-D (T, p), got shape {self.behavior.shape}"
            )
        if self.behavior.shape[0] != n_samples:
            raise ValueError(
                f"{lab}: neural has {n_samples} rows but behavior has {self.behavior.shape[0]}"
            )

    def _check_behavior_labels(self) -> None:
        """Default and check ``behavior_names`` (unique) and ``behavior_units``, length p."""
        lab = self._label
        n_features = self.behavior.shape[1]
        if self.behavior_names is None:
            self.behavior_names = [f"behavior_{j}" for j in range(n_features)]
        else:
            self.behavior_names = [str(n) for n in self.behavior_names]
        if len(self.behavior_names) != n_features:
            raise ValueError(
                f"{lab}: behavior has {n_features} columns but behavior_names has "
                f"{len(self.behavior_names)} entries"
            )
        if len(set(self.behavior_names)) != n_features:
            dup = sorted({n for n in self.behavior_names if self.behavior_names.count(n) > 1})
            raise ValueError(f"{lab}: duplicate behavior_names {dup}")
        if self.behavior_units is None:
            self.behavior_units = ["a.u."] * n_features
        elif isinstance(self.behavior_units, str):
            self.behavior_units = [self.behavior_units] * n_features
        else:
            self.behavior_units = [str(u) for u in self.behavior_units]
        if len(self.behavior_units) != n_features:
            raise ValueError(
                f"{lab}: behavior has {n_features} columns but behavior_units has "
                f"{len(self.behavior_units)} entries"
            )

    def _check_tables(self) -> None:
        """Check the ``trials`` and ``stimulation`` interval tables and ``metadata``."""
        lab = self._label
        try:
            self.trials = _interval_table(self.trials, "trials", allow_overlap=False)
            self.stimulation = _interval_table(self.stimulation, "stimulation", allow_overlap=True)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{lab}: {err}") from None
        if not isinstance(self.metadata, dict):
            raise TypeError(f"{lab}: metadata must be a dict")
        self.metadata = dict(self.metadata)

    @property
    def _label(self) -> str:
        return f"session {self.session_id!r} (subject {self.subject!r})"

    def _numeric(self, x, name: str) -> np.ndarray:
        if isinstance(x, (pd.DataFrame, pd.Series)):
            x = x.to_numpy()
        a = np.asarray(x)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{self._label}: {name} must be numeric, got dtype {a.dtype}")
        return a.astype(np.float64, copy=False)

    def __repr__(self) -> str:
        return (
            f"Session(subject={self.subject!r}, session_id={self.session_id!r}, "
            f"day={self.day!r}, stage={self.stage!r}, population={self.population!r}, "
            f"T={self.n_samples}, N={self.n_units}, behavior={self.behavior_names!r}, "
            f"trials={len(self.trials)})"
        )

    # ------------------------------------------------------------------ properties
    @property
    def n_samples(self) -> int:
        """Number of samples ``T``."""
        return int(self.neural.shape[0])

    @property
    def n_units(self) -> int:
        """Number of units ``N``."""
        return int(self.neural.shape[1])

    @property
    def n_behavior(self) -> int:
        """Number of behaviour features ``p``."""
        return int(self.behavior.shape[1])

    @property
    def sampling_rate(self) -> float:
        """Sampling rate in Hz, ``1 / median(diff(timestamps))`` (NaN if ``T < 2``)."""
        if self.n_samples < 2:
            return math.nan
        return float(1.0 / np.median(np.diff(self.timestamps)))

    # ------------------------------------------------------------------ methods
    def replace(self, **changes) -> Session:
        """Return a new, re-validated session with some fields changed.

        Parameters
        ----------
        **changes
            Field values, as in the constructor.

        Returns
        -------
        Session
        """
        return replace(self, **changes)

    def trial_ids(self) -> np.ndarray:
        """Trial of each sample.

        Returns
        -------
        numpy.ndarray, shape (T,), int
            Row position (0-based) in :attr:`trials` of the trial whose
            ``[start_time, stop_time)`` contains the sample; -1 outside every trial.
        """
        ids = np.full(self.n_samples, -1, dtype=np.int64)
        if len(self.trials) == 0:
            return ids
        st = self.trials["start_time"].to_numpy()
        sp = self.trials["stop_time"].to_numpy()
        t = self.timestamps
        for k in range(st.size):
            lo, hi = np.searchsorted(t, [st[k], sp[k]], side="left")
            ids[lo:hi] = k
        return ids

    def nonfinite_samples(self) -> np.ndarray:
        """Samples where any neural or behaviour value is NaN or inf.

        Returns
        -------
        numpy.ndarray, shape (T,), bool
            True where a sample is not finite (pass to :meth:`mask_samples`).
        """
        bad = ~np.isfinite(self.neural).all(axis=1)
        if self.n_behavior:
            bad |= ~np.isfinite(self.behavior).all(axis=1)
        return bad

    def bad_columns(self) -> list[BadColumn]:
        """Neural units and behaviour features that no analysis can use.

        A column is bad when it is NaN/inf in every sample, *too large* (a finite
        magnitude above :data:`MAX_ABS_VALUE`, or a sum of squares over the session that
        overflows float64: the statistics of a fit would be inf/NaN), or *constant* (one
        value over its finite samples: no variance to explain or to explain with).

        Returns
        -------
        list of BadColumn
            Neural units first, then behaviour features, each in column order.
        """
        neural = [
            BadColumn("neural", j, str(self.unit_ids[j]), why)
            for j, why in _column_problems(self.neural)
        ]
        behavior = [
            BadColumn("behavior", j, self.behavior_names[j], why)
            for j, why in _column_problems(self.behavior)
        ]
        return neural + behavior

    def drop_units(self, columns) -> Session:
        """Remove neural units (columns of ``neural``).

        Parameters
        ----------
        columns : array_like of int
            Column indices (0-based, not unit ids) of the units to drop.

        Returns
        -------
        Session
            The other units, with their ids; ``metadata["dropped_units"]`` lists the
            ids of the units dropped (appended to any earlier list).

        Raises
        ------
        ValueError
            If an index is out of range or every unit would be dropped.
        """
        idx = np.unique(np.asarray(columns, dtype=np.int64).ravel())
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_units):
            raise ValueError(
                f"{self._label}: unit columns {idx.tolist()} out of range 0..{self.n_units - 1}"
            )
        if idx.size == self.n_units:
            raise ValueError(f"{self._label}: dropping units {idx.tolist()} leaves no units")
        keep = np.ones(self.n_units, dtype=bool)
        keep[idx] = False
        meta = dict(self.metadata)
        dropped = [u.item() if hasattr(u, "item") else u for u in self.unit_ids[idx]]
        meta["dropped_units"] = list(meta.get("dropped_units", [])) + dropped
        return replace(
            self, neural=self.neural[:, keep], unit_ids=self.unit_ids[keep], metadata=meta
        )

    def _subset(self, keep: np.ndarray, what: str) -> Session:
        if not keep.any():
            empty = [b for b in self.bad_columns() if b.reason.startswith("NaN/inf")]
            hint = (
                f" ({'; '.join(b.describe() for b in empty[:8])}: drop these columns first, "
                "e.g. drop_units; study file: drop_bad_units = true)"
                if empty
                else ""
            )
            raise ValueError(f"{self._label}: {what} leaves no samples{hint}")
        return replace(
            self,
            neural=self.neural[keep],
            timestamps=self.timestamps[keep],
            behavior=self.behavior[keep],
        )

    def select_time(self, start: float | None = None, stop: float | None = None) -> Session:
        """Keep the samples with ``start <= t < stop``.

        Trials and stimulation intervals overlapping the window are kept unchanged.

        Parameters
        ----------
        start, stop : float, optional
            Window in seconds (open-ended if None).

        Returns
        -------
        Session

        Raises
        ------
        ValueError
            If no sample falls in the window.
        """
        lo = -np.inf if start is None else float(start)
        hi = np.inf if stop is None else float(stop)
        keep = (self.timestamps >= lo) & (self.timestamps < hi)
        new = self._subset(keep, f"select_time({start!r}, {stop!r})")
        for attr in ("trials", "stimulation"):
            df = getattr(new, attr)
            ov = (df["stop_time"] > lo) & (df["start_time"] < hi)
            setattr(new, attr, df.loc[ov].copy())
        return new

    def mask_samples(self, exclude) -> Session:
        """Remove samples (e.g. frames with stimulation artefacts).

        Parameters
        ----------
        exclude : array_like of bool, shape (T,)
            True for samples to drop (as returned by
            :func:`sharedrep.data.preprocess.exclusion_mask` or :meth:`nonfinite_samples`).

        Returns
        -------
        Session
            The remaining samples; trials and stimulation tables are unchanged. The
            time base then has gaps: :meth:`groups` splits there so that lag windows
            never span removed samples.

        Raises
        ------
        ValueError
            If ``exclude`` has the wrong shape or removes every sample.
        """
        m = np.asarray(exclude)
        if m.dtype != bool or m.shape != (self.n_samples,):
            raise ValueError(
                f"{self._label}: exclude must be a boolean array of shape "
                f"({self.n_samples},), got dtype {m.dtype} shape {m.shape}"
            )
        return self._subset(~m, "mask_samples")

    def groups(self, *, split_gaps: bool = True, gap_factor: float = 1.5) -> np.ndarray:
        """Contiguous-segment ids for cross-validation and lag embedding.

        A new id starts at every change of trial (including runs outside trials) and,
        if ``split_gaps``, wherever consecutive timestamps are more than
        ``gap_factor`` median sampling intervals apart (removed samples, pauses).

        Parameters
        ----------
        split_gaps : bool, default True
            Split segments at time gaps.
        gap_factor : float, default 1.5
            Gap threshold in units of the median sampling interval.

        Returns
        -------
        numpy.ndarray, shape (T,), int
            Ids ``0, 1, ...`` in time order.
        """
        tid = self.trial_ids()
        new = np.r_[True, tid[1:] != tid[:-1]]
        if split_gaps and self.n_samples > 1:
            d = np.diff(self.timestamps)
            new[1:] |= d > gap_factor * np.median(d)
        return np.cumsum(new) - 1

    def copy(self) -> Session:
        """Deep copy (arrays and tables copied).

        Returns
        -------
        Session
        """
        return replace(
            self,
            neural=self.neural.copy(),
            timestamps=self.timestamps.copy(),
            unit_ids=self.unit_ids.copy(),
            behavior=self.behavior.copy(),
            behavior_names=list(self.behavior_names),
            behavior_units=list(self.behavior_units),
            metadata=dict(self.metadata),
        )


@dataclass(eq=False)
class FitArgs:
    """Arguments for :meth:`sharedrep.ShaReD.fit`, one list entry per subject.

    Use as ``model.fit(a.neural, a.behavior, groups=a.groups)``.

    Attributes
    ----------
    neural : list of numpy.ndarray, each (T_s, N_s)
    behavior : list of numpy.ndarray, each (T_s, p), columns in ``behavior_names`` order
    groups : list of numpy.ndarray, each (T_s,), int
        Group ids ``0 ..``: segments (trials, inter-trial runs, gaps, session
        boundaries; see :meth:`Session.groups`), each its own group, except that the
        trials of one session sharing a ``cv_group`` value (see
        :meth:`SessionCollection.to_fit_args`) share one id. The id changes at every
        segment boundary, so lag windows never join two segments.
    subjects : list of str
    session_ids : list of list of str
        Sessions concatenated (in time order of the list) for each subject.
    behavior_names, behavior_units : list of str, length p
    unit_ids : list of numpy.ndarray, each (N_s,)
    """

    neural: list[np.ndarray]
    behavior: list[np.ndarray]
    groups: list[np.ndarray]
    subjects: list[str]
    session_ids: list[list[str]]
    behavior_names: list[str]
    behavior_units: list[str]
    unit_ids: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.subjects)


def _accepted(wanted, as_str: bool = False) -> tuple | None:
    """Normalise a filter criterion to the tuple of accepted values (None: accept all).

    A string (or bytes) or a scalar (numpy scalars and 0-d arrays included) is one
    value; any other iterable (list, tuple, set, frozenset, array, Series, generator) is
    a collection of accepted values. With ``as_str`` (fields stored as strings, e.g.
    ``subject``) every value except None is converted with :class:`str`, so that
    ``subject=1`` matches the subject stored as ``"1"``.
    """
    if wanted is None:
        return None
    if isinstance(wanted, (str, bytes)) or not isinstance(wanted, Iterable):
        values = (wanted,)
    elif isinstance(wanted, np.ndarray) and wanted.ndim == 0:
        values = (wanted.item(),)
    else:
        values = tuple(wanted)
    if as_str:
        values = tuple(v if v is None or isinstance(v, (str, bytes)) else str(v) for v in values)
    return values


def _match(value, accepted: tuple | None) -> bool:
    """Whether ``value`` is one of ``accepted`` (from :func:`_accepted`; None: any)."""
    if accepted is None:
        return True
    return any(bool(value == w) for w in accepted)


def _chronological(s: Session) -> tuple:
    """Sort key of one subject's sessions: day (unknown last), then session id."""
    return (s.day is None, s.day if s.day is not None else 0, str(s.session_id))


class SessionCollection(Sequence):
    """An ordered group of sessions (a study), selectable by subject / population / stage.

    Parameters
    ----------
    sessions : iterable of Session
    name : str, optional
        Study name.
    analysis : dict, optional
        Analysis settings (from the study file).
    source : str, optional
        Path of the study file.

    Raises
    ------
    TypeError
        If an element is not a :class:`Session`.
    ValueError
        If two sessions share a ``session_id``.
    """

    def __init__(
        self,
        sessions: Iterable[Session] = (),
        *,
        name: str | None = None,
        analysis: dict | None = None,
        source: str | None = None,
    ) -> None:
        self._sessions = list(sessions)
        for i, s in enumerate(self._sessions):
            if not isinstance(s, Session):
                raise TypeError(f"element {i} is a {type(s).__name__}, not a Session")
        ids = [s.session_id for s in self._sessions]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate session_id(s): {dup}")
        self.name = name
        self.analysis = dict(analysis or {})
        self.source = source

    def __len__(self) -> int:
        return len(self._sessions)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return SessionCollection(
                self._sessions[i], name=self.name, analysis=self.analysis, source=self.source
            )
        if isinstance(i, str):
            for s in self._sessions:
                if s.session_id == i:
                    return s
            raise KeyError(f"no session with session_id {i!r}")
        return self._sessions[i]

    def __iter__(self) -> Iterator[Session]:
        return iter(self._sessions)

    def __repr__(self) -> str:
        return (
            f"SessionCollection({len(self)} sessions, subjects={self.subjects}, "
            f"populations={self.populations}, stages={self.stages})"
        )

    @property
    def subjects(self) -> list[str]:
        """Subject ids in order of first appearance."""
        return list(dict.fromkeys(s.subject for s in self._sessions))

    @property
    def populations(self) -> list[str | None]:
        """Populations in order of first appearance."""
        return list(dict.fromkeys(s.population for s in self._sessions))

    @property
    def stages(self) -> list[str | None]:
        """Stages in order of first appearance."""
        return list(dict.fromkeys(s.stage for s in self._sessions))

    def filter(self, *, subject=None, population=None, stage=None, day=None) -> SessionCollection:
        """Sessions matching every given criterion (a value or a collection of values).

        Parameters
        ----------
        subject, population, stage, day : optional
            Value (numpy scalars included, e.g. from ``summary()``; ``day=1.0`` matches
            day 1), or a list, tuple, set, frozenset, array or other iterable (not a
            string) of accepted values; None accepts everything. Subject, population
            and stage are stored as strings, so their values are compared as strings
            (``subject=1`` matches the subject ``"1"`` of ``Session(subject=1)``).

        Returns
        -------
        SessionCollection
        """
        subject = _accepted(subject, as_str=True)
        population = _accepted(population, as_str=True)
        stage = _accepted(stage, as_str=True)
        day = _accepted(day)
        keep = [
            s
            for s in self._sessions
            if _match(s.subject, subject)
            and _match(s.population, population)
            and _match(s.stage, stage)
            and _match(s.day, day)
        ]
        return SessionCollection(keep, name=self.name, analysis=self.analysis, source=self.source)

    def summary(self) -> pd.DataFrame:
        """One row per session: ids, metadata, sizes, sampling rate, trials, features.

        Returns
        -------
        pandas.DataFrame
        """
        rows = [
            {
                "session_id": s.session_id,
                "subject": s.subject,
                "day": s.day,
                "stage": s.stage,
                "population": s.population,
                "n_samples": s.n_samples,
                "n_units": s.n_units,
                "sampling_rate": s.sampling_rate,
                "duration_s": float(s.timestamps[-1] - s.timestamps[0]),
                "n_trials": len(s.trials),
                "behavior_names": ",".join(s.behavior_names),
            }
            for s in self._sessions
        ]
        return pd.DataFrame(rows)

    def to_fit_args(
        self,
        population=None,
        stage=None,
        *,
        subjects=None,
        within_trials: bool = False,
        split_gaps: bool = True,
    ) -> FitArgs:
        """Arguments of :meth:`ShaReD.fit` for the sessions of one population and stage.

        Sessions of the same subject that match are concatenated by day, then session
        id (sessions without a day last), whatever their order in the collection, so
        that the trial ids and folds do not depend on how the sessions are listed
        (they must have identical ``unit_ids``, i.e. tracked units, and one population:
        the sessions of two populations of one subject are refused, select one with
        ``population=``); group ids restart at every session boundary so no lag window
        crosses it. When the trials table has a ``cv_group`` column (as written by
        :meth:`from_arrays`), the trials of one session with the same (non-missing)
        value get one group id, so grouped cross-validation holds them out together
        even when they recur non-contiguously; this is not done for a session where two
        such segments would be adjacent in the output (split by a time gap, or by
        samples left out with ``within_trials``): the id must change there so no lag
        window joins them, and a warning says that segment ids are used instead.
        Behaviour columns are put in the first subject's order; every
        subject must have the same feature names (and units), and every session the
        same sampling rate (within :data:`RATE_TOLERANCE`: lags and groups count
        samples).

        Parameters
        ----------
        population, stage : str or collection of str, optional
            Selection (None: all).
        subjects : str or collection of str, optional
            Restrict to these subjects.
        within_trials : bool, default False
            Keep only samples inside trials.
        split_gaps : bool, default True
            Start a new group at time gaps (see :meth:`Session.groups`).

        Returns
        -------
        FitArgs

        Warns
        -----
        UserWarning
            When a session's ``cv_group`` labels cannot be used (see above).

        Raises
        ------
        ValueError
            No matching sessions; behaviour names or units differing across
            subjects; sampling rates differing across the sessions (the message names
            each session, its subject and its rate); a subject's sessions of several
            populations (the message names the subject, the populations and their
            days) or with different units; NaN/inf in the selected data (the message
            names the sessions; drop those samples with
            ``Session.mask_samples(session.nonfinite_samples())``); no behaviour.
        """
        sel = self.filter(population=population, stage=stage, subject=subjects)
        if len(sel) == 0:
            raise ValueError(
                f"no sessions match population={population!r}, stage={stage!r}, "
                f"subjects={subjects!r} (available populations {self.populations}, "
                f"stages {self.stages}, subjects {self.subjects})"
            )
        ref = sel[0]
        names = list(ref.behavior_names)
        units = dict(zip(ref.behavior_names, ref.behavior_units, strict=True))
        problems = []
        if not names:
            problems.append(f"session {ref.session_id!r} has no behaviour features")
        for s in sel:
            problems.extend(_behavior_problems(s, ref, units, within_trials))
        by_subject: dict[str, list[Session]] = {}
        for s in sel:
            by_subject.setdefault(s.subject, []).append(s)
        for ss in by_subject.values():  # the listing order must not change the folds
            ss.sort(key=_chronological)
        problems.extend(_rate_problems(sel))
        problems.extend(_population_problems(by_subject))
        problems.extend(_unit_id_problems(by_subject))
        if problems:
            raise ValueError("cannot build fit arguments:\n  - " + "\n  - ".join(problems))

        out = FitArgs([], [], [], [], [], names, [units[n] for n in names], [])
        for subj, ss in by_subject.items():
            neural, behavior, groups = _subject_arrays(ss, names, within_trials, split_gaps)
            out.neural.append(neural)
            out.behavior.append(behavior)
            out.groups.append(groups)
            out.subjects.append(subj)
            out.session_ids.append([s.session_id for s in ss])
            out.unit_ids.append(ss[0].unit_ids.copy())
        return out

    @classmethod
    def from_arrays(
        cls,
        neural: Sequence,
        behavior: Sequence,
        groups: Sequence | None = None,
        *,
        subjects: Sequence[str] | None = None,
        sampling_rate: float = 1.0,
        behavior_names: Sequence[str] | None = None,
        population: str | None = None,
        stage: str | None = None,
        day: int | None = None,
    ) -> SessionCollection:
        """Wrap per-subject arrays (e.g. ``sharedrep.sim.generic`` output) as sessions.

        Each run of equal consecutive group ids becomes one trial
        (``[t_first, t_last + 1/sampling_rate)``) whose ``cv_group`` column holds the
        id, so ``to_fit_args(...).groups`` reproduces the partition (ids renumbered
        ``0 ..`` in order of first appearance), an id that recurs non-contiguously
        included: its runs share one group id, and lag windows still never join two
        runs (the id changes between them). Masking samples or
        ``to_fit_args(within_trials=True)`` can make this impossible (see
        :meth:`to_fit_args`). Sessions can be exported with
        :func:`sharedrep.data.io.write_nwb`.

        Parameters
        ----------
        neural : list of array_like, each (T_s, N_s)
        behavior : list of array_like, each (T_s, p)
        groups : list of array_like, each (T_s,), optional
            Trial (group) ids; samples with the same id form one group of grouped
            cross-validation, wherever they are.
        subjects : list of str, optional
            Default ``"subject-0"``, ``"subject-1"``, ...
        sampling_rate : float, default 1.0
            Hz; timestamps are ``arange(T_s) / sampling_rate``.
        behavior_names : list of str, optional
        population, stage : str, optional
        day : int, optional

        Returns
        -------
        SessionCollection
        """
        if len(neural) != len(behavior):
            raise ValueError(f"neural has {len(neural)} subjects but behavior has {len(behavior)}")
        if groups is not None and len(groups) != len(neural):
            raise ValueError(f"neural has {len(neural)} subjects but groups has {len(groups)}")
        if subjects is None:
            subjects = [f"subject-{i}" for i in range(len(neural))]
        if len(subjects) != len(neural):
            raise ValueError(f"{len(neural)} subjects but {len(subjects)} subject names")
        if not (np.isfinite(sampling_rate) and sampling_rate > 0):
            raise ValueError(f"sampling_rate must be > 0, got {sampling_rate!r}")
        out = []
        for i, (x, y) in enumerate(zip(neural, behavior, strict=True)):
            x = np.asarray(x)
            T = x.shape[0] if x.ndim else 0
            t = np.arange(T) / sampling_rate
            trials = None
            if groups is not None:
                g = np.asarray(groups[i])
                if g.shape != (T,):
                    raise ValueError(
                        f"subject {subjects[i]!r}: groups has shape {g.shape}, expected ({T},)"
                    )
                if T:
                    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
                    trials = pd.DataFrame(
                        {
                            "start_time": t[starts],
                            "stop_time": np.r_[t[starts[1:]], t[-1] + 1.0 / sampling_rate],
                            CV_GROUP_COLUMN: g[starts],
                        }
                    )
            out.append(
                Session(
                    subject=str(subjects[i]),
                    day=day,
                    stage=stage,
                    population=population,
                    neural=x,
                    timestamps=t,
                    behavior=y,
                    behavior_names=None if behavior_names is None else list(behavior_names),
                    trials=trials,
                )
            )
        return cls(out)


def _behavior_problems(s: Session, ref: Session, units: dict, within_trials: bool) -> list[str]:
    """Why session ``s`` cannot be fitted with ``ref``: other feature names or units, NaN/inf.

    ``units`` maps ``ref``'s feature names to their physical units.
    """
    if set(s.behavior_names) != set(ref.behavior_names):
        extra = sorted(set(s.behavior_names) - set(ref.behavior_names))
        missing = sorted(set(ref.behavior_names) - set(s.behavior_names))
        return [
            f"behaviour names differ: session {s.session_id!r} (subject "
            f"{s.subject!r}) vs {ref.session_id!r} (subject {ref.subject!r}): "
            f"extra {extra}, missing {missing}"
        ]
    problems = [
        f"behaviour {n!r} is in {u!r} in session {s.session_id!r} but in "
        f"{units[n]!r} in session {ref.session_id!r}"
        for n, u in zip(s.behavior_names, s.behavior_units, strict=True)
        if u != units[n]
    ]
    bad = s.nonfinite_samples()
    if within_trials:
        bad &= s.trial_ids() >= 0
    if bad.any():
        problems.append(
            f"session {s.session_id!r} (subject {s.subject!r}) has {int(bad.sum())} "
            "sample(s) with NaN/inf in neural or behavior; remove them with "
            "session.mask_samples(session.nonfinite_samples())"
        )
    return problems


def _split_rates(sessions: Sequence[Session]) -> tuple[float, list[Session], list[Session]]:
    """Sessions at the reference sampling rate and the others.

    The reference is the rate (Hz) shared within :data:`RATE_TOLERANCE` by most
    sessions (the first such on ties); sessions without a rate (fewer than 2 samples)
    are in neither list.

    Returns
    -------
    ref : float
        The reference rate; NaN when no session has a rate.
    same, off : list of Session
        The sessions at the reference rate, and those at another rate, in order.
    """
    timed = [(s, s.sampling_rate) for s in sessions]
    timed = [(s, rate) for s, rate in timed if np.isfinite(rate)]
    if not timed:
        return math.nan, [], []
    r = np.array([rate for _, rate in timed])
    counts = [(np.abs(r / x - 1) <= RATE_TOLERANCE).sum() for x in r]
    ref = float(r[int(np.argmax(counts))])
    same = [s for s, rate in timed if abs(rate / ref - 1) <= RATE_TOLERANCE]
    off = [s for s, rate in timed if abs(rate / ref - 1) > RATE_TOLERANCE]
    return ref, same, off


def _rate_problems(sessions: Sequence[Session]) -> list[str]:
    """One message when the sampling rates of ``sessions`` differ (beyond
    :data:`RATE_TOLERANCE`), naming every session, its subject and its rate."""
    ref, same, off = _split_rates(sessions)
    if not off:
        return []

    def named(ss: list[Session]) -> str:
        return ", ".join(f"{s.session_id!r} (subject {s.subject!r})" for s in ss)

    detail = "; ".join(f"{named([s])} at {s.sampling_rate:.4g} Hz" for s in off[:10])
    detail += f"; and {len(off) - 10} more" if len(off) > 10 else ""
    more = f" and {len(same) - 5} more" if len(same) > 5 else ""
    return [
        f"inconsistent sampling rates: {len(same)} session(s) at {ref:.4g} Hz "
        f"({named(same[:5])}{more}) but {detail}; lags and groups count samples, so they "
        "would mean different durations: resample the sessions to one rate first"
    ]


def _population_problems(by_subject: dict[str, list[Session]]) -> list[str]:
    """One message per subject whose sessions hold several populations (declared
    populations; sessions without one are not counted): their units are different
    neurons, not the same tracked units, and cannot be concatenated."""
    problems = []
    for subj, ss in by_subject.items():
        found: dict[str, list[Session]] = {}
        for s in ss:
            if s.population is not None:
                found.setdefault(s.population, []).append(s)
        if len(found) < 2:
            continue
        detail = "; ".join(
            f"{pop!r}: " + ", ".join(_session_day(s) for s in pss) for pop, pss in found.items()
        )
        problems.append(
            f"subject {subj!r}: sessions of {len(found)} populations ({detail}) would be "
            "concatenated as if they recorded the same units; select one population, "
            f"e.g. to_fit_args(population={next(iter(found))!r}, ...)"
        )
    return problems


def _session_day(s: Session) -> str:
    """``"'m1-thal' (day 1)"``: a session id and its day, for messages."""
    return f"{s.session_id!r}" + (f" (day {s.day})" if s.day is not None else "")


def _unit_id_problems(by_subject: dict[str, list[Session]]) -> list[str]:
    """One message per later session of a subject whose unit ids differ from its first."""
    problems = []
    for subj, ss in by_subject.items():
        first = ss[0]
        for s in ss[1:]:
            if s.n_units != first.n_units or not np.array_equal(s.unit_ids, first.unit_ids):
                detail = ""
                if s.n_units == first.n_units:
                    differ = s.unit_ids.astype(object) != first.unit_ids.astype(object)
                    j = int(np.argmax(differ))
                    detail = (
                        f" (column {j}: unit {_scalar(first.unit_ids[j])!r} vs "
                        f"{_scalar(s.unit_ids[j])!r})"
                    )
                problems.append(
                    f"subject {subj!r}: sessions {first.session_id!r} ({first.n_units} "
                    f"units) and {s.session_id!r} ({s.n_units} units) have different "
                    f"unit ids{detail} and cannot be concatenated; select one day or "
                    "align units"
                )
    return problems


def _subject_arrays(
    sessions: list[Session], names: list[str], within_trials: bool, split_gaps: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate one subject's sessions for :meth:`SessionCollection.to_fit_args`.

    Returns neural ``(T, N)``, behaviour ``(T, p)`` with columns in ``names`` order, and
    group ids ``(T,)`` renumbered ``0 ..`` so that no group spans two sessions (see
    :func:`_fit_groups`).
    """
    neural, behavior, groups = [], [], []
    offset = 0
    for s in sessions:
        order = [s.behavior_names.index(n) for n in names]
        keep = np.ones(s.n_samples, dtype=bool)
        if within_trials:
            keep = s.trial_ids() >= 0
            if not keep.any():
                raise ValueError(f"session {s.session_id!r} has no samples in trials")
        g = _fit_groups(s, keep, split_gaps)
        neural.append(s.neural[keep])
        behavior.append(s.behavior[keep][:, order])
        groups.append(g + offset)
        offset += int(g.max()) + 1
    return np.concatenate(neural), np.concatenate(behavior), np.concatenate(groups)


def _fit_groups(s: Session, keep: np.ndarray, split_gaps: bool) -> np.ndarray:
    """Group ids ``0 ..`` of the kept samples of one session, for :meth:`to_fit_args`.

    Each segment of :meth:`Session.groups` (restricted to ``keep``) is one group,
    except that segments inside trials with the same non-missing
    :data:`CV_GROUP_COLUMN` value share one id (in order of first appearance). That
    merge is skipped, with a warning, when two merged segments would be adjacent in
    the kept samples: the estimator starts a lag window segment only where the id
    changes, so one id there would let lag windows join them.

    Parameters
    ----------
    s : Session
    keep : numpy.ndarray of bool, shape (T,)
        Samples kept (at least one).
    split_gaps : bool
        See :meth:`Session.groups`.

    Returns
    -------
    numpy.ndarray of int, shape (keep.sum(),)
    """
    _, seg = np.unique(s.groups(split_gaps=split_gaps)[keep], return_inverse=True)
    if CV_GROUP_COLUMN not in s.trials.columns:
        return seg
    starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])  # one run per segment
    trial = s.trial_ids()[keep][starts]
    label = s.trials[CV_GROUP_COLUMN].to_numpy()
    codes: dict = {}
    seg_code = np.array(
        [
            codes.setdefault(
                ("segment", k) if t < 0 or pd.isna(label[t]) else ("group", label[t]),
                len(codes),
            )
            for k, t in enumerate(trial)
        ],
        dtype=np.int64,
    )
    clash = np.flatnonzero(seg_code[1:] == seg_code[:-1])
    if clash.size:
        k = int(clash[0]) + 1
        t = float(s.timestamps[keep][starts[k]])
        warnings.warn(
            f"{s._label}: trials column {CV_GROUP_COLUMN!r} not used: two stretches of "
            f"group {_scalar(label[trial[k]])!r} meet at t = {t:.6g} s with no sample of "
            "another group between them (a time gap, masked samples or within_trials); "
            "one id there would let lag windows join them, so every segment is its own "
            "group and cross-validation may split a group",
            UserWarning,
            stacklevel=4,
        )
        return seg
    return seg_code[seg]
