"""A copy-detection descriptor: tells a re-published copy of a picture from other drawings.

PDQ misses most copies of the synthetic web's drawings once cropped, overlaid or halved. This
descriptor is a blurred colour thumbnail of the picture's central region, aligned against
crops at query time:

- stored (:func:`descriptor`): the central ``[MARGIN, 1 - MARGIN]`` square of the picture
  (a corner overlay falls mostly outside it), resampled to :data:`WORK` px, Gaussian-blurred,
  averaged down to ``GRID x GRID`` RGB cells, mean-centred per channel and scaled to unit
  length, as int8 (:data:`DIM` bytes; cosine distance, usearch ``i8``);
- queried (:func:`query_descriptors`): the same region under each crop hypothesis (per axis:
  nothing, 5 % or 10 % cut, from one side, the other or both), so a query cropped by up to
  10 % has one hypothesis within 2.5 % of its true alignment. The distance of a picture to a
  stored image is the smallest over hypotheses.

A picture with almost no contrast (a plain background) has no usable descriptor
(:func:`contrast` under :data:`MIN_CONTRAST`) and makes no near-duplicate decision.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

GRID = 12
"""Cells per side of the thumbnail."""
DIM = GRID * GRID * 3
WORK = 128
"""Side of the working image every region is cut from."""
BLUR = 3.0
"""Gaussian radius at :data:`WORK` px: tolerance to the residual misalignment of a crop."""
MARGIN = 0.1
"""The region described leaves this share of each side out."""
MIN_CONTRAST = 0.02
"""RMS of the centred thumbnail (0-1 colour units) under which a picture is not described."""
CUTS = ((0.0, 0.0), (0.05, 0.0), (0.05, 0.025), (0.05, 0.05), (0.1, 0.0), (0.1, 0.05), (0.1, 0.1))
"""Crop hypotheses per axis: (share cut, share cut before the picture's start)."""


def _working(image: Image.Image) -> Image.Image:
    image = image.convert("RGB")
    method = Image.Resampling.BOX if min(image.size) >= WORK else Image.Resampling.BILINEAR
    return image.resize((WORK, WORK), method).filter(ImageFilter.GaussianBlur(BLUR))


def _describe(
    work: Image.Image, box: tuple[float, float, float, float]
) -> tuple[np.ndarray, float]:
    """The unit-length centred thumbnail of ``box`` (fractions of the picture), and its RMS."""
    x0, y0, x1, y1 = (v * WORK for v in box)
    cells = work.resize((GRID, GRID), Image.Resampling.BOX, box=(x0, y0, x1, y1))
    v = np.asarray(cells, np.float32).reshape(-1, 3) / 255.0
    v = (v - v.mean(axis=0)).reshape(-1)
    norm = float(np.linalg.norm(v))
    return v / max(norm, 1e-6), norm / np.sqrt(DIM)


def _int8(v: np.ndarray) -> np.ndarray:
    peak = np.abs(v).max(axis=-1, keepdims=True)
    return np.round(v / np.maximum(peak, 1e-9) * 127).astype(np.int8)


def describe(image: Image.Image) -> tuple[np.ndarray, float]:
    """The stored descriptor of a picture (int8, :data:`DIM`) and its RMS contrast (see
    :data:`MIN_CONTRAST`)."""
    v, rms = _describe(_working(image), (MARGIN, MARGIN, 1 - MARGIN, 1 - MARGIN))
    return _int8(v), rms


def descriptor_hex(image: Image.Image) -> str | None:
    """:func:`describe` as hex (what hop 3 stores), None for a picture without contrast."""
    v, rms = describe(image)
    return v.tobytes().hex() if rms >= MIN_CONTRAST else None


def from_hex(values: list[str]) -> np.ndarray:
    """Stored hex descriptors as an int8 matrix (rows x :data:`DIM`)."""
    return np.frombuffer(bytes.fromhex("".join(values)), np.int8).reshape(len(values), DIM)


def query_descriptors(image: Image.Image) -> np.ndarray:
    """The picture's descriptor under every crop hypothesis (int8, hypotheses x :data:`DIM`):
    the region of the picture that the stored region of its uncropped original would be."""
    work = _working(image)

    def span(cut: float, before: float) -> tuple[float, float]:
        kept = 1.0 - cut
        return (MARGIN - before) / kept, (1 - MARGIN - before) / kept

    rows = []
    for cx in CUTS:
        for cy in CUTS:
            (x0, x1), (y0, y1) = span(*cx), span(*cy)
            rows.append(_describe(work, (x0, y0, x1, y1))[0])
    return _int8(np.stack(rows))


def distances(queries: np.ndarray, stored: np.ndarray) -> np.ndarray:
    """Cosine distance of each query row to each stored row (as usearch ``cos`` on ``i8``)."""
    q = queries.astype(np.float32)
    s = stored.astype(np.float32)
    q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-9)
    s /= np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-9)
    return 1.0 - q @ s.T
