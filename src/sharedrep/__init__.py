"""sharedrep: Shared Representation Discovery (ShaReD) across subjects.

Find one behavioural representation shared by several animals whose recorded neurons
differ, a neural encoder per animal onto it, and what stays private to each animal.
"""

from .model import PrivateComponents, ShaReD
from .simulate import SimulatedData, simulate

__version__ = "0.1.0"

__all__ = ["ShaReD", "PrivateComponents", "simulate", "SimulatedData", "__version__"]
