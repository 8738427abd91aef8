"""Find an image in the lake from a picture of it, keeping copies apart from lookalikes.

Three lists, as :class:`PictureMatches`:
- copies: stored fetches whose file had the picture's sha256 (the same bytes);
- near-duplicates: stored fetches whose copy-detection descriptor (``clip_scores.copy_desc``,
  :mod:`pipeline.lineage.copydetect`) lies within the calibrated distance of the picture's,
  under any of its crop hypotheses (:mod:`pipeline.lineage.calibrate`); none when the picture
  has too little contrast for its descriptor to identify it;
- lookalikes: the stored images nearest by the filter's CLIP (semantic: other drawings of a
  turquoise star look alike to it), with their similarity, never merged into a journey.

Both searches go through the per-partition HNSW indexes of :mod:`pipeline.lineage.ann`.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from pipeline.hops.dataset.hash_lists import pdq_hash_quality
from pipeline.lake.store import Lake
from pipeline.lineage import ann, copydetect
from pipeline.lineage.calibrate import near_duplicate_rule

NEAR_DUPLICATE_CANDIDATES = 50
"""Descriptor neighbours asked of the index before the threshold is applied."""


@dataclass(frozen=True)
class Lookalike:
    url: str
    url_id: str
    similarity: float


@dataclass
class PictureMatches:
    """What the lake holds of a picture: its hashes and the three lists."""

    sha256: str | None
    pdq: str
    contrast: float
    threshold: float
    min_contrast: float
    near_duplicates: list[dict[str, Any]] = field(default_factory=list)
    """``url``, ``url_id``, ``pdq``, ``distance`` (cosine, of the copy descriptors)."""
    lookalikes: list[Lookalike] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "pdq": self.pdq,
            "contrast": round(self.contrast, 4),
            "near_duplicate_threshold": self.threshold,
            "min_contrast": self.min_contrast,
        }


def open_picture(picture: bytes | Image.Image) -> tuple[Image.Image, str | None]:
    """The decoded picture and the sha256 of its file (None for an image given decoded)."""
    if isinstance(picture, Image.Image):
        return picture.convert("RGB"), None
    with Image.open(io.BytesIO(picture)) as image:
        return image.convert("RGB"), hashlib.sha256(picture).hexdigest()


def nearest_images(
    lake: Lake, clip, image: Image.Image, k: int = 5, min_similarity: float = 0.0
) -> list[Lookalike]:
    """The ``k`` stored images most similar to ``image`` under ``clip`` (a ``ClipModel``),
    best first, at least ``min_similarity``; empty when the model embedded nothing."""
    query = clip.embed_images([image.convert("RGB")])[0]
    hits = ann.nearest_embeddings(lake, clip.model_id, query, k)
    found = [Lookalike(h.url, h.url_id, 1.0 - h.distance) for h in hits]
    return [f for f in found if f.similarity >= min_similarity]


def match_picture(
    lake: Lake, picture: bytes | Image.Image, clip, k: int = 5, min_similarity: float = 0.0
) -> PictureMatches:
    """The picture's near-duplicates (copy descriptors) and CLIP lookalikes in ``lake``;
    copies by sha256 are looked up in the lineage index (``LineageIndex.trace_picture``)."""
    image, sha256 = open_picture(picture)
    pdq, _quality = pdq_hash_quality(image)
    contrast = copydetect.describe(image)[1]
    rule = near_duplicate_rule()
    matches = PictureMatches(sha256, pdq, contrast, rule.threshold, rule.min_contrast)
    if contrast >= rule.min_contrast:
        views = copydetect.query_descriptors(image)
        hits = ann.nearest_copies(lake, views, NEAR_DUPLICATE_CANDIDATES, rule.threshold)
        matches.near_duplicates = [
            {"url": h.url, "url_id": h.url_id, "pdq": h.pdq, "distance": round(h.distance, 4)}
            for h in hits
        ]
    if clip is not None:
        matches.lookalikes = nearest_images(lake, clip, image, k, min_similarity)
    return matches
