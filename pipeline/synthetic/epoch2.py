"""Epoch 2 of the synthetic web: what some URLs answer after hop 3 has scored them.

A server started with ``epoch=2`` answers these routes differently (``routes.jsonl`` holds
the changes as each route's ``epoch2``); epoch 1 is the web as generated. Kinds:

- ``replaced``: other bytes (another image of the web), as after link rot, a replaced file
  or split-view poisoning through an expired domain (Carlini et al. 2023);
- ``late_redirect``: a 302 into a private address (cloud metadata, loopback, a private
  network; http and https);
- ``bomb``: the web's decompression-bomb PNG.

The images are drawn from healthy content images (no fault, no opt-out, not unsafe or
watermarked, not a redirect's target, aesthetic score >= ``EPOCH2_MIN_AESTHETIC`` so that
they reach the aesthetic subset), with a generator of their own: epoch-1 answers and every
other draw of the web are unchanged.
"""

from __future__ import annotations

import random
from typing import Any

from .config import SyntheticWebConfig
from .model import ImageSpec
from .routes import MIME, served_format
from .sampling import pick_counts, rng_for

LATE_REDIRECTS = (
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://127.0.0.1:8080/admin/secret.png",
    "https://10.0.0.5/internal/photo.jpg",
)
"""Where late redirects point, in turn."""
EPOCH2_MIN_AESTHETIC = 5.5


def _eligible(images: list[ImageSpec]) -> list[ImageSpec]:
    targets = {im.redirect_to for im in images if im.redirect_to is not None}
    return [
        im
        for im in images
        if im.role in ("content", "cdn")
        and im.fault is None
        and not im.header_noai
        and im.file is not None
        and im.visual is not None
        and not (im.visual.unsafe or im.visual.watermark)
        and im.id not in targets
        and (im.aesthetic or 0.0) >= EPOCH2_MIN_AESTHETIC
    ]


def _bomb(images: list[ImageSpec]) -> ImageSpec | None:
    return next((im for im in images if im.oversized_kind == "bomb" and im.file), None)


def plan_epoch2(images: list[ImageSpec], cfg: SyntheticWebConfig) -> dict[int, dict[str, Any]]:
    """Image id -> its route's epoch-2 answer (``kind`` plus the route fields it changes).
    Needs the files written (``file`` and ``sha256`` set)."""
    eligible = _eligible(images)
    bomb = _bomb(images)
    shares = [(k, s) for k, s in cfg.epoch2_shares if k != "bomb" or bomb is not None]
    if not eligible or not shares:
        return {}
    rng = rng_for(cfg.seed, "epoch2")
    order = rng.sample(eligible, len(eligible))
    out: dict[int, dict[str, Any]] = {}
    pos = 0
    for kind, k in pick_counts(len(order), shares).items():
        for n, im in enumerate(order[pos : pos + k]):
            answer = _answer(kind, n, im, order, bomb, rng)
            if answer is not None:
                out[im.id] = answer
        pos += k
    return out


def _answer(
    kind: str,
    n: int,
    im: ImageSpec,
    images: list[ImageSpec],
    bomb: ImageSpec | None,
    rng: random.Random,
) -> dict[str, Any] | None:
    if kind == "late_redirect":
        return {
            "kind": kind,
            "status": 302,
            "file": None,
            "content_type": "text/html; charset=utf-8",
            "location": LATE_REDIRECTS[n % len(LATE_REDIRECTS)],
        }
    if kind == "bomb" and bomb is not None:
        return {"kind": kind, "file": bomb.file, "content_type": "image/png", "sha256": bomb.sha256}
    donors = [d for d in images if d.sha256 != im.sha256]
    if not donors:  # a web of one picture: nothing else to serve
        return None
    donor = rng.choice(donors)
    return {
        "kind": "replaced",
        "file": donor.file,
        "content_type": MIME[served_format(donor) or "JPEG"],
        "sha256": donor.sha256,
        "replaced_by": donor.id,
    }
