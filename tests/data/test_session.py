"""Session / SessionCollection: validation, selection, and fit arguments."""

import warnings

import numpy as np
import pandas as pd
import pytest

from sharedrep.data.session import Session, SessionCollection


def make_session(subject="m1", day=1, T=100, N=4, p=2, rate=10.0, seed=0, **kw):
    rng = np.random.default_rng(seed)
    t = np.arange(T) / rate
    trials = pd.DataFrame(
        {
            "start_time": [1.0, 4.0, 7.0],
            "stop_time": [3.0, 6.0, 9.0],
            "cue_time": [1.5, 4.5, 7.5],
            "outcome": ["hit", "miss", "hit"],
        }
    )
    args = dict(
        subject=subject,
        day=day,
        stage="novice",
        population="thalamus",
        neural=rng.normal(size=(T, N)),
        timestamps=t,
        behavior=rng.normal(size=(T, p)),
        behavior_names=[f"f{j}" for j in range(p)],
        behavior_units="mm",
        trials=trials,
    )
    args.update(kw)
    return Session(**args)


def test_defaults_and_properties():
    s = Session(subject="m1", neural=np.ones((5, 2)), timestamps=np.arange(5) / 2.0)
    assert s.session_id == "m1"
    assert s.behavior.shape == (5, 0) and s.behavior_names == []
    assert list(s.unit_ids) == [0, 1]
    assert s.sampling_rate == pytest.approx(2.0)
    assert list(s.trials.columns) == ["start_time", "stop_time"]
    assert s.n_samples == 5 and s.n_units == 2 and s.n_behavior == 0
    s2 = make_session(day=3)
    assert s2.session_id == "m1-day3"
    assert s2.behavior_units == ["mm", "mm"]
    assert "m1-day3" in repr(s2)


def test_neural_is_float64_and_1d_behavior_becomes_column():
    s = Session(
        subject=7,
        neural=np.arange(6, dtype=np.int32).reshape(3, 2),
        timestamps=[0.0, 0.1, 0.2],
        behavior=[1, 2, 3],
        behavior_names=["lever"],
    )
    assert s.subject == "7"
    assert s.neural.dtype == np.float64
    assert s.behavior.shape == (3, 1)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(timestamps=np.arange(99) / 10), "neural has 100 rows but timestamps has 99"),
        (dict(behavior=np.zeros((99, 2))), "neural has 100 rows but behavior has 99"),
        (dict(behavior_names=["a"]), "behavior has 2 columns but behavior_names has 1"),
        (dict(behavior_names=["a", "a"]), "duplicate behavior_names"),
        (dict(behavior_units=["mm"]), "behavior_units has 1"),
        (dict(unit_ids=[1, 2, 3]), "unit_ids has 3"),
        (dict(unit_ids=[1, 1, 2, 3]), "unit_ids are not unique"),
        (
            dict(
                neural=np.zeros((0, 4)),
                timestamps=np.zeros(0),
                behavior=None,
                behavior_names=None,
                behavior_units=None,
            ),
            "empty session",
        ),
        (dict(neural=np.zeros((100, 0))), "no units"),
        (dict(neural=np.zeros(100)), "neural must be 2-D"),
        (dict(timestamps=np.r_[np.arange(50), np.arange(50)] / 10.0), "not strictly increasing"),
        (dict(timestamps=np.r_[np.nan, np.arange(1, 100)]), "NaN or inf"),
        (dict(day="three"), "day must be an integer"),
        (dict(stage=3), "stage must be a string"),
    ],
)
def test_validation_messages_name_session_and_array(change, message):
    with pytest.raises(ValueError, match=message) as ei:
        make_session(**change)
    if "day" not in change:
        assert "m1-day1" in str(ei.value) and "subject 'm1'" in str(ei.value)


