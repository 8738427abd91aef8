"""The Parquet lake: one directory per table and partition, local or ``s3://`` through fsspec.

A partition is published atomically: its data file gets a unique name, and only when the file
is complete is the partition's ``_MANIFEST.json`` written (a single object PUT on S3, an
``os.replace`` locally) to point at it. Readers follow manifests, so a crashed write leaves
nothing visible and a re-run replaces the partition whole.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import fsspec
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "_MANIFEST.json"
UNPARTITIONED = "all"
_SAFE = re.compile(r"[^A-Za-z0-9._=-]")


def partition_dir_name(partition: str) -> str:
    """Directory name for a partition key (keys may hold characters paths should not)."""
    return "partition=" + _SAFE.sub("_", partition)


class Lake:
    """A lake rooted at a local path or an fsspec URL such as ``s3://bucket/prefix``."""

    def __init__(self, root: str, storage_options: dict[str, Any] | None = None) -> None:
        self.root = root.rstrip("/")
        self.storage_options = dict(storage_options or {})
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

    def partition_uri(self, table: str, partition: str = UNPARTITIONED) -> str:
        return self.uri(self._path(table, partition_dir_name(partition)))

    @contextmanager
    def partition_writer(
        self, table: str, partition: str, schema: pa.Schema, extra: dict[str, Any] | None = None
    ) -> Iterator[pq.ParquetWriter]:
        """Stream batches into a new partition file; publish it only if the block succeeds."""
        directory = self._path(table, partition_dir_name(partition))
        self.fs.makedirs(directory, exist_ok=True)
        name = f"part-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.parquet"
        data_path = f"{directory}/{name}"
        try:
            with self.fs.open(data_path, "wb") as handle:
                writer = pq.ParquetWriter(handle, schema, compression="zstd")
                try:
                    yield writer
                finally:
                    writer.close()
        except BaseException:
            if self.fs.exists(data_path):
                self.fs.rm(data_path)
            raise
        rows = pq.ParquetFile(self.fs.open(data_path, "rb")).metadata.num_rows
        self._publish(directory, name, rows, table, partition, extra)

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

    def write_report(self, name: str, data: bytes) -> str:
        """Write a report file (a plot, a grid) under ``_reports/``; return its URI."""
        path = self._path("_reports", name)
        self.fs.makedirs(self._path("_reports"), exist_ok=True)
        self.fs.pipe(path, data)
        return self.uri(path)

    def _publish(
        self,
        directory: str,
        name: str,
        rows: int,
        table: str,
        partition: str,
        extra: dict[str, Any] | None,
    ) -> None:
        manifest = {
            "table": table,
            "partition": partition,
            "file": name,
            "rows": rows,
            "written_at": datetime.now(UTC).isoformat(),
            **(extra or {}),
        }
        final = f"{directory}/{MANIFEST}"
        previous = self._manifest(directory)
        if self.is_local:
            tmp = f"{directory}/.{MANIFEST}.{uuid.uuid4().hex[:8]}"
            with self.fs.open(tmp, "wb") as handle:
                handle.write(orjson.dumps(manifest))
            self.fs.mv(tmp, final)
        else:
            with self.fs.open(final, "wb") as handle:
                handle.write(orjson.dumps(manifest))
        if previous and previous["file"] != name:
            old = f"{directory}/{previous['file']}"
            if self.fs.exists(old):
                self.fs.rm(old)

    def _manifest(self, directory: str) -> dict[str, Any] | None:
        path = f"{directory}/{MANIFEST}"
        try:
            with self.fs.open(path, "rb") as handle:
                return orjson.loads(handle.read())
        except FileNotFoundError:
            return None

    def manifest(self, table: str, partition: str = UNPARTITIONED) -> dict[str, Any] | None:
        """The published manifest of a partition, or None if it was never published."""
        return self._manifest(self._path(table, partition_dir_name(partition)))

    def manifests(self, table: str, partitions: list[str] | None = None) -> list[dict[str, Any]]:
        """Published manifests of a table (all partitions, or those given), by partition key."""
        if partitions is None:
            found = []
            for path in self.fs.glob(self._path(table, "partition=*", MANIFEST)):
                with self.fs.open(path, "rb") as handle:
                    found.append(orjson.loads(handle.read()))
        else:
            found = [m for key in partitions if (m := self.manifest(table, key)) is not None]
        return sorted(found, key=lambda m: m["partition"])

    def partitions(self, table: str) -> list[str]:
        """Partition keys with a published manifest, sorted."""
        return [m["partition"] for m in self.manifests(table)]

    def files(self, table: str, partitions: list[str] | None = None) -> list[str]:
        """URIs of the published data files of a table (all partitions, or those given)."""
        return [
            self.uri(self._path(table, partition_dir_name(m["partition"]), m["file"]))
            for m in self.manifests(table, partitions)
        ]

    def read(
        self,
        table: str,
        partitions: list[str] | None = None,
        columns: list[str] | None = None,
    ) -> pa.Table | None:
        """Read published partitions of a table into one Arrow table (None if none exist)."""
        tables = []
        for uri in self.files(table, partitions):
            path = uri if self.is_local else uri.split("://", 1)[1]
            with self.fs.open(path, "rb") as handle:
                tables.append(pq.read_table(handle, columns=columns))
        if not tables:
            return None
        return pa.concat_tables(tables, promote_options="default")

    def read_with_partition(
        self, table: str, column: str, partitions: list[str] | None = None
    ) -> pa.Table | None:
        """Like :meth:`read`, with each row's partition key in ``column``."""
        parts = []
        for key in self.partitions(table) if partitions is None else partitions:
            part = self.read(table, [key])
            if part is not None:
                parts.append(part.append_column(column, pa.array([key] * part.num_rows)))
        return pa.concat_tables(parts, promote_options="default") if parts else None
