"""Read the ``IMG@/src`` links of WAT pages: by a byte scan of many pages at once, or one by one.

A WAT page's ``Links`` array holds every link of the page (usually ten times more anchors,
scripts and stylesheets than images). Walking it makes a Python object per link. The scan
instead reads the JSON bytes of a whole batch of pages, which simdjson has already validated,
in one compiled pass (numba, cached on disk; libc's ``memchr`` jumps from one ``{`` to the
next):

- Quotes inside JSON strings are escaped, so the bytes ``{"path":"`` can only open an object
  whose first key is ``path``, and ``{"path":"IMG@/src"`` only an image link. Their
  positions give every image link, and the openings before it on its page give its index.
- A page is read only when its count of openings equals the parsed array's length, it has a
  single ``"Links":[``, and no escape could spell ``IMG@/src``; :func:`scan_image_links`
  returns the others as ``rejected``, for :func:`walk_image_links`.
- ``url`` and ``alt`` are cut from the bytes where written plainly (Common Crawl's ``path,
  url[, alt, ...]`` order, no escapes); any other layout is decoded with :mod:`json`.

Both ways give the same rows (``tests/test_wat_links.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import pyarrow as pa
import simdjson

from pipeline.hops.wat.url_join import replace_rows

HTML_POINTER = "/Envelope/Payload-Metadata/HTTP-Response-Metadata/HTML-Metadata"
LINKS_POINTER = HTML_POINTER + "/Links"
LINKS_KEY = b'"Links":['
LINK_OPEN = b'{"path":"'
IMG_OPEN = b'{"path":"IMG@/src"'

ImageLink = tuple[int, str, "str | None"]
"""``(link_index, url_raw, alt)``; ``alt`` is None when the tag had no alt attribute."""


@dataclass(frozen=True)
class LinksRegion:
    """A page's payload, where its ``Links`` JSON starts, and the parsed array's length."""

    payload: bytes
    start: int
    """Offset of ``"Links":[``."""
    n_links: int


def links_region(payload: bytes, links: simdjson.Array) -> LinksRegion | None:
    """The page's :class:`LinksRegion`, or None when its JSON has no ``"Links":[`` (walk it)."""
    start = payload.find(LINKS_KEY)
    return None if start < 0 else LinksRegion(payload, start, len(links))


def plain_value(value: Any) -> Any:
    """A lazy simdjson value as plain Python (dict, list or scalar)."""
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value


def link_values(index: int, link: Any) -> ImageLink:
    """One image link's row from its parsed object (simdjson or plain dict)."""
    url_raw = link.get("url")
    alt = link.get("alt")
    if not (isinstance(alt, str) or alt is None):
        alt = str(plain_value(alt))
    return index, url_raw if isinstance(url_raw, str) else "", alt


def walk_image_links(links: Any) -> list[ImageLink]:
    """Every ``IMG@/src`` link of a parsed ``Links`` array, element by element."""
    return [
        link_values(index, link)
        for index, link in enumerate(links)
        if isinstance(link, simdjson.Object) and link.get("path") == "IMG@/src"
    ]


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Keep the first of duplicate keys, as simdjson's lookup does."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


_DECODER = json.JSONDecoder(object_pairs_hook=_first_wins)


@dataclass(frozen=True)
class ScannedLinks:
    """Image links of a batch of regions, in region then link order."""

    region: np.ndarray
    """Each row's index into the regions given to :func:`scan_image_links`."""
    link_index: np.ndarray
    url_raw: pa.Array
    alt: pa.Array
    rejected: list[int]
    """Regions the scan could not read (the caller walks them)."""


def _codes(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype=np.uint8)


_PATH = _codes(LINK_OPEN[1:])  # "path":"
_IMG = _codes(IMG_OPEN[9:17])  # IMG@/src
_URL = _codes(b',"url":"')
_ALT = _codes(b'","alt":')
_LINKS = _codes(LINKS_KEY[:8])  # "Links":
_IMG_AT = _codes(b"IMG@")
_PAD = 32
_QUOTE, _BACKSLASH, _BRACE, _BRACKET, _CLOSE = b'"\\{[}'
_NO_ALT, _ODD = -1, -1

_memchr = numba.types.ExternalFunction(  # libc's; pointers as integers
    "memchr", numba.types.intp(numba.types.intp, numba.types.intc, numba.types.intp)
)


@numba.njit(cache=True, nogil=True)
def _at(data: np.ndarray, at: int, word: np.ndarray) -> bool:
    """Whether ``word`` is written at ``at`` (a loop: numba compiles it to plain compares)."""
    for k in range(word.size):  # noqa: SIM110
        if data[at + k] != word[k]:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _string_end(data: np.ndarray, start: int, stop: int) -> int:
    """The closing quote of a JSON string starting at ``start``; -1 if it has an escape."""
    for i in range(start, stop):
        if data[i] == _QUOTE:
            return i
        if data[i] == _BACKSLASH:
            return -1
    return -1


@numba.njit(cache=True, nogil=True)
def _escape_spells_image(data: np.ndarray, at: int) -> bool:
    """A backslash at ``at`` that could spell ``IMG@/src``: ``\\u00XX`` of printable ASCII,
    or ``\\/`` after ``IMG@``."""
    hex_digit = data[at + 5]
    return (
        data[at + 1] == 117  # u
        and data[at + 2] == 48
        and data[at + 3] == 48
        and 50 <= data[at + 4] <= 55
        and (48 <= hex_digit <= 57 or 65 <= hex_digit <= 70 or 97 <= hex_digit <= 102)
    ) or (at >= 4 and _at(data, at - 4, _IMG_AT))


@numba.njit(cache=True, nogil=True)
def _cut_url_alt(data: np.ndarray, opening: int, stop: int, row: np.ndarray) -> None:
    """Fill ``row`` with the opening and the url and alt spans of the image link object that
    opens at ``opening``, when written as ``{"path":"IMG@/src","url":"U"}`` or ``...,"url":"U",
    "alt":"A"...`` without escapes; else url end :data:`_ODD` (decode the object)."""
    url_start = opening + len(IMG_OPEN) + len(_URL)
    row[0], row[3], row[4], row[5], row[6] = opening, url_start, _ODD, _NO_ALT, _NO_ALT
    if not _at(data, opening + len(IMG_OPEN), _URL):
        return
    url_end = _string_end(data, url_start, stop)
    if url_end < 0:
        return
    if _at(data, url_end, _ALT) and data[url_end + len(_ALT)] == _QUOTE:
        alt_end = _string_end(data, url_end + len(_ALT) + 1, stop)
        if alt_end >= 0:
            row[4], row[5], row[6] = url_end, url_end + len(_ALT) + 1, alt_end
    elif data[url_end + 1] == _CLOSE:
        row[4] = url_end


@numba.njit(cache=True, nogil=True)
def _next(data: np.ndarray, byte: int, start: int, stop: int) -> int:
    """Where ``byte`` is next in ``data[start:stop]`` (``stop`` if nowhere), by libc's
    ``memchr``."""
    if start >= stop:
        return stop
    base = data.ctypes.data
    found = _memchr(base + start, byte, stop - start)
    return stop if found == 0 else found - base


@numba.njit(cache=True, nogil=True)
def _readable_escapes_and_keys(data: np.ndarray, lo: int, hi: int) -> bool:
    """No escape in ``data[lo:hi]`` could spell ``IMG@/src``, and no second ``"Links":[``
    follows the region's first (at ``lo``)."""
    i = _next(data, _BACKSLASH, lo, hi)
    while i < hi:
        if _escape_spells_image(data, i):
            return False
        i = _next(data, _BACKSLASH, i + 1, hi)
    i = _next(data, _BRACKET, lo + len(LINKS_KEY), hi)
    while i < hi:
        if _at(data, i - len(_LINKS), _LINKS):
            return False
        i = _next(data, _BRACKET, i + 1, hi)
    return True


@numba.njit(cache=True, nogil=True)
def _scan(
    data: np.ndarray, region_start: np.ndarray, n_links: np.ndarray, out: np.ndarray
) -> tuple[int, np.ndarray]:
    """The image links of the joined regions, each a row of ``out`` (opening, region, link
    index, url start and end, alt start and end; url end :data:`_ODD` when not plainly
    written, alt start :data:`_NO_ALT` when absent), with ``memchr`` jumping from one ``{``
    to the next. Returns the number of rows and which regions are readable."""
    n_regions = n_links.size
    readable = np.ones(n_regions, dtype=np.bool_)
    found = 0
    for region in range(n_regions):
        lo, hi = region_start[region], region_start[region + 1]
        first, opened = found, 0
        ok = _readable_escapes_and_keys(data, lo, hi)
        i = _next(data, _BRACE, lo, hi) if ok else hi
        while i < hi:
            if _at(data, i + 1, _PATH):
                opened += 1
                if opened > n_links[region]:
                    ok = False
                    break
                if _at(data, i + 9, _IMG) and data[i + 17] == _QUOTE:
                    _cut_url_alt(data, i, hi, out[found])
                    out[found, 1], out[found, 2] = region, opened - 1
                    found += 1
            i = _next(data, _BRACE, i + 1, hi)
        if not ok or opened != n_links[region]:
            readable[region] = False
            found = first
    return found, readable


def _strings(buf: bytes, start: np.ndarray, end: np.ndarray, valid: np.ndarray) -> pa.Array:
    """A string array of ``buf[start[i]:end[i]]`` (null where not ``valid``).

    The valid spans are ascending and disjoint, so they and the gaps between them are the
    values of one binary array over ``buf`` itself; taking every other value copies just the
    spans, in C++.
    """
    if not len(start):
        return pa.array([], pa.string())
    reached = np.maximum.accumulate(np.where(valid, end, 0))
    offsets = np.empty(2 * len(start), dtype=np.int32)
    offsets[0::2] = np.where(valid, start, reached)
    offsets[1::2] = np.where(valid, end, reached)
    spans = pa.Array.from_buffers(  # strings: JSON that simdjson validated, cut at quotes
        pa.string(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(buf)]
    )
    strings = spans.take(pa.array(np.arange(0, len(offsets), 2)))
    if valid.all():
        return strings
    validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.string(), len(strings), [validity, *strings.buffers()[1:]])