def test_non_numeric_and_bad_tables():
    with pytest.raises(TypeError, match="neural must be numeric"):
        make_session(neural=np.full((100, 4), "x"))
    with pytest.raises(ValueError, match="lacks required column"):
        make_session(trials=pd.DataFrame({"start_time": [0.0]}))
    with pytest.raises(ValueError, match="overlap"):
        make_session(trials=pd.DataFrame({"start_time": [0.0, 1.0], "stop_time": [2.0, 3.0]}))
    with pytest.raises(ValueError, match="stop_time"):
        make_session(stimulation=pd.DataFrame({"start_time": [2.0], "stop_time": [1.0]}))
    with pytest.raises(TypeError, match="DataFrame"):
        make_session(trials=[1, 2])
    # stimulation intervals may overlap
    make_session(stimulation=pd.DataFrame({"start_time": [0.0, 1.0], "stop_time": [2.0, 3.0]}))


def test_inputs_are_not_modified():
    x = np.random.default_rng(0).normal(size=(100, 4))
    keep = x.copy()
    s = make_session(neural=x)
    s.mask_samples(np.arange(100) < 10)
    s.select_time(1.0, 5.0)
    assert np.array_equal(x, keep)


def test_trial_ids_and_groups():
    s = make_session()
    ids = s.trial_ids()
    t = s.timestamps
    assert ids.shape == (100,)
    assert np.all(ids[(t >= 1.0) & (t < 3.0)] == 0)
    assert np.all(ids[(t >= 4.0) & (t < 6.0)] == 1)
    assert np.all(ids[t < 1.0] == -1) and np.all(ids[(t >= 3.0) & (t < 4.0)] == -1)
    g = s.groups()
    # segments: [0,1) out, trial0, out, trial1, out, trial2, out -> 7 groups
    assert g[0] == 0 and g.max() == 6
    assert np.all(np.diff(g) >= 0)


def test_select_time_and_mask_samples():
    s = make_session()
    w = s.select_time(2.0, 5.0)
    assert w.timestamps[0] == pytest.approx(2.0) and w.timestamps[-1] < 5.0
    assert len(w.trials) == 2  # trials 0 and 1 overlap the window
    with pytest.raises(ValueError, match="leaves no samples"):
        s.select_time(100.0, 200.0)
    excl = (s.timestamps >= 4.5) & (s.timestamps < 5.0)
    m = s.mask_samples(excl)
    assert m.n_samples == 95
    g = m.groups()
    # the gap inside trial 1 splits it into two groups
    ids_in_trial1 = np.unique(g[(m.timestamps >= 4.0) & (m.timestamps < 6.0)])
    assert ids_in_trial1.size == 2
    with pytest.raises(ValueError, match="boolean array"):
        s.mask_samples(np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="leaves no samples"):
        s.mask_samples(np.ones(100, dtype=bool))


def test_nonfinite_samples():
    b = np.zeros((100, 2))
    b[5, 1] = np.nan
    s = make_session(behavior=b)
    bad = s.nonfinite_samples()
    assert bad.sum() == 1 and bad[5]
    assert s.mask_samples(bad).n_samples == 99


def _collection():
    ss = [
        make_session("m1", 1, seed=1),
        make_session("m1", 14, seed=2, stage="expert"),
        make_session("m2", 1, seed=3, N=6),
        make_session("m2", 14, seed=4, N=6, stage="expert"),
        make_session("c1", 1, seed=5, N=3, population="cortex"),
    ]
    return SessionCollection(ss, name="demo")


def test_collection_selection_and_summary():
    c = _collection()
    assert len(c) == 5 and c.subjects == ["m1", "m2", "c1"]
    assert c.populations == ["thalamus", "cortex"]
    assert len(c.filter(stage="expert")) == 2
    assert len(c.filter(population=["thalamus", "cortex"], day=1)) == 3
    assert c["m2-day14"].n_units == 6
    with pytest.raises(KeyError):
        c["nope"]
    df = c.summary()
    assert list(df["session_id"]) == [s.session_id for s in c]
    assert df.loc[0, "n_trials"] == 3
    assert isinstance(c[1:3], SessionCollection)
    with pytest.raises(ValueError, match="duplicate session_id"):
        SessionCollection([make_session(), make_session()])
    with pytest.raises(TypeError, match="not a Session"):
        SessionCollection([1])


