"""The ShaReD estimator (Shared Representation Discovery).

Subjects ``s = 1..S`` have neural activity :math:`X_s` (``T_s x N_s``, their own units)
and the same ``p`` behavioural features :math:`Y_s` (``T_s x p``). After per-subject
standardisation and lag embedding (:math:`\\tilde X_s`, ``n_s x q_s`` with
``q_s = N_s * n_lags``), ShaReD solves

.. math::

    M(a)\\, v = \\rho\\, C_m v, \\qquad
    M(a) = \\sum_s \\frac{w_s}{n_s} Y_s' \\tilde X_s G_s(a)^{-1} \\tilde X_s' Y_s, \\qquad
    G_s(a) = \\tilde X_s' \\tilde X_s + a\\, n_s I,

for the top-``k`` shared behavioural axes ``V`` (``p x k``, :math:`V' C_m V = I`), and
fits one encoder per subject :math:`A_s = G_s(a)^{-1} \\tilde X_s' Y_s V`.
"""

from __future__ import annotations

import copy
import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from sharedrep.core import backends, calibration, data_pass, model_file, solver
from sharedrep.core.cv import select_grid
from sharedrep.core.design import as_lags, lag_embed, valid_rows
from sharedrep.utils.parallel import thread_map
from sharedrep.utils.params import (
    Interval,
    InvalidParameterError,
    Options,
    Predicate,
    TypeOf,
    validate_params,
)
from sharedrep.utils.validation import (
    check_array,
    check_column_names,
    check_groups,
    check_subject_arrays,
    check_subject_index,
    common_column_names,
    subject_column_names,
)

__all__ = ["ShaReD", "PrivateComponents"]

DEFAULT_ALPHAS = np.logspace(-4, 3, 15)
#: shrinkage values of the behaviour metric tried by cross-validation (``shrinkage="auto"``)
SHRINKAGE_GRID = (0.0, 1e-3, 1e-2, 1e-1)
#: shrinkage used when the pooled behaviour covariance is singular and none is chosen
MIN_SHRINKAGE = 1e-3
LOW_MEMORY_BYTES = 64 * 2**20  # low_memory="auto": chunk statistics beyond this are reduced
#: low_memory="auto": "strict" (totals read again, not kept) when the totals exceed this
LOW_MEMORY_STRICT_BYTES = 2 * 2**30
_ALPHA_WORDS = "a positive number (use e.g. 1e-8 for the unregularised limit)"


def _is_count_or_auto(value) -> bool:
    """An int (not a bool; its range is checked against the data) or ``"auto"``."""
    if isinstance(value, str):
        return value == "auto"
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_low_memory(value) -> bool:
    return isinstance(value, bool | np.bool_) or (
        isinstance(value, str) and value in ("auto", "strict")
    )


def _is_positive_finite(value) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and bool(np.isfinite(value))
        and value > 0
    )


def _alpha_grid(alphas) -> np.ndarray:
    """``alphas`` as a float array, refused unless a 1-D array-like of positive finite numbers.

    An infinite alpha would zero every encoder (and give a model that ``load`` refuses);
    a set or a mapping has no order and is no array-like.
    """
    what = "a non-empty 1-D array-like (list, tuple or array) of positive finite numbers"
    if isinstance(alphas, str | bytes | set | frozenset | dict) or not (
        isinstance(alphas, list | tuple | np.ndarray) or hasattr(alphas, "__array__")
    ):
        raise InvalidParameterError(
            f"ShaReD: alphas must be {what}; got {type(alphas).__name__} {alphas!r}"
        )
    raw = np.asarray(alphas)
    try:
        if raw.dtype.kind not in "iufO":  # not bools, complex, strings, dates
            raise TypeError
        grid = raw.astype(np.float64)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"ShaReD: alphas must be {what}; got {alphas!r}") from None
    if grid.ndim != 1 or grid.size == 0:
        raise InvalidParameterError(f"ShaReD: alphas must be {what}; got {alphas!r}")
    bad = np.flatnonzero(~(np.isfinite(grid) & (grid > 0)))
    if bad.size:
        raise InvalidParameterError(
            f"ShaReD: alphas must be positive finite numbers (use e.g. 1e-8 for the "
            f"unregularised limit); got {float(grid[bad[0]])} at index {bad[0]} of {alphas!r}"
        )
    return grid


def _choice(*values: str) -> Predicate:
    """One of the strings ``values``, described as ``'a', 'b' or 'c'``."""
    words = [repr(v) for v in values]
    return Predicate(
        lambda v: isinstance(v, str) and v in values,
        ", ".join(words[:-1]) + " or " + words[-1],
    )


@dataclass
class PrivateComponents:
    """What stays private to one subject (docs/method.md, "Private structure").

    Attributes
    ----------
    behavior_axes : ndarray (p, r)
        Behaviour-private axes: reduced-rank regression of the behaviour residual outside
        the shared subspace on the subject's lagged neural activity, in pooled-standardised
        behaviour units (orthonormal columns).
    behavior_rank : int
        ``r``, chosen by cross-validation (0 when nothing private is predictable).
    behavior_cv_score : ndarray (p - k,)
        Cross-validated score of each rank ``r``: ``sum_{j <= r} (SST_j - SSE_j) /
        SST_res`` pooled over folds, where ``SSE_j`` is the held-out error of private
        latent ``j`` (predicted with the training intercept) and ``SST_j``, ``SST_res``
        are the held-out sums of squares of that latent and of the residual behaviour
        about their *held-out* means (the ``"variance"`` selection score of
        :func:`sharedrep.core.solver.cv_criterion`). Each latent must beat its held-out mean,
        so the score is conservative: it exceeds the plain held-out behaviour R^2 of the
        rank-``r`` prediction by the fold-to-fold drift of the behaviour mean outside
        the ``r`` axes, but is not above the R^2 gained over predicting the training mean.
    behavior_explained : float
        That score at the chosen rank, as a fraction of the subject's total
        (standardised) held-out behaviour variance.
    neural_components : ndarray (q, m)
        Neural-private components: leading principal axes of the standardised lagged
        activity after regressing out the shared latents ``z = Y V``.
    neural_explained : ndarray (m,)
        Fraction of the subject's total standardised neural variance along each component.
    """

    behavior_axes: np.ndarray
    behavior_rank: int
    behavior_cv_score: np.ndarray
    behavior_explained: float
    neural_components: np.ndarray
    neural_explained: np.ndarray


