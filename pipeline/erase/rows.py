"""Erase rows from the tables that hold image bytes or embeddings, then vacuum those tables.

Which tables: every registered table whose stored schema has a binary column (image bytes,
e.g. ``image_embeddings.image`` with ``keep_images``, ``samples.png``) or a list of floats (an
embedding). They are read off the lake's Delta schemas, so a column added later is covered.
Rows go by Delta ``DELETE`` on ``url_id``/``pair_id`` (one commit per table, files without a
match untouched); then ``VACUUM`` with no retention removes every file no current version
names, the old files holding the erased rows included. Decision tables (hashes, URLs,
statuses) are never vacuumed: their history stays readable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from pipeline.erase.targets import Targets
from pipeline.lake.delta import commit_properties
from pipeline.lake.store import Lake
from pipeline.lake.tables import TABLES

KEY_COLUMNS = ("url_id", "pair_id")


def holds_bytes(t: pa.DataType) -> bool:
    """A binary column, or a list of floats (an embedding), possibly nested in a list."""
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return True
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return pa.types.is_floating(t.value_type) or holds_bytes(t.value_type)
    return False


def byte_tables(lake: Lake) -> dict[str, pa.Schema]:
    """Table -> stored schema, for every registered table in the lake that holds bytes or
    embeddings."""
    found = {}
    for name, entry in TABLES.items():
        table = None if entry.files else lake.delta_table(name)
        if table is None:
            continue
        schema = pa.schema(table.schema().to_arrow())
        if any(holds_bytes(f.type) for f in schema):
            found[name] = schema
    return found


def _sql_in(column: str, values: frozenset[str]) -> str:
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(values))
    return f"{column} IN ({quoted})"


def _predicate(schema: pa.Schema, targets: Targets) -> tuple[str, ds.Expression] | None:
    """The SQL predicate (for DELETE) and the same filter as an Arrow expression."""
    sql, expr = [], None
    for column, values in (("url_id", targets.url_ids), ("pair_id", targets.pair_ids)):
        if column in schema.names and values:
            sql.append(_sql_in(column, values))
            term = pc.field(column).isin(pa.array(sorted(values), pa.string()))
            expr = term if expr is None else expr | term
    return (" OR ".join(sql), expr) if expr is not None else None


def remove_rows(
    lake: Lake,
    table: str,
    schema: pa.Schema,
    targets: Targets,
    dry_run: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Delete the targets' rows from ``table`` (``extra``: the commit's metadata); rows per
    url_id (or pair_id, where the table has no url_id)."""
    found = _predicate(schema, targets)
    delta = lake.delta_table(table)
    if found is None or delta is None or not targets:
        return {}
    sql, expr = found
    key = next(c for c in KEY_COLUMNS if c in schema.names)
    hits = delta.to_pyarrow_dataset().to_table(filter=expr, columns=[key]).column(key)
    counts: dict[str, int] = {}
    for value in hits.to_pylist():
        counts[value] = counts.get(value, 0) + 1
    if counts and not dry_run:
        delta.delete(sql, commit_properties=commit_properties(extra))
    return counts


def vacuum(lake: Lake, table: str, dry_run: bool = False) -> int:
    """Remove every file of ``table`` that its current version does not name (old versions
    of byte tables are not kept); the number of files."""
    delta = lake.delta_table(table)
    if delta is None:
        return 0
    files = delta.vacuum(
        retention_hours=0, enforce_retention_duration=False, dry_run=dry_run, full=True
    )
    return len(files)
