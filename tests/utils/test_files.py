"""``atomic_write``: no partial files, no silent replacement, the user's umask respected."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from sharedrep.utils import files
from sharedrep.utils.files import atomic_write, current_umask

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(saved)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _write_text(tmp: Path) -> None:
    tmp.write_text("x", encoding="utf-8")


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_mode_follows_the_umask_like_open(tmp_path, umask, mask):
    umask(mask)
    written = atomic_write(tmp_path / "summary.json", _write_text)
    with open(tmp_path / "plain.txt", "w", encoding="utf-8") as fh:  # the reference
        fh.write("x")
    assert _mode(written) == 0o666 & ~mask == _mode(tmp_path / "plain.txt")


def test_mode_022_is_0644_and_077_is_0600(tmp_path, umask):
    umask(0o022)
    assert _mode(atomic_write(tmp_path / "a.json", _write_text)) == 0o644
    umask(0o077)
    assert _mode(atomic_write(tmp_path / "b.json", _write_text)) == 0o600


def test_current_umask_without_proc(tmp_path, umask, monkeypatch):
    """Where /proc is missing the mask is read with os.umask and left unchanged."""
    umask(0o027)

    def no_proc(*args, **kwargs):
        raise FileNotFoundError("no /proc here")

    monkeypatch.setattr(files, "open", no_proc, raising=False)
    assert current_umask() == 0o027
    assert current_umask() == 0o027  # restored after reading
    monkeypatch.undo()
    assert current_umask() == 0o027


def test_saved_model_respects_the_umask(tmp_path, umask):
    from sharedrep.core.estimator import ShaReD
    from sharedrep.sim.generic import simulate

    d = simulate(n_subjects=2, n_samples=300, n_units=6, n_behavior=4, n_shared=1, seed=0)
    model = ShaReD(n_shared=1, alpha=1.0, lags=1, cv=None).fit(d.neural, d.behavior)
    umask(0o022)
    assert _mode(model.save(tmp_path / "model.npz")) == 0o644
    umask(0o077)
    assert _mode(model.save(tmp_path / "private.npz")) == 0o600


def test_refuses_to_replace_without_overwrite(tmp_path):
    target = tmp_path / "r.json"
    atomic_write(target, _write_text)
    with pytest.raises(FileExistsError, match="already exists"):
        atomic_write(target, lambda tmp: tmp.write_text("y", encoding="utf-8"))
    assert target.read_text(encoding="utf-8") == "x"
    atomic_write(target, lambda tmp: tmp.write_text("y", encoding="utf-8"), overwrite=True)
    assert target.read_text(encoding="utf-8") == "y"


def test_failed_write_leaves_nothing(tmp_path):
    def broken(tmp: Path) -> None:
        tmp.write_bytes(np.arange(3).tobytes())
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError, match="writer failed"):
        atomic_write(tmp_path / "sub" / "m.npz", broken)
    assert list((tmp_path / "sub").iterdir()) == []
