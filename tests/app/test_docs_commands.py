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

One thing is shared between documents, not adapted: a ``sharedrep`` command that an earlier
document already ran successfully, with the same words (its ``--out`` folder aside) on
inputs of identical content and into a folder that does not exist yet, is not run again;
its recorded result and a copy of what it wrote stand in for it (:func:`_reuse_key`).
The README and the user guide both simulate, validate, run and fit the same study (the
``run`` alone takes more than a minute), and every command is still run once.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shlex
import shutil
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
    assert (ROOT / script).is_file(), f"documented script {script} does not exist"
    res = _script_help(script)
    assert res.returncode == 0, f"{script} --help failed: {res.stderr[-2000:]}"
    for option in (w.split("=")[0] for w in words if w.startswith("--")):
        assert option in res.stdout, f"{script} has no option {option} (documented)"


@functools.cache
def _script_help(script: str) -> subprocess.CompletedProcess:
    """``python SCRIPT --help``, run once per script (several documents name the same one)."""
    return subprocess.run(
        [sys.executable, str(ROOT / script), "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


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


_OUT_OPTIONS = ("--out", "-o")
#: ``sharedrep`` commands that write nothing, and those that write only to their ``--out``.
_READ_ONLY = ("validate",)
_WRITE_TO_OUT = ("simulate", "run", "fit", "evaluate", "demo")


def _out_path(words: list[str]) -> str | None:
    """The value of a command's ``--out`` option, or None."""
    for i, word in enumerate(words):
        if word in _OUT_OPTIONS and i + 1 < len(words):
            return words[i + 1]
        for option in _OUT_OPTIONS:
            if word.startswith(f"{option}="):
                return word.split("=", 1)[1]
    return None


def _tree_digest(path: Path) -> str:
    """SHA-256 over every file under ``path`` (relative names and contents)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        digest.update(str(f.relative_to(path.parent)).encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()


def _reuse_key(words: list[str], quick: dict, cwd: Path) -> tuple | None:
    """What a ``sharedrep`` command's result depends on, or None when it is not shared.

    The command's words with quick settings (``--out``'s value replaced by a placeholder)
    and the content of every input it names: for a path ``a/b/...`` that exists in ``cwd``,
    every file under its top folder ``a`` (a study file and the data files next to it).
    Only commands that write nothing (``validate``) or write only to their ``--out``
    are shared; one whose ``--out`` already exists never is (it may refuse to write).
    """
    if words[:1] != ["sharedrep"] or len(words) < 2:
        return None
    if words[1] in quick:
        words = words + quick[words[1]]
    out = _out_path(words)
    if words[1] not in _READ_ONLY and (words[1] not in _WRITE_TO_OUT or out is None):
        return None  # e.g. `report` rewrites its folder, `run` without --out the study's
    if out is not None and (cwd / out).exists():
        return None
    key: list = [tuple("<OUT>" if w == out else w for w in words)]
    for word in words[2:]:
        if word == out or word.startswith("-"):
            continue
        top = Path(word).parts[0] if Path(word).parts else ""
        if top and not Path(word).is_absolute() and (cwd / word).exists():
            key.append((word, _tree_digest(cwd / top)))
    return tuple(key)


def _run_or_reuse(
    words: list[str], quick: dict, cwd: Path, done: dict, store: Path
) -> subprocess.CompletedProcess:
    """:func:`_run`, unless an earlier document ran the same command on the same inputs
    (then its result, and a copy of what it wrote to ``--out``)."""
    key = _reuse_key(words, quick, cwd)
    out = _out_path(words + quick.get(words[1], [])) if key is not None else None
    if key is not None and key in done:
        res, saved = done[key]
        if saved is not None:
            target = cwd / out
            target.parent.mkdir(parents=True, exist_ok=True)
            if saved.is_dir():
                shutil.copytree(saved, target)
            else:
                shutil.copy2(saved, target)
        return res
    res = _run(words, quick, cwd)
    if key is not None and res.returncode == 0:
        saved = None
        if out is not None and (cwd / out).exists():
            saved = store / f"{len(done)}" / Path(out).name
            saved.parent.mkdir(parents=True)
            if (cwd / out).is_dir():
                shutil.copytree(cwd / out, saved)
            else:
                shutil.copy2(cwd / out, saved)
        done[key] = (res, saved)
    return res


@pytest.fixture(scope="module")
def shared_runs(tmp_path_factory) -> tuple[dict, Path]:
    """Successful ``sharedrep`` commands of the documents run so far (:func:`_run_or_reuse`)."""
    return {}, tmp_path_factory.mktemp("shared-runs")


DOCUMENTED = _documented()


def test_the_documents_hold_commands():
    assert any(name.startswith("README.md") for name, _, _ in DOCUMENTED)
    assert any(name.startswith("docs/") for name, _, _ in DOCUMENTED)


@pytest.mark.parametrize("name, commands, quick", DOCUMENTED, ids=[d[0] for d in DOCUMENTED])
def test_documented_commands_run_as_written(name, commands, quick, tmp_path, shared_runs):
    done, store = shared_runs
    for command in commands:
        words = _without_install(_strip_comment(command))
        if not words:
            continue
        if _not_run(words):
            _check_script_options(words, tmp_path)
            continue
        res = _run_or_reuse(words, quick, tmp_path, done, store)
        assert res.returncode == 0, (
            f"{name}: `{command}` failed as written (exit {res.returncode}):\n"
            f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
        )
