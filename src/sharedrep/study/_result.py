"""The result object every learning-study analysis returns (:class:`AnalysisResult`).

It may import only pandas and matplotlib: every ``sharedrep.study`` module builds one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from matplotlib.figure import Figure

__all__ = ["AnalysisResult"]


@dataclass(eq=False)
class AnalysisResult:
    """One analysis of the learning study: a tidy table, a figure, headline numbers, text.

    Attributes
    ----------
    name : str
        Short identifier (e.g. ``"learning_curves"``).
    table : pandas.DataFrame
        The main tidy table (one row per observation; columns documented by the analysis).
    figure : matplotlib.figure.Figure
        The analysis figure (created without pyplot; save with ``figure.savefig``).
    summary : dict
        Headline numbers with their p-values / confidence intervals (JSON-serialisable:
        floats, ints, strings, bools, lists and dicts; NaN where not computable).
    description : str
        One paragraph: the test, the unit of inference (mice / subjects / units within
        mice) and the result.
    tables : dict of str to pandas.DataFrame
        Supplementary tidy tables (e.g. per-subject scores, comparisons, per-unit
        classifications); may be empty.
    """

    name: str
    table: pd.DataFrame
    figure: Figure
    summary: dict
    description: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"AnalysisResult(name={self.name!r}, table={self.table.shape[0]} rows x "
            f"{self.table.shape[1]} columns, tables={sorted(self.tables)}, "
            f"summary keys={sorted(self.summary)})"
        )
