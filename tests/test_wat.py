"""Hop 1: WAT extraction on real Common Crawl samples and on every malformed-input case."""

from __future__ import annotations

import io

import pytest

from pipeline.hops.wat.members import iter_members
from pipeline.hops.wat.records import WatOpenError, extract_image_links
from pipeline.lake.keys import pair_id
from pipeline.lake.tables import IMAGE_LINK_SCHEMA
from tests.conftest import REAL_WAT, gzip_member, warc_record, wat_payload

IMG = [
    {"path": "IMG@/src", "url": "img/a.png", "alt": "a red circle"},
    {"path": "A@/href", "url": "/about", "text": "about"},
    {"path": "IMG@/src", "url": "https://cdn.test/b.jpg"},
    {"path": "IMG@/src", "url": "/c.gif", "alt": ""},
]


def good(record_id: str = "1", **kwargs) -> bytes:
    return gzip_member(warc_record(wat_payload(IMG, **kwargs), record_id=record_id))


def test_real_2023_excerpt_lf_line_endings() -> None:
    """The 2023 excerpt is a real record re-saved with LF: 27 IMG@/src links, verified by hand."""
    table, stats = extract_image_links(str(REAL_WAT / "CC-MAIN-2023-06-excerpt.warc.wat.gz"), "CC")
    assert table.num_rows == 27
    assert stats.records_read == 1 and stats.records_with_html == 1
    assert sum(stats.records_failed.values()) == 0
    rows = table.to_pylist()
    first = rows[0]
    assert first["url_raw"] == "../1.gif"
    assert first["url"] == "http://19august93.nsarchive.ru/1.gif"
    assert first["alt"] is None
    assert first["page_url"] == "http://19august93.nsarchive.ru/songs/875.html"
    assert first["page_date"] == "2023-01-27T01:20:56Z"
    assert first["warc_filename"] == "CC-MAIN-20230127001911-20230127031911-00743.warc.gz"
    assert first["warc_offset"] == 92892
    assert first["wat_record_offset"] == 0
    assert first["wat_record_id"] == "<urn:uuid:cdcc0910-be89-483c-8767-31cd15a7631f>"
    assert first["warc_record_id"] == "<urn:uuid:e5e13db1-eed1-4c4d-923c-7992e0c0cda0>"
    urls = [r["url"] for r in rows]
    assert urls.count("http://19august93.nsarchive.ru/img/empty.gif") == 18
    assert urls.count("http://19august93.nsarchive.ru/img/target.gif") == 4
    assert urls[-2] == "http://19august93.nsarchive.ru/ev_img1/user_f1/18_1549_ico.jpg"
    assert all(r["alt"] is None for r in rows)
    assert first["pair_id"] == pair_id(first["url"], None)


def test_real_2024_request_only_has_no_links() -> None:
    """warcinfo + one request-metadata record (second member at byte 443): no links, no errors."""
    table, stats = extract_image_links(str(REAL_WAT / "CC-MAIN-2024-22-request-only.warc.wat.gz"))
    assert table.num_rows == 0
    assert stats.records_read == 2
    assert stats.metadata_records == 1
    assert stats.records_with_html == 0
    assert stats.bytes_read == 1361
    assert sum(stats.records_failed.values()) == 0


def test_columns_resolution_and_alt(write_wat) -> None:
    path = write_wat([good()])
    table, stats = extract_image_links(path, "SYN")
    assert table.schema == IMAGE_LINK_SCHEMA
    rows = table.to_pylist()
    assert [r["url"] for r in rows] == [
        "http://site.test/dir/img/a.png",
        "https://cdn.test/b.jpg",
        "http://site.test/c.gif",
    ]
    assert [r["alt"] for r in rows] == ["a red circle", None, ""]
    assert [r["link_index"] for r in rows] == [0, 2, 3]
    assert {r["crawl_id"] for r in rows} == {"SYN"}
    assert rows[0]["warc_offset"] == 1234
    assert stats.image_links == 3


def test_base_href_wins_over_page_url(write_wat) -> None:
    path = write_wat([good(base="https://static.test/assets/")])
    rows = extract_image_links(path)[0].to_pylist()
    assert rows[0]["url"] == "https://static.test/assets/img/a.png"
    assert rows[0]["base_url"] == "https://static.test/assets/"


def test_relative_base_href_resolves_against_page(write_wat) -> None:
    rows = extract_image_links(write_wat([good(base="/static/")]))[0].to_pylist()
    assert rows[0]["url"] == "http://site.test/static/img/a.png"


def test_robots_meta_is_carried(write_wat) -> None:
    metas = [{"name": "ROBOTS", "content": "noai, noimageai"}, {"name": "x", "content": "y"}]
    rows = extract_image_links(write_wat([good(metas=metas)]))[0].to_pylist()
    assert rows[0]["page_robots"] == "noai, noimageai"


