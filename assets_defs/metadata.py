"""Standard Dagster metadata for a lake table."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
from dagster import MetadataValue, TableColumn, TableSchema


def column_schema(schema: pa.Schema) -> TableSchema:
    return TableSchema(
        columns=[TableColumn(name=f.name, type=str(f.type), description=None) for f in schema]
    )


def table_metadata(schema: pa.Schema, rows: int, uri: str) -> dict[str, Any]:
    """``dagster/row_count``, ``dagster/column_schema`` and ``dagster/uri`` for one write."""
    return {
        "dagster/row_count": MetadataValue.int(rows),
        "dagster/column_schema": MetadataValue.table_schema(column_schema(schema)),
        "dagster/uri": MetadataValue.path(uri),
    }


def counts_metadata(prefix: str, counts: Mapping[str, int], names: tuple[str, ...] = ()) -> dict:
    """One int entry per reason (every known reason present, zero when unseen)."""
    keys = sorted(set(names) | set(counts))
    return {f"{prefix}/{k}": MetadataValue.int(int(counts.get(k, 0))) for k in keys}


def code_version(*modules: ModuleType) -> str:
    """A Dagster code version that changes whenever the source of ``modules`` does (the
    asset's own module and the pipeline modules that decide its rows)."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(inspect.getfile(module)).read_bytes())
    return digest.hexdigest()[:12]
