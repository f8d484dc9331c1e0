"""The figure functions return matplotlib Figures with the expected content."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from sharedrep import ShaReD, simulate
from sharedrep.app.plots import align_axes, plot_axes, plot_cv_scores, plot_heldout_r2

K_MAX = 4


@pytest.fixture(scope="module")
def fitted():
    d = simulate(n_subjects=3, n_samples=1000, n_units=(8, 12), n_shared=2, seed=1)
    m = ShaReD(
        n_shared="auto",
        alpha=None,
        cv=3,
        random_state=0,
        alphas=[0.01, 0.1, 1.0],
        max_shared=K_MAX,
        private=False,
    ).fit(d.neural, d.behavior, groups=d.groups)
    return m, d


def _bars(ax):
    return [c for c in ax.containers if isinstance(c, BarContainer)]


def test_no_pyplot_figures_are_created(fitted):
    m, d = fitted
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_axes(m, d.shared_axes)
    plot_cv_scores(m)
    plot_heldout_r2(m)
    assert plt.get_fignums() == before


def test_plot_axes_with_truth(fitted):
    m, d = fitted
    k, p = m.n_shared_, d.n_behavior
    fig = plot_axes(
        m, true_axes=d.shared_axes[:, :k] if k <= 2 else None, feature_names=d.behavior_names
    )
    assert isinstance(fig, Figure)
    assert len(fig.axes) == k
    for ax in fig.axes:
        assert len(_bars(ax)) == 1 and len(_bars(ax)[0]) == p
        # zero line + truth markers (when the truth has as many dimensions)
        assert len(ax.lines) == (2 if k <= 2 else 1)
    assert [t.get_text() for t in fig.axes[-1].get_xticklabels()] == d.behavior_names


def test_plot_axes_without_truth_and_into_given_axes(fitted):
    m, _ = fitted
    k = m.n_shared_
    fig = plot_axes(m)
    assert len(fig.axes) == k and all(len(ax.lines) == 1 for ax in fig.axes)
    own = Figure()
    axs = own.subplots(k, 1, squeeze=False).ravel()
    assert plot_axes(m, ax=list(axs)) is own
    with pytest.raises(ValueError, match="ax must hold"):
        plot_axes(m, ax=list(axs) + [own.add_subplot()])
    with pytest.raises(ValueError, match="feature_names"):
        plot_axes(m, feature_names=["a"])
    with pytest.raises(ValueError, match="true_axes"):
        plot_axes(m, true_axes=np.ones((3, 2)))


def test_plot_axes_truth_equal_to_recovered_subspace(fitted):
    m, _ = fitted
    k = m.n_shared_
    mix = np.linalg.qr(np.random.default_rng(0).standard_normal((k, k)))[0]
    fig = plot_axes(m, true_axes=m.shared_axes_ @ mix)  # same subspace, other basis
    assert "angle to the true axes: 0.0 deg" in fig.axes[0].get_title(loc="left")
    Vn = m.shared_axes_ / np.linalg.norm(m.shared_axes_, axis=0)
    for j, ax in enumerate(fig.axes):
        heights = np.array([b.get_height() for b in _bars(ax)[0]])
        np.testing.assert_allclose(heights, Vn[:, j])
        markers = np.asarray(ax.lines[-1].get_ydata())
        # the rotated truth lies in the recovered subspace and is close to each column
        assert abs(markers @ Vn[:, j]) > 0.9


def test_align_axes_recovers_rotation():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 2)))
    c, s = np.cos(0.7), np.sin(0.7)
    rotated = Q @ np.array([[c, -s], [s, c]])
    np.testing.assert_allclose(align_axes(Q, rotated), Q, atol=1e-10)
    with pytest.raises(ValueError, match="shape"):
        align_axes(Q, Q[:, :1])


def test_plot_cv_scores(fitted):
    m, _ = fitted
    fig = plot_cv_scores(m)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    # one line per k, the selection marker and the vertical line at alpha_
    assert len(ax.lines) == K_MAX + 2
    assert ax.get_xscale() == "log"
    own = Figure()
    ax2 = own.add_subplot()
    assert plot_cv_scores(m, ax=ax2) is own


def test_plot_heldout_r2(fitted):
    m, _ = fitted
    k, S = m.n_shared_, m.n_subjects_
    fig = plot_heldout_r2(m)
    ax = fig.axes[0]
    bars = _bars(ax)
    assert len(bars) == k and all(len(b) == S for b in bars)
    i_alpha, kk = m.cv_results_["best_index"]
    heights = np.array([[r.get_height() for r in b] for b in bars]).T
    np.testing.assert_allclose(heights, m.cv_results_["r2_subject_dim"][i_alpha, :, :kk])

    fig = plot_heldout_r2(m, subject_names=["a", "b", "c"], extra={"new": np.full(k, 0.5)})
    bars = _bars(fig.axes[0])
    assert all(len(b) == S + 1 for b in bars)
    assert all(b.patches[-1].get_hatch() == "//" for b in bars)
    with pytest.raises(ValueError, match="subject_names"):
        plot_heldout_r2(m, subject_names=["a"])
    with pytest.raises(ValueError, match="extra"):
        plot_heldout_r2(m, extra={"new": [0.1] * (k + 1)})


def test_figures_save_headless(fitted, tmp_path):
    m, d = fitted
    for name, fig in {
        "axes": plot_axes(m, d.shared_axes if m.n_shared_ == 2 else None),
        "cv": plot_cv_scores(m),
        "r2": plot_heldout_r2(m),
    }.items():
        for fmt in ("png", "svg"):
            fig.savefig(tmp_path / f"{name}.{fmt}")
            assert (tmp_path / f"{name}.{fmt}").stat().st_size > 1000
    assert matplotlib.get_backend()  # importing sharedrep.app.plots never forced a GUI backend


def test_unfitted_or_no_cv_model_errors():
    with pytest.raises(ValueError, match="not fitted"):
        plot_axes(ShaReD())
    d = simulate(n_subjects=2, n_samples=300, n_units=5, seed=0)
    m = ShaReD(n_shared=1, alpha=1.0, cv=None, private=False).fit(d.neural, d.behavior)
    with pytest.raises(ValueError, match="cross-validation"):
        plot_cv_scores(m)
    with pytest.raises(ValueError, match="cross-validation"):
        plot_heldout_r2(m)
    assert len(plot_axes(m).axes) == 1


def test_figures_fit_the_report_column_with_legible_text(fitted):
    import io

    from matplotlib.text import Text
    from PIL import Image

    from sharedrep.app.report import PNG_DPI, _figure_bytes
    from sharedrep.study.figures import MAX_WIDTH_IN, OKABE_ITO

    m, d = fitted
    names = [f"a long feature name {j}" for j in range(d.n_behavior)]
    figs = {
        "axes": plot_axes(m, d.shared_axes if m.n_shared_ == 2 else None, feature_names=names),
        "cv": plot_cv_scores(m),
        "r2": plot_heldout_r2(m, extra={"new subject (test)": np.full(m.n_shared_, 0.5)}),
    }
    for name, fig in figs.items():
        assert fig.get_size_inches()[0] <= MAX_WIDTH_IN, name
        fig.draw_without_rendering()
        small = [
            (t.get_text(), t.get_fontsize())
            for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and t.get_fontsize() < 9
        ]
        assert small == [], name
        with Image.open(io.BytesIO(_figure_bytes(fig, "png"))) as im:
            # legends and labels inside: the saved PNG is no wider than the column
            assert im.width <= (MAX_WIDTH_IN + 0.3) * PNG_DPI, name
    # the colours come from the one palette
    bar_colors = {
        matplotlib.colors.to_hex(b.get_facecolor()) for b in _bars(figs["axes"].axes[0])[0]
    }
    assert bar_colors <= {c.lower() for c in OKABE_ITO}
