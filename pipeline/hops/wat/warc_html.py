"""Read the image links of a WARC ``response`` record of HTML, as Common Crawl's WAT does.

For people's own crawls (wget, browsertrix, Common Crawl WARC files): the HTTP message is
split from the block (chunked transfer and gzip/deflate content decoded), the entity is
decoded by the charset of the HTTP ``Content-Type``, else of ``<meta charset>`` or
``http-equiv``, else as detected (charset-normalizer), and parsed by a real HTML5 parser
(selectolax's lexbor). Following the WAT generator, the page's ``Links`` are numbered in
document order: ``IMG@/src``, ``SCRIPT@/src`` outside ``<head>``, ``FORM@/action`` and
``IFRAME@/src`` where they open, ``A@/href`` where it closes (so images inside a link come
first). Only ``IMG`` ``src`` is an image link (not ``srcset`` or ``data-src``); ``alt`` is
the entity-decoded attribute ("" when bare, None when absent); the base is the first
``<base href>``; robots is every ``<meta name=robots>`` content, comma-joined.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from charset_normalizer import from_bytes
from selectolax.lexbor import LexborHTMLParser, LexborNode

ImageLink = tuple[int, str, "str | None"]
"""``(link_index, url_raw, alt)``."""

_CHARSET = re.compile(rb"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.I)
_LISTED_AT_OPEN = {"img": "src", "form": "action", "iframe": "src"}
_SNIFF_BYTES = 4096


@dataclass(frozen=True)
class HtmlPage:
    """What hop 1 reads of one HTML page."""

    base: str | None
    robots: str | None
    images: list[ImageLink]


def http_message(block: bytes) -> tuple[dict[str, str], bytes] | str:
    """The HTTP response headers (names lower-case, first wins) and the decoded entity, or an
    error reason."""
    head, sep, entity = block.partition(b"\r\n\r\n")
    if not sep:
        head, sep, entity = block.partition(b"\n\n")
    if not sep or not head.startswith(b"HTTP/"):
        return "bad_http_message"
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").splitlines()[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers.setdefault(name.strip().lower(), value.strip())
    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            entity = _dechunk(entity)
        coding = headers.get("content-encoding", "").lower().strip()
        if coding in ("gzip", "x-gzip", "deflate"):
            entity = zlib.decompressobj(47 if coding != "deflate" else 15).decompress(entity)
        elif coding not in ("", "identity"):
            return "unsupported_encoding"
    except (ValueError, zlib.error):
        return "bad_http_message"
    return headers, entity


def _dechunk(data: bytes) -> bytes:
    """The body of a chunked transfer (a missing last chunk is tolerated)."""
    out, pos = [], 0
    while pos < len(data):
        eol = data.find(b"\n", pos)
        size = int(data[pos : eol if eol >= 0 else len(data)].split(b";")[0].strip() or b"0", 16)
        if size == 0 or eol < 0:
            break
        out.append(data[eol + 1 : eol + 1 + size])
        pos = eol + 1 + size + 2
    return b"".join(out)


def is_html(headers: dict[str, str]) -> bool:
    return "html" in headers.get("content-type", "").lower()


def decode_html(entity: bytes, content_type: str) -> str:
    """The entity as text: HTTP charset, then the document's own, then detection."""
    declared = _CHARSET.search(content_type.encode("latin-1", "replace"))
    if declared is None:
        declared = re.search(rb"<meta[^>]*?" + _CHARSET.pattern, entity[:_SNIFF_BYTES], re.I)
    names = [declared[1].decode("ascii")] if declared else []
    if not names:
        best = from_bytes(entity[: _SNIFF_BYTES * 16]).best()
        names = [best.encoding] if best is not None else []
    for name in [*names, "utf-8"]:
        try:
            return entity.decode(name, "replace")
        except LookupError:
            continue
    return entity.decode("utf-8", "replace")


def _in_head(node: LexborNode) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag == "head":
            return True
        parent = parent.parent
    return False


def read_html(text: str) -> HtmlPage:
    """The base, robots and numbered image links of one HTML document."""
    tree = LexborHTMLParser(text)
    base: str | None = None
    robots: list[str] = []
    images: list[ImageLink] = []
    index = 0
    root = tree.root
    stack: list[tuple[LexborNode, bool]] = [(root, False)] if root is not None else []
    while stack:  # depth first, each element entered then left after its children
        node, leaving = stack.pop()
        tag, attrs = node.tag, node.attributes
        if leaving:  # only anchors are pushed to be left
            index += 1
            continue
        if tag == "a" and attrs.get("href") is not None:
            stack.append((node, True))
        elif tag in _LISTED_AT_OPEN and attrs.get(_LISTED_AT_OPEN[tag]) is not None:
            if tag == "img":
                alt = attrs.get("alt", False)
                images.append((index, attrs["src"] or "", None if alt is False else alt or ""))
            index += 1
        elif tag == "script" and attrs.get("src") is not None and not _in_head(node):
            index += 1
        elif tag == "base" and base is None and attrs.get("href") is not None:
            base = attrs["href"]
        elif tag == "meta" and (attrs.get("name") or "").lower() == "robots":
            robots.append(attrs.get("content") or "")
        children = []
        child = node.child
        while child is not None:
            if child.tag and not child.tag.startswith(("-", "!", "_")):
                children.append((child, False))
            child = child.next
        stack.extend(reversed(children))
    return HtmlPage(base, ", ".join(robots) if robots else None, images)
