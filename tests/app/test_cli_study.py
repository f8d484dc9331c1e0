"""The study commands: simulate -> validate -> run -> report, and fit, on a tiny study."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from sharedrep.app._console import EXIT_CLAIMS_FAILED
from sharedrep.app.cli import app

runner = CliRunner()

#: A tiny study: 3 mice x days 1, 14 x 3 populations (18 sessions of 16 trials).
TINY = ("--mice", "3", "--days", "1,14", "--trials", "16", "--seed", "3")
#: Small resampling counts for the tests (the study file is edited, as a user would).
FAST_SETTINGS = {"n_permutations": 4, "n_bootstrap": 4}


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args], prog_name="sharedrep")


def _fail_msg(result) -> str:
    return result.output + repr(result.exception)


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study") / "sim"
    result = _invoke("simulate", "--out", folder, *TINY)
    assert result.exit_code == 0, _fail_msg(result)
    toml = folder / "study.toml"
    text = toml.read_text()
    for key, value in FAST_SETTINGS.items():
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.M)
        if n == 0:
            text = text.replace("[analysis]\n", f"[analysis]\n{key} = {value}\n", 1)
    toml.write_text(text)
    return folder, result


@pytest.fixture(scope="module")
def run_results(tiny_study, tmp_path_factory):
    folder, _ = tiny_study
    out = tmp_path_factory.mktemp("run") / "results"
    result = _invoke("run", folder / "study.toml", "--out", out, "--truth", folder / "truth.json")
    return out, result


def test_simulate_writes_nwb_toml_and_truth(tiny_study):
    folder, result = tiny_study
    assert (folder / "study.toml").is_file()
    assert len(list((folder / "nwb").glob("*.nwb"))) == 3 * 2 * 3
    truth = json.loads((folder / "truth.json").read_text())
    assert truth["n_mice"] == 3 and truth["days"] == [1, 14]
    assert "study.toml" in result.stdout


def test_simulate_null_and_refusals(tiny_study, tmp_path):
    folder, _ = tiny_study
    result = _invoke("simulate", "--out", folder, *TINY)  # not empty, no --force
    assert result.exit_code == 1 and "--force" in result.stderr
    assert "Traceback" not in result.output
    result = _invoke("simulate", "--out", tmp_path / "x", "--days", "1,two")
    assert result.exit_code == 1 and "--days" in result.stderr
    result = _invoke("simulate", "--out", tmp_path / "y", "--mice", "1")
    assert result.exit_code == 2
    result = _invoke("simulate", "--out", tmp_path / "z", "--days", "0,5")  # refused: day 0
    assert result.exit_code == 1 and "days must be" in result.stderr
    assert not (tmp_path / "z").exists()  # nothing left behind
    out = tmp_path / "null"
    result = _invoke(
        "simulate", "--out", out, "--null", "--mice", "2", "--days", "1,14", "--trials", "10"
    )
    assert result.exit_code == 0, _fail_msg(result)
    truth = json.loads((out / "truth.json").read_text())
    assert truth["effects"]["learning"] == 0.0
    assert truth["expected"]["best_encoding"] is None


def test_validate_accepts_the_simulated_study(tiny_study):
    folder, _ = tiny_study
    result = _invoke("validate", folder / "study.toml")
    assert result.exit_code == 0, _fail_msg(result)
    assert "OK" in result.stdout


def test_run_writes_the_report(run_results, tiny_study):
    out, result = run_results
    html = (out / "report.html").read_text(encoding="utf-8")
    meta = json.loads((out / "results.json").read_text())
    # --truth: exit 0 only when every claim is recovered (the report is written anyway)
    statuses = [c["status"] for c in meta["truth_checks"]]
    recovered = all(st == "recovered" for st in statuses)
    assert result.exit_code == (0 if recovered else EXIT_CLAIMS_FAILED), _fail_msg(result)
    assert recovered or "--no-check" in result.stderr
    names = [a["name"] for a in meta["analyses"]]
    assert len(names) >= 3
    for name in names:
        assert name in html
        assert (out / "figures" / f"{name}.png").is_file()
        assert (out / "figures" / f"{name}.svg").is_file()
        assert (out / "tables" / f"{name}.csv").is_file()
    folder, _ = tiny_study
    files = {f["path"] for f in meta["data_files"]}
    assert str((folder / "study.toml").resolve()) in files
    assert len(files) == 1 + 18  # study.toml + every NWB file, each with its checksum
    assert all(len(f["sha256"]) == 64 for f in meta["data_files"])
    assert meta["settings"]["n_permutations"] == FAST_SETTINGS["n_permutations"]
    # --truth: one verdict per claim (a study this small need not recover them all)
    assert len(meta["truth_checks"]) == 4 and "Ground truth" in html
    assert "Ground truth of the simulated learning study" in result.stdout
    assert "Report" in result.stdout


def test_run_refuses_non_empty_out(run_results, tiny_study):
    out, _ = run_results
    folder, _ = tiny_study
    result = _invoke("run", folder / "study.toml", "--out", out)
    assert result.exit_code == 1
    assert "not empty" in result.stderr and "Traceback" not in result.output


def test_report_rebuilds_from_saved_files(run_results):
    """The documented sequence: `run` then `report RESULTS` (no --force needed)."""
    out, _ = run_results
    before = (out / "report.html").read_text(encoding="utf-8")
    result = _invoke("report", out)
    assert result.exit_code == 0, _fail_msg(result)
    assert (out / "report.html").read_text(encoding="utf-8") == before
    result = _invoke("report", out, "--force")
    assert result.exit_code == 0, _fail_msg(result)
    assert (out / "report.html").read_text(encoding="utf-8") == before


@pytest.mark.parametrize("no_check", [False, True])
def test_run_truth_fails_on_an_untestable_claim(tiny_study, tmp_path, monkeypatch, no_check):
    """`run --truth` exits non-zero after writing the report unless --no-check."""
    import pandas as pd

    from sharedrep.app import demo
    from sharedrep.app.report import TruthCheck
    from sharedrep.study import pipeline
    from sharedrep.study._result import AnalysisResult

    def run_study(collection, settings=None, progress=True):
        table = pd.DataFrame({"x": [1.0]})
        return {"a": AnalysisResult("a", table, None, {}, "d")}

    checks = [
        TruthCheck("found", True, "ok"),
        TruthCheck("nan claim", False, "not testable (p not a number)", testable=False),
    ]
    monkeypatch.setattr(pipeline, "run_study", run_study)
    monkeypatch.setattr(demo, "ground_truth_checks", lambda results, truth: checks)
    folder, _ = tiny_study
    out = tmp_path / "res"
    extra = ("--no-check",) if no_check else ()
    result = _invoke(
        "run", folder / "study.toml", "--out", out, "--truth", folder / "truth.json", *extra
    )
    assert result.exit_code == (0 if no_check else EXIT_CLAIMS_FAILED), _fail_msg(result)
    assert "not testable" in result.stdout
    meta = json.loads((out / "results.json").read_text())
    assert [c["status"] for c in meta["truth_checks"]] == ["recovered", "not testable"]
    assert (out / "report.html").is_file()


def test_report_errors(tmp_path):
    result = _invoke("report", tmp_path)
    assert result.exit_code == 1 and "results.json" in result.stderr
    result = _invoke("report", tmp_path / "missing")
    assert result.exit_code == 1 and "not found" in result.stderr
    (tmp_path / "t1.py").write_text("x = 1\n")
    result = _invoke("report", tmp_path / "t1.py")
    assert result.exit_code == 1 and "is a file, not a results folder" in result.stderr
    assert "Traceback" not in result.output


def test_fit_prints_a_summary_and_saves(tiny_study, tmp_path):
    from sharedrep import ShaReD

    folder, _ = tiny_study
    model_path = tmp_path / "model.npz"
    args = ("fit", folder / "study.toml", "--population", "thalamus", "--stage", "expert")
    result = _invoke(*args, "--out", model_path)
    assert result.exit_code == 0, _fail_msg(result)
    for text in ("alpha", "k (shared dimensions)", "pooled", "mouse01", "mouse03", "dim 1"):
        assert text in result.stdout
    m = ShaReD.load(model_path)
    assert m.n_subjects_ == 3
    result = _invoke(*args, "--out", model_path)
    assert result.exit_code == 1 and "--force" in result.stderr
    result = _invoke(*args, "--out", model_path, "--force")
    assert result.exit_code == 0, _fail_msg(result)


def test_fit_compute_options(tiny_study, tmp_path):
    from sharedrep import ShaReD

    folder, _ = tiny_study
    args = ("fit", folder / "study.toml", "--population", "thalamus", "--stage", "expert")
    paths = {}
    for name, extra in (("default", ()), ("dual32", ("--form", "dual", "--dtype", "float32"))):
        paths[name] = tmp_path / f"{name}.npz"
        result = _invoke(*args, *extra, "--out", paths[name])
        assert result.exit_code == 0, _fail_msg(result)
    a, b = ShaReD.load(paths["default"]), ShaReD.load(paths["dual32"])
    assert b.get_params()["form"] == "dual" and b.get_params()["dtype"] == "float32"
    assert a.n_shared_ == b.n_shared_
    np.testing.assert_allclose(b.shared_axes_, a.shared_axes_, atol=1e-3)
    for extra, message in (
        (("--backend", "spark"), "backend must be one of"),
        (("--device", "cuda"), "needs backend='torch'"),
        (("--backend", "numpy", "--dtype", "float16"), "dtype must be"),
        (("--backend", "numpy", "--form", "sideways"), "form must be one of"),
    ):
        result = _invoke(*args, *extra)
        assert result.exit_code == 1 and message in result.stderr, _fail_msg(result)
        assert "Fitting" not in result.output and "Traceback" not in result.output
    # without --backend, the options are still checked before any session is read: the
    # same study in another folder (its session files do not resolve) fails on the option
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "study.toml").write_text((folder / "study.toml").read_text())
    for extra, message in ((("--dtype", "float16"), "dtype must be"), (("--form", "x"), "form")):
        result = _invoke("fit", elsewhere / "study.toml", *args[2:], *extra)
        assert result.exit_code == 1 and message in result.stderr, _fail_msg(result)
    # the study file's [analysis] backend is the default of --backend
    text = (folder / "study.toml").read_text()
    other = folder / "study_spark.toml"  # same folder: the session paths resolve
    other.write_text(text.replace("[analysis]\n", '[analysis]\nbackend = "spark"\n', 1))
    result = _invoke("fit", other, "--population", "thalamus", "--stage", "expert")
    assert result.exit_code == 1 and "backend must be one of" in result.stderr
    result = _invoke(
        "fit", other, "--population", "thalamus", "--stage", "expert", "--backend", "numpy"
    )
    assert result.exit_code == 0, _fail_msg(result)
    # an error message is printed as written: "[analysis]" is text, not console markup
    typed = folder / "study_typed.toml"
    typed.write_text(text.replace("[analysis]\n", "[analysis]\nbackend = 3\n", 1))
    result = _invoke("fit", typed, "--population", "thalamus", "--stage", "expert")
    assert result.exit_code == 1 and "[analysis] backend must be a string" in result.stderr


def test_fit_errors(tiny_study, tmp_path):
    folder, _ = tiny_study
    toml = folder / "study.toml"
    args = ("fit", toml, "--population", "thalamus", "--stage", "expert")
    result = _invoke(*args, "--out", tmp_path, "--force")
    assert result.exit_code == 1 and "is a directory" in result.stderr
    assert "Fitting" not in result.output
    result = _invoke("fit", toml, "--population", "cerebellum", "--stage", "expert")
    assert result.exit_code == 1
    assert "cerebellum" in result.stderr and "thalamus" in result.stderr
    result = _invoke("fit", toml, "--population", "thalamus", "--stage", "intermediate")
    assert result.exit_code == 1 and "intermediate" in result.stderr
    result = _invoke("fit", toml, "--population", "thalamus")  # --stage missing
    assert result.exit_code == 2
    result = _invoke("fit", tmp_path / "nope.toml", "--population", "x", "--stage", "y")
    assert result.exit_code == 1 and "nope.toml" in result.stderr
    assert "Traceback" not in result.output


def test_run_errors(tmp_path, tiny_study):
    folder, _ = tiny_study
    result = _invoke("run", folder / "study.toml", "--out", tmp_path / "o", "--truth", folder)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()
    result = _invoke("run", tmp_path / "nope.toml", "--out", tmp_path / "o")
    assert result.exit_code == 1 and "nope.toml" in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[study]\nname = "x"\n\n[[sessions]]\nsubject = "a"\npath = "missing.nwb"\n')
    result = _invoke("run", bad, "--out", tmp_path / "o")
    assert result.exit_code == 1 and "missing.nwb" in result.stderr
    assert not (tmp_path / "o").exists()
    assert "Traceback" not in result.output
    # a study too small for 5 folds: the error names the analysis, the cell and the mouse
    small = tmp_path / "small"
    result = _invoke("simulate", "--out", small, "--mice", "2", "--days", "1,14", "--trials", "10")
    assert result.exit_code == 0, _fail_msg(result)
    result = _invoke("run", small / "study.toml", "--out", tmp_path / "o2")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert re.search(r"encoding_by_population: .*\bsubject 0 \(mouse01\)", result.stderr)


@pytest.mark.parametrize("command", ["run", "fit", "simulate", "report", "validate", "demo"])
def test_help(command):
    result = _invoke(command, "--help")
    assert result.exit_code == 0 and "Usage" in result.stdout
    assert command in _invoke("--help").stdout