@pytest.mark.parametrize(
    ("metas", "robots"),
    [
        (
            [{"name": "robots", "content": "noai"}, {"name": "Robots", "content": "noindex"}],
            "noai, noindex",
        ),
        ([{"name": "robots"}, {"name": "robots", "content": None}], ", "),
        (["robots", 7, None, [{"name": "robots"}], {"name": 7, "content": "x"}], None),
        ({"name": "robots", "content": "noai"}, None),  # an object, not a list: no metas
        ("robots", None),
        ([{"name": {"a": 1}, "content": "x"}, {"content": "noai"}], None),
    ],
)
def test_robots_from_odd_metas(write_wat, metas, robots) -> None:
    """Metas of any shape: only ``{"name": "robots" (any case), "content": str}`` counts."""
    rows = extract_image_links(write_wat([good(metas=metas)]))[0].to_pylist()
    assert rows[0]["page_robots"] == robots


def test_escaped_html_metadata_key_is_still_read(write_wat) -> None:
    """The cheap check for pages without ``HTML-Metadata`` must not miss an escaped key."""
    payload = wat_payload(IMG).replace(b'"HTML-Metadata"', b'"HTML\\u002dMetadata"')
    rows = extract_image_links(write_wat([gzip_member(warc_record(payload))]))[0].to_pylist()
    assert [r["url_raw"] for r in rows] == ["img/a.png", "https://cdn.test/b.jpg", "/c.gif"]


@pytest.mark.parametrize(
    ("written", "failure"),
    [
        (b"Content-Length:{n}", None),
        (b"Content-Length: {n} ", None),
        (b"Content-Length: x{n}", "bad_warc_header"),
        (b"Content-Length: {m}", "content_length_mismatch"),
        (b"content-length: {n}", None),  # header names are case-insensitive
        (b"X-Content-Length: {n}", "content_length_mismatch"),  # no Content-Length at all
    ],
)
def test_content_length_as_written(write_wat, written, failure) -> None:
    body = wat_payload(IMG)
    line = written.replace(b"{n}", str(len(body)).encode()).replace(b"{m}", b"99")
    record = warc_record(body).replace(b"Content-Length: " + str(len(body)).encode(), line)
    table, stats = extract_image_links(write_wat([gzip_member(record)]))
    assert (table.num_rows, dict(stats.records_failed)) == (
        (3, {}) if failure is None else (0, {failure: 1})
    )


def test_record_offsets_are_member_offsets(write_wat) -> None:
    members = [good("1"), good("2"), good("3")]
    rows = extract_image_links(write_wat(members))[0].to_pylist()
    offsets = sorted({r["wat_record_offset"] for r in rows})
    assert offsets == [0, len(members[0]), len(members[0]) + len(members[1])]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (gzip_member(warc_record(b'{"Envelope": {', record_id="x")), "bad_json"),
        (gzip_member(warc_record(wat_payload(IMG), content_length=10)), "content_length_mismatch"),
        (
            gzip_member(warc_record(wat_payload(IMG), content_length=99999)),
            "content_length_mismatch",
        ),
        (good("x")[:40], "gzip_error"),
        (b"this is not gzip at all" * 10, "gzip_error"),
        (gzip_member(warc_record(b'{"alt": "\xff\xfe caf\xe9"}')), "not_utf8"),
        (
            gzip_member(
                warc_record(
                    b'{"Container": {}, "Envelope": {"WARC-Header-Metadata": {}, '
                    b'"Payload-Metadata": {"HTTP-Response-Metadata": '
                    b'{"HTML-Metadata": {"Links": []}}}}}'
                )
            ),
            "missing_keys",
        ),
        (gzip_member(b"HELLO\r\nnot a warc header\r\n\r\n{}"), "bad_warc_header"),
    ],
)
def test_malformed_record_is_counted_and_skipped(write_wat, bad: bytes, reason: str) -> None:
    path = write_wat([good("1"), bad, good("3")])
    table, stats = extract_image_links(path)
    assert stats.records_failed[reason] == 1
    assert sum(stats.records_failed.values()) == 1
    assert table.num_rows == 6  # both good records, nothing lost around the bad one
    assert sorted({r["wat_record_id"] for r in table.to_pylist()}) == [
        "<urn:uuid:1>",
        "<urn:uuid:3>",
    ]


def test_truncated_file_end_keeps_earlier_records(write_wat) -> None:
    path = write_wat([good("1"), good("2")[:-15]])
    table, stats = extract_image_links(path)
    assert table.num_rows == 3
    assert stats.records_failed["truncated_member"] == 1


