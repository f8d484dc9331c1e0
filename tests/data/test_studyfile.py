"""Study description files: the shipped example, and reporting every problem at once."""

import shutil
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from io_builders import RATE, dlc_frame, lever_signal, make_nwb, make_suite2p, write_dlc
from sharedrep.data.session import SessionCollection
from sharedrep.data.studyfile import StudyError, load_study, validate_study

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "study.toml"
T = 450  # imaging frames per synthetic session (15 s at 30 Hz)


def _cues(duration):
    return np.arange(1.0, duration - 2.0, 2.5)


def write_session_files(base: Path, entry: dict, seed: int, *, fs=RATE, frames=T) -> None:
    """Create every file a [[sessions]] entry refers to."""
    dur = frames / fs
    cues = _cues(dur)
    if entry.get("format") == "nwb":
        make_nwb(
            base / entry["path"],
            subject=entry["subject"],
            session_id=f"{entry['subject']}-{entry['day']}",
            T=frames,
            seed=seed,
        )
        return
    make_suite2p(base / entry["path"], N=4, T=frames, fs=fs, seed=seed, n_noncell=1)
    if "lever" in entry:
        t = np.arange(-0.5, dur + 0.5, 0.01)
        lv = lever_signal(t, cues)
        (base / entry["lever"]).parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"time": t, "lever": lv}).to_csv(base / entry["lever"], index=False)
    if "pose" in entry:
        n = int(np.ceil((dur + 0.5) * 60))
        write_dlc(dlc_frame(n, seed=seed), base / entry["pose"])
    if "trials" in entry:
        pd.DataFrame(
            {
                "start_time": cues - 0.5,
                "stop_time": cues + 2.0,
                "cue_time": cues,
                "outcome": ["hit"] * len(cues),
            }
        ).to_csv(base / entry["trials"], index=False)
    if "stimulation" in entry:
        pd.DataFrame({"start_time": [3.0, 8.0], "stop_time": [3.5, 8.2]}).to_csv(
            base / entry["stimulation"], index=False
        )
    if "frame_times" in entry:
        jitter = np.random.default_rng(seed).uniform(-1e-4, 1e-4, frames)
        np.save(base / entry["frame_times"], np.arange(frames) / fs + jitter)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    pytest.importorskip("pynwb")
    pytest.importorskip("tables")
    base = tmp_path_factory.mktemp("study")
    shutil.copy(EXAMPLE, base / "study.toml")
    doc = tomllib.loads(EXAMPLE.read_text())
    for i, entry in enumerate(doc["sessions"]):
        write_session_files(base, {**doc["defaults"], **entry}, seed=i)
    return base / "study.toml"


def test_example_study_is_valid_and_loads(example):
    assert validate_study(example) == []
    study = load_study(example)
    assert isinstance(study, SessionCollection) and len(study) == 6
    assert study.name.startswith("lever-push")
    assert study.analysis["lags"] == 3
    assert Path(study.analysis["output"]).is_absolute()
    assert study.populations == ["motor thalamus", "M1 L2/3"]
    s = study["tha01-day14"]
    assert s.metadata["format"] == "suite2p" and s.metadata["excluded_stimulation_frames"] > 0
    assert "movement_onset_time" in s.trials.columns
    onset_delay = (s.trials["movement_onset_time"] - s.trials["cue_time"]).to_numpy()
    assert np.allclose(onset_delay, 0.425, atol=0.05)  # lever ramp starts 0.4 s after the cue
    nwb = study["m1l23a-day1"]
    assert nwb.metadata["format"] == "nwb" and nwb.day == 1
    a = study.to_fit_args(population="motor thalamus", stage="expert")
    assert a.subjects == ["tha01", "tha02"]
    assert a.behavior_names == ["lever", "paw_x", "paw_y", "nose_x", "nose_y"]
    b = study.to_fit_args(population="M1 L2/3")
    assert b.neural[0].shape[1] == 5 and len(b.session_ids[0]) == 2


