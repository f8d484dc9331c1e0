"""Inference on fitted ShaReD models: is the shared representation real, stable, different?

Subjects (animals) are the units of inference throughout. :mod:`~.permutation`
(circular-shift null of the shared dimensions), :mod:`~.bootstrap` (subject bootstrap of
scores and axes), :mod:`~.groups` (two groups of subjects compared by relabelling),
:mod:`~.transfer` (a new animal decoded from few calibration trials, against a ridge
baseline), :mod:`~.evaluate` (does pooling animals help on these data? leave-one-animal-out
with interleaved calibration blocks, every decoder side by side, and a verdict),
:mod:`~.encoding` (which neurons of a subject encode the shared latents) and
:mod:`~.multitest` (Holm, Benjamini-Hochberg); :mod:`~._resampling` holds their shared
seeding and refit helpers. This layer may import :mod:`sharedrep.utils` and
:mod:`sharedrep.core` only.
"""
