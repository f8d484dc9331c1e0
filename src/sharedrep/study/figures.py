"""Figures of the learning-study analyses: each takes an analysis' tables and returns a
matplotlib Figure; no computation. This module may import ``sharedrep.utils`` and
``sharedrep.study._common`` (figure helpers only); it draws what the analyses' compute
steps returned.

Every figure is laid out for the report's column: at most :data:`MAX_WIDTH_IN` inches
wide (multi-panel figures wrap onto several rows), with no text smaller than
:data:`MIN_FONT_PT` points, so that the PNG is shown at its own size (or larger) and its
labels stay legible on screen and in print. Colours come from one colour-blind-safe
palette (Okabe & Ito): :func:`stage_color` for learning stages and
:func:`population_color` for populations, the same in every figure.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sharedrep.study._common import empty_figure, nanmean_rows, new_figure, ordered_stages

#: Widest figure (inches): the report shows figures in a column of about 1000 px.
MAX_WIDTH_IN = 6.9
#: Smallest font size (points) of any text in a figure.
MIN_FONT_PT = 9

#: The Okabe & Ito colour-blind-safe palette (orange, sky blue, bluish green, yellow,
#: blue, vermillion, reddish purple, black).
OKABE_ITO = (
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#000000",
)
#: Colours of the learning stages (other stages: :func:`stage_color`).
STAGE_COLORS = {"novice": "#56B4E9", "intermediate": "#009E73", "expert": "#D55E00"}
#: Colours of the populations of the learning study (others: :func:`population_color`).
POPULATION_COLORS = {"thalamus": "#0072B2", "other_input": "#E69F00", "m1": "#CC79A7"}
#: Neutral colour of "other" / comparison elements (individual mice, other units).
NEUTRAL = "#7f7f7f"
_SPARE = ("#0072B2", "#E69F00", "#CC79A7", "#009E73", "#56B4E9", "#D55E00", "#000000")


def _stable_pick(name: str, used: dict) -> str:
    """A palette colour for a name outside the fixed tables, the same in every figure."""
    free = [c for c in _SPARE if c not in used.values()] or list(_SPARE)
    return free[zlib.crc32(str(name).encode()) % len(free)]


def stage_color(stage: str) -> str:
    """The colour of a learning stage (the same in every figure)."""
    return STAGE_COLORS.get(stage) or _stable_pick(stage, STAGE_COLORS)


def population_color(population: str) -> str:
    """The colour of a population (the same in every figure)."""
    return POPULATION_COLORS.get(population) or _stable_pick(population, POPULATION_COLORS)


def _grid(n_panels: int, max_cols: int, height: float, *, sharey: bool = False):
    """A figure with ``n_panels`` panels on rows of at most ``max_cols``, fitting the
    column width; unused slots are removed. Returns ``(fig, list of axes)``."""
    n_cols = max(1, min(n_panels, max_cols))
    n_rows = max(1, math.ceil(n_panels / n_cols))
    fig, axes = new_figure(n_rows, n_cols, width=min(4.6, MAX_WIDTH_IN / n_cols), height=height)
    flat = list(axes.ravel())
    for ax in flat[n_panels:]:
        ax.remove()
    flat = flat[:n_panels]
    if sharey and len(flat) > 1:
        for i, ax in enumerate(flat[1:], start=1):
            ax.sharey(flat[0])
            ax.tick_params(labelleft=i % n_cols == 0)
    return fig, flat


# --------------------------------------------------------------------------- representation
def _latent_curves(trajectories: pd.DataFrame, key: tuple) -> tuple[np.ndarray, dict]:
    """Times and ``{subject: latent 1 over time}`` of one cell of the trajectories table."""
    sub = trajectories[
        (trajectories["population"] == key[0])
        & (trajectories["stage"] == key[1])
        & (trajectories["dimension"] == 1)
    ]
    curves = {subj: g["latent"].to_numpy(float) for subj, g in sub.groupby("subject", sort=False)}
    times = sub["time_s"].to_numpy(float)[: len(next(iter(curves.values())))] if curves else None
    return times, curves


def _draw_loadings(top, sub: pd.DataFrame, names: list, first: bool, color: str) -> None:
    """Loadings of one cell: bars (one dimension) or a heat map (features x dimensions)."""
    k = int(sub["dimension"].max())
    if k == 1:
        vals = sub.set_index("feature").loc[names, "loading"].to_numpy()
        top.barh(range(len(names)), vals, color=color)
        top.axvline(0, color="0.5", lw=0.5)
        top.set_xlabel("loading (dim. 1)")
    else:
        grid = sub.pivot(index="feature", columns="dimension", values="loading").loc[names]
        lim = float(np.nanmax(np.abs(grid.to_numpy()))) or 1.0
        top.imshow(grid.to_numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        top.set_xticks(range(k), [str(d) for d in range(1, k + 1)])
        top.set_xlabel("shared dimension")
    top.set_yticks(range(len(names)), names if first else [""] * len(names), fontsize=MIN_FONT_PT)
    if k == 1:
        top.invert_yaxis()


def _draw_latents(bottom, times, curves: dict, first: bool, color: str) -> None:
    """Latent 1 around movement onset: one thin line per mouse and their mean (thick)."""
    for subj, v in curves.items():
        bottom.plot(times, v, lw=0.8, alpha=0.45, color=color, label=subj)
    if curves:
        mean = nanmean_rows(np.stack(list(curves.values())), axis=0)
        bottom.plot(times, mean, color=color, lw=2.4, label="mean")
    bottom.axvline(0, color="0.4", lw=0.8, ls="--")
    bottom.axhline(0, color="0.6", lw=0.5)
    bottom.set_xlabel("time from movement onset (s)")
    if first:
        bottom.set_ylabel("shared latent 1")


def _representation_axes(fig: Figure, keys: list, stages: list, populations: list):
    """Axes of the shared-representation figure: one column per stage; per population a
    row of loadings above a row of latents. Returns ``(loading axes, latent axes)`` in
    the order of ``keys`` (all loading axes are created first)."""
    grid = fig.add_gridspec(2 * len(populations), len(stages))
    pos = {key: (2 * populations.index(key[0]), stages.index(key[1])) for key in keys}
    top = [fig.add_subplot(grid[pos[k][0], pos[k][1]]) for k in keys]
    bottom = [fig.add_subplot(grid[pos[k][0] + 1, pos[k][1]]) for k in keys]
    return top, bottom


def plot_shared_representation(
    loadings: pd.DataFrame, trajectories: pd.DataFrame, reference: tuple
) -> Figure:
    """Per population x stage: the loadings of the shared axis above latent 1 around
    movement onset; one column per stage, one pair of rows per population.

    Parameters
    ----------
    loadings : pandas.DataFrame
        ``table`` of :func:`~sharedrep.study.shared_representation` (``population``,
        ``stage``, ``dimension``, ``feature``, ``loading``).
    trajectories : pandas.DataFrame
        Its ``tables["trajectories"]`` (``time_s`` in seconds from movement onset).
    reference : (str, str)
        ``(population, stage)`` of the reference cell (its features order the rows).

    Returns
    -------
    matplotlib.figure.Figure
        ``2 x cells`` axes: first the loading panels (titled ``"population / stage"``),
        then the latent panels, both in the order of the cells in ``loadings``.
    """
    keys = list(dict.fromkeys(zip(loadings["population"], loadings["stage"], strict=True)))
    ref = loadings[(loadings["population"] == reference[0]) & (loadings["stage"] == reference[1])]
    names = list(ref.loc[ref["dimension"] == 1, "feature"])
    populations = list(dict.fromkeys(k[0] for k in keys))
    stages = list(dict.fromkeys(k[1] for k in keys))  # the cells' (learning) order
    row_h = 0.32 * max(len(names), 3) + 0.9
    fig = Figure(
        figsize=(MAX_WIDTH_IN, len(populations) * (row_h + 2.0) + 0.5), layout="constrained"
    )
    top, bottom = _representation_axes(fig, keys, stages, populations)
    all_curves = []
    for c, key in enumerate(keys):
        color = stage_color(key[1])
        sub = loadings[(loadings["population"] == key[0]) & (loadings["stage"] == key[1])]
        first = stages.index(key[1]) == 0
        _draw_loadings(top[c], sub, names, first, color)
        title = f"{key[0]} / {key[1]}" + (" (ref.)" if key == tuple(reference) else "")
        top[c].set_title(title, fontsize=10, color=population_color(key[0]))
        times, curves = _latent_curves(trajectories, key)
        _draw_latents(bottom[c], times, curves, first, color)
        all_curves += list(curves.values())
    _share_limits(top, bottom, loadings, all_curves)
    fig.suptitle(
        "Shared axis loadings (signs aligned to the reference cell) and latent 1\n"
        "around movement onset (thin: one mouse; thick: mean over mice)",
        fontsize=10,
    )
    return fig


def _share_limits(top: list, bottom: list, loadings: pd.DataFrame, curves: list) -> None:
    """Common x-limits of the loading bars and y-limits of the latent panels."""
    lim = float(np.nanmax(np.abs(loadings["loading"].to_numpy()))) if len(loadings) else 0.0
    values = np.concatenate(curves) if curves else np.zeros(0)
    values = values[np.isfinite(values)]
    for a_top, a_bot in zip(top, bottom, strict=True):
        if lim > 0 and not a_top.images:
            a_top.set_xlim(-1.1 * lim, 1.1 * lim)
        if values.size:
            pad = 0.05 * (values.max() - values.min() or 1.0)
            a_bot.set_ylim(values.min() - pad, values.max() + pad)


# ------------------------------------------------------------------ encoding_by_population
def _encoding_bar(ax, x: float, width: float, row, scores: pd.Series, color, label) -> None:
    """One cell's bar: score, bootstrap interval, permutation-null 95% line, mice, star."""
    ax.bar(x, row["score"], width * 0.9, color=color, label=label)
    ax.errorbar(
        x,
        row["score"],
        yerr=[
            [max(0.0, row["score"] - row["ci_low"])],
            [max(0.0, row["ci_high"] - row["score"])],
        ],
        color="k",
        capsize=2,
        lw=1,
    )
    ax.plot([x - width * 0.4, x + width * 0.4], [row["null_q95"]] * 2, color="0.3", ls=":")
    ax.plot(np.full(len(scores), x), scores, ".", color="0.2", ms=3)
    stars = "*" if row["p_value"] <= 0.05 else ""
    ax.text(x, max(row["ci_high"], row["score"]) + 0.02, stars, ha="center", fontsize=11)