def test_every_problem_is_reported_at_once(tmp_path):
    pytest.importorskip("tables")
    good = {
        "subject": "a",
        "day": 1,
        "path": "a/plane0",
        "lever": "a/lever.csv",
        "trials": "a/trials.csv",
    }
    write_session_files(tmp_path, good, seed=0)
    slow = {"subject": "b", "day": 1, "path": "b/plane0", "lever": "b/lever.csv"}
    write_session_files(tmp_path, slow, seed=1, fs=15.0)
    other = {
        "subject": "c",
        "day": 1,
        "path": "c/plane0",
        "lever": "c/lever.csv",
        "frame_times": "c/ft.npy",
    }
    write_session_files(tmp_path, other, seed=2)
    np.save(tmp_path / "c" / "ft.npy", np.arange(T - 3) / RATE)  # wrong length
    bad_t = {"subject": "d", "day": 1, "path": "d/plane0", "frame_times": "d/ft.npy"}
    write_session_files(tmp_path, bad_t, seed=3)
    ft = np.arange(T) / RATE
    ft[10] = ft[5]
    np.save(tmp_path / "d" / "ft.npy", ft)  # non-monotonic
    ms = {"subject": "h", "day": 1, "path": "h/plane0", "trials": "h/trials.csv"}
    write_session_files(tmp_path, ms, seed=4)
    tr = pd.read_csv(tmp_path / "h" / "trials.csv")
    tr[["start_time", "stop_time", "cue_time"]] *= 1000.0  # milliseconds
    tr.to_csv(tmp_path / "h" / "trials.csv", index=False)
    toml = tmp_path / "study.toml"
    toml.write_text(
        """
colour = "blue"
[analysis]
n_shared = 2
lagz = 3
[defaults]
format = "suite2p"
lever_units = "mm"
[[sessions]]
subject = "a"
day = 1
path = "a/plane0"
lever = "a/lever.csv"
trials = "a/trials.csv"
[[sessions]]
subject = "b"
day = 1
path = "b/plane0"
lever = "b/lever.csv"
lever_names = ["push"]
[[sessions]]
subject = "c"
day = 1
path = "c/plane0"
frame_times = "c/ft.npy"
[[sessions]]
subject = "d"
day = 1
path = "d/plane0"
frame_times = "d/ft.npy"
[[sessions]]
subject = "e"
path = "e/missing_plane0"
[[sessions]]
subject = "a"
day = 1
path = "a/plane0"
[[sessions]]
path = "a/plane0"
speed = 3
[[sessions]]
subject = "f"
format = "nwb"
path = "a/plane0"
frame_rate = 30.0
[[sessions]]
subject = "g"
day = 1
path = "a/plane0"
frame_rate = 31.5
[[sessions]]
subject = "h"
day = 1
path = "h/plane0"
trials = "h/trials.csv"
"""
    )
    problems = validate_study(toml)
    text = "\n".join(problems)
    expected = [
        "unknown top-level key 'colour'",
        "[analysis]: unknown key 'lagz'",
        "sessions[4] (e): path file not found",
        "sessions[5] (a-day1): duplicate session_id 'a-day1'",
        "sessions[6]: missing required key 'subject'",
        "sessions[6]: unknown key 'speed'",
        "key 'frame_rate' does not apply to format 'nwb'",
        "sessions[2] (c-day1)",  # frame times of the wrong length
        "447 frame times but 450 frames",
        "sessions[3] (d-day1)",
        "not strictly increasing",
        "inconsistent sampling rates: frame_rate = 31.5 Hz in the study file but ops['fs'] = 30.0",
        "inconsistent sampling rates: 2 session(s) at 30 Hz ('a-day1', 'h-day1') but "
        "'b-day1' 15 Hz",
        "behaviour names differ across subjects: session 'b-day1'",
        "session 'h-day1': none of its",
        "overlaps the recording",
    ]
    for e in expected:
        assert e in text, f"missing problem {e!r} in:\n{text}"
    with pytest.raises(StudyError) as ei:
        load_study(toml)
    assert ei.value.problems == problems
    assert str(toml) in str(ei.value) and f"{len(problems)} problem(s)" in str(ei.value)
    # shallow validation reports only the schema problems
    shallow = validate_study(toml, deep=False)
    assert len(shallow) < len(problems) and not any("sampling" in p for p in shallow)


