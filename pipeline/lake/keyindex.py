"""Key-lookup sidecars: look rows up by a key column without reading every row group.

Parquet cannot read one row of a column chunk: a lookup of keys spread at random over
millions of rows touches every row group (``image_embeddings``' url_ids are hashes). So the
first lookup of a partition writes a sidecar beside the search indexes, named after the
partition's current data files (:func:`files_hash`), in two files:

- ``lookup-<column>-<schema>-<files hash>.arrow``: the partition's rows in key-hash order, as
  uncompressed Arrow IPC messages: the schema, then :data:`BLOCK`-row record batches;
- ``lookup-<column>-<schema>-<files hash>.keys.npy``: the 64-bit hash of every row's key, in
  that order, with the row's place in a scan of the partition (``hash``, ``row``), then each
  record batch's byte range. A lookup binary-searches the hashes and reads only the record
  batches that hold a match.

A re-written partition (or a Delta ``DELETE``, an erasure) has new data files, so a new
sidecar name; stale sidecars are removed with the search indexes (:func:`prune`). A hash
match is checked against the key itself, so a collision never returns a foreign row.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

KEYS_DTYPE = np.dtype([("hash", "<u8"), ("row", "<i8")])
BLOCK = 32
FORMAT = 2
"""The sidecar layout's version (part of its name: a new layout is never misread)."""
"""Rows per record batch of a sidecar: what one matching key costs to read."""
_SAFE = re.compile(r"[^A-Za-z0-9_]")


def index_root(root: str, local_path: str | None) -> Path:
    """Where a lake's sidecars and search indexes live: ``<lake>/_indexes`` for a local lake
    (``local_path``: its root directory), else ``$XDG_CACHE_HOME/crawl2diffusion/indexes/
    <hash of the lake root>`` (memory maps need local files)."""
    if local_path is not None:
        return Path(local_path) / "_indexes"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "crawl2diffusion" / "indexes" / hashlib.sha256(root.encode()).hexdigest()[:16]


def files_hash(paths: Iterable[str]) -> str:
    """A partition's data files (Delta paths, sorted), hashed: the name of its sidecars."""
    return hashlib.sha256("\n".join(sorted(paths)).encode()).hexdigest()[:16]


def key_hashes(values: pa.Array) -> np.ndarray:
    """The 64-bit hash (blake2b) of each key (strings; null hashes as the empty string)."""
    fresh = hashlib.blake2b(digest_size=8).copy
    out = np.empty(len(values), np.uint64)
    for i, value in enumerate(values.cast(pa.string()).to_pylist()):
        hashed = fresh()
        hashed.update((value or "").encode("utf-8", "surrogatepass"))
        out[i] = int.from_bytes(hashed.digest(), "little")
    return out


def sidecar_path(directory: Path, column: str, schema: pa.Schema, files: str) -> Path:
    """The rows file of a partition's sidecar (``.keys.npy`` beside it), named after the key
    column, the layout and table schema (a column added later must be read too) and the
    files."""
    described = f"{FORMAT}\n" + schema.to_string(show_schema_metadata=False)
    shape = hashlib.sha256(described.encode()).hexdigest()
    return directory / f"lookup-{_SAFE.sub('_', column)}-{shape[:8]}-{files}.arrow"


