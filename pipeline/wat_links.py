"""Read the ``IMG@/src`` links of WAT pages: by a byte scan of many pages at once, or one by one.

A WAT page's ``Links`` array holds every link of the page (usually ten times more anchors,
scripts and stylesheets than images). Walking it makes a Python object per link. The scan
instead works with numpy on the JSON bytes of a whole batch of pages, which simdjson has
already validated:

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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import simdjson

from pipeline.url_join import replace_rows

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


def _word(raw: bytes) -> int:
    """Eight bytes as the little-endian integer that :func:`scan_image_links` compares."""
    return int.from_bytes(raw, "little")


_PATH_WORD = _word(LINK_OPEN[1:])  # "path":"
_IMG_WORD = _word(IMG_OPEN[9:17])  # IMG@/src
_URL_WORD = _word(b',"url":"')
_ALT_WORD = _word(b'","alt":')
_LINKS_WORD = _word(LINKS_KEY[:8])  # "Links":
_IMG_AT_WORD = _word(b"IMG@")  # the low four bytes of a word
_PAD = 32


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
    spans = pa.Array.from_buffers(
        pa.binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(buf)]
    )
    strings = spans.take(pa.array(np.arange(0, len(offsets), 2))).cast(pa.string())
    return pc.if_else(pa.array(valid), strings, pa.scalar(None, pa.string()))


def scan_image_links(regions: list[LinksRegion]) -> ScannedLinks:
    """The image links of many pages' ``Links`` JSON, read from the bytes at once.

    A region is read only when the count of ``{"path":"`` in it equals the parsed array's
    length, it holds no second ``"Links":[``, and no escape could spell ``IMG@/src``
    (``\\u00XX`` of printable ASCII, or ``\\/`` after ``IMG@``); others are ``rejected``.
    """
    buf = b"".join([memoryview(r.payload)[r.start :] for r in regions] + [b"\0" * _PAD])
    data = np.frombuffer(buf, dtype=np.uint8)
    words = np.ndarray(shape=(len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
    region_start = np.cumsum([0] + [len(r.payload) - r.start for r in regions])

    def region_of(positions: np.ndarray) -> np.ndarray:
        return np.searchsorted(region_start, positions, side="right") - 1

    braces = np.flatnonzero(data == ord("{"))
    opens = braces[words[braces + 1] == _PATH_WORD]
    images = np.flatnonzero((words[opens + 9] == _IMG_WORD) & (data[opens + 17] == ord('"')))
    open_region = region_of(opens)
    n_opens = np.bincount(open_region, minlength=len(regions))
    readable = n_opens == np.array([r.n_links for r in regions], dtype=np.int64)
    brackets = np.flatnonzero(data == ord("["))
    brackets = brackets[brackets >= 8]
    brackets = brackets[words[brackets - 8] == _LINKS_WORD]
    readable[region_of(brackets[brackets != region_start[region_of(brackets)] + 8])] = False
    no_escapes = buf.find(b"\\") < 0  # a quick C scan; numpy finds them when there are any
    backslashes = np.empty(0, dtype=np.int64) if no_escapes else np.flatnonzero(data == 92)
    if len(backslashes):
        after = data[backslashes[:, None] + np.arange(1, 6)]
        escaped_ascii = (
            (after[:, 0] == ord("u"))
            & (after[:, 1] == ord("0"))
            & (after[:, 2] == ord("0"))
            & (after[:, 3] >= ord("2"))
            & (after[:, 3] <= ord("7"))
            & np.isin(after[:, 4], np.frombuffer(b"0123456789abcdefABCDEF", dtype=np.uint8))
        )
        slash_after_img = (backslashes >= 4) & (
            words[np.maximum(backslashes - 4, 0)] & 0xFFFFFFFF == _IMG_AT_WORD
        )
        readable[region_of(backslashes[escaped_ascii | slash_after_img])] = False
    images = images[readable[open_region[images]]]
    image_region = open_region[images]
    link_index = images - (np.cumsum(n_opens) - n_opens)[image_region]

    # Common Crawl's layout: {"path":"IMG@/src","url":"U"} or ...,"url":"U","alt":"A"...
    position = opens[images]
    url_start = position + len(IMG_OPEN) + 8
    find = buf.find
    url_end = np.array([find(b'"', i) for i in url_start.tolist()], dtype=np.int64)
    has_alt = (words[url_end] == _ALT_WORD) & (data[url_end + 8] == ord('"'))
    alt_start = url_end + 9
    alt_end = alt_start.copy()
    alt_end[has_alt] = [find(b'"', i) for i in alt_start[has_alt].tolist()]

    def escaped(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return np.searchsorted(backslashes, hi) > np.searchsorted(backslashes, lo)

    plain = (
        (words[position + len(IMG_OPEN)] == _URL_WORD)
        & (has_alt | (data[url_end + 1] == ord("}")))
        & ~escaped(url_start, url_end)
        & ~escaped(alt_start, alt_end)
    )
    url_raw = _strings(buf, url_start, url_end, plain)
    alt = _strings(buf, alt_start, alt_end, plain & has_alt)
    odd = np.flatnonzero(~plain)
    if len(odd):  # any other layout: decode the object, which ends before the next link
        object_end = np.minimum(
            np.append(opens, len(buf) - _PAD)[images[odd] + 1], region_start[image_region[odd] + 1]
        )
        decoded = [
            link_values(0, _DECODER.raw_decode(buf[i:j].decode())[0])
            for i, j in zip(position[odd].tolist(), object_end.tolist(), strict=True)
        ]
        url_raw = replace_rows(url_raw, odd, pa.array([d[1] for d in decoded], pa.string()))
        alt = replace_rows(alt, odd, pa.array([d[2] for d in decoded], pa.string()))
    return ScannedLinks(
        region=image_region,
        link_index=link_index,
        url_raw=url_raw,
        alt=alt,
        rejected=np.flatnonzero(~readable).tolist(),
    )
