"""Hop 1 on WARC ``response`` records of HTML: the same links as the WAT of the same crawl."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.hops.wat.records import extract_image_links
from pipeline.hops.wat.warc_html import decode_html, read_html
from pipeline.synthetic.config import SyntheticWebConfig
from pipeline.synthetic.generate import generate_web
from pipeline.synthetic.gzmember import gzip_member
from pipeline.synthetic.warc import warc_record

KEY = ("page_url", "link_index", "url", "alt")


def rows(paths: list[Path]) -> set[tuple]:
    out: set[tuple] = set()
    for path in paths:
        table, stats = extract_image_links(str(path))
        assert stats.records_failed == {}
        out |= set(zip(*(table.column(c).to_pylist() for c in KEY), strict=True))
    return out


def test_warc_and_wat_of_a_synthetic_crawl_agree(tmp_path: Path) -> None:
    web = generate_web(
        tmp_path / "web", SyntheticWebConfig(wat_files_per_crawl=1, pages_per_crawl=20, sites=4)
    )
    crawl = web.crawl_ids[0]
    from_wat = rows(web.wat_files(crawl))
    from_warc = rows([web.root / p for p in web.paths["warc"][crawl]])
    assert len(from_wat) > 50
    assert from_warc ^ from_wat == set()  # zero disagreements


def test_links_are_numbered_and_read_as_the_wat_does() -> None:
    html = (
        '<html><head><base href="/first/"><base href="/second/">'
        '<script src="head.js"></script><meta name="ROBOTS" content="noai">'
        '<meta name="robots" content="noindex"></head><body>'
        '<a href="/x"><img src="a.png" alt="caf&eacute; &amp; co"></a>'
        '<script src="body.js"></script><img srcset="s.png 2x" data-src="d.png">'
        '<img src="b.png" alt><img src="c.png"></body></html>'
    )
    page = read_html(html)
    assert page.base == "/first/"
    assert page.robots == "noai, noindex"
    # 0 img a.png, 1 the anchor (listed when it closes), 2 body script, 3 b.png, 4 c.png
    assert page.images == [(0, "a.png", "café & co"), (3, "b.png", ""), (4, "c.png", None)]


@pytest.mark.parametrize(
    ("content_type", "body", "text"),
    [
        ("text/html; charset=iso-8859-1", "<p>café</p>".encode("latin-1"), "café"),
        ("text/html", b'<meta charset="windows-1252"><p>caf\xe9</p>', "café"),
        ("text/html", "<p>café, déjà vu, naïve</p>".encode(), "café, déjà vu"),
    ],
)
def test_charset_from_http_then_meta_then_detection(content_type, body, text) -> None:
    assert text in decode_html(body, content_type)


def test_response_record_lineage_and_faults(tmp_path: Path) -> None:
    def response(url: str, http: bytes) -> bytes:
        return warc_record(
            [
                ("WARC-Type", "response"),
                ("WARC-Target-URI", url),
                ("WARC-Record-ID", f"<urn:uuid:{url[-1]}>"),
                ("Content-Type", "application/http; msgtype=response"),
                ("Content-Length", str(len(http))),
            ],
            http,
        )

    page = b'<img src="i.png" alt="x">'
    good = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + page
    records = [
        gzip_member(response("http://s.test/1", good)),
        gzip_member(response("http://s.test/2", b"not http at all")),
        gzip_member(response("http://s.test/3", good)),
    ]
    path = tmp_path / "own-crawl.warc.gz"
    path.write_bytes(b"".join(records))
    table, stats = extract_image_links(str(path))
    assert dict(stats.records_failed) == {"bad_http_message": 1}
    got = table.select(["url", "warc_filename", "warc_offset", "wat_record_offset"]).to_pylist()
    offsets = [0, len(records[0]) + len(records[1])]
    assert got == [
        {
            "url": "http://s.test/i.png",
            "warc_filename": path.name,
            "warc_offset": o,
            "wat_record_offset": o,
        }
        for o in offsets
    ]


def test_a_block_with_a_warc_line_is_one_record_in_every_form(tmp_path: Path) -> None:
    """A page whose HTML has a line starting ``WARC/`` is cut at its Content-Length: the same
    one record whether its member holds it alone (told by the header) or the file is plain."""
    page = b'<pre>\r\nWARC/1.0\r\nWARC-Type: response\r\n</pre><img src="i.png" alt="x">'
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + page
    record = warc_record(
        [
            ("WARC-Type", "response"),
            ("WARC-Target-URI", "http://s.test/p"),
            ("WARC-Record-ID", "<urn:uuid:p>"),
            ("Content-Type", "application/http; msgtype=response"),
            ("Content-Length", str(len(http))),
        ],
        http,
    )
    found = []
    for name, data, records in (
        ("member.warc.gz", gzip_member(record), 1),
        ("plain.warc", record * 2, 2),
    ):
        (tmp_path / name).write_bytes(data)
        table, stats = extract_image_links(str(tmp_path / name))
        assert stats.records_failed == {} and stats.records_read == records
        found.append(table.column("url").to_pylist())
    assert found == [["http://s.test/i.png"], ["http://s.test/i.png"] * 2]
