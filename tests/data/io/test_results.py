"""Atomic, non-clobbering result writers."""

import json

import numpy as np
import pandas as pd
import pytest

from sharedrep.data.io import (
    DataFormatError,
    ResultsFolder,
    atomic_write,
    read_arrays,
    read_json,
    read_table,
    write_arrays,
    write_json,
    write_table,
)


def _no_temp_files(folder):
    return not [p for p in folder.rglob(".*")]


def test_table_round_trip_and_overwrite(tmp_path):
    df = pd.DataFrame({"subject": ["m1", "m2"], "r2": [0.5, np.nan], "k": [1, 2]})
    p = write_table(df, tmp_path / "scores.csv")
    pd.testing.assert_frame_equal(read_table(p), df)
    with pytest.raises(FileExistsError, match="--force"):
        write_table(df, p)
    write_table(df.iloc[:1], p, overwrite=True)
    assert len(read_table(p)) == 1
    write_table(df, tmp_path / "scores.tsv")
    assert read_table(tmp_path / "scores.tsv").shape == (2, 3)
    with pytest.raises(ValueError, match="unsupported table format"):
        write_table(df, tmp_path / "x.xlsx")
    assert _no_temp_files(tmp_path)


def test_table_types_survive_the_csv(tmp_path):
    from sharedrep.data.io.results import table_layout

    df = pd.DataFrame(
        {
            "subject": ["001", "010"],
            "n": pd.array([3, None], dtype="Int64"),
            "ok": [True, False],
            "r2": [0.25, np.nan],
        }
    )
    p = write_table(df, tmp_path / "t.csv")
    pd.testing.assert_frame_equal(read_table(p, layout=table_layout(df)), df)
    plain = read_table(p)  # no layout: no lossy inference either
    assert list(plain["subject"]) == ["001", "010"]
    assert plain["r2"].dtype == float and plain["ok"].tolist() == [True, False]
    empty = write_table(pd.DataFrame(index=range(3)), tmp_path / "e.csv")
    assert read_table(empty, layout=table_layout(pd.DataFrame(index=range(3)))).shape == (3, 0)


def test_parquet_if_available(tmp_path):
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"a": [1.0, 2.0]})
    p = write_table(df, tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(read_table(p), df)


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_arrays_round_trip(tmp_path, suffix):
    if suffix == ".h5":
        pytest.importorskip("h5py")
    arrs = {
        "axes": np.arange(6.0).reshape(3, 2),
        "ids": np.array([3, 4]),
        "names": np.array(["a", "bb"]),
    }
    p = write_arrays(
        arrs, tmp_path / f"model{suffix}", attrs={"alpha": np.float64(0.1), "k": 2, "nan": np.nan}
    )
    back, attrs = read_arrays(p)
    for k, v in arrs.items():
        assert np.array_equal(back[k], v)
    assert attrs == {"alpha": 0.1, "k": 2, "nan": None}
    with pytest.raises(FileExistsError):
        write_arrays(arrs, p)
    with pytest.raises(ValueError, match="dtype object"):
        write_arrays({"x": np.array([{}], dtype=object)}, tmp_path / f"o{suffix}")
    with pytest.raises(ValueError, match="invalid array name"):
        write_arrays({"a/b": np.zeros(1)}, tmp_path / f"n{suffix}")
    assert _no_temp_files(tmp_path)


def test_json(tmp_path):
    obj = {"x": np.arange(3), "y": np.float32(1.5), "z": [np.nan, np.int64(2)], "p": tmp_path}
    p = write_json(obj, tmp_path / "r.json")
    assert read_json(p) == {"x": [0, 1, 2], "y": 1.5, "z": [None, 2], "p": str(tmp_path)}
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(DataFormatError, match="bad.json: not valid JSON"):
        read_json(bad)
    with pytest.raises(TypeError, match="cannot convert"):
        write_json({"f": object()}, tmp_path / "o.json")


def test_atomic_write_failure_leaves_nothing(tmp_path):
    target = tmp_path / "sub" / "out.txt"

    def boom(tmp):
        tmp.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, boom)
    assert not target.exists() and list((tmp_path / "sub").iterdir()) == []
    target.write_text("old")

    def ok(tmp):
        tmp.write_text("new")

    with pytest.raises(FileExistsError):
        atomic_write(target, ok)
    assert target.read_text() == "old"
    atomic_write(target, ok, overwrite=True)
    assert target.read_text() == "new"


def test_results_folder(tmp_path):
    out = ResultsFolder(tmp_path / "res", table_format="csv", array_format="npz")
    p1 = out.table("cv", pd.DataFrame({"a": [1]}))
    p2 = out.arrays("model", {"w": np.ones(2)}, attrs={"n": 1})
    p3 = out.json("summary", {"ok": True})
    assert [p.name for p in (p1, p2, p3)] == ["cv.csv", "model.npz", "summary.json"]
    assert json.loads(p3.read_text()) == {"ok": True}
    with pytest.raises(FileExistsError):
        out.table("cv", pd.DataFrame({"a": [2]}))
    ResultsFolder(tmp_path / "res", overwrite=True, table_format="csv").table(
        "cv", pd.DataFrame({"a": [2]})
    )
    with pytest.raises(ValueError, match="inside the folder"):
        out.file("../escape")
    auto = ResultsFolder(tmp_path / "auto")
    assert auto.table_format in ("csv", "parquet") and auto.array_format in ("h5", "npz")


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_arrays_with_names_of_savez_arguments(tmp_path, suffix):
    if suffix == ".h5":
        pytest.importorskip("h5py")
    arrs = {
        "allow_pickle": np.arange(3),
        "file": np.ones((2, 2)),
        "args": np.array([1.5]),
        "kwds": np.array(["x"]),
    }
    back, attrs = read_arrays(write_arrays(arrs, tmp_path / f"r{suffix}", attrs={"k": 1}))
    assert sorted(back) == sorted(arrs) and attrs == {"k": 1}
    for k, v in arrs.items():
        assert np.array_equal(back[k], v) and back[k].dtype == v.dtype


def test_string_arrays_have_the_same_dtype_in_every_format(tmp_path):
    pytest.importorskip("h5py")
    arrs = {"names": np.array(["a", "bb", "ccc"]), "one": np.array("solo")}
    kinds = {}
    for suffix in (".npz", ".h5"):
        back, _ = read_arrays(write_arrays(arrs, tmp_path / f"s{suffix}"))
        for k, v in arrs.items():
            assert np.array_equal(back[k], v)
        kinds[suffix] = {k: (a.dtype.kind, a.shape) for k, a in back.items()}
    assert kinds[".npz"] == kinds[".h5"] == {"names": ("U", (3,)), "one": ("U", ())}
