"""Study files that used to give a wrong answer without a word (issue 14, data side).

Labels are checked against ``[analysis] stages/populations`` (or each other), and
unusable units (all NaN, constant, too large) are named by ``validate`` and can be
dropped at load time with ``drop_bad_units = true``.
"""

import re
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sharedrep.data.studyfile import StudyError, load_study, validate_study


def _simulated(folder: Path, edit=None, n_mice: int = 3) -> Path:
    """A small simulated study (NWB + study.toml); ``edit(sessions)`` may change the
    sessions before they are written."""
    pytest.importorskip("pynwb")
    from sharedrep.sim.learning_study import simulate_study

    st = simulate_study(
        n_mice=n_mice, days=(1, 14), populations=("m1",), trials_per_session=10, seed=0
    )
    if edit is not None:
        st.sessions = edit(list(st.sessions))
    return st.write(folder)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return _simulated(tmp_path_factory.mktemp("clean") / "study")


def _edited(toml: Path, name: str, *subs: tuple[str, str, int]) -> Path:
    """A copy of ``toml`` (same folder) with regex substitutions (pattern, repl, count)."""
    text = toml.read_text()
    for pattern, repl, count in subs:
        text, n = re.subn(pattern, repl, text, count=count, flags=re.M)
        assert n, pattern
    out = toml.parent / f"{name}.toml"
    out.write_text(text)
    return out


def test_the_clean_study_is_valid(clean):
    assert "stages = " in clean.read_text()
    assert validate_study(clean) == []


def test_stage_typo_is_named_against_the_listed_stages(clean):
    toml = _edited(clean, "typo", (r'^stage = "novice"', 'stage = "novcie"', 1))
    problems = validate_study(toml)
    (msg,) = [p for p in problems if "novcie" in p and "stored in" not in p]
    assert "mouse01-day01-m1" in msg and "did you mean 'novice'" in msg
    assert "[analysis] stages" in msg
    # the file stores "novice": the typo contradicts it too
    (clash,) = [p for p in problems if "stored in" in p]
    assert "stage 'novcie' in the study file contradicts stage 'novice' stored in" in clash
    with pytest.raises(StudyError, match="novcie"):
        load_study(toml)
    # the shallow check sees it too (the label is in the study file)
    assert any("novcie" in p for p in validate_study(toml, deep=False))


def test_stage_typo_without_a_list_is_named_against_the_other_labels(clean):
    toml = _edited(
        clean,
        "typo_nolist",
        (r"^stages = .*\n", "", 1),
        (r'^stage = "novice"', 'stage = "novcie"', 1),
    )
    assert "stages = " not in toml.read_text()
    clash, msg = validate_study(toml)
    assert "mouse01-day01-m1" in msg and "'novcie'" in msg and "'novice' (2 sessions)" in msg
    assert clash.startswith("sessions[0] (mouse01-day01-m1): stage 'novcie' in the study")


def test_population_typo_is_named(clean):
    toml = _edited(clean, "pop_typo", (r'^population = "m1"', 'population = "M1"', 1))
    clash, msg = validate_study(toml)
    assert "population 'M1'" in msg and "did you mean 'm1'" in msg
    assert "population 'M1' in the study file contradicts population 'm1'" in clash


def test_deliberate_other_labels_are_not_reported(clean):
    # a stage far from every listed one is an unlisted stage, left out on purpose (the
    # file says "novice": a deliberate relabelling, said with a warning)
    toml = _edited(clean, "other_stage", (r'^stage = "novice"', 'stage = "intermediate"', 1))
    with pytest.warns(UserWarning, match="stage 'intermediate' in the study file contra"):
        assert validate_study(toml) == []
    # two labels used once each are not misspellings of one another (they are stages of
    # unknown learning order, which the run would refuse: that is the one problem)
    two = _edited(
        clean,
        "day_labels",
        (r"^stages = .*\n", "", 1),
        (r'^stage = "novice"', 'stage = "day1"', 1),
        (r'^stage = "expert"', 'stage = "day2"', 1),
    )
    with pytest.warns(UserWarning, match="the study file's stage 'day[12]' is used"):
        (problem,) = validate_study(two)
    assert problem.startswith(
        "[analysis]: the learning order of the stages 'day1', 'day2' is unknown"
    )
    assert "misspel" not in problem and "did you mean" not in problem


def _with_unit(value, column: int = 2, session: int = 0):
    def edit(sessions):
        s = sessions[session]
        x = s.neural.copy()
        x[:, column] = value
        sessions[session] = replace(s, neural=x)
        return sessions

    return edit


@pytest.fixture(scope="module")
def nan_unit(tmp_path_factory):
    return _simulated(tmp_path_factory.mktemp("nan") / "study", _with_unit(np.nan), n_mice=2)


