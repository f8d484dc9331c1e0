"""The estimator core: ShaReD and the exact linear algebra behind it.

:mod:`~sharedrep.core.estimator` is the scikit-learn style estimator (:class:`ShaReD`);
:mod:`~sharedrep.core.design` standardises and lag-embeds activity (trial boundaries
respected); :mod:`~sharedrep.core.data_pass` makes the one pass over the data that forms
per-block sufficient statistics, primal (:mod:`~sharedrep.core.solver`) or kernel
(:mod:`~sharedrep.core.dual`); :mod:`~sharedrep.core.solver` solves folds and the whole
ridge path from those statistics; :mod:`~sharedrep.core.cv` builds folds and selects
alpha and k; :mod:`~sharedrep.core.ridge` and :mod:`~sharedrep.core.metrics` hold the one
ridge-with-CV and the held-out R^2 used by baselines elsewhere; :mod:`~.backends` runs the
pass in memory (numpy), on a dask cluster or on a torch device. This layer reads no file
and draws no figure: it may import only :mod:`sharedrep.utils`.
"""
