"""Erase samples from img2dataset's output: tar members, per-shard parquet rows, input rows.

Every batch folder under ``<lake>/image_shards/partition=*/batches/`` is searched through
img2dataset's own per-shard parquet (it carries ``pair_id`` and ``url_id``), so a sample is
found in every shard that ever held it, whatever ``download_results`` says now. A tar is
rewritten without the sample's members (``<key>.jpg``, ``.txt``, ``.json``...), the other
members copied as they are; the shard's parquet and the batch's ``_input.parquet`` are
rewritten without the sample's rows. Local files are replaced by rename, remote ones by one PUT.
"""

from __future__ import annotations

import re
import tarfile
import uuid
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.erase.targets import Targets
from pipeline.hops.download.shards import INPUT_FILE
from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName

_SHARD_PARQUET = re.compile(r"^\d+\.parquet$")
_KEY = re.compile(r"^((?:.*/|)[^./]+)\.")
"""webdataset's sample key of a member name: the path up to the first dot of its basename."""


@dataclass(frozen=True)
class RemovedSample:
    """One sample taken out of img2dataset's output."""

    url_id: str | None
    pair_id: str | None
    shard: str
    """The tar (or parquet) path relative to the lake root."""
    key: str | None
    members: int
    """Tar members removed (0: the sample had no image in the tar, e.g. a failed download)."""


def _matches(table: pa.Table, targets: Targets) -> pa.ChunkedArray:
    mask = pa.chunked_array([pa.array([False] * table.num_rows)])
    for column, values in (("pair_id", targets.pair_ids), ("url_id", targets.url_ids)):
        if column in table.column_names and values:
            hit = pc.is_in(table.column(column), pa.array(sorted(values), pa.string()))
            mask = pc.or_(mask, pc.fill_null(hit, False))
    return mask


def _write(fs: Any, path: str, write: Any) -> None:
    """Replace ``path`` by what ``write(handle)`` writes: aside and renamed when local."""
    local = (fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]) in ("file", "local")
    target = f"{path}.erase-{uuid.uuid4().hex[:8]}" if local else path
    with fs.open(target, "wb") as handle:
        write(handle)
    if local:
        fs.mv(target, path)


def rewrite_tar(fs: Any, path: str, keys: set[str], dry_run: bool = False) -> dict[str, int]:
    """Rewrite the tar at ``path`` without the members of samples ``keys``; members removed
    per key. The other members keep their headers and bytes."""
    removed: dict[str, int] = {}
    with fs.open(path, "rb") as src_file, tarfile.open(fileobj=src_file, mode="r:") as src:
        members = src.getmembers()
        for member in members:
            match = _KEY.match(member.name)
            if match and match[1] in keys:
                removed[match[1]] = removed.get(match[1], 0) + 1
        if not removed or dry_run:
            return removed

        def write(handle: Any) -> None:
            with tarfile.open(fileobj=handle, mode="w", format=src.format) as dst:
                for member in members:
                    match = _KEY.match(member.name)
                    if match and match[1] in keys:
                        continue
                    dst.addfile(member, src.extractfile(member) if member.isfile() else None)

        _write(fs, path, write)
    return removed


def _rewrite_parquet(fs: Any, path: str, table: pa.Table, keep: pa.ChunkedArray) -> None:
    kept = table.filter(keep)
    _write(fs, path, lambda handle: pq.write_table(kept, handle))


def erase_from_shards(lake: Lake, targets: Targets, dry_run: bool = False) -> list[RemovedSample]:
    """Take the targets' samples out of every shard of every crawl; what was removed."""
    if not targets:
        return []
    fs = lake.fs
    root = lake.path("")
    fs.invalidate_cache()
    batches = fs.glob(lake.path(TableName.IMAGE_SHARDS, "partition=*", "batches", "*"))
    removed: list[RemovedSample] = []
    for batch in sorted(batches):
        files = sorted(p for p in fs.ls(batch, detail=False))
        for path in files:
            name = path.rsplit("/", 1)[-1]
            if not (_SHARD_PARQUET.match(name) or name == INPUT_FILE):
                continue
            with fs.open(path, "rb") as handle:
                table = pq.read_table(handle)
            hit = _matches(table, targets)
            if not pc.any(hit).as_py():
                continue
            rows = table.filter(hit).to_pylist()
            counts: dict[str, int] = {}
            tar = path[: -len(".parquet")] + ".tar"
            if name != INPUT_FILE and fs.exists(tar):
                keys = {r["key"] for r in rows if r.get("key")}
                counts = rewrite_tar(fs, tar, keys, dry_run)
            shard = (tar if name != INPUT_FILE else path)[len(root) :].lstrip("/")
            removed += [
                RemovedSample(
                    r.get("url_id"),
                    r.get("pair_id"),
                    shard,
                    r.get("key"),
                    counts.get(r.get("key") or "", 0),
                )
                for r in rows
            ]
            if not dry_run:
                _rewrite_parquet(fs, path, table, pc.invert(hit))
    return removed
