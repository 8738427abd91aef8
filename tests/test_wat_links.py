"""Hop 1's byte scan of ``Links`` JSON gives the same image links as walking the parsed array,
on every layout: Common Crawl's, other key orders and escapes (read or rejected, never wrong)."""

from __future__ import annotations

import orjson
import pytest
import simdjson

from pipeline.hops.wat.links import (
    LINKS_POINTER,
    links_region,
    scan_image_links,
    walk_image_links,
)
from pipeline.hops.wat.records import extract_image_links
from tests.conftest import gzip_member, warc_record, wat_payload

CC_LINKS = (
    b'[{"path":"A@/href","url":"/a","text":"a"},'
    b'{"path":"IMG@/src","url":"img/x.png","alt":"a red circle"},'
    b'{"path":"IMG@/src","url":"/y.gif"},'
    b'{"path":"LINK@/href","url":"s.css","rel":"stylesheet"},'
    b'{"path":"IMG@/src","url":"//cdn.test/z.jpg","alt":"","title":"t"},'
    b'{"path":"IMG@/src","url":"../w.webp","alt":"caf\xc3\xa9 \xe2\x98\x95"}]'
)

ODD_LAYOUTS = {
    "title before alt": b'{"path":"IMG@/src","url":"a.png","title":"t","alt":"A"}',
    "alt before url": b'{"path":"IMG@/src","alt":"A","url":"a.png"}',
    "escaped quote in url": b'{"path":"IMG@/src","url":"a\\"b.png","alt":"A"}',
    "escaped slash in url": b'{"path":"IMG@/src","url":"a\\/b.png","alt":"A"}',
    "unicode escape in alt": b'{"path":"IMG@/src","url":"a.png","alt":"caf\\u00e9\\n"}',
    "null alt": b'{"path":"IMG@/src","url":"a.png","alt":null}',
    "number alt": b'{"path":"IMG@/src","url":"a.png","alt":5}',
    "object alt": b'{"path":"IMG@/src","url":"a.png","alt":{"k":[1,2]}}',
    "no url": b'{"path":"IMG@/src","alt":"A"}',
    "number url": b'{"path":"IMG@/src","url":7,"alt":"A"}',
    "duplicate alt": b'{"path":"IMG@/src","url":"a.png","alt":"first","alt":"second"}',
    "nested links": b'{"path":"IMG@/src","url":"a.png","x":{"path":"IMG@/src","url":"n"}}',
}
"""Each is put between two plain links; the scan decodes it or rejects the page."""

REJECTED = {
    "escaped slash in path": b'{"path":"IMG@\\/src","url":"a.png","alt":"A"}',
    "escaped key": b'{"p\\u0061th":"IMG@/src","url":"a.png","alt":"A"}',
    "escaped letter in path": b'{"path":"\\u0049MG@/src","url":"a.png","alt":"A"}',
    "path not first": b'{"url":"a.png","path":"IMG@/src","alt":"A"}',
    "spaces": b'{ "path": "IMG@/src", "url": "a.png" }',
    "non-object element": b'"IMG@/src"',
    "second Links key": b'{"path":"A@/href","url":"/","Links":[]}',
}
"""Layouts the scan must not read (it would miss or misplace a link): the page is walked."""


def payload_with_links(links_json: bytes, after_links: bytes = b"") -> bytes:
    """A WAT payload in Common Crawl's layout whose ``Links`` is exactly ``links_json``."""
    doc = wat_payload([{"path": "A@/href", "url": "/placeholder"}])
    placeholder = b'[{"path":"A@/href","url":"/placeholder"}]'
    assert placeholder in doc
    return doc.replace(placeholder, links_json + after_links)


def walked(payload: bytes) -> list[tuple[int, str, str | None]]:
    return walk_image_links(simdjson.Parser().parse(payload).at_pointer(LINKS_POINTER))


def scanned(payloads: list[bytes]) -> tuple[list[list[tuple]], list[int]]:
    regions = []
    for payload in payloads:
        region = links_region(payload, simdjson.Parser().parse(payload).at_pointer(LINKS_POINTER))
        assert region is not None
        regions.append(region)
    links = scan_image_links(regions)
    rows: list[list[tuple]] = [[] for _ in payloads]
    values = zip(
        links.region.tolist(),
        links.link_index.tolist(),
        links.url_raw.to_pylist(),
        links.alt.to_pylist(),
        strict=True,
    )
    for region, index, url, alt in values:
        rows[region].append((index, url, alt))
    return rows, links.rejected


