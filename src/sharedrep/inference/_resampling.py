"""Private helpers shared by the subject-level resampling tests of :mod:`sharedrep.inference`.

Seeding (one :class:`numpy.random.SeedSequence` per call, so results never depend on
``n_jobs``), argument checks (counts, ``n_jobs``, model templates), the clone of a template
for a subset of subjects (:func:`_for_subjects`), quiet refits, the held-out score of a
fitted model, Monte-Carlo p-values (:func:`_upper_p`) and an ordered joblib map with
an optional progress bar. Used by
:mod:`~sharedrep.inference.permutation`, :mod:`~sharedrep.inference.bootstrap`,
:mod:`~sharedrep.inference.groups`, :mod:`~sharedrep.inference.transfer` and
:mod:`~sharedrep.inference.encoding`; imports only :mod:`sharedrep.utils` (and third-party
libraries).
"""

from __future__ import annotations

import contextlib
import numbers
import warnings

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import clone

from sharedrep.core.backends import reuse_statistics
from sharedrep.utils.parallel import n_threads, thread_cap
from sharedrep.utils.validation import check_subject_arrays


# --------------------------------------------------------------------------- helpers
def _seed_sequence(random_state) -> np.random.SeedSequence:
    """A SeedSequence from an int, None, a SeedSequence or a Generator."""
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative int; got {random_state}")
        return np.random.SeedSequence(int(random_state))
    raise TypeError(
        "random_state must be None, a non-negative int, a numpy SeedSequence or Generator; "
        f"got {random_state!r}"
    )


def _spawn_rngs(random_state, n: int) -> list[np.random.Generator]:
    """``n`` independent generators (one per permutation / draw)."""
    return [np.random.default_rng(c) for c in _seed_sequence(random_state).spawn(n)]


def _check_count(value, name: str, minimum: int = 1) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _check_n_jobs(n_jobs, model=None) -> int:
    """Validated ``n_jobs``; 1 (with a warning) for a model whose fits run elsewhere.

    With ``backend="dask"`` (or ``"torch"``) each refit already runs on the cluster (or
    the device); joblib worker processes would each start their own cluster (or device
    context), which fails or competes for it.
    """
    if not isinstance(n_jobs, numbers.Integral) or isinstance(n_jobs, bool) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero int (-1 = all cores); got {n_jobs!r}")
    backend = None if model is None else model.get_params().get("backend", "numpy")
    if n_jobs != 1 and backend in ("dask", "torch"):
        where = "cluster" if backend == "dask" else "torch device"
        warnings.warn(
            f"n_jobs={n_jobs} ignored: with backend={backend!r} every refit runs on the "
            f"{where} already; the refits run one after the other (n_jobs=1)",
            UserWarning,
            stacklevel=3,
        )
        return 1
    return int(n_jobs)


def _check_model(model, name: str = "model"):
    """The model must be a scikit-learn style ShaReD template (get_params + fit)."""
    if not (hasattr(model, "get_params") and hasattr(model, "fit")):
        raise TypeError(
            f"{name} must be a ShaReD estimator (used as a template and cloned); "
            f"got {type(model).__name__}"
        )
    return model


def _require_cv(model, name: str = "model", what: str = "this test"):
    if model.get_params().get("cv") is None:
        raise ValueError(
            f"{name} has cv=None: {what} needs the cross-validated held-out score "
            "(cv_results_['r2_dim']); give the model cv folds, e.g. ShaReD(..., cv=5)"
        )


def _for_subjects(template, idx, n_subjects: int, **params):
    """An unfitted clone of ``template`` for the subjects ``idx`` (in that order) of data
    holding ``n_subjects``.

    ``subject_weights`` follow their subjects (a subject drawn twice keeps its weight
    twice); ``params`` are set too, and the private components are skipped.
    """
    m = clone(template)
    given = m.get_params()
    if "private" in given:
        params.setdefault("private", False)
    weights = given.get("subject_weights")
    if weights is not None:
        weights = np.asarray(weights, dtype=float)
        if weights.shape != (n_subjects,):
            raise ValueError(
                f"subject_weights must be {n_subjects} numbers (one per subject of the data); "
                f"got {given['subject_weights']!r}"
            )
        weights = weights[np.asarray(idx, dtype=int)]
        if not weights.sum() > 0:
            raise ValueError(
                f"subjects {[int(i) for i in idx]} all have subject_weights 0: a model of "
                "them alone is undefined"
            )
        params["subject_weights"] = weights
    return m.set_params(**params)


