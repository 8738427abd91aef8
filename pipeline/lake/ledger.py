"""Which table versions a piece of work read and wrote: versions are lineage.

A :class:`~pipeline.lake.store.Lake` records every table it reads (at the version read) and
every partition it commits (at the version the commit made) in its :class:`AccessLedger`. The
Dagster resource shares one ledger between the lakes a step opens, so a materialization can
say exactly which versions it came from (metadata, and the lake table ``lake_runs``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from pipeline.lake.tables import LAKE_RUNS_SCHEMA

READ = "read"
WROTE = "wrote"


@dataclass(frozen=True)
class TableAccess:
    access: str
    """``read`` or ``wrote``."""
    table: str
    version: int
    partitions: tuple[str, ...] | None
    """The partitions read or written; None: every partition."""


class AccessLedger:
    """Table accesses in the order they happened (thread-safe: hop 3 reads from threads)."""

    def __init__(self) -> None:
        self._accesses: list[TableAccess] = []
        self._lock = threading.Lock()

    def record(
        self, access: str, table: str, version: int, partitions: list[str] | None = None
    ) -> None:
        entry = TableAccess(
            access, table, version, None if partitions is None else tuple(partitions)
        )
        with self._lock:
            if entry not in self._accesses:
                self._accesses.append(entry)

    def accesses(self, access: str | None = None) -> list[TableAccess]:
        with self._lock:
            return [a for a in self._accesses if access is None or a.access == access]

    def versions(self, access: str) -> dict[str, list[int]]:
        """Table -> the versions read (or written), sorted."""
        out: dict[str, set[int]] = {}
        for a in self.accesses(access):
            out.setdefault(a.table, set()).add(a.version)
        return {table: sorted(versions) for table, versions in sorted(out.items())}

    def rows(
        self, run_id: str, asset: str, asset_partition: str | None, exclude: set[str] = frozenset()
    ) -> pa.Table:
        """The ledger as ``lake_runs`` rows of one materialization (tables in ``exclude`` left
        out: the runs table itself)."""
        now = datetime.now(UTC)
        rows = [
            {
                "run_id": run_id,
                "asset": asset,
                "asset_partition": asset_partition,
                "table": a.table,
                "access": a.access,
                "table_version": a.version,
                "table_partitions": None if a.partitions is None else list(a.partitions),
                "recorded_at": now,
            }
            for a in self.accesses()
            if a.table not in exclude
        ]
        return pa.Table.from_pylist(rows, schema=LAKE_RUNS_SCHEMA)
