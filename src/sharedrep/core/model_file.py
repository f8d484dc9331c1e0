"""The ShaReD model file: a portable ``.npz`` (arrays + JSON metadata, no pickle).

:func:`write_model` writes a fitted :class:`sharedrep.ShaReD` atomically;
:func:`read_model` reads it back and verifies every field it reads: the parameters as
the estimator checks them, each metadata field by type and range (one table of checks),
each array by shape (against the metadata and the other arrays), dtype and values
(finite, positive scales and penalties). A file edited by hand or truncated is refused
with a ``ValueError`` naming the field and the file, never accepted to fail later with a
raw numpy error, silent NaN or wrong results. What fit sets is given back exactly: the
subjects of ``diagnostics_["constant_behavior"]`` (text in JSON) as ints, the entries
of ``cv_results_`` in fit's order.

Format versions: 1 (the first), 2 (adds the behaviour-metric shrinkage, the fit's
diagnostics and the decoders of added subjects), 3 (adds ``behavior_names_in_``, the
behaviour column names of a fit on DataFrames, and ``neural_names_in_``, each subject's
neural unit names: a list with one entry per subject, null or the subject's names as
strings or as ints; each field null when there are none). Files of every earlier
version still load (a model from a version-1 or 2 file has neither attribute).

May import: numpy, :mod:`sharedrep.utils`, :mod:`sharedrep.core.design`.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from pathlib import Path

import numpy as np

from sharedrep.core.design import as_lags
from sharedrep.utils.files import atomic_write

FORMAT = "sharedrep.ShaReD"
FORMAT_VERSION = 3
_MODEL_ARRAYS = (
    "shared_axes_",
    "eigenvalues_",
    "explained_",
    "metric_",
    "behavior_scale_",
    "lags_",
    "subject_weights_",
)
_SUBJECT_ARRAYS = (
    "encoders_",
    "unit_means_",
    "unit_scales_",
    "constant_units_",
    "behavior_means_",
)
_PRIVATE_ARRAYS = ("behavior_axes", "behavior_cv_score", "neural_components", "neural_explained")
_DECODERS = ("decoder_coefs_", "own_coefs_")


# ---------------------------------------------------------------------------- writing
def _params(model) -> dict:
    params = {
        k: v.item() if isinstance(v, np.generic) else v for k, v in model.get_params().items()
    }
    for key in ("alphas", "subject_weights"):
        if params[key] is not None:
            params[key] = np.asarray(params[key], dtype=float).tolist()
    if not isinstance(params["lags"], numbers.Integral):
        params["lags"] = as_lags(params["lags"]).tolist()
    else:
        params["lags"] = int(params["lags"])
    if params["random_state"] is not None and not isinstance(
        params["random_state"], numbers.Integral
    ):
        raise TypeError("only an int or None random_state can be saved")
    return params


def _names(model) -> list[str] | None:
    """The behaviour column names as JSON text, or None when the fit had none."""
    names = getattr(model, "behavior_names_in_", None)
    return None if names is None else [str(name) for name in names]


def _unit_names(model) -> list | None:
    """Each subject's unit names (str or int, as JSON text) or None; None: no names."""
    names = getattr(model, "neural_names_in_", None)
    if names is None:
        return None
    return [
        None if unit is None else [c if isinstance(c, str) else int(c) for c in unit]
        for unit in names
    ]


def _metadata(model) -> dict:
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "params": _params(model),
        "alpha_": model.alpha_,
        "n_shared_": model.n_shared_,
        "n_subjects_": model.n_subjects_,
        "n_units_": list(map(int, model.n_units_)),
        "n_features_": model.n_features_,
        "behavior_names_in_": _names(model),
        "neural_names_in_": _unit_names(model),
        "subject_alphas_": list(map(float, model.subject_alphas_)),
        "shrinkage_": model._fitted_shrinkage(),
        "diagnostics_": getattr(model, "diagnostics_", None),
        "subject_decoders_": list(getattr(model, "subject_decoders_", [])),
        "subject_cv_scores_": list(getattr(model, "subject_cv_scores_", [])),
        "has_cv": model.cv_results_ is not None,
        "has_private": model.private_ is not None,
    }