def test_to_fit_args_by_population_and_stage():
    c = _collection()
    a = c.to_fit_args(population="thalamus", stage="novice")
    assert a.subjects == ["m1", "m2"]
    assert [x.shape for x in a.neural] == [(100, 4), (100, 6)]
    assert all(y.shape == (100, 2) for y in a.behavior)
    assert all(g.shape == (100,) for g in a.groups)
    assert a.behavior_names == ["f0", "f1"] and a.behavior_units == ["mm", "mm"]
    assert np.array_equal(a.neural[1], c["m2-day1"].neural)
    # concatenating two days of one subject (same units) gives unique groups per session
    b = c.to_fit_args(population="thalamus")
    assert b.neural[0].shape == (200, 4)
    assert b.session_ids[0] == ["m1-day1", "m1-day14"]
    g = b.groups[0]
    assert np.intersect1d(g[:100], g[100:]).size == 0
    # within trials only
    w = c.to_fit_args(population="thalamus", stage="novice", within_trials=True)
    assert w.neural[0].shape[0] == 60 and np.unique(w.groups[0]).size == 3
    with pytest.raises(ValueError, match="no sessions match"):
        c.to_fit_args(population="striatum")


def test_to_fit_args_does_not_depend_on_the_listing_order_of_sessions():
    c = _collection()
    ref = c.to_fit_args(population="thalamus")
    shuffled = SessionCollection([c[i] for i in (3, 1, 4, 2, 0)])  # days reversed too
    got = shuffled.to_fit_args(population="thalamus")
    assert got.session_ids == [["m2-day1", "m2-day14"], ["m1-day1", "m1-day14"]]
    for i, j in ((0, 1), (1, 0)):  # subjects keep their order of first appearance
        assert got.subjects[i] == ref.subjects[j]
        for a, b in ((got.neural, ref.neural), (got.behavior, ref.behavior)):
            np.testing.assert_array_equal(a[i], b[j])
        np.testing.assert_array_equal(got.groups[i], ref.groups[j])


def test_to_fit_args_reorders_and_checks_behaviour_names():
    a = make_session("m1", behavior_names=["x", "y"])
    b = make_session("m2", behavior_names=["y", "x"], seed=1)
    args = SessionCollection([a, b]).to_fit_args()
    assert np.array_equal(args.behavior[1][:, 0], b.behavior[:, 1])
    c = make_session("m3", behavior_names=["x", "z"], seed=2)
    with pytest.raises(ValueError, match="behaviour names differ.*'m3'.*extra \\['z'\\]"):
        SessionCollection([a, c]).to_fit_args()
    d = make_session("m4", behavior_names=["x", "y"], behavior_units=["mm", "V"], seed=3)
    with pytest.raises(ValueError, match="'y' is in 'V'"):
        SessionCollection([a, d]).to_fit_args()


def test_to_fit_args_reports_all_problems():
    bad = np.zeros((100, 2))
    bad[3] = np.nan
    ss = [
        make_session("m1", 1),
        make_session("m1", 2, N=5, seed=1),  # different units
        make_session("m2", 1, behavior=bad, seed=2),  # NaN
    ]
    with pytest.raises(ValueError) as ei:
        SessionCollection(ss).to_fit_args()
    msg = str(ei.value)
    assert "different unit ids" in msg and "NaN/inf" in msg and "m2-day1" in msg


def test_to_fit_args_refuses_mixed_sampling_rates():
    fast = make_session("a", 1, rate=30.0, T=300)
    slow = make_session("a", 2, rate=10.0, seed=1)
    other = make_session("b", 1, rate=10.0, N=5, seed=2)
    # one subject's sessions at 30 and 10 Hz
    with pytest.raises(ValueError, match="inconsistent sampling rates") as ei:
        SessionCollection([fast, slow]).to_fit_args()
    msg = str(ei.value)
    assert "1 session(s) at 30 Hz ('a-day1' (subject 'a'))" in msg
    assert "'a-day2' (subject 'a') at 10 Hz" in msg
    # one rate per subject, but different rates across subjects
    with pytest.raises(ValueError, match="'b-day1' \\(subject 'b'\\) at 10 Hz"):
        SessionCollection([fast, other]).to_fit_args()
    # jitter within the tolerance is one rate; selecting one rate fits
    jitter = make_session("b", 2, N=5, seed=3, rate=10.0 * 1.005)
    args = SessionCollection([fast, slow, other, jitter]).to_fit_args(subjects=["b"])
    assert args.session_ids == [["b-day1", "b-day2"]]


