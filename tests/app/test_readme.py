"""The README stays true: its usage example runs as written, its commands are the real ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

INSTALL_AND_DEMO = 'pip install ".[nwb]" && sharedrep demo'
INSTALL_AND_TEST = 'pip install ".[test]" && pytest'


def _section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README has no '## {heading}' section"
    return match.group(1)


def _code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\s*\n(.*?)^```\s*$", text, re.M | re.S)


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


def test_usage_example_runs_as_written(readme, tmp_path, monkeypatch, capsys):
    blocks = _code_blocks(_section(readme, "Usage"), "python")
    assert len(blocks) == 1, "the Usage section must hold exactly one python block"
    code = blocks[0]
    assert len(code.strip().splitlines()) <= 20, "keep the usage example short"
    monkeypatch.chdir(tmp_path)  # it writes model.npz
    namespace: dict = {"__name__": "__readme__"}
    exec(compile(code, str(README) + ":Usage", "exec"), namespace)
    assert (tmp_path / "model.npz").is_file()
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3
    # the comments in the example tell the truth
    m = namespace["m"]
    assert out[0].split()[0] == "2" and m.n_shared_ == 2
    assert m.shared_axes_.shape == (12, 2)
    assert namespace["Z"].shape[1] == 2 and namespace["Y_hat"].shape[1] == 12
    assert 0.0 < float(out[1]) < 1.0 and float(out[2]) > 0.0


def test_setup_commands(readme):
    setup = _section(readme, "Set-up")
    commands = [b.strip() for b in _code_blocks(setup, "bash")]
    assert commands == [INSTALL_AND_DEMO, INSTALL_AND_TEST]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = INSTALL_AND_TEST.split("&&")[-1].strip()
    assert re.search(rf"^\s*(run\s+)?{re.escape(test_command)}\s*$", ci, re.M), (
        f".ci/run must run the README's test command `{test_command}`"
    )
    assert 'pip install ".[test]"' in ci


def test_readme_mentions_design_and_data(readme):
    assert "no public code" in readme
    # the model is documented inside the repository, and nothing links outside it
    assert "docs/method.md" in readme and "DESIGN.md" not in readme
    assert "](../" not in readme
    data = _section(readme, "Data")
    assert "../shared/data" in data and "never" in data and "copied" in data