def test_unreadable_study_files(tmp_path):
    assert validate_study(tmp_path / "none.toml") == [
        f"study file not found: {tmp_path / 'none.toml'}"
    ]
    bad = tmp_path / "bad.toml"
    bad.write_text("[study\nname = 1")
    (msg,) = validate_study(bad)
    assert "invalid TOML" in msg and str(bad) in msg
    empty = tmp_path / "empty.toml"
    empty.write_text("[study]\nname = 'x'\n")
    assert validate_study(empty) == ["no [[sessions]] entries"]
    types = tmp_path / "types.toml"
    types.write_text(
        "[analysis]\nn_shared = 'many'\ncv = 2.5\nbehavior_metric = 'r2'\n"
        "[[sessions]]\nsubject = 'a'\nday = '1'\npath = 'x.nwb'\n"
    )
    probs = "\n".join(validate_study(types))
    assert "'n_shared' must be a number or \"auto\"" in probs
    assert "'cv' must be an integer" in probs
    assert "behavior_metric must be" in probs
    assert "'day' must be an integer, got '1'" in probs


def test_cli_validate_accepts_the_example_study(example):
    from typer.testing import CliRunner

    from sharedrep.app.cli import app

    result = CliRunner().invoke(app, ["validate", str(example)])
    assert result.exit_code == 0, result.output
    assert "valid study" in result.output


def _sleap_study(tmp_path, entries: str) -> Path:
    """A suite2p plane plus a 30 Hz SLEAP file whose paw scores are 0.3 in frames
    100-199 (longer than max_gap) and 0.9 elsewhere; nose scores are 0.9."""
    sio = pytest.importorskip("sleap_io")
    make_suite2p(tmp_path / "plane0", N=4, T=T, seed=0, n_noncell=1)
    skel = sio.Skeleton(nodes=["nose", "paw"])
    video = sio.Video(filename="video.mp4", open_backend=False)
    n = T + 15
    frames = [
        sio.LabeledFrame(
            video=video,
            frame_idx=f,
            instances=[
                sio.PredictedInstance.from_numpy(
                    np.full((2, 2), float(f)),
                    point_scores=np.array([0.9, 0.3 if 100 <= f < 200 else 0.9]),
                    score=1.0,
                    skeleton=skel,
                )
            ],
        )
        for f in range(n)
    ]
    sio.save_slp(
        sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skel]),
        str(tmp_path / "pose.slp"),
    )
    toml = tmp_path / "study.toml"
    toml.write_text(
        '[defaults]\nformat = "suite2p"\npose = "pose.slp"\npose_frame_rate = 30.0\n' + entries
    )
    return toml


def test_sleap_pose_uses_bodyparts_and_min_likelihood(tmp_path):
    toml = _sleap_study(
        tmp_path,
        """
[[sessions]]
subject = "a"
day = 1
path = "plane0"
bodyparts = ["nose"]
min_likelihood = 0.6
[[sessions]]
subject = "a"
day = 2
path = "plane0"
bodyparts = ["paw"]
min_likelihood = 0.6
drop_nonfinite = true
[[sessions]]
subject = "a"
day = 3
path = "plane0"
""",
    )
    nose, paw, default = load_study(toml)
    assert nose.behavior_names == ["nose_x", "nose_y"]
    assert paw.behavior_names == ["paw_x", "paw_y"]
    # paw frames 100-199 (3.3-6.6 s) are below min_likelihood: NaN, then dropped
    assert 90 <= paw.metadata["dropped_nonfinite_samples"] <= 110
    # no min_likelihood: SLEAP scores are not thresholded, every body part kept
    assert default.behavior_names == ["nose_x", "nose_y", "paw_x", "paw_y"]
    assert np.isfinite(default.behavior).all()


def test_unexpected_reader_error_names_entry_and_file(tmp_path, monkeypatch):
    import sharedrep.data.io

    toml = _sleap_study(tmp_path, '[[sessions]]\nsubject = "a"\nday = 1\npath = "plane0"\n')

    def broken(*args, **kwargs):
        raise IndexError("index 0 is out of bounds for axis 1 with size 0")

    monkeypatch.setattr(sharedrep.data.io, "read_sleap", broken)
    (msg,) = validate_study(toml)
    assert msg.startswith("sessions[0] (a-day1): cannot load ")
    assert str(tmp_path / "pose.slp") in msg and "IndexError: index 0 is out of bounds" in msg
    with pytest.raises(StudyError, match="IndexError"):
        load_study(toml)

    def bug(*args, **kwargs):
        raise AttributeError("programming error")

    monkeypatch.setattr(sharedrep.data.io, "read_sleap", bug)
    with pytest.raises(AttributeError, match="programming error"):
        validate_study(toml)


