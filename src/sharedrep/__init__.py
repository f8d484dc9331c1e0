"""sharedrep: Shared Representation Discovery (ShaReD) across subjects.

Find one behavioural representation shared by several animals whose recorded neurons
differ, a neural encoder per animal onto it, and what stays private to each animal.
"""

from sharedrep._version import __version__
from sharedrep.core.estimator import PrivateComponents, ShaReD
from sharedrep.data import io, preprocess
from sharedrep.data.session import FitArgs, Session, SessionCollection
from sharedrep.data.studyfile import StudyError, load_study, validate_study
from sharedrep.inference.bootstrap import BootstrapResult, bootstrap_subjects
from sharedrep.inference.encoding import unit_encoding
from sharedrep.inference.evaluate import evaluate
from sharedrep.inference.groups import GroupComparison, compare_groups
from sharedrep.inference.permutation import PermutationResult, permutation_test
from sharedrep.inference.transfer import transfer_score
from sharedrep.sim.datasets import load_monkey_reach
from sharedrep.sim.generic import SimulatedData, simulate
from sharedrep.sim.learning_study import SimulatedStudy, StudyEffects, simulate_study

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
    "evaluate",
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
