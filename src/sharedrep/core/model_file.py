"""The ShaReD model file: a portable ``.npz`` (arrays + JSON metadata, no pickle).

:func:`write_model` writes a fitted :class:`sharedrep.ShaReD` atomically;
:func:`read_model` reads it back and verifies it: every array's shape against the
metadata and the other arrays, finite values, positive scales and penalties. A file
edited by hand or truncated is refused with a ``ValueError`` naming the field, never
accepted to fail later with a raw numpy error or silent NaN.

Format versions: 1 (the first), 2 (adds the behaviour-metric shrinkage, the fit's
diagnostics and the decoders of added subjects). Version-1 files still load.

May import: numpy, :mod:`sharedrep.utils`, :mod:`sharedrep.core.design`.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path

import numpy as np

from sharedrep.core.design import as_lags
from sharedrep.utils.files import atomic_write

FORMAT = "sharedrep.ShaReD"
FORMAT_VERSION = 2
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

    Raises :class:`FileExistsError` when ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    meta = _metadata(model)
    arrays = _arrays(model, meta)
    arrays["__meta__"] = np.array(json.dumps(meta))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    return atomic_write(path, write, overwrite=overwrite)


# ---------------------------------------------------------------------------- reading
class _Checker:
    """Shape and value checks of the arrays of one model file; errors name the field."""

    def __init__(self, path: Path, arrays: dict):
        self.path, self.arrays = path, arrays

    def fail(self, field: str, problem: str):
        raise ValueError(f"{self.path}: model field {field!r} {problem}")

    def get(self, field: str, shape: tuple, *, finite=True, positive=False, dtype=None):
        if field not in self.arrays:
            self.fail(field, "is missing (truncated or incomplete file)")
        a = self.arrays[field]
        if a.shape != tuple(shape):
            self.fail(field, f"has shape {a.shape}; expected {tuple(shape)}")
        if dtype is bool:
            if a.dtype != np.bool_:
                self.fail(field, f"has dtype {a.dtype}; expected bool")
            return a
        if not np.issubdtype(a.dtype, np.number):
            self.fail(field, f"has dtype {a.dtype}; expected numbers")
        if finite and not np.all(np.isfinite(a)):
            self.fail(field, "holds NaN or infinite values")
        if positive and not np.all(a > 0):
            self.fail(field, "holds zero or negative values (scales must be positive)")
        return a


def _count(meta: dict, key: str, path: Path, minimum: int = 1) -> int:
    value = meta.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{path}: model field {key!r} must be an int >= {minimum}; got {value!r}")
    return value


def _subject_list(meta: dict, key: str, S: int, path: Path, default=None) -> list:
    value = meta.get(key, default)
    if not isinstance(value, list) or len(value) != S:
        raise ValueError(
            f"{path}: model field {key!r} must list one entry per subject ({S}); got {value!r}"
        )
    return value


def _set_model_arrays(m, check: _Checker, p: int, k: int, n_fit: int) -> None:
    m.shared_axes_ = check.get("shared_axes_", (p, k))
    m.eigenvalues_ = check.get("eigenvalues_", (k,))
    m.explained_ = check.get("explained_", (k,), finite=False)
    m.metric_ = check.get("metric_", (p, p))
    m.behavior_scale_ = check.get("behavior_scale_", (p,), positive=True)
    lags = check.arrays.get("lags_")
    if (
        lags is None
        or lags.ndim != 1
        or lags.size == 0
        or not np.issubdtype(lags.dtype, np.integer)
    ):
        check.fail("lags_", "must be a non-empty 1-D array of ints")
    m.lags_ = lags
    weights = check.get("subject_weights_", (n_fit,))
    if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
        check.fail("subject_weights_", "must be non-negative and sum to 1")
    m.subject_weights_ = weights


def _set_subject_arrays(m, check: _Checker, meta: dict, S: int, p: int, k: int) -> None:
    n_lags = m.lags_.size
    for key in (*_SUBJECT_ARRAYS, *_DECODERS):
        setattr(m, key, [])
    for s in range(S):
        q = m.n_units_[s] * n_lags
        m.encoders_.append(check.get(f"encoders_/{s}", (q, k)))
        m.unit_means_.append(check.get(f"unit_means_/{s}", (q,)))
        m.unit_scales_.append(check.get(f"unit_scales_/{s}", (q,), positive=True))
        m.constant_units_.append(check.get(f"constant_units_/{s}", (q,), dtype=bool))
        m.behavior_means_.append(check.get(f"behavior_means_/{s}", (p,)))
        for key in _DECODERS:
            field = f"{key}/{s}"
            getattr(m, key).append(check.get(field, (q, p)) if field in check.arrays else None)


def _set_private(m, check: _Checker, meta: dict, S: int, private_cls) -> None:
    m.private_ = None
    if not meta.get("has_private"):
        return
    scalars = _subject_list(meta, "private_scalars", S, check.path)
    m.private_ = []
    for s in range(S):
        fields = {}
        for name in _PRIVATE_ARRAYS:
            field = f"private_/{s}/{name}"
            if field not in check.arrays:
                check.fail(field, "is missing (truncated or incomplete file)")
            fields[name] = check.arrays[field]
        if fields["behavior_axes"].shape[0] != m.n_features_:
            check.fail(f"private_/{s}/behavior_axes", "has the wrong number of features")
        q = m.n_units_[s] * m.lags_.size
        if fields["neural_components"].shape[0] != q:
            check.fail(f"private_/{s}/neural_components", f"must have {q} rows")
        m.private_.append(private_cls(**fields, **scalars[s]))


def _set_cv_results(m, arrays: dict, meta: dict) -> None:
    m.cv_results_ = None
    if meta.get("has_cv"):
        m.cv_results_ = {
            key.split("/", 1)[1]: val
            for key, val in arrays.items()
            if key.startswith("cv_results_/")
        }
        m.cv_results_["best_index"] = tuple(meta["cv_best_index"])


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


def _set_scalars(m, meta: dict, path: Path) -> tuple[int, int, int]:
    S = _count(meta, "n_subjects_", path)
    p = _count(meta, "n_features_", path)
    k = _count(meta, "n_shared_", path)
    if k > p:
        raise ValueError(f"{path}: model field 'n_shared_' ({k}) exceeds n_features_ ({p})")
    m.n_subjects_, m.n_features_, m.n_shared_ = S, p, k
    units = _subject_list(meta, "n_units_", S, path)
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in units):
        raise ValueError(
            f"{path}: model field 'n_units_' must hold positive int counts; got {units!r}"
        )
    m.n_units_ = list(units)
    alphas = np.asarray(_subject_list(meta, "subject_alphas_", S, path), dtype=float)
    alpha = float(meta.get("alpha_", np.nan))
    if not (
        np.all(np.isfinite(alphas)) and np.all(alphas > 0) and np.isfinite(alpha) and alpha > 0
    ):
        raise ValueError(f"{path}: model fields 'alpha_'/'subject_alphas_' must be positive")
    m.alpha_, m.subject_alphas_ = alpha, alphas.tolist()
    m.shrinkage_ = meta.get("shrinkage_")
    m.diagnostics_ = meta.get("diagnostics_") or {}
    m.subject_decoders_ = _subject_list(meta, "subject_decoders_", S, path, ["shared"] * S)
    m.subject_cv_scores_ = _subject_list(meta, "subject_cv_scores_", S, path, [None] * S)
    return S, p, k


def read_model(cls, private_cls, path):
    """Read and verify a model written by :func:`write_model`.

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
        m = cls(**meta["params"])
        S, p, k = _set_scalars(m, meta, path)
        check = _Checker(path, arrays)
        n_fit = int(np.asarray(arrays.get("subject_weights_", np.zeros(0))).size)
        if not 1 <= n_fit <= S:
            check.fail("subject_weights_", f"must hold 1 to {S} subject weights")
        _set_model_arrays(m, check, p, k, n_fit)
        _set_subject_arrays(m, check, meta, S, p, k)
        _set_private(m, check, meta, S, private_cls)
        _set_cv_results(m, arrays, meta)
    except ValueError:
        raise
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(
            f"{path} is truncated, incomplete or corrupt ({type(exc).__name__}: {exc})"
        ) from exc
    return m