@pytest.fixture(scope="module")
def sim_study(tmp_path_factory):
    """A small simulated study written as NWB files + study.toml (one population, m1)."""
    pytest.importorskip("pynwb")
    from sharedrep.sim.learning_study import simulate_study

    st = simulate_study(n_mice=2, days=(1, 14), populations=("m1",), trials_per_session=10, seed=0)
    return st.write(tmp_path_factory.mktemp("sim") / "sim")


def _variant(toml: Path, name: str, settings: dict, *, drop_population=False) -> Path:
    """A copy of ``toml`` (same folder) with ``settings`` set in its [analysis] table."""
    import json
    import re

    text = toml.read_text()
    for key, value in settings.items():
        line = f"{key} = {json.dumps(value)}"  # JSON numbers/strings/lists are TOML
        text, n = re.subn(rf"^{key} = .*$", line, text, flags=re.M)
        if n == 0:
            text = text.replace("[analysis]\n", f"[analysis]\n{line}\n", 1)
    if drop_population:
        text = re.sub(r"^population = .*\n", "", text, flags=re.M)
    out = toml.parent / f"{name}.toml"
    out.write_text(text)
    return out


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("profile_lags", [0], "at least 2 distinct integer lags"),
        ("profile_lags", [2, 2], "at least 2 distinct integer lags"),
        ("profile_lags", [0, 1.5], "at least 2 distinct integer lags"),
        ("fdr", 0, "a number in (0, 1)"),
        ("fdr", 1, "a number in (0, 1)"),
        ("days_per_stage", 0, "an integer >= 1"),
        ("n_permutations", 0, "an integer >= 1"),
        ("n_perm_groups", 0, "an integer >= 1"),
        ("n_perm_units", 0, "an integer >= 1"),
        ("n_perm_overlap", -5, "an integer >= 1"),
        ("n_bootstrap", 1, "an integer >= 2"),
        ("n_shared", 0, "an integer >= 1"),
        ("random_state", -1, "an integer >= 0"),
        ("cv", 1, "an integer >= 2"),
        ("n_jobs", 0, "a non-zero integer"),
        ("min_shift", 0, "a number of samples >= 1"),
        ("min_shift", 0.4, "a number of samples >= 1"),
        ("alpha", 0, "a positive number"),
        ("alpha", [], "a positive number"),
        ("alpha", [1.0, -1.0], "a positive number"),
        ("alphas", [0.0, 1.0], "a non-empty list of positive numbers"),
        ("lags", [0, 0], "a non-empty list of distinct integers"),
        ("lags", [], "a non-empty list of distinct integers"),
    ],
)
def test_analysis_values_out_of_range_are_reported(sim_study, key, value, expected):
    toml = _variant(sim_study, f"bad_{key}", {key: value})
    (msg,) = validate_study(toml, deep=False)
    # the uniform message of sharedrep.utils.params (param_problems)
    assert msg.startswith(f"[analysis]: {key} must be ") and expected in msg
    assert msg.endswith(f"; got {value!r}")
    assert validate_study(toml) == [msg]


def test_analysis_values_in_range_are_accepted(sim_study):
    ok = {
        "profile_lags": [-1, 0, 3],
        "fdr": 0.2,
        "days_per_stage": 1,
        "n_bootstrap": 2,
        "n_permutations": 1,
        "cv": 2,
        "n_jobs": -1,
        "min_shift": 1,
        "alpha": [0.1, 10.0],
        "lags": -2,
        "lever": "paw_x",
        "stim_population": "m1",
        "activation_population": "m1",
        "n_shared": 6,
    }
    assert validate_study(_variant(sim_study, "ok", ok)) == []


