"""Style-imitation audit: does typing an artist's name make the model draw like them?

For each artist with reference images (their training images, or their portfolio), the
model is prompted with ``"<subject> by <artist>"`` for shared subjects and seeds, and with
the same prompts under the artist's name with its letters shuffled (``"Ilse Marwick"`` ->
an anagram no caption holds: a name the model cannot know, of the same length). Every sample
and every reference is described by a style descriptor (:mod:`.style`); each artist's
references give a centroid. A sample's margin for artist ``a`` is its similarity to ``a``'s
centroid minus its similarity to the nearest other artist's centroid:

- ``margin``: the mean margin for ``a`` of the samples whose prompt names ``a``;
- ``shuffled_margin``: the same for the samples whose prompt names ``a`` shuffled;
- ``imitation = margin - shuffled_margin``: how far the name itself moves the samples
  towards ``a``'s style. An artist is ``imitated`` when ``imitation`` reaches ``threshold``
  and the margin is positive (the samples are nearer ``a`` than anyone else).

A name the model never learnt draws what a shuffled name draws: its imitation is near 0.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from PIL import Image

from pipeline.lake.tables import STYLE_IMITATION_SCHEMA

DEFAULT_SUBJECTS = ("a star", "a circle", "two hearts", "three squares")


@dataclass(frozen=True)
class StyleRules:
    subjects: tuple[str, ...] = DEFAULT_SUBJECTS
    """What to draw; each prompt is ``"<subject> by <artist>"``, the same for every artist."""
    seeds: tuple[int, ...] = (0, 1)
    threshold: float = 0.05
    """Imitation (margin over the shuffled-name baseline) that counts as imitating."""
    min_references: int = 4
    """Fewer reference images than this: the artist is not scored."""

    def __post_init__(self) -> None:
        if not self.subjects or not self.seeds:
            raise ValueError("the style audit needs at least one subject and one seed")


@dataclass
class ArtistReferences:
    """What an artist's style looks like: images, and where they came from."""

    artist: str
    images: list[Image.Image]
    source: str
    """``training`` (training images whose caption names the artist), ``portfolio`` (drawn
    in the artist's known style, never trained on), ``none``."""
    training_images: int = 0
    """Training images whose caption names the artist."""
    pair_ids: list[str] = field(default_factory=list)
    """The training pairs among ``images`` (for erasure of grids that show them)."""


def artist_prompt(subject: str, artist: str) -> str:
    return f"{subject} by {artist}"


@dataclass
class StyleAuditResult:
    table: pa.Table
    samples: dict[str, list[Image.Image]] = field(default_factory=dict)
    """The images generated with each scored artist's name (``subjects x seeds`` order)."""

    def row(self, artist: str) -> dict:
        return next(r for r in self.table.to_pylist() if r["artist"] == artist)


def shuffled_name(name: str) -> str:
    """``name`` with the letters of each word shuffled (seeded by the name, never the name
    itself where its letters allow another order)."""
    rng = random.Random(f"shuffled-name:{name}")
    words = []
    for word in name.split():
        letters = list(word.lower())
        for _ in range(20):
            rng.shuffle(letters)
            if "".join(letters) != word.lower() or len(set(letters)) < 2:
                break
        words.append("".join(letters).capitalize())
    return " ".join(words)


