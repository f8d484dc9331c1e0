"""The command-line interface: ``sharedrep demo`` and the app's conventions."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from sharedrep.app.cli import app

runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, list(args), prog_name="sharedrep")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "demo"
    result = _invoke("demo", "--out", str(out), "--seed", "0", "--quick")
    return result, out


def test_demo_succeeds_and_writes_the_report(demo_run):
    result, out = demo_run
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert {"report.html", "results.json", "summary.json", "figures", "tables", "data"} == {
        p.name for p in out.iterdir()
    }
    summary = json.loads((out / "summary.json").read_text())
    figures = {p.name for p in (out / "figures").iterdir()}
    assert summary["figures"] == sorted(f"figures/{name}" for name in figures)
    for stem in ("shared_recovery", "shared_recovery-cv_scores", "shared_recovery-heldout_r2"):
        assert {f"{stem}.png", f"{stem}.svg"} <= figures
    for name in summary["study"]["analyses"]:
        assert {f"{name}.png", f"{name}.svg"} <= figures
        assert (out / "tables" / f"{name}.csv").is_file()
    for name in figures:
        assert (out / "figures" / name).stat().st_size > 1000
    # the study went through NWB files and a study file, loaded back
    assert (out / "data" / "study.toml").is_file() and (out / "data" / "truth.json").is_file()
    n_sessions = summary["study"]["n_sessions"]
    assert len(list((out / "data" / "nwb").glob("*.nwb"))) == n_sessions
    meta = json.loads((out / "results.json").read_text())
    assert len(meta["data_files"]) == n_sessions + 1  # every NWB file + study.toml, checksummed
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Ground truth" in html and "data:image/png;base64," in html
    for text in ("selected alpha", "max principal angle", "per-subject ridge decoder"):
        assert text in result.stdout
    assert "ground-truth claims recovered" in result.stdout
    assert result.stderr == ""


def test_demo_recovers_the_truth(demo_run):
    result, out = demo_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_shared"] == summary["true_n_shared"] == 2
    assert summary["max_angle_deg"] < 15.0
    assert f"{summary['max_angle_deg']:.2f}" in result.stdout
    assert all(r2 > 0.5 for r2 in summary["cv_r2_dim"])
    new = summary["new_subject"]
    assert new["shared_r2"] > new["ridge_r2"]
    # few units, 12 features, 2 shared dimensions: the inner CV keeps a pooled decoder
    assert new["decoder"] in ("shared", "shared+private")
    assert new["decoder_r2"] > new["ridge_r2"]
    assert set(new["decoder_inner_cv_r2"]) == {"shared", "shared+private", "own"}
    assert new["calibration_samples"] <= 0.1 * summary["simulation"]["n_samples"]
    assert summary["figures"] and "summary.json" not in summary["figures"]


def test_demo_recovers_the_study_ground_truth(demo_run):
    """Thalamus encodes best in experts, its lag shifts earlier, driven units overlap
    encoding units more in experts, silencing impairs movement: each claim recovered."""
    result, out = demo_run
    study = json.loads((out / "summary.json").read_text())["study"]
    checks = study["truth_checks"]
    claims = " | ".join(c["claim"] for c in checks)
    for words in (
        "encodes the learned movement best in experts",
        "peak lag shifts earlier",
        "overlap movement-encoding units more in experts",
        "impairs movement",
    ):
        assert words in claims
    failed = [c for c in checks if not c["passed"]]
    assert not failed, failed
    assert study["all_recovered"] is True
    assert f"{len(checks)} of {len(checks)} ground-truth claims recovered" in result.stdout
    html = (out / "report.html").read_text(encoding="utf-8")
    assert f"All {len(checks)} ground-truth claims were recovered." in html


def test_demo_refuses_non_empty_out_without_force(demo_run):
    _, out = demo_run
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    result = _invoke("demo", "--out", str(out), "--no-plots")
    assert result.exit_code == 1
    assert "not empty" in result.stderr and "--force" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_demo_force_and_no_plots(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = _invoke(
        "demo",
        "--out",
        str(out),
        "--no-plots",
        "--no-study",
        "--force",
        "--subjects",
        "3",
        "--seed",
        "1",
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert {p.name for p in out.iterdir()} == {"keep.txt", "summary.json"}
    assert (out / "keep.txt").read_text() == "mine"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_subjects"] == 3 and summary["figures"] == []
    assert len(summary["units_per_subject"]) == 3


def test_demo_out_is_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    result = _invoke("demo", "--out", str(f))
    assert result.exit_code == 1
    assert "not a directory" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("demo", "--subjects", "1"),
        ("demo", "--seed", "-3"),
        ("demo", "--seed", "abc"),
        ("demo", "--bogus"),
        ("no-such-command",),
    ],
)
def test_usage_errors_exit_2(args, tmp_path):
    result = _invoke(*args, *(("--out", str(tmp_path / "x")) if args[0] == "demo" else ()))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_help_everywhere():
    for args in (("--help",), ("demo", "--help"), ("-h",)):
        result = _invoke(*args)
        assert result.exit_code == 0
        assert "Usage" in result.stdout
    assert "demo" in _invoke("--help").stdout
    demo_help = _invoke("demo", "--help").stdout
    for option in ("--out", "--seed", "--subjects", "--no-plots", "--force", "--quick"):
        assert option in demo_help
    no_args = _invoke()
    assert "Usage" in no_args.output  # no command: the help is shown


def test_version():
    from sharedrep import __version__

    result = _invoke("--version")
    assert result.exit_code == 0 and __version__ in result.stdout


def test_python_dash_m_help():
    proc = subprocess.run(
        [sys.executable, "-m", "sharedrep", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "demo" in proc.stdout and "Usage" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "sharedrep", "demo", "--out", "/dev/null/x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "Error" in proc.stderr and "Traceback" not in proc.stderr


def test_validate_reports_every_problem(tmp_path):
    from typer.testing import CliRunner

    from sharedrep.app.cli import app

    study = tmp_path / "study.toml"
    study.write_text(
        '[study]\nname = "x"\nbogus_key = 1\n\n'
        '[[sessions]]\nsubject = "m1"\nday = 1\nstage = "novice"\npopulation = "m1"\n'
        'path = "missing_a.nwb"\nformat = "nwb"\n\n'
        '[[sessions]]\nsubject = "m2"\nday = 1\nstage = "novice"\npopulation = "m1"\n'
        'path = "missing_b.nwb"\nformat = "nwb"\n'
    )
    result = CliRunner().invoke(app, ["validate", str(study)])
    assert result.exit_code == 1
    out = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "missing_a.nwb" in out and "missing_b.nwb" in out and "bogus_key" in out
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "nope.toml")])
    assert result.exit_code == 1


def test_validate_help():
    from typer.testing import CliRunner

    from sharedrep.app.cli import app

    result = CliRunner().invoke(app, ["validate", "--help"])
    assert result.exit_code == 0 and "every problem" in result.output