def test_analysis_names_must_match_the_sessions(sim_study):
    bad = {
        "lever": "nope",
        "stim_population": "nope",
        "activation_population": "thalamus",
        "populations": ["m1", "v1"],
        "stages": ["expert", "naive"],
        "n_shared": 7,
    }
    toml = _variant(sim_study, "names", bad)
    problems = validate_study(toml)
    assert problems == [
        "[analysis]: populations lists 'v1' but no session has it (populations of the "
        "study: ['m1'])",
        "[analysis]: stim_population = 'nope' is not a population of the study "
        "(populations: ['m1'])",
        "[analysis]: activation_population = 'thalamus' is not a population of the study "
        "(populations: ['m1'])",
        "[analysis]: stages lists 'naive' but no session has it (stages of the study: "
        "['expert', 'novice'])",
        "[analysis]: lever = 'nope' is not a behaviour feature of session(s) "
        "'mouse01-day01-m1', 'mouse01-day14-m1', 'mouse02-day01-m1' and 1 more "
        "(features of 'mouse01-day01-m1': ['lever_position', 'lever_velocity', 'paw_x', "
        "'paw_y', 'elbow_x', 'elbow_y'])",
        "[analysis]: n_shared = 7 exceeds the number of behaviour features (6 in session "
        "'mouse01-day01-m1': ['lever_position', 'lever_velocity', 'paw_x', 'paw_y', "
        "'elbow_x', 'elbow_y'])",
    ]
    # behaviour features are only known once the sessions are loaded
    shallow = validate_study(toml, deep=False)
    assert shallow == problems[:4]
    with pytest.raises(StudyError) as ei:
        load_study(toml)
    assert ei.value.problems == problems


def test_populations_stored_only_in_nwb_files_are_checked_shallow_and_deep(sim_study):
    toml = _variant(sim_study, "nwb_pops", {"stim_population": "nope"}, drop_population=True)
    assert "\npopulation = " not in toml.read_text()
    expected = [
        "[analysis]: stim_population = 'nope' is not a population of the study "
        "(populations: ['m1'])"
    ]
    # the shallow check reads the populations from the NWB files' headers
    assert validate_study(toml, deep=False) == expected
    assert validate_study(toml) == expected
    good = _variant(sim_study, "nwb_pops_ok", {"stim_population": "m1"}, drop_population=True)
    assert validate_study(good) == []
    assert load_study(good).populations == ["m1"]


def test_frame_times_are_checked_against_ops_fs(tmp_path):
    entry = {"subject": "a", "day": 1, "path": "a/plane0", "frame_times": "a/ft.npy"}
    write_session_files(tmp_path, entry, seed=0)  # ops['fs'] = 30 Hz
    np.save(tmp_path / "a" / "ft.npy", np.arange(T) / 15.0)  # but frames at 15 Hz
    toml = tmp_path / "study.toml"
    toml.write_text(
        '[defaults]\nformat = "suite2p"\n[[sessions]]\nsubject = "a"\nday = 1\n'
        'path = "a/plane0"\nframe_times = "a/ft.npy"\n'
    )
    (problem,) = validate_study(toml)
    assert "ops['fs'] = 30.0 Hz but frame times give 15 Hz" in problem


def test_load_study_reads_only_the_selected_sessions(example, tmp_path, monkeypatch):
    from sharedrep.data import studyfile

    read = []
    load_entry = studyfile._load_entry
    monkeypatch.setattr(
        studyfile,
        "_load_entry",
        lambda entry, base, *rest: read.append(entry["path"]) or load_entry(entry, base, *rest),
    )
    full = load_study(example)
    read.clear()
    calls = []
    subset = load_study(
        example,
        population="motor thalamus",
        stage="expert",
        progress=lambda done, total, label: calls.append((done, total)),
    )
    expected = full.filter(population="motor thalamus", stage="expert")
    assert [s.session_id for s in subset] == [s.session_id for s in expected]
    # the other sessions declare another population or stage: never read
    assert len(read) == len(expected) < len(full)
    assert calls[0] == (0, len(expected)) and calls[-1] == (len(expected), len(expected))
    assert studyfile.declared_labels(example)["populations"] == ["motor thalamus", "M1 L2/3"]


def _nwb_study(folder: Path, files: dict, entries: list[dict]) -> Path:
    """NWB files (name -> subject id stored in the file) and a study listing ``entries``."""
    pytest.importorskip("pynwb")
    for k, (name, subject) in enumerate(files.items()):
        make_nwb(folder / name, subject=subject, session_id=name, T=300, seed=k)
    lines = []
    for e in entries:
        lines.append("[[sessions]]")
        lines += [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in e.items()]
    toml = folder / "study.toml"
    toml.write_text("\n".join(lines).replace("'", '"') + "\n")
    return toml