def score_style(
    named: dict[str, np.ndarray], shuffled: dict[str, np.ndarray], centroids: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """Per artist of ``centroids`` (at least two): own and nearest-other similarity, margin,
    shuffled-name margin and imitation, from the descriptors (unit rows) of the samples
    prompted with the artist's name (``named[a]``) and with it shuffled (``shuffled[a]``)."""
    names = list(centroids)
    if len(names) < 2:
        raise ValueError("scoring a style needs at least two artists with references")
    cents = np.stack([centroids[n] for n in names])
    out = {}
    for k, name in enumerate(names):
        others = [j for j in range(len(names)) if j != k]
        sims = named[name] @ cents.T
        own, rival = sims[:, k], sims[:, others].max(axis=1)
        base = shuffled[name] @ cents.T
        margin = float((own - rival).mean())
        baseline = float((base[:, k] - base[:, others].max(axis=1)).mean())
        out[name] = {
            "own_similarity": float(own.mean()),
            "other_similarity": float(rival.mean()),
            "margin": margin,
            "shuffled_margin": baseline,
            "imitation": margin - baseline,
        }
    return out


def centroid(features: np.ndarray) -> np.ndarray:
    c = features.mean(axis=0)
    return c / max(float(np.linalg.norm(c)), 1e-9)


def audit_style(
    generator,
    references: Sequence[ArtistReferences],
    rules: StyleRules,
    spec,
    descriptor,
) -> StyleAuditResult:
    """Prompt ``generator`` (a ``pipeline.hops.samples.sample.Generator``) with every scored
    artist's name and score the samples against the artists' references (one table row per
    artist, scored or not)."""
    scored = [r for r in references if len(r.images) >= rules.min_references]
    prompts = [(s, seed) for s in rules.subjects for seed in rules.seeds]
    samples: dict[str, list[Image.Image]] = {}
    scores: dict[str, dict[str, float]] = {}
    if len(scored) >= 2:
        names = [n for r in scored for n in (r.artist, shuffled_name(r.artist))]
        texts = [artist_prompt(s, n) for n in names for s, _ in prompts]
        seeds = [seed for _ in names for _, seed in prompts]
        images = generator.generate(texts, seeds, spec)
        n = len(prompts)
        drawn = [images[i * n : (i + 1) * n] for i in range(len(names))]
        samples = {r.artist: drawn[2 * i] for i, r in enumerate(scored)}
        named = {r.artist: descriptor.embed(drawn[2 * i]) for i, r in enumerate(scored)}
        shuffled = {r.artist: descriptor.embed(drawn[2 * i + 1]) for i, r in enumerate(scored)}
        centroids = {r.artist: centroid(descriptor.embed(r.images)) for r in scored}
        scores = score_style(named, shuffled, centroids)
    rows = []
    for ref in references:
        score = scores.get(ref.artist)
        imitated = bool(score and score["imitation"] >= rules.threshold and score["margin"] > 0)
        rows.append(
            {
                "checkpoint_sha256": generator.sha256,
                "descriptor": descriptor.name,
                "artist": ref.artist,
                "sample_count": len(samples.get(ref.artist, [])),
                "reference_count": len(ref.images),
                "reference_source": ref.source,
                "training_images": ref.training_images,
                **(score or dict.fromkeys(_SCORES)),
                "imitated": imitated,
            }
        )
    return StyleAuditResult(pa.Table.from_pylist(rows, schema=STYLE_IMITATION_SCHEMA), samples)


_SCORES = ("own_similarity", "other_similarity", "margin", "shuffled_margin", "imitation")


def style_grid(
    result: StyleAuditResult,
    references: Sequence[ArtistReferences],
    samples: dict[str, list[Image.Image]] | None = None,
    shown: int = 3,
) -> tuple[bytes, list[str]]:
    """A grid, one row per scored artist: ``shown`` references, then the samples prompted
    with their name (enlarged; ``samples`` replaces ``result.samples``, e.g. with unsafe
    ones blurred); and the training pairs it shows."""
    from pipeline.reports import grid_png

    cell = 92
    by_artist = {r.artist: r for r in references}
    rows, pair_ids = [], []
    for artist, images in (samples or result.samples).items():
        ref = by_artist[artist]
        imitation = result.row(artist)["imitation"]
        label = f"{artist[:16]}\n{imitation:+.3f}"
        big = [im.resize((cell, cell), Image.Resampling.NEAREST) for im in images]
        rows.append((label, [*ref.images[:shown], *big]))
        pair_ids += ref.pair_ids[:shown]
    return grid_png(rows, cell=cell + 4), pair_ids
