"""Keys that join every hop: ``url_id`` (an image URL), ``pair_id`` (a URL with its alt)."""

from __future__ import annotations

from hashlib import blake2b

import pyarrow as pa
import pyarrow.compute as pc

_MISSING_ALT = "\x01<no alt attribute>"


def url_id(normalized_url: str) -> str:
    """Hash of the normalized absolute image URL (16 hex characters)."""
    return blake2b(normalized_url.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def pair_id(url: str, alt: str | None) -> str:
    """Hash of (resolved URL, raw alt text); a missing alt differs from an empty one."""
    key = f"{url}\x00{_MISSING_ALT if alt is None else alt}"
    return blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def pair_ids(urls: pa.Array, alts: pa.Array) -> pa.Array:
    """:func:`pair_id` of every (url, alt) row of two string arrays (a null alt is missing)."""
    keys = pc.binary_join_element_wise(urls, pc.fill_null(alts, _MISSING_ALT), "\x00")
    fresh = blake2b(digest_size=8).copy  # copying a fresh hash is cheaper than making one
    digests: list[str] = []
    for key in keys.cast(pa.binary()).to_pylist():
        hashed = fresh()
        hashed.update(key)
        digests.append(hashed.hexdigest())
    return pa.array(digests, pa.string())
