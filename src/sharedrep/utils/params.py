"""Declarative parameter validation: a table of constraints checked by one validator.

In the style of scikit-learn's ``_parameter_constraints``: a class (or a file schema)
states, per parameter, the list of constraints any one of which makes a value valid, and
:func:`validate_params` checks a whole mapping against that table with one uniform error
message, ``"<owner>: <name> must be <description>; got <value>"`` (:func:`param_problems`
returns every such message instead of raising the first)::

    CONSTRAINTS = {
        "cv": [Interval(int, 2, 50), None],
        "selection": [Options("best", "one_se")],
        "shrinkage": [Interval(float, 0.0, 1.0)],
    }
    validate_params({"cv": 5, "selection": "best", "shrinkage": 0.0}, CONSTRAINTS)

``None`` in a list admits ``None``. Cross-parameter rules (``device`` needs the torch
backend, ...) stay explicit code next to the table: they read better as sentences.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "InvalidParameterError",
    "Interval",
    "Options",
    "Predicate",
    "TypeOf",
    "param_problems",
    "validate_params",
]


class InvalidParameterError(ValueError, TypeError):
    """A parameter outside its documented range or of the wrong type.

    Subclasses both :class:`ValueError` and :class:`TypeError`, as scikit-learn's error of
    the same name, so callers may catch either.
    """


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Interval:
    """A number of ``kind`` (``int`` or ``float``) in ``[low, high]``.

    ``closed`` says which ends belong to the interval (``"both"``, ``"left"``,
    ``"right"``, ``"neither"``); ``None`` as an end means unbounded. ``float`` admits
    integers too, never booleans; NaN never passes.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"

    def accepts(self, value) -> bool:
        if not (_is_int(value) if self.kind is int else _is_real(value)):
            return False
        if math.isnan(float(value)):
            return False
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (value < self.low or (value == self.low and not left)):
            return False
        return not (
            self.high is not None and (value > self.high or (value == self.high and not right))
        )

    def describe(self) -> str:
        noun = "an int" if self.kind is int else "a number"
        if self.low is None and self.high is None:
            return noun
        if self.high is None:
            return f"{noun} {'>=' if self.closed in ('both', 'left') else '>'} {self.low}"
        if self.low is None:
            return f"{noun} {'<=' if self.closed in ('both', 'right') else '<'} {self.high}"
        lo = "[" if self.closed in ("both", "left") else "("
        hi = "]" if self.closed in ("both", "right") else ")"
        return f"{noun} in {lo}{self.low}, {self.high}{hi}"


class Options:
    """One of a fixed set of values (compared with ``==``; strings are case-sensitive)."""

    def __init__(self, *values):
        self.values = tuple(values)

    def accepts(self, value) -> bool:
        try:
            return any(value == v and type(value) is type(v) for v in self.values)
        except (TypeError, ValueError):
            return False

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class TypeOf:
    """An instance of ``types`` (a type or a tuple of types), described as ``what``."""

    types: type | tuple[type, ...]
    what: str

    def accepts(self, value) -> bool:
        return isinstance(value, self.types) and not (
            isinstance(value, bool) and bool not in _as_tuple(self.types)
        )

    def describe(self) -> str:
        return self.what


@dataclass(frozen=True)
class Predicate:
    """Any value for which ``check(value)`` is true, described as ``what``."""

    check: Callable[[Any], bool]
    what: str

    def accepts(self, value) -> bool:
        try:
            return bool(self.check(value))
        except (TypeError, ValueError):
            return False

    def describe(self) -> str:
        return self.what


def _as_tuple(types) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def _accepts(constraint, value) -> bool:
    return value is None if constraint is None else constraint.accepts(value)


def _describe(constraints: Iterable) -> str:
    words = ["None" if c is None else c.describe() for c in constraints]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def param_problems(
    params: Mapping[str, Any], constraints: Mapping[str, list], owner: str = ""
) -> list[str]:
    """Every entry of ``params`` that its constraints refuse, one message each.

    The collecting form of :func:`validate_params` (which raises the first of these
    messages): checks that must report every problem at once, such as those of a study
    file, use it directly.

    Parameters
    ----------
    params : mapping
        Parameter name -> value. Names absent from ``constraints`` are not checked.
    constraints : mapping
        Parameter name -> list of constraints (:class:`Interval`, :class:`Options`,
        :class:`TypeOf`, :class:`Predicate` or ``None``); a value is valid when any one
        constraint accepts it.
    owner : str, optional
        Prefix of each message (the class or file the parameters belong to).

    Returns
    -------
    list of str
        ``"<owner>: <name> must be <description>; got <value>"`` per refused
        parameter, in the order of ``constraints``; empty when all are valid.
    """
    prefix = f"{owner}: " if owner else ""
    return [
        f"{prefix}{name} must be {_describe(allowed)}; got {params[name]!r}"
        for name, allowed in constraints.items()
        if name in params and not any(_accepts(c, params[name]) for c in allowed)
    ]


def validate_params(
    params: Mapping[str, Any], constraints: Mapping[str, list], owner: str = ""
) -> None:
    """Check every entry of ``params`` named in ``constraints``.

    Parameters
    ----------
    params : mapping
        Parameter name -> value. Names absent from ``constraints`` are not checked.
    constraints : mapping
        Parameter name -> list of constraints (:class:`Interval`, :class:`Options`,
        :class:`TypeOf`, :class:`Predicate` or ``None``); a value is valid when any one
        constraint accepts it.
    owner : str, optional
        Prefix of the error message (the class or file the parameters belong to).

    Raises
    ------
    InvalidParameterError
        Naming the first invalid parameter, what it must be, and the value given (the
        first message of :func:`param_problems`).
    """
    problems = param_problems(params, constraints, owner)
    if problems:
        raise InvalidParameterError(problems[0])
