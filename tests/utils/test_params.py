"""Declarative parameter checks: one implementation, raising (validate_params) or
collecting every problem (param_problems)."""

import math

import pytest

from sharedrep.utils.params import (
    Interval,
    InvalidParameterError,
    Options,
    Predicate,
    TypeOf,
    param_problems,
    validate_params,
)

CONSTRAINTS = {
    "cv": [Interval(int, 2, 50), None],
    "selection": [Options("best", "one_se")],
    "shrinkage": [Interval(float, 0.0, 1.0)],
    "name": [TypeOf(str, "a string")],
    "even": [Predicate(lambda v: v % 2 == 0, "an even number")],
}


def test_valid_parameters_give_no_problem():
    ok = {"cv": None, "selection": "one_se", "shrinkage": 1, "name": "x", "even": 4}
    assert param_problems(ok, CONSTRAINTS, "Model") == []
    validate_params(ok, CONSTRAINTS, "Model")  # does not raise
    # names without a constraint are not checked
    assert param_problems({"other": object()}, CONSTRAINTS) == []


def test_every_problem_is_collected_in_table_order():
    bad = {"even": 3, "cv": 1, "selection": "Best", "shrinkage": math.nan, "name": True}
    problems = param_problems(bad, CONSTRAINTS, "Model")
    assert problems == [
        "Model: cv must be an int in [2, 50] or None; got 1",
        "Model: selection must be one of 'best', 'one_se'; got 'Best'",
        "Model: shrinkage must be a number in [0.0, 1.0]; got nan",
        "Model: name must be a string; got True",
        "Model: even must be an even number; got 3",
    ]
    assert param_problems({"cv": 1}, CONSTRAINTS) == [
        "cv must be an int in [2, 50] or None; got 1"
    ]


def test_validate_params_raises_the_first_collected_problem():
    bad = {"selection": "Best", "cv": 1}
    with pytest.raises(InvalidParameterError) as err:
        validate_params(bad, CONSTRAINTS, "Model")
    assert str(err.value) == param_problems(bad, CONSTRAINTS, "Model")[0]
    assert isinstance(err.value, ValueError) and isinstance(err.value, TypeError)


def test_predicate_errors_count_as_refusals():
    # "even" on a string raises TypeError inside the predicate: a refusal, not a crash
    assert param_problems({"even": "two"}, CONSTRAINTS) == [
        "even must be an even number; got 'two'"
    ]
