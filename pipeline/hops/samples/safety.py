"""The interface safety filter: punsafe over each generated image's CLIP embedding.

An image whose punsafe score reaches the threshold is flagged; flagged images are stored and
shown blurred (:func:`blur`), while checks that judge the model (prompt following, the
replication audit) keep the unblurred pixels in memory. The error rates of the shipped head
are measured by :mod:`pipeline.hops.samples.safety_calibration`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

BLUR_RADIUS_SHARE = 0.2
"""Gaussian blur radius as a share of the image's longer side: at 0.2 a 32 px sample becomes
a smooth colour wash (no stripe, edge or shape survives); at 0.1 shapes still show."""


@dataclass(frozen=True)
class Screening:
    """The filter's decision per image."""

    scores: np.ndarray
    """punsafe per image (0-1)."""
    flagged: np.ndarray
    """``scores >= threshold``."""
    threshold: float
    head: str
    """The head's weights (path) and sha256."""

    @property
    def flagged_count(self) -> int:
        return int(self.flagged.sum())


class SafetyFilter:
    """A punsafe head over a CLIP model's image embeddings, with a decision threshold."""

    def __init__(self, clip, head, threshold: float) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"safety threshold must be within [0, 1], not {threshold}")
        if head.kind != "punsafe":
            raise ValueError(f"the safety filter takes a punsafe head, not {head.kind!r}")
        self.clip, self.head, self.threshold = clip, head, float(threshold)

    def scores(self, images: Sequence[Image.Image]) -> np.ndarray:
        """punsafe of each image (the head over the image's CLIP embedding)."""
        if not images:
            return np.zeros(0, dtype=np.float32)
        return self.head(self.clip.embed_images([im.convert("RGB") for im in images]))

    def screen(self, images: Sequence[Image.Image]) -> Screening:
        scores = self.scores(images)
        return Screening(
            scores,
            scores >= self.threshold,
            self.threshold,
            f"{self.head.source} sha256:{self.head.sha256}",
        )


def blur(image: Image.Image, share: float = BLUR_RADIUS_SHARE) -> Image.Image:
    """``image`` under a Gaussian blur of radius ``share`` x its longer side (at least 2 px)."""
    radius = max(2.0, share * max(image.size))
    return image.filter(ImageFilter.GaussianBlur(radius))


def shown_images(images: Sequence[Image.Image], screening: Screening) -> list[Image.Image]:
    """What may be stored or shown: flagged images blurred, the others as they are."""
    if len(images) != len(screening.flagged):
        raise ValueError(f"{len(images)} images but {len(screening.flagged)} decisions")
    return [blur(im) if f else im for im, f in zip(images, screening.flagged, strict=True)]