def test_lf_and_crlf_records_both_parse(write_wat) -> None:
    lf = gzip_member(warc_record(wat_payload(IMG), record_id="lf", newline=b"\n"))
    table, stats = extract_image_links(write_wat([good("crlf"), lf]))
    assert table.num_rows == 6
    assert sum(stats.records_failed.values()) == 0


def test_unopenable_file_names_the_file(tmp_path) -> None:
    missing = str(tmp_path / "nope.warc.wat.gz")
    with pytest.raises(WatOpenError, match=r"nope\.warc\.wat\.gz"):
        extract_image_links(missing)


def test_member_splitter_resyncs_after_garbage_across_blocks() -> None:
    members = [gzip_member(b"x" * 100), gzip_member(b"y" * 100)]
    data = members[0] + b"\x00junk" * 3000 + members[1]
    out = list(iter_members(io.BytesIO(data), chunk_size=64))
    assert [m.data for m in out if m.error is None] == [b"x" * 100, b"y" * 100]
    errors = [m for m in out if m.error]
    assert len(errors) == 1 and errors[0].length == 5 * 3000
    assert sum(m.length for m in out) == len(data)


def test_batches_are_bounded(write_wat) -> None:
    from pipeline.hops.wat.records import iter_image_link_batches

    path = write_wat([good(str(i)) for i in range(10)])
    sizes = [b.num_rows for b in iter_image_link_batches(path, batch_size=4)]
    assert sum(sizes) == 30 and max(sizes) <= 6


def test_batch_resolution_matches_urljoin_on_random_references() -> None:
    """Batch resolution is an optimization of urljoin: it must give the same answers."""
    import random
    from urllib.parse import urljoin

    import numpy as np
    import pyarrow as pa

    from pipeline.hops.wat.url_join import resolve_urls

    rng = random.Random(7)
    bases = [
        "http://site.test/dir/page.html",
        "https://a.test/",
        "http://b.test/x/y/z?q=1#f",
        "https://c.test:8443/deep/er/",
        "http://d.test",
        "http://e.test/a;p/b",
        "http://f.test/a/./b/../c",
        "http://g.test/a//b/c",
        "ftp://h.test/x/",
        "http://i.test/é/ü?x",
        "http://user@j.test/a/b",
        "/relative/base",
    ]
    segments = ["a", "b.html", "", ".", "..", "x y", "%41", "é", "a:b", "@", "c;p", "A"]
    hosts = ["h.test", "h.test:8080", "H.TEST", "u@h.test", "h.test:", "[::1]"]
    for _ in range(300):
        path = "".join("/" + rng.choice(segments) for _ in range(rng.randint(0, 4)))
        query = rng.choice(["", "?q", "#f", "?a/b#c/d"])
        scheme = rng.choice(["http", "https", "HTTP", "ftp"])
        bases.append(f"{scheme}://{rng.choice(hosts)}{path}{query}")
    pieces = [
        *("img", "a.png", "..", ".", "", "x y", "%20", "é", "?q=1", "#f", ";p", ":", "//"),
        *("/", "data:image/png;base64,AA", "javascript:void(0)", "mailto:a@b", "\t", "\n"),
        *("[::1]", "../", "../../../../", " ", "http:", "HTTP://X", "@", "~u"),
    ]
    refs, pages = [], []
    for _ in range(40_000):
        parts = (rng.choice(pieces) + rng.choice(["", "/"]) for _ in range(rng.randint(0, 5)))
        refs.append("".join(parts))
        pages.append(rng.randrange(len(bases)))
    resolved = resolve_urls(pa.array(refs, pa.string()), np.array(pages), bases).to_pylist()
    for ref, page, url in zip(refs, pages, resolved, strict=True):
        absolute = ref.startswith(("http://", "https://"))  # kept verbatim, by design
        expected = ref if not ref or absolute else urljoin(bases[page], ref)
        assert url == expected, (bases[page], ref)


def test_img_without_src_is_not_the_page(write_wat) -> None:
    links = [{"path": "IMG@/src", "alt": "no source at all"}, {"path": "IMG@/src", "url": ""}]
    rows = extract_image_links(write_wat([gzip_member(warc_record(wat_payload(links)))]))[0]
    assert rows.column("url").to_pylist() == ["", ""]


def test_non_object_head_is_missing_keys(write_wat) -> None:
    import orjson

    doc = orjson.loads(wat_payload(IMG))
    doc["Envelope"]["Payload-Metadata"]["HTTP-Response-Metadata"]["HTML-Metadata"]["Head"] = "x"
    path = write_wat([good("1"), gzip_member(warc_record(orjson.dumps(doc))), good("3")])
    table, stats = extract_image_links(path)
    assert stats.records_failed["missing_keys"] == 1 and table.num_rows == 6
