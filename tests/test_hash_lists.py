"""Takedown hash lists: hashing (md5, sha256, PDQ of resized and re-encoded copies of synthetic
drawings), list files and the lake table, the CLI, hop 3 dropping matches before anything is
kept (and never fetching opted-out URLs), and laion_dataset re-matching stored hashes when a
list grows."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pytest
from PIL import Image

from crawl2diffusion.cli import main
from pipeline.hops.clip.decode import DecodePolicy
from pipeline.hops.clip.fetch import Fetcher, FetchPolicy
from pipeline.hops.clip.filter import Thresholds, cached_outcomes, score_pairs
from pipeline.hops.dataset import hash_lists
from pipeline.hops.dataset.hash_lists import (
    HashLists,
    HashMatching,
    ImageHashes,
    parse_line,
    parse_lines,
    pdq_distance,
    pdq_hash,
    stored_matches,
)
from pipeline.hops.dataset.opt_outs import OptOutList
from pipeline.hops.dataset.release import build_release
from pipeline.lake.keys import url_id
from pipeline.lake.store import Lake
from pipeline.lake.tables import CLIP_DROP_REASONS, HASH_LIST_SCHEMA, TableName
from pipeline.synthetic.draw import encode, render
from pipeline.synthetic.model import Visual


def _visual(seed: str, shape: str, color: str, background: str, bg: str) -> Visual:
    return Visual(seed=seed, shape=shape, color=color, count=3, background=background,
                  bg_colors=(bg,), composition="scattered", palette="neutral", width=320,
                  height=240, format="PNG", size_class="medium")  # fmt: skip


LISTED = render(_visual("takedown:0", "star", "red", "stripes", "blue"))
"""The image a takedown list holds (by its PDQ hash)."""
EXACT = render(_visual("takedown:1", "circle", "yellow", "dots", "turquoise"))
"""An image a list holds by its file's md5."""
WITHDRAWN_FILE = render(_visual("takedown:2", "cross", "white", "noise", "purple"))
"""An image an owner withdrew by its file's sha256 (the opt-out list)."""
DISTINCT = render(_visual("other:0", "triangle", "orange", "stripes", "green"))
"""An unrelated drawing that no list holds."""