def test_all_nan_unit_is_named_by_validate(nan_unit):
    (msg,) = validate_study(nan_unit)
    assert "mouse01-day01-m1" in msg and "mouse01-day01-m1.nwb" in msg
    assert "neural unit 2 (column 2): NaN/inf in every sample" in msg
    assert "drop_bad_units = true" in msg and "drop_nonfinite" not in msg


def test_drop_nonfinite_with_an_all_nan_unit_names_the_unit(nan_unit):
    toml = _edited(
        nan_unit,
        "nonfinite",
        (r"^\[defaults\]\n", "[defaults]\ndrop_nonfinite = true\n", 1),
    )
    (msg,) = validate_study(toml)
    assert "leaves no samples" not in msg
    assert "mouse01-day01-m1" in msg and "neural unit 2 (column 2)" in msg
    assert "drop_bad_units = true" in msg


def test_drop_bad_units_loads_and_fits(nan_unit):
    from sharedrep import ShaReD

    toml = _edited(
        nan_unit,
        "drop",
        (
            r"^\[defaults\]\n",
            "[defaults]\ndrop_bad_units = true\ndrop_nonfinite = true\n",
            1,
        ),
    )
    with pytest.warns(UserWarning, match="drop_bad_units"):
        assert validate_study(toml) == []
    with pytest.warns(UserWarning, match="drop_bad_units") as rec:
        study = load_study(toml)
    assert any(
        re.search(
            r"mouse01-day01-m1.*dropped 1 of \d+ neural units.*unit 2 \(column 2\)", str(w.message)
        )
        for w in rec
    )
    s = study.filter(stage="novice", subject="mouse01")[0]
    assert 2 not in s.unit_ids and np.isfinite(s.neural).all()
    assert s.metadata["dropped_bad_units"] == ["2"]
    # the same tracked unit leaves the subject's other day too (ids stay aligned)
    later = study.filter(stage="expert", subject="mouse01")[0]
    assert np.array_equal(later.unit_ids, s.unit_ids)
    assert any("also dropped" in str(w.message) for w in rec)
    # other subjects keep every unit
    other = study.filter(stage="novice", subject="mouse02")[0]
    assert 2 in other.unit_ids
    args = study.to_fit_args(stage="novice")
    model = ShaReD(n_shared=1, alpha=1.0, cv=2, random_state=0).fit(
        args.neural, args.behavior, groups=args.groups
    )
    assert np.all(np.isfinite(model.shared_axes_))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # without the option, nothing is dropped silently: load refuses the study
        with pytest.raises(StudyError, match="neural unit 2"):
            load_study(nan_unit)


@pytest.mark.parametrize(
    "value, reason",
    [
        (lambda x: np.where(np.arange(x.shape[0]) == 5, 1e300, x), "too large"),
        (lambda x: np.full(x.shape[0], 0.25), "constant (= 0.25)"),
    ],
)
def test_huge_and_constant_units_are_named(tmp_path, value, reason):
    def edit(sessions):
        s = sessions[1]
        x = s.neural.copy()
        x[:, 4] = value(x[:, 4])
        sessions[1] = replace(s, neural=x)
        return sessions

    toml = _simulated(tmp_path / "study", edit, n_mice=2)
    (msg,) = validate_study(toml)
    assert "mouse01-day14-m1" in msg and "mouse01-day14-m1.nwb" in msg
    assert f"neural unit 4 (column 4): {reason}" in msg


def test_constant_behaviour_feature_is_named(tmp_path):
    def edit(sessions):
        s = sessions[2]
        b = s.behavior.copy()
        b[:, 0] = 0.0
        sessions[2] = replace(s, behavior=b)
        return sessions

    toml = _simulated(tmp_path / "study", edit, n_mice=2)
    problems = validate_study(toml)
    (msg,) = [p for p in problems if "behaviour feature" in p]
    assert "mouse02-day01-m1" in msg and "'lever_position' (column 0): constant (= 0)" in msg


def test_stage_spellings_differing_by_case_are_named_whatever_their_counts(tmp_path):
    # 2 + 2 sessions: neither spelling is a one-off, and still they would split a stage
    toml = _simulated(tmp_path / "study", n_mice=4)
    toml = _edited(
        toml,
        "case",
        (r"^stages = .*\n", "", 1),
        (r'^stage = "novice"', 'stage = "Novice"', 2),
    )
    problems = validate_study(toml)
    named = [p for p in problems if "only by case or spaces" in p]
    assert len(named) == 2 and all("stage 'novice' differs from 'Novice'" in p for p in named)
    with pytest.raises(StudyError, match="only by case or spaces"):
        load_study(toml)
