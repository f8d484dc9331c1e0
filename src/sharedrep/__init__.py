"""sharedrep: Shared Representation Discovery (ShaReD) across subjects.

Find one behavioural representation shared by several animals whose recorded neurons
differ, a neural encoder per animal onto it, and what stays private to each animal.
"""

from . import io, preprocess
from .model import PrivateComponents, ShaReD
from .session import FitArgs, Session, SessionCollection
from .simulate import SimulatedData, simulate
from .studyfile import StudyError, load_study, validate_study

__version__ = "0.1.0"

__all__ = [
    "FitArgs",
    "PrivateComponents",
    "Session",
    "SessionCollection",
    "ShaReD",
    "SimulatedData",
    "StudyError",
    "__version__",
    "io",
    "load_study",
    "preprocess",
    "simulate",
    "validate_study",
]
