"""One Delta table of the lake: partitioned by a ``partition`` column, one commit per write.

A partition is replaced by ``write_deltalake(mode="overwrite", predicate="partition = 'k'")``:
new files and the removal of the partition's old ones land in one atomic commit, and writers
of other partitions retry past it (delta-rs's conflict checker; put-if-absent commits on S3).
Delta has no way to say "this partition exists and is empty" through ``write_deltalake``, so an
empty partition is committed as one zero-row Parquet file. Only ``DeltaTable`` calls that let
other Python threads run are used (``history``, ``is_deltatable`` hold the GIL while waiting on
the network, which stalls an in-process S3 server).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import fsspec
import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import TableNotFoundError
from deltalake.transaction import AddAction

from pipeline.lake.delta_types import annotations

KEEP_HISTORY = {
    "delta.logRetentionDuration": "interval 36500 days",
    "delta.enableExpiredLogCleanup": "false",
}
"""Every table keeps its whole commit log: history is product (the trace reads it)."""
WRITE_TOKEN = "crawl2diffusion.write"
"""Commit metadata key holding a write's unique token, to find the version it committed."""
PARTITION = "partition"
"""The column the store adds to every row (its partition key) and strips on read."""
WRITER = WriterProperties(compression="ZSTD", max_row_group_size=65536)
_SAFE = re.compile(r"[^A-Za-z0-9._=-]")


def partition_dir_name(key: str) -> str:
    """Directory name for a partition key (keys may hold characters paths should not)."""
    return f"{PARTITION}=" + _SAFE.sub("_", key)


def open_table(
    uri: str,
    options: Mapping[str, str],
    version: int | None = None,
    as_of: datetime | None = None,
) -> DeltaTable | None:
    """The table at ``uri`` (latest, at ``version``, or as of a time), or None if none is there."""
    try:
        table = DeltaTable(uri, version=version, storage_options=dict(options))
    except TableNotFoundError:
        return None
    if as_of is not None:
        table.load_as_version(as_of)
    return table


def ensure_table(uri: str, schema: pa.Schema, options: Mapping[str, str]) -> None:
    """Create the table (partitioned by :data:`PARTITION`) unless it exists. Writers racing to
    create it all succeed: a losing create fails only because the table is there now."""
    if open_table(uri, options) is not None:
        return
    try:
        DeltaTable.create(
            uri,
            schema,
            partition_by=[PARTITION],
            mode="ignore",
            storage_options=dict(options),
            configuration=KEEP_HISTORY,
        )
    except Exception:
        if open_table(uri, options) is None:
            raise


def key_predicate(key: str) -> str:
    """SQL predicate selecting one partition."""
    return f"{PARTITION} = '" + key.replace("'", "''") + "'"


def commit_properties(extra: Mapping[str, Any] | None) -> CommitProperties | None:
    """``extra`` (model ids and such) as the commit's custom metadata."""
    if not extra:
        return None
    return CommitProperties(
        custom_metadata={
            k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in extra.items()
        }
    )