def test_to_fit_args_refuses_two_populations_of_one_subject():
    thal = make_session("m1", 1, population="thalamus", session_id="m1-thal")
    cortex = make_session("m1", 1, population="m1", session_id="m1-m1", seed=1)
    later = make_session("m1", 2, population="m1", session_id="m1-m1-d2", seed=2)
    c = SessionCollection([thal, cortex, later, make_session("m2", 1, N=6, seed=3)])
    # same unit count and default unit ids: nothing else tells them apart
    assert np.array_equal(thal.unit_ids, cortex.unit_ids)
    with pytest.raises(ValueError, match="subject 'm1': sessions of 2 populations") as ei:
        c.to_fit_args()
    msg = str(ei.value)
    assert "'thalamus': 'm1-thal' (day 1)" in msg
    assert "'m1': 'm1-m1' (day 1), 'm1-m1-d2' (day 2)" in msg
    assert "population=" in msg and "'m2'" not in msg
    with pytest.raises(ValueError, match="2 populations"):
        c.to_fit_args(population=["thalamus", "m1"])
    # one population per subject: as before
    a = c.to_fit_args(population="m1")
    assert a.subjects == ["m1"] and a.session_ids == [["m1-m1", "m1-m1-d2"]]
    assert c.to_fit_args(population="thalamus").subjects == ["m1", "m2"]
    # different subjects may have different populations; unlabelled sessions join
    other = make_session("m3", 1, population="cortex", seed=4)
    unlabelled = make_session("m1", 3, population=None, seed=5)
    b = SessionCollection([thal, unlabelled, other]).to_fit_args()
    assert b.session_ids == [["m1-thal", "m1-day3"], ["m3-day1"]]


def test_from_arrays_reproduces_groups():
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(60, 3)), rng.normal(size=(60, 5))]
    Y = [rng.normal(size=(60, 2)), rng.normal(size=(60, 2))]
    G = [np.repeat(np.arange(6), 10), np.repeat(np.arange(3), 20)]
    c = SessionCollection.from_arrays(X, Y, G, sampling_rate=20.0, behavior_names=["a", "b"])
    args = c.to_fit_args()
    for g_in, g_out in zip(G, args.groups, strict=True):
        assert np.array_equal(g_in, g_out)
    assert np.array_equal(args.neural[1], X[1])
    with pytest.raises(ValueError, match="groups has shape"):
        SessionCollection.from_arrays(X, Y, [G[0], G[1][:5]])
    with pytest.raises(ValueError, match="behavior has 1"):
        SessionCollection.from_arrays(X, Y[:1])


def test_filter_with_numpy_scalars_from_summary():
    c = _collection()
    days = c.summary()["day"].unique()  # numpy int64 values
    assert isinstance(days[0], np.integer)
    for d in days:
        expected = sum(s.day == d for s in c)
        assert len(c.filter(day=d)) == expected
        assert len(c.filter(day=float(d))) == expected
        assert len(c.filter(day=np.float64(d))) == expected
    assert len(c.filter(day=np.int64(1))) == 3
    assert len(c.filter(day=days)) == len(c)
    assert len(c.filter(day=[np.float64(14.0)])) == 2
    assert len(c.filter(subject=np.str_("m2"), day=np.int32(14))) == 1
    assert len(c.filter(day=np.int64(99))) == 0


def test_filter_accepts_sets_tuples_and_other_iterables():
    c = _collection()
    assert len(c.filter(population={"thalamus"})) == 4
    assert len(c.filter(population=frozenset({"cortex"}))) == 1
    assert len(c.filter(day={1, 14})) == 5
    assert len(c.filter(day={np.int64(14)})) == 2
    assert len(c.filter(subject=frozenset({"m1"}), stage=("expert",))) == 1
    assert len(c.filter(subject=(s for s in ["m1", "c1"]))) == 3  # a generator, read once
    assert len(c.filter(subject=pd.Series(["m2"]), day=np.array(1))) == 1  # 0-d array: scalar
    assert len(c.filter(stage=set())) == 0
    a = c.to_fit_args(population={"thalamus"}, stage={"novice"}, subjects={"m1", "m2"})
    assert a.subjects == ["m1", "m2"]


