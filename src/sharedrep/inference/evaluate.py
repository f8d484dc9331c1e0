"""Does pooling animals help on *my* data? Leave-one-animal-out evaluation.

:func:`evaluate` answers the question a user of ShaReD should ask before trusting the
shared representation on a new animal: on these recordings, does a decoder that uses the
axes found in the *other* animals beat a decoder fitted on the new animal alone, for the
calibration sizes that matter?

For every held-out animal (all its recordings held out together) the model is fitted on
the other animals; each recording of the held-out animal is cut into contiguous blocks,
calibration and test blocks are interleaved (so slow drift favours neither), and four
decoders are compared on the same test rows: a constant prediction, a per-animal ridge
(:func:`sharedrep.inference.transfer.ridge_decoder`, the package's ridge with
cross-validation of :mod:`sharedrep.core.ridge`), the pure shared read-out and the
combined decoder that :meth:`ShaReD.with_subject` chose by inner cross-validation. The
animals are the unit of inference: win/tie/loss counts and paired tests over animals, and
a split-half reproducibility check of the shared axes. Part of the ``inference`` layer:
imports :mod:`sharedrep.utils` and :mod:`sharedrep.core` only (the figure is
:func:`sharedrep.app.plots.plot_calibration_curves`).
"""

from __future__ import annotations

import copy
import json
import numbers
import reprlib
import warnings
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import delayed
from scipy import linalg, stats

from sharedrep.inference._resampling import (
    _check_model,
    _check_n_jobs,
    _for_subjects,
    _progress_map,
    _quiet_fit,
    _seed_sequence,
    _validate_data,
)
from sharedrep.inference.transfer import (
    NEAR_CONSTANT,
    check_calibration,
    near_constant_features,
    ridge_decoder,
)
from sharedrep.utils.files import atomic_write
from sharedrep.utils.validation import fold_subject

__all__ = [
    "Evaluation",
    "evaluate",
    "interleaved_blocks",
    "TABLES",
    "TIE_TOLERANCE",
    "MIN_ANIMALS",
]

#: Two decoders whose pooled R^2 differ by at most this much on an animal tie there.
TIE_TOLERANCE = 0.01
#: Fewest animals for which the paired tests over animals are run.
MIN_ANIMALS = 5
#: Paired differences of pooled R^2 at most this large are rounding (two decoders that are
#: the same ridge, e.g. ``"own"`` and ``"ridge"``): they count as 0 in the paired tests.
ROUNDING = 1e-10
#: Decoders compared (``"own"`` only when the model offers it).
METHODS = ("constant", "ridge", "shared", "combined", "own")
#: Tables of an :class:`Evaluation`, written as ``<name>.csv`` by ``to_csv``.
TABLES = ("scores", "animal_scores", "summary", "comparisons", "reproducibility", "folds")
#: Recordings whose calibration sets at one fraction differ by more than this factor in
#: size (trials, or samples) are said to differ in length in the verdict's notes.
SIZE_RATIO = 2.0


# --------------------------------------------------------------------------- result
@dataclass
class Evaluation:
    """Result of :func:`evaluate`: tidy tables and a one-line verdict.

    Attributes
    ----------
    scores : pandas.DataFrame
        One row per held-out recording (``entry``), fraction, method and feature
        (``feature="pooled"`` for all features together): ``animal``, ``entry``,
        ``fraction``, ``n_calibration``, ``calibration_unit``, ``n_test`` (test rows
        scored), ``method``, ``decoder`` (the combined decoder's choice), ``feature``,
        ``r2``, ``sse``, ``sst`` (sums of squares in pooled-standardised units). A
        feature's ``r2`` is NaN where it does not vary on the test rows (variance at most
        :data:`~sharedrep.inference.transfer.NEAR_CONSTANT` of its pooled variance, or
        constant to rounding: an unconnected channel, a keypoint that never moved; a
        warning names the recording and the features); its ``sse`` and ``sst`` stay, and
        so does the pooled ``r2`` (NaN only when no feature varies).
    animal_scores : pandas.DataFrame
        The same pooled over an animal's recordings (``1 - sum SSE / sum SST``):
        ``animal``, ``fraction``, ``method``, ``feature``, ``r2`` (NaN where the ``r2`` is
        NaN in every recording of the animal).
    summary : pandas.DataFrame
        Per fraction and method, over animals (pooled feature): ``mean_r2``,
        ``median_r2``, ``min_r2``, ``max_r2``, ``n_animals`` (the animals these are over:
        those with a defined R^2) and ``n_animals_total`` (all held-out animals).
    comparisons : pandas.DataFrame
        Per fraction, ``method`` against ``baseline``: ``n_animals`` (animals compared),
        ``n_animals_total``, ``left_out`` (the animals not compared, comma-separated: their
        R^2 is undefined, see ``notes``), ``wins``, ``ties``, ``losses`` (tie:
        ``|difference| <= tie_tolerance``), ``mean_diff``, ``median_diff``,
        ``wilcoxon_p``, ``ttest_p`` (per fraction, not adjusted; NaN when not testable;
        differences of at most ``ROUNDING`` count as 0) and ``test_note``.
    reproducibility : pandas.DataFrame
        ``comparison`` (``"split-half"`` or ``"single-animal"``), ``first``, ``second``
        (the animals of each side), ``k_first``, ``k_second``, ``max_angle_deg``,
        ``mean_angle_deg`` (principal angles between the two fits' shared axes) and
        ``note``: why a side could not be fitted (e.g. its recordings all have
        ``subject_weights`` 0, or constant behaviour); its ``k`` is then missing and the
        angles NaN.
    folds : pandas.DataFrame
        ``held_out`` (animal), ``entry``, ``animal``, ``role`` (``"train"`` or
        ``"test"``), ``fit_subject`` (the entry's subject index in that fit, -1 when held
        out), ``n_units`` and ``fit_n_units`` (units of the entry, and of the fit's subject
        at ``fit_subject``): which recordings each leave-one-animal-out fit used.
    verdict : str
        One line: "pooling helps / is neutral / hurts / is mixed on these data, by ..."
        (with the paired test and its threshold) and why, or "cannot tell whether pooling
        helps on these data" when no calibration fraction has the 5 animals a paired test
        needs.
    notes : list of str
        Facts behind the verdict (where the fractions disagree, the verdict per fraction;
        animals left out and why; the animals on which pooling did worse than the animal
        alone; animals without decodable signal; a pure shared read-out worse than the
        per-animal ridge; recordings of very different lengths; k = p; the decoders
        chosen).
    warnings : list of str
        The warnings issued during the evaluation (calibration sets, animals left out,
        reproducibility fits that were impossible, ...).
    settings : dict
    """

    scores: pd.DataFrame
    animal_scores: pd.DataFrame
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    reproducibility: pd.DataFrame
    folds: pd.DataFrame
    verdict: str
    notes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def to_csv(self, folder, overwrite: bool = False) -> list[Path]:
        """Write the tables (``<name>.csv``) and ``evaluation.json`` (verdict, notes,
        warnings, settings) into ``folder`` (created if missing).

        Nothing is written when a file exists and ``overwrite`` is False
        (``FileExistsError``); every file is written atomically.

        Returns
        -------
        list of pathlib.Path
        """
        folder = Path(folder)
        names = [f"{t}.csv" for t in TABLES] + ["evaluation.json"]
        if not overwrite:
            existing = [folder / n for n in names if (folder / n).exists()]
            if existing:
                raise FileExistsError(f"{existing[0]} exists; pass overwrite=True to replace it")
        out = []
        for t in TABLES:
            df = getattr(self, t)
            out.append(
                atomic_write(
                    folder / f"{t}.csv",
                    lambda tmp, df=df: df.to_csv(tmp, index=False),
                    overwrite=overwrite,
                )
            )
        doc = dict(
            verdict=self.verdict, notes=self.notes, warnings=self.warnings, settings=self.settings
        )
        text = json.dumps(doc, indent=2, default=str)
        out.append(
            atomic_write(
                folder / "evaluation.json",
                lambda tmp: tmp.write_text(text, encoding="utf-8"),
                overwrite=overwrite,
            )
        )
        return out


