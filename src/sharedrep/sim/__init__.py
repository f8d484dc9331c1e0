"""Simulators with a known answer and loaders of example datasets.

:mod:`~sharedrep.sim.generic` simulates subjects sharing a low-dimensional encoded
behavioural representation; :mod:`~sharedrep.sim.learning_study` simulates the
lever-push learning study as :class:`~sharedrep.data.session.Session` objects with its
ground truth; :mod:`~sharedrep.sim.datasets` loads real example data. The same seed
gives bit-identical data. This layer may import ``sharedrep.utils`` and
``sharedrep.data`` only.
"""
