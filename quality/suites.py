"""great-expectations suites, built from the table registry (``pipeline.lake.tables``).

A suite is the table's schema (column names in order, where the schema is fixed) followed by
the registry's expectations, each with its row condition.
"""

from __future__ import annotations

from typing import Any

from pipeline.lake.tables import TABLES, Expect, spec
from quality.gx_runner import new_suite


def _expectation(gxe: Any, expect: Expect) -> Any:
    condition = {"row_condition": expect.when, "condition_parser": "pandas"} if expect.when else {}
    return getattr(gxe, expect.kind)(**expect.kwargs, **condition)


def build_suite(table: str) -> Any:
    """The ``gx.ExpectationSuite`` of ``table`` (a KeyError names an unknown table)."""
    import great_expectations as gx

    gxe = gx.expectations
    entry = spec(table)
    suite = new_suite(entry.name)
    if entry.schema is not None:
        suite.add_expectation(
            gxe.ExpectTableColumnsToMatchOrderedList(column_list=list(entry.schema.names))
        )
    for expect in entry.expectations:
        suite.add_expectation(_expectation(gxe, expect))
    return suite


SUITE_TABLES: tuple[str, ...] = tuple(name for name, entry in TABLES.items() if entry.expectations)
"""The tables whose assets run a suite as a blocking check."""