def append(
    uri: str,
    batches: pa.RecordBatchReader,
    options: Mapping[str, str],
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Append ``batches`` (which carry the key column): a blind append, which never conflicts
    with other writers."""
    _write(uri, batches, options, extra, "append")


def committed_version(
    uri: str,
    options: Mapping[str, str],
    fs: fsspec.AbstractFileSystem,
    fs_path: str,
    token: str,
    look_back: int = 1000,
) -> int:
    """The version whose commit carries ``token`` (newest first: other writers may have
    committed after it). ``fs_path`` is the table's directory on ``fs``."""
    table = open_table(uri, options)
    assert table is not None, uri
    latest = table.version()
    needle = token.encode()
    for version in range(latest, max(-1, latest - look_back), -1):
        with fs.open(f"{fs_path}/_delta_log/{version:020d}.json", "rb") as handle:
            if needle in handle.read():
                return version
    raise LookupError(f"{uri}: no commit with token {token} in the last {look_back} versions")


def overwrite_partition(
    uri: str,
    key: str,
    batches: pa.RecordBatchReader,
    options: Mapping[str, str],
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Replace partition ``key`` by the streamed ``batches`` (which carry the key column)."""
    _write(uri, batches, options, extra, "overwrite", key_predicate(key))


def _write(
    uri: str,
    batches: pa.RecordBatchReader,
    options: Mapping[str, str],
    extra: Mapping[str, Any] | None,
    mode: str,
    predicate: str | None = None,
) -> None:
    ensure_table(uri, batches.schema, options)
    write_deltalake(
        uri,
        batches,
        partition_by=[PARTITION],
        mode=mode,
        predicate=predicate,
        schema_mode=schema_mode(uri, batches.schema, options) if predicate else "merge",
        storage_options=dict(options),
        writer_properties=WRITER,
        commit_properties=commit_properties(extra),
    )


def schema_mode(uri: str, schema: pa.Schema, options: Mapping[str, str]) -> str:
    """``merge`` (new columns are added), or ``overwrite`` where a column keeps its Delta type
    but its remembered Arrow type changed (an embedding of another width): the table schema
    then takes the new annotation, and other partitions keep their rows."""
    table = open_table(uri, options)
    if table is None:
        return "merge"
    current = annotations(pa.schema(table.schema().to_arrow()))
    given = annotations(schema)
    changed = any(name in current and current[name] != a for name, a in given.items())
    return "overwrite" if changed and set(current) <= set(given) else "merge"


def write_empty_partition(
    uri: str,
    key: str,
    schema: pa.Schema,
    fs: fsspec.AbstractFileSystem,
    fs_path: str,
    options: Mapping[str, str],
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Replace partition ``key`` by one zero-row file, so that it reads as published and empty.

    ``fs_path`` is the table's directory on ``fs`` (the lake's fsspec filesystem)."""
    ensure_table(uri, schema, options)
    table = open_table(uri, options)
    assert table is not None
    relative = f"{partition_dir_name(key)}/part-00000-{uuid.uuid4()}-empty.zstd.parquet"
    data = schema.remove(schema.get_field_index(PARTITION)).empty_table()
    fs.makedirs(f"{fs_path}/{relative.rsplit('/', 1)[0]}", exist_ok=True)
    with fs.open(f"{fs_path}/{relative}", "wb") as handle:
        pq.write_table(data, handle, compression="zstd")
    table.create_write_transaction(
        [
            AddAction(
                relative,
                fs.size(f"{fs_path}/{relative}"),
                {PARTITION: key},
                int(time.time() * 1000),
                True,
                orjson.dumps({"numRecords": 0}).decode(),
            )
        ],
        mode="overwrite",
        schema=table.schema(),
        partition_by=[PARTITION],
        partition_filters=[(PARTITION, "=", key)],
        commit_properties=commit_properties(extra),
    )


def add_actions(table: DeltaTable) -> pa.Table:
    """The table's current files: ``path``, ``size_bytes``, ``modification_time`` (ms),
    ``num_records`` and ``partition``."""
    actions = pa.table(table.get_add_actions(flatten=True))
    return pa.table(
        {
            "path": actions["path"],
            "size_bytes": actions["size_bytes"],
            "modification_time": actions["modification_time"],
            "num_records": actions["num_records"],
            PARTITION: actions[f"partition.{PARTITION}"],
        }
    )


def scan(
    table: DeltaTable,
    keys: list[str] | None,
    columns: list[str] | None = None,
    with_partition: bool = False,
) -> pa.Table:
    """Rows of partitions ``keys`` (all when None), files in path order (partition, then the
    order they were written); ``columns`` (all when None), and :data:`PARTITION` if asked."""
    pruning = None if keys is None else [(PARTITION, "in", keys)]
    dataset = table.to_pyarrow_dataset(file_pruning_predicate=pruning)
    fragments = sorted(dataset.get_fragments(), key=lambda f: f.path)
    ordered = ds.FileSystemDataset(
        fragments, dataset.schema, dataset.format, filesystem=dataset.filesystem
    )
    wanted = [n for n in dataset.schema.names if n != PARTITION] if columns is None else columns
    return ordered.to_table(columns=[*wanted, PARTITION] if with_partition else wanted)


def partition_batches(
    table: DeltaTable, key: str, columns: list[str] | None = None
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Partition ``key``'s rows as a stream of batches, files in path order (as :func:`scan`
    reads them), with ``columns`` (all but :data:`PARTITION` when None), and their schema."""
    dataset = table.to_pyarrow_dataset(file_pruning_predicate=[(PARTITION, "in", [key])])
    fragments = sorted(dataset.get_fragments(), key=lambda f: f.path)
    ordered = ds.FileSystemDataset(
        fragments, dataset.schema, dataset.format, filesystem=dataset.filesystem
    )
    wanted = [n for n in dataset.schema.names if n != PARTITION] if columns is None else columns
    # one file and a few batches in flight: a partition may be larger than memory
    scanner = ordered.scanner(
        columns=wanted, batch_size=16384, batch_readahead=1, fragment_readahead=1
    )
    return scanner.projected_schema, scanner.to_batches()
