r"""Ground-truth simulator for shared behavioural representations across subjects.

:func:`simulate` draws several subjects (animals) that share one low-dimensional
behavioural representation, each with its own population of recorded units (different
identities and numbers), so that an estimator such as :class:`sharedrep.ShaReD` can be
scored against known truth. Part of the ``sim`` layer: imports numpy and scipy only.

Generative model
----------------
Notation: ``S`` subjects, ``p = n_behavior`` behaviour features, ``k = n_shared`` shared
dimensions, ``r = n_private`` private encoded dimensions per subject, ``m =
n_neural_private`` neural-only factors, ``phi = smoothness``, ``L = lag``.  Subject
``s`` has ``T_s`` samples and ``N_s`` units.

**Behavioural axes.**  A random orthogonal ``p x p`` matrix ``Q`` is split into the true
encoded axes ``V0 = Q[:, :k]`` and their orthonormal complement ``U0 = Q[:, k:]``
(``p x (p-k)``).  The axes are common to all subjects.

**Latent time series.**  Every latent below is a stationary AR(1) process with
coefficient ``phi``,

.. math::

    x[t] = \phi\, x[t-1] + \sqrt{1-\phi^2}\,\sigma\,\varepsilon[t],\qquad
    \varepsilon[t] \sim \mathcal N(0, 1),\qquad x[0] \sim \mathcal N(0, \sigma^2),

so its stationary variance is exactly ``sigma**2`` at every sample.  Per subject,
independently:

* encoded shared latents ``z_s`` (``T_s x k``), each with variance
  ``sigma_z**2 = shared_variance * max_j sigma_h,j**2 = shared_variance``;
* unencoded behaviour sources ``h_s`` (``T_s x (p-k)``) with variances spread
  geometrically from ``1`` down to ``1 / behavior_anisotropy``:
  ``sigma_h,j**2 = behavior_anisotropy ** (-j / (p-k-1))``.

With the defaults (``shared_variance=0.2``, ``behavior_anisotropy=10``) the encoded
directions carry little behavioural variance: they are deliberately *not* the top
principal components of behaviour, so a variance-seeking method misses them while a
correlation (CCA-like) metric finds them.

**Behaviour.**  ``Y_raw,s = z_s V0' + h_s U0'``.  Its analytic stationary covariance is
``Sigma_Y = V0 diag(sigma_z**2) V0' + U0 diag(sigma_h**2) U0'``; with
``D = diag(sqrt(diag(Sigma_Y)))`` (the same for all subjects) the returned behaviour is

.. math::

    Y_s = Y_{\mathrm{raw},s} D^{-1},

whose features have unit *population* variance.  Ground truth in these scaled
coordinates:

* ``shared_axes`` = orthonormalised columns of ``D V0``.  Because
  ``Y_s D V0 = Y_raw,s V0 = z_s`` exactly, these are the behaviour directions whose
  projections are encoded (the truth for the ``"correlation"`` metric);
* ``encoded_subspace`` = orthonormalised columns of ``D^{-1} V0``: the column space of
  the encoded part ``z_s V0' D^{-1}`` of behaviour (the truth for the ``"variance"``
  metric, i.e. reduced-rank regression).

**Private behavioural encoding** (``r > 0``).  Subject ``s`` draws an orthonormal
``R_s`` (``(p-k) x r``) and additionally encodes ``q_s = h_s R_s = Y_raw,s W_s`` with
``W_s = U0 R_s``, i.e. directions inside ``span(U0)`` (unencoded in the other subjects).
``private_axes[s]`` = orthonormalised ``D W_s`` (same convention as ``shared_axes``:
``Y_s D W_s = q_s``).

**Neural activity.**  A random subset of ``max(1, round(encoding_fraction * N_s))``
units encode.  Before the per-unit affine transform, unit ``i`` of subject ``s`` is

.. math::

    x_{s,i}[t] = z_s[t+L]\, e_{s,i} + q_s[t+L]\, p_{s,i}
                 + f_s[t]\, \phi_{s,i} + \sigma_{s,i}\, \eta_{s,i}[t],

with ``f_s`` (``T_s x m``) unit-variance AR(1) neural-only factors shared by the units of
subject ``s`` (unrelated to behaviour), loadings ``phi_s,i ~ N(0, I/m)``, white noise
``eta ~ N(0, 1)`` with ``sigma_s,i**2 ~ U(0.5, 1.5)``.  Call
``n_s,i = |phi_s,i|**2 + sigma_s,i**2`` the nuisance variance of the unit.  For encoding
units ``e_s,i`` (``k``) and ``p_s,i`` (``r``) are Gaussian directions rescaled so that
the encoded variance equals exactly ``snr * n_s,i``, split between shared and private
parts in the ratio ``k : r``; non-encoding units have ``e_s,i = p_s,i = 0``.  Hence the
population ``R^2`` of an encoding unit on the (lagged) shared and private latents is
``snr / (1 + snr)``.  Finally every unit receives a random positive scale ``c_s,i``
(log-uniform in ``[0.1, 10]``) and a random offset ``b_s,i ~ N(0, 10**2)``:
``X_s[:, i] = b_s,i + c_s,i x_s,i``, so standardisation matters.  ``encoders[s]`` holds
``c_s,i e_s,i`` (the map from ``z_s[t+L]`` to the *returned* units).

**Lag.**  ``L > 0`` means neural activity leads behaviour: ``X_s[t]`` depends on
``z_s[t+L]``, so activity at ``t-L`` predicts behaviour at ``t`` (the convention of the
lag embedding in :mod:`sharedrep`).  ``T_s + |L|`` latent samples are drawn so that no
edge sample is missing or wrapped.

**Trials.**  ``groups[s] = arange(T_s) // trial_length``: consecutive trials of
``trial_length`` samples, the last one possibly shorter.

All arrays are float64 (trial ids int64, masks bool).  The draw is deterministic given
``seed``.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.signal import lfilter

__all__ = ["SimulatedData", "simulate"]


@dataclass(frozen=True)
class SimulatedData:
    """Simulated multi-subject recording with its ground truth.

    The dataclass is frozen (fields cannot be reassigned); the arrays themselves are
    ordinary writeable NumPy arrays, so copy them before modifying in place.

    Attributes
    ----------
    neural : list of ndarray, each (T_s, N_s), float64
        Neural activity of subject ``s`` in arbitrary units (random per-unit scale and
        offset applied).
    behavior : list of ndarray, each (T_s, p), float64
        Behaviour features, scaled so that every feature has unit population variance.
    groups : list of ndarray, each (T_s,), int64
        Trial ids (consecutive trials of ``trial_length`` samples).
    shared_axes : ndarray, (p, k), float64
        Orthonormal basis of the behaviour directions whose projections are encoded
        (``behavior[s] @ D V0 == latents[s]``); truth for the ``"correlation"`` metric.
    encoded_subspace : ndarray, (p, k), float64
        Orthonormal basis of the column space of the encoded part of behaviour; truth
        for the ``"variance"`` (reduced-rank regression) metric.
    encoding_units : list of ndarray, each (N_s,), bool
        True for units that encode the latents.
    lag : int
        Samples by which neural activity leads behaviour (``X_s[t]`` depends on
        ``z_s[t + lag]``).
    latents : list of ndarray, each (T_s, k), float64
        True shared latents ``z_s`` aligned with ``behavior[s]`` (behaviour units).
    encoders : list of ndarray, each (N_s, k), float64
        True encoders ``E_s``: unit ``i`` of the returned activity contains the term
        ``z_s[t + lag] @ encoders[s][i]`` (zero rows for non-encoding units), in units
        of the returned neural data per unit of ``z``.
    private_axes : list of ndarray, each (p, n_private), float64, or None
        Per subject, orthonormal basis of the subject's privately encoded behaviour
        directions (``None`` when ``n_private == 0``).
    behavior_names : list of str, length p
        Feature names ``"feature_0" ...``.
    params : dict
        Arguments of :func:`simulate` that produced the data (plus ``"subjects"``, the
        original subject indices, after :meth:`subset`).
    private_latents : list of ndarray, each (T_s, n_private), float64, or None
        True private encoded latents ``q_s`` aligned with ``behavior[s]``.
    """

    neural: list[np.ndarray]
    behavior: list[np.ndarray]
    groups: list[np.ndarray]
    shared_axes: np.ndarray
    encoded_subspace: np.ndarray
    encoding_units: list[np.ndarray]
    lag: int
    latents: list[np.ndarray]
    encoders: list[np.ndarray]
    private_axes: list[np.ndarray] | None
    behavior_names: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    private_latents: list[np.ndarray] | None = None

    @property
    def n_subjects(self) -> int:
        """int: Number of subjects ``S``."""
        return len(self.neural)

    @property
    def n_units(self) -> list[int]:
        """list of int: Number of units ``N_s`` of every subject."""
        return [int(x.shape[1]) for x in self.neural]

    @property
    def n_samples(self) -> list[int]:
        """list of int: Number of samples ``T_s`` of every subject."""
        return [int(x.shape[0]) for x in self.neural]

    @property
    def n_behavior(self) -> int:
        """int: Number of behaviour features ``p``."""
        return int(self.shared_axes.shape[0])

    @property
    def n_shared(self) -> int:
        """int: Number of shared dimensions ``k``."""
        return int(self.shared_axes.shape[1])

    def subset(self, indices: int | Sequence[int] | np.ndarray) -> SimulatedData:
        """Return the data of a subset of subjects (e.g. for held-out-subject tests).

        Parameters
        ----------
        indices : int or sequence of int
            Subject indices (negative indices count from the end); order is kept,
            repeats are allowed.

        Returns
        -------
        SimulatedData
            Same ground-truth axes, only the selected subjects' per-subject fields.
            ``params["subjects"]`` records the original indices.

        Raises
        ------
        ValueError
            If an index is not an integer or is out of range.
        """
        if isinstance(indices, numbers.Integral) and not isinstance(indices, bool):
            idx_list = [indices]
        else:
            idx_list = list(np.atleast_1d(np.asarray(indices)).ravel())
        S = self.n_subjects
        parent = self.params.get("subjects", list(range(S)))
        resolved: list[int] = []
        for i in idx_list:
            if isinstance(i, bool | np.bool_) or not isinstance(i, numbers.Integral):
                raise ValueError(f"subset: indices must be integers, got {i!r}")
            j = int(i)
            if not -S <= j < S:
                raise ValueError(f"subset: subject index {j} out of range for {S} subjects")
            resolved.append(j % S)

        def pick(lst):
            return None if lst is None else [lst[j] for j in resolved]

        params = dict(self.params)
        params["subjects"] = [parent[j] for j in resolved]
        return replace(
            self,
            neural=pick(self.neural),
            behavior=pick(self.behavior),
            groups=pick(self.groups),
            encoding_units=pick(self.encoding_units),
            latents=pick(self.latents),
            encoders=pick(self.encoders),
            private_axes=pick(self.private_axes),
            private_latents=pick(self.private_latents),
            params=params,
        )


# --------------------------------------------------------------------------- helpers


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None


def _as_float(name: str, value: Any) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def _per_subject_counts(
    name: str,
    value: Any,
    n_subjects: int,
    rng: np.random.Generator,
    minimum: int,
    allow_range: bool = False,
) -> list[int]:
    """Resolve an int / (low, high) tuple / per-subject sequence into a list of counts."""
    if allow_range and isinstance(value, tuple) and len(value) == 2:
        low, high = (_as_int(f"{name} (low, high)", v) for v in value)
        if low < minimum or high < low:
            raise ValueError(
                f"{name}=(low, high) must satisfy {minimum} <= low <= high, got {value!r}"
            )
        return [int(c) for c in rng.integers(low, high + 1, size=n_subjects)]
    if isinstance(value, Sequence | np.ndarray) and not isinstance(value, str):
        vals = list(np.asarray(value, dtype=object).ravel()) if np.ndim(value) else [value]
        if len(vals) != n_subjects:
            raise ValueError(
                f"{name} sequence must have one entry per subject "
                f"(n_subjects={n_subjects}), got length {len(vals)}: {value!r}"
            )
        counts = [_as_int(f"{name}[{i}]", v) for i, v in enumerate(vals)]
    else:
        counts = [_as_int(name, value)] * n_subjects
    for i, c in enumerate(counts):
        if c < minimum:
            raise ValueError(
                f"{name} must be >= {minimum} for every subject, got {c} (subject {i})"
            )
    return counts


def _ar1(rng: np.random.Generator, n: int, variances: np.ndarray, phi: float) -> np.ndarray:
    """Stationary AR(1) series, shape (n, len(variances)), with exact marginal variances."""
    std = np.sqrt(np.asarray(variances, dtype=np.float64))
    u = rng.standard_normal((n, std.size))
    u[1:] *= np.sqrt(1.0 - phi * phi)
    u *= std
    if phi == 0.0:
        return u
    return lfilter([1.0], [1.0, -phi], u, axis=0)


def _orth(a: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the column space of a full-column-rank matrix (sign-fixed)."""
    q, r = np.linalg.qr(a)
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    return q * signs


