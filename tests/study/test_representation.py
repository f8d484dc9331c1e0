"""Shared-axes loadings and onset-aligned latents per population x stage.

A small study (3 mice, days 1, 2, 13, 14, 30 trials per session) is simulated once
(module fixture); :func:`shared_representation` is run on it and checked against the
simulator: thalamic activity encodes the push in experts, so the latent predicted from it
peaks at movement onset.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.figure import Figure

from sharedrep.sim.learning_study import simulate_study
from sharedrep.study import AnalysisResult
from sharedrep.study.representation import shared_representation

SMALL = dict(n_mice=3, days=(1, 2, 13, 14), trials_per_session=30)
WINDOW = (-1.0, 2.0)


@pytest.fixture(scope="module")
def study():
    return simulate_study(**SMALL, seed=1)


@pytest.fixture(scope="module")
def result(study):
    return shared_representation(study.collection, window=WINDOW)


def _cells(result):
    return list(dict.fromkeys(zip(result.table["population"], result.table["stage"], strict=True)))


def test_result_is_complete(result, study):
    assert isinstance(result, AnalysisResult)
    assert result.name == "shared_representation"
    json.dumps(result.summary)
    assert "mice" in result.description and len(result.description) > 200
    assert set(result.summary["angles"]) == set(study.collection.populations)
    for a in result.summary["angles"].values():
        assert a["stages"] == ["novice", "expert"]
        assert 0.0 <= a["max_angle_deg"] <= 90.0


def test_loadings_table(result, study):
    t = result.table
    assert list(t.columns) == ["population", "stage", "dimension", "feature", "loading"]
    pops = study.collection.populations
    assert set(_cells(result)) == {(p, s) for p in pops for s in ("novice", "expert")}
    names = list(study.collection[0].behavior_names)
    for (_, _), g in t.groupby(["population", "stage"]):
        assert list(g["feature"]) == names
        assert (g["dimension"] == 1).all()
        # unit-norm-ish axis in pooled-standardised units, finite
        assert np.all(np.isfinite(g["loading"]))
    # the reference cell is oriented: positive lever-position loading
    ref_pop, ref_stage = result.summary["reference"].split("/")
    ref = t[(t["population"] == ref_pop) & (t["stage"] == ref_stage)].set_index("feature")
    assert ref.loc["lever_position", "loading"] > 0
    # every other cell is sign-aligned with the reference (non-negative dot product)
    for (p, s), g in t.groupby(["population", "stage"]):
        v = g.set_index("feature").loc[names, "loading"].to_numpy()
        assert v @ ref.loc[names, "loading"].to_numpy() >= 0, (p, s)


def test_figure_has_two_rows_of_panels(result):
    cells = _cells(result)
    fig = result.figure
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 2 * len(cells)
    top = [fig.axes[c] for c in range(len(cells))]
    bottom = [fig.axes[len(cells) + c] for c in range(len(cells))]
    traj = result.tables["trajectories"]
    for (pop, st), a_top, a_bot in zip(cells, top, bottom, strict=True):
        assert f"{pop} / {st}" in a_top.get_title()
        assert len(a_top.patches) == result.table["feature"].nunique()  # one bar per feature
        assert "movement onset" in a_bot.get_xlabel()
        n_mice = traj[(traj["population"] == pop) & (traj["stage"] == st)]["subject"].nunique()
        assert len(a_bot.get_lines()) >= n_mice + 1  # one per mouse + the mean


def test_trajectories_for_every_mouse_span_the_window(result, study):
    traj = result.tables["trajectories"]
    assert list(traj.columns) == [
        "population",
        "stage",
        "subject",
        "dimension",
        "time_s",
        "latent",
        "n_trials",
    ]
    fr = study.truth["frame_rate"]
    coll = study.collection
    for pop, st in _cells(result):
        mice = set(coll.filter(population=pop, stage=st).subjects)
        cell = traj[(traj["population"] == pop) & (traj["stage"] == st)]
        assert set(cell["subject"]) == mice
        for _, g in cell.groupby("subject"):
            t = g["time_s"].to_numpy()
            assert t.min() == pytest.approx(WINDOW[0]) and t.max() == pytest.approx(WINDOW[1])
            assert np.allclose(np.diff(t), 1.0 / fr)
            assert (g["n_trials"] > 5).all()
            near = g[(g["time_s"] >= -0.5) & (g["time_s"] <= 1.0)]["latent"]
            assert np.isfinite(near).all()


def test_thalamus_expert_latent_peaks_at_movement_onset(result):
    traj = result.tables["trajectories"]
    cell = traj[(traj["population"] == "thalamus") & (traj["stage"] == "expert")]
    per_mouse = cell.pivot(index="time_s", columns="subject", values="latent")
    mean = per_mouse.mean(axis=1)
    t_peak = float(mean.idxmax())
    # signs follow the reference orientation (push = positive latent): the peak is a
    # positive deflection right at onset, not a trough or a late (position) peak
    assert -0.3 <= t_peak <= 0.2, t_peak
    baseline = mean[(mean.index >= -1.0) & (mean.index <= -0.5)]
    assert mean.max() > 3 * baseline.abs().max()
    assert mean.max() > 1.0  # pooled-standardised units: a clear deflection
    # every mouse (the unit of inference) shows it
    peaks = per_mouse.idxmax(axis=0).to_numpy(float)
    assert np.all((peaks >= -0.3) & (peaks <= 0.2)), peaks
    s = result.summary["cells"]["thalamus/expert"]
    assert s["peak_time_s"] == pytest.approx(t_peak)
    assert s["n_subjects"] == 3


def test_custom_window_and_selection(study):
    r = shared_representation(
        study.collection, populations=["thalamus"], stages=["expert", "novice"], window=(-0.5, 1.0)
    )
    assert _cells(r) == [("thalamus", "novice"), ("thalamus", "expert")]
    t = r.tables["trajectories"]["time_s"]
    assert t.min() == pytest.approx(-0.5) and t.max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="window"):
        shared_representation(study.collection, window=(1.0, 0.0))
