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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa

BLOCK = 8
"""Rows per record batch of a sidecar: what one matching key costs to read."""
FORMAT = 3
"""The sidecar layout's version (part of its name: a new layout is never misread)."""
_SAFE = re.compile(r"[^A-Za-z0-9_]")
_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"
"""The end-of-stream marker of the Arrow IPC stream format."""


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
    the keys. Renamed into place at the end (the keys file last: it marks the sidecar
    complete)."""
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
        # one take over one chunk (a take over a chunked column concatenates it every time)
        scan = pa.ipc.open_file(pa.memory_map(str(tmp_scan))).read_all().combine_chunks()
        ordered = scan.take(pa.array(order)).combine_chunks()
        del scan
        with open(tmp_rows, "wb") as sink:
            sink.write(schema.serialize())
            ends = [sink.tell()]  # the schema, then one IPC message per block
            for batch in ordered.to_batches(max_chunksize=BLOCK):
                sink.write(batch.serialize())
                ends.append(sink.tell())
        del ordered
        header = np.array([len(every), len(ends) - 1], np.uint64)
        keys = [header, every[order], order.astype(np.uint64), np.array(ends, np.uint64)]
        with open(tmp_keys, "wb") as handle:
            np.save(handle, np.concatenate(keys))
        os.replace(tmp_rows, path)
        os.replace(tmp_keys, keys_path(path))
    finally:
        for tmp in (tmp_scan, tmp_rows, tmp_keys):
            tmp.unlink(missing_ok=True)


def keys_path(path: Path) -> Path:
    """The keys file beside a sidecar's rows file: one uint64 ``.npy``, ``[rows, blocks]``,
    then the sorted key hashes, each one's row in a scan of the partition, and the end of
    the schema message and of each block in the rows file (memory-mapped when read)."""
    return path.with_name(path.name.removesuffix(".arrow") + ".keys.npy")


def exists(path: Path) -> bool:
    """Whether the sidecar at ``path`` is complete."""
    return keys_path(path).exists() and path.exists()


@dataclass(frozen=True)
class _Sidecar:
    hashes: np.ndarray
    rows: np.ndarray
    ends: np.ndarray
    head: bytes
    """The schema message, put before the blocks read to make one IPC stream of them."""
    schema: pa.Schema


@lru_cache(maxsize=256)
def _open(path: Path) -> _Sidecar:
    """A sidecar's keys, memory-mapped (only the pages a search touches are read), and its
    schema (files never change: they are named by content)."""
    keys = np.load(keys_path(path), mmap_mode="r")
    n, blocks = (int(v) for v in keys[:2])
    hashes, rows, ends = keys[2 : 2 + n], keys[2 + n : 2 + 2 * n], keys[2 + 2 * n :]
    assert len(ends) == blocks + 1, path
    with open(path, "rb") as source:
        head = source.read(int(ends[0]))
    return _Sidecar(hashes, rows, ends, head, pa.ipc.read_schema(pa.py_buffer(head)))


def schema(path: Path) -> pa.Schema:
    """The schema of the rows a sidecar holds."""
    return _open(path).schema


def prefetch(path: Path) -> None:
    """Ask the disk for a sidecar's keys file and the head of its rows file, without waiting:
    a lookup asks for every partition's before searching any (a cold search then waits on
    them together, not one after another)."""
    for name, size in ((keys_path(path), 0), (path, 1 << 16)):
        fd = os.open(name, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, size, os.POSIX_FADV_WILLNEED)
        finally:
            os.close(fd)


@dataclass(frozen=True)
class Located:
    """Where one sidecar holds rows whose key hash is wanted (:func:`locate`)."""

    path: Path
    positions: np.ndarray
    """The matching rows' places in key-hash order."""
    blocks: np.ndarray
    """The record batches holding them."""
    runs: list[tuple[int, int]]
    """Byte ranges of adjacent blocks: one read each."""


def locate(path: Path, hashes: np.ndarray) -> Located:
    """The rows of one sidecar whose key hash is in ``hashes`` (sorted, unique): a superset
    of the wanted keys' rows (a hash may collide; check the key). The disk is asked for the
    blocks holding them at once (``posix_fadvise(WILLNEED)``), so that a lookup that locates
    in every partition before reading (:func:`read`) keeps the disk busy with all of them."""
    side = _open(path)
    stored = side.hashes
    low = np.searchsorted(stored, hashes, "left")
    inside = low < len(stored)
    hit = np.zeros(len(hashes), bool)
    hit[inside] = stored[low[inside]] == hashes[inside]
    if not hit.any():
        return Located(path, np.empty(0, np.int64), np.empty(0, np.int64), [])
    low = low[hit]
    counts = np.searchsorted(stored, hashes[hit], "right") - low
    total = int(counts.sum())
    positions = np.repeat(low - (np.cumsum(counts) - counts), counts) + np.arange(total)
    blocks = np.unique(positions // BLOCK)
    starts, ends = side.ends[blocks].astype(np.int64), side.ends[blocks + 1].astype(np.int64)
    breaks = np.flatnonzero(starts[1:] != ends[:-1]) + 1
    run_starts = starts[np.r_[0, breaks]].tolist()
    runs = list(zip(run_starts, ends[np.r_[breaks - 1, len(ends) - 1]].tolist(), strict=True))
    fd = os.open(path, os.O_RDONLY)
    try:
        for start, end in runs:
            os.posix_fadvise(fd, start, end - start, os.POSIX_FADV_WILLNEED)
    finally:
        os.close(fd)
    return Located(path, positions, blocks, runs)


def read(found: Located) -> pa.Table:
    """The rows :func:`locate` found, in scan order. The blocks are read by ``pread`` (a
    memory map would count every page the kernel maps around a touched one) into one buffer
    that is decoded as one IPC stream; then one take."""
    side = _open(found.path)
    if not found.runs:
        return side.schema.empty_table()
    # one buffer: the schema message, the runs read into it, the end-of-stream marker
    size = sum(end - start for start, end in found.runs)
    stream = bytearray(len(side.head) + size + len(_EOS))
    view = memoryview(stream)
    view[: len(side.head)] = side.head
    view[len(view) - len(_EOS) :] = _EOS
    at = len(side.head)
    fd = os.open(found.path, os.O_RDONLY)
    try:
        for start, end in found.runs:
            if os.preadv(fd, [view[at : at + end - start]], start) != end - start:
                raise OSError(f"{found.path}: short read at {start}")
            at += end - start
    finally:
        os.close(fd)
    # one chunk: a take over many chunks costs more than joining them first
    rows = pa.ipc.open_stream(pa.py_buffer(stream)).read_all().combine_chunks()
    positions = found.positions
    taken = np.searchsorted(found.blocks, positions // BLOCK) * BLOCK + positions % BLOCK
    order = np.argsort(side.rows[positions], kind="stable")  # back to scan order
    return rows.take(pa.array(taken[order]))


def find(path: Path, hashes: np.ndarray) -> pa.Table:
    """:func:`locate` then :func:`read`: one sidecar's rows whose key hash is in ``hashes``."""
    return read(locate(path, hashes))


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
