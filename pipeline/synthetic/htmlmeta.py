"""Extract a WAT `HTML-Metadata` object (Head + Links) from an HTML document.

Follows Common Crawl's WAT extractor: attribute values are entity-decoded once and
otherwise kept as written (relative URLs stay relative); `alt` is present only when the tag
has the attribute ("" for `alt=""` and bare `alt`); an `<a>` is listed when it closes, with
its collapsed text, so images nested in a link come first.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

_EXTRA = {
    "a": ("title", "target", "rel"),
    "img": ("alt", "title"),
    "link": ("rel", "type", "title", "hreflang", "media"),
    "script": ("type",),
    "form": ("method",),
    "iframe": ("title",),
}
_URL_ATTR = {
    "a": "href",
    "img": "src",
    "link": "href",
    "script": "src",
    "form": "action",
    "iframe": "src",
}


def _collapse(text: str) -> str:
    return " ".join(text.split())


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.head: dict[str, Any] = {}
        self.links: list[dict[str, str]] = []
        self.in_body = False
        self.title: list[str] | None = None
        self.anchors: list[tuple[dict[str, str], list[str]]] = []

    def _entry(self, tag: str, attrs: dict[str, str | None]) -> dict[str, str] | None:
        url = attrs.get(_URL_ATTR[tag])
        if url is None:
            return None
        entry = {"path": f"{tag.upper()}@/{_URL_ATTR[tag]}", "url": url}
        for name in _EXTRA[tag]:
            if name in attrs:
                entry[name] = attrs[name] or ""
        return entry

    def handle_starttag(self, tag: str, attr_list: list[tuple[str, str | None]]) -> None:
        attrs: dict[str, str | None] = {}
        for name, value in attr_list:
            attrs.setdefault(name, value)
        if tag == "body":
            self.in_body = True
        elif tag == "title" and "Title" not in self.head:
            self.title = []
        elif tag == "meta":
            self.head.setdefault("Metas", []).append({k: v or "" for k, v in attrs.items()})
        elif tag == "base" and attrs.get("href") is not None and "Base" not in self.head:
            self.head["Base"] = attrs["href"]
        elif tag == "a":
            entry = self._entry(tag, attrs)
            if entry is not None:
                self.anchors.append((entry, []))
        elif tag in _URL_ATTR:
            entry = self._entry(tag, attrs)
            if entry is None:
                return
            if tag == "link":
                self.head.setdefault("Link", []).append(entry)
            elif tag == "script" and not self.in_body:
                self.head.setdefault("Scripts", []).append(entry)
            else:
                self.links.append(entry)

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self.in_body = True
        elif tag == "title" and self.title is not None:
            self.head["Title"] = _collapse("".join(self.title))
            self.title = None
        elif tag == "a" and self.anchors:
            entry, text = self.anchors.pop()
            collapsed = _collapse("".join(text))
            if collapsed:
                entry["text"] = collapsed
            self.links.append(entry)

    def handle_data(self, data: str) -> None:
        if self.title is not None:
            self.title.append(data)
        for _, text in self.anchors:
            text.append(data)

    def result(self) -> dict[str, Any]:
        while self.anchors:
            self.handle_endtag("a")
        out: dict[str, Any] = {}
        if self.head:
            out["Head"] = self.head
        if self.links:
            out["Links"] = self.links
        return out


def html_metadata(html: str) -> dict[str, Any]:
    """The `HTML-Metadata` object of a WAT response record."""
    parser = _Extractor()
    parser.feed(html)
    parser.close()
    return parser.result()
