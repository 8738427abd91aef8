"""``dagster/column_lineage`` from the table registry's upstream column map."""

from __future__ import annotations

from dagster import AssetKey, MetadataValue, TableColumnDep, TableColumnLineage

from pipeline.lake.tables import TABLES


def column_lineage(asset: str) -> dict[str, MetadataValue]:
    """The ``dagster/column_lineage`` entry for ``asset`` (empty if none is declared)."""
    entry = TABLES.get(asset)
    if entry is None or not entry.lineage:
        return {}
    lineage = TableColumnLineage(
        deps_by_column={
            column: [TableColumnDep(AssetKey(a), c) for a, c in sources]
            for column, sources in entry.lineage.items()
        }
    )
    return {"dagster/column_lineage": MetadataValue.column_lineage(lineage)}
