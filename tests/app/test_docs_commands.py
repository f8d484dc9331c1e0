"""Every shell command in the README and docs/ runs as written.

The fenced ``bash`` blocks of ``README.md`` and ``docs/*.md`` are read, and their commands run
in order, one temporary folder per document (a later command may use what an earlier one
wrote: ``simulate`` -> ``validate`` -> ``run`` -> ``report``). A command that fails as
written fails this test.

Only three things are adapted, each visible in :data:`QUICK` or :data:`NOT_RUN`:

- the quick settings the documents themselves name (a ``# quick: ...`` comment line in the
  block lists the options to add to a command, e.g. ``--quick`` for ``demo``);
- ``pip install ... &&``: the package is already installed in the test environment (the
  extra must exist in ``pyproject.toml``); the README's own test command ``pytest`` is what
  runs this very test (and ``.ci/run`` runs it, see ``test_readme.py``);
- long benchmark and GPU commands (minutes to hours): their script must exist and accept
  every option the document passes (checked against the script's ``--help``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# commands that are not run, and why (checked for their script and options instead)
NOT_RUN = {
    "benchmarks/": "a benchmark (minutes to hours on 2 cores)",
    "examples/monkey_reach.py": "the real-data example (minutes; tests/sim/test_datasets.py)",
    "examples/evaluate_monkey_reach.py": "the real-data evaluation (minutes; its test is slow)",
    "-m pytest": "a test run (this suite is the test run)",
}
_TIMEOUT = 900


def _blocks(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return re.findall(r"^```(?:bash|sh|shell|console)\s*\n(.*?)^```\s*$", text, re.M | re.S)


def _commands(block: str) -> tuple[list[str], dict[str, list[str]]]:
    """The block's commands (continuation lines joined) and its quick settings.

    ``# quick: demo --quick; simulate --mice 3`` maps a command word to options to add.
    """
    quick: dict[str, list[str]] = {}
    commands, current = [], ""
    for raw in block.splitlines():
        line = raw.strip()
        if line.startswith("# quick:"):
            for part in line.removeprefix("# quick:").split(";"):
                words = shlex.split(part)
                if words:
                    quick[words[0]] = words[1:]
            continue
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("$ ")
        current = f"{current} {line.rstrip(chr(92)).strip()}".strip()
        if not line.endswith("\\"):
            commands.append(current)
            current = ""
    return commands, quick


def _strip_comment(command: str) -> list[str]:
    return shlex.split(command, comments=True)


def _documented() -> list[tuple[str, list[str], dict]]:
    out = []
    for path in DOCUMENTS:
        for i, block in enumerate(_blocks(path)):
            commands, quick = _commands(block)
            if commands:
                out.append((f"{path.relative_to(ROOT)}#{i}", commands, quick))
    return out


def _extras() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(meta["project"].get("optional-dependencies", {}))


def _without_install(words: list[str]) -> list[str]:
    """``pip install ".[x]" && cmd`` -> ``cmd`` (the extras must exist)."""
    while words[:2] == ["pip", "install"]:
        end = words.index("&&") if "&&" in words else len(words)
        for spec in words[2:end]:
            extras = re.findall(r"\[([^\]]+)\]", spec)
            for extra in ",".join(extras).split(","):
                assert not extra or extra in _extras(), f"no extra [{extra}] in pyproject.toml"
        words = words[end + 1 :]
    return words


def _not_run(words: list[str]) -> str | None:
    joined = " ".join(words)
    if words[:1] == ["pytest"]:
        return "the README's test command (this suite)"
    if words == ["sharedrep", "demo"]:
        return "the README's set-up command: .ci/run runs it as written"
    for key, why in NOT_RUN.items():
        if key in joined:
            return why
    return None


def _check_script_options(words: list[str], cwd: Path) -> None:
    """A command not run: its script exists and its ``--help`` lists every option used."""
    if words[:1] != ["python"] or len(words) < 2 or not words[1].endswith(".py"):
        return  # e.g. `python -m pytest ...`: nothing to check without running it
    script = words[1]
    path = ROOT / script
    assert path.is_file(), f"documented script {script} does not exist"
    res = subprocess.run(
        [sys.executable, str(path), "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert res.returncode == 0, f"{script} --help failed: {res.stderr[-2000:]}"
    for option in (w.split("=")[0] for w in words if w.startswith("--")):
        assert option in res.stdout, f"{script} has no option {option} (documented)"


def _run(words: list[str], quick: dict, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["MPLBACKEND"] = "Agg"
    if words[:1] == ["sharedrep"] and len(words) > 1 and words[1] in quick:
        words = words + quick[words[1]]
    elif words[:1] == ["python"] and len(words) > 1:
        words = [sys.executable, *words[1:]]
    if words[:1] == ["sharedrep"]:
        words = [sys.executable, "-m", "sharedrep", *words[1:]]
    return subprocess.run(
        words, capture_output=True, text=True, cwd=cwd, timeout=_TIMEOUT, env=env
    )


DOCUMENTED = _documented()


def test_the_documents_hold_commands():
    assert any(name.startswith("README.md") for name, _, _ in DOCUMENTED)
    assert any(name.startswith("docs/") for name, _, _ in DOCUMENTED)


@pytest.mark.parametrize("name, commands, quick", DOCUMENTED, ids=[d[0] for d in DOCUMENTED])
def test_documented_commands_run_as_written(name, commands, quick, tmp_path):
    for command in commands:
        words = _without_install(_strip_comment(command))
        if not words:
            continue
        if _not_run(words):
            _check_script_options(words, tmp_path)
            continue
        res = _run(words, quick, tmp_path)
        assert res.returncode == 0, (
            f"{name}: `{command}` failed as written (exit {res.returncode}):\n"
            f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
        )
