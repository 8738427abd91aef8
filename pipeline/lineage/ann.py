"""Approximate nearest-neighbour indexes (usearch HNSW) for search by image.

Three kinds, one file per table partition, built lazily by the first search that needs them:
- ``image_embeddings``: the CLIP embeddings of one ``model_id``, cosine;
- ``clip_scores``: the PDQ hashes of the fetched images (256 bits, Hamming);
- ``clip_scores``: the copy-detection descriptors of the fetched images (``copy_desc``,
  :mod:`pipeline.lineage.copydetect`; int8, cosine).

An index is named after its partition's current data files (a hash of their Delta paths),
``<index dir>/<table>/<partition>/<kind>-<files hash>.usearch``, beside an ``.arrow`` (IPC
file, memory-mapped when read) of its labels (row -> url_id, url, pdq; no vector): a
re-written partition, or a Delta ``DELETE`` (an erasure), has new files and so a new index
name, and the stale files are removed (:func:`prune`). A search queries every partition's
index and merges their top k.

A process keeps what a search needs between searches: the partitions' current files, under
the table's Delta version (:mod:`pipeline.lake.current` reads only the commits made since the
last search), and each index memory-mapped (``view``) with its labels. A picture's crop
hypotheses go to each index in one batch call; a search with a distance bound asks each
hypothesis for :data:`FIRST_COUNT` neighbours first and for ``k`` only where all of those lie
within the bound, and only neighbours within it are labelled and merged.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.lake import current, delta, keyindex
from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName
from pipeline.lineage import copydetect

PDQ = "pdq"
COPY = "copy"
"""The copy-detection descriptor's index kind (column ``copy_desc``)."""
EXPANSION_SEARCH = 128
"""HNSW candidates kept per query (usearch's ``expansion_search``; recall vs speed)."""
COPY_EXPANSION = 32
"""The same for copy descriptors: a copy lies far closer to its original than any other
drawing does, which a narrow search finds (``bench/lookalike_index.py``: found rate)."""
FIRST_COUNT = 8
"""Neighbours asked per query first in a search with a distance bound; ``k`` only for the
queries whose every one lies within it."""
LABELS = ("url_id", "url", "pdq")
LABELS_SUFFIX = ".arrow"
"""An index's labels file (Arrow IPC; the ``.parquet`` of an older layout is pruned)."""


@dataclass(frozen=True)
class Hit:
    url_id: str
    url: str
    pdq: str | None
    distance: float
    """Hamming bits (PDQ) or 1 - cosine similarity (embeddings)."""


def index_root(lake: Lake) -> Path:
    """``<lake>/_indexes`` for a local lake; for a remote one (usearch maps local files),
    ``$XDG_CACHE_HOME/crawl2diffusion/indexes/<hash of the lake root>`` (the lake's key
    sidecars live there too: :meth:`Lake.index_root`)."""
    return lake.index_root()


def _kind(model_id: str | None, descriptor: str = PDQ) -> str:
    if model_id is None:
        return descriptor
    return "emb" + hashlib.sha256(model_id.encode()).hexdigest()[:12]


_files: dict[str, tuple[int, dict[str, str]]] = {}
"""Table URI -> (Delta version, partition -> hash of its current data files)."""
_pruned: dict[str, int] = {}
"""Table URI -> the Delta version its index files were last pruned at, by this process."""


def current_files(lake: Lake, table: str) -> dict[str, str]:
    """Partition -> hash of its current data files (changes whenever the partition does)."""
    return _current(lake, table)[1]


def _current(lake: Lake, table: str) -> tuple[int, dict[str, str]]:
    """The table's Delta version (-1 when absent) and :func:`current_files`, recomputed only
    when the table has a new version."""
    found = current.table(lake, table)
    if found is None:
        return -1, {}
    uri, version = lake.table_uri(table), found.version()
    cached = _files.get(uri)
    if cached is None or cached[0] != version:
        paths: dict[str, list[str]] = {}
        for action in delta.add_actions(found).select(["path", delta.PARTITION]).to_pylist():
            paths.setdefault(action[delta.PARTITION], []).append(action["path"])
        cached = (version, {p: keyindex.files_hash(paths[p]) for p in sorted(paths)})
        _files[uri] = cached
    return cached