def _copies(image: Image.Image) -> dict[str, bytes]:
    """A resized (3/5) JPEG at quality 60 and an enlarged (2x) WebP of ``image``."""
    small = image.resize((image.width * 3 // 5, image.height * 3 // 5), Image.Resampling.BILINEAR)
    big = image.resize((image.width * 2, image.height * 2), Image.Resampling.LANCZOS)
    return {"small.jpg": encode(small, "JPEG", 60), "big.webp": encode(big, "WEBP", 80)}


def _pdq_of(data: bytes) -> str:
    return pdq_hash(Image.open(io.BytesIO(data)).convert("RGB"))


def test_pdq_matches_resized_reencoded_copies_and_not_a_distinct_image() -> None:
    """Copies lie within PDQ's default distance (31 of 256 bits), other drawings far beyond;
    the distance is configurable (0 admits no copy)."""
    original = pdq_hash(LISTED)
    assert len(original) == 64 and original == pdq_hash(LISTED.copy())
    copies = {name: pdq_distance(original, _pdq_of(data)) for name, data in _copies(LISTED).items()}
    others = {
        name: pdq_distance(original, pdq_hash(image))
        for name, image in (("exact", EXACT), ("withdrawn", WITHDRAWN_FILE), ("distinct", DISTINCT))
    }
    assert all(0 < d <= 20 for d in copies.values()), copies  # 12 and 8 when written
    assert all(d >= 90 for d in others.values()), others  # 110 to 124 when written
    lists = HashLists(_table([("ncii", "pdq", original)]))
    for name, data in _copies(LISTED).items():
        found = lists.match(ImageHashes(pdq=_pdq_of(data)))
        assert found is not None and found.reason == "hash_list:ncii", name
        assert found.distance == copies[name]
    assert lists.match(ImageHashes(pdq=pdq_hash(DISTINCT))) is None
    strict = HashLists(_table([("ncii", "pdq", original)]), HashMatching(max_pdq_distance=0))
    assert strict.match(ImageHashes(pdq=_pdq_of(_copies(LISTED)["small.jpg"]))) is None
    assert strict.match(ImageHashes(pdq=original)) is not None


def _table(rows: list[tuple[str, str, str]]) -> pa.Table:
    return pa.table(
        {
            "name": [r[0] for r in rows],
            "kind": [r[1] for r in rows],
            "value": [r[2] for r in rows],
        }
    )


def test_list_files_say_their_kind_unambiguously() -> None:
    md5, sha = "0123456789abcdef" * 2, "ab" * 32
    assert parse_line(md5.upper()) == ("md5", md5)
    assert parse_line(f"sha256:{sha}  # from the report") == ("sha256", sha)
    assert parse_line(f"PDQ:{sha},100") == ("pdq", sha)  # PDQ files may add the quality
    assert parse_line(sha, kind="pdq") == ("pdq", sha)
    assert parse_line("   # a comment") is None and parse_line("") is None
    with pytest.raises(ValueError, match="sha256 or a PDQ"):
        parse_line(sha)  # 64 hex digits: which?
    with pytest.raises(ValueError, match="md5 hash"):
        parse_line(sha, kind="md5")
    with pytest.raises(ValueError, match="unknown hash kind"):
        parse_line(f"sha1:{sha}")
    with pytest.raises(ValueError, match="line 2"):
        parse_lines([md5, "zz" * 16], None)


def test_lists_in_the_lake_match_exactly_and_by_distance(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    exact = hashlib.md5(encode(EXACT, "PNG", 0)).hexdigest()
    hash_lists.add(lake, "csam-md5", [("md5", exact)], note="hotline")
    table = hash_lists.add(lake, "ncii", [("pdq", pdq_hash(LISTED)), ("md5", exact.upper())])
    hash_lists.add(lake, "ncii", [("pdq", pdq_hash(LISTED))])  # already there
    stored = lake.read(TableName.HASH_LISTS)
    assert stored.schema == HASH_LIST_SCHEMA and stored.num_rows == table.num_rows == 3
    with pytest.raises(ValueError, match="list name"):
        hash_lists.add(lake, "no spaces", [("md5", exact)])
    lists = hash_lists.load(lake)
    assert lists.names == ("csam-md5", "ncii")
    both = lists.matches(ImageHashes(md5=exact))
    assert [(m.name, m.kind, m.distance) for m in both] == [("csam-md5", "md5", 0),
                                                             ("ncii", "md5", 0)]  # fmt: skip
    fetches = pa.table(
        {
            "pair_id": ["p1", "p2", "p3", "p4"],
            "url_id": ["u1", "u2", "u3", "u4"],
            "sha256": ["aa" * 32, "bb" * 32, "cc" * 32, None],
            "md5": [exact, None, None, None],
            "pdq": [None, _pdq_of(_copies(LISTED)["small.jpg"]), pdq_hash(DISTINCT), None],
        }
    )
    found = stored_matches(fetches, lists).to_pylist()
    assert [(r["pair_id"], r["list_name"], r["kind"]) for r in found] == [
        ("p1", "csam-md5", "md5"),
        ("p1", "ncii", "md5"),
        ("p2", "ncii", "pdq"),
    ]
    assert 0 < found[2]["distance"] <= 31 and found[2]["sha256"] == "bb" * 32
    assert stored_matches(fetches, HashLists()).num_rows == 0


def test_cli_adds_a_hash_list_to_the_lake(tmp_path: Path, capsys) -> None:
    lake = str(tmp_path / "lake")
    pdq = pdq_hash(LISTED)
    listing = tmp_path / "list.txt"
    listing.write_text(f"# NCII hashes\n{pdq}\n{'ab' * 32}\n")
    assert main(["opt-out", "--lake", lake, "--hash-list", str(listing), "--name", "ncii"]) == 2
    assert "--kind" in capsys.readouterr().err  # 64 hex digits without a kind are refused
    args = ["opt-out", "--lake", lake, "--hash-list", str(listing), "--name", "ncii"]
    assert main([*args, "--kind", "pdq", "--note", "ticket 9"]) == 0
    assert "list ncii holds 2" in capsys.readouterr().out
    mixed = tmp_path / "mixed.txt"
    mixed.write_text(f"md5:{'0f' * 16}\nsha256:{'cd' * 32}\n")
    assert main(["opt-out", "--lake", lake, "--hash-list", str(mixed), "--name", "files"]) == 0
    assert main(["opt-out", "--lake", lake, "--hash-list", str(listing)]) == 2  # no --name
    assert main(["opt-out", "--lake", lake, "--name", "files"]) == 2  # no --hash-list
    capsys.readouterr()
    assert main(["opt-out", "--lake", lake]) == 0
    out = capsys.readouterr().out
    assert "hash_list\tncii\tpdq\t2 hashes" in out and "hash_list\tfiles\tmd5\t1 hashes" in out
    lists = hash_lists.load(Lake(lake))
    assert lists.match(ImageHashes(pdq=_pdq_of(_copies(LISTED)["big.webp"]))).name == "ncii"


# -- hop 3 against a loopback server ----------------------------------------------------------

FILES = {
    "/listed.png": encode(LISTED, "PNG", 0),
    **{f"/copy-{name}": data for name, data in _copies(LISTED).items()},
    "/exact.png": encode(EXACT, "PNG", 0),
    "/withdrawn.png": encode(WITHDRAWN_FILE, "PNG", 0),
    "/distinct.png": encode(DISTINCT, "PNG", 0),
}
HOSTS = ("art.test", "gone.test")


class _Site:
    """A loopback HTTP server for the virtual hosts ``HOSTS`` serving ``FILES``; it records
    every (host, path) asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.asked.append((self.headers.get("Host", ""), self.path))
                body = FILES.get(self.path)
                self.send_response(200 if body else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def fetcher(self, opt_outs: OptOutList) -> Fetcher:
        address = f"127.0.0.1:{self.httpd.server_address[1]}"
        policy = FetchPolicy(resolve=dict.fromkeys(HOSTS, address), resolve_only=True,
                             retries=0, opt_outs=opt_outs)  # fmt: skip
        return Fetcher(policy, 2)


@pytest.fixture(scope="module")
def site() -> Iterator[_Site]:
    served = _Site()
    served.thread.start()
    yield served
    served.httpd.shutdown()
    served.httpd.server_close()


@pytest.fixture(scope="module")
def models() -> tuple:
    from pipeline.hops.clip.embed import ClipModel, ClipSpec
    from pipeline.hops.clip.heads import load_head

    return ClipModel(ClipSpec(device="cpu")), load_head("punsafe"), load_head("pwatermark")


def _pairs(urls: list[str]) -> pa.Table:
    return pa.table(
        {
            "pair_id": [f"{i:016x}" for i in range(len(urls))],
            "url_id": [url_id(u) for u in urls],
            "url": urls,
            "text": ["a red star on blue stripes"] * len(urls),
            "language": ["en"] * len(urls),
            "crawl_id": ["SYN"] * len(urls),
            "kept": [True] * len(urls),
        }
    )


URLS = [f"http://art.test{path}" for path in FILES] + ["http://gone.test/distinct.png"]
KEEP_ALL = Thresholds({}, -1.0)
"""Every decoded image passes, so only the withdrawals decide."""


def _score(site: _Site, models: tuple, opt_outs: OptOutList, lists: HashLists, **kw: Any):
    clip, punsafe, pwatermark = models
    return score_pairs(_pairs(URLS), clip, site.fetcher(opt_outs), DecodePolicy(min_bytes=0),
                       KEEP_ALL, punsafe, pwatermark, hash_lists=lists, **kw)  # fmt: skip


def _reasons(table: pa.Table) -> dict[str, str | None]:
    return {
        url.rsplit("/", 1)[-1] if "art.test" in url else url: reason
        for url, reason in zip(
            table.column("url").to_pylist(), table.column("drop_reason").to_pylist(), strict=True
        )
    }


def test_hop3_drops_listed_images_before_embedding_or_keeping_bytes(site, models) -> None:
    """Every fetched image is hashed; a match is dropped with hash_list:<name> (or
    opted_out:sha256) and has no embedding and no bytes, even with keep_images; an
    opted-out domain is never asked for; the rows are conserved and pass the suite."""
    from quality.gx_runner import run_suite
    from quality.suites import build_suite

    exact_md5 = hashlib.md5(FILES["/exact.png"]).hexdigest()
    lists = HashLists(_table([("ncii", "pdq", pdq_hash(LISTED)), ("csam-md5", "md5", exact_md5)]))
    withdrawn_sha = hashlib.sha256(FILES["/withdrawn.png"]).hexdigest()
    opt_outs = OptOutList(domains=frozenset({"gone.test"}), sha256s=frozenset({withdrawn_sha}))
    before = len(site.asked)
    result = _score(site, models, opt_outs, lists, keep_images=True)
    assert _reasons(result.table) == {
        "listed.png": "hash_list:ncii",
        "copy-small.jpg": "hash_list:ncii",
        "copy-big.webp": "hash_list:ncii",
        "exact.png": "hash_list:csam-md5",
        "withdrawn.png": "opted_out:sha256",
        "distinct.png": None,
        "http://gone.test/distinct.png": "opted_out:domain",
    }
    asked = site.asked[before:]
    assert sorted(path for _, path in asked) == sorted(FILES)  # gone.test: no request
    assert all(host == "art.test" for host, _ in asked)
    assert result.embeddings.column("url").to_pylist() == ["http://art.test/distinct.png"]
    assert result.embeddings.column("image").to_pylist() == [FILES["/distinct.png"]]
    rows = {r["url"].rsplit("/", 1)[-1]: r for r in result.table.to_pylist()}
    assert rows["copy-small.jpg"]["pdq"] and rows["copy-small.jpg"]["md5"]
    assert rows["exact.png"]["md5"] == exact_md5 and rows["exact.png"]["pdq"] is None  # undecoded
    assert "distance" in rows["copy-small.jpg"]["error"]
    assert all(r["similarity"] is None for n, r in rows.items() if n != "distinct.png")
    assert result.rows_in == result.rows_kept + sum(result.dropped.values()) == len(URLS)
    assert {r for r in result.dropped if not r.startswith("hash_list:")} <= set(CLIP_DROP_REASONS)
    suite = run_suite(result.table, build_suite(TableName.CLIP_SCORES))
    assert suite.success, suite.summary()


def test_a_grown_list_is_matched_against_stored_hashes(site, models) -> None:
    """Fetched with no list, every image is kept and its hashes stored; the list then grows:
    laion_dataset's build drops the stored matches with hash_list:<name>, the export names
    them, and a re-run reuses no withdrawn cached embedding and fetches nothing."""
    first = _score(site, models, OptOutList(), HashLists())
    assert first.rows_kept == len(URLS)
    lists = HashLists(_table([("ncii", "pdq", pdq_hash(LISTED))]))
    scores = first.table.append_column("source_partition", pa.array(["s"] * len(URLS)))
    release = build_release(scores, hash_lists=lists)
    dropped = {
        d["pair_id"]: d["drop_reason"] for d in release.decisions.to_pylist() if d["drop_reason"]
    }
    by_pair = dict(zip(first.table.column("pair_id").to_pylist(), URLS, strict=True))
    assert sorted(by_pair[p].rsplit("/", 1)[-1] for p in dropped) == [
        "copy-big.webp", "copy-small.jpg", "listed.png"
    ]  # fmt: skip
    assert set(dropped.values()) == {"hash_list:ncii"}
    assert release.rows_in == release.rows_kept + sum(release.dropped.values())
    found = stored_matches(first.table, lists)
    assert sorted(found.column("pair_id").to_pylist()) == sorted(dropped)
    assert max(found.column("distance").to_pylist()) <= 31
    uids = set(first.table.column("url_id").to_pylist())
    cached = cached_outcomes(first.embeddings, models[0].model_id, uids)
    before = len(site.asked)
    again = _score(site, models, OptOutList(), lists, cached=cached)
    assert site.asked[before:] == []  # nothing fetched again
    listed = dict.fromkeys(("listed.png", "copy-small.jpg", "copy-big.webp"), "hash_list:ncii")
    assert _reasons(again.table) == {
        **listed,
        **dict.fromkeys(("exact.png", "withdrawn.png", "distinct.png")),
        "http://gone.test/distinct.png": None,
    }
    assert again.withdrawn_cached == {
        url_id(f"http://art.test{path}")
        for path in ("/listed.png", "/copy-small.jpg", "/copy-big.webp")
    }
    assert again.embeddings.num_rows == 0 and again.urls_cached == len(URLS) - 3


def test_lake_matches_reads_clip_scores(tmp_path: Path, site, models) -> None:
    """The export for the opt-out report: every stored fetch a list in the lake matches."""
    lake = Lake(str(tmp_path / "lake"))
    assert hash_lists.lake_matches(lake).num_rows == 0
    first = _score(site, models, OptOutList(), HashLists())
    lake.write_partition(TableName.CLIP_SCORES, first.table, "SYN_00000")
    hash_lists.add(lake, "csam-md5", [("md5", hashlib.md5(FILES["/exact.png"]).hexdigest())])
    found = hash_lists.lake_matches(lake).to_pylist()
    assert [(r["list_name"], r["kind"], r["distance"]) for r in found] == [("csam-md5", "md5", 0)]
    assert found[0]["url_id"] == url_id("http://art.test/exact.png")


def test_lists_grown_after_a_slice_was_built_in_dagster(small_lake, tmp_path: Path) -> None:
    """On the small web's lake: a hash list and a domain opt-out added after hops 2-3 ran.
    laion_dataset corrects the built slices (hash_list:<name>, opted_out:domain); re-run,
    hop 3 requests nothing of the domain, drops the listed image and no longer keeps its
    embedding; re-run, hop 2 drops the domain's rows; every check passes."""
    from assets_defs.assets.alt_text_pairs import alt_text_pairs
    from assets_defs.assets.clip_scores import clip_scores
    from assets_defs.assets.laion_dataset import laion_dataset
    from pipeline.hops.dataset import opt_outs
    from tests.lake_runs import checks_passed

    run = small_lake.fork(tmp_path)
    lake, key = run.lake, run.keys[0]
    scores = lake.read(TableName.CLIP_SCORES, [key]).to_pylist()
    fresh = [r for r in scores if r["kept"] and not r["from_cache"] and r["pdq"]]
    listed = fresh[0]
    host = urlsplit(listed["url"]).hostname
    other = next(r for r in fresh if urlsplit(r["url"]).hostname != host)
    domain = urlsplit(other["url"]).hostname
    hash_lists.add(lake, "ncii", [("pdq", listed["pdq"])])
    opt_outs.add(lake, [("domain", domain)])

    checks_passed(run.run(laion_dataset, partition=run.crawl))
    decisions = {
        d["pair_id"]: d["drop_reason"]
        for d in lake.read(TableName.LAION_DATASET_DECISIONS, [run.crawl]).to_pylist()
    }
    assert decisions[listed["pair_id"]] == "hash_list:ncii"
    assert decisions[other["pair_id"]] == "opted_out:domain"
    assert run.metadata(TableName.LAION_DATASET, run.crawl)["dropped/hash_list:ncii"] >= 1

    checks_passed(run.run(clip_scores, partition=key))
    again = {r["pair_id"]: r for r in lake.read(TableName.CLIP_SCORES, [key]).to_pylist()}
    assert again[listed["pair_id"]]["drop_reason"] == "hash_list:ncii"
    in_domain = [r for r in again.values() if urlsplit(r["url"]).hostname == domain]
    assert in_domain and all(
        r["drop_reason"] == "opted_out:domain" and r["fetch_attempts"] == 0 for r in in_domain
    )
    embedded = lake.read(TableName.IMAGE_EMBEDDINGS, [key]).column("url_id").to_pylist()
    assert listed["url_id"] not in embedded and other["url_id"] not in embedded
    meta = run.metadata(TableName.CLIP_SCORES, key)
    assert {TableName.HASH_LISTS, TableName.OPT_OUTS} <= set(meta["lake/versions_read"])

    checks_passed(run.run(alt_text_pairs, partition=key))
    pairs = lake.read(TableName.ALT_TEXT_PAIRS, [key]).to_pylist()
    assert {r["drop_reason"] for r in pairs if urlsplit(r["url"] or "").hostname == domain} == {
        "opted_out:domain"
    }
