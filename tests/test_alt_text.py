"""Hop 2: every URL, opt-out, text and dedup rule, language tagging, and row conservation."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.hops.alt_text.pairs import (
    AltTextRules,
    clean_alt,
    detect_languages,
    is_page_opted_out,
    parse_alt_texts,
)
from pipeline.hops.dataset.opt_outs import OptOutList
from pipeline.lake.keys import pair_id, url_id
from pipeline.lake.tables import ALT_TEXT_DROP_REASONS, ALT_TEXT_SCHEMA, IMAGE_LINK_SCHEMA
from pipeline.lake.urls import HostPolicy, check_url, normalize_url


def links(rows: list[dict]) -> pa.Table:
    """A hop-1 table from partial rows (the rest filled with plausible values)."""
    full = []
    for i, row in enumerate(rows):
        url = row.get("url", "http://site.test/a.png")
        alt = row.get("alt", "a red circle on white")
        full.append(
            {
                "pair_id": pair_id(url, alt),
                "crawl_id": "SYN",
                "wat_path": "w.gz",
                "wat_record_offset": 0,
                "wat_record_id": "<r>",
                "warc_record_id": "<p>",
                "page_url": "http://site.test/",
                "page_date": "2024-01-01T00:00:00Z",
                "warc_filename": "x.warc.gz",
                "warc_offset": 0,
                "base_url": None,
                "page_robots": row.get("page_robots"),
                "link_index": i,
                "url_raw": url,
                "url": url,
                "alt": alt,
            }
        )
    return pa.Table.from_pylist(full, schema=IMAGE_LINK_SCHEMA)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("data:image/png;base64,iVBORw0KGgo=", "not_http"),
        ("javascript:void(0)", "not_http"),
        ("ftp://site.test/a.png", "not_http"),
        ("", "bad_url"),
        (None, "bad_url"),
        ("http://", "bad_url"),
        ("http://[::1", "bad_url"),
        ("img/relative.png", "bad_url"),
        ("http://127.0.0.1/a.png", "private_host"),
        ("http://localhost:8080/a.png", "private_host"),
        ("http://10.1.2.3/a.png", "private_host"),
        ("http://192.168.0.5/a.png", "private_host"),
        ("http://172.16.9.9/a.png", "private_host"),
        ("http://169.254.169.254/latest/meta-data/", "private_host"),
        ("http://metadata.google.internal/x", "private_host"),
        ("http://[::1]/a.png", "private_host"),
        ("http://[::ffff:127.0.0.1]/a.png", "private_host"),
        ("http://2130706433/a.png", "private_host"),
        ("http://0x7f000001/a.png", "private_host"),
        ("http://printer.local/a.png", "private_host"),
        ("http://0.0.0.0/a.png", "private_host"),
    ],
)
def test_url_rules_drop_with_reason(url: str | None, reason: str) -> None:
    assert check_url(url, HostPolicy()) == (False, reason)


@pytest.mark.parametrize(
    "url", ["http://site.test/a.png", "https://cdn.example.org:8443/x.jpg?w=2", "http://8.8.8.8/a"]
)
def test_url_rules_keep_public_http(url: str) -> None:
    assert check_url(url, HostPolicy()) == (True, None)


def test_allowlist_admits_hosts_ports_and_cidrs() -> None:
    policy = HostPolicy.from_list(["127.0.0.1:8123", "10.0.0.0/8", "localhost"])
    assert check_url("http://127.0.0.1:8123/a.png", policy) == (True, None)
    assert check_url("http://127.0.0.1:9999/a.png", policy) == (False, "private_host")
    assert check_url("http://10.9.9.9/a.png", policy) == (True, None)
    assert check_url("http://localhost/a.png", policy) == (True, None)
    assert check_url("http://192.168.1.1/a.png", policy) == (False, "private_host")


def test_normalize_url() -> None:
    assert normalize_url("HTTP://Site.TEST:80/a.png#frag") == "http://site.test/a.png"
    assert normalize_url("https://site.test:443") == "https://site.test/"
    assert normalize_url("https://site.test:8443/a?b=1") == "https://site.test:8443/a?b=1"
    assert url_id(normalize_url("HTTP://Site.TEST/a.png")) == url_id("http://site.test/a.png")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  a   red\n\tcircle  ", "a red circle"),
        ("cats &amp; dogs", "cats & dogs"),
        ("cats &amp;amp; dogs", "cats & dogs"),
        ("l&#39;image d&eacute;j&agrave; vue", "l'image déjà vue"),
        ("cafÃ© au lait", "café au lait"),
        ("tab\x00bed\x07 text", "tabbed text"),
        ("non\u00a0breaking space", "non breaking space"),
    ],
)
def test_clean_alt(raw: str, clean: str) -> None:
    assert clean_alt(raw) == clean


@pytest.mark.parametrize(
    ("robots", "opted_out"),
    [
        ("noai, noimageai", True),
        ("NOIMAGEAI", True),
        ("index,follow,noai", True),
        ("index, follow", False),
        ("noaiarchive", False),
        (None, False),
    ],
)
def test_page_opt_out(robots: str | None, opted_out: bool) -> None:
    assert is_page_opted_out(robots) is opted_out


def test_every_rule_and_conservation() -> None:
    table = links(
        [
            {"alt": "three red circles on a blue background"},  # kept (en)
            {"alt": None, "url": "http://site.test/b.png"},  # missing_alt
            {"alt": "   ", "url": "http://site.test/c.png"},  # empty_alt
            {"alt": "logo", "url": "http://site.test/d.png"},  # alt_too_short
            {"url": "data:image/gif;base64,R0lGOD=="},  # not_http
            {"url": "http://127.0.0.1/x.png"},  # private_host
            {"url": "http:///nohost.png"},  # bad_url
            {"url": "http://site.test/e.png", "page_robots": "noai"},  # page_noai
            {"alt": "three red circles on a blue background"},  # duplicate (same url, text)
            {"alt": "three  red circles on a blue background "},  # duplicate after cleaning
            {"url": "HTTP://SITE.test/a.png", "alt": "three red circles on a blue background"},
            {"url": "http://site.test/f.png", "alt": "drei rote Kreise auf blauem Hintergrund"},
        ]
    )
    result = parse_alt_texts(table, AltTextRules())
    out = result.table
    assert out.schema == ALT_TEXT_SCHEMA
    reasons = out.column("drop_reason").to_pylist()
    assert reasons == [
        None,
        "missing_alt",
        "empty_alt",
        "alt_too_short",
        "not_http",
        "private_host",
        "bad_url",
        "page_noai",
        "duplicate",
        "duplicate",
        "duplicate",
        None,
    ]
    assert result.rows_in == table.num_rows == result.rows_kept + sum(result.dropped.values())
    assert result.dropped["duplicate"] == 3
    assert out.column("pair_id").to_pylist() == table.column("pair_id").to_pylist()
    kept = out.filter(out.column("kept")).to_pylist()
    assert [r["language"] for r in kept] == ["en", "de"]
    assert all(r["language_detector"].startswith("lingua-") for r in kept)
    floor = AltTextRules().min_language_score
    assert all(floor <= r["language_score"] <= 1.0 for r in kept)
    assert kept[0]["url_id"] == url_id("http://site.test/a.png")


def test_owner_opt_outs_drop_after_url_rules_before_alt_rules() -> None:
    """URL and domain opt-outs from the lake's list drop rows at hop 2 with their reason, after
    the URL rules and before the page, alt and dedup rules; rows are conserved."""
    listed = OptOutList.from_table(
        pa.table(
            {
                "kind": ["url", "domain", "url"],
                "value": ["http://site.test/a.png", "artist.test", "http://10.0.0.5/d.png"],
            }
        )
    )
    table = links(
        [
            {"url": "HTTP://site.test:80/a.png#x", "alt": "three red circles on blue"},
            {"url": "http://site.test/a.png", "alt": "logo"},  # opt-out wins over alt_too_short
            {"url": "http://cdn.artist.test/b.png", "page_robots": "noai"},  # over page_noai
            {"url": "http://artist.test/c.png", "alt": None},  # over missing_alt
            {"url": "http://10.0.0.5/d.png"},  # listed, but private_host comes first
            {"url": "http://notartist.test/e.png", "alt": "three red circles on blue"},
            {"url": "http://site.test/f.png", "alt": "three red circles on blue"},
        ]
    )
    result = parse_alt_texts(table, AltTextRules(), opt_outs=listed)
    assert result.table.column("drop_reason").to_pylist() == [
        "opted_out:url",
        "opted_out:url",
        "opted_out:domain",
        "opted_out:domain",
        "private_host",
        None,
        None,
    ]
    assert result.dropped == {"opted_out:url": 2, "opted_out:domain": 2, "private_host": 1}
    assert result.rows_in == result.rows_kept + sum(result.dropped.values()) == 7
    withdrawn = result.table.filter(pa.array([r in (0, 1, 2, 3) for r in range(7)]))
    assert withdrawn.column("dedup_key").null_count == 4  # a withdrawn pair takes no dedup key
    assert withdrawn.column("url_id").null_count == 0  # but is traceable by URL
    plain = parse_alt_texts(table, AltTextRules())
    assert "opted_out:url" not in plain.dropped and plain.dropped["alt_too_short"] == 1
    assert {"opted_out:url", "opted_out:domain"} <= set(ALT_TEXT_DROP_REASONS)
    order = list(ALT_TEXT_DROP_REASONS)
    assert order.index("private_host") < order.index("opted_out:url") < order.index("page_noai")


def test_dedup_is_within_the_partition_only() -> None:
    """A pair repeated in another slice is kept here (laion_dataset decides across slices)
    with the same dedup_key, so a slice's decisions do not depend on the others."""
    first = parse_alt_texts(links([{"alt": "a yellow star on green"}]))
    repeats = [{"alt": "a yellow star  on green"}, {"alt": "a yellow star on green"}]
    second = parse_alt_texts(links(repeats))
    assert second.table.column("drop_reason").to_pylist() == [None, "duplicate"]
    keys = second.table.column("dedup_key").to_pylist()
    assert keys == first.table.column("dedup_key").to_pylist() * 2


