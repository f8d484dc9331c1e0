"""One behavioural recording stored in two sessions (two populations imaged at once, one
file each) counts once in the behaviour analyses: its trials would otherwise pair with
their own copies in the trajectory reproducibility and count twice in trial-level tests.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from sharedrep.data.session import SessionCollection
from sharedrep.sim.learning_study import simulate_study
from sharedrep.study import learning_curves, silencing_effects
from sharedrep.study.behavior import repeated_recordings


@pytest.fixture(scope="module")
def original() -> SessionCollection:
    return simulate_study(
        n_mice=3, days=(1, 2, 13, 14), populations=("m1",), trials_per_session=20, seed=5
    ).collection


@pytest.fixture(scope="module")
def doubled(original) -> SessionCollection:
    """Every session again as population "m2": other neural data, the same behaviour."""
    copies = [
        dataclasses.replace(
            s, population="m2", session_id=f"{s.session_id}-m2", neural=2.0 * s.neural
        )
        for s in original
    ]
    return SessionCollection(list(original) + copies, analysis=original.analysis)


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def test_repeats_are_found_and_named(original, doubled):
    found = repeated_recordings(doubled)
    assert set(found) == {f"{s.session_id}-m2" for s in original}
    s = next(iter(original))
    assert found[f"{s.session_id}-m2"] == (
        f"same trials and lever trace as {s.session_id} (one behavioural recording, its "
        "trials counted once)"
    )
    # two populations imaged in separate sessions on a fixed trial schedule: the same
    # trial times, other behaviour: not repeats
    two = simulate_study(n_mice=2, days=(1, 14), populations=("thalamus", "m1"), seed=0)
    assert repeated_recordings(two.collection) == {}


def test_learning_curves_count_a_repeated_recording_once(original, doubled):
    alone, both = learning_curves(original), learning_curves(doubled)
    assert _same(both.summary["metrics"], alone.summary["metrics"])
    left_out = both.summary["sessions"]["left_out"]
    assert all("one behavioural recording" in left_out[f"{s.session_id}-m2"] for s in original)


def test_silencing_counts_a_repeated_recording_once(original, doubled):
    alone = silencing_effects(original, n_perm=50)
    both = silencing_effects(doubled, n_perm=50)
    assert alone.summary["metrics"] and _same(both.summary["metrics"], alone.summary["metrics"])
    assert "one behavioural recording" in json.dumps(both.summary["sessions"]["left_out"])