def test_filter_compares_subjects_as_stored_strings():
    s = make_session(subject=1)
    assert s.subject == "1"
    c = SessionCollection([s, make_session(subject="m2")])
    for wanted in (1, np.int64(1), "1", [1], {1, "m2"}):
        assert [x.subject for x in c.filter(subject=wanted)][0] == "1"
    assert len(c.filter(subject={1, "m2"})) == 2
    assert c.to_fit_args(subjects=1).subjects == ["1"]
    assert len(c.filter(subject=2)) == 0


def test_behavior_dataframe_and_series_give_feature_names():
    T = 100
    rng = np.random.default_rng(0)
    beh = pd.DataFrame({"lever_position": rng.random(T), "paw_x": rng.random(T)})
    s = make_session(behavior=beh, behavior_names=None, behavior_units=None)
    assert s.behavior_names == ["lever_position", "paw_x"]
    assert np.array_equal(s.behavior, beh.to_numpy())
    assert list(beh.columns) == ["lever_position", "paw_x"]  # input unchanged
    # unnamed columns (0 .. p-1) keep the default names
    plain = make_session(behavior=pd.DataFrame(rng.random((T, 2))), behavior_names=None)
    assert plain.behavior_names == ["behavior_0", "behavior_1"]
    ser = make_session(behavior=beh["paw_x"], behavior_names=None)
    assert ser.behavior_names == ["paw_x"] and ser.behavior.shape == (T, 1)
    unnamed = make_session(behavior=pd.Series(rng.random(T)), behavior_names=None)
    assert unnamed.behavior_names == ["behavior_0"]
    with pytest.raises(ValueError, match="duplicate behavior_names"):
        make_session(
            behavior=pd.DataFrame(rng.random((T, 2)), columns=["x", "x"]), behavior_names=None
        )


def test_behavior_dataframe_columns_are_selected_by_name_not_position():
    T = 100
    beh = pd.DataFrame({"lever_velocity": np.arange(T) * 10.0, "lever_position": np.arange(T)})
    s = make_session(behavior=beh, behavior_names=["lever_position", "lever_velocity"])
    assert s.behavior_names == ["lever_position", "lever_velocity"]
    assert np.array_equal(s.behavior[:, 0], beh["lever_position"].to_numpy())
    assert np.array_equal(s.behavior[:, 1], beh["lever_velocity"].to_numpy())
    assert s.behavior_units == ["mm", "mm"]
    assert list(beh.columns) == ["lever_velocity", "lever_position"]  # input unchanged
    # a subset, in the order given
    one = make_session(behavior=beh, behavior_names=["lever_position"], behavior_units=None)
    assert one.behavior.shape == (T, 1)
    assert np.array_equal(one.behavior[:, 0], beh["lever_position"].to_numpy())
    # names that are not columns: an error naming the session, the names and the columns
    with pytest.raises(ValueError) as ei:
        make_session(behavior=beh, behavior_names=["a", "lever_position"])
    msg = str(ei.value)
    assert "session 'm1-day1' (subject 'm1')" in msg and "behavior_names ['a']" in msg
    assert "columns ['lever_velocity', 'lever_position']" in msg
    # a name matching several columns is ambiguous
    dup = pd.DataFrame(np.zeros((T, 2)), columns=["x", "x"])
    with pytest.raises(ValueError, match=r"\['x'\] each name several columns"):
        make_session(behavior=dup, behavior_names=["x", "x"])
    # unnamed columns (a RangeIndex) are still named by position
    plain = pd.DataFrame(np.column_stack([np.zeros(T), np.arange(T)]))
    pos = make_session(behavior=plain, behavior_names=["a", "b"])
    assert pos.behavior_names == ["a", "b"] and np.array_equal(pos.behavior[:, 1], np.arange(T))
    # replace() with a new DataFrame keeps each name on its column
    r = s.replace(behavior=beh[["lever_position", "lever_velocity"]] * 2)
    assert np.array_equal(r.behavior[:, 0], 2 * beh["lever_position"].to_numpy())