class ShaReD(BaseEstimator):
    """Shared Representation Discovery across subjects with different neurons.

    Finds ``k`` behavioural axes shared by all subjects, a linear encoder per subject that
    maps its (lagged) neural activity onto them, and what stays private to each subject.

    Parameters
    ----------
    n_shared : int or "auto", default=2
        Number of shared dimensions ``k``; ``"auto"`` selects it by cross-validation
        (up to ``max_shared``).
    alpha : float or None, default=None
        Scale-free ridge parameter ``a`` (> 0) of :math:`G_s(a) = \\tilde X_s'\\tilde X_s +
        a n_s I` on unit-variance columns. ``None`` selects it from ``alphas`` by
        cross-validation.
    lags : int or sequence of int, default=0
        Lags in samples. An int ``L`` means lags ``0..L``. Lag ``l > 0``: neural activity
        at ``t - l`` predicts behaviour at ``t``.
    behavior_metric : {"correlation", "variance"}, default="correlation"
        ``"correlation"`` (CCA-like: finds well-encoded directions even when their
        variance is low) or ``"variance"`` (reduced-rank regression with a shared readout).
    cv : int or None, default=5
        Number of cross-validation folds over trials (without trial ids: contiguous blocks
        holding equal numbers of usable samples).
        ``None`` skips cross-validation (``alpha`` and ``n_shared`` must then be given).
    random_state : int, numpy RandomState or None, default=None
        When given, trials are assigned to folds in a random order seeded by it (an int
        in ``[0, 2**32 - 1]``); otherwise the assignment is deterministic. Only an int
        or None can be saved.
    alphas : array-like or None, default=None
        Alpha grid for selection: positive finite numbers (used in increasing order);
        default ``logspace(-4, 3, 15)``.
    max_shared : int or None, default=None
        Largest ``k`` tried when ``n_shared="auto"`` (default ``min(p, 10)``).
    selection : {"best", "one_se"}, default="best"
        Selection rule on the cross-validated score.
    shrinkage : float in [0, 1] or "auto", default="auto"
        Shrinkage of the behaviour covariance towards ``tr(C)/p I`` in the
        ``"correlation"`` metric (0 = plain CCA metric). ``"auto"`` chooses it by the
        same cross-validation as ``alpha`` and ``n_shared``, over :data:`SHRINKAGE_GRID`
        (0 included: shrinking costs axis recovery when the shared axes lie in
        low-variance behaviour directions); without cross-validation it is 0, or
        :data:`MIN_SHRINKAGE` when the pooled behaviour covariance is singular. The
        value used is ``shrinkage_``.
    subject_weights : array-like of shape (S,) or None
        Weights ``w_s`` of the subjects in the pooled matrices (normalised to sum to 1;
        default equal). They also weight each subject's held-out sums of squares in the
        cross-validated selection score (relative to equal weights, which pool the
        subjects' held-out samples as they are), so a subject of weight 0 plays no part
        in choosing ``alpha`` and ``n_shared``.
    nan_policy : {"raise", "omit"}, default="raise"
        ``"omit"`` drops samples with NaN/inf in behaviour, and every lag window that
        contains a non-finite neural sample. The masked entries of numpy masked arrays
        and ``pd.NA`` in pandas nullable columns count as NaN.
    private : bool, default=True
        Also estimate the private components (:class:`PrivateComponents`).
    backend : {"numpy", "dask", "torch"}, default="numpy"
        Where the pass over the data runs (:mod:`sharedrep.core.backends`). ``"numpy"``: in
        this process. ``"dask"``: one task per subject on a ``dask.distributed`` cluster
        (a private ``LocalCluster`` unless one is set with
        :func:`sharedrep.core.backends.dask.use_cluster`; see ``docs/scaling.md``); each task
        reads its subject where the data live and returns only small matrices.
        ``"torch"``: the data pass and the cross-validation solves with PyTorch on
        ``device``. All give the same model up to rounding.
    device : str, default="cpu"
        Torch device for ``backend="torch"`` (``"cuda"``, ``"cuda:1"``, ``"cpu"``); the
        other backends need ``"cpu"``.
    dtype : {"float64", "float32"}, default="float64"
        Precision of the data pass (lag embedding and cross-products). ``"float32"``
        halves its memory traffic for very large problems; the products are summed in
        float64 over blocks of 4096 samples and every solve is float64 (accuracy: see
        ``docs/benchmarks.md``). Data that float32 products cannot hold (a unit or
        feature varying about its mean by more than about 2.9e17, or, not constant, by
        less than about 1.1e-19) is refused: use ``"float64"`` or rescale it.
    form : {"auto", "primal", "dual"}, default="auto"
        Form of the ridge solves. ``"primal"``: ``q x q`` systems from sufficient
        statistics (``q`` = units x lags). ``"dual"``: kernel ``n x n`` systems from the
        kept rows (:mod:`sharedrep.core.dual`), cheaper when ``q`` exceeds the samples.
        ``"auto"``: the dual form for the subjects whose lagged columns outnumber their
        kept samples, the primal form for the others. Same model either way (up to
        rounding). The torch backend solves the primal form only (``"auto"`` means
        primal there).
    low_memory : bool, "strict" or "auto", default="auto"
        numpy backend: ``True`` reduces each subject's cross-validation statistics as soon
        as its data pass is done (its folds solved for the whole alpha grid and kept as
        ``p x p`` matrices per fold and alpha) and keeps only its total statistics, so that
        peak extra memory is about one subject's chunk statistics per worker thread plus
        one ``(q + p + 1)``-square total per subject, not every subject's chunk statistics
        (:mod:`sharedrep.core.backends._streaming`, ``docs/scaling.md``). Same model up to
        rounding: the final fit is the same computation (bit for bit at the same selected
        settings); the held-out errors are reordered algebra (~1e-14 relative), so the
        cross-validation tables are not bit for bit those of ``False``. ``False``: keep
        every subject's chunk statistics (the earlier path; equal bit for bit to
        ``backend="dask"``). ``"auto"``: ``True`` when every subject's chunk statistics
        together would exceed 64 MiB (``S * n_folds * (q + p + 1)^2 * 8`` bytes), and
        ``"strict"`` when the totals alone would exceed 2 GiB (``S * (q + p + 1)^2 * 8``).
        ``"strict"``: as ``True``, but not even the totals are kept; the final fit and
        the private components read each subject's data again, one subject per worker
        thread (one more data pass each; measured 1.6 to 2.7 times the time of
        ``True``, ``docs/scaling.md``), so peak extra memory is about one subject's chunk
        statistics per worker thread plus ``O(S (n_folds n_alphas p^2 + q p))``, whatever
        the number of subjects. Same model as ``True``, bit for bit with an integer
        ``random_state`` (the same sums of the same chunks; otherwise to rounding: the
        same rows, possibly chunked otherwise on the second pass). Subjects in
        the kernel form keep their rows either way; the dask and torch backends ignore
        it.

    Attributes
    ----------
    shared_axes_ : ndarray (p, k)
        Loadings of the shared dimensions on behaviour features in pooled-standardised
        units; ``z_s = ((Y_s - mean_s) / behavior_scale_) @ shared_axes_``.
    encoders_ : list of ndarray (N_s * n_lags, k)
        Subject encoders on standardised lagged units (lag-major columns).
    alpha_ : float
        Ridge parameter used.
    n_shared_ : int
        Number of shared dimensions ``k``.
    explained_ : ndarray (k,)
        **In-sample** (not cross-validated: read ``cv_results_["r2_dim"]`` for held-out
        scores) pooled fraction of each shared latent's variance explained by neural
        activity, ``sum_s w_s/n_s z_s' z^_s / sum_s w_s/n_s z_s' z_s`` (the ``rho_k`` of
        the unshrunk correlation metric), in ``[0, 1]``. Without ridge it is the
        in-sample R^2 of ``z^``; with ridge it is smaller than that R^2 (the shrunken
        predictions' covariance with the latents, not their squared error).
    eigenvalues_ : ndarray (k,)
        Generalized eigenvalues ``rho_k``. With the correlation metric and no shrinkage
        they equal ``explained_``; the metric's shrinkage (``shrinkage_``) shrinks ``C_m``
        and so makes ``rho_k`` differ slightly (it can exceed 1): read ``explained_`` for
        the fraction explained.
    cv_results_ : dict or None
        ``alphas`` (n_alphas,), ``n_shared`` (k_max,), ``fold_scores``
        (n_folds, n_alphas, k_max), ``mean_score``, ``se_score`` (n_alphas, k_max): the
        selection score (see :func:`sharedrep.core.solver.cv_criterion`; ``mean_score`` pools
        the held-out errors over folds, :func:`sharedrep.core.solver.pooled_criterion`, and
        ``se_score`` is the standard error of the per-fold scores); ``r2_dim``
        (n_alphas, k_max) and ``r2_subject_dim`` (n_alphas, S, k_max): pooled held-out R^2
        of each latent predicted from neural activity (``r2_dim`` and the scores weight
        each subject's sums of squares by its subject weight relative to equal weights;
        ``r2_subject_dim`` is per subject); ``best_index`` (i_alpha, k); ``shrinkages``
        (n_shrinkage,) the shrinkage values tried and ``shrinkage_scores`` the best
        ``mean_score`` of each (the other entries are those of the chosen shrinkage).
    shrinkage_ : float
        Behaviour-metric shrinkage used (chosen when ``shrinkage="auto"``).
    diagnostics_ : dict
        What the fit says about itself: ``n_shared_equals_features`` (the shared axes
        then constrain nothing), ``shared_beats_mean`` (some shared dimension is
        predicted better than its held-out mean), ``constant_behavior`` (subject ->
        constant behaviour features) and the ``messages`` that were warned.
    subject_cv_scores_ : list of (dict or None)
        Per subject: None for the subjects of the fit; for a subject added with
        :meth:`add_subject`, the pooled inner-CV R^2 of each candidate decoder
        (``"shared"``, ``"shared+private"``, ``"own"``; :mod:`sharedrep.core.calibration`).
    subject_decoders_ : list of str
        Decoder :meth:`predict` uses per subject (``"shared"`` for the subjects of the fit).
    decoder_coefs_, own_coefs_ : list of (ndarray (N_s * n_lags, p) or None)
        For added subjects, the weights of the chosen decoder and of the subject's own
        ridge decoder on standardised lagged units (scaled behaviour out).
    lags_ : ndarray of int (n_lags,)
    behavior_scale_ : ndarray (p,)
        Pooled within-subject std of each behaviour feature (raw units).
    behavior_means_ : list of ndarray (p,)
        Per-subject behaviour means (raw units).
    unit_means_, unit_scales_ : list of ndarray (N_s * n_lags,)
        Standardisation of the lagged neural columns (raw units).
    constant_units_ : list of bool ndarray (N_s * n_lags,)
        Columns that were constant during fitting (zero encoder weight).
    metric_ : ndarray (p, p)
        ``C_m``; the behaviour readout is ``Y^ = z^ V' C_m``.
    subject_weights_ : ndarray (S,)
    subject_alphas_ : list of float
        Ridge parameter of each subject's encoder (``alpha_`` for fitted subjects).
    n_subjects_ : int
    n_units_ : list of int
    n_features_ : int
        Number of behaviour features ``p``.
    behavior_names_in_ : ndarray of str (p,), object dtype
        The behaviour column names, as scikit-learn's ``feature_names_in_``: set only
        when every subject's behaviour given to fit is a pandas DataFrame with string
        column names (absent otherwise; test with ``hasattr``). Every later method
        that takes behaviour (:meth:`score`, :meth:`transform_behavior`,
        :meth:`add_subject`, :meth:`with_subject`) then refuses a DataFrame whose
        columns differ from these (another order or other names; reorder with
        ``behavior[model.behavior_names_in_]``) and warns when given behaviour
        without column names (read by position). Kept in the model file.
    neural_names_in_ : list (S) of (object ndarray (N_s,) or None)
        Each subject's neural unit names: set only when some subject's neural activity
        given to fit (or :meth:`add_subject`) is a pandas DataFrame with named columns
        (absent otherwise; test with ``hasattr``), None for the other subjects. Names
        are the column names when all are strings, or when all are integers (unit /
        ROI ids, e.g. suite2p's) other than ``0..N_s-1`` in order (the default columns
        of a frame built from an array, which identify no unit; give such ids as
        strings to have them kept). Every later method that takes a subject's neural
        activity (:meth:`transform`, :meth:`predict`, :meth:`score`) then refuses a
        DataFrame whose columns differ from that subject's names (another order, or
        other units, e.g. after re-curating the ROIs; select them with
        ``neural[model.neural_names_in_[s]]``) and warns when given activity without
        column names (read by position). Kept in the model file.
    private_ : list of PrivateComponents or None

    Examples
    --------
    >>> from sharedrep import ShaReD, simulate
    >>> d = simulate(n_subjects=4, n_samples=1000, seed=0)
    >>> m = ShaReD(n_shared=2, alpha=1.0, cv=None).fit(d.neural, d.behavior)
    >>> m.shared_axes_.shape
    (12, 2)
    """

    def __init__(
        self,
        n_shared=2,
        alpha=None,
        lags=0,
        behavior_metric="correlation",
        cv=5,
        random_state=None,
        *,
        alphas=None,
        max_shared=None,
        selection="best",
        shrinkage="auto",
        subject_weights=None,
        nan_policy="raise",
        private=True,
        backend="numpy",
        device="cpu",
        dtype="float64",
        form="auto",
        low_memory="auto",
    ):
        self.n_shared = n_shared
        self.alpha = alpha
        self.lags = lags
        self.behavior_metric = behavior_metric
        self.cv = cv
        self.random_state = random_state
        self.alphas = alphas
        self.max_shared = max_shared
        self.selection = selection
        self.shrinkage = shrinkage
        self.subject_weights = subject_weights
        self.nan_policy = nan_policy
        self.private = private
        self.backend = backend
        self.device = device
        self.dtype = dtype
        self.form = form
        self.low_memory = low_memory

    # ------------------------------------------------------------------ parameters
    # one entry per parameter: the value is valid when any constraint accepts it (``None``
    # admits None); rules that relate parameters or the data follow in ``_check_params``
    _parameter_constraints: dict = {
        "n_shared": [Predicate(_is_count_or_auto, "a positive int or 'auto'")],
        "alpha": [Predicate(_is_positive_finite, _ALPHA_WORDS), None],
        "cv": [Predicate(Interval(int, 2, 50).accepts, "an int between 2 and 50"), None],
        "behavior_metric": [_choice("correlation", "variance")],
        "selection": [_choice("best", "one_se")],
        "shrinkage": [Interval(float, 0, 1), _choice("auto")],
        "backend": [Options(*backends.BACKENDS)],
        "device": [TypeOf(str, "a string such as 'cpu' or 'cuda'")],
        "form": [_choice("auto", "primal", "dual")],
        "low_memory": [Predicate(_is_low_memory, "True, False, 'strict' or 'auto'")],
        "max_shared": [Interval(int, 1, None), None],
        "private": [TypeOf((bool, np.bool_), "True or False")],
        "nan_policy": [_choice("raise", "omit")],
        # scikit-learn's "random_state" constraint (what GroupKFold accepts)
        "random_state": [
            Interval(int, 0, 2**32 - 1),
            TypeOf(np.random.RandomState, "a numpy RandomState"),
            None,
        ],
    }

    def _check_params(self, n_features: int, n_subjects: int, n_samples: int):
        """Validate the parameters against the table and the data; derived settings.

        Returns ``(auto_k, k_max, alphas, weights, lags)``: whether ``n_shared`` is chosen
        by CV, the largest ``k`` to consider, the sorted ridge grid, the normalised subject
        weights ``w_s`` (sum 1) and the lags (``n_samples``: of the longest recording).
        """
        weights, lags = self._check_param_values(n_subjects, n_samples)
        self._check_backend()
        auto_k = isinstance(self.n_shared, str)
        k_max = self._check_n_shared(n_features, auto_k)
        alphas = self._check_alphas()
        if self.cv is None and (self.alpha is None or auto_k):
            raise ValueError(
                "cv=None but alpha and/or n_shared are to be selected by cross-validation; "
                "give cv (number of folds) or fix alpha and n_shared"
            )
        return auto_k, k_max, alphas, weights, lags

    def _check_param_values(self, n_subjects: int | None = None, n_samples: int | None = None):
        """Validate each parameter's own value: the table, the alpha grid, the precision,
        the subject weights and the lags.

        ``n_subjects`` and ``n_samples`` (the data's, when known) also bound the weights
        and the lags. The rules that relate parameters to each other or to the data are
        :meth:`_check_params`'s; :meth:`load` checks a file's parameters with this alone
        (the data, and the intent of a refit, are unknown there). Returns
        ``(weights, lags)``: the normalised subject weights (None when not given and
        ``n_subjects`` is unknown) and the lags as an int array.
        """
        validate_params(self.get_params(deep=False), self._parameter_constraints, "ShaReD")
        backends.check_dtype(self.dtype)
        if self.alphas is not None:
            _alpha_grid(self.alphas)
        weights = self._check_weights(n_subjects)
        return weights, as_lags(self.lags, n_samples=n_samples)

    def _check_backend(self) -> None:
        if self.backend != "torch" and self.device != "cpu":
            raise ValueError(
                f"device={self.device!r} needs backend='torch'; the {self.backend} backend "
                "runs on the CPU"
            )
        if self.form == "dual" and self.backend == "torch":
            raise ValueError(
                "form='dual' (kernel solves) needs backend='numpy' or 'dask'; the torch "
                "backend solves the primal form"
            )

    def _check_n_shared(self, n_features: int, auto_k: bool) -> int:
        """The largest number of shared dimensions ``k`` to fit (``n_shared`` when fixed)."""
        if not auto_k:
            if not 1 <= self.n_shared <= n_features:
                raise ValueError(
                    f"n_shared={self.n_shared} must be between 1 and the number of behaviour "
                    f"features ({n_features})"
                )
            return int(self.n_shared)
        k_max = self.max_shared if self.max_shared is not None else min(n_features, 10)
        if not isinstance(k_max, numbers.Integral) or not 1 <= k_max <= n_features:
            raise ValueError(
                f"max_shared must be an int in [1, {n_features}] (the number of behaviour "
                f"features); got {self.max_shared!r}"
            )
        return k_max

    def _check_alphas(self) -> np.ndarray:
        """The sorted ridge grid: ``alphas`` (or the default) with ``alpha=None``.

        ``alphas`` is checked even when ``alpha`` is given (see :func:`_alpha_grid`).
        """
        alphas = DEFAULT_ALPHAS if self.alphas is None else _alpha_grid(self.alphas)
        if self.alpha is not None:
            return np.array([float(self.alpha)])
        return np.sort(alphas)

    def _check_weights(self, n_subjects: int | None) -> np.ndarray | None:
        """Subject weights ``w_s``, one per subject, normalised to sum 1.

        ``n_subjects`` None (unknown): any number of weights; None when none are given.
        """
        if self.subject_weights is None:
            return None if n_subjects is None else np.full(n_subjects, 1.0 / n_subjects)
        try:
            weights = np.asarray(self.subject_weights, dtype=float)
        except (TypeError, ValueError):
            weights = np.full(1, np.nan)
        shape = (weights.size,) if n_subjects is None else (n_subjects,)
        if (
            weights.shape != shape
            or weights.size == 0
            or not np.all(np.isfinite(weights))
            or np.any(weights < 0)
            or weights.sum() <= 0
        ):
            count = "" if n_subjects is None else f"{n_subjects} "
            raise ValueError(
                f"subject_weights must be {count}non-negative numbers (one per "
                f"subject) with a positive sum; got {self.subject_weights!r}"
            )
        return weights / weights.sum()

    # ------------------------------------------------------------------ data
    def _prepare(self, X, Y, groups, lags, n_folds, subject, gap, folds_by_trial=True, form=None):
        """Lag-embed one subject and compute its chunk statistics (one pass)."""
        return data_pass.subject_statistics(
            X,
            Y,
            groups,
            lags,
            n_folds,
            gap=gap,
            folds_by_trial=folds_by_trial,
            random_state=self.random_state,
            nan_policy=self.nan_policy,
            subject=subject,
            form=self.form if form is None else form,
        )

    # ------------------------------------------------------------------ fit
    def fit(self, neural, behavior, groups=None):
        """Fit the shared axes and the subject encoders.

        Parameters
        ----------
        neural : list of array-like, each (T_s, N_s)
            Neural activity per subject (its own units; any number of units). Entries may
            also be file paths (``.npy``, ``"file.npz::name"``, zarr) or lazy arrays
            (dask, zarr, h5py/NWB datasets, :class:`sharedrep.core.backends.FileArray`): they
            are read one subject at a time, on the workers with ``backend="dask"``. The
            column names of a DataFrame are kept as the subject's unit names
            (``neural_names_in_``) and checked by the later methods.
        behavior : list of array-like, each (T_s, p)
            Behaviour per subject, the same ``p`` features in the same order (arrays,
            paths or lazy arrays as for ``neural``).
        groups : list of array-like (T_s,) or None
            Trial ids per subject. Lag windows never cross trials and cross-validation
            holds out whole trials.

        Returns
        -------
        self : ShaReD

        Notes
        -----
        A fit that fails leaves the estimator unfitted (the attributes of an earlier fit
        are removed), never half-updated.
        """
        try:
            return self._fit(neural, behavior, groups)
        except BaseException:
            for name in [a for a in vars(self) if a.endswith("_") and not a.startswith("_")]:
                delattr(self, name)
            raise

    def _fit(self, neural, behavior, groups):
        Xs, Ys, gs, names, unit_names = self._check_input(neural, behavior, groups)
        S, p = len(Xs), Ys[0].shape[1]
        auto_k, k_max, alphas, weights, lags = self._check_params(
            p, S, max(X.shape[0] for X in Xs)
        )
        gap = int(np.max(np.abs(lags)))
        n_folds = int(self.cv) if self.cv is not None else 0
        backend = backends.get_backend(self.backend, device=self.device)
        low_memory = self._low_memory(Xs, p, lags.size, n_folds)
        if not low_memory and backend.reduces and backends.reusing():
            low_memory = True  # reused subjects are reduced (backends.reuse_statistics)
        prep = backend.statistics(
            Xs,
            Ys,
            gs,
            lags,
            n_folds,
            gap=gap,
            random_state=self.random_state,
            nan_policy=self.nan_policy,
            dtype=self.dtype,
            form="primal" if self.backend == "torch" else self.form,
            reduce_alphas=alphas if low_memory else None,
            keep_totals=low_memory != "strict",
        )
        i_alpha, k, solutions, shrinkage = self._select(
            backend, prep, weights, alphas, k_max, auto_k, n_folds
        )
        alpha = float(alphas[i_alpha])
        fit, shrinkage = self._final_fit(backend, prep, weights, alpha, k, shrinkage)
        self._set_fitted(fit, prep, alpha, k, lags, weights, [X.shape[1] for X in Xs])
        # arrays now: the names of an earlier fit no longer hold
        for attribute, value in (("behavior_names_in_", names), ("neural_names_in_", unit_names)):
            if value is None:
                self.__dict__.pop(attribute, None)
            else:
                setattr(self, attribute, value)
        self.shrinkage_ = shrinkage
        self._diagnose(prep, auto_k)
        self.private_ = None
        if self.private:
            kernels = fit.kernels or [None] * S
            self.private_ = thread_map(
                lambda args: self._private_components(*args, alpha),
                list(zip(prep, fit.standardized, solutions, kernels, strict=True)),
            )
        return self

    def _check_input(self, neural, behavior, groups):
        """fit's lists validated, and the behaviour and neural column names (None: none).

        Returns ``(Xs, Ys, gs, names, unit_names)``; ``names`` are
        :func:`sharedrep.utils.validation.common_column_names`'s, ``unit_names``
        :func:`sharedrep.utils.validation.subject_column_names`'s.
        """
        if backends.has_sources(neural, behavior, groups) or backends.defers_conversion(
            neural, behavior
        ):
            Xs, Ys, gs = backends.check_sources(
                neural, behavior, groups, nan_policy=self.nan_policy
            )
        else:
            Xs, Ys, gs = check_subject_arrays(neural, behavior, groups, nan_policy=self.nan_policy)
        frames = list(behavior) if isinstance(behavior, list | tuple) else [behavior]
        units = list(neural) if isinstance(neural, list | tuple) else []
        unit_names = subject_column_names(units, "neural") if len(units) == len(Xs) else None
        return Xs, Ys, gs, common_column_names(frames, "behavior"), unit_names

    def _check_behavior_names(self, behavior: list, subjects: list) -> None:
        """Check behaviour entries as given (one per subject in ``subjects``) against
        ``behavior_names_in_`` (:func:`sharedrep.utils.validation.check_column_names`)."""
        check_column_names(
            behavior,
            getattr(self, "behavior_names_in_", None),
            "behavior",
            subjects,
            attribute="behavior_names_in_",
            stacklevel=4,
        )

    def _check_neural_names(self, neural: list, subjects: list) -> None:
        """Check neural entries as given (one per model subject in ``subjects``) against
        those subjects' ``neural_names_in_``
        (:func:`sharedrep.utils.validation.check_column_names`)."""
        names = getattr(self, "neural_names_in_", None)
        check_column_names(
            neural,
            None if names is None else [names[s] for s in subjects],
            "neural",
            subjects,
            attribute="neural_names_in_",
            stacklevel=4,
            unit_ids=True,
        )

    def _low_memory(self, Xs, p: int, n_lags: int, n_folds: int):
        """``low_memory`` resolved: False, True or ``"strict"``."""
        if self.low_memory == "strict":
            return "strict"
        if self.low_memory != "auto":
            return bool(self.low_memory)
        totals = sum((X.shape[1] * n_lags + p + 1) ** 2 * 8 for X in Xs)
        if totals > LOW_MEMORY_STRICT_BYTES:
            return "strict"
        return max(n_folds, 1) * totals > LOW_MEMORY_BYTES

    def _select(self, backend, prep, weights, alphas, k_max, auto_k, n_folds):
        """Cross-validate the grid and pick ``(i_alpha, k, shrinkage)``; sets ``cv_results_``.

        Returns ``(i_alpha, k, solutions, shrinkage)``: the index of the chosen ``alpha``
        in ``alphas``, the number of shared dimensions, each subject's solved CV folds
        (reused by the private components; ``None`` entries without CV) and the
        behaviour-metric shrinkage (``None`` when it is left to :meth:`_final_fit`).
        """
        self.cv_results_ = None
        S = len(prep)
        grid = self._shrinkage_grid()
        if not n_folds:
            return 0, k_max, [None] * S, None if grid.size > 1 else float(grid[0])
        errors, grid = self._cv_errors_grid(backend, prep, weights, alphas, k_max, grid)
        solutions = errors.pop("solutions", [None] * S)
        summaries, picks, scores = [], [], []
        for i in range(grid.size):
            summary = _summarize_cv(
                _shrinkage_slice(errors, i), alphas, self.behavior_metric, weights
            )
            mean, se = summary["mean_score"], summary["se_score"]
            if auto_k:
                i_alpha, k = select_grid(mean, se, self.selection)
            else:
                i_alpha, _ = select_grid(mean[:, [k_max - 1]], se[:, [k_max - 1]], self.selection)
                k = k_max
            summaries.append(summary)
            picks.append((i_alpha, k))
            scores.append(mean[i_alpha, k - 1])
        best = int(np.nanargmax(scores)) if np.any(np.isfinite(scores)) else 0
        i_alpha, k = picks[best]
        self.cv_results_ = summaries[best]
        self.cv_results_["best_index"] = (i_alpha, k)
        self.cv_results_["shrinkages"] = grid
        self.cv_results_["shrinkage_scores"] = np.asarray(scores, dtype=float)
        if auto_k and self.cv_results_["mean_score"][i_alpha, 0] <= 0:
            warnings.warn(
                "no shared dimension is predicted better than its mean on held-out data; "
                "keeping n_shared=1",
                UserWarning,
                stacklevel=3,
            )
        return i_alpha, k, solutions, float(grid[best])

    def _shrinkage_grid(self) -> np.ndarray:
        """Shrinkage values to cross-validate (one value when it is fixed or irrelevant)."""
        if self.behavior_metric != "correlation":
            return np.zeros(1)
        if isinstance(self.shrinkage, str):  # "auto"
            return np.asarray(SHRINKAGE_GRID, dtype=float)
        return np.array([float(self.shrinkage)])

    def _cv_errors_grid(self, backend, prep, weights, alphas, k_max, grid):
        """Held-out errors for every shrinkage of ``grid`` (leading axis of sse/sst).

        Without shrinkage the behaviour metric is singular when a behaviour feature is
        constant or a combination of others: 0 then leaves the grid (its smallest value
        is :data:`MIN_SHRINKAGE` when nothing else remains). Returns ``(errors, grid)``.
        """
        args = (
            [subject_data.stats for subject_data in prep],
            [subject_data.chunks for subject_data in prep],
            weights,
            alphas,
            k_max,
            self.behavior_metric,
        )
        try:
            return _grid_errors(backend, args, grid, self.private), grid
        except ValueError as exc:
            if "singular" not in str(exc) or grid[0] > 0 or not isinstance(self.shrinkage, str):
                raise
        grid = grid[grid > 0] if np.any(grid > 0) else np.array([MIN_SHRINKAGE])
        return _grid_errors(backend, args, grid, self.private), grid

    def _final_fit(self, backend, prep, weights, alpha, k, shrinkage):
        """The model at the selected settings; returns ``(fit, shrinkage used)``.

        ``shrinkage`` None (``"auto"`` without cross-validation): 0, or
        :data:`MIN_SHRINKAGE` when the pooled behaviour covariance is singular.
        """
        stats_list = [subject_data.stats for subject_data in prep]
        metric = self.behavior_metric
        fixed = not isinstance(self.shrinkage, str) or metric != "correlation"
        value = 0.0 if shrinkage is None else shrinkage
        if fixed or value > 0:
            return backend.final_fit(stats_list, weights, alpha, k, metric, value), value
        try:
            fit = backend.final_fit(stats_list, weights, alpha, k, metric, 0.0)
            if _well_conditioned(fit.C):
                return fit, 0.0
        except ValueError as exc:
            if "singular" not in str(exc):
                raise
        fit = backend.final_fit(stats_list, weights, alpha, k, metric, MIN_SHRINKAGE)
        return fit, MIN_SHRINKAGE

    def _fitted_shrinkage(self) -> float:
        """The behaviour-metric shrinkage of the fit (models saved before it was stored:
        the parameter)."""
        value = getattr(self, "shrinkage_", None)
        if value is None:
            value = 0.0 if isinstance(self.shrinkage, str) else float(self.shrinkage)
        return float(value)

    def _diagnose(self, prep, auto_k) -> None:
        """Warn about fits whose result says less than it seems; sets ``diagnostics_``."""
        messages = []
        k, p = self.n_shared_, self.n_features_
        k_is_p = k >= p
        if k_is_p:
            messages.append(
                f"n_shared={k} equals the number of behaviour features: the shared axes "
                "constrain nothing, and a new animal's decoder equals its own ridge decoder"
            )
        beats_mean = True
        if self.cv_results_ is not None:
            i_alpha, k_cv = self.cv_results_["best_index"]
            r2 = np.asarray(self.cv_results_["r2_dim"])[i_alpha, :k_cv]
            beats_mean = bool(np.any(r2 > 0))
            if not beats_mean and not auto_k:
                messages.append(
                    "no shared dimension is predicted better than its mean on held-out data"
                )
        constant = _constant_behavior(prep)
        for s, features in constant.items():
            messages.append(
                f"subject {s}: behaviour feature(s) {_some(features)} are constant; they carry "
                "no information about this subject's neural activity"
            )
        for message in messages:
            warnings.warn(message, UserWarning, stacklevel=4)
        self.diagnostics_ = {
            "n_shared_equals_features": bool(k_is_p),
            "shared_beats_mean": beats_mean,
            "constant_behavior": {int(s): list(map(int, f)) for s, f in constant.items()},
            "messages": messages,
        }

    def _set_fitted(self, fit, prep, alpha, k, lags, weights, n_units) -> None:
        """The fitted attributes of the model and of every subject, from the final fit."""
        S = len(prep)
        self.alpha_ = alpha
        self.n_shared_ = int(k)
        self.lags_ = lags
        self.subject_weights_ = weights
        self.n_subjects_ = S
        self.n_features_ = fit.axes.shape[0]
        self.n_units_ = n_units
        self.shared_axes_ = fit.axes
        self.eigenvalues_ = fit.rho
        self.explained_ = fit.explained
        self.metric_ = fit.Cm
        self.behavior_scale_ = fit.y_scale
        standardized = list(zip(prep, fit.standardized, strict=True))
        self.encoders_ = [
            self._zero_constant(A, std)
            for A, std in zip(fit.encoders, fit.standardized, strict=True)
        ]
        # per-subject unit centres and scales, in raw units (preconditioning + exact centre)
        self.unit_means_ = [data.x_center + std.x_mean for data, std in standardized]
        self.unit_scales_ = [std.x_scale for std in fit.standardized]
        self.constant_units_ = [std.constant for std in fit.standardized]
        self.behavior_means_ = [data.y_center + std.y_mean for data, std in standardized]
        self.subject_alphas_ = [alpha] * S
        self.subject_cv_scores_ = [None] * S
        self.subject_decoders_ = ["shared"] * S
        self.decoder_coefs_ = [None] * S
        self.own_coefs_ = [None] * S
        self._warn_constant(range(S))

    @staticmethod
    def _zero_constant(A, std):
        A = A.copy()
        A[std.constant] = 0.0
        return A

    def _warn_constant(self, subjects):
        for s in subjects:
            const = self.constant_units_[s]
            if not np.any(const):
                continue
            # lagged columns are lag-major: column j is unit j % n_units at lag j // n_units
            by_unit = np.asarray(const).reshape(-1, self.n_units_[s])
            always = np.flatnonzero(by_unit.all(axis=0)).tolist()
            sometimes = np.flatnonzero(by_unit.any(axis=0) & ~by_unit.all(axis=0)).tolist()
            parts = []
            if always:
                parts.append(f"neural units {_some(always)} are constant; they were dropped")
            if sometimes:
                parts.append(
                    f"units {_some(sometimes)} are constant at some lags only; those lagged "
                    "columns were dropped"
                )
            warnings.warn(
                f"subject {s}: " + "; ".join(parts) + " (zero encoder weight)",
                UserWarning,
                stacklevel=3,
            )

    def _private_components(
        self, subject_data: solver.SubjectData, std, solutions, whole, alpha: float
    ) -> PrivateComponents:
        """Behaviour-private RRR (rank by CV) and neural-private PCA for one subject.

        ``solutions`` (list of :class:`solver.FoldSolution` or
        :class:`sharedrep.core.dual.KernelFoldSolution`, or None) are the subject's solved CV
        folds: the private cross-validation then reuses their ridge solutions
        instead of factorising every fold again. ``whole`` is the final fit's solved
        whole-data kernel problem of a subject in the kernel form (or None: solved
        again here).
        """
        kernel = solver.is_kernel(subject_data.stats)  # kept rows (dual form), not statistics
        # the fit ran on a device and left G there, or the low-memory fit did not keep it
        total = None  # the subject's total statistics, when formed here
        if std.gram is None and not kernel:
            total = backends.full_total(subject_data.stats)  # kept, or read again
            std = solver.standardize(total, self.behavior_scale_)
        axes_b, rank, cv_curve, frac = self._behavior_private(
            subject_data, solutions, total, alpha
        )
        lam, U, tr = self._neural_private(subject_data, std, whole, alpha)
        return PrivateComponents(
            behavior_axes=axes_b,
            behavior_rank=rank,
            behavior_cv_score=cv_curve,
            behavior_explained=frac,
            neural_components=U,
            neural_explained=lam / tr if tr > 0 else lam,
        )

    def _behavior_private(self, subject_data: solver.SubjectData, solutions, total, alpha):
        """Behaviour-private reduced-rank regression of one subject, rank chosen by CV.

        The behaviour residual outside the shared subspace (scaled units:
        ``y (I - V V' C_m)``) is regressed on the subject's lagged activity with the
        shared fit's ``alpha``. Returns ``(axes (p, r), r, cv_curve (p - k,), fraction)``;
        ``r = 0`` (no axes, zero fraction) when no rank beats the held-out mean, and an
        empty curve when nothing is left outside the shared subspace or there are no folds.
        """
        V, Cm = self.shared_axes_, self.metric_
        p, k = V.shape
        r_max = p - k
        if r_max <= 0 or subject_data.chunks.n_folds <= 1:
            return np.zeros((p, 0)), 0, np.zeros(0), 0.0
        kernel = solver.is_kernel(subject_data.stats)
        T = (np.eye(p) - V @ V.T @ Cm) / self.behavior_scale_[:, None]
        stats_r = (
            subject_data.stats.transform_behavior(T)
            if kernel
            else [st.transform_behavior(T) for st in subject_data.stats]
        )
        folds = None
        if solutions is not None:  # same folds, behaviour Y T: no new factorisation
            # kernel-form solutions keep their held-out rows
            mask = subject_data.chunks.test_mask
            tests = [
                None if kernel else solver.held_out_stats(stats_r, mask(f))
                for f in range(len(solutions))
            ]
            folds = [[sol.fold(alpha, T, te)] for sol, te in zip(solutions, tests, strict=True)]
        ones = np.ones(p)
        err = solver.cv_errors(
            [stats_r],
            [subject_data.chunks],
            np.ones(1),
            np.array([alpha]),
            r_max,
            "variance",
            0.0,
            y_scale=ones,
            folds=folds,
        )
        cv_curve = solver.pooled_criterion(err, "variance")[0]
        if np.max(cv_curve) <= 0:
            return np.zeros((p, 0)), 0, cv_curve, 0.0
        rank = int(np.argmax(cv_curve)) + 1
        total_r = backends.behavior_total(subject_data.stats, stats_r, T, total)
        fr = solver.fit_from_stats(
            [total_r], np.ones(1), alpha, rank, "variance", 0.0, y_scale=ones
        )
        res_var = err["sst_behavior"].sum()
        tot_var = solver.heldout_behavior_ss(
            subject_data.stats, subject_data.chunks, self.behavior_scale_
        )
        return fr.axes, rank, cv_curve, float(cv_curve[rank - 1] * res_var / tot_var)

    def _neural_private(self, subject_data: solver.SubjectData, std, whole, alpha):
        """Neural-private PCA of one subject: the leading (at most 10) eigenpairs of the
        standardised lagged activity minus what the shared latents ``z = Y V`` explain.

        Returns ``(eigenvalues (m,), components (q, m), trace)``.
        """
        V = self.shared_axes_
        if solver.is_kernel(subject_data.stats):
            if whole is None:  # not kept by the final fit: solve the whole data again
                whole = subject_data.stats.whole()
                whole.solve(self.behavior_scale_, np.array([alpha]))
            return whole.residual_components(V, min(std.cross.shape[0], 10))
        gxz = std.cross @ V
        gzz = V.T @ std.yy @ V
        # eigenpairs of G - gxz gzz^+ gxz', the difference not formed for wide G
        minus = solver.low_rank_quotient(gxz, gzz)
        lam, U = solver.top_eigh(std.gram, min(std.cross.shape[0], 10), minus=minus)
        return lam, U, np.trace(std.gram)

    # ------------------------------------------------------------------ use
    def _check_fitted(self):
        if not hasattr(self, "shared_axes_"):
            raise NotFittedError(
                "This ShaReD instance is not fitted yet: call fit(neural, behavior) first"
            )

    def _read(self, a, name, subject):
        """Values of a path / lazy array / tensor (one subject: fits in memory)."""
        return backends.read_source(a, name, subject, nan_policy=self.nan_policy)

    def _read_list(self, data, name):
        if isinstance(data, list | tuple):
            return [self._read(a, name, s) for s, a in enumerate(data)]
        return self._read(data, name, 0)

    def _check_subjects(self, subjects) -> list[int]:
        """``subjects`` of :meth:`score`: a sequence (list, tuple, range or 1-D array) of
        subject indices, each checked as :meth:`transform` checks ``subject``.

        Raises :class:`TypeError` for anything else (a bare int, a string, a set, a
        mapping, a 2-D array) or an entry that is no int, :class:`IndexError` for an
        index out of range; both name the argument and the entry.
        """
        if isinstance(subjects, str | bytes) or not (
            isinstance(subjects, Sequence)
            or (isinstance(subjects, np.ndarray) and subjects.ndim == 1)
        ):
            shape = f" of shape {subjects.shape}" if isinstance(subjects, np.ndarray) else ""
            raise TypeError(
                "subjects must be a sequence (list, tuple or 1-D array) of integer subject "
                f"indices, one per entry of neural; got {type(subjects).__name__}{shape} "
                f"{subjects!r}"
            )
        out = []
        for i, s in enumerate(subjects):
            try:
                out.append(check_subject_index(s, self.n_subjects_))
            except (TypeError, IndexError) as exc:
                raise type(exc)(f"subjects[{i}]: {exc}") from None
        return out

    def _embed(self, X, s, groups, name="neural"):
        X = self._read(X, name, s)
        groups = self._read(groups, "groups", s)
        X = check_array(X, name, s, allow_nonfinite=self.nan_policy == "omit")
        if X.shape[1] != self.n_units_[s]:
            raise ValueError(
                f"subject {s}: {name} has {X.shape[1]} units but the model was fitted with "
                f"{self.n_units_[s]} units for this subject; expected shape "
                f"(T, {self.n_units_[s]})"
            )
        if groups is not None:
            groups = check_groups([groups], 1, [X.shape[0]], subject_ids=[s])[0]
        finite = np.all(np.isfinite(X), axis=1)
        rows = valid_rows(X.shape[0], self.lags_, groups, finite=finite)
        if rows.size == 0:
            raise ValueError(
                f"subject {s}: {name} has {X.shape[0]} samples, too few for the lags "
                f"{self.lags_.tolist()}: no complete lag window"
            )
        Xe = lag_embed(np.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0), self.lags_, rows)
        Xe -= self.unit_means_[s]
        Xe /= self.unit_scales_[s]
        return Xe, rows

    def transform(self, X, subject=0, groups=None, return_rows=False):
        """Shared latents predicted from one subject's neural activity.

        Parameters
        ----------
        X : array-like (T, N_s)
            Neural activity of subject ``subject`` (raw units, as given to fit). A file
            path, lazy array (zarr, dask, h5py/NWB dataset) or torch tensor is read into
            memory (one subject).
        subject : int
            Index of the subject (position in the lists given to fit / add_subject).
        groups : array-like (T,), optional
            Trial ids; lag windows never cross trials.
        return_rows : bool
            Also return the sample indices of the returned rows.

        Returns
        -------
        Z : ndarray (T', k)
            Latents ``z^ = X~ A_s`` for the rows ``t`` whose whole lag window exists
            (for lags ``0..L`` and one trial: rows ``L..T-1``).
        rows : ndarray of int (T',)
            Only when ``return_rows``: indices into ``X`` of the returned rows.

        Raises
        ------
        ValueError
            ``X`` is a DataFrame whose columns are not the subject's
            ``neural_names_in_`` in that order (another order, or other units).

        Warns
        -----
        UserWarning
            ``X`` has no column names but the subject was fitted with names.
        """
        self._check_fitted()
        s = check_subject_index(subject, self.n_subjects_)
        X = self._read(X, "neural", s)
        self._check_neural_names([X], [s])
        Z, rows = self._latents(X, s, groups)
        return (Z, rows) if return_rows else Z

    def _latents(self, X, s: int, groups):
        """``(Z (T', k), rows (T',))`` of subject ``s`` (its unit names already checked)."""
        Xe, rows = self._embed(X, s, groups)
        return Xe @ self.encoders_[s], rows

    def transform_behavior(self, Y, subject=None):
        """Shared latents of behaviour, ``z = ((Y - mean) / behavior_scale_) @ shared_axes_``.

        Parameters
        ----------
        Y : array-like (T, p)
            Behaviour in raw units, as given to fit.
        subject : int or None
            Whose mean to remove; ``None`` uses the weighted mean over fitted subjects.

        Returns
        -------
        Z : ndarray (T, k)

        Raises
        ------
        ValueError
            ``Y`` is a DataFrame whose columns are not ``behavior_names_in_`` in that
            order (another order, or other variables).

        Warns
        -----
        UserWarning
            ``Y`` has no column names but the model was fitted with names.
        """
        self._check_fitted()
        given = self._read(Y, "behavior", subject)
        Y = check_array(given, "behavior", subject, allow_nonfinite=self.nan_policy == "omit")
        if Y.shape[1] != self.n_features_:
            who = "" if subject is None else f"subject {subject}: "
            raise ValueError(
                f"{who}behavior has {Y.shape[1]} features; expected shape (T, {self.n_features_})"
            )
        self._check_behavior_names([given], [subject])
        if subject is None:
            w = self.subject_weights_
            mean = np.sum(
                [wi * m for wi, m in zip(w, self.behavior_means_[: w.size], strict=True)], axis=0
            )
        else:
            mean = self.behavior_means_[check_subject_index(subject, self.n_subjects_)]
        return ((Y - mean) / self.behavior_scale_) @ self.shared_axes_

    def predict(self, X, subject=0, groups=None, return_rows=False, through="auto"):
        """Behaviour predicted from one subject's neural activity (raw units).

        Through the shared representation: ``Y^ = (z^ V' C_m) * behavior_scale_ + mean_s``.
        A subject added with :meth:`add_subject` may instead use the decoder its inner
        cross-validation chose (``subject_decoders_``): ``Y^ = (X~ W_s) * behavior_scale_
        + mean_s``.

        Parameters
        ----------
        X, subject, groups, return_rows
            As in :meth:`transform`.
        through : {"auto", "shared", "own"}, default="auto"
            ``"auto"``: the subject's chosen decoder (the shared read-out for the subjects
            of the fit); ``"shared"``: the pure shared read-out; ``"own"``: the subject's
            own full-rank ridge decoder (added subjects only).

        Returns
        -------
        Y_hat : ndarray (T', p)
            For the rows of :meth:`transform`.
        rows : ndarray of int (T',)
            Only when ``return_rows``.

        Raises and warns as :meth:`transform` about the column names of ``X``.
        """
        self._check_fitted()
        s = check_subject_index(subject, self.n_subjects_)
        W = self._readout(s, through)
        X = self._read(X, "neural", s)
        self._check_neural_names([X], [s])
        Yh, rows = self._predict(X, s, groups, W)
        return (Yh, rows) if return_rows else Yh

    def _predict(self, X, s: int, groups, W):
        """``(Y_hat (T', p), rows)`` of subject ``s`` through the read-out ``W``
        (:meth:`_readout`; its unit names already checked)."""
        if W is None:
            Z, rows = self._latents(X, s, groups)
            Yh = Z @ self.shared_axes_.T @ self.metric_
        else:
            Xe, rows = self._embed(X, s, groups)
            Yh = Xe @ W
        return Yh * self.behavior_scale_ + self.behavior_means_[s], rows

    def _readout(self, s: int, through: str):
        """Weights (q, p) of subject ``s``'s read-out, or None for the shared path."""
        if through not in ("auto", "shared", "own"):
            raise ValueError(f"through must be 'auto', 'shared' or 'own'; got {through!r}")
        coefs = getattr(self, "decoder_coefs_", None)
        own = getattr(self, "own_coefs_", None)
        if through == "own":
            if own is None or own[s] is None:
                raise ValueError(
                    f"subject {s} was part of the fit: it has no decoder of its own "
                    "(only subjects added with add_subject do); use through='shared'"
                )
            return own[s]
        if through == "auto" and coefs is not None and coefs[s] is not None:
            return coefs[s]
        return None

    def score(self, neural, behavior, groups=None, subjects=None):
        """Pooled R^2 of behaviour predicted from neural activity.

        ``1 - sum_s SSE_s / sum_s SST_s`` over every subject, feature and kept row, in
        pooled-standardised behaviour units; ``SST`` is about each subject's own mean.

        Parameters
        ----------
        neural, behavior : lists of arrays (T_s, N_s) and (T_s, p)
            Arrays, file paths, lazy arrays or tensors (read one subject at a time).
        groups : list of arrays (T_s,) or None
        subjects : list of int or None
            Model subject of each entry (default ``0..len(neural)-1``).

        Returns
        -------
        r2 : float

        Raises and warns as :meth:`transform` and :meth:`transform_behavior` about the
        column names of each subject's ``neural`` and ``behavior`` (one warning for all
        the entries without names).
        """
        self._check_fitted()
        neural, behavior = self._read_list(neural, "neural"), self._read_list(behavior, "behavior")
        if groups is not None:
            groups = self._read_list(groups, "groups")
        subjects = self._score_subjects(subjects, neural)
        # the model's columns first: its subjects, not each other, say what they must be
        given = list(behavior) if isinstance(behavior, list | tuple) else None
        ids = subjects if subjects is not None else list(range(len(given or [])))
        if given is not None and len(given) == len(ids):
            self._check_behavior_names(given, ids)
        units = list(neural) if isinstance(neural, list | tuple) else None
        if units is not None and len(units) == len(ids):
            self._check_neural_names(units, ids)
        Xs, Ys, gs = check_subject_arrays(
            neural,
            behavior,
            groups,
            nan_policy=self.nan_policy,
            subject_ids=subjects,
            n_features=self.n_features_,
        )
        if subjects is None:
            subjects = list(range(len(Xs)))
        if given is None:  # one array (2-D, or 3-D: a subject per entry): no names
            self._check_behavior_names(Ys, subjects)
        if units is None:
            self._check_neural_names(Xs, subjects)
        return self._pooled_r2(Xs, Ys, gs, subjects)

    def _score_subjects(self, subjects, neural) -> list[int] | None:
        """:meth:`score`'s ``subjects`` checked (default: model subjects ``0..S'-1`` for a
        list of ``S'`` entries); None when ``subjects`` is None and ``neural`` is one array
        (its subjects are counted once it is converted)."""
        n_given = len(neural) if isinstance(neural, list | tuple) else None
        if subjects is None and n_given is not None:
            if n_given > self.n_subjects_:
                raise ValueError(f"{n_given} subjects given but the model has {self.n_subjects_}")
            subjects = list(range(n_given))
        if subjects is not None:
            subjects = self._check_subjects(subjects)
            if n_given is not None and len(subjects) != n_given:
                raise ValueError(
                    f"subjects has {len(subjects)} entries but {n_given} subjects were given"
                )
        return subjects

    def _pooled_r2(self, Xs: list, Ys: list, gs: list, subjects: list) -> float:
        """:meth:`score`'s ``1 - sum SSE / sum SST`` of validated float64 arrays ``Xs``
        (T_s, N_s), ``Ys`` (T_s, p) of model ``subjects`` (names already checked), in
        pooled-standardised units, over the kept rows with finite behaviour."""
        sse = sst = 0.0
        for X, Y, g, s in zip(Xs, Ys, gs, subjects, strict=True):
            Yh, rows = self._predict(X, s, g, self._readout(s, "auto"))
            Yr = Y[rows]
            keep = np.all(np.isfinite(Yr), axis=1)
            Yr, Yh = Yr[keep], Yh[keep]
            sse += float(np.sum(((Yr - Yh) / self.behavior_scale_) ** 2))
            sst += float(np.sum(((Yr - Yr.mean(axis=0)) / self.behavior_scale_) ** 2))
        return 1.0 - sse / sst if sst > 0 else float("nan")

    def add_subject(self, X, Y, groups=None):
        """Fit the encoder of a new subject with the shared axes frozen.

        The ridge parameter is chosen by an inner cross-validation on this subject's data
        (``cv`` folds; ``alpha_`` when ``cv`` is None). The behaviour scale is frozen; the
        subject's own behaviour mean is used.

        Parameters
        ----------
        X : array-like (T, N_new)
            Neural activity of the new subject (any number of units); a file path, lazy
            array or tensor is read into memory. The column names of a DataFrame are
            kept as the subject's unit names (``neural_names_in_``).
        Y : array-like (T, p)
            Its behaviour, same features as the fitted subjects.
        groups : array-like (T,), optional
            Its trial ids.

        Returns
        -------
        index : int
            The new subject's index for :meth:`transform` / :meth:`predict`.
        """
        self._check_fitted()
        s = self.n_subjects_
        X, Y = self._read(X, "neural", s), self._read(Y, "behavior", s)
        groups = self._read(groups, "groups", s)
        Xs, Ys, gs = check_subject_arrays(
            [X],
            [Y],
            None if groups is None else [groups],
            nan_policy=self.nan_policy,
            subject_ids=[s],
            n_features=self.n_features_,
        )
        self._check_behavior_names([Y], [s])
        unit_names = subject_column_names([X], "neural", [s])
        X, Y, g = Xs[0], Ys[0], gs[0]
        n_folds, by_trial = self._calibration_folds(X, Y, g)
        gap = int(np.max(np.abs(self.lags_)))
        # primal statistics: the candidate decoders need the ridge solutions themselves
        subject_data = self._prepare(
            X, Y, g, self.lags_, n_folds, s, gap, folds_by_trial=by_trial, form="primal"
        )
        Pi = calibration.projector(self.shared_axes_, self.metric_)
        alphas = self._alpha_grid()
        choice, solutions = None, None
        alpha = self.alpha_
        if n_folds:
            choice, solutions = self._score_candidates(subject_data, Pi, alphas)
            alpha = choice.alphas["shared"]
        fit = solver.fit_from_stats(
            [solver.subject_total(subject_data.stats)],
            np.ones(1),
            alpha,
            self.n_shared_,
            self.behavior_metric,
            self._fitted_shrinkage(),
            y_scale=self.behavior_scale_,
            axes=self.shared_axes_,
        )
        std = fit.standardized[0]
        readouts = self._subject_readouts(subject_data, Pi, choice, alpha)
        self._append_subject(fit.encoders[0], std, subject_data, alpha, choice, readouts)
        self.n_units_.append(X.shape[1])
        self._add_neural_names(None if unit_names is None else unit_names[0])
        self.n_subjects_ += 1
        self._warn_constant([s])
        if self.private_ is not None:
            self.private_.extend(
                thread_map(
                    lambda args: self._private_components(*args),
                    [(subject_data, std, solutions, None, alpha)],
                )
            )
        return s

    def _calibration_folds(self, X, Y, g) -> tuple[int, bool]:
        """``(n_folds, by_trial)`` of :meth:`add_subject`'s inner CV on one subject's
        validated ``X`` (T, N), ``Y`` (T, p) and trial ids ``g`` (T,) or None.

        ``cv`` folds (0: no inner CV), by trial when there are trial ids; the calibration
        set may hold few trials: as many folds as it allows, counting the trials that
        keep usable samples (complete lag windows), and by sample below 2 such trials.
        """
        n_folds = int(self.cv) if self.cv is not None else 0
        by_trial = g is not None
        if n_folds and by_trial:
            rows = solver.plan_subject(X, Y, g, self.lags_, 0, nan_policy=self.nan_policy)[0]
            n_trials = np.unique(g[rows]).size
            by_trial = n_trials >= 2
            n_folds = min(n_folds, n_trials) if by_trial else n_folds
        return n_folds, by_trial

    def _append_subject(self, encoder, std, subject_data, alpha, choice, readouts) -> None:
        """Append the fitted attributes of the subject being added (index ``n_subjects_``):
        its ``encoder`` (q, k) and standardisation ``std``, the centres of
        ``subject_data``, its ridge ``alpha``, the inner-CV ``choice`` (None: no inner CV)
        and ``readouts``, the (chosen, own) decoders of :meth:`_subject_readouts`."""
        chosen, own = readouts
        self.encoders_.append(self._zero_constant(encoder, std))
        self.unit_means_.append(subject_data.x_center + std.x_mean)
        self.unit_scales_.append(std.x_scale)
        self.constant_units_.append(std.constant)
        self.behavior_means_.append(subject_data.y_center + std.y_mean)
        self.subject_alphas_.append(float(alpha))
        self.subject_cv_scores_.append(
            None if choice is None else {k: float(v) for k, v in choice.scores.items()}
        )
        self.subject_decoders_.append("shared" if choice is None else choice.choice)
        self.decoder_coefs_.append(self._zero_constant(chosen, std))
        self.own_coefs_.append(self._zero_constant(own, std))

    def _add_neural_names(self, names) -> None:
        """Keep the unit names (or None) of the subject being added (index ``n_subjects_``)."""
        kept = getattr(self, "neural_names_in_", None)
        if kept is None and names is None:
            return  # no subject has names: the attribute stays absent
        if kept is None:
            kept = [None] * self.n_subjects_
        self.neural_names_in_ = [*kept, names]

    def with_subject(self, X, Y, groups=None):
        """A copy of the model with a new subject added; this model is not modified.

        Parameters
        ----------
        X, Y, groups
            As in :meth:`add_subject`.

        Returns
        -------
        model : ShaReD
            The copy, holding the new subject.
        index : int
            The new subject's index in ``model``.
        """
        self._check_fitted()
        model = copy.deepcopy(self)
        # add_subject's warnings, reported at the line that called with_subject (also
        # when it raises); other libraries' warnings keep their own location
        caught: list = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                index = model.add_subject(X, Y, groups)
        finally:
            _warn_again(caught, stacklevel=3)
        return model, index

    def _alpha_grid(self) -> np.ndarray:
        """The scale-free ridge grid of the inner cross-validations, increasing."""
        if self.alphas is None:
            return DEFAULT_ALPHAS
        return np.sort(np.asarray(self.alphas, dtype=float))

    def _score_candidates(self, subject_data, Pi, alphas):
        """Inner-CV errors of the candidate decoders of a new subject (primal form).

        Returns ``(choice, solutions)``: the :class:`calibration.SubjectChoice` and each
        fold's solved ridge path (reused by the private components).
        """
        stats, chunks = subject_data.stats, subject_data.chunks
        total = solver.total(stats)
        n_alpha, p = alphas.size, Pi.shape[0]
        errors = calibration.CandidateErrors(
            alphas, np.zeros(n_alpha), np.zeros(n_alpha), np.zeros((n_alpha, n_alpha))
        )
        keep = self.private_ is not None and solver._worth_keeping(stats, chunks.n_folds, n_alpha)
        solutions = [] if keep else None
        for f in range(chunks.n_folds):
            fold = solver.subject_fold(stats, chunks.train_mask(f), chunks.test_mask(f), total)
            std, _ = fold.solve(self.behavior_scale_, alphas)
            if keep:
                solutions.append(fold.solution(alphas))
            if fold.test is not None and fold.test.n > 0:
                moments = calibration.heldout_moments(std, self.behavior_scale_, fold.test)
                errors.add_fold(fold.P, Pi, moments)
        if errors.n_folds == 0 or p == 0:
            raise ValueError("no held-out rows to score the decoders of the new subject")
        return calibration.choose(errors), solutions

    def _subject_readouts(self, subject_data, Pi, choice, alpha):
        """Whole-data weights (q, p) of the chosen decoder and of the subject's own ridge."""
        wanted = {alpha} if choice is None else set()
        if choice is not None:
            for value in choice.alphas.values():
                wanted.update(np.atleast_1d(value).tolist())
        grid = np.array(sorted(wanted))
        whole = solver.PrimalFold(solver.total(subject_data.stats))
        whole.solve(self.behavior_scale_, grid)
        P = {float(a): whole.coefficients(i) for i, a in enumerate(grid)}
        if choice is None:  # no inner CV: the shared read-out at alpha_
            choice = calibration.SubjectChoice("shared", {}, {"shared": alpha, "own": alpha})
        return calibration.decoder_weights(P, Pi, choice)

    # ------------------------------------------------------------------ persistence
    def save(self, path, overwrite=False):
        """Write the fitted model to a portable ``.npz`` file (arrays + JSON; no pickle).

        The file is written atomically (temporary file, then rename); see
        :mod:`sharedrep.core.model_file` for the format.

        Parameters
        ----------
        path : str or Path
        overwrite : bool
            Replace an existing file; otherwise raise :class:`FileExistsError`.

        Raises
        ------
        IsADirectoryError
            ``path`` is a directory (left untouched, whatever ``overwrite`` says).
        FileExistsError
            ``path`` exists and ``overwrite`` is false.
        ValueError
            A parameter (changed with ``set_params`` after the fit) that :meth:`load`
            would refuse; nothing is written.
        """
        self._check_fitted()
        return model_file.write_model(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save`, verifying every field.

        Raises
        ------
        FileNotFoundError
            The file does not exist.
        ValueError
            The file is not a complete, consistent sharedrep model file (wrong shapes,
            non-finite values, zero scales, counts that disagree with the arrays,
            parameters the estimator would refuse, metadata of the wrong type or out of
            range); the message names the field and the file.
        """
        return model_file.read_model(cls, PrivateComponents, path)


_CONDITION_LIMIT = 1e8


def _well_conditioned(C: np.ndarray) -> bool:
    """Whether the pooled behaviour covariance can serve as a metric without shrinkage.

    Its condition number must stay below ``1e8``: beyond that the generalized
    eigenproblem loses the normalisation ``V' C_m V = I`` to rounding.
    """
    lam = np.linalg.eigvalsh(0.5 * (C + C.T))
    return bool(lam[-1] > 0 and lam[0] > lam[-1] / _CONDITION_LIMIT)


def _shrinkage_slice(errors: dict, i: int) -> dict:
    """The held-out errors of the ``i``-th shrinkage of a grid."""
    out = dict(errors)
    out["sse"], out["sst"] = errors["sse"][i], errors["sst"][i]
    return out


def _grid_errors(backend, args: tuple, grid: np.ndarray, keep_solutions: bool) -> dict:
    """``backend.cv_errors`` for every shrinkage of ``grid`` (leading axis of sse/sst).

    The numpy and dask backends score the whole grid on one set of solved folds; the
    torch backend is called once per value.
    """
    if backend.name != "torch":
        errors = backend.cv_errors(*args, grid, keep_solutions=keep_solutions)
        return errors
    runs = [
        backend.cv_errors(*args, float(value), keep_solutions=keep_solutions and i == 0)
        for i, value in enumerate(grid)
    ]
    out = dict(runs[0])
    out["sse"] = np.stack([run["sse"] for run in runs])
    out["sst"] = np.stack([run["sst"] for run in runs])
    return out


def _behavior_sums(stats) -> tuple[float, np.ndarray, np.ndarray]:
    """``(n, sum y, y'y)`` of one subject's kept rows, from its statistics in any form."""
    if solver.is_kernel(stats):
        stats = stats.chunk_y_stats()
    mats = getattr(stats, "mats", None)
    if mats is not None:  # chunk products left on a device (torch): add them there
        q, p = stats.q, stats.p
        zz = mats.sum(dim=0)[q:, q:].cpu().numpy()
        return float(zz[-1, -1]), zz[:p, -1], zz[:p, :p]
    stats = list(stats)
    n = float(sum(st.n for st in stats))
    return n, np.sum([st.sy for st in stats], axis=0), np.sum([st.yy for st in stats], axis=0)


def _constant_behavior(prep) -> dict:
    """Subject -> indices of its behaviour features that are constant in its kept rows."""
    out = {}
    for s, subject_data in enumerate(prep):
        n, sy, yy = _behavior_sums(subject_data.stats)
        if n <= 0:
            continue
        mean = sy / n
        mean_square = np.abs(np.diag(yy)) / n
        constant, _ = solver.column_scales(mean_square - mean**2, mean_square)
        if np.any(constant):
            out[s] = np.flatnonzero(constant).tolist()
    return out


def _some(items: list, n: int = 10) -> str:
    """The first ``n`` items as a list literal, ``...`` when there are more."""
    return f"{items[:n]}" + ("..." if len(items) > n else "")


def _weighted_errors(errors: dict, weights) -> dict:
    """Held-out sums of squares with each subject's scaled by ``S w_s / sum(w)``.

    Equal weights change nothing (plain pooling over subjects); a subject of weight 0
    takes no part in the selection, as it takes none in the pooled matrices.
    """
    if weights is None:
        return errors
    w = np.asarray(weights, dtype=float)
    rel = w * w.size / w.sum()
    if np.allclose(rel, 1.0):
        return errors
    out = dict(errors)
    for key in ("sse", "sst"):  # (n_folds, n_alphas, S, k)
        out[key] = errors[key] * rel[None, None, :, None]
    out["sst_behavior"] = errors["sst_behavior"] * rel[None, :]  # (n_folds, S)
    return out


def _summarize_cv(errors: dict, alphas: np.ndarray, metric: str, weights=None) -> dict:
    """Fold scores and held-out R^2 tables from the raw held-out errors.

    The pooled scores weight the subjects by ``weights`` (see :func:`_weighted_errors`);
    the per-subject R^2 do not depend on them.
    """
    errors = _weighted_errors(errors, weights)
    fold_scores = solver.cv_criterion(errors, metric)
    n_folds = fold_scores.shape[0]
    mean = solver.pooled_criterion(errors, metric)
    se = fold_scores.std(axis=0, ddof=1) / np.sqrt(n_folds) if n_folds > 1 else np.zeros_like(mean)
    sse, sst = errors["sse"], errors["sst"]
    with np.errstate(invalid="ignore", divide="ignore"):
        r2_dim = 1.0 - sse.sum(axis=(0, 2)) / sst.sum(axis=(0, 2))
        r2_subject = 1.0 - sse.sum(axis=0) / sst.sum(axis=0)
    k_max = mean.shape[1]
    return {
        "alphas": np.asarray(alphas, dtype=float),
        "n_shared": np.arange(1, k_max + 1),
        "fold_scores": fold_scores,
        "mean_score": mean,
        "se_score": se,
        "r2_dim": r2_dim,
        "r2_subject_dim": r2_subject,
    }


def _warn_again(caught: list, stacklevel: int) -> None:
    """Emit recorded warnings again: user warnings at ``stacklevel`` (counted from the
    caller of this function), the others (e.g. a library's DeprecationWarning) where they
    were first raised."""
    for w in caught:
        if issubclass(w.category, UserWarning):
            warnings.warn(w.message, w.category, stacklevel=stacklevel)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
