r"""Ground-truth simulator of the motor-learning study ShaReD was made for.

:func:`simulate_study` generates a longitudinal two-photon imaging study of mice learning
a cued lever push: several mice, imaged on several days, each day in several populations
(motor-thalamus axonal boutons, boutons of another input area, M1 layer 2/3 neurons).
Every mouse x day x population is one :class:`sharedrep.Session`; the effects of
learning, the optogenetic stimulation and silencing experiments, and every effect size
are parameters (:class:`StudyEffects`), and the ground truth is returned
(:attr:`SimulatedStudy.truth`).

The task (per trial, times relative to trial start)
---------------------------------------------------
Trials are contiguous ``TRIAL_DURATION_S`` (3.5 s) intervals. An auditory cue sounds at
``CUE_S`` (1.2 s); the mouse may push the lever within ``RESPONSE_WINDOW_S`` (2 s). A push
that reaches ``THRESHOLD_MM`` (2 mm) is rewarded (``outcome = "success"``); a weaker push is
a ``"failure"``; no push in the window is a ``"timeout"``.

**Learning.** The progress of mouse learning on day ``d`` is a logistic curve rescaled to
``L(1) = 0`` and ``L(14) = 1`` (midpoint ``learning_midpoint_day``, width
``learning_width_days``), multiplied by ``effects.learning``. Every behavioural and
neural parameter given as a ``(novice, expert)`` pair is interpolated linearly with
``L(d)``: reaction time, movement duration, push amplitude and its variability, shape
variability of the trajectory (sub-movements and distortions), probability of not
moving. So behaviour becomes faster, more successful and more stereotyped.

**Behaviour** (``p = 6`` features, on the imaging frames): ``lever_position`` (mm),
``lever_velocity`` (mm/s) and two forelimb keypoints ``paw_x``, ``paw_y``, ``elbow_x``,
``elbow_y`` (mm) that follow the lever plus two slow spontaneous (task-irrelevant) body
movements and tracking noise.

**Neural activity** (dF/F, unitless). For every unit ``i`` of a session,

.. math::

    x_i[t] = g_i\, w_i \cdot m[t + \ell] + \text{transients}_i[t]
             + 0.45 f[t] + \sigma_i \eta_i[t] + \text{stim}_i[t] + \text{artefact}[t],

where ``m`` (``T x 2``) are the z-scored lever position and velocity, ``ell`` the lead of
the population in frames (neural activity at ``t`` reflects the movement ``ell`` frames
later; a ShaReD lag ``+ell``), ``w_i`` a unit direction, ``g_i = sqrt(snr)`` for encoding
units and 0 otherwise, ``f`` a slow AR(1) population fluctuation (variance 0.2 after
the 0.45 loading), ``eta`` white noise (variance ``~0.5``) and the transients Poisson
calcium events (0.5 Hz, exponential decay 0.6 s, variance 0.3). The nuisance variance is
about 1, so ``snr`` is the encoded-to-nuisance variance ratio of an encoding unit.

* **thalamus**: the fraction of encoding boutons and their ``snr`` grow with learning
  (``thalamus_fraction``, ``thalamus_snr``), and the lead grows from
  ``thalamus_lead_frames[0]`` to ``thalamus_lead_frames[1]`` (timing shifts earlier
  relative to movement). Encoding sets are nested (boutons are tracked across days).
* **other inputs** (any population that is neither thalamus nor M1): fixed, weaker
  encoding (``other_fraction``, ``other_snr``, ``other_lead_frames``).
* **m1**: ``m1_fraction`` of the neurons encode (``m1_snr``, ``m1_lead_frames``, positive
  weights: activated by the push). A subset (``driven_fraction``) is driven by
  thalamic axons (and ``suppressed_fraction`` is suppressed). The novice and the expert
  encoding sets are drawn with the odds of a driven neuron being chosen multiplied by
  ``exp(overlap_log_odds[stage])``: with the default ``(0, 3)`` the encoding neurons
  are unrelated to the driven ones in novices and mostly driven ones in experts. On
  intermediate days a neuron's gain mixes the two (``(1 - L) g_novice + L g_expert``).
  The transients of M1 neurons that do not encode are scaled by
  ``irrelevant_activity`` (``(1, 0.25)``: irrelevant activity suppressed in experts).

**Optogenetics.** In the M1 session of the last day of each stage (novice, expert), a
fraction ``stim_fraction`` of the trials are stimulation trials: 5 light pulses of
10 ms every 2 frames, starting mid-frame ``STIM_ONSET_S`` after trial start (before the
cue). Driven units respond with ``stim_response`` dF/F (suppressed units with
``-0.6 stim_response``; rise 0.15 s, decay 0.5 s) and every frame that overlaps a pulse
carries a light artefact of about ``artifact_amplitude`` dF/F in every unit (one frame
per pulse at 10 Hz; a pulse that crosses a frame boundary, as at 150 Hz, hits two). Pulses are
the ``stimulation`` intervals of the session (``kind = "activation"``).

**Silencing.** In the M1 sessions of the expert days other than the stimulation day
(that day too when it is the only expert day), a fraction ``silencing_fraction`` of the
trials are laser-on silencing trials (thalamic inputs silenced during the trial; marked by
the ``silencing`` column of the trials table, not by stimulation intervals): the
behaviour of that trial is generated with learning progress
``L (1 - silencing_effect)``: lower success, longer reaction time, less template-like
trajectories. Neural activity is not modified (analyses drop laser-on trials).

Stages: ``"novice"`` for days <= 3, ``"expert"`` for days >= 10, ``"intermediate"``
otherwise. Units are tracked across the days of a mouse (same unit ids), so the
sessions of one mouse, population and stage can be concatenated
(:meth:`sharedrep.SessionCollection.to_fit_args`). Unit counts differ across mice
(``UNIT_COUNTS``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from sharedrep.data.session import Session, SessionCollection
from sharedrep.utils.params import Interval, Predicate, TypeOf, validate_params

__all__ = [
    "StudyEffects",
    "SimulatedStudy",
    "simulate_study",
    "stage_of_day",
    "BEHAVIOR_NAMES",
    "BEHAVIOR_UNITS",
    "UNIT_COUNTS",
]

#: Behaviour features and their units.
BEHAVIOR_NAMES = (
    "lever_position",
    "lever_velocity",
    "paw_x",
    "paw_y",
    "elbow_x",
    "elbow_y",
)
BEHAVIOR_UNITS = ("mm", "mm/s", "mm", "mm", "mm", "mm")
#: Range (inclusive) of the number of units per mouse, by population role.
UNIT_COUNTS = {"thalamus": (14, 20), "other": (14, 20), "m1": (26, 36)}

TRIAL_DURATION_S = 3.5
CUE_S = 1.2
RESPONSE_WINDOW_S = 2.0
THRESHOLD_MM = 2.0
N_PULSES = 5
PULSE_WIDTH_S = 0.01
#: Stimulation onset after trial start (seconds; mid-frame at 10 Hz).
STIM_ONSET_S = 0.25


def stage_of_day(day: int) -> str:
    """Learning stage of a training day.

    Parameters
    ----------
    day : int
        Training day (1 = first day).

    Returns
    -------
    str
        ``"novice"`` (day <= 3), ``"expert"`` (day >= 10) or ``"intermediate"``.
    """
    if day <= 3:
        return "novice"
    if day >= 10:
        return "expert"
    return "intermediate"


@dataclass(frozen=True)
class StudyEffects:
    """Every effect size of the simulated study (defaults: all effects on).

    Pairs are ``(novice, expert)`` values, interpolated with the learning progress
    ``L(day)`` (0 on day 1, ``learning`` on day 14).

    Every field is validated on construction (Python or numpy numbers; pairs as tuples
    or lists, stored as tuples): ``learning``, the fractions, probabilities and
    ``silencing_effect`` in [0, 1] (``driven_fraction + suppressed_fraction <= 1``);
    ``learning_width_days``, ``reaction_time_s`` and ``movement_duration_s`` > 0; SNRs,
    coefficients of variation, ``amplitude_mm``, ``stim_response``,
    ``irrelevant_activity`` and ``artifact_amplitude`` >= 0; leads integers;
    ``overlap_log_odds`` in [-700, 700]; the learning curve must rise between days 1
    and 14. :func:`simulate_study` also requires leads shorter than a session and
    ``stim_fraction + silencing_fraction <= 1`` when one session has both.

    Attributes
    ----------
    learning : float
        Fraction of the novice -> expert change reached on day 14 (0: no learning).
    learning_midpoint_day, learning_width_days : float
        Logistic learning curve (days).
    reaction_time_s : (float, float)
        Mean reaction time (cue to movement onset), seconds.
    reaction_time_cv : (float, float)
        Coefficient of variation of the reaction time (log-normal).
    movement_duration_s : (float, float)
        Mean duration of a push, seconds.
    amplitude_mm : (float, float)
        Mean peak lever displacement, mm (reward threshold ``THRESHOLD_MM`` = 2 mm).
    amplitude_cv : (float, float)
        Coefficient of variation of the amplitude (also of the duration).
    trajectory_noise : (float, float)
        Shape variability: probability of a sub-movement and size of shape distortions
        (fraction of the amplitude).
    no_movement_prob : (float, float)
        Probability of not pushing at all in a trial (timeout).
    thalamus_snr, thalamus_fraction : (float, float)
        Encoded-to-nuisance variance ratio of encoding thalamic boutons, and fraction
        of boutons that encode. Every fraction of encoding units (also ``other_fraction``
        and ``m1_fraction``) gives ``round(fraction x N)`` of a population's ``N`` units,
        at least one when the fraction is > 0 and none when it is 0.
    thalamus_lead_frames : (int, int)
        Frames by which thalamic activity leads the movement it encodes.
    other_snr, other_fraction : float
        Same for other input populations (constant across days).
    other_lead_frames : int
    m1_snr, m1_fraction : float
        Same for M1 neurons (constant; which neurons encode changes).
    m1_lead_frames : int
    driven_fraction, suppressed_fraction : float
        Fractions of M1 neurons driven / suppressed by thalamic axon stimulation.
    stim_response : float
        dF/F response of a driven neuron to a stimulation train (suppressed: -0.6x).
    overlap_log_odds : (float, float)
        Log odds-ratio multiplying the chance that a driven M1 neuron is drawn into the
        encoding set (novice, expert).
    irrelevant_activity : (float, float)
        Scale of the calcium transients of non-encoding M1 neurons.
    silencing_effect : float
        Fraction of the learned behaviour lost in silencing (laser-on) trials.
    stim_fraction, silencing_fraction : float
        Fraction of trials with stimulation / silencing in the sessions that have them.
    artifact_amplitude : float
        Light artefact (dF/F) in frames that overlap a stimulation pulse (present even in
        :meth:`null`: it is not an effect but a nuisance analyses must mask).

    Raises
    ------
    ValueError
        A field outside its range (the message names the field, its value and the
        allowed range).
    """

    learning: float = 1.0
    learning_midpoint_day: float = 6.0
    learning_width_days: float = 1.5
    reaction_time_s: tuple[float, float] = (0.9, 0.35)
    reaction_time_cv: tuple[float, float] = (0.5, 0.2)
    movement_duration_s: tuple[float, float] = (1.1, 0.6)
    amplitude_mm: tuple[float, float] = (2.4, 3.6)
    amplitude_cv: tuple[float, float] = (0.4, 0.08)
    trajectory_noise: tuple[float, float] = (0.6, 0.05)
    no_movement_prob: tuple[float, float] = (0.2, 0.02)
    thalamus_snr: tuple[float, float] = (0.12, 0.6)
    thalamus_fraction: tuple[float, float] = (0.35, 0.6)
    thalamus_lead_frames: tuple[int, int] = (1, 4)
    other_snr: float = 0.1
    other_fraction: float = 0.3
    other_lead_frames: int = 1
    m1_snr: float = 0.2
    m1_fraction: float = 0.3
    m1_lead_frames: int = 2
    driven_fraction: float = 0.25
    suppressed_fraction: float = 0.06
    stim_response: float = 1.0
    overlap_log_odds: tuple[float, float] = (0.0, 3.0)
    irrelevant_activity: tuple[float, float] = (1.0, 0.25)
    silencing_effect: float = 0.7
    stim_fraction: float = 0.3
    silencing_fraction: float = 0.3
    artifact_amplitude: float = 4.0

    def __post_init__(self):
        """Validate every field (``ValueError`` naming the field, value and range) and
        store numbers as Python floats / ints and pairs as tuples (numpy scalars and
        lists are accepted)."""
        for name, (kind, lo, hi, lo_open) in _EFFECT_RANGES.items():
            value = getattr(self, name)
            if kind.startswith("pair"):
                try:
                    items = None if isinstance(value, (str, bytes)) else tuple(value)
                except TypeError:
                    items = None
                if items is None or len(items) != 2:
                    raise ValueError(
                        f"StudyEffects.{name} must be a (novice, expert) pair; got {value!r}"
                    )
                clean = tuple(
                    _effect_number(name, v, kind, lo, hi, lo_open, f"{name}[{i}]")
                    for i, v in enumerate(items)
                )
            else:
                clean = _effect_number(name, value, kind, lo, hi, lo_open, name)
            object.__setattr__(self, name, clean)
        if self.driven_fraction + self.suppressed_fraction > 1:
            raise ValueError(
                "StudyEffects.driven_fraction + suppressed_fraction must be <= 1 (disjoint "
                f"sets of M1 neurons); got {self.driven_fraction!r} + "
                f"{self.suppressed_fraction!r}"
            )
        lo, hi = _sigmoid(1.0, self), _sigmoid(14.0, self)
        if not hi - lo > 1e-6:
            raise ValueError(
                "StudyEffects.learning_midpoint_day and learning_width_days give a learning "
                "curve that does not rise between day 1 and day 14 (midpoint "
                f"{self.learning_midpoint_day!r}, width {self.learning_width_days!r}); "
                "put the midpoint near days 1-14 or widen the curve"
            )

    @classmethod
    def null(cls, **overrides) -> StudyEffects:
        """Every effect switched off.

        No learning (behaviour stays novice-like), every population encodes the movement
        alike (thalamus = other inputs = M1 = the novice-thalamus level: the same
        ``snr``, fraction of encoding units and lead of 1 frame, no change with days),
        M1 encoding neurons unrelated to the stimulated ones and no stimulation
        response at all, no suppression of irrelevant activity, silencing without
        behavioural effect. The light artefact stays. What still differs between
        populations is not an effect: their numbers of units (``UNIT_COUNTS``) and the
        directions of the M1 weights (positive: activated by the push).

        Parameters
        ----------
        **overrides
            Fields to set differently (e.g. ``stim_response=1.0`` for a study where
            stimulation works but nothing else changes).

        Returns
        -------
        StudyEffects
        """
        d = cls()
        snr, frac, lead = d.thalamus_snr[0], d.thalamus_fraction[0], d.thalamus_lead_frames[0]
        base = dict(
            learning=0.0,
            thalamus_snr=(snr, snr),
            thalamus_fraction=(frac, frac),
            thalamus_lead_frames=(lead, lead),
            other_snr=snr,
            other_fraction=frac,
            other_lead_frames=lead,
            m1_snr=snr,
            m1_fraction=frac,
            m1_lead_frames=lead,
            stim_response=0.0,
            overlap_log_odds=(0.0, 0.0),
            irrelevant_activity=(1.0, 1.0),
            silencing_effect=0.0,
        )
        base.update(overrides)
        return dataclasses.replace(d, **base)

    def to_dict(self) -> dict:
        """Plain dict of the fields (tuples become lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


#: Allowed range of every StudyEffects field: (kind, low, high, low bound excluded).
#: kind: "real" / "int", or "pair real" / "pair int" for (novice, expert) pairs.
_UNIT = ("real", 0.0, 1.0, False)
_NONNEG = ("real", 0.0, math.inf, False)
_EFFECT_RANGES = {
    "learning": _UNIT,
    "learning_midpoint_day": ("real", -math.inf, math.inf, False),
    "learning_width_days": ("real", 0.0, math.inf, True),
    "reaction_time_s": ("pair real", 0.0, math.inf, True),
    "reaction_time_cv": ("pair real", 0.0, math.inf, False),
    "movement_duration_s": ("pair real", 0.0, math.inf, True),
    "amplitude_mm": ("pair real", 0.0, math.inf, False),
    "amplitude_cv": ("pair real", 0.0, math.inf, False),
    "trajectory_noise": ("pair real", 0.0, 1.0, False),
    "no_movement_prob": ("pair real", 0.0, 1.0, False),
    "thalamus_snr": ("pair real", 0.0, math.inf, False),
    "thalamus_fraction": ("pair real", 0.0, 1.0, False),
    "thalamus_lead_frames": ("pair int", -math.inf, math.inf, False),
    "other_snr": _NONNEG,
    "other_fraction": _UNIT,
    "other_lead_frames": ("int", -math.inf, math.inf, False),
    "m1_snr": _NONNEG,
    "m1_fraction": _UNIT,
    "m1_lead_frames": ("int", -math.inf, math.inf, False),
    "driven_fraction": _UNIT,
    "suppressed_fraction": _UNIT,
    "stim_response": _NONNEG,
    "overlap_log_odds": ("pair real", -700.0, 700.0, False),
    "irrelevant_activity": ("pair real", 0.0, math.inf, False),
    "silencing_effect": _UNIT,
    "stim_fraction": _UNIT,
    "silencing_fraction": _UNIT,
    "artifact_amplitude": _NONNEG,
}


def _range_text(kind: str, lo: float, hi: float, lo_open: bool) -> str:
    what = "an integer" if kind.endswith("int") else "a finite number"
    if math.isinf(lo) and math.isinf(hi):
        return what
    if math.isinf(hi):
        return f"{what} {'>' if lo_open else '>='} {lo:g}"
    return f"{what} in {'(' if lo_open else '['}{lo:g}, {hi:g}]"


def _effect_number(field_name, v, kind, lo, hi, lo_open, label):
    """One validated StudyEffects number (Python float, or int for integer fields)."""
    bad = ValueError(
        f"StudyEffects.{label} must be {_range_text(kind, lo, hi, lo_open)}; got {v!r}"
    )
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise bad
    if kind.endswith("int"):
        if not isinstance(v, numbers.Integral):
            raise bad
        out = int(v)
    else:
        out = float(v)
        if not math.isfinite(out):
            raise bad
    if out < lo or out > hi or (lo_open and out == lo):
        raise bad
    return out


def _sigmoid(d: float, effects) -> float:
    """The logistic learning curve at day ``d`` (before rescaling; no overflow)."""
    z = (d - effects.learning_midpoint_day) / effects.learning_width_days
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else math.exp(z)


def _role(population: str) -> str:
    """Population role: ``"thalamus"``, ``"m1"`` or ``"other"``."""
    p = population.lower()
    if "thal" in p:
        return "thalamus"
    if p == "m1" or p.startswith("m1") or "motor cortex" in p:
        return "m1"
    return "other"


def _lerp(pair, L: float) -> float:
    a, b = pair
    return float(a + (b - a) * L)


def learning_progress(day: int, effects: StudyEffects) -> float:
    """Learning progress ``L(day)`` in ``[0, effects.learning]`` (0 on day 1).

    Parameters
    ----------
    day : int
    effects : StudyEffects

    Returns
    -------
    float
    """

    lo, hi = _sigmoid(1.0, effects), _sigmoid(14.0, effects)
    v = (_sigmoid(float(day), effects) - lo) / (hi - lo)
    return float(effects.learning * min(max(v, 0.0), 1.0))


@dataclass(eq=False)
class SimulatedStudy:
    """A simulated learning study with its ground truth.

    Attributes
    ----------
    sessions : list of Session
        One per mouse x day x population, ordered by mouse, population, day.
    collection : SessionCollection
        The same sessions (``name`` "simulated lever-push study").
    truth : dict
        Ground truth (see :func:`simulate_study`).
    effects : StudyEffects
        The effect sizes used.
    settings : dict
        Analysis settings written to the ``[analysis]`` table of ``study.toml`` by
        :meth:`write` (keys of :data:`sharedrep.data.studyfile.ANALYSIS_KEYS`; small defaults:
        one shared dimension, lags 0, 2, 4, 29 permutations and bootstrap resamples);
        edit before writing to change them.
    """

    sessions: list[Session]
    collection: SessionCollection
    truth: dict
    effects: StudyEffects
    settings: dict = field(default_factory=dict)

    def write(self, folder: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write every session as NWB plus a ``study.toml`` describing them.

        Layout: ``folder/nwb/<session_id>.nwb`` and ``folder/study.toml`` (paths relative
        to the TOML file; valid for :func:`sharedrep.data.studyfile.validate_study` and
        :func:`sharedrep.data.studyfile.load_study`, which gives back these sessions). The
        ``[analysis]`` table holds small default analysis settings.

        Parameters
        ----------
        folder : str or os.PathLike
            Destination folder (created if missing).
        overwrite : bool, default False
            Replace existing files; otherwise an existing ``study.toml`` or NWB file
            raises :class:`FileExistsError` (checked before anything is written).

        Returns
        -------
        pathlib.Path
            Path of ``study.toml``.

        Raises
        ------
        FileExistsError
            A file exists and ``overwrite`` is False.
        ImportError
            ``pynwb`` is not installed.
        """
        from sharedrep.data.io import atomic_write, write_nwb

        folder = Path(folder)
        toml_path = folder / "study.toml"
        nwb_dir = folder / "nwb"
        paths = [nwb_dir / f"{s.session_id}.nwb" for s in self.sessions]
        if not overwrite:
            existing = [p for p in [toml_path, *paths] if p.exists()]
            if existing:
                raise FileExistsError(
                    f"{existing[0]} already exists ({len(existing)} file(s) in the way); "
                    "pass overwrite=True to replace them"
                )
        nwb_dir.mkdir(parents=True, exist_ok=True)
        for s, p in zip(self.sessions, paths, strict=True):
            write_nwb(s, p, overwrite=overwrite, neural_unit="dF/F")
        text = _study_toml(self, [p.relative_to(folder) for p in paths])
        atomic_write(
            toml_path, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite=overwrite
        )
        return toml_path


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} to TOML")


def _study_toml(study: SimulatedStudy, rel_paths: list[Path]) -> str:
    lines = [
        "# Simulated lever-push learning study (sharedrep.sim.learning_study).",
        "# Every session is an NWB file written by sharedrep.data.io.write_nwb.",
        "",
        "[study]",
        f"name = {_toml_value('simulated lever-push study')}",
        "description = "
        + _toml_value(
            f"{study.truth['n_mice']} mice, days {study.truth['days']}, populations "
            f"{study.truth['populations']}; seed {study.truth['seed']}"
        ),
        "",
        "[analysis]",
    ]
    for k, v in study.settings.items():
        lines.append(f"{k} = {_toml_value(v)}")
    lines += ["", "[defaults]", 'format = "nwb"', ""]
    for s, p in zip(study.sessions, rel_paths, strict=True):
        lines += [
            "[[sessions]]",
            f"subject = {_toml_value(s.subject)}",
            f"session_id = {_toml_value(s.session_id)}",
            f"day = {int(s.day)}",
            f"stage = {_toml_value(s.stage)}",
            f"population = {_toml_value(s.population)}",
            f"path = {_toml_value(p.as_posix())}",
            "",
        ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- behaviour
def _push_template(u: np.ndarray) -> np.ndarray:
    """Stereotyped push: raised-cosine rise (30 %), hold, fall (40 %); u in [0, 1]."""
    out = np.zeros_like(u)
    rise = (u >= 0) & (u < 0.3)
    out[rise] = 0.5 * (1 - np.cos(np.pi * u[rise] / 0.3))
    out[(u >= 0.3) & (u < 0.6)] = 1.0
    fall = (u >= 0.6) & (u <= 1.0)
    out[fall] = 0.5 * (1 + np.cos(np.pi * (u[fall] - 0.6) / 0.4))
    return out


def _bump(u: np.ndarray, center: float, width: float) -> np.ndarray:
    x = (u - center) / width
    return np.where(np.abs(x) < 1, 0.5 * (1 + np.cos(np.pi * x)), 0.0)


def _trial_behavior(rng, L: float, eff: StudyEffects, tt: np.ndarray):
    """One trial's lever trajectory on relative times ``tt`` (s from trial start).

    Returns ``(position (n,), moved, reaction_time, peak, crossing_time)``.
    """
    pos = np.zeros_like(tt)
    moved = rng.random() >= _lerp(eff.no_movement_prob, L)
    rt_mean = _lerp(eff.reaction_time_s, L)
    rt_cv = _lerp(eff.reaction_time_cv, L)
    s2 = math.log1p(rt_cv**2)
    rt = max(0.15, float(rng.lognormal(math.log(rt_mean) - s2 / 2, math.sqrt(s2))))
    if not moved or rt > RESPONSE_WINDOW_S:
        return pos, False, math.nan, 0.0, math.nan
    cv = _lerp(eff.amplitude_cv, L)
    amp = _lerp(eff.amplitude_mm, L) * max(0.2, 1 + cv * rng.standard_normal())
    dur = _lerp(eff.movement_duration_s, L) * math.exp(cv * 0.8 * rng.standard_normal())
    noise = _lerp(eff.trajectory_noise, L)
    onset = CUE_S + rt
    u = (tt - onset) / dur
    shape = _push_template(u)
    # shape distortions: two smooth bumps of random sign, size ~ noise * amplitude
    for _ in range(2):
        c = rng.uniform(0.1, 0.9)
        shape += noise * 0.5 * rng.standard_normal() * _bump(u, c, 0.35)
    # sub-movement (second, partial push), probability = noise
    if rng.random() < noise:
        delay = rng.uniform(0.6, 1.2)
        shape += rng.uniform(0.3, 0.8) * _push_template((tt - onset - delay * dur) / (0.7 * dur))
    shape = np.clip(shape, -0.2, None)
    pos = amp * shape * (tt >= onset)
    # taper to rest before the end of the trial (lever returns)
    end = tt[-1]
    pos *= np.clip((end - tt) / 0.3, 0.0, 1.0)
    in_win = tt <= CUE_S + RESPONSE_WINDOW_S
    reach = np.flatnonzero(in_win & (pos >= THRESHOLD_MM))
    cross = float(tt[reach[0]]) if reach.size else math.nan
    peak = float(pos[in_win].max()) if in_win.any() else 0.0
    return pos, True, rt, peak, cross


def _ar1(rng, T: int, n: int, phi: float) -> np.ndarray:
    e = rng.standard_normal((T, n)) * math.sqrt(1 - phi**2)
    return lfilter([1.0], [1.0, -phi], e, axis=0)


# --------------------------------------------------------------------------- mice
@dataclass
class _Population:
    name: str
    role: str
    n_units: int
    weights: np.ndarray  # (N, 2) unit directions
    priority: np.ndarray  # (N,) order in which units join the encoding set
    noise_sd: np.ndarray  # (N,)
    driven: np.ndarray | None = None  # bool (N,)
    suppressed: np.ndarray | None = None
    enc_novice: np.ndarray | None = None  # bool (N,)
    enc_expert: np.ndarray | None = None


def _weighted_choice(rng, n: int, k: int, weights: np.ndarray) -> np.ndarray:
    """``k`` distinct indices drawn sequentially with probabilities ~ ``weights``."""
    keys = rng.random(n) ** (1.0 / weights)  # Efraimidis-Spirakis
    return np.argsort(-keys)[:k]


def _make_population(rng, name: str, eff: StudyEffects) -> _Population:
    role = _role(name)
    lo, hi = UNIT_COUNTS[role]
    N = int(rng.integers(lo, hi + 1))
    ang = rng.uniform(0, 2 * np.pi, N) if role != "m1" else rng.uniform(0, np.pi / 2, N)
    pop = _Population(
        name=name,
        role=role,
        n_units=N,
        weights=np.column_stack([np.cos(ang), np.sin(ang)]),
        priority=rng.permutation(N),
        noise_sd=np.sqrt(0.5 * rng.uniform(0.8, 1.2, N)),
    )
    if role == "m1":
        order = rng.permutation(N)
        nd = int(round(eff.driven_fraction * N))
        ns = int(round(eff.suppressed_fraction * N))
        pop.driven = np.zeros(N, bool)
        pop.driven[order[:nd]] = True
        pop.suppressed = np.zeros(N, bool)
        pop.suppressed[order[nd : nd + ns]] = True
        k = _n_encoding(eff.m1_fraction, N)
        for stage, lor in zip(("novice", "expert"), eff.overlap_log_odds, strict=True):
            w = np.where(pop.driven, math.exp(lor), 1.0)
            sel = np.zeros(N, bool)
            sel[_weighted_choice(rng, N, k, w)] = True
            setattr(pop, f"enc_{stage}", sel)
    return pop


def _n_encoding(frac: float, N: int) -> int:
    """Encoding units of a population of ``N``: ``round(frac * N)``, at least one when
    ``frac > 0`` and none when ``frac == 0``."""
    return 0 if frac <= 0 else max(1, int(round(frac * N)))


def _encoding_params(role: str, L: float, eff: StudyEffects) -> tuple[float, float]:
    """``(snr, fraction)`` of the encoding units of a population role on a day with
    progress ``L`` (M1: the size of its novice and expert encoding sets, whose gains
    mix on intermediate days)."""
    if role == "thalamus":
        return _lerp(eff.thalamus_snr, L), _lerp(eff.thalamus_fraction, L)
    if role == "m1":
        return float(eff.m1_snr), float(eff.m1_fraction)
    return float(eff.other_snr), float(eff.other_fraction)


def _encodes(role: str, L: float, eff: StudyEffects) -> bool:
    """Whether any unit of the role carries the movement on a day with progress ``L``
    (a fraction > 0 gives at least one encoding unit; an snr of 0 gives them no gain)."""
    snr, frac = _encoding_params(role, L, eff)
    return snr > 0 and frac > 0


def _unit_gains(pop: _Population, L: float, eff: StudyEffects) -> np.ndarray:
    """Encoding gain ``g_i`` (sqrt of snr) of every unit on a day with progress ``L``."""
    N = pop.n_units
    snr, frac = _encoding_params(pop.role, L, eff)
    if pop.role == "m1":
        member = (1 - L) * pop.enc_novice + L * pop.enc_expert
        return math.sqrt(snr) * member
    k = _n_encoding(frac, N)
    g = np.zeros(N)
    g[pop.priority[:k]] = math.sqrt(snr)
    return g


def _lead_frames(role: str, L: float, eff: StudyEffects) -> int:
    """Lead (frames) of the movement term of a population role on a day with progress
    ``L`` (applied even when no unit encodes; the truth then has no lead)."""
    if role == "thalamus":
        return int(round(_lerp(eff.thalamus_lead_frames, L)))
    if role == "m1":
        return int(eff.m1_lead_frames)
    return int(eff.other_lead_frames)


# --------------------------------------------------------------------------- sessions
def _simulate_session(
    rng,
    *,
    mouse: str,
    day: int,
    pop: _Population,
    eff: StudyEffects,
    n_trials: int,
    fr: float,
    stim: bool,
    silencing: bool,
) -> Session:
    """One mouse x day x population: trials, lever, keypoints, calcium activity.

    The random draws happen in a fixed order (trial schedule, trials, keypoints, neural
    activity, stimulation), so a seed gives the same session bit for bit.
    """
    L = learning_progress(day, eff)  # learning progress of the day, in [0, 1]
    frames_per_trial = int(round(TRIAL_DURATION_S * fr))
    T = frames_per_trial * n_trials
    is_stim, is_sil = _trial_schedule(rng, n_trials, eff, stim, silencing)
    lever, trials = _simulate_trials(rng, L, eff, is_stim, is_sil, frames_per_trial, fr)
    velocity = np.gradient(lever) * fr
    behavior = _keypoints(rng, lever, velocity)
    X, lead, gains = _neural_activity(rng, pop, L, eff, lever, velocity)
    X += _calcium_transients(rng, pop, L, eff, gains, T, fr)
    stimulation = None
    if is_stim.any():
        response, artefact, stimulation = _stimulation(rng, eff, is_stim, frames_per_trial, T, fr)
        if pop.driven is not None:
            amp = eff.stim_response * (pop.driven.astype(float) - 0.6 * pop.suppressed)
            X += response[:, None] * amp[None, :]
        X += artefact[:, None]
    return Session(
        subject=mouse,
        session_id=f"{mouse}-day{day:02d}-{pop.name}",
        day=day,
        stage=stage_of_day(day),
        population=pop.name,
        neural=X,
        timestamps=np.arange(T) / fr,
        unit_ids=np.arange(pop.n_units),
        behavior=behavior,
        behavior_names=list(BEHAVIOR_NAMES),
        behavior_units=list(BEHAVIOR_UNITS),
        trials=trials,
        stimulation=stimulation,
        metadata={
            "simulated": True,
            "neural_unit": "dF/F",
            "frame_rate": fr,
            "learning_progress": L,
            "lead_frames": lead,
        },
    )


def _trial_counts(n_trials: int, eff: StudyEffects, stim: bool, silencing: bool):
    """``(stimulation, silencing)`` trial counts of a session of ``n_trials`` trials."""
    n_stim = int(round(eff.stim_fraction * n_trials)) if stim else 0
    n_sil = int(round(eff.silencing_fraction * n_trials)) if silencing else 0
    return n_stim, n_sil


def _trial_schedule(rng, n_trials: int, eff: StudyEffects, stim: bool, silencing: bool):
    """Which trials get stimulation and which silencing (disjoint, interleaved at random).

    Returns two boolean arrays of shape (n_trials,): ``is_stim``, ``is_sil``.
    """
    order = rng.permutation(n_trials)
    n_stim, n_sil = _trial_counts(n_trials, eff, stim, silencing)
    is_stim = np.zeros(n_trials, bool)
    is_stim[order[:n_stim]] = True
    is_sil = np.zeros(n_trials, bool)
    is_sil[order[n_stim : n_stim + n_sil]] = True
    return is_stim, is_sil


def _simulate_trials(rng, L, eff, is_stim, is_sil, frames_per_trial: int, fr: float):
    """The lever trace, shape (n_frames,) in mm, and the trials table (times in s)."""
    n_trials = len(is_stim)
    tt = np.arange(frames_per_trial) / fr
    lever = np.zeros(frames_per_trial * n_trials)
    rows = []
    for k in range(n_trials):
        L_k = L * (1 - eff.silencing_effect) if is_sil[k] else L
        pos, moved, rt, peak, cross = _trial_behavior(rng, L_k, eff, tt)
        lever[k * frames_per_trial : (k + 1) * frames_per_trial] = pos
        start = k * frames_per_trial / fr
        cue = start + CUE_S
        success = moved and np.isfinite(cross)
        rows.append(
            {
                "start_time": start,
                "stop_time": (k + 1) * frames_per_trial / fr,
                "cue_time": cue,
                "movement_onset_time": cue + rt if moved else math.nan,
                "reward_time": start + cross if success else math.nan,
                "outcome": "success" if success else ("failure" if moved else "timeout"),
                "stim": bool(is_stim[k]),
                "silencing": bool(is_sil[k]),
                "peak_displacement_mm": float(peak),
            }
        )
    return lever, pd.DataFrame(rows)


def _keypoints(rng, lever: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """Behaviour, shape (n_frames, 6): lever, velocity and keypoints that follow the lever
    plus spontaneous movements (units: ``BEHAVIOR_UNITS``)."""
    T = len(lever)
    spont = _ar1(rng, T, 2, 0.85)
    beh = np.column_stack(
        [
            lever + 0.03 * rng.standard_normal(T),
            velocity + 0.3 * rng.standard_normal(T),
            1.0 * lever + 0.5 * spont[:, 0],
            0.5 * lever + 0.5 * spont[:, 1],
            0.6 * lever + 0.3 * spont[:, 0] + 0.4 * spont[:, 1],
            0.2 * lever + 0.6 * spont[:, 1],
        ]
    )
    beh[:, 2:] += 0.1 * rng.standard_normal((T, 4))
    return beh


def _neural_activity(rng, pop: _Population, L, eff, lever, velocity):
    """Movement encoding (led by ``lead`` frames), population fluctuation and white noise.

    Returns ``(X, lead, gains)``: activity of shape (n_frames, n_units) in dF/F, the lead
    in frames and the units' encoding gains, shape (n_units,).
    """
    T, N = len(lever), pop.n_units
    m = np.column_stack([lever, velocity])
    m = (m - m.mean(0)) / np.where(m.std(0) > 0, m.std(0), 1.0)
    lead = _lead_frames(pop.role, L, eff)
    ml = np.zeros_like(m)
    if lead >= 0:
        ml[: T - lead] = m[lead:]
    else:
        ml[-lead:] = m[: T + lead]
    gains = _unit_gains(pop, L, eff)
    X = (ml @ pop.weights.T) * gains
    # population fluctuation (variance 0.2) and white noise (variance ~0.5)
    X += 0.45 * _ar1(rng, T, 1, 0.95) * rng.choice([-1.0, 1.0], N)
    X += pop.noise_sd * rng.standard_normal((T, N))
    return X, lead, gains


def _calcium_transients(rng, pop: _Population, L, eff, gains, T: int, fr: float) -> np.ndarray:
    """Poisson events at 0.5 Hz, decay 0.6 s, variance 0.3; shape (T, n_units).

    In M1 the units that do not encode the movement fire at a rate scaled by
    ``eff.irrelevant_activity`` (which learning lowers).
    """
    N = pop.n_units
    lam = 0.5 / fr
    decay = math.exp(-1.0 / (0.6 * fr))
    sum_h2 = 1.0 / (1.0 - decay**2)
    mu = math.sqrt(0.3 / (2.0 * lam * sum_h2))
    scale = np.ones(N)
    if pop.role == "m1":
        scale = np.where(gains > 0, 1.0, _lerp(eff.irrelevant_activity, L))
    events = (rng.random((T, N)) < lam * scale) * rng.exponential(mu, (T, N))
    return lfilter([1.0], [1.0, -decay], events, axis=0)


def _stimulation(rng, eff, is_stim, frames_per_trial: int, T: int, fr: float):
    """Optogenetic pulse trains of the stimulation trials.

    Returns ``(response, artefact, table)``: the driven units' response profile and the
    light artefact, both shape (T,), and the pulses table (times in s).
    """
    t = np.arange(T) / fr
    period = 2.0 / fr
    response = np.zeros(T)
    artefact = np.zeros(T)
    rows = []
    for k in np.flatnonzero(is_stim):
        on = k * frames_per_trial / fr + STIM_ONSET_S
        off = on + (N_PULSES - 1) * period + PULSE_WIDTH_S
        for j in range(N_PULSES):
            p0 = on + j * period
            rows.append(
                {
                    "start_time": p0,
                    "stop_time": p0 + PULSE_WIDTH_S,
                    "kind": "activation",
                    "trial": int(k),
                }
            )
            # every frame [f/fr, (f+1)/fr) that overlaps the pulse [p0, p0 + width)
            f0 = int(np.floor(p0 * fr + 1e-9))
            f1 = max(f0, int(np.ceil((p0 + PULSE_WIDTH_S) * fr - 1e-9)) - 1)
            for f in range(f0, min(f1, T - 1) + 1):
                artefact[f] = eff.artifact_amplitude * rng.uniform(0.8, 1.2)
        rel = t - on
        rise = (rel >= 0) & (t <= off)
        response[rise] = 1 - np.exp(-rel[rise] / 0.15)
        after = t > off
        peak = 1 - math.exp(-(off - on) / 0.15)
        response[after] = np.maximum(response[after], peak * np.exp(-(t[after] - off) / 0.5))
    return response, artefact, pd.DataFrame(rows)


def _is_count(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_day_list(days) -> bool:
    return bool(days) and all(_is_count(d) and d >= 1 for d in days)


def _is_name_list(names) -> bool:
    return bool(names) and all(isinstance(p, str) and p for p in names)


def _is_frame_rate(value) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(value)
        and value >= 5
    )


#: What each argument of :func:`simulate_study` must be (checked by ``validate_params``).
_STUDY_CONSTRAINTS = {
    "n_mice": [Interval(int, 2, None)],
    "days": [Predicate(_is_day_list, "a non-empty sequence of ints >= 1")],
    "populations": [Predicate(_is_name_list, "a sequence of non-empty strings")],
    "trials_per_session": [Interval(int, 10, None)],
    "frame_rate": [Predicate(_is_frame_rate, "a number >= 5 (Hz)")],
    "effects": [TypeOf(StudyEffects, "a StudyEffects"), None],
    "seed": [Interval(int, 0, None)],
}


def _check_args(n_mice, days, populations, trials_per_session, frame_rate, effects, seed):
    """Validate the arguments of :func:`simulate_study`; return them normalised.

    Returns ``(n_mice, days, populations, effects, seed)``: days sorted, ``effects``
    defaulted, ``seed`` a Python int.
    """
    days, populations = tuple(days), tuple(populations)
    params = dict(
        n_mice=n_mice,
        days=days,
        populations=populations,
        trials_per_session=trials_per_session,
        frame_rate=frame_rate,
        effects=effects,
        seed=seed,
    )
    validate_params(params, _STUDY_CONSTRAINTS, owner="simulate_study")
    if len(set(days)) != len(days):
        raise ValueError(f"days must be unique; got {days!r}")
    if len(set(populations)) != len(populations):
        raise ValueError(f"populations must be unique; got {populations!r}")
    bad = [p for p in populations if "/" in p]
    if bad:
        raise ValueError(f"population names cannot contain '/': {bad}")
    effects = StudyEffects() if effects is None else effects
    _check_leads(effects, int(trials_per_session), float(frame_rate))
    return int(n_mice), tuple(sorted(int(d) for d in days)), populations, effects, int(seed)


def _check_leads(effects: StudyEffects, trials_per_session: int, frame_rate: float) -> None:
    """Leads shift the movement within a session: they must be shorter than a session."""
    T = int(round(TRIAL_DURATION_S * frame_rate)) * trials_per_session
    for name in ("thalamus_lead_frames", "other_lead_frames", "m1_lead_frames"):
        value = getattr(effects, name)
        if max(abs(v) for v in np.atleast_1d(value)) >= T:
            raise ValueError(
                f"StudyEffects.{name} must be shorter than a session ({T} frames: "
                f"trials_per_session x {TRIAL_DURATION_S} s x frame_rate); got {value!r}"
            )


def simulate_study(
    n_mice=6,
    days=(1, 2, 3, 7, 10, 14),
    populations=("thalamus", "other_input", "m1"),
    trials_per_session=60,
    frame_rate=10.0,
    effects=None,
    seed=0,
) -> SimulatedStudy:
    """Simulate the lever-push learning study (see the module docstring for the model).

    Parameters
    ----------
    n_mice : int, default 6
        Mice (subjects ``"mouse01"``, ``"mouse02"``, ...).
    days : sequence of int, default (1, 2, 3, 7, 10, 14)
        Imaging days (stage: novice <= 3, expert >= 10, intermediate otherwise).
    populations : sequence of str, default ("thalamus", "other_input", "m1")
        Imaged populations; names containing "thal" behave as motor thalamus, "m1" as M1
        layer 2/3 neurons, anything else as another input area.
    trials_per_session : int, default 60
        Trials per session (3.5 s each).
    frame_rate : float, default 10.0
        Imaging frame rate, Hz, >= 5 (leads are in frames). Numbers may be Python or
        numpy scalars (as for ``n_mice``, ``days`` and ``trials_per_session``).
    effects : StudyEffects, optional
        Effect sizes (default :class:`StudyEffects` ``()``: every effect on;
        :meth:`StudyEffects.null` switches them off).
    seed : int, default 0
        Seed, an integer >= 0 (Python or numpy int; not a bool, a float or None); each
        mouse / session draws from its own child seed.

    Returns
    -------
    SimulatedStudy
        ``truth`` holds: ``n_mice``, ``days``, ``populations``, ``seed``, ``subjects``,
        ``frame_rate``; ``stage_of_day`` {day: stage}; ``progress`` {day: L};
        ``lead_frames`` {population: {stage: frames}} and ``lead_frames_by_day``
        {population: {day: frames}}; ``snr`` {population: {stage: snr of encoding
        units}}; ``n_units`` {mouse: {population: N}}; ``encoding_units`` {mouse:
        {population: {stage: ids}}} (units whose gain is at least half the full gain on
        the stage's days); ``driven_units``, ``suppressed_units`` {mouse: ids} (M1);
        ``stim_sessions``, ``silencing_sessions`` (session ids); ``overlap_odds_ratio``
        {stage: exp(log odds)} (the selection parameter); ``expected`` (below);
        ``effects`` (dict).

        A lead or an snr exists only where units carry the movement: a population has
        encoding units on a day when its fraction of encoding units and its snr are both
        > 0 there. ``lead_frames_by_day`` is None on a day without encoding units;
        ``lead_frames`` and ``snr`` of a stage are the (rounded) mean over the stage's
        days with encoding units, None when it has none.

        ``expected``, the headline results the analyses should recover, each claimed
        only when the simulated data contain it:

        * ``best_encoding``: ``(thalamus, "expert")`` when the thalamus expert cell
          dominates every other (population, stage) cell of the study (the other
          thalamus stages included): on its weakest expert day its snr and fraction of
          encoding units are >= those of the other cell on that cell's strongest day,
          at least one of them strictly, and in every mouse its encoded variance
          (encoding units x snr, so the populations' unit counts count) is >= the other
          cell's. Otherwise (also without a thalamus or an expert stage) None.
        * ``undetermined``: the claims the simulation does not decide: those about a
          population, stage, stimulation or silencing the study does not image (no
          thalamus, no novice or expert stage, no M1, no stimulation or silencing
          days), and ``"best_encoding"``
          when the thalamus expert cell neither dominates nor is matched by another
          cell (a cell whose snr and fraction on its weakest day are at least the
          thalamus's on its strongest, or whose encoded variance is at least the
          thalamus's in every mouse), e.g. a higher snr but fewer encoding units: which
          population decodes the movement better then depends on the noise of the data.
        * ``lag_shift_frames``: expert minus novice thalamic ``lead_frames``; None
          when either stage is missing or has no encoding thalamic unit (no lead to
          measure).
        * ``overlap_increases``: M1 is imaged in a novice and an expert stage, the
          stimulation sessions have stimulation and other trials, ``stim_response > 0``,
          the selection log odds rise (``overlap_log_odds``) and the simulated sets
          show it: the Mantel-Haenszel odds ratio (mice as strata, 0.5 added to both
          sums) of ``driven_units`` x M1 ``encoding_units`` is higher in experts, with
          a driven and an encoding unit in each stage.
        * ``silencing_impairs``: silencing sessions exist with laser-on and laser-off
          trials, ``silencing_effect > 0`` and laser-on trials are expected to succeed
          less often than laser-off trials (success rate of the trial model at the two
          learning progress levels, Monte Carlo on common random numbers: equal
          behaviour, as without learning, gives no impairment).

    Raises
    ------
    ValueError, TypeError
        On invalid arguments (also: a lead of ``effects`` not shorter than a session,
        or ``stim_fraction + silencing_fraction > 1`` for a session that has both).
    """
    n_mice, days, populations, eff, seed = _check_args(
        n_mice, days, populations, trials_per_session, frame_rate, effects, seed
    )
    design = _StudyDesign.of(days, populations, int(trials_per_session), float(frame_rate))
    _check_shared_trials(design, eff)
    mice = [f"mouse{i + 1:02d}" for i in range(n_mice)]
    sessions, unit_truth = _simulate_mice(mice, design, eff, seed)
    truth = {
        "n_mice": n_mice,
        "subjects": mice,
        "days": list(days),
        "populations": list(populations),
        "roles": design.roles,
        "seed": seed,
        "frame_rate": design.frame_rate,
        "trials_per_session": design.n_trials,
        "stage_of_day": design.stages,
        **_effect_truth(design, eff),
        **unit_truth,
        "stim_sessions": [
            s.session_id
            for s in sessions
            if s.population == design.m1_pop and s.day in design.stim_days
        ],
        "silencing_sessions": [
            s.session_id
            for s in sessions
            if s.population == design.m1_pop and s.day in design.sil_days
        ],
        "overlap_odds_ratio": {
            "novice": math.exp(eff.overlap_log_odds[0]),
            "expert": math.exp(eff.overlap_log_odds[1]),
        },
    }
    truth["expected"] = _expected_results(design, eff, truth)
    truth["effects"] = eff.to_dict()
    return SimulatedStudy(
        sessions=sessions,
        collection=SessionCollection(sessions, name="simulated lever-push study"),
        truth=truth,
        effects=eff,
        settings=_analysis_settings(seed, design.stage_days),
    )


@dataclass(frozen=True)
class _StudyDesign:
    """Days, populations and which sessions get stimulation or silencing."""

    days: tuple
    populations: tuple
    n_trials: int
    frame_rate: float  # Hz
    stages: dict  # day -> stage
    stage_days: dict  # stage -> days, in order of first appearance
    roles: dict  # population -> "thalamus", "m1" or "other"
    m1_pop: str | None
    stim_days: set
    sil_days: set

    @classmethod
    def of(cls, days, populations, n_trials: int, frame_rate: float) -> _StudyDesign:
        stages = {d: stage_of_day(d) for d in days}
        stage_days = {
            st: [d for d in days if stages[d] == st] for st in dict.fromkeys(stages.values())
        }
        roles = {p: _role(p) for p in populations}
        # stimulation: M1 session on the last day of the novice and of the expert stage
        stim_days = {max(stage_days[st]) for st in ("novice", "expert") if st in stage_days}
        expert_days = stage_days.get("expert", [])
        sil_days = {d for d in expert_days if d not in stim_days} or set(expert_days)
        return cls(
            days=days,
            populations=populations,
            n_trials=n_trials,
            frame_rate=frame_rate,
            stages=stages,
            stage_days=stage_days,
            roles=roles,
            m1_pop=next((p for p in populations if roles[p] == "m1"), None),
            stim_days=stim_days,
            sil_days=sil_days,
        )


def _check_shared_trials(design: _StudyDesign, eff: StudyEffects) -> None:
    """A session with stimulation and silencing must have trials enough for both."""
    both = design.stim_days & design.sil_days
    if not (design.m1_pop and both):
        return
    n_tr = design.n_trials
    n_stim, n_sil = round(eff.stim_fraction * n_tr), round(eff.silencing_fraction * n_tr)
    if n_stim + n_sil > n_tr:
        raise ValueError(
            f"StudyEffects.stim_fraction + silencing_fraction must be <= 1 when a session "
            f"has both (day {min(both)}, the only expert day); got "
            f"{eff.stim_fraction!r} + {eff.silencing_fraction!r} ({n_stim} + {n_sil} of "
            f"{n_tr} trials)"
        )


def _simulate_mice(mice: list, design: _StudyDesign, eff: StudyEffects, seed: int):
    """Every session of every mouse, and the truth about the mice's units.

    Each mouse draws its populations from child seed ``(i,)`` and each session from
    ``(i, j, day, 1)`` of ``seed``. Returns ``(sessions, unit_truth)`` with
    ``unit_truth`` holding ``n_units``, ``encoding_units``, ``driven_units`` and
    ``suppressed_units``.
    """
    root = np.random.SeedSequence(seed)
    sessions: list[Session] = []
    units = {"n_units": {}, "encoding_units": {}, "driven_units": {}, "suppressed_units": {}}
    for i, mouse in enumerate(mice):
        rng_mouse = np.random.default_rng(np.random.SeedSequence(root.entropy, spawn_key=(i,)))
        pops = [_make_population(rng_mouse, p, eff) for p in design.populations]
        units["n_units"][mouse] = {p.name: p.n_units for p in pops}
        units["encoding_units"][mouse] = {}
        for j, pop in enumerate(pops):
            units["encoding_units"][mouse][pop.name] = _encoding_units(pop, design, eff)
            if pop.role == "m1":
                units["driven_units"][mouse] = np.flatnonzero(pop.driven)
                units["suppressed_units"][mouse] = np.flatnonzero(pop.suppressed)
            is_m1 = pop.name == design.m1_pop
            for day in design.days:
                rng = np.random.default_rng(
                    np.random.SeedSequence(root.entropy, spawn_key=(i, j, int(day), 1))
                )
                session = _simulate_session(
                    rng,
                    mouse=mouse,
                    day=day,
                    pop=pop,
                    eff=eff,
                    n_trials=design.n_trials,
                    fr=design.frame_rate,
                    stim=is_m1 and day in design.stim_days,
                    silencing=is_m1 and day in design.sil_days,
                )
                sessions.append(session)
    return sessions, units


def _encoding_units(pop: _Population, design: _StudyDesign, eff: StudyEffects) -> dict:
    """Per stage, the units whose mean gain is at least half the stage's full gain."""
    found = {}
    for st, ds in design.stage_days.items():
        full = np.max(
            [_unit_gains(pop, learning_progress(d, eff), eff).max() for d in ds] + [1e-12]
        )
        g = np.mean([_unit_gains(pop, learning_progress(d, eff), eff) for d in ds], 0)
        found[st] = np.flatnonzero(g >= 0.5 * full)
    return found


def _effect_truth(design: _StudyDesign, eff: StudyEffects) -> dict:
    """Learning progress per day; leads (frames) and SNR per population and stage.

    A lead or an snr exists only where some unit carries the movement: on a day on which
    the population has no encoding unit (fraction or snr 0) the day's lead is None, and a
    stage's lead / snr is the (rounded) mean over the stage's days that have encoding
    units, None when none has.
    """
    progress = {d: learning_progress(d, eff) for d in design.days}

    def lead_for(pop_name, d):
        role = design.roles[pop_name]
        if not _encodes(role, progress[d], eff):
            return None
        return _lead_frames(role, progress[d], eff)

    def stage_mean(pop_name, days, value):
        role = design.roles[pop_name]
        vals = [value(role, progress[d]) for d in days if _encodes(role, progress[d], eff)]
        return float(np.mean(vals)) if vals else None

    def stage_lead(pop_name, days):
        mean = stage_mean(pop_name, days, lambda role, L: _lead_frames(role, L, eff))
        return None if mean is None else int(round(mean))

    stage_days = design.stage_days
    return {
        "progress": progress,
        "lead_frames": {
            p: {st: stage_lead(p, ds) for st, ds in stage_days.items()} for p in design.populations
        },
        "lead_frames_by_day": {
            p: {d: lead_for(p, d) for d in design.days} for p in design.populations
        },
        "snr": {
            p: {
                st: stage_mean(p, ds, lambda role, L: _encoding_params(role, L, eff)[0])
                for st, ds in stage_days.items()
            }
            for p in design.populations
        },
    }


def _expected_results(design: _StudyDesign, eff: StudyEffects, truth: dict) -> dict:
    """The headline results the analyses should recover from this simulation.

    Each is claimed only when the simulated data contain it (rules: :func:`simulate_study`).
    ``truth`` holds ``progress``, ``lead_frames``, ``n_units``, ``encoding_units`` and
    ``driven_units``.
    """
    thal = next((p for p in design.populations if design.roles[p] == "thalamus"), None)
    leads = truth["lead_frames"].get(thal, {})
    shift = None
    if leads.get("novice") is not None and leads.get("expert") is not None:
        shift = leads["expert"] - leads["novice"]
    best, decided = _best_encoding(design, eff, truth["progress"], truth["n_units"])
    return {
        "best_encoding": best,
        "undetermined": _undetermined(design, thal, decided),
        "lag_shift_frames": shift,
        "overlap_increases": _overlap_increases(design, eff, truth),
        "silencing_impairs": _silencing_impairs(design, eff, truth["progress"]),
    }


def _undetermined(design: _StudyDesign, thal: str | None, best_decided: bool) -> list[str]:
    """The claims of ``expected`` this design cannot test or the effects do not decide:
    a claim about a population or stage that is not imaged, or about stimulation or
    silencing sessions the study does not have, and an undecided best encoding."""
    stages = set(design.stage_days)
    both = {"novice", "expert"} <= stages
    out = []
    if thal is None or "expert" not in stages or not best_decided:
        out.append("best_encoding")
    if thal is None or not both:
        out.append("lag_shift_frames")
    if design.m1_pop is None or not both or not design.stim_days:
        out.append("overlap_increases")
    if design.m1_pop is None or not design.sil_days:
        out.append("silencing_impairs")
    return out


def _cell_strength(design: _StudyDesign, eff: StudyEffects, pop: str, days, progress, n_units):
    """Per day of a (population, stage) cell: ``(snr, fraction, encoded)`` of its encoding
    units, ``encoded`` (one per mouse) = encoding units x snr; all 0 on a day without
    encoding units."""
    role = design.roles[pop]
    rows = []
    for d in days:
        snr, frac = _encoding_params(role, progress[d], eff)
        if not _encodes(role, progress[d], eff):
            snr, frac = 0.0, 0.0
        encoded = np.array([_n_encoding(frac, n_units[m][pop]) * snr for m in n_units], float)
        rows.append((snr, frac, encoded))
    return rows


def _cell_bounds(design: _StudyDesign, eff: StudyEffects, pop: str, days, progress, n_units):
    """The weakest and the strongest day of a (population, stage) cell: two
    ``(snr, fraction, encoded)`` triples, ``encoded`` one value per mouse."""
    rows = _cell_strength(design, eff, pop, days, progress, n_units)
    snr, frac = [r[0] for r in rows], [r[1] for r in rows]
    encoded = np.array([r[2] for r in rows])
    return (min(snr), min(frac), encoded.min(axis=0)), (max(snr), max(frac), encoded.max(axis=0))


def _dominates(a, b) -> bool:
    """Cell strength ``a`` beats ``b``: at least its snr, fraction and, in every mouse,
    encoded variance, with a higher snr or fraction."""
    return (
        a[0] >= b[0]
        and a[1] >= b[1]
        and bool(np.all(a[2] >= b[2]))
        and (a[0] > b[0] or a[1] > b[1])
    )


def _matches(a, b) -> bool:
    """Cell strength ``a`` encodes at least as well as ``b``: per unit (snr and fraction)
    or in encoded variance in every mouse."""
    per_unit = a[0] >= b[0] and a[1] >= b[1] and a[0] > 0
    return per_unit or bool(np.all(a[2] >= b[2]) and np.any(a[2] > 0))


def _best_encoding(design: _StudyDesign, eff: StudyEffects, progress, n_units):
    """``((thalamus, "expert") or None, decided)``: the thalamus expert cell when on its
    weakest day it dominates every other (population, stage) cell on that cell's strongest
    day; None and decided when another cell on its weakest day matches the thalamus
    expert cell on its strongest (or the thalamus has no encoding unit then); None and not
    decided otherwise (see :func:`simulate_study`)."""
    thal = next((p for p in design.populations if design.roles[p] == "thalamus"), None)
    if thal is None or "expert" not in design.stage_days:
        return None, True
    weakest, strongest = _cell_bounds(
        design, eff, thal, design.stage_days["expert"], progress, n_units
    )
    others = [
        _cell_bounds(design, eff, pop, days, progress, n_units)
        for pop in design.populations
        for st, days in design.stage_days.items()
        if (pop, st) != (thal, "expert")
    ]
    if all(_dominates(weakest, high) for _, high in others):
        return (thal, "expert"), True
    silent = not (strongest[0] > 0 and strongest[1] > 0)  # no encoding unit: not the best
    return None, silent or any(_matches(low, strongest) for low, _ in others)


def _session_trials(design: _StudyDesign, eff: StudyEffects, day: int) -> tuple[int, int, int]:
    """``(stimulation, silencing, other)`` trial counts of the M1 session of ``day``
    (those :func:`_trial_schedule` draws)."""
    n = design.n_trials
    n_stim, n_sil = _trial_counts(n, eff, day in design.stim_days, day in design.sil_days)
    return n_stim, n_sil, n - n_stim - n_sil


def _mh_log_odds_ratio(driven: list, encoding: list) -> float:
    """log Mantel-Haenszel odds ratio of driven x encoding, mice as strata, 0.5 added to
    the numerator and denominator sums (as :mod:`sharedrep.study.optogenetics`)."""
    num = den = 0.5
    for x, y in zip(driven, encoding, strict=True):
        n = x.size
        num += np.sum(x & y) * np.sum(~x & ~y) / n
        den += np.sum(x & ~y) * np.sum(~x & y) / n
    return float(np.log(num / den))


def _overlap_increases(design: _StudyDesign, eff: StudyEffects, truth: dict) -> bool:
    """Whether driven M1 units overlap encoding M1 units more in experts than in novices,
    in the simulated data (see :func:`simulate_study`)."""
    m1 = design.m1_pop
    if not (m1 and {"novice", "expert"} <= set(design.stage_days)):
        return False
    if not (eff.stim_response > 0 and eff.overlap_log_odds[1] > eff.overlap_log_odds[0]):
        return False
    for day in design.stim_days:
        n_stim, _, n_other = _session_trials(design, eff, day)
        if n_stim < 1 or n_other < 1:  # driven units cannot be told from the others
            return False
    lor = {}
    for st in ("novice", "expert"):
        driven, encoding = [], []
        for m, counts in truth["n_units"].items():
            ids = np.arange(counts[m1])
            driven.append(np.isin(ids, truth["driven_units"][m]))
            encoding.append(np.isin(ids, truth["encoding_units"][m][m1][st]))
        if not any(x.any() for x in driven) or not any(y.any() for y in encoding):
            return False
        lor[st] = _mh_log_odds_ratio(driven, encoding)
    return lor["expert"] > lor["novice"]


#: Trials (common random numbers) of the expected success rate behind ``silencing_impairs``.
_SUCCESS_TRIALS = 1000


@functools.lru_cache(maxsize=64)
def _success_rate(eff: StudyEffects, L: float, frames_per_trial: int, fr: float) -> float:
    """Expected success rate of trials generated with learning progress ``L`` (Monte
    Carlo over ``_SUCCESS_TRIALS`` trials, each from its own fixed seed, so that two
    progress levels are compared on the same random numbers: equal behaviour gives
    equal rates)."""
    tt = np.arange(frames_per_trial) / fr
    hits = 0
    for k in range(_SUCCESS_TRIALS):
        rng = np.random.default_rng(np.random.SeedSequence(20240611, spawn_key=(k,)))
        _, moved, _, _, cross = _trial_behavior(rng, L, eff, tt)
        hits += bool(moved and np.isfinite(cross))
    return hits / _SUCCESS_TRIALS


def _silencing_impairs(design: _StudyDesign, eff: StudyEffects, progress: dict) -> bool:
    """Whether laser-on trials of the silencing sessions are expected to succeed less
    often than their laser-off trials (see :func:`simulate_study`)."""
    if not (design.m1_pop and design.sil_days and eff.silencing_effect > 0):
        return False
    fpt = int(round(TRIAL_DURATION_S * design.frame_rate))
    diffs = []
    for day in sorted(design.sil_days):
        _, n_sil, n_other = _session_trials(design, eff, day)
        if n_sil < 1 or n_other < 1:  # nothing to compare
            return False
        L = progress[day]
        L_on = L * (1 - eff.silencing_effect)
        if L_on == L:  # no learning to lose
            diffs.append(0.0)
            continue
        on = _success_rate(eff, L_on, fpt, design.frame_rate)
        diffs.append(on - _success_rate(eff, L, fpt, design.frame_rate))
    return float(np.mean(diffs)) < 0


def _analysis_settings(seed: int, stage_days: dict) -> dict:
    """The ``[analysis]`` settings written to the simulated study's ``study.toml``."""
    settings = {
        "n_shared": 1,
        "lags": [0, 2, 4],
        "cv": 5,
        "random_state": seed,
        "n_permutations": 29,
        "n_bootstrap": 29,
        "fdr": 0.05,
    }
    present = [st for st in ("novice", "expert") if st in stage_days]
    if len(present) == 2:
        settings["stages"] = present
    return settings
