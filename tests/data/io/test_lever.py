"""Lever / analog traces from NPY and CSV."""

import numpy as np
import pandas as pd
import pytest

from sharedrep.data.io import DataFormatError, read_lever, read_trace


def test_csv_with_time_column(tmp_path):
    t = np.arange(0, 5, 0.01)
    p = tmp_path / "lever.csv"
    pd.DataFrame({"time": t, "lever": np.sin(t), "lick": np.cos(t)}).to_csv(p, index=False)
    tr = read_trace(p, units=["mm", "V"])
    assert tr.names == ["lever", "lick"] and tr.units == ["mm", "V"]
    assert np.allclose(tr.timestamps, t) and np.allclose(tr.values[:, 0], np.sin(t))
    one = read_lever(p, columns=["lever"], units="mm")
    assert one.values.shape == (500, 1)
    with pytest.raises(ValueError, match="exactly one time base"):
        read_trace(p, sampling_rate=100.0)


def test_npy_variants(tmp_path):
    v = np.random.default_rng(0).normal(size=300)
    p = tmp_path / "lever.npy"
    np.save(p, v)
    tr = read_trace(p, sampling_rate=100.0, start_time=2.0)
    assert tr.names == ["lever"] and tr.timestamps[0] == 2.0
    ts = tmp_path / "lever_times.npy"
    np.save(ts, np.arange(300) * 0.01 + 0.5)
    assert read_trace(p, timestamps=ts).timestamps[0] == 0.5
    both = tmp_path / "tv.npy"
    np.save(both, np.column_stack([np.arange(300) * 0.01, v, 2 * v]))
    tr = read_trace(both, time_column=0, names=["a", "b"])
    assert tr.names == ["a", "b"] and np.allclose(tr.values[:, 1], 2 * v)
    # columns= are indices of the file's columns, as the default names say
    tr = read_trace(both, time_column=0, columns=[2])
    assert tr.names == ["tv_2"] and np.allclose(tr.values[:, 0], 2 * v)
    with pytest.raises(DataFormatError, match="not the time column 0"):
        read_trace(both, time_column=0, columns=[0])
    with pytest.raises(ValueError, match="no time base"):
        read_trace(p)


