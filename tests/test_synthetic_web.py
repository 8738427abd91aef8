"""The synthetic web: determinism, Common Crawl formats, and every kind of case it promises."""

from __future__ import annotations

import collections
import gzip
import io
import json
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from fastwarc.warc import ArchiveIterator, WarcRecordType
from PIL import Image

from pipeline.synthetic.captions import caption
from pipeline.synthetic.config import SyntheticWebConfig
from pipeline.synthetic.generate import WebManifest, generate_web
from pipeline.synthetic.gzmember import iter_members
from pipeline.synthetic.plan import plan_web
from pipeline.synthetic.urls import canonical_url, resolve
from tests.conftest import REAL_WAT

SMALL = SyntheticWebConfig(wat_files_per_crawl=2, pages_per_crawl=60, sites=8)
HTML_META = ("Envelope", "Payload-Metadata", "HTTP-Response-Metadata", "HTML-Metadata")


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> WebManifest:
    return generate_web(tmp_path_factory.mktemp("synthetic") / "web", SMALL)


@pytest.fixture(scope="module")
def wat_records(web: WebManifest) -> list[tuple[str, str, dict[str, Any], Any]]:
    """(crawl id, WAT path, JSON payload, FastWARC headers) of every metadata record."""
    out = []
    for crawl_id in web.crawl_ids:
        for path in web.wat_files(crawl_id):
            for rec in ArchiveIterator(str(path), parse_http=False, verify_digests=True):
                if rec.record_type == WarcRecordType.metadata:
                    payload = rec.reader.read()
                    assert len(payload) == rec.content_length
                    out.append((crawl_id, str(path), orjson.loads(payload), rec.headers))
    return out


@pytest.fixture(scope="module")
def pages(web: WebManifest) -> list[dict[str, Any]]:
    return pq.read_table(web.path("pages")).to_pylist()


@pytest.fixture(scope="module")
def truth(web: WebManifest) -> dict[str, dict[str, Any]]:
    return {row["url"]: row for row in pq.read_table(web.path("truth")).to_pylist()}