def test_neural_dataframe_column_labels_are_unit_ids():
    T = 50
    rng = np.random.default_rng(0)
    day1 = pd.DataFrame(rng.normal(size=(T, 3)), columns=[12, 5, 40])  # ROI ids
    day2 = pd.DataFrame(rng.normal(size=(T, 3)), columns=[40, 12, 77])  # other ROIs
    s1 = make_session(day=1, T=T, neural=day1)
    s2 = make_session(day=2, T=T, neural=day2, seed=1)
    assert list(s1.unit_ids) == [12, 5, 40] and list(s2.unit_ids) == [40, 12, 77]
    assert list(day1.columns) == [12, 5, 40]  # input unchanged
    # different ROIs of the same count are not concatenated as the same units
    with pytest.raises(ValueError, match=r"different unit ids \(column 0: unit 12 vs 40\)"):
        SessionCollection([s1, s2]).to_fit_args()
    # the same ROIs on both days are
    same = make_session(day=2, T=T, neural=day1 * 2, seed=1)
    a = SessionCollection([s1, same]).to_fit_args()
    assert a.neural[0].shape == (2 * T, 3) and list(a.unit_ids[0]) == [12, 5, 40]
    # string labels; matching unit_ids accepted (compared as strings)
    named = make_session(T=T, neural=day1.set_axis(["r1", "r2", "r3"], axis=1))
    assert list(named.unit_ids) == ["r1", "r2", "r3"]
    assert list(make_session(T=T, neural=day1, unit_ids=["12", "5", "40"]).unit_ids) == [
        "12",
        "5",
        "40",
    ]
    # labels are validated as unit_ids are
    with pytest.raises(ValueError, match="unit_ids are not unique"):
        make_session(T=T, neural=day1.set_axis([1, 1, 2], axis=1))
    # unit_ids that disagree with the labels: an error naming session and column
    with pytest.raises(ValueError) as ei:
        make_session(T=T, neural=day1, unit_ids=[5, 12, 40])
    msg = str(ei.value)
    assert "session 'm1-day1' (subject 'm1')" in msg
    assert "disagree with the column labels" in msg and "column 0 is labelled 12" in msg
    # an unlabelled DataFrame: default ids, or the given ones
    plain = pd.DataFrame(rng.normal(size=(T, 3)))
    assert list(make_session(T=T, neural=plain).unit_ids) == [0, 1, 2]
    assert list(make_session(T=T, neural=plain, unit_ids=[7, 8, 9]).unit_ids) == [7, 8, 9]


def test_from_arrays_reproduces_recurring_group_ids():
    from sharedrep.core.design import segments

    rng = np.random.default_rng(0)
    g = np.array([0, 0, 0, 1, 1, 1, 0, 0, 0, 2, 2, 2])
    c = SessionCollection.from_arrays([rng.normal(size=(12, 3))], [rng.normal(size=(12, 2))], [g])
    assert list(c[0].trials["cv_group"]) == [0, 1, 0, 2]
    out = c.to_fit_args().groups[0]
    assert np.array_equal(out, g)  # same partition (ids in order of first appearance)
    # lag windows still never join the two runs of id 0
    assert np.array_equal(segments(12, out), np.repeat(np.arange(4), 3))
    # labels are renumbered in order of first appearance and stay within a session
    h = np.array(["b", "b", "a", "a", "b", "b"])
    one = SessionCollection.from_arrays([rng.normal(size=(6, 2))], [rng.normal(size=(6, 1))], [h])
    ss = [one[0], one[0].replace(session_id="day-2")]  # one subject, two sessions
    both = SessionCollection(ss).to_fit_args().groups[0]
    assert list(both) == [0, 0, 1, 1, 0, 0, 2, 2, 3, 3, 2, 2]