def build(path: Path, column: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> None:
    """Write a sidecar at ``path`` from a partition's ``batches`` (in scan order): streamed to
    a temporary file, then sorted in memory (about twice the partition's size) and written in
    key-hash order in record batches of :data:`BLOCK` rows, whose byte ranges are kept with
    the keys. Renamed into place at the end (the keys
    file last: it marks the sidecar complete)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    tmp_scan = path.with_name(f".{path.name}.{token}.scan")
    tmp_rows = path.with_name(f".{path.name}.{token}")
    tmp_keys = path.with_name(f".{keys_path(path).name}.{token}")
    hashes: list[np.ndarray] = []
    try:
        with pa.OSFile(str(tmp_scan), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for batch in batches:
                hashes.append(key_hashes(batch.column(column)))
                writer.write_batch(batch)
        every = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
        order = np.argsort(every, kind="stable")
        keys = np.empty(len(every), KEYS_DTYPE)
        keys["hash"], keys["row"] = every[order], order
        # one take over one chunk (a take over a chunked column concatenates it every time)
        scan = pa.ipc.open_file(pa.memory_map(str(tmp_scan))).read_all().combine_chunks()
        ordered = scan.take(pa.array(order)).combine_chunks()
        del scan
        with open(tmp_rows, "wb") as sink:
            head = schema.serialize()
            sink.write(head)
            blocks = [(0, head.size)]  # the schema, then one IPC message per block
            for batch in ordered.to_batches(max_chunksize=BLOCK):
                body = batch.serialize()
                blocks.append((sink.tell(), body.size))
                sink.write(body)
        del ordered
        with open(tmp_keys, "wb") as handle:
            np.save(handle, keys)
            np.save(handle, np.array(blocks, np.int64).reshape(-1, 2))
        os.replace(tmp_rows, path)
        os.replace(tmp_keys, keys_path(path))
    finally:
        for tmp in (tmp_scan, tmp_rows, tmp_keys):
            tmp.unlink(missing_ok=True)


def keys_path(path: Path) -> Path:
    """The sorted key hashes (and the rows file's blocks) beside a sidecar's rows file."""
    return path.with_name(path.name.removesuffix(".arrow") + ".keys.npy")


def exists(path: Path) -> bool:
    """Whether the sidecar at ``path`` is complete."""
    return keys_path(path).exists() and path.exists()


@lru_cache(maxsize=256)
def _open(path: Path) -> tuple[np.ndarray, np.ndarray, pa.Schema]:
    """A sidecar's keys, its blocks' byte ranges and its schema (files never change: they are
    named by content)."""
    with open(keys_path(path), "rb") as handle:
        keys, blocks = np.load(handle), np.load(handle)
    with open(path, "rb") as source:
        schema = pa.ipc.read_schema(pa.py_buffer(source.read(int(blocks[0][1]))))
    return keys, blocks[1:], schema


def find(path: Path, column: str, values: pa.Array, hashes: np.ndarray) -> pa.Table:
    """The rows of one sidecar whose ``column`` is in ``values`` (``hashes``: their
    :func:`key_hashes`), in scan order. Only the blocks holding a matching hash are read, by
    ``pread`` (a memory map would count every page the kernel maps around a touched one)."""
    keys, blocks, schema = _open(path)
    stored = keys["hash"]
    low = np.searchsorted(stored, hashes, "left")
    counts = np.searchsorted(stored, hashes, "right") - low
    total = int(counts.sum())
    if not total:
        return schema.empty_table()
    first = np.repeat(low - (np.cumsum(counts) - counts), counts)
    positions = np.unique(first + np.arange(total))
    parts = []
    fd = os.open(path, os.O_RDONLY)
    try:
        for block in np.unique(positions // BLOCK):
            offset, length = blocks[block]
            body = pa.py_buffer(os.pread(fd, int(length), int(offset)))
            batch = pa.ipc.read_record_batch(body, schema)
            inside = positions[(positions // BLOCK) == block] - block * BLOCK
            parts.append(batch.take(pa.array(inside)))
    finally:
        os.close(fd)
    found = pa.Table.from_batches(parts, schema)
    order = np.argsort(keys["row"][positions], kind="stable")  # back to scan order
    found = found.take(pa.array(order))
    return found.filter(pc.is_in(found.column(column), values))


def prune(directory: Path, current: Path) -> list[Path]:
    """Remove the sidecars in ``directory`` of an older partition or table schema than the
    ``current`` one's (finished builds of other key columns stay)."""
    removed = []
    name = current.name.split(".")[0]
    prefix, files = name.rsplit("-", 2)[0], name.rsplit("-", 1)[1]
    for path in sorted(directory.glob("lookup-*")):
        other = path.name.split(".")[0]
        if other.rsplit("-", 1)[1] != files or (
            other.rsplit("-", 2)[0] == prefix and other != name
        ):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    if removed:
        _open.cache_clear()
    return removed