def plot_encoding_by_population(
    table: pd.DataFrame, subjects: pd.DataFrame, populations: list, stages: list
) -> Figure:
    """Bars of held-out R^2 per population (groups) and stage (colours).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per cell (``population``, ``stage``, ``score``, ``ci_low``, ``ci_high``,
        ``null_q95``, ``p_value``), as returned by ``encoding_by_population``.
    subjects : pandas.DataFrame
        Per-mouse held-out R^2 (``population``, ``stage``, ``score``), drawn as dots.
    populations, stages : list of str
        Order of the groups on the x axis and of the bars within a group.

    Returns
    -------
    matplotlib.figure.Figure
    """
    pops, stg = populations, stages
    width_in = min(MAX_WIDTH_IN, max(4.0, 1.1 * len(pops) * len(stg)))
    fig, axes = new_figure(1, 1, width=width_in, height=3.4)
    ax = axes[0, 0]
    width = 0.8 / len(stg)
    for k, st in enumerate(stg):
        for i, pop in enumerate(pops):
            r = table[(table["population"] == pop) & (table["stage"] == st)]
            if r.empty:
                continue
            x = i + (k - (len(stg) - 1) / 2) * width
            s = subjects[(subjects["population"] == pop) & (subjects["stage"] == st)]
            color = stage_color(st)
            _encoding_bar(ax, x, width, r.iloc[0], s["score"], color, st if i == 0 else None)
    ax.set_xticks(range(len(pops)), pops)
    for label in ax.get_xticklabels():
        label.set_color(population_color(label.get_text()))
    ax.set_ylabel("held-out R$^2$ (shared dim. 1)")
    ax.axhline(0, color="0.5", lw=0.5)
    ax.legend(frameon=False, fontsize=MIN_FONT_PT)
    ax.set_title(
        "Encoding of the shared movement representation\n(bars: bootstrap CI over mice; "
        "dots: mice; dotted: 95% of the permutation null; *: p <= 0.05)",
        fontsize=MIN_FONT_PT,
    )
    return fig