def test_recurring_group_ids_that_would_touch_fall_back_with_a_warning():
    rng = np.random.default_rng(0)
    g = np.array([0, 0, 0, 1, 1, 1, 0, 0, 0])
    c = SessionCollection.from_arrays([rng.normal(size=(9, 3))], [rng.normal(size=(9, 2))], [g])
    # removing the run of id 1 leaves the two runs of id 0 side by side (across a gap)
    s = c[0].mask_samples(g == 1)
    with pytest.warns(UserWarning, match="'cv_group' not used.*group 0 meet at t = 6 s"):
        out = SessionCollection([s]).to_fit_args().groups[0]
    assert list(out) == [0, 0, 0, 1, 1, 1]  # the id changes at the gap
    # without the gap split and with another group between them: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(SessionCollection([c[0]]).to_fit_args().groups[0]) == list(g)


# ---------------------------------------------------------------- unusable columns
def _bad_session():
    from sharedrep.data.session import Session

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 5))
    x[:, 1] = np.nan  # NaN everywhere
    x[:, 2] = 3.0  # constant
    x[7, 3] = 1e200  # one huge value
    x[9, 4] = np.nan  # one NaN sample only: not a bad column
    b = np.column_stack([rng.normal(size=50), np.zeros(50)])
    return Session(
        subject="m1",
        neural=x,
        timestamps=np.arange(50) / 10.0,
        unit_ids=[10, 11, 12, 13, 14],
        behavior=b,
        behavior_names=["lever", "paw"],
    )


def test_bad_columns_name_series_column_and_reason():
    s = _bad_session()
    bad = s.bad_columns()
    assert [(b.series, b.index, b.name) for b in bad] == [
        ("neural", 1, "11"),
        ("neural", 2, "12"),
        ("neural", 3, "13"),
        ("behavior", 1, "paw"),
    ]
    assert bad[0].reason == "NaN/inf in every sample"
    assert bad[1].reason == "constant (= 3)"
    assert bad[2].reason.startswith("too large (|value| up to 1e+200")
    assert bad[3].describe() == "behaviour feature 'paw' (column 1): constant (= 0)"


def test_too_large_includes_sums_of_squares_that_overflow(monkeypatch):
    from sharedrep.data import session as session_module
    from sharedrep.data.session import MAX_ABS_VALUE, _column_problems

    x = np.column_stack([[1e200, 1.0, 2.0, 3.0], [1e149, -1e149, 0.0, 1.0]])
    assert [j for j, _ in _column_problems(x)] == [0]  # only the magnitude above 1e150
    assert MAX_ABS_VALUE == 1e150
    # with the magnitude limit out of the way, the sum of squares decides: 4 * 1e308
    # overflows float64 (checked with exact integers), 4 * 1e306 does not
    monkeypatch.setattr(session_module, "MAX_ABS_VALUE", 1e300)
    fmax = int(np.finfo(np.float64).max)
    assert 4 * 10**308 > fmax > 4 * 10**306
    x = np.column_stack([[1e154, -1e154, 1e154, -1e154], [1e153, -1e153, 1e153, -1e153]])
    problems = _column_problems(x)
    assert [j for j, _ in problems] == [0] and problems[0][1].startswith("too large")


def test_drop_units_keeps_the_others_and_records_the_ids():
    s = _bad_session()
    d = s.drop_units([1, 2])
    assert list(d.unit_ids) == [10, 13, 14] and d.metadata["dropped_units"] == [11, 12]
    assert np.array_equal(d.neural, s.neural[:, [0, 3, 4]], equal_nan=True)
    assert s.n_units == 5  # the input is unchanged
    with pytest.raises(ValueError, match="leaves no units"):
        s.drop_units(range(5))
    with pytest.raises(ValueError, match="out of range"):
        s.drop_units([5])


def test_mask_samples_names_the_all_nan_columns():
    s = _bad_session()
    with pytest.raises(ValueError, match=r"leaves no samples \(neural unit 11 \(column 1\)"):
        s.mask_samples(s.nonfinite_samples())


def test_a_string_behavior_names_is_one_name():
    s = make_session(p=1, behavior_names="lever", behavior_units="mm")
    assert s.behavior_names == ["lever"]
    with pytest.raises(ValueError, match="behavior has 3 columns but behavior_names has 1"):
        make_session(p=3, behavior_names="pos")  # not 'p', 'o', 's'