def _build(
    lake: Lake, table: str, partition: str, model_id: str | None, path: Path, descriptor: str
) -> None:
    from usearch.index import Index

    if model_id is None and descriptor == COPY:
        stored = lake.delta_table(table).schema().to_arrow()
        columns = ["url_id", "url", "pdq", "copy_desc"]
        if "copy_desc" in pa.schema(stored).names:
            data = lake.read(table, [partition], columns)
            data = data.filter(pc.is_valid(data.column("copy_desc")))
        else:  # a lake from before hop 3 stored the descriptor
            data = pa.table({c: pa.array([], pa.string()) for c in columns})
        data = data.group_by(columns).aggregate([]) if data.num_rows else data
        vectors = copydetect.from_hex(data.column("copy_desc").to_pylist())
        index = Index(ndim=copydetect.DIM, metric="cos", dtype="i8")
    elif model_id is None:
        data = lake.read(table, [partition], ["url_id", "url", "pdq"])
        data = data.filter(pc.is_valid(data.column("pdq")))
        data = data.group_by(["url_id", "url", "pdq"]).aggregate([]) if data.num_rows else data
        vectors = np.frombuffer(
            bytes.fromhex("".join(data.column("pdq").to_pylist())), np.uint8
        ).reshape(-1, 32)
        index = Index(ndim=256, metric="hamming", dtype="b1")
    else:
        data = lake.read(table, [partition], ["url_id", "url", "model_id", "embedding"])
        data = data.filter(pc.equal(data.column("model_id"), model_id))
        flat = pc.list_flatten(data.column("embedding")).to_numpy(zero_copy_only=False)
        vectors = flat.astype(np.float32).reshape(max(1, data.num_rows), -1)[: data.num_rows]
        index = Index(ndim=max(1, vectors.shape[1]), metric="cos", dtype="f32")
        data = data.append_column("pdq", pa.nulls(data.num_rows, pa.string()))
    if data.num_rows:
        index.add(np.arange(data.num_rows, dtype=np.uint64), vectors)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        labels = data.select(list(LABELS)).combine_chunks()
        sink = pa.OSFile(str(tmp.with_suffix(LABELS_SUFFIX)), "wb")
        with sink, pa.ipc.new_file(sink, labels.schema) as writer:
            writer.write_table(labels)
        os.replace(tmp.with_suffix(LABELS_SUFFIX), path.with_suffix(LABELS_SUFFIX))
        index.save(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(LABELS_SUFFIX).unlink(missing_ok=True)


def partition_indexes(
    lake: Lake, table: str, model_id: str | None = None, descriptor: str = PDQ
) -> list[Path]:
    """The current index file of every partition of ``table`` (``model_id``: its embeddings;
    None: the ``descriptor``, :data:`PDQ` hashes or :data:`COPY` descriptors), building those
    missing; stale ones are removed (once per table version and after a build)."""
    root = index_root(lake) / table
    kind = _kind(model_id, descriptor)
    paths, built = [], False
    version, files = _current(lake, table)
    for partition, name in files.items():
        path = root / partition / f"{kind}-{name}.usearch"
        if not (path.exists() and path.with_suffix(LABELS_SUFFIX).exists()):
            _build(lake, table, partition, model_id, path, descriptor)
            built = True
        paths.append(path)
    if built or _pruned.get(lake.table_uri(table)) != version:
        prune(lake, table, builds=False)
        _pruned[lake.table_uri(table)] = version
    return paths


def prune(lake: Lake, table: str, builds: bool = True) -> list[Path]:
    """Remove every index file of ``table`` that is not named after its partition's current
    data files (a partition re-written, erased from or gone), and with ``builds`` unfinished
    builds (temporary files); the files removed."""
    root = index_root(lake) / table
    if not root.exists():
        return []
    current = current_files(lake, table)
    removed = []
    for path in sorted(root.glob("*/*")):
        files = path.name.split(".")[0].rsplit("-", 1)[-1]
        stale = builds if path.name.startswith(".") else current.get(path.parent.name) != files
        if stale or path.suffix == ".parquet":  # or labels of the older layout
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    if removed:
        _open.cache_clear()
    return removed


@lru_cache(maxsize=1024)
def _open(path: Path):
    """An index file, memory-mapped, and its labels (files never change: named by content)."""
    from usearch.index import Index

    labels = pa.ipc.open_file(pa.memory_map(str(path.with_suffix(LABELS_SUFFIX)))).read_all()
    return Index.restore(str(path), view=True), labels


def _batch(found) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A usearch answer as 2-D keys and distances and per-query counts (a batch of one query
    comes back as one ``Matches``)."""
    if hasattr(found, "counts"):
        return found.keys, found.distances, found.counts
    return found.keys[None, :], found.distances[None, :], np.array([len(found.keys)])


def _neighbours(
    index, queries: np.ndarray, k: int, max_distance: float, expansion: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each stored row within ``max_distance`` of any of ``queries`` among the ``k`` nearest
    to it, with its smallest distance (rows unique)."""
    count = min(k, len(index))
    first = min(count, FIRST_COUNT) if math.isfinite(max_distance) else count
    index.expansion_search = max(expansion, first)
    keys, dists, counts = _batch(index.search(queries, first))
    real = np.arange(first)[None, :] < counts[:, None]
    found = [(keys[real], dists[real])]
    if first < count:  # queries whose every neighbour is within the bound may have more
        more = (counts == first) & (dists[:, first - 1] <= max_distance)
        if more.any():
            index.expansion_search = max(expansion, count)
            keys, dists, counts = _batch(index.search(queries[more], count))
            real = np.arange(count)[None, :] < counts[:, None]
            found.append((keys[real], dists[real]))
    key = np.concatenate([f[0] for f in found])
    dist = np.concatenate([f[1] for f in found])
    within = dist <= max_distance
    key, dist = key[within], dist[within]
    order = np.lexsort((dist, key))  # by row, closest first: keep each row's first
    key, dist = key[order], dist[order]
    first_of_row = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, bool)
    return key[first_of_row], dist[first_of_row]


