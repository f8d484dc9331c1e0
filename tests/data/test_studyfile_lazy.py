"""Studies whose labels are stored only inside their NWB files: selections read only the
matching sessions, and the shallow check reads the labels from the files' headers."""

import numpy as np
import pytest

pytest.importorskip("pynwb")
pytest.importorskip("h5py")

import sharedrep.data.io as sio  # noqa: E402
from sharedrep.data import studyfile  # noqa: E402
from sharedrep.data.io import nwb_header, write_nwb  # noqa: E402
from sharedrep.data.session import Session  # noqa: E402
from sharedrep.data.studyfile import load_study, validate_study  # noqa: E402

#: (subject, day, population, stage) of the sessions; the labels go into the files only
SESSIONS = [
    ("a", 1, "m1", "novice"),
    ("a", 9, "m1", "expert"),
    ("a", 1, "thal", "novice"),
    ("b", 9, "m1", "expert"),
    ("b", 9, "thal", "expert"),
]


def _write_study(folder, sessions=SESSIONS, analysis="", extra=""):
    """Write one NWB file per session (labels in the file) and a study file whose
    entries declare neither population nor stage; return the TOML path."""
    rng = np.random.default_rng(0)
    entries = []
    for k, (subject, day, population, stage) in enumerate(sessions):
        sid = f"{subject}-day{day}-{population}"
        path = folder / f"{sid}.nwb"
        if not path.exists():
            s = Session(
                subject=subject,
                session_id=sid,
                neural=rng.normal(size=(90, 3)),
                timestamps=np.arange(90) / 30.0,
                behavior=rng.normal(size=(90, 2)),
                behavior_names=["lever", "paw"],
                day=day,
                stage=stage,
                population=population,
            )
            write_nwb(s, path)
        entries.append(
            f'[[sessions]]\nsubject = "{subject}"\nsession_id = "{sid}"\nday = {day}\n'
            f'path = "{path.name}"\n{extra if k == 0 else ""}'
        )
    toml = folder / "study.toml"
    toml.write_text(f"[analysis]\n{analysis}\n" + "\n".join(entries))
    return toml


def _count_calls(monkeypatch, module, name: str) -> list[str]:
    """Replace ``module.name`` (a reader of one file) by itself recording the names of
    the files it is called on, in call order; return that list."""
    calls = []
    original = getattr(module, name)

    def counting(path, **kw):
        calls.append(path.name)
        return original(path, **kw)

    monkeypatch.setattr(module, name, counting)
    return calls


@pytest.fixture
def reads(monkeypatch):
    """The files read_nwb is called on, in call order."""
    return _count_calls(monkeypatch, sio, "read_nwb")


def test_selection_reads_only_the_matching_sessions(tmp_path, reads):
    toml = _write_study(tmp_path)
    assert "population" not in toml.read_text() and "stage" not in toml.read_text()
    subset = load_study(toml, population="m1", stage="expert")
    assert [s.session_id for s in subset] == ["a-day9-m1", "b-day9-m1"]
    assert reads == ["a-day9-m1.nwb", "b-day9-m1.nwb"]
    reads.clear()
    thal = load_study(toml, population="thal")
    assert [s.session_id for s in thal] == ["a-day1-thal", "b-day9-thal"]
    assert reads == ["a-day1-thal.nwb", "b-day9-thal.nwb"]
    # the same sessions as loading everything and filtering
    reads.clear()
    full = load_study(toml)
    assert len(reads) == len(SESSIONS)
    expected = full.filter(population="m1", stage="expert")
    assert [s.session_id for s in expected] == [s.session_id for s in subset]


def test_declared_labels_still_win_over_the_file(tmp_path, reads):
    toml = _write_study(tmp_path, extra='population = "thal"\n')  # entry 0 says thal
    subset = load_study(toml, population="thal")
    assert [s.session_id for s in subset] == ["a-day1-m1", "a-day1-thal", "b-day9-thal"]
    assert subset[0].population == "thal"
    assert sorted(reads) == ["a-day1-m1.nwb", "a-day1-thal.nwb", "b-day9-thal.nwb"]


def test_unreadable_header_falls_back_to_loading(tmp_path, reads, monkeypatch):
    toml = _write_study(tmp_path)

    def broken(path, **kw):
        raise sio.DataFormatError(f"{path}: header unreadable")

    monkeypatch.setattr(nwb_header, "read_nwb_header", broken)
    subset = load_study(toml, population="m1", stage="expert")
    assert [s.session_id for s in subset] == ["a-day9-m1", "b-day9-m1"]
    assert len(reads) == len(SESSIONS)  # every entry had to be read to learn its labels


