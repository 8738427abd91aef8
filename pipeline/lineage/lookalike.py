"""Find an image in the lake by what it looks like, as "Have I Been Trained" did: embed the
query image with the CLIP model that filtered the data and rank the stored image embeddings.

Exact search over ``image_embeddings`` (one model's rows), streamed partition by partition so
memory stays at one partition. At LAION scale an ANN index (faiss, DuckDB's vss) would replace it.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc
from PIL import Image

from pipeline.lake.store import Lake
from pipeline.lake.tables import TableName


@dataclass(frozen=True)
class Lookalike:
    url: str
    url_id: str
    similarity: float


def nearest_images(
    lake: Lake, clip, image: Image.Image, k: int = 5, min_similarity: float = 0.0
) -> list[Lookalike]:
    """The ``k`` stored images most similar to ``image`` under ``clip`` (a ``ClipModel``),
    best first, at least ``min_similarity``; empty when the model embedded nothing."""
    query = clip.embed_images([image.convert("RGB")])[0]
    best: list[tuple[float, str, str]] = []
    for key in lake.partitions(TableName.IMAGE_EMBEDDINGS):
        table = lake.read(
            TableName.IMAGE_EMBEDDINGS, [key], ["url_id", "url", "model_id", "embedding"]
        )
        table = table.filter(pc.equal(table.column("model_id"), clip.model_id))
        if table.num_rows == 0:
            continue
        vectors = np.asarray(table.column("embedding").to_pylist(), dtype=np.float32)
        sims = vectors @ query
        for i in np.argsort(-sims)[:k]:
            item = (float(sims[i]), table["url_id"][int(i)].as_py(), table["url"][int(i)].as_py())
            if len(best) < k:
                heapq.heappush(best, item)
            else:
                heapq.heappushpop(best, item)
    ranked = sorted(best, reverse=True)
    return [Lookalike(url, url_id, s) for s, url_id, url in ranked if s >= min_similarity]