def _object_end(buf: bytes, opening: int, region_end: int) -> int:
    """Where a link object that opens at ``opening`` ends at the latest: the next link's
    opening, or its region's end."""
    following = buf.find(LINK_OPEN, opening + 1)
    return region_end if following < 0 else min(following, region_end)


def scan_image_links(regions: list[LinksRegion]) -> ScannedLinks:
    """The image links of many pages' ``Links`` JSON, read from the bytes in one pass.

    A region is read only when the count of ``{"path":"`` in it equals the parsed array's
    length, it holds no second ``"Links":[``, and no escape could spell ``IMG@/src``
    (``\\u00XX`` of printable ASCII, or ``\\/`` after ``IMG@``); others are ``rejected``.
    """
    buf = b"".join([memoryview(r.payload)[r.start :] for r in regions] + [b"\0" * _PAD])
    region_start = np.cumsum([0] + [len(r.payload) - r.start for r in regions])
    n_links = np.array([r.n_links for r in regions], dtype=np.int64)
    rows = np.empty((int(n_links.sum()), 7), dtype=np.int64)
    found, readable = _scan(np.frombuffer(buf, dtype=np.uint8), region_start, n_links, rows)
    position, region, link_index, url_start, url_end, alt_start, alt_end = rows[:found].T
    plain = url_end != _ODD
    has_alt = alt_start != _NO_ALT
    url_raw = _strings(buf, url_start, url_end, plain)
    alt = _strings(buf, alt_start, alt_end, has_alt)
    odd = np.flatnonzero(~plain)
    if len(odd):  # any other layout: decode the object, which ends before the next link
        decoded = [
            link_values(0, _DECODER.raw_decode(buf[i : _object_end(buf, i, stop)].decode())[0])
            for i, stop in zip(
                position[odd].tolist(), region_start[region[odd] + 1].tolist(), strict=True
            )
        ]
        url_raw = replace_rows(url_raw, odd, pa.array([d[1] for d in decoded], pa.string()))
        alt = replace_rows(alt, odd, pa.array([d[2] for d in decoded], pa.string()))
    return ScannedLinks(
        region=region,
        link_index=link_index,
        url_raw=url_raw,
        alt=alt,
        rejected=np.flatnonzero(~readable).tolist(),
    )
