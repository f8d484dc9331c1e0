"""The report in a real browser: ``tools/render_report.py`` with headless Chromium.

The report is built from the real figure functions (``sharedrep.study.figures`` and
``sharedrep.app.plots``) on small synthetic tables, so it renders in seconds; the browser
then measures it: no figure may be shown narrower than it was drawn (its text would
shrink below the size it was set in) and nothing may stick out of the page. The browser
tests are skipped when no Chromium binary is installed (Debian: ``apt-get install
chromium``); the check of measured layouts runs everywhere.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sharedrep import ShaReD, simulate
from sharedrep.app.plots import plot_axes, plot_cv_scores, plot_heldout_r2
from sharedrep.app.report import write_report
from sharedrep.study import figures
from sharedrep.study._result import AnalysisResult

TOOL = Path(__file__).resolve().parents[2] / "tools" / "render_report.py"


def _load_tool():
    if not TOOL.is_file():
        pytest.skip("tools/render_report.py is not in this checkout")
    spec = importlib.util.spec_from_file_location("render_report", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _load_tool()
needs_browser = pytest.mark.skipif(
    render.find_browser() is None, reason="no Chromium binary (apt-get install chromium)"
)

POPS, STAGES, MICE = ["thalamus", "other_input", "m1"], ["novice", "expert"], ["m1", "m2", "m3"]
FEATURES = ["lever_position", "lever_velocity", "paw_x", "paw_y", "elbow_x", "elbow_y"]


def _cells():
    return [(p, s) for p in POPS for s in STAGES]


def _learning_curves(rng):
    from sharedrep.study.behavior import METRICS

    rows = [
        {"subject": m, "day": d, **{c: rng.normal(d / 14, 0.05) for c, _, _ in METRICS}}
        for m in MICE
        for d in (1, 2, 13, 14)
    ]
    return figures.plot_learning_curves(pd.DataFrame(rows), METRICS)


def _encoding(rng):
    table = pd.DataFrame(
        [
            {"population": p, "stage": s, "score": 0.5, "ci_low": 0.4, "ci_high": 0.6}
            | {"null_q95": 0.1, "p_value": 0.04}
            for p, s in _cells()
        ]
    )
    subjects = pd.DataFrame(
        [{"population": p, "stage": s, "score": rng.uniform()} for p, s in _cells() for _ in MICE]
    )
    return figures.plot_encoding_by_population(table, subjects, POPS, STAGES)


def _representation(rng):
    loadings = pd.DataFrame(
        [
            {"population": p, "stage": s, "dimension": 1, "feature": f, "loading": rng.normal()}
            for p, s in _cells()
            for f in FEATURES
        ]
    )
    times = np.arange(-1.0, 2.0, 0.1)
    traj = pd.DataFrame(
        [
            {"population": p, "stage": s, "subject": m, "dimension": 1, "time_s": t}
            | {"latent": np.exp(-(t**2)) + rng.normal(0, 0.1)}
            for p, s in _cells()
            for m in MICE
            for t in times
        ]
    )
    return figures.plot_shared_representation(loadings, traj, ("thalamus", "expert"))


def _lags(rng):
    lags = range(-2, 8)
    table = pd.DataFrame(
        [
            {"population": p, "stage": s, "lag": lag, "subject": m, "score": rng.uniform()}
            for p, s in _cells()
            for m in MICE
            for lag in lags
        ]
    )
    peaks = pd.DataFrame([{"population": p, "stage": s, "peak_lag": 2.0} for p, s in _cells()])
    return figures.plot_lag_profiles(table, peaks, POPS, STAGES)


def _silencing(rng):
    metrics = {
        "success_rate": ("fraction", "success rate", "less"),
        "reaction_time_s": ("s", "reaction time", "greater"),
        "template_similarity": ("r", "similarity to expert template", "less"),
    }
    table = pd.DataFrame(
        [
            {"subject": m, "laser": la, **{k: rng.uniform() for k in metrics}}
            for m in MICE
            for la in ("off", "on")
        ]
    )
    effects = pd.DataFrame({"metric": list(metrics), "p_value": [0.125, np.nan, 0.25]})
    return figures.plot_silencing_effects(table, effects, MICE, metrics)


def _overlap(rng):
    table = pd.DataFrame(
        [
            {"population": "m1", "stage": s, "log_odds_ratio": rng.normal(1), "informative": True}
            for s in STAGES
            for _ in MICE
        ]
    )
    stages = pd.DataFrame(
        {
            "population": "m1",
            "stage": STAGES,
            "odds_ratio_mh": [0.9, 10.0],
            "p_pooled": [0.9, 0.001],
        }
    )
    return figures.plot_encoding_overlap(table, stages, "m1", STAGES)


def _model_figures():
    d = simulate(n_subjects=3, n_samples=600, n_units=(8, 12), n_shared=2, seed=1)
    m = ShaReD(n_shared="auto", alpha=None, cv=3, random_state=0, alphas=[0.1, 1.0])
    m.fit(d.neural, d.behavior, groups=d.groups)
    k = m.n_shared_
    truth = d.shared_axes[:, :k] if k <= d.shared_axes.shape[1] else None
    extra = {
        "cv_scores": plot_cv_scores(m),
        "heldout_r2": plot_heldout_r2(m, extra={"new": [0.5] * k}),
    }
    return plot_axes(m, true_axes=truth, feature_names=d.behavior_names), extra


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    rng = np.random.default_rng(0)
    figs = {
        "learning_curves": _learning_curves(rng),
        "encoding_by_population": _encoding(rng),
        "shared_representation": _representation(rng),
        "lag_profiles": _lags(rng),
        "silencing_effects": _silencing(rng),
        "encoding_overlap": _overlap(rng),
    }
    axes_fig, extra = _model_figures()
    figs["shared_recovery"] = axes_fig
    long = pd.DataFrame({"unit": np.arange(80), "score": rng.uniform(size=80)})
    results = {
        name: AnalysisResult(name, long, fig, {"n_mice": 3}, f"What {name} shows.")
        for name, fig in figs.items()
    }
    out = tmp_path_factory.mktemp("render") / "res"
    path = write_report(results, out, settings={"cv": 3}, extra_figures={"shared_recovery": extra})
    return path, len(figs) + len(extra)


def test_problems_flags_shrunk_figures_and_overflow():
    good = {
        "window": 1200,
        "scroll_width": 1200,
        "images": [{"alt": "a", "natural": 760, "shown": 760.0}],
    }
    assert render.problems(good) == []
    shrunk = good | {"images": [{"alt": "wide", "natural": 1992, "shown": 968.0}]}
    (msg,) = render.problems(shrunk)
    assert "'wide'" in msg and "1992" in msg
    assert render.problems(good | {"scroll_width": 1500}) == [
        "the page is 1500 px wide in a 1200 px window"
    ]
    assert (
        "did not load"
        in render.problems(good | {"images": [{"alt": "x", "natural": 0, "shown": 0}]})[0]
    )


@needs_browser
def test_figures_keep_their_design_width_and_nothing_overflows(report):
    path, n_figures = report
    layout = render.measure(path)
    assert len(layout["images"]) == n_figures
    assert all(im["natural"] > 300 for im in layout["images"])  # every image loaded
    assert render.problems(layout) == []
    # the questions are the sections, in the page
    ids = [s["id"] for s in layout["sections"]]
    assert "a-encoding_by_population" in ids and "settings" in ids


@needs_browser
def test_png_pdf_and_section_crop(report, tmp_path):
    from PIL import Image

    path, _ = report
    layout = render.screenshot(path, tmp_path / "page.png")
    with Image.open(tmp_path / "page.png") as im:
        assert im.size == (render.WIDTH, layout["scroll_height"])
    render.print_pdf(path, tmp_path / "page.pdf")
    assert (tmp_path / "page.pdf").read_bytes()[:5] == b"%PDF-"
    crop = render.crop_section(
        tmp_path / "page.png", layout, "encoding_by_population", tmp_path / "s.png"
    )
    box = next(s for s in layout["sections"] if s["id"] == "a-encoding_by_population")
    with Image.open(crop) as im:
        assert im.height == pytest.approx(box["bottom"] - box["top"] + 16, abs=2)
        assert im.width <= render.WIDTH


# ------------------------------------------------------------------ legible figures
def _texts(fig):
    from matplotlib.text import Text

    fig.draw_without_rendering()
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


@pytest.mark.parametrize(
    "build",
    [_learning_curves, _encoding, _representation, _lags, _silencing, _overlap],
    ids=lambda f: f.__name__.strip("_"),
)
def test_study_figures_fit_the_column_with_legible_text(build):
    import io

    from PIL import Image

    from sharedrep.app.report import PNG_DPI, _figure_bytes

    fig = build(np.random.default_rng(1))
    assert fig.get_size_inches()[0] <= figures.MAX_WIDTH_IN + 1e-9
    small = [(t.get_text(), t.get_fontsize()) for t in _texts(fig) if t.get_fontsize() < 9]
    assert small == []
    with Image.open(io.BytesIO(_figure_bytes(fig, "png"))) as im:
        # as saved for the report (tight box): no wider than the column it is shown in
        assert im.width <= (figures.MAX_WIDTH_IN + 0.3) * PNG_DPI


def test_learning_curve_days_are_integers():
    fig = _learning_curves(np.random.default_rng(2))
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)


def test_overlap_p_values_are_not_drawn_over_the_data():
    fig = _overlap(np.random.default_rng(3))
    ax = fig.axes[0]
    assert not [t.get_text() for t in ax.texts if "p" in t.get_text()]  # nothing in the axes
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0].startswith("novice") and "p = 0.9" in labels[0]
    assert "p = 0.001" in labels[1]


def test_untestable_p_value_is_said_in_words():
    fig = _silencing(np.random.default_rng(4))  # the second metric's p is NaN
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[1] == "p not testable (n = 3 mice)" and "nan" not in " ".join(titles).lower()


def test_one_palette_for_stages_and_populations():
    enc = _encoding(np.random.default_rng(5))
    lags = _lags(np.random.default_rng(5))
    from matplotlib.colors import to_hex

    bars = {to_hex(p.get_facecolor()) for p in enc.axes[0].patches}
    assert bars == {figures.stage_color(s).lower() for s in STAGES}
    lines = {to_hex(line.get_color()) for line in lags.axes[0].lines if line.get_label() in STAGES}
    assert lines == bars
    assert figures.stage_color("novice") != figures.stage_color("expert")
    assert len({figures.population_color(p) for p in POPS}) == len(POPS)
    assert set(figures.STAGE_COLORS.values()) <= set(figures.OKABE_ITO)
    assert figures.population_color("striatum") == figures.population_color("striatum")