# --------------------------------------------------------------------------- activation
def plot_selective_activation(
    selectivity: pd.DataFrame, populations: list, stages: list, *, window, event: str
) -> Figure:
    """Activity of encoding (red) and other (grey) units across stages, one panel per population.

    Parameters
    ----------
    selectivity : pandas.DataFrame
        ``tables["selectivity"]`` of :func:`~sharedrep.study.selective_activation`
        (``subject``, ``population``, ``stage``, ``encoding``, ``other``; neural units).
    populations, stages : list of str
        Panels, and stages along the x-axis (learning order).
    window : (float, float)
        Seconds after ``event`` averaged (for the axis label).
    event : str
        Trials column the window is relative to.

    Returns
    -------
    matplotlib.figure.Figure
        Thin lines: mice; thick lines with markers: mean over mice.
    """
    fig, axes = _grid(max(1, len(populations)), 2, 3.0)
    for ax, pop in zip(axes, populations, strict=False):
        w = selectivity[selectivity["population"] == pop]
        for grp, col in (("encoding", "k"), ("other", NEUTRAL)):
            means = [w.loc[w["stage"] == st, grp].mean() for st in stages]
            for m in w["subject"].unique():
                wm = w[w["subject"] == m].set_index("stage")
                values = [wm[grp].get(st, np.nan) for st in stages]
                ax.plot(range(len(stages)), values, color=col, alpha=0.3, lw=0.8)
            ax.plot(range(len(stages)), means, color=col, lw=2, marker="o", label=grp)
        ax.set_xticks(range(len(stages)), stages)
        ax.set_ylabel(f"mean activity {window[0]:g}..{window[1]:g} s\nafter {event}")
        ax.set_title(pop, fontsize=10, color=population_color(pop))
        ax.legend(frameon=False, fontsize=MIN_FONT_PT)
    return fig