def _random_orthonormal(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Haar-distributed n x k matrix with orthonormal columns."""
    return _orth(rng.standard_normal((n, k)))


# --------------------------------------------------------------------------- simulate


def simulate(
    n_subjects: int = 8,
    n_samples: int | Sequence[int] = 2000,
    n_units: int | tuple[int, int] | Sequence[int] = 20,
    n_behavior: int = 12,
    n_shared: int = 2,
    *,
    encoding_fraction: float = 0.5,
    snr: float = 1.0,
    smoothness: float = 0.9,
    lag: int = 0,
    trial_length: int = 100,
    n_private: int = 0,
    n_neural_private: int = 2,
    behavior_anisotropy: float = 10.0,
    shared_variance: float = 0.2,
    seed: int | np.random.Generator | None = None,
) -> SimulatedData:
    """Simulate subjects sharing a low-dimensional encoded behavioural representation.

    See the module docstring for the full generative model.

    Parameters
    ----------
    n_subjects : int, default 8
        Number of subjects ``S`` (>= 1).
    n_samples : int or sequence of int, default 2000
        Samples (time bins) per subject ``T_s``: one value for all, or one per subject.
        Must exceed ``|lag|``.
    n_units : int, (low, high) tuple, or sequence of int, default 20
        Units per subject ``N_s``: one value for all; a 2-*tuple* ``(low, high)`` draws
        each subject's count uniformly in ``[low, high]`` (inclusive); a list/array
        gives one count per subject (length ``n_subjects``).
    n_behavior : int, default 12
        Number of behaviour features ``p`` (>= 2).
    n_shared : int, default 2
        Dimension ``k`` of the shared encoded representation, ``1 <= k < p``.
    encoding_fraction : float, default 0.5
        Fraction of each subject's units that encode, in ``(0, 1]``; at least one unit
        encodes.
    snr : float, default 1.0
        For every encoding unit, the (population) variance of the encoded signal divided
        by the variance of its noise plus neural-private factors (>= 0; 0 gives a null
        dataset with no encoding).
    smoothness : float, default 0.9
        AR(1) coefficient of all latent time series, ``|smoothness| < 1``.
    lag : int, default 0
        Samples by which neural activity leads behaviour: ``X_s[t]`` depends on
        ``z_s[t + lag]``. May be negative.
    trial_length : int, default 100
        Samples per trial for ``groups`` (>= 1).
    n_private : int, default 0
        Extra behaviour directions encoded by each subject only, drawn inside the
        unencoded subspace; ``0 <= n_private <= n_behavior - n_shared``.
    n_neural_private : int, default 2
        Number of behaviour-unrelated AR(1) factors shared within each subject's
        population (>= 0).
    behavior_anisotropy : float, default 10.0
        Ratio between the largest and smallest variance of the unencoded behaviour
        sources (>= 1).
    shared_variance : float, default 0.2
        Variance of each encoded latent relative to the largest unencoded source (> 0).
    seed : int, numpy Generator or None
        Seed for :func:`numpy.random.default_rng`.

    Returns
    -------
    SimulatedData
        Neural activity, behaviour, trial ids and ground truth; see
        :class:`SimulatedData`.

    Raises
    ------
    ValueError
        If an argument is out of range or of the wrong type (the message names the
        argument and the value received).

    Examples
    --------
    >>> d = simulate(n_subjects=3, n_samples=500, n_units=(10, 30), seed=0)
    >>> d.n_subjects, d.behavior[0].shape, d.shared_axes.shape
    (3, (500, 12), (12, 2))
    """
    params = dict(
        n_subjects=n_subjects,
        n_samples=list(n_samples) if isinstance(n_samples, Sequence | np.ndarray) else n_samples,
        n_units=(
            n_units
            if isinstance(n_units, tuple) or not isinstance(n_units, Sequence | np.ndarray)
            else list(n_units)
        ),
        n_behavior=n_behavior,
        n_shared=n_shared,
        encoding_fraction=encoding_fraction,
        snr=snr,
        smoothness=smoothness,
        lag=lag,
        trial_length=trial_length,
        n_private=n_private,
        n_neural_private=n_neural_private,
        behavior_anisotropy=behavior_anisotropy,
        shared_variance=shared_variance,
        seed=seed,
    )

    a = _checked_args(params)  # validated numbers, named as in the module docstring
    rng = np.random.default_rng(seed)
    T_list = _per_subject_counts("n_samples", n_samples, a.S, rng, minimum=1)
    for s, T in enumerate(T_list):
        if T <= abs(a.L):
            raise ValueError(f"n_samples must exceed |lag| = {abs(a.L)}, got {T} (subject {s})")
    N_list = _per_subject_counts("n_units", n_units, a.S, rng, minimum=1, allow_range=True)
    model = _behavior_model(rng, a)
    subjects = [
        _simulate_subject(rng, a, model, T, N) for T, N in zip(T_list, N_list, strict=True)
    ]
    private = a.r > 0
    return SimulatedData(
        neural=[sub["neural"] for sub in subjects],
        behavior=[sub["behavior"] for sub in subjects],
        groups=[sub["groups"] for sub in subjects],
        shared_axes=model.shared_axes,
        encoded_subspace=model.encoded_subspace,
        encoding_units=[sub["mask"] for sub in subjects],
        lag=a.L,
        latents=[sub["latents"] for sub in subjects],
        encoders=[sub["encoders"] for sub in subjects],
        private_axes=[sub["private_axes"] for sub in subjects] if private else None,
        behavior_names=[f"feature_{j}" for j in range(a.p)],
        params=params,
        private_latents=[sub["private_latents"] for sub in subjects] if private else None,
    )


@dataclass(frozen=True)
class _Args:
    """The validated scalar arguments of :func:`simulate` (names of the docstring model)."""

    S: int  # subjects
    p: int  # behaviour features
    k: int  # shared dimensions
    frac: float  # fraction of units that encode
    snr: float
    phi: float  # AR(1) smoothness
    L: int  # lag, samples (neural leads behaviour when > 0)
    trial_length: int
    r: int  # private behavioural dimensions per subject
    m: int  # neural-only factors
    aniso: float  # behaviour anisotropy
    shared_variance: float


def _checked_args(params: dict) -> _Args:
    """Check the scalar arguments of :func:`simulate`; the message names the value."""
    S = _as_int("n_subjects", params["n_subjects"])
    if S < 1:
        raise ValueError(f"n_subjects must be >= 1, got {params['n_subjects']!r}")
    p = _as_int("n_behavior", params["n_behavior"])
    if p < 2:
        raise ValueError(f"n_behavior must be >= 2, got {params['n_behavior']!r}")
    k = _as_int("n_shared", params["n_shared"])
    if k < 1:
        raise ValueError(f"n_shared must be >= 1, got {params['n_shared']!r}")
    if k >= p:
        raise ValueError(f"n_shared must be < n_behavior ({p}), got {params['n_shared']!r}")
    frac = _as_float("encoding_fraction", params["encoding_fraction"])
    if not 0.0 < frac <= 1.0:
        raise ValueError(
            f"encoding_fraction must be in (0, 1], got {params['encoding_fraction']!r}"
        )
    snr = _as_float("snr", params["snr"])
    if snr < 0.0:
        raise ValueError(f"snr must be >= 0, got {params['snr']!r}")
    phi = _as_float("smoothness", params["smoothness"])
    if not abs(phi) < 1.0:
        raise ValueError(f"smoothness must satisfy |smoothness| < 1, got {params['smoothness']!r}")
    return _Args(S, p, k, frac, snr, phi, *_checked_rest(params, p, k))


def _checked_rest(params: dict, p: int, k: int) -> tuple:
    """Check lag, trial_length, n_private, n_neural_private, anisotropy, shared variance."""
    L = _as_int("lag", params["lag"])
    tl = _as_int("trial_length", params["trial_length"])
    if tl < 1:
        raise ValueError(f"trial_length must be >= 1, got {params['trial_length']!r}")
    r = _as_int("n_private", params["n_private"])
    if not 0 <= r <= p - k:
        raise ValueError(
            f"n_private must be in [0, n_behavior - n_shared] = [0, {p - k}], "
            f"got {params['n_private']!r}"
        )
    m = _as_int("n_neural_private", params["n_neural_private"])
    if m < 0:
        raise ValueError(f"n_neural_private must be >= 0, got {params['n_neural_private']!r}")
    aniso = _as_float("behavior_anisotropy", params["behavior_anisotropy"])
    if aniso < 1.0:
        raise ValueError(
            f"behavior_anisotropy must be >= 1, got {params['behavior_anisotropy']!r}"
        )
    sv = _as_float("shared_variance", params["shared_variance"])
    if sv <= 0.0:
        raise ValueError(f"shared_variance must be > 0, got {params['shared_variance']!r}")
    return L, tl, r, m, aniso, sv


@dataclass(frozen=True)
class _BehaviorModel:
    """Behavioural axes and the analytic covariance of the behaviour."""

    V0: np.ndarray  # (p, k) encoded directions, orthonormal
    U0: np.ndarray  # (p, p - k) unencoded directions
    var_z: np.ndarray  # (k,) shared latent variances
    var_h: np.ndarray  # (p - k,) unencoded source variances
    d: np.ndarray  # (p,) behaviour standard deviations
    shared_axes: np.ndarray  # (p, k) in standardised behaviour units
    encoded_subspace: np.ndarray  # (p, k)


def _behavior_model(rng, a: _Args) -> _BehaviorModel:
    Q = _random_orthonormal(rng, a.p, a.p)
    V0, U0 = Q[:, : a.k], Q[:, a.k :]
    n_h = a.p - a.k
    var_h = a.aniso ** (-np.arange(n_h) / (n_h - 1)) if n_h > 1 else np.ones(1)
    var_z = np.full(a.k, a.shared_variance * var_h.max())
    sigma_y = (V0 * var_z) @ V0.T + (U0 * var_h) @ U0.T
    d = np.sqrt(np.diag(sigma_y))
    return _BehaviorModel(V0, U0, var_z, var_h, d, _orth(V0 * d[:, None]), _orth(V0 / d[:, None]))


def _simulate_subject(rng, a: _Args, model: _BehaviorModel, T: int, N: int) -> dict:
    """One subject: behaviour (T, p), neural activity (T, N) and its ground truth."""
    L, k, r, m = a.L, a.k, a.r, a.m
    offset = max(0, -L)  # behaviour sample t uses extended index t + offset
    T_ext = T + abs(L)
    z_ext = _ar1(rng, T_ext, model.var_z, a.phi)
    h_ext = _ar1(rng, T_ext, model.var_h, a.phi)
    beh = slice(offset, offset + T)
    neu = slice(offset + L, offset + L + T)
    z = z_ext[beh]
    y = (z @ model.V0.T + h_ext[beh] @ model.U0.T) / model.d
    out = {"private_axes": None, "private_latents": None}
    if r > 0:  # private behavioural encoding
        R = _random_orthonormal(rng, a.p - k, r)
        q_ext = h_ext @ R
        cov_q = (R.T * model.var_h) @ R
        out["private_axes"] = _orth((model.U0 @ R) * model.d[:, None])
        out["private_latents"] = np.ascontiguousarray(q_ext[beh])
    else:
        q_ext = np.zeros((T_ext, 0))
        cov_q = np.zeros((0, 0))
    # which units encode
    n_enc = min(N, max(1, int(round(a.frac * N))))
    mask = np.zeros(N, dtype=bool)
    mask[rng.choice(N, size=n_enc, replace=False)] = True
    # nuisance: neural-only factors and white noise
    F = rng.standard_normal((N, m)) / np.sqrt(m) if m > 0 else np.zeros((N, 0))
    noise_var = rng.uniform(0.5, 1.5, size=N)
    E, P = _encoders(rng, a, model, cov_q, np.sum(F * F, axis=1) + noise_var)
    E[~mask] = 0.0
    P[~mask] = 0.0
    f = _ar1(rng, T, np.ones(m), a.phi) if m > 0 else np.zeros((T, 0))
    x = z_ext[neu] @ E.T + q_ext[neu] @ P.T + f @ F.T
    x += rng.standard_normal((T, N)) * np.sqrt(noise_var)
    scale = np.exp(rng.uniform(np.log(0.1), np.log(10.0), size=N))
    bias = rng.normal(0.0, 10.0, size=N)
    x = x * scale + bias
    return out | {
        "neural": np.ascontiguousarray(x, dtype=np.float64),
        "behavior": np.ascontiguousarray(y, dtype=np.float64),
        "groups": np.arange(T, dtype=np.int64) // a.trial_length,
        "mask": mask,
        "latents": np.ascontiguousarray(z, dtype=np.float64),
        "encoders": E * scale[:, None],
    }


def _encoders(rng, a: _Args, model: _BehaviorModel, cov_q, nuisance):
    """Shared (N, k) and private (N, r) encoders scaled to the exact per-unit snr.

    The encoded variance of each unit is ``snr x nuisance`` (its neural-only plus noise
    variance), split shared : private = k : r.
    """
    k, r = a.k, a.r
    N = len(nuisance)
    E = rng.standard_normal((N, k))
    P = rng.standard_normal((N, r))
    target = a.snr * nuisance
    e_var = model.var_z[0] * np.sum(E * E, axis=1)
    E *= np.sqrt(target * (k / (k + r)) / e_var)[:, None]
    if r > 0:
        p_var = np.einsum("ij,jk,ik->i", P, cov_q, P)
        P *= np.sqrt(target * (r / (k + r)) / p_var)[:, None]
    return E, P
