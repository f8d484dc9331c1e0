"""Independent, seeded calls of library functions spread over the CPUs (worker processes).

:func:`parallel_calls` runs ``func(*args, **kwargs)`` for each call and returns the values
in order: the same values as a loop, since every call carries its own data and seeds.
Warnings behave as in the calling test: each worker applies the test's warning filters
(``error::RuntimeWarning`` raises there and fails the test; ``ignore`` filters hide), and
the warnings a worker records are issued again in the test, through its filters.

Only library functions (importable in a worker) are called; the test keeps its loop
bodies, data and assertions.
"""

from __future__ import annotations

import os
import warnings

from joblib import Parallel, delayed


def _text(regex) -> str:
    """A filter's message or module pattern (compiled, a string or None) as a string."""
    return "" if regex is None else getattr(regex, "pattern", regex)


def _call(filters: list, func, args: tuple, kwargs: dict):
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        for action, message, category, module, lineno in reversed(filters):
            warnings.filterwarnings(action, _text(message), category, _text(module), lineno)
        value = func(*args, **kwargs)
    return value, [(w.message, w.category, w.filename, w.lineno) for w in caught]


def parallel_calls(calls: list[tuple]) -> list:
    """``[func(*args, **kwargs) for func, args, kwargs in calls]``, on every CPU."""
    filters = list(warnings.filters)
    n_jobs = max(1, min(len(calls), os.cpu_count() or 1))
    out = Parallel(n_jobs=n_jobs)(delayed(_call)(filters, f, a, k) for f, a, k in calls)
    values = []
    for value, caught in out:
        for message, category, filename, lineno in caught:
            warnings.warn_explicit(message, category, filename, lineno)
        values.append(value)
    return values
