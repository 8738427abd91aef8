"""Dagster asset-check results from great-expectations suites and row conservation."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    MetadataValue,
)

from quality.gx_runner import run_suite
from quality.suites import build_suite

SUITE_CHECK = "gx_suite"
CONSERVATION_CHECK = "rows_conserved"


def suite_check_spec(asset: str, table: str | None = None) -> AssetCheckSpec:
    """A blocking check that runs the great-expectations suite of ``table`` (default: the
    asset's own table) on what the asset wrote."""
    table = table or asset
    return AssetCheckSpec(
        SUITE_CHECK,
        asset=AssetKey(asset),
        blocking=True,
        description=f"great-expectations suite '{table}': schema, nulls, formats, ranges",
    )


def conservation_check_spec(asset: str) -> AssetCheckSpec:
    return AssetCheckSpec(
        CONSERVATION_CHECK,
        asset=AssetKey(asset),
        blocking=True,
        description="rows in = rows kept + rows dropped, by reason",
    )


def suite_check_result(asset: str, table: pa.Table, suite: str | None = None) -> AssetCheckResult:
    """Validate ``table`` with its suite (default: the asset's); failed expectations and
    examples go in metadata."""
    result = run_suite(table, build_suite(suite or asset))
    return AssetCheckResult(
        check_name=SUITE_CHECK,
        asset_key=AssetKey(asset),
        passed=result.success,
        severity=AssetCheckSeverity.ERROR,
        description=result.summary()[:2000],
        metadata={
            "expectations": MetadataValue.int(len(result.outcomes)),
            "failed": MetadataValue.int(len(result.failures)),
            "rows_validated": MetadataValue.int(table.num_rows),
            "failures": MetadataValue.json(
                [
                    {
                        "expectation": o.expectation,
                        "column": o.column,
                        "unexpected_count": o.unexpected_count,
                        "element_count": o.element_count,
                        "unexpected_examples": o.unexpected_examples,
                        "observed": o.observed,
                        "error": o.error,
                    }
                    for o in result.failures
                ]
            ),
        },
    )


def conservation_check_result(
    asset: str, rows_in: int, rows_kept: int, dropped: Mapping[str, int]
) -> AssetCheckResult:
    """Pass when every input row is either kept or dropped with a reason."""
    accounted = rows_kept + sum(dropped.values())
    return AssetCheckResult(
        check_name=CONSERVATION_CHECK,
        asset_key=AssetKey(asset),
        passed=rows_in == accounted,
        severity=AssetCheckSeverity.ERROR,
        description=f"{rows_in} in, {rows_kept} kept + {accounted - rows_kept} dropped",
        metadata={
            "rows_in": MetadataValue.int(rows_in),
            "rows_kept": MetadataValue.int(rows_kept),
            "rows_dropped": MetadataValue.int(accounted - rows_kept),
            "unaccounted": MetadataValue.int(rows_in - accounted),
        },
    )


ROW_COUNT_CHECK = "row_count_change"


def row_count_check_spec(asset: str) -> AssetCheckSpec:
    return AssetCheckSpec(
        ROW_COUNT_CHECK,
        asset=AssetKey(asset),
        description="row count moved by at most the configured fraction since the previous "
        "materialization of the same partition (warning)",
    )


def previous_row_count(
    instance: DagsterInstance,
    asset: str,
    partition: str | None,
    metadata_key: str = "dagster/row_count",
) -> int | None:
    """An int metadata value (the row count by default) of the partition's latest
    materialization so far, or None for a first materialization."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(
            asset_key=AssetKey(asset), asset_partitions=[partition] if partition else None
        ),
        limit=1,
    ).records
    if not records:
        return None
    materialization = records[0].asset_materialization
    value = materialization.metadata.get(metadata_key) if materialization else None
    return int(value.value) if value is not None else None


def row_count_check_result(
    asset: str, previous: int | None, rows: int, max_change: float
) -> AssetCheckResult:
    """Warn when rows changed by more than ``max_change`` (a fraction) since last time."""
    change = 0.0 if previous is None else abs(rows - previous) / max(previous, 1)
    return AssetCheckResult(
        check_name=ROW_COUNT_CHECK,
        asset_key=AssetKey(asset),
        passed=change <= max_change,
        severity=AssetCheckSeverity.WARN,
        description="first materialization"
        if previous is None
        else (f"{previous} -> {rows} rows ({change:+.1%} allowed ±{max_change:.0%})"),
        metadata={
            "previous_rows": MetadataValue.int(previous if previous is not None else -1),
            "rows": MetadataValue.int(rows),
            "change_fraction": MetadataValue.float(round(change, 4)),
        },
    )