def test_bad_traces(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_trace(tmp_path / "missing.csv")
    p = tmp_path / "nt.csv"
    pd.DataFrame({"time": [0.0, 0.2, 0.1], "lever": [1, 2, 3]}).to_csv(p, index=False)
    with pytest.raises(DataFormatError, match="nt.csv: timestamps are not strictly increasing"):
        read_trace(p)
    q = tmp_path / "nonnum.csv"
    pd.DataFrame({"time": [0.0, 0.1], "lever": ["a", "b"]}).to_csv(q, index=False)
    with pytest.raises(DataFormatError, match="non-numeric"):
        read_trace(q)
    r = tmp_path / "notime.csv"
    pd.DataFrame({"lever": [1.0, 2.0]}).to_csv(r, index=False)
    with pytest.raises(DataFormatError, match="no time column"):
        read_trace(r)
    assert read_trace(r, sampling_rate=10).n_samples == 2
    h = tmp_path / "hdr.csv"
    h.write_text("time,lever\n")
    with pytest.raises(DataFormatError, match="no rows"):
        read_trace(h)
    n = tmp_path / "v.npy"
    np.save(n, np.arange(10.0))
    with pytest.raises(DataFormatError, match="10 samples but 5 timestamps"):
        read_trace(n, timestamps=np.arange(5.0))
    o = tmp_path / "obj.npy"
    np.save(o, np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataFormatError, match="obj.npy"):
        read_trace(o, sampling_rate=1)
    w = tmp_path / "w.mat"
    w.write_text("x")
    with pytest.raises(DataFormatError, match="unsupported trace file type"):
        read_trace(w)
    allnan = tmp_path / "nan.csv"
    pd.DataFrame({"time": [0.0, 0.1], "lever": [np.nan, np.nan]}).to_csv(allnan, index=False)
    with pytest.raises(DataFormatError, match="no finite value"):
        read_trace(allnan)


def test_interval_tables_and_build_session(tmp_path):
    from sharedrep.data.io import Traces, build_session, read_intervals

    p = tmp_path / "trials.csv"
    pd.DataFrame(
        {"start_time": [0.0, 2.0], "stop_time": [1.0, 3.0], "cue_time": [0.2, 2.2]}
    ).to_csv(p, index=False)
    df = read_intervals(p, "trials")
    assert list(df.columns) == ["start_time", "stop_time", "cue_time"]
    q = tmp_path / "bad.csv"
    pd.DataFrame({"start": [0.0]}).to_csv(q, index=False)
    with pytest.raises(DataFormatError, match="bad.csv: trials table lacks column"):
        read_intervals(q, "trials")
    t = np.arange(50) / 10.0
    tr = Traces(np.arange(100.0), ["lever"], ["mm"], np.arange(100) / 20.0, "lever.csv")
    s = build_session(np.ones((50, 2)), t, subject="m1", behavior=[tr], trials=df)
    assert (
        np.allclose(s.behavior[:, 0], t * 20)
        and s.metadata["behavior_sources"]["lever"] == "lever.csv"
    )
    no_t = Traces(np.arange(10.0), ["x"], ["a.u."], None, "pose.csv")
    with pytest.raises(DataFormatError, match="pose.csv: has no time base"):
        build_session(np.ones((50, 2)), t, subject="m1", behavior=[no_t])
    with pytest.raises(DataFormatError, match="occur in several sources"):
        build_session(np.ones((50, 2)), t, subject="m1", behavior=[tr, tr])
    with pytest.raises(DataFormatError, match="neural has 50 rows but timestamps has 49"):
        build_session(np.ones((50, 2)), t[:-1], subject="m1", source="plane0")


def test_csv_with_pandas_default_index_column(tmp_path):
    t = np.arange(0, 2, 0.01)
    df = pd.DataFrame({"time": t, "lever": np.sin(t)})
    p = tmp_path / "indexed.csv"
    df.to_csv(p)  # pandas' default: writes the 0..n-1 index as an unnamed column
    tr = read_trace(p)
    assert tr.names == ["lever"] and np.allclose(tr.values[:, 0], np.sin(t))
    # an unnamed first column that is not 0..n-1 is data and is kept
    q = tmp_path / "unnamed_data.csv"
    df.set_axis(np.arange(len(df)) * 2).to_csv(q)
    assert read_trace(q).names == ["Unnamed: 0", "lever"]


def test_time_headers_with_units_tab_text_and_spaces(tmp_path):
    t = np.arange(200) * 0.01
    v = np.sin(t)
    ms = tmp_path / "ms.csv"
    pd.DataFrame({"time (ms)": t * 1000.0, " lever ": v}).to_csv(ms, index=False)
    tr = read_trace(ms)
    assert tr.names == ["lever"]
    np.testing.assert_allclose(tr.timestamps, t)  # milliseconds converted to seconds
    sec = tmp_path / "s.csv"
    pd.DataFrame({"Time [s]": t, "lever": v}).to_csv(sec, index=False)
    np.testing.assert_allclose(read_trace(sec).timestamps, t)
    txt = tmp_path / "tab.txt"
    pd.DataFrame({"time": t, "lever": v}).to_csv(txt, sep="\t", index=False)
    tr = read_trace(txt)
    assert tr.names == ["lever"] and np.allclose(tr.values[:, 0], v)


def test_headers_equal_after_stripping_are_refused(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("time,pos,pos \n" + "".join(f"{i * 0.1},{i},{2 * i}\n" for i in range(10)))
    with pytest.raises(DataFormatError, match=r"dup\.csv: duplicate column name\(s\) \['pos'\]"):
        read_trace(p)
    with pytest.raises(DataFormatError, match=r"headers \['pos', 'pos '\]"):
        read_trace(p, columns=["pos"])
    t = tmp_path / "duptime.tsv"
    t.write_text(
        " time\ttime\tlever\n" + "".join(f"{i},{i},{i}\n" for i in range(3)).replace(",", "\t")
    )
    with pytest.raises(
        DataFormatError, match=r"duptime\.tsv: duplicate column name\(s\) \['time'\]"
    ):
        read_trace(t)
