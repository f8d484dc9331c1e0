"""NWB + study.toml round trip of the simulated learning study."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pynwb")

from sharedrep.data.studyfile import load_study, validate_study  # noqa: E402
from sharedrep.sim.learning_study import simulate_study  # noqa: E402
from sharedrep.study import (  # noqa: E402
    encoding_by_population,
    lag_profiles,
    learning_curves,
    silencing_effects,
    stimulation_responses,
)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    st = simulate_study(n_mice=3, days=(1, 14), trials_per_session=20, seed=2)
    folder = tmp_path_factory.mktemp("study")
    toml = st.write(folder)
    return st, toml


def test_toml_valid_and_loads_equal_sessions(written):
    st, toml = written
    assert toml.name == "study.toml" and toml.is_file()
    assert validate_study(toml) == []
    col = load_study(toml)
    assert len(col) == len(st.sessions)
    assert col.analysis["n_shared"] == 1 and col.analysis["stages"] == ["novice", "expert"]
    for a in st.sessions:
        b = col[a.session_id]
        assert (b.subject, b.day, b.stage, b.population) == (
            a.subject,
            a.day,
            a.stage,
            a.population,
        )
        np.testing.assert_array_equal(a.neural, b.neural)
        np.testing.assert_array_equal(a.behavior, b.behavior)
        np.testing.assert_array_equal(a.timestamps, b.timestamps)
        np.testing.assert_array_equal(a.unit_ids, b.unit_ids)
        assert b.behavior_names == a.behavior_names and b.behavior_units == a.behavior_units
        pd.testing.assert_frame_equal(
            a.trials.reset_index(drop=True),
            b.trials[a.trials.columns].reset_index(drop=True),
            check_dtype=False,
        )
        assert len(b.stimulation) == len(a.stimulation)
        if len(a.stimulation):
            np.testing.assert_allclose(b.stimulation["start_time"], a.stimulation["start_time"])


def test_write_refuses_to_overwrite(written):
    st, toml = written
    with pytest.raises(FileExistsError):
        st.write(toml.parent)
    assert st.write(toml.parent, overwrite=True) == toml


def _same(a, b):
    assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def test_analyses_identical_after_round_trip(written):
    st, toml = written
    col = load_study(toml)
    for fn in (learning_curves, stimulation_responses, silencing_effects):
        ra, rb = fn(st.collection), fn(col)
        _same(ra.summary, rb.summary)
        pd.testing.assert_frame_equal(ra.table, rb.table, check_dtype=False)
    kw = dict(populations=["thalamus"], lags=range(0, 6))
    _same(lag_profiles(st.collection, **kw).summary, lag_profiles(col, **kw).summary)
    kw = dict(n_perm=3, n_boot=2, populations=["thalamus"])
    ea, eb = encoding_by_population(st.collection, **kw), encoding_by_population(col, **kw)
    pd.testing.assert_frame_equal(ea.table, eb.table)