def _reuses_subjects(model) -> bool:
    """Whether refits of ``model`` may reuse each subject's reduced statistics
    (:func:`sharedrep.core.backends.reuse_statistics`; the numpy backend)."""
    return model.get_params().get("backend") == "numpy"


@contextlib.contextmanager
def _refits(model):
    """The context of a procedure's fits: every subject reduced once when
    :func:`_reuses_subjects`. Yields the cache (None otherwise); it stays empty when no
    subject could be kept (``low_memory="strict"``, chosen or picked by ``"auto"`` for
    large data: totals are not kept)."""
    if not _reuses_subjects(model):
        yield None
        return
    with reuse_statistics() as cache:
        yield cache


def _refit_jobs(cache, n_jobs: int) -> int:
    """Jobs for the refits: 1 when the fits so far left their subjects in ``cache`` (it
    lives in this process, and what is left of each refit is small); else ``n_jobs``."""
    return 1 if cache else n_jobs


def _quiet_fit(model, Xs, Ys, gs):
    """Fit while silencing warnings that are expected on resampled / null data."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="no shared dimension", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*are constant", category=UserWarning)
        return model.fit(Xs, Ys, groups=None if all(g is None for g in gs) else gs)


def _heldout_r2(fitted, k: int) -> np.ndarray:
    """Pooled held-out R^2 of the first ``k`` latents at the selected alpha."""
    cvr = fitted.cv_results_
    i_alpha = cvr["best_index"][0]
    return np.asarray(cvr["r2_dim"][i_alpha, :k], dtype=float)


def _with_thread_cap(n: int, fn, args, kwargs):
    """``fn(*args, **kwargs)`` with at most ``n`` per-subject threads (a joblib task)."""
    with thread_cap(n):
        return fn(*args, **kwargs)


def _progress_map(tasks: list, n_jobs: int, progress: bool, description: str) -> list:
    """Run ``delayed`` tasks (in order) with joblib and an optional rich progress bar.

    With several jobs, each task's fit uses its share of the cores for its per-subject
    threads (:func:`sharedrep.utils.parallel.thread_cap`), so that ``n_jobs`` refits side
    by side do not each start a thread per core.
    """
    if n_jobs == 1:
        results_iter = (fn(*args, **kwargs) for fn, args, kwargs in tasks)
    else:
        share = max(1, n_threads() // max(1, effective_n_jobs(n_jobs)))
        capped = [delayed(_with_thread_cap)(share, fn, args, kwargs) for fn, args, kwargs in tasks]
        results_iter = Parallel(n_jobs=n_jobs, return_as="generator")(capped)
    if not progress:
        return list(results_iter)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    out = []
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=len(tasks))
        for res in results_iter:
            out.append(res)
            bar.advance(task)
    return out


def _upper_p(observed, null) -> np.ndarray:
    """Monte-Carlo p-values of large ``observed`` values against ``null`` draws.

    ``p = (1 + #{b : null[b] >= observed or null[b] is NaN}) / (1 + n)`` per column:
    ``observed`` (k,) or scalar, ``null`` (n, k) or (n,). A NaN null value (a refit that
    could not be scored) counts as at least as extreme, so a failed refit never makes the
    observed look rarer; a NaN observed value gives NaN, never the smallest p (which a
    plain comparison with NaN would give).
    """
    obs = np.asarray(observed, dtype=float)
    null = np.asarray(null, dtype=float)
    count = np.sum((null >= obs) | np.isnan(null), axis=0)
    return np.where(np.isnan(obs), np.nan, (1.0 + count) / (1.0 + null.shape[0]))


def _validate_data(model, neural, behavior, groups):
    nan_policy = model.get_params().get("nan_policy", "raise")
    return check_subject_arrays(neural, behavior, groups, nan_policy=nan_policy)