def test_shallow_validation_finds_a_stage_typo_inside_a_file(tmp_path, reads):
    typo = [*SESSIONS[:3], ("b", 9, "m1", "expret"), SESSIONS[4]]
    toml = _write_study(tmp_path, typo, analysis='stages = ["novice", "expert"]')
    calls = []
    problems = validate_study(toml, deep=False, progress=lambda *a: calls.append(a))
    assert problems == [
        "sessions[3] (b-day9-m1): stage 'expret' is not in [analysis] stages "
        "['novice', 'expert']; did you mean 'expert'? (as written, this session is left "
        "out of the 'expert' analyses)"
    ]
    assert reads == []  # no session was loaded
    assert [c[:2] for c in calls] == [(k, 5) for k in range(5)] + [(5, 5)]
    assert calls[3][2] == "sessions[3] (b-day9-m1)"
    # without the list of stages: a label of one session close to a common one
    toml = _write_study(tmp_path, typo)
    (problem,) = validate_study(toml, deep=False)
    assert problem.startswith("sessions[3] (b-day9-m1): stage 'expret' is used by this session")
    assert "did you mean 'expert'?" in problem


def test_shallow_validation_checks_analysis_names_against_file_labels(tmp_path, reads):
    toml = _write_study(tmp_path, analysis='stim_population = "nope"\npopulations = ["m1", "v1"]')
    problems = validate_study(toml, deep=False)
    assert problems == [
        "[analysis]: populations lists 'v1' but no session has it (populations of the "
        "study: ['m1', 'thal'])",
        "[analysis]: stim_population = 'nope' is not a population of the study "
        "(populations: ['m1', 'thal'])",
    ]
    assert reads == []
    assert validate_study(toml) == problems  # the deep check agrees
    good = _write_study(tmp_path, analysis='stim_population = "thal"')
    assert validate_study(good, deep=False) == []


def test_shallow_validation_reports_a_corrupt_nwb_file(tmp_path):
    toml = _write_study(tmp_path)
    bad = tmp_path / "a-day9-m1.nwb"
    bad.write_bytes(b"garbage" * 100)
    (problem,) = validate_study(toml, deep=False)
    assert problem.startswith("sessions[1] (a-day9-m1): ") and str(bad) in problem


def test_without_h5py_labels_are_left_unchecked(tmp_path, monkeypatch):
    toml = _write_study(tmp_path, analysis='stim_population = "nope"')

    def missing(path, **kw):
        raise ImportError('Reading NWB file headers needs h5py: pip install "sharedrep[nwb]"')

    monkeypatch.setattr(nwb_header, "read_nwb_header", missing)
    assert validate_study(toml, deep=False) == []  # unknown labels: no false alarm


def test_declared_labels_read_the_labels_stored_in_the_files(tmp_path):
    """What a misspelt --stage is compared with: the labels the entries declare, else
    those stored in their NWB files (read from the headers), not an empty list."""
    toml = _write_study(tmp_path)
    labels = {"populations": ["m1", "thal"], "stages": ["novice", "expert"]}
    assert studyfile.declared_labels(toml) == labels
    # the first entry declares a stage: it wins over the one stored in its file
    declared = _write_study(tmp_path, extra='stage = "late"\n')
    assert studyfile.declared_labels(declared)["stages"] == ["late", "expert", "novice"]


def test_each_header_is_read_once_per_file(tmp_path, monkeypatch):
    """Loading reads each NWB header once: the labels and the subject id it stores come
    from the same read (they were read twice, a tenth of the time of ``validate``)."""
    toml = _write_study(tmp_path)
    headers = _count_calls(monkeypatch, nwb_header, "read_nwb_header")
    sessions = load_study(toml)
    assert sorted(headers) == sorted(f"{s.session_id}.nwb" for s in sessions)
    assert [s.subject for s in sessions] == [subject for subject, *_ in SESSIONS]
    headers.clear()
    assert validate_study(toml) == []
    assert len(headers) == len(SESSIONS)


def test_subject_stored_in_the_file_is_replaced_by_the_entry_once_read(tmp_path):
    """An entry naming another subject than its file (a deliberate relabelling, warned
    about) loads under the entry's subject, from the header read once."""
    toml = _write_study(tmp_path)
    text = toml.read_text().replace('subject = "b"', 'subject = "mouse_b"')
    toml.write_text(text)
    with pytest.warns(UserWarning, match="mouse_b"):
        sessions = load_study(toml)
    assert [s.subject for s in sessions] == ["a", "a", "a", "mouse_b", "mouse_b"]