def test_subject_ids_differing_only_by_case_or_spaces_are_named(tmp_path):
    subjects = ["m1", "M1", "m1 ", "m1", "m2", "mouse01", "mouse02"]
    files = {f"s{k}.nwb": s for k, s in enumerate(subjects)}  # each file agrees
    entries = [{"subject": s, "day": k, "path": name} for k, (name, s) in enumerate(files.items())]
    toml = _nwb_study(tmp_path, files, entries)
    problems = validate_study(toml)
    assert problems == [
        "sessions[1] (M1-day1): subject 'M1' differs from subject 'm1' (sessions[0] "
        "(m1-day0), sessions[3] (m1-day3)) only by case, spaces, separators or leading "
        "zeros; did you mean 'm1'? (as written, they are loaded as two animals)",
        "sessions[2] (m1 -day2): subject 'm1 ' differs from subject 'm1' (sessions[0] "
        "(m1-day0), sessions[3] (m1-day3)) only by case, spaces, separators or leading "
        "zeros; did you mean 'm1'? (as written, they are loaded as two animals)",
    ]
    assert validate_study(toml, deep=False) == problems  # no session needs loading
    with pytest.raises(StudyError, match="subject 'M1' differs from subject 'm1'"):
        load_study(toml)


def test_subject_ids_differing_by_separators_or_leading_zeros_are_named(tmp_path):
    # "mouse3" for the expert days of "mouse03" would split one animal in two, each
    # without the other's stage; "mouse1_2" / "mouse12" and "mouse13" are other animals
    subjects = ["mouse03", "mouse03", "mouse3", "Mouse_3", "mouse1_2", "mouse12", "mouse13"]
    files = {f"s{k}.nwb": s for k, s in enumerate(subjects)}
    entries = [{"subject": s, "day": k, "path": name} for k, (name, s) in enumerate(files.items())]
    toml = _nwb_study(tmp_path, files, entries)
    problems = validate_study(toml)
    assert len(problems) == 2
    for problem, (i, name) in zip(problems, ((2, "mouse3"), (3, "Mouse_3")), strict=True):
        assert problem.startswith(
            f"sessions[{i}] ({name}-day{i}): subject {name!r} differs from subject "
            "'mouse03' (sessions[0] (mouse03-day0), sessions[1] (mouse03-day1)) only by "
            "case, spaces, separators or leading zeros; did you mean 'mouse03'?"
        )
    with pytest.raises(StudyError, match="subject 'mouse3' differs from subject 'mouse03'"):
        load_study(toml)


def test_subject_contradicting_its_nwb_file_by_a_leading_zero_is_refused(tmp_path):
    files = {"a.nwb": "mouse03", "b.nwb": "mouse04"}
    entries = [
        {"subject": "mouse3", "path": "a.nwb"},  # the file says mouse03: a typo
        {"subject": "mouse04", "day": 2, "path": "b.nwb"},
    ]
    toml = _nwb_study(tmp_path, files, entries)
    problems = validate_study(toml)
    assert len(problems) == 1 and "subject 'mouse3' in the study file contradicts" in problems[0]
    assert "did you mean 'mouse03'?" in problems[0]


def test_subjects_with_close_ids_and_no_common_stage_are_warned_about(tmp_path):
    # the expert days of mouse03 written under "mosue03": one animal split in two
    plan = [
        ("mouse03", "novice"), ("mouse03", "novice"), ("mosue03", "expert"),
        ("mosue03", "expert"), ("mouse04", "novice"), ("mouse04", "expert"),
        ("m1", "novice"), ("m2", "expert"),  # not close: two animals
    ]  # fmt: skip
    files = {f"s{k}.nwb": subject for k, (subject, _) in enumerate(plan)}
    entries = [
        {"subject": subject, "day": k, "stage": stage, "path": f"s{k}.nwb"}
        for k, (subject, stage) in enumerate(plan)
    ]
    toml = _nwb_study(tmp_path, files, entries)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert validate_study(toml) == []
    split = [str(w.message) for w in caught if "no stage in common" in str(w.message)]
    assert split == [
        "subjects 'mosue03' (stages ['expert']) and 'mouse03' (stages ['novice']) have close "
        "ids and no stage in common: if they are one animal, correct the subject id (as "
        "written they are two animals, and the analyses that pair stages within a mouse use "
        "neither)"
    ]


