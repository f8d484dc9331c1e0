"""Fail before work: output folders are checked before any data are loaded or computed.

Every writing command (``demo``, ``simulate``, ``run``, ``fit``, ``report``) refuses an
output folder that cannot be created or written, or that holds files it would replace
without ``--force``, *before* its first slow step: here that step is replaced by one
that fails the test if it is reached. Messages name the folder and speak command-line
options (``--force``), never Python keywords (``overwrite=True``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sharedrep.app import _console
from sharedrep.app.cli import app

runner = CliRunner()

needs_permissions = pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0,
    reason="root ignores file permissions (a read-only folder stays writable for root)",
)


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args], prog_name="sharedrep")


class Reached(Exception):
    """Raised by a slow step that a failing check should have prevented."""


def _forbid(monkeypatch, target: str, name: str) -> None:
    def fail(*args, **kwargs):
        raise Reached(f"{target}.{name} was reached before the output check")

    monkeypatch.setattr(target + "." + name, fail)


@pytest.fixture
def forbid_work(monkeypatch):
    """Make every slow first step of the commands fail the test if it is reached."""
    _forbid(monkeypatch, "sharedrep.data.studyfile", "load_study")
    _forbid(monkeypatch, "sharedrep.app.demo", "_recovery_step")
    _forbid(monkeypatch, "sharedrep.sim.learning_study", "simulate_study")
    _forbid(monkeypatch, "sharedrep.app.report", "rebuild_report")


@pytest.fixture
def read_only(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)  # 0o550
    yield folder
    folder.chmod(0o755)


@pytest.fixture
def study(tmp_path) -> Path:
    """A study file (its sessions are never loaded by these tests)."""
    path = tmp_path / "study.toml"
    path.write_text(
        '[study]\nname = "s"\n\n[analysis]\noutput = "results"\n\n'
        '[[sessions]]\nsubject = "m1"\nday = 1\nstage = "expert"\npopulation = "thalamus"\n'
        'path = "m1.nwb"\nformat = "nwb"\n',
        encoding="utf-8",
    )
    return path


def _commands(study: Path, out: Path) -> dict[str, tuple]:
    """Each writing command with ``out`` as its output folder (a file inside it for fit)."""
    return {
        "demo": ("demo", "--out", out),
        "simulate": ("simulate", "--out", out),
        "run": ("run", study, "--out", out),
        "fit": ("fit", study, "-p", "thalamus", "-s", "expert", "--out", out / "model.npz"),
    }


def _assert_refused(result, folder: Path, *words: str) -> None:
    assert result.exit_code == 1, result.output + repr(result.exception)
    assert not isinstance(result.exception, Reached), result.exception
    assert str(folder) in result.stderr.replace("\n", "")
    for word in words:
        assert word in result.stderr
    assert "Traceback" not in result.output and "overwrite=True" not in result.output


@needs_permissions
@pytest.mark.parametrize("command", ["demo", "simulate", "run", "fit"])
def test_read_only_folder_is_refused_first(command, study, read_only, forbid_work):
    out = read_only / "out"
    result = _invoke(*_commands(study, out)[command])
    _assert_refused(result, out, "cannot write")
    assert not out.exists()


@needs_permissions
def test_report_into_read_only_results_folder(tmp_path, forbid_work):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "results.json").write_text("{}")
    folder.chmod(0o555)
    try:
        result = _invoke("report", folder)
    finally:
        folder.chmod(0o755)
    _assert_refused(result, folder, "cannot write")


@pytest.mark.parametrize("command", ["demo", "simulate", "run", "fit"])
def test_uncreatable_folder_is_refused_first(command, study, tmp_path, forbid_work):
    """A folder below a file cannot be created (for root too)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = blocker / "out"
    result = _invoke(*_commands(study, out)[command])
    _assert_refused(result, out, "cannot write")


@pytest.mark.parametrize("command", ["demo", "simulate", "run", "fit"])
def test_unwritable_folder_is_refused_first(command, study, tmp_path, forbid_work, monkeypatch):
    """The probe file cannot be written (permission denied, read-only file system)."""

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_console.tempfile, "mkstemp", denied)
    out = tmp_path / "deep" / "out"
    result = _invoke(*_commands(study, out)[command])
    _assert_refused(result, out, "cannot write", "Permission denied")
    assert not (tmp_path / "deep").exists()  # the check leaves nothing behind


