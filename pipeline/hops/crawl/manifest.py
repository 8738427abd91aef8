"""Crawl manifests: which crawls exist, their WAT paths, and the slices that become partitions."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import fsspec
import orjson
import pyarrow as pa

from pipeline.lake.tables import CRAWL_MANIFEST_SCHEMA as MANIFEST_SCHEMA


def partition_key(crawl_id: str, slice_index: int) -> str:
    """Partition key of one slice of a crawl, e.g. ``CC-MAIN-2024-22_00003``."""
    return f"{crawl_id}_{slice_index:05d}"


def crawl_of_partition(key: str) -> str:
    """The crawl id a partition key belongs to."""
    return key.rsplit("_", 1)[0]


def list_crawls(collinfo_uri: str, storage_options: dict[str, Any] | None = None) -> list[str]:
    """Crawl ids listed in a Common Crawl style ``collinfo.json`` (newest first, as CC lists)."""
    with fsspec.open(collinfo_uri, "rb", **(storage_options or {})) as handle:
        entries = orjson.loads(handle.read())
    return [entry["id"] for entry in entries]


def list_wat_paths(
    data_root: str, crawl_id: str, storage_options: dict[str, Any] | None = None
) -> list[str]:
    """Paths (relative to ``data_root``) listed in a crawl's ``wat.paths.gz``."""
    uri = f"{data_root.rstrip('/')}/crawl-data/{crawl_id}/wat.paths.gz"
    try:
        with fsspec.open(uri, "rt", compression="gzip", **(storage_options or {})) as handle:
            return [line.strip() for line in handle if line.strip()]
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"crawl {crawl_id!r} has no wat.paths.gz at {uri}") from exc


@dataclass(frozen=True)
class SlicePlan:
    """How a crawl's WAT files are sampled and cut into partitions."""

    slice_size: int = 2
    sample_size: int | None = None
    sample_seed: int = 0


def plan_slices(crawl_id: str, wat_paths: list[str], data_root: str, plan: SlicePlan) -> pa.Table:
    """One row per WAT file chosen, with the partition (slice) it belongs to.

    With ``sample_size`` set, a seeded random sample of that many files is taken (kept in
    the crawl's own order), as when processing a fraction of a crawl.
    """
    if plan.slice_size < 1:
        raise ValueError("slice_size must be at least 1")
    chosen = list(wat_paths)
    if plan.sample_size is not None and plan.sample_size < len(chosen):
        picked = set(
            random.Random(f"{plan.sample_seed}:{crawl_id}").sample(
                range(len(chosen)), plan.sample_size
            )
        )
        chosen = [p for i, p in enumerate(chosen) if i in picked]
    root = data_root.rstrip("/")
    rows: dict[str, list] = {name: [] for name in MANIFEST_SCHEMA.names}
    for i, path in enumerate(chosen):
        index = i // plan.slice_size
        rows["crawl_id"].append(crawl_id)
        rows["partition_key"].append(partition_key(crawl_id, index))
        rows["slice_index"].append(index)
        rows["wat_path"].append(path)
        rows["wat_uri"].append(f"{root}/{path}")
    return pa.Table.from_pydict(rows, schema=MANIFEST_SCHEMA)