# --------------------------------------------------------------------------- behaviour
def plot_learning_curves(table: pd.DataFrame, metrics) -> Figure:
    """Learning curves: one panel per metric, mice in grey, mean +- s.e.m. over mice in black.

    Parameters
    ----------
    table : pandas.DataFrame
        ``table`` of :func:`~sharedrep.study.learning_curves` (one row per mouse x day).
    metrics : sequence of (str, str, str)
        ``(column, unit, label)`` per panel (:data:`sharedrep.study.behavior.METRICS`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    mice = list(dict.fromkeys(table["subject"]))
    fig, axes = _grid(len(metrics), 2, 2.6)
    for ax, (col, unit, label) in zip(axes, metrics, strict=True):
        for m in mice:
            dm = table[table["subject"] == m]
            ax.plot(dm["day"], dm[col], color="0.75", lw=0.8, marker=".", ms=3)
        g = table.groupby("day")[col]
        mean = g.mean()
        sem = g.std(ddof=1) / np.sqrt(g.count())
        ax.errorbar(mean.index, mean.to_numpy(), yerr=sem.to_numpy(), color="k", lw=1.6, capsize=2)
        ax.set_xlabel("day")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"{label} ({unit})")
    fig.suptitle(f"Learning curves ({len(mice)} mice; mean +- s.e.m., grey: mice)", fontsize=10)
    return fig


# ------------------------------------------------------------------ lag_profiles
def _sem_columns(per: np.ndarray) -> np.ndarray:
    """Standard error of the mean of each column over its finite rows (NaN below 2)."""
    return np.array(
        [
            np.std(c[np.isfinite(c)], ddof=1) / np.sqrt(np.isfinite(c).sum())
            if np.isfinite(c).sum() > 1
            else np.nan
            for c in per.T
        ]
    )


def plot_lag_profiles(
    table: pd.DataFrame, peaks: pd.DataFrame, populations: list, stages: list
) -> Figure:
    """Mean +- s.e.m. (over mice) held-out R^2 against lag; one panel per population.

    Parameters
    ----------
    table : pandas.DataFrame
        Per-mouse scores (``population``, ``stage``, ``lag`` (frames), ``subject``,
        ``score``), ordered mouse by mouse and lag by lag within a cell, as returned by
        ``lag_profiles``.
    peaks : pandas.DataFrame
        ``population``, ``stage``, ``peak_lag`` (frames): dotted vertical lines.
    populations, stages : list of str
        Panels, and curves within a panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    lags = np.array(sorted(table["lag"].unique()), dtype=np.int64)
    fig, axes = _grid(len(populations), 3, 2.9, sharey=True)
    styles = {st: stage_color(st) for st in stages}
    for i, (ax, pop) in enumerate(zip(axes, populations, strict=True)):
        for st in stages:
            cell = table[(table["population"] == pop) & (table["stage"] == st)]
            if cell.empty:
                continue
            per = cell["score"].to_numpy(dtype=float).reshape(-1, lags.size)
            mean, sem = nanmean_rows(per, axis=0), _sem_columns(per)
            ax.plot(lags, mean, color=styles.get(st, "k"), label=st, marker=".")
            ax.fill_between(lags, mean - sem, mean + sem, color=styles.get(st, "k"), alpha=0.2)
            pk = peaks[(peaks["population"] == pop) & (peaks["stage"] == st)]["peak_lag"]
            if len(pk) and np.isfinite(pk.iloc[0]):
                ax.axvline(pk.iloc[0], color=styles.get(st, "k"), ls=":", lw=1)
        ax.set_title(pop, fontsize=10, color=population_color(pop))
        ax.set_xlabel("lag (frames)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if i % 3 == 0:
            ax.set_ylabel("held-out R$^2$\n(mean +- s.e.m. over mice)")
        if i == 0:
            ax.legend(frameon=False, fontsize=MIN_FONT_PT)
    fig.suptitle("Encoding against lag (> 0: neural activity leads behaviour)", fontsize=10)
    return fig


# --------------------------------------------------------------------------- inactivation
def plot_silencing_effects(
    table: pd.DataFrame, effects: pd.DataFrame, mice: list, metrics: dict
) -> Figure:
    """Laser-off vs laser-on per metric: one grey line per mouse, the mean in black.

    Parameters
    ----------
    table : pandas.DataFrame
        ``table`` of :func:`~sharedrep.study.silencing_effects` (per mouse x laser).
    effects : pandas.DataFrame
        Its ``tables["effects"]`` (``metric``, ``p_value``: sign-flip over mice).
    mice : list
        Mice with both laser-on and laser-off trials.
    metrics : dict
        ``{metric: (unit, label, alternative)}``, one panel each.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = _grid(len(metrics), 3, 3.0)
    for ax, (metric, (unit, label, _)) in zip(axes, metrics.items(), strict=True):
        wide = table.pivot(index="subject", columns="laser", values=metric)
        w = wide.loc[mice] if mice else None
        if w is not None and len(w):
            for m in mice:
                ax.plot([0, 1], [w.loc[m, "off"], w.loc[m, "on"]], color=NEUTRAL, marker=".")
            ax.plot([0, 1], [w["off"].mean(), w["on"].mean()], color="k", lw=2, marker="o")
        r = effects[effects["metric"] == metric].iloc[0]
        ax.set_xticks([0, 1], ["laser\noff", "laser\non"])
        ax.set_xlim(-0.4, 1.4)
        ax.set_ylabel(f"{label} ({unit})")
        ax.set_title(_p_text(r["p_value"], len(mice)), fontsize=MIN_FONT_PT)
    fig.suptitle(f"Silencing of thalamic inputs ({len(mice)} mice)", fontsize=10)
    return fig


# ------------------------------------------------------------------ stimulation_responses
#: Unit classes: black / dark grey / light grey (stage colours are kept for stages).
_CLASS_STYLES = {
    "driven": ("k", "o"),
    "suppressed": ("0.35", "v"),
    "not responsive": ("0.75", "o"),
}


def _stim_groups(table: pd.DataFrame, stages: list, populations) -> list[tuple[str, str, object]]:
    """``(label, stage, population)`` of each x position of the stimulation figure: one
    per stage, or, with several populations, one per population and stage present."""
    if not populations or len(populations) < 2:
        return [(st, st, None) for st in stages]
    present = set(zip(table["population"].astype(str), table["stage"], strict=True))
    return [
        (f"{pop}\n{st}", st, pop)
        for pop in populations
        for st in stages
        if (str(pop), st) in present
    ]


def _of_group(df: pd.DataFrame, stage: str, population) -> pd.DataFrame:
    """The rows of ``df`` of one stage (and population, unless None)."""
    keep = df["stage"] == stage
    if population is not None:
        keep &= df["population"].astype(str) == str(population)
    return df[keep]


def plot_stimulation_responses(
    table: pd.DataFrame,
    fractions: pd.DataFrame,
    fdr: float,
    stages: list | None = None,
    populations: list | None = None,
) -> Figure:
    """Per-unit stimulation effects by class (left) and fraction driven per mouse (right).

    Parameters
    ----------
    table : pandas.DataFrame
        Per-unit table of ``stimulation_responses`` (``stage``, ``population``,
        ``effect`` (dF/F), ``classification``); empty: a figure that says so.
    fractions : pandas.DataFrame
        Per-session ``stage``, ``population``, ``fraction_driven``.
    fdr : float
        False discovery rate of the classification (shown in the title).
    stages : list of str, optional
        The stages along the x-axis, in learning order (default: those of ``table``,
        novice, intermediate, expert).
    populations : list of str, optional
        With several, one x position per population and stage (labelled with both),
        never pooled; default (or one population): one per stage.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not len(table):
        return empty_figure("no session with stimulation trials")
    groups = _stim_groups(table, stages or ordered_stages(table["stage"]), populations)
    labels = [g[0] for g in groups]
    fig, axes = new_figure(1, 2, width=MAX_WIDTH_IN / 2, height=3.2)
    ax = axes[0, 0]
    for i, (_, st, pop) in enumerate(groups):
        d = _of_group(table, st, pop)
        jitter = np.random.default_rng(i).uniform(-0.25, 0.25, len(d))
        for c, (col, marker) in _CLASS_STYLES.items():
            sel = (d["classification"] == c).to_numpy()
            ax.scatter(
                i + jitter[sel],
                d["effect"][sel],
                s=9,
                color=col,
                marker=marker,
                label=c if i == 0 else None,
            )
    ax.set_xticks(range(len(groups)), labels)
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set_ylabel("stimulation - control\nresponse (dF/F)")
    ax.legend(frameon=False, fontsize=MIN_FONT_PT, loc="lower left", bbox_to_anchor=(0, 1), ncol=2)
    ax = axes[0, 1]
    for i, (_, st, pop) in enumerate(groups):
        f = _of_group(fractions, st, pop)
        ax.bar(i, f["fraction_driven"].mean(), 0.6, color=stage_color(st))
        ax.plot(np.full(len(f), i), f["fraction_driven"], "k.", ms=4)
    ax.set_xticks(range(len(groups)), labels)
    ax.set_ylabel("fraction driven (per mouse)")
    fig.suptitle(f"Optogenetic stimulation responses (BH-FDR {fdr:g} per session)", fontsize=10)
    return fig


# ------------------------------------------------------------------ encoding_overlap
def plot_encoding_overlap(
    table: pd.DataFrame, stages_table: pd.DataFrame, population, stages: list
) -> Figure:
    """log2 odds ratio of driven x encoding units per stage: MH bar and per-mouse dots.

    Parameters
    ----------
    table : pandas.DataFrame
        Per mouse x population x stage (``population``, ``stage``, ``log_odds_ratio``
        (natural log), ``informative``), as returned by ``encoding_overlap``.
    stages_table : pandas.DataFrame
        Per population x stage: ``odds_ratio_mh``, ``p_pooled``.
    population : str or list of str
        The population shown, or several: one panel each.
    stages : list of str
        Stages, in order on the x axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    pops = [population] if isinstance(population, str) else list(population)
    width = min(MAX_WIDTH_IN, max(4.5, 1.8 * len(stages)) * len(pops)) / len(pops)
    fig, axes = new_figure(1, len(pops), width=width, height=3.4)
    for ax, pop in zip(axes[0], pops, strict=True):
        _overlap_panel(ax, table, stages_table, pop, stages)
    return fig


def _overlap_panel(ax, table: pd.DataFrame, stages_table: pd.DataFrame, pop, stages) -> None:
    """One population's panel of :func:`plot_encoding_overlap`."""
    labels = []
    for i, st in enumerate(stages):
        t = table[(table["population"] == pop) & (table["stage"] == st)]
        s_ = stages_table[(stages_table["population"] == pop) & (stages_table["stage"] == st)]
        if s_.empty:
            labels.append(st)
            continue
        ax.bar(i, np.log2(s_["odds_ratio_mh"].iloc[0]), 0.6, color=stage_color(st))
        inf = t["informative"].to_numpy(bool)
        ax.plot(np.full(inf.sum(), i), t["log_odds_ratio"][inf] / np.log(2), "k.", ms=5)
        # the p-value goes under the stage name, never over the data
        labels.append(f"{st}\n{_p_text(s_['p_pooled'].iloc[0], int(inf.sum()))}")
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set_xticks(range(len(stages)), labels)
    ax.set_ylabel("log2 odds ratio (driven x encoding)")
    ax.set_title(
        f"{pop}: driven x encoding units\n(bar: Mantel-Haenszel; dots: mice)",
        fontsize=10,
    )


def _p_text(p, n_mice: int) -> str:
    """``"p = 0.031"``, or ``"not testable (n = 3 mice)"`` when p is not a number."""
    try:
        p = float(p)
    except (TypeError, ValueError):
        p = math.nan
    if not math.isfinite(p):
        return f"p not testable (n = {n_mice} mice)"
    return f"p = {p:.2g}"