def test_check_leaves_a_writable_folder_as_it_was(tmp_path):
    out = tmp_path / "a" / "b"
    _console.check_out_dir(out, force=False)
    assert not (tmp_path / "a").exists()
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("mine")
    _console.check_out_dir(out, force=True)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(
    ("command", "existing"),
    [
        ("demo", ["summary.json", "notes.txt"]),
        ("simulate", ["study.toml", "truth.json"]),
        ("run", ["report.html", "results.json", "figures/"]),
    ],
)
def test_existing_outputs_are_listed_and_refused_first(
    command, existing, study, tmp_path, forbid_work
):
    out = tmp_path / "out"
    out.mkdir()
    for name in existing:
        if name.endswith("/"):
            (out / name).mkdir()
        else:
            (out / name).write_text("old")
    result = _invoke(*_commands(study, out)[command])
    _assert_refused(result, out, "not empty", "--force")
    outputs = [n for n in existing if n != "notes.txt"]
    assert "would replace " + ", ".join(sorted(outputs)) in result.stderr.replace("\n", " ")
    assert all((out / n).exists() for n in existing)  # nothing touched


def test_run_checks_the_study_files_output_folder_first(study, tmp_path, forbid_work):
    """Without --out, the folder named by [analysis] output is checked before loading."""
    results = tmp_path / "results"  # relative to the study file
    results.mkdir()
    (results / "report.html").write_text("old")
    result = _invoke("run", study)
    _assert_refused(result, results, "would replace report.html", "--force")
    study.write_text(study.read_text().replace('output = "results"\n', ""))
    result = _invoke("run", study)
    assert result.exit_code == 1 and "no --out given" in result.stderr
    assert not isinstance(result.exception, Reached)


def test_fit_existing_model_is_refused_first(study, tmp_path, forbid_work):
    model = tmp_path / "model.npz"
    model.write_bytes(b"old")
    result = _invoke("fit", study, "-p", "thalamus", "-s", "expert", "--out", model)
    _assert_refused(result, model, "--force")


# ------------------------------------------------------------------ messages


def test_library_messages_are_reworded_for_the_command_line():
    msg = "x.json already exists; pass overwrite=True (CLI: --force) to replace it"
    assert _console.cli_message(msg) == "x.json already exists; pass --force to replace it"
    msg = "model.npz exists; pass overwrite=True to replace it"
    assert _console.cli_message(msg) == "model.npz exists; pass --force to replace it"


def test_file_exists_error_reaches_the_user_as_force(tmp_path, capsys):
    import typer

    from sharedrep.utils.files import atomic_write

    target = tmp_path / "x.json"
    target.write_text("{}")
    with pytest.raises(typer.Exit) as exc, _console.user_errors():
        atomic_write(target, lambda tmp: tmp.write_text("[]"))
    assert exc.value.exit_code == 1
    err = capsys.readouterr().err
    assert "--force" in err and "overwrite=True" not in err and str(target) in err


def test_report_replaces_its_own_report_but_not_another_file(tmp_path):
    """`sharedrep report RESULTS` right after `run`: rebuilds the report run wrote."""
    import pandas as pd

    from sharedrep.app.report import write_report
    from sharedrep.study._result import AnalysisResult

    result = AnalysisResult(
        name="a", table=pd.DataFrame({"x": [1.0]}), figure=None, summary={}, description="d"
    )
    out = tmp_path / "results"
    write_report({"a": result}, out, settings=None)
    first = (out / "report.html").read_text(encoding="utf-8")
    for _ in range(2):  # after run, and again after report
        cli = _invoke("report", out)
        assert cli.exit_code == 0, cli.output
        assert (out / "report.html").read_text(encoding="utf-8") == first
    (out / "report.html").write_text("<p>my own notes</p>", encoding="utf-8")
    cli = _invoke("report", out)
    assert cli.exit_code == 1
    assert "already exists" in cli.stderr and "--force" in cli.stderr
    assert "overwrite=True" not in cli.stderr
    assert (out / "report.html").read_text(encoding="utf-8") == "<p>my own notes</p>"
    cli = _invoke("report", out, "--force")
    assert cli.exit_code == 0 and (out / "report.html").read_text(encoding="utf-8") == first
