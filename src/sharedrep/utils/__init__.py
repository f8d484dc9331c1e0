"""Small dependencies of every layer; imports nothing else from sharedrep.

:mod:`~sharedrep.utils.validation` checks arrays at the public boundary (messages name
the subject, the array and the expected shape); :mod:`~sharedrep.utils.params` checks
parameters against declarative constraint tables; :mod:`~sharedrep.utils.files` is the
one atomic file writer; :mod:`~sharedrep.utils.parallel` runs work on threads under one
BLAS thread budget.
"""
