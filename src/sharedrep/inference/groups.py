"""Comparison of two groups of subjects (regions, novices vs experts) by relabelling.

:func:`compare_groups` tests whether two populations of subjects differ in held-out score of
the shared latents or in their shared behavioural subspace (principal angles, and a
PERMANOVA of the subject-level subspaces). Under the null the subject labels are permuted
between the groups (all splits when few, otherwise random splits seeded from one
:class:`numpy.random.SeedSequence`), or, with ``paired=True`` for the same animals in both
groups, swapped between each animal's two recordings; both pseudo-groups are refitted.
Subjects are the units of inference. The result says whether the test can answer
(``testable``, ``reason``, ``p_min``). It imports :mod:`sharedrep.utils` and
:mod:`sharedrep.inference._resampling`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.linalg as sla
from joblib import delayed

from sharedrep.inference._resampling import (
    _check_count,
    _check_model,
    _check_n_jobs,
    _for_subjects,
    _heldout_r2,
    _progress_map,
    _quiet_fit,
    _refit_jobs,
    _refits,
    _require_cv,
    _spawn_rngs,
    _validate_data,
)

__all__ = [
    "GroupComparison",
    "compare_groups",
]


@dataclass
class GroupComparison:
    """Result of :func:`compare_groups`.

    Attributes
    ----------
    score_a, score_b : ndarray (k,)
        Held-out R^2 per shared dimension of each group, fitted with ``n_shared=k`` by the
        procedure that every relabelling goes through (see :func:`compare_groups`,
        "Observed statistics"). With ``n_shared="auto"`` these are not the scores of each
        group's own auto-selected fit.
    difference : ndarray (k,)
        ``score_a - score_b``: the statistic of the observed split, computed exactly as
        every row of ``null_difference`` (in an exact test it is one of those rows).
    null_difference : ndarray (n_perm, k)
    p_values : ndarray (k,)
        Two-sided: ``(1 + #{|null| >= |observed|}) / (1 + n_perm)`` (exact enumeration:
        ``#{|null| >= |observed|} / n_splits`` with the observed split included). A NaN null
        statistic (a refit without a score) counts as at least as extreme
        (conservative); a non-finite observed difference gives NaN and ``testable=False``.
    difference_mean, p_value_mean : float
        The same for the mean over dimensions.
    angles : ndarray (k,)
        Principal angles (degrees, increasing) between the two groups' shared subspaces
        (group-level fits with ``n_shared=k``, as ``score_a``), in a common standardised
        behaviour space.
    similarity : float
        Mean squared cosine of those angles (1 = same subspace, 0 = orthogonal).
    null_similarity : ndarray (n_perm,)
        The same similarity between the relabelled pseudo-groups' fits.
    p_similarity : float
        One-sided: fraction of relabellings with a similarity as low as observed. Weak
        when groups are small (a pseudo-group that mixes 3 subjects of A with 1 of B finds
        A's subspace, like the real group): prefer ``p_subspace``.
    subspace_f : float
        PERMANOVA pseudo-F of the subject-level subspaces: every subject's own ``k``-dim
        subspace (single-subject fit), distances ``d_ij^2 = 1 - mean cos^2`` of their
        principal angles, between-group over within-group dispersion.
    null_subspace_f : ndarray (n_perm,)
    p_subspace : float
        One-sided: fraction of relabellings with a pseudo-F at least as large.
    n_perm : int
        Number of relabellings used.
    exact : bool
        Whether all distinct relabellings were enumerated.
    paired : bool
        Whether the relabellings swapped recordings within animals only.
    splits : ndarray of bool (n_perm, S_a + S_b)
        Pseudo-group A membership of each relabelling (subjects ordered A then B).
    n_subjects : tuple of int
        ``(S_a, S_b)``: animals in each group.
    p_min : float
        Smallest p-value the score test can give with these animals and relabellings:
        ``1 / (1 + n_perm)`` for random relabellings; ``1 / n_splits`` for an exact test,
        ``2 / n_splits`` when ``S_a == S_b`` (the mirror split, groups swapped, has the
        same ``|difference|`` as the observed one; paired: ``2 / 2**S_a``). Report
        ``p <= p_min`` rather than a p-value that merely sits at the resolution of the
        test.
    testable : bool
        Whether the score test can answer at the conventional 5% level: the observed
        difference is finite and ``p_min <= 0.05``. With ``S_a = S_b = 3`` animals (20
        splits) the smallest p is 0.1 whatever the data.
    reason : str
        Empty when ``testable``; otherwise why not, for callers to print instead of a
        p-value, e.g. ``"not testable at the 5% level: n = 3 + 3 animals allow 20
        relabellings, smallest achievable p = 0.1"`` or ``"not testable: the observed
        difference is not finite (held-out R^2 of group A: [nan], group B: [0.31])"``.
    """

    score_a: np.ndarray
    score_b: np.ndarray
    difference: np.ndarray
    null_difference: np.ndarray
    p_values: np.ndarray
    difference_mean: float
    p_value_mean: float
    angles: np.ndarray
    similarity: float
    null_similarity: np.ndarray
    p_similarity: float
    subspace_f: float
    null_subspace_f: np.ndarray
    p_subspace: float
    n_perm: int
    exact: bool
    splits: np.ndarray = field(repr=False, default=None)
    n_subjects: tuple = (0, 0)
    paired: bool = False
    p_min: float = math.nan
    testable: bool = True
    reason: str = ""

    def summary(self) -> pd.DataFrame:
        """One row per dimension plus a ``"mean"`` row.

        ``attrs`` hold the subspace statistics and ``testable``, ``reason`` and
        ``p_min`` (see the class attributes).
        """
        df = pd.DataFrame(
            {
                "dimension": [str(j) for j in range(self.difference.size)] + ["mean"],
                "score_a": np.r_[self.score_a, np.mean(self.score_a)],
                "score_b": np.r_[self.score_b, np.mean(self.score_b)],
                "difference": np.r_[self.difference, self.difference_mean],
                "p_value": np.r_[self.p_values, self.p_value_mean],
            }
        )
        df.attrs.update(
            similarity=self.similarity,
            p_similarity=self.p_similarity,
            angles=self.angles,
            subspace_f=self.subspace_f,
            p_subspace=self.p_subspace,
            testable=self.testable,
            reason=self.reason,
            p_min=self.p_min,
        )
        return df


def _unpack_data(data, name: str):
    if isinstance(data, dict):
        try:
            return data["neural"], data["behavior"], data.get("groups")
        except KeyError as exc:
            raise ValueError(f"{name} dict needs keys 'neural' and 'behavior'") from exc
    if hasattr(data, "neural") and hasattr(data, "behavior"):
        return data.neural, data.behavior, getattr(data, "groups", None)
    if isinstance(data, tuple | list) and len(data) in (2, 3):
        return tuple(data) + (None,) * (3 - len(data))
    raise TypeError(
        f"{name} must be a tuple (neural, behavior[, groups]), a dict with those keys or an "
        f"object with .neural/.behavior (e.g. SimulatedData); got {type(data).__name__}"
    )


def _common_scale(Ys) -> np.ndarray:
    """Mean over subjects of each behaviour feature's variance, as a std (p,).

    Samples with a non-finite feature (kept only with ``nan_policy="omit"``, and then
    dropped by the fits) are left out.
    """
    rows = [np.all(np.isfinite(Y), axis=1) for Y in Ys]
    var = np.mean([np.var(Y[ok], axis=0) for Y, ok in zip(Ys, rows, strict=True)], axis=0)
    sd = np.sqrt(var)
    sd[sd <= 0] = 1.0
    return sd


def _subspace(fitted, k, common_scale) -> np.ndarray:
    """Shared axes as weights on behaviour standardised by ``common_scale``."""
    return (common_scale / fitted.behavior_scale_)[:, None] * fitted.shared_axes_[:, :k]


def _similarity(Va, Vb):
    ang = sla.subspace_angles(Va, Vb)
    return float(np.mean(np.cos(ang) ** 2)), np.sort(np.degrees(ang))


def _pseudo_f(D2: np.ndarray, in_a: np.ndarray) -> float:
    """PERMANOVA pseudo-F (Anderson 2001) of two groups from squared distances ``D2``."""
    n = D2.shape[0]
    iu = np.triu_indices(n, 1)
    ss_total = D2[iu].sum() / n
    ss_within = 0.0
    for mask in (in_a, ~in_a):
        sub = D2[np.ix_(mask, mask)]
        m = int(mask.sum())
        ss_within += sub[np.triu_indices(m, 1)].sum() / m
    ss_between = ss_total - ss_within
    if ss_within <= 0:
        return float("inf") if ss_between > 0 else float("nan")
    return float(ss_between / (ss_within / (n - 2)))


def _split_statistics(template_a, template_b, Xs, Ys, gs, in_a, k, common_scale):
    """Statistics of one split of the subjects: the procedure applied to every split.

    Both pseudo-groups (``in_a`` and ``~in_a``) are fitted with their template and
    ``n_shared=k`` (everything else, e.g. the cross-validated selection of ``alpha``, as
    in the template). Returns ``(r2_a, r2_b, similarity, angles)``: the held-out R^2 of
    the ``k`` dimensions of each fit (``(k,)`` each) and the similarity and principal
    angles of their subspaces. :func:`compare_groups` computes its observed statistics
    with this function on the observed split, and its null with it on every relabelling.
    """
    fits = []
    for template, idx in ((template_a, np.flatnonzero(in_a)), (template_b, np.flatnonzero(~in_a))):
        # k fixed in every split: a fit selecting fewer dimensions would be compared over
        # fewer angles
        m = _for_subjects(template, idx, len(Xs), n_shared=k)
        _quiet_fit(m, [Xs[i] for i in idx], [Ys[i] for i in idx], [gs[i] for i in idx])
        fits.append(m)
    ra, rb = (_heldout_r2(m, k) for m in fits)
    sim, angles = _similarity(*(_subspace(m, k, common_scale) for m in fits))
    return ra, rb, sim, angles


def _group_fit(template_a, template_b, Xs, Ys, gs, in_a, k, common_scale):
    """``(r2_a - r2_b, similarity)`` of one relabelling (see :func:`_split_statistics`)."""
    ra, rb, sim, _ = _split_statistics(template_a, template_b, Xs, Ys, gs, in_a, k, common_scale)
    return ra - rb, sim


def _comparable_params(model_a, model_b):
    pa, pb = model_a.get_params(), model_b.get_params()
    diff = []
    for key in sorted(set(pa) | set(pb)):
        va, vb = pa.get(key), pb.get(key)
        try:
            same = bool(np.all(np.asarray(va, dtype=object) == np.asarray(vb, dtype=object)))
            same = same and np.shape(va) == np.shape(vb)
        except Exception:  # pragma: no cover - exotic parameter values
            same = va is vb
        if not same:
            diff.append(f"{key}: {va!r} vs {vb!r}")
    if diff:
        raise ValueError(
            "compare_groups permutes subjects between the groups, so both groups must be "
            "analysed with the same model specification; differing parameters: " + "; ".join(diff)
        )


def _check_group_models(model_a, model_b) -> None:
    """Both templates: ShaReD-like, with cv folds, identical parameters, no subject weights."""
    _check_model(model_a, "model_a")
    _check_model(model_b, "model_b")
    _require_cv(model_a, "model_a", "compare_groups")
    _comparable_params(model_a, model_b)
    if model_a.get_params().get("subject_weights") is not None:
        raise ValueError(
            "compare_groups needs subject_weights=None: subjects move between the groups in "
            "its permutations, so weights given per position of a group cannot follow them"
        )


def _check_groups_data(model_a, data_a, model_b, data_b):
    """Both groups' subject arrays; same behaviour features, at least 2 subjects each."""
    Xa, Ya, ga = _validate_data(model_a, *_unpack_data(data_a, "data_a"))
    Xb, Yb, gb = _validate_data(model_b, *_unpack_data(data_b, "data_b"))
    if Ya[0].shape[1] != Yb[0].shape[1]:
        raise ValueError(
            f"data_a has {Ya[0].shape[1]} behaviour features but data_b has {Yb[0].shape[1]}: "
            "the groups must share the same behavioural features"
        )
    Sa, Sb = len(Xa), len(Xb)
    if Sa < 2 or Sb < 2:
        raise ValueError(
            f"compare_groups needs at least 2 subjects per group (got {Sa} in A, {Sb} in B)"
        )
    return (Xa, Ya, ga), (Xb, Yb, gb)


def _subject_distances(template, Xs, Ys, gs, Sa, k, common_scale) -> np.ndarray:
    """Squared subspace distances ``D2[i, j] = 1 - mean cos^2`` between single-subject fits.

    Each subject is fitted alone with the template's specification and ``k`` shared
    dimensions; subjects ``0 .. Sa-1`` belong to group A (named in error messages).
    Returns an ``(S, S)`` symmetric matrix with a zero diagonal.
    """
    S = len(Xs)
    single = []
    for i in range(S):
        m = _for_subjects(template, [i], S, n_shared=k)
        try:
            _quiet_fit(m, [Xs[i]], [Ys[i]], [gs[i]])
        except ValueError as exc:
            grp, j = ("A", i) if i < Sa else ("B", i - Sa)
            raise ValueError(
                f"group {grp} subject {j}: single-subject fit for the subspace test failed: {exc}"
            ) from None
        single.append(_subspace(m, k, common_scale))
    D2 = np.zeros((S, S))
    for i in range(S):
        for j in range(i + 1, S):
            D2[i, j] = D2[j, i] = 1.0 - _similarity(single[i], single[j])[0]
    return D2


def _relabellings(S: int, Sa: int, n_perm: int, random_state) -> tuple[np.ndarray, bool]:
    """Boolean ``(n_splits, S)`` memberships of group A, and whether they are all splits.

    All ``C(S, Sa)`` splits when there are at most ``n_perm`` of them (exact test);
    otherwise ``n_perm`` random splits, one spawned generator each.
    """
    n_splits = math.comb(S, Sa)
    if n_splits <= n_perm:
        splits = np.zeros((n_splits, S), dtype=bool)
        for i, comb in enumerate(itertools.combinations(range(S), Sa)):
            splits[i, list(comb)] = True
        return splits, True
    splits = np.zeros((n_perm, S), dtype=bool)
    for i, rng in enumerate(_spawn_rngs(random_state, n_perm)):
        splits[i, rng.permutation(S)[:Sa]] = True
    return splits, False


_TOL = 1e-12  # ties within rounding count as "at least as extreme"


def _paired_relabellings(n: int, n_perm: int, random_state) -> tuple[np.ndarray, bool]:
    """Memberships ``(n_splits, 2 n)`` of within-pair swaps of ``n`` pairs (A_i, B_i).

    Each relabelling swaps the two members of a subset of the pairs: pseudo-group A holds
    ``A_i`` or ``B_i`` of every pair ``i``. All ``2**n`` swap patterns when there are at
    most ``n_perm`` (exact; the observed, no swap, is one of them), otherwise ``n_perm``
    random patterns, one spawned generator each.
    """
    if 2**n <= n_perm:
        swap = ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)
        exact = True
    else:
        swap = np.array([rng.random(n) < 0.5 for rng in _spawn_rngs(random_state, n_perm)])
        exact = False
    return np.hstack([~swap, swap]), exact


def _relabelling_p(observed, null: np.ndarray, exact: bool, tail: str):
    """Relabelling p-value of ``observed`` (scalar or ``(k,)``) against ``null`` (``(n, ...)``).

    ``tail``: ``"abs"`` (two-sided, ``|null| >= |observed|``), ``"greater"`` or ``"less"``.
    ``count / n`` for an exact test (the observed split is among the ``n``), else
    ``(1 + count) / (1 + n)``. A NaN null value counts as at least as extreme
    (conservative: a failed refit never makes the observed look rarer); a NaN observed
    value gives NaN (never the smallest p, which a plain comparison with NaN would give).
    """
    obs = np.asarray(observed, dtype=float)
    null = np.asarray(null, dtype=float)
    if tail == "abs":
        extreme = np.abs(null) >= np.abs(obs) - _TOL
    elif tail == "greater":
        extreme = null >= obs - _TOL
    elif tail == "less":
        extreme = null <= obs + _TOL
    else:  # pragma: no cover - internal use only
        raise ValueError(f"tail must be 'abs', 'greater' or 'less'; got {tail!r}")
    count = np.sum(extreme | np.isnan(null), axis=0)
    n = null.shape[0]
    p = count / n if exact else (1.0 + count) / (1.0 + n)
    return np.where(np.isnan(obs), np.nan, p)


def _smallest_p(n: int, exact: bool, mirrored: bool) -> float:
    """Smallest two-sided p of ``n`` relabellings (see ``GroupComparison.p_min``)."""
    if not exact:
        return 1.0 / (1.0 + n)
    return (2.0 if mirrored else 1.0) / n


def _testability(
    diff: np.ndarray, ra, rb, Sa: int, Sb: int, n: int, p_min: float, exact: bool, paired: bool
):
    """``(testable, reason)`` of the score test (see ``GroupComparison.testable``)."""
    if not np.all(np.isfinite(diff)):
        return False, (
            "not testable: the observed difference is not finite (held-out R^2 of group A: "
            f"{np.array2string(np.asarray(ra), precision=3)}, group B: "
            f"{np.array2string(np.asarray(rb), precision=3)})"
        )
    if p_min > 0.05:
        if not exact:
            what = f"n_perm = {n} relabellings"
        elif paired:
            what = f"n = {Sa} paired animals allow {n} within-animal relabellings"
        else:
            what = f"n = {Sa} + {Sb} animals allow {n} relabellings"
        return False, (
            f"not testable at the 5% level: {what}, smallest achievable p = {p_min:.3g}"
        )
    return True, ""


def compare_groups(
    model_a,
    data_a,
    model_b,
    data_b,
    n_perm: int = 200,
    n_jobs: int = 1,
    random_state=None,
    *,
    paired: bool = False,
    progress: bool = True,
) -> GroupComparison:
    """Compare two groups of subjects (e.g. two brain regions, novices vs experts).

    Two questions, one relabelling null:

    1. **Held-out score.** Is the cross-validated R^2 of the shared latents different in
       group A and group B? Statistic: ``r2_a[j] - r2_b[j]`` per dimension (pooled
       held-out R^2 at each fit's selected alpha) and its mean over dimensions; two-sided.
    2. **Shared subspace.** Do the groups use different behavioural subspaces? Subspaces
       are compared through their principal angles, as weights on behaviour features
       standardised by a common within-subject scale. Reported: the angles and the
       similarity (mean squared cosine) between the two group fits, with a relabelling
       null (``p_similarity``); and -- the recommended test -- a PERMANOVA of the
       subject-level subspaces (each subject's own fit, distance
       ``1 - mean cos^2``; ``p_subspace``), which stays powerful when a mixed pseudo-group
       would simply follow its majority.

    **What is resampled.** Subject labels: the ``S_a + S_b`` subjects are reassigned to
    pseudo-groups of sizes ``S_a`` and ``S_b`` and both pseudo-groups are refitted with the
    complete pipeline (each subject's data pass and fold solves computed once and reused
    by every refit, :func:`sharedrep.core.backends.reuse_statistics`; equal to independent
    refits to rounding, and the refit of the observed split gives the observed numbers).
    When the number of distinct splits ``C(S_a + S_b, S_a)`` is at most
    ``n_perm``, all splits are enumerated (an exact test; the observed split is one of
    them); otherwise ``n_perm`` random splits are drawn. The subject-level subspaces of the
    PERMANOVA are fitted once per subject; only their group labels are permuted.
    With ``paired=True`` (the same animals in both groups, in the same order) only the
    two recordings of each animal are swapped: each pseudo-group keeps one recording per
    animal, as the observed groups do; all ``2**S_a`` swap patterns when there are at
    most ``n_perm`` of them (exact), otherwise ``n_perm`` random patterns.

    **Observed statistics.** Every split, the observed one included, goes through one
    procedure: both pseudo-groups are fitted with ``n_shared=k`` and otherwise the
    template's specification (``alpha`` selected again by cross-validation when
    ``alpha=None``), and the score difference, similarity and angles are read from these
    two fits. ``k`` is the number of shared dimensions of one fit of all subjects of
    both groups together with the template as given (with ``n_shared="auto"``, its
    cross-validated selection): a choice no relabelling changes, so the test statistic
    is the same function of every split and the relabelling null is valid for it. The
    observed statistics are the refit of the observed split: in an exact test the
    observed split is one of the enumerated null values, so every p-value is at least
    ``p_min``.

    **Unit of inference.** Subjects (animals): the null hypothesis is that group
    membership is exchangeable across subjects (``paired=True``: between the two
    recordings of each animal). Unpaired, subjects must be independent animals; when the
    same animal appears in both groups (e.g. novice and expert sessions of one mouse),
    the unpaired test ignores the pairing and is conservative (in the design of
    ``sharedrep demo``, 6 mice, it rejected 1 of 200 null studies at 5%; see
    ``docs/statistics-calibration.md``): use ``paired=True`` there.

    Parameters
    ----------
    model_a, model_b : ShaReD
        Templates with identical parameters (cloned; not modified). Need ``cv`` folds and
        ``subject_weights=None`` (subjects move between the groups in the permutations,
        so a weight per position of a group would not follow its subject).
    data_a, data_b : tuple (neural, behavior[, groups]), dict or SimulatedData
        Each group's subjects. The behaviour features must be the same.
    n_perm : int, default 200
    n_jobs, random_state
        As in :func:`permutation_test`. ``n_jobs`` parallelises the refits only where
        they cannot reuse the subjects' statistics (dask or torch backend,
        ``low_memory="strict"``); otherwise they run in this process.
    paired : bool, default False
        Subject ``i`` of ``data_a`` and subject ``i`` of ``data_b`` are the same animal
        (e.g. its expert and novice sessions, or two of its populations): relabel within
        animals (see above). Needs ``S_a == S_b``.
    progress : bool, default True
        As in :func:`permutation_test`.

    Returns
    -------
    GroupComparison
        Check ``testable`` before quoting ``p_values``: with ``S_a = S_b = 3`` animals or
        fewer (paired: 5 animals or fewer), or fewer than 19 random relabellings, no
        p-value can reach 0.05, and a non-finite observed score gives NaN; ``reason``
        then says why (print it instead of "p = nan"). ``p_min`` is the smallest p the
        test can give (a p-value equal to it means "at least as extreme as every
        relabelling": report ``p <= p_min``).

    Examples
    --------
    >>> from sharedrep import ShaReD, simulate
    >>> d = simulate(n_subjects=6, n_samples=300, n_units=8, n_behavior=4, n_shared=1,
    ...              trial_length=15, seed=0)
    >>> m = ShaReD(n_shared=1, alpha=1.0, cv=3, private=False)
    >>> a, b = d.subset([0, 1, 2]), d.subset([3, 4, 5])
    >>> res = compare_groups(m, a, m, b, progress=False)
    >>> res.exact, res.n_perm, res.p_min, res.testable
    (True, 20, 0.1, False)
    >>> res.reason.startswith("not testable at the 5% level: n = 3 + 3 animals")
    True
    """
    _check_group_models(model_a, model_b)
    n_perm = _check_count(n_perm, "n_perm")
    n_jobs = _check_n_jobs(n_jobs, model_a)
    (Xa, Ya, ga), (Xb, Yb, gb) = _check_groups_data(model_a, data_a, model_b, data_b)
    Sa, Sb = len(Xa), len(Xb)
    if paired and Sa != Sb:
        raise ValueError(
            f"paired=True needs the same animals in both groups, subject i of data_a and "
            f"subject i of data_b being one animal; got {Sa} subjects in A and {Sb} in B"
        )
    Xs, Ys, gs = Xa + Xb, Ya + Yb, ga + gb
    common = _common_scale(Ys)
    if paired:
        splits, exact = _paired_relabellings(Sa, n_perm, random_state)
    else:
        splits, exact = _relabellings(Sa + Sb, Sa, n_perm, random_state)
    with _refits(model_a) as cache:  # each subject's data pass and fold solves once
        # k from one fit of all subjects, which no relabelling changes; the observed
        # statistics are the refit of the observed split by the procedure that every
        # relabelling goes through
        everyone = np.arange(len(Xs))
        k = int(_quiet_fit(_for_subjects(model_a, everyone, len(Xs)), Xs, Ys, gs).n_shared_)
        observed_split = np.r_[np.ones(Sa, bool), np.zeros(Sb, bool)]
        D2 = _subject_distances(model_a, Xs, Ys, gs, Sa, k, common)
        f_obs = _pseudo_f(D2, observed_split)
        ra, rb, sim, angles = _split_statistics(
            model_a, model_b, Xs, Ys, gs, observed_split, k, common
        )
        diff = ra - rb
        tasks = [
            delayed(_group_fit)(model_a, model_b, Xs, Ys, gs, splits[i], k, common)
            for i in range(splits.shape[0])
        ]
        results = _progress_map(tasks, _refit_jobs(cache, n_jobs), progress, "relabellings")
    null_diff = np.array([r[0] for r in results], dtype=float).reshape(-1, k)
    null_sim = np.array([r[1] for r in results], dtype=float)
    null_f = np.array([_pseudo_f(D2, split) for split in splits], dtype=float)
    n = null_diff.shape[0]
    mean_diff = float(np.mean(diff))
    p_min = _smallest_p(n, exact, mirrored=Sa == Sb)
    testable, reason = _testability(diff, ra, rb, Sa, Sb, n, p_min, exact, paired)
    return GroupComparison(
        score_a=ra,
        score_b=rb,
        difference=diff,
        null_difference=null_diff,
        p_values=np.asarray(_relabelling_p(diff, null_diff, exact, "abs"), dtype=float),
        difference_mean=mean_diff,
        p_value_mean=float(_relabelling_p(mean_diff, null_diff.mean(axis=1), exact, "abs")),
        angles=angles,
        similarity=sim,
        null_similarity=null_sim,
        p_similarity=float(_relabelling_p(sim, null_sim, exact, "less")),
        subspace_f=f_obs,
        null_subspace_f=null_f,
        p_subspace=float(_relabelling_p(f_obs, null_f, exact, "greater")),
        n_perm=int(n),
        exact=bool(exact),
        splits=splits,
        n_subjects=(Sa, Sb),
        paired=bool(paired),
        p_min=float(p_min),
        testable=bool(testable),
        reason=reason,
    )
