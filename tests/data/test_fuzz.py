"""Fuzzing the study pipeline's front door: random study files with random corruptions.

Each case copies a small valid study (3 subjects x 2 days of suite2p planes with a lever
trace, and its ``study.toml``), applies 1 to 3 random corruptions (label typos,
constant / huge / NaN units, a malicious or truncated ``ops.npy``, truncated files,
wrong types in the TOML, constant or huge behaviour, a truncated study file), and
checks that:

- ``validate_study`` returns a list of messages (never raises, never hangs: 30 s alarm)
  and each corruption that must be detected is named there (session, file, column);
- ``load_study`` raises :class:`StudyError` with exactly those messages, or loads the
  study when there are none; never another exception type;
- nothing from a data file runs (the malicious ``ops.npy`` would create a marker file).
"""

import shutil
import signal
import warnings
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from io_builders import make_suite2p
from sharedrep.data.session import SessionCollection
from sharedrep.data.studyfile import StudyError, load_study, validate_study

FS = 30.0
T = 240  # frames per session (8 s)
N_CELLS = 4
SUBJECTS = ("a", "b", "c")
DAYS = {1: "novice", 14: "expert"}
SESSIONS = [(s, d) for s, d in product(SUBJECTS, DAYS)]


def _sid(k: int) -> str:
    subject, day = SESSIONS[k]
    return f"{subject}-d{day}"


def _folder(root: Path, k: int) -> Path:
    subject, day = SESSIONS[k]
    return root / subject / f"day{day:02d}"


def _study_text() -> str:
    lines = [
        '[study]\nname = "fuzz"\n',
        "[analysis]",
        "cv = 5",
        'stages = ["novice", "expert"]',
        'populations = ["thal"]\n',
        '[defaults]\nformat = "suite2p"\npopulation = "thal"\nlever_names = ["lever"]\n',
    ]
    for k, (subject, day) in enumerate(SESSIONS):
        rel = f"{subject}/day{day:02d}"
        lines += [
            "[[sessions]]",
            f'subject = "{subject}"',
            f'session_id = "{_sid(k)}"',
            f"day = {day}",
            f'stage = "{DAYS[day]}"',
            f'path = "{rel}/plane0"',
            f'lever = "{rel}/lever.csv"\n',
        ]
    return "\n".join(lines)


