"""sharedrep: Shared Representation Discovery (ShaReD) across subjects."""

__version__ = "0.1.0"