def _arrays(model, meta: dict) -> dict:
    arrays = {key: getattr(model, key) for key in _MODEL_ARRAYS}
    for s in range(model.n_subjects_):
        for key in _SUBJECT_ARRAYS:
            arrays[f"{key}/{s}"] = getattr(model, key)[s]
        for key in _DECODERS:
            coefs = getattr(model, key, None)
            if coefs is not None and coefs[s] is not None:
                arrays[f"{key}/{s}"] = coefs[s]
        if model.private_ is not None:
            pc = model.private_[s]
            for name in _PRIVATE_ARRAYS:
                arrays[f"private_/{s}/{name}"] = getattr(pc, name)
            meta.setdefault("private_scalars", []).append(
                {"behavior_rank": pc.behavior_rank, "behavior_explained": pc.behavior_explained}
            )
    if model.cv_results_ is not None:
        cvr = dict(model.cv_results_)
        meta["cv_best_index"] = [int(i) for i in cvr.pop("best_index")]
        for key, val in cvr.items():
            arrays[f"cv_results_/{key}"] = np.asarray(val)
    return arrays


def write_model(model, path, overwrite: bool = False) -> Path:
    """Write a fitted model to ``path`` (``.npz``), atomically.

    Raises :class:`IsADirectoryError` when ``path`` is a directory (left untouched,
    whatever ``overwrite`` says), :class:`FileExistsError` when it exists and
    ``overwrite`` is false, and the estimator's parameter error when a parameter (set
    after the fit) is one that :func:`read_model` would refuse.
    """
    path = Path(path)
    if path.is_dir():  # never replaced, whatever overwrite says
        raise IsADirectoryError(
            f"{path} is a directory; give a file path, e.g. {path / 'model.npz'}"
        )
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    model._check_param_values()  # a file that load would refuse is never written
    meta = _metadata(model)
    arrays = _arrays(model, meta)
    arrays["__meta__"] = np.array(json.dumps(meta))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    return atomic_write(path, write, overwrite=overwrite)


# ---------------------------------------------------------------------------- reading
#: decoder names of added subjects (:data:`sharedrep.core.calibration.CANDIDATES`)
DECODERS = ("shared", "shared+private", "own")
_REQUIRED = object()  # default of a metadata field that every format version writes

#: ``cv_results_`` entries in the order fit sets them, each with its shape in the sizes
#: ``a`` (alphas), ``k`` (candidate n_shared), ``f`` (folds), ``s`` (subjects of the fit)
#: and ``h`` (shrinkages); ``best_index`` is kept in the metadata (``cv_best_index``)
_CV_FIELDS = {
    "alphas": ("a",),
    "n_shared": ("k",),
    "fold_scores": ("f", "a", "k"),
    "mean_score": ("a", "k"),
    "se_score": ("a", "k"),
    "r2_dim": ("a", "k"),
    "r2_subject_dim": ("a", "s", "k"),
    "best_index": None,
    "shrinkages": ("h",),
    "shrinkage_scores": ("h",),
}
_CV_SINCE_2 = ("shrinkages", "shrinkage_scores")  # absent from format-1 files


def _is_int(value, low: int | None = None, high: int | None = None) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and (low is None or value >= low)
        and (high is None or value <= high)
    )


