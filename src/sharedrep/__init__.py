"""sharedrep: Shared Representation Discovery (ShaReD) across subjects.

Find one behavioural representation shared by several animals whose recorded neurons
differ, a neural encoder per animal onto it, and what stays private to each animal.
"""

from . import io, preprocess
from .datasets import load_monkey_reach
from .model import PrivateComponents, ShaReD
from .session import FitArgs, Session, SessionCollection
from .simulate import SimulatedData, simulate
from .simulate_study import SimulatedStudy, StudyEffects, simulate_study
from .stats import (
    BootstrapResult,
    GroupComparison,
    PermutationResult,
    bootstrap_subjects,
    compare_groups,
    permutation_test,
)
from .studyfile import StudyError, load_study, validate_study
from .transfer import transfer_score
from .units import unit_encoding

__version__ = "0.1.0"

__all__ = [
    "BootstrapResult",
    "FitArgs",
    "GroupComparison",
    "PermutationResult",
    "PrivateComponents",
    "Session",
    "SessionCollection",
    "ShaReD",
    "SimulatedData",
    "SimulatedStudy",
    "StudyEffects",
    "StudyError",
    "__version__",
    "bootstrap_subjects",
    "compare_groups",
    "io",
    "load_monkey_reach",
    "load_study",
    "permutation_test",
    "preprocess",
    "simulate",
    "simulate_study",
    "transfer_score",
    "unit_encoding",
    "validate_study",
]
