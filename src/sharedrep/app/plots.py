"""Figures for fitted :class:`sharedrep.ShaReD` models.

Every function builds a :class:`matplotlib.figure.Figure` directly (no ``pyplot``), so
it works with any backend, headless (Agg) included, never opens a window and never
leaks figures into pyplot's global state. Pass ``ax`` to draw into an existing figure;
the function then returns that axes' figure. Save with ``fig.savefig(path)``. Part of
the ``app`` layer: may import every other layer.

New figures fit the report's column (at most ``MAX_WIDTH_IN`` inches wide, legends
inside the figure, no text below ``MIN_FONT_PT`` points) and take their colours from
the one colour-blind-safe palette of :mod:`sharedrep.study.figures` (Okabe & Ito).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sharedrep.study.figures import MAX_WIDTH_IN, MIN_FONT_PT, OKABE_ITO

__all__ = [
    "plot_axes",
    "plot_cv_scores",
    "plot_heldout_r2",
    "plot_calibration_curves",
    "align_axes",
]

_RECOVERED_COLOR = OKABE_ITO[4]
#: Colours of the shared dimensions (dimension j: entry j modulo the length).
_DIM_COLORS = (OKABE_ITO[4], OKABE_ITO[0], OKABE_ITO[2], OKABE_ITO[6], OKABE_ITO[1], OKABE_ITO[5])
_TRUE_COLOR = "black"


def _check_fitted(model) -> None:
    if not hasattr(model, "shared_axes_"):
        raise ValueError("the model is not fitted yet: call fit(neural, behavior) first")


def _cv_results(model) -> dict:
    _check_fitted(model)
    cvr = getattr(model, "cv_results_", None)
    if cvr is None:
        raise ValueError(
            "the model has no cross-validation results (it was fitted with cv=None); "
            "refit with cv=<number of folds>"
        )
    return cvr


def _new_figure(n_rows: int = 1, n_cols: int = 1, figsize=None, **kwargs):
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, **kwargs)
    return fig, axes.ravel()


def align_axes(reference: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotate a basis of the target subspace to best match the reference columns.

    Solves the orthogonal Procrustes problem ``min_R ||Q R - reference||_F`` over
    orthogonal ``R``, where ``Q`` is an orthonormal basis of ``span(target)``. Use it
    to compare recovered axes with ground truth that is defined only up to a rotation.

    Parameters
    ----------
    reference : ndarray, shape (p, k)
        Columns to match (e.g. recovered axes normalised to unit length).
    target : ndarray, shape (p, k)
        Columns spanning the subspace to rotate (e.g. the true shared axes).

    Returns
    -------
    aligned : ndarray, shape (p, k)
        ``Q R``: orthonormal columns spanning ``span(target)``, matched column by column
        to ``reference``.

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    reference = np.asarray(reference, dtype=float)
    target = np.asarray(target, dtype=float)
    if reference.ndim != 2 or reference.shape != target.shape:
        raise ValueError(
            f"reference and target must both have shape (p, k); got {reference.shape} "
            f"and {target.shape}"
        )
    q, _ = np.linalg.qr(target)
    u, _, vt = np.linalg.svd(q.T @ reference)
    return q @ (u @ vt)


def plot_axes(
    model,
    true_axes: np.ndarray | None = None,
    feature_names: Sequence[str] | None = None,
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure:
    """Loadings of the shared axes on the behaviour features, optionally against truth.

    One panel per shared dimension ``j``: bars show column ``j`` of
    ``model.shared_axes_`` scaled to unit length (the direction in pooled-standardised
    behaviour space). When ``true_axes`` is given, it is first rotated onto the
    recovered directions (:func:`align_axes`; the truth is a subspace, defined only up
    to rotation) and drawn as markers. The panel title gives the principal angle between
    the two subspaces.

    Parameters
    ----------
    model : ShaReD
        A fitted model (``shared_axes_`` of shape ``(p, k)``).
    true_axes : ndarray, shape (p, k_true), optional
        Ground-truth axes (e.g. ``SimulatedData.shared_axes``). Drawn only when
        ``k_true == k``; the largest principal angle is shown in any case.
    feature_names : sequence of str, length p, optional
        Tick labels of the behaviour features (default: the model's
        ``behavior_names_in_`` when it was fitted on DataFrames, else ``"0" .. "p-1"``).
    ax : Axes or sequence of k Axes, optional
        Where to draw (one axes per dimension; a single Axes is accepted when
        ``k == 1``). By default a new figure with ``k`` stacked panels is created.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure holding the panels. Each panel has one bar container (recovered
        loadings), a zero line and, with ``true_axes``, one marker line (truth).

    Raises
    ------
    ValueError
        If the model is not fitted, or ``true_axes``, ``feature_names`` or ``ax`` have
        the wrong size.
    """
    from scipy.linalg import subspace_angles

    _check_fitted(model)
    V = np.asarray(model.shared_axes_, dtype=float)
    p, k = V.shape
    if feature_names is None:
        feature_names = getattr(model, "behavior_names_in_", None)
    if feature_names is None:
        feature_names = [str(j) for j in range(p)]
    feature_names = list(feature_names)
    if len(feature_names) != p:
        raise ValueError(f"feature_names has {len(feature_names)} names; the model has {p}")
    Vn = V / np.linalg.norm(V, axis=0, keepdims=True)
    truth = None
    angles = None
    if true_axes is not None:
        true_axes = np.asarray(true_axes, dtype=float)
        if true_axes.ndim != 2 or true_axes.shape[0] != p:
            raise ValueError(
                f"true_axes must have shape ({p}, k_true) (one row per behaviour feature); "
                f"got {true_axes.shape}"
            )
        angles = np.degrees(subspace_angles(V, true_axes))
        if true_axes.shape[1] == k:
            truth = align_axes(Vn, true_axes)

    if ax is None:
        width = min(MAX_WIDTH_IN, max(5.0, 0.4 * p + 2))
        fig, axs = _new_figure(k, 1, figsize=(width, 2.2 * k + 0.8), sharex=True)
    else:
        axs = [ax] if isinstance(ax, Axes) else list(ax)
        if len(axs) != k:
            raise ValueError(f"ax must hold {k} axes (one per shared dimension); got {len(axs)}")
        fig = axs[0].figure

    x = np.arange(p)
    for j, a in enumerate(axs):
        a.bar(x, Vn[:, j], color=_RECOVERED_COLOR, alpha=0.8, label="recovered")
        a.axhline(0.0, color="0.5", lw=0.8)
        if truth is not None:
            a.plot(x, truth[:, j], ls="none", marker="o", color=_TRUE_COLOR, ms=5, label="true")
        a.set_ylabel(f"dim {j + 1}")
        a.set_ylim(-1.05, 1.05)
        # matplotlib (3.11) refuses ha=None: pass the alignment only when rotating
        slanted = {"rotation": 45, "ha": "right"} if p > 8 else {}
        a.set_xticks(x, feature_names, **slanted)
    # the key is in the title (a legend beside the panels would widen the figure)
    title = "Shared axes: loadings on behaviour features (bars: recovered, unit length"
    title += "; dots: true)" if truth is not None else ")"
    if angles is not None:
        title += f"\nlargest principal angle to the true axes: {angles.max():.1f} deg"
    axs[0].set_title(title, fontsize="medium", loc="left")
    axs[-1].set_xlabel("behaviour feature")
    return fig


def plot_cv_scores(model, ax: Axes | None = None) -> Figure:
    """Cross-validated selection score against the ridge parameter, one line per ``k``.

    The score is ``cv_results_["mean_score"]`` (see
    :func:`sharedrep.core.solver.cv_criterion`: for ``k`` dimensions, the held-out behaviour
    variance explained in the model's metric, summed over the first ``k`` dimensions),
    with a band of one standard error across folds. The selected ``(alpha, k)`` is
    marked.

    Parameters
    ----------
    model : ShaReD
        A model fitted with cross-validation (``cv_results_`` not None).
    ax : Axes, optional
        Where to draw; by default a new figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One line per ``k`` in ``cv_results_["n_shared"]``, one marker line for the
        selection and a vertical line at ``alpha_``.

    Raises
    ------
    ValueError
        If the model is not fitted or has no cross-validation results.
    """
    cvr = _cv_results(model)
    alphas = np.asarray(cvr["alphas"], dtype=float)
    ks = np.asarray(cvr["n_shared"])
    mean = np.asarray(cvr["mean_score"], dtype=float)
    se = np.asarray(cvr["se_score"], dtype=float)
    if ax is None:
        fig, (ax,) = _new_figure(figsize=(MAX_WIDTH_IN, 4.2))
    else:
        fig = ax.figure
    cmap = _colormap("viridis")
    for j, kk in enumerate(ks):
        color = cmap(j / max(len(ks) - 1, 1))
        ax.plot(alphas, mean[:, j], color=color, marker=".", label=f"k={int(kk)}")
        ax.fill_between(
            alphas, mean[:, j] - se[:, j], mean[:, j] + se[:, j], color=color, alpha=0.15, lw=0
        )
    i_alpha, k_sel = cvr["best_index"]
    ax.plot(
        [alphas[int(i_alpha)]],
        [mean[int(i_alpha), int(k_sel) - 1]],
        ls="none",
        marker="*",
        ms=14,
        color="tab:red",
        label=f"selected (k={int(k_sel)})",
    )
    ax.axvline(float(model.alpha_), color="tab:red", lw=0.8, ls="--")
    if alphas.size > 1:
        ax.set_xscale("log")
    ax.set_xlabel("ridge parameter alpha")
    ax.set_ylabel("CV score (held-out variance explained, summed over k)")
    ax.set_title(
        f"Model selection: alpha = {model.alpha_:.3g}, k = {model.n_shared_}", fontsize="medium"
    )
    ax.legend(fontsize=MIN_FONT_PT, title_fontsize=MIN_FONT_PT, frameon=False, loc="best")
    return fig


def plot_heldout_r2(
    model,
    ax: Axes | None = None,
    subject_names: Sequence[str] | None = None,
    extra: Mapping[str, Sequence[float]] | None = None,
) -> Figure:
    """Held-out ``R^2`` of each shared latent predicted from each subject's activity.

    Bars give ``cv_results_["r2_subject_dim"]`` at the selected alpha for the selected
    ``k`` dimensions: the cross-validated R^2 of ``z_s = Y_s V`` predicted by
    ``X~_s A_s``, per subject (groups) and dimension (colours).

    Parameters
    ----------
    model : ShaReD
        A model fitted with cross-validation.
    ax : Axes, optional
        Where to draw; by default a new figure.
    subject_names : sequence of str, optional
        Labels of the fitted subjects (default ``"0" .. "S-1"``).
    extra : mapping of str to sequence of k floats, optional
        Additional groups drawn after the fitted subjects with hatched bars, e.g.
        ``{"new subject (test)": r2}`` for a subject added with
        :meth:`~sharedrep.ShaReD.add_subject` and scored on its own held-out samples.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``k`` bar containers of ``S + len(extra)`` bars each, and a zero line.

    Raises
    ------
    ValueError
        If the model is not fitted or has no cross-validation results, or the names or
        extra values have the wrong length.
    """
    cvr = _cv_results(model)
    i_alpha, k = (int(i) for i in cvr["best_index"])
    r2 = np.asarray(cvr["r2_subject_dim"], dtype=float)[i_alpha, :, :k]  # (S, k)
    S = r2.shape[0]
    names = [str(s) for s in range(S)] if subject_names is None else list(subject_names)
    if len(names) != S:
        raise ValueError(f"subject_names has {len(names)} names; the model was fitted on {S}")
    extra = dict(extra or {})
    for label, vals in extra.items():
        if np.shape(vals) != (k,):
            raise ValueError(f"extra[{label!r}] must hold {k} values (one per dimension)")
    rows = np.vstack([r2, *(np.asarray(v, dtype=float)[None] for v in extra.values())])
    labels = names + list(extra)
    n = rows.shape[0]
    if ax is None:
        width_in = min(MAX_WIDTH_IN, max(5.0, 0.55 * n * max(k, 1) ** 0.5 + 2))
        fig, (ax,) = _new_figure(figsize=(width_in, 4.0))
    else:
        fig = ax.figure
    x = np.arange(n)
    width = 0.8 / k
    for j in range(k):
        bars = ax.bar(
            x + (j - (k - 1) / 2) * width,
            rows[:, j],
            width=width,
            color=_DIM_COLORS[j % len(_DIM_COLORS)],
            label=f"dim {j + 1}",
        )
        for b in bars.patches[S:]:
            b.set_hatch("//")
            b.set_edgecolor("white")
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_xticks(
        x, labels, rotation=30 if n > 8 or extra else 0, ha="right" if n > 8 or extra else "center"
    )
    ax.set_xlabel("subject")
    ax.set_ylabel("held-out R$^2$ of shared latent")
    finite = rows[np.isfinite(rows)]
    if finite.size:
        ax.set_ylim(min(0.0, float(finite.min()) - 0.05), max(1.0, float(finite.max()) + 0.05))
    ax.set_title(
        f"Held-out R$^2$ per subject (CV, alpha = {model.alpha_:.3g})",
        fontsize="medium",
        loc="left",
    )
    ax.legend(
        fontsize=MIN_FONT_PT,
        frameon=False,
        ncol=min(k, 4),
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
    )
    return fig


#: Colours and line styles of the decoders of :func:`sharedrep.inference.evaluate.evaluate`.
_METHOD_STYLE = {
    "constant": ("0.45", "--"),
    "ridge": ("tab:orange", "-"),
    "shared": ("tab:blue", "-"),
    "combined": ("tab:green", "-"),
    "own": ("tab:purple", ":"),
}


def plot_calibration_curves(
    evaluation, ax: Axes | None = None, methods: Sequence[str] | None = None
) -> Figure:
    """Calibration curves of :func:`sharedrep.inference.evaluate.evaluate`.

    Pooled held-out R^2 of every decoder against the calibration fraction: one thin line
    per held-out animal and a thick line for the mean over animals, per decoder; the
    constant prediction (the calibration mean) is drawn dashed, as the floor any decoder
    must clear.

    Parameters
    ----------
    evaluation : Evaluation or pandas.DataFrame
        The result, or its ``animal_scores`` table (columns ``animal``, ``fraction``,
        ``method``, ``feature``, ``r2``; e.g. read back from ``animal_scores.csv``).
    ax : Axes, optional
        Where to draw; by default a new figure.
    methods : sequence of str, optional
        Decoders to draw (default those present among constant, ridge, shared, combined).

    Returns
    -------
    fig : matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If the table lacks a column or holds none of the requested decoders.
    """
    table = getattr(evaluation, "animal_scores", evaluation)
    need = {"animal", "fraction", "method", "feature", "r2"}
    if not need <= set(table.columns):
        raise ValueError(f"the table needs the columns {sorted(need)}; got {list(table.columns)}")
    pooled = table[table["feature"].astype(str) == "pooled"]
    present = list(dict.fromkeys(pooled["method"]))
    if methods is None:
        methods = [m for m in ("constant", "ridge", "shared", "combined") if m in present]
    methods = [m for m in methods if m in present]
    if not methods:
        raise ValueError(f"no requested decoder in the table (it holds {present})")
    if ax is None:
        fig, (ax,) = _new_figure(figsize=(6.0, 4.2))
    else:
        fig = ax.figure
    for method in methods:
        color, style = _METHOD_STYLE.get(method, ("black", "-"))
        wide = pooled[pooled["method"] == method].pivot_table(
            index="fraction", columns="animal", values="r2"
        )
        for animal in wide.columns:
            ax.plot(wide.index, wide[animal], color=color, ls=style, lw=0.8, alpha=0.35)
        ax.plot(
            wide.index, wide.mean(axis=1), color=color, ls=style, lw=2.6, marker="o", label=method
        )
    ax.axhline(0.0, color="0.7", lw=0.6)
    ax.set_xlabel("calibration fraction of the held-out recording")
    ax.set_ylabel("held-out R$^2$ (all behaviour features)")
    ax.set_title(
        "Leave-one-animal-out: thin = one animal, thick = mean", fontsize="medium", loc="left"
    )
    ax.legend(fontsize="small", frameon=False)
    return fig


def _colormap(name: str):
    from matplotlib import colormaps

    return colormaps[name]
