"""Keys that join every hop: ``url_id`` (an image URL), ``pair_id`` (a URL with its alt)."""

from __future__ import annotations

from hashlib import blake2b

_MISSING_ALT = "\x01<no alt attribute>"


def url_id(normalized_url: str) -> str:
    """Hash of the normalized absolute image URL (16 hex characters)."""
    return blake2b(normalized_url.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def pair_id(url: str, alt: str | None) -> str:
    """Hash of (resolved URL, raw alt text); a missing alt differs from an empty one."""
    key = f"{url}\x00{_MISSING_ALT if alt is None else alt}"
    return blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