def around(link: bytes) -> bytes:
    return (
        b'[{"path":"IMG@/src","url":"first.png","alt":"one"},'
        + link
        + b',{"path":"A@/href","url":"/x"},{"path":"IMG@/src","url":"last.png"}]'
    )


def test_common_crawl_layout_is_read_by_the_scan() -> None:
    payload = payload_with_links(CC_LINKS)
    rows, rejected = scanned([payload])
    assert rejected == []
    assert (
        rows[0]
        == walked(payload)
        == [
            (1, "img/x.png", "a red circle"),
            (2, "/y.gif", None),
            (4, "//cdn.test/z.jpg", ""),
            (5, "../w.webp", "café ☕"),
        ]
    )


@pytest.mark.parametrize("layout", sorted(ODD_LAYOUTS))
def test_other_layouts_give_the_walked_links(layout: str) -> None:
    """Each is read, with the walked links, except nested links: the inner ``{"path":"`` makes
    more openings than the array has elements, so that page is rejected (and walked)."""
    payload = payload_with_links(around(ODD_LAYOUTS[layout]))
    rows, rejected = scanned([payload])
    expected = walked(payload)
    assert len(expected) >= 2
    if layout == "nested links":
        assert rejected == [0] and rows[0] == []
    else:
        assert rejected == [] and rows[0] == expected


def test_decoded_values_match_simdjson() -> None:
    """The layouts the scan decodes itself (not rejected) give simdjson's values exactly."""
    for layout in ("title before alt", "alt before url", "escaped quote in url", "null alt"):
        payload = payload_with_links(around(ODD_LAYOUTS[layout]))
        rows, rejected = scanned([payload])
        assert rejected == [] and rows[0] == walked(payload), layout
    rows, _ = scanned([payload_with_links(around(ODD_LAYOUTS["duplicate alt"]))])
    assert rows[0][1] == (1, "a.png", "first")


@pytest.mark.parametrize("layout", sorted(REJECTED))
def test_layouts_that_could_hide_a_link_are_rejected(layout: str) -> None:
    payload = payload_with_links(around(REJECTED[layout]))
    _, rejected = scanned([payload])
    assert rejected == [0]


def test_links_after_the_array_reject_the_page() -> None:
    """A ``Head`` written after ``Links`` brings more ``{"path":"`` objects than the array has."""
    after = b',"Head":{"Link":[{"path":"LINK@/href","url":"s.css"}]}'
    payload = payload_with_links(CC_LINKS, after_links=after)
    doc = orjson.loads(payload)  # still valid JSON, with two Head keys
    assert doc["Envelope"]
    _, rejected = scanned([payload])
    assert rejected == [0]


@pytest.mark.parametrize("layout", sorted(REJECTED) + sorted(ODD_LAYOUTS))
def test_extraction_keeps_page_and_link_order_across_read_and_walked_pages(
    write_wat, layout: str
) -> None:
    """One batch mixing pages the scan reads and pages it rejects keeps file order."""
    odd = payload_with_links(around({**ODD_LAYOUTS, **REJECTED}[layout]))
    plain = payload_with_links(CC_LINKS)
    payloads = [plain, odd, plain, odd]
    members = [gzip_member(warc_record(p, record_id=str(i))) for i, p in enumerate(payloads)]
    table, stats = extract_image_links(write_wat(members))
    got = [(r["wat_record_id"], r["link_index"], r["url_raw"], r["alt"]) for r in table.to_pylist()]
    expected = [(f"<urn:uuid:{i}>", *link) for i, p in enumerate(payloads) for link in walked(p)]
    assert got == expected
    assert stats.image_links == table.num_rows and sum(stats.records_failed.values()) == 0


def test_real_common_crawl_page_is_read_by_the_scan() -> None:
    """The real 2023 sample's HTML page (Head, then Links) is admitted and equals the walk."""
    from pipeline.hops.wat.members import iter_members
    from tests.conftest import REAL_WAT

    payloads = []
    with open(REAL_WAT / "CC-MAIN-2023-06-excerpt.warc.wat.gz", "rb") as stream:
        for member in iter_members(stream):
            body = member.data.partition(b"\n\n")[2]  # this sample has LF-only headers
            if b'"Links":[' in body:
                payloads.append(body.strip())
    assert len(payloads) == 1
    rows, rejected = scanned(payloads)
    assert rejected == [] and len(rows[0]) == 27 and rows[0] == walked(payloads[0])