def _write_study(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for k in range(len(SESSIONS)):
        d = _folder(root, k)
        make_suite2p(d / "plane0", N=N_CELLS, T=T, fs=FS, seed=k, n_noncell=1)
        t = np.arange(-0.5, T / FS + 0.5, 0.01)
        lever = np.sin(2 * np.pi * t / 2.5) + 0.1 * rng.normal(size=t.size)
        pd.DataFrame({"time": t, "lever": lever}).to_csv(d / "lever.csv", index=False)
    toml = root / "study.toml"
    toml.write_text(_study_text())
    return toml


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_template") / "study"
    toml = _write_study(root)
    assert validate_study(toml) == []
    return root


# ------------------------------------------------------------------ corruptions
# Each takes (root, k, rng, state) and returns the expected problem: a tuple of
# substrings that one message must all contain, or None when any consistent outcome
# is correct (e.g. a truncated text file that still parses).


def _sub_toml(root: Path, old: str, new: str, k: int) -> None:
    """Replace ``old`` by ``new`` in the k-th [[sessions]] entry of study.toml."""
    toml = root / "study.toml"
    head, *entries = toml.read_text().split("[[sessions]]")
    assert old in entries[k], (old, entries[k])
    entries[k] = entries[k].replace(old, new, 1)
    toml.write_text("[[sessions]]".join([head, *entries]))


def stage_typo(root, k, rng, state):
    stage = DAYS[SESSIONS[k][1]]
    typo = {"novice": "novcie", "expert": "expret"}[stage]
    _sub_toml(root, f'stage = "{stage}"', f'stage = "{typo}"', k)
    return (_sid(k), repr(typo), f"did you mean {stage!r}")


def population_typo(root, k, rng, state):
    _sub_toml(
        root, f'session_id = "{_sid(k)}"', f'session_id = "{_sid(k)}"\npopulation = "Thal"', k
    )
    return (_sid(k), "'Thal'", "did you mean 'thal'")


def _rewrite_f(root, k, change):
    p = _folder(root, k) / "plane0" / "F.npy"
    F = np.load(p).astype(np.float64)
    Fneu = np.load(p.parent / "Fneu.npy").astype(np.float64)
    change(F, Fneu)
    np.save(p, F)
    np.save(p.parent / "Fneu.npy", Fneu)


def constant_unit(root, k, rng, state):
    j = int(rng.integers(N_CELLS))

    def change(F, Fneu):
        F[j] = 200.0
        Fneu[j] = 50.0

    _rewrite_f(root, k, change)
    return (_sid(k), str(_folder(root, k) / "plane0"), f"neural unit {j} (column {j}): constant")


def huge_unit(root, k, rng, state):
    j = int(rng.integers(N_CELLS))

    def change(F, Fneu):
        F[j, int(rng.integers(T))] = 1e300

    _rewrite_f(root, k, change)
    return (_sid(k), f"neural unit {j} (column {j}): too large")


def nan_fluorescence(root, k, rng, state):
    def change(F, Fneu):
        F[int(rng.integers(N_CELLS))] = np.nan

    _rewrite_f(root, k, change)
    return (_sid(k), "F.npy", "NaN")


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def malicious_ops(root, k, rng, state):
    p = _folder(root, k) / "plane0" / "ops.npy"
    ops = np.empty((), dtype=object)
    ops[()] = {"fs": FS, "nframes": T, "hook": _Evil(state["marker"])}
    np.save(p, ops, allow_pickle=True)
    return (_sid(k), str(p), "refused", f"{open.__module__}.open")


def truncated_npy(root, k, rng, state):
    name = str(rng.choice(["F.npy", "Fneu.npy", "iscell.npy", "ops.npy", "stat.npy"]))
    p = _folder(root, k) / "plane0" / name
    data = p.read_bytes()
    p.write_bytes(data[: int(rng.integers(1, len(data) - 1))])
    return (_sid(k), name)


def truncated_lever(root, k, rng, state):
    p = _folder(root, k) / "lever.csv"
    data = p.read_bytes()
    p.write_bytes(data[: int(rng.integers(0, len(data)))])
    return None  # may still parse (a shorter trace): only consistency is required


def _rewrite_lever(root, k, change):
    p = _folder(root, k) / "lever.csv"
    df = pd.read_csv(p)
    df["lever"] = change(df["lever"].to_numpy())
    df.to_csv(p, index=False)


def constant_lever(root, k, rng, state):
    _rewrite_lever(root, k, lambda x: np.zeros_like(x))
    return (_sid(k), "behaviour feature 'lever' (column 0): constant")


def huge_lever(root, k, rng, state):
    def change(x):
        x = x.copy()
        x[x.size // 2] = -1e300
        return x

    _rewrite_lever(root, k, change)
    return (_sid(k), "behaviour feature 'lever' (column 0): too large")


def wrong_type(root, k, rng, state):
    subject, day = SESSIONS[k]
    choice = int(rng.integers(3))
    if choice == 0:
        _sub_toml(root, f"day = {day}\n", f'day = "{day}"\n', k)
        return ("'day' must be an integer",)
    if choice == 1:
        _sub_toml(
            root, f'session_id = "{_sid(k)}"', f'session_id = "{_sid(k)}"\nframe_rate = "fast"', k
        )
        return ("'frame_rate' must be", "'fast'")
    _sub_toml(
        root, f'session_id = "{_sid(k)}"', f'session_id = "{_sid(k)}"\ndrop_bad_units = 1', k
    )
    return ("'drop_bad_units' must be true/false",)


def analysis_type(root, k, rng, state):
    toml = root / "study.toml"
    toml.write_text(toml.read_text().replace("cv = 5", 'cv = "five"', 1))
    return ("'cv' must be an integer",)


def truncated_study(root, k, rng, state):
    toml = root / "study.toml"
    data = toml.read_bytes()
    toml.write_bytes(data[: int(rng.integers(0, len(data)))])
    return None  # may still be valid TOML (fewer sessions): only consistency is required


PER_SESSION = [
    stage_typo,
    population_typo,
    constant_unit,
    huge_unit,
    nan_fluorescence,
    malicious_ops,
    truncated_npy,
    truncated_lever,
    constant_lever,
    huge_lever,
    wrong_type,
]
GLOBAL = [analysis_type, truncated_study]


def _make_case(template: Path, root: Path, seed: int) -> tuple[list, dict]:
    """Copy the template to ``root`` and corrupt it; return [(name, expected)] and state."""
    rng = np.random.default_rng(seed)
    shutil.copytree(template, root)
    state = {"marker": root.parent / f"MARKER-{seed}"}
    expected = []
    if rng.random() < 0.1:
        fn = GLOBAL[int(rng.integers(len(GLOBAL)))]
        return [(fn.__name__, fn(root, 0, rng, state))], state
    n = int(rng.integers(1, 4))
    sessions = rng.choice(len(SESSIONS), size=n, replace=False)
    typo_done = False
    for k in sessions:
        fn = PER_SESSION[int(rng.integers(len(PER_SESSION)))]
        if fn is stage_typo and typo_done:
            fn = constant_lever  # two typos of one label would hide each other
        typo_done |= fn is stage_typo
        expected.append((f"{fn.__name__}@{_sid(int(k))}", fn(root, int(k), rng, state)))
    if rng.random() < 0.3 and not any(name.startswith("stage_typo") for name, _ in expected):
        toml = root / "study.toml"
        toml.write_text(toml.read_text().replace('stages = ["novice", "expert"]\n', "", 1))
    return expected, state


def _alarm(signum, frame):
    raise TimeoutError("a case ran for more than 30 s")


def _run_case(template: Path, root: Path, seed: int) -> list[str]:
    """Failures of one case (empty when it ended correctly)."""
    expected, state = _make_case(template, root, seed)
    toml = root / "study.toml"
    failures = []
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(30)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            problems = validate_study(toml)
            try:
                loaded = load_study(toml)
            except StudyError as err:
                loaded = err
    except Exception as err:  # any other exception (or the alarm) is a failure
        return [f"seed {seed} {expected}: {type(err).__name__}: {err}"]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems):
        failures.append(f"seed {seed}: validate returned {problems!r}")
    if problems:
        if not (isinstance(loaded, StudyError) and loaded.problems == problems):
            failures.append(f"seed {seed}: load disagrees with validate: {loaded!r}")
    elif not isinstance(loaded, SessionCollection):
        failures.append(f"seed {seed}: valid study did not load: {loaded!r}")
    for name, subs in expected:
        if subs is not None and not any(all(s in p for s in subs) for p in problems):
            failures.append(f"seed {seed}: {name} not reported as {subs}; got {problems}")
    if state["marker"].exists():
        failures.append(f"seed {seed}: code from a data file ran")
    return failures


def _fuzz(template: Path, tmp_path: Path, seeds) -> None:
    failures = []
    for seed in seeds:
        failures += _run_case(template, tmp_path / f"case{seed}", seed)
    assert not failures, "\n".join(failures)


def test_random_corruptions_end_in_a_named_problem_or_a_correct_load(template, tmp_path):
    _fuzz(template, tmp_path, range(30))


@pytest.mark.slow
def test_random_corruptions_many(template, tmp_path):
    _fuzz(template, tmp_path, range(1000, 1300))
