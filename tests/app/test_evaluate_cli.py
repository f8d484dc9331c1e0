"""``sharedrep evaluate`` on a simulated study, its figure and its report section."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from sharedrep.app.cli import app
from sharedrep.app.evaluate_cli import OUTPUTS
from sharedrep.app.plots import plot_calibration_curves
from sharedrep.app.report import rebuild_report
from sharedrep.inference.evaluate import TABLES

runner = CliRunner()

#: 5 mice x days 1, 14 (one session per mouse and stage) x 3 populations, 16 trials.
SMALL = ("--mice", "5", "--days", "1,14", "--trials", "16", "--seed", "3")


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args], prog_name="sharedrep")


def _fail_msg(result) -> str:
    return result.output + repr(result.exception)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study") / "sim"
    result = _invoke("simulate", "--out", folder, *SMALL)
    assert result.exit_code == 0, _fail_msg(result)
    out = tmp_path_factory.mktemp("eval") / "evaluate"
    result = _invoke(
        "evaluate",
        folder / "study.toml",
        "-p",
        "thalamus",
        "-s",
        "novice",
        "--out",
        out,
        "--quick",
    )
    return folder, out, result


def test_evaluate_writes_tables_figure_and_verdict(evaluated):
    _, out, result = evaluated
    assert result.exit_code == 0, _fail_msg(result)
    names = {p.name for p in out.iterdir()}
    assert {"scores.csv", "summary.csv", "comparisons.csv", "reproducibility.csv"} <= names
    assert {"folds.csv", "animal_scores.csv", "evaluation.json", "calibration_curves.png"} <= names
    doc = json.loads((out / "evaluation.json").read_text())
    assert "Verdict: " + doc["verdict"][:40] in " ".join(result.stdout.split())
    assert doc["verdict"].startswith("pooling ")
    assert doc["settings"]["population"] == "thalamus" and doc["settings"]["stage"] == "novice"
    # one recording per session, labelled by its mouse: five animals held out in turn
    folds = pd.read_csv(out / "folds.csv")
    assert sorted(folds["held_out"].unique()) == [f"mouse0{i}" for i in range(1, 6)]
    assert sorted(doc["settings"]["sessions"].values()) == [f"mouse0{i}" for i in range(1, 6)]
    # --quick: fractions 0.2 and 0.5
    assert sorted(pd.read_csv(out / "summary.csv")["fraction"].unique()) == [0.2, 0.5]
    assert "Combined decoder vs per-animal ridge" in result.stdout


def test_evaluate_refuses_bad_requests(evaluated, tmp_path):
    folder, out, _ = evaluated
    # the refusal names the files the command writes, which are exactly those written
    assert set(OUTPUTS) == {p.name for p in out.iterdir()}
    assert set(OUTPUTS) >= {f"{name}.csv" for name in TABLES}
    study = folder / "study.toml"
    result = _invoke("evaluate", study, "-p", "thalamus", "-s", "novice", "--out", out)
    assert result.exit_code == 1 and "not empty" in result.output
    assert "would replace" in result.output
    result = _invoke("evaluate", study, "-p", "nope", "-s", "novice", "--out", tmp_path / "x")
    assert result.exit_code == 1 and "population 'nope' not in" in result.output
    result = _invoke(
        "evaluate", tmp_path / "missing.toml", "-p", "a", "-s", "b", "--out", tmp_path
    )
    assert result.exit_code == 1 and "no study file" in result.output


def test_report_gets_a_pooling_section(evaluated, tmp_path):
    _, out, _ = evaluated
    results = tmp_path / "results"
    results.mkdir()
    (results / "results.json").write_text(json.dumps({"title": "t", "analyses": []}))
    plain = rebuild_report(results).read_text()
    assert "Does pooling animals help?" not in plain
    shutil.copytree(out, results / "evaluate")
    html = rebuild_report(results, overwrite=True).read_text()
    verdict = json.loads((out / "evaluation.json").read_text())["verdict"]
    assert '<h2 id="evaluate">Does pooling animals help?</h2>' in html
    assert '<a href="#evaluate">' in html
    assert verdict.split(" (")[0] in html
    assert 'alt="calibration curves"' in html
    assert html.index('id="evaluate"') < html.index('id="settings"')


def test_calibration_curves_figure(evaluated):
    _, out, _ = evaluated
    table = pd.read_csv(out / "animal_scores.csv")
    fig = plot_calibration_curves(table)
    ax = fig.axes[0]
    n_animals = table["animal"].nunique()
    methods = ["constant", "ridge", "shared", "combined"]
    # one thin line per animal and one thick mean line per decoder, and the zero line
    assert len(ax.lines) == len(methods) * (n_animals + 1) + 1
    assert [t.get_text() for t in ax.get_legend().get_texts()] == methods
    with pytest.raises(ValueError, match="needs the columns"):
        plot_calibration_curves(table.drop(columns="r2"))
    with pytest.raises(ValueError, match="no requested decoder"):
        plot_calibration_curves(table, methods=["magic"])


def _write_study(folder, data, n_shared: int):
    """NWB sessions of ``sharedrep.simulate`` output and a study file listing them."""
    from sharedrep.data.io import write_nwb
    from sharedrep.data.session import SessionCollection

    p = data.behavior[0].shape[1]
    sessions = SessionCollection.from_arrays(
        data.neural,
        data.behavior,
        data.groups,
        subjects=[f"animal{i}" for i in range(len(data.neural))],
        sampling_rate=10.0,
        behavior_names=[f"b{j}" for j in range(p)],
        population="pop",
        stage="s1",
        day=1,
    )
    lines = ["[analysis]", f"n_shared = {n_shared}", "lags = [0]", "cv = 5", "random_state = 0"]
    lines += ["", "[defaults]", 'format = "nwb"', ""]
    for s in sessions:
        path = write_nwb(s, folder / f"{s.subject}.nwb")
        lines += ["[[sessions]]", f'subject = "{s.subject}"', f'session_id = "{s.session_id}"']
        lines += ["day = 1", 'stage = "s1"', 'population = "pop"', f'path = "{path.name}"', ""]
    (folder / "study.toml").write_text("\n".join(lines))
    return folder / "study.toml"


@pytest.mark.parametrize(
    "n_units, n_behavior, n_shared, verdict",
    [
        # few units, 12 behaviour features, 2 shared: pooling must help
        (6, 12, 2, "pooling helps on these data"),
        # many units, n_shared = p = 3: the shared axes cannot help
        (40, 3, 3, "pooling is neutral on these data by construction"),
    ],
)
def test_evaluate_gives_the_right_verdict_on_simulated_studies(
    n_units, n_behavior, n_shared, verdict, tmp_path
):
    from sharedrep import simulate

    d = simulate(
        n_subjects=6,
        n_samples=600,
        n_units=n_units,
        n_behavior=n_behavior,
        n_shared=2,
        snr=2.0,
        trial_length=20,
        shared_variance=1.0,
        behavior_anisotropy=1.0,
        seed=0,
    )
    study = _write_study(tmp_path, d, n_shared)
    out = tmp_path / "out"
    result = _invoke("evaluate", study, "-p", "pop", "-s", "s1", "--out", out)
    assert result.exit_code == 0, _fail_msg(result)
    doc = json.loads((out / "evaluation.json").read_text())
    assert doc["verdict"].startswith(verdict), doc["verdict"]
    assert doc["settings"]["calibration_fractions"] == [0.1, 0.2, 0.5]
