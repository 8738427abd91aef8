"""The lake: one Delta table per table name under one root, local or ``s3://``, same code path.

Every table is partitioned by a ``partition`` column the store adds on write and strips on read
(unpartitioned tables use the key ``all``). Writing a partition replaces it in one atomic
commit (:mod:`pipeline.lake.delta`); writers of different partitions of one table may run at
once. Every commit is a table version, and every version stays readable (``version=``,
``as_of=``). Reports (plots) are plain files under ``_reports/``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
import fsspec.core
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from pipeline.lake import delta, keyindex
from pipeline.lake.delta import PARTITION, partition_dir_name
from pipeline.lake.delta_types import restore, to_delta_schema
from pipeline.lake.ledger import READ, WROTE, AccessLedger
from pipeline.lake.options import lake_options
from pipeline.lake.stream import BatchStream

UNPARTITIONED = "all"
LOOKUP_THREADS = 4
"""Partitions :meth:`Lake.lookup` searches at once (their disk reads overlap)."""
REPORTS = "_reports"
"""The folder of report files (plots, image grids) under the lake root."""
SHOWS_SUFFIX = ".shows.json"
"""Beside a report that shows images: which (``url_id``, ``pair_id`` lists)."""
__all__ = ["REPORTS", "SHOWS_SUFFIX", "UNPARTITIONED", "Lake", "partition_dir_name"]


class Lake:
    """A lake rooted at a local path or a URL such as ``s3://bucket/prefix``.

    ``storage_options`` configure both fsspec and delta-rs (:func:`lake_options`);
    :attr:`storage_options` holds them as fsspec takes them."""

    def __init__(
        self,
        root: str,
        storage_options: dict[str, Any] | None = None,
        ledger: AccessLedger | None = None,
    ) -> None:
        self.root = root.rstrip("/")
        self.ledger = ledger if ledger is not None else AccessLedger()
        """Every table version this lake read or wrote (shared by a step's lakes)."""
        self.options = lake_options(self.root, storage_options)
        self.storage_options = self.options.fsspec
        self.fs, self._root_path = fsspec.core.url_to_fs(self.root, **self.storage_options)
        self.protocol = (
            self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        )

    def _path(self, *parts: str) -> str:
        return "/".join([self._root_path.rstrip("/"), *parts])

    @property
    def is_local(self) -> bool:
        return self.protocol in ("file", "local")

    def path(self, *parts: str) -> str:
        """Filesystem path of ``parts`` under the root (no protocol; for ``self.fs``)."""
        return self._path(*parts)

    def uri(self, path: str) -> str:
        """Full URI of a filesystem path (``s3://...`` or a local absolute path)."""
        return path if self.is_local else f"{self.protocol}://{path}"

    def table_uri(self, table: str) -> str:
        """The Delta table's URI."""
        return self.uri(self._path(table))

    def partition_uri(self, table: str, partition: str = UNPARTITIONED) -> str:
        """Where a partition's files live (file assets such as shards keep theirs there)."""
        return self.uri(self._path(table, partition_dir_name(partition)))

    # -- writing ----------------------------------------------------------------------------

    @contextmanager
    def partition_writer(
        self, table: str, partition: str, schema: pa.Schema, extra: dict[str, Any] | None = None
    ) -> Iterator[BatchStream]:
        """Stream batches into partition ``partition``; it is replaced, in one commit, only if
        the block succeeds. ``extra`` goes into the commit's metadata."""
        if PARTITION in schema.names:
            raise ValueError(f"{table}: the column name {PARTITION!r} is the store's own")
        stored = to_delta_schema(schema).append(pa.field(PARTITION, pa.string()))
        uri = self.table_uri(table)
        token = uuid.uuid4().hex
        extra = {**(extra or {}), delta.WRITE_TOKEN: token}

        def prepare(batch: pa.RecordBatch) -> pa.RecordBatch:
            if not batch.schema.equals(schema):
                batch = batch.cast(schema)
            key = pa.array([partition] * batch.num_rows, pa.string())
            return pa.RecordBatch.from_arrays([*batch.columns, key], schema=stored)

        def commit(reader: pa.RecordBatchReader) -> None:
            delta.overwrite_partition(uri, partition, reader, self.options.delta, extra)

        stream = BatchStream(stored, commit, prepare)
        try:
            yield stream
        except BaseException:
            stream.abort()
            raise
        stream.close()
        if not stream.started:
            delta.write_empty_partition(
                uri, partition, stored, self.fs, self._path(table), self.options.delta, extra
            )
        self._record_write(table, [partition], token)

    def _record_write(self, table: str, partitions: list[str] | None, token: str) -> int:
        version = delta.committed_version(
            self.table_uri(table), self.options.delta, self.fs, self._path(table), token
        )
        self.ledger.record(WROTE, table, version, partitions)
        return version

    def append(
        self,
        table: str,
        data: pa.Table,
        partition: str = UNPARTITIONED,
        extra: dict[str, Any] | None = None,
    ) -> int:
        """Append rows to a partition (a log such as ``lake_runs``: appends never conflict);
        return the version committed."""
        stored = to_delta_schema(data.schema).append(pa.field(PARTITION, pa.string()))
        keyed = pa.Table.from_arrays(
            [*data.cast(to_delta_schema(data.schema)).columns, pa.array([partition] * len(data))],
            schema=stored,
        )
        token = uuid.uuid4().hex
        delta.append(
            self.table_uri(table),
            keyed.to_reader(),
            self.options.delta,
            {**(extra or {}), delta.WRITE_TOKEN: token},
        )
        return self._record_write(table, [partition], token)

    def write_partition(
        self,
        table: str,
        data: pa.Table,
        partition: str = UNPARTITIONED,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Write a whole table as one partition; return the partition's URI."""
        with self.partition_writer(table, partition, data.schema, extra) as writer:
            writer.write_table(data)
        return self.partition_uri(table, partition)

    def write_report(
        self, name: str, data: bytes, shows: dict[str, list[str]] | None = None
    ) -> str:
        """Write a report file (a plot, a grid) under ``_reports/``; return its URI.

        ``shows`` names the images a grid shows (``url_id``/``pair_id`` lists); it is written
        beside the file (``<name>`` + :data:`SHOWS_SUFFIX`) so erasure finds the grids that
        show an erased image."""
        path = self._path(REPORTS, name)
        self.fs.makedirs(self._path(REPORTS), exist_ok=True)
        if shows is not None:
            self.fs.pipe(path + SHOWS_SUFFIX, orjson.dumps(shows))
        self.fs.pipe(path, data)
        return self.uri(path)

    # -- versions ---------------------------------------------------------------------------

    def delta_table(
        self, table: str, version: int | None = None, as_of: datetime | None = None
    ) -> DeltaTable | None:
        """The Delta table (latest, at ``version``, or as of a time), or None if absent."""
        return delta.open_table(self.table_uri(table), self.options.delta, version, as_of)

    def version(self, table: str, as_of: datetime | None = None) -> int | None:
        """The table's current version (or the one current at ``as_of``); None if absent."""
        found = self.delta_table(table, as_of=as_of)
        return None if found is None else found.version()

    # -- reading ----------------------------------------------------------------------------

    def manifests(
        self, table: str, partitions: list[str] | None = None, version: int | None = None
    ) -> list[dict[str, Any]]:
        """Per published partition (all, or those given), sorted by key: ``partition``,
        ``rows``, ``files`` (relative to the table; ``file`` is the first), ``bytes``,
        ``written_at`` and the table ``version`` they were read at."""
        found = self.delta_table(table, version)
        if found is None:
            return []
        at = found.version()
        by_key: dict[str, list[dict[str, Any]]] = {}
        for action in delta.add_actions(found).to_pylist():
            if partitions is None or action[PARTITION] in partitions:
                by_key.setdefault(action[PARTITION], []).append(action)
        out = []
        for key in sorted(by_key):
            actions = sorted(by_key[key], key=lambda a: a["path"])
            counts = [a["num_records"] for a in actions]
            rows = (
                sum(counts)
                if None not in counts
                else delta.scan(found, [key], []).num_rows  # files without stats
            )
            written = max(a["modification_time"] for a in actions) / 1000
            out.append(
                {
                    "table": table,
                    "partition": key,
                    "rows": rows,
                    "files": [a["path"] for a in actions],
                    "file": actions[0]["path"],
                    "bytes": sum(a["size_bytes"] for a in actions),
                    "written_at": datetime.fromtimestamp(written, UTC).isoformat(),
                    "version": at,
                }
            )
        return out

    def manifest(
        self, table: str, partition: str = UNPARTITIONED, version: int | None = None
    ) -> dict[str, Any] | None:
        """A published partition's manifest (see :meth:`manifests`), or None."""
        found = self.manifests(table, [partition], version)
        return found[0] if found else None

    def partitions(self, table: str, version: int | None = None) -> list[str]:
        """Published partition keys, sorted."""
        found = self.delta_table(table, version)
        if found is None:
            return []
        return sorted(set(delta.add_actions(found).column(PARTITION).to_pylist()))

    def files(
        self, table: str, partitions: list[str] | None = None, version: int | None = None
    ) -> list[str]:
        """URIs of the table's current data files (all partitions, or those given)."""
        found = self.delta_table(table, version)
        if found is None:
            return []
        pruning = None if partitions is None else [(PARTITION, "in", list(partitions))]
        if partitions is not None and not partitions:
            return []
        return sorted(found.file_uris(pruning))

    def read(
        self,
        table: str,
        partitions: list[str] | None = None,
        columns: list[str] | None = None,
        version: int | None = None,
        as_of: datetime | None = None,
    ) -> pa.Table | None:
        """Published partitions of a table (all, or those given) as one Arrow table, in
        partition order; None when none of them is published. ``version`` or ``as_of`` read
        the table as it was."""
        found = self.delta_table(table, version, as_of)
        if found is None:
            return None
        keys = self._published(found, partitions)
        if not keys:
            return None
        self.ledger.record(READ, table, found.version(), partitions)
        return restore(delta.scan(found, keys, columns))

    def lookup(
        self,
        table: str,
        column: str,
        values: Iterable[str],
        columns: list[str] | None = None,
        partitions: list[str] | None = None,
    ) -> pa.Table | None:
        """The rows of published partitions (all, or those given) whose ``column`` is one of
        ``values``, with ``columns`` (all when None), in :meth:`read`'s order. Each partition is
        searched through its key sidecar (:mod:`pipeline.lake.keyindex`), written by the first
        lookup of the partition's current files: the rows wanted are taken, nothing is
        scanned. None when no partition is published."""
        found = self.delta_table(table)
        if found is None:
            return None
        keys = self._published(found, partitions)
        if not keys:
            return None
        self.ledger.record(READ, table, found.version(), partitions)
        wanted = pa.array(sorted(set(values)), pa.string())
        hashes = np.unique(keyindex.key_hashes(wanted))
        files: dict[str, list[str]] = {}
        for action in delta.add_actions(found).select(["path", PARTITION]).to_pylist():
            files.setdefault(action[PARTITION], []).append(action["path"])
        table_schema = pa.schema(found.schema().to_arrow())
        paths = []
        for key in keys:
            directory = self.index_root() / table / key
            name = keyindex.files_hash(files[key])
            path = keyindex.sidecar_path(directory, column, table_schema, name)
            if not keyindex.exists(path):
                schema, batches = delta.partition_batches(found, key)
                keyindex.build(path, column, schema, batches)
                keyindex.prune(directory, path)
            paths.append(path)
        # every partition's keys, then blocks, are asked of the disk before any is read;
        # threads: a cold read waits on the disk, and waits overlap
        for path in paths:
            keyindex.prefetch(path)
        with ThreadPoolExecutor(min(LOOKUP_THREADS, len(paths))) as pool:
            located = list(pool.map(lambda path: keyindex.locate(path, hashes), paths))
            rows = pa.concat_tables(pool.map(keyindex.read, located))
        # a hash match is checked against the key itself: a collision returns nothing foreign
        if rows.num_rows:
            rows = rows.filter(pc.is_in(rows.column(column), wanted))
        return restore(rows if columns is None else rows.select(columns))

    def index_root(self) -> Path:
        """Where this lake's key sidecars and search indexes live (local files)."""
        local = fsspec.core.strip_protocol(self.root) if self.is_local else None
        return keyindex.index_root(self.root, local)

    def read_with_partition(
        self,
        table: str,
        column: str,
        partitions: list[str] | None = None,
        version: int | None = None,
    ) -> pa.Table | None:
        """Like :meth:`read`, with each row's partition key in ``column`` (the last one)."""
        found = self.delta_table(table, version)
        if found is None:
            return None
        keys = self._published(found, partitions)
        if not keys:
            return None
        self.ledger.record(READ, table, found.version(), partitions)
        data = restore(delta.scan(found, keys, with_partition=True))
        key = data.column(PARTITION)
        return data.drop_columns([PARTITION]).append_column(column, key)

    @staticmethod
    def _published(found: DeltaTable, partitions: list[str] | None) -> list[str]:
        keys = delta.add_actions(found).column(PARTITION)
        if partitions is not None:
            keys = keys.filter(pc.is_in(keys, pa.array(list(partitions), pa.string())))
        return sorted(set(keys.to_pylist()))
