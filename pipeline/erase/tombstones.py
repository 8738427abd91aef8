"""Tombstones: one ``erasures`` row per erased pair, one partition per erasure run (its id), so
that no erasure's record ever replaces another's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import pyarrow as pa

from pipeline.erase.targets import Targets
from pipeline.lake.store import Lake
from pipeline.lake.tables import ERASURES_SCHEMA, TableName


def tombstones(
    erasure_id: str,
    erased_at: dt.datetime,
    targets: Targets,
    what: Mapping[str, Sequence[str]],
) -> pa.Table:
    """The rows for ``targets``; ``what``: url_id -> what was removed for its image."""
    rows = [
        {
            "erasure_id": erasure_id,
            "url_id": t.url_id,
            "pair_id": t.pair_id,
            "url": t.url,
            "sha256": t.sha256,
            "reason": t.reason,
            "erased_at": erased_at,
            "what": sorted(what.get(t.url_id, ())),
        }
        for t in targets.rows
    ]
    return pa.Table.from_pylist(rows, schema=ERASURES_SCHEMA)


def write_tombstones(lake: Lake, table: pa.Table, erasure_id: str) -> str:
    """Publish ``table`` as the erasure's own partition of ``erasures``."""
    return lake.write_partition(TableName.ERASURES, table, erasure_id)