def search(
    lake: Lake,
    table: str,
    query: np.ndarray,
    k: int,
    model_id: str | None,
    descriptor: str = PDQ,
    max_distance: float = math.inf,
) -> list[Hit]:
    """The ``k`` nearest stored vectors to ``query`` within ``max_distance`` over every
    partition's index, merged (closest first; one hit per url_id and PDQ hash). A 2-D
    ``query`` is several views of one picture: a stored vector's distance is its smallest to
    any of them."""
    queries = query if query.ndim == 2 else query[None, :]
    expansion = COPY_EXPANSION if model_id is None and descriptor == COPY else EXPANSION_SEARCH
    hits: list[Hit] = []
    for path in partition_indexes(lake, table, model_id, descriptor):
        index, labels = _open(path)
        if index is None or len(index) == 0:
            continue
        keys, dists = _neighbours(index, queries, k, max_distance, expansion)
        rows = labels.take(pa.array(keys.astype(np.int64))).to_pylist()
        for row, distance in zip(rows, dists.tolist(), strict=True):
            hits.append(Hit(row["url_id"], row["url"], row["pdq"], float(distance)))
    best: dict[tuple[str, str | None], Hit] = {}
    for hit in sorted(hits, key=lambda h: (h.distance, h.url_id)):
        best.setdefault((hit.url_id, hit.pdq), hit)
    return list(best.values())[:k]


def nearest_copies(
    lake: Lake, queries: np.ndarray, k: int = 50, max_distance: float = 2.0
) -> list[Hit]:
    """Stored fetches (``clip_scores``) whose copy-detection descriptor lies within
    ``max_distance`` (cosine) of any of ``queries`` (:func:`copydetect.query_descriptors`)."""
    return search(lake, TableName.CLIP_SCORES, queries.astype(np.int8), k, None, COPY, max_distance)


def nearest_pdq(lake: Lake, pdq: str, k: int = 50, max_distance: int = 256) -> list[Hit]:
    """Stored fetches (``clip_scores``) whose PDQ hash lies within ``max_distance`` bits."""
    query = np.frombuffer(bytes.fromhex(pdq), np.uint8)
    return search(lake, TableName.CLIP_SCORES, query, k, None, PDQ, max_distance)


def nearest_embeddings(lake: Lake, model_id: str, query: np.ndarray, k: int = 5) -> list[Hit]:
    """Stored images (``image_embeddings`` of ``model_id``) nearest to ``query`` by cosine."""
    return search(lake, TableName.IMAGE_EMBEDDINGS, query.astype(np.float32), k, model_id)
