"""Smoke tests of the benchmark scripts (no timing is asserted: they print ratios).

A tiny problem runs every optional stage of ``benchmarks/bench_fit.py`` once, so that a
change of the package's internals that breaks a benchmark fails here rather than when
someone measures.
"""

import importlib.util
import re


def _script(repo_root, name):
    spec = importlib.util.spec_from_file_location(name, repo_root / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _number(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not in output:\n{text}"
    return float(found.group(1))


def test_bench_fit_prints_every_stage(repo_root, capsys, monkeypatch):
    monkeypatch.setenv("SHAREDREP_NUM_THREADS", "1")  # --threads sets it; restored after
    bench_fit = _script(repo_root, "bench_fit")
    tiny = "--subjects 2 --units 12 --samples 600 --lags 1 --folds 2 --alphas 4 --behavior 3"
    flags = "--max-shared 2 --repeat 1 --trial-length 50 --threads 1"
    extra = "--floor --breakdown --compare-direct --compare-float32"
    assert bench_fit.main(f"{tiny} {flags} {extra}".split()) == 0
    out = capsys.readouterr().out
    ratio = _number(r"Ratio full CV fit / Gram pass = ([0-9.]+)", out)
    floor = _number(r"Floor \(statistics pass .* = ([0-9.]+)x the Gram pass", out)
    assert ratio > 0 and floor > 0
    assert "2 x 2 fold reductions (q = 24, Tridiagonal)" in out  # q = 12 units x 2 lags
    assert "stages (numpy backend" in out
    assert "float32 vs float64" in out and "same alpha and k: True" in out
    assert "lag-structured" in out