# --------------------------------------------------------------------------- blocks
def interleaved_blocks(n_samples: int, groups, n_blocks: int, fractions, where: str = ""):
    """Interleaved calibration / test rows of one recording.

    The recording is cut into ``n_blocks`` contiguous blocks of (nearly) equal size --
    whole trials with trial ids, samples otherwise. Even blocks (0, 2, 4, ...) form the
    calibration pool, odd blocks the test set (the same for every fraction). Fraction
    ``f`` uses ``m = round(f * n_blocks)`` calibration blocks (at least 1), spread evenly
    over the pool (pool positions ``floor((i + 1/2) * n_pool / m)``), so slow drift
    reaches calibration and test alike.

    Parameters
    ----------
    n_samples : int
    groups : array-like of shape (n_samples,) or None
        Trial ids.
    n_blocks : int
        At least 2; with trial ids at most the number of trials.
    fractions : sequence of float
        Calibration fractions of the recording, each at most ``ceil(n_blocks / 2) /
        n_blocks`` (the pool).
    where : str
        Names the recording in errors.

    Returns
    -------
    block : ndarray of int of shape (n_samples,)
        Block of every sample.
    cal_masks : list of bool ndarray of shape (n_samples,)
        Calibration rows per fraction.
    test_mask : bool ndarray of shape (n_samples,)
    """
    if groups is None:
        block = (np.arange(n_samples) * n_blocks) // n_samples
    else:
        _, first, inv = np.unique(np.asarray(groups), return_index=True, return_inverse=True)
        n_trials = first.size
        if n_trials < n_blocks:
            raise ValueError(
                f"{where}: {n_trials} trials cannot be cut into n_blocks={n_blocks} blocks of "
                "whole trials; lower n_blocks"
            )
        rank = np.empty(n_trials, dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(n_trials)
        block = (rank[inv.ravel()] * n_blocks) // n_trials
    pool = np.arange(0, n_blocks, 2)
    cal_masks = []
    for f in fractions:
        m = max(1, int(round(f * n_blocks)))
        if m > pool.size:
            raise ValueError(
                f"{where}: calibration fraction {f} needs {m} of {n_blocks} blocks but only "
                f"{pool.size} (the even blocks) are calibration blocks; fractions must be at "
                f"most {pool.size / n_blocks:g}"
            )
        chosen = pool[((np.arange(m) + 0.5) * pool.size / m).astype(int)]
        cal_masks.append(np.isin(block, chosen))
    return block, cal_masks, block % 2 == 1


# --------------------------------------------------------------------------- scoring
def _calibrate(base, Xc, Yc, gc):
    """``(model, index, has_through)``: the base model with the new recording added."""
    if hasattr(base, "with_subject"):
        new, idx = base.with_subject(Xc, Yc, groups=gc)
        return new, idx, True
    new = copy.deepcopy(base)
    return new, new.add_subject(Xc, Yc, groups=gc), False


def _predictions(new, idx, has_through, dec, Xt, gt) -> dict:
    """``{method: (Y_hat, rows)}`` of the model-based decoders and the ridge."""
    out = {"ridge": dec.predict(Xt, gt)}
    if has_through:
        for method, through in (("shared", "shared"), ("combined", "auto"), ("own", "own")):
            Yh, rows = new.predict(Xt, subject=idx, groups=gt, return_rows=True, through=through)
            out[method] = (Yh, rows)
    else:
        out["shared"] = new.predict(Xt, subject=idx, groups=gt, return_rows=True)
        out["combined"] = out["shared"]
    return out


def _sums(Y, Yh, scale):
    """Per-feature SSE and SST (about the mean of ``Y``) in ``scale`` units, finite rows."""
    ok = np.all(np.isfinite(Y), axis=1)
    Y, Yh = Y[ok], Yh[ok]
    sse = np.sum(((Y - Yh) / scale) ** 2, axis=0)
    sst = np.sum(((Y - Y.mean(axis=0)) / scale) ** 2, axis=0)
    return sse, sst


def _score_rows(preds: dict, Yt, const, scale, info: dict, names, where: str) -> list[dict]:
    """Score every decoder on the test rows every decoder predicts (same rows for all).

    A feature that does not vary on those rows (:func:`near_constant_features`) gets a NaN
    R^2 (with a warning naming ``where`` and the features) but keeps its SSE and SST, so
    the pooled R^2 is unchanged; the pooled R^2 is NaN when no feature varies.
    """
    common = None
    for _, rows in preds.values():
        common = rows if common is None else np.intersect1d(common, rows)
    flat = near_constant_features(Yt[common], scale)
    _warn_flat(flat, Yt[common], scale, names, where)
    out = []
    preds = {"constant": (np.broadcast_to(const, (common.size, const.size)), common), **preds}
    for method, (Yh, rows) in preds.items():
        Yh = Yh[np.searchsorted(rows, common)]
        sse, sst = _sums(Yt[common], Yh, scale)
        r2 = np.where(flat, np.nan, 1.0 - sse / np.where(flat, 1.0, sst))
        base = dict(info, n_test=int(common.size), method=method)
        for j, name in enumerate(names):
            out.append(dict(base, feature=name, r2=float(r2[j]), sse=sse[j], sst=sst[j]))
        tot = float(np.sum(sst))
        pooled = float("nan") if flat.all() else 1.0 - float(np.sum(sse)) / tot
        out.append(dict(base, feature="pooled", r2=pooled, sse=float(np.sum(sse)), sst=tot))
    return out


def _warn_flat(flat, Y, scale, names, where: str) -> None:
    """Warn about the features (``flat``, bool (p,)) that do not vary on the scored test
    rows ``Y`` (n, p), with their variance as a fraction of the pooled variance
    ``scale ** 2``."""
    if not flat.any():
        return
    Y = Y[np.all(np.isfinite(Y), axis=1)]
    ratio = np.var(Y, axis=0) / scale**2 if Y.shape[0] else np.zeros(len(names))
    which = ", ".join(f"{names[j]!r} ({ratio[j]:.2g})" for j in np.flatnonzero(flat))
    warnings.warn(
        f"{where}: behaviour feature(s) {which} do not vary on the test rows (in brackets: "
        "the variance there as a fraction of the feature's pooled variance in the fit; at "
        f"most {NEAR_CONSTANT:g}, or constant to rounding in its own units): their "
        "per-feature R^2 is undefined (NaN in scores, and in animal_scores where no "
        "recording of the animal varies), as 1 - SSE/SST would divide by noise; the pooled "
        "R^2 keeps their sums of squares",
        UserWarning,
        stacklevel=3,
    )


def _score_fraction(base, X, Y, g, cal, test, info: dict, cfg: dict) -> list[dict]:
    """All decoders of one recording at one calibration fraction."""
    Xc, Yc, Xt, Yt = X[cal], Y[cal], X[test], Y[test]
    gc, gt = g[cal], g[test]
    where = (
        f"held-out animal {info['animal']!r}, recording {info['entry']}, "
        f"calibration fraction {info['fraction']}"
    )
    check_calibration(Yc, Yt, where, cfg["names"], scale=base.behavior_scale_)
    try:
        # the model names the recording by its index in the leave-one-out fit: say which
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            new, idx, has_through = _calibrate(base, Xc, Yc, gc)
        for w in caught:
            warnings.warn(f"{where}: {w.message}", w.category, stacklevel=2)
        dec = ridge_decoder(
            Xc,
            Yc,
            groups=gc,
            lags=base.lags_,
            alphas=cfg["ridge_alphas"],
            cv=cfg["n_folds"],
            nan_policy=base.nan_policy,
        )
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    preds = _predictions(new, idx, has_through, dec, Xt, gt)
    info = dict(info, decoder=new.subject_decoders_[idx] if has_through else "shared")
    const = np.nanmean(Yc, axis=0)
    return _score_rows(preds, Yt, const, base.behavior_scale_, info, cfg["names"], where)


def _evaluate_animal(model, Xs, Ys, gs, animals, a, plans, cfg):
    """Fit on the other animals and score every recording of animal ``a``.

    Returns ``(score rows, fold rows, n_shared of the fit, warnings)``.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train = [i for i, x in enumerate(animals) if x != a]
        base = _quiet_fit(
            _for_subjects(model, train, len(Xs)),
            [Xs[i] for i in train],
            [Ys[i] for i in train],
            [gs[i] for i in train],
        )
        rows = []
        for e in (i for i, x in enumerate(animals) if x == a):
            block_ids, cal_masks, test = plans[e]
            g = gs[e] if gs[e] is not None else block_ids  # no window crosses a block
            for f, cal in zip(cfg["fractions"], cal_masks, strict=True):
                info = dict(
                    animal=a,
                    entry=e,
                    fraction=f,
                    n_calibration=int(np.unique(g[cal]).size if gs[e] is not None else cal.sum()),
                    calibration_unit="trials" if gs[e] is not None else "samples",
                )
                rows += _score_fraction(base, Xs[e], Ys[e], g, cal, test, info, cfg)
    if base.n_subjects_ != len(train):  # the fit must hold exactly the training entries
        raise RuntimeError(f"the fit without animal {a!r} holds {base.n_subjects_} subjects")
    position = {e: j for j, e in enumerate(train)}
    folds = [
        dict(
            held_out=a,
            entry=i,
            animal=x,
            role="test" if x == a else "train",
            fit_subject=position.get(i, -1),
            n_units=int(Xs[i].shape[1]),
            fit_n_units=int(base.n_units_[position[i]]) if i in position else -1,
        )
        for i, x in enumerate(animals)
    ]
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    return rows, folds, int(base.n_shared_), messages


# --------------------------------------------------------------------------- statistics
def _pooled_sums(scores: pd.DataFrame, keys: list) -> pd.DataFrame:
    """Sums of ``sse`` and ``sst`` per ``keys``, with ``defined`` (some recording's R^2 is
    defined, not NaN) and ``finite`` (every recording's SSE is finite)."""
    flags = scores.assign(defined=scores["r2"].notna(), finite=np.isfinite(scores["sse"]))
    return (
        flags.groupby(keys, sort=False)
        .agg(
            sse=("sse", "sum"),
            sst=("sst", "sum"),
            defined=("defined", "any"),
            finite=("finite", "all"),
        )
        .reset_index()
    )


def _animal_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Pool every animal's recordings: ``r2 = 1 - sum SSE / sum SST`` per feature; NaN
    when the feature's R^2 is undefined in every recording (no behaviour variance on the
    test rows, :func:`_score_rows`) or a recording's SSE is not finite."""
    keys = ["animal", "fraction", "method", "feature"]
    agg = _pooled_sums(scores, keys)
    ok = agg["defined"] & agg["finite"] & (agg["sst"] > 0)
    agg["r2"] = np.where(ok, 1.0 - agg["sse"] / agg["sst"].where(ok, 1.0), np.nan)
    return agg[keys + ["r2"]]


def _summary_table(animal: pd.DataFrame) -> pd.DataFrame:
    """Pooled R^2 over animals per fraction and method: the statistics and ``n_animals``
    count the animals with a defined R^2, ``n_animals_total`` all of them."""
    pooled = animal[animal["feature"] == "pooled"]
    g = pooled.groupby(["fraction", "method"], sort=False)["r2"]
    out = g.agg(
        mean_r2="mean",
        median_r2="median",
        min_r2="min",
        max_r2="max",
        n_animals="count",
        n_animals_total="size",
    )
    return out.reset_index()


def _left_out_messages(scores: pd.DataFrame) -> list[str]:
    """One message per animal whose pooled R^2 is undefined at some fraction (it is then
    left out of the summary and the comparisons there), saying why."""
    pooled = scores[scores["feature"] == "pooled"]
    sums = _pooled_sums(pooled, ["animal", "fraction", "method"])
    bad = sums[~sums["defined"] | ~sums["finite"]]
    out = []
    for a, rows in bad.groupby("animal", sort=False):
        if rows["finite"].all():
            why = (
                "its behaviour does not vary on its test rows (no feature's variance there "
                f"exceeds {NEAR_CONSTANT:g} of its pooled variance): there is nothing to "
                "explain"
            )
        else:
            why = f"the predictions of {sorted(set(rows['method']))} are not finite"
        fractions = ", ".join(f"{f:g}" for f in sorted(set(rows["fraction"])))
        out.append(
            f"animal {a!r} is left out of the comparisons and the summary at calibration "
            f"fraction(s) {fractions}: its pooled R^2 is undefined ({why})"
        )
    return out


def _loss_note(animal: pd.DataFrame, tie: float) -> list[str]:
    """Name the animals on which the combined decoder is worse than the per-animal ridge
    by more than ``tie`` (pooled R^2), with the fractions: the counts of the comparisons
    say how many animals lose, this says which (a point difference per animal, no test)."""
    pooled = animal[animal["feature"] == "pooled"]
    wide = pooled.set_index(["animal", "fraction", "method"])["r2"].unstack("method")
    if "combined" not in wide or "ridge" not in wide:
        return []
    lost = wide.index[(wide["combined"] - wide["ridge"]).to_numpy() < -tie]
    by_animal: dict = {}
    for a, f in lost:
        by_animal.setdefault(a, []).append(f"{f:g}")
    if not by_animal:
        return []
    which = ", ".join(
        f"animal {a!r} (calibration fraction(s) {', '.join(fs)})" for a, fs in by_animal.items()
    )
    return [
        f"losses, where pooling did worse than the animal alone (combined decoder below the "
        f"per-animal ridge by more than the tie tolerance {tie:g} R^2): {which} (per-animal "
        "point differences, not tested)"
    ]


def _no_signal_note(animal: pd.DataFrame) -> list[str]:
    """Name the animals on which no decoder explains any variance of the test rows: the
    pooled R^2 of every decoder but the constant is at most 0 at every fraction. Their
    wins, ties and losses compare decoders that all fail (too little data, a recording
    without behaviour-related activity, or a failed one); the paired tests keep them, as
    the animals are the sample, and the note says which they are."""
    pooled = animal[(animal["feature"] == "pooled") & (animal["method"] != "constant")]
    best = pooled.groupby("animal", sort=False)["r2"].max()  # NaN: left out (noted)
    silent = [a for a, r2 in best.items() if r2 <= 0]
    if not silent:
        return []
    which = ", ".join(f"animal {a!r} (best pooled R^2 {best[a]:.3f})" for a in silent)
    return [
        f"no decodable signal: {which}: no decoder (per-animal ridge, shared or combined) "
        "explains any of the test variance at any calibration fraction, so its wins, ties "
        "and losses compare decoders that all fail (too little data to decode, no "
        "behaviour-related activity in the recording, or a failed recording)"
    ]


def _calibration_sizes(scores: pd.DataFrame) -> dict:
    """``{fraction: (text, ratio)}``: the calibration sizes of the recordings at each
    fraction (``"4 to 20 trials"``) and the largest over the smallest (inf when some
    recordings count trials and others samples)."""
    rows = scores[(scores["method"] == "constant") & (scores["feature"] == "pooled")]
    out = {}
    for f, r in rows.groupby("fraction", sort=True):
        parts, ratio = [], 1.0
        for unit, n in r.groupby("calibration_unit", sort=True)["n_calibration"]:
            lo, hi = int(n.min()), int(n.max())
            parts.append(f"{lo} {unit}" if lo == hi else f"{lo} to {hi} {unit}")
            ratio = max(ratio, hi / max(lo, 1))
        out[f] = (" or ".join(parts), ratio if len(parts) == 1 else float("inf"))
    return out


def _size_note(sizes: dict) -> list[str]:
    """Say what a calibration fraction means when the recordings differ in length by
    more than :data:`SIZE_RATIO`: the verdict names fractions, the animals at one fraction
    then calibrate on very different amounts of data."""
    if all(ratio <= SIZE_RATIO for _, ratio in sizes.values()):
        return []
    each = ", ".join(f"{f:g} is {text}" for f, (text, _) in sizes.items())
    return [
        f"recordings differ in length, so a calibration fraction is not one calibration "
        f"size: {each} per recording (n_calibration in the scores table); the comparisons "
        "at one fraction mix small and large calibration sets"
    ]


def _shared_note(comparisons: pd.DataFrame, tie: float, level: float) -> list[str]:
    """Say where the pure shared read-out is worse than the per-animal ridge, by the rule
    of the verdict (:func:`_direction`, Bonferroni over the fractions tested): the other
    animals' axes alone do not capture the held-out animals' encoding, which is why
    pooling cannot help (no shared representation) or why the combined decoder needs
    more than the shared read-out (animal-specific components)."""
    rows = comparisons[(comparisons["method"] == "shared") & (comparisons["baseline"] == "ridge")]
    threshold, rule = _threshold(level, int(np.isfinite(rows["ttest_p"].to_numpy(float)).sum()))
    worse = [r for r in rows.itertuples() if _direction(r, tie, threshold) < 0]
    if not worse:
        return []
    at = ", ".join(
        f"{r.fraction:g} ({r.mean_diff:+.3f} R^2, {r.losses} losses / {r.wins} wins over "
        f"{r.n_animals} animals, paired t-test p = {r.ttest_p:.3g})"
        for r in worse
    )
    return [
        f"the pure shared read-out (the other animals' axes alone) is worse than the "
        f"per-animal ridge at calibration fraction(s) {at}, {rule}: the other animals' "
        "shared axes do not capture how the held-out animals encode behaviour (no shared "
        "representation, or animal-specific components); the combined decoder owes its "
        "score to what inner CV added to, or chose instead of, the shared read-out"
    ]


def _paired_tests(d: np.ndarray, level: float) -> tuple[float, float, str]:
    """Wilcoxon signed-rank and paired t-test p-values of the differences ``d`` (one per
    animal), with a note on their power; NaN p-values with fewer than MIN_ANIMALS.

    Differences of at most :data:`ROUNDING` are set to 0 first: two decoders that compute
    the same ridge differ by ~1e-16 with a sign left to rounding, which would otherwise
    give a "significant" Wilcoxon p (e.g. 2 / 2^6 = 0.031 with 6 animals) for no
    difference at all.
    """
    n = d.size
    d = np.where(np.abs(d) <= ROUNDING, 0.0, d)
    if n < MIN_ANIMALS:
        return (
            float("nan"),
            float("nan"),
            f"not testable: {n} animals (fewer than {MIN_ANIMALS}); the counts are a "
            "tendency, not evidence",
        )
    if np.all(d == 0):
        return 1.0, 1.0, "all differences are 0"
    w = float(stats.wilcoxon(d).pvalue)
    t = float(stats.ttest_rel(d, np.zeros(n)).pvalue) if np.ptp(d) > 0 else 0.0
    # the smallest two-sided Wilcoxon p with n animals (all signs equal): 2 / 2^n
    note = "paired tests over animals"
    if 2.0 / 2**n > level:
        note = (
            f"weak: with {n} animals the Wilcoxon test cannot go below {2.0 / 2**n:.3g} "
            f"(> {level})"
        )
    return w, t, note


def _comparison_table(animal: pd.DataFrame, tie: float, level: float) -> pd.DataFrame:
    pooled = animal[animal["feature"] == "pooled"]
    # unstack keeps the animals whose R^2 is NaN (pivot_table would drop them silently)
    wide = pooled.set_index(["fraction", "animal", "method"])["r2"].unstack("method")
    pairs = [("combined", "ridge"), ("shared", "ridge"), ("own", "ridge")]
    pairs += [("ridge", "constant"), ("combined", "constant")]
    rows = []
    for f in wide.index.get_level_values("fraction").unique():
        w = wide.xs(f, level="fraction")
        for method, baseline in pairs:
            if method not in w or baseline not in w:
                continue
            d = (w[method] - w[baseline]).to_numpy()
            ok = np.isfinite(d)
            d = d[ok]
            wp, tp, note = _paired_tests(d, level)
            rows.append(
                dict(
                    fraction=f,
                    method=method,
                    baseline=baseline,
                    n_animals=int(d.size),
                    n_animals_total=int(ok.size),
                    left_out=", ".join(map(str, w.index[~ok])),
                    wins=int(np.sum(d > tie)),
                    ties=int(np.sum(np.abs(d) <= tie)),
                    losses=int(np.sum(d < -tie)),
                    mean_diff=float(np.mean(d)) if d.size else float("nan"),
                    median_diff=float(np.median(d)) if d.size else float("nan"),
                    wilcoxon_p=wp,
                    ttest_p=tp,
                    test_note=note,
                )
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- reproducibility
def _axes_of(model, Xs, Ys, gs, idx):
    """``(axes, reason)``: the raw-unit shared axes ``V / behavior_scale`` (p, k) of a fit
    on entries ``idx`` and ``""``, or ``None`` and why that fit is impossible (e.g. the
    entries all have ``subject_weights`` 0, or their behaviour is constant)."""
    try:
        fit = _quiet_fit(
            _for_subjects(model, idx, len(Xs)),
            [Xs[i] for i in idx],
            [Ys[i] for i in idx],
            [gs[i] for i in idx],
        )
    except ValueError as exc:
        return None, str(exc)
    return fit.shared_axes_ / fit.behavior_scale_[:, None], ""


def _angles(A, B) -> tuple[float, float]:
    ang = np.degrees(linalg.subspace_angles(A, B))
    return float(np.max(ang)), float(np.mean(ang))


def _splits(names: list, n_splits: int, seed) -> list[tuple[list, list]]:
    """Up to ``n_splits`` distinct random splits of the animals into two halves."""
    rng = np.random.default_rng(seed)
    seen, out = set(), []
    for _ in range(20 * n_splits):
        perm = list(rng.permutation(len(names)))
        h = len(names) // 2
        first = sorted(names[i] for i in perm[:h])
        second = sorted(names[i] for i in perm[h:])
        key = frozenset([tuple(first), tuple(second)])
        if key not in seen:
            seen.add(key)
            out.append((first, second))
        if len(out) == n_splits:
            break
    return out


def _reproducibility_row(comparison: str, a: tuple, b: tuple, fits: dict) -> dict:
    """Angles between the fits of sides ``a`` and ``b`` (NaN when one was not fitted)."""
    (A, why_a), (B, why_b) = fits[a], fits[b]
    sides = ((a, A, why_a), (b, B, why_b))
    failed = [f"{'+'.join(map(str, s))} not fitted: {why}" for s, M, why in sides if M is None]
    mx, mean = _angles(A, B) if not failed else (float("nan"), float("nan"))
    return dict(
        comparison=comparison,
        first="+".join(map(str, a)),
        second="+".join(map(str, b)),
        k_first=A.shape[1] if A is not None else pd.NA,
        k_second=B.shape[1] if B is not None else pd.NA,
        max_angle_deg=mx,
        mean_angle_deg=mean,
        note="; ".join(failed),
    )


def _failed_fit_message(side: tuple, reason: str, entries: dict) -> str:
    which = "single-animal" if len(side) == 1 else "split-half"
    names = "+".join(map(str, side))
    recordings = [i for a in side for i in entries[a]]
    return (
        f"reproducibility: the {which} fit of animal(s) {names} (recordings {recordings}) "
        f"is impossible, so its principal angles are NaN: {reason}"
    )


def _reproducibility(model, Xs, Ys, gs, animals, n_splits, seed, n_jobs, progress):
    """Principal angles between split-half fits, and between single-animal fits.

    Returns ``(table, messages)``: a side whose fit is impossible gets NaN angles, a
    ``note`` in the table and a message saying why.
    """
    names = list(dict.fromkeys(animals))
    entries = {a: [i for i, x in enumerate(animals) if x == a] for a in names}
    splits = _splits(names, n_splits, seed)
    sides = [tuple(s) for split in splits for s in split] + [(a,) for a in names]
    sides = list(dict.fromkeys(sides))
    tasks = [
        delayed(_axes_of)(model, Xs, Ys, gs, [i for a in side for i in entries[a]])
        for side in sides
    ]
    fits = dict(
        zip(sides, _progress_map(tasks, n_jobs, progress, "reproducibility fits"), strict=True)
    )
    pairs = [("split-half", tuple(a), tuple(b)) for a, b in splits]
    pairs += [("single-animal", (a,), (b,)) for i, a in enumerate(names) for b in names[i + 1 :]]
    table = pd.DataFrame([_reproducibility_row(c, a, b, fits) for c, a, b in pairs])
    table = table.astype({"k_first": "Int64", "k_second": "Int64"})
    messages = [_failed_fit_message(s, why, entries) for s, (M, why) in fits.items() if M is None]
    return table, messages


# --------------------------------------------------------------------------- verdict
def _direction(row, tie: float, threshold: float) -> int:
    """+1 / -1 when the method beats / loses to its baseline at this fraction, else 0.

    Beats: a mean difference above ``tie``, more wins than losses and a paired t-test
    over animals with ``p < threshold``. Loses: the mirror image. Without a test (fewer
    than MIN_ANIMALS animals compared) it is always 0: the signs of 2 to 4 animals are
    not evidence (all of 2 animals win by chance a quarter of the time).
    """
    if not np.isfinite(row.ttest_p) or not row.ttest_p < threshold:
        return 0
    if row.mean_diff > tie and row.wins > row.losses:
        return 1
    if row.mean_diff < -tie and row.losses > row.wins:
        return -1
    return 0


def _evidence(row, rule: str = "") -> str:
    counts = (
        f"{row.wins} wins / {row.ties} ties / {row.losses} losses over {row.n_animals} animals"
    )
    total = getattr(row, "n_animals_total", row.n_animals)
    if total != row.n_animals:
        counts = counts.replace(" animals", f" of {total} animals (left out: {row.left_out})")
    if np.isfinite(row.ttest_p):
        rule = f" ({rule})" if rule else ""
        return (
            f"{counts}; paired t-test p = {row.ttest_p:.3g}{rule}, "
            f"Wilcoxon p = {row.wilcoxon_p:.3g}"
        )
    return f"{counts}; {row.test_note}"


def _threshold(level: float, n_tested: int) -> tuple[float, str]:
    """The Bonferroni threshold ``level / m`` over the ``n_tested`` fractions tested, and
    the words that say how it was set."""
    threshold = level / max(n_tested, 1)
    rule = f"threshold {threshold:.3g} = level {level:g}"
    if n_tested > 1:
        rule += f" / {n_tested} calibration fractions tested"
    return threshold, rule


def _by_fraction_note(main: pd.DataFrame, dirs: np.ndarray, sizes: dict) -> list[str]:
    """Where pooling helps, hurts, shows no clear difference or cannot be tested, by
    calibration fraction, when the fractions disagree: the verdict names one fraction,
    and "helps" at a small calibration size must not hide that the animal's own decoder
    is as good with more data. ``sizes`` (:func:`_calibration_sizes`) adds the sizes."""
    words = []
    for r, d in zip(main.itertuples(), dirs, strict=True):
        word = {1: "pooling helps", -1: "pooling hurts"}.get(int(d), "no clear difference")
        words.append("not testable" if not np.isfinite(r.ttest_p) else word)
    if len(set(words)) < 2 or not np.any(dirs != 0):
        return []
    order = ("pooling helps", "pooling hurts", "no clear difference", "not testable")
    parts = []
    for word in (w for w in order if w in words):
        at = [
            f"{r.fraction:g}" + (f" ({sizes[r.fraction][0]})" if r.fraction in sizes else "")
            for r, w in zip(main.itertuples(), words, strict=True)
            if w == word
        ]
        parts.append(f"{word} at {', '.join(at)}")
    return ["by calibration fraction: " + "; ".join(parts)]


def _verdict(comparisons: pd.DataFrame, summary: pd.DataFrame, cfg: dict) -> tuple[str, list]:
    """The one-line verdict (combined decoder vs per-animal ridge) and its notes.

    A fraction counts only when its paired t-test over animals can be run (at least
    MIN_ANIMALS animals compared), at the Bonferroni threshold ``level / m`` over the
    ``m`` fractions tested: the verdict takes the best of ``m`` tests, and at ``level``
    each it would pick a side by chance about ``m`` times too often. With no testable
    fraction the line says it cannot tell (unless ``k = p`` makes pooling neutral by
    construction).
    """
    tie, level = cfg["tie_tolerance"], cfg["level"]
    main = comparisons[
        (comparisons["method"] == "combined") & (comparisons["baseline"] == "ridge")
    ]
    n_tested = int(np.isfinite(main["ttest_p"].to_numpy(dtype=float)).sum())
    threshold, rule = _threshold(level, n_tested)
    dirs = np.array([_direction(r, tie, threshold) for r in main.itertuples()])
    by = [] if cfg["all_k_equal_p"] else _by_fraction_note(main, dirs, cfg.get("sizes", {}))
    notes = by + list(cfg["notes"])
    if np.any(dirs > 0) and not np.any(dirs < 0):
        word, pick = (
            "helps",
            main.iloc[int(np.argmax(np.where(dirs > 0, main["mean_diff"], -np.inf)))],
        )
    elif np.any(dirs < 0) and not np.any(dirs > 0):
        word, pick = (
            "hurts",
            main.iloc[int(np.argmin(np.where(dirs < 0, main["mean_diff"], np.inf)))],
        )
    elif np.any(dirs != 0):
        word = "is mixed (helps at some calibration sizes, hurts at others)"
        pick = main.iloc[int(np.argmax(np.abs(main["mean_diff"])))]
    else:
        word = "is neutral"
        pick = main.iloc[int(np.argmax(np.abs(main["mean_diff"])))]
    what = (
        f"{pick.mean_diff:+.3f} R^2 at calibration fraction {pick.fraction:g} (combined "
        f"decoder minus per-animal ridge, mean over animals; {_evidence(pick, rule)})"
    )
    if cfg["all_k_equal_p"]:
        line = (
            "pooling is neutral on these data by construction: the shared axes cannot help "
            f"a new animal here (see below); the largest mean difference, {what}, comes from "
            "penalty selection, not from sharing"
        )
    elif n_tested == 0:
        line = (
            "cannot tell whether pooling helps on these data: at most "
            f"{int(main['n_animals'].max())} animals were compared at any calibration "
            f"fraction, and a paired test over animals needs at least {MIN_ANIMALS}; the "
            f"largest mean difference is {what}"
        )
    elif word == "is neutral":
        line = (
            f"pooling is neutral on these data: no calibration fraction shows a clear "
            f"difference (tie tolerance {tie:g} R^2, paired t-test {rule}); the largest "
            f"mean difference is {what}"
        )
    else:
        line = f"pooling {word} on these data, by {what}"
    mean = summary.pivot_table(index="fraction", columns="method", values="mean_r2")
    if (mean["combined"] <= mean["constant"]).all() and (mean["ridge"] <= mean["constant"]).all():
        notes.append(
            "neither the combined decoder nor the per-animal ridge beats a constant "
            "prediction at any fraction: there is nothing to compare"
        )
    reason = "; ".join(notes)
    return (line + (f"; {reason}" if reason else "")), notes


def _fit_notes(ks: list[int], p: int, scores: pd.DataFrame, has_own: bool) -> list[str]:
    notes = []
    if any(k == p for k in ks):
        notes.append(
            f"the shared axes constrain nothing: n_shared equals the number of behaviour "
            f"features (k = p = {p}) in {sum(k == p for k in ks)} of {len(ks)} "
            "leave-one-animal-out fits, so a new animal's decoder is a per-animal ridge "
            "with another penalty"
        )
    chosen = scores[(scores["method"] == "combined") & (scores["feature"] == "pooled")]["decoder"]
    counts = chosen.value_counts()
    if len(counts):
        notes.append(
            "decoders chosen by inner CV: "
            + ", ".join(f"{name} {n}/{len(chosen)}" for name, n in counts.items())
        )
    if not has_own:
        notes.append("the model has no with_subject/through: combined = pure shared read-out")
    return notes


def _conclude(scores, animal, summary, comparisons, ks: list[int], p: int, left_out, cfg):
    """The verdict and its notes (:func:`_verdict`) from the tables, the ``n_shared`` of
    every leave-one-animal-out fit (``ks``) and the left-out messages; ``cfg`` holds
    ``tie_tolerance`` and ``level`` (and is completed here)."""
    tie, level = cfg["tie_tolerance"], cfg["level"]
    sizes = _calibration_sizes(scores)
    has_own = "own" in set(scores["method"])
    cfg = dict(
        cfg,
        all_k_equal_p=all(k == p for k in ks),
        sizes=sizes,
        notes=left_out
        + _loss_note(animal, tie)
        + _no_signal_note(animal)
        + _shared_note(comparisons, tie, level)
        + _size_note(sizes)
        + _fit_notes(ks, p, scores, has_own),
    )
    return _verdict(comparisons, summary, cfg)


# --------------------------------------------------------------------------- entry point
def _check_fractions(calibration_fractions) -> list[float]:
    try:
        fractions = [float(f) for f in np.atleast_1d(calibration_fractions)]
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"calibration_fractions must be numbers in (0, 1); got {calibration_fractions!r}"
        ) from exc
    if not fractions or not all(0.0 < f < 1.0 for f in fractions):
        raise ValueError(
            f"calibration_fractions must be numbers in (0, 1); got {calibration_fractions!r}"
        )
    return sorted(set(fractions))


def _as_labels(animals, n: int) -> list:
    """``animals`` as a list; a string, a scalar, a mapping, a set or a 2-D array is refused
    (a string would otherwise be split into its characters)."""
    one_d = getattr(animals, "ndim", 1) == 1
    if isinstance(animals, (str, bytes, Mapping, Set)) or not isinstance(animals, Iterable):
        one_d = False
    if not one_d:
        raise TypeError(
            f"animals must be a sequence (e.g. a list) with one label per entry of neural "
            f"({n}); got {type(animals).__name__} {reprlib.repr(animals)}"
        )
    labels = list(animals)
    if len(labels) != n:
        raise ValueError(
            f"animals must give one label per entry of neural ({n}); got {len(labels)}"
        )
    return labels


def _check_label_values(labels: list) -> None:
    """Refuse missing labels (None, NaN, pd.NA) and labels that differ only by case,
    spaces, the separators ``_ - .``, leading zeros or type (``"m1"``, ``"M1 "``,
    ``"m_1"``, ``"m01"``, ``1`` and ``"1"``; :func:`sharedrep.utils.validation.fold_subject`,
    the rule of the study file): either would silently change which recordings
    leave-one-animal-out holds out together (an animal split in two trains the fit that
    scores it)."""
    missing = [i for i, x in enumerate(labels) if pd.api.types.is_scalar(x) and pd.isna(x)]
    if missing:
        raise ValueError(
            f"animals: the labels of recordings {missing} are missing (None or NaN); give "
            "every recording the label of its animal"
        )
    by_key: dict = {}
    for x in dict.fromkeys(labels):
        by_key.setdefault(fold_subject(x), []).append(x)
    clashes = [" vs ".join(map(repr, v)) for v in by_key.values() if len(v) > 1]
    if clashes:
        raise ValueError(
            f"animals: the labels {'; '.join(clashes)} differ only by case, spaces, "
            "separators (_ - .), leading zeros or type, so they would be held out as "
            "different animals (and each would train the fit that scores the other); fix "
            "the labels so that each animal has exactly one"
        )


def _check_animals(animals, n: int) -> list:
    if animals is None:
        return list(range(n))
    animals = _as_labels(animals, n)
    _check_label_values(animals)
    if len(set(animals)) < 2:
        raise ValueError(
            f"evaluate holds out one animal at a time: need >= 2 animals; got {set(animals)}"
        )
    return animals


def _check_scalars(n_blocks, tie_tolerance, level, n_splits) -> None:
    if not isinstance(n_blocks, numbers.Integral) or isinstance(n_blocks, bool) or n_blocks < 2:
        raise ValueError(f"n_blocks must be an int >= 2; got {n_blocks!r}")
    if not (isinstance(tie_tolerance, numbers.Real) and tie_tolerance >= 0):
        raise ValueError(f"tie_tolerance must be a number >= 0; got {tie_tolerance!r}")
    if not (isinstance(level, numbers.Real) and 0 < level < 1):
        raise ValueError(f"level must be a number in (0, 1); got {level!r}")
    if not isinstance(n_splits, numbers.Integral) or isinstance(n_splits, bool) or n_splits < 0:
        raise ValueError(f"n_splits must be an int >= 0; got {n_splits!r}")


def evaluate(
    model,
    neural,
    behavior,
    groups=None,
    *,
    animals=None,
    calibration_fractions=(0.1, 0.2, 0.5),
    n_blocks: int = 10,
    behavior_names=None,
    ridge_alphas=None,
    tie_tolerance: float = TIE_TOLERANCE,
    level: float = 0.05,
    n_splits: int = 5,
    random_state=None,
    n_jobs: int = 1,
    progress: bool = True,
) -> Evaluation:
    """Does pooling animals help on these data? Leave-one-animal-out, side by side.

    For every animal ``a`` (the unit of inference):

    1. **Fit on the others.** ``clone(model)`` (cross-validated selection included) is
       fitted on every recording whose animal is not ``a``; the recordings of ``a`` never
       enter this fit (``folds`` records which recordings each fit used).
    2. **Interleaved blocks.** Each recording of ``a`` is cut into ``n_blocks``
       contiguous blocks (whole trials with trial ids); even blocks are the calibration
       pool, odd blocks the test set (:func:`interleaved_blocks`). Calibration fraction
       ``f`` takes ``round(f * n_blocks)`` pool blocks spread over the recording.
    3. **Four decoders, same calibration rows, same test rows**:
       ``"constant"`` (the calibration mean), ``"ridge"`` (the animal alone:
       :func:`sharedrep.inference.transfer.ridge_decoder`, same lags, penalty by inner CV
       over trial folds on the pooled squared error), ``"shared"`` (the pure shared
       read-out of :meth:`ShaReD.with_subject`, ``through="shared"``), ``"combined"``
       (the decoder the inner CV of ``with_subject`` chose, ``through="auto"``) and
       ``"own"`` (the model's own full-rank ridge of the animal, ``through="own"``).
    4. **Scores**: R^2 per feature and pooled over features (pooled-standardised units
       of the fit), on the test rows every decoder predicts; an animal with several
       recordings pools their sums of squares. A feature that does not vary on the test
       rows (:func:`sharedrep.inference.transfer.near_constant_features`: variance at most
       1e-6 of its pooled variance, or constant to rounding) has no R^2 there (NaN, with
       a warning; ``1 - SSE/SST`` would divide by noise and read e.g. -5e8); its sums of
       squares stay in the pooled R^2.

    Then, per fraction, every decoder against the per-animal ridge (and the decoders
    against the constant prediction): wins, ties (``|difference| <= tie_tolerance`` in
    pooled R^2) and losses over animals, and paired tests over animals (Wilcoxon
    signed-rank, paired t-test; run with at least 5 animals, marked weak when the
    Wilcoxon test cannot reach ``level``). An animal whose pooled R^2 is undefined at a
    fraction (its behaviour does not vary on its test rows) is left out there, with a
    warning and a note in the verdict; the counts say how many animals were compared of
    how many. **Reproducibility**: the animals are split into two random halves
    (``n_splits`` distinct splits), each half is fitted, and the principal angles between
    the halves' shared axes (raw behaviour units) are compared with those between fits of
    single animals (NaN, with a warning, where a fit is impossible).

    **Verdict** (combined decoder against the per-animal ridge). The decision rests on
    the paired t-test over held-out animals (the animals are the unit of inference), never
    on a point difference alone. Let ``m`` be the number of calibration fractions at which
    the test can be run (at least 5 animals compared). At such a fraction pooling *helps*
    when the mean difference over animals exceeds ``tie_tolerance``, wins outnumber
    losses and ``p < level / m`` (Bonferroni over the fractions: the verdict takes the
    best of ``m`` tests, so that it picks a side by chance at most at rate ``level``);
    *hurts* in the mirror case. "helps" when it helps at some fraction and hurts at none,
    "hurts" in the mirror case, "mixed" when both happen, "neutral" otherwise. With
    ``m = 0`` (fewer than 5 animals everywhere) the line says it **cannot tell** and gives
    the differences as a tendency only: with 2 animals, both win by chance a quarter of
    the time. Always "neutral by construction" when every fit has ``n_shared`` equal to
    the number of behaviour features (the shared axes then constrain nothing, and a
    difference comes from penalty selection). The line gives the largest difference, the
    counts, the p-values and the threshold they were held to, and the reasons: where the
    fractions disagree, which fractions help, hurt or show no clear difference, with
    their calibration sizes; ``k = p``; the animals on which pooling did worse than the
    animal alone, by more than ``tie_tolerance``; the animals on which no decoder
    explains any test variance (no decodable signal); the fractions at which the pure
    shared read-out is worse than the per-animal ridge by the same rule (the other
    animals' axes do not fit: no shared representation, or animal-specific
    components); recordings whose calibration sizes at one fraction differ by more than
    ``SIZE_RATIO``; the decoders chosen; no decoder beats the constant. In the
    paired tests, differences of at most 1e-10 R^2 (two decoders that are the same
    ridge) count as 0.

    Parameters
    ----------
    model : ShaReD
        Template (cloned; not modified).
    neural : list of ndarray (T_i, N_i)
        One entry per recording (session); recordings of one animal may have
        different units.
    behavior : list of ndarray (T_i, p)
    groups : list of ndarray (T_i,) or None
        Trial ids (blocks are then whole trials; lag windows never cross trials).
    animals : sequence or None
        Animal of each recording, one label per entry of ``neural`` (default: every
        recording is its own animal). Missing labels (None, NaN) and labels that differ
        only by case, spaces, separators, leading zeros or type (``"m1"``, ``"M1 "``,
        ``"m_1"``, ``"m01"``: one animal misspelt, as in the study file) are refused.
    calibration_fractions : sequence of float, default (0.1, 0.2, 0.5)
        Fractions of each recording used for calibration; at most the pool (half of
        the blocks).
    n_blocks : int, default 10
    behavior_names : sequence of str or None
        Feature names of the tables (default ``feature 0``, ...).
    ridge_alphas : array-like or None
        Scale-free grid of the per-animal ridge (default the ShaReD grid).
    tie_tolerance : float, default 0.01
        Pooled R^2 difference below which two decoders tie on an animal.
    level : float, default 0.05
        Significance level of the verdict, shared by the fractions tested: each fraction's
        paired t-test is held to ``level / m`` (``m`` fractions with at least 5 animals).
    n_splits : int, default 5
        Random split-half fits (0: no split-half check; single-animal fits still run).
    random_state : int, SeedSequence, Generator or None
        Seeds the split-half assignments (the fits are deterministic).
    n_jobs : int, default 1
        Parallel jobs over held-out animals.
    progress : bool, default True

    Returns
    -------
    Evaluation
        Tables, verdict and notes; ``.to_csv(folder)`` writes them.

    Raises
    ------
    TypeError
        ``animals`` is a string, a scalar, a mapping, a set or not one-dimensional.
    ValueError
        Invalid settings; ``animals`` of the wrong length, with missing labels, with
        labels that differ only by case, spaces, separators, leading zeros or type, or
        naming fewer than 2 animals.

    Warns
    -----
    UserWarning
        A calibration set with constant or near-constant behaviour features or a
        different behaviour range than its test set
        (:func:`sharedrep.inference.transfer.check_calibration`); behaviour features that
        do not vary on a recording's test rows (their per-feature R^2 is NaN);
        an animal left out of the summary and comparisons at a fraction because its
        pooled R^2 is undefined (no behaviour variance on its test rows; also in the
        verdict's notes); a reproducibility fit that is impossible (its angles are NaN).
    """
    _check_model(model)
    n_jobs = _check_n_jobs(n_jobs, model)
    fractions = _check_fractions(calibration_fractions)
    _check_scalars(n_blocks, tie_tolerance, level, n_splits)
    Xs, Ys, gs = _validate_data(model, neural, behavior, groups)
    animals = _check_animals(animals, len(Xs))
    p = Ys[0].shape[1]
    names = [f"feature {j}" for j in range(p)] if behavior_names is None else list(behavior_names)
    if len(names) != p:
        raise ValueError(f"behavior_names has {len(names)} names; behavior has {p} features")
    plans = [
        interleaved_blocks(
            X.shape[0], g, n_blocks, fractions, f"recording {i} (animal {animals[i]!r})"
        )
        for i, (X, g) in enumerate(zip(Xs, gs, strict=True))
    ]
    cv = model.get_params().get("cv")
    cfg = dict(fractions=fractions, names=names, ridge_alphas=ridge_alphas, n_folds=int(cv or 5))
    held = list(dict.fromkeys(animals))
    tasks = [delayed(_evaluate_animal)(model, Xs, Ys, gs, animals, a, plans, cfg) for a in held]
    results = _progress_map(tasks, n_jobs, progress, "held-out animals")
    scores = pd.DataFrame([row for r in results for row in r[0]])
    animal = _animal_table(scores)
    summary = _summary_table(animal)
    comparisons = _comparison_table(animal, tie_tolerance, level)
    left_out = _left_out_messages(scores)
    seed = _seed_sequence(random_state)
    repro, failed = _reproducibility(model, Xs, Ys, gs, animals, n_splits, seed, n_jobs, progress)
    caught = list(dict.fromkeys([m for r in results for m in r[3]] + left_out + failed))
    for message in caught:
        warnings.warn(message, UserWarning, stacklevel=2)
    cfg.update(tie_tolerance=float(tie_tolerance), level=float(level))
    ks = [r[2] for r in results]
    verdict, notes = _conclude(scores, animal, summary, comparisons, ks, p, left_out, cfg)
    settings = dict(
        calibration_fractions=fractions,
        n_blocks=int(n_blocks),
        tie_tolerance=float(tie_tolerance),
        level=float(level),
        n_splits=int(n_splits),
        animals=[str(a) for a in held],
        n_shared_per_fit={str(a): r[2] for a, r in zip(held, results, strict=True)},
        model=repr(model),
    )
    return Evaluation(
        scores=scores,
        animal_scores=animal,
        summary=summary,
        comparisons=comparisons,
        reproducibility=repro,
        folds=pd.DataFrame([row for r in results for row in r[1]]),
        verdict=verdict,
        notes=notes,
        warnings=caught,
        settings=settings,
    )
