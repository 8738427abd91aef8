"""One factory for table assets: the checks, inputs and metadata every hop shares.

An asset file keeps only what is particular to its hop (its config, its ``pipeline`` call and
its extra metadata). :func:`table_asset` declares the asset with its registry-derived checks
and code version; :func:`read_input` reads an upstream table or fails the step with a clear
message; :func:`table_result` turns what the hop wrote into the standard result: the
great-expectations suite, row conservation by drop reason, row-count change, column lineage,
``dagster/*`` table metadata and drop counts for every reason the registry declares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets_defs.column_lineage import column_lineage
from assets_defs.metadata import (
    Stopwatch,
    code_version,
    counts_metadata,
    elapsed_metadata,
    table_metadata,
)
from pipeline.lake.ledger import READ, WROTE
from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName, spec
from quality.checks import (
    conservation_check_result,
    conservation_check_spec,
    previous_row_count,
    row_count_check_result,
    row_count_check_spec,
    suite_check_result,
    suite_check_spec,
)


def table_checks(
    table: str,
    *,
    conserves: bool = False,
    row_count: bool = False,
    asset_name: str | None = None,
) -> list[AssetCheckSpec]:
    """The standard checks of the asset that writes ``table`` (``asset_name``, by default the
    table's own name): the table's suite where the registry has one, conservation of rows,
    and a row-count-change warning."""
    name = asset_name or table
    specs = []
    if spec(table).expectations:
        specs.append(suite_check_spec(name, table))
    if conserves:
        specs.append(conservation_check_spec(name))
    if row_count:
        specs.append(row_count_check_spec(name))
    return specs


def table_asset(
    table: str,
    module: str,
    *,
    conserves: bool = False,
    row_count: bool = False,
    checks: tuple[AssetCheckSpec, ...] = (),
    **asset_kwargs: Any,
) -> Callable:
    """``@asset`` for the table asset ``table``, defined in ``module`` (its code version is
    the import closure of that module), with its standard checks, the asset's own ``checks``
    and the registry's description."""
    return asset(
        name=table,
        code_version=code_version(module),
        description=asset_kwargs.pop("description", None) or spec(table).description,
        check_specs=[*table_checks(table, conserves=conserves, row_count=row_count), *checks],
        **asset_kwargs,
    )


def read_input(
    lake: Lake,
    table: str,
    partitions: list[str] | None = None,
    columns: list[str] | None = None,
) -> pa.Table:
    """An upstream table's published partitions, or a Failure that names what is missing."""
    found = lake.read(table, partitions, columns=columns)
    if found is None:
        where = f"partitions {partitions}" if partitions else "any partition"
        raise Failure(f"{table} has no published {where}: materialize it first")
    return found


@dataclass(frozen=True)
class Decisions:
    """How many rows came in, how many were kept, and the others by drop reason."""

    rows_in: int
    rows_kept: int
    dropped: Mapping[str, int] = field(default_factory=dict)


def record_versions(context: AssetExecutionContext, asset_name: str) -> dict[str, Any]:
    """The table versions this step read and wrote: appended to the lake table
    ``lake_runs`` and returned as metadata (``lake/versions_read``, ``lake/versions_written``:
    table -> versions)."""
    resource = getattr(context.resources, "lake", None)
    if resource is None:
        return {}
    ledger = resource.ledger
    partition = context.partition_key if context.has_partition_key else None
    rows = ledger.rows(context.run_id, asset_name, partition, exclude={TableName.LAKE_RUNS})
    if rows.num_rows:
        resource.lake().append(TableName.LAKE_RUNS, rows)
    return {
        "lake/versions_read": MetadataValue.json(ledger.versions(READ)),
        "lake/versions_written": MetadataValue.json(
            {t: v for t, v in ledger.versions(WROTE).items() if t != TableName.LAKE_RUNS}
        ),
    }


def table_result(
    context: AssetExecutionContext,
    table: str,
    written: pa.Table,
    uri: str,
    *,
    decisions: Decisions | None = None,
    rows: int | None = None,
    max_row_change: float | None = None,
    asset_name: str | None = None,
    started: Stopwatch | float | None = None,
    metadata: Mapping[str, Any] | None = None,
    checks: list[AssetCheckResult] | None = None,
    yielded: bool = False,
) -> MaterializeResult:
    """The standard result of the asset (``asset_name``, by default the table's) that wrote
    ``table`` to ``uri``; ``written`` is validated by the table's suite. ``decisions`` adds
    conservation and drop counts; ``max_row_change`` compares the kept rows (or all rows)
    with the partition's previous materialization; ``started`` (:func:`stopwatch`) adds the
    step's wall and CPU seconds."""
    name = asset_name or table
    rows = written.num_rows if rows is None else rows
    results = []
    if spec(table).expectations:
        results.append(suite_check_result(name, written, table))
    facts: dict[str, Any] = {**column_lineage(table), **table_metadata(written.schema, rows, uri)}
    if decisions is not None:
        results.append(
            conservation_check_result(
                name, decisions.rows_in, decisions.rows_kept, decisions.dropped
            )
        )
        facts["rows_in"] = MetadataValue.int(decisions.rows_in)
        facts["rows_kept"] = MetadataValue.int(decisions.rows_kept)
        facts["rows_dropped"] = MetadataValue.int(sum(decisions.dropped.values()))
        facts.update(counts_metadata("dropped", decisions.dropped, spec(table).drop_reasons))
    if max_row_change is not None:
        key = "rows_kept" if decisions is not None else "dagster/row_count"
        current = decisions.rows_kept if decisions is not None else rows
        partition = context.partition_key if context.has_partition_key else None
        previous = previous_row_count(context.instance, name, partition, key)
        results.append(row_count_check_result(name, previous, current, max_row_change))
    results += checks or []
    facts.update(record_versions(context, name))
    facts.update(metadata or {})
    if started is not None:
        facts.update(elapsed_metadata(started))
    return MaterializeResult(
        asset_key=name if yielded else None, check_results=results, metadata=facts
    )
