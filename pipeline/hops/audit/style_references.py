"""Reference images of each artist for the style-imitation audit.

An artist's training images are those whose caption names them (whole words, any case: the
way Baio and Willison searched LAION's captions for artists). An artist of the synthetic
web's roster with fewer than ``min_references`` of them (one the model never saw by name)
is referred to by their portfolio instead: drawings in their known style under seeds of
their own, never part of the web or the training set. Anyone else without enough training
images is listed unscored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pipeline.datasheet.terms import term_pattern
from pipeline.hops.audit.style_imitation import ArtistReferences

PORTFOLIO_TAG = "style-portfolio"
PORTFOLIO_SIZE = 16
"""Drawings that stand for a roster artist the checkpoint was not trained on by name."""


def credited(examples: Sequence, artists: Sequence[str]) -> dict[str, list]:
    """Per artist, the training examples (``.caption``, ``.image``, ``.pair_id``) whose
    caption names them."""
    patterns = {a: re.compile(term_pattern(a)) for a in artists}
    return {a: [e for e in examples if p.search(e.caption)] for a, p in patterns.items()}


def portfolio(artist: str, n: int, tag: str = PORTFOLIO_TAG) -> list:
    """``n`` drawings in a synthetic roster artist's style ([] for anyone else)."""
    from pipeline.synthetic.artists import BY_NAME, artist_visual
    from pipeline.synthetic.draw import render

    known = BY_NAME.get(artist)
    return [render(artist_visual(known, tag, i)) for i in range(n)] if known else []


def artist_references(
    examples: Sequence,
    artists: Sequence[str],
    min_references: int,
    portfolio_size: int = PORTFOLIO_SIZE,
) -> list[ArtistReferences]:
    """One :class:`ArtistReferences` per artist, in order."""
    found = credited(examples, artists)
    out = []
    for artist in artists:
        trained = found[artist]
        if len(trained) >= min_references:
            images = [e.image for e in trained]
            pair_ids = [e.pair_id for e in trained]
            out.append(ArtistReferences(artist, images, "training", len(trained), pair_ids))
            continue
        drawn = portfolio(artist, portfolio_size)
        source = "portfolio" if drawn else "none"
        out.append(ArtistReferences(artist, drawn, source, len(trained)))
    return out
