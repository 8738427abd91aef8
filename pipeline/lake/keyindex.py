"""Key-lookup sidecars: look rows up by a key column without reading every row group.

Parquet cannot read one row of a column chunk: a lookup of keys spread at random over
millions of rows touches every row group (``image_embeddings``' url_ids are hashes). So the
first lookup of a partition writes a sidecar beside the search indexes, named after the
partition's current data files (:func:`files_hash`), in two files:

- ``lookup-<column>-<files hash>.arrow``: the partition's rows, in scan order, as an
  uncompressed Arrow IPC file, memory-mapped on read, so that taking a row reads its pages;
- ``lookup-<column>-<files hash>.keys.npy``: the 64-bit hash of every row's key, sorted, with
  the row it belongs to (``hash``, ``row``), searched with ``numpy.searchsorted``.

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
    column, the table's schema (a column added later must be read too) and the files."""
    shape = hashlib.sha256(schema.to_string(show_schema_metadata=False).encode()).hexdigest()
    return directory / f"lookup-{_SAFE.sub('_', column)}-{shape[:8]}-{files}.arrow"


def build(path: Path, column: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> None:
    """Write a sidecar at ``path`` from a partition's ``batches`` (in scan order), streamed:
    only the key hashes are held whole. Written under temporary names, then renamed (the keys
    file last: it marks the sidecar complete)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    tmp_rows = path.with_name(f".{path.name}.{token}")
    tmp_keys = path.with_name(f".{keys_path(path).name}.{token}")
    hashes: list[np.ndarray] = []
    try:
        with pa.OSFile(str(tmp_rows), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for batch in batches:
                hashes.append(key_hashes(batch.column(column)))
                writer.write_batch(batch)
        every = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
        keys = np.empty(len(every), KEYS_DTYPE)
        order = np.argsort(every, kind="stable")
        keys["hash"], keys["row"] = every[order], order
        with open(tmp_keys, "wb") as handle:
            np.save(handle, keys)
        os.replace(tmp_rows, path)
        os.replace(tmp_keys, keys_path(path))
    finally:
        tmp_rows.unlink(missing_ok=True)
        tmp_keys.unlink(missing_ok=True)


def keys_path(path: Path) -> Path:
    """The sorted key hashes beside a sidecar's rows file."""
    return path.with_name(path.name.removesuffix(".arrow") + ".keys.npy")


def exists(path: Path) -> bool:
    """Whether the sidecar at ``path`` is complete."""
    return keys_path(path).exists() and path.exists()


@lru_cache(maxsize=256)
def _open(path: Path) -> tuple[list[pa.RecordBatch], np.ndarray, np.ndarray, pa.Schema]:
    """A sidecar's record batches, the row each starts at, and its keys, memory-mapped (files
    never change: they are named by content)."""
    reader = pa.ipc.open_file(pa.memory_map(str(path)))
    batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
    starts = np.cumsum([0] + [b.num_rows for b in batches])
    return batches, starts, np.load(keys_path(path), mmap_mode="r"), reader.schema


def find(path: Path, column: str, values: pa.Array, hashes: np.ndarray) -> pa.Table:
    """The rows of one sidecar whose ``column`` is in ``values`` (``hashes``: their
    :func:`key_hashes`), in scan order."""
    batches, starts, keys, schema = _open(path)
    stored = keys["hash"]
    low = np.searchsorted(stored, hashes, "left")
    counts = np.searchsorted(stored, hashes, "right") - low
    total = int(counts.sum())
    if not total:
        return schema.empty_table()
    first = np.repeat(low - (np.cumsum(counts) - counts), counts)
    picked = np.unique(keys["row"][first + np.arange(total)])
    # take from each record batch (a take over a chunked column may concatenate it first)
    which = np.searchsorted(starts, picked, "right") - 1
    parts = [batches[b].take(pa.array(picked[which == b] - starts[b])) for b in np.unique(which)]
    found = pa.Table.from_batches(parts, schema)
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
