"""Run a great-expectations 1.x suite over an Arrow table and summarize what failed."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pyarrow as pa

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

PARTIAL_LIST_LIMIT = 10


@dataclass
class ExpectationOutcome:
    """One expectation's result, in a form that fits Dagster metadata."""

    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None = None
    element_count: int | None = None
    unexpected_examples: list[Any] = field(default_factory=list)
    observed: Any = None
    error: str | None = None

    def describe(self) -> str:
        where = f" on {self.column}" if self.column else ""
        if self.error:
            return f"{self.expectation}{where}: error {self.error}"
        if self.unexpected_count:
            return (
                f"{self.expectation}{where}: {self.unexpected_count} of {self.element_count} "
                f"rows unexpected, e.g. {self.unexpected_examples[:3]}"
            )
        return f"{self.expectation}{where}: observed {self.observed!r}"


@dataclass
class SuiteResult:
    suite: str
    success: bool
    outcomes: list[ExpectationOutcome]

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def summary(self) -> str:
        if self.success:
            return f"{self.suite}: all {len(self.outcomes)} expectations met"
        lines = [o.describe() for o in self.failures]
        return f"{self.suite}: {len(lines)} of {len(self.outcomes)} failed: " + "; ".join(lines)


def new_suite(name: str) -> Any:
    """An empty ``gx.ExpectationSuite`` (GX needs its context to exist first)."""
    import great_expectations as gx

    _batch_definition()
    return gx.ExpectationSuite(name=name)


@lru_cache(maxsize=1)
def _batch_definition():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("lake")
    return source.add_dataframe_asset("table").add_batch_definition_whole_dataframe("whole")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN stands for null in pandas
        return None
    if hasattr(value, "item"):
        return value.item()
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


def run_suite(table: pa.Table, suite: Any) -> SuiteResult:
    """Validate ``table`` against a ``gx.ExpectationSuite`` with SUMMARY result format."""
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": table.to_pandas()})
    result = batch.validate(suite, result_format="SUMMARY")
    outcomes = []
    for item in result.results:
        config = item.expectation_config
        res = item.result or {}
        error = None
        if item.exception_info and item.exception_info.get("raised_exception"):
            error = str(item.exception_info.get("exception_message"))
        outcomes.append(
            ExpectationOutcome(
                expectation=config.type,
                column=config.kwargs.get("column")
                or ", ".join(
                    str(config.kwargs[k]) for k in ("column_A", "column_B") if k in config.kwargs
                )
                or None,
                success=bool(item.success),
                unexpected_count=res.get("unexpected_count"),
                element_count=res.get("element_count"),
                unexpected_examples=[
                    _jsonable(v) for v in (res.get("partial_unexpected_list") or [])
                ][:PARTIAL_LIST_LIMIT],
                observed=_jsonable(res.get("observed_value")),
                error=error,
            )
        )
    return SuiteResult(suite.name, bool(result.success), outcomes)