def _dig(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# ------------------------------------------------------------------ generation
def test_default_config_meets_floors() -> None:
    plan = plan_web(SyntheticWebConfig())
    html = [p for c in plan.crawls for p in c.pages if p.status == 200]
    assert len(html) >= 2000
    assert sum(len(p.imgs) for p in html) >= 10_000
    assert len(plan.crawls) == 2


def test_generation_is_deterministic(web: WebManifest, tmp_path: Path) -> None:
    again = generate_web(tmp_path / "again", SMALL)
    assert again.generated and again.fingerprint == web.fingerprint
    first, second = _tree(web.root), _tree(again.root)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_generation_is_idempotent(web: WebManifest) -> None:
    again = generate_web(web.root, SMALL)
    assert not again.generated
    assert again.counts == web.counts and again.paths == web.paths


def test_other_config_gives_other_fingerprint() -> None:
    assert SyntheticWebConfig(seed=1).fingerprint() != SyntheticWebConfig().fingerprint()
    assert SyntheticWebConfig(workers=1).fingerprint() == SyntheticWebConfig().fingerprint()


def test_refuses_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("not a web")
    with pytest.raises(FileExistsError):
        generate_web(tmp_path, SMALL)


def test_layout_and_counts(web: WebManifest) -> None:
    root = web.root
    collinfo = json.loads((root / "collinfo.json").read_text())
    assert {c["id"] for c in collinfo} == set(SMALL.crawl_ids)
    assert all({"id", "name", "from", "to"} <= c.keys() for c in collinfo)
    for crawl_id in SMALL.crawl_ids:
        for kind in ("wat", "warc"):
            blob = (root / f"crawl-data/{crawl_id}/{kind}.paths.gz").read_bytes()
            listed = gzip.GzipFile(fileobj=io.BytesIO(blob)).read().decode().splitlines()
            assert listed == web.paths[kind][crawl_id]
            assert len(listed) == SMALL.wat_files_per_crawl
            for rel in listed:
                assert rel.startswith(f"crawl-data/{crawl_id}/segments/")
                assert f"/{kind}/" in rel and (root / rel).is_file()
    assert web.counts["wat_files"] == 4
    assert web.counts["pages"] == 120
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["fingerprint"] == SMALL.fingerprint()
    assert manifest["counts"] == web.counts


# ----------------------------------------------------------------- WARC / WAT
def test_gzip_members_and_crlf(web: WebManifest) -> None:
    for rel in web.paths["wat"][SMALL.crawl_ids[0]] + web.paths["warc"][SMALL.crawl_ids[0]]:
        blob = (web.root / rel).read_bytes()
        members = list(iter_members(blob))
        assert len(members) > 10
        for m in members:
            assert blob[m.offset : m.offset + 10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03"
            head, _, rest = m.data.partition(b"\r\n\r\n")
            assert head.startswith(b"WARC/1.0\r\n") and b"\n" not in head.replace(b"\r\n", b"")
            length = int(
                next(ln for ln in head.split(b"\r\n") if ln.startswith(b"Content-Len")).split(
                    b": "
                )[1]
            )
            assert len(rest) == length + 4 and rest.endswith(b"\r\n\r\n")


def test_warc_files_parse_with_fastwarc(web: WebManifest) -> None:
    types = collections.Counter()
    for crawl_id in web.crawl_ids:
        for rel in web.paths["warc"][crawl_id]:
            for rec in ArchiveIterator(str(web.root / rel), parse_http=False):
                types[rec.headers["WARC-Type"]] += 1
                if "WARC-Block-Digest" in rec.headers:
                    assert rec.verify_block_digest(consume=False)
                if rec.record_type == WarcRecordType.response:
                    rec.parse_http()
                    assert rec.http_headers.status_code in (200, 301)
                    assert rec.verify_payload_digest()
    assert types["warcinfo"] == 4
    assert types["response"] == types["request"] == types["metadata"] == 122


def _key_paths(obj: Any, prefix: str = "") -> set[str]:
    """Key paths of a WAT JSON document, not descending into open-ended objects."""
    if not isinstance(obj, dict):
        return {prefix}
    out: set[str] = set()
    for key, value in obj.items():
        if key in ("Headers", "Metas", "Links", "Link", "Scripts", "WARC-Info-Metadata"):
            out.add(f"{prefix}/{key}")
        else:
            out |= _key_paths(value, f"{prefix}/{key}")
    return out


def test_same_structure_as_real_common_crawl_wat(
    wat_records: list[tuple[str, str, dict[str, Any], Any]],
) -> None:
    blob = (REAL_WAT / "CC-MAIN-2024-22-request-only.warc.wat.gz").read_bytes()
    request = orjson.loads(list(iter_members(blob))[1].data.split(b"\r\n\r\n", 1)[1])
    blob = (REAL_WAT / "CC-MAIN-2023-06-excerpt.warc.wat.gz").read_bytes()
    response = orjson.loads(next(iter_members(blob)).data.split(b"\n\n", 1)[1])
    ours = {}
    for _, _, doc, _ in wat_records:
        if "Base" not in (_dig(doc, (*HTML_META, "Head")) or {}):  # the excerpt has no <base>
            ours.setdefault(doc["Envelope"]["WARC-Header-Metadata"]["WARC-Type"], doc)
    assert _key_paths(ours["request"]) == _key_paths(request)
    assert _key_paths(ours["response"]) == _key_paths(response)


def test_wat_records_have_common_crawl_shape(
    wat_records: list[tuple[str, str, dict[str, Any], Any]],
) -> None:
    kinds = collections.Counter()
    for _, _, doc, headers in wat_records:
        assert list(doc) == ["Container", "Envelope"]
        assert list(doc["Container"]) == ["Filename", "Compressed", "Offset", "Gzip-Metadata"]
        assert isinstance(doc["Container"]["Offset"], str)
        env = doc["Envelope"]
        assert list(env) == [
            "Payload-Metadata",
            "Format",
            "WARC-Header-Length",
            "WARC-Header-Metadata",
        ]
        warc_headers = env["WARC-Header-Metadata"]
        kind = warc_headers["WARC-Type"]
        kinds[kind] += 1
        assert headers["WARC-Refers-To"] == warc_headers["WARC-Record-ID"]
        assert headers["Content-Type"] == "application/json"
        payload = env["Payload-Metadata"]
        if kind == "request":
            assert "HTTP-Request-Metadata" in payload
            assert "HTML-Metadata" not in json.dumps(payload)
        if (
            kind == "response"
            and _dig(payload, ("HTTP-Response-Metadata", "Response-Message", "Status")) == "200"
        ):
            html = payload["HTTP-Response-Metadata"]["HTML-Metadata"]
            assert {"Title", "Metas", "Link"} <= html["Head"].keys()
            assert any(link["path"] == "IMG@/src" for link in html["Links"])
            assert any(link["path"] == "A@/href" for link in html["Links"])
            assert headers["WARC-Target-URI"] == warc_headers["WARC-Target-URI"]
    assert kinds["warcinfo"] == 4
    assert kinds["request"] == kinds["response"] == kinds["metadata"] == 122


def test_container_offset_points_at_response_record(
    web: WebManifest, wat_records: list[tuple[str, str, dict[str, Any], Any]]
) -> None:
    checked = 0
    for crawl_id, wat_path, doc, _ in wat_records:
        env = doc["Envelope"]
        if env["WARC-Header-Metadata"]["WARC-Type"] != "response":
            continue
        warc_rel = next(
            p for p in web.paths["warc"][crawl_id] if Path(p).name == doc["Container"]["Filename"]
        )
        with (web.root / warc_rel).open("rb") as fh:
            fh.seek(int(doc["Container"]["Offset"]))
            deflate = int(doc["Container"]["Gzip-Metadata"]["Deflate-Length"])
            rec = next(iter(ArchiveIterator(fh, parse_http=False)))
            assert rec.record_id == env["WARC-Header-Metadata"]["WARC-Record-ID"]
            assert rec.record_type == WarcRecordType.response
            assert rec.headers["WARC-Target-URI"] == env["WARC-Header-Metadata"]["WARC-Target-URI"]
        assert deflate > 0 and Path(wat_path).name.startswith(Path(warc_rel).name[:-3])
        checked += 1
    assert checked == 122


def test_wat_links_match_pages_table(
    wat_records: list[tuple[str, str, dict[str, Any], Any]], pages: list[dict[str, Any]]
) -> None:
    expected = collections.defaultdict(list)
    for row in pages:
        expected[(row["crawl_id"], row["page_url"])].append(row)
    seen = 0
    for crawl_id, _, doc, _ in wat_records:
        links = _dig(doc, (*HTML_META, "Links"))
        if links is None:
            continue
        url = doc["Envelope"]["WARC-Header-Metadata"]["WARC-Target-URI"]
        imgs = [link for link in links if link["path"] == "IMG@/src"]
        rows = sorted(expected[(crawl_id, url)], key=lambda r: r["img_index"])
        assert [i["url"] for i in imgs] == [r["src"] for r in rows]
        assert [i.get("alt") for i in imgs] == [r["alt"] for r in rows]
        assert all(("alt" in i) == (r["alt"] is not None) for i, r in zip(imgs, rows, strict=True))
        seen += 1
    assert seen == 120


def test_opt_outs_and_base_in_wat(wat_records: list[tuple[str, str, dict[str, Any], Any]]) -> None:
    metas = [
        m for *_, doc, _ in wat_records for m in _dig(doc, (*HTML_META, "Head", "Metas")) or []
    ]
    assert {"name": "robots", "content": "noai, noimageai"} in metas
    bases = [_dig(doc, (*HTML_META, "Head", "Base")) for *_, doc, _ in wat_records]
    assert any(bases)


# ---------------------------------------------------------------- truth tables
def test_every_kind_appears(pages: list[dict[str, Any]], truth: dict[str, dict[str, Any]]) -> None:
    alt_kinds = {r["alt_kind"] for r in pages}
    assert {f"match_{lang}" for lang in SMALL.languages} <= alt_kinds
    assert {
        "mismatch",
        "boilerplate",
        "filename",
        "empty",
        "missing",
        "long",
        "entity",
        "whitespace",
        "mojibake",
        "short",
    } <= alt_kinds
    url_kinds = {r["url_kind"] for r in pages}
    assert {
        "absolute",
        "root_relative",
        "relative_dotdot",
        "relative_plain",
        "protocol_relative",
        "base_relative",
        "data",
        "data_lazy",
        "javascript",
        "private",
        "dead_host",
        "tracking_pixel",
    } <= url_kinds
    assert {r["path_style"] for r in pages} >= {"plain", "query", "unicode"}
    assert any(r["page_noai"] for r in pages) and not all(r["page_noai"] for r in pages)
    assert any(r["base_href"] for r in pages)
    faults = {row["fault"] for row in truth.values()}
    assert faults >= {
        None,
        "not_found",
        "server_error",
        "slow",
        "truncated",
        "wrong_content_type",
        "not_image",
        "redirect",
        "redirect_blocked",
        "oversized",
    }
    assert any(row["host_noai"] for row in truth.values())
    assert any(row["header_noai"] and not row["host_noai"] for row in truth.values())
    assert any(row["watermark"] for row in truth.values())
    assert any(row["unsafe"] for row in truth.values())
    assert {row["format"] for row in truth.values()} >= {"JPEG", "PNG", "WEBP", "GIF"}


def test_special_alts(pages: list[dict[str, Any]]) -> None:
    by_kind = collections.defaultdict(list)
    for r in pages:
        by_kind[r["alt_kind"]].append(r["alt"])
    assert all(len(a) > 500 for a in by_kind["long"])
    assert all("&" in a and ";" in a for a in by_kind["entity"])
    assert all(a == "" for a in by_kind["empty"]) and all(a is None for a in by_kind["missing"])
    assert any("Ã" in a for a in by_kind["mojibake"])
    assert all(
        a != a.strip() or "\n" in a or "\xa0" in a or "  " in a for a in by_kind["whitespace"]
    )


def test_urls_resolve_to_served_images(
    pages: list[dict[str, Any]], truth: dict[str, dict[str, Any]]
) -> None:
    for r in pages:
        if r["image_url"] is None:
            assert r["url_kind"] in {"data", "data_lazy", "javascript", "private", "dead_host"}
            continue
        resolved = resolve(r["page_url"], r["base_href"], r["src"])
        assert resolved == r["url_resolved"]
        assert canonical_url(resolved) == r["image_url"]
        assert r["image_url"] in truth
        if r["url_kind"] == "relative_dotdot":
            assert r["src"].startswith("../")
        if r["url_kind"] == "protocol_relative":
            assert r["src"].startswith("//")


def test_duplicates_everywhere(pages: list[dict[str, Any]]) -> None:
    alts_per_url = collections.defaultdict(set)
    urls_per_alt = collections.defaultdict(set)
    pair_pages = collections.defaultdict(set)
    pair_crawls = collections.defaultdict(set)
    for r in pages:
        if r["image_url"] is None or r["alt"] is None:
            continue
        alts_per_url[r["image_url"]].add(r["alt"])
        urls_per_alt[r["alt"]].add(r["image_url"])
        pair_pages[(r["image_url"], r["alt"])].add(r["page_url"])
        pair_crawls[(r["image_url"], r["alt"])].add(r["crawl_id"])
    assert max(len(v) for v in alts_per_url.values()) >= 3
    assert max(len(v) for v in urls_per_alt.values()) >= 3
    assert max(len(v) for v in pair_pages.values()) >= 2
    assert max(len(v) for v in pair_crawls.values()) == 2
    assert any(r["recrawl"] for r in pages)


def test_truth_images_match_files(web: WebManifest, truth: dict[str, dict[str, Any]]) -> None:
    big = 0
    for row in truth.values():
        assert row["aesthetic"] is None or 1.0 <= row["aesthetic"] <= 10.0
        if row["file"] is None:
            assert row["fault"] in {"not_found", "server_error", "redirect", "redirect_blocked"}
            continue
        data = (web.root / row["file"]).read_bytes()
        if row["fault"] == "not_image":
            assert data.lstrip().startswith(b"<!DOCTYPE html")
            continue
        if row["fault"] == "oversized" and row["n_bytes"] >= SMALL.oversized_bytes:
            assert len(data) < row["n_bytes"]  # the server pads the body
            continue
        if row["fault"] == "oversized":
            assert row["width"] == row["height"] == SMALL.bomb_side
            with pytest.raises(Image.DecompressionBombError):
                Image.open(io.BytesIO(data))
            continue
        assert len(data) == row["n_bytes"]
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == row["format"]
            assert im.size == (row["width"], row["height"])
        big += len(data) > 5000
        if row["role"] in ("content", "cdn"):
            assert row["caption_en"] and row["caption_de"]
    assert big >= 0.25 * len(truth)


def test_captions_are_grammatical() -> None:
    args = ("circle", "red", 3, "plain", ("blue",))
    assert caption("en", *args) == "three red circles on a blue background"
    assert caption("de", *args) == "drei rote Kreise auf blauem Hintergrund"
    assert caption("fr", *args) == "trois cercles rouges sur un fond bleu"
    assert caption("es", *args) == "tres círculos rojos sobre un fondo azul"
    assert caption("it", *args) == "tre cerchi rossi su uno sfondo blu"
    assert caption("nl", *args) == "drie rode cirkels op een blauwe achtergrond"
    assert caption("de", "star", "orange", 1, "stripes", ("purple",)) == (
        "ein orangefarbener Stern auf violett gestreiftem Hintergrund"
    )
    assert caption("en", "heart", "orange", 1, "gradient", ("blue", "pink")) == (
        "an orange heart on a gradient background from blue to pink"
    )


@pytest.mark.slow
def test_default_web_generates_within_a_minute(tmp_path: Path) -> None:
    manifest = generate_web(tmp_path / "web")
    assert manifest.generated
    assert manifest.counts["pages"] >= 2000
    assert manifest.counts["image_links"] >= 10_000
    assert manifest.counts["wat_files"] == 8
    assert manifest.seconds < 120
