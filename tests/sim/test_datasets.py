"""Real data: the monkey reaching example (skipped when ../shared/data is absent)."""

import importlib.util

import numpy as np
import pytest

from conftest import _MISSING, REPO, find_monkey_reach
from sharedrep.sim.datasets import data_root, load_monkey_reach, reach_trials

DATA = find_monkey_reach()
needs_data = pytest.mark.skipif(DATA is None, reason=_MISSING)


def _example():
    spec = importlib.util.spec_from_file_location(
        "monkey_reach", REPO / "examples" / "monkey_reach.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_data_gives_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="SHAREDREP_DATA"):
        load_monkey_reach(tmp_path / "nowhere")
    (tmp_path / "monkey_reach").mkdir()
    with pytest.raises(FileNotFoundError, match="chewie_demo.mat is missing"):
        load_monkey_reach(tmp_path)
    (tmp_path / "monkey_reach" / "chewie_demo.mat").write_bytes(b"not a mat file")
    with pytest.raises(ValueError, match="not a readable MATLAB file"):
        load_monkey_reach(tmp_path / "monkey_reach")


def test_reach_trials():
    target = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    vel = np.array([[0, 0], [1, 0], [2, 0], [3, 0], [0, 0], [1, 0], [9, 9], [10, 9]], float)
    assert reach_trials(target, vel, jump=None).tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert reach_trials(target, vel, jump=3.0).tolist() == [0, 0, 0, 0, 1, 1, 2, 2]


@needs_data
def test_loader(monkeypatch):
    assert data_root("monkey_reach", DATA) == DATA
    monkeypatch.setenv("SHAREDREP_DATA", str(DATA.parent))
    assert data_root("monkey_reach") == DATA
    recs = load_monkey_reach(DATA)
    assert [r.name for r in recs] == ["C_train", "C_test", "M_train", "M_test"]
    shapes = [r.neural.shape for r in recs]
    assert shapes == [(1200, 71), (1818, 71), (623, 174), (803, 187)]
    for r in recs:
        assert r.behavior.shape == (r.neural.shape[0], 2)
        assert r.target.shape == r.trial.shape == (r.neural.shape[0],)
        assert np.all(np.diff(r.trial) >= 0) and r.n_trials > 20
    # monkey C: reaches are 31 bins (a few shorter ones at block edges)
    lengths = np.bincount(recs[0].trial)
    assert np.median(lengths) == 31


@needs_data
def test_example_runs_and_reports():
    ex = _example()
    res = ex.run(
        DATA,
        lags=0,
        n_perm=3,
        n_perm_transfer=1,
        fractions=(0.5,),
        heldout=[2],
        progress=False,
    )
    perm = res["permutation"]
    assert list(perm["dimension"]) == [0, 1]
    # velocity is strongly encoded in motor cortex
    assert (perm["r2_heldout"] > 0.3).all()
    assert np.allclose(perm["p_value"], 1 / 4)
    tr = res["transfer"]
    assert list(tr["recording"]) == ["M_train"]
    assert np.isfinite(tr[["shared", "ridge"]].to_numpy()).all()
    assert tr[["shared", "ridge"]].to_numpy().min() > 0.1
    assert np.allclose(tr["p_value_shared"], 1 / 2)
    assert list(res["recordings"]["recording"]) == ["C_train", "C_test", "M_train", "M_test"]
    md = ex.markdown_table(tr)
    assert md.startswith("| recording | fraction |")


@needs_data
@pytest.mark.slow
def test_example_full_settings():
    ex = _example()
    res = ex.run(DATA, n_perm=19, n_perm_transfer=9, progress=False)
    assert (res["permutation"]["p_value"] == 1 / 20).all()
    tr = res["transfer"]
    assert len(tr) == 4 * 3
    best = tr[tr["fraction"] == 0.5]
    assert (best[["shared", "ridge"]] > 0.2).all().all()
    assert (best["p_value_shared"] == 1 / 10).all()


def test_data_resolve_from_the_working_folder_after_a_normal_install(tmp_path, monkeypatch):
    # an installed package cannot find ../shared/data from its own location (site-packages):
    # the folder the user works in, and its parents, are searched as well
    from sharedrep.sim import datasets

    monkeypatch.delenv("SHAREDREP_DATA", raising=False)
    monkeypatch.setattr(
        datasets, "__file__", str(tmp_path / "site" / "sharedrep" / "sim" / "x.py")
    )
    data = tmp_path / "shared" / "data" / "monkey_reach"
    data.mkdir(parents=True)
    project = tmp_path / "myproject" / "analysis"
    project.mkdir(parents=True)
    monkeypatch.chdir(project)  # two levels below the folder holding shared/data
    assert data_root("monkey_reach") == data.resolve()
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    (data.parent / "monkey_reach").rename(tmp_path / "moved")
    with pytest.raises(FileNotFoundError, match="SHAREDREP_DATA"):
        data_root("monkey_reach")


def test_source_checkout_data_found_from_any_working_folder(tmp_path, monkeypatch):
    # a source checkout finds <project root>/../shared/data wherever the user works
    from sharedrep.sim import datasets

    monkeypatch.delenv("SHAREDREP_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    if datasets._source_project_root() is not None:  # editable install of this checkout
        assert REPO.parent / "shared" / "data" in datasets._candidates()
    # (installed into site-packages, as CI does, the package cannot know its checkout: the
    # rest of this test points the module at a checkout by hand)

    project = tmp_path / "lab" / "proj"
    (project / "src" / "sharedrep" / "sim").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.setattr(datasets, "__file__", str(project / "src/sharedrep/sim/datasets.py"))
    data = tmp_path / "lab" / "shared" / "data" / "monkey_reach"
    data.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not inside the project, nor next to lab/shared
    assert data_root("monkey_reach") == data.resolve()
    (project / "pyproject.toml").unlink()  # not a source checkout: not searched there
    with pytest.raises(FileNotFoundError, match="SHAREDREP_DATA"):
        data_root("monkey_reach")
