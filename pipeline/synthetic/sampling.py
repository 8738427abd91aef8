"""Deterministic draws that guarantee every kind shows up, even in tiny webs."""

from __future__ import annotations

import random
from collections.abc import Sequence


def rng_for(seed: int, *parts: object) -> random.Random:
    """An independent generator per component (string seeds hash stably across runs)."""
    return random.Random(":".join([str(seed), *map(str, parts)]))


def quotas(weights: Sequence[tuple[str, float]], size: int) -> list[str]:
    """`size` kinds in proportion to weights, each kind at least once (largest remainder)."""
    kinds = [k for k, w in weights if w > 0]
    total = sum(w for _, w in weights if w > 0)
    exact = [(k, w / total * size) for k, w in weights if w > 0]
    counts = {k: max(1, int(x)) for k, x in exact}
    order = sorted(exact, key=lambda kx: kx[1] - int(kx[1]), reverse=True)
    i = 0
    while sum(counts.values()) < size:
        counts[order[i % len(order)][0]] += 1
        i += 1
    return [k for k in kinds for _ in range(counts[k])]


class Deck:
    """Draws kinds in shuffled blocks; every block holds each kind at least once."""

    def __init__(
        self, weights: Sequence[tuple[str, float]], rng: random.Random, block: int = 100
    ) -> None:
        self._weights = list(weights)
        self._rng = rng
        self._block = max(block, len(self._weights))
        self._cards: list[str] = []

    def draw(self) -> str:
        """The next kind."""
        if not self._cards:
            self._cards = quotas(self._weights, self._block)
            self._rng.shuffle(self._cards)
        return self._cards.pop()


def share_deck(share: float, rng: random.Random, block: int = 100) -> Deck:
    """A yes/no deck that says "yes" about `share` of the time (at least once per block)."""
    return Deck([("yes", share), ("no", 1.0 - share)], rng, block)


def pick_counts(n: int, shares: Sequence[tuple[str, float]]) -> dict[str, int]:
    """How many of `n` items get each kind: round(share * n), at least 1 while items last."""
    out: dict[str, int] = {}
    left = n
    for kind, share in shares:
        k = min(left, max(1, round(share * n))) if share > 0 else 0
        out[kind] = k
        left -= k
    return out