def _is_number(value) -> bool:
    """A real number (NaN included), not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_positive(value) -> bool:
    return _is_number(value) and math.isfinite(value) and value > 0


def _is_fraction(value) -> bool:
    return _is_number(value) and 0 <= value <= 1


def _is_text(value) -> bool:
    return isinstance(value, str)


def _is_bool(value) -> bool:
    return isinstance(value, bool)


def _list_of(n: int, check):
    return lambda v: isinstance(v, list) and len(v) == n and all(check(x) for x in v)


def _is_names(value, n: int) -> bool:
    """``n`` distinct column names, all strings or all ints (not bools)."""
    return (_list_of(n, _is_text)(value) or _list_of(n, _is_int)(value)) and len(set(value)) == n


def _unit_names_field(n_units: list) -> dict:
    """The table entry of ``neural_names_in_``, once the unit counts are known."""
    S = len(n_units)
    return {
        "neural_names_in_": (
            None,
            lambda v: (
                v is None
                or (
                    isinstance(v, list)
                    and len(v) == S
                    and all(u is None or _is_names(u, n) for u, n in zip(v, n_units, strict=True))
                )
            ),
            f"null or a list of {S} entries (one per subject), each null or a list of "
            f"n_units_[s] distinct names, all strings or all ints (n_units_ = "
            f"{_short(n_units)})",
        )
    }


def _is_cv_scores(value) -> bool:
    return value is None or (
        isinstance(value, dict)
        and set(value) <= set(DECODERS)
        and all(_is_number(v) for v in value.values())
    )


def _is_constant_behavior(value, S: int, p: int) -> bool:
    """Subject (as JSON gives it: decimal text) -> non-empty list of feature indices."""
    return isinstance(value, dict) and all(
        isinstance(s, str)
        and re.fullmatch(r"0|[1-9][0-9]*", s) is not None
        and int(s) < S
        and isinstance(f, list)
        and len(f) > 0
        and all(_is_int(j, 0, p - 1) for j in f)
        for s, f in value.items()
    )


def _meta_fields(S: int, p: int) -> dict:
    """Metadata fields read once the counts are known: name -> (value when absent, or
    ``_REQUIRED``; check; what the value must be)."""
    return {
        "n_shared_": (
            _REQUIRED,
            lambda v: _is_int(v, 1, p),
            f"an int in [1, {p}] (at most n_features_)",
        ),
        "n_units_": (
            _REQUIRED,
            _list_of(S, lambda v: _is_int(v, 1)),
            f"a list of {S} positive int unit counts (one per subject)",
        ),
        "alpha_": (_REQUIRED, _is_positive, "a positive finite number"),
        "subject_alphas_": (
            _REQUIRED,
            _list_of(S, _is_positive),
            f"a list of {S} positive finite numbers (one per subject)",
        ),
        "shrinkage_": (None, lambda v: v is None or _is_fraction(v), "a number in [0, 1]"),
        "behavior_names_in_": (
            None,
            lambda v: v is None or (_list_of(p, _is_text)(v) and len(set(v)) == p),
            f"null or a list of {p} distinct strings (the behaviour column names)",
        ),
        "diagnostics_": (None, lambda v: v is None or isinstance(v, dict), "a mapping"),
        "subject_decoders_": (
            ["shared"] * S,
            _list_of(S, lambda v: v in DECODERS),
            f"a list of {S} decoder names (one per subject) among {DECODERS}",
        ),
        "subject_cv_scores_": (
            [None] * S,
            _list_of(S, _is_cv_scores),
            f"a list of {S} entries (one per subject), each null or a mapping decoder name "
            "-> number",
        ),
        "has_cv": (False, _is_bool, "true or false"),
        "has_private": (False, _is_bool, "true or false"),
    }


def _diagnostics_fields(S: int, p: int) -> dict:
    return {
        "n_shared_equals_features": (_REQUIRED, _is_bool, "true or false"),
        "shared_beats_mean": (_REQUIRED, _is_bool, "true or false"),
        "constant_behavior": (
            _REQUIRED,
            lambda v: _is_constant_behavior(v, S, p),
            f"a mapping subject (0..{S - 1}) -> non-empty list of feature indices (0..{p - 1})",
        ),
        "messages": (
            _REQUIRED,
            lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
            "a list of strings",
        ),
    }


def _private_scalar_fields(p: int, k: int) -> dict:
    return {
        "behavior_rank": (
            _REQUIRED,
            lambda v: _is_int(v, 0, p - k),
            f"an int in [0, {p - k}] (n_features_ - n_shared_)",
        ),
        "behavior_explained": (
            _REQUIRED,
            lambda v: _is_number(v) and math.isfinite(v),
            "a finite number",
        ),
    }


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _fields(values, table: dict, path: Path, prefix: str = "", strict: bool = False) -> dict:
    """The entries of ``values`` named in ``table``, checked (defaults filled in).

    ``strict``: entries the table does not name are refused too. Errors name the field
    (``prefix`` + name) and the file.
    """
    where = prefix.rstrip(".") or "metadata"
    if not isinstance(values, dict):
        raise ValueError(f"{path}: model field {where!r} must be a mapping; got {_short(values)}")
    unknown = sorted(set(values) - set(table)) if strict else []
    if unknown:
        raise ValueError(f"{path}: model field {where!r} holds unknown entries {unknown}")
    out = {}
    for name, (default, check, what) in table.items():
        field = prefix + name
        if name not in values:
            if default is _REQUIRED:
                raise ValueError(
                    f"{path}: model field {field!r} is missing (truncated or incomplete file)"
                )
            out[name] = default
        elif check(values[name]):
            out[name] = values[name]
        else:
            raise ValueError(
                f"{path}: model field {field!r} must be {what}; got {_short(values[name])}"
            )
    return out


class _Checker:
    """Shape and value checks of the arrays of one model file; errors name the field."""

    _KINDS = {"f": "floats", "i": "ints", "b": "bool"}

    def __init__(self, path: Path, arrays: dict):
        self.path, self.arrays = path, arrays

    def fail(self, field: str, problem: str):
        raise ValueError(f"{self.path}: model field {field!r} {problem}")

    def get(self, field: str, shape: tuple, *, finite=True, positive=False, kind="f"):
        """The array ``field``: of ``shape`` (``None``: any length), dtype kind ``kind``
        (``"f"`` floats, ``"i"`` ints, ``"b"`` bool), finite, and positive if asked."""
        if field not in self.arrays:
            self.fail(field, "is missing (truncated or incomplete file)")
        a = self.arrays[field]
        if a.ndim != len(shape) or any(
            n not in (None, m) for n, m in zip(shape, a.shape, strict=True)
        ):
            want = ", ".join("any" if n is None else str(n) for n in shape)
            self.fail(field, f"has shape {a.shape}; expected ({want}{',' * (len(shape) == 1)})")
        if a.dtype.kind != kind:
            self.fail(field, f"has dtype {a.dtype}; expected {self._KINDS[kind]}")
        if kind == "b":
            return a
        if finite and not np.all(np.isfinite(a)):
            self.fail(field, "holds NaN or infinite values")
        if positive and not np.all(a > 0):
            self.fail(field, "holds zero or negative values (they must be positive)")
        return a


def _new_model(cls, meta: dict, path: Path):
    """The estimator with the file's parameters, each checked as the estimator checks it.

    Parameters missing from the file (added after it was written) keep their defaults.
    """
    params = meta.get("params")
    if not isinstance(params, dict):
        raise ValueError(f"{path}: model field 'params' must be a mapping; got {_short(params)}")
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise ValueError(f"{path}: model field 'params' holds unknown parameters {unknown}")
    m = cls(**params)
    try:
        m._check_param_values()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: model field 'params' holds an invalid value: {exc}") from None
    return m


def _set_scalars(m, meta: dict, path: Path) -> tuple[int, int, int, bool, bool]:
    """The fitted scalars and lists; returns ``(S, p, k, has_cv, has_private)``."""
    counts = {
        "n_subjects_": (_REQUIRED, lambda v: _is_int(v, 1), "an int >= 1"),
        "n_features_": (_REQUIRED, lambda v: _is_int(v, 1), "an int >= 1"),
    }
    counts = _fields(meta, counts, path)
    S, p = counts["n_subjects_"], counts["n_features_"]
    f = _fields(meta, _meta_fields(S, p), path)
    k = f["n_shared_"]
    m.n_subjects_, m.n_features_, m.n_shared_ = S, p, k
    m.n_units_ = list(f["n_units_"])
    m.alpha_ = float(f["alpha_"])
    m.subject_alphas_ = [float(a) for a in f["subject_alphas_"]]
    m.shrinkage_ = None if f["shrinkage_"] is None else float(f["shrinkage_"])
    if f["behavior_names_in_"] is not None:  # absent, as after a fit on arrays
        m.behavior_names_in_ = np.array(f["behavior_names_in_"], dtype=object)
    units = _fields(meta, _unit_names_field(m.n_units_), path)["neural_names_in_"]
    if units is not None and any(u is not None for u in units):
        m.neural_names_in_ = [None if u is None else np.array(u, dtype=object) for u in units]
    diagnostics = f["diagnostics_"] or {}  # format 1 (and models loaded from it): none
    if diagnostics:
        diagnostics = _fields(
            diagnostics, _diagnostics_fields(S, p), path, "diagnostics_.", strict=True
        )
        # JSON keys are text: the subjects are ints, as fit sets them
        diagnostics["constant_behavior"] = {
            int(s): list(features) for s, features in diagnostics["constant_behavior"].items()
        }
        diagnostics["messages"] = list(diagnostics["messages"])
    m.diagnostics_ = diagnostics
    m.subject_decoders_ = list(f["subject_decoders_"])
    m.subject_cv_scores_ = [
        None if scores is None else {name: float(v) for name, v in scores.items()}
        for scores in f["subject_cv_scores_"]
    ]
    return S, p, k, f["has_cv"], f["has_private"]


def _set_model_arrays(m, check: _Checker, p: int, k: int, n_fit: int) -> None:
    m.shared_axes_ = check.get("shared_axes_", (p, k))
    m.eigenvalues_ = check.get("eigenvalues_", (k,))
    m.explained_ = check.get("explained_", (k,), finite=False)
    m.metric_ = check.get("metric_", (p, p))
    m.behavior_scale_ = check.get("behavior_scale_", (p,), positive=True)
    lags = check.get("lags_", (None,), kind="i")
    try:
        as_lags(lags)
    except (TypeError, ValueError):
        check.fail("lags_", f"must be a non-empty 1-D array of distinct ints; got {lags}")
    m.lags_ = lags
    weights = check.get("subject_weights_", (n_fit,))
    if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
        check.fail("subject_weights_", "must be non-negative and sum to 1")
    m.subject_weights_ = weights


def _set_subject_arrays(m, check: _Checker, S: int, p: int, k: int) -> None:
    n_lags = m.lags_.size
    for key in (*_SUBJECT_ARRAYS, *_DECODERS):
        setattr(m, key, [])
    for s in range(S):
        q = m.n_units_[s] * n_lags
        m.encoders_.append(check.get(f"encoders_/{s}", (q, k)))
        m.unit_means_.append(check.get(f"unit_means_/{s}", (q,)))
        m.unit_scales_.append(check.get(f"unit_scales_/{s}", (q,), positive=True))
        m.constant_units_.append(check.get(f"constant_units_/{s}", (q,), kind="b"))
        m.behavior_means_.append(check.get(f"behavior_means_/{s}", (p,)))
        for key in _DECODERS:
            field = f"{key}/{s}"
            getattr(m, key).append(check.get(field, (q, p)) if field in check.arrays else None)


def _private(m, check: _Checker, meta: dict, S: int, private_cls) -> list:
    path, p, k = check.path, m.n_features_, m.n_shared_
    table = {
        "private_scalars": (
            _REQUIRED,
            _list_of(S, lambda v: isinstance(v, dict)),
            f"a list of {S} mappings (one per subject)",
        )
    }
    scalars = _fields(meta, table, path)["private_scalars"]
    out = []
    for s in range(S):
        one = _fields(scalars[s], _private_scalar_fields(p, k), path, f"private_scalars[{s}].")
        rank = one["behavior_rank"]
        q = m.n_units_[s] * m.lags_.size
        field = f"private_/{s}/"
        axes = check.get(field + "behavior_axes", (p, rank))
        score = check.get(field + "behavior_cv_score", (None,), finite=False)
        if score.size not in (0, p - k) or (rank and not score.size):
            check.fail(
                field + "behavior_cv_score",
                f"must hold {p - k} scores (n_features_ - n_shared_), or none when "
                "behavior_rank is 0",
            )
        components = check.get(field + "neural_components", (q, None))
        explained = check.get(field + "neural_explained", (components.shape[1],))
        out.append(
            private_cls(
                behavior_axes=axes,
                behavior_rank=rank,
                behavior_cv_score=score,
                behavior_explained=float(one["behavior_explained"]),
                neural_components=components,
                neural_explained=explained,
            )
        )
    return out


def _cv_results(m, check: _Checker, meta: dict, n_fit: int) -> dict:
    prefix = "cv_results_/"
    present = {key[len(prefix) :] for key in check.arrays if key.startswith(prefix)}
    unknown = sorted(present - set(_CV_FIELDS) | (present & {"best_index"}))
    if unknown:
        check.fail(prefix + unknown[0], "is not a cv_results_ entry")
    alphas = check.get(prefix + "alphas", (None,), positive=True)
    n_shared = check.get(prefix + "n_shared", (None,), kind="i")
    a, k_max = alphas.size, n_shared.size
    if a == 0:
        check.fail(prefix + "alphas", "holds no alphas")
    if not 1 <= k_max <= m.n_features_ or not np.array_equal(n_shared, np.arange(1, k_max + 1)):
        check.fail(prefix + "n_shared", f"must be 1, 2, ..., k_max <= {m.n_features_}")
    cv = {"alphas": alphas, "n_shared": n_shared}
    h = 0
    if present & set(_CV_SINCE_2):
        cv["shrinkages"] = check.get(prefix + "shrinkages", (None,))
        h = cv["shrinkages"].size
        if h == 0 or np.any(cv["shrinkages"] < 0) or np.any(cv["shrinkages"] > 1):
            check.fail(prefix + "shrinkages", "must hold shrinkage values in [0, 1]")
    folds = check.get(prefix + "fold_scores", (None, a, k_max), finite=False)
    sizes = {"a": a, "k": k_max, "f": folds.shape[0], "s": n_fit, "h": h}
    best = {
        "cv_best_index": (
            _REQUIRED,
            lambda v: (
                isinstance(v, list)
                and len(v) == 2
                and _is_int(v[0], 0, a - 1)
                and _is_int(v[1], 1, k_max)
            ),
            f"[i_alpha, k] with i_alpha in [0, {a - 1}] and k in [1, {k_max}]",
        )
    }
    out = {}
    for name, dims in _CV_FIELDS.items():
        if dims is None:
            out[name] = tuple(_fields(meta, best, check.path)["cv_best_index"])
        elif name in cv:
            out[name] = cv[name]
        elif name not in _CV_SINCE_2 or h:
            shape = tuple(sizes[d] for d in dims)
            out[name] = check.get(prefix + name, shape, finite=False)
    return out


def _read_file(path: Path) -> tuple[dict, dict]:
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {key: z[key] for key in z.files}
        meta = json.loads(str(arrays.pop("__meta__")))
    except Exception as exc:
        raise ValueError(f"{path} is not a readable sharedrep model file: {exc}") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path} is not a sharedrep model file (metadata is not a mapping)")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a sharedrep model file (format {meta.get('format')!r})")
    version = meta.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(
            f"{path}: model field 'version' must be a format version 1..{FORMAT_VERSION}; "
            f"got {version!r}"
        )
    if version > FORMAT_VERSION:
        raise ValueError(f"{path} was written by a newer sharedrep (format {version})")
    return arrays, meta


def read_model(cls, private_cls, path):
    """Read and verify a model written by :func:`write_model`.

    Every field read is checked: the parameters as the estimator checks them
    (``_check_param_values``), each metadata field by type and range (the tables of
    :func:`_meta_fields` and its companions), each array by shape, dtype and values.

    Parameters
    ----------
    cls : type
        The estimator class (:class:`sharedrep.ShaReD`).
    private_cls : type
        The private-components class (:class:`sharedrep.core.estimator.PrivateComponents`).
    path : str or Path

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is not a complete, consistent sharedrep model file; the message names
        the field.
    """
    path = Path(path)
    arrays, meta = _read_file(path)
    try:
        m = _new_model(cls, meta, path)
        S, p, k, has_cv, has_private = _set_scalars(m, meta, path)
        check = _Checker(path, arrays)
        n_fit = int(np.asarray(arrays.get("subject_weights_", np.zeros(0))).size)
        if not 1 <= n_fit <= S:
            check.fail("subject_weights_", f"must hold 1 to {S} subject weights")
        _set_model_arrays(m, check, p, k, n_fit)
        _set_subject_arrays(m, check, S, p, k)
        m.private_ = _private(m, check, meta, S, private_cls) if has_private else None
        m.cv_results_ = _cv_results(m, check, meta, n_fit) if has_cv else None
    except ValueError:
        raise
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(
            f"{path} is truncated, incomplete or corrupt ({type(exc).__name__}: {exc})"
        ) from exc
    return m
