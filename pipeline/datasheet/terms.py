"""Caption term groups and artist names the dataset report follows through every filter.

A group lists an unmarked term first and its marked variants after it ("wedding", "gay
wedding"); each term counts the captions that contain it as whole words (any case) and
contain no longer term of its group that holds it, so "wedding" counts the weddings that no
caption marks, and the group's terms never count a caption twice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

DEFAULT_TERM_GROUPS: dict[str, tuple[str, ...]] = {
    "wedding": ("wedding", "gay wedding", "lesbian wedding"),
    "professor": ("professor", "female professor", "male professor"),
    "nurse": ("nurse", "male nurse", "female nurse"),
    "doctor": ("doctor", "female doctor", "male doctor"),
    "engineer": ("engineer", "female engineer", "male engineer"),
    "ceo": ("ceo", "female ceo", "male ceo"),
}
"""Marked and unmarked pairs, and occupations with gendered words (Birhane et al.'s audits
of LAION name such pairs)."""


def term_pattern(term: str) -> str:
    """An RE2/Python regex matching ``term`` as whole words, any case, any whitespace."""
    words = [re.escape(w) for w in term.lower().split()]
    if not words:
        raise ValueError("an empty term")
    return r"(?i)\b" + r"\s+".join(words) + r"\b"


def exclusive_terms(groups: Mapping[str, Sequence[str]]) -> list[tuple[str, str, list[str]]]:
    """``(group, term, longer terms of the group that contain it)`` for every term, in order;
    a group named twice or a term twice in a group is an error."""
    out = []
    for group, terms in groups.items():
        lowered = [" ".join(t.lower().split()) for t in terms]
        if len(set(lowered)) != len(lowered):
            raise ValueError(f"term group {group!r} names a term twice: {list(terms)}")
        for term in lowered:
            inner = re.compile(term_pattern(term))
            longer = [o for o in lowered if o != term and inner.search(o)]
            out.append((group, term, longer))
    return out


def synthetic_artist_names() -> tuple[str, ...]:
    """Artist names the synthetic web's vocabulary defines (``vocab.ARTISTS``: names, or
    objects or mappings with a ``name``), or none while it defines none."""
    from pipeline.synthetic import vocab

    found = getattr(vocab, "ARTISTS", ())
    if isinstance(found, Mapping):
        found = list(found)
    names = []
    for item in found:
        name = item if isinstance(item, str) else getattr(item, "name", None)
        if isinstance(item, Mapping):
            name = item.get("name")
        if isinstance(name, str) and name.strip():
            names.append(name.strip())
    return tuple(dict.fromkeys(names))