def test_one_recording_under_two_subjects_is_refused(tmp_path):
    files = {"a.nwb": "m1", "b.nwb": "m2"}
    entries = [
        {"subject": "m1", "path": "a.nwb"},
        {"subject": "m2", "path": "./a.nwb"},  # copy-paste error: should be b.nwb
        {"subject": "m2", "day": 2, "path": "b.nwb"},
    ]
    toml = _nwb_study(tmp_path, files, entries)
    with pytest.warns(UserWarning, match="subject 'm2' in the study file contradicts"):
        problems = validate_study(toml)
    assert problems == [
        f"sessions[1] (m2): {tmp_path / 'a.nwb'} is also the recording of sessions[0] "
        "(m1), under subject 'm1', not 'm2': one recording cannot be two animals (a wrong "
        "path or subject?)"
    ]
    with pytest.warns(UserWarning), pytest.raises(StudyError, match="cannot be two animals"):
        load_study(toml)


def _labelled_nwb(path: Path) -> Path:
    """An NWB file that stores subject m1, day 1, stage novice, population thalamus."""
    pytest.importorskip("pynwb")
    from sharedrep.data.io import write_nwb
    from sharedrep.data.session import Session

    rng = np.random.default_rng(0)
    s = Session(
        subject="m1",
        day=1,
        stage="novice",
        population="thalamus",
        neural=rng.normal(size=(60, 3)),
        timestamps=np.arange(60) / 30.0,
        behavior=rng.normal(size=(60, 1)),
        behavior_names=["lever"],
    )
    return write_nwb(s, path)


def test_entry_labels_contradicting_the_nwb_file_are_reported(tmp_path):
    import warnings

    nwb = _labelled_nwb(tmp_path / "x.nwb")
    agree = {"subject": "m1", "day": 1, "stage": "novice", "population": "thalamus"}
    toml = _nwb_study(tmp_path, {}, [{**agree, "path": "x.nwb"}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert validate_study(toml) == [] and len(load_study(toml)) == 1
    # other values: a deliberate relabelling, the entry wins, with a warning per field
    other = {"subject": "m9", "day": 5, "stage": "expert", "population": "m1"}
    toml = _nwb_study(tmp_path, {}, [{**other, "path": "x.nwb"}])
    for check in (validate_study, lambda t: validate_study(t, deep=False)):
        with pytest.warns(UserWarning) as rec:
            assert check(toml) == []
        assert [str(w.message) for w in rec] == [
            f"sessions[0] (m9-day5): {field} {mine!r} in the study file contradicts "
            f"{field} {theirs!r} stored in {nwb}; the study file's {field} {mine!r} is used"
            for field, mine, theirs in [
                ("subject", "m9", "m1"),
                ("day", 5, 1),
                ("stage", "expert", "novice"),
                ("population", "m1", "thalamus"),
            ]
        ]
    with pytest.warns(UserWarning, match="contradicts"):
        (s,) = load_study(toml)
    assert (s.subject, s.day, s.stage, s.population) == ("m9", 5, "expert", "m1")
    # values that look like typos of the file's: problems, the study is refused
    typo = {**agree, "subject": "M1", "stage": "Novice", "population": "thalamsu"}
    toml = _nwb_study(tmp_path, {}, [{**typo, "path": "x.nwb"}])
    problems = validate_study(toml)
    assert problems == [
        f"sessions[0] (M1-day1): {field} {mine!r} in the study file contradicts {field} "
        f"{theirs!r} stored in {nwb}; did you mean {theirs!r}? (write the file's value, "
        "or point the entry to the right file)"
        for field, mine, theirs in [
            ("subject", "M1", "m1"),
            ("stage", "Novice", "novice"),
            ("population", "thalamsu", "thalamus"),
        ]
    ]
    assert validate_study(toml, deep=False) == problems
    with pytest.raises(StudyError, match="population 'thalamsu'"):
        load_study(toml)