def test_min_chars_is_configurable() -> None:
    result = parse_alt_texts(links([{"alt": "logo"}]), AltTextRules(min_chars=3))
    assert result.table.column("kept").to_pylist() == [True]


def test_allowlist_from_rules() -> None:
    rows = links([{"url": "http://127.0.0.1:8123/a.png", "alt": "a blue square on grey"}])
    assert parse_alt_texts(rows).dropped["private_host"] == 1
    allowed = parse_alt_texts(rows, AltTextRules(private_host_allowlist=("127.0.0.1:8123",)))
    assert allowed.rows_kept == 1


def test_languages_multilingual_and_unsure() -> None:
    texts = [
        "three red circles on a blue background",
        "drei rote Kreise auf blauem Hintergrund",
        "trois cercles rouges sur un fond bleu",
        "tres círculos rojos sobre un fondo azul",
    ]
    codes = [code for code, _ in detect_languages(texts, AltTextRules())]
    assert codes == ["en", "de", "fr", "es"]
    assert detect_languages(["IMG_2041.jpg"], AltTextRules()) == [(None, 0.0)]
    ((code, margin),) = detect_languages(texts[:1], AltTextRules())
    assert code == "en" and 0.0 < margin < 0.99
    ((strict, same),) = detect_languages(texts[:1], AltTextRules(min_language_score=0.99))
    assert strict is None and same == pytest.approx(margin)
