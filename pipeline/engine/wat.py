"""Hop 1 on Ray: one task per WAT file, the same per-file function as in process.

Each task runs :func:`pipeline.hops.wat.records.iter_image_link_batches` over its file as a
streaming generator (its batches go to the object store as they are made, at most
:data:`BACKPRESSURE` ahead of the driver), then yields the file's :class:`ExtractStats`. The
driver reads the files' streams in the slice's order, so the batches come out in the same
order as in process. Must run inside :func:`pipeline.engine.cluster.connected`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from pipeline.hops.wat.records import ExtractStats, iter_image_link_batches

BACKPRESSURE = 4
"""Batches a file's task may have made that the driver has not read yet."""


def file_batches(uri: str, crawl_id: str, kwargs: dict[str, Any]) -> Iterator[Any]:
    """One WAT file's link batches, then its :class:`ExtractStats` (runs in a Ray task)."""
    stats = ExtractStats()
    yield from iter_image_link_batches(uri, crawl_id, stats=stats, **kwargs)
    yield stats


def ray_image_link_batches(
    uris: list[str], crawl_id: str, stats: ExtractStats, num_cpus: float = 1.0, **kwargs: Any
) -> Iterator[pa.RecordBatch]:
    """The link batches of ``uris``, in order, read by one Ray task per file; each file's
    figures are merged into ``stats``. A file that cannot be read raises its
    :class:`~pipeline.hops.wat.records.WatOpenError` here (as Ray's task error, which is
    also an instance of it)."""
    import ray

    task = ray.remote(
        num_cpus=num_cpus,
        num_returns="streaming",
        max_retries=0,  # a half-read file is not resumed; the step fails and is re-run
        _generator_backpressure_num_objects=BACKPRESSURE,
    )(file_batches)
    streams = [task.remote(uri, crawl_id, kwargs) for uri in uris]
    try:
        for stream in streams:
            for ref in stream:
                item = ray.get(ref)
                if isinstance(item, ExtractStats):
                    stats.merge(item)
                else:
                    yield item
    except BaseException:  # a failed file (or a consumer that stopped): stop the others
        for stream in streams:
            ray.cancel(stream)
        raise
