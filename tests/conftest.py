"""Fixtures shared by every test folder.

- ``monkey_reach_dir``: the real monkey reaching recordings (``../shared/data/monkey_reach``
  next to the repository, or ``$SHAREDREP_DATA``); tests that take it are skipped, with the
  place they looked, when the data are absent. The data are read where they are, never
  copied into the project.
- ``repo_root``: the repository's root folder (docs, examples, benchmarks).
- ``two_mouse_null_lags``: ``lag_profiles`` of a 2-mouse null study (one population,
  days 1 and 14): a lag analysis whose shift cannot be tested nor given an interval.

Builders that are plain functions (not fixtures) live in ``model_checks.py`` (comparing
fitted models) and ``io_builders.py`` (writing NWB / suite2p / pose files).
"""

import os
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_MISSING = (
    "monkey_reach data not found: expected ../shared/data/monkey_reach next to the "
    "repository, or set SHAREDREP_DATA to the folder that contains monkey_reach/"
)


def find_monkey_reach() -> Path | None:
    """The folder of the monkey reaching recordings, or None when it is absent."""
    env = os.environ.get("SHAREDREP_DATA")
    for base in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        for folder in (base / "monkey_reach", base):
            if folder.name == "monkey_reach" and folder.is_dir():
                return folder
    return None


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def monkey_reach_dir() -> Path:
    folder = find_monkey_reach()
    if folder is None:
        pytest.skip(_MISSING)
    return folder


@pytest.fixture(scope="session")
def two_mouse_null_lags():
    from sharedrep import StudyEffects, simulate_study
    from sharedrep.study import lag_profiles

    st = simulate_study(
        n_mice=2,
        days=(1, 14),
        populations=("thalamus",),
        trials_per_session=20,
        effects=StudyEffects.null(),
        seed=10,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lag_profiles(st.collection, [0, 1, 2, 3], n_boot=20)
